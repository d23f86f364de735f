/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bm_space: one guest address space (memory, I/O ports, a PCI bus master view...).
 *
 * A space has a root container of 2^64 bytes. Its flat view is the list of disjoint ranges
 * [start, last] -> (region, offset in region) that the region tree resolves to:
 * - inside a container, a subregion of higher priority hides one of lower priority;
 * - among equal priorities, the most recently added or moved subregion wins;
 * - priorities compare only among siblings;
 * - a container is transparent where it has no visible subregion, a disabled region is
 *   invisible, an alias shows its target through its window;
 * - when a region leaves, whatever it hid shows again.
 * These are QEMU's rules. The view is rebuilt only where a change can alter it and is
 * published as a new immutable version (RCU), which dispatch reads without locks.
 *
 * Threads: every function here takes the system's writer lock, like region changes, and
 * may be called from any thread; only dispatch (busmap/dispatch.h) is lock-free. Listener
 * and conflict on_change callbacks run on the committing thread with the writer lock held
 * and must not change the map (such calls return -EDEADLK).
 */
#ifndef BUSMAP_SPACE_H
#define BUSMAP_SPACE_H

#include <busmap/region.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_space bm_space;
typedef struct bm_listener bm_listener;

/* Creates a space whose root is a new container called root_name ("" if NULL). */
BM_API int bm_space_new(bm_system *sys, const char *name, const char *root_name, bm_space **out);
/* Frees the space and its root container; the regions inside become parentless. */
BM_API int bm_space_free(bm_space *space);
BM_API bm_region *bm_space_root(const bm_space *space);
BM_API const char *bm_space_name(const bm_space *space);

/* One range of the flat view. region is NULL where nothing is mapped (unassigned). */
struct bm_flat_range {
	uint64_t start;
	uint64_t last; /* inclusive */
	bm_region *region;
	uint64_t offset; /* of start, within region */
	bool conflict;   /* inside an overlap of exclusive regions */
};

/*
 * Calls fn for each assigned range of the published view, in address order, and returns
 * the view's generation (which grows with every publication in the system). fn returning nonzero
 * stops the walk. Runs under the writer lock: fn must not change the map.
 */
BM_API uint64_t bm_space_flat(bm_space *space, int (*fn)(void *arg, const struct bm_flat_range *r),
                              void *arg);

/*
 * Listeners learn what changed in the flat view after each commit: the ranges that left
 * and the ranges that came (assigned ones only; a range whose bounds, region, offset or
 * conflict flag changed is reported as one removal and one addition). On registration the
 * listener is called once with the whole current view as added.
 */
typedef void (*bm_listener_fn)(void *arg, bm_space *space, const struct bm_flat_range *removed,
                               size_t nremoved, const struct bm_flat_range *added, size_t nadded);
BM_API int bm_listener_add(bm_space *space, bm_listener_fn fn, void *arg, bm_listener **out);
BM_API int bm_listener_remove(bm_listener *l);

/* An overlap of two exclusive regions: winner hides loser over [start, last]. */
struct bm_conflict {
	uint64_t start;
	uint64_t last;
	bm_region *winner;
	bm_region *loser;
};

/* Copies up to max current conflicts, in address order, and returns how many there are
 * (which may be more than max). */
BM_API size_t bm_space_conflicts(bm_space *space, struct bm_conflict *out, size_t max);

/*
 * Conflict signals. on_change runs after a commit for each conflict that appeared (added
 * true) or went away. on_access runs on the vCPU thread when a dispatch lands in an overlap,
 * before the access is carried out by the winner; it must not block for long.
 */
struct bm_conflict_ops {
	void (*on_change)(void *arg, bm_space *space, const struct bm_conflict *c, bool added);
	void (*on_access)(void *arg, bm_space *space, bm_vcpu *vcpu, uint64_t addr, unsigned size,
	                  bool is_write);
};
BM_API int bm_space_set_conflict_ops(bm_space *space, const struct bm_conflict_ops *ops, void *arg);

/*
 * Dumps, in QEMU's monitor formats ("info mtree", "info mtree -f") and as JSON. They read
 * the region tree under the writer lock. Return 0 or -EIO when the stream fails.
 */
BM_API int bm_space_dump_mtree(bm_space *space, FILE *out);
BM_API int bm_space_dump_flat(bm_space *space, FILE *out);
BM_API int bm_space_dump_json(bm_space *space, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
