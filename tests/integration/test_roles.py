"""SET SESSION AUTHORIZATION and SET ROLE under transaction pooling: each
client keeps its own identity on a shared server connection, in the order
it set them, and a client whose role can no longer be restored is
disconnected rather than run as anyone else."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def q(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


class RoleTest(harness.IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for sql in ("DROP ROLE IF EXISTS pgw_r1", "DROP ROLE IF EXISTS pgw_r2",
                    "CREATE ROLE pgw_r1", "CREATE ROLE pgw_r2", "GRANT pgw_r2 TO pgw_r1"):
            cls.env.admin_exec(sql)

    def setUp(self):
        self.skip_in_self_test("pooling")
        self.ep = self.gw(name="roles1", pool_size=1)

    def test_identities_do_not_mix(self):
        a = self.ep.connect(autocommit=True)
        b = self.ep.connect(autocommit=True)
        q(a, "SET SESSION AUTHORIZATION pgw_r1")
        q(a, "SET ROLE pgw_r2")  # only allowed because the session user is pgw_r1
        for _ in range(3):
            self.assertEqual(q(b, "SELECT session_user, current_user"),
                             [(harness.SUPERUSER, harness.SUPERUSER)])
            self.assertEqual(q(a, "SELECT session_user, current_user"), [("pgw_r1", "pgw_r2")])
        q(a, "SET SESSION AUTHORIZATION pgw_r2")  # resets the role too
        self.assertEqual(q(b, "SELECT current_user"), [(harness.SUPERUSER,)])
        self.assertEqual(q(a, "SELECT session_user, current_user"), [("pgw_r2", "pgw_r2")])
        q(a, "RESET SESSION AUTHORIZATION")
        self.assertEqual(q(b, "SELECT 1"), [(1,)])
        self.assertEqual(q(a, "SELECT session_user, current_user"),
                         [(harness.SUPERUSER, harness.SUPERUSER)])
        a.close()
        b.close()

    def test_role_that_cannot_be_restored_ends_the_session(self):
        a = socket.create_connection((self.ep.host, self.ep.port), timeout=10)
        a.sendall(harness.startup_packet({"user": harness.SUPERUSER, "database": harness.MAIN_DB}))
        while harness.read_message(a)[0] != b"Z":
            pass

        def query(sql):
            body = sql.encode() + b"\0"
            a.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
            out = []
            while True:
                try:
                    t, body = harness.read_message(a)
                except EOFError:
                    return out + ["EOF"]
                out.append((t, body))
                if t == b"Z":
                    return out
        query("SET SESSION AUTHORIZATION pgw_r1")
        query("SET ROLE pgw_r2")
        b = self.ep.connect(autocommit=True)
        try:
            q(b, "REVOKE pgw_r2 FROM pgw_r1")  # b takes the one server connection
            out = query("SELECT current_user")
            self.assertEqual(out[-1], "EOF")
            f = harness.parse_error_fields(out[0][1])
            self.assertEqual((f["S"], f["C"]), ("FATAL", "42501"))
            self.assertIn("could not restore the session", f["M"])
            # and the connection serves others, as themselves
            self.assertEqual(q(b, "SELECT current_user"), [(harness.SUPERUSER,)])
        finally:
            q(b, "GRANT pgw_r2 TO pgw_r1")
            b.close()
            a.close()

    def test_only_the_last_role_is_replayed(self):
        """SET ROLE x then SET ROLE y: x may be dropped afterwards without
        harm, as in PostgreSQL (regression suite's create_role does it)."""
        self.env.admin_exec("DROP ROLE IF EXISTS pgw_r3")
        self.env.admin_exec("CREATE ROLE pgw_r3")
        a = self.ep.connect(autocommit=True)
        b = self.ep.connect(autocommit=True)
        try:
            q(a, "SET ROLE pgw_r3")
            q(a, "SET ROLE pgw_r2")
            q(b, "DROP ROLE pgw_r3")
            self.assertEqual(q(a, "SELECT current_user"), [("pgw_r2",)])
            q(a, "RESET ROLE")
            self.assertEqual(q(a, "SELECT current_user"), [(harness.SUPERUSER,)])
        finally:
            a.close()
            b.close()
