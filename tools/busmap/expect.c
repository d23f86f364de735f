/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Expectations: what an address reaches, what a range of the map holds, where a BAR is
 * decoded, which BARs overlap, and that every BAR byte reaches the newest BAR there.
 * Each compares the published map (and an actual dispatch) with what the scenario states,
 * and a mismatch is reported with both sides in the same words.
 */
#include "runner_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Probes per "expect routing": every byte of small BARs, the edges of large ones. */
#define ROUTING_MAX_PROBES 1000000
#define ROUTING_EDGE       64

void run_format_probe(const struct probe *p, const struct world_bar *bars, char *buf, size_t size)
{
	switch (p->kind) {
	case PROBE_UNASSIGNED:
		snprintf(buf, size, "unassigned");
		break;
	case PROBE_REGION:
		snprintf(buf, size, "%s", p->region);
		break;
	case PROBE_BAR:
		snprintf(buf, size, "%s+0x%" PRIx64, bars[p->bar].name, p->offset);
		break;
	}
	if (!p->consistent) {
		size_t n = strlen(buf);
		snprintf(buf + n, size - n, " (but the dispatch went elsewhere)");
	}
}

/* The BAR a target names, in bars; -1 if it does not exist. */
static long target_bar(struct runner *r, const struct scn_target *t, const struct world_bar *bars,
                       size_t n)
{
	bm_pci_func *f = runner_func(r, t->bdf);
	for (size_t i = 0; f && i < n; i++)
		if (bars[i].func == f && bars[i].index == t->bar)
			return (long)i;
	return -1;
}

static bool region_named(const bm_region *reg, const char *name)
{
	for (; reg; reg = bm_region_parent(reg))
		if (strcmp(bm_region_name(reg), name) == 0)
			return true;
	return false;
}

/* Does what an address holds (probe, or hit for walks) match the target at offset delta? */
static bool probe_matches(struct runner *r, const struct scn_target *t, const struct probe *p,
                          const struct world_bar *bars, size_t n, uint64_t delta)
{
	switch (t->kind) {
	case SCN_TGT_UNASSIGNED:
		return p->kind == PROBE_UNASSIGNED;
	case SCN_TGT_REGION:
		return p->kind == PROBE_REGION && strcmp(p->region, t->region) == 0;
	case SCN_TGT_BAR:
		break;
	}
	long b = target_bar(r, t, bars, n);
	return p->kind == PROBE_BAR && b >= 0 && p->bar == b &&
	       (!t->has_offset || p->offset == t->offset + delta);
}

static int with_bars(struct runner *r, struct world_bar **bars, size_t *n)
{
	if (world_bars(&r->w, bars, n))
		return run_error(r, "out of memory");
	return 0;
}

static int expect_reaches(struct runner *r, const struct scn_expect *e)
{
	struct world_bar *bars;
	size_t n;
	if (with_bars(r, &bars, &n))
		return -1;
	struct probe p;
	runner_probe(r, bars, n, e->io, e->addr, &p);
	bool ok = p.consistent && probe_matches(r, &e->target, &p, bars, n, 0);
	if (!ok && p.kind == PROBE_REGION && e->target.kind == SCN_TGT_REGION) {
		struct world_hit h;
		world_lookup(&r->w, e->io, e->addr, bars, n, &h);
		ok = p.consistent && region_named(h.region, e->target.region);
	}
	if (!ok) {
		char want[96], got[128];
		scn_target_format(&e->target, want, sizeof(want));
		run_format_probe(&p, bars, got, sizeof(got));
		run_fail(r, want, got);
	}
	free(bars);
	return 0;
}

/* ---- expect map ---- */

struct map_check {
	struct runner *r;
	const struct scn_expect *e;
	const struct world_bar *bars;
	size_t n;
	uint64_t next; /* first address not yet covered */
	bool ok;
	char actual[400];
	size_t len;
};

static void describe_piece(struct map_check *m, uint64_t s, uint64_t l, const char *what)
{
	if (m->len >= sizeof(m->actual) - 1)
		return;
	int k = snprintf(m->actual + m->len, sizeof(m->actual) - m->len,
	                 "%s0x%" PRIx64 "-0x%" PRIx64 " %s", m->len ? ", " : "", s, l, what);
	if (k > 0)
		m->len += (size_t)k;
	if (m->len >= sizeof(m->actual))
		m->len = sizeof(m->actual) - 1;
}

static void gap(struct map_check *m, uint64_t s, uint64_t l)
{
	describe_piece(m, s, l, "unassigned");
	if (m->e->target.kind != SCN_TGT_UNASSIGNED)
		m->ok = false;
}

