/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Functions: creation from a descriptor (the header's fixed values and masks), plugging
 * into a bus slot, unplugging, and the accessors a tool or an allocator walks them with.
 */
#include "pci_internal.h"
#include <stdio.h>
#include <stdlib.h>

unsigned pci_func_bus_number(const bm_pci_func *f)
{
	return bm_pci_bus_number(f->bus);
}

/* Bit 7 of the header type says the slot holds more than one function. Software reads it
 * in function 0 only; QEMU sets it elsewhere only when a device asks, and so do we. */
void pci_slot_update_multi(bm_pci_bus *bus, unsigned dev)
{
	unsigned n = 0;
	for (unsigned fn = 0; fn < 8; fn++)
		n += bus->funcs[PCI_DEVFN(dev, fn)] != NULL;
	for (unsigned fn = 0; fn < 8; fn++) {
		bm_pci_func *f = bus->funcs[PCI_DEVFN(dev, fn)];
		if (!f)
			continue;
		bool multi = f->multifunction || (fn == 0 && n > 1);
		uint8_t ht = f->cfg[PCI_HEADER_TYPE] & (uint8_t)~PCI_HEADER_TYPE_MFD;
		f->cfg[PCI_HEADER_TYPE] = (uint8_t)(ht | (multi ? PCI_HEADER_TYPE_MFD : 0));
		pci_cfg_mark(f, PCI_HEADER_TYPE, 1);
	}
}

static int check_desc(const bm_pci_bus *bus, unsigned dev, unsigned fn,
                      const struct bm_pci_func_desc *d)
{
	if (dev > 31 || fn > 7 || d->vendor_id == 0xffff || d->intx_pin > 4 ||
	    d->class_code > 0xffffff ||
	    (d->header != BM_PCI_HEADER_ENDPOINT && d->header != BM_PCI_HEADER_BRIDGE))
		return -EINVAL;
	if (bus->funcs[PCI_DEVFN(dev, fn)])
		return -EEXIST;
	return pci_bars_check(d);
}

/* The registers every header has, and their masks. */
static void init_common(bm_pci_func *f, const struct bm_pci_func_desc *d)
{
	pci_cfg_set(f, PCI_VENDOR_ID, 2, d->vendor_id);
	pci_cfg_set(f, PCI_DEVICE_ID, 2, d->device_id);
	pci_cfg_set(f, PCI_REVISION_ID, 1, d->revision);
	pci_cfg_set(f, PCI_CLASS_PROG, 3, d->class_code);
	pci_cfg_set(f, PCI_HEADER_TYPE, 1, d->header);
	pci_cfg_set(f, PCI_INTERRUPT_PIN, 1, d->intx_pin);
	pci_cfg_set_wmask(f, PCI_COMMAND, 2,
	                  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
	                      PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	pci_cfg_set_w1c(f, PCI_STATUS, 2, PCI_STATUS_ERR_BITS);
	pci_cfg_set_wmask(f, PCI_CACHE_LINE_SIZE, 1, 0xff);
	pci_cfg_set_wmask(f, PCI_INTERRUPT_LINE, 1, 0xff);
	if (d->header == BM_PCI_HEADER_ENDPOINT) {
		pci_cfg_set(f, PCI_SUBSYSTEM_VENDOR_ID, 2, d->subsystem_vendor_id);
		pci_cfg_set(f, PCI_SUBSYSTEM_ID, 2, d->subsystem_id);
	}
}

static int func_alloc(bm_pci_bus *bus, unsigned dev, unsigned fn, const struct bm_pci_func_desc *d,
                      bm_pci_func **out)
{
	bm_pci_func *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->host = bus->host;
	f->bus = bus;
	f->dev = (uint8_t)dev;
	f->fn = (uint8_t)fn;
	f->type1 = d->header == BM_PCI_HEADER_BRIDGE;
	f->multifunction = d->multifunction;
	f->cfg_size = d->extended ? BM_PCI_CFG_EXTSIZE : BM_PCI_CFG_SIZE;
	/* The published copy last: at a multiple of the size, it is as aligned as calloc's. */
	f->cfg = calloc(4, f->cfg_size);
	if (!f->cfg) {
		free(f);
		return -ENOMEM;
	}
	f->wmask = f->cfg + f->cfg_size;
	f->w1cmask = f->wmask + f->cfg_size;
	f->pub = f->w1cmask + f->cfg_size;
	f->dirty_lo = f->cfg_size;
	snprintf(f->name, sizeof(f->name), "%02x:%02x.%x", pci_func_bus_number(f) & 0xff, dev, fn);
	f->cap_free = PCI_STD_HEADER_SIZEOF;
	f->ext_free = d->extended ? PCI_CFG_SPACE_SIZE : 0;
	f->ops = d->ops;
	f->opaque = d->opaque;
	*out = f;
	return 0;
}

/* Removes f (and, for a bridge, everything behind it) from the map, and from its bus if
 * unlink (functions behind a departing bridge stay linked so func_release finds them).
 * Unmap events go out; memory stays until func_release, after readers are gone. */
static void func_detach(bm_pci_func *f, bool unlink)
{
	if (f->bridge && f->bridge->secondary) {
		bm_pci_bus *sec = f->bridge->secondary;
		for (unsigned i = 0; i < PCI_MAX_DEVFN; i++)
			if (sec->funcs[i])
				func_detach(sec->funcs[i], false);
	}
	pci_bars_unmap_all(f);
	if (f->intx_level) {
		f->intx_level = false;
		pci_intx_update(f);
	}
	pci_cfg_forget(f);
	if (unlink && f->bus->funcs[PCI_DEVFN(f->dev, f->fn)] == f) {
		__atomic_store_n(&f->bus->funcs[PCI_DEVFN(f->dev, f->fn)], NULL, __ATOMIC_RELAXED);
		pci_slot_update_multi(f->bus, f->dev);
	}
	if (f->host->host_bridge == f)
		f->host->host_bridge = NULL;
	pci_msix_destroy(f);
	pci_bars_destroy(f);
	if (f->bridge)
		pci_bridge_destroy(f);
}

/* Frees a detached function and what was behind it. */
static void func_release(bm_pci_func *f)
{
	if (f->bridge) {
		bm_pci_bus *sec = f->bridge->secondary;
		if (sec) {
			for (unsigned i = 0; i < PCI_MAX_DEVFN; i++)
				if (sec->funcs[i])
					func_release(sec->funcs[i]);
			free(sec);
		}
		free(f->bridge);
	}
	free(f->msix.table);
	free(f->msix.pba);
	free(f->cfg);
	free(f);
}

void pci_func_destroy(bm_pci_func *f)
{
	func_detach(f, true);
	func_release(f);
}

void pci_bus_detach_funcs(bm_pci_bus *bus)
{
	for (unsigned i = 0; i < PCI_MAX_DEVFN; i++)
		if (bus->funcs[i])
			func_detach(bus->funcs[i], false);
}

void pci_bus_release_funcs(bm_pci_bus *bus)
{
	for (unsigned i = 0; i < PCI_MAX_DEVFN; i++) {
		if (bus->funcs[i])
			func_release(bus->funcs[i]);
		__atomic_store_n(&bus->funcs[i], NULL, __ATOMIC_RELAXED);
	}
}

static int func_build(bm_pci_func *f, const struct bm_pci_func_desc *d)
{
	init_common(f, d);
	int err = pci_bars_init(f, d);
	if (!err && d->header == BM_PCI_HEADER_BRIDGE)
		err = pci_bridge_init(f, d);
	return err;
}

int bm_pci_func_new(bm_pci_bus *bus, unsigned dev, unsigned fn, const struct bm_pci_func_desc *d,
                    bm_pci_func **out)
{
	if (!bus || !d || !out)
		return -EINVAL;
	bm_pci_host *h = bus->host;
	int err = pci_begin(h);
	if (err)
		return err;
	bm_pci_func *f = NULL;
	err = check_desc(bus, dev, fn, d);
	if (!err)
		err = func_alloc(bus, dev, fn, d, &f);
	if (!err)
		err = func_build(f, d);
	if (err && f) {
		pci_func_destroy(f);
		f = NULL;
	}
	if (f) {
		/* Lock-free readers find f from here on: its registers go out first. */
		pci_cfg_publish(h);
		__atomic_store_n(&bus->funcs[PCI_DEVFN(dev, fn)], f, __ATOMIC_RELEASE);
		pci_slot_update_multi(bus, dev);
		*out = f;
	}
	int cerr = pci_commit(h);
	return err ? err : cerr;
}

/* Called by the host's own teardown too, which has already checked it may wait. */
int pci_func_unplug(bm_pci_func *f)
{
	bm_pci_host *h = f->host;
	int err = pci_begin(h);
	if (err)
		return err;
	func_detach(f, true);
	err = pci_commit(h);
	/* Dispatches that found f's regions before they left may still run in them. */
	bm_synchronize(h->sys);
	func_release(f);
	return err;
}

int bm_pci_func_free(bm_pci_func *f)
{
	if (!f)
		return 0;
	/* Refuse up front where waiting for readers would wait for ourselves. */
	int err = bm_synchronize(f->host->sys);
	if (err)
		return err;
	return pci_func_unplug(f);
}

/* ---- accessors ---- */

void bm_pci_func_bdf(const bm_pci_func *f, uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
	if (!f)
		return;
	if (bus)
		*bus = (uint8_t)pci_func_bus_number(f);
	if (dev)
		*dev = f->dev;
	if (fn)
		*fn = f->fn;
}

const char *bm_pci_func_name(const bm_pci_func *f)
{
	return f ? f->name : NULL;
}

bm_pci_bus *bm_pci_func_bus(const bm_pci_func *f)
{
	return f ? f->bus : NULL;
}

bm_pci_host *bm_pci_func_host(const bm_pci_func *f)
{
	return f ? f->host : NULL;
}

bool bm_pci_func_is_bridge(const bm_pci_func *f)
{
	return f && f->bridge;
}

void *bm_pci_func_opaque(const bm_pci_func *f)
{
	return f ? f->opaque : NULL;
}

bm_pci_bus *bm_pci_func_secondary_bus(const bm_pci_func *f)
{
	return f && f->bridge ? f->bridge->secondary : NULL;
}

bm_pci_func *bm_pci_bus_bridge(const bm_pci_bus *bus)
{
	return bus ? bus->bridge : NULL;
}

unsigned bm_pci_bus_number(const bm_pci_bus *bus)
{
	if (!bus || !bus->bridge)
		return 0;
	return bus->bridge->cfg[PCI_SECONDARY_BUS];
}

bm_region *bm_pci_bus_mem_region(const bm_pci_bus *bus)
{
	return bus ? bus->mem : NULL;
}

bm_region *bm_pci_bus_io_region(const bm_pci_bus *bus)
{
	return bus ? bus->io : NULL;
}

static bm_pci_func *first_from(const bm_pci_bus *b, unsigned devfn)
{
	for (unsigned i = devfn; i < PCI_MAX_DEVFN; i++)
		if (b->funcs[i])
			return b->funcs[i];
	return NULL;
}

static bm_pci_func *next_locked(bm_pci_host *h, bm_pci_func *prev)
{
	if (!prev)
		return first_from(&h->root, 0);
	if (prev->bridge) {
		bm_pci_func *c = first_from(prev->bridge->secondary, 0);
		if (c)
			return c;
	}
	for (bm_pci_func *f = prev; f; f = f->bus->bridge) {
		bm_pci_func *n = first_from(f->bus, PCI_DEVFN(f->dev, f->fn) + 1u);
		if (n)
			return n;
	}
	return NULL;
}

bm_pci_func *bm_pci_func_next(bm_pci_host *h, bm_pci_func *prev)
{
	if (!h)
		return NULL;
	int locked = pci_begin(h) == 0;
	bm_pci_func *n = next_locked(h, prev);
	if (locked)
		pci_commit(h);
	return n;
}

bm_pci_func *bm_pci_func_find(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn)
{
	if (!h || bus > 255 || dev > 31 || fn > 7)
		return NULL;
	int locked = pci_begin(h) == 0;
	bm_pci_func *f = pci_route(h, bus, dev, fn);
	if (locked)
		pci_commit(h);
	return f;
}
