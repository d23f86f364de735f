/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PCI-to-PCI bridges (type 1 headers). A bus's BARs are mapped into the bus's own
 * containers whatever the bridges above it say; what a bridge forwards is decided by three
 * aliases of its secondary containers (I/O, memory, prefetchable memory) placed in the
 * primary bus's containers at its windows. So a device's BAR events never depend on the
 * windows, only whether the CPU reaches the BAR does, as in QEMU.
 */
#include "pci_internal.h"
#include <stdio.h>
#include <stdlib.h>

#define WINDOW_PRIORITY 1 /* the same as BARs on the primary bus */

int pci_bus_init(bm_pci_bus *bus, bm_pci_host *h, bm_pci_func *bridge, const char *mem_name,
                 const char *io_name)
{
	bus->host = h;
	bus->bridge = bridge;
	int err = bm_region_new_container(h->sys, mem_name, BM_SIZE_ALL, &bus->mem);
	if (!err)
		err = bm_region_new_container(h->sys, io_name, BM_SIZE_ALL, &bus->io);
	return err;
}

void pci_bus_destroy(bm_pci_bus *bus)
{
	bm_region_destroy(bus->mem);
	bm_region_destroy(bus->io);
	bus->mem = bus->io = NULL;
}

static void init_registers(bm_pci_func *f, const struct bm_pci_func_desc *d)
{
	pci_cfg_set(f, PCI_SECONDARY_BUS, 1, d->secondary_bus);
	pci_cfg_set(f, PCI_SUBORDINATE_BUS, 1, d->subordinate_bus);
	pci_cfg_set_wmask(f, PCI_PRIMARY_BUS, 4, 0xffffffff);
	pci_cfg_set(f, PCI_IO_BASE, 1, d->bridge_io32 ? PCI_IO_RANGE_TYPE_32 : 0);
	pci_cfg_set(f, PCI_IO_LIMIT, 1, d->bridge_io32 ? PCI_IO_RANGE_TYPE_32 : 0);
	pci_cfg_set_wmask(f, PCI_IO_BASE, 2, 0xf0f0);
	pci_cfg_set_w1c(f, PCI_SEC_STATUS, 2, PCI_STATUS_ERR_BITS);
	pci_cfg_set_wmask(f, PCI_MEMORY_BASE, 4, 0xfff0fff0);
	pci_cfg_set(f, PCI_PREF_MEMORY_BASE, 2, d->bridge_pref64 ? PCI_PREF_RANGE_TYPE_64 : 0);
	pci_cfg_set(f, PCI_PREF_MEMORY_LIMIT, 2, d->bridge_pref64 ? PCI_PREF_RANGE_TYPE_64 : 0);
	pci_cfg_set_wmask(f, PCI_PREF_MEMORY_BASE, 4, 0xfff0fff0);
	if (d->bridge_pref64) {
		pci_cfg_set_wmask(f, PCI_PREF_BASE_UPPER32, 4, 0xffffffff);
		pci_cfg_set_wmask(f, PCI_PREF_LIMIT_UPPER32, 4, 0xffffffff);
	}
	if (d->bridge_io32)
		pci_cfg_set_wmask(f, PCI_IO_BASE_UPPER16, 4, 0xffffffff);
	pci_cfg_set_wmask(f, PCI_BRIDGE_CONTROL, 2, PCI_BRIDGE_CTL_WMASK);
	pci_cfg_set_w1c(f, PCI_BRIDGE_CONTROL, 2, PCI_BRIDGE_CTL_W1C);
}

static int make_aliases(bm_pci_func *f)
{
	static const char *const names[3] = {"io-window", "mem-window", "pref-window"};
	struct pci_bridge *br = f->bridge;
	for (unsigned k = 0; k < 3; k++) {
		char name[40];
		snprintf(name, sizeof(name), "%s/%s", f->name, names[k]);
		bm_region *target = k == BM_PCI_WINDOW_IO ? br->secondary->io : br->secondary->mem;
		int err = bm_region_new_alias(f->host->sys, name, target, 0, 1, &br->alias[k]);
		if (err)
			return err;
	}
	return 0;
}

int pci_bridge_init(bm_pci_func *f, const struct bm_pci_func_desc *d)
{
	f->bridge = calloc(1, sizeof(*f->bridge));
	if (!f->bridge)
		return -ENOMEM;
	bm_pci_bus *sec = calloc(1, sizeof(*sec));
	if (!sec)
		return -ENOMEM;
	f->bridge->secondary = sec;
	init_registers(f, d);
	char mem_name[32], io_name[32];
	snprintf(mem_name, sizeof(mem_name), "%s/mem", f->name);
	snprintf(io_name, sizeof(io_name), "%s/io", f->name);
	int err = pci_bus_init(sec, f->host, f, mem_name, io_name);
	return err ? err : make_aliases(f);
}

