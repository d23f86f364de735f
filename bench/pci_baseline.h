/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Baseline of busmap-pci-bench: PCI configuration emulation that follows bhyve's flow
 * (usr.sbin/bhyve/pci_emul.c, mem.c and amd64/inout.c), re-implemented here, not copied.
 *
 * - Each function keeps its configuration space as a flat 256-byte array, a table of BARs
 *   (type, address, size, read-only low bits) and a mutex held around every configuration
 *   access. Functions are found through arrays indexed by bus, slot and function; every
 *   bus is a root bus, as bhyve has no PCI-to-PCI bridges.
 * - Port I/O goes through a flat table of 65536 handlers, one per port, without a lock.
 *   0xcf8 latches bus, slot, function, register and enable on a 4-byte write (one latch
 *   for the machine); 0xcfc..0xcff reach the latched register.
 * - MMIO goes through a red-black tree of disjoint ranges under a rwlock, with a per-vCPU
 *   hint, as in bench/baseline_bhyve.c. Handlers run under the read lock, except those of
 *   ranges registered immutable: the ECAM window is one, because a configuration write
 *   re-registers BARs, which takes the lock for writing.
 * - A write to a memory BAR that changes its address unregisters the range by its old base
 *   address and registers the new one when memory decoding is on; a command write that
 *   toggles memory decoding registers or unregisters every memory BAR.
 * Left out, as the benchmark does not reach them: instruction decoding before an MMIO
 * handler, the fallback tree, I/O and 64-bit BARs, the ROM, capability writes, INTx
 * routing, and device hooks on configuration accesses.
 */
#ifndef BUSMAP_BENCH_PCI_BASELINE_H
#define BUSMAP_BENCH_PCI_BASELINE_H

#include <stdbool.h>
#include <stdint.h>

struct pcb;
struct pcb_func;

/* A device's BAR callbacks, with the offset inside the BAR. */
struct pcb_bar_ops {
	uint64_t (*read)(void *opaque, unsigned bar, uint64_t offset, unsigned size);
	void (*write)(void *opaque, unsigned bar, uint64_t offset, unsigned size, uint64_t value);
};

struct pcb_func_desc {
	uint16_t vendor_id, device_id;
	uint32_t class_code;
	uint64_t bar0_size; /* a 32-bit memory BAR 0 of this size (a power of two), or 0 */
	const struct pcb_bar_ops *ops;
	void *opaque;
};

/* A machine for vCPUs 0 .. max_vcpus - 1 with CF8/CFC and an ECAM window of 256 buses at
 * ecam_base (256 MiB aligned). NULL when out of memory. */
struct pcb *pcb_new(unsigned max_vcpus, uint64_t ecam_base);
/* No access may be running. */
void pcb_free(struct pcb *m);

/* Plugs a function at bus:slot.func (bus < 256, slot < 32, func < 8), decoding nothing
 * until the guest programs it. NULL when the place is taken or out of memory. */
struct pcb_func *pcb_func_new(struct pcb *m, unsigned bus, unsigned slot, unsigned func,
                              const struct pcb_func_desc *d);

/* A port access from vCPU vcpu: bytes 1, 2 or 4. Returns the handler's result (0). */
int pcb_inout(struct pcb *m, unsigned vcpu, bool in, unsigned port, unsigned bytes, uint32_t *eax);
/* An MMIO access. Returns the handler's result, ESRCH when no range holds addr, or EINVAL
 * for a bad vCPU index. */
int pcb_mem_read(struct pcb *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t *value);
int pcb_mem_write(struct pcb *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t value);

#endif
