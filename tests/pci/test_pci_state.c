/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Saving and restoring PCI state: a machine with endpoints, two levels of bridges, every
 * kind of BAR, MSI and MSI-X in use, a BAR half-way through sizing, bridge windows and
 * overlapping BARs is saved and restored into a fresh copy, into a copy programmed
 * differently and into itself; each time the flat maps, conflicts, every configuration
 * register, every BAR and window and every MSI-X entry must read as in the original, and the
 * copy must save to the same bytes. Then every kind of damaged, foreign or misfitting blob
 * is refused with the target exactly as it was, and so is a restore that runs out of memory
 * at any of its allocations.
 */
#include "allocfail/wrap.h"
#include "blob.h"
#include "pcitest.h"

#include <busmap/pci_state.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#define CMD_IO           0x1
#define CMD_MEM          0x2
#define CMD_MASTER       0x4
#define CMD_INTX_DISABLE 0x400
#define NET_TABLE        0xfe000000ull /* net's BAR1, where its MSI-X table is at 0 */
#define E1_BAR0          0xfe204000ull

/* The layout pci_state.h documents. */
#define HEADER_LEN    32
#define HOST_TOPO_LEN 48
#define FUNC_TOPO_LEN 114
#define NFUNCS        8 /* host bridge, net, blk, blk1, br, e1, br2, e2 */

enum variant {
	V_SAME,
	V_MISSING,   /* no 00:03.1 */
	V_EXTRA,     /* one more endpoint, 00:05.0 */
	V_BAR_SIZE,  /* 00:03.0's BAR0 twice as large */
	V_DEVICE_ID, /* 00:03.0 with another device ID */
	V_NO_MSI,    /* 00:03.1 without its MSI capability */
	V_ECAM,      /* the host's ECAM window elsewhere */
};

struct machine {
	struct pt *t;
	bm_pci_func *net, *blk, *blk1, *br, *e1, *br2, *e2;
	struct probe p[12];
};

/*
 * 00:00.0 host bridge
 * 00:02.0 net   I/O BAR0, 32-bit BAR1 (MSI-X table and PBA), 64-bit prefetchable BAR2,
 *               64-bit BAR4, ROM; MSI-X with 8 vectors
 * 00:03.0 blk   4 KiB configuration space, PCI Express, 32-bit BAR0, I/O BAR1, MSI
 * 00:03.1 blk1  32-bit BAR0, MSI with 4 maskable vectors and 64-bit addresses
 * 00:04.0 br    bridge with 32-bit I/O and 64-bit prefetchable windows and a BAR -> bus 1:
 *   01:00.0 e1  32-bit BAR0 (MSI-X), I/O BAR1, 64-bit prefetchable BAR2
 *   01:01.0 br2 bridge -> bus 2:
 *     02:00.0 e2  32-bit BAR0
 */
static void build(struct machine *m, enum variant v)
{
	memset(m, 0, sizeof(*m));
	struct bm_pci_host_config hc = {
	    .cf8 = true, .ecam = true, .ecam_base = v == V_ECAM ? 0xc0000000 : ECAM_BASE};
	m->t = pt_new_with(hc, true);
	struct bm_pci_func_desc net = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1041,
	    .class_code = 0x020000,
	    .intx_pin = 1,
	    .bars =
	        {{.type = BM_PCI_BAR_IO, .size = 64, .ops = &probe_ops, .opaque = &m->p[0]},
	         {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &m->p[1]},
	         {.type = BM_PCI_BAR_MEM64,
	          .size = 1 << 20,
	          .prefetchable = true,
	          .ops = &probe_ops,
	          .opaque = &m->p[2]},
	         {0},
	         {.type = BM_PCI_BAR_MEM64, .size = 16384, .ops = &probe_ops, .opaque = &m->p[3]}},
	    .rom = {.size = 65536, .ops = &probe_ops, .opaque = &m->p[4]}};
	m->net = pt_add(m->t, NULL, 2, 0, &net);
	assert_int_equal(bm_pci_func_add_msix(m->net, 8, 1, 0, 1, 0x800, NULL), 0);
	struct bm_pci_func_desc blk = {
	    .vendor_id = 0x1af4,
	    .device_id = v == V_DEVICE_ID ? 0x1042 : 0x1001,
	    .class_code = 0x010000,
	    .intx_pin = 1,
	    .extended = true,
	    .bars = {{.type = BM_PCI_BAR_MEM32,
	              .size = v == V_BAR_SIZE ? 8192 : 4096,
	              .ops = &probe_ops,
	              .opaque = &m->p[5]},
	             {.type = BM_PCI_BAR_IO, .size = 32, .ops = &probe_ops, .opaque = &m->p[6]}}};
	m->blk = pt_add(m->t, NULL, 3, 0, &blk);
	assert_int_equal(bm_pci_func_add_pcie(m->blk, BM_PCIE_ENDPOINT, NULL), 0);
	assert_int_equal(bm_pci_func_add_msi(m->blk, 1, false, false, NULL), 0);
	if (v != V_MISSING) {
		struct bm_pci_func_desc blk1 = {.vendor_id = 0x8086,
		                                .device_id = 0x1234,
		                                .intx_pin = 2,
		                                .bars = {{.type = BM_PCI_BAR_MEM32,
		                                          .size = 4096,
		                                          .ops = &probe_ops,
		                                          .opaque = &m->p[7]}}};
		m->blk1 = pt_add(m->t, NULL, 3, 1, &blk1);
		if (v != V_NO_MSI)
			assert_int_equal(bm_pci_func_add_msi(m->blk1, 4, true, true, NULL), 0);
	}
	struct bm_pci_func_desc br = {
	    .vendor_id = 0x1b36,
	    .device_id = 0x0001,
	    .class_code = 0x060400,
	    .header = BM_PCI_HEADER_BRIDGE,
	    .intx_pin = 1,
	    .bridge_io32 = true,
	    .bridge_pref64 = true,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &m->p[8]}}};
	m->br = pt_add(m->t, NULL, 4, 0, &br);
	bm_pci_bus *bus1 = bm_pci_func_secondary_bus(m->br);
	struct bm_pci_func_desc e1 = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1000,
	    .intx_pin = 1,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 16384, .ops = &probe_ops, .opaque = &m->p[9]},
	        {.type = BM_PCI_BAR_IO, .size = 16},
	        {.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .prefetchable = true}}};
	m->e1 = pt_add(m->t, bus1, 0, 0, &e1);
	assert_int_equal(bm_pci_func_add_msix(m->e1, 4, 0, 0x2000, 0, 0x3000, NULL), 0);
	struct bm_pci_func_desc br2 = {.vendor_id = 0x1b36,
	                               .device_id = 0x0001,
	                               .class_code = 0x060400,
	                               .header = BM_PCI_HEADER_BRIDGE};
	m->br2 = pt_add(m->t, bus1, 1, 0, &br2);
	struct bm_pci_func_desc e2 = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1005,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &m->p[10]}}};
	m->e2 = pt_add(m->t, bm_pci_func_secondary_bus(m->br2), 0, 0, &e2);
	if (v == V_EXTRA)
		pt_add(m->t, NULL, 5, 0, &e2);
	m->t->nev = m->t->nmsi = m->t->nintx = 0;
}

