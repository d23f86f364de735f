/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The "null" implementation: the benchmark's own loop around a dispatch that does nothing.
 * Its instruction count is the share of every figure that belongs to the caller.
 */
#include "bench.h"

static int null_ctx;

static void *null_create(void)
{
	return &null_ctx;
}

static void null_destroy(void *map)
{
	(void)map;
}

static void *null_vcpu_enter(void *map, unsigned index)
{
	(void)index;
	return map;
}

static void null_vcpu_leave(void *vcpu)
{
	(void)vcpu;
}

static uint64_t null_run(void *vcpu, const uint64_t *addrs, uint64_t mask, uint64_t start,
                         uint64_t ops)
{
	uint64_t sum = 0, value;

	for (uint64_t i = 0; i < ops; i++) {
		int rc =
		    bench_null_dispatch(vcpu, addrs[(start + i) & mask], BENCH_ACCESS_SIZE, &value);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

const struct bench_impl bench_null = {
    .name = "null",
    .create = null_create,
    .destroy = null_destroy,
    .vcpu_enter = null_vcpu_enter,
    .vcpu_leave = null_vcpu_leave,
    .run = null_run,
};
