/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The i440FX host bridge (00:00.0, 8086:1237): the BIOS at the top of 4 GiB, and the PAM
 * and SMRAM registers that decide what the CPU sees below 1 MiB.
 *
 * Each of the 13 PAM segments (0xc0000-0xeffff in 16 KiB pieces, 0xf0000-0xfffff whole)
 * has three alternatives over RAM, exactly one enabled, as in QEMU's pc: "pam-pci" (an
 * alias of the PCI space, where pc.rom and the BIOS's isa-bios alias show), "pam-rom" (RAM read
 * only) and "pam-ram" (RAM). QEMU maps write-only segments like disabled ones, and so do
 * we. Everything is a region change: no copy of the BIOS is ever made into RAM by us.
 */
#include "devices.h"
#include "memslots.h"

#include <busmap/pci_regs.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAM_REG      0x59
#define PAM_REGS     7
#define PAM_SEGS     13
#define SMRAM_REG    0x72
#define SMRAM_OPEN   0x40
#define SMRAM_RESET  0x02
#define ISA_BIOS_MAX 0x20000u

enum pam_mode { PAM_PCI, PAM_ROM, PAM_RAM, PAM_MODES };

struct pam_seg {
	bm_region *alt[PAM_MODES];
	struct rom *rom;
	enum pam_mode cur;
};

struct i440fx {
	struct vm *vm;
	bm_pci_func *func;
	struct rom *bios;
	struct rom *option_roms; /* "pc.rom": where option ROMs would be, empty */
	bm_region *isa_bios;
	bm_region *smram;
	struct pam_seg seg[PAM_SEGS];
};

static uint64_t seg_base(unsigned i)
{
	return i < 12 ? 0xc0000 + i * 0x4000ull : 0xf0000;
}

static uint64_t seg_size(unsigned i)
{
	return i < 12 ? 0x4000 : 0x10000;
}

/* Segment i's two attribute bits: PAM0's high nibble for 0xf0000, then low and high nibbles
 * of PAM1..PAM6 for the 16 KiB pieces upwards. */
static enum pam_mode seg_mode(bm_pci_func *f, unsigned i)
{
	unsigned reg = i < 12 ? PAM_REG + 1 + i / 2 : PAM_REG;
	unsigned shift = (i < 12 && i % 2 == 0) ? 0 : 4;
	unsigned attr = (bm_pci_func_cfg_get(f, reg, 1) >> shift) & 3;
	static const enum pam_mode modes[4] = {PAM_PCI, PAM_ROM, PAM_PCI, PAM_RAM};
	return modes[attr];
}

/* Runs from the configuration-write hook, inside the write's transaction. */
static void update_map(struct i440fx *d)
{
	for (unsigned i = 0; i < PAM_SEGS; i++) {
		struct pam_seg *s = &d->seg[i];
		enum pam_mode m = seg_mode(d->func, i);
		if (m == s->cur)
			continue;
		bm_region_set_enabled(s->alt[s->cur], false);
		bm_region_set_enabled(s->alt[m], true);
		s->cur = m;
	}
	bool open = bm_pci_func_cfg_get(d->func, SMRAM_REG, 1) & SMRAM_OPEN;
	bm_region_set_enabled(d->smram, !open);
}

static void cfg_write(void *opaque, bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	(void)f;
	(void)value;
	if ((reg < PAM_REG + PAM_REGS && reg + size > PAM_REG) ||
	    (reg <= SMRAM_REG && reg + size > SMRAM_REG))
		update_map(opaque);
}

static const struct bm_pci_func_ops i440fx_ops = {.cfg_write = cfg_write};

static int add_region(bm_region *parent, bm_region *r, uint64_t at, int prio, bool enabled)
{
	int err = bm_region_set_enabled(r, enabled);
	return err ? err : bm_region_add(parent, r, at, prio);
}

static int make_pam(struct i440fx *d)
{
	struct vm *vm = d->vm;
	bm_region *root = bm_space_root(vm->mem);
	bm_region *pci = bm_pci_host_mem_region(vm->pci);
	for (unsigned i = 0; i < PAM_SEGS; i++) {
		struct pam_seg *s = &d->seg[i];
		uint64_t base = seg_base(i), size = seg_size(i);
		int err =
		    bm_region_new_alias(vm->sys, "pam-pci", pci, base, size, &s->alt[PAM_PCI]);
		if (!err)
			err = rom_new_view(vm, "pam-rom", vm->ram + base, size, &s->rom);
		if (!err) {
			s->alt[PAM_ROM] = rom_region(s->rom);
			err = bm_region_new_alias(vm->sys, "pam-ram", vm->ram_region, base, size,
			                          &s->alt[PAM_RAM]);
		}
		for (unsigned m = 0; !err && m < PAM_MODES; m++)
			err = add_region(root, s->alt[m], base, VM_PRIO_PAM, m == PAM_PCI);
		if (err)
			return err;
		s->cur = PAM_PCI;
	}
	return 0;
}

