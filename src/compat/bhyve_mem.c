/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MMIO ranges: registration, accesses, and emulate_mem.
 */
#include "bhyve_internal.h"

/* An access made through the core API on the space, not through this layer: there is no
 * bhyve vCPU to give the handler. */
static __attribute__((noinline)) int mem_core_access(const struct bm_bhyve_reg *r, int dir,
                                                     uint64_t off, unsigned size, uint64_t *value)
{
	const struct mem_range *mr = &r->u.mem;
	int err = mr->handler(NULL, dir, mr->base + off, (int)size, value, mr->arg1, mr->arg2);
	*value &= UINT64_MAX >> (64 - 8 * size); /* the core passes on what fits in size */
	return bm_bhyve_core_result(err);
}

/* The region callbacks take the access in progress to the handler; the core's own size and
 * value are those of the first byte, which only found the range. */
static int mem_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	struct bm_bhyve_call *c = &bm_bhyve_self.call;
	const struct mem_range *mr = &((const struct bm_bhyve_reg *)opaque)->u.mem;
	if (__builtin_expect(!bm_bhyve_ours(vcpu), 0))
		return mem_core_access(opaque, MEM_F_READ, off, size, value);
	int result =
	    mr->handler(c->vcpu, MEM_F_READ, mr->base + off, c->size, c->val, mr->arg1, mr->arg2);
	c->served = true; /* after the handler, whose own accesses reuse the record */
	return __builtin_expect(result == 0, 1) ? 0 : bm_bhyve_handler_failed(result);
}

static int mem_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	struct bm_bhyve_call *c = &bm_bhyve_self.call;
	const struct mem_range *mr = &((const struct bm_bhyve_reg *)opaque)->u.mem;
	if (__builtin_expect(!bm_bhyve_ours(vcpu), 0))
		return mem_core_access(opaque, MEM_F_WRITE, off, size, &value);
	uint64_t wval = *(const uint64_t *)c->val; /* the handler's own copy, as in bhyve */
	int result =
	    mr->handler(c->vcpu, MEM_F_WRITE, mr->base + off, c->size, &wval, mr->arg1, mr->arg2);
	c->served = true;
	return __builtin_expect(result == 0, 1) ? 0 : bm_bhyve_handler_failed(result);
}

static const struct bm_region_ops mem_ops = {
    .read = mem_read,
    .write = mem_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_ALL,
};

/* Nothing at gpa: the host's answer, as bhyve's mmio_handle_non_backed_mem gives it. */
static int mem_non_backed(bm_bhyve *b, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val,
                          int size)
{
	bm_bhyve_non_backed_fn fn = atomic_load_explicit(&b->non_backed, memory_order_acquire);
	struct mem_range *mr = NULL;
	if (!fn)
		return ESRCH;
	int err = fn(vcpu, gpa, &mr);
	if (err)
		return err;
	if (!mr || !mr->handler)
		return ESRCH; /* success without a range would be success with nothing done */
	if (dir == MEM_F_READ)
		return mr->handler(vcpu, dir, gpa, size, val, mr->arg1, mr->arg2);
	uint64_t wval = *val; /* the handler's own copy, as in bhyve */
	return mr->handler(vcpu, dir, gpa, size, &wval, mr->arg1, mr->arg2);
}

static int mem_settle(bm_bhyve *b, int ret, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val,
                      int size, unsigned again);
static int mem_whole(bm_bhyve *b, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val, int size,
                     uint64_t last, unsigned again);

/* The access, on the calling thread's context for b, from the start: the host's regions
 * first, then the probe. again: see mem_whole. */
static int mem_access(bm_bhyve *b, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val,
                      int size, unsigned again)
{
	uint64_t last;
	if (bm_bhyve_foreign_any(&b->mem.foreign) &&
	    bm_bhyve_foreign_at(&b->mem.foreign, gpa, &last))
		return mem_whole(b, dir, vcpu, gpa, val, size, last, again);
	int ret = bm_bhyve_mem_probe(b, bm_bhyve_self.vcpu, dir, vcpu, gpa, val, size);
	if (ret == 0 && bm_bhyve_self.call.served)
		return 0;
	return mem_settle(b, ret, dir, vcpu, gpa, val, size, again);
}

/*
 * The access whole, through the core, to a region the host placed with the core API. It
 * showed at gpa up to last, as far as the layer knows. If the core finds bytes unassigned
 * within that, the region has gone since (the layer's knowledge lags a publication): once
 * that publication is done, the access is made again from the start rather than answered
 * with all ones, up to again more times (a bound only a host placing and removing regions
 * there without pause reaches; the core's all ones answer then).
 */
static int mem_whole(bm_bhyve *b, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val, int size,
                     uint64_t last, unsigned again)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return EINVAL;
	bm_vcpu *raw = bm_bhyve_raw_vcpu(b);
	if (!raw)
		return ENOMEM;
	uint64_t value;
	bm_access_result ret = dir == MEM_F_READ
	                           ? bm_read(raw, b->mem.space, gpa, (unsigned)size, &value)
	                           : bm_write(raw, b->mem.space, gpa, (unsigned)size, *val);
	if (bm_failed(ret))
		return -ret; /* the caller's value is left alone */
	if ((ret & BM_ACCESS_UNASSIGNED) && again && (uint64_t)size - 1 <= last - gpa) {
		bm_bhyve_catch_up(b);
		return mem_access(b, dir, vcpu, gpa, val, size, again - 1);
	}
	if (dir == MEM_F_READ)
		*val = value;
	return 0;
}

