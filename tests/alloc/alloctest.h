/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the allocator tests share: a host (x86-style with a port space, or
 * arm64-style with ports in MMIO), devices whose BARs answer with their own tag, snapshots
 * of every configuration register, and a checker that the programmed map is one a guest
 * can keep: aligned, disjoint, inside every bridge window above, decoded, and reachable
 * from the CPU.
 */
#ifndef BUSMAP_ALLOCTEST_H
#define BUSMAP_ALLOCTEST_H

#include "testutil.h"
#include <busmap/pci.h>
#include <busmap/pci_alloc.h>
#include <errno.h>

#define MAX_PROBES 4096

struct at {
	bm_system *sys;
	bm_space *mem, *io;
	bm_vcpu *vcpu;
	bm_pci_host *host;
	bool port_space;
	struct probe *probes; /* one per BAR, tagged with its number */
	size_t nprobes;
	struct at_owner {
		bm_pci_func *f;
		unsigned bar;
		size_t probe;
	} * owners;
	size_t nowners;
};

static inline struct at *at_new_with(struct bm_pci_host_config cfg, bool port_space)
{
	struct at *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->probes = calloc(MAX_PROBES, sizeof(*t->probes));
	t->owners = calloc(MAX_PROBES, sizeof(*t->owners));
	assert_non_null(t->probes);
	assert_non_null(t->owners);
	t->port_space = port_space;
	assert_int_equal(bm_system_new(&t->sys), 0);
	assert_int_equal(bm_space_new(t->sys, "memory", "system", &t->mem), 0);
	assert_int_equal(bm_space_new(t->sys, "io", "io", &t->io), 0);
	assert_int_equal(bm_vcpu_new(t->sys, 0, NULL, &t->vcpu), 0);
	cfg.mem = t->mem;
	cfg.io = port_space ? t->io : NULL;
	assert_int_equal(bm_pci_host_new(t->sys, &cfg, &t->host), 0);
	return t;
}

/* x86: ports 0..0xffff in their own space. */
static inline struct at *at_new(void)
{
	struct bm_pci_host_config cfg = {.cf8 = true};
	return at_new_with(cfg, true);
}

/* arm64 as bhyve builds it: a port number is also the MMIO address that reaches it. */
static inline struct at *at_new_arm(void)
{
	struct bm_pci_host_config cfg = {
	    .io_window_base = 0,
	    .io_window_size = 0xe0000000ull,
	    .io_limit = BM_PCI_IO_LIMIT_QEMU,
	};
	return at_new_with(cfg, false);
}

static inline void at_free(struct at *t)
{
	assert_int_equal(bm_pci_host_free(t->host), 0);
	assert_int_equal(bm_vcpu_free(t->vcpu), 0);
	assert_int_equal(bm_system_free(t->sys), 0);
	free(t->probes);
	free(t->owners);
	free(t);
}

/* A BAR whose contents read back its tag in their first four bytes. */
static inline struct bm_pci_bar_desc at_bar(struct at *t, enum bm_pci_bar_type type, uint64_t size,
                                            bool pref)
{
	assert_true(t->nprobes < MAX_PROBES);
	struct probe *p = &t->probes[t->nprobes];
	p->id = (int)(0x5a000000u + t->nprobes);
	for (unsigned i = 0; i < 4; i++)
		p->mem[i] = (uint8_t)((unsigned)p->id >> (8 * i));
	t->nprobes++;
	return (struct bm_pci_bar_desc){
	    .type = type, .size = size, .prefetchable = pref, .ops = &probe_ops, .opaque = p};
}

static inline struct bm_pci_func_desc at_endpoint(void)
{
	return (struct bm_pci_func_desc){
	    .vendor_id = 0x1af4, .device_id = 0x1000, .class_code = 0x020000};
}

static inline struct bm_pci_func_desc at_bridge(bool io32, bool pref64)
{
	return (struct bm_pci_func_desc){.vendor_id = 0x1b36,
	                                 .device_id = 0x0001,
	                                 .class_code = 0x060400,
	                                 .header = BM_PCI_HEADER_BRIDGE,
	                                 .bridge_io32 = io32,
	                                 .bridge_pref64 = pref64};
}

static inline bm_pci_func *at_add(struct at *t, bm_pci_bus *bus, unsigned dev, unsigned fn,
                                  const struct bm_pci_func_desc *d)
{
	bm_pci_func *f = NULL;
	assert_int_equal(bm_pci_func_new(bus ? bus : bm_pci_host_root_bus(t->host), dev, fn, d, &f),
	                 0);
	for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
		const struct bm_pci_bar_desc *b = i == BM_PCI_ROM ? &d->rom : &d->bars[i];
		const struct probe *p = b->opaque;
		if (b->size && p >= t->probes && p < t->probes + MAX_PROBES)
			t->owners[t->nowners++] = (struct at_owner){f, i, (size_t)(p - t->probes)};
	}
	return f;
}

