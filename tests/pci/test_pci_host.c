/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The host bridge's configuration mechanisms: CF8/CFC at every size and offset, ECAM, and
 * the direct accessors reach the same registers; absent functions read all ones; the
 * multi-function bit follows the slot; functions can be found and walked.
 */
#include "pcitest.h"
#include <busmap/pci_regs.h>

static uint32_t ones(unsigned size)
{
	return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static uint32_t cf8_read(struct pt *t, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                         unsigned k, unsigned size)
{
	uint32_t a = 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, a), 0);
	return (uint32_t)mem_rd(t, t->io, 0xcfc + k, size);
}

static void cf8_write(struct pt *t, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                      unsigned k, unsigned size, uint32_t v)
{
	uint32_t a = 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, a), 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcfc + k, size, v), 0);
}

static uint64_t ecam_addr(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return ECAM_BASE + ((uint64_t)bus << 20 | dev << 15 | fn << 12 | reg);
}

static uint32_t direct(struct pt *t, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                       unsigned size)
{
	uint32_t v = 0;
	assert_int_equal(bm_pci_cfg_read(t->host, bus, dev, fn, reg, size, &v), 0);
	return v;
}

static bm_pci_func *scratch_func(struct pt *t, unsigned dev, bool extended)
{
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4,
	                             .device_id = 0x1041,
	                             .revision = 1,
	                             .class_code = 0x020000,
	                             .subsystem_vendor_id = 0x1af4,
	                             .subsystem_id = 0x1100,
	                             .intx_pin = 1,
	                             .extended = extended,
	                             .bars = {{.type = BM_PCI_BAR_MEM64, .size = 1 << 14}}};
	bm_pci_func *f = pt_add(t, NULL, dev, 0, &d);
	/* A device-specific read-write dword to write at every size. */
	bm_pci_func_cfg_set_masks(f, 0x40, 4, 0xffffffff, 0);
	if (extended)
		bm_pci_func_cfg_set_masks(f, 0x200, 4, 0xffffffff, 0);
	return f;
}

static void test_cf8_every_size_and_offset(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	bm_pci_func *f = scratch_func(t, 5, false);
	bm_pci_func_cfg_set(f, 0x40, 4, 0x44332211);
	for (unsigned reg = 0; reg < 0x100; reg += 4)
		for (unsigned size = 1; size <= 4; size *= 2)
			for (unsigned k = 0; k + size <= 4; k++)
				assert_int_equal(cf8_read(t, 0, 5, 0, reg, k, size),
				                 direct(t, 0, 5, 0, reg + k, size));
	for (unsigned size = 1; size <= 4; size *= 2) {
		for (unsigned k = 0; k + size <= 4; k++) {
			bm_pci_func_cfg_set(f, 0x40, 4, 0);
			cf8_write(t, 0, 5, 0, 0x40, k, size, 0xa1b2c3d4);
			uint32_t want = (0xa1b2c3d4 & ones(size)) << (8 * k);
			assert_int_equal(rd(f, 0x40, 4), want);
		}
	}
	/* A status W1C through the upper half of the command dword. */
	bm_pci_func_cfg_set(f, 0x06, 2, 0x8000);
	cf8_write(t, 0, 5, 0, 0x04, 2, 2, 0x8000);
	assert_int_equal(rd(f, 0x06, 2), 0);
	/* A 4-byte access at 0xcfe reaches the last two bytes of the register, and nothing
	 * beyond the data port. */
	bm_pci_func_cfg_set(f, 0x40, 4, 0x44332211);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, 0x80000000u | 5 << 11 | 0x40), 0);
	uint64_t v = 0;
	int r = bm_read(t->vcpu, t->io, 0xcfe, 4, &v);
	assert_true(r & BM_ACCESS_UNASSIGNED);
	assert_int_equal(v, 0xffff4433);
	pt_free(t);
}

