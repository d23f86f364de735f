#!/bin/sh
# Builds busmap-bench (setting up the build directory if needed) and runs it.
#   bench/run.sh [--quick] [--json] [--instr=auto|perf|callgrind|none] [-v]
# BUILD_DIR chooses the build directory (default: build/ at the top of the tree).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top"
fi
ninja -C "$build" bench/busmap-bench >&2
exec "$build/bench/busmap-bench" "$@"
