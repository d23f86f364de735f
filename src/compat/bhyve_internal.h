/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Inside the bhyve compatibility layer.
 *
 *   bhyve.c         the instance: creation, hooks, and what registrations share
 *   bhyve_regs.c    registrations by (base, size), for unregistering by identity
 *   bhyve_foreign.c where the spaces show regions that are not registrations
 *   bhyve_ctx.c     dispatch contexts, one per vCPU thread, made on its first access
 *   bhyve_mem.c     MMIO ranges and accesses, emulate_mem
 *   bhyve_inout.c   port ranges and accesses, emulate_inout
 *   bhyve_global.c  the process-wide instance behind bhyve's handle-less functions
 *
 * How an access reaches a handler: bhyve hands the whole access to the range that holds its
 * first byte, whatever its size or alignment. The layer therefore asks the core for that one
 * byte (a 1-byte bm_read or bm_write) and leaves the real access in a per-thread record
 * (struct bm_bhyve_call); the region callback that the byte reaches reads the record and
 * calls the bhyve handler with it, and marks the access served.
 *
 * The spaces are public, so a host may also place regions of its own there through the
 * core API (RAM, say). Such a region must get the access whole, and never the one-byte
 * probe, which would read or write it: a listener keeps the ranges where such regions
 * show, and while there are any, an access first looks its address up there and hands a
 * hit to the core whole. A probe that still reaches something unmarked (a region placed
 * while the access ran) is followed by the access whole too, so no access returns success
 * without having been carried out.
 */
#ifndef BUSMAP_COMPAT_BHYVE_INTERNAL_H
#define BUSMAP_COMPAT_BHYVE_INTERNAL_H

#include <busmap/compat/bhyve.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define BM_BHYVE_CONTAINER_OF(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* One bhyve registration: a region of the instance's memory or io space. */
struct bm_bhyve_reg {
	struct bm_bhyve_reg *next; /* hash chain */
	bm_region *region;
	uint64_t base, size;
	const char *name;
	uint64_t seq; /* registration order: among equal matches, unregister takes the newest */
	bool low;     /* fallback or IOPORT_F_DEFAULT: below every other registration */
	/* A removed registration is still the opaque of its region for dispatches that found
	 * it: it is freed through bm_defer. */
	struct bm_deferred dead;
	union {
		struct mem_range mem;
		struct inout_port port;
	} u;
};

/* The registrations of one space, hashed by (base, size). */
struct bm_bhyve_regs {
	struct bm_bhyve_reg **buckets;
	size_t nbuckets, count;
};

/* A range of a space's flat view shown by a region that is not a registration. */
struct bm_bhyve_span {
	uint64_t start, last;
};

/* Those ranges, sorted, kept by a listener of the space (bhyve_foreign.c). */
struct bm_bhyve_foreign {
	pthread_rwlock_t lock; /* written by the listener, read by accesses */
	struct bm_bhyve_span *v;
	size_t n, cap;
	atomic_size_t count; /* n, for the accesses' check without the lock */
};

struct bm_bhyve_space {
	bm_space *space;
	struct bm_bhyve_regs regs; /* under the system's writer lock (bm_begin) */
	struct bm_bhyve_foreign foreign;
};

struct bm_bhyve_ctx;

struct bm_bhyve {
	bm_system *sys;
	struct bm_bhyve_space mem, io;
	uint64_t seq; /* under the writer lock */
	int (*vcpu_index)(struct vcpu *vcpu);
	pthread_mutex_t lock;      /* the list below */
	struct bm_bhyve_ctx *ctxs; /* the live contexts, one per thread that made an access */
	unsigned nctxs_made;       /* numbers contexts when there is no vcpu_index */
	bool closed;               /* being freed: no new context (under lock) */
	_Atomic(bm_bhyve_emulate_fn) emulate;
	_Atomic(bm_bhyve_non_backed_fn) non_backed;
	_Atomic(bm_bhyve_inout_decoder_fn) decode_inout;
	atomic_bool strict_io;
};

/* A dispatch context of one thread for one instance. */
struct bm_bhyve_ctx {
	const void *owner; /* the owning thread's tag */
	bm_vcpu *vcpu;
	bm_vcpu *raw; /* for accesses handed whole to the core; made on first use */
	bm_bhyve *b;
	struct bm_bhyve_ctx *next;           /* b->ctxs */
	struct bm_bhyve_ctx *next_of_thread; /* the owner's contexts */
};