static int make_bios(struct i440fx *d, const void *bios, uint64_t size)
{
	struct vm *vm = d->vm;
	bm_region *pci = bm_pci_host_mem_region(vm->pci);
	uint64_t isa = size < ISA_BIOS_MAX ? size : ISA_BIOS_MAX;
	int err = rom_new(vm, "pc.bios", bios, size, &d->bios);
	if (!err)
		err = bm_region_add(pci, rom_region(d->bios), 0x100000000ull - size, 0);
	if (!err)
		err = bm_region_new_alias(vm->sys, "isa-bios", rom_region(d->bios), size - isa, isa,
		                          &d->isa_bios);
	if (!err)
		err = bm_region_add(pci, d->isa_bios, 0x100000 - isa, 1);
	/* QEMU's pc.rom: 128 KiB for option ROMs at 0xc0000; we load none, so it reads zero. */
	static const uint8_t zeros[0x20000];
	if (!err)
		err = rom_new(vm, "pc.rom", zeros, sizeof(zeros), &d->option_roms);
	if (!err)
		err = bm_region_add(pci, rom_region(d->option_roms), 0xc0000, 1);
	/* Closed SMRAM shows the PCI space (legacy VGA) over RAM at 0xa0000. */
	if (!err)
		err =
		    bm_region_new_alias(vm->sys, "smram-region", pci, 0xa0000, 0x20000, &d->smram);
	if (!err)
		err = bm_region_add(bm_space_root(vm->mem), d->smram, 0xa0000, VM_PRIO_SMRAM);
	return err;
}

static int make_func(struct i440fx *d)
{
	struct bm_pci_func_desc desc = {
	    .vendor_id = 0x8086,
	    .device_id = 0x1237,
	    .class_code = PCI_CLASS_CODE_HOST_BRIDGE,
	    .revision = 0x02,
	    /* QEMU gives every device its subsystem; SeaBIOS recognises QEMU by it. */
	    .subsystem_vendor_id = 0x1af4,
	    .subsystem_id = 0x1100,
	    .ops = &i440fx_ops,
	    .opaque = d,
	};
	int err = bm_pci_func_new(bm_pci_host_root_bus(d->vm->pci), 0, 0, &desc, &d->func);
	if (err)
		return err;
	bm_pci_func_cfg_set_masks(d->func, PAM_REG, 4, 0xffffffff, 0);
	bm_pci_func_cfg_set_masks(d->func, PAM_REG + 4, 2, 0xffff, 0);
	bm_pci_func_cfg_set_masks(d->func, PAM_REG + 6, 1, 0xff, 0);
	bm_pci_func_cfg_set(d->func, SMRAM_REG, 1, SMRAM_RESET);
	bm_pci_func_cfg_set_masks(d->func, SMRAM_REG, 1, 0x78, 0);
	return 0;
}

int i440fx_new(struct vm *vm, const void *bios, uint64_t bios_size, struct i440fx **out)
{
	if (!vm || !bios || !out || bios_size == 0 || bios_size % 0x10000 || bios_size > 0x1000000)
		return -EINVAL;
	struct i440fx *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	int err = bm_begin(vm->sys);
	if (err) {
		free(d);
		return err;
	}
	/* What the PAM registers switch stays out of the slot of the RAM above 1 MiB, which
	 * vCPUs must be able to keep running from while one of them changes PAM. */
	err = vm->slots ? memslots_split_at(vm->slots, 0x100000) : 0;
	if (!err)
		err = make_bios(d, bios, bios_size);
	if (!err)
		err = make_pam(d);
	if (!err)
		err = make_func(d);
	int cerr = bm_commit(vm->sys);
	if (err || cerr) {
		i440fx_free(d);
		return err ? err : cerr;
	}
	*out = d;
	return 0;
}

void i440fx_free(void *p)
{
	struct i440fx *d = p;
	if (!d)
		return;
	bm_pci_func_free(d->func);
	for (unsigned i = 0; i < PAM_SEGS; i++) {
		bm_region_destroy(d->seg[i].alt[PAM_PCI]);
		bm_region_destroy(d->seg[i].alt[PAM_RAM]);
		rom_free(d->seg[i].rom);
	}
	bm_region_destroy(d->smram);
	bm_region_destroy(d->isa_bios);
	rom_free(d->bios);
	rom_free(d->option_roms);
	free(d);
}