static inline const struct probe *at_probe_of(const struct at *t, const bm_pci_func *f,
                                              unsigned bar)
{
	for (size_t i = 0; i < t->nowners; i++)
		if (t->owners[i].f == f && t->owners[i].bar == bar)
			return &t->probes[t->owners[i].probe];
	return NULL;
}

static inline bm_pci_bus *at_sec(bm_pci_func *bridge)
{
	bm_pci_bus *b = bm_pci_func_secondary_bus(bridge);
	assert_non_null(b);
	return b;
}

static inline struct bm_pci_bar_info at_info(bm_pci_func *f, unsigned bar)
{
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, bar, &bi), 0);
	return bi;
}

/* A BAR's register address, asserting it decodes there. */
static inline uint64_t at_addr(bm_pci_func *f, unsigned bar)
{
	struct bm_pci_bar_info bi = at_info(f, bar);
	assert_true(bi.mapped);
	assert_int_equal(bi.mapped_addr, bi.addr);
	return bi.addr;
}

static inline struct bm_pci_window at_window(bm_pci_func *bridge, enum bm_pci_window_kind k)
{
	struct bm_pci_window w;
	assert_int_equal(bm_pci_bridge_window(bridge, k, &w), 0);
	return w;
}

/* ---- snapshots ---- */

struct at_snap {
	size_t n;
	uint8_t (*cfg)[BM_PCI_CFG_SIZE];
};

static inline struct at_snap at_snapshot(struct at *t)
{
	struct at_snap s = {0};
	for (bm_pci_func *f = bm_pci_func_next(t->host, NULL); f; f = bm_pci_func_next(t->host, f))
		s.n++;
	s.cfg = calloc(s.n ? s.n : 1, sizeof(*s.cfg));
	assert_non_null(s.cfg);
	size_t i = 0;
	for (bm_pci_func *f = bm_pci_func_next(t->host, NULL); f;
	     f = bm_pci_func_next(t->host, f)) {
		for (unsigned r = 0; r < BM_PCI_CFG_SIZE; r += 4) {
			uint32_t v = bm_pci_func_cfg_get(f, r, 4);
			memcpy(&s.cfg[i][r], &v, 4);
		}
		i++;
	}
	return s;
}

static inline void at_snap_equal(const struct at_snap *a, const struct at_snap *b)
{
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->cfg, b->cfg, a->n * sizeof(*a->cfg));
}

static inline void at_snap_free(struct at_snap *s)
{
	free(s->cfg);
	s->cfg = NULL;
}

/* ---- the checker ---- */

struct at_range {
	bm_pci_func *func;
	unsigned what, index;
	bool io, pref;
	uint64_t start, last;
};

struct at_ranges {
	struct at_range *v;
	size_t n, cap;
};

static inline void at_ranges_add(struct at_ranges *r, struct at_range x)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	r->v[r->n++] = x;
}

static inline bool at_inside(uint64_t start, uint64_t last, const struct bm_pci_window *w)
{
	return w->enabled && w->base <= start && last <= w->last;
}

/* Every bridge above f forwards [start, last]; a non-prefetchable range never relies on a
 * prefetchable window. */
static inline void at_check_forwarded(bm_pci_func *f, bool io, bool pref, uint64_t start,
                                      uint64_t last)
{
	for (bm_pci_func *br = bm_pci_bus_bridge(bm_pci_func_bus(f)); br;
	     br = bm_pci_bus_bridge(bm_pci_func_bus(br))) {
		if (io) {
			struct bm_pci_window w = at_window(br, BM_PCI_WINDOW_IO);
			assert_true(at_inside(start, last, &w));
			continue;
		}
		struct bm_pci_window m = at_window(br, BM_PCI_WINDOW_MEM);
		struct bm_pci_window p = at_window(br, BM_PCI_WINDOW_PREF);
		bool in_mem = at_inside(start, last, &m), in_pref = at_inside(start, last, &p);
		assert_true(in_mem || (pref && in_pref));
		/* The prefetchable window is not inside the other: a range is in one only. */
		assert_false(in_mem && in_pref);
	}
}

