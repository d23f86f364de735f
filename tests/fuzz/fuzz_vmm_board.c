/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-vmm-board: busmap-vmm's whole board, built from a command line on the recording
 * hypervisor, then driven by any bytes as a hostile guest drives it: configuration cycles
 * through CF8/CFC and ECAM, port and MMIO accesses anywhere (BARs, the BIOS, below 1 MiB,
 * RAM), virtqueues built in guest RAM, doorbells by port, by MMIO, through the PCI
 * configuration window and by eventfd.
 *
 * Whatever the guest does, the memslots and ioeventfds the hypervisor holds must equal what
 * the flat views call for, the hypervisor must never have refused a request, and no
 * listener may have stopped the machine; the sanitizers catch the rest.
 *
 * The first byte chooses the board (bhyve's BAR layout, a read-only image, RAM above
 * 4 GiB, the image size); each later operation is one guest action or a short sequence a
 * driver or firmware would write (set up a queue, place a BAR).
 *
 * Building and freeing a board takes about ten times as long as a typical input, so each
 * of the eight boards is built once, when an input first asks for it, and reset after every
 * input to the state it was built in: the devices through their own resets, the PCI layer
 * by restoring what bm_pci_host_save took of the new board. The reset is checked: the PCI
 * state and both flat views must then equal the new board's, so an input replays alone on
 * a fresh board as it ran in the middle of a campaign (the RTC's clock and the device
 * threads' timing aside). FUZZ_FRESH_BOARD=1 builds a board for every input instead;
 * FUZZ_TRACE=1 prints the operations and the machine's messages.
 */
#include "fuzz_input.h"

#include "board.h"
#include "cmdline.h"
#include "ioeventfd.h"
#include "memslots.h"
#include "vmm/fake_hv.h"

#include <busmap/pci_state.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_OPS     400
#define CHECK_EVERY 16
#define BIOS_SIZE   0x10000u
#define NBOARDS     8 /* bhyve layout x read-only image x RAM above 4 GiB */
#define CMOS_SIZE   128

/* The devices, in the slots the command line's order gives them. */
#define SLOT_BLK     2
#define SLOT_NET     3
#define SLOT_TESTDEV 4
#define NSLOTS       6 /* 0-4 and an empty one */

/* Guest RAM the operations build virtqueues in: 16 KiB per (device, queue), each laid out
 * as a legacy driver's queue of 256 entries (descriptors, available ring at 4 KiB, used
 * ring at 8 KiB), which the modern set-up uses as well. */
#define RING_BASE  0x10000ull
#define RING_AREA  0x4000ull
#define RING_AVAIL 0x1000ull
#define RING_USED  0x2000ull
#define DATA_BASE  0x30000ull /* buffers */
#define DATA_SIZE  0x10000ull
#define INDIR_BASE 0x40000ull /* indirect tables */
#define INDIR_SIZE 0x1000ull

/* Where the set-up operations place BARs that are not placed yet. */
#define FW_IO     0xc000u
#define FW_MEM32  0xc0000000ull
#define FW_MEM64  0x8000000000ull
#define CMD_IO    0x1
#define CMD_MEM   0x2
#define CMD_BUSM  0x4
#define CAP_MSIX  0x11
#define CAP_VNDR  0x09
#define MAX_CAPS  12
#define PORT_CONF 0xcf8

/* virtio registers (see vmm/virtio/pci.c). */
#define L_GUEST_FEATURES 0x04
#define L_QUEUE_PFN      0x08
#define L_QUEUE_SEL      0x0e
#define L_QUEUE_NOTIFY   0x10
#define L_STATUS         0x12
#define L_ISR            0x13
#define L_CONFIG_VECTOR  0x14
#define L_QUEUE_VECTOR   0x16
#define C_GFSELECT       0x08
#define C_GF             0x0c
#define C_MSIX           0x10
#define C_STATUS         0x14
#define C_Q_SELECT       0x16
#define C_Q_SIZE         0x18
#define C_Q_MSIX         0x1a
#define C_Q_ENABLE       0x1c
#define C_Q_DESC         0x20
#define C_Q_AVAIL        0x28
#define C_Q_USED         0x30
#define M_NOTIFY         0x3000

/* A board and what it looked like when it was new. */
struct board {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *cpu;
	struct vmm_options o;
	int image_fd; /* the image, unlinked once open */
	uint64_t image_size;
	uint64_t capacity; /* image sectors */
	unsigned caps[NSLOTS][MAX_CAPS];
	unsigned ncaps[NSLOTS];
	uint8_t *pci_state; /* bm_pci_host_save */
	size_t pci_state_len;
	struct flat {
		struct bm_flat_range *v;
		size_t n, cap;
	} view[2]; /* memory, I/O */
	uint8_t cmos[CMOS_SIZE];
	uint8_t uart[7]; /* registers 1-7 as read on the new board */
};

static struct {
	/* For the whole process. */
	FILE *devnull;
	bool trace, fresh;
	uint8_t bios[BIOS_SIZE];
	struct board *boards[NBOARDS];

	/* One input. */
	struct fz_input in;
	struct board *b;
	struct fake_hv *hv;
	struct vm *vm;
	bm_vcpu *cpu;
	uint16_t qsize[NSLOTS][2];     /* what the operations last gave each queue */
	uint16_t next_desc[NSLOTS][2]; /* where op_request builds its next chain */
	unsigned next_buf;
	unsigned long op;
} F;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	if (!F.trace)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "  %lu: ", F.op);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "\nfuzz-vmm-board: op %lu: ", F.op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ------------------------------------------------------------------ the guest's accesses */

static uint64_t rd(bm_space *s, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	bm_read(F.cpu, s, addr, size, &v);
	return v;
}

static void wr(bm_space *s, uint64_t addr, unsigned size, uint64_t v)
{
	bm_write(F.cpu, s, addr, size, v);
}

static unsigned rd_size(unsigned max)
{
	unsigned s = 1u << (in_u8(&F.in) % 4);
	return s > max ? max : s;
}

