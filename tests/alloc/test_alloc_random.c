/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Seeded random topologies: devices with random BAR sizes and types, random bridge nesting
 * (16- or 32-bit I/O, 32- or 64-bit prefetchable windows), random host windows, some
 * registers already scribbled on by a "guest". After every run that succeeds, the map must
 * be one a guest can keep (no overlap, natural alignment, inside every bridge window above,
 * decoded, reached by a CPU read) and equal to the plan; after every -ENOSPC, not one
 * configuration register may have changed.
 */
#include "alloctest.h"

#define SEEDS_BEST_FIT 400
#define SEEDS_BHYVE    150
#define MAX_FUNCS      48

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s * 0x2545f4914f6cdd1dull;
}

static unsigned below(struct rng *r, unsigned n)
{
	return (unsigned)(rnd(r) % n);
}

static uint64_t pow2(struct rng *r, unsigned lo, unsigned hi)
{
	return 1ull << (lo + below(r, hi - lo + 1));
}

struct gen {
	struct at *t;
	struct rng rng;
	unsigned funcs;
};

static void random_bars(struct gen *g, struct bm_pci_bar_desc *bars, unsigned nbars)
{
	for (unsigned i = 0; i < nbars; i++) {
		unsigned k = below(&g->rng, 10);
		if (k == 3)
			bars[i] = at_bar(g->t, BM_PCI_BAR_IO, pow2(&g->rng, 2, 8), false);
		else if (k == 4 || k == 5)
			bars[i] = at_bar(g->t, BM_PCI_BAR_MEM32, pow2(&g->rng, 4, 22), false);
		else if (k == 6)
			bars[i] = at_bar(g->t, BM_PCI_BAR_MEM32, pow2(&g->rng, 4, 22), true);
		else if (k >= 7 && i + 1 < nbars) {
			bool pref = below(&g->rng, 2);
			bars[i] = at_bar(g->t, BM_PCI_BAR_MEM64, pow2(&g->rng, 4, 28), pref);
			i++;
		}
	}
}

static void random_function(struct gen *g, bm_pci_bus *bus, unsigned dev, unsigned fn,
                            unsigned depth);

static void random_bus(struct gen *g, bm_pci_bus *bus, unsigned depth)
{
	unsigned dev = depth == 0 ? 1 : 0; /* 00:00.0 is the host bridge */
	unsigned ndev = 1 + below(&g->rng, depth == 0 ? 6 : 3);
	for (unsigned i = 0; i < ndev && g->funcs < MAX_FUNCS; i++, dev += 1 + below(&g->rng, 2)) {
		unsigned nfn = below(&g->rng, 4) == 0 ? 1 + below(&g->rng, 3) : 1;
		for (unsigned fn = 0; fn < nfn && g->funcs < MAX_FUNCS; fn++)
			random_function(g, bus, dev, fn, depth);
	}
}

static void random_function(struct gen *g, bm_pci_bus *bus, unsigned dev, unsigned fn,
                            unsigned depth)
{
	g->funcs++;
	bool bridge = depth < 3 && below(&g->rng, 4) == 0;
	struct bm_pci_func_desc d =
	    bridge ? at_bridge(below(&g->rng, 2), below(&g->rng, 2)) : at_endpoint();
	if (!bridge || below(&g->rng, 4) == 0)
		random_bars(g, d.bars, bridge ? 2 : BM_PCI_NUM_BARS);
	if (below(&g->rng, 4) == 0)
		d.rom = at_bar(g->t, BM_PCI_BAR_NONE, pow2(&g->rng, 11, 18), false);
	bm_pci_func *f = at_add(g->t, bus, dev, fn, &d);
	if (bridge)
		random_bus(g, at_sec(f), depth + 1);
}

/* A guest that got there first: some BARs moved, some decoding on. */
static void scribble(struct gen *g)
{
	for (bm_pci_func *f = bm_pci_func_next(g->t->host, NULL); f;
	     f = bm_pci_func_next(g->t->host, f)) {
		if (below(&g->rng, 3))
			continue;
		assert_int_equal(bm_pci_func_cfg_write(f, 0x10, 4, (uint32_t)rnd(&g->rng)), 0);
		assert_int_equal(bm_pci_func_cfg_write(f, 0x04, 2, below(&g->rng, 8)), 0);
	}
}

