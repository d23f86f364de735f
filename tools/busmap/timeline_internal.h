/* SPDX-License-Identifier: BSD-2-Clause */
/* The timeline's geometry, shared by the file that lays it out and the file that draws it. */
#ifndef BUSMAP_CMD_TIMELINE_INTERNAL_H
#define BUSMAP_CMD_TIMELINE_INTERNAL_H

#include "timeline.h"

#define MAX_COLUMNS  2000
#define MAX_SEGMENTS 1000
#define LEFT         130.0
#define TOP          70.0
#define LABELS       170.0 /* below the panels: step labels */
#define LEGEND_W     360.0
#define PANEL_GAP    40.0
#define THIN_W       5.0
#define GAP_H        12.0
#define SEG_MIN      16.0
#define SEG_MAX      64.0
#define THIN_AFTER   60 /* shorter runs show every step at full width */
#define LIST_LABELS  40 /* up to this many columns, step labels are listed below */

/* A run of steps drawn as one column. */
struct column {
	size_t step; /* the first; all steps of the column show the same map */
	size_t last;
	double x, w;
};

/* A piece of a panel's address axis. */
struct segment {
	uint64_t lo, hi; /* inclusive */
	double y, h;
	bool used;
};

struct panel {
	bool io;
	const char *title;
	struct segment *seg;
	size_t nseg;
	bool cut; /* more segments than drawn */
	double y, h;
};

struct timeline {
	FILE *out;
	const struct history *h;
	struct column *col;
	size_t ncol;
	bool cols_cut;
	double width; /* of the step area */
	struct panel panel[2];
	size_t npanel;
};

/* Columns for the steps: one per step that changed the map (in long runs), thin ones for
 * runs of steps that did not. -ENOMEM. */
int timeline_columns(struct timeline *t);
/* The panels and their compressed address axes. -ENOMEM. */
int timeline_layout(struct timeline *t);
/* y of the first byte of addr (end false) or just past it (end true); -1 when not shown. */
double timeline_y(const struct panel *p, uint64_t addr, bool end);

#endif