static void msix_entry(struct machine *m, uint64_t table, unsigned v, uint32_t addr, uint32_t data,
                       bool masked)
{
	uint32_t dw[4] = {addr, 0, data, masked};
	/* A write into an overlap of BARs says so (BM_ACCESS_CONFLICT). */
	for (unsigned i = 0; i < 4; i++)
		assert_true(bm_write(m->t->vcpu, m->t->mem, table + 16 * v + 4 * i, 4, dw[i]) >= 0);
}

static void set_latch(struct machine *m, uint32_t v)
{
	assert_int_equal(bm_write(m->t->vcpu, m->t->io, 0xcf8, 4, v), 0);
}

/* What a guest and its devices leave behind: the state every test saves. */
static void program_a(struct machine *m)
{
	/* Bus numbers. */
	wr(m->br, 0x18, 4, 0x00020100);
	wr(m->br2, 0x18, 4, 0x00020201);
	/* net: BAR1 away from where it ends up, for now. */
	wr(m->net, 0x10, 4, 0xc000);
	wr(m->net, 0x14, 4, 0xfe010000);
	wr(m->net, 0x18, 4, 0x0);
	wr(m->net, 0x1c, 4, 0x8);
	wr(m->net, 0x20, 4, 0xfd000000);
	wr(m->net, 0x24, 4, 0x0);
	wr(m->net, 0x30, 4, 0xfe100001);
	wr(m->net, 0x04, 2, CMD_IO | CMD_MEM | CMD_MASTER);
	/* blk's BAR0 at 0xfe000000, then net's BAR1 onto it: net's, newer, wins. A restore
	 * that decoded functions in order would put blk's on top. */
	wr(m->blk, 0x10, 4, 0xfe000000);
	wr(m->blk, 0x14, 4, 0xc040);
	wr(m->blk, 0x04, 2, CMD_IO | CMD_MEM);
	wr(m->net, 0x14, 4, (uint32_t)NET_TABLE);
	/* net's 64-bit BAR4 half-way through sizing: low dword all ones, high dword 0. */
	wr(m->net, 0x20, 4, 0xffffffff);
	/* net's MSI-X: enabled, every entry written, vectors 2 and 5 masked, 2 pending. */
	unsigned cap = bm_pci_func_find_cap(m->net, 0x11, false);
	wr(m->net, cap + 2, 2, 0x8000);
	for (unsigned v = 0; v < 8; v++)
		msix_entry(m, NET_TABLE, v, 0xfee00000 + (v << 12), 0x30 + v, v == 2 || v == 5);
	assert_int_equal(bm_pci_msi_notify(m->net, 2), 1);
	assert_int_equal(bm_pci_msi_notify(m->net, 0), 0);
	/* blk: MSI on, INTx line up. */
	cap = bm_pci_func_find_cap(m->blk, 0x05, false);
	wr(m->blk, cap + 4, 4, 0xfee01000);
	wr(m->blk, cap + 8, 2, 0x41);
	wr(m->blk, cap + 2, 2, 0x1);
	assert_int_equal(bm_pci_intx_set(m->blk, true), 0);
	/* br: all three windows, its own BAR, decoding. */
	wr(m->br, 0x1c, 2, 0x2020);     /* I/O [0x2000, 0x2fff] */
	wr(m->br, 0x30, 4, 0x0);        /* upper 16 bits of both */
	wr(m->br, 0x20, 4, 0xfe30fe20); /* memory [0xfe200000, 0xfe3fffff] */
	wr(m->br, 0x24, 4, 0x00010001);
	wr(m->br, 0x28, 4, 0x9); /* prefetchable [0x900000000, 0x9000fffff] */
	wr(m->br, 0x2c, 4, 0x9);
	wr(m->br, 0x10, 4, 0xfe400000);
	wr(m->br, 0x04, 2, CMD_IO | CMD_MEM);
	/* blk1's BAR0 onto br's memory window, after it: the BAR wins over the window. */
	if (m->blk1) {
		wr(m->blk1, 0x10, 4, 0xfe200000);
		wr(m->blk1, 0x04, 2, CMD_MEM | CMD_INTX_DISABLE);
		cap = bm_pci_func_find_cap(m->blk1, 0x05, false);
		if (cap) {
			wr(m->blk1, cap + 4, 4, 0xfee02000);
			wr(m->blk1, cap + 8, 4, 0x0);
			wr(m->blk1, cap + 0xc, 2, 0x50);
			wr(m->blk1, cap + 0x10, 4, 0x2); /* vector 1 masked */
			wr(m->blk1, cap + 2, 2, 0x0021); /* 4 vectors, enabled */
			assert_int_equal(bm_pci_msi_notify(m->blk1, 1), 1);
		}
		assert_int_equal(bm_pci_intx_set(m->blk1, true), 0); /* INTx disabled */
	}
	/* e1 behind br: every BAR, MSI-X enabled with the whole function masked, 1 pending. */
	wr(m->e1, 0x10, 4, (uint32_t)E1_BAR0);
	wr(m->e1, 0x14, 4, 0x2000);
	wr(m->e1, 0x18, 4, 0x0);
	wr(m->e1, 0x1c, 4, 0x9);
	wr(m->e1, 0x04, 2, CMD_IO | CMD_MEM);
	cap = bm_pci_func_find_cap(m->e1, 0x11, false);
	wr(m->e1, cap + 2, 2, 0xc000);
	msix_entry(m, E1_BAR0 + 0x2000, 1, 0xfee03000, 0x61, false);
	assert_int_equal(bm_pci_msi_notify(m->e1, 1), 1);
	/* br2 and e2 behind it; e2's 32-bit BAR0 being sized (not decoded then). */
	wr(m->br2, 0x20, 4, 0xfe30fe30);
	wr(m->br2, 0x04, 2, CMD_MEM);
	wr(m->e2, 0x10, 4, 0xfe300000);
	wr(m->e2, 0x04, 2, CMD_MEM);
	wr(m->e2, 0x10, 4, 0xffffffff);
	/* A guest's half-done CF8/CFC access. */
	set_latch(m, 0x80002010);
}

