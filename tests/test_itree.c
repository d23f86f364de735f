/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Interval tree tests: a structural checker run after every operation of the smaller runs,
 * a long differential run against a brute-force scan, and degenerate shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "itree.h"

struct item {
	struct bm_itree_node node;
	int in_tree;
	int seen; /* set by the query callback, to compare sets */
};

#define ITEM(n) ((struct item *)((char *)(n)-offsetof(struct item, node)))

/* splitmix64: a fixed seed makes every failure reproducible. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static int overlaps(const struct bm_itree_node *n, uint64_t a, uint64_t b)
{
	return n->start <= b && n->last >= a;
}

/* ---- structural checker ---- */

struct subtree_info {
	int height;
	size_t count;
	uint64_t min_start, max_start, max_last;
};

/* Recursion depth is the tree height, which the AVL check keeps logarithmic. */
static struct subtree_info check_subtree(const struct bm_itree_node *n,
                                         const struct bm_itree_node *parent)
{
	struct subtree_info l = {0}, r = {0}, me;

	assert_ptr_equal(n->parent, parent);
	assert_true(n->start <= n->last);
	if (n->left) {
		l = check_subtree(n->left, n);
		assert_true(l.max_start <= n->start);
	}
	if (n->right) {
		r = check_subtree(n->right, n);
		assert_true(r.min_start >= n->start);
	}
	assert_true(abs(l.height - r.height) <= 1);
	me.height = 1 + (l.height > r.height ? l.height : r.height);
	assert_int_equal(n->height, me.height);
	me.count = 1 + l.count + r.count;
	me.min_start = n->left ? l.min_start : n->start;
	me.max_start = n->right ? r.max_start : n->start;
	me.max_last = n->last;
	if (n->left && l.max_last > me.max_last)
		me.max_last = l.max_last;
	if (n->right && r.max_last > me.max_last)
		me.max_last = r.max_last;
	assert_true(n->max_last == me.max_last);
	return me;
}

static void check_tree(const struct bm_itree *t)
{
	const struct bm_itree_node *n, *prev = NULL;
	size_t walked = 0;

	if (!t->root) {
		assert_int_equal(t->count, 0);
		assert_null(bm_itree_first(t));
		return;
	}
	assert_int_equal(check_subtree(t->root, NULL).count, t->count);
	/* first/next must agree with the shape checked above. */
	for (n = bm_itree_first(t); n; n = bm_itree_next(n)) {
		if (prev)
			assert_true(prev->start <= n->start);
		prev = n;
		walked++;
	}
	assert_int_equal(walked, t->count);
}

/* ---- query checking ---- */

struct collect {
	struct bm_itree_node **out;
	size_t n, cap;
	size_t stop_after; /* 0: never stop */
};

static int collect_cb(void *arg, struct bm_itree_node *n)
{
	struct collect *c = arg;

	assert_true(c->n < c->cap);
	c->out[c->n++] = n;
	assert_false(ITEM(n)->seen);
	ITEM(n)->seen = 1;
	if (c->stop_after && c->n == c->stop_after)
		return (int)c->n + 1000;
	return 0;
}

/*
 * The query must report exactly the in-order sequence filtered by overlap: that fixes the
 * order (including among equal starts) without the brute force needing to know it. The
 * brute-force scan over pool then pins down the set independently of the tree's walk.
 */
static void check_query(const struct bm_itree *t, struct item *pool, size_t npool, uint64_t a,
                        uint64_t b, size_t stop_after)
{
	static struct bm_itree_node *out[1 << 16];
	struct collect c = {out, 0, sizeof(out) / sizeof(out[0]), stop_after};
	const struct bm_itree_node *n;
	size_t i = 0, expect = 0;
	int r;

	r = bm_itree_query(t, a, b, collect_cb, &c);
	for (n = bm_itree_first(t); n && i < c.n; n = bm_itree_next(n)) {
		if (overlaps(n, a, b))
			assert_ptr_equal(out[i++], n);
	}
	assert_int_equal(i, c.n);
	for (size_t k = 0; k < npool; k++) {
		if (pool[k].in_tree && overlaps(&pool[k].node, a, b)) {
			expect++;
			if (!stop_after)
				assert_true(pool[k].seen);
		} else {
			assert_false(pool[k].seen);
		}
	}
	if (stop_after && expect >= stop_after) {
		assert_int_equal(c.n, stop_after);
		assert_int_equal(r, (int)stop_after + 1000);
	} else {
		assert_int_equal(c.n, expect);
		assert_int_equal(r, 0);
	}
	for (i = 0; i < c.n; i++)
		ITEM(out[i])->seen = 0;
}

/* ---- random intervals and windows ---- */

