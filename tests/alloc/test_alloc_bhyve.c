/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The bhyve-like modes against what bhyve does: its arm64 layout (I/O BARs in an MMIO window
 * at 0xdf000000), a bump pointer per window, BARs sorted by size per bus (BM_PCI_ALLOC_BHYVE)
 * or in creation order (BM_PCI_ALLOC_BHYVE_UNSORTED), small 64-bit BARs below 4 GiB, the
 * ROM left alone. The seed's placement: virtio-net at slot 2 and virtio-blk at slot 3, as
 * vmrun.sh creates them, give virtio-blk's 128-byte I/O BAR 0xdf000000 and virtio-net's
 * 64-byte one 0xdf000080.
 */
#include "alloctest.h"

#define BHYVE_IO    ((struct bm_pci_alloc_window){0xdf000000ull, 0xdfffffffull})
#define BHYVE_MEM32 ((struct bm_pci_alloc_window){0xa0000000ull, 0xdfffffffull})
#define BHYVE_MEM64 ((struct bm_pci_alloc_window){0x1000000000ull, 0x17ffffffffull})

static struct bm_pci_alloc_config bhyve_cfg(enum bm_pci_alloc_mode mode)
{
	return (struct bm_pci_alloc_config){.mode = mode,
	                                    .io = BHYVE_IO,
	                                    .mem32 = BHYVE_MEM32,
	                                    .mem64 = BHYVE_MEM64,
	                                    .bus_master = true};
}

/* A legacy virtio device: its configuration registers in an I/O BAR, MSI-X in BAR 1. */
static bm_pci_func *add_virtio(struct at *t, unsigned slot, uint16_t device_id, uint64_t io_size)
{
	struct bm_pci_func_desc d = at_endpoint();
	d.device_id = device_id;
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, io_size, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x2000, false);
	return at_add(t, NULL, slot, 0, &d);
}

static uint64_t mmio_tag(struct at *t, uint64_t addr)
{
	uint64_t v = 0;
	assert_int_equal(bm_read(t->vcpu, t->mem, addr, 4, &v), 0);
	return v;
}

static void test_seed_placement(void **state)
{
	(void)state;
	struct at *t = at_new_arm();
	bm_pci_func *net = add_virtio(t, 2, 0x1000, 64);
	bm_pci_func *blk = add_virtio(t, 3, 0x1001, 128);
	struct bm_pci_alloc_config cfg = bhyve_cfg(BM_PCI_ALLOC_BHYVE);
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, NULL), 0);
	assert_int_equal(at_addr(blk, 0), 0xdf000000ull);
	assert_int_equal(at_addr(net, 0), 0xdf000080ull);
	/* Equal sizes keep slot order. */
	assert_int_equal(at_addr(net, 1), 0xa0000000ull);
	assert_int_equal(at_addr(blk, 1), 0xa0002000ull);
	assert_int_equal(bm_pci_func_cfg_get(net, 0x04, 2), 0x7);
	assert_int_equal(bm_pci_func_cfg_get(blk, 0x04, 2), 0x7);
	/* The CPU reaches each device's registers at those MMIO addresses. */
	assert_int_equal(mmio_tag(t, 0xdf000000ull), (uint32_t)at_probe_of(t, blk, 0)->id);
	assert_int_equal(mmio_tag(t, 0xdf000080ull), (uint32_t)at_probe_of(t, net, 0)->id);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* Before bhyve sorted, it placed BARs as it created devices: in slot order, the seed's
 * layout comes out only with the devices swapped. */
static void test_unsorted_creation_order(void **state)
{
	(void)state;
	struct at *t = at_new_arm();
	bm_pci_func *net = add_virtio(t, 2, 0x1000, 64);
	bm_pci_func *blk = add_virtio(t, 3, 0x1001, 128);
	struct bm_pci_alloc_config cfg = bhyve_cfg(BM_PCI_ALLOC_BHYVE_UNSORTED);
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, NULL), 0);
	assert_int_equal(at_addr(net, 0), 0xdf000000ull);
	assert_int_equal(at_addr(blk, 0), 0xdf000080ull);
	at_free(t);

	for (int sorted = 0; sorted < 2; sorted++) {
		t = at_new_arm();
		blk = add_virtio(t, 2, 0x1001, 128);
		net = add_virtio(t, 3, 0x1000, 64);
		cfg = bhyve_cfg(sorted ? BM_PCI_ALLOC_BHYVE : BM_PCI_ALLOC_BHYVE_UNSORTED);
		assert_int_equal(bm_pci_alloc_run(t->host, &cfg, NULL), 0);
		assert_int_equal(at_addr(blk, 0), 0xdf000000ull);
		assert_int_equal(at_addr(net, 0), 0xdf000080ull);
		at_free(t);
	}
}

