/* SPDX-License-Identifier: BSD-2-Clause */
#include "model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 i128;

uint8_t model_io_byte(uintptr_t id, uint64_t off)
{
	return (uint8_t)((id * 0x9e3779b97f4a7c15u + off * 0xc2b2ae3d27d4eb4fu) >> 56);
}

uint8_t model_ram_byte(uintptr_t id, uint64_t off)
{
	return (uint8_t)(model_io_byte(id, off) ^ 0xa5);
}

/* ------------------------------------------------------------------ vectors */

static void *grow(void *v, size_t *cap, size_t first, size_t elem)
{
	*cap = *cap ? 2 * *cap : first;
	v = realloc(v, *cap * elem);
	if (!v)
		abort();
	return v;
}

void u64_push(struct u64vec *b, uint64_t x)
{
	if (b->n == b->cap)
		b->v = grow(b->v, &b->cap, 256, sizeof(*b->v));
	b->v[b->n++] = x;
}

void rvec_push(struct rvec *a, const struct bm_flat_range *r)
{
	if (a->n == a->cap)
		a->v = grow(a->v, &a->cap, 64, sizeof(*a->v));
	a->v[a->n++] = *r;
}

void cvec_push(struct cvec *a, const struct bm_conflict *c)
{
	if (a->n == a->cap)
		a->v = grow(a->v, &a->cap, 16, sizeof(*a->v));
	a->v[a->n++] = *c;
}

void rvec_copy(struct rvec *dst, const struct rvec *src)
{
	dst->n = 0;
	for (size_t i = 0; i < src->n; i++)
		rvec_push(dst, &src->v[i]);
}

bool range_eq(const struct bm_flat_range *a, const struct bm_flat_range *b)
{
	return a->start == b->start && a->last == b->last && a->region == b->region &&
	       a->offset == b->offset && a->conflict == b->conflict;
}

bool conflict_eq(const struct bm_conflict *a, const struct bm_conflict *b)
{
	return a->start == b->start && a->last == b->last && a->winner == b->winner &&
	       a->loser == b->loser;
}

long rvec_find(const struct rvec *a, uint64_t x)
{
	size_t lo = 0, hi = a->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a->v[mid].last < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n && a->v[lo].start <= x ? (long)lo : -1;
}

bool rvec_has(const struct rvec *a, const struct bm_flat_range *r)
{
	long i = rvec_find(a, r->start);
	return i >= 0 && range_eq(&a->v[i], r);
}

void model_release(struct model *M)
{
	free(M->bps.v);
	free(M->raw.v);
	M->bps = (struct u64vec){0};
	M->raw = (struct cvec){0};
}

/* ------------------------------------------------------------------ the tree */

void model_init_node(struct model *M, int n, enum bm_region_kind kind, uint64_t size)
{
	struct mnode *m = &M->m[n];
	uint8_t *host = m->host;
	uint64_t cap = m->host_cap;
	static const char *const pfx[] = {"io", "ram", "c", "a"};

	memset(m, 0, sizeof(*m));
	m->host = host; /* ram buffers stay with their slot: the caller owns them */
	m->host_cap = cap;
	m->live = true;
	m->kind = kind;
	m->size = size;
	m->parent = -1;
	m->enabled = true;
	m->target = -1;
	m->valid_sizes = BM_ACCESS_ALL;
	m->impl_sizes = BM_ACCESS_ALL;
	m->id = ++M->next_id;
	snprintf(m->name, sizeof(m->name), "%s%u", pfx[kind], (unsigned)m->id);
}

void model_init_root(struct model *M, int n, bm_region *r, const char *name)
{
	struct mnode *m = &M->m[n];
	uint8_t *host = m->host;

	memset(m, 0, sizeof(*m));
	m->host = host;
	m->live = true;
	m->kind = BM_REGION_CONTAINER;
	m->r = r;
	m->size = BM_SIZE_ALL;
	m->parent = -1;
	m->enabled = true;
	m->target = -1;
	snprintf(m->name, sizeof(m->name), "%s", name);
}

int model_slot(const struct model *M, const bm_region *r)
{
	for (int i = 0; r && i < M->maxn; i++)
		if (M->m[i].live && M->m[i].r == r)
			return i;
	return -1;
}

const char *model_rname(const struct model *M, const bm_region *r)
{
	if (!r)
		return "(unassigned)";
	int n = model_slot(M, r);
	return n >= 0 ? M->m[n].name : "(unknown region)";
}

bool model_is_container(const struct model *M, int n)
{
	return M->m[n].kind == BM_REGION_CONTAINER;
}

