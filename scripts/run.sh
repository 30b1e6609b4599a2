#!/usr/bin/env bash
# Build multigateway and run it in front of a throwaway PostgreSQL 15.
# On a fresh Debian 12 machine as root: installs what it needs, builds,
# starts PostgreSQL (initdb into a temporary folder, loopback only) and
# the gateway, and prints the psql line to connect. Ctrl-C stops both.
#
#   PGW_PORT     gateway port (default 6432)
#   PGW_PG_PORT  PostgreSQL port (default 54329)
#   PGW_WORKERS, PGW_POOL_SIZE   passed to the gateway
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
port=${PGW_PORT:-6432}
pg_port=${PGW_PG_PORT:-54329}
pgbin=/usr/lib/postgresql/15/bin

need=()
for pkg in build-essential cmake ragel python3 pkg-config libev-dev libssl-dev postgresql-15 postgresql-client-15 \
	protobuf-c-compiler libprotobuf-c-dev protobuf-compiler python3-protobuf; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${need[@]}"
fi

cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$repo/build" --target multigateway -j"$(nproc)"

state=$(mktemp -d /tmp/multigateway-run.XXXXXX)
chmod 755 "$state"
mkdir -p "$state/pgdata" "$state/sockets"
chown -R postgres:postgres "$state"
as_pg() { runuser -u postgres -- "$@"; }

gateway_pid=
cleanup() {
	trap - EXIT INT TERM
	[ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null || true
	as_pg "$pgbin/pg_ctl" -D "$state/pgdata" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$state"
	echo "stopped; removed $state"
}
trap cleanup EXIT INT TERM

as_pg "$pgbin/initdb" -D "$state/pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$state/pgdata" -l "$state/postgres.log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$state/sockets -c max_connections=200" \
	start >/dev/null

# The user running this gets a superuser role and a database of its own
# name, so a bare `psql -h 127.0.0.1 -p PORT` just works.
me=$(id -un)
psql_pg() { as_pg psql -X -q -h "$state/sockets" -p "$pg_port" -U postgres -d postgres "$@"; }
if [ "$me" != postgres ]; then
	psql_pg -c "CREATE ROLE \"$me\" SUPERUSER LOGIN" >/dev/null
	psql_pg -c "CREATE DATABASE \"$me\" OWNER \"$me\"" >/dev/null
fi

"$repo/build/multigateway" --listen "127.0.0.1:$port" --socket-dir "$state/sockets" \
	--backend "host=127.0.0.1 port=$pg_port" \
	${PGW_WORKERS:+--workers "$PGW_WORKERS"} ${PGW_POOL_SIZE:+--pool-size "$PGW_POOL_SIZE"} &
gateway_pid=$!
for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done

cat <<MSG

multigateway is running in front of a throwaway PostgreSQL 15.
Connect with:

    psql -h 127.0.0.1 -p $port

(or psql -h $state/sockets -p $port, or any user/database you create).
Press Ctrl-C to stop both.

MSG
wait "$gateway_pid"
