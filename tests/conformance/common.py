"""What the conformance drivers share: logging, free ports, a gateway
process started in front of the suite's PostgreSQL, and result files.

Each driver (go_suites.py, npm_suites.py, pgproto.py, isolation.py,
libpq_pipeline.py) writes one JSON file that summarize.py reads.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time


def logger(prefix, stamp=True):
    """A log(msg) writing '[PREFIX HH:MM:SS] msg' to stderr."""
    def log(msg):
        when = " " + time.strftime("%H:%M:%S") if stamp else ""
        sys.stderr.write("[%s%s] %s\n" % (prefix, when, msg))
        sys.stderr.flush()
    return log


def free_port():
    """A loopback TCP port nobody listens on at the moment of asking."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


class Gateway:
    """A multigateway listening on a free loopback port; ARGS are its flags
    besides --listen. Its output goes to LOGFILE."""

    def __init__(self, binary, args, logfile, start_timeout=15.0):
        self.port = free_port()
        self.argv = [binary, "--listen", "127.0.0.1:%d" % self.port] + list(args)
        self.logfile = logfile
        self.start_timeout = start_timeout
        self.proc = None

    def start(self):
        with open(self.logfile, "w") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited with %s:\n%s" % (
                    self.proc.returncode, open(self.logfile).read()[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("gateway did not listen on %d within %.0f s" % (
            self.port, self.start_timeout))

    def exited(self):
        """The exit status when the gateway is gone, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, wait=20):
        """Stops the gateway. Returns a note when it died during the run or
        did not exit cleanly on SIGTERM, else None."""
        if self.proc is None:
            return None
        died = self.proc.poll()
        if died is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        if died is not None:
            return "gateway exited with %s during the run (see %s)" % (died, self.logfile)
        if rc not in (0, -signal.SIGTERM):
            return "gateway exit status %s on SIGTERM (see %s)" % (rc, self.logfile)
        return None


def psql_env(**extra):
    """The caller's environment without the PG* settings that would point
    psql or a driver somewhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


# ------------------------------------------------------------------ results
#
# Every driver writes, per suite, {side: record} for the sides it ran
# ("direct", "gateway"), and under "rerun" {side: record} for the tests that
# failed through the gateway only, each rerun alone on "direct", "gateway"
# and "session" (a gateway in --pool-mode session). summarize.py judges.

STATUSES = ("passed", "failed", "skipped")


def record(status, reasons=None, seconds=None, error=None):
    """A side's result: STATUS {test: passed|failed|skipped}, REASONS {test:
    why it failed}, ERROR when the run itself broke (then the counts say
    only what ran before it)."""
    rec = {"tests": dict(sorted(status.items())),
           "reasons": {t: w for t, w in sorted((reasons or {}).items()) if status.get(t) == "failed"}}
    for s in STATUSES:
        rec[s] = sum(1 for v in status.values() if v == s)
    rec["failed_tests"] = sorted(t for t, v in status.items() if v == "failed")
    if seconds is not None:
        rec["seconds"] = round(seconds, 1)
    if error:
        rec["error"] = error
    return rec


def gateway_only(res):
    """Tests that failed through the gateway and not directly."""
    d = (res.get("direct") or {}).get("tests", {})
    g = (res.get("gateway") or {}).get("tests", {})
    return sorted(t for t, v in g.items() if v == "failed" and d.get(t) != "failed")


def add_reruns(res, rerun, sides=("direct", "gateway", "session")):
    """Reruns the gateway-only failures of RES alone: RERUN(tests, side) ->
    record of those tests on SIDE. Stored under res["rerun"]."""
    tests = gateway_only(res)
    if not tests:
        return res
    res["rerun"] = {}
    for side in sides:
        try:
            res["rerun"][side] = rerun(tests, side)
        except Exception as e:  # noqa: BLE001 - a broken rerun is reported, not fatal
            res["rerun"][side] = record({}, error="rerun failed: %s" % e)
    return res
