/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A function's register file: the bytes, a per-byte mask of guest-writable bits and one of
 * write-1-to-clear bits. Every guest write goes through the masks byte by byte, so an access
 * of any size at any offset behaves like the aligned dword accesses it is made of; bytes
 * past the configuration space read as 0xff and are never written.
 *
 * The guest read/write entry points here are also where a write fans out to what depends
 * on it, always in the same order: the registers, BARs and bridge windows first, as one
 * transaction that succeeds whole or is taken back whole (txn.c); then, only once it
 * succeeded, what cannot be taken back: map events, the INTx line, MSI and MSI-X messages
 * that unmasking releases, the device's hook.
 */
#include "../internal.h"
#include "pci_internal.h"

int pci_begin(bm_pci_host *h)
{
	return bm_begin(h->sys);
}

int pci_commit(bm_pci_host *h)
{
	pci_cfg_publish(h);
	return bm_commit(h->sys);
}

/* ---- the readers' copy ---- */

void pci_cfg_mark(bm_pci_func *f, unsigned reg, unsigned len)
{
	uint64_t end = (uint64_t)reg + len;
	unsigned hi = end < f->cfg_size ? (unsigned)end : f->cfg_size;
	if (reg >= hi)
		return;
	if (reg < f->dirty_lo)
		f->dirty_lo = reg;
	if (hi > f->dirty_hi)
		f->dirty_hi = hi;
	if (!f->dirty_listed) {
		f->dirty_listed = true;
		f->dirty_next = f->host->dirty;
		f->host->dirty = f;
	}
}

/* Copies the changed words; readers that overlap it see the count move and retry. */
static void publish_func(bm_pci_func *f)
{
	uint64_t *pub = (uint64_t *)(void *)f->pub;
	unsigned seq = f->pub_seq;
	bool open = false;
	for (unsigned at = f->dirty_lo & ~7u; at < f->dirty_hi; at += 8) {
		/* Byte i of a word is bits 8i..8i+7, whatever the host's byte order. */
		uint64_t w = 0;
		for (unsigned i = 0; i < 8; i++)
			w |= (uint64_t)f->cfg[at + i] << (8 * i);
		if (__atomic_load_n(&pub[at / 8], __ATOMIC_RELAXED) == w)
			continue;
		if (!open) {
			__atomic_store_n(&f->pub_seq, seq + 1, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_RELEASE);
			open = true;
		}
		__atomic_store_n(&pub[at / 8], w, __ATOMIC_RELAXED);
	}
	if (open)
		__atomic_store_n(&f->pub_seq, seq + 2, __ATOMIC_RELEASE);
	f->dirty_lo = f->cfg_size;
	f->dirty_hi = 0;
}

void pci_cfg_publish(bm_pci_host *h)
{
	bm_pci_func **link = &h->dirty;
	while (*link) {
		bm_pci_func *f = *link;
		/* A function saved in an open transaction publishes when that one succeeds: a
		 * reader must never see what a rollback takes back. */
		if (f->snap) {
			link = &f->dirty_next;
			continue;
		}
		publish_func(f);
		f->dirty_listed = false;
		*link = f->dirty_next;
	}
}

void pci_cfg_forget(bm_pci_func *f)
{
	if (!f->dirty_listed)
		return;
	for (bm_pci_func **link = &f->host->dirty; *link; link = &(*link)->dirty_next) {
		if (*link == f) {
			*link = f->dirty_next;
			break;
		}
	}
	f->dirty_listed = false;
}

/* The general case: a register across two words or past the end. */
static uint32_t pub_get(const bm_pci_func *f, unsigned reg, unsigned size)
{
	const uint64_t *pub = (const uint64_t *)(const void *)f->pub;
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t at = (uint64_t)reg + i;
		uint32_t b = 0xff;
		if (at < f->cfg_size)
			b = (uint8_t)(__atomic_load_n(&pub[at / 8], __ATOMIC_RELAXED) >>
			              (8 * (at % 8)));
		v |= b << (8 * i);
	}
	return v;
}

/* A writer holds the count odd for a handful of stores; one preempted there sends the
 * reader to the lock rather than spinning. */
#define PUB_TRIES 64

bool pci_cfg_pub_read_slow(const bm_pci_func *f, unsigned reg, unsigned size, uint32_t *value)
{
	for (unsigned t = 0; t < PUB_TRIES; t++) {
		unsigned seq = __atomic_load_n(&f->pub_seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		uint32_t v = pub_get(f, reg, size);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&f->pub_seq, __ATOMIC_RELAXED) == seq) {
			*value = v;
			return true;
		}
	}
	return false;
}

uint32_t pci_cfg_get(const bm_pci_func *f, unsigned reg, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size && i < 4; i++) {
		uint64_t at = (uint64_t)reg + i;
		uint32_t b = at < f->cfg_size ? f->cfg[at] : 0xff;
		v |= b << (8 * i);
	}
	return v;
}

