"""Startup failures look exactly like PostgreSQL's."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

COMPARED = ("S", "V", "C", "M", "D", "H")


class StartupErrorTest(harness.IntegrationTestCase):

    def raw_error(self, ep, params):
        msgs = harness.raw_startup(ep.host, ep.port, params)
        types = [t for t, _ in msgs]
        self.assertTrue(msgs and msgs[-1][0] == b"E",
                        "%s: expected an ErrorResponse, got %r" % (ep.kind, types))
        fields = harness.parse_error_fields(msgs[-1][1])
        return {k: v for k, v in fields.items() if k in COMPARED}, types

    def compare_raw(self, params, sqlstate, message):
        direct, dtypes = self.raw_error(self.env.direct, params)
        self.assertEqual(direct["C"], sqlstate)
        self.assertEqual(direct["M"], message)
        self.assertEqual(direct["S"], "FATAL")
        via, gtypes = self.raw_error(self.gw(), params)
        self.assertEqual(direct, via, "direct %r vs gateway %r (messages %r)" % (dtypes, gtypes, gtypes))

    def test_missing_user_raw(self):
        self.compare_raw({"user": "nosuchuser", "database": "pgw"},
                         "28000", 'role "nosuchuser" does not exist')

    def test_no_user_in_startup_packet(self):
        self.compare_raw({"database": "pgw"},
                         "28000", "no PostgreSQL user name specified in startup packet")

    def test_missing_database_raw(self):
        self.compare_raw({"user": "pgw", "database": "nosuchdb"},
                         "3D000", 'database "nosuchdb" does not exist')

    def test_missing_user_psql(self):
        outs = []
        for ep in (self.env.direct, self.gw()):
            r = ep.psql("-c", "SELECT 1", user="nosuchuser", timeout=30)
            self.assertEqual(r.returncode, 2, r.stdout)
            outs.append(harness.mask_output(r.stdout))
        self.assertIn('FATAL:  role "nosuchuser" does not exist', outs[0])
        self.assertEqual(outs[0], outs[1], harness.text_diff(outs[0], outs[1]))
        # and a good connection still works afterwards
        r = self.gw().psql("-tA", "-c", "SELECT 'fine'")
        self.assertEqual(r.stdout.strip(), "fine")

    def test_missing_database_psql(self):
        outs = []
        for ep in (self.env.direct, self.gw()):
            r = ep.psql("-c", "SELECT 1", dbname="nosuchdb", timeout=30)
            self.assertEqual(r.returncode, 2, r.stdout)
            outs.append(harness.mask_output(r.stdout))
        self.assertEqual(outs[0], outs[1], harness.text_diff(outs[0], outs[1]))

    def test_login_timeout(self):
        """A client that never finishes its startup packet is dropped, like
        PostgreSQL's authentication_timeout, and does not hold anything."""
        import socket
        import time
        self.skip_in_self_test("the timeout is a gateway flag")
        ep = self.gw(name="login1", extra_args=["--login-timeout", "1"])
        s = socket.create_connection((ep.host, ep.port), timeout=10)
        s.sendall(b"\x00\x00")  # half of a length word, then nothing
        start = time.monotonic()
        self.assertEqual(s.recv(100), b"")  # closed, without a word
        elapsed = time.monotonic() - start
        s.close()
        self.assertGreater(elapsed, 0.5)
        self.assertLess(elapsed, 5)
        r = ep.psql("-tA", "-c", "SELECT 'still serving'")
        self.assertEqual(r.stdout.strip(), "still serving")
