#!/bin/sh
# Runs one fuzz target for SECONDS on its seed corpus and prints how many inputs it ran.
#
#   tests/fuzz/run.sh TARGET SECONDS [BUILDDIR]
#
# BUILDDIR (default: build-fuzz beside the sources) is set up with clang and -Dfuzz=true if
# it has no build yet. Inputs that reach new code are kept in BUILDDIR/fuzz-corpus/TARGET,
# so successive runs build on each other; a crash or mismatch is written to
# BUILDDIR/fuzz-artifacts/ and replays with BUILDDIR/tests/fuzz/TARGET FILE.
# FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS=-jobs=2).
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 TARGET SECONDS [BUILDDIR]" >&2
	exit 2
fi
target=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${3:-$src/build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true -Db_lundef=false -Dbench=false >&2
fi
if [ ! -x "$build/tests/fuzz/$target" ]; then
	ninja -C "$build" "tests/fuzz/$target" >&2
fi

seeds=$src/tests/fuzz/corpus/$target
work=$build/fuzz-corpus/$target
artifacts=$build/fuzz-artifacts
mkdir -p "$work" "$artifacts"
dict=
if [ -f "$src/tests/fuzz/$target.dict" ]; then
	dict=-dict=$src/tests/fuzz/$target.dict
fi
log=$build/fuzz-$target.log

status=0
# shellcheck disable=SC2086 # FUZZ_FLAGS and dict are lists of flags
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	"$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
	-print_final_stats=1 -artifact_prefix="$artifacts/$target-" $dict ${FUZZ_FLAGS:-} \
	"$work" "$seeds" >"$log" 2>&1 || status=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
if [ "$status" -ne 0 ]; then
	tail -n 80 "$log" >&2
	echo "$target: FAILED after ${execs:-?} executions (exit $status); log: $log" >&2
	exit 1
fi
echo "$target: ${execs:-0} executions in $seconds s, corpus $(ls "$work" | wc -l) inputs" \
	"(log: $log)"
