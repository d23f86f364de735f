/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared declarations of busmap-pci-bench: the machine every implementation builds, and
 * how the runner reaches an implementation.
 *
 * The machine: a host bridge at 00:00.0, CF8/CFC, an ECAM window of 256 buses at
 * PCIB_ECAM_BASE, and n endpoint functions, each with one 4 KiB 32-bit memory BAR, mapped
 * (memory decoding on). Functions are dealt in turn to bus 0 and buses 1..4, filling slots
 * function by function, so every bus holds as many. busmap reaches buses 1..4 through
 * PCI-to-PCI bridges at 00:01.0..00:04.0, whose memory windows cover their bus's BARs; the
 * baseline, like bhyve, has them as further root buses.
 *
 * Each measured loop lives in the implementation's file and calls its dispatch directly:
 * one indirect call per loop, never per access.
 */
#ifndef BUSMAP_BENCH_PCI_BENCH_H
#define BUSMAP_BENCH_PCI_BENCH_H

#include <busmap/pci_regs.h>
#include <stdbool.h>
#include <stdint.h>

#define PCIB_ECAM_BASE  0xe0000000ull /* bhyve's, above its 32-bit BAR hole */
#define PCIB_BAR_BASE   0xc0000000ull
#define PCIB_BUS_SPAN   0x2000000ull /* 32 MiB of BAR space per bus */
#define PCIB_SPARE      0x1000000ull /* free places for moves, past the BARs of a bus */
#define PCIB_BAR_STRIDE 0x10000ull
#define PCIB_BAR_SIZE   0x1000ull
#define PCIB_BUSES      5 /* bus 0 and four more */
#define PCIB_FIRST_SLOT 5 /* on bus 0, after the host bridge and the four bridges */
#define PCIB_MAX_DEVS   1000
#define PCIB_VENDOR     0x1af4
#define PCIB_DEVICE     0x1001
#define PCIB_CLASS      0x010000
#define PCIB_VALUE      0x5au /* what every BAR read returns */

struct pcib_bdf {
	unsigned bus, slot, fn;
};

/* Where device i sits and where its BAR is at first; the spare place it moves to. */
struct pcib_bdf pcib_device(unsigned i);
uint32_t pcib_bar_addr(unsigned i);
uint32_t pcib_bar_spare(unsigned i);
/* The ECAM address of register reg of bdf; the CF8 value that selects it. */
uint64_t pcib_ecam(struct pcib_bdf d, unsigned reg);
uint32_t pcib_cf8(struct pcib_bdf d, unsigned reg);

struct pcib_impl {
	const char *name;
	/* The machine with ndev devices, programmed and decoding; NULL on failure. */
	void *(*create)(unsigned ndev);
	void (*destroy)(void *sys);
	/* Waits until memory retired by past changes can be freed (optional). */
	void (*settle)(void *sys);
	/* The context of vCPU index (0 or 1), made and freed on the calling thread. */
	void *(*vcpu_enter)(void *sys, unsigned index);
	void (*vcpu_leave)(void *vcpu);
	/* Single accesses through dispatch, for checking the machine. */
	int (*pio)(void *vcpu, bool write, unsigned port, unsigned size, uint32_t *value);
	int (*mmio)(void *vcpu, bool write, uint64_t addr, unsigned size, uint64_t *value);
	/*
	 * The loops; each returns the sum of the values read and the return codes.
	 * cf8_read: ops times, a 4-byte write of cf8 to 0xcf8 and a 2-byte read of 0xcfc.
	 * ecam_read: ops 4-byte reads at addr.
	 * bar_sizing: ops times, at the function whose configuration space is at fn (ECAM):
	 *   command 0, BAR 0 all ones, BAR 0 read, BAR 0 = bar, command = memory decode.
	 * bar_move: ops 4-byte writes at reg (ECAM), alternately b and a (so ops even ends
	 *   where it started).
	 */
	uint64_t (*cf8_read)(void *vcpu, uint32_t cf8, uint64_t ops);
	uint64_t (*ecam_read)(void *vcpu, uint64_t addr, uint64_t ops);
	uint64_t (*bar_sizing)(void *vcpu, uint64_t fn, uint32_t bar, uint64_t ops);
	uint64_t (*bar_move)(void *vcpu, uint64_t reg, uint32_t a, uint32_t b, uint64_t ops);
};

extern const struct pcib_impl pcib_busmap;
extern const struct pcib_impl pcib_busmap_qsbr;
extern const struct pcib_impl pcib_baseline;

/*
 * A BAR move as bhyve's PCI layer makes it, through busmap's bhyve compatibility layer:
 * unregister_mem of the old range, register_mem of the new one, with one 4 KiB range per
 * device at pcib_bar_addr. Sets up the layer's process-wide instance (false on failure),
 * moves device 0's range back and forth ops times (ops even), and tears it down.
 */
bool pcib_compat_open(unsigned ndev);
uint64_t pcib_compat_moves(uint64_t ops);
void pcib_compat_settle(void);
void pcib_compat_close(void);

#endif
