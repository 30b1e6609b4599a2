#!/usr/bin/python3
"""Go drivers' own test suites, run directly against PostgreSQL and through
multigateway: lib/pq (text and binary parameters), pgx v4 (with pgxpool and
stdlib) and pgconn, all from Debian's golang-*-dev packages.

Given a running PostgreSQL (TCP port and Unix socket dir), this sets up what
the suites expect (databases, roles with md5 / SCRAM / cleartext passwords,
TLS certificates made with openssl, pg_hba rules, ssl=on), starts its own
gateway in front of it with the same rules (TLS, an hba file, secrets read
from pg_authid, a Unix socket), compiles each package's test binary once
(GOPATH mode, offline, caches in the work dir) and runs it against each
side with the suites' usual environment variables. Writes one JSON per
suite: {side: {passed, failed, skipped, failed_tests, reasons, seconds}}.

    go_suites.py --pg-port P --pg-socket-dir D --gateway BIN --work DIR --out-dir DIR
"""
import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
GOCODE = "/usr/share/gocode/src"
SIDES = ("direct", "gateway")
PASSWORD = "secret"

# suite name -> [(import path, short name, extra environment)]
SUITES = {
    "go-lib-pq": [("github.com/lib/pq", "pq", {"PQTEST_BINARY_PARAMETERS": "no"})],
    "go-lib-pq-binary": [("github.com/lib/pq", "pq", {"PQTEST_BINARY_PARAMETERS": "yes"})],
    "go-pgx-v4": [("github.com/jackc/pgx/v4", "pgx", {}),
                  ("github.com/jackc/pgx/v4/pgxpool", "pgxpool", {}),
                  ("github.com/jackc/pgx/v4/stdlib", "stdlib", {})],
    "go-pgconn": [("github.com/jackc/pgconn", "pgconn", {})],
}

# Gateway-only failures we have analysed: (suite, test) -> why. Anything
# failing through the gateway only and not listed here is reported as
# unexplained, with the head of its output.
POOLING = "transaction pooling (by design): "
KNOWN = {
    ("go-lib-pq", "TestPing"):
        POOLING + "the test kills its backend with pg_terminate_backend() and expects "
        "the next query on that connection to fail; through the gateway the client "
        "never owned that backend, its next statement runs on another server connection",
    ("go-lib-pq-binary", "TestPing"):
        POOLING + "the test kills its backend with pg_terminate_backend() and expects "
        "the next query on that connection to fail; through the gateway the client "
        "never owned that backend, its next statement runs on another server connection",
}

for _suite in ("go-pgx-v4",):
    for _t in ("pgx.TestFatalRxError", "pgx.TestFatalTxError"):
        KNOWN[(_suite, _t)] = (
            POOLING + "the test calls pg_terminate_backend() on the pid its connection "
            "was told in BackendKeyData and expects the connection to die; in transaction "
            "mode that pid names the client in the gateway, not a server process")
# Failures recognised by what the test printed: suite prefix, text, why.
KNOWN_OUTPUT = [
    ("go-pgx", "cached plan must not change result type",
     "0A000 'cached plan must not change result type' after a schema change the "
     "gateway did not see (a statement parsed after DDL the gateway saw gets a fresh "
     "server statement, see src/pooler/stmtcache.h)"),
]


log = common.logger("go-suites")


