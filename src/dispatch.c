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

/* The last range this vCPU hit, valid while its view is the published one: generations
 * are unique within a system, so one comparison says so. Its bounds are copied here so
 * that an access elsewhere (every random one) is told so from this line alone, without
 * loading the range. */
struct bm_hint {
	uint64_t generation;
	uint64_t start;
	uint64_t span; /* last - start */
	const struct bm_range *range;
};

struct bm_counter {
	_Atomic uint64_t v;
};

struct bm_vcpu {
	bm_system *sys;
	bool qsbr; /* the system's flavour, copied to the line the hot path reads */
	unsigned index;
	void *user;
	pthread_t thread;
	struct bm_hint hint;
	/* Written only by the owning thread; relaxed so other threads may read them. An access
	 * is either a hint hit or a lookup, so each path bumps one counter and the two add up
	 * to the accesses. */
	struct bm_counter hits, lookups, unassigned, conflicts;
} __attribute__((aligned(64)));

/* Accesses on this thread that are cut into pieces: they keep using the view across
 * callbacks, so a quiescent state or a grace period waited for inside one would free what
 * they still use. */
_Thread_local unsigned bm_split_depth;

const char bm_qsbr_token;

/* liburcu registration is per thread and per flavour; several contexts may share one
 * thread. */
static _Thread_local unsigned bm_rcu_users[2];

static void rcu_register(bool qsbr)
{
	if (bm_rcu_users[qsbr]++)
		return;
	if (qsbr)
		urcu_qsbr_register_thread();
	else
		urcu_memb_register_thread();
}

static void rcu_unregister(bool qsbr)
{
	if (--bm_rcu_users[qsbr])
		return;
	if (qsbr)
		urcu_qsbr_unregister_thread();
	else
		urcu_memb_unregister_thread();
}

