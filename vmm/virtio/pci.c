/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A transitional virtio PCI function: legacy registers in I/O BAR0, MSI-X in BAR1, the
 * modern structures in 64-bit BAR4 (found through vendor capabilities), one doorbell
 * eventfd per queue served by a per-device I/O thread.
 */
#include "ioeventfd.h"
#include "virtio.h"
#include <busmap/pci_regs.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Legacy registers (BAR0). */
#define L_HOST_FEATURES  0x00
#define L_GUEST_FEATURES 0x04
#define L_QUEUE_PFN      0x08
#define L_QUEUE_NUM      0x0c
#define L_QUEUE_SEL      0x0e
#define L_QUEUE_NOTIFY   0x10
#define L_STATUS         0x12
#define L_ISR            0x13
#define L_CONFIG_VECTOR  0x14 /* this and the next only while MSI-X is enabled */
#define L_QUEUE_VECTOR   0x16
#define L_REGS           0x18
#define L_CONFIG         0x14 /* device configuration without MSI-X, */
#define L_CONFIG_MSIX    0x18 /* and with it */
#define L_PFN_SHIFT      12
#define L_RING_ALIGN     4096

/* Modern common configuration (struct virtio_pci_common_cfg). */
#define C_DFSELECT   0x00
#define C_DF         0x04
#define C_GFSELECT   0x08
#define C_GF         0x0c
#define C_MSIX       0x10
#define C_NUMQ       0x12
#define C_STATUS     0x14
#define C_GENERATION 0x15
#define C_Q_SELECT   0x16
#define C_Q_SIZE     0x18
#define C_Q_MSIX     0x1a
#define C_Q_ENABLE   0x1c
#define C_Q_NOFF     0x1e
#define C_Q_DESC     0x20
#define C_Q_AVAIL    0x28
#define C_Q_USED     0x30
#define C_SIZE       0x38

/* BAR4: one 4 KiB page per structure, as QEMU lays it out. */
#define M_COMMON    0x0000
#define M_ISR       0x1000
#define M_DEVICE    0x2000
#define M_NOTIFY    0x3000
#define M_PAGE      0x1000
#define M_SIZE      0x4000
#define NOTIFY_MULT 4 /* each queue its own doorbell */

/* BAR1: MSI-X table and PBA. */
#define MSIX_BAR_SIZE 0x1000
#define MSIX_PBA      0x800

#define BAR_LEGACY 0
#define BAR_MSIX   1
#define BAR_MODERN 4

/* Vendor-specific capability (struct virtio_pci_cap) and its cfg_type values. */
#define CAP_LEN        16
#define CAP_NOTIFY_LEN 20
#define CAP_PCICFG_LEN 20
#define CAP_CFG_TYPE   3
#define CAP_BAR        4
#define CAP_OFFSET     8
#define CAP_LENGTH     12
#define CAP_EXTRA      16 /* notify_off_multiplier, or the pci_cfg_data window */
#define CFG_COMMON     1
#define CFG_NOTIFY     2
#define CFG_ISR        3
#define CFG_DEVICE     4
#define CFG_PCI        5

/* Messages a guest can cause: this many, then one saying the rest are not shown. */
#define LOG_LIMIT 8

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* An access [off, off + size) of a register block: byte i from img when inside it. */
static uint64_t pick(const uint8_t *img, size_t img_len, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		if (off + i < img_len)
			v |= (uint64_t)img[off + i] << (8 * i);
	return v;
}

static struct virtq *sel_queue(struct virtio_dev *vd)
{
	return vd->queue_sel < vd->info.nqueues ? &vd->queues[vd->queue_sel] : NULL;
}

