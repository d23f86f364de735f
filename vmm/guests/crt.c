/* SPDX-License-Identifier: BSD-2-Clause */
/* What gcc may call on its own in a freestanding guest (struct copies and clears). */
#include "guest.h"

void *memset(void *p, int c, u32 n)
{
	u8 *b = p;
	while (n--)
		*b++ = (u8)c;
	return p;
}

void *memcpy(void *d, const void *s, u32 n)
{
	u8 *o = d;
	const u8 *i = s;
	while (n--)
		*o++ = *i++;
	return d;
}
