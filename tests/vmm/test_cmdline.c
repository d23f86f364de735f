/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-vmm's command line as a user relies on it: the defaults, every option and device
 * property in the forms QEMU users write, the QEMU options that are accepted as no-ops and
 * the variants that are not, and the checks of the BIOS and disk images before the run.
 * Every refusal must say what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* The parser keeps pointers into argv (file names): the copies live until the test ends. */
static char *arena[256];
static unsigned narena;
static char err[256];
static struct vmm_options opts;

static char *keep(const char *s)
{
	assert_true(narena < sizeof(arena) / sizeof(arena[0]));
	arena[narena] = strdup(s);
	assert_non_null(arena[narena]);
	return arena[narena++];
}

static int cleanup(void **state)
{
	(void)state;
	vmm_options_free(&opts);
	for (unsigned i = 0; i < narena; i++)
		free(arena[i]);
	narena = 0;
	return 0;
}

/* Parses "busmap-vmm" followed by the NULL-terminated arguments into opts. */
static int parse_list(const char *const *args)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = keep("busmap-vmm");
	for (; *args; args++) {
		assert_true(argc < 63);
		argv[argc++] = keep(*args);
	}
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	return vmm_parse(argc, argv, &opts, err, sizeof(err));
}

#define PARSE(...) parse_list((const char *const[]){__VA_ARGS__, NULL})

/* A refusal with -EINVAL and a message that contains each of the words. */
static void refused_with(int rc, const char *w1, const char *w2)
{
	assert_int_equal(rc, -EINVAL);
	if (!strstr(err, w1) || (w2 && !strstr(err, w2)))
		fail_msg("message '%s' does not name '%s'%s%s", err, w1, w2 ? " and " : "",
		         w2 ? w2 : "");
}

/* ---- options ---- */

static void test_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse_list((const char *const[]){NULL}), 0);
	assert_int_equal(opts.ram_size, 128 * MiB);
	assert_int_equal(opts.ncpus, 1);
	assert_string_equal(opts.bios_path, VMM_DEFAULT_BIOS);
	assert_string_equal(opts.bios_path, "/usr/share/seabios/bios.bin");
	assert_int_equal(opts.serial, SERIAL_STDIO);
	assert_int_equal(opts.ndevices, 0);
	assert_int_equal(opts.layout, LAYOUT_FIRMWARE);
	assert_false(opts.trace_map || opts.trace_unassigned || opts.dump_map ||
	             opts.check_memslots || opts.help || opts.version);
	assert_null(opts.bios);
}

