/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap as seen by busmap-pci-bench: a memory and a port space, a PCI host with CF8/CFC
 * and ECAM, and every configuration access a guest access dispatched through bm_read and
 * bm_write. Under QSBR each access stands for one VM exit: the vCPU thread reports a
 * quiescent state after each, and is offline between loops.
 */
#include "pci_bench.h"

#include <busmap/busmap.h>
#include <busmap/pci.h>
#include <stdlib.h>

#define BRIDGE_VENDOR 0x1b36 /* QEMU's pci-bridge */
#define BRIDGE_DEVICE 0x0001
#define BRIDGE_CLASS  0x060400

struct pbm {
	bm_system *sys;
	bm_space *mem, *io;
	bm_pci_host *host;
	bool qsbr;
};

struct pbm_vcpu {
	bm_vcpu *vcpu;
	bm_space *mem, *io;
	bool qsbr;
};

static int pbm_bar_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                        uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = PCIB_VALUE;
	return 0;
}

static int pbm_bar_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                         uint64_t value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	(void)value;
	return 0;
}

static const struct bm_region_ops pbm_bar_ops = {
    .read = pbm_bar_read,
    .write = pbm_bar_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_ALL,
};

static void pbm_destroy(void *p)
{
	struct pbm *m = p;

	if (!m)
		return;
	bm_pci_host_free(m->host);
	bm_system_free(m->sys);
	free(m);
}

