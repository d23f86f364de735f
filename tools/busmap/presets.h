/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Named device layouts, as bhyve and QEMU present them, so that a scenario can say
 * "device 00:02.0 virtio-net-legacy" instead of spelling out IDs and BARs.
 */
#ifndef BUSMAP_CMD_PRESETS_H
#define BUSMAP_CMD_PRESETS_H

#include "scenario.h"

/* Fills d (except its address) from the preset called name. Returns 0 or -ENOENT. */
int preset_apply(const char *name, size_t len, struct scn_device *d);

/* The presets' names and one-line descriptions, for help texts: NULL past the last. */
struct preset_info {
	const char *name;
	const char *what;
};
const struct preset_info *preset_at(size_t i);

#endif
