/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MSI-X: the capability, and the vector table and pending-bit array as overlays inside
 * their BARs. The overlays are one priority above the BAR's contents, so a guest access to
 * the table reaches busmap's table even where the device's own region covers the same
 * offsets: the device model never sees table accesses and needs no special case for them.
 */
#include "pci_internal.h"
#include <stdio.h>
#include <stdlib.h>

#define OVERLAY_PRIORITY 1 /* above the BAR's contents at 0 */

static uint64_t table_len(unsigned nvec)
{
	return (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE;
}

static uint64_t pba_len(unsigned nvec)
{
	return (uint64_t)pci_msix_pba_words(nvec) * 8;
}

static uint16_t ctrl(const bm_pci_func *f)
{
	return (uint16_t)pci_cfg_get(f, f->msix.off + PCI_MSIX_FLAGS, 2);
}

bool pci_msix_enabled(const bm_pci_func *f)
{
	return f->msix.off && (ctrl(f) & PCI_MSIX_FLAGS_ENABLE);
}

static bool entry_masked(const bm_pci_func *f, unsigned v)
{
	return (ctrl(f) & PCI_MSIX_FLAGS_MASKALL) ||
	       (f->msix.table[v * MSIX_ENTRY_DWORDS + MSIX_VECTOR_CTRL] &
	        PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static void send(bm_pci_func *f, unsigned v)
{
	const uint32_t *e = &f->msix.table[v * MSIX_ENTRY_DWORDS];
	pci_msi_deliver(f, (uint64_t)e[1] << 32 | e[0], e[2]);
}

static bool pending(const bm_pci_func *f, unsigned v)
{
	return f->msix.pba[v / 64] >> (v % 64) & 1;
}

static void set_pending(bm_pci_func *f, unsigned v, bool on)
{
	uint64_t bit = 1ull << (v % 64);
	f->msix.pba[v / 64] = on ? f->msix.pba[v / 64] | bit : f->msix.pba[v / 64] & ~bit;
}

/* Sends vector v if it was held pending and nothing masks it any more. */
static void flush(bm_pci_func *f, unsigned v)
{
	if (!pending(f, v) || !pci_msix_enabled(f) || entry_masked(f, v))
		return;
	set_pending(f, v, false);
	send(f, v);
}

int pci_msix_notify(bm_pci_func *f, unsigned v)
{
	if (!f->msix.off || v >= f->msix.nvec)
		return -EINVAL;
	if (!pci_msix_enabled(f))
		return -ENOTCONN;
	if (entry_masked(f, v)) {
		set_pending(f, v, true);
		return 1;
	}
	send(f, v);
	return 0;
}

void pci_msix_after_write(bm_pci_func *f, unsigned reg, unsigned size)
{
	if (!f->msix.off || !pci_touches(reg, size, f->msix.off + PCI_MSIX_FLAGS, 2))
		return;
	for (unsigned v = 0; v < f->msix.nvec; v++)
		flush(f, v);
}

/* ---- table and PBA regions: dword units, the core adapts other sizes ---- */

static int table_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	bm_pci_func *f = opaque;
	int locked = pci_begin(f->host) == 0;
	*value = f->msix.table[off / 4];
	if (locked)
		pci_commit(f->host);
	return 0;
}

static int table_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	bm_pci_func *f = opaque;
	int locked = pci_begin(f->host) == 0;
	unsigned v = (unsigned)(off / PCI_MSIX_ENTRY_SIZE),
	         dw = (unsigned)(off / 4 % MSIX_ENTRY_DWORDS);
	if (dw == MSIX_VECTOR_CTRL)
		value &= PCI_MSIX_ENTRY_CTRL_MASKBIT; /* the other bits are reserved, read as 0 */
	f->msix.table[off / 4] = (uint32_t)value;
	if (dw == MSIX_VECTOR_CTRL)
		flush(f, v);
	if (locked)
		pci_commit(f->host);
	return 0;
}

static int pba_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	bm_pci_func *f = opaque;
	int locked = pci_begin(f->host) == 0;
	*value = (uint32_t)(f->msix.pba[off / 8] >> (8 * (off & 4)));
	if (locked)
		pci_commit(f->host);
	return 0;
}

static const struct bm_region_ops table_ops = {
    .read = table_read, .write = table_write, .impl_sizes = BM_ACCESS_4};
/* Read-only to the guest: a NULL write drops the value. */
static const struct bm_region_ops pba_ops = {.read = pba_read, .impl_sizes = BM_ACCESS_4};

