/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-bench: busmap's dispatch and map changes against a bhyve-style baseline, in one run.
 *
 *   busmap-bench [--quick] [--json] [--instr=auto|perf|callgrind|none] [-v]
 *
 * Timings are the best of a few rounds, each round running every implementation once.
 * Instruction counts come from the hardware counter when perf_event_open works, otherwise
 * from callgrind: the runner re-runs itself as "valgrind --tool=callgrind ... busmap-bench
 * --count-mode", where the same loops (same maps, same address tables) run once each
 * between client requests that dump a count labelled "case|implementation|regions|ops",
 * and reads the dumps back (see callgrind_run).
 */
#include "cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TABLE_SIZE  (1u << 16) /* addresses per table: 512 KiB, a power of two */
#define HOT_REGIONS 4096u      /* where hint, 2 threads and writer cases run */
#define MAX_RESULTS 64

static const unsigned random_sizes[] = {16, 256, 4096, 65536};
static const unsigned boot_sizes[] = {1000, 10000, 100000};
#define LAYOUT_SLOTS (100000 + 2) /* the largest map, and two spare slots */

struct params {
	uint64_t dispatch_ops;       /* per thread and round, at most */
	uint64_t dispatch_budget_ns; /* a round stops early past this (0: never) */
	unsigned dispatch_rounds;
	uint64_t move_ops; /* per round, at most */
	uint64_t move_budget_ns;
	unsigned move_rounds;
	unsigned boot_rounds;
	uint64_t rcu_ops;
	unsigned rcu_reps;
};

static const struct params params_full = {
    .dispatch_ops = 2000000,
    .dispatch_budget_ns = 2000000000,
    .dispatch_rounds = 7,
    .move_ops = 20000,
    .move_budget_ns = 1000000000,
    .move_rounds = 5,
    .boot_rounds = 3,
    .rcu_ops = 20000000,
    .rcu_reps = 7,
};
static const struct params params_quick = {
    .dispatch_ops = 250000,
    .dispatch_budget_ns = 200000000,
    .dispatch_rounds = 5,
    .move_ops = 2000,
    .move_budget_ns = 100000000,
    .move_rounds = 3,
    .boot_rounds = 1,
    .rcu_ops = 2000000,
    .rcu_reps = 5,
};
/* Under callgrind (--count-mode): one pass of each loop, small enough for valgrind. */
static const struct params params_count = {
    .dispatch_ops = 20000,
    .dispatch_rounds = 1,
    .move_ops = 200,
    .move_rounds = 1,
    .rcu_ops = 100000,
    .rcu_reps = 1,
};

struct result {
	const char *kase;
	const char *impl;
	unsigned regions, threads;
	double ns, instr;
	double bytes_per_region;    /* boot */
	double writer_moves_per_s;  /* random-writer */
	double call_ns, call_instr; /* rcu-read-section, through exported functions */
};

static struct result results[MAX_RESULTS];
static size_t nresults;
static struct bench_opts opts;
static const struct params *P;
static struct layout layout;
static uint64_t *table;

static const struct bench_impl *const impls[] = {&bench_busmap, &bench_busmap_qsbr, &bench_baseline,
                                                 &bench_bhyve_compat};

static void progress(const char *kase, const char *impl, unsigned regions)
{
	if (opts.verbose)
		fprintf(stderr, "busmap-bench: %s %s regions=%u\n", kase, impl, regions);
}

static struct result *find(const char *kase, const char *impl, unsigned regions, unsigned threads)
{
	for (size_t i = 0; i < nresults; i++) {
		struct result *r = &results[i];

		if (!strcmp(r->kase, kase) && !strcmp(r->impl, impl) && r->regions == regions &&
		    r->threads == threads)
			return r;
	}
	return NULL;
}

static struct result *record(const char *kase, const char *impl, unsigned regions, unsigned threads)
{
	struct result *r = find(kase, impl, regions, threads);

	if (r)
		return r;
	if (nresults == MAX_RESULTS)
		abort();
	r = &results[nresults++];
	*r = (struct result){kase, impl, regions, threads, NAN, NAN, NAN, NAN, NAN, NAN};
	return r;
}

