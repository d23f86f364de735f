/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * virtio-blk on an image file: reads, writes, flushes and the device ID, each request
 * checked against the image's capacity.
 */
#include "devices.h"
#include "virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLK_DEVICE_ID 0x1001
#define BLK_TYPE      2
#define BLK_CLASS     0x010000 /* mass storage, SCSI: what QEMU gives it */

#define BLK_F_SEG_MAX  2
#define BLK_F_RO       5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH    9

#define T_IN     0
#define T_OUT    1
#define T_FLUSH  4
#define T_GET_ID 8

#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

#define SECTOR   512
#define HDR_SIZE 16
#define ID_LEN   20
#define ID       "busmap-vmm"

/* struct virtio_blk_config up to and including the topology. */
#define CFG_CAPACITY 0
#define CFG_SEG_MAX  12
#define CFG_BLK_SIZE 20
#define CFG_LEN      32

struct virtio_blk {
	struct virtio_dev *vd;
	int fd;
	bool readonly;
	uint64_t capacity; /* sectors */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* The whole transfer, across short reads and writes and signals. */
static int rw_full(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	while (n > 0) {
		ssize_t r =
		    write ? pwritev(fd, iov, n, (off_t)off) : preadv(fd, iov, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* Data of len bytes at sector: within the image, whole sectors, and small enough that the
 * used length (data plus status) fits its 32 bits. */
static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	return len % SECTOR == 0 && len < UINT32_MAX && sector <= b->capacity &&
	       len / SECTOR <= b->capacity - sector;
}

static uint8_t transfer(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector,
                        bool write, uint64_t *written)
{
	/* Data follows the header in the readable bytes, or precedes the status byte in the
	 * writable ones. */
	uint64_t len = write ? c->read_len - HDR_SIZE : c->write_len - 1;
	if (!in_range(b, sector, len))
		return S_IOERR;
	if (write && b->readonly)
		return S_IOERR;
	int n = virtq_iov(c, !write, write ? HDR_SIZE : 0, len, b->iov, VIRTQ_MAX_SEGS);
	if (n < 0)
		return S_IOERR;
	if (rw_full(b->fd, b->iov, n, sector * SECTOR, write))
		return S_IOERR;
	if (!write)
		*written = len;
	return S_OK;
}

/* Returns the bytes written into the chain, or -1 when the device stopped. */
static int64_t request(struct virtio_blk *b, const struct virtq_chain *c)
{
	if (c->read_len < HDR_SIZE || c->write_len < 1) {
		virtio_set_broken(b->vd, "request without header or status byte");
		return -1;
	}
	struct {
		uint32_t type;
		uint32_t ioprio;
		uint64_t sector;
	} hdr;
	virtq_copy_from(c, 0, &hdr, sizeof(hdr));
	uint64_t written = 0;
	uint8_t status;
	switch (hdr.type) {
	case T_IN:
	case T_OUT:
		status = transfer(b, c, hdr.sector, hdr.type == T_OUT, &written);
		break;
	case T_FLUSH:
		status = b->readonly || fdatasync(b->fd) == 0 ? S_OK : S_IOERR;
		break;
	case T_GET_ID: {
		char id[ID_LEN] = ID;
		written = c->write_len - 1 < ID_LEN ? c->write_len - 1 : ID_LEN;
		virtq_copy_to(c, 0, id, (size_t)written);
		status = S_OK;
		break;
	}
	default:
		status = S_UNSUPP;
		break;
	}
	virtq_copy_to(c, c->write_len - 1, &status, 1);
	return (int64_t)written + 1;
}

static void blk_queue(void *opaque, struct virtio_dev *vd, unsigned idx)
{
	struct virtio_blk *b = opaque;
	struct virtq_chain c;
	while (virtio_pop(vd, idx, &c) == 1) {
		int64_t written = request(b, &c);
		if (written < 0)
			return;
		virtio_push(vd, idx, c.head, (uint32_t)written);
	}
}

static int image_size(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	/* Block devices report their size through the end offset, not st_size. */
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = (uint64_t)end;
	return 0;
}

int virtio_blk_new(struct vm *vm, unsigned slot, const char *path, bool readonly,
                   struct virtio_blk **out)
{
	if (!vm || !path || !out)
		return -EINVAL;
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->readonly = readonly;
	/* O_NONBLOCK: opening a FIFO by mistake must not hang; it is refused below. */
	b->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (b->fd < 0) {
		int err = -errno;
		free(b);
		return err;
	}
	uint64_t size = 0;
	int err = image_size(b->fd, &size);
	if (!err && fcntl(b->fd, F_SETFL, 0))
		err = -errno;
	if (err) {
		close(b->fd);
		free(b);
		return err;
	}
	b->capacity = size / SECTOR;

	uint8_t cfg[CFG_LEN] = {0};
	uint32_t seg_max = VIRTQ_MAX_SIZE - 2; /* a chain is header, data..., status */
	uint32_t blk_size = SECTOR;
	memcpy(cfg + CFG_CAPACITY, &b->capacity, 8);
	memcpy(cfg + CFG_SEG_MAX, &seg_max, 4);
	memcpy(cfg + CFG_BLK_SIZE, &blk_size, 4);
	uint64_t features = (1ull << BLK_F_SEG_MAX) | (1ull << BLK_F_BLK_SIZE) |
	                    (1ull << BLK_F_FLUSH) | (readonly ? 1ull << BLK_F_RO : 0);
	struct virtio_dev_info info = {
	    .name = "virtio-blk",
	    .device_id = BLK_DEVICE_ID,
	    .type = BLK_TYPE,
	    .class_code = BLK_CLASS,
	    .features = features,
	    .nqueues = 1,
	    .config = cfg,
	    .config_len = sizeof(cfg),
	    .queue_notify = blk_queue,
	    .opaque = b,
	};
	err = virtio_pci_new(vm, slot, &info, &b->vd);
	if (err) {
		close(b->fd);
		free(b);
		return err;
	}
	*out = b;
	return 0;
}

void virtio_blk_free(void *dev)
{
	struct virtio_blk *b = dev;
	if (!b)
		return;
	virtio_pci_free(b->vd);
	close(b->fd);
	free(b);
}
