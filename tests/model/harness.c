/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The core's differential harness (harness.h).
 *
 * After every publication, each space's view must be the model's, in shape (sorted,
 * disjoint, simplified, terminal regions, inside them) and content; its conflicts must be
 * the model's; its generation must grow exactly when it changed; listeners must have been
 * told exactly the difference from the previous view, and conflict callbacks every conflict
 * that came or went; and dispatch must agree with the model on both sides of every range
 * boundary, at random addresses and in wider accesses across ranges. Inside a transaction,
 * the view and dispatch must stay those of the last publication. Every call must return
 * what region.h documents for the model's state, the accessors must then agree with the
 * model, and every access must return the model's flags and value and reach callbacks only
 * as region.h promises (implemented sizes, aligned, inside the region, each carrying a byte
 * of the access, once per byte where a region implements only single bytes).
 *
 * The first input byte configures the run (RCU flavour, how wide the interesting window is,
 * how many regions, the priority range, listeners); every following opcode takes its
 * arguments from the bytes after it. An opcode byte's low five bits name the operation; if
 * any of its top three is set, the operation is aimed: its operands are, where the tree has
 * one, a region it applies to (a parentless child and a container for an add, a placed
 * region for a delete or a move, an alias for an alias offset), as most of a VMM's calls
 * are; otherwise any live region, documented errors included. After the last operation,
 * the teardown takes its choices (freeing a space, removing listeners, which regions to
 * destroy before the system) from what is left; an exhausted input reads as zeros and
 * chooses the plainest one.
 *
 * The checks never spend input bytes: the random addresses they visit come from their own
 * generator, seeded by the driver, so that the bytes stay a description of operations.
 */
#include "harness.h"
#include "../fuzz/fuzz_input.h"
#include "model.h"

#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX       64
#define RAM_MIN_CAP   (0x1000 + 8) /* ram buffers hold at least this, and at most 0x10008 */
#define TRACE_N       96
#define TRACE_W       192
#define EDGE_RANGES   12 /* ranges of a new view whose last bytes are also read 8 at a time */
#define RANDOM_POINTS 12 /* random addresses dispatched to after each publication */

struct logent {
	uintptr_t id;
	uint64_t offset;
	unsigned size;
	bool write;
	uint64_t value;
	uint8_t old[8]; /* write: what the bytes held before */
};

/* The bytes io regions hold, where a write changed them: regions behave as memory, so
 * that a read-modify-write the core makes of one piece is seen by the next. */
struct memslot {
	uintptr_t id; /* 0: free */
	uint64_t off;
	uint8_t v;
};

struct lmirror {
	bm_listener *l;
	struct rvec copy; /* the view as rebuilt from the events alone */
	size_t nremoved, nadded;
	unsigned long calls;
	char bad[256]; /* first inconsistency seen inside a callback, which cannot fail there */
};

struct cmirror {
	bool on;
	struct cvec copy; /* the conflicts as rebuilt from on_change alone */
	unsigned long events;
	char bad[256];
	/* on_access calls since the last access */
	unsigned nacc;
	uint64_t acc_addr;
	unsigned acc_size;
	bool acc_write;
	bm_space *acc_space;
};

static struct {
	struct fz_input in;
	const struct harness_opts *opts;
	jmp_buf fail_jmp;
	uint64_t chk;     /* the checks' own generator */
	struct model M;   /* the tree as changed so far */
	struct model pub; /* the tree as last published: what dispatch must follow */
	bm_system *sys;
	bm_space *space[2];
	bm_vcpu *vcpu;
	bool qsbr;
	uint64_t W; /* most offsets and sizes are below this, so overlaps are frequent */
	uint64_t ram_cap;
	int prange; /* priorities are drawn in [-prange, prange], and the extremes */
	int depth;
	bool null_ops[MODEL_MAXN];
	bool doomed[MODEL_MAXN]; /* destroyed in the open transaction: slot not reusable yet */
	uint64_t ram_filled[MODEL_MAXN]; /* how much of a ram buffer holds its pattern */
	bool aimed;                      /* the operation picks operands it applies to */
	bool notify_ok;                  /* a listener or conflict callback may run now */
	bool in_teardown;                /* a space is being freed: callbacks must not call back */
	struct lmirror ls[2];
	struct cmirror cs[2];
	struct rvec prev[2]; /* published view at the last check */
	uint64_t gen[2];
	struct rvec want, got;
	struct cvec cgot;
	struct cvec pconf[2]; /* conflicts of the published model */
	struct logent log[LOG_MAX];
	unsigned nlog;
	struct memslot *mem;
	size_t nmem, memcap;
	char cb_bad[256];
	uint64_t dispatched, unassigned, conflicts;
	unsigned long op, ok_calls, checks;
	size_t op_byte; /* where in the input the current operation starts */
	char trace[TRACE_N][TRACE_W];
	unsigned long ntrace;
} H;

/* ------------------------------------------------------------------ reports */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;
	char *slot = H.trace[H.ntrace++ % TRACE_N];

	va_start(ap, fmt);
	vsnprintf(slot, TRACE_W, fmt, ap);
	va_end(ap);
	if (H.opts->trace)
		fprintf(stderr, "  %s\n", slot);
}

static const char *rname(const bm_region *r)
{
	/* a region destroyed since the last publication is still named by the published tree */
	return model_rname(model_slot(&H.M, r) >= 0 ? &H.M : &H.pub, r);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\ncore harness: op %lu (input byte %zu): ", H.op, H.op_byte);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (H.opts->origin)
		fprintf(stderr, "%s\n", H.opts->origin);
	fprintf(stderr, "%s flavour, window %#" PRIx64 ", %d slots, depth %d; last operations:\n",
	        H.qsbr ? "qsbr" : "memb", H.W, H.M.maxn, H.depth);
	unsigned long first = H.ntrace > TRACE_N ? H.ntrace - TRACE_N : 0;
	for (unsigned long i = first; i < H.ntrace; i++)
		fprintf(stderr, "  %s\n", H.trace[i % TRACE_N]);
	fprintf(stderr, "model:\n");
	model_dump(&H.M, stderr);
	for (int s = 0; s < 2; s++) {
		if (!H.space[s])
			continue;
		struct rvec want = {0};
		struct cvec cwant = {0};
		char title[64];
		model_build_kids(&H.M);
		model_view(&H.M, s, &want, NULL, &cwant);
		snprintf(title, sizeof(title), "space %d, model", s);
		model_print_rvec(&H.M, stderr, title, &want);
		model_print_cvec(&H.M, stderr, title, &cwant);
		free(want.v);
		free(cwant.v);
		snprintf(title, sizeof(title), "space %d, published at the last check", s);
		model_print_rvec(&H.pub, stderr, title, &H.prev[s]);
		if (H.ls[s].l) {
			snprintf(title, sizeof(title), "space %d, listener copy", s);
			model_print_rvec(&H.pub, stderr, title, &H.ls[s].copy);
		}
	}
	longjmp(H.fail_jmp, 1);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__VA_ARGS__);                                                         \
	} while (0)

void harness_write_progress(int fd)
{
	char buf[TRACE_W + 64];
	int n = snprintf(buf, sizeof(buf),
	                 "core harness: at op %lu (input byte %zu); last operations:\n", H.op,
	                 H.op_byte);

	if (write(fd, buf, (size_t)n) < 0)
		return;
	unsigned long first = H.ntrace > TRACE_N ? H.ntrace - TRACE_N : 0;
	for (unsigned long i = first; i < H.ntrace; i++) {
		n = snprintf(buf, sizeof(buf), "  %s\n", H.trace[i % TRACE_N]);
		if (write(fd, buf, (size_t)n) < 0)
			return;
	}
}

/* ------------------------------------------------------------------ random choices */

