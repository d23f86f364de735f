/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-core: any bytes become a sequence of address-space operations, applied both to the
 * library and to the reference model (tests/model). After every publication each space's
 * view, conflicts, listener and conflict events, and dispatch at the edges of every range
 * must be what the model says; every call must return what region.h documents for the
 * model's state; every access the input asks for must return the model's flags and value,
 * and reach callbacks only as region.h promises them (implemented sizes, aligned, inside
 * the region). Anything else aborts with a report.
 *
 * The first byte configures the run (RCU flavour, how wide the interesting window is, how
 * many regions, the priority range); every following opcode takes its arguments from the
 * bytes after it. FUZZ_TRACE=1 prints every operation; FUZZ_NO_DUMPS=1 leaves out the
 * dumps, to explore past a failure in them.
 */
#include "fuzz_input.h"
#include "model/model.h"

#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS  400
#define LOG_MAX  64
#define RAM_CAP  (0x1000 + 8)
#define TRACE_N  48
#define CHECK_RG 12 /* ranges whose edges are dispatched to after each publication */

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
	struct rvec copy;
	unsigned long calls;
	char bad[256];
};

struct cmirror {
	bool on;
	struct cvec copy;
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
	struct model M;   /* the tree as changed so far */
	struct model pub; /* the tree as last published: what dispatch must follow */
	bm_system *sys;
	bm_space *space[2];
	bm_vcpu *vcpu;
	bool qsbr;
	uint64_t W;
	int prange;
	int depth;
	bool null_ops[MODEL_MAXN];
	bool doomed[MODEL_MAXN]; /* destroyed in the open transaction: slot not reusable yet */
	bool notify_ok;
	struct lmirror ls[2];
	struct cmirror cs[2];
	struct rvec prev[2];
	uint64_t gen[2];
	struct rvec want, got;
	struct cvec cwant, cgot, csorted;
	struct cvec pconf[2]; /* conflicts of the published model */
	struct logent log[LOG_MAX];
	unsigned nlog;
	struct memslot *mem;
	size_t nmem, memcap;
	char cb_bad[256];
	uint64_t dispatched, unassigned, conflicts;
	unsigned long op;
	char trace[TRACE_N][160];
	unsigned long ntrace;
	bool trace_all;
	bool no_dumps;
} F;

/* ------------------------------------------------------------------ reports */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;
	char *slot = F.trace[F.ntrace++ % TRACE_N];

	va_start(ap, fmt);
	vsnprintf(slot, sizeof(F.trace[0]), fmt, ap);
	va_end(ap);
	if (F.trace_all)
		fprintf(stderr, "  %s\n", slot);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz-core: op %lu: ", F.op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s flavour, window %#" PRIx64 ", depth %d; last operations:\n",
	        F.qsbr ? "qsbr" : "memb", F.W, F.depth);
	unsigned long first = F.ntrace > TRACE_N ? F.ntrace - TRACE_N : 0;
	for (unsigned long i = first; i < F.ntrace; i++)
		fprintf(stderr, "  %s\n", F.trace[i % TRACE_N]);
	fprintf(stderr, "model:\n");
	model_dump(&F.M, stderr);
	for (int s = 0; s < 2; s++) {
		char title[64];
		model_build_kids(&F.M);
		model_view(&F.M, s, &F.want, NULL, &F.cwant);
		snprintf(title, sizeof(title), "space %d, model", s);
		model_print_rvec(&F.M, stderr, title, &F.want);
		model_print_cvec(&F.M, stderr, title, &F.cwant);
		snprintf(title, sizeof(title), "space %d, published at the last check", s);
		model_print_rvec(&F.M, stderr, title, &F.prev[s]);
	}
	abort();
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__VA_ARGS__);                                                         \
	} while (0)

static const char *rname(const bm_region *r)
{
	return model_rname(&F.M, r);
}

/* ------------------------------------------------------------------ callbacks */

