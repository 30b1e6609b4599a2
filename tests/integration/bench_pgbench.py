#!/usr/bin/python3
"""pgbench through the gateway vs PgBouncer vs direct (driver of bench/pgbench.sh).

Starts its own throwaway PostgreSQL (harness.Env), initializes pgbench
tables directly, starts the gateway (--pool-mode transaction --pool-size N),
PgBouncer (pool_mode=transaction, default_pool_size=N, auth_type=trust,
run as the postgres OS user) and the remote path (a multipooler with
--pool-size N, a second gateway with --pooler pointing at it), then runs
interleaved rounds of direct -> gateway -> pgbouncer -> remote and prints TPS
per target and the median ratios gateway/direct, gateway/pgbouncer,
remote/gateway and remote/pgbouncer.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import harness  # noqa: E402

DB = "bench"


def find_pgbouncer():
    for p in ("/usr/sbin/pgbouncer", shutil.which("pgbouncer") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


def pgbouncer_version(binary):
    r = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    m = re.search(r"PgBouncer (\d+)\.(\d+)", r.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class PgBouncer:
    def __init__(self, binary, tmp, backend_port, pool_size, max_clients):
        self.binary = binary
        self.dir = os.path.join(tmp, "pgbouncer")
        os.makedirs(self.dir, exist_ok=True)
        self.port = harness.free_port()
        self.socket_dir = self.dir
        self.logfile = os.path.join(self.dir, "pgbouncer.log")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        userlist = os.path.join(self.dir, "userlist.txt")
        with open(userlist, "w") as f:
            f.write('"%s" ""\n' % harness.SUPERUSER)
        extra = ""
        if pgbouncer_version(binary) >= (1, 21):
            extra = "max_prepared_statements = 200\n"   # protocol-level prepared statements
        with open(self.ini, "w") as f:
            f.write("""[databases]
