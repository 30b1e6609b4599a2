"""TLS between clients and the gateway.

Contract under test:
  multigateway ... --tls-cert FILE --tls-key FILE [--tls-ca FILE]
  * with cert and key an SSLRequest is answered 'S' and a TLS handshake
    (TLS 1.2 at least) follows; without them 'N';
  * direct TLS (PostgreSQL 17's sslnegotiation=direct): a first byte 0x16
    starts the handshake at once; ALPN "postgresql" is required: other
    protocols get a TLS alert, no ALPN at all gets a silent close right
    after the handshake;
  * bytes sent in plaintext after an SSLRequest, before 'S' was read, get
    FATAL 08P01 "received unencrypted data after SSL request" in plaintext
    and a close;
  * --tls-ca: client certificates are asked for and, when presented,
    verified against that CA (a bad one fails the handshake);
  * GSSENCRequest is still answered 'N'.

The class fixture makes, with the openssl CLI, a CA, a server certificate
for localhost / 127.0.0.1, one for another name, a client certificate
(CN=pgw) and an unrelated CA with its own client certificate. For
comparisons, the harness's PostgreSQL gets ssl=on with the same server
certificate and CA (ssl is reloadable, so this is ALTER SYSTEM + reload,
reverted when the class is done); PostgreSQL 15 has no direct TLS and no
ALPN, so those checks only run against the gateway, with the expectations
written from PostgreSQL 17's documented behaviour.

Everything skips in --self-test mode (there is no gateway to configure).
"""
import contextlib
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SSL_REQUEST = struct.pack("!II", 8, 80877103)
GSSENC_REQUEST = struct.pack("!II", 8, 80877104)
CANCEL_CODE = 80877102

UNENCRYPTED_MSG = "received unencrypted data after SSL request"

# Masks for psql output that differ between endpoints.
_PORT_MASKS = [(re.compile(r'(at port ")\d+(")'), r"\1<PORT>\2")]

OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = placeholder

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid

[ v3_server_other ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.invalid
authorityKeyIdentifier = keyid

[ v3_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


class Certs:
    """Paths of the generated PKI (all PEM)."""

    def __init__(self, d):
        self.dir = d
        p = lambda n: os.path.join(d, n)  # noqa: E731
        self.cnf = p("openssl.cnf")
        self.ca_crt, self.ca_key = p("ca.crt"), p("ca.key")
        self.server_crt, self.server_key = p("server.crt"), p("server.key")
        # PostgreSQL's copy of the server key: owned by postgres, 0600.
        self.pg_server_key = p("pg-server.key")
        self.other_server_crt, self.other_server_key = p("other-server.crt"), p("other-server.key")
        self.client_crt, self.client_key = p("client.crt"), p("client.key")
        self.other_ca_crt, self.other_ca_key = p("other-ca.crt"), p("other-ca.key")
        self.other_client_crt, self.other_client_key = p("other-client.crt"), p("other-client.key")


def _openssl(*args, cnf=None):
    env = dict(os.environ)
    if cnf:
        env["OPENSSL_CONF"] = cnf
    r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60, env=env)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (exit %d):\n%s"
                           % (" ".join(args), r.returncode, r.stdout))
    return r.stdout