def run(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run(argv, **kw)


def chown_tree(path, user):
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


# ------------------------------------------------------------------ setup

def make_certs(d):
    """A CA, a bogus CA, a server certificate for the name "postgres" (SAN:
    Go checks no CN) and a client certificate for the role pqgosslcert, as
    lib/pq's SSL tests expect."""
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        run(["openssl"] + list(args), cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    for ca in ("root", "bogus_root"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
             "/CN=%s test CA" % ca, "-keyout", ca + ".key", "-out", ca + ".crt",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:postgres\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, cn, ext in (("server", "postgres", "server.ext"),
                          ("postgresql", "pqgosslcert", "client.ext")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
             "-keyout", name + ".key", "-out", name + ".csr")
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "root.crt", "-CAkey", "root.key",
             "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", name + ".crt")
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o600 if n.endswith(".key") else 0o644)


# Rules shared by PostgreSQL and the gateway, before PostgreSQL's own
# (trust) lines. lib/pq: pqgossltest only over TLS (trust), pqgosslcert
# only over TLS with a client certificate. pgx: one role per login method;
# cleartext password only over TLS (the gateway refuses it in the clear, and
# the suite's connection string asks for TLS on both sides).
HBA_RULES = """\
local     all all                        trust
hostnossl all pqgossltest 127.0.0.1/32   reject
hostnossl all pqgosslcert 127.0.0.1/32   reject
hostssl   all pqgossltest 127.0.0.1/32   trust
hostssl   all pqgosslcert 127.0.0.1/32   cert
host      all pgx_md5     127.0.0.1/32   md5
host      all pgx_pw      127.0.0.1/32   password
host      all pgx_scram   127.0.0.1/32   scram-sha-256
hostnossl all pgx_ssl     127.0.0.1/32   reject
hostssl   all pgx_ssl     127.0.0.1/32   scram-sha-256
"""
GATEWAY_HBA_TAIL = "host      all all         127.0.0.1/32   trust\n"


class Pg:
    def __init__(self, port, sockdir):
        self.port, self.sockdir = port, sockdir

    def psql(self, sql, db="postgres", check=True):
        r = run([os.path.join(PGBIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
                 "-h", self.sockdir, "-p", str(self.port), "-U", "postgres", "-d", db,
                 "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                check=False)
        if check and r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stderr.strip()))
        return r.stdout.strip()


def setup_postgres(pg, work, certs):
    """Server TLS and hba rules (reload; nothing needs a restart), roles and
    databases."""
    pgcerts = os.path.join(work, "pgcerts")
    os.makedirs(pgcerts, exist_ok=True)
    for n in ("server.crt", "server.key", "root.crt"):
        shutil.copy(os.path.join(certs, n), pgcerts)
    os.chmod(os.path.join(pgcerts, "server.key"), 0o600)
    chown_tree(pgcerts, "postgres")
    hba = pg.psql("SHOW hba_file")
    with open(hba) as f:
        old = f.read()
    if HBA_RULES not in old:
        with open(hba, "w") as f:
            f.write(HBA_RULES + old)
    pg.psql("ALTER SYSTEM SET ssl = on")
    pg.psql("ALTER SYSTEM SET ssl_cert_file = '%s'" % os.path.join(pgcerts, "server.crt"))
    pg.psql("ALTER SYSTEM SET ssl_key_file = '%s'" % os.path.join(pgcerts, "server.key"))
    pg.psql("ALTER SYSTEM SET ssl_ca_file = '%s'" % os.path.join(pgcerts, "root.crt"))
    pg.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    if pg.psql("SHOW ssl") != "on":
        raise RuntimeError("PostgreSQL did not turn ssl on (see its log)")

    roles = [("pqgossltest", None, ""), ("pqgosslcert", None, ""),
             ("pgx_md5", "md5", "SUPERUSER"), ("pgx_pw", "scram-sha-256", "SUPERUSER"),
             ("pgx_scram", "scram-sha-256", "SUPERUSER"),
             ("pgx_ssl", "scram-sha-256", "SUPERUSER")]
    for name, enc, attrs in roles:
        pg.psql("DROP ROLE IF EXISTS %s" % name)
        pw = ""
        if enc:
            pw = "PASSWORD '%s'" % PASSWORD
            pg.psql("SET password_encryption = '%s'; CREATE ROLE %s LOGIN %s %s"
                    % (enc, name, attrs, pw))
        else:
            pg.psql("CREATE ROLE %s LOGIN" % name)
    for db in ("pqgotest", "pgx_test"):
        pg.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        pg.psql("CREATE DATABASE %s" % db)
    pg.psql("CREATE EXTENSION hstore", db="pgx_test")
    pg.psql("CREATE DOMAIN uint64 AS numeric(20,0)", db="pgx_test")


def start_gateway(binary, pg, work, certs):
    sockdir = os.path.join(work, "gwsock")
    os.makedirs(sockdir, exist_ok=True)
    os.chmod(sockdir, 0o777)
    hba = os.path.join(work, "gateway_hba.conf")
    with open(hba, "w") as f:
        f.write(HBA_RULES + GATEWAY_HBA_TAIL)
    # The server connections go through PostgreSQL's Unix socket, where
    # its rules trust everyone: client authentication is the gateway's.
    args = ["--socket-dir", sockdir,
            "--backend", "host=%s port=%d" % (pg.sockdir, pg.port), "--workers", "2",
            "--pool-size", "40", "--tls-cert", os.path.join(certs, "server.crt"),
            "--tls-key", os.path.join(certs, "server.key"),
            "--tls-ca", os.path.join(certs, "root.crt"), "--hba", hba,
            "--auth-user", "postgres"]
    gw = common.Gateway(binary, args, os.path.join(work, "gateway.log"), start_timeout=10)
    return gw.start(), sockdir


# ------------------------------------------------------------------ build

def go_env(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "PG", "PQ"))}
    # GOPATH mode, as Debian builds these packages: every dependency is in
    # /usr/share/gocode already; nothing is fetched, nothing outside work is
    # written.
    env.update(GO111MODULE="off", GOFLAGS="", GOPROXY="off", GOTOOLCHAIN="local",
               GOPATH="%s:%s" % (os.path.join(work, "gopath"), os.path.dirname(GOCODE)),
               GOCACHE=os.path.join(work, "gocache"), HOME=work)
    return env