* = host=127.0.0.1 port={bport}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {dir}
auth_type = trust
auth_file = {userlist}
pool_mode = transaction
default_pool_size = {pool}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {maxc}
max_db_connections = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {log}
pidfile = {dir}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
{extra}""".format(bport=backend_port, port=self.port, dir=self.dir, userlist=userlist,
                  pool=pool_size, maxc=max_clients, log=self.logfile, extra=extra))
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                shutil.chown(os.path.join(root, name), "postgres", "postgres")
        shutil.chown(self.dir, "postgres", "postgres")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", self.binary, self.ini],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=harness._set_pdeathsig)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pgbouncer exited (%s):\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pgbouncer did not start:\n" + self.log_tail())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=20):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def endpoint(self):
        return harness.Endpoint("pgbouncer", self.port, self.socket_dir, "pgbouncer")


def run_pgbench(ep, args, mode):
    argv = [harness.PGBENCH, "-n", "-M", mode, "-c", str(args.clients), "-j", str(args.threads),
            "-T", str(args.duration)]
    if args.select_only:
        argv.append("-S")
    r = subprocess.run(argv, env=ep.env(dbname=DB), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=args.duration + 300)
    m = re.search(r"^tps = ([\d.]+)", r.stdout, re.M)
    f = re.search(r"^number of failed transactions: (\d+)", r.stdout, re.M)
    failed = int(f.group(1)) if f else 0
    if r.returncode != 0 or not m or failed:
        lines = r.stdout.strip().splitlines() or [""]
        first = next((x for x in lines if "error" in x.lower()), lines[-1])
        return None, "pgbench exit %d, failed %d: %s" % (r.returncode, failed, first.strip()[:300])
    return float(m.group(1)), None


def bench_mode(args, mode, eps, order):
    """Interleaved rounds of one query mode; the median tps per target."""
    print("\n# pgbench -n -M %s %s-c %d -j %d -T %d, %d rounds, interleaved %s"
          % (mode, "-S " if args.select_only else "", args.clients, args.threads,
             args.duration, args.rounds, " -> ".join(order)), flush=True)
    tps = {t: [] for t in order}
    errs = {t: [] for t in order}
    for rnd in range(1, args.rounds + 1):
        for t in order:
            ep = eps.get(t)
            if ep is None:
                continue
            if not ep.alive():
                errs[t].append("process died")
                print("round %d  %-9s  DIED" % (rnd, t), flush=True)
                continue
            v, err = run_pgbench(ep, args, mode)
            if v is None:
                errs[t].append(err)
                print("round %d  %-9s  FAILED: %s" % (rnd, t, err), flush=True)
            else:
                tps[t].append(v)
                print("round %d  %-9s  %10.1f tps" % (rnd, t, v), flush=True)
    # A target that failed any round has no figure: a lucky round would
    # pass for its throughput.
    med = {t: statistics.median(v) for t, v in tps.items() if v and not errs[t]}
    print("median tps (%s, -c %d, pool %d):" % (mode, args.clients, args.pool_size))
    for t in order:
        if t in med:
            print("  %-9s  %10.1f" % (t, med[t]))
        else:
            why = errs[t][0] if errs[t] else ("not available" if t not in eps else "no result")
            print("  %-9s  n/a (%s)" % (t, why))
    return med, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="all", choices=["simple", "extended", "prepared", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None, help="gateway --workers (default: its own)")
    ap.add_argument("--tpcb", dest="select_only", action="store_false",
                    help="TPC-B-like instead of select-only (-S)")
    ap.add_argument("--targets", default="direct,gateway,pgbouncer,remote")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]

    env = harness.Env(require_gateway=False, keep=args.keep)
    bouncer = None
    pooler = None
    try:
        env.start()
        eps = {"direct": env.direct}
        env.create_database(DB)
        print("# PostgreSQL 15 on 127.0.0.1:%d; pgbench -i -s %d ..." % (env.pg.port, args.scale),
              flush=True)
        r = subprocess.run([harness.PGBENCH, "-i", "-q", "-s", str(args.scale)],
                           env=env.direct.env(dbname=DB), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            return 1
        if "gateway" in targets:
            if env.gateway_available():
                eps["gateway"] = env.gateway(name="bench", pool_size=args.pool_size,
                                             pool_timeout=60, workers=args.workers)
                print("# gateway: %s (pool-size %d)" % (env.gateway_binary, args.pool_size))
            else:
                print("# gateway: NOT FOUND at %s -- build it or set PGW_GATEWAY; "
                      "benchmarking the other targets only" % env.gateway_binary, flush=True)
        if "pgbouncer" in targets:
            binary = find_pgbouncer()
            if binary:
                bouncer = PgBouncer(binary, env.tmp, env.pg.port, args.pool_size,
                                    max_clients=args.clients + 100)
                bouncer.start()
                eps["pgbouncer"] = bouncer.endpoint()
                ver = pgbouncer_version(binary)
                print("# pgbouncer %d.%d: pool_mode=transaction default_pool_size=%d"
                      % (ver + (args.pool_size,)))
                if args.mode in ("prepared", "all") and ver < (1, 21):
                    print("# note: PgBouncer < 1.21 cannot do -M prepared in transaction mode")
            else:
                print("# pgbouncer: not installed (apt-get install pgbouncer); skipped")
        if "remote" in targets:
            # client -> gateway --pooler -> multipooler (gRPC) -> PostgreSQL; the
            # multipooler owns the PostgreSQL connections, the same number.
            import test_multipooler
            if env.gateway_available() and os.access(test_multipooler.binary(), os.X_OK):
                wargs = ["--workers", str(args.workers)] if args.workers else []
                pooler = test_multipooler.Pooler(env.tmp, env.pg.port, "--pool-size",
                                                 str(args.pool_size), "--pool-timeout", "60",
                                                 *wargs)
                eps["remote"] = env.gateway(name="bench-remote", pool_size=args.pool_size,
                                            pool_timeout=60, workers=args.workers,
                                            extra_args=["--pooler", "127.0.0.1:%d" % pooler.port])
                print("# remote: gateway --pooler -> %s (pool-size %d)"
                      % (test_multipooler.binary(), args.pool_size))
            else:
                print("# remote: no gateway or multipooler binary; skipped", flush=True)
        order = [t for t in ("direct", "gateway", "pgbouncer", "remote") if t in targets]
        modes = ["simple", "extended", "prepared"] if args.mode == "all" else [args.mode]
        summary = []
        failed = False
        for mode in modes:
            med, errs = bench_mode(args, mode, eps, order)
            summary.append((mode, med, errs))
            failed |= any(errs[t] for t in order if t in eps and t != "pgbouncer")
        print("\nsummary (%s-c %d -j %d, pool %d, median of %d rounds):"
              % ("-S " if args.select_only else "TPC-B ", args.clients, args.threads,
                 args.pool_size, args.rounds))
        print("  %-9s %11s %11s %11s %11s %15s %18s %15s %17s"
              % ("mode", "direct", "gateway", "pgbouncer", "remote", "gateway/direct",
                 "gateway/pgbouncer", "remote/gateway", "remote/pgbouncer"))
        for mode, med, errs in summary:
            def cell(t):
                return "%11.1f" % med[t] if t in med else "%11s" % "n/a"

            def ratio(a, b):
                return ("%.3f" % (med[a] / med[b])) if a in med and b in med and med[b] else "n/a"
            print("  %-9s %s %s %s %s %15s %18s %15s %17s"
                  % (mode, cell("direct"), cell("gateway"), cell("pgbouncer"), cell("remote"),
                     ratio("gateway", "direct"), ratio("gateway", "pgbouncer"),
                     ratio("remote", "gateway"), ratio("remote", "pgbouncer")))
        return 1 if failed else 0
    finally:
        if bouncer:
            bouncer.stop()
        if pooler:
            pooler.stop()
        env.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
