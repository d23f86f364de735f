/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Configuration registers: every byte of the type 0 and type 1 headers is read-only,
 * read-write or write-1-to-clear exactly as the specifications say, at every access size
 * and offset. A model written from the specification's tables runs beside the emulation
 * through thousands of random writes; any difference is a bug.
 */
#include "pcitest.h"

struct model {
	uint8_t v[256], wm[256], w1c[256];
};

static void model_mask(struct model *m, unsigned reg, unsigned n, uint32_t wm, uint32_t w1c)
{
	for (unsigned i = 0; i < n; i++) {
		m->wm[reg + i] = (uint8_t)(wm >> (8 * i));
		m->w1c[reg + i] = (uint8_t)(w1c >> (8 * i));
	}
}

static void model_write(struct model *m, unsigned reg, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned at = reg + i;
		if (at >= 256)
			return;
		uint8_t b = (uint8_t)(v >> (8 * i));
		m->v[at] =
		    (uint8_t)(((m->v[at] & ~m->wm[at]) | (b & m->wm[at])) & ~(b & m->w1c[at]));
	}
}

static uint32_t model_read(const struct model *m, unsigned reg, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)(reg + i < 256 ? m->v[reg + i] : 0xff) << (8 * i);
	return v;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void load_model(struct model *m, bm_pci_func *f)
{
	for (unsigned r = 0; r < 256; r += 4) {
		uint32_t v = rd(f, r, 4);
		for (unsigned i = 0; i < 4; i++)
			m->v[r + i] = (uint8_t)(v >> (8 * i));
	}
}

static void compare_all(const struct model *m, bm_pci_func *f)
{
	for (unsigned r = 0; r < 256; r += 4)
		assert_int_equal(rd(f, r, 4), model_read(m, r, 4));
}

/* Random writes of every size at every offset (also straddling dwords and the end of the
 * space); the status register is sometimes set by the "device" to test its W1C bits. */
static void run_against_model(struct model *m, bm_pci_func *f, unsigned n)
{
	static const unsigned sizes[3] = {1, 2, 4};
	for (unsigned i = 0; i < n; i++) {
		if (rnd() % 8 == 0) {
			uint32_t st = (rnd() & 0xf900) | (m->v[6] | m->v[7] << 8);
			bm_pci_func_cfg_set(f, 6, 2, st);
			m->v[6] = (uint8_t)st;
			m->v[7] = (uint8_t)(st >> 8);
		}
		unsigned size = sizes[rnd() % 3];
		unsigned reg = rnd() % 0x44;
		if (rnd() % 16 == 0)
			reg = 0xf0 + rnd() % 0x20; /* near and past the end */
		uint32_t v = rnd() % 4 == 0 ? 0xffffffffu : rnd();
		wr(f, reg, size, v);
		model_write(m, reg, size, v);
		assert_int_equal(rd(f, reg, size), model_read(m, reg, size));
		unsigned any = (rnd() % 64) * 4;
		assert_int_equal(rd(f, any, 4), model_read(m, any, 4));
		if (i % 512 == 0)
			compare_all(m, f);
	}
	compare_all(m, f);
}

static void common_masks(struct model *m)
{
	model_mask(m, 0x04, 2, 0x0547, 0);
	model_mask(m, 0x06, 2, 0, 0xf900);
	model_mask(m, 0x0c, 1, 0xff, 0);
	model_mask(m, 0x3c, 1, 0xff, 0);
}

