/* SPDX-License-Identifier: BSD-2-Clause */
#include "qemu_mtree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void qemu_mtree_free(struct qemu_mtree *m)
{
	if (!m)
		return;
	free(m->mem);
	free(m->io);
	memset(m, 0, sizeof(*m));
}

static bool parse_hex64(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	for (; **p; (*p)++) {
		char ch = **p;
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
		                                 : -1;
		if (d < 0)
			break;
		if (v >> 60)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return *p != s;
}

static bool is_hex_digit(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* "  START-LAST (prio P, KIND): NAME[ @OFFSET]" */
static bool parse_range_line(const char *s, struct qemu_mtree_line *l)
{
	const char *p = s + 2;
	if (!parse_hex64(&p, &l->start) || *p++ != '-' || !parse_hex64(&p, &l->last) ||
	    l->last < l->start || strncmp(p, " (prio ", 7) != 0)
		return false;
	p += 7;
	char *end;
	long prio = strtol(p, &end, 10);
	if (end == p || prio < -(1L << 30) || prio > (1L << 30))
		return false;
	l->priority = (int)prio;
	p = strstr(end, "): ");
	if (!p)
		return false;
	p += 3;
	size_t len = strlen(p);
	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	const char *at = NULL;
	for (size_t i = len; i >= 2; i--) {
		if (p[i - 2] == ' ' && p[i - 1] == '@') {
			at = p + i;
			break;
		}
	}
	l->has_offset = false;
	if (at) {
		const char *q = at;
		if (parse_hex64(&q, &l->offset) && q == p + len) {
			l->has_offset = true;
			len = (size_t)(at - 2 - p);
		}
	}
	if (len >= sizeof(l->name))
		len = sizeof(l->name) - 1;
	memcpy(l->name, p, len);
	l->name[len] = '\0';
	return true;
}

/* The array doubles whenever its length reaches a power of two. */
static int push_line(struct qemu_mtree_line **v, size_t *n, const struct qemu_mtree_line *l)
{
	if ((*n & (*n - 1)) == 0) {
		struct qemu_mtree_line *nv = realloc(*v, (*n ? 2 * *n : 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
	}
	(*v)[(*n)++] = *l;
	return 0;
}

static void find_io_window(struct qemu_mtree *m)
{
	for (size_t i = 0; i < m->nmem; i++) {
		const struct qemu_mtree_line *l = &m->mem[i];
		if (strcmp(l->name, "gpex_ioport_window") != 0)
			continue;
		if (!m->io_in_mem)
			m->io_base = l->start - (l->has_offset ? l->offset : 0);
		m->io_in_mem = true;
		m->io_last = l->last;
	}
}

int qemu_mtree_parse(FILE *in, struct qemu_mtree *out, struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!in || !out)
		return qemu_error_set(err, 0, -EINVAL, "no stream or no result");
	memset(out, 0, sizeof(*out));
	char buf[4096];
	unsigned line = 0;
	bool is_mem = false, is_io = false, have_mem = false;
	int ret = 0;
	while (!ret && fgets(buf, sizeof(buf), in)) {
		line++;
		if (!strchr(buf, '\n') && !feof(in))
			ret = qemu_error_set(err, line, -EBADMSG, "line longer than %zu bytes",
			                     sizeof(buf) - 2);
		else if (strncmp(buf, "FlatView #", 10) == 0)
			is_mem = is_io = false;
		else if (strncmp(buf, " AS \"memory\",", 13) == 0)
			is_mem = have_mem = true;
		else if (strncmp(buf, " AS \"I/O\",", 10) == 0)
			is_io = true;
		else if (buf[0] == ' ' && buf[1] == ' ' && is_hex_digit(buf[2])) {
			struct qemu_mtree_line l = {.line = line};
			if (!parse_range_line(buf, &l))
				ret = qemu_error_set(err, line, -EBADMSG,
				                     "not a flat view range line");
			if (!ret && is_mem)
				ret = push_line(&out->mem, &out->nmem, &l);
			if (!ret && is_io)
				ret = push_line(&out->io, &out->nio, &l);
			if (ret == -ENOMEM)
				qemu_error_set(err, line, ret, "out of memory");
		}
	}
	if (!ret && ferror(in))
		ret = qemu_error_set(err, line, -EIO, "read error");
	if (!ret && !have_mem)
		ret = qemu_error_set(err, line, -EBADMSG,
		                     "no flat view of the address space \"memory\"");
	if (ret) {
		qemu_mtree_free(out);
		return ret;
	}
	find_io_window(out);
	return 0;
}

/* The part of each BAR that no newer BAR hides. */
struct piece {
	uint64_t start, last;
	const struct qemu_replay_bar *bar;
};

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static const struct qemu_replay_bar *owner_at(const struct qemu_replay_bar *bars, size_t n, bool io,
                                              uint64_t addr)
{
	const struct qemu_replay_bar *best = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct qemu_replay_bar *b = &bars[i];
		if (b->io == io && !b->hollow && addr >= b->addr && addr - b->addr < b->size &&
		    (!best || b->order > best->order))
			best = b;
	}
	return best;
}

static int visible_pieces(const struct qemu_replay_bar *bars, size_t n, bool io, struct piece **out,
                          size_t *count)
{
	uint64_t *pts = malloc((2 * n + 1) * sizeof(*pts));
	struct piece *pieces = malloc((2 * n + 1) * sizeof(*pieces));
	if (!pts || !pieces) {
		free(pts);
		free(pieces);
		return -ENOMEM;
	}
	size_t np = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		if (bars[i].io != io)
			continue;
		pts[np++] = bars[i].addr;
		uint64_t last = bars[i].addr + (bars[i].size - 1);
		if (last != UINT64_MAX)
			pts[np++] = last + 1;
	}
	qsort(pts, np, sizeof(*pts), compare_u64);
	for (size_t i = 0; i < np; i++) {
		if (i + 1 < np && pts[i + 1] == pts[i])
			continue;
		const struct qemu_replay_bar *o = owner_at(bars, n, io, pts[i]);
		if (!o)
			continue;
		size_t j = i + 1;
		while (j < np && pts[j] == pts[i])
			j++;
		uint64_t last = j < np ? pts[j] - 1 : UINT64_MAX;
		if (k && pieces[k - 1].bar == o && pieces[k - 1].last + 1 == pts[i])
			pieces[k - 1].last = last;
		else
			pieces[k++] = (struct piece){.start = pts[i], .last = last, .bar = o};
	}
	free(pts);
	*out = pieces;
	*count = k;
	return 0;
}

/* The lines of one space, in bus addresses. */
struct view {
	const struct qemu_mtree_line *lines;
	size_t n;
	uint64_t base, lo, hi; /* lines within [lo, hi] of the view, minus base... */
	bool exclude;
	uint64_t xlo, xhi; /* ...that do not lie within [xlo, xhi] */
};

static bool in_view(const struct view *v, const struct qemu_mtree_line *l)
{
	if (v->exclude && l->start >= v->xlo && l->last <= v->xhi)
		return false;
	return l->start >= v->lo && l->last <= v->hi;
}

static bool background(const struct view *v, const struct qemu_mtree_line *l)
{
	return l->has_offset && l->offset == l->start - v->base;
}

static const char *space_name(bool io)
{
	return io ? "I/O" : "memory";
}

/* QEMU's names for the MSI-X regions, per part; a BAR's own contents have any other. */
static const char *const part_names[] = {NULL, "msix-table", "msix-pba"};

static bool names_part(const char *name, enum qemu_replay_part part)
{
	if (part != QEMU_REPLAY_PART_BAR)
		return strcmp(name, part_names[part]) == 0;
	return strcmp(name, part_names[QEMU_REPLAY_PART_MSIX_TABLE]) != 0 &&
	       strcmp(name, part_names[QEMU_REPLAY_PART_MSIX_PBA]) != 0;
}

static const char *part_name(enum qemu_replay_part part)
{
	return part == QEMU_REPLAY_PART_BAR ? "its contents" : part_names[part];
}

static int check_line(const struct view *v, const struct qemu_mtree_line *l, const struct piece *p,
                      size_t np, bool io, struct qemu_error *err)
{
	uint64_t s = l->start - v->base, e = l->last - v->base;
	for (size_t i = 0; i < np; i++) {
		if (p[i].last < s || p[i].start > e)
			continue;
		if (s >= p[i].start && e <= p[i].last && !names_part(l->name, p[i].bar->part))
			return qemu_error_set(
			    err, l->line, -EDOM,
			    "%s %s [0x%llx-0x%llx] is where busmap shows %s of %02x:%02x.%x BAR%u",
			    space_name(io), l->name, (unsigned long long)s, (unsigned long long)e,
			    part_name(p[i].bar->part), QEMU_TRACE_BUS(p[i].bar->bdf),
			    QEMU_TRACE_DEV(p[i].bar->bdf), QEMU_TRACE_FN(p[i].bar->bdf),
			    p[i].bar->bar);
		if (s >= p[i].start && e <= p[i].last)
			return 0;
		return qemu_error_set(
		    err, l->line, -EDOM,
		    "%s %s [0x%llx-0x%llx] crosses the edge of %02x:%02x.%x BAR%u, visible "
		    "at [0x%llx-0x%llx]",
		    space_name(io), l->name, (unsigned long long)s, (unsigned long long)e,
		    QEMU_TRACE_BUS(p[i].bar->bdf), QEMU_TRACE_DEV(p[i].bar->bdf),
		    QEMU_TRACE_FN(p[i].bar->bdf), p[i].bar->bar, (unsigned long long)p[i].start,
		    (unsigned long long)p[i].last);
	}
	return 1; /* outside every BAR */
}

static bool name_inside(const struct view *v, const struct piece *p, size_t np, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct qemu_mtree_line *l = &v->lines[i];
		if (!in_view(v, l) || background(v, l) || strcmp(l->name, name) != 0)
			continue;
		for (size_t k = 0; k < np; k++)
			if (l->start - v->base >= p[k].start && l->last - v->base <= p[k].last)
				return true;
	}
	return false;
}

