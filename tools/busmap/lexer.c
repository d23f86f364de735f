/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Lines and words of scenario text. Everything is checked byte by byte so that a file of
 * random bytes ends in a message with a line and column, never in a crash or an unbounded
 * allocation.
 */
#include "lexer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int lex_fail(struct lex_error *err, unsigned line, unsigned col, const char *fmt, ...)
{
	if (!err)
		return -1;
	err->line = line;
	err->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int lex_read_file(FILE *f, struct lex_text *t)
{
	*t = (struct lex_text){0};
	size_t cap = 0;
	for (;;) {
		if (t->len == cap) {
			if (cap >= LEX_MAX_FILE) {
				/* One byte past the limit tells a full file from a long one. */
				if (fgetc(f) == EOF && !ferror(f))
					break;
				lex_text_free(t);
				return -EFBIG;
			}
			size_t ncap = cap ? cap * 2 : 4096;
			if (ncap > LEX_MAX_FILE)
				ncap = LEX_MAX_FILE;
			char *nb = realloc(t->buf, ncap + 1);
			if (!nb) {
				lex_text_free(t);
				return -ENOMEM;
			}
			t->buf = nb;
			cap = ncap;
		}
		size_t got = fread(t->buf + t->len, 1, cap - t->len, f);
		t->len += got;
		if (got == 0) {
			if (ferror(f)) {
				lex_text_free(t);
				return -EIO;
			}
			break;
		}
	}
	if (!t->buf) {
		t->buf = malloc(1);
		if (!t->buf)
			return -ENOMEM;
	}
	t->buf[t->len] = '\0';
	return 0;
}

int lex_from_string(const char *s, size_t len, struct lex_text *t)
{
	*t = (struct lex_text){0};
	if (len > LEX_MAX_FILE)
		return -EFBIG;
	t->buf = malloc(len + 1);
	if (!t->buf)
		return -ENOMEM;
	memcpy(t->buf, s, len);
	t->buf[len] = '\0';
	t->len = len;
	return 0;
}

void lex_text_free(struct lex_text *t)
{
	free(t->buf);
	*t = (struct lex_text){0};
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_word_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#' && c != '"';
}

static int bad_byte(struct lex_error *err, unsigned line, size_t i, unsigned char c)
{
	if (c == 0)
		return lex_fail(err, line, (unsigned)i + 1, "NUL byte in the text");
	return lex_fail(err, line, (unsigned)i + 1,
	                "unexpected byte 0x%02x (scenarios are plain ASCII text)", c);
}

/* Checks a comment: anything but NUL and other control bytes (UTF-8 is fine there). */
static int check_comment(const char *s, size_t i, size_t n, unsigned line, struct lex_error *err)
{
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return bad_byte(err, line, i, c);
	}
	return 0;
}

static int push_word(struct lex_line *l, const char *s, size_t len, unsigned col, bool quoted,
                     struct lex_error *err)
{
	if (l->n == LEX_MAX_WORDS)
		return lex_fail(err, l->lineno, col, "more than %d words on one line",
		                LEX_MAX_WORDS);
	l->w[l->n++] = (struct lex_word){.s = s, .len = len, .col = col, .quoted = quoted};
	return 0;
}

/* A quoted word starting at s[i] == '"'; *end is set past the closing quote. */
static int quoted_word(struct lex_line *l, const char *s, size_t i, size_t n, size_t *end,
                       struct lex_error *err)
{
	size_t j = i + 1;
	while (j < n && s[j] != '"') {
		unsigned char c = (unsigned char)s[j];
		if (c < 0x20 || c >= 0x7f)
			return bad_byte(err, l->lineno, j, c);
		if (c == '\\') {
			if (j + 1 >= n || (s[j + 1] != '"' && s[j + 1] != '\\'))
				return lex_fail(err, l->lineno, (unsigned)j + 1,
				                "only \\\" and \\\\ may follow a backslash");
			j++;
		}
		j++;
	}
	if (j >= n)
		return lex_fail(err, l->lineno, (unsigned)i + 1, "unterminated quoted text");
	if (j + 1 < n && !is_blank(s[j + 1]) && s[j + 1] != '#')
		return lex_fail(err, l->lineno, (unsigned)j + 2,
		                "a blank must follow the closing quote");
	*end = j + 1;
	return push_word(l, s + i + 1, j - i - 1, (unsigned)i + 1, true, err);
}

static bool arrow_at(const char *s, size_t i, size_t n)
{
	return i + 1 < n && ((s[i] == '<' && s[i + 1] == '-') || (s[i] == '-' && s[i + 1] == '>'));
}

