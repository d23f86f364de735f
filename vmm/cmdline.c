/* SPDX-License-Identifier: BSD-2-Clause */
/* Parsing busmap-vmm's command line and checking its files (see cmdline.h). */
#include "cmdline.h"
#include "linux.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RAM_MIB   (256u * 1024) /* below the 64-bit PCI window at 512 GiB */
#define MAX_CPUS      64
#define MAX_BIOS_SIZE (16u << 20)
#define FIRST_SLOT    2 /* 0: host bridge, 1: ISA bridge */

static bool parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* QEMU's -m: MiB by default, or with a K/M/G/T suffix ("-m 1G", "-m size=512"). */
static int parse_mem(const char *s, struct vmm_options *o, char *err, size_t n)
{
	if (strncmp(s, "size=", 5) == 0)
		s += 5;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || !isdigit((unsigned char)*s))
		return vmm_refuse(err, n, "-m: '%s' is not a memory size", s);
	unsigned shift = 20;
	switch (*end ? toupper((unsigned char)*end++) : 'M') {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return vmm_refuse(err, n, "-m: '%s' is not a memory size", s);
	}
	if (*end && !(toupper((unsigned char)*end) == 'B' && !end[1]))
		return vmm_refuse(err, n, "-m: '%s' is not a memory size", s);
	if (v == 0 || v > ((uint64_t)MAX_RAM_MIB << 20) >> shift)
		return vmm_refuse(err, n, "-m: %s is out of range (2 MiB to %u GiB)", s,
		                  MAX_RAM_MIB / 1024);
	o->ram_size = (uint64_t)v << shift;
	if (o->ram_size < (2u << 20) || o->ram_size % 4096)
		return vmm_refuse(err, n, "-m: %s is out of range (at least 2 MiB, whole pages)",
		                  s);
	return 0;
}

static int parse_smp(const char *s, struct vmm_options *o, char *err, size_t n)
{
	uint64_t v;
	if (strncmp(s, "cpus=", 5) == 0)
		s += 5;
	if (!parse_u64(s, &v) || v < 1 || v > MAX_CPUS)
		return vmm_refuse(err, n, "-smp: '%s' is not a vCPU count from 1 to %u", s,
		                  MAX_CPUS);
	o->ncpus = (unsigned)v;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
	           &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

/* QEMU's addr=SLOT or addr=SLOT.FN (function 0 only here). */
static int parse_slot(const char *s, int *slot)
{
	char buf[16];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	char *dot = strchr(buf, '.');
	if (dot) {
		if (strcmp(dot, ".0") != 0)
			return -EINVAL;
		*dot = 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 16);
	if (errno || end == buf || *end || v > 31)
		return -EINVAL;
	*slot = (int)v;
	return 0;
}

static bool is_on(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
		*out = false;
		return true;
	}
	return false;
}

static const struct {
	const char *name;
	enum vmm_device_kind kind;
} device_names[] = {
    {"isa-debug-exit", DEV_DEBUG_EXIT}, {"isa-debugcon", DEV_DEBUGCON},
    {"virtio-blk", DEV_VIRTIO_BLK},     {"virtio-blk-pci", DEV_VIRTIO_BLK},
    {"virtio-net", DEV_VIRTIO_NET},     {"virtio-net-pci", DEV_VIRTIO_NET},
    {"pci-testdev", DEV_PCI_TESTDEV},
};

static void device_defaults(struct vmm_device_opt *d)
{
	static const uint8_t qemu_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	d->slot = -1;
	if (d->kind == DEV_DEBUG_EXIT) {
		d->iobase = 0x501;
		d->iosize = 2;
	} else if (d->kind == DEV_DEBUGCON) {
		d->iobase = 0xe9;
	}
	memcpy(d->mac, qemu_mac, 6);
}

static bool is_pci(enum vmm_device_kind k)
{
	return k == DEV_VIRTIO_BLK || k == DEV_VIRTIO_NET || k == DEV_PCI_TESTDEV;
}

