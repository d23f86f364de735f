/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Publication: where a view is born.
 *
 * At the outermost commit each space with dirty windows re-renders just those windows,
 * turns the pieces into flat ranges, splices them into a new version of its lookup index
 * (sharing everything else with the old one), and publishes the new version with
 * a release store. The old version, the index nodes it no longer shares and the regions
 * destroyed since the last commit go to the reclaimer, which frees them after a grace
 * period. Listeners and conflict callbacks run last, on this thread.
 */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>

void bm_view_free(struct bm_view *v)
{
	if (!v)
		return;
	bm_index_free(v->index);
	free(v);
}

int bm_view_new_empty(struct bm_view **out)
{
	struct bm_view *v = calloc(1, sizeof(*v));
	struct bm_range *whole = calloc(1, sizeof(*whole));
	int err = v && whole ? 0 : -ENOMEM;
	if (!err) {
		whole->last = UINT64_MAX;
		err = bm_index_new(whole, &v->index);
	}
	if (err) {
		free(whole);
		free(v);
		return err;
	}
	*out = v;
	return 0;
}

static int window_cmp(const void *x, const void *y)
{
	const struct bm_window *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* Sorts the dirty windows and joins those that overlap or touch. */
static size_t merge_windows(struct bm_window *w, size_t n)
{
	if (n == 0)
		return 0;
	bm_sort(w, n, sizeof(*w), window_cmp);
	size_t out = 0;
	for (size_t i = 1; i < n; i++) {
		if (w[out].last == UINT64_MAX || w[i].start <= w[out].last + 1) {
			if (w[i].last > w[out].last)
				w[out].last = w[i].last;
		} else {
			w[++out] = w[i];
		}
	}
	return out + 1;
}

/*
 * Widens [a, b] to whole ranges of idx, plus one neighbouring range on each side, so that
 * new pieces can join their neighbours (the view stays as simplified as QEMU's).
 */
static void widen(const struct bm_index *idx, uint64_t *a, uint64_t *b)
{
	*a = bm_index_lookup(idx, *a)->start;
	if (*a)
		*a = bm_index_lookup(idx, *a - 1)->start;
	*b = bm_index_lookup(idx, *b)->last;
	if (*b != UINT64_MAX)
		*b = bm_index_lookup(idx, *b + 1)->last;
}

/*
 * Where conflicts cover the window, as disjoint sorted spans: conflicts of different pairs
 * may overlap each other, and a flat range only needs to know whether it is in one.
 */
static int conflict_cover(const struct bm_conflict_set *c, struct bm_window **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (c->n == 0)
		return 0;
	struct bm_window *w = malloc(c->n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (k && (w[k - 1].last == UINT64_MAX || c->v[i].start <= w[k - 1].last + 1)) {
			if (c->v[i].last > w[k - 1].last)
				w[k - 1].last = c->v[i].last;
		} else {
			w[k++] = (struct bm_window){c->v[i].start, c->v[i].last};
		}
	}
	*out = w;
	*n = k;
	return 0;
}

struct cover {
	const struct bm_window *w;
	size_t n, k;
};

/* Is pos inside a conflict, and up to where does that answer hold? */
static bool cover_at(struct cover *cv, uint64_t pos, uint64_t *until)
{
	while (cv->k < cv->n && cv->w[cv->k].last < pos)
		cv->k++;
	if (cv->k < cv->n && cv->w[cv->k].start <= pos) {
		*until = cv->w[cv->k].last;
		return true;
	}
	*until = cv->k < cv->n ? cv->w[cv->k].start - 1 : UINT64_MAX;
	return false;
}

struct builder {
	struct bm_range **v;
	size_t n, cap;
};

/* Gives the vector back to the system's scratch, with the ranges unless they were taken. */
static void builder_release(bm_system *sys, struct builder *bd, bool free_ranges)
{
	for (size_t i = 0; free_ranges && i < bd->n; i++)
		free(bd->v[i]);
	sys->scratch->ranges = bd->v;
	sys->scratch->ranges_cap = bd->cap;
	*bd = (struct builder){0};
}

void bm_scratch_release(struct bm_scratch *s)
{
	free(s->sc);
	free(s->ranges);
	bm_pieces_release(&s->pieces);
	for (size_t i = 0; i < BM_RENDER_KEPT_LEVELS; i++)
		bm_pieces_release(&s->levels[i]);
	bm_index_scratch_release(&s->index);
	*s = (struct bm_scratch){0};
}

/* Sizes one callback can serve whole: none longer than the range, so that the dispatch's
 * bound check cannot wrap. */
static uint32_t direct_sizes(const bm_region *leaf, uint32_t flags, uint64_t s, uint64_t e)
{
	if (!leaf || leaf->kind != BM_REGION_IO || (flags & BM_RANGE_CONFLICT))
		return 0;
	uint32_t sizes = leaf->ops.valid_sizes & leaf->ops.impl_sizes;
	uint64_t span = e - s;
	for (unsigned size = 8; size > 1 && span < size - 1; size >>= 1)
		sizes &= ~size;
	return sizes;
}

/* Appends [s, e] of leaf (offset off at s), joining the previous range when seamless. */
static int builder_add(struct builder *bd, uint64_t s, uint64_t e, bm_region *leaf, uint64_t off,
                       uint32_t flags)
{
	if (bd->n) {
		struct bm_range *l = bd->v[bd->n - 1];
		if (l->region == leaf && l->flags == flags && l->last + 1 == s &&
		    (!leaf || l->offset + (l->last - l->start) + 1 == off)) {
			l->last = e;
			l->direct_sizes = direct_sizes(leaf, flags, l->start, e);
			return 0;
		}
	}
	int err = bm_grow(&bd->v, &bd->cap, bd->n, sizeof(*bd->v));
	if (err)
		return err;
	struct bm_range *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct bm_range){.start = s, .last = e, .region = leaf, .flags = flags};
	if (leaf) {
		r->offset = off;
		r->region_last = leaf->last;
	}
	if (leaf && leaf->kind == BM_REGION_IO && !(flags & BM_RANGE_CONFLICT)) {
		r->direct_sizes = direct_sizes(leaf, flags, s, e);
		r->read = leaf->ops.read ? leaf->ops.read : bm_read_ones;
		r->write = leaf->ops.write ? leaf->ops.write : bm_write_drop;
		r->opaque = leaf->opaque;
	}
	bd->v[bd->n++] = r;
	return 0;
}

