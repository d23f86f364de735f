/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The built-in demonstration: the seed scenario, with a running commentary. Every BAR
 * move goes to busmap and, in parallel, to a model of bhyve's registry; after each step
 * both are asked where every byte of every decoded BAR goes, and busmap's answer is
 * checked against "the newest placement wins".
 */
#include "demo.h"

#include "bhyve_model.h"
#include "parser.h"
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_MAX_CALLS 32
#define DEMO_MAX_BYTES 4096 /* probed per BAR */

struct demo {
	const struct demo_options *o;
	FILE *out;
	struct bhyve_model bhyve;
	char calls[DEMO_MAX_CALLS][240];
	size_t ncalls;
	size_t misrouted;
	size_t bhyve_wrong;
	char abort_text[240];
	size_t abort_step;
	size_t step;
	int err;
};

/* ---- the registry beside busmap ---- */

static void note_call(struct demo *d, const char *text)
{
	if (d->ncalls < DEMO_MAX_CALLS)
		snprintf(d->calls[d->ncalls++], sizeof(d->calls[0]), "%s", text);
}

static void note_abort(struct demo *d, const char *text)
{
	if (d->abort_text[0])
		return;
	snprintf(d->abort_text, sizeof(d->abort_text), "%s", text);
	d->abort_step = d->step;
}

static void registered(struct demo *d, const char *call, enum bhyve_outcome out, uint64_t base)
{
	char text[240];
	const struct bhyve_range *there = bhyve_lookup(&d->bhyve, base);
	switch (out) {
	case BHYVE_OK:
		snprintf(text, sizeof(text), "%s = 0", call);
		break;
	case BHYVE_NOT_INSERTED:
		snprintf(text, sizeof(text),
		         "%s = 0, but NOT inserted: 0x%" PRIx64 " already holds %s", call, base,
		         there ? there->name : "a range");
		break;
	case BHYVE_EEXIST:
		snprintf(text, sizeof(text), "%s = EEXIST: assert(error == 0) aborts the VM", call);
		note_abort(d, text);
		break;
	default:
		snprintf(text, sizeof(text), "%s: not called, the VM has aborted", call);
		break;
	}
	note_call(d, text);
}

static void unregistered(struct demo *d, const char *call, enum bhyve_outcome out,
                         const struct bhyve_range *found)
{
	char text[240];
	switch (out) {
	case BHYVE_OK:
		snprintf(text, sizeof(text), "%s = 0", call);
		break;
	case BHYVE_ENOENT:
		snprintf(text, sizeof(text), "%s = ENOENT: assert(error == 0) aborts the VM", call);
		note_abort(d, text);
		break;
	case BHYVE_MISMATCH:
		snprintf(text, sizeof(text),
		         "%s finds %s instead: assertion failure, the VM aborts", call,
		         found->name);
		note_abort(d, text);
		break;
	default:
		snprintf(text, sizeof(text), "%s: not called, the VM has aborted", call);
		break;
	}
	note_call(d, text);
}

static uint64_t mmio_address(const struct world *w, bool io, uint64_t addr)
{
	return io && w->io_in_mem ? w->io_base + addr : addr;
}

static void on_map(void *arg, struct runner *r, const struct bm_pci_map_event *ev, const char *bar)
{
	struct demo *d = arg;
	const struct world *w = runner_world(r);
	uint64_t base = mmio_address(w, ev->io, ev->addr);
	char owner[24], call[120];
	snprintf(owner, sizeof(owner), "%s", bm_pci_func_name(ev->func));
	snprintf(call, sizeof(call), "%sregister_mem(%s, 0x%" PRIx64 "+0x%" PRIx64 ")",
	         ev->mapped ? "" : "un", bar, base, ev->size);
	enum bhyve_outcome out;
	struct bhyve_range found;
	int err = ev->mapped
	              ? bhyve_register(&d->bhyve, owner, bar, base, ev->size, &out)
	              : bhyve_unregister(&d->bhyve, owner, bar, base, ev->size, &out, &found);
	if (err) {
		d->err = err;
		return;
	}
	if (ev->mapped)
		registered(d, call, out, base);
	else
		unregistered(d, call, out, &found);
}

/* ---- after each step ---- */

static int map_line(void *arg, uint64_t s, uint64_t l, const struct world_hit *h)
{
	struct demo *d = arg;
	if (h->bar < 0)
		return 0;
	char off[24] = "";
	if (h->bar_offset)
		snprintf(off, sizeof(off), " @0x%" PRIx64, h->bar_offset);
	fprintf(d->out, "      0x%08" PRIx64 "-0x%08" PRIx64 "  %s%s%s\n", s, l,
	        bm_region_name(h->region), off, h->conflict ? "   (overlap)" : "");
	return 0;
}

