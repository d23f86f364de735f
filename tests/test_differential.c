/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Differential test of the flat view.
 *
 * Random sequences of region operations are applied both to the library and to the small
 * reference model of tests/model, which the fuzz targets share. After every outermost
 * commit, each space's published view (bm_space_flat), dispatch (bm_read/bm_write through a
 * bm_vcpu) and listener events are compared with what the model computes by applying
 * space.h's rules directly to its own copy of the region tree. Every operation's return
 * code is compared with the one region.h documents for the model's state.
 *
 * The model is naive on purpose (linear scans, one recursive descent per address) so that
 * it shares neither code nor cleverness with the incremental renderer it checks.
 *
 * BUSMAP_SEED=<n> replays a run, BUSMAP_EPISODE=<k> replays only episode k of it, and
 * BUSMAP_TRACE=1 prints every operation (the last ones are printed on failure anyway).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/model.h"
#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXN            36 /* model slots, the two space roots included */
#define EPISODES        80
#define OPS             2000 /* per episode: EPISODES * OPS >= 100 000 */
#define EPISODE_TIMEOUT 60   /* seconds; an episode normally takes milliseconds */

/* ------------------------------------------------------------------ randomness, trace */

static uint64_t run_seed;
static uint64_t rng;

static uint64_t rnd(void)
{
	/* splitmix64: tiny, and good enough that consecutive seeds give unrelated runs */
	uint64_t z = (rng += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned pct)
{
	return rnd_below(100) < pct;
}

#define TRACE_LEN 96
static char trace_ring[TRACE_LEN][192];
static unsigned long trace_n;
static bool trace_all;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;
	char *slot = trace_ring[trace_n++ % TRACE_LEN];

	va_start(ap, fmt);
	vsnprintf(slot, sizeof(trace_ring[0]), fmt, ap);
	va_end(ap);
	if (trace_all)
		fprintf(stderr, "  %s\n", slot);
}

_Static_assert(MAXN <= MODEL_MAXN, "the model has fewer slots than the test uses");

/* ------------------------------------------------------------------ state */

struct lstate {
	bm_listener *l;
	int space;
	struct rvec copy; /* the view as rebuilt from the events alone */
	size_t nremoved, nadded;
	unsigned long calls;
	char bad[256]; /* first inconsistency seen inside a callback (cannot fail() there) */
};

struct logent {
	uintptr_t opaque;
	uint64_t offset;
	unsigned size;
	bool write;
	uint64_t value;
};

static struct {
	bm_system *sys;
	bm_space *space[2];
	bm_vcpu *vcpu;
	struct model M; /* slots 0 and 1 are the roots of space 0 and 1 */
	uint64_t W;     /* most offsets and sizes are below this, so overlaps are frequent */
	int prange;     /* priorities are drawn in [-prange, prange] */
	int depth;
	bool listener_ok; /* a listener call may happen now */
	bool in_teardown;
	struct lstate ls[2];
	struct rvec prev[2];      /* published view at the last check */
	struct u64vec prev_id[2]; /* per range of prev: io opaque, 0 for ram */
	uint64_t gen[2];
	unsigned long episode, op, ops_total, checks;
	uint64_t dispatched, unassigned;
	/* io callback log */
	struct logent log[16];
	unsigned nlog;
	char cb_bad[256];
} T;

static void fail_report(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fail_report(__FILE__, __LINE__, #cond, __VA_ARGS__);                       \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

/* ------------------------------------------------------------------ failure report */

static void dump_model(FILE *f)
{
	fprintf(f, "model (depth %d):\n", T.depth);
	model_dump(&T.M, f);
}

static void print_rvec(FILE *f, const char *title, const struct rvec *a)
{
	model_print_rvec(&T.M, f, title, a);
}

static const char *rname(const bm_region *r)
{
	return model_rname(&T.M, r);
}

static void fail_report(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s:%d: check failed: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr,
	        "\n  seed %" PRIu64 " episode %lu op %lu (replay: BUSMAP_SEED=%" PRIu64
	        " BUSMAP_EPISODE=%lu)\n",
	        run_seed, T.episode, T.op, run_seed, T.episode);
	fprintf(stderr, "last operations of the episode:\n");
	unsigned long first = trace_n > TRACE_LEN ? trace_n - TRACE_LEN : 0;
	for (unsigned long i = first; i < trace_n; i++)
		fprintf(stderr, "  %s\n", trace_ring[i % TRACE_LEN]);
	dump_model(stderr);
	for (int s = 0; s < 2; s++) {
		if (!T.space[s])
			continue;
		struct rvec want = {0};
		char title[64];
		model_build_kids(&T.M);
		model_view(&T.M, s, &want, NULL, NULL);
		snprintf(title, sizeof(title), "space %d, model", s);
		print_rvec(stderr, title, &want);
		free(want.v);
		snprintf(title, sizeof(title), "space %d, view at the last check", s);
		print_rvec(stderr, title, &T.prev[s]);
		if (T.ls[s].l) {
			snprintf(title, sizeof(title), "space %d, listener copy", s);
			print_rvec(stderr, title, &T.ls[s].copy);
		}
	}
}

/* ------------------------------------------------------------------ callbacks */

static void cb_bad(const char *what)
{
	if (!T.cb_bad[0])
		snprintf(T.cb_bad, sizeof(T.cb_bad), "op %lu: %s", T.op, what);
}

static void log_access(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, bool write,
                       uint64_t value)
{
	if (vcpu != T.vcpu)
		cb_bad("callback got another vcpu than the dispatching one");
	if (size != 1)
		cb_bad("io callback got a size outside impl_sizes (BM_ACCESS_1)");
	if (T.nlog == sizeof(T.log) / sizeof(T.log[0])) {
		cb_bad("more io callbacks than bytes accessed");
		return;
	}
	T.log[T.nlog++] = (struct logent){(uintptr_t)opaque, offset, size, write, value};
}

static int io_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	log_access(opaque, vcpu, offset, size, false, 0);
	*value = 0;
	for (unsigned i = 0; i < size && i < 8; i++)
		*value |= (uint64_t)model_io_byte((uintptr_t)opaque, offset + i) << (8 * i);
	return 0;
}

static int io_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	log_access(opaque, vcpu, offset, size, true, value);
	return 0;
}

/* impl_sizes 1: the core splits every access into bytes, so which byte went where is
 * fully determined by the flat view and can be checked byte by byte. */
static const struct bm_region_ops io_ops = {
    .read = io_read,
    .write = io_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1,
};

