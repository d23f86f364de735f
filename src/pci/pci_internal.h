/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The PCI layer's objects and the calls its files make to each other. Everything here runs
 * with the system's writer lock held (taken by the public entry points through bm_begin),
 * which is what serialises a function's registers between vCPU and device threads.
 *
 * The one exception is a guest's configuration read through CF8/CFC or ECAM, which takes no
 * lock: it reads each function's published copy of its registers (pub), which the writer
 * brings up to date under a per-function sequence count whenever it releases the lock, and
 * never while the function is saved in an open transaction, so a reader sees a register as
 * it was before a write or after it, never half-written nor rolled back.
 */
#ifndef BUSMAP_PCI_INTERNAL_H
#define BUSMAP_PCI_INTERNAL_H

#include "../journal.h"
#include <busmap/pci.h>
#include <busmap/pci_regs.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Choices of this implementation, on top of <busmap/pci_regs.h>. */
#define PCI_STATUS_ERR_BITS                                                                        \
	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |           \
	 PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)
#define PCI_BRIDGE_CTL_WMASK 0x0bff
#define PCI_BRIDGE_CTL_W1C   0x0400 /* discard timer status */

#define PCI_NUM_SLOTS   (BM_PCI_NUM_BARS + 1) /* six BARs and the ROM */
#define PCI_DEVFN(d, f) (((d) << 3) | (f))
#define PCI_MAX_DEVFN   256

struct pci_bar {
	enum bm_pci_bar_type type; /* for the ROM: BM_PCI_BAR_MEM32 when present */
	bool prefetchable;
	uint64_t size;
	bm_region *container; /* "BB:DD.F/barN", what is mapped into the bus */
	bm_region *contents;  /* at 0 of the container, priority 0 */
	bool own_contents;
	bool mapped; /* decoded now (QEMU's r->addr != PCI_BAR_UNMAPPED) */
	uint64_t mapped_addr;
};

struct pci_msi {
	unsigned off; /* 0: absent */
	unsigned nvec;
	bool addr64, maskable;
};

struct pci_msix {
	unsigned off; /* 0: absent */
	unsigned nvec;
	unsigned table_bar, pba_bar;
	uint32_t table_off, pba_off;
	uint32_t *table; /* four dwords per entry */
	uint64_t *pba;   /* pending bits */
	bm_region *table_region, *pba_region;
};

/* A bridge's three forwarding windows, as aliases of its secondary containers. */
struct pci_bridge {
	bm_pci_bus *secondary;
	bm_region *alias[3]; /* indexed by enum bm_pci_window_kind */
};

struct bm_pci_func {
	bm_pci_host *host;
	bm_pci_bus *bus;
	uint8_t dev, fn;
	char name[8]; /* "BB:DD.F" */
	unsigned cfg_size;
	uint8_t *cfg, *wmask, *w1cmask;
	struct pci_bar bars[PCI_NUM_SLOTS];
	unsigned cap_last, cap_free; /* legacy list: last capability, next free byte */
	unsigned ext_last, ext_free; /* extended list */
	struct pci_msi msi;
	struct pci_msix msix;
	bool type1;                /* bridge header: BAR and ROM registers sit elsewhere */
	bool multifunction;        /* header type bit 7 whatever the slot holds */
	struct pci_bridge *bridge; /* NULL for an endpoint */
	bool intx_level;           /* the device's line */
	bool intx_out;             /* what the host currently sees */
	const struct bm_pci_func_ops *ops;
	void *opaque;
	struct pci_func_snap *snap; /* its snapshot in the innermost open transaction */
	/* What lock-free readers see (config.c): a copy of cfg, 8-byte aligned, written only
	 * with atomic stores between two increments of pub_seq (odd while it changes). */
	uint8_t *pub;
	unsigned pub_seq;
	unsigned dirty_lo, dirty_hi;    /* bytes of cfg that may differ from pub */
	struct bm_pci_func *dirty_next; /* in the host's list of such functions */
	bool dirty_listed;
};

