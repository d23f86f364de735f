/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Replays of small hand-written traces, written to follow QEMU's rules: a bridge with a
 * device behind it, a 64-bit BAR and a ROM, address 0 on both kinds of machine, a mapping
 * no write explains, a mapping of a BAR that was never sized; and the "info mtree -f"
 * comparison on its own.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "qemu_mtree.h"
#include "qemu_replay.h"

static struct qemu_trace *parse(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	struct qemu_trace *t = NULL;
	struct qemu_error err;
	int ret = qemu_trace_parse(f, NULL, &t, &err);
	fclose(f);
	if (ret)
		print_message("line %u: %s\n", err.line, err.message);
	assert_int_equal(ret, 0);
	return t;
}

static struct qemu_replay *replay_all(const struct qemu_trace *t, bool decode_zero)
{
	struct qemu_replay_options opt = {.decode_zero = decode_zero};
	struct qemu_replay *r = NULL;
	struct qemu_error err;
	int ret = qemu_replay_new(t, &opt, &r, &err);
	if (ret)
		print_message("setup line %u: %s\n", err.line, err.message);
	assert_int_equal(ret, 0);
	ret = qemu_replay_run(r, 0, &err);
	if (ret)
		print_message("replay line %u: %s\n", err.line, err.message);
	assert_int_equal(ret, 0);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	for (size_t i = 0; i < res->divergences && i < QEMU_REPLAY_MAX_RECORDED; i++)
		print_message("divergence at line %u\n", res->divergence[i].line);
	for (size_t i = 0; i < res->read_mismatches && i < QEMU_REPLAY_MAX_RECORDED; i++)
		print_message("read mismatch at line %u: QEMU 0x%x busmap 0x%x\n",
		              res->mismatch[i].line, res->mismatch[i].expected,
		              res->mismatch[i].actual);
	return r;
}

static const char bridge_trace[] =
    "pci_cfg_read gpex-root 00:00.0 @0x0 -> 0x1b36\n"
    "pci_cfg_read gpex-root 00:00.0 @0xe -> 0x0\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x0 -> 0x11b36\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x8 -> 0x6040000\n"
    "pci_cfg_read pci-bridge 00:01.0 @0xe -> 0x1\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x1c -> 0x101\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x10 <- 0xffffffff\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x10 -> 0xffffff00\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x14 <- 0xffffffff\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x14 -> 0x0\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x38 <- 0xfffff800\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x38 -> 0x0\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x18 <- 0x10100\n"
    "pci_cfg_read virtio-net-pci 01:00.0 @0x0 -> 0x10001af4\n"
    "pci_cfg_read virtio-net-pci 01:00.0 @0xe -> 0x0\n"
    "pci_cfg_write virtio-net-pci 01:00.0 @0x10 <- 0xffffffff\n"
    "pci_cfg_read virtio-net-pci 01:00.0 @0x10 -> 0xffffffe1\n"
    "pci_cfg_write virtio-net-pci 01:00.0 @0x10 <- 0x2000\n"
    "pci_cfg_write virtio-net-pci 01:00.0 @0x14 <- 0xffffffff\n"
    "pci_cfg_read virtio-net-pci 01:00.0 @0x14 -> 0xfffff000\n"
    "pci_cfg_write virtio-net-pci 01:00.0 @0x14 <- 0x20000000\n"
    "pci_cfg_write virtio-net-pci 01:00.0 @0x4 <- 0x3\n"
    "pci_update_mappings_add virtio-net-pci 01:00.0 0,0x2000+0x20\n"
    "pci_update_mappings_add virtio-net-pci 01:00.0 1,0x20000000+0x1000\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x10 <- 0x30000000\n"
    "pci_cfg_write pci-bridge 00:01.0 @0x4 <- 0x7\n"
    "pci_update_mappings_add pci-bridge 00:01.0 0,0x30000000+0x100\n"
    "pci_cfg_read virtio-net-pci 01:00.0 @0x10 -> 0x2001\n"
    "pci_cfg_read pci-bridge 00:01.0 @0x18 -> 0x10100\n";

