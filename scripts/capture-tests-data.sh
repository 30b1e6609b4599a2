#!/bin/bash
# capture-tests-data.sh - regenerate tests/data/*.pgwt from scratch.
#
# Starts a throwaway PostgreSQL 15 server (initdb/pg_ctl run as the
# `postgres` OS user, data directory and unix socket under a mktemp
# directory, TCP on 127.0.0.1 at a free high port, ssl off), creates the
# roles used by the captures, then runs psql/pgbench through the recording
# proxy scripts/pgw-capture.py so that every client connection becomes a
# PGWTRAN1 transcript (see tests/data/README.md).  Each transcript is then
# validated with scripts/pgw-transcript.py.  Everything is stopped and the
# temporary directory removed on exit.
#
# Must run as root (it uses `runuser -u postgres --`).  Needs the Debian
# postgresql-15 and postgresql-client-15 packages and /usr/bin/python3.
#
# Usage: scripts/capture-tests-data.sh [OUTDIR]     (default: tests/data)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/tests/data}
PY=/usr/bin/python3
PGBIN=/usr/lib/postgresql/15/bin
PSQL=$PGBIN/psql
PGBENCH=$PGBIN/pgbench
CAPTURE=$ROOT/scripts/pgw-capture.py
CHECK=$ROOT/scripts/pgw-transcript.py

