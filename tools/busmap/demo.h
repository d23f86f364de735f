/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * "busmap demo": the seed scenario, built into the program. After each step it shows the
 * map, the overlaps, and where accesses to both BARs go, in busmap and, beside it, in a
 * registry that refuses overlaps and unregisters by address (bhyve's mem.c).
 */
#ifndef BUSMAP_CMD_DEMO_H
#define BUSMAP_CMD_DEMO_H

#include "history.h"
#include "mapout.h"

#include <stdio.h>

struct demo_options {
	bool verbose;
	enum map_format map;
	FILE *out, *err;
	struct history *history;
};

/* The scenario's text (examples/seed-uboot.bm, embedded at build time). */
extern const char demo_scenario[];
extern const unsigned long demo_scenario_len;

/* Returns the exit status: 0 when busmap routed every access correctly. */
int demo_run(const struct demo_options *o);

#endif
