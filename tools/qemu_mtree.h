/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU's "info mtree -f" output, and whether a BAR map agrees with it.
 *
 * Nothing here prints. Errors are negative errno values with a line where one applies.
 */
#ifndef BUSMAP_TOOLS_QEMU_MTREE_H
#define BUSMAP_TOOLS_QEMU_MTREE_H

#include "qemu_replay.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The flat view lines of the address space "memory" are read, and those of "I/O" unless
 * the memory view shows the PCI I/O space through a window (gpex_ioport_window, arm
 * virt), where port p is at window start + p. A line is the bus's background when it
 * shows a region at an explicit offset equal to its bus address (the window or the port
 * space seen through, "NAME @OFFSET"). A map matches when, in each space, the part of
 * every BAR that no newer BAR hides:
 * - holds at least one line that is not background, and
 * - holds whole every non-background line that touches it,
 * and no non-background line outside every BAR has the name of a line inside one.
 * A BAR's MSI-X parts (see qemu_replay_bar) are judged as BARs of their own: each must be
 * exactly one line of QEMU's region of its name ("msix-table", "msix-pba"), and the BAR's
 * contents show neither; those contents need one line in any of the pieces the parts
 * leave of them (a piece may be a gap of the device's own region).
 * The flat view shows a BAR's contents, not the BAR, so a BAR whose region has holes is
 * judged by what shows through them only in that sense.
 */
struct qemu_mtree_line {
	unsigned line;
	uint64_t start, last;
	int priority;
	bool has_offset;
	uint64_t offset;
	char name[64];
};
struct qemu_mtree {
	struct qemu_mtree_line *mem, *io;
	size_t nmem, nio;
	bool io_in_mem;
	uint64_t io_base; /* where port 0 is in the memory view when io_in_mem */
	uint64_t io_last; /* last address of that window in the memory view */
};
/* -EBADMSG (line in err) when a flat view line does not parse or no "memory" view exists. */
int qemu_mtree_parse(FILE *in, struct qemu_mtree *out, struct qemu_error *err);
void qemu_mtree_free(struct qemu_mtree *m);
/* 0 when bars match m; -EDOM with the first difference in err otherwise. */
int qemu_mtree_compare(const struct qemu_mtree *m, const struct qemu_replay_bar *bars, size_t n,
                       struct qemu_error *err);

/*
 * The MSI-X layouts "info mtree" (the region tree, not -f) shows: each region with an
 * "msix-table" or "msix-pba" subregion, where it was and where they lie in it, once per
 * region and address whichever address space shows it. Lines that are not regions are
 * skipped. *out is malloc'ed (NULL when none), free it. -EBADMSG (a line too long), -EIO,
 * -ENOMEM.
 */
int qemu_mtree_msix_hints(FILE *in, struct qemu_replay_msix_hint **out, size_t *count,
                          struct qemu_error *err);

#ifdef __cplusplus
}
#endif
#endif
