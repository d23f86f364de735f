/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Concurrency tests: lock-free dispatch against a changing map.
 *
 * test_stress runs two vCPU threads dispatching at random addresses while a writer thread
 * moves, toggles, deletes, re-adds, destroys and recreates the io regions under them, and
 * checks the lifetime contract of region.h / system.h from inside the callbacks: once a
 * region has been removed (or disabled) and bm_synchronize has returned, none of its
 * callbacks may run until it is mapped again. Every value read must come from a region
 * that was, at some point, placed where the access landed. The vCPU threads also write a
 * "config register" whose callback moves a BAR, as a PCI configuration write does, so map
 * changes also come from inside dispatches, concurrently with the writer.
 *
 * test_callback_changes_map checks the same thing deterministically: a callback that
 * changes the map (with and without a transaction, deleting its own region, destroying
 * another) neither deadlocks nor leaves the next access with the old map; and a dispatch
 * on another thread is not blocked by an open transaction.
 *
 * Shared test state is C11 atomics only: CI runs this under -fsanitize=thread.
 * BUSMAP_STRESS_SECONDS=<s> changes the stress duration (default 2.5), BUSMAP_SEED the seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GRAN     0x100u   /* every base and size is a multiple: aligned accesses never split */
#define WIN      0x10000u /* the writer's devices live in [0, WIN) */
#define BAR_SIZE 0x1000u
#define CFG      (2 * WIN) /* config register: 8 bytes per vCPU thread */
#define SPAN     (2 * WIN)
#define NGRAN    (SPAN / GRAN)
#define NDEV     12
#define NREADERS 2
#define BAR_PRIO 5 /* above every device priority, though bars and devices never meet */

/* ------------------------------------------------------------------ shared state */

struct dev {
	uint32_t id;
	/* Set by the writer after bm_synchronize returned while the region was unmapped
	 * (deleted, destroyed or disabled); cleared before it is mapped again. A callback
	 * that finds it set ran after the contract says none can. */
	atomic_bool hidden;
	/* Every base the region was ever placed at, set before the change is published. */
	atomic_uint_least64_t bases[(NGRAN + 63) / 64];
	atomic_ulong calls;
	/* owned by the thread that changes this region (writer, or the bar's vCPU thread) */
	bm_region *r;
	uint64_t size, base;
	bool placed, enabled, pending;
};

struct reader {
	unsigned index;
	uint64_t rng;
	bm_vcpu *vcpu;
	/* what the callbacks of the current access saw: only this thread touches it */
	unsigned ncb;
	struct dev *cb_dev;
	uint64_t cb_off, cb_value;
	unsigned cb_size;
	int cfg_rc;
	uint64_t bar_base;
	/* totals, compared with bm_vcpu_stats */
	uint64_t accesses, unassigned, cfg_writes;
};

static struct {
	bool qsbr;
	bm_system *sys;
	bm_space *space;
	bm_region *cfg;
	struct dev devs[NDEV + NREADERS]; /* devices, then one bar per vCPU thread */
	struct reader readers[NREADERS];
	atomic_bool stop;
	atomic_ulong violations; /* callbacks of hidden regions */
	atomic_ulong bad;        /* any other wrong result */
	atomic_flag msg_taken;
	char msg[512];
	/* listener's copy of the view: only touched under the library's writer lock */
	struct bm_flat_range view[4 * (NDEV + NREADERS) + 8];
	size_t nview;
	unsigned long lcalls;
	bool lbad;
	unsigned long writer_ops, writer_syncs;
} S;

static uint64_t seed;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&S.bad, 1);
	if (atomic_flag_test_and_set(&S.msg_taken))
		return;
	va_start(ap, fmt);
	vsnprintf(S.msg, sizeof(S.msg), fmt, ap);
	va_end(ap);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd(s) % n;
}

static uint64_t ones(unsigned size)
{
	return size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
}

static uint64_t dev_value(const struct dev *d, uint64_t off, unsigned size)
{
	return ((uint64_t)d->id << 40 | off) * 0x9e3779b97f4a7c15u & ones(size);
}

