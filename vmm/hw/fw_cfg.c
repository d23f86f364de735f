/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU's firmware configuration device, I/O-port interface without DMA: a 16-bit selector
 * at base, a byte-wide data port at base + 1, and the items and files SeaBIOS reads.
 */
#include "devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Selector keys (QEMU's docs/specs/fw_cfg.rst). */
enum {
	KEY_SIGNATURE = 0x0000,
	KEY_ID = 0x0001,
	KEY_UUID = 0x0002,
	KEY_RAM_SIZE = 0x0003,
	KEY_NOGRAPHIC = 0x0004,
	KEY_NB_CPUS = 0x0005,
	KEY_NUMA = 0x000d,
	KEY_BOOT_MENU = 0x000e,
	KEY_MAX_CPUS = 0x000f,
	KEY_FILE_DIR = 0x0019,
	KEY_FILE_FIRST = 0x0020,
	KEY_ARCH_LOCAL = 0x8000,
	KEY_IRQ0_OVERRIDE = 0x0002, /* arch-local */
};
#define KEY_WRITE_CHANNEL 0x4000 /* ignored when selecting, as QEMU does */
#define KEY_INDEX_MASK    0x3fff

#define N_GENERIC KEY_FILE_FIRST
#define N_ARCH    4

#define MAX_FILES      64
#define FILE_NAME_SIZE 56
#define DIR_ENTRY_SIZE (4 + 2 + 2 + FILE_NAME_SIZE)

#define MAX_E820        16
#define E820_ENTRY_SIZE 20
#define E820_RAM        1
#define E820_RESERVED   2

#define ID_TRADITIONAL 0x1 /* no DMA interface */

struct blob {
	uint8_t *data;
	uint32_t len;
};

struct fw_file {
	char name[FILE_NAME_SIZE];
	struct blob blob;
};

struct e820 {
	uint64_t addr, len;
	uint32_t type;
};

struct fw_cfg {
	struct vm *vm;
	bm_region *region;
	pthread_mutex_t lock;

	uint16_t key; /* as selected; looked up on every read, so it never dangles */
	uint32_t offset;

	struct blob generic[N_GENERIC];
	struct blob arch[N_ARCH];
	struct fw_file files[MAX_FILES]; /* sorted by name; selector KEY_FILE_FIRST + index */
	unsigned nfiles;

	struct e820 e820[MAX_E820];
	unsigned ne820;
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static int blob_set(struct blob *b, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EINVAL;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	free(b->data);
	b->data = copy;
	b->len = (uint32_t)len;
	return 0;
}

static int blob_le(struct blob *b, uint64_t v, unsigned n)
{
	uint8_t buf[8];
	put_le(buf, v, n);
	return blob_set(b, buf, n);
}

static const struct blob *lookup(const struct fw_cfg *fc, uint16_t key)
{
	unsigned i = key & KEY_INDEX_MASK;
	if (key & KEY_ARCH_LOCAL)
		return i < N_ARCH ? &fc->arch[i] : NULL;
	if (i < N_GENERIC)
		return &fc->generic[i];
	return i - KEY_FILE_FIRST < fc->nfiles ? &fc->files[i - KEY_FILE_FIRST].blob : NULL;
}

static int fw_cfg_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)offset; /* a byte read at either port reads data, as on QEMU */
	struct fw_cfg *fc = opaque;
	*value = 0;
	if (size != 1)
		return 0; /* QEMU refuses wider reads of the port pair: they give 0 */
	pthread_mutex_lock(&fc->lock);
	const struct blob *b = lookup(fc, fc->key);
	if (b && b->data && fc->offset < b->len)
		*value = b->data[fc->offset++];
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

static int fw_cfg_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	struct fw_cfg *fc = opaque;
	/* Only a 16-bit write selects; byte writes went to the data port, whose writes
	 * QEMU has ignored since 2.4. */
	if (size != 2 || offset != 0)
		return 0;
	pthread_mutex_lock(&fc->lock);
	fc->key = (uint16_t)value;
	fc->offset = 0;
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

static const struct bm_region_ops fw_cfg_ops = {
    .read = fw_cfg_read,
    .write = fw_cfg_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4,
};

