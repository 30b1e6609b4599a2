"""Client authentication through the gateway, compared with PostgreSQL
requiring the same methods: SCRAM-SHA-256 (with channel binding over
TLS), md5, cleartext password over TLS, rules that reject, unknown users.
PostgreSQL itself requires SCRAM or md5 from these users, so a login
through the gateway also proves that the pooler logged in to PostgreSQL
without their passwords: SCRAM pass-through with the keys from the
client's proof, md5 with the stored hash."""
import os
import subprocess
import sys

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

USERS = {  # name: (password, how PostgreSQL stores it, PostgreSQL's rule)
    "pgw_scram": ("scram secret", "scram-sha-256", "scram-sha-256"),
    "pgw_md5": ("md5 secret", "md5", "md5"),
    "pgw_clear": ("clear secret", "scram-sha-256", "scram-sha-256"),
}

GATEWAY_HBA = """\
# the gateway's rules for the test users
host    all  pgw_scram  127.0.0.1/32  scram-sha-256
host    all  pgw_md5    127.0.0.1/32  md5
hostssl all  pgw_clear  127.0.0.1/32  password
hostnossl all pgw_clear 127.0.0.1/32  reject
host    all  pgw_nobody 127.0.0.1/32  reject
host    all  pgw_ghost  127.0.0.1/32  scram-sha-256
host    all  all        127.0.0.1/32  trust
local   all  all                      trust
"""


