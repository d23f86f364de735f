/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * 16550A UART on the ISA bus: bytes the guest transmits go straight to a file descriptor,
 * nothing arrives from outside; registers, interrupts and loopback behave as drivers probe.
 */
#include "devices.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum uart_reg { REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RDI  0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI  0x08

#define IIR_MSI    0x00
#define IIR_NO_INT 0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c
#define IIR_FIFOS  0xc0

#define FCR_FE    0x01
#define FCR_RFR   0x02
#define FCR_XFR   0x04
#define FCR_STICK 0xc9 /* enable, DMA mode and trigger level keep their value */

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_BI     0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS 0x1e

#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80
#define MSR_DELTAS 0x0f

#define RX_FIFO_SIZE 16

struct uart {
	struct vm *vm;
	bm_region *region;
	unsigned irq;
	int out_fd;
	pthread_mutex_t lock;

	uint16_t divisor;
	uint8_t ier, iir, fcr, lcr, mcr, lsr, msr, scr;
	bool thr_pending; /* the "transmitter empty" interrupt, until IIR is read */
	bool line;        /* level last given to the interrupt controller */
	unsigned rx_trigger;

	/* Only loopback fills the receiver: there is no input. */
	uint8_t rx[RX_FIFO_SIZE];
	unsigned rx_head, rx_count;

	bool write_failed; /* already reported, so a broken fd does not flood the log */
};

static bool fifo_mode(const struct uart *u)
{
	return u->fcr & FCR_FE;
}

/* Interrupt priorities of the 16550: line status, received data, transmitter, modem. */
static void update_irq(struct uart *u)
{
	uint8_t id = IIR_NO_INT;
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_ERRORS))
		id = IIR_RLSI;
	else if ((u->ier & IER_RDI) && (u->lsr & LSR_DR))
		/* Without timers the character timeout is taken as already elapsed. */
		id = fifo_mode(u) && u->rx_count < u->rx_trigger ? IIR_CTI : IIR_RDI;
	else if ((u->ier & IER_THRI) && u->thr_pending)
		id = IIR_THRI;
	else if ((u->ier & IER_MSI) && (u->msr & MSR_DELTAS))
		id = IIR_MSI;
	u->iir = id;

	/* On a PC, OUT2 gates the UART's interrupt onto the bus, and loopback forces OUT2
	 * inactive. */
	bool line = id != IIR_NO_INT && (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
	if (line != u->line) {
		u->line = line;
		vm_irq_line(u->vm, u->irq, line);
	}
}

static void rx_push(struct uart *u, uint8_t byte)
{
	if (!fifo_mode(u)) {
		if (u->lsr & LSR_DR)
			u->lsr |= LSR_OE;
		u->rx[0] = byte;
		u->rx_head = 0;
		u->rx_count = 1;
	} else if (u->rx_count == RX_FIFO_SIZE) {
		u->lsr |= LSR_OE; /* an overrun keeps what the FIFO holds */
		return;
	} else {
		u->rx[(u->rx_head + u->rx_count) % RX_FIFO_SIZE] = byte;
		u->rx_count++;
	}
	u->lsr |= LSR_DR;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t byte = 0;
	if (!fifo_mode(u)) {
		byte = u->rx[0]; /* the receiver buffer keeps its last byte */
		u->rx_count = 0;
	} else if (u->rx_count) {
		byte = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % RX_FIFO_SIZE;
		u->rx_count--;
	}
	if (!u->rx_count)
		u->lsr &= ~(LSR_DR | LSR_BI);
	return byte;
}

static void rx_flush(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= ~(LSR_DR | LSR_BI);
}

static void output(struct uart *u, uint8_t byte)
{
	int err = vmm_put_byte(u->out_fd, byte);
	if (err && !u->write_failed) {
		u->write_failed = true;
		vm_log(u->vm, "serial output failed (%s); dropping what cannot be written",
		       strerror(-err));
	}
}

/* The byte leaves at once, so the holding register is empty again before the guest can
 * look: the THRE interrupt drops and comes back, which is an edge for the PIC. */
static void transmit(struct uart *u, uint8_t byte)
{
	u->thr_pending = false;
	update_irq(u);
	if (u->mcr & MCR_LOOP)
		rx_push(u, byte);
	else
		output(u, byte);
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thr_pending = true;
	update_irq(u);
}