static void test_memory_sizes(void **state)
{
	(void)state;
	static const struct {
		const char *arg;
		uint64_t size;
	} good[] = {
	    {"128", 128 * MiB},      {"1G", GiB},          {"1g", GiB},  {"512M", 512 * MiB},
	    {"size=256", 256 * MiB}, {"2048K", 2 * MiB},   {"1GB", GiB}, {"2", 2 * MiB},
	    {"256G", 256 * GiB},     {"size=3G", 3 * GiB},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(PARSE("-m", good[i].arg), 0);
		assert_int_equal(opts.ram_size, good[i].size);
	}
	/* The last -m wins, as in QEMU. */
	assert_int_equal(PARSE("-m", "1G", "-m", "64"), 0);
	assert_int_equal(opts.ram_size, 64 * MiB);

	static const char *const bad[] = {
	    "0", "-1", "1X", "1.5G", "", "size=", "G", "1GX", "0x10", "1 G", "64MM", "-0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused_with(PARSE("-m", bad[i]), "-m", NULL);
	refused_with(PARSE("-m", "1X"), "-m", "not a memory size");
	refused_with(PARSE("-m", " 64"), "-m", "not a memory size");
	refused_with(PARSE("-m", "+64"), "-m", "not a memory size");
	refused_with(PARSE("-m", "1.5G"), "1.5G", "not a memory size");
	/* Too big, too small or not whole pages: the range is in the message. */
	refused_with(PARSE("-m", "257G"), "out of range", NULL);
	refused_with(PARSE("-m", "1T"), "out of range", NULL);
	refused_with(PARSE("-m", "99999999999999999999"), "-m", NULL);
	refused_with(PARSE("-m", "18446744073709551615"), "out of range", NULL);
	refused_with(PARSE("-m", "1"), "out of range", NULL);
	refused_with(PARSE("-m", "1024K"), "out of range", NULL);
	refused_with(PARSE("-m", "4097K"), "out of range", NULL);
	refused_with(PARSE("-m", "0"), "out of range", NULL);
}

static void test_vcpu_counts(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-smp", "2"), 0);
	assert_int_equal(opts.ncpus, 2);
	assert_int_equal(PARSE("-smp", "cpus=4"), 0);
	assert_int_equal(opts.ncpus, 4);
	assert_int_equal(PARSE("-smp", "64"), 0);
	assert_int_equal(opts.ncpus, 64);
	assert_int_equal(PARSE("-smp", "1"), 0);
	assert_int_equal(opts.ncpus, 1);
	static const char *const bad[] = {"0",     "65", "garbage",    "",       "-1", "2x",
	                                  "cpus=", " 2", "4294967297", "cpus=0", "1.5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused_with(PARSE("-smp", bad[i]), "-smp", "1 to 64");
	refused_with(PARSE("-smp", "garbage"), "'garbage'", NULL);
}

static void test_serial(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-serial", "none"), 0);
	assert_int_equal(opts.serial, SERIAL_NONE);
	assert_int_equal(PARSE("-serial", "null"), 0);
	assert_int_equal(opts.serial, SERIAL_NONE);
	assert_int_equal(PARSE("-serial", "none", "-serial", "stdio"), 0);
	assert_int_equal(opts.serial, SERIAL_STDIO);
	assert_int_equal(PARSE("-serial", "file:/tmp/serial.log"), 0);
	assert_int_equal(opts.serial, SERIAL_FILE);
	assert_string_equal(opts.serial_path, "/tmp/serial.log");
	refused_with(PARSE("-serial", "file:"), "-serial", "file:PATH");
	refused_with(PARSE("-serial", "tcp::4444"), "-serial", "'tcp::4444'");
	refused_with(PARSE("-serial", "mon:stdio"), "-serial", NULL);
}

static void test_bar_layout_and_dump_map(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--bar-layout=bhyve"), 0);
	assert_int_equal(opts.layout, LAYOUT_BHYVE);
	assert_int_equal(PARSE("--bar-layout=bhyve", "--bar-layout=firmware"), 0);
	assert_int_equal(opts.layout, LAYOUT_FIRMWARE);
	assert_int_equal(PARSE("--bar-layout=bhyve", "--bar-layout"), 0);
	assert_int_equal(opts.layout, LAYOUT_FIRMWARE);
	refused_with(PARSE("--bar-layout=linux"), "--bar-layout=linux", "bhyve or firmware");
	/* Long options take their value after '=' only. */
	refused_with(PARSE("--bar-layout", "bhyve"), "unexpected argument 'bhyve'", NULL);

	assert_int_equal(PARSE("--dump-map"), 0);
	assert_true(opts.dump_map);
	assert_null(opts.dump_map_path);
	assert_int_equal(PARSE("--dump-map=/tmp/map.txt"), 0);
	assert_true(opts.dump_map);
	assert_string_equal(opts.dump_map_path, "/tmp/map.txt");
}

static void test_flags(void **state)
{
	(void)state;
	assert_int_equal(
	    PARSE("--trace-map", "--trace-unassigned", "--check-memslots", "--help", "--version"),
	    0);
	assert_true(opts.trace_map && opts.trace_unassigned && opts.check_memslots && opts.help &&
	            opts.version);
	assert_false(opts.dump_map);
	assert_int_equal(PARSE("-h"), 0);
	assert_true(opts.help);
	refused_with(PARSE("--trace-map=yes"), "--trace-map", "takes no value");
	refused_with(PARSE("--help=1"), "--help", "takes no value");
	assert_int_equal(PARSE("-bios", "/opt/fw/OVMF.fd"), 0);
	assert_string_equal(opts.bios_path, "/opt/fw/OVMF.fd");
}

static void test_qemu_options(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-M", "pc", "-machine", "pc,accel=kvm", "-machine", "type=pc",
	                       "-accel", "kvm", "-accel", "kvm,kernel-irqchip=on", "-cpu", "host",
	                       "-cpu", "host,+x2apic", "-display", "none", "-nographic",
	                       "-no-reboot", "-enable-kvm", "-nodefaults", "-no-hpet"),
	                 0);
	/* Nothing else changed. */
	assert_int_equal(opts.ram_size, 128 * MiB);
	assert_int_equal(opts.ndevices, 0);

	refused_with(PARSE("-M", "q35"), "q35", "only the pc machine");
	refused_with(PARSE("-machine", "pc-q35-8.0"), "pc-q35-8.0", "pc machine");
	refused_with(PARSE("-machine", "microvm"), "microvm", NULL);
	refused_with(PARSE("-accel", "tcg"), "tcg", "kvm only");
	refused_with(PARSE("-accel", "kvmx"), "kvmx", NULL);
	refused_with(PARSE("-cpu", "max"), "max", "-cpu host");
	refused_with(PARSE("-cpu", "hostile"), "hostile", NULL);
	refused_with(PARSE("-display", "gtk"), "gtk", "none");
}