static int map_piece(void *arg, uint64_t s, uint64_t l, const struct world_hit *h)
{
	struct map_check *m = arg;
	if (s > m->next)
		gap(m, m->next, s - 1);
	struct probe p = {.kind = h->bar >= 0 ? PROBE_BAR : PROBE_REGION,
	                  .bar = h->bar,
	                  .offset = h->bar_offset,
	                  .region = bm_region_name(h->region),
	                  .consistent = true};
	char what[96];
	run_format_probe(&p, m->bars, what, sizeof(what));
	describe_piece(m, s, l, what);
	bool match = probe_matches(m->r, &m->e->target, &p, m->bars, m->n, s - m->e->start);
	if (!match && m->e->target.kind == SCN_TGT_REGION)
		match = region_named(h->region, m->e->target.region);
	m->ok &= match;
	m->next = l + 1;
	return l == UINT64_MAX;
}

static int expect_map(struct runner *r, const struct scn_expect *e)
{
	struct world_bar *bars;
	size_t n;
	if (with_bars(r, &bars, &n))
		return -1;
	struct map_check m = {.r = r, .e = e, .bars = bars, .n = n, .next = e->start, .ok = true};
	world_walk(&r->w, e->io, e->start, e->last, bars, n, map_piece, &m);
	if (m.next <= e->last && !(m.next == 0 && m.len))
		gap(&m, m.next, e->last);
	if (!m.ok) {
		char want[160], t[96];
		scn_target_format(&e->target, t, sizeof(t));
		snprintf(want, sizeof(want), "0x%" PRIx64 "-0x%" PRIx64 " %s", e->start, e->last,
		         t);
		run_fail(r, want, m.actual);
	}
	free(bars);
	return 0;
}

/* ---- expect bar ---- */

static int expect_bar(struct runner *r, const struct scn_expect *e)
{
	struct bm_pci_bar_info info;
	bm_pci_func *f = runner_func(r, e->target.bdf);
	if (!f || bm_pci_bar_info(f, e->target.bar, &info))
		return run_error(r, "no such BAR");
	bool ok = e->mapped ? info.mapped && info.mapped_addr == e->addr : !info.mapped;
	if (!ok) {
		char want[64], got[96];
		if (e->mapped)
			snprintf(want, sizeof(want), "decoded at 0x%" PRIx64, e->addr);
		else
			snprintf(want, sizeof(want), "not decoded");
		if (info.mapped)
			snprintf(got, sizeof(got), "decoded at 0x%" PRIx64, info.mapped_addr);
		else
			snprintf(got, sizeof(got), "not decoded (registers hold 0x%" PRIx64 ")",
			         info.addr);
		run_fail(r, want, got);
	}
	return 0;
}

/* ---- conflicts ---- */

static void list_conflicts(const struct world_conflict *c, size_t nc, const struct world_bar *bars,
                           char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < nc && len + 1 < size; i++) {
		int k = snprintf(buf + len, size - len,
		                 "%s%s hides %s over %s 0x%" PRIx64 "-0x%" PRIx64, i ? "; " : "",
		                 bars[c[i].winner].name, bars[c[i].loser].name,
		                 c[i].io ? "io" : "mmio", c[i].start, c[i].last);
		if (k < 0)
			break;
		len += (size_t)k;
	}
	if (!nc)
		snprintf(buf, size, "no overlaps");
}

static int expect_conflicts(struct runner *r, const struct scn_expect *e)
{
	struct world_bar *bars;
	size_t n, nc;
	struct world_conflict *c;
	if (with_bars(r, &bars, &n))
		return -1;
	if (world_conflicts(&r->w, bars, n, &c, &nc)) {
		free(bars);
		return run_error(r, "out of memory");
	}
	bool ok;
	if (e->kind == SCN_EXP_CONFLICTS) {
		ok = nc == e->count;
	} else {
		long w = target_bar(r, &e->target, bars, n), l = target_bar(r, &e->loser, bars, n);
		ok = false;
		for (size_t i = 0; i < nc && !ok; i++)
			ok = c[i].winner == w && c[i].loser == l &&
			     (!e->has_range || (c[i].start == e->start && c[i].last == e->last));
	}
	if (!ok) {
		char want[256], got[600], a[96], b[96];
		if (e->kind == SCN_EXP_CONFLICTS) {
			snprintf(want, sizeof(want), "%" PRIu64 " overlap%s", e->count,
			         e->count == 1 ? "" : "s");
		} else {
			scn_target_format(&e->target, a, sizeof(a));
			scn_target_format(&e->loser, b, sizeof(b));
			if (e->has_range)
				snprintf(want, sizeof(want),
				         "%s hides %s over 0x%" PRIx64 "-0x%" PRIx64, a, b,
				         e->start, e->last);
			else
				snprintf(want, sizeof(want), "%s hides %s", a, b);
		}
		list_conflicts(c, nc, bars, got, sizeof(got));
		run_fail(r, want, got);
	}
	free(c);
	free(bars);
	return 0;
}

