/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The lookup structure over a flat view: a persistent (copy-on-write) map that sends every
 * 64-bit address to the flat range containing it.
 *
 * A version (struct bm_index) is immutable once built, so vCPU threads read it without
 * locks while the writer builds the next version from it. An edit copies only the nodes on
 * the paths it changes and shares the rest with the old version; what the new version no
 * longer uses is handed to the caller as garbage, to be freed after an RCU grace period.
 *
 * Only the writer (holding the system's writer lock) builds versions; any thread may look
 * up in a version it reached through rcu_dereference.
 */
#ifndef BUSMAP_SRC_INDEX_H
#define BUSMAP_SRC_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct bm_region;
struct bm_vcpu;

#define BM_RANGE_CONFLICT 0x1u

/* One range of a flat view. Immutable once placed in an index. A range is the last link of
 * a lookup's chain of dependent loads, so what a direct read takes from it comes first, in
 * 44 bytes, to share one cache line as often as malloc's 16-byte alignment allows (half the
 * time; the write callback makes 56 bytes, a quarter of the time). */
struct bm_range {
	uint64_t start;
	uint64_t last;   /* inclusive */
	uint64_t offset; /* of start, within region */
	int (*read)(void *opaque, struct bm_vcpu *vcpu, uint64_t offset, unsigned size,
	            uint64_t *value);
	void *opaque;
	/* Access sizes that can go straight to read/write in one call: valid and implemented
	 * sizes of an io region, 0 where any access needs the general path (ram, unassigned,
	 * conflicts). Copied here, with the callbacks, so the hot path reads no region. */
	uint32_t direct_sizes;
	uint32_t flags; /* BM_RANGE_* */
	int (*write)(void *opaque, struct bm_vcpu *vcpu, uint64_t offset, unsigned size,
	             uint64_t value);
	struct bm_region *region; /* terminal io or ram region; NULL: unassigned */
	uint64_t region_last;     /* region's size - 1 when rendered: bounds widened accesses */
};

struct bm_index;

/* Pointers whose memory may be freed with free() once no reader can reach them. */
struct bm_garbage {
	void **ptrs;
	size_t n;
	size_t cap;
};

int bm_garbage_add(struct bm_garbage *g, void *p);
/* Makes room for n more pointers, so that later adds cannot fail. */
int bm_garbage_reserve(struct bm_garbage *g, size_t n);
/* Frees every pointer and empties the bag (keeps its storage). */
void bm_garbage_free_all(struct bm_garbage *g);
/* Frees the bag's own storage (not the pointers). */
void bm_garbage_release(struct bm_garbage *g);

/* A version whose only range is whole (whole->start == 0, whole->last == UINT64_MAX); the
 * index owns whole from then on. */
int bm_index_new(struct bm_range *whole, struct bm_index **out);

/* Frees a version, every node it uses and every range it holds. Only for a version that
 * shares nothing with another live version (the last one, at teardown). */
void bm_index_free(struct bm_index *idx);

/* The range containing addr; never NULL. The hot path of every dispatch. */
const struct bm_range *bm_index_lookup(const struct bm_index *idx, uint64_t addr);

/* The range after r in address order, or NULL when r ends at UINT64_MAX. */
const struct bm_range *bm_index_next(const struct bm_index *idx, const struct bm_range *r);

/*
 * Builds a new version equal to old except over [a, b], which is covered by ranges[0..n):
 * sorted, contiguous, ranges[0]->start == a, ranges[n-1]->last == b. a must be the start of
 * a range of old and b the last byte of a range of old (callers widen their window to
 * range bounds first). The new version owns the given ranges. old stays valid and unchanged.
 * The ranges of old inside [a, b] and the nodes of old that the new version does not use
 * are added to garbage; old's own header too. On -ENOMEM nothing changes: old is intact, the
 * given ranges still belong to the caller, garbage is as before. -EINVAL (nothing changes
 * either) if the window or the ranges break the rules above.
 *
 * Garbage, precisely: each pointer once, every one of them reachable from old and none from
 * the new version, and together all that old holds and the new version does not. The old
 * header is one of them (a version is its root node, and every edit makes a new root), so
 * old must not be used once the garbage is freed. Costs O(nodes on the changed paths +
 * ranges in the window) as a rule; a change that no longer fits a node's block, or that
 * changes a subtree's range count by a large factor, rebuilds that subtree, which can be the
 * whole index (e.g. a range placed beyond the lowest or highest boundary of all the others).
 */
int bm_index_replace(const struct bm_index *old, uint64_t a, uint64_t b,
                     struct bm_range *const *ranges, size_t n, struct bm_index **out,
                     struct bm_garbage *garbage);

/*
 * bm_index_replace that also appends to made (when not NULL) every node it allocated, so
 * that a caller chaining several replacements can drop the whole chain: freeing what made
 * lists, and nothing in garbage, leaves the first old version as it was.
 */
int bm_index_replace_tracked(const struct bm_index *old, uint64_t a, uint64_t b,
                             struct bm_range *const *ranges, size_t n, struct bm_index **out,
                             struct bm_garbage *garbage, struct bm_garbage *made);

/* Working storage an edit can keep for the next one, so that a stream of small edits
 * allocates nothing but what the new version holds. Zero-initialised; one edit at a time. */
struct bm_index_scratch {
	struct bm_garbage fresh, dead;
	struct bm_range **old;
	size_t old_cap;
};

/* bm_index_replace_tracked with its working storage taken from, and given back to, s. */
int bm_index_replace_reusing(const struct bm_index *old, uint64_t a, uint64_t b,
                             struct bm_range *const *ranges, size_t n, struct bm_index **out,
                             struct bm_garbage *garbage, struct bm_garbage *made,
                             struct bm_index_scratch *s);
void bm_index_scratch_release(struct bm_index_scratch *s);

/* Bytes of memory used by the version (nodes and ranges), for reporting. */
size_t bm_index_bytes(const struct bm_index *idx);

#endif
