/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * virtio-blk and virtio-net over PCI, driven as a guest driver would through CF8/CFC and
 * the BARs: legacy and modern set-up, requests on an image file, interrupts (INTx and
 * MSI-X), both doorbell paths, and a hostile driver that the device must survive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "devices.h"
#include "fake_hv.h"
#include "ioeventfd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB      (1ull << 20)
#define RAM_SIZE (64 * MiB)
#define SECTOR   512
#define SECTORS  64 /* image size */
#define GSI      10 /* where the test routes INTx */

#define SLOT_BLK 4
#define SLOT_NET 5

/* Where the test's "firmware" puts the BARs. */
#define IO_BLK     0xc000
#define IO_NET     0xc100
#define MSIX_BLK   0xc0000000ull
#define MSIX_NET   0xc0001000ull
#define MODERN_BLK 0x8000000000ull
#define MODERN_NET 0x8000004000ull

/* Guest RAM the test driver uses. */
#define RING0  0x100000ull
#define RING1  0x110000ull
#define DATA   0x200000ull
#define HDR    0x300000ull
#define STATUS 0x300100ull
#define INDIR  0x301000ull
#define IDBUF  0x302000ull

/* Legacy registers. */
#define L_HOST_FEATURES  0x00
#define L_GUEST_FEATURES 0x04
#define L_QUEUE_PFN      0x08
#define L_QUEUE_NUM      0x0c
#define L_QUEUE_SEL      0x0e
#define L_QUEUE_NOTIFY   0x10
#define L_STATUS         0x12
#define L_ISR            0x13
#define L_CONFIG_VECTOR  0x14
#define L_QUEUE_VECTOR   0x16

/* Modern common configuration. */
#define C_DFSELECT 0x00
#define C_DF       0x04
#define C_GFSELECT 0x08
#define C_GF       0x0c
#define C_MSIX     0x10
#define C_NUMQ     0x12
#define C_STATUS   0x14
#define C_Q_SELECT 0x16
#define C_Q_SIZE   0x18
#define C_Q_MSIX   0x1a
#define C_Q_ENABLE 0x1c
#define C_Q_NOFF   0x1e
#define C_Q_DESC   0x20
#define C_Q_AVAIL  0x28
#define C_Q_USED   0x30

#define S_ACK         0x01
#define S_DRIVER      0x02
#define S_DRIVER_OK   0x04
#define S_FEATURES_OK 0x08
#define S_NEEDS_RESET 0x40

#define F_INDIRECT   28
#define F_VERSION1   32
#define BLK_F_RO     5
#define BLK_F_FLUSH  9
#define NET_F_MAC    5
#define NET_F_STATUS 16

#define T_IN      0
#define T_OUT     1
#define T_FLUSH   4
#define T_GET_ID  8
#define T_DISCARD 11

#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

#define NO_VECTOR 0xffff

struct env {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *vcpu;
	char path[64];
	FILE *log;
};

/* The test's driver for one function. */
struct dq {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
	uint16_t next;
};

struct drv {
	struct env *e;
	unsigned slot;
	bool modern;
	uint16_t io;
	uint64_t msix_bar, mmio;
	/* From the capabilities. */
	uint64_t common, isr, device, notify;
	uint32_t notify_mult;
	unsigned msix_cap, pcicfg_cap;
	struct dq q[2];
};

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* ---- machine ---- */

static void route_intx(void *arg, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	(void)src;
	(void)slot;
	(void)pin;
	vm_irq_line(arg, GSI, level);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	fake_hv_init(&e->hv);
	assert_int_equal(vm_new(&fake_hv_ops, &e->hv, RAM_SIZE, 1, &e->vm), 0);
	e->log = tmpfile();
	assert_non_null(e->log);
	e->vm->log = e->log;
	e->vm->intx_route = route_intx;
	e->vm->intx_arg = e->vm;
	assert_int_equal(bm_vcpu_new(e->vm->sys, 0, NULL, &e->vcpu), 0);

	/* An image whose sector s is filled with byte s. */
	strcpy(e->path, "/tmp/busmap-virtio-XXXXXX");
	int fd = mkstemp(e->path);
	assert_true(fd >= 0);
	uint8_t sec[SECTOR];
	for (unsigned s = 0; s < SECTORS; s++) {
		memset(sec, (int)s, sizeof(sec));
		assert_int_equal(write(fd, sec, sizeof(sec)), sizeof(sec));
	}
	close(fd);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	assert_int_equal(bm_vcpu_free(e->vcpu), 0);
	vm_free(e->vm);
	unlink(e->path);
	fclose(e->log);
	pthread_mutex_destroy(&e->hv.lock);
	free(e);
	return 0;
}

static void add_blk(struct env *e, bool readonly)
{
	struct virtio_blk *b;
	assert_int_equal(virtio_blk_new(e->vm, SLOT_BLK, e->path, readonly, &b), 0);
	assert_int_equal(vm_add_device(e->vm, "virtio-blk", b, virtio_blk_free), 0);
}

static void add_net(struct env *e, const uint8_t *mac)
{
	struct virtio_net *n;
	assert_int_equal(virtio_net_new(e->vm, SLOT_NET, mac, &n), 0);
	assert_int_equal(vm_add_device(e->vm, "virtio-net", n, virtio_net_free), 0);
}

static void *gp(struct env *e, uint64_t gpa)
{
	return e->vm->ram + gpa;
}

static unsigned log_lines(struct env *e)
{
	fflush(e->log);
	rewind(e->log);
	unsigned n = 0;
	int ch;
	while ((ch = fgetc(e->log)) != EOF)
		n += ch == '\n';
	return n;
}

/* What the hypervisor holds, read under its lock: the I/O thread may be sending. */
static bool irq(struct env *e)
{
	pthread_mutex_lock(&e->hv.lock);
	bool v = e->hv.irq[GSI];
	pthread_mutex_unlock(&e->hv.lock);
	return v;
}

static unsigned nmsis(struct env *e)
{
	pthread_mutex_lock(&e->hv.lock);
	unsigned n = e->hv.nmsis;
	pthread_mutex_unlock(&e->hv.lock);
	return n;
}

static void pause_1ms(void)
{
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
}

/* Bounded waits for what the I/O thread does: generous, never a timing assertion. */
#define WAIT_ROUNDS 20000

static bool wait_irq(struct env *e)
{
	for (unsigned i = 0; i < WAIT_ROUNDS && !irq(e); i++)
		pause_1ms();
	return irq(e);
}

/* ---- port, memory and configuration accesses ---- */

static uint64_t io_rd(struct env *e, uint64_t port, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->vm->io, port, size, &v), 0);
	return v;
}

static void io_wr(struct env *e, uint64_t port, unsigned size, uint64_t v)
{
	assert_int_equal(bm_write(e->vcpu, e->vm->io, port, size, v), 0);
}

static uint64_t mem_rd(struct env *e, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->vm->mem, addr, size, &v), 0);
	return v;
}

static void mem_wr(struct env *e, uint64_t addr, unsigned size, uint64_t v)
{
	assert_int_equal(bm_write(e->vcpu, e->vm->mem, addr, size, v), 0);
}

