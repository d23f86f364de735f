/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-pci-bench's bhyve compatibility case: the map update a BAR move costs a bhyve
 * device model running on busmap's bhyve layer (pci_emul.c unregisters the old range and
 * registers the new one), with as many ranges as the machine has devices.
 */
#include "pci_bench.h"

#include "bhyve_host.h"

static const char pcc_name[] = "bar";

static int pcc_register(uint64_t base)
{
	struct mem_range mr = {.name = pcc_name,
	                       .flags = MEM_F_RW,
	                       .handler = bench_bhyve_handler,
	                       .arg2 = PCIB_VALUE,
	                       .base = base,
	                       .size = PCIB_BAR_SIZE};

	return register_mem(&mr);
}

static int pcc_unregister(uint64_t base)
{
	struct mem_range mr = {.name = pcc_name, .base = base, .size = PCIB_BAR_SIZE};

	return unregister_mem(&mr);
}

bool pcib_compat_open(unsigned ndev)
{
	bm_system *sys;
	int err = 0;

	if (bm_bhyve_global())
		return false;
	init_mem(2);
	sys = bm_bhyve_system(bm_bhyve_global());
	if (bm_begin(sys)) {
		bm_bhyve_global_free();
		return false;
	}
	for (unsigned i = 0; i < ndev && !err; i++)
		err = pcc_register(pcib_bar_addr(i));
	if (bm_commit(sys) || err) {
		bm_bhyve_global_free();
		return false;
	}
	return true;
}

uint64_t pcib_compat_moves(uint64_t ops)
{
	uint64_t a = pcib_bar_addr(0), b = pcib_bar_spare(0), sum = 0;

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t from = i % 2 ? b : a, to = i % 2 ? a : b;

		sum += (uint64_t)pcc_unregister(from) + (uint64_t)pcc_register(to);
	}
	return sum;
}

void pcib_compat_settle(void)
{
	bm_synchronize(bm_bhyve_system(bm_bhyve_global()));
}

void pcib_compat_close(void)
{
	bm_bhyve_global_free();
}
