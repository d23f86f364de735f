/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dispatch: where an access is resolved.
 *
 * Under an RCU read-side section (no lock, no shared write) the access finds its flat
 * range, first through the vCPU's one-entry hint, then through the view's index. An access
 * inside one range goes straight to its region; one that crosses ranges is cut into pieces,
 * checked as a whole (an invalid size reaches no callback), then carried out piece by piece.
 */
#include "index_node.h"
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* liburcu registration is per thread; several contexts may share one thread. */
static _Thread_local unsigned bm_rcu_users;

/* The last range this vCPU hit, valid while its view is the published one: generations
 * are unique within a system, so one comparison says so. */
struct bm_hint {
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
	v->hint.generation = UINT64_MAX; /* matches no view */
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

/* 1, 2, 4 or 8: bits 1, 2, 4 and 8 of 0x116. */
static inline bool size_valid(unsigned size)
{
	return size <= 8 && ((0x116u >> size) & 1);
}

static inline __attribute__((always_inline)) const struct bm_range *
find(bm_vcpu *v, const struct bm_view *view, uint64_t addr)
{
	const struct bm_range *r = v->hint.range;
	if (v->hint.generation == view->generation && addr - r->start <= r->last - r->start) {
		counter_inc(&v->hint_hits);
		return r;
	}
	r = bm_index_lookup_inline(view->index, addr);
	v->hint.generation = view->generation;
	v->hint.range = r;
	return r;
}

static bool access_ok(const struct bm_range *r, unsigned size)
{
	return !r->region || (r->region->ops.valid_sizes & size);
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
	const struct bm_conflict_sink *sink = bm_rcu_deref(&s->sink);
	if (sink && sink->ops.on_access)
		sink->ops.on_access(sink->arg, s, v, addr, size, wr);
}

/* Everything but the one-callback case; also refuses sizes a region does not accept. */
static __attribute__((noinline)) int read_split(bm_vcpu *v, bm_space *s, const struct bm_view *view,
                                                const struct bm_range *r, uint64_t addr,
                                                unsigned size, uint64_t *value)
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

static __attribute__((noinline)) int write_split(bm_vcpu *v, bm_space *s,
                                                 const struct bm_view *view,
                                                 const struct bm_range *r, uint64_t addr,
                                                 unsigned size, uint64_t value)
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

static inline uint64_t size_mask(unsigned size)
{
	return UINT64_MAX >> (64 - 8 * size);
}

/*
 * The one-callback case: the access lies inside one range of an io region that takes this
 * size directly, at an aligned offset. Everything else (splits, ram, unassigned, conflicts,
 * size adaptation, refusals) takes the general path.
 */
static inline bool direct(const struct bm_range *r, uint64_t addr, unsigned size, uint64_t *off)
{
	*off = r->offset + (addr - r->start);
	return (r->direct_sizes & size) && r->last - addr >= size - 1 && !(*off & (size - 1));
}

static __attribute__((noinline)) void count_flags(bm_vcpu *v, int ret)
{
	if (ret & BM_ACCESS_UNASSIGNED)
		counter_inc(&v->unassigned);
	if (ret & BM_ACCESS_CONFLICT)
		counter_inc(&v->conflicts);
}

static inline void count(bm_vcpu *v, int ret)
{
	counter_inc(&v->accesses);
	if (__builtin_expect(ret > 0, 0))
		count_flags(v, ret);
}

int bm_read(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size, uint64_t *value)
{
	/* A hint is only meaningful within its own system: generations of two systems may
	 * coincide. */
	if (__builtin_expect(
	        !vcpu || !space || !value || !size_valid(size) || space->sys != vcpu->sys, 0))
		return -EINVAL;
	bm_rcu_read_lock();
	const struct bm_view *view = bm_rcu_deref(&space->view);
	const struct bm_range *r = find(vcpu, view, addr);
	uint64_t off;
	int ret;
	if (__builtin_expect(direct(r, addr, size, &off), 1)) {
		uint64_t val = UINT64_MAX; /* what a failing callback leaves unset reads as ones */
		ret = r->read(r->opaque, vcpu, off, size, &val);
		*value = val & size_mask(size);
		ret = ret < 0 ? ret : 0;
	} else {
		ret = read_split(vcpu, space, view, r, addr, size, value);
	}
	bm_rcu_read_unlock(&space->sys->rcu_token);
	count(vcpu, ret);
	return ret;
}

int bm_write(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size, uint64_t value)
{
	if (__builtin_expect(!vcpu || !space || !size_valid(size) || space->sys != vcpu->sys, 0))
		return -EINVAL;
	value &= size_mask(size);
	bm_rcu_read_lock();
	const struct bm_view *view = bm_rcu_deref(&space->view);
	const struct bm_range *r = find(vcpu, view, addr);
	uint64_t off;
	int ret;
	if (__builtin_expect(direct(r, addr, size, &off), 1)) {
		ret = r->write(r->opaque, vcpu, off, size, value);
		ret = ret < 0 ? ret : 0;
	} else {
		ret = write_split(vcpu, space, view, r, addr, size, value);
	}
	bm_rcu_read_unlock(&space->sys->rcu_token);
	count(vcpu, ret);
	return ret;
}
