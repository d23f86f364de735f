/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * BAR allocation: initial addresses for every BAR, expansion ROM and bridge window of a PCI
 * host, for guests that never program them (direct kernel boot), as a firmware would.
 *
 * bm_pci_alloc_plan  the assignment computed for a host's current topology: which address
 *                    each BAR, ROM and bridge window gets, and (if asked) the bus numbers.
 *                    It can be inspected without changing anything, then programmed.
 *
 * Programming goes through bm_pci_func_cfg_write only, so the emulation and its observers
 * see exactly the writes a firmware would make: decoding off, bus numbers, BARs (both
 * halves of a 64-bit one), bridge windows, then the command register's enable bits. The
 * whole run is one transaction: the map publishes once, at its end.
 *
 * Modes:
 * - BM_PCI_ALLOC_BEST_FIT: natural alignment; largest first; each BAR or window goes into
 *   the free gap that leaves the least space over. Bridge windows are sized to what is
 *   behind them (I/O in 4 KiB, memory in 1 MiB units), aligned to the larger of that unit
 *   and their largest BAR, and placed like a BAR. Behind a bridge with a 64-bit
 *   prefetchable window, 64-bit prefetchable BARs go there and every other memory BAR into
 *   the memory window; behind one without, all prefetchable BARs share the 32-bit
 *   prefetchable window. A non-prefetchable BAR is never behind a prefetchable window.
 * - BM_PCI_ALLOC_BHYVE: bhyve's own initial placement: per bus, BARs collected in slot,
 *   function and index order, stably sorted by size (largest first), then each placed at
 *   its window's next free address rounded up to its size (a bump pointer that never goes
 *   back). 64-bit BARs over 128 MiB go into mem64 if there is one, everything else into
 *   mem32 or io; the ROM is not placed. bhyve has no bridges: behind one, this mode lays
 *   out each bus with the same rules, in windows sized as above.
 * - BM_PCI_ALLOC_BHYVE_UNSORTED: the same without the sort, which is how bhyve placed BARs
 *   before it sorted them (as each device was created).
 *
 * Threads: these are writer-side calls. bm_pci_alloc_plan_new and bm_pci_alloc_plan_program
 * take the system's writer lock (through a transaction) for their whole run, so they may be
 * called from any thread, but not from a listener or conflict callback, nor from a PCI hook.
 * A plan refers to the host's functions: program or free it before the topology changes
 * (functions added or freed); programming a plan whose topology changed returns -ESTALE.
 *
 * Errors are negative errno values. -ENOSPC means something did not fit; the failure
 * structure says what, and nothing was written.
 */
#ifndef BUSMAP_PCI_ALLOC_H
#define BUSMAP_PCI_ALLOC_H

#include <busmap/pci.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_pci_alloc_plan bm_pci_alloc_plan;

enum bm_pci_alloc_mode {
	BM_PCI_ALLOC_BEST_FIT = 0,
	BM_PCI_ALLOC_BHYVE,
	BM_PCI_ALLOC_BHYVE_UNSORTED,
};

/* A window [base, limit], limit being its last address. {0, 0} means none. */
struct bm_pci_alloc_window {
	uint64_t base;
	uint64_t limit;
};

/*
 * Zero-initialise, then fill in what the host decodes. The memory windows must not overlap
 * each other, except that pref32 may equal mem32 (a shared window, the same as leaving
 * pref32 out); mem32 and pref32 must end below 4 GiB. Addresses the host refuses are never
 * handed out: 0 unless the host decodes it, I/O ports from the host's I/O limit up, the
 * last byte of the 64-bit space.
 *
 * Best fit, on the root bus: a 64-bit BAR goes into mem64 when there is one and it fits
 * there, else into pref32 (if prefetchable), else mem32; a prefetchable 32-bit BAR into
 * pref32, else mem32; everything else (and the ROM) into mem32; I/O BARs into io. A
 * bridge's window goes where a BAR with its contents would. The bhyve modes ignore pref32.
 */
