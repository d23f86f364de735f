/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conc.rom: BARs moving under other vCPUs' feet. The BSP moves, swaps, disables and
 * re-enables the BARs of virtio-net, virtio-blk and pci-testdev through configuration
 * writes, ITERATIONS times, inside small windows so that they overlap all the time. Every
 * other vCPU meanwhile reads the windows' grid points and writes and reads back MSI-X
 * table entries, and checks each value:
 *   - when no map change ran during the access (a sequence count, even and unchanged
 *     around it), the value must be what the model says answers there now;
 *   - otherwise it must be something that can answer there at all (some BAR's answer at
 *     that offset, or nothing): a torn, stale-beyond-reason or misrouted value fails;
 *   - an MSI-X write with no change around it must read back.
 * At the end the whole map is checked against the model (model.c). Any vCPU count from 2.
 */
#include "model.h"

#ifndef ITERATIONS
#define ITERATIONS 2000
#endif

#define IO_BASE   0x6000u /* I/O window: 0x400 ports, 0x100-aligned */
#define IO_SIZE   0x400u
#define MEM_BASE  0xc8000000u /* memory window: 64 KiB, 16 KiB-aligned */
#define MEM_SIZE  0x10000u
#define IO_SPARE  0x7000u
#define MEM_SPARE 0xd0000000u

#define NPOINTS     (IO_SIZE / GRID_IO + MEM_SIZE / GRID_MEM)
#define MAX_ALLOWED 12
#define MAX_APS     7

#define V_SETUP  90
#define V_READ   91 /* a read answered what nothing placed there could */
#define V_STRICT 92 /* a read in a quiet moment answered other than the model */
#define V_LOST   93 /* an MSI-X write in a quiet moment did not read back */
#define V_FINAL  94 /* the map after the run differs from the model */
#define V_NO_AP  95

struct point {
	u8 io, any; /* any: some BAR answers unevenly here, so any value goes */
	u32 addr;
	u32 nallowed;
	u32 allowed[MAX_ALLOWED]; /* every value that can answer here */
};

/* Shared between the vCPUs. The BSP writes; the others read. */
static struct model M = {0};
static struct point points[NPOINTS] = {{0}};
static volatile u32 expected[NPOINTS] = {0}; /* valid while gen is even and unchanged */
static volatile u32 checkable[NPOINTS] = {0};
static volatile u32 msix_at[MAX_DEVS] = {0}; /* where a device's MSI-X table answers, or 0 */
static volatile u32 gen = 0;
static volatile u32 done = 0, finished = 0;

/* The first failure, reported by the BSP (one vCPU prints at a time). */
static volatile u32 fail_lock = 0, fail_verdict = 0, fail_cpu = 0, fail_addr = 0;
static volatile u32 fail_want = 0, fail_got = 0, fail_io = 0;

static volatile u32 ap_strict[MAX_APS + 1] = {0}, ap_loose[MAX_APS + 1] = {0};
static volatile u32 ap_reads = 0; /* all of them, for the BSP's pacing */
static volatile u32 ap_writes[MAX_APS + 1] = {0};

/* The MSI-X dwords the first two other vCPUs write: entry 0's address high and data. A
 * write that a change sends elsewhere lands at the same offset of another BAR, where
 * these two are harmless in every BAR here (a pci-testdev header field it ignores, a
 * virtio feature register, a notify of a queue never set up, or device configuration
 * no probe reads); entry 1's dwords would hit virtio's status and queue registers. */
static const u32 msix_slot[] = {0x04, 0x08};