static void show_map(struct demo *d, struct runner *r, const struct world_bar *bars, size_t n)
{
	const struct world *w = runner_world(r);
	fputs("    flat view, where BARs are:\n", d->out);
	struct world mem_only = *w;
	mem_only.io_in_mem = false;
	world_walk(&mem_only, false, 0, UINT64_MAX, bars, n, map_line, d);
	if (w->io)
		world_walk(w, true, 0, UINT64_MAX, bars, n, map_line, d);
}

static void show_conflicts(struct demo *d, const struct world *w, const struct world_bar *bars,
                           size_t n)
{
	struct world_conflict *c;
	size_t nc;
	if (world_conflicts(w, bars, n, &c, &nc)) {
		d->err = -ENOMEM;
		return;
	}
	if (!nc)
		fputs("    overlaps: none\n", d->out);
	for (size_t i = 0; i < nc; i++)
		fprintf(d->out, "    overlap: %s hides %s over 0x%" PRIx64 "-0x%" PRIx64 "\n",
		        bars[c[i].winner].name, bars[c[i].loser].name, c[i].start, c[i].last);
	free(c);
}

/* One answer for one byte: a BAR and offset, or nothing. */
struct answer {
	long bar; /* -1: nothing */
	const char *name;
	uint64_t offset;
};

/* Consecutive bytes with the same answer (offsets running on) make one segment; each side's
 * segments are kept and printed together. */
#define DEMO_MAX_SEGMENTS 6

struct segment {
	uint64_t start, end;
	struct answer first;
	bool ok;
	const char *bad; /* the verdict when not ok */
};

struct segments {
	const char *who;
	struct segment v[DEMO_MAX_SEGMENTS];
	size_t n, more;
};

static void seg_add(struct segments *s, uint64_t addr, const struct answer *a, bool ok,
                    const char *bad)
{
	struct segment *l = s->n ? &s->v[s->n - 1] : NULL;
	bool same_name = l && ((!a->name && !l->first.name) ||
	                       (a->name && l->first.name && strcmp(a->name, l->first.name) == 0));
	if (l && !s->more && addr == l->end + 1 && same_name && ok == l->ok &&
	    (!a->name || a->offset == l->first.offset + (addr - l->start))) {
		l->end = addr;
		return;
	}
	if (s->n == DEMO_MAX_SEGMENTS) {
		s->more++;
		return;
	}
	s->v[s->n++] = (struct segment){addr, addr, *a, ok, bad};
}

static void seg_print(FILE *out, const struct segments *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct segment *g = &s->v[i];
		char what[64];
		if (g->first.name)
			snprintf(what, sizeof(what), "%s+0x%" PRIx64, g->first.name,
			         g->first.offset);
		else
			snprintf(what, sizeof(what), "nothing");
		fprintf(out, "        %-12s 0x%08" PRIx64 "-0x%08" PRIx64 " -> %-22s %s\n",
		        i ? "" : s->who, g->start, g->end, what, g->ok ? "ok" : g->bad);
	}
	if (s->more)
		fprintf(out, "        %-12s ... and more\n", "");
}

static void probe_bar(struct demo *d, struct runner *r, const struct world_bar *bars, size_t n,
                      const struct world_bar *b)
{
	const struct world *w = runner_world(r);
	struct segments bm = {.who = "busmap:"}, bh = {.who = "bhyve mem.c:"};
	uint64_t len = b->size < DEMO_MAX_BYTES ? b->size : DEMO_MAX_BYTES;
	for (uint64_t off = 0; off < len; off++) {
		uint64_t addr = b->addr + off;
		long want = runner_expected_bar(r, bars, n, b->io, addr);
		struct probe p;
		runner_probe(r, bars, n, b->io, addr, &p);
		bool got_bar = p.kind == PROBE_BAR && p.consistent;
		struct answer a = {got_bar ? p.bar : -1, got_bar ? bars[p.bar].name : NULL,
		                   p.offset};
		bool ok = got_bar && p.bar == want && p.offset == addr - bars[want].addr;
		if (!ok)
			d->misrouted++;
		seg_add(&bm, addr, &a, ok, "MISROUTED");
		const struct bhyve_range *x = bhyve_lookup(&d->bhyve, mmio_address(w, b->io, addr));
		struct answer c = {x ? 0 : -1, x ? x->name : NULL,
		                   x ? mmio_address(w, b->io, addr) - x->base : 0};
		bool cok = x && want >= 0 && strcmp(x->name, bars[want].name) == 0 &&
		           c.offset == addr - bars[want].addr;
		if (!cok)
			d->bhyve_wrong++;
		seg_add(&bh, addr, &c, cok,
		        d->bhyve.aborted ? "(the VM has aborted)"
		        : x              ? "WRONG DEVICE"
		                         : "LOST");
	}
	seg_print(d->out, &bm);
	seg_print(d->out, &bh);
}

