#!/usr/bin/python3
"""libpq's pipeline-mode test program (src/test/modules/libpq_pipeline of
the PostgreSQL source), built against the installed libpq and run the way
its TAP test runs it: every test it lists, 700 rows, and for the tests
with a trace in traces/ the libpq trace compared byte for byte.

Runs once against each endpoint given, each in a database of its own
created for the run, and writes a JSON summary:

    libpq_pipeline.py --src SRCDIR --work DIR --out FILE \\
        --endpoint direct=PORT --endpoint gateway=PORT
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


def run_endpoint(exe, src, work, name, port, direct_port):
    db = "lpp_" + name
    for sql in ("DROP DATABASE IF EXISTS %s" % db, "CREATE DATABASE %s" % db):
        subprocess.run([PSQL, "-X", "-q", "-h", "127.0.0.1", "-p", str(direct_port), "-U", "postgres",
                        "-d", "postgres", "-c", sql], check=True,
                       env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
    tests = subprocess.run([exe, "tests"], stdout=subprocess.PIPE, text=True,
                           check=True).stdout.split()
    conninfo = "host=127.0.0.1 port=%d user=postgres dbname=%s" % (port, db)
    passed, failed = [], {}
    for t in tests:
        trace = os.path.join(work, "%s.%s.trace" % (t, name))
        expected = os.path.join(src, "traces", t + ".trace")
        argv = [exe, "-r", "700"] + (["-t", trace] if os.path.exists(expected) else []) + [t, conninfo]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            failed[t] = "timed out"
            continue
        if r.returncode != 0:
            failed[t] = "exit %d: %s" % (r.returncode, r.stdout.strip()[-300:])
        elif os.path.exists(expected):
            with open(expected, "rb") as a, open(trace, "rb") as b:
                if a.read() != b.read():
                    failed[t] = "trace differs from traces/%s.trace (see %s)" % (t, trace)
                else:
                    passed.append(t)
        else:
            passed.append(t)
    return {"passed": len(passed), "failed": len(failed), "skipped": 0,
            "failed_tests": sorted(failed), "reasons": failed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="src/test/modules/libpq_pipeline")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--endpoint", action="append", default=[], help="NAME=PORT")
    ap.add_argument("--direct-port", type=int, required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    exe = build(a.src, a.work)
    res = {}
    for ep in a.endpoint:
        name, port = ep.split("=")
        res[name] = run_endpoint(exe, a.src, a.work, name, int(port), a.direct_port)
        for t, why in res[name]["reasons"].items():
            sys.stderr.write("[libpq_pipeline %s] %s: %s\n" % (name, t, why))
    res["seconds"] = round(time.monotonic() - t0, 1)
    common.write_json(a.out, res)


if __name__ == "__main__":
    main()
