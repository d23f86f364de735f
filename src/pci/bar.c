/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * BARs and the expansion ROM: their registers, the decode rule, and where a BAR is mapped.
 *
 * Each BAR's writable bits are ~(size - 1) above its read-only type bits, so sizing (write
 * all ones, read back) needs no special case. After a write that can change decoding, every
 * BAR is decoded again in index order, and only those whose decoded placement changed are
 * unmapped and mapped again, with one event each way, as QEMU's pci_update_mappings does.
 * A BAR that decodes is placed even over another BAR: all BARs share one priority, so the
 * newest placement wins and the one it hid shows again when it leaves.
 *
 * Inside a transaction (a guest write), the events of a saved function wait for the
 * transaction's success (txn.c), which tells the observer what changed; a failure that
 * rolls the placements back then tells nothing.
 */
#include "pci_internal.h"
#include <stdio.h>

/* Same priority for every BAR and bridge window, one above the bus containers' contents,
 * as QEMU places them. */
#define BAR_PRIORITY 1

static const struct bm_region_ops empty_ops = {.read = NULL, .write = NULL};

unsigned pci_bar_reg(const bm_pci_func *f, unsigned index)
{
	if (index == BM_PCI_ROM)
		return f->type1 ? PCI_ROM_ADDRESS1 : PCI_ROM_ADDRESS;
	return PCI_BASE_ADDRESS_0 + 4 * index;
}

