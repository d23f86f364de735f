/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Programming a plan with the configuration writes a firmware makes, in its order: decoding
 * off on every function about to change, bus numbers, BARs (a 64-bit one low half first),
 * bridge windows, then the command register's enable bits. With decoding off first, no BAR
 * is ever mapped at a half-written or intermediate address, and the observer sees each BAR
 * leave its old place and arrive at its new one, nothing in between. All of it is one
 * transaction, so the map publishes once.
 */
#include "alloc_internal.h"

static int cfg_write(bm_pci_func *f, unsigned reg, unsigned size, uint32_t v)
{
	return bm_pci_func_cfg_write(f, reg, size, v);
}

/* The plan is only valid for the functions and BARs it was made from. */
static bool unchanged(const struct bm_pci_alloc_plan *p)
{
	size_t i = 0;
	for (bm_pci_func *f = bm_pci_func_next(p->host, NULL); f;
	     f = bm_pci_func_next(p->host, f)) {
		if (i >= p->nfuncs || p->funcs[i].f != f)
			return false;
		for (unsigned b = 0; b <= BM_PCI_ROM; b++) {
			struct bm_pci_bar_info bi;
			struct barsig now = {0};
			if (bm_pci_bar_info(f, b, &bi) == 0 && bi.type != BM_PCI_BAR_NONE)
				now = (struct barsig){bi.type, bi.size, bi.prefetchable};
			const struct barsig *was = &p->funcs[i].sig[b];
			if (now.type != was->type || now.size != was->size || now.pref != was->pref)
				return false;
		}
		i++;
	}
	return i == p->nfuncs;
}

/* What decoding a function needs once programmed. */
struct needs {
	bool touched; /* some register of it is about to be written */
	bool io, mem;
};

static struct needs needs_of(const struct bm_pci_alloc_plan *p, const struct afunc *af)
{
	struct needs n = {.touched = af->secondary != NO_INDEX};
	for (unsigned b = 0; b <= BM_PCI_ROM; b++) {
		size_t ii = af->bar_item[b];
		if (ii == NO_INDEX || !p->items[ii].placed)
			continue;
		n.touched = true;
		n.io |= p->items[ii].io;
		n.mem |= !p->items[ii].io;
	}
	if (af->secondary != NO_INDEX) {
		const struct abus *bus = &p->buses[af->secondary];
		n.io |= bus->window[CLS_IO] != NO_INDEX;
		n.mem |= bus->window[CLS_MEM] != NO_INDEX || bus->window[CLS_PREF] != NO_INDEX;
	}
	return n;
}

static int decode_off(const struct bm_pci_alloc_plan *p, const struct afunc *af)
{
	if (!needs_of(p, af).touched)
		return 0;
	uint32_t cmd = bm_pci_func_cfg_get(af->f, REG_COMMAND, 2);
	if (!(cmd & (CMD_IO | CMD_MEM)))
		return 0;
	return cfg_write(af->f, REG_COMMAND, 2, cmd & ~(uint32_t)(CMD_IO | CMD_MEM));
}

static int decode_on(const struct bm_pci_alloc_plan *p, const struct afunc *af)
{
	struct needs n = needs_of(p, af);
	uint32_t cmd = bm_pci_func_cfg_get(af->f, REG_COMMAND, 2);
	uint32_t want = cmd | (n.io ? CMD_IO : 0) | (n.mem ? CMD_MEM : 0) |
	                (p->cfg.bus_master ? CMD_MASTER : 0);
	return want == cmd ? 0 : cfg_write(af->f, REG_COMMAND, 2, want);
}

static int write_buses(const struct bm_pci_alloc_busnr *nr)
{
	uint32_t old = bm_pci_func_cfg_get(nr->bridge, REG_BUSES, 4);
	uint32_t v = (old & 0xff000000u) | nr->primary | (uint32_t)nr->secondary << 8 |
	             (uint32_t)nr->subordinate << 16;
	return cfg_write(nr->bridge, REG_BUSES, 4, v);
}