struct bm_pci_bus {
	bm_pci_host *host;
	bm_pci_func *bridge; /* NULL for the root bus */
	bm_region *mem, *io; /* where this bus's BARs are mapped */
	bm_pci_func *funcs[PCI_MAX_DEVFN];
};

struct bm_pci_host {
	bm_system *sys;
	struct bm_pci_host_config cfg;
	uint64_t io_limit;
	bm_pci_bus root;
	bm_region *io_window; /* alias of root.io in mem, arm64-style hosts */
	bm_region *conf;      /* CF8/CFC */
	bm_region *ecam;
	uint32_t conf_addr; /* the CF8 latch */
	bm_pci_func *host_bridge;
	bm_pci_map_fn observer;
	void *observer_arg;
	struct pci_txn *txn;           /* the innermost open transaction (txn.c) */
	struct pci_func_snap *spare;   /* a snapshot kept for the next one */
	struct pci_write *spare_write; /* a deferred write's record kept for the next one */
	bm_pci_func *dirty;            /* functions whose registers changed since published */
};

/* Every public entry works inside a core transaction of the host's system: pci_begin is
 * bm_begin, and fails like it (-EDEADLK from a listener or conflict callback, with nothing
 * to end). pci_commit brings the lock-free readers' copies of changed registers up to date,
 * then is bm_commit: it returns a failed publication of the region changes (-ENOMEM), which
 * leaves them pending for the next commit. */
int pci_begin(bm_pci_host *h);
int pci_commit(bm_pci_host *h);

/*
 * txn.c: all-or-nothing changes of PCI state. A guest configuration write, or a restore of
 * saved state, changes register bytes and then makes several core changes (BAR moves,
 * bridge windows); when one of them or the publication fails, everything goes back.
 *
 *   struct pci_txn t;
 *   int err = pci_txn_begin(h, &t);            takes the lock, opens a core savepoint
 *   if (err)
 *           return err;
 *   err = pci_func_save(&t, f);                before touching any of f's state
 *   if (!err)
 *           err = ...change f's registers, then pci_bars_update(f), ...;
 *   return pci_txn_end(h, &t, err);            commit, or restore and roll back
 *
 * pci_txn_begin: takes the writer lock (pci_begin) and opens a savepoint; 0, or the lock's
 *   error (-EDEADLK from a listener or conflict callback) with nothing to end.
 * pci_func_save: snapshots f's register bytes (not its masks, which no guest write
 *   changes), BAR decode state (mapped, address) and INTx state, and, when the transaction
 *   (or one it is nested in) has tables set, its MSI-X table and PBA. Call it before
 *   changing any of those inside the transaction; saving f again is a no-op.
 *   -ENOMEM with nothing changed. While f is saved, its BAR map/unmap events are held
 *   back (see pci_txn_end).
 * pci_txn_end: with err != 0, or when publishing its region changes fails (only when the
 *   transaction is the outermost one: inside a caller's bm_begin nothing publishes yet;
 *   a transaction that changed no region publishes nothing of its own), restores every
 *   saved function, rolls the core back to the savepoint, unlocks and returns the error;
 *   no event or hook has run. Otherwise, after the publication: for each saved function in
 *   the order saved, the map events of every BAR whose decoded placement differs from the
 *   snapshot (unmapped old, mapped new; index order), then its INTx line; then the effects
 *   of the guest writes made with pci_func_write (MSI/MSI-X messages their unmasking
 *   releases, the device's cfg_write hook), in order; then unlocks and returns 0.
 *   Transactions nest: an inner one that succeeds hands its snapshots and pending effects
 *   to the outer one, which alone publishes and runs them. A transaction opened by a hook
 *   while an outermost one runs its effects is outermost in turn: it publishes before
 *   telling anyone, as if no lock were held around it.
 * A function saved in a transaction must not be freed before the transaction ends.
 */
struct pci_func_snap;
struct pci_write;

