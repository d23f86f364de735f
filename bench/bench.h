/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared declarations of busmap-bench.
 *
 * Each implementation under test (busmap, the bhyve-style baseline, and a "null" dispatch
 * that measures the caller's own loop) is reached through struct bench_impl, one indirect
 * call per measured loop, never per access: the loop itself lives in the implementation's
 * file and calls its dispatch function directly.
 */
#ifndef BUSMAP_BENCH_BENCH_H
#define BUSMAP_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_REGION_SIZE 4096u
#define BENCH_SLOT_SHIFT  16         /* regions sit at 64 KiB-aligned slots */
#define BENCH_SLOTS       (1u << 18) /* ... of a 16 GiB window */
#define BENCH_MAX_VCPUS   16
#define BENCH_VALUE       0x5au /* what every io read returns */
#define BENCH_ACCESS_SIZE 4u

struct bench_impl {
	const char *name;
	/* An empty map; NULL on failure. */
	void *(*create)(void);
	void (*destroy)(void *map);
	/* Adds one 4 KiB region at base, published by its own commit; regions are numbered
	 * in the order they were added. */
	int (*add)(void *map, uint64_t base);
	/* Makes room for n regions in the caller-side bookkeeping (optional). */
	int (*reserve)(void *map, size_t n);
	/* Adds n regions in one commit where the implementation has transactions. */
	int (*add_many)(void *map, const uint64_t *bases, size_t n);
	/* Moves region index (now at from) to to, published by its own commit. */
	int (*move)(void *map, size_t index, uint64_t from, uint64_t to);
	/* Waits until memory retired by past changes has been freed. */
	void (*settle)(void *map);
	/* Per-thread dispatch context, created and freed on the dispatching thread. */
	void *(*vcpu_enter)(void *map, unsigned index);
	void (*vcpu_leave)(void *vcpu);
	/* ops reads of BENCH_ACCESS_SIZE bytes at addrs[(start + i) & mask]; returns the sum
	 * of values and return codes, so that nothing is optimised away. */
	uint64_t (*run)(void *vcpu, const uint64_t *addrs, uint64_t mask, uint64_t start,
	                uint64_t ops);
};

extern const struct bench_impl bench_busmap;
extern const struct bench_impl bench_busmap_qsbr;
extern const struct bench_impl bench_baseline;
extern const struct bench_impl bench_bhyve_compat;
extern const struct bench_impl bench_null;

/* The null implementation's dispatch (null_dispatch.c, its own file so that it is really
 * called): stores BENCH_VALUE and returns 0. */
int bench_null_dispatch(void *ctx, uint64_t addr, unsigned size, uint64_t *value);

/* Empty read-side critical sections of liburcu's flavours (rcu_flavours.c). */
struct rcu_flavour {
	const char *name;
	void (*enter)(void); /* registers the calling thread (bp registers itself) */
	void (*leave)(void);
	void (*sections_inline)(uint64_t n); /* n lock+unlock pairs, inlined fast path */
	void (*sections_call)(uint64_t n);   /* n pairs through the exported functions */
};
extern const struct rcu_flavour rcu_flavours[4];
/* The exported-function loops (rcu_calls.c). */
void rcu_calls_memb(uint64_t n);
void rcu_calls_mb(uint64_t n);
void rcu_calls_qsbr(uint64_t n);
void rcu_calls_bp(uint64_t n);

/* Instruction counting (icount.c). */
enum icount_mode {
	ICOUNT_NONE,
	ICOUNT_PERF,      /* perf_event_open on the measuring thread */
	ICOUNT_CALLGRIND, /* this process runs under callgrind in --count-mode */
};

/* What both runners take on the command line (options.c), and what they note about the run
 * before measuring. */
struct bench_opts {
	bool json, quick, verbose, count_mode;
	enum icount_mode icount;
	bool icount_auto;
	double load_at_start;    /* NAN when unknown, or in --count-mode */
	const char *icount_note; /* why instructions are not counted, or "" */
};
/* Everything both runners' mains do before measuring: --help, the arguments, the check
 * that --count-mode runs under callgrind, the load average and the instruction counter.
 * Returns -1 to go on, or the status main should exit with (usage printed as fits). */
int bench_begin(struct bench_opts *o, int argc, char **argv, const char *prog,
                void (*usage)(FILE *f));
/* How instructions are counted, for the report's header. */
const char *bench_icount_method(const struct bench_opts *o);
/* 0, or -1 for an unknown argument. */
int bench_parse_args(struct bench_opts *o, int argc, char **argv);
/* perf if the counter opens; else callgrind if it can be used; else none. Returns why
 * instructions will not be counted when the caller asked for a counter, or "". */
const char *bench_choose_icount(struct bench_opts *o);
/* -1 when the hardware counter cannot be opened. */
int icount_perf_open(void);
void icount_perf_start(int fd);
/* Instructions since icount_perf_start; closes nothing. */
uint64_t icount_perf_stop(int fd);
void icount_perf_close(int fd);
bool icount_callgrind_built(void);
bool icount_under_valgrind(void);
/* Zeroes the counters and starts collecting (callgrind). */
void icount_cg_begin(void);
/* Stops collecting and dumps the counts under label. */
void icount_cg_end(const char *label);
/* Re-runs this program as "valgrind --tool=callgrind ... <it> --count-mode" and hands each
 * dump's label and instruction total to attach: the instructions of every thread, or with
 * own_thread those of the thread that ran the count (the main thread). name names the
 * temporary directory (in /tmp) and the program's copy when one is needed. Returns NULL,
 * or why there are no counts. */
const char *icount_cg_run(const char *name, bool own_thread,
                          void (*attach)(const char *label, double total));

/* Utilities (util.c). Memory in use by malloc, in bytes (mallinfo2). */
size_t bench_heap_bytes(void);
/* The same, once it has stopped changing (memory freed asynchronously is back). */
size_t bench_heap_settled(void);
/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);
/* Pins the calling thread to the k-th CPU it may run on (modulo their number). */
void bench_pin(unsigned k);
unsigned bench_ncpus(void);

#endif
