/* SPDX-License-Identifier: BSD-2-Clause */
#include "qemu_trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_LINE   (1u << 20)
#define DEFAULT_MAX_EVENTS (8u << 20)
#define DEFAULT_MAX_TEXT   (256u << 20)
#define CONFIG_SPACE_SIZE  4096u
#define STORE_CHUNK        (64u << 10)

/* ---- text storage: names are interned, console text is appended ---- */

struct chunk {
	struct chunk *next;
	size_t used, size;
	char data[];
};

struct interned {
	const char *text;
	size_t len;
	uint64_t hash;
};

struct qemu_trace_store {
	struct chunk *chunks;
	size_t total, max_total;
	struct interned *table; /* open addressing, power-of-two size */
	size_t table_size, table_used;
};

static struct qemu_trace_store *store_new(size_t max_total)
{
	struct qemu_trace_store *s = calloc(1, sizeof(*s));
	if (s)
		s->max_total = max_total;
	return s;
}

static void store_free(struct qemu_trace_store *s)
{
	if (!s)
		return;
	while (s->chunks) {
		struct chunk *c = s->chunks;
		s->chunks = c->next;
		free(c);
	}
	free(s->table);
	free(s);
}

static int store_copy(struct qemu_trace_store *s, const char *text, size_t len, const char **out)
{
	if (len + 1 > s->max_total - s->total)
		return -EFBIG;
	struct chunk *c = s->chunks;
	if (!c || c->size - c->used < len + 1) {
		size_t size = len + 1 > STORE_CHUNK ? len + 1 : STORE_CHUNK;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return -ENOMEM;
		c->used = 0;
		c->size = size;
		c->next = s->chunks;
		s->chunks = c;
	}
	char *dst = c->data + c->used;
	memcpy(dst, text, len);
	dst[len] = '\0';
	c->used += len + 1;
	s->total += len + 1;
	*out = dst;
	return 0;
}

static uint64_t hash_text(const char *text, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 0x100000001b3u;
	return h;
}

static int store_grow_table(struct qemu_trace_store *s)
{
	size_t size = s->table_size ? s->table_size * 2 : 64;
	struct interned *table = calloc(size, sizeof(*table));
	if (!table)
		return -ENOMEM;
	for (size_t i = 0; i < s->table_size; i++) {
		struct interned *e = &s->table[i];
		if (!e->text)
			continue;
		size_t j = e->hash & (size - 1);
		while (table[j].text)
			j = (j + 1) & (size - 1);
		table[j] = *e;
	}
	free(s->table);
	s->table = table;
	s->table_size = size;
	return 0;
}

/* Device and region names repeat on every line; one copy each keeps a long log small. */
static int store_intern(struct qemu_trace_store *s, const char *text, size_t len, const char **out)
{
	if (2 * (s->table_used + 1) > s->table_size) {
		int ret = store_grow_table(s);
		if (ret)
			return ret;
	}
	uint64_t h = hash_text(text, len);
	size_t j = h & (s->table_size - 1);
	for (; s->table[j].text; j = (j + 1) & (s->table_size - 1)) {
		struct interned *e = &s->table[j];
		if (e->hash == h && e->len == len && memcmp(e->text, text, len) == 0) {
			*out = e->text;
			return 0;
		}
	}
	int ret = store_copy(s, text, len, out);
	if (ret)
		return ret;
	s->table[j] = (struct interned){.text = *out, .len = len, .hash = h};
	s->table_used++;
	return 0;
}

/* ---- errors ---- */

int qemu_error_set(struct qemu_error *err, unsigned line, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->line = line;
		err->code = code;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---- lexing one line ---- */

struct cursor {
	const char *p, *end;
	const char *why; /* what was expected where parsing stopped */
};

static bool at_end(const struct cursor *c)
{
	return c->p >= c->end;
}

static bool end_of_line(struct cursor *c)
{
	if (!at_end(c)) {
		c->why = "end of line";
		return false;
	}
	return true;
}

static bool lit(struct cursor *c, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) {
		c->why = s;
		return false;
	}
	c->p += n;
	return true;
}

static bool spaces(struct cursor *c)
{
	if (at_end(c) || *c->p != ' ') {
		c->why = "a space";
		return false;
	}
	while (!at_end(c) && *c->p == ' ')
		c->p++;
	return true;
}

