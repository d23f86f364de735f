/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * BARs: sizing of every type, 64-bit halves in both orders, the ROM enable bit, the decode
 * rule's every condition, the order of map/unmap events, and the seed: firmware moving one
 * BAR onto another and away again, checked by dispatching to every byte after every step.
 */
#include "pcitest.h"
#include <stdio.h>

#define CMD_IO  0x1
#define CMD_MEM 0x2

static void test_sizing(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 32},
	             {.type = BM_PCI_BAR_MEM32, .size = 4096},
	             {.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .prefetchable = true},
	             {0},
	             {.type = BM_PCI_BAR_MEM64, .size = 8ull << 30}},
	    .rom = {.size = 65536}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, CMD_IO | CMD_MEM); /* sizing with decode on must not map anything */
	for (unsigned r = 0x10; r <= 0x24; r += 4)
		wr(f, r, 4, 0xffffffff);
	wr(f, 0x30, 4, 0xfffff800);
	assert_int_equal(rd(f, 0x10, 4), 0xffffffe1);
	assert_int_equal(rd(f, 0x14, 4), 0xfffff000);
	assert_int_equal(rd(f, 0x18, 4), 0xfff0000c);
	assert_int_equal(rd(f, 0x1c, 4), 0xffffffff);
	assert_int_equal(rd(f, 0x20, 4), 0x00000004);
	assert_int_equal(rd(f, 0x24, 4), 0xfffffffe);
	assert_int_equal(rd(f, 0x30, 4), 0xffff0000);
	/* The 64-bit BARs decode at their all-ones address below 2^64 - 1, as in QEMU; the
	 * 32-bit ones and the I/O one do not. */
	assert_false(bar_mapped(f, 0, NULL));
	assert_false(bar_mapped(f, 1, NULL));
	wr(f, 0x04, 2, 0);
	/* Byte writes size the same way. */
	for (unsigned r = 0x10; r < 0x28; r++)
		wr(f, r, 1, 0);
	assert_int_equal(rd(f, 0x10, 4), 0x1);
	for (unsigned r = 0x10; r < 0x28; r++)
		wr(f, r, 1, 0xff);
	assert_int_equal(rd(f, 0x10, 4), 0xffffffe1);
	assert_int_equal(rd(f, 0x18, 4), 0xfff0000c);
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, 4, &bi), 0);
	assert_int_equal(bi.type, BM_PCI_BAR_MEM64);
	assert_int_equal(bi.size, 8ull << 30);
	assert_int_equal(bi.addr, 0xfffffffe00000000ull);
	assert_int_equal(bm_pci_bar_info(f, 3, &bi), -ENOENT); /* upper half of BAR2 */
	assert_int_equal(bm_pci_bar_info(f, 7, &bi), -EINVAL);
	pt_free(t);
}

static int count_range(void *arg, const struct bm_flat_range *r)
{
	(void)r;
	++*(unsigned *)arg;
	return 0;
}

/* Sizing a BAR whose decode is off is register traffic only: no view is published, so
 * the generation stays, and no map event goes out. */
static void test_sizing_decode_off_leaves_map(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096},
	             {.type = BM_PCI_BAR_MEM64, .size = 1 << 20}}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x10, 4, 0xfe000000);
	wr(f, 0x14, 4, 0xfe100000);
	unsigned n = 0;
	uint64_t gen = bm_space_flat(t->mem, count_range, &n);
	size_t nev = t->nev;
	for (unsigned r = 0x10; r <= 0x18; r += 4) {
		uint32_t was = rd(f, r, 4);
		wr(f, r, 4, 0xffffffff);
		assert_int_not_equal(rd(f, r, 4), was);
		wr(f, r, 4, was);
	}
	unsigned n2 = 0;
	assert_int_equal(bm_space_flat(t->mem, count_range, &n2), gen);
	assert_int_equal(n2, n);
	assert_int_equal(t->nev, nev);
	pt_free(t);
}