static void mark_base(struct dev *d, uint64_t base)
{
	atomic_fetch_or(&d->bases[base / GRAN / 64], UINT64_C(1) << (base / GRAN % 64));
}

static bool was_base(struct dev *d, uint64_t base)
{
	return base % GRAN == 0 && base < SPAN &&
	       (atomic_load(&d->bases[base / GRAN / 64]) >> (base / GRAN % 64) & 1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ callbacks */

static void dev_hit(struct dev *d, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	struct reader *rd = bm_vcpu_user(vcpu);

	atomic_fetch_add_explicit(&d->calls, 1, memory_order_relaxed);
	if (atomic_load(&d->hidden))
		atomic_fetch_add(&S.violations, 1);
	if (!rd)
		return;
	rd->ncb++;
	rd->cb_dev = d;
	rd->cb_off = off;
	rd->cb_size = size;
	rd->cb_value = value;
}

static int dev_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	struct dev *d = opaque;

	*value = dev_value(d, off, size);
	dev_hit(d, vcpu, off, size, *value);
	return 0;
}

static int dev_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	dev_hit(opaque, vcpu, off, size, value);
	return 0;
}

static const struct bm_region_ops dev_ops = {
    .read = dev_read,
    .write = dev_write,
};

static uint64_t bar_area(unsigned i)
{
	return WIN + (uint64_t)i * (WIN / NREADERS);
}

/* A configuration write: the value picks where the thread's own BAR goes. Like a PCI
 * BAR update it changes the map from inside the dispatch, sometimes as one transaction
 * of several changes. */
static int cfg_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	struct reader *rd = bm_vcpu_user(vcpu);
	unsigned i = (unsigned)(off / 8);
	struct dev *bar = &S.devs[NDEV + i];
	uint64_t slots = (WIN / NREADERS - BAR_SIZE) / GRAN + 1;
	uint64_t base = bar_area(i) + value % slots * GRAN;
	int rc = 0;

	(void)opaque;
	if (size != 8 || off % 8 || !rd || rd->index != i) {
		report("cfg write of size %u at %#" PRIx64 " from the wrong thread", size, off);
		return 0;
	}
	mark_base(bar, base);
	if (value & 1) {
		rc = bm_begin(S.sys);
		if (!rc)
			rc = bm_region_set_priority(bar->r, BAR_PRIO + 1);
		if (!rc)
			rc = bm_region_move(bar->r, base);
		if (!rc)
			rc = bm_region_set_priority(bar->r, BAR_PRIO);
		int crc = bm_commit(S.sys);
		if (!rc)
			rc = crc;
	} else {
		rc = bm_region_move(bar->r, base);
	}
	/* memb: waiting for readers from inside a reader would never end. QSBR: the callback
	 * was reached directly, so liburcu waits with this thread offline. */
	int src = bm_synchronize(S.sys), want = S.qsbr ? 0 : -EDEADLK;
	if (src != want)
		report("bm_synchronize inside a dispatch returned %d, not %d", src, want);
	rd->cfg_rc = rc;
	rd->bar_base = base;
	bar->base = base;
	return 0;
}

static const struct bm_region_ops cfg_ops = {
    .write = cfg_write,
    .valid_sizes = BM_ACCESS_8,
};

/* Keeps a copy of the view from the events; runs under the writer lock on whichever
 * thread commits (the writer or a vCPU thread in cfg_write). */
static void stress_listener(void *arg, bm_space *space, const struct bm_flat_range *removed,
                            size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)arg;
	S.lcalls++;
	if (space != S.space)
		S.lbad = true;
	for (size_t i = 0; i < nremoved; i++) {
		size_t k = 0;
		while (k < S.nview &&
		       !(S.view[k].start == removed[i].start && S.view[k].last == removed[i].last &&
		         S.view[k].region == removed[i].region &&
		         S.view[k].offset == removed[i].offset &&
		         S.view[k].conflict == removed[i].conflict))
			k++;
		if (k == S.nview) {
			S.lbad = true;
			continue;
		}
		S.view[k] = S.view[--S.nview];
	}
	for (size_t i = 0; i < nadded; i++) {
		if (S.nview == sizeof(S.view) / sizeof(S.view[0])) {
			S.lbad = true;
			break;
		}
		S.view[S.nview++] = added[i];
	}
}