/* Another guest's state on the same machine: everything elsewhere. */
static void program_b(struct machine *m)
{
	wr(m->br, 0x18, 4, 0x00030100);
	wr(m->br2, 0x18, 4, 0x00030301);
	wr(m->net, 0x10, 4, 0xd000);
	wr(m->net, 0x14, 4, 0xfe050000);
	wr(m->net, 0x30, 4, 0xfe100000);
	wr(m->net, 0x04, 2, CMD_IO | CMD_MEM);
	msix_entry(m, 0xfe050000, 3, 0xfee0f000, 0x99, false);
	wr(m->blk, 0x10, 4, 0xfe060000);
	wr(m->blk, 0x04, 2, CMD_MEM);
	if (m->blk1) {
		wr(m->blk1, 0x10, 4, 0xfe070000);
		wr(m->blk1, 0x04, 2, CMD_MEM);
	}
	wr(m->br, 0x20, 4, 0xfe50fe40);
	wr(m->br, 0x04, 2, CMD_MEM);
	wr(m->e1, 0x10, 4, 0xfe404000);
	wr(m->e1, 0x04, 2, CMD_MEM);
	assert_int_equal(bm_pci_intx_set(m->net, true), 0);
	set_latch(m, 0x80000000);
	m->t->nev = m->t->nmsi = m->t->nintx = 0;
}

static void free_machine(struct machine *m)
{
	pt_free(m->t);
}

/* ---- what a guest can observe, as text ---- */

static void dump_conflicts(FILE *f, bm_space *s)
{
	struct bm_conflict c[32];
	size_t n = bm_space_conflicts(s, c, 32);
	for (size_t i = 0; i < n && i < 32; i++)
		fprintf(f, "conflict %llx-%llx %s hides %s\n", (unsigned long long)c[i].start,
		        (unsigned long long)c[i].last, bm_region_name(c[i].winner),
		        bm_region_name(c[i].loser));
}

static void dump_func(FILE *out, struct machine *m, bm_pci_func *f)
{
	uint8_t bus, dev, fn;
	bm_pci_func_bdf(f, &bus, &dev, &fn);
	fprintf(out, "%s at %02x:%02x.%x\n", bm_pci_func_name(f), bus, dev, fn);
	/* A 256-byte function reads all ones from 0x100 on. */
	unsigned size = rd(f, 0x100, 4) == 0xffffffff ? 0x100 : 0x1000;
	for (unsigned r = 0; r < size; r += 4) {
		uint32_t v = rd(f, r, 4);
		if (v)
			fprintf(out, " %03x: %08x\n", r, v);
	}
	for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
		struct bm_pci_bar_info bi;
		if (bm_pci_bar_info(f, i, &bi) == 0)
			fprintf(out, " bar%u addr %llx mapped %d at %llx\n", i,
			        (unsigned long long)bi.addr, bi.mapped,
			        (unsigned long long)bi.mapped_addr);
	}
	for (unsigned k = 0; bm_pci_func_is_bridge(f) && k < 3; k++) {
		struct bm_pci_window w;
		assert_int_equal(bm_pci_bridge_window(f, (enum bm_pci_window_kind)k, &w), 0);
		fprintf(out, " window%u %d %llx-%llx\n", k, w.enabled, (unsigned long long)w.base,
		        (unsigned long long)w.last);
	}
	/* MSI-X table and PBA, through memory, where they are decoded. */
	unsigned cap = bm_pci_func_find_cap(f, 0x11, false);
	if (!cap)
		return;
	unsigned nvec = (rd(f, cap + 2, 2) & 0x7ff) + 1;
	uint32_t table = rd(f, cap + 4, 4), pba = rd(f, cap + 8, 4);
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, table & 7, &bi), 0);
	if (!bi.mapped)
		return;
	for (unsigned i = 0; i < nvec * 4; i++)
		fprintf(out, " table[%u] %08llx\n", i,
		        (unsigned long long)mem_rd(m->t, m->t->mem,
		                                   bi.mapped_addr + (table & ~7u) + 4 * i, 4));
	assert_int_equal(bm_pci_bar_info(f, pba & 7, &bi), 0);
	fprintf(out, " pba %016llx\n",
	        (unsigned long long)mem_rd(m->t, m->t->mem, bi.mapped_addr + (pba & ~7u), 8));
}

