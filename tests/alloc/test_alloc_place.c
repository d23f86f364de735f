/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Best-fit placement on the root bus, with exact addresses: natural alignment and largest
 * first, best fit over alignment holes, 64-bit BARs in the 64-bit window and their
 * fallbacks, the ROM, what the host refuses, failures that change nothing, and a plan read
 * before it is programmed.
 */
#include "alloctest.h"

#define MEM32  ((struct bm_pci_alloc_window){0x80000000ull, 0xbfffffffull})
#define PREF32 ((struct bm_pci_alloc_window){0xc0000000ull, 0xdfffffffull})
#define MEM64  ((struct bm_pci_alloc_window){0x10000000000ull, 0x1ffffffffffull})
#define IO     ((struct bm_pci_alloc_window){0xc000, 0xffff})

static void run_ok(struct at *t, const struct bm_pci_alloc_config *cfg)
{
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, cfg, &fail), 0);
	assert_null(fail.func);
}

static void test_largest_first_aligned(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x100, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x10000, false);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	d.bars[3] = at_bar(t, BM_PCI_BAR_IO, 0x20, false);
	d.bars[4] = at_bar(t, BM_PCI_BAR_IO, 0x100, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	struct bm_pci_alloc_config cfg = {.io = IO, .mem32 = MEM32};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 1), 0x80000000);
	assert_int_equal(at_addr(f, 2), 0x80010000);
	assert_int_equal(at_addr(f, 0), 0x80011000);
	assert_int_equal(at_addr(f, 4), 0xc000);
	assert_int_equal(at_addr(f, 3), 0xc100);
	assert_int_equal(bm_pci_func_cfg_get(f, 0x04, 2), 0x3);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/*
 * [0x80000100, 0x800008ff]: the 0x400 BAR goes to 0x80000400, leaving a 0x300 hole below
 * and a 0x100 hole above. The first 0x100 BAR takes the exact hole above, where first fit
 * would have cut into the one below; the second then still fits below.
 */
static void test_best_fit(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x100, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x400, false);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM32, 0x100, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	struct bm_pci_alloc_config cfg = {.mem32 = {0x80000100, 0x800008ff}};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 1), 0x80000400);
	assert_int_equal(at_addr(f, 0), 0x80000800);
	assert_int_equal(at_addr(f, 2), 0x80000100);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

static bm_pci_func *add_64bit_device(struct at *t)
{
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM64, 1ull << 30, true);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM64, 0x4000, false);
	d.bars[4] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, true);
	return at_add(t, NULL, 2, 0, &d);
}

static void test_64bit_window(void **state)
{
	(void)state;
	struct at *t = at_new();
	bm_pci_func *f = add_64bit_device(t);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32, .pref32 = PREF32, .mem64 = MEM64};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0x10000000000ull);
	assert_int_equal(at_addr(f, 2), 0x10040000000ull);
	assert_int_equal(at_addr(f, 4), 0xc0000000ull);
	/* Both halves were written. */
	assert_int_equal(bm_pci_func_cfg_get(f, 0x14, 4), 0x100);
	assert_int_equal(bm_pci_func_cfg_get(f, 0x10, 4), 0x0000000c);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* Without a 64-bit window, 64-bit BARs go below 4 GiB: prefetchable ones try the
 * prefetchable window first (512 MiB: the 1 GiB BAR does not fit there). */
static void test_64bit_fallback(void **state)
{
	(void)state;
	struct at *t = at_new();
	bm_pci_func *f = add_64bit_device(t);
	struct bm_pci_alloc_config cfg = {.mem32 = {0x40000000, 0xbfffffff}, .pref32 = PREF32};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0x40000000ull);
	assert_int_equal(at_addr(f, 2), 0x80000000ull);
	assert_int_equal(at_addr(f, 4), 0xc0000000ull);
	assert_int_equal(bm_pci_func_cfg_get(f, 0x14, 4), 0);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* A 64-bit window too small for one BAR: that one falls back, the other stays high. */
static void test_64bit_window_full(void **state)
{
	(void)state;
	struct at *t = at_new();
	bm_pci_func *f = add_64bit_device(t);
	struct bm_pci_alloc_config cfg = {.mem32 = {0x40000000, 0xbfffffff},
	                                  .pref32 = PREF32,
	                                  .mem64 = {0x10000000000ull, 0x1000fffffffull}};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0x40000000ull);
	assert_int_equal(at_addr(f, 2), 0x10000000000ull);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* pref32 equal to mem32 is one shared window, not two. */
