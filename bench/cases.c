/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Measurement primitives of busmap-bench (see cases.h).
 */
#include "cases.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64*: cheap, and good enough to scatter regions and addresses. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rng_seed(uint64_t seed)
{
	return seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* The first n entries of a random permutation of the slots (partial Fisher-Yates). */
int layout_init(struct layout *l, size_t n, uint64_t seed)
{
	uint32_t *slots;
	uint64_t state = rng_seed(seed);

	l->bases = NULL;
	l->n = 0;
	if (n > BENCH_SLOTS)
		return -1;
	slots = malloc(BENCH_SLOTS * sizeof(*slots));
	l->bases = malloc(n * sizeof(*l->bases));
	if (!slots || !l->bases) {
		free(slots);
		free(l->bases);
		l->bases = NULL;
		return -1;
	}
	for (uint32_t i = 0; i < BENCH_SLOTS; i++)
		slots[i] = i;
	for (size_t i = 0; i < n; i++) {
		size_t j = i + rng_next(&state) % (BENCH_SLOTS - i);
		uint32_t slot = slots[j];

		slots[j] = slots[i];
		slots[i] = slot;
		l->bases[i] = (uint64_t)slot << BENCH_SLOT_SHIFT;
	}
	free(slots);
	l->n = n;
	return 0;
}

void layout_fini(struct layout *l)
{
	free(l->bases);
	l->bases = NULL;
	l->n = 0;
}

static uint64_t random_offset(uint64_t *state)
{
	uint64_t units = BENCH_REGION_SIZE / BENCH_ACCESS_SIZE;

	return (rng_next(state) >> 20) % units * BENCH_ACCESS_SIZE;
}

void addrs_random(const struct layout *l, size_t nregions, uint64_t *table, size_t count,
                  uint64_t seed)
{
	uint64_t state = rng_seed(seed);

	for (size_t i = 0; i < count; i++) {
		size_t region = rng_next(&state) % nregions;

		table[i] = l->bases[region] + random_offset(&state);
	}
}

void addrs_region(uint64_t base, uint64_t *table, size_t count, uint64_t seed)
{
	uint64_t state = rng_seed(seed);

	for (size_t i = 0; i < count; i++)
		table[i] = base + random_offset(&state);
}

void *map_build(const struct bench_impl *impl, const struct layout *l, size_t n)
{
	void *map = impl->create();

	if (!map)
		return NULL;
	if ((impl->reserve && impl->reserve(map, n)) || impl->add_many(map, l->bases, n)) {
		impl->destroy(map);
		return NULL;
	}
	return map;
}

/* ---- dispatch: reader threads, and the optional writer beside them ---- */

struct reader {
	const struct dispatch_spec *s;
	unsigned index;
	pthread_barrier_t *all;  /* readers and writer, once, at the start */
	pthread_barrier_t *reps; /* readers, before each repetition */
	double best_ns;
	double instr;
	uint64_t sink;
	int err;
};

struct writer {
	const struct dispatch_spec *s;
	pthread_barrier_t *all;
	atomic_bool stop;
	uint64_t moves;
	uint64_t ns;
	int err;
};

static uint64_t reader_start(const struct reader *r)
{
	return r->index * ((r->s->mask + 1) / r->s->threads);
}

#define READER_CHUNK 16384u

/* Runs the loop in chunks until ops are done or the budget is spent (a reader stalled by a
 * writer would otherwise take minutes); returns the elapsed time, *done the ops. */
static uint64_t reader_chunks(struct reader *r, void *vcpu, uint64_t *done)
{
	const struct dispatch_spec *s = r->s;
	uint64_t t0 = bench_now_ns(), start = reader_start(r), elapsed = 0;

	*done = 0;
	while (*done < s->ops) {
		uint64_t n = s->ops - *done < READER_CHUNK ? s->ops - *done : READER_CHUNK;

		r->sink += s->impl->run(vcpu, s->addrs, s->mask, start + *done, n);
		*done += n;
		elapsed = bench_now_ns() - t0;
		if (s->budget_ns && elapsed > s->budget_ns)
			break;
	}
	return elapsed;
}

/* One repetition of the loop, timed and, with perf, counted. */
static void reader_rep(struct reader *r, void *vcpu, int fd)
{
	uint64_t ns, done, instr = 0;

	if (fd >= 0)
		icount_perf_start(fd);
	ns = reader_chunks(r, vcpu, &done);
	if (fd >= 0)
		instr = icount_perf_stop(fd);
	if ((double)ns / (double)done < r->best_ns)
		r->best_ns = (double)ns / (double)done;
	if (fd >= 0 && (isnan(r->instr) || (double)instr / (double)done < r->instr))
		r->instr = (double)instr / (double)done;
}

/* Every reader reaches every barrier, even one whose context could not be made. */
static void reader_timed(struct reader *r, void *vcpu)
{
	const struct dispatch_spec *s = r->s;
	int fd = -1;

	if (s->meter.icount == ICOUNT_PERF && r->index == 0)
		fd = icount_perf_open();
	for (unsigned rep = 0; rep < s->reps; rep++) {
		pthread_barrier_wait(r->reps);
		if (vcpu)
			reader_rep(r, vcpu, fd);
	}
	icount_perf_close(fd);
}

static void reader_counted(struct reader *r, void *vcpu)
{
	const struct dispatch_spec *s = r->s;

	if (!vcpu)
		return;
	icount_cg_begin();
	r->sink += s->impl->run(vcpu, s->addrs, s->mask, reader_start(r), s->ops);
	icount_cg_end(s->meter.label);
}

/* Touches the table, the map and the hint, binds lazy symbols, and checks that every
 * access reached a region and read BENCH_VALUE. */
static int reader_warm_up(struct reader *r, void *vcpu)
{
	const struct dispatch_spec *s = r->s;
	uint64_t n = s->mask + 1;

	if (s->impl->run(vcpu, s->addrs, s->mask, reader_start(r), n) != n * BENCH_VALUE)
		return -2;
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const struct dispatch_spec *s = r->s;
	void *vcpu;

	bench_pin(r->index);
	vcpu = s->impl->vcpu_enter(s->map, r->index);
	if (vcpu)
		r->err = reader_warm_up(r, vcpu);
	else
		r->err = -1;
	pthread_barrier_wait(r->all);
	if (s->meter.icount == ICOUNT_CALLGRIND)
		reader_counted(r, vcpu);
	else
		reader_timed(r, vcpu);
	if (vcpu)
		s->impl->vcpu_leave(vcpu);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	const struct dispatch_spec *s = w->s;
	uint64_t at = s->from, other = s->to, t0;

	bench_pin(s->threads);
	pthread_barrier_wait(w->all);
	t0 = bench_now_ns();
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		uint64_t next = other;

		if (s->impl->move(s->map, s->mover, at, next)) {
			w->err = -1;
			break;
		}
		other = at;
		at = next;
		w->moves++;
	}
	w->ns = bench_now_ns() - t0;
	/* Leave the region where it started. */
	if (at != s->from && s->impl->move(s->map, s->mover, at, s->from))
		w->err = -1;
	return NULL;
}

