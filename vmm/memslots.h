/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The memslot listener: guest memory is what busmap's flat view of the memory space says.
 *
 * Host-backed regions (RAM, and ROMs, which are mapped read-only) are declared with
 * memslots_add_backing before they become visible. A listener on vm->mem turns every
 * flat range of such a region into a KVM memslot: its page-aligned part, when the host
 * address and the guest address agree modulo the page size. Whatever is not mapped (a
 * partial page beside a small BAR, an unaligned alias) exits to the VMM and is served by
 * busmap's dispatch, which reads and writes RAM regions by copy: still correct, only slower.
 * Removals are applied before additions, so a slot never overlaps another.
 *
 * Threads: memslots_new, memslots_add_backing and memslots_free on the main thread before
 * vCPUs run or after they stopped. The listener runs on whichever thread commits a map
 * change (a vCPU thread for a guest's configuration write), with busmap's writer lock held;
 * a hypervisor refusal there stops the run (VM_STATUS_ERROR) with the reason.
 */
#ifndef BUSMAP_VMM_MEMSLOTS_H
#define BUSMAP_VMM_MEMSLOTS_H

#include "vmm.h"

int memslots_new(struct vm *vm, struct memslots **out);
void memslots_free(struct memslots *ms);

/* Declares region r as backed by host memory hva (r's offset 0), mapped read-only when
 * readonly. -EEXIST if r is declared already, -ENOMEM. */
int memslots_add_backing(struct memslots *ms, bm_region *r, void *hva, bool readonly);

/* One installed slot, as the hypervisor was told. */
struct memslot {
	unsigned id;
	uint64_t gpa;
	uint64_t size;
	void *hva;
	bool readonly;
};
/* Copies up to max installed slots in address order; returns how many there are. */
size_t memslots_list(struct memslots *ms, struct memslot *out, size_t max);

/*
 * Compares the installed slots with what the current flat view calls for. Returns 0 when
 * they are equal, else -EPROTO after writing each difference to report (may be NULL).
 */
int memslots_check(struct memslots *ms, FILE *report);

#endif
