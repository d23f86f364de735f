/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Rendering: what the region tree shows over a window of a space.
 *
 * Each region renders its window into pieces of terminal regions, in absolute addresses.
 * A container asks its subregions that overlap the window (through its interval tree, so a
 * small window costs O(log n) however many siblings there are) and resolves them: at each
 * address the subregion with the highest (priority, add-or-move stamp) that shows something
 * there wins, so a transparent gap inside a winning container lets lower siblings through.
 * Where pieces of two different exclusive regions meet, a conflict is recorded: the
 * higher-ranked one hides the other.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>

struct render {
	struct bm_conflict_set *conflicts;
	struct bm_pieces *levels; /* kept vectors, one per nesting depth, or NULL */
	unsigned depth;           /* of the container being rendered */
};

void bm_pieces_release(struct bm_pieces *p)
{
	free(p->v);
	*p = (struct bm_pieces){0};
}

static int pieces_push(struct bm_pieces *p, const struct bm_piece *x)
{
	int err = bm_grow(&p->v, &p->cap, p->n, sizeof(*p->v));
	if (err)
		return err;
	p->v[p->n++] = *x;
	return 0;
}

/* Appends x, extending the last piece instead when x continues it seamlessly. */
static int pieces_append(struct bm_pieces *p, const struct bm_piece *x)
{
	if (p->n) {
		struct bm_piece *l = &p->v[p->n - 1];
		if (l->leaf == x->leaf && l->excl == x->excl && l->last != UINT64_MAX &&
		    l->last + 1 == x->start &&
		    l->leaf_offset + (l->last - l->start) + 1 == x->leaf_offset) {
			l->last = x->last;
			return 0;
		}
	}
	return pieces_push(p, x);
}

