/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-pci: any bytes become a PCI topology (endpoints and bridges with BARs of every kind)
 * and a sequence of configuration reads and writes of any size at any offset, through the
 * API, CF8/CFC and ECAM, with MMIO and port accesses in between.
 *
 * An independent model follows the registers that decide the map: BARs, ROM, command and
 * the bridge registers, written through the masks pci.h documents. From them it derives
 * which BAR is decoded where (pci.h's decode rule), in which order BARs and bridge windows
 * were placed (so that the newest placement wins), how configuration cycles are routed by
 * bus number, and which map events each write causes. After every operation it checks the
 * registers, bm_pci_bar_info, the bridge windows, the events, and the whole flat view and
 * conflicts of both spaces, which it computes by building the equivalent region tree in the
 * shared reference model (tests/model) and applying the flat-view rules to it. Every access
 * is checked against the same model: which BAR and offset each byte reaches, or what the
 * configuration cycle it becomes must return.
 *
 * FUZZ_TRACE=1 prints every operation.
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

#define MAX_FUNCS    8
#define MAX_BUSES    4
#define MAX_OPS      300
#define MAX_EVENTS   64
#define NSLOTS       7 /* six BARs and the ROM */
#define ROM          6
#define ECAM_BASE    0xe0000000ull
#define IOWIN_BASE   0x3eff0000ull
#define IOWIN_SIZE   0x10000ull
#define STAMP_FIRST  100
#define TRACE_N      48
#define CONF_PORT    0xcf8
#define CFG_ENABLE   0x80000000u
#define CMD_IO       0x0001
#define CMD_MEM      0x0002
#define CMD_WMASK    0x0547
#define ROM_ADDRMASK 0xfffff800u

enum { T_NONE, T_IO, T_MEM32, T_MEM64 };

struct mbar {
	int type; /* T_*, T_MEM32 for the ROM */
	bool pref;
	uint64_t size;
	bm_region *contents;  /* ours, placed at 0 of the BAR */
	bm_region *container; /* the BAR's own, from bm_pci_bar_info */
	uintptr_t id;
	bool mapped;
	uint64_t maddr;
	uint64_t stamp;
};

struct mwin {
	bool placed;
	uint64_t base, last, stamp;
};

struct mfunc {
	bool live;
	bm_pci_func *f;
	int bus; /* index in P.bus */
	unsigned dev, fn;
	bool bridge;
	unsigned cfg_size;
	uint8_t reg[256], wmask[256];
	bool modeled[256];
	struct mbar bar[NSLOTS];
	int sec; /* bridge: index of its secondary bus */
	bool io32, pref64;
	struct mwin win[3];
};

struct mbus {
	bool live;
	int bridge; /* function index, -1 for the root bus */
	bm_region *mem, *io;
};

struct event {
	int func;
	unsigned bar;
	bool mapped;
	uint64_t addr, size;
	uint8_t bus, dev, fn;
	bool io;
};

struct logent {
	uintptr_t id;
	uint64_t off;
	unsigned size;
	bool write;
	uint64_t value;
};

static struct {
	struct fz_input in;
	bm_system *sys;
	bm_space *mem, *io;
	bm_vcpu *vcpu;
	bm_pci_host *host;
	bool x86; /* io space with CF8/CFC, else an I/O window in mem */
	bool decode_zero;
	uint64_t io_limit;
	int mem_prio, io_prio;
	unsigned ecam_first, ecam_count;
	bm_region *ecam_r, *conf_r;
	uint32_t latch;
	struct mfunc fn[MAX_FUNCS];
	int nfn;
	struct mbus bus[MAX_BUSES];
	uint64_t stamp;
	uintptr_t next_id;
	int nodes; /* model slots the topology needs */
	/* map events */
	bool observe;
	struct event want[MAX_EVENTS], got[MAX_EVENTS];
	unsigned nwant, ngot;
	bool ev_overflow;
	/* callbacks of BAR contents */
	struct logent log[64];
	unsigned nlog;
	char cb_bad[200];
	/* the region tree the model builds, and scratch */
	struct model M;
	int bar_node[MAX_FUNCS][NSLOTS];
	struct rvec want_mem, want_io, got_v;
	struct cvec cwant, cgot;
	unsigned long op;
	char trace[TRACE_N][160];
	unsigned long ntrace;
	bool trace_all;
} P;

/* ------------------------------------------------------------------ reports */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;
	char *slot = P.trace[P.ntrace++ % TRACE_N];

	va_start(ap, fmt);
	vsnprintf(slot, sizeof(P.trace[0]), fmt, ap);
	va_end(ap);
	if (P.trace_all)
		fprintf(stderr, "  %s\n", slot);
}

static void dump_funcs(void);

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz-pci: op %lu: ", P.op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s host, io limit %#" PRIx64 ", decode_zero %d; last operations:\n",
	        P.x86 ? "x86" : "arm", P.io_limit, P.decode_zero);
	unsigned long first = P.ntrace > TRACE_N ? P.ntrace - TRACE_N : 0;
	for (unsigned long i = first; i < P.ntrace; i++)
		fprintf(stderr, "  %s\n", P.trace[i % TRACE_N]);
	dump_funcs();
	abort();
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(__VA_ARGS__);                                                         \
	} while (0)

static uint32_t ones(unsigned size)
{
	return size >= 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
}

/* ------------------------------------------------------------------ registers */

static uint32_t reg_get(const struct mfunc *m, unsigned reg, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)m->reg[(reg + i) & 0xff] << (8 * i);
	return v;
}

static void reg_init(struct mfunc *m, unsigned reg, unsigned size, uint32_t value, uint32_t wmask)
{
	for (unsigned i = 0; i < size; i++) {
		m->reg[reg + i] = (uint8_t)(value >> (8 * i));
		m->wmask[reg + i] = (uint8_t)(wmask >> (8 * i));
		m->modeled[reg + i] = true;
	}
}

static unsigned bar_reg(const struct mfunc *m, unsigned i)
{
	if (i == ROM)
		return m->bridge ? 0x38 : 0x30;
	return 0x10 + 4 * i;
}

/* The registers pci.h documents, as a reset function holds them. */
static void regs_init(struct mfunc *m, uint8_t sec, uint8_t sub)
{
	reg_init(m, 0x04, 2, 0, CMD_WMASK);
	for (unsigned i = 0; i < NSLOTS; i++) {
		const struct mbar *b = &m->bar[i];
		unsigned r = bar_reg(m, i);
		uint64_t mask = ~(b->size - 1);
		if (i == ROM) {
			reg_init(m, r, 4, 0, b->size ? ((uint32_t)mask & ROM_ADDRMASK) | 1 : 0);
			continue;
		}
		if ((m->bridge && i >= 2) || m->modeled[r])
			continue; /* the upper half of a 64-bit BAR is set with its lower half */
		if (b->type == T_NONE) {
			reg_init(m, r, 4, 0, 0);
		} else if (b->type == T_IO) {
			reg_init(m, r, 4, 1, (uint32_t)mask & ~3u);
		} else {
			uint32_t type = (b->type == T_MEM64 ? 4u : 0u) | (b->pref ? 8u : 0u);
			reg_init(m, r, 4, type, (uint32_t)mask & ~0xfu);
			if (b->type == T_MEM64)
				reg_init(m, r + 4, 4, 0, (uint32_t)(mask >> 32));
		}
	}
	if (!m->bridge)
		return;
	reg_init(m, 0x18, 4, (uint32_t)sec << 8 | (uint32_t)sub << 16, 0xffffffff);
	reg_init(m, 0x1c, 1, m->io32, 0xf0);
	reg_init(m, 0x1d, 1, m->io32, 0xf0);
	reg_init(m, 0x20, 4, 0, 0xfff0fff0);
	reg_init(m, 0x24, 4, m->pref64 * 0x10001u, 0xfff0fff0);
	reg_init(m, 0x28, 4, 0, m->pref64 ? 0xffffffff : 0);
	reg_init(m, 0x2c, 4, 0, m->pref64 ? 0xffffffff : 0);
	reg_init(m, 0x30, 4, 0, m->io32 ? 0xffffffff : 0);
}