static uint32_t cfg_rd(struct env *e, unsigned slot, unsigned reg, unsigned size)
{
	io_wr(e, 0xcf8, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	return (uint32_t)io_rd(e, 0xcfc + (reg & 3), size);
}

static void cfg_wr(struct env *e, unsigned slot, unsigned reg, unsigned size, uint32_t v)
{
	io_wr(e, 0xcf8, 4, 0x80000000u | slot << 11 | (reg & 0xfc));
	io_wr(e, 0xcfc + (reg & 3), size, v);
}

/* ---- the test driver ---- */

static void find_caps(struct drv *d)
{
	struct env *e = d->e;
	unsigned ptr = cfg_rd(e, d->slot, 0x34, 1);
	for (unsigned n = 0; ptr && n < 48; n++) {
		unsigned id = cfg_rd(e, d->slot, ptr, 1);
		if (id == 0x11)
			d->msix_cap = ptr;
		if (id == 0x09) {
			unsigned type = cfg_rd(e, d->slot, ptr + 3, 1);
			unsigned bar = cfg_rd(e, d->slot, ptr + 4, 1);
			uint32_t off = cfg_rd(e, d->slot, ptr + 8, 4);
			uint64_t at = d->mmio + off;
			if (type != 5)
				assert_int_equal(bar, 4);
			if (type == 1)
				d->common = at;
			else if (type == 2) {
				d->notify = at;
				d->notify_mult = cfg_rd(e, d->slot, ptr + 16, 4);
			} else if (type == 3)
				d->isr = at;
			else if (type == 4)
				d->device = at;
			else if (type == 5)
				d->pcicfg_cap = ptr;
		}
		ptr = cfg_rd(e, d->slot, ptr + 1, 1);
	}
	assert_int_equal(ptr, 0);
}

static void program_bars(struct drv *d)
{
	struct env *e = d->e;
	cfg_wr(e, d->slot, 0x10, 4, d->io);
	cfg_wr(e, d->slot, 0x14, 4, (uint32_t)d->msix_bar);
	cfg_wr(e, d->slot, 0x20, 4, (uint32_t)d->mmio);
	cfg_wr(e, d->slot, 0x24, 4, (uint32_t)(d->mmio >> 32));
	cfg_wr(e, d->slot, 0x04, 2, 0x7); /* I/O, memory, bus master */
	find_caps(d);
}

static struct drv drv_blk(struct env *e)
{
	struct drv d = {
	    .e = e, .slot = SLOT_BLK, .io = IO_BLK, .msix_bar = MSIX_BLK, .mmio = MODERN_BLK};
	program_bars(&d);
	return d;
}

static struct drv drv_net(struct env *e)
{
	struct drv d = {
	    .e = e, .slot = SLOT_NET, .io = IO_NET, .msix_bar = MSIX_NET, .mmio = MODERN_NET};
	program_bars(&d);
	return d;
}

static uint64_t ring_base(unsigned q)
{
	return q ? RING1 : RING0;
}

/* Fresh rings: the driver zeroes them before handing them over. */
static void ring_clear(struct drv *d, unsigned qi)
{
	memset(gp(d->e, ring_base(qi)), 0, 0x4000);
	d->q[qi].avail_idx = 0;
	d->q[qi].next = 0;
}

static void legacy_status(struct drv *d, uint8_t s)
{
	io_wr(d->e, d->io + L_STATUS, 1, s);
}

/* Legacy set-up of nq queues of the largest size, at RING0 and RING1. */
static void legacy_init(struct drv *d, unsigned nq, uint32_t features)
{
	struct env *e = d->e;
	d->modern = false;
	legacy_status(d, 0);
	legacy_status(d, S_ACK | S_DRIVER);
	uint32_t host = (uint32_t)io_rd(e, d->io + L_HOST_FEATURES, 4);
	io_wr(e, d->io + L_GUEST_FEATURES, 4, host & features);
	for (unsigned i = 0; i < nq; i++) {
		struct dq *q = &d->q[i];
		io_wr(e, d->io + L_QUEUE_SEL, 2, i);
		q->size = (uint16_t)io_rd(e, d->io + L_QUEUE_NUM, 2);
		assert_int_equal(q->size, 256);
		assert_int_equal(io_rd(e, d->io + L_QUEUE_PFN, 4), 0);
		q->desc = ring_base(i);
		q->avail = q->desc + 16 * q->size;
		q->used = (q->avail + 6 + 2 * q->size + 4095) & ~4095ull;
		ring_clear(d, i);
		io_wr(e, d->io + L_QUEUE_PFN, 4, q->desc >> 12);
		assert_int_equal(io_rd(e, d->io + L_QUEUE_PFN, 4), q->desc >> 12);
	}
	legacy_status(d, S_ACK | S_DRIVER | S_DRIVER_OK);
}

static uint8_t modern_status(struct drv *d)
{
	return (uint8_t)mem_rd(d->e, d->common + C_STATUS, 1);
}

/* Modern set-up through the common configuration, queues of qsize entries. */
static void modern_init(struct drv *d, unsigned nq, uint64_t features, uint16_t qsize)
{
	struct env *e = d->e;
	d->modern = true;
	mem_wr(e, d->common + C_STATUS, 1, 0);
	assert_int_equal(modern_status(d), 0);
	mem_wr(e, d->common + C_STATUS, 1, S_ACK | S_DRIVER);
	mem_wr(e, d->common + C_DFSELECT, 4, 0);
	uint64_t host = mem_rd(e, d->common + C_DF, 4);
	mem_wr(e, d->common + C_DFSELECT, 4, 1);
	host |= mem_rd(e, d->common + C_DF, 4) << 32;
	assert_true(host & (1ull << F_VERSION1));
	uint64_t f = host & features;
	mem_wr(e, d->common + C_GFSELECT, 4, 0);
	mem_wr(e, d->common + C_GF, 4, (uint32_t)f);
	mem_wr(e, d->common + C_GFSELECT, 4, 1);
	mem_wr(e, d->common + C_GF, 4, (uint32_t)(f >> 32));
	mem_wr(e, d->common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(modern_status(d), S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(mem_rd(e, d->common + C_NUMQ, 2), nq);
	for (unsigned i = 0; i < nq; i++) {
		struct dq *q = &d->q[i];
		mem_wr(e, d->common + C_Q_SELECT, 2, i);
		assert_int_equal(mem_rd(e, d->common + C_Q_SIZE, 2), 256);
		mem_wr(e, d->common + C_Q_SIZE, 2, qsize);
		q->size = (uint16_t)mem_rd(e, d->common + C_Q_SIZE, 2);
		assert_int_equal(q->size, qsize);
		assert_int_equal(mem_rd(e, d->common + C_Q_NOFF, 2), i);
		q->desc = ring_base(i);
		q->avail = q->desc + 0x1000;
		q->used = q->desc + 0x2000;
		ring_clear(d, i);
		/* Addresses by 32-bit halves, as Linux writes them. */
		mem_wr(e, d->common + C_Q_DESC, 4, (uint32_t)q->desc);
		mem_wr(e, d->common + C_Q_DESC + 4, 4, q->desc >> 32);
		mem_wr(e, d->common + C_Q_AVAIL, 4, (uint32_t)q->avail);
		mem_wr(e, d->common + C_Q_AVAIL + 4, 4, q->avail >> 32);
		mem_wr(e, d->common + C_Q_USED, 8, q->used);
		assert_int_equal(mem_rd(e, d->common + C_Q_USED, 8), q->used);
		mem_wr(e, d->common + C_Q_ENABLE, 2, 1);
		assert_int_equal(mem_rd(e, d->common + C_Q_ENABLE, 2), 1);
	}
	mem_wr(e, d->common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static void put_desc(struct drv *d, unsigned qi, unsigned i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
	uint8_t *p = gp(d->e, d->q[qi].desc + 16ull * i);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static uint16_t *avail_idx_p(struct drv *d, unsigned qi)
{
	return gp(d->e, d->q[qi].avail + 2);
}

static uint16_t *avail_flags_p(struct drv *d, unsigned qi)
{
	return gp(d->e, d->q[qi].avail);
}

/* Publishes head in the available ring. */
static void publish(struct drv *d, unsigned qi, uint16_t head)
{
	struct dq *q = &d->q[qi];
	uint16_t *ring = gp(d->e, q->avail + 4);
	ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
	__atomic_store_n(avail_idx_p(d, qi), q->avail_idx, __ATOMIC_RELEASE);
}

/* Makes a chain of the next n descriptors and publishes it; returns its head. */
static uint16_t submit(struct drv *d, unsigned qi, const struct buf *b, unsigned n)
{
	struct dq *q = &d->q[qi];
	uint16_t head = q->next;
	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (uint16_t)((head + i) % q->size);
		uint16_t next = (uint16_t)((head + i + 1) % q->size);
		put_desc(d, qi, at, b[i].gpa, b[i].len,
		         (uint16_t)((i + 1 < n ? D_NEXT : 0) | (b[i].write ? D_WRITE : 0)), next);
	}
	q->next = (uint16_t)((head + n) % q->size);
	publish(d, qi, head);
	return head;
}

static uint16_t used_idx(struct drv *d, unsigned qi)
{
	return __atomic_load_n((uint16_t *)gp(d->e, d->q[qi].used + 2), __ATOMIC_ACQUIRE);
}

static void used_elem(struct drv *d, unsigned qi, uint16_t i, uint32_t *id, uint32_t *len)
{
	struct dq *q = &d->q[qi];
	uint32_t *e = gp(d->e, q->used + 4 + 8ull * (i % q->size));
	*id = e[0];
	*len = e[1];
}

/* The doorbell, written as the guest would: it reaches the device through dispatch. */
static void doorbell(struct drv *d, unsigned qi)
{
	if (d->modern)
		mem_wr(d->e, d->notify + (uint64_t)qi * d->notify_mult, 2, qi);
	else
		io_wr(d->e, d->io + L_QUEUE_NOTIFY, 2, qi);
}

/* Waits, boundedly, for the I/O thread to bring the used index to want. */
static bool wait_used(struct drv *d, unsigned qi, uint16_t want)
{
	for (unsigned i = 0; i < WAIT_ROUNDS && used_idx(d, qi) != want; i++)
		pause_1ms();
	return used_idx(d, qi) == want;
}

/* A virtio-blk request with its data buffer (len 0: none); returns the status byte. */
static uint8_t blk_req(struct drv *d, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                       uint32_t *used_len)
{
	struct env *e = d->e;
	uint8_t *hdr = gp(e, HDR);
	uint32_t zero = 0;
	memcpy(hdr, &type, 4);
	memcpy(hdr + 4, &zero, 4);
	memcpy(hdr + 8, &sector, 8);
	*(uint8_t *)gp(e, STATUS) = 0xee;
	bool in = type != T_OUT;
	struct buf b[3] = {{HDR, 16, false}, {data, len, in}, {STATUS, 1, true}};
	struct buf nodata[2] = {{HDR, 16, false}, {STATUS, 1, true}};
	uint16_t before = used_idx(d, 0);
	uint16_t head = len ? submit(d, 0, b, 3) : submit(d, 0, nodata, 2);
	doorbell(d, 0);
	/* The doorbell through dispatch is served before the write returns. */
	assert_int_equal(used_idx(d, 0), (uint16_t)(before + 1));
	uint32_t id, ulen;
	used_elem(d, 0, before, &id, &ulen);
	assert_int_equal(id, head);
	if (used_len)
		*used_len = ulen;
	return *(uint8_t *)gp(e, STATUS);
}

static void file_sector(struct env *e, unsigned s, uint8_t *out)
{
	FILE *f = fopen(e->path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)s * SECTOR, SEEK_SET), 0);
	assert_int_equal(fread(out, 1, SECTOR, f), SECTOR);
	fclose(f);
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- tests ---- */

static void test_identity_and_bars(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	add_net(e, NULL);
	struct {
		unsigned slot;
		uint16_t device, subsystem;
		uint32_t class;
		uint32_t io_size;
		unsigned nvec;
	} want[] = {{SLOT_BLK, 0x1001, 2, 0x010000, 0x40, 2},
	            {SLOT_NET, 0x1000, 1, 0x020000, 0x40, 3}};
	for (unsigned i = 0; i < 2; i++) {
		unsigned s = want[i].slot;
		assert_int_equal(cfg_rd(e, s, 0x00, 2), 0x1af4);
		assert_int_equal(cfg_rd(e, s, 0x02, 2), want[i].device);
		assert_int_equal(cfg_rd(e, s, 0x08, 1), 0); /* revision 0: transitional */
		assert_int_equal(cfg_rd(e, s, 0x08, 4) >> 8, want[i].class);
		assert_int_equal(cfg_rd(e, s, 0x2c, 2), 0x1af4);
		assert_int_equal(cfg_rd(e, s, 0x2e, 2), want[i].subsystem);
		assert_int_equal(cfg_rd(e, s, 0x3d, 1), 1); /* INTA */
		assert_true(cfg_rd(e, s, 0x06, 2) & 0x10);  /* capability list */
		/* Sizing, as firmware does it. */
		for (unsigned r = 0x10; r <= 0x24; r += 4)
			cfg_wr(e, s, r, 4, 0xffffffff);
		assert_int_equal(cfg_rd(e, s, 0x10, 4), (~(want[i].io_size - 1)) | 1);
		assert_int_equal(cfg_rd(e, s, 0x14, 4), 0xfffff000);
		assert_int_equal(cfg_rd(e, s, 0x18, 4), 0);
		assert_int_equal(cfg_rd(e, s, 0x1c, 4), 0);
		assert_int_equal(cfg_rd(e, s, 0x20, 4),
		                 0xffffc00c); /* 16 KiB, 64-bit, prefetchable */
		assert_int_equal(cfg_rd(e, s, 0x24, 4), 0xffffffff);

		struct drv d = {
		    .e = e, .slot = s, .io = IO_BLK, .msix_bar = MSIX_BLK, .mmio = MODERN_BLK};
		program_bars(&d);
		assert_int_equal(d.common, MODERN_BLK + 0x0000);
		assert_int_equal(d.isr, MODERN_BLK + 0x1000);
		assert_int_equal(d.device, MODERN_BLK + 0x2000);
		assert_int_equal(d.notify, MODERN_BLK + 0x3000);
		assert_int_equal(d.notify_mult, 4);
		assert_true(d.pcicfg_cap != 0);
		assert_true(d.msix_cap != 0);
		/* MSI-X: one vector per queue and one for configuration changes, table at BAR1
		 * offset 0, PBA at 0x800. */
		assert_int_equal((cfg_rd(e, s, d.msix_cap + 2, 2) & 0x7ff) + 1, want[i].nvec);
		assert_int_equal(cfg_rd(e, s, d.msix_cap + 4, 4), 1);
		assert_int_equal(cfg_rd(e, s, d.msix_cap + 8, 4), 0x801);
		cfg_wr(e, s, 0x04, 2, 0); /* the next device goes at the same addresses */
	}
}

static void test_legacy_read_write(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	legacy_init(&d, 1, 0xffffffff);
	/* Device configuration right after the registers without MSI-X: capacity. */
	assert_int_equal(io_rd(e, IO_BLK + 0x14, 4), SECTORS);
	assert_int_equal(io_rd(e, IO_BLK + 0x18, 4), 0);
	uint32_t host = (uint32_t)io_rd(e, IO_BLK + L_HOST_FEATURES, 4);
	assert_true(host & (1u << BLK_F_FLUSH));
	assert_false(host & (1u << BLK_F_RO));

	/* Read sectors 3 and 4. */
	memset(gp(e, DATA), 0xaa, 2 * SECTOR);
	uint32_t ulen;
	assert_int_equal(blk_req(&d, T_IN, 3, DATA, 2 * SECTOR, &ulen), 0);
	assert_int_equal(ulen, 2 * SECTOR + 1);
	assert_true(all(gp(e, DATA), SECTOR, 3));
	assert_true(all(gp(e, DATA + SECTOR), SECTOR, 4));

	/* Write sector 7, read it back from the file and through the device. */
	memset(gp(e, DATA), 0x5c, SECTOR);
	assert_int_equal(blk_req(&d, T_OUT, 7, DATA, SECTOR, &ulen), 0);
	assert_int_equal(ulen, 1);
	uint8_t sec[SECTOR];
	file_sector(e, 7, sec);
	assert_true(all(sec, SECTOR, 0x5c));
	file_sector(e, 8, sec);
	assert_true(all(sec, SECTOR, 8));
	memset(gp(e, DATA), 0, SECTOR);
	assert_int_equal(blk_req(&d, T_IN, 7, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA), SECTOR, 0x5c));

	/* The last sector is in range, one past it is not; nor is a partial sector. */
	assert_int_equal(blk_req(&d, T_IN, SECTORS - 1, DATA, SECTOR, NULL), 0);
	assert_int_equal(blk_req(&d, T_IN, SECTORS - 1, DATA, 2 * SECTOR, &ulen), 1);
	assert_int_equal(ulen, 1);
	assert_int_equal(blk_req(&d, T_IN, SECTORS, DATA, SECTOR, NULL), 1);
	assert_int_equal(blk_req(&d, T_OUT, UINT64_MAX, DATA, SECTOR, NULL), 1);
	assert_int_equal(blk_req(&d, T_IN, 0, DATA, 100, NULL), 1);
	file_sector(e, SECTORS - 1, sec);
	assert_true(all(sec, SECTOR, SECTORS - 1));

	/* Flush, the device ID, and what is not supported. */
	assert_int_equal(blk_req(&d, T_FLUSH, 0, 0, 0, NULL), 0);
	memset(gp(e, IDBUF), 0xff, 20);
	assert_int_equal(blk_req(&d, T_GET_ID, 0, IDBUF, 20, &ulen), 0);
	assert_int_equal(ulen, 21);
	assert_memory_equal(gp(e, IDBUF), "busmap-vmm\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(blk_req(&d, T_DISCARD, 0, DATA, 16, NULL), 2);
	assert_int_equal(blk_req(&d, 0x12345, 0, DATA, 16, NULL), 2);
	assert_int_equal(log_lines(e), 0);
}

static void test_modern(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	modern_init(&d, 1, ~0ull, 64);
	/* Capacity, whole or by halves. */
	assert_int_equal(mem_rd(e, d.device, 8), SECTORS);
	assert_int_equal(mem_rd(e, d.device, 4), SECTORS);
	assert_int_equal(mem_rd(e, d.device + 4, 4), 0);
	assert_int_equal(mem_rd(e, d.device + 20, 4), SECTOR); /* blk_size */

	memset(gp(e, DATA), 0x77, 3 * SECTOR);
	assert_int_equal(blk_req(&d, T_OUT, 10, DATA, 3 * SECTOR, NULL), 0);
	memset(gp(e, DATA), 0, 4 * SECTOR);
	uint32_t ulen;
	assert_int_equal(blk_req(&d, T_IN, 9, DATA, 4 * SECTOR, &ulen), 0);
	assert_int_equal(ulen, 4 * SECTOR + 1);
	assert_true(all(gp(e, DATA), SECTOR, 9));
	assert_true(all(gp(e, DATA + SECTOR), 3 * SECTOR, 0x77));
	assert_int_equal(blk_req(&d, T_GET_ID, 0, IDBUF, 8, &ulen), 0);
	assert_int_equal(ulen, 9);
	assert_memory_equal(gp(e, IDBUF), "busmap-v", 8);
	assert_int_equal(blk_req(&d, T_IN, SECTORS, DATA, SECTOR, NULL), 1);

	/* More requests than the queue holds go round the rings. */
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(blk_req(&d, T_IN, i % SECTORS, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA), SECTOR, 199 % SECTORS));

	/* An indirect table: header, two data buffers, status. */
	uint8_t *t = gp(e, INDIR);
	uint64_t a[4] = {HDR, DATA, DATA + SECTOR, STATUS};
	uint32_t l[4] = {16, SECTOR, SECTOR, 1};
	for (unsigned i = 0; i < 4; i++) {
		uint16_t fl = (uint16_t)((i < 3 ? D_NEXT : 0) | (i ? D_WRITE : 0));
		uint16_t nx = (uint16_t)(i + 1);
		memcpy(t + 16 * i, &a[i], 8);
		memcpy(t + 16 * i + 8, &l[i], 4);
		memcpy(t + 16 * i + 12, &fl, 2);
		memcpy(t + 16 * i + 14, &nx, 2);
	}
	uint32_t type = T_IN;
	uint64_t sector = 20;
	memcpy(gp(e, HDR), &type, 4);
	memcpy(gp(e, HDR + 8), &sector, 8);
	put_desc(&d, 0, 5, INDIR, 64, D_INDIRECT, 0);
	uint16_t before = used_idx(&d, 0);
	publish(&d, 0, 5);
	doorbell(&d, 0);
	assert_int_equal(used_idx(&d, 0), (uint16_t)(before + 1));
	assert_int_equal(*(uint8_t *)gp(e, STATUS), 0);
	assert_true(all(gp(e, DATA), SECTOR, 20));
	assert_true(all(gp(e, DATA + SECTOR), SECTOR, 21));
	assert_int_equal(modern_status(&d) & S_NEEDS_RESET, 0);
}

static void test_feature_negotiation(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	/* The legacy interface shows the low 32 bits only; VERSION_1 is not among them. */
	uint32_t host = (uint32_t)io_rd(e, IO_BLK + L_HOST_FEATURES, 4);
	io_wr(e, IO_BLK + L_GUEST_FEATURES, 4, 0xffffffff);
	assert_int_equal(io_rd(e, IO_BLK + L_GUEST_FEATURES, 4), host);
	mem_wr(e, d.common + C_DFSELECT, 4, 1);
	assert_int_equal(mem_rd(e, d.common + C_DF, 4), 1); /* VERSION_1 */
	mem_wr(e, d.common + C_DFSELECT, 4, 2);
	assert_int_equal(mem_rd(e, d.common + C_DF, 4), 0);

	/* A modern driver without VERSION_1 does not get FEATURES_OK. */
	mem_wr(e, d.common + C_STATUS, 1, 0);
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER);
	mem_wr(e, d.common + C_GFSELECT, 4, 0);
	mem_wr(e, d.common + C_GF, 4, host);
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(modern_status(&d), S_ACK | S_DRIVER);
	/* Nor with a feature that was not offered. */
	mem_wr(e, d.common + C_GFSELECT, 4, 1);
	mem_wr(e, d.common + C_GF, 4, 3);
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(modern_status(&d), S_ACK | S_DRIVER);
	/* VERSION_1 and nothing more is fine. */
	mem_wr(e, d.common + C_GF, 4, 1);
	mem_wr(e, d.common + C_GFSELECT, 4, 0);
	mem_wr(e, d.common + C_GF, 4, 0);
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
	assert_int_equal(modern_status(&d), S_ACK | S_DRIVER | S_FEATURES_OK);
	/* Features are fixed after FEATURES_OK. */
	mem_wr(e, d.common + C_GF, 4, host);
	assert_int_equal(mem_rd(e, d.common + C_GF, 4), 0);
	/* Reset clears the features and the status. */
	mem_wr(e, d.common + C_STATUS, 1, 0);
	assert_int_equal(modern_status(&d), 0);
	mem_wr(e, d.common + C_GFSELECT, 4, 1);
	assert_int_equal(mem_rd(e, d.common + C_GF, 4), 0);
}

static void test_readonly(void **state)
{
	struct env *e = *state;
	add_blk(e, true);
	struct drv d = drv_blk(e);
	legacy_init(&d, 1, 0xffffffff);
	assert_true(io_rd(e, IO_BLK + L_HOST_FEATURES, 4) & (1u << BLK_F_RO));
	memset(gp(e, DATA), 0x11, SECTOR);
	assert_int_equal(blk_req(&d, T_OUT, 2, DATA, SECTOR, NULL), 1);
	uint8_t sec[SECTOR];
	file_sector(e, 2, sec);
	assert_true(all(sec, SECTOR, 2));
	assert_int_equal(blk_req(&d, T_IN, 2, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA), SECTOR, 2));
	assert_int_equal(blk_req(&d, T_FLUSH, 0, 0, 0, NULL), 0);
}

static void test_bad_images(void **state)
{
	struct env *e = *state;
	struct virtio_blk *b = NULL;
	assert_int_equal(virtio_blk_new(e->vm, SLOT_BLK, "/nonexistent/busmap.img", false, &b),
	                 -ENOENT);
	assert_int_equal(virtio_blk_new(e->vm, SLOT_BLK, "/tmp", true, &b), -EISDIR);
	assert_null(b);
	/* Nothing was left behind: the slot is free for a good one. */
	assert_int_equal(cfg_rd(e, SLOT_BLK, 0, 4), 0xffffffff);
	add_blk(e, false);
	assert_int_equal(cfg_rd(e, SLOT_BLK, 0, 2), 0x1af4);
}

static void test_net(void **state)
{
	struct env *e = *state;
	static const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
	add_net(e, mac);
	struct drv d = drv_net(e);
	uint32_t host = (uint32_t)io_rd(e, IO_NET + L_HOST_FEATURES, 4);
	assert_true(host & (1u << NET_F_MAC));
	assert_true(host & (1u << NET_F_STATUS));
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(io_rd(e, IO_NET + 0x14 + i, 1), mac[i]);
	assert_int_equal(io_rd(e, IO_NET + 0x14 + 6, 2), 1); /* link up */
	legacy_init(&d, 2, 0xffffffff);

	/* Receive buffers stay with the device: nothing ever arrives. */
	struct buf rx = {DATA, 1526, true};
	submit(&d, 0, &rx, 1);
	doorbell(&d, 0);
	assert_int_equal(used_idx(&d, 0), 0);
	/* Sent frames are taken and dropped. */
	struct buf tx[2] = {{HDR, 10, false}, {DATA + 0x1000, 60, false}};
	for (unsigned i = 0; i < 3; i++) {
		uint16_t head = submit(&d, 1, tx, 2);
		doorbell(&d, 1);
		assert_int_equal(used_idx(&d, 1), i + 1);
		uint32_t id, len;
		used_elem(&d, 1, (uint16_t)i, &id, &len);
		assert_int_equal(id, head);
		assert_int_equal(len, 0);
	}
	assert_int_equal(used_idx(&d, 0), 0);

	/* The same through the modern interface. */
	modern_init(&d, 2, ~0ull, 256);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(mem_rd(e, d.device + i, 1), mac[i]);
	submit(&d, 0, &rx, 1);
	doorbell(&d, 0);
	submit(&d, 1, tx, 2);
	doorbell(&d, 1);
	assert_int_equal(used_idx(&d, 0), 0);
	assert_int_equal(used_idx(&d, 1), 1);
}

static void test_net_default_mac(void **state)
{
	struct env *e = *state;
	add_net(e, NULL);
	static const uint8_t qemu[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	drv_net(e);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(io_rd(e, IO_NET + 0x14 + i, 1), qemu[i]);
}

static void test_intx(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	legacy_init(&d, 1, 0xffffffff);
	assert_false(irq(e));
	assert_int_equal(blk_req(&d, T_IN, 0, DATA, SECTOR, NULL), 0);
	/* The line is up, with the status register's interrupt bit, until ISR is read. */
	assert_true(irq(e));
	assert_true(cfg_rd(e, SLOT_BLK, 0x06, 2) & 0x08);
	assert_int_equal(io_rd(e, IO_BLK + L_ISR, 1), 1);
	assert_false(irq(e));
	assert_false(cfg_rd(e, SLOT_BLK, 0x06, 2) & 0x08);
	assert_int_equal(io_rd(e, IO_BLK + L_ISR, 1), 0);
	/* Two completions, one read. */
	blk_req(&d, T_IN, 0, DATA, SECTOR, NULL);
	blk_req(&d, T_IN, 0, DATA, SECTOR, NULL);
	assert_true(irq(e));
	unsigned raises = e->hv.irq_raises[GSI];
	assert_int_equal(io_rd(e, IO_BLK + L_STATUS, 2) >> 8, 1); /* ISR read as a status word */
	assert_false(irq(e));
	/* The driver can ask for none. */
	*avail_flags_p(&d, 0) = 1;
	blk_req(&d, T_IN, 0, DATA, SECTOR, NULL);
	assert_false(irq(e));
	assert_int_equal(e->hv.irq_raises[GSI], raises);
	*avail_flags_p(&d, 0) = 0;
	/* Reset lowers the line. */
	blk_req(&d, T_IN, 0, DATA, SECTOR, NULL);
	assert_true(irq(e));
	legacy_status(&d, 0);
	assert_false(irq(e));
	assert_int_equal(io_rd(e, IO_BLK + L_ISR, 1), 0);
	/* The modern ISR behaves the same. */
	modern_init(&d, 1, ~0ull, 256);
	blk_req(&d, T_IN, 0, DATA, SECTOR, NULL);
	assert_true(irq(e));
	assert_int_equal(mem_rd(e, d.isr, 1), 1);
	assert_false(irq(e));
	assert_int_equal(nmsis(e), 0);
}

static void msix_entry(struct drv *d, unsigned v, uint64_t addr, uint32_t data, bool masked)
{
	uint64_t at = d->msix_bar + 16ull * v;
	mem_wr(d->e, at, 4, (uint32_t)addr);
	mem_wr(d->e, at + 4, 4, addr >> 32);
	mem_wr(d->e, at + 8, 4, data);
	mem_wr(d->e, at + 12, 4, masked);
}

static void test_msix(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	legacy_init(&d, 1, 0xffffffff);
	/* Without MSI-X the vector registers are not there: 0x14 is configuration. */
	assert_int_equal(io_rd(e, IO_BLK + 0x14, 4), SECTORS);
	cfg_wr(e, SLOT_BLK, d.msix_cap + 2, 2, 0x8000);
	msix_entry(&d, 0, 0xfee00000, 0x4030, false);
	msix_entry(&d, 1, 0xfee01000, 0x4031, false);
	/* With it, the configuration moves to 0x18. */
	assert_int_equal(io_rd(e, IO_BLK + 0x18, 4), SECTORS);
	assert_int_equal(io_rd(e, IO_BLK + L_CONFIG_VECTOR, 2), NO_VECTOR);
	io_wr(e, IO_BLK + L_CONFIG_VECTOR, 2, 0);
	assert_int_equal(io_rd(e, IO_BLK + L_CONFIG_VECTOR, 2), 0);
	io_wr(e, IO_BLK + L_QUEUE_SEL, 2, 0);
	io_wr(e, IO_BLK + L_QUEUE_VECTOR, 2, 5); /* past the table: refused */
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_VECTOR, 2), NO_VECTOR);
	io_wr(e, IO_BLK + L_QUEUE_VECTOR, 2, 1);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_VECTOR, 2), 1);

	assert_int_equal(blk_req(&d, T_IN, 1, DATA, SECTOR, NULL), 0);
	assert_int_equal(nmsis(e), 1);
	assert_int_equal(e->hv.msis[0].addr, 0xfee01000);
	assert_int_equal(e->hv.msis[0].data, 0x4031);
	/* No INTx and no ISR with MSI-X. */
	assert_false(irq(e));
	assert_int_equal(io_rd(e, IO_BLK + L_ISR, 1), 0);

	/* A masked vector holds the message until unmasked. */
	msix_entry(&d, 1, 0xfee01000, 0x4031, true);
	blk_req(&d, T_IN, 1, DATA, SECTOR, NULL);
	assert_int_equal(nmsis(e), 1);
	mem_wr(e, d.msix_bar + 16 + 12, 4, 0);
	assert_int_equal(nmsis(e), 2);
	assert_int_equal(e->hv.msis[1].data, 0x4031);

	/* No vector: no message, and no INTx either. */
	io_wr(e, IO_BLK + L_QUEUE_VECTOR, 2, NO_VECTOR);
	blk_req(&d, T_IN, 1, DATA, SECTOR, NULL);
	assert_int_equal(nmsis(e), 2);
	assert_false(irq(e));

	/* Modern: vectors through the common configuration. */
	modern_init(&d, 1, ~0ull, 256);
	mem_wr(e, d.common + C_MSIX, 2, 0);
	mem_wr(e, d.common + C_Q_SELECT, 2, 0);
	mem_wr(e, d.common + C_Q_MSIX, 2, 3);
	assert_int_equal(mem_rd(e, d.common + C_Q_MSIX, 2), NO_VECTOR);
	mem_wr(e, d.common + C_Q_MSIX, 2, 1);
	assert_int_equal(mem_rd(e, d.common + C_Q_MSIX, 2), 1);
	blk_req(&d, T_IN, 1, DATA, SECTOR, NULL);
	assert_int_equal(nmsis(e), 3);
	assert_int_equal(e->hv.msis[2].data, 0x4031);
	/* A broken ring sends the configuration vector. */
	put_desc(&d, 0, 0, DATA, SECTOR, D_NEXT, 0);
	publish(&d, 0, 0);
	doorbell(&d, 0);
	assert_true(modern_status(&d) & S_NEEDS_RESET);
	assert_int_equal(nmsis(e), 4);
	assert_int_equal(e->hv.msis[3].data, 0x4030);
	assert_false(irq(e));
}