/* splitmix64: tiny, and consecutive seeds give unrelated streams */
static uint64_t splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void harness_random_input(uint64_t seed, uint8_t *buf, size_t size)
{
	uint64_t v = 0;

	for (size_t i = 0; i < size; i++) {
		if (i % 8 == 0)
			v = splitmix(&seed);
		buf[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

static uint64_t chk_rnd(void)
{
	return splitmix(&H.chk);
}

static uint64_t chk_below(uint64_t n)
{
	return n ? chk_rnd() % n : 0;
}

static bool chk_chance(unsigned pct)
{
	return chk_below(100) < pct;
}

/* Mostly inside the window, sometimes just below 2^64, sometimes anywhere. */
static uint64_t chk_addr(void)
{
	switch (chk_below(8)) {
	case 0:
		return UINT64_MAX - chk_below(H.W);
	case 1:
		return chk_rnd();
	default:
		return chk_below(H.W + H.W / 2);
	}
}

/* ------------------------------------------------------------------ callbacks */

static void cb_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cb_bad(const char *fmt, ...)
{
	va_list ap;

	if (H.cb_bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(H.cb_bad, sizeof(H.cb_bad), fmt, ap);
	va_end(ap);
}

/* The published slot of an io region's opaque id, or -1. */
static int pub_slot_of_id(uintptr_t id)
{
	for (int i = 0; i < H.pub.maxn; i++)
		if (H.pub.m[i].live && H.pub.m[i].kind == BM_REGION_IO && H.pub.m[i].id == id)
			return i;
	return -1;
}

/* What region.h promises every callback: an implemented size, aligned, inside the region. */
static void log_access(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, bool write,
                       uint64_t value)
{
	uintptr_t id = (uintptr_t)opaque;
	int n = pub_slot_of_id(id);

	if (vcpu != H.vcpu)
		cb_bad("callback got another vcpu than the dispatching one");
	if (n < 0) {
		cb_bad("callback of io region id %" PRIuPTR ", which the published view lacks", id);
		return;
	}
	const struct mnode *m = &H.pub.m[n];
	if (size > 8 || !(m->impl_sizes & size))
		cb_bad("%s: callback of size %u, implemented sizes %#x", m->name, size,
		       m->impl_sizes);
	else if (off & (size - 1))
		cb_bad("%s: callback at unaligned offset %#" PRIx64 " size %u", m->name, off, size);
	else if (off > model_last_rel(m->size) || model_last_rel(m->size) - off < size - 1)
		cb_bad("%s: callback at %#" PRIx64
		       " size %u passes the region's end (size %#" PRIx64 ")",
		       m->name, off, size, m->size);
	if (write && size < 8 && value >> (8 * size))
		cb_bad("%s: write of %#" PRIx64 " does not fit %u bytes", m->name, value, size);
	if (H.nlog == LOG_MAX) {
		cb_bad("more than %d callbacks for one access", LOG_MAX);
		return;
	}
	H.log[H.nlog++] = (struct logent){id, off, size, write, value, {0}};
}

static size_t mem_hash(uintptr_t id, uint64_t off)
{
	return (size_t)((id * 0x9e3779b97f4a7c15u ^ off * 0xc2b2ae3d27d4eb4fu) >> 20) &
	       (H.memcap - 1);
}

static struct memslot *mem_find(uintptr_t id, uint64_t off)
{
	if (!H.memcap)
		return NULL;
	for (size_t h = mem_hash(id, off);; h = (h + 1) & (H.memcap - 1)) {
		struct memslot *m = &H.mem[h];
		if (!m->id || (m->id == id && m->off == off))
			return m;
	}
}

static uint8_t mem_get(uintptr_t id, uint64_t off)
{
	const struct memslot *m = mem_find(id, off);
	return m && m->id ? m->v : model_io_byte(id, off);
}

static void mem_set(uintptr_t id, uint64_t off, uint8_t v)
{
	if (2 * (H.nmem + 1) > H.memcap) {
		struct memslot *old = H.mem;
		size_t cap = H.memcap;
		H.memcap = cap ? 2 * cap : 1024;
		H.mem = calloc(H.memcap, sizeof(*H.mem));
		if (!H.mem)
			abort();
		for (size_t i = 0; i < cap; i++)
			if (old[i].id)
				*mem_find(old[i].id, old[i].off) = old[i];
		free(old);
	}
	struct memslot *m = mem_find(id, off);
	if (!m->id)
		H.nmem++;
	*m = (struct memslot){id, off, v};
}

static int io_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	log_access(opaque, vcpu, off, size, false, 0);
	*value = 0;
	for (unsigned i = 0; i < size && i < 8; i++)
		*value |= (uint64_t)mem_get((uintptr_t)opaque, off + i) << (8 * i);
	return 0;
}

static int io_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	uintptr_t id = (uintptr_t)opaque;
	unsigned k = H.nlog;
	log_access(opaque, vcpu, off, size, true, value);
	for (unsigned i = 0; i < size && i < 8; i++) {
		if (k < H.nlog)
			H.log[k].old[i] = mem_get(id, off + i);
		mem_set(id, off + i, (uint8_t)(value >> (8 * i)));
	}
	return 0;
}

/* The documented contract forbids map changes from listeners and conflict callbacks: check
 * that it is enforced. The root is never an operand, so an accepted call would neither
 * touch freed memory nor change what the model predicts. */
static void mutate_from_callback(char *bad, size_t len, const char *who)
{
	if (H.in_teardown)
		return;
	int rc = bm_region_set_priority(bm_space_root(H.space[0]), 0);
	if (rc != -EDEADLK && !bad[0])
		snprintf(bad, len,
		         "op %lu: bm_region_set_priority from %s returned %d, not -EDEADLK", H.op,
		         who, rc);
	rc = bm_synchronize(H.sys);
	if (rc != -EDEADLK && !bad[0])
		snprintf(bad, len, "op %lu: bm_synchronize from %s returned %d, not -EDEADLK", H.op,
		         who, rc);
}

static void set_bad(char *bad, size_t len, const char *what)
{
	if (!bad[0])
		snprintf(bad, len, "op %lu: %s", H.op, what);
}

static void trace_events(int s, const struct bm_flat_range *removed, size_t nremoved,
                         const struct bm_flat_range *added, size_t nadded)
{
	fprintf(stderr, "    listener space %d: %zu removed, %zu added\n", s, nremoved, nadded);
	for (size_t i = 0; i < nremoved; i++)
		fprintf(stderr, "      - [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "%s\n",
		        removed[i].start, removed[i].last, rname(removed[i].region),
		        removed[i].offset, removed[i].conflict ? " (conflict)" : "");
	for (size_t i = 0; i < nadded; i++)
		fprintf(stderr, "      + [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "%s\n",
		        added[i].start, added[i].last, rname(added[i].region), added[i].offset,
		        added[i].conflict ? " (conflict)" : "");
}

static void listener_fn(void *arg, bm_space *space, const struct bm_flat_range *removed,
                        size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	struct lmirror *ls = arg;
	int s = ls == &H.ls[0] ? 0 : 1;
	char prefix[48];

	ls->calls++;
	if ((nremoved && !removed) || (nadded && !added)) {
		set_bad(ls->bad, sizeof(ls->bad), "NULL event array with a nonzero count");
		return;
	}
	if (H.opts->trace)
		trace_events(s, removed, nremoved, added, nadded);
	if (space != H.space[s])
		set_bad(ls->bad, sizeof(ls->bad), "listener called with another space");
	if (!H.notify_ok)
		set_bad(ls->bad, sizeof(ls->bad),
		        "listener called outside an outermost commit or registration");
	if (ls->calls % 4 == 0)
		mutate_from_callback(ls->bad, sizeof(ls->bad), "a listener");
	snprintf(prefix, sizeof(prefix), "op %lu: ", H.op);
	model_listener_apply(&H.M, &ls->copy, removed, nremoved, added, nadded, ls->bad,
	                     sizeof(ls->bad), prefix);
	ls->nremoved += nremoved;
	ls->nadded += nadded;
}

static long cvec_find(const struct cvec *c, const struct bm_conflict *x)
{
	for (size_t i = 0; i < c->n; i++)
		if (conflict_eq(&c->v[i], x))
			return (long)i;
	return -1;
}

static void on_change(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	struct cmirror *cs = arg;
	int s = cs == &H.cs[0] ? 0 : 1;
	char what[192];

	cs->events++;
	if (space != H.space[s])
		set_bad(cs->bad, sizeof(cs->bad), "on_change called with another space");
	if (!H.notify_ok)
		set_bad(cs->bad, sizeof(cs->bad), "on_change called outside an outermost commit");
	if (cs->events % 4 == 0)
		mutate_from_callback(cs->bad, sizeof(cs->bad), "on_change");
	long k = cvec_find(&cs->copy, c);
	if ((added && k >= 0) || (!added && k < 0)) {
		snprintf(what, sizeof(what), "conflict [%#" PRIx64 ", %#" PRIx64 "] %s/%s %s",
		         c->start, c->last, rname(c->winner), rname(c->loser),
		         added ? "added twice" : "removed, never added");
		set_bad(cs->bad, sizeof(cs->bad), what);
	}
	if (added)
		cvec_push(&cs->copy, c);
	else if (k >= 0)
		cs->copy.v[k] = cs->copy.v[--cs->copy.n];
}

static void on_access(void *arg, bm_space *space, bm_vcpu *vcpu, uint64_t addr, unsigned size,
                      bool is_write)
{
	struct cmirror *cs = arg;

	if (vcpu != H.vcpu)
		set_bad(cs->bad, sizeof(cs->bad), "on_access got another vcpu");
	cs->nacc++;
	cs->acc_space = space;
	cs->acc_addr = addr;
	cs->acc_size = size;
	cs->acc_write = is_write;
}

static const struct bm_conflict_ops conflict_ops = {on_change, on_access};

/* ------------------------------------------------------------------ dispatch checks */

/* Whether a byte at off of io region m can be carried by some implemented unit: the core
 * never lets a unit pass the region's end, so a byte no unit can reach reads as 0xff and a
 * write to it is dropped. */
static bool io_reachable(const struct mnode *m, uint64_t off)
{
	for (unsigned u = 1; u <= 8; u <<= 1) {
		uint64_t c = off & ~(uint64_t)(u - 1);
		if ((m->impl_sizes & u) && c <= model_last_rel(m->size) &&
		    model_last_rel(m->size) - c >= u - 1)
			return true;
	}
	return false;
}

/* What the published model says about byte i of an access. */
struct byte_want {
	int node; /* slot in H.pub, -1 unassigned */
	uint64_t off;
};

/* Whether a callback must carry byte i: an io byte some unit can reach, with callbacks. */
static bool carried(const struct byte_want *b)
{
	if (b->node < 0)
		return false;
	const struct mnode *m = &H.pub.m[b->node];
	return m->kind == BM_REGION_IO && !H.null_ops[b->node] && io_reachable(m, b->off);
}

static int expect_bytes(int s, uint64_t addr, unsigned size, struct byte_want *b, bool *refused)
{
	const struct cvec *conf = &H.pconf[s];
	int flags = 0;

	*refused = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = addr + i;
		b[i] = (struct byte_want){-1, 0};
		if (a < addr || !model_lookup(&H.pub, s, a, &b[i].node, &b[i].off)) {
			b[i].node = -1;
			flags |= BM_ACCESS_UNASSIGNED;
		}
		if (a >= addr && model_in_conflict(conf, a))
			flags |= BM_ACCESS_CONFLICT;
		if (b[i].node >= 0 && H.pub.m[b[i].node].kind == BM_REGION_IO &&
		    !(H.pub.m[b[i].node].valid_sizes & size))
			*refused = true;
	}
	return flags;
}

static void check_signal(int s, int flags, uint64_t addr, unsigned size, bool write)
{
	struct cmirror *cs = &H.cs[s];
	bool want = cs->on && (flags & BM_ACCESS_CONFLICT);

	CHECK(!cs->bad[0], "space %d conflict callbacks: %s", s, cs->bad);
	CHECK(cs->nacc == (want ? 1u : 0u),
	      "space %d %s%u at %#" PRIx64 ": %u on_access calls, expected %d", s,
	      write ? "write" : "read", size, addr, cs->nacc, want);
	if (want)
		CHECK(cs->acc_space == H.space[s] && cs->acc_addr == addr && cs->acc_size == size &&
		          cs->acc_write == write,
		      "space %d: on_access got the wrong access (%#" PRIx64 "/%u/%d)", s,
		      cs->acc_addr, cs->acc_size, cs->acc_write);
	cs->nacc = 0;
}

/* How many callbacks each region got: never more reads, nor more writes, than the access
 * has bytes there (a read-modify-write reads each unit once), and exactly one of the
 * access's kind per byte where a region implements single bytes only. */
static void check_counts(int s, uint64_t addr, unsigned size, const struct byte_want *b, bool write)
{
	for (unsigned i = 0; i < size; i++) {
		if (!carried(&b[i]))
			continue;
		unsigned bytes = 0, reads = 0, writes = 0, j;
		for (j = 0; j < i && !(carried(&b[j]) && b[j].node == b[i].node); j++)
			;
		if (j < i)
			continue; /* counted with an earlier byte of the same region */
		for (j = i; j < size; j++)
			bytes += carried(&b[j]) && b[j].node == b[i].node;
		const struct mnode *m = &H.pub.m[b[i].node];
		for (unsigned k = 0; k < H.nlog; k++)
			if (H.log[k].id == m->id) {
				reads += !H.log[k].write;
				writes += H.log[k].write;
			}
		CHECK(reads <= bytes && writes <= bytes,
		      "space %d %s%u at %#" PRIx64 ": %u reads and %u writes of %s for %u bytes", s,
		      write ? "write" : "read", size, addr, reads, writes, m->name, bytes);
		if (m->impl_sizes == BM_ACCESS_1)
			CHECK((write ? writes : reads) == bytes && (write ? reads : writes) == 0,
			      "space %d %s%u at %#" PRIx64
			      ": %u reads and %u writes of %s, which implements single bytes, for "
			      "%u bytes",
			      s, write ? "write" : "read", size, addr, reads, writes, m->name,
			      bytes);
	}
}

static void count(int rc)
{
	H.dispatched++;
	if (rc > 0 && (rc & BM_ACCESS_UNASSIGNED))
		H.unassigned++;
	if (rc > 0 && (rc & BM_ACCESS_CONFLICT))
		H.conflicts++;
}

/* A read, where expect_bytes gave b, want_rc and refused. */
static void check_read_of(int s, uint64_t addr, unsigned size, const struct byte_want *b,
                          int want_rc, bool refused)
{
	uint64_t value = 0x0123456789abcdefu, want = 0;

	H.nlog = 0;
	int rc = bm_read(H.vcpu, H.space[s], addr, size, &value);
	count(rc);
	if (H.opts->trace)
		fprintf(stderr, "    read%u(space %d, %#" PRIx64 ") = %d, %#" PRIx64 "\n", size, s,
		        addr, rc, value);
	CHECK(!H.cb_bad[0], "space %d read%u at %#" PRIx64 ": %s", s, size, addr, H.cb_bad);
	if (refused) {
		uint64_t ones = size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
		CHECK(rc == -EOPNOTSUPP && H.nlog == 0 && value == ones,
		      "space %d read%u at %#" PRIx64
		      " reaches a region that refuses the size: got %d, %u callbacks, %#" PRIx64,
		      s, size, addr, rc, H.nlog, value);
		check_signal(s, 0, addr, size, false);
		return;
	}
	for (unsigned i = 0; i < size; i++) {
		uint8_t byte = 0xff;
		if (b[i].node >= 0) {
			const struct mnode *m = &H.pub.m[b[i].node];
			if (m->kind == BM_REGION_RAM) {
				byte = model_ram_byte(m->id, b[i].off);
			} else if (carried(&b[i])) {
				byte = mem_get(m->id, b[i].off);
				bool found = false;
				for (unsigned k = 0; k < H.nlog && !found; k++)
					found = H.log[k].id == m->id && !H.log[k].write &&
					        H.log[k].offset <= b[i].off &&
					        b[i].off - H.log[k].offset < H.log[k].size;
				CHECK(found,
				      "space %d read%u at %#" PRIx64 ": byte %u (%s+%#" PRIx64
				      ") read by no callback (%u callbacks)",
				      s, size, addr, i, m->name, b[i].off, H.nlog);
			}
		}
		want |= (uint64_t)byte << (8 * i);
	}
	for (unsigned k = 0; k < H.nlog; k++) {
		bool mine = false;
		for (unsigned i = 0; i < size && !mine; i++)
			mine = b[i].node >= 0 && H.pub.m[b[i].node].id == H.log[k].id &&
			       H.log[k].offset <= b[i].off &&
			       b[i].off - H.log[k].offset < H.log[k].size;
		CHECK(mine && !H.log[k].write,
		      "space %d read%u at %#" PRIx64 ": a %s callback at %#" PRIx64
		      " size %u covers none of the bytes",
		      s, size, addr, H.log[k].write ? "write" : "read", H.log[k].offset,
		      H.log[k].size);
	}
	check_counts(s, addr, size, b, false);
	CHECK(rc == want_rc && value == want,
	      "space %d read%u at %#" PRIx64 " returned %d, %#" PRIx64 "; model: %d, %#" PRIx64, s,
	      size, addr, rc, value, want_rc, want);
	check_signal(s, rc, addr, size, false);
}

static void check_read(int s, uint64_t addr, unsigned size)
{
	struct byte_want b[8];
	bool refused;
	int want_rc = expect_bytes(s, addr, size, b, &refused);

	check_read_of(s, addr, size, b, want_rc, refused);
}

/* The first value a write callback of this access found at (id, off), if any wrote it. */
static bool old_byte(uintptr_t id, uint64_t off, uint8_t *v)
{
	for (unsigned k = 0; k < H.nlog; k++) {
		const struct logent *e = &H.log[k];
		if (e->write && e->id == id && e->offset <= off && off - e->offset < e->size) {
			*v = e->old[off - e->offset];
			return true;
		}
	}
	return false;
}

static void check_write(int s, uint64_t addr, unsigned size, uint64_t value)
{
	struct byte_want b[8];
	bool refused;
	int want_rc = expect_bytes(s, addr, size, b, &refused);
	/* what the io bytes the access lands on hold afterwards: the last access byte there
	 * (several can land on one through aliases) */
	struct {
		uintptr_t id;
		uint64_t off;
		uint8_t v;
	} want[8];
	unsigned nwant = 0;

	value &= size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
	for (unsigned i = 0; i < size; i++) {
		if (!carried(&b[i]))
			continue;
		const struct mnode *m = &H.pub.m[b[i].node];
		unsigned k = 0;
		while (k < nwant && !(want[k].id == m->id && want[k].off == b[i].off))
			k++;
		want[k].id = m->id;
		want[k].off = b[i].off;
		want[k].v = (uint8_t)(value >> (8 * i));
		nwant += k == nwant;
	}
	H.nlog = 0;
	int rc = bm_write(H.vcpu, H.space[s], addr, size, value);
	count(rc);
	if (H.opts->trace)
		fprintf(stderr, "    write%u(space %d, %#" PRIx64 ", %#" PRIx64 ") = %d\n", size, s,
		        addr, value, rc);
	CHECK(!H.cb_bad[0], "space %d write%u at %#" PRIx64 ": %s", s, size, addr, H.cb_bad);
	if (refused) {
		CHECK(rc == -EOPNOTSUPP && H.nlog == 0,
		      "space %d write%u at %#" PRIx64
		      " reaches a region that refuses the size: got %d, %u callbacks",
		      s, size, addr, rc, H.nlog);
		for (unsigned i = 0; i < size; i++) {
			const struct mnode *m = b[i].node >= 0 ? &H.pub.m[b[i].node] : NULL;
			if (m && m->kind == BM_REGION_RAM)
				CHECK(m->host[b[i].off] == model_ram_byte(m->id, b[i].off),
				      "space %d: refused write%u at %#" PRIx64 " changed ram", s,
				      size, addr);
		}
		check_signal(s, 0, addr, size, true);
		return;
	}
	CHECK(rc == want_rc, "space %d write%u at %#" PRIx64 " returned %d, model says %d", s, size,
	      addr, rc, want_rc);
	for (unsigned k = 0; k < nwant; k++)
		CHECK(mem_get(want[k].id, want[k].off) == want[k].v,
		      "space %d write%u %#" PRIx64 " at %#" PRIx64 ": io id %" PRIuPTR
		      " offset %#" PRIx64 " holds %#x, not the %#x written",
		      s, size, value, addr, want[k].id, want[k].off,
		      mem_get(want[k].id, want[k].off), want[k].v);
	/* the neighbours a read-modify-write carried keep what they held, and every callback
	 * carries at least one byte of the access */
	for (unsigned k = 0; k < H.nlog; k++) {
		const struct logent *e = &H.log[k];
		bool useful = false;
		for (unsigned j = 0; j < e->size; j++) {
			uint64_t off = e->offset + j;
			bool target = false;
			for (unsigned t = 0; t < nwant && !target; t++)
				target = want[t].id == e->id && want[t].off == off;
			useful |= target;
			uint8_t old;
			if (!target && e->write && old_byte(e->id, off, &old))
				CHECK(mem_get(e->id, off) == old,
				      "space %d write%u at %#" PRIx64 ": io id %" PRIuPTR
				      " offset %#" PRIx64
				      ", no byte of the access, went from %#x to %#x",
				      s, size, addr, e->id, off, old, mem_get(e->id, off));
		}
		CHECK(useful,
		      "space %d write%u at %#" PRIx64 ": a %s callback at %#" PRIx64
		      " size %u covers none of the bytes",
		      s, size, addr, e->write ? "write" : "read", e->offset, e->size);
	}
	for (unsigned i = 0; i < size; i++) {
		if (b[i].node < 0)
			continue;
		const struct mnode *m = &H.pub.m[b[i].node];
		if (m->kind == BM_REGION_RAM) {
			bool ok = false;
			for (unsigned j = 0; j < size && !ok; j++)
				ok = b[j].node == b[i].node && b[j].off == b[i].off &&
				     m->host[b[i].off] == (uint8_t)(value >> (8 * j));
			CHECK(ok,
			      "space %d write%u at %#" PRIx64
			      ": byte %u not in %s's host byte %#" PRIx64,
			      s, size, addr, i, m->name, b[i].off);
			continue;
		}
		if (!carried(&b[i]))
			continue;
		bool found = false;
		for (unsigned k = 0; k < H.nlog && !found; k++)
			found = H.log[k].write && H.log[k].id == m->id &&
			        H.log[k].offset <= b[i].off &&
			        b[i].off - H.log[k].offset < H.log[k].size;
		CHECK(found,
		      "space %d write%u at %#" PRIx64 ": byte %u (%s+%#" PRIx64
		      ") written by no callback",
		      s, size, addr, i, m->name, b[i].off);
	}
	check_counts(s, addr, size, b, true);
	/* ram goes back to its pattern, so later reads still tell where they landed */
	for (unsigned i = 0; i < size; i++) {
		const struct mnode *m = b[i].node >= 0 ? &H.pub.m[b[i].node] : NULL;
		if (m && m->kind == BM_REGION_RAM)
			m->host[b[i].off] = model_ram_byte(m->id, b[i].off);
	}
	check_signal(s, rc, addr, size, true);
}

/* ------------------------------------------------------------------ view checks */

static int collect_fn(void *arg, const struct bm_flat_range *r)
{
	rvec_push(arg, r);
	return 0;
}

static void check_view_shape(int s, const struct rvec *got)
{
	for (size_t i = 0; i < got->n; i++) {
		const struct bm_flat_range *r = &got->v[i];
		CHECK(r->start <= r->last && r->region != NULL,
		      "space %d: bad range [%#" PRIx64 ", %#" PRIx64 "]", s, r->start, r->last);
		CHECK(bm_region_kind(r->region) == BM_REGION_IO ||
		          bm_region_kind(r->region) == BM_REGION_RAM,
		      "space %d: range at %#" PRIx64 " names a non-terminal region %s", s, r->start,
		      rname(r->region));
		uint64_t end = model_last_rel(bm_region_size(r->region));
		CHECK(r->offset <= end && end - r->offset >= r->last - r->start,
		      "space %d: range [%#" PRIx64 ", %#" PRIx64 "] +%#" PRIx64
		      " runs past the end of %s",
		      s, r->start, r->last, r->offset, rname(r->region));
		if (i == 0)
			continue;
		const struct bm_flat_range *p = &got->v[i - 1];
		CHECK(p->last < r->start,
		      "space %d: ranges at %#" PRIx64 " and %#" PRIx64 " are unsorted or overlap",
		      s, p->start, r->start);
		CHECK(!(p->region == r->region && p->last + 1 == r->start &&
		        p->offset + (p->last - p->start) + 1 == r->offset &&
		        p->conflict == r->conflict),
		      "space %d: view not simplified: [%#" PRIx64 ", %#" PRIx64 "] and [%#" PRIx64
		      ", %#" PRIx64 "] are contiguous pieces of %s",
		      s, p->start, p->last, r->start, r->last, rname(r->region));
	}
}

static bool rvec_eq(const struct rvec *a, const struct rvec *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!range_eq(&a->v[i], &b->v[i]))
			return false;
	return true;
}

