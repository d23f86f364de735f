/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The PIIX3 ISA bridge (00:01.0, 8086:7000): it routes the four PCI interrupt lines
 * (PIRQA-D) to ISA IRQs through its registers 0x60-0x63, and owns two legacy ports:
 * 0x61 (PIT channel 2 gate and output, which firmware uses to calibrate its timers) and
 * 0x92 (fast A20 and reset).
 */
#include "devices.h"

#include <busmap/pci_regs.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PIRQ_REG      0x60
#define PIRQ_DISABLED 0x80
#define NPIRQ         4
#define NIRQ          16
#define MAX_SOURCES   64

struct intx_source {
	bm_pci_func *src;
	unsigned pirq;
};

struct piix3 {
	struct vm *vm;
	bm_pci_func *func;
	bm_region *r61, *r92;
	pthread_mutex_t lock; /* sources, levels, port state */
	struct intx_source asserted[MAX_SOURCES];
	unsigned nasserted;
	bool irq_level[NIRQ];
	uint8_t port61;
	uint8_t port92;
	bool refresh; /* bit 4 of port 0x61 toggles on every read, as the refresh clock does */
};

/* The ISA IRQ a PIRQ register routes to, or -1. IRQs 0-2, 8 and 13 are never valid. */
static int pirq_irq(struct piix3 *d, unsigned pirq)
{
	unsigned v = bm_pci_func_cfg_get(d->func, PIRQ_REG + pirq, 1);
	unsigned irq = v & 0xf;
	if (v & PIRQ_DISABLED || irq < 3 || irq == 8 || irq == 13)
		return -1;
	return (int)irq;
}

/* Recomputes every ISA IRQ from the asserted sources; called with the lock held. */
static void update_irqs(struct piix3 *d)
{
	bool level[NIRQ] = {false};
	for (unsigned i = 0; i < d->nasserted; i++) {
		int irq = pirq_irq(d, d->asserted[i].pirq);
		if (irq >= 0)
			level[irq] = true;
	}
	for (unsigned irq = 0; irq < NIRQ; irq++) {
		if (level[irq] == d->irq_level[irq])
			continue;
		d->irq_level[irq] = level[irq];
		vm_irq_line(d->vm, irq, level[irq]);
	}
}

/* Slot s's pin p (1..4) reaches PIRQ (p - 1 + s - 1) mod 4, as on QEMU's pc. */
static void intx_route(void *arg, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	struct piix3 *d = arg;
	unsigned pirq = (pin - 1 + slot + NPIRQ - 1) % NPIRQ;
	pthread_mutex_lock(&d->lock);
	unsigned i = 0;
	while (i < d->nasserted && d->asserted[i].src != src)
		i++;
	if (level && i == d->nasserted && i < MAX_SOURCES)
		d->asserted[d->nasserted++] = (struct intx_source){src, pirq};
	else if (!level && i < d->nasserted)
		d->asserted[i] = d->asserted[--d->nasserted];
	update_irqs(d);
	pthread_mutex_unlock(&d->lock);
}

static void cfg_write(void *opaque, bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	(void)f;
	(void)value;
	struct piix3 *d = opaque;
	if (reg < PIRQ_REG + NPIRQ && reg + size > PIRQ_REG) {
		pthread_mutex_lock(&d->lock);
		update_irqs(d);
		pthread_mutex_unlock(&d->lock);
	}
}

static const struct bm_pci_func_ops piix3_ops = {.cfg_write = cfg_write};

/* ---- port 0x61 ---- */

static int port61_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)off;
	(void)size;
	struct piix3 *d = opaque;
	bool out = false;
	const struct hv_ops *hv = d->vm->hv;
	pthread_mutex_lock(&d->lock);
	d->refresh = !d->refresh;
	if (!hv || !hv->pit2_out || hv->pit2_out(d->vm->hv_ctx, &out) < 0)
		out = d->refresh; /* no PIT to ask: a toggling output keeps polling loops finite */
	*value = (d->port61 & 0x0f) | (d->refresh ? 0x10 : 0) | (out ? 0x20 : 0);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int port61_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)off;
	(void)size;
	struct piix3 *d = opaque;
	pthread_mutex_lock(&d->lock);
	d->port61 = value & 0x0f; /* gate, speaker, NMI masks: kept, no sound */
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static const struct bm_region_ops port61_ops = {
    .read = port61_read,
    .write = port61_write,
    .impl_sizes = BM_ACCESS_1, /* a wider access reaches the next ports byte by byte */
};

/* ---- port 0x92 ---- */

static int port92_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)off;
	(void)size;
	struct piix3 *d = opaque;
	pthread_mutex_lock(&d->lock);
	*value = d->port92 & ~1u;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int port92_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)off;
	(void)size;
	struct piix3 *d = opaque;
	pthread_mutex_lock(&d->lock);
	bool reset = (value & 1) && !(d->port92 & 1);
	/* A20 (bit 1) is remembered only: KVM does not mask address line 20. */
	d->port92 = value & 0x03;
	pthread_mutex_unlock(&d->lock);
	if (reset)
		vm_request_stop(d->vm, VM_STATUS_OK, "guest requested a reset through port 0x92");
	return 0;
}

static const struct bm_region_ops port92_ops = {
    .read = port92_read,
    .write = port92_write,
    .impl_sizes = BM_ACCESS_1, /* a wider access reaches the next ports byte by byte */
};

static int make_func(struct piix3 *d)
{
	struct bm_pci_func_desc desc = {
	    .vendor_id = 0x8086,
	    .device_id = 0x7000,
	    .class_code = PCI_CLASS_CODE_ISA_BRIDGE,
	    .multifunction = true, /* as QEMU's PIIX3, whose IDE and USB are functions 1-2 */
	    .subsystem_vendor_id = 0x1af4,
	    .subsystem_id = 0x1100,
	    .ops = &piix3_ops,
	    .opaque = d,
	};
	int err = bm_pci_func_new(bm_pci_host_root_bus(d->vm->pci), 1, 0, &desc, &d->func);
	if (err)
		return err;
	bm_pci_func_cfg_set(d->func, PIRQ_REG, 4, 0x80808080);
	bm_pci_func_cfg_set_masks(d->func, PIRQ_REG, 4, 0x8f8f8f8f, 0);
	return 0;
}

int piix3_new(struct vm *vm, struct piix3 **out)
{
	if (!vm || !out || vm->intx_route)
		return -EINVAL;
	struct piix3 *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	pthread_mutex_init(&d->lock, NULL);
	int err = make_func(d);
	if (!err)
		err = vm_add_io_region(vm, vm->io, "port61", 0x61, 1, &port61_ops, d, &d->r61);
	if (!err)
		err = vm_add_io_region(vm, vm->io, "port92", 0x92, 1, &port92_ops, d, &d->r92);
	if (err) {
		piix3_free(d);
		return err;
	}
	vm->intx_arg = d;
	vm->intx_route = intx_route;
	*out = d;
	return 0;
}

void piix3_free(void *p)
{
	struct piix3 *d = p;
	if (!d)
		return;
	if (d->vm->intx_arg == d) {
		d->vm->intx_route = NULL;
		d->vm->intx_arg = NULL;
	}
	bm_pci_func_free(d->func);
	bm_region_destroy(d->r61);
	bm_region_destroy(d->r92);
	bm_synchronize(d->vm->sys);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