static bool is_mem_bar(const bm_pci_func *f, unsigned bar)
{
	return bar < BM_PCI_NUM_BARS &&
	       (f->bars[bar].type == BM_PCI_BAR_MEM32 || f->bars[bar].type == BM_PCI_BAR_MEM64);
}

static bool fits(const bm_pci_func *f, unsigned bar, uint32_t off, uint64_t len)
{
	return is_mem_bar(f, bar) && !(off & 7) && off < f->bars[bar].size &&
	       len <= f->bars[bar].size - off;
}

static int check(const bm_pci_func *f, unsigned n, unsigned tbar, uint32_t toff, unsigned pbar,
                 uint32_t poff)
{
	if (n == 0 || n > 2048 || !fits(f, tbar, toff, table_len(n)) ||
	    !fits(f, pbar, poff, pba_len(n)))
		return -EINVAL;
	bool overlap = tbar == pbar && toff < poff + pba_len(n) && poff < toff + table_len(n);
	return overlap ? -EINVAL : 0;
}

static int make_overlay(bm_pci_func *f, const char *what, uint64_t len,
                        const struct bm_region_ops *ops, unsigned bar, uint32_t off,
                        bm_region **out)
{
	char name[40];
	snprintf(name, sizeof(name), "%s/msix-%s", f->name, what);
	int err = bm_region_new_io(f->host->sys, name, len, ops, f, out);
	if (!err)
		err = bm_region_add(f->bars[bar].container, *out, off, OVERLAY_PRIORITY);
	return err;
}

static int build(bm_pci_func *f, unsigned n, unsigned tbar, uint32_t toff, unsigned pbar,
                 uint32_t poff)
{
	struct pci_msix *m = &f->msix;
	m->table = calloc(n, PCI_MSIX_ENTRY_SIZE);
	m->pba = calloc(pci_msix_pba_words(n), sizeof(uint64_t));
	if (!m->table || !m->pba)
		return -ENOMEM;
	for (unsigned v = 0; v < n; v++)
		m->table[v * MSIX_ENTRY_DWORDS + MSIX_VECTOR_CTRL] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	m->nvec = n;
	m->table_bar = tbar;
	m->table_off = toff;
	m->pba_bar = pbar;
	m->pba_off = poff;
	int err = make_overlay(f, "table", table_len(n), &table_ops, tbar, toff, &m->table_region);
	if (!err)
		err = make_overlay(f, "pba", pba_len(n), &pba_ops, pbar, poff, &m->pba_region);
	if (err)
		return err;
	uint8_t data[MSIX_CAP_LEN] = {0}, wmask[MSIX_CAP_LEN] = {0};
	data[PCI_MSIX_FLAGS] = (uint8_t)(n - 1);
	data[PCI_MSIX_FLAGS + 1] = (uint8_t)((n - 1) >> 8);
	wmask[PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	for (unsigned i = 0; i < 4; i++) {
		data[PCI_MSIX_TABLE + i] = (uint8_t)((toff | tbar) >> (8 * i));
		data[PCI_MSIX_PBA + i] = (uint8_t)((poff | pbar) >> (8 * i));
	}
	struct bm_pci_cap_desc c = {
	    .id = PCI_CAP_ID_MSIX, .data = data, .len = MSIX_CAP_LEN, .wmask = wmask};
	return pci_cap_add(f, &c, &m->off);
}

void pci_msix_destroy(bm_pci_func *f)
{
	struct pci_msix *m = &f->msix;
	bm_region_destroy(m->table_region);
	bm_region_destroy(m->pba_region);
	m->table_region = m->pba_region = NULL;
	m->off = 0;
}

int bm_pci_func_add_msix(bm_pci_func *f, unsigned nvectors, unsigned table_bar,
                         uint32_t table_offset, unsigned pba_bar, uint32_t pba_offset,
                         unsigned *offset)
{
	if (!f)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	if (f->msix.table)
		err = -EEXIST;
	else
		err = check(f, nvectors, table_bar, table_offset, pba_bar, pba_offset);
	if (!err) {
		err = build(f, nvectors, table_bar, table_offset, pba_bar, pba_offset);
		if (err) {
			pci_msix_destroy(f);
			free(f->msix.table);
			free(f->msix.pba);
			f->msix = (struct pci_msix){0};
		}
	}
	if (!err && offset)
		*offset = f->msix.off;
	int cerr = pci_commit(f->host);
	return err ? err : cerr;
}
