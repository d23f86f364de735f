/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Editing saved PCI state in tests: after changing a field, a test or fuzz target makes the
 * blob intact again (its length field and checksum), so that what restore judges is the
 * edit and not the damage. The CRC-32 here is the plain bitwise one, written apart from the
 * library's, so that the two check each other.
 */
#ifndef BUSMAP_TESTS_PCI_BLOB_H
#define BUSMAP_TESTS_PCI_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define BLOB_LENGTH_AT 16 /* the header's total-length field, 8 bytes */
#define BLOB_CRC_LEN   4  /* the CRC-32 that closes the blob */

static inline void blob_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t blob_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return ~c;
}

/* The right length field and checksum for len bytes; nothing where they have no room. */
static inline void blob_reseal(uint8_t *b, size_t len)
{
	if (len < BLOB_LENGTH_AT + 8 + BLOB_CRC_LEN)
		return;
	blob_put_le(b + BLOB_LENGTH_AT, len, 8);
	blob_put_le(b + len - BLOB_CRC_LEN, blob_crc32(b, len - BLOB_CRC_LEN), BLOB_CRC_LEN);
}

#endif