static void lbad(struct lstate *ls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lbad(struct lstate *ls, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (ls->bad[0])
		return;
	k = snprintf(ls->bad, sizeof(ls->bad), "op %lu: ", T.op);
	va_start(ap, fmt);
	vsnprintf(ls->bad + k, sizeof(ls->bad) - (size_t)k, fmt, ap);
	va_end(ap);
}

static void listener_fn(void *arg, bm_space *space, const struct bm_flat_range *removed,
                        size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	struct lstate *ls = arg;
	struct rvec *c = &ls->copy;

	ls->calls++;
	if (trace_all) {
		fprintf(stderr, "    listener space %d: %zu removed, %zu added\n", ls->space,
		        nremoved, nadded);
		for (size_t i = 0; i < nremoved; i++)
			fprintf(stderr, "      - [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "\n",
			        removed[i].start, removed[i].last, rname(removed[i].region),
			        removed[i].offset);
		for (size_t i = 0; i < nadded; i++)
			fprintf(stderr, "      + [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "\n",
			        added[i].start, added[i].last, rname(added[i].region),
			        added[i].offset);
	}
	if (space != T.space[ls->space])
		lbad(ls, "listener called with another space");
	if (!T.listener_ok)
		lbad(ls, "listener called outside an outermost commit or registration");
	if ((nremoved && !removed) || (nadded && !added)) {
		lbad(ls, "NULL event array with a nonzero count");
		return;
	}
	/* The documented contract forbids map changes from here; check it is enforced
	 * (the root is never the subject of an operation, so this cannot touch freed
	 * memory, and an accepted call would not change what the model predicts). */
	if (!T.in_teardown && ls->calls % 8 == 0) {
		bm_region *root = bm_space_root(T.space[0]);
		int rc = bm_region_set_priority(root, 0);
		if (rc != -EDEADLK)
			lbad(ls, "bm_region_set_priority from a listener returned %d, not -EDEADLK",
			     rc);
		rc = bm_synchronize(T.sys);
		if (rc != -EDEADLK)
			lbad(ls, "bm_synchronize from a listener returned %d, not -EDEADLK", rc);
	}
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "op %lu: ", T.op);
	model_listener_apply(&T.M, c, removed, nremoved, added, nadded, ls->bad, sizeof(ls->bad),
	                     prefix);
	ls->nremoved += nremoved;
	ls->nadded += nadded;
}

static int collect_fn(void *arg, const struct bm_flat_range *r)
{
	rvec_push(arg, r);
	return 0;
}

/* ------------------------------------------------------------------ checks */

/* Compares one access of `size` bytes at addr in space s with the model. */
static void check_read(int s, uint64_t addr, unsigned size)
{
	uint64_t value = 0x0123456789abcdefu, want = 0;
	unsigned want_cb = 0;
	int want_rc = 0;

	T.nlog = 0;
	int rc = bm_read(T.vcpu, T.space[s], addr, size, &value);
	T.dispatched++;
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = addr + i;
		int node;
		uint64_t off;
		uint8_t byte = 0xff;
		if (a >= addr && model_lookup(&T.M, s, a, &node, &off)) {
			const struct mnode *m = &T.M.m[node];
			if (m->kind == BM_REGION_IO) {
				byte = model_io_byte(m->id, off);
				/* the log is in no promised order: find this byte's call */
				bool found = false;
				for (unsigned k = 0; k < T.nlog && !found; k++)
					found = T.log[k].opaque == m->id &&
					        T.log[k].offset == off && !T.log[k].write;
				CHECK(found,
				      "space %d read%u at %#" PRIx64
				      ": no callback of %s at offset %#" PRIx64
				      " for byte %u (%u callbacks)",
				      s, size, addr, m->name, off, i, T.nlog);
				want_cb++;
			} else {
				byte = m->host[off];
			}
		} else {
			want_rc = BM_ACCESS_UNASSIGNED;
		}
		want |= (uint64_t)byte << (8 * i);
	}
	if (want_rc)
		T.unassigned++;
	CHECK(rc == want_rc, "space %d read%u at %#" PRIx64 " returned %d, model says %d", s, size,
	      addr, rc, want_rc);
	CHECK(value == want,
	      "space %d read%u at %#" PRIx64 " gave %#" PRIx64 ", model says %#" PRIx64, s, size,
	      addr, value, want);
	CHECK(T.nlog == want_cb, "space %d read%u at %#" PRIx64 ": %u callbacks, model says %u", s,
	      size, addr, T.nlog, want_cb);
	CHECK(!T.cb_bad[0], "%s", T.cb_bad);
}

/* A 1-byte write at addr in space s: it must reach exactly the model's region and offset. */
static void check_write(int s, uint64_t addr)
{
	int node;
	uint64_t off;
	uint8_t v = (uint8_t)rnd();
	bool hit = model_lookup(&T.M, s, addr, &node, &off);
	uint8_t saved = 0;

	if (hit && T.M.m[node].kind == BM_REGION_RAM)
		saved = T.M.m[node].host[off];
	T.nlog = 0;
	int rc = bm_write(T.vcpu, T.space[s], addr, 1, v);
	T.dispatched++;
	if (!hit) {
		T.unassigned++;
		CHECK(rc == BM_ACCESS_UNASSIGNED && T.nlog == 0,
		      "space %d write1 at %#" PRIx64 " (unassigned) returned %d with %u callbacks",
		      s, addr, rc, T.nlog);
		return;
	}
	const struct mnode *m = &T.M.m[node];
	CHECK(rc == 0, "space %d write1 at %#" PRIx64 " (%s+%#" PRIx64 ") returned %d", s, addr,
	      m->name, off, rc);
	if (m->kind == BM_REGION_IO) {
		CHECK(T.nlog == 1 && T.log[0].write && T.log[0].opaque == m->id &&
		          T.log[0].offset == off && T.log[0].value == v,
		      "space %d write1 %#x at %#" PRIx64 ": expected one write of %s at %#" PRIx64
		      ", got %u callbacks (first: opaque %#" PRIxPTR " offset %#" PRIx64 ")",
		      s, v, addr, m->name, off, T.nlog, T.nlog ? T.log[0].opaque : 0,
		      T.nlog ? T.log[0].offset : 0);
	} else {
		CHECK(T.nlog == 0 && m->host[off] == v,
		      "space %d write1 %#x at %#" PRIx64
		      " did not land in %s's host byte %#" PRIx64,
		      s, v, addr, m->name, off);
		m->host[off] = saved;
	}
	CHECK(!T.cb_bad[0], "%s", T.cb_bad);
}

static uint64_t rand_addr(void)
{
	switch (rnd_below(8)) {
	case 0:
		return UINT64_MAX - rnd_below(T.W);
	case 1:
		return rnd();
	default:
		return rnd_below(T.W + T.W / 2);
	}
}