static void test_bad_arguments(void **state)
{
	(void)state;
	refused_with(PARSE("-foo"), "unknown option -foo", "--help");
	refused_with(PARSE("--foo"), "unknown option --foo", NULL);
	refused_with(PARSE("--foo=bar"), "unknown option --foo", NULL);
	refused_with(PARSE("-"), "unknown option -", NULL);
	refused_with(PARSE("--"), "unknown option --", NULL);
	refused_with(PARSE("-mem"), "unknown option -mem", NULL);
	char long_name[200];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[0] = long_name[1] = '-';
	long_name[sizeof(long_name) - 1] = 0;
	refused_with(PARSE(long_name), "unknown option --xxxx", NULL);

	static const char *const need_value[] = {
	    "-m",     "-smp",     "-bios", "-device", "-serial", "-machine", "-M",
	    "-accel", "-display", "-cpu",  "-kernel", "-initrd", "-append"};
	for (size_t i = 0; i < sizeof(need_value) / sizeof(need_value[0]); i++) {
		refused_with(PARSE(need_value[i]), need_value[i], "needs a value");
		/* The option before the missing value is kept: -m 64 -m is still refused. */
		refused_with(PARSE("-m", "64", need_value[i]), "needs a value", NULL);
	}
	refused_with(PARSE("disk.img"), "unexpected argument 'disk.img'", NULL);
	refused_with(PARSE("-m", "64", "disk.img"), "'disk.img'", NULL);
	refused_with(PARSE(""), "unexpected argument ''", NULL);
}

/* QEMU's rules for booting a kernel directly: its ramdisk and command line need it. */
static void test_kernel_options(void **state)
{
	(void)state;
	assert_int_equal(
	    PARSE("-kernel", "bzImage", "-initrd", "initrd.img", "-append", "console=ttyS0 quiet"),
	    0);
	assert_string_equal(opts.kernel, "bzImage");
	assert_string_equal(opts.initrd, "initrd.img");
	assert_string_equal(opts.append, "console=ttyS0 quiet");
	assert_int_equal(PARSE("-append", ""), 0);
	assert_null(opts.kernel);
	refused_with(PARSE("-initrd", "initrd.img"), "-initrd", "-kernel");
	refused_with(PARSE("-append", "console=ttyS0"), "-append", "-kernel");
	refused_with(PARSE("-kernel"), "-kernel", "needs a value");
}

