/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the map looked like after every step of a run: which BARs were decoded where, and
 * which overlapped which. Conflict reports and timelines are drawn from it after the run.
 *
 * A step that changed nothing shares the previous step's records, so a long trace costs
 * memory only for the steps that moved something. Past HIST_MAX_STEPS steps or
 * HIST_MAX_RECORDS placements and overlaps, recording stops and truncated is set.
 */
#ifndef BUSMAP_CMD_HISTORY_H
#define BUSMAP_CMD_HISTORY_H

#include "world.h"

#define HIST_MAX_STEPS   1000000
#define HIST_MAX_RECORDS 4000000
#define HIST_MAX_ACCESS  100000
#define HIST_NONE        UINT32_MAX

/* One BAR that existed at some step. */
struct hist_bar {
	char name[24];  /* "BB:DD.F/barN" */
	char label[40]; /* the device's name, may be empty */
	bool io;
	uint64_t size;
	const bm_region *region; /* identity while the run's objects live */
};

struct hist_place {
	uint32_t bar;
	uint64_t addr;
};

struct hist_conflict {
	uint32_t winner, loser;
	bool io;
	uint64_t start, last;
};

struct hist_step {
	unsigned line;
	char *label;
	size_t place0, nplace; /* into places, sorted by bar */
	size_t conf0, nconf;   /* into conflicts */
	bool changed;          /* placements or overlaps differ from the step before */
};

/* An access that landed where BARs overlap. */
struct hist_access {
	size_t step;
	unsigned line;
	bool io, write;
	uint64_t addr;
	unsigned width;
	uint32_t winner; /* the BAR that answered */
	uint32_t hidden; /* one BAR it hides there (HIST_NONE if unknown) */
};

struct history {
	struct hist_bar *bars;
	size_t nbars, capbars;
	struct hist_step *steps;
	size_t nsteps, capsteps;
	struct hist_place *places;
	size_t nplaces, capplaces;
	struct hist_conflict *conflicts;
	size_t nconflicts, capconflicts;
	struct hist_access *accesses;
	size_t naccesses, capaccesses;
	size_t dropped_accesses;
	bool truncated;
	/* The BAR numbers of the last world_bars listing, by position: the listing rarely
	 * changes, so most lookups are one comparison. */
	const bm_region **cache_region;
	uint32_t *cache_id;
	size_t ncache;
};

/* Whether n conflicts from a0 equal n from b0. */
bool hist_same_conflicts(const struct history *h, size_t a0, size_t b0, size_t n);

/* Records the world's state now as the next step. Returns 0 or -ENOMEM. */
int history_record(struct history *h, const struct world *w, unsigned line, const char *label);
/* Records an access that the core flagged as landing in an overlap, during the step about
 * to be recorded. */
int history_access(struct history *h, const struct world *w, unsigned line, bool io, bool write,
                   uint64_t addr, unsigned width);
void history_free(struct history *h);

/* "00:02.0/bar0 (virtio-net)" or "00:02.0/bar0". */
void history_bar_title(const struct history *h, uint32_t bar, char *buf, size_t size);

#endif
