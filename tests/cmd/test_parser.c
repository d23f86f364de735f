/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the scenario lexer and parser: words and columns, numbers at their
 * limits, every kind of statement, and errors at the right line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "lexer.h"
#include "parser.h"
#include "presets.h"

/* ---- lexer ---- */

/* The words point into the text, which stays until the next call. */
static int lex_one(const char *text, struct lex_line *l, struct lex_error *e)
{
	static struct lex_text t;
	lex_text_free(&t);
	assert_int_equal(lex_from_string(text, strlen(text), &t), 0);
	return lex_next_line(&t, l, e);
}

static void word_is(const struct lex_word *w, const char *text, unsigned col)
{
	assert_int_equal(w->len, strlen(text));
	assert_memory_equal(w->s, text, w->len);
	assert_int_equal(w->col, col);
}

static void test_words_and_columns(void **state)
{
	(void)state;
	struct lex_line l;
	struct lex_error e;
	assert_int_equal(lex_one("cfg.l 00:02.0 bar0 <- 0xffffffff # a comment \"x", &l, &e), 1);
	assert_int_equal(l.n, 5);
	word_is(&l.w[0], "cfg.l", 1);
	word_is(&l.w[1], "00:02.0", 7);
	word_is(&l.w[2], "bar0", 15);
	word_is(&l.w[3], "<-", 20);
	word_is(&l.w[4], "0xffffffff", 23);
}

static void test_arrows_split(void **state)
{
	(void)state;
	struct lex_line l;
	struct lex_error e;
	assert_int_equal(lex_one("mmio.l 0x10->0x5\t<-7", &l, &e), 1);
	assert_int_equal(l.n, 6);
	word_is(&l.w[1], "0x10", 8);
	word_is(&l.w[2], "->", 12);
	word_is(&l.w[3], "0x5", 14);
	word_is(&l.w[4], "<-", 18);
	word_is(&l.w[5], "7", 20);
	/* A range's dash is not an arrow. */
	assert_int_equal(lex_one("0x100-0x1ff", &l, &e), 1);
	assert_int_equal(l.n, 1);
}

static void test_quoted(void **state)
{
	(void)state;
	struct lex_line l;
	struct lex_error e;
	assert_int_equal(lex_one("note \"a # b \\\" c\\\\\" x", &l, &e), 1);
	assert_int_equal(l.n, 3);
	assert_true(l.w[1].quoted);
	assert_int_equal(l.w[1].col, 6);
	char *s = lex_strdup(&l.w[1]);
	assert_string_equal(s, "a # b \" c\\");
	free(s);
	assert_false(lex_is(&l.w[1], "a # b \" c\\"));
}

static void lex_error_at(const char *text, size_t len, unsigned col, const char *msg)
{
	struct lex_text t;
	struct lex_line l;
	struct lex_error e = {0};
	assert_int_equal(lex_from_string(text, len, &t), 0);
	assert_int_equal(lex_next_line(&t, &l, &e), -1);
	lex_text_free(&t);
	assert_int_equal(e.line, 1);
	assert_int_equal(e.col, col);
	assert_non_null(strstr(e.msg, msg));
}

static void test_lexer_errors(void **state)
{
	(void)state;
	lex_error_at("host\0x86", 8, 5, "NUL");
	lex_error_at("note \"open", 10, 6, "unterminated");
	lex_error_at("note a\"b\"", 9, 7, "quote inside");
	lex_error_at("note \"a\"b", 9, 9, "blank must follow");
	lex_error_at("host \x01", 6, 6, "0x01");
	lex_error_at("host \xc3\xa9", 7, 6, "0xc3");
	lex_error_at("# comment with NUL \0", 20, 20, "NUL");
	lex_error_at("note \"\\n\"", 9, 7, "backslash");
	char *long_line = malloc(LEX_MAX_LINE + 2);
	memset(long_line, 'a', LEX_MAX_LINE + 1);
	long_line[LEX_MAX_LINE + 1] = '\0';
	lex_error_at(long_line, LEX_MAX_LINE + 1, LEX_MAX_LINE + 1, "longer than");
	free(long_line);
	char many[LEX_MAX_WORDS * 2 + 8] = "";
	for (int i = 0; i <= LEX_MAX_WORDS; i++)
		strcat(many, "x ");
	lex_error_at(many, strlen(many), 2 * LEX_MAX_WORDS + 1, "words on one line");
}