static bool token(struct cursor *c, const char **start, size_t *len)
{
	const char *s = c->p;
	while (!at_end(c) && *c->p != ' ')
		c->p++;
	if (c->p == s) {
		c->why = "a name";
		return false;
	}
	*start = s;
	*len = (size_t)(c->p - s);
	return true;
}

static int digit_value(char ch, unsigned base)
{
	int v = -1;
	if (ch >= '0' && ch <= '9')
		v = ch - '0';
	else if (ch >= 'a' && ch <= 'f')
		v = ch - 'a' + 10;
	else if (ch >= 'A' && ch <= 'F')
		v = ch - 'A' + 10;
	return v >= 0 && (unsigned)v < base ? v : -1;
}

/* An unsigned number of at most max; overflow is an error, not a wrap. */
static bool number(struct cursor *c, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = c->p;
	int d;
	while (!at_end(c) && (d = digit_value(*c->p, base)) >= 0) {
		if ((uint64_t)d > max || v > (max - (uint64_t)d) / base) {
			c->why = "a number in range";
			return false;
		}
		v = v * base + (uint64_t)d;
		c->p++;
	}
	if (c->p == s) {
		c->why = base == 16 ? "hex digits" : "digits";
		return false;
	}
	*out = v;
	return true;
}

static bool hex(struct cursor *c, uint64_t max, uint64_t *out)
{
	return lit(c, "0x") && number(c, 16, max, out);
}

static bool signed_dec(struct cursor *c, int *out)
{
	bool neg = lit(c, "-");
	uint64_t v;
	if (!number(c, 10, (uint64_t)1 << 30, &v))
		return false;
	*out = neg ? -(int)v : (int)v;
	return true;
}

/* "BB:DD.F" in hex, or the older "DD:F" (decimal device, bus 0). */
static bool bdf(struct cursor *c, uint16_t *out)
{
	struct cursor save = *c;
	uint64_t bus, dev, fn;
	if (number(c, 16, 0xff, &bus) && lit(c, ":") && number(c, 16, 0x1f, &dev) && lit(c, ".") &&
	    number(c, 16, 7, &fn)) {
		*out = QEMU_TRACE_BDF(bus, dev, fn);
		c->why = NULL;
		return true;
	}
	*c = save;
	if (number(c, 10, 0x1f, &dev) && lit(c, ":") && number(c, 10, 7, &fn) &&
	    (at_end(c) || *c->p == ' ')) {
		*out = QEMU_TRACE_BDF(0, dev, fn);
		c->why = NULL;
		return true;
	}
	c->why = "a bus:device.function";
	return false;
}

/* ---- building the event list ---- */

struct parser {
	struct qemu_trace *trace;
	struct qemu_trace_limits limits;
	struct qemu_error *err;
	unsigned line;
	/* The line before: an event index, or none. A fold line repeats it. */
	bool prev_is_event, prev_exists;
	size_t prev_event;
};

static int push(struct parser *ps, const struct qemu_trace_event *ev)
{
	struct qemu_trace *t = ps->trace;
	if (t->count >= ps->limits.max_events)
		return qemu_error_set(ps->err, ps->line, -EFBIG, "more than %zu events",
		                      ps->limits.max_events);
	if (t->count == t->capacity) {
		size_t cap = t->capacity ? t->capacity * 2 : 256;
		if (cap > ps->limits.max_events)
			cap = ps->limits.max_events;
		struct qemu_trace_event *e = realloc(t->events, cap * sizeof(*e));
		if (!e)
			return qemu_error_set(ps->err, ps->line, -ENOMEM, "out of memory");
		t->events = e;
		t->capacity = cap;
	}
	t->events[t->count] = *ev;
	t->events[t->count].line = ps->line;
	t->events[t->count].repeat = 1;
	ps->prev_is_event = true;
	ps->prev_event = t->count++;
	return 0;
}

static int intern(struct parser *ps, const char *s, size_t len, const char **out)
{
	int ret = store_intern(ps->trace->store, s, len, out);
	if (ret == -EFBIG)
		return qemu_error_set(ps->err, ps->line, ret, "more than %zu bytes of text",
		                      ps->limits.max_text);
	if (ret)
		return qemu_error_set(ps->err, ps->line, ret, "out of memory");
	return 0;
}

