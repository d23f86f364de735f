/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The map as text: QEMU's "info mtree" and "info mtree -f" formats (the core's dumps, for
 * the memory space and then the port space), or JSON where every flat range also says
 * which device and BAR it belongs to.
 */
#ifndef BUSMAP_CMD_MAPOUT_H
#define BUSMAP_CMD_MAPOUT_H

#include "world.h"

#include <stdio.h>

enum map_format {
	MAP_NONE,
	MAP_MTREE,
	MAP_FLAT,
	MAP_JSON,
};

/* "mtree", "flat" or "json"; -1 for anything else. */
int map_format_parse(const char *s);

/*
 * Prints the map. step/line/label say when (label may be NULL); JSON prints one object
 * on one line. Returns 0, -ENOMEM or -EIO.
 */
int map_print(FILE *out, const struct world *w, enum map_format f, size_t step, unsigned line,
              const char *label);

/* Writes s as a JSON string literal. */
void json_string(FILE *out, const char *s);

#endif