/* Bus b (1..4) behind a bridge at 00:0b.0 whose memory window is exactly that bus's span. */
static int pbm_bridge(struct pbm *m, unsigned b, bm_pci_bus **out)
{
	struct bm_pci_func_desc d = {
	    .vendor_id = BRIDGE_VENDOR,
	    .device_id = BRIDGE_DEVICE,
	    .class_code = BRIDGE_CLASS,
	    .header = BM_PCI_HEADER_BRIDGE,
	    .secondary_bus = (uint8_t)b,
	    .subordinate_bus = (uint8_t)b,
	};
	uint64_t base = PCIB_BAR_BASE + b * PCIB_BUS_SPAN, last = base + PCIB_BUS_SPAN - 1;
	uint32_t window = (uint32_t)((base >> 16) & 0xfff0) | (uint32_t)((last >> 16) & 0xfff0)
	                                                          << 16;
	bm_pci_func *f;
	int err = bm_pci_func_new(bm_pci_host_root_bus(m->host), b, 0, &d, &f);

	if (!err)
		err = bm_pci_cfg_write(m->host, 0, b, 0, PCI_MEMORY_BASE, 4, window);
	if (!err)
		err = bm_pci_cfg_write(m->host, 0, b, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	*out = err ? NULL : bm_pci_func_secondary_bus(f);
	return err;
}

static int pbm_device(bm_pci_bus *const *buses, unsigned i)
{
	struct bm_pci_func_desc d = {
	    .vendor_id = PCIB_VENDOR,
	    .device_id = PCIB_DEVICE,
	    .class_code = PCIB_CLASS,
	    .bars = {{.type = BM_PCI_BAR_MEM32, .size = PCIB_BAR_SIZE, .ops = &pbm_bar_ops}},
	};
	struct pcib_bdf at = pcib_device(i);
	bm_pci_func *f;
	int err = bm_pci_func_new(buses[at.bus], at.slot, at.fn, &d, &f);

	if (!err)
		err = bm_pci_func_cfg_write(f, PCI_BASE_ADDRESS_0, 4, pcib_bar_addr(i));
	if (!err)
		err = bm_pci_func_cfg_write(f, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	return err;
}

/* The whole machine is built in one transaction, published once. */
static int pbm_build(struct pbm *m, unsigned ndev)
{
	bm_pci_bus *buses[PCIB_BUSES] = {bm_pci_host_root_bus(m->host)};
	int err = bm_begin(m->sys);

	if (err)
		return err;
	for (unsigned b = 1; b < PCIB_BUSES && !err; b++)
		err = pbm_bridge(m, b, &buses[b]);
	for (unsigned i = 0; i < ndev && !err; i++)
		err = pbm_device(buses, i);
	int cerr = bm_commit(m->sys);
	return err ? err : cerr;
}

static void *pbm_create_flavour(enum bm_rcu_flavour flavour, unsigned ndev)
{
	struct pbm *m = calloc(1, sizeof(*m));
	struct bm_pci_host_config hc = {.cf8 = true, .ecam = true, .ecam_base = PCIB_ECAM_BASE};

	if (!m)
		return NULL;
	m->qsbr = flavour == BM_RCU_QSBR;
	if (bm_system_new_flavour(flavour, &m->sys) ||
	    bm_space_new(m->sys, "memory", "system", &m->mem) ||
	    bm_space_new(m->sys, "io", "io", &m->io)) {
		pbm_destroy(m);
		return NULL;
	}
	hc.mem = m->mem;
	hc.io = m->io;
	if (bm_pci_host_new(m->sys, &hc, &m->host) || pbm_build(m, ndev)) {
		pbm_destroy(m);
		return NULL;
	}
	return m;
}

static void *pbm_create(unsigned ndev)
{
	return pbm_create_flavour(BM_RCU_MEMB, ndev);
}

static void *pbm_create_qsbr(unsigned ndev)
{
	return pbm_create_flavour(BM_RCU_QSBR, ndev);
}

/* Views retired by past commits wait for a grace period before the reclaimer frees them. */
static void pbm_settle(void *p)
{
	struct pbm *m = p;

	bm_synchronize(m->sys);
}

static void *pbm_vcpu_enter(void *p, unsigned index)
{
	struct pbm *m = p;
	struct pbm_vcpu *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->mem = m->mem;
	v->io = m->io;
	v->qsbr = m->qsbr;
	if (bm_vcpu_new(m->sys, index, NULL, &v->vcpu)) {
		free(v);
		return NULL;
	}
	/* As a vCPU thread is while its guest runs. */
	if (v->qsbr)
		bm_vcpu_offline(v->vcpu);
	return v;
}

static void pbm_vcpu_leave(void *p)
{
	struct pbm_vcpu *v = p;

	if (v->qsbr)
		bm_vcpu_online(v->vcpu);
	bm_vcpu_free(v->vcpu);
	free(v);
}

/* A VM exit begins (QSBR: the thread comes online) and ends (offline). */
static void exit_begin(const struct pbm_vcpu *v, bool qsbr)
{
	if (qsbr)
		bm_vcpu_online(v->vcpu);
}

static void exit_end(const struct pbm_vcpu *v, bool qsbr)
{
	if (qsbr)
		bm_vcpu_offline(v->vcpu);
}

/* Between two accesses, each standing for one exit. */
static inline void between(bm_vcpu *vcpu, bool qsbr)
{
	if (qsbr)
		bm_vcpu_quiescent(vcpu);
}

static int pbm_pio(void *p, bool write, unsigned port, unsigned size, uint32_t *value)
{
	struct pbm_vcpu *v = p;
	uint64_t x = *value;
	int rc;

	exit_begin(v, v->qsbr);
	rc = write ? bm_write(v->vcpu, v->io, port, size, x)
	           : bm_read(v->vcpu, v->io, port, size, &x);
	exit_end(v, v->qsbr);
	*value = (uint32_t)x;
	return rc;
}

static int pbm_mmio(void *p, bool write, uint64_t addr, unsigned size, uint64_t *value)
{
	struct pbm_vcpu *v = p;
	int rc;

	exit_begin(v, v->qsbr);
	rc = write ? bm_write(v->vcpu, v->mem, addr, size, *value)
	           : bm_read(v->vcpu, v->mem, addr, size, value);
	exit_end(v, v->qsbr);
	return rc;
}

/* The loops, written once; each flavour's copy has qsbr constant. */
static inline uint64_t cf8_loop(struct pbm_vcpu *v, uint32_t cf8, uint64_t ops, bool qsbr)
{
	bm_vcpu *vcpu = v->vcpu;
	bm_space *io = v->io;
	uint64_t sum = 0, value = 0;

	exit_begin(v, qsbr);
	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_write(vcpu, io, PCI_CONFIG_ADDRESS_PORT, 4, cf8);
		between(vcpu, qsbr);
		rc += bm_read(vcpu, io, PCI_CONFIG_DATA_PORT, 2, &value);
		between(vcpu, qsbr);
		sum += value + (uint64_t)rc;
	}
	exit_end(v, qsbr);
	return sum;
}

static inline uint64_t ecam_loop(struct pbm_vcpu *v, uint64_t addr, uint64_t ops, bool qsbr)
{
	bm_vcpu *vcpu = v->vcpu;
	bm_space *mem = v->mem;
	uint64_t sum = 0, value = 0;

	exit_begin(v, qsbr);
	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_read(vcpu, mem, addr, 4, &value);
		between(vcpu, qsbr);
		sum += value + (uint64_t)rc;
	}
	exit_end(v, qsbr);
	return sum;
}