static void test_type0_masks(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1000,
	    .class_code = 0x020000,
	    .revision = 3,
	    .subsystem_vendor_id = 0x1af4,
	    .subsystem_id = 1,
	    .intx_pin = 1,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 32},
	             {.type = BM_PCI_BAR_MEM32, .size = 4096},
	             {.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .prefetchable = true},
	             {0},
	             {0},
	             {.type = BM_PCI_BAR_MEM32, .size = 16}},
	    .rom = {.size = 65536}};
	bm_pci_func *f = pt_add(t, NULL, 3, 0, &d);
	struct model m = {0};
	load_model(&m, f);
	/* The fixed values a guest identifies the function by. */
	assert_int_equal(model_read(&m, 0, 4), 0x10001af4);
	assert_int_equal(model_read(&m, 8, 4), 0x02000003);
	assert_int_equal(model_read(&m, 0x2c, 4), 0x00011af4);
	assert_int_equal(model_read(&m, 0x3c, 4), 0x00000100);
	assert_int_equal(model_read(&m, 0x10, 4), 0x1);
	assert_int_equal(model_read(&m, 0x18, 4), 0xc);
	common_masks(&m);
	model_mask(&m, 0x10, 4, 0xffffffe0, 0);
	model_mask(&m, 0x14, 4, 0xfffff000, 0);
	model_mask(&m, 0x18, 4, 0xfff00000, 0);
	model_mask(&m, 0x1c, 4, 0xffffffff, 0);
	model_mask(&m, 0x24, 4, 0xfffffff0, 0);
	model_mask(&m, 0x30, 4, 0xffff0001, 0);
	run_against_model(&m, f, 20000);
	pt_free(t);
}

static void test_type1_masks(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x8086,
	                             .device_id = 0x2448,
	                             .class_code = 0x060400,
	                             .header = BM_PCI_HEADER_BRIDGE,
	                             .intx_pin = 2,
	                             .bridge_io32 = true,
	                             .bridge_pref64 = true,
	                             .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096}},
	                             .rom = {.size = 2048}};
	bm_pci_func *f = pt_add(t, NULL, 1, 0, &d);
	struct model m = {0};
	load_model(&m, f);
	assert_int_equal(model_read(&m, 0x0c, 4) >> 16, 0x01); /* header type 1 */
	assert_int_equal(model_read(&m, 0x1c, 2), 0x0101);     /* 32-bit I/O window */
	assert_int_equal(model_read(&m, 0x24, 4), 0x00010001); /* 64-bit prefetchable */
	common_masks(&m);
	model_mask(&m, 0x10, 4, 0xfffff000, 0);
	model_mask(&m, 0x18, 4, 0xffffffff, 0);
	model_mask(&m, 0x1c, 2, 0xf0f0, 0);
	model_mask(&m, 0x1e, 2, 0, 0xf900);
	model_mask(&m, 0x20, 4, 0xfff0fff0, 0);
	model_mask(&m, 0x24, 4, 0xfff0fff0, 0);
	model_mask(&m, 0x28, 4, 0xffffffff, 0);
	model_mask(&m, 0x2c, 4, 0xffffffff, 0);
	model_mask(&m, 0x30, 4, 0xffffffff, 0);
	model_mask(&m, 0x38, 4, 0xfffff801, 0);
	model_mask(&m, 0x3e, 2, 0x0bff, 0x0400);
	run_against_model(&m, f, 20000);
	pt_free(t);
}

static void test_command_and_status(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234, .device_id = 0x11, .intx_pin = 1};
	bm_pci_func *f = pt_add(t, NULL, 2, 0, &d);
	/* Only I/O, memory, bus master, parity, SERR and INTx disable are implemented. */
	wr(f, 0x04, 2, 0xffff);
	assert_int_equal(rd(f, 0x04, 2), 0x0547);
	wr(f, 0x05, 1, 0x00);
	assert_int_equal(rd(f, 0x04, 2), 0x0047);
	wr(f, 0x04, 4, 0xffff0000); /* a dword write clears the command, touches status */
	assert_int_equal(rd(f, 0x04, 2), 0);
	/* The capability-list bit is read-only: set by adding a capability. */
	assert_int_equal(rd(f, 0x06, 2) & 0x10, 0);
	uint8_t cap[4] = {0, 0, 0x12, 0x34};
	struct bm_pci_cap_desc c = {.id = 0x09, .data = cap, .len = 4};
	unsigned off = 0;
	assert_int_equal(bm_pci_func_add_cap(f, &c, &off), 0);
	assert_int_equal(off, 0x40);
	assert_int_equal(rd(f, 0x34, 1), 0x40);
	wr(f, 0x06, 2, 0xffff);
	wr(f, 0x34, 1, 0);
	assert_int_equal(rd(f, 0x06, 2) & 0x10, 0x10);
	assert_int_equal(rd(f, 0x34, 1), 0x40);
	/* Error bits: set by the device, cleared only by writing 1 to each. */
	bm_pci_func_cfg_set(f, 0x06, 2, 0xf910);
	wr(f, 0x06, 2, 0x0000);
	assert_int_equal(rd(f, 0x06, 2), 0xf910);
	wr(f, 0x07, 1, 0x80);
	assert_int_equal(rd(f, 0x06, 2), 0x7910);
	wr(f, 0x06, 2, 0x0100);
	assert_int_equal(rd(f, 0x06, 2), 0x7810);
	wr(f, 0x04, 4, 0xffff0000); /* one dword: command cleared, every error bit too */
	assert_int_equal(rd(f, 0x06, 2), 0x0010);
	/* Interrupt line RW, pin RO. */
	wr(f, 0x3c, 2, 0xffff);
	assert_int_equal(rd(f, 0x3c, 2), 0x01ff);
	pt_free(t);
}

