/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Garbage: a seeded loop of hundreds of thousands of configuration writes of random values,
 * sizes (valid or not) and offsets (inside the header, in capabilities, past the end of the
 * space, near 2^32), through every way in (by function, by bus number, ECAM, CF8/CFC), to
 * every kind of function, mixed with guest accesses to the BARs, MSI and INTx signals.
 * Nothing may crash, and after every few steps:
 * - every BAR is mapped exactly when the decode rule, applied by this test to the registers
 *   it reads back, says so, and its region sits in its bus's container at the address the
 *   registers hold;
 * - the map events seen so far pair up (each unmap names the address of the last map) and
 *   end in the state the function reports;
 * - identification registers never change.
 */
#include "pcitest.h"

#define NFUNCS 7
#define NSLOTS (BM_PCI_ROM + 1)

struct shadow {
	bool mapped;
	uint64_t addr;
};

struct fuzz {
	struct pt *t;
	bm_pci_func *f[NFUNCS];
	uint32_t id[NFUNCS];
	struct shadow sh[NFUNCS][NSLOTS];
	unsigned bad_events;
	unsigned long events, mapped_checks;
	struct probe probe[4];
	uint64_t rng;
};

static uint32_t rnd(struct fuzz *z)
{
	z->rng ^= z->rng << 13;
	z->rng ^= z->rng >> 7;
	z->rng ^= z->rng << 17;
	return (uint32_t)(z->rng >> 11);
}

static int func_index(const struct fuzz *z, const bm_pci_func *f)
{
	for (int i = 0; i < NFUNCS; i++)
		if (z->f[i] == f)
			return i;
	return -1;
}

/* Runs inside the library's transaction: record, never assert (that would jump out). */
static void observe(void *arg, const struct bm_pci_map_event *ev)
{
	struct fuzz *z = arg;
	int i = func_index(z, ev->func);
	if (i < 0 || ev->bar > BM_PCI_ROM) {
		z->bad_events++;
		return;
	}
	z->events++;
	struct shadow *s = &z->sh[i][ev->bar];
	if (ev->mapped == s->mapped || (!ev->mapped && ev->addr != s->addr))
		z->bad_events++;
	s->mapped = ev->mapped;
	s->addr = ev->addr;
}

static void build(struct fuzz *z)
{
	z->t = pt_new();
	assert_int_equal(bm_pci_host_set_map_observer(z->t->host, observe, z), 0);
	struct bm_pci_func_desc a = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1000,
	    .intx_pin = 1,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 64, .ops = &probe_ops, .opaque = &z->probe[0]},
	             {.type = BM_PCI_BAR_MEM32,
	              .size = 16384,
	              .ops = &probe_ops,
	              .opaque = &z->probe[1]},
	             {0},
	             {0},
	             {.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .prefetchable = true}},
	    .rom = {.size = 65536}};
	z->f[0] = bm_pci_host_bridge_func(z->t->host);
	z->f[1] = pt_add(z->t, NULL, 2, 0, &a);
	assert_int_equal(bm_pci_func_add_msi(z->f[1], 8, true, true, NULL), 0);
	assert_int_equal(bm_pci_func_add_msix(z->f[1], 16, 1, 0x2000, 1, 0x3000, NULL), 0);
	struct bm_pci_func_desc x = {.vendor_id = 0x8086,
	                             .device_id = 0x10d3,
	                             .extended = true,
	                             .intx_pin = 2,
	                             .bars = {{.type = BM_PCI_BAR_MEM64,
	                                       .size = 1 << 17,
	                                       .ops = &probe_ops,
	                                       .opaque = &z->probe[2]},
	                                      {0},
	                                      {.type = BM_PCI_BAR_IO, .size = 32}}};
	z->f[2] = pt_add(z->t, NULL, 3, 0, &x);
	assert_int_equal(bm_pci_func_add_pcie(z->f[2], BM_PCIE_ENDPOINT, NULL), 0);
	assert_int_equal(bm_pci_func_add_msix(z->f[2], 4, 0, 0x1000, 0, 0x1800, NULL), 0);
	struct bm_pci_func_desc m = {.vendor_id = 0x1234,
	                             .device_id = 0x5678,
	                             .bars = {{.type = BM_PCI_BAR_MEM32, .size = 16}}};
	z->f[3] = pt_add(z->t, NULL, 3, 5, &m); /* makes slot 3 multi-function */
	struct bm_pci_func_desc br = {.vendor_id = 0x1b36,
	                              .device_id = 0x000c,
	                              .header = BM_PCI_HEADER_BRIDGE,
	                              .extended = true,
	                              .intx_pin = 1,
	                              .bridge_io32 = true,
	                              .bridge_pref64 = true,
	                              .secondary_bus = 1,
	                              .subordinate_bus = 1,
	                              .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096}},
	                              .rom = {.size = 2048}};
	z->f[4] = pt_add(z->t, NULL, 4, 0, &br);
	assert_int_equal(bm_pci_func_add_pcie(z->f[4], BM_PCIE_ROOT_PORT, NULL), 0);
	struct bm_pci_func_desc c = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1042,
	    .intx_pin = 4,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = 8192, .ops = &probe_ops, .opaque = &z->probe[3]},
	        {.type = BM_PCI_BAR_IO, .size = 128}}};
	z->f[5] = pt_add(z->t, bm_pci_func_secondary_bus(z->f[4]), 0, 0, &c);
	assert_int_equal(bm_pci_func_add_msi(z->f[5], 1, false, false, NULL), 0);
	z->f[6] = pt_add(z->t, bm_pci_func_secondary_bus(z->f[4]), 0, 1, &m);
	for (int i = 0; i < NFUNCS; i++)
		z->id[i] = rd(z->f[i], 0, 4);
}