static uint64_t rnd_coord(void)
{
	switch (rnd_below(6)) {
	case 0:
		return 0;
	case 1:
		return UINT64_MAX - rnd_below(4);
	case 2:
		return rnd();
	case 3:
		return rnd_below(1 << 20);
	default:
		/* A small universe forces overlaps and equal starts. */
		return rnd_below(2000);
	}
}

/* wide: allow the rare interval spanning most of the space, which overlaps every window. */
static void rnd_range(uint64_t *first, uint64_t *last, int wide)
{
	uint64_t x, y;

	if (wide && rnd_below(200) == 0) {
		*first = 0;
		*last = UINT64_MAX;
		return;
	}
	x = rnd_coord();
	if (wide && rnd_below(40) == 0) {
		y = rnd_coord();
	} else {
		uint64_t len = rnd_below(rnd_below(2) ? 8 : 200);

		y = x > UINT64_MAX - len ? UINT64_MAX : x + len;
	}
	*first = x < y ? x : y;
	*last = x < y ? y : x;
}

static size_t tree_height_bound(size_t n)
{
	/* AVL: h < 1.4405 log2(n + 2) - 0.3277; a generous integer form of it. */
	size_t lg = 0;

	while (((size_t)1 << lg) < n + 2)
		lg++;
	return (lg * 3 + 1) / 2 + 1;
}

/*
 * Random inserts, removes and queries on a pool of nodes; with check_every set, the full
 * structural check runs after every operation.
 */
static void random_run(uint64_t seed, size_t npool, size_t ops, int check_every)
{
	struct item *pool = calloc(npool, sizeof(*pool));
	struct bm_itree t;

	assert_non_null(pool);
	rng_state = seed;
	bm_itree_init(&t);
	for (size_t op = 0; op < ops; op++) {
		struct item *it = &pool[rnd_below(npool)];
		uint64_t a, b;

		/* Drift the target size so the tree both grows large and drains, and
		 * drop wide intervals for a while so that sparse queries come up empty. */
		int bias = (op / 5000) % 2 ? 30 : 70;
		int wide = (op / 20000) % 3 != 0;

		switch (rnd_below(3)) {
		case 0:
			rnd_range(&a, &b, 1);
			check_query(&t, pool, npool, a, b,
			            rnd_below(4) ? 0 : (size_t)rnd_below(5) + 1);
			break;
		default:
			if (!it->in_tree && (int)rnd_below(100) < bias) {
				rnd_range(&it->node.start, &it->node.last, wide);
				bm_itree_insert(&t, &it->node);
				it->in_tree = 1;
			} else if (it->in_tree && (int)rnd_below(100) >= bias) {
				bm_itree_remove(&t, &it->node);
				it->in_tree = 0;
			}
			break;
		}
		if (check_every)
			check_tree(&t);
		if (t.root)
			assert_true((size_t)t.root->height <= tree_height_bound(t.count));
	}
	check_tree(&t);
	free(pool);
}

static void test_random_differential(void **state)
{
	(void)state;
	random_run(0x1234abcdull, 1024, 300000, 0);
}

static void test_random_checked(void **state)
{
	(void)state;
	random_run(42, 64, 20000, 1);
	random_run(7, 300, 20000, 1);
}

/* ---- fixed and degenerate cases ---- */

static void test_empty(void **state)
{
	struct bm_itree t;
	struct item pool[1] = {0};

	(void)state;
	bm_itree_init(&t);
	check_tree(&t);
	check_query(&t, pool, 1, 0, UINT64_MAX, 0);
	check_query(&t, pool, 1, 5, 5, 0);
}

static void test_full_range(void **state)
{
	struct item pool[3] = {0};
	struct bm_itree t;

	(void)state;
	bm_itree_init(&t);
	pool[0].node.start = 0;
	pool[0].node.last = UINT64_MAX;
	pool[1].node.start = UINT64_MAX;
	pool[1].node.last = UINT64_MAX;
	pool[2].node.start = 0;
	pool[2].node.last = 0;
	for (int i = 0; i < 3; i++) {
		bm_itree_insert(&t, &pool[i].node);
		pool[i].in_tree = 1;
		check_tree(&t);
	}
	check_query(&t, pool, 3, 0, 0, 0);
	check_query(&t, pool, 3, UINT64_MAX, UINT64_MAX, 0);
	check_query(&t, pool, 3, 1, UINT64_MAX - 1, 0);
	check_query(&t, pool, 3, 0, UINT64_MAX, 0);
	check_query(&t, pool, 3, 0, UINT64_MAX, 2);
	bm_itree_remove(&t, &pool[0].node);
	pool[0].in_tree = 0;
	check_tree(&t);
	check_query(&t, pool, 3, 1, UINT64_MAX - 1, 0);
	assert_int_equal(t.root->max_last, UINT64_MAX);
}

