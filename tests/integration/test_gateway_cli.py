"""Gateway process contract: flag and config-file errors exit 2 with one
line; a config file sets what flags set and flags win over it; SIGTERM and
SIGINT stop it cleanly (exit 0, backend connections closed). The
multipooler binary shares the command-line code and is checked likewise."""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class GatewayCliTest(harness.IntegrationTestCase):

    def setUp(self):
        self.skip_in_self_test("no gateway process")

    def bad_flags(self, *flags, binary=None):
        """Runs the binary with FLAGS, expects exit 2 and one line; returns it."""
        port = harness.free_port()
        argv = [binary or self.env.gateway_binary, "--listen", "127.0.0.1:%d" % port,
                "--backend", "host=127.0.0.1 port=%d" % self.env.pg.port] + list(flags)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=10, env=harness.base_env())
        self.assertEqual(r.returncode, 2, "%s: exit %s, stderr %r" % (flags, r.returncode, r.stderr))
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, "%s: want a one-line message, got %r" % (flags, r.stderr))
        return lines[0]

    def config_file(self, name, text):
        path = os.path.join(self.env.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

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

    def test_bad_backend_conninfo(self):
        self.assertIn("unterminated quote", self.bad_flags("--backend", "host='x"))
        self.assertIn('unknown --backend key "nope"', self.bad_flags("--backend", "nope=1"))

    def test_config_file_errors(self):
        bad = self.config_file("bad.conf", "# comment\n\npool-size = 3\nno-such-setting = 1\n")
        self.assertIn("bad.conf:4:", self.bad_flags("--config", bad))
        val = self.config_file("badval.conf", "pool-mode = sometimes\n")
        self.assertIn("pool-mode", self.bad_flags("--config", val))
        self.assertIn("cannot read config file",
                      self.bad_flags("--config", os.path.join(self.env.tmp, "missing.conf")))

    def test_config_file_and_flags(self):
        """The file's listen address is used; a --listen flag replaces it."""
        db = self.env.create_database("pgw_cli")
        p_file, p_flag = harness.free_port(), harness.free_port()
        conf = self.config_file("gw.conf", "listen = 127.0.0.1:%d\nworkers = 1\n"
                                "backend = host=127.0.0.1 port=%d\n" % (p_file, self.env.pg.port))
        for flags, open_port, closed_port in (([], p_file, p_flag),
                                              (["--listen", "127.0.0.1:%d" % p_flag], p_flag, p_file)):
            proc = subprocess.Popen([self.env.gateway_binary, "--config", conf] + flags,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env=harness.base_env())
            try:
                wait_listening(proc, open_port)
                c = harness.psycopg2.connect(host="127.0.0.1", port=open_port, dbname=db,
                                             user="pgw", gssencmode="disable", connect_timeout=10)
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
                    self.assertEqual(cur.fetchone(), (1,))
                c.close()
                with self.assertRaises(OSError):
                    socket.create_connection(("127.0.0.1", closed_port), 1).close()
            finally:
                proc.terminate()
                _, err = proc.communicate(timeout=10)
            self.assertEqual(proc.returncode, 0, err)

    def test_multipooler_flags_and_config(self):
        mp = self.env.multipooler_binary
        if not os.access(mp, os.X_OK):
            self.skipTest("no multipooler binary at %s" % mp)
        self.bad_flags("--no-such-flag", binary=mp)
        self.bad_flags("--pool-size", "abc", binary=mp)
        self.assertIn("CELL/NAME", self.bad_flags("--pooler-id", "nocell", binary=mp))
        bad = self.config_file("mp.conf", "reserved-timeout = soon\n")
        self.assertIn("reserved-timeout", self.bad_flags("--config", bad, binary=mp))

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
            rc = gw.stop(sig=sig, timeout=30)
            dt = time.monotonic() - t0
        finally:
            gw.stop(signal.SIGKILL)
        self.assertEqual(rc, 0, "exit status after signal %d: %r; log:\n%s" % (sig, rc, gw.log_tail()))
        self.assertLess(dt, 30)  # no hang
        harness.wait_until(lambda: self.env.backend_count(db) == 0,
                           "no backend connection is left after shutdown")

    def test_sigterm(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint(self):
        self.stop_with(signal.SIGINT)


def wait_listening(proc, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("exited with %s: %s" % (proc.returncode, proc.stderr.read()))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listening on %d after %d s" % (port, timeout))


def psycopg2_connect(gw, db):
    return harness.psycopg2.connect(host="127.0.0.1", port=gw.port, dbname=db, user="pgw",
                                    gssencmode="disable", connect_timeout=10)
