#!/usr/bin/python3
"""Judge a conformance run (the drivers' JSON files in RESULTS) against
baseline.json, print

    suite | direct | gateway | session

then the flaky tests, the tests that failed directly (never held against
the gateway), the accepted gateway failures with their reasons, and the
REGRESSION lines; write RESULTS/summary.json. The rules (README.md, "How a
run is judged"):

- a test failing through the gateway that also fails directly is not the
  gateway's;
- a test failing only through the gateway was rerun alone on both sides
  by its driver: it is the gateway's only when it failed again through the
  gateway and passed directly; otherwise it is flaky (named, and counted as
  passed when it passed on the rerun);
- a gateway failure the baseline does not accept (with a reason) is a
  regression;
- a suite without results, or that ran fewer tests than the baseline says
  it runs, fails; so does a gateway pass count (failures that are not the
  gateway's counted as passes) below the baseline's.

Exit 0 ok; 1 regression; 2 a suite did not run (setup error).
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

# suite -> the run.sh step (RESULTS/STEP.rc) that writes it
SUITES = [("pg_regress", "pg_regress"), ("libpq_pipeline", "libpq_pipeline"),
          ("isolation", "isolation"), ("pgproto", "pgproto"),
          ("npm-libpq", "npm"), ("npm-databases-pg", "npm"),
          ("go-lib-pq", "go"), ("go-lib-pq-binary", "go"), ("go-pgconn", "go"),
          ("go-pgx-v4", "go")]
REASON_LINES = 6


def ran(rec):
    return rec["passed"] + rec["failed"] + rec["skipped"]


def fmt(rec):
    return "-" if rec is None else "%d/%d/%d" % (rec["passed"], rec["failed"], rec["skipped"])


def head(text, n=REASON_LINES):
    lines = (text or "").splitlines()[:n]
    return "\n".join("      " + l for l in lines)


def verdict():
    """flaky [(test, how)], direct_failed [test], ours [(test, session
    status, note)]: the gateway's failures, regressions and setup (fatal,
    exit 1 and 2), notes, and not_ours: gateway failures not held against it."""
    return {"flaky": [], "direct_failed": [], "ours": [], "regressions": [], "setup": [],
            "notes": [], "not_ours": 0}


def judge(name, res, base, sides):
    """The verdict on one suite's results RES against its baseline BASE."""
    out = verdict()
    for side in sides:
        rec = res.get(side)
        if rec is None:
            out["setup" if side == "direct" else "regressions"].append(
                "%s: no results through the %s" % (name, "gateway" if side == "gateway" else
                                                   "direct connection"))
            continue
        if rec.get("error"):
            out["notes"].append("%s %s: %s" % (name, side, rec["error"]))
        if base and ran(rec) < base["ran"]:
            msg = "%s: %d tests ran on the %s side, the baseline runs %d%s" % (
                name, ran(rec), side, base["ran"],
                " (%s)" % rec["error"] if rec.get("error") else "")
            out["setup" if side == "direct" else "regressions"].append(msg)
    d, g = res.get("direct"), res.get("gateway")
    if d:
        out["direct_failed"] = d["failed_tests"]
    if not g:
        return out
    rerun = res.get("rerun", {})
    rr = {s: (rerun.get(s) or {}).get("tests", {}) for s in ("direct", "gateway", "session")}
    dt = (d or {}).get("tests", {})
    for t in g["failed_tests"]:
        if dt.get(t) == "failed":
            out["not_ours"] += 1
        elif rr["gateway"].get(t) == "passed":
            out["flaky"].append((t, "passed through the gateway on a lone rerun"))
            out["not_ours"] += 1
        elif rr["gateway"].get(t) == "failed" and rr["direct"].get(t) == "failed":
            out["flaky"].append((t, "failed directly too on a lone rerun"))
            out["not_ours"] += 1
        else:
            how = "" if rr["gateway"].get(t) == "failed" else " (no lone rerun result)"
            out["ours"].append((t, rr["session"].get(t), how))
    # an accepted failure needs its reason
    accepted = {t: why for t, why in (base or {}).get("accepted", {}).items()
                if why and not why.startswith("UNEXPLAINED")}
    for t, session, how in out["ours"]:
        if t not in accepted:
            why = (rerun.get("gateway") or {}).get("reasons", {}).get(t) or g["reasons"].get(t, "")
            out["regressions"].append("%s: %s fails through the gateway and passes directly%s; "
                                      "session mode: %s\n%s" % (name, t, how, session or "not run",
                                                                head(why)))
    if base:
        score = g["passed"] + out["not_ours"]
        if score < base["gateway_passed"]:
            out["regressions"].append(
                "%s: the gateway passes %d tests (failures that are not its own counted as "
                "passes), the baseline %d" % (name, score, base["gateway_passed"]))
    return out


