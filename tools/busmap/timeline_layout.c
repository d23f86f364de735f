/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Timeline geometry: which steps get a column and how wide, and an address axis per panel
 * that shows only what some BAR used. Every interval a BAR occupied cuts the axis at its
 * ends; the pieces some BAR covered get a height that grows with their size, the gaps a
 * fixed small one.
 */
#include "timeline_internal.h"

#include <errno.h>
#include <stdlib.h>

/* ---- columns ---- */

int timeline_columns(struct timeline *t)
{
	const struct history *h = t->h;
	t->col = calloc(h->nsteps ? h->nsteps : 1, sizeof(*t->col));
	if (!t->col)
		return -ENOMEM;
	size_t wide = 0;
	for (size_t i = 0; i < h->nsteps && t->ncol < MAX_COLUMNS; i++) {
		bool thin = h->nsteps > THIN_AFTER && i > 0 && !h->steps[i].changed;
		struct column *prev = t->ncol ? &t->col[t->ncol - 1] : NULL;
		if (thin && prev && prev->w == THIN_W) {
			prev->last = i;
			continue;
		}
		t->col[t->ncol++] = (struct column){.step = i, .last = i, .w = thin ? THIN_W : 0};
		wide += !thin;
	}
	t->cols_cut = t->ncol && t->col[t->ncol - 1].last + 1 < h->nsteps;
	double ww = wide ? 900.0 / (double)wide : 60.0;
	ww = ww < 14.0 ? 14.0 : ww > 90.0 ? 90.0 : ww;
	double x = LEFT;
	for (size_t i = 0; i < t->ncol; i++) {
		if (t->col[i].w == 0)
			t->col[i].w = ww;
		t->col[i].x = x;
		x += t->col[i].w;
	}
	t->width = x - LEFT;
	return 0;
}

/* ---- address axis ---- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct interval {
	uint64_t lo, hi; /* inclusive */
};

static int interval_cmp(const void *a, const void *b)
{
	const struct interval *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static int push_interval(struct interval **v, size_t *n, size_t *cap, uint64_t lo, uint64_t hi)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct interval *nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = (struct interval){lo, hi};
	return 0;
}

/* Every distinct address range a BAR of this kind was decoded at, sorted. */
static int collect_intervals(const struct history *h, bool io, struct interval **out, size_t *n)
{
	size_t cap = 0, k = 0;
	struct interval *v = NULL;
	for (size_t s = 0; s < h->nsteps; s++) {
		const struct hist_step *st = &h->steps[s];
		if (s && st->place0 == h->steps[s - 1].place0)
			continue;
		for (size_t i = 0; i < st->nplace; i++) {
			const struct hist_place *p = &h->places[st->place0 + i];
			const struct hist_bar *b = &h->bars[p->bar];
			uint64_t hi = p->addr + (b->size - 1);
			if (b->io != io)
				continue;
			if (push_interval(&v, &k, &cap, p->addr, hi < p->addr ? UINT64_MAX : hi)) {
				free(v);
				return -ENOMEM;
			}
		}
	}
	if (k)
		qsort(v, k, sizeof(*v), interval_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || v[u - 1].lo != v[i].lo || v[u - 1].hi != v[i].hi)
			v[u++] = v[i];
	*out = v;
	*n = u;
	return 0;
}

/* The edges between which the axis is cut: every interval's start and one past its end. */
static int edges_of(const struct interval *iv, size_t n, uint64_t **out, size_t *count)
{
	uint64_t *e = malloc((2 * n + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		e[k++] = iv[i].lo;
		if (iv[i].hi != UINT64_MAX)
			e[k++] = iv[i].hi + 1;
	}
	qsort(e, k, sizeof(*e), u64_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (!u || e[u - 1] != e[i])
			e[u++] = e[i];
	*out = e;
	*count = u;
	return 0;
}

/* Merges sorted intervals in place into disjoint covered ranges. */
static size_t merge_intervals(struct interval *iv, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && iv[i].lo <= iv[m - 1].hi + 1 && iv[m - 1].hi != UINT64_MAX) {
			if (iv[i].hi > iv[m - 1].hi)
				iv[m - 1].hi = iv[i].hi;
			continue;
		}
		if (m && iv[m - 1].hi == UINT64_MAX)
			break;
		iv[m++] = iv[i];
	}
	return m;
}

static bool covered(const struct interval *iv, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (iv[mid].hi < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && iv[lo].lo <= addr;
}

/* Taller for bigger ranges (by their size's bit length), within [SEG_MIN, SEG_MAX]. */
static double used_height(uint64_t len)
{
	int bits = 0;
	while (len > 1) {
		len >>= 1;
		bits++;
	}
	double hgt = SEG_MIN + 3.0 * (bits - 2);
	return hgt < SEG_MIN ? SEG_MIN : hgt > SEG_MAX ? SEG_MAX : hgt;
}

static void add_segments(struct panel *p, const uint64_t *e, size_t n, const struct interval *iv,
                         size_t niv)
{
	double y = p->y;
	for (size_t i = 0; i + 1 < n && p->nseg < MAX_SEGMENTS; i++) {
		uint64_t lo = e[i], hi = e[i + 1] - 1;
		bool used = covered(iv, niv, lo);
		double hgt = used ? used_height(hi - lo + 1) : GAP_H;
		p->seg[p->nseg++] = (struct segment){lo, hi, y, hgt, used};
		y += hgt;
	}
	/* The last edge is one past a range that ends at 2^64 - 1 only if none follows. */
	if (n && covered(iv, niv, e[n - 1]) && p->nseg < MAX_SEGMENTS) {
		p->seg[p->nseg++] = (struct segment){e[n - 1], UINT64_MAX, y, SEG_MIN, true};
		y += SEG_MIN;
	}
	p->cut = n > 1 && p->nseg < n - 1;
	p->h = y - p->y < 30.0 ? 30.0 : y - p->y;
}

static int build_axis(struct timeline *t, struct panel *p)
{
	struct interval *iv;
	size_t niv, n;
	uint64_t *e;
	if (collect_intervals(t->h, p->io, &iv, &niv))
		return -ENOMEM;
	if (edges_of(iv, niv, &e, &n)) {
		free(iv);
		return -ENOMEM;
	}
	niv = merge_intervals(iv, niv);
	p->seg = calloc(n + 1, sizeof(*p->seg));
	if (p->seg)
		add_segments(p, e, n, iv, niv);
	free(e);
	free(iv);
	return p->seg ? 0 : -ENOMEM;
}

double timeline_y(const struct panel *p, uint64_t addr, bool end)
{
	size_t lo = 0, hi = p->nseg;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->seg[mid].hi < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->nseg || p->seg[lo].lo > addr)
		return -1;
	const struct segment *s = &p->seg[lo];
	long double len = (long double)(s->hi - s->lo) + 1.0L;
	long double f = ((long double)(addr - s->lo) + (end ? 1.0L : 0.0L)) / len;
	return s->y + (double)(f * s->h);
}

int timeline_layout(struct timeline *t)
{
	bool any[2] = {false, false};
	for (size_t b = 0; b < t->h->nbars; b++)
		any[t->h->bars[b].io] = true;
	double y = TOP + 20;
	for (int k = 0; k < 2; k++) {
		if (!any[k])
			continue;
		struct panel *p = &t->panel[t->npanel++];
		p->io = k == 1;
		p->title = p->io ? "I/O ports" : "memory";
		p->y = y;
		if (build_axis(t, p))
			return -ENOMEM;
		y += p->h + PANEL_GAP;
	}
	return 0;
}
