/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario statements: the dispatch on the first word, the host, placements, allocation,
 * steps and notes, and reading a whole text into a script.
 */
#include "parser_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- host ---- */

static int host_ecam(struct parser *p, struct scn_host *h)
{
	const struct lex_word *w = p_need(p, "the ECAM base address");
	if (!w || p_u64(p, w, &h->ecam_base))
		return -1;
	h->ecam = true;
	h->ecam_buses = 256;
	if (p_accept(p, "buses")) {
		uint64_t n;
		w = p_need(p, "the number of buses (1..256)");
		if (!w || p_uint(p, w, 256, &n))
			return -1;
		if (n == 0)
			return p_fail(p, w, "at least one bus");
		h->ecam_buses = (unsigned)n;
	}
	uint64_t len = (uint64_t)h->ecam_buses << 20;
	if (h->ecam_base & 0xfffff)
		return p_fail(p, w, "the ECAM base must be aligned to 1 MiB");
	if (h->ecam_base + (len - 1) < h->ecam_base)
		return p_fail(p, w, "the ECAM window passes 2^64");
	return 0;
}

static int host_io_window(struct parser *p, const struct lex_word *kw, struct scn_host *h)
{
	if (h->arch != SCN_ARM64)
		return p_fail(p, kw, "io-window is for arm64 hosts (x86 has a port space)");
	const struct lex_word *w = p_need(p, "the MMIO address where port 0 appears");
	if (!w || p_u64(p, w, &h->io_window_base))
		return -1;
	w = p_need(p, "the size of the port range");
	if (!w || p_size(p, w, &h->io_window_size))
		return -1;
	if (!h->io_window_size || h->io_window_base + (h->io_window_size - 1) < h->io_window_base)
		return p_fail(p, w, "the window is empty or passes 2^64");
	h->io_window = true;
	return 0;
}

static int host_id(struct parser *p, struct scn_host *h)
{
	return p_id_pair(p, &h->hb_vendor, &h->hb_device);
}

static int host_option(struct parser *p, const struct lex_word *w, struct scn_host *h)
{
	if (lex_is(w, "ecam"))
		return host_ecam(p, h);
	if (lex_is(w, "io-window"))
		return host_io_window(p, w, h);
	if (lex_is(w, "io-limit")) {
		const struct lex_word *v =
		    p_need(p, "the I/O limit (first port that never decodes)");
		return v ? p_u64(p, v, &h->io_limit) : -1;
	}
	if (lex_is(w, "decode-zero") || lex_is(w, "no-decode-zero")) {
		h->decode_zero = lex_is(w, "decode-zero");
		return 0;
	}
	if (lex_is(w, "no-host-bridge")) {
		h->no_host_bridge = true;
		return 0;
	}
	if (lex_is(w, "host-bridge"))
		return host_id(p, h);
	return p_fail(p, w,
	              "unknown host option (ecam, io-window, io-limit, decode-zero, "
	              "no-decode-zero, host-bridge, no-host-bridge)");
}

static int parse_host(struct parser *p, const struct lex_word *kw, struct scn_stmt *st)
{
	if (p->have_host)
		return p_fail(p, kw, "a scenario has one host");
	struct scn_host *h = &st->u.host;
	*h = (struct scn_host){.decode_zero = -1};
	const struct lex_word *w = p_need(p, "x86 or arm64");
	if (!w)
		return -1;
	if (lex_is(w, "x86"))
		h->arch = SCN_X86;
	else if (lex_is(w, "arm64"))
		h->arch = SCN_ARM64;
	else
		return p_fail(p, w, "expected x86 or arm64");
	while ((w = p_next(p)))
		if (host_option(p, w, h))
			return -1;
	p->have_host = true;
	p->host = *h;
	return 0;
}

/* ---- placement and allocation ---- */

static int parse_place(struct parser *p, struct scn_stmt *st)
{
	const struct lex_word *w = p_need(p, "a PCI address BB:DD.F");
	if (!w || p_bdf(p, w, &st->u.place.bdf))
		return -1;
	const struct scn_device *d = p_device(p, st->u.place.bdf);
	if (!d)
		return p_fail(p, w, "no device was declared at this address");
	const struct lex_word *bw = p_need(p, "bar0..bar5 or rom");
	if (!bw || p_bar_index(p, bw, &st->u.place.bar))
		return -1;
	unsigned b = st->u.place.bar;
	if (b == BM_PCI_ROM ? d->rom_size == 0 : d->bars[b].type == BM_PCI_BAR_NONE)
		return p_fail(p, bw, "the device has no such BAR");
	w = p_need(p, "the address");
	if (!w || p_u64(p, w, &st->u.place.addr))
		return -1;
	return p_end(p);
}