static int parse_cfg(struct parser *ps, struct cursor *c, enum qemu_trace_kind kind,
                     const char *line_start)
{
	struct qemu_trace_event ev = {.kind = kind, .cpu = -1};
	const char *name;
	size_t len;
	uint64_t reg, value;
	const char *arrow = kind == QEMU_TRACE_CFG_READ ? "->" : "<-";
	if (!(spaces(c) && token(c, &name, &len) && spaces(c) && bdf(c, &ev.bdf) && spaces(c) &&
	      lit(c, "@") && hex(c, CONFIG_SPACE_SIZE - 1, &reg) && spaces(c) && lit(c, arrow) &&
	      spaces(c) && hex(c, UINT32_MAX, &value) && end_of_line(c)))
		return qemu_error_set(ps->err, ps->line, -EBADMSG, "%s: expected %s at column %zu",
		                      qemu_trace_kind_name(kind), c->why ? c->why : "end of line",
		                      (size_t)(c->p - line_start) + 1);
	ev.reg = (uint16_t)reg;
	ev.value = value;
	int ret = intern(ps, name, len, &ev.text);
	if (ret)
		return ret;
	ev.text_len = len;
	if (kind == QEMU_TRACE_CFG_READ)
		ps->trace->stats.cfg_reads++;
	else
		ps->trace->stats.cfg_writes++;
	return push(ps, &ev);
}

static int parse_map(struct parser *ps, struct cursor *c, enum qemu_trace_kind kind,
                     const char *line_start)
{
	struct qemu_trace_event ev = {.kind = kind, .cpu = -1};
	const char *name;
	size_t len;
	uint64_t bar, addr, size;
	if (!(spaces(c) && token(c, &name, &len) && spaces(c) && bdf(c, &ev.bdf) && spaces(c) &&
	      number(c, 10, 6, &bar) && lit(c, ",") && hex(c, UINT64_MAX, &addr) && lit(c, "+") &&
	      hex(c, UINT64_MAX, &size) && end_of_line(c)))
		return qemu_error_set(ps->err, ps->line, -EBADMSG, "%s: expected %s at column %zu",
		                      qemu_trace_kind_name(kind), c->why ? c->why : "end of line",
		                      (size_t)(c->p - line_start) + 1);
	if (size == 0 || addr + (size - 1) < addr)
		return qemu_error_set(
		    ps->err, ps->line, -EBADMSG, "%s: range 0x%llx+0x%llx is empty or wraps",
		    qemu_trace_kind_name(kind), (unsigned long long)addr, (unsigned long long)size);
	ev.bar = (uint8_t)bar;
	ev.addr = addr;
	ev.size = size;
	int ret = intern(ps, name, len, &ev.text);
	if (ret)
		return ret;
	ev.text_len = len;
	return push(ps, &ev);
}

/* The region name is quoted and may hold spaces: it runs to the quote that ends the line. */
static bool quoted_name(struct cursor *c, const char **start, size_t *len)
{
	if (!lit(c, "'"))
		return false;
	if (c->end - c->p < 1 || c->end[-1] != '\'') {
		c->why = "a closing quote";
		return false;
	}
	*start = c->p;
	*len = (size_t)(c->end - 1 - c->p);
	c->p = c->end;
	return true;
}

static int parse_mr(struct parser *ps, struct cursor *c, enum qemu_trace_kind kind,
                    const char *line_start)
{
	struct qemu_trace_event ev = {.kind = kind};
	uint64_t ptr, size;
	const char *name = "";
	size_t len = 0;
	bool ok = spaces(c) && lit(c, "cpu") && spaces(c) && signed_dec(c, &ev.cpu) && spaces(c) &&
	          lit(c, "mr") && spaces(c) && hex(c, UINT64_MAX, &ptr) && spaces(c) &&
	          lit(c, "addr") && spaces(c) && hex(c, UINT64_MAX, &ev.addr) && spaces(c) &&
	          lit(c, "value") && spaces(c) && hex(c, UINT64_MAX, &ev.value) && spaces(c) &&
	          lit(c, "size") && spaces(c) && number(c, 10, 8, &size);
	/* Older QEMUs end the line after the size. */
	if (ok && !at_end(c))
		ok = spaces(c) && lit(c, "name") && spaces(c) && quoted_name(c, &name, &len);
	if (!ok || !end_of_line(c))
		return qemu_error_set(ps->err, ps->line, -EBADMSG, "%s: expected %s at column %zu",
		                      qemu_trace_kind_name(kind), c->why ? c->why : "end of line",
		                      (size_t)(c->p - line_start) + 1);
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return qemu_error_set(ps->err, ps->line, -EBADMSG,
		                      "%s: access size %llu is not 1, 2, 4 or 8",
		                      qemu_trace_kind_name(kind), (unsigned long long)size);
	ev.width = (uint8_t)size;
	int ret = intern(ps, name, len, &ev.text);
	if (ret)
		return ret;
	ev.text_len = len;
	return push(ps, &ev);
}

