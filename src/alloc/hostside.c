/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the allocator takes from the host: its system's transaction, so that a whole plan
 * is taken from one consistent state and a whole run publishes once, and whether BARs at
 * address 0 decode.
 */
#include "alloc_internal.h"

int alloc_host_lock(bm_pci_host *h)
{
	return bm_begin(bm_pci_host_system(h));
}

int alloc_host_unlock(bm_pci_host *h)
{
	return bm_commit(bm_pci_host_system(h));
}

bool alloc_host_decodes_zero(bm_pci_host *h)
{
	return bm_pci_host_decodes_zero(h);
}