def make_certs(d):
    """Generate the PKI into directory d with the openssl CLI."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command-line tool is needed (Debian package openssl)")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)  # PostgreSQL (user postgres) reads from here
    c = Certs(d)
    with open(c.cnf, "w") as f:
        f.write(OPENSSL_CNF)
    serial = [0x5eed0000]

    def key(path):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path, cnf=c.cnf)
        os.chmod(path, 0o600)

    def ca(crt, keyf, cn):
        key(keyf)
        _openssl("req", "-new", "-x509", "-config", c.cnf, "-extensions", "v3_ca",
                 "-key", keyf, "-out", crt, "-days", "3", "-subj", "/CN=" + cn, cnf=c.cnf)

    def leaf(crt, keyf, cn, ca_crt, ca_key, ext):
        key(keyf)
        csr = crt[:-4] + ".csr"
        _openssl("req", "-new", "-config", c.cnf, "-key", keyf, "-out", csr,
                 "-subj", "/CN=" + cn, cnf=c.cnf)
        serial[0] += 1
        _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                 "-set_serial", str(serial[0]), "-days", "3", "-sha256",
                 "-extfile", c.cnf, "-extensions", ext, "-out", crt, cnf=c.cnf)
        os.unlink(csr)

    ca(c.ca_crt, c.ca_key, "pgw test CA")
    leaf(c.server_crt, c.server_key, "localhost", c.ca_crt, c.ca_key, "v3_server")
    leaf(c.other_server_crt, c.other_server_key, "other.invalid", c.ca_crt, c.ca_key,
         "v3_server_other")
    leaf(c.client_crt, c.client_key, harness.SUPERUSER, c.ca_crt, c.ca_key, "v3_client")
    ca(c.other_ca_crt, c.other_ca_key, "unrelated test CA")
    leaf(c.other_client_crt, c.other_client_key, harness.SUPERUSER, c.other_ca_crt,
         c.other_ca_key, "v3_client")
    for crt in (c.ca_crt, c.server_crt, c.other_server_crt, c.client_crt, c.other_ca_crt,
                c.other_client_crt):
        os.chmod(crt, 0o644)
    shutil.copyfile(c.server_key, c.pg_server_key)
    shutil.chown(c.pg_server_key, "postgres", "postgres")
    os.chmod(c.pg_server_key, 0o600)
    # Sanity: the chains verify, the unrelated one does not.
    _openssl("verify", "-CAfile", c.ca_crt, c.server_crt, c.other_server_crt, c.client_crt,
             cnf=c.cnf)
    _openssl("verify", "-CAfile", c.other_ca_crt, c.other_client_crt, cnf=c.cnf)
    try:
        _openssl("verify", "-CAfile", c.ca_crt, c.other_client_crt, cnf=c.cnf)
    except RuntimeError:
        pass
    else:
        raise RuntimeError("fixture bug: the unrelated client certificate verifies against the CA")
    return c


# --------------------------------------------------------------------------
# raw protocol over (possibly) TLS sockets
# --------------------------------------------------------------------------

def recv_until_eof(sock, timeout=10.0, limit=1 << 20):
    """Everything the peer sends until it closes. Raises AssertionError if it
    neither closes nor stops sending within timeout."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("connection not closed within %.0fs; received so far %r"
                                 % (timeout, data[:200]))
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if time.monotonic() > deadline:
            raise AssertionError("still receiving after %.0fs: %r" % (timeout, data[:200]))
    return data


def split_messages(data):
    """Backend messages (type, body) in data; the rest that is not a whole message."""
    msgs = []
    while len(data) >= 5:
        (ln,) = struct.unpack("!I", data[1:5])
        if ln < 4 or len(data) < 1 + ln:
            break
        msgs.append((data[:1], data[5:1 + ln]))
        data = data[1 + ln:]
    return msgs, data


def login_msgs(sock):
    """Send a StartupMessage for pgw/pgw; messages up to ReadyForQuery/Error."""
    sock.sendall(harness.startup_packet({"user": harness.SUPERUSER,
                                         "database": harness.MAIN_DB}))
    msgs = []
    while True:
        t, body = harness.read_message(sock)
        msgs.append((t, body))
        if t in (b"E", b"Z"):
            return msgs


def simple_query(sock, sql):
    body = sql.encode() + b"\0"
    sock.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
    msgs = []
    while True:
        t, body = harness.read_message(sock)
        msgs.append((t, body))
        if t == b"Z":
            return msgs


def assert_logged_in(test, msgs, what):
    types = [t for t, _ in msgs]
    test.assertTrue(msgs, "%s: no messages" % what)
    if msgs[-1][0] == b"E":
        test.fail("%s: startup failed: %r" % (what, harness.parse_error_fields(msgs[-1][1])))
    test.assertEqual(msgs[0], (b"R", struct.pack("!I", 0)),
                     "%s: first message is not AuthenticationOk: %r" % (what, types))
    test.assertIn(b"K", types, "%s: no BackendKeyData: %r" % (what, types))
    test.assertEqual(types[-1], b"Z", "%s: %r" % (what, types))


def data_rows(msgs):
    return [harness.describe_messages([m])[0][1] for m in msgs if m[0] == b"D"]


def close_quietly(sock):
    with contextlib.suppress(Exception):
        sock.close()


# --------------------------------------------------------------------------