static void cb_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cb_bad(const char *fmt, ...)
{
	va_list ap;

	if (F.cb_bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(F.cb_bad, sizeof(F.cb_bad), fmt, ap);
	va_end(ap);
}

/* The published slot of an io region's opaque id, or -1. */
static int pub_slot_of_id(uintptr_t id)
{
	for (int i = 0; i < F.pub.maxn; i++)
		if (F.pub.m[i].live && F.pub.m[i].kind == BM_REGION_IO && F.pub.m[i].id == id)
			return i;
	return -1;
}

/* What region.h promises every callback: an implemented size, aligned, inside the region. */
static void log_access(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, bool write,
                       uint64_t value)
{
	uintptr_t id = (uintptr_t)opaque;
	int n = pub_slot_of_id(id);

	if (vcpu != F.vcpu)
		cb_bad("callback got another vcpu than the dispatching one");
	if (n < 0) {
		cb_bad("callback of io region id %" PRIuPTR ", which the published view lacks", id);
		return;
	}
	const struct mnode *m = &F.pub.m[n];
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
	if (F.nlog == LOG_MAX) {
		cb_bad("more than %d callbacks for one access", LOG_MAX);
		return;
	}
	F.log[F.nlog++] = (struct logent){id, off, size, write, value, {0}};
}

static size_t mem_hash(uintptr_t id, uint64_t off)
{
	return (size_t)((id * 0x9e3779b97f4a7c15u ^ off * 0xc2b2ae3d27d4eb4fu) >> 20) &
	       (F.memcap - 1);
}

static struct memslot *mem_find(uintptr_t id, uint64_t off)
{
	if (!F.memcap)
		return NULL;
	for (size_t h = mem_hash(id, off);; h = (h + 1) & (F.memcap - 1)) {
		struct memslot *m = &F.mem[h];
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
	if (2 * (F.nmem + 1) > F.memcap) {
		struct memslot *old = F.mem;
		size_t cap = F.memcap;
		F.memcap = cap ? 2 * cap : 1024;
		F.mem = calloc(F.memcap, sizeof(*F.mem));
		if (!F.mem)
			abort();
		for (size_t i = 0; i < cap; i++)
			if (old[i].id)
				*mem_find(old[i].id, old[i].off) = old[i];
		free(old);
	}
	struct memslot *m = mem_find(id, off);
	if (!m->id)
		F.nmem++;
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
	unsigned k = F.nlog;
	log_access(opaque, vcpu, off, size, true, value);
	for (unsigned i = 0; i < size && i < 8; i++) {
		if (k < F.nlog)
			F.log[k].old[i] = mem_get(id, off + i);
		mem_set(id, off + i, (uint8_t)(value >> (8 * i)));
	}
	return 0;
}

static void mutate_from_callback(char *bad, size_t len, const char *who)
{
	/* The root is never an operand, so an accepted call would not touch freed memory;
	 * the contract says it must be refused. */
	int rc = bm_region_set_priority(bm_space_root(F.space[0]), 0);
	if (rc != -EDEADLK && !bad[0])
		snprintf(bad, len, "bm_region_set_priority from %s returned %d, not -EDEADLK", who,
		         rc);
	rc = bm_synchronize(F.sys);
	if (rc != -EDEADLK && !bad[0])
		snprintf(bad, len, "bm_synchronize from %s returned %d, not -EDEADLK", who, rc);
}

static void listener_fn(void *arg, bm_space *space, const struct bm_flat_range *removed,
                        size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	struct lmirror *ls = arg;
	int s = ls == &F.ls[0] ? 0 : 1;

	ls->calls++;
	if (space != F.space[s] && !ls->bad[0])
		snprintf(ls->bad, sizeof(ls->bad), "listener called with another space");
	if (!F.notify_ok && !ls->bad[0])
		snprintf(ls->bad, sizeof(ls->bad),
		         "listener called outside an outermost commit or registration");
	if ((nremoved && !removed) || (nadded && !added)) {
		if (!ls->bad[0])
			snprintf(ls->bad, sizeof(ls->bad), "NULL event array with a nonzero count");
		return;
	}
	if (ls->calls % 4 == 0)
		mutate_from_callback(ls->bad, sizeof(ls->bad), "a listener");
	model_listener_apply(&F.M, &ls->copy, removed, nremoved, added, nadded, ls->bad,
	                     sizeof(ls->bad), "");
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
	int s = cs == &F.cs[0] ? 0 : 1;

	cs->events++;
	if (space != F.space[s] && !cs->bad[0])
		snprintf(cs->bad, sizeof(cs->bad), "on_change called with another space");
	if (!F.notify_ok && !cs->bad[0])
		snprintf(cs->bad, sizeof(cs->bad), "on_change called outside an outermost commit");
	if (cs->events % 4 == 0)
		mutate_from_callback(cs->bad, sizeof(cs->bad), "on_change");
	long k = cvec_find(&cs->copy, c);
	if (added && k >= 0 && !cs->bad[0])
		snprintf(cs->bad, sizeof(cs->bad),
		         "conflict [%#" PRIx64 ", %#" PRIx64 "] %s/%s added twice", c->start,
		         c->last, rname(c->winner), rname(c->loser));
	else if (!added && k < 0 && !cs->bad[0])
		snprintf(cs->bad, sizeof(cs->bad),
		         "conflict [%#" PRIx64 ", %#" PRIx64 "] %s/%s removed, never added",
		         c->start, c->last, rname(c->winner), rname(c->loser));
	if (added)
		cvec_push(&cs->copy, c);
	else if (k >= 0)
		cs->copy.v[k] = cs->copy.v[--cs->copy.n];
}

static void on_access(void *arg, bm_space *space, bm_vcpu *vcpu, uint64_t addr, unsigned size,
                      bool is_write)
{
	struct cmirror *cs = arg;

	if (vcpu != F.vcpu && !cs->bad[0])
		snprintf(cs->bad, sizeof(cs->bad), "on_access got another vcpu");
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
	int node; /* slot in F.pub, -1 unassigned */
	uint64_t off;
};

static int expect_bytes(int s, uint64_t addr, unsigned size, struct byte_want *b, bool *refused)
{
	const struct cvec *conf = &F.pconf[s];
	int flags = 0;

	*refused = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = addr + i;
		b[i] = (struct byte_want){-1, 0};
		if (a < addr || !model_lookup(&F.pub, s, a, &b[i].node, &b[i].off)) {
			b[i].node = -1;
			flags |= BM_ACCESS_UNASSIGNED;
		}
		if (a >= addr && model_in_conflict(conf, a))
			flags |= BM_ACCESS_CONFLICT;
		if (b[i].node >= 0 && F.pub.m[b[i].node].kind == BM_REGION_IO &&
		    !(F.pub.m[b[i].node].valid_sizes & size))
			*refused = true;
	}
	return flags;
}

static void check_signal(int s, int flags, uint64_t addr, unsigned size, bool write)
{
	struct cmirror *cs = &F.cs[s];
	bool want = cs->on && (flags & BM_ACCESS_CONFLICT);

	CHECK(!cs->bad[0], "space %d conflict callbacks: %s", s, cs->bad);
	CHECK(cs->nacc == (want ? 1u : 0u),
	      "space %d %s%u at %#" PRIx64 ": %u on_access calls, expected %d", s,
	      write ? "write" : "read", size, addr, cs->nacc, want);
	if (want)
		CHECK(cs->acc_space == F.space[s] && cs->acc_addr == addr && cs->acc_size == size &&
		          cs->acc_write == write,
		      "space %d: on_access got the wrong access (%#" PRIx64 "/%u/%d)", s,
		      cs->acc_addr, cs->acc_size, cs->acc_write);
	cs->nacc = 0;
}

static void count(int rc)
{
	F.dispatched++;
	if (rc > 0 && (rc & BM_ACCESS_UNASSIGNED))
		F.unassigned++;
	if (rc > 0 && (rc & BM_ACCESS_CONFLICT))
		F.conflicts++;
}

static void check_read(int s, uint64_t addr, unsigned size)
{
	struct byte_want b[8];
	bool refused;
	int want_rc = expect_bytes(s, addr, size, b, &refused);
	uint64_t value = 0x0123456789abcdefu, want = 0;

	F.nlog = 0;
	int rc = bm_read(F.vcpu, F.space[s], addr, size, &value);
	count(rc);
	trace("  read%u(space %d, %#" PRIx64 ") = %d, %#" PRIx64, size, s, addr, rc, value);
	CHECK(!F.cb_bad[0], "space %d read%u at %#" PRIx64 ": %s", s, size, addr, F.cb_bad);
	if (refused) {
		uint64_t ones = size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
		CHECK(rc == -EOPNOTSUPP && F.nlog == 0 && value == ones,
		      "space %d read%u at %#" PRIx64
		      " reaches a region that refuses the size: got %d, %u callbacks, %#" PRIx64,
		      s, size, addr, rc, F.nlog, value);
		check_signal(s, 0, addr, size, false);
		return;
	}
	for (unsigned i = 0; i < size; i++) {
		uint8_t byte = 0xff;
		if (b[i].node >= 0) {
			const struct mnode *m = &F.pub.m[b[i].node];
			if (m->kind == BM_REGION_RAM) {
				byte = model_ram_byte(m->id, b[i].off);
			} else if (!F.null_ops[b[i].node] && io_reachable(m, b[i].off)) {
				byte = mem_get(m->id, b[i].off);
				bool found = false;
				for (unsigned k = 0; k < F.nlog && !found; k++)
					found = F.log[k].id == m->id && !F.log[k].write &&
					        F.log[k].offset <= b[i].off &&
					        b[i].off - F.log[k].offset < F.log[k].size;
				CHECK(found,
				      "space %d read%u at %#" PRIx64 ": byte %u (%s+%#" PRIx64
				      ") read by no callback",
				      s, size, addr, i, m->name, b[i].off);
			}
		}
		want |= (uint64_t)byte << (8 * i);
	}
	for (unsigned k = 0; k < F.nlog; k++) {
		bool mine = false;
		for (unsigned i = 0; i < size && !mine; i++)
			mine = b[i].node >= 0 && F.pub.m[b[i].node].id == F.log[k].id &&
			       F.log[k].offset <= b[i].off &&
			       b[i].off - F.log[k].offset < F.log[k].size;
		CHECK(mine && !F.log[k].write,
		      "space %d read%u at %#" PRIx64 ": a %s callback at %#" PRIx64
		      " size %u covers none of the bytes",
		      s, size, addr, F.log[k].write ? "write" : "read", F.log[k].offset,
		      F.log[k].size);
	}
	CHECK(rc == want_rc && value == want,
	      "space %d read%u at %#" PRIx64 " returned %d, %#" PRIx64 "; model: %d, %#" PRIx64, s,
	      size, addr, rc, value, want_rc, want);
	check_signal(s, rc, addr, size, false);
}

/* The first value a write callback of this access found at (id, off), if any wrote it. */
static bool old_byte(uintptr_t id, uint64_t off, uint8_t *v)
{
	for (unsigned k = 0; k < F.nlog; k++) {
		const struct logent *e = &F.log[k];
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
		const struct mnode *m = b[i].node >= 0 ? &F.pub.m[b[i].node] : NULL;
		if (!m || m->kind != BM_REGION_IO || F.null_ops[b[i].node] ||
		    !io_reachable(m, b[i].off))
			continue;
		unsigned k = 0;
		while (k < nwant && !(want[k].id == m->id && want[k].off == b[i].off))
			k++;
		want[k].id = m->id;
		want[k].off = b[i].off;
		want[k].v = (uint8_t)(value >> (8 * i));
		nwant += k == nwant;
	}
	F.nlog = 0;
	int rc = bm_write(F.vcpu, F.space[s], addr, size, value);
	count(rc);
	trace("  write%u(space %d, %#" PRIx64 ", %#" PRIx64 ") = %d", size, s, addr, value, rc);
	CHECK(!F.cb_bad[0], "space %d write%u at %#" PRIx64 ": %s", s, size, addr, F.cb_bad);
	if (refused) {
		CHECK(rc == -EOPNOTSUPP && F.nlog == 0,
		      "space %d write%u at %#" PRIx64
		      " reaches a region that refuses the size: got %d, %u callbacks",
		      s, size, addr, rc, F.nlog);
		for (unsigned i = 0; i < size; i++) {
			const struct mnode *m = b[i].node >= 0 ? &F.pub.m[b[i].node] : NULL;
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
	for (unsigned k = 0; k < F.nlog; k++) {
		const struct logent *e = &F.log[k];
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
		const struct mnode *m = &F.pub.m[b[i].node];
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
		if (F.null_ops[b[i].node] || !io_reachable(m, b[i].off))
			continue;
		bool found = false;
		for (unsigned k = 0; k < F.nlog && !found; k++)
			found = F.log[k].write && F.log[k].id == m->id &&
			        F.log[k].offset <= b[i].off &&
			        b[i].off - F.log[k].offset < F.log[k].size;
		CHECK(found,
		      "space %d write%u at %#" PRIx64 ": byte %u (%s+%#" PRIx64
		      ") written by no callback",
		      s, size, addr, i, m->name, b[i].off);
	}
	/* ram goes back to its pattern, so later reads still tell where they landed */
	for (unsigned i = 0; i < size; i++) {
		const struct mnode *m = b[i].node >= 0 ? &F.pub.m[b[i].node] : NULL;
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
		if (i == 0)
			continue;
		const struct bm_flat_range *p = &got->v[i - 1];
		CHECK(p->last < r->start,
		      "space %d: ranges at %#" PRIx64 " and %#" PRIx64 " are unsorted or overlap",
		      s, p->start, r->start);
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

static int cmp_conflict(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
#define CMP(f)                                                                                     \
	if (a->f != b->f)                                                                          \
		return a->f < b->f ? -1 : 1;
	CMP(start)
	CMP(last)
	if (a->winner != b->winner)
		return (uintptr_t)a->winner < (uintptr_t)b->winner ? -1 : 1;
	if (a->loser != b->loser)
		return (uintptr_t)a->loser < (uintptr_t)b->loser ? -1 : 1;
	return 0;
#undef CMP
}

static bool cvec_same_set(const struct cvec *a, const struct cvec *b)
{
	if (a->n != b->n)
		return false;
	if (a->n == 0)
		return true;
	F.csorted.n = 0;
	for (size_t i = 0; i < a->n; i++)
		cvec_push(&F.csorted, &a->v[i]);
	struct cvec tmp = {0};
	for (size_t i = 0; i < b->n; i++)
		cvec_push(&tmp, &b->v[i]);
	qsort(F.csorted.v, F.csorted.n, sizeof(*F.csorted.v), cmp_conflict);
	qsort(tmp.v, tmp.n, sizeof(*tmp.v), cmp_conflict);
	bool same = true;
	for (size_t i = 0; i < a->n && same; i++)
		same = conflict_eq(&F.csorted.v[i], &tmp.v[i]);
	free(tmp.v);
	return same;
}

static void check_space(int s)
{
	struct rvec *want = &F.want, *got = &F.got;
	struct lmirror *ls = &F.ls[s];
	struct cmirror *cs = &F.cs[s];

	model_view(&F.M, s, want, NULL, &F.cwant);
	got->n = 0;
	uint64_t gen = bm_space_flat(F.space[s], collect_fn, got);
	check_view_shape(s, got);
	if (!rvec_eq(want, got)) {
		model_print_rvec(&F.M, stderr, "library view", got);
		fail("space %d: published view differs from the model", s);
	}
	bool changed = !rvec_eq(got, &F.prev[s]);
	CHECK(gen >= F.gen[s] && (!changed || gen > F.gen[s]),
	      "space %d: generation went from %" PRIu64 " to %" PRIu64 " (view %s)", s, F.gen[s],
	      gen, changed ? "changed" : "unchanged");

	size_t nc = bm_space_conflicts(F.space[s], NULL, 0);
	F.cgot.n = 0;
	if (nc) {
		struct bm_conflict *buf = calloc(nc, sizeof(*buf));
		if (!buf)
			abort();
		size_t n2 = bm_space_conflicts(F.space[s], buf, nc);
		CHECK(n2 == nc, "space %d: conflict count changed between two calls", s);
		for (size_t i = 0; i < nc; i++)
			cvec_push(&F.cgot, &buf[i]);
		free(buf);
	}
	bool csame = F.cgot.n == F.cwant.n;
	for (size_t i = 0; csame && i < F.cgot.n; i++)
		csame = conflict_eq(&F.cgot.v[i], &F.cwant.v[i]);
	if (!csame) {
		model_print_cvec(&F.M, stderr, "library conflicts", &F.cgot);
		fail("space %d: conflicts differ from the model", s);
	}

	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	if (ls->l && !rvec_eq(&ls->copy, got)) {
		model_print_rvec(&F.M, stderr, "listener copy", &ls->copy);
		fail("space %d: view rebuilt from listener events differs from bm_space_flat", s);
	}
	CHECK(!cs->bad[0], "space %d conflict callbacks: %s", s, cs->bad);
	if (cs->on && !cvec_same_set(&cs->copy, &F.cgot)) {
		model_print_cvec(&F.M, stderr, "conflicts rebuilt from on_change", &cs->copy);
		fail("space %d: conflicts rebuilt from on_change differ from bm_space_conflicts",
		     s);
	}
	rvec_copy(&F.prev[s], got);
	F.gen[s] = gen;
}

/* After a publication the published model is the model. */
static void published(void)
{
	model_build_kids(&F.M);
	model_release(&F.pub);
	F.pub = F.M;
	F.pub.bps = (struct u64vec){0};
	F.pub.raw = (struct cvec){0};
	uint64_t before[2] = {F.gen[0], F.gen[1]};
	for (int s = 0; s < 2; s++) {
		check_space(s);
		model_conflicts(&F.pub, s, &F.pconf[s]);
	}
	/* dispatch at the edges of the first ranges, both sides, of each new view */
	for (int s = 0; s < 2; s++) {
		if (F.gen[s] == before[s] && F.op > 0)
			continue;
		size_t n = F.prev[s].n < CHECK_RG ? F.prev[s].n : CHECK_RG;
		for (size_t i = 0; i < n; i++) {
			const struct bm_flat_range *r = &F.prev[s].v[i];
			check_read(s, r->start, 1);
			check_read(s, r->last, 1);
			check_read(s, r->start - 1, 1);
			check_read(s, r->last + 1, 1);
			check_read(s, r->last - 3, 8);
		}
	}
	memset(F.doomed, 0, sizeof(F.doomed));
}

/* Inside a transaction nothing is published. */
static void unpublished(void)
{
	for (int s = 0; s < 2; s++) {
		F.got.n = 0;
		uint64_t gen = bm_space_flat(F.space[s], collect_fn, &F.got);
		CHECK(gen == F.gen[s] && rvec_eq(&F.got, &F.prev[s]),
		      "space %d: view changed (gen %" PRIu64 " -> %" PRIu64
		      ") inside an open transaction",
		      s, F.gen[s], gen);
		CHECK(!F.ls[s].bad[0], "space %d listener: %s", s, F.ls[s].bad);
		CHECK(!F.cs[s].bad[0], "space %d conflict callbacks: %s", s, F.cs[s].bad);
	}
}

/* ------------------------------------------------------------------ arguments */

static int rd_slot(bool roots)
{
	int n = (int)in_below(&F.in, (uint64_t)F.M.maxn);
	if (!roots && n < 2)
		n += 2;
	for (int k = 0; k < F.M.maxn; k++) {
		int i = (n + k) % F.M.maxn;
		if (F.M.m[i].live && (roots || i >= 2))
			return i;
	}
	return -1;
}

static uint64_t rd_size(void)
{
	switch (in_u8(&F.in) % 16) {
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
		return UINT64_C(1) << (in_u8(&F.in) % 64);
	case 7:
		return in_u64(&F.in);
	case 8:
	case 9:
		return 1 + in_below(&F.in, F.W / 8 + 1);
	default:
		return 1 + in_below(&F.in, F.W);
	}
}

static uint64_t rd_offset(int p, uint64_t size)
{
	switch (in_u8(&F.in) % 10) {
	case 0:
		/* around the highest offset that fits: -ERANGE one byte later */
		return UINT64_MAX - model_last_rel(size) + in_u8(&F.in) % 5 - 2;
	case 1:
	case 2: {
		int o = rd_slot(false);
		if (o < 0)
			return 0;
		const struct mnode *m = &F.M.m[o];
		switch (in_u8(&F.in) % 3) {
		case 0:
			return m->offset;
		case 1:
			return m->offset + m->size;
		default:
			return m->offset - size;
		}
	}
	case 3:
		return in_u64(&F.in);
	default: {
		uint64_t ps = p >= 0 ? F.M.m[p].size : BM_SIZE_ALL;
		uint64_t lim = ps == BM_SIZE_ALL || ps > F.W ? F.W : ps + ps / 4 + 1;
		return in_below(&F.in, lim);
	}
	}
}

static uint64_t rd_addr(int s)
{
	switch (in_u8(&F.in) % 8) {
	case 0:
		return UINT64_MAX - in_below(&F.in, F.W);
	case 1:
		return in_u64(&F.in);
	case 2:
	case 3:
	case 4:
		if (F.prev[s].n) {
			const struct bm_flat_range *r = &F.prev[s].v[in_below(&F.in, F.prev[s].n)];
			int d = (int)(in_u8(&F.in) % 17) - 8;
			return (in_u8(&F.in) & 1 ? r->last : r->start) + (uint64_t)(int64_t)d;
		}
		return 0;
	default:
		return in_below(&F.in, F.W + F.W / 2);
	}
}

static int rd_prio(void)
{
	uint8_t b = in_u8(&F.in);
	if (b == 0xff)
		return INT_MAX;
	if (b == 0xfe)
		return INT_MIN;
	return (int)(b % (unsigned)(2 * F.prange + 1)) - F.prange;
}

static unsigned rd_access_size(void)
{
	return 1u << (in_u8(&F.in) % 4);
}

/* ------------------------------------------------------------------ operations */

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
	CHECK(!F.cb_bad[0], "%s", F.cb_bad);
}

static void check_attrs(int n)
{
	const struct mnode *m = &F.M.m[n];
	bm_region *parent = m->parent >= 0 ? F.M.m[m->parent].r : NULL;

	CHECK(bm_region_size(m->r) == m->size && bm_region_parent(m->r) == parent &&
	          bm_region_enabled(m->r) == m->enabled && bm_region_kind(m->r) == m->kind &&
	          bm_region_exclusive(m->r) == m->exclusive,
	      "%s: accessors disagree with the model", m->name);
	if (m->parent >= 0)
		CHECK(bm_region_offset(m->r) == m->offset &&
		          bm_region_priority(m->r) == m->priority,
		      "%s: offset %#" PRIx64 " prio %d, model %#" PRIx64 " %d", m->name,
		      bm_region_offset(m->r), bm_region_priority(m->r), m->offset, m->priority);
}

static int free_slot(void)
{
	for (int i = 2; i < F.M.maxn; i++)
		if (!F.M.m[i].live && !F.doomed[i])
			return i;
	return -1;
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
	model_init_node(&F.M, n, kind == 3 ? BM_REGION_ALIAS : (enum bm_region_kind)kind, size);
	struct mnode *m = &F.M.m[n];
	F.null_ops[n] = false;
	if (kind == BM_REGION_IO) {
		struct bm_region_ops ops = io_ops_tmpl;
		uint8_t b = in_u8(&F.in);
		ops.valid_sizes = b & 0xf;
		ops.impl_sizes = b >> 4;
		if (in_u8(&F.in) % 8 == 0) {
			ops.read = NULL;
			ops.write = NULL;
			F.null_ops[n] = true;
		}
		m->valid_sizes = ops.valid_sizes ? ops.valid_sizes : BM_ACCESS_ALL;
		m->impl_sizes = ops.impl_sizes ? ops.impl_sizes : m->valid_sizes;
		rc = bm_region_new_io(F.sys, m->name, size, &ops, (void *)m->id, &r);
		snprintf(what, sizeof(what), "new_io(%s, %#" PRIx64 ", valid %#x impl %#x%s)",
		         m->name, size, ops.valid_sizes, ops.impl_sizes,
		         F.null_ops[n] ? ", no callbacks" : "");
	} else if (kind == BM_REGION_RAM) {
		if (size == 0 || size == BM_SIZE_ALL || size > RAM_CAP)
			size = size ? 1 + size % RAM_CAP : 0;
		m->size = size;
		if (!m->host) {
			m->host = malloc(RAM_CAP);
			if (!m->host)
				abort();
			m->host_cap = RAM_CAP;
		}
		for (uint64_t i = 0; i < m->host_cap; i++)
			m->host[i] = model_ram_byte(m->id, i);
		rc = bm_region_new_ram(F.sys, m->name, size, m->host, &r);
		snprintf(what, sizeof(what), "new_ram(%s, %#" PRIx64 ")", m->name, size);
	} else if (kind == BM_REGION_CONTAINER) {
		rc = bm_region_new_container(F.sys, m->name, size, &r);
		snprintf(what, sizeof(what), "new_container(%s, %#" PRIx64 ")", m->name, size);
	} else {
		int t = rd_slot(in_u8(&F.in) % 8 == 0);
		if (t < 0 || t == n) {
			m->live = false;
			return;
		}
		const struct mnode *tm = &F.M.m[t];
		uint64_t aoff = in_u8(&F.in) % 4 == 0 ? in_u64(&F.in)
		                : tm->size == BM_SIZE_ALL || tm->size > F.W
		                    ? in_below(&F.in, F.W)
		                    : in_below(&F.in, tm->size + tm->size / 8 + 1);
		/* a window reaching past 2^64 in its target has no documented meaning */
		if (size && !model_fits(aoff, size))
			size = 1 + in_below(&F.in, F.W);
		m->size = size;
		m->target = t;
		m->alias_offset = aoff;
		rc = bm_region_new_alias(F.sys, m->name, tm->r, aoff, size, &r);
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
}

/* Runs a mutator, with listeners allowed when it publishes by itself. */
#define MUTATE(rc, call)                                                                           \
	do {                                                                                       \
		F.notify_ok = F.depth == 0;                                                        \
		rc = (call);                                                                       \
		F.notify_ok = false;                                                               \
	} while (0)

static void op_add(void)
{
	int c = rd_slot(false);
	int p = in_u8(&F.in) % 3 == 0 ? rd_slot(true) : (int)(in_u8(&F.in) & 1);
	char what[160];

	if (c < 0 || p < 0)
		return;
	uint64_t off = rd_offset(p, F.M.m[c].size);
	int prio = rd_prio();
	uint64_t errs = model_add_errs(&F.M, p, c, off);
	snprintf(what, sizeof(what), "add(%s <- %s @%#" PRIx64 " prio %d)", F.M.m[p].name,
	         F.M.m[c].name, off, prio);
	int rc;
	MUTATE(rc, bm_region_add(F.M.m[p].r, F.M.m[c].r, off, prio));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_add(&F.M, p, c, off, prio);
		check_attrs(c);
	}
}

static void op_del(void)
{
	int n = rd_slot(false);
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "del(%s)", F.M.m[n].name);
	uint64_t errs = model_del_errs(&F.M, n);
	int rc;
	MUTATE(rc, bm_region_del(F.M.m[n].r));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_del(&F.M, n);
		check_attrs(n);
	}
}

static void op_move(void)
{
	int n = rd_slot(false);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &F.M.m[n];
	uint64_t off = in_u8(&F.in) % 4 == 0 ? m->offset : rd_offset(m->parent, m->size);
	uint64_t errs = model_move_errs(&F.M, n, off);
	snprintf(what, sizeof(what), "move(%s @%#" PRIx64 ")", m->name, off);
	int rc;
	MUTATE(rc, bm_region_move(m->r, off));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_move(&F.M, n, off);
		check_attrs(n);
	}
}

static void op_enable(void)
{
	int n = rd_slot(in_u8(&F.in) % 16 == 0);
	bool en = in_u8(&F.in) & 1;
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "set_enabled(%s, %d)", F.M.m[n].name, en);
	int rc;
	MUTATE(rc, bm_region_set_enabled(F.M.m[n].r, en));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, 0);
	F.M.m[n].enabled = en;
	check_attrs(n);
}