/* ------------------------------------------------------------------ vCPU threads */

static void check_access(struct reader *rd, uint64_t addr, unsigned size, bool write, int rc,
                         uint64_t value, uint64_t written)
{
	if (rc == BM_ACCESS_UNASSIGNED) {
		rd->unassigned++;
		if (rd->ncb)
			report("unassigned access at %#" PRIx64 " ran %u callbacks", addr, rd->ncb);
		if (!write && value != ones(size))
			report("unassigned read%u at %#" PRIx64 " gave %#" PRIx64, size, addr,
			       value);
		return;
	}
	if (rc != 0) {
		report("%s%u at %#" PRIx64 " returned %d", write ? "write" : "read", size, addr,
		       rc);
		return;
	}
	if (rd->ncb != 1) {
		report("%s%u at %#" PRIx64 " ran %u callbacks, not 1", write ? "write" : "read",
		       size, addr, rd->ncb);
		return;
	}
	struct dev *d = rd->cb_dev;
	if (rd->cb_size != size || rd->cb_off % size || addr < rd->cb_off ||
	    !was_base(d, addr - rd->cb_off))
		report("%s%u at %#" PRIx64 " reached dev %u at offset %#" PRIx64
		       " size %u: it was never placed at %#" PRIx64,
		       write ? "write" : "read", size, addr, d->id, rd->cb_off, rd->cb_size,
		       addr - rd->cb_off);
	else if (!write && value != rd->cb_value)
		report("read%u at %#" PRIx64 " gave %#" PRIx64 ", the callback returned %#" PRIx64,
		       size, addr, value, rd->cb_value);
	else if (write && rd->cb_value != written)
		report("write%u at %#" PRIx64 " of %#" PRIx64 " reached the callback as %#" PRIx64,
		       size, addr, written, rd->cb_value);
}

static void one_access(struct reader *rd)
{
	unsigned size = 1u << rnd_below(&rd->rng, 4);
	/* mostly where the writer's devices are; else anywhere, BARs included */
	uint64_t span = rnd_below(&rd->rng, 4) ? WIN : SPAN;
	uint64_t addr = rnd_below(&rd->rng, span) & ~(uint64_t)(size - 1);
	bool write = rnd(&rd->rng) & 1;
	uint64_t value = 0x5a5a5a5a5a5a5a5au, w = rnd(&rd->rng) & ones(size);
	int rc;

	rd->ncb = 0;
	rc = write ? bm_write(rd->vcpu, S.space, addr, size, w)
	           : bm_read(rd->vcpu, S.space, addr, size, &value);
	rd->accesses++;
	check_access(rd, addr, size, write, rc, value, w);
}

