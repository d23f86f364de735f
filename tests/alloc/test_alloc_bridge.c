/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bridges: windows sized to what is behind them in the PCI-to-PCI bridge granules,
 * placed like BARs, the devices behind them inside, nested bridges, bus numbers, and every
 * BAR reached from the CPU through the bridges after allocation.
 */
#include "alloctest.h"

#define IO     ((struct bm_pci_alloc_window){0x1000, 0xffff})
#define MEM32  ((struct bm_pci_alloc_window){0x80000000ull, 0xbfffffffull})
#define PREF32 ((struct bm_pci_alloc_window){0xc0000000ull, 0xdfffffffull})
#define MEM64  ((struct bm_pci_alloc_window){0x10000000000ull, 0x1ffffffffffull})

static void run_ok(struct at *t, const struct bm_pci_alloc_config *cfg)
{
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, cfg, &fail), 0);
}

static void expect_window(bm_pci_func *br, enum bm_pci_window_kind k, uint64_t base, uint64_t last)
{
	struct bm_pci_window w = at_window(br, k);
	assert_true(w.enabled);
	assert_int_equal(w.base, base);
	assert_int_equal(w.last, last);
}

static void expect_closed(bm_pci_func *br, enum bm_pci_window_kind k)
{
	assert_false(at_window(br, k).enabled);
}

/*
 * Behind the bridge: 2 MiB + 4 KiB of memory make a 3 MiB window aligned to 2 MiB, 256
 * ports a 4 KiB I/O window, 64 MiB of 64-bit prefetchable memory a window above 4 GiB.
 */
static void test_windows_sized_and_placed(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 16u << 20, false);
	bm_pci_func *root_dev = at_add(t, NULL, 1, 0, &d);
	struct bm_pci_func_desc bd = at_bridge(true, true);
	bm_pci_func *br = at_add(t, NULL, 2, 0, &bd);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x100, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM32, 2u << 20, false);
	d.bars[3] = at_bar(t, BM_PCI_BAR_MEM64, 64u << 20, true);
	bm_pci_func *dev = at_add(t, at_sec(br), 0, 0, &d);

	struct bm_pci_alloc_config cfg = {
	    .io = IO, .mem32 = MEM32, .mem64 = MEM64, .assign_buses = true};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(root_dev, 0), 0x80000000ull);
	expect_window(br, BM_PCI_WINDOW_IO, 0x1000, 0x1fff);
	expect_window(br, BM_PCI_WINDOW_MEM, 0x81000000ull, 0x812fffffull);
	expect_window(br, BM_PCI_WINDOW_PREF, 0x10000000000ull, 0x10003ffffffull);
	assert_int_equal(at_addr(dev, 0), 0x1000);
	assert_int_equal(at_addr(dev, 2), 0x81000000ull);
	assert_int_equal(at_addr(dev, 1), 0x81200000ull);
	assert_int_equal(at_addr(dev, 3), 0x10000000000ull);

	/* The registers as a firmware writes them. */
	assert_int_equal(bm_pci_func_cfg_get(br, 0x18, 4) & 0xffffff, 0x010100);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x1c, 2), 0x1111);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x30, 4), 0);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x20, 4), 0x81208100u);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x24, 4), 0x03f10001u);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x28, 4), 0x100);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x2c, 4), 0x100);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x04, 2), 0x3);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* Without 64-bit prefetchable registers, the prefetchable window holds every prefetchable
 * BAR below 4 GiB; with them, 32-bit prefetchable BARs go into the memory window so the
 * prefetchable one may go high (as Linux sizes bridges). */
static void test_prefetchable_window_kinds(void **state)
{
	(void)state;
	for (int pref64 = 0; pref64 < 2; pref64++) {
		struct at *t = at_new();
		struct bm_pci_func_desc bd = at_bridge(false, pref64);
		bm_pci_func *br = at_add(t, NULL, 2, 0, &bd);
		struct bm_pci_func_desc d = at_endpoint();
		d.bars[0] = at_bar(t, BM_PCI_BAR_MEM64, 8u << 20, true);
		d.bars[2] = at_bar(t, BM_PCI_BAR_MEM32, 1u << 20, true);
		bm_pci_func *dev = at_add(t, at_sec(br), 0, 0, &d);
		struct bm_pci_alloc_config cfg = {
		    .io = IO, .mem32 = MEM32, .pref32 = PREF32, .mem64 = MEM64};
		run_ok(t, &cfg);
		expect_closed(br, BM_PCI_WINDOW_IO);
		assert_int_equal(bm_pci_func_cfg_get(br, 0x1c, 2), 0x00f0);
		if (pref64) {
			expect_window(br, BM_PCI_WINDOW_MEM, 0x80000000ull, 0x800fffffull);
			expect_window(br, BM_PCI_WINDOW_PREF, 0x10000000000ull, 0x100007fffffull);
			assert_int_equal(at_addr(dev, 2), 0x80000000ull);
			assert_int_equal(at_addr(dev, 0), 0x10000000000ull);
		} else {
			expect_closed(br, BM_PCI_WINDOW_MEM);
			assert_int_equal(bm_pci_func_cfg_get(br, 0x20, 4), 0x0000fff0u);
			expect_window(br, BM_PCI_WINDOW_PREF, 0xc0000000ull, 0xc08fffffull);
			assert_int_equal(at_addr(dev, 0), 0xc0000000ull);
			assert_int_equal(at_addr(dev, 2), 0xc0800000ull);
		}
		at_check_map(t, AT_ROM_OFF);
		at_free(t);
	}
}

