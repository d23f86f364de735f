#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Instructions per lookup and per move of the flat-view index, under callgrind.
# Usage (from the source root): bench/index_micro.sh [each|bulk]
set -e
build=${1:-each}
bin=${TMPDIR:-/tmp}/index-micro
out=${TMPDIR:-/tmp}/index-micro.cg
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -gdwarf-4 -Iinclude -Isrc bench/index_micro.c src/index.c -o "$bin"

# Instructions collected inside fn for "$bin mode n build ops".
count() {
	valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$1" \
		"$bin" "$2" "$3" "$build" "$4" 2>&1 | sed -n 's/.*Collected : //p'
}

per_op() { # fn mode n ops
	all=$(count "$1" "$2" "$3" "$4")
	base=$(count "$1" "$2" "$3" 0)
	echo "scale=1; ($all - $base) / $4" | bc
}

for n in ${LOOKUP_NS:-16 256 4096 65536}; do
	echo "lookup n=$n: hit $(per_op bm_index_lookup hit $n 200000)" \
		"any $(per_op bm_index_lookup any $n 200000) instructions"
done
for n in ${MOVE_NS:-1000 10000 100000}; do
	echo "move n=$n: $(per_op bm_index_replace move $n 500) instructions (2 replaces)"
done
for n in 4096 65536; do
	"$bin" hit $n "$build" 0 2>&1 | head -1
done
rm -f "$out"
