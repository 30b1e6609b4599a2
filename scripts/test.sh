#!/usr/bin/env bash
# The one test command: everything CI runs, from a fresh Debian 12 machine.
#
#   scripts/test.sh
#
#   1. installs the Debian packages the build needs (as root, only when
#      some are missing; non-interactive),
#   2. builds build/ with -DPGW_WERROR=ON and runs ctest (the unit tests,
#      and every fuzz/corpus, fuzz/regress and fuzz/seeds input replayed
#      through its fuzz target),
#   3. builds build-asan/ with ASan+UBSan (PGW_SANITIZE=ON) and runs ctest,
#   4. runs the integration tests (tests/integration: psql, psycopg2,
#      psycopg 3, asyncpg, node-postgres, pgbench, replication clients and
#      gRPC interop against a throwaway PostgreSQL 15, directly and through
#      the ASan+UBSan builds of multigateway and multipooler), then the
#      real-client modules again through a multipooler (run.py --remote,
#      its known failures listed in tests/integration/remote_known_failures.txt),
#   5. runs the conformance suites (tests/conformance/run.sh),
#   6. runs scripts/fuzz.sh for PGW_FUZZ_SECONDS (default 60) per target,
#      each starting from its committed corpus.
#
# Exits non-zero on the first failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${PGW_FUZZ_SECONDS:-60}
start=$(date +%s)

step() {
	echo
	echo "==== $* ($(($(date +%s) - start)) s)"
}

# ---- 1. packages
packages=(build-essential cmake ragel python3 libcmocka-dev clang llvm libclang-rt-14-dev
	pkg-config libev-dev libssl-dev postgresql-15 postgresql-client-15 python3-psycopg2
	python3-psycopg python3-asyncpg protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
	python3-protobuf openssl libnghttp2-dev python3-grpcio protobuf-compiler-grpc)
# Node.js and npm come with the machine; Debian's are the fallback.
if ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi
step "packages"
if command -v dpkg-query >/dev/null 2>&1; then
	missing=()
	for p in "${packages[@]}"; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all ${#packages[@]} packages installed"
	else
		echo "installing: ${missing[*]}"
		sudo=()
		if [ "$(id -u)" -ne 0 ]; then
			if command -v sudo >/dev/null 2>&1; then
				sudo=(sudo -n)
			else
				echo "test.sh: missing packages (${missing[*]}) and not root" >&2
				exit 1
			fi
		fi
		export DEBIAN_FRONTEND=noninteractive
		"${sudo[@]}" apt-get update -q
		"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
else
	echo "no dpkg: assuming the tools are installed (${packages[*]})"
fi

# node-postgres for the driver tests, at the versions the lock file pins
step "npm ci (tests/integration/node)"
(cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error)

# ---- 2. normal build, warnings are errors
step "build/ (-DPGW_WERROR=ON)"
cmake -S . -B build -DPGW_WERROR=ON -DPGW_SANITIZE=OFF -DPGW_FUZZ=OFF
cmake --build build -j "$jobs"
step "ctest in build/"
(cd build && ctest --output-on-failure)

# ---- 3. ASan + UBSan
step "build-asan/ (-DPGW_SANITIZE=ON)"
cmake -S . -B build-asan -DPGW_SANITIZE=ON -DPGW_FUZZ=OFF
cmake --build build-asan -j "$jobs"
step "ctest in build-asan/"
if command -v llvm-symbolizer >/dev/null 2>&1; then
	export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi
(cd build-asan &&
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		ctest --output-on-failure)

# ---- 4. integration: real clients, a real PostgreSQL, the sanitized gateway
step "integration tests (tests/integration, gateway from build-asan/)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	PGW_GATEWAY="$root/build-asan/multigateway" /usr/bin/python3 tests/integration/run.py

# ---- 4b. the same real clients through the remote path (gateway --pooler ->
# multipooler -> PostgreSQL), both sanitized
step "integration tests through a multipooler (run.py --remote, build-asan/)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	PGW_GATEWAY="$root/build-asan/multigateway" /usr/bin/python3 tests/integration/run.py --remote \
	--known-failures tests/integration/remote_known_failures.txt

# ---- 5. conformance: PostgreSQL's own suites directly and through the gateway
step "conformance (tests/conformance/run.sh, gateway from build/)"
/usr/bin/python3 tests/conformance/test_summarize.py
PGW_GATEWAY="$root/build/multigateway" bash tests/conformance/run.sh

# ---- 6. fuzzing
step "scripts/fuzz.sh $fuzz_seconds"
bash scripts/fuzz.sh "$fuzz_seconds"

step "all tests passed"