static int unescape(char ch, char *out)
{
	static const char from[] = "rntbfav\"\\'0e";
	static const char to[] = "\r\n\t\b\f\a\v\"\\'\0\033";
	const char *p = ch ? strchr(from, ch) : NULL;
	if (!p)
		return -1;
	*out = to[p - from];
	return 0;
}

/* UTF-8 for a code point below 0x10000; returns the bytes written (at most 3). */
static size_t put_utf8(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* The value of n hex digits at p, or -1. */
static long hex_digits(const char *p, const char *end, unsigned n)
{
	long v = 0;
	for (unsigned i = 0; i < n; i++) {
		int d = p + i < end ? digit_value(p[i], 16) : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/*
 * Decodes one escape after a backslash at c->p into buf; returns the bytes written. C
 * escapes, \xHH and JSON's \uXXXX are decoded; anything else (an unknown letter, too few
 * digits, a UTF-16 surrogate) is kept as it was written: the console is an annotation and
 * never a reason to refuse a trace.
 */
static size_t console_escape(struct cursor *c, char *buf)
{
	if (at_end(c)) {
		buf[0] = '\\';
		return 1;
	}
	char ch = *c->p;
	long v = -1;
	if (ch == 'x' && (v = hex_digits(c->p + 1, c->end, 2)) >= 0) {
		c->p += 3;
		buf[0] = (char)v;
		return 1;
	}
	if (ch == 'u' && (v = hex_digits(c->p + 1, c->end, 4)) >= 0 && (v < 0xd800 || v > 0xdfff)) {
		c->p += 5;
		return put_utf8((unsigned)v, buf);
	}
	if (ch != 'x' && ch != 'u' && unescape(ch, &buf[0]) == 0) {
		c->p++;
		return 1;
	}
	buf[0] = '\\';
	return 1;
}

/*
 * Decodes the quoted console text into buf (never longer than the source). A line that
 * is not one quoted string (no quotes, text after the closing one, no closing one) is
 * kept whole, as it was written.
 */
static void console_text(struct cursor *c, char *buf, size_t *len)
{
	struct cursor start = *c;
	size_t n = 0;
	if (lit(c, "\"")) {
		while (!at_end(c) && *c->p != '"') {
			char ch = *c->p++;
			if (ch == '\\')
				n += console_escape(c, buf + n);
			else
				buf[n++] = ch;
		}
		if (lit(c, "\"") && at_end(c)) {
			*len = n;
			return;
		}
	}
	n = (size_t)(start.end - start.p);
	memcpy(buf, start.p, n);
	*len = n;
}

static int parse_console(struct parser *ps, struct cursor *c)
{
	struct qemu_trace_event ev = {.kind = QEMU_TRACE_CONSOLE, .cpu = -1};
	size_t len = 0;
	char *buf = malloc((size_t)(c->end - c->p) + 1);
	if (!buf)
		return qemu_error_set(ps->err, ps->line, -ENOMEM, "out of memory");
	while (!at_end(c) && *c->p == ' ')
		c->p++;
	console_text(c, buf, &len);
	int ret = store_copy(ps->trace->store, buf, len, &ev.text);
	if (ret == -EFBIG)
		ret = qemu_error_set(ps->err, ps->line, ret, "more than %zu bytes of text",
		                     ps->limits.max_text);
	else if (ret)
		ret = qemu_error_set(ps->err, ps->line, ret, "out of memory");
	free(buf);
	if (ret)
		return ret;
	ev.text_len = len;
	return push(ps, &ev);
}

/* A fold line that does not parse, or that has no line before it, is a comment like any
 * other: skipped. */
static int parse_fold(struct parser *ps, struct cursor *c)
{
	uint64_t n;
	if (!(spaces(c) && number(c, 10, UINT32_MAX, &n) && spaces(c) && lit(c, "more times")) ||
	    !ps->prev_exists) {
		ps->trace->stats.skipped++;
		return 0;
	}
	if (!ps->prev_is_event)
		return 0; /* it repeats a line that was skipped */
	struct qemu_trace_event *ev = &ps->trace->events[ps->prev_event];
	if (n > UINT32_MAX - ev->repeat)
		return qemu_error_set(ps->err, ps->line, -EBADMSG,
		                      "repeat: count of line %u passes %u", ev->line, UINT32_MAX);
	ev->repeat += (uint32_t)n;
	if (ev->kind == QEMU_TRACE_CFG_READ)
		ps->trace->stats.cfg_reads += n;
	else if (ev->kind == QEMU_TRACE_CFG_WRITE)
		ps->trace->stats.cfg_writes += n;
	return 0;
}

/* Comments other than console and fold lines are not lines of the trace: a fold after
 * one still repeats the line before it. Whatever a comment holds, it is never an error. */
static int parse_comment(struct parser *ps, struct cursor *c)
{
	if (lit(c, "# console:")) {
		ps->prev_exists = true;
		ps->prev_is_event = false;
		return parse_console(ps, c);
	}
	if (lit(c, "# previous line repeated"))
		return parse_fold(ps, c);
	ps->trace->stats.skipped++;
	return 0;
}

/* The log backend's optional "PID@SEC.USEC:" stamp. */
static void skip_stamp(struct cursor *c)
{
	struct cursor t = *c;
	uint64_t v;
	if (number(&t, 10, UINT64_MAX, &v) && lit(&t, "@") && number(&t, 10, UINT64_MAX, &v) &&
	    lit(&t, ".") && number(&t, 10, UINT64_MAX, &v) && lit(&t, ":"))
		*c = t;
	c->why = NULL;
}

static const struct {
	const char *name;
	enum qemu_trace_kind kind;
	int (*parse)(struct parser *, struct cursor *, enum qemu_trace_kind, const char *);
} line_kinds[] = {
    {"pci_cfg_read", QEMU_TRACE_CFG_READ, parse_cfg},
    {"pci_cfg_write", QEMU_TRACE_CFG_WRITE, parse_cfg},
    {"pci_update_mappings_add", QEMU_TRACE_MAP_ADD, parse_map},
    {"pci_update_mappings_del", QEMU_TRACE_MAP_DEL, parse_map},
    {"memory_region_ops_read", QEMU_TRACE_MR_READ, parse_mr},
    {"memory_region_ops_write", QEMU_TRACE_MR_WRITE, parse_mr},
};

static int check_bytes(struct parser *ps, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return qemu_error_set(ps->err, ps->line, -EBADMSG,
			                      "control byte 0x%02x at column %zu: not a text log",
			                      ch, i + 1);
	}
	return 0;
}

static int parse_line(struct parser *ps, const char *s, size_t len)
{
	struct cursor c = {.p = s, .end = s + len};
	skip_stamp(&c);
	if (!at_end(&c) && *c.p == '#')
		return parse_comment(ps, &c);
	if (memchr(s, '\0', len))
		return qemu_error_set(ps->err, ps->line, -EBADMSG, "NUL byte: not a text log");
	int ret = check_bytes(ps, s, len);
	if (ret)
		return ret;
	ps->prev_exists = true;
	ps->prev_is_event = false;
	const char *name;
	size_t n;
	if (at_end(&c) || !token(&c, &name, &n)) {
		ps->trace->stats.skipped++;
		return 0;
	}
	for (size_t i = 0; i < sizeof(line_kinds) / sizeof(line_kinds[0]); i++) {
		if (strlen(line_kinds[i].name) == n && memcmp(line_kinds[i].name, name, n) == 0)
			return line_kinds[i].parse(ps, &c, line_kinds[i].kind, s);
	}
	ps->trace->stats.skipped++;
	return 0;
}

/* ---- reading lines with a bound ---- */

struct line_buf {
	char *data;
	size_t len, cap;
};

/* 1: a line is in lb (without its end of line), 0: end of stream, negative: error. */
static int read_line(FILE *in, struct line_buf *lb, size_t max)
{
	int ch;
	lb->len = 0;
	while ((ch = getc(in)) != EOF && ch != '\n') {
		if (lb->len + 1 >= lb->cap) {
			if (lb->cap >= max + 1)
				return -EFBIG;
			size_t cap = lb->cap ? lb->cap * 2 : 256;
			if (cap > max + 1)
				cap = max + 1;
			char *d = realloc(lb->data, cap);
			if (!d)
				return -ENOMEM;
			lb->data = d;
			lb->cap = cap;
		}
		lb->data[lb->len++] = (char)ch;
	}
	if (ferror(in))
		return -EIO;
	if (ch == EOF && lb->len == 0)
		return 0;
	if (lb->len && lb->data[lb->len - 1] == '\r')
		lb->len--;
	if (!lb->data) {
		lb->data = malloc(1);
		if (!lb->data)
			return -ENOMEM;
		lb->cap = 1;
	}
	lb->data[lb->len] = '\0';
	return 1;
}

/* ---- widths ---- */

int qemu_trace_is_config_region(const char *name)
{
	if (!name)
		return 0;
	if (strcmp(name, "pci-conf-data") == 0)
		return 1;
	if (strcmp(name, "pcie-mmcfg-mmio") == 0)
		return 2;
	return 0;
}

/* Natural width of each register of the standard header, at its first byte: IDs, command,
 * status; class dword, prog-if, class word, class; cache line, latency, header type, BIST;
 * six BARs; CardBus CIS, subsystem IDs; ROM, capabilities; bridge ROM, interrupt line and
 * pin, min grant, max latency. */
static const char header_widths[] = "2.2.2.2."
                                    "41211111"
                                    "4...4..."
                                    "4...4..."
                                    "4...4..."
                                    "4...2.2."
                                    "4...1111"
                                    "4...1111";

static unsigned natural_width(unsigned reg)
{
	if (reg >= sizeof(header_widths) - 1)
		return reg % 4 == 0 ? 4 : reg % 2 == 0 ? 2 : 1;
	char w = header_widths[reg];
	return w == '.' ? 1 : (unsigned)(w - '0');
}

static unsigned value_width(uint64_t value)
{
	return value <= 0xff ? 1 : value <= 0xffff ? 2 : value <= 0xffffffffu ? 4 : 8;
}

int qemu_trace_infer_width(unsigned reg, uint64_t value)
{
	unsigned align = reg % 4 == 0 ? 4 : reg % 2 == 0 ? 2 : 1;
	unsigned need = value_width(value);
	if (reg >= CONFIG_SPACE_SIZE || need > align)
		return -ERANGE;
	unsigned w = natural_width(reg);
	if (w < need)
		w = need;
	if (w > align)
		w = align;
	return (int)w;
}

static uint64_t width_mask(unsigned width)
{
	return width >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * width)) - 1;
}