static bool touches(unsigned reg, unsigned size, unsigned start, unsigned len)
{
	return reg < start + len && start < reg + size;
}

/* The address the BAR registers hold. */
static uint64_t bar_addr(const struct mfunc *m, unsigned i)
{
	const struct mbar *b = &m->bar[i];
	unsigned r = bar_reg(m, i);
	uint64_t lo = reg_get(m, r, 4);
	if (i == ROM)
		return lo & ROM_ADDRMASK & ~(b->size - 1);
	if (b->type == T_IO)
		return lo & ~3ull & ~(b->size - 1);
	if (b->type == T_MEM64)
		lo |= (uint64_t)reg_get(m, r + 4, 4) << 32;
	return lo & ~0xfull & ~(b->size - 1);
}

/* pci.h's decode rule, from the registers alone. */
static bool bar_decoded(const struct mfunc *m, unsigned i, uint64_t *addr)
{
	const struct mbar *b = &m->bar[i];
	uint32_t cmd = reg_get(m, 0x04, 2);
	uint64_t a = bar_addr(m, i), last = a + b->size - 1;

	*addr = a;
	if (b->type == T_IO)
		return (cmd & CMD_IO) && (a || P.decode_zero) && last > a && last < P.io_limit;
	if (!(cmd & CMD_MEM))
		return false;
	if (i == ROM && !(reg_get(m, bar_reg(m, i), 4) & 1))
		return false;
	if ((!a && !P.decode_zero) || last <= a || last == UINT64_MAX)
		return false;
	return b->type == T_MEM64 || last < UINT32_MAX;
}

/* The PCI-to-PCI bridge specification's window decoding. */
static struct mwin window(const struct mfunc *m, int k, bool *enabled)
{
	struct mwin w = {0};
	uint32_t cmd = reg_get(m, 0x04, 2);
	if (k == 0) {
		w.base = (uint64_t)(m->reg[0x1c] & 0xf0) << 8;
		w.last = (uint64_t)(m->reg[0x1d] & 0xf0) << 8 | 0xfff;
		if (m->io32) {
			w.base |= (uint64_t)reg_get(m, 0x30, 2) << 16;
			w.last |= (uint64_t)reg_get(m, 0x32, 2) << 16;
		}
		*enabled = (cmd & CMD_IO) && w.base <= w.last;
		return w;
	}
	unsigned r = k == 1 ? 0x20 : 0x24;
	w.base = (uint64_t)(reg_get(m, r, 2) & 0xfff0) << 16;
	w.last = (uint64_t)(reg_get(m, r + 2, 2) & 0xfff0) << 16 | 0xfffff;
	if (k == 2 && m->pref64) {
		w.base |= (uint64_t)reg_get(m, 0x28, 4) << 32;
		w.last |= (uint64_t)reg_get(m, 0x2c, 4) << 32;
	}
	*enabled = (cmd & CMD_MEM) && w.base <= w.last;
	return w;
}

/* ------------------------------------------------------------------ routing */

static unsigned bus_number(int b)
{
	return P.bus[b].bridge < 0 ? 0 : P.fn[P.bus[b].bridge].reg[0x19];
}

static int func_at(int b, unsigned devfn)
{
	for (int i = 0; i < P.nfn; i++)
		if (P.fn[i].live && P.fn[i].bus == b && (P.fn[i].dev << 3 | P.fn[i].fn) == devfn)
			return i;
	return -1;
}

/* A configuration cycle for bus nr: type 0 on the bus numbered nr, else forwarded by the
 * first bridge (in device/function order) whose [secondary, subordinate] holds it. */
static int find_bus(int b, unsigned nr)
{
	if (bus_number(b) == nr)
		return b;
	for (unsigned devfn = 0; devfn < 256; devfn++) {
		int i = func_at(b, devfn);
		if (i < 0 || !P.fn[i].bridge)
			continue;
		unsigned sec = P.fn[i].reg[0x19], sub = P.fn[i].reg[0x1a];
		if (sec == nr)
			return P.fn[i].sec;
		if (sec < nr && nr <= sub)
			return find_bus(P.fn[i].sec, nr);
	}
	return -1;
}

static int route(unsigned nr, unsigned dev, unsigned fn)
{
	if (nr > 255 || dev > 31 || fn > 7)
		return -1;
	int b = find_bus(0, nr);
	return b < 0 ? -1 : func_at(b, dev << 3 | fn);
}

/* ------------------------------------------------------------------ map changes */

static void expect_event(int fi, unsigned i, bool mapped, uint64_t addr)
{
	const struct mfunc *m = &P.fn[fi];
	if (!P.observe)
		return;
	if (P.nwant == MAX_EVENTS) {
		P.ev_overflow = true;
		return;
	}
	P.want[P.nwant++] = (struct event){fi,
	                                   i,
	                                   mapped,
	                                   addr,
	                                   m->bar[i].size,
	                                   (uint8_t)bus_number(m->bus),
	                                   (uint8_t)m->dev,
	                                   (uint8_t)m->fn,
	                                   m->bar[i].type == T_IO};
}

/* Every BAR whose decoded placement changed is unmapped, then mapped anew (newest). */
static void bars_update(int fi)
{
	struct mfunc *m = &P.fn[fi];
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct mbar *b = &m->bar[i];
		uint64_t a;
		if (!b->size)
			continue;
		bool dec = bar_decoded(m, i, &a);
		if (dec == b->mapped && (!dec || a == b->maddr))
			continue;
		if (b->mapped)
			expect_event(fi, i, false, b->maddr);
		b->mapped = dec;
		if (dec) {
			b->maddr = a;
			b->stamp = ++P.stamp;
			expect_event(fi, i, true, a);
		}
	}
}

/* Windows are placed again on every write to their registers, enabled ones as newest. */
static void windows_update(int fi)
{
	struct mfunc *m = &P.fn[fi];
	for (int k = 0; k < 3; k++) {
		bool en;
		struct mwin w = window(m, k, &en);
		m->win[k].placed = en;
		if (en) {
			m->win[k].base = w.base;
			m->win[k].last = w.last;
			m->win[k].stamp = ++P.stamp;
		}
	}
}

static uint32_t cfg_read(int fi, unsigned reg, unsigned size)
{
	struct mfunc *m = &P.fn[fi];
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		unsigned at = reg + i;
		uint32_t byte = 0xff;
		if (at < m->cfg_size)
			byte = at < 256 && m->modeled[at] ? m->reg[at]
			                                  : bm_pci_func_cfg_get(m->f, at, 1) & 0xff;
		v |= byte << (8 * i);
	}
	return v;
}

static void cfg_write(int fi, unsigned reg, unsigned size, uint32_t value)
{
	struct mfunc *m = &P.fn[fi];
	if (reg >= m->cfg_size)
		return;
	for (unsigned i = 0; i < size; i++) {
		unsigned at = reg + i;
		if (at < 256 && m->modeled[at])
			m->reg[at] = (uint8_t)((m->reg[at] & ~m->wmask[at]) |
			                       ((value >> (8 * i)) & m->wmask[at]));
	}
	bool cmd = touches(reg, size, 0x04, 2);
	bool bars = m->bridge ? touches(reg, size, 0x10, 8) || touches(reg, size, 0x38, 4)
	                      : touches(reg, size, 0x10, 24) || touches(reg, size, 0x30, 4);
	if (cmd || bars)
		bars_update(fi);
	if (m->bridge && (cmd || touches(reg, size, 0x1c, 2) || touches(reg, size, 0x20, 20) ||
	                  touches(reg, size, 0x3e, 2)))
		windows_update(fi);
}

/* ------------------------------------------------------------------ the region tree */