static void test_bridge(void **state)
{
	(void)state;
	struct qemu_trace *t = parse(bridge_trace);
	struct qemu_replay *r = replay_all(t, false);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 0);
	assert_int_equal(res->qemu_events, 3);
	assert_int_equal(res->busmap_events, 3);
	assert_int_equal(res->read_mismatches, 0);
	assert_int_equal(res->width_inferred, 26);

	size_t n;
	const struct qemu_replay_device *devs = qemu_replay_devices(r, &n);
	assert_int_equal(n, 3);
	const struct qemu_replay_device *bridge = &devs[1];
	assert_int_equal(bridge->bdf, QEMU_TRACE_BDF(0, 1, 0));
	assert_int_equal(bridge->header_type, 1);
	assert_int_equal(bridge->secondary_bus, 1);
	assert_int_equal(bridge->bars[0].type, BM_PCI_BAR_MEM32);
	assert_int_equal(bridge->bars[0].size, 0x100);
	assert_int_equal(bridge->bars[1].type, BM_PCI_BAR_NONE);
	assert_int_equal(bridge->bars[BM_PCI_ROM].type, BM_PCI_BAR_NONE);
	const struct qemu_replay_device *nic = &devs[2];
	assert_int_equal(nic->bars[0].type, BM_PCI_BAR_IO);
	assert_int_equal(nic->bars[0].size, 0x20);
	assert_int_equal(nic->bars[0].line, 17);
	assert_int_equal(nic->bars[1].type, BM_PCI_BAR_MEM32);
	assert_int_equal(nic->bars[1].size, 0x1000);

	bm_pci_func *f = bm_pci_func_find(qemu_replay_host(r), 0, 1, 0);
	assert_non_null(f);
	assert_true(bm_pci_func_is_bridge(f));
	f = bm_pci_func_find(qemu_replay_host(r), 1, 0, 0);
	assert_non_null(f);
	assert_ptr_equal(bm_pci_bus_bridge(bm_pci_func_bus(f)),
	                 bm_pci_func_find(qemu_replay_host(r), 0, 1, 0));

	struct qemu_replay_bar *bars;
	assert_int_equal(qemu_replay_busmap_map(r, &bars, &n), 0);
	assert_int_equal(n, 3);
	assert_false(bars[0].io); /* memory first, by address */
	assert_int_equal(bars[0].addr, 0x20000000);
	assert_int_equal(bars[1].addr, 0x30000000);
	assert_true(bars[2].io);
	assert_int_equal(bars[2].bdf, QEMU_TRACE_BDF(1, 0, 0));
	assert_int_equal(bars[2].addr, 0x2000);
	free(bars);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

/* Firmware numbers two root ports 1-4 and 5 (room left behind the first) and maps the BAR
 * of the function behind the second, at 05:00.0; the OS closes both ports, numbers them
 * 1 and 2 and moves the BAR, now at 02:00.0. One function, two numbers. */
static const char renumber_trace[] =
    "pci_cfg_read pcie-root-port 00:02.0 @0x0 -> 0xc1b36\n"
    "pci_cfg_read pcie-root-port 00:02.0 @0xe -> 0x1\n"
    "pci_cfg_read pcie-root-port 00:03.0 @0x0 -> 0xc1b36\n"
    "pci_cfg_read pcie-root-port 00:03.0 @0xe -> 0x1\n"
    "pci_cfg_write pcie-root-port 00:02.0 @0x19 <- 0xff\n"
    "pci_cfg_write pcie-root-port 00:03.0 @0x19 <- 0xff\n"
    "pci_cfg_write pcie-root-port 00:02.0 @0x19 <- 0x1\n"
    "pci_cfg_write pcie-root-port 00:02.0 @0x1a <- 0x4\n"
    "pci_cfg_write pcie-root-port 00:03.0 @0x19 <- 0x5\n"
    "pci_cfg_write pcie-root-port 00:03.0 @0x1a <- 0x5\n"
    "pci_cfg_read virtio-blk-pci 05:00.0 @0x0 -> 0x10421af4\n"
    "pci_cfg_read virtio-blk-pci 05:00.0 @0xe -> 0x0\n"
    "pci_cfg_write virtio-blk-pci 05:00.0 @0x10 <- 0xffffffff\n"
    "pci_cfg_read virtio-blk-pci 05:00.0 @0x10 -> 0xfffff000\n"
    "pci_cfg_write virtio-blk-pci 05:00.0 @0x10 <- 0xfe000000\n"
    "pci_cfg_write virtio-blk-pci 05:00.0 @0x4 <- 0x2\n"
    "pci_update_mappings_add virtio-blk-pci 05:00.0 0,0xfe000000+0x1000\n"
    "pci_cfg_write pcie-root-port 00:02.0 @0x18 <- 0x0\n"
    "pci_cfg_write pcie-root-port 00:03.0 @0x18 <- 0x0\n"
    "pci_cfg_read pcie-root-port 00:03.0 @0x18 -> 0x0\n"
    "pci_cfg_write pcie-root-port 00:02.0 @0x18 <- 0x10100\n"
    "pci_cfg_write pcie-root-port 00:03.0 @0x18 <- 0x20200\n"
    "pci_cfg_read virtio-blk-pci 02:00.0 @0x0 -> 0x10421af4\n"
    "pci_cfg_read virtio-blk-pci 02:00.0 @0x10 -> 0xfe000000\n"
    "pci_cfg_write virtio-blk-pci 02:00.0 @0x10 <- 0xfe100000\n"
    "pci_update_mappings_del virtio-blk-pci 02:00.0 0,0xfe000000+0x1000\n"
    "pci_update_mappings_add virtio-blk-pci 02:00.0 0,0xfe100000+0x1000\n";