/* A short error buffer gets a cut, terminated message. */
static void test_short_error_buffer(void **state)
{
	(void)state;
	char *argv[] = {keep("busmap-vmm"), keep("-m"), keep("1X"), NULL};
	char small[8];
	memset(small, 'z', sizeof(small));
	assert_int_equal(vmm_parse(3, argv, &opts, small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, "-m: '1X", 7);
}

/* ---- devices ---- */

static void test_device_defaults(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-device", "isa-debug-exit", "-device", "isa-debugcon", "-device",
	                       "virtio-blk,file=disk.img", "-device", "virtio-net", "-device",
	                       "pci-testdev"),
	                 0);
	assert_int_equal(opts.ndevices, 5);
	const struct vmm_device_opt *d = opts.devices;
	assert_int_equal(d[0].kind, DEV_DEBUG_EXIT);
	assert_int_equal(d[0].iobase, 0x501);
	assert_int_equal(d[0].iosize, 2);
	assert_int_equal(d[0].slot, -1);
	assert_int_equal(d[1].kind, DEV_DEBUGCON);
	assert_int_equal(d[1].iobase, 0xe9);
	assert_null(d[1].file);
	assert_int_equal(d[1].slot, -1);
	assert_int_equal(d[2].kind, DEV_VIRTIO_BLK);
	assert_string_equal(d[2].file, "disk.img");
	assert_false(d[2].readonly);
	assert_int_equal(d[2].slot, 2);
	assert_int_equal(d[3].kind, DEV_VIRTIO_NET);
	static const uint8_t qemu_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	assert_memory_equal(d[3].mac, qemu_mac, 6);
	assert_int_equal(d[3].slot, 3);
	assert_int_equal(d[4].kind, DEV_PCI_TESTDEV);
	assert_int_equal(d[4].slot, 4);

	/* QEMU's names with -pci work too. */
	assert_int_equal(PARSE("-device", "virtio-blk-pci,file=a", "-device", "virtio-net-pci"), 0);
	assert_int_equal(opts.devices[0].kind, DEV_VIRTIO_BLK);
	assert_int_equal(opts.devices[1].kind, DEV_VIRTIO_NET);
}

static void test_device_properties(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-device", "isa-debug-exit,iobase=0xf4,iosize=0x4"), 0);
	assert_int_equal(opts.devices[0].iobase, 0xf4);
	assert_int_equal(opts.devices[0].iosize, 4);
	assert_int_equal(PARSE("-device", "isa-debug-exit,iosize=1,iobase=65535"), 0);
	assert_int_equal(opts.devices[0].iobase, 0xffff);
	assert_int_equal(opts.devices[0].iosize, 1);
	refused_with(PARSE("-device", "isa-debug-exit,iosize=3"), "iosize=3", "1, 2 or 4");
	refused_with(PARSE("-device", "isa-debug-exit,iosize=8"), "iosize=8", NULL);
	refused_with(PARSE("-device", "isa-debug-exit,iobase=0x10000"), "iobase=0x10000",
	             "not a port");
	refused_with(PARSE("-device", "isa-debug-exit,iobase=-1"), "iobase=-1", NULL);
	refused_with(PARSE("-device", "isa-debug-exit,iobase=port"), "iobase=port", NULL);

	assert_int_equal(PARSE("-device", "isa-debugcon,iobase=0x402,file=/tmp/con.log"), 0);
	assert_int_equal(opts.devices[0].iobase, 0x402);
	assert_string_equal(opts.devices[0].file, "/tmp/con.log");
	refused_with(PARSE("-device", "isa-debugcon,iosize=2"), "unknown property 'iosize'", NULL);

	assert_int_equal(PARSE("-device", "virtio-blk,file=d.img,readonly=on"), 0);
	assert_true(opts.devices[0].readonly);
	static const char *const yes[] = {"on", "true", "yes"}, *const no[] = {"off", "false",
	                                                                       "no"};
	char arg[64];
	for (int i = 0; i < 3; i++) {
		snprintf(arg, sizeof(arg), "virtio-blk,readonly=%s,file=x", yes[i]);
		assert_int_equal(PARSE("-device", arg), 0);
		assert_true(opts.devices[0].readonly);
		snprintf(arg, sizeof(arg), "virtio-blk,readonly=%s,file=x", no[i]);
		assert_int_equal(PARSE("-device", arg), 0);
		assert_false(opts.devices[0].readonly);
	}
	refused_with(PARSE("-device", "virtio-blk,file=x,readonly=maybe"), "readonly=maybe",
	             "on or off");
	refused_with(PARSE("-device", "virtio-blk"), "virtio-blk", "needs file=IMAGE");
	refused_with(PARSE("-device", "virtio-blk,readonly=on"), "needs file=IMAGE", NULL);
	refused_with(PARSE("-device", "virtio-blk,file="), "file= is empty", NULL);
	refused_with(PARSE("-device", "virtio-blk,file"), "'file' needs a value", NULL);
	refused_with(PARSE("-device", "virtio-blk,file=x,iobase=0x10"), "unknown property 'iobase'",
	             NULL);

	assert_int_equal(PARSE("-device", "virtio-net,mac=02:aB:cd:EF:00:09"), 0);
	static const uint8_t mac[6] = {0x02, 0xab, 0xcd, 0xef, 0x00, 0x09};
	assert_memory_equal(opts.devices[0].mac, mac, 6);
	static const char *const bad_macs[] = {"02:ab:cd:ef:00",
	                                       "02:ab:cd:ef:00:09:aa",
	                                       "02:ab:cd:ef:00:0g",
	                                       "02-ab-cd-ef-00-09",
	                                       "",
	                                       "02:ab:cd:ef:00:09x"};
	for (size_t i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++) {
		snprintf(arg, sizeof(arg), "virtio-net,mac=%s", bad_macs[i]);
		refused_with(PARSE("-device", arg), "not a MAC address", NULL);
	}
	refused_with(PARSE("-device", "pci-testdev,file=x"), "pci-testdev",
	             "unknown property 'file'");
	refused_with(PARSE("-device", "virtio-scsi"), "unknown device 'virtio-scsi'", NULL);
	refused_with(PARSE("-device", ""), "-device", NULL);
	refused_with(PARSE("-device", ",addr=3"), "-device", NULL);
}