static void write_fcr(struct uart *u, uint8_t val)
{
	if ((val ^ u->fcr) & FCR_FE)
		val |= FCR_RFR | FCR_XFR;
	if (val & FCR_RFR)
		rx_flush(u);
	if (val & FCR_XFR) {
		u->lsr |= LSR_THRE;
		u->thr_pending = true;
	}
	u->fcr = val & FCR_STICK;
	static const unsigned trigger[4] = {1, 4, 8, 14};
	u->rx_trigger = trigger[u->fcr >> 6];
	update_irq(u);
}

static int uart_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	struct uart *u = opaque;
	uint8_t ret = 0;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB) {
			ret = (uint8_t)u->divisor;
		} else {
			ret = rx_pop(u);
			update_irq(u);
		}
		break;
	case REG_IER:
		ret = u->lcr & LCR_DLAB ? (uint8_t)(u->divisor >> 8) : u->ier;
		break;
	case REG_IIR_FCR:
		ret = u->iir | (fifo_mode(u) ? IIR_FIFOS : 0);
		if (u->iir == IIR_THRI) {
			u->thr_pending = false;
			update_irq(u);
		}
		break;
	case REG_LCR:
		ret = u->lcr;
		break;
	case REG_MCR:
		ret = u->mcr;
		break;
	case REG_LSR:
		ret = u->lsr;
		if (u->lsr & (LSR_BI | LSR_OE)) {
			u->lsr &= ~(LSR_BI | LSR_OE);
			update_irq(u);
		}
		break;
	case REG_MSR:
		if (u->mcr & MCR_LOOP) {
			/* The modem outputs come back on the inputs. */
			ret = (u->mcr & MCR_DTR ? MSR_DSR : 0) | (u->mcr & MCR_RTS ? MSR_CTS : 0) |
			      (u->mcr & MCR_OUT1 ? MSR_RI : 0) | (u->mcr & MCR_OUT2 ? MSR_DCD : 0);
		} else {
			ret = u->msr;
		}
		break;
	case REG_SCR:
		ret = u->scr;
		break;
	}
	pthread_mutex_unlock(&u->lock);
	*value = ret;
	return 0;
}

static int uart_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	struct uart *u = opaque;
	uint8_t val = (uint8_t)value;
	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB)
			u->divisor = (uint16_t)((u->divisor & 0xff00) | val);
		else
			transmit(u, val);
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->divisor = (uint16_t)((u->divisor & 0x00ff) | val << 8);
		} else {
			uint8_t changed = (u->ier ^ val) & 0x0f;
			u->ier = val & 0x0f;
			/* Enabling THRI with the holding register empty raises it again even
			 * after an IIR read cleared it (drivers rely on this). */
			if (changed & IER_THRI)
				u->thr_pending = (u->ier & IER_THRI) && (u->lsr & LSR_THRE);
			update_irq(u);
		}
		break;
	case REG_IIR_FCR:
		write_fcr(u, val);
		break;
	case REG_LCR:
		u->lcr = val;
		break;
	case REG_MCR:
		u->mcr = val & MCR_MASK;
		update_irq(u);
		break;
	case REG_SCR:
		u->scr = val;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static const struct bm_region_ops uart_ops = {
    .read = uart_read,
    .write = uart_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1, /* a wider access is one register after the other */
};

int uart_new(struct vm *vm, uint16_t base, unsigned irq, int out_fd, struct uart **out)
{
	if (!vm || !out || irq >= 16 || out_fd < -1 || base > 0x10000 - 8)
		return -EINVAL;
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->vm = vm;
	u->irq = irq;
	u->out_fd = out_fd;
	pthread_mutex_init(&u->lock, NULL);
	/* QEMU's reset state: 9600 baud, OUT2 on, the modem lines of a connected peer. */
	u->divisor = 0x0c;
	u->iir = IIR_NO_INT;
	u->mcr = MCR_OUT2;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	u->rx_trigger = 1;

	int err = vm_add_io_region(vm, vm->io, "serial", base, 8, &uart_ops, u, &u->region);
	if (err) {
		pthread_mutex_destroy(&u->lock);
		free(u);
		return err;
	}
	*out = u;
	return 0;
}

void uart_free(void *dev)
{
	struct uart *u = dev;
	if (!u)
		return;
	bm_region_destroy(u->region);
	bm_synchronize(u->vm->sys);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