/* The flat maps, region trees and conflicts of both spaces, every function's registers,
 * BARs and windows, every MSI-X entry and the CF8 latch. */
static char *snapshot(struct machine *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(bm_space_dump_flat(m->t->mem, out), 0);
	assert_int_equal(bm_space_dump_flat(m->t->io, out), 0);
	assert_int_equal(bm_space_dump_mtree(m->t->mem, out), 0);
	assert_int_equal(bm_space_dump_mtree(m->t->io, out), 0);
	dump_conflicts(out, m->t->mem);
	dump_conflicts(out, m->t->io);
	for (bm_pci_func *f = bm_pci_func_next(m->t->host, NULL); f;
	     f = bm_pci_func_next(m->t->host, f))
		dump_func(out, m, f);
	fprintf(out, "latch %08llx\n", (unsigned long long)mem_rd(m->t, m->t->io, 0xcf8, 4));
	fclose(out);
	return text;
}

static uint8_t *save(struct machine *m, size_t *len)
{
	size_t need = 0;
	assert_int_equal(bm_pci_host_save(m->t->host, NULL, 0, &need), -ENOSPC);
	uint8_t *buf = malloc(need);
	assert_non_null(buf);
	assert_int_equal(bm_pci_host_save(m->t->host, buf, need, len), 0);
	assert_int_equal(*len, need);
	return buf;
}

/* A machine in state A and its blob. */
struct saved {
	struct machine m;
	uint8_t *blob;
	size_t len;
	char *text;
};

static void saved_new(struct saved *s)
{
	build(&s->m, V_SAME);
	program_a(&s->m);
	s->blob = save(&s->m, &s->len);
	s->text = snapshot(&s->m);
}

static void saved_free(struct saved *s)
{
	free(s->blob);
	free(s->text);
	free_machine(&s->m);
}

/* ---- the format, read independently ---- */

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

struct layout {
	size_t n;
	size_t topo[NFUNCS], state[NFUNCS], ranks[NFUNCS], msix[NFUNCS];
	unsigned cfg_size[NFUNCS], nvec[NFUNCS];
	bool bridge[NFUNCS];
};

static struct layout layout_of(const uint8_t *b, size_t len)
{
	struct layout l = {.n = le(b + 24, 4)};
	assert_int_equal(l.n, NFUNCS);
	size_t at = HEADER_LEN + HOST_TOPO_LEN;
	for (size_t i = 0; i < l.n; i++, at += FUNC_TOPO_LEN) {
		l.topo[i] = at;
		l.bridge[i] = (b[at + 5] & 0x7f) == 1;
		l.cfg_size[i] = (unsigned)le(b + at + 12, 2);
		l.nvec[i] = (unsigned)le(b + at + 96, 2);
	}
	at += 4; /* the CF8 latch */
	for (size_t i = 0; i < l.n; i++) {
		l.state[i] = at;
		l.ranks[i] = at + l.cfg_size[i] + 4;
		l.msix[i] = l.ranks[i] + 28 + (l.bridge[i] ? 12 : 0);
		at = l.msix[i] + 16 * l.nvec[i] + 8 * ((l.nvec[i] + 63) / 64);
	}
	assert_int_equal(at + 4, len);
	return l;
}

/* ---- refusals leave the target as it was ---- */

struct target {
	struct machine m;
	char *text;
	uint8_t *blob;
	size_t len;
};

static void target_new(struct target *t, enum variant v)
{
	build(&t->m, v);
	program_b(&t->m);
	t->text = snapshot(&t->m);
	t->blob = save(&t->m, &t->len);
}

/* Cheap and complete for the raw state: the target saves to the same bytes, nothing was
 * published, no hook ran. */
static void target_check_quick(struct target *t)
{
	size_t len = 0;
	uint8_t *now = save(&t->m, &len);
	assert_int_equal(len, t->len);
	assert_memory_equal(now, t->blob, len);
	free(now);
	assert_int_equal(t->m.t->nev, 0);
	assert_int_equal(t->m.t->nmsi, 0);
	assert_int_equal(t->m.t->nintx, 0);
}

/* And what the guest reads. */
static void target_check(struct target *t)
{
	target_check_quick(t);
	char *now = snapshot(&t->m);
	assert_string_equal(now, t->text);
	free(now);
}

static void target_free(struct target *t)
{
	free(t->text);
	free(t->blob);
	free_machine(&t->m);
}