static uint16_t valid_vector(const struct virtio_dev *vd, uint64_t v)
{
	/* One vector per queue plus the configuration's; others read back as "none", which
	 * tells the driver the assignment failed. */
	return v < vd->info.nqueues + 1u ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

uint64_t virtio_features(const struct virtio_dev *vd)
{
	return vd->guest_features & vd->host_features;
}

static void kick(struct virtq *q)
{
	uint64_t one = 1;
	/* Only fails when the counter is about to overflow, and then a wakeup is pending. */
	ssize_t r = write(q->kick_fd, &one, sizeof(one));
	(void)r;
}

/* Takes busmap's writer lock: never called with the device lock held. */
static bool msix_enabled(struct virtio_dev *vd)
{
	return bm_pci_func_cfg_get(vd->func, vd->msix_cap + PCI_MSIX_FLAGS, 2) &
	       PCI_MSIX_FLAGS_ENABLE;
}

/* ---- interrupts ---- */

struct irqs {
	unsigned epoch;
	uint8_t isr;
	unsigned nvec;
	uint16_t vec[VIRTIO_MAX_QUEUES + 1];
};

static void add_vector(struct irqs *irqs, uint16_t v)
{
	for (unsigned i = 0; i < irqs->nvec; i++)
		if (irqs->vec[i] == v)
			return;
	irqs->vec[irqs->nvec++] = v;
}

/* Under the device lock: which interrupts the work done since the last call calls for. */
static void collect(struct virtio_dev *vd, struct irqs *irqs)
{
	*irqs = (struct irqs){.epoch = atomic_load(&vd->epoch)};
	for (unsigned i = 0; i < vd->info.nqueues; i++) {
		struct virtq *q = &vd->queues[i];
		if (!q->pushed)
			continue;
		q->pushed = false;
		if (!q->ready || !virtq_wants_interrupt(q))
			continue;
		irqs->isr |= VIRTIO_ISR_QUEUE;
		add_vector(irqs, q->vector);
	}
	if (vd->config_irq) {
		vd->config_irq = false;
		irqs->isr |= VIRTIO_ISR_CONFIG;
		add_vector(irqs, vd->config_vector);
	}
}

/* Without the device lock. busmap's writer lock keeps the ISR and the INTx line in step
 * (whoever holds it last sets the line from the ISR it leaves), and interrupts decided
 * before a reset are dropped. */
static void deliver(struct virtio_dev *vd, const struct irqs *irqs)
{
	if (!irqs->isr || bm_begin(vd->vm->sys))
		return;
	if (atomic_load(&vd->epoch) == irqs->epoch) {
		if (msix_enabled(vd)) {
			for (unsigned i = 0; i < irqs->nvec; i++)
				if (irqs->vec[i] != VIRTIO_NO_VECTOR)
					bm_pci_msi_notify(vd->func, irqs->vec[i]);
		} else {
			atomic_fetch_or(&vd->isr, irqs->isr);
			bm_pci_intx_set(vd->func, true);
		}
	}
	bm_commit(vd->vm->sys);
}

static void dev_lock(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
}

/* Unlocks, then sends what the work done under the lock calls for. */
static void dev_unlock(struct virtio_dev *vd)
{
	struct irqs irqs;
	collect(vd, &irqs);
	pthread_mutex_unlock(&vd->lock);
	deliver(vd, &irqs);
}

/* Reading the ISR clears it and lowers INTx. */
static uint8_t isr_take(struct virtio_dev *vd)
{
	if (bm_begin(vd->vm->sys))
		return 0;
	uint8_t v = (uint8_t)atomic_exchange(&vd->isr, 0);
	if (v)
		bm_pci_intx_set(vd->func, false);
	bm_commit(vd->vm->sys);
	return v;
}

/* ---- state changes ---- */

void virtio_set_broken(struct virtio_dev *vd, const char *fmt, ...)
{
	if (vd->broken)
		return;
	vd->broken = true;
	if (virtio_features(vd) & (1ull << VIRTIO_F_VERSION_1)) {
		vd->status |= VIRTIO_S_NEEDS_RESET;
		vd->config_irq = true;
	}
	if (vd->logged > LOG_LIMIT)
		return;
	if (vd->logged++ == LOG_LIMIT) {
		vm_log(vd->vm, "%s %s: further device errors are not reported", vd->info.name,
		       bm_pci_func_name(vd->func));
		return;
	}
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm_log(vd->vm, "%s %s: %s; stopped until the driver resets it", vd->info.name,
	       bm_pci_func_name(vd->func), msg);
}

static void dev_reset(struct virtio_dev *vd)
{
	dev_lock(vd);
	atomic_fetch_add(&vd->epoch, 1);
	vd->guest_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->queue_sel = 0;
	vd->status = 0;
	vd->config_vector = VIRTIO_NO_VECTOR;
	vd->broken = false;
	vd->config_irq = false;
	for (unsigned i = 0; i < vd->info.nqueues; i++)
		virtq_reset(&vd->queues[i]);
	pthread_mutex_unlock(&vd->lock);
	/* After the epoch moved, so no interrupt decided before can raise the line again. */
	if (bm_begin(vd->vm->sys))
		return;
	if (atomic_exchange(&vd->isr, 0))
		bm_pci_intx_set(vd->func, false);
	bm_commit(vd->vm->sys);
}

static void notify(struct virtio_dev *vd, uint64_t idx, bool in_line);

static void status_write(struct virtio_dev *vd, uint8_t val, bool modern, bool in_line)
{
	if (val == 0) {
		dev_reset(vd);
		return;
	}
	dev_lock(vd);
	if (modern && (val & VIRTIO_S_FEATURES_OK) && !(vd->status & VIRTIO_S_FEATURES_OK)) {
		/* A modern driver must take VERSION_1 and nothing that was not offered. */
		uint64_t gf = vd->guest_features;
		if ((gf & ~vd->host_features) || !(gf & (1ull << VIRTIO_F_VERSION_1)))
			val &= (uint8_t)~VIRTIO_S_FEATURES_OK;
	}
	bool start = !(vd->status & VIRTIO_S_DRIVER_OK) && (val & VIRTIO_S_DRIVER_OK);
	vd->status = val | (vd->status & VIRTIO_S_NEEDS_RESET);
	dev_unlock(vd);
	/* Chains made available before DRIVER_OK are served now. */
	if (start)
		for (unsigned i = 0; i < vd->info.nqueues; i++)
			notify(vd, i, in_line);
}

/* Lock held. */
static void queue_enable(struct virtio_dev *vd, unsigned idx)
{
	struct virtq *q = &vd->queues[idx];
	q->last_avail = 0;
	q->used_idx = 0;
	int err = virtq_map(vd->vm, q);
	if (err) {
		virtio_set_broken(vd, "queue %u: rings at %#llx/%#llx/%#llx (size %u) %s", idx,
		                  (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
		                  (unsigned long long)q->used_gpa, q->size,
		                  err == -EFAULT ? "are not in RAM" : "are misaligned");
		return;
	}
	q->ready = true;
}

/* Lock held. */
static void queue_pfn_write(struct virtio_dev *vd, uint32_t pfn)
{
	struct virtq *q = sel_queue(vd);
	if (!q)
		return;
	uint16_t size = q->size;
	uint16_t vector = q->vector;
	virtq_reset(q);
	q->size = size;
	q->vector = vector;
	if (pfn == 0)
		return; /* the driver takes the queue down */
	uint64_t base = (uint64_t)pfn << L_PFN_SHIFT;
	q->desc_gpa = base;
	q->avail_gpa = base + 16ull * size;
	q->used_gpa =
	    (q->avail_gpa + 6 + 2ull * size + L_RING_ALIGN - 1) & ~(uint64_t)(L_RING_ALIGN - 1);
	queue_enable(vd, vd->queue_sel);
}

static void process_queue(struct virtio_dev *vd, unsigned idx)
{
	struct virtq *q = &vd->queues[idx];
	bool more = false;
	dev_lock(vd);
	/* A legacy driver may use a queue before DRIVER_OK (older Linux did); a modern one
	 * may not. */
	bool modern = virtio_features(vd) & (1ull << VIRTIO_F_VERSION_1);
	if (!vd->broken && q->ready && (!modern || (vd->status & VIRTIO_S_DRIVER_OK))) {
		q->budget = q->size;
		q->more = false;
		vd->info.queue_notify(vd->info.opaque, vd, idx);
		more = q->more;
	}
	dev_unlock(vd);
	/* A driver that keeps adding chains does not hold this thread forever: the rest
	 * goes to the I/O thread. */
	if (more)
		kick(q);
}

/* A doorbell write that reached the device through dispatch (no ioeventfd there). With
 * the writer lock held (configuration-space window) the queue goes to the I/O thread. */
static void notify(struct virtio_dev *vd, uint64_t idx, bool in_line)
{
	if (idx >= vd->info.nqueues)
		return;
	if (in_line)
		process_queue(vd, (unsigned)idx);
	else
		kick(&vd->queues[idx]);
}

int virtio_pop(struct virtio_dev *vd, unsigned idx, struct virtq_chain *c)
{
	struct virtq *q = &vd->queues[idx];
	if (vd->broken)
		return -EIO;
	if (q->budget == 0) {
		q->more = virtq_has_avail(q);
		return 0;
	}
	bool indirect = virtio_features(vd) & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	int r = virtq_pop(vd->vm, q, indirect, c);
	if (r < 0) {
		const char *why = r == -EOVERFLOW ? "available index ran past the queue size"
		                  : r == -ERANGE  ? "descriptor index past the table"
		                  : r == -ELOOP   ? "descriptor chain loops"
		                  : r == -EFAULT  ? "buffer not in RAM"
		                  : r == -E2BIG   ? "chain has too many buffers"
		                                  : "malformed descriptor chain";
		virtio_set_broken(vd, "queue %u: %s", idx, why);
		return -EIO;
	}
	if (r)
		q->budget--;
	return r;
}

void virtio_push(struct virtio_dev *vd, unsigned idx, uint16_t head, uint32_t len)
{
	struct virtq *q = &vd->queues[idx];
	if (q->ready)
		virtq_push(q, head, len);
}

/* ---- BAR0: legacy registers and device configuration ---- */

static uint8_t config_byte(const struct virtio_dev *vd, uint64_t off)
{
	return off < vd->info.config_len ? vd->config[off] : 0;
}

static uint64_t config_read(const struct virtio_dev *vd, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)config_byte(vd, off + i) << (8 * i);
	return v;
}

static int legacy_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	struct virtio_dev *vd = opaque;
	bool msix = msix_enabled(vd);
	unsigned cfg = msix ? L_CONFIG_MSIX : L_CONFIG;
	uint8_t img[L_REGS] = {0};
	if (off <= L_ISR && L_ISR < off + size)
		img[L_ISR] = isr_take(vd);
	dev_lock(vd);
	struct virtq *q = sel_queue(vd);
	put32(img + L_HOST_FEATURES, (uint32_t)vd->host_features);
	put32(img + L_GUEST_FEATURES, (uint32_t)virtio_features(vd));
	put32(img + L_QUEUE_PFN, q ? (uint32_t)(q->desc_gpa >> L_PFN_SHIFT) : 0);
	put16(img + L_QUEUE_NUM, q ? q->size : 0);
	put16(img + L_QUEUE_SEL, vd->queue_sel);
	img[L_STATUS] = vd->status;
	put16(img + L_CONFIG_VECTOR, vd->config_vector);
	put16(img + L_QUEUE_VECTOR, q ? q->vector : VIRTIO_NO_VECTOR);
	pthread_mutex_unlock(&vd->lock);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		uint8_t b = o < cfg ? img[o] : config_byte(vd, o - cfg);
		v |= (uint64_t)b << (8 * i);
	}
	*value = v;
	return 0;
}

