#!/usr/bin/python3
"""Message-level differential replay with pgpool-II's pgproto.

Every script in pgproto/ (pgproto's own input format, one scenario each) is
replayed once against PostgreSQL and once through a gateway this runner
starts in front of it. pgproto connects through a small recording relay, so
a transcript has two parts: pgproto's own account (FE=> / <= BE lines: the
message kinds, tags and error fields) and the relay's decoding of every
byte the server side sent (row descriptions, row values, parameter status,
copy data, function results), which pgproto itself does not print.

A script passes directly when pgproto completes it (the exit status its
header expects, no script or protocol failure); through the gateway it
passes only when its normalised transcript equals the direct one.

    pgproto.py --direct-port PORT [--gateway BINARY] [--session-port PORT]
               --work DIR --out FILE [--cache DIR] [--only NAME ...] [--jobs N]

A script failing through the gateway only is replayed again alone on each
side (and through the session-mode gateway at --session-port), the gateway's
transcripts compared with the rerun's direct one (common.add_reruns).

pgproto comes out of Debian's pgpool2 package: `apt-get download pgpool2`
into the cache and `dpkg -x` (the pgpool service is never installed).

Script headers (comment lines pgproto itself ignores):
    #! user=NAME          connect as NAME (default postgres)
    #! database=NAME      connect to NAME (default: the run's own database)
    #! env NAME=VALUE     libpq environment for pgproto (PGOPTIONS, PGTZ ...)
    #! exit=N             pgproto's expected exit status (default 0; 1 when
                          the server refuses the connection or closes it)
"""
import argparse
import difflib
import glob
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "pgproto")
PSQL = "/usr/lib/postgresql/15/bin/psql"
SIDES = ("direct", "gateway")
RUN_TIMEOUT = 30
ROLE = "pgproto_role"
DIFF_LINES = 12

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


log = common.logger("pgproto", stamp=False)


# ------------------------------------------------------------------ pgproto

def fetch_pgproto(cache):
    """pgproto out of the pgpool2 .deb (dpkg -x, never installed)."""
    exe = os.path.join(cache, "root", "usr", "sbin", "pgproto")
    if not os.path.exists(exe):
        os.makedirs(cache, exist_ok=True)
        debs = glob.glob(os.path.join(cache, "pgpool2_*.deb"))
        if not debs:
            log("apt-get download pgpool2 into %s" % cache)
            r = subprocess.run(["apt-get", "download", "pgpool2"], cwd=cache,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            debs = glob.glob(os.path.join(cache, "pgpool2_*.deb"))
            if not debs:
                # the package lists may simply be missing on a fresh machine
                subprocess.run(["apt-get", "update", "-qq"], check=False)
                r = subprocess.run(["apt-get", "download", "pgpool2"], cwd=cache,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                debs = glob.glob(os.path.join(cache, "pgpool2_*.deb"))
            if not debs:
                sys.stderr.write(r.stdout)
                raise SystemExit("apt-get download pgpool2 failed")
        subprocess.run(["dpkg", "-x", sorted(debs)[-1], os.path.join(cache, "root")], check=True)
        if not os.path.exists(exe):
            raise SystemExit("no usr/sbin/pgproto in %s" % debs[-1])
    # pgproto links only libpq (and libc); libpq5 is the one to make sure of
    ldd = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, text=True).stdout
    if "not found" in ldd:
        log("installing libpq5 for pgproto")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libpq5"],
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), check=True)
    return exe


# ------------------------------------------------------------------ scripts

def read_script(path):
    hdr = {"user": "postgres", "database": None, "env": {}, "exit": 0}
    with open(path) as f:
        for line in f:
            if not line.startswith("#!"):
                continue
            body = line[2:].strip()
            if body.startswith("env "):
                k, v = body[4:].split("=", 1)
                hdr["env"][k.strip()] = v.strip()
            elif "=" in body:
                k, v = body.split("=", 1)
                k = k.strip()
                if k not in ("user", "database", "exit"):
                    raise SystemExit("%s: unknown header %r" % (path, k))
                hdr[k] = int(v) if k == "exit" else v.strip()
    return hdr


