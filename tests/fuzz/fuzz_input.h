/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Turning fuzzer bytes into choices. An exhausted input reads as zeros, so every prefix of
 * an input is itself a meaningful input and the fuzzer's truncations stay useful.
 */
#ifndef BUSMAP_FUZZ_INPUT_H
#define BUSMAP_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fz_input {
	const uint8_t *p;
	size_t n;
};

static inline bool in_empty(const struct fz_input *in)
{
	return in->n == 0;
}

static inline uint8_t in_u8(struct fz_input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* k bytes, little-endian. */
static inline uint64_t in_bytes(struct fz_input *in, unsigned k)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < k; i++)
		v |= (uint64_t)in_u8(in) << (8 * i);
	return v;
}

static inline uint64_t in_u16(struct fz_input *in)
{
	return in_bytes(in, 2);
}

static inline uint64_t in_u64(struct fz_input *in)
{
	return in_bytes(in, 8);
}

static inline uint64_t in_below(struct fz_input *in, uint64_t n)
{
	uint64_t v = n > 0xffff ? in_bytes(in, 4) : n > 0xff ? in_u16(in) : in_u8(in);
	return n ? v % n : 0;
}

#endif
