/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The whole board as busmap-vmm builds it from a command line, without KVM: the devices a
 * guest finds, bhyve's initial layout re-enumerated the way firmware does, virtio devices
 * swapping BARs, and a hostile guest on two vCPU threads at once. After each, the memslots
 * and ioeventfds the recording hypervisor holds must equal busmap's flat views, and the
 * hypervisor must never have refused anything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "board.h"
#include "fake_hv.h"
#include "ioeventfd.h"
#include "maptrace.h"
#include "memslots.h"

#define BIOS_SIZE 0x10000u

struct env {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *cpu;
	struct vmm_options o;
	char image[64];
	uint8_t bios[BIOS_SIZE];
	char *trace;
	size_t trace_len;
	FILE *trace_file;
};

/* Builds the board of argv (after the program name), with a 1 MiB disk image. */
static struct env *board(const char *const *args, size_t nargs)
{
	struct env *e = calloc(1, sizeof(*e));
	fake_hv_init(&e->hv);
	snprintf(e->image, sizeof(e->image), "/tmp/busmap-board-XXXXXX");
	int fd = mkstemp(e->image);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	char file_arg[96];
	snprintf(file_arg, sizeof(file_arg), "virtio-blk,file=%s", e->image);
	char *argv[32] = {"busmap-vmm", "-device",     file_arg,  "-device",       "virtio-net",
	                  "-device",    "pci-testdev", "-device", "isa-debug-exit"};
	int argc = 9;
	for (size_t i = 0; i < nargs && argc < 31; i++)
		argv[argc++] = (char *)args[i];
	char err[256] = "";
	assert_int_equal(vmm_parse(argc, argv, &e->o, err, sizeof(err)), 0);
	memset(e->bios, 0xf4, BIOS_SIZE); /* hlt */
	e->o.bios = e->bios;
	e->o.bios_size = BIOS_SIZE;
	assert_int_equal(vm_new(&fake_hv_ops, &e->hv, e->o.ram_size, e->o.ncpus, &e->vm), 0);
	e->trace_file = open_memstream(&e->trace, &e->trace_len);
	if (e->o.trace_map)
		assert_int_equal(maptrace_start(e->vm, e->trace_file), 0);
	e->o.trace_map = false; /* the board would trace to stderr */
	assert_int_equal(board_build(e->vm, &e->o, -1, NULL), 0);
	assert_int_equal(bm_vcpu_new(e->vm->sys, 0, NULL, &e->cpu), 0);
	return e;
}

static void board_free(struct env *e)
{
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
	assert_int_equal(e->hv.refusals, 0);
	bm_vcpu_free(e->cpu);
	vm_free(e->vm);
	fclose(e->trace_file);
	free(e->trace);
	unlink(e->image);
	free(e);
}

static uint64_t rd(struct env *e, bm_space *s, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_true(bm_read(e->cpu, s, addr, size, &v) >= 0);
	return v;
}

static void wr(struct env *e, bm_space *s, uint64_t addr, unsigned size, uint64_t v)
{
	assert_true(bm_write(e->cpu, s, addr, size, v) >= 0);
}

