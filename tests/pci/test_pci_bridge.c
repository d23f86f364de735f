/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PCI-to-PCI bridges: configuration cycles routed by bus number, I/O and memory forwarded
 * only inside the windows and only with the bridge's decode bits on, BAR events that do
 * not depend on the windows, and the INTx swizzle through each bridge level.
 */
#include "pcitest.h"

#define CMD_IO  0x1
#define CMD_MEM 0x2

struct topo {
	struct pt *t;
	bm_pci_func *b1, *b2, *e1, *e2;
	struct probe pm, pio, ppref, p2;
};

/* 00:01.0 bridge -> bus 1: 01:00.0 endpoint, 01:02.0 bridge -> bus 2: 02:03.0 endpoint. */
static void topo_build(struct topo *k)
{
	k->t = pt_new();
	struct bm_pci_func_desc bd = {.vendor_id = 0x1b36,
	                              .device_id = 0x0001,
	                              .class_code = 0x060400,
	                              .header = BM_PCI_HEADER_BRIDGE,
	                              .intx_pin = 1,
	                              .bridge_io32 = true,
	                              .bridge_pref64 = true};
	k->b1 = pt_add(k->t, NULL, 1, 0, &bd);
	struct bm_pci_func_desc ed = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1000,
	    .intx_pin = 1,
	    .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &k->pm},
	             {.type = BM_PCI_BAR_IO, .size = 16, .ops = &probe_ops, .opaque = &k->pio},
	             {.type = BM_PCI_BAR_MEM64,
	              .size = 1 << 20,
	              .prefetchable = true,
	              .ops = &probe_ops,
	              .opaque = &k->ppref}}};
	k->e1 = pt_add(k->t, bm_pci_func_secondary_bus(k->b1), 0, 0, &ed);
	k->b2 = pt_add(k->t, bm_pci_func_secondary_bus(k->b1), 2, 0, &bd);
	struct bm_pci_func_desc ed2 = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1001,
	    .intx_pin = 1,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &k->p2}}};
	k->e2 = pt_add(k->t, bm_pci_func_secondary_bus(k->b2), 3, 0, &ed2);
}

static uint32_t vendor_at(struct pt *t, unsigned bus, unsigned dev)
{
	uint32_t v = 0;
	bm_pci_cfg_read(t->host, bus, dev, 0, 0, 4, &v);
	return v;
}

