/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Read-only memory: the BIOS image, and the read-only views of RAM the PAM registers select.
 * Reads come from host memory, writes are dropped, as a ROM on the bus does; the memslot
 * listener maps the same host memory read-only, so only writes exit to the VMM.
 */
#include "devices.h"
#include "memslots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rom {
	struct vm *vm;
	bm_region *region;
	uint8_t *data;
	uint64_t size;
	bool owned; /* data is our copy (the BIOS), not a view of RAM */
};

static int rom_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	struct rom *rom = opaque;
	uint64_t v = 0;
	memcpy(&v, rom->data + off, size); /* busmap keeps off + size inside the region */
	*value = v;
	return 0;
}

static const struct bm_region_ops rom_ops = {
    .read = rom_read, .write = NULL, /* dropped */
};

static int rom_make(struct vm *vm, const char *name, uint8_t *data, uint64_t size, bool owned,
                    struct rom **out)
{
	struct rom *rom = calloc(1, sizeof(*rom));
	if (!rom)
		return -ENOMEM;
	*rom = (struct rom){.vm = vm, .data = data, .size = size, .owned = owned};
	int err = bm_region_new_io(vm->sys, name, size, &rom_ops, rom, &rom->region);
	if (!err && vm->slots)
		err = memslots_add_backing(vm->slots, rom->region, data, true);
	if (err) {
		bm_region_destroy(rom->region);
		free(rom);
		return err;
	}
	*out = rom;
	return 0;
}

int rom_new(struct vm *vm, const char *name, const void *data, uint64_t size, struct rom **out)
{
	if (!vm || !data || size == 0 || !out)
		return -EINVAL;
	/* Page-aligned, so that the listener can map it into the guest. */
	uint8_t *copy =
	    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		return -errno;
	memcpy(copy, data, size);
	int err = rom_make(vm, name, copy, size, true, out);
	if (err)
		munmap(copy, size);
	return err;
}

int rom_new_view(struct vm *vm, const char *name, void *host, uint64_t size, struct rom **out)
{
	if (!vm || !host || size == 0 || !out)
		return -EINVAL;
	return rom_make(vm, name, host, size, false, out);
}

bm_region *rom_region(const struct rom *rom)
{
	return rom->region;
}

void rom_free(void *p)
{
	struct rom *rom = p;
	if (!rom)
		return;
	/* A region made later at the same address must not inherit this memory. */
	if (rom->vm->slots)
		memslots_remove_backing(rom->vm->slots, rom->region);
	bm_region_destroy(rom->region);
	/* The region may still be in a view a dispatch holds: its data must outlive it. */
	bm_synchronize(rom->vm->sys);
	if (rom->owned)
		munmap(rom->data, rom->size);
	free(rom);
}