static int barriers_init(pthread_barrier_t *all, pthread_barrier_t *reps,
                         const struct dispatch_spec *s)
{
	if (pthread_barrier_init(all, NULL, s->threads + (s->writer ? 1 : 0)))
		return -1;
	if (pthread_barrier_init(reps, NULL, s->threads)) {
		pthread_barrier_destroy(all);
		return -1;
	}
	return 0;
}

static void readers_init(struct reader *rd, const struct dispatch_spec *s, pthread_barrier_t *all,
                         pthread_barrier_t *reps)
{
	for (unsigned i = 0; i < s->threads; i++) {
		rd[i] = (struct reader){.s = s, .index = i, .all = all, .reps = reps};
		rd[i].best_ns = INFINITY;
		rd[i].instr = NAN;
	}
}

static void dispatch_collect(const struct dispatch_spec *s, const struct reader *rd,
                             const struct writer *w, struct dispatch_result *out)
{
	double sum = 0;

	out->err = 0;
	for (unsigned i = 0; i < s->threads; i++) {
		sum += rd[i].best_ns;
		if (rd[i].err)
			out->err = rd[i].err;
	}
	out->ns_per_op = sum / s->threads;
	out->instr_per_op = rd[0].instr;
	out->writer_moves_per_s = NAN;
	if (s->writer) {
		if (w->err)
			out->err = w->err;
		if (w->ns)
			out->writer_moves_per_s = (double)w->moves * 1e9 / (double)w->ns;
	}
}

