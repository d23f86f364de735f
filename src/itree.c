/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * AVL tree with parent pointers, augmented with the largest last of each subtree.
 *
 * Everything is iterative: rebalancing walks up the parent pointers and the query walks
 * the tree as a threaded in-order traversal, so the stack depth is constant whatever the
 * tree's size. Every update retraces to the root (never stopping early once heights settle)
 * because max_last can change on every ancestor even when no height does.
 *
 * Query cost: O(log n + k) when the overlapping nodes are consecutive in start order, which
 * holds whenever the stored intervals do not nest (e.g. disjoint subregions). With nesting,
 * the paths down to overlapping nodes scattered among non-overlapping ones are walked too,
 * giving O(log n + k log(n / k)) at worst: max_last alone cannot say which ancestors lead
 * to no overlap until they are visited.
 */
#include "itree.h"

static int height(const struct bm_itree_node *n)
{
	return n ? n->height : 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Recomputes n's cached fields from its children, which must already be up to date. */
static void update(struct bm_itree_node *n)
{
	int hl = height(n->left), hr = height(n->right);
	uint64_t m = n->last;

	if (n->left)
		m = max_u64(m, n->left->max_last);
	if (n->right)
		m = max_u64(m, n->right->max_last);
	n->max_last = m;
	n->height = 1 + (hl > hr ? hl : hr);
}

/* Makes whatever pointed at old (parent's child link, or the root) point at new. */
static void replace_child(struct bm_itree *t, struct bm_itree_node *parent,
                          struct bm_itree_node *old, struct bm_itree_node *new)
{
	if (!parent)
		t->root = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
}

static struct bm_itree_node *rotate_left(struct bm_itree *t, struct bm_itree_node *x)
{
	struct bm_itree_node *y = x->right;

	x->right = y->left;
	if (y->left)
		y->left->parent = x;
	y->parent = x->parent;
	replace_child(t, x->parent, x, y);
	y->left = x;
	x->parent = y;
	/* x is now below y, so it must be refreshed first. */
	update(x);
	update(y);
	return y;
}

static struct bm_itree_node *rotate_right(struct bm_itree *t, struct bm_itree_node *x)
{
	struct bm_itree_node *y = x->left;

	x->left = y->right;
	if (y->right)
		y->right->parent = x;
	y->parent = x->parent;
	replace_child(t, x->parent, x, y);
	y->right = x;
	x->parent = y;
	update(x);
	update(y);
	return y;
}

/* Restores the AVL property at n, whose subtrees are valid AVL trees whose heights differ
 * by at most 2; returns the node now at n's position. */
static struct bm_itree_node *rebalance(struct bm_itree *t, struct bm_itree_node *n)
{
	int balance = height(n->left) - height(n->right);

	if (balance > 1) {
		if (height(n->left->left) < height(n->left->right))
			rotate_left(t, n->left);
		return rotate_right(t, n);
	}
	if (balance < -1) {
		if (height(n->right->right) < height(n->right->left))
			rotate_right(t, n->right);
		return rotate_left(t, n);
	}
	update(n);
	return n;
}

static void retrace(struct bm_itree *t, struct bm_itree_node *n)
{
	while (n)
		n = rebalance(t, n)->parent;
}

static struct bm_itree_node *leftmost(struct bm_itree_node *n)
{
	while (n->left)
		n = n->left;
	return n;
}

void bm_itree_init(struct bm_itree *t)
{
	t->root = NULL;
	t->count = 0;
}

void bm_itree_insert(struct bm_itree *t, struct bm_itree_node *n)
{
	struct bm_itree_node *parent = NULL, **link = &t->root;

	while (*link) {
		parent = *link;
		link = n->start < parent->start ? &parent->left : &parent->right;
	}
	n->left = n->right = NULL;
	n->parent = parent;
	n->height = 1;
	n->max_last = n->last;
	*link = n;
	retrace(t, parent);
	t->count++;
}

/* Puts s, the leftmost node of n's right subtree, in n's place; returns the lowest node
 * whose subtree changed, from where the caller must retrace. s's height and max_last are
 * stale until then: the retrace passes through s, and nothing below s reads them. */
static struct bm_itree_node *replace_with_successor(struct bm_itree *t, struct bm_itree_node *n,
                                                    struct bm_itree_node *s)
{
	struct bm_itree_node *fix = s;

	if (s != n->right) {
		fix = s->parent;
		fix->left = s->right;
		if (s->right)
			s->right->parent = fix;
		s->right = n->right;
		s->right->parent = s;
	}
	s->left = n->left;
	s->left->parent = s;
	s->parent = n->parent;
	replace_child(t, n->parent, n, s);
	return fix;
}

void bm_itree_remove(struct bm_itree *t, struct bm_itree_node *n)
{
	struct bm_itree_node *fix;

	if (n->left && n->right) {
		fix = replace_with_successor(t, n, leftmost(n->right));
	} else {
		struct bm_itree_node *child = n->left ? n->left : n->right;

		fix = n->parent;
		if (child)
			child->parent = fix;
		replace_child(t, fix, n, child);
	}
	retrace(t, fix);
	t->count--;
	/* Stale links would let a caller's bug walk into the live tree. */
	n->left = n->right = n->parent = NULL;
}

/* The first node, in order, of n's subtree that could overlap a window starting at a:
 * left subtrees whose every last is below a are skipped. n->max_last must be >= a. */
static struct bm_itree_node *first_candidate(struct bm_itree_node *n, uint64_t a)
{
	while (n->left && n->left->max_last >= a)
		n = n->left;
	return n;
}

/* The in-order successor of n among the nodes not pruned by a. */
static struct bm_itree_node *next_candidate(struct bm_itree_node *n, uint64_t a)
{
	if (n->right && n->right->max_last >= a)
		return first_candidate(n->right, a);
	while (n->parent && n == n->parent->right)
		n = n->parent;
	return n->parent;
}

int bm_itree_query(const struct bm_itree *t, uint64_t a, uint64_t b,
                   int (*fn)(void *arg, struct bm_itree_node *n), void *arg)
{
	struct bm_itree_node *n = t->root;

	if (!n || n->max_last < a)
		return 0;
	/* Candidates come in start order, so the first one starting after b ends the walk. */
	for (n = first_candidate(n, a); n && n->start <= b; n = next_candidate(n, a)) {
		if (n->last >= a) {
			int r = fn(arg, n);

			if (r)
				return r;
		}
	}
	return 0;
}

struct bm_itree_node *bm_itree_first(const struct bm_itree *t)
{
	return t->root ? leftmost(t->root) : NULL;
}

struct bm_itree_node *bm_itree_next(const struct bm_itree_node *n)
{
	if (n->right)
		return leftmost(n->right);
	while (n->parent && n == n->parent->right)
		n = n->parent;
	return n->parent;
}