static void fail(const char *what, const char *impl, unsigned regions)
{
	fprintf(stderr, "busmap-bench: %s failed for %s with %u regions\n", what, impl, regions);
}

static const char *label(char *buf, size_t len, const char *kase, const char *impl,
                         unsigned regions, uint64_t ops)
{
	snprintf(buf, len, "%s|%s|%u|%llu", kase, impl, regions, (unsigned long long)ops);
	return buf;
}

static struct meter meter_for(const char *kase, const char *impl, unsigned regions, uint64_t ops,
                              char *buf, size_t len)
{
	struct meter m = {opts.icount, NULL};

	if (opts.count_mode) {
		m.icount = ICOUNT_CALLGRIND;
		m.label = label(buf, len, kase, impl, regions, ops);
	} else if (m.icount == ICOUNT_CALLGRIND) {
		m.icount = ICOUNT_NONE; /* counted later, by the child */
	}
	return m;
}

/* ---- the cases ----
 *
 * Each case runs in rounds, and each round runs every implementation once, one after the
 * other, so that a disturbance of the machine falls on both rather than on one; the best
 * round of each is kept.
 */

#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

struct maps {
	void *map[NIMPLS];
	bool failed[NIMPLS]; /* a case that failed once is not retried in later rounds */
};

static unsigned rounds(unsigned wanted)
{
	return opts.count_mode ? 1 : wanted;
}

static void maps_build(struct maps *m, unsigned regions)
{
	for (size_t i = 0; i < NIMPLS; i++) {
		m->map[i] = map_build(impls[i], &layout, regions);
		if (!m->map[i])
			fail("building the map", impls[i]->name, regions);
	}
}

static void maps_destroy(struct maps *m)
{
	for (size_t i = 0; i < NIMPLS; i++) {
		if (m->map[i])
			impls[i]->destroy(m->map[i]);
		m->map[i] = NULL;
	}
}

static void maps_reset_failures(struct maps *m)
{
	for (size_t i = 0; i < NIMPLS; i++)
		m->failed[i] = !m->map[i];
}

static int dispatch_once(const struct bench_impl *impl, void *map, const char *kase,
                         unsigned regions, unsigned threads, bool writer)
{
	char buf[96];
	struct dispatch_spec s = {
	    .impl = impl,
	    .map = map,
	    .addrs = table,
	    .mask = TABLE_SIZE - 1,
	    .threads = threads,
	    .ops = P->dispatch_ops,
	    .budget_ns = P->dispatch_budget_ns,
	    .reps = 1,
	    .writer = writer,
	    .mover = regions,
	    .from = layout.bases[regions],
	    .to = layout.bases[regions + 1],
	};
	struct dispatch_result res;
	struct result *r;

	s.meter = meter_for(kase, impl->name, regions, s.ops, buf, sizeof(buf));
	if (run_dispatch(&s, &res)) {
		fail(res.err == -2 ? "reading the io callback's value" : kase, impl->name, regions);
		return -1;
	}
	if (opts.count_mode)
		return 0;
	r = record(kase, impl->name, regions, threads);
	r->ns = fmin(r->ns, res.ns_per_op);
	r->instr = fmin(r->instr, res.instr_per_op);
	r->writer_moves_per_s = fmax(r->writer_moves_per_s, res.writer_moves_per_s);
	return 0;
}

static void dispatch_case(struct maps *m, const char *kase, unsigned regions, unsigned threads,
                          bool writer)
{
	maps_reset_failures(m);
	for (size_t i = 0; i < NIMPLS; i++)
		progress(kase, impls[i]->name, regions);
	for (unsigned round = 0; round < rounds(P->dispatch_rounds); round++) {
		for (size_t i = 0; i < NIMPLS; i++) {
			if (!m->failed[i])
				m->failed[i] = dispatch_once(impls[i], m->map[i], kase, regions,
				                             threads, writer) != 0;
		}
	}
}

/* The writer moves one more region, which no reader touches. */
static void writer_case(struct maps *m)
{
	for (size_t i = 0; i < NIMPLS; i++) {
		if (m->map[i] && impls[i]->add(m->map[i], layout.bases[HOT_REGIONS])) {
			fail("adding the moving region", impls[i]->name, HOT_REGIONS);
			impls[i]->destroy(m->map[i]);
			m->map[i] = NULL;
		}
	}
	dispatch_case(m, "random-writer", HOT_REGIONS, 1, true);
}

