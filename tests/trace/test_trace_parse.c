/* SPDX-License-Identifier: BSD-2-Clause */
/* The QEMU trace reader: every line kind, folds, widths, and malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "qemu_trace.h"

static int parse_buf(const char *buf, size_t len, const struct qemu_trace_limits *limits,
                     struct qemu_trace **out, struct qemu_error *err)
{
	FILE *f = fmemopen((void *)buf, len, "r");
	assert_non_null(f);
	int ret = qemu_trace_parse(f, limits, out, err);
	fclose(f);
	return ret;
}

static struct qemu_trace *parse_ok(const char *text)
{
	struct qemu_trace *t = NULL;
	struct qemu_error err;
	int ret = parse_buf(text, strlen(text), NULL, &t, &err);
	if (ret)
		print_message("unexpected error %d line %u: %s\n", ret, err.line, err.message);
	assert_int_equal(ret, 0);
	assert_non_null(t);
	return t;
}

/* Parses text expecting an error at line; returns the message for further checks. */
static void parse_bad(const char *text, int code, unsigned line, const char *needle)
{
	struct qemu_trace *t = (struct qemu_trace *)1;
	struct qemu_error err;
	int ret = parse_buf(text, strlen(text), NULL, &t, &err);
	if (ret != code || err.line != line || (needle && !strstr(err.message, needle)))
		print_message("got %d line %u: %s\n", ret, err.line, err.message);
	assert_int_equal(ret, code);
	assert_int_equal(err.code, code);
	assert_int_equal(err.line, line);
	assert_null(t);
	if (needle)
		assert_non_null(strstr(err.message, needle));
}

static void test_cfg_read_paired(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("pci_cfg_read virtio-net-pci 00:02.0 @0x0 -> 0x1af4\n"
	             "memory_region_ops_read cpu 0 mr 0x5617ca44a2d0 addr 0x10000 value 0x1af4 "
	             "size 2 name 'pcie-mmcfg-mmio'\n");
	assert_int_equal(t->count, 2);
	const struct qemu_trace_event *e = &t->events[0];
	assert_int_equal(e->kind, QEMU_TRACE_CFG_READ);
	assert_int_equal(e->line, 1);
	assert_int_equal(e->bdf, QEMU_TRACE_BDF(0, 2, 0));
	assert_int_equal(e->reg, 0);
	assert_int_equal(e->value, 0x1af4);
	assert_int_equal(e->width, 2);
	assert_int_equal(e->width_source, QEMU_TRACE_WIDTH_PAIRED);
	assert_int_equal(e->pair_line, 2);
	assert_string_equal(e->text, "virtio-net-pci");
	assert_int_equal(e->repeat, 1);
	const struct qemu_trace_event *m = &t->events[1];
	assert_int_equal(m->kind, QEMU_TRACE_MR_READ);
	assert_int_equal(m->cpu, 0);
	assert_int_equal(m->addr, 0x10000);
	assert_int_equal(m->width, 2);
	assert_string_equal(m->text, "pcie-mmcfg-mmio");
	assert_int_equal(t->stats.width_paired, 1);
	assert_int_equal(t->stats.width_inferred, 0);
	assert_int_equal(t->stats.cfg_reads, 1);
	qemu_trace_free(t);
}

static void test_cfg_write_paired_cf8(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("memory_region_ops_write cpu 0 mr 0x1 addr 0xcf8 value 0x80000804 size 4 "
	             "name 'pci-conf-idx'\n"
	             "memory_region_ops_write cpu 0 mr 0x2 addr 0xcfc value 0x103 size 2 "
	             "name 'pci-conf-data'\n"
	             "pci_cfg_write PIIX3 00:01.0 @0x4 <- 0x103\n");
	assert_int_equal(t->count, 3);
	const struct qemu_trace_event *e = &t->events[2];
	assert_int_equal(e->kind, QEMU_TRACE_CFG_WRITE);
	assert_int_equal(e->bdf, QEMU_TRACE_BDF(0, 1, 0));
	assert_int_equal(e->reg, 4);
	assert_int_equal(e->width, 2);
	assert_int_equal(e->width_source, QEMU_TRACE_WIDTH_PAIRED);
	assert_int_equal(e->pair_line, 2);
	assert_int_equal(t->stats.cfg_writes, 1);
	qemu_trace_free(t);
}

