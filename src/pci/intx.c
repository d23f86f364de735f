/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * INTx: a function's line level, the status register's interrupt bit that mirrors it, the
 * command register's INTx disable that keeps it from the host, and the swizzle that turns
 * (device, pin) into the pin at the host bridge through each bridge on the way up.
 */
#include "pci_internal.h"

/* Each bridge level rotates the pin by the device number on its secondary bus. */
static void host_pin(const bm_pci_func *f, unsigned *slot, unsigned *pin)
{
	unsigned p = f->cfg[PCI_INTERRUPT_PIN];
	const bm_pci_func *d = f;
	while (d->bus->bridge) {
		p = (p - 1 + d->dev) % 4 + 1;
		d = d->bus->bridge;
	}
	*slot = d->dev;
	*pin = p;
}

void pci_intx_update(bm_pci_func *f)
{
	uint8_t pin = f->cfg[PCI_INTERRUPT_PIN];
	if (pin < 1 || pin > 4)
		return;
	uint8_t st = f->cfg[PCI_STATUS];
	f->cfg[PCI_STATUS] = f->intx_level ? (uint8_t)(st | PCI_STATUS_INTERRUPT)
	                                   : (uint8_t)(st & ~PCI_STATUS_INTERRUPT);
	pci_cfg_mark(f, PCI_STATUS, 1);
	bool out = f->intx_level && !(pci_cfg_get(f, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
	if (out == f->intx_out)
		return;
	f->intx_out = out;
	const struct bm_pci_host_config *c = &f->host->cfg;
	if (!c->ops || !c->ops->intx)
		return;
	unsigned slot, p;
	host_pin(f, &slot, &p);
	c->ops->intx(c->opaque, f, slot, p, out);
}

int bm_pci_intx_set(bm_pci_func *f, bool level)
{
	if (!f)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	uint8_t pin = f->cfg[PCI_INTERRUPT_PIN];
	bool has_pin = pin >= 1 && pin <= 4;
	if (has_pin) {
		f->intx_level = level;
		pci_intx_update(f);
	}
	err = pci_commit(f->host);
	return has_pin ? err : -EINVAL;
}