static void random_cases(unsigned regions)
{
	struct maps m;

	maps_build(&m, regions);
	addrs_random(&layout, regions, table, TABLE_SIZE, regions);
	dispatch_case(&m, "random", regions, 1, false);
	if (regions == HOT_REGIONS) {
		addrs_region(layout.bases[0], table, TABLE_SIZE, 7);
		dispatch_case(&m, "hint", regions, 1, false);
		addrs_random(&layout, regions, table, TABLE_SIZE, regions);
		if (!opts.count_mode) {
			dispatch_case(&m, "random", regions, 2, false);
			writer_case(&m);
		}
	}
	maps_destroy(&m);
}

/* The caller's share: the same loop around a dispatch that does nothing. */
static void harness_case(void)
{
	void *map = bench_null.create();

	addrs_random(&layout, HOT_REGIONS, table, TABLE_SIZE, HOT_REGIONS);
	progress("harness", bench_null.name, HOT_REGIONS);
	for (unsigned round = 0; round < rounds(P->dispatch_rounds); round++) {
		if (dispatch_once(&bench_null, map, "harness", HOT_REGIONS, 1, false))
			break;
	}
	bench_null.destroy(map);
}

static int move_once(const struct bench_impl *impl, void *map, unsigned regions)
{
	char buf[96];
	struct move_spec s = {
	    .impl = impl,
	    .map = map,
	    .index = 0,
	    .from = layout.bases[0],
	    .to = layout.bases[regions],
	    .ops = P->move_ops,
	    .budget_ns = P->move_budget_ns,
	    .reps = 1,
	};
	struct op_result res;
	struct result *r;

	s.meter = meter_for("move", impl->name, regions, s.ops, buf, sizeof(buf));
	if (run_moves(&s, &res)) {
		fail("move", impl->name, regions);
		return -1;
	}
	if (opts.count_mode)
		return 0;
	r = record("move", impl->name, regions, 1);
	r->ns = fmin(r->ns, res.ns_per_op);
	r->instr = fmin(r->instr, res.instr_per_op);
	return 0;
}

static void move_case(unsigned regions)
{
	struct maps m;

	maps_build(&m, regions);
	maps_reset_failures(&m);
	for (size_t i = 0; i < NIMPLS; i++)
		progress("move", impls[i]->name, regions);
	for (unsigned round = 0; round < rounds(P->move_rounds); round++) {
		for (size_t i = 0; i < NIMPLS; i++) {
			if (!m.failed[i])
				m.failed[i] = move_once(impls[i], m.map[i], regions) != 0;
		}
	}
	maps_destroy(&m);
}

static int boot_once(const struct bench_impl *impl, unsigned regions)
{
	double ns, bytes;
	struct result *r;

	if (run_boot(impl, &layout, regions, 1, &ns, &bytes)) {
		fail("boot", impl->name, regions);
		return -1;
	}
	r = record("boot", impl->name, regions, 1);
	r->ns = fmin(r->ns, ns);
	r->bytes_per_region = bytes;
	return 0;
}

static void boot_case(unsigned regions)
{
	bool failed[NIMPLS] = {false};

	for (size_t i = 0; i < NIMPLS; i++)
		progress("boot", impls[i]->name, regions);
	for (unsigned round = 0; round < P->boot_rounds; round++) {
		for (size_t i = 0; i < NIMPLS; i++) {
			if (!failed[i])
				failed[i] = boot_once(impls[i], regions) != 0;
		}
	}
}

static void change_cases(unsigned regions)
{
	if (!opts.count_mode)
		boot_case(regions);
	move_case(regions);
}