/* After whatever came before, a reset and a correct set-up give a working device. */
static void assert_recovers(struct drv *d)
{
	legacy_init(d, 1, 0xffffffff);
	memset(gp(d->e, DATA), 0, SECTOR);
	assert_int_equal(blk_req(d, T_IN, 5, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(d->e, DATA), SECTOR, 5));
}

/* A chain that must stop the device: nothing used, later requests not served either. */
static void assert_stops(struct drv *d)
{
	struct env *e = d->e;
	uint16_t before = used_idx(d, 0);
	doorbell(d, 0);
	assert_int_equal(used_idx(d, 0), before);
	if (d->modern)
		assert_true(modern_status(d) & S_NEEDS_RESET);
	/* A good request behind it waits for the reset. */
	d->q[0].next = 10;
	struct buf b[3] = {{HDR, 16, false}, {DATA, SECTOR, true}, {STATUS, 1, true}};
	submit(d, 0, b, 3);
	doorbell(d, 0);
	assert_int_equal(used_idx(d, 0), before);
	(void)e;
}

static void test_hostile_rings(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	unsigned lines = 0;

	/* Rings past RAM, at the top of the PFN range, and straddling the end of RAM. */
	uint32_t pfns[] = {(uint32_t)(RAM_SIZE >> 12) + 16, 0xffffffff,
	                   (uint32_t)(RAM_SIZE >> 12) - 1};
	for (unsigned i = 0; i < 3; i++) {
		legacy_status(&d, 0);
		io_wr(e, IO_BLK + L_QUEUE_SEL, 2, 0);
		io_wr(e, IO_BLK + L_QUEUE_PFN, 4, pfns[i]);
		legacy_status(&d, S_ACK | S_DRIVER | S_DRIVER_OK);
		io_wr(e, IO_BLK + L_QUEUE_NOTIFY, 2, 0);
		assert_int_equal(log_lines(e), ++lines);
		assert_recovers(&d);
	}

	/* A descriptor loop. */
	legacy_init(&d, 1, 0xffffffff);
	put_desc(&d, 0, 0, DATA, 16, D_NEXT, 1);
	put_desc(&d, 0, 1, DATA, 16, D_NEXT, 0);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_int_equal(log_lines(e), ++lines);
	assert_recovers(&d);

	/* A chain that runs through every descriptor and then one more (a loop too). */
	legacy_init(&d, 1, 0xffffffff);
	for (unsigned i = 0; i < 256; i++)
		put_desc(&d, 0, i, DATA, 16, D_NEXT, (uint16_t)((i + 1) % 256));
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_recovers(&d);

	/* The available index jumping past the queue size, over a ring of good requests. */
	legacy_init(&d, 1, 0xffffffff);
	uint32_t flush = T_FLUSH;
	memcpy(gp(e, HDR), &flush, 4);
	struct buf fb[2] = {{HDR, 16, false}, {STATUS, 1, true}};
	submit(&d, 0, fb, 2);
	__atomic_store_n(avail_idx_p(&d, 0), 300, __ATOMIC_RELEASE);
	doorbell(&d, 0);
	assert_int_equal(used_idx(&d, 0), 0);
	assert_recovers(&d);

	/* A head past the table, a next past the table. */
	legacy_init(&d, 1, 0xffffffff);
	publish(&d, 0, 256);
	assert_stops(&d);
	assert_recovers(&d);
	legacy_init(&d, 1, 0xffffffff);
	put_desc(&d, 0, 0, HDR, 16, D_NEXT, 4000);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_recovers(&d);

	/* A giant length, an address that wraps 2^64, one past RAM, one across the end. */
	struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {{DATA, 0xffffffff},
	           {0xfffffffffffff000ull, 0x2000},
	           {0xffffffffffffffffull, 2},
	           {RAM_SIZE, 512},
	           {RAM_SIZE - 256, 512}};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		legacy_init(&d, 1, 0xffffffff);
		put_desc(&d, 0, 0, HDR, 16, D_NEXT, 1);
		put_desc(&d, 0, 1, bad[i].addr, bad[i].len, D_NEXT | D_WRITE, 2);
		put_desc(&d, 0, 2, STATUS, 1, D_WRITE, 0);
		publish(&d, 0, 0);
		assert_stops(&d);
		assert_recovers(&d);
	}

	/* A readable buffer after a writable one; a chain without a status byte. */
	legacy_init(&d, 1, 0xffffffff);
	put_desc(&d, 0, 0, STATUS, 1, D_NEXT | D_WRITE, 1);
	put_desc(&d, 0, 1, HDR, 16, 0, 0);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_recovers(&d);
	legacy_init(&d, 1, 0xffffffff);
	put_desc(&d, 0, 0, HDR, 16, 0, 0);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_recovers(&d);

	/* Indirect tables: not negotiated, a bad length, nested, looping, past RAM. */
	legacy_init(&d, 1, 0xffffffff & ~(1u << F_INDIRECT));
	put_desc(&d, 0, 0, INDIR, 48, D_INDIRECT, 0);
	publish(&d, 0, 0);
	assert_stops(&d);
	uint8_t *t = gp(e, INDIR);
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} loop[2] = {{HDR, 16, D_NEXT, 1}, {DATA, 16, D_NEXT, 0}},
	  nested[1] = {{INDIR, 16, D_INDIRECT, 0}};
	struct {
		uint64_t addr;
		uint32_t len;
	} tables[] = {{INDIR, 20}, {INDIR, 0},       {INDIR, 16 * 4096},
	              {INDIR, 32}, {INDIR + 64, 16}, {RAM_SIZE - 16, 32}};
	for (unsigned i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		memset(t, 0, 128);
		for (unsigned j = 0; j < 2; j++) {
			memcpy(t + 16 * j, &loop[j].addr, 8);
			memcpy(t + 16 * j + 8, &loop[j].len, 4);
			memcpy(t + 16 * j + 12, &loop[j].flags, 2);
			memcpy(t + 16 * j + 14, &loop[j].next, 2);
		}
		memcpy(t + 64, &nested[0].addr, 8);
		memcpy(t + 72, &nested[0].len, 4);
		memcpy(t + 76, &nested[0].flags, 2);
		legacy_init(&d, 1, 0xffffffff);
		put_desc(&d, 0, 0, tables[i].addr, tables[i].len, D_INDIRECT, 0);
		publish(&d, 0, 0);
		assert_stops(&d);
		assert_recovers(&d);
	}
	/* Indirect together with next. */
	legacy_init(&d, 1, 0xffffffff);
	put_desc(&d, 0, 0, INDIR, 32, D_INDIRECT | D_NEXT, 1);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_recovers(&d);

	/* The messages a guest can cause are limited. */
	for (unsigned i = 0; i < 20; i++) {
		legacy_init(&d, 1, 0xffffffff);
		publish(&d, 0, 999);
		doorbell(&d, 0);
	}
	/* Eight messages, then one saying the rest are not shown. */
	unsigned n = log_lines(e);
	assert_int_equal(n, 9);
	legacy_init(&d, 1, 0xffffffff);
	publish(&d, 0, 999);
	doorbell(&d, 0);
	assert_int_equal(log_lines(e), n);
	assert_recovers(&d);
}

