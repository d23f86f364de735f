/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The KVM side of busmap-vmm: /dev/kvm, the VM with KVM's in-kernel irqchip and PIT, and
 * the hypervisor operations (struct hv_ops) the machine's listeners and devices use.
 * Opened and closed on the main thread; the operations may run on any thread (they are
 * single ioctls on the VM descriptor, which KVM serialises).
 */
#ifndef BUSMAP_VMM_KVM_H
#define BUSMAP_VMM_KVM_H

#include "vmm.h"

#include <linux/kvm.h>
#include <stddef.h>

struct kvm {
	int sys_fd;
	int vm_fd;
	size_t run_size;
	unsigned max_slots;
	unsigned max_vcpus;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, the base of every vCPU's CPUID */
};

extern const struct hv_ops kvm_hv_ops;

/*
 * Opens path (normally /dev/kvm), checks the API version and every capability the VMM
 * needs, creates the VM with its irqchip and PIT. On failure returns a negative errno and
 * writes what is missing to why.
 */
int kvm_open(struct kvm *k, const char *path, char *why, size_t whylen);
void kvm_close(struct kvm *k);

/* Creates vCPU id with its CPUID (APIC id = id) and maps its kvm_run page. */
int kvm_vcpu_create(struct kvm *k, unsigned id, int *fd, struct kvm_run **run);

#endif