static void op_priority(void)
{
	int n = rd_slot(false);
	int prio = rd_prio();
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "set_priority(%s, %d)", F.M.m[n].name, prio);
	int rc;
	MUTATE(rc, bm_region_set_priority(F.M.m[n].r, prio));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, 0);
	F.M.m[n].priority = prio; /* not a move: the add-or-move order is kept */
	check_attrs(n);
}

static void op_resize(void)
{
	int n = rd_slot(false);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &F.M.m[n];
	uint64_t size = rd_size();
	if (in_u8(&F.in) % 8 == 0 && m->parent >= 0) /* the last size that fits, or one more */
		size = UINT64_MAX - m->offset + in_u8(&F.in) % 2;
	if (m->kind == BM_REGION_RAM && size > m->host_cap)
		size = 1 + size % m->host_cap;
	if (m->kind == BM_REGION_ALIAS && size && !model_fits(m->alias_offset, size))
		size = 1 + in_below(&F.in, F.W);
	uint64_t maybe;
	uint64_t errs = model_resize_errs(&F.M, n, size, &maybe);
	snprintf(what, sizeof(what), "resize(%s, %#" PRIx64 ")", m->name, size);
	int rc;
	MUTATE(rc, bm_region_resize(m->r, size));
	trace("%s = %d", what, rc);
	if (!(maybe && rc == -ERANGE))
		expect_rc(what, rc, errs);
	if (rc == 0) {
		m->size = size;
		check_attrs(n);
	}
}