/* The directory: a big-endian count, then {size, selector, reserved, name} per file. */
static int rebuild_dir(struct fw_cfg *fc)
{
	size_t len = 4 + (size_t)fc->nfiles * DIR_ENTRY_SIZE;
	uint8_t *dir = calloc(1, len);
	if (!dir)
		return -ENOMEM;
	put_be(dir, fc->nfiles, 4);
	for (unsigned i = 0; i < fc->nfiles; i++) {
		uint8_t *e = dir + 4 + (size_t)i * DIR_ENTRY_SIZE;
		put_be(e, fc->files[i].blob.len, 4);
		put_be(e + 4, KEY_FILE_FIRST + i, 2);
		memcpy(e + 8, fc->files[i].name, FILE_NAME_SIZE);
	}
	struct blob *b = &fc->generic[KEY_FILE_DIR];
	free(b->data);
	b->data = dir;
	b->len = (uint32_t)len;
	return 0;
}

static struct fw_file *find_file(struct fw_cfg *fc, const char *name)
{
	for (unsigned i = 0; i < fc->nfiles; i++)
		if (!strcmp(fc->files[i].name, name))
			return &fc->files[i];
	return NULL;
}

static int add_file_locked(struct fw_cfg *fc, const char *name, const void *data, size_t len)
{
	size_t nlen = strnlen(name, FILE_NAME_SIZE);
	if (nlen == 0 || nlen == FILE_NAME_SIZE || (len && !data) || len > UINT32_MAX)
		return -EINVAL;
	if (find_file(fc, name))
		return -EEXIST;
	if (fc->nfiles == MAX_FILES)
		return -ENOSPC;
	struct blob b = {0};
	int err = blob_set(&b, data, len);
	if (err)
		return err;
	/* Sorted by name, as QEMU's machines since 2.x do; later selectors shift. */
	unsigned at = fc->nfiles;
	while (at > 0 && strcmp(name, fc->files[at - 1].name) < 0)
		at--;
	memmove(&fc->files[at + 1], &fc->files[at], (fc->nfiles - at) * sizeof(fc->files[0]));
	memset(&fc->files[at], 0, sizeof(fc->files[at]));
	memcpy(fc->files[at].name, name, nlen);
	fc->files[at].blob = b;
	fc->nfiles++;
	err = rebuild_dir(fc);
	if (err) {
		free(b.data);
		fc->nfiles--;
		memmove(&fc->files[at], &fc->files[at + 1],
		        (fc->nfiles - at) * sizeof(fc->files[0]));
	}
	return err;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len)
{
	if (!fc || !name)
		return -EINVAL;
	pthread_mutex_lock(&fc->lock);
	int err = add_file_locked(fc, name, data, len);
	pthread_mutex_unlock(&fc->lock);
	return err;
}

/* "etc/e820" holds every entry, RAM included, in address order. (QEMU's older arch-local
 * table of reservations reads as empty on its current machines, and here.) */
static int rebuild_e820(struct fw_cfg *fc)
{
	uint8_t file[MAX_E820 * E820_ENTRY_SIZE];
	for (unsigned i = 0; i < fc->ne820; i++) {
		const struct e820 *e = &fc->e820[i];
		uint8_t *p = file + i * E820_ENTRY_SIZE;
		put_le(p, e->addr, 8);
		put_le(p + 8, e->len, 8);
		put_le(p + 16, e->type, 4);
	}
	struct fw_file *f = find_file(fc, "etc/e820");
	if (!f)
		return add_file_locked(fc, "etc/e820", file, fc->ne820 * E820_ENTRY_SIZE);
	int err = blob_set(&f->blob, file, fc->ne820 * E820_ENTRY_SIZE);
	return err ? err : rebuild_dir(fc);
}

static int add_e820_locked(struct fw_cfg *fc, uint64_t addr, uint64_t len, uint32_t type)
{
	if (len == 0 || addr + len - 1 < addr)
		return -EINVAL;
	for (unsigned i = 0; i < fc->ne820; i++) {
		const struct e820 *e = &fc->e820[i];
		if (addr <= e->addr + e->len - 1 && e->addr <= addr + len - 1)
			return -EEXIST;
	}
	if (fc->ne820 == MAX_E820)
		return -ENOSPC;
	unsigned at = fc->ne820;
	while (at > 0 && fc->e820[at - 1].addr > addr)
		at--;
	memmove(&fc->e820[at + 1], &fc->e820[at], (fc->ne820 - at) * sizeof(fc->e820[0]));
	fc->e820[at] = (struct e820){addr, len, type};
	fc->ne820++;
	int err = rebuild_e820(fc);
	if (err) {
		fc->ne820--;
		memmove(&fc->e820[at], &fc->e820[at + 1], (fc->ne820 - at) * sizeof(fc->e820[0]));
	}
	return err;
}

