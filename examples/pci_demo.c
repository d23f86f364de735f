/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A PCI endpoint as a device model declares it, and a guest's firmware finding it: the
 * guest side sizes BAR 0 through CF8/CFC, places it, turns memory decode on, reads a device
 * register through the BAR, then moves the BAR. Prints each step; exits 1 if one fails.
 */
#include <busmap/busmap.h>
#include <busmap/pci_regs.h>
#include <inttypes.h>
#include <stdio.h>

#define DEV_SLOT   3
#define BAR_SIZE   0x1000
#define DEV_ID_REG 0x5a5a0001u /* what the device answers at offset 0 of its BAR */

static int dev_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)opaque, (void)vcpu, (void)size;
	*value = offset == 0 ? DEV_ID_REG : 0;
	return 0;
}

static const struct bm_region_ops dev_ops = {.read = dev_read, .impl_sizes = BM_ACCESS_4};

/* Guest side: one configuration dword through CF8/CFC. */
static uint32_t cfg_rd(bm_vcpu *v, bm_space *io, unsigned reg)
{
	uint64_t x = ~0ull;
	bm_write(v, io, PCI_CONFIG_ADDRESS_PORT, 4, PCI_CONFIG_ADDRESS(0, DEV_SLOT, 0, reg));
	bm_read(v, io, PCI_CONFIG_DATA_PORT, 4, &x);
	return (uint32_t)x;
}

static void cfg_wr(bm_vcpu *v, bm_space *io, unsigned reg, uint32_t value)
{
	bm_write(v, io, PCI_CONFIG_ADDRESS_PORT, 4, PCI_CONFIG_ADDRESS(0, DEV_SLOT, 0, reg));
	bm_write(v, io, PCI_CONFIG_DATA_PORT, 4, value);
}

static int read_bar(bm_vcpu *v, bm_space *mem, uint64_t addr)
{
	uint64_t x = 0;
	bm_access_result r = bm_read(v, mem, addr, 4, &x);
	printf("read at 0x%" PRIx64 ": 0x%" PRIx64 "%s\n", addr, x,
	       bm_failed(r)               ? " (failed)"
	       : r & BM_ACCESS_UNASSIGNED ? " (unassigned)"
	                                  : "");
	return !bm_failed(r) && r == 0 && x == DEV_ID_REG;
}

int main(void)
{
	bm_system *sys;
	bm_space *mem, *io;
	bm_pci_host *host;
	bm_pci_func *func;
	bm_vcpu *vcpu;
	if (bm_system_new(&sys) || bm_space_new(sys, "memory", "system", &mem) ||
	    bm_space_new(sys, "io", "io", &io))
		return 1;
	struct bm_pci_host_config hc = {.mem = mem, .io = io, .cf8 = true};
	if (bm_pci_host_new(sys, &hc, &host))
		return 1;
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1234,
	    .device_id = 0x0001,
	    .class_code = 0xff0000,
	    .bars = {{.type = BM_PCI_BAR_MEM32, .size = BAR_SIZE, .ops = &dev_ops}},
	};
	if (bm_pci_func_new(bm_pci_host_root_bus(host), DEV_SLOT, 0, &d, &func) ||
	    bm_vcpu_new(sys, 0, NULL, &vcpu))
		return 1;

	int ok = cfg_rd(vcpu, io, PCI_VENDOR_ID) == 0x00011234;
	cfg_wr(vcpu, io, PCI_BASE_ADDRESS_0, 0xffffffff);
	uint32_t mask = cfg_rd(vcpu, io, PCI_BASE_ADDRESS_0) & PCI_BASE_ADDRESS_MEM_MASK;
	printf("BAR 0 is %u bytes of memory\n", ~mask + 1);
	ok = ok && ~mask + 1 == BAR_SIZE;
	cfg_wr(vcpu, io, PCI_BASE_ADDRESS_0, 0xc0000000);
	ok = ok && !read_bar(vcpu, mem, 0xc0000000); /* decode still off */
	cfg_wr(vcpu, io, PCI_COMMAND, PCI_COMMAND_MEMORY);
	ok = ok && read_bar(vcpu, mem, 0xc0000000);
	cfg_wr(vcpu, io, PCI_BASE_ADDRESS_0, 0xc0100000);
	ok = ok && read_bar(vcpu, mem, 0xc0100000) && !read_bar(vcpu, mem, 0xc0000000);

	bm_vcpu_free(vcpu);
	bm_pci_host_free(host); /* before bm_system_free, which is -EBUSY until then */
	bm_system_free(sys);
	printf("%s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
