/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation failure on demand. The test is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=posix_memalign, so
 * every such call from the static library (and from the test) comes here first. While a
 * thread is armed, its allocation calls are counted and the n-th one fails; calls from
 * other threads (the reclaimer) and unarmed calls are never touched.
 */
#ifndef BUSMAP_TEST_ALLOCFAIL_WRAP_H
#define BUSMAP_TEST_ALLOCFAIL_WRAP_H

#include <stdbool.h>

/* From now on, on this thread, the n-th allocation call fails (n >= 1) and no other. */
void af_arm(unsigned long n);
/* Stops counting; returns how many allocation calls were made while armed. */
unsigned long af_disarm(void);
/* Whether the armed allocation has failed yet. */
bool af_fired(void);

#endif
