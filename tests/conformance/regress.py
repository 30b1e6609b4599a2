#!/usr/bin/python3
"""PostgreSQL's core regression suite (pg_regress, installcheck style, the
parallel schedule) directly and through the gateway, then the gateway-only
failures again, each alone, on the direct side, the gateway and a gateway in
session mode. Writes the suite's JSON (see common.record).

A test of the parallel schedule depends on what the groups before it left
behind (test_setup's tables, create_index's indexes ...), never on the tests
of its own group (they run concurrently, in any order). So a rerun test runs
alone in a copy of the regression database made after its own group ran
without it (the schedule up to there is run once, directly, without the
rerun tests: CREATE DATABASE ... TEMPLATE keeps a copy before each).

    regress.py --inputdir DIR --schedule FILE --skipped FILE --dlpath DIR \\
        --work DIR --out FILE --endpoint direct=PORT --endpoint gateway=PORT \\
        [--endpoint session=PORT] [--timeout S]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
PG_REGRESS = "/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress"
RESULT_RE = re.compile(r"^(?:test |     )(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))")
HUNK_LINES = 25

log = common.logger("pg_regress")


def read_schedule(path):
    """[[test, ...], ...]: the schedule's groups in order."""
    return [line[5:].split() for line in open(path) if line.startswith("test:")]


def write_schedule(path, groups):
    with open(path, "w") as f:
        for g in groups:
            f.write("test: %s\n" % " ".join(g))


def segments(groups, tests):
    """The schedule cut before each rerun test: [(schedule groups without
    the rerun tests, the rerun tests of its last group)], one per group
    holding a rerun test, in order."""
    out, start = [], 0
    for i, g in enumerate(groups):
        mine = [t for t in g if t in tests]
        if mine:
            out.append(([[t for t in h if t not in tests] for h in groups[start:i + 1]], mine))
            start = i + 1
    return [([h for h in seg if h], mine) for seg, mine in out]


def diff_hunks(outdir):
    """test name -> the head of its section of regression.diffs"""
    path = os.path.join(outdir, "regression.diffs")
    hunks, cur = {}, None
    if not os.path.exists(path):
        return hunks
    for line in open(path, errors="replace"):
        if line.startswith("diff "):
            name = os.path.basename(line.split()[-1])
            cur = hunks.setdefault(name[:-4] if name.endswith(".out") else name, [])
        if cur is not None and len(cur) < HUNK_LINES:
            cur.append(line.rstrip("\n"))
    return hunks


