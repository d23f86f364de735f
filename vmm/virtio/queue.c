/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Split virtqueues: descriptor chains taken from the available ring, returned through the
 * used ring. Every index, address and length comes from the guest and is checked.
 */
#include "virtio.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define DESC_SIZE       16
#define DESC_F_NEXT     0x1
#define DESC_F_WRITE    0x2
#define DESC_F_INDIRECT 0x4

#define AVAIL_F_NO_INTERRUPT 0x1

/* Ring sizes in bytes, with the event index words, which are part of the rings whether or
 * not the feature is negotiated. */
#define DESC_BYTES(n)  (DESC_SIZE * (uint64_t)(n))
#define AVAIL_BYTES(n) (6 + 2 * (uint64_t)(n))
#define USED_BYTES(n)  (6 + 8 * (uint64_t)(n))

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct desc) == DESC_SIZE, "descriptor layout");

void virtq_reset(struct virtq *q)
{
	q->size = VIRTQ_MAX_SIZE;
	q->ready = false;
	q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
	q->vector = VIRTIO_NO_VECTOR;
	q->desc = q->avail = q->used = NULL;
	q->last_avail = 0;
	q->used_idx = 0;
	q->pushed = false;
	q->budget = 0;
	q->more = false;
}

int virtq_map(struct vm *vm, struct virtq *q)
{
	unsigned n = q->size;
	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	/* The ring words are read and written atomically, so they must be aligned. */
	if (q->desc_gpa % 16 || q->avail_gpa % 2 || q->used_gpa % 4)
		return -EINVAL;
	q->desc = vm_guest_ptr(vm, q->desc_gpa, DESC_BYTES(n));
	q->avail = vm_guest_ptr(vm, q->avail_gpa, AVAIL_BYTES(n));
	q->used = vm_guest_ptr(vm, q->used_gpa, USED_BYTES(n));
	if (!q->desc || !q->avail || !q->used) {
		q->desc = q->avail = q->used = NULL;
		return -EFAULT;
	}
	return 0;
}

static uint16_t *avail_flags(const struct virtq *q)
{
	return (uint16_t *)(void *)q->avail;
}

static uint16_t *avail_idx(const struct virtq *q)
{
	return (uint16_t *)(void *)(q->avail + 2);
}

static uint16_t *avail_ring(const struct virtq *q, uint16_t i)
{
	return (uint16_t *)(void *)(q->avail + 4 + 2 * (size_t)(i & (q->size - 1)));
}

static uint16_t *used_idx(const struct virtq *q)
{
	return (uint16_t *)(void *)(q->used + 2);
}

static uint32_t *used_elem(const struct virtq *q, uint16_t i)
{
	return (uint32_t *)(void *)(q->used + 4 + 8 * (size_t)(i & (q->size - 1)));
}

bool virtq_has_avail(const struct virtq *q)
{
	if (!q->ready || !q->avail)
		return false;
	return __atomic_load_n(avail_idx(q), __ATOMIC_ACQUIRE) != q->last_avail;
}

/* The descriptor is copied out once: the guest may change it while we look. */
static void read_desc(const uint8_t *table, unsigned i, struct desc *d)
{
	memcpy(d, table + (size_t)i * DESC_SIZE, sizeof(*d));
}