static void test_cf8_address_register(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	scratch_func(t, 5, false);
	uint32_t a = 0x80000000u | 5 << 11;
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, a), 0);
	assert_int_equal(mem_rd(t, t->io, 0xcf8, 4), a);
	/* Narrower writes do not latch anything. */
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcfb, 1, 0x00), 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 2, 0x0000), 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcfa, 2, 0x0000), 0);
	assert_int_equal(mem_rd(t, t->io, 0xcf8, 4), a);
	assert_int_equal(mem_rd(t, t->io, 0xcfb, 1), 0x80);
	assert_int_equal(mem_rd(t, t->io, 0xcfc, 2), 0x1af4);
	/* Without the enable bit the data port reads all ones and drops writes. */
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, 5 << 11 | 0x3c), 0);
	assert_int_equal(mem_rd(t, t->io, 0xcfc, 4), 0xffffffff);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcfc, 1, 0x0b), 0);
	assert_int_equal(direct(t, 0, 5, 0, 0x3c, 1), 0);
	/* 8-byte port accesses do not exist. */
	uint64_t v;
	assert_int_equal(bm_read(t->vcpu, t->io, 0xcf8, 8, &v), -EOPNOTSUPP);
	/* Only a byte at 0xcf9 reaches the reset control hook; the latch keeps its value. */
	assert_int_equal(t->nreset, 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf8, 4, a), 0);
	assert_int_equal(bm_write(t->vcpu, t->io, 0xcf9, 1, 0x06), 0);
	assert_int_equal(t->nreset, 1);
	assert_int_equal(t->reset_control[0], 0x06);
	assert_int_equal(mem_rd(t, t->io, 0xcf8, 4), a);
	pt_free(t);
}

static void test_ecam_reaches_the_same_registers(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	scratch_func(t, 5, false);
	bm_pci_func *x = scratch_func(t, 6, true);
	struct bm_pci_func_desc bd = {.vendor_id = 0x8086,
	                              .device_id = 0x2448,
	                              .class_code = 0x060400,
	                              .header = BM_PCI_HEADER_BRIDGE};
	pt_add(t, NULL, 7, 0, &bd);
	unsigned devs[4] = {0, 5, 6, 7};
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned reg = 0; reg < 0x1000; reg += 4) {
			uint32_t want;
			bm_pci_cfg_read(t->host, 0, devs[i], 0, reg, 4, &want);
			assert_int_equal(mem_rd(t, t->mem, ecam_addr(0, devs[i], 0, reg), 4), want);
			if (reg < 0x100)
				assert_int_equal(cf8_read(t, 0, devs[i], 0, reg, 0, 4), want);
			else if (devs[i] != 6)
				assert_int_equal(want, 0xffffffff);
		}
		for (unsigned reg = 0; reg < 0x40; reg++) {
			assert_int_equal(mem_rd(t, t->mem, ecam_addr(0, devs[i], 0, reg), 1),
			                 direct(t, 0, devs[i], 0, reg, 1));
			if (!(reg & 1))
				assert_int_equal(
				    mem_rd(t, t->mem, ecam_addr(0, devs[i], 0, reg), 2),
				    direct(t, 0, devs[i], 0, reg, 2));
		}
	}
	/* Writes through ECAM, read back through CF8, at every size and offset. */
	for (unsigned size = 1; size <= 4; size *= 2)
		for (unsigned k = 0; k + size <= 4; k += size) {
			bm_pci_func_cfg_set(x, 0x40, 4, 0);
			assert_int_equal(bm_write(t->vcpu, t->mem, ecam_addr(0, 6, 0, 0x40 + k),
			                          size, 0x99887766),
			                 0);
			assert_int_equal(cf8_read(t, 0, 6, 0, 0x40, 0, 4), (0x99887766 & ones(size))
			                                                       << (8 * k));
		}
	/* Extended registers only through ECAM. */
	assert_int_equal(bm_write(t->vcpu, t->mem, ecam_addr(0, 6, 0, 0x200), 4, 0xcafef00d), 0);
	assert_int_equal(rd(x, 0x200, 4), 0xcafef00d);
	/* An 8-byte ECAM read is two configuration dwords. */
	assert_int_equal(mem_rd(t, t->mem, ecam_addr(0, 6, 0, 0), 8),
	                 (uint64_t)direct(t, 0, 6, 0, 4, 4) << 32 | direct(t, 0, 6, 0, 0, 4));
	pt_free(t);
}