static int legacy_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	struct virtio_dev *vd = opaque;
	/* Registers take writes of their own width only; the device configuration takes none
	 * (nothing in it is writable). */
	if (off == L_QUEUE_NOTIFY && size == 2) {
		notify(vd, value, true);
		return 0;
	}
	if (off == L_STATUS && size == 1) {
		status_write(vd, (uint8_t)value, false, true);
		return 0;
	}
	bool msix = (off == L_CONFIG_VECTOR || off == L_QUEUE_VECTOR) && msix_enabled(vd);
	dev_lock(vd);
	struct virtq *q = sel_queue(vd);
	if (off == L_GUEST_FEATURES && size == 4) {
		vd->guest_features = value & vd->host_features & 0xffffffffu;
	} else if (off == L_QUEUE_PFN && size == 4) {
		queue_pfn_write(vd, (uint32_t)value);
	} else if (off == L_QUEUE_SEL && size == 2) {
		vd->queue_sel = (uint16_t)value;
	} else if (off == L_CONFIG_VECTOR && size == 2 && msix) {
		vd->config_vector = valid_vector(vd, value);
	} else if (off == L_QUEUE_VECTOR && size == 2 && msix && q) {
		q->vector = valid_vector(vd, value);
	}
	dev_unlock(vd);
	return 0;
}

