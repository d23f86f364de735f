/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The conflicts report: every overlap between BARs at every step (consecutive steps with
 * the same overlaps are shown once), who hides whom over which range, and every access
 * that landed in an overlap.
 */
#ifndef BUSMAP_CMD_CONFLICTS_H
#define BUSMAP_CMD_CONFLICTS_H

#include "history.h"

#include <stdio.h>

void conflicts_report(FILE *out, const struct history *h);

#endif
