/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Taking stock of a host through the public PCI interface: every function in depth-first
 * order, every bus, every BAR and ROM as an item to place, and bus numbers assigned depth
 * first, which is simply the order buses are met in that walk.
 */
#include "alloc_internal.h"
#include "internal.h"
#include <stdlib.h>

bool alloc_is_bhyve(const struct bm_pci_alloc_plan *p)
{
	return p->cfg.mode != BM_PCI_ALLOC_BEST_FIT;
}

int alloc_fail(struct bm_pci_alloc_plan *p, const struct item *it)
{
	p->fail = (struct bm_pci_alloc_failure){
	    .func = p->funcs[it->func].f, .what = it->what, .index = it->index, .size = it->size};
	return -ENOSPC;
}

int alloc_add_item(struct bm_pci_alloc_plan *p, const struct item *it, size_t *index)
{
	int err = bm_grow(&p->items, &p->items_cap, p->nitems, sizeof(*p->items));
	if (err)
		return err;
	p->items[p->nitems] = *it;
	*index = p->nitems++;
	return 0;
}

static size_t find_bus(const struct bm_pci_alloc_plan *p, const bm_pci_bus *bus)
{
	for (size_t i = 0; i < p->nbuses; i++)
		if (p->buses[i].bus == bus)
			return i;
	return NO_INDEX;
}

static int add_bus(struct bm_pci_alloc_plan *p, bm_pci_bus *bus, size_t bridge, size_t parent)
{
	int err = bm_grow(&p->buses, &p->buses_cap, p->nbuses, sizeof(*p->buses));
	if (err)
		return err;
	struct abus *b = &p->buses[p->nbuses++];
	*b = (struct abus){.bus = bus, .bridge = bridge, .parent = parent};
	for (unsigned k = 0; k < CLS_COUNT; k++)
		b->window[k] = NO_INDEX;
	if (bridge != NO_INDEX) {
		bm_pci_func *f = p->funcs[bridge].f;
		b->io32 = (bm_pci_func_cfg_get(f, REG_IO_BASE, 1) & 0xf) == WINDOW_WIDE;
		b->pref64 = (bm_pci_func_cfg_get(f, REG_PREF_BASE, 2) & 0xf) == WINDOW_WIDE;
	}
	return 0;
}

/* The highest last byte the decode rule lets a BAR of this kind have. */
static uint64_t bar_max_last(const struct bm_pci_alloc_plan *p, unsigned index,
                             const struct bm_pci_bar_info *bi)
{
	if (bi->io) {
		uint64_t last = bm_pci_host_io_limit(p->host) - 1;
		return last < LAST_32 ? last : LAST_32;
	}
	if (index == BM_PCI_ROM || bi->type == BM_PCI_BAR_MEM32)
		return LAST_32 - 1;
	return UINT64_MAX - 1;
}

static int add_bar(struct bm_pci_alloc_plan *p, size_t fi, unsigned index,
                   const struct bm_pci_bar_info *bi)
{
	bool rom = index == BM_PCI_ROM;
	struct item it = {
	    .func = fi,
	    .what = BM_PCI_ALLOC_BAR,
	    .index = index,
	    .bus = p->funcs[fi].bus,
	    .size = bi->size,
	    .align = bi->size,
	    .max_last = bar_max_last(p, index, bi),
	    .io = bi->io,
	    .pref = !rom && bi->prefetchable,
	    .mem64 = !rom && bi->type == BM_PCI_BAR_MEM64,
	    .skip = rom && alloc_is_bhyve(p),
	};
	return alloc_add_item(p, &it, &p->funcs[fi].bar_item[index]);
}

static int add_bars(struct bm_pci_alloc_plan *p, size_t fi)
{
	struct afunc *af = &p->funcs[fi];
	for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
		struct bm_pci_bar_info bi;
		af->bar_item[i] = NO_INDEX;
		if (bm_pci_bar_info(af->f, i, &bi) != 0 || bi.type == BM_PCI_BAR_NONE)
			continue;
		af->sig[i] = (struct barsig){bi.type, bi.size, bi.prefetchable};
		int err = add_bar(p, fi, i, &bi);
		if (err)
			return err;
		af = &p->funcs[fi];
	}
	return 0;
}

static int add_func(struct bm_pci_alloc_plan *p, bm_pci_func *f)
{
	size_t bus = find_bus(p, bm_pci_func_bus(f));
	if (bus == NO_INDEX)
		return -EINVAL; /* cannot happen: depth first meets a bridge before its bus */
	int err = bm_grow(&p->funcs, &p->funcs_cap, p->nfuncs, sizeof(*p->funcs));
	if (err)
		return err;
	size_t fi = p->nfuncs++;
	p->funcs[fi] = (struct afunc){.f = f, .bus = bus, .secondary = NO_INDEX};
	if (bm_pci_func_is_bridge(f)) {
		err = add_bus(p, bm_pci_func_secondary_bus(f), fi, bus);
		if (err)
			return err;
		p->funcs[fi].secondary = p->nbuses - 1;
	}
	return add_bars(p, fi);
}

int alloc_collect(struct bm_pci_alloc_plan *p)
{
	int err = add_bus(p, bm_pci_host_root_bus(p->host), NO_INDEX, NO_INDEX);
	for (bm_pci_func *f = bm_pci_func_next(p->host, NULL); f && !err;
	     f = bm_pci_func_next(p->host, f))
		err = add_func(p, f);
	return err;
}

/*
 * Depth first, bus i gets number i: buses are recorded in exactly that walk's order, so a
 * subtree is a contiguous run of indices and its subordinate is the last one in it.
 */
int alloc_number_buses(struct bm_pci_alloc_plan *p)
{
	if (p->nbuses > 256) {
		const struct abus *b = &p->buses[256];
		p->fail = (struct bm_pci_alloc_failure){.func = p->funcs[b->bridge].f,
		                                        .what = BM_PCI_ALLOC_BUSES};
		return -ENOSPC;
	}
	p->busnrs = calloc(p->nbuses, sizeof(*p->busnrs));
	if (!p->busnrs && p->nbuses)
		return -ENOMEM;
	size_t *sub = calloc(p->nbuses, sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	for (size_t i = p->nbuses; i-- > 0;) {
		if (sub[i] < i)
			sub[i] = i;
		size_t up = p->buses[i].parent;
		if (up != NO_INDEX && sub[up] < sub[i])
			sub[up] = sub[i];
	}
	for (size_t i = 1; i < p->nbuses; i++)
		p->busnrs[p->nbusnrs++] = (struct bm_pci_alloc_busnr){
		    .bridge = p->funcs[p->buses[i].bridge].f,
		    .primary = (uint8_t)p->buses[i].parent,
		    .secondary = (uint8_t)i,
		    .subordinate = (uint8_t)sub[i],
		};
	free(sub);
	return 0;
}