static void test_hostile_modern(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	modern_init(&d, 1, ~0ull, 256);

	/* A loop: DEVICE_NEEDS_RESET and a configuration interrupt (ISR bit 1). */
	put_desc(&d, 0, 0, DATA, 16, D_NEXT, 0);
	publish(&d, 0, 0);
	assert_stops(&d);
	assert_true(irq(e));
	assert_int_equal(mem_rd(e, d.isr, 1), 2);
	assert_false(irq(e));
	/* The bit stays whatever the driver writes, until reset. */
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	assert_true(modern_status(&d) & S_NEEDS_RESET);
	mem_wr(e, d.common + C_STATUS, 1, 0);
	assert_int_equal(modern_status(&d), 0);

	/* Queue sizes that are not powers of two, or too big, are not taken. */
	mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER);
	mem_wr(e, d.common + C_Q_SELECT, 2, 0);
	uint16_t sizes[] = {0, 100, 512, 0xffff};
	for (unsigned i = 0; i < 4; i++) {
		mem_wr(e, d.common + C_Q_SIZE, 2, sizes[i]);
		assert_int_equal(mem_rd(e, d.common + C_Q_SIZE, 2), 256);
	}
	/* Queues past the last read as absent and take nothing. */
	mem_wr(e, d.common + C_Q_SELECT, 2, 7);
	assert_int_equal(mem_rd(e, d.common + C_Q_SIZE, 2), 0);
	mem_wr(e, d.common + C_Q_ENABLE, 2, 1);
	assert_int_equal(mem_rd(e, d.common + C_Q_ENABLE, 2), 0);
	mem_wr(e, d.notify + 7 * 4, 2, 7);
	mem_wr(e, d.notify + 0xffc, 2, 0);
	io_wr(e, IO_BLK + L_QUEUE_NOTIFY, 2, 0xffff);
	/* Misaligned rings and rings outside RAM stop the device when enabled. */
	uint64_t rings[][3] = {{RING0 + 8, RING0 + 0x1000, RING0 + 0x2000},
	                       {RING0, RING0 + 0x1001, RING0 + 0x2000},
	                       {RING0, RING0 + 0x1000, RING0 + 0x2002},
	                       {RAM_SIZE, RING0 + 0x1000, RING0 + 0x2000},
	                       {RING0, RING0 + 0x1000, UINT64_MAX - 3}};
	for (unsigned i = 0; i < 5; i++) {
		mem_wr(e, d.common + C_STATUS, 1, 0);
		mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER);
		mem_wr(e, d.common + C_GFSELECT, 4, 1);
		mem_wr(e, d.common + C_GF, 4, 1);
		mem_wr(e, d.common + C_STATUS, 1, S_ACK | S_DRIVER | S_FEATURES_OK);
		mem_wr(e, d.common + C_Q_SELECT, 2, 0);
		mem_wr(e, d.common + C_Q_DESC, 8, rings[i][0]);
		mem_wr(e, d.common + C_Q_AVAIL, 8, rings[i][1]);
		mem_wr(e, d.common + C_Q_USED, 8, rings[i][2]);
		mem_wr(e, d.common + C_Q_ENABLE, 2, 1);
		assert_int_equal(mem_rd(e, d.common + C_Q_ENABLE, 2), 0);
		assert_true(modern_status(&d) & S_NEEDS_RESET);
	}
	/* Registers written with the wrong width change nothing. */
	modern_init(&d, 1, ~0ull, 256);
	mem_wr(e, d.common + C_Q_SELECT, 1, 3);
	mem_wr(e, d.common + C_STATUS, 2, 0);
	assert_int_equal(mem_rd(e, d.common + C_Q_SELECT, 2), 0);
	assert_true(modern_status(&d) & S_DRIVER_OK);
	/* A queue's rings cannot move while it is enabled. */
	mem_wr(e, d.common + C_Q_DESC, 8, 0x500000);
	assert_int_equal(mem_rd(e, d.common + C_Q_DESC, 8), RING0);
	memset(gp(e, DATA), 0, SECTOR);
	assert_int_equal(blk_req(&d, T_IN, 6, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA), SECTOR, 6));
}