static int alloc_window(struct parser *p, struct scn_window *win)
{
	const struct lex_word *w = p_need(p, "a range START-LAST or START+SIZE");
	if (!w || p_range(p, w, &win->base, &win->limit))
		return -1;
	win->set = true;
	return 0;
}

static int alloc_option(struct parser *p, const struct lex_word *w, struct scn_alloc *a)
{
	static const struct {
		const char *kw;
		size_t off;
	} windows[] = {
	    {"io", offsetof(struct scn_alloc, io)},
	    {"mem32", offsetof(struct scn_alloc, mem32)},
	    {"pref32", offsetof(struct scn_alloc, pref32)},
	    {"mem64", offsetof(struct scn_alloc, mem64)},
	};
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++)
		if (lex_is(w, windows[i].kw))
			return alloc_window(p, (struct scn_window *)((char *)a + windows[i].off));
	if (lex_is(w, "buses"))
		a->assign_buses = true;
	else if (lex_is(w, "bus-master"))
		a->bus_master = true;
	else if (lex_is(w, "rom-enable"))
		a->rom_enable = true;
	else
		return p_fail(p, w,
		              "unknown allocate option (io, mem32, pref32, mem64, buses, "
		              "bus-master, rom-enable)");
	return 0;
}

static int parse_allocate(struct parser *p, struct scn_stmt *st)
{
	struct scn_alloc *a = &st->u.alloc;
	*a = (struct scn_alloc){0};
	const struct lex_word *w = p_need(p, "best-fit, bhyve or bhyve-unsorted");
	if (!w)
		return -1;
	if (lex_is(w, "best-fit"))
		a->mode = BM_PCI_ALLOC_BEST_FIT;
	else if (lex_is(w, "bhyve"))
		a->mode = BM_PCI_ALLOC_BHYVE;
	else if (lex_is(w, "bhyve-unsorted"))
		a->mode = BM_PCI_ALLOC_BHYVE_UNSORTED;
	else
		return p_fail(p, w, "expected best-fit, bhyve or bhyve-unsorted");
	while ((w = p_next(p)))
		if (alloc_option(p, w, a))
			return -1;
	return 0;
}

/* ---- steps and notes ---- */

/* The rest of the line as one text: one quoted word, or plain words joined by blanks. */
static int rest_text(struct parser *p, const char *what, char **out)
{
	char buf[SCN_LABEL_MAX + 1];
	size_t n = 0;
	const struct lex_word *w;
	if (!p_peek(p))
		return p_fail(p, NULL, "expected %s", what);
	while ((w = p_next(p))) {
		if (n + (n != 0) + w->len > SCN_LABEL_MAX)
			return p_fail(p, w, "%s longer than %d bytes", what, SCN_LABEL_MAX);
		if (n)
			buf[n++] = ' ';
		lex_copy(w, buf + n, sizeof(buf) - n);
		n += strlen(buf + n);
	}
	buf[n] = '\0';
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

/* ---- statements ---- */

static int parse_statement(struct parser *p, struct scn_stmt *st)
{
	const struct lex_word *kw = p_next(p);
	st->line = p->l->lineno;
	st->col = kw->col;
	if (kw->quoted)
		return p_fail(p, kw, "a statement starts with a keyword, not quoted text");
	if (lex_is(kw, "host")) {
		st->kind = SCN_HOST;
		return parse_host(p, kw, st);
	}
	if (!p->have_host)
		return p_fail(p, kw,
		              "the first statement must be \"host x86 ...\" or "
		              "\"host arm64 ...\"");
	if (lex_is(kw, "device")) {
		st->kind = SCN_DEVICE;
		return parse_device(p, st);
	}
	if (lex_is(kw, "place")) {
		st->kind = SCN_PLACE;
		return parse_place(p, st);
	}
	if (lex_is(kw, "allocate")) {
		st->kind = SCN_ALLOCATE;
		return parse_allocate(p, st);
	}
	if (lex_is(kw, "step")) {
		st->kind = SCN_STEP;
		return rest_text(p, "a label for the step", &st->text);
	}
	if (lex_is(kw, "note")) {
		st->kind = SCN_NOTE;
		return rest_text(p, "the text to print", &st->text);
	}
	if (lex_is(kw, "expect")) {
		st->kind = SCN_EXPECT;
		return parse_expect(p, st);
	}
	st->kind = SCN_ACCESS;
	return parse_access(p, kw, st);
}

static int push_statement(struct scn_script *s, const struct scn_stmt *st)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct scn_stmt *v = realloc(s->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n++] = *st;
	return 0;
}

