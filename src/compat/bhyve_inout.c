/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Port ranges: registration, accesses, and emulate_inout.
 */
#include "bhyve_internal.h"

#define PORT_LIMIT 0x10000 /* ports are 0 .. 0xffff */

static uint32_t bytes_mask(int bytes)
{
	return bytes == 4 ? UINT32_MAX : (UINT32_C(1) << (8 * bytes)) - 1;
}

/* The range's flags decide whether the direction is served at all, as in bhyve. */
static int port_call(const struct inout_port *iop, struct vmctx *ctx, int in, int port, int bytes,
                     uint32_t *eax)
{
	if (!(iop->flags & (in ? IOPORT_F_IN : IOPORT_F_OUT)))
		return -1;
	return iop->handler(ctx, in, port, bytes, eax, iop->arg);
}

/* An access made through the core API on the space, not through this layer. */
static __attribute__((noinline)) int port_core_access(const struct bm_bhyve_reg *r, int in,
                                                      uint64_t off, unsigned size, uint64_t *value)
{
	uint32_t eax = (uint32_t)*value;
	int bytes = size > 4 ? 4 : (int)size;
	int err = port_call(&r->u.port, NULL, in, (int)(r->base + off), bytes, &eax);
	*value = in ? eax & bytes_mask(bytes) : 0;
	return err ? -EIO : 0;
}

/* The region callbacks take the access in progress to the handler. */
static inline int port_serve(const struct bm_bhyve_reg *r, int in, uint64_t off)
{
	struct bm_bhyve_call *c = &bm_bhyve_self.call;
	int result = port_call(&r->u.port, c->ctx, in, (int)(r->base + off), c->size, c->val);
	c->served = true; /* after the handler, whose own accesses reuse the record */
	return result == 0 ? 0 : bm_bhyve_handler_failed(result);
}

static int port_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	if (__builtin_expect(!bm_bhyve_ours(vcpu), 0))
		return port_core_access(opaque, 1, off, size, value);
	return port_serve(opaque, 1, off);
}

static int port_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	if (__builtin_expect(!bm_bhyve_ours(vcpu), 0))
		return port_core_access(opaque, 0, off, size, &value);
	return port_serve(opaque, 0, off);
}

static const struct bm_region_ops port_ops = {
    .read = port_read,
    .write = port_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_ALL,
};

int bm_bhyve_register_inout(bm_bhyve *b, const struct inout_port *iop)
{
	if (!b || !iop || !iop->handler || iop->port < 0 || iop->size < 1 ||
	    iop->port > PORT_LIMIT - iop->size)
		return -EINVAL;
	struct bm_bhyve_reg *r = bm_bhyve_reg_new((uint64_t)iop->port, (uint64_t)iop->size,
	                                          iop->name, (iop->flags & IOPORT_F_DEFAULT) != 0);
	if (!r)
		return -ENOMEM;
	r->u.port = *iop;
	return bm_bhyve_add(b, &b->io, r, &port_ops);
}

static bool port_same(const struct bm_bhyve_reg *r, const void *desc)
{
	const struct inout_port *a = &r->u.port, *d = desc;
	return a->handler == d->handler && a->arg == d->arg;
}

int bm_bhyve_unregister_inout(bm_bhyve *b, const struct inout_port *iop)
{
	if (!b || !iop || iop->port < 0 || iop->size < 1)
		return -EINVAL;
	return bm_bhyve_remove(b, &b->io, (uint64_t)iop->port, (uint64_t)iop->size, iop->name,
	                       port_same, iop, NULL);
}

/* bhyve's answer for a port nobody registered: all ones in, writes ignored. */
static int port_unassigned(const bm_bhyve *b, int in, int bytes, uint32_t *eax)
{
	if (atomic_load_explicit(&b->strict_io, memory_order_relaxed))
		return -1;
	if (in)
		*eax = bytes_mask(bytes);
	return 0;
}

/* One port access: what bm_bhyve_inout is, past its argument checks. */
struct port_access {
	bm_bhyve *b;
	bm_vcpu *v;
	struct vmctx *ctx;
	struct vcpu *vcpu;
	int in, port, bytes;
	uint32_t *eax;
};

static int port_settle(const struct port_access *a, int ret, unsigned again);

