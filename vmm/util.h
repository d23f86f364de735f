/* SPDX-License-Identifier: BSD-2-Clause */
/* Small helpers several VMM files share. Any thread; no state. */
#ifndef BUSMAP_VMM_UTIL_H
#define BUSMAP_VMM_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Grows the array *v (of elements of elem bytes, *cap of them) to hold at least need,
 * doubling. Returns 0 or -ENOMEM, leaving the array as it was. */
int vmm_grow(void *v, size_t *cap, size_t need, size_t elem);

/* Writes a message into err (n bytes) and returns -EINVAL: how the command line and the
 * file checks say what is wrong. */
int vmm_refuse(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes one byte of guest output to fd (-1: nowhere). A full non-blocking fd drops it, as
 * a line with no one listening would. Returns 0, or a negative errno (-EIO when nothing
 * was written) that the device reports once. */
int vmm_put_byte(int fd, uint8_t byte);

#endif
