/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The flat-view index: a persistent radix trie over address bits, with path compression and
 * a fanout chosen per node.
 *
 * A node covers a block of 2^bits addresses [base, base + span_last], cut into 2^order
 * equal slots of 2^shift addresses (shift + order == bits). A slot holds either a range
 * pointer, when the whole slot lies inside that range, or a tagged pointer to a child node,
 * when range boundaries fall inside the slot. The addresses a node answers for (its extent)
 * are those of the parent's slot, or every address for the root. The block is chosen at
 * build time to hold all the boundaries of the extent and no more than needed, so a lone
 * small range deep in a large gap costs one tiny node rather than a chain of them; the
 * extent's addresses below or above the block belong to one range each, which the node
 * keeps in below and above (NULL when there are no such addresses). The block starts at
 * the first boundary rounded down to a slot, not at a multiple of its own size, so that it
 * does not double when the boundaries straddle a large power of two; it may thus overhang
 * its extent, and the slots lookups cannot reach hold 0.
 *
 * The fanout is picked when a node is built, from the number of boundaries in its extent
 * (about four slots per boundary), but never more than it takes to separate every
 * boundary: dense areas get wide nodes, so that lookups usually take two or three levels,
 * each a subtraction, one comparison for both sides of the block, a shift and a load.
 *
 * The root is wider than the other nodes (up to 2^BM_ROOT_MAX_ORDER slots), as it sees the
 * whole map, but is paged so that an edit copies one page and the page directory, not all
 * of it: the root's slots are pages, nodes of fixed geometry (exactly one root slot, in
 * 2^BM_PAGE_ORDER slots) that are always nodes, whatever they hold. Lookups index the
 * root and a page in one step. A page lying inside a single range is a uniform page: all
 * its slots hold that range, and its header spans the whole space, so that the root slots
 * that range covers (consecutive ones) can share it and an edit that makes a large gap
 * writes one pointer per root slot, not a page.
 *
 * A version is its root node, so a lookup starts without an indirection and, as an edit
 * always makes a new root, the version costs no allocation of its own.
 *
 * Invariants the editing code relies on:
 *  - every range pointer a node holds applies to some address of the node's extent, so a
 *    subtree whose extent misses an edit's window holds no range of the window, and the
 *    next version can share it as is;
 *  - count is the number of boundaries (range starts) in (extent lo, extent hi].
 *
 * An edit copies the nodes whose extents meet the window and still fit it, rebuilds from
 * scratch the smallest subtrees that no longer do (a new boundary outside the block, or a
 * boundary count far from the one the fanout was chosen for), and shares the rest. Count
 * drift only triggers a rebuild once the subtree's count has changed by a large factor, so
 * such rebuilds are paid for by the edits that caused the change.
 */
#include "index.h"
#include "index_node.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Aim for 2^BM_FAN_SLACK slots per boundary: most slots then hold a single range. */
#define BM_FAN_SLACK 2
/* Inner nodes have at most 1024 slots: an edit below one copies them all. */
#define BM_MAX_ORDER 10
/* The root has 2^9 to 2^16 slots in all (at least two pages keeps its shift below 64). */
#define BM_ROOT_MIN_ORDER (BM_PAGE_ORDER + 1)
#define BM_ROOT_MAX_ORDER 16
/* Rebuild a subtree when its ideal fanout has grown 4x, or shrunk 8x, since it was built. */
#define BM_GROW_ORDERS   2
#define BM_SHRINK_ORDERS 3

/* Where a node sits, which decides how it is shaped. */
enum bm_kind {
	BM_INNER,
	BM_PAGE,
	BM_ROOT,
};

#ifdef BM_INDEX_TESTING
/* Lets the unit test make any allocation fail; not part of normal builds. */
static bool (*bm_index_test_fail_alloc)(void);

static void *bm_malloc(size_t size)
{
	if (bm_index_test_fail_alloc && bm_index_test_fail_alloc())
		return NULL;
	return malloc(size);
}

