/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Standard PCI configuration-space names, for device models and for guest-side code that
 * programs functions through CF8/CFC or ECAM: register offsets, command and status bits, BAR
 * and ROM type bits, the capability IDs and the MSI and MSI-X registers, from the PCI Local
 * Bus, PCI-to-PCI Bridge and PCI Express Base specifications.
 *
 * The names are the ones the specifications' readers already know (Linux and QEMU spell
 * them the same way), so this header is not included by <busmap/busmap.h>: a program that
 * also includes <linux/pci_regs.h> or <pci/pci.h> should take these names from one of
 * them only.
 *
 * Nothing here has state or threads: they are constants and pure macros.
 */
#ifndef BUSMAP_PCI_REGS_H
#define BUSMAP_PCI_REGS_H

/* ---- Header common to every function (type 0 and type 1) ---- */
#define PCI_VENDOR_ID       0x00 /* 16 bits; 0xffff reads from an absent function */
#define PCI_DEVICE_ID       0x02 /* 16 bits */
#define PCI_COMMAND         0x04 /* 16 bits */
#define PCI_STATUS          0x06 /* 16 bits */
#define PCI_REVISION_ID     0x08 /* 8 bits */
#define PCI_CLASS_PROG      0x09 /* 8 bits: programming interface */
#define PCI_CLASS_DEVICE    0x0a /* 16 bits: base class << 8 | sub-class */
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_LATENCY_TIMER   0x0d
#define PCI_HEADER_TYPE     0x0e
#define PCI_BIST            0x0f
#define PCI_CAPABILITY_LIST 0x34 /* offset of the first capability, if PCI_STATUS_CAP_LIST */
#define PCI_INTERRUPT_LINE  0x3c /* firmware's note of the routing; the device ignores it */
#define PCI_INTERRUPT_PIN   0x3d /* 0: none, 1..4: INTA#..INTD# */
#define PCI_BRIDGE_CONTROL  0x3e /* type 1 only */

/* ---- Type 0 (endpoint) header ---- */
#define PCI_BASE_ADDRESS_0      0x10 /* six dword BARs; a 64-bit BAR takes two */
#define PCI_BASE_ADDRESS_1      0x14
#define PCI_BASE_ADDRESS_2      0x18
#define PCI_BASE_ADDRESS_3      0x1c
#define PCI_BASE_ADDRESS_4      0x20
#define PCI_BASE_ADDRESS_5      0x24
#define PCI_BASE_ADDRESS(n)     (PCI_BASE_ADDRESS_0 + 4 * (n))
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_ROM_ADDRESS         0x30

/* ---- Type 1 (PCI-to-PCI bridge) header; BARs 0 and 1 as above ---- */
#define PCI_PRIMARY_BUS        0x18
#define PCI_SECONDARY_BUS      0x19
#define PCI_SUBORDINATE_BUS    0x1a
#define PCI_SEC_LATENCY_TIMER  0x1b
#define PCI_IO_BASE            0x1c /* 8 bits each: address bits 15:12 in bits 7:4 */
#define PCI_IO_LIMIT           0x1d
#define PCI_SEC_STATUS         0x1e
#define PCI_MEMORY_BASE        0x20 /* 16 bits each: address bits 31:20 in bits 15:4 */
#define PCI_MEMORY_LIMIT       0x22
#define PCI_PREF_MEMORY_BASE   0x24
#define PCI_PREF_MEMORY_LIMIT  0x26
#define PCI_PREF_BASE_UPPER32  0x28
#define PCI_PREF_LIMIT_UPPER32 0x2c
#define PCI_IO_BASE_UPPER16    0x30
#define PCI_IO_LIMIT_UPPER16   0x32
#define PCI_ROM_ADDRESS1       0x38

/* Bit 0 of the I/O base and prefetchable base registers: 32-bit I/O, 64-bit memory. */
#define PCI_IO_RANGE_TYPE_32   0x1
#define PCI_PREF_RANGE_TYPE_64 0x1
#define PCI_STD_HEADER_SIZEOF  0x40  /* capabilities live above it */
#define PCI_CFG_SPACE_SIZE     0x100 /* conventional; PCI Express extended caps start here */
#define PCI_CFG_SPACE_EXP_SIZE 0x1000

/* ---- PCI_COMMAND ---- */
#define PCI_COMMAND_IO           0x0001 /* decode I/O BARs */
#define PCI_COMMAND_MEMORY       0x0002 /* decode memory BARs */
#define PCI_COMMAND_MASTER       0x0004 /* may initiate DMA and MSI */
#define PCI_COMMAND_PARITY       0x0040
#define PCI_COMMAND_SERR         0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400

/* ---- PCI_STATUS (error bits are write-one-to-clear) ---- */
#define PCI_STATUS_INTERRUPT        0x0008 /* INTx asserted, whatever INTX_DISABLE says */
#define PCI_STATUS_CAP_LIST         0x0010
#define PCI_STATUS_66MHZ            0x0020
#define PCI_STATUS_FAST_BACK        0x0080
#define PCI_STATUS_PARITY           0x0100 /* master data parity error */
#define PCI_STATUS_SIG_TARGET_ABORT 0x0800
#define PCI_STATUS_REC_TARGET_ABORT 0x1000
#define PCI_STATUS_REC_MASTER_ABORT 0x2000
#define PCI_STATUS_SIG_SYSTEM_ERROR 0x4000
#define PCI_STATUS_DETECTED_PARITY  0x8000

