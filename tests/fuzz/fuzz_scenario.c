/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-scenario: any bytes are a scenario for the busmap command. Parsing must end in an
 * error with a line, a column and a message, or in a script that runs to its end (with
 * its expectations met or not) and whose history draws as a timeline. Nothing may crash,
 * leak or hang, and the only errors a run may return are those runner.h documents.
 *
 * The input's length picks the map format printed and whether the run is verbose, so the
 * corpus stays plain scenario text.
 */
#include "history.h"
#include "mapout.h"
#include "parser.h"
#include "runner.h"
#include "timeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *sink(void)
{
	static FILE *null;
	if (!null)
		null = fopen("/dev/null", "w");
	if (!null)
		abort();
	return null;
}

/* An error must say where and why, inside the text it was given. */
static void check_error(const struct lex_error *err, const uint8_t *data, size_t size)
{
	unsigned lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (!memchr(err->msg, 0, sizeof(err->msg)) || !err->msg[0]) {
		fprintf(stderr, "fuzz-scenario: a parse error without a message\n");
		abort();
	}
	if (err->line > lines) {
		fprintf(stderr, "fuzz-scenario: error at line %u of a %u-line text: %s\n",
		        err->line, lines, err->msg);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scn_script s;
	struct lex_error err = {0};

	int r = scn_parse_string("fuzz.bm", (const char *)data, size, &s, &err);
	if (r == -1) {
		check_error(&err, data, size);
		return 0;
	}
	if (r) {
		if (r != -ENOMEM) {
			fprintf(stderr, "fuzz-scenario: scn_parse_string returned %d\n", r);
			abort();
		}
		return 0;
	}
	struct history h = {0};
	struct run_options o = {
	    .verbose = size & 4,
	    .map = (enum map_format)(size % 4),
	    .out = sink(),
	    .err = sink(),
	    .history = &h,
	};
	struct run_result res = {0};
	r = runner_run(&s, &o, &res);
	if (r && r != -ENOMEM) {
		fprintf(stderr, "fuzz-scenario: runner_run returned %d\n", r);
		abort();
	}
	if (!r && res.failures > res.expectations + res.steps + s.n) {
		fprintf(stderr, "fuzz-scenario: %zu failures for %zu expectations\n", res.failures,
		        res.expectations);
		abort();
	}
	if (!r)
		timeline_svg(sink(), &h, "fuzz");
	history_free(&h);
	scn_script_free(&s);
	return 0;
}
