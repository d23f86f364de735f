/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The devices of busmap-vmm, one file each under hw/ and virtio/.
 *
 * Every constructor creates the device's regions from vm->sys and places them (in vm->io,
 * vm->mem, or as PCI BARs on vm->pci's root bus), and returns 0 or a negative errno with
 * nothing left behind. Each *_free takes a void * so it can be registered with
 * vm_add_device; it removes the device's regions and frees it, and accepts NULL. Device
 * callbacks run on vCPU threads and take the device's own lock where several vCPUs can
 * reach the same state. Nothing a guest writes makes a device abort or access memory
 * outside what it owns: bad values get the hardware's defined behaviour.
 */
#ifndef BUSMAP_VMM_DEVICES_H
#define BUSMAP_VMM_DEVICES_H

#include "vmm.h"

/* ---- chipset (hw/i440fx.c, hw/piix3.c, hw/rom.c) ---- */

/* A read-only memory: reads come from host memory, writes are dropped. The memslot
 * listener maps it read-only into the guest. data is copied. */
struct rom;
int rom_new(struct vm *vm, const char *name, const void *data, uint64_t size, struct rom **out);
/* The same over host memory that stays the caller's (a read-only view of RAM). */
int rom_new_view(struct vm *vm, const char *name, void *host, uint64_t size, struct rom **out);
bm_region *rom_region(const struct rom *rom);
void rom_free(void *rom);

/* The i440FX host bridge at 00:00.0 (8086:1237) and its PAM registers (0x59-0x5f), which
 * switch 0xc0000-0xfffff between RAM and the PCI space (where the BIOS shows), and the
 * SMRAM register (0x72) that opens RAM at 0xa0000. bios is the firmware image (size a
 * multiple of 64 KiB): it goes at the top of 4 GiB, its last 128 KiB also at 0xe0000. */
struct i440fx;
int i440fx_new(struct vm *vm, const void *bios, uint64_t bios_size, struct i440fx **out);
void i440fx_free(void *dev);

/* The PIIX3 ISA bridge at 00:01.0 (8086:7000): PIRQ routing (0x60-0x63) of PCI INTx to
 * ISA IRQs; port 0x61 (PIT channel 2 output, speaker gate) and port 0x92 (fast A20, reset). */
struct piix3;
int piix3_new(struct vm *vm, struct piix3 **out);
void piix3_free(void *dev);

/* ---- ISA devices (hw/) ---- */

/* 16550A UART at base (0x3f8) on ISA irq (4). Transmitted bytes go to out_fd (-1: dropped);
 * nothing is received. */
struct uart;
int uart_new(struct vm *vm, uint16_t base, unsigned irq, int out_fd, struct uart **out);
void uart_free(void *dev);

/* MC146818 RTC and CMOS at 0x70/0x71, with the memory sizes and CPU count in CMOS where
 * QEMU's pc machine puts them for the BIOS. */
struct rtc;
int rtc_new(struct vm *vm, struct rtc **out);
void rtc_free(void *dev);

/* QEMU's fw_cfg at base (0x510: selector, base + 1: data), with the items SeaBIOS reads;
 * "etc/e820" starts with RAM below and above 4 GiB, the ECAM window and KVM's identity
 * map and TSS (0xfeffc000, 16 KiB) reserved. */
struct fw_cfg;
int fw_cfg_new(struct vm *vm, uint16_t base, struct fw_cfg **out);
/* Adds a named file (data is copied). -EEXIST, -ENOSPC, -EINVAL (name too long). */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len);
/* Adds an entry to "etc/e820" (type 1 RAM, 2 reserved...). -EEXIST (overlaps an entry),
 * -ENOSPC (16 entries), -EINVAL (empty, wraps). */
int fw_cfg_add_e820(struct fw_cfg *fc, uint64_t addr, uint64_t len, uint32_t type);
void fw_cfg_free(void *dev);

/* QEMU's isa-debug-exit: a write of v at base ends the run with status (v << 1) | 1, cut
 * to 8 bits as QEMU's process status is. Reads give 0. */
struct debug_exit;
int debug_exit_new(struct vm *vm, uint16_t base, unsigned size, struct debug_exit **out);
void debug_exit_free(void *dev);

/* QEMU's isa-debugcon: bytes written at base go to out_fd; reads give 0xe9. */
struct debugcon;
int debugcon_new(struct vm *vm, uint16_t base, int out_fd, struct debugcon **out);
void debugcon_free(void *dev);

/* ---- PCI devices ---- */

/* QEMU's pci-testdev (1b36:0005) at slot on the root bus: BAR0 memory, BAR1 I/O. */
struct pci_testdev;
int pci_testdev_new(struct vm *vm, unsigned slot, struct pci_testdev **out);
void pci_testdev_free(void *dev);

/* virtio-blk over PCI (transitional) on image path; readonly opens it read-only. */
struct virtio_blk;
int virtio_blk_new(struct vm *vm, unsigned slot, const char *path, bool readonly,
                   struct virtio_blk **out);
void virtio_blk_free(void *dev);

/* virtio-net over PCI (transitional): sent frames are dropped, nothing is received. */
struct virtio_net;
int virtio_net_new(struct vm *vm, unsigned slot, const uint8_t mac[6], struct virtio_net **out);
void virtio_net_free(void *dev);

#endif