struct pci_txn {
	struct bm_savepoint sp; /* the core's changes since pci_txn_begin */
	struct pci_txn *outer;  /* the transaction this one is nested in, if any */
	struct pci_func_snap *saved, **saved_tail; /* the functions saved, in order */
	struct pci_write *writes, **writes_tail;   /* guest writes whose effects follow */
	bool tables;    /* may change MSI-X tables and pending bits: set it after pci_txn_begin */
	unsigned level; /* the system's transaction depth inside it (1: outermost) */
};

int pci_txn_begin(bm_pci_host *h, struct pci_txn *t);
int pci_func_save(struct pci_txn *t, bm_pci_func *f);
int pci_txn_end(bm_pci_host *h, struct pci_txn *t, int err);
/* For pci_func_write: runs the effects of the guest write (reg, size, value) to f at the
 * transaction's successful end, if f has any (MSI, MSI-X or a cfg_write hook). -ENOMEM
 * before anything changed. */
int pci_txn_defer_write(struct pci_txn *t, bm_pci_func *f, unsigned reg, unsigned size,
                        uint32_t value);
/* Frees what the host's transactions keep between them. */
void pci_txn_host_free(bm_pci_host *h);

/* config.c: the register file. */
static inline bool pci_touches(unsigned reg, unsigned size, unsigned start, unsigned len)
{
	return (uint64_t)reg < (uint64_t)start + len && (uint64_t)start < (uint64_t)reg + size;
}
uint32_t pci_cfg_get(const bm_pci_func *f, unsigned reg, unsigned size);
void pci_cfg_set(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);
void pci_cfg_set_wmask(bm_pci_func *f, unsigned reg, unsigned size, uint32_t mask);
void pci_cfg_set_w1c(bm_pci_func *f, unsigned reg, unsigned size, uint32_t mask);
/* Records that [reg, reg + len) of f's registers changed, for the next publication. */
void pci_cfg_mark(bm_pci_func *f, unsigned reg, unsigned len);
/* Copies the changed registers of every function not saved in an open transaction to
 * their published copies. Allocates nothing, cannot fail. */
void pci_cfg_publish(bm_pci_host *h);
/* Takes f off the host's list of changed functions (it is leaving). */
void pci_cfg_forget(bm_pci_func *f);
bool pci_cfg_pub_read_slow(const bm_pci_func *f, unsigned reg, unsigned size, uint32_t *value);
/* Reads the published copy of f's registers, as pci_cfg_get does the registers (size 1, 2
 * or 4); false if writers kept changing it. Inline: it is most of a configuration read. */