/* A config write moves this thread's BAR; the very next access must see it there. */
static void cfg_access(struct reader *rd)
{
	struct dev *bar = &S.devs[NDEV + rd->index];
	uint64_t value = 0;

	rd->ncb = 0;
	rd->cfg_rc = -1;
	int rc = bm_write(rd->vcpu, S.space, CFG + 8 * rd->index, 8, rnd(&rd->rng));
	rd->accesses++;
	rd->cfg_writes++;
	if (rc != 0 || rd->cfg_rc != 0) {
		report("config write returned %d, the map change in its callback %d", rc,
		       rd->cfg_rc);
		return;
	}
	uint64_t off = rnd_below(&rd->rng, BAR_SIZE);
	rd->ncb = 0;
	rc = bm_read(rd->vcpu, S.space, rd->bar_base + off, 1, &value);
	rd->accesses++;
	if (rc != 0 || rd->ncb != 1 || rd->cb_dev != bar || rd->cb_off != off)
		report("after moving bar %u to %#" PRIx64 ", a read at +%#" PRIx64
		       " returned %d with %u callbacks (dev %u, offset %#" PRIx64 ")",
		       rd->index, rd->bar_base, off, rc, rd->ncb, rd->ncb ? rd->cb_dev->id : 0,
		       rd->ncb ? rd->cb_off : 0);
	if (rc == BM_ACCESS_UNASSIGNED)
		rd->unassigned++;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct bm_vcpu_stats st;
	int rc;

	rc = bm_vcpu_new(S.sys, rd->index, rd, &rd->vcpu);
	if (rc) {
		report("bm_vcpu_new returned %d", rc);
		return NULL;
	}
	while (!atomic_load_explicit(&S.stop, memory_order_relaxed)) {
		for (int i = 0; i < 64; i++) {
			if (rnd_below(&rd->rng, 100) < 2)
				cfg_access(rd);
			else
				one_access(rd);
		}
		rc = bm_vcpu_quiescent(rd->vcpu);
		if (rc)
			report("bm_vcpu_quiescent returned %d", rc);
	}
	bm_vcpu_stats(rd->vcpu, &st);
	if (st.accesses != rd->accesses || st.unassigned != rd->unassigned || st.conflicts ||
	    st.hint_hits > st.accesses)
		report("vcpu %u stats: %" PRIu64 " accesses (%" PRIu64 " made), %" PRIu64
		       " unassigned (%" PRIu64 " seen), %" PRIu64 " conflicts",
		       rd->index, st.accesses, rd->accesses, st.unassigned, rd->unassigned,
		       st.conflicts);
	rc = bm_vcpu_free(rd->vcpu);
	if (rc)
		report("bm_vcpu_free returned %d", rc);
	return NULL;
}

/* ------------------------------------------------------------------ writer thread */

static uint64_t w_rng;

/* The region is about to become visible: clear the flag before the change publishes. */
static void unhide(struct dev *d)
{
	d->pending = false;
	atomic_store(&d->hidden, false);
}

/* After a synchronize, regions unmapped before it can no longer be called. */
static void writer_sync(void)
{
	int rc = bm_synchronize(S.sys);
	if (rc)
		report("bm_synchronize returned %d", rc);
	for (int i = 0; i < NDEV; i++) {
		struct dev *d = &S.devs[i];
		if (d->pending && !(d->placed && d->enabled))
			atomic_store(&d->hidden, true);
		d->pending = false;
	}
	S.writer_syncs++;
}

static uint64_t rand_base(const struct dev *d)
{
	return rnd_below(&w_rng, (WIN - d->size) / GRAN + 1) * GRAN;
}

static int rand_prio(void)
{
	return (int)rnd_below(&w_rng, 5) - 2;
}

static void place(struct dev *d)
{
	uint64_t base = rand_base(d);

	mark_base(d, base);
	if (d->enabled)
		unhide(d);
	int rc = bm_region_add(bm_space_root(S.space), d->r, base, rand_prio());
	if (rc)
		report("bm_region_add returned %d", rc);
	d->placed = true;
	d->base = base;
}

static void create(struct dev *d)
{
	char name[16];

	d->size = (1 + rnd_below(&w_rng, 0x40)) * GRAN;
	snprintf(name, sizeof(name), "dev%u", d->id);
	int rc = bm_region_new_io(S.sys, name, d->size, &dev_ops, d, &d->r);
	if (rc) {
		report("bm_region_new_io returned %d", rc);
		abort();
	}
	d->enabled = true;
	d->placed = false;
}