static void test_pci_addresses(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		int slot;
	} good[] = {{"3", 3},   {"0x1f", 31}, {"03.0", 3},  {"1f", 31},
	            {"0x2", 2}, {"a", 10},    {"0A.0", 10}, {"2.0", 2}};
	char arg[64];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(arg, sizeof(arg), "pci-testdev,addr=%s", good[i].addr);
		assert_int_equal(PARSE("-device", arg), 0);
		assert_int_equal(opts.devices[0].slot, good[i].slot);
	}
	static const char *const not_slots[] = {"3.1",
	                                        "3.",
	                                        "20",
	                                        "0x20",
	                                        "x",
	                                        "",
	                                        "3.0.0",
	                                        "-3",
	                                        "3:0",
	                                        "0000:00:03.0",
	                                        "0000000000000031",
	                                        "0x0000000000001f.0"};
	for (size_t i = 0; i < sizeof(not_slots) / sizeof(not_slots[0]); i++) {
		snprintf(arg, sizeof(arg), "virtio-net,addr=%s", not_slots[i]);
		refused_with(PARSE("-device", arg), "not a slot", "function 0");
	}
	refused_with(PARSE("-device", "pci-testdev,addr=0"), "slot 0", "taken by the chipset");
	refused_with(PARSE("-device", "pci-testdev,addr=1.0"), "slot 1", "chipset");
	/* ISA devices have no slot. */
	refused_with(PARSE("-device", "isa-debug-exit,addr=3"), "unknown property 'addr'", NULL);

	refused_with(PARSE("-device", "virtio-net,addr=5", "-device", "pci-testdev,addr=05.0"),
	             "slot 0x5", "used twice");
	refused_with(PARSE("-device", "virtio-net,addr=0x1f", "-device", "pci-testdev", "-device",
	                   "virtio-blk,file=x,addr=1f"),
	             "slot 0x1f", "used twice");

	/* The others take the lowest free slots in command-line order, around explicit ones. */
	assert_int_equal(PARSE("-device", "pci-testdev", "-device", "virtio-net,addr=2", "-device",
	                       "isa-debug-exit", "-device", "virtio-blk,file=x", "-device",
	                       "virtio-net,addr=4", "-device", "pci-testdev"),
	                 0);
	assert_int_equal(opts.devices[0].slot, 3);
	assert_int_equal(opts.devices[1].slot, 2);
	assert_int_equal(opts.devices[2].slot, -1);
	assert_int_equal(opts.devices[3].slot, 5);
	assert_int_equal(opts.devices[4].slot, 4);
	assert_int_equal(opts.devices[5].slot, 6);
}