/* The library's view against the model's, naming the first range that differs. */
static void check_view(int s, const struct rvec *want, const struct rvec *got)
{
	size_t i = 0;

	while (i < want->n && i < got->n && range_eq(&want->v[i], &got->v[i]))
		i++;
	if (i == want->n && i == got->n)
		return;
	model_print_rvec(&H.pub, stderr, "library view", got);
	const struct bm_flat_range none = {0};
	const struct bm_flat_range *g = i < got->n ? &got->v[i] : &none;
	const struct bm_flat_range *w = i < want->n ? &want->v[i] : &none;
	fail("space %d: published view differs from the model (%zu vs %zu ranges), first at index "
	     "%zu: library [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "%s, model [%#" PRIx64
	     ", %#" PRIx64 "] %s +%#" PRIx64 "%s",
	     s, got->n, want->n, i, g->start, g->last, i < got->n ? rname(g->region) : "-",
	     g->offset, g->conflict ? " (conflict)" : "", w->start, w->last,
	     i < want->n ? rname(w->region) : "-", w->offset, w->conflict ? " (conflict)" : "");
}

/* Whether a and b hold the same conflicts in any order; a (a mirror) holds no duplicates. */
static bool cvec_same_set(const struct cvec *a, const struct cvec *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (cvec_find(b, &a->v[i]) < 0 || cvec_find(a, &b->v[i]) < 0)
			return false;
	return true;
}

static void check_conflicts(int s)
{
	struct cmirror *cs = &H.cs[s];
	size_t nc = bm_space_conflicts(H.space[s], NULL, 0);

	H.cgot.n = 0;
	if (nc) {
		struct bm_conflict *buf = calloc(nc, sizeof(*buf));
		if (!buf)
			abort();
		size_t n2 = bm_space_conflicts(H.space[s], buf, nc);
		CHECK(n2 == nc, "space %d: conflict count changed between two calls", s);
		for (size_t i = 0; i < nc; i++)
			cvec_push(&H.cgot, &buf[i]);
		free(buf);
	}
	bool csame = H.cgot.n == H.pconf[s].n;
	for (size_t i = 0; csame && i < H.cgot.n; i++)
		csame = conflict_eq(&H.cgot.v[i], &H.pconf[s].v[i]);
	if (!csame) {
		model_print_cvec(&H.pub, stderr, "library conflicts", &H.cgot);
		fail("space %d: conflicts differ from the model (%zu vs %zu)", s, H.cgot.n,
		     H.pconf[s].n);
	}
	CHECK(!cs->bad[0], "space %d conflict callbacks: %s", s, cs->bad);
	if (cs->on && !cvec_same_set(&cs->copy, &H.cgot)) {
		model_print_cvec(&H.pub, stderr, "conflicts rebuilt from on_change", &cs->copy);
		fail("space %d: conflicts rebuilt from on_change differ from bm_space_conflicts",
		     s);
	}
}

/* Listeners: their copy must be the view, reached by exactly the difference. Checked after
 * every publication, since over several a range may go and come back. */
static void check_listener(int s, const struct rvec *got)
{
	struct lmirror *ls = &H.ls[s];

	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	if (ls->l) {
		if (!rvec_eq(&ls->copy, got)) {
			model_print_rvec(&H.pub, stderr, "listener copy", &ls->copy);
			fail("space %d: view rebuilt from listener events differs from "
			     "bm_space_flat",
			     s);
		}
		size_t left = 0, came = 0;
		for (size_t i = 0; i < H.prev[s].n; i++)
			left += !rvec_has(got, &H.prev[s].v[i]);
		for (size_t i = 0; i < got->n; i++)
			came += !rvec_has(&H.prev[s], &got->v[i]);
		CHECK(ls->nremoved == left && ls->nadded == came,
		      "space %d: listener saw %zu removed / %zu added, the difference is %zu / %zu",
		      s, ls->nremoved, ls->nadded, left, came);
	}
	ls->nremoved = ls->nadded = 0;
}

/* Where the view and the model resolve address a alike, dispatch must too. */
static void check_point(int s, uint64_t a)
{
	const struct rvec *got = &H.got;
	struct byte_want b;
	bool refused;
	int want_rc = expect_bytes(s, a, 1, &b, &refused);
	int node = b.node;
	uint64_t off = b.off;
	bool hit = node >= 0;
	long j = rvec_find(got, a);

	CHECK(hit == (j >= 0) && (!hit || (got->v[j].region == H.pub.m[node].r &&
	                                   got->v[j].offset + (a - got->v[j].start) == off)),
	      "space %d at %#" PRIx64 ": view has %s+%#" PRIx64 ", model %s+%#" PRIx64, s, a,
	      j >= 0 ? rname(got->v[j].region) : "(unassigned)",
	      j >= 0 ? got->v[j].offset + (a - got->v[j].start) : 0,
	      hit ? H.pub.m[node].name : "(unassigned)", hit ? off : 0);
	check_read_of(s, a, 1, &b, want_rc, refused);
}

/* Dispatch on both sides of every boundary, at random addresses, in wider accesses across
 * ranges, and one write. */
static void check_dispatch(int s, bool changed)
{
	const struct rvec *want = &H.want;

	for (size_t i = 0; i < want->n; i++) {
		const struct bm_flat_range *r = &want->v[i];
		check_point(s, r->start);
		check_point(s, r->last);
		check_point(s, r->start - 1);
		check_point(s, r->last + 1);
		if (changed && i < EDGE_RANGES)
			check_read(s, r->last - 3, 8);
	}
	for (int i = 0; i < RANDOM_POINTS; i++)
		check_point(s, chk_addr());
	for (int i = 0; i < 2; i++) {
		uint64_t a = want->n && chk_chance(70)
		                 ? want->v[chk_below(want->n)].last - chk_below(8)
		                 : chk_addr();
		check_read(s, a, 1u << (1 + chk_below(3)));
	}
	uint64_t a = want->n && chk_chance(70) ? want->v[chk_below(want->n)].start : chk_addr();
	check_write(s, a, 1, chk_rnd());
}

static void check_space(int s)
{
	struct rvec *want = &H.want, *got = &H.got;

	model_view(&H.pub, s, want, NULL, &H.pconf[s]);
	got->n = 0;
	uint64_t gen = bm_space_flat(H.space[s], collect_fn, got);
	check_view_shape(s, got);
	check_view(s, want, got);
	/* generations: one per publication, so a changed view has a newer one */
	bool changed = !rvec_eq(got, &H.prev[s]);
	CHECK(gen >= H.gen[s] && (!changed || gen > H.gen[s]),
	      "space %d: generation went from %" PRIu64 " to %" PRIu64 " (view %s)", s, H.gen[s],
	      gen, changed ? "changed" : "unchanged");
	check_conflicts(s);
	check_listener(s, got);
	check_dispatch(s, gen != H.gen[s] || H.checks == 1);
	rvec_copy(&H.prev[s], got);
	H.gen[s] = gen;
}

/* After a publication the published model is the model. */
static void published(void)
{
	model_build_kids(&H.M);
	/* the slots in use and the counters; the scratch vectors stay each model's own */
	memcpy(H.pub.m, H.M.m, (size_t)H.M.maxn * sizeof(H.M.m[0]));
	H.pub.maxn = H.M.maxn;
	H.pub.seq = H.M.seq;
	H.pub.next_id = H.M.next_id;
	H.checks++;
	for (int s = 0; s < 2; s++)
		if (H.space[s])
			check_space(s);
	memset(H.doomed, 0, sizeof(H.doomed));
}

/* Inside a transaction nothing is published: the views, and dispatch, are still those of
 * the last publication, even to regions the transaction destroyed. */
static void unpublished(void)
{
	for (int s = 0; s < 2; s++) {
		H.got.n = 0;
		uint64_t gen = bm_space_flat(H.space[s], collect_fn, &H.got);
		CHECK(gen == H.gen[s] && rvec_eq(&H.got, &H.prev[s]),
		      "space %d: view changed (gen %" PRIu64 " -> %" PRIu64
		      ") inside an open transaction",
		      s, H.gen[s], gen);
		CHECK(!H.ls[s].bad[0], "space %d listener: %s", s, H.ls[s].bad);
		CHECK(!H.cs[s].bad[0], "space %d conflict callbacks: %s", s, H.cs[s].bad);
	}
	int s = (int)chk_below(2);
	const struct rvec *p = &H.prev[s];
	uint64_t a = chk_addr();
	if (p->n && chk_chance(60)) {
		const struct bm_flat_range *r = &p->v[chk_below(p->n)];
		a = r->start + chk_below(r->last - r->start + 1);
	}
	check_read(s, a, 1);
}

/* ------------------------------------------------------------------ arguments */

/* A live slot (roots excluded unless roots): the first from where the input points,
 * preferring one that pred accepts when the operation is aimed. Whatever it picks, it reads
 * the same bytes. */
static int rd_slot_for(bool roots, bool (*pred)(int))
{
	int n = (int)in_below(&H.in, (uint64_t)H.M.maxn), any = -1;
	if (!roots && n < 2)
		n += 2;
	for (int k = 0; k < H.M.maxn; k++) {
		int i = (n + k) % H.M.maxn;
		if (!H.M.m[i].live || (!roots && i < 2))
			continue;
		if (!H.aimed || !pred || pred(i))
			return i;
		if (any < 0)
			any = i;
	}
	return any;
}

static int rd_slot(bool roots)
{
	return rd_slot_for(roots, NULL);
}

static bool p_container(int i)
{
	return model_is_container(&H.M, i);
}

static bool p_parentless(int i)
{
	return H.M.m[i].parent < 0;
}

static bool p_parented(int i)
{
	return H.M.m[i].parent >= 0;
}

static bool p_alias(int i)
{
	return H.M.m[i].kind == BM_REGION_ALIAS;
}

static uint64_t rd_size(void)
{
	switch (in_u8(&H.in) % 16) {
	case 0:
		return BM_SIZE_ALL;
	case 1:
		return 1;
	case 2:
		return 2;
	case 3:
		return 4;
	case 4:
		return 8;
	case 5:
		return 0;
	case 6:
		return UINT64_C(1) << (in_u8(&H.in) % 64);
	case 7:
		return in_u64(&H.in);
	case 8:
	case 9:
		return 1 + in_below(&H.in, H.W / 8 + 1);
	default:
		return 1 + in_below(&H.in, H.W);
	}
}

/* An offset for a region of `size` bytes inside parent p: mostly small so that siblings
 * overlap, sometimes on another region's edge, sometimes jammed against 2^64. */
static uint64_t rd_offset(int p, uint64_t size)
{
	switch (in_u8(&H.in) % 10) {
	case 0:
		/* around the highest offset that fits: -ERANGE one byte later */
		return UINT64_MAX - model_last_rel(size) + in_u8(&H.in) % 5 - 2;
	case 1:
	case 2: {
		int o = rd_slot(false);
		if (o < 0)
			return 0;
		const struct mnode *m = &H.M.m[o];
		switch (in_u8(&H.in) % 3) {
		case 0:
			return m->offset;
		case 1:
			return m->offset + m->size;
		default:
			return m->offset - size;
		}
	}
	case 3:
		return in_u64(&H.in);
	default: {
		uint64_t ps = p >= 0 ? H.M.m[p].size : BM_SIZE_ALL;
		uint64_t lim = ps == BM_SIZE_ALL || ps > H.W ? H.W : ps + ps / 4 + 1;
		return in_below(&H.in, lim);
	}
	}
}

static uint64_t rd_addr(int s)
{
	switch (in_u8(&H.in) % 8) {
	case 0:
		return UINT64_MAX - in_below(&H.in, H.W);
	case 1:
		return in_u64(&H.in);
	case 2:
	case 3:
	case 4:
		if (H.prev[s].n) {
			const struct bm_flat_range *r = &H.prev[s].v[in_below(&H.in, H.prev[s].n)];
			int d = (int)(in_u8(&H.in) % 17) - 8;
			return (in_u8(&H.in) & 1 ? r->last : r->start) + (uint64_t)(int64_t)d;
		}
		return 0;
	default:
		return in_below(&H.in, H.W + H.W / 2);
	}
}

static int rd_prio(void)
{
	uint8_t b = in_u8(&H.in);
	if (b == 0xff)
		return INT_MAX;
	if (b == 0xfe)
		return INT_MIN;
	return (int)(b % (unsigned)(2 * H.prange + 1)) - H.prange;
}

static unsigned rd_access_size(void)
{
	return 1u << (in_u8(&H.in) % 4);
}

/* ------------------------------------------------------------------ operations */

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
	CHECK(!H.cb_bad[0], "%s", H.cb_bad);
	H.ok_calls += rc == 0;
}

