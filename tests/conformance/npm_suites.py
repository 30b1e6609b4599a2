#!/usr/bin/python3
"""Drivers' own test suites that ship inside npm packages, run once directly
against PostgreSQL and once through a multigateway started in front of it:

  libpq         the native binding's mocha tests (node_modules/libpq/test),
                pointed at the server by PGHOST/PGPORT/PGUSER/PGDATABASE
  databases-pg  @databases/pg's jest tests (lib/__tests__/*.test.pg.js),
                pointed at the server by DATABASE_URL (and PG_URL)

The packages come from tests/conformance/npm/package-lock.json, installed
with `npm ci` into a cache directory (libpq's addon is built there by
node-gyp against the installed Node.js headers and libpq-dev). Each suite
gets a fresh database per side; a test failing through the gateway only
is run again alone (mocha --grep / jest -t) directly, through a new gateway
and through one in session mode. One JSON file per suite (common.record).

    npm_suites.py --port PGPORT --gateway BINARY --cache DIR --work DIR \\
        --out-dir DIR [--suite NAME] [--side direct|gateway] [--pool-size N]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.join(HERE, "npm")
SIDES = ("direct", "gateway")
SUITE_TIMEOUT = 300

log = common.logger("npm-suites")


def clean_env():
    """The caller's environment without libpq/driver settings that would
    point a suite somewhere else."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k not in ("DATABASE_URL", "PG_URL", "TZ")}
    env["NODE_ENV"] = "test"
    env["CI"] = "true"
    return env


# ---------------------------------------------------------------- install

def install(cache):
    """npm ci into CACHE unless it already holds this lock file's tree."""
    os.makedirs(cache, exist_ok=True)
    lock = open(os.path.join(PKG_DIR, "package-lock.json"), "rb").read()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    stamp = hashlib.sha256(lock + node.encode()).hexdigest()
    stamp_file = os.path.join(cache, ".installed")
    addon = os.path.join(cache, "node_modules", "libpq", "build", "Release", "addon.node")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp and os.path.exists(addon):
        return 0
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(PKG_DIR, f), os.path.join(cache, f))
    env = clean_env()
    # node-gyp builds libpq's addon against the headers of the Node.js that
    # runs it instead of downloading them
    for d in ("/usr", "/usr/local"):
        if os.path.exists(os.path.join(d, "include", "node", "node.h")):
            env["npm_config_nodedir"] = d
            break
    log("npm ci in %s (%s)" % (cache, node))
    t0 = time.monotonic()
    r = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund",
                        "--loglevel=error"],
                       cwd=cache, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0 or not os.path.exists(addon):
        sys.stderr.write(r.stdout[-6000:])
        log("npm ci failed (exit %d)" % r.returncode)
        return 2
    open(stamp_file, "w").write(stamp)
    log("npm ci done in %.0f s" % (time.monotonic() - t0))
    return 0


# ---------------------------------------------------------------- server side

def psql(port, sql, dbname="postgres"):
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-d", dbname, "-v", "ON_ERROR_STOP=1", "-c", sql],
                       env=clean_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql: %s: %s" % (sql, r.stderr.strip()))


def fresh_database(port, dbname, setup):
    """A new database for one suite and side; SETUP holds what the suite
    expects of the server (run as superuser on the database)."""
    psql(port, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname)
    for sql in setup.get("cluster", []):
        psql(port, sql)
    psql(port, "CREATE DATABASE %s" % dbname)
    for sql in setup.get("database", []):
        psql(port, sql.replace("{db}", dbname))


# ---------------------------------------------------------------- suites

def first_line(msg, n=300):
    msg = (msg or "").strip()
    for line in msg.splitlines():
        if line.strip():
            return line.strip()[:n]
    return "(no message)"


def run_cmd(argv, cwd, env, out_path, timeout):
    with open(out_path, "w") as out:
        try:
            r = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout,
                               start_new_session=True)
            return r.returncode
        except subprocess.TimeoutExpired:
            out.write("\n(timed out after %d s)\n" % timeout)
            return 124