# ------------------------------------------------------------------ relay

class Relay:
    """Accepts pgproto's connections on a free port and passes the bytes to
    the target unchanged, keeping a copy of each direction."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns = []          # [to_server bytearray, to_client bytearray]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        self.pumps = []

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = [bytearray(), bytearray()]
            self.conns.append(rec)
            t = threading.Thread(target=self._pump, args=(c, rec), daemon=True)
            t.start()
            self.pumps.append(t)

    def _pump(self, c, rec):
        try:
            s = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            c.close()
            return
        s.settimeout(None)
        peer = {c: s, s: c}
        buf = {c: rec[0], s: rec[1]}
        open_ = {c, s}
        while open_:
            r, _, _ = select.select(list(open_), [], [], RUN_TIMEOUT)
            if not r:
                break
            for x in r:
                try:
                    data = x.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    open_.discard(x)
                    try:
                        peer[x].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                buf[x] += data
                try:
                    peer[x].sendall(data)
                except OSError:
                    open_.discard(x)
        c.close()
        s.close()

    def close(self):
        self.stopping = True
        for t in self.pumps:
            t.join(RUN_TIMEOUT)
        self.thread.join(2)
        self.sock.close()


# ------------------------------------------------------------------ decoding

def cstr(body, i):
    j = body.index(b"\0", i)
    return body[i:j].decode("utf-8", "backslashreplace"), j + 1


def show_bytes(b):
    try:
        t = b.decode("utf-8")
    except UnicodeDecodeError:
        return "x'" + b.hex() + "'"
    if all(ch.isprintable() or ch in "\t\n" for ch in t):
        return repr(t)
    return "x'" + b.hex() + "'"


def error_fields(body):
    out, i = [], 0
    while i < len(body) and body[i] != 0:
        t = chr(body[i])
        v, i = cstr(body, i + 1)
        out.append((t, v))
    return out


# Field codes PostgreSQL sets from where in its source an error was raised.
SOURCE_FIELDS = ("F", "L", "R")


def decode_server(data, sent_ssl_request, norm):
    """Backend stream -> transcript lines. norm collects what was
    normalised (own pid, so notifications can be told apart)."""
    lines, i = [], 0
    if sent_ssl_request and data:
        lines.append("SSLRequest answer %r" % chr(data[0]))
        i = 1
    startup_params = []
    in_startup = True
    while i + 5 <= len(data):
        kind = chr(data[i])
        ln = struct.unpack("!I", data[i + 1:i + 5])[0]
        body = bytes(data[i + 5:i + 1 + ln])
        if len(body) < ln - 4:
            lines.append("truncated %s message (%d of %d bytes)" % (kind, len(body), ln - 4))
            break
        i += 1 + ln
        if kind == "S":
            name, j = cstr(body, 0)
            val, _ = cstr(body, j)
            if in_startup:
                startup_params.append((name, val))
                continue
            lines.append("ParameterStatus %s=%s" % (name, val))
        elif kind == "K":
            # every connection has its own pid and key; the gateway makes its own
            norm["own_pid"] = struct.unpack("!I", body[:4])[0]
            lines.append("BackendKeyData pid=<pid> key=<%d bytes>" % (len(body) - 4))
        elif kind == "R":
            lines.append("Authentication %d" % struct.unpack("!I", body[:4])[0])
        elif kind == "Z":
            if in_startup:
                # ParameterStatus order at startup is not part of the protocol
                for name, val in sorted(startup_params):
                    lines.append("ParameterStatus %s=%s" % (name, val))
                in_startup = False
            lines.append("ReadyForQuery %s" % chr(body[0]))
        elif kind == "T":
            n = struct.unpack("!H", body[:2])[0]
            j, cols = 2, []
            for _ in range(n):
                name, j = cstr(body, j)
                toid, att, typ, tlen, tmod, fmt = struct.unpack("!IhIhih", body[j:j + 18])
                j += 18
                # tables are created by each run in its own database: their
                # OIDs differ between the two runs whatever the gateway does
                cols.append("%s(table=%s att=%d type=%d len=%d mod=%d fmt=%d)" % (
                    name, "<oid>" if toid else "0", att, typ, tlen, tmod, fmt))
            lines.append("RowDescription " + ", ".join(cols))
        elif kind == "D":
            n = struct.unpack("!H", body[:2])[0]
            j, vals = 2, []
            for _ in range(n):
                vl = struct.unpack("!i", body[j:j + 4])[0]
                j += 4
                if vl < 0:
                    vals.append("NULL")
                else:
                    vals.append(show_bytes(body[j:j + vl]))
                    j += vl
            lines.append("DataRow " + ", ".join(vals))
        elif kind in "EN":
            f = error_fields(body)
            code = dict(f).get("C")
            if code in norm.get("drop_source_fields_for", ()):
                f = [(t, v) for t, v in f if t not in SOURCE_FIELDS]
            lines.append("%s %s" % ("ErrorResponse" if kind == "E" else "NoticeResponse",
                                    " ".join("%s=%r" % (t, v) for t, v in f)))
        elif kind == "C":
            lines.append("CommandComplete %s" % cstr(body, 0)[0])
        elif kind == "A":
            pid = struct.unpack("!I", body[:4])[0]
            ch, j = cstr(body, 4)
            payload, _ = cstr(body, j)
            lines.append("NotificationResponse pid=%s channel=%s payload=%r" % (
                pid_name(pid, norm), ch, payload))
        elif kind == "t":
            n = struct.unpack("!H", body[:2])[0]
            oids = struct.unpack("!%dI" % n, body[2:2 + 4 * n])
            lines.append("ParameterDescription %s" % list(oids))
        elif kind in "GHW":
            fmt, n = struct.unpack("!bH", body[:3])
            cols = struct.unpack("!%dh" % n, body[3:3 + 2 * n])
            lines.append("%s format=%d columns=%s" % (
                {"G": "CopyInResponse", "H": "CopyOutResponse", "W": "CopyBothResponse"}[kind],
                fmt, list(cols)))
        elif kind == "d":
            lines.append("CopyData %s" % show_bytes(body))
        elif kind == "V":
            vl = struct.unpack("!i", body[:4])[0]
            lines.append("FunctionCallResponse %s" % ("NULL" if vl < 0 else show_bytes(body[4:4 + vl])))
        elif kind == "v":
            minor, n = struct.unpack("!II", body[:8])
            lines.append("NegotiateProtocolVersion minor=%d options=%d" % (minor, n))
        else:
            names = {"1": "ParseComplete", "2": "BindComplete", "3": "CloseComplete",
                     "I": "EmptyQueryResponse", "n": "NoData", "s": "PortalSuspended",
                     "c": "CopyDone"}
            lines.append(names.get(kind, "message %r" % kind) + ("" if not body else " " + show_bytes(body)))
    if i < len(data):
        lines.append("%d trailing bytes" % (len(data) - i))
    return lines


def pid_name(pid, norm):
    # A process id differs between any two runs; what a client can rely on
    # is whether a notification came from its own session or another one.
    if pid == norm.get("own_pid"):
        return "<own>"
    return "<other>"


def client_sent_ssl_request(data):
    if len(data) >= 8:
        ln, code = struct.unpack("!II", bytes(data[:8]))
        return ln == 8 and code in (SSL_REQUEST, GSSENC_REQUEST)
    return False


# ------------------------------------------------------------------ one run

def run_one(exe, script, hdr, side, port, dbname, work):
    relay = Relay(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGGSSENCMODE": "disable", "PGCONNECT_TIMEOUT": "10", "LC_ALL": "C"})
    env.update(hdr["env"])
    db = hdr["database"] or dbname
    argv = [exe, "-h", "127.0.0.1", "-p", str(relay.port), "-u", hdr["user"], "-d", db, "-f", script]
    t0 = time.monotonic()
    timed_out = False
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=RUN_TIMEOUT)
        out, rc = r.stdout.decode("utf-8", "backslashreplace"), r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc, timed_out = (e.stdout or b"").decode("utf-8", "backslashreplace"), None, True
    relay.close()
    secs = time.monotonic() - t0

    norm = {"drop_source_fields_for": ("42P05",)}
    backend = []
    for n, (to_server, to_client) in enumerate(relay.conns):
        if len(relay.conns) > 1:
            backend.append("connection %d" % (n + 1))
        backend += decode_server(to_client, client_sent_ssl_request(to_server), norm)

    lines = ["# pgproto"]
    for line in out.replace("\r", "").split("\n"):
        line = line.rstrip()
        # the relay's port and the run's own database name are per run
        line = re.sub(r"port=\d+", "port=<port>", line)
        line = line.replace("dbname=%s " % dbname, "dbname=<db> ")
        m = re.search(r"Notification response\. pid: (\d+)", line)
        if m:
            line = line.replace("pid: " + m.group(1), "pid: " + pid_name(int(m.group(1)), norm))
        # pgproto prints the fields of an error as it got them: the same
        # source-location fields as the relay drops for documented cases
        if "ErrorResponse(" in line and " C 42P05 " in line:
            line = re.sub(r" ([FLR]) [^ ]+(?= [A-Za-z] |\s*\)$)", "", line)
        lines.append(line)
    while lines and lines[-1] == "":
        lines.pop()
    lines.append("# exit %s" % ("timeout" if timed_out else rc))
    lines.append("# backend")
    lines += backend
    with open(os.path.join(work, "%s.%s.txt" % (os.path.basename(script)[:-len(".pgproto")], side)), "w") as f:
        f.write("\n".join(lines) + "\n")

    problem = None
    if timed_out:
        problem = "timed out after %d s" % RUN_TIMEOUT
    elif rc != hdr["exit"]:
        problem = "pgproto exit %s, expected %d: %s" % (rc, hdr["exit"], out.strip()[-300:])
    else:
        for bad in ("buffer_read_", "process_a_line:", "Unknown kind", "too many", "Too many"):
            if bad in out:
                problem = "pgproto could not read the script: " + out.strip()[-300:]
        if hdr["exit"] == 0 and "EOF detected" in out:
            problem = "the server closed the connection: " + out.strip()[-300:]
    return lines, problem, secs


# ------------------------------------------------------------------ sides

def psql(port, sql, db="postgres"):
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                    "-U", "postgres", "-d", db, "-c", sql], check=True,
                   env=common.psql_env(PGOPTIONS="-c client_min_messages=warning"))


def prepare_databases(direct_port, sides):
    psql(direct_port, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') "
                      "THEN CREATE ROLE %s LOGIN; END IF; END$$" % (ROLE, ROLE))
    for side in sides:
        db = "pgproto_" + side
        psql(direct_port, "DROP DATABASE IF EXISTS %s" % db)
        psql(direct_port, "CREATE DATABASE %s" % db)
        psql(direct_port, "GRANT ALL ON SCHEMA public TO %s" % ROLE, db=db)


def first_difference(a, b):
    d = list(difflib.unified_diff(a, b, "direct", "gateway", n=1, lineterm=""))
    return " | ".join(d[2:2 + DIFF_LINES])


def run_side(exe, scripts, side, port, work, jobs):
    """SCRIPTS against PORT in the database pgproto_SIDE; transcripts in
    WORK/NAME.SIDE.txt."""
    t0 = time.monotonic()
    db = "pgproto_" + side
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = {name: pool.submit(run_one, exe, path, read_script(path), side, port, db, work)
                for name, path in scripts}
        res = {name: f.result() for name, f in futs.items()}
    return res, round(time.monotonic() - t0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct-port", type=int, required=True)
    ap.add_argument("--gateway", help="multigateway binary to start in front of PostgreSQL")
    ap.add_argument("--gateway-port", type=int, help="an already running gateway instead")
    ap.add_argument("--session-port", type=int,
                    help="a gateway in session mode, for rerunning the gateway-only failures")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=os.path.join(HERE, ".cache", "pgproto"))
    ap.add_argument("--only", nargs="*", help="script names (without .pgproto)")
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--no-direct-report", action="store_true",
                    help="run the direct side as the reference only, report the gateway")
    a = ap.parse_args()

    os.makedirs(a.work, exist_ok=True)
    exe = fetch_pgproto(a.cache)
    scripts = sorted((os.path.basename(p)[:-len(".pgproto")], p)
                     for p in glob.glob(os.path.join(CORPUS, "*.pgproto")))
    if a.only:
        scripts = [(n, p) for n, p in scripts if n in a.only]
    if not scripts:
        raise SystemExit("no scripts")
    prepare_databases(a.direct_port, SIDES)

    out = {}
    direct, secs = run_side(exe, scripts, "direct", a.direct_port, a.work, a.jobs)
    failed = {n: why for n, (_, why, _) in direct.items() if why}
    if not a.no_direct_report:
        out["direct"] = common.record({n: "failed" if n in failed else "passed" for n, _ in scripts},
                                      failed, secs)
    reference = {n: r[0] for n, r in direct.items() if n not in failed}

    def judge(res, secs, gw):
        """record of a gateway-side run against the reference transcripts"""
        gfailed = {}
        for n, (lines, why, _) in res.items():
            if why:
                gfailed[n] = why
            elif n not in reference:
                gfailed[n] = "no reference: the direct run failed"
            elif lines != reference[n]:
                gfailed[n] = "transcript differs: " + first_difference(reference[n], lines)
        if gw is not None and gw.exited() is not None:
            for n in res:
                gfailed.setdefault(n, "the gateway exited during the run")
        return common.record({n: "failed" if n in gfailed else "passed" for n in res}, gfailed,
                             secs)

    gw = None
    try:
        gw_port = a.gateway_port
        if gw_port is None and a.gateway:
            gw = common.Gateway(a.gateway, ["--backend", "host=127.0.0.1 port=%d" % a.direct_port,
                                            "--pool-size", "10", "--workers", "2"],
                                os.path.join(a.work, "gateway.log")).start()
            gw_port = gw.port
        if gw_port is not None:
            out["gateway"] = judge(*run_side(exe, scripts, "gateway", gw_port, a.work, a.jobs), gw)
            ports = {"direct": a.direct_port, "gateway": gw_port, "session": a.session_port}

            def rerun(tests, side):
                # alone: one script at a time, against the rerun's own
                # direct transcripts
                if ports[side] is None:
                    return common.record({}, error="no session-mode gateway given")
                chosen = [(n, p) for n, p in scripts if n in tests]
                prepare_databases(a.direct_port, ["rerun_" + side])
                res, secs = run_side(exe, chosen, "rerun_" + side, ports[side], a.work, 1)
                if side == "direct":
                    dfailed = {n: r[1] for n, r in res.items() if r[1]}
                    reference.update({n: r[0] for n, r in res.items() if not r[1]})
                    return common.record({n: "failed" if n in dfailed else "passed" for n in res},
                                         dfailed, secs)
                return judge(res, secs, gw if side == "gateway" else None)

            if "direct" in out:
                common.add_reruns(out, rerun)
    finally:
        note = gw.stop(wait=10) if gw is not None else None
        if note:
            log("WARNING: " + note)

    for side in SIDES:
        for n, why in sorted(out.get(side, {}).get("reasons", {}).items()):
            log("%s %s: %s" % (side, n, why))
    for side, rec in sorted(out.get("rerun", {}).items()):
        log("rerun %s: %s" % (side, " ".join("%s %s" % kv for kv in sorted(rec["tests"].items()))))
    common.write_json(a.out, out)
    log(" ".join("%s %d/%d/%d in %s s" % (s, out[s]["passed"], out[s]["failed"], out[s]["skipped"],
                                          out[s]["seconds"]) for s in SIDES if s in out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
