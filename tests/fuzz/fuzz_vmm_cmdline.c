/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-vmm-cmdline: any bytes, split at NUL bytes, are busmap-vmm's argv. Parsing must never
 * crash, and a command line it accepts must describe a machine the board can build.
 */
#include "cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

static void fail(const char *what, int argc, char **argv)
{
	fprintf(stderr, "\nfuzz-vmm-cmdline: %s; argv:", what);
	for (int i = 0; i < argc; i++)
		fprintf(stderr, " '%s'", argv[i]);
	fputc('\n', stderr);
	abort();
}

static bool is_pci(enum vmm_device_kind k)
{
	return k == DEV_VIRTIO_BLK || k == DEV_VIRTIO_NET || k == DEV_PCI_TESTDEV;
}

/* What board_build relies on from an accepted command line. */
static void check(const struct vmm_options *o, int argc, char **argv)
{
	if (o->ncpus < 1 || o->ncpus > 64)
		fail("vCPU count out of range", argc, argv);
	if (o->ram_size < (2u << 20) || o->ram_size % 4096 || o->ram_size > (256ull << 30))
		fail("RAM size out of range", argc, argv);
	if (!o->bios_path || o->ndevices > VMM_MAX_DEVICES)
		fail("no BIOS path, or too many devices", argc, argv);
	if (o->serial == SERIAL_FILE && (!o->serial_path || !*o->serial_path))
		fail("serial file without a path", argc, argv);
	if (!o->kernel && (o->initrd || (o->append && *o->append)))
		fail("-initrd or -append without -kernel", argc, argv);
	uint32_t used = 0;
	for (unsigned i = 0; i < o->ndevices; i++) {
		const struct vmm_device_opt *d = &o->devices[i];
		switch (d->kind) {
		case DEV_DEBUG_EXIT:
			if (d->iobase > 0xffff ||
			    (d->iosize != 1 && d->iosize != 2 && d->iosize != 4))
				fail("isa-debug-exit with a bad port range", argc, argv);
			break;
		case DEV_DEBUGCON:
			if (d->iobase > 0xffff)
				fail("isa-debugcon with a bad port", argc, argv);
			break;
		case DEV_VIRTIO_BLK:
			if (!d->file || !*d->file)
				fail("virtio-blk without an image", argc, argv);
			break;
		case DEV_VIRTIO_NET:
		case DEV_PCI_TESTDEV:
			break;
		default:
			fail("unknown device kind", argc, argv);
		}
		if (!is_pci(d->kind))
			continue;
		if (d->slot < 2 || d->slot > 31)
			fail("PCI device without a slot from 2 to 31", argc, argv);
		if (used & (1u << d->slot))
			fail("two PCI devices in one slot", argc, argv);
		used |= 1u << d->slot;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parser keeps pointers into argv (file names): the strings live until the end. */
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	char *argv[MAX_ARGS + 1];
	char *copy[MAX_ARGS + 1];
	int argc = 0;
	argv[argc++] = "busmap-vmm";
	for (char *p = buf; p < buf + size && argc < MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	/* For the report: -device values are cut up in place while parsing. */
	for (int i = 0; i < argc; i++)
		copy[i] = strdup(argv[i]);

	struct vmm_options o;
	char err[256] = "";
	int rc = vmm_parse(argc, argv, &o, err, sizeof(err));
	if (rc == 0)
		check(&o, argc, copy);
	else if (rc != -EINVAL || !err[0] || !memchr(err, 0, sizeof(err)))
		fail("a refusal that is not -EINVAL with a message", argc, copy);
	vmm_options_free(&o);
	for (int i = 0; i < argc; i++)
		free(copy[i]);
	free(buf);
	return 0;
}
