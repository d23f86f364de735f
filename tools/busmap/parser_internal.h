/* SPDX-License-Identifier: BSD-2-Clause */
/* The parser's cursor over one line, shared by the files that parse each kind of statement. */
#ifndef BUSMAP_CMD_PARSER_INTERNAL_H
#define BUSMAP_CMD_PARSER_INTERNAL_H

#include "parser.h"

struct parser {
	struct scn_script *s;
	const struct lex_line *l;
	size_t i; /* next word */
	struct lex_error *err;
	bool have_host;
	struct scn_host host;
};

/* The next word, or NULL at the end of the line. */
const struct lex_word *p_peek(struct parser *p);
const struct lex_word *p_next(struct parser *p);
/* The next word, or an error "expected WHAT" at the end of the line. */
const struct lex_word *p_need(struct parser *p, const char *what);
/* Takes the next word if it is exactly kw. */
bool p_accept(struct parser *p, const char *kw);
/* An error at the word w (NULL: at the end of the line). Returns -1. */
int p_fail(struct parser *p, const struct lex_word *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Error unless the line is used up. */
int p_end(struct parser *p);

int p_u64(struct parser *p, const struct lex_word *w, uint64_t *v);
int p_size(struct parser *p, const struct lex_word *w, uint64_t *v);
/* A number that must be at most max. */
int p_uint(struct parser *p, const struct lex_word *w, uint64_t max, uint64_t *v);
/* BB:DD.F */
int p_bdf(struct parser *p, const struct lex_word *w, struct scn_bdf *out);
/* "bar0".."bar5" or "rom" */
int p_bar_index(struct parser *p, const struct lex_word *w, unsigned *bar);
/* START-LAST or START+SIZE */
int p_range(struct parser *p, const struct lex_word *w, uint64_t *start, uint64_t *last);
/* BB:DD.F/barN[+OFF], BB:DD.F/rom[+OFF], "unassigned", or a region name. */
int p_target(struct parser *p, const struct lex_word *w, struct scn_target *t);
/* VVVV:DDDD, hexadecimal. */
int p_id_pair(struct parser *p, uint16_t *a, uint16_t *b);
/* The device declared at bdf, or NULL. */
const struct scn_device *p_device(struct parser *p, struct scn_bdf bdf);

int parse_access(struct parser *p, const struct lex_word *verb, struct scn_stmt *st);
int parse_expect(struct parser *p, struct scn_stmt *st);
int parse_device(struct parser *p, struct scn_stmt *st);

#endif
