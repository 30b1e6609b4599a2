#!/usr/bin/python3
"""Summarise pg_regress runs (direct / gateway) written by run.sh.

Reads RESULTS/<side>/pg_regress.out (+ regression.diffs), prints

    suite | direct passed/failed/skipped | gateway passed/failed/skipped

lists every test that passed directly but failed through the gateway with
the first lines of its diff, writes RESULTS/summary.json and compares with
baseline.json.  Exit 1 when the gateway passes fewer tests than the
baseline or the direct run fails more than the baseline; 0 otherwise.
"""

import argparse
import json
import os
import re
import sys

SUITE = "pg15-core-regress (parallel_schedule)"
SIDES = ("direct", "gateway")
HUNK_LINES = 25

RESULT_RE = re.compile(r"^(?:test |     )(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))")


def schedule_tests(path):
    tests = []
    with open(path) as f:
        for line in f:
            if line.startswith("test:"):
                tests += line[5:].split()
    return tests


def parse_side(resdir, tests, skipped):
    out = os.path.join(resdir, "pg_regress.out")
    if not os.path.exists(out):
        return None
    status = {}
    with open(out, errors="replace") as f:
        for line in f:
            m = RESULT_RE.match(line)
            if m:
                status[m.group(1)] = "passed" if m.group(2) == "ok" else "failed"
    for t in tests:  # listed in the schedule but never reported: did not run
        status.setdefault(t, "failed")
    for t in skipped:
        status[t] = "skipped"
    seconds = rc = None
    try:
        seconds = int(open(os.path.join(resdir, "seconds")).read())
        rc = int(open(os.path.join(resdir, "rc")).read())
    except (OSError, ValueError):
        pass
    not_reported = [t for t in tests if not _reported(out, t)]
    return {
        "passed": sum(1 for v in status.values() if v == "passed"),
        "failed": sum(1 for v in status.values() if v == "failed"),
        "skipped": sum(1 for v in status.values() if v == "skipped"),
        "failed_tests": sorted(t for t, v in status.items() if v == "failed"),
        "not_reported": not_reported,
        "status": status,
        "seconds": seconds,
        "pg_regress_rc": rc,
    }


_reported_cache = {}


def _reported(out, test):
    if out not in _reported_cache:
        names = set()
        with open(out, errors="replace") as f:
            for line in f:
                m = RESULT_RE.match(line)
                if m:
                    names.add(m.group(1))
        _reported_cache[out] = names
    return test in _reported_cache[out]


def diff_hunks(resdir):
    """test name -> its section of regression.diffs"""
    path = os.path.join(resdir, "regression.diffs")
    hunks, cur = {}, None
    if not os.path.exists(path):
        return hunks
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("diff "):
                res = line.split()[-1]
                name = os.path.basename(res)
                name = name[:-4] if name.endswith(".out") else name
                cur = hunks.setdefault(name, [])
            if cur is not None:
                cur.append(line.rstrip("\n"))
    return hunks


