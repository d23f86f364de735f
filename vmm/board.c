/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The board: the pc machine's chipset and the devices of the command line, assembled on a
 * struct vm. Used by busmap-vmm's main and by the tests, so both build the same machine.
 */
#include "board.h"
#include "devices.h"
#include "linux.h"
#include "maptrace.h"

#include <busmap/pci_alloc.h>
#include <errno.h>
#include <string.h>

static int add_chipset(struct vm *vm, const struct vmm_options *o, int serial_fd)
{
	struct i440fx *nb;
	struct piix3 *sb;
	struct rtc *rtc;
	struct uart *uart;
	struct fw_cfg *fc;
	int err = i440fx_new(vm, o->bios, o->bios_size, &nb);
	if (err || (err = vm_add_device(vm, "i440fx", nb, i440fx_free)))
		return err;
	if ((err = piix3_new(vm, &sb)) || (err = vm_add_device(vm, "piix3", sb, piix3_free)))
		return err;
	if ((err = rtc_new(vm, &rtc)) || (err = vm_add_device(vm, "rtc", rtc, rtc_free)))
		return err;
	if ((err = uart_new(vm, 0x3f8, 4, serial_fd, &uart)) ||
	    (err = vm_add_device(vm, "serial", uart, uart_free)))
		return err;
	if ((err = fw_cfg_new(vm, 0x510, &fc)) ||
	    (err = vm_add_device(vm, "fw_cfg", fc, fw_cfg_free)))
		return err;
	return 0;
}

static int add_device(struct vm *vm, const struct vmm_device_opt *d, int out_fd)
{
	void *dev = NULL;
	void (*free_fn)(void *) = NULL;
	const char *name = "";
	int err = -EINVAL;
	switch (d->kind) {
	case DEV_DEBUG_EXIT:
		name = "isa-debug-exit";
		free_fn = debug_exit_free;
		err = debug_exit_new(vm, (uint16_t)d->iobase, (unsigned)d->iosize,
		                     (struct debug_exit **)&dev);
		break;
	case DEV_DEBUGCON:
		name = "isa-debugcon";
		free_fn = debugcon_free;
		err = debugcon_new(vm, (uint16_t)d->iobase, out_fd, (struct debugcon **)&dev);
		break;
	case DEV_VIRTIO_BLK:
		name = "virtio-blk";
		free_fn = virtio_blk_free;
		err = virtio_blk_new(vm, (unsigned)d->slot, d->file, d->readonly,
		                     (struct virtio_blk **)&dev);
		break;
	case DEV_VIRTIO_NET:
		name = "virtio-net";
		free_fn = virtio_net_free;
		err = virtio_net_new(vm, (unsigned)d->slot, d->mac, (struct virtio_net **)&dev);
		break;
	case DEV_PCI_TESTDEV:
		name = "pci-testdev";
		free_fn = pci_testdev_free;
		err = pci_testdev_new(vm, (unsigned)d->slot, (struct pci_testdev **)&dev);
		break;
	}
	if (err) {
		vm_log(vm, "cannot create %s: %s", name, strerror(-err));
		return err;
	}
	err = vm_add_device(vm, name, dev, free_fn);
	if (err)
		free_fn(dev);
	return err;
}

/* bhyve's initial placement: every BAR placed, largest first, decoding on. */
static int bhyve_layout(struct vm *vm)
{
	struct bm_pci_alloc_config cfg = {
	    .mode = BM_PCI_ALLOC_BHYVE,
	    .io = {0x2000, 0xffff},
	    .mem32 = {VM_PCI_MEM32_BASE, 0xdfffffff},
	    .mem64 = {VM_PCI_MEM64_BASE, VM_PCI_MEM64_LAST},
	};
	struct bm_pci_alloc_failure fail = {0};
	int err = bm_pci_alloc_run(vm->pci, &cfg, &fail);
	if (err)
		vm_log(vm, "--bar-layout=bhyve: cannot place the BARs: %s", strerror(-err));
	return err;
}

int board_build(struct vm *vm, const struct vmm_options *o, int serial_fd, const int *debugcon_fds)
{
	int err = add_chipset(vm, o, serial_fd);
	if (err) {
		vm_log(vm, "cannot create the chipset: %s", strerror(-err));
		return err;
	}
	for (unsigned i = 0; i < o->ndevices; i++) {
		err = add_device(vm, &o->devices[i], debugcon_fds ? debugcon_fds[i] : -1);
		if (err)
			return err;
	}
	if (o->kernel && (err = linux_load(vm, o->kernel, o->initrd, o->append)))
		return err;
	if (o->trace_map && (err = maptrace_start(vm, stderr)))
		return err;
	if (o->layout == LAYOUT_BHYVE)
		err = bhyve_layout(vm);
	return err;
}
