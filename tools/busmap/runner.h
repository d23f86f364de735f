/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Runs a parsed scenario against libbusmap: creates the host and devices, programs and
 * probes them, checks the expectations, and reports failures as FILE:LINE with what was
 * expected and what happened.
 *
 * Steps: when the scenario has "step" statements, each starts a step that lasts until the
 * next; statements before the first one are a step called "setup" (recorded only if it
 * changed the map). Without "step" statements every access, placement and allocation is a
 * step of its own. After each step the history (if any) records the map and hooks run.
 */
#ifndef BUSMAP_CMD_RUNNER_H
#define BUSMAP_CMD_RUNNER_H

#include "history.h"
#include "mapout.h"
#include "scenario.h"

#include <stdio.h>

struct runner;

struct run_step_info {
	size_t index;
	unsigned line;
	const char *label;
	size_t events; /* BAR map/unmap events during the step */
};

struct run_hooks {
	/* A BAR was mapped or unmapped (bar_name: "BB:DD.F/barN"); runs inside the write. */
	void (*map_event)(void *arg, struct runner *r, const struct bm_pci_map_event *ev,
	                  const char *bar_name);
	/* A step ended; the map is published. Returns nonzero when something was wrong, which
	 * counts as a failed expectation. */
	int (*step_end)(void *arg, struct runner *r, const struct run_step_info *s);
	void *arg;
};

struct run_options {
	bool verbose;            /* print every statement, its events, and the map after steps */
	enum map_format map;     /* verbose: after every step; otherwise once at the end */
	FILE *out;               /* progress and maps (stdout) */
	FILE *err;               /* failures and errors (stderr) */
	struct history *history; /* filled when not NULL */
	struct run_hooks hooks;
};

struct run_result {
	size_t expectations; /* checked */
	size_t failures;     /* failed (including failed checks of reads and hooks) */
	size_t steps;
	size_t overlap_accesses;
	bool error; /* the scenario could not run to the end (message printed) */
};

/* Runs s. Returns 0 (see *res) or -ENOMEM. */
int runner_run(const struct scn_script *s, const struct run_options *o, struct run_result *res);

/* ---- for hooks ---- */

const struct world *runner_world(struct runner *r);

/* Where a one-byte read at addr goes, both by the flat view and by an actual dispatch. */
struct probe {
	enum { PROBE_UNASSIGNED, PROBE_BAR, PROBE_REGION } kind;
	long bar;           /* index into the bars given */
	uint64_t offset;    /* in the BAR */
	const char *region; /* PROBE_REGION: its name */
	bool conflict;      /* in an overlap of BARs */
	bool consistent;    /* the dispatch reached what the flat view shows */
};
int runner_probe(struct runner *r, const struct world_bar *bars, size_t n, bool io, uint64_t addr,
                 struct probe *p);

/* The BAR an access to addr should reach by the rule "the newest placement wins": the
 * mapped BAR of that kind (I/O or memory) covering addr that was mapped last; -1: none. */
long runner_expected_bar(struct runner *r, const struct world_bar *bars, size_t n, bool io,
                         uint64_t addr);

/* When the BAR was last mapped (larger is newer; 0: never). */
uint64_t runner_bar_order(struct runner *r, const bm_pci_func *f, unsigned bar);

/* The function a scenario address names (as declared), or NULL. */
bm_pci_func *runner_func(struct runner *r, struct scn_bdf bdf);

#endif