static const struct bm_region_ops legacy_ops = {
    .read = legacy_read,
    .write = legacy_write,
    .valid_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4,
};

/* ---- BAR4: modern structures ---- */

static int common_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	struct virtio_dev *vd = opaque;
	uint8_t img[C_SIZE] = {0};
	dev_lock(vd);
	struct virtq *q = sel_queue(vd);
	put32(img + C_DFSELECT, vd->dfselect);
	if (vd->dfselect < 2)
		put32(img + C_DF, (uint32_t)(vd->host_features >> (32 * vd->dfselect)));
	put32(img + C_GFSELECT, vd->gfselect);
	if (vd->gfselect < 2)
		put32(img + C_GF, (uint32_t)(vd->guest_features >> (32 * vd->gfselect)));
	put16(img + C_MSIX, vd->config_vector);
	put16(img + C_NUMQ, (uint16_t)vd->info.nqueues);
	img[C_STATUS] = vd->status;
	img[C_GENERATION] = 0; /* the configuration never changes */
	put16(img + C_Q_SELECT, vd->queue_sel);
	if (q) {
		put16(img + C_Q_SIZE, q->size);
		put16(img + C_Q_MSIX, q->vector);
		put16(img + C_Q_ENABLE, q->ready);
		put16(img + C_Q_NOFF, vd->queue_sel);
		put64(img + C_Q_DESC, q->desc_gpa);
		put64(img + C_Q_AVAIL, q->avail_gpa);
		put64(img + C_Q_USED, q->used_gpa);
	} else {
		put16(img + C_Q_MSIX, VIRTIO_NO_VECTOR);
	}
	pthread_mutex_unlock(&vd->lock);
	*value = pick(img, sizeof(img), off, size);
	return 0;
}