static void op_alias_offset(void)
{
	int n = rd_slot(false);
	char what[96];

	if (n < 0)
		return;
	struct mnode *m = &F.M.m[n];
	uint64_t aoff = in_below(&F.in, F.W);
	if (m->kind == BM_REGION_ALIAS) {
		uint64_t ts = F.M.m[m->target].size;
		if (ts != BM_SIZE_ALL && ts <= F.W)
			aoff = in_below(&F.in, ts + ts / 8 + 1);
		if (!model_fits(aoff, m->size))
			aoff = 0;
	}
	snprintf(what, sizeof(what), "set_alias_offset(%s, %#" PRIx64 ")", m->name, aoff);
	uint64_t errs = model_alias_offset_errs(&F.M, n);
	int rc;
	MUTATE(rc, bm_region_set_alias_offset(m->r, aoff));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0)
		m->alias_offset = aoff;
}

static void op_exclusive(void)
{
	int n = rd_slot(false);
	bool ex = !(in_u8(&F.in) % 4 == 0);
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "set_exclusive(%s, %d)", F.M.m[n].name, ex);
	int rc;
	MUTATE(rc, bm_region_set_exclusive(F.M.m[n].r, ex));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, 0);
	F.M.m[n].exclusive = ex;
	check_attrs(n);
}

