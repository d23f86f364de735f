/* SPDX-License-Identifier: BSD-2-Clause */
/* The runner's state, shared by the files that carry out each kind of statement. */
#ifndef BUSMAP_CMD_RUNNER_INTERNAL_H
#define BUSMAP_CMD_RUNNER_INTERNAL_H

#include "runner.h"

/* A BAR's device model: a little memory that remembers what was written (the first 4 KiB)
 * and reads 0 elsewhere; every access tells the runner which BAR it reached. */
#define BAR_MODEL_BYTES 4096

struct run_device;

struct bar_model {
	struct runner *r;
	struct run_device *dev;
	unsigned index;
	uint64_t size;
	uint8_t *mem; /* allocated on the first write */
};

struct run_device {
	const struct scn_device *decl;
	bm_pci_func *func;
	struct bar_model bars[BM_PCI_ROM + 1];
	uint64_t order[BM_PCI_ROM + 1]; /* stamp of the last mapping */
};

struct runner {
	const struct scn_script *s;
	struct run_options o;
	struct run_result *res;

	bm_system *sys;
	bm_space *mem, *io;
	bm_pci_host *host;
	bm_vcpu *vcpu;
	struct world w;
	struct scn_host hostdecl;

	struct run_device *devs; /* capacity s->ndevices: bar models point into it */
	size_t ndevs;
	uint64_t stamp;

	/* The last BAR callback that ran. */
	struct {
		bool valid;
		struct bar_model *bar;
		uint64_t offset;
	} hit;

	const struct scn_stmt *cur;
	bool use_steps;
	bool step_open;
	size_t step_index;
	unsigned step_line;
	const char *step_label;
	size_t step_events;
};

/* A message about the current statement, FILE:LINE:COL: error: ..., and the run stops. */
int run_error(struct runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A failed expectation: FILE:LINE, the statement, what was expected and what happened. */
void run_fail(struct runner *r, const char *expected, const char *actual);

int run_access(struct runner *r, const struct scn_access *a);
int run_expect(struct runner *r, const struct scn_expect *e);
int run_device_new(struct runner *r, const struct scn_device *d);
const struct bm_region_ops *bar_model_ops(void);

struct run_device *run_device_at(struct runner *r, struct scn_bdf bdf);
/* What a probe found, in the same words. */
void run_format_probe(const struct probe *p, const struct world_bar *bars, char *buf, size_t size);

#endif
