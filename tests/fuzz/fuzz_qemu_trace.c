/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-qemu-trace: any bytes are a QEMU trace log. Reading it must end in an error that
 * qemu_trace.h documents (a malformed line with its number and a message, a limit, memory)
 * or in a trace whose events are well formed; such a trace must then replay against the
 * PCI layer to the end or stop with a documented error, and the maps on both sides must be
 * readable. Nothing may crash, leak or hang.
 *
 * The input's length picks the replay's decode rule (QEMU's arm "virt", which decodes
 * address 0, or "pc"), so the corpus stays plain trace text.
 */
#include "qemu_replay.h"
#include "qemu_trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fuzz-qemu-trace: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static void check_error(const char *what, int r, const struct qemu_error *err, unsigned lines,
                        const int *allowed, size_t nallowed)
{
	bool ok = false;
	for (size_t i = 0; i < nallowed; i++)
		ok |= r == allowed[i];
	if (!ok)
		fail("%s returned %d (line %u: %.*s)", what, r, err->line,
		     (int)sizeof(err->message), err->message);
	if (!memchr(err->message, 0, sizeof(err->message)))
		fail("%s: message not terminated", what);
	if (err->code != r)
		fail("%s returned %d but the error record says %d", what, r, err->code);
	if (r == -EBADMSG && (!err->message[0] || err->line == 0 || err->line > lines))
		fail("%s: -EBADMSG at line %u of %u: \"%s\"", what, err->line, lines, err->message);
}

static void check_trace(const struct qemu_trace *t, unsigned lines)
{
	unsigned last = 0;
	for (size_t i = 0; i < t->count; i++) {
		const struct qemu_trace_event *e = &t->events[i];
		if (e->line < last || e->line == 0 || e->line > lines)
			fail("event %zu at line %u after line %u (%u lines)", i, e->line, last,
			     lines);
		last = e->line;
		if (e->repeat == 0)
			fail("event at line %u happened 0 times", e->line);
		if (e->text && (strlen(e->text) > e->text_len || e->text[e->text_len] != 0))
			fail("event at line %u: text not terminated at its length", e->line);
		if (e->kind == QEMU_TRACE_CFG_READ || e->kind == QEMU_TRACE_CFG_WRITE) {
			if (e->width != 1 && e->width != 2 && e->width != 4)
				fail("configuration access at line %u of width %u", e->line,
				     e->width);
			if (e->width_source == QEMU_TRACE_WIDTH_INFERRED && e->reg % e->width)
				fail("configuration access at line %u: width %u inferred at %#x",
				     e->line, e->width, e->reg);
		}
		if ((e->kind == QEMU_TRACE_MAP_ADD || e->kind == QEMU_TRACE_MAP_DEL) && e->bar > 6)
			fail("mapping at line %u of BAR %u", e->line, e->bar);
	}
}

static void replay(const struct qemu_trace *t, bool virt, unsigned lines)
{
	static const int new_errs[] = {0, -EBADMSG, -ENOMEM};
	struct qemu_replay_options opt = {0};
	struct qemu_replay *r = NULL;
	struct qemu_error err = {0};

	if (qemu_replay_machine_options(virt ? "virt" : "pc", &opt))
		fail("qemu_replay_machine_options failed");
	int rc = qemu_replay_new(t, &opt, &r, &err);
	check_error("qemu_replay_new", rc, &err, lines, new_errs, 3);
	if (rc)
		return;
	memset(&err, 0, sizeof(err));
	rc = qemu_replay_run(r, 0, &err);
	if (rc > 0)
		fail("qemu_replay_run returned %d", rc);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	/* a QEMU mapping that no write explains counts as a divergence of its own */
	if (!rc && (res->divergences > res->writes + res->qemu_events ||
	            res->read_mismatches > res->reads_checked || res->reads_checked > res->reads))
		fail("%zu divergences in %zu writes and %zu QEMU events, %zu mismatches in %zu "
		     "reads checked of %zu",
		     res->divergences, res->writes, res->qemu_events, res->read_mismatches,
		     res->reads_checked, res->reads);
	struct qemu_replay_bar *bars = NULL;
	size_t n = 0;
	if (qemu_replay_busmap_map(r, &bars, &n) == 0) {
		/* memory BARs first, then I/O ones, each kind by address */
		for (size_t i = 1; i < n; i++)
			if (bars[i].io < bars[i - 1].io ||
			    (bars[i].io == bars[i - 1].io && bars[i].addr < bars[i - 1].addr))
				fail("busmap's map is not sorted by address");
		free(bars);
	}
	bars = NULL;
	if (qemu_replay_qemu_map(r, &bars, &n) == 0)
		free(bars);
	qemu_replay_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int parse_errs[] = {0, -EBADMSG, -EFBIG, -ENOMEM, -EIO};
	/* small limits, so that the fuzzer reaches them */
	const struct qemu_trace_limits lim = {
	    .max_line = 1024, .max_events = 4096, .max_text = 64 << 10};
	struct qemu_trace *t = NULL;
	struct qemu_error err = {0};
	unsigned lines = 1;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	/* fmemopen refuses an empty buffer */
	FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (!f)
		abort();
	int rc = qemu_trace_parse(f, &lim, &t, &err);
	fclose(f);
	check_error("qemu_trace_parse", rc, &err, lines, parse_errs, 5);
	if (rc)
		return 0;
	check_trace(t, lines);
	replay(t, size & 1, lines);
	qemu_trace_free(t);

	/* the width rule, on values the input gives */
	if (size >= 6) {
		unsigned reg = (data[0] | (unsigned)data[1] << 8) & 0xfff;
		uint64_t v = (uint64_t)data[2] | (uint64_t)data[3] << 8 | (uint64_t)data[4] << 16 |
		             (uint64_t)data[5] << 24;
		int w = qemu_trace_infer_width(reg, v);
		if (w != -ERANGE &&
		    ((w != 1 && w != 2 && w != 4) || reg % (unsigned)w || (w < 4 && v >> (8 * w))))
			fail("qemu_trace_infer_width(%#x, %#llx) = %d", reg, (unsigned long long)v,
			     w);
	}
	return 0;
}
