/* SPDX-License-Identifier: BSD-2-Clause */
/* Listeners: the difference each commit made to a space's flat view. */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>

static struct bm_flat_range to_flat(const struct bm_range *r)
{
	return (struct bm_flat_range){
	    .start = r->start,
	    .last = r->last,
	    .region = r->region,
	    .offset = r->offset,
	    .conflict = (r->flags & BM_RANGE_CONFLICT) != 0,
	};
}

int bm_diff_push(struct bm_diff *d, bool added, const struct bm_range *r)
{
	if (!r->region)
		return 0;
	struct bm_flat_range **v = added ? &d->added : &d->removed;
	size_t *n = added ? &d->nadded : &d->nremoved;
	size_t *cap = added ? &d->capadded : &d->capremoved;
	int err = bm_grow(v, cap, *n, sizeof(**v));
	if (err)
		return err;
	(*v)[(*n)++] = to_flat(r);
	return 0;
}

void bm_diff_release(struct bm_diff *d)
{
	free(d->added);
	free(d->removed);
	*d = (struct bm_diff){0};
}

void bm_listeners_notify(bm_space *space, const struct bm_diff *d)
{
	if (d->nadded == 0 && d->nremoved == 0)
		return;
	for (struct bm_link *l = space->listeners.next; l != &space->listeners; l = l->next) {
		struct bm_listener *li = BM_CONTAINER_OF(l, struct bm_listener, link);
		li->fn(li->arg, space, d->removed, d->nremoved, d->added, d->nadded);
	}
}

/* The whole current view, as one list of additions. */
static int current_view(bm_space *space, struct bm_diff *d)
{
	const struct bm_index *idx = space->view->index;
	for (const struct bm_range *r = bm_index_lookup(idx, 0); r; r = bm_index_next(idx, r)) {
		int err = bm_diff_push(d, true, r);
		if (err)
			return err;
	}
	return 0;
}

int bm_listener_add(bm_space *space, bm_listener_fn fn, void *arg, bm_listener **out)
{
	if (!space || !fn)
		return -EINVAL;
	struct bm_listener *li = calloc(1, sizeof(*li));
	if (!li)
		return -ENOMEM;
	li->space = space;
	li->fn = fn;
	li->arg = arg;
	bm_system *sys = space->sys;
	int err = bm_change_begin(sys);
	if (err) {
		free(li);
		return err;
	}
	struct bm_diff d = {0};
	err = current_view(space, &d);
	if (!err) {
		sys->notifying = true;
		if (d.nadded)
			fn(arg, space, NULL, 0, d.added, d.nadded);
		sys->notifying = false;
		bm_list_add_tail(&space->listeners, &li->link);
		if (out)
			*out = li;
	} else {
		free(li);
	}
	bm_diff_release(&d);
	return bm_change_end_no_regions(sys, err);
}

int bm_listener_remove(bm_listener *l)
{
	if (!l)
		return -EINVAL;
	bm_system *sys = l->space->sys;
	int err = bm_change_begin(sys);
	if (err)
		return err;
	bm_list_del(&l->link);
	free(l);
	return bm_change_end_no_regions(sys, 0);
}