static void test_out_of_range(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1234, .device_id = 0x11};
	bm_pci_func *f = pt_add(t, NULL, 2, 0, &d);
	struct bm_pci_func_desc x = {.vendor_id = 0x1234, .device_id = 0x12, .extended = true};
	bm_pci_func *g = pt_add(t, NULL, 3, 0, &x);
	/* Past 256 bytes of a conventional function: all ones, writes dropped. */
	assert_int_equal(rd(f, 0x100, 4), 0xffffffff);
	wr(f, 0x100, 4, 0);
	assert_int_equal(rd(f, 0x100, 4), 0xffffffff);
	assert_int_equal(rd(f, 0xfe, 4), 0xffff0000); /* straddles the end */
	assert_int_equal(rd(f, 0xfff, 1), 0xff);
	assert_int_equal(rd(f, 0xffffffffu, 4), 0xffffffff);
	wr(f, 0xffffffffu, 4, 0);
	wr(f, 0xfffffffdu, 4, 0);
	/* An extended function has 4 KiB; an empty extended list reads 0 at 0x100. */
	assert_int_equal(rd(g, 0x100, 4), 0);
	assert_int_equal(rd(g, 0xffc, 4), 0);
	wr(g, 0x800, 4, 0xffffffff);
	assert_int_equal(rd(g, 0x800, 4), 0);
	assert_int_equal(rd(g, 0xffe, 4), 0xffff0000);
	assert_int_equal(rd(g, 0x1000, 4), 0xffffffff);
	/* Bad sizes are refused, not carried out. */
	uint32_t v;
	assert_int_equal(bm_pci_func_cfg_read(f, 0, 3, &v), -EINVAL);
	assert_int_equal(bm_pci_func_cfg_write(f, 0, 8, 0), -EINVAL);
	assert_int_equal(bm_pci_cfg_read(t->host, 0, 32, 0, 0, 4, &v), -EINVAL);
	pt_free(t);
}

static void test_descriptor_checks(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	bm_pci_bus *root = bm_pci_host_root_bus(t->host);
	bm_pci_func *f = NULL;
	struct bm_pci_func_desc d = {.vendor_id = 0x1234};
	d.bars[0] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM32, .size = 3000};
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	d.bars[0] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM64, .size = 4096};
	d.bars[1] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_IO, .size = 16};
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	d.bars[1] = (struct bm_pci_bar_desc){0};
	d.bars[5] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM64, .size = 4096};
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	d.bars[5] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_IO, .size = 2};
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	d.bars[5] = (struct bm_pci_bar_desc){0};
	d.rom.size = 1024;
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	d.rom.size = 0;
	assert_int_equal(bm_pci_func_new(root, 32, 0, &d, &f), -EINVAL);
	assert_int_equal(bm_pci_func_new(root, 0, 0, &d, &f), -EEXIST); /* the host bridge */
	d.vendor_id = 0xffff;
	assert_int_equal(bm_pci_func_new(root, 1, 0, &d, &f), -EINVAL);
	assert_null(bm_pci_func_find(t->host, 0, 1, 0));
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type0_masks),        cmocka_unit_test(test_type1_masks),
	    cmocka_unit_test(test_command_and_status), cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_descriptor_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