/* Fills in the access and asks the core for its first port. */
static int port_probe(const struct port_access *a)
{
	struct bm_bhyve_call *call = &bm_bhyve_self.call;
	uint64_t first_byte;
	int ret;
	call->size = a->bytes;
	call->dir = a->in;
	call->served = false;
	call->busy = true;
	call->vcpu = a->vcpu;
	call->ctx = a->ctx;
	call->val = a->eax;
	call->addr = (uint64_t)a->port;
	if (a->in)
		ret = bm_read(a->v, a->b->io.space, (uint64_t)a->port, 1, &first_byte);
	else
		ret = bm_write(a->v, a->b->io.space, (uint64_t)a->port, 1, 0);
	call->busy = false;
	return ret;
}

static int port_whole(const struct port_access *a, uint64_t last, unsigned again);

/* The access from the start: the host's regions first, then the probe. */
static int port_dispatch(const struct port_access *a, unsigned again)
{
	uint64_t last;
	if (bm_bhyve_foreign_any(&a->b->io.foreign) &&
	    bm_bhyve_foreign_at(&a->b->io.foreign, (uint64_t)a->port, &last))
		return port_whole(a, last, again);
	int ret = port_probe(a);
	if (ret == 0 && bm_bhyve_self.call.served)
		return 0;
	return port_settle(a, ret, again);
}

/* The access whole, through the core, to a region the host placed with the core API, known
 * to show up to port last; unassigned ports within that mean it has gone since, and the
 * access is made again from the start, up to again more times (as mem_whole, bhyve_mem.c). */
static int port_whole(const struct port_access *a, uint64_t last, unsigned again)
{
	bm_vcpu *raw = bm_bhyve_raw_vcpu(a->b);
	uint64_t value = 0;
	if (!raw)
		return -1;
	uint64_t port = (uint64_t)a->port;
	bm_access_result ret =
	    a->in ? bm_read(raw, a->b->io.space, port, (unsigned)a->bytes, &value)
	          : bm_write(raw, a->b->io.space, port, (unsigned)a->bytes, *a->eax);
	if (bm_failed(ret))
		return -1;
	if ((ret & BM_ACCESS_UNASSIGNED) && again && (uint64_t)a->bytes - 1 <= last - port) {
		bm_bhyve_catch_up(a->b);
		return port_dispatch(a, again - 1);
	}
	if (a->in)
		*a->eax = (uint32_t)value & bytes_mask(a->bytes);
	return 0;
}

static int port_settle(const struct port_access *a, int ret, unsigned again)
{
	if (bm_bhyve_self.call.served) {
		if (ret >= 0)
			return 0; /* an overlap, served by the winner */
		int result = bm_bhyve_failure_taken();
		return result ? result : -1;
	}
	if (ret > 0 && (ret & BM_ACCESS_UNASSIGNED))
		return port_unassigned(a->b, a->in, a->bytes, a->eax);
	/* A region that is not a registration, placed while this access ran. */
	return port_whole(a, UINT64_MAX, again);
}

static int port_start(void *arg)
{
	struct port_access *a = arg;
	a->v = bm_bhyve_vcpu_for(a->b, a->vcpu);
	if (!a->v)
		return -1;
	return port_dispatch(a, BM_BHYVE_AGAIN);
}

int bm_bhyve_inout(bm_bhyve *b, struct vmctx *ctx, struct vcpu *vcpu, int in, int port, int bytes,
                   uint32_t *eax)
{
	if (!b || !eax || port < 0 || port >= PORT_LIMIT ||
	    (bytes != 1 && bytes != 2 && bytes != 4))
		return -1;
	struct port_access a = {b, NULL, ctx, vcpu, in != 0, port, bytes, eax};
	if (bm_bhyve_self.call.busy)
		return bm_bhyve_nested(port_start, &a);
	return port_start(&a);
}

/* What the decoder's port callback needs. */
struct inout_exit {
	bm_bhyve *b;
	struct vmctx *ctx;
	struct vcpu *vcpu;
};

static int decoded_port(void *arg, int in, int port, int bytes, uint32_t *eax)
{
	struct inout_exit *x = arg;
	return bm_bhyve_inout(x->b, x->ctx, x->vcpu, in, port, bytes, eax);
}

int bm_bhyve_emulate_inout(bm_bhyve *b, struct vmctx *ctx, struct vcpu *vcpu,
                           struct vm_exit *vmexit)
{
	if (!b)
		return -1;
	bm_bhyve_inout_decoder_fn decode =
	    atomic_load_explicit(&b->decode_inout, memory_order_acquire);
	if (!decode)
		return -1;
	struct inout_exit x = {b, ctx, vcpu};
	return decode(ctx, vcpu, vmexit, decoded_port, &x);
}