/* Adds [s, e] of one piece (or of nothing), split where conflict coverage changes. */
static int build_span(struct builder *bd, struct cover *cv, uint64_t s, uint64_t e, bm_region *leaf,
                      uint64_t off)
{
	for (;;) {
		uint64_t until;
		bool in = cover_at(cv, s, &until);
		uint64_t end = until < e ? until : e;
		int err = builder_add(bd, s, end, leaf, off, in ? BM_RANGE_CONFLICT : 0);
		if (err || end == e)
			return err;
		off += end - s + 1;
		s = end + 1;
	}
}

/* Turns the pieces of [a, b] into contiguous flat ranges covering exactly [a, b]. */
static int build_ranges(const struct bm_pieces *pc, const struct bm_conflict_set *conf, uint64_t a,
                        uint64_t b, struct builder *bd)
{
	struct cover cv = {0};
	struct bm_window *w;
	int err = conflict_cover(conf, &w, &cv.n);
	cv.w = w;
	uint64_t pos = a;
	bool done = false;
	for (size_t i = 0; !err && i < pc->n; i++) {
		const struct bm_piece *p = &pc->v[i];
		if (p->start > pos)
			err = build_span(bd, &cv, pos, p->start - 1, NULL, 0);
		if (!err)
			err = build_span(bd, &cv, p->start, p->last, p->leaf, p->leaf_offset);
		done = p->last == b;
		if (done)
			break;
		pos = p->last + 1;
	}
	if (!err && !done)
		err = build_span(bd, &cv, pos, b, NULL, 0);
	free(w);
	return err;
}

static bool same_range(const struct bm_range *x, const struct bm_range *y)
{
	return x->start == y->start && x->last == y->last && x->region == y->region &&
	       x->offset == y->offset && x->flags == y->flags;
}