def psql(port, sql, db="postgres"):
    r = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                        "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-c", sql],
                       env=common.psql_env(PGOPTIONS="-c client_min_messages=warning"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql %r: %s" % (sql, r.stderr.strip()))
    return r.stdout


def run(a, side, port, schedule, outdir, tests, existing=False):
    """pg_regress over SCHEDULE against 127.0.0.1:PORT as the postgres OS
    user (EXISTING: in the regression database as it is). A test pg_regress
    never reported did not run: it is left out of the record (the caller's
    count check sees it)."""
    os.makedirs(outdir, exist_ok=True)
    subprocess.run(["chown", "-R", "postgres:", outdir], check=True)
    env = common.psql_env(LANG="C.UTF-8", PGGSSENCMODE="disable", PGSSLMODE="disable",
                          PGCONNECT_TIMEOUT="20")
    for v in ("PSQLRC", "LC_ALL", "LANGUAGE"):
        env.pop(v, None)
    argv = ["runuser", "-u", "postgres", "--", PG_REGRESS, "--inputdir=" + a.inputdir,
            "--outputdir=" + outdir, "--bindir=" + PGBIN, "--dlpath=" + a.dlpath,
            "--host=127.0.0.1", "--port=%d" % port, "--user=postgres",
            "--schedule=" + schedule, "--no-locale", "--encoding=UTF8"]
    if existing:
        argv.append("--use-existing")
    t0 = time.monotonic()
    error = None
    with open(os.path.join(outdir, "pg_regress.out"), "w") as out:
        try:
            rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                timeout=a.timeout, start_new_session=True).returncode
        except subprocess.TimeoutExpired:
            rc, error = 124, "timed out after %d s" % a.timeout
    secs = time.monotonic() - t0
    status = {}
    for line in open(os.path.join(outdir, "pg_regress.out"), errors="replace"):
        m = RESULT_RE.match(line)
        if m and m.group(1) in tests:
            status[m.group(1)] = "passed" if m.group(2) == "ok" else "failed"
    missing = [t for t in tests if t not in status]
    if missing and not error:
        error = "pg_regress exit %d, %d tests never reported (see %s/pg_regress.out)" % (
            rc, len(missing), outdir)
    hunks = diff_hunks(outdir)
    reasons = {t: "\n".join(hunks.get(t, ["(no diff)"])) for t, v in status.items() if v == "failed"}
    log("%s: %d passed, %d failed in %.0f s%s" % (
        side, sum(1 for v in status.values() if v == "passed"),
        sum(1 for v in status.values() if v == "failed"), secs, "; " + error if error else ""))
    return common.record(status, reasons, secs, error)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputdir", required=True)
    ap.add_argument("--schedule", required=True)
    ap.add_argument("--skipped", required=True, help="tests left out of the schedule")
    ap.add_argument("--dlpath", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--endpoint", action="append", default=[], help="NAME=PORT")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per pg_regress run")
    a = ap.parse_args()
    ports = {n: int(p) for n, p in (e.split("=") for e in a.endpoint)}
    groups = read_schedule(a.schedule)
    tests = [t for g in groups for t in g]
    skipped = {t: "skipped" for t in open(a.skipped).read().split()}
    res = {}
    for side in ("direct", "gateway"):
        if side in ports:
            res[side] = run(a, side, ports[side], a.schedule, os.path.join(a.work, side), tests)
            res[side]["tests"].update(skipped)
            res[side] = common.record(res[side]["tests"], res[side]["reasons"],
                                      res[side]["seconds"], res[side].get("error"))

    snapshots = {}

    def prepare(names):
        """Runs the schedule up to each rerun test directly, without the
        rerun tests, and keeps a copy of the regression database as it is
        before each of them (regress_before_TEST) with its settings."""
        # the gateways' idle server connections keep regression open
        psql(ports["direct"], "DROP DATABASE IF EXISTS regression WITH (FORCE)")
        for i, (seg, mine) in enumerate(segments(groups, names)):
            sched = os.path.join(a.work, "prefix%d_schedule" % i)
            write_schedule(sched, seg)
            rec = run(a, "prefix %d" % i, ports["direct"], sched,
                      os.path.join(a.work, "prefix%d" % i), [t for g in seg for t in g],
                      existing=i > 0)
            if rec.get("error"):
                raise RuntimeError("the prerequisites did not run: " + rec["error"])
            settings = psql(ports["direct"], "SELECT unnest(setconfig) FROM pg_db_role_setting s "
                            "JOIN pg_database d ON d.oid = s.setdatabase "
                            "WHERE d.datname = 'regression' AND s.setrole = 0").split("\n")
            for t in mine:
                psql(ports["direct"], 'DROP DATABASE IF EXISTS "regress_before_%s"' % t)
                psql(ports["direct"], 'CREATE DATABASE "regress_before_%s" TEMPLATE regression' % t)
                snapshots[t] = [x.split("=", 1) for x in settings if "=" in x]

    def rerun(names, side):
        if side not in ports:
            return common.record({}, error="no %s endpoint" % side)
        if not snapshots:
            prepare(names)
        status, reasons, seconds, errors = {}, {}, 0.0, []
        for t in names:
            psql(ports["direct"], "DROP DATABASE IF EXISTS regression WITH (FORCE)")
            psql(ports["direct"], 'CREATE DATABASE regression TEMPLATE "regress_before_%s"' % t)
            for k, v in snapshots[t]:
                psql(ports["direct"], "ALTER DATABASE regression SET %s TO '%s'" % (
                    k, v.replace("'", "''")))
            sched = os.path.join(a.work, "rerun_%s_schedule" % t)
            write_schedule(sched, [[t]])
            rec = run(a, "rerun %s %s" % (side, t), ports[side], sched,
                      os.path.join(a.work, "rerun-%s-%s" % (side, t)), [t], existing=True)
            status.update(rec["tests"])
            reasons.update(rec["reasons"])
            seconds += rec["seconds"]
            if rec.get("error"):
                errors.append(rec["error"])
        return common.record(status, reasons, seconds, "; ".join(errors) or None)

    try:
        common.add_reruns(res, rerun)
    finally:
        for t in snapshots:
            psql(ports["direct"], 'DROP DATABASE IF EXISTS "regress_before_%s"' % t)
    common.write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
