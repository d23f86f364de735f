/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The null implementation's dispatch, alone in its file so that the measured loop really
 * calls it (no inlining or interprocedural shortcuts without LTO).
 */
#include "bench.h"

int bench_null_dispatch(void *ctx, uint64_t addr, unsigned size, uint64_t *value)
{
	(void)ctx;
	(void)addr;
	(void)size;
	*value = BENCH_VALUE;
	return 0;
}
