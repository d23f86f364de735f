/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The index's node layout and its lookup, in a header so that dispatch can inline the
 * lookup on the hot path. Only index.c builds or changes nodes.
 */
#ifndef BUSMAP_SRC_INDEX_NODE_H
#define BUSMAP_SRC_INDEX_NODE_H

#include "index.h"
#include <stdbool.h>

/* Slots tag child nodes, so that a lookup returns range pointers without untagging. */
#define BM_TAG_NODE ((uintptr_t)1)

/* Root pages have 256 slots (2 KiB, like the root's page directory at most). */
#define BM_PAGE_ORDER 8
#define BM_PAGE_MASK  ((UINT64_C(1) << BM_PAGE_ORDER) - 1)

/* What a lookup reads comes first and the slots follow at once, so that a small node's
 * header and slots share a cache line: on a random access the node is one link of a chain
 * of dependent loads, and each line it spans can be one more miss. */
struct bm_node {
	uint64_t minus_base; /* 0 - the block's base: addr + minus_base is addr's offset */
	uint64_t span_last;  /* block size - 1 (UINT64_MAX: the whole space) */
	uint8_t shift;       /* log2 of the slot size; at most 63 */
	uint8_t order;       /* log2 of the slot count */
	uint8_t fine_shift;  /* root only: shift of its pages' slots */
	uintptr_t slot[];    /* then a struct bm_node_tail (bm_tail) */
};

/* The rest of a node, after its slots: read by edits, and by lookups outside the block. */
struct bm_node_tail {
	struct bm_range *below; /* the extent's addresses before the block; NULL if none */
	struct bm_range *above; /* the extent's addresses after the block; NULL if none */
	size_t count;           /* boundaries in the extent, after the extent's first address */
	size_t built;           /* count when the node's geometry was chosen */
	size_t bytes;           /* root only: bm_index_bytes */
};

static inline struct bm_node_tail *bm_tail(const struct bm_node *n)
{
	return (struct bm_node_tail *)(uintptr_t)&n->slot[(size_t)1 << n->order];
}

static inline bool bm_is_node(uintptr_t p)
{
	return p & BM_TAG_NODE;
}

static inline struct bm_node *bm_node_of(uintptr_t p)
{
	return (struct bm_node *)(p - BM_TAG_NODE);
}

static inline struct bm_node *bm_root(const struct bm_index *idx)
{
	return (struct bm_node *)idx;
}

static inline uint64_t bm_base(const struct bm_node *n)
{
	return 0 - n->minus_base;
}

static inline struct bm_range *bm_outside(const struct bm_node *n, uint64_t addr)
{
	return addr < bm_base(n) ? bm_tail(n)->below : bm_tail(n)->above;
}

static inline struct bm_range *bm_find_range(const struct bm_node *n, uint64_t addr)
{
	for (;;) {
		uint64_t rel = addr + n->minus_base;

		/* One unsigned comparison catches both sides of the block. */
		if (rel > n->span_last)
			return bm_outside(n, addr);

		uintptr_t p = n->slot[rel >> n->shift];

		if (!bm_is_node(p))
			return (struct bm_range *)p;
		n = bm_node_of(p);
	}
}

/* The range containing addr (see bm_index_lookup). */
static inline const struct bm_range *bm_index_lookup_inline(const struct bm_index *idx,
                                                            uint64_t addr)
{
	const struct bm_node *root = bm_root(idx);
	uint64_t rel = addr + root->minus_base;

	if (rel > root->span_last)
		return bm_outside(root, addr);

	/* The root and one of its pages, as a single array of fine slots. */
	uint64_t i = rel >> root->fine_shift;
	const struct bm_node *page = bm_node_of(root->slot[i >> BM_PAGE_ORDER]);
	uintptr_t p = page->slot[i & BM_PAGE_MASK];

	if (!bm_is_node(p))
		return (const struct bm_range *)p;
	return bm_find_range(bm_node_of(p), addr);
}

#endif