static void test_absent_functions(void **state)
{
	(void)state;
	struct bm_pci_host_config c = {
	    .cf8 = true, .ecam = true, .ecam_base = ECAM_BASE, .ecam_bus_count = 4};
	struct pt *t = pt_new_with(c, true);
	uint32_t v = 0;
	assert_int_equal(bm_pci_cfg_read(t->host, 0, 9, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(bm_pci_cfg_read(t->host, 0, 9, 0, 0, 2, &v), -ENODEV);
	assert_int_equal(v, 0xffff);
	assert_int_equal(bm_pci_cfg_write(t->host, 0, 9, 0, 4, 2, 0xffff), -ENODEV);
	assert_int_equal(bm_pci_cfg_read(t->host, 3, 0, 0, 0, 4, &v), -ENODEV);
	assert_int_equal(bm_pci_cfg_read(t->host, 255, 31, 7, 0xffc, 4, &v), -ENODEV);
	for (unsigned size = 1; size <= 4; size *= 2) {
		assert_int_equal(mem_rd(t, t->mem, ecam_addr(0, 9, 0, 0), size), ones(size));
		assert_int_equal(mem_rd(t, t->mem, ecam_addr(2, 0, 0, 0x10), size), ones(size));
		assert_int_equal(cf8_read(t, 0, 9, 0, 0, 0, size), ones(size));
		assert_int_equal(cf8_read(t, 200, 1, 1, 0, 0, size), ones(size));
	}
	assert_int_equal(bm_write(t->vcpu, t->mem, ecam_addr(1, 2, 3, 4), 4, 0), 0);
	cf8_write(t, 0, 9, 0, 0x10, 0, 4, 0x1234);
	/* Past the ECAM window (4 buses) nothing answers. */
	uint64_t w;
	assert_true(bm_read(t->vcpu, t->mem, ecam_addr(4, 0, 0, 0), 4, &w) & BM_ACCESS_UNASSIGNED);
	/* The host bridge answers at 00:00.0. */
	assert_int_equal(direct(t, 0, 0, 0, 0, 4), 0x00081b36);
	assert_int_equal(direct(t, 0, 0, 0, 8, 4) >> 8, 0x060000);
	assert_ptr_equal(bm_pci_func_find(t->host, 0, 0, 0), bm_pci_host_bridge_func(t->host));
	pt_free(t);
}

static void test_multifunction_bit(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234};
	bm_pci_func *f0 = pt_add(t, NULL, 3, 0, &d);
	assert_int_equal(rd(f0, 0x0e, 1), 0x00);
	bm_pci_func *f3 = pt_add(t, NULL, 3, 3, &d);
	assert_int_equal(rd(f0, 0x0e, 1), 0x80);
	assert_int_equal(rd(f3, 0x0e, 1), 0x00);
	/* A function may ask for the bit itself, as QEMU's multifunction=on does. */
	struct bm_pci_func_desc m = {.vendor_id = 0x1234, .multifunction = true};
	bm_pci_func *f5 = pt_add(t, NULL, 3, 5, &m);
	assert_int_equal(rd(f5, 0x0e, 1), 0x80);
	bm_pci_func *s0 = pt_add(t, NULL, 4, 0, &m); /* alone in its slot */
	assert_int_equal(rd(s0, 0x0e, 1), 0x80);
	wr(f0, 0x0e, 1, 0x00); /* read-only */
	assert_int_equal(rd(f0, 0x0e, 1), 0x80);
	assert_int_equal(bm_pci_func_free(f3), 0);
	assert_int_equal(rd(f0, 0x0e, 1), 0x80); /* fn 5 is still there */
	assert_int_equal(bm_pci_func_free(f5), 0);
	assert_int_equal(rd(f0, 0x0e, 1), 0x00);
	assert_null(bm_pci_func_find(t->host, 0, 3, 3));
	assert_int_equal(direct(t, 0, 3, 0, 0x0e, 1), 0x00);
	pt_free(t);
}

static void test_walk_functions(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234};
	struct bm_pci_func_desc bd = {.vendor_id = 0x8086,
	                              .header = BM_PCI_HEADER_BRIDGE,
	                              .secondary_bus = 1,
	                              .subordinate_bus = 1};
	bm_pci_func *a = pt_add(t, NULL, 2, 0, &d);
	bm_pci_func *br = pt_add(t, NULL, 1, 0, &bd);
	bm_pci_func *b = pt_add(t, bm_pci_func_secondary_bus(br), 4, 1, &d);
	bm_pci_func *hb = bm_pci_host_bridge_func(t->host);
	bm_pci_func *want[4] = {hb, br, b, a};
	bm_pci_func *f = NULL;
	for (unsigned i = 0; i < 4; i++) {
		f = bm_pci_func_next(t->host, f);
		assert_ptr_equal(f, want[i]);
	}
	assert_null(bm_pci_func_next(t->host, f));
	assert_ptr_equal(bm_pci_func_find(t->host, 1, 4, 1), b);
	assert_string_equal(bm_pci_func_name(b), "01:04.1");
	uint8_t bus, dev, fn;
	bm_pci_func_bdf(b, &bus, &dev, &fn);
	assert_int_equal(bus, 1);
	assert_int_equal(dev, 4);
	assert_int_equal(fn, 1);
	assert_ptr_equal(bm_pci_bus_bridge(bm_pci_func_bus(b)), br);
	assert_true(bm_pci_func_is_bridge(br));
	assert_false(bm_pci_func_is_bridge(b));
	/* Freeing the bridge takes what is behind it along. */
	assert_int_equal(bm_pci_func_free(br), 0);
	assert_null(bm_pci_func_find(t->host, 1, 4, 1));
	assert_ptr_equal(bm_pci_func_next(t->host, hb), a);
	pt_free(t);
}

