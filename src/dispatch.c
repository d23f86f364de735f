/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dispatch: where an access is resolved.
 *
 * Under an RCU read-side section (no lock, no shared write) the access finds its flat
 * range, first through the vCPU's one-entry hint, then through the view's index. An access
 * inside one range goes straight to its region; one that crosses ranges is cut into pieces,
 * checked as a whole (an invalid size reaches no callback), then carried out piece by piece.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>

/* liburcu registration is per thread; several contexts may share one thread. */
static _Thread_local unsigned bm_rcu_users;

struct bm_hint {
	const bm_space *space;
	uint64_t generation;
	const struct bm_range *range;
};

struct bm_counter {
	_Atomic uint64_t v;
};

struct bm_vcpu {
	bm_system *sys;
	unsigned index;
	void *user;
	pthread_t thread;
	struct bm_hint hint;
	/* Written only by the owning thread; relaxed so other threads may read them. */
	struct bm_counter accesses, unassigned, conflicts, hint_hits;
} __attribute__((aligned(64)));

int bm_vcpu_new(bm_system *sys, unsigned index, void *user, bm_vcpu **out)
{
	if (!sys || !out)
		return -EINVAL;
	bm_vcpu *v;
	if (posix_memalign((void **)&v, 64, sizeof(*v)))
		return -ENOMEM;
	memset(v, 0, sizeof(*v));
	v->sys = sys;
	v->index = index;
	v->user = user;
	v->thread = pthread_self();
	if (bm_rcu_users++ == 0)
		urcu_memb_register_thread();
	atomic_fetch_add(&sys->vcpus, 1);
	*out = v;
	return 0;
}

int bm_vcpu_free(bm_vcpu *vcpu)
{
	if (!vcpu)
		return 0;
	if (!pthread_equal(vcpu->thread, pthread_self()))
		return -EPERM;
	if (urcu_memb_read_ongoing())
		return -EDEADLK; /* freeing the context of a dispatch still running */
	atomic_fetch_sub(&vcpu->sys->vcpus, 1);
	if (--bm_rcu_users == 0)
		urcu_memb_unregister_thread();
	free(vcpu);
	return 0;
}

unsigned bm_vcpu_index(const bm_vcpu *vcpu)
{
	return vcpu ? vcpu->index : 0;
}

void *bm_vcpu_user(const bm_vcpu *vcpu)
{
	return vcpu ? vcpu->user : NULL;
}

static uint64_t counter_get(const struct bm_counter *c)
{
	return atomic_load_explicit(&((struct bm_counter *)c)->v, memory_order_relaxed);
}