static void test_renumbered_buses(void **state)
{
	(void)state;
	struct qemu_trace *t = parse(renumber_trace);
	struct qemu_replay *r = replay_all(t, false);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 0);
	assert_int_equal(res->read_mismatches, 0);
	assert_int_equal(res->qemu_events, 3);
	assert_int_equal(res->busmap_events, 3);
	size_t n;
	const struct qemu_replay_device *devs = qemu_replay_devices(r, &n);
	assert_int_equal(n, 3);
	assert_int_equal(devs[2].bdf, QEMU_TRACE_BDF(5, 0, 0));
	assert_int_equal(devs[2].bars[0].size, 0x1000);
	bm_pci_func *f = bm_pci_func_find(qemu_replay_host(r), 2, 0, 0);
	assert_non_null(f);
	assert_ptr_equal(qemu_replay_device_of(r, f), &devs[2]);
	assert_null(bm_pci_func_find(qemu_replay_host(r), 5, 0, 0));
	struct qemu_replay_bar *bm, *q;
	assert_int_equal(qemu_replay_busmap_map(r, &bm, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bm[0].bdf, QEMU_TRACE_BDF(2, 0, 0));
	assert_int_equal(bm[0].addr, 0xfe100000);
	free(bm);
	assert_int_equal(qemu_replay_qemu_map(r, &q, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(q[0].bdf, QEMU_TRACE_BDF(2, 0, 0));
	free(q);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

/* A bus number no bridge leads to when it is used is refused with its line, even if a
 * bridge leads there later. */
static void test_unrouted_bus(void **state)
{
	(void)state;
	struct qemu_trace *t = parse("pci_cfg_read pcie-root-port 00:02.0 @0xe -> 0x1\n"
	                             "pci_cfg_read virtio-blk-pci 01:00.0 @0x0 -> 0x10421af4\n"
	                             "pci_cfg_write pcie-root-port 00:02.0 @0x19 <- 0x1\n");
	struct qemu_replay *r = NULL;
	struct qemu_error err;
	assert_int_equal(qemu_replay_new(t, NULL, &r, &err), -EBADMSG);
	assert_null(r);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.message, "no bridge"));
	qemu_trace_free(t);
}

/* A 64-bit BAR placed above 4 GiB, a ROM enabled, then the BAR's upper half cleared: the
 * address becomes 0, which only arm "virt" decodes. */
static const char wide_trace_head[] = "pci_cfg_read edu 00:02.0 @0x0 -> 0x11e81234\n"
                                      "pci_cfg_write edu 00:02.0 @0x10 <- 0xffffffff\n"
                                      "pci_cfg_read edu 00:02.0 @0x10 -> 0xffffc00c\n"
                                      "pci_cfg_write edu 00:02.0 @0x14 <- 0xffffffff\n"
                                      "pci_cfg_read edu 00:02.0 @0x14 -> 0xffffffff\n"
                                      "pci_cfg_write edu 00:02.0 @0x30 <- 0xfffffffe\n"
                                      "pci_cfg_read edu 00:02.0 @0x30 -> 0xfffc0000\n"
                                      "pci_cfg_write edu 00:02.0 @0x10 <- 0x0\n"
                                      "pci_cfg_write edu 00:02.0 @0x14 <- 0x1\n"
                                      "pci_cfg_write edu 00:02.0 @0x30 <- 0x40000001\n"
                                      "pci_cfg_write edu 00:02.0 @0x4 <- 0x2\n"
                                      "pci_update_mappings_add edu 00:02.0 0,0x100000000+0x4000\n"
                                      "pci_update_mappings_add edu 00:02.0 6,0x40000000+0x40000\n"
                                      "pci_cfg_read edu 00:02.0 @0x10 -> 0xc\n"
                                      "pci_cfg_read edu 00:02.0 @0x30 -> 0x40000001\n"
                                      "pci_cfg_write edu 00:02.0 @0x14 <- 0x0\n"
                                      "pci_update_mappings_del edu 00:02.0 0,0x100000000+0x4000\n";

static void replay_wide(bool decode_zero, const char *tail, size_t events)
{
	char text[sizeof(wide_trace_head) + 128];
	snprintf(text, sizeof(text), "%s%s", wide_trace_head, tail);
	struct qemu_trace *t = parse(text);
	struct qemu_replay *r = replay_all(t, decode_zero);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 0);
	assert_int_equal(res->read_mismatches, 0);
	assert_int_equal(res->qemu_events, events);
	assert_int_equal(res->busmap_events, events);
	size_t n;
	const struct qemu_replay_device *d = qemu_replay_devices(r, &n);
	assert_int_equal(n, 1);
	assert_int_equal(d->bars[0].type, BM_PCI_BAR_MEM64);
	assert_true(d->bars[0].prefetchable);
	assert_int_equal(d->bars[0].size, 0x4000);
	assert_int_equal(d->bars[1].type, BM_PCI_BAR_NONE);
	assert_int_equal(d->bars[BM_PCI_ROM].size, 0x40000);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

static void test_wide_bar_and_zero(void **state)
{
	(void)state;
	replay_wide(false, "", 3);
	replay_wide(true, "pci_update_mappings_add edu 00:02.0 0,0x0+0x4000\n", 4);
	/* The wrong machine shows as a divergence at the write that moved the BAR to 0. */
	struct qemu_trace *t = parse(wide_trace_head);
	struct qemu_replay *r = replay_all(t, true);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 1);
	assert_int_equal(res->divergence[0].write_line, 16);
	assert_int_equal(res->divergence[0].line, 16);
	assert_false(res->divergence[0].have_expected);
	assert_true(res->divergence[0].have_actual && res->divergence[0].actual.mapped);
	assert_int_equal(res->divergence[0].actual.addr, 0);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

static void test_unexplained_mapping(void **state)
{
	(void)state;
	struct qemu_trace *t = parse("pci_cfg_write a 00:02.0 @0x10 <- 0xffffffff\n"
	                             "pci_cfg_read a 00:02.0 @0x10 -> 0xffffffc1\n"
	                             "pci_update_mappings_add a 00:02.0 0,0x1000+0x40\n");
	struct qemu_replay *r = replay_all(t, false);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 1);
	assert_int_equal(res->divergence[0].line, 3);
	assert_true(res->divergence[0].have_expected);
	assert_false(res->divergence[0].have_actual);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

static void test_unsized_bar(void **state)
{
	(void)state;
	struct qemu_trace *t = parse("pci_cfg_read x 00:02.0 @0x0 -> 0x1234\n"
	                             "pci_cfg_write x 00:02.0 @0x4 <- 0x2\n"
	                             "pci_update_mappings_add x 00:02.0 0,0x1000+0x40\n");
	struct qemu_replay *r = (struct qemu_replay *)1;
	struct qemu_error err;
	assert_int_equal(qemu_replay_new(t, NULL, &r, &err), -EBADMSG);
	assert_null(r);
	assert_int_equal(err.line, 3);
	assert_non_null(strstr(err.message, "never sized"));
	qemu_trace_free(t);
}

static void test_machines(void **state)
{
	(void)state;
	char name[32];
	assert_int_equal(qemu_replay_machine_from_cmdline(
	                     "qemu-system-aarch64 -M virt -cpu cortex-a57", name, sizeof(name)),
	                 0);
	assert_string_equal(name, "virt");
	assert_int_equal(qemu_replay_machine_from_cmdline("qemu -machine type=q35,accel=kvm -m 1",
	                                                  name, sizeof(name)),
	                 0);
	assert_string_equal(name, "q35");
	assert_int_equal(qemu_replay_machine_from_cmdline("qemu -m 1", name, sizeof(name)),
	                 -ENOENT);
	assert_int_equal(qemu_replay_machine_from_cmdline("qemu -M averyveryverylongname", name, 8),
	                 -ENAMETOOLONG);
	struct qemu_replay_options opt;
	assert_int_equal(qemu_replay_machine_options("virt-7.2", &opt), 0);
	assert_true(opt.decode_zero);
	assert_int_equal(opt.io_limit, BM_PCI_IO_LIMIT_QEMU);
	assert_int_equal(qemu_replay_machine_options("pc,accel=kvm", &opt), 0);
	assert_false(opt.decode_zero);
	assert_int_equal(qemu_replay_machine_options("", &opt), -ENOENT);
}

static unsigned next_random(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* One plausible line: configuration accesses around the BAR registers of a few functions,
 * sizing values, and mappings. */
static int random_line(unsigned *seed, bool bridged, char *out, size_t size)
{
	static const unsigned regs[] = {0x0,  0x4,  0xe,  0x10, 0x14, 0x18, 0x19,
	                                0x1c, 0x24, 0x30, 0x38, 0x3d, 0x40, 0x100};
	static const uint32_t values[] = {
	    0x0,        0xffffffff, 0xfffffffe, 0xfffff800, 0x7,        0x3,    0x1001,
	    0x10000000, 0x1,        0xffffffc1, 0xfffff00c, 0xfffc0000, 0x10100};
	unsigned bus = bridged && next_random(seed) % 8 == 0 ? 1 : 0;
	unsigned dev = next_random(seed) % 4, fn = next_random(seed) % 2;
	unsigned reg = regs[next_random(seed) % (sizeof(regs) / sizeof(regs[0]))];
	uint32_t value = values[next_random(seed) % (sizeof(values) / sizeof(values[0]))];
	/* What an access the register's alignment allows can carry. */
	if (reg % 2)
		value &= 0xff;
	else if (reg % 4)
		value &= 0xffff;
	switch (next_random(seed) % 4) {
	case 0:
		return snprintf(out, size, "pci_cfg_read d %02x:%02x.%x @0x%x -> 0x%x\n", bus, dev,
		                fn, reg, value);
	case 1:
		return snprintf(out, size, "pci_cfg_write d %02x:%02x.%x @0x%x <- 0x%x\n", bus, dev,
		                fn, reg, value);
	default:
		return snprintf(out, size, "pci_update_mappings_%s d %02x:%02x.%x %u,0x%x+0x%x\n",
		                next_random(seed) % 2 ? "add" : "del", bus, dev, fn,
		                next_random(seed) % 7, value & ~0xfffu, 0x1000u);
	}
}

/* Every BAR of functions 00:00..03.0..1 sized: I/O BAR 0, memory BARs 1..5, a ROM. */
static size_t sizing_prologue(char *out, size_t size)
{
	size_t n = 0;
	for (unsigned dev = 0; dev < 4; dev++) {
		for (unsigned fn = 0; fn < 2; fn++) {
			for (unsigned reg = 0x10; reg <= 0x30; reg += reg == 0x24 ? 0xc : 4) {
				uint32_t mask = reg == 0x10   ? 0xffffffc1
				                : reg == 0x30 ? 0xfffc0000
				                              : 0xfffff000;
				n += (size_t)snprintf(
				    out + n, size - n,
				    "pci_cfg_write d 00:%02x.%x @0x%x <- 0xffffffff\n"
				    "pci_cfg_read d 00:%02x.%x @0x%x -> 0x%x\n",
				    dev, fn, reg, dev, fn, reg, mask);
			}
		}
	}
	return n;
}

/* Whatever the trace, the replay builds, runs and frees without a crash or a leak. */
static void test_random_traces(void **state)
{
	(void)state;
	unsigned seed = 4242;
	char text[160 * 80];
	size_t ok = 0;
	for (int round = 0; round < 400; round++) {
		size_t n = sizing_prologue(text, sizeof(text));
		int lines = 1 + (int)(next_random(&seed) % 60);
		for (int i = 0; i < lines; i++)
			n += (size_t)random_line(&seed, round % 8 == 0, text + n, sizeof(text) - n);
		FILE *f = fmemopen(text, n, "r");
		assert_non_null(f);
		struct qemu_trace *t = NULL;
		struct qemu_error terr;
		int ret = qemu_trace_parse(f, NULL, &t, &terr);
		fclose(f);
		if (ret)
			continue;
		struct qemu_replay *r = NULL;
		struct qemu_error err;
		if (qemu_replay_new(t, NULL, &r, &err) == 0) {
			assert_int_equal(qemu_replay_run(r, 0, &err), 0);
			struct qemu_replay_bar *bars;
			size_t nbars;
			assert_int_equal(qemu_replay_busmap_map(r, &bars, &nbars), 0);
			free(bars);
			assert_int_equal(qemu_replay_qemu_map(r, &bars, &nbars), 0);
			free(bars);
			ok++;
		} else {
			if (getenv("TRACE_SYNTHETIC_VERBOSE"))
				print_message("refused, line %u: %s\n", err.line, err.message);
			assert_null(r);
			assert_true(err.code < 0);
		}
		qemu_replay_free(r);
		qemu_trace_free(t);
	}
	print_message("%zu of 400 random traces replayed, the others refused\n", ok);
}

/* ---- info mtree -f ---- */

static const char arm_flat[] =
    "FlatView #0\n"
    " AS \"I/O\", root: io\n"
    " Root memory region: io\n"
    "  0000000000000000-000000000000ffff (prio 0, i/o): io\n"
    "\n"
    "FlatView #1\n"
    " AS \"memory\", root: system\n"
    " Root memory region: system\n"
    "  0000000009000000-0000000009000fff (prio 0, i/o): pl011\n"
    "  0000000010000000-000000001000003f (prio 0, i/o): msix-table\n"
    "  0000000010000040-00000000100007ff (prio 0, i/o): gpex_mmio_window @0000000010000040\n"
    "  0000000010000800-0000000010000807 (prio 0, i/o): msix-pba\n"
    "  0000000010000808-000000003efeffff (prio 0, i/o): gpex_mmio_window @0000000010000808\n"
    "  000000003eff0000-000000003eff0fff (prio 0, i/o): gpex_ioport_window\n"
    "  000000003eff1000-000000003eff103f (prio 1, i/o): virtio-pci\n"
    "  000000003eff1040-000000003eff107f (prio 1, i/o): virtio-pci @0000000000000040\n"
    "  000000003eff1080-000000003effffff (prio 0, i/o): gpex_ioport_window @0000000000001080\n"
    "  0000000040000000-000000005fffffff (prio 0, ram): mach-virt.ram\n";

static void parse_flat(const char *text, struct qemu_mtree *m)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	struct qemu_error err;
	int ret = qemu_mtree_parse(f, m, &err);
	fclose(f);
	if (ret)
		print_message("line %u: %s\n", err.line, err.message);
	assert_int_equal(ret, 0);
}

static int compare(const struct qemu_mtree *m, const struct qemu_replay_bar *bars, size_t n,
                   unsigned *line)
{
	struct qemu_error err;
	int ret = qemu_mtree_compare(m, bars, n, &err);
	if (ret)
		print_message("expected difference, line %u: %s\n", err.line, err.message);
	*line = err.line;
	return ret;
}

static void test_mtree_compare(void **state)
{
	(void)state;
	struct qemu_mtree m;
	parse_flat(arm_flat, &m);
	assert_true(m.io_in_mem);
	assert_int_equal(m.io_base, 0x3eff0000);
	assert_int_equal(m.io_last, 0x3effffff);
	assert_int_equal(m.nmem, 10);
	assert_int_equal(m.nio, 1);
	assert_true(m.mem[4].has_offset);
	assert_int_equal(m.mem[4].offset, 0x10000808);
	assert_string_equal(m.mem[4].name, "gpex_mmio_window");
	assert_int_equal(m.mem[6].priority, 1);

	/* blk's I/O BAR mapped over net's, then net remapped: net wins its 64 bytes. net's
	 * BAR1 holds only its MSI-X table and PBA. */
	struct qemu_replay_bar bars[] = {
	    {.bdf = QEMU_TRACE_BDF(0, 2, 0),
	     .bar = 1,
	     .addr = 0x10000000,
	     .size = 0x1000,
	     .order = 3,
	     .hollow = true},
	    {.bdf = QEMU_TRACE_BDF(0, 3, 0),
	     .bar = 0,
	     .io = true,
	     .addr = 0x1000,
	     .size = 0x80,
	     .order = 2},
	    {.bdf = QEMU_TRACE_BDF(0, 2, 0),
	     .bar = 0,
	     .io = true,
	     .addr = 0x1000,
	     .size = 0x40,
	     .order = 9},
	    {.bdf = QEMU_TRACE_BDF(0, 2, 0),
	     .bar = 1,
	     .addr = 0x10000000,
	     .size = 0x40,
	     .order = 4,
	     .part = QEMU_REPLAY_PART_MSIX_TABLE},
	    {.bdf = QEMU_TRACE_BDF(0, 2, 0),
	     .bar = 1,
	     .addr = 0x10000800,
	     .size = 0x8,
	     .order = 5,
	     .part = QEMU_REPLAY_PART_MSIX_PBA},
	};
	unsigned line;
	assert_int_equal(compare(&m, bars, 5, &line), 0);

	/* The other order: blk newest would hide net entirely, and the line at 0x1000 stops at
	 * 0x103f inside blk's range: still consistent, so only sizes and places are judged. */
	bars[1].order = 10;
	assert_int_equal(compare(&m, bars, 5, &line), 0);
	bars[1].order = 2;

	/* A BAR one size too small: a line crosses its edge. */
	bars[2].size = 0x20;
	assert_int_equal(compare(&m, bars, 5, &line), -EDOM);
	assert_int_equal(line, 15);
	bars[2].size = 0x40;

	/* A BAR where the flat view shows only the window. */
	bars[3].addr = 0x20000000;
	assert_int_equal(compare(&m, bars, 5, &line), -EDOM);
	bars[3].addr = 0x10000000;

	/* The MSI-X parts are QEMU's regions of their names: a table where QEMU shows its PBA,
	 * or a BAR's plain contents where QEMU shows its table, differ. */
	bars[3].part = QEMU_REPLAY_PART_MSIX_PBA;
	assert_int_equal(compare(&m, bars, 5, &line), -EDOM);
	assert_int_equal(line, 10);
	bars[3].part = QEMU_REPLAY_PART_MSIX_TABLE;
	bars[0].hollow = false;
	assert_int_equal(compare(&m, bars, 3, &line), -EDOM);
	assert_int_equal(line, 10);
	bars[0].hollow = true;
	assert_int_equal(compare(&m, bars, 5, &line), 0);

	/* A BAR's region outside every BAR: net's I/O BAR missing from the map, blk moved. */
	struct qemu_replay_bar moved[] = {
	    bars[0],
	    {.bdf = QEMU_TRACE_BDF(0, 3, 0),
	     .bar = 0,
	     .io = true,
	     .addr = 0x1040,
	     .size = 0x40,
	     .order = 2},
	};
	assert_int_equal(compare(&m, moved, 2, &line), -EDOM);
	assert_int_equal(line, 15);
	qemu_mtree_free(&m);
}

/* Two functions whose MSI-X capability the trace read whole (4 and 2 vectors, table at 0
 * and PBA at 0x800 of a 4 KiB BAR1: QEMU's exclusive MSI-X BAR), the second's BAR1 then
 * moved onto the first's. */
static const char msix_trace[] =
    "pci_cfg_read virtio-net-pci 00:02.0 @0x0 -> 0x10001af4\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0xe -> 0x0\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0x34 -> 0x40\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0x40 -> 0x30011\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0x44 -> 0x1\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0x48 -> 0x801\n"
    "pci_cfg_write virtio-net-pci 00:02.0 @0x14 <- 0xffffffff\n"
    "pci_cfg_read virtio-net-pci 00:02.0 @0x14 -> 0xfffff000\n"
    "pci_cfg_write virtio-net-pci 00:02.0 @0x14 <- 0x10000000\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x0 -> 0x10011af4\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0xe -> 0x0\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x34 -> 0x40\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x40 -> 0x10011\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x44 -> 0x1\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x48 -> 0x801\n"
    "pci_cfg_write virtio-blk-pci 00:03.0 @0x14 <- 0xffffffff\n"
    "pci_cfg_read virtio-blk-pci 00:03.0 @0x14 -> 0xfffff000\n"
    "pci_cfg_write virtio-blk-pci 00:03.0 @0x14 <- 0x10080000\n"
    "pci_cfg_write virtio-net-pci 00:02.0 @0x4 <- 0x2\n"
    "pci_update_mappings_add virtio-net-pci 00:02.0 1,0x10000000+0x1000\n"
    "pci_cfg_write virtio-blk-pci 00:03.0 @0x4 <- 0x2\n"
    "pci_update_mappings_add virtio-blk-pci 00:03.0 1,0x10080000+0x1000\n"
    "pci_cfg_write virtio-blk-pci 00:03.0 @0x14 <- 0x10000000\n"
    "pci_update_mappings_del virtio-blk-pci 00:03.0 1,0x10080000+0x1000\n"
    "pci_update_mappings_add virtio-blk-pci 00:03.0 1,0x10000000+0x1000\n";

/* QEMU's flat view then: blk's table, newest, over net's; net's shows past it; the rest
 * of both BARs is the bus window below them. */
static const char msix_flat[] =
    "FlatView #0\n"
    " AS \"memory\", root: system\n"
    " Root memory region: system\n"
    "  0000000010000000-000000001000001f (prio 0, i/o): msix-table\n"
    "  0000000010000020-000000001000003f (prio 0, i/o): msix-table @0000000000000020\n"
    "  0000000010000040-00000000100007ff (prio 0, i/o): gpex_mmio_window @0000000010000040\n"
    "  0000000010000800-0000000010000807 (prio 0, i/o): msix-pba\n"
    "  0000000010000808-000000003efeffff (prio 0, i/o): gpex_mmio_window @0000000010000808\n";

static void test_msix_parts(void **state)
{
	(void)state;
	struct qemu_trace *t = parse(msix_trace);
	struct qemu_replay *r = replay_all(t, true);
	const struct qemu_replay_result *res = qemu_replay_result(r);
	assert_int_equal(res->divergences, 0);
	assert_int_equal(res->read_mismatches, 0);
	size_t n;
	const struct qemu_replay_device *d = qemu_replay_devices(r, &n);
	assert_int_equal(n, 2);
	assert_true(d[0].has_msix_cap);
	assert_int_equal(d[0].msix.nvectors, 4);
	assert_int_equal(d[1].msix.nvectors, 2);
	assert_int_equal(d[1].msix.table_bar, 1);
	assert_int_equal(d[1].msix.table_offset, 0);
	assert_int_equal(d[1].msix.pba_bar, 1);
	assert_int_equal(d[1].msix.pba_offset, 0x800);
	assert_true(d[1].msix.hollow);

	/* Each BAR, then its table and PBA just above it; both lists alike. */
	struct qemu_replay_bar *bm, *q;
	size_t nq;
	assert_int_equal(qemu_replay_busmap_map(r, &bm, &n), 0);
	assert_int_equal(qemu_replay_qemu_map(r, &q, &nq), 0);
	assert_int_equal(n, 6);
	assert_int_equal(nq, 6);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(bm[i].part, q[i].part);
		assert_int_equal(bm[i].addr, q[i].addr);
		assert_int_equal(bm[i].size, q[i].size);
	}
	struct qemu_mtree m;
	parse_flat(msix_flat, &m);
	unsigned line;
	assert_int_equal(compare(&m, bm, n, &line), 0);
	/* Were net's BAR mapped last, its table would hide blk's: QEMU's view says otherwise. */
	for (size_t i = 0; i < n; i++)
		if (bm[i].bdf == QEMU_TRACE_BDF(0, 2, 0))
			bm[i].order += 100;
	assert_int_equal(compare(&m, bm, n, &line), -EDOM);
	free(bm);
	free(q);
	qemu_mtree_free(&m);

	/* busmap's function has the PCI layer's table at the BAR: its first vector's data
	 * register reads as written. */
	bm_pci_func *f = bm_pci_func_find(qemu_replay_host(r), 0, 3, 0);
	assert_non_null(f);
	assert_int_not_equal(bm_pci_func_find_cap(f, 0x11, false), 0);
	qemu_replay_free(r);
	qemu_trace_free(t);
}

