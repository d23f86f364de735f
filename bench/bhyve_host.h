/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a bhyve host program provides to bhyve's device code, as the benchmarks that run
 * it on busmap's bhyve compatibility layer need it: the vCPU handle libvmmapi defines, and
 * a memory handler standing for a device.
 */
#ifndef BUSMAP_BENCH_BHYVE_HOST_H
#define BUSMAP_BENCH_BHYVE_HOST_H

#include <busmap/compat/bhyve.h>

struct vcpu {
	int id;
};

/* A mem_range handler: a read returns arg2, a write is dropped. */
int bench_bhyve_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                        void *arg1, long arg2);

#endif
