/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the flat-view index.
 *
 * The index is included, not linked, so that the test can make allocations fail
 * (BM_INDEX_TESTING) and check the trie's invariants from the inside. Build standalone with
 * e.g. cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/test_index.c -lcmocka
 * (without src/index.c, whose definitions this file already holds).
 */
#define BM_INDEX_TESTING
#include "index.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static struct bm_range *mk(uint64_t start, uint64_t last)
{
	struct bm_range *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->start = start;
	r->last = last;
	r->offset = start ^ 0x5a5a;
	return r;
}

/* The trivially correct model: the ranges of a version, sorted. */
struct model {
	struct bm_range **v;
	size_t n, cap;
};

static void model_push(struct model *m, struct bm_range *r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert_non_null(m->v);
	}
	m->v[m->n++] = r;
}

static size_t model_find(const struct model *m, uint64_t addr)
{
	return bm_bsearch(m->v, m->n, addr);
}

/* The model after replacing v[i..j] by rs[0..k). */
static void model_splice(const struct model *m, size_t i, size_t j, struct bm_range **rs, size_t k,
                         struct model *out)
{
	out->n = 0;
	for (size_t x = 0; x < i; x++)
		model_push(out, m->v[x]);
	for (size_t x = 0; x < k; x++)
		model_push(out, rs[x]);
	for (size_t x = j + 1; x < m->n; x++)
		model_push(out, m->v[x]);
}