die() { echo "capture-tests-data: $*" >&2; exit 1; }
note() { echo "capture-tests-data: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (postgres is started via runuser -u postgres)"
for f in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/postgres" "$PSQL" "$PGBENCH" "$PY"; do
    [ -x "$f" ] || die "missing $f"
done
id postgres >/dev/null 2>&1 || die "no postgres OS user"

# Keep the caller's environment from leaking into the captures.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE \
      PGSERVICEFILE PGOPTIONS PGAPPNAME PGSSLMODE PGGSSENCMODE PGREQUIRESSL \
      PGCHANNELBINDING PGTZ PGDATESTYLE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS \
      PGSSLCERT PGSSLKEY PGSSLROOTCERT PGKRBSRVNAME PGGSSLIB PSQLRC PGSYSCONFDIR
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export PGCLIENTENCODING=UTF8
export PGCONNECT_TIMEOUT=10

TMP=$(mktemp -d /tmp/pgw-capture.XXXXXX)
chmod 755 "$TMP"
export PGPASSFILE=$TMP/no-such-pgpass
PROXY_PID=
SERVER_STARTED=

cleanup() {
    local rc=$?
    if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill "$PROXY_PID" 2>/dev/null || true
        wait "$PROXY_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_STARTED" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w stop \
            >/dev/null 2>&1 || true
    fi
    if [ $rc -ne 0 ] && [ -f "$TMP/server.log" ]; then
        note "server log tail:"; tail -n 30 "$TMP/server.log" >&2 || true
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- server
PGPORT_SRV=$(free_port)
mkdir "$TMP/sock" "$TMP/data"
chown postgres: "$TMP/sock" "$TMP/data"
chmod 700 "$TMP/data"
runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/data" -U postgres -A trust \
    -E UTF8 --locale=C --no-sync >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

cat >>"$TMP/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT_SRV
unix_socket_directories = '$TMP/sock'
ssl = off
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 20
autovacuum = off
log_min_messages = warning
timezone = 'UTC'
EOF
cat >"$TMP/data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER        ADDRESS        METHOD
local   all       all                        trust
host    all       scram_user  127.0.0.1/32   scram-sha-256
host    all       md5_user    127.0.0.1/32   md5
host    all       pw_user     127.0.0.1/32   password
host    all       all         127.0.0.1/32   trust
EOF
chown postgres: "$TMP/data/postgresql.conf" "$TMP/data/pg_hba.conf"
touch "$TMP/server.log"; chown postgres: "$TMP/server.log"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" \
    -w -t 60 start >/dev/null || die "pg_ctl start failed"
SERVER_STARTED=1
note "server up on 127.0.0.1:$PGPORT_SRV"

# Direct (non-captured) connections go through the unix socket.
admin() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$TMP/sock" -p "$PGPORT_SRV" "$@"; }

admin -U postgres -d postgres <<'EOF'
CREATE ROLE pgw LOGIN;
CREATE DATABASE pgw OWNER pgw;
SET password_encryption = 'scram-sha-256';
CREATE ROLE scram_user LOGIN PASSWORD 'scram-secret';
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret';
SET password_encryption = 'scram-sha-256';
CREATE ROLE pw_user LOGIN PASSWORD 'pw-secret';
EOF
admin -U postgres -d postgres -tA -c \
    "SELECT rolname || ' ' || left(rolpassword, 14) FROM pg_authid WHERE rolname IN ('scram_user','md5_user')" >&2

"$PGBENCH" -i -q -s 1 -h "$TMP/sock" -p "$PGPORT_SRV" -U pgw pgw \
    >"$TMP/pgbench-init.log" 2>&1 || { cat "$TMP/pgbench-init.log" >&2; die "pgbench -i failed"; }

# ---------------------------------------------------------------- proxy
mkdir -p "$OUT"
rm -f "$OUT"/*.pgwt
mkdir "$TMP/discard"

# start_proxy NCONN OUTFILE...   -> sets PROXY_PID, PP (proxy port)
start_proxy() {
    local n=$1; shift
    local outs=() o
    for o in "$@"; do outs+=(--out "$o"); done
    rm -f "$TMP/proxy.port"
    "$PY" "$CAPTURE" -q --listen 127.0.0.1:0 --upstream "127.0.0.1:$PGPORT_SRV" \
        --connections "$n" --timeout 60 --port-file "$TMP/proxy.port" "${outs[@]}" &
    PROXY_PID=$!
    local i
    for i in $(seq 1 100); do
        [ -s "$TMP/proxy.port" ] && break
        kill -0 "$PROXY_PID" 2>/dev/null || die "proxy died at startup"
        sleep 0.05
    done
    [ -s "$TMP/proxy.port" ] || die "proxy did not start"
    PP=$(cat "$TMP/proxy.port")
}

# wait_proxy: the proxy exits by itself once all expected connections closed
wait_proxy() {
    local i
    for i in $(seq 1 200); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$PROXY_PID" 2>/dev/null; then
        kill "$PROXY_PID"; wait "$PROXY_PID" || true; PROXY_PID=
        die "proxy still waiting for connections (client made fewer than expected)"
    fi
    wait "$PROXY_PID" || { PROXY_PID=; die "proxy failed"; }
    PROXY_PID=
}

# psql_capture NAME [env VAR=VAL...] -- psql-args...
psql_capture() {
    local name=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    note "capturing $name"
    start_proxy 1 "$OUT/$name.pgwt"
    env PGSSLMODE=disable PGGSSENCMODE=disable "${envs[@]}" \
        "$PSQL" -X -h 127.0.0.1 -p "$PP" "$@" >"$TMP/$name.out" 2>&1 \
        || { cat "$TMP/$name.out" >&2; die "psql failed for $name"; }
    wait_proxy
}

# pgbench_capture NAME pgbench-args...   (pgbench opens 2 connections: a
# setup connection, discarded, and the benchmark client connection)
pgbench_capture() {
    local name=$1; shift
    note "capturing $name"
    start_proxy 2 "$TMP/discard/$name-setup.pgwt" "$OUT/$name.pgwt"
    env PGSSLMODE=disable PGGSSENCMODE=disable \
        "$PGBENCH" -n -c 1 -j 1 -h 127.0.0.1 -p "$PP" -U pgw "$@" pgw \
        >"$TMP/$name.out" 2>&1 \
        || { cat "$TMP/$name.out" >&2; die "pgbench failed for $name"; }
    wait_proxy
}

# ---------------------------------------------------------------- captures

# psql-simple: simple query protocol, many message kinds
cat >"$TMP/simple.sql" <<'EOF'
-- scalar types
SELECT 1 AS int4, 2::int8 AS int8, 3::int2 AS int2, 1.5::float8 AS f8,
       2.25::float4 AS f4, 123.456::numeric(10,3) AS num, true AS b,
       'text'::text AS t, 'vc'::varchar(10) AS vc, 'c'::char(3) AS ch;
SELECT date '2024-01-02' AS d, timestamp '2024-01-02 03:04:05.678' AS ts,
       timestamptz '2024-01-02 03:04:05+02' AS tstz,
       interval '1 day 02:03:04' AS iv, time '12:34:56' AS tm;
SELECT '\xdeadbeef'::bytea AS by, ARRAY[1,2,NULL,4] AS arr,
       '{"a":[1,2,{"b":null}]}'::jsonb AS j,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
       '192.168.0.1/24'::inet AS ip, 'héllo wörld ☃' AS utf8, ''::text AS empty;
-- NULLs
SELECT NULL AS n1, NULL::int AS n2, 'x' AS notnull, NULL::text AS n3;
SELECT * FROM (VALUES (1, 'one', NULL), (2, NULL, 2.5), (NULL, 'three', 3.5)) AS v(a, b, c);
-- zero rows
SELECT 1 AS nothing WHERE false;
-- several statements in one Query message
SELECT 1 AS first \; SELECT 'second' AS second \; SELECT 3 AS third;
-- empty query -> EmptyQueryResponse
;
-- errors
SELECT 1/0;
SELEC 1;
-- notices
DO $$BEGIN RAISE NOTICE 'hello from DO block'; RAISE WARNING 'a warning'; END$$;
-- ParameterStatus changes
SET application_name = 'pgw-capture';
SET TimeZone = 'America/New_York';
SELECT current_setting('TimeZone') AS tz;
SET TimeZone = 'UTC';
SET DateStyle = 'German';
SELECT date '2024-01-02' AS german_date;
RESET DateStyle;
-- transaction committed
BEGIN;
CREATE TABLE simple_t (id int PRIMARY KEY, name text, score numeric, created date);
INSERT INTO simple_t VALUES (1, 'alice', 1.5, '2024-01-01'), (2, 'bob', NULL, NULL);
COMMIT;
-- failed transaction (status E), then rollback
BEGIN;
INSERT INTO simple_t VALUES (3, 'carol', 2, '2024-02-02');
SELECT 1/0;
SELECT 1;
ROLLBACK;
-- LISTEN/NOTIFY on the same connection
LISTEN pgw_chan;
NOTIFY pgw_chan, 'hello listener';
SELECT pg_notify('pgw_chan', 'second payload');
UNLISTEN pgw_chan;
-- COPY FROM STDIN / TO STDOUT
COPY simple_t FROM STDIN;
10	ten	10.5	2024-03-01
11	eleven	\N	\N
12	twelve	12	2024-03-03
\.
COPY simple_t (id, name) FROM STDIN (FORMAT csv);
20,"twenty, quoted"
21,
\.
COPY simple_t FROM STDIN;
notanint	bad row	1	2024-01-01
\.
COPY simple_t TO STDOUT;
COPY (SELECT id, name FROM simple_t ORDER BY id) TO STDOUT (FORMAT csv, HEADER);
-- meta-command (catalog queries)
\d simple_t
SELECT * FROM simple_t ORDER BY id;
DROP TABLE simple_t;
EOF
psql_capture psql-simple -- -U pgw -d pgw -f "$TMP/simple.sql"

# authentication methods
psql_capture psql-scram PGPASSWORD=scram-secret -- -U scram_user -d pgw -c 'SELECT current_user'
psql_capture psql-md5 PGPASSWORD=md5-secret -- -U md5_user -d pgw -c 'SELECT current_user'
psql_capture psql-password PGPASSWORD=pw-secret -- -U pw_user -d pgw -c 'SELECT current_user'

# SSLRequest answered with 'N' (server has ssl = off)
psql_capture psql-sslrequest PGSSLMODE=prefer -- -U pgw -d pgw \
    -c "SELECT 'after SSLRequest' AS msg, current_setting('ssl') AS ssl"
"$PY" "$CHECK" "$OUT/psql-sslrequest.pgwt" | grep -q '^F - 8 SSLRequest$' \
    || die "psql-sslrequest.pgwt has no SSLRequest"

# pgbench, three query modes, TPC-B and select-only
for mode in simple extended prepared; do
    pgbench_capture "pgbench-$mode" -M "$mode" -t 20
    pgbench_capture "pgbench-select-$mode" -M "$mode" -S -t 50
done

# DataRow-heavy backend stream
cat >"$TMP/datarow.sql" <<'EOF'
SELECT g, md5(g::text), now() FROM generate_series(1, 2000) g;
SELECT 1 AS id, repeat('abcdefghijklmnopqrstuvwxyz', 2700) AS big;
EOF
{
    printf 'SELECT g'
    for i in $(seq 1 100); do printf ', g * %d AS c%d' "$i" "$i"; done
    printf ' FROM generate_series(1, 20) g;\n'
} >>"$TMP/datarow.sql"
psql_capture datarow-heavy -- -U pgw -d pgw -o /dev/null -f "$TMP/datarow.sql"

# FunctionCall: psql's large-object commands use libpq's fastpath lo_* calls
"$PY" -c 'import sys
sys.stdout.buffer.write(bytes((i * 7 + i // 256) & 255 for i in range(20000)))' >"$TMP/lo-in.bin"
cat >"$TMP/lo.sql" <<EOF
\\lo_import '$TMP/lo-in.bin' 'pgw capture test'
\\lo_export :LASTOID '$TMP/lo-out.bin'
\\lo_unlink :LASTOID
EOF
psql_capture functioncall -- -U pgw -d pgw -f "$TMP/lo.sql"
cmp "$TMP/lo-in.bin" "$TMP/lo-out.bin" || die "large object round trip mismatch"

# COPY in binary format via \copy
cat >"$TMP/copybin.sql" <<EOF
CREATE TABLE bin_src (id int, name text, val float8, data bytea, ts timestamptz, arr int[], n numeric);
INSERT INTO bin_src
  SELECT g, 'row ' || g, g * 1.5, decode(md5(g::text), 'hex'),
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour',
         ARRAY[g, g * 2], g / 7.0
  FROM generate_series(1, 50) g;
INSERT INTO bin_src VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL);
\\copy bin_src TO '$TMP/bin.dat' (FORMAT binary)
CREATE TABLE bin_dst (LIKE bin_src);
\\copy bin_dst FROM '$TMP/bin.dat' (FORMAT binary)
SELECT count(*) AS copied FROM bin_dst;
DROP TABLE bin_src, bin_dst;
EOF
psql_capture psql-copy-binary -- -U pgw -d pgw -f "$TMP/copybin.sql"

# ---------------------------------------------------------------- verify
note "validating transcripts"
"$PY" "$CHECK" -q "$OUT"/*.pgwt "$TMP"/discard/*.pgwt >&2 || die "transcript validation failed"
ls -l "$OUT" >&2
note "done"
