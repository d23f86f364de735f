/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Capabilities: the legacy and extended lists, generic capabilities with their masks, MSI
 * (64-bit, per-vector masking, pending bits), MSI-X (table and PBA as overlays that win over
 * the BAR's own region at every entry, masks, pending bits) and the PCI Express capability.
 */
#include "pcitest.h"

#define BAR_ADDR 0xfe000000ull

struct msix_dev {
	struct pt *t;
	struct probe p;
	bm_pci_func *f;
	unsigned cap;
};

static void msix_build(struct msix_dev *m)
{
	m->t = pt_new();
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1af4,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 16384, .ops = &probe_ops, .opaque = &m->p}}};
	m->f = pt_add(m->t, NULL, 4, 0, &d);
	assert_int_equal(bm_pci_func_add_msix(m->f, 8, 0, 0x2000, 0, 0x3000, &m->cap), 0);
	wr(m->f, 0x10, 4, (uint32_t)BAR_ADDR);
	wr(m->f, 0x04, 2, 0x2);
}

static uint64_t entry(unsigned v, unsigned dw)
{
	return BAR_ADDR + 0x2000 + v * 16 + dw * 4;
}

static void test_msix_table_overlay(void **state)
{
	(void)state;
	struct msix_dev m = {0};
	msix_build(&m);
	struct pt *t = m.t;
	assert_int_equal(rd(m.f, m.cap, 1), 0x11);
	assert_int_equal(rd(m.f, m.cap + 2, 2), 7); /* table size - 1 */
	assert_int_equal(rd(m.f, m.cap + 4, 4), 0x2000);
	assert_int_equal(rd(m.f, m.cap + 8, 4), 0x3000);
	/* Every dword of every entry reaches the table, never the device's region. */
	for (unsigned v = 0; v < 8; v++) {
		assert_int_equal(mem_rd(t, t->mem, entry(v, 3), 4), 1); /* masked at reset */
		for (unsigned dw = 0; dw < 4; dw++) {
			uint32_t val = 0x10000000u * (dw + 1) + v;
			assert_int_equal(bm_write(t->vcpu, t->mem, entry(v, dw), 4, val), 0);
			assert_int_equal(mem_rd(t, t->mem, entry(v, dw), 4),
			                 dw == 3 ? (val & 1) : val);
		}
		/* Narrow and wide accesses too. */
		assert_int_equal(mem_rd(t, t->mem, entry(v, 0) + 1, 1), 0);
		assert_int_equal(
		    bm_write(t->vcpu, t->mem, entry(v, 0), 8, 0x00000001fee00000ull | v), 0);
		assert_int_equal(mem_rd(t, t->mem, entry(v, 0), 8), 0x00000001fee00000ull | v);
	}
	assert_int_equal(m.p.reads + m.p.writes, 0);
	/* Around the table, the device's region answers. */
	mem_rd(t, t->mem, BAR_ADDR + 0x1ffc, 4);
	mem_rd(t, t->mem, BAR_ADDR + 0x2080, 4);
	assert_int_equal(m.p.reads, 2);
	assert_int_equal(m.p.last_offset, 0x2080);
	/* The PBA is read-only. */
	assert_int_equal(bm_write(t->vcpu, t->mem, BAR_ADDR + 0x3000, 8, ~0ull), 0);
	assert_int_equal(mem_rd(t, t->mem, BAR_ADDR + 0x3000, 8), 0);
	/* The overlays move with the BAR. */
	wr(m.f, 0x10, 4, 0xfd000000);
	assert_int_equal(mem_rd(t, t->mem, 0xfd002000 + 5 * 16, 4), 0xfee00000 | 5);
	uint64_t v;
	assert_true(bm_read(t->vcpu, t->mem, entry(5, 0), 4, &v) & BM_ACCESS_UNASSIGNED);
	pt_free(t);
}