static int write_bar(const struct bm_pci_alloc_plan *p, const struct bm_pci_alloc_entry *e)
{
	if (e->index == BM_PCI_ROM) {
		unsigned reg = bm_pci_func_is_bridge(e->func) ? REG_ROM_BRIDGE : REG_ROM;
		return cfg_write(e->func, reg, 4,
		                 (uint32_t)e->addr | (p->cfg.rom_enable ? ROM_ENABLE : 0));
	}
	unsigned reg = REG_BAR0 + 4 * e->index;
	int err = cfg_write(e->func, reg, 4, (uint32_t)e->addr);
	if (!err && e->mem64)
		err = cfg_write(e->func, reg + 4, 4, (uint32_t)(e->addr >> 32));
	return err;
}

/*
 * A closed window has its base above its limit: the base registers all ones, the limit
 * registers zero, as firmware leaves an unused window.
 */
static int write_io_window(const struct bm_pci_alloc_entry *e, bool io32)
{
	uint64_t base = e->size ? e->addr : 0xfffff000u, last = e->size ? e->addr + e->size - 1 : 0;
	uint32_t lo = (uint32_t)((base >> 8) & 0xf0) | (uint32_t)((last >> 8) & 0xf0) << 8;
	int err = cfg_write(e->func, REG_IO_BASE, 2, lo);
	if (!err && io32)
		err = cfg_write(e->func, REG_IO_BASE_HI, 4,
		                (uint32_t)((base >> 16) & 0xffff) |
		                    (uint32_t)((last >> 16) & 0xffff) << 16);
	return err;
}

static int write_mem_window(const struct bm_pci_alloc_entry *e, unsigned reg, bool hi)
{
	uint64_t base = e->size ? e->addr : UINT64_MAX, last = e->size ? e->addr + e->size - 1 : 0;
	uint32_t v = (uint32_t)((base >> 16) & 0xfff0) | (uint32_t)((last >> 16) & 0xfff0) << 16;
	int err = cfg_write(e->func, reg, 4, v);
	if (!err && hi)
		err = cfg_write(e->func, REG_PREF_BASE_HI, 4, (uint32_t)(base >> 32));
	if (!err && hi)
		err = cfg_write(e->func, REG_PREF_LIMIT_HI, 4, (uint32_t)(last >> 32));
	return err;
}

static int write_window(const struct bm_pci_alloc_entry *e)
{
	switch (e->index) {
	case BM_PCI_WINDOW_IO:
		return write_io_window(e, (bm_pci_func_cfg_get(e->func, REG_IO_BASE, 1) & 0xf) ==
		                              WINDOW_WIDE);
	case BM_PCI_WINDOW_MEM:
		return write_mem_window(e, REG_MEM_BASE, false);
	default:
		return write_mem_window(e, REG_PREF_BASE, e->mem64);
	}
}

static int write_entries(const struct bm_pci_alloc_plan *p)
{
	int err = 0;
	for (size_t i = 0; i < p->nentries && !err; i++) {
		const struct bm_pci_alloc_entry *e = &p->entries[i];
		if (e->what == BM_PCI_ALLOC_WINDOW)
			err = write_window(e);
		else if (e->assigned)
			err = write_bar(p, e);
	}
	return err;
}

int alloc_program(struct bm_pci_alloc_plan *p)
{
	if (!unchanged(p))
		return -ESTALE;
	int err = 0;
	for (size_t i = 0; i < p->nfuncs && !err; i++)
		err = decode_off(p, &p->funcs[i]);
	for (size_t i = 0; i < p->nbusnrs && !err; i++)
		err = write_buses(&p->busnrs[i]);
	if (!err)
		err = write_entries(p);
	for (size_t i = 0; i < p->nfuncs && !err; i++)
		err = decode_on(p, &p->funcs[i]);
	return err;
}