/* A region access whose address or value disagrees is not the carrier: the width is
 * inferred instead. */
static void test_pairing_rejects_mismatch(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("memory_region_ops_write cpu 0 mr 0x2 addr 0xcfe value 0x7 size 1 "
	             "name 'pci-conf-data'\n"
	             "pci_cfg_write dev 00:01.0 @0x4 <- 0x7\n"
	             "pci_cfg_read dev 00:01.0 @0x10 -> 0xffffffc1\n"
	             "memory_region_ops_read cpu 0 mr 0x2 addr 0xcfc value 0xffffffc1 size 4 "
	             "name 'virtio-pci'\n"
	             "pci_cfg_read dev 00:01.0 @0x14 -> 0x0\n"
	             "pci_cfg_read dev 00:01.0 @0x18 -> 0x0\n"
	             "memory_region_ops_read cpu 0 mr 0x2 addr 0xcfc value 0x0 size 4 "
	             "name 'pci-conf-data'\n");
	assert_int_equal(t->events[1].width_source, QEMU_TRACE_WIDTH_INFERRED);
	assert_int_equal(t->events[1].width, 2);
	assert_int_equal(t->events[2].width_source, QEMU_TRACE_WIDTH_INFERRED);
	assert_int_equal(t->events[2].width, 4);
	/* The next configuration access ends the search for a pair. */
	assert_int_equal(t->events[4].width_source, QEMU_TRACE_WIDTH_INFERRED);
	assert_int_equal(t->events[5].width_source, QEMU_TRACE_WIDTH_PAIRED);
	assert_int_equal(t->stats.width_paired, 1);
	assert_int_equal(t->stats.width_inferred, 3);
	qemu_trace_free(t);
}

static void test_ecam_pairing_checks_function(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("pci_cfg_read a 00:03.0 @0x4 -> 0x7\n"
	             "memory_region_ops_read cpu 0 mr 0x1 addr 0x10004 value 0x7 size 1 "
	             "name 'pcie-mmcfg-mmio'\n"
	             "pci_cfg_read a 00:03.0 @0x4 -> 0x7\n"
	             "memory_region_ops_read cpu 0 mr 0x1 addr 0x18004 value 0x7 size 1 "
	             "name 'pcie-mmcfg-mmio'\n");
	assert_int_equal(t->events[0].width_source, QEMU_TRACE_WIDTH_INFERRED);
	assert_int_equal(t->events[2].width_source, QEMU_TRACE_WIDTH_PAIRED);
	assert_int_equal(t->events[2].width, 1);
	qemu_trace_free(t);
}

static void test_map_lines(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("pci_update_mappings_add virtio-net-pci 00:02.0 0,0x1000+0x40\n"
	             "pci_update_mappings_del virtio-net-pci 00:02.0 6,0xfeb80000+0x40000\n"
	             "pci_update_mappings_add d=0x55d0c0 01:1f.7 4,0xffffffff00000000+0x4000\n");
	assert_int_equal(t->count, 3);
	assert_int_equal(t->events[0].kind, QEMU_TRACE_MAP_ADD);
	assert_int_equal(t->events[0].bar, 0);
	assert_int_equal(t->events[0].addr, 0x1000);
	assert_int_equal(t->events[0].size, 0x40);
	assert_int_equal(t->events[0].width_source, QEMU_TRACE_WIDTH_NONE);
	assert_int_equal(t->events[1].kind, QEMU_TRACE_MAP_DEL);
	assert_int_equal(t->events[1].bar, 6);
	assert_int_equal(t->events[1].size, 0x40000);
	assert_int_equal(t->events[2].bdf, QEMU_TRACE_BDF(1, 0x1f, 7));
	assert_int_equal(t->events[2].addr, 0xffffffff00000000ull);
	qemu_trace_free(t);
}