/* Cuts [a, b] into ranges at the given sorted, distinct points of (a, b]. */
static size_t cut(uint64_t a, uint64_t b, const uint64_t *pts, size_t npts, struct bm_range **out)
{
	size_t k = 0;
	uint64_t start = a;

	for (size_t i = 0; i < npts; i++) {
		out[k++] = mk(start, pts[i] - 1);
		start = pts[i];
	}
	out[k++] = mk(start, b);
	return k;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static int cmp_ptr(const void *x, const void *y)
{
	uintptr_t a = (uintptr_t) * (void *const *)x, b = (uintptr_t) * (void *const *)y;

	return a < b ? -1 : a > b;
}

static size_t sort_unique(uint64_t *v, size_t n)
{
	size_t k = 0;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (!k || v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

static void expect_at(const struct bm_index *idx, const struct model *m, uint64_t addr)
{
	const struct bm_range *want = m->v[model_find(m, addr)];
	const struct bm_range *got = bm_index_lookup(idx, addr);

	if (got != want)
		fail_msg("lookup %#llx: got [%#llx, %#llx], want [%#llx, %#llx]",
		         (unsigned long long)addr, (unsigned long long)got->start,
		         (unsigned long long)got->last, (unsigned long long)want->start,
		         (unsigned long long)want->last);
}

/* Lookups at the edges of (a sample of, or all) ranges and at random addresses. */
static void check_lookups(const struct bm_index *idx, const struct model *m, uint64_t *rng,
                          size_t sample)
{
	size_t n = m->n;

	for (size_t s = 0; s < (sample < n ? sample : n); s++) {
		size_t i = sample < n ? rng_below(rng, n) : s;
		const struct bm_range *r = m->v[i];

		expect_at(idx, m, r->start);
		expect_at(idx, m, r->last);
		if (r->start)
			expect_at(idx, m, r->start - 1);
		if (r->last != UINT64_MAX)
			expect_at(idx, m, r->last + 1);
		if (r->last - r->start > 1)
			expect_at(idx, m, r->start + 1 + rng_below(rng, r->last - r->start - 1));
	}
	for (int s = 0; s < 64; s++)
		expect_at(idx, m, rng_next(rng));
}

static void check_next(const struct bm_index *idx, const struct model *m)
{
	const struct bm_range *r = bm_index_lookup(idx, 0);

	for (size_t i = 0; i < m->n; i++) {
		assert_ptr_equal(r, m->v[i]);
		r = bm_index_next(idx, r);
	}
	assert_null(r);
}

/* ---- white-box invariants ---- */

struct span {
	size_t k; /* distinct ranges meeting the extent */
	const struct bm_range *first, *last;
	size_t bytes; /* of nodes */
	unsigned depth;
};

static struct span check_subtree(uintptr_t p, enum bm_kind kind, uint64_t lo, uint64_t hi)
{
	if (!bm_is_node(p)) {
		const struct bm_range *r = (const struct bm_range *)p;

		assert_true(r->start <= lo && r->last >= hi);
		return (struct span){1, r, r, 0, 0};
	}

	const struct bm_node *n = bm_node_of(p);
	const struct bm_node_tail *tail = bm_tail(n);

	if (kind == BM_PAGE && n->span_last == UINT64_MAX) {
		/* A uniform page: one range, over the whole extent. */
		const struct bm_range *r = (const struct bm_range *)n->slot[0];

		assert_true(n->minus_base == 0 && n->order == BM_PAGE_ORDER && !tail->below &&
		            !tail->above);
		assert_int_equal(tail->count, 0);
		for (size_t j = 0; j < (size_t)1 << n->order; j++)
			assert_ptr_equal(n->slot[j], r);
		assert_true(r->start <= lo && r->last >= hi);
		return (struct span){1, r, r, bm_node_size(n->order), 1};
	}

	uint64_t base = bm_base(n), last = base + n->span_last;
	unsigned bits =
	    n->span_last == UINT64_MAX ? 64 : (unsigned)__builtin_ctzll(n->span_last + 1);
	struct span s = {0, NULL, NULL, bm_node_size(n->order), 0};

	assert_true((n->span_last & (n->span_last + 1)) == 0);
	assert_true(base <= UINT64_MAX - n->span_last);
	assert_true(last >= lo && base <= hi);
	assert_true(n->shift <= 63 && n->shift + n->order == bits);
	if (kind == BM_PAGE) {
		/* Pages exactly fill their root slot. */
		assert_true(base == lo && last == hi && n->order == BM_PAGE_ORDER);
	} else if (kind == BM_ROOT) {
		assert_true(n->order >= 1 && n->order <= BM_ROOT_MAX_ORDER - BM_PAGE_ORDER);
		assert_int_equal(n->fine_shift + BM_PAGE_ORDER, n->shift);
	} else {
		assert_true(n->order <= BM_MAX_ORDER);
	}
	assert_true((tail->below != NULL) == (base > lo));
	assert_true((tail->above != NULL) == (last < hi));
	if (tail->below) {
		assert_true(tail->below->start <= lo && tail->below->last >= base - 1);
		s = (struct span){1, tail->below, tail->below, s.bytes, 0};
	}
	for (size_t j = 0; j < (size_t)1 << n->order; j++) {
		uint64_t slo = bm_slot_lo(n, j), shi = slo + bm_slot_mask(n);

		/* Slots outside the extent are never reached, and hold nothing. */
		assert_true((n->slot[j] == 0) == (shi < lo || slo > hi));
		if (!n->slot[j])
			continue;

		if (kind == BM_ROOT)
			assert_true(bm_is_node(n->slot[j]));

		bool shared = j && n->slot[j] == n->slot[j - 1];

		struct span c = check_subtree(n->slot[j], kind == BM_ROOT ? BM_PAGE : BM_INNER,
		                              bm_max(slo, lo), bm_min(shi, hi));

		s.k += c.k - (s.last == c.first);
		if (!s.first)
			s.first = c.first;
		s.last = c.last;
		s.bytes += shared ? 0 : c.bytes;
		if (c.depth > s.depth)
			s.depth = c.depth;
	}
	if (tail->above) {
		assert_true(tail->above->start <= last + 1 && tail->above->last >= hi);
		s.k += s.last != tail->above;
		s.last = tail->above;
	}
	assert_int_equal(tail->count, s.k - 1);
	s.depth++;
	return s;
}

static unsigned check_invariants(const struct bm_index *idx, const struct model *m)
{
	struct span s = check_subtree(bm_tag(bm_root(idx)), BM_ROOT, 0, UINT64_MAX);

	assert_int_equal(s.k, m->n);
	assert_ptr_equal(s.first, m->v[0]);
	assert_ptr_equal(s.last, m->v[m->n - 1]);
	assert_int_equal(bm_index_bytes(idx), s.bytes + m->n * sizeof(struct bm_range));
	return s.depth;
}

/* Every node and range of a version, sorted. */
struct ptrset {
	void **v;
	size_t n, cap;
};

static void ptrset_add(struct ptrset *s, void *p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	s->v[s->n++] = p;
}

static void collect(uintptr_t p, struct ptrset *s, uintptr_t *prev)
{
	if (!bm_is_node(p)) {
		if (p != *prev)
			ptrset_add(s, (void *)p);
		*prev = p;
		return;
	}

	struct bm_node *n = bm_node_of(p);
	const struct bm_node_tail *tail = bm_tail(n);

	if (tail->below)
		collect((uintptr_t)tail->below, s, prev);
	for (size_t j = 0; j < (size_t)1 << n->order; j++)
		if (n->slot[j] && (!j || n->slot[j] != n->slot[j - 1] || !bm_is_node(n->slot[j])))
			collect(n->slot[j], s, prev);
	if (tail->above)
		collect((uintptr_t)tail->above, s, prev);
	ptrset_add(s, n);
}

static void collect_version(const struct bm_index *idx, struct ptrset *s)
{
	uintptr_t prev = 0;

	s->n = 0;
	collect(bm_tag(bm_root(idx)), s, &prev);
	qsort(s->v, s->n, sizeof(*s->v), cmp_ptr);
	for (size_t i = 1; i < s->n; i++)
		assert_true(s->v[i - 1] != s->v[i]);
}

static bool ptrset_has(const struct ptrset *s, void *p)
{
	return bsearch(&p, s->v, s->n, sizeof(*s->v), cmp_ptr) != NULL;
}

/* A hash of every byte of every node of a subtree, and of the ranges it points to. */
static uint64_t hash_subtree(uintptr_t p)
{
	uint64_t h = UINT64_C(1469598103934665603);
	const unsigned char *bytes = (const unsigned char *)(p & ~BM_TAG_NODE);
	size_t size = bm_is_node(p) ? bm_node_size(bm_node_of(p)->order) : sizeof(struct bm_range);

	for (size_t i = 0; i < size; i++)
		h = (h ^ bytes[i]) * UINT64_C(1099511628211);
	if (!bm_is_node(p))
		return h;

	const struct bm_node *n = bm_node_of(p);
	const struct bm_node_tail *tail = bm_tail(n);

	if (tail->below)
		h = h * 31 + hash_subtree((uintptr_t)tail->below);
	if (tail->above)
		h = h * 31 + hash_subtree((uintptr_t)tail->above);
	for (size_t j = 0; j < (size_t)1 << n->order; j++)
		if (n->slot[j] && (!j || n->slot[j] != n->slot[j - 1]))
			h = h * 31 + hash_subtree(n->slot[j]);
	return h;
}

/* The garbage must be exactly what the old version holds and the new one does not. */
static void check_garbage(const struct ptrset *old, const struct ptrset *cur,
                          const struct bm_garbage *g)
{
	void **v = malloc((g->n + 1) * sizeof(*v));

	assert_non_null(v);
	memcpy(v, g->ptrs, g->n * sizeof(*v));
	qsort(v, g->n, sizeof(*v), cmp_ptr);
	for (size_t i = 0; i < g->n; i++) {
		assert_true(!i || v[i - 1] != v[i]);
		assert_true(ptrset_has(old, v[i]));
		assert_false(ptrset_has(cur, v[i]));
	}

	size_t gone = 0;

	for (size_t i = 0; i < old->n; i++)
		gone += !ptrset_has(cur, old->v[i]);
	assert_int_equal(gone, g->n);
	free(v);
}

/* ---- a test fixture: a version and its model ---- */

struct fixture {
	struct bm_index *idx;
	struct model m;
	struct bm_garbage g;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	struct bm_range *whole = mk(0, UINT64_MAX);

	assert_int_equal(bm_index_new(whole, &f->idx), 0);
	model_push(&f->m, whole);
}

static void fixture_fini(struct fixture *f)
{
	bm_index_free(f->idx);
	bm_garbage_free_all(&f->g);
	bm_garbage_release(&f->g);
	free(f->m.v);
}

/* Replaces model ranges i..j by rs[0..k), frees the garbage, checks the new version. */
static void fixture_replace(struct fixture *f, size_t i, size_t j, struct bm_range **rs, size_t k)
{
	struct model next = {0};
	struct bm_index *idx;

	model_splice(&f->m, i, j, rs, k, &next);
	assert_int_equal(
	    bm_index_replace(f->idx, f->m.v[i]->start, f->m.v[j]->last, rs, k, &idx, &f->g), 0);
	bm_garbage_free_all(&f->g);
	free(f->m.v);
	f->m = next;
	f->idx = idx;
}

/* Puts [start, last] in, splitting the range that holds it (which must hold it whole). */
static void fixture_insert(struct fixture *f, uint64_t start, uint64_t last)
{
	size_t i = model_find(&f->m, start);
	const struct bm_range *old = f->m.v[i];
	struct bm_range *rs[3];
	size_t k = 0;

	assert_true(old->last >= last);
	if (old->start < start)
		rs[k++] = mk(old->start, start - 1);
	rs[k++] = mk(start, last);
	if (old->last > last)
		rs[k++] = mk(last + 1, old->last);
	fixture_replace(f, i, i, rs, k);
}

/* fixture_insert without the model, which would cost O(n) per edit: the caller rebuilds
 * it afterwards. */
static void index_insert(struct fixture *f, uint64_t start, uint64_t last)
{
	const struct bm_range *old = bm_index_lookup(f->idx, start);
	struct bm_range *rs[3];
	struct bm_index *idx;
	size_t k = 0;

	assert_true(old->last >= last);
	if (old->start < start)
		rs[k++] = mk(old->start, start - 1);
	rs[k++] = mk(start, last);
	if (old->last > last)
		rs[k++] = mk(last + 1, old->last);
	assert_int_equal(
	    bm_index_replace(f->idx, rs[0]->start, rs[k - 1]->last, rs, k, &idx, &f->g), 0);
	bm_garbage_free_all(&f->g);
	f->idx = idx;
}

/* ---- tests ---- */

static void test_single_range(void **state)
{
	(void)state;
	struct fixture f;
	uint64_t rng = 1;

	fixture_init(&f);
	for (int i = 0; i < 100; i++)
		assert_ptr_equal(bm_index_lookup(f.idx, rng_next(&rng)), f.m.v[0]);
	assert_ptr_equal(bm_index_lookup(f.idx, UINT64_MAX), f.m.v[0]);
	assert_null(bm_index_next(f.idx, f.m.v[0]));
	check_invariants(f.idx, &f.m);

	/* Back to one range after splitting the space. */
	fixture_insert(&f, 0x1000, 0x1fff);
	assert_int_equal(f.m.n, 3);
	struct bm_range *whole = mk(0, UINT64_MAX);
	fixture_replace(&f, 0, 2, &whole, 1);
	assert_int_equal(f.m.n, 1);
	assert_ptr_equal(bm_index_lookup(f.idx, 0x1800), whole);
	check_invariants(f.idx, &f.m);
	fixture_fini(&f);
}

static void test_invalid(void **state)
{
	(void)state;
	struct fixture f;
	struct bm_index *idx = NULL;
	struct bm_range *bad = mk(1, UINT64_MAX);

	assert_int_equal(bm_index_new(bad, &idx), -EINVAL);
	bad->start = 0;
	bad->last = UINT64_MAX - 1;
	assert_int_equal(bm_index_new(bad, &idx), -EINVAL);
	free(bad);

	fixture_init(&f);
	fixture_insert(&f, 0x1000, 0x1fff);

	struct bm_range *r1 = mk(0x1000, 0x17ff), *r2 = mk(0x1800, 0x1fff),
	                *r3 = mk(0x1801, 0x1fff);
	struct bm_range *ok[] = {r1, r2}, *gap[] = {r1, r3};

	/* Not at range bounds of the old version. */
	assert_int_equal(bm_index_replace(f.idx, 0x1000, 0x17ff, ok, 1, &idx, &f.g), -EINVAL);
	r1->start = 0x1001;
	assert_int_equal(bm_index_replace(f.idx, 0x1001, 0x1fff, ok, 2, &idx, &f.g), -EINVAL);
	r1->start = 0x1000;
	/* Not contiguous, not matching the window, empty. */
	assert_int_equal(bm_index_replace(f.idx, 0x1000, 0x1fff, gap, 2, &idx, &f.g), -EINVAL);
	assert_int_equal(bm_index_replace(f.idx, 0x1000, 0x2fff, ok, 2, &idx, &f.g), -EINVAL);
	assert_int_equal(bm_index_replace(f.idx, 0x1000, 0x1fff, ok, 0, &idx, &f.g), -EINVAL);
	assert_int_equal(f.g.n, 0);
	fixture_replace(&f, 1, 1, ok, 2);
	check_invariants(f.idx, &f.m);
	free(r3);
	fixture_fini(&f);
}

static void test_garbage(void **state)
{
	(void)state;
	struct bm_garbage g = {0};

	assert_int_equal(bm_garbage_reserve(&g, 0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(bm_garbage_add(&g, malloc(8)), 0);
	assert_int_equal(g.n, 100);
	assert_int_equal(bm_garbage_reserve(&g, 1000), 0);
	assert_true(g.cap >= 1100);

	void **ptrs = g.ptrs;

	for (int i = 0; i < 1000; i++)
		assert_int_equal(bm_garbage_add(&g, NULL), 0);
	assert_ptr_equal(g.ptrs, ptrs);
	bm_garbage_free_all(&g);
	assert_int_equal(g.n, 0);
	assert_ptr_equal(g.ptrs, ptrs);
	assert_int_equal(bm_garbage_reserve(&g, SIZE_MAX), -ENOMEM);
	bm_garbage_release(&g);
	assert_null(g.ptrs);
	assert_int_equal(g.cap, 0);
}

/* Some cut points in (a, b], in a mix of scales: anywhere, packed near a, b or each other,
 * aligned. */
static size_t random_cuts(uint64_t *rng, uint64_t a, uint64_t b, size_t want, uint64_t *pts)
{
	size_t n = 0;
	uint64_t width = b - a; /* cut points available */

	if (want > width)
		want = (size_t)width;
	for (size_t i = 0; i < want; i++) {
		uint64_t p;

		switch (rng_below(rng, 6)) {
		case 0:
			p = a + 1 + rng_below(rng, width < 64 ? width : 64);
			break;
		case 1:
			p = b - rng_below(rng, width < 64 ? width : 64);
			break;
		case 2:
			p = n ? pts[n - 1] + 1 + rng_below(rng, 16) : a + 1;
			break;
		case 3: {
			unsigned sh = (unsigned)rng_below(rng, 64);

			p = (a + 1 + rng_below(rng, width)) & ~((UINT64_C(1) << sh) - 1);
			break;
		}
		default:
			p = a + 1 +
			    (width == UINT64_MAX ? rng_next(rng) % width : rng_below(rng, width));
			break;
		}
		if (p > a && p <= b)
			pts[n++] = p;
	}
	return sort_unique(pts, n);
}

static size_t random_count(uint64_t *rng, size_t have)
{
	unsigned r = (unsigned)rng_below(rng, 100);

	/* Keep the number of ranges within a few thousand. */
	if (have > 3000 && r < 90)
		return rng_below(rng, 3);
	if (r < 25)
		return 0;
	if (r < 60)
		return 1 + rng_below(rng, 3);
	if (r < 85)
		return 4 + rng_below(rng, 13);
	if (r < 98)
		return 17 + rng_below(rng, 112);
	return 129 + rng_below(rng, 900);
}

static size_t random_span(uint64_t *rng, size_t n)
{
	unsigned r = (unsigned)rng_below(rng, 100);

	if (r < 50)
		return rng_below(rng, 3);
	if (r < 80)
		return rng_below(rng, 17);
	if (r < 97)
		return rng_below(rng, n / 4 + 1);
	return n;
}

static void differential(uint64_t seed, int ops)
{
	struct fixture f;
	uint64_t rng = seed;
	struct ptrset old_set = {0}, cur_set = {0};
	uint64_t *pts = malloc(2000 * sizeof(*pts));
	struct bm_range **rs = malloc(2001 * sizeof(*rs));

	assert_non_null(pts);
	assert_non_null(rs);
	fixture_init(&f);
	for (int op = 0; op < ops; op++) {
		size_t i = rng_below(&rng, f.m.n);
		size_t j = i + random_span(&rng, f.m.n);

		if (rng_below(&rng, 50) == 0)
			i = 0;
		if (j >= f.m.n)
			j = f.m.n - 1;

		uint64_t a = f.m.v[i]->start, b = f.m.v[j]->last;
		size_t npts = random_cuts(&rng, a, b, random_count(&rng, f.m.n), pts);
		size_t k = cut(a, b, pts, npts, rs);
		struct model next = {0};
		struct bm_index *idx;
		bool deep = op % 16 == 0 || f.m.n < 64;

		uint64_t old_hash = 0;

		model_splice(&f.m, i, j, rs, k, &next);
		if (deep) {
			collect_version(f.idx, &old_set);
			old_hash = hash_subtree(bm_tag(bm_root(f.idx)));
		}
		assert_int_equal(bm_index_replace(f.idx, a, b, rs, k, &idx, &f.g), 0);

		/* Not a byte of the old version changed. */
		if (deep)
			assert_true(hash_subtree(bm_tag(bm_root(f.idx))) == old_hash);

		/* The old version answers as before, the new one as the model. */
		check_lookups(f.idx, &f.m, &rng, deep ? SIZE_MAX : 64);
		check_lookups(idx, &next, &rng, deep ? SIZE_MAX : 256);
		for (size_t x = 0; x < k; x++) {
			expect_at(idx, &next, rs[x]->start);
			expect_at(idx, &next, rs[x]->last);
		}
		if (deep) {
			collect_version(idx, &cur_set);
			check_garbage(&old_set, &cur_set, &f.g);
			check_invariants(idx, &next);
			check_next(idx, &next);
		}
		bm_garbage_free_all(&f.g);
		free(f.m.v);
		f.m = next;
		f.idx = idx;
	}
	check_invariants(f.idx, &f.m);
	fixture_fini(&f);
	free(old_set.v);
	free(cur_set.v);
	free(pts);
	free(rs);
}

static void test_differential(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 24; seed++)
		differential(seed * 7919, 1000);
}

/* N regions of 4 KiB at a regular stride over [base, base + span), inserted one by one in a
 * random order, then moved one by one. */
static void spread(size_t n, uint64_t base, uint64_t span, unsigned max_depth)
{
	struct fixture f;
	uint64_t stride = span / n, rng = n;
	size_t *order = malloc(n * sizeof(*order));

	assert_non_null(order);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = rng_below(&rng, i), t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
	fixture_init(&f);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = base + order[i] * stride;

		index_insert(&f, s, s + 0xfff);
	}
	/* The model, known from the layout. */
	f.m.n = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t s = base + i * stride;

		if (s)
			model_push(&f.m, (struct bm_range *)bm_index_lookup(f.idx, s - 1));
		model_push(&f.m, (struct bm_range *)bm_index_lookup(f.idx, s));
		assert_true(f.m.v[f.m.n - 1]->start == s && f.m.v[f.m.n - 1]->last == s + 0xfff);
	}
	model_push(&f.m, (struct bm_range *)bm_index_lookup(f.idx, UINT64_MAX));
	for (size_t i = 1; i < f.m.n; i++)
		assert_true(f.m.v[i]->start == f.m.v[i - 1]->last + 1);
	assert_int_equal(f.m.n, 2 * n + (base != 0));
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
	check_next(f.idx, &f.m);

	unsigned depth = check_invariants(f.idx, &f.m);

	/* Bytes per range (past the root's fixed 8 KiB) and depth stay small whatever the
	 * insertion order. */
	printf("# %zu regions inserted one by one: depth %u, %zu bytes per range\n", n, depth,
	       bm_index_bytes(f.idx) / f.m.n);
	/* Ranges themselves (the dispatch fast path keeps callbacks in them) plus ~160 bytes
	 * of nodes per range. */
	assert_true(bm_index_bytes(f.idx) <= 8192 + (sizeof(struct bm_range) + 160) * f.m.n);
	assert_true(depth <= max_depth);

	/* Move some regions to the middle of the gap they leave. */
	for (int t = 0; t < 32; t++) {
		size_t i = 1 + rng_below(&rng, f.m.n - 2);
		struct bm_range *r = f.m.v[i];

		if (r->last - r->start != 0xfff)
			continue;

		struct bm_range *merged = mk(f.m.v[i - 1]->start, f.m.v[i + 1]->last);
		uint64_t s =
		    (merged->start + (merged->last - merged->start) / 2) & ~UINT64_C(0xfff);

		fixture_replace(&f, i - 1, i + 1, &merged, 1);
		fixture_insert(&f, s, s + 0xfff);
	}
	check_lookups(f.idx, &f.m, &rng, 4096);
	check_invariants(f.idx, &f.m);
	fixture_fini(&f);
	free(order);
}

static void test_spread(void **state)
{
	(void)state;
	for (size_t n = 16; n <= 65536; n *= 4)
		spread(n, UINT64_C(1) << 32, UINT64_C(1) << 40, 3);
	/* Not page-aligned: a region's end and the next start share a slot. */
	spread(1000, 0, UINT64_C(1) << 30, 4);
}

/* The same spread regions placed in one edit over the whole space. */
static void test_spread_bulk(void **state)
{
	(void)state;
	size_t n = 65536;
	struct fixture f;
	struct bm_range **rs = malloc((2 * n + 1) * sizeof(*rs));
	uint64_t stride = (UINT64_C(1) << 40) / n, rng = 5;
	size_t k = 0;

	assert_non_null(rs);
	fixture_init(&f);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = i * stride + (UINT64_C(1) << 32);

		rs[k] = mk(k ? rs[k - 1]->last + 1 : 0, s - 1);
		rs[k + 1] = mk(s, s + 0xfff);
		k += 2;
	}
	rs[k] = mk(rs[k - 1]->last + 1, UINT64_MAX);
	k++;
	fixture_replace(&f, 0, 0, rs, k);
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);

	unsigned depth = check_invariants(f.idx, &f.m);

	assert_true(depth <= 3);
	assert_true(bm_index_bytes(f.idx) / f.m.n <= 200);
	fixture_fini(&f);
	free(rs);
}