static void test_mem64_halves(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct probe p = {0};
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .ops = &probe_ops, .opaque = &p}}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, CMD_MEM);
	/* Low half first: the BAR goes through (old high, new low). */
	wr(f, 0x10, 4, 0xe0000000);
	wr(f, 0x14, 4, 0x1);
	assert_int_equal(t->nev, 3);
	expect_event(t, 0, f, 0, 0xe0000000, true);
	expect_event(t, 1, f, 0, 0xe0000000, false);
	expect_event(t, 2, f, 0, 0x1e0000000ull, true);
	uint64_t a;
	assert_true(bar_mapped(f, 0, &a));
	assert_int_equal(a, 0x1e0000000ull);
	/* High half first. */
	t->nev = 0;
	wr(f, 0x14, 4, 0x2);
	wr(f, 0x10, 4, 0xd0000000);
	assert_int_equal(t->nev, 4);
	expect_event(t, 1, f, 0, 0x2e0000000ull, true);
	expect_event(t, 3, f, 0, 0x2d0000000ull, true);
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, 0, &bi), 0);
	assert_int_equal(bi.addr, 0x2d0000000ull);
	assert_int_equal(bm_region_offset(bi.region), 0x2d0000000ull);
	p.reads = 0;
	mem_rd(t, t->mem, 0x2d0000010ull, 4);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last_offset, 0x10);
	uint64_t v;
	assert_true(bm_read(t->vcpu, t->mem, 0x1e0000000ull, 4, &v) & BM_ACCESS_UNASSIGNED);
	pt_free(t);
}

static void test_rom_enable(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct probe p = {0};
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .rom = {.size = 65536, .ops = &probe_ops, .opaque = &p}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, CMD_MEM);
	wr(f, 0x30, 4, 0xc0000000);
	assert_false(bar_mapped(f, BM_PCI_ROM, NULL));
	assert_int_equal(t->nev, 0);
	wr(f, 0x30, 1, 0x01);
	uint64_t a;
	assert_true(bar_mapped(f, BM_PCI_ROM, &a));
	assert_int_equal(a, 0xc0000000);
	expect_event(t, 0, f, BM_PCI_ROM, 0xc0000000, true);
	assert_false(t->ev[0].io);
	assert_int_equal(t->ev[0].size, 65536);
	mem_rd(t, t->mem, 0xc0000100, 4);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last_offset, 0x100);
	wr(f, 0x04, 2, 0); /* the ROM also needs memory decode */
	assert_false(bar_mapped(f, BM_PCI_ROM, NULL));
	wr(f, 0x04, 2, CMD_MEM);
	assert_true(bar_mapped(f, BM_PCI_ROM, NULL));
	wr(f, 0x30, 4, 0xc0000000); /* enable cleared, address kept */
	assert_false(bar_mapped(f, BM_PCI_ROM, NULL));
	assert_int_equal(rd(f, 0x30, 4), 0xc0000000);
	pt_free(t);
}

static void test_decode_toggles(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct probe pio = {0}, pmem = {0};
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 32, .ops = &probe_ops, .opaque = &pio},
	             {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &pmem}}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x10, 4, 0xc000);
	wr(f, 0x14, 4, 0xfe000000);
	assert_int_equal(t->nev, 0);
	uint64_t v;
	assert_true(bm_read(t->vcpu, t->io, 0xc000, 1, &v) & BM_ACCESS_UNASSIGNED);
	wr(f, 0x04, 2, CMD_IO);
	assert_true(bar_mapped(f, 0, NULL));
	assert_false(bar_mapped(f, 1, NULL));
	assert_int_equal(bm_read(t->vcpu, t->io, 0xc004, 1, &v), 0);
	assert_int_equal(pio.reads, 1);
	wr(f, 0x04, 2, CMD_MEM);
	assert_false(bar_mapped(f, 0, NULL));
	assert_true(bar_mapped(f, 1, NULL));
	assert_true(bm_read(t->vcpu, t->io, 0xc004, 1, &v) & BM_ACCESS_UNASSIGNED);
	assert_int_equal(bm_read(t->vcpu, t->mem, 0xfe000008, 4, &v), 0);
	assert_int_equal(pmem.reads, 1);
	wr(f, 0x04, 2, CMD_IO | CMD_MEM);
	assert_true(bar_mapped(f, 0, NULL));
	assert_true(bar_mapped(f, 1, NULL));
	/* The second byte of the command register (INTx disable) changes no decoding. */
	size_t n = t->nev;
	wr(f, 0x05, 1, 0x04);
	assert_int_equal(t->nev, n);
	wr(f, 0x04, 2, 0);
	assert_false(bar_mapped(f, 0, NULL));
	assert_false(bar_mapped(f, 1, NULL));
	pt_free(t);
}

static bm_pci_func *one_io_bar(struct pt *t, uint64_t size)
{
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .bars = {{.type = BM_PCI_BAR_IO, .size = size}}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, CMD_IO);
	return f;
}