static void op_destroy(void)
{
	int n = rd_slot(false);
	char what[64];

	if (n < 0)
		return;
	snprintf(what, sizeof(what), "destroy(%s)", F.M.m[n].name);
	uint64_t errs = model_destroy_errs(&F.M, n);
	int rc;
	MUTATE(rc, bm_region_destroy(F.M.m[n].r));
	trace("%s = %d", what, rc);
	expect_rc(what, rc, errs);
	if (rc == 0) {
		model_destroy(&F.M, n);
		F.doomed[n] = F.depth > 0;
	}
}

static void op_begin(void)
{
	if (F.depth >= 6)
		return;
	int rc = bm_begin(F.sys);
	trace("begin = %d (depth %d)", rc, F.depth + 1);
	expect_rc("begin", rc, 0);
	F.depth++;
}

static void op_commit(void)
{
	F.notify_ok = F.depth <= 1;
	int rc = bm_commit(F.sys);
	F.notify_ok = false;
	trace("commit = %d (depth %d)", rc, F.depth);
	expect_rc("commit", rc, F.depth == 0 ? E_BIT(EPERM) : 0);
	if (F.depth > 0)
		F.depth--;
}

static void op_access(bool write)
{
	int s = in_u8(&F.in) & 1;
	unsigned size = rd_access_size();
	uint64_t addr = rd_addr(s);

	if (write)
		check_write(s, addr, size, in_u64(&F.in));
	else
		check_read(s, addr, size);
}