def libpq_run(nm, port, dbname, outdir, only=None):
    """mocha with its JSON reporter written to a file (the tests print to
    stdout themselves); ONLY: one test's full title."""
    report = os.path.join(outdir, "mocha.json")
    env = clean_env()
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres", PGDATABASE=dbname)
    # --timeout: mocha's 2 s default per test and hook is too short for the
    # tests that start 50 PostgreSQL backends back to back on a loaded
    # 2-core machine (they fail directly then, not only through the gateway)
    grep = ["--grep", "^%s$" % re.escape(only)] if only else []
    rc = run_cmd([os.path.join(nm, ".bin", "mocha"), "--timeout", "30000",
                  "--reporter", "json", "--reporter-option", "output=" + report] + grep,
                 os.path.join(nm, "libpq"), env, os.path.join(outdir, "output.txt"),
                 SUITE_TIMEOUT)
    results = {}
    if os.path.exists(report):
        data = json.load(open(report))
        for t in data.get("tests", []):
            err = t.get("err") or {}
            if t.get("pending"):
                results[t["fullTitle"]] = ("skipped", "")
            elif err:
                results[t["fullTitle"]] = ("failed", err.get("message", ""))
            else:
                results[t["fullTitle"]] = ("passed", "")
        # a failing hook is reported as a failure of its own; the tests it
        # kept from running are absent (and counted as failed by the caller
        # when the other side ran them)
        for t in data.get("failures", []):
            results.setdefault(t["fullTitle"], ("failed", (t.get("err") or {}).get("message", "")))
        for t in data.get("pending", []):
            results.setdefault(t["fullTitle"], ("skipped", ""))
    return rc, results


def jest_run(nm, port, dbname, outdir, only=None):
    """jest over the package's compiled tests, in place in node_modules;
    ONLY: one test, "FILE › FULL NAME"."""
    report = os.path.join(outdir, "jest.json")
    config = {
        "rootDir": os.path.join(nm, "@databases", "pg"),
        "testEnvironment": "node",
        "testRegex": "/lib/__tests__/%s\\.js$" % (
            re.escape(only.split(" › ")[0]) if only else "[^/]*\\.test\\.pg"),
        # the package lives in node_modules: keep jest from ignoring it
        "testPathIgnorePatterns": [],
        "haste": {"retainAllFiles": True},
        "cacheDirectory": os.path.join(os.path.dirname(nm), ".jest-cache"),
    }
    url = "postgres://postgres@127.0.0.1:%d/%s" % (port, dbname)
    env = clean_env()
    # The suite's expected values assume the client runs at UTC+09:30 (see
    # dates.test.pg: a TIMESTAMP read back as a local time) and a server
    # session at UTC (set on the database).
    env.update(DATABASE_URL=url, PG_URL=url, TZ="Australia/Darwin")
    name = ["-t", "^%s$" % re.escape(only.split(" › ", 1)[1])] if only else []
    rc = run_cmd([os.path.join(nm, ".bin", "jest"), "--config", json.dumps(config), "--ci",
                  "--runInBand", "--forceExit", "--json", "--outputFile=" + report] + name,
                 os.path.dirname(nm), env, os.path.join(outdir, "output.txt"), SUITE_TIMEOUT)
    results = {}
    if os.path.exists(report):
        data = json.load(open(report))
        for f in data.get("testResults", []):
            fname = os.path.basename(f["name"])
            fname = fname[:-3] if fname.endswith(".js") else fname
            for a in f.get("assertionResults", []):
                name = "%s › %s" % (fname, a["fullName"])
                if a["status"] == "passed":
                    results[name] = ("passed", "")
                elif a["status"] in ("pending", "skipped", "todo", "disabled"):
                    results[name] = ("skipped", "")
                else:
                    results[name] = ("failed", "\n".join(a.get("failureMessages") or []))
            # a file that failed with no failing test (a hook, or the file
            # did not load): count the file as a test of its own
            if f.get("status") == "failed" and not any(
                    r[0] == "failed" for n, r in results.items() if n.startswith(fname + " › ")):
                results["%s › (file)" % fname] = ("failed", f.get("message", ""))
    return rc, results


SUITES = {
    "libpq": {
        "run": libpq_run,
        "setup": {},
    },
    "databases-pg": {
        "run": jest_run,
        "setup": {
            # too-many-connections-for-role.test.pg creates this role; a
            # previous side's run left it behind
            "cluster": ["DROP ROLE IF EXISTS too_many_connections"],
            # dates.test.pg expects `SHOW timezone` to say UTC
            "database": ["ALTER DATABASE {db} SET timezone = 'UTC'"],
        },
    },
}