/* One of the three 64-bit ring addresses, written whole or by 32-bit halves. */
static void set_addr(uint64_t *a, uint64_t base, uint64_t off, unsigned size, uint64_t value)
{
	if (off == base && size == 8)
		*a = value;
	else if (off == base && size == 4)
		*a = (*a & 0xffffffff00000000ull) | (uint32_t)value;
	else if (off == base + 4 && size == 4)
		*a = (*a & 0xffffffffull) | (value << 32);
}

/* in_line: not from the configuration-space window, where the writer lock is held. */
static void common_store(struct virtio_dev *vd, uint64_t off, unsigned size, uint64_t value,
                         bool in_line)
{
	if (off == C_STATUS && size == 1) {
		status_write(vd, (uint8_t)value, true, in_line);
		return;
	}
	dev_lock(vd);
	struct virtq *q = sel_queue(vd);
	/* A queue's configuration is fixed while it is enabled (until reset). */
	struct virtq *idle = q && !q->ready ? q : NULL;
	if (off == C_DFSELECT && size == 4) {
		vd->dfselect = (uint32_t)value;
	} else if (off == C_GFSELECT && size == 4) {
		vd->gfselect = (uint32_t)value;
	} else if (off == C_GF && size == 4) {
		if (vd->gfselect < 2 && !(vd->status & VIRTIO_S_FEATURES_OK)) {
			unsigned sh = 32 * vd->gfselect;
			vd->guest_features = (vd->guest_features & ~(0xffffffffull << sh)) |
			                     ((value & 0xffffffffull) << sh);
		}
	} else if (off == C_MSIX && size == 2) {
		vd->config_vector = valid_vector(vd, value);
	} else if (off == C_Q_SELECT && size == 2) {
		vd->queue_sel = (uint16_t)value;
	} else if (off == C_Q_SIZE && size == 2) {
		/* Split queues are a power of two long; other sizes are not taken. */
		if (idle && value && value <= VIRTQ_MAX_SIZE && !(value & (value - 1)))
			idle->size = (uint16_t)value;
	} else if (off == C_Q_MSIX && size == 2) {
		if (q)
			q->vector = valid_vector(vd, value);
	} else if (off == C_Q_ENABLE && size == 2) {
		if (idle && value == 1)
			queue_enable(vd, vd->queue_sel);
	} else if (idle && off >= C_Q_DESC && off < C_SIZE) {
		set_addr(&idle->desc_gpa, C_Q_DESC, off, size, value);
		set_addr(&idle->avail_gpa, C_Q_AVAIL, off, size, value);
		set_addr(&idle->used_gpa, C_Q_USED, off, size, value);
	}
	dev_unlock(vd);
}

static int common_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	common_store(opaque, off, size, value, true);
	return 0;
}

static int isr_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	*value = off == 0 ? isr_take(opaque) : 0;
	return 0;
}

static int device_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	*value = config_read(opaque, off, size);
	return 0;
}

static void notify_reg_write(struct virtio_dev *vd, uint64_t off, bool in_line)
{
	if (off % NOTIFY_MULT == 0)
		notify(vd, off / NOTIFY_MULT, in_line);
}

