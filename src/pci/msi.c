/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MSI: the capability's registers and the delivery of a vector. A masked vector is held in
 * the pending register and sent when the guest unmasks it, as the specification requires.
 * Which of MSI-X, MSI or INTx a device uses is decided here, from the enable bits.
 */
#include "pci_internal.h"

static unsigned reg_data(const struct pci_msi *m)
{
	return m->off + (m->addr64 ? 0xc : 0x8);
}

static unsigned reg_mask(const struct pci_msi *m)
{
	return m->off + (m->addr64 ? 0x10 : 0xc);
}

static unsigned reg_pending(const struct pci_msi *m)
{
	return reg_mask(m) + 4;
}

static unsigned cap_len(const struct pci_msi *m)
{
	return (m->addr64 ? 0x10 : 0xc) + (m->maskable ? 8 : 0);
}

static uint32_t vector_bits(unsigned n)
{
	return n >= 32 ? UINT32_MAX : (1u << n) - 1;
}

static void put(uint8_t *b, unsigned at, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		b[at + i] = (uint8_t)(v >> (8 * i));
}

int bm_pci_func_add_msi(bm_pci_func *f, unsigned nvectors, bool addr64, bool maskable,
                        unsigned *offset)
{
	if (!f || nvectors == 0 || nvectors > 32 || (nvectors & (nvectors - 1)))
		return -EINVAL;
	struct pci_msi m = {.nvec = nvectors, .addr64 = addr64, .maskable = maskable};
	uint8_t data[0x18] = {0}, wmask[0x18] = {0};
	unsigned base_data = addr64 ? 0xc : 0x8, base_mask = addr64 ? 0x10 : 0xc;
	put(data, PCI_MSI_FLAGS, 2,
	    pci_log2u(nvectors) << MSI_CTRL_MMC_SHIFT | (addr64 ? PCI_MSI_FLAGS_64BIT : 0) |
	        (maskable ? PCI_MSI_FLAGS_MASKBIT : 0));
	put(wmask, PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | 0x7u << MSI_CTRL_MME_SHIFT);
	put(wmask, PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
	if (addr64)
		put(wmask, 8, 4, 0xffffffff);
	put(wmask, base_data, 2, 0xffff);
	if (maskable)
		put(wmask, base_mask, 4, vector_bits(nvectors));
	struct bm_pci_cap_desc c = {
	    .id = PCI_CAP_ID_MSI, .data = data, .len = cap_len(&m), .wmask = wmask};
	int err = pci_begin(f->host);
	if (err)
		return err;
	if (f->msi.off)
		err = -EEXIST;
	else
		err = pci_cap_add(f, &c, &m.off);
	if (!err) {
		f->msi = m;
		if (offset)
			*offset = m.off;
	}
	int cerr = pci_commit(f->host);
	return err ? err : cerr;
}

void pci_msi_deliver(bm_pci_func *f, uint64_t addr, uint32_t data)
{
	const struct bm_pci_host_config *c = &f->host->cfg;
	if (c->ops && c->ops->msi)
		c->ops->msi(c->opaque, f, addr, data);
}

bool pci_msi_enabled(const bm_pci_func *f)
{
	return f->msi.off && (pci_cfg_get(f, f->msi.off + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE);
}

/* Vectors the guest allocated: the smaller of what it enabled and what we offer. */
static unsigned allocated(const bm_pci_func *f)
{
	uint32_t ctrl = pci_cfg_get(f, f->msi.off + PCI_MSI_FLAGS, 2);
	unsigned mme = (ctrl >> MSI_CTRL_MME_SHIFT) & 7, mmc = pci_log2u(f->msi.nvec);
	return 1u << (mme < mmc ? mme : mmc);
}

static void send(bm_pci_func *f, unsigned v)
{
	const struct pci_msi *m = &f->msi;
	uint64_t addr = pci_cfg_get(f, m->off + PCI_MSI_ADDRESS_LO, 4);
	if (m->addr64)
		addr |= (uint64_t)pci_cfg_get(f, m->off + 8, 4) << 32;
	uint32_t data = pci_cfg_get(f, reg_data(m), 2);
	data = (data & ~(allocated(f) - 1)) | v;
	pci_msi_deliver(f, addr, data);
}

int pci_msi_notify(bm_pci_func *f, unsigned v)
{
	const struct pci_msi *m = &f->msi;
	if (!m->off || v >= m->nvec)
		return -EINVAL;
	if (!pci_msi_enabled(f))
		return -ENOTCONN;
	if (v >= allocated(f))
		return -EINVAL;
	if (m->maskable && (pci_cfg_get(f, reg_mask(m), 4) >> v & 1)) {
		pci_cfg_set(f, reg_pending(m), 4, pci_cfg_get(f, reg_pending(m), 4) | 1u << v);
		return 1;
	}
	send(f, v);
	return 0;
}

/* Unmasking (or enabling) sends what was held pending. */
void pci_msi_after_write(bm_pci_func *f, unsigned reg, unsigned size)
{
	const struct pci_msi *m = &f->msi;
	if (!m->off || !m->maskable || !pci_touches(reg, size, m->off, cap_len(m)))
		return;
	if (!pci_msi_enabled(f))
		return;
	uint32_t pending = pci_cfg_get(f, reg_pending(m), 4);
	uint32_t ready = pending & ~pci_cfg_get(f, reg_mask(m), 4) & vector_bits(allocated(f));
	if (!ready)
		return;
	pci_cfg_set(f, reg_pending(m), 4, pending & ~ready);
	for (unsigned v = 0; v < 32; v++)
		if (ready >> v & 1)
			send(f, v);
}

int bm_pci_msi_notify(bm_pci_func *f, unsigned vector)
{
	if (!f)
		return -EINVAL;
	int err = pci_begin(f->host);
	if (err)
		return err;
	int ret;
	if (pci_msix_enabled(f))
		ret = pci_msix_notify(f, vector);
	else if (pci_msi_enabled(f))
		ret = pci_msi_notify(f, vector);
	else if ((f->msix.off && vector < f->msix.nvec) || (f->msi.off && vector < f->msi.nvec))
		ret = -ENOTCONN;
	else
		ret = f->msix.off || f->msi.off ? -EINVAL : -ENOTCONN;
	err = pci_commit(f->host);
	return err ? err : ret;
}
