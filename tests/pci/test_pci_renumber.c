/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bus renumbering, as Linux does with pci=assign-busses: the bridges' bus numbers are
 * rewritten after firmware set them, and a function keeps its identity, registers and
 * mapped BARs while the number by which configuration cycles reach it changes.
 */
#include "pcitest.h"

#define CMD_MEM 0x2

struct topo {
	struct pt *t;
	bm_pci_func *rp1, *rp2, *e1, *e2;
	struct probe p1, p2;
};

/* Two root ports at 00:02.0 and 00:03.0, an endpoint with a 4 KiB BAR behind each. */
static void topo_build(struct topo *k)
{
	k->t = pt_new();
	struct bm_pci_func_desc bd = {.vendor_id = 0x1b36,
	                              .device_id = 0x000c,
	                              .class_code = 0x060400,
	                              .header = BM_PCI_HEADER_BRIDGE};
	k->rp1 = pt_add(k->t, NULL, 2, 0, &bd);
	k->rp2 = pt_add(k->t, NULL, 3, 0, &bd);
	struct bm_pci_func_desc ed = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1044,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 4096, .ops = &probe_ops, .opaque = &k->p1}}};
	k->e1 = pt_add(k->t, bm_pci_func_secondary_bus(k->rp1), 0, 0, &ed);
	ed.device_id = 0x1042;
	ed.bars[0].opaque = &k->p2;
	k->e2 = pt_add(k->t, bm_pci_func_secondary_bus(k->rp2), 0, 0, &ed);
}

static void set_buses(struct pt *t, unsigned dev, unsigned sec, unsigned sub)
{
	assert_int_equal(bm_pci_cfg_write(t->host, 0, dev, 0, 0x18, 4, sub << 16 | sec << 8), 0);
}

static uint32_t cfg_rd(struct pt *t, unsigned bus, unsigned reg)
{
	uint32_t v = 0;
	assert_int_equal(bm_pci_cfg_read(t->host, bus, 0, 0, reg, 4, &v), 0);
	return v;
}

static bool absent(struct pt *t, unsigned bus)
{
	uint32_t v;
	return bm_pci_cfg_read(t->host, bus, 0, 0, 0, 4, &v) == -ENODEV && v == 0xffffffffu;
}

/* Firmware's numbering with room left behind the first port, a 1 MiB memory window per
 * port, then the endpoints' BARs. */
static void firmware(struct topo *k)
{
	struct pt *t = k->t;
	set_buses(t, 2, 1, 4);
	set_buses(t, 3, 5, 5);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 2, 0, 0x20, 4, 0xfe00fe00), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 3, 0, 0x20, 4, 0xfe10fe10), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 2, 0, 0x04, 2, CMD_MEM), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 3, 0, 0x04, 2, CMD_MEM), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 1, 0, 0, 0x10, 4, 0xfe000000), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 5, 0, 0, 0x10, 4, 0xfe100000), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 1, 0, 0, 0x04, 2, CMD_MEM), 0);
	assert_int_equal(bm_pci_cfg_write(t->host, 5, 0, 0, 0x04, 2, CMD_MEM), 0);
	assert_int_equal(t->nev, 2);
}

static void test_renumbered_function_keeps_identity(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	firmware(&k);
	assert_int_equal(cfg_rd(t, 5, 0), 0x10421af4);

	/* Linux's first pass closes every bridge, then numbers them densely. */
	set_buses(t, 2, 0, 0);
	set_buses(t, 3, 0, 0);
	assert_true(absent(t, 1));
	assert_true(absent(t, 5));
	set_buses(t, 2, 1, 1);
	set_buses(t, 3, 2, 2);

	/* The same function, now at 02:00.0, with its registers and its mapping. */
	assert_true(absent(t, 5));
	assert_ptr_equal(bm_pci_func_find(t->host, 2, 0, 0), k.e2);
	assert_null(bm_pci_func_find(t->host, 5, 0, 0));
	uint8_t bus;
	bm_pci_func_bdf(k.e2, &bus, NULL, NULL);
	assert_int_equal(bus, 2);
	assert_int_equal(cfg_rd(t, 2, 0), 0x10421af4);
	assert_int_equal(cfg_rd(t, 2, 0x10), 0xfe100000);
	assert_int_equal(cfg_rd(t, 2, 0x04) & 0xffff, CMD_MEM);
	uint64_t addr;
	assert_true(bar_mapped(k.e2, 0, &addr));
	assert_int_equal(addr, 0xfe100000);
	assert_int_equal(t->nev, 2); /* bus numbers decode no address: nothing moved */
	unsigned before = k.p2.reads;
	mem_rd(t, t->mem, 0xfe100000, 4);
	assert_int_equal(k.p2.reads, before + 1);
	/* ECAM reaches it at its new number. */
	assert_int_equal(mem_rd(t, t->mem, ECAM_BASE + (2u << 20), 4), 0x10421af4);

	/* Writes at the new number land on it, and its events say where it is now. */
	assert_int_equal(bm_pci_cfg_write(t->host, 2, 0, 0, 0x10, 4, 0xfe101000), 0);
	assert_int_equal(t->nev, 4);
	expect_event(t, 2, k.e2, 0, 0xfe100000, false);
	expect_event(t, 3, k.e2, 0, 0xfe101000, true);
	assert_int_equal(t->ev[3].bus, 2);
	pt_free(t);
}

/* Two bridges trade numbers: each function follows its own bridge, not the number. */
static void test_swapped_numbers(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	firmware(&k);
	set_buses(t, 2, 0, 0);
	set_buses(t, 3, 1, 1);
	set_buses(t, 2, 5, 5);
	assert_ptr_equal(bm_pci_func_find(t->host, 1, 0, 0), k.e2);
	assert_ptr_equal(bm_pci_func_find(t->host, 5, 0, 0), k.e1);
	assert_int_equal(cfg_rd(t, 1, 0x10), 0xfe100000);
	assert_int_equal(cfg_rd(t, 5, 0x10), 0xfe000000);
	assert_true(bar_mapped(k.e1, 0, NULL));
	assert_true(bar_mapped(k.e2, 0, NULL));
	assert_int_equal(t->nev, 2);
	pt_free(t);
}

/* A range that overlaps another bridge's: the number goes to the first bridge in device
 * order whose range holds it; the other function is out of reach, not lost. */
static void test_overlapping_ranges(void **state)
{
	(void)state;
	struct topo k = {0};
	topo_build(&k);
	struct pt *t = k.t;
	firmware(&k);
	set_buses(t, 2, 1, 1);
	set_buses(t, 3, 1, 1);
	assert_ptr_equal(bm_pci_func_find(t->host, 1, 0, 0), k.e1);
	set_buses(t, 2, 3, 3);
	assert_ptr_equal(bm_pci_func_find(t->host, 1, 0, 0), k.e2);
	assert_ptr_equal(bm_pci_func_find(t->host, 3, 0, 0), k.e1);
	assert_int_equal(t->nev, 2);
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_renumbered_function_keeps_identity),
	    cmocka_unit_test(test_swapped_numbers),
	    cmocka_unit_test(test_overlapping_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