/*
 * 00:02.0 bridge A -> 01:00.0 bridge B -> 02:00.0 device; 01:01.0 device beside B;
 * 00:03.0 bridge C -> 03:00.0 device. Bus numbers depth first; windows nest.
 */
static void test_nested(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc bd = at_bridge(false, false);
	bm_pci_func *a = at_add(t, NULL, 2, 0, &bd);
	bm_pci_func *b = at_add(t, at_sec(a), 0, 0, &bd);
	bm_pci_func *c = at_add(t, NULL, 3, 0, &bd);
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_IO, 0x10, false);
	bm_pci_func *deep = at_add(t, at_sec(b), 0, 0, &d);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	bm_pci_func *beside = at_add(t, at_sec(a), 1, 0, &d);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 1u << 20, true);
	bm_pci_func *under_c = at_add(t, at_sec(c), 0, 0, &d);

	struct bm_pci_alloc_config cfg = {.io = IO, .mem32 = MEM32, .assign_buses = true};
	bm_pci_alloc_plan *plan = NULL;
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &cfg, &plan, NULL), 0);
	size_t n = 0;
	const struct bm_pci_alloc_busnr *nr = bm_pci_alloc_plan_buses(plan, &n);
	assert_int_equal(n, 3);
	assert_ptr_equal(nr[0].bridge, a);
	assert_int_equal(nr[0].primary, 0);
	assert_int_equal(nr[0].secondary, 1);
	assert_int_equal(nr[0].subordinate, 2);
	assert_ptr_equal(nr[1].bridge, b);
	assert_int_equal(nr[1].primary, 1);
	assert_int_equal(nr[1].secondary, 2);
	assert_int_equal(nr[1].subordinate, 2);
	assert_ptr_equal(nr[2].bridge, c);
	assert_int_equal(nr[2].secondary, 3);
	assert_int_equal(nr[2].subordinate, 3);
	assert_int_equal(bm_pci_alloc_plan_bus_number(plan, deep), 2);
	assert_int_equal(bm_pci_alloc_plan_bus_number(plan, under_c), 3);
	assert_int_equal(bm_pci_alloc_plan_bus_number(plan, a), 0);
	assert_int_equal(bm_pci_alloc_plan_bus_number(plan, NULL), -EINVAL);
	uint8_t bus_now;
	bm_pci_func_bdf(deep, &bus_now, NULL, NULL);
	assert_int_equal(bus_now, 0);
	assert_int_equal(bm_pci_alloc_plan_program(plan), 0);
	bm_pci_alloc_plan_free(plan);

	expect_window(a, BM_PCI_WINDOW_MEM, 0x80000000ull, 0x801fffffull);
	expect_window(b, BM_PCI_WINDOW_MEM, 0x80000000ull, 0x800fffffull);
	expect_window(c, BM_PCI_WINDOW_PREF, 0x80200000ull, 0x802fffffull);
	expect_closed(c, BM_PCI_WINDOW_MEM);
	expect_window(a, BM_PCI_WINDOW_IO, 0x1000, 0x1fff);
	expect_window(b, BM_PCI_WINDOW_IO, 0x1000, 0x1fff);
	assert_int_equal(at_addr(deep, 0), 0x80000000ull);
	assert_int_equal(at_addr(deep, 1), 0x1000);
	assert_int_equal(at_addr(beside, 0), 0x80100000ull);
	assert_int_equal(at_addr(under_c, 0), 0x80200000ull);

	/* Configuration cycles now route by the new numbers. */
	assert_ptr_equal(bm_pci_func_find(t->host, 2, 0, 0), deep);
	assert_ptr_equal(bm_pci_func_find(t->host, 3, 0, 0), under_c);
	uint32_t v = 0;
	assert_int_equal(bm_pci_cfg_read(t->host, 2, 0, 0, 0, 4, &v), 0);
	assert_int_equal(v, 0x10001af4u);
	at_check_map(t, AT_ROM_OFF);

	/* Reads reach the device at the end of two bridges, in both spaces. */
	const struct probe *p = at_probe_of(t, deep, 0);
	unsigned reads = p->reads;
	uint64_t tag = 0;
	assert_int_equal(bm_read(t->vcpu, t->mem, 0x80000000ull, 4, &tag), 0);
	assert_int_equal(tag, (uint32_t)p->id);
	assert_int_equal(p->reads, reads + 1);
	assert_int_equal(bm_write(t->vcpu, t->io, 0x1000, 4, 0xfeed), 0);
	assert_int_equal(at_probe_of(t, deep, 1)->last_value, 0xfeed);
	at_free(t);
}