static void test_io_limit(void **state)
{
	(void)state;
	struct pt *t = pt_new(); /* x86: ports up to 0xffff */
	bm_pci_func *f = one_io_bar(t, 16);
	wr(f, 0x10, 4, 0xfff0);
	assert_true(bar_mapped(f, 0, NULL));
	wr(f, 0x10, 4, 0x10000);
	assert_false(bar_mapped(f, 0, NULL));
	assert_int_equal(rd(f, 0x10, 4), 0x10001); /* the register keeps the value */
	pt_free(t);

	struct bm_pci_host_config c = {.io_limit = BM_PCI_IO_LIMIT_QEMU};
	t = pt_new_with(c, true);
	f = one_io_bar(t, 32);
	wr(f, 0x10, 4, 0xffffffe0); /* last port 0xffffffff */
	assert_false(bar_mapped(f, 0, NULL));
	wr(f, 0x10, 4, 0xffffffc0);
	assert_true(bar_mapped(f, 0, NULL));
	wr(f, 0x10, 4, 0x10000);
	assert_true(bar_mapped(f, 0, NULL));
	pt_free(t);

	/* arm64 style: ports appear in a window of the memory space. */
	struct bm_pci_host_config w = {.io_window_base = 0x3eff0000,
	                               .io_window_size = 0x10000,
	                               .ecam = true,
	                               .ecam_base = 0x4010000000ull};
	t = pt_new_with(w, false);
	struct probe p = {0};
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 64, .ops = &probe_ops, .opaque = &p}}};
	f = pt_add(t, NULL, 1, 0, &d);
	wr(f, 0x10, 4, 0x1000);
	wr(f, 0x04, 2, CMD_IO);
	mem_rd(t, t->mem, 0x3eff1004, 1);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last_offset, 4);
	pt_free(t);
}

static void test_address_zero(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	bm_pci_func *f = one_io_bar(t, 16);
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096}}};
	bm_pci_func *g = pt_add(t, NULL, 5, 0, &d);
	wr(g, 0x04, 2, CMD_MEM);
	assert_false(bar_mapped(f, 0, NULL));
	assert_false(bar_mapped(g, 0, NULL));
	assert_int_equal(t->nev, 0);
	pt_free(t);

	struct bm_pci_host_config c = {.decode_zero = true};
	t = pt_new_with(c, true);
	f = one_io_bar(t, 16);
	g = pt_add(t, NULL, 5, 0, &d);
	wr(g, 0x04, 2, CMD_MEM);
	uint64_t a = 1;
	assert_true(bar_mapped(f, 0, &a));
	assert_int_equal(a, 0);
	assert_true(bar_mapped(g, 0, &a));
	assert_int_equal(a, 0);
	pt_free(t);
}

static void test_wrap_and_top_of_4g(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .bars = {{.type = BM_PCI_BAR_MEM64, .size = 1 << 20},
	                                      {0},
	                                      {.type = BM_PCI_BAR_MEM32, .size = 4096},
	                                      {.type = BM_PCI_BAR_MEM64, .size = 4096}},
	                             .rom = {.size = 65536}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, CMD_MEM);
	/* A 64-bit BAR whose last byte would be 2^64 - 1. */
	wr(f, 0x14, 4, 0xffffffff);
	wr(f, 0x10, 4, 0xfff00000);
	assert_false(bar_mapped(f, 0, NULL));
	wr(f, 0x10, 4, 0xffe00000);
	uint64_t a;
	assert_true(bar_mapped(f, 0, &a));
	assert_int_equal(a, 0xffffffffffe00000ull);
	/* A 32-bit BAR ending at 0xffffffff is not decoded; one page lower is. */
	wr(f, 0x18, 4, 0xfffff000);
	assert_false(bar_mapped(f, 2, NULL));
	wr(f, 0x18, 4, 0xffffe000);
	assert_true(bar_mapped(f, 2, &a));
	assert_int_equal(a, 0xffffe000);
	/* A 64-bit BAR there is fine. */
	wr(f, 0x1c, 4, 0xfffff000);
	wr(f, 0x20, 4, 0);
	assert_true(bar_mapped(f, 3, &a));
	assert_int_equal(a, 0xfffff000);
	/* The ROM is a 32-bit BAR. */
	wr(f, 0x30, 4, 0xffff0001);
	assert_false(bar_mapped(f, BM_PCI_ROM, NULL));
	wr(f, 0x30, 4, 0xfffe0001);
	assert_true(bar_mapped(f, BM_PCI_ROM, NULL));
	pt_free(t);
}

