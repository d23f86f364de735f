/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Virtio for busmap-vmm: what the PCI transport (pci.c), the split virtqueues (queue.c) and
 * the device models (blk.c, net.c) share. Internal to vmm/virtio/.
 *
 * Locking: each device has one mutex (struct virtio_dev.lock) around its registers and
 * queues; queue handlers run with it held. busmap's writer lock comes first: configuration-
 * space hooks run with it held and take the device mutex (the VIRTIO_PCI_CAP_PCI_CFG
 * window). So nothing holding the device mutex may take the writer lock (bm_begin, a
 * configuration-space access, a region change, an interrupt): interrupts are decided under
 * the device mutex and sent after it is released.
 */
#ifndef BUSMAP_VMM_VIRTIO_H
#define BUSMAP_VMM_VIRTIO_H

#include "vmm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest structures are little-endian; so is every host KVM runs x86 guests on. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");

/* Feature bits shared by every device type. */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_F_VERSION_1          32

/* Device status bits. */
#define VIRTIO_S_ACKNOWLEDGE 0x01
#define VIRTIO_S_DRIVER      0x02
#define VIRTIO_S_DRIVER_OK   0x04
#define VIRTIO_S_FEATURES_OK 0x08
#define VIRTIO_S_NEEDS_RESET 0x40
#define VIRTIO_S_FAILED      0x80

/* ISR bits. */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

#define VIRTIO_NO_VECTOR 0xffff

#define VIRTIO_PCI_VENDOR 0x1af4

#define VIRTQ_MAX_SIZE    256  /* entries of a split queue (power of two) */
#define VIRTQ_MAX_SEGS    1024 /* buffers of one chain: what one preadv takes */
#define VIRTQ_MAX_INDIR   1024 /* descriptors of one indirect table */
#define VIRTIO_MAX_QUEUES 2
#define VIRTIO_MAX_CONFIG 64 /* bytes of device-specific configuration */

/* One buffer of a chain: host memory the guest lent, len bytes. */
struct virtq_seg {
	uint8_t *p;
	uint32_t len;
};

/*
 * A descriptor chain taken from the available ring. The device-readable buffers come
 * first (segs[0, nread)), the device-writable ones after (segs[nread, nsegs)); read_len and
 * write_len are their byte totals. Buffers of length 0 are left out.
 */
struct virtq_chain {
	uint16_t head;
	unsigned nsegs;
	unsigned nread;
	uint64_t read_len;
	uint64_t write_len;
	struct virtq_seg *segs; /* the queue's scratch array: valid until the next pop */
};

/* One split virtqueue: what the guest configured, and where the device is in it. */
struct virtq {
	/* Guest configuration (reset values: size VIRTQ_MAX_SIZE, addresses 0). */
	uint16_t size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t vector; /* MSI-X vector, or VIRTIO_NO_VECTOR */

	/* Host views of the three rings, set while ready. */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;

	uint16_t last_avail; /* next available-ring entry to take */
	uint16_t used_idx;   /* next used-ring entry to fill */
	bool pushed;         /* used entries added since the last interrupt decision */
	unsigned budget;     /* chains one call of the handler may still take */
	bool more;           /* the budget ran out with chains left */

	int kick_fd; /* the queue's doorbell eventfd */
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
};

/* ---- queue.c: split rings, with every guest value checked ---- */

/* Back to the reset state (the doorbell stays). */
void virtq_reset(struct virtq *q);
/*
 * Checks the configured size and alignment and maps the rings: 0, -EINVAL (size not a
 * power of two up to VIRTQ_MAX_SIZE, misaligned ring) or -EFAULT (a ring not in RAM).
 */
int virtq_map(struct vm *vm, struct virtq *q);
/*
 * Takes the next available chain into *c: 1, 0 when there is none, or a negative errno
 * when the guest broke the ring's rules (the caller then stops the device): -EOVERFLOW
 * (the available index ran more than the queue size ahead), -ERANGE (a head or next index
 * past the table), -ELOOP (a chain longer than its table), -EFAULT (a descriptor or table
 * not in RAM), -EINVAL (indirect misuse, a readable buffer after a writable one), -E2BIG
 * (more than VIRTQ_MAX_SEGS buffers).
 */