static void *bm_realloc(void *p, size_t size)
{
	if (bm_index_test_fail_alloc && bm_index_test_fail_alloc())
		return NULL;
	return realloc(p, size);
}
#else
#define bm_malloc  malloc
#define bm_realloc realloc
#endif

static uint64_t bm_min(uint64_t x, uint64_t y)
{
	return x < y ? x : y;
}

static uint64_t bm_max(uint64_t x, uint64_t y)
{
	return x > y ? x : y;
}

static uintptr_t bm_tag(struct bm_node *n)
{
	return (uintptr_t)n + BM_TAG_NODE;
}

static size_t bm_node_size(unsigned order)
{
	return sizeof(struct bm_node) + (sizeof(uintptr_t) << order) + sizeof(struct bm_node_tail);
}

static uint64_t bm_slot_lo(const struct bm_node *n, size_t j)
{
	return bm_base(n) + ((uint64_t)j << n->shift);
}

static uint64_t bm_slot_mask(const struct bm_node *n)
{
	return (UINT64_C(1) << n->shift) - 1;
}

/* ---- lookups ---- */

const struct bm_range *bm_index_lookup(const struct bm_index *idx, uint64_t addr)
{
	return bm_index_lookup_inline(idx, addr);
}

const struct bm_range *bm_index_next(const struct bm_index *idx, const struct bm_range *r)
{
	return r->last == UINT64_MAX ? NULL : bm_index_lookup(idx, r->last + 1);
}

size_t bm_index_bytes(const struct bm_index *idx)
{
	return bm_tail(bm_root(idx))->bytes;
}

/* ---- garbage ---- */

int bm_garbage_reserve(struct bm_garbage *g, size_t n)
{
	if (g->cap - g->n >= n)
		return 0;
	if (n > SIZE_MAX / sizeof(void *) - g->n)
		return -ENOMEM;

	size_t cap = g->cap ? g->cap : 16;

	while (cap < g->n + n)
		cap = cap > SIZE_MAX / (2 * sizeof(void *)) ? g->n + n : cap * 2;

	void **ptrs = bm_realloc(g->ptrs, cap * sizeof(void *));

	if (!ptrs)
		return -ENOMEM;
	g->ptrs = ptrs;
	g->cap = cap;
	return 0;
}

int bm_garbage_add(struct bm_garbage *g, void *p)
{
	int err = bm_garbage_reserve(g, 1);

	if (!err)
		g->ptrs[g->n++] = p;
	return err;
}

void bm_garbage_free_all(struct bm_garbage *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->ptrs[i]);
	g->n = 0;
}

void bm_garbage_release(struct bm_garbage *g)
{
	free(g->ptrs);
	g->ptrs = NULL;
	g->n = 0;
	g->cap = 0;
}

/* ---- walking a subtree ---- */

/* Calls node for every node of a subtree (children first, so it may free them) and range
 * for every range it holds, once each, in address order. Consecutive slots holding the same
 * node share a uniform page. */
struct bm_visitor {
	int (*node)(struct bm_visitor *v, struct bm_node *n);
	int (*range)(struct bm_visitor *v, struct bm_range *r);
	struct bm_range *prev; /* a range spanning several slots is met once per slot */
};

static int bm_visit_range(struct bm_visitor *v, struct bm_range *r)
{
	if (!v->range || r == v->prev)
		return 0;
	v->prev = r;
	return v->range(v, r);
}

static int bm_walk(struct bm_visitor *v, uintptr_t p)
{
	if (!bm_is_node(p))
		return bm_visit_range(v, (struct bm_range *)p);

	struct bm_node *n = bm_node_of(p);
	const struct bm_node_tail *tail = bm_tail(n);
	int err = tail->below ? bm_visit_range(v, tail->below) : 0;

	for (size_t j = 0; !err && j < (size_t)1 << n->order; j++) {
		uintptr_t c = n->slot[j];

		if (c && (bm_is_node(c) ? !j || c != n->slot[j - 1] : v->range != NULL))
			err = bm_walk(v, c);
	}
	if (!err && tail->above)
		err = bm_visit_range(v, tail->above);
	if (!err && v->node)
		err = v->node(v, n);
	return err;
}