/* After a successful change, the writer-side accessors must agree with the model. */
static void check_attrs(int n)
{
	const struct mnode *m = &H.M.m[n];
	bm_region *parent = m->parent >= 0 ? H.M.m[m->parent].r : NULL;

	CHECK(bm_region_size(m->r) == m->size && bm_region_parent(m->r) == parent &&
	          bm_region_enabled(m->r) == m->enabled && bm_region_kind(m->r) == m->kind &&
	          bm_region_exclusive(m->r) == m->exclusive,
	      "%s: accessors disagree with the model (size %#" PRIx64
	      " parent %s enabled %d exclusive %d)",
	      m->name, bm_region_size(m->r), rname(bm_region_parent(m->r)), bm_region_enabled(m->r),
	      bm_region_exclusive(m->r));
	if (n >= 2)
		CHECK(bm_region_priority(m->r) == m->priority, "%s: priority %d, model %d", m->name,
		      bm_region_priority(m->r), m->priority);
	if (m->parent >= 0)
		CHECK(bm_region_offset(m->r) == m->offset,
		      "%s: offset %#" PRIx64 ", model %#" PRIx64, m->name, bm_region_offset(m->r),
		      m->offset);
}

static int free_slot(void)
{
	for (int i = 2; i < H.M.maxn; i++)
		if (!H.M.m[i].live && !H.doomed[i])
			return i;
	return -1;
}

