#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and run
# each for SECONDS (default 60), starting from a scratch copy of its
# committed corpus (fuzz/corpus/<kind>, fuzz/regress/<kind>) and seeds.
#
#   scripts/fuzz.sh [SECONDS]
#   scripts/fuzz.sh --merge [SECONDS]
#
# --merge: after a clean run, minimise what each target has (the committed
# corpus, the seeds and what this run found) with libFuzzer's merge and
# write it back to fuzz/corpus/<kind>, leaving out what fuzz/seeds/<kind>
# and fuzz/regress/<kind> already cover. SECONDS may be 0: merge only.
# Commit the result; ctest replays it on every build.
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
# Once fixed, add the reproducer to fuzz/regress/<kind>/ so ctest keeps it
# fixed.
set -euo pipefail

merge=0
if [ "${1:-}" = "--merge" ]; then
	merge=1
	shift
fi
secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || { [ "$secs" -lt 1 ] && [ "$merge" -eq 0 ]; }; then
	echo "usage: $0 [--merge] [SECONDS]" >&2
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

# One target: a scratch corpus (the repository is never written to), then
# libFuzzer for $secs; its exit status goes to $dir/rc.
run_target() {
	local t=$1 kind=${1#fuzz_} dict dir seeds rc=0
	# fuzz_<kind>: the committed corpus fuzz/corpus/<kind>, the inputs that
	# once failed (fuzz/regress/<kind>), the committed seeds fuzz/seeds/<kind>,
	# the generator's gen/seeds/<kind> and the transcripts'
	# fuzz/transcript_seeds/<kind> (when they exist); dictionary
	# fuzz/<kind>.dict if there is one, else pgw.dict.
	dict=$root/fuzz/$kind.dict
	[ -f "$dict" ] || dict=$root/fuzz/pgw.dict
	dir=$work/$t
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts"
	for seeds in "$root/fuzz/corpus/$kind" "$root/fuzz/regress/$kind" "$root/fuzz/seeds/$kind" \
		"$build/gen/seeds/$kind" "$build/fuzz/transcript_seeds/$kind"; do
		if [ -d "$seeds" ]; then
			cp -- "$seeds"/* "$dir/corpus/" 2>/dev/null || true
		fi
	done
	if [ "$secs" -eq 0 ]; then
		echo "0" >"$dir/rc"
		return
	fi
	echo "== fuzz: $t for ${secs} s on $(find "$dir/corpus" -type f | wc -l) inputs (log: $dir/log)"
	"$build/fuzz/$t" -max_total_time="$secs" -max_len="$max_len" -dict="$dict" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

# --merge: a small set of $dir/corpus's inputs that keeps its coverage
# beyond what the committed seeds and regressions give (libFuzzer's greedy
# set cover, -set_cover_merge=1: fewer files than -merge=1 for the same
# features), into fuzz/corpus/<kind>, files named by content hash.
merge_target() {
	local t=$1 kind=${1#fuzz_} dir=$work/$1 out keep f
	out=$dir/merged
	rm -rf "$out"
	mkdir -p "$out"
	# Already in the first directory: merged inputs must add coverage to them.
	for keep in "$root/fuzz/regress/$kind" "$root/fuzz/seeds/$kind"; do
		if [ -d "$keep" ]; then
			cp -- "$keep"/* "$out/" 2>/dev/null || true
		fi
	done
	"$build/fuzz/$t" -set_cover_merge=1 -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		"$out" "$dir/corpus" >"$dir/merge.log" 2>&1 || {
		tail -n 40 "$dir/merge.log" >&2
		echo "fuzz $t: merge failed (log: $dir/merge.log)" >&2
		return 1
	}
	for keep in "$root/fuzz/regress/$kind" "$root/fuzz/seeds/$kind"; do
		if [ -d "$keep" ]; then
			for f in "$keep"/*; do
				[ -e "$f" ] || continue
				rm -f -- "$out/${f##*/}"
			done
		fi
	done
	rm -rf "$root/fuzz/corpus/$kind"
	mkdir -p "$root/fuzz/corpus/$kind"
	cp -- "$out"/* "$root/fuzz/corpus/$kind/" 2>/dev/null || true
	echo "fuzz $t: fuzz/corpus/$kind: $(find "$root/fuzz/corpus/$kind" -type f | wc -l) files," \
		"$(cat "$root/fuzz/corpus/$kind"/* 2>/dev/null | wc -c) bytes"
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
	if [ "$secs" -eq 0 ]; then
		continue
	fi
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
			echo "  once fixed, add it to fuzz/regress/${t#fuzz_}/ (ctest replays it)" >&2
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
if [ "$merge" -eq 1 ]; then
	for t in "${targets[@]}"; do
		merge_target "$t"
	done
	echo "fuzz: fuzz/corpus merged; check it with ctest (fuzz_replay_*) and commit it"
	exit 0
fi
echo "fuzz: all ${#targets[@]} targets clean"