static void test_shared_prefetchable_window(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, true);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	bm_pci_func *f = at_add(t, NULL, 3, 0, &d);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32, .pref32 = MEM32};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0x80000000ull);
	assert_int_equal(at_addr(f, 1), 0x80001000ull);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

static void test_rom(void **state)
{
	(void)state;
	for (int enable = 0; enable < 2; enable++) {
		struct at *t = at_new();
		struct bm_pci_func_desc d = at_endpoint();
		d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
		d.rom = at_bar(t, BM_PCI_BAR_NONE, 0x10000, false);
		bm_pci_func *f = at_add(t, NULL, 4, 0, &d);
		struct bm_pci_func_desc b = at_bridge(false, false);
		b.rom = at_bar(t, BM_PCI_BAR_NONE, 0x800, false);
		bm_pci_func *br = at_add(t, NULL, 5, 0, &b);
		struct bm_pci_alloc_config cfg = {.mem32 = MEM32, .rom_enable = enable};
		run_ok(t, &cfg);
		struct bm_pci_bar_info rom = at_info(f, BM_PCI_ROM);
		assert_int_equal(rom.addr, 0x80000000ull);
		assert_int_equal(rom.mapped, enable);
		assert_int_equal(bm_pci_func_cfg_get(f, 0x30, 4), 0x80000000u | (unsigned)enable);
		assert_int_equal(at_info(f, 0).addr, 0x80010000ull);
		assert_int_equal(bm_pci_func_cfg_get(br, 0x38, 4), 0x80011000u | (unsigned)enable);
		at_check_map(t, enable ? AT_ROM_ON : AT_ROM_OFF);
		at_free(t);
	}
}

/* Port 0 is refused unless the host decodes it; so are ports from the I/O limit up. */
static void test_host_refusals(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x100, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	struct bm_pci_alloc_config cfg = {.io = {0, 0xfff}, .mem32 = {0, 0xffff}};
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0x100);
	assert_int_equal(at_addr(f, 1), 0x1000);
	at_free(t);

	struct bm_pci_host_config hc = {.decode_zero = true};
	t = at_new_with(hc, true);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x100, false);
	f = at_add(t, NULL, 1, 0, &d);
	run_ok(t, &cfg);
	assert_int_equal(at_addr(f, 0), 0);
	at_free(t);

	t = at_new();
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x1000, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_IO, 0x1000, false);
	f = at_add(t, NULL, 1, 0, &d);
	cfg = (struct bm_pci_alloc_config){.io = {0xf000, 0x1ffff}};
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), -ENOSPC);
	assert_ptr_equal(fail.func, f);
	assert_int_equal(fail.what, BM_PCI_ALLOC_BAR);
	assert_int_equal(fail.index, 1);
	assert_int_equal(fail.size, 0x1000);
	at_free(t);
}

/* A failure leaves every register of every function as it was, guest writes included. */
static void test_enospc_changes_nothing(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	d.bars[1] = at_bar(t, BM_PCI_BAR_IO, 0x40, false);
	bm_pci_func *a = at_add(t, NULL, 1, 0, &d);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x100000, false);
	bm_pci_func *b = at_add(t, NULL, 2, 0, &d);
	struct bm_pci_func_desc bd = at_bridge(true, true);
	bm_pci_func *br = at_add(t, NULL, 3, 0, &bd);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM64, 0x400000, true);
	at_add(t, at_sec(br), 0, 0, &d);
	/* A guest already moved things around. */
	assert_int_equal(bm_pci_func_cfg_write(a, 0x10, 4, 0x90000000), 0);
	assert_int_equal(bm_pci_func_cfg_write(a, 0x04, 2, 0x3), 0);
	assert_int_equal(bm_pci_func_cfg_write(br, 0x18, 4, 0x050400), 0);
	struct at_snap before = at_snapshot(t);

	struct bm_pci_alloc_config cfg = {
	    .io = IO, .mem32 = {0x80000000, 0x800fffff}, .mem64 = MEM64, .assign_buses = true};
	struct bm_pci_alloc_failure fail;
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), -ENOSPC);
	/* The 1 MiB BAR fits alone; the 4 KiB one then finds no room. */
	assert_ptr_equal(fail.func, a);
	assert_int_equal(fail.what, BM_PCI_ALLOC_BAR);
	assert_int_equal(fail.index, 0);
	assert_int_equal(fail.size, 0x1000);
	struct at_snap after = at_snapshot(t);
	at_snap_equal(&before, &after);
	at_snap_free(&after);

	/* A bridge window that does not fit is reported as the bridge's. */
	cfg.mem32 = (struct bm_pci_alloc_window){0x80000000, 0x802fffff};
	cfg.mem64 = (struct bm_pci_alloc_window){0};
	cfg.pref32 = (struct bm_pci_alloc_window){0xc0000000, 0xc00fffff};
	assert_int_equal(bm_pci_alloc_run(t->host, &cfg, &fail), -ENOSPC);
	assert_ptr_equal(fail.func, br);
	assert_int_equal(fail.what, BM_PCI_ALLOC_WINDOW);
	assert_int_equal(fail.index, BM_PCI_WINDOW_PREF);
	assert_int_equal(fail.size, 0x400000);
	after = at_snapshot(t);
	at_snap_equal(&before, &after);
	at_snap_free(&after);
	at_snap_free(&before);
	(void)b;
	at_free(t);
}

