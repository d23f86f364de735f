/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Inside the bhyve compatibility layer.
 *
 *   bhyve.c         the instance: creation, hooks, and what registrations share
 *   bhyve_regs.c    registrations by (base, size), for unregistering by identity
 *   bhyve_ctx.c     dispatch contexts, one per vCPU thread, made on its first access
 *   bhyve_mem.c     MMIO ranges and accesses, emulate_mem
 *   bhyve_inout.c   port ranges and accesses, emulate_inout
 *   bhyve_global.c  the process-wide instance behind bhyve's handle-less functions
 *
 * How an access reaches a handler: bhyve hands the whole access to the range that holds its
 * first byte, whatever its size or alignment. The layer therefore asks the core for that one
 * byte (a 1-byte bm_read or bm_write) and leaves the real access in a per-thread record
 * (struct bm_bhyve_call); the region callback that the byte reaches reads the record and
 * calls the bhyve handler with it.
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
	struct bm_bhyve_reg *next; /* hash chain, then the list of removed ones */
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

struct bm_bhyve_space {
	bm_space *space;
	struct bm_bhyve_regs regs; /* under the system's writer lock (bm_begin) */
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
	_Atomic(bm_bhyve_emulate_fn) emulate;
	_Atomic(bm_bhyve_inout_decoder_fn) decode_inout;
	atomic_bool strict_io;
};

/* A dispatch context of one thread for one instance. */
struct bm_bhyve_ctx {
	const void *owner; /* the owning thread's tag */
	bm_vcpu *vcpu;
	bm_bhyve *b;
	struct bm_bhyve_ctx *next;           /* b->ctxs */
	struct bm_bhyve_ctx *next_of_thread; /* the owner's contexts */
};

/*
 * The access in progress on this thread. An access fills it in and asks the core for its
 * first byte; the region callback that the byte reaches reads it, calls the handler, and
 * records the handler's result if it is not 0. A handler's own accesses overwrite it only
 * after the callback has read it and before a result is recorded, so no level needs to save
 * it. The direction is the callback's: a read asks the core to read.
 */
struct bm_bhyve_call {
	int size;
	struct vcpu *vcpu;
	struct vmctx *ctx;
	void *val;     /* read_mem's rval; a port access's eax */
	uint64_t wval; /* write_mem's value; the handler gets a copy on the callback's stack */
	int result;    /* a handler's nonzero result, until the access takes it */
};

/* What each thread keeps: its context for the instance of its last access, and the access
 * in progress. The address of tag tells the thread from every other live thread. A region
 * callback that is given another context than vcpu serves an access made through the core
 * API, not through this layer. */
struct bm_bhyve_thread {
	bm_bhyve *b;
	bm_vcpu *vcpu;
	struct bm_bhyve_call call;
	char tag;
};
extern _Thread_local struct bm_bhyve_thread bm_bhyve_self;

/* bhyve_ctx.c */
/* The calling thread's context for b, made on its first access; NULL without memory. */
bm_vcpu *bm_bhyve_vcpu_slow(bm_bhyve *b, struct vcpu *vcpu);
/* Whether a thread other than the caller holds a context of b. */
bool bm_bhyve_ctxs_busy(bm_bhyve *b);
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
void bm_bhyve_regs_insert(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r);
void bm_bhyve_regs_remove(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r);
/* Whether r serves the same device as the caller's description (handler and arguments). */
typedef bool (*bm_bhyve_same_fn)(const struct bm_bhyve_reg *r, const void *desc);
/* The registration at (base, size) whose name matches; see bhyve_regs.c for ties. */
struct bm_bhyve_reg *bm_bhyve_regs_find(const struct bm_bhyve_regs *t, uint64_t base, uint64_t size,
                                        const char *name, bm_bhyve_same_fn same, const void *desc);
/* Frees every registration still in t (their regions are the system's to free). */
void bm_bhyve_regs_fini(struct bm_bhyve_regs *t);

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

/* bhyve_mem.c: read_mem and write_mem, fast path inline, the rest here. */
int bm_bhyve_mem_read_slow(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int size);
int bm_bhyve_mem_write_slow(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int size);
/* What an access returns when the core did not return 0. */
int bm_bhyve_mem_status(int ret);

static inline int bm_bhyve_mem_read(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t *rval,
                                    int size)
{
	struct bm_bhyve_thread *self = &bm_bhyve_self;
	if (__builtin_expect(self->b != b, 0))
		return bm_bhyve_mem_read_slow(b, vcpu, gpa, rval, size);
	uint64_t first_byte;
	self->call.size = size;
	self->call.vcpu = vcpu;
	self->call.val = rval;
	int ret = bm_read(self->vcpu, b->mem.space, gpa, 1, &first_byte);
	if (__builtin_expect(ret == 0, 1))
		return 0;
	return bm_bhyve_mem_status(ret);
}

static inline int bm_bhyve_mem_write(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t wval,
                                     int size)
{
	struct bm_bhyve_thread *self = &bm_bhyve_self;
	if (__builtin_expect(self->b != b, 0))
		return bm_bhyve_mem_write_slow(b, vcpu, gpa, wval, size);
	self->call.size = size;
	self->call.vcpu = vcpu;
	self->call.wval = wval;
	int ret = bm_write(self->vcpu, b->mem.space, gpa, 1, 0);
	if (__builtin_expect(ret == 0, 1))
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
