/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Capability lists: the legacy list from the pointer at 0x34 (entries from 0x40 up) and the
 * extended list of 4 KiB functions from 0x100. A capability is bytes plus the masks of the
 * bits a guest may write or clear; the list links are read-only.
 */
#include "pci_internal.h"
#include <string.h>

#define CAP_FIRST    PCI_STD_HEADER_SIZEOF
#define CAP_MAX_WALK 48  /* (256 - 64) / 4: a list cannot hold more */
#define EXT_MAX_WALK 960 /* (4096 - 256) / 4 */

static unsigned align4(unsigned x)
{
	return (x + 3u) & ~3u;
}

static void copy_cap(bm_pci_func *f, unsigned off, const struct bm_pci_cap_desc *c)
{
	for (size_t i = 0; i < c->len; i++) {
		f->cfg[off + i] = c->data ? c->data[i] : 0;
		f->wmask[off + i] = c->wmask ? c->wmask[i] : 0;
		f->w1cmask[off + i] = c->w1cmask ? c->w1cmask[i] : 0;
	}
}

static void clear_masks(bm_pci_func *f, unsigned off, unsigned n)
{
	memset(f->wmask + off, 0, n);
	memset(f->w1cmask + off, 0, n);
}

int pci_cap_add(bm_pci_func *f, const struct bm_pci_cap_desc *c, unsigned *offset)
{
	if (c->len < 2 || c->id > 0xff)
		return -EINVAL;
	unsigned off = align4(f->cap_free);
	if (c->len > BM_PCI_CFG_SIZE || off + c->len > BM_PCI_CFG_SIZE)
		return -ENOSPC;
	copy_cap(f, off, c);
	f->cfg[off] = (uint8_t)c->id;
	f->cfg[off + 1] = 0;
	clear_masks(f, off, 2);
	if (f->cap_last)
		f->cfg[f->cap_last + 1] = (uint8_t)off;
	else
		f->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	f->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	pci_cfg_mark(f, 0, BM_PCI_CFG_SIZE);
	f->cap_last = off;
	f->cap_free = off + (unsigned)c->len;
	if (offset)
		*offset = off;
	return 0;
}

static int ext_cap_add(bm_pci_func *f, const struct bm_pci_cap_desc *c, unsigned *offset)
{
	if (f->cfg_size < BM_PCI_CFG_EXTSIZE)
		return -ENOTSUP;
	if (c->len < 4 || c->version > 0xf)
		return -EINVAL;
	unsigned off = align4(f->ext_free);
	if (c->len > BM_PCI_CFG_EXTSIZE || off + c->len > BM_PCI_CFG_EXTSIZE)
		return -ENOSPC;
	copy_cap(f, off, c);
	pci_cfg_set(f, off, 4, (uint32_t)c->id | (uint32_t)c->version << 16);
	clear_masks(f, off, 4);
	if (f->ext_last) {
		uint32_t h = pci_cfg_get(f, f->ext_last, 4);
		pci_cfg_set(f, f->ext_last, 4, (h & 0x000fffffu) | (uint32_t)off << 20);
	}
	f->ext_last = off;
	f->ext_free = off + (unsigned)c->len;
	if (offset)
		*offset = off;
	return 0;
}

int bm_pci_func_add_cap(bm_pci_func *f, const struct bm_pci_cap_desc *cap, unsigned *offset)
{
	if (!f || !cap)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	err = pci_cap_add(f, cap, offset);
	int cerr = pci_commit(f->host);
	return err ? err : cerr;
}

int bm_pci_func_add_ext_cap(bm_pci_func *f, const struct bm_pci_cap_desc *cap, unsigned *offset)
{
	if (!f || !cap)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	err = ext_cap_add(f, cap, offset);
	int cerr = pci_commit(f->host);
	return err ? err : cerr;
}

/* The walks are bounded: a device model may write the links itself. */
static unsigned find_legacy(const bm_pci_func *f, uint16_t id)
{
	unsigned p = f->cfg[PCI_CAPABILITY_LIST] & 0xfcu;
	for (unsigned n = 0; n < CAP_MAX_WALK && p >= CAP_FIRST; n++) {
		if (f->cfg[p] == id)
			return p;
		p = f->cfg[p + 1] & 0xfcu;
	}
	return 0;
}

static unsigned find_ext(const bm_pci_func *f, uint16_t id)
{
	if (f->cfg_size < BM_PCI_CFG_EXTSIZE)
		return 0;
	unsigned p = PCI_CFG_SPACE_SIZE;
	for (unsigned n = 0; n < EXT_MAX_WALK && p >= PCI_CFG_SPACE_SIZE; n++) {
		uint32_t h = pci_cfg_get(f, p, 4);
		if (h == 0)
			break;
		if ((h & 0xffff) == id)
			return p;
		p = (h >> 20) & 0xffcu;
	}
	return 0;
}

unsigned bm_pci_func_find_cap(bm_pci_func *f, uint16_t id, bool ext)
{
	if (!f)
		return 0;
	int locked = pci_begin(f->host) == 0;
	unsigned off = ext ? find_ext(f, id) : find_legacy(f, id);
	if (locked)
		pci_commit(f->host);
	return off;
}