static int mem_settle(bm_bhyve *b, int ret, int dir, struct vcpu *vcpu, uint64_t gpa, uint64_t *val,
                      int size, unsigned again)
{
	if (bm_bhyve_self.call.served) {
		if (ret >= 0)
			return 0; /* an overlap, served by the winner */
		int result = bm_bhyve_failure_taken();
		return result ? result : -ret;
	}
	if (ret > 0 && (ret & BM_ACCESS_UNASSIGNED))
		return mem_non_backed(b, dir, vcpu, gpa, val, size);
	/* The byte reached a region that is not a registration, placed while this access ran
	 * (bhyve_foreign.c): it still gets the access whole. */
	return mem_whole(b, dir, vcpu, gpa, val, size, UINT64_MAX, again);
}

int bm_bhyve_mem_status(int ret)
{
	const struct bm_bhyve_call *c = &bm_bhyve_self.call;
	return mem_settle(bm_bhyve_self.b, ret, c->dir, c->vcpu, c->addr, c->val, c->size,
	                  BM_BHYVE_AGAIN);
}

/* What a nested access needs of its caller's arguments. */
struct mem_args {
	bm_bhyve *b;
	struct vcpu *vcpu;
	int dir;
	uint64_t gpa;
	uint64_t *val;
	int size;
};

static int mem_access_args(void *arg)
{
	const struct mem_args *a = arg;
	if (!bm_bhyve_vcpu_for(a->b, a->vcpu))
		return ENOMEM;
	return mem_access(a->b, a->dir, a->vcpu, a->gpa, a->val, a->size, BM_BHYVE_AGAIN);
}

int bm_bhyve_mem_access_slow(bm_bhyve *b, struct vcpu *vcpu, int dir, uint64_t gpa, uint64_t *val,
                             int size)
{
	struct mem_args a = {b, vcpu, dir, gpa, val, size};
	if (bm_bhyve_self.call.busy)
		return bm_bhyve_nested(mem_access_args, &a);
	return mem_access_args(&a);
}

static int mem_register(bm_bhyve *b, const struct mem_range *mr, bool fallback)
{
	if (!b || !mr || !mr->handler || !mr->size || mr->size - 1 > UINT64_MAX - mr->base)
		return -EINVAL;
	struct bm_bhyve_reg *r = bm_bhyve_reg_new(mr->base, mr->size, mr->name, fallback);
	if (!r)
		return -ENOMEM;
	r->u.mem = *mr;
	return bm_bhyve_add(b, &b->mem, r, &mem_ops);
}

int bm_bhyve_register_mem(bm_bhyve *b, const struct mem_range *mr)
{
	return mem_register(b, mr, false);
}

int bm_bhyve_register_mem_fallback(bm_bhyve *b, const struct mem_range *mr)
{
	return mem_register(b, mr, true);
}

static bool mem_same(const struct bm_bhyve_reg *r, const void *desc)
{
	const struct mem_range *a = &r->u.mem, *d = desc;
	return a->handler == d->handler && a->arg1 == d->arg1 && a->arg2 == d->arg2;
}

static int mem_refuse(const struct bm_bhyve_reg *r)
{
	return (r->u.mem.flags & MEM_F_IMMUTABLE) ? -EPERM : 0;
}

int bm_bhyve_unregister_mem(bm_bhyve *b, const struct mem_range *mr)
{
	if (!b || !mr)
		return -EINVAL;
	return bm_bhyve_remove(b, &b->mem, mr->base, mr->size, mr->name, mem_same, mr, mem_refuse);
}

int bm_bhyve_read_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int size)
{
	if (!b || !rval)
		return EINVAL;
	return bm_bhyve_mem_access(b, vcpu, MEM_F_READ, gpa, rval, size);
}

int bm_bhyve_write_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int size)
{
	if (!b)
		return EINVAL;
	return bm_bhyve_mem_access(b, vcpu, MEM_F_WRITE, gpa, &wval, size);
}

static int emulated_read(struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int size, void *arg)
{
	return bm_bhyve_read_mem(arg, vcpu, gpa, rval, size);
}

static int emulated_write(struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int size, void *arg)
{
	return bm_bhyve_write_mem(arg, vcpu, gpa, wval, size);
}

int bm_bhyve_emulate_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t paddr, struct vie *vie,
                         struct vm_guest_paging *paging)
{
	if (!b)
		return EINVAL;
	bm_bhyve_emulate_fn emulate = atomic_load_explicit(&b->emulate, memory_order_acquire);
	if (!emulate)
		return ENOSYS;
	return emulate(vcpu, paddr, vie, paging, emulated_read, emulated_write, b);
}
