/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Registrations by (base, size). bhyve unregisters with a fresh description of the range,
 * not with a handle, so the layer finds the registration again by what identifies it: its
 * base, size and name. Several registrations can share all three (a device placing two of
 * its BARs at one address); then the one whose name is the same pointer, then the one with
 * the same handler and arguments, then the newest is taken.
 */
#include "bhyve_internal.h"

#include <stdlib.h>
#include <string.h>

#define REGS_MIN_BUCKETS 64u

static size_t bucket_of(const struct bm_bhyve_regs *t, uint64_t base, uint64_t size)
{
	uint64_t h = (base ^ (size * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
	return (size_t)(h >> 32) & (t->nbuckets - 1);
}

int bm_bhyve_regs_init(struct bm_bhyve_regs *t)
{
	t->buckets = calloc(REGS_MIN_BUCKETS, sizeof(*t->buckets));
	t->nbuckets = t->buckets ? REGS_MIN_BUCKETS : 0;
	t->count = 0;
	return t->buckets ? 0 : -ENOMEM;
}

/* Doubles the table; without memory the chains just grow longer. */
static void regs_grow(struct bm_bhyve_regs *t)
{
	struct bm_bhyve_regs bigger = {calloc(t->nbuckets * 2, sizeof(*t->buckets)),
	                               t->nbuckets * 2, t->count};
	if (!bigger.buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct bm_bhyve_reg *r = t->buckets[i], *next;
		for (; r; r = next) {
			size_t at = bucket_of(&bigger, r->base, r->size);
			next = r->next;
			r->next = bigger.buckets[at];
			bigger.buckets[at] = r;
		}
	}
	free(t->buckets);
	*t = bigger;
}

void bm_bhyve_regs_insert(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r)
{
	if (t->count >= t->nbuckets)
		regs_grow(t);
	size_t at = bucket_of(t, r->base, r->size);
	r->next = t->buckets[at];
	t->buckets[at] = r;
	t->count++;
}

void bm_bhyve_regs_remove(struct bm_bhyve_regs *t, struct bm_bhyve_reg *r)
{
	struct bm_bhyve_reg **at = &t->buckets[bucket_of(t, r->base, r->size)];
	while (*at && *at != r)
		at = &(*at)->next;
	if (*at) {
		*at = r->next;
		t->count--;
	}
}

bool bm_bhyve_regs_owns(const struct bm_bhyve_regs *t, const bm_region *region)
{
	/* A registration's region sits at its base in the root: only that bucket can hold it. */
	uint64_t base = bm_region_offset(region), size = bm_region_size(region);
	for (const struct bm_bhyve_reg *r = t->buckets[bucket_of(t, base, size)]; r; r = r->next)
		if (r->region == region)
			return true;
	return false;
}

/* -1: not this registration; otherwise higher is a closer match. */
static int match_score(const struct bm_bhyve_reg *r, uint64_t base, uint64_t size, const char *name,
                       bm_bhyve_same_fn same, const void *desc)
{
	if (r->base != base || r->size != size)
		return -1;
	int score = 0;
	if (r->name == name)
		score += 2;
	else if (!r->name || !name || strcmp(r->name, name))
		return -1;
	if (same(r, desc))
		score += 1;
	return score;
}

struct bm_bhyve_reg *bm_bhyve_regs_find(const struct bm_bhyve_regs *t, uint64_t base, uint64_t size,
                                        const char *name, bm_bhyve_same_fn same, const void *desc)
{
	struct bm_bhyve_reg *best = NULL;
	int best_score = -1;
	for (struct bm_bhyve_reg *r = t->buckets[bucket_of(t, base, size)]; r; r = r->next) {
		int score = match_score(r, base, size, name, same, desc);
		if (score > best_score ||
		    (score >= 0 && score == best_score && r->seq > best->seq)) {
			best = r;
			best_score = score;
		}
	}
	return best;
}

void bm_bhyve_regs_fini(struct bm_bhyve_regs *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct bm_bhyve_reg *r = t->buckets[i], *next;
		for (; r; r = next) {
			next = r->next;
			free(r);
		}
	}
	free(t->buckets);
	*t = (struct bm_bhyve_regs){NULL, 0, 0};
}
