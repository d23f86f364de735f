/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bars.rom: real firmware's and OSes' BAR sequences, replayed by a vCPU. Each pattern
 * programs BARs through CF8/CFC (then all again through ECAM) in the order the firmware
 * does (the traces in tests/data/traces and their READMEs are the facts), and after every
 * write reads every address a BAR decodes or has decoded: each must answer as the BAR
 * placed last there, the ROM or RAM in front of it, or nothing (model.c). The verdict of
 * a failure names the pattern; COM1 has the step and the write.
 *
 * Devices: virtio-net, virtio-blk and pci-testdev on bus 0, any slots (found by ID).
 */
#include "model.h"

#define IO_BASE   0x6000u     /* where the patterns assign I/O BARs */
#define MEM_BASE  0xc8000000u /* and 32-bit memory BARs */
#define HIGH_BASE 0x100000000ull
#define IO_SPARE  0x7000u     /* where each BAR is learned alone */
#define MEM_SPARE 0xd0000000u

#define V_SETUP    69
#define V_CF8      70 /* + pattern through CF8/CFC */
#define V_ECAM     80 /* + pattern through ECAM */
#define V_NO_ECAM  64

static struct model M = {0};
static unsigned NET = 0, BLK = 0, TD = 0;

/* ---- the writes firmware makes ---- */

static void cmd(unsigned d, u16 v, const char *what) { model_write(&M, d, 4, 2, v, what); }

static void wbar(const struct bar *b, int high, u32 v, const char *what)
{
	model_write(&M, b->dev, b->reg + (high ? 4u : 0u), 4, v, what);
}

/* Writes a BAR's address: low dword, then high (the order every firmware here uses). */
static void place(const struct bar *b, u64 a, const char *what)
{
	wbar(b, 0, (u32)a, what);
	if (b->is64)
		wbar(b, 1, (u32)(a >> 32), what);
}

/* Sizing as SeaBIOS, Linux and OVMF do it: per dword, all ones, read, the old value back. */
static void size_restore(const struct bar *b, const char *what)
{
	for (int high = 0; high <= b->is64; high++) {
		u32 old = high ? b->hi : b->lo;
		wbar(b, high, ~0u, what);
		model_read_bar(&M, b->dev, b->reg + (high ? 4u : 0u));
		wbar(b, high, old, what);
	}
}

static struct bar *bar_of(unsigned d, unsigned i) { return &M.bars[M.devs[d].bar[i]]; }

static u64 align_up(u64 a, u32 size) { return (a + size - 1) & ~(u64)(size - 1); }

/* u-boot's dm_pciauto_setup_device: device by device in slot order, each BAR sized and at
 * once assigned from a bump allocator that aligns to the size; COMMAND last. Decode is
 * whatever the device had: u-boot never turns it off. */
static void uboot_enumerate(u32 io_base, u64 mem_base)
{
	u64 io = io_base, mem = mem_base;
	for (unsigned d = 0; d < M.ndevs; d++) {
		for (unsigned i = 0; i < M.devs[d].nbars; i++) {
			const struct bar *b = bar_of(d, i);
			wbar(b, 0, ~0u, "u-boot: size the BAR (decode untouched)");
			if (b->is64)
				wbar(b, 1, ~0u, "u-boot: size the high dword");
			model_read_bar(&M, d, b->reg);
			u64 *next = b->io ? &io : &mem;
			*next = align_up(*next, b->size);
			place(b, *next, "u-boot: assign at once");
			*next += b->size;
		}
		cmd(d, 0x0007, "u-boot: COMMAND <- I/O|MEM|master");
	}
}

/* ---- the patterns ---- */

/* The seed: bhyve placed virtio-blk's I/O BAR first and virtio-net's after it, decode on;
 * u-boot then assigns virtio-net (slot 2) the first address, onto virtio-blk. */
static void pattern_seed(void)
{
	const struct bar *net0 = model_bar(&M, NET, 0x10), *blk0 = model_bar(&M, BLK, 0x10);
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0, "bhyve: decode off to lay the BARs out");
	u64 io = IO_BASE, mem = MEM_BASE;
	place(blk0, io, "bhyve: virtio-blk's I/O BAR first");
	io = align_up(io + blk0->size, net0->size);
	place(net0, io, "bhyve: virtio-net's after it");
	io += net0->size;
	for (unsigned d = 0; d < M.ndevs; d++) {
		for (unsigned i = 0; i < M.devs[d].nbars; i++) {
			const struct bar *b = bar_of(d, i);
			if (b == net0 || b == blk0)
				continue;
			u64 *next = b->io ? &io : &mem;
			*next = align_up(*next, b->size);
			place(b, *next, "bhyve: the other BARs");
			*next += b->size;
		}
	}
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0003, "bhyve: decode on");
	uboot_enumerate(IO_BASE, MEM_BASE);
}