static void writer_op(void)
{
	struct dev *d = &S.devs[rnd_below(&w_rng, NDEV)];
	bool was_visible = d->r && d->placed && d->enabled;
	int rc = 0;

	switch (rnd_below(&w_rng, 7)) {
	case 0:
	case 1:
		if (!d->r || !d->placed)
			break;
		d->base = rand_base(d);
		mark_base(d, d->base);
		rc = bm_region_move(d->r, d->base);
		break;
	case 2:
		if (!d->r)
			break;
		if (!d->enabled && d->placed)
			unhide(d);
		d->enabled = !d->enabled;
		rc = bm_region_set_enabled(d->r, d->enabled);
		break;
	case 3:
		if (!d->r)
			break;
		if (d->placed) {
			rc = bm_region_del(d->r);
			d->placed = false;
		} else {
			place(d);
		}
		break;
	case 4:
		if (d->r) {
			rc = bm_region_destroy(d->r);
			d->r = NULL;
			d->placed = false;
		} else {
			create(d);
			place(d);
		}
		break;
	case 5:
		if (d->r)
			rc = bm_region_set_priority(d->r, rand_prio());
		break;
	default:
		if (d->r) {
			/* keep it inside the window: a device never reaches the BARs */
			uint64_t size = (1 + rnd_below(&w_rng, 0x40)) * GRAN;
			if (!d->placed || d->base + size <= WIN) {
				rc = bm_region_resize(d->r, size);
				if (!rc)
					d->size = size;
			}
		}
		break;
	}
	if (rc)
		report("writer operation on dev %u returned %d", d->id, rc);
	if (was_visible && !(d->r && d->placed && d->enabled))
		d->pending = true;
	S.writer_ops++;
}

static void *writer_main(void *arg)
{
	double deadline = now() + *(double *)arg;

	while (now() < deadline) {
		bool tx = rnd_below(&w_rng, 100) < 25;
		if (tx && bm_begin(S.sys))
			report("bm_begin failed");
		int n = tx ? 1 + (int)rnd_below(&w_rng, 4) : 1;
		for (int i = 0; i < n; i++)
			writer_op();
		if (tx && bm_commit(S.sys))
			report("bm_commit failed");
		/* Sometimes several unmaps share one grace period: the flag must wait. */
		if (rnd_below(&w_rng, 100) < 40)
			writer_sync();
	}
	writer_sync();
	atomic_store(&S.stop, true);
	return NULL;
}

/* ------------------------------------------------------------------ stress test */

static int flat_collect(void *arg, const struct bm_flat_range *r)
{
	struct bm_flat_range **p = arg;
	*(*p)++ = *r;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct bm_flat_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static double env_double(const char *name, double dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtod(v, NULL) : dflt;
}

/* Joins t, or aborts with a message if it does not finish in time: a hang here is a
 * deadlock between dispatch, callbacks and writers, which must not stall CI silently. */
static void join_or_die(pthread_t t, double timeout, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)timeout;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
		fprintf(stderr, "deadlock: %s did not finish within %.0f s (seed %" PRIu64 ")\n",
		        what, timeout, seed);
		abort();
	}
}