static inline int at_cmp_range(const void *a, const void *b)
{
	const struct at_range *x = a, *y = b;
	if (x->io != y->io)
		return x->io ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Ranges of one bus (its functions' BARs and its bridges' windows) never overlap. */
static inline void at_check_disjoint(struct at_ranges *r)
{
	qsort(r->v, r->n, sizeof(*r->v), at_cmp_range);
	for (size_t i = 1; i < r->n; i++) {
		const struct at_range *a = &r->v[i - 1], *b = &r->v[i];
		if (a->io == b->io && b->start <= a->last)
			fail_msg("%s %u/%u [%#llx, %#llx] overlaps %s %u/%u [%#llx, %#llx]",
			         bm_pci_func_name(a->func), a->what, a->index,
			         (unsigned long long)a->start, (unsigned long long)a->last,
			         bm_pci_func_name(b->func), b->what, b->index,
			         (unsigned long long)b->start, (unsigned long long)b->last);
	}
}

static inline uint64_t at_read(struct at *t, bool io, uint64_t addr)
{
	uint64_t v = 0;
	bm_space *s = io && t->port_space ? t->io : t->mem;
	int r = bm_read(t->vcpu, s, addr, 4, &v);
	assert_true(r >= 0);
	return v;
}

/* What became of expansion ROMs: placed and left off, placed and enabled, or left alone. */
enum at_rom { AT_ROM_OFF, AT_ROM_ON, AT_ROM_UNPLACED };

/* Checks one function's BARs; adds them to the ranges of its bus. */
static inline void at_check_bars(struct at *t, bm_pci_func *f, enum at_rom rom,
                                 struct at_ranges *bus)
{
	for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
		struct bm_pci_bar_info bi;
		if (bm_pci_bar_info(f, i, &bi) != 0)
			continue;
		if (i == BM_PCI_ROM && rom == AT_ROM_UNPLACED) {
			assert_int_equal(bi.addr, 0);
			assert_false(bi.mapped);
			continue;
		}
		uint64_t last = bi.addr + bi.size - 1;
		assert_true(bi.addr != 0);
		assert_int_equal(bi.addr % bi.size, 0);
		assert_true(last > bi.addr || bi.size == 1);
		if (bi.io)
			assert_true(last < bm_pci_host_io_limit(t->host));
		else if (bi.type == BM_PCI_BAR_MEM32)
			assert_true(last < 0xffffffffull);
		bool decodes = i != BM_PCI_ROM || rom == AT_ROM_ON;
		assert_int_equal(bi.mapped, decodes);
		if (decodes)
			assert_int_equal(bi.mapped_addr, bi.addr);
		at_check_forwarded(f, bi.io, bi.prefetchable, bi.addr, last);
		at_ranges_add(bus, (struct at_range){f, BM_PCI_ALLOC_BAR, i, bi.io, bi.prefetchable,
		                                     bi.addr, last});
		const struct probe *p = at_probe_of(t, f, i);
		if (decodes && p)
			assert_int_equal(at_read(t, bi.io, bi.addr), (uint32_t)p->id);
	}
}

static inline void at_check_windows(bm_pci_func *br, struct at_ranges *bus)
{
	static const enum bm_pci_window_kind kinds[3] = {BM_PCI_WINDOW_IO, BM_PCI_WINDOW_MEM,
	                                                 BM_PCI_WINDOW_PREF};
	for (unsigned k = 0; k < 3; k++) {
		struct bm_pci_window w = at_window(br, kinds[k]);
		if (!w.enabled)
			continue;
		uint64_t granule = k == 0 ? 0x1000 : 0x100000;
		assert_int_equal(w.base % granule, 0);
		assert_int_equal((w.last + 1) % granule, 0);
		at_check_forwarded(br, k == 0, k == 2, w.base, w.last);
		at_ranges_add(bus, (struct at_range){br, BM_PCI_ALLOC_WINDOW, k, k == 0, k == 2,
		                                     w.base, w.last});
	}
}

/* The map after programming is one a guest can keep. */
static inline void at_check_map(struct at *t, enum at_rom rom)
{
	for (bm_pci_func *f = bm_pci_func_next(t->host, NULL); f;
	     f = bm_pci_func_next(t->host, f)) {
		/* Visit each bus once, from its first function. */
		bm_pci_bus *bus = bm_pci_func_bus(f);
		bool first = true;
		for (bm_pci_func *g = bm_pci_func_next(t->host, NULL); g != f;
		     g = bm_pci_func_next(t->host, g))
			first &= bm_pci_func_bus(g) != bus;
		if (!first)
			continue;
		struct at_ranges r = {0};
		for (bm_pci_func *g = f; g; g = bm_pci_func_next(t->host, g)) {
			if (bm_pci_func_bus(g) != bus)
				continue;
			at_check_bars(t, g, rom, &r);
			if (bm_pci_func_is_bridge(g))
				at_check_windows(g, &r);
		}
		at_check_disjoint(&r);
		free(r.v);
	}
}

#endif
