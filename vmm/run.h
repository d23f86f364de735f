/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Running the machine: one thread and one bm_vcpu per vCPU, the exit path, and the watch
 * for a guest that can no longer run. Called on the main thread, which waits for the stop.
 */
#ifndef BUSMAP_VMM_RUN_H
#define BUSMAP_VMM_RUN_H

#include "kvm.h"
#include "vmm.h"

/*
 * Creates vm->ncpus vCPUs and runs them until a stop request; returns the status of that
 * request (enum vm_status, or the guest's isa-debug-exit value) after every vCPU thread has
 * ended and freed its context. The reason is in vm->stop_reason.
 */
int vm_run(struct vm *vm, struct kvm *kvm);

#endif
