/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Baseline for the benchmark: an MMIO map built the way bhyve's usr.sbin/bhyve/mem.c builds
 * its own (re-implemented here, not copied).
 *
 * - One red-black tree (the BSD <sys/tree.h> RB_* macros) of disjoint [base, end] ranges,
 *   compared so that any two overlapping ranges are "equal": a lookup searches for the
 *   one-byte range [addr, addr].
 * - One pthread rwlock: a dispatch holds it for reading around the lookup AND the handler
 *   call; register and unregister take it for writing.
 * - A per-vCPU hint array (one cached range per vCPU, all in one plain array as in bhyve)
 *   checked before the tree; unregister clears every hint that points at the removed range.
 * - Unregister finds the range by its base address, as bhyve's unregister_mem does.
 * - The rwlock lets a waiting writer in before new readers, as FreeBSD's rwlocks do (glibc's
 *   default would prefer readers and starve a writer beside a busy vCPU).
 * Left out, as the benchmark does not reach them: bhyve's second ("fallback") tree and its
 * instruction emulation between lookup and handler.
 *
 * The handler shape follows busmap's io callbacks: opaque pointer, offset in the range,
 * size, value.
 */
#ifndef BUSMAP_BENCH_BASELINE_BHYVE_H
#define BUSMAP_BENCH_BASELINE_BHYVE_H

#include <stdint.h>

struct bb_ops {
	int (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
	int (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct bb_map;

/* A map for vCPUs 0 .. max_vcpus - 1. Returns NULL when out of memory. */
struct bb_map *bb_map_new(unsigned max_vcpus);
/* Frees the map and every range still registered. No dispatch may be running. */
void bb_map_free(struct bb_map *m);

/* Registers [base, base + size). Returns 0, EINVAL (size 0 or wraps), EEXIST (overlaps a
 * registered range) or ENOMEM. Positive errno values, as in bhyve. */
int bb_register(struct bb_map *m, uint64_t base, uint64_t size, const struct bb_ops *ops,
                void *opaque);
/* Removes the range whose base is base. Returns 0 or ENOENT. */
int bb_unregister(struct bb_map *m, uint64_t base);

/* Dispatches an access from vCPU vcpu. Returns the handler's value, ESRCH when no range
 * holds addr, or EINVAL for a bad vCPU index. */
int bb_read(struct bb_map *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t *value);
int bb_write(struct bb_map *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t value);

#endif