static int notify_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	(void)value;
	notify_reg_write(opaque, off, true);
	return 0;
}

static int read_zero(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)off;
	(void)size;
	*value = 0;
	return 0;
}

static const struct bm_region_ops common_ops = {.read = common_read, .write = common_write};
static const struct bm_region_ops isr_ops = {.read = isr_read};
static const struct bm_region_ops device_ops = {.read = device_read};
static const struct bm_region_ops notify_ops = {.read = read_zero, .write = notify_write};

/* ---- configuration-space window (VIRTIO_PCI_CAP_PCI_CFG) ---- */

/* Where the window points: BAR4 only, 1, 2 or 4 bytes, aligned down as QEMU does. */
static bool pcicfg_window(struct virtio_dev *vd, uint32_t *off, unsigned *len)
{
	unsigned c = vd->pcicfg_cap;
	if (bm_pci_func_cfg_get(vd->func, c + CAP_BAR, 1) != BAR_MODERN)
		return false;
	uint32_t l = bm_pci_func_cfg_get(vd->func, c + CAP_LENGTH, 4);
	if (l != 1 && l != 2 && l != 4)
		return false;
	uint32_t o = bm_pci_func_cfg_get(vd->func, c + CAP_OFFSET, 4) & ~(l - 1);
	if (o >= M_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool touches_window(const struct virtio_dev *vd, unsigned reg, unsigned size)
{
	unsigned data = vd->pcicfg_cap + CAP_EXTRA;
	return vd->pcicfg_cap && reg < data + 4 && data < reg + size;
}

/* Runs with busmap's writer lock held (see virtio.h). */
static void cfg_read_hook(void *opaque, bm_pci_func *f, unsigned reg, unsigned size,
                          uint32_t *value)
{
	struct virtio_dev *vd = opaque;
	uint32_t off;
	unsigned len;
	if (!touches_window(vd, reg, size) || !pcicfg_window(vd, &off, &len))
		return;
	uint64_t v = 0;
	uint64_t rel = off % M_PAGE;
	switch (off - rel) {
	case M_COMMON:
		common_read(vd, NULL, rel, len, &v);
		break;
	case M_ISR:
		isr_read(vd, NULL, rel, len, &v);
		break;
	case M_DEVICE:
		device_read(vd, NULL, rel, len, &v);
		break;
	default:
		break;
	}
	unsigned data = vd->pcicfg_cap + CAP_EXTRA;
	bm_pci_func_cfg_set(f, data, len, (uint32_t)v);
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;
		if (r < data || r >= data + 4)
			continue;
		uint32_t b = bm_pci_func_cfg_get(f, r, 1);
		*value = (*value & ~(0xffu << (8 * i))) | (b << (8 * i));
	}
}

static void cfg_write_hook(void *opaque, bm_pci_func *f, unsigned reg, unsigned size,
                           uint32_t value)
{
	(void)value;
	struct virtio_dev *vd = opaque;
	uint32_t off;
	unsigned len;
	if (!touches_window(vd, reg, size) || !pcicfg_window(vd, &off, &len))
		return;
	uint64_t v = bm_pci_func_cfg_get(f, vd->pcicfg_cap + CAP_EXTRA, len);
	uint64_t rel = off % M_PAGE;
	switch (off - rel) {
	case M_COMMON:
		common_store(vd, rel, len, v, false);
		break;
	case M_NOTIFY:
		notify_reg_write(vd, rel, false);
		break;
	default:
		break;
	}
}

static const struct bm_pci_func_ops func_ops = {
    .cfg_read = cfg_read_hook,
    .cfg_write = cfg_write_hook,
};

/* ---- I/O thread ---- */

static void *io_thread(void *arg)
{
	struct virtio_dev *vd = arg;
	unsigned n = vd->info.nqueues;
	struct pollfd fds[VIRTIO_MAX_QUEUES + 1];
	for (unsigned i = 0; i < n; i++)
		fds[i] = (struct pollfd){.fd = vd->queues[i].kick_fd, .events = POLLIN};
	fds[n] = (struct pollfd){.fd = vd->stop_fd, .events = POLLIN};
	for (;;) {
		if (poll(fds, n + 1, -1) < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOMEM)
				continue;
			vm_log(vd->vm, "%s: poll: %s", vd->info.name, strerror(errno));
			break;
		}
		if (fds[n].revents)
			break;
		for (unsigned i = 0; i < n; i++) {
			if (!(fds[i].revents & POLLIN))
				continue;
			/* Read before serving: a notification that comes after is seen next time
			 * round, so none is lost, and a burst is served once. */
			uint64_t count;
			if (read(fds[i].fd, &count, sizeof(count)) == sizeof(count))
				process_queue(vd, i);
		}
	}
	return NULL;
}