static void check_space(int s)
{
	static struct rvec want, got;
	static struct u64vec ids;
	struct lstate *ls = &T.ls[s];

	model_view(&T.M, s, &want, &ids, NULL);
	got.n = 0;
	uint64_t gen = bm_space_flat(T.space[s], collect_fn, &got);

	/* the shape of the published view, before comparing it with the model */
	for (size_t i = 0; i < got.n; i++) {
		const struct bm_flat_range *r = &got.v[i];
		CHECK(r->start <= r->last && r->region != NULL && !r->conflict,
		      "space %d: bad range [%#" PRIx64 ", %#" PRIx64 "] %s conflict %d", s,
		      r->start, r->last, rname(r->region), r->conflict);
		CHECK(bm_region_kind(r->region) == BM_REGION_IO ||
		          bm_region_kind(r->region) == BM_REGION_RAM,
		      "space %d: range at %#" PRIx64 " names a non-terminal region %s", s, r->start,
		      rname(r->region));
		CHECK(model_last_rel(bm_region_size(r->region)) - r->offset >= r->last - r->start &&
		          r->offset <= model_last_rel(bm_region_size(r->region)),
		      "space %d: range [%#" PRIx64 ", %#" PRIx64 "] runs past the end of %s", s,
		      r->start, r->last, rname(r->region));
		if (i == 0)
			continue;
		const struct bm_flat_range *p = &got.v[i - 1];
		CHECK(p->last < r->start,
		      "space %d: ranges at %#" PRIx64 " and %#" PRIx64 " are unsorted or overlap",
		      s, p->start, r->start);
		CHECK(!(p->region == r->region && p->last + 1 == r->start &&
		        p->offset + (p->last - p->start) + 1 == r->offset),
		      "space %d: view not simplified: [%#" PRIx64 ", %#" PRIx64 "] and [%#" PRIx64
		      ", %#" PRIx64 "] are contiguous pieces of %s",
		      s, p->start, p->last, r->start, r->last, rname(r->region));
	}

	bool same = want.n == got.n;
	size_t bad = 0;
	for (size_t i = 0; same && i < want.n; i++)
		if (!range_eq(&want.v[i], &got.v[i])) {
			same = false;
			bad = i;
		}
	if (!same) {
		if (want.n != got.n) {
			bad = 0;
			while (bad < want.n && bad < got.n && range_eq(&want.v[bad], &got.v[bad]))
				bad++;
		}
		print_rvec(stderr, "library view", &got);
		CHECK(
		    same,
		    "space %d: published view differs from the model (%zu vs %zu ranges), first at "
		    "index %zu: library [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64
		    ", model [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64,
		    s, got.n, want.n, bad, bad < got.n ? got.v[bad].start : 0,
		    bad < got.n ? got.v[bad].last : 0, bad < got.n ? rname(got.v[bad].region) : "-",
		    bad < got.n ? got.v[bad].offset : 0, bad < want.n ? want.v[bad].start : 0,
		    bad < want.n ? want.v[bad].last : 0,
		    bad < want.n ? rname(want.v[bad].region) : "-",
		    bad < want.n ? want.v[bad].offset : 0);
	}

	/* generations: one per publication, so a changed view has a newer one */
	bool changed = got.n != T.prev[s].n;
	for (size_t i = 0; !changed && i < got.n; i++)
		changed = !range_eq(&got.v[i], &T.prev[s].v[i]);
	CHECK(gen >= T.gen[s] && (!changed || gen > T.gen[s]),
	      "space %d: generation went from %" PRIu64 " to %" PRIu64 " (view %s)", s, T.gen[s],
	      gen, changed ? "changed" : "unchanged");

	/* listeners: their copy must be the view, reached by exactly the difference */
	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	if (ls->l) {
		bool lsame = ls->copy.n == got.n;
		for (size_t i = 0; lsame && i < got.n; i++)
			lsame = range_eq(&ls->copy.v[i], &got.v[i]);
		if (!lsame)
			print_rvec(stderr, "listener copy", &ls->copy);
		CHECK(lsame,
		      "space %d: view rebuilt from listener events differs from bm_space_flat", s);
		size_t left = 0, came = 0;
		for (size_t i = 0; i < T.prev[s].n; i++)
			left += !rvec_has(&got, &T.prev[s].v[i]);
		for (size_t i = 0; i < got.n; i++)
			came += !rvec_has(&T.prev[s], &got.v[i]);
		CHECK(ls->nremoved == left && ls->nadded == came,
		      "space %d: listener saw %zu removed / %zu added, the difference is %zu / %zu",
		      s, ls->nremoved, ls->nadded, left, came);
	}
	ls->nremoved = ls->nadded = 0;

	/* point checks: both sides of every boundary, plus random addresses */
	for (size_t i = 0; i < want.n + 12; i++) {
		uint64_t pts[4];
		unsigned np = 0;
		if (i < want.n) {
			pts[np++] = want.v[i].start;
			pts[np++] = want.v[i].last;
			pts[np++] = want.v[i].start - 1;
			pts[np++] = want.v[i].last + 1;
		} else {
			pts[np++] = rand_addr();
		}
		for (unsigned k = 0; k < np; k++) {
			uint64_t a = pts[k];
			int node;
			uint64_t off;
			bool hit = model_lookup(&T.M, s, a, &node, &off);
			long j = rvec_find(&got, a);
			CHECK(hit == (j >= 0) &&
			          (!hit || (got.v[j].region == T.M.m[node].r &&
			                    got.v[j].offset + (a - got.v[j].start) == off)),
			      "space %d at %#" PRIx64 ": view has %s+%#" PRIx64
			      ", model %s+%#" PRIx64,
			      s, a, j >= 0 ? rname(got.v[j].region) : "(unassigned)",
			      j >= 0 ? got.v[j].offset + (a - got.v[j].start) : 0,
			      hit ? T.M.m[node].name : "(unassigned)", hit ? off : 0);
			check_read(s, a, 1);
		}
	}
	/* a few wider accesses, which the core splits across ranges */
	for (int i = 0; i < 2; i++) {
		uint64_t a = want.n && chance(70) ? want.v[rnd_below(want.n)].last - rnd_below(8)
		                                  : rand_addr();
		check_read(s, a, 1u << (1 + rnd_below(3)));
	}
	check_write(s, want.n && chance(70) ? want.v[rnd_below(want.n)].start : rand_addr());

	rvec_copy(&T.prev[s], &got);
	T.prev_id[s].n = 0;
	for (size_t i = 0; i < ids.n; i++)
		u64_push(&T.prev_id[s], ids.v[i]);
	T.gen[s] = gen;
}

static void check_all(void)
{
	T.checks++;
	model_build_kids(&T.M);
	for (int s = 0; s < 2; s++)
		if (T.space[s])
			check_space(s);
}

/* Inside a transaction nothing is published: the view and dispatch are still those of the
 * last check. */