static int node_new(enum bm_region_kind kind, uint64_t size, bm_region *r)
{
	int n = P.M.maxn++;
	if (n >= MODEL_MAXN)
		abort(); /* the topology budget keeps this from happening */
	model_init_node(&P.M, n, kind, size);
	P.M.m[n].r = r;
	return n;
}

static void node_place(int n, int parent, uint64_t off, int prio, uint64_t seq)
{
	P.M.m[n].parent = parent;
	P.M.m[n].offset = off;
	P.M.m[n].priority = prio;
	P.M.m[n].seq = seq;
}

/* The tree pci.h describes: bus containers, BAR containers holding their contents, bridge
 * windows as aliases of the secondary containers, CF8/CFC and ECAM one priority above. */
static void build_tree(void)
{
	int busmem[MAX_BUSES], busio[MAX_BUSES];
	int above_mem = P.mem_prio == INT_MAX ? INT_MAX : P.mem_prio + 1;
	int above_io = P.io_prio == INT_MAX ? INT_MAX : P.io_prio + 1;

	for (int i = 0; i < MODEL_MAXN; i++)
		P.M.m[i].live = false;
	P.M.maxn = 2;
	P.M.next_id = 0;
	model_init_root(&P.M, 0, bm_space_root(P.mem), "memory");
	model_init_root(&P.M, 1, P.x86 ? bm_space_root(P.io) : NULL, "io");
	/* creation order of the host: pci-mem, pci-io, its placement, CF8/CFC, ECAM */
	busmem[0] = node_new(BM_REGION_CONTAINER, BM_SIZE_ALL, P.bus[0].mem);
	busio[0] = node_new(BM_REGION_CONTAINER, BM_SIZE_ALL, P.bus[0].io);
	node_place(busmem[0], 0, 0, P.mem_prio, 1);
	if (P.x86) {
		node_place(busio[0], 1, 0, P.io_prio, 2);
		int conf = node_new(BM_REGION_IO, 8, P.conf_r);
		node_place(conf, 1, CONF_PORT, above_io, 3);
	} else {
		int win = node_new(BM_REGION_ALIAS, IOWIN_SIZE, NULL);
		P.M.m[win].target = busio[0];
		node_place(win, 0, IOWIN_BASE, P.io_prio, 2);
	}
	int ecam = node_new(BM_REGION_IO, (uint64_t)P.ecam_count << 20, P.ecam_r);
	node_place(ecam, 0, ECAM_BASE, above_mem, 4);
	for (int b = 1; b < MAX_BUSES; b++) {
		if (!P.bus[b].live)
			continue;
		busmem[b] = node_new(BM_REGION_CONTAINER, BM_SIZE_ALL, P.bus[b].mem);
		busio[b] = node_new(BM_REGION_CONTAINER, BM_SIZE_ALL, P.bus[b].io);
	}
	for (int fi = 0; fi < P.nfn; fi++) {
		struct mfunc *m = &P.fn[fi];
		for (unsigned i = 0; i < NSLOTS; i++) {
			struct mbar *b = &m->bar[i];
			P.bar_node[fi][i] = -1;
			if (!m->live || !b->size)
				continue;
			int c = node_new(BM_REGION_CONTAINER, b->size, b->container);
			P.M.m[c].exclusive = true;
			int l = node_new(BM_REGION_IO, b->size, b->contents);
			P.M.m[l].id = b->id;
			node_place(l, c, 0, 0, 0);
			if (b->mapped)
				node_place(c, b->type == T_IO ? busio[m->bus] : busmem[m->bus],
				           b->maddr, 1, b->stamp);
			P.bar_node[fi][i] = l;
		}
		for (int k = 0; m->live && m->bridge && k < 3; k++) {
			const struct mwin *w = &m->win[k];
			if (!w->placed)
				continue;
			uint64_t size = w->last - w->base + 1;
			int a = node_new(BM_REGION_ALIAS, size ? size : BM_SIZE_ALL, NULL);
			P.M.m[a].target = k == 0 ? busio[m->sec] : busmem[m->sec];
			P.M.m[a].alias_offset = w->base;
			node_place(a, k == 0 ? busio[m->bus] : busmem[m->bus], w->base, 1,
			           w->stamp);
		}
	}
	model_build_kids(&P.M);
}

/* The function and BAR an io leaf of the tree stands for. */
static bool leaf_bar(int node, int *fi, unsigned *bar)
{
	for (int f = 0; f < P.nfn; f++)
		for (unsigned i = 0; i < NSLOTS; i++)
			if (P.bar_node[f][i] == node && node >= 0) {
				*fi = f;
				*bar = i;
				return true;
			}
	return false;
}

/* ------------------------------------------------------------------ callbacks */

static int bar_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	if (P.nlog < 64)
		P.log[P.nlog++] = (struct logent){(uintptr_t)opaque, off, size, false, 0};
	else if (!P.cb_bad[0])
		snprintf(P.cb_bad, sizeof(P.cb_bad), "too many callbacks");
	*value = 0;
	for (unsigned i = 0; i < size; i++)
		*value |= (uint64_t)model_io_byte((uintptr_t)opaque, off + i) << (8 * i);
	return 0;
}

static int bar_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	if (P.nlog < 64)
		P.log[P.nlog++] = (struct logent){(uintptr_t)opaque, off, size, true, value};
	else if (!P.cb_bad[0])
		snprintf(P.cb_bad, sizeof(P.cb_bad), "too many callbacks");
	return 0;
}

static const struct bm_region_ops bar_ops = {.read = bar_read, .write = bar_write};

static void observer(void *arg, const struct bm_pci_map_event *ev)
{
	(void)arg;
	if (P.ngot == MAX_EVENTS) {
		P.ev_overflow = true;
		return;
	}
	int fi = -1;
	for (int i = 0; i < P.nfn; i++)
		if (P.fn[i].f == ev->func)
			fi = i;
	P.got[P.ngot++] = (struct event){fi,      ev->bar, ev->mapped, ev->addr, ev->size,
	                                 ev->bus, ev->dev, ev->fn,     ev->io};
}

/* ------------------------------------------------------------------ checks */

static void dump_funcs(void)
{
	for (int fi = 0; fi < P.nfn; fi++) {
		const struct mfunc *m = &P.fn[fi];
		if (!m->live)
			continue;
		fprintf(stderr, "  f%d %s %02x:%02x.%x%s cmd %#x", fi, bm_pci_func_name(m->f),
		        bus_number(m->bus), m->dev, m->fn, m->bridge ? " bridge" : "",
		        reg_get(m, 4, 2));
		if (m->bridge)
			fprintf(stderr, " bus %u-%u", m->reg[0x19], m->reg[0x1a]);
		fprintf(stderr, "\n");
		for (unsigned i = 0; i < NSLOTS; i++) {
			const struct mbar *b = &m->bar[i];
			if (b->size)
				fprintf(stderr,
				        "    bar%u type %d size %#" PRIx64 " reg %#" PRIx64
				        " %s %#" PRIx64 " stamp %" PRIu64 "\n",
				        i, b->type, b->size, bar_addr(m, i),
				        b->mapped ? "mapped" : "unmapped", b->maddr, b->stamp);
		}
		for (int k = 0; m->bridge && k < 3; k++)
			fprintf(stderr,
			        "    window %d %s [%#" PRIx64 ", %#" PRIx64 "] stamp %" PRIu64 "\n",
			        k, m->win[k].placed ? "placed" : "off", m->win[k].base,
			        m->win[k].last, m->win[k].stamp);
	}
}

static int collect_fn(void *arg, const struct bm_flat_range *r)
{
	rvec_push(arg, r);
	return 0;
}

static int cmp_conflict(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->last != b->last)
		return a->last < b->last ? -1 : 1;
	if (a->winner != b->winner)
		return (uintptr_t)a->winner < (uintptr_t)b->winner ? -1 : 1;
	if (a->loser != b->loser)
		return (uintptr_t)a->loser < (uintptr_t)b->loser ? -1 : 1;
	return 0;
}