static struct bm_pci_alloc_config random_config(struct rng *r, enum bm_pci_alloc_mode mode)
{
	struct bm_pci_alloc_config c = {
	    .mode = mode,
	    .io = {0x1000, 0xffff},
	    .mem32 = {0x80000000ull, 0xcfffffffull},
	    .assign_buses = below(r, 4) != 0,
	    .bus_master = below(r, 2),
	    .rom_enable = below(r, 2),
	};
	if (below(r, 8) == 0)
		c.mem32.limit = 0x87ffffffull; /* tight: some topologies will not fit */
	switch (below(r, 3)) {
	case 0:
		c.pref32 = (struct bm_pci_alloc_window){0xd0000000ull, 0xefffffffull};
		break;
	case 1:
		c.pref32 = c.mem32;
		break;
	default:
		break;
	}
	if (below(r, 4))
		c.mem64 = (struct bm_pci_alloc_window){0x10000000000ull, 0x10fffffffffull};
	return c;
}

/* The registers say what the plan said. */
static void check_plan_applied(const bm_pci_alloc_plan *plan)
{
	size_t n;
	const struct bm_pci_alloc_entry *e = bm_pci_alloc_plan_entries(plan, &n);
	for (size_t i = 0; i < n; i++) {
		if (e[i].what == BM_PCI_ALLOC_BAR) {
			if (e[i].assigned)
				assert_int_equal(at_info(e[i].func, e[i].index).addr, e[i].addr);
			continue;
		}
		struct bm_pci_window w = at_window(e[i].func, (enum bm_pci_window_kind)e[i].index);
		assert_int_equal(w.enabled, e[i].size != 0);
		if (e[i].size) {
			assert_int_equal(w.base, e[i].addr);
			assert_int_equal(w.last, e[i].addr + e[i].size - 1);
		}
	}
}

struct tally {
	unsigned ok, nospc, funcs, bridges;
};

static void one_topology(uint64_t seed, enum bm_pci_alloc_mode mode, struct tally *tally)
{
	struct gen g = {.t = at_new(), .rng = {seed * 0x9e3779b97f4a7c15ull + 1}};
	random_bus(&g, bm_pci_host_root_bus(g.t->host), 0);
	scribble(&g);
	struct bm_pci_alloc_config cfg = random_config(&g.rng, mode);
	struct at_snap before = at_snapshot(g.t);

	bm_pci_alloc_plan *plan = NULL;
	struct bm_pci_alloc_failure fail;
	int err = bm_pci_alloc_plan_new(g.t->host, &cfg, &plan, &fail);
	if (err == -ENOSPC) {
		assert_non_null(fail.func);
		struct at_snap after = at_snapshot(g.t);
		at_snap_equal(&before, &after);
		at_snap_free(&after);
		tally->nospc++;
	} else {
		if (err)
			fail_msg("seed %llu: %d", (unsigned long long)seed, err);
		assert_int_equal(bm_pci_alloc_plan_program(plan), 0);
		check_plan_applied(plan);
		at_check_map(g.t, mode != BM_PCI_ALLOC_BEST_FIT ? AT_ROM_UNPLACED
		                  : cfg.rom_enable              ? AT_ROM_ON
		                                                : AT_ROM_OFF);
		bm_pci_alloc_plan_free(plan);
		tally->ok++;
	}
	for (bm_pci_func *f = bm_pci_func_next(g.t->host, NULL); f;
	     f = bm_pci_func_next(g.t->host, f)) {
		tally->funcs++;
		tally->bridges += bm_pci_func_is_bridge(f);
	}
	at_snap_free(&before);
	at_free(g.t);
}

static void run_seeds(enum bm_pci_alloc_mode mode, unsigned seeds)
{
	struct tally tally = {0};
	for (uint64_t seed = 1; seed <= seeds; seed++)
		one_topology(seed + 1000 * (uint64_t)mode, mode, &tally);
	print_message("mode %d: %u placed, %u did not fit; %u functions, %u bridges\n", (int)mode,
	              tally.ok, tally.nospc, tally.funcs, tally.bridges);
	/* Most topologies must fit, or the checks above prove little. */
	assert_true(tally.ok >= seeds * 3 / 4);
	assert_true(tally.bridges >= seeds / 2);
}

static void test_random_best_fit(void **state)
{
	(void)state;
	run_seeds(BM_PCI_ALLOC_BEST_FIT, SEEDS_BEST_FIT);
}

static void test_random_bhyve(void **state)
{
	(void)state;
	run_seeds(BM_PCI_ALLOC_BHYVE, SEEDS_BHYVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_best_fit),
	    cmocka_unit_test(test_random_bhyve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
