/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario text into a struct scn_script. The whole text is parsed before anything runs, so
 * a scenario with an error does nothing; the error has the line and column of the word at
 * fault.
 */
#ifndef BUSMAP_CMD_PARSER_H
#define BUSMAP_CMD_PARSER_H

#include "lexer.h"
#include "scenario.h"

/*
 * Parses text (named file in messages; the script keeps a copy of the name). Returns 0, or
 * -1 with err set (the script is then empty), or -ENOMEM.
 */
int scn_parse_text(const char *file, struct lex_text *text, struct scn_script *out,
                   struct lex_error *err);
/* Reads and parses a file ("-": standard input). -1 with err set also for I/O errors. */
int scn_parse_file(const char *path, struct scn_script *out, struct lex_error *err);
/* Parses len bytes of s. */
int scn_parse_string(const char *file, const char *s, size_t len, struct scn_script *out,
                     struct lex_error *err);

/* Offset and natural width of a configuration register name (command, bar0...), or -1. */
int scn_register_by_name(const char *name, size_t len, bool bridge, unsigned *width);

#endif
