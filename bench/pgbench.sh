#!/usr/bin/env bash
# pgbench.sh - pgbench through multigateway (embedded pooler and remote
# multipooler) vs PgBouncer vs PostgreSQL directly.
#
# Starts a throwaway PostgreSQL 15 (as the postgres OS user, loopback only),
# runs `pgbench -i -s $BENCH_SCALE` directly, then starts the gateway
# (--pool-mode transaction --pool-size $BENCH_POOL_SIZE) and PgBouncer
# (pool_mode=transaction, default_pool_size=$BENCH_POOL_SIZE, auth_type=trust,
# loopback + unix socket in the temp dir) and the remote path (multipooler
# --pool-size $BENCH_POOL_SIZE, a second gateway with --pooler pointing at
# it), and runs interleaved rounds
#     direct -> gateway -> pgbouncer -> remote   (x $BENCH_ROUNDS)
# of `pgbench -n -S -M MODE -c $BENCH_CLIENTS -j $BENCH_THREADS -T $BENCH_SECONDS`
# for each query mode (simple, extended, prepared). Prints TPS per round and
# target, the median per target, and a summary table of the medians with the
# ratios gateway/direct, gateway/pgbouncer, remote/gateway and
# remote/pgbouncer. Everything is torn down at exit.
#
# Usage (as root):  bench/pgbench.sh [all|simple|extended|prepared]
#
# With BENCH_TPCB=1 and -M prepared, give each client its own thread
# (BENCH_THREADS=BENCH_CLIENTS): pgbench prepares with the synchronous
# PQprepare, which stalls a thread's other clients while they hold the
# pool's connections in their transactions (so with PgBouncer too).
#
# Environment (defaults):
#   BENCH_MODE=all         pgbench -M, or all three (the first argument wins)
#   BENCH_ROUNDS=3         rounds of direct, gateway, pgbouncer
#   BENCH_SECONDS=10       -T per run
#   BENCH_CLIENTS=16       -c
#   BENCH_THREADS=2        -j
#   BENCH_POOL_SIZE=8      gateway --pool-size and pgbouncer default_pool_size
#   BENCH_SCALE=10         pgbench -i -s
#   BENCH_WORKERS=         gateway --workers (unset: the gateway's default)
#   BENCH_TPCB=0           1: TPC-B-like transactions instead of -S
#   BENCH_TARGETS=direct,gateway,pgbouncer,remote
#   PGW_GATEWAY=<repo>/build/multigateway   gateway binary; if it is missing
#                          the gateway rows say so and the rest still runs
#   PGW_MULTIPOOLER=<dir of PGW_GATEWAY>/multipooler   for the remote rows
#
# Needs Debian packages postgresql-15 and python3-psycopg2; pgbouncer is
# installed with apt-get if missing. Exit status: 0 ok, 1 a direct, gateway
# or remote run failed, 2 setup problem.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
MODE=${1:-${BENCH_MODE:-all}}

die() { echo "pgbench.sh: $*" >&2; exit 2; }

case "$MODE" in all|simple|extended|prepared) ;; *) die "mode must be all, simple, extended or prepared (got '$MODE')";; esac
[ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL and PgBouncer run via runuser -u postgres)"
[ -x "$PY" ] || die "missing $PY"
[ -x /usr/lib/postgresql/15/bin/pgbench ] || die "missing PostgreSQL 15 (apt-get install postgresql-15)"
"$PY" -c 'import psycopg2' 2>/dev/null || die "missing python3-psycopg2 (apt-get install python3-psycopg2)"

if ! [ -x /usr/sbin/pgbouncer ] && ! command -v pgbouncer >/dev/null 2>&1; then
    echo "pgbench.sh: installing pgbouncer" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q pgbouncer >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q pgbouncer >/dev/null; } \
        || echo "pgbench.sh: could not install pgbouncer; its rows will say n/a" >&2
fi

args=(--mode "$MODE"
      --rounds "${BENCH_ROUNDS:-3}"
      --duration "${BENCH_SECONDS:-10}"
      --clients "${BENCH_CLIENTS:-16}"
      --threads "${BENCH_THREADS:-2}"
      --pool-size "${BENCH_POOL_SIZE:-8}"
      --scale "${BENCH_SCALE:-10}"
      --targets "${BENCH_TARGETS:-direct,gateway,pgbouncer,remote}")
[ -n "${BENCH_WORKERS:-}" ] && args+=(--workers "$BENCH_WORKERS")
[ "${BENCH_TPCB:-0}" = 1 ] && args+=(--tpcb)

exec "$PY" "$ROOT/tests/integration/bench_pgbench.py" "${args[@]}"