static void test_device_limit(void **state)
{
	(void)state;
	const char *args[2 * (VMM_MAX_DEVICES + 1) + 1];
	for (int i = 0; i < VMM_MAX_DEVICES; i++) {
		args[2 * i] = "-device";
		args[2 * i + 1] = "pci-testdev";
	}
	args[2 * VMM_MAX_DEVICES] = NULL;
	assert_int_equal(parse_list(args), 0);
	assert_int_equal(opts.ndevices, VMM_MAX_DEVICES);
	/* 24 PCI devices in 24 distinct slots from 2 up. */
	for (int i = 0; i < VMM_MAX_DEVICES; i++)
		assert_int_equal(opts.devices[i].slot, 2 + i);
	args[2 * VMM_MAX_DEVICES] = "-device";
	args[2 * VMM_MAX_DEVICES + 1] = "isa-debugcon";
	args[2 * VMM_MAX_DEVICES + 2] = NULL;
	refused_with(parse_list(args), "more than 24 devices", NULL);
}

static void test_usage_names_everything(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	vmm_usage(f);
	fclose(f);
	static const char *const words[] = {"-m SIZE",
	                                    "-smp",
	                                    "-bios",
	                                    "isa-debug-exit",
	                                    "isa-debugcon",
	                                    "virtio-blk",
	                                    "virtio-net",
	                                    "pci-testdev",
	                                    "-serial",
	                                    "--bar-layout=bhyve",
	                                    "--trace-map",
	                                    "--dump-map",
	                                    "--trace-unassigned",
	                                    "--check-memslots",
	                                    "--help",
	                                    "--version",
	                                    "readonly=on",
	                                    "addr=SLOT",
	                                    "mac="};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strstr(text, words[i]))
			fail_msg("usage does not mention %s", words[i]);
	free(text);
}

/* ---- files ---- */

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/busmap-cmdline-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int remove_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* A file in the scratch directory of size bytes, byte i being i * 7; returns its path. */
static char *make_file(const char *name, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	uint8_t buf[4096];
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((done + i) * 7);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	close(fd);
	return keep(path);
}

static char *path_in_dir(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return keep(path);
}

static int load(const char *bios, const char *device)
{
	int rc = device ? PARSE("-bios", bios, "-device", device) : PARSE("-bios", bios);
	assert_int_equal(rc, 0);
	memset(err, 0, sizeof(err));
	return vmm_load_files(&opts, err, sizeof(err));
}

static void test_bios_files(void **state)
{
	(void)state;
	char *good = make_file("bios.bin", 65536);
	assert_int_equal(load(good, NULL), 0);
	assert_int_equal(opts.bios_size, 65536);
	assert_non_null(opts.bios);
	for (size_t i = 0; i < 65536; i += 4099)
		assert_int_equal(opts.bios[i], (uint8_t)(i * 7));
	vmm_options_free(&opts);
	assert_null(opts.bios);
	vmm_options_free(&opts); /* twice is harmless */

	char *big = make_file("bios-256k.bin", 4 * 65536);
	assert_int_equal(load(big, NULL), 0);
	assert_int_equal(opts.bios_size, 4 * 65536);
	vmm_options_free(&opts);

	char *missing = path_in_dir("no-such-bios.bin");
	refused_with(load(missing, NULL), missing, strerror(ENOENT));
	assert_null(opts.bios);

	static const size_t bad_sizes[] = {1000, 65537, 0, 65535, 3 * 32768};
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		char name[32], size[32];
		snprintf(name, sizeof(name), "bios-%zu.bin", bad_sizes[i]);
		snprintf(size, sizeof(size), "is %zu bytes", bad_sizes[i]);
		char *p = make_file(name, bad_sizes[i]);
		refused_with(load(p, NULL), p, size);
		assert_true(strstr(err, "multiple of 64 KiB") != NULL);
		assert_null(opts.bios);
	}
	/* Past 16 MiB (sparse, so it costs nothing). */
	char *huge = make_file("bios-huge.bin", 0);
	assert_int_equal(truncate(huge, (16 << 20) + 65536), 0);
	refused_with(load(huge, NULL), huge, "at most 16 MiB");

	/* A directory is no ROM image. */
	refused_with(load(dir, NULL), dir, "not a regular file");
	assert_null(opts.bios);
}

