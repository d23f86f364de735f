/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-vmm's command line, QEMU's shape where the two overlap: options are parsed and
 * every input file is checked before anything touches /dev/kvm, so that a bad command
 * line or an unusable file fails fast with status 2 on any machine.
 */
#ifndef BUSMAP_VMM_CMDLINE_H
#define BUSMAP_VMM_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VMM_MAX_DEVICES  24
#define VMM_DEFAULT_BIOS "/usr/share/seabios/bios.bin"

enum vmm_device_kind {
	DEV_DEBUG_EXIT,
	DEV_DEBUGCON,
	DEV_VIRTIO_BLK,
	DEV_VIRTIO_NET,
	DEV_PCI_TESTDEV,
};

struct vmm_device_opt {
	enum vmm_device_kind kind;
	int slot;         /* PCI devices: -1 until assigned */
	uint64_t iobase;  /* ISA devices */
	uint64_t iosize;  /* isa-debug-exit */
	const char *file; /* virtio-blk image, isa-debugcon output (NULL: stderr) */
	bool readonly;    /* virtio-blk */
	uint8_t mac[6];   /* virtio-net */
};

enum vmm_serial { SERIAL_STDIO, SERIAL_NONE, SERIAL_FILE };
enum vmm_layout { LAYOUT_FIRMWARE, LAYOUT_BHYVE };

struct vmm_options {
	uint64_t ram_size;
	unsigned ncpus;
	const char *bios_path;
	enum vmm_serial serial;
	const char *serial_path;
	struct vmm_device_opt devices[VMM_MAX_DEVICES];
	unsigned ndevices;
	enum vmm_layout layout;
	bool trace_map;
	bool trace_unassigned;
	bool dump_map;
	const char *dump_map_path; /* NULL: stderr */
	const char *kernel;        /* -kernel: a bzImage booted directly (NULL: the BIOS boots) */
	const char *initrd;        /* -initrd, only with -kernel */
	const char *append;        /* -append, only with -kernel */
	bool check_memslots;
	bool help;
	bool version;
	/* Filled by vmm_load_files. */
	uint8_t *bios;
	uint64_t bios_size;
};

/* Parses argv. Returns 0, or -EINVAL after writing "what is wrong" into err. */
int vmm_parse(int argc, char **argv, struct vmm_options *o, char *err, size_t errlen);
/* Reads the BIOS and checks that every other file opens as it will be used (a -kernel as a
 * bootable bzImage that fits in RAM with its -initrd and -append). */
int vmm_load_files(struct vmm_options *o, char *err, size_t errlen);
void vmm_options_free(struct vmm_options *o);
void vmm_usage(FILE *out);

#endif
