/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ioeventfd listener: KVM's ioeventfds follow busmap's flat view.
 *
 * A device declares its doorbells with ioev_watch: "bytes [offset, offset + len) of region
 * r signal fd (when the value written is data, if datamatch)". Listeners on vm->mem and
 * vm->io assign an ioeventfd wherever those bytes are visible, whole, in the flat view (at
 * every place they show: aliases included), and deassign it when they stop being visible:
 * a BAR that moves takes its doorbell along, one hidden by an overlapping BAR loses it
 * until uncovered, so the guest's write reaches the region that wins there. Within one
 * change, every deassignment comes before any assignment, so two BARs swapping addresses
 * in one step never make KVM refuse with -EEXIST; one a change leaves in place is not
 * touched.
 *
 * Threads: ioev_new, ioev_watch, ioev_unwatch and ioev_free on the main thread while no
 * vCPU runs; ioev_list and ioev_check on any thread outside a listener (they hold busmap's
 * writer lock). The listeners run on the committing thread with busmap's writer lock held;
 * a hypervisor refusal there stops the run (VM_STATUS_ERROR) with the reason.
 */
#ifndef BUSMAP_VMM_IOEVENTFD_H
#define BUSMAP_VMM_IOEVENTFD_H

#include "vmm.h"

int ioev_new(struct vm *vm, struct ioev **out);
void ioev_free(struct ioev *ev);

/*
 * len is 1, 2, 4 or 8; with datamatch, data fits in len bytes. Where r is visible already
 * the ioeventfds are assigned at once. -EINVAL, -EEXIST (r, offset and len watched already
 * with a value that overlaps: the same data, or either without datamatch; KVM could not
 * hold both), -ENOMEM, or the hypervisor's error: then what it assigned is deassigned and
 * the watch dropped.
 */
int ioev_watch(struct ioev *ev, bm_region *r, uint64_t offset, unsigned len, bool datamatch,
               uint64_t data, int fd);
/*
 * Drops every watch of r, deassigning its ioeventfds: call it before r is destroyed or the
 * fds closed, so that a region made later at the same address is not taken for r. -ENOENT
 * if r has none, or the hypervisor's error (that watch is then kept).
 */
int ioev_unwatch(struct ioev *ev, bm_region *r);

/* One assigned ioeventfd, as the hypervisor was told. */
struct ioev_active {
	bool pio;
	uint64_t addr;
	unsigned len;
	bool datamatch;
	uint64_t data;
	int fd;
};
/* Copies up to max assigned ioeventfds (port space first, then by address); returns how
 * many there are. */
size_t ioev_list(struct ioev *ev, struct ioev_active *out, size_t max);

/* Compares what is assigned with what the current flat views call for: 0 or -EPROTO,
 * writing each difference to report (may be NULL). */
int ioev_check(struct ioev *ev, FILE *report);

#endif