static void test_console_and_other_lines(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("fw_cfg_select 0x5617cab18be0 key 0x0000 'signature', ret: 1\n"
	             "# console: \"=> pci bar\\r\\n\\t\\\"q\\\" \\\\ \\x41\\b\"\n"
	             "# a comment\n"
	             "\n"
	             "12345@1700000000.123456:pci_cfg_read x 00:00.0 @0xe -> 0x80\n");
	assert_int_equal(t->count, 2);
	const struct qemu_trace_event *c = &t->events[0];
	assert_int_equal(c->kind, QEMU_TRACE_CONSOLE);
	assert_int_equal(c->line, 2);
	const char want[] = "=> pci bar\r\n\t\"q\" \\ A\b";
	assert_int_equal(c->text_len, sizeof(want) - 1);
	assert_memory_equal(c->text, want, sizeof(want) - 1);
	assert_int_equal(t->events[1].line, 5);
	assert_int_equal(t->events[1].reg, 0xe);
	assert_int_equal(t->events[1].width, 1);
	assert_int_equal(t->stats.skipped, 3);
	assert_int_equal(t->stats.lines, 5);
	qemu_trace_free(t);
}

static void test_folded_repeats(void **state)
{
	(void)state;
	struct qemu_trace *t = parse_ok(
	    "memory_region_ops_read cpu 0 mr 0x1 addr 0x3eff1012 value 0x0 size 1 "
	    "name 'virtio-pci'\n"
	    "# previous line repeated 5 more times (identical consecutive reads collapsed)\n"
	    "pci_cfg_read a 00:01.0 @0x0 -> 0x1af4\n"
	    "# previous line repeated 2 more times\n"
	    "# previous line repeated 1 more times\n"
	    "fw_cfg_select x\n"
	    "# previous line repeated 9 more times\n");
	assert_int_equal(t->count, 2);
	assert_int_equal(t->events[0].repeat, 6);
	assert_int_equal(t->events[1].repeat, 4);
	assert_int_equal(t->stats.cfg_reads, 4);
	qemu_trace_free(t);
}

/* Fold lines are comments: one that does not parse, or repeats nothing, is skipped. Only a
 * count no event can hold is an error. */
static void test_fold_lines_never_stop(void **state)
{
	(void)state;
	struct qemu_trace *t =
	    parse_ok("# previous line repeated 3 more times\n"
	             "pci_cfg_read a 00:01.0 @0x0 -> 0x1\n"
	             "# previous line repeated x more times\n"
	             "# previous line repeated 99999999999999999999999 more times\n"
	             "# previous line repeated 2 more times\n");
	assert_int_equal(t->count, 1);
	assert_int_equal(t->events[0].repeat, 3);
	assert_int_equal(t->stats.skipped, 3);
	qemu_trace_free(t);
	parse_bad("pci_cfg_read a 00:01.0 @0x0 -> 0x1\n"
	          "# previous line repeated 4294967295 more times\n",
	          -EBADMSG, 2, "passes");
}

static void expect_console(const char *line, const char *want, size_t want_len)
{
	struct qemu_trace *t = parse_ok(line);
	assert_int_equal(t->count, 1);
	assert_int_equal(t->events[0].kind, QEMU_TRACE_CONSOLE);
	assert_int_equal(t->events[0].text_len, want_len);
	assert_memory_equal(t->events[0].text, want, want_len);
	qemu_trace_free(t);
}
#define EXPECT_CONSOLE(line, want) expect_console(line, want, sizeof(want) - 1)

/* What OVMF and edk2 print comes JSON-escaped; escapes nobody knows stay as they were
 * written, and a console line that is no quoted string is kept whole. */
