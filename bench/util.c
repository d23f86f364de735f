/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers of busmap-bench: clock, heap size, CPU pinning.
 */
#include "bench.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t bench_heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Memory freed by another thread (busmap's reclaimer, after a grace period) comes back
 * later: poll until the figure has stayed put for a few milliseconds, at most 2 s. */
size_t bench_heap_settled(void)
{
	const struct timespec pause = {0, 5000000};
	size_t last = bench_heap_bytes();
	unsigned still = 0;

	for (unsigned i = 0; i < 400 && still < 3; i++) {
		size_t now;

		nanosleep(&pause, NULL);
		now = bench_heap_bytes();
		still = now == last ? still + 1 : 0;
		last = now;
	}
	return last;
}

static int bench_cpuset(cpu_set_t *set)
{
	CPU_ZERO(set);
	return sched_getaffinity(0, sizeof(*set), set);
}

unsigned bench_ncpus(void)
{
	cpu_set_t set;

	if (bench_cpuset(&set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

void bench_pin(unsigned k)
{
	cpu_set_t set, one;
	unsigned n = bench_ncpus(), seen = 0;

	if (bench_cpuset(&set) || n < 2)
		return;
	k %= n;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (seen++ != k)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
		return;
	}
}