/* One key=value of a -device; value points into the argument, which outlives the options. */
static int device_property(struct vmm_device_opt *d, const char *dev, char *key, char *val,
                           char *err, size_t n)
{
	uint64_t v;
	if (!val)
		return vmm_refuse(err, n, "-device %s: '%s' needs a value (%s=...)", dev, key, key);
	if (!strcmp(key, "addr") && is_pci(d->kind)) {
		if (parse_slot(val, &d->slot))
			return vmm_refuse(
			    err, n, "-device %s: addr=%s is not a slot (0x2-0x1f, function 0)", dev,
			    val);
		if (d->slot < FIRST_SLOT)
			return vmm_refuse(err, n, "-device %s: slot %d is taken by the chipset",
			                  dev, d->slot);
		return 0;
	}
	if (!strcmp(key, "iobase") && (d->kind == DEV_DEBUG_EXIT || d->kind == DEV_DEBUGCON)) {
		if (!parse_u64(val, &v) || v > 0xffff)
			return vmm_refuse(err, n, "-device %s: iobase=%s is not a port", dev, val);
		d->iobase = v;
		return 0;
	}
	if (!strcmp(key, "iosize") && d->kind == DEV_DEBUG_EXIT) {
		if (!parse_u64(val, &v) || (v != 1 && v != 2 && v != 4))
			return vmm_refuse(err, n, "-device %s: iosize=%s must be 1, 2 or 4", dev,
			                  val);
		d->iosize = v;
		return 0;
	}
	if (!strcmp(key, "file") && (d->kind == DEV_VIRTIO_BLK || d->kind == DEV_DEBUGCON)) {
		if (!*val)
			return vmm_refuse(err, n, "-device %s: file= is empty", dev);
		d->file = val;
		return 0;
	}
	if (!strcmp(key, "readonly") && d->kind == DEV_VIRTIO_BLK) {
		if (!is_on(val, &d->readonly))
			return vmm_refuse(err, n, "-device %s: readonly=%s is not on or off", dev,
			                  val);
		return 0;
	}
	if (!strcmp(key, "mac") && d->kind == DEV_VIRTIO_NET) {
		if (parse_mac(val, d->mac))
			return vmm_refuse(err, n, "-device %s: mac=%s is not a MAC address", dev,
			                  val);
		return 0;
	}
	return vmm_refuse(err, n, "-device %s: unknown property '%s'", dev, key);
}

static int parse_device(char *arg, struct vmm_options *o, char *err, size_t n)
{
	if (o->ndevices == VMM_MAX_DEVICES)
		return vmm_refuse(err, n, "-device: more than %d devices", VMM_MAX_DEVICES);
	char *save = NULL;
	char *name = strtok_r(arg, ",", &save);
	if (!name)
		return vmm_refuse(err, n, "-device needs a device name");
	struct vmm_device_opt *d = &o->devices[o->ndevices];
	size_t i = 0, count = sizeof(device_names) / sizeof(device_names[0]);
	while (i < count && strcmp(device_names[i].name, name) != 0)
		i++;
	if (i == count)
		return vmm_refuse(err, n,
		                  "-device: unknown device '%s' (known: isa-debug-exit, "
		                  "isa-debugcon, virtio-blk, virtio-net, pci-testdev)",
		                  name);
	*d = (struct vmm_device_opt){.kind = device_names[i].kind};
	device_defaults(d);
	for (char *kv; (kv = strtok_r(NULL, ",", &save));) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq++ = 0;
		int e = device_property(d, name, kv, eq, err, n);
		if (e)
			return e;
	}
	if (d->kind == DEV_VIRTIO_BLK && !d->file)
		return vmm_refuse(err, n, "-device %s: needs file=IMAGE", name);
	o->ndevices++;
	return 0;
}