/* The statement's text from its first word to its last, for messages. */
static char *source_text(const struct lex_line *l)
{
	const struct lex_word *a = &l->w[0], *z = &l->w[l->n - 1];
	const char *start = a->s - (a->quoted ? 1 : 0);
	const char *end = z->s + z->len + (z->quoted ? 1 : 0);
	size_t n = (size_t)(end - start);
	bool cut = n > SCN_SOURCE_MAX;
	char *s = malloc((cut ? SCN_SOURCE_MAX + 3 : n) + 1);
	if (!s)
		return NULL;
	memcpy(s, start, cut ? SCN_SOURCE_MAX : n);
	if (cut)
		memcpy(s + SCN_SOURCE_MAX, "...", 3);
	s[cut ? SCN_SOURCE_MAX + 3 : n] = '\0';
	return s;
}

static int parse_line(struct parser *p, const struct lex_line *l)
{
	p->l = l;
	p->i = 0;
	if (!l->n)
		return 0;
	if (p->s->n >= SCN_MAX_STATEMENTS)
		return lex_fail(p->err, l->lineno, 1, "more than %d statements",
		                SCN_MAX_STATEMENTS);
	struct scn_stmt st = {0};
	int r = parse_statement(p, &st);
	if (r == 0 && st.kind == SCN_DEVICE)
		p->s->ndevices++;
	if (r == 0 && !(st.src = source_text(l)))
		r = -ENOMEM;
	if (r == 0)
		r = push_statement(p->s, &st);
	if (r) {
		free(st.text);
		free(st.src);
	}
	if (r == -ENOMEM)
		return lex_fail(p->err, l->lineno, 1, "out of memory");
	return r;
}

int scn_parse_text(const char *file, struct lex_text *text, struct scn_script *out,
                   struct lex_error *err)
{
	*out = (struct scn_script){0};
	out->file = strdup(file ? file : "-");
	if (!out->file)
		return -ENOMEM;
	struct parser p = {.s = out, .err = err};
	struct lex_line *line = malloc(sizeof(*line));
	if (!line) {
		scn_script_free(out);
		return -ENOMEM;
	}
	int r;
	while ((r = lex_next_line(text, line, err)) == 1)
		if (parse_line(&p, line))
			break;
	free(line);
	if (r == 1 || r < 0) {
		scn_script_free(out);
		return -1;
	}
	if (!p.have_host) {
		scn_script_free(out);
		return lex_fail(
		    err, text->lineno ? text->lineno : 1, 1,
		    "no host: a scenario starts with \"host x86\" or \"host arm64 ...\"");
	}
	return 0;
}

int scn_parse_string(const char *file, const char *s, size_t len, struct scn_script *out,
                     struct lex_error *err)
{
	struct lex_text t;
	int r = lex_from_string(s, len, &t);
	if (r == -EFBIG)
		return lex_fail(err, 0, 0, "larger than %u bytes", LEX_MAX_FILE);
	if (r)
		return r;
	r = scn_parse_text(file, &t, out, err);
	lex_text_free(&t);
	return r;
}

int scn_parse_file(const char *path, struct scn_script *out, struct lex_error *err)
{
	*out = (struct scn_script){0};
	bool is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f)
		return lex_fail(err, 0, 0, "cannot open: %s", strerror(errno));
	struct lex_text t;
	int r = lex_read_file(f, &t);
	if (!is_stdin)
		fclose(f);
	if (r == -EFBIG)
		return lex_fail(err, 0, 0, "larger than %u bytes", LEX_MAX_FILE);
	if (r == -EIO)
		return lex_fail(err, 0, 0, "read error");
	if (r)
		return r;
	r = scn_parse_text(path, &t, out, err);
	lex_text_free(&t);
	return r;
}

void scn_script_free(struct scn_script *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].text);
		free(s->v[i].src);
	}
	free(s->v);
	free(s->file);
	*s = (struct scn_script){0};
}
