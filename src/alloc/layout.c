/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where each item goes.
 *
 * Behind a bridge, items are laid out from offset 0 of the bridge's window of their kind;
 * the window's size is what they take, rounded up to the PCI-to-PCI bridge granule (4 KiB
 * for I/O, 1 MiB for memory), and its alignment the largest of the granule and theirs, so
 * that every offset that was aligned stays aligned wherever the window lands. The window
 * is then an item of the bus above, like a BAR.
 *
 * Which window holds a memory item behind a bridge follows Linux: with a 64-bit
 * prefetchable window, 64-bit prefetchable items go there and 32-bit prefetchable ones into
 * the non-prefetchable window, so the prefetchable window may go above 4 GiB; without one,
 * every prefetchable item shares the 32-bit prefetchable window. A non-prefetchable item
 * never goes into a prefetchable window. The bhyve modes treat as prefetchable only what
 * bhyve would put above 4 GiB (64-bit BARs over 128 MiB), when it is prefetchable.
 */
#include "alloc_internal.h"
#include <stdlib.h>

/* Items that belong in a prefetchable or 64-bit window; bhyve knows only large 64-bit BARs. */
static bool pref_kind(const struct bm_pci_alloc_plan *p, const struct item *it)
{
	if (it->what == BM_PCI_ALLOC_WINDOW)
		return it->index == CLS_PREF;
	if (alloc_is_bhyve(p))
		return it->mem64 && it->size > BHYVE_MEM64_MIN;
	return it->pref;
}

static bool above_4g(const struct item *it)
{
	return it->max_last > LAST_32;
}

static enum cls class_behind(const struct bm_pci_alloc_plan *p, const struct abus *b,
                             const struct item *it)
{
	if (it->io)
		return CLS_IO;
	if (!pref_kind(p, it) || (it->what == BM_PCI_ALLOC_BAR && !it->pref))
		return CLS_MEM;
	if (b->pref64)
		return above_4g(it) ? CLS_PREF : CLS_MEM;
	return CLS_PREF;
}

/* Indices of the items on bus b that get an address (and, if cls is not CLS_COUNT, sit in
 * that window of it). The caller frees *out. */
