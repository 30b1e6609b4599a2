#!/usr/bin/python3
"""PostgreSQL's isolation suite (pg_isolation_regress, isolation_schedule,
installcheck style): concurrent sessions driven step by step by
isolationtester, which detects a blocked step through
pg_isolation_test_session_is_blocked(pid) with the pid each connection was
told, and cancels through CancelRequest. Runs once per endpoint and
writes a JSON summary ({side: {passed, failed, skipped, failed_tests}}).

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


def run_endpoint(src, work, name, port, timeout):
    out = os.path.join(work, name)
    os.makedirs(out, exist_ok=True)
    argv = [os.path.join(PGXS, "pg_isolation_regress"), "--inputdir=" + src,
            "--outputdir=" + out, "--host=127.0.0.1", "--port=%d" % port, "--user=postgres",
            "--schedule=" + os.path.join(src, "isolation_schedule")]
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
    status = {}
    for line in text.splitlines():
        m = RESULT_RE.match(line)
        if m:
            status[m.group(1)] = "passed" if m.group(2) == "ok" else "failed"
    tests = schedule_tests(os.path.join(src, "isolation_schedule"))
    failed = sorted(t for t in tests if status.get(t) != "passed")
    return {"passed": len(tests) - len(failed), "failed": len(failed), "skipped": 0,
            "failed_tests": failed, "seconds": round(time.monotonic() - t0, 1),
            "reasons": {t: "see %s/regression.diffs" % out if t in status else "not reported"
                        for t in failed}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--endpoint", action="append", default=[], help="NAME=PORT")
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    res = {}
    for ep in a.endpoint:
        name, port = ep.split("=")
        res[name] = run_endpoint(a.src, a.work, name, int(port), a.timeout)
        sys.stderr.write("[isolation %s] %d passed, %d failed in %s s\n" % (
            name, res[name]["passed"], res[name]["failed"], res[name]["seconds"]))
    common.write_json(a.out, res)


if __name__ == "__main__":
    main()