struct bm_freer {
	struct bm_visitor v;
	struct bm_range *pending; /* freed once the walk is past it */
};

static int bm_free_node(struct bm_visitor *v, struct bm_node *n)
{
	(void)v;
	free(n);
	return 0;
}

static int bm_free_range(struct bm_visitor *v, struct bm_range *r)
{
	struct bm_freer *f = (struct bm_freer *)v;

	free(f->pending);
	f->pending = r;
	return 0;
}

void bm_index_free(struct bm_index *idx)
{
	if (!idx)
		return;

	struct bm_freer f = {.v = {.node = bm_free_node, .range = bm_free_range}};

	bm_walk(&f.v, bm_tag(bm_root(idx)));
	free(f.pending);
}

/* ---- building ---- */

struct bm_rvec {
	struct bm_range **v;
	size_t n, cap;
};

static int bm_rvec_push(struct bm_rvec *rv, struct bm_range *r)
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? 2 * rv->cap : 64;

		if (cap > SIZE_MAX / sizeof(*rv->v))
			return -ENOMEM;

		struct bm_range **v = bm_realloc(rv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rv->v = v;
		rv->cap = cap;
	}
	rv->v[rv->n++] = r;
	return 0;
}

/* One build or edit in progress: the old version, the window and its new ranges, and the
 * nodes allocated (to free on failure) and orphaned (for the garbage on success) so far. */
struct bm_edit {
	const struct bm_index *old;
	uint64_t a, b;
	struct bm_range *const *rs; /* new ranges of the window */
	size_t n;
	struct bm_rvec old_rs; /* old ranges of the window */
	struct bm_garbage fresh;
	struct bm_garbage dead;
	size_t added, removed;  /* node bytes */
	struct bm_node *made;   /* the last uniform page made, to share */
	struct bm_node *buried; /* the last uniform page buried, not to bury twice */
};

static unsigned bm_ceil_log2(size_t x)
{
	return x <= 1 ? 0 : 64 - (unsigned)__builtin_clzll((unsigned long long)x - 1);
}

/* The fanout (as a log2) a node over count boundaries should get, separation aside. */
static unsigned bm_fan_order(enum bm_kind kind, size_t count)
{
	unsigned order = bm_ceil_log2(count) + BM_FAN_SLACK;

	if (kind != BM_ROOT)
		return order < BM_MAX_ORDER ? order : BM_MAX_ORDER;
	if (order < BM_ROOT_MIN_ORDER)
		return BM_ROOT_MIN_ORDER;
	return order < BM_ROOT_MAX_ORDER ? order : BM_ROOT_MAX_ORDER;
}

static struct bm_node *bm_node_alloc(struct bm_edit *e, unsigned order)
{
	size_t size = bm_node_size(order);
	struct bm_node *n = bm_malloc(size);

	if (!n || bm_garbage_add(&e->fresh, n)) {
		free(n);
		return NULL;
	}
	e->added += size;
	return n;
}

/* The smallest slot size (as a log2) with which 2^order slots, starting at first rounded
 * down to a slot, reach upper; 64 - order when only the whole space does. */
static unsigned bm_fit_shift(uint64_t first, uint64_t upper, unsigned order)
{
	uint64_t width = upper - first;
	unsigned bits = width ? 64 - (unsigned)__builtin_clzll(width) : 0;
	unsigned shift = bits > order ? bits - order : 0;

	for (; shift + order < 64; shift++) {
		uint64_t base = first & ~((UINT64_C(1) << shift) - 1);

		if (upper - base <= (UINT64_C(1) << (shift + order)) - 1)
			break;
	}
	return shift;
}

/* Sets a geometry of 2^order slots of 2^shift addresses; a root's slots are its pages. */
static void bm_set_geometry(struct bm_node *n, enum bm_kind kind, uint64_t base, unsigned shift,
                            unsigned order)
{
	n->minus_base = 0 - base;
	n->span_last = shift + order == 64 ? UINT64_MAX : (UINT64_C(1) << (shift + order)) - 1;
	n->shift = (uint8_t)shift;
	n->order = (uint8_t)order;
	n->fine_shift = 0;
	if (kind == BM_ROOT) {
		n->fine_shift = (uint8_t)shift;
		n->shift = (uint8_t)(shift + BM_PAGE_ORDER);
		n->order = (uint8_t)(order - BM_PAGE_ORDER);
	}
}

