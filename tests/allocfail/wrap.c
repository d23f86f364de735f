/* SPDX-License-Identifier: BSD-2-Clause */
#include "wrap.h"

#include <errno.h>
#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
int __real_posix_memalign(void **p, size_t align, size_t size);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
int __wrap_posix_memalign(void **p, size_t align, size_t size);

/* Per thread, so that the reclaimer thread freeing in the background is never counted. */
static _Thread_local struct {
	bool armed;
	bool fired;
	unsigned long calls;
	unsigned long fail_at;
} af;

void af_arm(unsigned long n)
{
	af.armed = true;
	af.fired = false;
	af.calls = 0;
	af.fail_at = n;
}

unsigned long af_disarm(void)
{
	af.armed = false;
	return af.calls;
}

bool af_fired(void)
{
	return af.fired;
}

static bool fail_now(void)
{
	if (!af.armed || ++af.calls != af.fail_at)
		return false;
	af.fired = true;
	return true;
}

/* As a real allocator out of memory would. */
static void *enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

void *__wrap_malloc(size_t size)
{
	return fail_now() ? enomem() : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? enomem() : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? enomem() : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? enomem() : __real_strdup(s);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
	return fail_now() ? ENOMEM : __real_posix_memalign(p, align, size);
}