static void test_ioeventfd(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	/* Both doorbells are assigned where the BARs are: legacy by queue index, modern by
	 * address. */
	const struct fake_ioev *lg = fake_hv_ioev_at(&e->hv, true, IO_BLK + L_QUEUE_NOTIFY);
	const struct fake_ioev *md = fake_hv_ioev_at(&e->hv, false, d.notify);
	assert_non_null(lg);
	assert_non_null(md);
	assert_true(lg->datamatch);
	assert_int_equal(lg->data, 0);
	assert_int_equal(lg->len, 2);
	assert_int_equal(md->len, 2);
	int fd = lg->fd;
	assert_int_equal(md->fd, fd);

	/* KVM signals the eventfd; the device's thread serves the queue. */
	legacy_init(&d, 1, 0xffffffff);
	struct buf b[3] = {{HDR, 16, false}, {DATA, SECTOR, true}, {STATUS, 1, true}};
	uint32_t type = T_IN;
	uint64_t sector = 12;
	memcpy(gp(e, HDR), &type, 4);
	memcpy(gp(e, HDR + 8), &sector, 8);
	memset(gp(e, DATA), 0, SECTOR);
	submit(&d, 0, b, 3);
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, 8), 8);
	assert_true(wait_used(&d, 0, 1));
	assert_true(all(gp(e, DATA), SECTOR, 12));
	assert_int_equal(*(uint8_t *)gp(e, STATUS), 0);
	/* Its interrupt reaches the line from that thread. */
	assert_true(wait_irq(e));
	assert_int_equal(io_rd(e, IO_BLK + L_ISR, 1), 1);
	assert_false(irq(e));

	/* Bursts of notifications from both paths serve every request exactly once: 32
	 * flushes of two descriptors fill a queue of 64. */
	modern_init(&d, 1, ~0ull, 64);
	type = T_FLUSH;
	memcpy(gp(e, HDR), &type, 4);
	for (unsigned round = 1; round <= 5; round++) {
		memset(gp(e, STATUS), 0xee, 32);
		for (unsigned i = 0; i < 32; i++) {
			struct buf fb[2] = {{HDR, 16, false}, {STATUS + i, 1, true}};
			submit(&d, 0, fb, 2);
			if (i % 3 == 0)
				doorbell(&d, 0);
			else
				assert_int_equal(write(fd, &one, 8), 8);
		}
		assert_true(wait_used(&d, 0, (uint16_t)(32 * round)));
		assert_true(all(gp(e, STATUS), 32, 0));
		unsigned seen[64] = {0};
		for (unsigned i = 0; i < 32; i++) {
			uint32_t id, len;
			used_elem(&d, 0, (uint16_t)(32 * (round - 1) + i), &id, &len);
			assert_true(id < 64 && id % 2 == 0);
			assert_int_equal(len, 1);
			seen[id]++;
		}
		for (unsigned i = 0; i < 64; i += 2)
			assert_int_equal(seen[i], 1);
	}
	/* Nothing more comes once the thread has caught up. */
	assert_int_equal(write(fd, &one, 8), 8);
	doorbell(&d, 0);
	assert_int_equal(used_idx(&d, 0), 160);

	/* Moving the BAR moves the assignment. */
	cfg_wr(e, SLOT_BLK, 0x10, 4, 0xd000);
	assert_null(fake_hv_ioev_at(&e->hv, true, IO_BLK + L_QUEUE_NOTIFY));
	assert_non_null(fake_hv_ioev_at(&e->hv, true, 0xd000 + L_QUEUE_NOTIFY));
}

