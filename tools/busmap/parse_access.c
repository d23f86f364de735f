/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Accesses ("cfg.l 00:02.0 bar0 <- 0xffffffff", "mmio.l 0xdf000000 -> 0") and expectations
 * ("expect mmio 0xdf000000 reaches 00:02.0/bar0").
 */
#include "parser_internal.h"

#include <string.h>

/* ---- register names ---- */

struct reg_name {
	const char *name;
	unsigned reg, width;
	int header; /* -1: both, 0: endpoints, 1: bridges */
};

static const struct reg_name reg_names[] = {
    {"vendor", 0x00, 2, -1},
    {"device", 0x02, 2, -1},
    {"command", 0x04, 2, -1},
    {"status", 0x06, 2, -1},
    {"revision", 0x08, 1, -1},
    {"class", 0x08, 4, -1},
    {"cacheline", 0x0c, 1, -1},
    {"latency", 0x0d, 1, -1},
    {"header", 0x0e, 1, -1},
    {"bist", 0x0f, 1, -1},
    {"bar0", 0x10, 4, -1},
    {"bar1", 0x14, 4, -1},
    {"bar2", 0x18, 4, 0},
    {"bar3", 0x1c, 4, 0},
    {"bar4", 0x20, 4, 0},
    {"bar5", 0x24, 4, 0},
    {"subsys-vendor", 0x2c, 2, 0},
    {"subsys", 0x2e, 2, 0},
    {"rom", 0x30, 4, 0},
    {"rom", 0x38, 4, 1},
    {"capptr", 0x34, 1, -1},
    {"intline", 0x3c, 1, -1},
    {"intpin", 0x3d, 1, -1},
    {"primary-bus", 0x18, 1, 1},
    {"secondary-bus", 0x19, 1, 1},
    {"subordinate-bus", 0x1a, 1, 1},
    {"io-base", 0x1c, 1, 1},
    {"io-limit", 0x1d, 1, 1},
    {"mem-base", 0x20, 2, 1},
    {"mem-limit", 0x22, 2, 1},
    {"pref-base", 0x24, 2, 1},
    {"pref-limit", 0x26, 2, 1},
    {"pref-base-upper", 0x28, 4, 1},
    {"pref-limit-upper", 0x2c, 4, 1},
    {"io-base-upper", 0x30, 2, 1},
    {"io-limit-upper", 0x32, 2, 1},
    {"bridge-control", 0x3e, 2, 1},
};

int scn_register_by_name(const char *name, size_t len, bool bridge, unsigned *width)
{
	for (size_t i = 0; i < sizeof(reg_names) / sizeof(reg_names[0]); i++) {
		const struct reg_name *r = &reg_names[i];
		if (r->header >= 0 && r->header != (int)bridge)
			continue;
		if (strlen(r->name) == len && memcmp(r->name, name, len) == 0) {
			*width = r->width;
			return (int)r->reg;
		}
	}
	return -1;
}

/* ---- accesses ---- */

struct verb {
	const char *name;
	enum scn_via via;
	unsigned max_width;
};

static const struct verb verbs[] = {
    {"cfg", SCN_VIA_CFG, 4},   {"cf8", SCN_VIA_CF8, 4}, {"ecam", SCN_VIA_ECAM, 8},
    {"mmio", SCN_VIA_MMIO, 8}, {"io", SCN_VIA_IO, 4},
};

static int width_of(char c)
{
	switch (c) {
	case 'b':
		return 1;
	case 'w':
		return 2;
	case 'l':
		return 4;
	case 'q':
		return 8;
	default:
		return 0;
	}
}

/* "cfg", "cfg.w"...: the verb and the width (0 when not given). */
static const struct verb *parse_verb(struct parser *p, const struct lex_word *w, unsigned *width)
{
	const char *dot = memchr(w->s, '.', w->len);
	size_t n = dot ? (size_t)(dot - w->s) : w->len;
	*width = 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) != n || memcmp(verbs[i].name, w->s, n) != 0)
			continue;
		if (dot) {
			int k = w->len == n + 2 ? width_of(dot[1]) : 0;
			if (!k || (unsigned)k > verbs[i].max_width) {
				p_fail(p, w, "%s takes the widths .b .w .l%s", verbs[i].name,
				       verbs[i].max_width == 8 ? " .q" : "");
				return NULL;
			}
			*width = (unsigned)k;
		}
		return &verbs[i];
	}
	p_fail(p, w,
	       "unknown statement \"%.*s\" (host, device, place, allocate, cfg, cf8, ecam, "
	       "mmio, io, step, note, expect)",
	       w->len > 40 ? 40 : (int)w->len, w->s);
	return NULL;
}