static void check_unpublished(void)
{
	static struct rvec got;
	int s = (int)rnd_below(2);

	if (!T.space[s])
		return;
	got.n = 0;
	uint64_t gen = bm_space_flat(T.space[s], collect_fn, &got);
	bool same = got.n == T.prev[s].n && gen == T.gen[s];
	for (size_t i = 0; same && i < got.n; i++)
		same = range_eq(&got.v[i], &T.prev[s].v[i]);
	CHECK(same,
	      "space %d: view changed (gen %" PRIu64 " -> %" PRIu64 ") inside an open transaction",
	      s, T.gen[s], gen);
	uint64_t a = rand_addr(), value = 0;
	if (got.n && chance(60)) {
		const struct bm_flat_range *r = &got.v[rnd_below(got.n)];
		a = r->start + rnd_below(r->last - r->start + 1);
	}
	long j = rvec_find(&got, a);
	T.nlog = 0;
	int rc = bm_read(T.vcpu, T.space[s], a, 1, &value);
	T.dispatched++;
	T.unassigned += j < 0;
	CHECK(rc == (j < 0 ? BM_ACCESS_UNASSIGNED : 0),
	      "space %d: read at %#" PRIx64 " inside a transaction returned %d", s, a, rc);
	/* handles of regions destroyed in this transaction are dead: use what the model
	 * knew of the published ranges at the last check */
	uintptr_t id = j >= 0 ? T.prev_id[s].v[j] : 0;
	CHECK(j >= 0 || T.nlog == 0, "space %d: unassigned read at %#" PRIx64 " ran a callback", s,
	      a);
	if (id)
		CHECK(T.nlog == 1 && T.log[0].opaque == id &&
		          T.log[0].offset == got.v[j].offset + (a - got.v[j].start),
		      "space %d: read at %#" PRIx64
		      " inside a transaction did not use the published "
		      "view",
		      s, a);
}

/* ------------------------------------------------------------------ operations */

static int free_slot(void)
{
	for (int i = 2; i < T.M.maxn; i++)
		if (!T.M.m[i].live)
			return i;
	return -1;
}

/* A random live slot accepted by pred (roots excluded unless roots). */
static int pick(bool (*pred)(int), bool roots)
{
	int c[MAXN], n = 0;
	for (int i = roots ? 0 : 2; i < T.M.maxn; i++)
		if (T.M.m[i].live && (!pred || pred(i)))
			c[n++] = i;
	return n ? c[rnd_below((uint64_t)n)] : -1;
}

static bool p_container(int i)
{
	return model_is_container(&T.M, i);
}

static bool p_parentless(int i)
{
	return T.M.m[i].parent < 0;
}

static bool p_parented(int i)
{
	return T.M.m[i].parent >= 0;
}

static bool p_alias(int i)
{
	return T.M.m[i].kind == BM_REGION_ALIAS;
}

static uint64_t rand_size(void)
{
	unsigned p = (unsigned)rnd_below(100);
	if (p < 1)
		return BM_SIZE_ALL;
	if (p < 5)
		return 1;
	if (p < 60)
		return 1 + rnd_below(T.W / 8);
	return 1 + rnd_below(T.W);
}

/* An offset for a region of `size` bytes inside parent p: mostly small so that siblings
 * overlap, sometimes on another region's edge, sometimes jammed against 2^64. */
static uint64_t rand_offset(int p, uint64_t size)
{
	unsigned k = (unsigned)rnd_below(100);
	if (k < 6) {
		/* around the highest offset that fits: -ERANGE one byte later */
		return UINT64_MAX - model_last_rel(size) + rnd_below(5) - 2;
	}
	if (k < 20) {
		int o = pick(p_parented, false);
		if (o >= 0) {
			const struct mnode *m = &T.M.m[o];
			switch (rnd_below(3)) {
			case 0:
				return m->offset;
			case 1:
				return m->offset + m->size;
			default:
				return m->offset - size;
			}
		}
	}
	uint64_t ps = T.M.m[p].size;
	uint64_t lim = ps == BM_SIZE_ALL || ps > T.W ? T.W : ps + ps / 4 + 1;
	return rnd_below(lim);
}

static int rand_prio(void)
{
	return (int)rnd_below((uint64_t)(2 * T.prange + 1)) - T.prange;
}

/* Checks an operation's return code against the set the model allows. */
static void expect_rc(const char *what, int rc, uint64_t errs)
{
	bool ok = errs ? (rc < 0 && -rc < 64 && (errs & E_BIT(-rc))) : rc == 0;
	char want[96] = "";
	if (errs)
		for (int e = 1; e < 64; e++)
			if (errs & E_BIT(e))
				snprintf(want + strlen(want), sizeof(want) - strlen(want), " -%d",
				         e);
	CHECK(ok, "%s returned %d, model expects%s", what, rc, errs ? want : " 0");
	CHECK(!T.cb_bad[0], "%s", T.cb_bad);
}

/* After a successful change, the writer-side accessors must agree with the model. */
static void check_attrs(int n)
{
	const struct mnode *m = &T.M.m[n];
	bm_region *parent = m->parent >= 0 ? T.M.m[m->parent].r : NULL;

	CHECK(bm_region_size(m->r) == m->size && bm_region_parent(m->r) == parent &&
	          bm_region_enabled(m->r) == m->enabled && bm_region_kind(m->r) == m->kind,
	      "%s: accessors disagree with the model (size %#" PRIx64 " parent %s enabled %d)",
	      m->name, bm_region_size(m->r), rname(bm_region_parent(m->r)),
	      bm_region_enabled(m->r));
	if (n >= 2)
		CHECK(bm_region_priority(m->r) == m->priority, "%s: priority %d, model %d", m->name,
		      bm_region_priority(m->r), m->priority);
	if (m->parent >= 0)
		CHECK(bm_region_offset(m->r) == m->offset,
		      "%s: offset %#" PRIx64 ", model %#" PRIx64, m->name, bm_region_offset(m->r),
		      m->offset);
}

static void init_node(int n, enum bm_region_kind kind, uint64_t size)
{
	model_init_node(&T.M, n, kind, size);
}

/* Checks a creation's result and records the region in slot n. */
static void created(int n, const char *what, int rc, bm_region *r, uint64_t size)
{
	trace("%s = %d", what, rc);
	expect_rc(what, rc, size == 0 ? E_BIT(EINVAL) : 0);
	if (rc) {
		T.M.m[n].live = false;
		return;
	}
	CHECK(r != NULL, "%s succeeded without a region", what);
	T.M.m[n].r = r;
	check_attrs(n);
	if (T.M.m[n].kind == BM_REGION_IO)
		CHECK(bm_region_opaque(r) == (void *)T.M.m[n].id, "%s: opaque not kept", what);
	CHECK(strcmp(bm_region_name(r), T.M.m[n].name) == 0, "%s: name not kept", what);
}

/* Each do_* applies one operation with given arguments to the library and the model and
 * checks its result; the op_* functions draw the arguments. */
static int do_create(int n, enum bm_region_kind kind, uint64_t size)
{
	bm_region *r = NULL;
	char what[128];
	int rc;

	init_node(n, kind, size);
	struct mnode *m = &T.M.m[n];
	if (kind == BM_REGION_IO) {
		rc = bm_region_new_io(T.sys, m->name, size, &io_ops, (void *)m->id, &r);
	} else if (kind == BM_REGION_RAM) {
		/* the buffer covers any size the region may be given (see do_resize) */
		uint64_t cap = T.W + 8;
		if (m->host_cap < cap) {
			free(m->host);
			m->host = malloc(cap);
			if (!m->host)
				abort();
			m->host_cap = cap;
		}
		for (uint64_t i = 0; i < m->host_cap; i++)
			m->host[i] = model_ram_byte(m->id, i);
		rc = bm_region_new_ram(T.sys, m->name, size, m->host, &r);
	} else {
		rc = bm_region_new_container(T.sys, m->name, size, &r);
	}
	snprintf(what, sizeof(what), "new(%s, size %#" PRIx64 ")", m->name, size);
	created(n, what, rc, r, size);
	return rc ? -1 : n;
}