/* Consecutive tiny ranges, then splits and merges among them. */
static void test_dense(void **state)
{
	(void)state;
	struct fixture f;
	size_t n = 20000;
	struct bm_range **rs = malloc((n + 2) * sizeof(*rs));
	uint64_t rng = 3, at = 0xfee00000;
	size_t k = 0;

	assert_non_null(rs);
	fixture_init(&f);
	rs[k++] = mk(0, at - 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t len = 1 + rng_below(&rng, 64);

		rs[k++] = mk(at, at + len - 1);
		at += len;
	}
	rs[k++] = mk(at, UINT64_MAX);
	fixture_replace(&f, 0, 0, rs, k);
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
	check_invariants(f.idx, &f.m);

	for (int t = 0; t < 2000; t++) {
		size_t i = 1 + rng_below(&rng, f.m.n - 3);
		struct bm_range *r = f.m.v[i];

		if (t % 2 && r->last > r->start) {
			uint64_t mid = r->start + rng_below(&rng, r->last - r->start);
			struct bm_range *two[] = {mk(r->start, mid), mk(mid + 1, r->last)};

			fixture_replace(&f, i, i, two, 2);
		} else {
			struct bm_range *one = mk(r->start, f.m.v[i + 1]->last);

			fixture_replace(&f, i, i + 1, &one, 1);
		}
		if (t % 100 == 0)
			check_lookups(f.idx, &f.m, &rng, 1000);
	}
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
	check_invariants(f.idx, &f.m);
	fixture_fini(&f);
	free(rs);
}

