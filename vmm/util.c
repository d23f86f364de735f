/* SPDX-License-Identifier: BSD-2-Clause */
/* Small helpers several VMM files share (see util.h). */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int vmm_grow(void *v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *nv = realloc(*(void **)v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*(void **)v = nv;
	*cap = ncap;
	return 0;
}

int vmm_refuse(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int vmm_put_byte(int fd, uint8_t byte)
{
	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = write(fd, &byte, 1);
		if (n == 1 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}
