/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * notify.rom: virtio-blk notifications while its BAR moves. The second vCPU reads sector 0
 * REQUESTS times through a legacy virtio-blk driver, one request at a time, each announced
 * through the queue-notify register of the I/O BAR; the first vCPU meanwhile moves that
 * BAR between two places, turns its decoding off and on, and moves the device's other
 * BARs, through configuration writes. A VMM with an ioeventfd on the notify register has
 * to move it along: a notification must never be lost (made where the BAR was for the
 * whole write: the request must complete without another notification) nor count twice
 * (the used index never runs ahead of the requests made), and every request completes
 * once with its status OK. A notification that raced a move (a sequence count changed
 * around it) may rightly have gone nowhere: it is made again until one did not race.
 */
#include "model.h"

#ifndef REQUESTS
#define REQUESTS 300
#endif

#define PORT_A    0x6000u
#define PORT_B    0x6400u
#define MEM_A     0xc8000000u
#define MEM_B     0xc8100000u
#define IO_SPARE  0x7000u
#define MEM_SPARE 0xd0000000u

#define RING  0x300000u /* queue 0: descriptors, available ring, used ring on its own page */
#define BUF   0x310000u /* request header, sector, status */
#define SPINS 200000000u /* a request not complete by then never will be */

#define L_GUEST_FEATURES 0x04
#define L_QUEUE_PFN      0x08
#define L_QUEUE_NUM      0x0c
#define L_QUEUE_SEL      0x0e
#define L_QUEUE_NOTIFY   0x10
#define L_STATUS         0x12

#define V_SETUP   100
#define V_LOST    101 /* a notification made at the BAR brought no completion */
#define V_TWICE   102 /* the used index ran ahead of the requests */
#define V_BAD     103 /* a completion with the wrong id, length or status */
#define V_NO_AP   105
#define V_STRAY   106 /* a notification where the BAR is not reached the device */

struct desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

static struct model M = {0};
static unsigned BLK = 0;
static u32 qsize = 0;
static volatile u16 *avail_idx = NULL, *avail_ring = NULL, *used_idx = NULL;
static volatile u32 *used_ring = NULL;

static volatile u32 gen = 0;     /* odd while the BSP changes the map */
static volatile u32 port = 0;    /* where the I/O BAR decodes now, 0 when it does not */
static volatile u32 done = 0, verdict = 0;
static volatile u32 n_racing = 0, n_moves = 0, n_notes = 0, n_strays = 0;

static u32 blk_setup(void)
{
	u16 p = PORT_A;
	outb(p + L_STATUS, 0); /* reset */
	outb(p + L_STATUS, 1);
	outb(p + L_STATUS, 3); /* acknowledged, driver */
	outl(p + L_GUEST_FEATURES, 0);
	outw(p + L_QUEUE_SEL, 0);
	qsize = inw(p + L_QUEUE_NUM);
	if (!qsize || qsize > 1024 || (qsize & (qsize - 1)))
		return 0;
	memset((void *)RING, 0, 0x10000);
	u32 avail = RING + 16 * qsize;
	u32 used = (avail + 6 + 2 * qsize + 4095) & ~4095u;
	avail_idx = (u16 *)(avail + 2);
	avail_ring = (u16 *)(avail + 4);
	used_idx = (u16 *)(used + 2);
	used_ring = (u32 *)(used + 4);
	/* One chain, used for every request: header, sector, status. */
	volatile struct desc *d = (struct desc *)RING;
	volatile u32 *hdr = (u32 *)BUF;
	hdr[0] = 0; /* VIRTIO_BLK_T_IN */
	hdr[1] = 0;
	hdr[2] = 0, hdr[3] = 0; /* sector 0 */
	d[0] = (struct desc){.addr = BUF, .len = 16, .flags = 1, .next = 1};
	d[1] = (struct desc){.addr = BUF + 0x200, .len = 512, .flags = 1 | 2, .next = 2};
	d[2] = (struct desc){.addr = BUF + 0x400, .len = 1, .flags = 2, .next = 0};
	outl(p + L_QUEUE_PFN, RING >> 12);
	outb(p + L_STATUS, 7); /* driver OK */
	return qsize;
}

static void fail(u32 v) { verdict = v, atomic_write(&done, 1); }

/* Notifies where the BAR is; 1 when no change ran around the write. */
static int notify(void)
{
	u32 g1, at;
	do {
		g1 = atomic_read(&gen);
		at = port;
	} while ((g1 & 1) || !at);
	barrier();
	outw((u16)(at + L_QUEUE_NOTIFY), 0);
	barrier();
	int quiet = atomic_read(&gen) == g1;
	atomic_inc(&n_notes);
	return quiet;
}

static int wait_used_for(u16 want, u32 spins)
{
	for (u32 spin = 0; spin < spins; spin++) {
		u16 now = *used_idx;
		if (now == want)
			return 1;
		if ((u16)(now - want) < 0x8000)
			return fail(V_TWICE), 0; /* ahead of the requests */
		cpu_relax();
	}
	return 0;
}

static int wait_used(u16 want) { return wait_used_for(want, SPINS); }

/* Every 16th request is first announced where the BAR is not (the place it alternates
 * with), while the map is still: the request must not complete from that. A VMM that
 * left an ioeventfd behind would complete it. Seen or not within a short wait; a late
 * completion is missed here, never wrongly blamed. 1 when nothing answered. */
static int stray_notify(u16 want)
{
	u32 g1 = atomic_read(&gen), at = port;
	if ((g1 & 1) || !at)
		return 1;
	outw((u16)((at == PORT_A ? PORT_B : PORT_A) + L_QUEUE_NOTIFY), 0);
	if (atomic_read(&gen) != g1)
		return 1; /* the BAR may have come here meanwhile */
	n_strays++;
	return !wait_used_for(want, 200000u) || atomic_read(&gen) != g1;
}