static void expect_refused(struct target *t, const uint8_t *b, size_t len, int err)
{
	assert_int_equal(bm_pci_host_restore(t->m.t->host, b, len), err);
	target_check(t);
}

/* ---- tests ---- */

static void test_save_sizes_and_header(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	bm_pci_host *h = s.m.t->host;
	size_t len = 0;
	uint8_t byte;
	assert_int_equal(bm_pci_host_save(NULL, &byte, 1, &len), -EINVAL);
	assert_int_equal(bm_pci_host_save(h, &byte, 1, NULL), -EINVAL);
	assert_int_equal(bm_pci_host_save(h, NULL, 1, &len), -EINVAL);
	/* Too small, by one byte: -ENOSPC, the size needed, nothing written. */
	uint8_t *buf = malloc(s.len);
	assert_non_null(buf);
	memset(buf, 0xa5, s.len);
	len = 0;
	assert_int_equal(bm_pci_host_save(h, buf, s.len - 1, &len), -ENOSPC);
	assert_int_equal(len, s.len);
	for (size_t i = 0; i < s.len; i++)
		assert_int_equal(buf[i], 0xa5);
	/* Larger than needed: the same bytes. */
	uint8_t *big = malloc(s.len + 100);
	assert_non_null(big);
	assert_int_equal(bm_pci_host_save(h, big, s.len + 100, &len), 0);
	assert_int_equal(len, s.len);
	assert_memory_equal(big, s.blob, s.len);
	/* The header and checksum pci_state.h documents. */
	assert_memory_equal(s.blob, "BMPCIST\0", 8);
	assert_int_equal(le(s.blob + 8, 4), BM_PCI_STATE_VERSION);
	assert_int_equal(le(s.blob + 12, 4), 0);
	assert_int_equal(le(s.blob + 16, 8), s.len);
	assert_int_equal(le(s.blob + 24, 4), NFUNCS);
	assert_int_equal(le(s.blob + s.len - 4, 4), blob_crc32(s.blob, s.len - 4));
	struct layout l = layout_of(s.blob, s.len);
	/* blk's 4 KiB space, the bridges' windows, the MSI-X tables. */
	assert_int_equal(l.cfg_size[2], 4096);
	assert_true(l.bridge[4] && l.bridge[6]);
	assert_int_equal(l.nvec[1], 8);
	assert_int_equal(l.nvec[5], 4);
	/* The latch, after the topology. */
	assert_int_equal(le(s.blob + l.state[0] - 4, 4), 0x80002010);
	/* Saving changed nothing. */
	char *now = snapshot(&s.m);
	assert_string_equal(now, s.text);
	free(now);
	free(big);
	free(buf);
	saved_free(&s);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct machine m;
	build(&m, V_SAME);
	assert_int_equal(bm_pci_host_restore(m.t->host, s.blob, s.len), 0);
	char *text = snapshot(&m);
	assert_string_equal(text, s.text);
	/* The copy saves to the same bytes: the same registers, tables, lines, latch and order
	 * of placements. */
	size_t len;
	uint8_t *again = save(&m, &len);
	assert_int_equal(len, s.len);
	assert_memory_equal(again, s.blob, len);
	/* Every BAR that came to be decoded was announced once; nothing was sent; the host saw
	 * blk's line, not blk1's (INTx disabled there). */
	size_t mapped = 0;
	for (bm_pci_func *f = bm_pci_func_next(m.t->host, NULL); f;
	     f = bm_pci_func_next(m.t->host, f))
		for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
			struct bm_pci_bar_info bi;
			mapped += bm_pci_bar_info(f, i, &bi) == 0 && bi.mapped;
		}
	assert_int_equal(m.t->nev, mapped);
	for (size_t i = 0; i < m.t->nev; i++)
		assert_true(m.t->ev[i].mapped);
	assert_int_equal(m.t->nmsi, 0);
	assert_int_equal(m.t->nintx, 1);
	assert_ptr_equal(m.t->intx[0].src, m.blk);
	assert_true(m.t->intx[0].level);
	/* The overlaps as the guest left them: net's BAR1 over blk's BAR0, blk1's BAR0 over
	 * br's memory window. */
	m.p[1].reads = m.p[5].reads = 0;
	mem_rd(m.t, m.t->mem, NET_TABLE + 0x100, 4);
	assert_int_equal(m.p[1].reads, 1);
	assert_int_equal(m.p[5].reads, 0);
	m.p[7].reads = 0;
	mem_rd(m.t, m.t->mem, 0xfe200010, 4);
	assert_int_equal(m.p[7].reads, 1);
	/* Pending vectors stayed pending and go out when unmasked, as in the original. */
	assert_true(bm_write(m.t->vcpu, m.t->mem, NET_TABLE + 16 * 2 + 12, 4, 0) >= 0);
	assert_int_equal(m.t->nmsi, 1);
	assert_int_equal(m.t->msi[0].addr, 0xfee02000);
	assert_int_equal(m.t->msi[0].data, 0x32);
	unsigned cap = bm_pci_func_find_cap(m.blk1, 0x05, false);
	wr(m.blk1, cap + 0x10, 4, 0);
	assert_int_equal(m.t->nmsi, 2);
	assert_int_equal(m.t->msi[1].data, 0x51);
	/* The configuration mechanism answers through the restored latch. */
	uint64_t v = 0;
	assert_int_equal(bm_read(m.t->vcpu, m.t->io, 0xcfc, 4, &v), 0);
	assert_int_equal(v, rd(m.br, 0x10, 4));
	free(again);
	free(text);
	free_machine(&m);
	saved_free(&s);
}