/* Does the region access mr carry the configuration access cfg? */
static bool pairs_with(const struct qemu_trace_event *cfg, const struct qemu_trace_event *mr)
{
	int region = qemu_trace_is_config_region(mr->text);
	unsigned w = mr->width;
	if (!region || (w != 1 && w != 2 && w != 4) || cfg->reg + w > CONFIG_SPACE_SIZE)
		return false;
	if ((mr->value & width_mask(w)) != cfg->value)
		return false;
	if (region == 1)
		return (mr->addr & 3) == (cfg->reg & 3u);
	return (mr->addr & 0xfff) == cfg->reg && ((mr->addr >> 12) & 0xffff) == cfg->bdf;
}

/* A read is traced before the region access that carries it returns; a write after its
 * region access is traced. No other configuration access lies between them. */
static const struct qemu_trace_event *find_pair(const struct qemu_trace *t, size_t i)
{
	const struct qemu_trace_event *cfg = &t->events[i];
	bool read = cfg->kind == QEMU_TRACE_CFG_READ;
	enum qemu_trace_kind want = read ? QEMU_TRACE_MR_READ : QEMU_TRACE_MR_WRITE;
	for (size_t j = i;;) {
		if (read ? ++j >= t->count : j-- == 0)
			return NULL;
		const struct qemu_trace_event *e = &t->events[j];
		if (e->kind == QEMU_TRACE_CFG_READ || e->kind == QEMU_TRACE_CFG_WRITE)
			return NULL;
		if (e->kind == want && qemu_trace_is_config_region(e->text))
			return pairs_with(cfg, e) ? e : NULL;
	}
}