/* The decode rule, written again from the specification of the layer. */
static bool model_decode(bm_pci_func *f, unsigned bar, const struct bm_pci_bar_info *bi,
                         uint64_t *addr)
{
	uint32_t cmd = rd(f, 0x04, 2);
	unsigned reg =
	    bar == BM_PCI_ROM ? (bm_pci_func_is_bridge(f) ? 0x38 : 0x30) : 0x10 + 4 * bar;
	uint64_t lo = rd(f, reg, 4);
	if (bi->io) {
		uint64_t a = lo & ~3ull & ~(bi->size - 1), last = a + bi->size - 1;
		*addr = a;
		return (cmd & 1) && a != 0 && last > a && last < 0x10000;
	}
	if (!(cmd & 2) || (bar == BM_PCI_ROM && !(lo & 1)))
		return false;
	uint64_t a = lo & (bar == BM_PCI_ROM ? ~0x7ffull : ~0xfull);
	if (bi->type == BM_PCI_BAR_MEM64)
		a |= (uint64_t)rd(f, reg + 4, 4) << 32;
	a &= ~(bi->size - 1);
	uint64_t last = a + bi->size - 1;
	*addr = a;
	if (last <= a || last == UINT64_MAX || a == 0)
		return false;
	return bi->type == BM_PCI_BAR_MEM64 || last < 0xffffffffull;
}

static void check_invariants(struct fuzz *z)
{
	assert_int_equal(z->bad_events, 0);
	for (int i = 0; i < NFUNCS; i++) {
		bm_pci_func *f = z->f[i];
		assert_int_equal(rd(f, 0, 4), z->id[i]);
		bm_pci_bus *bus = bm_pci_func_bus(f);
		for (unsigned b = 0; b <= BM_PCI_ROM; b++) {
			struct bm_pci_bar_info bi;
			if (bm_pci_bar_info(f, b, &bi) != 0) {
				assert_false(z->sh[i][b].mapped);
				continue;
			}
			uint64_t addr;
			bool want = model_decode(f, b, &bi, &addr);
			assert_int_equal(bi.mapped, want);
			assert_int_equal(z->sh[i][b].mapped, want);
			if (!want) {
				assert_null(bm_region_parent(bi.region));
				continue;
			}
			z->mapped_checks++;
			assert_int_equal(bi.mapped_addr, addr);
			assert_int_equal(z->sh[i][b].addr, addr);
			assert_int_equal(bm_region_offset(bi.region), addr);
			assert_ptr_equal(bm_region_parent(bi.region),
			                 bi.io ? bm_pci_bus_io_region(bus)
			                       : bm_pci_bus_mem_region(bus));
		}
	}
}

static unsigned pick_reg(struct fuzz *z)
{
	switch (rnd(z) % 8) {
	case 0:
		return rnd(z) % 0x1100;
	case 1:
		return 0x40 + rnd(z) % 0xc0; /* capabilities */
	case 2:
		return rnd(z) % 4 ? 0x04 : 0x30 + rnd(z) % 12; /* command, ROMs */
	case 3:
		return 0xfffffff0u + rnd(z) % 16;
	default:
		return 0x04 + rnd(z) % 0x3c; /* header: BARs, bridge windows, bus numbers */
	}
}

static uint32_t pick_value(struct fuzz *z)
{
	switch (rnd(z) % 8) {
	case 0:
		return 0xffffffff;
	case 1:
		return 0;
	case 2:
		return rnd(z) & 0x7; /* decode bits */
	case 3:
		return 0xfe000000u | (rnd(z) & 0x00fff000u); /* plausible addresses, overlapping */
	case 4:
		return 0xc000 + (rnd(z) & 0x3fc0);
	default:
		return rnd(z) ^ (rnd(z) << 16);
	}
}