static int do_create_alias(int n, int t, uint64_t aoff, uint64_t size)
{
	bm_region *r = NULL;
	char what[128];

	init_node(n, BM_REGION_ALIAS, size);
	T.M.m[n].target = t;
	T.M.m[n].alias_offset = aoff;
	int rc = bm_region_new_alias(T.sys, T.M.m[n].name, T.M.m[t].r, aoff, size, &r);
	snprintf(what, sizeof(what), "new_alias(%s -> %s+%#" PRIx64 ", size %#" PRIx64 ")",
	         T.M.m[n].name, T.M.m[t].name, aoff, size);
	created(n, what, rc, r, size);
	return rc ? -1 : n;
}

static void op_create(void)
{
	int n = free_slot();
	uint64_t size = chance(3) ? 0 : rand_size();
	int kind = (int)rnd_below(10);

	if (n < 0)
		return;
	if (kind < 5) {
		do_create(n, BM_REGION_IO, size);
	} else if (kind < 6) {
		/* ram sizes stay below the buffer, which must cover the whole region */
		if (size == BM_SIZE_ALL || size > T.W + 8)
			size = 1 + rnd_below(T.W + 8);
		do_create(n, BM_REGION_RAM, size);
	} else if (kind < 8) {
		do_create(n, BM_REGION_CONTAINER, size);
	} else {
		int t = pick(NULL, chance(8));
		if (t < 0)
			return;
		const struct mnode *tm = &T.M.m[t];
		uint64_t aoff = tm->size == BM_SIZE_ALL || tm->size > T.W
		                    ? rnd_below(T.W)
		                    : rnd_below(tm->size + tm->size / 8 + 1);
		/* a window reaching past 2^64 in its target has no documented meaning */
		if (size && !model_fits(aoff, size))
			size = 1 + rnd_below(T.W);
		do_create_alias(n, t, aoff, size);
	}
}

static void do_add(int p, int c, uint64_t off, int prio)
{
	char what[160];
	uint64_t errs = model_add_errs(&T.M, p, c, off);

	snprintf(what, sizeof(what), "add(%s <- %s @%#" PRIx64 " prio %d)", T.M.m[p].name,
	         T.M.m[c].name, off, prio);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_add(T.M.m[p].r, T.M.m[c].r, off, prio);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_add(&T.M, p, c, off, prio);
		check_attrs(c);
	}
}

static void op_add(void)
{
	/* mostly well-formed, sometimes each documented error on purpose */
	int c = chance(88) ? pick(p_parentless, false) : pick(NULL, false);
	int p;
	unsigned k = (unsigned)rnd_below(100);

	if (c < 0)
		return;
	if (k < 45)
		p = 0;
	else if (k < 62)
		p = 1;
	else if (k < 95)
		p = pick(p_container, false);
	else
		p = pick(NULL, true); /* anything: -ENOTDIR, or -ELOOP through an alias */
	if (p < 0 || !T.M.m[p].live)
		p = 0;
	do_add(p, c, rand_offset(p, T.M.m[c].size), rand_prio());
}

static void do_del(int n)
{
	char what[64];

	snprintf(what, sizeof(what), "del(%s)", T.M.m[n].name);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_del(T.M.m[n].r);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, model_del_errs(&T.M, n));
	if (rc == 0) {
		model_del(&T.M, n);
		check_attrs(n);
	}
}

static void op_del(void)
{
	int n = chance(85) ? pick(p_parented, false) : pick(NULL, false);

	if (n >= 0)
		do_del(n);
}

static void do_move(int n, uint64_t off)
{
	struct mnode *m = &T.M.m[n];
	char what[96];
	uint64_t errs = model_move_errs(&T.M, n, off);

	snprintf(what, sizeof(what), "move(%s @%#" PRIx64 ")", m->name, off);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_move(m->r, off);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_move(&T.M, n, off);
		check_attrs(n);
	}
}

static void op_move(void)
{
	int n = chance(90) ? pick(p_parented, false) : pick(NULL, false);

	if (n < 0)
		return;
	const struct mnode *m = &T.M.m[n];
	/* the same offset still makes the region the newest of its priority */
	do_move(n, m->parent >= 0 && chance(25)
	               ? m->offset
	               : rand_offset(m->parent >= 0 ? m->parent : 0, m->size));
}

static void do_enable(int n, bool en)
{
	char what[64];

	snprintf(what, sizeof(what), "set_enabled(%s, %d)", T.M.m[n].name, en);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_set_enabled(T.M.m[n].r, en);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, 0);
	T.M.m[n].enabled = en;
	check_attrs(n);
}

static void op_enable(void)
{
	/* the roots too, rarely: a disabled root leaves its space empty */
	int n = pick(NULL, chance(3));

	if (n >= 0)
		do_enable(n, chance(30) ? T.M.m[n].enabled : !T.M.m[n].enabled);
}

static void do_priority(int n, int prio)
{
	char what[64];

	snprintf(what, sizeof(what), "set_priority(%s, %d)", T.M.m[n].name, prio);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_set_priority(T.M.m[n].r, prio);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, 0);
	T.M.m[n].priority = prio; /* not a move: the add-or-move order is kept */
	check_attrs(n);
}

static void op_priority(void)
{
	int n = pick(NULL, false);

	if (n >= 0)
		do_priority(n, chance(20) ? T.M.m[n].priority : rand_prio());
}

static void do_resize(int n, uint64_t size)
{
	struct mnode *m = &T.M.m[n];
	char what[96];
	uint64_t maybe;
	uint64_t errs = model_resize_errs(&T.M, n, size, &maybe);

	snprintf(what, sizeof(what), "resize(%s, %#" PRIx64 ")", m->name, size);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_resize(m->r, size);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	if (!(maybe && rc == -ERANGE))
		expect_rc(what, rc, errs);
	if (rc == 0) {
		m->size = size;
		check_attrs(n);
	}
}

static void op_resize(void)
{
	int n = pick(NULL, false);

	if (n < 0)
		return;
	const struct mnode *m = &T.M.m[n];
	uint64_t size = chance(3) ? 0 : rand_size();
	if (chance(10) && m->parent >= 0) /* aim at the last size that fits, or one more */
		size = UINT64_MAX - m->offset + rnd_below(2);
	if (m->kind == BM_REGION_RAM && size > m->host_cap)
		size = 1 + rnd_below(m->host_cap);
	if (m->kind == BM_REGION_ALIAS && size && !model_fits(m->alias_offset, size))
		size = 1 + rnd_below(T.W);
	do_resize(n, size);
}

static void do_alias_offset(int n, uint64_t aoff)
{
	struct mnode *m = &T.M.m[n];
	char what[96];

	snprintf(what, sizeof(what), "set_alias_offset(%s, %#" PRIx64 ")", m->name, aoff);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_set_alias_offset(m->r, aoff);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, model_alias_offset_errs(&T.M, n));
	if (rc == 0)
		m->alias_offset = aoff;
}

