/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dispatch: guest reads and writes, from vCPU threads, without locks.
 *
 * Each vCPU thread creates one bm_vcpu on itself and passes it to every access. The context
 * registers the thread with RCU, keeps a one-entry hint (the last flat range it hit, valid
 * while the view's generation is unchanged) and its own counters, so a dispatch writes no
 * cache line that another thread writes.
 *
 * Threads:
 * - bm_vcpu_new: on the thread that will dispatch with it; bm_vcpu_free on that same thread.
 * - bm_read/bm_write: only on the context's thread. Callbacks run on that thread and may
 *   change the map (the change is visible to the next access once committed).
 * - bm_vcpu_stats: any thread (the figures are read without synchronising, each one exact
 *   but not a snapshot of all).
 */
#ifndef BUSMAP_DISPATCH_H
#define BUSMAP_DISPATCH_H

#include <busmap/space.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What bm_read and bm_write return: a negative errno when the access failed, otherwise a
 * combination of BM_ACCESS_* flags describing an access that was carried out (0: every byte
 * reached a region). A nonzero result is not a failure: an unassigned read succeeded and
 * read all ones. Test failure with bm_failed (or `< 0`), never with `!= 0`.
 */
typedef int bm_access_result;
#define BM_ACCESS_UNASSIGNED 0x1 /* some byte had no region: read as 0xff, write dropped */
#define BM_ACCESS_CONFLICT   0x2 /* some byte lay in an overlap of exclusive regions */

static inline bool bm_failed(bm_access_result r)
{
	return r < 0;
}

/* Creates a context on the calling thread. user is returned by bm_vcpu_user. */
BM_API int bm_vcpu_new(bm_system *sys, unsigned index, void *user, bm_vcpu **out);
/* -EPERM if called on another thread than the one that created it. */
BM_API int bm_vcpu_free(bm_vcpu *vcpu);

/*
 * For systems created with BM_RCU_QSBR (no-ops returning 0 otherwise); they act on the
 * calling thread, which must be the context's. A new context's thread is online.
 * - bm_vcpu_quiescent: the thread holds no reference into any map (call it between
 *   accesses, e.g. once per VM exit). -EDEADLK inside an access that is still using the
 *   map (one cut into pieces); -EPERM if the thread is offline.
 * - bm_vcpu_offline: the same, lasting until bm_vcpu_online; call it before anything that
 *   may block for long, such as entering the guest. An access on an offline thread fails
 *   with -EPERM and reaches nothing.
 */
BM_API int bm_vcpu_quiescent(bm_vcpu *vcpu);
BM_API int bm_vcpu_offline(bm_vcpu *vcpu);
BM_API int bm_vcpu_online(bm_vcpu *vcpu);
BM_API unsigned bm_vcpu_index(const bm_vcpu *vcpu);
BM_API void *bm_vcpu_user(const bm_vcpu *vcpu);

struct bm_vcpu_stats {
	uint64_t accesses;   /* bm_read/bm_write calls that were dispatched */
	uint64_t unassigned; /* accesses with BM_ACCESS_UNASSIGNED */
	uint64_t conflicts;  /* accesses with BM_ACCESS_CONFLICT */
	uint64_t hint_hits;  /* accesses served directly through the one-entry hint */
};
BM_API void bm_vcpu_stats(const bm_vcpu *vcpu, struct bm_vcpu_stats *out);

/*
 * Reads or writes size (1, 2, 4 or 8) bytes at addr. An access that spans several flat
 * ranges is split and each piece goes to its own region; bytes past 2^64 - 1 are
 * unassigned. Returns a bm_access_result: BM_ACCESS_* flags (>= 0), or < 0 for: -EINVAL
 * (NULL argument, bad size, or a space of another system than the context's),
 * -EOPNOTSUPP (size not valid for a region it reaches; no callback ran and a read gives all
 * ones), -EPERM (BM_RCU_QSBR and the thread is offline), or the first error a callback
 * returned (a read then gives what the callback left in its value, all ones if it set
 * none).
 * A read's value is little-endian in *value; bytes that were unassigned read as 0xff.
 * An access that one callback serves whole (one range, a size the region takes directly,
 * an aligned offset) returns what that callback returns and leaves in *value what it
 * stored: callbacks return 0 or a negative errno and store values that fit in size bytes
 * (see struct bm_region_ops). A write's value is cut to size bytes before any callback.
 */
BM_API bm_access_result bm_read(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size,
                                uint64_t *value);
BM_API bm_access_result bm_write(bm_vcpu *vcpu, bm_space *space, uint64_t addr, unsigned size,
                                 uint64_t value);

#ifdef __cplusplus
}
#endif
#endif
