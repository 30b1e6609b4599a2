#!/bin/bash
# PostgreSQL 15 core regression suite (pg_regress, installcheck style,
# parallel_schedule) run once directly against a throwaway PostgreSQL 15 and
# once through multigateway; prints a per-side table, lists tests that pass
# directly but fail through the gateway, writes results/summary.json and
# compares with baseline.json.
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
# Exit status: 0 ok; 1 regression against baseline.json; 2 setup error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
CACHE=${PGW_CONF_CACHE:-$HERE/.cache}
RESULTS=$HERE/results
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

# run_side NAME PORT: pg_regress against 127.0.0.1:PORT, outputs in $WORK/out-NAME
run_side() {
  local name=$1 port=$2 out=$WORK/out-$1 t0 rc
  mkdir -p "$out"; chown postgres: "$out"
  log "pg_regress ($name) against 127.0.0.1:$port"
  t0=$(now)
  set +e
  timeout -k 10 "$RUN_TIMEOUT" runuser -u postgres -- env LANG=C.UTF-8 PGGSSENCMODE=disable PGSSLMODE=disable \
    PGCONNECT_TIMEOUT=20 \
    "$PG_REGRESS" --inputdir="$WORK/regress" --outputdir="$out" --bindir="$PGBIN" \
      --dlpath="$WORK/lib" --host=127.0.0.1 --port="$port" --user=postgres \
      --schedule="$WORK/schedule" --no-locale --encoding=UTF8 \
      >"$out/pg_regress.out" 2>&1
  rc=$?
  set -e
  echo $(( $(now) - t0 )) >"$out/seconds"
  echo "$rc" >"$out/rc"
  log "pg_regress ($name) rc=$rc in $(cat "$out/seconds") s"
  [ "$rc" = 124 ] && log "WARNING: pg_regress ($name) timed out after $RUN_TIMEOUT s"
  return 0
}

# wait_listening PORT PID LOG: until a gateway accepts, or die with its log
wait_listening() {
  for _ in $(seq 100); do
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "gateway exited"; }
    sleep 0.1
  done
}

if [ "$DO_DIRECT" = 1 ]; then
  run_side direct "$PGPORT_"
fi

if [ "$DO_GATEWAY" = 1 ]; then
  GWPORT=$(free_port)
  log "starting gateway $GATEWAY on 127.0.0.1:$GWPORT (pool size $POOL_SIZE)"
  # shellcheck disable=SC2086
  "$GATEWAY" --listen "127.0.0.1:$GWPORT" --backend "host=127.0.0.1 port=$PGPORT_" \
    --pool-size "$POOL_SIZE" ${PGW_GATEWAY_ARGS:-} >"$WORK/gateway.log" 2>&1 &
  GW_PID=$!
  wait_listening "$GWPORT" "$GW_PID" "$WORK/gateway.log"
  run_side gateway "$GWPORT"
  kill -0 "$GW_PID" 2>/dev/null || log "WARNING: the gateway died during the run (see results/gateway/gateway.log)"
fi

# ---------------------------------------------------------------- libpq_pipeline
# libpq's own pipeline-mode test program, its traces compared byte for byte
lpp_args=()
[ "$DO_DIRECT" = 1 ] && lpp_args+=(--endpoint "direct=$PGPORT_")
[ "$DO_GATEWAY" = 1 ] && lpp_args+=(--endpoint "gateway=$GWPORT")
log "libpq_pipeline (${lpp_args[*]})"
mkdir -p "$WORK/lpp"
set +e
timeout -k 10 600 "$PY" "$HERE/libpq_pipeline.py" --src "$SRCDIR/src/test/modules/libpq_pipeline" \
  --work "$WORK/lpp" --out "$WORK/libpq_pipeline.json" --direct-port "$PGPORT_" "${lpp_args[@]}"
lpp_rc=$?
set -e
[ "$lpp_rc" = 0 ] || log "WARNING: libpq_pipeline runner exit $lpp_rc"

