/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * "busmap replay --qemu-trace LOG": replays a QEMU trace log through the trace library,
 * one step per configuration write, and reports the first place where busmap's BAR map
 * differs from QEMU's (and, given QEMU's "info mtree -f", whether the final maps agree).
 */
#ifndef BUSMAP_CMD_QEMU_CMD_H
#define BUSMAP_CMD_QEMU_CMD_H

#include "history.h"
#include "mapout.h"

#include <stdio.h>

struct qemu_cmd_options {
	const char *log;     /* a trace, plain or .gz (read through gzip -dc); "-": stdin */
	const char *machine; /* -M value; NULL: from cmdline.txt beside the log, else "pc" */
	const char *mtree;   /* QEMU's "info mtree -f" to compare the final map with, or NULL */
	bool verbose;
	enum map_format map;
	FILE *out, *err;
	struct history *history;
};

/* Returns the exit status: 0 same as QEMU, 1 divergence, 2 unreadable input. */
int qemu_cmd_run(const struct qemu_cmd_options *o);

#endif