class AuthTest(harness.IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.tmp = os.path.join(env.tmp, "auth")
        os.makedirs(cls.tmp, exist_ok=True)
        lines = []
        for name, (pw, enc, _) in USERS.items():
            env.admin_exec("DROP ROLE IF EXISTS %s" % name)
            env.admin_exec("SET password_encryption = '%s'; CREATE ROLE %s LOGIN PASSWORD %%s"
                           % (enc, name), [pw])
            env.admin_exec("GRANT ALL ON DATABASE %s TO %s" % (harness.MAIN_DB, name))
            secret = env.admin_exec("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                                    [name])[0][0]
            lines.append('"%s" "%s"' % (name, secret))
        cls.auth_file = os.path.join(cls.tmp, "users.txt")
        with open(cls.auth_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        cls.hba_file = os.path.join(cls.tmp, "hba.conf")
        with open(cls.hba_file, "w") as f:
            f.write(GATEWAY_HBA)
        # PostgreSQL asks these users for their passwords too.
        cls.pg_hba = os.path.join(env.pg.datadir, "pg_hba.conf")
        with open(cls.pg_hba) as f:
            cls.pg_hba_saved = f.read()
        rules = "".join("host all %s 127.0.0.1/32 %s\n" % (n, m) for n, (_, _, m) in USERS.items())
        with open(cls.pg_hba, "w") as f:
            f.write(rules + cls.pg_hba_saved)
        env.admin_exec("SELECT pg_reload_conf()")
        # A certificate, for the TLS cases.
        cls.cert = os.path.join(cls.tmp, "server.crt")
        cls.key = os.path.join(cls.tmp, "server.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cls.key, "-out",
                        cls.cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(cls.key, 0o600)

    @classmethod
    def tearDownClass(cls):
        with open(cls.pg_hba, "w") as f:
            f.write(cls.pg_hba_saved)
        cls.env.admin_exec("SELECT pg_reload_conf()")
        super().tearDownClass()

    def setUp(self):
        self.skip_in_self_test("the gateway's own authentication")

    def auth_gw(self):
        return self.gw(name="auth", extra_args=["--hba", self.hba_file, "--auth-file",
                                                self.auth_file, "--tls-cert", self.cert,
                                                "--tls-key", self.key])

    def login(self, ep, user, password, **kw):
        """current_user after logging in, or the error's (pgcode-ish, message)."""
        kw.setdefault("sslmode", "disable")
        try:
            conn = ep.connect(user=user, password=password, autocommit=True, **kw)
        except psycopg2.OperationalError as e:
            text = str(e).strip().splitlines()
            fatal = [t for t in text if "FATAL:" in t]
            return ("error", fatal[0].split("FATAL:", 1)[1].strip() if fatal else text[-1])
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user, (SELECT count(*) FROM pg_stat_activity "
                            "WHERE usename = current_user)")
                return cur.fetchone()
        finally:
            conn.close()

    def test_scram(self):
        gw = self.auth_gw()
        self.assertEqual(self.login(gw, "pgw_scram", "scram secret")[0], "pgw_scram")
        # Again on the pooled connection, and with TLS and channel binding.
        self.assertEqual(self.login(gw, "pgw_scram", "scram secret")[0], "pgw_scram")
        self.assertEqual(self.login(gw, "pgw_scram", "scram secret", sslmode="require",
                                    channel_binding="require")[0], "pgw_scram")

    def test_scram_wrong_password_like_postgresql(self):
        direct = self.login(self.env.direct, "pgw_scram", "nope")
        via = self.login(self.auth_gw(), "pgw_scram", "nope")
        self.assertEqual(direct, ("error", 'password authentication failed for user "pgw_scram"'))
        self.assertEqual(direct, via)

    def test_unknown_user_looks_like_a_wrong_password(self):
        # PostgreSQL answers an unknown user under SCRAM exactly as a wrong
        # password, after a full exchange.
        via = self.login(self.auth_gw(), "pgw_ghost", "whatever")
        self.assertEqual(via, ("error", 'password authentication failed for user "pgw_ghost"'))

    def test_md5(self):
        gw = self.auth_gw()
        self.assertEqual(self.login(gw, "pgw_md5", "md5 secret")[0], "pgw_md5")
        direct = self.login(self.env.direct, "pgw_md5", "wrong")
        self.assertEqual(direct, self.login(gw, "pgw_md5", "wrong"))

    def test_password_over_tls_only(self):
        gw = self.auth_gw()
        self.assertEqual(self.login(gw, "pgw_clear", "clear secret", sslmode="require")[0],
                         "pgw_clear")
        r = self.login(gw, "pgw_clear", "wrong", sslmode="require")
        self.assertEqual(r, ("error", 'password authentication failed for user "pgw_clear"'))
        # Without TLS the hostssl line does not apply; the hostnossl one does.
        r = self.login(gw, "pgw_clear", "clear secret", sslmode="disable")
        self.assertEqual(r, ("error", 'pg_hba.conf rejects connection for host "127.0.0.1", '
                                      'user "pgw_clear", database "%s", no encryption'
                                      % harness.MAIN_DB))

    def test_rule_rejects(self):
        r = self.login(self.auth_gw(), "pgw_nobody", "x")
        self.assertEqual(r, ("error", 'pg_hba.conf rejects connection for host "127.0.0.1", '
                                      'user "pgw_nobody", database "%s", no encryption'
                                      % harness.MAIN_DB))

    def test_trusted_users_still_trusted(self):
        r = self.auth_gw().psql("-tA", "-c", "SELECT 'trusted'")
        self.assertEqual(r.stdout.strip(), "trusted")

    def test_bad_rules_file_refused_at_start(self):
        bad = os.path.join(self.tmp, "bad_hba.conf")
        with open(bad, "w") as f:
            f.write("host all all 127.0.0.1/32 ldap\n")
        gw_bin = self.env.gateway_binary
        r = subprocess.run([gw_bin, "--listen", "127.0.0.1:1", "--hba", bad],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ldap", r.stderr)

    def test_secrets_from_postgresql(self):
        """No auth file: the gateway reads pg_authid as the auth user, so a
        role created in PostgreSQL logs in with its own password."""
        gw = self.gw(name="authq", extra_args=["--hba", self.hba_file, "--auth-user",
                                                harness.SUPERUSER])
        self.assertEqual(self.login(gw, "pgw_scram", "scram secret")[0], "pgw_scram")
        self.assertEqual(self.login(gw, "pgw_md5", "md5 secret")[0], "pgw_md5")
        self.assertEqual(self.login(gw, "pgw_scram", "wrong"),
                         ("error", 'password authentication failed for user "pgw_scram"'))
        self.assertEqual(self.login(gw, "pgw_ghost", "x"),
                         ("error", 'password authentication failed for user "pgw_ghost"'))

    def test_raw_scram_without_initial_response(self):
        """An independent SCRAM client (Python's hashlib) that sends its
        SASLInitialResponse without data: PostgreSQL then asks for it with
        an empty SASLContinue, and so does the gateway."""
        import base64
        import hashlib
        import hmac
        import socket
        import struct
        gw = self.auth_gw()
        s = socket.create_connection((gw.host, gw.port), timeout=10)

        def send(t, body):
            s.sendall(t + struct.pack("!I", len(body) + 4) + body)

        s.sendall(harness.startup_packet({"user": "pgw_scram", "database": harness.MAIN_DB}))
        t, body = harness.read_message(s)
        self.assertEqual((t, body[:4]), (b"R", struct.pack("!I", 10)))
        self.assertIn(b"SCRAM-SHA-256\0", body)
        send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", -1))
        t, body = harness.read_message(s)
        self.assertEqual((t, body), (b"R", struct.pack("!I", 11)))  # empty: go on
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=,r=" + nonce
        send(b"p", ("n,," + first_bare).encode())
        t, body = harness.read_message(s)
        self.assertEqual(body[:4], struct.pack("!I", 11))
        server_first = body[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        self.assertTrue(attrs["r"].startswith(nonce))
        salted = hashlib.pbkdf2_hmac("sha256", b"scram secret", base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        final_bare = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join((first_bare, server_first, final_bare)).encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        send(b"p", (final_bare + ",p=" + base64.b64encode(proof).decode()).encode())
        t, body = harness.read_message(s)
        self.assertEqual(body[:4], struct.pack("!I", 12))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        want = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
        self.assertEqual(body[4:], b"v=" + want)
        t, body = harness.read_message(s)
        self.assertEqual((t, body), (b"R", struct.pack("!I", 0)))
        while t != b"Z":
            t, body = harness.read_message(s)
        s.close()