static void op_alias_offset(void)
{
	int n = chance(85) ? pick(p_alias, false) : pick(NULL, false);

	if (n < 0)
		return;
	const struct mnode *m = &T.M.m[n];
	uint64_t aoff = rnd_below(T.W);
	if (m->kind == BM_REGION_ALIAS) {
		uint64_t ts = T.M.m[m->target].size;
		if (ts != BM_SIZE_ALL && ts <= T.W)
			aoff = rnd_below(ts + ts / 8 + 1);
		if (!model_fits(aoff, m->size))
			aoff = 0;
	}
	do_alias_offset(n, aoff);
}

static void do_destroy(int n)
{
	struct mnode *m = &T.M.m[n];
	uint64_t errs = model_destroy_errs(&T.M, n);
	char what[64];

	snprintf(what, sizeof(what), "destroy(%s)", m->name);
	T.listener_ok = T.depth == 0;
	int rc = bm_region_destroy(m->r);
	T.listener_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0)
		model_destroy(&T.M, n);
}

static void op_destroy(void)
{
	int n = pick(NULL, false);

	if (n >= 0)
		do_destroy(n);
}

static void op_begin(void)
{
	int rc = bm_begin(T.sys);
	trace("begin = %d (depth %d)", rc, T.depth + 1);
	expect_rc("begin", rc, 0);
	T.depth++;
}

static void op_commit(void)
{
	T.listener_ok = T.depth <= 1;
	int rc = bm_commit(T.sys);
	T.listener_ok = false;
	trace("commit = %d (depth %d)", rc, T.depth);
	expect_rc("commit", rc, T.depth == 0 ? E_BIT(EPERM) : 0);
	if (T.depth > 0)
		T.depth--;
}

static void op_synchronize(void)
{
	int rc = bm_synchronize(T.sys);
	trace("synchronize = %d", rc);
	expect_rc("synchronize", rc, T.depth ? E_BIT(EDEADLK) : 0);
}

static void listener_register(int s)
{
	struct lstate *ls = &T.ls[s];

	ls->copy.n = 0;
	ls->space = s;
	ls->calls = 0;
	T.listener_ok = true;
	int rc = bm_listener_add(T.space[s], listener_fn, ls, &ls->l);
	T.listener_ok = false;
	trace("listener_add(space %d) = %d", s, rc);
	CHECK(rc == 0, "bm_listener_add returned %d", rc);
	/* registration reports the whole current view as added, nothing as removed */
	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	CHECK(ls->nremoved == 0 && ls->nadded == T.prev[s].n,
	      "space %d: registration reported %zu removed / %zu added, view has %zu ranges", s,
	      ls->nremoved, ls->nadded, T.prev[s].n);
	bool same = ls->copy.n == T.prev[s].n;
	for (size_t i = 0; same && i < ls->copy.n; i++)
		same = range_eq(&ls->copy.v[i], &T.prev[s].v[i]);
	CHECK(same, "space %d: registration did not report the current view", s);
	ls->nremoved = ls->nadded = 0;
}

static void op_relisten(void)
{
	int s = (int)rnd_below(2);

	if (T.depth || !T.space[s])
		return;
	if (T.ls[s].l) {
		int rc = bm_listener_remove(T.ls[s].l);
		trace("listener_remove(space %d) = %d", s, rc);
		CHECK(rc == 0, "bm_listener_remove returned %d", rc);
		T.ls[s].l = NULL;
		if (chance(30))
			return; /* stay without a listener for a while */
	}
	listener_register(s);
}

static void random_op(void)
{
	unsigned k = (unsigned)rnd_below(100);

	if (k < 14)
		op_create();
	else if (k < 32)
		op_add();
	else if (k < 40)
		op_del();
	else if (k < 52)
		op_move();
	else if (k < 60)
		op_enable();
	else if (k < 66)
		op_priority();
	else if (k < 72)
		op_resize();
	else if (k < 76)
		op_alias_offset();
	else if (k < 82)
		op_destroy();
	else if (k < 86) {
		if (T.depth < 4)
			op_begin();
	} else if (k < 96) {
		/* short transactions: most operations are then checked on their own */
		if (T.depth > 0 || chance(5))
			op_commit();
	} else if (k < 98)
		op_synchronize();
	else
		op_relisten();
}

/* ------------------------------------------------------------------ episodes */

static void episode_setup(void)
{
	static const uint64_t windows[] = {0x40, 0x400, 0x10000};
	static const int maxns[] = {8, 16, MAXN};

	T.W = windows[rnd_below(3)];
	T.M.maxn = maxns[rnd_below(3)];
	T.prange = (int)rnd_below(4);
	T.depth = 0;
	T.cb_bad[0] = 0;
	CHECK(bm_system_new(&T.sys) == 0, "bm_system_new failed");
	for (int s = 0; s < 2; s++) {
		char name[16];
		snprintf(name, sizeof(name), "root%d", s);
		CHECK(bm_space_new(T.sys, s ? "io" : "memory", name, &T.space[s]) == 0,
		      "bm_space_new failed");
		struct mnode *m = &T.M.m[s];
		model_init_root(&T.M, s, bm_space_root(T.space[s]), name);
		CHECK(m->r && bm_region_size(m->r) == BM_SIZE_ALL &&
		          bm_region_kind(m->r) == BM_REGION_CONTAINER,
		      "space root is not a 2^64-byte container");
		T.prev[s].n = 0;
		T.prev_id[s].n = 0;
		T.gen[s] = 0;
		memset(&T.ls[s].bad, 0, sizeof(T.ls[s].bad));
		T.ls[s].nremoved = T.ls[s].nadded = 0;
		T.ls[s].l = NULL;
	}
	for (int i = 2; i < MAXN; i++)
		T.M.m[i].live = false;
	CHECK(bm_vcpu_new(T.sys, 0, NULL, &T.vcpu) == 0, "bm_vcpu_new failed");
	for (int s = 0; s < 2; s++)
		if (chance(85))
			listener_register(s);
	check_all();
}

