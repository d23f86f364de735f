/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Access-size adaptation: one piece of a guest access, inside one flat range, carried out
 * with the sizes its region implements.
 *
 * The piece is covered by naturally aligned units of an implemented size. A unit that lies
 * wholly inside the piece is one callback. A unit that sticks out of it (a 1-byte read of a
 * 4-byte-only register, an unaligned access) is read whole and the wanted bytes taken out;
 * for a write, read, patched and written back. Units never reach past the region's end.
 */
#include "internal.h"
#include <string.h>

static uint64_t bytes_to_value(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void value_to_bytes(uint64_t v, uint8_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t align_down(uint64_t x, unsigned unit)
{
	return x & ~(uint64_t)(unit - 1);
}

/*
 * Picks the unit for the byte at off with want bytes to go: the largest implemented size
 * that starts there aligned and fits both the piece and the region; else the smallest
 * implemented size whose aligned unit around off fits the region. 0 if none does.
 */
static unsigned pick_unit(unsigned impl, uint64_t off, unsigned want, uint64_t region_last)
{
	for (unsigned u = 8; u; u >>= 1) {
		if ((impl & u) && u <= want && align_down(off, u) == off &&
		    off + (u - 1) <= region_last)
			return u;
	}
	for (unsigned u = 1; u <= 8; u <<= 1) {
		uint64_t c = align_down(off, u);
		if ((impl & u) && c + (u - 1) <= region_last)
			return u;
	}
	return 0;
}

static int io_read_unit(const bm_region *rg, bm_vcpu *vcpu, uint64_t off, unsigned u, uint64_t *v)
{
	if (!rg->ops.read) {
		*v = UINT64_MAX;
		return 0;
	}
	return rg->ops.read(rg->opaque, vcpu, off, u, v);
}

static int io_write_unit(const bm_region *rg, bm_vcpu *vcpu, uint64_t off, unsigned u, uint64_t v)
{
	if (!rg->ops.write)
		return 0;
	return rg->ops.write(rg->opaque, vcpu, off, u, v);
}

/* Reads [off, off + len) of an io region into bytes (0xff where nothing can be read). */
static int io_read(const bm_region *rg, uint64_t region_last, bm_vcpu *vcpu, uint64_t off,
                   unsigned len, uint8_t *bytes)
{
	for (unsigned done = 0; done < len;) {
		uint64_t pos = off + done;
		unsigned u = pick_unit(rg->ops.impl_sizes, pos, len - done, region_last);
		if (!u) {
			bytes[done++] = 0xff;
			continue;
		}
		uint64_t c = align_down(pos, u);
		uint64_t v = UINT64_MAX;
		int err = io_read_unit(rg, vcpu, c, u, &v);
		if (err)
			return err;
		uint8_t unit[8];
		value_to_bytes(v, unit, u);
		unsigned from = (unsigned)(pos - c);
		unsigned n = u - from < len - done ? u - from : len - done;
		memcpy(bytes + done, unit + from, n);
		done += n;
	}
	return 0;
}

static int io_write(const bm_region *rg, uint64_t region_last, bm_vcpu *vcpu, uint64_t off,
                    unsigned len, const uint8_t *bytes)
{
	for (unsigned done = 0; done < len;) {
		uint64_t pos = off + done;
		unsigned u = pick_unit(rg->ops.impl_sizes, pos, len - done, region_last);
		if (!u) {
			done++; /* a byte no implemented unit can carry is dropped */
			continue;
		}
		uint64_t c = align_down(pos, u);
		unsigned from = (unsigned)(pos - c);
		unsigned n = u - from < len - done ? u - from : len - done;
		uint8_t unit[8];
		if (n != u) {
			uint64_t old = UINT64_MAX;
			int err = io_read_unit(rg, vcpu, c, u, &old);
			if (err)
				return err;
			value_to_bytes(old, unit, u);
		}
		memcpy(unit + from, bytes + done, n);
		int err = io_write_unit(rg, vcpu, c, u, bytes_to_value(unit, u));
		if (err)
			return err;
		done += n;
	}
	return 0;
}

int bm_access_read(bm_vcpu *vcpu, const struct bm_range *r, uint64_t addr, unsigned len,
                   uint8_t *bytes)
{
	const bm_region *rg = r->region;
	if (!rg) {
		memset(bytes, 0xff, len);
		return BM_ACCESS_UNASSIGNED;
	}
	uint64_t off = r->offset + (addr - r->start);
	if (rg->kind == BM_REGION_RAM) {
		memcpy(bytes, rg->host + off, len);
		return 0;
	}
	return io_read(rg, r->region_last, vcpu, off, len, bytes);
}

int bm_access_write(bm_vcpu *vcpu, const struct bm_range *r, uint64_t addr, unsigned len,
                    const uint8_t *bytes)
{
	const bm_region *rg = r->region;
	if (!rg)
		return BM_ACCESS_UNASSIGNED;
	uint64_t off = r->offset + (addr - r->start);
	if (rg->kind == BM_REGION_RAM) {
		memcpy(rg->host + off, bytes, len);
		return 0;
	}
	return io_write(rg, r->region_last, vcpu, off, len, bytes);
}

int bm_read_ones(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	*value = UINT64_MAX >> (64 - 8 * size); /* a value that fits, as any read stores */
	return 0;
}

int bm_write_drop(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	(void)value;
	return 0;
}

uint64_t bm_bytes_to_value(const uint8_t *b, unsigned n)
{
	return bytes_to_value(b, n);
}

void bm_value_to_bytes(uint64_t v, uint8_t *b, unsigned n)
{
	value_to_bytes(v, b, n);
}