static u32 rng_next(u32 *s)
{
	u32 x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void add_allowed(struct point *p, u32 v)
{
	for (u32 i = 0; i < p->nallowed; i++)
		if (p->allowed[i] == v)
			return;
	if (p->nallowed < MAX_ALLOWED)
		p->allowed[p->nallowed++] = v;
}

/* Every value that can answer at each point: nothing, or any BAR of that space at any
 * aligned place in the window (a swap or a mask can put it anywhere aligned). */
static void build_points(void)
{
	u32 n = 0;
	for (u32 a = 0; a < IO_SIZE; a += GRID_IO)
		points[n++] = (struct point){.io = 1, .addr = IO_BASE + a};
	for (u32 a = 0; a < MEM_SIZE; a += GRID_MEM)
		points[n++] = (struct point){.io = 0, .addr = MEM_BASE + a};
	for (u32 i = 0; i < n; i++) {
		struct point *p = &points[i];
		u32 base = p->io ? IO_BASE : MEM_BASE, grid = p->io ? GRID_IO : GRID_MEM;
		add_allowed(p, p->io ? M.empty_io : M.empty_mem);
		for (u32 k = 0; k < M.nbars; k++) {
			const struct bar *b = &M.bars[k];
			if (b->io != p->io)
				continue;
			u32 at = (p->addr - base) & ~(b->size - 1); /* the aligned place over p */
			u32 idx = (p->addr - base - at) / grid;
			if (idx < MAX_POINTS && (b->fp_stable & (1u << idx)))
				add_allowed(p, b->fp[idx]);
			else
				p->any = 1;
		}
	}
}

/* What the vCPUs check against, from the model; the BSP calls it with gen odd. */
static void publish(void)
{
	for (u32 i = 0; i < NPOINTS; i++) {
		u32 want = 0;
		checkable[i] = (u32)model_expect(&M, points[i].io, points[i].addr, &want);
		expected[i] = want;
	}
	for (u32 d = 0; d < M.ndevs; d++) {
		const struct bar *b = model_bar(&M, d, 0x14);
		u32 want = 0;
		msix_at[d] = 0;
		/* Only where that table answers at its start: not covered, not unmapped. */
		if (b && !b->io && b->mapped != UNMAPPED && M.devs[d].vendor == 0x1af4 &&
		    model_expect(&M, 0, b->mapped, &want) && want == b->fp[0])
			msix_at[d] = (u32)b->mapped;
	}
}

static void report(u32 verdict, u32 cpu, u32 io, u32 addr, u32 want, u32 got)
{
	u32 zero = 0;
	__asm__ volatile("lock cmpxchgl %2, %1" : "+a"(zero), "+m"(fail_lock) : "r"(1u) : "memory");
	if (zero)
		return; /* someone was first */
	fail_cpu = cpu, fail_io = io, fail_addr = addr, fail_want = want, fail_got = got;
	fail_verdict = verdict;
	atomic_write(&done, 1);
}

static void ap_read(unsigned cpu, u32 *rng)
{
	u32 i = rng_next(rng) % NPOINTS;
	const struct point *p = &points[i];
	u32 g1 = atomic_read(&gen);
	u32 want = expected[i], check = checkable[i];
	barrier();
	u32 got = model_probe_read(p->io, p->addr);
	barrier();
	u32 g2 = atomic_read(&gen);
	atomic_inc(&ap_reads);
	if (g1 == g2 && !(g1 & 1)) {
		ap_strict[cpu]++;
		if (check && got != want)
			report(V_STRICT, cpu, p->io, p->addr, want, got);
		return;
	}
	ap_loose[cpu]++;
	if (p->any)
		return;
	for (u32 k = 0; k < p->nallowed; k++)
		if (p->allowed[k] == got)
			return;
	report(V_READ, cpu, p->io, p->addr, p->allowed[0], got);
}

static void ap_write(unsigned cpu, u32 *rng, u32 n)
{
	u32 d = rng_next(rng) % M.ndevs;
	u32 g1 = atomic_read(&gen);
	u32 at = msix_at[d];
	if ((g1 & 1) || !at)
		return;
	u32 addr = at + msix_slot[cpu - 1];
	u32 v = cpu << 28 | (n & 0x0fffffff);
	mmio_write32(addr, v);
	u32 got = mmio_read32(addr);
	barrier();
	if (atomic_read(&gen) != g1)
		return; /* a change ran in between: the write may rightly be elsewhere */
	ap_writes[cpu]++;
	if (got != v)
		report(V_LOST, cpu, 0, addr, v, got);
}

static void ap_main(unsigned cpu)
{
	u32 rng = 0x9e3779b9u * cpu, n = 0;
	while (cpu <= MAX_APS && !atomic_read(&done)) {
		if (++n % 4 == 0 && cpu <= ARRAY_SIZE(msix_slot))
			ap_write(cpu, &rng, n);
		else
			ap_read(cpu, &rng);
	}
	atomic_inc(&finished);
}

/* ---- the BSP: changes ---- */

static void begin_change(void) { atomic_inc(&gen); }

/* After a change the map stays still until the others have read it a few times, so that
 * quiet reads (checked exactly) are as common as racing ones. Bounded: a stuck vCPU
 * must not stop the run. */
static void end_change(void)
{
	publish();
	atomic_inc(&gen);
	u32 start = atomic_read(&ap_reads), want = 2 * ap_online;
	for (u32 spin = 0; spin < 2000000u && atomic_read(&ap_reads) - start < want; spin++)
		cpu_relax();
}

static void place(const struct bar *b, u32 a)
{
	model_apply(&M, b->dev, b->reg, 4, a);
	if (b->is64)
		model_apply(&M, b->dev, b->reg + 4, 4, 0);
}

static u32 random_place(const struct bar *b, u32 *rng)
{
	u32 base = b->io ? IO_BASE : MEM_BASE, size = b->io ? IO_SIZE : MEM_SIZE;
	return base + (rng_next(rng) % (size / b->size)) * b->size;
}

static void one_change(u32 *rng)
{
	u32 r = rng_next(rng) % 10;
	const struct bar *a = &M.bars[rng_next(rng) % M.nbars];
	begin_change();
	if (r < 6) {
		place(a, random_place(a, rng));
	} else if (r < 8) {
		/* A swap with decode on: two writes, the first moves a onto b. */
		const struct bar *b = &M.bars[rng_next(rng) % M.nbars];
		if (b->io == a->io && b != a) {
			u32 aa = a->lo, ba = b->lo;
			place(a, ba);
			end_change();
			begin_change();
			place(b, aa);
		}
	} else {
		unsigned d = a->dev;
		model_apply(&M, d, 4, 2, M.devs[d].cmd & 3 ? 0 : 3);
	}
	end_change();
}

static void print_failure(void)
{
	put_str("conc: FAIL on vCPU ");
	put_dec(fail_cpu);
	put_str(fail_io ? ": port " : ": address ");
	put_hex(fail_addr);
	put_str(fail_verdict == V_LOST ? " wrote " : " expected ");
	put_hex(fail_want);
	put_str(fail_verdict == V_LOST ? ", read back " : ", read ");
	put_hex(fail_got);
	put_str(fail_verdict == V_READ ? " (nothing placed there answers so)\n"
	        : fail_verdict == V_LOST ? " (a write in a quiet moment was lost)\n"
	                                 : " (no change ran during the read)\n");
}

int guest_main(void)
{
	put_str("conc: BARs moving under other vCPUs\n");
	const char *why = model_init(&M, IO_SPARE, MEM_SPARE);
	M.verdict = V_SETUP;
	M.pattern = "concurrent moves";
	if (why)
		model_fail(&M, why);
	model_print(&M);
	/* A first layout inside the windows, decode on. */
	u32 rng = 0x2545f491u;
	for (u32 i = 0; i < M.nbars; i++)
		place(&M.bars[i], random_place(&M.bars[i], &rng));
	for (u32 d = 0; d < M.ndevs; d++)
		model_apply(&M, d, 4, 2, 3);
	model_check(&M);
	build_points();
	publish();

	ap_start(ap_main);
	for (u32 spin = 0; spin < 100000000u && ap_online == 0; spin++)
		cpu_relax();
	u32 aps = ap_online;
	if (!aps) {
		put_str("conc: FAIL: no other vCPU came up (run with -smp 2 or more)\n");
		return V_NO_AP;
	}
	put_str("conc: ");
	put_dec(aps + 1);
	put_str(" vCPUs, ");
	put_dec(ITERATIONS);
	put_str(" changes\n");

	u32 n = 0;
	for (; n < ITERATIONS && !atomic_read(&done); n++) {
		one_change(&rng);
		if (n % 256 == 255) {
			M.step = "a periodic check by the moving vCPU";
			model_check(&M);
		}
	}
	atomic_write(&done, 1);
	for (u32 spin = 0; spin < 1000000000u && finished < ap_online; spin++)
		cpu_relax();
	if (fail_verdict) {
		print_failure();
		return fail_verdict;
	}
	M.verdict = V_FINAL;
	M.step = "the final map";
	model_check(&M);
	u32 strict = 0, loose = 0, writes = 0;
	for (u32 c = 1; c <= MAX_APS; c++)
		strict += ap_strict[c], loose += ap_loose[c], writes += ap_writes[c];
	put_str("conc: passed: ");
	put_dec(n);
	put_str(" changes (");
	put_dec(M.step_no);
	put_str(" configuration writes); the other vCPUs checked ");
	put_dec(strict);
	put_str(" reads exactly, ");
	put_dec(loose);
	put_str(" reads that raced a change, ");
	put_dec(writes);
	put_str(" MSI-X writes read back\n");
	return V_PASS;
}
