/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The library's whole use of RCU, in one place: liburcu's memb flavour by default and QSBR
 * for systems that ask for it (both chosen by measurement, see bench/), publication with
 * release/acquire atomics, and the happens-before edges that ThreadSanitizer cannot see
 * through liburcu's grace periods: every read-side section "releases" the system's sync
 * token as it ends (under QSBR: every quiescent state), and whoever waited for a grace
 * period "acquires" it, which is exactly RCU's guarantee.
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
#include <stdbool.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

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

/* A QSBR quiescent state covers every system at once, so its happens-before edge goes
 * through one address for the process. Never written: only its address matters. */
extern const char bm_qsbr_token;

/* Waits for a grace period of one flavour. Under QSBR an online caller is taken offline
 * for the wait by liburcu itself. */
static inline void bm_rcu_synchronize(bool qsbr, const void *token)
{
	if (qsbr) {
		token = &bm_qsbr_token;
		/* Going offline for the wait is this thread's quiescent state. */
		if (urcu_qsbr_read_ongoing())
			bm_tsan_release(token);
		urcu_qsbr_synchronize_rcu();
	} else {
		urcu_memb_synchronize_rcu();
	}
	bm_tsan_acquire(token);
}

/* Accesses being cut into pieces on this thread (dispatch.c). */
extern _Thread_local unsigned bm_split_depth;

/* Whether the calling thread may hold references a grace period must outlive, so that
 * waiting for one would wait for itself. A QSBR thread that is merely online does not
 * count: liburcu takes it offline for the wait. */
static inline bool bm_rcu_reading(void)
{
	return urcu_memb_read_ongoing() || bm_split_depth;
}

/* On the architectures busmap targets, an acquire load costs what a plain load does. */
#define bm_rcu_publish(pp, v) __atomic_store_n((pp), (v), __ATOMIC_RELEASE)
#define bm_rcu_deref(pp)      __atomic_load_n((pp), __ATOMIC_ACQUIRE)

#endif
