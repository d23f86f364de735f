/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Where a space shows regions that are not registrations.
 *
 * The layer's probe (a one-byte access at an access's first address) is harmless only on
 * its own regions: on a region a host placed through the core API it would read or write
 * a byte of it. A listener of each space therefore keeps the flat ranges that such
 * regions show, and accesses check them first while there are any. Bhyve hosts rarely
 * place any, so the common check is one relaxed load of a zero count.
 *
 * The listener runs at each publication, after it: an access racing with the placement of
 * a region can still probe it once. The access sees that no handler served it and makes
 * the access whole (bhyve_mem.c, bhyve_inout.c). The same holds if the set could not grow
 * for lack of memory.
 */
#include "bhyve_internal.h"

#include <stdlib.h>
#include <string.h>

/* The index of the first span that starts at or after addr. */
static size_t span_search(const struct bm_bhyve_foreign *f, uint64_t addr)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->v[mid].start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void span_remove(struct bm_bhyve_foreign *f, const struct bm_flat_range *r)
{
	size_t i = span_search(f, r->start);
	if (i == f->n || f->v[i].start != r->start)
		return; /* a registration's range, never kept */
	memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof(*f->v));
	f->n--;
}

static void span_insert(struct bm_bhyve_foreign *f, const struct bm_flat_range *r)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct bm_bhyve_span *v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return; /* the access that finds it makes up for it (see above) */
		f->v = v;
		f->cap = cap;
	}
	size_t i = span_search(f, r->start);
	memmove(&f->v[i + 1], &f->v[i], (f->n - i) * sizeof(*f->v));
	f->v[i] = (struct bm_bhyve_span){r->start, r->last};
	f->n++;
}

/* Runs with the system's writer lock held, so the registrations cannot change under it. */
static void foreign_listener(void *arg, bm_space *space, const struct bm_flat_range *removed,
                             size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)space;
	struct bm_bhyve_space *s = arg;
	struct bm_bhyve_foreign *f = &s->foreign;
	pthread_rwlock_wrlock(&f->lock);
	for (size_t i = 0; i < nremoved; i++)
		span_remove(f, &removed[i]);
	for (size_t i = 0; i < nadded; i++)
		if (!bm_bhyve_regs_owns(&s->regs, added[i].region))
			span_insert(f, &added[i]);
	atomic_store_explicit(&f->count, f->n, memory_order_relaxed);
	pthread_rwlock_unlock(&f->lock);
}

int bm_bhyve_foreign_init(struct bm_bhyve_space *s)
{
	return bm_listener_add(s->space, foreign_listener, s, NULL);
}

void bm_bhyve_foreign_fini(struct bm_bhyve_foreign *f)
{
	pthread_rwlock_destroy(&f->lock);
	free(f->v);
	f->v = NULL;
	f->n = f->cap = 0;
	atomic_store_explicit(&f->count, 0, memory_order_relaxed);
}

bool bm_bhyve_foreign_at(struct bm_bhyve_foreign *f, uint64_t addr, uint64_t *last)
{
	pthread_rwlock_rdlock(&f->lock);
	size_t i = span_search(f, addr);
	/* addr is inside the span that starts at it, or inside the one before. */
	bool found = true;
	if (i < f->n && f->v[i].start == addr)
		*last = f->v[i].last;
	else if (i > 0 && f->v[i - 1].last >= addr)
		*last = f->v[i - 1].last;
	else
		found = false;
	pthread_rwlock_unlock(&f->lock);
	return found;
}
