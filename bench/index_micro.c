/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Instruction-count micro-benchmark of the flat-view index, meant to run under callgrind:
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -gdwarf-4 -Iinclude -Isrc bench/index_micro.c src/index.c \
 *      -o /tmp/index-micro
 *   valgrind --tool=callgrind --toggle-collect=bm_index_lookup /tmp/index-micro hit 4096
 *   valgrind --tool=callgrind --toggle-collect=bm_index_replace /tmp/index-micro move 100000
 *
 * Usage: index_micro MODE N [BUILD [OPS]], with N regions of 4 KiB spread at a regular stride
 * over 1 TiB above 4 GiB, placed one at a time (BUILD "each", the default) or in one replace
 * ("bulk"), then OPS operations (default 1000000 lookups, 1000 moves) of MODE:
 *   hit   lookups at random addresses inside random regions
 *   any   lookups at random addresses of the span
 *   move  moves of a random region to the middle of a gap, each two replaces (remove,
 *         insert)
 * Callgrind's toggle also counts the lookups and replaces made while building: run once
 * more with OPS 0 and take the difference, divided by OPS. The script
 * bench/index_micro.sh does this.
 * Not part of the build.
 */
#include "index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPAN (UINT64_C(1) << 40)
#define BASE (UINT64_C(1) << 32)

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static struct bm_range *mk(uint64_t start, uint64_t last, void *region)
{
	struct bm_range *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->start = start;
	r->last = last;
	r->region = region;
	return r;
}

static void replace(struct bm_index **idx, struct bm_range **rs, size_t k, struct bm_garbage *g)
{
	struct bm_index *next;

	if (bm_index_replace(*idx, rs[0]->start, rs[k - 1]->last, rs, k, &next, g))
		abort();
	/* No readers here: the grace period is over at once. */
	bm_garbage_free_all(g);
	*idx = next;
}

/* Splits the range holding [start, last] (entirely) into up to three. */
static void insert(struct bm_index **idx, uint64_t start, uint64_t last, void *region,
                   struct bm_garbage *g)
{
	const struct bm_range *old = bm_index_lookup(*idx, start);
	struct bm_range *rs[3];
	size_t k = 0;

	if (old->start < start)
		rs[k++] = mk(old->start, start - 1, old->region);
	rs[k++] = mk(start, last, region);
	if (old->last > last)
		rs[k++] = mk(last + 1, old->last, old->region);
	replace(idx, rs, k, g);
}

/* Merges the region holding addr with the unassigned ranges around it. */
static void remove_at(struct bm_index **idx, uint64_t addr, struct bm_garbage *g)
{
	const struct bm_range *r = bm_index_lookup(*idx, addr);
	uint64_t start = r->start, last = r->last;

	if (start && !bm_index_lookup(*idx, start - 1)->region)
		start = bm_index_lookup(*idx, start - 1)->start;
	if (last != UINT64_MAX && !bm_index_lookup(*idx, last + 1)->region)
		last = bm_index_lookup(*idx, last + 1)->last;

	struct bm_range *one = mk(start, last, NULL);

	replace(idx, &one, 1, g);
}

static struct bm_index *populate(size_t n, int bulk, struct bm_garbage *g)
{
	struct bm_index *idx;
	uint64_t stride = (SPAN / n) & ~UINT64_C(0xfff);

	if (bm_index_new(mk(0, UINT64_MAX, NULL), &idx))
		abort();
	if (!bulk) {
		for (size_t i = 0; i < n; i++)
			insert(&idx, BASE + i * stride, BASE + i * stride + 0xfff, (void *)16, g);
		return idx;
	}

	struct bm_range **rs = malloc((2 * n + 1) * sizeof(*rs));
	size_t k = 0;

	if (!rs)
		abort();
	for (size_t i = 0; i < n; i++) {
		uint64_t s = BASE + i * stride;

		rs[k] = mk(k ? rs[k - 1]->last + 1 : 0, s - 1, NULL);
		rs[k + 1] = mk(s, s + 0xfff, (void *)16);
		k += 2;
	}
	rs[k] = mk(rs[k - 1]->last + 1, UINT64_MAX, NULL);
	replace(&idx, rs, k + 1, g);
	free(rs);
	return idx;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s hit|any|move N [each|bulk [OPS]]\n", argv[0]);
		return 2;
	}

	const char *mode = argv[1];
	size_t n = strtoul(argv[2], NULL, 0);
	int bulk = argc > 3 && !strcmp(argv[3], "bulk");
	long ops = argc > 4 ? strtol(argv[4], NULL, 0) : !strcmp(mode, "move") ? 1000 : 1000000;
	struct bm_garbage g = {0};
	struct bm_index *idx = populate(n, bulk, &g);
	uint64_t stride = (SPAN / n) & ~UINT64_C(0xfff), rng = 42, sum = 0;

	fprintf(stderr, "%zu regions, %zu bytes, %.1f bytes per range\n", n, bm_index_bytes(idx),
	        (double)bm_index_bytes(idx) / (double)(2 * n + 1));
	if (!strcmp(mode, "move")) {
		for (long t = 0; t < ops; t++) {
			uint64_t s = BASE + (rng_next(&rng) % n) * stride;
			const struct bm_range *r = bm_index_lookup(idx, s);

			if (!r->region)
				continue;
			remove_at(&idx, s, &g);
			/* The middle of the gap left, within the span: a region moved far above
			 * the others would stretch the root over a much larger block. */
			r = bm_index_lookup(idx, s);

			uint64_t lo = r->start > BASE ? r->start : BASE;
			uint64_t hi = r->last < BASE + SPAN ? r->last : BASE + SPAN;

			s = (lo + (hi - lo) / 2) & ~UINT64_C(0xfff);
			insert(&idx, s, s + 0xfff, (void *)16, &g);
		}
		fprintf(stderr, "%ld moves\n", ops);
	} else {
		int any = !strcmp(mode, "any");

		for (long t = 0; t < ops; t++) {
			uint64_t x = rng_next(&rng), addr;

			if (any)
				addr = BASE + x % SPAN;
			else
				addr = BASE + (x % n) * stride + ((x >> 40) & 0xfff);
			sum += (uintptr_t)bm_index_lookup(idx, addr)->region;
		}
		fprintf(stderr, "%ld lookups (%llu)\n", ops, (unsigned long long)sum);
	}
	bm_index_free(idx);
	bm_garbage_release(&g);
	return 0;
}