static void check_space(bm_space *sp, int root, struct rvec *want)
{
	model_view(&P.M, root, want, NULL, &P.cwant);
	P.got_v.n = 0;
	bm_space_flat(sp, collect_fn, &P.got_v);
	bool same = P.got_v.n == want->n;
	for (size_t i = 0; same && i < want->n; i++)
		same = range_eq(&P.got_v.v[i], &want->v[i]);
	if (!same) {
		model_print_rvec(&P.M, stderr, "library view", &P.got_v);
		model_print_rvec(&P.M, stderr, "model view", want);
		fail("space %s: published view differs from the model", bm_space_name(sp));
	}
	size_t nc = bm_space_conflicts(sp, NULL, 0);
	P.cgot.n = 0;
	if (nc) {
		struct bm_conflict *buf = calloc(nc, sizeof(*buf));
		if (!buf)
			abort();
		bm_space_conflicts(sp, buf, nc);
		for (size_t i = 0; i < nc; i++)
			cvec_push(&P.cgot, &buf[i]);
		free(buf);
		qsort(P.cgot.v, P.cgot.n, sizeof(*P.cgot.v), cmp_conflict);
	}
	if (P.cwant.n)
		qsort(P.cwant.v, P.cwant.n, sizeof(*P.cwant.v), cmp_conflict);
	same = P.cgot.n == P.cwant.n;
	for (size_t i = 0; same && i < P.cgot.n; i++)
		same = conflict_eq(&P.cgot.v[i], &P.cwant.v[i]);
	if (!same) {
		model_print_cvec(&P.M, stderr, "library conflicts", &P.cgot);
		model_print_cvec(&P.M, stderr, "model conflicts", &P.cwant);
		fail("space %s: conflicts differ from the model", bm_space_name(sp));
	}
}

static void check_events(void)
{
	bool same = P.ngot == P.nwant && !P.ev_overflow;
	for (unsigned i = 0; same && i < P.ngot; i++) {
		const struct event *a = &P.want[i], *b = &P.got[i];
		same = a->func == b->func && a->bar == b->bar && a->mapped == b->mapped &&
		       a->addr == b->addr && a->size == b->size && a->bus == b->bus &&
		       a->dev == b->dev && a->fn == b->fn && a->io == b->io;
	}
	if (!same) {
		for (unsigned i = 0; i < P.nwant || i < P.ngot; i++) {
			const struct event *e = i < P.nwant ? &P.want[i] : NULL;
			const struct event *g = i < P.ngot ? &P.got[i] : NULL;
			fprintf(stderr,
			        "  event %u: model %s f%d bar%u %#" PRIx64
			        " | library %s f%d bar%u %#" PRIx64 " bus %u\n",
			        i, e ? (e->mapped ? "map" : "unmap") : "-", e ? e->func : -1,
			        e ? e->bar : 0, e ? e->addr : 0,
			        g ? (g->mapped ? "map" : "unmap") : "-", g ? g->func : -1,
			        g ? g->bar : 0, g ? g->addr : 0, g ? g->bus : 0);
		}
		fail("map events differ from the model (%u expected, %u seen)", P.nwant, P.ngot);
	}
	P.nwant = P.ngot = 0;
}

static void check_funcs(void)
{
	for (int fi = 0; fi < P.nfn; fi++) {
		struct mfunc *m = &P.fn[fi];
		if (!m->live)
			continue;
		const char *name = bm_pci_func_name(m->f);
		for (unsigned at = 0; at < 256; at += 4) {
			if (!m->modeled[at] && !m->modeled[at + 1] && !m->modeled[at + 2] &&
			    !m->modeled[at + 3])
				continue;
			uint32_t got = bm_pci_func_cfg_get(m->f, at, 4);
			for (unsigned k = 0; k < 4; k++)
				CHECK(!m->modeled[at + k] ||
				          (uint8_t)(got >> (8 * k)) == m->reg[at + k],
				      "%s: register byte %#x is %#x, model %#x", name, at + k,
				      (uint8_t)(got >> (8 * k)), m->reg[at + k]);
		}
		uint8_t bus, dev, fn;
		bm_pci_func_bdf(m->f, &bus, &dev, &fn);
		CHECK(bus == bus_number(m->bus) && dev == m->dev && fn == m->fn,
		      "%s: bdf %02x:%02x.%x, model %02x:%02x.%x", name, bus, dev, fn,
		      bus_number(m->bus), m->dev, m->fn);
		int r = route(bus, dev, fn);
		bm_pci_func *found = bm_pci_func_find(P.host, bus, dev, fn);
		CHECK(found == (r >= 0 ? P.fn[r].f : NULL),
		      "bm_pci_func_find(%02x:%02x.%x) routes elsewhere than the model", bus, dev,
		      fn);
		for (unsigned i = 0; i < NSLOTS; i++) {
			const struct mbar *b = &m->bar[i];
			struct bm_pci_bar_info bi;
			int rc = bm_pci_bar_info(m->f, i, &bi);
			if (!b->size) {
				CHECK(rc == -ENOENT,
				      "%s bar%u: bm_pci_bar_info returned %d for no BAR", name, i,
				      rc);
				continue;
			}
			CHECK(rc == 0 && bi.size == b->size && bi.addr == bar_addr(m, i) &&
			          bi.mapped == b->mapped &&
			          (!b->mapped || bi.mapped_addr == b->maddr) &&
			          bi.io == (b->type == T_IO) && bi.region &&
			          bi.region == b->container,
			      "%s bar%u: info size %#" PRIx64 " addr %#" PRIx64 " %s %#" PRIx64
			      "; model size %#" PRIx64 " addr %#" PRIx64 " %s %#" PRIx64,
			      name, i, bi.size, bi.addr, bi.mapped ? "mapped" : "unmapped",
			      bi.mapped_addr, b->size, bar_addr(m, i),
			      b->mapped ? "mapped" : "unmapped", b->maddr);
		}
		for (int k = 0; m->bridge && k < 3; k++) {
			struct bm_pci_window w;
			bool en;
			struct mwin mw = window(m, k, &en);
			int rc = bm_pci_bridge_window(m->f, (enum bm_pci_window_kind)k, &w);
			CHECK(rc == 0 && w.enabled == en && w.base == mw.base && w.last == mw.last,
			      "%s window %d: %s [%#" PRIx64 ", %#" PRIx64 "], model %s [%#" PRIx64
			      ", %#" PRIx64 "]",
			      name, k, w.enabled ? "on" : "off", w.base, w.last, en ? "on" : "off",
			      mw.base, mw.last);
		}
	}
}

/* ------------------------------------------------------------------ accesses */

/* The adaptation region.h promises, as the core documents it: the largest implemented
 * unit that starts aligned at the byte and fits what is left; else the smallest one whose
 * aligned unit around it fits the region. 0: none does. */
static unsigned pick_unit(unsigned impl, uint64_t off, unsigned want, uint64_t last)
{
	for (unsigned u = 8; u; u >>= 1)
		if ((impl & u) && u <= want && !(off & (u - 1)) && off + (u - 1) <= last)
			return u;
	for (unsigned u = 1; u <= 8; u <<= 1)
		if ((impl & u) && (off & ~(uint64_t)(u - 1)) + (u - 1) <= last)
			return u;
	return 0;
}