/* u-boot again over a live layout (a second enumeration from other bases moves every BAR
 * with decode on), then 'pci bar': every BAR re-sized with decode on and restored. */
static void pattern_uboot_decode_on(void)
{
	uboot_enumerate(IO_BASE + 0x400, MEM_BASE + 0x100000);
	for (unsigned d = 0; d < M.ndevs; d++) {
		for (unsigned i = 0; i < M.devs[d].nbars; i++) {
			const struct bar *b = bar_of(d, i);
			u32 old = b->lo;
			wbar(b, 0, ~0u, "pci bar: size with decode on");
			model_read_bar(&M, d, b->reg);
			wbar(b, 0, old, "pci bar: restore");
		}
	}
}

/* SeaBIOS: decode off (reset), every BAR of every device sized first, then all assigned
 * largest first across devices, then COMMAND <- I/O|MEM|SERR device by device. */
static void pattern_seabios(void)
{
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0, "SeaBIOS: decode off as after reset");
	for (unsigned d = 0; d < M.ndevs; d++)
		for (unsigned i = 0; i < M.devs[d].nbars; i++)
			size_restore(bar_of(d, i), "SeaBIOS: size every BAR");
	u64 io = 0xc000, mem = MEM_BASE + 0x200000;
	for (u32 size = 1u << 31; size >= 4; size >>= 1) {
		for (unsigned n = 0; n < M.nbars; n++) {
			const struct bar *b = &M.bars[n];
			if (b->size != size)
				continue;
			u64 *next = b->io ? &io : &mem;
			*next = align_up(*next, b->size);
			place(b, *next, "SeaBIOS: assign, largest first");
			*next += b->size;
		}
	}
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0103, "SeaBIOS: COMMAND <- I/O|MEM|SERR");
}

/* Linux 6.1's scan: per device an INTx-disable test, then per BAR a decode-off window in
 * which the BAR is read, sized and restored dword by dword. Then what pci_std_update_
 * resource does to move a 64-bit BAR (decode off, low, high, decode back), and a 64-bit
 * BAR moved with decode on, which passes through the address of new low and old high. */
static void pattern_linux(void)
{
	for (unsigned d = 0; d < M.ndevs; d++) {
		u16 c = M.devs[d].cmd;
		cmd(d, (u16)(c | 0x400), "Linux: INTx-disable test");
		cmd(d, c, "Linux: COMMAND restored");
		for (unsigned i = 0; i < M.devs[d].nbars; i++) {
			const struct bar *b = bar_of(d, i);
			cmd(d, (u16)(c & ~3u), "Linux: decode off to size a BAR");
			model_read_bar(&M, d, b->reg);
			size_restore(b, "Linux: size the BAR, dword by dword");
			cmd(d, c, "Linux: decode back on");
		}
	}
	const struct bar *net4 = model_bar(&M, NET, 0x20), *blk4 = model_bar(&M, BLK, 0x20);
	if (!net4 || !net4->is64 || !blk4 || !blk4->is64)
		model_fail(&M, "the virtio devices have no 64-bit BAR4");
	u16 c = M.devs[NET].cmd;
	cmd(NET, (u16)(c & ~2u), "Linux: memory decode off to move a 64-bit BAR");
	place(net4, HIGH_BASE + 0x40000000ull, "Linux: 64-bit BAR above 4 GiB, low then high");
	cmd(NET, c, "Linux: memory decode back on");
	place(blk4, HIGH_BASE + 0x40000000ull + 0x100000, "a 64-bit BAR moved with decode on");
	place(blk4, MEM_BASE + 0x300000, "a 64-bit BAR moved back below 4 GiB with decode on");
}

/* OVMF's PciBusDxe: decode off everywhere, sizing passes (64-bit BARs dword by dword),
 * resources assigned (64-bit ones above 4 GiB), decode on; later a probe of a live
 * 64-bit BAR writes all ones to its low dword only: the BAR then sits at
 * high:0xffffc000 for a moment (below 4 GiB: over the ROM). */