/* Ranges ending at the last address, and the top half of the space. */
static void test_top(void **state)
{
	(void)state;
	struct fixture f;
	uint64_t rng = 4;

	fixture_init(&f);
	fixture_insert(&f, UINT64_MAX, UINT64_MAX);
	fixture_insert(&f, UINT64_MAX - 0xfff, UINT64_MAX - 1);
	fixture_insert(&f, UINT64_C(1) << 63, (UINT64_C(1) << 63) + 0xfff);
	fixture_insert(&f, (UINT64_C(1) << 63) - 1, (UINT64_C(1) << 63) - 1);
	fixture_insert(&f, 0, 0);
	for (uint64_t i = 0; i < 300; i++)
		fixture_insert(&f, UINT64_MAX - 0x100000 + 64 * i,
		               UINT64_MAX - 0x100000 + 64 * i + 31);
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
	check_next(f.idx, &f.m);
	check_invariants(f.idx, &f.m);
	assert_int_equal(bm_index_lookup(f.idx, UINT64_MAX)->start, UINT64_MAX);
	assert_int_equal(bm_index_lookup(f.idx, UINT64_MAX - 1)->last, UINT64_MAX - 1);
	assert_int_equal(bm_index_lookup(f.idx, 0)->last, 0);

	/* Everything above 2^63 in one range. */
	size_t i = model_find(&f.m, UINT64_C(1) << 63);
	struct bm_range *hi = mk(UINT64_C(1) << 63, UINT64_MAX);

	fixture_replace(&f, i, f.m.n - 1, &hi, 1);
	check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
	check_invariants(f.idx, &f.m);
	fixture_fini(&f);
}

