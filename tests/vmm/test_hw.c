/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The small devices without KVM: UART, RTC/CMOS, fw_cfg, isa-debug-exit, isa-debugcon and
 * pci-testdev, each driven through bm_read/bm_write on the port and memory spaces as a
 * vCPU would, with interrupt lines seen by a recording hypervisor. Ends with a pass of
 * random guest writes after which every device must still answer as it should.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "fake_hv.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

struct env {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *cpu;
	int pipe[2]; /* read end non-blocking */
};

static struct env *env_new(uint64_t ram, unsigned ncpus)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	fake_hv_init(&e->hv);
	assert_int_equal(vm_new(&fake_hv_ops, &e->hv, ram, ncpus, &e->vm), 0);
	assert_int_equal(bm_vcpu_new(e->vm->sys, 0, NULL, &e->cpu), 0);
	assert_int_equal(pipe(e->pipe), 0);
	assert_int_equal(fcntl(e->pipe[0], F_SETFL, O_NONBLOCK), 0);
	return e;
}

static void env_free(struct env *e)
{
	assert_int_equal(e->hv.refusals, 0);
	bm_vcpu_free(e->cpu);
	vm_free(e->vm);
	close(e->pipe[0]);
	close(e->pipe[1]);
	free(e);
}

static int setup(void **state)
{
	*state = env_new(64 * MiB, 2);
	return 0;
}

static int teardown(void **state)
{
	env_free(*state);
	return 0;
}

static uint64_t in(struct env *e, uint64_t port, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bm_read(e->cpu, e->vm->io, port, size, &v), 0);
	return v;
}

static void out(struct env *e, uint64_t port, unsigned size, uint64_t v)
{
	assert_int_equal(bm_write(e->cpu, e->vm->io, port, size, v), 0);
}

static uint64_t rdmem(struct env *e, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_true(bm_read(e->cpu, e->vm->mem, addr, size, &v) >= 0);
	return v;
}

static void wrmem(struct env *e, uint64_t addr, unsigned size, uint64_t v)
{
	assert_true(bm_write(e->cpu, e->vm->mem, addr, size, v) >= 0);
}

/* Everything the devices wrote to the pipe so far. */
static size_t drain(struct env *e, uint8_t *buf, size_t max)
{
	size_t n = 0;
	for (;;) {
		uint8_t scratch[4096];
		ssize_t r =
		    read(e->pipe[0], buf ? buf + n : scratch, buf ? max - n : sizeof(scratch));
		if (r <= 0)
			return n;
		if (buf)
			n += (size_t)r;
		if (buf && n == max)
			return n;
	}
}

static void add(struct env *e, const char *name, void *dev, void (*free_fn)(void *))
{
	assert_int_equal(vm_add_device(e->vm, name, dev, free_fn), 0);
}

/* ---- UART ----------------------------------------------------------------------- */

#define COM1 0x3f8

static struct uart *add_uart(struct env *e, int fd)
{
	struct uart *u;
	assert_int_equal(uart_new(e->vm, COM1, 4, fd, &u), 0);
	add(e, "serial", u, uart_free);
	return u;
}

static void test_uart_output_is_byte_exact(void **state)
{
	struct env *e = *state;
	add_uart(e, e->pipe[1]);
	uint8_t want[300], got[sizeof(want) + 1];
	for (unsigned i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 37 + 11);
	want[5] = 0;
	want[6] = '\n';
	for (unsigned i = 0; i < sizeof(want); i++) {
		assert_int_equal(in(e, COM1 + 5, 1) & 0x60, 0x60); /* THRE | TEMT */
		out(e, COM1, 1, want[i]);
	}
	assert_int_equal(drain(e, got, sizeof(got)), sizeof(want));
	assert_memory_equal(got, want, sizeof(want));

	/* A 16-bit write is THR then IER: one byte leaves, the other lands in IER. */
	out(e, COM1, 2, 0x0541);
	assert_int_equal(drain(e, got, sizeof(got)), 1);
	assert_int_equal(got[0], 0x41);
	assert_int_equal(in(e, COM1 + 1, 1), 0x05);

	/* Nothing is ever received. */
	assert_int_equal(in(e, COM1 + 5, 1) & 0x01, 0);
}

static void test_uart_registers(void **state)
{
	struct env *e = *state;
	add_uart(e, e->pipe[1]);
	/* QEMU's reset values. */
	assert_int_equal(in(e, COM1 + 1, 1), 0x00);
	assert_int_equal(in(e, COM1 + 2, 1), 0x01);
	assert_int_equal(in(e, COM1 + 3, 1), 0x00);
	assert_int_equal(in(e, COM1 + 4, 1), 0x08);
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);
	assert_int_equal(in(e, COM1 + 6, 1), 0xb0);

	/* Divisor latch behind DLAB, keeping THR and IER apart. */
	out(e, COM1 + 3, 1, 0x83);
	assert_int_equal(in(e, COM1, 1), 0x0c);
	assert_int_equal(in(e, COM1 + 1, 1), 0x00);
	out(e, COM1, 1, 0x01);
	out(e, COM1 + 1, 1, 0x02);
	assert_int_equal(in(e, COM1, 2), 0x0201);
	out(e, COM1 + 3, 1, 0x03);
	assert_int_equal(in(e, COM1 + 3, 1), 0x03);
	assert_int_equal(in(e, COM1 + 1, 1), 0x00);
	assert_int_equal(drain(e, NULL, 0), 0);

	/* IER keeps four bits, MCR five, the scratch register all. */
	out(e, COM1 + 1, 1, 0xf0);
	assert_int_equal(in(e, COM1 + 1, 1), 0x00);
	out(e, COM1 + 4, 1, 0xff);
	assert_int_equal(in(e, COM1 + 4, 1), 0x1f);
	out(e, COM1 + 4, 1, 0x08);
	for (unsigned v = 0; v < 256; v += 51) {
		out(e, COM1 + 7, 1, v);
		assert_int_equal(in(e, COM1 + 7, 1), v);
	}
	/* LSR and MSR ignore writes. */
	out(e, COM1 + 5, 1, 0x00);
	out(e, COM1 + 6, 1, 0x00);
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);
	assert_int_equal(in(e, COM1 + 6, 1), 0xb0);

	/* FIFOs: IIR shows them as a 16550A does (what Linux probes). */
	out(e, COM1 + 2, 1, 0xc7);
	assert_int_equal(in(e, COM1 + 2, 1), 0xc1);
	out(e, COM1 + 2, 1, 0x00);
	assert_int_equal(in(e, COM1 + 2, 1), 0x01);
}