def build(work, pkgs):
    """Copies each package's source into the work GOPATH, compiles its test
    binary once. Returns {import path: (binary, source dir)} and build errors."""
    env = go_env(work)
    out, errors = {}, {}
    for imp in pkgs:
        src = os.path.join(GOCODE, imp)
        dst = os.path.join(work, "gopath", "src", imp)
        if not os.path.isdir(dst):
            shutil.copytree(src, dst, symlinks=True)
        binary = os.path.join(work, "bin", imp.replace("/", "_") + ".test")
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        t0 = time.monotonic()
        r = run(["go", "test", "-c", "-o", binary, "."], cwd=dst, env=env, check=False,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            errors[imp] = r.stdout[-3000:]
            log("build %s FAILED:\n%s" % (imp, r.stdout[-3000:]))
            continue
        log("built %s in %.1f s" % (imp, time.monotonic() - t0))
        out[imp] = (binary, dst)
    return out, errors


# ------------------------------------------------------------------ run

def side_env(work, certs, host, port, sockdir, extra):
    env = go_env(work)
    env.update(extra)
    db = "database=pgx_test"
    tcp = "host=127.0.0.1 port=%d %s" % (port, db)
    if "PQTEST_BINARY_PARAMETERS" in extra:
        # lib/pq: the libpq variables (pgconn's config tests would see them)
        env.update({"PGHOST": host, "PGPORT": str(port), "PGUSER": "postgres",
                    "PGDATABASE": "pqgotest", "PGSSLMODE": "disable",
                    "PGCONNECT_TIMEOUT": "20", "PQGOSSLTESTS": "1",
                    "PQSSLCERTTEST_PATH": certs})
        return env
    env.update({
        # pgx (PGX_TEST_DATABASE) and pgconn (PGX_TEST_CONN_STRING) over
        # the Unix socket, as pgx's own setup does; one connection string
        # per login method.
        "PGX_TEST_DATABASE": "host=%s port=%d user=postgres %s" % (sockdir, port, db),
        "PGX_TEST_CONN_STRING": "host=%s port=%d user=postgres %s" % (sockdir, port, db),
        "PGX_TEST_UNIX_SOCKET_CONN_STRING": "host=%s port=%d user=postgres %s" % (sockdir, port, db),
        "PGX_TEST_TCP_CONN_STRING": "%s user=pgx_md5 password=%s sslmode=disable" % (tcp, PASSWORD),
        "PGX_TEST_MD5_PASSWORD_CONN_STRING": "%s user=pgx_md5 password=%s sslmode=disable" % (tcp, PASSWORD),
        "PGX_TEST_SCRAM_PASSWORD_CONN_STRING": "%s user=pgx_scram password=%s sslmode=disable" % (tcp, PASSWORD),
        "PGX_TEST_PLAIN_PASSWORD_CONN_STRING": "%s user=pgx_pw password=%s sslmode=require" % (tcp, PASSWORD),
        "PGX_TEST_TLS_CONN_STRING": "%s user=pgx_ssl password=%s sslmode=require" % (tcp, PASSWORD),
        "PGX_TEST_PGBOUNCER_CONN_STRING": "%s user=postgres sslmode=disable" % tcp,
    })
    return env


def run_binary(work, binary, srcdir, env, timeout, log_path):
    """Runs a test binary as the postgres OS user (lib/pq refuses a client key
    owned by another user, one test checks behaviour as non-root) in a private
    mount namespace where /etc/hosts also names 127.0.0.1 "postgres" (lib/pq's
    verify-full tests connect to host=postgres). Returns test2json events."""
    hosts = os.path.join(work, "hosts")
    if not os.path.exists(hosts):
        with open("/etc/hosts") as f:
            text = f.read()
        with open(hosts, "w") as f:
            f.write(text + "\n127.0.0.1 postgres\n")
    inner = ("mount --bind \"$0\" /etc/hosts && exec runuser -u postgres -- "
             "env HOME=\"$1\" \"$2\" tool test2json -t \"$3\" -test.v=true -test.timeout=%ds"
             % timeout)
    goroot = run(["go", "env", "GOROOT"], stdout=subprocess.PIPE, text=True,
                 env=env).stdout.strip()
    gobin = os.path.join(goroot, "bin", "go")
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, hosts, work,
            gobin, binary]
    t0 = time.monotonic()
    with open(log_path, "w") as lf:
        try:
            r = subprocess.run(argv, cwd=srcdir, env=env, stdout=subprocess.PIPE, stderr=lf,
                               timeout=timeout + 60, start_new_session=True)
            raw = r.stdout
        except subprocess.TimeoutExpired as e:
            raw = e.stdout or b""
    events = []
    for line in raw.decode(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"Action": "output", "Output": line + "\n"})
    return events, time.monotonic() - t0


