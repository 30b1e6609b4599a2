#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and run
# each for SECONDS (default 60) on a fresh copy of its seed corpus.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment: PGW_FUZZ_BUILD (build dir, default build-fuzz),
# PGW_FUZZ_CC (default clang), PGW_FUZZ_TARGETS (default every target;
# any fuzz/CMakeLists.txt target named fuzz_<kind> works),
# PGW_FUZZ_MAX_LEN (default 16384), PGW_FUZZ_JOBS (build jobs, and how many
# targets run at once; default the number of cores).
#
# Exits non-zero when any target finds a crash, leak, timeout or OOM; the
# reproducer's path is printed, and the log is kept in the work dir.
# Replay one with: build-fuzz/fuzz/<target> <file>   (or <target>_replay).
set -euo pipefail

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
	echo "usage: $0 [SECONDS]" >&2
	exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PGW_FUZZ_BUILD:-$root/build-fuzz}
cc=${PGW_FUZZ_CC:-clang}
max_len=${PGW_FUZZ_MAX_LEN:-16384}
jobs=${PGW_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
read -r -a targets <<<"${PGW_FUZZ_TARGETS:-fuzz_frontend fuzz_backend fuzz_startup fuzz_roundtrip fuzz_stmt fuzz_scram fuzz_scram_server fuzz_rpc_frames}"

echo "== fuzz: configuring $build with $cc"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPGW_FUZZ=ON -DPGW_SANITIZE=ON >"$build/configure.log" 2>&1 || {
	cat "$build/configure.log" >&2
	exit 1
}
echo "== fuzz: building ${targets[*]}"
cmake --build "$build" -j "$jobs" --target "${targets[@]}" fuzz_corpus

symbolizer=$(command -v llvm-symbolizer || true)
if [ -n "$symbolizer" ]; then
	export ASAN_SYMBOLIZER_PATH=$symbolizer UBSAN_SYMBOLIZER_PATH=$symbolizer
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

work=$build/fuzz-work

# One target: a fresh corpus from its seeds, then libFuzzer for $secs;
# its exit status goes to $dir/rc.
run_target() {
	local t=$1 kind=${1#fuzz_} dict dir seeds rc=0
	# fuzz_<kind>: seeds from gen/seeds/<kind>, fuzz/corpus/<kind> and the
	# committed fuzz/seeds/<kind> (when they exist), dictionary
	# fuzz/<kind>.dict if there is one, else pgw.dict.
	dict=$root/fuzz/$kind.dict
	[ -f "$dict" ] || dict=$root/fuzz/pgw.dict
	dir=$work/$t
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts"
	for seeds in "$build/gen/seeds/$kind" "$build/fuzz/corpus/$kind" "$root/fuzz/seeds/$kind"; do
		if [ -d "$seeds" ]; then
			cp -- "$seeds"/* "$dir/corpus/" 2>/dev/null || true
		fi
	done
	echo "== fuzz: $t for ${secs} s on $(find "$dir/corpus" -type f | wc -l) seeds (log: $dir/log)"
	"$build/fuzz/$t" -max_total_time="$secs" -max_len="$max_len" -dict="$dict" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

# As many targets at once as there are cores: each is one process.
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_target "$t" &
	running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do
	dir=$work/$t
	log=$dir/log
	rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	artifacts=$(find "$dir/artifacts" -type f | sort)
	if [ "$rc" -ne 0 ] || [ -n "$artifacts" ] || [ -z "$runs" ]; then
		failed=1
		echo "fuzz $t: FAILED (exit $rc)" >&2
		# The sanitizer report and libFuzzer's summary.
		report=$(grep -A40 -E '^==[0-9]+==ERROR|runtime error|check failed|deadly signal|ALARM|out-of-memory' "$log" || true)
		if [ -n "$report" ]; then
			printf '%s\n' "$report" | head -n 80 >&2 || true
		else
			tail -n 60 "$log" >&2
		fi
		if [ -n "$artifacts" ]; then
			for a in $artifacts; do
				echo "fuzz $t: reproducer: $a" >&2
				echo "  replay: $build/fuzz/$t $a" >&2
			done
		else
			grep -E 'Test unit written to' "$log" >&2 || true
		fi
		echo "fuzz $t: full log: $log" >&2
		continue
	fi
	echo "fuzz $t: $runs runs in ${took:-?} s, no findings"
done

if [ "$failed" -ne 0 ]; then
	echo "fuzz: FINDINGS (see above)" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets clean"