/* ---- construction ---- */

static int add_vendor_cap(struct virtio_dev *vd, uint8_t type, uint8_t len, uint32_t off,
                          uint32_t length, uint32_t extra, unsigned *at)
{
	uint8_t data[CAP_PCICFG_LEN] = {0};
	uint8_t wmask[CAP_PCICFG_LEN] = {0};
	data[2] = len;
	data[CAP_CFG_TYPE] = type;
	data[CAP_BAR] = type == CFG_PCI ? 0 : BAR_MODERN;
	put32(data + CAP_OFFSET, off);
	put32(data + CAP_LENGTH, length);
	if (len > CAP_LEN)
		put32(data + CAP_EXTRA, extra);
	if (type == CFG_PCI) {
		/* The driver points the window (bar, offset, length) and moves data through it. */
		wmask[CAP_BAR] = 0xff;
		memset(wmask + CAP_OFFSET, 0xff, 8);
		memset(wmask + CAP_EXTRA, 0xff, 4);
	}
	struct bm_pci_cap_desc cap = {
	    .id = PCI_CAP_ID_VNDR, .data = data, .len = len, .wmask = wmask};
	return bm_pci_func_add_cap(vd->func, &cap, at);
}

static int add_caps(struct virtio_dev *vd)
{
	int err = bm_pci_func_add_msix(vd->func, vd->info.nqueues + 1, BAR_MSIX, 0, BAR_MSIX,
	                               MSIX_PBA, &vd->msix_cap);
	if (!err)
		err = add_vendor_cap(vd, CFG_COMMON, CAP_LEN, M_COMMON, M_PAGE, 0, NULL);
	if (!err)
		err = add_vendor_cap(vd, CFG_ISR, CAP_LEN, M_ISR, M_PAGE, 0, NULL);
	if (!err)
		err = add_vendor_cap(vd, CFG_DEVICE, CAP_LEN, M_DEVICE, M_PAGE, 0, NULL);
	if (!err)
		err = add_vendor_cap(vd, CFG_NOTIFY, CAP_NOTIFY_LEN, M_NOTIFY, M_PAGE, NOTIFY_MULT,
		                     NULL);
	if (!err)
		err = add_vendor_cap(vd, CFG_PCI, CAP_PCICFG_LEN, 0, 0, 0, &vd->pcicfg_cap);
	return err;
}

static int make_regions(struct virtio_dev *vd)
{
	bm_system *sys = vd->vm->sys;
	int err = bm_region_new_io(sys, "virtio-pci-legacy", vd->legacy_size, &legacy_ops, vd,
	                           &vd->legacy);
	if (!err)
		err = bm_region_new_container(sys, "virtio-pci-modern", M_SIZE, &vd->modern);
	if (!err)
		err = bm_region_new_io(sys, "virtio-pci-common", M_PAGE, &common_ops, vd,
		                       &vd->common);
	if (!err)
		err = bm_region_new_io(sys, "virtio-pci-isr", M_PAGE, &isr_ops, vd, &vd->isr_cfg);
	if (!err)
		err = bm_region_new_io(sys, "virtio-pci-device", M_PAGE, &device_ops, vd,
		                       &vd->device);
	if (!err)
		err = bm_region_new_io(sys, "virtio-pci-notify", M_PAGE, &notify_ops, vd,
		                       &vd->notify);
	if (!err)
		err = bm_region_add(vd->modern, vd->common, M_COMMON, 0);
	if (!err)
		err = bm_region_add(vd->modern, vd->isr_cfg, M_ISR, 0);
	if (!err)
		err = bm_region_add(vd->modern, vd->device, M_DEVICE, 0);
	if (!err)
		err = bm_region_add(vd->modern, vd->notify, M_NOTIFY, 0);
	return err;
}

