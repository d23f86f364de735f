/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Step records. BARs are numbered in the order they are first seen and matched again by
 * their region handle, so a BAR keeps its number (its lane in a timeline) for the whole run.
 */
#include "history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static long find_bar(const struct history *h, const bm_region *r)
{
	for (size_t i = h->nbars; i-- > 0;)
		if (h->bars[i].region == r)
			return (long)i;
	return -1;
}

static long bar_id(struct history *h, const struct world *w, const struct world_bar *b)
{
	long id = find_bar(h, b->region);
	if (id >= 0)
		return id;
	if (grow((void **)&h->bars, &h->capbars, h->nbars, sizeof(*h->bars)))
		return -1;
	struct hist_bar *x = &h->bars[h->nbars];
	*x = (struct hist_bar){.io = b->io, .size = b->size, .region = b->region};
	snprintf(x->name, sizeof(x->name), "%s", b->name);
	const char *label = w->label ? w->label(w->label_arg, b->func) : NULL;
	snprintf(x->label, sizeof(x->label), "%s", label ? label : "");
	return (long)h->nbars++;
}

static int place_cmp(const void *a, const void *b)
{
	const struct hist_place *x = a, *y = b;
	return x->bar < y->bar ? -1 : x->bar > y->bar;
}

/* Numbers bars[] into ids[], and remembers the listing for the next step. */
static int number_bars(struct history *h, const struct world *w, const struct world_bar *bars,
                       size_t n, uint32_t *ids)
{
	for (size_t i = 0; i < n; i++) {
		if (i < h->ncache && h->cache_region[i] == bars[i].region) {
			ids[i] = h->cache_id[i];
			continue;
		}
		long id = bar_id(h, w, &bars[i]);
		if (id < 0)
			return -ENOMEM;
		ids[i] = (uint32_t)id;
	}
	const bm_region **r = realloc(h->cache_region, (n ? n : 1) * sizeof(*r));
	if (r)
		h->cache_region = r;
	uint32_t *c = realloc(h->cache_id, (n ? n : 1) * sizeof(*c));
	if (c)
		h->cache_id = c;
	if (!r || !c) {
		h->ncache = 0;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		r[i] = bars[i].region;
		c[i] = ids[i];
	}
	h->ncache = n;
	return 0;
}

/* Appends the mapped BARs as placements. */
static int add_places(struct history *h, const struct world *w, const struct world_bar *bars,
                      size_t n, uint32_t *ids)
{
	int err = number_bars(h, w, bars, n, ids);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		long id = ids[i];
		if (!bars[i].mapped)
			continue;
		if (grow((void **)&h->places, &h->capplaces, h->nplaces, sizeof(*h->places)))
			return -ENOMEM;
		h->places[h->nplaces++] = (struct hist_place){(uint32_t)id, bars[i].addr};
	}
	return 0;
}

static int add_conflicts(struct history *h, const struct world *w, const struct world_bar *bars,
                         size_t n, const uint32_t *ids)
{
	struct world_conflict *c;
	size_t nc;
	int err = world_conflicts(w, bars, n, &c, &nc);
	for (size_t i = 0; !err && i < nc; i++) {
		err = grow((void **)&h->conflicts, &h->capconflicts, h->nconflicts,
		           sizeof(*h->conflicts));
		if (!err)
			h->conflicts[h->nconflicts++] = (struct hist_conflict){
			    ids[c[i].winner], ids[c[i].loser], c[i].io, c[i].start, c[i].last};
	}
	free(c);
	return err;
}

/* Field by field: the records have padding, which memcmp would read. */
bool hist_same_conflicts(const struct history *h, size_t a0, size_t b0, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct hist_conflict *a = &h->conflicts[a0 + i], *b = &h->conflicts[b0 + i];
		if (a->winner != b->winner || a->loser != b->loser || a->io != b->io ||
		    a->start != b->start || a->last != b->last)
			return false;
	}
	return true;
}

static bool same_places(const struct history *h, size_t a0, size_t b0, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct hist_place *a = &h->places[a0 + i], *b = &h->places[b0 + i];
		if (a->bar != b->bar || a->addr != b->addr)
			return false;
	}
	return true;
}

