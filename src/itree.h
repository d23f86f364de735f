/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An intrusive interval tree: a balanced binary search tree of [start, last] intervals,
 * ordered by start, where every node also knows the largest last in its subtree, so that
 * the intervals overlapping a window are found in O(log n + k) when no interval contains
 * another (siblings that do not overlap), and O(log n + k log(n/k)) at worst.
 *
 * Containers keep their subregions in one, so that re-rendering a small window of a
 * container with 100 000 subregions costs a few dozen steps, not a walk over all of them.
 * Writer-side only: not safe for concurrent use.
 */
#ifndef BUSMAP_SRC_ITREE_H
#define BUSMAP_SRC_ITREE_H

#include <stddef.h>
#include <stdint.h>

struct bm_itree_node {
	struct bm_itree_node *left, *right, *parent;
	uint64_t start;    /* set by the caller before insertion, not changed while inserted */
	uint64_t last;     /* inclusive; idem */
	uint64_t max_last; /* maintained by the tree */
	int height;        /* maintained by the tree */
};

struct bm_itree {
	struct bm_itree_node *root;
	size_t count;
};

void bm_itree_init(struct bm_itree *t);
/* Equal starts are allowed; their relative order is unspecified. Cannot fail. */
void bm_itree_insert(struct bm_itree *t, struct bm_itree_node *n);
/* n must be in t. Cannot fail. */
void bm_itree_remove(struct bm_itree *t, struct bm_itree_node *n);

/* Calls fn for every node overlapping [a, b] (a <= b), in start order; stops and returns
 * fn's value when it is nonzero, else returns 0. fn must not modify the tree. */
int bm_itree_query(const struct bm_itree *t, uint64_t a, uint64_t b,
		   int (*fn)(void *arg, struct bm_itree_node *n), void *arg);

/* In-order iteration: first node, and the one after n (NULL at the end). */
struct bm_itree_node *bm_itree_first(const struct bm_itree *t);
struct bm_itree_node *bm_itree_next(const struct bm_itree_node *n);

#endif