int fw_cfg_add_e820(struct fw_cfg *fc, uint64_t addr, uint64_t len, uint32_t type)
{
	if (!fc)
		return -EINVAL;
	pthread_mutex_lock(&fc->lock);
	int err = add_e820_locked(fc, addr, len, type);
	pthread_mutex_unlock(&fc->lock);
	return err;
}

static int fill(struct fw_cfg *fc)
{
	const struct vm *vm = fc->vm;
	uint8_t zeros[16] = {0};
	int err = blob_set(&fc->generic[KEY_SIGNATURE], "QEMU", 4);
	if (!err)
		err = blob_le(&fc->generic[KEY_ID], ID_TRADITIONAL, 4);
	if (!err)
		err = blob_set(&fc->generic[KEY_UUID], zeros, 16);
	if (!err)
		err = blob_le(&fc->generic[KEY_RAM_SIZE], vm->ram_size, 8);
	/* No display: SeaBIOS then puts its text console on the first serial port. */
	if (!err)
		err = blob_le(&fc->generic[KEY_NOGRAPHIC], 1, 2);
	if (!err)
		err = blob_le(&fc->generic[KEY_NB_CPUS], vm->ncpus, 2);
	/* APIC IDs are 0 .. ncpus - 1, so their limit is the CPU count. */
	if (!err)
		err = blob_le(&fc->generic[KEY_MAX_CPUS], vm->ncpus, 2);
	/* Without a menu SeaBIOS boots at once instead of waiting for a key. */
	if (!err)
		err = blob_le(&fc->generic[KEY_BOOT_MENU], 0, 2);
	/* No NUMA nodes: a zero node count, then one zero word per APIC ID. */
	if (!err) {
		size_t n = 8 * (1 + (size_t)vm->ncpus);
		uint8_t *numa = calloc(1, n);
		err = numa ? blob_set(&fc->generic[KEY_NUMA], numa, n) : -ENOMEM;
		free(numa);
	}
	/* The in-kernel irqchip routes the PIT to GSI 2, as KVM lets QEMU declare. */
	if (!err)
		err = blob_le(&fc->arch[KEY_IRQ0_OVERRIDE], 1, 4);
	/* QEMU's default reboot timeout: never reboot after a failed boot. */
	if (!err) {
		uint8_t wait[4];
		put_le(wait, UINT32_MAX, 4);
		err = add_file_locked(fc, "etc/boot-fail-wait", wait, 4);
	}
	if (!err)
		err = rebuild_dir(fc);
	/* RAM as the machine lays it out, the ECAM window reserved so that an OS that finds
	 * it in ACPI trusts it, and KVM's pages. */
	if (!err)
		err = add_e820_locked(fc, 0, vm->below_4g, E820_RAM);
	if (!err)
		err = add_e820_locked(fc, VM_ECAM_BASE, VM_ECAM_SIZE, E820_RESERVED);
	if (!err)
		err = add_e820_locked(fc, VM_KVM_PAGES, VM_KVM_PAGES_SIZE, E820_RESERVED);
	if (!err && vm->ram_size > vm->below_4g)
		err = add_e820_locked(fc, VM_HIGH_RAM_BASE, vm->ram_size - vm->below_4g, E820_RAM);
	return err;
}

static void release(struct fw_cfg *fc)
{
	for (unsigned i = 0; i < N_GENERIC; i++)
		free(fc->generic[i].data);
	for (unsigned i = 0; i < N_ARCH; i++)
		free(fc->arch[i].data);
	for (unsigned i = 0; i < fc->nfiles; i++)
		free(fc->files[i].blob.data);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

int fw_cfg_new(struct vm *vm, uint16_t base, struct fw_cfg **out)
{
	if (!vm || !out || base > 0x10000 - 2)
		return -EINVAL;
	struct fw_cfg *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -ENOMEM;
	fc->vm = vm;
	pthread_mutex_init(&fc->lock, NULL);
	int err = fill(fc);
	if (!err)
		err = vm_add_io_region(vm, vm->io, "fwcfg", base, 2, &fw_cfg_ops, fc, &fc->region);
	if (err) {
		release(fc);
		return err;
	}
	*out = fc;
	return 0;
}

void fw_cfg_free(void *dev)
{
	struct fw_cfg *fc = dev;
	if (!fc)
		return;
	bm_region_destroy(fc->region);
	bm_synchronize(fc->vm->sys);
	release(fc);
}