static void test_pcicfg_window(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	modern_init(&d, 1, ~0ull, 256);
	unsigned c = d.pcicfg_cap;
	/* Read num_queues and the capacity through configuration space. */
	cfg_wr(e, SLOT_BLK, c + 4, 1, 4);
	cfg_wr(e, SLOT_BLK, c + 8, 4, C_NUMQ);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 2);
	assert_int_equal(cfg_rd(e, SLOT_BLK, c + 16, 2), 1);
	cfg_wr(e, SLOT_BLK, c + 8, 4, 0x2000);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 4);
	assert_int_equal(cfg_rd(e, SLOT_BLK, c + 16, 4), SECTORS);
	/* Write the queue select through it. */
	cfg_wr(e, SLOT_BLK, c + 8, 4, C_Q_SELECT);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 2);
	cfg_wr(e, SLOT_BLK, c + 16, 2, 5);
	assert_int_equal(mem_rd(e, d.common + C_Q_SELECT, 2), 5);
	mem_wr(e, d.common + C_Q_SELECT, 2, 0);
	/* Another BAR, a bad length, an offset past the BAR: nothing happens. */
	cfg_wr(e, SLOT_BLK, c + 4, 1, 0);
	cfg_wr(e, SLOT_BLK, c + 16, 2, 9);
	cfg_wr(e, SLOT_BLK, c + 4, 1, 4);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 3);
	cfg_wr(e, SLOT_BLK, c + 16, 2, 9);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 2);
	cfg_wr(e, SLOT_BLK, c + 8, 4, 0xfffffffe);
	cfg_wr(e, SLOT_BLK, c + 16, 2, 9);
	assert_int_equal(mem_rd(e, d.common + C_Q_SELECT, 2), 0);
	/* The doorbell through the window: the I/O thread serves it. */
	struct buf b[3] = {{HDR, 16, false}, {DATA, SECTOR, true}, {STATUS, 1, true}};
	uint32_t type = T_IN;
	uint64_t sector = 33;
	memcpy(gp(e, HDR), &type, 4);
	memcpy(gp(e, HDR + 8), &sector, 8);
	submit(&d, 0, b, 3);
	cfg_wr(e, SLOT_BLK, c + 8, 4, 0x3000);
	cfg_wr(e, SLOT_BLK, c + 16, 2, 0);
	assert_true(wait_used(&d, 0, 1));
	assert_true(all(gp(e, DATA), SECTOR, 33));
	/* And the ISR, read (and cleared) through it. */
	assert_true(wait_used(&d, 0, 1));
	cfg_wr(e, SLOT_BLK, c + 8, 4, 0x1000);
	cfg_wr(e, SLOT_BLK, c + 12, 4, 1);
	assert_true(wait_irq(e));
	assert_int_equal(cfg_rd(e, SLOT_BLK, c + 16, 1), 1);
	assert_false(irq(e));
	/* A reset through the window. */
	cfg_wr(e, SLOT_BLK, c + 8, 4, C_STATUS);
	cfg_wr(e, SLOT_BLK, c + 16, 1, 0);
	assert_int_equal(modern_status(&d), 0);
}