static void op_synchronize(void)
{
	int rc = bm_synchronize(F.sys);
	trace("synchronize = %d", rc);
	expect_rc("synchronize", rc, F.depth ? E_BIT(EDEADLK) : 0);
}

static void listener_register(int s)
{
	struct lmirror *ls = &F.ls[s];

	ls->copy.n = 0;
	ls->calls = 0;
	F.notify_ok = true;
	int rc = bm_listener_add(F.space[s], listener_fn, ls, &ls->l);
	F.notify_ok = false;
	trace("listener_add(space %d) = %d", s, rc);
	CHECK(rc == 0, "bm_listener_add returned %d", rc);
	CHECK(!ls->bad[0], "space %d listener: %s", s, ls->bad);
	CHECK(rvec_eq(&ls->copy, &F.prev[s]),
	      "space %d: registration did not report the published view", s);
}

static void op_listener(void)
{
	int s = in_u8(&F.in) & 1;
	struct lmirror *ls = &F.ls[s];

	if (ls->l) {
		int rc = bm_listener_remove(ls->l);
		trace("listener_remove(space %d) = %d", s, rc);
		CHECK(rc == 0, "bm_listener_remove returned %d", rc);
		ls->l = NULL;
		if (in_u8(&F.in) & 1)
			return;
	}
	listener_register(s);
}