/* A ram region's buffer holds the model's pattern up to size (see op_resize). */
static void ram_fill(int n, uint64_t size)
{
	struct mnode *m = &H.M.m[n];

	for (uint64_t i = H.ram_filled[n]; i < size && i < m->host_cap; i++)
		m->host[i] = model_ram_byte(m->id, i);
	if (size > H.ram_filled[n])
		H.ram_filled[n] = size;
}

static const struct bm_region_ops io_ops_tmpl = {.read = io_read, .write = io_write};

static void op_create(unsigned kind)
{
	int n = free_slot();
	uint64_t size = rd_size();
	bm_region *r = NULL;
	char what[128];
	int rc;

	if (n < 0)
		return;
	model_init_node(&H.M, n, kind == 3 ? BM_REGION_ALIAS : (enum bm_region_kind)kind, size);
	struct mnode *m = &H.M.m[n];
	H.null_ops[n] = false;
	if (kind == BM_REGION_IO) {
		struct bm_region_ops ops = io_ops_tmpl;
		uint8_t b = in_u8(&H.in);
		ops.valid_sizes = b & 0xf;
		ops.impl_sizes = b >> 4;
		if (in_u8(&H.in) % 8 == 0) {
			ops.read = NULL;
			ops.write = NULL;
			H.null_ops[n] = true;
		}
		m->valid_sizes = ops.valid_sizes ? ops.valid_sizes : BM_ACCESS_ALL;
		m->impl_sizes = ops.impl_sizes ? ops.impl_sizes : m->valid_sizes;
		rc = bm_region_new_io(H.sys, m->name, size, &ops, (void *)m->id, &r);
		snprintf(what, sizeof(what), "new_io(%s, %#" PRIx64 ", valid %#x impl %#x%s)",
		         m->name, size, ops.valid_sizes, ops.impl_sizes,
		         H.null_ops[n] ? ", no callbacks" : "");
	} else if (kind == BM_REGION_RAM) {
		if (size == 0 || size == BM_SIZE_ALL || size > H.ram_cap)
			size = size ? 1 + size % H.ram_cap : 0;
		m->size = size;
		if (m->host_cap < H.ram_cap) {
			free(m->host);
			m->host = malloc(H.ram_cap);
			if (!m->host)
				abort();
			m->host_cap = H.ram_cap;
		}
		H.ram_filled[n] = 0;
		ram_fill(n, size);
		rc = bm_region_new_ram(H.sys, m->name, size, m->host, &r);
		snprintf(what, sizeof(what), "new_ram(%s, %#" PRIx64 ")", m->name, size);
	} else if (kind == BM_REGION_CONTAINER) {
		rc = bm_region_new_container(H.sys, m->name, size, &r);
		snprintf(what, sizeof(what), "new_container(%s, %#" PRIx64 ")", m->name, size);
	} else {
		int t = rd_slot(in_u8(&H.in) % 8 == 0);
		if (t < 0 || t == n) {
			m->live = false;
			return;
		}
		const struct mnode *tm = &H.M.m[t];
		uint64_t aoff = in_u8(&H.in) % 4 == 0 ? in_u64(&H.in)
		                : tm->size == BM_SIZE_ALL || tm->size > H.W
		                    ? in_below(&H.in, H.W)
		                    : in_below(&H.in, tm->size + tm->size / 8 + 1);
		/* a window reaching past 2^64 in its target has no documented meaning */
		if (size && !model_fits(aoff, size))
			size = 1 + in_below(&H.in, H.W);
		m->size = size;
		m->target = t;
		m->alias_offset = aoff;
		rc = bm_region_new_alias(H.sys, m->name, tm->r, aoff, size, &r);
		snprintf(what, sizeof(what), "new_alias(%s -> %s+%#" PRIx64 ", %#" PRIx64 ")",
		         m->name, tm->name, aoff, size);
	}
	trace("%s = %d", what, rc);
	expect_rc(what, rc, size == 0 ? E_BIT(EINVAL) : 0);
	if (rc) {
		m->live = false;
		return;
	}
	CHECK(r != NULL, "%s succeeded without a region", what);
	m->r = r;
	check_attrs(n);
	CHECK(strcmp(bm_region_name(r), m->name) == 0, "%s: name not kept", what);
	if (kind == BM_REGION_IO)
		CHECK(bm_region_opaque(r) == (void *)m->id, "%s: opaque not kept", what);
}

