/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The view every report is computed from. Lookups walk the published flat view through
 * bm_space_flat, so what they report is what a vCPU's access would reach.
 */
#include "world.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push_bar(struct world_bar **v, size_t *n, size_t *cap, const struct world_bar *b)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct world_bar *nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *b;
	return 0;
}

static bool bar_of(bm_pci_func *f, unsigned i, struct world_bar *b)
{
	struct bm_pci_bar_info info;
	if (bm_pci_bar_info(f, i, &info) != 0 || !info.size || !info.region)
		return false;
	if (i < BM_PCI_ROM && info.type == BM_PCI_BAR_NONE)
		return false;
	*b = (struct world_bar){
	    .func = f,
	    .index = i,
	    .io = info.io,
	    .type = i == BM_PCI_ROM ? BM_PCI_BAR_MEM32 : info.type,
	    .prefetchable = info.prefetchable,
	    .size = info.size,
	    .mapped = info.mapped,
	    .addr = info.mapped_addr,
	    .reg_addr = info.addr,
	    .region = info.region,
	};
	snprintf(b->name, sizeof(b->name), "%s", bm_region_name(info.region));
	return true;
}

int world_bars(const struct world *w, struct world_bar **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (bm_pci_func *f = bm_pci_func_next(w->host, NULL); f;
	     f = bm_pci_func_next(w->host, f)) {
		for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
			struct world_bar b;
			if (bar_of(f, i, &b) && push_bar(out, n, &cap, &b)) {
				free(*out);
				*out = NULL;
				*n = 0;
				return -ENOMEM;
			}
		}
	}
	return 0;
}

long world_bar_of_region(const struct world_bar *bars, size_t n, const bm_region *r)
{
	for (; r; r = bm_region_parent(r))
		for (size_t i = 0; i < n; i++)
			if (bars[i].region == r)
				return (long)i;
	return -1;
}

bm_space *world_space(const struct world *w, bool io, uint64_t *addr)
{
	if (!io)
		return w->mem;
	if (w->io_in_mem) {
		*addr += w->io_base;
		return w->mem;
	}
	return w->io;
}

static void fill_hit(const struct bm_flat_range *r, uint64_t addr, const struct world_bar *bars,
                     size_t n, struct world_hit *h)
{
	*h = (struct world_hit){
	    .assigned = true,
	    .region = r->region,
	    .region_offset = r->offset + (addr - r->start),
	    .bar = world_bar_of_region(bars, n, r->region),
	    .conflict = r->conflict,
	    .start = r->start,
	    .last = r->last,
	};
	if (h->bar < 0)
		return;
	uint64_t off = h->region_offset;
	for (const bm_region *x = r->region; x && x != bars[h->bar].region; x = bm_region_parent(x))
		off += bm_region_offset(x);
	h->bar_offset = off;
}

struct lookup {
	uint64_t addr;
	const struct world_bar *bars;
	size_t n;
	struct world_hit *hit;
};

static int lookup_fn(void *arg, const struct bm_flat_range *r)
{
	struct lookup *l = arg;
	if (r->start > l->addr)
		return 1;
	if (r->last < l->addr)
		return 0;
	fill_hit(r, l->addr, l->bars, l->n, l->hit);
	return 1;
}

int world_lookup(const struct world *w, bool io, uint64_t addr, const struct world_bar *bars,
                 size_t n, struct world_hit *hit)
{
	uint64_t a = addr;
	bm_space *s = world_space(w, io, &a);
	*hit = (struct world_hit){.bar = -1};
	if (!s)
		return -ENOENT;
	struct lookup l = {a, bars, n, hit};
	bm_space_flat(s, lookup_fn, &l);
	return 0;
}

struct walk {
	uint64_t first, last, shift;
	const struct world_bar *bars;
	size_t n;
	world_range_fn fn;
	void *arg;
	int ret;
};

static int walk_fn(void *arg, const struct bm_flat_range *r)
{
	struct walk *k = arg;
	if (r->start > k->last)
		return 1;
	if (r->last < k->first)
		return 0;
	uint64_t s = r->start < k->first ? k->first : r->start;
	uint64_t e = r->last > k->last ? k->last : r->last;
	struct world_hit h;
	fill_hit(r, s, k->bars, k->n, &h);
	k->ret = k->fn(k->arg, s - k->shift, e - k->shift, &h);
	return k->ret;
}

int world_walk(const struct world *w, bool io, uint64_t first, uint64_t last,
               const struct world_bar *bars, size_t n, world_range_fn fn, void *arg)
{
	uint64_t a = first;
	bm_space *s = world_space(w, io, &a);
	if (!s)
		return -ENOENT;
	uint64_t shift = a - first;
	if (last > UINT64_MAX - shift)
		last = UINT64_MAX - shift;
	struct walk k = {a, last + shift, shift, bars, n, fn, arg, 0};
	bm_space_flat(s, walk_fn, &k);
	return k.ret;
}

/* Extends an earlier record of the same pair that ends just before c, if there is one. */
static bool merge_conflict(struct world_conflict *v, size_t n, const struct world_conflict *c)
{
	for (size_t i = n; i-- > 0;) {
		struct world_conflict *p = &v[i];
		if (p->winner == c->winner && p->loser == c->loser && p->io == c->io &&
		    p->last + 1 == c->start) {
			p->last = c->last;
			return true;
		}
	}
	return false;
}

static int space_conflicts(const struct world *w, bm_space *s, const struct world_bar *bars,
                           size_t n, struct world_conflict **out, size_t *count, size_t *cap)
{
	size_t k = bm_space_conflicts(s, NULL, 0);
	if (!k)
		return 0;
	struct bm_conflict *c = calloc(k, sizeof(*c));
	if (!c)
		return -ENOMEM;
	k = bm_space_conflicts(s, c, k);
	int err = 0;
	for (size_t i = 0; i < k && !err; i++) {
		struct world_conflict x = {
		    .winner = world_bar_of_region(bars, n, c[i].winner),
		    .loser = world_bar_of_region(bars, n, c[i].loser),
		    .start = c[i].start,
		    .last = c[i].last,
		};
		if (x.winner < 0 || x.loser < 0)
			continue;
		x.io = bars[x.winner].io && bars[x.loser].io;
		if (x.io && s == w->mem && w->io_in_mem) {
			x.start -= w->io_base;
			x.last -= w->io_base;
		}
		if (merge_conflict(*out, *count, &x))
			continue;
		if (*count == *cap) {
			size_t ncap = *cap ? *cap * 2 : 8;
			struct world_conflict *nv = realloc(*out, ncap * sizeof(*nv));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			*out = nv;
			*cap = ncap;
		}
		(*out)[(*count)++] = x;
	}
	free(c);
	return err;
}

int world_conflicts(const struct world *w, const struct world_bar *bars, size_t n,
                    struct world_conflict **out, size_t *count)
{
	*out = NULL;
	*count = 0;
	size_t cap = 0;
	int err = space_conflicts(w, w->mem, bars, n, out, count, &cap);
	if (!err && w->io)
		err = space_conflicts(w, w->io, bars, n, out, count, &cap);
	if (err) {
		free(*out);
		*out = NULL;
		*count = 0;
	}
	return err;
}

void world_func_title(const struct world *w, const bm_pci_func *f, char *buf, size_t size)
{
	const char *label = w->label ? w->label(w->label_arg, f) : NULL;
	if (label && *label)
		snprintf(buf, size, "%s %s", bm_pci_func_name(f), label);
	else
		snprintf(buf, size, "%s", bm_pci_func_name(f));
}