static void test_msix_masks_and_pending(void **state)
{
	(void)state;
	struct msix_dev m = {0};
	msix_build(&m);
	struct pt *t = m.t;
	for (unsigned v = 0; v < 8; v++) {
		bm_write(t->vcpu, t->mem, entry(v, 0), 4, 0xfee00000);
		bm_write(t->vcpu, t->mem, entry(v, 1), 4, 0);
		bm_write(t->vcpu, t->mem, entry(v, 2), 4, 0x30 + v);
	}
	assert_int_equal(bm_pci_msi_notify(m.f, 2), -ENOTCONN); /* not enabled */
	wr(m.f, m.cap + 2, 2, 0x8000);
	assert_int_equal(bm_pci_msi_notify(m.f, 8), -EINVAL);
	assert_int_equal(bm_pci_msi_notify(m.f, 2), 1); /* masked: pending */
	assert_int_equal(t->nmsi, 0);
	assert_int_equal(mem_rd(t, t->mem, BAR_ADDR + 0x3000, 4), 0x4);
	bm_write(t->vcpu, t->mem, entry(2, 3), 4, 0); /* unmask: delivered */
	assert_int_equal(t->nmsi, 1);
	assert_int_equal(t->msi[0].addr, 0xfee00000);
	assert_int_equal(t->msi[0].data, 0x32);
	assert_ptr_equal(t->msi[0].src, m.f);
	assert_int_equal(mem_rd(t, t->mem, BAR_ADDR + 0x3000, 4), 0);
	assert_int_equal(bm_pci_msi_notify(m.f, 2), 0);
	assert_int_equal(t->nmsi, 2);
	/* Function mask holds every vector. */
	wr(m.f, m.cap + 2, 2, 0xc000);
	bm_write(t->vcpu, t->mem, entry(3, 3), 4, 0);
	assert_int_equal(bm_pci_msi_notify(m.f, 3), 1);
	assert_int_equal(bm_pci_msi_notify(m.f, 2), 1);
	assert_int_equal(mem_rd(t, t->mem, BAR_ADDR + 0x3000, 4), 0xc);
	wr(m.f, m.cap + 2, 2, 0x8000);
	assert_int_equal(t->nmsi, 4);
	assert_int_equal(t->msi[2].data, 0x32);
	assert_int_equal(t->msi[3].data, 0x33);
	/* The table size and offsets are read-only. */
	wr(m.f, m.cap + 2, 2, 0x87ff);
	assert_int_equal(rd(m.f, m.cap + 2, 2), 0x8007);
	wr(m.f, m.cap + 4, 4, 0);
	assert_int_equal(rd(m.f, m.cap + 4, 4), 0x2000);
	pt_free(t);
}

static void test_msix_checks(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4,
	                             .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096},
	                                      {.type = BM_PCI_BAR_IO, .size = 256},
	                                      {.type = BM_PCI_BAR_MEM64, .size = 8192}}};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	assert_int_equal(bm_pci_func_add_msix(f, 8, 1, 0, 0, 0x800, NULL), -EINVAL); /* I/O BAR */
	assert_int_equal(bm_pci_func_add_msix(f, 8, 3, 0, 0, 0x800, NULL), -EINVAL); /* upper */
	assert_int_equal(bm_pci_func_add_msix(f, 8, 0, 4, 0, 0x800, NULL), -EINVAL); /* align */
	assert_int_equal(bm_pci_func_add_msix(f, 300, 0, 0, 2, 0, NULL), -EINVAL);   /* size */
	assert_int_equal(bm_pci_func_add_msix(f, 8, 0, 0, 0, 0x40, NULL), -EINVAL);  /* overlap */
	assert_int_equal(bm_pci_func_add_msix(f, 0, 0, 0, 0, 0x800, NULL), -EINVAL);
	assert_int_equal(bm_pci_func_add_msix(f, 256, 0, 0, 2, 0x1000, NULL), 0);
	assert_int_equal(bm_pci_func_add_msix(f, 8, 0, 0, 2, 0x1000, NULL), -EEXIST);
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, 2, &bi), 0);
	assert_string_equal(bm_region_name(bi.region), "00:04.0/bar2");
	pt_free(t);
}