static void pattern_ovmf(void)
{
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0, "OVMF: decode off");
	for (int pass = 0; pass < 2; pass++)
		for (unsigned d = 0; d < M.ndevs; d++)
			for (unsigned i = 0; i < M.devs[d].nbars; i++)
				size_restore(bar_of(d, i), "OVMF: sizing pass");
	u64 io = 0x6000, mem = MEM_BASE + 0x400000, high = HIGH_BASE + 0x80000000ull;
	for (unsigned n = 0; n < M.nbars; n++) {
		const struct bar *b = &M.bars[n];
		u64 *next = b->io ? &io : b->is64 ? &high : &mem;
		*next = align_up(*next, b->size);
		place(b, *next, "OVMF: assign");
		*next += b->size;
	}
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0007, "OVMF: decode on");
	const struct bar *net4 = model_bar(&M, NET, 0x20), *blk4 = model_bar(&M, BLK, 0x20);
	u32 lo = net4->lo;
	wbar(net4, 0, ~0u, "OVMF: low-dword probe of a live 64-bit BAR above 4 GiB");
	model_read_bar(&M, NET, net4->reg);
	wbar(net4, 0, lo, "OVMF: low dword restored");
	place(blk4, MEM_BASE + 0x500000, "a live 64-bit BAR below 4 GiB");
	lo = blk4->lo;
	wbar(blk4, 0, ~0u, "OVMF: low-dword probe of a live 64-bit BAR below 4 GiB");
	model_read_bar(&M, BLK, blk4->reg);
	wbar(blk4, 0, lo, "OVMF: low dword restored");
}

/* The edges: address 0 (never decodes), over the ROM (the BAR answers there), the last
 * page below 4 GiB (a 32-bit BAR there never decodes), past 4 GiB. */
static void pattern_edges(void)
{
	const struct bar *net0 = model_bar(&M, NET, 0x10), *net1 = model_bar(&M, NET, 0x14);
	const struct bar *net4 = model_bar(&M, NET, 0x20);
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0003, "decode on");
	u32 old0 = net0->lo, old1 = net1->lo;
	place(net1, 0, "a memory BAR moved to 0");
	place(net1, 0xffff0000u, "a memory BAR moved over the ROM");
	place(net1, 0x100000000ull - net1->size, "a 32-bit BAR on the last page below 4 GiB");
	place(net1, old1, "the memory BAR back");
	place(net0, 0, "an I/O BAR moved to 0");
	place(net0, old0, "the I/O BAR back");
	place(net4, 0xffff8000u, "a 64-bit BAR over the ROM");
	place(net4, HIGH_BASE, "a 64-bit BAR at 4 GiB");
	place(net4, HIGH_BASE + 0x12340000ull, "a 64-bit BAR further up");
	place(net4, 0, "a 64-bit BAR moved to 0");
	place(net4, MEM_BASE + 0x600000, "the 64-bit BAR back below 4 GiB");
}

/* Two devices trade BARs with decode on, one write at a time: in between, the BAR moved
 * first lies over the other and answers there. */
static void swap(const struct bar *a, const struct bar *b, const char *what)
{
	u64 aa = a->is64 ? (u64)a->hi << 32 | a->lo : a->lo;
	u64 ba = b->is64 ? (u64)b->hi << 32 | b->lo : b->lo;
	place(a, ba, what);
	place(b, aa, what);
}

static void pattern_swap(void)
{
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0003, "decode on");
	swap(model_bar(&M, NET, 0x10), model_bar(&M, BLK, 0x10), "swap the I/O BARs");
	swap(model_bar(&M, NET, 0x14), model_bar(&M, BLK, 0x14), "swap the MSI-X BARs");
	swap(model_bar(&M, BLK, 0x20), model_bar(&M, NET, 0x20), "swap the 64-bit BARs");
	swap(model_bar(&M, TD, 0x10), model_bar(&M, NET, 0x14), "swap across devices");
	swap(model_bar(&M, TD, 0x14), model_bar(&M, BLK, 0x10), "swap I/O across devices");
}

/* QEMU's overlap oracle (trace g): a BAR moved onto another, the same value written
 * again (nothing moves), decode toggled (placed again: on top), an unaligned value, 0. */