static void test_uart_loopback(void **state)
{
	struct env *e = *state;
	add_uart(e, e->pipe[1]);
	/* Linux's probe: loop with RTS and OUT2 must read back CTS and DCD. */
	out(e, COM1 + 4, 1, 0x1a);
	assert_int_equal(in(e, COM1 + 6, 1) & 0xf0, 0x90);
	out(e, COM1 + 4, 1, 0x15);
	assert_int_equal(in(e, COM1 + 6, 1) & 0xf0, 0x60);

	/* What is sent comes back and does not leave. */
	out(e, COM1, 1, 'a');
	assert_int_equal(in(e, COM1 + 5, 1), 0x61);
	assert_int_equal(in(e, COM1, 1), 'a');
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);
	/* A second byte over an unread one overruns without a FIFO. */
	out(e, COM1, 1, 'b');
	out(e, COM1, 1, 'c');
	assert_int_equal(in(e, COM1 + 5, 1), 0x63);
	assert_int_equal(in(e, COM1 + 5, 1), 0x61); /* reading LSR clears OE */
	assert_int_equal(in(e, COM1, 1), 'c');
	/* With the FIFO, 16 bytes are kept in order; the 17th is an overrun. */
	out(e, COM1 + 2, 1, 0x07);
	for (unsigned i = 0; i < 17; i++)
		out(e, COM1, 1, 'A' + i);
	assert_int_equal(in(e, COM1 + 5, 1), 0x63);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(in(e, COM1, 1), 'A' + i);
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);
	assert_int_equal(drain(e, NULL, 0), 0);

	out(e, COM1 + 4, 1, 0x08);
	out(e, COM1, 1, 'z');
	uint8_t got[4];
	assert_int_equal(drain(e, got, sizeof(got)), 1);
	assert_int_equal(got[0], 'z');
}

static bool irq4(struct env *e)
{
	return e->hv.irq[4];
}

static void test_uart_thre_interrupt(void **state)
{
	struct env *e = *state;
	add_uart(e, e->pipe[1]);
	assert_false(irq4(e));
	out(e, COM1 + 1, 1, 0x02); /* THRI */
	assert_true(irq4(e));
	assert_int_equal(e->hv.irq_raises[4], 1);
	/* Reading IIR acknowledges the THRE interrupt. */
	assert_int_equal(in(e, COM1 + 2, 1), 0x02);
	assert_false(irq4(e));
	assert_int_equal(in(e, COM1 + 2, 1), 0x01);

	/* A byte sent empties the holding register again: a new interrupt. */
	out(e, COM1, 1, 'x');
	assert_true(irq4(e));
	assert_int_equal(e->hv.irq_raises[4], 2);
	/* Even while the line is up, a send is a new edge, which an edge-triggered PIC
	 * needs to interrupt again. */
	out(e, COM1, 1, 'y');
	assert_true(irq4(e));
	assert_int_equal(e->hv.irq_raises[4], 3);

	/* OUT2 gates the line on a PC; IIR still tells. */
	out(e, COM1 + 4, 1, 0x00);
	assert_false(irq4(e));
	assert_int_equal(in(e, COM1 + 4, 1), 0x00);
	out(e, COM1 + 4, 1, 0x08);
	assert_true(irq4(e));
	/* Loopback forces OUT2 off. */
	out(e, COM1 + 4, 1, 0x18);
	assert_false(irq4(e));
	out(e, COM1 + 4, 1, 0x08);
	assert_true(irq4(e));

	/* Turning THRI off lowers it; turning it on again re-arms it. */
	out(e, COM1 + 1, 1, 0x00);
	assert_false(irq4(e));
	out(e, COM1 + 1, 1, 0x02);
	assert_true(irq4(e));
	assert_int_equal(in(e, COM1 + 2, 1), 0x02);
	assert_false(irq4(e));

	/* Received data (loopback) outranks THRE and is acknowledged by reading RBR. */
	out(e, COM1 + 4, 1, 0x18);
	out(e, COM1 + 1, 1, 0x03);
	out(e, COM1, 1, 'q');
	assert_int_equal(in(e, COM1 + 2, 1), 0x04);
	assert_int_equal(in(e, COM1, 1), 'q');
	assert_int_equal(in(e, COM1 + 2, 1), 0x02);
	assert_int_equal(in(e, COM1 + 2, 1), 0x01);
	uint8_t got[8];
	assert_int_equal(drain(e, got, sizeof(got)), 2);
	assert_memory_equal(got, "xy", 2);
}

static void test_uart_output_errors(void **state)
{
	struct env *e = *state;
	/* A full non-blocking pipe drops bytes without blocking the vCPU. */
	assert_int_equal(fcntl(e->pipe[1], F_SETFL, O_NONBLOCK), 0);
	add_uart(e, e->pipe[1]);
	uint8_t fill[4096] = {0};
	while (write(e->pipe[1], fill, sizeof(fill)) > 0)
		;
	while (write(e->pipe[1], fill, 1) > 0)
		;
	for (unsigned i = 0; i < 100; i++)
		out(e, COM1, 1, 'L');
	drain(e, NULL, 0);
	out(e, COM1, 1, 'K');
	uint8_t got[4];
	assert_int_equal(drain(e, got, sizeof(got)), 1);
	assert_int_equal(got[0], 'K');

	/* A closed reader is reported once, however much the guest writes. */
	char *log = NULL;
	size_t loglen = 0;
	FILE *logf = open_memstream(&log, &loglen);
	assert_non_null(logf);
	e->vm->log = logf;
	signal(SIGPIPE, SIG_IGN);
	close(e->pipe[0]);
	e->pipe[0] = open("/dev/null", O_RDONLY);
	for (unsigned i = 0; i < 50; i++)
		out(e, COM1, 1, 'M');
	fclose(logf);
	e->vm->log = stderr;
	unsigned lines = 0;
	for (size_t i = 0; i < loglen; i++)
		lines += log[i] == '\n';
	assert_int_equal(lines, 1);
	assert_non_null(strstr(log, "serial"));
	free(log);
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);

	/* No fd: bytes are dropped quietly. */
	struct uart *u2;
	assert_int_equal(uart_new(e->vm, 0x2f8, 3, -1, &u2), 0);
	add(e, "serial2", u2, uart_free);
	out(e, 0x2f8, 1, 'N');
	assert_int_equal(in(e, 0x2f8 + 5, 1), 0x60);

	assert_int_equal(uart_new(e->vm, 0xfffc, 4, -1, &u2), -EINVAL);
	assert_int_equal(uart_new(e->vm, 0x3e8, 16, -1, &u2), -EINVAL);
	assert_int_equal(uart_new(e->vm, 0x3e8, 4, -2, &u2), -EINVAL);
}

/* ---- RTC and CMOS -------------------------------------------------------------- */

static uint8_t cmos(struct env *e, uint8_t index)
{
	out(e, 0x70, 1, index | 0x80); /* as SeaBIOS does, NMI masked */
	return (uint8_t)in(e, 0x71, 1);
}

static void cmos_write(struct env *e, uint8_t index, uint8_t v)
{
	out(e, 0x70, 1, index);
	out(e, 0x71, 1, v);
}