/* A configuration unit through CF8/CFC (conf) or ECAM: what it reads, what it writes. */
static uint32_t conf_unit(bool ecam, uint64_t off, unsigned u, bool write, uint32_t value)
{
	unsigned bus, dev, fn, reg;
	if (ecam) {
		bus = P.ecam_first + (unsigned)(off >> 20);
		dev = (off >> 15) & 31;
		fn = (off >> 12) & 7;
		reg = off & 0xfff;
	} else {
		if (off < 4) {
			if (write && off == 0 && u == 4)
				P.latch = value;
			return write ? 0 : (P.latch >> (8 * off)) & ones(u);
		}
		if (!(P.latch & CFG_ENABLE))
			return ones(u);
		bus = (P.latch >> 16) & 0xff;
		dev = (P.latch >> 11) & 31;
		fn = (P.latch >> 8) & 7;
		reg = (P.latch & 0xfc) + (unsigned)(off - 4);
	}
	int fi = route(bus, dev, fn);
	trace("    %s unit %s %02x:%02x.%x reg %#x size %u %#x -> %s", ecam ? "ecam" : "cfc",
	      write ? "write" : "read", bus, dev, fn, reg, u, value, fi < 0 ? "nobody" : "f");
	if (fi < 0)
		return ones(u);
	if (write) {
		cfg_write(fi, reg, u, value);
		return 0;
	}
	return cfg_read(fi, reg, u);
}

/* Bytes [off, off + len) of a configuration region, as the core carries them out. */
static void conf_piece(bool ecam, uint64_t off, unsigned len, uint64_t last, bool write,
                       uint8_t *bytes)
{
	const unsigned impl = 0x7;
	for (unsigned done = 0; done < len;) {
		uint64_t pos = off + done;
		unsigned u = pick_unit(impl, pos, len - done, last);
		if (!u) {
			if (!write)
				bytes[done] = 0xff;
			done++;
			continue;
		}
		uint64_t c = pos & ~(uint64_t)(u - 1);
		unsigned from = (unsigned)(pos - c);
		unsigned n = u - from < len - done ? u - from : len - done;
		uint8_t unit[8];
		if (!write || n != u) {
			uint32_t v = conf_unit(ecam, c, u, false, 0);
			for (unsigned k = 0; k < u; k++)
				unit[k] = (uint8_t)(v >> (8 * k));
		}
		if (!write) {
			memcpy(bytes + done, unit + from, n);
		} else {
			memcpy(unit + from, bytes + done, n);
			uint32_t v = 0;
			for (unsigned k = 0; k < u; k++)
				v |= (uint32_t)unit[k] << (8 * k);
			conf_unit(ecam, c, u, true, v);
		}
		done += n;
	}
}

/* One access, predicted from the model and compared with the library. */
static void access(bm_space *sp, int root, uint64_t addr, unsigned size, bool write, uint64_t value)
{
	struct rvec *view = root == 0 ? &P.want_mem : &P.want_io;
	uint8_t bytes[8];
	int want_rc = 0;
	bool refused = false;

	model_view(&P.M, root, view, NULL, &P.cwant);
	for (unsigned i = 0; i < size; i++)
		bytes[i] = write ? (uint8_t)(value >> (8 * i)) : 0xff;
	/* refusals first: CF8/CFC takes 1, 2 or 4 bytes */
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = addr + i;
		long k = a < addr ? -1 : rvec_find(view, a);
		if (k >= 0 && view->v[k].region == P.conf_r && size == 8)
			refused = true;
	}
	struct {
		int node;
		uint64_t off;
	} b[8];
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = addr + i;
		long k = a < addr ? -1 : rvec_find(view, a);
		b[i].node = -1;
		if (k < 0) {
			want_rc |= BM_ACCESS_UNASSIGNED;
			continue;
		}
		if (view->v[k].conflict)
			want_rc |= BM_ACCESS_CONFLICT;
		b[i].node = model_slot(&P.M, view->v[k].region);
		b[i].off = view->v[k].offset + (a - view->v[k].start);
	}
	if (refused) {
		uint64_t v = 0;
		P.nlog = 0;
		int rc = write ? bm_write(P.vcpu, sp, addr, size, value)
		               : bm_read(P.vcpu, sp, addr, size, &v);
		trace("  %s%u(%s, %#" PRIx64 ") = %d (refused)", write ? "write" : "read", size,
		      bm_space_name(sp), addr, rc);
		CHECK(rc == -EOPNOTSUPP && P.nlog == 0,
		      "%s%u at %#" PRIx64 " reaching CF8/CFC returned %d, not -EOPNOTSUPP",
		      write ? "write" : "read", size, addr, rc);
		return;
	}
	/* the configuration pieces happen in address order, as the core cuts the access */
	uint8_t want[8];
	memcpy(want, bytes, sizeof(want));
	for (unsigned i = 0; i < size;) {
		if (b[i].node < 0) {
			want[i++] = 0xff;
			continue;
		}
		bm_region *r = P.M.m[b[i].node].r;
		long k = rvec_find(view, addr + i);
		unsigned n = 1;
		while (i + n < size && addr + i + n > addr && addr + i + n <= view->v[k].last)
			n++;
		if (r == P.ecam_r || r == P.conf_r) {
			uint64_t last = model_last_rel(P.M.m[b[i].node].size);
			conf_piece(r == P.ecam_r, b[i].off, n, last, write, want + i);
		} else {
			for (unsigned j = 0; j < n && !write; j++)
				want[i + j] = model_io_byte(P.M.m[b[i].node].id, b[i].off + j);
		}
		i += n;
	}
	uint64_t got = 0x5a5a5a5a5a5a5a5au;
	P.nlog = 0;
	int rc =
	    write ? bm_write(P.vcpu, sp, addr, size, value) : bm_read(P.vcpu, sp, addr, size, &got);
	trace("  %s%u(%s, %#" PRIx64 ", %#" PRIx64 ") = %d", write ? "write" : "read", size,
	      bm_space_name(sp), addr, write ? value : got, rc);
	CHECK(!P.cb_bad[0], "%s", P.cb_bad);
	CHECK(rc == want_rc, "%s%u at %s %#" PRIx64 " returned %d, model says %d",
	      write ? "write" : "read", size, bm_space_name(sp), addr, rc, want_rc);
	if (!write) {
		uint64_t wv = 0;
		for (unsigned i = 0; i < size; i++)
			wv |= (uint64_t)want[i] << (8 * i);
		CHECK(got == wv, "read%u at %s %#" PRIx64 " gave %#" PRIx64 ", model %#" PRIx64,
		      size, bm_space_name(sp), addr, got, wv);
	}
	/* BAR contents: every byte reached by a callback of its BAR at its offset */
	for (unsigned i = 0; i < size; i++) {
		int fi;
		unsigned bar;
		if (b[i].node < 0 || !leaf_bar(b[i].node, &fi, &bar))
			continue;
		uintptr_t id = P.fn[fi].bar[bar].id;
		bool found = false;
		for (unsigned k = 0; k < P.nlog && !found; k++)
			found = P.log[k].id == id && P.log[k].write == write &&
			        P.log[k].off <= b[i].off &&
			        b[i].off - P.log[k].off < P.log[k].size &&
			        (!write || (uint8_t)(P.log[k].value >>
			                             (8 * (b[i].off - P.log[k].off))) == bytes[i]);
		CHECK(
		    found, "%s%u at %s %#" PRIx64 ": byte %u did not reach f%d bar%u at %#" PRIx64,
		    write ? "write" : "read", size, bm_space_name(sp), addr, i, fi, bar, b[i].off);
	}
	for (unsigned k = 0; k < P.nlog; k++) {
		bool mine = false;
		for (unsigned i = 0; i < size && !mine; i++) {
			int fi;
			unsigned bar;
			mine = b[i].node >= 0 && leaf_bar(b[i].node, &fi, &bar) &&
			       P.fn[fi].bar[bar].id == P.log[k].id;
		}
		CHECK(mine,
		      "%s%u at %s %#" PRIx64 ": a callback of BAR id %" PRIuPTR
		      " that no byte reaches",
		      write ? "write" : "read", size, bm_space_name(sp), addr, P.log[k].id);
	}
}

/* ------------------------------------------------------------------ inputs */

static int rd_func(void)
{
	int live[MAX_FUNCS], n = 0;
	for (int i = 0; i < P.nfn; i++)
		if (P.fn[i].live)
			live[n++] = i;
	return n ? live[in_below(&P.in, (uint64_t)n)] : -1;
}

