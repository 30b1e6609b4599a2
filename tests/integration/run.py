#!/usr/bin/python3
# Integration tests for multigateway with real clients (psql, psycopg2, pgbench).
#
# Debian 12 packages needed (run as root):
#   postgresql-15         initdb/pg_ctl/postgres and pgbench (/usr/lib/postgresql/15/bin)
#   postgresql-client-15  psql (pulled in by postgresql-15)
#   python3-psycopg2      psycopg2 for Debian's /usr/bin/python3
#   pgbouncer             only for bench/pgbench.sh, not for these tests
#
# Usage (as root, with Debian's python, NOT the first python3 on PATH):
#   /usr/bin/python3 tests/integration/run.py                  # all tests, gateway from $PGW_GATEWAY
#   /usr/bin/python3 tests/integration/run.py --self-test      # "gateway" = PostgreSQL itself
#   /usr/bin/python3 tests/integration/run.py test_cancel test_psql_scripts.PsqlScriptTest
#   /usr/bin/python3 tests/integration/run.py -k unicode       # substring filter on test ids
#   /usr/bin/python3 tests/integration/run.py --list
#
# The gateway binary is $PGW_GATEWAY (default <repo>/build/multigateway);
# --gateway PATH overrides it. Extra gateway flags: $PGW_GATEWAY_ARGS.
# Last line printed: "N passed, M failed" (", K skipped" when some were).
# Exit status: 0 all passed, 1 some failed, 2 usage/setup error.
import argparse
import os
import signal
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree

if sys.executable != "/usr/bin/python3" and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
    sys.stderr.write("note: running under %s; these tests are meant for Debian's /usr/bin/python3\n"
                     % sys.executable)

import harness  # noqa: E402

# The real-client modules that --remote runs again with every gateway
# reaching PostgreSQL through a multipooler (harness: $PGW_REMOTE=1).
REMOTE_MODULES = ["test_psql_scripts", "test_psycopg2_compat", "test_psycopg3", "test_asyncpg",
                  "test_node_pg", "test_pgbench", "test_extended_wire", "test_session_state",
                  "test_cancel", "test_database_ddl", "test_large_result"]


def read_known_failures(path):
    """{test id: reason} from lines 'module.Class.method  # reason'."""
    known = {}
    with open(path) as f:
        for line in f:
            tid, _, why = line.partition("#")
            if tid.strip():
                known[tid.strip()] = why.strip() or "no reason given"
    return known


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class PrintingResult(unittest.TestResult):
    def __init__(self, verbose=False):
        super().__init__()
        self.verbose = verbose
        self.passed = []
        self._t0 = {}

    def _line(self, test, word, extra=""):
        dt = time.monotonic() - self._t0.get(test.id(), time.monotonic())
        print("%-7s %s (%.1fs)%s" % (word, test.id(), dt, extra), flush=True)

    def startTest(self, test):
        super().startTest(test)
        self._t0[test.id()] = time.monotonic()
        if self.verbose:
            print("...     %s" % test.id(), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test)
        self._line(test, "PASS")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(test, "FAIL")
        print(self._exc_info_to_string(err, test), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        if test.id().startswith("unittest.") or not hasattr(test, "_testMethodName"):
            print("ERROR   %s" % test, flush=True)
        else:
            self._line(test, "ERROR")
        print(self._exc_info_to_string(err, test), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(test, "SKIP", " - " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(test, "XFAIL")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(test, "XPASS")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            print("  subtest %s failed" % subtest.id(), flush=True)
            print(self._exc_info_to_string(err, test), flush=True)


def load(names, pattern):
    loader = unittest.TestLoader()
    if names:
        suite = unittest.TestSuite()
        for n in names:
            n = n[:-3] if n.endswith(".py") else n
            n = os.path.basename(n) if "/" in n else n
            suite.addTests(loader.loadTestsFromName(n))
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(iter_tests(suite))
    if pattern:
        tests = [t for t in tests if pattern in t.id()]
    return unittest.TestSuite(tests), tests


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tests", nargs="*", help="module, module.Class or module.Class.method")
    ap.add_argument("--self-test", action="store_true",
                    help="no gateway: point the 'gateway' endpoints at PostgreSQL itself")
    ap.add_argument("--gateway", help="gateway binary (default $PGW_GATEWAY or build/multigateway)")
    ap.add_argument("-k", dest="pattern", help="only tests whose id contains this")
    ap.add_argument("--list", action="store_true", help="list tests and exit")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--known-failures", metavar="FILE",
                    help="tests listed in FILE (one id per line, '#' starts a reason) may fail "
                         "without failing the run; each is reported, and so is one that passes")
    ap.add_argument("--remote", action="store_true",
                    help="gateways use a multipooler (--pooler); without test names, runs "
                         + ", ".join(REMOTE_MODULES))
    args = ap.parse_args()

    if args.remote:
        os.environ["PGW_REMOTE"] = "1"
        if not args.tests:
            args.tests = list(REMOTE_MODULES)

    if args.self_test:
        os.environ["PGW_SELF_TEST"] = "1"
    if args.gateway:
        os.environ["PGW_GATEWAY"] = os.path.abspath(args.gateway)

    try:
        suite, tests = load(args.tests, args.pattern)
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 2
    if args.list:
        for t in tests:
            print(t.id())
        return 0
    if not tests:
        print("no tests selected", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    env = harness.Env(self_test=args.self_test, keep=args.keep)
    harness.set_env(env)
    result = PrintingResult(verbose=args.verbose)
    t0 = time.monotonic()
    interrupted = False
    setup_failed = False
    try:
        try:
            env.start()
        except Exception as e:
            print("harness setup failed: %s" % e, file=sys.stderr)
            setup_failed = True
        if not setup_failed:
            mode = ("self-test (gateway = PostgreSQL)" if args.self_test
                    else "gateway %s" % env.gateway_binary)
            if env.remote and not args.self_test:
                mode += " through multipooler %s" % env.multipooler_binary
            print("# PostgreSQL on 127.0.0.1:%d, %s, tmp %s" % (env.pg.port, mode, env.tmp),
                  flush=True)
            suite.run(result)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        interrupted = True
    finally:
        if result.failures or result.errors or interrupted or setup_failed:
            for ep in env.gateways():
                if ep.logfile:
                    print("---- gateway %s log tail (%s) ----" % (ep.name, ep.logfile))
                    print(ep.log_tail(40))
            if env.pg.started and (setup_failed or interrupted):
                print("---- postgres log tail ----")
                print(env.pg.log_tail(20))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        env.close()

    if setup_failed:
        print("0 passed, %d failed" % len(tests))
        return 2
    npass = len(result.passed)
    failed_ids = [t.id() if hasattr(t, "_testMethodName") else str(t)
                  for t, _ in result.failures + result.errors]
    nfail = len(failed_ids) + len(result.unexpectedSuccesses)
    if args.known_failures:
        known = read_known_failures(args.known_failures)
        for tid in failed_ids:
            if tid in known:
                print("KNOWN   %s -- %s" % (tid, known[tid]))
                nfail -= 1
        for t in result.passed:
            if t.id() in known:
                print("FIXED   %s passes: take it out of %s" % (t.id(), args.known_failures))
    for problem in env.shutdown_problems:
        print("FAIL    at shutdown: %s" % problem)
        nfail += 1
    nskip = len(result.skipped)
    if interrupted:
        nfail = max(nfail, 1)
    print("# %.1fs" % (time.monotonic() - t0))
    line = "%d passed, %d failed" % (npass, nfail)
    if nskip:
        line += ", %d skipped" % nskip
    print(line, flush=True)
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