/* Records, for listeners, what left [a, b] and what came. Both lists are sorted. */
static int diff_window(const struct bm_index *old, uint64_t a, const struct builder *bd,
                       struct bm_diff *d)
{
	const struct bm_range *o = bm_index_lookup(old, a);
	size_t j = 0;
	uint64_t b = bd->v[bd->n - 1]->last;
	int err = 0;
	while (!err && (o || j < bd->n)) {
		const struct bm_range *n = j < bd->n ? bd->v[j] : NULL;
		if (o && n && same_range(o, n)) {
			o = o->last == b ? NULL : bm_index_next(old, o);
			j++;
		} else if (o && (!n || o->start <= n->start)) {
			err = bm_diff_push(d, false, o);
			o = o->last == b ? NULL : bm_index_next(old, o);
		} else {
			err = bm_diff_push(d, true, n);
			j++;
		}
	}
	return err;
}

/*
 * One space's part of a publication, prepared in full before anything is published, so
 * that running out of memory anywhere leaves every space's view and conflicts as they were.
 */
struct space_commit {
	bm_space *space;
	struct bm_index *idx;          /* the version being built */
	struct bm_view *nv;            /* its header, allocated up front */
	struct bm_batch *batch;        /* what the new version retires */
	struct bm_garbage made;        /* nodes and ranges this commit allocated */
	struct bm_conflict_set before; /* the conflicts as published, to notify or restore */
	bool have_before;
	struct bm_diff diff; /* for listeners */
};

/* [a, b] is widened, and no other window of this commit touches it. */
static int render_one(struct space_commit *sc, uint64_t a, uint64_t b)
{
	bm_system *sys = sc->space->sys;
	struct bm_pieces pc = sys->scratch->pieces;
	struct bm_conflict_set fresh = {0};
	struct builder bd = {sys->scratch->ranges, 0, sys->scratch->ranges_cap};
	pc.n = 0;
	int err = bm_render_window(sc->space, a, b, &pc, &fresh, sys->scratch->levels);
	if (!err)
		err = build_ranges(&pc, &fresh, a, b, &bd);
	if (!err)
		err = bm_conflict_replace(&sc->space->conflicts, a, b, &fresh);
	if (!err)
		err = diff_window(sc->idx, a, &bd, &sc->diff);
	/* The ranges are listed first and taken off again if the index cannot take them:
	 * the replacement appends its own nodes after them. */
	if (!err)
		err = bm_garbage_reserve(&sc->made, bd.n);
	struct bm_index *next = NULL;
	if (!err) {
		for (size_t i = 0; i < bd.n; i++)
			sc->made.ptrs[sc->made.n++] = bd.v[i];
		err = bm_index_replace_reusing(sc->idx, a, b, bd.v, bd.n, &next, &sc->batch->bag,
		                               &sc->made, &sys->scratch->index);
		if (err)
			sc->made.n -= bd.n;
		else
			sc->idx = next;
	}
	builder_release(sys, &bd, err != 0);
	sys->scratch->pieces = pc;
	bm_conflict_set_release(&fresh);
	return err;
}

static int render_dirty(struct space_commit *sc)
{
	bm_space *space = sc->space;
	struct bm_window whole = {0, UINT64_MAX};
	struct bm_window *w = &whole;
	size_t n = 1;
	if (!space->dirty_all) {
		/* Widen first, then merge: windows that share a neighbour become one, so each
		 * range is replaced at most once and listeners never see a range come and go
		 * within one commit. Both only grow what is dirty, so they may stay if the
		 * commit fails. */
		w = space->dirty;
		for (size_t i = 0; i < space->ndirty; i++)
			widen(sc->idx, &w[i].start, &w[i].last);
		n = space->ndirty = merge_windows(space->dirty, space->ndirty);
	}
	int err = 0;
	for (size_t i = 0; !err && i < n; i++)
		err = render_one(sc, w[i].start, w[i].last);
	return err;
}

static int prepare_space(struct space_commit *sc)
{
	bm_space *space = sc->space;
	sc->idx = space->view->index;
	if (space->diff_spare) {
		sc->diff = *space->diff_spare;
		sc->diff.nadded = sc->diff.nremoved = 0;
	}
	sc->nv = malloc(sizeof(*sc->nv));
	sc->batch = calloc(1, sizeof(*sc->batch));
	if (!sc->nv || !sc->batch)
		return -ENOMEM;
	int err = bm_conflict_set_copy(&sc->before, &space->conflicts);
	if (err)
		return err;
	sc->have_before = true;
	return render_dirty(sc);
}