static int parse_serial(const char *s, struct vmm_options *o, char *err, size_t n)
{
	if (!strcmp(s, "stdio")) {
		o->serial = SERIAL_STDIO;
	} else if (!strcmp(s, "none") || !strcmp(s, "null")) {
		o->serial = SERIAL_NONE;
	} else if (!strncmp(s, "file:", 5) && s[5]) {
		o->serial = SERIAL_FILE;
		o->serial_path = s + 5;
	} else {
		return vmm_refuse(err, n, "-serial: '%s' is not stdio, none or file:PATH", s);
	}
	return 0;
}

/* Slots not given with addr= go to the lowest free ones, in command-line order. */
static int assign_slots(struct vmm_options *o, char *err, size_t n)
{
	uint32_t used = (1u << FIRST_SLOT) - 1;
	for (unsigned i = 0; i < o->ndevices; i++) {
		int s = o->devices[i].slot;
		if (s < 0)
			continue;
		if (used & (1u << s))
			return vmm_refuse(err, n, "-device: slot 0x%x is used twice", s);
		used |= 1u << s;
	}
	for (unsigned i = 0; i < o->ndevices; i++) {
		struct vmm_device_opt *d = &o->devices[i];
		if (!is_pci(d->kind) || d->slot >= 0)
			continue;
		int s = FIRST_SLOT;
		while (s < 32 && (used & (1u << s)))
			s++;
		if (s == 32)
			return vmm_refuse(err, n, "-device: no free PCI slot left");
		d->slot = s;
		used |= 1u << s;
	}
	return 0;
}

/* Options QEMU users pass that mean nothing else here; accepted so command lines carry over. */
static int qemu_noop(const char *opt, const char *val, char *err, size_t n)
{
	if (!strcmp(opt, "-machine") || !strcmp(opt, "-M")) {
		if (strcmp(val, "pc") && strncmp(val, "pc,", 3) && strncmp(val, "type=pc", 7))
			return vmm_refuse(err, n, "%s %s: only the pc machine exists here", opt,
			                  val);
		return 0;
	}
	if (!strcmp(opt, "-accel")) {
		if (strcmp(val, "kvm") && strncmp(val, "kvm,", 4))
			return vmm_refuse(err, n, "-accel %s: busmap-vmm runs on kvm only", val);
		return 0;
	}
	if (!strcmp(opt, "-display")) {
		if (strcmp(val, "none"))
			return vmm_refuse(err, n, "-display %s: there is no display, only none",
			                  val);
		return 0;
	}
	if (!strcmp(opt, "-cpu")) {
		if (strcmp(val, "host") && strncmp(val, "host,", 5))
			return vmm_refuse(err, n, "-cpu %s: the vCPUs are the host's (-cpu host)",
			                  val);
		return 0;
	}
	return 1;
}

static const char *const qemu_flags[] = {"-nographic",  "-no-reboot", "-enable-kvm",
                                         "-nodefaults", "-no-hpet",   NULL};

/* Takes the value of an option: "-opt value" or "--opt=value". */
static int take_value(int argc, char **argv, int *i, const char *eqval, const char **val, char *err,
                      size_t n)
{
	if (eqval) {
		*val = eqval;
		return 0;
	}
	if (*i + 1 >= argc)
		return vmm_refuse(err, n, "%s needs a value", argv[*i]);
	*val = argv[++*i];
	return 0;
}

static int parse_long(const char *name, const char *val, struct vmm_options *o, char *err, size_t n)
{
	if (!strcmp(name, "bar-layout")) {
		if (!val || !strcmp(val, "firmware"))
			o->layout = LAYOUT_FIRMWARE;
		else if (!strcmp(val, "bhyve"))
			o->layout = LAYOUT_BHYVE;
		else
			return vmm_refuse(err, n, "--bar-layout=%s: expected bhyve or firmware",
			                  val);
		return 0;
	}
	if (!strcmp(name, "dump-map")) {
		o->dump_map = true;
		o->dump_map_path = val;
		return 0;
	}
	static const struct {
		const char *name;
		size_t off;
	} flags[] = {
	    {"trace-map", offsetof(struct vmm_options, trace_map)},
	    {"trace-unassigned", offsetof(struct vmm_options, trace_unassigned)},
	    {"check-memslots", offsetof(struct vmm_options, check_memslots)},
	    {"help", offsetof(struct vmm_options, help)},
	    {"version", offsetof(struct vmm_options, version)},
	};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (strcmp(name, flags[i].name))
			continue;
		if (val)
			return vmm_refuse(err, n, "--%s takes no value", name);
		*(bool *)((char *)o + flags[i].off) = true;
		return 0;
	}
	return vmm_refuse(err, n, "unknown option --%s (see --help)", name);
}