/* ---- the seed ---- */

struct dev {
	struct probe probe;
	bm_pci_func *f;
	uint64_t size;
};

/* Who must answer at addr: the BAR placed most recently among those that cover it, from
 * the test's own bookkeeping of the map events. */
struct placement {
	bool mapped;
	uint64_t base;
	uint64_t stamp;
};

struct seed {
	struct pt *t;
	struct dev dev[2];
	struct placement pl[2];
	uint64_t clock;
	size_t seen;
};

static void follow_events(struct seed *s)
{
	for (; s->seen < s->t->nev; s->seen++) {
		const struct bm_pci_map_event *ev = &s->t->ev[s->seen];
		int i = ev->func == s->dev[0].f ? 0 : 1;
		assert_ptr_equal(ev->func, s->dev[i].f);
		assert_int_equal(ev->bar, 0);
		assert_true(ev->io);
		if (ev->mapped) {
			assert_false(s->pl[i].mapped);
			s->pl[i] = (struct placement){true, ev->addr, ++s->clock};
		} else {
			assert_true(s->pl[i].mapped);
			assert_int_equal(s->pl[i].base, ev->addr);
			s->pl[i].mapped = false;
		}
	}
}

static int owner(const struct seed *s, uint64_t addr)
{
	int best = -1;
	for (int i = 0; i < 2; i++) {
		const struct placement *p = &s->pl[i];
		if (p->mapped && addr - p->base < s->dev[i].size &&
		    (best < 0 || p->stamp > s->pl[best].stamp))
			best = i;
	}
	return best;
}

/* Reads and writes every byte around both BARs; each must reach the owner at the right
 * offset, and nothing else. */
static void check_every_byte(struct seed *s)
{
	follow_events(s);
	for (int i = 0; i < 2; i++) {
		uint64_t a;
		bool m = bar_mapped(s->dev[i].f, 0, &a);
		assert_int_equal(m, s->pl[i].mapped);
		if (m)
			assert_int_equal(a, s->pl[i].base);
	}
	for (uint64_t addr = 0xdf000000 - 0x10; addr < 0xdf000190; addr++) {
		int want = owner(s, addr);
		for (int i = 0; i < 2; i++)
			s->dev[i].probe.reads = s->dev[i].probe.writes = 0;
		uint64_t v;
		int rr = bm_read(s->t->vcpu, s->t->io, addr, 1, &v);
		int rw = bm_write(s->t->vcpu, s->t->io, addr, 1, 0x5a);
		if (want < 0) {
			assert_true(rr & BM_ACCESS_UNASSIGNED);
			assert_true(rw & BM_ACCESS_UNASSIGNED);
			assert_int_equal(v, 0xff);
			assert_int_equal(s->dev[0].probe.reads + s->dev[1].probe.reads, 0);
			assert_int_equal(s->dev[0].probe.writes + s->dev[1].probe.writes, 0);
			continue;
		}
		assert_true(rr >= 0 && !(rr & BM_ACCESS_UNASSIGNED));
		assert_true(rw >= 0 && !(rw & BM_ACCESS_UNASSIGNED));
		struct dev *d = &s->dev[want], *o = &s->dev[1 - want];
		assert_int_equal(d->probe.reads, 1);
		assert_int_equal(d->probe.writes, 1);
		assert_int_equal(d->probe.last_offset, addr - s->pl[want].base);
		assert_int_equal(o->probe.reads + o->probe.writes, 0);
	}
}

static void seed_setup(struct seed *s)
{
	struct bm_pci_host_config c = {.cf8 = true, .io_limit = BM_PCI_IO_LIMIT_QEMU};
	s->t = pt_new_with(c, true);
	s->dev[0].size = 0x80; /* virtio-blk, 00:03.0 */
	s->dev[1].size = 0x40; /* virtio-net, 00:02.0 */
	for (int i = 0; i < 2; i++) {
		struct bm_pci_func_desc d = {.vendor_id = 0x1af4,
		                             .device_id = (uint16_t)(i == 0 ? 0x1001 : 0x1000),
		                             .bars = {{.type = BM_PCI_BAR_IO,
		                                       .size = s->dev[i].size,
		                                       .ops = &probe_ops,
		                                       .opaque = &s->dev[i].probe}}};
		s->dev[i].f = pt_add(s->t, NULL, i == 0 ? 3 : 2, 0, &d);
	}
}

