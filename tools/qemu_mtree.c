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
		if (b->io == io && addr >= b->addr && addr - b->addr < b->size &&
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

static int check_line(const struct view *v, const struct qemu_mtree_line *l, const struct piece *p,
                      size_t np, bool io, struct qemu_error *err)
{
	uint64_t s = l->start - v->base, e = l->last - v->base;
	for (size_t i = 0; i < np; i++) {
		if (p[i].last < s || p[i].start > e)
			continue;
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
		bool shown = false;
		for (size_t i = 0; i < v->n && !shown; i++) {
			const struct qemu_mtree_line *l = &v->lines[i];
			shown = in_view(v, l) && !background(v, l) &&
			        l->start - v->base >= p[k].start && l->last - v->base <= p[k].last;
		}
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
