/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The parser's cursor over a line and the words every statement shares: numbers, PCI
 * addresses, BAR names, ranges and targets, each with its error at the word's column.
 */
#include "parser_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- cursor ---- */

const struct lex_word *p_peek(struct parser *p)
{
	return p->i < p->l->n ? &p->l->w[p->i] : NULL;
}

const struct lex_word *p_next(struct parser *p)
{
	return p->i < p->l->n ? &p->l->w[p->i++] : NULL;
}

/* The column just past the last word, where a missing word would have been. */
static unsigned end_col(const struct parser *p)
{
	if (!p->l->n)
		return 1;
	const struct lex_word *w = &p->l->w[p->l->n - 1];
	return w->col + (unsigned)w->len + (w->quoted ? 2 : 0);
}

int p_fail(struct parser *p, const struct lex_word *w, const char *fmt, ...)
{
	char msg[sizeof(p->err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lex_fail(p->err, p->l->lineno, w ? w->col : end_col(p), "%s", msg);
}

const struct lex_word *p_need(struct parser *p, const char *what)
{
	const struct lex_word *w = p_next(p);
	if (!w)
		p_fail(p, NULL, "expected %s", what);
	return w;
}

bool p_accept(struct parser *p, const char *kw)
{
	const struct lex_word *w = p_peek(p);
	if (w && lex_is(w, kw)) {
		p->i++;
		return true;
	}
	return false;
}

int p_end(struct parser *p)
{
	const struct lex_word *w = p_peek(p);
	if (!w)
		return 0;
	return p_fail(p, w, "unexpected \"%.*s\" (nothing more belongs on this line)",
	              w->len > 40 ? 40 : (int)w->len, w->s);
}

int p_u64(struct parser *p, const struct lex_word *w, uint64_t *v)
{
	return lex_u64(w, p->l->lineno, v, p->err);
}

int p_size(struct parser *p, const struct lex_word *w, uint64_t *v)
{
	return lex_size(w, p->l->lineno, v, p->err);
}

int p_uint(struct parser *p, const struct lex_word *w, uint64_t max, uint64_t *v)
{
	if (p_u64(p, w, v))
		return -1;
	if (*v > max)
		return p_fail(p, w, "%#llx is more than %#llx", (unsigned long long)*v,
		              (unsigned long long)max);
	return 0;
}

/* ---- shared word parsers ---- */

/* Hex field of 1..2 digits ending at one of stop (or the word's end when stop is ""). */
static int hex_field(const char *s, size_t len, size_t *i, const char *stop, unsigned *v)
{
	unsigned x = 0, nd = 0;
	while (*i < len && strchr("0123456789abcdefABCDEF", s[*i]) && nd < 3) {
		char c = s[*i];
		x = x * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		(*i)++;
		nd++;
	}
	if (nd == 0 || nd > 2)
		return -1;
	if (*stop) {
		if (*i >= len || !strchr(stop, s[*i]))
			return -1;
		(*i)++;
	}
	*v = x;
	return 0;
}

int p_bdf(struct parser *p, const struct lex_word *w, struct scn_bdf *out)
{
	unsigned b, d, f;
	size_t i = 0;
	if (w->quoted || hex_field(w->s, w->len, &i, ":", &b) ||
	    hex_field(w->s, w->len, &i, ".", &d) || hex_field(w->s, w->len, &i, "", &f) ||
	    i != w->len)
		return p_fail(p, w, "expected a PCI address BB:DD.F (hexadecimal, e.g. 00:02.0)");
	if (d > 31 || f > 7)
		return p_fail(p, w, "device must be 00..1f and function 0..7");
	*out = (struct scn_bdf){(uint8_t)b, (uint8_t)d, (uint8_t)f};
	return 0;
}

static int bar_index_text(const char *s, size_t len, unsigned *bar)
{
	if (len == 3 && memcmp(s, "rom", 3) == 0) {
		*bar = BM_PCI_ROM;
		return 0;
	}
	if (len == 4 && memcmp(s, "bar", 3) == 0 && s[3] >= '0' && s[3] <= '5') {
		*bar = (unsigned)(s[3] - '0');
		return 0;
	}
	return -1;
}

int p_bar_index(struct parser *p, const struct lex_word *w, unsigned *bar)
{
	if (w->quoted || bar_index_text(w->s, w->len, bar))
		return p_fail(p, w, "expected bar0..bar5 or rom");
	return 0;
}

/* Parses part of a word as a number, with errors at the word. */
static int sub_number(struct parser *p, const struct lex_word *w, size_t off, size_t len, bool size,
                      uint64_t *v)
{
	struct lex_word sub = {.s = w->s + off, .len = len, .col = w->col + (unsigned)off};
	return size ? p_size(p, &sub, v) : p_u64(p, &sub, v);
}

int p_range(struct parser *p, const struct lex_word *w, uint64_t *start, uint64_t *last)
{
	const char *sep = w->quoted ? NULL : memchr(w->s, '-', w->len);
	const char *plus = w->quoted ? NULL : memchr(w->s, '+', w->len);
	const char *at = sep ? sep : plus;
	if (!at || (sep && plus))
		return p_fail(p, w, "expected a range START-LAST or START+SIZE");
	size_t k = (size_t)(at - w->s);
	uint64_t a, b;
	if (sub_number(p, w, 0, k, false, &a) ||
	    sub_number(p, w, k + 1, w->len - k - 1, plus != NULL, &b))
		return -1;
	if (plus) {
		if (b == 0 || b - 1 > UINT64_MAX - a)
			return p_fail(p, w, "the range is empty or passes 2^64");
		b = a + (b - 1);
	}
	if (b < a)
		return p_fail(p, w, "the range ends before it starts");
	*start = a;
	*last = b;
	return 0;
}

const struct scn_device *p_device(struct parser *p, struct scn_bdf bdf)
{
	for (size_t i = 0; i < p->s->n; i++) {
		const struct scn_stmt *st = &p->s->v[i];
		if (st->kind == SCN_DEVICE && st->u.device.bdf.bus == bdf.bus &&
		    st->u.device.bdf.dev == bdf.dev && st->u.device.bdf.fn == bdf.fn)
			return &st->u.device;
	}
	return NULL;
}

static int target_bar(struct parser *p, const struct lex_word *w, const char *slash,
                      struct scn_target *t)
{
	size_t k = (size_t)(slash - w->s);
	struct lex_word head = {.s = w->s, .len = k, .col = w->col};
	if (p_bdf(p, &head, &t->bdf))
		return -1;
	const char *rest = slash + 1;
	size_t rlen = w->len - k - 1;
	const char *plus = memchr(rest, '+', rlen);
	size_t blen = plus ? (size_t)(plus - rest) : rlen;
	if (bar_index_text(rest, blen, &t->bar))
		return p_fail(p, w, "expected BB:DD.F/barN or BB:DD.F/rom, with +OFFSET if wanted");
	if (plus && sub_number(p, w, k + 2 + blen, rlen - blen - 1, false, &t->offset))
		return -1;
	t->has_offset = plus != NULL;
	t->kind = SCN_TGT_BAR;
	if (!p_device(p, t->bdf))
		return p_fail(p, w, "no device was declared at %.*s", (int)k, w->s);
	return 0;
}

int p_target(struct parser *p, const struct lex_word *w, struct scn_target *t)
{
	*t = (struct scn_target){0};
	if (lex_is(w, "unassigned")) {
		t->kind = SCN_TGT_UNASSIGNED;
		return 0;
	}
	const char *slash = w->quoted ? NULL : memchr(w->s, '/', w->len);
	if (slash)
		return target_bar(p, w, slash, t);
	if (w->len >= sizeof(t->region))
		return p_fail(p, w, "region name longer than %zu bytes", sizeof(t->region) - 1);
	t->kind = SCN_TGT_REGION;
	lex_copy(w, t->region, sizeof(t->region));
	return 0;
}

/* ---- formatting ---- */

void scn_bdf_format(struct scn_bdf b, char *buf, size_t size)
{
	snprintf(buf, size, "%02x:%02x.%x", b.bus, b.dev, b.fn);
}

void scn_target_format(const struct scn_target *t, char *buf, size_t size)
{
	char bdf[16];
	switch (t->kind) {
	case SCN_TGT_UNASSIGNED:
		snprintf(buf, size, "unassigned");
		return;
	case SCN_TGT_REGION:
		snprintf(buf, size, "%s", t->region);
		return;
	case SCN_TGT_BAR:
		break;
	}
	scn_bdf_format(t->bdf, bdf, sizeof(bdf));
	char bar[8];
	if (t->bar == BM_PCI_ROM)
		snprintf(bar, sizeof(bar), "rom");
	else
		snprintf(bar, sizeof(bar), "bar%u", t->bar);
	if (t->has_offset)
		snprintf(buf, size, "%s/%s+0x%llx", bdf, bar, (unsigned long long)t->offset);
	else
		snprintf(buf, size, "%s/%s", bdf, bar);
}
