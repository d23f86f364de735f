/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The allocator's picture of a host while it plans: functions in depth-first order, buses
 * (the root and each bridge's secondary side), and items, the things that need an address
 * (BARs, ROMs and bridge windows).
 *
 * Planning runs bottom-up, then top-down, the way firmware and Linux size bridges: each
 * bus behind a bridge is laid out relative to its bridge's windows, which become items of
 * the bus above; the root bus's items go into the host's windows; then every relative
 * address is made absolute by adding its window's.
 */
#ifndef BUSMAP_ALLOC_INTERNAL_H
#define BUSMAP_ALLOC_INTERNAL_H

#include "gaps.h"
#include <busmap/pci_alloc.h>
#include <errno.h>

#define NO_INDEX SIZE_MAX

/* Configuration registers the allocator writes (PCI Local Bus, PCI-to-PCI Bridge specs). */
#define REG_COMMAND       0x04
#define REG_BAR0          0x10
#define REG_BUSES         0x18
#define REG_IO_BASE       0x1c
#define REG_MEM_BASE      0x20
#define REG_PREF_BASE     0x24
#define REG_PREF_BASE_HI  0x28
#define REG_PREF_LIMIT_HI 0x2c
#define REG_IO_BASE_HI    0x30
#define REG_ROM           0x30
#define REG_ROM_BRIDGE    0x38
#define CMD_IO            0x1
#define CMD_MEM           0x2
#define CMD_MASTER        0x4
#define ROM_ENABLE        0x1
#define WINDOW_WIDE       0x1 /* in a base register: 32-bit I/O, 64-bit prefetchable */
#define IO_GRANULE        0x1000ull
#define MEM_GRANULE       0x100000ull
#define BHYVE_MEM64_MIN   (128ull << 20) /* bhyve puts 64-bit BARs up to this below 4 GiB */
#define LAST_32           0xffffffffull

/* The three windows of a bridge, in enum bm_pci_window_kind order. */
enum cls { CLS_IO, CLS_MEM, CLS_PREF, CLS_COUNT };

/* The host's windows, in the order they are filled. */
enum hostwin { HW_MEM64, HW_PREF32, HW_MEM32, HW_IO, HW_COUNT };

struct item {
	size_t func; /* whose BAR or window */
	enum bm_pci_alloc_what what;
	unsigned index;
	size_t bus;   /* the bus it sits on */
	enum cls cls; /* which of its bus's windows holds it (behind a bridge) */
	uint64_t size, align, max_last;
	bool io, pref, mem64;
	bool skip; /* the bhyve modes leave the ROM alone */
	bool placed;
	uint64_t addr;           /* relative to its bus's window until planning ends */
	unsigned cand[HW_COUNT]; /* root bus: host windows to try, in order */
	unsigned ncand, next_cand;
};

/* What a BAR looked like when planned, to notice a changed topology before programming. */
struct barsig {
	enum bm_pci_bar_type type;
	uint64_t size;
	bool pref;
};

struct afunc {
	bm_pci_func *f;
	size_t bus;       /* the bus it sits on */
	size_t secondary; /* a bridge's secondary bus, else NO_INDEX */
	size_t bar_item[BM_PCI_ROM + 1];
	struct barsig sig[BM_PCI_ROM + 1];
};

struct abus {
	bm_pci_bus *bus;
	size_t bridge; /* NO_INDEX for the root */
	size_t parent;
	bool io32, pref64;
	size_t window[CLS_COUNT]; /* the bridge's window items, NO_INDEX while closed */
};

struct bm_pci_alloc_plan {
	bm_pci_host *host;
	struct bm_pci_alloc_config cfg;
	struct afunc *funcs;
	size_t nfuncs, funcs_cap;
	struct abus *buses;
	size_t nbuses, buses_cap;
	struct item *items;
	size_t nitems, items_cap;
	struct bm_pci_alloc_entry *entries;
	size_t nentries;
	struct bm_pci_alloc_busnr *busnrs;
	size_t nbusnrs;
	struct bm_pci_alloc_failure fail;
};

static inline bool window_absent(const struct bm_pci_alloc_window *w)
{
	return w->base == 0 && w->limit == 0;
}

/* collect.c: the host's functions, buses and BARs; bus numbers. */
int alloc_collect(struct bm_pci_alloc_plan *p);
int alloc_number_buses(struct bm_pci_alloc_plan *p);
int alloc_add_item(struct bm_pci_alloc_plan *p, const struct item *it, size_t *index);
bool alloc_is_bhyve(const struct bm_pci_alloc_plan *p);
/* Records what did not fit; returns -ENOSPC. */
int alloc_fail(struct bm_pci_alloc_plan *p, const struct item *it);

/* order.c: the order items are placed in, per mode. */
int alloc_sort(const struct bm_pci_alloc_plan *p, size_t *idx, size_t n);

/* layout.c: bridge windows bottom-up, the host's windows, absolute addresses. */
int alloc_layout_buses(struct bm_pci_alloc_plan *p);
int alloc_place_root(struct bm_pci_alloc_plan *p);
void alloc_make_absolute(struct bm_pci_alloc_plan *p);

/* program.c */
int alloc_program(struct bm_pci_alloc_plan *p);

#endif