# ---------------------------------------------------------------- isolation
# Concurrent sessions need a server connection each for their whole life:
# through a second gateway in session mode.
iso_args=()
[ "$DO_DIRECT" = 1 ] && iso_args+=(--endpoint "direct=$PGPORT_")
if [ "$DO_GATEWAY" = 1 ]; then
  GWPORT2=$(free_port)
  log "starting gateway $GATEWAY in session mode on 127.0.0.1:$GWPORT2"
  # shellcheck disable=SC2086
  "$GATEWAY" --listen "127.0.0.1:$GWPORT2" --backend "host=127.0.0.1 port=$PGPORT_" \
    --pool-mode session --pool-size "$POOL_SIZE" ${PGW_GATEWAY_ARGS:-} >"$WORK/gateway-session.log" 2>&1 &
  GW_PID2=$!
  wait_listening "$GWPORT2" "$GW_PID2" "$WORK/gateway-session.log"
  iso_args+=(--endpoint "gateway=$GWPORT2")
fi
log "isolation (${iso_args[*]})"
mkdir -p "$WORK/isolation"
set +e
"$PY" "$HERE/isolation.py" --src "$SRCDIR/src/test/isolation" --work "$WORK/isolation" \
  --out "$WORK/isolation.json" --timeout "$RUN_TIMEOUT" "${iso_args[@]}"
iso_rc=$?
set -e
[ "$iso_rc" = 0 ] || log "WARNING: isolation runner exit $iso_rc"
if [ -n "$GW_PID2" ]; then kill "$GW_PID2" 2>/dev/null; wait "$GW_PID2" 2>/dev/null || true; GW_PID2=; fi

# ---------------------------------------------------------------- npm drivers
# The libpq native binding's mocha tests and @databases/pg's jest tests, from
# their npm packages (npm/package-lock.json, npm ci into the cache), directly
# and through a gateway of their own per suite.
NPM_SUITES="npm-libpq npm-databases-pg"
npm_args=(--port "$PGPORT_" --pool-size "$POOL_SIZE" --cache "$CACHE/npm" --work "$WORK/npm"
          --out-dir "$WORK/npm-out")
[ "$DO_GATEWAY" = 1 ] && npm_args+=(--gateway "$GATEWAY" "--gateway-args=${PGW_GATEWAY_ARGS:-}")
[ "$DO_DIRECT" = 1 ] && npm_args+=(--side direct)
[ "$DO_GATEWAY" = 1 ] && npm_args+=(--side gateway)
log "npm driver suites"
set +e
timeout -k 10 900 "$PY" "$HERE/npm_suites.py" "${npm_args[@]}"
npm_rc=$?
set -e
[ "$npm_rc" = 0 ] || log "WARNING: npm suites runner exit $npm_rc"

# ---------------------------------------------------------------- pgproto
# pgpool-II's pgproto replays our message scripts (pgproto/*.pgproto)
# directly and through a gateway it starts; transcripts compared. The
# direct replay is the reference, so it runs even with --gateway-only.
pgp_args=(--direct-port "$PGPORT_")
[ "$DO_GATEWAY" = 1 ] && pgp_args+=(--gateway "$GATEWAY")
[ "$DO_DIRECT" = 1 ] || pgp_args+=(--no-direct-report)
log "pgproto (${pgp_args[*]})"
set +e
timeout -k 10 300 "$PY" "$HERE/pgproto.py" --work "$WORK/pgproto" --out "$WORK/pgproto.json" \
  --cache "$CACHE/pgproto" "${pgp_args[@]}"
pgp_rc=$?
set -e
[ "$pgp_rc" = 0 ] || log "WARNING: pgproto runner exit $pgp_rc"

