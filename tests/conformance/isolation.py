#!/usr/bin/python3
"""PostgreSQL's isolation suite (pg_isolation_regress, isolation_schedule,
installcheck style): concurrent sessions driven step by step by
isolationtester, which detects a blocked step through
pg_isolation_test_session_is_blocked(pid) with the pid each connection was
told, and cancels through CancelRequest. Runs once per endpoint (the
gateway one is a gateway in session mode: concurrent sessions each need a
server connection of their own), reruns the specs that failed through the
gateway only alone (a one-line schedule each) on both, and writes the
suite's JSON (common.record).

    isolation.py --src SRCDIR/src/test/isolation --work DIR --out FILE \\
        --endpoint direct=PORT --endpoint gateway=PORT
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

PGXS = "/usr/lib/postgresql/15/lib/pgxs/src/test/isolation"
RESULT_RE = re.compile(r"^(?:test |     )(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))")


def schedule_tests(path):
    tests = []
    for line in open(path):
        if line.startswith("test:"):
            tests += line[5:].split()
    return tests


def run_endpoint(src, work, name, port, timeout, only=None):
    """The whole schedule, or the specs in ONLY one after the other, each
    alone (a schedule of one-test lines)."""
    out = os.path.join(work, name)
    os.makedirs(out, exist_ok=True)
    schedule = os.path.join(src, "isolation_schedule")
    if only is not None:
        schedule = os.path.join(out, "schedule")
        with open(schedule, "w") as f:
            f.write("".join("test: %s\n" % t for t in only))
    argv = [os.path.join(PGXS, "pg_isolation_regress"), "--inputdir=" + src,
            "--outputdir=" + out, "--host=127.0.0.1", "--port=%d" % port, "--user=postgres",
            "--schedule=" + schedule]
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        text = r.stdout
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        text += "\n(timed out after %d s)\n" % timeout
    with open(os.path.join(out, "pg_isolation_regress.out"), "w") as f:
        f.write(text)
    tests = schedule_tests(schedule)
    status = {}
    for line in text.splitlines():
        m = RESULT_RE.match(line)
        if m and m.group(1) in tests:
            status[m.group(1)] = "passed" if m.group(2) == "ok" else "failed"
    # a spec never reported did not run (the count check sees it)
    missing = [t for t in tests if t not in status]
    error = "%d specs never reported (see %s/pg_isolation_regress.out)" % (
        len(missing), out) if missing else None
    return common.record(status, {t: "see %s/regression.diffs" % out for t in status},
                         time.monotonic() - t0, error)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--endpoint", action="append", default=[], help="NAME=PORT")
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    ports = {n: int(p) for n, p in (e.split("=") for e in a.endpoint)}
    res = {"gateway_mode": "session"}
    for name in ("direct", "gateway"):
        if name in ports:
            res[name] = run_endpoint(a.src, a.work, name, ports[name], a.timeout)
            sys.stderr.write("[isolation %s] %d passed, %d failed in %s s\n" % (
                name, res[name]["passed"], res[name]["failed"], res[name]["seconds"]))

    def rerun(tests, side):
        return run_endpoint(a.src, a.work, "rerun-" + side, ports[side], a.timeout, only=tests)

    common.add_reruns(res, rerun, ("direct", "gateway"))
    common.write_json(a.out, res)


if __name__ == "__main__":
    main()
