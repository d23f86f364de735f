/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared helpers of the bhyve compatibility tests: the host's struct vcpu and vcpu_id, and
 * devices that record what reached their handlers. Include once per test program. */
#ifndef BUSMAP_TESTS_BHYVE_TESTUTIL_H
#define BUSMAP_TESTS_BHYVE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include <busmap/compat/bhyve.h>
#include <errno.h>

/* The host program's vCPU, as libvmmapi would define it. */
struct vcpu {
	int id;
};

int vcpu_id(struct vcpu *vcpu)
{
	return vcpu->id;
}

/* What a device's handler saw last, and how often. */
struct dev {
	const char *name;
	unsigned calls;
	struct vcpu *vcpu;
	struct vmctx *ctx;
	int dir;
	uint64_t addr;
	int size;
	uint64_t val;
	void *arg1;
	long arg2;
	int result; /* what the handler returns */
};

/* A read returns the first letter of the device's name above the address, so a test can
 * tell which device and which address served it. */
static inline uint64_t dev_value(const struct dev *d, uint64_t addr)
{
	return ((uint64_t)(unsigned char)d->name[0] << 56) | (addr & 0x00ffffffffffffffull);
}

static inline uint32_t dev_port_value(const struct dev *d, int port)
{
	return ((uint32_t)(unsigned char)d->name[0] << 24) | (uint32_t)port;
}

static inline int dev_mem_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size,
                                  uint64_t *val, void *arg1, long arg2)
{
	struct dev *d = arg1;
	d->calls++;
	d->vcpu = vcpu;
	d->dir = dir;
	d->addr = addr;
	d->size = size;
	d->arg1 = arg1;
	d->arg2 = arg2;
	if (dir == MEM_F_READ)
		*val = dev_value(d, addr);
	else
		d->val = *val;
	return d->result;
}

static inline int dev_port_handler(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
                                   void *arg)
{
	struct dev *d = arg;
	d->calls++;
	d->ctx = ctx;
	d->dir = in;
	d->addr = (uint64_t)port;
	d->size = bytes;
	if (in)
		*eax = dev_port_value(d, port);
	else
		d->val = *eax;
	return d->result;
}

static inline struct mem_range dev_range(struct dev *d, uint64_t base, uint64_t size)
{
	struct mem_range mr = {.name = d->name,
	                       .flags = MEM_F_RW,
	                       .handler = dev_mem_handler,
	                       .arg1 = d,
	                       .arg2 = 7,
	                       .base = base,
	                       .size = size};
	return mr;
}

/* An explicit instance, and what a test's accesses pass: its vCPU and an opaque ctx. */
struct fixture {
	bm_bhyve *b;
	struct vcpu vcpu;
	struct vmctx *ctx;
};

/* A fixture whose instance numbers contexts with index, and whose vCPU is vcpu_id. */
static inline int fixture_new(void **state, int (*index)(struct vcpu *vcpu), int vcpu_id)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || bm_bhyve_new(index, &f->b))
		return -1;
	f->vcpu.id = vcpu_id;
	f->ctx = (struct vmctx *)f; /* opaque to the layer */
	*state = f;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	int err = bm_bhyve_free(f->b);
	free(f);
	return err;
}

static inline int rd(struct fixture *f, uint64_t gpa, int size, uint64_t *v)
{
	return bm_bhyve_read_mem(f->b, &f->vcpu, gpa, v, size);
}

static inline int wr(struct fixture *f, uint64_t gpa, int size, uint64_t v)
{
	return bm_bhyve_write_mem(f->b, &f->vcpu, gpa, v, size);
}

static inline struct inout_port dev_ports(struct dev *d, int port, int size, int flags)
{
	struct inout_port iop = {.name = d->name,
	                         .port = port,
	                         .size = size,
	                         .flags = flags,
	                         .handler = dev_port_handler,
	                         .arg = d};
	return iop;
}

#endif