/* A plan lists every assignment and changes nothing until programmed. */
static void test_plan_then_program(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_IO, 0x40, false);
	d.bars[2] = at_bar(t, BM_PCI_BAR_MEM64, 0x4000, true);
	d.rom = at_bar(t, BM_PCI_BAR_NONE, 0x800, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	struct at_snap before = at_snapshot(t);

	struct bm_pci_alloc_config cfg = {.io = IO, .mem32 = MEM32, .mem64 = MEM64};
	bm_pci_alloc_plan *plan = NULL;
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &cfg, &plan, NULL), 0);
	size_t n = 0;
	const struct bm_pci_alloc_entry *e = bm_pci_alloc_plan_entries(plan, &n);
	assert_int_equal(n, 3);
	assert_ptr_equal(e[0].func, f);
	assert_int_equal(e[0].what, BM_PCI_ALLOC_BAR);
	assert_int_equal(e[0].index, 0);
	assert_true(e[0].io && e[0].assigned);
	assert_int_equal(e[0].addr, 0xc000);
	assert_int_equal(e[0].size, 0x40);
	assert_int_equal(e[1].index, 2);
	assert_true(e[1].mem64 && e[1].prefetchable && !e[1].io);
	assert_int_equal(e[1].addr, 0x10000000000ull);
	assert_int_equal(e[2].index, BM_PCI_ROM);
	assert_int_equal(e[2].addr, 0x80000000ull);
	assert_int_equal(e[2].size, 0x800);
	size_t nb = 1;
	bm_pci_alloc_plan_buses(plan, &nb);
	assert_int_equal(nb, 0);

	struct at_snap mid = at_snapshot(t);
	at_snap_equal(&before, &mid);
	at_snap_free(&mid);
	at_snap_free(&before);

	assert_int_equal(bm_pci_alloc_plan_program(plan), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(at_info(e[i].func, e[i].index).addr, e[i].addr);
	bm_pci_alloc_plan_free(plan);
	at_check_map(t, AT_ROM_OFF);
	at_free(t);
}

/* Functions added after planning make the plan stale; nothing is written. */
static void test_stale_plan(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	at_add(t, NULL, 1, 0, &d);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32};
	bm_pci_alloc_plan *plan = NULL;
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &cfg, &plan, NULL), 0);
	d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	bm_pci_func *late = at_add(t, NULL, 2, 0, &d);
	assert_int_equal(bm_pci_alloc_plan_bus_number(plan, late), -ENOENT);
	struct at_snap before = at_snapshot(t);
	assert_int_equal(bm_pci_alloc_plan_program(plan), -ESTALE);
	struct at_snap after = at_snapshot(t);
	at_snap_equal(&before, &after);
	at_snap_free(&before);
	at_snap_free(&after);
	bm_pci_alloc_plan_free(plan);

	assert_int_equal(bm_pci_func_free(late), 0);
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &cfg, &plan, NULL), 0);
	assert_int_equal(bm_pci_alloc_plan_program(plan), 0);
	bm_pci_alloc_plan_free(plan);
	at_free(t);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_alloc_config ok = {
	    .io = IO, .mem32 = MEM32, .pref32 = PREF32, .mem64 = MEM64};
	bm_pci_alloc_plan *plan = NULL;
	assert_int_equal(bm_pci_alloc_plan_new(NULL, &ok, &plan, NULL), -EINVAL);
	assert_int_equal(bm_pci_alloc_plan_new(t->host, NULL, &plan, NULL), -EINVAL);
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &ok, NULL, NULL), -EINVAL);
	assert_int_equal(bm_pci_alloc_plan_program(NULL), -EINVAL);
	assert_int_equal(bm_pci_alloc_run(t->host, NULL, NULL), -EINVAL);
	bm_pci_alloc_plan_free(NULL);
	assert_null(bm_pci_alloc_plan_entries(NULL, NULL));

	struct bm_pci_alloc_config c = ok;
	c.mode = (enum bm_pci_alloc_mode)7;
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &c, &plan, NULL), -EINVAL);
	c = ok;
	c.mem32.limit = 0x100000000ull;
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &c, &plan, NULL), -EINVAL);
	c = ok;
	c.pref32 = (struct bm_pci_alloc_window){0xb0000000, 0xcfffffff};
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &c, &plan, NULL), -EINVAL);
	c = ok;
	c.mem64 = (struct bm_pci_alloc_window){0x80000000, 0x1ffffffffull};
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &c, &plan, NULL), -EINVAL);
	c = ok;
	c.io = (struct bm_pci_alloc_window){0x2000, 0x1000};
	assert_int_equal(bm_pci_alloc_plan_new(t->host, &c, &plan, NULL), -EINVAL);
	assert_null(plan);
	at_free(t);
}