# ---------------------------------------------------------------- Go drivers
# lib/pq (text and binary parameters), pgx v4 and pgconn: their own tests
# from Debian's source packages, directly and through a gateway of their
# own (TLS, hba rules, Unix socket). Runs last: it turns ssl on and adds
# pg_hba rules for its roles on this PostgreSQL.
GO_SUITES="go-lib-pq go-lib-pq-binary go-pgconn go-pgx-v4"
go_args=(--pg-port "$PGPORT_" --pg-socket-dir "$WORK/pgsock" --work "$WORK/go" --out-dir "$WORK/go-out")
[ "$DO_GATEWAY" = 1 ] && go_args+=(--gateway "$GATEWAY")
[ "$DO_DIRECT" = 1 ] || go_args+=(--side gateway)
log "Go driver suites (${go_args[*]})"
set +e
timeout -k 10 1200 "$PY" "$HERE/go_suites.py" "${go_args[@]}"
go_rc=$?
set -e
[ "$go_rc" = 0 ] || log "WARNING: Go suites runner exit $go_rc"

# ---------------------------------------------------------------- results
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
cp "$WORK/postgres.log" "$RESULTS/" 2>/dev/null || true
for side in direct gateway; do
  [ -d "$WORK/out-$side" ] || continue
  mkdir -p "$RESULTS/$side"
  for f in pg_regress.out regression.diffs regression.out seconds rc; do
    [ -f "$WORK/out-$side/$f" ] && cp "$WORK/out-$side/$f" "$RESULTS/$side/"
  done
done
[ -f "$WORK/gateway.log" ] && cp "$WORK/gateway.log" "$RESULTS/gateway/" 2>/dev/null || true
[ -f "$WORK/libpq_pipeline.json" ] && cp "$WORK/libpq_pipeline.json" "$RESULTS/"
[ -f "$WORK/isolation.json" ] && cp "$WORK/isolation.json" "$RESULTS/"
[ -f "$WORK/pgproto.json" ] && cp "$WORK/pgproto.json" "$RESULTS/"
[ -d "$WORK/pgproto" ] && cp -r "$WORK/pgproto" "$RESULTS/pgproto"
for side in direct gateway; do
  [ -f "$WORK/isolation/$side/regression.diffs" ] && mkdir -p "$RESULTS/isolation-$side" &&
    cp "$WORK/isolation/$side/regression.diffs" "$RESULTS/isolation-$side/"
done
[ -f "$WORK/gateway-session.log" ] && cp "$WORK/gateway-session.log" "$RESULTS/" || true

args=(--results "$RESULTS" --schedule "$WORK/schedule" --skipped "$WORK/skipped.txt"
      --baseline "$HERE/baseline.json" --pg-version "$PGVER" --total-seconds $(( $(now) - T_START ))
      --extra-suite "libpq_pipeline=$RESULTS/libpq_pipeline.json"
      --extra-suite "isolation=$RESULTS/isolation.json"
      --extra-suite "pgproto=$RESULTS/pgproto.json")
[ "$UPDATE_BASELINE" = 1 ] && args+=(--update-baseline)
mkdir -p "$RESULTS/go"
[ -f "$WORK/go/gateway.log" ] && cp "$WORK/go/gateway.log" "$RESULTS/go/"
for s in $GO_SUITES; do
  [ -f "$WORK/go-out/$s.json" ] && cp "$WORK/go-out/$s.json" "$RESULTS/go/"
  args+=(--extra-suite "$s=$RESULTS/go/$s.json")
done
[ -d "$WORK/npm" ] && cp -r "$WORK/npm" "$RESULTS/npm"
for s in $NPM_SUITES; do
  mkdir -p "$RESULTS/npm"
  [ -f "$WORK/npm-out/$s.json" ] && cp "$WORK/npm-out/$s.json" "$RESULTS/npm/"
  args+=(--extra-suite "$s=$RESULTS/npm/$s.json")
done
set +e
"$PY" "$HERE/summarize.py" "${args[@]}"
rc=$?
set -e
exit $rc