/* Single writer: a plain load and store, no locked instruction. */
static void counter_inc(struct bm_counter *c)
{
	atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void bm_vcpu_stats(const bm_vcpu *vcpu, struct bm_vcpu_stats *out)
{
	if (!vcpu || !out)
		return;
	out->accesses = counter_get(&vcpu->accesses);
	out->unassigned = counter_get(&vcpu->unassigned);
	out->conflicts = counter_get(&vcpu->conflicts);
	out->hint_hits = counter_get(&vcpu->hint_hits);
}

static bool size_valid(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

static const struct bm_range *find(bm_vcpu *v, const bm_space *s, const struct bm_view *view,
				   uint64_t addr)
{
	const struct bm_hint *h = &v->hint;
	if (h->space == s && h->generation == view->generation &&
	    addr - h->range->start <= h->range->last - h->range->start) {
		counter_inc(&v->hint_hits);
		return h->range;
	}
	const struct bm_range *r = bm_index_lookup(view->index, addr);
	v->hint = (struct bm_hint){s, view->generation, r};
	return r;
}

/* Does [addr, addr + size) lie inside r? */
static bool fits_range(const struct bm_range *r, uint64_t addr, unsigned size)
{
	return r->last - addr >= size - 1;
}

static bool access_ok(const struct bm_range *r, unsigned size)
{
	return !r->region || (r->region->ops.valid_sizes & size);
}

/* The common case: an aligned access of an implemented size, one callback. */
static bool direct(const struct bm_range *r, uint64_t off, unsigned size)
{
	return r->region->kind == BM_REGION_IO && (r->region->ops.impl_sizes & size) &&
	       !(off & (size - 1));
}

struct piece {
	const struct bm_range *r;
	uint64_t addr;
	unsigned len;
};

/* Cuts [addr, addr + size) into per-range pieces; returns the count. Bytes past 2^64 - 1
 * get no piece (they stay unassigned). */
static unsigned cut(const struct bm_view *view, const struct bm_range *first, uint64_t addr,
		    unsigned size, struct piece *p, bool *wrapped)
{
	unsigned n = 0, done = 0;
	const struct bm_range *r = first;
	*wrapped = false;
	while (done < size) {
		uint64_t room = r->last - addr;
		unsigned len = room < size - done - 1 ? (unsigned)room + 1 : size - done;
		p[n++] = (struct piece){r, addr, len};
		done += len;
		if (done == size)
			break;
		if (r->last == UINT64_MAX) {
			*wrapped = true;
			break;
		}
		addr = r->last + 1;
		r = bm_index_lookup(view->index, addr);
	}
	return n;
}

static int flags_of(const struct piece *p, unsigned n, bool wrapped)
{
	int flags = wrapped ? BM_ACCESS_UNASSIGNED : 0;
	for (unsigned i = 0; i < n; i++) {
		if (!p[i].r->region)
			flags |= BM_ACCESS_UNASSIGNED;
		if (p[i].r->flags & BM_RANGE_CONFLICT)
			flags |= BM_ACCESS_CONFLICT;
	}
	return flags;
}

static void signal_conflict(bm_vcpu *v, bm_space *s, uint64_t addr, unsigned size, bool wr)
{
	const struct bm_conflict_sink *sink = rcu_dereference(s->sink);
	if (sink && sink->ops.on_access)
		sink->ops.on_access(sink->arg, s, v, addr, size, wr);
}

static int read_split(bm_vcpu *v, bm_space *s, const struct bm_view *view,
		      const struct bm_range *r, uint64_t addr, unsigned size, uint64_t *value)
{
	struct piece p[8];
	bool wrapped;
	unsigned n = cut(view, r, addr, size, p, &wrapped);
	uint8_t bytes[8];
	memset(bytes, 0xff, sizeof(bytes));
	for (unsigned i = 0; i < n; i++) {
		if (!access_ok(p[i].r, size)) {
			*value = bm_bytes_to_value(bytes, size);
			return -EOPNOTSUPP;
		}
	}
	int flags = flags_of(p, n, wrapped);
	if (flags & BM_ACCESS_CONFLICT)
		signal_conflict(v, s, addr, size, false);
	for (unsigned i = 0, at = 0; i < n; at += p[i].len, i++) {
		int err = bm_access_read(v, p[i].r, p[i].addr, p[i].len, bytes + at);
		if (err < 0) {
			*value = bm_bytes_to_value(bytes, size);
			return err;
		}
	}
	*value = bm_bytes_to_value(bytes, size);
	return flags;
}

static int write_split(bm_vcpu *v, bm_space *s, const struct bm_view *view,
		       const struct bm_range *r, uint64_t addr, unsigned size, uint64_t value)
{
	struct piece p[8];
	bool wrapped;
	unsigned n = cut(view, r, addr, size, p, &wrapped);
	for (unsigned i = 0; i < n; i++)
		if (!access_ok(p[i].r, size))
			return -EOPNOTSUPP;
	int flags = flags_of(p, n, wrapped);
	if (flags & BM_ACCESS_CONFLICT)
		signal_conflict(v, s, addr, size, true);
	uint8_t bytes[8];
	bm_value_to_bytes(value, bytes, size);
	for (unsigned i = 0, at = 0; i < n; at += p[i].len, i++) {
		int err = bm_access_write(v, p[i].r, p[i].addr, p[i].len, bytes + at);
		if (err < 0)
			return err;
	}
	return flags;
}

static uint64_t size_mask(unsigned size)
{
	return size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

static int read_locked(bm_vcpu *v, bm_space *s, uint64_t addr, unsigned size, uint64_t *value)
{
	const struct bm_view *view = rcu_dereference(s->view);
	const struct bm_range *r = find(v, s, view, addr);
	if (fits_range(r, addr, size) && r->region && !(r->flags & BM_RANGE_CONFLICT)) {
		uint64_t off = r->offset + (addr - r->start);
		if (!(r->region->ops.valid_sizes & size))
			return *value = size_mask(size), -EOPNOTSUPP;
		if (direct(r, off, size)) {
			const bm_region *rg = r->region;
			uint64_t val = UINT64_MAX;
			int err = rg->ops.read ? rg->ops.read(rg->opaque, v, off, size, &val) : 0;
			*value = val & size_mask(size);
			return err < 0 ? err : 0;
		}
	}
	return read_split(v, s, view, r, addr, size, value);
}

static int write_locked(bm_vcpu *v, bm_space *s, uint64_t addr, unsigned size, uint64_t value)
{
	const struct bm_view *view = rcu_dereference(s->view);
	const struct bm_range *r = find(v, s, view, addr);
	value &= size_mask(size);
	if (fits_range(r, addr, size) && r->region && !(r->flags & BM_RANGE_CONFLICT)) {
		uint64_t off = r->offset + (addr - r->start);
		if (!(r->region->ops.valid_sizes & size))
			return -EOPNOTSUPP;
		if (direct(r, off, size)) {
			const bm_region *rg = r->region;
			int err = rg->ops.write ? rg->ops.write(rg->opaque, v, off, size, value) : 0;
			return err < 0 ? err : 0;
		}
	}
	return write_split(v, s, view, r, addr, size, value);
}

static void count(bm_vcpu *v, int ret)
{
	counter_inc(&v->accesses);
	if (ret > 0 && (ret & BM_ACCESS_UNASSIGNED))
		counter_inc(&v->unassigned);
	if (ret > 0 && (ret & BM_ACCESS_CONFLICT))
		counter_inc(&v->conflicts);
}

int bm_read(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size, uint64_t *value)
{
	if (!vcpu || !space || !value || !size_valid(size))
		return -EINVAL;
	urcu_memb_read_lock();
	int ret = read_locked(vcpu, space, addr, size, value);
	urcu_memb_read_unlock();
	count(vcpu, ret);
	return ret;
}

int bm_write(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size, uint64_t value)
{
	if (!vcpu || !space || !size_valid(size))
		return -EINVAL;
	urcu_memb_read_lock();
	int ret = write_locked(vcpu, space, addr, size, value);
	urcu_memb_read_unlock();
	count(vcpu, ret);
	return ret;
}
