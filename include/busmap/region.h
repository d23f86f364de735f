/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bm_region: a piece of a guest address space.
 *
 * A region is io (callbacks), ram (host memory accessed by copy), container (holds other
 * regions at offsets) or alias (a window onto another region). Regions are created from a
 * bm_system, placed into containers with a priority, and changed only through their handle:
 * nothing here finds "the region at address X". Where regions overlap, the space's flat view
 * follows fixed rules (see bm_space_new): higher priority wins among siblings, and among
 * equal priorities the one most recently added or moved wins.
 *
 * Sizes are 1 .. 2^64 bytes; BM_SIZE_ALL (UINT64_MAX) stands for 2^64, as in QEMU, so a
 * region of exactly 2^64 - 1 bytes cannot be made.
 *
 * Threads: every function here takes the system's writer lock and may be called from any
 * thread, including from a region callback inside a dispatch. None may be called from a
 * listener or conflict callback (-EDEADLK). Reads of a region's attributes (name, size,
 * offset...) are for the writer side: they are not synchronised with concurrent changes.
 *
 * Lifetime: the caller owns each region it creates and destroys it with bm_region_destroy
 * (or lets bm_system_free do it). After bm_region_del or bm_region_destroy returns,
 * dispatches that had already looked the region up may still be running its callbacks;
 * after a following bm_synchronize, none is. The region's own memory is reclaimed only once
 * no dispatch can reach it.
 */
#ifndef BUSMAP_REGION_H
#define BUSMAP_REGION_H

#include <busmap/system.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_region bm_region;
typedef struct bm_vcpu bm_vcpu;

#define BM_SIZE_ALL UINT64_MAX

/* Access-size masks: bit n set means an access of (1 << n) bytes. */
#define BM_ACCESS_1   0x1u
#define BM_ACCESS_2   0x2u
#define BM_ACCESS_4   0x4u
#define BM_ACCESS_8   0x8u
#define BM_ACCESS_ALL 0xfu

enum bm_region_kind {
	BM_REGION_IO,
	BM_REGION_RAM,
	BM_REGION_CONTAINER,
	BM_REGION_ALIAS,
};

/*
 * Callbacks of an io region. offset is relative to the region; size is 1, 2, 4 or 8 and is
 * always one of impl_sizes; offset is aligned to size and offset + size <= region size.
 * Values are little-endian: byte n of the access is bits 8n..8n+7. A read stores a value
 * that fits in size bytes (the dispatch passes it on as stored, to keep the exit path
 * short). A callback returns 0 or a negative errno, which the dispatch passes back to its
 * caller. A NULL read reads all ones; a NULL write drops the value.
 */
struct bm_region_ops {
	int (*read)(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value);
	int (*write)(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value);
	/* Guest access sizes accepted; others are refused with -EOPNOTSUPP and reach no
	 * callback. 0 means BM_ACCESS_ALL. */
	unsigned valid_sizes;
	/* Sizes the callbacks implement; the core splits larger accesses and widens smaller or
	 * unaligned ones (a narrow write becomes read-modify-write of the enclosing unit).
	 * 0 means the same as valid_sizes. */
	unsigned impl_sizes;
};

/* Creation. name is copied (NULL is taken as ""); returns 0, -EINVAL or -ENOMEM. */
BM_API int bm_region_new_io(bm_system *sys, const char *name, uint64_t size,
                            const struct bm_region_ops *ops, void *opaque, bm_region **out);
/* host must stay valid, and at least size bytes long, until the region is destroyed. */
BM_API int bm_region_new_ram(bm_system *sys, const char *name, uint64_t size, void *host,
                             bm_region **out);
BM_API int bm_region_new_container(bm_system *sys, const char *name, uint64_t size,
                                   bm_region **out);
/* Window [offset, offset + size) of target (the part past target's end shows nothing).
 * Loops through aliases are refused when they would close, by bm_region_add. */
BM_API int bm_region_new_alias(bm_system *sys, const char *name, bm_region *target, uint64_t offset,
                               uint64_t size, bm_region **out);

/*
 * Removes the region from its container if it has one, detaches its subregions (they
 * become parentless, still owned by their creators) and frees it once no dispatch can reach
 * it. -EBUSY if an alias still targets it, or if it is a space's root (nothing changes).
 * NULL is accepted and ignored, like free(NULL).
 */
BM_API int bm_region_destroy(bm_region *r);

/*
 * Places child in the container parent at offset with priority. -EEXIST if child already
 * has a parent; -ENOTDIR if parent is not a container; -ELOOP if child reaches parent (parent is
 * child, one of its descendants, or shown by an alias inside child: the map would contain
 * itself); -ERANGE if offset + size - 1 passes 2^64 - 1; -EXDEV if they come from
 * different systems; -EINVAL if child is a space's root.
 */
BM_API int bm_region_add(bm_region *parent, bm_region *child, uint64_t offset, int priority);

/* Removes the region from its container. -ENOENT if it has none. Always succeeds otherwise,
 * whatever else overlaps it. */
BM_API int bm_region_del(bm_region *r);

/* Changes the offset in the parent; the region becomes the most recent among its equal-
 * priority siblings even when the offset is unchanged. -ENOENT without parent, -ERANGE. */
BM_API int bm_region_move(bm_region *r, uint64_t offset);

BM_API int bm_region_set_enabled(bm_region *r, bool enabled);
BM_API int bm_region_set_priority(bm_region *r, int priority);
/* -ERANGE if the new size would pass 2^64 - 1 at the current offset. */
BM_API int bm_region_resize(bm_region *r, uint64_t size);
/* Changes where an alias looks into its target. -EINVAL if r is not an alias. */
BM_API int bm_region_set_alias_offset(bm_region *r, uint64_t offset);
/* Exclusive regions (BARs, typically) record a conflict when they overlap each other. */
BM_API int bm_region_set_exclusive(bm_region *r, bool exclusive);

/* Writer-side accessors; NULL-safe (return 0/NULL/false for NULL). */
BM_API const char *bm_region_name(const bm_region *r);
BM_API enum bm_region_kind bm_region_kind(const bm_region *r);
/* Size; BM_SIZE_ALL for 2^64. */
BM_API uint64_t bm_region_size(const bm_region *r);
BM_API uint64_t bm_region_offset(const bm_region *r);
BM_API int bm_region_priority(const bm_region *r);
BM_API bool bm_region_enabled(const bm_region *r);
BM_API bool bm_region_exclusive(const bm_region *r);
BM_API bm_region *bm_region_parent(const bm_region *r);
BM_API void *bm_region_opaque(const bm_region *r);

#ifdef __cplusplus
}
#endif
#endif
