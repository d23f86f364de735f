/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The machine's layout, the same for every implementation (see pci_bench.h).
 */
#include "pci_bench.h"

struct pcib_bdf pcib_device(unsigned i)
{
	unsigned bus = i % PCIB_BUSES, j = i / PCIB_BUSES;

	return (struct pcib_bdf){bus, (bus == 0 ? PCIB_FIRST_SLOT : 0) + j / 8, j % 8};
}

static uint64_t bar_of(unsigned i)
{
	return PCIB_BAR_BASE + (i % PCIB_BUSES) * PCIB_BUS_SPAN +
	       (i / PCIB_BUSES) * PCIB_BAR_STRIDE;
}

uint32_t pcib_bar_addr(unsigned i)
{
	return (uint32_t)bar_of(i);
}

uint32_t pcib_bar_spare(unsigned i)
{
	return (uint32_t)(bar_of(i) + PCIB_SPARE);
}

uint64_t pcib_ecam(struct pcib_bdf d, unsigned reg)
{
	return PCIB_ECAM_BASE + PCI_ECAM_OFFSET(d.bus, d.slot, d.fn, reg);
}

uint32_t pcib_cf8(struct pcib_bdf d, unsigned reg)
{
	return PCI_CONFIG_ADDRESS(d.bus, d.slot, d.fn, reg);
}