static void pattern_oracle(void)
{
	const struct bar *net0 = model_bar(&M, NET, 0x10), *blk0 = model_bar(&M, BLK, 0x10);
	const struct bar *net1 = model_bar(&M, NET, 0x14), *blk1 = model_bar(&M, BLK, 0x14);
	for (unsigned d = 0; d < M.ndevs; d++)
		cmd(d, 0x0007, "decode on");
	place(net0, IO_BASE + 0x800, "net's I/O BAR on its own");
	place(blk0, IO_BASE + 0x880, "blk's I/O BAR on its own");
	place(blk0, IO_BASE + 0x800, "s1: blk's I/O BAR moved onto net's");
	place(net0, IO_BASE + 0x800, "s2: net's I/O BAR rewritten with the same value");
	cmd(NET, 0x0006, "s3: net's I/O decode off");
	cmd(NET, 0x0007, "s3: net's I/O decode on again: placed last");
	place(blk1, net1->lo, "s4: blk's memory BAR moved onto net's");
	place(net0, IO_BASE + 0x834, "s5: an unaligned value in net's I/O BAR");
	place(net0, 0, "s6: net's I/O BAR at 0");
	place(net0, IO_BASE + 0x800, "s7: restored");
	place(blk0, IO_BASE + 0x880, "s7: restored");
	place(blk1, MEM_BASE + 0x700000, "s7: restored");
}

static const struct {
	const char *name;
	void (*run)(void);
} patterns[] = {
    {"seed: u-boot over bhyve's layout", pattern_seed},
    {"u-boot: assign and size with decode on", pattern_uboot_decode_on},
    {"SeaBIOS: size everything, then assign", pattern_seabios},
    {"Linux: decode-off sizing, 64-bit low then high", pattern_linux},
    {"OVMF: decode-off passes, low-dword probe of a live 64-bit BAR", pattern_ovmf},
    {"edges: 0, the ROM, the last page, past 4 GiB", pattern_edges},
    {"two devices swap BARs with decode on", pattern_swap},
    {"QEMU's overlap oracle", pattern_oracle},
};

/* On QEMU's q35 the firmware enables ECAM (PCIEXBAR in the MCH); busmap-vmm's is fixed. */
static int ecam_works(void)
{
	if (cfg_read(CFG_CF8, BDF(0, 0, 0), 0, 4) == 0x29c08086) {
		cfg_write(CFG_CF8, BDF(0, 0, 0), 0x64, 4, 0);
		cfg_write(CFG_CF8, BDF(0, 0, 0), 0x60, 4, ECAM_BASE | 1);
	}
	return cfg_read(CFG_ECAM, BDF(0, 0, 0), 0, 4) == cfg_read(CFG_CF8, BDF(0, 0, 0), 0, 4);
}

int guest_main(void)
{
	put_str("bars: BAR sequences of real firmware, checked after every write\n");
	paging_on();
	const char *why = model_init(&M, IO_SPARE, MEM_SPARE);
	M.verdict = V_SETUP;
	model_print(&M);
	int net = model_dev(&M, 0x1af4, 0x1000), blk = model_dev(&M, 0x1af4, 0x1001);
	int td = model_dev(&M, 0x1b36, 0x0005);
	if (!why && (net < 0 || blk < 0 || td < 0))
		why = "needs virtio-net, virtio-blk and pci-testdev on bus 0";
	if (why)
		model_fail(&M, why);
	NET = (unsigned)net, BLK = (unsigned)blk, TD = (unsigned)td;
	put_str("bars: ");
	put_dec(M.nbars);
	put_str(" BARs on ");
	put_dec(M.ndevs);
	put_str(" devices\n");
	if (!ecam_works()) {
		put_str("bars: FAIL: no ECAM at 0xb0000000\n");
		return V_NO_ECAM;
	}
	model_check(&M);
	u32 writes = 0;
	for (int method = CFG_CF8; method <= CFG_ECAM; method++) {
		M.method = method;
		for (unsigned p = 0; p < ARRAY_SIZE(patterns); p++) {
			model_begin(&M, patterns[p].name, (method == CFG_ECAM ? V_ECAM : V_CF8) + p);
			patterns[p].run();
			writes += M.step_no;
			put_str(method == CFG_ECAM ? "bars: ECAM    " : "bars: CF8/CFC ");
			put_str(patterns[p].name);
			put_str(": ");
			put_dec(M.step_no);
			put_str(" writes, all checked\n");
		}
	}
	put_str("bars: passed: ");
	put_dec(writes);
	put_str(" writes, every address right after each\n");
	return V_PASS;
}