static int compare_view(const struct view *v, const struct piece *p, size_t np, bool io,
                        struct qemu_error *err)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct qemu_mtree_line *l = &v->lines[i];
		if (!in_view(v, l) || background(v, l))
			continue;
		int ret = check_line(v, l, p, np, io, err);
		if (ret < 0)
			return ret;
		if (ret > 0 && name_inside(v, p, np, l->name))
			return qemu_error_set(
			    err, l->line, -EDOM,
			    "%s %s [0x%llx-0x%llx] is a BAR's region outside every BAR mapped",
			    space_name(io), l->name, (unsigned long long)(l->start - v->base),
			    (unsigned long long)(l->last - v->base));
	}
	for (size_t k = 0; k < np; k++) {
		/* An MSI-X part is one region without subregions: QEMU shows what is visible of
		 * it as one line (the flat view joins the pieces of a region that touch). */
		bool whole = p[k].bar->part != QEMU_REPLAY_PART_BAR, shown = false;
		/* A BAR's contents may show through its MSI-X parts in pieces, one of which may
		 * be a gap of its own region: one line in any of them is enough. */
		for (size_t j = 0; j < np && !shown; j++) {
			if (whole ? j != k : p[j].bar != p[k].bar)
				continue;
			for (size_t i = 0; i < v->n && !shown; i++) {
				const struct qemu_mtree_line *l = &v->lines[i];
				uint64_t s = l->start - v->base, e = l->last - v->base;
				shown = in_view(v, l) && !background(v, l) &&
				        (whole ? s == p[j].start && e == p[j].last
				               : s >= p[j].start && e <= p[j].last);
			}
		}
		if (!shown && whole)
			return qemu_error_set(
			    err, 0, -EDOM,
			    "%s: %s of %02x:%02x.%x BAR%u, visible at [0x%llx-0x%llx], is not one "
			    "line of QEMU's",
			    space_name(io), part_name(p[k].bar->part),
			    QEMU_TRACE_BUS(p[k].bar->bdf), QEMU_TRACE_DEV(p[k].bar->bdf),
			    QEMU_TRACE_FN(p[k].bar->bdf), p[k].bar->bar,
			    (unsigned long long)p[k].start, (unsigned long long)p[k].last);
		if (!shown)
			return qemu_error_set(
			    err, 0, -EDOM,
			    "%s: %02x:%02x.%x BAR%u, visible at [0x%llx-0x%llx], shows nothing",
			    space_name(io), QEMU_TRACE_BUS(p[k].bar->bdf),
			    QEMU_TRACE_DEV(p[k].bar->bdf), QEMU_TRACE_FN(p[k].bar->bdf),
			    p[k].bar->bar, (unsigned long long)p[k].start,
			    (unsigned long long)p[k].last);
	}
	return 0;
}

