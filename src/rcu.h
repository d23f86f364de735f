/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The library's whole use of RCU, in one place: liburcu's memb flavour (chosen by
 * measurement, see bench/), publication with release/acquire atomics, and the
 * happens-before edges that ThreadSanitizer cannot see through liburcu's membarrier-based
 * grace periods: every read-side section "releases" the system's sync token as it ends, and
 * whoever waited for a grace period "acquires" it, which is exactly RCU's guarantee.
 */
#ifndef BUSMAP_SRC_RCU_H
#define BUSMAP_SRC_RCU_H

#if defined(__SANITIZE_THREAD__)
#define BM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BM_TSAN 1
#endif
#endif

/*
 * The read-side fast path is liburcu's static inline version (_LGPL_SOURCE): a handful of
 * instructions instead of two calls through the PLT and __tls_get_addr, which measured at
 * 85 instructions per empty section (bench/). BSD-2-Clause code is LGPL-compatible, and
 * what gets inlined are small functions of a few lines. The library is built with the
 * initial-exec TLS model so that the inlined code reaches liburcu's per-thread reader state
 * with a plain %fs-relative load.
 */
/* Under ThreadSanitizer the library calls stay uninlined: liburcu's own lock-free internals
 * are not written for it. */
#if !defined(_LGPL_SOURCE) && !defined(BM_TSAN)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-memb.h>

#ifdef BM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define bm_tsan_acquire(p) __tsan_acquire((void *)(p))
#define bm_tsan_release(p) __tsan_release((void *)(p))
#else
#define bm_tsan_acquire(p) ((void)(p))
#define bm_tsan_release(p) ((void)(p))
#endif

static inline void bm_rcu_read_lock(void)
{
	urcu_memb_read_lock();
}

static inline void bm_rcu_read_unlock(const void *token)
{
	bm_tsan_release(token);
	urcu_memb_read_unlock();
}

static inline void bm_rcu_synchronize(const void *token)
{
	urcu_memb_synchronize_rcu();
	bm_tsan_acquire(token);
}

/* On the architectures busmap targets, an acquire load costs what a plain load does. */
#define bm_rcu_publish(pp, v) __atomic_store_n((pp), (v), __ATOMIC_RELEASE)
#define bm_rcu_deref(pp)      __atomic_load_n((pp), __ATOMIC_ACQUIRE)

#endif