static void test_bus_routing(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	uint32_t v;
	assert_int_equal(bm_pci_cfg_read(t->host, 1, 0, 0, 0, 4, &v), -ENODEV);
	/* primary 0, secondary 1, subordinate 2 */
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 1, 0, 0x18, 4, 0x00020100), 0);
	assert_int_equal(vendor_at(t, 1, 0), 0x10001af4);
	assert_int_equal(bm_pci_cfg_read(t->host, 2, 3, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(bm_pci_cfg_write(t->host, 1, 2, 0, 0x18, 4, 0x00020201), 0);
	assert_int_equal(vendor_at(t, 2, 3), 0x10011af4);
	assert_int_equal(mem_rd(t, t->mem, ECAM_BASE + (2 << 20 | 3 << 15), 4), 0x10011af4);
	assert_int_equal(bm_pci_cfg_read(t->host, 3, 0, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(bm_pci_cfg_read(t->host, 2, 0, 0, 0, 4, &v), -ENODEV);
	/* Bus numbers are what routing follows, and what events and lookups report. */
	assert_ptr_equal(bm_pci_func_find(t->host, 2, 3, 0), k.e2);
	uint8_t bus;
	bm_pci_func_bdf(k.e2, &bus, NULL, NULL);
	assert_int_equal(bus, 2);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 1, 0, 0x1a, 1, 1), 0); /* subordinate 1 */
	assert_int_equal(bm_pci_cfg_read(t->host, 2, 3, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(vendor_at(t, 1, 0), 0x10001af4);
	/* Renumbered: bus 5 is now behind 00:01.0. */
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 1, 0, 0x18, 4, 0x00060500), 0);
	assert_int_equal(vendor_at(t, 5, 0), 0x10001af4);
	assert_int_equal(bm_pci_cfg_read(t->host, 1, 0, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(bm_pci_cfg_write(t->host, 5, 2, 0, 0x18, 4, 0x00060605), 0);
	assert_int_equal(vendor_at(t, 6, 3), 0x10011af4);
	pt_free(t);
}

static bool reaches(struct pt *t, bm_space *s, uint64_t addr, struct probe *p)
{
	uint64_t v;
	unsigned before = p->reads;
	int r = bm_read(t->vcpu, s, addr, 4, &v);
	assert_true(r >= 0);
	return !(r & BM_ACCESS_UNASSIGNED) && p->reads == before + 1;
}

static void open_b1(struct topo *k)
{
	assert_int_equal(bm_pci_cfg_write(k->t->host, 0, 1, 0, 0x18, 4, 0x00020100), 0);
	assert_int_equal(bm_pci_cfg_write(k->t->host, 1, 2, 0, 0x18, 4, 0x00020201), 0);
}

static void test_memory_window(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	open_b1(&k);
	wr(k.e1, 0x10, 4, 0xc0000000);
	wr(k.e1, 0x04, 2, CMD_MEM);
	/* The BAR is mapped on its bus: the event does not wait for the window. */
	assert_int_equal(t->nev, 1);
	expect_event(t, 0, k.e1, 0, 0xc0000000, true);
	assert_int_equal(t->ev[0].bus, 1);
	assert_false(reaches(t, t->mem, 0xc0000010, &k.pm));
	wr(k.b1, 0x20, 4, 0xc000c000);                       /* window [0xc0000000, 0xc00fffff] */
	assert_false(reaches(t, t->mem, 0xc0000010, &k.pm)); /* bridge memory decode off */
	wr(k.b1, 0x04, 2, CMD_MEM);
	assert_true(reaches(t, t->mem, 0xc0000010, &k.pm));
	assert_int_equal(k.pm.last_offset, 0x10);
	struct bm_pci_window w;
	assert_int_equal(bm_pci_bridge_window(k.b1, BM_PCI_WINDOW_MEM, &w), 0);
	assert_true(w.enabled);
	assert_int_equal(w.base, 0xc0000000);
	assert_int_equal(w.last, 0xc00fffff);
	/* Outside the window: mapped on bus 1 but unreachable. */
	wr(k.e1, 0x10, 4, 0xc0100000);
	assert_true(bar_mapped(k.e1, 0, NULL));
	assert_false(reaches(t, t->mem, 0xc0100010, &k.pm));
	wr(k.b1, 0x22, 2, 0xc010); /* limit widened */
	assert_true(reaches(t, t->mem, 0xc0100010, &k.pm));
	wr(k.b1, 0x22, 2, 0xbff0); /* limit below base: closed */
	assert_false(reaches(t, t->mem, 0xc0100010, &k.pm));
	wr(k.b1, 0x22, 2, 0xc010);
	wr(k.b1, 0x04, 2, 0);
	assert_false(reaches(t, t->mem, 0xc0100010, &k.pm));
	wr(k.b1, 0x04, 2, CMD_MEM);
	assert_true(reaches(t, t->mem, 0xc0100010, &k.pm));
	/* Two levels: both windows must cover the BAR. */
	bm_pci_func *e2 = k.e2;
	wr(e2, 0x10, 4, 0xc0080000);
	wr(e2, 0x04, 2, CMD_MEM);
	assert_false(reaches(t, t->mem, 0xc0080000, &k.p2));
	wr(k.b2, 0x20, 4, 0xc000c000);
	wr(k.b2, 0x04, 2, CMD_MEM);
	assert_true(reaches(t, t->mem, 0xc0080000, &k.p2));
	wr(k.b1, 0x20, 2, 0xc010); /* outer window no longer covers it */
	assert_false(reaches(t, t->mem, 0xc0080000, &k.p2));
	pt_free(t);
}

static void test_io_and_prefetchable_windows(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	open_b1(&k);
	wr(k.e1, 0x14, 4, 0x2000);
	wr(k.e1, 0x18, 4, 0x0);
	wr(k.e1, 0x1c, 4, 0x8);
	wr(k.e1, 0x04, 2, CMD_IO | CMD_MEM);
	assert_false(reaches(t, t->io, 0x2004, &k.pio));
	wr(k.b1, 0x1c, 2, 0x2020); /* I/O [0x2000, 0x2fff] */
	wr(k.b1, 0x04, 2, CMD_IO);
	assert_true(reaches(t, t->io, 0x2004, &k.pio));
	assert_int_equal(k.pio.last_offset, 4);
	wr(k.e1, 0x14, 4, 0x3000);
	assert_false(reaches(t, t->io, 0x3004, &k.pio));
	wr(k.e1, 0x14, 4, 0x2ff0);
	assert_true(reaches(t, t->io, 0x2ff0, &k.pio));
	/* 64-bit prefetchable window at 32 GiB. */
	assert_false(reaches(t, t->mem, 0x800000000ull, &k.ppref));
	wr(k.b1, 0x24, 4, 0x00010001); /* base/limit low: 0, type 64-bit */
	wr(k.b1, 0x28, 4, 0x8);        /* base upper */
	wr(k.b1, 0x2c, 4, 0x8);        /* limit upper */
	assert_false(reaches(t, t->mem, 0x800000000ull, &k.ppref)); /* memory decode off */
	wr(k.b1, 0x04, 2, CMD_IO | CMD_MEM);
	assert_true(reaches(t, t->mem, 0x800000100ull, &k.ppref));
	assert_int_equal(k.ppref.last_offset, 0x100);
	struct bm_pci_window w;
	assert_int_equal(bm_pci_bridge_window(k.b1, BM_PCI_WINDOW_PREF, &w), 0);
	assert_int_equal(w.base, 0x800000000ull);
	assert_int_equal(w.last, 0x8000fffffull);
	assert_int_equal(bm_pci_bridge_window(k.e1, BM_PCI_WINDOW_IO, &w), -EINVAL);
	pt_free(t);
}

static void test_intx_swizzle(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	open_b1(&k);
	struct bm_pci_func_desc d = {.vendor_id = 0x1234, .intx_pin = 2};
	bm_pci_func *root_dev = pt_add(t, NULL, 5, 0, &d);
	bm_pci_func *b_dev = pt_add(t, bm_pci_func_secondary_bus(k.b1), 6, 0, &d);
	struct {
		bm_pci_func *f;
		unsigned slot, pin;
	} cases[] = {
	    {root_dev, 5, 2}, /* bus 0: no swizzle */
	    {k.e1, 1, 1},     /* dev 0 pin A behind 00:01.0 */
	    {b_dev, 1, 4},    /* (2 - 1 + 6) % 4 + 1 */
	    {k.e2, 1, 2},     /* pin A at dev 3 -> D, then D at dev 2 -> B */
	};
	for (unsigned i = 0; i < 4; i++) {
		t->nintx = 0;
		assert_int_equal(bm_pci_intx_set(cases[i].f, true), 0);
		assert_int_equal(t->nintx, 1);
		assert_ptr_equal(t->intx[0].src, cases[i].f);
		assert_int_equal(t->intx[0].slot, cases[i].slot);
		assert_int_equal(t->intx[0].pin, cases[i].pin);
		assert_true(t->intx[0].level);
		assert_int_equal(rd(cases[i].f, 0x06, 2) & 0x8, 0x8);
		assert_int_equal(bm_pci_intx_set(cases[i].f, true), 0); /* no change, no call */
		assert_int_equal(t->nintx, 1);
		assert_int_equal(bm_pci_intx_set(cases[i].f, false), 0);
		assert_int_equal(t->nintx, 2);
		assert_false(t->intx[1].level);
		assert_int_equal(rd(cases[i].f, 0x06, 2) & 0x8, 0);
	}
	pt_free(t);
}

static void test_intx_disable(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234, .intx_pin = 3};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	wr(f, 0x04, 2, 0x0400);
	assert_int_equal(bm_pci_intx_set(f, true), 0);
	assert_int_equal(t->nintx, 0);
	assert_int_equal(rd(f, 0x06, 2) & 0x8, 0x8); /* status shows it anyway */
	wr(f, 0x04, 2, 0);
	assert_int_equal(t->nintx, 1);
	assert_true(t->intx[0].level);
	assert_int_equal(t->intx[0].pin, 3);
	wr(f, 0x05, 1, 0x04);
	assert_int_equal(t->nintx, 2);
	assert_false(t->intx[1].level);
	assert_int_equal(bm_pci_intx_set(f, false), 0);
	wr(f, 0x05, 1, 0x00);
	assert_int_equal(t->nintx, 2);
	/* A function without a pin has no line. */
	struct bm_pci_func_desc n = {.vendor_id = 0x1234};
	bm_pci_func *g = pt_add(t, NULL, 5, 0, &n);
	assert_int_equal(bm_pci_intx_set(g, true), -EINVAL);
	/* Unplugging a function that holds its line high lowers it. */
	assert_int_equal(bm_pci_intx_set(f, true), 0);
	assert_int_equal(t->nintx, 3);
	assert_int_equal(bm_pci_func_free(f), 0);
	assert_int_equal(t->nintx, 4);
	assert_false(t->intx[3].level);
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bus_routing),
	    cmocka_unit_test(test_memory_window),
	    cmocka_unit_test(test_io_and_prefetchable_windows),
	    cmocka_unit_test(test_intx_swizzle),
	    cmocka_unit_test(test_intx_disable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
