/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU's pci-testdev (1b36:0005): a memory BAR and an I/O BAR that each start with a test
 * header; a guest starts a test by writing its number at offset 0, then counts its writes
 * at the test's offset. Reads return the current test's header and name.
 */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TESTDEV_VENDOR   0x1b36
#define TESTDEV_DEVICE   0x0005
#define TESTDEV_CLASS    0x00ff00 /* QEMU's PCI_CLASS_OTHERS in the 16-bit class field */
#define SUBSYSTEM_VENDOR 0x1af4   /* QEMU's default for every device */
#define SUBSYSTEM_ID     0x1100

#define MEM_TEST_BASE 2048 /* test offsets start here in the memory BAR */
#define IO_TEST_BASE  128  /* and here in the I/O BAR */
#define MEM_BAR_SIZE  (2 * MEM_TEST_BASE)
#define IO_BAR_SIZE   (2 * IO_TEST_BASE)

#define TESTS_PER_BAR 3 /* no-eventfd, wildcard-eventfd, datamatch-eventfd */
#define NTESTS        (2 * TESTS_PER_BAR)
#define DATA_MATCH    0xfa
#define DATA_ANY      0xce

/* Header layout: test, width, pad[2], offset (le32), data, pad[3], count (le32), name. */
#define HDR_TEST     0
#define HDR_WIDTH    1
#define HDR_OFFSET   4
#define HDR_DATA     8
#define HDR_COUNT    12
#define HDR_NAME     16
#define NAME_MAX_LEN 32

struct iotest {
	uint8_t buf[HDR_NAME + NAME_MAX_LEN];
	unsigned len; /* header, name and its terminator */
	uint32_t offset;
	bool match_data;
	uint32_t count;
};

struct pci_testdev {
	struct vm *vm;
	bm_pci_func *func;
	bm_region *mmio, *portio;
	pthread_mutex_t lock;
	int current; /* running test, or -1 */
	struct iotest tests[NTESTS];
};

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void init_tests(struct pci_testdev *d)
{
	static const char *const kind[TESTS_PER_BAR] = {"no-eventfd", "wildcard-eventfd",
	                                                "datamatch-eventfd"};
	for (unsigned i = 0; i < NTESTS; i++) {
		struct iotest *t = &d->tests[i];
		bool io = i >= TESTS_PER_BAR;
		t->offset = (io ? IO_TEST_BASE : MEM_TEST_BASE) + i;
		t->match_data = i % TESTS_PER_BAR != 1;
		t->buf[HDR_TEST] = (uint8_t)i;
		t->buf[HDR_WIDTH] = 1;
		put_le32(t->buf + HDR_OFFSET, t->offset);
		t->buf[HDR_DATA] = t->match_data ? DATA_MATCH : DATA_ANY;
		int n = snprintf((char *)t->buf + HDR_NAME, NAME_MAX_LEN, "%s-%s",
		                 io ? "portio" : "mmio", kind[i % TESTS_PER_BAR]);
		t->len = HDR_NAME + (unsigned)n + 1;
	}
	d->current = -1;
}

/* A byte written at offset of BAR bar (0: memory, 1: I/O). A test number selects among
 * that BAR's own tests, so the header read back tells which BAR took the write. */
static void testdev_write(struct pci_testdev *d, unsigned bar, uint64_t offset, uint8_t val)
{
	if (offset == HDR_TEST) {
		d->current = -1;
		if (val < TESTS_PER_BAR) {
			d->current = (int)(bar * TESTS_PER_BAR + val);
			d->tests[d->current].count = 0;
		}
		return;
	}
	if (d->current < 0)
		return;
	/* As in QEMU, a write at the running test's offset counts through either BAR. */
	struct iotest *t = &d->tests[d->current];
	if (offset != t->offset || (t->match_data && val != t->buf[HDR_DATA]))
		return;
	t->count++;
}

static uint8_t testdev_read(struct pci_testdev *d, uint64_t offset)
{
	if (d->current < 0)
		return 0;
	struct iotest *t = &d->tests[d->current];
	/* QEMU gives 0 from the terminator on, and for the whole BAR past the name. */
	if (offset + 1 >= t->len)
		return 0;
	if (offset >= HDR_COUNT && offset < HDR_COUNT + 4)
		return (uint8_t)(t->count >> (8 * (offset - HDR_COUNT)));
	return t->buf[offset];
}

static int mmio_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	struct pci_testdev *d = opaque;
	pthread_mutex_lock(&d->lock);
	*value = testdev_read(d, offset);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int mmio_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	struct pci_testdev *d = opaque;
	pthread_mutex_lock(&d->lock);
	testdev_write(d, 0, offset, (uint8_t)value);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int portio_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	struct pci_testdev *d = opaque;
	pthread_mutex_lock(&d->lock);
	testdev_write(d, 1, offset, (uint8_t)value);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* QEMU implements single bytes: wider accesses are carried out byte by byte. */
static const struct bm_region_ops mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1,
};

static const struct bm_region_ops portio_ops = {
    .read = mmio_read,
    .write = portio_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1,
};

static void release(struct pci_testdev *d)
{
	bm_region_destroy(d->mmio);
	bm_region_destroy(d->portio);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int pci_testdev_new(struct vm *vm, unsigned slot, struct pci_testdev **out)
{
	if (!vm || !out)
		return -EINVAL;
	struct pci_testdev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	pthread_mutex_init(&d->lock, NULL);
	init_tests(d);

	int err =
	    bm_region_new_io(vm->sys, "pci-testdev-mmio", MEM_BAR_SIZE, &mmio_ops, d, &d->mmio);
	if (!err)
		err = bm_region_new_io(vm->sys, "pci-testdev-portio", IO_BAR_SIZE, &portio_ops, d,
		                       &d->portio);
	if (!err) {
		struct bm_pci_func_desc desc = {
		    .vendor_id = TESTDEV_VENDOR,
		    .device_id = TESTDEV_DEVICE,
		    .class_code = TESTDEV_CLASS,
		    .subsystem_vendor_id = SUBSYSTEM_VENDOR,
		    .subsystem_id = SUBSYSTEM_ID,
		    .intx_pin = 0, /* no interrupt */
		    .bars[0] = {.type = BM_PCI_BAR_MEM32, .size = MEM_BAR_SIZE, .region = d->mmio},
		    .bars[1] = {.type = BM_PCI_BAR_IO, .size = IO_BAR_SIZE, .region = d->portio},
		};
		err = bm_pci_func_new(bm_pci_host_root_bus(vm->pci), slot, 0, &desc, &d->func);
	}
	if (err) {
		release(d);
		return err;
	}
	*out = d;
	return 0;
}

void pci_testdev_free(void *dev)
{
	struct pci_testdev *d = dev;
	if (!d)
		return;
	/* Unplugging waits for accesses in flight, so the regions are unreachable after. */
	bm_pci_func_free(d->func);
	release(d);
}