static void test_comment_utf8_and_crlf(void **state)
{
	(void)state;
	struct lex_text t;
	struct lex_line l;
	struct lex_error e;
	const char *text = "host x86 # caf\xc3\xa9\r\n\r\nnote x\r\n";
	assert_int_equal(lex_from_string(text, strlen(text), &t), 0);
	assert_int_equal(lex_next_line(&t, &l, &e), 1);
	assert_int_equal(l.n, 2);
	assert_int_equal(lex_next_line(&t, &l, &e), 1);
	assert_int_equal(l.n, 0);
	assert_int_equal(lex_next_line(&t, &l, &e), 1);
	assert_int_equal(l.lineno, 3);
	word_is(&l.w[1], "x", 6);
	assert_int_equal(lex_next_line(&t, &l, &e), 0);
	lex_text_free(&t);
}

/* ---- numbers ---- */

static int u64_of(const char *s, uint64_t *v)
{
	struct lex_word w = {.s = s, .len = strlen(s), .col = 1};
	struct lex_error e;
	return lex_u64(&w, 1, v, &e);
}

static int size_of(const char *s, uint64_t *v)
{
	struct lex_word w = {.s = s, .len = strlen(s), .col = 1};
	struct lex_error e;
	return lex_size(&w, 1, v, &e);
}

