/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared helpers of the PCI tests: a system with a memory space, a port space, a vCPU and a
 * host bridge, a recorder for BAR map events, MSI messages and INTx changes, and short
 * configuration accessors that assert success. */
#ifndef BUSMAP_PCITEST_H
#define BUSMAP_PCITEST_H

#include "testutil.h"
#include <busmap/pci.h>
#include <errno.h>

#define ECAM_BASE 0xb0000000ull

struct msi_msg {
	bm_pci_func *src;
	uint64_t addr;
	uint32_t data;
};

struct intx_msg {
	bm_pci_func *src;
	unsigned slot, pin;
	bool level;
};

struct pt {
	bm_system *sys;
	bm_space *mem, *io;
	bm_vcpu *vcpu;
	bm_pci_host *host;
	struct bm_pci_map_event ev[512];
	size_t nev;
	struct msi_msg msi[256];
	size_t nmsi;
	struct intx_msg intx[64];
	size_t nintx;
	uint8_t reset_control[8]; /* bytes written at 0xcf9 */
	size_t nreset;
};

static inline void pt_record(void *arg, const struct bm_pci_map_event *ev)
{
	struct pt *t = arg;
	if (t->nev < 512)
		t->ev[t->nev] = *ev;
	t->nev++;
}

static inline void pt_msi(void *opaque, bm_pci_func *src, uint64_t addr, uint32_t data)
{
	struct pt *t = opaque;
	if (t->nmsi < 256)
		t->msi[t->nmsi] = (struct msi_msg){src, addr, data};
	t->nmsi++;
}

static inline void pt_intx(void *opaque, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	struct pt *t = opaque;
	if (t->nintx < 64)
		t->intx[t->nintx] = (struct intx_msg){src, slot, pin, level};
	t->nintx++;
}

static inline void pt_reset_control(void *opaque, uint8_t value)
{
	struct pt *t = opaque;
	if (t->nreset < 8)
		t->reset_control[t->nreset] = value;
	t->nreset++;
}

static const struct bm_pci_host_ops pt_host_ops = {
    .msi = pt_msi, .intx = pt_intx, .reset_control = pt_reset_control};

/* An x86-style host (port space, CF8/CFC, ECAM) unless cfg says otherwise; cfg's mem, io,
 * ops and opaque are filled in. */
static inline struct pt *pt_new_with(struct bm_pci_host_config cfg, bool want_io)
{
	struct pt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(bm_system_new(&t->sys), 0);
	assert_int_equal(bm_space_new(t->sys, "memory", "system", &t->mem), 0);
	assert_int_equal(bm_space_new(t->sys, "io", "io", &t->io), 0);
	assert_int_equal(bm_vcpu_new(t->sys, 0, NULL, &t->vcpu), 0);
	cfg.mem = t->mem;
	cfg.io = want_io ? t->io : NULL;
	cfg.ops = &pt_host_ops;
	cfg.opaque = t;
	assert_int_equal(bm_pci_host_new(t->sys, &cfg, &t->host), 0);
	assert_int_equal(bm_pci_host_set_map_observer(t->host, pt_record, t), 0);
	return t;
}

static inline struct pt *pt_new(void)
{
	struct bm_pci_host_config cfg = {.cf8 = true, .ecam = true, .ecam_base = ECAM_BASE};
	return pt_new_with(cfg, true);
}

static inline void pt_free(struct pt *t)
{
	assert_int_equal(bm_pci_host_free(t->host), 0);
	assert_int_equal(bm_vcpu_free(t->vcpu), 0);
	assert_int_equal(bm_system_free(t->sys), 0);
	free(t);
}

static inline bm_pci_func *pt_add(struct pt *t, bm_pci_bus *bus, unsigned dev, unsigned fn,
                                  const struct bm_pci_func_desc *d)
{
	bm_pci_func *f = NULL;
	assert_int_equal(bm_pci_func_new(bus ? bus : bm_pci_host_root_bus(t->host), dev, fn, d, &f),
	                 0);
	assert_non_null(f);
	return f;
}

static inline uint32_t rd(bm_pci_func *f, unsigned reg, unsigned size)
{
	uint32_t v = 0;
	assert_int_equal(bm_pci_func_cfg_read(f, reg, size, &v), 0);
	return v;
}

static inline void wr(bm_pci_func *f, unsigned reg, unsigned size, uint32_t v)
{
	assert_int_equal(bm_pci_func_cfg_write(f, reg, size, v), 0);
}

/* One dispatch that must reach something; returns the value. */
static inline uint64_t mem_rd(struct pt *t, bm_space *s, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	int r = bm_read(t->vcpu, s, addr, size, &v);
	assert_true(r >= 0);
	return v;
}

static inline void expect_event(const struct pt *t, size_t i, const bm_pci_func *f, unsigned bar,
                                uint64_t addr, bool mapped)
{
	assert_true(i < t->nev);
	assert_ptr_equal(t->ev[i].func, f);
	assert_int_equal(t->ev[i].bar, bar);
	assert_int_equal(t->ev[i].addr, addr);
	assert_int_equal(t->ev[i].mapped, mapped);
}

static inline bool bar_mapped(bm_pci_func *f, unsigned bar, uint64_t *addr)
{
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, bar, &bi), 0);
	if (addr)
		*addr = bi.mapped_addr;
	return bi.mapped;
}

#endif