static struct rtc *add_rtc(struct env *e)
{
	struct rtc *r;
	assert_int_equal(rtc_new(e->vm, &r), 0);
	add(e, "rtc", r, rtc_free);
	return r;
}

/* SeaBIOS's reading of the CMOS sizes when fw_cfg has no e820 (paravirt.c). */
static void seabios_sizes(struct env *e, uint64_t *below, uint64_t *above)
{
	uint64_t rs = ((uint64_t)cmos(e, 0x34) << 16) | ((uint64_t)cmos(e, 0x35) << 24);
	if (rs)
		rs += 16 * MiB;
	else
		rs = (((uint64_t)cmos(e, 0x30) << 10) | ((uint64_t)cmos(e, 0x31) << 18)) + MiB;
	*below = rs;
	*above = ((uint64_t)cmos(e, 0x5b) << 16) | ((uint64_t)cmos(e, 0x5c) << 24) |
	         ((uint64_t)cmos(e, 0x5d) << 32);
}

static void test_cmos_sizes(void **state)
{
	(void)state;
	static const struct {
		uint64_t ram;
		unsigned ncpus;
	} cases[] = {
	    {64 * MiB, 1},
	    {3 * GiB, 4},              /* 2.75 GiB below 4 GiB, 256 MiB above */
	    {MiB + 4096, 2},           /* barely any extended memory */
	    {15 * MiB + 20 * 4096, 8}, /* below 16 MiB: only the 1 MiB count */
	    {5 * GiB + 12 * 4096, 255},
	    {100 * MiB + 7 * 4096, 256},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env *e = env_new(cases[i].ram, cases[i].ncpus);
		add_rtc(e);
		uint64_t low = e->vm->below_4g, high = e->vm->ram_size - low;
		uint64_t below, above;
		seabios_sizes(e, &below, &above);
		if (low > 16 * MiB)
			assert_int_equal(below, low & ~0xffffull);
		else
			assert_int_equal(below, MiB + ((low - MiB) & ~0x3ffull));
		assert_int_equal(above, high & ~0xffffull);

		/* QEMU's other copies: base memory, extended memory capped at 0xffff KiB. */
		assert_int_equal(cmos(e, 0x15) | cmos(e, 0x16) << 8, 640);
		uint64_t ext = (low - MiB) / 1024 > 0xffff ? 0xffff : (low - MiB) / 1024;
		assert_int_equal(cmos(e, 0x17) | cmos(e, 0x18) << 8, ext);
		assert_int_equal(cmos(e, 0x30) | cmos(e, 0x31) << 8, ext);
		assert_int_equal(cmos(e, 0x5f), cases[i].ncpus > 255 ? 0 : cases[i].ncpus - 1);
		env_free(e);
	}
}

static void test_cmos_fixed_bytes(void **state)
{
	struct env *e = *state;
	add_rtc(e);
	/* Boot order "cad" as SeaBIOS decodes it: hard disk, floppy, CD-ROM. */
	uint32_t order = cmos(e, 0x3d) | (cmos(e, 0x38) & 0xf0) << 4;
	assert_int_equal(order & 0xf, 2);
	assert_int_equal(order >> 4 & 0xf, 1);
	assert_int_equal(order >> 8 & 0xf, 3);
	assert_int_equal(cmos(e, 0x38) & 1, 0);
	assert_int_equal(cmos(e, 0x10), 0x00); /* no floppy */
	assert_int_equal(cmos(e, 0x12), 0x00); /* no IDE disk */
	assert_int_equal(cmos(e, 0x14), 0x06);
	assert_int_equal(cmos(e, 0x0a), 0x26);
	assert_int_equal(cmos(e, 0x0b), 0x02);
	assert_int_equal(cmos(e, 0x0c), 0x00);
	assert_int_equal(cmos(e, 0x0d), 0x80);
	assert_int_equal(cmos(e, 0x32), 0x20); /* this century, until 2100 */

	/* Register A never reports an update in progress; C and D are read-only. */
	cmos_write(e, 0x0a, 0xa6);
	assert_int_equal(cmos(e, 0x0a), 0x26);
	cmos_write(e, 0x0c, 0xff);
	cmos_write(e, 0x0d, 0x00);
	assert_int_equal(cmos(e, 0x0c), 0x00);
	assert_int_equal(cmos(e, 0x0d), 0x80);

	/* Plain CMOS bytes keep what is written; the index has 7 bits and does not read
	 * back. */
	for (unsigned i = 0x40; i < 0x80; i += 7) {
		cmos_write(e, (uint8_t)i, (uint8_t)(i ^ 0x5a));
		assert_int_equal(cmos(e, (uint8_t)i), i ^ 0x5a);
	}
	out(e, 0x70, 1, 0xc0);
	assert_int_equal(in(e, 0x70, 1), 0xff);
	assert_int_equal(in(e, 0x71, 1), 0x40 ^ 0x5a);
	/* A 16-bit write is index then data. */
	out(e, 0x70, 2, 0x7742);
	assert_int_equal(cmos(e, 0x42), 0x77);
}

static unsigned bcd(uint8_t v)
{
	assert_true((v & 0x0f) <= 9 && (v >> 4) <= 9);
	return (v >> 4) * 10u + (v & 0x0f);
}

/* The clock registers read twice alike (a second may turn between two reads). */
static void read_clock(struct env *e, uint8_t regs[10], uint8_t *century)
{
	static const uint8_t idx[] = {0, 2, 4, 6, 7, 8, 9};
	for (unsigned tries = 0; tries < 5; tries++) {
		uint8_t a[10] = {0}, b[10] = {0};
		for (unsigned i = 0; i < sizeof(idx); i++)
			a[idx[i]] = cmos(e, idx[i]);
		uint8_t ca = cmos(e, 0x32);
		for (unsigned i = 0; i < sizeof(idx); i++)
			b[idx[i]] = cmos(e, idx[i]);
		if (!memcmp(a, b, sizeof(a)) && ca == cmos(e, 0x32)) {
			memcpy(regs, a, sizeof(a));
			*century = ca;
			return;
		}
	}
	fail_msg("the clock never read the same twice");
}

static time_t now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* time() may lag behind it */
	return ts.tv_sec;
}

static time_t clock_bcd_24h(struct env *e)
{
	uint8_t r[10], c;
	read_clock(e, r, &c);
	struct tm tm = {
	    .tm_sec = (int)bcd(r[0]),
	    .tm_min = (int)bcd(r[2]),
	    .tm_hour = (int)bcd(r[4]),
	    .tm_mday = (int)bcd(r[7]),
	    .tm_mon = (int)bcd(r[8]) - 1,
	    .tm_year = (int)(bcd(c) * 100 + bcd(r[9])) - 1900,
	};
	assert_true(tm.tm_sec < 60 && tm.tm_min < 60 && tm.tm_hour < 24);
	assert_true(tm.tm_mday >= 1 && tm.tm_mday <= 31 && tm.tm_mon >= 0 && tm.tm_mon < 12);
	time_t t = timegm(&tm);
	struct tm check;
	gmtime_r(&t, &check);
	assert_int_equal(bcd(r[6]), check.tm_wday + 1);
	return t;
}