/* ---- routing ---- */

long runner_expected_bar(struct runner *r, const struct world_bar *bars, size_t n, bool io,
                         uint64_t addr)
{
	long best = -1;
	uint64_t best_order = 0;
	for (size_t i = 0; i < n; i++) {
		const struct world_bar *b = &bars[i];
		if (!b->mapped || b->io != io || addr < b->addr || addr - b->addr >= b->size)
			continue;
		uint64_t o = runner_bar_order(r, b->func, b->index);
		if (best < 0 || o > best_order) {
			best = (long)i;
			best_order = o;
		}
	}
	return best;
}

struct routing {
	struct runner *r;
	const struct world_bar *bars;
	size_t n;
	size_t probes, wrong;
	char first[300];
};

static void route_one(struct routing *k, const struct world_bar *b, uint64_t addr)
{
	long want = runner_expected_bar(k->r, k->bars, k->n, b->io, addr);
	struct probe p;
	runner_probe(k->r, k->bars, k->n, b->io, addr, &p);
	k->probes++;
	/* A configuration window or a BAR of the other kind on top is not a BAR collision. */
	if (p.consistent &&
	    (p.kind == PROBE_REGION || (p.kind == PROBE_BAR && k->bars[p.bar].io != b->io)))
		return;
	if (p.consistent && p.kind == PROBE_BAR && p.bar == want &&
	    p.offset == addr - k->bars[want].addr)
		return;
	if (k->wrong++ == 0) {
		char got[128];
		run_format_probe(&p, k->bars, got, sizeof(got));
		snprintf(
		    k->first, sizeof(k->first), "%s 0x%" PRIx64 " reaches %s, not %s+0x%" PRIx64,
		    b->io ? "port" : "address", addr, got, want >= 0 ? k->bars[want].name : "?",
		    want >= 0 ? addr - k->bars[want].addr : 0);
	}
}

static void route_range(struct routing *k, const struct world_bar *b, uint64_t from, uint64_t to)
{
	for (uint64_t off = from; off < to && k->probes < ROUTING_MAX_PROBES; off++)
		route_one(k, b, b->addr + off);
}

/* Every byte of a small BAR; the edges of a large one and of every BAR inside it. */
static void route_bar(struct routing *k, const struct world_bar *b)
{
	if (b->size <= BAR_MODEL_BYTES) {
		route_range(k, b, 0, b->size);
		return;
	}
	route_range(k, b, 0, ROUTING_EDGE);
	route_range(k, b, b->size - ROUTING_EDGE, b->size);
	for (size_t i = 0; i < k->n; i++) {
		const struct world_bar *o = &k->bars[i];
		if (!o->mapped || o->io != b->io || o == b)
			continue;
		for (int side = 0; side < 2; side++) {
			uint64_t edge = side ? o->addr + o->size : o->addr;
			if (edge > b->addr + 1 && edge - b->addr < b->size - 1)
				route_range(k, b, edge - b->addr - 2, edge - b->addr + 2);
		}
	}
}

static int expect_routing(struct runner *r)
{
	struct world_bar *bars;
	size_t n;
	if (with_bars(r, &bars, &n))
		return -1;
	struct routing k = {.r = r, .bars = bars, .n = n};
	for (size_t i = 0; i < n; i++)
		if (bars[i].mapped)
			route_bar(&k, &bars[i]);
	if (k.wrong) {
		char got[400];
		snprintf(got, sizeof(got), "%zu of %zu probed bytes misrouted; first: %s", k.wrong,
		         k.probes, k.first);
		run_fail(r, "every byte reaches the newest BAR placed there", got);
	}
	free(bars);
	return 0;
}

int run_expect(struct runner *r, const struct scn_expect *e)
{
	if (!r->host)
		return run_error(r, "no host");
	r->res->expectations++;
	switch (e->kind) {
	case SCN_EXP_REACHES:
		return expect_reaches(r, e);
	case SCN_EXP_MAP:
		return expect_map(r, e);
	case SCN_EXP_BAR:
		return expect_bar(r, e);
	case SCN_EXP_CONFLICTS:
	case SCN_EXP_CONFLICT:
		return expect_conflicts(r, e);
	case SCN_EXP_OVERLAP_ACCESSES:
		if (r->res->overlap_accesses != e->count) {
			char want[32], got[32];
			snprintf(want, sizeof(want), "%" PRIu64, e->count);
			snprintf(got, sizeof(got), "%zu", r->res->overlap_accesses);
			run_fail(r, want, got);
		}
		return 0;
	case SCN_EXP_ROUTING:
		return expect_routing(r);
	}
	return 0;
}
