"""Connections over the gateway's Unix socket (--socket-dir)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SCRIPT = "SELECT 'unix ok' AS msg, current_user, current_database();\n" \
         "SELECT count(*) FROM generate_series(1, 1000);\nSELECT 1/0;\n"


class UnixSocketTest(harness.IntegrationTestCase):

    def wait_socket(self, ep):
        path = os.path.join(ep.socket_dir, ".s.PGSQL.%d" % ep.port)
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(path), "no socket %s" % path)
        return path

    def test_psql_over_unix_socket(self):
        gw = self.gw()
        self.wait_socket(gw)
        outs = []
        for ep in (self.env.direct, gw):
            r = ep.psql("-a", "-h", ep.socket_dir, "-p", str(ep.port), input=SCRIPT)
            outs.append(harness.mask_output(r.stdout))
        self.assertIn("unix ok", outs[0])
        self.assertEqual(outs[0], outs[1], harness.text_diff(outs[0], outs[1]))

    def test_psycopg2_over_unix_socket(self):
        gw = self.gw()
        self.wait_socket(gw)
        c = gw.connect(unix=True, autocommit=True)
        try:
            with c.cursor() as cur:
                cur.execute("BEGIN; SELECT 'unix', current_user; COMMIT")
                cur.execute("SELECT 'unix', current_user")
                self.assertEqual(cur.fetchall(), [("unix", "pgw")])
        finally:
            c.close()
