/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Splitting scenario text into lines and words.
 *
 * A scenario is plain ASCII text. Each line is cut into words at blanks; "#" starts a comment
 * that runs to the end of the line; a word in double quotes may hold blanks and "#" (with \"
 * and \\ as escapes); "<-" and "->" are words of their own wherever they appear. Every word
 * keeps its 1-based column so that errors can point at it.
 *
 * Limits keep memory finite whatever the input: a line holds at most LEX_MAX_LINE bytes and
 * LEX_MAX_WORDS words; a file at most LEX_MAX_FILE bytes. Bytes outside printable ASCII and
 * tab are refused outside comments (NUL everywhere), with their column.
 */
#ifndef BUSMAP_CMD_LEXER_H
#define BUSMAP_CMD_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LEX_MAX_LINE  4096
#define LEX_MAX_WORDS 64
#define LEX_MAX_FILE  (16u << 20)

struct lex_word {
	const char *s; /* not NUL-terminated; quotes removed, escapes not yet resolved */
	size_t len;
	unsigned col;
	bool quoted;
};

struct lex_line {
	unsigned lineno;
	size_t n;
	struct lex_word w[LEX_MAX_WORDS];
};

/* Where and why a text could not be read. */
struct lex_error {
	unsigned line, col;
	char msg[160];
};

/* The text of a whole file, and a cursor over its lines. */
struct lex_text {
	char *buf;
	size_t len;
	size_t pos;
	unsigned lineno;
};

/* Reads all of f (at most LEX_MAX_FILE bytes). Returns 0, -EFBIG, -ENOMEM or -EIO. */
int lex_read_file(FILE *f, struct lex_text *t);
/* Uses a copy of len bytes of s. Returns 0, -EFBIG or -ENOMEM. */
int lex_from_string(const char *s, size_t len, struct lex_text *t);
void lex_text_free(struct lex_text *t);

/*
 * Cuts the next line into words. Returns 1 with *line filled (words point into t), 0 at the
 * end of the text, or -1 with *err filled.
 */
int lex_next_line(struct lex_text *t, struct lex_line *line, struct lex_error *err);

/* Is the word exactly this text? */
bool lex_is(const struct lex_word *w, const char *text);
/* Copies the word, resolving escapes, into a new string (NULL when out of memory). */
char *lex_strdup(const struct lex_word *w);
/* Copies the word into buf (cut to size - 1 bytes). */
void lex_copy(const struct lex_word *w, char *buf, size_t size);

/*
 * Numbers: decimal or 0x hexadecimal, no sign. lex_u64 fails with a message in err (set
 * with the word's column) when the word is not a number or does not fit in 64 bits.
 * lex_size also takes a K, M, G or T suffix (powers of 1024).
 */
int lex_u64(const struct lex_word *w, unsigned line, uint64_t *v, struct lex_error *err);
int lex_size(const struct lex_word *w, unsigned line, uint64_t *v, struct lex_error *err);

/* Fills err with a formatted message at the word's place. Returns -1. */
int lex_fail(struct lex_error *err, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