/* Runs a mutator, with listeners allowed when it publishes by itself, and checks its
 * result against the errors errs the model allows. True if it succeeded. */
#define MUTATE(what, errs, call) mutated(what, errs, (H.notify_ok = H.depth == 0, (call)))

static bool mutated(const char *what, uint64_t errs, int rc)
{
	H.notify_ok = false;
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	return rc == 0;
}

static void op_add(void)
{
	int c = rd_slot_for(false, p_parentless);
	int p = in_u8(&H.in) % 3 == 0 ? rd_slot_for(true, p_container) : (int)(in_u8(&H.in) & 1);
	char what[160];

	if (c < 0 || p < 0)
		return;
	uint64_t off = rd_offset(p, H.M.m[c].size);
	int prio = rd_prio();
	uint64_t errs = model_add_errs(&H.M, p, c, off);
	snprintf(what, sizeof(what), "add(%s <- %s @%#" PRIx64 " prio %d)", H.M.m[p].name,
	         H.M.m[c].name, off, prio);
	if (MUTATE(what, errs, bm_region_add(H.M.m[p].r, H.M.m[c].r, off, prio))) {
		model_add(&H.M, p, c, off, prio);
		check_attrs(c);
	}
}

static void op_del(void)
{
	int n = rd_slot_for(false, p_parented);
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "del(%s)", H.M.m[n].name);
	uint64_t errs = model_del_errs(&H.M, n);
	if (MUTATE(what, errs, bm_region_del(H.M.m[n].r))) {
		model_del(&H.M, n);
		check_attrs(n);
	}
}

static void op_move(void)
{
	int n = rd_slot_for(false, p_parented);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &H.M.m[n];
	/* the same offset still makes the region the newest of its priority */
	uint64_t off = in_u8(&H.in) % 4 == 0 ? m->offset : rd_offset(m->parent, m->size);
	uint64_t errs = model_move_errs(&H.M, n, off);
	snprintf(what, sizeof(what), "move(%s @%#" PRIx64 ")", m->name, off);
	if (MUTATE(what, errs, bm_region_move(m->r, off))) {
		model_move(&H.M, n, off);
		check_attrs(n);
	}
}

/* A flag that any region takes, so that setting it never fails: enabled or exclusive. */
static void set_flag(int n, const char *name, int (*set)(bm_region *, bool), bool *flag, bool on)
{
	char what[64];

	snprintf(what, sizeof(what), "%s(%s, %d)", name, H.M.m[n].name, on);
	MUTATE(what, 0, set(H.M.m[n].r, on));
	*flag = on;
	check_attrs(n);
}

static void op_enable(void)
{
	/* the roots too, rarely: a disabled root leaves its space empty */
	int n = rd_slot(in_u8(&H.in) % 16 == 0);
	bool en = in_u8(&H.in) & 1;

	if (n >= 0)
		set_flag(n, "set_enabled", bm_region_set_enabled, &H.M.m[n].enabled, en);
}

static void op_priority(void)
{
	int n = rd_slot(false);
	int prio = rd_prio();
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "set_priority(%s, %d)", H.M.m[n].name, prio);
	MUTATE(what, 0, bm_region_set_priority(H.M.m[n].r, prio));
	H.M.m[n].priority = prio; /* not a move: the add-or-move order is kept */
	check_attrs(n);
}