static unsigned rd_reg(int fi)
{
	const struct mfunc *m = &P.fn[fi];
	unsigned k = in_u8(&P.in);
	unsigned reg;
	switch (k % 12) {
	case 0:
	case 1:
		reg = 0x04;
		break;
	case 2:
	case 3:
	case 4:
		reg = bar_reg(m, in_u8(&P.in) % NSLOTS);
		break;
	case 5:
	case 6:
		reg = m->bridge ? 0x18 + 2 * (in_u8(&P.in) % 20) : 0x10 + 4 * (in_u8(&P.in) % 6);
		break;
	case 7:
		reg = 0x100 + in_below(&P.in, 0xf00);
		break;
	case 8:
		reg = 0xffc + in_u8(&P.in) % 8;
		break;
	default:
		reg = in_u8(&P.in);
		break;
	}
	if (k & 0x80)
		reg += in_u8(&P.in) % 4;
	return reg;
}

/* An address worth programming: another BAR's, just below 4 GiB, or anything. */
static uint32_t rd_value(void)
{
	switch (in_u8(&P.in) % 10) {
	case 0:
		return UINT32_MAX;
	case 1:
		return 0;
	case 2:
	case 3: {
		int fi = rd_func();
		if (fi < 0)
			return 0;
		const struct mbar *b = &P.fn[fi].bar[in_u8(&P.in) % NSLOTS];
		uint64_t a = b->mapped ? b->maddr : bar_addr(&P.fn[fi], 0);
		return (uint32_t)(a >> (in_u8(&P.in) & 1 ? 32 : 0)) +
		       (uint32_t)(in_u8(&P.in) % 3) * 0x1000;
	}
	case 4:
		return 0xfffff000u - (uint32_t)in_u16(&P.in);
	case 5:
		return (uint32_t)in_u8(&P.in) & 0x7;
	case 6:
		return (uint32_t)in_u16(&P.in) << 16 | (uint32_t)in_u16(&P.in);
	default:
		return (uint32_t)in_bytes(&P.in, 4);
	}
}

/* A BAR somewhere in the topology, for values that aim at it. */
static const struct mbar *rd_any_bar(const struct mfunc **owner)
{
	int fi = rd_func();
	if (fi < 0)
		return NULL;
	const struct mfunc *m = &P.fn[fi];
	unsigned i = in_u8(&P.in) % NSLOTS;
	for (unsigned k = 0; k < NSLOTS; k++, i = (i + 1) % NSLOTS)
		if (m->bar[i].size) {
			*owner = m;
			return &m->bar[i];
		}
	return NULL;
}

/* A value that means something for the register it goes to: a command, bus numbers, a
 * bridge window over some BAR, else an address. */
static uint32_t rd_value_for(int fi, unsigned reg)
{
	static const uint32_t cmds[8] = {0, 1, 2, 3, 7, 0x547, 0x400, 0xffff};
	const struct mfunc *m = &P.fn[fi], *o = NULL;
	uint8_t k = in_u8(&P.in);
	if (k & 0x80)
		return rd_value();
	if (reg == 0x04)
		return cmds[k % 8];
	if (!m->bridge)
		return rd_value();
	if (reg == 0x18)
		return (uint32_t)(k % 4) << 8 | (uint32_t)(k % 4 + in_u8(&P.in) % 4) << 16;
	const struct mbar *b = rd_any_bar(&o);
	if (!b)
		return rd_value();
	uint64_t a = b->mapped ? b->maddr : bar_addr(o, (unsigned)(b - o->bar));
	uint64_t e = a + b->size - 1;
	if (reg == 0x1c)
		return (uint32_t)((a >> 8) & 0xf0) | (uint32_t)((e >> 8) & 0xf0) << 8;
	if (reg == 0x20 || reg == 0x24)
		return (uint32_t)((a >> 16) & 0xfff0) | (uint32_t)((e >> 16) & 0xfff0) << 16;
	if (reg == 0x28 || reg == 0x30)
		return (uint32_t)(a >> (reg == 0x28 ? 32 : 16));
	if (reg == 0x2c)
		return (uint32_t)(e >> 32);
	return rd_value();
}

static unsigned rd_size(void)
{
	static const unsigned s[4] = {1, 2, 4, 4};
	return s[in_u8(&P.in) % 4];
}

/* ------------------------------------------------------------------ operations */

/* Configuration write and read by bus number, as routed now. */
static void api_write(unsigned bus, unsigned dev, unsigned fn, unsigned reg, unsigned size,
                      uint32_t value)
{
	int to = route(bus, dev, fn);
	int rc = bm_pci_cfg_write(P.host, bus, dev, fn, reg, size, value);
	trace("cfg_write(%02x:%02x.%x, %#x, %u, %#x) = %d", bus, dev, fn, reg, size, value, rc);
	CHECK(rc == (to < 0 ? -ENODEV : 0), "bm_pci_cfg_write returned %d, model says %d", rc,
	      to < 0 ? -ENODEV : 0);
	if (to >= 0)
		cfg_write(to, reg, size, value);
}

static void api_read(unsigned bus, unsigned dev, unsigned fn, unsigned reg, unsigned size)
{
	int to = route(bus, dev, fn);
	uint32_t want = to < 0 ? ones(size) : cfg_read(to, reg, size), v = 0;
	int rc = bm_pci_cfg_read(P.host, bus, dev, fn, reg, size, &v);
	trace("cfg_read(%02x:%02x.%x, %#x, %u) = %d, %#x", bus, dev, fn, reg, size, rc, v);
	CHECK(rc == (to < 0 ? -ENODEV : 0) && v == want,
	      "bm_pci_cfg_read(%02x:%02x.%x, %#x, %u) = %d, %#x; model %#x", bus, dev, fn, reg,
	      size, rc, v, want);
}

static void op_cfg_write(bool any_bdf, bool by_handle)
{
	int fi = rd_func();
	if (fi < 0)
		return;
	const struct mfunc *m = &P.fn[fi];
	unsigned bus = bus_number(m->bus), dev = m->dev, fn = m->fn;
	if (any_bdf) {
		bus = in_u8(&P.in);
		dev = in_u8(&P.in) % 32;
		fn = in_u8(&P.in) % 8;
	}
	unsigned reg = rd_reg(fi), size = rd_size();
	uint32_t value = (rd_value_for(fi, reg & ~3u) >> (8 * (reg & 3))) & ones(size);
	int rc;
	if (by_handle) {
		rc = bm_pci_func_cfg_write(m->f, reg, size, value);
		trace("func_cfg_write(f%d, %#x, %u, %#x) = %d", fi, reg, size, value, rc);
		CHECK(rc == 0, "bm_pci_func_cfg_write returned %d", rc);
		cfg_write(fi, reg, size, value);
	} else {
		api_write(bus, dev, fn, reg, size, value);
	}
}

static void op_cfg_read(void)
{
	int fi = rd_func();
	if (fi < 0)
		return;
	const struct mfunc *m = &P.fn[fi];
	unsigned reg = rd_reg(fi), size = rd_size();
	api_read(bus_number(m->bus), m->dev, m->fn, reg, size);
}

/* Where a space shows config space: CF8/CFC (x86) or ECAM. */
static void op_cf8(void)
{
	if (!P.x86)
		return;
	int fi = rd_func();
	if (fi < 0)
		return;
	const struct mfunc *m = &P.fn[fi];
	unsigned reg = rd_reg(fi) & 0xfc;
	uint32_t latch = CFG_ENABLE | bus_number(m->bus) << 16 | m->dev << 11 | m->fn << 8 | reg;
	if (in_u8(&P.in) % 8 == 0)
		latch ^= (uint32_t)in_bytes(&P.in, 4);
	access(P.io, 1, CONF_PORT, 4, true, latch);
	if (in_u8(&P.in) & 1)
		return;
	/* and the data, as firmware does right after */
	unsigned size = rd_size(), off = size == 4 ? 0 : in_u8(&P.in) % (4 / size) * size;
	bool write = in_u8(&P.in) % 3 != 0;
	uint32_t v = (rd_value_for(fi, reg) >> (8 * off)) & ones(size);
	access(P.io, 1, CONF_PORT + 4 + off, size, write, v);
}

