/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bhyve-style MMIO map: see baseline_bhyve.h for the design being reproduced.
 */
#include "baseline_bhyve.h"

#include <bsd/sys/tree.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct bb_range {
	RB_ENTRY(bb_range) link;
	uint64_t base;
	uint64_t end; /* inclusive */
	const struct bb_ops *ops;
	void *opaque;
};

RB_HEAD(bb_tree, bb_range);

struct bb_map {
	pthread_rwlock_t lock;
	struct bb_tree tree;
	unsigned max_vcpus;
	/* One cached range per vCPU, side by side as in bhyve. A vCPU updates its own entry
	 * with the lock held for reading; unregister clears entries with it held for writing. */
	struct bb_range **hint;
};

/* Overlapping ranges compare equal, so a one-byte key finds the range that holds it. */
static int bb_range_cmp(struct bb_range *a, struct bb_range *b)
{
	if (a->end < b->base)
		return -1;
	if (a->base > b->end)
		return 1;
	return 0;
}

/* RB_GENERATE_STATIC would need BSD's __unused, which libbsd leaves undefined. */
#define BB_RB_ATTR __attribute__((__unused__)) static
RB_PROTOTYPE_INTERNAL(bb_tree, bb_range, link, bb_range_cmp, BB_RB_ATTR);
RB_GENERATE_INTERNAL(bb_tree, bb_range, link, bb_range_cmp, BB_RB_ATTR)

static struct bb_range *bb_tree_lookup(struct bb_tree *t, uint64_t addr)
{
	struct bb_range key;

	key.base = addr;
	key.end = addr;
	return RB_FIND(bb_tree, t, &key);
}

static int bb_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int err;

	/* FreeBSD's rwlocks let a waiting writer in before new readers; glibc's default
	 * prefers readers and would starve the writer of the reader-beside-writer case. */
	err = pthread_rwlockattr_init(&attr);
	if (err)
		return err;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return err;
}

struct bb_map *bb_map_new(unsigned max_vcpus)
{
	struct bb_map *m;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->hint = calloc(max_vcpus ? max_vcpus : 1, sizeof(*m->hint));
	if (!m->hint || bb_lock_init(&m->lock)) {
		free(m->hint);
		free(m);
		return NULL;
	}
	m->max_vcpus = max_vcpus;
	RB_INIT(&m->tree);
	return m;
}

void bb_map_free(struct bb_map *m)
{
	struct bb_range *r, *next;

	if (!m)
		return;
	RB_FOREACH_SAFE(r, bb_tree, &m->tree, next)
	{
		RB_REMOVE(bb_tree, &m->tree, r);
		free(r);
	}
	pthread_rwlock_destroy(&m->lock);
	free(m->hint);
	free(m);
}

/* As bhyve: allocate first, then look the base up and insert under the write lock. */
int bb_register(struct bb_map *m, uint64_t base, uint64_t size, const struct bb_ops *ops,
                void *opaque)
{
	struct bb_range *r;
	int err = 0;

	if (size == 0 || base + (size - 1) < base)
		return EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return ENOMEM;
	r->base = base;
	r->end = base + (size - 1);
	r->ops = ops;
	r->opaque = opaque;
	pthread_rwlock_wrlock(&m->lock);
	if (bb_tree_lookup(&m->tree, base) || RB_INSERT(bb_tree, &m->tree, r))
		err = EEXIST;
	pthread_rwlock_unlock(&m->lock);
	if (err)
		free(r);
	return err;
}

static void bb_hint_flush(struct bb_map *m, const struct bb_range *r)
{
	for (unsigned i = 0; i < m->max_vcpus; i++) {
		if (m->hint[i] == r)
			m->hint[i] = NULL;
	}
}

int bb_unregister(struct bb_map *m, uint64_t base)
{
	struct bb_range *r;

	pthread_rwlock_wrlock(&m->lock);
	r = bb_tree_lookup(&m->tree, base);
	if (r) {
		RB_REMOVE(bb_tree, &m->tree, r);
		bb_hint_flush(m, r);
	}
	pthread_rwlock_unlock(&m->lock);
	free(r);
	return r ? 0 : ENOENT;
}

/* The hint first, then the tree (refreshing the hint). Called with the read lock held. */
static struct bb_range *bb_find(struct bb_map *m, unsigned vcpu, uint64_t addr)
{
	struct bb_range *r = m->hint[vcpu];

	if (r && addr >= r->base && addr <= r->end)
		return r;
	r = bb_tree_lookup(&m->tree, addr);
	if (r)
		m->hint[vcpu] = r;
	return r;
}

static int bb_access(struct bb_map *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t *value,
                     bool is_write)
{
	struct bb_range *r;
	int err;

	if (vcpu >= m->max_vcpus)
		return EINVAL;
	pthread_rwlock_rdlock(&m->lock);
	r = bb_find(m, vcpu, addr);
	if (!r)
		err = ESRCH;
	else if (is_write)
		err = r->ops->write(r->opaque, addr - r->base, size, *value);
	else
		err = r->ops->read(r->opaque, addr - r->base, size, value);
	pthread_rwlock_unlock(&m->lock);
	return err;
}

int bb_read(struct bb_map *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t *value)
{
	return bb_access(m, vcpu, addr, size, value, false);
}

int bb_write(struct bb_map *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t value)
{
	return bb_access(m, vcpu, addr, size, &value, true);
}