static void make_views(const struct qemu_mtree *m, struct view *mem, struct view *io)
{
	*mem = (struct view){.lines = m->mem, .n = m->nmem, .hi = UINT64_MAX};
	*io = (struct view){.lines = m->io, .n = m->nio, .hi = UINT64_MAX};
	if (!m->io_in_mem)
		return;
	*io = (struct view){
	    .lines = m->mem, .n = m->nmem, .base = m->io_base, .lo = m->io_base, .hi = m->io_last};
	/* The memory view then leaves the I/O window out: those lines are ports. */
	mem->exclude = true;
	mem->xlo = m->io_base;
	mem->xhi = m->io_last;
}

int qemu_mtree_compare(const struct qemu_mtree *m, const struct qemu_replay_bar *bars, size_t n,
                       struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!m || (n && !bars))
		return qemu_error_set(err, 0, -EINVAL, "nothing to compare");
	struct view views[2];
	make_views(m, &views[0], &views[1]);
	for (int io = 0; io < 2; io++) {
		struct piece *p;
		size_t np;
		if (visible_pieces(bars, n, io, &p, &np))
			return qemu_error_set(err, 0, -ENOMEM, "out of memory");
		int ret = compare_view(&views[io], p, np, io, err);
		free(p);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- MSI-X layouts from the region tree ---- */

#define TREE_DEPTH 64

struct tree_entry {
	unsigned indent;
	struct qemu_mtree_line l;
	size_t others; /* children that are not MSI-X parts */
	long hint;     /* the hint this region holds the parts of, or -1 */
};

struct hints {
	struct qemu_replay_msix_hint *v;
	size_t n, cap;
};

static long hint_for(struct hints *h, const struct qemu_mtree_line *owner)
{
	uint64_t size = owner->last - owner->start + 1;
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].addr == owner->start && h->v[i].size == size &&
		    strcmp(h->v[i].owner, owner->name) == 0)
			return (long)i;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 8;
		struct qemu_replay_msix_hint *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	struct qemu_replay_msix_hint *n = &h->v[h->n];
	memset(n, 0, sizeof(*n));
	snprintf(n->owner, sizeof(n->owner), "%s", owner->name);
	n->addr = owner->start;
	n->size = size;
	n->exclusive = true;
	return (long)h->n++;
}