static void ap_main(unsigned cpu)
{
	if (cpu != 1)
		return;
	volatile u8 *status = (u8 *)(BUF + 0x400);
	for (u32 n = 1; n <= REQUESTS && !verdict; n++) {
		/* Each request meets a map that moved since the last (bounded wait). */
		u32 moves = atomic_read(&n_moves);
		for (u32 spin = 0; spin < 200000u && atomic_read(&n_moves) == moves; spin++)
			cpu_relax();
		*status = 0xff;
		avail_ring[(n - 1) % qsize] = 0;
		mfence();
		*avail_idx = (u16)n;
		mfence();
		if (n % 16 == 0 && !stray_notify((u16)n)) {
			fail(V_STRAY);
			break;
		}
		/* A notification that raced a move may rightly have gone nowhere: it is made
		 * again until one was made where the BAR stayed for the whole write. That one
		 * must bring the completion (an earlier one may already have). */
		while (!notify()) {
			n_racing++;
			if (verdict)
				break;
		}
		if (!wait_used((u16)n)) {
			if (!verdict)
				fail(V_LOST);
			break;
		}
		u32 slot = (n - 1) % qsize;
		if (used_ring[2 * slot] != 0 || used_ring[2 * slot + 1] != 513 || *status != 0) {
			fail(V_BAD);
			break;
		}
	}
	atomic_write(&done, 1);
}

/* ---- the BSP: the moves ---- */

static void change_begin(void) { atomic_inc(&gen); }

/* The BAR stays put until the other vCPU has notified once more (bounded), so that both
 * quiet and racing notifications are common. */
static void change_end(void)
{
	u32 seen = atomic_read(&n_notes);
	atomic_inc(&gen);
	for (u32 spin = 0; spin < 20000u && atomic_read(&n_notes) == seen; spin++)
		cpu_relax();
}

static void move_io(const struct bar *b, u32 to)
{
	change_begin();
	model_apply(&M, BLK, b->reg, 4, to);
	port = to;
	change_end();
}

static void io_decode(int on)
{
	change_begin();
	port = 0;
	model_apply(&M, BLK, 4, 2, on ? 7 : 6);
	if (on)
		port = (u32)model_bar(&M, BLK, 0x10)->mapped;
	change_end();
}

int guest_main(void)
{
	put_str("notify: virtio-blk notifications while its BAR moves\n");
	const char *why = model_init(&M, IO_SPARE, MEM_SPARE);
	M.verdict = V_SETUP;
	M.pattern = "notifications";
	int blk = model_dev(&M, 0x1af4, 0x1001);
	if (!why && blk < 0)
		why = "needs virtio-blk on bus 0";
	if (why)
		model_fail(&M, why);
	BLK = (unsigned)blk;
	const struct bar *io = model_bar(&M, BLK, 0x10), *msix = model_bar(&M, BLK, 0x14);
	const struct bar *modern = model_bar(&M, BLK, 0x20);
	if (!io || !io->io || !msix || !modern)
		model_fail(&M, "virtio-blk lacks its I/O, MSI-X or modern BAR");
	model_apply(&M, BLK, io->reg, 4, PORT_A);
	model_apply(&M, BLK, msix->reg, 4, MEM_A);
	model_apply(&M, BLK, modern->reg, 4, MEM_A + 0x10000);
	model_apply(&M, BLK, modern->reg + 4, 4, 0);
	model_apply(&M, BLK, 4, 2, 7); /* I/O, memory, bus master (the device reads RAM) */
	model_check(&M);
	if (!blk_setup())
		model_fail(&M, "virtio-blk's queue 0 has no usable size");
	port = PORT_A;
	put_str("notify: queue of ");
	put_dec(qsize);
	put_str(", ");
	put_dec(REQUESTS);
	put_str(" requests\n");

	ap_start(ap_main);
	for (u32 spin = 0; spin < 100000000u && ap_online == 0; spin++)
		cpu_relax();
	if (!ap_online) {
		put_str("notify: FAIL: no other vCPU came up (run with -smp 2)\n");
		return V_NO_AP;
	}
	u32 rng = 0x12345678u;
	while (!atomic_read(&done)) {
		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		switch (rng % 8) {
		case 0:
			io_decode(0);
			io_decode(1);
			break;
		case 1: /* the other BARs: the listener's work, not this BAR's */
			change_begin();
			model_apply(&M, BLK, msix->reg, 4, msix->lo == MEM_A ? MEM_B : MEM_A);
			change_end();
			break;
		default:
			move_io(io, port == PORT_A ? PORT_B : PORT_A);
			break;
		}
		atomic_inc(&n_moves);
	}
	if (verdict) {
		put_str(verdict == V_LOST    ? "notify: FAIL: a notification at the BAR was lost\n"
		        : verdict == V_STRAY ? "notify: FAIL: a notification where the BAR is not "
		                               "reached the device\n"
		        : verdict == V_TWICE ? "notify: FAIL: more completions than requests\n"
		                             : "notify: FAIL: a completion was wrong\n");
		return verdict;
	}
	if (*used_idx != (u16)REQUESTS) {
		put_str("notify: FAIL: the used index is not the number of requests\n");
		return V_TWICE;
	}
	put_str("notify: passed: ");
	put_dec(REQUESTS);
	put_str(" requests completed once each while the BAR moved ");
	put_dec(n_moves);
	put_str(" times; ");
	put_dec(n_racing);
	put_str(" notifications raced a move and were made again; ");
	put_dec(n_strays);
	put_str(" made where the BAR was not reached nothing\n");
	return V_PASS;
}