static void test_disk_images(void **state)
{
	(void)state;
	char *bios = make_file("bios.bin", 65536);
	char *image = make_file("disk.img", 4096);
	char arg[256];
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s", image);
	assert_int_equal(load(bios, arg), 0);
	vmm_options_free(&opts);

	char *missing = path_in_dir("no-such.img");
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s", missing);
	refused_with(load(bios, arg), missing, "for reading and writing");
	assert_true(strstr(err, strerror(ENOENT)) != NULL);
	assert_true(strstr(err, "virtio-blk") != NULL);
	vmm_options_free(&opts);
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s,readonly=on", missing);
	refused_with(load(bios, arg), missing, strerror(ENOENT));
	assert_null(strstr(err, "writing"));
	vmm_options_free(&opts);

	/* A directory: refused to be written, and refused read-only for not being a disk. */
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s", dir);
	refused_with(load(bios, arg), dir, strerror(EISDIR));
	vmm_options_free(&opts);
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s,readonly=on", dir);
	refused_with(load(bios, arg), dir, "not a file or block device");
	vmm_options_free(&opts);

	/* The BIOS is checked first: its error is the one reported. */
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s", missing);
	refused_with(load(path_in_dir("no-bios"), arg), "BIOS", "no-bios");
	vmm_options_free(&opts);
}

/* An image the VMM may read but not write: readonly=on takes it, the default refuses it.
 * Root ignores permission bits, so as root the test uses its own executable, which the
 * kernel will not open for writing while it runs; where even that opens, it is skipped. */
static void test_read_only_image(void **state)
{
	(void)state;
	char *bios = make_file("bios.bin", 65536);
	char *image = make_file("ro.img", 4096);
	assert_int_equal(chmod(image, 0444), 0);
	int fd = open(image, O_RDWR);
	if (fd >= 0) {
		close(fd);
		image = keep("/proc/self/exe");
		fd = open(image, O_RDWR);
		if (fd >= 0) {
			close(fd);
			skip();
		}
	}
	int why = errno;
	char arg[256];
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s,readonly=on", image);
	assert_int_equal(load(bios, arg), 0);
	vmm_options_free(&opts);
	snprintf(arg, sizeof(arg), "virtio-blk,file=%s", image);
	refused_with(load(bios, arg), image, "for reading and writing");
	assert_true(strstr(err, strerror(why)) != NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_defaults, cleanup),
	    cmocka_unit_test_teardown(test_memory_sizes, cleanup),
	    cmocka_unit_test_teardown(test_vcpu_counts, cleanup),
	    cmocka_unit_test_teardown(test_serial, cleanup),
	    cmocka_unit_test_teardown(test_bar_layout_and_dump_map, cleanup),
	    cmocka_unit_test_teardown(test_flags, cleanup),
	    cmocka_unit_test_teardown(test_qemu_options, cleanup),
	    cmocka_unit_test_teardown(test_bad_arguments, cleanup),
	    cmocka_unit_test_teardown(test_kernel_options, cleanup),
	    cmocka_unit_test_teardown(test_short_error_buffer, cleanup),
	    cmocka_unit_test_teardown(test_device_defaults, cleanup),
	    cmocka_unit_test_teardown(test_device_properties, cleanup),
	    cmocka_unit_test_teardown(test_pci_addresses, cleanup),
	    cmocka_unit_test_teardown(test_device_limit, cleanup),
	    cmocka_unit_test_teardown(test_usage_names_everything, cleanup),
	    cmocka_unit_test_teardown(test_bios_files, cleanup),
	    cmocka_unit_test_teardown(test_disk_images, cleanup),
	    cmocka_unit_test_teardown(test_read_only_image, cleanup),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