/* Layouts from QEMU's region tree: one per MSI-X region, whichever address space shows
 * it, and exclusive unless the region holds more. */
static void test_msix_hints(void **state)
{
	(void)state;
	static const char tree[] =
	    "address-space: memory\n"
	    "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n"
	    "    0000000010000000-0000000010000fff (prio 1, i/o): virtio-net-pci-msix\n"
	    "      0000000010000000-000000001000003f (prio 0, i/o): msix-table\n"
	    "      0000000010000800-0000000010000807 (prio 0, i/o): msix-pba\n"
	    "    00000000c0000000-00000000c0003fff (prio 1, i/o): nvme-bar0\n"
	    "      00000000c0000000-00000000c0001fff (prio 0, i/o): nvme\n"
	    "      00000000c0002000-00000000c000207f (prio 0, i/o): msix-table\n"
	    "      00000000c0003000-00000000c0003007 (prio 0, i/o): msix-pba\n"
	    "\n"
	    "address-space: virtio-net-pci\n"
	    "  0000000000000000-ffffffffffffffff (prio 0, i/o): bus master container\n"
	    "    0000000010000000-0000000010000fff (prio 1, i/o): virtio-net-pci-msix\n"
	    "      0000000010000000-000000001000003f (prio 0, i/o): msix-table\n"
	    "      0000000010000800-0000000010000807 (prio 0, i/o): msix-pba\n"
	    "  garbage that is no region\n";
	FILE *f = fmemopen((void *)tree, strlen(tree), "r");
	assert_non_null(f);
	struct qemu_replay_msix_hint *h;
	size_t n;
	struct qemu_error err;
	assert_int_equal(qemu_mtree_msix_hints(f, &h, &n, &err), 0);
	fclose(f);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].owner, "virtio-net-pci-msix");
	assert_int_equal(h[0].addr, 0x10000000);
	assert_int_equal(h[0].size, 0x1000);
	assert_int_equal(h[0].table_size, 0x40);
	assert_int_equal(h[0].pba_offset, 0x800);
	assert_true(h[0].exclusive);
	assert_string_equal(h[1].owner, "nvme-bar0");
	assert_int_equal(h[1].table_offset, 0x2000);
	assert_int_equal(h[1].pba_size, 8);
	assert_false(h[1].exclusive);
	free(h);
}

