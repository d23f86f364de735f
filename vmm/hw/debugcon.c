/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU's isa-debugcon: bytes written to one port go to a file descriptor (SeaBIOS logs to
 * 0x402 this way); reading the port gives 0xe9, by which firmware detects it.
 */
#include "devices.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEBUGCON_READBACK 0xe9

struct debugcon {
	struct vm *vm;
	bm_region *region;
	int out_fd;
	pthread_mutex_t lock; /* keeps bytes from several vCPUs whole and in order */
	bool write_failed;
};

static int debugcon_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                         uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = DEBUGCON_READBACK;
	return 0;
}

static int debugcon_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                          uint64_t value)
{
	(void)vcpu;
	(void)offset;
	(void)size;
	struct debugcon *d = opaque;
	pthread_mutex_lock(&d->lock);
	int err = vmm_put_byte(d->out_fd, (uint8_t)value);
	if (err && !d->write_failed) {
		d->write_failed = true;
		vm_log(d->vm, "debug console output failed (%s); dropping what cannot be written",
		       strerror(-err));
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static const struct bm_region_ops debugcon_ops = {
    .read = debugcon_read,
    .write = debugcon_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1, /* a wider access writes its low byte here, the rest beyond */
};

int debugcon_new(struct vm *vm, uint16_t base, int out_fd, struct debugcon **out)
{
	if (!vm || !out || out_fd < -1)
		return -EINVAL;
	struct debugcon *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	d->out_fd = out_fd;
	pthread_mutex_init(&d->lock, NULL);
	int err =
	    vm_add_io_region(vm, vm->io, "isa-debugcon", base, 1, &debugcon_ops, d, &d->region);
	if (err) {
		pthread_mutex_destroy(&d->lock);
		free(d);
		return err;
	}
	*out = d;
	return 0;
}

void debugcon_free(void *dev)
{
	struct debugcon *d = dev;
	if (!d)
		return;
	bm_region_destroy(d->region);
	bm_synchronize(d->vm->sys);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
