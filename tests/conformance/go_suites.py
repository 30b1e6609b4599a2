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
side with the suites' usual environment variables. A test failing through
the gateway only is run again alone (-test.run '^Name$') directly, through
the gateway and through a second gateway in session mode. Writes one JSON
per suite (common.record).

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


def start_gateway(binary, pg, work, certs, mode="transaction"):
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
            "--auth-user", "postgres", "--pool-mode", mode]
    gw = common.Gateway(binary, args, os.path.join(work, "gateway-%s.log" % mode),
                        start_timeout=10)
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


def run_binary(work, binary, srcdir, env, timeout, log_path, only=None):
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
             "env HOME=\"$1\" \"$2\" tool test2json -t \"$3\" -test.v=true -test.timeout=%ds%s"
             % (timeout, " -test.run '^%s$'" % only if only else ""))
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
            raw, rc = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            raw, rc = e.stdout or b"", "timeout"
    events = []
    for line in raw.decode(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"Action": "output", "Output": line + "\n"})
    return events, time.monotonic() - t0, rc


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


PACKAGE_OF = {}   # (suite, test name prefix) -> package, for reruns


def run_package(work, built, certs, endpoint, suite, imp, short, extra, timeout, tag, only=None):
    """One test binary against ENDPOINT (host, port, sockdir): (status,
    output, seconds, error). A binary that ends badly (a panic before
    its tests, a timeout, a non-zero exit with no failed test) is an error:
    tests that never started are simply absent from STATUS."""
    prefix = "" if len(SUITES[suite]) == 1 else short + "."
    PACKAGE_OF[(suite, prefix)] = (imp, short, extra)
    if imp not in built:
        return {}, {}, 0.0, "%s: test binary did not build" % imp
    binary, srcdir = built[imp]
    host, port, sockdir = endpoint
    env = side_env(work, certs, host, port, sockdir, extra)
    logp = os.path.join(work, "%s-%s-%s.stderr" % (suite, short, tag))
    events, secs, rc = run_binary(work, binary, srcdir, env, timeout, logp, only)
    with open(os.path.join(work, "%s-%s-%s.json" % (suite, short, tag)), "w") as f:
        for ev in events:
            f.write(json.dumps(ev) + "\n")
    status, output = tally(events, prefix)
    error = None
    if rc == "timeout":
        error = "%s: timed out after %d s" % (short, timeout)
    elif not status:
        error = "%s: no test ran (exit %s): see %s" % (short, rc, logp)
    elif rc != 0 and "failed" not in status.values():
        tail = [ev.get("Output", "") for ev in events if ev.get("Action") == "output"][-5:]
        error = "%s: exit %s with no failed test: %s" % (short, rc, "".join(tail).strip()[-300:])
    return status, output, secs, error


def run_suite(name, built, work, certs, endpoints, timeout):
    res = {}
    for side, endpoint in endpoints.items():
        status, output, seconds, errors = {}, {}, 0.0, []
        for imp, short, extra in SUITES[name]:
            st, out, secs, err = run_package(work, built, certs, endpoint, name, imp, short,
                                             extra, timeout, side)
            status.update(st)
            output.update(out)
            seconds += secs
            if err:
                errors.append(err)
        res[side] = common.record(status, {t: first_error(o) for t, o in output.items()},
                                  seconds, "; ".join(errors) or None)
    return res


def rerun_tests(name, built, work, certs, endpoint, timeout, tests, side):
    """Each test alone (-test.run '^Name$') in its own package's binary."""
    status, reasons, seconds, errors = {}, {}, 0.0, []
    for t in tests:
        prefix, bare = (t.split(".", 1)[0] + ".", t.split(".", 1)[1]) if "." in t else ("", t)
        if (name, prefix) not in PACKAGE_OF:
            errors.append("%s: no package" % t)
            continue
        imp, short, extra = PACKAGE_OF[(name, prefix)]
        st, out, secs, err = run_package(work, built, certs, endpoint, name, imp, short, extra,
                                         timeout, "rerun-" + side, only=bare)
        seconds += secs
        if t in st:
            status[t] = st[t]
            reasons[t] = first_error(out.get(t, []))
        elif err:
            errors.append(err)
    return common.record(status, reasons, seconds, "; ".join(errors) or None)


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

    gws = {}
    try:
        endpoints = {}
        if "direct" in sides:
            endpoints["direct"] = ("127.0.0.1", a.pg_port, a.pg_socket_dir)
        if "gateway" in sides:
            for side, mode in (("gateway", "transaction"), ("session", "session")):
                gws[side], gwsock = start_gateway(a.gateway, pg, work, certs, mode)
                log("%s-mode gateway on 127.0.0.1:%d and %s" % (mode, gws[side].port, gwsock))
                endpoints[side] = ("127.0.0.1", gws[side].port, gwsock)
        for s in suites:
            res = run_suite(s, built, work, certs,
                            {k: v for k, v in endpoints.items() if k in SIDES}, a.timeout)
            for side in SIDES:
                if side in res:
                    log("%s %s: %d passed, %d failed, %d skipped in %s s%s" % (
                        s, side, res[side]["passed"], res[side]["failed"], res[side]["skipped"],
                        res[side]["seconds"], (": " + " ".join(res[side]["failed_tests"]))
                        if res[side]["failed"] else ""))
            common.add_reruns(res, lambda tests, side: rerun_tests(
                s, built, work, certs, endpoints[side], a.timeout, tests, side))
            for side, rec in sorted(res.get("rerun", {}).items()):
                log("%s rerun %s: %s" % (s, side, " ".join(
                    "%s=%s" % kv for kv in sorted(rec["tests"].items()))))
            common.write_json(os.path.join(a.out_dir, s + ".json"), res)
    finally:
        for gw in gws.values():
            note = gw.stop()
            if note:
                log("WARNING: " + note)
    log("done in %.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