/* Bits the allocator does not own survive; bus master only when asked. */
static void test_command_bits(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM32, 0x1000, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	d = at_endpoint();
	bm_pci_func *none = at_add(t, NULL, 2, 0, &d);
	assert_int_equal(bm_pci_func_cfg_write(f, 0x04, 2, 0x400), 0);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32};
	run_ok(t, &cfg);
	assert_int_equal(bm_pci_func_cfg_get(f, 0x04, 2), 0x402);
	assert_int_equal(bm_pci_func_cfg_get(none, 0x04, 2), 0);
	cfg.bus_master = true;
	run_ok(t, &cfg);
	assert_int_equal(bm_pci_func_cfg_get(f, 0x04, 2), 0x406);
	assert_int_equal(bm_pci_func_cfg_get(none, 0x04, 2), 0x4);
	at_free(t);
}

struct events {
	struct bm_pci_map_event ev[16];
	size_t n;
	unsigned publications;
};

static void record(void *arg, const struct bm_pci_map_event *ev)
{
	struct events *e = arg;
	if (e->n < 16)
		e->ev[e->n] = *ev;
	e->n++;
}

static void count_publication(void *arg, bm_space *space, const struct bm_flat_range *removed,
                              size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)space, (void)removed, (void)nremoved, (void)added, (void)nadded;
	((struct events *)arg)->publications++;
}

/* Decoding goes off before the BAR moves, so the observer sees it leave its old place and
 * arrive at the new one, never at a half-written address; the map publishes once. */
static void test_firmware_sequence(void **state)
{
	(void)state;
	struct at *t = at_new();
	struct bm_pci_func_desc d = at_endpoint();
	d.bars[0] = at_bar(t, BM_PCI_BAR_MEM64, 0x4000, false);
	bm_pci_func *f = at_add(t, NULL, 1, 0, &d);
	assert_int_equal(bm_pci_func_cfg_write(f, 0x10, 4, 0xa0000000), 0);
	assert_int_equal(bm_pci_func_cfg_write(f, 0x04, 2, 0x2), 0);
	struct events e = {0};
	bm_listener *l = NULL;
	assert_int_equal(bm_listener_add(t->mem, count_publication, &e, &l), 0);
	e.publications = 0;
	assert_int_equal(bm_pci_host_set_map_observer(t->host, record, &e), 0);
	struct bm_pci_alloc_config cfg = {.mem32 = MEM32, .mem64 = MEM64};
	run_ok(t, &cfg);
	assert_int_equal(e.n, 2);
	assert_false(e.ev[0].mapped);
	assert_int_equal(e.ev[0].addr, 0xa0000000ull);
	assert_true(e.ev[1].mapped);
	assert_int_equal(e.ev[1].addr, 0x10000000000ull);
	assert_int_equal(e.publications, 1);
	assert_int_equal(bm_listener_remove(l), 0);
	at_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_largest_first_aligned),
	    cmocka_unit_test(test_best_fit),
	    cmocka_unit_test(test_64bit_window),
	    cmocka_unit_test(test_64bit_fallback),
	    cmocka_unit_test(test_64bit_window_full),
	    cmocka_unit_test(test_shared_prefetchable_window),
	    cmocka_unit_test(test_rom),
	    cmocka_unit_test(test_host_refusals),
	    cmocka_unit_test(test_enospc_changes_nothing),
	    cmocka_unit_test(test_plan_then_program),
	    cmocka_unit_test(test_stale_plan),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_command_bits),
	    cmocka_unit_test(test_firmware_sequence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