static void pop_to(struct hints *h, struct tree_entry *stack, size_t *depth, unsigned indent)
{
	while (*depth && stack[*depth - 1].indent >= indent) {
		struct tree_entry *t = &stack[--*depth];
		if (t->hint >= 0 && t->others)
			h->v[t->hint].exclusive = false;
	}
}

/* One region line of the tree; -ENOMEM or 0. */
static int tree_line(struct hints *h, struct tree_entry *stack, size_t *depth, unsigned indent,
                     const struct qemu_mtree_line *l)
{
	pop_to(h, stack, depth, indent);
	bool table = strcmp(l->name, "msix-table") == 0, pba = strcmp(l->name, "msix-pba") == 0;
	struct tree_entry *parent = *depth ? &stack[*depth - 1] : NULL;
	if (parent && (table || pba) && l->start >= parent->l.start) {
		if (parent->hint < 0)
			parent->hint = hint_for(h, &parent->l);
		if (parent->hint < 0)
			return -ENOMEM;
		struct qemu_replay_msix_hint *x = &h->v[parent->hint];
		uint64_t off = l->start - parent->l.start, size = l->last - l->start + 1;
		if (table) {
			x->table_offset = off;
			x->table_size = size;
		} else {
			x->pba_offset = off;
			x->pba_size = size;
		}
	} else if (parent) {
		parent->others++;
	}
	if (*depth < TREE_DEPTH)
		stack[(*depth)++] = (struct tree_entry){.indent = indent, .l = *l, .hint = -1};
	return 0;
}

int qemu_mtree_msix_hints(FILE *in, struct qemu_replay_msix_hint **out, size_t *count,
                          struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!in || !out || !count)
		return qemu_error_set(err, 0, -EINVAL, "no stream or no result");
	*out = NULL;
	*count = 0;
	struct hints h = {0};
	struct tree_entry *stack = malloc(TREE_DEPTH * sizeof(*stack));
	if (!stack)
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	size_t depth = 0;
	char buf[4096];
	unsigned line = 0;
	int ret = 0;
	while (!ret && fgets(buf, sizeof(buf), in)) {
		line++;
		unsigned indent = (unsigned)strspn(buf, " ");
		struct qemu_mtree_line l = {.line = line};
		if (!strchr(buf, '\n') && !feof(in))
			ret = qemu_error_set(err, line, -EBADMSG, "line longer than %zu bytes",
			                     sizeof(buf) - 2);
		else if (indent < 2 || !is_hex_digit(buf[indent]))
			pop_to(&h, stack, &depth, 0); /* a new tree, or none */
		else if (parse_range_line(buf + indent - 2, &l) &&
		         tree_line(&h, stack, &depth, indent, &l))
			ret = qemu_error_set(err, line, -ENOMEM, "out of memory");
	}
	if (!ret && ferror(in))
		ret = qemu_error_set(err, line, -EIO, "read error");
	pop_to(&h, stack, &depth, 0);
	free(stack);
	if (ret) {
		free(h.v);
		return ret;
	}
	*out = h.v;
	*count = h.n;
	return 0;
}
