/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The bhyve compatibility layer as the benchmark sees it, through bhyve's own functions:
 * init_mem, register_mem, and read_mem on the vCPU threads; a move is an unregister
 * followed by a register, as bhyve's PCI layer does when the guest reprograms a BAR. The
 * layer keeps one process-wide instance, so one map of this kind exists at a time.
 */
#include "bench.h"

#include "bhyve_host.h"

#include <stdlib.h>

static const char bbc_name[] = "io";

static struct mem_range bbc_range(uint64_t base)
{
	struct mem_range mr = {.name = bbc_name,
	                       .flags = MEM_F_RW,
	                       .handler = bench_bhyve_handler,
	                       .arg2 = BENCH_VALUE,
	                       .base = base,
	                       .size = BENCH_REGION_SIZE};
	return mr;
}

static void bbc_destroy(void *map)
{
	(void)map;
	bm_bhyve_global_free();
}

/* The map is the process-wide instance; NULL if one is already in use. */
static void *bbc_create(void)
{
	if (bm_bhyve_global())
		return NULL;
	init_mem(BENCH_MAX_VCPUS);
	return bm_bhyve_global();
}

static int bbc_add(void *map, uint64_t base)
{
	struct mem_range mr = bbc_range(base);

	(void)map;
	return register_mem(&mr) ? -1 : 0;
}

/* bhyve has no transactions, but the instance's system does: one commit for the lot. */
static int bbc_add_many(void *map, const uint64_t *bases, size_t n)
{
	bm_system *sys = bm_bhyve_system(map);
	int err = 0;

	if (bm_begin(sys))
		return -1;
	for (size_t i = 0; i < n && !err; i++)
		err = bbc_add(map, bases[i]);
	return bm_commit(sys) || err ? -1 : 0;
}

static int bbc_move(void *map, size_t index, uint64_t from, uint64_t to)
{
	struct mem_range old = {.name = bbc_name, .base = from, .size = BENCH_REGION_SIZE};

	(void)index;
	if (unregister_mem(&old))
		return -1;
	return bbc_add(map, to);
}

static void bbc_settle(void *map)
{
	bm_synchronize(bm_bhyve_system(map));
}

/* The vCPU's dispatch context is made by its first read_mem, on this thread, and goes when
 * the thread exits. */
static void *bbc_vcpu_enter(void *map, unsigned index)
{
	struct vcpu *v = malloc(sizeof(*v));

	(void)map;
	if (v)
		v->id = (int)index;
	return v;
}

static void bbc_vcpu_leave(void *vcpu)
{
	free(vcpu);
}

static uint64_t bbc_run(void *p, const uint64_t *addrs, uint64_t mask, uint64_t start, uint64_t ops)
{
	struct vcpu *vcpu = p;
	uint64_t sum = 0, value = 0;

	for (uint64_t i = 0; i < ops; i++) {
		int rc = read_mem(vcpu, addrs[(start + i) & mask], &value, BENCH_ACCESS_SIZE);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

const struct bench_impl bench_bhyve_compat = {
    .name = "bhyve-compat",
    .create = bbc_create,
    .destroy = bbc_destroy,
    .add = bbc_add,
    .add_many = bbc_add_many,
    .move = bbc_move,
    .settle = bbc_settle,
    .vcpu_enter = bbc_vcpu_enter,
    .vcpu_leave = bbc_vcpu_leave,
    .run = bbc_run,
};