/* The block and slots of a node of the given kind (not a page) over rs[0..k), k >= 2. */
static void bm_choose_geometry(struct bm_node *n, enum bm_kind kind, struct bm_range *const *rs,
                               size_t k)
{
	/* The block must hold every boundary b, in the sense base <= b <= block last + 1:
	 * addresses on either side of the block then belong to one range each. */
	uint64_t first = rs[1]->start;
	uint64_t upper = rs[k - 1]->start > first ? rs[k - 1]->start - 1 : first;
	unsigned order = bm_fan_order(kind, k - 1), align = 63;

	for (size_t i = 1; i < k; i++) {
		unsigned t = (unsigned)__builtin_ctzll(rs[i]->start);

		align = t < align ? t : align;
	}
	/* Fewer slots will do if they are small enough to separate all the boundaries: with
	 * a slot size dividing every boundary, no slot holds one inside. */
	for (unsigned o = kind == BM_ROOT ? BM_ROOT_MIN_ORDER : 0; o < order; o++) {
		if (bm_fit_shift(first, upper, o) <= align) {
			order = o;
			break;
		}
	}

	/* shift <= 63, as order is 0 only if shift <= align; and for a root shift + page
	 * order <= 63, as order >= page order + 1. */
	unsigned shift = bm_fit_shift(first, upper, order);
	uint64_t size_m1 = shift + order == 64 ? UINT64_MAX : (UINT64_C(1) << (shift + order)) - 1;
	uint64_t base = first & ~((UINT64_C(1) << shift) - 1);

	/* Near the top, slide the block down rather than let it wrap around. */
	if (base > UINT64_MAX - size_m1)
		base = 0 - size_m1 - 1;
	bm_set_geometry(n, kind, base, shift, order);
}

/* A page holding a single range, which any number of root slots over that range share. */
static uintptr_t bm_uniform_page(struct bm_edit *e, struct bm_range *r)
{
	if (e->made && e->made->slot[0] == (uintptr_t)r)
		return bm_tag(e->made);

	struct bm_node *n = bm_node_alloc(e, BM_PAGE_ORDER);

	if (!n)
		return 0;
	/* Right for any address, whichever root slot the lookup came from. */
	bm_set_geometry(n, BM_PAGE, 0, 64 - BM_PAGE_ORDER, BM_PAGE_ORDER);
	*bm_tail(n) = (struct bm_node_tail){0};
	for (size_t j = 0; j < (size_t)1 << BM_PAGE_ORDER; j++)
		n->slot[j] = (uintptr_t)r;
	e->made = n;
	return bm_tag(n);
}

/* Pages are the only nodes spanning the whole space with 2^BM_PAGE_ORDER slots. */
static bool bm_is_uniform(enum bm_kind kind, const struct bm_node *n)
{
	return kind == BM_PAGE && n->span_last == UINT64_MAX;
}

/* A page fills exactly one root slot, its extent. */
static void bm_page_geometry(struct bm_node *n, uint64_t lo, uint64_t hi)
{
	/* A root slot has at most 2^63 addresses. */
	bm_set_geometry(n, BM_PAGE, lo, (unsigned)__builtin_ctzll(hi - lo + 1) - BM_PAGE_ORDER,
	                BM_PAGE_ORDER);
}

static uintptr_t bm_build(struct bm_edit *e, enum bm_kind kind, struct bm_range *const *rs,
                          size_t k, uint64_t lo, uint64_t hi);

/* Builds the children of n, over the part of each slot inside the extent [lo, hi]. */
static int bm_fill_slots(struct bm_edit *e, struct bm_node *n, enum bm_kind kind,
                         struct bm_range *const *rs, size_t k, uint64_t lo, uint64_t hi)
{
	size_t i = 0;

