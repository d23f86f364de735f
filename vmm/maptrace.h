/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --trace-map: every BAR map and unmap, and every overlap of BARs that appears or ends, as
 * it happens, in the format of `busmap replay -v`. Lines are printed on the thread that
 * made the change (a vCPU's, for a guest's configuration write), whole.
 */
#ifndef BUSMAP_VMM_MAPTRACE_H
#define BUSMAP_VMM_MAPTRACE_H

#include "vmm.h"

/* Starts tracing vm's PCI host and both spaces to out. */
int maptrace_start(struct vm *vm, FILE *out);
/* Stops it, so that the machine's teardown is not traced as if the guest had done it. */
void maptrace_stop(struct vm *vm);

#endif
