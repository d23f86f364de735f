/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap as seen by the benchmark: one system, one space, 4 KiB io regions placed in the
 * space's root container, every change in its own bm_begin/bm_commit.
 */
#include "bench.h"

#include <busmap/busmap.h>
#include <stdlib.h>

struct bbm_map {
	bm_system *sys;
	bm_space *space;
	bm_region **regions;
	size_t n, cap;
};

struct bbm_vcpu {
	bm_vcpu *vcpu;
	bm_space *space;
};

static int bbm_io_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = BENCH_VALUE;
	return 0;
}

static const struct bm_region_ops bbm_io_ops = {
    .read = bbm_io_read,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_ALL,
};

static void bbm_destroy(void *p)
{
	struct bbm_map *m = p;

	if (!m)
		return;
	if (m->sys)
		bm_system_free(m->sys);
	free(m->regions);
	free(m);
}

static void *bbm_create_flavour(enum bm_rcu_flavour flavour)
{
	struct bbm_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (bm_system_new_flavour(flavour, &m->sys) ||
	    bm_space_new(m->sys, "bench", "root", &m->space)) {
		bbm_destroy(m);
		return NULL;
	}
	return m;
}

static void *bbm_create(void)
{
	return bbm_create_flavour(BM_RCU_MEMB);
}

static void *bbm_create_qsbr(void)
{
	return bbm_create_flavour(BM_RCU_QSBR);
}

static int bbm_reserve(struct bbm_map *m, size_t more)
{
	size_t cap = m->cap ? m->cap : 64;
	bm_region **grown;

	if (m->n + more <= m->cap)
		return 0;
	while (cap < m->n + more)
		cap *= 2;
	grown = realloc(m->regions, cap * sizeof(*grown));
	if (!grown)
		return -1;
	m->regions = grown;
	m->cap = cap;
	return 0;
}

static int bbm_reserve_hook(void *p, size_t n)
{
	return bbm_reserve(p, n);
}

/* Creates and places one region; the caller holds a transaction. */
static int bbm_place(struct bbm_map *m, uint64_t base)
{
	bm_region *r;

	if (bbm_reserve(m, 1) ||
	    bm_region_new_io(m->sys, "io", BENCH_REGION_SIZE, &bbm_io_ops, NULL, &r))
		return -1;
	if (bm_region_add(bm_space_root(m->space), r, base, 0)) {
		bm_region_destroy(r);
		return -1;
	}
	m->regions[m->n++] = r;
	return 0;
}

static int bbm_add_many(void *p, const uint64_t *bases, size_t n)
{
	struct bbm_map *m = p;
	int err = 0;

	if (bm_begin(m->sys))
		return -1;
	for (size_t i = 0; i < n && !err; i++)
		err = bbm_place(m, bases[i]);
	return bm_commit(m->sys) || err ? -1 : 0;
}

static int bbm_add(void *p, uint64_t base)
{
	return bbm_add_many(p, &base, 1);
}

static int bbm_move(void *p, size_t index, uint64_t from, uint64_t to)
{
	struct bbm_map *m = p;
	int err;

	(void)from;
	if (index >= m->n || bm_begin(m->sys))
		return -1;
	err = bm_region_move(m->regions[index], to);
	return bm_commit(m->sys) || err ? -1 : 0;
}

/* Views retired by past commits go through RCU: wait for readers (busmap's reclaimer
 * thread then frees them; the caller waits for the heap to settle). */
static void bbm_settle(void *p)
{
	struct bbm_map *m = p;

	bm_synchronize(m->sys);
}

static void *bbm_vcpu_enter(void *p, unsigned index)
{
	struct bbm_map *m = p;
	struct bbm_vcpu *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->space = m->space;
	if (bm_vcpu_new(m->sys, index, NULL, &v->vcpu)) {
		free(v);
		return NULL;
	}
	return v;
}

static void bbm_vcpu_leave(void *p)
{
	struct bbm_vcpu *v = p;

	bm_vcpu_free(v->vcpu);
	free(v);
}

static uint64_t bbm_run(void *p, const uint64_t *addrs, uint64_t mask, uint64_t start, uint64_t ops)
{
	struct bbm_vcpu *v = p;
	bm_vcpu *vcpu = v->vcpu;
	bm_space *space = v->space;
	uint64_t sum = 0, value;

	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_read(vcpu, space, addrs[(start + i) & mask], BENCH_ACCESS_SIZE, &value);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

/*
 * QSBR as a VMM would use it: every access stands for one VM exit, and the vCPU thread
 * reports a quiescent state after each; it is offline between runs, as it would be while
 * the guest runs.
 */
static uint64_t bbm_run_qsbr(void *p, const uint64_t *addrs, uint64_t mask, uint64_t start,
                             uint64_t ops)
{
	struct bbm_vcpu *v = p;
	bm_vcpu *vcpu = v->vcpu;
	bm_space *space = v->space;
	uint64_t sum = 0, value;

	bm_vcpu_online(vcpu);
	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_read(vcpu, space, addrs[(start + i) & mask], BENCH_ACCESS_SIZE, &value);
		sum += value + (uint64_t)rc;
		bm_vcpu_quiescent(vcpu);
	}
	bm_vcpu_offline(vcpu);
	return sum;
}

static void *bbm_vcpu_enter_qsbr(void *p, unsigned index)
{
	struct bbm_vcpu *v = bbm_vcpu_enter(p, index);

	if (v)
		bm_vcpu_offline(v->vcpu);
	return v;
}

static void bbm_vcpu_leave_qsbr(void *p)
{
	struct bbm_vcpu *v = p;

	bm_vcpu_online(v->vcpu);
	bbm_vcpu_leave(v);
}

const struct bench_impl bench_busmap_qsbr = {
    .name = "busmap-qsbr",
    .create = bbm_create_qsbr,
    .destroy = bbm_destroy,
    .reserve = bbm_reserve_hook,
    .add = bbm_add,
    .add_many = bbm_add_many,
    .move = bbm_move,
    .settle = bbm_settle,
    .vcpu_enter = bbm_vcpu_enter_qsbr,
    .vcpu_leave = bbm_vcpu_leave_qsbr,
    .run = bbm_run_qsbr,
};

const struct bench_impl bench_busmap = {
    .name = "busmap",
    .create = bbm_create,
    .destroy = bbm_destroy,
    .reserve = bbm_reserve_hook,
    .add = bbm_add,
    .add_many = bbm_add_many,
    .move = bbm_move,
    .settle = bbm_settle,
    .vcpu_enter = bbm_vcpu_enter,
    .vcpu_leave = bbm_vcpu_leave,
    .run = bbm_run,
};