static void test_seed_with_decode_toggles(void **state)
{
	(void)state;
	struct seed s = {0};
	seed_setup(&s);
	bm_pci_func *blk = s.dev[0].f, *net = s.dev[1].f;
	wr(blk, 0x10, 4, 0xdf000000);
	wr(net, 0x10, 4, 0xdf000080);
	wr(blk, 0x04, 2, CMD_IO);
	wr(net, 0x04, 2, CMD_IO);
	check_every_byte(&s);
	wr(net, 0x04, 2, 0); /* 1: net unmapped @0xdf000080 */
	check_every_byte(&s);
	wr(net, 0x10, 4, 0xdf000000); /* 2: net onto blk */
	wr(net, 0x04, 2, CMD_IO);
	check_every_byte(&s);
	assert_int_equal(bm_space_conflicts(s.t->io, NULL, 0), 1);
	wr(blk, 0x04, 2, 0); /* 3: blk unmapped @0xdf000000 */
	check_every_byte(&s);
	assert_int_equal(bm_space_conflicts(s.t->io, NULL, 0), 0);
	wr(blk, 0x10, 4, 0xdf000080); /* 4: blk @0xdf000080 */
	wr(blk, 0x04, 2, CMD_IO);
	check_every_byte(&s);
	wr(net, 0x04, 2, 0); /* 5: where bhyve aborted */
	check_every_byte(&s);
	wr(net, 0x10, 4, 0xdf000100);
	wr(net, 0x04, 2, CMD_IO);
	check_every_byte(&s);
	pt_free(s.t);
}

/* The same moves with decoding left on, through CF8/CFC like firmware would. */
static void cf8_write(struct pt *t, unsigned dev, unsigned reg, uint32_t v)
{
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, 0x80000000u | dev << 11 | reg), 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcfc, 4, v), 0);
}

static void test_seed_moves_live(void **state)
{
	(void)state;
	struct seed s = {0};
	seed_setup(&s);
	cf8_write(s.t, 3, 0x10, 0xdf000000);
	cf8_write(s.t, 2, 0x10, 0xdf000080);
	cf8_write(s.t, 3, 0x04, CMD_IO);
	cf8_write(s.t, 2, 0x04, CMD_IO);
	check_every_byte(&s);
	cf8_write(s.t, 2, 0x10, 0xdf000000); /* net moved onto blk: net wins */
	check_every_byte(&s);
	cf8_write(s.t, 3, 0x10, 0xdf000080); /* blk moved away: both whole again */
	check_every_byte(&s);
	cf8_write(s.t, 3, 0x10, 0xdf000000); /* blk back on net: blk wins now */
	check_every_byte(&s);
	cf8_write(s.t, 2, 0x10, 0xdf000100);
	check_every_byte(&s);
	cf8_write(s.t, 2, 0x10, 0xdf000000); /* sizing-free overlap in the middle of blk */
	cf8_write(s.t, 2, 0x10, 0xdf000040);
	check_every_byte(&s);
	cf8_write(s.t, 2, 0x10, 0xffffffff); /* sizing: unmapped, then restored */
	check_every_byte(&s);
	cf8_write(s.t, 2, 0x10, 0xdf000040);
	check_every_byte(&s);
	pt_free(s.t);
}