/* Drops a prepared (or half-prepared) commit: what it built goes, what it would have
 * retired stays, since the published version still uses it. */
static void abandon_space(struct space_commit *sc)
{
	bm_garbage_free_all(&sc->made);
	if (sc->batch)
		sc->batch->bag.n = 0;
	if (sc->have_before) {
		bm_conflict_set_release(&sc->space->conflicts);
		sc->space->conflicts = sc->before;
		sc->before = (struct bm_conflict_set){0};
	}
}

static void release_space(struct space_commit *sc)
{
	bm_garbage_release(&sc->made);
	free(sc->nv);
	bm_batch_free_now(sc->batch);
	bm_conflict_set_release(&sc->before);
	if (!sc->space->diff_spare)
		sc->space->diff_spare = malloc(sizeof(*sc->space->diff_spare));
	if (sc->space->diff_spare)
		*sc->space->diff_spare = sc->diff;
	else
		bm_diff_release(&sc->diff);
}

/* Nothing here can fail. */
static void publish_space(struct space_commit *sc)
{
	bm_space *space = sc->space;
	space->ndirty = 0;
	space->dirty_all = false;
	if (sc->idx == space->view->index)
		return; /* the windows rendered to what was there */
	struct bm_view *old = space->view, *nv = sc->nv;
	/* Unique within the system, so a vCPU's hint needs no space of its own. */
	nv->generation = ++space->sys->generation;
	nv->index = sc->idx;
	bm_rcu_publish(&space->view, nv);
	sc->batch->view = old;
	bm_reclaimer_push(space->sys->reclaimer, sc->batch);
	sc->nv = NULL;
	sc->batch = NULL;
}

static void notify_space(struct space_commit *sc)
{
	bm_system *sys = sc->space->sys;
	sys->notifying = true;
	bm_listeners_notify(sc->space, &sc->diff);
	bm_conflict_notify(sc->space, &sc->before, &sc->space->conflicts);
	sys->notifying = false;
}

static size_t dirty_spaces(bm_system *sys)
{
	size_t n = 0;
	for (struct bm_link *l = sys->spaces.next; l != &sys->spaces; l = l->next) {
		bm_space *s = BM_CONTAINER_OF(l, bm_space, link);
		n += s->dirty_all || s->ndirty;
	}
	return n;
}

/*
 * Publishes every dirty space, or none: each space's new version is built first, and only
 * when all are built are they published. On failure (-ENOMEM) every view, conflict list
 * and listener stays as it was, and the windows stay dirty for the next commit.
 */
int bm_publish(bm_system *sys)
{
	size_t n = dirty_spaces(sys), k = 0;
	if (!sys->scratch && !(sys->scratch = calloc(1, sizeof(*sys->scratch))))
		return -ENOMEM;
	int err = 0;
	/* Kept from one publication to the next: listeners, which run in between, cannot
	 * publish (they cannot open a change). */
	while (!err && sys->scratch->sc_cap < n)
		err = bm_grow(&sys->scratch->sc, &sys->scratch->sc_cap, sys->scratch->sc_cap,
		              sizeof(*sys->scratch->sc));
	struct space_commit *sc = sys->scratch->sc;
	for (size_t i = 0; !err && i < n; i++)
		sc[i] = (struct space_commit){0};
	for (struct bm_link *l = sys->spaces.next; !err && l != &sys->spaces; l = l->next) {
		bm_space *s = BM_CONTAINER_OF(l, bm_space, link);
		if (s->dirty_all || s->ndirty) {
			sc[k].space = s;
			err = prepare_space(&sc[k++]);
		}
	}
	if (err) {
		for (size_t i = k; i-- > 0;)
			abandon_space(&sc[i]);
	} else {
		for (size_t i = 0; i < n; i++)
			publish_space(&sc[i]);
		for (size_t i = 0; i < n; i++)
			notify_space(&sc[i]);
		/* Destroyed regions are out of every view only now, and the notifications,
		 * which name them among the conflicts that ended, are done. */
		bm_reclaimer_push(sys->reclaimer, sys->doomed);
		sys->doomed = NULL;
	}
	for (size_t i = 0; i < k; i++)
		release_space(&sc[i]);
	return err;
}
