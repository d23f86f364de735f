/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Free gaps of a window. A bump allocator keeps one gap, from its pointer to the end, and
 * drops whatever alignment skips, as bhyve's pci_emul_alloc_resource does; best fit keeps
 * every gap so that later, smaller pieces can fill the holes alignment left.
 */
#include "gaps.h"
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gaps_init(struct gaps *g, uint64_t start, uint64_t last, bool bump)
{
	*g = (struct gaps){.bump = bump};
	if (start > last)
		return 0;
	int err = bm_grow(&g->v, &g->cap, 0, sizeof(*g->v));
	if (err)
		return err;
	g->v[0] = (struct gap){start, last};
	g->n = 1;
	return 0;
}

void gaps_fini(struct gaps *g)
{
	free(g->v);
	*g = (struct gaps){0};
}

/* Where a piece would go in gap; false if it does not fit. */
static bool fit(const struct gap *gap, uint64_t size, uint64_t align, uint64_t max_last,
                uint64_t *at)
{
	uint64_t mask = align - 1;
	if (gap->start > UINT64_MAX - mask)
		return false;
	uint64_t a = (gap->start + mask) & ~mask;
	if (a > gap->last || size - 1 > gap->last - a)
		return false;
	*at = a;
	return a + (size - 1) <= max_last;
}

/* Free bytes minus one that taking size bytes out of gap leaves, alignment holes included. */
static uint64_t leftover(const struct gap *gap, uint64_t size)
{
	return (gap->last - gap->start) - (size - 1);
}

static int remove_piece(struct gaps *g, size_t i, uint64_t a, uint64_t size)
{
	struct gap old = g->v[i];
	uint64_t end = a + (size - 1);
	bool head = a > old.start && !g->bump;
	bool tail = end < old.last;
	if (head && tail) {
		int err = bm_grow(&g->v, &g->cap, g->n, sizeof(*g->v));
		if (err)
			return err;
		memmove(&g->v[i + 2], &g->v[i + 1], (g->n - i - 1) * sizeof(*g->v));
		g->n++;
		g->v[i] = (struct gap){old.start, a - 1};
		g->v[i + 1] = (struct gap){end + 1, old.last};
	} else if (head) {
		g->v[i].last = a - 1;
	} else if (tail) {
		g->v[i] = (struct gap){end + 1, old.last};
	} else {
		memmove(&g->v[i], &g->v[i + 1], (g->n - i - 1) * sizeof(*g->v));
		g->n--;
	}
	return 0;
}

int gaps_take(struct gaps *g, uint64_t size, uint64_t align, uint64_t max_last, uint64_t *addr)
{
	size_t best = g->n;
	uint64_t best_at = 0;
	for (size_t i = 0; i < g->n; i++) {
		uint64_t at;
		if (!fit(&g->v[i], size, align, max_last, &at))
			continue;
		if (best == g->n || leftover(&g->v[i], size) < leftover(&g->v[best], size)) {
			best = i;
			best_at = at;
		}
	}
	if (best == g->n)
		return -ENOSPC;
	int err = remove_piece(g, best, best_at, size);
	if (!err)
		*addr = best_at;
	return err;
}