/* Drops what this step appended when it equals the step before, sharing that one's. */
static void share_if_unchanged(struct history *h, struct hist_step *s)
{
	const struct hist_step *p = h->nsteps ? &h->steps[h->nsteps - 1] : NULL;
	bool same = p && p->nplace == s->nplace && p->nconf == s->nconf &&
	            same_places(h, p->place0, s->place0, s->nplace) &&
	            hist_same_conflicts(h, p->conf0, s->conf0, s->nconf);
	s->changed = p ? !same : (s->nplace || s->nconf);
	if (!same)
		return;
	h->nplaces = s->place0;
	h->nconflicts = s->conf0;
	s->place0 = p->place0;
	s->conf0 = p->conf0;
}

int history_record(struct history *h, const struct world *w, unsigned line, const char *label)
{
	if (h->truncated)
		return 0;
	if (h->nsteps >= HIST_MAX_STEPS || h->nplaces + h->nconflicts >= HIST_MAX_RECORDS) {
		h->truncated = true;
		return 0;
	}
	struct world_bar *bars;
	size_t n;
	int err = world_bars(w, &bars, &n);
	uint32_t *ids = n ? calloc(n, sizeof(*ids)) : NULL;
	if (err || (n && !ids)) {
		free(bars);
		return -ENOMEM;
	}
	struct hist_step s = {.line = line, .place0 = h->nplaces, .conf0 = h->nconflicts};
	err = add_places(h, w, bars, n, ids);
	if (!err)
		err = add_conflicts(h, w, bars, n, ids);
	if (!err)
		err = grow((void **)&h->steps, &h->capsteps, h->nsteps, sizeof(*h->steps));
	if (!err && label && !(s.label = strdup(label)))
		err = -ENOMEM;
	free(ids);
	free(bars);
	if (err) {
		free(s.label);
		return err;
	}
	s.nplace = h->nplaces - s.place0;
	s.nconf = h->nconflicts - s.conf0;
	if (s.nplace)
		qsort(&h->places[s.place0], s.nplace, sizeof(*h->places), place_cmp);
	share_if_unchanged(h, &s);
	h->steps[h->nsteps++] = s;
	return 0;
}

int history_access(struct history *h, const struct world *w, unsigned line, bool io, bool write,
                   uint64_t addr, unsigned width)
{
	if (h->naccesses >= HIST_MAX_ACCESS) {
		h->dropped_accesses++;
		return 0;
	}
	struct world_bar *bars;
	size_t n;
	if (world_bars(w, &bars, &n))
		return -ENOMEM;
	struct world_hit hit;
	world_lookup(w, io, addr, bars, n, &hit);
	struct hist_access a = {.step = h->nsteps,
	                        .line = line,
	                        .io = io,
	                        .write = write,
	                        .addr = addr,
	                        .width = width,
	                        .winner = HIST_NONE,
	                        .hidden = HIST_NONE};
	int err = 0;
	if (hit.bar >= 0) {
		long id = bar_id(h, w, &bars[hit.bar]);
		err = id < 0 ? -ENOMEM : 0;
		a.winner = (uint32_t)id;
	}
	struct world_conflict *c = NULL;
	size_t nc = 0;
	if (!err && hit.bar >= 0)
		err = world_conflicts(w, bars, n, &c, &nc);
	for (size_t i = 0; !err && i < nc; i++) {
		if (c[i].winner == hit.bar && c[i].io == io && c[i].start <= addr &&
		    addr <= c[i].last) {
			long id = bar_id(h, w, &bars[c[i].loser]);
			err = id < 0 ? -ENOMEM : 0;
			a.hidden = (uint32_t)id;
			break;
		}
	}
	free(c);
	free(bars);
	if (!err)
		err = grow((void **)&h->accesses, &h->capaccesses, h->naccesses,
		           sizeof(*h->accesses));
	if (!err)
		h->accesses[h->naccesses++] = a;
	return err;
}

void history_free(struct history *h)
{
	for (size_t i = 0; i < h->nsteps; i++)
		free(h->steps[i].label);
	free(h->steps);
	free(h->bars);
	free(h->places);
	free(h->conflicts);
	free(h->accesses);
	free(h->cache_region);
	free(h->cache_id);
	*h = (struct history){0};
}

void history_bar_title(const struct history *h, uint32_t bar, char *buf, size_t size)
{
	if (bar >= h->nbars) {
		snprintf(buf, size, "(unknown)");
		return;
	}
	const struct hist_bar *b = &h->bars[bar];
	if (b->label[0])
		snprintf(buf, size, "%s (%s)", b->name, b->label);
	else
		snprintf(buf, size, "%s", b->name);
}
