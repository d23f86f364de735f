/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The public entry points: checking the caller's windows, planning under the writer lock so
 * the plan comes from one consistent state, the plan's entries, and programming it.
 */
#include "alloc_internal.h"
#include <stdlib.h>

static bool same(const struct bm_pci_alloc_window *a, const struct bm_pci_alloc_window *b)
{
	return a->base == b->base && a->limit == b->limit;
}

static bool overlap(const struct bm_pci_alloc_window *a, const struct bm_pci_alloc_window *b)
{
	return !window_absent(a) && !window_absent(b) && a->base <= b->limit && b->base <= a->limit;
}

static bool valid(const struct bm_pci_alloc_window *w, bool below_4g)
{
	return window_absent(w) || (w->base <= w->limit && (!below_4g || w->limit <= LAST_32));
}

/* I/O ports are another space than memory, so only the memory windows may collide. */
static int check_config(const struct bm_pci_alloc_config *c)
{
	if (c->mode != BM_PCI_ALLOC_BEST_FIT && c->mode != BM_PCI_ALLOC_BHYVE &&
	    c->mode != BM_PCI_ALLOC_BHYVE_UNSORTED)
		return -EINVAL;
	if (!valid(&c->io, false) || !valid(&c->mem32, true) || !valid(&c->pref32, true) ||
	    !valid(&c->mem64, false))
		return -EINVAL;
	if (overlap(&c->mem32, &c->pref32) && !same(&c->mem32, &c->pref32))
		return -EINVAL;
	if (overlap(&c->mem64, &c->mem32) || overlap(&c->mem64, &c->pref32))
		return -EINVAL;
	return 0;
}

static struct bm_pci_alloc_entry entry_of(const struct bm_pci_alloc_plan *p, const struct item *it)
{
	return (struct bm_pci_alloc_entry){
	    .func = p->funcs[it->func].f,
	    .what = it->what,
	    .index = it->index,
	    .io = it->io,
	    .prefetchable = it->pref,
	    .mem64 = it->mem64,
	    .assigned = it->placed,
	    .addr = it->placed ? it->addr : 0,
	    .size = it->size,
	};
}

static struct bm_pci_alloc_entry closed_window(const struct bm_pci_alloc_plan *p,
                                               const struct afunc *af, enum cls c)
{
	return (struct bm_pci_alloc_entry){
	    .func = af->f,
	    .what = BM_PCI_ALLOC_WINDOW,
	    .index = c,
	    .io = c == CLS_IO,
	    .prefetchable = c == CLS_PREF,
	    .mem64 = c == CLS_PREF && p->buses[af->secondary].pref64,
	    .assigned = true,
	};
}

static int make_entries(struct bm_pci_alloc_plan *p)
{
	p->entries = calloc(p->nitems + 3 * p->nbuses, sizeof(*p->entries));
	if (!p->entries)
		return -ENOMEM;
	for (size_t i = 0; i < p->nfuncs; i++) {
		const struct afunc *af = &p->funcs[i];
		for (unsigned b = 0; b <= BM_PCI_ROM; b++)
			if (af->bar_item[b] != NO_INDEX)
				p->entries[p->nentries++] = entry_of(p, &p->items[af->bar_item[b]]);
		if (af->secondary == NO_INDEX)
			continue;
		for (unsigned c = 0; c < CLS_COUNT; c++) {
			size_t w = p->buses[af->secondary].window[c];
			p->entries[p->nentries++] = w == NO_INDEX
			                                ? closed_window(p, af, (enum cls)c)
			                                : entry_of(p, &p->items[w]);
		}
	}
	return 0;
}

static int plan_locked(struct bm_pci_alloc_plan *p)
{
	int err = alloc_collect(p);
	if (!err && p->cfg.assign_buses)
		err = alloc_number_buses(p);
	if (!err)
		err = alloc_layout_buses(p);
	if (!err)
		err = alloc_place_root(p);
	if (!err) {
		alloc_make_absolute(p);
		err = make_entries(p);
	}
	return err;
}

int bm_pci_alloc_plan_new(bm_pci_host *host, const struct bm_pci_alloc_config *cfg,
                          bm_pci_alloc_plan **out, struct bm_pci_alloc_failure *fail)
{
	if (fail)
		*fail = (struct bm_pci_alloc_failure){0};
	if (!host || !cfg || !out)
		return -EINVAL;
	int err = check_config(cfg);
	if (err)
		return err;
	struct bm_pci_alloc_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	p->cfg = *cfg;
	/* One transaction for the whole plan: it is taken from one consistent state. */
	err = bm_begin(bm_pci_host_system(host));
	if (err) {
		free(p);
		return err;
	}
	err = plan_locked(p);
	int uerr = bm_commit(bm_pci_host_system(host));
	if (!err)
		err = uerr;
	if (err) {
		if (err == -ENOSPC && fail)
			*fail = p->fail;
		bm_pci_alloc_plan_free(p);
		return err;
	}
	*out = p;
	return 0;
}

const struct bm_pci_alloc_entry *bm_pci_alloc_plan_entries(const bm_pci_alloc_plan *p,
                                                           size_t *count)
{
	if (count)
		*count = p ? p->nentries : 0;
	return p ? p->entries : NULL;
}

const struct bm_pci_alloc_busnr *bm_pci_alloc_plan_buses(const bm_pci_alloc_plan *p, size_t *count)
{
	if (count)
		*count = p ? p->nbusnrs : 0;
	return p ? p->busnrs : NULL;
}

int bm_pci_alloc_plan_bus_number(const bm_pci_alloc_plan *p, const bm_pci_func *f)
{
	if (!p || !f)
		return -EINVAL;
	for (size_t i = 0; i < p->nfuncs; i++) {
		if (p->funcs[i].f != f)
			continue;
		size_t b = p->funcs[i].bus;
		/* Planned numbers are the buses' depth-first indices. */
		return p->cfg.assign_buses ? (int)b : (int)bm_pci_bus_number(p->buses[b].bus);
	}
	return -ENOENT;
}

int bm_pci_alloc_plan_program(bm_pci_alloc_plan *p)
{
	if (!p)
		return -EINVAL;
	/* One transaction for the whole run: it publishes once. */
	int err = bm_begin(bm_pci_host_system(p->host));
	if (err)
		return err;
	err = alloc_program(p);
	int uerr = bm_commit(bm_pci_host_system(p->host));
	return err ? err : uerr;
}

void bm_pci_alloc_plan_free(bm_pci_alloc_plan *p)
{
	if (!p)
		return;
	free(p->funcs);
	free(p->buses);
	free(p->items);
	free(p->entries);
	free(p->busnrs);
	free(p);
}

int bm_pci_alloc_run(bm_pci_host *host, const struct bm_pci_alloc_config *cfg,
                     struct bm_pci_alloc_failure *fail)
{
	bm_pci_alloc_plan *p = NULL;
	int err = bm_pci_alloc_plan_new(host, cfg, &p, fail);
	if (err)
		return err;
	err = bm_pci_alloc_plan_program(p);
	bm_pci_alloc_plan_free(p);
	return err;
}
