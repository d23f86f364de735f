/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The report that started busmap: bhyve's placement of virtio-blk and virtio-net I/O BARs
 * on arm64, then u-boot's reprogramming, then the OS's. After every step every byte of both
 * BARs must reach the device the rules say (the most recently placed BAR covering it), at
 * the right offset, and every delete must succeed.
 */
#include "testutil.h"

struct bar {
	struct probe probe;
	bm_region *region;
	bool mapped;
	uint64_t base, size, stamp;
};

static uint64_t clock_;

static void place(struct env *e, struct bar *b, uint64_t base)
{
	assert_int_equal(bm_region_add(e->root, b->region, base, 0), 0);
	b->mapped = true;
	b->base = base;
	b->stamp = ++clock_;
}

static void unplace(struct bar *b)
{
	assert_int_equal(bm_region_del(b->region), 0);
	b->mapped = false;
}

static struct bar *owner(struct bar *bars, int n, uint64_t addr)
{
	struct bar *best = NULL;
	for (int i = 0; i < n; i++) {
		struct bar *b = &bars[i];
		if (b->mapped && addr - b->base < b->size && (!best || b->stamp > best->stamp))
			best = b;
	}
	return best;
}

/* Reads every byte around both BARs and checks who answered, and at which offset. */
static void check_every_byte(struct env *e, struct bar *bars, int n)
{
	for (uint64_t addr = 0xdf000000 - 0x10; addr < 0xdf000110; addr++) {
		struct bar *want = owner(bars, n, addr);
		for (int i = 0; i < n; i++)
			bars[i].probe.reads = 0;
		uint64_t v;
		int ret = bm_read(e->vcpu, e->mem, addr, 1, &v);
		if (!want) {
			assert_true(ret & BM_ACCESS_UNASSIGNED);
			assert_int_equal(v, 0xff);
			continue;
		}
		assert_false(ret & BM_ACCESS_UNASSIGNED);
		assert_true(ret >= 0);
		assert_int_equal(want->probe.reads, 1);
		assert_int_equal(want->probe.last_offset, addr - want->base);
		for (int i = 0; i < n; i++)
			if (&bars[i] != want)
				assert_int_equal(bars[i].probe.reads, 0);
	}
}

static void test_seed_five_steps(void **state)
{
	struct env *e = *state;
	struct bar bars[2] = {{.size = 0x80}, {.size = 0x40}}; /* blk, net */
	struct bar *blk = &bars[0], *net = &bars[1];
	blk->region = new_io(e, "00:03.0/bar0", blk->size, &blk->probe);
	net->region = new_io(e, "00:02.0/bar0", net->size, &net->probe);
	assert_int_equal(bm_region_set_exclusive(blk->region, true), 0);
	assert_int_equal(bm_region_set_exclusive(net->region, true), 0);
	place(e, blk, 0xdf000000);
	place(e, net, 0xdf000080);
	check_every_byte(e, bars, 2);
	assert_int_equal(bm_space_conflicts(e->mem, NULL, 0), 0);

	unplace(net); /* 1: unmap net @0xdf000080 */
	check_every_byte(e, bars, 2);
	place(e, net, 0xdf000000); /* 2: map net onto blk */
	check_every_byte(e, bars, 2);
	struct bm_conflict c;
	assert_int_equal(bm_space_conflicts(e->mem, &c, 1), 1);
	assert_ptr_equal(c.winner, net->region);
	assert_ptr_equal(c.loser, blk->region);
	assert_int_equal(c.start, 0xdf000000);
	assert_int_equal(c.last, 0xdf00003f);
	unplace(blk); /* 3: unmap blk @0xdf000000 */
	check_every_byte(e, bars, 2);
	assert_int_equal(bm_space_conflicts(e->mem, NULL, 0), 0);
	place(e, blk, 0xdf000080); /* 4: map blk @0xdf000080 */
	check_every_byte(e, bars, 2);
	unplace(net); /* 5: the OS unmaps net @0xdf000000 — where bhyve aborted */
	check_every_byte(e, bars, 2);
	place(e, net, 0xdf000100); /* and maps it again elsewhere */
	check_every_byte(e, bars, 2);
	assert_int_equal(bm_region_destroy(net->region), 0);
	assert_int_equal(bm_region_destroy(blk->region), 0);
	assert_int_equal(flat_of(e->mem).n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_seed_five_steps, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