int bm_vcpu_new(bm_system *sys, unsigned index, void *user, bm_vcpu **out)
{
	if (!sys || !out)
		return -EINVAL;
	bm_vcpu *v;
	if (posix_memalign((void **)&v, 64, sizeof(*v)))
		return -ENOMEM;
	memset(v, 0, sizeof(*v));
	v->sys = sys;
	v->qsbr = sys->flavour == BM_RCU_QSBR;
	v->index = index;
	v->user = user;
	v->thread = pthread_self();
	v->hint.generation = UINT64_MAX; /* matches no view */
	rcu_register(v->qsbr);
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
	if (bm_rcu_reading())
		return -EDEADLK; /* freeing the context of a dispatch still running */
	atomic_fetch_sub(&vcpu->sys->vcpus, 1);
	rcu_unregister(vcpu->qsbr);
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

int bm_vcpu_quiescent(bm_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	if (!vcpu->qsbr)
		return 0;
	if (bm_split_depth)
		return -EDEADLK;
	if (!urcu_qsbr_read_ongoing())
		return -EPERM;
	bm_tsan_release(&bm_qsbr_token);
	urcu_qsbr_quiescent_state();
	return 0;
}

int bm_vcpu_offline(bm_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	if (!vcpu->qsbr)
		return 0;
	if (bm_split_depth)
		return -EDEADLK;
	if (urcu_qsbr_read_ongoing()) {
		bm_tsan_release(&bm_qsbr_token);
		urcu_qsbr_thread_offline();
	}
	return 0;
}

int bm_vcpu_online(bm_vcpu *vcpu)
{
	if (!vcpu)
		return -EINVAL;
	if (vcpu->qsbr && !urcu_qsbr_read_ongoing())
		urcu_qsbr_thread_online();
	return 0;
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
	out->hint_hits = counter_get(&vcpu->hits);
	out->accesses = out->hint_hits + counter_get(&vcpu->lookups);
	out->unassigned = counter_get(&vcpu->unassigned);
	out->conflicts = counter_get(&vcpu->conflicts);
}

/* All ones in size bytes, for the valid sizes, as one load: what a failing read leaves
 * unset reads as, and what a write's value is cut to. */
static const uint64_t ones[9] = {[1] = 0xff, [2] = 0xffff, [4] = 0xffffffff, [8] = UINT64_MAX};

/* Bit n set for each valid access size n (1, 2, 4, 8): one shift and test on the exit path
 * instead of a chain of comparisons. */
#define VALID_SIZES ((1u << 1) | (1u << 2) | (1u << 4) | (1u << 8))

static inline bool size_valid(unsigned size)
{
	return size <= 8 && ((VALID_SIZES >> size) & 1);
}

/* Finds addr's range through the index and makes it the hint. */
static inline __attribute__((always_inline)) const struct bm_range *
look_up(bm_vcpu *v, const struct bm_view *view, uint64_t addr)
{
	const struct bm_range *r = bm_index_lookup_inline(view->index, addr);
	counter_inc(&v->lookups);
	v->hint.generation = view->generation;
	v->hint.start = r->start;
	v->hint.span = r->last - r->start;
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

/*
 * The one-callback case: the access lies inside one range of an io region that takes this
 * size directly, at an aligned offset. Everything else (splits, ram, unassigned, conflicts,
 * size adaptation, refusals) takes the general path. This is the test for the range the
 * index returned for addr, which therefore lies in it: only the end of the access needs a
 * bound.
 */
static inline __attribute__((always_inline)) bool
direct_found(const struct bm_range *r, uint64_t addr, unsigned size, uint64_t *off)
{
	*off = r->offset + (addr - r->start);
	return (r->direct_sizes & size) && r->last - addr >= size - 1 && !(*off & (size - 1));
}

/* The hinted range, when it is of the published view and serves the access directly. An
 * address outside it is turned away before the range itself is read. */
static inline __attribute__((always_inline)) const struct bm_range *
hint_direct(bm_vcpu *v, const struct bm_view *view, uint64_t addr, unsigned size, uint64_t *off)
{
	uint64_t d = addr - v->hint.start;
	if (v->hint.generation != view->generation || d > v->hint.span)
		return NULL;
	const struct bm_range *r = v->hint.range;
	*off = r->offset + d;
	/* As direct_found(), on the hint's copy of the bounds. A range's direct sizes never
	 * exceed its length, so the bound cannot wrap once the size is known to be direct. */
	if (!(r->direct_sizes & size) || d > v->hint.span - (size - 1) || (*off & (size - 1)))
		return NULL;
	counter_inc(&v->hits);
	return r;
}

/* Only the general path can see unassigned bytes or conflicts; the access itself was
 * counted as a hint hit or a lookup. */
static __attribute__((noinline)) void count_flags(bm_vcpu *v, int ret)
{
	if (ret & BM_ACCESS_UNASSIGNED)
		counter_inc(&v->unassigned);
	if (ret & BM_ACCESS_CONFLICT)
		counter_inc(&v->conflicts);
}

/* A hint is only meaningful within its own system: generations of two systems may
 * coincide. */
static inline bool args_ok(const bm_vcpu *v, const bm_space *s, unsigned size)
{
	return v && s && size_valid(size) && s->sys == v->sys;
}

/*
 * The paths below are written once for both directions: wr is a constant at every call,
 * so each direction compiles to its own straight code. A read stores into *out; a write
 * carries value.
 */
#define BM_INLINE static inline __attribute__((always_inline))

BM_INLINE int call_direct(bm_vcpu *v, const struct bm_range *r, uint64_t off, unsigned size,
                          bool wr, uint64_t *out, uint64_t value)
{
	if (wr)
		return r->write(r->opaque, v, off, size, value);
	*out = ones[size];
	return r->read(r->opaque, v, off, size, out);
}

BM_INLINE int call_split(bm_vcpu *v, bm_space *s, const struct bm_view *view,
                         const struct bm_range *r, uint64_t addr, unsigned size, bool wr,
                         uint64_t *out, uint64_t value)
{
	int ret = wr ? write_split(v, s, view, r, addr, size, value)
	             : read_split(v, s, view, r, addr, size, out);
	if (__builtin_expect(ret > 0, 0))
		count_flags(v, ret);
	return ret;
}

/* QSBR, the general path: the view stays in use across callbacks, which a quiescent state
 * inside one of them must not end. */
BM_INLINE int qsbr_general(bm_vcpu *v, bm_space *s, const struct bm_view *view,
                           const struct bm_range *r, uint64_t addr, unsigned size, bool wr,
                           uint64_t *out, uint64_t value)
{
	bm_split_depth++;
	int ret = call_split(v, s, view, r, addr, size, wr, out, value);
	bm_split_depth--;
	return ret;
}

/* QSBR: the thread is inside a read-side section for as long as it is online, so the
 * direct case is a tail call into the region, with nothing left to do after it. */
BM_INLINE int qsbr_miss(bm_vcpu *v, bm_space *s, const struct bm_view *view, uint64_t addr,
                        unsigned size, bool wr, uint64_t *out, uint64_t value)
{
	const struct bm_range *r = look_up(v, view, addr);
	uint64_t off;
	if (direct_found(r, addr, size, &off))
		return call_direct(v, r, off, size, wr, out, value);
	return qsbr_general(v, s, view, r, addr, size, wr, out, value);
}

/* memb: the section is marked around the access. */
BM_INLINE int memb(bm_vcpu *v, bm_space *s, uint64_t addr, unsigned size, bool wr, uint64_t *out,
                   uint64_t value)
{
	bm_rcu_read_lock();
	const struct bm_view *view = bm_rcu_deref(&s->view);
	uint64_t off;
	int ret;
	const struct bm_range *r = hint_direct(v, view, addr, size, &off);
	if (__builtin_expect(!r, 0)) {
		r = look_up(v, view, addr);
		if (!direct_found(r, addr, size, &off)) {
			ret = call_split(v, s, view, r, addr, size, wr, out, value);
			goto out;
		}
	}
	ret = call_direct(v, r, off, size, wr, out, value);
out:
	bm_rcu_read_unlock(&s->sys->rcu_token);
	return ret;
}

/* Out of line, so that the QSBR hit path keeps a frame of its own. */
static __attribute__((noinline)) int read_memb(bm_vcpu *v, bm_space *s, uint64_t addr,
                                               unsigned size, uint64_t *out)
{
	return memb(v, s, addr, size, false, out, 0);
}

static __attribute__((noinline)) int write_memb(bm_vcpu *v, bm_space *s, uint64_t addr,
                                                unsigned size, uint64_t value)
{
	return memb(v, s, addr, size, true, NULL, value);
}

static __attribute__((noinline)) int read_qsbr_miss(bm_vcpu *v, bm_space *s,
                                                    const struct bm_view *view, uint64_t addr,
                                                    unsigned size, uint64_t *out)
{
	return qsbr_miss(v, s, view, addr, size, false, out, 0);
}

static __attribute__((noinline)) int write_qsbr_miss(bm_vcpu *v, bm_space *s,
                                                     const struct bm_view *view, uint64_t addr,
                                                     unsigned size, uint64_t value)
{
	return qsbr_miss(v, s, view, addr, size, true, NULL, value);
}

BM_INLINE int dispatch(bm_vcpu *v, bm_space *s, uint64_t addr, unsigned size, bool wr,
                       uint64_t *out, uint64_t value)
{
	if (!v->qsbr)
		return wr ? write_memb(v, s, addr, size, value) : read_memb(v, s, addr, size, out);
	if (__builtin_expect(!urcu_qsbr_read_ongoing(), 0))
		return -EPERM; /* offline: a grace period would not wait for this access */
	const struct bm_view *view = bm_rcu_deref(&s->view);
	uint64_t off;
	const struct bm_range *r = hint_direct(v, view, addr, size, &off);
	if (__builtin_expect(r != NULL, 1))
		return call_direct(v, r, off, size, wr, out, value);
	return wr ? write_qsbr_miss(v, s, view, addr, size, value)
	          : read_qsbr_miss(v, s, view, addr, size, out);
}

bm_access_result bm_read(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size,
                         uint64_t *value)
{
	if (__builtin_expect(!args_ok(vcpu, space, size) || !value, 0))
		return -EINVAL;
	return dispatch(vcpu, space, addr, size, false, value, 0);
}

bm_access_result bm_write(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size,
                          uint64_t value)
{
	if (__builtin_expect(!args_ok(vcpu, space, size), 0))
		return -EINVAL;
	return dispatch(vcpu, space, addr, size, true, NULL, value & ones[size]);
}