	for (size_t j = 0; j < (size_t)1 << n->order; j++) {
		uint64_t slo = bm_slot_lo(n, j), shi = slo + bm_slot_mask(n);

		/* The block may overhang the extent; lookups never reach slots outside it. */
		if (shi < lo || slo > hi) {
			n->slot[j] = 0;
			continue;
		}
		slo = bm_max(slo, lo);
		shi = bm_min(shi, hi);
		while (rs[i]->last < slo)
			i++;

		size_t end = i;

		while (end + 1 < k && rs[end + 1]->start <= shi)
			end++;

		uintptr_t child = bm_build(e, kind == BM_ROOT ? BM_PAGE : BM_INNER, rs + i,
		                           end - i + 1, slo, shi);

		if (!child)
			return -ENOMEM;
		n->slot[j] = child;
		i = end;
	}
	return 0;
}

/*
 * A fresh subtree of the given kind for the extent [lo, hi], over the ranges rs[0..k) that
 * meet it (rs[0] holds lo, rs[k - 1] holds hi). Returns 0 on failure.
 */
static uintptr_t bm_build(struct bm_edit *e, enum bm_kind kind, struct bm_range *const *rs,
                          size_t k, uint64_t lo, uint64_t hi)
{
	if (k == 1 && kind == BM_INNER)
		return (uintptr_t)rs[0];
	if (k == 1 && kind == BM_PAGE)
		return bm_uniform_page(e, rs[0]);

	struct bm_node geom;

	if (kind == BM_PAGE)
		bm_page_geometry(&geom, lo, hi);
	else if (k == 1)
		bm_set_geometry(&geom, kind, 0, 64 - BM_ROOT_MIN_ORDER, BM_ROOT_MIN_ORDER);
	else
		bm_choose_geometry(&geom, kind, rs, k);

	struct bm_node *n = bm_node_alloc(e, geom.order);

	if (!n)
		return 0;
	*n = geom;

	uint64_t base = bm_base(n);

	*bm_tail(n) = (struct bm_node_tail){
	    .below = base > lo ? rs[0] : NULL,
	    .above = base + n->span_last < hi ? rs[k - 1] : NULL,
	    .count = k - 1,
	    .built = k - 1,
	};
	if (bm_fill_slots(e, n, kind, rs, k, lo, hi))
		return 0;
	return bm_tag(n);
}

int bm_index_new(struct bm_range *whole, struct bm_index **out)
{
	if (whole->start != 0 || whole->last != UINT64_MAX)
		return -EINVAL;

	struct bm_edit e = {0};
	uintptr_t root = bm_build(&e, BM_ROOT, &whole, 1, 0, UINT64_MAX);

	if (!root) {
		for (size_t i = 0; i < e.fresh.n; i++)
			free(e.fresh.ptrs[i]);
		bm_garbage_release(&e.fresh);
		return -ENOMEM;
	}
	bm_tail(bm_node_of(root))->bytes = e.added + sizeof(*whole);
	bm_garbage_release(&e.fresh);
	*out = (struct bm_index *)bm_node_of(root);
	return 0;
}

/* ---- editing ---- */