static void op_cfc(void)
{
	if (!P.x86)
		return;
	uint64_t addr = 0xcf6 + in_u8(&P.in) % 12;
	unsigned size = 1u << (in_u8(&P.in) % 4);
	bool write = in_u8(&P.in) & 1;
	access(P.io, 1, addr, size, write, write ? rd_value() : 0);
}

static void op_ecam(void)
{
	int fi = rd_func();
	if (fi < 0)
		return;
	const struct mfunc *m = &P.fn[fi];
	uint64_t bus = bus_number(m->bus);
	if (in_u8(&P.in) % 8 == 0)
		bus = in_u8(&P.in);
	unsigned reg = rd_reg(fi);
	uint64_t off = ((bus - P.ecam_first) & 0xff) << 20 | (uint64_t)m->dev << 15 |
	               (uint64_t)m->fn << 12 | reg;
	unsigned size = 1u << (in_u8(&P.in) % 4);
	bool write = in_u8(&P.in) & 1;
	uint64_t v = 0;
	if (write) {
		v = rd_value_for(fi, reg & ~3u) >> (8 * (reg & 3));
		if (size == 8)
			v |= (uint64_t)rd_value_for(fi, (reg & ~3u) + 4) << 32;
	}
	access(P.mem, 0, ECAM_BASE + off, size, write, v);
}

/* An address where something begins or ends: a BAR, a window, the configuration regions. */
static uint64_t rd_addr(int *root)
{
	struct rvec *v = (*root = in_u8(&P.in) & 1) ? &P.want_io : &P.want_mem;
	if (!P.x86)
		*root = 0, v = &P.want_mem;
	model_view(&P.M, *root, v, NULL, &P.cwant);
	if (!v->n || in_u8(&P.in) % 8 == 0)
		return in_u64(&P.in);
	const struct bm_flat_range *r = &v->v[in_below(&P.in, v->n)];
	int d = (int)(in_u8(&P.in) % 11) - 5;
	return (in_u8(&P.in) & 1 ? r->last : r->start) + (uint64_t)(int64_t)d;
}

static void op_access(void)
{
	int root;
	uint64_t addr = rd_addr(&root);
	unsigned size = 1u << (in_u8(&P.in) % 4);
	bool write = in_u8(&P.in) % 3 == 0;
	access(root ? P.io : P.mem, root, addr, size, write, write ? in_u64(&P.in) : 0);
}

/* Firmware sizing a BAR and placing it: all ones, read back, an address. */
static void op_size_and_place(void)
{
	int fi = rd_func();
	if (fi < 0)
		return;
	const struct mfunc *m = &P.fn[fi];
	unsigned reg = bar_reg(m, in_u8(&P.in) % NSLOTS), bus = bus_number(m->bus);
	api_write(bus, m->dev, m->fn, reg, 4, UINT32_MAX);
	api_read(bus, m->dev, m->fn, reg, 4);
	api_write(bus, m->dev, m->fn, reg, 4, rd_value());
}

static void op_observer(void)
{
	P.observe = !P.observe;
	int rc = bm_pci_host_set_map_observer(P.host, P.observe ? observer : NULL, NULL);
	trace("observer %s = %d", P.observe ? "on" : "off", rc);
	CHECK(rc == 0, "bm_pci_host_set_map_observer returned %d", rc);
}

static void unplug_model(int fi)
{
	struct mfunc *m = &P.fn[fi];
	if (m->bridge) {
		for (unsigned devfn = 0; devfn < 256; devfn++) {
			int c = func_at(m->sec, devfn);
			if (c >= 0)
				unplug_model(c);
		}
		P.bus[m->sec].live = false;
	}
	for (unsigned i = 0; i < NSLOTS; i++)
		if (m->bar[i].size && m->bar[i].mapped) {
			expect_event(fi, i, false, m->bar[i].maddr);
			m->bar[i].mapped = false;
		}
	m->live = false;
}

static void op_unplug(void)
{
	int fi = rd_func();
	if (fi <= 0)
		return; /* the host bridge stays, so that bus 0 always answers somewhere */
	bm_pci_func *f = P.fn[fi].f;
	unplug_model(fi);
	int rc = bm_pci_func_free(f);
	trace("func_free(f%d) = %d", fi, rc);
	CHECK(rc == 0, "bm_pci_func_free returned %d", rc);
	/* the contents stay ours: take them back */
	for (int i = 0; i < P.nfn; i++)
		for (unsigned k = 0; !P.fn[i].live && k < NSLOTS; k++)
			if (P.fn[i].bar[k].contents && !bm_region_parent(P.fn[i].bar[k].contents)) {
				bm_region_destroy(P.fn[i].bar[k].contents);
				P.fn[i].bar[k].contents = NULL;
			}
}

/* ------------------------------------------------------------------ topology */

static uint64_t rd_bar_size(int type)
{
	unsigned e = in_u8(&P.in);
	switch (type) {
	case T_IO:
		return 1ull << (2 + e % 8); /* 4 .. 512 ports */
	case T_MEM32:
		return 1ull << (4 + (e & 0x80 ? e % 28 : e % 12));
	default:
		return 1ull << (4 + (e & 0x80 ? e % 60 : e % 20));
	}
}

static int bus_new(int bridge)
{
	for (int b = 1; b < MAX_BUSES; b++)
		if (!P.bus[b].live && P.bus[b].bridge == 0) {
			P.bus[b] = (struct mbus){true, bridge, NULL, NULL};
			return b;
		}
	return -1;
}

