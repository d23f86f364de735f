/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared helpers of the cmocka tests: a system with one space and a vCPU, io regions that
 * record what reached them, and the flat view as an array. */
#ifndef BUSMAP_TESTUTIL_H
#define BUSMAP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include <busmap/busmap.h>

/* What an io region saw last, and how often. */
struct probe {
	int id;
	unsigned reads, writes;
	uint64_t last_offset;
	unsigned last_size;
	uint64_t last_value;
	uint8_t mem[64]; /* backing bytes for read-modify-write checks */
};

static inline int probe_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                             uint64_t *value)
{
	(void)vcpu;
	struct probe *p = opaque;
	p->reads++;
	p->last_offset = offset;
	p->last_size = size;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p->mem[(offset + i) % sizeof(p->mem)] << (8 * i);
	*value = v;
	return 0;
}

static inline int probe_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                              uint64_t value)
{
	(void)vcpu;
	struct probe *p = opaque;
	p->writes++;
	p->last_offset = offset;
	p->last_size = size;
	p->last_value = value;
	for (unsigned i = 0; i < size; i++)
		p->mem[(offset + i) % sizeof(p->mem)] = (uint8_t)(value >> (8 * i));
	return 0;
}

static const struct bm_region_ops probe_ops = {.read = probe_read, .write = probe_write};

struct flat {
	struct bm_flat_range v[64];
	size_t n;
};

static inline int flat_collect(void *arg, const struct bm_flat_range *r)
{
	struct flat *f = arg;
	if (f->n < 64)
		f->v[f->n] = *r;
	f->n++;
	return 0;
}

static inline struct flat flat_of(bm_space *s)
{
	struct flat f = {.n = 0};
	bm_space_flat(s, flat_collect, &f);
	return f;
}

static inline void assert_range(const struct flat *f, size_t i, uint64_t start, uint64_t last,
                                bm_region *r, uint64_t offset)
{
	assert_true(i < f->n);
	assert_int_equal(f->v[i].start, start);
	assert_int_equal(f->v[i].last, last);
	assert_ptr_equal(f->v[i].region, r);
	assert_int_equal(f->v[i].offset, offset);
}

struct env {
	bool qsbr;
	bm_system *sys;
	bm_space *mem;
	bm_region *root;
	bm_vcpu *vcpu;
};

static inline int env_setup_flavour(void **state, enum bm_rcu_flavour flavour)
{
	struct env *e = calloc(1, sizeof(*e));
	if (!e || bm_system_new_flavour(flavour, &e->sys) ||
	    bm_space_new(e->sys, "memory", "system", &e->mem) ||
	    bm_vcpu_new(e->sys, 0, NULL, &e->vcpu))
		return -1;
	e->qsbr = flavour == BM_RCU_QSBR;
	e->root = bm_space_root(e->mem);
	*state = e;
	return 0;
}

static inline int env_setup(void **state)
{
	return env_setup_flavour(state, BM_RCU_MEMB);
}

static inline int env_setup_qsbr(void **state)
{
	return env_setup_flavour(state, BM_RCU_QSBR);
}

static inline int env_teardown(void **state)
{
	struct env *e = *state;
	if (bm_vcpu_free(e->vcpu) || bm_system_free(e->sys))
		return -1;
	free(e);
	return 0;
}

static inline bm_region *new_io(struct env *e, const char *name, uint64_t size, struct probe *p)
{
	bm_region *r = NULL;
	assert_int_equal(bm_region_new_io(e->sys, name, size, &probe_ops, p, &r), 0);
	return r;
}

static inline bm_region *new_container(struct env *e, const char *name, uint64_t size)
{
	bm_region *r = NULL;
	assert_int_equal(bm_region_new_container(e->sys, name, size, &r), 0);
	return r;
}

#endif