static void test_console_lines_never_stop(void **state)
{
	(void)state;
	EXPECT_CONSOLE("# console: \"\\u001b[2J\\u001b[01;01H\\u0000\\u00e9\\u20ac\"\n",
	               "\033[2J\033[01;01H\0\xc3\xa9\xe2\x82\xac");
	EXPECT_CONSOLE("# console: \"\\q \\x4 \\u12 \\ud800 \\x\"\n", "\\q \\x4 \\u12 \\ud800 \\x");
	EXPECT_CONSOLE("# console: \"abc\n", "\"abc");
	EXPECT_CONSOLE("# console: \"abc\\", "\"abc\\");
	EXPECT_CONSOLE("# console: \"a\" b\n", "\"a\" b");
	EXPECT_CONSOLE("# console: plain text\n", "plain text");
	EXPECT_CONSOLE("# console:\n", "");
	/* Control bytes in a comment are its own business. */
	EXPECT_CONSOLE("# console: \"\x1b[0m\"\n", "\x1b[0m");
	static const char raw[] = "# \x01\x02 raw\n#\0nul\n";
	struct qemu_trace *t = NULL;
	struct qemu_error err;
	assert_int_equal(parse_buf(raw, sizeof(raw) - 1, NULL, &t, &err), 0);
	assert_int_equal(t->count, 0);
	assert_int_equal(t->stats.skipped, 2);
	qemu_trace_free(t);
}

static void test_truncated_lines(void **state)
{
	(void)state;
	parse_bad("pci_cfg_write virtio-net-pci 00:02.0 @0x10 <-\n", -EBADMSG, 1, "a space");
	parse_bad("pci_cfg_write virtio-net-pci 00:02.0 @0x10 <- 0x\n", -EBADMSG, 1, "hex digits");
	parse_bad("pci_cfg_read virtio-net-pci 00:02.0 @0x10\n", -EBADMSG, 1, "pci_cfg_read");
	parse_bad("ok_event x\npci_cfg_read virtio-net-pci 00:0", -EBADMSG, 2, "a space");
	parse_bad("pci_update_mappings_add virtio-net-pci 00:02.0 0,0x1000\n", -EBADMSG, 1, "+");
	parse_bad("memory_region_ops_read cpu 0 mr 0x1 addr 0x2 value 0x3 size\n", -EBADMSG, 1,
	          "a space");
	parse_bad("memory_region_ops_read cpu 0 mr 0x1 addr 0x2 value 0x3 size 4 name 'abc\n",
	          -EBADMSG, 1, "closing quote");
	parse_bad("pci_cfg_read\n", -EBADMSG, 1, "a space");
}

static void test_missing_and_bad_fields(void **state)
{
	(void)state;
	parse_bad("pci_cfg_read 00:02.0 @0x10 -> 0x0\n", -EBADMSG, 1, "bus:device");
	parse_bad("pci_cfg_write a 00:02.0 @0x10 -> 0x0\n", -EBADMSG, 1, "<-");
	parse_bad("pci_cfg_read a 00:02.0 0x10 -> 0x0\n", -EBADMSG, 1, "@");
	parse_bad("pci_cfg_read a 00:20.0 @0x10 -> 0x0\n", -EBADMSG, 1, NULL);
	parse_bad("pci_cfg_read a 00:02.8 @0x10 -> 0x0\n", -EBADMSG, 1, NULL);
	parse_bad("pci_cfg_read a 100:02.0 @0x10 -> 0x0\n", -EBADMSG, 1, NULL);
	parse_bad("pci_cfg_read a 00:02.0 @0x1000 -> 0x0\n", -EBADMSG, 1, "range");
	parse_bad("pci_cfg_read a 00:02.0 @0x10 -> 0x0 trailing\n", -EBADMSG, 1, "end of line");
	parse_bad("pci_update_mappings_add a 00:02.0 7,0x1000+0x40\n", -EBADMSG, 1, "range");
	parse_bad("pci_update_mappings_add a 00:02.0 0,0x1000+0x0\n", -EBADMSG, 1, "empty");
	parse_bad("pci_update_mappings_add a 00:02.0 0,0xffffffffffffffff+0x2\n", -EBADMSG, 1,
	          "wraps");
	parse_bad("memory_region_ops_write cpu 0 mr 0x1 addr 0x2 value 0x3 size 3 name 'x'\n",
	          -EBADMSG, 1, "size 3");
}

