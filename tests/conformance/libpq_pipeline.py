#!/usr/bin/python3
"""libpq's pipeline-mode test program (src/test/modules/libpq_pipeline of
the PostgreSQL source), built against the installed libpq and run the way
its TAP test runs it: every test it lists, 700 rows, and for the tests
with a trace in traces/ the libpq trace compared byte for byte.

Runs once against each endpoint given, each in a database of its own
created for the run, and writes a JSON summary:

    libpq_pipeline.py --src SRCDIR --work DIR --out FILE \\
        --endpoint direct=PORT --endpoint gateway=PORT [--endpoint session=PORT]

A test failing through the gateway only is run again alone on each
endpoint (common.add_reruns).
"""
import argparse
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

PSQL = "/usr/lib/postgresql/15/bin/psql"


def build(src, work):
    exe = os.path.join(work, "libpq_pipeline")
    cmd = ["gcc", "-O1", "-I/usr/include/postgresql/15/server", "-I/usr/include/postgresql/internal",
           "-I/usr/include/postgresql", os.path.join(src, "libpq_pipeline.c"),
           "-L/usr/lib/postgresql/15/lib", "-lpgcommon", "-lpgport", "-lpq", "-lm", "-o", exe]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout)
        raise SystemExit("libpq_pipeline did not build")
    return exe


def run_endpoint(exe, src, work, name, port, direct_port, only=None):
    """Every test (or those in ONLY) against PORT, in a fresh database."""
    t0 = time.monotonic()
    db = "lpp_" + name
    for sql in ("DROP DATABASE IF EXISTS %s" % db, "CREATE DATABASE %s" % db):
        subprocess.run([PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(direct_port), "-U", "postgres",
                        "-d", "postgres", "-c", sql], check=True,
                       env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
    tests = subprocess.run([exe, "tests"], stdout=subprocess.PIPE, text=True,
                           check=True).stdout.split()
    if only is not None:
        tests = [t for t in tests if t in only]
    conninfo = "host=127.0.0.1 port=%d user=postgres dbname=%s" % (port, db)
    status, failed = {}, {}
    for t in tests:
        trace = os.path.join(work, "%s.%s.trace" % (t, name))
        expected = os.path.join(src, "traces", t + ".trace")
        argv = [exe, "-r", "700"] + (["-t", trace] if os.path.exists(expected) else []) + [t, conninfo]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            failed[t] = "timed out"
            status[t] = "failed"
            continue
        if r.returncode != 0:
            failed[t] = "exit %d: %s" % (r.returncode, r.stdout.strip()[-300:])
        elif os.path.exists(expected):
            with open(expected, "rb") as a, open(trace, "rb") as b:
                if a.read() != b.read():
                    failed[t] = "trace differs from traces/%s.trace (see %s)" % (t, trace)
        status[t] = "failed" if t in failed else "passed"
    return common.record(status, failed, time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="src/test/modules/libpq_pipeline")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--endpoint", action="append", default=[], help="NAME=PORT")
    ap.add_argument("--direct-port", type=int, required=True)
    a = ap.parse_args()
    exe = build(a.src, a.work)
    ports = {n: int(p) for n, p in (e.split("=") for e in a.endpoint)}
    res = {}
    for name in ("direct", "gateway"):
        if name in ports:
            res[name] = run_endpoint(exe, a.src, a.work, name, ports[name], a.direct_port)

    def rerun(tests, side):
        return run_endpoint(exe, a.src, a.work, side + "_rerun", ports[side], a.direct_port,
                            only=tests)

    common.add_reruns(res, rerun, [s for s in ("direct", "gateway", "session") if s in ports])
    recs = [(s, res[s]) for s in ("direct", "gateway") if s in res]
    recs += [("rerun " + s, r) for s, r in res.get("rerun", {}).items()]
    for side, rec in recs:
        for t, why in rec["reasons"].items():
            sys.stderr.write("[libpq_pipeline %s] %s: %s\n" % (side, t, why))
    common.write_json(a.out, res)


if __name__ == "__main__":
    main()