static int assign_widths(struct qemu_trace *t, struct qemu_error *err)
{
	for (size_t i = 0; i < t->count; i++) {
		struct qemu_trace_event *e = &t->events[i];
		if (e->kind != QEMU_TRACE_CFG_READ && e->kind != QEMU_TRACE_CFG_WRITE)
			continue;
		const struct qemu_trace_event *mr = find_pair(t, i);
		if (mr) {
			e->width = mr->width;
			e->width_source = QEMU_TRACE_WIDTH_PAIRED;
			e->pair_line = mr->line;
			t->stats.width_paired++;
			continue;
		}
		int w = qemu_trace_infer_width(e->reg, e->value);
		if (w < 0)
			return qemu_error_set(
			    err, e->line, -EBADMSG, "%s: no access at @0x%x can carry 0x%llx",
			    qemu_trace_kind_name(e->kind), e->reg, (unsigned long long)e->value);
		if (e->reg + (unsigned)w > CONFIG_SPACE_SIZE)
			return qemu_error_set(err, e->line, -EBADMSG,
			                      "%s: access at @0x%x passes 4 KiB",
			                      qemu_trace_kind_name(e->kind), e->reg);
		e->width = (uint8_t)w;
		e->width_source = QEMU_TRACE_WIDTH_INFERRED;
		t->stats.width_inferred++;
	}
	return 0;
}