static void test_restore_changes_state(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct machine m;
	build(&m, V_SAME);
	program_b(&m);
	uint64_t old;
	assert_true(bar_mapped(m.blk, 0, &old));
	assert_int_equal(old, 0xfe060000);
	assert_int_equal(bm_pci_host_restore(m.t->host, s.blob, s.len), 0);
	char *text = snapshot(&m);
	assert_string_equal(text, s.text);
	/* blk's BAR0 moved: unmapped where it was, then mapped where the blob has it. */
	bool gone = false, came = false;
	for (size_t i = 0; i < m.t->nev; i++) {
		const struct bm_pci_map_event *e = &m.t->ev[i];
		if (e->func != m.blk || e->bar != 0)
			continue;
		if (!e->mapped && e->addr == 0xfe060000)
			gone = true;
		if (e->mapped && e->addr == 0xfe000000)
			came = gone;
	}
	assert_true(came);
	/* net's line went down at the host (up in B, down in A); blk's came up. */
	assert_int_equal(m.t->nintx, 2);
	free(text);
	free_machine(&m);
	saved_free(&s);
}

static void test_restore_into_itself(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	s.m.t->nev = s.m.t->nmsi = s.m.t->nintx = 0;
	assert_int_equal(bm_pci_host_restore(s.m.t->host, s.blob, s.len), 0);
	char *text = snapshot(&s.m);
	assert_string_equal(text, s.text);
	assert_int_equal(s.m.t->nev, 0);
	assert_int_equal(s.m.t->nmsi, 0);
	assert_int_equal(s.m.t->nintx, 0);
	free(text);
	saved_free(&s);
}

static void test_truncated(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	assert_int_equal(bm_pci_host_restore(NULL, s.blob, s.len), -EINVAL);
	assert_int_equal(bm_pci_host_restore(t.m.t->host, NULL, s.len), -EINVAL);
	for (size_t len = 0; len < s.len; len++) {
		assert_int_equal(bm_pci_host_restore(t.m.t->host, s.blob, len), -EBADMSG);
		target_check_quick(&t);
		if (len % 256 == 0 || len > s.len - 64)
			target_check(&t);
	}
	target_check(&t);
	target_free(&t);
	saved_free(&s);
}

static void test_bit_flips(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	uint8_t *b = malloc(s.len);
	assert_non_null(b);
	memcpy(b, s.blob, s.len);
	for (size_t i = 0; i < s.len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(bm_pci_host_restore(t.m.t->host, b, s.len), -EBADMSG);
			b[i] ^= (uint8_t)(1u << bit);
		}
		if (i % 512 == 0)
			target_check_quick(&t);
	}
	target_check(&t);
	/* Still intact: it restores. */
	assert_int_equal(bm_pci_host_restore(t.m.t->host, b, s.len), 0);
	char *text = snapshot(&t.m);
	assert_string_equal(text, s.text);
	free(text);
	free(b);
	target_free(&t);
	saved_free(&s);
}

static void test_version(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	uint8_t *b = malloc(s.len);
	assert_non_null(b);
	static const uint32_t versions[] = {0, BM_PCI_STATE_VERSION + 1, 0x100, 0xffffffff};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		memcpy(b, s.blob, s.len);
		blob_put_le(b + 8, versions[i], 4);
		blob_reseal(b, s.len);
		expect_refused(&t, b, s.len, -EPROTONOSUPPORT);
		/* Damaged as well: the damage is what is reported. */
		b[100] ^= 1;
		expect_refused(&t, b, s.len, -EBADMSG);
	}
	/* Another magic is not this format at all. */
	memcpy(b, s.blob, s.len);
	b[0] = 'X';
	blob_reseal(b, s.len);
	expect_refused(&t, b, s.len, -EBADMSG);
	free(b);
	target_free(&t);
	saved_free(&s);
}

static void test_trailing_bytes(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	uint8_t *b = calloc(1, s.len + 64);
	assert_non_null(b);
	memcpy(b, s.blob, s.len);
	for (size_t extra = 1; extra <= 64; extra *= 2)
		expect_refused(&t, b, s.len + extra, -EBADMSG);
	/* Trailing bytes the length field and checksum cover: still not part of the layout. */
	for (size_t extra = 1; extra <= 64; extra *= 2) {
		memcpy(b, s.blob, s.len - 4);
		memset(b + s.len - 4, 0, extra);
		blob_reseal(b, s.len + extra);
		expect_refused(&t, b, s.len + extra, -EBADMSG);
	}
	free(b);
	target_free(&t);
	saved_free(&s);
}