static void cfg_write(unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	wr(F.vm->io, PORT_CONF, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	wr(F.vm->io, PORT_CONF + 4 + (reg & 3), size, v);
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned size)
{
	wr(F.vm->io, PORT_CONF, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	return (uint32_t)rd(F.vm->io, PORT_CONF + 4 + (reg & 3), size);
}

/* Guest RAM the guest's CPU writes directly, without an exit. */
static void ram_put(uint64_t gpa, const void *p, size_t n)
{
	void *h = vm_guest_ptr(F.vm, gpa, n);
	if (h)
		memcpy(h, p, n);
}

static uint16_t ram_get16(uint64_t gpa)
{
	uint16_t v = 0;
	void *h = vm_guest_ptr(F.vm, gpa, 2);
	if (h)
		memcpy(&v, h, 2);
	return v;
}

/* ------------------------------------------------------------------ the board's state */

static bm_pci_func *func_at(unsigned slot)
{
	return bm_pci_func_find(F.vm->pci, 0, slot, 0);
}

/* Where BAR index of slot is decoded (false when it is not, or does not exist). */
static bool bar_at(unsigned slot, unsigned index, uint64_t *addr, uint64_t *size)
{
	bm_pci_func *f = func_at(slot);
	struct bm_pci_bar_info bi;
	*addr = *size = 0;
	if (!f || bm_begin(F.vm->sys))
		return false;
	int rc = bm_pci_bar_info(f, index, &bi);
	bm_commit(F.vm->sys);
	if (rc || bi.type == BM_PCI_BAR_NONE)
		return false;
	*addr = bi.mapped ? bi.mapped_addr : bi.addr;
	*size = bi.size;
	return bi.mapped;
}

/* A BAR the set-up operations need: left where it is if decoded, else placed where
 * firmware would put it, with decoding and bus mastering on. */
static uint64_t need_bar(unsigned slot, unsigned index)
{
	uint64_t addr, size;
	if (bar_at(slot, index, &addr, &size))
		return addr;
	bm_pci_func *f = func_at(slot);
	struct bm_pci_bar_info bi;
	if (!f || bm_begin(F.vm->sys))
		return 0;
	int rc = bm_pci_bar_info(f, index, &bi);
	bm_commit(F.vm->sys);
	if (rc || bi.type == BM_PCI_BAR_NONE)
		return 0;
	unsigned reg = 0x10 + 4 * index;
	if (bi.io)
		addr = FW_IO + 0x100u * slot;
	else if (bi.type == BM_PCI_BAR_MEM64)
		addr = FW_MEM64 + 0x10000ull * slot;
	else
		addr = FW_MEM32 + 0x10000ull * slot + 0x1000ull * index;
	cfg_write(slot, reg, 4, (uint32_t)addr);
	if (bi.type == BM_PCI_BAR_MEM64)
		cfg_write(slot, reg + 4, 4, (uint32_t)(addr >> 32));
	uint32_t cmd = cfg_read(slot, 4, 2);
	cfg_write(slot, 4, 2, cmd | (bi.io ? CMD_IO : CMD_MEM) | CMD_BUSM);
	return addr;
}

static void find_caps(void)
{
	for (unsigned slot = 0; slot < NSLOTS; slot++) {
		bm_pci_func *f = func_at(slot);
		F.b->ncaps[slot] = 0;
		if (!f || !(bm_pci_func_cfg_get(f, 0x06, 2) & 0x10))
			continue;
		unsigned at = bm_pci_func_cfg_get(f, 0x34, 1) & 0xfc;
		for (unsigned n = 0; at && n < MAX_CAPS; n++) {
			F.b->caps[slot][F.b->ncaps[slot]++] = at;
			at = bm_pci_func_cfg_get(f, at + 1, 1) & 0xfc;
		}
	}
}

static unsigned cap_of(unsigned slot, unsigned id, unsigned skip)
{
	bm_pci_func *f = func_at(slot);
	for (unsigned i = 0; f && i < F.b->ncaps[slot]; i++)
		if (bm_pci_func_cfg_get(f, F.b->caps[slot][i], 1) == id && skip-- == 0)
			return F.b->caps[slot][i];
	return 0;
}

/* ------------------------------------------------------------------ choices */

static unsigned rd_slot(void)
{
	uint8_t b = in_u8(&F.in);
	return b & 0x80 ? b % 32 : b % NSLOTS;
}

static unsigned rd_virtio(void)
{
	return in_u8(&F.in) & 1 ? SLOT_NET : SLOT_BLK;
}

/* A configuration register: anywhere, or one that decides something. */
static unsigned rd_reg(unsigned slot, unsigned limit)
{
	static const uint8_t regs[] = {0x04, 0x06, 0x0c, 0x0e, 0x10, 0x14, 0x18, 0x1c,
	                               0x20, 0x24, 0x30, 0x3c, 0x3d, 0x59, 0x5a, 0x5c,
	                               0x5f, 0x60, 0x61, 0x63, 0x72, 0x34};
	uint8_t k = in_u8(&F.in);
	if (k < 64)
		return (unsigned)in_u16(&F.in) % limit;
	if (k < 160 && slot < NSLOTS && F.b->ncaps[slot])
		return (F.b->caps[slot][k % F.b->ncaps[slot]] + in_u8(&F.in) % 24) % limit;
	return regs[k % sizeof(regs)];
}

static uint32_t rd_value(void)
{
	uint8_t k = in_u8(&F.in);
	switch (k % 8) {
	case 0:
		return 0;
	case 1:
		return 0xffffffffu;
	case 2:
		return (uint32_t)in_u8(&F.in);
	case 3:
		return (uint32_t)in_u16(&F.in);
	default:
		return (uint32_t)in_bytes(&F.in, 4);
	}
}

/* A guest physical address for a buffer or a ring. */
static uint64_t rd_gpa(void)
{
	uint8_t k = in_u8(&F.in);
	uint64_t below = F.vm->below_4g, high = F.vm->ram_size - below;
	switch (k % 10) {
	case 0:
	case 1:
	case 2:
	case 3:
		return DATA_BASE + (in_u16(&F.in) & (DATA_SIZE - 1));
	case 4:
		return RING_BASE + (in_u16(&F.in) & 0xfff0);
	case 5:
		return INDIR_BASE + (in_u16(&F.in) & (INDIR_SIZE - 1) & ~15u);
	case 6:
		return below - in_u16(&F.in) % 0x2000;
	case 7:
		return high ? VM_HIGH_RAM_BASE + high - in_u16(&F.in) % 0x2000
		            : 0xa0000 + in_u16(&F.in);
	case 8:
		return 0xffffffffffffffffull - in_u8(&F.in);
	default:
		return in_u64(&F.in);
	}
}

static uint32_t rd_len(void)
{
	uint8_t k = in_u8(&F.in);
	switch (k % 10) {
	case 0:
		return 16;
	case 1:
		return 1;
	case 2:
		return 512 * (1 + in_u8(&F.in) % 8);
	case 3:
		return 512 * (1 + in_u8(&F.in) % 8) + 1;
	case 4:
		return 0;
	case 5:
		return 0xffffffffu - in_u8(&F.in);
	case 6:
		return 16 * (1 + in_u8(&F.in) % 64);
	default:
		return (uint32_t)in_u16(&F.in);
	}
}

static uint64_t ring_of(unsigned slot, unsigned q)
{
	return RING_BASE + RING_AREA * (2 * (slot - SLOT_BLK) + (q & 1));
}

/* ------------------------------------------------------------------ operations */

/* A configuration cycle, through CF8/CFC or ECAM. */
static void op_cfg(void)
{
	unsigned slot = rd_slot();
	uint8_t k = in_u8(&F.in);
	bool ecam = k & 1, write = k & 2;
	unsigned reg = rd_reg(slot, ecam ? 4096 : 256);
	unsigned size = rd_size(ecam ? 8 : 4);
	uint32_t v = write ? rd_value() : 0;
	trace("cfg %s %02x reg %#x size %u %s %#x", ecam ? "ecam" : "cf8", slot, reg, size,
	      write ? "write" : "read", v);
	if (ecam) {
		uint64_t a = VM_ECAM_BASE + ((uint64_t)slot << 15) + reg;
		if (write)
			wr(F.vm->mem, a, size, (uint64_t)v | (size == 8 ? (uint64_t)v << 32 : 0));
		else
			rd(F.vm->mem, a, size);
	} else if (write) {
		cfg_write(slot, reg & ~(size - 1), size, v);
	} else {
		cfg_read(slot, reg & ~(size - 1), size);
	}
}

/* Raw CF8 and CFC, and ECAM beyond bus 0: any latch, any width, any offset. */
static void op_cfg_raw(void)
{
	uint8_t k = in_u8(&F.in);
	unsigned size = rd_size(4);
	uint64_t v = rd_value();
	if (k & 1) {
		uint64_t off = in_bytes(&F.in, 4) % VM_ECAM_SIZE;
		size = rd_size(8);
		trace("ecam raw %#" PRIx64 " size %u %s", off, size, k & 2 ? "write" : "read");
		if (k & 2)
			wr(F.vm->mem, VM_ECAM_BASE + off, size, v);
		else
			rd(F.vm->mem, VM_ECAM_BASE + off, size);
		return;
	}
	unsigned port = PORT_CONF + in_u8(&F.in) % 8;
	trace("port %#x size %u %s %#" PRIx64, port, size, k & 2 ? "write" : "read", v);
	if (k & 2)
		wr(F.vm->io, port, size, v);
	else
		rd(F.vm->io, port, size);
}

/* A port: the chipset's and the devices', beside them, or any. */
static void op_port(void)
{
	static const uint16_t ports[] = {0x61,  0x70,  0x71,  0x92,  0x3f8, 0x3f9, 0x3fa,
	                                 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x501, 0x502,
	                                 0x510, 0x511, 0x512, 0xe9,  0xcf8, 0xcfc, 0xcfe};
	uint8_t k = in_u8(&F.in);
	unsigned port;
	if (k < 128) {
		port = ports[k % (sizeof(ports) / sizeof(ports[0]))];
	} else if (k < 200) {
		uint64_t a, s;
		unsigned slot = SLOT_BLK + k % 3;
		bar_at(slot, slot == SLOT_TESTDEV, &a, &s);
		port = (unsigned)(a + in_u8(&F.in) % (s + 4)) & 0xffff;
	} else {
		port = (unsigned)in_u16(&F.in);
	}
	bool write = in_u8(&F.in) & 1;
	unsigned size = rd_size(4);
	uint64_t v = write ? rd_value() : 0;
	trace("port %#x size %u %s %#" PRIx64, port, size, write ? "write" : "read", v);
	if (write)
		wr(F.vm->io, port, size, v);
	else
		rd(F.vm->io, port, size);
}

/* An access inside or around one of the devices' BARs, wherever they are. */
static void op_bar(void)
{
	unsigned slot = SLOT_BLK + in_u8(&F.in) % 3;
	static const uint8_t idx[] = {0, 1, 4, 6};
	unsigned index = idx[in_u8(&F.in) % 4];
	uint64_t a, s;
	bool mapped = bar_at(slot, index, &a, &s);
	uint64_t off = in_u16(&F.in) % (s + 8);
	bool write = in_u8(&F.in) & 1;
	uint64_t v = write ? rd_value() : 0;
	unsigned size = rd_size(8);
	bool io = index == 0 && slot != SLOT_TESTDEV ? true : index == 1 && slot == SLOT_TESTDEV;
	if (io && size == 8)
		size = 4;
	trace("bar %02x.%u %s%s +%#" PRIx64 " size %u %s %#" PRIx64, slot, index,
	      mapped ? "" : "(not decoded) ", io ? "io" : "mem", off, size,
	      write ? "write" : "read", v);
	bm_space *sp = io ? F.vm->io : F.vm->mem;
	uint64_t at = io ? (a + off) & 0xffff : a + off;
	if (write)
		wr(sp, at, size, v);
	else
		rd(sp, at, size);
}

/* Memory anywhere the board has something: PCI windows, below 1 MiB, the BIOS, RAM. */
static void op_mmio(void)
{
	uint8_t k = in_u8(&F.in);
	uint64_t addr;
	switch (k % 9) {
	case 0:
		addr = FW_MEM32 + (in_bytes(&F.in, 3));
		break;
	case 1:
		addr = 0xa0000 + in_bytes(&F.in, 3) % 0x60000;
		break;
	case 2:
		addr = 0x100000000ull - BIOS_SIZE + in_u16(&F.in) - 8;
		break;
	case 3:
		addr = in_bytes(&F.in, 3);
		break;
	case 4:
		addr = VM_HIGH_RAM_BASE + in_bytes(&F.in, 3);
		break;
	case 5:
		addr = FW_MEM64 + in_bytes(&F.in, 3);
		break;
	case 6:
		addr = VM_IOAPIC_BASE + in_bytes(&F.in, 3);
		break;
	case 7:
		addr = F.vm->below_4g - 8 + in_u8(&F.in) % 16;
		break;
	default:
		addr = in_u64(&F.in);
		break;
	}
	bool write = k & 0x80;
	unsigned size = rd_size(8);
	uint64_t v = write ? in_u64(&F.in) : 0;
	trace("mmio %#" PRIx64 " size %u %s %#" PRIx64, addr, size, write ? "write" : "read", v);
	if (write)
		wr(F.vm->mem, addr, size, v);
	else
		rd(F.vm->mem, addr, size);
}

/* The guest's CPU writing RAM where queues and buffers are. */
static void op_ram(void)
{
	uint8_t k = in_u8(&F.in);
	uint64_t gpa = k & 1 ? RING_BASE + (in_u16(&F.in) % (4 * RING_AREA))
	                     : DATA_BASE + (in_u16(&F.in) % DATA_SIZE);
	unsigned n = 1u << ((k >> 1) % 4);
	uint64_t v = in_u64(&F.in);
	trace("ram %#" PRIx64 " = %#" PRIx64 " (%u bytes)", gpa, v, n);
	ram_put(gpa, &v, n);
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

/* A descriptor, in a queue's table or an indirect one. */
static void op_desc(void)
{
	unsigned slot = rd_virtio(), q = in_u8(&F.in) & 1;
	uint8_t k = in_u8(&F.in);
	uint64_t at = k & 1 ? INDIR_BASE + 16ull * (in_u8(&F.in) % (INDIR_SIZE / 16))
	                    : ring_of(slot, q) + 16ull * in_u8(&F.in);
	struct desc d;
	d.addr = rd_gpa();
	d.len = rd_len();
	d.flags = k & 2 ? (uint16_t)in_u16(&F.in) : (uint16_t)(in_u8(&F.in) & 7);
	d.next = k & 4 ? (uint16_t)in_u16(&F.in) : in_u8(&F.in);
	trace("desc at %#" PRIx64 ": %#" PRIx64 " len %#x flags %#x next %u", at, d.addr, d.len,
	      d.flags, d.next);
	ram_put(at, &d, sizeof(d));
}

/* A virtio-blk request header at gpa: a type the device knows or not, and a sector inside
 * the image, at its end or past it. */
static uint32_t put_blk_header(uint64_t gpa)
{
	static const uint32_t types[] = {0, 1, 4, 8, 11, 13, 0xffffffffu};
	uint8_t k = in_u8(&F.in);
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {types[k % 7], 0, 0};
	switch ((k >> 3) % 6) {
	case 0:
		h.sector = 0;
		break;
	case 1:
		h.sector = F.b->capacity ? F.b->capacity - 1 : 0;
		break;
	case 2:
		h.sector = F.b->capacity;
		break;
	case 3:
		h.sector = F.b->capacity + 1;
		break;
	case 4:
		h.sector = in_u64(&F.in);
		break;
	default:
		h.sector = in_u8(&F.in) % (F.b->capacity + 2);
		break;
	}
	trace("blk header at %#" PRIx64 ": type %u sector %#" PRIx64, gpa, h.type, h.sector);
	ram_put(gpa, &h, sizeof(h));
	return h.type;
}

static void op_blk_header(void)
{
	put_blk_header(DATA_BASE + (in_u16(&F.in) & (DATA_SIZE - 1) & ~15u));
}

/* Adds head to the available ring of (slot, q) and moves its index on. */
static void publish(unsigned slot, unsigned q, uint16_t head)
{
	uint64_t base = ring_of(slot, q) + RING_AVAIL;
	uint16_t size = F.qsize[slot][q] ? F.qsize[slot][q] : 256;
	uint16_t idx = ram_get16(base + 2);
	ram_put(base + 4 + 2ull * (idx & (size - 1)), &head, 2);
	idx++;
	ram_put(base + 2, &idx, 2);
}

/*
 * A whole request as a driver builds it: virtio-blk's header, data buffers and status
 * byte, or virtio-net's frame buffers, as a chain in the queue's table or in an indirect
 * one, published and (often) notified. The fuzzer then only has to bend its fields.
 */
static void op_request(void)
{
	unsigned slot = rd_virtio(), q = slot == SLOT_BLK ? 0 : in_u8(&F.in) & 1;
	uint8_t k = in_u8(&F.in);
	uint16_t size = F.qsize[slot][q] ? F.qsize[slot][q] : 256;
	uint16_t head = F.next_desc[slot][q] % size;
	uint64_t buf = DATA_BASE + 0x2000ull * (F.next_buf++ % 8);
	struct desc d[6];
	unsigned n = 0;
	bool device_writes = slot == SLOT_NET && q == 0;
	if (slot == SLOT_BLK) {
		device_writes = put_blk_header(buf) != 1; /* all but writes take data in */
		d[n++] = (struct desc){buf, 16, 0, 0};
	}
	unsigned nseg = in_u8(&F.in) % 4;
	for (unsigned i = 0; i < nseg; i++) {
		uint8_t l = in_u8(&F.in);
		uint32_t len = l & 0x80 ? rd_len() : (slot == SLOT_BLK ? 512u : 64u) * (1 + l % 4);
		d[n++] =
		    (struct desc){buf + 0x100 + 0x800ull * i, len, device_writes ? D_WRITE : 0, 0};
	}
	if (slot == SLOT_BLK)
		d[n++] = (struct desc){buf + 0x1f00, 1, D_WRITE, 0};
	if (k & 0x40 && n) /* one field bent */
		switch (in_u8(&F.in) % 4) {
		case 0:
			d[in_u8(&F.in) % n].flags ^= D_WRITE;
			break;
		case 1:
			d[in_u8(&F.in) % n].len = rd_len();
			break;
		case 2:
			d[in_u8(&F.in) % n].addr = rd_gpa();
			break;
		default:
			d[in_u8(&F.in) % n].flags |= D_NEXT; /* runs on past the end */
			break;
		}
	bool indirect = k & 1;
	uint64_t table = indirect ? INDIR_BASE + 0x100ull * (in_u8(&F.in) % 16) : ring_of(slot, q);
	for (unsigned i = 0; i < n; i++) {
		uint16_t at = indirect ? (uint16_t)i : (uint16_t)((head + i) % size);
		if (i + 1 < n) {
			d[i].flags |= D_NEXT;
			d[i].next =
			    indirect ? (uint16_t)(i + 1) : (uint16_t)((head + i + 1) % size);
		}
		ram_put(table + 16ull * at, &d[i], sizeof(d[i]));
	}
	if (indirect) {
		struct desc ind = {table, 16u * (n ? n : 1), D_INDIRECT, 0};
		ram_put(ring_of(slot, q) + 16ull * head, &ind, sizeof(ind));
		F.next_desc[slot][q] = (uint16_t)(head + 1);
	} else {
		F.next_desc[slot][q] = (uint16_t)(head + n);
	}
	publish(slot, q, head);
	trace("request %02x q%u: %u descriptors%s from %u", slot, q, n,
	      indirect ? " (indirect)" : "", head);
	switch ((k >> 1) % 4) {
	case 0:
		wr(F.vm->io, need_bar(slot, 0) + L_QUEUE_NOTIFY, 2, q);
		break;
	case 1:
		wr(F.vm->mem, need_bar(slot, 4) + M_NOTIFY + 4ull * q, 2, q);
		break;
	default:
		break; /* a later doorbell, or none */
	}
	trace("  used index of %02x q%u: %u", slot, q, ram_get16(ring_of(slot, q) + RING_USED + 2));
}

/* Publishes heads in a queue's available ring, as a driver does, or sets the index. */
static void op_avail(void)
{
	unsigned slot = rd_virtio(), q = in_u8(&F.in) & 1;
	uint64_t base = ring_of(slot, q) + RING_AVAIL;
	uint16_t size = F.qsize[slot][q] ? F.qsize[slot][q] : 256;
	uint8_t k = in_u8(&F.in);
	uint16_t idx = ram_get16(base + 2);
	uint16_t flags = k & 0x40 ? 1 : 0; /* no interrupt */
	if (k & 0x80) {
		idx = (uint16_t)in_u16(&F.in);
	} else {
		for (unsigned n = 1 + k % 4; n > 0; n--) {
			uint16_t head = k & 0x20 ? (uint16_t)in_u16(&F.in) : in_u8(&F.in) % size;
			ram_put(base + 4 + 2ull * (idx & (size - 1)), &head, 2);
			idx++;
		}
	}
	trace("avail %02x q%u: idx %u flags %u", slot, q, idx, flags);
	ram_put(base, &flags, 2);
	ram_put(base + 2, &idx, 2);
}

/* A legacy driver's set-up of a queue: its page, then status and features. */
static void op_legacy_setup(void)
{
	unsigned slot = rd_virtio(), q = in_u8(&F.in) % 3;
	uint8_t k = in_u8(&F.in);
	uint16_t io = (uint16_t)need_bar(slot, 0);
	uint32_t pfn = k & 1 ? (uint32_t)(ring_of(slot, q) >> 12) : (uint32_t)rd_value();
	trace("legacy setup %02x q%u pfn %#x at port %#x", slot, q, pfn, io);
	if (k & 2)
		wr(F.vm->io, io + L_STATUS, 1, 0); /* reset first */
	wr(F.vm->io, io + L_STATUS, 1, 3);
	wr(F.vm->io, io + L_GUEST_FEATURES, 4, k & 4 ? 0xffffffffu : rd_value());
	wr(F.vm->io, io + L_QUEUE_SEL, 2, q);
	wr(F.vm->io, io + L_QUEUE_PFN, 4, pfn);
	if (q < 2)
		F.qsize[slot][q] = 256;
	if (k & 8)
		wr(F.vm->io, io + L_STATUS, 1, 7);
}

/* A modern driver's: features with VERSION_1, the rings' addresses, enable, DRIVER_OK. */
static void op_modern_setup(void)
{
	unsigned slot = rd_virtio(), q = in_u8(&F.in) % 3;
	uint8_t k = in_u8(&F.in);
	uint64_t m = need_bar(slot, 4);
	uint16_t size = k & 1 ? 256 : (uint16_t)(1u << (in_u8(&F.in) % 10));
	if (k & 0x80)
		size = (uint16_t)in_u16(&F.in);
	uint64_t ring = k & 2 ? rd_gpa() : ring_of(slot, q);
	trace("modern setup %02x q%u size %u ring %#" PRIx64 " at %#" PRIx64, slot, q, size, ring,
	      m);
	if (k & 4)
		wr(F.vm->mem, m + C_STATUS, 1, 0);
	wr(F.vm->mem, m + C_STATUS, 1, 3);
	wr(F.vm->mem, m + C_GFSELECT, 4, 1);
	wr(F.vm->mem, m + C_GF, 4, k & 8 ? 1 : rd_value());
	wr(F.vm->mem, m + C_GFSELECT, 4, 0);
	wr(F.vm->mem, m + C_GF, 4, k & 16 ? 0x10000000u : rd_value());
	wr(F.vm->mem, m + C_STATUS, 1, 0xb);
	wr(F.vm->mem, m + C_Q_SELECT, 2, q);
	wr(F.vm->mem, m + C_Q_SIZE, 2, size);
	wr(F.vm->mem, m + C_Q_DESC, 8, ring);
	wr(F.vm->mem, m + C_Q_AVAIL, 8, ring + RING_AVAIL);
	wr(F.vm->mem, m + C_Q_USED, 8, ring + RING_USED);
	wr(F.vm->mem, m + C_Q_ENABLE, 2, 1);
	if (q < 2)
		F.qsize[slot][q] = size && size <= 256 && !(size & (size - 1)) ? size : 256;
	if (k & 32)
		wr(F.vm->mem, m + C_STATUS, 1, 0xf);
}

/* MSI-X on, a table entry, and vectors for the configuration and the queues. */
static void op_msix(void)
{
	unsigned slot = rd_virtio();
	uint8_t k = in_u8(&F.in);
	unsigned cap = cap_of(slot, CAP_MSIX, 0);
	uint64_t table = need_bar(slot, 1);
	unsigned entry = in_u8(&F.in) % 4;
	trace("msix %02x entry %u ctrl %s", slot, entry, k & 1 ? "enable" : "disable");
	wr(F.vm->mem, table + 16 * entry, 4, 0xfee00000u);
	wr(F.vm->mem, table + 16 * entry + 4, 4, 0);
	wr(F.vm->mem, table + 16 * entry + 8, 4, 0x30 + entry);
	wr(F.vm->mem, table + 16 * entry + 12, 4, k & 2); /* masked or not */
	if (cap)
		cfg_write(slot, cap + 2, 2, k & 1 ? 0x8000 : k & 4 ? 0xc000 : 0);
	uint16_t vec = k & 8 ? (uint16_t)in_u16(&F.in) : in_u8(&F.in) % 4;
	if (k & 16) {
		uint16_t io = (uint16_t)need_bar(slot, 0);
		wr(F.vm->io, io + L_CONFIG_VECTOR, 2, vec);
		wr(F.vm->io, io + L_QUEUE_SEL, 2, in_u8(&F.in) % 3);
		wr(F.vm->io, io + L_QUEUE_VECTOR, 2, vec);
	} else {
		uint64_t m = need_bar(slot, 4);
		wr(F.vm->mem, m + C_MSIX, 2, vec);
		wr(F.vm->mem, m + C_Q_SELECT, 2, in_u8(&F.in) % 3);
		wr(F.vm->mem, m + C_Q_MSIX, 2, vec);
	}
}

/* The doorbell, by port, by MMIO, or through the configuration-space window. */
static void op_notify(void)
{
	unsigned slot = rd_virtio();
	uint8_t k = in_u8(&F.in);
	uint16_t q = k & 0x80 ? (uint16_t)in_u16(&F.in) : k % 3;
	switch ((k >> 2) % 3) {
	case 0: {
		uint64_t io = need_bar(slot, 0);
		trace("notify %02x q%u by port %#" PRIx64, slot, q, io + L_QUEUE_NOTIFY);
		wr(F.vm->io, io + L_QUEUE_NOTIFY, 2, q);
		break;
	}
	case 1: {
		uint64_t m = need_bar(slot, 4);
		trace("notify %02x q%u by mmio", slot, q);
		wr(F.vm->mem, m + M_NOTIFY + 4ull * q, 2, q);
		break;
	}
	default: {
		/* The VIRTIO_PCI_CAP_PCI_CFG window: bar 4, offset, length, then data. */
		unsigned cap = cap_of(slot, CAP_VNDR, 4);
		trace("notify %02x q%u through the configuration window at %#x", slot, q, cap);
		if (!cap)
			break;
		cfg_write(slot, cap + 4, 1, 4);
		cfg_write(slot, cap + 8, 4, M_NOTIFY + 4u * q);
		cfg_write(slot, cap + 12, 4, 2);
		cfg_write(slot, cap + 16, 2, q);
		break;
	}
	}
	if (q < 2)
		trace("  used index of %02x q%u: %u", slot, q,
		      ram_get16(ring_of(slot, q) + RING_USED + 2));
}

/* The VIRTIO_PCI_CAP_PCI_CFG window used as a driver without BAR access uses it: pointed
 * at one of BAR4's structures (or anywhere), then data read or written through it. */
static void op_window(void)
{
	static const uint32_t pages[] = {0x0000, 0x1000, 0x2000, M_NOTIFY};
	static const uint8_t lens[] = {1, 2, 4, 3};
	unsigned slot = rd_virtio();
	uint8_t k = in_u8(&F.in);
	unsigned cap = cap_of(slot, CAP_VNDR, 4);
	uint8_t bar = k & 0x80 ? in_u8(&F.in) : 4;
	uint32_t off = k & 0x40 ? (uint32_t)in_bytes(&F.in, 4) : pages[k & 3] + in_u8(&F.in) % 0x40;
	uint32_t len = lens[(k >> 2) & 3];
	bool write = k & 0x10;
	unsigned size = rd_size(4);
	uint32_t v = write ? rd_value() : 0;
	trace("window %02x bar %u offset %#x length %u: %s %#x size %u", slot, bar, off, len,
	      write ? "write" : "read", v, size);
	if (!cap)
		return;
	cfg_write(slot, cap + 4, 1, bar);
	cfg_write(slot, cap + 8, 4, off);
	cfg_write(slot, cap + 12, 4, len);
	if (write)
		cfg_write(slot, cap + 16, size, v);
	else
		cfg_read(slot, cap + 16, size);
}

/* Writes to an ioeventfd as KVM does when the guest hits it; the device's thread serves it.
 * Waits until the thread has taken the count, so that what follows sees most of its work. */
static void op_kick(void)
{
	unsigned n = fake_hv_nioev(F.hv);
	if (!n)
		return;
	unsigned want = in_u8(&F.in) % n;
	int fd = -1;
	pthread_mutex_lock(&F.hv->lock);
	for (unsigned i = 0; i < FAKE_HV_IOEV; i++)
		if (F.hv->ioev[i].used && want-- == 0) {
			fd = F.hv->ioev[i].fd;
			break;
		}
	pthread_mutex_unlock(&F.hv->lock);
	trace("kick eventfd %d", fd);
	if (fd < 0)
		return;
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		return;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (unsigned i = 0; i < 10000 && poll(&p, 1, 0) == 1; i++)
		sched_yield();
}

/* Status and ISR: a reset, a step of the handshake, FAILED, or the ISR read. */
static void op_status(void)
{
	static const uint8_t values[] = {0, 1, 3, 7, 0xb, 0xf, 0x80, 0x40, 0xff};
	unsigned slot = rd_virtio();
	uint8_t k = in_u8(&F.in);
	uint8_t v = values[(k >> 2) % sizeof(values)];
	trace("status %02x %u %#x", slot, k & 3, v);
	switch (k & 3) {
	case 0:
		wr(F.vm->io, need_bar(slot, 0) + L_STATUS, 1, v);
		break;
	case 1:
		wr(F.vm->mem, need_bar(slot, 4) + C_STATUS, 1, v);
		break;
	case 2:
		rd(F.vm->io, need_bar(slot, 0) + L_ISR, 1);
		break;
	default:
		rd(F.vm->mem, need_bar(slot, 4) + 0x1000, 1);
		break;
	}
}

/* Firmware sizing a BAR and placing it: where firmware would, over another BAR, over the
 * chipset's ports and memory, or anywhere; with its decoding switched. */
static void op_place(void)
{
	unsigned slot = SLOT_BLK + in_u8(&F.in) % 3;
	unsigned index = in_u8(&F.in) % 6;
	uint8_t k = in_u8(&F.in);
	unsigned reg = 0x10 + 4 * index;
	uint32_t old = cfg_read(slot, reg, 4);
	cfg_write(slot, reg, 4, 0xffffffff);
	uint32_t mask = cfg_read(slot, reg, 4);
	bool io = mask & 1;
	uint64_t addr;
	static const uint32_t io_spots[] = {0x0,   0x60,  0x70,  0x90, 0x3f8,  0x500,
	                                    0x510, 0xcf8, 0xcfc, 0xe0, 0xc000, 0xfff0};
	static const uint64_t mem_spots[] = {0x0,        0xa0000,
	                                     0xc0000,    0xe0000,
	                                     0xf0000,    0xb0000000ull,
	                                     0xc0000000, 0xfec00000,
	                                     0xfee00000, 0xfeffc000,
	                                     0xffff0000, 0x100000000ull,
	                                     FW_MEM64,   0xffffffffull & ~0xfffull};
	switch (k % 4) {
	case 0:
		addr = old;
		break;
	case 1: {
		uint64_t a, s;
		bar_at(SLOT_BLK + in_u8(&F.in) % 3, in_u8(&F.in) % 6, &a, &s);
		addr = a;
		break;
	}
	case 2:
		addr = io ? io_spots[in_u8(&F.in) % 12] : mem_spots[in_u8(&F.in) % 14];
		break;
	default:
		addr = in_u64(&F.in);
		break;
	}
	trace("place %02x bar%u at %#" PRIx64 " (mask %#x), command %#x", slot, index, addr, mask,
	      k >> 2);
	cfg_write(slot, reg, 4, (uint32_t)addr);
	if (!io && (mask & 6) == 4 && index < 5)
		cfg_write(slot, reg + 4, 4, (uint32_t)(addr >> 32));
	cfg_write(slot, 4, 2, k >> 2 & 7);
}

/* fw_cfg: a selector and a run of data reads, as SeaBIOS reads a file. */
static void op_fw_cfg(void)
{
	static const uint16_t keys[] = {0x0,  0x1,  0x3,  0x5,    0x19,   0x20,   0x21,
	                                0x22, 0x23, 0x24, 0x8000, 0x8002, 0x8003, 0x4019};
	uint8_t k = in_u8(&F.in);
	uint16_t key = k & 0x80 ? (uint16_t)in_u16(&F.in) : keys[k % 14];
	unsigned n = in_u8(&F.in);
	trace("fw_cfg key %#x, %u reads", key, n);
	wr(F.vm->io, 0x510, 2, key);
	for (unsigned i = 0; i < n; i++)
		rd(F.vm->io, 0x511, 1);
}

/* ------------------------------------------------------------------ the board */

static int collect(void *arg, const struct bm_flat_range *r)
{
	struct flat *f = arg;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct bm_flat_range *v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			fail("out of memory");
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = *r;
	return 0;
}

static void flat_of(bm_space *s, struct flat *f)
{
	f->n = 0;
	bm_space_flat(s, collect, f);
}

static void check(void)
{
	if (memslots_check(F.vm->slots, stderr))
		fail("the memslots differ from the flat view");
	if (ioev_check(F.vm->ioev, stderr))
		fail("the ioeventfds differ from the flat views");
	if (F.hv->refusals)
		fail("the hypervisor refused %u requests", F.hv->refusals);
}

/* A guest's reset or isa-debug-exit stops a real run; here the guest goes on, so that a
 * listener's failure (which stops it with VM_STATUS_ERROR) is never hidden behind one.
 * isa-debug-exit's value 0 gives status 1 too, as in QEMU: its reason tells them apart. */
static void check_stop(void)
{
	if (!vm_stopping(F.vm))
		return;
	pthread_mutex_lock(&F.vm->stop_lock);
	int status = F.vm->stop_status;
	char reason[sizeof(F.vm->stop_reason)];
	memcpy(reason, F.vm->stop_reason, sizeof(reason));
	F.vm->stopping = false;
	atomic_store(&F.vm->stop_flag, false);
	pthread_mutex_unlock(&F.vm->stop_lock);
	trace("the guest stopped the machine: %s", reason);
	if (status == VM_STATUS_ERROR && strncmp(reason, "guest ", 6) != 0)
		fail("the machine stopped: %s", reason);
}

static uint8_t cmos_read(unsigned i)
{
	wr(F.vm->io, 0x70, 1, i);
	return (uint8_t)rd(F.vm->io, 0x71, 1);
}

static void cmos_write(unsigned i, uint8_t v)
{
	wr(F.vm->io, 0x70, 1, i);
	wr(F.vm->io, 0x71, 1, v);
}

static bool cmos_restored(unsigned i)
{
	/* The clock, which runs on, and register C, which reading clears. */
	return i >= 0x0a && i != 0x0c && i != 0x32;
}

static void select_board(struct board *b)
{
	F.b = b;
	F.hv = &b->hv;
	F.vm = b->vm;
	F.cpu = b->cpu;
}

/* Board key bits: 1 bhyve's layout, 2 a read-only image, 4 RAM above 4 GiB. The image
 * size goes with the key, so that each size is seen with and without the others. */
static struct board *board_new(unsigned key)
{
	static const uint64_t image_sizes[] = {0x10000, 0x10000 + 300, 0, 0x100000};
	struct board *b = calloc(1, sizeof(*b));
	if (!b)
		fail("out of memory");
	b->image_size = image_sizes[(key ^ key >> 2) & 3];
	b->capacity = b->image_size / 512;
	char image[64] = "";
	const char *dirs[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
	b->image_fd = -1;
	for (unsigned i = 0; i < 3 && b->image_fd < 0; i++) {
		if (!dirs[i])
			continue;
		snprintf(image, sizeof(image), "%s/fuzz-vmm-board-XXXXXX", dirs[i]);
		b->image_fd = mkstemp(image);
	}
	if (b->image_fd < 0 || ftruncate(b->image_fd, (off_t)b->image_size))
		fail("cannot create a disk image: %s", strerror(errno));

	char blk[128], *argv[24];
	int argc = 0;
	snprintf(blk, sizeof(blk), "virtio-blk,file=%s%s", image, key & 2 ? ",readonly=on" : "");
	char dev_net[] = "virtio-net", dev_test[] = "pci-testdev", dev_exit[] = "isa-debug-exit",
	     dev_con[] = "isa-debugcon,iobase=0x402", opt_dev[] = "-device", opt_m[] = "-m",
	     ram[] = "3G", ram_small[] = "16", layout[] = "--bar-layout=bhyve",
	     name[] = "busmap-vmm";
	argv[argc++] = name;
	argv[argc++] = opt_m;
	argv[argc++] = key & 4 ? ram : ram_small;
	argv[argc++] = opt_dev;
	argv[argc++] = blk;
	argv[argc++] = opt_dev;
	argv[argc++] = dev_net;
	argv[argc++] = opt_dev;
	argv[argc++] = dev_test;
	argv[argc++] = opt_dev;
	argv[argc++] = dev_exit;
	argv[argc++] = opt_dev;
	argv[argc++] = dev_con;
	if (key & 1)
		argv[argc++] = layout;
	argv[argc] = NULL;
	char err[256] = "";
	if (vmm_parse(argc, argv, &b->o, err, sizeof(err)))
		fail("the board's command line is refused: %s", err);
	b->o.bios = F.bios;
	b->o.bios_size = BIOS_SIZE;

	fake_hv_init(&b->hv);
	int rc = vm_new(&fake_hv_ops, &b->hv, b->o.ram_size, b->o.ncpus, &b->vm);
	if (rc)
		fail("vm_new: %s", strerror(-rc));
	b->vm->log = F.trace ? stderr : F.devnull;
	if ((rc = board_build(b->vm, &b->o, -1, NULL)))
		fail("board_build: %s", strerror(-rc));
	unlink(image); /* virtio-blk and we hold it open */
	if ((rc = bm_vcpu_new(b->vm->sys, 0, NULL, &b->cpu)))
		fail("bm_vcpu_new: %s", strerror(-rc));
	select_board(b);
	find_caps();

	/* What the reset after every input must bring back. */
	rc = bm_pci_host_save(b->vm->pci, NULL, 0, &b->pci_state_len);
	if (rc != -ENOSPC || !(b->pci_state = malloc(b->pci_state_len)) ||
	    (rc = bm_pci_host_save(b->vm->pci, b->pci_state, b->pci_state_len, &b->pci_state_len)))
		fail("bm_pci_host_save: %s", strerror(-rc));
	flat_of(b->vm->mem, &b->view[0]);
	flat_of(b->vm->io, &b->view[1]);
	for (unsigned i = 0; i < CMOS_SIZE; i++)
		if (cmos_restored(i))
			b->cmos[i] = cmos_read(i);
	wr(b->vm->io, 0x70, 1, 0);
	for (unsigned i = 0; i < 7; i++)
		b->uart[i] = (uint8_t)rd(b->vm->io, 0x3f9 + i, 1);
	trace("board %u: %s%s%s, image of %#" PRIx64 " bytes", key, key & 1 ? "bhyve layout, " : "",
	      key & 2 ? "read-only image, " : "", key & 4 ? "3 GiB" : "16 MiB", b->image_size);
	return b;
}

static void board_free(struct board *b)
{
	bm_vcpu_free(b->cpu);
	vm_free(b->vm);
	b->o.bios = NULL; /* ours, not the parser's */
	vmm_options_free(&b->o);
	pthread_mutex_destroy(&b->hv.lock);
	close(b->image_fd);
	free(b->pci_state);
	free(b->view[0].v);
	free(b->view[1].v);
	free(b);
}

static void same_view(unsigned i, bm_space *s, const char *name)
{
	static struct flat now;
	const struct flat *then = &F.b->view[i];
	flat_of(s, &now);
	for (size_t k = 0; k < now.n || k < then->n; k++) {
		const struct bm_flat_range *a = k < then->n ? &then->v[k] : NULL;
		const struct bm_flat_range *b = k < now.n ? &now.v[k] : NULL;
		if (a && b && a->start == b->start && a->last == b->last &&
		    a->region == b->region && a->offset == b->offset && a->conflict == b->conflict)
			continue;
		fail("after the reset, %s range %zu is [%#" PRIx64 ", %#" PRIx64 "] %s, it was "
		     "[%#" PRIx64 ", %#" PRIx64 "] %s",
		     name, k, b ? b->start : 0, b ? b->last : 0,
		     b && b->region ? bm_region_name(b->region) : "-", a ? a->start : 0,
		     a ? a->last : 0, a && a->region ? bm_region_name(a->region) : "-");
	}
}

/*
 * Back to the state the board was built in, as far as a guest can tell, so that an input
 * runs the same on a board that ran others before. The devices are reset the way a guest
 * resets them; the PCI layer's registers, MSI-X tables and placements are restored whole;
 * the chipset's hooks are run on the restored registers. What is left is the clock of the
 * RTC and the host threads' timing. The PCI state and both flat views must then be what
 * they were: the map follows from the registers alone.
 */
static void board_reset(void)
{
	struct board *b = F.b;
	F.op = 0;
	trace("reset");
	/* Doorbells the guest rang are served before the devices go back to reset. */
	for (unsigned i = 0; i < FAKE_HV_IOEV; i++) {
		pthread_mutex_lock(&F.hv->lock);
		int fd = F.hv->ioev[i].used ? F.hv->ioev[i].fd : -1;
		pthread_mutex_unlock(&F.hv->lock);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		for (unsigned n = 0; fd >= 0 && n < 10000 && poll(&p, 1, 0) == 1; n++)
			sched_yield();
	}
	/* virtio: status 0 through the configuration window, whatever the BARs hold. */
	for (unsigned slot = SLOT_BLK; slot <= SLOT_NET; slot++) {
		bm_pci_func *f = func_at(slot);
		unsigned cap = cap_of(slot, CAP_VNDR, 4);
		if (!f || !cap)
			fail("no configuration window on %02x.0", slot);
		bm_pci_func_cfg_write(f, cap + 4, 1, 4);
		bm_pci_func_cfg_write(f, cap + 8, 4, C_STATUS);
		bm_pci_func_cfg_write(f, cap + 12, 4, 1);
		bm_pci_func_cfg_write(f, cap + 16, 1, 0);
	}
	/* pci-testdev: an unknown test number ends the running test. */
	bm_pci_func *t = func_at(SLOT_TESTDEV);
	bm_pci_func_cfg_write(t, 0x14, 4, 0xfe00);
	bm_pci_func_cfg_write(t, 0x04, 2, CMD_IO);
	wr(F.vm->io, 0xfe00, 1, 0xff);

	int rc = bm_pci_host_restore(F.vm->pci, b->pci_state, b->pci_state_len);
	if (rc)
		fail("bm_pci_host_restore: %s", strerror(-rc));
	/* Restoring calls no hook: PAM, SMRAM and the PIRQ routers see their registers now. */
	bm_pci_func *nb = func_at(0), *sb = func_at(1);
	bm_pci_func_cfg_write(nb, 0x58, 4, bm_pci_func_cfg_get(nb, 0x58, 4));
	bm_pci_func_cfg_write(nb, 0x5c, 4, bm_pci_func_cfg_get(nb, 0x5c, 4));
	bm_pci_func_cfg_write(nb, 0x72, 1, bm_pci_func_cfg_get(nb, 0x72, 1));
	bm_pci_func_cfg_write(sb, 0x60, 4, bm_pci_func_cfg_get(sb, 0x60, 4));

	/* The UART as built: divisor 12, line control 0, interrupts off, OUT2 on, FIFOs
	 * emptied, pending status read away. */
	wr(F.vm->io, 0x3fb, 1, 0x80);
	wr(F.vm->io, 0x3f8, 1, 0x0c);
	wr(F.vm->io, 0x3f9, 1, 0);
	wr(F.vm->io, 0x3fb, 1, 0);
	wr(F.vm->io, 0x3f9, 1, 0);
	wr(F.vm->io, 0x3fa, 1, 0x06);
	wr(F.vm->io, 0x3fa, 1, 0);
	wr(F.vm->io, 0x3fc, 1, 0x08);
	wr(F.vm->io, 0x3ff, 1, 0);
	for (unsigned i = 0; i < 17; i++)
		rd(F.vm->io, 0x3f8, 1);
	rd(F.vm->io, 0x3fd, 1);
	rd(F.vm->io, 0x3fe, 1);
	rd(F.vm->io, 0x3fa, 1);
	/* CMOS: register B first (it decides how the clock registers read), then the rest. */
	cmos_write(0x0b, b->cmos[0x0b]);
	for (unsigned i = 0; i < CMOS_SIZE; i++)
		if (cmos_restored(i) && i != 0x0b)
			cmos_write(i, b->cmos[i]);
	cmos_read(0x0c);
	wr(F.vm->io, 0x70, 1, 0);
	wr(F.vm->io, 0x510, 2, 0);
	wr(F.vm->io, 0x92, 1, 0);
	wr(F.vm->io, 0x61, 1, 0);
	/* Port 0x61's refresh bit toggles on every read; it read 0 before the first. */
	if (rd(F.vm->io, 0x61, 1) & 0x10)
		rd(F.vm->io, 0x61, 1);
	check_stop();

	/* RAM and the image go back to zeros. */
	if (madvise(F.vm->ram, F.vm->ram_size, MADV_DONTNEED))
		fail("madvise: %s", strerror(errno));
	if (ftruncate(b->image_fd, 0) || ftruncate(b->image_fd, (off_t)b->image_size))
		fail("cannot clear the image: %s", strerror(errno));
	memset(F.qsize, 0, sizeof(F.qsize));
	memset(F.next_desc, 0, sizeof(F.next_desc));
	F.next_buf = 0;

	static uint8_t *now;
	static size_t cap;
	size_t len = 0;
	rc = bm_pci_host_save(F.vm->pci, now, cap, &len);
	if (rc == -ENOSPC) {
		free(now);
		cap = len;
		if (!(now = malloc(cap)))
			fail("out of memory");
		rc = bm_pci_host_save(F.vm->pci, now, cap, &len);
	}
	if (rc)
		fail("bm_pci_host_save: %s", strerror(-rc));
	for (size_t i = 0; i < len || i < b->pci_state_len; i++)
		if (len != b->pci_state_len || now[i] != b->pci_state[i])
			fail("after the reset, byte %zu of the PCI state is %#x, it was %#x", i,
			     i < len ? now[i] : 0, i < b->pci_state_len ? b->pci_state[i] : 0);
	for (unsigned i = 0; i < 7; i++) {
		uint8_t v = (uint8_t)rd(F.vm->io, 0x3f9 + i, 1);
		if (v != b->uart[i])
			fail("after the reset, UART register %u reads %#x, it read %#x", i + 1, v,
			     b->uart[i]);
	}
	same_view(0, F.vm->mem, "memory");
	same_view(1, F.vm->io, "I/O");
	check();
}

/*
 * Boards outlive inputs and busmap frees retired memory on a thread of its own, so an
 * input's count of allocations and frees says nothing about leaks, and libFuzzer's check
 * after each unbalanced input would run the leak scanner over every board most of the time.
 * Leaks are still looked for at exit; a -detect_leaks given on the command line wins.
 */
static void no_leak_check_per_input(int *argc, char ***argv)
{
	static char flag[] = "-detect_leaks=0";
	char **v = malloc(((size_t)*argc + 2) * sizeof(*v));
	if (!v || *argc < 1)
		return;
	v[0] = (*argv)[0];
	v[1] = flag;
	for (int i = 1; i < *argc; i++)
		v[i + 1] = (*argv)[i];
	v[*argc + 1] = NULL;
	(*argc)++;
	*argv = v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	no_leak_check_per_input(argc, argv);
	const char *t = getenv("FUZZ_TRACE");
	F.trace = t && *t && *t != '0';
	t = getenv("FUZZ_FRESH_BOARD");
	F.fresh = t && *t && *t != '0';
	F.devnull = fopen("/dev/null", "w");
	if (!F.devnull)
		fail("cannot open /dev/null");
	/* Something recognisable, and a hlt loop at the reset vector. */
	for (unsigned i = 0; i < BIOS_SIZE; i++)
		F.bios[i] = (uint8_t)(i * 7);
	memset(F.bios + BIOS_SIZE - 16, 0xf4, 16);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	F.in = (struct fz_input){data, size};
	F.op = 0;
	unsigned key = in_u8(&F.in) % NBOARDS;
	if (!F.boards[key])
		F.boards[key] = board_new(key);
	select_board(F.boards[key]);
	check();
	for (F.op = 1; !in_empty(&F.in) && F.op <= MAX_OPS; F.op++) {
		switch (in_u8(&F.in) % 21) {
		case 0:
		case 1:
			op_cfg();
			break;
		case 2:
			op_cfg_raw();
			break;
		case 3:
			op_port();
			break;
		case 4:
			op_bar();
			break;
		case 5:
			op_mmio();
			break;
		case 6:
			op_ram();
			break;
		case 7:
			op_desc();
			break;
		case 8:
		case 11:
			op_request();
			break;
		case 9:
			op_blk_header();
			break;
		case 10:
			op_avail();
			break;
		case 12:
			op_legacy_setup();
			break;
		case 13:
			op_modern_setup();
			break;
		case 14:
			op_msix();
			break;
		case 15:
		case 16:
			op_notify();
			break;
		case 17:
			op_kick();
			break;
		case 18:
			op_status();
			break;
		case 20:
			op_window();
			break;
		default:
			if (in_u8(&F.in) & 1)
				op_place();
			else
				op_fw_cfg();
			break;
		}
		check_stop();
		if (F.op % CHECK_EVERY == 0)
			check();
	}
	check();
	check_stop();
	if (F.fresh) {
		board_free(F.boards[key]);
		F.boards[key] = NULL;
	} else {
		board_reset();
	}
	return 0;
}