def tally(events, prefix):
    """Top-level tests: name -> (status, output lines). Subtests fold into
    their test; a test that started and never ended failed (panic, timeout)."""
    status, output = {}, {}
    for ev in events:
        name = ev.get("Test")
        if not name:
            continue
        top = name.split("/")[0]
        key = prefix + top
        act = ev.get("Action")
        if act == "run" and name == top:
            status.setdefault(key, None)
        elif act == "output":
            output.setdefault(key, []).append(ev.get("Output", ""))
        elif act in ("pass", "fail", "skip") and name == top:
            status[key] = {"pass": "passed", "fail": "failed", "skip": "skipped"}[act]
    for k, v in status.items():
        if v is None:
            status[k] = "failed"
            output.setdefault(k, []).append("(never finished: the binary panicked or timed out)\n")
    return status, output


def first_error(lines):
    """The lines that say why a test failed (Go's file:line messages)."""
    keep = [l.strip() for l in lines
            if l.strip() and not l.lstrip().startswith(("=== ", "--- ", "PASS", "FAIL"))]
    text = " | ".join(keep)
    return text[:400] if text else "(no output)"


def run_suite(name, built, work, certs, endpoints, timeout):
    res = {}
    statuses = {}
    outputs = {}
    for side, (host, port, sockdir) in endpoints.items():
        status, output, seconds = {}, {}, 0.0
        for imp, short, extra in SUITES[name]:
            prefix = "" if len(SUITES[name]) == 1 else short + "."
            if imp not in built:
                status[prefix + "(build)"] = "failed"
                output[prefix + "(build)"] = ["test binary did not build"]
                continue
            binary, srcdir = built[imp]
            env = side_env(work, certs, host, port, sockdir, extra)
            logp = os.path.join(work, "%s-%s-%s.stderr" % (name, short, side))
            events, secs = run_binary(work, binary, srcdir, env, timeout, logp)
            with open(os.path.join(work, "%s-%s-%s.json" % (name, short, side)), "w") as f:
                for ev in events:
                    f.write(json.dumps(ev) + "\n")
            seconds += secs
            st, out = tally(events, prefix)
            if not st:
                st = {prefix + "(run)": "failed"}
                out = {prefix + "(run)": ["no test ran: see %s" % logp]}
            status.update(st)
            output.update(out)
        statuses[side], outputs[side] = status, output
        failed = sorted(t for t, v in status.items() if v == "failed")
        res[side] = {"passed": sum(1 for v in status.values() if v == "passed"),
                     "failed": len(failed),
                     "skipped": sum(1 for v in status.values() if v == "skipped"),
                     "failed_tests": failed, "seconds": round(seconds, 1), "reasons": {}}
    d = statuses.get("direct", {})
    for side in res:
        for t in res[side]["failed_tests"]:
            if side == "gateway" and d.get(t) == "failed":
                why = "fails directly too: " + first_error(outputs[side].get(t, []))
            elif side == "gateway" and (name, t) in KNOWN:
                why = KNOWN[(name, t)]
            elif side == "gateway" and any(
                    name.startswith(p) and text in "".join(outputs[side].get(t, []))
                    for p, text, _ in KNOWN_OUTPUT):
                why = next(w for p, text, w in KNOWN_OUTPUT
                           if name.startswith(p) and text in "".join(outputs[side].get(t, [])))
            elif side == "gateway":
                why = "not analysed: " + first_error(outputs[side].get(t, []))
            else:
                why = first_error(outputs[side].get(t, []))
            res[side]["reasons"][t] = why
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--pg-socket-dir", required=True)
    ap.add_argument("--gateway", help="multigateway binary (omit: direct only)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--suite", action="append", choices=sorted(SUITES),
                    help="run only these (default: all)")
    ap.add_argument("--side", action="append", choices=SIDES, help="default: both")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test binary run")
    a = ap.parse_args()
    suites = a.suite or sorted(SUITES)
    sides = a.side or list(SIDES)
    if "gateway" in sides and not a.gateway:
        sides.remove("gateway")
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    os.makedirs(a.out_dir, exist_ok=True)
    certs = os.path.join(work, "certs")

    t0 = time.monotonic()
    pkgs = sorted({imp for s in suites for imp, _, _ in SUITES[s]})
    built, _ = build(work, pkgs)
    make_certs(certs)
    pg = Pg(a.pg_port, a.pg_socket_dir)
    setup_postgres(pg, work, certs)
    chown_tree(work, "postgres")
    os.chmod(work, 0o755)

    gw = None
    try:
        endpoints = {}
        if "direct" in sides:
            endpoints["direct"] = ("127.0.0.1", a.pg_port, a.pg_socket_dir)
        if "gateway" in sides:
            gw, gwsock = start_gateway(a.gateway, pg, work, certs)
            log("gateway on 127.0.0.1:%d and %s" % (gw.port, gwsock))
            endpoints["gateway"] = ("127.0.0.1", gw.port, gwsock)
        for s in suites:
            res = run_suite(s, built, work, certs, endpoints, a.timeout)
            common.write_json(os.path.join(a.out_dir, s + ".json"), res)
            for side in res:
                log("%s %s: %d passed, %d failed, %d skipped in %s s%s" % (
                    s, side, res[side]["passed"], res[side]["failed"], res[side]["skipped"],
                    res[side]["seconds"],
                    (": " + " ".join(res[side]["failed_tests"])) if res[side]["failed"] else ""))
    finally:
        note = gw.stop() if gw is not None else None
        if note:
            log("WARNING: " + note)
    log("done in %.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