static void test_mtree_parse_errors(void **state)
{
	(void)state;
	struct qemu_mtree m;
	struct qemu_error err;
	const char bad[] =
	    "FlatView #0\n AS \"memory\", root: system\n  00000000zz-1 (prio 0): x\n";
	FILE *f = fmemopen((void *)bad, sizeof(bad) - 1, "r");
	assert_int_equal(qemu_mtree_parse(f, &m, &err), -EBADMSG);
	assert_int_equal(err.line, 3);
	fclose(f);
	const char nomem[] = "FlatView #0\n AS \"I/O\", root: io\n";
	f = fmemopen((void *)nomem, sizeof(nomem) - 1, "r");
	assert_int_equal(qemu_mtree_parse(f, &m, &err), -EBADMSG);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bridge),
	    cmocka_unit_test(test_renumbered_buses),
	    cmocka_unit_test(test_unrouted_bus),
	    cmocka_unit_test(test_wide_bar_and_zero),
	    cmocka_unit_test(test_unexplained_mapping),
	    cmocka_unit_test(test_unsized_bar),
	    cmocka_unit_test(test_machines),
	    cmocka_unit_test(test_random_traces),
	    cmocka_unit_test(test_mtree_compare),
	    cmocka_unit_test(test_msix_parts),
	    cmocka_unit_test(test_msix_hints),
	    cmocka_unit_test(test_mtree_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