/*
 * The access in progress on this thread. An access fills it in and asks the core for its
 * first byte; the region callback that the byte reaches reads it, calls the handler, marks
 * it served and records the handler's result if it is not 0. What follows a probe that was
 * not simply served reads the access back from here, so an access made while one is being
 * probed (a handler's own, or a host region's callback's) saves it and puts it back
 * (bm_bhyve_nested). The direction is the callback's: a read asks the core to read.
 */
struct bm_bhyve_call {
	int size;
	int dir;     /* MEM_F_READ or MEM_F_WRITE; a port access: 1 for IN */
	bool served; /* a registration's handler ran for it */
	bool busy;   /* being probed: an access now is nested */
	struct vcpu *vcpu;
	struct vmctx *ctx;
	void *val; /* the caller's value: read into, or written from (the handler gets a copy of
	            * a written value on the callback's stack) */
	uint64_t addr;
	int result; /* a handler's nonzero result, until the access takes it */
};

/* Runs fn(arg), an access made while another is being probed on this thread, with the
 * other's record saved and put back. */
int bm_bhyve_nested(int (*fn)(void *arg), void *arg);

/* What each thread keeps: its context for the instance of its last access, and the access
 * in progress. The address of tag tells the thread from every other live thread. A region
 * callback that is given another context than vcpu serves an access made through the core
 * API, not through this layer. */
struct bm_bhyve_thread {
	bm_bhyve *b;
	bm_vcpu *vcpu;
	struct bm_bhyve_ctx *ctx;
	struct bm_bhyve_call call;
	char tag;
};
extern _Thread_local struct bm_bhyve_thread bm_bhyve_self;

/* bhyve_ctx.c */
/* The calling thread's context for b, made on its first access; NULL without memory. */
bm_vcpu *bm_bhyve_vcpu_slow(bm_bhyve *b, struct vcpu *vcpu);
/* The calling thread's context for accesses handed whole to the core, whose callbacks
 * then see another context than self->vcpu; NULL without memory. */
bm_vcpu *bm_bhyve_raw_vcpu(bm_bhyve *b);
/* Closes b to new contexts unless a thread other than the caller holds one (-EBUSY). */
int bm_bhyve_ctxs_close(bm_bhyve *b);
/* Frees the calling thread's context of b, if any. */
void bm_bhyve_ctx_release(bm_bhyve *b);

static inline bm_vcpu *bm_bhyve_vcpu_for(bm_bhyve *b, struct vcpu *vcpu)
{
	struct bm_bhyve_thread *self = &bm_bhyve_self;
	if (__builtin_expect(self->b == b, 1))
		return self->vcpu;
	return bm_bhyve_vcpu_slow(b, vcpu);
}

/* bhyve_regs.c */
int bm_bhyve_regs_init(struct bm_bhyve_regs *t);
/* Whether region is one of t's registrations. */
bool bm_bhyve_regs_owns(const struct bm_bhyve_regs *t, const bm_region *region);
void bm_bhyve_regs_insert(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r);
void bm_bhyve_regs_remove(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r);
/* Whether r serves the same device as the caller's description (handler and arguments). */
typedef bool (*bm_bhyve_same_fn)(const struct bm_bhyve_reg *r, const void *desc);
/* The registration at (base, size) whose name matches; see bhyve_regs.c for ties. */
struct bm_bhyve_reg *bm_bhyve_regs_find(const struct bm_bhyve_regs *t, uint64_t base, uint64_t size,
                                        const char *name, bm_bhyve_same_fn same, const void *desc);
/* Frees every registration still in t (their regions are the system's to free). */
void bm_bhyve_regs_fini(struct bm_bhyve_regs *t);

/* bhyve_foreign.c */
/* How often an access whose host region went away under it starts again. */
#define BM_BHYVE_AGAIN 8u
/* Starts watching s->space (whose lock the instance made). */
int bm_bhyve_foreign_init(struct bm_bhyve_space *s);
void bm_bhyve_foreign_fini(struct bm_bhyve_foreign *f);
/* Whether addr lies where a region that is not a registration shows, and the last address
 * of that range. */