static void test_huge_numbers(void **state)
{
	(void)state;
	parse_bad("pci_cfg_write a 00:02.0 @0x10 <- 0x100000000\n", -EBADMSG, 1, "range");
	parse_bad("pci_update_mappings_add a 00:02.0 0,0x10000000000000000+0x40\n", -EBADMSG, 1,
	          "range");
	parse_bad("memory_region_ops_read cpu 99999999999 mr 0x1 addr 0x2 value 0x3 size 4\n",
	          -EBADMSG, 1, "range");
	struct qemu_trace *t = parse_ok(
	    "memory_region_ops_read cpu -1 mr 0xffffffffffffffff addr 0xffffffffffffffff value "
	    "0xffffffffffffffff size 8\n");
	assert_int_equal(t->events[0].cpu, -1);
	assert_int_equal(t->events[0].value, UINT64_MAX);
	assert_string_equal(t->events[0].text, "");
	qemu_trace_free(t);
}

static void test_inferred_widths(void **state)
{
	(void)state;
	assert_int_equal(qemu_trace_infer_width(0x04, 0x7), 2);
	assert_int_equal(qemu_trace_infer_width(0x04, 0x100007), 4);
	assert_int_equal(qemu_trace_infer_width(0x0c, 0x8), 1);
	assert_int_equal(qemu_trace_infer_width(0x0d, 0x80), 1);
	assert_int_equal(qemu_trace_infer_width(0x0e, 0x0), 1);
	assert_int_equal(qemu_trace_infer_width(0x10, 0x0), 4);
	assert_int_equal(qemu_trace_infer_width(0x12, 0xffff), 2);
	assert_int_equal(qemu_trace_infer_width(0x30, 0xfffffffe), 4);
	assert_int_equal(qemu_trace_infer_width(0x3c, 0xb), 1);
	assert_int_equal(qemu_trace_infer_width(0x40, 0x1), 4);
	assert_int_equal(qemu_trace_infer_width(0x62, 0x1), 2);
	assert_int_equal(qemu_trace_infer_width(0x63, 0x1), 1);
	assert_int_equal(qemu_trace_infer_width(0x05, 0x100), -ERANGE);
	assert_int_equal(qemu_trace_infer_width(0x06, 0x10000), -ERANGE);
	assert_int_equal(qemu_trace_infer_width(0xffc, 0x1), 4);
	assert_int_equal(qemu_trace_infer_width(0x1000, 0x1), -ERANGE);
	/* An unpaired write that no aligned access can carry is refused with its line. */
	parse_bad("pci_cfg_read a 00:01.0 @0x0 -> 0x1\npci_cfg_write a 00:01.0 @0x5 <- 0x1234\n",
	          -EBADMSG, 2, "carry");
}

