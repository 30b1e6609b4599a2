#!/usr/bin/python3
"""Instructions per transaction: embedded gateway vs gateway -> multipooler.

Runs each proxy process under valgrind's callgrind, which counts
instructions rather than time, so the figures do not depend on what else
the machine is doing. For each path and pgbench -M mode it runs
`pgbench -n -S` twice (N and 2N transactions, each in a fresh process) and
reports the marginal cost per transaction, (I(2N) - I(N)) / N, of each
process: the gateway alone on the embedded path, the gateway and the
multipooler on the remote path. With --top K it also lists the K
functions with the most instructions (self cost) of the 2N run.

Usage: bench/cost.sh [--modes simple,extended,prepared] [--transactions N] [--top K]
"""
import argparse
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DB = "bench_cost"


def callgrind(argv, out):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
            "--dump-instr=no", "--collect-jumps=no"] + argv


def total_instructions(out_prefix):
    """Sum of the Ir totals of a callgrind run (every thread's file)."""
    total = 0
    for path in glob.glob(out_prefix + "*"):
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"(?:summary|totals):\s+(\d+)", line)
                if m:
                    total += int(m.group(1))
                    break
    return total


def top_functions(out_prefix, k):
    files = sorted(glob.glob(out_prefix + "*"))
    if not files:
        return []
    r = subprocess.run(["callgrind_annotate", "--threshold=99"] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([\s\d.%]+\)\s+)?(\S.*)", line)
        if m and ":" in m.group(2) and not m.group(2).startswith("PROGRAM TOTALS"):
            rows.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
        if len(rows) >= k:
            break
    return rows


def run_once(env, path, mode, n, clients, tag):
    """Start the path's processes under callgrind, run n transactions in
    all, stop them; returns {process: (instructions, out_prefix)}."""
    outs = {}
    procs = []
    try:
        gw_extra = []
        if path == "remote":
            prefix = os.path.join(env.tmp, "cg-%s-mp" % tag)
            mp = harness.MultipoolerProcess(env.multipooler_binary, tag, env.tmp, env.pg.port,
                                            pool_size=8)
            mp.argv = callgrind(mp.argv, prefix + ".%p")
            mp.start(ready_timeout=120)
            procs.append(("multipooler", mp, prefix))
            gw_extra = ["--pooler", "127.0.0.1:%d" % mp.port]
        prefix = os.path.join(env.tmp, "cg-%s-gw" % tag)
        gw = harness.GatewayProcess(env.gateway_binary, tag, env.tmp, env.pg.port, pool_size=8,
                                    pool_timeout=120, workers=1, extra_args=gw_extra)
        gw.argv = callgrind(gw.argv, prefix + ".%p")
        gw.start(ready_timeout=120)
        procs.insert(0, ("gateway", gw, prefix))
        pgenv = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(gw.port),
                     PGUSER=harness.SUPERUSER, PGDATABASE=DB)
        per_client = max(1, n // clients)
        r = subprocess.run([harness.PGBENCH, "-n", "-S", "-M", mode, "-c", str(clients), "-j", "1",
                            "-t", str(per_client)], env=pgenv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("pgbench failed through %s:\n%s" % (path, r.stdout[-2000:]))
    finally:
        for name, p, prefix in procs:
            p.stop(timeout=300)
            outs[name] = (total_instructions(prefix), prefix)
    return outs, per_client * clients


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="simple,extended,prepared")
    ap.add_argument("--transactions", type=int, default=2000, help="N (the runs do N and 2N)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if subprocess.run(["which", "valgrind"], stdout=subprocess.DEVNULL).returncode != 0:
        print("bench_cost: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    env = harness.Env(keep=args.keep)
    try:
        env.start()
        env.create_database(DB)
        subprocess.run([harness.PGBENCH, "-i", "-q", "-s", "1"], env=env.direct.env(dbname=DB),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("# instructions per transaction (callgrind Ir), pgbench -n -S -c %d, marginal "
              "cost between %d and %d transactions" % (args.clients, args.transactions,
                                                         2 * args.transactions))
        print("%-9s %-9s %12s %12s %12s %8s" % ("mode", "path", "gateway", "multipooler",
                                                  "total", "ratio"))
        for mode in [m for m in args.modes.split(",") if m]:
            per = {}
            for path in ("embedded", "remote"):
                a, na = run_once(env, path, mode, args.transactions, args.clients,
                                 "%s-%s-1" % (mode, path))
                b, nb = run_once(env, path, mode, 2 * args.transactions, args.clients,
                                 "%s-%s-2" % (mode, path))
                cost = {k: (b[k][0] - a[k][0]) / float(nb - na) for k in b}
                per[path] = cost
                total = sum(cost.values())
                ratio = "" if path == "embedded" else "%.2fx" % (
                    total / max(1.0, sum(per["embedded"].values())))
                print("%-9s %-9s %12.0f %12s %12.0f %8s"
                      % (mode, path, cost["gateway"],
                         "%.0f" % cost["multipooler"] if "multipooler" in cost else "-",
                         total, ratio), flush=True)
                if args.top:
                    for name in b:
                        print("    top of %s (%s, %d transactions):" % (name, path, nb))
                        for ir, fn in top_functions(b[name][1], args.top):
                            print("      %12d  %s" % (ir, fn))
        return 0
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