static void test_msi(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	unsigned c = 0;
	assert_int_equal(bm_pci_func_add_msi(f, 4, true, true, &c), 0);
	assert_int_equal(bm_pci_func_add_msi(f, 4, true, true, NULL), -EEXIST);
	assert_int_equal(c, 0x40);
	assert_int_equal(rd(f, 0x34, 1), 0x40);
	assert_int_equal(rd(f, c, 4), 0x01840005);
	assert_int_equal(bm_pci_msi_notify(f, 0), -ENOTCONN);
	wr(f, c + 4, 4, 0xfee00003); /* the two low bits are read-only */
	assert_int_equal(rd(f, c + 4, 4), 0xfee00000);
	wr(f, c + 8, 4, 0);
	wr(f, c + 0xc, 4, 0xffff4040); /* 16-bit data */
	assert_int_equal(rd(f, c + 0xc, 4), 0x4040);
	wr(f, c + 2, 2, 0x0021); /* enable, 4 vectors */
	assert_int_equal(rd(f, c + 2, 2), 0x01a5);
	assert_int_equal(bm_pci_msi_notify(f, 3), 0);
	assert_int_equal(t->nmsi, 1);
	assert_int_equal(t->msi[0].addr, 0xfee00000);
	assert_int_equal(t->msi[0].data, 0x4043);
	/* Per-vector mask and pending bits. */
	wr(f, c + 0x10, 4, 0xffffffff);
	assert_int_equal(rd(f, c + 0x10, 4), 0xf);
	assert_int_equal(bm_pci_msi_notify(f, 1), 1);
	assert_int_equal(rd(f, c + 0x14, 4), 0x2);
	wr(f, c + 0x14, 4, 0); /* read-only to the guest */
	assert_int_equal(rd(f, c + 0x14, 4), 0x2);
	wr(f, c + 0x10, 4, 0xd);
	assert_int_equal(t->nmsi, 2);
	assert_int_equal(t->msi[1].data, 0x4041);
	assert_int_equal(rd(f, c + 0x14, 4), 0);
	/* Fewer vectors allocated than offered. */
	wr(f, c + 2, 2, 0x0001);
	assert_int_equal(bm_pci_msi_notify(f, 1), -EINVAL);
	assert_int_equal(bm_pci_msi_notify(f, 4), -EINVAL);
	/* 32-bit, no masking: data right after the address. */
	bm_pci_func *g = pt_add(t, NULL, 5, 0, &d);
	assert_int_equal(bm_pci_func_add_msi(g, 1, false, false, &c), 0);
	assert_int_equal(rd(g, c, 4), 0x00000005);
	wr(g, c + 4, 4, 0xfee01000);
	wr(g, c + 8, 2, 0x0051);
	wr(g, c + 2, 2, 0x0071); /* asks for 128 vectors: 1 is what there is */
	assert_int_equal(bm_pci_msi_notify(g, 0), 0);
	assert_int_equal(t->msi[2].addr, 0xfee01000);
	assert_int_equal(t->msi[2].data, 0x51);
	assert_int_equal(bm_pci_func_add_msi(g, 3, false, false, NULL), -EINVAL);
	pt_free(t);
}