void pci_bridge_destroy(bm_pci_func *f)
{
	struct pci_bridge *br = f->bridge;
	for (unsigned k = 0; k < 3; k++) {
		bm_region_destroy(br->alias[k]);
		br->alias[k] = NULL;
	}
	if (br->secondary)
		pci_bus_destroy(br->secondary);
}

/* ---- windows ---- */

static uint64_t get(const bm_pci_func *f, unsigned reg, unsigned size)
{
	return pci_cfg_get(f, reg, size);
}

static struct bm_pci_window decode_io(const bm_pci_func *f)
{
	struct bm_pci_window w;
	w.base = (get(f, PCI_IO_BASE, 1) & 0xf0) << 8;
	w.last = ((get(f, PCI_IO_LIMIT, 1) & 0xf0) << 8) | 0xfff;
	if ((get(f, PCI_IO_BASE, 1) & 0xf) == PCI_IO_RANGE_TYPE_32) {
		w.base |= get(f, PCI_IO_BASE_UPPER16, 2) << 16;
		w.last |= get(f, PCI_IO_LIMIT_UPPER16, 2) << 16;
	}
	w.enabled = (get(f, PCI_COMMAND, 2) & PCI_COMMAND_IO) && w.base <= w.last;
	return w;
}

static struct bm_pci_window decode_mem(const bm_pci_func *f)
{
	struct bm_pci_window w;
	w.base = (get(f, PCI_MEMORY_BASE, 2) & 0xfff0) << 16;
	w.last = ((get(f, PCI_MEMORY_LIMIT, 2) & 0xfff0) << 16) | 0xfffff;
	w.enabled = (get(f, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) && w.base <= w.last;
	return w;
}

static struct bm_pci_window decode_pref(const bm_pci_func *f)
{
	struct bm_pci_window w;
	w.base = (get(f, PCI_PREF_MEMORY_BASE, 2) & 0xfff0) << 16;
	w.last = ((get(f, PCI_PREF_MEMORY_LIMIT, 2) & 0xfff0) << 16) | 0xfffff;
	if ((get(f, PCI_PREF_MEMORY_BASE, 2) & 0xf) == PCI_PREF_RANGE_TYPE_64) {
		w.base |= get(f, PCI_PREF_BASE_UPPER32, 4) << 32;
		w.last |= get(f, PCI_PREF_LIMIT_UPPER32, 4) << 32;
	}
	w.enabled = (get(f, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) && w.base <= w.last;
	return w;
}

static struct bm_pci_window decode(const bm_pci_func *f, enum bm_pci_window_kind k)
{
	switch (k) {
	case BM_PCI_WINDOW_IO:
		return decode_io(f);
	case BM_PCI_WINDOW_MEM:
		return decode_mem(f);
	default:
		return decode_pref(f);
	}
}

/* Re-places a window even when unchanged, which makes it the newest among its equal-
 * priority siblings, as QEMU's rebuild of a bridge's windows on such writes does. Inside a
 * transaction, a failure part way is rolled back by the caller's. */
static int place_window(bm_pci_func *f, enum bm_pci_window_kind k)
{
	bm_region *a = f->bridge->alias[k];
	struct bm_pci_window w = decode(f, k);
	int err = bm_region_parent(a) ? bm_region_del(a) : 0;
	if (err || !w.enabled)
		return err;
	uint64_t size = w.last - w.base + 1; /* 0 stands for 2^64, as does BM_SIZE_ALL */
	bm_region *parent = k == BM_PCI_WINDOW_IO ? f->bus->io : f->bus->mem;
	err = bm_region_set_alias_offset(a, w.base);
	if (!err)
		err = bm_region_resize(a, size ? size : BM_SIZE_ALL);
	if (!err)
		err = bm_region_add(parent, a, w.base, WINDOW_PRIORITY);
	return err;
}

int pci_bridge_after_write(bm_pci_func *f, unsigned reg, unsigned size)
{
	if (!pci_touches(reg, size, PCI_COMMAND, 2) && !pci_touches(reg, size, PCI_IO_BASE, 2) &&
	    !pci_touches(reg, size, PCI_MEMORY_BASE, 20) &&
	    !pci_touches(reg, size, PCI_BRIDGE_CONTROL, 2))
		return 0;
	int err = 0;
	for (unsigned k = 0; k < 3 && !err; k++)
		err = place_window(f, (enum bm_pci_window_kind)k);
	return err;
}

int bm_pci_bridge_window(bm_pci_func *f, enum bm_pci_window_kind kind, struct bm_pci_window *out)
{
	if (!f || !out || !f->bridge || (unsigned)kind > BM_PCI_WINDOW_PREF)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	*out = decode(f, kind);
	return pci_commit(f->host);
}