/* A plain word starting at s[i]; "<-" and "->" are cut out as words of their own. */
static int plain_word(struct lex_line *l, const char *s, size_t i, size_t n, size_t *end,
                      struct lex_error *err)
{
	if (arrow_at(s, i, n)) {
		*end = i + 2;
		return push_word(l, s + i, 2, (unsigned)i + 1, false, err);
	}
	size_t j = i;
	while (j < n && is_word_byte((unsigned char)s[j]) && !arrow_at(s, j, n))
		j++;
	if (j < n && s[j] == '"')
		return lex_fail(err, l->lineno, (unsigned)j + 1, "a quote inside a word");
	if (j < n && !is_blank(s[j]) && s[j] != '#' && !arrow_at(s, j, n))
		return bad_byte(err, l->lineno, j, (unsigned char)s[j]);
	*end = j;
	return push_word(l, s + i, j - i, (unsigned)i + 1, false, err);
}

static int split_line(struct lex_line *l, const char *s, size_t n, struct lex_error *err)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (is_blank((char)c)) {
			i++;
			continue;
		}
		if (c == '#')
			return check_comment(s, i, n, l->lineno, err);
		int r =
		    c == '"' ? quoted_word(l, s, i, n, &i, err) : plain_word(l, s, i, n, &i, err);
		if (r)
			return r;
	}
	return 0;
}

int lex_next_line(struct lex_text *t, struct lex_line *line, struct lex_error *err)
{
	if (t->pos >= t->len)
		return 0;
	const char *s = t->buf + t->pos;
	size_t rest = t->len - t->pos;
	const char *nl = memchr(s, '\n', rest);
	size_t n = nl ? (size_t)(nl - s) : rest;
	t->pos += nl ? n + 1 : n;
	line->lineno = ++t->lineno;
	line->n = 0;
	if (n > LEX_MAX_LINE)
		return lex_fail(err, line->lineno, LEX_MAX_LINE + 1, "line longer than %d bytes",
		                LEX_MAX_LINE);
	if (n && s[n - 1] == '\r')
		n--;
	return split_line(line, s, n, err) ? -1 : 1;
}

bool lex_is(const struct lex_word *w, const char *text)
{
	size_t n = strlen(text);
	return !w->quoted && w->len == n && memcmp(w->s, text, n) == 0;
}

/* Escapes are resolved as the word is copied; out receives at most size - 1 bytes. */
static size_t unescape(const struct lex_word *w, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < w->len && o + 1 < size; i++) {
		if (w->quoted && w->s[i] == '\\' && i + 1 < w->len)
			i++;
		out[o++] = w->s[i];
	}
	if (size)
		out[o] = '\0';
	return o;
}

char *lex_strdup(const struct lex_word *w)
{
	char *p = malloc(w->len + 1);
	if (p)
		unescape(w, p, w->len + 1);
	return p;
}

void lex_copy(const struct lex_word *w, char *buf, size_t size)
{
	unescape(w, buf, size);
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses s[0..len) as a number; returns 0, -1 (not a number) or -2 (too large). */
static int parse_number(const char *s, size_t len, uint64_t *v)
{
	unsigned base = 10;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (!len)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		int d = digit_value(s[i]);
		if (d < 0 || (unsigned)d >= base)
			return -1;
		if (x > (UINT64_MAX - (unsigned)d) / base)
			return -2;
		x = x * base + (unsigned)d;
	}
	*v = x;
	return 0;
}

static int number_error(const struct lex_word *w, unsigned line, int r, const char *what,
                        struct lex_error *err)
{
	int shown = w->len > 40 ? 40 : (int)w->len;
	if (r == -2)
		return lex_fail(err, line, w->col, "%.*s%s does not fit in 64 bits", shown, w->s,
		                shown < (int)w->len ? "..." : "");
	return lex_fail(err, line, w->col, "expected %s, found \"%.*s%s\"", what, shown, w->s,
	                shown < (int)w->len ? "..." : "");
}

int lex_u64(const struct lex_word *w, unsigned line, uint64_t *v, struct lex_error *err)
{
	int r = w->quoted ? -1 : parse_number(w->s, w->len, v);
	return r ? number_error(w, line, r, "a number (decimal or 0x...)", err) : 0;
}

int lex_size(const struct lex_word *w, unsigned line, uint64_t *v, struct lex_error *err)
{
	static const char units[] = "KMGT";
	size_t len = w->len;
	unsigned shift = 0;
	const char *u = len ? strchr(units, w->s[len - 1]) : NULL;
	/* A hexadecimal number may end in what looks like a unit only if it is not hex. */
	if (u && *u && !(len > 2 && w->s[0] == '0' && (w->s[1] == 'x' || w->s[1] == 'X'))) {
		shift = 10 * (unsigned)(u - units + 1);
		len--;
	}
	uint64_t x = 0;
	int r = w->quoted ? -1 : parse_number(w->s, len, &x);
	if (!r && shift && x > (UINT64_MAX >> shift))
		r = -2;
	if (r)
		return number_error(w, line, r, "a size (64, 0x40, 4K, 1M, 2G...)", err);
	*v = x << shift;
	return 0;
}
