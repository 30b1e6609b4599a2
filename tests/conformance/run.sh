#!/bin/bash
# PostgreSQL's own suites (pg_regress, libpq_pipeline, isolation) and
# drivers' suites (npm, Go) plus our pgproto scripts, each run directly
# against a throwaway PostgreSQL 15 and through multigateway; failures only
# through the gateway are rerun alone (directly, through the gateway and
# through a session-mode gateway); summarize.py prints the table and judges
# the gateway against baseline.json (see README.md, "How a run is judged").
#
#   tests/conformance/run.sh [--direct-only|--gateway-only] [--update-baseline] [--keep]
#
# As root on Debian 12. Environment:
#   PGW_GATEWAY            gateway binary (default <repo>/build-conf/multigateway,
#                          then <repo>/build/multigateway)
#   PGW_GATEWAY_ARGS       extra gateway flags
#   PGW_CONF_POOL_SIZE     --pool-size (default 40)
#   PGW_CONF_TIMEOUT       seconds allowed per pg_regress run (default 1200)
#   PGW_CONF_CACHE         where the PostgreSQL source package goes
#                          (default tests/conformance/.cache)
#   PGW_CONF_SKIP          extra tests to leave out (space separated)
#   PGW_CONF_RESULTS       where the results go (default tests/conformance/results)
# Exit status: 0 ok; 1 regression against baseline.json (or a suite that
# ran fewer tests than the baseline); 2 setup error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
CACHE=${PGW_CONF_CACHE:-$HERE/.cache}
RESULTS=${PGW_CONF_RESULTS:-$HERE/results}
POOL_SIZE=${PGW_CONF_POOL_SIZE:-40}
RUN_TIMEOUT=${PGW_CONF_TIMEOUT:-1200}

DO_DIRECT=1 DO_GATEWAY=1 UPDATE_BASELINE=0 KEEP=0
for a in "$@"; do
  case "$a" in
    --direct-only) DO_GATEWAY=0 ;;
    --gateway-only) DO_DIRECT=0 ;;
    --update-baseline) UPDATE_BASELINE=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

log() { printf '[conformance %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s; }

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started as the postgres OS user)"
T_START=$(now)

# ---------------------------------------------------------------- packages
export DEBIAN_FRONTEND=noninteractive
need_pkgs=()
dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q 'ok installed' || need_pkgs+=(postgresql-15)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PGVER=$(dpkg-query -W -f='${Version}' postgresql-15)
need_pkgs=()
# pg_regress ships in postgresql-client-15; server headers (for regress.so)
# in postgresql-server-dev-15. Both pinned to the installed server's version.
[ -x "$PG_REGRESS" ] || need_pkgs+=("postgresql-client-15=$PGVER")
[ -f /usr/include/postgresql/15/server/postgres.h ] || need_pkgs+=("postgresql-server-dev-15=$PGVER")
command -v gcc >/dev/null || need_pkgs+=(gcc libc6-dev)
# libpq_pipeline builds against the installed libpq
[ -f /usr/include/postgresql/libpq-fe.h ] || need_pkgs+=(libpq-dev)
command -v dpkg-source >/dev/null || need_pkgs+=(dpkg-dev)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v runuser >/dev/null || need_pkgs+=(util-linux)
# Go drivers' test suites (go_suites.py): the compiler, the drivers' source
# packages (their tests ship in them) and what the tests import
for p in golang-go golang-github-lib-pq-dev golang-github-jackc-pgx-v4-dev \
         golang-github-jackc-pgconn-dev golang-github-jackc-pgmock-dev \
         golang-github-masterminds-semver-dev golang-github-stretchr-testify-dev openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs+=("$p")