static void test_garbage(void **state)
{
	(void)state;
	static const char nul[] = "pci_cfg_read a 00:01.0 @0x0 -> 0x1\nabc\0def\n";
	struct qemu_trace *t = NULL;
	struct qemu_error err;
	assert_int_equal(parse_buf(nul, sizeof(nul) - 1, NULL, &t, &err), -EBADMSG);
	assert_int_equal(err.line, 2);
	assert_null(t);
	parse_bad("\x01\x02\x03garbage\n", -EBADMSG, 1, "control byte");
	parse_bad("ok line\n\x1b[31mred\n", -EBADMSG, 2, "control byte");
	/* Free text without control bytes is a line of another kind, and skipped. */
	t = parse_ok("qemu-system-x86_64: terminating on signal 15\n\xc3\xa9t\xc3\xa9\n");
	assert_int_equal(t->count, 0);
	assert_int_equal(t->stats.skipped, 2);
	qemu_trace_free(t);

	/* Random bytes: an error or a trace, never a crash. */
	unsigned seed = 12345;
	char buf[512];
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(seed % sizeof(buf));
		static const char alphabet[] = "pci_cfg_read write update mappings add del memory "
		                               "region ops 0x1f:.@-><+,#\"'\\\n console previous "
		                               "line repeated more times 0123456789abcdef";
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = round % 3 == 0 ? (char)(seed >> 16)
			                        : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		t = NULL;
		int ret = parse_buf(buf, len, NULL, &t, &err);
		if (ret == 0)
			qemu_trace_free(t);
		else
			assert_null(t);
		seed = seed * 1103515245u + 12345u;
	}
}

static void test_limits(void **state)
{
	(void)state;
	struct qemu_trace_limits small = {.max_line = 64, .max_events = 2, .max_text = 4096};
	struct qemu_trace *t = NULL;
	struct qemu_error err;
	char longline[200];
	memset(longline, 'a', sizeof(longline));
	longline[sizeof(longline) - 1] = '\n';
	assert_int_equal(parse_buf(longline, sizeof(longline), &small, &t, &err), -EFBIG);
	assert_int_equal(err.line, 1);
	assert_null(t);
	const char three[] = "pci_cfg_read a 00:01.0 @0x0 -> 0x1\n"
	                     "pci_cfg_read a 00:01.0 @0x0 -> 0x1\n"
	                     "pci_cfg_read a 00:01.0 @0x0 -> 0x1\n";
	assert_int_equal(parse_buf(three, sizeof(three) - 1, &small, &t, &err), -EFBIG);
	assert_int_equal(err.line, 3);
	/* Console text counts against the text limit. */
	small.max_events = 1000;
	small.max_text = 100;
	char consoles[64 * 40];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(consoles + n, "# console: \"0123456789\"\n");
	assert_int_equal(parse_buf(consoles, n, &small, &t, &err), -EFBIG);
	assert_true(err.line > 1 && err.line < 40);
	assert_int_equal(qemu_trace_parse(NULL, NULL, &t, &err), -EINVAL);
}

static void test_crlf_and_no_final_newline(void **state)
{
	(void)state;
	struct qemu_trace *t = parse_ok("pci_cfg_read a 00:01.0 @0x0 -> 0x1\r\n"
	                                "pci_update_mappings_del a 00:01.0 0,0x1000+0x40");
	assert_int_equal(t->count, 2);
	assert_int_equal(t->events[1].kind, QEMU_TRACE_MAP_DEL);
	qemu_trace_free(t);
}

static void test_old_formats(void **state)
{
	(void)state;
	struct qemu_trace *t = parse_ok("pci_cfg_read e1000 10:2 @0x0 -> 0x8086\n");
	assert_int_equal(t->events[0].bdf, QEMU_TRACE_BDF(0, 10, 2));
	qemu_trace_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cfg_read_paired),
	    cmocka_unit_test(test_cfg_write_paired_cf8),
	    cmocka_unit_test(test_pairing_rejects_mismatch),
	    cmocka_unit_test(test_ecam_pairing_checks_function),
	    cmocka_unit_test(test_map_lines),
	    cmocka_unit_test(test_console_and_other_lines),
	    cmocka_unit_test(test_folded_repeats),
	    cmocka_unit_test(test_fold_lines_never_stop),
	    cmocka_unit_test(test_console_lines_never_stop),
	    cmocka_unit_test(test_truncated_lines),
	    cmocka_unit_test(test_missing_and_bad_fields),
	    cmocka_unit_test(test_huge_numbers),
	    cmocka_unit_test(test_inferred_widths),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_crlf_and_no_final_newline),
	    cmocka_unit_test(test_old_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
