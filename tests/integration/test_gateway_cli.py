"""Gateway process contract: flag errors exit 2 with one line; SIGTERM and
SIGINT stop it cleanly (exit 0, backend connections closed)."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class GatewayCliTest(harness.IntegrationTestCase):

    def setUp(self):
        self.skip_in_self_test("no gateway process")

    def bad_flags(self, *flags):
        port = harness.free_port()
        argv = [self.env.gateway_binary, "--listen", "127.0.0.1:%d" % port,
                "--backend", "host=127.0.0.1 port=%d" % self.env.pg.port] + list(flags)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=10, env=harness.base_env())
        self.assertEqual(r.returncode, 2, "%s: exit %s, stderr %r" % (flags, r.returncode, r.stderr))
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, "%s: want a one-line message, got %r" % (flags, r.stderr))

    def test_unknown_flag(self):
        self.bad_flags("--no-such-flag")

    def test_bad_pool_mode(self):
        self.bad_flags("--pool-mode", "bogus")

    def test_bad_pool_size(self):
        self.bad_flags("--pool-size", "abc")

    def test_missing_listen_value(self):
        r = subprocess.run([self.env.gateway_binary, "--listen"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)

    def stop_with(self, sig):
        db = self.env.create_database("pgw_cli")
        gw = harness.GatewayProcess(self.env.gateway_binary, "sig%d" % sig, self.env.tmp,
                                    self.env.pg.port, pool_size=2)
        gw.start()
        try:
            for _ in range(3):
                c = psycopg2_connect(gw, db)
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
                c.close()
            t0 = time.monotonic()
            rc = gw.stop(sig=sig, timeout=10)
            dt = time.monotonic() - t0
        finally:
            gw.stop(signal.SIGKILL)
        self.assertEqual(rc, 0, "exit status after signal %d: %r; log:\n%s" % (sig, rc, gw.log_tail()))
        self.assertLess(dt, 5.0)
        deadline = time.monotonic() + 5
        while self.env.backend_count(db) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.env.backend_count(db), 0, "backend connections left after shutdown")

    def test_sigterm(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint(self):
        self.stop_with(signal.SIGINT)


def psycopg2_connect(gw, db):
    return harness.psycopg2.connect(host="127.0.0.1", port=gw.port, dbname=db, user="pgw",
                                    gssencmode="disable", connect_timeout=10)