done
# npm drivers' test suites (npm_suites.py): Node.js and npm (the machine's,
# else Debian's), and for node-gyp building libpq's addon a C++ compiler,
# make and the Node.js headers (libpq-dev is asked for above)
command -v npm >/dev/null || need_pkgs+=(nodejs npm)
command -v g++ >/dev/null || need_pkgs+=(g++)
command -v make >/dev/null || need_pkgs+=(make)
[ -f /usr/include/node/node.h ] || [ -f /usr/local/include/node/node.h ] || need_pkgs+=(libnode-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

# ---------------------------------------------------------------- sources
UPVER=${PGVER%%-*}                     # 15.18-0+deb12u1 -> 15.18
SRCDIR=$CACHE/postgresql-15-$UPVER
if [ ! -f "$SRCDIR/src/test/regress/parallel_schedule" ]; then
  if ! apt-cache showsrc "postgresql-15=$PGVER" 2>/dev/null | grep -q "^Version: $PGVER\$"; then
    # mirror the configured Debian deb entries as deb-src (separate file;
    # the distribution's own sources file is left untouched)
    SRCLIST=/etc/apt/sources.list.d/pgw-conformance-src.list
    log "adding deb-src entries ($SRCLIST)"
    {
      for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        "$PY" - "$f" <<'PYEOF'
import sys
text = open(sys.argv[1]).read()
for stanza in text.split("\n\n"):
    d = {}
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        d[k.strip().lower()] = v.strip()
    if "deb" not in d.get("types", "").split() or "enabled" in d and d["enabled"] == "no":
        continue
    uris = d.get("uris", "").split()
    if not any("debian.org" in u or "debian" in u for u in uris):
        continue
    opt = " [signed-by=%s]" % d["signed-by"] if "signed-by" in d and "\n" not in d["signed-by"] else ""
    for u in uris:
        for s in d.get("suites", "").split():
            print("deb-src%s %s %s %s" % (opt, u, s, d.get("components", "main")))
PYEOF
      done
      grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        | grep -E 'debian\.org|/debian' | sed 's/^deb /deb-src /' || true
    } | sort -u > "$SRCLIST"
    [ -s "$SRCLIST" ] || die "found no Debian deb entries to mirror as deb-src"
    apt-get update -qq
  fi
  mkdir -p "$CACHE"
  log "apt-get source postgresql-15=$PGVER into $CACHE"
  (cd "$CACHE" && apt-get source -qq "postgresql-15=$PGVER" >/dev/null 2>"$CACHE/apt-source.log") \
    || { cat "$CACHE/apt-source.log" >&2; die "apt-get source failed"; }
  [ -f "$SRCDIR/src/test/regress/parallel_schedule" ] || die "no $SRCDIR/src/test/regress/parallel_schedule"
fi
REGSRC=$SRCDIR/src/test/regress

# ---------------------------------------------------------------- gateway
if [ "$DO_GATEWAY" = 1 ]; then
  GATEWAY=${PGW_GATEWAY:-}
  if [ -z "$GATEWAY" ]; then
    for g in "$REPO/build-conf/multigateway" "$REPO/build/multigateway"; do
      [ -x "$g" ] && { GATEWAY=$g; break; }
    done
  fi
  [ -n "$GATEWAY" ] && [ -x "$GATEWAY" ] || die "no gateway binary: build it (cmake -S . -B build-conf && cmake --build build-conf --target multigateway) or set PGW_GATEWAY"
fi

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d /tmp/pgw-conformance.XXXXXX)
chmod 755 "$WORK"
PG_PID_FILE=$WORK/pgdata/postmaster.pid
GW_PID= GW_PID2=
cleanup() {
  set +e
  if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null; fi
  if [ -n "$GW_PID2" ]; then kill "$GW_PID2" 2>/dev/null; wait "$GW_PID2" 2>/dev/null; fi
  if [ -f "$PG_PID_FILE" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pgdata" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a private copy of the regress directory the postgres user can read and
# (for results/, COPY TO, tablespaces) write
mkdir -p "$WORK/regress" "$WORK/lib"
cp -r "$REGSRC/sql" "$REGSRC/expected" "$REGSRC/data" "$REGSRC/parallel_schedule" "$REGSRC/resultmap" "$WORK/regress/"

# regress.so from the source tree against the installed server's headers;
# autoinc.so and refint.so (contrib/spi) come with the server package.
SKIP=" ${PGW_CONF_SKIP:-} "
if gcc -O2 -fPIC -shared -I/usr/include/postgresql/15/server -I/usr/include/postgresql/internal \
     -D_GNU_SOURCE -o "$WORK/lib/regress.so" "$REGSRC/regress.c" 2>"$WORK/regress-build.log"; then
  log "built regress.so"
else
  cat "$WORK/regress-build.log" >&2
  log "WARNING: regress.so did not build; skipping tests that load it"
  for f in "$WORK"/regress/sql/*.sql; do
    grep -q "libdir '/regress'" "$f" && SKIP+="$(basename "$f" .sql) "
  done
fi
for m in autoinc refint; do
  if [ -f "$PGBIN/../lib/$m.so" ]; then cp "$PGBIN/../lib/$m.so" "$WORK/lib/"
  else
    log "WARNING: no $m.so; skipping tests that load it"
    for f in "$WORK"/regress/sql/*.sql; do
      grep -q "libdir '/$m'" "$f" && SKIP+="$(basename "$f" .sql) "
    done
  fi
done
# filtered schedule: skipped tests removed (a group left empty is dropped)
"$PY" - "$WORK/regress/parallel_schedule" "$WORK/schedule" "$WORK/skipped.txt" "$SKIP" <<'PYEOF'
import sys
src, dst, skipped_out, skip = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4].split())
skipped = []
with open(src) as f, open(dst, "w") as out:
    for line in f:
        if line.startswith("test:"):
            names = line[5:].split()
            keep = [n for n in names if n not in skip]
            skipped += [n for n in names if n in skip]
            if keep:
                out.write("test: " + " ".join(keep) + "\n")
        else:
            out.write(line)
open(skipped_out, "w").write("".join(n + "\n" for n in skipped))
PYEOF
chown -R postgres: "$WORK"

# ---------------------------------------------------------------- PostgreSQL
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT_=$(free_port)
mkdir -p "$WORK/pgsock"; chown postgres: "$WORK/pgsock"
log "initdb + start PostgreSQL $UPVER on 127.0.0.1:$PGPORT_"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pgdata" -U postgres -A trust -E UTF8 --locale=C \
  --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$WORK/pgdata/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT_
unix_socket_directories = '$WORK/pgsock'
max_connections = 120
fsync = off
synchronous_commit = off
full_page_writes = off
lc_messages = 'C'
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pgdata" -l "$WORK/postgres.log" -w -t 60 start >/dev/null \
  || { cat "$WORK/postgres.log" >&2; die "PostgreSQL did not start"; }

# clean client environment for pg_regress / psql
for v in $(env | sed -n 's/^\(PG[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset PSQLRC LC_ALL LANG LANGUAGE || true

# wait_listening PORT PID LOG: until a gateway accepts, or die with its log
wait_listening() {
  for _ in $(seq 100); do
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "gateway exited"; }
    sleep 0.1
  done
}

# ---------------------------------------------------------------- gateways
# One in transaction mode (the one judged), one in session mode: the
# isolation suite runs through it (concurrent sessions need a server
# connection each for their whole life), and every other suite reruns its
# gateway-only failures through it (the "session" column).
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
if [ "$DO_GATEWAY" = 1 ]; then
  GWPORT=$(free_port)
  log "starting gateway $GATEWAY on 127.0.0.1:$GWPORT (pool size $POOL_SIZE)"
  # shellcheck disable=SC2086
  "$GATEWAY" --listen "127.0.0.1:$GWPORT" --backend "host=127.0.0.1 port=$PGPORT_" \
    --pool-size "$POOL_SIZE" ${PGW_GATEWAY_ARGS:-} >"$WORK/gateway.log" 2>&1 &
  GW_PID=$!
  wait_listening "$GWPORT" "$GW_PID" "$WORK/gateway.log"
  GWPORT2=$(free_port)
  log "starting gateway $GATEWAY in session mode on 127.0.0.1:$GWPORT2"
  # shellcheck disable=SC2086
  "$GATEWAY" --listen "127.0.0.1:$GWPORT2" --backend "host=127.0.0.1 port=$PGPORT_" \
    --pool-mode session --pool-size "$POOL_SIZE" ${PGW_GATEWAY_ARGS:-} >"$WORK/gateway-session.log" 2>&1 &
  GW_PID2=$!
  wait_listening "$GWPORT2" "$GW_PID2" "$WORK/gateway-session.log"
fi
eps=()
[ "$DO_DIRECT" = 1 ] && eps+=(--endpoint "direct=$PGPORT_")
[ "$DO_GATEWAY" = 1 ] && eps+=(--endpoint "gateway=$GWPORT" --endpoint "session=$GWPORT2")

# run_suite NAME LIMIT CMD...: a driver bounded by LIMIT seconds; its exit
# status is kept for summarize.py (a driver that wrote no results fails)
run_suite() {
  local name=$1 limit=$2 rc; shift 2
  log "$name"
  set +e
  timeout -k 10 "$limit" "$@"
  rc=$?
  set -e
  echo "$rc" >"$RESULTS/$name.rc"
  [ "$rc" = 0 ] || log "WARNING: $name runner exit $rc${limit:+ (limit $limit s)}"
}

# ---------------------------------------------------------------- pg_regress
run_suite pg_regress $(( RUN_TIMEOUT * 5 )) "$PY" "$HERE/regress.py" --inputdir "$WORK/regress" \
  --schedule "$WORK/schedule" --skipped "$WORK/skipped.txt" --dlpath "$WORK/lib" \
  --work "$WORK/regress-out" --out "$RESULTS/pg_regress.json" --timeout "$RUN_TIMEOUT" "${eps[@]}"
[ -z "$GW_PID" ] || kill -0 "$GW_PID" 2>/dev/null || log "WARNING: the gateway died during pg_regress (see results/gateway.log)"

# ---------------------------------------------------------------- libpq_pipeline
# libpq's own pipeline-mode test program, its traces compared byte for byte
mkdir -p "$WORK/lpp"
run_suite libpq_pipeline 600 "$PY" "$HERE/libpq_pipeline.py" \
  --src "$SRCDIR/src/test/modules/libpq_pipeline" \
  --work "$WORK/lpp" --out "$RESULTS/libpq_pipeline.json" --direct-port "$PGPORT_" "${eps[@]}"

# ---------------------------------------------------------------- isolation
# through the session-mode gateway: it is this suite's "gateway" side
iso_eps=()
[ "$DO_DIRECT" = 1 ] && iso_eps+=(--endpoint "direct=$PGPORT_")
[ "$DO_GATEWAY" = 1 ] && iso_eps+=(--endpoint "gateway=$GWPORT2")
mkdir -p "$WORK/isolation"
run_suite isolation $(( RUN_TIMEOUT * 3 )) "$PY" "$HERE/isolation.py" \
  --src "$SRCDIR/src/test/isolation" --work "$WORK/isolation" \
  --out "$RESULTS/isolation.json" --timeout "$RUN_TIMEOUT" "${iso_eps[@]}"

# ---------------------------------------------------------------- npm drivers
# The libpq native binding's mocha tests and @databases/pg's jest tests, from
# their npm packages (npm/package-lock.json, npm ci into the cache), directly
# and through gateways of their own per suite.
npm_args=(--port "$PGPORT_" --pool-size "$POOL_SIZE" --cache "$CACHE/npm" --work "$WORK/npm"
          --out-dir "$RESULTS")
[ "$DO_GATEWAY" = 1 ] && npm_args+=(--gateway "$GATEWAY" "--gateway-args=${PGW_GATEWAY_ARGS:-}")
[ "$DO_DIRECT" = 1 ] && npm_args+=(--side direct)
[ "$DO_GATEWAY" = 1 ] && npm_args+=(--side gateway)
run_suite npm 1200 "$PY" "$HERE/npm_suites.py" "${npm_args[@]}"

# ---------------------------------------------------------------- pgproto
# pgpool-II's pgproto replays our message scripts (pgproto/*.pgproto)
# directly and through a gateway it starts; transcripts compared. The
# direct replay is the reference, so it runs even with --gateway-only.
pgp_args=(--direct-port "$PGPORT_")
[ "$DO_GATEWAY" = 1 ] && pgp_args+=(--gateway "$GATEWAY" --session-port "$GWPORT2")
[ "$DO_DIRECT" = 1 ] || pgp_args+=(--no-direct-report)
run_suite pgproto 400 "$PY" "$HERE/pgproto.py" --work "$WORK/pgproto" --out "$RESULTS/pgproto.json" \
  --cache "$CACHE/pgproto" "${pgp_args[@]}"

# ---------------------------------------------------------------- Go drivers
# lib/pq (text and binary parameters), pgx v4 and pgconn: their own tests
# from Debian's source packages, directly and through gateways of their
# own (TLS, hba rules, Unix socket). Runs last: it turns ssl on and adds
# pg_hba rules for its roles on this PostgreSQL.
go_args=(--pg-port "$PGPORT_" --pg-socket-dir "$WORK/pgsock" --work "$WORK/go" --out-dir "$RESULTS")
[ "$DO_GATEWAY" = 1 ] && go_args+=(--gateway "$GATEWAY")
[ "$DO_DIRECT" = 1 ] || go_args+=(--side gateway)
run_suite go 1500 "$PY" "$HERE/go_suites.py" "${go_args[@]}"

# ---------------------------------------------------------------- results
cp "$WORK/postgres.log" "$RESULTS/" 2>/dev/null || true
for f in gateway.log gateway-session.log; do [ -f "$WORK/$f" ] && cp "$WORK/$f" "$RESULTS/"; done
for d in "$WORK"/regress-out/*/; do
  [ -d "$d" ] || continue
  mkdir -p "$RESULTS/pg_regress/$(basename "$d")"
  for f in pg_regress.out regression.diffs; do
    [ -f "$d/$f" ] && cp "$d/$f" "$RESULTS/pg_regress/$(basename "$d")/"
  done
done
[ -d "$WORK/pgproto" ] && cp -r "$WORK/pgproto" "$RESULTS/pgproto"
[ -d "$WORK/isolation" ] && mkdir -p "$RESULTS/isolation" && for d in "$WORK"/isolation/*/; do
  [ -f "$d/regression.diffs" ] && mkdir -p "$RESULTS/isolation/$(basename "$d")" &&
    cp "$d/regression.diffs" "$RESULTS/isolation/$(basename "$d")/"
done
[ -d "$WORK/npm" ] && cp -r "$WORK/npm" "$RESULTS/npm"
mkdir -p "$RESULTS/go"
cp "$WORK"/go/*.log "$RESULTS/go/" 2>/dev/null || true

sides=()
[ "$DO_DIRECT" = 1 ] && sides+=(direct)
[ "$DO_GATEWAY" = 1 ] && sides+=(gateway)
args=(--results "$RESULTS" --baseline "$HERE/baseline.json" --pg-version "$PGVER"
      --total-seconds $(( $(now) - T_START )) --sides "${sides[*]}")
[ "$UPDATE_BASELINE" = 1 ] && args+=(--update-baseline)
set +e
"$PY" "$HERE/summarize.py" "${args[@]}"
rc=$?
set -e
exit $rc