struct bm_pci_alloc_config {
	enum bm_pci_alloc_mode mode;
	struct bm_pci_alloc_window io;     /* I/O port numbers (also where ports are in MMIO) */
	struct bm_pci_alloc_window mem32;  /* 32-bit memory, non-prefetchable */
	struct bm_pci_alloc_window pref32; /* 32-bit prefetchable memory, optional */
	struct bm_pci_alloc_window mem64;  /* 64-bit (prefetchable) memory, optional */
	bool assign_buses; /* bridges' primary/secondary/subordinate bus, depth first */
	bool bus_master;   /* also set the command register's bus master bit */
	bool rom_enable;   /* also set the expansion ROM's enable bit */
};

/* What a plan entry or a failure is about. */
enum bm_pci_alloc_what {
	BM_PCI_ALLOC_BAR = 0,    /* index: 0..5, or BM_PCI_ROM */
	BM_PCI_ALLOC_WINDOW = 1, /* a bridge's window; index: an enum bm_pci_window_kind */
	BM_PCI_ALLOC_BUSES = 2,  /* failures only: no bus number left for this bridge */
};

struct bm_pci_alloc_entry {
	bm_pci_func *func;
	enum bm_pci_alloc_what what;
	unsigned index;
	bool io;           /* I/O space, else memory */
	bool prefetchable; /* a prefetchable BAR, or the prefetchable window */
	bool mem64;        /* a 64-bit BAR, or a prefetchable window with 64-bit registers */
	bool assigned;     /* false: its registers are left alone (the ROM in the bhyve modes) */
	uint64_t addr;
	uint64_t size; /* windows: 0 when closed (nothing of that kind behind the bridge) */
};

struct bm_pci_alloc_busnr {
	bm_pci_func *bridge;
	uint8_t primary, secondary, subordinate;
};

/* Filled on -ENOSPC: the BAR or window that did not fit, or the bridge for which no bus
 * number was left. */
struct bm_pci_alloc_failure {
	bm_pci_func *func;
	enum bm_pci_alloc_what what;
	unsigned index;
	uint64_t size;
};

/*
 * Computes the assignment for the host's current functions without changing anything.
 * Returns 0, -EINVAL (NULL host/cfg/out, bad mode or windows), -ENOSPC (fail, if not
 * NULL, says what did not fit), -ENOMEM, or -EDEADLK from a listener context.
 */
BM_API int bm_pci_alloc_plan_new(bm_pci_host *host, const struct bm_pci_alloc_config *cfg,
                                 bm_pci_alloc_plan **out, struct bm_pci_alloc_failure *fail);
/*
 * The entries: every function in depth-first order (bm_pci_func_next), for each its BARs
 * by index, then the ROM, then for a bridge its I/O, memory and prefetchable windows.
 * Valid until the plan is freed.
 */
BM_API const struct bm_pci_alloc_entry *bm_pci_alloc_plan_entries(const bm_pci_alloc_plan *plan,
                                                                  size_t *count);
/* Bus numbers per bridge, depth first; none unless cfg->assign_buses. */
BM_API const struct bm_pci_alloc_busnr *bm_pci_alloc_plan_buses(const bm_pci_alloc_plan *plan,
                                                                size_t *count);
/*
 * The number of the bus f sits on once the plan is programmed (with cfg->assign_buses, the
 * planned one; else the current one), to name functions as the guest will see them.
 * Returns 0..255, -EINVAL, or -ENOENT if f is not in the plan.
 */
BM_API int bm_pci_alloc_plan_bus_number(const bm_pci_alloc_plan *plan, const bm_pci_func *f);
/*
 * Programs the plan through configuration writes, in one transaction. Returns 0, -EINVAL,
 * -ESTALE (the host's functions or BARs are no longer those planned for; nothing written),
 * -EDEADLK, or -ENOMEM from the commit (registers are written; the map is rendered at the
 * next commit).
 */
BM_API int bm_pci_alloc_plan_program(bm_pci_alloc_plan *plan);
/* NULL is accepted. */
BM_API void bm_pci_alloc_plan_free(bm_pci_alloc_plan *plan);

/* Plans and programs in one call; the same errors as the two calls. */
BM_API int bm_pci_alloc_run(bm_pci_host *host, const struct bm_pci_alloc_config *cfg,
                            struct bm_pci_alloc_failure *fail);

#ifdef __cplusplus
}
#endif
#endif
