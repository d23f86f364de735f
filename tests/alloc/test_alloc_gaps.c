/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The free-gap allocator on hand-made layouts: natural alignment, best fit against first
 * fit, the upper bound a piece must stay under, and bhyve's bump pointer, which never goes
 * back to fill a hole.
 */
#include "testutil.h"

#include "alloc/gaps.h"
#include <errno.h>

static uint64_t take(struct gaps *g, uint64_t size, uint64_t align)
{
	uint64_t a = 0;
	assert_int_equal(gaps_take(g, size, align, UINT64_MAX, &a), 0);
	return a;
}

static void test_natural_alignment(void **state)
{
	(void)state;
	struct gaps g;
	assert_int_equal(gaps_init(&g, 0x1010, 0xffff, false), 0);
	assert_int_equal(take(&g, 0x1000, 0x1000), 0x2000);
	assert_int_equal(take(&g, 0x100, 0x100), 0x1100);
	assert_int_equal(take(&g, 0x10, 0x10), 0x1010);
	gaps_fini(&g);
}

/* [0x100, 0x8ff]: 0x400 lands at 0x400 and leaves [0x100, 0x3ff] and [0x800, 0x8ff]. The
 * next 0x100 fills the exact hole at the top, where first fit would cut into the bigger
 * one below. */
static void test_best_fit(void **state)
{
	(void)state;
	struct gaps g;
	assert_int_equal(gaps_init(&g, 0x100, 0x8ff, false), 0);
	assert_int_equal(take(&g, 0x400, 0x400), 0x400);
	assert_int_equal(take(&g, 0x100, 0x100), 0x800);
	assert_int_equal(take(&g, 0x100, 0x100), 0x100);
	assert_int_equal(take(&g, 0x200, 0x200), 0x200);
	uint64_t a;
	assert_int_equal(gaps_take(&g, 0x10, 0x10, UINT64_MAX, &a), -ENOSPC);
	assert_int_equal(g.n, 0);
	gaps_fini(&g);
}

/* Of two holes that both fit, the smaller wins even when it is higher. */
static void test_best_fit_picks_smaller_hole(void **state)
{
	(void)state;
	struct gaps g;
	assert_int_equal(gaps_init(&g, 1, 0, false), 0);
	struct gap holes[3] = {{0x1000, 0x2fff}, {0x5000, 0x5fff}, {0x8000, 0xffff}};
	g.v = malloc(sizeof(holes));
	assert_non_null(g.v);
	memcpy(g.v, holes, sizeof(holes));
	g.n = g.cap = 3;
	assert_int_equal(take(&g, 0x1000, 0x1000), 0x5000);
	assert_int_equal(g.n, 2);
	assert_int_equal(take(&g, 0x800, 0x800), 0x1000);
	assert_int_equal(take(&g, 0x1000, 0x1000), 0x2000);
	assert_int_equal(take(&g, 0x800, 0x800), 0x1800);
	assert_int_equal(take(&g, 0x8000, 0x8000), 0x8000);
	assert_int_equal(g.n, 0);
	gaps_fini(&g);
}

static void test_max_last(void **state)
{
	(void)state;
	struct gaps g;
	uint64_t a;
	assert_int_equal(gaps_init(&g, 0xfff00000ull, 0x1000fffffull, false), 0);
	assert_int_equal(gaps_take(&g, 0x200000, 0x200000, 0xffffffffull, &a), -ENOSPC);
	assert_int_equal(gaps_take(&g, 0x100000, 0x100000, 0xfffffffeull, &a), -ENOSPC);
	assert_int_equal(gaps_take(&g, 0x80000, 0x80000, 0xfffffffeull, &a), 0);
	assert_int_equal(a, 0xfff00000ull);
	assert_int_equal(gaps_take(&g, 0x100000, 0x100000, UINT64_MAX, &a), 0);
	assert_int_equal(a, 0x100000000ull);
	gaps_fini(&g);
}

static void test_edges(void **state)
{
	(void)state;
	struct gaps g;
	uint64_t a;
	assert_int_equal(gaps_init(&g, 0, UINT64_MAX - 1, false), 0);
	assert_int_equal(gaps_take(&g, 1ull << 63, 1ull << 63, UINT64_MAX - 1, &a), 0);
	assert_int_equal(a, 0);
	/* The upper half minus its last byte cannot hold another 2^63. */
	assert_int_equal(gaps_take(&g, 1ull << 63, 1ull << 63, UINT64_MAX - 1, &a), -ENOSPC);
	assert_int_equal(gaps_take(&g, 1ull << 62, 1ull << 62, UINT64_MAX - 1, &a), 0);
	assert_int_equal(a, 1ull << 63);
	gaps_fini(&g);
	assert_int_equal(gaps_init(&g, 5, 4, false), 0);
	assert_int_equal(gaps_take(&g, 1, 1, UINT64_MAX, &a), -ENOSPC);
	gaps_fini(&g);
}

/* bhyve: round the pointer up to the size, never look back. */
static void test_bump(void **state)
{
	(void)state;
	struct gaps g;
	uint64_t a;
	assert_int_equal(gaps_init(&g, 0xdf000000ull, 0xdfffffffull, true), 0);
	assert_int_equal(take(&g, 0x40, 0x40), 0xdf000000ull);
	assert_int_equal(take(&g, 0x80, 0x80), 0xdf000080ull);
	/* The hole at 0xdf000040 stays a hole. */
	assert_int_equal(take(&g, 0x40, 0x40), 0xdf000100ull);
	assert_int_equal(take(&g, 0x800000, 0x800000), 0xdf800000ull);
	assert_int_equal(gaps_take(&g, 0x800000, 0x800000, UINT64_MAX, &a), -ENOSPC);
	assert_int_equal(g.n, 0);
	gaps_fini(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_natural_alignment),
	    cmocka_unit_test(test_best_fit),
	    cmocka_unit_test(test_best_fit_picks_smaller_hole),
	    cmocka_unit_test(test_max_last),
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_bump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