/* Allocation failures, one at a time. */
static long fail_countdown = -1;

static bool fail_alloc(void)
{
	return fail_countdown >= 0 && fail_countdown-- == 0;
}

static void test_enomem(void **state)
{
	(void)state;
	struct fixture f;
	uint64_t rng = 77, pts[300];
	struct bm_range *rs[301];
	struct ptrset before = {0};

	fixture_init(&f);
	for (int i = 0; i < 300; i++)
		fixture_insert(&f, (uint64_t)i << 24, ((uint64_t)i << 24) + 0xfff);
	for (int op = 0; op < 60; op++) {
		size_t i = rng_below(&rng, f.m.n);
		size_t j = i + (op % 10 == 9 ? f.m.n : rng_below(&rng, 8));

		if (j >= f.m.n)
			j = f.m.n - 1;

		uint64_t a = f.m.v[i]->start, b = f.m.v[j]->last;
		size_t k = cut(a, b, pts, random_cuts(&rng, a, b, rng_below(&rng, 300), pts), rs);
		struct bm_index *idx = NULL;
		int err;

		collect_version(f.idx, &before);
		for (long fail_at = 0;; fail_at++) {
			void **gptrs = f.g.ptrs;
			size_t gn = f.g.n, gcap = f.g.cap;

			fail_countdown = fail_at;
			bm_index_test_fail_alloc = fail_alloc;
			err = bm_index_replace(f.idx, a, b, rs, k, &idx, &f.g);
			bm_index_test_fail_alloc = NULL;
			if (!err)
				break;
			assert_int_equal(err, -ENOMEM);
			assert_true(f.g.ptrs == gptrs && f.g.n == gn && f.g.cap == gcap);
			check_lookups(f.idx, &f.m, &rng, 32);
		}
		/* The old version was not touched by any of the failed attempts. */
		struct ptrset after = {0};

		collect_version(f.idx, &after);
		assert_int_equal(after.n, before.n);
		assert_memory_equal(after.v, before.v, after.n * sizeof(void *));
		free(after.v);
		check_lookups(f.idx, &f.m, &rng, SIZE_MAX);

		struct model next = {0};

		model_splice(&f.m, i, j, rs, k, &next);
		bm_garbage_free_all(&f.g);
		free(f.m.v);
		f.m = next;
		f.idx = idx;
		check_lookups(f.idx, &f.m, &rng, SIZE_MAX);
		check_invariants(f.idx, &f.m);
	}
	/* bm_index_new and the garbage bag fail cleanly too. */
	struct bm_range *whole = mk(0, UINT64_MAX);
	struct bm_index *idx = NULL;
	struct bm_garbage empty = {0};

	bm_index_test_fail_alloc = fail_alloc;
	for (long fail_at = 0;; fail_at++) {
		fail_countdown = fail_at;
		if (!bm_index_new(whole, &idx))
			break;
	}
	bm_index_test_fail_alloc = NULL;
	assert_ptr_equal(bm_index_lookup(idx, 12345), whole);
	bm_index_free(idx);
	bm_index_free(NULL);
	whole = mk(0, UINT64_MAX);
	bm_index_test_fail_alloc = fail_alloc;
	fail_countdown = 0;
	assert_int_equal(bm_garbage_add(&empty, whole), -ENOMEM);
	bm_index_test_fail_alloc = NULL;
	assert_null(empty.ptrs);
	free(whole);
	free(before.v);
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_range), cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_garbage),      cmocka_unit_test(test_differential),
	    cmocka_unit_test(test_spread),       cmocka_unit_test(test_spread_bulk),
	    cmocka_unit_test(test_dense),        cmocka_unit_test(test_top),
	    cmocka_unit_test(test_enomem),
	};

	/* BM_TEST_FILTER=test_dense runs one test only. */
	if (getenv("BM_TEST_FILTER"))
		cmocka_set_test_filter(getenv("BM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
