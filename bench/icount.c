/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Instruction counts: the hardware counter through perf_event_open when the kernel and
 * the machine offer one, otherwise callgrind's client requests (the runner re-runs itself
 * under valgrind in --count-mode and reads the dumps; see bench.c).
 */
#include "bench.h"

#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

int icount_perf_open(void)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_HARDWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_HW_INSTRUCTIONS;
	attr.disabled = 1;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	/* This thread only, on whatever CPU it runs. */
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

void icount_perf_start(int fd)
{
	ioctl(fd, PERF_EVENT_IOC_RESET, 0);
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

uint64_t icount_perf_stop(int fd)
{
	uint64_t count = 0;

	ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
		return 0;
	return count;
}

void icount_perf_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

#ifdef HAVE_CALLGRIND_H
bool icount_callgrind_built(void)
{
	return true;
}

bool icount_under_valgrind(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

/* The child runs with --instr-atstart=no so that building maps goes at valgrind's
 * uninstrumented speed: instrumentation is on only around the measured loops. */
void icount_cg_begin(void)
{
	CALLGRIND_START_INSTRUMENTATION;
	CALLGRIND_ZERO_STATS;
	CALLGRIND_TOGGLE_COLLECT;
}

void icount_cg_end(const char *label)
{
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT(label);
	CALLGRIND_STOP_INSTRUMENTATION;
}
#else
bool icount_callgrind_built(void)
{
	return false;
}

bool icount_under_valgrind(void)
{
	return false;
}

void icount_cg_begin(void)
{
}

void icount_cg_end(const char *label)
{
	(void)label;
}
#endif