/* An intact blob whose fields say what no saved state can. */
static void test_malformed(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	struct layout l = layout_of(s.blob, s.len);
	uint8_t *b = malloc(s.len);
	assert_non_null(b);
	struct edit {
		size_t at;
		unsigned n;
		uint64_t v;
	} edits[] = {
	    {12, 4, 1},                       /* header flags */
	    {28, 4, 1},                       /* header reserved */
	    {24, 4, NFUNCS + 1},              /* one function more than there is */
	    {24, 4, NFUNCS - 1},              /* one fewer */
	    {24, 4, 0xffffffff},              /* absurdly many */
	    {HEADER_LEN, 4, 0x10},            /* unknown host flag */
	    {l.topo[5], 4, 5},                /* e1 its own parent */
	    {l.topo[5], 4, 1},                /* e1 behind an endpoint */
	    {l.topo[1] + 5, 1, 0x02},         /* header type 2 */
	    {l.topo[1] + 6, 1, 5},            /* interrupt pin 5 */
	    {l.topo[1] + 12, 2, 512},         /* configuration space of 512 bytes */
	    {l.topo[1] + 20, 1, 4},           /* BAR type 4 */
	    {l.topo[1] + 21, 1, 2},           /* BAR flag 2 */
	    {l.topo[1] + 20 + 30 + 2, 8, 16}, /* a size for net's absent BAR3 */
	    {l.topo[1] + 96, 2, 4096},        /* MSI-X with 4096 vectors */
	    {l.state[1], 2, 0x1af5},          /* registers: another vendor ID */
	    {l.state[1] + 0x0e, 1, 0x80},     /* registers: another header type */
	    {l.state[1] + 0x3d, 1, 2},        /* registers: another pin */
	    {l.state[1] + 256, 1, 2},         /* INTx level 2 */
	    {l.state[0] + 256, 1, 1},         /* INTx up without a pin */
	    {l.state[1] + 257, 1, 1},         /* reserved after the level */
	    {l.ranks[1] + 12, 4, 1},          /* a rank for net's absent BAR3 */
	    {l.ranks[1] + 24, 4, 1000},       /* a rank past the number of slots */
	    {l.msix[1] + 12, 4, 2},           /* a reserved bit of a vector control */
	    {l.msix[1] + 128, 8, 1ull << 8},  /* a pending bit past net's 8 vectors */
	    {l.msix[5] + 64, 8, 1ull << 4},   /* a pending bit past e1's 4 vectors */
	    {l.state[1] + 0x10, 1, 0x03},     /* net's I/O BAR0 reads as another type */
	    {l.state[1] + 0x18, 1, 0x04},     /* net's BAR2 no longer prefetchable */
	    {l.state[4] + 0x1c, 1, 0x20},     /* br's I/O window loses its 32-bit type */
	    {l.state[4] + 0x26, 1, 0x00},     /* ... its prefetchable limit its 64 */
	    {l.topo[1] + 7, 1, 1},            /* window types for an endpoint */
	    {l.topo[4] + 7, 1, 4},            /* an unknown window type */
	    {l.state[1] + 0x42, 1, 0x06},     /* net's MSI-X table size */
	    {l.state[1] + 0x44, 1, 0x02},     /* net's MSI-X table BAR */
	    {l.state[3] + 0x42, 1, 0x04},     /* blk1's MSI without 64-bit addresses */
	    {l.topo[3] + 90, 2, 0x3c},        /* blk1's MSI inside the header */
	    {l.topo[3] + 90, 2, 0xf8},        /* ... or past the legacy space */
	    {l.topo[3] + 92, 1, 3},           /* ... with 3 vectors */
	    {l.topo[1] + 94, 2, 0x42},        /* net's MSI-X not dword aligned */
	    {l.topo[1] + 98, 1, 6},           /* ... its table in BAR 6 */
	    {l.topo[1] + 102, 4, 4},          /* ... at an unaligned offset */
	    {l.topo[0] + 98, 1, 1},           /* a table BAR without MSI-X */
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(b, s.blob, s.len);
		blob_put_le(b + edits[i].at, edits[i].v, edits[i].n);
		blob_reseal(b, s.len);
		expect_refused(&t, b, s.len, -EBADMSG);
	}
	/* Two placements with the same rank. */
	memcpy(b, s.blob, s.len);
	uint32_t r0 = (uint32_t)le(b + l.ranks[1], 4);
	assert_true(r0 != 0);
	blob_put_le(b + l.ranks[1] + 4, r0, 4);
	blob_reseal(b, s.len);
	expect_refused(&t, b, s.len, -EBADMSG);
	free(b);
	target_free(&t);
	saved_free(&s);
}

static void test_wrong_topology(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	static const enum variant variants[] = {V_MISSING,   V_EXTRA,  V_BAR_SIZE,
	                                        V_DEVICE_ID, V_NO_MSI, V_ECAM};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct target t;
		target_new(&t, variants[i]);
		expect_refused(&t, s.blob, s.len, -ESTALE);
		/* The other way round too, where the blob is one function larger or smaller. */
		if (variants[i] == V_EXTRA || variants[i] == V_MISSING) {
			struct machine m;
			build(&m, V_SAME);
			assert_int_equal(bm_pci_host_restore(m.t->host, t.blob, t.len), -ESTALE);
			assert_int_equal(m.t->nev, 0);
			free_machine(&m);
		}
		target_free(&t);
	}
	/* A consistent blob for another device ID, or other register masks. */
	struct target t;
	target_new(&t, V_SAME);
	struct layout l = layout_of(s.blob, s.len);
	uint8_t *b = malloc(s.len);
	assert_non_null(b);
	memcpy(b, s.blob, s.len);
	blob_put_le(b + l.topo[2] + 10, 0x1099, 2);
	blob_put_le(b + l.state[2] + 2, 0x1099, 2);
	blob_reseal(b, s.len);
	expect_refused(&t, b, s.len, -ESTALE);
	memcpy(b, s.blob, s.len);
	b[l.topo[3] + 110] ^= 1;
	blob_reseal(b, s.len);
	expect_refused(&t, b, s.len, -ESTALE);
	free(b);
	target_free(&t);
	saved_free(&s);
}

/* Every allocation of a restore fails in turn: -ENOMEM with the target as it was and no
 * event, or, where the core does without that allocation, success; and once no allocation
 * is left to fail, success. Saving fails the same way, changing nothing. */