def summarise(results, other, seconds=None, error=None):
    """results: {test: (status, message)} of one side; OTHER: the other
    side's, whose tests missing here did not run here (a hook failed)."""
    status = {t: s for t, (s, _) in results.items()}
    msgs = {t: first_line(m) for t, (_, m) in results.items()}
    for t in other:
        # hook and file entries exist only where they failed
        if t not in status and not t.endswith(" › (file)") and '" hook ' not in t:
            status[t] = "failed"
            msgs[t] = "did not run on this side (a hook or the file failed first)"
    return common.record(status, msgs, seconds, error)


def run_side(a, nm, name, side, only=None, tag=""):
    """One run of suite NAME on SIDE (direct, gateway, session) in a fresh
    database, through a gateway of its own unless direct. Returns
    ({test: (status, message)}, seconds, error)."""
    suite = SUITES[name]
    outdir = os.path.join(a.work, name, side + tag)
    os.makedirs(outdir, exist_ok=True)
    dbname = "npm_%s_%s" % (name.replace("-", "_"), side)
    gw, port, error, raw = None, a.port, None, {}
    t0 = time.monotonic()
    try:
        fresh_database(a.port, dbname, suite["setup"])
        if side != "direct":
            mode = ["--pool-mode", "session"] if side == "session" else []
            gw = common.Gateway(a.gateway, [
                "--backend", "host=127.0.0.1 port=%d" % a.port,
                "--pool-size", str(a.pool_size)] + mode + a.gateway_args.split(),
                os.path.join(outdir, "gateway.log")).start()
            port = gw.port
        rc, raw = suite["run"](nm, port, dbname, outdir, only)
        if rc == 124:
            error = "timed out after %d s" % SUITE_TIMEOUT
        elif not raw:
            error = "no results (exit %d): see %s/output.txt" % (rc, outdir)
    except (RuntimeError, OSError, ValueError) as e:
        error = str(e)
    finally:
        if gw is not None:
            note = gw.stop()
            if note:
                error = (error + "; " if error else "") + note
    if error:
        log("%s %s%s: %s" % (name, side, tag, error))
    return raw, time.monotonic() - t0, error


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="PostgreSQL's port on 127.0.0.1")
    ap.add_argument("--gateway", help="multigateway binary (needed for the gateway side)")
    ap.add_argument("--gateway-args", default="", help="extra gateway flags")
    ap.add_argument("--pool-size", type=int, default=40)
    ap.add_argument("--cache", required=True, help="where npm ci installs the packages")
    ap.add_argument("--work", required=True, help="per-run outputs")
    ap.add_argument("--out-dir", required=True, help="one npm-NAME.json per suite goes here")
    ap.add_argument("--suite", action="append", choices=sorted(SUITES))
    ap.add_argument("--side", action="append", choices=SIDES)
    a = ap.parse_args()
    sides = a.side or list(SIDES)
    if "gateway" in sides and not (a.gateway and os.access(a.gateway, os.X_OK)):
        log("no gateway binary: %s" % a.gateway)
        return 2
    if install(a.cache) != 0:
        return 2
    nm = os.path.join(a.cache, "node_modules")
    os.makedirs(a.out_dir, exist_ok=True)
    for name in a.suite or sorted(SUITES):
        raw = {side: run_side(a, nm, name, side) for side in sides}
        res = {}
        for side in sides:
            other = raw["gateway" if side == "direct" else "direct"][0] if len(sides) > 1 else {}
            res[side] = summarise(raw[side][0], other, raw[side][1], raw[side][2])
            log("%s %s: %d passed, %d failed, %d skipped in %s s" % (
                name, side, res[side]["passed"], res[side]["failed"], res[side]["skipped"],
                res[side]["seconds"]))

        def rerun(tests, side):
            # each test alone: a run of its own, in a fresh database
            got, secs, errors = {}, 0.0, []
            for t in tests:
                r, sec, err = run_side(a, nm, name, side, only=t, tag="-rerun")
                secs += sec
                if t in r:
                    got[t] = r[t]
                elif err:
                    errors.append("%s: %s" % (t, err))
            return summarise(got, {}, secs, "; ".join(errors) or None)

        common.add_reruns(res, rerun)
        for side, rec in sorted(res.get("rerun", {}).items()):
            log("%s rerun %s: %s" % (name, side, " ".join(
                "%s=%s" % kv for kv in sorted(rec["tests"].items()))))
        common.write_json(os.path.join(a.out_dir, "npm-%s.json" % name), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
