#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
#
# The bhyve layer's headers replace bhyve's mem.h and inout.h, so they must compile where
# bhyve compiles: gcc and clang at -std=gnu99 (bhyve's own level) and C11, with warnings as
# errors and -pedantic, whether the host's headers (FreeBSD's vmm_instruction_emul.h,
# vmm.h, vmmapi.h) declared the emulator's typedefs, struct vie, struct vm_guest_paging and
# vcpu_id before them, after them, or not at all; and from C++, with g++ and clang++.
#
# Usage: header_matrix.sh INCLUDE_DIR. Exits 0 when every available compiler accepts every
# combination, 1 on the first refusal (printing it), 77 when a compiler is missing and the
# others passed.
set -u
inc=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# What FreeBSD's headers declare that these headers must coexist with.
cat > "$tmp/host.h" <<'HOST'
#include <stdint.h>
struct vcpu;
struct vie {
	int op;
};
struct vm_guest_paging {
	int cpu_mode;
};
typedef int (*mem_region_read_t)(struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int rsize,
                                 void *arg);
typedef int (*mem_region_write_t)(struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int wsize,
                                  void *arg);
#ifdef __cplusplus
extern "C" {
#endif
int vcpu_id(struct vcpu *vcpu);
#ifdef __cplusplus
}
#endif
HOST

# A device model and a host as bhyve writes them, using what the headers declare.
cat > "$tmp/body.h" <<'BODY'
static int dev_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                       void *arg1, long arg2)
{
	(void)vcpu;
	(void)addr;
	(void)size;
	(void)arg1;
	(void)arg2;
	if (dir == MEM_F_READ)
		*val = 0;
	return 0;
}

int dev_attach(void);
int dev_attach(void)
{
	static struct mem_range mr;
	mr.name = "dev";
	mr.flags = MEM_F_RW | MEM_F_IMMUTABLE;
	mr.handler = dev_handler;
	mr.base = 0xd0000000u;
	mr.size = 0x1000;
	init_mem(1);
	return register_mem(&mr) || unregister_mem(&mr);
}
BODY
cat > "$tmp/ports.h" <<'PORTS'
static int port_handler(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
                        void *arg)
{
	(void)ctx;
	(void)port;
	(void)bytes;
	(void)arg;
	if (in)
		*eax = 0xff;
	return 0;
}
INOUT_PORT(probe, 0x80, IOPORT_F_INOUT, port_handler);

int port_attach(void);
int port_attach(void)
{
	struct inout_port iop;
	iop.name = "p";
	iop.port = 0x3f8;
	iop.size = 8;
	iop.flags = IOPORT_F_INOUT;
	iop.handler = port_handler;
	iop.arg = 0;
	init_inout();
	return register_inout(&iop);
}
PORTS

missing=""
fails=0
runs=0

# try COMPILER LANG STD PLACE HEADERS...: one translation unit.
try() {
	compiler=$1 lang=$2 std=$3 place=$4
	shift 4
	src="$tmp/tu.$lang"
	: > "$src"
	[ "$place" = before ] && echo '#include "host.h"' >> "$src"
	uses_mem=0 uses_ports=0
	for h in "$@"; do
		echo "#include <busmap/compat/$h>" >> "$src"
		case $h in
		bhyve_mem.h | bhyve.h) uses_mem=1 ;;
		esac
		case $h in
		bhyve_inout.h | bhyve.h) uses_ports=1 ;;
		esac
	done
	[ "$place" = after ] && echo '#include "host.h"' >> "$src"
	[ $uses_mem = 1 ] && echo '#include "body.h"' >> "$src"
	[ $uses_ports = 1 ] && echo '#include "ports.h"' >> "$src"
	runs=$((runs + 1))
	if ! out=$("$compiler" -x "$lang" "-std=$std" -Wall -Wextra -Werror -pedantic \
		-I"$inc" -I"$tmp" -fsyntax-only "$src" 2>&1); then
		echo "FAIL: $compiler -std=$std, host declarations $place, headers: $*"
		echo "$out"
		fails=$((fails + 1))
	fi
}

for compiler in gcc clang g++ clang++; do
	if ! command -v "$compiler" > /dev/null 2>&1; then
		missing="$missing $compiler"
		continue
	fi
	case $compiler in
	*++) lang=c++ stds="c++11 gnu++17" ;;
	*) lang=c stds="gnu99 c11" ;;
	esac
	for std in $stds; do
		for place in none before after; do
			for set in bhyve_mem.h bhyve_inout.h bhyve.h "bhyve_mem.h bhyve_inout.h" \
				"bhyve_inout.h bhyve_mem.h bhyve.h"; do
				# shellcheck disable=SC2086
				try "$compiler" "$lang" "$std" "$place" $set
			done
		done
	done
done

echo "$runs compilations, $fails refused"
[ $fails -eq 0 ] || exit 1
if [ -n "$missing" ]; then
	echo "SKIP: not installed:$missing"
	exit 77
fi
exit 0