static void rcu_cases(void)
{
	for (size_t i = 0; i < sizeof(rcu_flavours) / sizeof(rcu_flavours[0]); i++) {
		const struct rcu_flavour *f = &rcu_flavours[i];
		char buf[96], call[96];
		struct meter m =
		    meter_for("rcu-read-section", f->name, 0, P->rcu_ops, buf, sizeof(buf));
		char impl_call[32];
		struct rcu_result res;
		struct result *r;

		snprintf(impl_call, sizeof(impl_call), "%s:call", f->name);
		label(call, sizeof(call), "rcu-read-section", impl_call, 0, P->rcu_ops);
		progress("rcu-read-section", f->name, 0);
		if (run_rcu(f, P->rcu_ops, P->rcu_reps, m, call, &res) || opts.count_mode)
			continue;
		r = record("rcu-read-section", f->name, 0, 1);
		r->ns = res.ns_inline;
		r->instr = res.instr_inline;
		r->call_ns = res.ns_call;
		r->call_instr = res.instr_call;
	}
}

static void run_plan(void)
{
	for (size_t i = 0; i < sizeof(random_sizes) / sizeof(random_sizes[0]); i++)
		random_cases(random_sizes[i]);
	harness_case();
	for (size_t i = 0; i < sizeof(boot_sizes) / sizeof(boot_sizes[0]); i++)
		change_cases(boot_sizes[i]);
	rcu_cases();
}

/* ---- callgrind: run the child, read its dumps ---- */

/* Attaches one dump ("case|impl|regions|ops" and its instruction total). */
static void callgrind_attach(const char *lbl, double total)
{
	char kase[32], impl[32];
	unsigned regions;
	unsigned long long ops;
	struct result *r;
	char *call;

	if (sscanf(lbl, "%31[^|]|%31[^|]|%u|%llu", kase, impl, &regions, &ops) != 4 || !ops)
		return;
	call = strstr(impl, ":call");
	if (call)
		*call = '\0';
	for (size_t i = 0; i < nresults; i++) {
		r = &results[i];
		if (strcmp(r->kase, kase) || strcmp(r->impl, impl) || r->regions != regions ||
		    r->threads != 1)
			continue;
		if (call)
			r->call_instr = total / (double)ops;
		else
			r->instr = total / (double)ops;
	}
}

static void callgrind_run(void)
{
	const char *why = icount_cg_run("busmap-bench", false, callgrind_attach);

	if (why)
		opts.icount_note = why;
}

/* ---- output ---- */

static void print_num(double v, int width, int prec)
{
	if (isnan(v) || isinf(v))
		printf(" %*s", width, "n/a");
	else
		printf(" %*.*f", width, prec, v);
}

static bool same_key(const struct result *a, const struct result *b)
{
	return !strcmp(a->kase, b->kase) && a->regions == b->regions && a->threads == b->threads;
}

static bool tabled(const struct result *r)
{
	return strcmp(r->kase, "rcu-read-section") && strcmp(r->impl, "null");
}

/* One row per (case, regions, threads), every implementation side by side, then the
 * baseline's time over busmap's. */
static void print_row(const struct result *key)
{
	printf("%-14s %6u %3u |", key->kase, key->regions, key->threads);
	for (size_t i = 0; i < NIMPLS; i++) {
		const struct result *r =
		    find(key->kase, impls[i]->name, key->regions, key->threads);

		print_num(r ? r->ns : NAN, 9, 1);
		print_num(r ? r->instr : NAN, 6, 0);
		printf(" |");
	}
	const struct result *bm = find(key->kase, "busmap", key->regions, key->threads);
	const struct result *bl = find(key->kase, "baseline", key->regions, key->threads);
	double ratio = bm && bl ? bl->ns / bm->ns : NAN;
	print_num(ratio, 8, ratio < 0.1 ? 4 : 2);
	printf("x\n");
}

static void print_table(void)
{
	printf("%-14s %6s %3s |", "", "", "");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %-16s|", impls[i]->name);
	printf("\n%-14s %6s %3s |", "case", "regions", "thr");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %9s %6s |", "ns", "instr");
	printf(" %9s\n", "base/bm");
	for (size_t i = 0; i < nresults; i++) {
		bool seen = false;

		if (!tabled(&results[i]))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = tabled(&results[j]) && same_key(&results[j], &results[i]);
		if (!seen)
			print_row(&results[i]);
	}
}

