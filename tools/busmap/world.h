/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A read-only view of a PCI host and its address spaces, the same whether a scenario or a
 * QEMU trace built it: its BARs, what an address reaches, and the overlaps between BARs.
 * Maps, conflict reports, timelines and expectations are all computed from it.
 *
 * BARs are known by their region handle (struct bm_pci_bar_info's region, the BAR's
 * container): a flat range belongs to a BAR when the BAR's container is the range's region
 * or one of its ancestors, so MSI-X tables inside a BAR count as the BAR.
 */
#ifndef BUSMAP_CMD_WORLD_H
#define BUSMAP_CMD_WORLD_H

#include <busmap/busmap.h>

struct world {
	bm_pci_host *host;
	bm_space *mem;
	bm_space *io;   /* NULL when the host has no port space */
	bool io_in_mem; /* ports appear in mem at io_base + port */
	uint64_t io_base, io_size;
	/* A name for a function ("virtio-net"), or NULL. */
	const char *(*label)(void *arg, const bm_pci_func *f);
	void *label_arg;
};

struct world_bar {
	bm_pci_func *func;
	char name[24]; /* "BB:DD.F/barN" or "BB:DD.F/rom" */
	unsigned index;
	bool io;
	enum bm_pci_bar_type type; /* the ROM: BM_PCI_BAR_MEM32 */
	bool prefetchable;
	uint64_t size;
	bool mapped;
	uint64_t addr;     /* where it is decoded, when mapped */
	uint64_t reg_addr; /* what its registers hold */
	bm_region *region;
};

/* Every implemented BAR and ROM of every function, functions depth first. *out is
 * malloc'ed (NULL when there are none). Returns 0 or -ENOMEM. */
int world_bars(const struct world *w, struct world_bar **out, size_t *n);

/* The BAR a region belongs to (index into bars), or -1. */
long world_bar_of_region(const struct world_bar *bars, size_t n, const bm_region *r);

/* The space an access to addr of the given kind goes to, and the address there. */
bm_space *world_space(const struct world *w, bool io, uint64_t *addr);

/* What the flat view holds at one address. */
struct world_hit {
	bool assigned;
	bm_region *region;      /* the terminal region */
	uint64_t region_offset; /* of addr in it */
	long bar;               /* index into bars, or -1 */
	uint64_t bar_offset;    /* of addr in that BAR */
	bool conflict;          /* the core marks the range as an overlap of BARs */
	uint64_t start, last;   /* the flat range, in the space's addresses */
};
int world_lookup(const struct world *w, bool io, uint64_t addr, const struct world_bar *bars,
                 size_t n, struct world_hit *hit);

/* Calls fn for each flat range of the space (io: the port space, or the window's part of
 * mem, in port numbers) that intersects [first, last], clipped to it. */
typedef int (*world_range_fn)(void *arg, uint64_t start, uint64_t last, const struct world_hit *h);
int world_walk(const struct world *w, bool io, uint64_t first, uint64_t last,
               const struct world_bar *bars, size_t n, world_range_fn fn, void *arg);

/* An overlap between two BARs now: winner hides loser over [start, last] (ports for I/O
 * BARs). Adjacent pieces of the same pair are merged. */
struct world_conflict {
	long winner, loser; /* indices into bars */
	bool io;
	uint64_t start, last;
};
int world_conflicts(const struct world *w, const struct world_bar *bars, size_t n,
                    struct world_conflict **out, size_t *count);

/* The function's name for people: "00:02.0 virtio-net", or just "00:02.0". */
void world_func_title(const struct world *w, const bm_pci_func *f, char *buf, size_t size);

#endif