bool model_reaches(const struct model *M, int a, int b)
{
	if (a == b)
		return true;
	if (M->m[a].kind == BM_REGION_ALIAS)
		return model_reaches(M, M->m[a].target, b);
	if (model_is_container(M, a))
		for (int i = 0; i < M->maxn; i++)
			if (M->m[i].live && M->m[i].parent == a && model_reaches(M, i, b))
				return true;
	return false;
}

bool model_targeted(const struct model *M, int n)
{
	for (int i = 0; i < M->maxn; i++)
		if (M->m[i].live && M->m[i].kind == BM_REGION_ALIAS && M->m[i].target == n)
			return true;
	return false;
}

/* ------------------------------------------------------------------ calls */

uint64_t model_add_errs(const struct model *M, int p, int c, uint64_t off)
{
	uint64_t errs = 0;

	if (!model_is_container(M, p))
		errs |= E_BIT(ENOTDIR);
	if (M->m[c].parent >= 0)
		errs |= E_BIT(EEXIST);
	if (model_reaches(M, c, p))
		errs |= E_BIT(ELOOP);
	if (!model_fits(off, M->m[c].size))
		errs |= E_BIT(ERANGE);
	return errs;
}

uint64_t model_del_errs(const struct model *M, int n)
{
	return M->m[n].parent < 0 ? E_BIT(ENOENT) : 0;
}

uint64_t model_move_errs(const struct model *M, int n, uint64_t off)
{
	uint64_t errs = 0;

	if (M->m[n].parent < 0)
		errs |= E_BIT(ENOENT);
	if (!model_fits(off, M->m[n].size))
		errs |= E_BIT(ERANGE);
	return errs;
}

uint64_t model_resize_errs(const struct model *M, int n, uint64_t size, uint64_t *maybe)
{
	const struct mnode *m = &M->m[n];

	*maybe = 0;
	if (size == 0)
		return E_BIT(EINVAL);
	if (!model_fits(m->offset, size)) {
		/* a parentless region has no documented "current offset": either answer */
		if (m->parent >= 0)
			return E_BIT(ERANGE);
		*maybe = E_BIT(ERANGE);
	}
	return 0;
}

uint64_t model_alias_offset_errs(const struct model *M, int n)
{
	return M->m[n].kind == BM_REGION_ALIAS ? 0 : E_BIT(EINVAL);
}

uint64_t model_destroy_errs(const struct model *M, int n)
{
	return model_targeted(M, n) ? E_BIT(EBUSY) : 0;
}

void model_add(struct model *M, int p, int c, uint64_t off, int prio)
{
	M->m[c].parent = p;
	M->m[c].offset = off;
	M->m[c].priority = prio;
	M->m[c].seq = ++M->seq;
}

void model_del(struct model *M, int n)
{
	M->m[n].parent = -1;
}

void model_move(struct model *M, int n, uint64_t off)
{
	M->m[n].offset = off;
	M->m[n].seq = ++M->seq;
}

void model_destroy(struct model *M, int n)
{
	M->m[n].live = false;
	M->m[n].r = NULL;
	for (int i = 0; i < M->maxn; i++)
		if (M->m[i].live && M->m[i].parent == n)
			M->m[i].parent = -1;
}

/* ------------------------------------------------------------------ rules */

void model_build_kids(struct model *M)
{
	for (int i = 0; i < M->maxn; i++)
		M->m[i].nkids = 0;
	for (int i = 0; i < M->maxn; i++) {
		struct mnode *c = &M->m[i];
		if (!c->live || c->parent < 0 || !c->enabled)
			continue;
		struct mnode *p = &M->m[c->parent];
		/* insertion sort by (priority desc, seq desc): the order in which the rules
		 * let siblings claim an address */
		int k = p->nkids++;
		while (k > 0) {
			const struct mnode *o = &M->m[p->kids[k - 1]];
			if (o->priority > c->priority ||
			    (o->priority == c->priority && o->seq > c->seq))
				break;
			p->kids[k] = p->kids[k - 1];
			k--;
		}
		p->kids[k] = i;
	}
}

/*
 * A disabled region is invisible wherever it is reached from, so a disabled alias target
 * or space root shows nothing, as in QEMU, whose render_memory_region tests enabled on
 * entry for the target of an alias too. The target's own offset plays no part: an alias
 * places its target itself (QEMU subtracts alias->addr before adding it back).
 */