/* The bhyve compatibility layer against the core API it is built on, case by case. */
static void print_compat(void)
{
	printf("\nbhyve-compat / busmap, per case (target <= 1.2):\n");
	printf("%-14s %6s %3s | %8s %8s\n", "case", "regions", "thr", "ns", "instr");
	for (size_t i = 0; i < nresults; i++) {
		const struct result *c = &results[i];
		const struct result *bm = find(c->kase, "busmap", c->regions, c->threads);

		if (strcmp(c->impl, "bhyve-compat") || !bm)
			continue;
		printf("%-14s %6u %3u |", c->kase, c->regions, c->threads);
		print_num(c->ns / bm->ns, 8, 2);
		print_num(c->instr / bm->instr, 8, 2);
		printf("\n");
	}
}

static void print_notes(void)
{
	const struct result *h = find("harness", "null", HOT_REGIONS, 1);

	printf("\nns and instructions are per operation: one 4-byte read (dispatch), one move,\n"
	       "or one add (boot; each add its own commit). random-writer: the reader's cost\n"
	       "while another thread moves a region in a loop.\n");
	if (h) {
		printf("Caller's loop around a null dispatch (included above):");
		print_num(h->ns, 0, 1);
		printf(" ns,");
		print_num(h->instr, 0, 0);
		printf(" instructions per op\n");
	}
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (!strcmp(r->kase, "boot"))
			printf("Memory per region, %s with %u regions: %.0f bytes\n", r->impl,
			       r->regions, r->bytes_per_region);
		if (!strcmp(r->kase, "random-writer"))
			printf("Writer beside the %s reader: %.0f moves/s\n", r->impl,
			       r->writer_moves_per_s);
	}
}

static void print_rcu(void)
{
	printf("\nRCU read-side section (empty lock + unlock, one registered thread):\n");
	printf("%-8s | %10s %7s | %10s %7s\n", "flavour", "inline ns", "instr", "call ns", "instr");
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (strcmp(r->kase, "rcu-read-section"))
			continue;
		printf("%-8s |", r->impl);
		print_num(r->ns, 10, 2);
		print_num(r->instr, 7, 1);
		printf(" |");
		print_num(r->call_ns, 10, 2);
		print_num(r->call_instr, 7, 1);
		printf("\n");
	}
	printf("(inline: _LGPL_SOURCE fast path; call: the exported functions; both include\n"
	       " ~3 instructions of loop. qsbr's cost is in its quiescent states, not here.)\n");
}

static double value_of(const char *kase, const char *impl, unsigned regions, unsigned threads,
                       bool instr)
{
	const struct result *r = find(kase, impl, regions, threads);

	if (!r)
		return NAN;
	return instr ? r->instr : r->ns;
}

static void print_target(const char *what, const char *goal, double measured, bool met,
                         const char *extra)
{
	const char *verdict = isnan(measured) ? "n/a" : met ? "met" : "missed";

	printf("  %-44s %-7s", what, goal);
	print_num(measured, 9, 2);
	printf("  %-6s %s\n", verdict, extra);
}

/* The targets for one busmap flavour. Instruction counts are also given net of the caller's
 * loop around a null dispatch (which includes one call and a callback's worth of work). */
static void print_targets_of(const char *impl, double harness)
{
	double bm = value_of("random", impl, HOT_REGIONS, 1, false);
	double bl = value_of("random", "baseline", HOT_REGIONS, 1, false);
	double bmi = value_of("random", impl, HOT_REGIONS, 1, true);
	double bli = value_of("random", "baseline", HOT_REGIONS, 1, true);
	double hint = value_of("hint", impl, HOT_REGIONS, 1, true);
	double two = value_of("random", impl, HOT_REGIONS, 2, false);
	double wr = value_of("random-writer", impl, HOT_REGIONS, 1, false);
	double m1 = value_of("move", impl, boot_sizes[0], 1, false);
	double m100 = value_of("move", impl, boot_sizes[2], 1, false);
	char extra[96];

	printf("\ntargets (%s; reported, not enforced):\n", impl);
	print_target("random @4096: baseline ns / busmap ns", ">= 6", bl / bm, bl / bm >= 6, "");
	snprintf(extra, sizeof(extra), "(%.0f net of the loop; baseline %.0f, %.0f net)",
	         bmi - harness, bli, bli - harness);
	print_target("random @4096: instructions per dispatch", "<= 60", bmi, bmi <= 60, extra);
	snprintf(extra, sizeof(extra), "(%.0f net of the loop)", hint - harness);
	print_target("hint hit: instructions per dispatch", "<= 30", hint, hint <= 30, extra);
	print_target("2 threads: per-thread ns / 1 thread ns", "<= 1.2", two / bm, two / bm <= 1.2,
	             "");
	print_target("reader beside writer: ns / alone ns", "<= 1.5", wr / bm, wr / bm <= 1.5, "");
	print_target("move @100k ns / move @1k ns", "<= 10", m100 / m1, m100 / m1 <= 10, "");
}