bool pci_bar_write_touches(const bm_pci_func *f, unsigned reg, unsigned size)
{
	unsigned nbars = f->type1 ? 2 : BM_PCI_NUM_BARS;
	return pci_touches(reg, size, PCI_BASE_ADDRESS_0, 4 * nbars) ||
	       pci_touches(reg, size, pci_bar_reg(f, BM_PCI_ROM), 4);
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int check_bar(const struct bm_pci_bar_desc *b, unsigned i, unsigned nbars,
                     const struct bm_pci_bar_desc *all)
{
	switch (b->type) {
	case BM_PCI_BAR_NONE:
		return 0;
	case BM_PCI_BAR_IO:
		if (b->size < 4 || b->size > (1ull << 31) || b->prefetchable)
			return -EINVAL;
		break;
	case BM_PCI_BAR_MEM32:
		if (b->size < 16 || b->size > (1ull << 31))
			return -EINVAL;
		break;
	case BM_PCI_BAR_MEM64:
		if (b->size < 16 || b->size > (1ull << 63) || i + 1 >= nbars ||
		    all[i + 1].type != BM_PCI_BAR_NONE)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (!is_pow2(b->size) || (b->region && b->ops))
		return -EINVAL;
	if (b->region && bm_region_parent(b->region))
		return -EEXIST;
	return 0;
}

static int check_rom(const struct bm_pci_bar_desc *rom)
{
	if (!rom->size)
		return 0;
	if (!is_pow2(rom->size) || rom->size < 2048 || rom->size > (1ull << 31) ||
	    (rom->region && rom->ops))
		return -EINVAL;
	if (rom->region && bm_region_parent(rom->region))
		return -EEXIST;
	return 0;
}

int pci_bars_check(const struct bm_pci_func_desc *d)
{
	unsigned nbars = d->header == BM_PCI_HEADER_BRIDGE ? 2 : BM_PCI_NUM_BARS;
	for (unsigned i = 0; i < BM_PCI_NUM_BARS; i++) {
		if (i >= nbars && d->bars[i].type != BM_PCI_BAR_NONE)
			return -EINVAL;
		int err = check_bar(&d->bars[i], i, nbars, d->bars);
		if (err)
			return err;
	}
	return check_rom(&d->rom);
}

/* Read-only type bits and writable address bits of each register the BAR uses. */
static void init_registers(bm_pci_func *f, unsigned i)
{
	const struct pci_bar *b = &f->bars[i];
	unsigned reg = pci_bar_reg(f, i);
	uint64_t addr_mask = ~(b->size - 1);
	if (i == BM_PCI_ROM) {
		pci_cfg_set_wmask(f, reg, 4, ((uint32_t)addr_mask & PCI_ROM_ADDRESS_MASK) | 1);
		return;
	}
	uint32_t type_bits = 0, low_ro = 0xf;
	if (b->type == BM_PCI_BAR_IO) {
		type_bits = PCI_BASE_ADDRESS_SPACE_IO;
		low_ro = 0x3;
	} else {
		type_bits = (b->type == BM_PCI_BAR_MEM64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
		            (b->prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
	}
	pci_cfg_set(f, reg, 4, type_bits);
	pci_cfg_set_wmask(f, reg, 4, (uint32_t)addr_mask & ~low_ro);
	if (b->type == BM_PCI_BAR_MEM64)
		pci_cfg_set_wmask(f, reg + 4, 4, (uint32_t)(addr_mask >> 32));
}

static void bar_name(const bm_pci_func *f, unsigned i, char *buf, size_t len)
{
	if (i == BM_PCI_ROM)
		snprintf(buf, len, "%s/rom", f->name);
	else
		snprintf(buf, len, "%s/bar%u", f->name, i);
}

static int make_regions(bm_pci_func *f, unsigned i, const struct bm_pci_bar_desc *d)
{
	struct pci_bar *b = &f->bars[i];
	char name[32];
	bar_name(f, i, name, sizeof(name));
	int err = bm_region_new_container(f->host->sys, name, b->size, &b->container);
	if (err)
		return err;
	bm_region_set_exclusive(b->container, true);
	if (d->region) {
		b->contents = d->region;
	} else {
		const struct bm_region_ops *ops = d->ops ? d->ops : &empty_ops;
		err = bm_region_new_io(f->host->sys, name, b->size, ops, d->opaque, &b->contents);
		if (err)
			return err;
		b->own_contents = true;
	}
	return bm_region_add(b->container, b->contents, 0, 0);
}

static int init_bar(bm_pci_func *f, unsigned i, const struct bm_pci_bar_desc *d)
{
	struct pci_bar *b = &f->bars[i];
	b->type = i == BM_PCI_ROM ? BM_PCI_BAR_MEM32 : d->type;
	b->prefetchable = i != BM_PCI_ROM && d->prefetchable;
	b->size = d->size;
	init_registers(f, i);
	return make_regions(f, i, d);
}

int pci_bars_init(bm_pci_func *f, const struct bm_pci_func_desc *d)
{
	for (unsigned i = 0; i < BM_PCI_NUM_BARS; i++) {
		if (d->bars[i].type == BM_PCI_BAR_NONE)
			continue;
		int err = init_bar(f, i, &d->bars[i]);
		if (err)
			return err;
	}
	return d->rom.size ? init_bar(f, BM_PCI_ROM, &d->rom) : 0;
}

/* The address the registers hold, whatever decoding says. */
static uint64_t bar_register_addr(const bm_pci_func *f, unsigned i)
{
	const struct pci_bar *b = &f->bars[i];
	unsigned reg = pci_bar_reg(f, i);
	uint64_t lo = pci_cfg_get(f, reg, 4);
	if (i == BM_PCI_ROM)
		return lo & PCI_ROM_ADDRESS_MASK & ~(b->size - 1);
	if (b->type == BM_PCI_BAR_IO)
		return lo & ~3ull & ~(b->size - 1);
	if (b->type == BM_PCI_BAR_MEM64)
		lo |= (uint64_t)pci_cfg_get(f, reg + 4, 4) << 32;
	return lo & ~0xfull & ~(b->size - 1);
}

static bool decode_io(const bm_pci_func *f, uint64_t a, uint64_t size)
{
	const bm_pci_host *h = f->host;
	uint64_t last = a + size - 1;
	if (!(pci_cfg_get(f, PCI_COMMAND, 2) & PCI_COMMAND_IO))
		return false;
	return last > a && last < h->io_limit && (a != 0 || h->cfg.decode_zero);
}

static bool decode_mem(const bm_pci_func *f, unsigned i, uint64_t a, uint64_t size)
{
	const struct pci_bar *b = &f->bars[i];
	uint64_t last = a + size - 1;
	if (!(pci_cfg_get(f, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
		return false;
	if (i == BM_PCI_ROM && !(pci_cfg_get(f, pci_bar_reg(f, i), 4) & PCI_ROM_ADDRESS_ENABLE))
		return false;
	if (last <= a || last == UINT64_MAX || (a == 0 && !f->host->cfg.decode_zero))
		return false;
	/* A 32-bit BAR (and the ROM) whose last byte reaches 0xffffffff is not decoded,
	 * as in QEMU. */
	return b->type == BM_PCI_BAR_MEM64 || last < UINT32_MAX;
}

static bool bar_decode(const bm_pci_func *f, unsigned i, uint64_t *addr)
{
	const struct pci_bar *b = &f->bars[i];
	*addr = bar_register_addr(f, i);
	if (b->type == BM_PCI_BAR_IO)
		return decode_io(f, *addr, b->size);
	return decode_mem(f, i, *addr, b->size);
}

static bm_region *bar_parent(const bm_pci_func *f, unsigned i)
{
	return f->bars[i].type == BM_PCI_BAR_IO ? f->bus->io : f->bus->mem;
}

static int bar_unmap(bm_pci_func *f, unsigned i)
{
	struct pci_bar *b = &f->bars[i];
	if (!b->mapped)
		return 0;
	int err = bm_region_del(b->container);
	if (err)
		return err;
	b->mapped = false;
	if (!f->snap)
		pci_emit(f, i, b->mapped_addr, false);
	return 0;
}

/* Cannot fail with the placement the decode rule allows, short of memory. */
static int bar_map(bm_pci_func *f, unsigned i, uint64_t addr)
{
	struct pci_bar *b = &f->bars[i];
	int err = bm_region_add(bar_parent(f, i), b->container, addr, BAR_PRIORITY);
	if (err)
		return err;
	b->mapped = true;
	b->mapped_addr = addr;
	if (!f->snap)
		pci_emit(f, i, addr, true);
	return 0;
}

int pci_bars_update(bm_pci_func *f)
{
	int err = 0;
	for (unsigned i = 0; i < PCI_NUM_SLOTS && !err; i++) {
		struct pci_bar *b = &f->bars[i];
		if (!b->size)
			continue;
		uint64_t addr;
		bool decoded = bar_decode(f, i, &addr);
		if (decoded == b->mapped && (!decoded || addr == b->mapped_addr))
			continue;
		err = bar_unmap(f, i);
		if (!err && decoded)
			err = bar_map(f, i, addr);
	}
	return err;
}

/* Outside any savepoint a deletion cannot fail. */
void pci_bars_unmap_all(bm_pci_func *f)
{
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++)
		bar_unmap(f, i);
}

void pci_bars_destroy(bm_pci_func *f)
{
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++) {
		struct pci_bar *b = &f->bars[i];
		if (b->own_contents)
			bm_region_destroy(b->contents);
		else if (b->contents)
			bm_region_del(b->contents);
		bm_region_destroy(b->container);
		b->contents = b->container = NULL;
	}
}

int bm_pci_bar_info(bm_pci_func *f, unsigned index, struct bm_pci_bar_info *out)
{
	if (!f || !out || index > BM_PCI_ROM)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	const struct pci_bar *b = &f->bars[index];
	*out = (struct bm_pci_bar_info){.type = BM_PCI_BAR_NONE};
	if (b->size) {
		out->type = b->type;
		out->prefetchable = b->prefetchable;
		out->io = b->type == BM_PCI_BAR_IO;
		out->size = b->size;
		out->addr = bar_register_addr(f, index);
		out->mapped = b->mapped;
		out->mapped_addr = b->mapped ? b->mapped_addr : 0;
		out->region = b->container;
	}
	pci_commit(f->host);
	return b->size ? 0 : -ENOENT;
}
