/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The memslot listener: guest memory is what busmap's flat view of the memory space says.
 *
 * Host-backed regions (RAM, and ROMs, which are mapped read-only) are declared with
 * memslots_add_backing, normally before they become visible. A listener on vm->mem turns
 * every flat range of such a region into a KVM memslot: its page-aligned part, when the
 * host address and the guest address agree modulo the page size. Whatever is not mapped (a
 * partial page beside a small BAR, an unaligned alias) exits to the VMM and is served by
 * busmap's dispatch, which reads and writes RAM regions by copy: still correct, only slower.
 * Removals are applied before additions, so a slot never overlaps another; a slot that a
 * change leaves as it was is not touched.
 *
 * Threads: memslots_new, memslots_free and the backing declarations on the main thread
 * while no vCPU runs; memslots_list and memslots_check on any thread outside a listener
 * (they hold busmap's writer lock). The listener runs on whichever thread commits a map
 * change (a vCPU thread for a guest's configuration write), with busmap's writer lock held;
 * a hypervisor refusal there stops the run (VM_STATUS_ERROR) with the reason.
 */
#ifndef BUSMAP_VMM_MEMSLOTS_H
#define BUSMAP_VMM_MEMSLOTS_H

#include "vmm.h"

int memslots_new(struct vm *vm, struct memslots **out);
void memslots_free(struct memslots *ms);

/*
 * Declares region r (a RAM or io region: flat ranges name leaves) as backed by host memory
 * hva (r's offset 0), mapped read-only when readonly. Where r is visible already it is
 * mapped at once. -EINVAL (a container or alias), -EEXIST if r is declared already,
 * -ENOMEM, -ENOSPC (no slot id left) or the hypervisor's error, which here is returned,
 * not a reason to stop: then what it mapped is deleted and r is not declared.
 */
int memslots_add_backing(struct memslots *ms, bm_region *r, void *hva, bool readonly);
/*
 * Forgets r's backing, deleting the slots it has: call it before r is destroyed or its host
 * memory freed, so that a region made later at the same address is not taken for it.
 * Whatever of r stays visible is then served by dispatch. -ENOENT if r has no backing, or
 * the hypervisor's error (the backing is then kept).
 */
int memslots_remove_backing(struct memslots *ms, bm_region *r);

/*
 * Declares that no slot crosses gpa (page aligned): ranges are cut there, and slots
 * installed already are replaced by cut ones. A slot is replaced whenever its range's
 * bounds change, and meanwhile other vCPUs' accesses to it exit (data still reaches RAM
 * through dispatch, but an instruction fetch cannot be emulated from there): the i440FX
 * splits at 1 MiB so that its PAM registers never replace the slot of the RAM above.
 * Main thread, before vCPUs run. -EINVAL, -ENOSPC past 8 split points, or the
 * hypervisor's refusal (-errno).
 */
int memslots_split_at(struct memslots *ms, uint64_t gpa);

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