static void set_bytes(uint8_t *arr, unsigned limit, unsigned reg, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size && i < 4; i++) {
		uint64_t at = (uint64_t)reg + i;
		if (at < limit)
			arr[at] = (uint8_t)(v >> (8 * i));
	}
}

void pci_cfg_set(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	set_bytes(f->cfg, f->cfg_size, reg, size, value);
	pci_cfg_mark(f, reg, size < 4 ? size : 4);
}

void pci_cfg_set_wmask(bm_pci_func *f, unsigned reg, unsigned size, uint32_t mask)
{
	set_bytes(f->wmask, f->cfg_size, reg, size, mask);
}

void pci_cfg_set_w1c(bm_pci_func *f, unsigned reg, unsigned size, uint32_t mask)
{
	set_bytes(f->w1cmask, f->cfg_size, reg, size, mask);
}

void pci_cfg_guest_write(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	for (unsigned i = 0; i < size && i < 4; i++) {
		uint64_t at = (uint64_t)reg + i;
		if (at >= f->cfg_size)
			break;
		uint8_t b = (uint8_t)(value >> (8 * i));
		uint8_t wm = f->wmask[at], w1c = f->w1cmask[at];
		f->cfg[at] = (uint8_t)(((f->cfg[at] & ~wm) | (b & wm)) & ~(b & w1c));
	}
	pci_cfg_mark(f, reg, size < 4 ? size : 4);
}

static uint32_t size_mask(unsigned size)
{
	return size >= 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
}

uint32_t pci_func_read(bm_pci_func *f, unsigned reg, unsigned size)
{
	uint32_t v = pci_cfg_get(f, reg, size);
	if (reg < f->cfg_size && f->ops && f->ops->cfg_read) {
		f->ops->cfg_read(f->opaque, f, reg, size, &v);
		v &= size_mask(size);
	}
	return v;
}

static bool touches_command(unsigned reg, unsigned size)
{
	return pci_touches(reg, size, PCI_COMMAND, 2);
}

int pci_func_write(struct pci_txn *t, bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	if (reg >= f->cfg_size)
		return 0;
	int err = pci_func_save(t, f);
	if (!err)
		err = pci_txn_defer_write(t, f, reg, size, value & size_mask(size));
	if (err)
		return err;
	pci_cfg_guest_write(f, reg, size, value);
	if (touches_command(reg, size) || pci_bar_write_touches(f, reg, size))
		err = pci_bars_update(f);
	if (!err && f->bridge)
		err = pci_bridge_after_write(f, reg, size);
	return err;
}

/* The INTx line is brought up to date for every saved function by the transaction. */
void pci_func_write_effects(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	pci_msi_after_write(f, reg, size);
	pci_msix_after_write(f, reg, size);
	if (f->ops && f->ops->cfg_write)
		f->ops->cfg_write(f->opaque, f, reg, size, value);
}

static bool valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4;
}

int bm_pci_func_cfg_read(bm_pci_func *f, unsigned reg, unsigned size, uint32_t *value)
{
	if (!f || !value || !valid_size(size))
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	*value = pci_func_read(f, reg, size);
	return pci_commit(f->host);
}

int bm_pci_func_cfg_write(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	if (!f || !valid_size(size))
		return -EINVAL;
	struct pci_txn t;
	int err = pci_txn_begin(f->host, &t);
	if (err)
		return err;
	return pci_txn_end(f->host, &t, pci_func_write(&t, f, reg, size, value));
}

/* Device-side access: the device model may be inside a hook (lock already held, nesting is
 * fine) or on its own thread. A failed lock (a listener context) still does the access,
 * which only touches this function's bytes. */
uint32_t bm_pci_func_cfg_get(bm_pci_func *f, unsigned reg, unsigned size)
{
	if (!f)
		return UINT32_MAX;
	int locked = pci_begin(f->host) == 0;
	uint32_t v = pci_cfg_get(f, reg, size > 4 ? 4 : size);
	if (locked)
		pci_commit(f->host);
	return v;
}

void bm_pci_func_cfg_set(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	if (!f)
		return;
	int locked = pci_begin(f->host) == 0;
	pci_cfg_set(f, reg, size, value);
	if (locked)
		pci_commit(f->host);
	else if (bm_system_owned(f->host->sys))
		pci_cfg_publish(f->host); /* a listener: its caller holds the lock */
}

void bm_pci_func_cfg_set_masks(bm_pci_func *f, unsigned reg, unsigned size, uint32_t wmask,
                               uint32_t w1cmask)
{
	if (!f)
		return;
	int locked = pci_begin(f->host) == 0;
	pci_cfg_set_wmask(f, reg, size, wmask);
	pci_cfg_set_w1c(f, reg, size, w1cmask);
	if (locked)
		pci_commit(f->host);
}