static int parse_one(int argc, char **argv, int *i, struct vmm_options *o, char *err, size_t n)
{
	const char *a = argv[*i], *val = NULL;
	if (a[0] == '-' && a[1] == '-') {
		/* --long[=value]; QEMU's -long also works for the single-dash ones below. */
		char name[64];
		const char *eq = strchr(a + 2, '=');
		size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (len >= sizeof(name))
			return vmm_refuse(err, n, "unknown option %s", a);
		memcpy(name, a + 2, len);
		name[len] = 0;
		return parse_long(name, eq ? eq + 1 : NULL, o, err, n);
	}
	if (!strcmp(a, "-h"))
		return parse_long("help", NULL, o, err, n);
	for (const char *const *f = qemu_flags; *f; f++)
		if (!strcmp(a, *f))
			return 0;
	static const char *const with_value[] = {
	    "-m",     "-smp",     "-bios", "-device", "-serial", "-machine", "-M",
	    "-accel", "-display", "-cpu",  "-kernel", "-initrd", "-append",  NULL};
	const char *const *w = with_value;
	while (*w && strcmp(a, *w))
		w++;
	if (!*w)
		return vmm_refuse(err, n, "unknown option %s (see --help)", a);
	int e = take_value(argc, argv, i, NULL, &val, err, n);
	if (e)
		return e;
	if (!strcmp(a, "-m"))
		return parse_mem(val, o, err, n);
	if (!strcmp(a, "-smp"))
		return parse_smp(val, o, err, n);
	if (!strcmp(a, "-bios")) {
		o->bios_path = val;
		return 0;
	}
	if (!strcmp(a, "-device"))
		return parse_device(argv[*i], o, err, n);
	if (!strcmp(a, "-serial"))
		return parse_serial(val, o, err, n);
	if (!strcmp(a, "-kernel")) {
		o->kernel = val;
		return 0;
	}
	if (!strcmp(a, "-initrd")) {
		o->initrd = val;
		return 0;
	}
	if (!strcmp(a, "-append")) {
		o->append = val;
		return 0;
	}
	return qemu_noop(a, val, err, n);
}

int vmm_parse(int argc, char **argv, struct vmm_options *o, char *err, size_t n)
{
	*o =
	    (struct vmm_options){.ram_size = 128u << 20, .ncpus = 1, .bios_path = VMM_DEFAULT_BIOS};
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] != '-')
			return vmm_refuse(err, n, "unexpected argument '%s' (see --help)", argv[i]);
		int e = parse_one(argc, argv, &i, o, err, n);
		if (e)
			return e;
	}
	/* QEMU's rules: an empty -append alone is harmless, anything else needs a kernel. */
	if (!o->kernel && o->initrd)
		return vmm_refuse(err, n, "-initrd only allowed with -kernel option");
	if (!o->kernel && o->append && *o->append)
		return vmm_refuse(err, n, "-append only allowed with -kernel option");
	return assign_slots(o, err, n);
}