static int config_register(struct parser *p, struct scn_access *a, unsigned *width,
                           const struct lex_word **where)
{
	const struct lex_word *w = p_need(p, "a register (offset or name such as command, bar0)");
	if (!w)
		return -1;
	*where = w;
	const struct scn_device *d = p_device(p, a->bdf);
	unsigned natural;
	int reg = w->quoted ? -1 : scn_register_by_name(w->s, w->len, d && d->bridge, &natural);
	if (reg >= 0) {
		a->reg = (unsigned)reg;
		if (!*width)
			*width = natural;
		return 0;
	}
	uint64_t v;
	if (p_uint(p, w, 0xfff, &v))
		return -1;
	a->reg = (unsigned)v;
	return 0;
}

static int check_config_access(struct parser *p, const struct lex_word *verb,
                               const struct lex_word *regw, const struct scn_access *a)
{
	if (a->reg % a->width)
		return p_fail(p, regw, "register %#x is not aligned to the %u-byte access", a->reg,
		              a->width);
	if (a->via == SCN_VIA_CF8 && p->host.arch != SCN_X86)
		return p_fail(p, verb, "CF8/CFC exist on x86 hosts only");
	if (a->via == SCN_VIA_CF8 && a->reg >= 256)
		return p_fail(p, verb, "CF8/CFC reach registers 0..0xff only");
	if (a->via == SCN_VIA_ECAM && !p->host.ecam)
		return p_fail(p, verb, "the host has no ECAM window (host ... ecam BASE)");
	if (a->via == SCN_VIA_ECAM && a->bdf.bus >= p->host.ecam_buses)
		return p_fail(p, verb, "bus %02x is past the ECAM window's %u buses", a->bdf.bus,
		              p->host.ecam_buses);
	return 0;
}

static int port_access(struct parser *p, const struct lex_word *w, const struct scn_access *a)
{
	if (p->host.arch == SCN_ARM64 && !p->host.io_window)
		return p_fail(p, w, "this arm64 host has no I/O window (host arm64 io-window ...)");
	uint64_t top = p->host.arch == SCN_X86 ? 0x10000 : p->host.io_window_size;
	if (a->addr >= top || top - a->addr < a->width)
		return p_fail(p, w, "port %#llx is outside the port range (0..%#llx)",
		              (unsigned long long)a->addr, (unsigned long long)(top - 1));
	return 0;
}

static int address(struct parser *p, struct scn_access *a)
{
	const struct lex_word *w =
	    p_need(p, a->via == SCN_VIA_IO ? "a port number" : "an MMIO address");
	if (!w || p_u64(p, w, &a->addr))
		return -1;
	if (a->addr & (a->width - 1))
		return p_fail(p, w, "address not aligned to the %u-byte access", a->width);
	return a->via == SCN_VIA_IO ? port_access(p, w, a) : 0;
}

static int direction(struct parser *p, struct scn_access *a)
{
	const struct lex_word *w = p_need(p, "<- VALUE (write) or -> [VALUE] (read)");
	if (!w)
		return -1;
	if (lex_is(w, "<-"))
		a->write = true;
	else if (!lex_is(w, "->"))
		return p_fail(p, w, "expected <- VALUE (write) or -> [VALUE] (read)");
	const struct lex_word *v = p_next(p);
	if (!v) {
		if (a->write)
			return p_fail(p, NULL, "expected the value to write");
		return 0;
	}
	if (p_u64(p, v, &a->value))
		return -1;
	if (a->width < 8 && a->value >> (8 * a->width))
		return p_fail(p, v, "%#llx does not fit in %u bytes", (unsigned long long)a->value,
		              a->width);
	a->check = !a->write;
	return p_end(p);
}

int parse_access(struct parser *p, const struct lex_word *verb, struct scn_stmt *st)
{
	struct scn_access *a = &st->u.access;
	*a = (struct scn_access){0};
	unsigned width;
	const struct verb *v = parse_verb(p, verb, &width);
	if (!v)
		return -1;
	a->via = v->via;
	if (v->via == SCN_VIA_MMIO || v->via == SCN_VIA_IO) {
		a->width = width ? width : 4;
		if (address(p, a))
			return -1;
		return direction(p, a);
	}
	const struct lex_word *w = p_need(p, "a PCI address BB:DD.F"), *regw = NULL;
	if (!w || p_bdf(p, w, &a->bdf) || config_register(p, a, &width, &regw))
		return -1;
	a->width = width ? width : 4;
	if (check_config_access(p, verb, regw, a))
		return -1;
	return direction(p, a);
}

/* ---- expectations ---- */

static int expect_space(struct parser *p, const struct lex_word *w, bool *io)
{
	if (lex_is(w, "mmio"))
		*io = false;
	else if (lex_is(w, "io"))
		*io = true;
	else
		return p_fail(p, w, "expected mmio or io");
	if (*io && p->host.arch == SCN_ARM64 && !p->host.io_window)
		return p_fail(p, w, "this arm64 host has no I/O window");
	return 0;
}