def session_column(res):
    if res.get("gateway_mode") == "session":
        return "(gateway is session)"
    s = (res.get("rerun") or {}).get("session")
    if not s:
        return "-"
    return "%d/%d of %d" % (s["passed"], s["failed"], len(common.gateway_only(res)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--sides", default="direct gateway")
    ap.add_argument("--pg-version", default="")
    ap.add_argument("--total-seconds", type=int, default=None)
    ap.add_argument("--update-baseline", action="store_true")
    a = ap.parse_args()
    sides = a.sides.split()
    base = json.load(open(a.baseline)) if os.path.exists(a.baseline) else {"suites": {}}

    results, verdicts = {}, {}
    for name, step in SUITES:
        path = os.path.join(a.results, name + ".json")
        res = json.load(open(path)) if os.path.exists(path) else None
        if res is None:
            try:
                rc = open(os.path.join(a.results, step + ".rc")).read().strip()
            except OSError:
                rc = "unknown"
            verdicts[name] = verdict()
            verdicts[name]["setup"].append("%s: no results (its runner, run.sh step %s, exited "
                                           "%s; see the log above)" % (name, step, rc))
            continue
        results[name] = res
        verdicts[name] = judge(name, res, base["suites"].get(name), sides)

    w = max(len(n) for n, _ in SUITES)
    print()
    print("%-*s | %-14s | %-14s | %s" % (w, "suite", "direct", "gateway", "session"))
    print("%-*s | %-14s | %-14s | %s" % (w, "", "pass/fail/skip", "pass/fail/skip",
                                         "pass/fail of the gateway-only failures"))
    print("%s-+-%s-+-%s-+-%s" % ("-" * w, "-" * 14, "-" * 14, "-" * 20))
    for name, _ in SUITES:
        res = results.get(name)
        if res is None:
            print("%-*s | %-14s | %-14s | %s" % (w, name, "NO RESULTS", "NO RESULTS", "-"))
            continue
        print("%-*s | %-14s | %-14s | %s" % (w, name, fmt(res.get("direct")),
                                             fmt(res.get("gateway")), session_column(res)))
    print()
    lines = [(n, t, how) for n, v in verdicts.items() for t, how in v["flaky"]]
    print("flaky (failed only through the gateway, then not on a lone rerun):%s" % (
        " none" if not lines else ""))
    for n, t, how in lines:
        print("  %s: %s: %s" % (n, t, how))
    lines = [(n, v["direct_failed"]) for n, v in verdicts.items() if v["direct_failed"]]
    print("failed directly (not held against the gateway):%s" % (" none" if not lines else ""))
    for n, tests in lines:
        print("  %s: %s" % (n, " ".join(tests)))
    print("accepted gateway failures (baseline.json) [session-mode rerun]: reason")
    unproven = []
    for name, v in verdicts.items():
        acc = base["suites"].get(name, {}).get("accepted", {})
        for t, session, _ in v["ours"]:
            if t in acc:
                print("  %s: %s [session: %s]: %s" % (name, t, session or "not run", acc[t]))
                if session != "passed":
                    unproven.append("%s: %s: %s through the session-mode gateway" % (
                        name, t, session or "not run"))
    for u in unproven:
        print("UNPROVEN (not shown to pass in session mode): " + u)
    notes = [n for v in verdicts.values() for n in v["notes"]]
    for n in notes:
        print("note: " + n)
    if a.total_seconds is not None:
        print("total wall time: %d s" % a.total_seconds)

    summary = {"postgresql_package_version": a.pg_version, "total_seconds": a.total_seconds,
               "suites": results,
               "verdicts": {n: {k: v for k, v in d.items()} for n, d in verdicts.items()}}
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    print("summary: %s" % os.path.join(a.results, "summary.json"))

    if a.update_baseline:
        return update_baseline(a, base, results, verdicts)

    regressions = [r for v in verdicts.values() for r in v["regressions"]]
    setup = [r for v in verdicts.values() for r in v["setup"]]
    print()
    for r in setup:
        print("DID NOT RUN: " + r)
    for r in regressions:
        print("REGRESSION: " + r)
    if regressions:
        return 1
    if setup:
        return 2
    print("baseline check: ok")
    return 0


def update_baseline(a, base, results, verdicts):
    """Counts from this run; accepted failures: the old ones (a fixed test
    is removed by hand) plus this run's, a new one marked UNEXPLAINED."""
    if any(v["setup"] or any("no results" in r for r in v["regressions"])
           for v in verdicts.values()):
        print("--update-baseline: some suite did not run; baseline not written", file=sys.stderr)
        return 2
    new = {"postgresql_package_version": a.pg_version, "suites": {}}
    for name, res in results.items():
        old = base["suites"].get(name, {})
        accepted = dict(old.get("accepted", {}))
        for t, _, _ in verdicts[name]["ours"]:
            accepted.setdefault(t, "UNEXPLAINED: write why, or fix it")
        d, g = res["direct"], res["gateway"]
        n = min(ran(d), ran(g))
        new["suites"][name] = {"ran": n, "direct_passed": d["passed"],
                               "gateway_passed": n - g["skipped"] - len(accepted),
                               "accepted": dict(sorted(accepted.items()))}
        for t, why in accepted.items():
            if why.startswith("UNEXPLAINED"):
                print("baseline: %s: %s has no reason yet" % (name, t))
    with open(a.baseline, "w") as f:
        json.dump(new, f, indent=2, sort_keys=True)
        f.write("\n")
    print("baseline written: %s" % a.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