static void op_resize(void)
{
	int n = rd_slot(false);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &H.M.m[n];
	uint64_t size = rd_size();
	if (in_u8(&H.in) % 8 == 0 && m->parent >= 0) /* the last size that fits, or one more */
		size = UINT64_MAX - m->offset + in_u8(&H.in) % 2;
	/* ram sizes stay within the buffer, which must cover the whole region */
	if (m->kind == BM_REGION_RAM && size > m->host_cap)
		size = 1 + size % m->host_cap;
	if (m->kind == BM_REGION_ALIAS && size && !model_fits(m->alias_offset, size))
		size = 1 + in_below(&H.in, H.W);
	uint64_t maybe;
	uint64_t errs = model_resize_errs(&H.M, n, size, &maybe);
	snprintf(what, sizeof(what), "resize(%s, %#" PRIx64 ")", m->name, size);
	if (m->kind == BM_REGION_RAM)
		ram_fill(n, size); /* bytes beyond the old end were never visible: no write there */
	H.notify_ok = H.depth == 0;
	int rc = bm_region_resize(m->r, size);
	if (mutated(what, maybe && rc == -ERANGE ? E_BIT(ERANGE) : errs, rc)) {
		m->size = size;
		check_attrs(n);
	}
}

static void op_alias_offset(void)
{
	int n = rd_slot_for(false, p_alias);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &H.M.m[n];
	uint64_t aoff = in_below(&H.in, H.W);
	if (m->kind == BM_REGION_ALIAS) {
		uint64_t ts = H.M.m[m->target].size;
		if (ts != BM_SIZE_ALL && ts <= H.W)
			aoff = in_below(&H.in, ts + ts / 8 + 1);
		if (!model_fits(aoff, m->size))
			aoff = 0;
	}
	snprintf(what, sizeof(what), "set_alias_offset(%s, %#" PRIx64 ")", m->name, aoff);
	uint64_t errs = model_alias_offset_errs(&H.M, n);
	if (MUTATE(what, errs, bm_region_set_alias_offset(m->r, aoff)))
		m->alias_offset = aoff;
}

static void op_exclusive(void)
{
	int n = rd_slot(false);
	bool ex = !(in_u8(&H.in) % 4 == 0);

	if (n >= 0)
		set_flag(n, "set_exclusive", bm_region_set_exclusive, &H.M.m[n].exclusive, ex);
}

static void op_destroy(void)
{
	int n = rd_slot(false);
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "destroy(%s)", H.M.m[n].name);
	uint64_t errs = model_destroy_errs(&H.M, n);
	if (MUTATE(what, errs, bm_region_destroy(H.M.m[n].r))) {
		model_destroy(&H.M, n);
		H.doomed[n] = H.depth > 0;
	}
}

static void op_begin(void)
{
	if (H.depth >= 6)
		return;
	int rc = bm_begin(H.sys);
	trace("begin = %d (depth %d)", rc, H.depth + 1);
	expect_rc("begin", rc, 0);
	H.depth++;
}

static void op_commit(void)
{
	H.notify_ok = H.depth <= 1;
	int rc = bm_commit(H.sys);
	H.notify_ok = false;
	trace("commit = %d (depth %d)", rc, H.depth);
	expect_rc("commit", rc, H.depth == 0 ? E_BIT(EPERM) : 0);
	if (H.depth > 0)
		H.depth--;
}

static void op_access(bool write)
{
	int s = in_u8(&H.in) & 1;
	unsigned size = rd_access_size();
	uint64_t addr = rd_addr(s);

	trace("%s%u(space %d, %#" PRIx64 ")", write ? "write" : "read", size, s, addr);
	if (write)
		check_write(s, addr, size, in_u64(&H.in));
	else
		check_read(s, addr, size);
}

static void op_synchronize(void)
{
	int rc = bm_synchronize(H.sys);
	trace("synchronize = %d", rc);
	expect_rc("synchronize", rc, H.depth ? E_BIT(EDEADLK) : 0);
}

/* Registration reports the whole published view as added, nothing as removed. */
static void listener_register(int s)
{
	struct lmirror *ls = &H.ls[s];

	ls->copy.n = 0;
	ls->calls = 0;
	ls->nremoved = ls->nadded = 0;
	H.notify_ok = true;
	int rc = bm_listener_add(H.space[s], listener_fn, ls, &ls->l);
	H.notify_ok = false;
	trace("listener_add(space %d) = %d", s, rc);
	CHECK(rc == 0, "bm_listener_add returned %d", rc);
	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	CHECK(ls->nremoved == 0 && ls->nadded == H.prev[s].n,
	      "space %d: registration reported %zu removed / %zu added, the view has %zu ranges", s,
	      ls->nremoved, ls->nadded, H.prev[s].n);
	CHECK(rvec_eq(&ls->copy, &H.prev[s]),
	      "space %d: registration did not report the published view", s);
	ls->nremoved = ls->nadded = 0;
}

static void listener_remove(int s)
{
	int rc = bm_listener_remove(H.ls[s].l);
	trace("listener_remove(space %d) = %d", s, rc);
	CHECK(rc == 0, "bm_listener_remove returned %d", rc);
	H.ls[s].l = NULL;
}

static void op_listener(void)
{
	int s = in_u8(&H.in) & 1;

	if (H.ls[s].l) {
		listener_remove(s);
		if (in_u8(&H.in) & 1)
			return; /* stay without a listener for a while */
	}
	listener_register(s);
}

static void op_conflict_ops(void)
{
	int s = in_u8(&H.in) & 1;
	struct cmirror *cs = &H.cs[s];
	bool on = !cs->on;

	int rc = bm_space_set_conflict_ops(H.space[s], on ? &conflict_ops : NULL, cs);
	trace("set_conflict_ops(space %d, %s) = %d", s, on ? "on" : "off", rc);
	expect_rc("bm_space_set_conflict_ops", rc, 0);
	cs->on = on;
	cs->copy.n = 0;
	/* events report changes from here on, starting from what is published */
	size_t nc = bm_space_conflicts(H.space[s], NULL, 0);
	if (on && nc) {
		struct bm_conflict *buf = calloc(nc, sizeof(*buf));
		if (!buf)
			abort();
		bm_space_conflicts(H.space[s], buf, nc);
		for (size_t i = 0; i < nc; i++)
			cvec_push(&cs->copy, &buf[i]);
		free(buf);
	}
}

/* An access on an offline QSBR thread reaches nothing; under memb offline means nothing. */
static void op_offline(void)
{
	int s = in_u8(&H.in) & 1;
	uint64_t addr = rd_addr(s), v = 0;

	int rc = bm_vcpu_offline(H.vcpu);
	expect_rc("bm_vcpu_offline", rc, 0);
	if (H.qsbr) {
		H.nlog = 0;
		rc = bm_read(H.vcpu, H.space[s], addr, 4, &v);
		trace("offline read4(space %d, %#" PRIx64 ") = %d", s, addr, rc);
		CHECK(rc == -EPERM && H.nlog == 0,
		      "an access on an offline thread returned %d with %u callbacks", rc, H.nlog);
		CHECK(H.cs[s].nacc == 0, "an access on an offline thread signalled a conflict");
	}
	rc = bm_vcpu_online(H.vcpu);
	expect_rc("bm_vcpu_online", rc, 0);
}

static int name_fn(void *arg, const struct bm_flat_range *r)
{
	uint64_t *nameless = arg;
	if (!bm_region_name(r->region) && *nameless == UINT64_MAX)
		*nameless = r->start;
	return 0;
}

/* The dumps read the tree and the published view, whatever state they are in. */
static void op_dump(void)
{
	static FILE *null;
	if (H.opts->no_dumps)
		return;
	if (!null && !(null = fopen("/dev/null", "w")))
		abort();
	for (int s = 0; s < 2; s++) {
		uint64_t nameless = UINT64_MAX;
		bm_space_flat(H.space[s], name_fn, &nameless);
		CHECK(nameless == UINT64_MAX,
		      "space %d: a published range at %#" PRIx64 " names a region without a name",
		      s, nameless);
		int a = bm_space_dump_mtree(H.space[s], null);
		int b = bm_space_dump_flat(H.space[s], null);
		int c = bm_space_dump_json(H.space[s], null);
		trace("dumps(space %d) = %d %d %d", s, a, b, c);
		CHECK(!a && !b && !c, "space %d: dumps returned %d %d %d", s, a, b, c);
	}
}

enum opcode {
	OP_NEW_IO,
	OP_NEW_RAM,
	OP_NEW_CONTAINER,
	OP_NEW_ALIAS,
	OP_DESTROY,
	OP_ADD,
	OP_DEL,
	OP_MOVE,
	OP_ENABLE,
	OP_PRIORITY,
	OP_RESIZE,
	OP_ALIAS_OFFSET,
	OP_EXCLUSIVE,
	OP_BEGIN,
	OP_COMMIT,
	OP_READ,
	OP_WRITE,
	OP_SYNCHRONIZE,
	OP_LISTENER,
	OP_CONFLICT_OPS,
	OP_OFFLINE,
	OP_DUMP,
	NOPS
};