static void op_conflict_ops(void)
{
	int s = in_u8(&F.in) & 1;
	struct cmirror *cs = &F.cs[s];
	bool on = !cs->on;

	int rc = bm_space_set_conflict_ops(F.space[s], on ? &conflict_ops : NULL, cs);
	trace("set_conflict_ops(space %d, %s) = %d", s, on ? "on" : "off", rc);
	expect_rc("bm_space_set_conflict_ops", rc, 0);
	cs->on = on;
	cs->copy.n = 0;
	/* events report changes from here on, starting from what is published */
	size_t nc = bm_space_conflicts(F.space[s], NULL, 0);
	if (on && nc) {
		struct bm_conflict *buf = calloc(nc, sizeof(*buf));
		if (!buf)
			abort();
		bm_space_conflicts(F.space[s], buf, nc);
		for (size_t i = 0; i < nc; i++)
			cvec_push(&cs->copy, &buf[i]);
		free(buf);
	}
}

/* An access on an offline QSBR thread reaches nothing; under memb offline means nothing. */
static void op_offline(void)
{
	int s = in_u8(&F.in) & 1;
	uint64_t addr = rd_addr(s), v = 0;

	int rc = bm_vcpu_offline(F.vcpu);
	expect_rc("bm_vcpu_offline", rc, 0);
	if (F.qsbr) {
		F.nlog = 0;
		rc = bm_read(F.vcpu, F.space[s], addr, 4, &v);
		trace("offline read4(space %d, %#" PRIx64 ") = %d", s, addr, rc);
		CHECK(rc == -EPERM && F.nlog == 0,
		      "an access on an offline thread returned %d with %u callbacks", rc, F.nlog);
		CHECK(F.cs[s].nacc == 0, "an access on an offline thread signalled a conflict");
	}
	rc = bm_vcpu_online(F.vcpu);
	expect_rc("bm_vcpu_online", rc, 0);
}