static void test_generic_caps(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	uint8_t data[10] = {0xaa, 0xbb, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
	uint8_t wm[10] = {0xff, 0xff, 0, 0xff, 0x0f, 0, 0, 0, 0, 0};
	uint8_t w1c[10] = {0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0};
	struct bm_pci_cap_desc c = {
	    .id = 0x09, .data = data, .len = 10, .wmask = wm, .w1cmask = w1c};
	unsigned o1, o2;
	assert_int_equal(bm_pci_func_add_cap(f, &c, &o1), 0);
	c.id = 0x0d;
	assert_int_equal(bm_pci_func_add_cap(f, &c, &o2), 0);
	assert_int_equal(o1, 0x40);
	assert_int_equal(o2, 0x4c); /* dword aligned after 10 bytes */
	/* The list: 0x34 -> first -> second -> end; links and ids read-only. */
	assert_int_equal(rd(f, 0x34, 1), o1);
	assert_int_equal(rd(f, o1, 2), 0x09 | o2 << 8);
	assert_int_equal(rd(f, o2, 2), 0x0d);
	wr(f, o1, 2, 0xffff);
	assert_int_equal(rd(f, o1, 2), 0x09 | o2 << 8);
	wr(f, o1 + 5, 1, 0x03); /* write 1 to clear */
	assert_int_equal(rd(f, o1 + 5, 1), 0x30);
	wr(f, o1 + 2, 4, 0xffffffff);
	assert_int_equal(rd(f, o1 + 2, 4), 0x002fff0a);
	assert_int_equal(bm_pci_func_find_cap(f, 0x0d, false), o2);
	assert_int_equal(bm_pci_func_find_cap(f, 0x05, false), 0);
	c.len = 200;
	assert_int_equal(bm_pci_func_add_cap(f, &c, NULL), -ENOSPC);
	assert_int_equal(bm_pci_func_add_ext_cap(f, &c, NULL), -ENOTSUP);
	pt_free(t);
}

static void test_pcie(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct bm_pci_func_desc d = {.vendor_id = 0x1af4, .extended = true};
	bm_pci_func *f = pt_add(t, NULL, 4, 0, &d);
	unsigned c = 0;
	assert_int_equal(bm_pci_func_add_pcie(f, BM_PCIE_ROOT_PORT, &c), -EINVAL);
	assert_int_equal(bm_pci_func_add_pcie(f, BM_PCIE_ENDPOINT, &c), 0);
	assert_int_equal(bm_pci_func_add_pcie(f, BM_PCIE_ENDPOINT, NULL), -EEXIST);
	assert_int_equal(rd(f, c, 4), 0x00020010);
	assert_int_equal(rd(f, c + 0x12, 2) & 0x3ff, 0x11); /* 2.5 GT/s x1 */
	wr(f, c + 8, 2, 0xffff);
	assert_int_equal(rd(f, c + 8, 2), 0x7fff);
	bm_pci_func_cfg_set(f, c + 0xa, 2, 0x000f);
	wr(f, c + 0xa, 2, 0x0005);
	assert_int_equal(rd(f, c + 0xa, 2), 0x000a);
	/* The extended list from 0x100, reached through ECAM. */
	uint8_t aer[0x48] = {0};
	struct bm_pci_cap_desc a = {.id = 0x0001, .version = 2, .data = aer, .len = sizeof(aer)};
	struct bm_pci_cap_desc s = {.id = 0x000b, .version = 1, .data = aer, .len = 8};
	unsigned e1, e2;
	assert_int_equal(bm_pci_func_add_ext_cap(f, &a, &e1), 0);
	assert_int_equal(bm_pci_func_add_ext_cap(f, &s, &e2), 0);
	assert_int_equal(e1, 0x100);
	assert_int_equal(e2, 0x148);
	uint64_t ecam = ECAM_BASE + (4 << 15);
	assert_int_equal(mem_rd(t, t->mem, ecam + 0x100, 4), 0x0001u | 2u << 16 | 0x148u << 20);
	assert_int_equal(mem_rd(t, t->mem, ecam + 0x148, 4), 0x0001000b);
	assert_int_equal(bm_pci_func_find_cap(f, 0x000b, true), 0x148);
	/* A root port: a bridge header; reports a slot and a link that is up. */
	struct bm_pci_func_desc rp = {.vendor_id = 0x1b36,
	                              .device_id = 0x000c,
	                              .header = BM_PCI_HEADER_BRIDGE,
	                              .extended = true};
	bm_pci_func *r = pt_add(t, NULL, 5, 0, &rp);
	assert_int_equal(bm_pci_func_add_pcie(r, BM_PCIE_ENDPOINT, NULL), -EINVAL);
	assert_int_equal(bm_pci_func_add_pcie(r, BM_PCIE_ROOT_PORT, &c), 0);
	assert_int_equal(rd(r, c + 2, 2), 0x0142);
	assert_int_equal(rd(r, c + 0x12, 2) & 0x2000, 0x2000);
	/* Conventional functions have no room for it. */
	struct bm_pci_func_desc cd = {.vendor_id = 0x1af4};
	bm_pci_func *g = pt_add(t, NULL, 6, 0, &cd);
	assert_int_equal(bm_pci_func_add_pcie(g, BM_PCIE_ENDPOINT, NULL), -EINVAL);
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msix_table_overlay),
	    cmocka_unit_test(test_msix_masks_and_pending),
	    cmocka_unit_test(test_msix_checks),
	    cmocka_unit_test(test_msi),
	    cmocka_unit_test(test_generic_caps),
	    cmocka_unit_test(test_pcie),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
