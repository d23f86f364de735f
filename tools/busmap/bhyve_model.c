/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The registry keeps disjoint ranges, as bhyve's red-black tree does (its comparison calls
 * overlapping ranges equal, so an overlapping insert finds a "duplicate"); a flat array is
 * enough for the handful of BARs a demonstration has.
 */
#include "bhyve_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long find(const struct bhyve_model *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->v[i].base && addr - m->v[i].base < m->v[i].size)
			return (long)i;
	return -1;
}

static bool overlaps_any(const struct bhyve_model *m, uint64_t base, uint64_t size)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct bhyve_range *r = &m->v[i];
		if (base < r->base + r->size && r->base < base + size)
			return true;
	}
	return false;
}

int bhyve_register(struct bhyve_model *m, const char *owner, const char *name, uint64_t base,
                   uint64_t size, enum bhyve_outcome *out)
{
	if (m->aborted) {
		*out = BHYVE_DEAD;
		return 0;
	}
	if (find(m, base) >= 0) {
		m->lost++;
		*out = BHYVE_NOT_INSERTED;
		return 0;
	}
	if (overlaps_any(m, base, size)) {
		m->aborted = true;
		*out = BHYVE_EEXIST;
		return 0;
	}
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 8;
		struct bhyve_range *v = realloc(m->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = ncap;
	}
	struct bhyve_range *r = &m->v[m->n++];
	*r = (struct bhyve_range){.base = base, .size = size};
	snprintf(r->owner, sizeof(r->owner), "%s", owner);
	snprintf(r->name, sizeof(r->name), "%s", name);
	*out = BHYVE_OK;
	return 0;
}

int bhyve_unregister(struct bhyve_model *m, const char *owner, const char *name, uint64_t base,
                     uint64_t size, enum bhyve_outcome *out, struct bhyve_range *found)
{
	(void)name;
	*found = (struct bhyve_range){0};
	if (m->aborted) {
		*out = BHYVE_DEAD;
		return 0;
	}
	long i = find(m, base);
	if (i < 0) {
		m->aborted = true;
		*out = BHYVE_ENOENT;
		return 0;
	}
	*found = m->v[i];
	if (strcmp(m->v[i].owner, owner) != 0 || m->v[i].base != base || m->v[i].size != size) {
		m->aborted = true;
		*out = BHYVE_MISMATCH;
		return 0;
	}
	m->v[i] = m->v[--m->n];
	*out = BHYVE_OK;
	return 0;
}

const struct bhyve_range *bhyve_lookup(const struct bhyve_model *m, uint64_t addr)
{
	if (m->aborted)
		return NULL;
	long i = find(m, addr);
	return i >= 0 ? &m->v[i] : NULL;
}

void bhyve_model_free(struct bhyve_model *m)
{
	free(m->v);
	*m = (struct bhyve_model){0};
}
