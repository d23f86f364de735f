/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Transactions of the PCI layer (the API is described in pci_internal.h).
 *
 * A guest configuration write changes register bytes, then makes several core changes:
 * BAR moves, bridge windows. Any of them, or the publication at the end, may run out of
 * memory. So each function is snapshotted before its first change, the core keeps undo
 * records from a savepoint on, and a failure puts the snapshots back and rolls the core
 * back: the call fails with the registers, the map and the published view as before.
 *
 * What cannot be taken back waits for success: telling the map observer and the device's
 * bar_map hook, the INTx line at the host, MSI and MSI-X messages, the device's cfg_write
 * hook. The map events are not queued but worked out at the end, per BAR, from the
 * snapshot and the state now: for one write that is exactly the "unmapped old, mapped new"
 * pair pci_bars_update makes, and it needs no memory after the point of no return.
 */
#include "pci_internal.h"
#include <stdlib.h>
#include <string.h>

struct pci_bar_state {
	bool mapped;
	uint64_t addr;
};

/* One function as it was when first saved in a transaction. */
struct pci_func_snap {
	struct pci_func_snap *next;     /* in its transaction's list, in the order saved */
	struct pci_func_snap *shadowed; /* f's snapshot in an outer transaction, if any */
	struct pci_txn *owner;
	bm_pci_func *f;
	struct pci_bar_state bars[PCI_NUM_SLOTS];
	struct pci_bar_state now[PCI_NUM_SLOTS]; /* at success, before any hook ran */
	bool intx_level, intx_out;
	/* Copies, in the same allocation after the structure. */
	uint64_t *pba;
	uint32_t *table;
	uint8_t *cfg;
	size_t npba, ntable;
	size_t bytes; /* allocated */
};

/* A guest write whose effects run at the transaction's success. */
struct pci_write {
	struct pci_write *next;
	bm_pci_func *f;
	unsigned reg, size;
	uint32_t value;
};

int pci_txn_begin(bm_pci_host *h, struct pci_txn *t)
{
	int err = pci_begin(h);
	if (err)
		return err;
	*t = (struct pci_txn){.outer = h->txn, .level = bm_transaction_depth(h->sys)};
	t->saved_tail = &t->saved;
	t->writes_tail = &t->writes;
	/* Cannot fail: the lock is held inside a transaction. */
	err = bm_savepoint_open(h->sys, &t->sp);
	if (err) {
		pci_commit(h);
		return err;
	}
	h->txn = t;
	return 0;
}

/* ---- snapshots ---- */

static size_t pba_words(const bm_pci_func *f)
{
	return f->msix.table ? pci_msix_pba_words(f->msix.nvec) : 0;
}

static size_t table_dwords(const bm_pci_func *f)
{
	return f->msix.table ? (size_t)f->msix.nvec * MSIX_ENTRY_DWORDS : 0;
}

/* Whether t, or a transaction it is nested in, may change MSI-X tables: a guest write
 * cannot (only MMIO to the table, and the unmasking that follows success, change them). */
static bool changes_tables(const struct pci_txn *t)
{
	for (; t; t = t->outer)
		if (t->tables)
			return true;
	return false;
}

int pci_func_save(struct pci_txn *t, bm_pci_func *f)
{
	if (f->snap && f->snap->owner == t)
		return 0;
	bool tables = changes_tables(t);
	size_t npba = tables ? pba_words(f) : 0, ntable = tables ? table_dwords(f) : 0;
	/* The structure's size is a multiple of 8, so the 64-bit words come first. */
	size_t bytes = sizeof(struct pci_func_snap) + npba * sizeof(uint64_t) +
	               ntable * sizeof(uint32_t) + f->cfg_size;
	struct pci_func_snap *s = f->host->spare;
	if (s && s->bytes >= bytes) {
		f->host->spare = NULL;
	} else {
		s = malloc(bytes);
		if (!s)
			return -ENOMEM;
		s->bytes = bytes;
	}
	s->next = NULL;
	s->shadowed = f->snap;
	s->owner = t;
	s->f = f;
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++)
		s->bars[i] = (struct pci_bar_state){f->bars[i].mapped, f->bars[i].mapped_addr};
	s->intx_level = f->intx_level;
	s->intx_out = f->intx_out;
	s->npba = npba;
	s->ntable = ntable;
	s->pba = (uint64_t *)(s + 1);
	s->table = (uint32_t *)(s->pba + npba);
	s->cfg = (uint8_t *)(s->table + ntable);
	if (npba)
		memcpy(s->pba, f->msix.pba, npba * sizeof(uint64_t));
	if (ntable)
		memcpy(s->table, f->msix.table, ntable * sizeof(uint32_t));
	memcpy(s->cfg, f->cfg, f->cfg_size);
	f->snap = s;
	*t->saved_tail = s;
	t->saved_tail = &s->next;
	return 0;
}

static void restore(const struct pci_func_snap *s)
{
	bm_pci_func *f = s->f;
	memcpy(f->cfg, s->cfg, f->cfg_size);
	pci_cfg_mark(f, 0, f->cfg_size);
	if (s->npba)
		memcpy(f->msix.pba, s->pba, s->npba * sizeof(uint64_t));
	if (s->ntable)
		memcpy(f->msix.table, s->table, s->ntable * sizeof(uint32_t));
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++) {
		f->bars[i].mapped = s->bars[i].mapped;
		f->bars[i].mapped_addr = s->bars[i].addr;
	}
	f->intx_level = s->intx_level;
	f->intx_out = s->intx_out;
}

/* ---- deferred effects ---- */