static inline uint64_t sizing_loop(struct pbm_vcpu *v, uint64_t fn, uint32_t bar, uint64_t ops,
                                   bool qsbr)
{
	bm_vcpu *vcpu = v->vcpu;
	bm_space *mem = v->mem;
	uint64_t sum = 0, value = 0;

	exit_begin(v, qsbr);
	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_write(vcpu, mem, fn + PCI_COMMAND, 2, 0);
		between(vcpu, qsbr);
		rc += bm_write(vcpu, mem, fn + PCI_BASE_ADDRESS_0, 4, UINT32_MAX);
		between(vcpu, qsbr);
		rc += bm_read(vcpu, mem, fn + PCI_BASE_ADDRESS_0, 4, &value);
		between(vcpu, qsbr);
		rc += bm_write(vcpu, mem, fn + PCI_BASE_ADDRESS_0, 4, bar);
		between(vcpu, qsbr);
		rc += bm_write(vcpu, mem, fn + PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
		between(vcpu, qsbr);
		sum += value + (uint64_t)rc;
	}
	exit_end(v, qsbr);
	return sum;
}

static inline uint64_t move_loop(struct pbm_vcpu *v, uint64_t reg, uint32_t a, uint32_t b,
                                 uint64_t ops, bool qsbr)
{
	bm_vcpu *vcpu = v->vcpu;
	bm_space *mem = v->mem;
	uint64_t sum = 0;

	exit_begin(v, qsbr);
	for (uint64_t i = 0; i < ops; i++) {
		int rc = bm_write(vcpu, mem, reg, 4, i & 1 ? a : b);
		between(vcpu, qsbr);
		sum += (uint64_t)rc;
	}
	exit_end(v, qsbr);
	return sum;
}

static uint64_t pbm_cf8_read(void *v, uint32_t cf8, uint64_t ops)
{
	return cf8_loop(v, cf8, ops, false);
}

static uint64_t pbm_cf8_read_qsbr(void *v, uint32_t cf8, uint64_t ops)
{
	return cf8_loop(v, cf8, ops, true);
}

static uint64_t pbm_ecam_read(void *v, uint64_t addr, uint64_t ops)
{
	return ecam_loop(v, addr, ops, false);
}

static uint64_t pbm_ecam_read_qsbr(void *v, uint64_t addr, uint64_t ops)
{
	return ecam_loop(v, addr, ops, true);
}

static uint64_t pbm_bar_sizing(void *v, uint64_t fn, uint32_t bar, uint64_t ops)
{
	return sizing_loop(v, fn, bar, ops, false);
}

static uint64_t pbm_bar_sizing_qsbr(void *v, uint64_t fn, uint32_t bar, uint64_t ops)
{
	return sizing_loop(v, fn, bar, ops, true);
}

static uint64_t pbm_bar_move(void *v, uint64_t reg, uint32_t a, uint32_t b, uint64_t ops)
{
	return move_loop(v, reg, a, b, ops, false);
}

static uint64_t pbm_bar_move_qsbr(void *v, uint64_t reg, uint32_t a, uint32_t b, uint64_t ops)
{
	return move_loop(v, reg, a, b, ops, true);
}

const struct pcib_impl pcib_busmap = {
    .name = "busmap",
    .create = pbm_create,
    .destroy = pbm_destroy,
    .settle = pbm_settle,
    .vcpu_enter = pbm_vcpu_enter,
    .vcpu_leave = pbm_vcpu_leave,
    .pio = pbm_pio,
    .mmio = pbm_mmio,
    .cf8_read = pbm_cf8_read,
    .ecam_read = pbm_ecam_read,
    .bar_sizing = pbm_bar_sizing,
    .bar_move = pbm_bar_move,
};

const struct pcib_impl pcib_busmap_qsbr = {
    .name = "busmap-qsbr",
    .create = pbm_create_qsbr,
    .destroy = pbm_destroy,
    .settle = pbm_settle,
    .vcpu_enter = pbm_vcpu_enter,
    .vcpu_leave = pbm_vcpu_leave,
    .pio = pbm_pio,
    .mmio = pbm_mmio,
    .cf8_read = pbm_cf8_read_qsbr,
    .ecam_read = pbm_ecam_read_qsbr,
    .bar_sizing = pbm_bar_sizing_qsbr,
    .bar_move = pbm_bar_move_qsbr,
};