/* SeaBIOS 1.16's driver (src/hw/virtio-pci.c, virtio-blk.c), access by access and with
 * its widths: modern mode through BAR4, its vring layout, polling with interrupts off, and
 * the ISR read after each request. What it checks here is what decides whether it boots. */
static void test_seabios_driver(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	/* vp_init_simple takes modern mode when all four structures are found; vp_reset. */
	assert_true(d.common && d.isr && d.device && d.notify);
	mem_wr(e, d.common + C_STATUS, 1, 0);
	assert_int_equal(mem_rd(e, d.isr, 1), 0);
	uint8_t status = S_ACK | S_DRIVER;
	mem_wr(e, d.common + C_STATUS, 1, status);
	mem_wr(e, d.common + C_DFSELECT, 4, 0);
	uint64_t f = mem_rd(e, d.common + C_DF, 4);
	mem_wr(e, d.common + C_DFSELECT, 4, 1);
	f |= mem_rd(e, d.common + C_DF, 4) << 32;
	/* VERSION_1, IOMMU_PLATFORM, BLK_SIZE, SEG_MAX, SIZE_MAX: what it understands. */
	f &= (1ull << F_VERSION1) | (1ull << 33) | (1ull << 6) | (1ull << 2) | (1ull << 1);
	assert_true(f & (1ull << F_VERSION1));
	mem_wr(e, d.common + C_GFSELECT, 4, 0);
	mem_wr(e, d.common + C_GF, 4, (uint32_t)f);
	mem_wr(e, d.common + C_GFSELECT, 4, 1);
	mem_wr(e, d.common + C_GF, 4, (uint32_t)(f >> 32));
	status |= S_FEATURES_OK;
	mem_wr(e, d.common + C_STATUS, 1, status);
	assert_true(mem_rd(e, d.common + C_STATUS, 1) & S_FEATURES_OK);
	/* Without SIZE_MAX it sends at most 64 sectors a request; 512-byte blocks only; no
	 * geometry makes it translate by LBA. The capacity comes as two 32-bit reads. */
	assert_false(f & (1ull << 1));
	assert_true(f & (1ull << 6));
	assert_int_equal(mem_rd(e, d.device + 20, 4), SECTOR);
	uint64_t cap = mem_rd(e, d.device, 4) | mem_rd(e, d.device + 4, 4) << 32;
	assert_int_equal(cap, SECTORS);
	assert_int_equal(mem_rd(e, d.device + 16, 2), 0);
	assert_int_equal(mem_rd(e, d.device + 18, 1), 0);
	assert_int_equal(mem_rd(e, d.device + 19, 1), 0);

	/* vp_find_vq: a size up to its 256 is kept; the queue must not be active yet. */
	struct dq *q = &d.q[0];
	mem_wr(e, d.common + C_Q_SELECT, 2, 0);
	q->size = (uint16_t)mem_rd(e, d.common + C_Q_SIZE, 2);
	assert_true(q->size > 0 && q->size <= 256);
	assert_int_equal(mem_rd(e, d.common + C_Q_ENABLE, 2), 0);
	/* vring_init: page-aligned table, available ring after it, used ring page-aligned
	 * after the available ring's entries (without the event word); interrupts off. */
	q->desc = RING0;
	q->avail = q->desc + 16ull * q->size;
	q->used = (q->avail + 4 + 2ull * q->size + 4095) & ~4095ull;
	ring_clear(&d, 0);
	*avail_flags_p(&d, 0) = 1;
	mem_wr(e, d.common + C_Q_DESC, 4, (uint32_t)q->desc);
	mem_wr(e, d.common + C_Q_DESC + 4, 4, 0);
	mem_wr(e, d.common + C_Q_AVAIL, 4, (uint32_t)q->avail);
	mem_wr(e, d.common + C_Q_AVAIL + 4, 4, 0);
	mem_wr(e, d.common + C_Q_USED, 4, (uint32_t)q->used);
	mem_wr(e, d.common + C_Q_USED + 4, 4, 0);
	mem_wr(e, d.common + C_Q_ENABLE, 2, 1);
	assert_int_equal(mem_rd(e, d.common + C_Q_NOFF, 2), 0);
	d.modern = true;
	status |= S_DRIVER_OK;
	mem_wr(e, d.common + C_STATUS, 1, status);
	assert_int_equal(mem_rd(e, d.common + C_STATUS, 1), status);

	/* int 13h: the boot sector, then 64 sectors in one request; each completes before the
	 * doorbell write returns, raises nothing, and the ISR read finds nothing to clear. */
	assert_int_equal(blk_req(&d, T_IN, 0, DATA, SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA), SECTOR, 0));
	assert_int_equal(mem_rd(e, d.isr, 1), 0);
	assert_int_equal(blk_req(&d, T_IN, 0, DATA, SECTORS * SECTOR, NULL), 0);
	assert_true(all(gp(e, DATA + 63 * SECTOR), SECTOR, 63));
	assert_int_equal(mem_rd(e, d.isr, 1), 0);
	assert_false(irq(e));
	/* Past the end: an error status, which it turns into a failed int 13h. */
	assert_int_equal(blk_req(&d, T_IN, SECTORS - 1, DATA, 2 * SECTOR, NULL), 1);
	assert_int_equal(log_lines(e), 0);
}