static int items_on(const struct bm_pci_alloc_plan *p, size_t b, enum cls cls, size_t **out,
                    size_t *n)
{
	*n = 0;
	*out = malloc((p->nitems ? p->nitems : 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < p->nitems; i++) {
		const struct item *it = &p->items[i];
		if (it->bus == b && !it->skip && (cls == CLS_COUNT || it->cls == cls))
			(*out)[(*n)++] = i;
	}
	return 0;
}

static uint64_t window_reg_last(const struct abus *b, enum cls c)
{
	switch (c) {
	case CLS_IO:
		return b->io32 ? LAST_32 : 0xffff;
	case CLS_MEM:
		return LAST_32;
	default:
		return b->pref64 ? UINT64_MAX - 1 : LAST_32;
	}
}

/* What a bridge's window must be to hold what was laid out in it. */
struct extent {
	uint64_t end; /* one past the last byte used, relative */
	uint64_t align;
	uint64_t max_last;
};

static int lay_out(struct bm_pci_alloc_plan *p, size_t *idx, size_t n, struct extent *e)
{
	struct gaps g;
	int err = gaps_init(&g, 0, UINT64_MAX - 1, alloc_is_bhyve(p));
	if (!err)
		err = alloc_sort(p, idx, n);
	for (size_t i = 0; i < n && !err; i++) {
		struct item *it = &p->items[idx[i]];
		err = gaps_take(&g, it->size, it->align, UINT64_MAX - 1, &it->addr);
		if (err == -ENOSPC)
			err = alloc_fail(p, it);
		if (err)
			break;
		it->placed = true;
		uint64_t end = it->addr + (it->size - 1);
		if (end + 1 > e->end)
			e->end = end + 1;
		if (it->align > e->align)
			e->align = it->align;
		if (it->max_last < e->max_last)
			e->max_last = it->max_last;
	}
	gaps_fini(&g);
	return err;
}

static int open_window(struct bm_pci_alloc_plan *p, size_t b, enum cls c, const struct extent *e)
{
	const struct abus *bus = &p->buses[b];
	uint64_t granule = c == CLS_IO ? IO_GRANULE : MEM_GRANULE;
	struct item w = {
	    .func = bus->bridge,
	    .what = BM_PCI_ALLOC_WINDOW,
	    .index = c,
	    .bus = bus->parent,
	    .size = (e->end + (granule - 1)) & ~(granule - 1),
	    .align = e->align > granule ? e->align : granule,
	    .max_last = e->max_last,
	    .io = c == CLS_IO,
	    .pref = c == CLS_PREF,
	    .mem64 = c == CLS_PREF && bus->pref64,
	};
	if (e->end > UINT64_MAX - (granule - 1)) {
		w.size = e->end;
		return alloc_fail(p, &w);
	}
	size_t wi;
	int err = alloc_add_item(p, &w, &wi);
	if (!err)
		p->buses[b].window[c] = wi;
	return err;
}

static int lay_out_bus(struct bm_pci_alloc_plan *p, size_t b)
{
	size_t *idx, n;
	int err = items_on(p, b, CLS_COUNT, &idx, &n);
	for (size_t i = 0; i < n && !err; i++) {
		struct item *it = &p->items[idx[i]];
		it->cls = class_behind(p, &p->buses[b], it);
	}
	free(idx);
	for (unsigned c = 0; c < CLS_COUNT && !err; c++) {
		err = items_on(p, b, (enum cls)c, &idx, &n);
		if (err)
			break;
		struct extent e = {.max_last = window_reg_last(&p->buses[b], (enum cls)c)};
		err = lay_out(p, idx, n, &e);
		if (!err && n)
			err = open_window(p, b, (enum cls)c, &e);
		free(idx);
	}
	return err;
}

/* Deepest first: a bus is recorded after the bus its bridge sits on. */
int alloc_layout_buses(struct bm_pci_alloc_plan *p)
{
	int err = 0;
	for (size_t b = p->nbuses; b-- > 1 && !err;)
		err = lay_out_bus(p, b);
	return err;
}

/* ---- the root bus ---- */

static void add_cand(struct item *it, struct gaps *const hw[HW_COUNT], enum hostwin w)
{
	if (hw[w])
		it->cand[it->ncand++] = w;
}

/* Host windows an item on the root bus may use, best first (always in HW order, so a
 * fallback is only ever to a window filled later). */
static void root_candidates(const struct bm_pci_alloc_plan *p, struct item *it,
                            struct gaps *const hw[HW_COUNT])
{
	bool pref = pref_kind(p, it), high = above_4g(it);
	it->ncand = it->next_cand = 0;
	if (it->io) {
		add_cand(it, hw, HW_IO);
	} else if (alloc_is_bhyve(p)) {
		add_cand(it, hw, pref && high && hw[HW_MEM64] ? HW_MEM64 : HW_MEM32);
	} else {
		if (high)
			add_cand(it, hw, HW_MEM64);
		if (pref)
			add_cand(it, hw, HW_PREF32);
		add_cand(it, hw, HW_MEM32);
	}
}

static int init_window(struct bm_pci_alloc_plan *p, struct gaps *g,
                       const struct bm_pci_alloc_window *w, uint64_t max_last)
{
	uint64_t start = w->base;
	if (start == 0 && !bm_pci_host_decodes_zero(p->host))
		start = 1;
	return gaps_init(g, start, w->limit < max_last ? w->limit : max_last, alloc_is_bhyve(p));
}

static int init_host_windows(struct bm_pci_alloc_plan *p, struct gaps g[HW_COUNT],
                             struct gaps *hw[HW_COUNT])
{
	const struct bm_pci_alloc_config *c = &p->cfg;
	const struct bm_pci_alloc_window *src[HW_COUNT] = {[HW_MEM64] = &c->mem64,
	                                                   [HW_PREF32] = &c->pref32,
	                                                   [HW_MEM32] = &c->mem32,
	                                                   [HW_IO] = &c->io};
	uint64_t io_limit = bm_pci_host_io_limit(p->host);
	bool shared = alloc_is_bhyve(p) ||
	              (c->pref32.base == c->mem32.base && c->pref32.limit == c->mem32.limit);
	int err = 0;
	for (unsigned w = 0; w < HW_COUNT; w++) {
		g[w] = (struct gaps){0};
		hw[w] = NULL;
		if (window_absent(src[w]) || (w == HW_PREF32 && shared) || err)
			continue;
		uint64_t max_last = w == HW_IO ? io_limit - 1 : UINT64_MAX - 1;
		err = init_window(p, &g[w], src[w], max_last);
		hw[w] = &g[w];
	}
	return err;
}

static int fill_window(struct bm_pci_alloc_plan *p, struct gaps *g, enum hostwin w)
{
	size_t *idx, n;
	int err = items_on(p, 0, CLS_COUNT, &idx, &n);
	size_t m = 0;
	for (size_t i = 0; i < n && !err; i++) {
		const struct item *it = &p->items[idx[i]];
		if (!it->placed && it->next_cand < it->ncand && it->cand[it->next_cand] == w)
			idx[m++] = idx[i];
	}
	if (!err)
		err = alloc_sort(p, idx, m);
	for (size_t i = 0; i < m && !err; i++) {
		struct item *it = &p->items[idx[i]];
		err = gaps_take(g, it->size, it->align, it->max_last, &it->addr);
		if (!err)
			it->placed = true;
		else if (err == -ENOSPC && ++it->next_cand < it->ncand)
			err = 0;
		else if (err == -ENOSPC)
			err = alloc_fail(p, it);
	}
	free(idx);
	return err;
}

int alloc_place_root(struct bm_pci_alloc_plan *p)
{
	struct gaps g[HW_COUNT], *hw[HW_COUNT];
	int err = init_host_windows(p, g, hw);
	for (size_t i = 0; i < p->nitems && !err; i++) {
		struct item *it = &p->items[i];
		if (it->bus == 0 && !it->skip) {
			root_candidates(p, it, hw);
			if (!it->ncand)
				err = alloc_fail(p, it);
		}
	}
	for (unsigned w = 0; w < HW_COUNT && !err; w++)
		if (hw[w])
			err = fill_window(p, hw[w], (enum hostwin)w);
	for (unsigned w = 0; w < HW_COUNT; w++)
		gaps_fini(&g[w]);
	return err;
}

/* Parents first, so a window's own address is absolute before its contents are moved. */
void alloc_make_absolute(struct bm_pci_alloc_plan *p)
{
	for (size_t b = 1; b < p->nbuses; b++) {
		for (size_t i = 0; i < p->nitems; i++) {
			struct item *it = &p->items[i];
			if (it->bus == b && it->placed)
				it->addr += p->items[p->buses[b].window[it->cls]].addr;
		}
	}
}
