/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The run as an SVG picture: steps from left to right, addresses from top to bottom (one
 * panel for memory, one for I/O ports), each BAR drawn in its own lane (a colour and a
 * group of its own) where and when it was decoded, and overlaps marked in red.
 *
 * The address axis shows only addresses that some BAR used, each used interval at least a
 * few pixels high, with the gaps between them squeezed to a fixed height; steps that changed
 * nothing are drawn narrow.
 */
#ifndef BUSMAP_CMD_TIMELINE_H
#define BUSMAP_CMD_TIMELINE_H

#include "history.h"

#include <stdio.h>

/* Returns 0, -ENOMEM or -EIO. */
int timeline_svg(FILE *out, const struct history *h, const char *title);

#endif