int virtq_pop(struct vm *vm, struct virtq *q, bool indirect, struct virtq_chain *c);
/* Whether the driver published chains the device has not taken. */
bool virtq_has_avail(const struct virtq *q);
/* Returns the chain with head to the driver, with len bytes written into it. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* After pushing: whether the driver wants an interrupt (its avail flags say so). */
bool virtq_wants_interrupt(const struct virtq *q);

/* Copies between a chain's readable (from) or writable (to) bytes, starting at off within
 * them, and buf; returns the bytes copied (fewer at the end of the buffers). */
size_t virtq_copy_from(const struct virtq_chain *c, uint64_t off, void *buf, size_t len);
size_t virtq_copy_to(const struct virtq_chain *c, uint64_t off, const void *buf, size_t len);
/* Describes len bytes of the readable (writable false) or writable bytes from off as up to
 * max iovecs; returns how many, or -EINVAL if they do not lie within. */
struct iovec;
int virtq_iov(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
              struct iovec *iov, unsigned max);

/* ---- pci.c: the transitional virtio PCI function ---- */

struct virtio_dev;

struct virtio_dev_info {
	const char *name;    /* for messages: "virtio-blk" */
	uint16_t device_id;  /* transitional PCI device ID (0x1000 + ...) */
	uint16_t type;       /* virtio device type, the subsystem ID */
	uint32_t class_code; /* PCI class */
	uint64_t features;   /* offered, besides VIRTIO_F_VERSION_1 and indirect descriptors */
	unsigned nqueues;    /* 1..VIRTIO_MAX_QUEUES */
	const uint8_t *config;
	size_t config_len; /* up to VIRTIO_MAX_CONFIG; the guest reads it, its writes are dropped */
	/* Serves queue idx: takes chains with virtio_pop and returns them with virtio_push.
	 * Runs with the device lock held, on the I/O thread or a vCPU thread. */
	void (*queue_notify)(void *opaque, struct virtio_dev *vd, unsigned idx);
	void *opaque;
};

struct virtio_dev {
	struct vm *vm;
	struct virtio_dev_info info;
	uint8_t config[VIRTIO_MAX_CONFIG];

	pthread_mutex_t lock;
	bm_pci_func *func;
	bm_region *legacy;                             /* BAR0 */
	bm_region *modern;                             /* BAR4 container */
	bm_region *common, *isr_cfg, *device, *notify; /* its four structures */
	uint32_t legacy_size;
	unsigned msix_cap; /* offset in configuration space */
	unsigned pcicfg_cap;

	/* Registers, under lock. */
	uint64_t host_features;
	uint64_t guest_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_sel;
	uint8_t status;
	uint16_t config_vector;
	bool broken;     /* stopped until reset: the guest broke a ring's rules */
	bool config_irq; /* a configuration interrupt is due */
	struct virtq queues[VIRTIO_MAX_QUEUES];

	atomic_uint isr;   /* changed under busmap's writer lock, with the INTx line */
	atomic_uint epoch; /* counts resets: interrupts decided before one are dropped */

	unsigned logged; /* messages a guest caused, for the rate limit */

	pthread_t thread;
	bool thread_started;
	int stop_fd;
};

int virtio_pci_new(struct vm *vm, unsigned slot, const struct virtio_dev_info *info,
                   struct virtio_dev **out);
/* Stops the I/O thread, unplugs the function, frees everything. NULL is accepted. */
void virtio_pci_free(struct virtio_dev *vd);

/* For queue handlers (device lock held). */
/* Takes a chain from queue idx: 1, 0 (none, or this call's share is done), or -EIO when
 * the queue broke the rules: the device is then stopped until reset. */
int virtio_pop(struct virtio_dev *vd, unsigned idx, struct virtq_chain *c);
void virtio_push(struct virtio_dev *vd, unsigned idx, uint16_t head, uint32_t len);
/* Features the driver accepted (within those offered). */
uint64_t virtio_features(const struct virtio_dev *vd);
/* Stops the device until reset: DEVICE_NEEDS_RESET for a VERSION_1 driver, with a
 * configuration interrupt, and a rate-limited message. */
void virtio_set_broken(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
