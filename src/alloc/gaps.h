/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The free space of one window, and the two ways of taking a naturally aligned piece of it:
 * best fit over every free gap, or bhyve's bump pointer, which never looks back.
 */
#ifndef BUSMAP_ALLOC_GAPS_H
#define BUSMAP_ALLOC_GAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gap {
	uint64_t start, last;
};

struct gaps {
	struct gap *v; /* disjoint, in address order */
	size_t n, cap;
	bool bump;
};

/* A window [start, last]; start > last makes an empty one. -ENOMEM. */
int gaps_init(struct gaps *g, uint64_t start, uint64_t last, bool bump);
void gaps_fini(struct gaps *g);
/*
 * Takes size bytes at a multiple of align (a power of two) whose last byte is at most
 * max_last. Best fit picks the gap that leaves the least free space over (the lowest on a
 * tie) and the lowest aligned address in it; bump takes the lowest aligned address above
 * everything taken so far. -ENOSPC, -ENOMEM.
 */
int gaps_take(struct gaps *g, uint64_t size, uint64_t align, uint64_t max_last, uint64_t *addr);

#endif