/* Starts the readers (and the writer); returns how many readers started. */
static unsigned dispatch_start(struct reader *rd, pthread_t *tid, struct writer *w, pthread_t *wtid,
                               bool *writer_started)
{
	const struct dispatch_spec *s = rd[0].s;
	unsigned started = 0;

	*writer_started = false;
	if (s->writer) {
		if (pthread_create(wtid, NULL, writer_main, w))
			return 0;
		*writer_started = true;
	}
	while (started < s->threads &&
	       !pthread_create(&tid[started], NULL, reader_main, &rd[started]))
		started++;
	return started;
}

int run_dispatch(const struct dispatch_spec *s, struct dispatch_result *out)
{
	pthread_barrier_t all, reps;
	struct reader rd[BENCH_MAX_VCPUS];
	pthread_t tid[BENCH_MAX_VCPUS], wtid;
	struct writer w = {.s = s, .all = &all};
	unsigned started;
	bool writer_started;

	if (s->threads == 0 || s->threads > BENCH_MAX_VCPUS || barriers_init(&all, &reps, s))
		return -1;
	readers_init(rd, s, &all, &reps);
	atomic_init(&w.stop, false);
	started = dispatch_start(rd, tid, &w, &wtid, &writer_started);
	if (started < s->threads) { /* the barriers would never open */
		fprintf(stderr, "busmap-bench: cannot start threads\n");
		abort();
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	atomic_store(&w.stop, true);
	if (writer_started)
		pthread_join(wtid, NULL);
	pthread_barrier_destroy(&all);
	pthread_barrier_destroy(&reps);
	dispatch_collect(s, rd, &w, out);
	return out->err ? -1 : 0;
}

/* ---- moves ---- */

struct mover {
	const struct move_spec *s;
	uint64_t at, other;
};

static int mover_step(struct mover *m)
{
	uint64_t next = m->other;

	if (m->s->impl->move(m->s->map, m->s->index, m->at, next))
		return -1;
	m->other = m->at;
	m->at = next;
	return 0;
}

/* Moves until ops or the time budget runs out; returns the number done, or 0 on error. */
static uint64_t mover_rep(struct mover *m, uint64_t *ns)
{
	uint64_t t0 = bench_now_ns(), done = 0;

	while (done < m->s->ops) {
		if (mover_step(m))
			return 0;
		done++;
		if (done % 16 == 0 && bench_now_ns() - t0 > m->s->budget_ns)
			break;
	}
	*ns = bench_now_ns() - t0;
	return done;
}

static int moves_timed(struct mover *m, struct op_result *out)
{
	int fd = m->s->meter.icount == ICOUNT_PERF ? icount_perf_open() : -1;

	for (unsigned rep = 0; rep < m->s->reps; rep++) {
		uint64_t ns, done, instr = 0;

		if (fd >= 0)
			icount_perf_start(fd);
		done = mover_rep(m, &ns);
		if (fd >= 0)
			instr = icount_perf_stop(fd);
		if (!done)
			return -1;
		if ((double)ns / (double)done < out->ns_per_op)
			out->ns_per_op = (double)ns / (double)done;
		if (fd >= 0)
			out->instr_per_op = fmin((double)instr / (double)done, out->instr_per_op);
	}
	icount_perf_close(fd);
	return 0;
}

static int moves_counted(struct mover *m)
{
	int err = 0;

	icount_cg_begin();
	for (uint64_t i = 0; i < m->s->ops && !err; i++)
		err = mover_step(m);
	icount_cg_end(m->s->meter.label);
	return err;
}

int run_moves(const struct move_spec *s, struct op_result *out)
{
	struct mover m = {.s = s, .at = s->from, .other = s->to};
	int err;

	out->ns_per_op = INFINITY;
	out->instr_per_op = s->meter.icount == ICOUNT_PERF ? INFINITY : NAN;
	/* Warm-up: there and back. */
	if (mover_step(&m) || mover_step(&m))
		return -1;
	if (s->meter.icount == ICOUNT_CALLGRIND)
		err = moves_counted(&m);
	else
		err = moves_timed(&m, out);
	if (isinf(out->instr_per_op))
		out->instr_per_op = NAN;
	/* Put the region back for whoever uses the map next. */
	if (m.at != s->from && mover_step(&m))
		err = -1;
	return err;
}

/* ---- boot ---- */

static int boot_once(const struct bench_impl *impl, const struct layout *l, size_t n, uint64_t *ns,
                     size_t *bytes)
{
	void *map = impl->create();
	size_t before;
	int err = 0;

	if (!map || (impl->reserve && impl->reserve(map, n))) {
		if (map)
			impl->destroy(map);
		return -1;
	}
	before = bench_heap_bytes();
	*ns = bench_now_ns();
	for (size_t i = 0; i < n && !err; i++)
		err = impl->add(map, l->bases[i]);
	*ns = bench_now_ns() - *ns;
	impl->settle(map);
	*bytes = bench_heap_settled() - before;
	impl->destroy(map);
	return err ? -1 : 0;
}

int run_boot(const struct bench_impl *impl, const struct layout *l, size_t n, unsigned reps,
             double *ns_per_add, double *bytes_per_region)
{
	*ns_per_add = INFINITY;
	*bytes_per_region = NAN;
	if (n == 0 || n > l->n)
		return -1;
	for (unsigned rep = 0; rep < reps; rep++) {
		uint64_t ns;
		size_t bytes;

		if (boot_once(impl, l, n, &ns, &bytes))
			return -1;
		*ns_per_add = fmin(*ns_per_add, (double)ns / (double)n);
		*bytes_per_region = (double)bytes / (double)n;
	}
	return 0;
}

/* ---- RCU read-side sections ---- */

struct rcu_job {
	const struct rcu_flavour *f;
	uint64_t ops;
	unsigned reps;
	struct meter meter;
	const char *call_label;
	struct rcu_result *out;
};

static void rcu_time(void (*loop)(uint64_t), const struct rcu_job *j, double *ns, double *instr)
{
	int fd = j->meter.icount == ICOUNT_PERF ? icount_perf_open() : -1;

	*ns = INFINITY;
	*instr = NAN;
	for (unsigned rep = 0; rep < j->reps; rep++) {
		uint64_t t0, count = 0;

		if (fd >= 0)
			icount_perf_start(fd);
		t0 = bench_now_ns();
		loop(j->ops);
		t0 = bench_now_ns() - t0;
		if (fd >= 0)
			count = icount_perf_stop(fd);
		*ns = fmin(*ns, (double)t0 / (double)j->ops);
		if (fd >= 0)
			*instr =
			    fmin(isnan(*instr) ? INFINITY : *instr, (double)count / (double)j->ops);
	}
	icount_perf_close(fd);
}

static void rcu_count(void (*loop)(uint64_t), uint64_t ops, const char *label)
{
	icount_cg_begin();
	loop(ops);
	icount_cg_end(label);
}

static void *rcu_main(void *arg)
{
	struct rcu_job *j = arg;
	struct rcu_result *out = j->out;

	bench_pin(0);
	j->f->enter();
	j->f->sections_inline(1000);
	j->f->sections_call(1000);
	if (j->meter.icount == ICOUNT_CALLGRIND) {
		rcu_count(j->f->sections_inline, j->ops, j->meter.label);
		rcu_count(j->f->sections_call, j->ops, j->call_label);
	} else {
		rcu_time(j->f->sections_inline, j, &out->ns_inline, &out->instr_inline);
		rcu_time(j->f->sections_call, j, &out->ns_call, &out->instr_call);
	}
	j->f->leave();
	return NULL;
}

int run_rcu(const struct rcu_flavour *f, uint64_t ops, unsigned reps, struct meter meter,
            const char *call_label, struct rcu_result *out)
{
	struct rcu_job j = {f, ops, reps, meter, call_label, out};
	pthread_t tid;

	*out = (struct rcu_result){NAN, NAN, NAN, NAN};
	if (pthread_create(&tid, NULL, rcu_main, &j))
		return -1;
	pthread_join(tid, NULL);
	return 0;
}
