/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Measurement primitives of busmap-bench: the region layout, address tables, and the
 * timed (or counted) loops of each case. bench.c decides what to run and reports it.
 *
 * In timing runs a case is repeated and the best repetition is kept (the least disturbed
 * one on a shared machine). In callgrind runs (--count-mode) the same loop runs once
 * between icount_cg_begin and icount_cg_end, after a warm-up, and nothing is timed.
 */
#ifndef BUSMAP_BENCH_CASES_H
#define BUSMAP_BENCH_CASES_H

#include "bench.h"

/* bases[i] is the address of region i; the slots past the regions are spare places for
 * moves. The same layout serves both implementations. */
struct layout {
	uint64_t *bases;
	size_t n;
};

int layout_init(struct layout *l, size_t n, uint64_t seed);
void layout_fini(struct layout *l);

/* count (a power of two) aligned addresses spread over the first nregions regions, or
 * inside the single region at base. */
void addrs_random(const struct layout *l, size_t nregions, uint64_t *table, size_t count,
                  uint64_t seed);
void addrs_region(uint64_t base, uint64_t *table, size_t count, uint64_t seed);

/* A map with the first n regions of l, added in one commit; NULL on failure. */
void *map_build(const struct bench_impl *impl, const struct layout *l, size_t n);

struct meter {
	enum icount_mode icount;
	const char *label; /* callgrind dump label */
};

struct dispatch_spec {
	const struct bench_impl *impl;
	void *map;
	const uint64_t *addrs;
	uint64_t mask; /* table size - 1 */
	unsigned threads;
	uint64_t ops;       /* per thread and repetition, at most */
	uint64_t budget_ns; /* a repetition stops early past this time (0: never) */
	unsigned reps;
	/* When writer is set, one more thread moves region mover between from and to (back
	 * and forth, one commit each) for as long as the readers run. */
	bool writer;
	size_t mover;
	uint64_t from, to;
	struct meter meter;
};

struct dispatch_result {
	double ns_per_op;    /* per thread: the mean of the threads' best repetitions */
	double instr_per_op; /* thread 0, perf only; NAN otherwise */
	double writer_moves_per_s;
	int err;
};

int run_dispatch(const struct dispatch_spec *s, struct dispatch_result *out);

struct move_spec {
	const struct bench_impl *impl;
	void *map;
	size_t index;
	uint64_t from, to;
	uint64_t ops;       /* at most, per repetition */
	uint64_t budget_ns; /* a repetition stops early past this time */
	unsigned reps;
	struct meter meter;
};

struct op_result {
	double ns_per_op;
	double instr_per_op;
};

int run_moves(const struct move_spec *s, struct op_result *out);

/* Adds the first n regions of l to a new map one by one, each in its own commit; the best
 * of reps. bytes_per_region is the heap growth from the empty map to the settled full one,
 * divided by n. */
int run_boot(const struct bench_impl *impl, const struct layout *l, size_t n, unsigned reps,
             double *ns_per_add, double *bytes_per_region);

struct rcu_result {
	double ns_inline, ns_call;
	double instr_inline, instr_call; /* perf only; NAN otherwise */
};

/* Empty read-side sections of one flavour, on a fresh thread registered with it. Under
 * callgrind the inlined loop dumps as meter.label and the exported one as call_label. */
int run_rcu(const struct rcu_flavour *f, uint64_t ops, unsigned reps, struct meter meter,
            const char *call_label, struct rcu_result *out);

#endif