#define NDEG 2000

static struct item deg[NDEG];

static void fill(struct bm_itree *t, uint64_t (*start)(size_t), uint64_t (*len)(size_t))
{
	bm_itree_init(t);
	for (size_t i = 0; i < NDEG; i++) {
		deg[i].node.start = start(i);
		deg[i].node.last = start(i) + len(i);
		deg[i].in_tree = 1;
		deg[i].seen = 0;
		bm_itree_insert(t, &deg[i].node);
		check_tree(t);
	}
	assert_true((size_t)t->root->height <= tree_height_bound(t->count));
}

static uint64_t start_equal(size_t i)
{
	(void)i;
	return 1000;
}

static uint64_t start_up(size_t i)
{
	return i * 10;
}

static uint64_t start_down(size_t i)
{
	return (NDEG - i) * 10;
}

static uint64_t len_varied(size_t i)
{
	return (i * 7919) % 500;
}

static uint64_t len_short(size_t i)
{
	(void)i;
	return 3;
}

static void test_equal_starts(void **state)
{
	struct bm_itree t;

	(void)state;
	fill(&t, start_equal, len_varied);
	check_query(&t, deg, NDEG, 0, 999, 0);
	check_query(&t, deg, NDEG, 1000, 1000, 0);
	check_query(&t, deg, NDEG, 1400, 1400, 0);
	check_query(&t, deg, NDEG, 1499, UINT64_MAX, 0);
	check_query(&t, deg, NDEG, 1500, UINT64_MAX, 0);
	check_query(&t, deg, NDEG, 0, UINT64_MAX, 17);
	/* Removing from the middle of a run of equal keys must find the right node. */
	for (size_t i = 0; i < NDEG; i += 2) {
		bm_itree_remove(&t, &deg[i].node);
		deg[i].in_tree = 0;
		check_tree(&t);
	}
	check_query(&t, deg, NDEG, 1200, 1300, 0);
}

static void test_sorted_inserts(void **state)
{
	struct bm_itree t;

	(void)state;
	fill(&t, start_up, len_short);
	check_query(&t, deg, NDEG, 0, 0, 0);
	check_query(&t, deg, NDEG, 4, 9, 0);
	check_query(&t, deg, NDEG, 5000, 6003, 0);
	check_query(&t, deg, NDEG, (NDEG - 1) * 10 + 3, UINT64_MAX, 0);
	fill(&t, start_down, len_varied);
	check_query(&t, deg, NDEG, 100, 200, 0);
	check_query(&t, deg, NDEG, 0, UINT64_MAX, 0);
}

static void test_remove_root_repeatedly(void **state)
{
	struct bm_itree t;

	(void)state;
	fill(&t, start_up, len_varied);
	while (t.root) {
		struct bm_itree_node *r = t.root;

		bm_itree_remove(&t, r);
		ITEM(r)->in_tree = 0;
		assert_null(r->parent);
		check_tree(&t);
		if (t.count % 97 == 0)
			check_query(&t, deg, NDEG, 3000, 9000, 0);
	}
	assert_int_equal(t.count, 0);
}

/*
 * Removing a two-child node moves its successor up; when the successor carries the
 * largest last, every ancestor must keep it, and removing the successor afterwards must
 * lower them all again.
 */
static void test_remove_two_children_max_last(void **state)
{
	struct bm_itree t;
	struct bm_itree_node *root, *succ;

	(void)state;
	fill(&t, start_up, len_short);
	root = t.root;
	assert_non_null(root->left);
	assert_non_null(root->right);
	succ = bm_itree_next(root);
	bm_itree_remove(&t, succ);
	succ->last = UINT64_MAX;
	bm_itree_insert(&t, succ);
	check_tree(&t);
	assert_ptr_equal(bm_itree_next(root), succ);
	assert_int_equal(t.root->max_last, UINT64_MAX);

	bm_itree_remove(&t, root);
	ITEM(root)->in_tree = 0;
	check_tree(&t);
	assert_int_equal(t.root->max_last, UINT64_MAX);
	check_query(&t, deg, NDEG, UINT64_MAX, UINT64_MAX, 0);

	bm_itree_remove(&t, succ);
	ITEM(succ)->in_tree = 0;
	check_tree(&t);
	assert_int_equal(t.root->max_last, (NDEG - 1) * 10 + 3);
	check_query(&t, deg, NDEG, UINT64_MAX - 1, UINT64_MAX, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_full_range),
	    cmocka_unit_test(test_equal_starts),
	    cmocka_unit_test(test_sorted_inserts),
	    cmocka_unit_test(test_remove_root_repeatedly),
	    cmocka_unit_test(test_remove_two_children_max_last),
	    cmocka_unit_test(test_random_checked),
	    cmocka_unit_test(test_random_differential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