bool bm_bhyve_foreign_at(struct bm_bhyve_foreign *f, uint64_t addr, uint64_t *last);
static inline bool bm_bhyve_foreign_any(struct bm_bhyve_foreign *f)
{
	return atomic_load_explicit(&f->count, memory_order_relaxed) != 0;
}

/* bhyve.c */
/* Frees everything of b but b itself and its lock, which a thread that loaded b before it
 * was closed may still take (and find it closed). -EBUSY, -EDEADLK as bm_bhyve_free. */
int bm_bhyve_close(bm_bhyve *b);

/* Waits until the publication in progress, if any, and the listeners it runs are done, so
 * that what the layer knows of the host's regions is as fresh as the published map. */
void bm_bhyve_catch_up(bm_bhyve *b);

/* bhyve.c: what memory and port registrations share. */
struct bm_bhyve_reg *bm_bhyve_reg_new(uint64_t base, uint64_t size, const char *name, bool low);
int bm_bhyve_add(bm_bhyve *b, struct bm_bhyve_space *s, struct bm_bhyve_reg *r,
                 const struct bm_region_ops *ops);
/* Removes the match; refuse(r) returning nonzero refuses with that error. */
int bm_bhyve_remove(bm_bhyve *b, struct bm_bhyve_space *s, uint64_t base, uint64_t size,
                    const char *name, bm_bhyve_same_fn same, const void *desc,
                    int (*refuse)(const struct bm_bhyve_reg *r));

/* A handler's result as a core callback returns it (0 or a negative errno). */
static inline int bm_bhyve_core_result(int result)
{
	return result > 0 ? -result : result;
}

/* bhyve_mem.c: read_mem and write_mem (dir MEM_F_READ or MEM_F_WRITE, val read into or
 * written from), fast path inline, the rest there. */
int bm_bhyve_mem_access_slow(bm_bhyve *b, struct vcpu *vcpu, int dir, uint64_t gpa, uint64_t *val,
                             int size);
/* What an access returns when its probe (ret) was not simply served; the access is in the
 * thread's record, and its instance is the thread's last (bm_bhyve_self.b). */
int bm_bhyve_mem_status(int ret);

/* Fills in the access and asks the core for its first byte, on the context v. */
static inline int bm_bhyve_mem_probe(bm_bhyve *b, bm_vcpu *v, int dir, struct vcpu *vcpu,
                                     uint64_t gpa, uint64_t *val, int size)
{
	struct bm_bhyve_call *c = &bm_bhyve_self.call;
	uint64_t first_byte;
	int ret;
	c->size = size;
	c->dir = dir;
	c->served = false;
	c->busy = true;
	c->vcpu = vcpu;
	c->val = val;
	c->addr = gpa;
	if (dir == MEM_F_READ)
		ret = bm_read(v, b->mem.space, gpa, 1, &first_byte);
	else
		ret = bm_write(v, b->mem.space, gpa, 1, 0);
	c->busy = false;
	return ret;
}

static inline int bm_bhyve_mem_access(bm_bhyve *b, struct vcpu *vcpu, int dir, uint64_t gpa,
                                      uint64_t *val, int size)
{
	struct bm_bhyve_thread *self = &bm_bhyve_self;
	if (__builtin_expect(
	        self->b != b || self->call.busy || bm_bhyve_foreign_any(&b->mem.foreign), 0))
		return bm_bhyve_mem_access_slow(b, vcpu, dir, gpa, val, size);
	int ret = bm_bhyve_mem_probe(b, self->vcpu, dir, vcpu, gpa, val, size);
	if (__builtin_expect(ret == 0 && self->call.served, 1))
		return 0;
	return bm_bhyve_mem_status(ret);
}

/* bhyve.c: a core callback's return for a handler's nonzero result, which it records for
 * the access to return. */
int bm_bhyve_handler_failed(int result);
/* The handler's result when the core returned ret < 0: 0 if no handler failed. */
static inline int bm_bhyve_failure_taken(void)
{
	int result = bm_bhyve_self.call.result;
	bm_bhyve_self.call.result = 0;
	return result;
}

/* Whether a region callback is serving an access of this layer. */
static inline bool bm_bhyve_ours(const bm_vcpu *vcpu)
{
	return vcpu == bm_bhyve_self.vcpu;
}

#endif