static uint32_t cfg_read(struct env *e, unsigned dev, unsigned reg, unsigned size)
{
	wr(e, e->vm->io, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	return (uint32_t)rd(e, e->vm->io, 0xcfc + (reg & 3), size);
}

static void cfg_write(struct env *e, unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
	wr(e, e->vm->io, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	wr(e, e->vm->io, 0xcfc + (reg & 3), size, v);
}

/* Through ECAM at 0xb0000000, as a q35 guest would. */
static uint32_t ecam_read(struct env *e, unsigned dev, unsigned reg, unsigned size)
{
	return (uint32_t)rd(e, e->vm->mem, VM_ECAM_BASE + (dev << 15) + reg, size);
}

static void test_devices_a_guest_finds(void **state)
{
	(void)state;
	struct env *e = board(NULL, 0);
	static const uint32_t ids[] = {0x12378086, 0x70008086, 0x10011af4, 0x10001af4, 0x00051b36};
	for (unsigned dev = 0; dev < 5; dev++) {
		assert_int_equal(cfg_read(e, dev, 0, 4), ids[dev]);
		assert_int_equal(ecam_read(e, dev, 0, 4), ids[dev]);
	}
	assert_int_equal(cfg_read(e, 5, 0, 4), 0xffffffff);
	/* The ISA side: UART transmitter empty, fw_cfg's signature, the CMOS's base memory. */
	assert_int_equal(rd(e, e->vm->io, 0x3fd, 1) & 0x60, 0x60);
	wr(e, e->vm->io, 0x510, 2, 0);
	char sig[5] = {0};
	for (int i = 0; i < 4; i++)
		sig[i] = (char)rd(e, e->vm->io, 0x511, 1);
	assert_string_equal(sig, "QEMU");
	wr(e, e->vm->io, 0x70, 1, 0x15);
	assert_int_equal(rd(e, e->vm->io, 0x71, 1), 640 & 0xff);
	/* No BAR is decoded before firmware programs one. */
	for (unsigned dev = 2; dev < 5; dev++)
		assert_int_equal(cfg_read(e, dev, 4, 2) & 3, 0);
	board_free(e);
}

struct bar {
	unsigned dev, index;
	bool io;
	uint64_t size;
};

/* Sizes BAR index of dev with its decoding left as it is, as u-boot does. */
static uint64_t size_bar(struct env *e, unsigned dev, unsigned index, bool *io)
{
	unsigned reg = 0x10 + 4 * index;
	uint32_t old = cfg_read(e, dev, reg, 4);
	cfg_write(e, dev, reg, 4, 0xffffffff);
	uint32_t v = cfg_read(e, dev, reg, 4);
	cfg_write(e, dev, reg, 4, old);
	*io = v & 1;
	uint32_t mask = *io ? 0xfffffffc : 0xfffffff0;
	return v & mask ? (uint64_t)(~(v & mask) + 1) & 0xffffffff : 0;
}

static uint64_t bar_addr(struct env *e, unsigned dev, unsigned index)
{
	uint32_t v = cfg_read(e, dev, 0x10 + 4 * index, 4);
	return v & 1 ? v & ~3u : v & ~15u;
}

/* The devices answer at their decoded I/O BARs: virtio-net's MAC, virtio-blk's capacity. */
static void check_virtio_answers(struct env *e)
{
	uint64_t blk = bar_addr(e, 2, 0), net = bar_addr(e, 3, 0);
	assert_int_equal(rd(e, e->vm->io, blk + 0x14, 4), (1 << 20) / 512);
	assert_int_equal(rd(e, e->vm->io, net + 0x14, 1), 0x52);
	assert_int_equal(rd(e, e->vm->io, net + 0x19, 1), 0x56);
}

/* bhyve's layout first, then firmware that sizes every BAR with decoding on and places
 * them afresh: BARs pass over live ones, every device keeps answering where it ends up. */
static void test_bhyve_layout_then_firmware(void **state)
{
	(void)state;
	static const char *const args[] = {"--bar-layout=bhyve", "--trace-map"};
	struct env *e = board(args, 2);
	for (unsigned dev = 2; dev < 5; dev++)
		assert_int_equal(cfg_read(e, dev, 4, 2) & 3, 3);
	check_virtio_answers(e);
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);

	/* Re-enumerate: I/O BARs from 0xc000 up in slot order (the reverse of bhyve's
	 * largest-first order), memory from 0xfe000000, 64-bit ones from 0x100000000. */
	uint64_t io = 0xc000, mem = 0xfe000000ull, mem64 = 0x1000000000ull;
	for (unsigned dev = 2; dev < 5; dev++) {
		for (unsigned i = 0; i < 6; i++) {
			bool isio;
			uint64_t size = size_bar(e, dev, i, &isio);
			if (!size)
				continue;
			unsigned reg = 0x10 + 4 * i;
			bool is64 = !isio && (cfg_read(e, dev, reg, 4) & 6) == 4;
			uint64_t *next = isio ? &io : is64 ? &mem64 : &mem;
			*next = (*next + size - 1) & ~(size - 1);
			cfg_write(e, dev, reg, 4, (uint32_t)*next);
			if (is64)
				cfg_write(e, dev, reg + 4, 4, (uint32_t)(*next >> 32));
			*next += size;
			if (is64)
				i++;
			assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
			assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
		}
	}
	check_virtio_answers(e);
	fflush(e->trace_file);
	assert_non_null(strstr(e->trace, "map   00:02.0/bar0 io  0xc000+0x"));
	assert_non_null(strstr(e->trace, "unmap 00:02.0/bar0 io  "));
	board_free(e);
}

/* virtio-blk and virtio-net exchange I/O BARs, in one transaction and write by write: the
 * doorbells' ioeventfds follow, and KVM is never asked for one twice. */
static void test_virtio_swap(void **state)
{
	(void)state;
	static const char *const args[] = {"--bar-layout=bhyve", "--trace-map"};
	struct env *e = board(args, 2);
	uint64_t blk = bar_addr(e, 2, 0), net = bar_addr(e, 3, 0);
	assert_non_null(fake_hv_ioev_at(&e->hv, true, blk + 0x10));
	assert_non_null(fake_hv_ioev_at(&e->hv, true, net + 0x10));

	assert_int_equal(bm_begin(e->vm->sys), 0);
	cfg_write(e, 2, 0x10, 4, (uint32_t)net);
	cfg_write(e, 3, 0x10, 4, (uint32_t)blk);
	assert_int_equal(bm_commit(e->vm->sys), 0);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
	check_virtio_answers(e);
	assert_int_equal(e->hv.refusals, 0);

	/* Back, one write at a time: the first puts blk over net's live BAR. */
	cfg_write(e, 2, 0x10, 4, (uint32_t)blk);
	cfg_write(e, 3, 0x10, 4, (uint32_t)net);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
	check_virtio_answers(e);
	fflush(e->trace_file);
	char line[128];
	snprintf(line, sizeof(line), "overlap 00:02.0/bar0 hides 00:03.0/bar0 over io  0x%x-",
	         (unsigned)blk);
	assert_non_null(strstr(e->trace, line));
	snprintf(line, sizeof(line),
	         "overlap-end 00:02.0/bar0 no longer hides 00:03.0/bar0 over io  0x%x-",
	         (unsigned)blk);
	assert_non_null(strstr(e->trace, line));
	board_free(e);
}

/* ---- a hostile guest on two vCPUs ---- */

struct hostile {
	struct env *e;
	unsigned index;
	uint64_t seed;
	unsigned iterations;
};

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *hostile_cpu(void *arg)
{
	struct hostile *h = arg;
	struct vm *vm = h->e->vm;
	bm_vcpu *cpu;
	assert_int_equal(bm_vcpu_new(vm->sys, h->index, NULL, &cpu), 0);
	static const unsigned sizes[] = {1, 2, 4, 8};
	for (unsigned i = 0; i < h->iterations; i++) {
		uint64_t r = next(&h->seed), v = next(&h->seed), x = next(&h->seed);
		unsigned size = sizes[r & 3];
		uint64_t got;
		switch ((r >> 2) % 5) {
		case 0: /* CF8/CFC: any function of buses 0-1, any register */
			bm_write(cpu, vm->io, 0xcf8, 4, 0x80000000u | (x & 0x1fffc));
			bm_write(cpu, vm->io, 0xcfc + (x >> 20 & 3), size < 8 ? size : 4, v);
			break;
		case 1: /* ECAM */
			bm_write(cpu, vm->mem, VM_ECAM_BASE + (x & 0x1fffff), size, v);
			break;
		case 2: /* a port, any width, read or write */
			if (x & 1)
				bm_write(cpu, vm->io, x >> 1 & 0xffff, size < 8 ? size : 4, v);
			else
				bm_read(cpu, vm->io, x >> 1 & 0xffff, size < 8 ? size : 4, &got);
			break;
		case 3: /* an MMIO address below 4 GiB, where BARs and ROMs are */
			if (x & 1)
				bm_write(cpu, vm->mem, (x >> 1) & 0xffffffff, size, v);
			else
				bm_read(cpu, vm->mem, (x >> 1) & 0xffffffff, size, &got);
			break;
		default: /* near the PCI windows the firmware uses */
			bm_write(cpu, vm->mem, 0xc0000000 + (x & 0x3fffffff), size, v);
			break;
		}
	}
	bm_vcpu_free(cpu);
	return NULL;
}

static void test_hostile_guest_two_vcpus(void **state)
{
	(void)state;
	static const char *const args[] = {"-smp", "2", "--bar-layout=bhyve"};
	struct env *e = board(args, 3);
	struct hostile h[2];
	pthread_t t[2];
	unsigned iterations = getenv("BUSMAP_HOSTILE_ITERATIONS")
	                          ? (unsigned)strtoul(getenv("BUSMAP_HOSTILE_ITERATIONS"), NULL, 0)
	                          : 100000;
	for (unsigned i = 0; i < 2; i++) {
		h[i] = (struct hostile){e, i + 1, 0x9e3779b97f4a7c15ull * (i + 1), iterations};
		assert_int_equal(pthread_create(&t[i], NULL, hostile_cpu, &h[i]), 0);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Whatever it did, the map is consistent and the devices still answer config reads. */
	assert_int_equal(cfg_read(e, 0, 0, 4), 0x12378086);
	assert_int_equal(ecam_read(e, 3, 0, 4), 0x10001af4);
	board_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_devices_a_guest_finds),
	    cmocka_unit_test(test_bhyve_layout_then_firmware),
	    cmocka_unit_test(test_virtio_swap),
	    cmocka_unit_test(test_hostile_guest_two_vcpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