static void test_host_config_checks(void **state)
{
	(void)state;
	bm_system *sys;
	bm_space *mem;
	bm_pci_host *h = NULL;
	assert_int_equal(bm_system_new(&sys), 0);
	assert_int_equal(bm_space_new(sys, "memory", "system", &mem), 0);
	struct bm_pci_host_config c = {0};
	assert_int_equal(bm_pci_host_new(sys, &c, &h), -EINVAL); /* no memory space */
	c.mem = mem;
	c.cf8 = true;
	assert_int_equal(bm_pci_host_new(sys, &c, &h), -EINVAL); /* CF8 without ports */
	c.cf8 = false;
	c.ecam = true;
	c.ecam_bus_first = 200;
	c.ecam_bus_count = 100;
	assert_int_equal(bm_pci_host_new(sys, &c, &h), -EINVAL);
	c.ecam_bus_count = 0;
	c.ecam_base = 0xfffffffffff00000ull;
	assert_int_equal(bm_pci_host_new(sys, &c, &h), -EINVAL);
	c.ecam_base = 0xe0000000;
	c.no_host_bridge = true;
	assert_int_equal(bm_pci_host_new(sys, &c, &h), 0);
	assert_null(bm_pci_host_bridge_func(h));
	assert_int_equal(bm_pci_host_io_limit(h), 0x10000);
	assert_int_equal(bm_pci_host_free(h), 0);
	assert_int_equal(bm_system_free(sys), 0);
}