static int name_fn(void *arg, const struct bm_flat_range *r)
{
	(void)arg;
	CHECK(bm_region_name(r->region) != NULL,
	      "a published range at %#" PRIx64 " names a region without a name", r->start);
	return 0;
}

/* The dumps read the tree and the published view, whatever state they are in. */
static void op_dump(void)
{
	static FILE *null;
	if (F.no_dumps)
		return;
	if (!null && !(null = fopen("/dev/null", "w")))
		abort();
	for (int s = 0; s < 2; s++) {
		bm_space_flat(F.space[s], name_fn, NULL);
		int a = bm_space_dump_mtree(F.space[s], null);
		int b = bm_space_dump_flat(F.space[s], null);
		int c = bm_space_dump_json(F.space[s], null);
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
	static const int maxns[] = {8, 12, 16, 24};
	uint8_t cfg = in_u8(&F.in);

	F.qsbr = cfg & 1;
	F.W = windows[(cfg >> 1) & 3];
	F.M.maxn = maxns[(cfg >> 3) & 3];
	F.prange = (cfg >> 5) & 3;
	int rc = bm_system_new_flavour(F.qsbr ? BM_RCU_QSBR : BM_RCU_MEMB, &F.sys);
	CHECK(rc == 0, "bm_system_new_flavour returned %d", rc);
	for (int s = 0; s < 2; s++) {
		char name[16];
		snprintf(name, sizeof(name), "root%d", s);
		rc = bm_space_new(F.sys, s ? "io" : "memory", name, &F.space[s]);
		CHECK(rc == 0, "bm_space_new returned %d", rc);
		model_init_root(&F.M, s, bm_space_root(F.space[s]), name);
	}
	rc = bm_vcpu_new(F.sys, 0, NULL, &F.vcpu);
	CHECK(rc == 0, "bm_vcpu_new returned %d", rc);
	if (cfg & 0x80)
		for (int s = 0; s < 2; s++)
			listener_register(s);
	published();
}

static void teardown(void)
{
	while (F.depth > 0)
		op_commit();
	published();

	struct bm_vcpu_stats st;
	bm_vcpu_stats(F.vcpu, &st);
	CHECK(st.accesses == F.dispatched && st.unassigned == F.unassigned &&
	          st.conflicts == F.conflicts && st.hint_hits <= st.accesses,
	      "vcpu stats: %" PRIu64 " accesses (%" PRIu64 " made), %" PRIu64
	      " unassigned (%" PRIu64 "), %" PRIu64 " conflicts (%" PRIu64 ")",
	      st.accesses, F.dispatched, st.unassigned, F.unassigned, st.conflicts, F.conflicts);
	CHECK(bm_vcpu_free(F.vcpu) == 0, "bm_vcpu_free failed");
	F.notify_ok = true;
	for (int i = 2; i < F.M.maxn; i++)
		if (F.M.m[i].live && !model_targeted(&F.M, i) && (i & 1)) {
			int rc = bm_region_destroy(F.M.m[i].r);
			CHECK(rc == 0, "destroy(%s) at teardown returned %d", F.M.m[i].name, rc);
			model_destroy(&F.M, i);
		}
	int rc = bm_system_free(F.sys);
	F.notify_ok = false;
	CHECK(rc == 0, "bm_system_free returned %d", rc);
	for (int i = 0; i < MODEL_MAXN; i++)
		free(F.M.m[i].host);
	model_release(&F.M);
	model_release(&F.pub);
	for (int s = 0; s < 2; s++) {
		free(F.pconf[s].v);
		free(F.ls[s].copy.v);
		free(F.cs[s].copy.v);
		free(F.prev[s].v);
	}
	free(F.want.v);
	free(F.got.v);
	free(F.cwant.v);
	free(F.cgot.v);
	free(F.csorted.v);
	free(F.mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum opcode table[32] = {
	    OP_NEW_IO,       OP_NEW_IO,   OP_NEW_RAM, OP_NEW_CONTAINER, OP_NEW_CONTAINER,
	    OP_NEW_ALIAS,    OP_DESTROY,  OP_ADD,     OP_ADD,           OP_ADD,
	    OP_DUMP,         OP_DEL,      OP_MOVE,    OP_MOVE,          OP_MOVE,
	    OP_ENABLE,       OP_PRIORITY, OP_RESIZE,  OP_ALIAS_OFFSET,  OP_EXCLUSIVE,
	    OP_EXCLUSIVE,    OP_BEGIN,    OP_COMMIT,  OP_COMMIT,        OP_READ,
	    OP_READ,         OP_WRITE,    OP_WRITE,   OP_SYNCHRONIZE,   OP_LISTENER,
	    OP_CONFLICT_OPS, OP_OFFLINE,
	};
	const char *t = getenv("FUZZ_TRACE");

	memset(&F, 0, sizeof(F));
	F.trace_all = t && *t && *t != '0';
	t = getenv("FUZZ_NO_DUMPS");
	F.no_dumps = t && *t && *t != '0';
	F.in = (struct fz_input){data, size};
	setup();
	for (F.op = 1; !in_empty(&F.in) && F.op <= MAX_OPS; F.op++) {
		run_op(table[in_u8(&F.in) % 32]);
		if (F.depth == 0)
			published();
		else
			unpublished();
		if (F.qsbr)
			CHECK(bm_vcpu_quiescent(F.vcpu) == 0, "bm_vcpu_quiescent failed");
	}
	teardown();
	return 0;
}