static inline bool pci_cfg_pub_read(const bm_pci_func *f, unsigned reg, unsigned size,
                                    uint32_t *value)
{
	if (reg >= f->cfg_size || reg % 8 + size > 8)
		return pci_cfg_pub_read_slow(f, reg, size, value);
	const uint64_t *word = (const uint64_t *)(const void *)f->pub + reg / 8;
	unsigned seq = __atomic_load_n(&f->pub_seq, __ATOMIC_ACQUIRE);
	uint64_t w = __atomic_load_n(word, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if ((seq & 1) || __atomic_load_n(&f->pub_seq, __ATOMIC_RELAXED) != seq)
		return pci_cfg_pub_read_slow(f, reg, size, value);
	*value =
	    (uint32_t)(w >> (8 * (reg % 8))) & (size >= 4 ? UINT32_MAX : (1u << (8 * size)) - 1);
	return true;
}
/* Applies a guest write through the masks. */
void pci_cfg_guest_write(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);
/* A guest configuration read of an existing function, under the lock. */
uint32_t pci_func_read(bm_pci_func *f, unsigned reg, unsigned size);
/* A guest configuration write of an existing function inside transaction t: saves f, then
 * changes its registers and what follows from them in the map (BARs, bridge windows). What
 * cannot be taken back (messages, the device's hook) waits for the transaction's success.
 * An error (-ENOMEM) leaves the rollback to pci_txn_end. */
int pci_func_write(struct pci_txn *t, bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);
/* The part of a guest write that follows its success: MSI and MSI-X unmasking, the hook. */
void pci_func_write_effects(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);

/* bar.c */
int pci_bars_check(const struct bm_pci_func_desc *d);
int pci_bars_init(bm_pci_func *f, const struct bm_pci_func_desc *d);
/* Re-decodes every BAR and re-places those whose placement changed; inside a transaction,
 * with f saved. An error (-ENOMEM) may leave some BARs changed: the caller's transaction
 * rolls them back. */
int pci_bars_update(bm_pci_func *f);
void pci_bars_unmap_all(bm_pci_func *f);
void pci_bars_destroy(bm_pci_func *f);
bool pci_bar_write_touches(const bm_pci_func *f, unsigned reg, unsigned size);
unsigned pci_bar_reg(const bm_pci_func *f, unsigned index);

/* func.c */
unsigned pci_func_bus_number(const bm_pci_func *f);
void pci_slot_update_multi(bm_pci_bus *bus, unsigned dev);
void pci_func_destroy(bm_pci_func *f);
int pci_func_unplug(bm_pci_func *f);
/* Teardown of a whole bus: detach (under the lock), then release after readers left. */
void pci_bus_detach_funcs(bm_pci_bus *bus);
void pci_bus_release_funcs(bm_pci_bus *bus);

/* host.c */
/* The buses ECAM covers: ecam_bus_count, or 0 for every bus from ecam_bus_first on. */
static inline unsigned pci_ecam_bus_count(const struct bm_pci_host_config *c)
{
	return c->ecam_bus_count ? c->ecam_bus_count : 256u - c->ecam_bus_first;
}
bm_pci_func *pci_route(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn);
void pci_emit(bm_pci_func *f, unsigned bar, uint64_t addr, bool mapped);

/* bridge.c */
int pci_bridge_init(bm_pci_func *f, const struct bm_pci_func_desc *d);
/* Re-places the windows after a write that may change them; errors as pci_bars_update. */
int pci_bridge_after_write(bm_pci_func *f, unsigned reg, unsigned size);
void pci_bridge_destroy(bm_pci_func *f);
int pci_bus_init(bm_pci_bus *bus, bm_pci_host *h, bm_pci_func *bridge, const char *mem_name,
                 const char *io_name);
void pci_bus_destroy(bm_pci_bus *bus);

/* cap.c */
int pci_cap_add(bm_pci_func *f, const struct bm_pci_cap_desc *cap, unsigned *offset);

/* msi.c, msix.c */
/* MSI and MSI-X capability registers (offsets from the capability) and table layout. */
#define MSI_CTRL_MMC_SHIFT 1
#define MSI_CTRL_MME_SHIFT 4
#define MSIX_CAP_LEN       12
#define MSIX_ENTRY_DWORDS  4
#define MSIX_VECTOR_CTRL   3 /* dword index in an entry */
/* 64-bit words of an MSI-X pending-bit array. */
static inline size_t pci_msix_pba_words(unsigned nvec)
{
	return ((size_t)nvec + 63) / 64;
}
/* The base-2 logarithm of x, rounded down; 0 for 0. MSI's vector counts are powers of 2. */
static inline unsigned pci_log2u(unsigned x)
{
	unsigned n = 0;
	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}
void pci_msi_after_write(bm_pci_func *f, unsigned reg, unsigned size);
bool pci_msi_enabled(const bm_pci_func *f);
int pci_msi_notify(bm_pci_func *f, unsigned vector);
void pci_msix_after_write(bm_pci_func *f, unsigned reg, unsigned size);
bool pci_msix_enabled(const bm_pci_func *f);
int pci_msix_notify(bm_pci_func *f, unsigned vector);
void pci_msix_destroy(bm_pci_func *f);
void pci_msi_deliver(bm_pci_func *f, uint64_t addr, uint32_t data);

/* intx.c */
void pci_intx_update(bm_pci_func *f);

#endif