/* "bar0" out of "00:02.0/bar0". */
static const char *bar_part(const char *name)
{
	const char *slash = strchr(name, '/');
	return slash ? slash + 1 : name;
}

static void show_accesses(struct demo *d, struct runner *r, const struct world_bar *bars, size_t n)
{
	char title[64];
	for (size_t i = 0; i < n; i++) {
		const struct world_bar *b = &bars[i];
		world_func_title(runner_world(r), b->func, title, sizeof(title));
		if (!b->mapped) {
			fprintf(d->out,
			        "    %s %s: not decoded (its register holds 0x%" PRIx64 ")\n",
			        title, bar_part(b->name), b->reg_addr);
			continue;
		}
		fprintf(d->out, "    accesses to %s %s at %s 0x%" PRIx64 "-0x%" PRIx64 ":\n", title,
		        bar_part(b->name), b->io ? "port" : "address", b->addr,
		        b->addr + b->size - 1);
		probe_bar(d, r, bars, n, b);
	}
}

static int step_end(void *arg, struct runner *r, const struct run_step_info *s)
{
	struct demo *d = arg;
	const struct world *w = runner_world(r);
	size_t before = d->misrouted;
	fprintf(d->out, "\nstep %zu (line %u): %s\n", s->index, s->line, s->label ? s->label : "");
	struct world_bar *bars;
	size_t n;
	if (world_bars(w, &bars, &n)) {
		d->err = -ENOMEM;
		return 1;
	}
	show_map(d, r, bars, n);
	show_conflicts(d, w, bars, n);
	show_accesses(d, r, bars, n);
	fputs("    bhyve's registry, for the same BAR moves:\n", d->out);
	if (!d->ncalls)
		fputs("        (no call)\n", d->out);
	for (size_t i = 0; i < d->ncalls; i++)
		fprintf(d->out, "        %s\n", d->calls[i]);
	d->ncalls = 0;
	if (d->o->map != MAP_NONE && map_print(d->out, w, d->o->map, s->index, s->line, s->label))
		d->err = -EIO;
	free(bars);
	d->step = s->index + 1;
	return d->misrouted != before || d->err;
}

static void summary(struct demo *d, const struct run_result *res)
{
	fputs("\n", d->out);
	if (!d->misrouted && !res->failures && !res->error)
		fprintf(d->out,
		        "busmap: every access reached the BAR the guest placed last, in "
		        "all %zu steps; %zu expectations held.\n",
		        res->steps, res->expectations);
	else
		fprintf(d->out, "busmap: %zu bytes misrouted, %zu expectations failed.\n",
		        d->misrouted, res->failures);
	if (d->abort_text[0])
		fprintf(d->out,
		        "bhyve's registry: %zu registration%s lost; the VM aborts at step %zu: "
		        "%s.\n",
		        d->bhyve.lost, d->bhyve.lost == 1 ? "" : "s", d->abort_step, d->abort_text);
	else
		fprintf(d->out, "bhyve's registry: %zu registration%s lost, %zu bytes misrouted.\n",
		        d->bhyve.lost, d->bhyve.lost == 1 ? "" : "s", d->bhyve_wrong);
}

int demo_run(const struct demo_options *o)
{
	struct scn_script s;
	struct lex_error e = {0};
	int r = scn_parse_string("seed-uboot.bm", demo_scenario, demo_scenario_len, &s, &e);
	if (r) {
		fprintf(o->err, "seed-uboot.bm:%u:%u: error: %s\n", e.line, e.col, e.msg);
		return 2;
	}
	struct demo d = {.o = o, .out = o->out ? o->out : stdout};
	fputs("busmap demo: the seed scenario (examples/seed-uboot.bm).\n"
	      "bhyve places virtio-blk's and virtio-net's I/O BARs, u-boot moves net onto blk and\n"
	      "blk away, then the OS reprograms net. After each step: busmap's map, its overlaps,\n"
	      "where every byte of each BAR goes, and what bhyve's registry did with the same "
	      "moves.\n",
	      d.out);
	struct run_options ro = {
	    .verbose = o->verbose,
	    .map = MAP_NONE,
	    .out = d.out,
	    .err = o->err,
	    .history = o->history,
	    .hooks = {.map_event = on_map, .step_end = step_end, .arg = &d},
	};
	struct run_result res;
	r = runner_run(&s, &ro, &res);
	scn_script_free(&s);
	if (!r && d.err)
		r = d.err;
	if (r) {
		fprintf(o->err, "busmap demo: %s\n", strerror(-r));
		bhyve_model_free(&d.bhyve);
		return 2;
	}
	summary(&d, &res);
	bhyve_model_free(&d.bhyve);
	if (res.error)
		return 2;
	return d.misrouted || res.failures ? 1 : 0;
}