def fmt(side):
    if side is None:
        return "-"
    return "%d/%d/%d" % (side["passed"], side["failed"], side["skipped"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--schedule", required=True)
    ap.add_argument("--skipped", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--pg-version", default="")
    ap.add_argument("--total-seconds", type=int, default=None)
    ap.add_argument("--update-baseline", action="store_true")
    ap.add_argument("--extra-suite", action="append", default=[],
                    help="NAME=FILE: another suite's results, {side: {passed, failed, skipped, "
                         "failed_tests}}")
    a = ap.parse_args()
    extra = {}
    for spec in a.extra_suite:
        name, path = spec.split("=", 1)
        if os.path.exists(path):
            extra[name] = json.load(open(path))

    skipped = [l.strip() for l in open(a.skipped) if l.strip()]
    tests = schedule_tests(a.schedule)
    sides = {s: parse_side(os.path.join(a.results, s), tests, skipped) for s in SIDES}
    d, g = sides["direct"], sides["gateway"]

    gateway_only = []
    if d and g:
        hunks = diff_hunks(os.path.join(a.results, "gateway"))
        for t in tests:
            if d["status"].get(t) == "passed" and g["status"].get(t) == "failed":
                gateway_only.append({"test": t, "diff_head": hunks.get(t, ["(no diff: test did not complete)"])[:HUNK_LINES]})

    w = max(len(SUITE), 5)
    print()
    print("%-*s | %-30s | %-30s" % (w, "suite", "direct passed/failed/skipped", "gateway passed/failed/skipped"))
    print("%s-+-%s-+-%s" % ("-" * w, "-" * 30, "-" * 30))
    print("%-*s | %-30s | %-30s" % (w, SUITE, fmt(d), fmt(g)))
    for name, res in sorted(extra.items()):
        print("%-*s | %-30s | %-30s" % (w, name, fmt(res.get("direct")), fmt(res.get("gateway"))))
    print()
    for name, res in sorted(extra.items()):
        for side in SIDES:
            for t, why in sorted((res.get(side) or {}).get("reasons", {}).items()):
                print("%-8s %s %s: %s" % (side, name, t, why))
    for s in SIDES:
        if sides[s]:
            print("%-8s pg_regress %4s s, exit %s; failed: %s" % (
                s, sides[s]["seconds"], sides[s]["pg_regress_rc"],
                " ".join(sides[s]["failed_tests"]) or "none"))
            if sides[s]["not_reported"]:
                print("         never reported (did not run / timed out): %s" % " ".join(sides[s]["not_reported"]))
    if skipped:
        print("skipped on both sides: %s" % " ".join(skipped))
    if a.total_seconds is not None:
        print("total wall time: %d s" % a.total_seconds)

    if d and g:
        print()
        print("passed directly, failed through the gateway: %d" % len(gateway_only))
        for item in gateway_only:
            print()
            print("== %s" % item["test"])
            for line in item["diff_head"]:
                print("   " + line)
        also = [t for t in g["failed_tests"] if d["status"].get(t) != "passed"]
        if also:
            print()
            print("failed on both sides (not counted against the gateway): %s" % " ".join(also))

    summary = {
        "suite": SUITE,
        "postgresql_package_version": a.pg_version,
        "total_seconds": a.total_seconds,
        "skipped_tests": skipped,
        "gateway_only_failures": [i["test"] for i in gateway_only],
    }
    for s in SIDES:
        if sides[s]:
            summary[s] = {k: v for k, v in sides[s].items() if k != "status"}
    summary["suites"] = extra
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    print()
    print("summary: %s" % os.path.join(a.results, "summary.json"))

    if a.update_baseline:
        if not (d and g):
            print("--update-baseline needs both sides", file=sys.stderr)
            return 2
        base = {
            "suite": SUITE,
            "postgresql_package_version": a.pg_version,
            "direct": {k: d[k] for k in ("passed", "failed", "skipped", "failed_tests")},
            "gateway": {k: g[k] for k in ("passed", "failed", "skipped", "failed_tests")},
            "gateway_only_failures": [i["test"] for i in gateway_only],
            "suites": {name: {side: {k: res[side][k] for k in ("passed", "failed", "skipped",
                                                               "failed_tests")}
                              for side in SIDES if res.get(side)}
                       for name, res in extra.items()},
        }
        with open(a.baseline, "w") as f:
            json.dump(base, f, indent=2, sort_keys=True)
            f.write("\n")
        print("baseline written: %s" % a.baseline)
        return 0

    if not os.path.exists(a.baseline):
        print("no baseline (%s): nothing to compare" % a.baseline)
        return 0
    base = json.load(open(a.baseline))
    bad = []
    # Each suite: the direct run may not fail more than the baseline's, and
    # no test that passes directly may fail through the gateway unless the
    # baseline lists it (a count alone would let a new failure hide behind
    # a flaky test that happened to pass).
    suites = [(SUITE, d, g, base)] + [(name, res.get("direct"), res.get("gateway"),
                                       base.get("suites", {}).get(name))
                                      for name, res in sorted(extra.items())]
    for name, sd, sg, sb in suites:
        if sb is None:
            print("%s: not in the baseline: consider --update-baseline" % name)
            continue
        if sd and sd["failed"] > sb["direct"]["failed"]:
            new = sorted(set(sd["failed_tests"]) - set(sb["direct"]["failed_tests"]))
            bad.append("%s: direct run fails %d tests, baseline %d (new: %s)" % (
                name, sd["failed"], sb["direct"]["failed"], " ".join(new) or "-"))
        if sg:
            direct_failed = set(sd["failed_tests"]) if sd else set()
            new = sorted(set(sg["failed_tests"]) - set(sb["gateway"]["failed_tests"]) - direct_failed)
            if new:
                bad.append("%s: newly failing through the gateway: %s (passes %d, baseline %d)" % (
                    name, " ".join(new), sg["passed"], sb["gateway"]["passed"]))
            elif sg["passed"] > sb["gateway"]["passed"]:
                print("%s: gateway passes %d tests, more than the baseline's %d: consider "
                      "--update-baseline" % (name, sg["passed"], sb["gateway"]["passed"]))
    if bad:
        for b in bad:
            print("REGRESSION: " + b)
        return 1
    print("baseline check: ok (%s: baseline direct %s, gateway %s)" % (
        SUITE, fmt(base["direct"]), fmt(base["gateway"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