static int read_bios(struct vmm_options *o, char *err, size_t n)
{
	int fd = open(o->bios_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vmm_refuse(err, n, "cannot read BIOS '%s': %s", o->bios_path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return vmm_refuse(err, n, "BIOS '%s' is not a regular file", o->bios_path);
	}
	if (st.st_size <= 0 || st.st_size % 65536 || st.st_size > MAX_BIOS_SIZE) {
		close(fd);
		return vmm_refuse(err, n,
		                  "BIOS '%s' is %lld bytes: a ROM image must be a non-zero "
		                  "multiple of 64 KiB, at most 16 MiB",
		                  o->bios_path, (long long)st.st_size);
	}
	o->bios_size = (uint64_t)st.st_size;
	o->bios = malloc(o->bios_size);
	size_t got = 0;
	while (o->bios && got < o->bios_size) {
		ssize_t r = read(fd, o->bios + got, o->bios_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	int e = errno;
	close(fd);
	if (!o->bios || got != o->bios_size)
		return vmm_refuse(err, n, "cannot read BIOS '%s': %s", o->bios_path,
		                  o->bios ? (got < o->bios_size && e ? strerror(e) : "short read")
		                          : "out of memory");
	return 0;
}

int vmm_load_files(struct vmm_options *o, char *err, size_t n)
{
	int e = read_bios(o, err, n);
	if (!e && o->kernel)
		e = linux_check(o->kernel, o->initrd, o->append, o->ram_size, err, n);
	for (unsigned i = 0; !e && i < o->ndevices; i++) {
		const struct vmm_device_opt *d = &o->devices[i];
		if (d->kind != DEV_VIRTIO_BLK)
			continue;
		int fd = open(d->file, (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			e = vmm_refuse(err, n, "virtio-blk: cannot open '%s'%s: %s", d->file,
			               d->readonly ? "" : " for reading and writing",
			               strerror(errno));
		else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			e = vmm_refuse(err, n, "virtio-blk: '%s' is not a file or block device",
			               d->file);
		if (fd >= 0)
			close(fd);
	}
	return e;
}

void vmm_options_free(struct vmm_options *o)
{
	free(o->bios);
	o->bios = NULL;
}

void vmm_usage(FILE *out)
{
	fputs("usage: busmap-vmm [options]\n"
	      "  -m SIZE                guest RAM (MiB, or with K/M/G suffix; default 128)\n"
	      "  -smp N                 vCPUs (default 1)\n"
	      "  -bios FILE             firmware ROM (default " VMM_DEFAULT_BIOS ")\n"
	      "  -device isa-debug-exit[,iobase=0x501][,iosize=2]\n"
	      "  -device isa-debugcon[,iobase=0xe9][,file=PATH]\n"
	      "  -device virtio-blk,file=IMAGE[,addr=SLOT][,readonly=on]\n"
	      "  -device virtio-net[,addr=SLOT][,mac=52:54:00:12:34:56]\n"
	      "  -device pci-testdev[,addr=SLOT]\n"
	      "  -serial stdio|none|file:PATH   the 16550 UART at 0x3f8 (default stdio)\n"
	      "  -kernel BZIMAGE        boot this Linux kernel directly (no firmware code runs)\n"
	      "  -initrd FILE           its initial ramdisk (with -kernel)\n"
	      "  -append CMDLINE        its command line (with -kernel)\n"
	      "  --bar-layout=bhyve     place and enable every BAR before the guest starts\n"
	      "  --trace-map            print every BAR map, unmap and overlap as it happens\n"
	      "  --dump-map[=FILE]      print the flat views (info mtree -f) at exit\n"
	      "  --trace-unassigned     log accesses that reach no device\n"
	      "  --check-memslots       at exit, check memslots and ioeventfds against the map\n"
	      "  --help, --version\n"
	      "Accepted for QEMU compatibility: -M pc, -accel kvm, -enable-kvm, -cpu host,\n"
	      "-display none, -nographic, -no-reboot, -nodefaults.\n"
	      "Exit status: the guest's isa-debug-exit value v as (v << 1) | 1; 0 reset or power\n"
	      "off; 1 VMM error; 2 bad command line or file; 4 guest stopped; 6 KVM could not run\n"
	      "the guest.\n",
	      out);
}