static unsigned pick_size(struct fuzz *z, bool allow_bad)
{
	static const unsigned good[3] = {1, 2, 4}, bad[4] = {0, 3, 8, 5};
	if (allow_bad && rnd(z) % 64 == 0)
		return bad[rnd(z) % 4];
	return good[rnd(z) % 3];
}

static void one_config_write(struct fuzz *z)
{
	struct pt *t = z->t;
	bm_pci_func *f = z->f[rnd(z) % NFUNCS];
	uint8_t bus, dev, fn;
	bm_pci_func_bdf(f, &bus, &dev, &fn);
	if (rnd(z) % 16 == 0) { /* somewhere that may hold nothing */
		bus = (uint8_t)(rnd(z) % 4);
		dev = (uint8_t)(rnd(z) % 32);
		fn = (uint8_t)(rnd(z) % 8);
	}
	unsigned reg = pick_reg(z), size = pick_size(z, true);
	uint32_t v = pick_value(z);
	bool good = size == 1 || size == 2 || size == 4;
	int r;
	switch (rnd(z) % 4) {
	case 0:
		r = bm_pci_func_cfg_write(f, reg, size, v);
		assert_int_equal(r, good ? 0 : -EINVAL);
		break;
	case 1:
		r = bm_pci_cfg_write(t->host, bus, dev, fn, reg, size, v);
		assert_true(good ? (r == 0 || r == -ENODEV) : r == -EINVAL);
		break;
	case 2: {
		uint64_t a =
		    ECAM_BASE + ((uint64_t)bus << 20 | dev << 15 | fn << 12 | (reg & 0xfff));
		r = bm_write(t->vcpu, t->mem, a, size, v);
		assert_true(good || size == 8 ? r >= 0 : r == -EINVAL);
		break;
	}
	default: {
		uint32_t latch =
		    (rnd(z) % 32 ? 0x80000000u : 0) | bus << 16 | dev << 11 | fn << 8 | reg;
		bm_write(t->vcpu, t->io, 0xcf8, rnd(z) % 8 ? 4 : pick_size(z, false), latch);
		r = bm_write(t->vcpu, t->io, 0xcfc + rnd(z) % 4, size, v);
		assert_true(r >= 0 || r == -EINVAL || r == -EOPNOTSUPP);
		break;
	}
	}
}

static void one_guest_access(struct fuzz *z)
{
	struct pt *t = z->t;
	bm_pci_func *f = z->f[rnd(z) % NFUNCS];
	struct bm_pci_bar_info bi;
	if (bm_pci_bar_info(f, rnd(z) % 7, &bi) != 0 || !bi.mapped)
		return;
	uint64_t a = bi.mapped_addr + rnd(z) % bi.size;
	unsigned size = 1u << (rnd(z) % 4);
	uint64_t v = 0;
	bm_space *s = bi.io ? t->io : t->mem;
	int r = rnd(z) % 2 ? bm_read(t->vcpu, s, a, size, &v)
	                   : bm_write(t->vcpu, s, a, size, pick_value(z));
	assert_true(r >= 0 || (bi.io && size == 8 && r == -EOPNOTSUPP));
}

static void one_signal(struct fuzz *z)
{
	bm_pci_func *f = z->f[rnd(z) % NFUNCS];
	if (rnd(z) % 2) {
		int r = bm_pci_msi_notify(f, rnd(z) % 20);
		assert_true(r == 0 || r == 1 || r == -ENOTCONN || r == -EINVAL);
	} else {
		int r = bm_pci_intx_set(f, rnd(z) % 2);
		assert_true(r == 0 || r == -EINVAL);
	}
}

static void test_garbage(void **state)
{
	(void)state;
	struct fuzz *z = calloc(1, sizeof(*z));
	assert_non_null(z);
	z->rng = 0x2545f4914f6cdd1dull;
	build(z);
	check_invariants(z);
	const unsigned n = 400000;
	for (unsigned i = 0; i < n; i++) {
		unsigned what = rnd(z) % 16;
		if (what < 12)
			one_config_write(z);
		else if (what < 15)
			one_guest_access(z);
		else
			one_signal(z);
		if (i % 32 == 0)
			check_invariants(z);
	}
	check_invariants(z);
	print_message("%u steps, %lu map events, %lu mapped BARs checked, %zu MSI, %zu INTx\n", n,
	              z->events, z->mapped_checks, z->t->nmsi, z->t->nintx);
	/* The loop must have reached the decode logic, not only bounced off masks. */
	assert_true(z->events > 10000);
	assert_true(z->mapped_checks > 10000);
	pt_free(z->t);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