static void test_allocation_failure(void **state)
{
	(void)state;
	struct saved s;
	saved_new(&s);
	struct target t;
	target_new(&t, V_SAME);
	unsigned long n = 1, failed = 0;
	for (;; n++) {
		af_arm(n);
		int err = bm_pci_host_restore(t.m.t->host, s.blob, s.len);
		bool fired = af_fired();
		af_disarm();
		if (err == -ENOMEM) {
			assert_true(fired);
			target_check(&t);
			failed++;
			continue;
		}
		assert_int_equal(err, 0);
		char *text = snapshot(&t.m);
		assert_string_equal(text, s.text);
		free(text);
		if (!fired)
			break;
		/* Back to the target's own state, by the same means. */
		assert_int_equal(bm_pci_host_restore(t.m.t->host, t.blob, t.len), 0);
		t.m.t->nev = t.m.t->nmsi = t.m.t->nintx = 0;
		target_check(&t);
	}
	assert_true(failed > 3);
	uint8_t *buf = malloc(s.len);
	assert_non_null(buf);
	for (n = 1;; n++) {
		size_t len = 0;
		af_arm(n);
		int err = bm_pci_host_save(t.m.t->host, buf, s.len, &len);
		bool fired = af_fired();
		af_disarm();
		if (!fired) {
			assert_int_equal(err, 0);
			assert_memory_equal(buf, s.blob, s.len);
			break;
		}
		assert_int_equal(err, -ENOMEM);
	}
	free(buf);
	target_free(&t);
	saved_free(&s);
}

/* ---- restoring while a vCPU dispatches ---- */

#define SWAP_P      0xfe000000u
#define SWAP_Q      0xfe100000u
#define SWAP_ROUNDS 1000

static int value_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *v)
{
	(void)vcpu;
	(void)off;
	(void)size;
	*v = (uintptr_t)opaque;
	return 0;
}

static const struct bm_region_ops value_ops = {.read = value_read, .impl_sizes = BM_ACCESS_4};

struct swap {
	struct pt *t;
	atomic_bool done;
	atomic_uint reads, bad;
};

/* Reads both addresses until told to stop: each must reach one BAR or the other. A restore
 * that published function by function would leave one of them unassigned for a moment. */
static void *swap_reader(void *arg)
{
	struct swap *s = arg;
	bm_vcpu *v;
	if (bm_vcpu_new(s->t->sys, 1, NULL, &v)) {
		atomic_fetch_add(&s->bad, 1);
		return NULL;
	}
	while (!atomic_load(&s->done)) {
		for (unsigned i = 0; i < 2; i++) {
			uint64_t val = 0;
			int r = bm_read(v, s->t->mem, (i ? SWAP_Q : SWAP_P) + 0x10, 4, &val);
			if (r < 0 || (r & BM_ACCESS_UNASSIGNED) ||
			    (val != 0x11111111 && val != 0x22222222))
				atomic_fetch_add(&s->bad, 1);
			atomic_fetch_add(&s->reads, 1);
		}
	}
	bm_vcpu_free(v);
	return NULL;
}

/* Two devices whose BARs trade places between two saved states; vCPUs keep reading both
 * places while the states are restored in turn. */
static void test_restore_while_dispatching(void **state)
{
	(void)state;
	struct swap s = {.t = pt_new()};
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .bars = {{.type = BM_PCI_BAR_MEM32,
	                                       .size = 4096,
	                                       .ops = &value_ops,
	                                       .opaque = (void *)(uintptr_t)0x11111111}}};
	bm_pci_func *x = pt_add(s.t, NULL, 2, 0, &d);
	d.bars[0].opaque = (void *)(uintptr_t)0x22222222;
	bm_pci_func *y = pt_add(s.t, NULL, 3, 0, &d);
	wr(x, 0x10, 4, SWAP_P);
	wr(y, 0x10, 4, SWAP_Q);
	wr(x, 0x04, 2, CMD_MEM);
	wr(y, 0x04, 2, CMD_MEM);
	struct machine m = {.t = s.t};
	size_t len_a, len_b;
	uint8_t *a = save(&m, &len_a);
	wr(x, 0x10, 4, 0xfe200000);
	wr(y, 0x10, 4, SWAP_P);
	wr(x, 0x10, 4, SWAP_Q);
	uint8_t *b = save(&m, &len_b);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, swap_reader, &s), 0);
	for (unsigned i = 0; i < SWAP_ROUNDS; i++) {
		/* The reader reads between every two restores, so that it runs beside them all
		 * and not only beside the few a scheduler happens to overlap. */
		unsigned seen = atomic_load(&s.reads);
		while (atomic_load(&s.reads) == seen && !atomic_load(&s.bad))
			sched_yield();
		if (i % 2)
			assert_int_equal(bm_pci_host_restore(s.t->host, b, len_b), 0);
		else
			assert_int_equal(bm_pci_host_restore(s.t->host, a, len_a), 0);
	}
	atomic_store(&s.done, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&s.bad), 0);
	assert_true(atomic_load(&s.reads) >= SWAP_ROUNDS);
	/* The last one restored was b. */
	uint64_t at;
	assert_true(bar_mapped(x, 0, &at));
	assert_int_equal(at, SWAP_Q);
	assert_true(bar_mapped(y, 0, &at));
	assert_int_equal(at, SWAP_P);
	free(a);
	free(b);
	pt_free(s.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_save_sizes_and_header),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_restore_changes_state),
	    cmocka_unit_test(test_restore_into_itself),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_bit_flips),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_trailing_bytes),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_wrong_topology),
	    cmocka_unit_test(test_allocation_failure),
	    cmocka_unit_test(test_restore_while_dispatching),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