static void test_rtc_time(void **state)
{
	struct env *e = *state;
	add_rtc(e);
	/* BCD, 24 hours, UTC: within the host clock's readings around it. */
	time_t before = now();
	time_t t = clock_bcd_24h(e);
	time_t after = now();
	assert_true(t >= before && t <= after);

	/* Binary mode. */
	cmos_write(e, 0x0b, 0x06);
	uint8_t r[10], c;
	read_clock(e, r, &c);
	assert_true(r[0] < 60 && r[2] < 60 && r[4] < 24 && r[8] >= 1 && r[8] <= 12);
	assert_int_equal(c, 20);
}

static void test_rtc_set_time(void **state)
{
	struct env *e = *state;
	add_rtc(e);
	/* SET freezes the registers; the guest writes 2031-07-09 23:59:58, BCD. */
	cmos_write(e, 0x0b, 0x82);
	static const uint8_t set[][2] = {{0, 0x58}, {2, 0x59}, {4, 0x23},   {7, 0x09},
	                                 {8, 0x07}, {9, 0x31}, {0x32, 0x20}};
	for (unsigned i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		cmos_write(e, set[i][0], set[i][1]);
	assert_int_equal(cmos(e, 0), 0x58);
	assert_int_equal(cmos(e, 4), 0x23);
	time_t start = now();
	cmos_write(e, 0x0b, 0x02);
	struct tm want = {
	    .tm_sec = 58, .tm_min = 59, .tm_hour = 23, .tm_mday = 9, .tm_mon = 6, .tm_year = 131};
	time_t t0 = timegm(&want);
	time_t t = clock_bcd_24h(e);
	time_t elapsed = now() - start;
	assert_true(t >= t0 && t <= t0 + elapsed + 1);

	/* A write while running moves only that field. */
	cmos_write(e, 9, 0x40);
	t = clock_bcd_24h(e);
	want.tm_year = 140;
	time_t t1 = timegm(&want);
	elapsed = now() - start;
	assert_true(t >= t1 && t <= t1 + elapsed + 2);

	/* 12-hour mode: 15:30 reads as 3 PM, in BCD and in binary. */
	cmos_write(e, 0x0b, 0x82);
	cmos_write(e, 4, 0x15);
	cmos_write(e, 2, 0x30);
	cmos_write(e, 0x0b, 0x02);
	cmos_write(e, 0x0b, 0x00);
	assert_int_equal(cmos(e, 4), 0x83);
	cmos_write(e, 0x0b, 0x04);
	assert_int_equal(cmos(e, 4), 0x83);
	cmos_write(e, 0x0b, 0x06);
	assert_int_equal(cmos(e, 4), 15);
	/* Hours written in 12-hour mode: 12 AM is midnight, 12 PM noon. */
	cmos_write(e, 0x0b, 0x02);
	cmos_write(e, 0x0b, 0x80);
	cmos_write(e, 4, 0x12);
	cmos_write(e, 0x0b, 0x00);
	assert_int_equal(cmos(e, 4), 0x12);
	cmos_write(e, 0x0b, 0x02);
	assert_int_equal(cmos(e, 4), 0x00);
	cmos_write(e, 0x0b, 0x80);
	cmos_write(e, 4, 0x92);
	cmos_write(e, 0x0b, 0x00);
	cmos_write(e, 0x0b, 0x02);
	assert_int_equal(cmos(e, 4), 0x12);

	/* Nonsense values are clamped into a date; the clock goes on reading sanely. */
	cmos_write(e, 0x0b, 0x82);
	for (unsigned i = 0; i < 10; i++)
		cmos_write(e, (uint8_t)i, 0xff);
	cmos_write(e, 0x32, 0xff);
	cmos_write(e, 0x0b, 0x02);
	clock_bcd_24h(e);
}

/* ---- fw_cfg --------------------------------------------------------------------- */

#define FW_SEL  0x510
#define FW_DATA 0x511

static struct fw_cfg *add_fw_cfg(struct env *e)
{
	struct fw_cfg *fc;
	assert_int_equal(fw_cfg_new(e->vm, FW_SEL, &fc), 0);
	add(e, "fw_cfg", fc, fw_cfg_free);
	return fc;
}

static void fw_read(struct env *e, uint16_t key, void *buf, size_t len)
{
	out(e, FW_SEL, 2, key);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)in(e, FW_DATA, 1);
}

static uint64_t fw_le(struct env *e, uint16_t key, unsigned n)
{
	uint8_t b[8];
	fw_read(e, key, b, n);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static uint32_t be(const uint8_t *p, unsigned n)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

struct fw_file_entry {
	uint32_t size;
	uint16_t select;
	char name[57];
};

static unsigned fw_dir(struct env *e, struct fw_file_entry *f, unsigned max)
{
	uint8_t c[4];
	fw_read(e, 0x19, c, 4);
	unsigned n = be(c, 4);
	assert_true(n <= max);
	for (unsigned i = 0; i < n; i++) {
		uint8_t raw[64];
		for (unsigned j = 0; j < 64; j++)
			raw[j] = (uint8_t)in(e, FW_DATA, 1);
		f[i].size = be(raw, 4);
		f[i].select = (uint16_t)be(raw + 4, 2);
		assert_int_equal(be(raw + 6, 2), 0);
		memcpy(f[i].name, raw + 8, 56);
		f[i].name[56] = 0;
	}
	return n;
}

static const struct fw_file_entry *fw_find(const struct fw_file_entry *f, unsigned n,
                                           const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(f[i].name, name))
			return &f[i];
	return NULL;
}