/* Function 00:03.0, IDs 1234:5678, with one memory BAR 0. */
static void add_one_bar_func(struct pt *t, enum bm_pci_bar_type type, uint64_t size)
{
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234, .device_id = 0x5678, .bars = {[0] = {.type = type, .size = size}}};
	pt_add(t, NULL, 3, 0, &d);
}

/* What a device model or guest-side code writes with the public names: the encodings match
 * the hand-made ones above, and sizing, placing and enabling a BAR through them works. */
static void test_public_register_names(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	add_one_bar_func(t, BM_PCI_BAR_MEM64, 0x4000);
	assert_int_equal(PCI_CONFIG_ADDRESS(1, 2, 3, 0x47),
	                 0x80000000u | 1 << 16 | 2 << 11 | 3 << 8 | 0x44);
	assert_int_equal(ECAM_BASE + PCI_ECAM_OFFSET(1, 2, 3, 0x47), ecam_addr(1, 2, 3, 0x47));
	assert_int_equal(bm_write(t->vcpu, t->io, PCI_CONFIG_ADDRESS_PORT, 4,
	                          PCI_CONFIG_ADDRESS(0, 3, 0, PCI_VENDOR_ID)),
	                 0);
	assert_int_equal(mem_rd(t, t->io, PCI_CONFIG_DATA_PORT + PCI_DEVICE_ID, 2), 0x5678);

	uint64_t bar0 = ECAM_BASE + PCI_ECAM_OFFSET(0, 3, 0, PCI_BASE_ADDRESS_0);
	assert_int_equal(bm_write(t->vcpu, t->mem, bar0, 4, 0xffffffff), 0);
	uint32_t low = (uint32_t)mem_rd(t, t->mem, bar0, 4);
	assert_int_equal(low & PCI_BASE_ADDRESS_MEM_TYPE_MASK, PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(low & PCI_BASE_ADDRESS_SPACE_IO, 0);
	assert_int_equal(~(low & PCI_BASE_ADDRESS_MEM_MASK) + 1, 0x4000);
	assert_int_equal(bm_write(t->vcpu, t->mem, bar0, 4, 0xc0000000), 0);
	assert_int_equal(bm_write(t->vcpu, t->mem, bar0 + 4, 4, 0), 0);
	uint64_t cmd = ECAM_BASE + PCI_ECAM_OFFSET(0, 3, 0, PCI_COMMAND);
	assert_int_equal(bm_write(t->vcpu, t->mem, cmd, 2, PCI_COMMAND_MEMORY), 0);
	uint64_t v = 0;
	assert_int_equal(bm_read(t->vcpu, t->mem, 0xc0000000, 4, &v), 0); /* decoded now */
	pt_free(t);
}

/* Freeing the system under a live host would free the host's regions and leak the host;
 * the call refuses instead, and the host keeps working until it is freed first. */
static void test_system_free_with_live_host(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	add_one_bar_func(t, BM_PCI_BAR_MEM32, 0x1000);
	assert_int_equal(bm_vcpu_free(t->vcpu), 0);
	assert_int_equal(bm_system_free(t->sys), -EBUSY);
	uint32_t v = 0;
	assert_int_equal(bm_pci_cfg_read(t->host, 0, 3, 0, PCI_VENDOR_ID, 4, &v), 0);
	assert_int_equal(v, 0x56781234);
	assert_int_equal(bm_pci_host_free(t->host), 0);
	assert_int_equal(bm_system_free(t->sys), 0);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cf8_every_size_and_offset),
	    cmocka_unit_test(test_cf8_address_register),
	    cmocka_unit_test(test_ecam_reaches_the_same_registers),
	    cmocka_unit_test(test_absent_functions),
	    cmocka_unit_test(test_multifunction_bit),
	    cmocka_unit_test(test_walk_functions),
	    cmocka_unit_test(test_host_config_checks),
	    cmocka_unit_test(test_public_register_names),
	    cmocka_unit_test(test_system_free_with_live_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