static void test_event_order(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234,
	                             .bars = {{.type = BM_PCI_BAR_IO, .size = 32},
	                                      {.type = BM_PCI_BAR_MEM32, .size = 4096},
	                                      {.type = BM_PCI_BAR_MEM64, .size = 1 << 16}},
	                             .rom = {.size = 4096}};
	bm_pci_func *f = pt_add(t, NULL, 7, 2, &d);
	wr(f, 0x10, 4, 0xc000);
	wr(f, 0x14, 4, 0xfe000000);
	wr(f, 0x18, 4, 0xfd000000);
	wr(f, 0x30, 4, 0xfc000001);
	assert_int_equal(t->nev, 0);
	wr(f, 0x04, 2, CMD_IO | CMD_MEM);
	assert_int_equal(t->nev, 4);
	expect_event(t, 0, f, 0, 0xc000, true);
	expect_event(t, 1, f, 1, 0xfe000000, true);
	expect_event(t, 2, f, 2, 0xfd000000, true);
	expect_event(t, 3, f, BM_PCI_ROM, 0xfc000000, true);
	assert_true(t->ev[0].io);
	assert_false(t->ev[1].io);
	assert_int_equal(t->ev[0].size, 32);
	assert_int_equal(t->ev[2].size, 1 << 16);
	assert_int_equal(t->ev[0].bus, 0);
	assert_int_equal(t->ev[0].dev, 7);
	assert_int_equal(t->ev[0].fn, 2);
	t->nev = 0;
	wr(f, 0x14, 4, 0xfe000000); /* unchanged: nothing */
	wr(f, 0x04, 2, CMD_IO | CMD_MEM);
	assert_int_equal(t->nev, 0);
	wr(f, 0x14, 4, 0xfe100000); /* moved: old out, then new in */
	assert_int_equal(t->nev, 2);
	expect_event(t, 0, f, 1, 0xfe000000, false);
	expect_event(t, 1, f, 1, 0xfe100000, true);
	t->nev = 0;
	wr(f, 0x04, 2, CMD_IO);
	assert_int_equal(t->nev, 3);
	expect_event(t, 0, f, 1, 0xfe100000, false);
	expect_event(t, 1, f, 2, 0xfd000000, false);
	expect_event(t, 2, f, BM_PCI_ROM, 0xfc000000, false);
	t->nev = 0;
	wr(f, 0x04, 2, 0);
	assert_int_equal(t->nev, 1);
	expect_event(t, 0, f, 0, 0xc000, false);
	pt_free(t);
}

struct hook_log {
	unsigned n;
	unsigned bar;
	uint64_t addr;
	bool mapped;
};

static void hook_bar_map(void *opaque, bm_pci_func *f, unsigned bar, uint64_t addr, uint64_t size,
                         bool mapped)
{
	(void)f;
	(void)size;
	struct hook_log *l = opaque;
	l->n++;
	l->bar = bar;
	l->addr = addr;
	l->mapped = mapped;
}

static const struct bm_pci_func_ops hook_ops = {.bar_map = hook_bar_map};

static void test_device_region_and_names(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	static uint8_t ram[8192];
	ram[0x123] = 0x77;
	bm_region *r = NULL;
	assert_int_equal(bm_region_new_ram(t->sys, "vga-vram", sizeof(ram), ram, &r), 0);
	struct hook_log log = {0};
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .bars = {{.type = BM_PCI_BAR_MEM32, .size = 8192, .prefetchable = true, .region = r},
	             {.type = BM_PCI_BAR_IO, .size = 16}},
	    .ops = &hook_ops,
	    .opaque = &log};
	bm_pci_func *f = pt_add(t, NULL, 5, 1, &d);
	assert_string_equal(bm_pci_func_name(f), "00:05.1");
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, 0, &bi), 0);
	assert_string_equal(bm_region_name(bi.region), "00:05.1/bar0");
	assert_true(bi.prefetchable);
	assert_ptr_equal(bm_region_parent(r), bi.region);
	assert_int_equal(bm_pci_bar_info(f, 1, &bi), 0);
	assert_string_equal(bm_region_name(bi.region), "00:05.1/bar1");
	assert_true(bi.io);
	wr(f, 0x10, 4, 0xe0000000);
	wr(f, 0x04, 2, CMD_MEM);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.addr, 0xe0000000);
	assert_true(log.mapped);
	assert_int_equal(mem_rd(t, t->mem, 0xe0000123, 1), 0x77);
	/* A supplied region that is already placed is refused. */
	bm_pci_func *g = NULL;
	assert_int_equal(bm_pci_func_new(bm_pci_host_root_bus(t->host), 6, 0, &d, &g), -EEXIST);
	/* The region survives its host: it is the device model's. */
	assert_int_equal(bm_pci_host_free(t->host), 0);
	t->host = NULL;
	assert_null(bm_region_parent(r));
	assert_int_equal(bm_region_destroy(r), 0);
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizing),
	    cmocka_unit_test(test_sizing_decode_off_leaves_map),
	    cmocka_unit_test(test_mem64_halves),
	    cmocka_unit_test(test_rom_enable),
	    cmocka_unit_test(test_decode_toggles),
	    cmocka_unit_test(test_io_limit),
	    cmocka_unit_test(test_address_zero),
	    cmocka_unit_test(test_wrap_and_top_of_4g),
	    cmocka_unit_test(test_seed_with_decode_toggles),
	    cmocka_unit_test(test_seed_moves_live),
	    cmocka_unit_test(test_event_order),
	    cmocka_unit_test(test_device_region_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