static void test_fw_cfg_items(void **state)
{
	struct env *e = *state;
	add_fw_cfg(e);
	char sig[5] = {0};
	fw_read(e, 0x0000, sig, 4);
	assert_string_equal(sig, "QEMU");
	assert_int_equal(fw_le(e, 0x0001, 4), 1); /* traditional interface only, no DMA */
	uint8_t uuid[16], zero[16] = {0};
	fw_read(e, 0x0002, uuid, 16);
	assert_memory_equal(uuid, zero, 16);
	assert_int_equal(fw_le(e, 0x0003, 8), 64 * MiB);
	assert_int_equal(fw_le(e, 0x0004, 2), 1);
	assert_int_equal(fw_le(e, 0x0005, 2), 2);
	assert_int_equal(fw_le(e, 0x000e, 2), 0); /* no boot menu to wait in */
	assert_int_equal(fw_le(e, 0x000f, 2), 2);
	assert_int_equal(fw_le(e, 0x000d, 8), 0); /* no NUMA nodes */
	assert_int_equal(fw_le(e, 0x8002, 4), 1); /* IRQ0 override */

	/* Past an item's end, reads give 0 and stay there; selecting again rewinds. */
	fw_read(e, 0x0000, sig, 4);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(in(e, FW_DATA, 1), 0);
	fw_read(e, 0x0000, sig, 4);
	assert_string_equal(sig, "QEMU");
	/* Unknown keys read zeros, whatever the key. */
	static const uint16_t unknown[] = {0x0006, 0x0010, 0x001f, 0x1234, 0x3fff,
	                                   0x8004, 0x8fff, 0xffff, 0x7fff};
	for (unsigned k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++) {
		out(e, FW_SEL, 2, unknown[k]);
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(in(e, FW_DATA, 1), 0);
	}
	/* The write-channel bit is ignored when selecting, as on QEMU. */
	fw_read(e, 0x4000, sig, 4);
	assert_string_equal(sig, "QEMU");
}

static void test_fw_cfg_port_sizes(void **state)
{
	struct env *e = *state;
	add_fw_cfg(e);
	out(e, FW_SEL, 2, 0x0000);
	assert_int_equal(in(e, FW_DATA, 1), 'Q');
	/* A byte write at either port changes nothing: the data port takes no writes. */
	out(e, FW_SEL, 1, 0x01);
	out(e, FW_DATA, 1, 0x01);
	assert_int_equal(in(e, FW_DATA, 1), 'E');
	/* A 16-bit read of the pair is refused by QEMU: 0, and nothing consumed. */
	assert_int_equal(in(e, FW_SEL, 2), 0);
	/* A byte read of the selector port reads data too. */
	assert_int_equal(in(e, FW_SEL, 1), 'M');
	assert_int_equal(in(e, FW_DATA, 1), 'U');
	/* A 32-bit write selects with its low half (the rest is past the device). */
	assert_true(bm_write(e->cpu, e->vm->io, FW_SEL, 4, 0xabcd0001) >= 0);
	assert_int_equal(in(e, FW_DATA, 1), 1);
	/* A 16-bit write at the data port (unaligned) is a byte write there: ignored. */
	assert_true(bm_write(e->cpu, e->vm->io, FW_DATA, 2, 0x0000) >= 0);
	assert_int_equal(in(e, FW_DATA, 1), 0);
}

static void test_fw_cfg_files(void **state)
{
	struct env *e = *state;
	struct fw_cfg *fc = add_fw_cfg(e);
	assert_int_equal(fw_cfg_add_file(fc, "opt/zzz", "last", 4), 0);
	assert_int_equal(fw_cfg_add_file(fc, "bootorder", "/pci@i0cf8/*@5\n", 16), 0);
	assert_int_equal(fw_cfg_add_file(fc, "etc/sercon-port", "\0\0", 2), 0);
	assert_int_equal(fw_cfg_add_file(fc, "empty", NULL, 0), 0);

	struct fw_file_entry f[64];
	unsigned n = fw_dir(e, f, 64);
	assert_int_equal(n, 6);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(f[i].select, 0x20 + i);
		if (i)
			assert_true(strcmp(f[i - 1].name, f[i].name) < 0);
	}
	assert_string_equal(f[0].name, "bootorder");
	const struct fw_file_entry *z = fw_find(f, n, "opt/zzz");
	assert_non_null(z);
	assert_int_equal(z->size, 4);
	char buf[17] = {0};
	fw_read(e, z->select, buf, 4);
	assert_string_equal(buf, "last");
	const struct fw_file_entry *b = fw_find(f, n, "bootorder");
	fw_read(e, b->select, buf, 16);
	assert_string_equal(buf, "/pci@i0cf8/*@5\n");
	assert_int_equal(fw_find(f, n, "empty")->size, 0);
	assert_int_equal(fw_le(e, fw_find(f, n, "etc/boot-fail-wait")->select, 4), 0xffffffff);

	/* Refusals. */
	char longname[60];
	memset(longname, 'a', sizeof(longname));
	longname[56] = 0;
	assert_int_equal(fw_cfg_add_file(fc, longname, "x", 1), -EINVAL);
	longname[55] = 0;
	assert_int_equal(fw_cfg_add_file(fc, longname, "x", 1), 0);
	assert_int_equal(fw_cfg_add_file(fc, longname, "x", 1), -EEXIST);
	assert_int_equal(fw_cfg_add_file(fc, "", "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(fc, "nodata", NULL, 3), -EINVAL);
	int err = 0;
	unsigned added = 0;
	for (unsigned i = 0; i < 100 && !err; i++) {
		char name[16];
		snprintf(name, sizeof(name), "opt/f%02u", i);
		err = fw_cfg_add_file(fc, name, name, strlen(name));
		added += !err;
	}
	assert_int_equal(err, -ENOSPC);
	n = fw_dir(e, f, 64);
	assert_int_equal(n, 7 + added);
	const struct fw_file_entry *f42 = fw_find(f, n, "opt/f42");
	assert_non_null(f42);
	fw_read(e, f42->select, buf, 7);
	buf[7] = 0;
	assert_string_equal(buf, "opt/f42");
}

struct e820 {
	uint64_t addr, len;
	uint32_t type;
};

static unsigned fw_e820(struct env *e, struct e820 *out_e, unsigned max)
{
	struct fw_file_entry f[64];
	unsigned n = fw_dir(e, f, 64);
	const struct fw_file_entry *ef = fw_find(f, n, "etc/e820");
	assert_non_null(ef);
	assert_int_equal(ef->size % 20, 0);
	unsigned count = ef->size / 20;
	assert_true(count <= max);
	out(e, FW_SEL, 2, ef->select);
	for (unsigned i = 0; i < count; i++) {
		uint8_t raw[20];
		for (unsigned j = 0; j < 20; j++)
			raw[j] = (uint8_t)in(e, FW_DATA, 1);
		out_e[i].addr = out_e[i].len = 0;
		for (unsigned j = 0; j < 8; j++) {
			out_e[i].addr |= (uint64_t)raw[j] << (8 * j);
			out_e[i].len |= (uint64_t)raw[8 + j] << (8 * j);
		}
		out_e[i].type = raw[16] | raw[17] << 8 | raw[18] << 16 | (uint32_t)raw[19] << 24;
	}
	return count;
}

static void test_fw_cfg_e820(void **state)
{
	(void)state;
	/* 64 MiB: RAM from 0, then reservations (ECAM, KVM's pages). */
	struct env *e = env_new(64 * MiB, 1);
	struct fw_cfg *fc = add_fw_cfg(e);
	struct e820 t[16];
	unsigned n = fw_e820(e, t, 16);
	assert_int_equal(n, 3);
	assert_int_equal(t[0].addr, 0);
	assert_int_equal(t[0].len, 64 * MiB);
	assert_int_equal(t[0].type, 1);
	assert_int_equal(t[1].addr, VM_ECAM_BASE);
	assert_int_equal(t[1].len, VM_ECAM_SIZE);
	assert_int_equal(t[1].type, 2);
	assert_int_equal(t[2].addr, 0xfeffc000);
	assert_int_equal(t[2].len, 0x4000);
	assert_int_equal(t[2].type, 2);
	/* The old arch-local table reads as empty, as on QEMU's current machines. */
	assert_int_equal(fw_le(e, 0x8003, 4), 0);

	/* Entries the machine adds, in address order; overlaps refused. */
	assert_int_equal(fw_cfg_add_e820(fc, 0x9fc00, 0x400, 2), -EEXIST);
	assert_int_equal(fw_cfg_add_e820(fc, 0xfffc0000, 0x40000, 2), 0);
	assert_int_equal(fw_cfg_add_e820(fc, 0xd0000000, 0, 2), -EINVAL);
	assert_int_equal(fw_cfg_add_e820(fc, ~0ull - 10, 100, 2), -EINVAL);
	n = fw_e820(e, t, 16);
	assert_int_equal(n, 4);
	assert_int_equal(t[3].addr, 0xfffc0000);
	int err = 0;
	for (uint64_t a = 0xd0000000; !err; a += 0x1000)
		err = fw_cfg_add_e820(fc, a, 0x1000, 2);
	assert_int_equal(err, -ENOSPC);
	env_free(e);

	/* 3 GiB: RAM below 4 GiB ends where the ECAM window starts; the rest is above. */
	e = env_new(3 * GiB, 1);
	add_fw_cfg(e);
	n = fw_e820(e, t, 16);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].len, VM_BELOW_4G_MAX);
	assert_int_equal(t[3].addr, 4 * GiB);
	assert_int_equal(t[3].len, 3 * GiB - VM_BELOW_4G_MAX);
	assert_int_equal(t[3].type, 1);
	assert_int_equal(fw_le(e, 0x0003, 8), 3 * GiB);
	env_free(e);
}