static void run_op(enum opcode op)
{
	switch (op) {
	case OP_NEW_IO:
	case OP_NEW_RAM:
	case OP_NEW_CONTAINER:
	case OP_NEW_ALIAS:
		op_create((unsigned)op);
		break;
	case OP_DESTROY:
		op_destroy();
		break;
	case OP_ADD:
		op_add();
		break;
	case OP_DEL:
		op_del();
		break;
	case OP_MOVE:
		op_move();
		break;
	case OP_ENABLE:
		op_enable();
		break;
	case OP_PRIORITY:
		op_priority();
		break;
	case OP_RESIZE:
		op_resize();
		break;
	case OP_ALIAS_OFFSET:
		op_alias_offset();
		break;
	case OP_EXCLUSIVE:
		op_exclusive();
		break;
	case OP_BEGIN:
		op_begin();
		break;
	case OP_COMMIT:
		op_commit();
		break;
	case OP_READ:
	case OP_WRITE:
		op_access(op == OP_WRITE);
		break;
	case OP_SYNCHRONIZE:
		op_synchronize();
		break;
	case OP_LISTENER:
		op_listener();
		break;
	case OP_CONFLICT_OPS:
		op_conflict_ops();
		break;
	case OP_OFFLINE:
		op_offline();
		break;
	case OP_DUMP:
		op_dump();
		break;
	case NOPS:
		break;
	}
}

/* ------------------------------------------------------------------ one input */

static void setup(void)
{
	static const uint64_t windows[] = {0x40, 0x400, 0x10000, 0x100000000};
	/* model slots, the two roots included; unsorted because the seed corpus relies on
	 * where 8, 16 and 24 are */
	static const int maxns[] = {8, 36, 16, 24};
	uint8_t cfg = in_u8(&H.in);

	H.qsbr = cfg & 1;
	H.W = windows[(cfg >> 1) & 3];
	H.M.maxn = maxns[(cfg >> 3) & 3];
	H.prange = (cfg >> 5) & 3;
	H.ram_cap = H.W < 0x10000 ? RAM_MIN_CAP : 0x10000 + 8;
	trace("config: %s, window %#" PRIx64 ", %d slots, priorities %d..%d%s",
	      H.qsbr ? "qsbr" : "memb", H.W, H.M.maxn, -H.prange, H.prange,
	      cfg & 0x80 ? ", listeners" : "");
	int rc = bm_system_new_flavour(H.qsbr ? BM_RCU_QSBR : BM_RCU_MEMB, &H.sys);
	CHECK(rc == 0, "bm_system_new_flavour returned %d", rc);
	for (int s = 0; s < 2; s++) {
		char name[16];
		snprintf(name, sizeof(name), "root%d", s);
		rc = bm_space_new(H.sys, s ? "io" : "memory", name, &H.space[s]);
		CHECK(rc == 0, "bm_space_new returned %d", rc);
		model_init_root(&H.M, s, bm_space_root(H.space[s]), name);
		bm_region *root = H.M.m[s].r;
		CHECK(root && bm_region_size(root) == BM_SIZE_ALL &&
		          bm_region_kind(root) == BM_REGION_CONTAINER,
		      "space %d: the root is not a 2^64-byte container", s);
	}
	rc = bm_vcpu_new(H.sys, 0, NULL, &H.vcpu);
	CHECK(rc == 0, "bm_vcpu_new returned %d", rc);
	if (cfg & 0x80)
		for (int s = 0; s < 2; s++)
			listener_register(s);
	published();
}

/* Destroys region i at teardown, with callbacks allowed, and checks what it published. */
static void teardown_destroy(int i)
{
	H.notify_ok = true;
	int rc = bm_region_destroy(H.M.m[i].r);
	H.notify_ok = false;
	trace("destroy(%s) = %d", H.M.m[i].name, rc);
	CHECK(rc == 0, "destroy(%s) at teardown returned %d", H.M.m[i].name, rc);
	model_destroy(&H.M, i);
	published();
}

static void teardown(void)
{
	while (H.depth > 0)
		op_commit();
	published();

	uint8_t how = in_u8(&H.in);
	uint64_t which = in_u64(&H.in);
	trace("teardown: %s space 1, %s listeners, destroy slots %#" PRIx64 " first",
	      how & 1 ? "free" : "keep", how & 14 ? "remove some" : "keep the",
	      which ? which : UINT64_C(0xaaaaaaaaaaaaaaaa));

	/* Freeing a space detaches what it held; the other space must not notice unless it
	 * showed the freed root through an alias, which the model then no longer has. */
	if ((how & 1) && !model_targeted(&H.M, 1)) {
		if ((how & 2) && H.ls[1].l)
			listener_remove(1);
		H.in_teardown = H.notify_ok = true;
		int rc = bm_space_free(H.space[1]);
		H.in_teardown = H.notify_ok = false;
		trace("space_free(space 1) = %d", rc);
		CHECK(rc == 0, "bm_space_free returned %d", rc);
		H.space[1] = NULL;
		H.ls[1].l = NULL;
		H.cs[1].on = false;
		model_destroy(&H.M, 1);
		published();
	}
	for (int s = 0; s < 2; s++)
		if ((how & (4 << s)) && H.ls[s].l)
			listener_remove(s);
	/* some regions destroyed explicitly (with an exhausted input, the odd slots), the
	 * rest left to bm_system_free */
	for (int i = 2; i < H.M.maxn; i++)
		if (H.M.m[i].live && !model_targeted(&H.M, i) && (which ? which >> i & 1 : i & 1))
			teardown_destroy(i);

	struct bm_vcpu_stats st;
	bm_vcpu_stats(H.vcpu, &st);
	CHECK(st.accesses == H.dispatched && st.unassigned == H.unassigned &&
	          st.conflicts == H.conflicts && st.hint_hits <= st.accesses,
	      "vcpu stats: %" PRIu64 " accesses (%" PRIu64 " made), %" PRIu64
	      " unassigned (%" PRIu64 "), %" PRIu64 " conflicts (%" PRIu64 ")",
	      st.accesses, H.dispatched, st.unassigned, H.unassigned, st.conflicts, H.conflicts);
	CHECK(bm_vcpu_free(H.vcpu) == 0, "bm_vcpu_free failed");
	H.vcpu = NULL;
	H.in_teardown = H.notify_ok = true;
	int rc = bm_system_free(H.sys);
	H.in_teardown = H.notify_ok = false;
	CHECK(rc == 0, "bm_system_free returned %d", rc);
	H.sys = NULL;
	H.space[0] = H.space[1] = NULL;
}

static void release(void)
{
	for (int i = 0; i < MODEL_MAXN; i++)
		free(H.M.m[i].host);
	model_release(&H.M);
	model_release(&H.pub);
	for (int s = 0; s < 2; s++) {
		free(H.pconf[s].v);
		free(H.ls[s].copy.v);
		free(H.cs[s].copy.v);
		free(H.prev[s].v);
	}
	free(H.want.v);
	free(H.got.v);
	free(H.cgot.v);
	free(H.mem);
}

int harness_run(const uint8_t *data, size_t size, const struct harness_opts *opts,
                struct harness_stats *stats)
{
	/* Opcodes by the low 5 bits of their byte: the commonest operations twice or thrice. */
	static const enum opcode table[32] = {
	    OP_NEW_IO,       OP_NEW_IO,   OP_NEW_RAM, OP_NEW_CONTAINER, OP_NEW_CONTAINER,
	    OP_NEW_ALIAS,    OP_DESTROY,  OP_ADD,     OP_ADD,           OP_ADD,
	    OP_DUMP,         OP_DEL,      OP_MOVE,    OP_MOVE,          OP_MOVE,
	    OP_ENABLE,       OP_PRIORITY, OP_RESIZE,  OP_ALIAS_OFFSET,  OP_EXCLUSIVE,
	    OP_EXCLUSIVE,    OP_BEGIN,    OP_COMMIT,  OP_COMMIT,        OP_READ,
	    OP_READ,         OP_WRITE,    OP_WRITE,   OP_SYNCHRONIZE,   OP_LISTENER,
	    OP_CONFLICT_OPS, OP_OFFLINE,
	};
	int ret = 0;

	memset(&H, 0, sizeof(H));
	H.in = (struct fz_input){data, size};
	H.opts = opts;
	H.chk = opts->check_seed;
	if (setjmp(H.fail_jmp)) {
		ret = -1;
		goto out;
	}
	setup();
	for (H.op = 1; !in_empty(&H.in) && H.op <= opts->max_ops; H.op++) {
		H.op_byte = (size_t)(H.in.p - data);
		uint8_t code = in_u8(&H.in);
		H.aimed = code >> 5 != 0;
		run_op(table[code % 32]);
		if (H.depth == 0)
			published();
		else
			unpublished();
		if (H.qsbr)
			CHECK(bm_vcpu_quiescent(H.vcpu) == 0, "bm_vcpu_quiescent failed");
	}
	H.op_byte = (size_t)(H.in.p - data);
	teardown();
	release();
out:
	if (stats)
		*stats =
		    (struct harness_stats){H.op ? H.op - 1 : 0, H.ok_calls, H.checks, H.dispatched};
	return ret;
}