static void print_targets(void)
{
	const struct result *h = find("harness", "null", HOT_REGIONS, 1);
	double harness = h ? h->instr : NAN;

	print_targets_of("busmap", harness);
	print_targets_of("busmap-qsbr", harness);
}

static void print_load(void)
{
	if (isnan(opts.load_at_start))
		return;
	printf("load average %.2f at start", opts.load_at_start);
	if (opts.load_at_start > 0.5)
		printf(" (other work skews timings, most of all with 2 threads; instruction "
		       "counts are unaffected)");
	printf("\n");
}

static void print_human(void)
{
	printf("busmap-bench%s: busmap vs a bhyve-style baseline (rwlock + red-black tree + "
	       "per-vCPU hint)\n",
	       opts.quick ? " --quick" : "");
	printf("%u CPUs; 4 KiB io regions at random 64 KiB slots of a 16 GiB window; best of "
	       "%u rounds\n",
	       bench_ncpus(), P->dispatch_rounds);
	print_load();
	if (opts.icount_note[0])
		printf("instructions: n/a (%s)\n\n", opts.icount_note);
	else
		printf("instructions: %s\n\n", bench_icount_method(&opts));
	print_table();
	print_compat();
	print_notes();
	print_rcu();
	print_targets();
}

static void json_num(const char *key, double v)
{
	if (!isnan(v) && !isinf(v))
		printf(", \"%s\": %.3f", key, v);
}

static void print_json(void)
{
	printf("[\n");
	for (size_t i = 0, n = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (!strcmp(r->impl, "null"))
			continue;
		printf("%s  {\"case\": \"%s\", \"implementation\": \"%s\", \"regions\": %u, "
		       "\"threads\": %u",
		       n++ ? ",\n" : "", r->kase, r->impl, r->regions, r->threads);
		json_num("ns_per_op", r->ns);
		json_num("instructions_per_op", r->instr);
		json_num("bytes_per_region", r->bytes_per_region);
		json_num("writer_moves_per_s", r->writer_moves_per_s);
		json_num("call_ns_per_op", r->call_ns);
		json_num("call_instructions_per_op", r->call_instr);
		printf("}");
	}
	printf("\n]\n");
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: busmap-bench [--quick] [--json] [--instr=auto|perf|callgrind|none] "
	           "[-v]\n"
	           "  --quick   every case, fewer iterations (about a minute)\n"
	           "  --json    one JSON object per measurement\n"
	           "  --instr   how to count instructions (auto: perf, else callgrind)\n"
	           "  -v        progress on stderr\n");
}

static int setup(void)
{
	table = malloc(TABLE_SIZE * sizeof(*table));
	if (!table || layout_init(&layout, LAYOUT_SLOTS, 0x5eed)) {
		fprintf(stderr, "busmap-bench: out of memory\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int status = bench_begin(&opts, argc, argv, "busmap-bench", usage);

	if (status >= 0)
		return status;
	P = opts.count_mode ? &params_count : opts.quick ? &params_quick : &params_full;
	if (setup())
		return 1;
	run_plan();
	if (!opts.count_mode && opts.icount == ICOUNT_CALLGRIND) {
		progress("callgrind", "all", 0);
		callgrind_run();
	}
	if (!opts.count_mode) {
		if (opts.json)
			print_json();
		else
			print_human();
	}
	free(table);
	layout_fini(&layout);
	return 0;
}