/* expect mmio|io ADDR reaches TARGET | unassigned */
static int expect_reaches(struct parser *p, const struct lex_word *sp, struct scn_expect *e)
{
	if (expect_space(p, sp, &e->io))
		return -1;
	const struct lex_word *w = p_need(p, "an address");
	if (!w || p_u64(p, w, &e->addr))
		return -1;
	e->kind = SCN_EXP_REACHES;
	w = p_need(p, "reaches TARGET or unassigned");
	if (!w)
		return -1;
	if (lex_is(w, "unassigned")) {
		e->target.kind = SCN_TGT_UNASSIGNED;
		return p_end(p);
	}
	if (!lex_is(w, "reaches"))
		return p_fail(p, w, "expected reaches or unassigned");
	w = p_need(p, "BB:DD.F/barN[+OFFSET], BB:DD.F/rom, unassigned or a region name");
	if (!w || p_target(p, w, &e->target))
		return -1;
	return p_end(p);
}

/* expect map mmio|io RANGE TARGET */
static int expect_map(struct parser *p, struct scn_expect *e)
{
	const struct lex_word *w = p_need(p, "mmio or io");
	if (!w || expect_space(p, w, &e->io))
		return -1;
	w = p_need(p, "a range START-LAST or START+SIZE");
	if (!w || p_range(p, w, &e->start, &e->last))
		return -1;
	e->kind = SCN_EXP_MAP;
	w = p_need(p, "BB:DD.F/barN[+OFFSET], unassigned or a region name");
	if (!w || p_target(p, w, &e->target))
		return -1;
	return p_end(p);
}

static int bar_target(struct parser *p, struct scn_target *t)
{
	const struct lex_word *w = p_need(p, "a BAR, BB:DD.F/barN or BB:DD.F/rom");
	if (!w || p_target(p, w, t))
		return -1;
	if (t->kind != SCN_TGT_BAR || t->has_offset)
		return p_fail(p, w, "expected a BAR, BB:DD.F/barN or BB:DD.F/rom");
	return 0;
}

/* expect bar BDF/barN at ADDR | unmapped */
static int expect_bar(struct parser *p, struct scn_expect *e)
{
	e->kind = SCN_EXP_BAR;
	if (bar_target(p, &e->target))
		return -1;
	const struct lex_word *w = p_need(p, "at ADDRESS or unmapped");
	if (!w)
		return -1;
	if (lex_is(w, "unmapped"))
		return p_end(p);
	if (!lex_is(w, "at"))
		return p_fail(p, w, "expected at ADDRESS or unmapped");
	e->mapped = true;
	w = p_need(p, "the address");
	if (!w || p_u64(p, w, &e->addr))
		return -1;
	return p_end(p);
}

static int expect_count(struct parser *p, struct scn_expect *e, enum scn_expect_kind kind)
{
	e->kind = kind;
	const struct lex_word *w = p_need(p, "a count (or none)");
	if (!w)
		return -1;
	if (lex_is(w, "none"))
		e->count = 0;
	else if (p_u64(p, w, &e->count))
		return -1;
	return p_end(p);
}

/* expect conflict WINNER hides LOSER [over RANGE] */
static int expect_conflict(struct parser *p, struct scn_expect *e)
{
	e->kind = SCN_EXP_CONFLICT;
	if (bar_target(p, &e->target))
		return -1;
	const struct lex_word *w = p_need(p, "hides");
	if (!w)
		return -1;
	if (!lex_is(w, "hides"))
		return p_fail(p, w, "expected hides");
	if (bar_target(p, &e->loser))
		return -1;
	if (p_accept(p, "over")) {
		w = p_need(p, "a range START-LAST or START+SIZE");
		if (!w || p_range(p, w, &e->start, &e->last))
			return -1;
		e->has_range = true;
	}
	return p_end(p);
}

int parse_expect(struct parser *p, struct scn_stmt *st)
{
	struct scn_expect *e = &st->u.expect;
	*e = (struct scn_expect){0};
	const struct lex_word *w = p_need(p, "what to expect");
	if (!w)
		return -1;
	if (lex_is(w, "mmio") || lex_is(w, "io"))
		return expect_reaches(p, w, e);
	if (lex_is(w, "map"))
		return expect_map(p, e);
	if (lex_is(w, "bar"))
		return expect_bar(p, e);
	if (lex_is(w, "conflicts"))
		return expect_count(p, e, SCN_EXP_CONFLICTS);
	if (lex_is(w, "conflict"))
		return expect_conflict(p, e);
	if (lex_is(w, "overlap-accesses"))
		return expect_count(p, e, SCN_EXP_OVERLAP_ACCESSES);
	if (lex_is(w, "routing")) {
		e->kind = SCN_EXP_ROUTING;
		return p_end(p);
	}
	return p_fail(p, w,
	              "unknown expectation (mmio, io, map, bar, conflicts, conflict, "
	              "overlap-accesses, routing)");
}