/* ---- isa-debug-exit and isa-debugcon -------------------------------------------- */

static void test_debug_exit(void **state)
{
	(void)state;
	static const struct {
		unsigned size;
		uint64_t value;
		int status;
	} cases[] = {
	    {1, 0x00, 0x01}, {1, 0x10, 0x21},   {1, 0x7f, 0xff},
	    {1, 0x80, 0x01}, {2, 0x1234, 0x69}, {4, 0xdeadbeef, 0xdf},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env *e = env_new(64 * MiB, 1);
		struct debug_exit *d;
		assert_int_equal(debug_exit_new(e->vm, 0x501, 2, &d), 0);
		add(e, "isa-debug-exit", d, debug_exit_free);
		assert_int_equal(in(e, 0x501, 1), 0);
		assert_false(vm_stopping(e->vm));
		/* A 4-byte write reaches the 2-byte device as its low half. */
		bool wide = cases[i].size == 4;
		assert_true(bm_write(e->cpu, e->vm->io, 0x501, cases[i].size, cases[i].value) >= 0);
		assert_true(vm_stopping(e->vm));
		int want =
		    wide ? (int)((((cases[i].value & 0xffff) << 1) | 1) & 0xff) : cases[i].status;
		assert_int_equal(e->vm->stop_status, want);
		assert_true(e->vm->stop_status & 1);
		assert_non_null(strstr(e->vm->stop_reason, "isa-debug-exit"));
		/* Only the first stop counts. */
		out(e, 0x502, 1, 0x42);
		assert_int_equal(e->vm->stop_status, want);
		env_free(e);
	}
	struct env *e = env_new(64 * MiB, 1);
	struct debug_exit *d;
	assert_int_equal(debug_exit_new(e->vm, 0xffff, 2, &d), -EINVAL);
	assert_int_equal(debug_exit_new(e->vm, 0x501, 0, &d), -EINVAL);
	assert_int_equal(debug_exit_new(e->vm, 0xf4, 1, &d), 0);
	add(e, "isa-debug-exit", d, debug_exit_free);
	out(e, 0xf4, 1, 3);
	assert_int_equal(e->vm->stop_status, 7);
	env_free(e);
}

static void test_debugcon(void **state)
{
	struct env *e = *state;
	struct debugcon *d;
	assert_int_equal(debugcon_new(e->vm, 0x402, e->pipe[1], &d), 0);
	add(e, "isa-debugcon", d, debugcon_free);
	const char *msg = "SeaBIOS (version x)\n";
	for (const char *p = msg; *p; p++)
		out(e, 0x402, 1, (uint8_t)*p);
	assert_int_equal(in(e, 0x402, 1), 0xe9);
	/* A 16-bit write leaves its low byte here; the other goes to the next port. */
	assert_int_equal(bm_write(e->cpu, e->vm->io, 0x402, 2, 0x2121), BM_ACCESS_UNASSIGNED);
	char got[64] = {0};
	assert_int_equal(drain(e, (uint8_t *)got, sizeof(got) - 1), strlen(msg) + 1);
	assert_memory_equal(got, msg, strlen(msg));
	assert_int_equal(got[strlen(msg)], '!');

	struct debugcon *quiet;
	assert_int_equal(debugcon_new(e->vm, 0xe9, -1, &quiet), 0);
	add(e, "isa-debugcon", quiet, debugcon_free);
	out(e, 0xe9, 1, 'x');
	assert_int_equal(in(e, 0xe9, 1), 0xe9);
	assert_int_equal(drain(e, NULL, 0), 0);
}

/* ---- pci-testdev ---------------------------------------------------------------- */