int virtq_pop(struct vm *vm, struct virtq *q, bool indirect, struct virtq_chain *c)
{
	if (!q->ready || !q->avail)
		return 0;
	/* Acquire: the ring entry and descriptors the driver wrote before the index. */
	uint16_t avail = __atomic_load_n(avail_idx(q), __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(avail - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return -EOVERFLOW;
	uint16_t head = __atomic_load_n(avail_ring(q, q->last_avail), __ATOMIC_RELAXED);
	if (head >= q->size)
		return -ERANGE;
	q->last_avail++;

	*c = (struct virtq_chain){.head = head, .segs = q->segs};
	const uint8_t *table = q->desc;
	unsigned table_len = q->size;
	/* A chain visits each descriptor of its table at most once; one more is a loop. */
	unsigned budget = q->size;
	bool in_indirect = false;
	unsigned i = head;
	for (;;) {
		if (budget-- == 0)
			return -ELOOP;
		struct desc d;
		read_desc(table, i, &d);
		if (d.flags & DESC_F_INDIRECT) {
			if (!indirect || in_indirect || (d.flags & DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_INDIR)
				return -EINVAL;
			table = vm_guest_ptr(vm, d.addr, d.len);
			if (!table)
				return -EFAULT;
			table_len = d.len / DESC_SIZE;
			budget = table_len;
			in_indirect = true;
			i = 0;
			continue;
		}
		if (d.len) {
			bool w = d.flags & DESC_F_WRITE;
			if (!w && c->nsegs > c->nread)
				return -EINVAL;
			if (c->nsegs == VIRTQ_MAX_SEGS)
				return -E2BIG;
			uint8_t *p = vm_guest_ptr(vm, d.addr, d.len);
			if (!p)
				return -EFAULT;
			c->segs[c->nsegs++] = (struct virtq_seg){p, d.len};
			if (w) {
				c->write_len += d.len;
			} else {
				c->nread++;
				c->read_len += d.len;
			}
		}
		if (!(d.flags & DESC_F_NEXT))
			return 1;
		if (d.next >= table_len)
			return -ERANGE;
		i = d.next;
	}
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	uint32_t *e = used_elem(q, q->used_idx);
	__atomic_store_n(&e[0], (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&e[1], len, __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the element, and the data written into the buffers, before the index. */
	__atomic_store_n(used_idx(q), q->used_idx, __ATOMIC_RELEASE);
	q->pushed = true;
}

bool virtq_wants_interrupt(const struct virtq *q)
{
	/* The used index must be visible before the flag is read, or a driver that clears
	 * the flag right after checking the index could miss both. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(__atomic_load_n(avail_flags(q), __ATOMIC_RELAXED) & AVAIL_F_NO_INTERRUPT);
}

/* Segment range of the readable or writable buffers. */
static void seg_range(const struct virtq_chain *c, bool writable, unsigned *first, unsigned *end)
{
	*first = writable ? c->nread : 0;
	*end = writable ? c->nsegs : c->nread;
}

static size_t copy(const struct virtq_chain *c, bool writable, uint64_t off, uint8_t *buf,
                   size_t len)
{
	unsigned s, end;
	seg_range(c, writable, &s, &end);
	size_t done = 0;
	for (; s < end && done < len; s++) {
		uint32_t sl = c->segs[s].len;
		if (off >= sl) {
			off -= sl;
			continue;
		}
		size_t n = sl - off;
		if (n > len - done)
			n = len - done;
		if (writable)
			memcpy(c->segs[s].p + off, buf + done, n);
		else
			memcpy(buf + done, c->segs[s].p + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_copy_from(const struct virtq_chain *c, uint64_t off, void *buf, size_t len)
{
	return copy(c, false, off, buf, len);
}

size_t virtq_copy_to(const struct virtq_chain *c, uint64_t off, const void *buf, size_t len)
{
	return copy(c, true, off, (uint8_t *)(uintptr_t)buf, len);
}

int virtq_iov(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
              struct iovec *iov, unsigned max)
{
	unsigned s, end;
	seg_range(c, writable, &s, &end);
	unsigned n = 0;
	for (; s < end && len; s++) {
		uint32_t sl = c->segs[s].len;
		if (off >= sl) {
			off -= sl;
			continue;
		}
		if (n == max)
			return -EINVAL;
		uint64_t take = sl - off;
		if (take > len)
			take = len;
		iov[n++] = (struct iovec){c->segs[s].p + off, (size_t)take};
		len -= take;
		off = 0;
	}
	return len ? -EINVAL : (int)n;
}