static int rank_cmp(const struct bm_piece *a, const struct bm_piece *b)
{
	if (a->prio != b->prio)
		return a->prio < b->prio ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

static int start_cmp(const void *x, const void *y)
{
	const struct bm_piece *a = x, *b = y;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return 0;
}

/* A point where a piece starts (open) or stops covering (the byte after its last). */
struct event {
	uint64_t pos;
	size_t piece;
	bool open;
};

static int event_cmp(const void *x, const void *y)
{
	const struct event *a = x, *b = y;
	if (a->pos != b->pos)
		return a->pos < b->pos ? -1 : 1;
	return 0;
}

struct active {
	size_t *v;
	size_t n, cap;
};

static int active_add(struct active *a, size_t i)
{
	int err = bm_grow(&a->v, &a->cap, a->n, sizeof(*a->v));
	if (err)
		return err;
	a->v[a->n++] = i;
	return 0;
}

static void active_del(struct active *a, size_t i)
{
	for (size_t k = 0; k < a->n; k++) {
		if (a->v[k] == i) {
			a->v[k] = a->v[--a->n];
			return;
		}
	}
}

/* Records that the top exclusive piece hides every other exclusive one over [s, e]. */
static int record_conflicts(struct render *rd, const struct bm_pieces *in, const struct active *act,
                            uint64_t s, uint64_t e)
{
	const struct bm_piece *top = NULL;
	for (size_t k = 0; k < act->n; k++) {
		const struct bm_piece *p = &in->v[act->v[k]];
		if (p->excl && (!top || rank_cmp(p, top) > 0))
			top = p;
	}
	if (!top)
		return 0;
	for (size_t k = 0; k < act->n; k++) {
		const struct bm_piece *p = &in->v[act->v[k]];
		if (!p->excl || p->excl == top->excl)
			continue;
		struct bm_conflict c = {s, e, top->excl, p->excl};
		int err = bm_conflict_push(rd->conflicts, &c);
		if (err)
			return err;
	}
	return 0;
}

static int emit_winner(struct render *rd, const struct bm_pieces *in, const struct active *act,
                       uint64_t s, uint64_t e, struct bm_pieces *out)
{
	const struct bm_piece *w = &in->v[act->v[0]];
	for (size_t k = 1; k < act->n; k++)
		if (rank_cmp(&in->v[act->v[k]], w) > 0)
			w = &in->v[act->v[k]];
	struct bm_piece x = *w;
	x.start = s;
	x.last = e;
	x.leaf_offset = w->leaf_offset + (s - w->start);
	int err = pieces_append(out, &x);
	if (!err && act->n > 1)
		err = record_conflicts(rd, in, act, s, e);
	return err;
}

/* General case: pieces overlap. Sweep the boundaries, keeping the pieces that cover the
 * current segment; overlaps are rare and shallow, so a plain array serves. */
static int sweep(struct render *rd, const struct bm_pieces *in, struct bm_pieces *out)
{
	size_t nev = 0;
	struct event *ev = malloc(2 * in->n * sizeof(*ev));
	struct active act = {0};
	int err = ev ? 0 : -ENOMEM;
	for (size_t i = 0; !err && i < in->n; i++) {
		ev[nev++] = (struct event){in->v[i].start, i, true};
		if (in->v[i].last != UINT64_MAX)
			ev[nev++] = (struct event){in->v[i].last + 1, i, false};
	}
	if (!err)
		bm_sort(ev, nev, sizeof(*ev), event_cmp);
	for (size_t k = 0; !err && k < nev;) {
		uint64_t pos = ev[k].pos;
		for (; k < nev && ev[k].pos == pos; k++) {
			if (ev[k].open)
				err = err ? err : active_add(&act, ev[k].piece);
			else
				active_del(&act, ev[k].piece);
		}
		if (err || act.n == 0)
			continue;
		uint64_t end = k < nev ? ev[k].pos - 1 : UINT64_MAX;
		err = emit_winner(rd, in, &act, pos, end, out);
	}
	free(act.v);
	free(ev);
	return err;
}

/* Resolves the pieces of several siblings (each sibling's own pieces are disjoint). */
static int resolve(struct render *rd, struct bm_pieces *in, struct bm_pieces *out)
{
	bm_sort(in->v, in->n, sizeof(*in->v), start_cmp);
	bool overlap = false;
	for (size_t i = 1; i < in->n && !overlap; i++)
		overlap = in->v[i].start <= in->v[i - 1].last;
	if (overlap)
		return sweep(rd, in, out);
	for (size_t i = 0; i < in->n; i++) {
		int err = pieces_append(out, &in->v[i]);
		if (err)
			return err;
	}
	return 0;
}

static int render_region(struct render *rd, const bm_region *r, uint64_t lo, uint64_t hi,
                         uint64_t base, struct bm_pieces *out);

struct gather {
	struct render *rd;
	uint64_t lo, hi, base;
	struct bm_pieces *level;
	size_t nchildren;
};

/* Renders one subregion's part of the window and ranks its pieces as that subregion. */
static int gather_child(void *arg, struct bm_itree_node *n)
{
	struct gather *g = arg;
	const bm_region *c = bm_region_of_node(n);
	uint64_t lo = g->lo > c->offset ? g->lo - c->offset : 0;
	uint64_t hi = g->hi - c->offset < c->last ? g->hi - c->offset : c->last;
	size_t first = g->level->n;
	int err = render_region(g->rd, c, lo, hi, g->base + c->offset, g->level);
	for (size_t i = first; !err && i < g->level->n; i++) {
		struct bm_piece *p = &g->level->v[i];
		p->prio = c->priority;
		p->seq = c->seq;
		if (c->exclusive)
			p->excl = (bm_region *)c;
	}
	if (g->level->n > first)
		g->nchildren++;
	return err;
}

static int render_alias(struct render *rd, const bm_region *a, uint64_t lo, uint64_t hi,
                        uint64_t base, struct bm_pieces *out)
{
	const bm_region *t = a->target;
	uint64_t ao = a->alias_offset;
	if (ao > t->last || lo > t->last - ao)
		return 0;
	uint64_t tlo = lo + ao;
	uint64_t thi = hi > t->last - ao ? t->last : hi + ao;
	/* Absolute = target-local - ao + base, in modular arithmetic that never wraps for the
	 * addresses actually rendered. */
	return render_region(rd, t, tlo, thi, base - ao, out);
}

static int render_leaf(const bm_region *r, uint64_t lo, uint64_t hi, uint64_t base,
                       struct bm_pieces *out)
{
	struct bm_piece p = {
	    .start = lo + base,
	    .last = hi + base,
	    .leaf = (bm_region *)r,
	    .leaf_offset = lo,
	};
	return pieces_push(out, &p);
}

/* Appends to out the pieces r shows over [lo, hi] of its own coordinates (lo <= hi <=
 * r->last); base turns r's coordinates into absolute addresses. */
static int render_region(struct render *rd, const bm_region *r, uint64_t lo, uint64_t hi,
                         uint64_t base, struct bm_pieces *out)
{
	if (!r->enabled)
		return 0; /* also when reached as an alias's target or as a space's root */
	if (r->kind == BM_REGION_ALIAS)
		return render_alias(rd, r, lo, hi, base, out);
	if (bm_region_is_leaf(r))
		return render_leaf(r, lo, hi, base, out);
	if (!r->children.root)
		return 0;

	struct bm_pieces *kept = rd->levels && rd->depth < BM_RENDER_KEPT_LEVELS
	                             ? &rd->levels[rd->depth]
	                             : NULL;
	struct bm_pieces level = kept ? *kept : (struct bm_pieces){0};
	struct gather g = {rd, lo, hi, base, &level, 0};
	level.n = 0;
	rd->depth++;
	int err = bm_itree_query(&r->children, lo, hi, gather_child, &g);
	rd->depth--;
	if (!err && g.nchildren <= 1) {
		for (size_t i = 0; !err && i < level.n; i++)
			err = pieces_append(out, &level.v[i]);
	} else if (!err) {
		err = resolve(rd, &level, out);
	}
	if (kept)
		*kept = level;
	else
		bm_pieces_release(&level);
	return err;
}

int bm_render_window(bm_space *space, uint64_t a, uint64_t b, struct bm_pieces *out,
                     struct bm_conflict_set *conflicts, struct bm_pieces *levels)
{
	struct render rd = {conflicts, levels, 0};
	int err = render_region(&rd, space->root, a, b, 0, out);
	return err ? err : bm_conflict_normalize(conflicts);
}