class TlsTest(harness.IntegrationTestCase):

    certs = None
    pg_ssl_error = "not set up"

    # -- fixture ------------------------------------------------------------
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.env.self_test:
            return
        d = os.path.join(cls.env.tmp, "tls")
        cls.certs = make_certs(d)
        cls.pg_ssl_error = cls._pg_ssl(True)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.certs is not None:  # also after a half-done switch
                err = cls._pg_ssl(False)
                if err:
                    harness.log("test_tls: could not turn PostgreSQL's ssl off again: %s" % err)
        finally:
            super().tearDownClass()

    @classmethod
    def _pg_ssl(cls, on):
        """Turn ssl on (same server certificate, CA for client certificates)
        or back off on the harness's PostgreSQL; None, or why it failed."""
        c = cls.certs
        settings = {"ssl": "on", "ssl_cert_file": c.server_crt,
                    "ssl_key_file": c.pg_server_key, "ssl_ca_file": c.ca_crt}
        try:
            for k, v in settings.items():
                if on:
                    cls.env.admin_exec("ALTER SYSTEM SET %s = %%s" % k, [v])
                else:
                    cls.env.admin_exec("ALTER SYSTEM RESET %s" % k)
            cls.env.admin_exec("SELECT pg_reload_conf()")
        except Exception as e:
            return "ALTER SYSTEM / reload failed: %s" % e
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = cls.env.direct.connect(sslmode="prefer")
                in_use = conn.info.ssl_in_use
                conn.close()
                if in_use == on:
                    return None
            except Exception as e:  # pragma: no cover
                last = e
            else:
                last = "ssl_in_use=%s" % in_use
            if time.monotonic() > deadline:
                return ("PostgreSQL did not switch ssl %s within 30s (%s); log tail:\n%s"
                        % ("on" if on else "off", last, cls.env.pg.log_tail(10)))
            time.sleep(0.1)

    def setUp(self):
        self.skip_in_self_test("TLS is configured on the gateway; there is none")

    def pg_ref(self):
        """The direct PostgreSQL endpoint, which now speaks TLS."""
        if self.pg_ssl_error:
            self.fail("PostgreSQL with ssl=on (the reference) is not available: %s"
                      % self.pg_ssl_error)
        return self.env.direct

    # -- gateways -----------------------------------------------------------
    def tls_gw(self, name="tls", ca=False, cert=None, key=None):
        c = self.certs
        args = ["--tls-cert", cert or c.server_crt, "--tls-key", key or c.server_key]
        if ca:
            args += ["--tls-ca", c.ca_crt]
        try:
            return self.gw(name=name, extra_args=args)
        except RuntimeError as e:
            self.fail("could not start a gateway with %s (does %s support TLS?):\n%s"
                      % (" ".join(args), self.env.gateway_binary, e))

    def plain_gw(self):
        return self.gw()

    # -- client helpers -------------------------------------------------------
    def client_ctx(self, alpn=None, cert=None, key=None, verify=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            ctx.load_verify_locations(self.certs.ca_crt)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if alpn is not None:
            ctx.set_alpn_protocols(alpn)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def negotiated_tls(self, ep, ctx, what):
        """SSLRequest -> 'S' -> TLS handshake; the TLS socket."""
        s = socket.create_connection((ep.host, ep.port), timeout=10)
        try:
            s.sendall(SSL_REQUEST)
            ans = s.recv(1)
            self.assertEqual(ans, b"S", "%s: SSLRequest answered %r, want b'S'" % (what, ans))
            return ctx.wrap_socket(s, server_hostname="localhost")
        except BaseException:
            close_quietly(s)
            raise

    def direct_tls(self, ep, ctx):
        """Direct TLS: ClientHello as the first bytes. The TLS socket (the
        handshake errors propagate)."""
        s = socket.create_connection((ep.host, ep.port), timeout=10)
        try:
            return ctx.wrap_socket(s, server_hostname="localhost")
        except BaseException:
            close_quietly(s)
            raise

    def psql(self, ep, *args, **env_extra):
        env_extra = {k: str(v) for k, v in env_extra.items()}
        return ep.psql(*args, env_extra=env_extra, timeout=30)

    def conninfo(self, ep, **env_extra):
        r = self.psql(ep, "-tA", "-c", "SELECT 1", "-c", "\\conninfo", **env_extra)
        return r.returncode, harness.mask_output(r.stdout, _PORT_MASKS)

    def still_serves(self, ep):
        r = self.psql(ep, "-tA", "-c", "SELECT 'still serving'", PGSSLMODE="require")
        self.assertEqual(r.stdout.strip(), "still serving", r.stdout)

    # ==========================================================================
    # fixture sanity (no gateway involved)
    # ==========================================================================

    def test_fixture_certificates(self):
        c = self.certs
        for k in (c.ca_key, c.server_key, c.other_server_key, c.client_key, c.other_ca_key,
                  c.other_client_key, c.pg_server_key):
            self.assertEqual(os.stat(k).st_mode & 0o777, 0o600, k)
        self.assertEqual(os.stat(c.pg_server_key).st_uid,
                         int(subprocess.check_output(["id", "-u", "postgres"]).strip()))
        text = _openssl("x509", "-in", c.server_crt, "-noout", "-text", cnf=c.cnf)
        self.assertRegex(text, r"DNS:localhost, IP Address:127\.0\.0\.1")
        subj = _openssl("x509", "-in", c.client_crt, "-noout", "-subject", cnf=c.cnf)
        self.assertIn("CN = %s" % harness.SUPERUSER, subj)
        # PostgreSQL took the same certificate: verify-full against it works.
        pg = self.pg_ref()
        rc, out = self.conninfo(pg, PGSSLMODE="verify-full", PGSSLROOTCERT=c.ca_crt,
                                PGHOST="localhost")
        self.assertEqual(rc, 0, out)
        self.assertIn("SSL connection (protocol: TLSv1.3", out)

    # ==========================================================================
    # libpq clients
    # ==========================================================================

    def test_psql_sslmode_require(self):
        rc, ref = self.conninfo(self.pg_ref(), PGSSLMODE="require")
        self.assertEqual(rc, 0, ref)
        m = re.search(r"SSL connection \(protocol: (TLSv[\d.]+)", ref)
        self.assertTrue(m, "PostgreSQL's \\conninfo shows no SSL: %s" % ref)
        rc, out = self.conninfo(self.tls_gw(), PGSSLMODE="require")
        self.assertEqual(rc, 0, "psql sslmode=require through the gateway failed:\n" + out)
        self.assertTrue(out.startswith("1\n"), out)
        self.assertIn("SSL connection (protocol: %s," % m.group(1), out,
                      "psql does not report SSL (PostgreSQL: %r)" % ref)

    def test_psql_verify_full(self):
        c = self.certs
        gw = self.tls_gw()
        for host in ("localhost", "127.0.0.1"):  # DNS and IP subjectAltName
            with self.subTest(host=host):
                rc, ref = self.conninfo(self.pg_ref(), PGSSLMODE="verify-full",
                                        PGSSLROOTCERT=c.ca_crt, PGHOST=host)
                self.assertEqual(rc, 0, ref)
                rc, out = self.conninfo(gw, PGSSLMODE="verify-full", PGSSLROOTCERT=c.ca_crt,
                                        PGHOST=host)
                self.assertEqual(rc, 0, "verify-full host=%s through the gateway:\n%s"
                                 % (host, out))
                self.assertEqual(out, ref, harness.text_diff(ref, out, "postgres", "gateway"))

    def test_verify_full_rejects_wrong_name_and_wrong_ca(self):
        c = self.certs
        # The gateway's certificate names other.invalid only.
        other = self.tls_gw(name="tls-othername", cert=c.other_server_crt,
                            key=c.other_server_key)
        r = self.psql(other, "-c", "SELECT 1", PGSSLMODE="verify-full",
                      PGSSLROOTCERT=c.ca_crt, PGHOST="127.0.0.1")
        self.assertEqual(r.returncode, 2, r.stdout)
        # libpq: 'server certificate for "other.invalid" (and 1 other name) does not
        # match host name "127.0.0.1"' (the CN and the subjectAltName are both counted)
        self.assertRegex(r.stdout, r'server certificate for "other\.invalid"( \(and \d+ other '
                         r'names?\))? does not match host name "127\.0\.0\.1"')
        # ... but verify-ca is satisfied by it (the chain is fine).
        r = self.psql(other, "-tA", "-c", "SELECT 'ca ok'", PGSSLMODE="verify-ca",
                      PGSSLROOTCERT=c.ca_crt, PGHOST="127.0.0.1")
        self.assertEqual(r.stdout.strip(), "ca ok", r.stdout)
        # The right certificate, a name it does not carry: same error as PostgreSQL's.
        gw = self.tls_gw()
        outs = []
        for ep in (self.pg_ref(), gw):
            r = self.psql(ep, "-c", "SELECT 1", PGSSLMODE="verify-full", PGSSLROOTCERT=c.ca_crt,
                          PGHOST="wrong.invalid", PGHOSTADDR="127.0.0.1")
            self.assertEqual(r.returncode, 2, r.stdout)
            outs.append(harness.mask_output(r.stdout))
        self.assertIn('does not match host name "wrong.invalid"', outs[0])
        self.assertEqual(outs[0], outs[1], harness.text_diff(outs[0], outs[1], "postgres", "gateway"))
        # Trusting only the unrelated CA: the chain does not verify.
        r = self.psql(gw, "-c", "SELECT 1", PGSSLMODE="verify-ca", PGSSLROOTCERT=c.other_ca_crt)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("certificate verify failed", r.stdout)

    def test_require_without_tls_configured(self):
        r = self.psql(self.plain_gw(), "-c", "SELECT 1", PGSSLMODE="require")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("server does not support SSL, but SSL was required", r.stdout)
        # prefer falls back to plaintext there, as before
        rc, out = self.conninfo(self.plain_gw(), PGSSLMODE="prefer")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("SSL connection", out)

    def test_sslmode_prefer_and_disable(self):
        gw = self.tls_gw()
        rc, out = self.conninfo(gw, PGSSLMODE="prefer")
        self.assertEqual(rc, 0, out)
        self.assertIn("SSL connection (protocol: TLSv1.", out)
        conn = gw.connect(sslmode="prefer")
        try:
            self.assertTrue(conn.info.ssl_in_use, "sslmode=prefer ended up unencrypted")
        finally:
            conn.close()
        # Plaintext clients are still served (as by PostgreSQL with a 'host' rule).
        conn = gw.connect(sslmode="disable")
        try:
            self.assertFalse(conn.info.ssl_in_use)
            with conn.cursor() as cur:
                cur.execute("SELECT 'plain'")
                self.assertEqual(cur.fetchone()[0], "plain")
        finally:
            conn.close()

    def test_psycopg2_require_and_verify_full(self):
        c = self.certs
        gw = self.tls_gw()
        for mode, kw in (("require", {}),
                         ("verify-full", {"sslrootcert": c.ca_crt, "host": "localhost"})):
            seen = []
            for ep in (self.pg_ref(), gw):
                with self.subTest(sslmode=mode, endpoint=ep.kind):
                    conn = ep.connect(sslmode=mode, **kw)
                    try:
                        self.assertTrue(conn.info.ssl_in_use)
                        with conn.cursor() as cur:
                            cur.execute("SELECT 1")
                            self.assertEqual(cur.fetchone(), (1,))
                        seen.append({a: conn.info.ssl_attribute(a)
                                     for a in ("library", "protocol", "key_bits")})
                    finally:
                        conn.close()
            self.assertEqual(len(seen), 2, seen)
            self.assertEqual(seen[0]["protocol"], "TLSv1.3", seen)
            self.assertEqual(seen[0], seen[1], "ssl attributes: postgres %r, gateway %r" % tuple(seen))

    def test_cancel_over_tls(self):
        """psycopg2 (libpq 15) sends the CancelRequest on a new plaintext
        connection; the query on the TLS session is cancelled."""
        conn = self.tls_gw().connect(sslmode="require", autocommit=True)
        try:
            self.assertTrue(conn.info.ssl_in_use)
            def cancel():
                harness.wait_running("SELECT pg_sleep(30)")
                conn.cancel()
            timer = threading.Thread(target=cancel)
            timer.start()
            with self.assertRaises(harness.psycopg2.errors.QueryCanceled) as cm:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(30)")
            timer.join()
            self.assertEqual(cm.exception.pgcode, "57014")
            self.assertIn("canceling statement due to user request", cm.exception.pgerror)
            with conn.cursor() as cur:
                cur.execute("SELECT 'usable after cancel'")
                self.assertEqual(cur.fetchone()[0], "usable after cancel")
        finally:
            conn.close()

    # ==========================================================================
    # raw sockets: negotiation and direct TLS
    # ==========================================================================

    def test_raw_sslrequest_then_tls(self):
        gw = self.tls_gw()
        for alpn in (["postgresql"], None):
            with self.subTest(alpn=alpn):
                t = self.negotiated_tls(gw, self.client_ctx(alpn=alpn), "SSLRequest")
                try:
                    self.assertIn(t.version(), ("TLSv1.2", "TLSv1.3"))
                    if alpn:
                        self.assertEqual(t.selected_alpn_protocol(), "postgresql")
                    msgs = login_msgs(t)
                    assert_logged_in(self, msgs, "startup inside TLS after SSLRequest")
                    rows = data_rows(simple_query(t, "SELECT 40 + 2"))
                    self.assertEqual(rows, [["42"]])
                    t.sendall(b"X\0\0\0\4")
                finally:
                    close_quietly(t)

    def test_direct_tls_with_alpn(self):
        gw = self.tls_gw()
        for alpn in (["postgresql"], ["http/1.1", "postgresql"]):
            with self.subTest(alpn=alpn):
                try:
                    t = self.direct_tls(gw, self.client_ctx(alpn=alpn))
                except (ssl.SSLError, OSError) as e:
                    self.fail("direct TLS handshake with ALPN %r failed: %r" % (alpn, e))
                try:
                    self.assertEqual(t.selected_alpn_protocol(), "postgresql")
                    msgs = login_msgs(t)
                    assert_logged_in(self, msgs, "startup inside direct TLS")
                    rows = data_rows(simple_query(t, "SELECT 'direct'"))
                    self.assertEqual(rows, [["direct"]])
                    t.sendall(b"X\0\0\0\4")
                finally:
                    close_quietly(t)

    def test_direct_tls_without_alpn_is_closed(self):
        """No ALPN at all: the handshake completes, then the connection is
        closed at once without a word (PostgreSQL 17: "received direct SSL
        connection request without ALPN protocol negotiation extension" goes
        to its log only). Checked twice: a client that waits for the server
        after the handshake, and one that sends its StartupMessage at once."""
        gw = self.tls_gw()
        for send_startup in (False, True):
            with self.subTest(send_startup=send_startup):
                try:
                    t = self.direct_tls(gw, self.client_ctx(alpn=None))
                except (ssl.SSLError, OSError) as e:
                    self.fail("direct TLS without ALPN: the handshake should complete "
                              "(then the close), got %r" % e)
                try:
                    self.assertIsNone(t.selected_alpn_protocol())
                    if send_startup:
                        with contextlib.suppress(OSError):  # it may be closed already
                            t.sendall(harness.startup_packet({"user": harness.SUPERUSER,
                                                              "database": harness.MAIN_DB}))
                    stuck = None
                    try:
                        got = recv_until_eof(t, timeout=5)
                    except AssertionError as e:
                        stuck = str(e)
                    except (ssl.SSLError, OSError):
                        got = b""
                    if stuck:
                        self.fail("direct TLS without ALPN: the gateway did not close the "
                                  "connection right after the handshake (PostgreSQL 17 does): "
                                  "%s" % stuck)
                    self.assertEqual(got, b"", "direct TLS without ALPN must be closed without "
                                     "a word, the gateway sent %r" % got[:200])
                finally:
                    close_quietly(t)
        self.still_serves(gw)

    def test_direct_tls_wrong_alpn_refused(self):
        gw = self.tls_gw()
        try:
            t = self.direct_tls(gw, self.client_ctx(alpn=["http/1.1"]))
        except ssl.SSLError as e:
            # expected: a TLS alert (no_application_protocol / handshake failure)
            self.assertNotIsInstance(e, ssl.SSLCertVerificationError, repr(e))
        except OSError:
            pass  # closed during the handshake
        else:
            try:
                self.assertNotEqual(t.selected_alpn_protocol(), "http/1.1")
                with contextlib.suppress(OSError):
                    t.sendall(harness.startup_packet({"user": harness.SUPERUSER,
                                                      "database": harness.MAIN_DB}))
                try:
                    got = recv_until_eof(t)
                except (ssl.SSLError, OSError):
                    got = b""
                self.assertEqual(got, b"", "ALPN http/1.1 only: the gateway talked: %r"
                                 % got[:200])
            finally:
                close_quietly(t)
        self.still_serves(gw)

    def test_unencrypted_data_after_sslrequest(self):
        """SSLRequest with a StartupMessage right behind it in the same
        segment: FATAL 08P01 in plaintext, then the close."""
        payload = SSL_REQUEST + harness.startup_packet({"user": harness.SUPERUSER,
                                                         "database": harness.MAIN_DB})
        # PostgreSQL 15 with ssl on would first do the handshake (and wait); over
        # its Unix socket it answers 'N', then reports the buffered bytes.
        pg = self.env.pg
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.settimeout(10)
        u.connect(os.path.join(pg.sockdir, ".s.PGSQL.%d" % pg.port))
        try:
            u.sendall(payload)
            ref_data = recv_until_eof(u)
        finally:
            close_quietly(u)
        self.assertEqual(ref_data[:1], b"N", ref_data)
        ref_msgs, rest = split_messages(ref_data[1:])
        self.assertEqual(rest, b"")
        self.assertEqual([t for t, _ in ref_msgs], [b"E"], ref_msgs)
        ref = harness.parse_error_fields(ref_msgs[0][1])
        self.assertEqual((ref["S"], ref["C"], ref["M"]), ("FATAL", "08P01", UNENCRYPTED_MSG))

        gw = self.tls_gw()
        s = socket.create_connection((gw.host, gw.port), timeout=10)
        try:
            s.sendall(payload)
            data = recv_until_eof(s)
        finally:
            close_quietly(s)
        lead = b""
        if data[:1] in (b"S", b"N"):
            lead, data = data[:1], data[1:]
        self.assertNotEqual(lead, b"N", "a TLS gateway answered the SSLRequest 'N'")
        self.assertTrue(data[:1] == b"E",
                        "want a plaintext ErrorResponse (after an optional 'S'), got %r%r"
                        % (lead, data[:100]))
        msgs, rest = split_messages(data)
        self.assertEqual(rest, b"", "garbage after the messages: %r" % rest[:100])
        self.assertEqual([t for t, _ in msgs], [b"E"],
                         "want exactly one ErrorResponse then EOF, got %r" % msgs)
        f = harness.parse_error_fields(msgs[0][1])
        for k in ("S", "V", "C", "M"):
            self.assertEqual(f.get(k), ref.get(k), "field %s: gateway %r, PostgreSQL %r"
                             % (k, f, ref))
        if "D" in f:
            self.assertEqual(f["D"], ref.get("D"))
        self.still_serves(gw)

    def test_tls_versions(self):
        """TLS 1.2 is accepted, 1.1 and lower are refused (as by PostgreSQL's
        default ssl_min_protocol_version)."""
        gw = self.tls_gw()
        ctx12 = self.client_ctx(alpn=["postgresql"])
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        t = self.negotiated_tls(gw, ctx12, "TLS 1.2")
        try:
            self.assertEqual(t.version(), "TLSv1.2")
            assert_logged_in(self, login_msgs(t), "TLS 1.2 session")
        finally:
            close_quietly(t)

        ctx11 = tls11_client_ctx()
        if ctx11 is None or not can_offer_tls11(self.certs):
            self.skipTest("the local OpenSSL cannot offer TLS 1.1 even at SECLEVEL=0")
        for ep in (self.pg_ref(), gw):
            with self.subTest(endpoint=ep.kind):
                t = None
                try:
                    t = self.negotiated_tls(ep, tls11_client_ctx(), "TLS 1.1")
                except (ssl.SSLError, ConnectionError) as e:
                    self.assertNotIsInstance(e, ssl.SSLCertVerificationError, repr(e))
                else:
                    version = t.version()
                    close_quietly(t)
                    self.fail("%s accepted a TLS 1.1-only client (negotiated %s)"
                              % (ep.kind, version))
        self.still_serves(gw)

    def test_gssencrequest_still_refused(self):
        """GSSENCRequest -> 'N'; the client may then ask for TLS on the same
        connection (libpq's order: GSS first, then SSL)."""
        gw = self.tls_gw()
        s = socket.create_connection((gw.host, gw.port), timeout=10)
        try:
            s.sendall(GSSENC_REQUEST)
            self.assertEqual(s.recv(1), b"N")
            s.sendall(SSL_REQUEST)
            self.assertEqual(s.recv(1), b"S")
            t = self.client_ctx(alpn=["postgresql"]).wrap_socket(s, server_hostname="localhost")
            s = t
            assert_logged_in(self, login_msgs(t), "TLS after a refused GSSENCRequest")
        finally:
            close_quietly(s)
        # and on the gateway without TLS, the same 'N'
        with socket.create_connection((self.plain_gw().host, self.plain_gw().port),
                                      timeout=10) as p:
            p.sendall(GSSENC_REQUEST)
            self.assertEqual(p.recv(1), b"N")

    def test_cancel_request_inside_tls(self):
        """A CancelRequest sent inside TLS (what libpq 17's PQcancelCreate does
        for a TLS session; PostgreSQL accepts it) cancels the query."""
        gw = self.tls_gw()
        ctx = self.client_ctx(alpn=["postgresql"])
        t = self.negotiated_tls(gw, ctx, "session")
        try:
            msgs = login_msgs(t)
            assert_logged_in(self, msgs, "session")
            body = [b for ty, b in msgs if ty == b"K"][0]
            pid, key = struct.unpack("!I", body[:4])[0], body[4:]
            q = b"SELECT pg_sleep(30)\0"
            t.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
            harness.wait_running("SELECT pg_sleep(30)")
            c = self.negotiated_tls(gw, ctx, "cancel connection")
            try:
                req = struct.pack("!II", CANCEL_CODE, pid) + key
                c.sendall(struct.pack("!I", len(req) + 4) + req)
                with contextlib.suppress(ssl.SSLError, OSError, AssertionError):
                    recv_until_eof(c, timeout=5)
            finally:
                close_quietly(c)
            t.settimeout(40)
            fields = None
            while True:
                ty, b = harness.read_message(t)
                if ty == b"E":
                    fields = harness.parse_error_fields(b)
                if ty == b"Z":
                    break
            self.assertIsNotNone(fields, "the query was not cancelled")
            self.assertEqual(fields["C"], "57014", fields)
        finally:
            close_quietly(t)

    # ==========================================================================
    # client certificates (--tls-ca)
    # ==========================================================================

    def test_client_certificate_accepted(self):
        c = self.certs
        gw = self.tls_gw(name="tls-ca", ca=True)
        for ep in (self.pg_ref(), gw):
            for cert, key in ((c.client_crt, c.client_key), (None, None)):
                with self.subTest(endpoint=ep.kind, client_cert=bool(cert)):
                    kw = {"sslcert": cert, "sslkey": key} if cert else {}
                    conn = ep.connect(sslmode="verify-full", sslrootcert=c.ca_crt,
                                      host="localhost", **kw)
                    try:
                        self.assertTrue(conn.info.ssl_in_use)
                        with conn.cursor() as cur:
                            cur.execute("SELECT 1")
                            self.assertEqual(cur.fetchone(), (1,))
                    finally:
                        conn.close()
        # raw: the server asks for a certificate; ours is verified and accepted
        t = self.negotiated_tls(gw, self.client_ctx(alpn=["postgresql"], cert=c.client_crt,
                                                    key=c.client_key), "client cert")
        try:
            assert_logged_in(self, login_msgs(t), "session with a client certificate")
        finally:
            close_quietly(t)

    def test_client_certificate_from_other_ca_rejected(self):
        c = self.certs
        gw = self.tls_gw(name="tls-ca", ca=True)
        errors = {}
        for ep in (self.pg_ref(), gw):
            with self.subTest(endpoint=ep.kind):
                try:
                    conn = ep.connect(sslmode="require", sslcert=c.other_client_crt,
                                      sslkey=c.other_client_key)
                except harness.psycopg2.OperationalError as e:
                    errors[ep.kind] = harness.mask_output(str(e)).strip()
                else:
                    conn.close()
                    self.fail("%s accepted a client certificate from an unrelated CA" % ep.kind)
        if len(errors) == 2:
            # libpq learns of the refusal from the server's TLS alert
            # ("SSL error: tlsv1 alert unknown ca"), not from a FATAL.
            self.assertIn("SSL error", errors["direct"])
            self.assertEqual(errors["direct"], errors["gateway"],
                             "postgres: %r\ngateway:  %r" % (errors["direct"], errors["gateway"]))
        # raw: the handshake (or the first read after it, in TLS 1.3) fails
        got = None
        try:
            t = self.negotiated_tls(gw, self.client_ctx(alpn=["postgresql"],
                                                        cert=c.other_client_crt,
                                                        key=c.other_client_key), "bad cert")
        except (ssl.SSLError, ConnectionError):
            pass
        else:
            try:
                with contextlib.suppress(OSError):
                    t.sendall(harness.startup_packet({"user": harness.SUPERUSER,
                                                      "database": harness.MAIN_DB}))
                try:
                    got = recv_until_eof(t)
                except (ssl.SSLError, OSError):
                    got = b""
            finally:
                close_quietly(t)
            self.assertEqual(got, b"", "a session with a bad client certificate got %r"
                             % got[:200])
        # Without --tls-ca no certificate is asked for: the same client gets in.
        conn = self.tls_gw().connect(sslmode="require", sslcert=c.other_client_crt,
                                     sslkey=c.other_client_key)
        try:
            self.assertTrue(conn.info.ssl_in_use)
        finally:
            conn.close()


# --------------------------------------------------------------------------
# TLS 1.1 capability of the local OpenSSL
# --------------------------------------------------------------------------


    def test_cert_method(self):
        """The cert method: a verified client certificate whose CN is the
        user logs in without a password; anything less is refused."""
        c = self.certs
        hba = os.path.join(self.env.tmp, "cert_hba.conf")
        with open(hba, "w") as f:
            f.write("hostssl all all 127.0.0.1/32 cert\nlocal all all trust\n")
        gw = self.gw(name="certauth", extra_args=["--tls-cert", c.server_crt, "--tls-key",
                                                   c.server_key, "--tls-ca", c.ca_crt,
                                                   "--hba", hba])
        conn = gw.connect(sslmode="verify-full", sslrootcert=c.ca_crt, host="localhost",
                          sslcert=c.client_crt, sslkey=c.client_key)
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            self.assertEqual(cur.fetchone()[0], harness.SUPERUSER)
        conn.close()
        # No certificate at all.
        with self.assertRaises(harness.psycopg2.OperationalError) as e:
            gw.connect(sslmode="verify-full", sslrootcert=c.ca_crt, host="localhost")
        self.assertIn("connection requires a valid client certificate", str(e.exception))
        # A good certificate, but for another user name.
        with self.assertRaises(harness.psycopg2.OperationalError) as e:
            gw.connect(sslmode="verify-full", sslrootcert=c.ca_crt, host="localhost",
                       sslcert=c.client_crt, sslkey=c.client_key, user="postgres")
        self.assertIn('certificate authentication failed for user "postgres"', str(e.exception))

def tls11_client_ctx():
    """A client context offering TLS 1.0-1.1 only, or None."""
    if not getattr(ssl, "HAS_TLSv1_1", False):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            return ctx
    except (ValueError, ssl.SSLError):
        return None


_TLS11_OK = None


def can_offer_tls11(certs):
    """Can this OpenSSL do a TLS 1.1 handshake at all (with itself)?"""
    global _TLS11_OK
    if _TLS11_OK is not None:
        return _TLS11_OK
    ok = False
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            sctx.minimum_version = ssl.TLSVersion.TLSv1
            sctx.maximum_version = ssl.TLSVersion.TLSv1_1
            sctx.load_cert_chain(certs.server_crt, certs.server_key)
        box = {}

        def serve():
            try:
                box["s"] = sctx.wrap_socket(a, server_side=True)
            except Exception as e:
                box["err"] = e
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            cs = tls11_client_ctx().wrap_socket(b)
            ok = cs.version() in ("TLSv1.1", "TLSv1")
        except Exception:
            ok = False
        th.join(5)
    except Exception:
        ok = False
    finally:
        close_quietly(a)
        close_quietly(b)
    _TLS11_OK = ok
    return ok

