/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU's isa-debug-exit: a guest write ends the run with status (value << 1) | 1, the
 * way test guests report their result.
 */
#include "devices.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

struct debug_exit {
	struct vm *vm;
	bm_region *region;
};

static int debug_exit_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                           uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = 0; /* what QEMU's port reads */
	return 0;
}

static int debug_exit_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                            uint64_t value)
{
	(void)vcpu;
	(void)offset;
	(void)size;
	struct debug_exit *d = opaque;
	/* QEMU hands (value << 1) | 1 to exit(), so its process status is the low 8 bits
	 * of that; ours is the same number. The first stop request wins. */
	int status = (int)(((value << 1) | 1) & 0xff);
	vm_request_stop(d->vm, status, "guest wrote 0x%" PRIx64 " to isa-debug-exit", value);
	return 0;
}

static const struct bm_region_ops debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4, /* QEMU's widest is 4 bytes */
};

int debug_exit_new(struct vm *vm, uint16_t base, unsigned size, struct debug_exit **out)
{
	if (!vm || !out || size == 0 || size > 0x10000u - base)
		return -EINVAL;
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	int err = vm_add_io_region(vm, vm->io, "isa-debug-exit", base, size, &debug_exit_ops, d,
	                           &d->region);
	if (err) {
		free(d);
		return err;
	}
	*out = d;
	return 0;
}

void debug_exit_free(void *dev)
{
	struct debug_exit *d = dev;
	if (!d)
		return;
	bm_region_destroy(d->region);
	bm_synchronize(d->vm->sys);
	free(d);
}