static void episode_teardown(void)
{
	while (T.depth > 0)
		op_commit();
	check_all();

	/* Freeing a space detaches what it held; the other space must not notice unless it
	 * showed the freed root through an alias, which the model then no longer has. */
	if (chance(30) && !model_targeted(&T.M, 1)) {
		if (T.ls[1].l && chance(50)) {
			CHECK(bm_listener_remove(T.ls[1].l) == 0, "bm_listener_remove failed");
			T.ls[1].l = NULL;
		}
		T.in_teardown = true;
		T.listener_ok = true;
		int rc = bm_space_free(T.space[1]);
		T.listener_ok = false;
		T.in_teardown = false;
		trace("space_free(space 1) = %d", rc);
		CHECK(rc == 0, "bm_space_free returned %d", rc);
		T.space[1] = NULL;
		T.ls[1].l = NULL;
		T.M.m[1].live = false;
		for (int i = 2; i < T.M.maxn; i++)
			if (T.M.m[i].live && T.M.m[i].parent == 1)
				T.M.m[i].parent = -1;
		check_all();
	}

	struct bm_vcpu_stats st;
	bm_vcpu_stats(T.vcpu, &st);
	CHECK(st.accesses == T.dispatched && st.unassigned == T.unassigned && st.conflicts == 0 &&
	          st.hint_hits <= st.accesses,
	      "vcpu stats: %" PRIu64 " accesses (%" PRIu64 " made), %" PRIu64
	      " unassigned (%" PRIu64 " expected), %" PRIu64 " conflicts",
	      st.accesses, T.dispatched, st.unassigned, T.unassigned, st.conflicts);
	CHECK(bm_vcpu_free(T.vcpu) == 0, "bm_vcpu_free failed");
	T.vcpu = NULL;
	T.dispatched = T.unassigned = 0;

	for (int s = 0; s < 2; s++)
		if (T.ls[s].l && chance(50)) {
			CHECK(bm_listener_remove(T.ls[s].l) == 0, "bm_listener_remove failed");
			T.ls[s].l = NULL;
		}
	/* some regions destroyed explicitly, the rest left to bm_system_free */
	T.in_teardown = true;
	for (int i = 2; i < T.M.maxn; i++)
		if (T.M.m[i].live && !model_targeted(&T.M, i) && chance(50)) {
			T.listener_ok = true;
			int rc = bm_region_destroy(T.M.m[i].r);
			T.listener_ok = false;
			CHECK(rc == 0, "destroy(%s) at teardown returned %d", T.M.m[i].name, rc);
			T.M.m[i].live = false;
			for (int j = 0; j < T.M.maxn; j++)
				if (T.M.m[j].live && T.M.m[j].parent == i)
					T.M.m[j].parent = -1;
		}
	T.listener_ok = true;
	int rc = bm_system_free(T.sys);
	T.listener_ok = false;
	T.in_teardown = false;
	CHECK(rc == 0, "bm_system_free returned %d", rc);
	T.sys = NULL;
	T.space[0] = T.space[1] = NULL;
	for (int i = 0; i < MAXN; i++)
		T.M.m[i].live = false;
}

/* A hang inside the library (a lock never released, a loop that never ends) would
 * otherwise stall CI until its timeout with nothing to go on: say where it happened. Not
 * async-signal-safe formatting, but the process is about to end anyway. */
static void on_alarm(int sig)
{
	char buf[256];
	int n;

	(void)sig;
	n = snprintf(buf, sizeof(buf),
	             "\ndifferential: episode %lu op %lu did not finish within %d s (seed %" PRIu64
	             ", BUSMAP_EPISODE=%lu); last operations:\n",
	             T.episode, T.op, EPISODE_TIMEOUT, run_seed, T.episode);
	if (write(2, buf, (size_t)n) < 0)
		_exit(2);
	unsigned long first = trace_n > TRACE_LEN ? trace_n - TRACE_LEN : 0;
	for (unsigned long i = first; i < trace_n; i++) {
		n = snprintf(buf, sizeof(buf), "  %s\n", trace_ring[i % TRACE_LEN]);
		if (write(2, buf, (size_t)n) < 0)
			break;
	}
	_exit(1);
}

