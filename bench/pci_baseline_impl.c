/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The bhyve-style baseline as seen by busmap-pci-bench: port accesses through its table of
 * port handlers, MMIO (ECAM) through its range tree, as bhyve's vCPU loop hands them over
 * after a VM exit.
 */
#include "pci_baseline.h"
#include "pci_bench.h"

#include <stdlib.h>

#define PBL_MAX_VCPUS 16
#define HOST_VENDOR   0x1275 /* bhyve's host bridge */
#define HOST_DEVICE   0x1275
#define HOST_CLASS    0x060000

struct pbl_vcpu {
	struct pcb *m;
	unsigned index;
};

static uint64_t pbl_bar_read(void *opaque, unsigned bar, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)bar;
	(void)offset;
	(void)size;
	return PCIB_VALUE;
}

static void pbl_bar_write(void *opaque, unsigned bar, uint64_t offset, unsigned size,
                          uint64_t value)
{
	(void)opaque;
	(void)bar;
	(void)offset;
	(void)size;
	(void)value;
}

static const struct pcb_bar_ops pbl_bar_ops = {.read = pbl_bar_read, .write = pbl_bar_write};

/* The firmware's part: program the BAR, then turn memory decoding on. */
static int pbl_program(struct pcb *m, unsigned i)
{
	struct pcib_bdf at = pcib_device(i);
	int err = pcb_mem_write(m, 0, pcib_ecam(at, PCI_BASE_ADDRESS_0), 4, pcib_bar_addr(i));

	if (!err)
		err = pcb_mem_write(m, 0, pcib_ecam(at, PCI_COMMAND), 2, PCI_COMMAND_MEMORY);
	return err;
}

static void *pbl_create(unsigned ndev)
{
	struct pcb *m = pcb_new(PBL_MAX_VCPUS, PCIB_ECAM_BASE);
	const struct pcb_func_desc host = {HOST_VENDOR, HOST_DEVICE, HOST_CLASS, 0, NULL, NULL};
	const struct pcb_func_desc dev = {PCIB_VENDOR,   PCIB_DEVICE,  PCIB_CLASS,
	                                  PCIB_BAR_SIZE, &pbl_bar_ops, NULL};

	if (!m || !pcb_func_new(m, 0, 0, 0, &host)) {
		pcb_free(m);
		return NULL;
	}
	for (unsigned i = 0; i < ndev; i++) {
		struct pcib_bdf at = pcib_device(i);

		if (!pcb_func_new(m, at.bus, at.slot, at.fn, &dev) || pbl_program(m, i)) {
			pcb_free(m);
			return NULL;
		}
	}
	return m;
}

static void pbl_destroy(void *m)
{
	pcb_free(m);
}

static void *pbl_vcpu_enter(void *m, unsigned index)
{
	struct pbl_vcpu *v = calloc(1, sizeof(*v));

	if (v) {
		v->m = m;
		v->index = index;
	}
	return v;
}

static void pbl_vcpu_leave(void *v)
{
	free(v);
}

static int pbl_pio(void *p, bool write, unsigned port, unsigned size, uint32_t *value)
{
	struct pbl_vcpu *v = p;

	return pcb_inout(v->m, v->index, !write, port, size, value);
}

static int pbl_mmio(void *p, bool write, uint64_t addr, unsigned size, uint64_t *value)
{
	struct pbl_vcpu *v = p;

	return write ? pcb_mem_write(v->m, v->index, addr, size, *value)
	             : pcb_mem_read(v->m, v->index, addr, size, value);
}

static uint64_t pbl_cf8_read(void *p, uint32_t cf8, uint64_t ops)
{
	struct pbl_vcpu *v = p;
	struct pcb *m = v->m;
	unsigned vcpu = v->index;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < ops; i++) {
		uint32_t addr = cf8, value = 0;
		int rc = pcb_inout(m, vcpu, false, PCI_CONFIG_ADDRESS_PORT, 4, &addr);

		rc += pcb_inout(m, vcpu, true, PCI_CONFIG_DATA_PORT, 2, &value);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

static uint64_t pbl_ecam_read(void *p, uint64_t addr, uint64_t ops)
{
	struct pbl_vcpu *v = p;
	struct pcb *m = v->m;
	unsigned vcpu = v->index;
	uint64_t sum = 0, value = 0;

	for (uint64_t i = 0; i < ops; i++) {
		int rc = pcb_mem_read(m, vcpu, addr, 4, &value);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

static uint64_t pbl_bar_sizing(void *p, uint64_t fn, uint32_t bar, uint64_t ops)
{
	struct pbl_vcpu *v = p;
	struct pcb *m = v->m;
	unsigned vcpu = v->index;
	uint64_t sum = 0, value = 0;

	for (uint64_t i = 0; i < ops; i++) {
		int rc = pcb_mem_write(m, vcpu, fn + PCI_COMMAND, 2, 0);
		rc += pcb_mem_write(m, vcpu, fn + PCI_BASE_ADDRESS_0, 4, UINT32_MAX);
		rc += pcb_mem_read(m, vcpu, fn + PCI_BASE_ADDRESS_0, 4, &value);
		rc += pcb_mem_write(m, vcpu, fn + PCI_BASE_ADDRESS_0, 4, bar);
		rc += pcb_mem_write(m, vcpu, fn + PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
		sum += value + (uint64_t)rc;
	}
	return sum;
}

static uint64_t pbl_bar_move(void *p, uint64_t reg, uint32_t a, uint32_t b, uint64_t ops)
{
	struct pbl_vcpu *v = p;
	struct pcb *m = v->m;
	unsigned vcpu = v->index;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < ops; i++)
		sum += (uint64_t)pcb_mem_write(m, vcpu, reg, 4, i & 1 ? a : b);
	return sum;
}

const struct pcib_impl pcib_baseline = {
    .name = "baseline",
    .create = pbl_create,
    .destroy = pbl_destroy,
    .vcpu_enter = pbl_vcpu_enter,
    .vcpu_leave = pbl_vcpu_leave,
    .pio = pbl_pio,
    .mmio = pbl_mmio,
    .cf8_read = pbl_cf8_read,
    .ecam_read = pbl_ecam_read,
    .bar_sizing = pbl_bar_sizing,
    .bar_move = pbl_bar_move,
};