bool model_lookup(const struct model *M, int n, uint64_t x, int *node, uint64_t *off)
{
	const struct mnode *m = &M->m[n];

	if (!m->enabled || x > model_last_rel(m->size))
		return false;
	switch (m->kind) {
	case BM_REGION_IO:
	case BM_REGION_RAM:
		*node = n;
		*off = x;
		return true;
	case BM_REGION_ALIAS:
		if (x > UINT64_MAX - m->alias_offset)
			return false;
		return model_lookup(M, m->target, x + m->alias_offset, node, off);
	case BM_REGION_CONTAINER:
		for (int i = 0; i < m->nkids; i++) {
			const struct mnode *c = &M->m[m->kids[i]];
			if (x >= c->offset && x - c->offset <= model_last_rel(c->size) &&
			    model_lookup(M, m->kids[i], x - c->offset, node, off))
				return true;
		}
		return false;
	}
	return false;
}

/* Every address where what some region shows begins or ends, along every path (aliases
 * show a region at several places): everything is uniform between two of them. */
static void collect_bps(const struct model *M, int n, i128 base, i128 lo, i128 hi, struct u64vec *b)
{
	const struct mnode *m = &M->m[n];
	i128 s = base, e = base + (i128)model_last_rel(m->size);

	if (!m->enabled)
		return;
	if (s < lo)
		s = lo;
	if (e > hi)
		e = hi;
	if (s > e)
		return;
	u64_push(b, (uint64_t)s);
	if (e < (i128)UINT64_MAX)
		u64_push(b, (uint64_t)(e + 1));
	if (m->kind == BM_REGION_CONTAINER)
		for (int i = 0; i < m->nkids; i++)
			collect_bps(M, m->kids[i], base + M->m[m->kids[i]].offset, s, e, b);
	else if (m->kind == BM_REGION_ALIAS)
		collect_bps(M, m->target, base - (i128)m->alias_offset, s, e, b);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted, without duplicates. */
static void breakpoints(struct model *M, int s)
{
	struct u64vec *b = &M->bps;
	size_t k = 0;

	b->n = 0;
	u64_push(b, 0);
	collect_bps(M, s, 0, 0, (i128)UINT64_MAX, b);
	qsort(b->v, b->n, sizeof(*b->v), cmp_u64);
	for (size_t i = 0; i < b->n; i++)
		if (i == 0 || b->v[i] != b->v[i - 1])
			b->v[k++] = b->v[i];
	b->n = k;
}

static bool any_exclusive(const struct model *M)
{
	for (int i = 0; i < M->maxn; i++)
		if (M->m[i].live && M->m[i].exclusive && M->m[i].parent >= 0)
			return true;
	return false;
}

/*
 * Whether region n shows something at x (relative to n), and the exclusive region that owns
 * it: the outermost exclusive subregion on the way down from n, n itself excluded (n's
 * own flag counts where n is some container's subregion), -1 if none.
 */
static bool shows(const struct model *M, int n, uint64_t x, int *excl)
{
	const struct mnode *m = &M->m[n];

	if (!m->enabled || x > model_last_rel(m->size))
		return false;
	switch (m->kind) {
	case BM_REGION_IO:
	case BM_REGION_RAM:
		*excl = -1;
		return true;
	case BM_REGION_ALIAS:
		if (x > UINT64_MAX - m->alias_offset)
			return false;
		return shows(M, m->target, x + m->alias_offset, excl);
	case BM_REGION_CONTAINER:
		for (int i = 0; i < m->nkids; i++) {
			int k = m->kids[i];
			const struct mnode *c = &M->m[k];
			if (x >= c->offset && x - c->offset <= model_last_rel(c->size) &&
			    shows(M, k, x - c->offset, excl)) {
				if (c->exclusive)
					*excl = k;
				return true;
			}
		}
		return false;
	}
	return false;
}

/* Conflicts among the subregions of container n placed at base, over [lo, hi]. */
static void container_conflicts(struct model *M, int n, i128 base, uint64_t lo, uint64_t hi)
{
	const struct mnode *m = &M->m[n];
	const struct u64vec *b = &M->bps;
	size_t i = 0;

	if (m->nkids < 2)
		return;
	while (i < b->n && b->v[i] < lo)
		i++;
	for (; i < b->n && b->v[i] <= hi; i++) {
		uint64_t x = b->v[i];
		uint64_t last = i + 1 < b->n ? b->v[i + 1] - 1 : UINT64_MAX;
		uint64_t local = (uint64_t)((i128)x - base);
		int top = -1, owner[MODEL_MAXN];
		int nown = 0;
		for (int k = 0; k < m->nkids; k++) {
			const struct mnode *c = &M->m[m->kids[k]];
			int ex;
			if (local < c->offset || local - c->offset > model_last_rel(c->size) ||
			    !shows(M, m->kids[k], local - c->offset, &ex))
				continue;
			if (c->exclusive)
				ex = m->kids[k];
			if (ex < 0)
				continue;
			/* kids are in rank order: the first owner found is the top one */
			if (top < 0)
				top = ex;
			else if (ex != top)
				owner[nown++] = ex;
		}
		for (int k = 0; k < nown; k++)
			cvec_push(&M->raw,
			          &(struct bm_conflict){x, last, M->m[top].r, M->m[owner[k]].r});
	}
}

static void walk_conflicts(struct model *M, int n, i128 base, i128 lo, i128 hi)
{
	const struct mnode *m = &M->m[n];
	i128 s = base, e = base + (i128)model_last_rel(m->size);

	if (!m->enabled)
		return;
	if (s < lo)
		s = lo;
	if (e > hi)
		e = hi;
	if (s > e)
		return;
	if (m->kind == BM_REGION_CONTAINER) {
		container_conflicts(M, n, base, (uint64_t)s, (uint64_t)e);
		for (int i = 0; i < m->nkids; i++)
			walk_conflicts(M, m->kids[i], base + M->m[m->kids[i]].offset, s, e);
	} else if (m->kind == BM_REGION_ALIAS) {
		walk_conflicts(M, m->target, base - (i128)m->alias_offset, s, e);
	}
}

static const struct model *sort_model;

static uintptr_t rid(const bm_region *r)
{
	int n = model_slot(sort_model, r);
	return n >= 0 ? sort_model->m[n].id : 0;
}

static int cmp_id(uintptr_t a, uintptr_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_pair(const struct bm_conflict *a, const struct bm_conflict *b)
{
	int c = cmp_id(rid(a->winner), rid(b->winner));
	return c ? c : cmp_id(rid(a->loser), rid(b->loser));
}

static int by_pair(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
	int c = cmp_pair(a, b);
	return c ? c : cmp_id(a->start, b->start);
}

static int by_address(const void *x, const void *y)
{
	const struct bm_conflict *a = x, *b = y;
	int c = cmp_id(a->start, b->start);
	if (!c)
		c = cmp_id(a->last, b->last);
	return c ? c : cmp_pair(a, b);
}

/* Needs the breakpoints of s. */
static void conflicts_of(struct model *M, int s, struct cvec *out)
{
	out->n = 0;
	M->raw.n = 0;
	if (!any_exclusive(M))
		return;
	walk_conflicts(M, s, 0, 0, (i128)UINT64_MAX);
	if (M->raw.n == 0)
		return;
	sort_model = M;
	qsort(M->raw.v, M->raw.n, sizeof(*M->raw.v), by_pair);
	for (size_t i = 0; i < M->raw.n; i++) {
		struct bm_conflict *l = out->n ? &out->v[out->n - 1] : NULL;
		const struct bm_conflict *c = &M->raw.v[i];
		if (l && l->winner == c->winner && l->loser == c->loser && l->last != UINT64_MAX &&
		    l->last + 1 >= c->start) {
			if (c->last > l->last)
				l->last = c->last;
			continue;
		}
		cvec_push(out, c);
	}
	qsort(out->v, out->n, sizeof(*out->v), by_address);
	sort_model = NULL;
}

void model_conflicts(struct model *M, int s, struct cvec *out)
{
	breakpoints(M, s);
	conflicts_of(M, s, out);
}

bool model_in_conflict(const struct cvec *c, uint64_t x)
{
	for (size_t i = 0; i < c->n && c->v[i].start <= x; i++)
		if (x <= c->v[i].last)
			return true;
	return false;
}

void model_view(struct model *M, int s, struct rvec *out, struct u64vec *ids,
                struct cvec *conflicts)
{
	struct cvec local = {0};
	struct cvec *conf = conflicts ? conflicts : &local;
	int node = -1;
	uint64_t off = 0;

	out->n = 0;
	if (ids)
		ids->n = 0;
	breakpoints(M, s);
	conflicts_of(M, s, conf);
	const struct u64vec *b = &M->bps;
	for (size_t i = 0; i < b->n; i++) {
		uint64_t last = i + 1 < b->n ? b->v[i + 1] - 1 : UINT64_MAX;
		if (!model_lookup(M, s, b->v[i], &node, &off))
			continue;
		struct bm_flat_range r = {b->v[i], last, M->m[node].r, off,
		                          conf->n && model_in_conflict(conf, b->v[i])};
		struct bm_flat_range *p = out->n ? &out->v[out->n - 1] : NULL;
		if (p && p->region == r.region && p->last + 1 == r.start &&
		    p->offset + (p->last - p->start) + 1 == r.offset && p->conflict == r.conflict)
			p->last = r.last;
		else {
			rvec_push(out, &r);
			if (ids)
				u64_push(ids, M->m[node].kind == BM_REGION_IO ? M->m[node].id : 0);
		}
	}
	free(local.v);
}

/* ------------------------------------------------------------------ reports */

void model_dump(const struct model *M, FILE *f)
{
	static const char *const kinds[] = {"io", "ram", "container", "alias"};

	for (int i = 0; i < M->maxn; i++) {
		const struct mnode *m = &M->m[i];
		if (!m->live)
			continue;
		fprintf(f,
		        "  %-6s %-9s size %#" PRIx64 " parent %-6s off %#" PRIx64
		        " prio %d %s seq %" PRIu64,
		        m->name, kinds[m->kind], m->size,
		        m->parent >= 0 ? M->m[m->parent].name : "-", m->offset, m->priority,
		        m->enabled ? "on" : "OFF", m->seq);
		if (m->kind == BM_REGION_ALIAS)
			fprintf(f, " -> %s+%#" PRIx64, M->m[m->target].name, m->alias_offset);
		if (m->exclusive)
			fprintf(f, " exclusive");
		if (m->kind == BM_REGION_IO &&
		    (m->valid_sizes != BM_ACCESS_ALL || m->impl_sizes != BM_ACCESS_ALL))
			fprintf(f, " valid %#x impl %#x", m->valid_sizes, m->impl_sizes);
		fprintf(f, "\n");
	}
}

void model_print_rvec(const struct model *M, FILE *f, const char *title, const struct rvec *a)
{
	fprintf(f, "%s (%zu ranges):\n", title, a->n);
	for (size_t i = 0; i < a->n && i < 64; i++)
		fprintf(f, "  [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "%s\n", a->v[i].start,
		        a->v[i].last, model_rname(M, a->v[i].region), a->v[i].offset,
		        a->v[i].conflict ? " conflict" : "");
}

void model_print_cvec(const struct model *M, FILE *f, const char *title, const struct cvec *a)
{
	fprintf(f, "%s (%zu conflicts):\n", title, a->n);
	for (size_t i = 0; i < a->n && i < 64; i++)
		fprintf(f, "  [%#" PRIx64 ", %#" PRIx64 "] %s hides %s\n", a->v[i].start,
		        a->v[i].last, model_rname(M, a->v[i].winner),
		        model_rname(M, a->v[i].loser));
}

static void bad_set(char *bad, size_t len, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad_set(char *bad, size_t len, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (bad[0])
		return;
	k = snprintf(bad, len, "%s", prefix);
	if (k < 0 || (size_t)k >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(bad + k, len - (size_t)k, fmt, ap);
	va_end(ap);
}

void model_listener_apply(const struct model *M, struct rvec *c,
                          const struct bm_flat_range *removed, size_t nremoved,
                          const struct bm_flat_range *added, size_t nadded, char *bad,
                          size_t badlen, const char *prefix)
{
	for (size_t i = 0; i < nremoved; i++) {
		long k = rvec_find(c, removed[i].start);
		if (k < 0 || !range_eq(&c->v[k], &removed[i])) {
			bad_set(bad, badlen, prefix,
			        "removed [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64
			        " (event %zu of %zu removed, %zu added), which the listener never "
			        "saw added",
			        removed[i].start, removed[i].last,
			        model_rname(M, removed[i].region), removed[i].offset, i, nremoved,
			        nadded);
			continue;
		}
		memmove(&c->v[k], &c->v[k + 1], (c->n - (size_t)k - 1) * sizeof(*c->v));
		c->n--;
	}
	for (size_t i = 0; i < nadded; i++) {
		const struct bm_flat_range *r = &added[i];
		size_t k = 0;
		while (k < c->n && c->v[k].start < r->start)
			k++;
		if (r->start > r->last || (k > 0 && c->v[k - 1].last >= r->start) ||
		    (k < c->n && c->v[k].start <= r->last)) {
			bad_set(bad, badlen, prefix,
			        "added [%#" PRIx64 ", %#" PRIx64
			        "] %s overlaps a range still present",
			        r->start, r->last, model_rname(M, r->region));
			continue;
		}
		rvec_push(c, r);
		memmove(&c->v[k + 1], &c->v[k], (c->n - k - 1) * sizeof(*c->v));
		c->v[k] = *r;
	}
}