static uint64_t env_u64(const char *name, uint64_t dflt, bool *set)
{
	const char *v = getenv(name);
	if (set)
		*set = v && *v;
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void test_random_differential(void **state)
{
	bool one = false;
	unsigned long only;
	struct timespec t0, t1;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_seed = env_u64("BUSMAP_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), NULL);
	only = (unsigned long)env_u64("BUSMAP_EPISODE", 0, &one);
	trace_all = env_u64("BUSMAP_TRACE", 0, NULL) != 0;
	fprintf(stderr, "differential: seed %" PRIu64 "\n", run_seed);
	signal(SIGALRM, on_alarm);

	for (unsigned long ep = one ? only : 0; ep < (one ? only + 1 : EPISODES); ep++) {
		T.episode = ep;
		T.op = 0;
		trace_n = 0;
		/* each episode has its own stream, so one can be replayed alone */
		rng = run_seed ^ (ep * 0xd1b54a32d192ed03u);
		rnd();
		alarm(EPISODE_TIMEOUT);
		episode_setup();
		for (unsigned long i = 0; i < OPS; i++) {
			T.op++;
			T.ops_total++;
			random_op();
			if (T.depth == 0)
				check_all();
			else if (chance(10))
				check_unpublished();
		}
		episode_teardown();
	}
	alarm(0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "differential: %lu operations, %lu checks in %.2f s\n", T.ops_total,
	        T.checks, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int i = 0; i < MAXN; i++) {
		free(T.M.m[i].host);
		T.M.m[i].host = NULL;
		T.M.m[i].host_cap = 0;
	}
	model_release(&T.M);
}

/* ------------------------------------------------------------------ documented errors */

static int count_fn(void *arg, const struct bm_flat_range *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static int stop_fn(void *arg, const struct bm_flat_range *r)
{
	(void)r;
	(*(int *)arg)++;
	return 1;
}

static void test_error_codes(void **state)
{
	bm_system *sys, *other;
	bm_space *sp;
	bm_region *root, *io, *io2, *c, *d, *a, *a2, *x = NULL, *foreign;
	bm_vcpu *vcpu;
	uint64_t v;
	int n;

	(void)state;
	assert_int_equal(bm_system_new(NULL), -EINVAL);
	assert_int_equal(bm_system_new(&sys), 0);
	assert_int_equal(bm_system_new(&other), 0);
	assert_int_equal(bm_space_new(NULL, "m", "r", &sp), -EINVAL);
	assert_int_equal(bm_space_new(sys, "m", "r", NULL), -EINVAL);
	assert_int_equal(bm_space_new(sys, "m", "r", &sp), 0);
	root = bm_space_root(sp);
	assert_non_null(root);

	/* creation: size 0, NULL system, NULL out, NULL target */
	assert_int_equal(bm_region_new_io(sys, "x", 0, &io_ops, NULL, &x), -EINVAL);
	assert_int_equal(bm_region_new_ram(sys, "x", 0, &v, &x), -EINVAL);
	assert_int_equal(bm_region_new_container(sys, "x", 0, &x), -EINVAL);
	assert_int_equal(bm_region_new_io(NULL, "x", 4, &io_ops, NULL, &x), -EINVAL);
	assert_int_equal(bm_region_new_io(sys, "x", 4, &io_ops, NULL, NULL), -EINVAL);
	assert_int_equal(bm_region_new_container(NULL, "x", 4, &x), -EINVAL);
	assert_int_equal(bm_region_new_alias(sys, "x", NULL, 0, 4, &x), -EINVAL);
	assert_null(x);

	assert_int_equal(bm_region_new_io(sys, "io", 0x100, &io_ops, (void *)1, &io), 0);
	assert_int_equal(bm_region_new_io(sys, "io2", 0x100, &io_ops, (void *)2, &io2), 0);
	assert_int_equal(bm_region_new_container(sys, "c", 0x1000, &c), 0);
	assert_int_equal(bm_region_new_container(sys, "d", 0x1000, &d), 0);
	assert_int_equal(bm_region_new_alias(sys, "x", io, 0, 0, &x), -EINVAL);
	assert_int_equal(bm_region_new_alias(sys, "a", c, 0, 0x1000, &a), 0);
	assert_int_equal(bm_region_new_alias(sys, "a2", a, 0, 0x800, &a2), 0);
	assert_int_equal(bm_region_new_io(other, "f", 0x10, &io_ops, NULL, &foreign), 0);
	assert_string_equal(bm_region_name(io), "io");
	assert_int_equal(bm_region_kind(a), BM_REGION_ALIAS);

	/* NULL arguments */
	assert_int_equal(bm_region_add(NULL, io, 0, 0), -EINVAL);
	assert_int_equal(bm_region_add(root, NULL, 0, 0), -EINVAL);
	assert_int_equal(bm_region_del(NULL), -EINVAL);
	assert_int_equal(bm_region_move(NULL, 0), -EINVAL);
	assert_int_equal(bm_region_set_enabled(NULL, true), -EINVAL);
	assert_int_equal(bm_region_set_priority(NULL, 1), -EINVAL);
	assert_int_equal(bm_region_resize(NULL, 1), -EINVAL);
	assert_int_equal(bm_region_set_alias_offset(NULL, 0), -EINVAL);
	assert_int_equal(bm_region_set_exclusive(NULL, true), -EINVAL);
	/* undocumented; free(NULL)-like 0 is as reasonable as -EINVAL */
	n = bm_region_destroy(NULL);
	assert_true(n == 0 || n == -EINVAL);
	assert_int_equal(bm_begin(NULL), -EINVAL);
	assert_int_equal(bm_commit(NULL), -EINVAL);
	assert_int_equal(bm_synchronize(NULL), -EINVAL);
	assert_int_equal(bm_listener_add(NULL, listener_fn, NULL, NULL), -EINVAL);
	assert_int_equal(bm_read(NULL, sp, 0, 1, &v), -EINVAL);
	assert_int_equal(bm_write(NULL, sp, 0, 1, 0), -EINVAL);
	assert_null(bm_region_name(NULL));
	assert_int_equal(bm_region_size(NULL), 0);
	assert_null(bm_region_parent(NULL));
	assert_false(bm_region_enabled(NULL));

	/* parent and loop errors */
	assert_int_equal(bm_region_add(root, c, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(c, d, 0x100, 0), 0);
	assert_int_equal(bm_region_add(root, c, 0x2000, 0), -EEXIST);
	assert_int_equal(bm_region_add(io, io2, 0, 0), -ENOTDIR);
	assert_int_equal(bm_region_del(io), -ENOENT);
	assert_int_equal(bm_region_move(io, 0), -ENOENT);
	assert_int_equal(bm_region_del(c), 0);
	assert_int_equal(bm_region_add(c, c, 0, 0), -ELOOP);
	assert_int_equal(bm_region_add(d, c, 0, 0), -ELOOP);  /* c into its own child */
	assert_int_equal(bm_region_add(c, a, 0, 0), -ELOOP);  /* alias of c into c */
	assert_int_equal(bm_region_add(d, a2, 0, 0), -ELOOP); /* via two aliases, one level down */
	assert_int_equal(bm_region_add(d, a, 0, 0), -ELOOP);
	assert_null(bm_region_parent(a));
	assert_null(bm_region_parent(a2));
	assert_int_equal(bm_region_add(root, c, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(root, foreign, 0, 0), -EXDEV);

	/* ranges against 2^64 */
	assert_int_equal(bm_region_add(root, io, UINT64_MAX - 0xfe, 0), -ERANGE);
	assert_null(bm_region_parent(io));
	assert_int_equal(bm_region_add(root, io, UINT64_MAX - 0xff, 0), 0);
	assert_int_equal(bm_region_move(io, UINT64_MAX - 0xfe), -ERANGE);
	assert_int_equal(bm_region_offset(io), UINT64_MAX - 0xff);
	assert_int_equal(bm_region_resize(io, 0x101), -ERANGE);
	assert_int_equal(bm_region_size(io), 0x100);
	assert_int_equal(bm_region_resize(io, 0), -EINVAL);
	assert_int_equal(bm_region_move(io, 0x8000), 0);
	assert_int_equal(bm_region_add(root, io2, 0x9000, 0), 0);
	assert_int_equal(bm_region_resize(io, BM_SIZE_ALL), -ERANGE);
	assert_int_equal(bm_region_resize(io, 0x100), 0);
	assert_int_equal(bm_region_set_alias_offset(io, 0), -EINVAL);
	assert_int_equal(bm_region_set_alias_offset(a, 0x10), 0);

	/* an alias keeps its target alive */
	assert_int_equal(bm_region_destroy(c), -EBUSY);
	assert_ptr_equal(bm_region_parent(c), root);
	assert_int_equal(bm_region_destroy(a), -EBUSY); /* a2 targets a */

	/* transactions and synchronisation */
	assert_int_equal(bm_commit(sys), -EPERM);
	assert_int_equal(bm_begin(sys), 0);
	assert_int_equal(bm_synchronize(sys), -EDEADLK);
	assert_int_equal(bm_commit(sys), 0);
	assert_int_equal(bm_synchronize(sys), 0);

	/* the flat walk stops when fn says so and reports the generation either way */
	n = 0;
	uint64_t g1 = bm_space_flat(sp, count_fn, &n);
	assert_int_equal(n, 2);
	n = 0;
	uint64_t g2 = bm_space_flat(sp, stop_fn, &n);
	assert_int_equal(n, 1);
	assert_true(g1 == g2);

	/* a vCPU context keeps the system alive; bad sizes are refused */
	assert_int_equal(bm_vcpu_new(sys, 3, &n, &vcpu), 0);
	assert_int_equal(bm_vcpu_index(vcpu), 3);
	assert_ptr_equal(bm_vcpu_user(vcpu), &n);
	assert_int_equal(bm_read(vcpu, sp, 0x8000, 3, &v), -EINVAL);
	assert_int_equal(bm_read(vcpu, sp, 0x8000, 1, NULL), -EINVAL);
	assert_int_equal(bm_read(vcpu, NULL, 0x8000, 1, &v), -EINVAL);
	assert_int_equal(bm_system_free(sys), -EBUSY);
	assert_int_equal(bm_vcpu_free(vcpu), 0);

	assert_int_equal(bm_region_destroy(a2), 0);
	assert_int_equal(bm_region_destroy(a), 0);
	assert_int_equal(bm_region_destroy(c), 0);
	assert_null(bm_region_parent(d)); /* detached, still owned */
	assert_int_equal(bm_region_add(root, d, 0, 0), 0);
	assert_int_equal(bm_system_free(sys), 0);
	assert_int_equal(bm_system_free(other), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_random_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