static void func_create(void)
{
	int buses[MAX_BUSES], nb = 0;
	if (P.nfn == MAX_FUNCS)
		return;
	for (int b = 0; b < MAX_BUSES; b++)
		if (P.bus[b].live)
			buses[nb++] = b;
	int bus = buses[in_below(&P.in, (uint64_t)nb)];
	uint8_t k = in_u8(&P.in);
	unsigned dev = in_u8(&P.in) % 32, fn = k & 0x40 ? in_u8(&P.in) % 8 : 0;
	bool bridge = (k & 3) >= 2 && P.nodes + 5 + 4 <= MODEL_MAXN;
	int sec = -1;
	if (bridge && (sec = bus_new(P.nfn)) < 0)
		bridge = false;
	int fi = P.nfn;
	struct mfunc *m = &P.fn[fi];
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4,
	                             .device_id = (uint16_t)(0x1000 + fi),
	                             .class_code = bridge ? 0x060400 : 0x020000,
	                             .header =
	                                 bridge ? BM_PCI_HEADER_BRIDGE : BM_PCI_HEADER_ENDPOINT,
	                             .extended = k & 4};
	memset(m, 0, sizeof(*m));
	m->bridge = bridge;
	m->bus = bus;
	m->dev = dev;
	m->fn = fn;
	m->cfg_size = d.extended ? 4096 : 256;
	int need = bridge ? 5 : 0;
	unsigned nbars = bridge ? 2 : 6;
	for (unsigned i = 0; i < nbars; i++) {
		unsigned t = in_u8(&P.in) % 6;
		int type = t == 0 || t == 5 ? T_NONE : t == 1 ? T_IO : t == 2 ? T_MEM32 : T_MEM64;
		if (type == T_MEM64 && (i + 1 >= nbars))
			type = T_MEM32;
		if (type == T_NONE || P.nodes + need + 2 > MODEL_MAXN)
			continue;
		struct mbar *b = &m->bar[i];
		b->type = type;
		b->pref = type != T_IO && (in_u8(&P.in) & 1);
		b->size = rd_bar_size(type);
		need += 2;
		if (type == T_MEM64)
			i++; /* the upper half */
	}
	if ((in_u8(&P.in) & 3) == 0 && P.nodes + need + 2 <= MODEL_MAXN) {
		m->bar[ROM].type = T_MEM32;
		m->bar[ROM].size = 1ull << (11 + in_u8(&P.in) % 21);
		need += 2;
	}
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct mbar *b = &m->bar[i];
		struct bm_pci_bar_desc *bd = i == ROM ? &d.rom : &d.bars[i];
		if (!b->size)
			continue;
		char name[24];
		b->id = ++P.next_id;
		snprintf(name, sizeof(name), "f%d.bar%u", fi, i);
		int rc =
		    bm_region_new_io(P.sys, name, b->size, &bar_ops, (void *)b->id, &b->contents);
		CHECK(rc == 0, "bm_region_new_io for a BAR returned %d", rc);
		bd->type = i == ROM
		               ? BM_PCI_BAR_NONE
		               : (enum bm_pci_bar_type)(b->type == T_IO      ? BM_PCI_BAR_IO
		                                        : b->type == T_MEM32 ? BM_PCI_BAR_MEM32
		                                                             : BM_PCI_BAR_MEM64);
		bd->size = b->size;
		bd->prefetchable = b->pref;
		bd->region = b->contents;
	}
	if (bridge) {
		d.secondary_bus = in_u8(&P.in);
		d.subordinate_bus = in_u8(&P.in);
		d.bridge_io32 = m->io32 = k & 8;
		d.bridge_pref64 = m->pref64 = k & 16;
	}
	bool taken = func_at(bus, dev << 3 | fn) >= 0;
	int rc = bm_pci_func_new(bus == 0 ? bm_pci_host_root_bus(P.host)
	                                  : bm_pci_func_secondary_bus(P.fn[P.bus[bus].bridge].f),
	                         dev, fn, &d, &m->f);
	trace("func_new(f%d %s on bus %d at %02x.%x) = %d", fi, bridge ? "bridge" : "endpoint", bus,
	      dev, fn, rc);
	CHECK(rc == (taken ? -EEXIST : 0), "bm_pci_func_new returned %d, model says %d", rc,
	      taken ? -EEXIST : 0);
	if (rc) {
		for (unsigned i = 0; i < NSLOTS; i++)
			bm_region_destroy(m->bar[i].contents);
		if (bridge)
			P.bus[sec] = (struct mbus){0};
		memset(m, 0, sizeof(*m));
		return;
	}
	m->live = true;
	P.nfn++;
	P.nodes += need;
	regs_init(m, d.secondary_bus, d.subordinate_bus);
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct bm_pci_bar_info bi;
		if (m->bar[i].size && bm_pci_bar_info(m->f, i, &bi) == 0)
			m->bar[i].container = bi.region;
	}
	if (bridge) {
		m->sec = sec;
		bm_pci_bus *sb = bm_pci_func_secondary_bus(m->f);
		P.bus[sec].mem = bm_pci_bus_mem_region(sb);
		P.bus[sec].io = bm_pci_bus_io_region(sb);
	}
}

static void host_create(void)
{
	uint8_t cfg = in_u8(&P.in);
	static const int prios[4] = {-1, 0, 1, INT_MAX};

	P.decode_zero = cfg & 1;
	P.io_limit = cfg & 2 ? 0xffffffffull : 0x10000;
	P.x86 = !(cfg & 4);
	P.mem_prio = prios[(cfg >> 3) & 3];
	P.io_prio = prios[(cfg >> 5) & 3];
	P.ecam_first = cfg & 0x80 ? 1 : 0;
	P.ecam_count = 16;
	struct bm_pci_host_config hc = {
	    .mem = P.mem,
	    .io = P.x86 ? P.io : NULL,
	    .io_window_base = P.x86 ? 0 : IOWIN_BASE,
	    .io_window_size = P.x86 ? 0 : IOWIN_SIZE,
	    .io_limit = P.io_limit,
	    .decode_zero = P.decode_zero,
	    .cf8 = P.x86,
	    .ecam = true,
	    .ecam_base = ECAM_BASE,
	    .ecam_bus_first = (uint8_t)P.ecam_first,
	    .ecam_bus_count = (uint16_t)P.ecam_count,
	    .mem_priority = P.mem_prio,
	    .io_priority = P.io_prio,
	};
	int rc = bm_pci_host_new(P.sys, &hc, &P.host);
	CHECK(rc == 0, "bm_pci_host_new returned %d", rc);
	P.bus[0] =
	    (struct mbus){true, -1, bm_pci_host_mem_region(P.host), bm_pci_host_io_region(P.host)};
	/* the configuration regions are the host's own: find them where they show */
	P.got_v.n = 0;
	bm_space_flat(P.mem, collect_fn, &P.got_v);
	long k = rvec_find(&P.got_v, ECAM_BASE);
	CHECK(k >= 0, "no ECAM window at %#llx", ECAM_BASE);
	P.ecam_r = P.got_v.v[k].region;
	if (P.x86) {
		P.got_v.n = 0;
		bm_space_flat(P.io, collect_fn, &P.got_v);
		k = rvec_find(&P.got_v, CONF_PORT);
		CHECK(k >= 0, "no CF8/CFC at %#x", CONF_PORT);
		P.conf_r = P.got_v.v[k].region;
	}
	P.nodes = 2 + 2 + 2;
	/* the host bridge at 00:00.0 */
	struct mfunc *m = &P.fn[0];
	memset(m, 0, sizeof(*m));
	m->live = true;
	m->f = bm_pci_host_bridge_func(P.host);
	m->cfg_size = 256;
	regs_init(m, 0, 0);
	P.nfn = 1;
}

/* ------------------------------------------------------------------ one input */

static void check_all(void)
{
	check_events();
	check_funcs();
	build_tree();
	check_space(P.mem, 0, &P.want_mem);
	if (P.x86)
		check_space(P.io, 1, &P.want_io);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = getenv("FUZZ_TRACE");

	memset(&P, 0, sizeof(P));
	P.trace_all = t && *t && *t != '0';
	P.in = (struct fz_input){data, size};
	for (int b = 0; b < MAX_BUSES; b++)
		P.bus[b].bridge = 0;
	P.stamp = STAMP_FIRST;
	CHECK(bm_system_new(&P.sys) == 0, "bm_system_new failed");
	CHECK(bm_space_new(P.sys, "memory", "system", &P.mem) == 0, "bm_space_new failed");
	CHECK(bm_space_new(P.sys, "io", "io", &P.io) == 0, "bm_space_new failed");
	CHECK(bm_vcpu_new(P.sys, 0, NULL, &P.vcpu) == 0, "bm_vcpu_new failed");
	host_create();
	unsigned nf = 1 + in_u8(&P.in) % 6;
	for (unsigned i = 0; i < nf; i++)
		func_create();
	check_all();
	for (P.op = 1; !in_empty(&P.in) && P.op <= MAX_OPS; P.op++) {
		switch (in_u8(&P.in) % 16) {
		case 0:
		case 1:
		case 2:
			op_cfg_write(false, false);
			break;
		case 3:
			op_cfg_write(true, false);
			break;
		case 4:
			op_cfg_write(false, true);
			break;
		case 5:
			op_cfg_read();
			break;
		case 6:
			op_cf8();
			break;
		case 7:
		case 8:
			op_cfc();
			break;
		case 9:
		case 10:
			op_ecam();
			break;
		case 11:
		case 12:
			op_access();
			break;
		case 13:
			op_size_and_place();
			break;
		case 14:
			op_observer();
			break;
		default:
			if (in_u8(&P.in) % 8 == 0)
				op_unplug();
			break;
		}
		check_all();
	}
	CHECK(bm_vcpu_free(P.vcpu) == 0, "bm_vcpu_free failed");
	CHECK(bm_pci_host_free(P.host) == 0, "bm_pci_host_free failed");
	CHECK(bm_system_free(P.sys) == 0, "bm_system_free failed");
	model_release(&P.M);
	free(P.want_mem.v);
	free(P.want_io.v);
	free(P.got_v.v);
	free(P.cwant.v);
	free(P.cgot.v);
	return 0;
}
