/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The bhyve-style baseline as seen by the benchmark: a move is an unregister followed by a
 * register, as a bhyve device does when the guest reprograms a BAR.
 */
#include "baseline_bhyve.h"
#include "bench.h"

#include <stdlib.h>

struct bbl_vcpu {
	struct bb_map *map;
	unsigned index;
};

static int bbl_io_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)offset;
	(void)size;
	*value = BENCH_VALUE;
	return 0;
}

static int bbl_io_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)opaque;
	(void)offset;
	(void)size;
	(void)value;
	return 0;
}

static const struct bb_ops bbl_io_ops = {
    .read = bbl_io_read,
    .write = bbl_io_write,
};

static void *bbl_create(void)
{
	return bb_map_new(BENCH_MAX_VCPUS);
}

static void bbl_destroy(void *map)
{
	bb_map_free(map);
}

static int bbl_add(void *map, uint64_t base)
{
	return bb_register(map, base, BENCH_REGION_SIZE, &bbl_io_ops, NULL);
}

/* No transactions: one registration after the other. */
static int bbl_add_many(void *map, const uint64_t *bases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (bbl_add(map, bases[i]))
			return -1;
	}
	return 0;
}

static int bbl_move(void *map, size_t index, uint64_t from, uint64_t to)
{
	(void)index;
	if (bb_unregister(map, from))
		return -1;
	return bbl_add(map, to);
}

static void bbl_settle(void *map)
{
	(void)map;
}

static void *bbl_vcpu_enter(void *map, unsigned index)
{
	struct bbl_vcpu *v = malloc(sizeof(*v));

	if (v) {
		v->map = map;
		v->index = index;
	}
	return v;
}

static void bbl_vcpu_leave(void *vcpu)
{
	free(vcpu);
}

static uint64_t bbl_run(void *p, const uint64_t *addrs, uint64_t mask, uint64_t start, uint64_t ops)
{
	struct bbl_vcpu *v = p;
	struct bb_map *map = v->map;
	unsigned index = v->index;
	uint64_t sum = 0, value;

	for (uint64_t i = 0; i < ops; i++) {
		int rc = bb_read(map, index, addrs[(start + i) & mask], BENCH_ACCESS_SIZE, &value);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

const struct bench_impl bench_baseline = {
    .name = "baseline",
    .create = bbl_create,
    .destroy = bbl_destroy,
    .add = bbl_add,
    .add_many = bbl_add_many,
    .move = bbl_move,
    .settle = bbl_settle,
    .vcpu_enter = bbl_vcpu_enter,
    .vcpu_leave = bbl_vcpu_leave,
    .run = bbl_run,
};
