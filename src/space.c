/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Spaces, and the bookkeeping of what must be re-rendered.
 *
 * A change to a region dirties the window of the space that the region occupies, walked
 * up through its containers and clipped by each, and, where an alias shows the region or
 * one of its containers, walked on from the alias too: a BAR behind a PCI bridge shows
 * through the bridge's window aliases, and moving it dirties just what it covers there.
 */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Past this many separate windows, one full render is cheaper than many small ones. */
#define MAX_DIRTY_WINDOWS 256

void bm_mark_window(bm_space *space, uint64_t start, uint64_t last)
{
	if (space->dirty_all)
		return;
	if (space->ndirty == space->dirty_cap) {
		size_t cap = space->dirty_cap ? space->dirty_cap * 2 : 8;
		struct bm_window *v = NULL;
		/* A rollback must not allocate: it falls back like a failed growth. */
		if (cap <= MAX_DIRTY_WINDOWS && !space->sys->journal.undoing)
			v = realloc(space->dirty, cap * sizeof(*v));
		if (!v) {
			/* Running out only costs a bigger render, never a wrong one. */
			space->dirty_all = true;
			return;
		}
		space->dirty = v;
		space->dirty_cap = cap;
	}
	space->dirty[space->ndirty++] = (struct bm_window){start, last};
}

void bm_mark_all(bm_system *sys)
{
	for (struct bm_link *l = sys->spaces.next; l != &sys->spaces; l = l->next)
		BM_CONTAINER_OF(l, bm_space, link)->dirty_all = true;
}

/* How many alias crossings one mark may make before it gives up and dirties everything:
 * aliases of aliases could otherwise multiply the walk. */
#define MARK_BUDGET 64

/* The part of target that alias al shows, [lo, hi] in target's coordinates, clipped to
 * [a, b]; false if they do not meet. */
static bool through_alias(const bm_region *al, uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi)
{
	uint64_t first = al->alias_offset;
	uint64_t last = al->last > UINT64_MAX - first ? UINT64_MAX : first + al->last;
	*lo = a > first ? a : first;
	*hi = b < last ? b : last;
	return *lo <= *hi;
}

/* Marks [a, b] of r (in r's own coordinates) wherever it shows: up through its containers
 * to a space's root, and through every alias that shows r or one of its containers. */
static void mark_span(const bm_region *r, uint64_t a, uint64_t b, unsigned *budget)
{
	const bm_region *cur = r;
	for (;;) {
		for (const struct bm_link *l = cur->aliases.next; l != &cur->aliases; l = l->next) {
			const bm_region *al = BM_CONTAINER_OF(l, bm_region, alias_link);
			uint64_t lo, hi;
			if (!through_alias(al, a, b, &lo, &hi))
				continue;
			if (*budget == 0) {
				bm_mark_all(r->sys);
				return;
			}
			--*budget;
			mark_span(al, lo - al->alias_offset, hi - al->alias_offset, budget);
		}
		if (!cur->parent)
			break;
		/* offset + last never overflows: bm_region_add checked it. */
		a += cur->offset;
		b += cur->offset;
		cur = cur->parent;
		if (a > cur->last)
			return; /* entirely outside its container: shows nothing */
		if (b > cur->last)
			b = cur->last;
	}
	if (cur->space)
		bm_mark_window(cur->space, a, b);
}

void bm_mark_region(bm_region *r)
{
	unsigned budget = MARK_BUDGET;
	mark_span(r, 0, r->last, &budget);
}

int bm_space_new(bm_system *sys, const char *name, const char *root_name, bm_space **out)
{
	if (!sys || !out)
		return -EINVAL;
	bm_space *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sys = sys;
	s->name = strdup(name ? name : "");
	bm_list_init(&s->listeners);
	int err = s->name ? 0 : -ENOMEM;
	if (!err)
		err = bm_view_new_empty(&s->view);
	if (!err)
		err = bm_region_new_container(sys, root_name, BM_SIZE_ALL, &s->root);
	if (err) {
		if (s->view)
			bm_view_free(s->view);
		free(s->name);
		free(s);
		return err;
	}
	pthread_mutex_lock(&sys->lock);
	s->view->generation = ++sys->generation;
	s->root->space = s;
	bm_list_add_tail(&sys->spaces, &s->link);
	pthread_mutex_unlock(&sys->lock);
	*out = s;
	return 0;
}

int bm_space_free(bm_space *space)
{
	if (!space)
		return 0;
	bm_system *sys = space->sys;
	if (bm_rcu_reading() || bm_system_owned(sys))
		return -EDEADLK;
	pthread_mutex_lock(&sys->lock);
	bm_region *root = space->root;
	if (root->alias_refs) {
		pthread_mutex_unlock(&sys->lock);
		return -EBUSY;
	}
	struct bm_itree_node *n;
	while ((n = bm_itree_first(&root->children)) != NULL) {
		bm_region *c = bm_region_of_node(n);
		bm_itree_remove(&root->children, n);
		c->parent = NULL;
	}
	bm_list_del(&root->link);
	bm_list_del(&space->link);
	while (space->listeners.next != &space->listeners) {
		struct bm_link *l = space->listeners.next;
		bm_list_del(l);
		free(BM_CONTAINER_OF(l, struct bm_listener, link));
	}
	pthread_mutex_unlock(&sys->lock);
	/* The caller has stopped dispatching to this space; let stragglers finish. */
	bm_rcu_synchronize(sys->flavour == BM_RCU_QSBR, &sys->rcu_token);
	bm_view_free(space->view);
	free(space->sink);
	bm_region_free_now(root);
	bm_conflict_set_release(&space->conflicts);
	if (space->diff_spare)
		bm_diff_release(space->diff_spare);
	free(space->diff_spare);
	free(space->dirty);
	free(space->name);
	free(space);
	return 0;
}

bm_region *bm_space_root(const bm_space *space)
{
	return space ? space->root : NULL;
}

const char *bm_space_name(const bm_space *space)
{
	return space ? space->name : NULL;
}

uint64_t bm_space_flat(bm_space *space, int (*fn)(void *arg, const struct bm_flat_range *r),
                       void *arg)
{
	if (!space || !fn)
		return 0;
	pthread_mutex_lock(&space->sys->lock);
	const struct bm_view *v = space->view;
	for (const struct bm_range *r = bm_index_lookup(v->index, 0); r;
	     r = bm_index_next(v->index, r)) {
		if (!r->region)
			continue;
		struct bm_flat_range fr = {r->start, r->last, r->region, r->offset,
		                           (r->flags & BM_RANGE_CONFLICT) != 0};
		if (fn(arg, &fr))
			break;
	}
	uint64_t gen = v->generation;
	pthread_mutex_unlock(&space->sys->lock);
	return gen;
}