static void cfg_write(struct env *e, unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
	out(e, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	out(e, 0xcfc + (reg & 3), size, v);
}

static uint32_t cfg_read(struct env *e, unsigned dev, unsigned reg, unsigned size)
{
	out(e, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	return (uint32_t)in(e, 0xcfc + (reg & 3), size);
}

static struct pci_testdev *add_testdev(struct env *e, unsigned slot)
{
	struct pci_testdev *d;
	assert_int_equal(pci_testdev_new(e->vm, slot, &d), 0);
	add(e, "pci-testdev", d, pci_testdev_free);
	return d;
}

/* Sizes a BAR as firmware does and returns the mask read back. */
static uint32_t bar_mask(struct env *e, unsigned dev, unsigned bar)
{
	unsigned reg = 0x10 + 4 * bar;
	uint32_t old = cfg_read(e, dev, reg, 4);
	cfg_write(e, dev, reg, 4, 0xffffffff);
	uint32_t mask = cfg_read(e, dev, reg, 4);
	cfg_write(e, dev, reg, 4, old);
	return mask;
}

static void map_testdev(struct env *e, unsigned dev, uint32_t mem, uint16_t io)
{
	cfg_write(e, dev, 0x10, 4, mem);
	cfg_write(e, dev, 0x14, 4, io);
	cfg_write(e, dev, 0x04, 2, 0x0003);
}

/* Through the memory BAR (io false) or the I/O BAR. */
static uint64_t bar_rd(struct env *e, bool io, uint64_t addr, unsigned size)
{
	return io ? in(e, addr, size) : rdmem(e, addr, size);
}

static void bar_wr(struct env *e, bool io, uint64_t addr, unsigned size, uint64_t v)
{
	if (io)
		out(e, addr, size, v);
	else
		wrmem(e, addr, size, v);
}

static void read_name(struct env *e, bool io, uint64_t base, char *name, size_t max)
{
	size_t i = 0;
	for (; i + 1 < max; i++) {
		name[i] = (char)bar_rd(e, io, base + 16 + i, 1);
		if (!name[i])
			break;
	}
	name[i] = 0;
}

static void test_testdev_enumerate_and_size(void **state)
{
	struct env *e = *state;
	add_testdev(e, 5);
	/* Enumeration as firmware does it: only slot 5 answers. */
	unsigned found = 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = cfg_read(e, dev, 0, 4);
		if (id == 0xffffffff)
			continue;
		found++;
		assert_int_equal(dev, 5);
		assert_int_equal(id, 0x00051b36);
	}
	assert_int_equal(found, 1);
	assert_int_equal(cfg_read(e, 5, 0x08, 4), 0x00ff0000); /* class 00ff, revision 0 */
	assert_int_equal(cfg_read(e, 5, 0x0e, 1), 0x00);
	assert_int_equal(cfg_read(e, 5, 0x2c, 4), 0x11001af4);
	assert_int_equal(cfg_read(e, 5, 0x3d, 1), 0x00); /* no INTx pin */

	assert_int_equal(bar_mask(e, 5, 0), 0xfffff000); /* 4 KiB, 32-bit memory */
	assert_int_equal(bar_mask(e, 5, 1), 0xffffff01); /* 256 ports */
	for (unsigned bar = 2; bar < 6; bar++)
		assert_int_equal(bar_mask(e, 5, bar), 0);

	/* Unmapped: nothing answers at the addresses it will take. */
	assert_int_equal(rdmem(e, 0xc0000000, 4), 0xffffffff);
	map_testdev(e, 5, 0xc0000000, 0xc000);
	assert_int_equal(rdmem(e, 0xc0000000, 4), 0);
	assert_int_equal(in(e, 0xc000, 4), 0);
	/* Decoding off unmaps both. */
	cfg_write(e, 5, 0x04, 2, 0);
	assert_int_equal(rdmem(e, 0xc0000000, 4), 0xffffffff);
	uint64_t v;
	assert_int_equal(bm_read(e->cpu, e->vm->io, 0xc000, 1, &v), BM_ACCESS_UNASSIGNED);

	struct pci_testdev *d;
	assert_int_equal(pci_testdev_new(e->vm, 5, &d), -EEXIST);
	assert_int_equal(pci_testdev_new(e->vm, 32, &d), -EINVAL);
}

/* The protocol as kvm-unit-tests runs it on every test of a BAR. */
static void run_bar_tests(struct env *e, bool io, uint64_t base)
{
	static const char *const kinds[3] = {"no-eventfd", "wildcard-eventfd", "datamatch-eventfd"};
	for (unsigned n = 0; n < 3; n++) {
		unsigned number = io * 3 + n;
		bar_wr(e, io, base, 1, n);
		assert_int_equal(bar_rd(e, io, base + 12, 4), 0); /* count */
		assert_int_equal(bar_rd(e, io, base + 0, 1), number);
		assert_int_equal(bar_rd(e, io, base + 1, 1), 1); /* width */
		uint32_t off = (uint32_t)bar_rd(e, io, base + 4, 4);
		assert_int_equal(off, (io ? 128 : 2048) + number);
		uint32_t data = (uint32_t)bar_rd(e, io, base + 8, 4);
		assert_int_equal(data, n == 1 ? 0xce : 0xfa);
		char name[40], want[40];
		read_name(e, io, base, name, sizeof(name));
		snprintf(want, sizeof(want), "%s-%s", io ? "portio" : "mmio", kinds[n]);
		assert_string_equal(name, want);

		for (unsigned i = 0; i < 16; i++)
			bar_wr(e, io, base + off, 1, data);
		assert_int_equal(bar_rd(e, io, base + 12, 4), 16);
		/* Other offsets do not count; wrong data counts only for the wildcard. */
		bar_wr(e, io, base + off + 1, 1, data);
		bar_wr(e, io, base + off - 1, 1, data);
		bar_wr(e, io, base + off, 1, 0x11);
		assert_int_equal(bar_rd(e, io, base + 12, 4), n == 1 ? 17 : 16);
		/* Restarting the test clears its count. */
		bar_wr(e, io, base, 1, n);
		assert_int_equal(bar_rd(e, io, base + 12, 4), 0);
	}
	/* Past the last test: no test runs, everything reads 0, writes count nothing. */
	bar_wr(e, io, base, 1, 3);
	for (unsigned off = 0; off < 32; off += 4)
		assert_int_equal(bar_rd(e, io, base + off, 4), 0);
	/* The last byte of the BAR answers too (0). */
	assert_int_equal(bar_rd(e, io, base + (io ? 255 : 4095), 1), 0);
}

static void test_testdev_protocol(void **state)
{
	struct env *e = *state;
	add_testdev(e, 3);
	map_testdev(e, 3, 0xc0001000, 0xc100);
	run_bar_tests(e, false, 0xc0001000);
	run_bar_tests(e, true, 0xc100);

	/* A test number written through the I/O BAR selects an I/O test: the header read
	 * through either BAR tells which one took the write. */
	out(e, 0xc100, 1, 0);
	assert_int_equal(rdmem(e, 0xc0001000, 1), 3);
	wrmem(e, 0xc0001000, 1, 0);
	assert_int_equal(in(e, 0xc100, 1), 0);
	/* Wide accesses are carried out byte by byte, as on QEMU. */
	wrmem(e, 0xc0001000, 4, 0x01);
	assert_int_equal(rdmem(e, 0xc0001000, 8), 0x0000080100000101ull);
}

static void test_testdev_two_instances(void **state)
{
	struct env *e = *state;
	add_testdev(e, 4);
	add_testdev(e, 6);
	map_testdev(e, 4, 0xc0000000, 0xc000);
	map_testdev(e, 6, 0xc0010000, 0xc200);
	/* Which device took a write: the one whose header then reads back a test. */
	wrmem(e, 0xc0010000, 1, 2);
	assert_int_equal(rdmem(e, 0xc0000000, 1), 0);
	assert_int_equal(rdmem(e, 0xc0000004, 4), 0);
	assert_int_equal(rdmem(e, 0xc0010004, 4), 2050);
	assert_int_equal(in(e, 0xc204, 4), 2050);

	/* BAR over BAR: the newest placement answers; moving it away uncovers the other. */
	wrmem(e, 0xc0000000, 1, 1);
	map_testdev(e, 6, 0xc0000000, 0xc200);
	assert_int_equal(rdmem(e, 0xc0000004, 4), 2050);
	map_testdev(e, 6, 0xc0010000, 0xc200);
	assert_int_equal(rdmem(e, 0xc0000004, 4), 2049);
}

/* ---- hostile pass --------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_hostile_writes(void **state)
{
	struct env *e = *state;
	assert_int_equal(fcntl(e->pipe[1], F_SETFL, O_NONBLOCK), 0);
	add_uart(e, e->pipe[1]);
	add_rtc(e);
	struct fw_cfg *fc = add_fw_cfg(e);
	assert_int_equal(fw_cfg_add_file(fc, "opt/x", "xyz", 3), 0);
	struct debugcon *dc;
	assert_int_equal(debugcon_new(e->vm, 0x402, e->pipe[1], &dc), 0);
	add(e, "isa-debugcon", dc, debugcon_free);
	struct debug_exit *dx;
	assert_int_equal(debug_exit_new(e->vm, 0x501, 2, &dx), 0);
	add(e, "isa-debug-exit", dx, debug_exit_free);
	add_testdev(e, 7);
	map_testdev(e, 7, 0xc0000000, 0xc000);

	static const struct {
		uint16_t base, len;
	} ports[] = {{0x3f8, 8}, {0x70, 2}, {0x510, 2}, {0x402, 1}, {0xc000, 256}};
	/* The run is already ending: nothing later may change how. */
	out(e, 0x501, 1, 0x2a);
	for (unsigned round = 0; round < 20000; round++) {
		uint64_t r = rng();
		unsigned size = 1u << (r & 3);
		uint64_t value = rng();
		uint64_t v;
		switch (r >> 2 & 7) {
		case 0:
		case 1:
		case 2: {
			unsigned p = (unsigned)(r >> 8) % (sizeof(ports) / sizeof(ports[0]));
			uint64_t port = ports[p].base + (r >> 16) % ports[p].len;
			if (size == 8)
				size = 4;
			if (r >> 40 & 1)
				assert_true(bm_write(e->cpu, e->vm->io, port, size, value) >= 0);
			else
				assert_true(bm_read(e->cpu, e->vm->io, port, size, &v) >= 0);
			break;
		}
		case 3: {
			/* The configuration space, BARs and command included, any size at any
			 * offset of the data port. */
			unsigned reg = (unsigned)(r >> 8) & 0xff;
			assert_true(bm_write(e->cpu, e->vm->io, 0xcf8, 4,
			                     0x80000000u | 7 << 11 | (reg & 0xfc)) >= 0);
			assert_true(bm_write(e->cpu, e->vm->io, 0xcfc + (reg & 3),
			                     size > 4 ? 4 : size, value) >= 0);
			break;
		}
		case 4:
			assert_true(bm_write(e->cpu, e->vm->mem, 0xc0000000 + (r >> 8) % 4096, size,
			                     value) >= 0);
			assert_true(bm_read(e->cpu, e->vm->mem, 0xc0000000 + (r >> 20) % 4096, size,
			                    &v) >= 0);
			break;
		case 5:
			/* fw_cfg: any selector, then reads past whatever it holds. */
			out(e, FW_SEL, 2, value & 0xffff);
			for (unsigned i = 0; i < (r >> 8) % 64; i++)
				in(e, FW_DATA, 1);
			break;
		case 6:
			assert_true(
			    bm_write(e->cpu, e->vm->io, 0x501, size > 4 ? 4 : size, value) >= 0);
			break;
		default:
			drain(e, NULL, 0);
			break;
		}
	}
	drain(e, NULL, 0);
	assert_int_equal(e->vm->stop_status, (0x2a << 1) | 1);

	/* Everything still answers once put back in order; first the test device's BARs,
	 * which may have landed over the other ports. */
	assert_int_equal(cfg_read(e, 7, 0, 4), 0x00051b36);
	cfg_write(e, 7, 0x04, 2, 0);
	for (unsigned bar = 2; bar < 6; bar++)
		cfg_write(e, 7, 0x10 + 4 * bar, 4, 0);
	map_testdev(e, 7, 0xc0000000, 0xc000);
	assert_int_equal(bar_mask(e, 7, 0), 0xfffff000);
	run_bar_tests(e, false, 0xc0000000);
	run_bar_tests(e, true, 0xc000);

	out(e, COM1 + 3, 1, 0x03);
	out(e, COM1 + 4, 1, 0x08);
	out(e, COM1 + 2, 1, 0x06); /* both FIFOs flushed, FIFOs off */
	out(e, COM1 + 1, 1, 0x00);
	in(e, COM1 + 5, 1);
	assert_int_equal(in(e, COM1 + 5, 1), 0x60);
	out(e, COM1, 1, 'S');
	out(e, 0x402, 1, 'D');
	uint8_t got[4];
	assert_int_equal(drain(e, got, sizeof(got)), 2);
	assert_memory_equal(got, "SD", 2);
	assert_false(irq4(e));

	cmos_write(e, 0x0b, 0x02);
	cmos_write(e, 0x50, 0xa5);
	assert_int_equal(cmos(e, 0x50), 0xa5);
	assert_int_equal(cmos(e, 0x0d), 0x80);
	clock_bcd_24h(e);

	char sig[5] = {0};
	fw_read(e, 0, sig, 4);
	assert_string_equal(sig, "QEMU");
	struct fw_file_entry f[8];
	unsigned n = fw_dir(e, f, 8);
	const struct fw_file_entry *x = fw_find(f, n, "opt/x");
	assert_non_null(x);
	fw_read(e, x->select, sig, 3);
	assert_memory_equal(sig, "xyz", 3);

	assert_int_equal(in(e, 0x402, 1), 0xe9);
	assert_int_equal(in(e, 0x501, 1), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_uart_output_is_byte_exact),
	    T(test_uart_registers),
	    T(test_uart_loopback),
	    T(test_uart_thre_interrupt),
	    T(test_uart_output_errors),
	    cmocka_unit_test(test_cmos_sizes),
	    T(test_cmos_fixed_bytes),
	    T(test_rtc_time),
	    T(test_rtc_set_time),
	    T(test_fw_cfg_items),
	    T(test_fw_cfg_port_sizes),
	    T(test_fw_cfg_files),
	    cmocka_unit_test(test_fw_cfg_e820),
	    cmocka_unit_test(test_debug_exit),
	    T(test_debugcon),
	    T(test_testdev_enumerate_and_size),
	    T(test_testdev_protocol),
	    T(test_testdev_two_instances),
	    T(test_hostile_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