/* The largest i with rs[i]->start <= x; rs[0]->start <= x. */
static size_t bm_bsearch(struct bm_range *const *rs, size_t k, uint64_t x)
{
	size_t lo = 0, hi = k;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (rs[mid]->start <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* How many of rs[1..k) start in (lo, hi]. */
static size_t bm_starts_in(struct bm_range *const *rs, size_t k, uint64_t lo, uint64_t hi)
{
	if (k < 2 || rs[k - 1]->start <= lo || rs[1]->start > hi)
		return 0;

	size_t from = rs[1]->start > lo ? 1 : bm_bsearch(rs, k, lo) + 1;
	size_t to = bm_bsearch(rs, k, hi);

	return to >= from ? to - from + 1 : 0;
}

/* The range holding addr in the version being built. */
static struct bm_range *bm_new_lookup(const struct bm_edit *e, uint64_t addr)
{
	if (addr >= e->a && addr <= e->b)
		return e->rs[bm_bsearch(e->rs, e->n, addr)];
	return bm_find_range(bm_root(e->old), addr);
}

struct bm_burier {
	struct bm_visitor v;
	struct bm_edit *e;
};

static int bm_bury_node(struct bm_visitor *v, struct bm_node *n)
{
	struct bm_edit *e = ((struct bm_burier *)v)->e;

	if (bm_garbage_add(&e->dead, n))
		return -ENOMEM;
	e->removed += bm_node_size(n->order);
	return 0;
}

/* Every node of an old subtree the new version will not use goes to the dead list. */
static int bm_bury(struct bm_edit *e, uintptr_t p)
{
	struct bm_burier b = {.v = {.node = bm_bury_node}, .e = e};

	return bm_walk(&b.v, p);
}

/* A fresh subtree for an extent inside the window. */
static uintptr_t bm_build_window(struct bm_edit *e, enum bm_kind kind, uint64_t lo, uint64_t hi)
{
	size_t i = bm_bsearch(e->rs, e->n, lo);
	size_t end = bm_bsearch(e->rs, e->n, hi);

	return bm_build(e, kind, e->rs + i, end - i + 1, lo, hi);
}

/* Collects, in address order, the ranges the new version has over [lo, hi]: the old
 * subtree's, with the window's new ranges in place of its old ones. */
struct bm_gatherer {
	struct bm_burier b;
	struct bm_rvec out;
	uint64_t lo, hi;
	bool spliced;
};

static int bm_gather_range(struct bm_visitor *v, struct bm_range *r)
{
	struct bm_gatherer *g = (struct bm_gatherer *)v;
	struct bm_edit *e = g->b.e;
	int err = 0;

	if (r->start < e->a || r->last > e->b)
		return bm_rvec_push(&g->out, r);
	if (g->spliced)
		return 0;
	g->spliced = true;

	size_t i = bm_bsearch(e->rs, e->n, bm_max(g->lo, e->a));
	size_t end = bm_bsearch(e->rs, e->n, bm_min(g->hi, e->b));

	for (; !err && i <= end; i++)
		err = bm_rvec_push(&g->out, e->rs[i]);
	return err;
}

/* Replaces an old subtree over [lo, hi] by a fresh one for the new version. */
static uintptr_t bm_rebuild(struct bm_edit *e, enum bm_kind kind, uintptr_t p, uint64_t lo,
                            uint64_t hi)
{
	struct bm_gatherer g = {
	    .b = {.v = {.node = bm_bury_node, .range = bm_gather_range}, .e = e},
	    .lo = lo,
	    .hi = hi,
	};
	uintptr_t res = 0;

	if (!bm_walk(&g.b.v, p))
		res = bm_build(e, kind, g.out.v, g.out.n, lo, hi);
	free(g.out.v);
	return res;
}

static uintptr_t bm_update(struct bm_edit *e, enum bm_kind kind, uintptr_t p, uint64_t lo,
                           uint64_t hi);

/* A copy of old node t over [lo, hi], same geometry, with the slots and edges the window
 * meets updated. */
static uintptr_t bm_copy_update(struct bm_edit *e, enum bm_kind kind, struct bm_node *t,
                                uint64_t lo, uint64_t hi, size_t count)
{
	struct bm_node *n = bm_node_alloc(e, t->order);

	if (!n)
		return 0;
	memcpy(n, t, bm_node_size(t->order));
	if (bm_garbage_add(&e->dead, t))
		return 0;
	e->removed += bm_node_size(t->order);
	bm_tail(n)->count = count;

	uint64_t base = bm_base(n), last = base + n->span_last;
	uint64_t from = bm_max(e->a, bm_max(base, lo)), to = bm_min(e->b, bm_min(last, hi));
	size_t i = 0; /* the window's new range holding the current slot's start */

	size_t jmax = (to - base) >> n->shift;

	for (size_t j = (from - base) >> n->shift; from <= to && j <= jmax; j++) {
		uint64_t slo = bm_slot_lo(n, j), clo = bm_max(slo, lo);
		uint64_t chi = bm_min(slo + bm_slot_mask(n), hi);

		/* A window over a wide gap crosses many slots that each end up holding one new
		 * range: fill each run of them in one pass rather than search and build for
		 * each slot. */
		if (kind != BM_ROOT && clo >= e->a && chi <= e->b) {
			while (e->rs[i]->last < clo)
				i++;

			uint64_t lim = bm_min(e->rs[i]->last, e->b);

			if (lim >= chi) {
				/* The last slot of the run is the last one lim covers whole. */
				size_t k = hi <= lim ? jmax : ((lim - base + 1) >> n->shift) - 1;
				uintptr_t r = (uintptr_t)e->rs[i];

				for (k = k < jmax ? k : jmax; j <= k; j++) {
					if (bm_is_node(n->slot[j]) && bm_bury(e, n->slot[j]))
						return 0;
					n->slot[j] = r;
				}
				j--;
				continue;
			}
		}
		uintptr_t child =
		    bm_update(e, kind == BM_ROOT ? BM_PAGE : BM_INNER, n->slot[j], clo, chi);

		if (!child)
			return 0;
		n->slot[j] = child;
	}
	struct bm_node_tail *tail = bm_tail(n);
	if (tail->below)
		tail->below = bm_new_lookup(e, base - 1);
	if (tail->above)
		tail->above = bm_new_lookup(e, last + 1);
	return bm_tag(n);
}

/* Whether old node t over [lo, hi] can keep its geometry with count boundaries there. */
static bool bm_still_fits(const struct bm_edit *e, enum bm_kind kind, const struct bm_node *t,
                          uint64_t lo, uint64_t hi, size_t count)
{
	if (kind == BM_PAGE)
		return true;
	/* The extent meets the window without lying inside it, so a or b + 1 is a boundary
	 * in it. */
	assert(count > 0);

	uint64_t first = bm_new_lookup(e, lo)->last + 1;
	uint64_t upper = bm_new_lookup(e, hi)->start - 1;
	unsigned want = bm_fan_order(kind, count), had = bm_fan_order(kind, bm_tail(t)->built);

	return first >= bm_base(t) && upper - bm_base(t) <= t->span_last &&
	       want < had + BM_GROW_ORDERS && want + BM_SHRINK_ORDERS > had;
}

/* The new version's subtree of the given kind for the extent [lo, hi], which meets the
 * window, from the old version's subtree p there. Returns 0 on failure. */
static uintptr_t bm_update(struct bm_edit *e, enum bm_kind kind, uintptr_t p, uint64_t lo,
                           uint64_t hi)
{
	/* A single old range meeting the window lies inside it: the window is whole ranges. */
	if (!bm_is_node(p))
		return bm_build_window(e, kind, lo, hi);
	struct bm_node *t = bm_node_of(p);

	if (lo >= e->a && hi <= e->b) {
		/* The root slots sharing a uniform page are updated one after the other. A
		 * uniform page holds no node: it is buried without a walk. */
		if (t != e->buried &&
		    (bm_is_uniform(kind, t) ? bm_bury_node(&(struct bm_burier){.e = e}.v, t)
		                            : bm_bury(e, p)))
			return 0;
		if (bm_is_uniform(kind, t))
			e->buried = t;
		return bm_build_window(e, kind, lo, hi);
	}
	/* A uniform page lies inside one range: meeting the window, it is inside it. */
	assert(!bm_is_uniform(kind, t));

	/* Boundaries only change strictly inside the window: a and b + 1 stay. */
	size_t count = bm_tail(t)->count + bm_starts_in(e->rs, e->n, lo, hi) -
	               bm_starts_in(e->old_rs.v, e->old_rs.n, lo, hi);

	if (!bm_still_fits(e, kind, t, lo, hi, count))
		return bm_rebuild(e, kind, p, lo, hi);
	return bm_copy_update(e, kind, t, lo, hi, count);
}

static int bm_check_window(const struct bm_index *old, uint64_t a, uint64_t b,
                           struct bm_range *const *ranges, size_t n)
{
	if (!n || a > b || ranges[0]->start != a || ranges[n - 1]->last != b)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ranges[i]->start > ranges[i]->last ||
		    (i && ranges[i]->start != ranges[i - 1]->last + 1))
			return -EINVAL;
	if (bm_index_lookup(old, a)->start != a || bm_index_lookup(old, b)->last != b)
		return -EINVAL;
	return 0;
}

static void bm_edit_release(struct bm_edit *e, struct bm_index_scratch *s)
{
	if (s) {
		*s = (struct bm_index_scratch){
		    .fresh = {e->fresh.ptrs, 0, e->fresh.cap},
		    .dead = {e->dead.ptrs, 0, e->dead.cap},
		    .old = e->old_rs.v,
		    .old_cap = e->old_rs.cap,
		};
		return;
	}
	free(e->old_rs.v);
	bm_garbage_release(&e->fresh);
	bm_garbage_release(&e->dead);
}

void bm_index_scratch_release(struct bm_index_scratch *s)
{
	free(s->old);
	bm_garbage_release(&s->fresh);
	bm_garbage_release(&s->dead);
	*s = (struct bm_index_scratch){0};
}

int bm_index_replace(const struct bm_index *old, uint64_t a, uint64_t b,
                     struct bm_range *const *ranges, size_t n, struct bm_index **out,
                     struct bm_garbage *garbage)
{
	return bm_index_replace_tracked(old, a, b, ranges, n, out, garbage, NULL);
}

int bm_index_replace_tracked(const struct bm_index *old, uint64_t a, uint64_t b,
                             struct bm_range *const *ranges, size_t n, struct bm_index **out,
                             struct bm_garbage *garbage, struct bm_garbage *made)
{
	return bm_index_replace_reusing(old, a, b, ranges, n, out, garbage, made, NULL);
}

int bm_index_replace_reusing(const struct bm_index *old, uint64_t a, uint64_t b,
                             struct bm_range *const *ranges, size_t n, struct bm_index **out,
                             struct bm_garbage *garbage, struct bm_garbage *made,
                             struct bm_index_scratch *s)
{
	int err = bm_check_window(old, a, b, ranges, n);

	if (err)
		return err;

	struct bm_edit e = {.old = old, .a = a, .b = b, .rs = ranges, .n = n};
	uintptr_t p = 0;

	if (s) {
		e.fresh = s->fresh;
		e.dead = s->dead;
		e.old_rs = (struct bm_rvec){s->old, 0, s->old_cap};
		e.fresh.n = e.dead.n = 0;
	}

	for (const struct bm_range *r = bm_index_lookup(old, a);; r = bm_index_next(old, r)) {
		if (bm_rvec_push(&e.old_rs, (struct bm_range *)r))
			goto fail;
		if (r->last >= b)
			break;
	}
	/* The old root is always among the dead: every edit makes a new root. */
	p = bm_update(&e, BM_ROOT, bm_tag(bm_root(old)), 0, UINT64_MAX);
	if (!p || bm_garbage_reserve(garbage, e.dead.n + e.old_rs.n) ||
	    (made && bm_garbage_reserve(made, e.fresh.n)))
		goto fail;

	/* Nothing can fail from here on. */
	for (size_t i = 0; made && i < e.fresh.n; i++)
		made->ptrs[made->n++] = e.fresh.ptrs[i];
	for (size_t i = 0; i < e.dead.n; i++)
		garbage->ptrs[garbage->n++] = e.dead.ptrs[i];
	for (size_t i = 0; i < e.old_rs.n; i++)
		garbage->ptrs[garbage->n++] = e.old_rs.v[i];

	struct bm_node *root = bm_node_of(p);

	bm_tail(root)->bytes = bm_tail(bm_root(old))->bytes + e.added - e.removed +
	                       n * sizeof(struct bm_range) - e.old_rs.n * sizeof(struct bm_range);
	bm_edit_release(&e, s);
	*out = (struct bm_index *)root;
	return 0;

fail:
	for (size_t i = 0; i < e.fresh.n; i++)
		free(e.fresh.ptrs[i]);
	bm_edit_release(&e, s);
	return -ENOMEM;
}