/* ---- PCI_HEADER_TYPE ---- */
#define PCI_HEADER_TYPE_MASK   0x7f
#define PCI_HEADER_TYPE_NORMAL 0x00
#define PCI_HEADER_TYPE_BRIDGE 0x01
#define PCI_HEADER_TYPE_MFD    0x80 /* on function 0: the slot has other functions */

/* ---- BARs: low bits, read-only, describe the BAR; size by writing all ones ---- */
#define PCI_BASE_ADDRESS_SPACE_IO      0x01
#define PCI_BASE_ADDRESS_MEM_TYPE_MASK 0x06
#define PCI_BASE_ADDRESS_MEM_TYPE_32   0x00
#define PCI_BASE_ADDRESS_MEM_TYPE_64   0x04 /* the next BAR holds the upper half */
#define PCI_BASE_ADDRESS_MEM_PREFETCH  0x08
#define PCI_BASE_ADDRESS_MEM_MASK      0xfffffff0u
#define PCI_BASE_ADDRESS_IO_MASK       0xfffffffcu
#define PCI_ROM_ADDRESS_ENABLE         0x01
#define PCI_ROM_ADDRESS_MASK           0xfffff800u

/* ---- Capabilities: an ID byte, then the offset of the next (0 ends the list) ---- */
#define PCI_CAP_LIST_ID   0
#define PCI_CAP_LIST_NEXT 1
#define PCI_CAP_ID_PM     0x01
#define PCI_CAP_ID_VPD    0x03
#define PCI_CAP_ID_MSI    0x05
#define PCI_CAP_ID_VNDR   0x09 /* vendor-specific, as virtio's */
#define PCI_CAP_ID_SSVID  0x0d /* a bridge's subsystem IDs */
#define PCI_CAP_ID_EXP    0x10 /* PCI Express */
#define PCI_CAP_ID_MSIX   0x11

/* MSI capability, offsets from its start. */
#define PCI_MSI_FLAGS         0x02 /* 16 bits: message control */
#define PCI_MSI_FLAGS_ENABLE  0x0001
#define PCI_MSI_FLAGS_QMASK   0x000e /* log2 of the vectors the function can ask for */
#define PCI_MSI_FLAGS_QSIZE   0x0070 /* log2 of the vectors software granted */
#define PCI_MSI_FLAGS_64BIT   0x0080
#define PCI_MSI_FLAGS_MASKBIT 0x0100 /* per-vector masking */
#define PCI_MSI_ADDRESS_LO    0x04

/* MSI-X capability, offsets from its start; the table and PBA live in BARs. */
#define PCI_MSIX_FLAGS              0x02   /* 16 bits: message control */
#define PCI_MSIX_FLAGS_QSIZE        0x07ff /* table size minus one */
#define PCI_MSIX_FLAGS_MASKALL      0x4000
#define PCI_MSIX_FLAGS_ENABLE       0x8000
#define PCI_MSIX_TABLE              0x04 /* offset in the BAR | BAR index in bits 2:0 */
#define PCI_MSIX_PBA                0x08
#define PCI_MSIX_BIR_MASK           0x7
#define PCI_MSIX_ENTRY_SIZE         16 /* address low, high, data, vector control */
#define PCI_MSIX_ENTRY_VECTOR_CTRL  12
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

/* PCI Express capability, offsets from its start (registers this library emulates). */
#define PCI_EXP_FLAGS   0x02 /* 16 bits: version, device/port type, slot implemented */
#define PCI_EXP_DEVCAP  0x04
#define PCI_EXP_DEVCTL  0x08
#define PCI_EXP_DEVSTA  0x0a
#define PCI_EXP_LNKCAP  0x0c
#define PCI_EXP_LNKCTL  0x10
#define PCI_EXP_LNKSTA  0x12
#define PCI_EXP_SLTCAP  0x14
#define PCI_EXP_SLTCTL  0x18
#define PCI_EXP_SLTSTA  0x1a
#define PCI_EXP_RTCTL   0x1c
#define PCI_EXP_RTSTA   0x20
#define PCI_EXP_DEVCTL2 0x28
#define PCI_EXP_LNKCAP2 0x2c
#define PCI_EXP_LNKCTL2 0x30

/* ---- Class codes, 24 bits (base class, sub-class, programming interface), as a
 * function description's class_code takes them ---- */
#define PCI_CLASS_CODE_HOST_BRIDGE 0x060000
#define PCI_CLASS_CODE_ISA_BRIDGE  0x060100
#define PCI_CLASS_CODE_PCI_BRIDGE  0x060400

/* ---- Reaching a function's registers ---- */
/* x86 configuration mechanism #1: write the address dword to CF8, then access CFC + (reg & 3). */
#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_CONFIG_ENABLE       0x80000000u
#define PCI_CONFIG_ADDRESS(bus, dev, fn, reg)                                                      \
	(PCI_CONFIG_ENABLE | ((unsigned)(bus)&0xff) << 16 | ((unsigned)(dev)&0x1f) << 11 |         \
	 ((unsigned)(fn)&0x7) << 8 | ((unsigned)(reg)&0xfc))
/* ECAM (memory-mapped): 4 KiB of registers per function, 1 MiB per bus, from the window's base. */
#define PCI_ECAM_OFFSET(bus, dev, fn, reg)                                                         \
	(((unsigned long long)(bus)&0xff) << 20 | ((unsigned long long)(dev)&0x1f) << 15 |         \
	 ((unsigned long long)(fn)&0x7) << 12 | ((unsigned long long)(reg)&0xfff))

#endif