/* A bump pointer rounds up to each BAR's size and never fills the hole it leaves. */
static void test_bump_pointer(void **state)
{
	(void)state;
	for (int sorted = 0; sorted < 2; sorted++) {
		struct at *t = at_new_arm();
		bm_pci_func *a = add_virtio(t, 1, 0x1000, 0x40);
		bm_pci_func *b = add_virtio(t, 2, 0x1000, 0x80);
		bm_pci_func *c = add_virtio(t, 3, 0x1000, 0x40);
		struct bm_pci_alloc_config cfg =
		    bhyve_cfg(sorted ? BM_PCI_ALLOC_BHYVE : BM_PCI_ALLOC_BHYVE_UNSORTED);
		assert_int_equal(bm_pci_alloc_run(t->host, &cfg, NULL), 0);
		if (sorted) {
			assert_int_equal(at_addr(b, 0), 0xdf000000ull);
			assert_int_equal(at_addr(a, 0), 0xdf000080ull);
			assert_int_equal(at_addr(c, 0), 0xdf0000c0ull);
		} else {
			assert_int_equal(at_addr(a, 0), 0xdf000000ull);
			assert_int_equal(at_addr(b, 0), 0xdf000080ull);
			assert_int_equal(at_addr(c, 0), 0xdf000100ull);
		}
		at_check_map(t, AT_ROM_OFF);
		at_free(t);
	}
}

/* 64-bit BARs up to 128 MiB go below 4 GiB; larger ones above, if there is a window. The
 * ROM keeps address 0 and its register is not written. */
static void test_64bit_rule_and_rom(void **state)
{
	(void)state;
	for (int high = 0; high < 2; high++) {
		struct at *t = at_new_arm();
		struct bm_pci_func_desc d = at_endpoint();
		d.bars[0] = at_bar(t, BM_PCI_BAR_MEM64, 128u << 20, false);
		d.bars[2] = at_bar(t, BM_PCI_BAR_MEM64, 256u << 20, true);
		d.rom = at_bar(t, BM_PCI_BAR_NONE, 0x10000, false);
		bm_pci_func *f = at_add(t, NULL, 4, 0, &d);
		struct bm_pci_alloc_config cfg = bhyve_cfg(BM_PCI_ALLOC_BHYVE);
		if (!high)
			cfg.mem64 = (struct bm_pci_alloc_window){0};
		bm_pci_alloc_plan *plan = NULL;
		assert_int_equal(bm_pci_alloc_plan_new(t->host, &cfg, &plan, NULL), 0);
		size_t n;
		const struct bm_pci_alloc_entry *e = bm_pci_alloc_plan_entries(plan, &n);
		assert_int_equal(n, 3);
		assert_int_equal(e[2].index, BM_PCI_ROM);
		assert_false(e[2].assigned);
		assert_int_equal(bm_pci_alloc_plan_program(plan), 0);
		bm_pci_alloc_plan_free(plan);
		if (high) {
			assert_int_equal(at_addr(f, 2), 0x1000000000ull);
			assert_int_equal(at_addr(f, 0), 0xa0000000ull);
		} else {
			assert_int_equal(at_addr(f, 2), 0xa0000000ull);
			assert_int_equal(at_addr(f, 0), 0xb0000000ull);
		}
		assert_int_equal(bm_pci_func_cfg_get(f, 0x30, 4), 0);
		at_free(t);
	}
}

/* bhyve has no bridges; the bhyve-like modes still place what is behind one, by the same
 * bump pointers, inside windows sized to it. */
static void test_behind_bridge(void **state)
{
	(void)state;
	struct at *t = at_new_arm();
	struct bm_pci_func_desc bd = at_bridge(true, true);
	bm_pci_func *br = at_add(t, NULL, 1, 0, &bd);
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x80, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x2000, false);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM64, 256u << 20, true);
	bm_pci_func *dev = at_add(t, at_sec(br), 0, 0, &d);
	add_virtio(t, 2, 0x1000, 0x40);
	struct bm_pci_alloc_config cfg = bhyve_cfg(BM_PCI_ALLOC_BHYVE);
	cfg.assign_buses = true;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, NULL), 0);
	assert_int_equal(at_addr(dev, 0), 0xdf000000ull);
	assert_int_equal(at_addr(dev, 1), 0xa0000000ull);
	assert_int_equal(at_addr(dev, 2), 0x1000000000ull);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

static void test_enospc(void **state)
{
	(void)state;
	struct at *t = at_new_arm();
	bm_pci_func *net = add_virtio(t, 2, 0x1000, 64);
	add_virtio(t, 3, 0x1001, 128);
	struct at_snap before = at_snapshot(t);
	struct bm_pci_alloc_config cfg = bhyve_cfg(BM_PCI_ALLOC_BHYVE);
	cfg.io = (struct bm_pci_alloc_window){0xdf000000ull, 0xdf00009full};
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), -ENOSPC);
	assert_ptr_equal(fail.func, net);
	assert_int_equal(fail.index, 0);
	assert_int_equal(fail.size, 64);
	struct at_snap after = at_snapshot(t);
	at_snap_equal(&before, &after);
	at_snap_free(&before);
	at_snap_free(&after);
	at_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_placement), cmocka_unit_test(test_unsorted_creation_order),
	    cmocka_unit_test(test_bump_pointer),   cmocka_unit_test(test_64bit_rule_and_rom),
	    cmocka_unit_test(test_behind_bridge),  cmocka_unit_test(test_enospc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
