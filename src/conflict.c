/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Conflicts: overlaps of exclusive regions, kept per space in address order. Rendering
 * finds them window by window; a commit splices the fresh ones in and tells the space's
 * conflict sink what appeared and what went away.
 */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bm_conflict_push(struct bm_conflict_set *set, const struct bm_conflict *c)
{
	int err = bm_grow(&set->v, &set->cap, set->n, sizeof(*set->v));
	if (err)
		return err;
	set->v[set->n++] = *c;
	return 0;
}

void bm_conflict_set_release(struct bm_conflict_set *set)
{
	free(set->v);
	*set = (struct bm_conflict_set){0};
}

int bm_conflict_set_copy(struct bm_conflict_set *dst, const struct bm_conflict_set *src)
{
	*dst = (struct bm_conflict_set){0};
	for (size_t i = 0; i < src->n; i++) {
		int err = bm_conflict_push(dst, &src->v[i]);
		if (err) {
			bm_conflict_set_release(dst);
			return err;
		}
	}
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int pair_cmp(const struct bm_conflict *a, const struct bm_conflict *b)
{
	int c = cmp_u64(a->winner->id, b->winner->id);
	return c ? c : cmp_u64(a->loser->id, b->loser->id);
}

static int by_pair(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
	int c = pair_cmp(a, b);
	return c ? c : cmp_u64(a->start, b->start);
}

static int by_address(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
	int c = cmp_u64(a->start, b->start);
	if (!c)
		c = cmp_u64(a->last, b->last);
	return c ? c : pair_cmp(a, b);
}

int bm_conflict_normalize(struct bm_conflict_set *set)
{
	if (set->n < 2)
		return 0;
	qsort(set->v, set->n, sizeof(*set->v), by_pair);
	size_t out = 0;
	for (size_t i = 0; i < set->n; i++) {
		struct bm_conflict *l = out ? &set->v[out - 1] : NULL;
		const struct bm_conflict *c = &set->v[i];
		if (l && !pair_cmp(l, c) && l->last != UINT64_MAX && l->last + 1 >= c->start) {
			if (c->last > l->last)
				l->last = c->last;
			continue;
		}
		set->v[out++] = *c;
	}
	set->n = out;
	qsort(set->v, set->n, sizeof(*set->v), by_address);
	return 0;
}

/* Keeps the parts of c outside [a, b]. */
static int keep_outside(struct bm_conflict_set *dst, const struct bm_conflict *c, uint64_t a,
                        uint64_t b)
{
	int err = 0;
	if (c->last < a || c->start > b)
		return bm_conflict_push(dst, c);
	if (c->start < a) {
		struct bm_conflict left = *c;
		left.last = a - 1;
		err = bm_conflict_push(dst, &left);
	}
	if (!err && c->last > b) {
		struct bm_conflict right = *c;
		right.start = b + 1;
		err = bm_conflict_push(dst, &right);
	}
	return err;
}

int bm_conflict_replace(struct bm_conflict_set *set, uint64_t a, uint64_t b,
                        const struct bm_conflict_set *fresh)
{
	struct bm_conflict_set next = {0};
	int err = 0;
	for (size_t i = 0; !err && i < set->n; i++)
		err = keep_outside(&next, &set->v[i], a, b);
	for (size_t i = 0; !err && i < fresh->n; i++)
		err = bm_conflict_push(&next, &fresh->v[i]);
	if (!err)
		err = bm_conflict_normalize(&next);
	if (err) {
		bm_conflict_set_release(&next);
		return err;
	}
	bm_conflict_set_release(set);
	*set = next;
	return 0;
}

void bm_conflict_notify(bm_space *space, const struct bm_conflict_set *old,
                        const struct bm_conflict_set *now)
{
	const struct bm_conflict_sink *sink = space->sink;
	if (!sink || !sink->ops.on_change)
		return;
	size_t i = 0, j = 0;
	while (i < old->n || j < now->n) {
		int c = i == old->n ? 1 : j == now->n ? -1 : by_address(&old->v[i], &now->v[j]);
		if (c < 0)
			sink->ops.on_change(sink->arg, space, &old->v[i++], false);
		else if (c > 0)
			sink->ops.on_change(sink->arg, space, &now->v[j++], true);
		else
			i++, j++;
	}
}

int bm_space_set_conflict_ops(bm_space *space, const struct bm_conflict_ops *ops, void *arg)
{
	if (!space)
		return -EINVAL;
	struct bm_conflict_sink *sink = NULL;
	if (ops) {
		sink = malloc(sizeof(*sink));
		if (!sink)
			return -ENOMEM;
		sink->ops = *ops;
		sink->arg = arg;
	}
	bm_system *sys = space->sys;
	int err = bm_change_begin(sys);
	if (err) {
		free(sink);
		return err;
	}
	err = bm_doomed_reserve(sys, 1);
	if (err) {
		free(sink);
		return bm_change_end_no_regions(sys, err);
	}
	struct bm_conflict_sink *old = space->sink;
	bm_rcu_publish(&space->sink, sink);
	if (old)
		bm_garbage_add(&sys->doomed->bag, old);
	return bm_change_end_no_regions(sys, 0);
}

size_t bm_space_conflicts(bm_space *space, struct bm_conflict *out, size_t max)
{
	if (!space)
		return 0;
	pthread_mutex_lock(&space->sys->lock);
	size_t n = space->conflicts.n;
	if (out && n && max)
		memcpy(out, space->conflicts.v, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&space->sys->lock);
	return n;
}
