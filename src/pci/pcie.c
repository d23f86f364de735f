/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The PCI Express capability (version 2): enough for a guest to identify an endpoint or a
 * port, see a trained x1 link, and program the control registers it expects to be
 * writable. Error status bits are write-1-to-clear; nothing here changes routing.
 */
#include "pci_internal.h"

#define PCIE_CAP_LEN  0x3c

#define FLAGS_VERSION2      0x0002
#define FLAGS_SLOT          0x0100
#define DEVCAP_RBER         0x00008000
#define DEVCTL_DEFAULT      0x2810 /* relaxed ordering, no snoop, 512-byte read requests */
#define DEVCTL_WMASK        0x7fff
#define DEVSTA_W1C          0x000f
#define LINK_2_5GT_X1       0x0011 /* speed 2.5 GT/s, width x1 */
#define LINKCAP_DLL_ACTIVE  0x00100000
#define LINKSTA_DLL_ACTIVE  0x2000
#define LINKSTA_BW_W1C      0xc000
#define LINKCTL_EP_WMASK    0x01c3
#define LINKCTL_PORT_WMASK  0x0cd3
#define LINKCTL_RCB         0x0008
#define SLOTCTL_WMASK       0x1fff
#define SLOTSTA_W1C         0x011f
#define SLOTSTA_PRESENT     0x0040
#define ROOTCTL_WMASK       0x001f
#define ROOTSTA_PME_W1C     0x00010000
#define DEVCTL2_WMASK       0x003f
#define LINKCAP2_2_5GT      0x0002
#define LINKCTL2_TARGET_2_5 0x0001
#define LINKCTL2_WMASK      0x000f

static bool is_port(enum bm_pcie_type t)
{
	return t == BM_PCIE_ROOT_PORT || t == BM_PCIE_UPSTREAM_PORT ||
	       t == BM_PCIE_DOWNSTREAM_PORT || t == BM_PCIE_PCI_BRIDGE;
}

static bool is_endpoint(enum bm_pcie_type t)
{
	return t == BM_PCIE_ENDPOINT || t == BM_PCIE_LEGACY_ENDPOINT || t == BM_PCIE_RC_ENDPOINT;
}

/* Root and downstream ports lead to a slot; they report a link that is up. */
static bool has_slot(enum bm_pcie_type t)
{
	return t == BM_PCIE_ROOT_PORT || t == BM_PCIE_DOWNSTREAM_PORT;
}

static void put(uint8_t *b, unsigned at, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		b[at + i] = (uint8_t)(v >> (8 * i));
}

static void fill_device(uint8_t *d, uint8_t *wm, uint8_t *w1c, enum bm_pcie_type t)
{
	put(d, PCI_EXP_FLAGS, 2, FLAGS_VERSION2 | (uint32_t)t << 4 | (has_slot(t) ? FLAGS_SLOT : 0));
	put(d, PCI_EXP_DEVCAP, 4, DEVCAP_RBER);
	put(d, PCI_EXP_DEVCTL, 2, DEVCTL_DEFAULT);
	put(wm, PCI_EXP_DEVCTL, 2, DEVCTL_WMASK);
	put(w1c, PCI_EXP_DEVSTA, 2, DEVSTA_W1C);
	put(wm, PCI_EXP_DEVCTL2, 2, DEVCTL2_WMASK);
}

static void fill_link(uint8_t *d, uint8_t *wm, uint8_t *w1c, enum bm_pcie_type t)
{
	bool port = is_port(t);
	put(d, PCI_EXP_LNKCAP, 4, LINK_2_5GT_X1 | (port ? LINKCAP_DLL_ACTIVE : 0));
	put(d, PCI_EXP_LNKSTA, 2, LINK_2_5GT_X1 | (port ? LINKSTA_DLL_ACTIVE : 0));
	uint32_t lwm = port ? LINKCTL_PORT_WMASK : LINKCTL_EP_WMASK;
	if (t == BM_PCIE_ROOT_PORT)
		lwm |= LINKCTL_RCB;
	put(wm, PCI_EXP_LNKCTL, 2, lwm);
	if (port)
		put(w1c, PCI_EXP_LNKSTA, 2, LINKSTA_BW_W1C);
	put(d, PCI_EXP_LNKCAP2, 4, LINKCAP2_2_5GT);
	put(d, PCI_EXP_LNKCTL2, 2, LINKCTL2_TARGET_2_5);
	put(wm, PCI_EXP_LNKCTL2, 2, LINKCTL2_WMASK);
}

static void fill_port(uint8_t *d, uint8_t *wm, uint8_t *w1c, enum bm_pcie_type t)
{
	if (has_slot(t)) {
		put(wm, PCI_EXP_SLTCTL, 2, SLOTCTL_WMASK);
		put(d, PCI_EXP_SLTSTA, 2, SLOTSTA_PRESENT);
		put(w1c, PCI_EXP_SLTSTA, 2, SLOTSTA_W1C);
	}
	if (t == BM_PCIE_ROOT_PORT) {
		put(wm, PCI_EXP_RTCTL, 2, ROOTCTL_WMASK);
		put(w1c, PCI_EXP_RTSTA, 4, ROOTSTA_PME_W1C);
	}
}

int bm_pci_func_add_pcie(bm_pci_func *f, enum bm_pcie_type type, unsigned *offset)
{
	if (!f || (!is_port(type) && !is_endpoint(type)))
		return -EINVAL;
	if (f->cfg_size < BM_PCI_CFG_EXTSIZE || (is_port(type) != (f->bridge != NULL)))
		return -EINVAL;
	uint8_t d[PCIE_CAP_LEN] = {0}, wm[PCIE_CAP_LEN] = {0}, w1c[PCIE_CAP_LEN] = {0};
	fill_device(d, wm, w1c, type);
	fill_link(d, wm, w1c, type);
	fill_port(d, wm, w1c, type);
	struct bm_pci_cap_desc c = {
	    .id = PCI_CAP_ID_EXP, .data = d, .len = PCIE_CAP_LEN, .wmask = wm, .w1cmask = w1c};
	int err = pci_begin(f->host);
	if (err)
		return err;
	unsigned off = 0;
	if (bm_pci_func_find_cap(f, PCI_CAP_ID_EXP, false))
		err = -EEXIST;
	else
		err = pci_cap_add(f, &c, &off);
	if (!err && offset)
		*offset = off;
	int cerr = pci_commit(f->host);
	return err ? err : cerr;
}