/* ---- entry points ---- */

const char *qemu_trace_kind_name(enum qemu_trace_kind kind)
{
	switch (kind) {
	case QEMU_TRACE_CFG_READ:
		return "pci_cfg_read";
	case QEMU_TRACE_CFG_WRITE:
		return "pci_cfg_write";
	case QEMU_TRACE_MAP_ADD:
		return "pci_update_mappings_add";
	case QEMU_TRACE_MAP_DEL:
		return "pci_update_mappings_del";
	case QEMU_TRACE_MR_READ:
		return "memory_region_ops_read";
	case QEMU_TRACE_MR_WRITE:
		return "memory_region_ops_write";
	case QEMU_TRACE_CONSOLE:
		return "console";
	}
	return "?";
}

void qemu_trace_free(struct qemu_trace *trace)
{
	if (!trace)
		return;
	store_free(trace->store);
	free(trace->events);
	free(trace);
}

static void apply_limits(struct qemu_trace_limits *l, const struct qemu_trace_limits *given)
{
	*l = given ? *given : (struct qemu_trace_limits){0};
	if (!l->max_line)
		l->max_line = DEFAULT_MAX_LINE;
	if (!l->max_events)
		l->max_events = DEFAULT_MAX_EVENTS;
	if (!l->max_text)
		l->max_text = DEFAULT_MAX_TEXT;
}

static int parse_stream(FILE *in, struct parser *ps)
{
	struct line_buf lb = {0};
	int ret;
	while ((ret = read_line(in, &lb, ps->limits.max_line)) > 0) {
		ps->line++;
		ps->trace->stats.lines++;
		ret = parse_line(ps, lb.data, lb.len);
		if (ret)
			break;
	}
	free(lb.data);
	if (ret == -EFBIG && (!ps->err || ps->err->code != -EFBIG))
		return qemu_error_set(ps->err, ps->line + 1, ret, "line longer than %zu bytes",
		                      ps->limits.max_line);
	if (ret == -EIO)
		return qemu_error_set(ps->err, 0, ret, "read error");
	if (ret == -ENOMEM)
		return qemu_error_set(ps->err, ps->line + 1, ret, "out of memory");
	return ret;
}

int qemu_trace_parse(FILE *in, const struct qemu_trace_limits *limits, struct qemu_trace **out,
                     struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!in || !out)
		return qemu_error_set(err, 0, -EINVAL, "no stream or no result");
	*out = NULL;
	struct parser ps = {.err = err};
	apply_limits(&ps.limits, limits);
	ps.trace = calloc(1, sizeof(*ps.trace));
	if (!ps.trace)
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	ps.trace->store = store_new(ps.limits.max_text);
	if (!ps.trace->store) {
		qemu_trace_free(ps.trace);
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	}
	int ret = parse_stream(in, &ps);
	if (!ret)
		ret = assign_widths(ps.trace, err);
	if (ret) {
		qemu_trace_free(ps.trace);
		return ret;
	}
	*out = ps.trace;
	return 0;
}