/* A bridge with nothing behind it gets every window closed and no decoding. */
static void test_empty_bridge(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc bd = at_bridge(true, true);
	bm_pci_func *br = at_add(t, NULL, 2, 0, &bd);
	assert_int_equal(bm_pci_func_cfg_write(br, 0x20, 4, 0x90009000), 0);
	assert_int_equal(bm_pci_func_cfg_write(br, 0x04, 2, 0x3), 0);
	expect_window(br, BM_PCI_WINDOW_MEM, 0x90000000ull, 0x900fffffull);
	struct bm_pci_alloc_config cfg = {.io = IO, .mem32 = MEM32, .mem64 = MEM64};
	run_ok(t, &cfg);
	for (unsigned k = 0; k < 3; k++)
		expect_closed(br, (enum bm_pci_window_kind)k);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x04, 2), 0);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x1c, 2), 0x01f1);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x30, 4), 0x0000ffffu);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x24, 4), 0x0001fff1u);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x28, 4), 0xffffffffu);
	assert_int_equal(bm_pci_func_cfg_get(br, 0x2c, 4), 0);
	at_free(t);
}

/* A bridge's own BARs sit on the bus above it, beside its windows. */
static void test_bridge_bars(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc bd = at_bridge(false, false);
	bd.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x100000, false);
	bm_pci_func *br = at_add(t, NULL, 2, 0, &bd);
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x100000, false);
	bm_pci_func *dev = at_add(t, at_sec(br), 0, 0, &d);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(br, 0), 0x80000000ull);
	expect_window(br, BM_PCI_WINDOW_MEM, 0x80100000ull, 0x801fffffull);
	assert_int_equal(at_addr(dev, 0), 0x80100000ull);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* A bridge whose I/O registers are 16-bit cannot forward ports above 0xffff. */
static void test_io16_bridge_on_high_ports(void **state)
{
	(void)state;
	for (int io32 = 0; io32 < 2; io32++) {
		struct at *t = at_new_arm();
		struct bm_pci_func_desc bd = at_bridge(io32, false);
		bm_pci_func *br = at_add(t, NULL, 2, 0, &bd);
		struct bm_pci_func_desc d = at_endpoint();
		d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x80, false);
		bm_pci_func *dev = at_add(t, at_sec(br), 0, 0, &d);
		struct bm_pci_alloc_config cfg = {.io = {0xdf000000ull, 0xdfffffffull},
		                                  .mem32 = {0xa0000000ull, 0xdeffffffull}};
		struct bm_pci_alloc_failure fail;
		int err = bm_pci_alloc_run(t->host, &cfg, &fail);
		if (io32) {
			assert_int_equal(err, 0);
			expect_window(br, BM_PCI_WINDOW_IO, 0xdf000000ull, 0xdf000fffull);
			assert_int_equal(at_addr(dev, 0), 0xdf000000ull);
			at_check_map(t, AT_ROM_OFF);
		} else {
			assert_int_equal(err, -ENOSPC);
			assert_ptr_equal(fail.func, br);
			assert_int_equal(fail.what, BM_PCI_ALLOC_WINDOW);
			assert_int_equal(fail.index, BM_PCI_WINDOW_IO);
		}
		at_free(t);
	}
}

/* Bus numbers run out after 255 bridges. */
static void test_bus_numbers_run_out(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc bd = at_bridge(false, false);
	bm_pci_func *first = at_add(t, NULL, 1, 0, &bd);
	for (unsigned fn = 0; fn < 8; fn++)
		at_add(t, at_sec(first), 0, fn, &bd);
	bm_pci_func *last = NULL;
	for (unsigned dev = 1; dev < 32; dev++)
		for (unsigned fn = dev == 1 ? 1 : 0; fn < 8; fn++)
			last = at_add(t, NULL, dev, fn, &bd);
	/* 1 + 8 + 247 = 256 bridges: the last one finds no number. */
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32, .assign_buses = true};
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), -ENOSPC);
	assert_ptr_equal(fail.func, last);
	assert_int_equal(fail.what, BM_PCI_ALLOC_BUSES);
	cfg.assign_buses = false;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), 0);
	assert_int_equal(bm_pci_bus_number(at_sec(last)), 0);
	at_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows_sized_and_placed),
	    cmocka_unit_test(test_prefetchable_window_kinds),
	    cmocka_unit_test(test_nested),
	    cmocka_unit_test(test_empty_bridge),
	    cmocka_unit_test(test_bridge_bars),
	    cmocka_unit_test(test_io16_bridge_on_high_ports),
	    cmocka_unit_test(test_bus_numbers_run_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