static void test_legacy_register_widths(void **state)
{
	struct env *e = *state;
	add_blk(e, false);
	struct drv d = drv_blk(e);
	legacy_init(&d, 1, 0xffffffff);
	/* Writes of another width than the register's are dropped. */
	io_wr(e, IO_BLK + L_QUEUE_SEL, 1, 3);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_SEL, 2), 0);
	io_wr(e, IO_BLK + L_STATUS, 2, 0);
	assert_int_equal(io_rd(e, IO_BLK + L_STATUS, 1), S_ACK | S_DRIVER | S_DRIVER_OK);
	io_wr(e, IO_BLK + L_QUEUE_PFN, 2, 0);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_PFN, 4), RING0 >> 12);
	/* Reads of any width see the registers' bytes. */
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_NUM, 1), 0);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_NUM + 1, 1), 1);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_NUM, 4), 256);
	/* A queue that does not exist: no size, no PFN, writes dropped. */
	io_wr(e, IO_BLK + L_QUEUE_SEL, 2, 9);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_NUM, 2), 0);
	io_wr(e, IO_BLK + L_QUEUE_PFN, 4, 0x123);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_PFN, 4), 0);
	io_wr(e, IO_BLK + L_QUEUE_SEL, 2, 0);
	/* Bytes past the configuration read as zero; writes there are dropped. */
	assert_int_equal(io_rd(e, IO_BLK + 0x3c, 4), 0);
	io_wr(e, IO_BLK + 0x14, 4, 0);
	assert_int_equal(io_rd(e, IO_BLK + 0x14, 4), SECTORS);
	/* PFN 0 takes the queue down. */
	io_wr(e, IO_BLK + L_QUEUE_PFN, 4, 0);
	assert_int_equal(io_rd(e, IO_BLK + L_QUEUE_PFN, 4), 0);
	struct buf b[2] = {{HDR, 16, false}, {STATUS, 1, true}};
	submit(&d, 0, b, 2);
	doorbell(&d, 0);
	assert_int_equal(used_idx(&d, 0), 0);
	assert_int_equal(log_lines(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_identity_and_bars, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_legacy_read_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modern, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_images, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_default_mac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_rings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_modern, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ioeventfd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pcicfg_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_legacy_register_widths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seabios_driver, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