static void stress(enum bm_rcu_flavour flavour)
{
	double secs = env_double("BUSMAP_STRESS_SECONDS", 2.5);
	pthread_t readers[NREADERS], writer;
	bm_listener *l;
	double t0 = now();

	memset(&S, 0, sizeof(S));
	atomic_flag_clear(&S.msg_taken);
	w_rng = seed;
	assert_int_equal(bm_system_new_flavour(flavour, &S.sys), 0);
	S.qsbr = flavour == BM_RCU_QSBR;
	assert_int_equal(bm_space_new(S.sys, "memory", "root", &S.space), 0);
	assert_int_equal(bm_listener_add(S.space, stress_listener, NULL, &l), 0);
	assert_int_equal(bm_region_new_io(S.sys, "cfg", 8 * NREADERS, &cfg_ops, NULL, &S.cfg), 0);
	assert_int_equal(bm_region_add(bm_space_root(S.space), S.cfg, CFG, 0), 0);
	for (unsigned i = 0; i < NDEV + NREADERS; i++) {
		struct dev *d = &S.devs[i];
		d->id = i + 1;
		if (i < NDEV) {
			create(d);
			place(d);
			continue;
		}
		d->size = BAR_SIZE;
		d->base = bar_area(i - NDEV);
		d->placed = d->enabled = true;
		mark_base(d, d->base);
		assert_int_equal(bm_region_new_io(S.sys, "bar", BAR_SIZE, &dev_ops, d, &d->r), 0);
		assert_int_equal(bm_region_add(bm_space_root(S.space), d->r, d->base, BAR_PRIO), 0);
	}
	for (unsigned i = 0; i < NREADERS; i++) {
		S.readers[i].index = i;
		S.readers[i].rng = seed + 1 + i;
		assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &S.readers[i]), 0);
	}
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &secs), 0);
	join_or_die(writer, secs + 60, "the writer thread");
	for (unsigned i = 0; i < NREADERS; i++)
		join_or_die(readers[i], 60, "a vCPU thread");

	uint64_t total = 0, cfgs = 0;
	for (unsigned i = 0; i < NREADERS; i++) {
		total += S.readers[i].accesses;
		cfgs += S.readers[i].cfg_writes;
	}
	unsigned long calls = 0;
	for (unsigned i = 0; i < NDEV + NREADERS; i++)
		calls += atomic_load(&S.devs[i].calls);
	fprintf(stderr,
	        "stress: seed %" PRIu64 ", %.2f s, %" PRIu64 " accesses (%" PRIu64
	        " config writes), %lu callbacks, %lu writer ops, %lu synchronizes, %lu listener "
	        "calls\n",
	        seed, now() - t0, total, cfgs, calls, S.writer_ops, S.writer_syncs, S.lcalls);
	if (atomic_load(&S.bad))
		fprintf(stderr, "first failure: %s\n", S.msg);
	assert_int_equal(atomic_load(&S.violations), 0);
	assert_int_equal(atomic_load(&S.bad), 0);

	/* the listener's copy, built on whichever threads committed, is the final view */
	struct bm_flat_range got[sizeof(S.view) / sizeof(S.view[0]) + 1], *p = got;
	bm_space_flat(S.space, flat_collect, &p);
	assert_false(S.lbad);
	assert_int_equal((size_t)(p - got), S.nview);
	qsort(S.view, S.nview, sizeof(S.view[0]), cmp_range);
	for (size_t i = 0; i < S.nview; i++) {
		assert_int_equal(S.view[i].start, got[i].start);
		assert_int_equal(S.view[i].last, got[i].last);
		assert_ptr_equal(S.view[i].region, got[i].region);
		assert_int_equal(S.view[i].offset, got[i].offset);
	}
	assert_int_equal(bm_listener_remove(l), 0);
	assert_int_equal(bm_system_free(S.sys), 0);
}

static void test_stress(void **state)
{
	(void)state;
	stress(BM_RCU_MEMB);
}

/* The same with QSBR: each vCPU reports a quiescent state between batches of accesses, as
 * a VMM would on its way back into the guest. */
static void test_stress_qsbr(void **state)
{
	(void)state;
	stress(BM_RCU_QSBR);
}

/* ------------------------------------------------------------------ callbacks change the map */

static struct {
	bm_system *sys;
	bm_space *space;
	bm_region *cfg, *bar, *victim;
	int rc[4], sync_rc;
	atomic_ulong lcalls;
	atomic_bool lforeign; /* a listener call came on another thread than the committer */
	pthread_t committer;  /* the thread dispatching in the single-threaded part */
	atomic_bool read_done;
	atomic_int thread_rc[3];
} C;

static int cfg2_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)opaque, (void)vcpu, (void)size;
	*value = 0xc0f1c0f100000000u | off;
	return 0;
}

/* Four registers: move the BAR; move it in a nested transaction; destroy the victim;
 * unmap the config region itself. */
static int cfg2_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	unsigned reg = (unsigned)(off / 8);

	(void)opaque, (void)vcpu, (void)size;
	switch (reg) {
	case 0:
		C.rc[0] = bm_region_move(C.bar, value);
		break;
	case 1:
		C.rc[1] = bm_begin(C.sys);
		if (!C.rc[1])
			C.rc[1] = bm_region_set_enabled(C.bar, false);
		if (!C.rc[1])
			C.rc[1] = bm_begin(C.sys);
		if (!C.rc[1])
			C.rc[1] = bm_region_move(C.bar, value);
		if (!C.rc[1])
			C.rc[1] = bm_commit(C.sys);
		if (!C.rc[1])
			C.rc[1] = bm_region_set_enabled(C.bar, true);
		if (!C.rc[1])
			C.rc[1] = bm_commit(C.sys);
		break;
	case 2:
		C.rc[2] = bm_region_destroy(C.victim);
		break;
	default:
		C.rc[3] = bm_region_del(C.cfg);
		break;
	}
	C.sync_rc = bm_synchronize(C.sys);
	return 0;
}