static int make_function(struct virtio_dev *vd, unsigned slot)
{
	struct bm_pci_func_desc d = {
	    .vendor_id = VIRTIO_PCI_VENDOR,
	    .device_id = vd->info.device_id,
	    .class_code = vd->info.class_code,
	    .revision = 0, /* transitional */
	    .subsystem_vendor_id = VIRTIO_PCI_VENDOR,
	    .subsystem_id = vd->info.type,
	    .intx_pin = 1,
	    .bars =
	        {
	            [BAR_LEGACY] = {.type = BM_PCI_BAR_IO,
	                            .size = vd->legacy_size,
	                            .region = vd->legacy},
	            [BAR_MSIX] = {.type = BM_PCI_BAR_MEM32, .size = MSIX_BAR_SIZE},
	            [BAR_MODERN] = {.type = BM_PCI_BAR_MEM64,
	                            .size = M_SIZE,
	                            .prefetchable = true,
	                            .region = vd->modern},
	        },
	    .ops = &func_ops,
	    .opaque = vd,
	};
	int err = bm_pci_func_new(bm_pci_host_root_bus(vd->vm->pci), slot, 0, &d, &vd->func);
	if (!err)
		err = add_caps(vd);
	return err;
}

/* Doorbells go to KVM where they show: legacy by queue index, modern by address. */
static int watch_doorbells(struct virtio_dev *vd)
{
	if (!vd->vm->ioev)
		return 0;
	for (unsigned i = 0; i < vd->info.nqueues; i++) {
		int fd = vd->queues[i].kick_fd;
		int err = ioev_watch(vd->vm->ioev, vd->legacy, L_QUEUE_NOTIFY, 2, true, i, fd);
		if (!err)
			err = ioev_watch(vd->vm->ioev, vd->notify, (uint64_t)i * NOTIFY_MULT, 2,
			                 false, 0, fd);
		if (err)
			return err;
	}
	return 0;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

int virtio_pci_new(struct vm *vm, unsigned slot, const struct virtio_dev_info *info,
                   struct virtio_dev **out)
{
	if (!vm || !info || !out || !info->queue_notify || info->nqueues == 0 ||
	    info->nqueues > VIRTIO_MAX_QUEUES || info->config_len > VIRTIO_MAX_CONFIG ||
	    (info->config_len && !info->config))
		return -EINVAL;
	struct virtio_dev *vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	vd->vm = vm;
	vd->info = *info;
	if (info->config_len)
		memcpy(vd->config, info->config, info->config_len);
	vd->host_features =
	    info->features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	vd->config_vector = VIRTIO_NO_VECTOR;
	vd->legacy_size = pow2_at_least(L_REGS + (uint32_t)info->config_len);
	vd->stop_fd = -1;
	pthread_mutex_init(&vd->lock, NULL);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		virtq_reset(&vd->queues[i]);
		vd->queues[i].kick_fd = -1;
	}

	int err = 0;
	for (unsigned i = 0; i < info->nqueues && !err; i++) {
		vd->queues[i].kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vd->queues[i].kick_fd < 0)
			err = -errno;
	}
	if (!err) {
		vd->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vd->stop_fd < 0)
			err = -errno;
	}
	if (!err)
		err = make_regions(vd);
	if (!err)
		err = make_function(vd, slot);
	if (!err)
		err = watch_doorbells(vd);
	if (!err) {
		err = -pthread_create(&vd->thread, NULL, io_thread, vd);
		vd->thread_started = !err;
	}
	if (err) {
		virtio_pci_free(vd);
		return err;
	}
	*out = vd;
	return 0;
}

void virtio_pci_free(struct virtio_dev *vd)
{
	if (!vd)
		return;
	if (vd->thread_started) {
		uint64_t one = 1;
		while (write(vd->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(vd->thread, NULL);
	}
	/* Unplugging unmaps the BARs and waits for dispatches in flight, after which nothing
	 * reaches the regions. */
	bm_pci_func_free(vd->func);
	/* Before the regions and fds go, so nothing made later is taken for them. */
	if (vd->vm->ioev) {
		ioev_unwatch(vd->vm->ioev, vd->legacy);
		ioev_unwatch(vd->vm->ioev, vd->notify);
	}
	bm_region_destroy(vd->common);
	bm_region_destroy(vd->isr_cfg);
	bm_region_destroy(vd->device);
	bm_region_destroy(vd->notify);
	bm_region_destroy(vd->modern);
	bm_region_destroy(vd->legacy);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (vd->queues[i].kick_fd >= 0)
			close(vd->queues[i].kick_fd);
	if (vd->stop_fd >= 0)
		close(vd->stop_fd);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
}