static void test_numbers(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(u64_of("0x10", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(u64_of("16", &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(u64_of("0XfF", &v), 0);
	assert_int_equal(v, 255);
	assert_int_equal(u64_of("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(u64_of("0xffffffffffffffff", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_not_equal(u64_of("18446744073709551616", &v), 0);
	assert_int_not_equal(u64_of("0x10000000000000000", &v), 0);
	assert_int_not_equal(u64_of("0x", &v), 0);
	assert_int_not_equal(u64_of("1x", &v), 0);
	assert_int_not_equal(u64_of("-1", &v), 0);
	assert_int_not_equal(u64_of("0x1g", &v), 0);
	assert_int_not_equal(u64_of("", &v), 0);
}

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(size_of("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(size_of("1M", &v), 0);
	assert_int_equal(v, 1 << 20);
	assert_int_equal(size_of("2G", &v), 0);
	assert_true(v == 2ull << 30);
	assert_int_equal(size_of("16T", &v), 0);
	assert_true(v == 16ull << 40);
	assert_int_equal(size_of("0x40", &v), 0);
	assert_int_equal(v, 64);
	assert_int_not_equal(size_of("16777216T", &v), 0);
	assert_int_not_equal(size_of("0x10K", &v), 0);
	assert_int_not_equal(size_of("K", &v), 0);
	assert_int_not_equal(size_of("4k", &v), 0);
}

/* ---- parser ---- */

static void parse_ok(const char *text, struct scn_script *s)
{
	struct lex_error e = {0};
	int r = scn_parse_string("t.bm", text, strlen(text), s, &e);
	if (r)
		fail_msg("%u:%u: %s", e.line, e.col, e.msg);
}

static void test_host_and_devices(void **state)
{
	(void)state;
	struct scn_script s;
	parse_ok(
	    "# comment\n"
	    "host arm64 ecam 0xe0000000 buses 16 io-window 0 0xe0000000 no-decode-zero\n"
	    "device 00:02.0 virtio-net-legacy\n"
	    "device 00:03.0 virtio-blk-legacy bar0 io 256 name blk\n"
	    "device 00:04.0 id 8086:100e class 0x020000 bar0 mem32 128K bar2 mem64 1M prefetch "
	    "rom 64K msix 4 bar2+0x0 bar2+0x800 pin B\n"
	    "device 00:05.0 pci-bridge buses 1 2\n",
	    &s);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.ndevices, 4);
	const struct scn_host *h = &s.v[0].u.host;
	assert_int_equal(h->arch, SCN_ARM64);
	assert_true(h->ecam && h->ecam_base == 0xe0000000 && h->ecam_buses == 16);
	assert_true(h->io_window && h->io_window_base == 0 && h->io_window_size == 0xe0000000);
	assert_int_equal(h->decode_zero, 0);
	const struct scn_device *net = &s.v[1].u.device;
	assert_int_equal(net->vendor_id, 0x1af4);
	assert_int_equal(net->device_id, 0x1000);
	assert_int_equal(net->bars[0].type, BM_PCI_BAR_IO);
	assert_int_equal(net->bars[0].size, 64);
	const struct scn_device *blk = &s.v[2].u.device;
	assert_int_equal(blk->bars[0].size, 256);
	assert_string_equal(blk->label, "blk");
	const struct scn_device *e1000 = &s.v[3].u.device;
	assert_int_equal(e1000->vendor_id, 0x8086);
	assert_int_equal(e1000->bars[2].type, BM_PCI_BAR_MEM64);
	assert_true(e1000->bars[2].prefetchable);
	assert_int_equal(e1000->rom_size, 64 << 10);
	assert_int_equal(e1000->msix_vectors, 4);
	assert_int_equal(e1000->msix_pba_off, 0x800);
	assert_int_equal(e1000->intx_pin, 2);
	const struct scn_device *br = &s.v[4].u.device;
	assert_true(br->bridge);
	assert_int_equal(br->secondary, 1);
	assert_int_equal(br->subordinate, 2);
	assert_string_equal(s.v[1].src, "device 00:02.0 virtio-net-legacy");
	scn_script_free(&s);
}

static void test_accesses(void **state)
{
	(void)state;
	struct scn_script s;
	parse_ok("host x86 ecam 0xb0000000\n"
	         "device 00:02.0 virtio-net-legacy\n"
	         "cfg.l 00:02.0 bar0 <- 0xffffffff\n"
	         "cfg 00:02.0 command -> 0x0007\n"
	         "cf8.b 00:02.0 0x3c ->\n"
	         "ecam.q 00:02.0 0x10 <- 1\n"
	         "mmio.q 0xfe000000 -> 0x1122334455667788\n"
	         "io.w 0xc000 <- 0xbeef\n"
	         "place 00:02.0 bar0 0xc000\n"
	         "allocate bhyve io 0xc000+0x4000 mem32 0xc0000000-0xdfffffff bus-master\n"
	         "step \"the firmware\" sizes BARs\n",
	         &s);
	const struct scn_access *a = &s.v[2].u.access;
	assert_int_equal(a->via, SCN_VIA_CFG);
	assert_true(a->write);
	assert_int_equal(a->reg, 0x10);
	assert_int_equal(a->width, 4);
	assert_true(a->value == 0xffffffff);
	a = &s.v[3].u.access;
	assert_int_equal(a->reg, 4);
	assert_int_equal(a->width, 2);
	assert_true(a->check && !a->write);
	a = &s.v[4].u.access;
	assert_int_equal(a->via, SCN_VIA_CF8);
	assert_int_equal(a->width, 1);
	assert_false(a->check);
	a = &s.v[5].u.access;
	assert_int_equal(a->via, SCN_VIA_ECAM);
	assert_int_equal(a->width, 8);
	a = &s.v[6].u.access;
	assert_int_equal(a->via, SCN_VIA_MMIO);
	assert_true(a->value == 0x1122334455667788ull);
	a = &s.v[7].u.access;
	assert_int_equal(a->via, SCN_VIA_IO);
	assert_int_equal(a->addr, 0xc000);
	assert_int_equal(s.v[8].u.place.addr, 0xc000);
	const struct scn_alloc *al = &s.v[9].u.alloc;
	assert_int_equal(al->mode, BM_PCI_ALLOC_BHYVE);
	assert_true(al->io.set && al->io.base == 0xc000 && al->io.limit == 0xffff);
	assert_true(al->mem32.limit == 0xdfffffff);
	assert_true(al->bus_master);
	assert_string_equal(s.v[10].text, "the firmware sizes BARs");
	scn_script_free(&s);
}

static void test_expectations(void **state)
{
	(void)state;
	struct scn_script s;
	parse_ok("host arm64 io-window 0x3eff0000 64K\n"
	         "device 00:02.0 virtio-net-legacy\n"
	         "device 00:03.0 virtio-blk-legacy\n"
	         "expect mmio 0x10 reaches 00:02.0/bar0+0x10\n"
	         "expect io 0x1000 unassigned\n"
	         "expect map io 0x1000-0x103f 00:03.0/bar0\n"
	         "expect bar 00:02.0/bar0 at 0x1000\n"
	         "expect bar 00:03.0/rom unmapped\n"
	         "expect conflicts none\n"
	         "expect conflict 00:02.0/bar0 hides 00:03.0/bar0 over 0x1000+64\n"
	         "expect overlap-accesses 3\n"
	         "expect routing\n"
	         "expect mmio 0x3eff0000 reaches pci-io-window\n",
	         &s);
	const struct scn_expect *e = &s.v[3].u.expect;
	assert_int_equal(e->kind, SCN_EXP_REACHES);
	assert_int_equal(e->target.kind, SCN_TGT_BAR);
	assert_true(e->target.has_offset && e->target.offset == 0x10);
	e = &s.v[4].u.expect;
	assert_true(e->io);
	assert_int_equal(e->target.kind, SCN_TGT_UNASSIGNED);
	e = &s.v[5].u.expect;
	assert_int_equal(e->kind, SCN_EXP_MAP);
	assert_true(e->start == 0x1000 && e->last == 0x103f);
	e = &s.v[6].u.expect;
	assert_true(e->mapped && e->addr == 0x1000);
	e = &s.v[7].u.expect;
	assert_false(e->mapped);
	assert_int_equal(e->target.bar, BM_PCI_ROM);
	assert_int_equal(s.v[8].u.expect.count, 0);
	e = &s.v[9].u.expect;
	assert_true(e->has_range && e->start == 0x1000 && e->last == 0x103f);
	assert_int_equal(e->loser.bdf.dev, 3);
	assert_int_equal(s.v[10].u.expect.count, 3);
	assert_int_equal(s.v[11].u.expect.kind, SCN_EXP_ROUTING);
	assert_int_equal(s.v[12].u.expect.target.kind, SCN_TGT_REGION);
	assert_string_equal(s.v[12].u.expect.target.region, "pci-io-window");
	char buf[64];
	scn_target_format(&s.v[3].u.expect.target, buf, sizeof(buf));
	assert_string_equal(buf, "00:02.0/bar0+0x10");
	scn_script_free(&s);
}

struct bad {
	const char *text;
	unsigned line, col;
	const char *msg;
};

static const struct bad bad[] = {
    {"device 00:02.0 nvme\n", 1, 1, "first statement"},
    {"host x86\nhost x86\n", 2, 1, "one host"},
    {"host sparc\n", 1, 6, "x86 or arm64"},
    {"host x86 io-window 0 1\n", 1, 10, "arm64"},
    {"host arm64 ecam\n", 1, 16, "ECAM base"},
    {"host arm64 ecam 0x100000 buses 0\n", 1, 32, "at least one"},
    {"host x86\ndevice 0:2.0 nvme\ndevice 00:02.0 nvme\n", 3, 8, "already"},
    {"host x86\ndevice 00:00.0 nvme\n", 2, 8, "host bridge"},
    {"host x86\ndevice 00:02.8 nvme\n", 2, 8, "function"},
    {"host x86\ndevice 00:02.0 bar0 io 64\n", 2, 8, "vendor"},
    {"host x86\ndevice 00:02.0 nvme bar0 mem32 48\n", 2, 32, "power of two"},
    {"host x86\ndevice 00:02.0 id 1:2 bar5 mem64 4K\n", 2, 23, "next BAR"},
    {"host x86\ndevice 00:02.0 id 1:2 rom 1K\n", 2, 27, "2K"},
    {"host x86\ndevice 00:02.0 id 1:2 msix 4 rom+0 bar0\n", 2, 30, "memory BAR"},
    {"host x86\ndevice 00:02.0 id 12345:2\n", 2, 19, "VVVV:DDDD"},
    {"host x86\ncfg.x 00:02.0 0 -> 1\n", 2, 1, ".b .w .l"},
    {"host x86\ncfg.q 00:02.0 0 -> 1\n", 2, 1, ".b .w .l"},
    {"host x86\ncfg.l 00:02.0 0x1000 -> 1\n", 2, 15, "0xfff"},
    {"host x86\ncfg.l 00:02.0 0x10 = 1\n", 2, 20, "<- VALUE"},
    {"host x86\ncfg.l 00:02.0 0x10 <-\n", 2, 22, "value to write"},
    {"host x86\ncfg.l 00:02.0 0x10 -> 1 2\n", 2, 25, "nothing more"},
    {"host x86\nmmio.l 0x2 -> 1\n", 2, 8, "not aligned"},
    {"host x86\nio.l 0x10000 -> 1\n", 2, 6, "outside the port range"},
    {"host arm64\nio.b 0x10 -> 1\n", 2, 6, "no I/O window"},
    {"host arm64\necam.l 00:00.0 0 -> 1\n", 2, 1, "no ECAM"},
    {"host x86 ecam 0x100000 buses 2\necam.l 02:00.0 0 -> 1\n", 2, 1, "past the ECAM"},
    {"host x86\nexpect\n", 2, 7, "what to expect"},
    {"host x86\nexpect mmio 0x10 hits 00:02.0/bar0\n", 2, 18, "reaches or unassigned"},
    {"host x86\nexpect mmio 0x10 reaches 00:02.0/bar7\n", 2, 26, "barN"},
    {"host x86\nexpect conflicts some\n", 2, 18, "a number"},
    {"host x86\nexpect bar 00:02.0/bar0 at 1\n", 2, 12, "no device"},
    {"host x86\nstep\n", 2, 5, "label"},
    {"host x86\nallocate greedy\n", 2, 10, "best-fit"},
    {"host x86\nallocate bhyve io 0x10-0x1\n", 2, 19, "ends before"},
    {"host x86\nallocate bhyve io 0xffffffffffffffff+2\n", 2, 19, "passes 2^64"},
    {"host x86\nallocate bhyve io 5\n", 2, 19, "START-LAST"},
    {"host x86\n\"host\"\n", 2, 1, "keyword"},
};

static void test_errors(void **state)
{
	(void)state;
	size_t wrong = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct scn_script s;
		struct lex_error e = {0};
		int r = scn_parse_string("t.bm", bad[i].text, strlen(bad[i].text), &s, &e);
		if (r != -1 || e.line != bad[i].line || e.col != bad[i].col ||
		    !strstr(e.msg, bad[i].msg)) {
			print_error(
			    "case %zu (%s): got %d at %u:%u \"%s\", expected %u:%u \"%s\"\n", i,
			    bad[i].text, r, e.line, e.col, e.msg, bad[i].line, bad[i].col,
			    bad[i].msg);
			wrong++;
		}
		assert_int_equal(s.n, 0);
	}
	assert_int_equal(wrong, 0);
}

static void test_register_names(void **state)
{
	(void)state;
	unsigned w;
	assert_int_equal(scn_register_by_name("command", 7, false, &w), 4);
	assert_int_equal(w, 2);
	assert_int_equal(scn_register_by_name("bar5", 4, false, &w), 0x24);
	assert_int_equal(scn_register_by_name("bar5", 4, true, &w), -1);
	assert_int_equal(scn_register_by_name("rom", 3, false, &w), 0x30);
	assert_int_equal(scn_register_by_name("rom", 3, true, &w), 0x38);
	assert_int_equal(scn_register_by_name("secondary-bus", 13, true, &w), 0x19);
	assert_int_equal(w, 1);
	assert_int_equal(scn_register_by_name("nonsense", 8, false, &w), -1);
}

/* Every preset is a valid device on both kinds of host. */
static void test_presets(void **state)
{
	(void)state;
	const struct preset_info *p;
	size_t n = 0;
	for (size_t i = 0; (p = preset_at(i)); i++, n++) {
		char text[160];
		snprintf(text, sizeof(text), "host x86\ndevice 00:02.0 %s\n", p->name);
		struct scn_script s;
		parse_ok(text, &s);
		assert_string_equal(s.v[1].u.device.preset, p->name);
		scn_script_free(&s);
	}
	assert_true(n >= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_words_and_columns),
	    cmocka_unit_test(test_arrows_split),
	    cmocka_unit_test(test_quoted),
	    cmocka_unit_test(test_lexer_errors),
	    cmocka_unit_test(test_comment_utf8_and_crlf),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_host_and_devices),
	    cmocka_unit_test(test_accesses),
	    cmocka_unit_test(test_expectations),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_register_names),
	    cmocka_unit_test(test_presets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
