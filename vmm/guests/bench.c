/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.rom: one kind of exit in a loop, for the end-to-end benchmark (bench/vmm/run.py).
 * It places pci-testdev (00:02.0) at fixed addresses, checks once that the device answers
 * there, runs the measured loop and returns verdict 1. The BARs are programmed without
 * reading anything back and the check takes all ones as "no device", so a machine that
 * answers every read with all ones (kvm-floor) runs the very same loop.
 *
 * The benchmark patches the parameter block (found by its magic) for each run: the case,
 * the iterations and the vCPUs. With 2 vCPUs the AP runs the same loop as the BSP, at the
 * same time. One iteration of each case:
 *   1 an inb from the I/O BAR          2 an outb to the I/O BAR
 *   3 a byte read from the memory BAR  4 a byte write to the memory BAR
 *   5 a CF8 write and a CFC read       6 an ECAM dword read
 *   7 the memory BAR moved away and back: two CFC writes (CF8 written once, before)
 *
 * Verdicts: 1 pass, 112 a bad parameter block, 113 00:02.0 is neither pci-testdev nor
 * absent, 114 pci-testdev does not answer at a BAR, 115 ECAM and CF8/CFC disagree,
 * 116 the AP did not start or finish.
 */
#include "guest.h"

#define TESTDEV_BDF   BDF(0, 2, 0)
#define TESTDEV_ID    0x00051b36u
#define Q35_MCH_ID    0x29c08086u /* ECAM decodes there only once PCIEXBAR is set */
#define PCIEXBAR      0x60u
#define MEM_BAR       0xe0000000u
#define MEM_BAR_MOVED 0xe0100000u
#define IO_BAR        0xc000u
#define LOOP_OFFSET   0x40u /* neither the test selector nor any test's offset */
#define CF8_TESTDEV   (0x80000000u | (TESTDEV_BDF << 8))
#define ECAM_TESTDEV  (ECAM_BASE + (TESTDEV_BDF << 12))
#define WAIT_SPINS    0x40000000u

enum { PORT_READ = 1, PORT_WRITE, MMIO_READ, MMIO_WRITE, CONFIG_CF8, CONFIG_ECAM, BAR_MOVE };

#define V_PARAMS      112
#define V_NOT_TESTDEV 113
#define V_NO_ANSWER   114
#define V_ECAM        115
#define V_AP          116

struct bench_params {
	char magic[8];
	u32 kase;
	u32 iterations;
	u32 vcpus;
};

/* Volatile: the values are the patched image's, never what the compiler saw. */
volatile struct bench_params params = {"BMBENCH", MMIO_READ, 1000, 1};
static volatile u32 ap_done = 0;

static inline u8 mmio_read8(u32 addr)
{
	return *(volatile u8 *)addr;
}
static inline void mmio_write8(u32 addr, u8 v)
{
	*(volatile u8 *)addr = v;
}

static void run_loop(u32 kase, u32 n)
{
	u32 i;
	switch (kase) {
	case PORT_READ:
		for (i = 0; i < n; i++)
			(void)inb(IO_BAR + LOOP_OFFSET);
		break;
	case PORT_WRITE:
		for (i = 0; i < n; i++)
			outb(IO_BAR + LOOP_OFFSET, 0);
		break;
	case MMIO_READ:
		for (i = 0; i < n; i++)
			(void)mmio_read8(MEM_BAR + LOOP_OFFSET);
		break;
	case MMIO_WRITE:
		for (i = 0; i < n; i++)
			mmio_write8(MEM_BAR + LOOP_OFFSET, 0);
		break;
	case CONFIG_CF8:
		for (i = 0; i < n; i++) {
			outl(0xcf8, CF8_TESTDEV);
			(void)inl(0xcfc);
		}
		break;
	case CONFIG_ECAM:
		for (i = 0; i < n; i++)
			(void)mmio_read32(ECAM_TESTDEV);
		break;
	case BAR_MOVE:
		outl(0xcf8, CF8_TESTDEV | 0x10);
		for (i = 0; i < n; i++) {
			outl(0xcfc, MEM_BAR_MOVED);
			outl(0xcfc, MEM_BAR);
		}
		break;
	}
}

/* Writes only: memory BAR, I/O BAR, decoding on (no bus mastering); on QEMU's q35, ECAM at
 * 0xb0000000 where busmap-vmm has it. */
static void place_bars(void)
{
	cfg_write(CFG_CF8, TESTDEV_BDF, 0x10, 4, MEM_BAR);
	cfg_write(CFG_CF8, TESTDEV_BDF, 0x14, 4, IO_BAR);
	cfg_write(CFG_CF8, TESTDEV_BDF, 0x04, 2, 3);
	if (cfg_read(CFG_CF8, BDF(0, 0, 0), 0, 4) == Q35_MCH_ID) {
		cfg_write(CFG_CF8, BDF(0, 0, 0), PCIEXBAR + 4, 4, 0);
		cfg_write(CFG_CF8, BDF(0, 0, 0), PCIEXBAR, 4, ECAM_BASE | 1); /* 256 buses, on */
	}
}

/* pci-testdev answers through configuration space and at both BARs (test 0, started
 * through the memory BAR, shows its width of 1 through either), or nothing answers. */
static int check_device(u32 kase)
{
	u32 id = cfg_read(CFG_CF8, TESTDEV_BDF, 0, 4);
	u8 expect = 1;
	if (id == 0xffffffffu) {
		put_str("bench: nothing at 00:02.0, every read all ones\n");
		expect = 0xff;
	} else if (id != TESTDEV_ID) {
		put_str("FAIL: 00:02.0 is not pci-testdev\n");
		return V_NOT_TESTDEV;
	}
	mmio_write8(MEM_BAR, 0);
	if (mmio_read8(MEM_BAR + 1) != expect || inb(IO_BAR + 1) != expect) {
		put_str("FAIL: pci-testdev does not answer at its BARs\n");
		return V_NO_ANSWER;
	}
	if (kase == CONFIG_ECAM && mmio_read32(ECAM_TESTDEV) != id) {
		put_str("FAIL: 00:02.0 reads differently through ECAM\n");
		return V_ECAM;
	}
	return 0;
}

static void ap_entry(unsigned cpu)
{
	(void)cpu;
	run_loop(params.kase, params.iterations);
	atomic_inc(&ap_done);
}

static int wait_count(volatile u32 *count, u32 want)
{
	for (u32 spins = 0; atomic_read(count) < want; spins++) {
		if (spins == WAIT_SPINS)
			return -1;
		cpu_relax();
	}
	return 0;
}

int guest_main(void)
{
	u32 kase = params.kase, n = params.iterations, vcpus = params.vcpus;
	put_str("bench: case ");
	put_dec(kase);
	put_str(", ");
	put_dec(n);
	put_str(" iterations, ");
	put_dec(vcpus);
	put_str(" vCPUs\n");
	if (kase < PORT_READ || kase > BAR_MOVE || n == 0 || vcpus < 1 || vcpus > 2) {
		put_str("FAIL: bad parameter block\n");
		return V_PARAMS;
	}
	place_bars();
	int v = check_device(kase);
	if (v)
		return v;
	if (vcpus > 1) {
		ap_start(ap_entry);
		if (wait_count(&ap_online, vcpus - 1)) {
			put_str("FAIL: the AP did not start\n");
			return V_AP;
		}
	}
	run_loop(kase, n);
	if (vcpus > 1 && wait_count(&ap_done, vcpus - 1)) {
		put_str("FAIL: the AP did not finish its loop\n");
		return V_AP;
	}
	return V_PASS;
}