int pci_txn_defer_write(struct pci_txn *t, bm_pci_func *f, unsigned reg, unsigned size,
                        uint32_t value)
{
	/* Most functions have no effect to defer: they cost nothing here. */
	if (!f->msi.off && !f->msix.off && !(f->ops && f->ops->cfg_write))
		return 0;
	struct pci_write *w = f->host->spare_write;
	if (w)
		f->host->spare_write = NULL;
	else if (!(w = malloc(sizeof(*w))))
		return -ENOMEM;
	*w = (struct pci_write){NULL, f, reg, size, value};
	*t->writes_tail = w;
	t->writes_tail = &w->next;
	return 0;
}

/* The events of every BAR whose decoded placement differs from the snapshot's. */
static void emit_changes(const struct pci_func_snap *s)
{
	bm_pci_func *f = s->f;
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++) {
		const struct pci_bar_state *was = &s->bars[i], *now = &s->now[i];
		if (!f->bars[i].size ||
		    (was->mapped == now->mapped && (!now->mapped || was->addr == now->addr)))
			continue;
		if (was->mapped)
			pci_emit(f, i, was->addr, false);
		if (now->mapped)
			pci_emit(f, i, now->addr, true);
	}
}

/* After success, in the order things happened: each saved function's map events and INTx
 * line, then each write's effects. Hooks may start transactions of their own, whose
 * events they report themselves: what this one reports is fixed before any hook runs. A
 * transaction that changed no region moved no BAR: it has no event to look for. */
static void run_effects(bm_pci_host *h, const struct pci_txn *t, bool moved)
{
	for (struct pci_func_snap *s = t->saved; s; s = s->next) {
		for (unsigned i = 0; moved && i < PCI_NUM_SLOTS; i++)
			s->now[i] =
			    (struct pci_bar_state){s->f->bars[i].mapped, s->f->bars[i].mapped_addr};
		s->f->snap = NULL; /* from now on its events go out as they happen */
	}
	/* Readers see the write before anyone is told of it. */
	pci_cfg_publish(h);
	for (const struct pci_func_snap *s = t->saved; s; s = s->next) {
		if (moved)
			emit_changes(s);
		pci_intx_update(s->f);
	}
	for (const struct pci_write *w = t->writes; w; w = w->next)
		pci_func_write_effects(w->f, w->reg, w->size, w->value);
}

/* Keeps one snapshot (and, in free_all, one write record) for the host's next
 * transaction: most save one function and defer one write, and a configuration write then
 * allocates nothing of its own. */
static void drop_snap(bm_pci_host *h, struct pci_func_snap *s)
{
	if (!h->spare) {
		h->spare = s;
	} else if (h->spare->bytes < s->bytes) {
		free(h->spare);
		h->spare = s;
	} else {
		free(s);
	}
}

static void free_all(bm_pci_host *h, struct pci_txn *t)
{
	for (struct pci_func_snap *s = t->saved, *next; s; s = next) {
		next = s->next;
		drop_snap(h, s);
	}
	for (struct pci_write *w = t->writes, *next; w; w = next) {
		next = w->next;
		if (!h->spare_write)
			h->spare_write = w;
		else
			free(w);
	}
}

/* An inner transaction succeeded: the outer one takes over its snapshots, except where it
 * has an older one of its own, and its pending effects, and alone decides. */
static void hand_over(struct pci_txn *t, struct pci_txn *outer)
{
	for (struct pci_func_snap *s = t->saved, *next; s; s = next) {
		next = s->next;
		if (s->shadowed && s->shadowed->owner == outer) {
			s->f->snap = s->shadowed;
			drop_snap(s->f->host, s);
			continue;
		}
		s->owner = outer;
		s->next = NULL;
		*outer->saved_tail = s;
		outer->saved_tail = &s->next;
	}
	if (t->writes) {
		*outer->writes_tail = t->writes;
		outer->writes_tail = t->writes_tail;
	}
}

void pci_txn_host_free(bm_pci_host *h)
{
	free(h->spare);
	h->spare = NULL;
	free(h->spare_write);
	h->spare_write = NULL;
}

int pci_txn_end(bm_pci_host *h, struct pci_txn *t, int err)
{
	/* Publishing with the savepoint still open keeps a failure reversible. Without a
	 * region change of its own there is nothing of this transaction's to publish; what
	 * others left pending publishes when it closes, and a failure there is not its. */
	bool moved = bm_savepoint_changed(h->sys, &t->sp);
	if (!err && !t->outer && moved)
		err = bm_publish_held(h->sys, bm_published_depth(h->sys) + 1);
	h->txn = t->outer;
	if (err) {
		for (struct pci_func_snap *s = t->saved; s; s = s->next) {
			restore(s);
			s->f->snap = s->shadowed;
		}
		bm_savepoint_rollback(h->sys, &t->sp);
		free_all(h, t);
	} else if (t->outer) {
		bm_savepoint_release(h->sys, &t->sp);
		hand_over(t, t->outer);
	} else {
		bm_savepoint_release(h->sys, &t->sp);
		/* Published (or nothing to), and nothing left to take back: a hook's write nested
		 * here publishes its own change before its events, which it could not if this
		 * level counted as someone else's open transaction. */
		unsigned below = bm_published_depth(h->sys);
		if (t->level == below + 1)
			bm_set_published_depth(h->sys, t->level);
		run_effects(h, t, moved);
		bm_set_published_depth(h->sys, below);
		free_all(h, t);
	}
	/* After a rollback this publishes the windows it dirtied, which render as before; after
	 * success, what the hooks changed. Neither is this call's change: a failure leaves them
	 * pending for the next commit. */
	pci_commit(h);
	return err;
}