static const struct bm_region_ops cfg2_ops = {
    .read = cfg2_read,
    .write = cfg2_write,
    .valid_sizes = BM_ACCESS_8,
};

/* opaque is a tag below 0x100: a 2-byte read shows tag and offset */
static int bar_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	*value = ((uintptr_t)opaque << 8 | off) & ones(size);
	return 0;
}

static const struct bm_region_ops bar_ops = {.read = bar_read};

static void count_listener(void *arg, bm_space *space, const struct bm_flat_range *removed,
                           size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)arg, (void)space, (void)removed, (void)nremoved, (void)added, (void)nadded;
	/* listeners run on the committing thread: here, inside the dispatch */
	if (!pthread_equal(pthread_self(), C.committer))
		atomic_store(&C.lforeign, true);
	atomic_fetch_add(&C.lcalls, 1);
}

static void on_alarm(int sig)
{
	static const char msg[] = "deadlock: a dispatch whose callback changes the map did not "
	                          "return within 30 s\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Reads 2 bytes at addr: the tag and offset of what is there, or -1 for unassigned. */
static int64_t probe(bm_vcpu *vcpu, uint64_t addr)
{
	uint64_t v = 0;
	int rc = bm_read(vcpu, C.space, addr, 2, &v);
	if (rc == BM_ACCESS_UNASSIGNED && v == 0xffff)
		return -1;
	if (rc != 0)
		return -2;
	return (int64_t)v;
}

/* A second vCPU thread: its dispatch must not wait for the main thread's open
 * transaction, and its config write must wait for it, then apply. */
static void *tx_reader(void *arg)
{
	bm_vcpu *vcpu;
	uint64_t v = 0;

	(void)arg;
	if (bm_vcpu_new(C.sys, 1, NULL, &vcpu)) {
		atomic_store(&C.thread_rc[0], -1000);
		atomic_store(&C.read_done, true);
		return NULL;
	}
	atomic_store(&C.thread_rc[0], bm_read(vcpu, C.space, 0x6000, 2, &v));
	atomic_store(&C.thread_rc[1], (int)v);
	atomic_store(&C.read_done, true);
	atomic_store(&C.thread_rc[2], bm_write(vcpu, C.space, 0x0, 8, 0x8000));
	bm_vcpu_free(vcpu);
	return NULL;
}

static void test_callback_changes_map(void **state)
{
	bm_region *root;
	bm_vcpu *vcpu;
	bm_listener *l;
	pthread_t t;
	unsigned long calls;

	(void)state;
	memset(&C, 0, sizeof(C));
	signal(SIGALRM, on_alarm);
	alarm(30);
	assert_int_equal(bm_system_new(&C.sys), 0);
	assert_int_equal(bm_space_new(C.sys, "memory", "root", &C.space), 0);
	root = bm_space_root(C.space);
	assert_int_equal(bm_region_new_io(C.sys, "cfg", 0x20, &cfg2_ops, NULL, &C.cfg), 0);
	assert_int_equal(bm_region_new_io(C.sys, "bar", 0x100, &bar_ops, (void *)1, &C.bar), 0);
	assert_int_equal(bm_region_new_io(C.sys, "victim", 0x100, &bar_ops, (void *)2, &C.victim),
	                 0);
	assert_int_equal(bm_region_add(root, C.cfg, 0x0, 0), 0);
	assert_int_equal(bm_region_add(root, C.bar, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(root, C.victim, 0x3000, 0), 0);
	C.committer = pthread_self();
	assert_int_equal(bm_listener_add(C.space, count_listener, NULL, &l), 0);
	assert_int_equal(bm_vcpu_new(C.sys, 0, NULL, &vcpu), 0);
	assert_int_equal(probe(vcpu, 0x1000), 0x100);

	/* a plain move from the callback: published by the time the write returns */
	calls = atomic_load(&C.lcalls);
	assert_int_equal(bm_write(vcpu, C.space, 0x0, 8, 0x5000), 0);
	assert_int_equal(C.rc[0], 0);
	assert_int_equal(C.sync_rc, -EDEADLK);
	assert_true(atomic_load(&C.lcalls) > calls);
	assert_int_equal(probe(vcpu, 0x1000), -1);
	assert_int_equal(probe(vcpu, 0x5000), 0x100);
	assert_int_equal(probe(vcpu, 0x50fe), 0x1fe);

	/* nested transactions opened and closed inside the callback */
	calls = atomic_load(&C.lcalls);
	assert_int_equal(bm_write(vcpu, C.space, 0x8, 8, 0x6000), 0);
	assert_int_equal(C.rc[1], 0);
	assert_true(atomic_load(&C.lcalls) == calls + 1); /* one commit, one difference */
	assert_int_equal(probe(vcpu, 0x5000), -1);
	assert_int_equal(probe(vcpu, 0x6010), 0x110);

	/* destroying another region from inside a dispatch */
	assert_int_equal(probe(vcpu, 0x3000), 0x200);
	assert_int_equal(bm_write(vcpu, C.space, 0x10, 8, 0), 0);
	assert_int_equal(C.rc[2], 0);
	assert_int_equal(probe(vcpu, 0x3000), -1);

	/* a region unmapping itself from its own callback; then mapped again */
	assert_int_equal(bm_write(vcpu, C.space, 0x18, 8, 0), 0);
	assert_int_equal(C.rc[3], 0);
	assert_int_equal(bm_write(vcpu, C.space, 0x0, 8, 0x7000), BM_ACCESS_UNASSIGNED);
	assert_int_equal(probe(vcpu, 0x6000), 0x100); /* the write above reached nothing */
	assert_int_equal(bm_synchronize(C.sys), 0);
	assert_int_equal(bm_region_add(root, C.cfg, 0x0, 0), 0);
	assert_false(atomic_load(&C.lforeign));

	/* Another vCPU thread while this one holds a transaction: its read is not blocked
	 * and sees the published view (not the pending move); its config write waits for
	 * the commit and then applies on top of it. */
	assert_int_equal(bm_begin(C.sys), 0);
	assert_int_equal(bm_region_move(C.bar, 0x7000), 0);
	assert_int_equal(pthread_create(&t, NULL, tx_reader, NULL), 0);
	double deadline = now() + 10;
	while (!atomic_load(&C.read_done) && now() < deadline)
		usleep(1000);
	assert_true(atomic_load(&C.read_done)); /* else a dispatch waited for the writer lock */
	assert_int_equal(atomic_load(&C.thread_rc[0]), 0);
	assert_int_equal(atomic_load(&C.thread_rc[1]), 0x100);
	usleep(20000); /* let the config write reach the writer lock */
	assert_int_equal(bm_commit(C.sys), 0);
	join_or_die(t, 20, "a config write waiting for a transaction");
	assert_int_equal(atomic_load(&C.thread_rc[2]), 0);
	assert_int_equal(C.rc[0], 0);
	assert_int_equal(probe(vcpu, 0x7000), -1);
	assert_int_equal(probe(vcpu, 0x8000), 0x100);

	alarm(0);
	assert_int_equal(bm_vcpu_free(vcpu), 0);
	assert_int_equal(bm_listener_remove(l), 0);
	assert_int_equal(bm_system_free(C.sys), 0);
}

int main(void)
{
	const char *s = getenv("BUSMAP_SEED");
	seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	fprintf(stderr, "concurrency: seed %" PRIu64 "\n", seed);

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_callback_changes_map),
	    cmocka_unit_test(test_stress),
	    cmocka_unit_test(test_stress_qsbr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
