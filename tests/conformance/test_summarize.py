#!/usr/bin/python3
"""The judging rules of summarize.py (README.md, "How a run is judged") on
made-up results: what fails CI and what does not.

    /usr/bin/python3 tests/conformance/test_summarize.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import summarize  # noqa: E402

TESTS = ["t%d" % i for i in range(10)]


def side(**failed):
    """A record where the tests named with "failed"/"skipped" have that
    status and the rest of TESTS passed."""
    return common.record({t: failed.get(t, "passed") for t in TESTS},
                         {t: "why" for t in failed})


def base(ran=10, accepted=None, skipped=0):
    accepted = accepted or {}
    return {"ran": ran, "direct_passed": ran - skipped,
            "gateway_passed": ran - skipped - len(accepted), "accepted": accepted}


def with_reruns(res, outcome):
    """OUTCOME: {test: {side: status}} for the lone reruns."""
    def rerun(tests, s):
        return common.record({t: outcome[t][s] for t in tests if s in outcome.get(t, {})})
    return common.add_reruns(res, rerun)


class Judge(unittest.TestCase):
    def judge(self, res, b):
        return summarize.judge("s", res, b, ["direct", "gateway"])

    def test_clean(self):
        v = self.judge({"direct": side(), "gateway": side()}, base())
        self.assertEqual(v["regressions"] + v["setup"], [])

    def test_direct_failure_is_never_the_gateways(self):
        v = self.judge({"direct": side(t1="failed"), "gateway": side(t1="failed")}, base())
        self.assertEqual(v["regressions"], [])
        self.assertEqual(v["direct_failed"], ["t1"])

    def test_gateway_only_failure_is_flaky_unless_the_rerun_confirms_it(self):
        # passed through the gateway alone; failed directly too alone
        for direct, gateway in (("passed", "passed"), ("failed", "failed")):
            with self.subTest(direct=direct, gateway=gateway):
                res = with_reruns({"direct": side(), "gateway": side(t2="failed")},
                                  {"t2": {"direct": direct, "gateway": gateway,
                                          "session": "passed"}})
                v = self.judge(res, base())
                self.assertEqual(v["regressions"], [])
                self.assertEqual([t for t, _ in v["flaky"]], ["t2"])

    def test_confirmed_gateway_failure_is_a_regression(self):
        res = with_reruns({"direct": side(), "gateway": side(t3="failed")},
                          {"t3": {"direct": "passed", "gateway": "failed", "session": "passed"}})
        v = self.judge(res, base())
        self.assertEqual(len(v["regressions"]), 2)   # the test, and the pass count
        self.assertIn("t3 fails through the gateway", v["regressions"][0])

    def test_no_rerun_result_counts_against_the_gateway(self):
        v = self.judge({"direct": side(), "gateway": side(t3="failed")}, base())
        self.assertIn("no lone rerun result", v["regressions"][0])

    def test_accepted_failure_needs_a_reason(self):
        res = with_reruns({"direct": side(), "gateway": side(t3="failed")},
                          {"t3": {"direct": "passed", "gateway": "failed", "session": "passed"}})
        self.assertEqual(self.judge(res, base(accepted={"t3": "pooling"}))["regressions"], [])
        v = self.judge(res, base(accepted={"t3": "UNEXPLAINED: write why"}))
        self.assertIn("t3 fails", v["regressions"][0])

    def test_fewer_tests_than_the_baseline_fail(self):
        short = common.record({t: "passed" for t in TESTS[:7]})
        v = self.judge({"direct": side(), "gateway": short}, base())
        self.assertIn("7 tests ran on the gateway side", " ".join(v["regressions"]))
        v = self.judge({"direct": short, "gateway": side()}, base())
        self.assertIn("7 tests ran on the direct side", " ".join(v["setup"]))

    def test_skipped_through_the_gateway_lowers_the_pass_count(self):
        v = self.judge({"direct": side(), "gateway": side(t4="skipped")}, base())
        self.assertIn("the gateway passes 9 tests", " ".join(v["regressions"]))

    def test_missing_side_fails(self):
        v = self.judge({"direct": side()}, base())
        self.assertIn("no results through the gateway", " ".join(v["regressions"]))


class Main(unittest.TestCase):
    """summarize.py as run.sh runs it: exit status and what it prints."""

    def run_summarize(self, suites, baseline):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        d = tmp.name
        for name, res in suites.items():
            common.write_json(os.path.join(d, name + ".json"), res)
        with open(os.path.join(d, "baseline.json"), "w") as f:
            json.dump({"suites": baseline}, f)
        r = subprocess.run([sys.executable, os.path.join(HERE, "summarize.py"), "--results", d,
                            "--baseline", os.path.join(d, "baseline.json")],
                           stdout=subprocess.PIPE, text=True)
        return r.returncode, r.stdout

    def all_suites(self, **override):
        suites = {n: {"direct": side(), "gateway": side()} for n, _ in summarize.SUITES}
        suites.update(override)
        return suites

    def test_ok(self):
        rc, out = self.run_summarize(self.all_suites(),
                                     {n: base() for n, _ in summarize.SUITES})
        self.assertEqual(rc, 0, out)
        self.assertIn("baseline check: ok", out)

    def test_a_suite_without_results_fails(self):
        suites = self.all_suites()
        del suites["npm-libpq"]
        rc, out = self.run_summarize(suites, {n: base() for n, _ in summarize.SUITES})
        self.assertEqual(rc, 2, out)
        self.assertIn("DID NOT RUN: npm-libpq: no results", out)


if __name__ == "__main__":
    unittest.main()
