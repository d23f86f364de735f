/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bm_system: the object that owns a guest's address spaces and regions.
 *
 * One system per virtual machine. It holds the writer lock that serialises every change
 * to its regions and spaces, the transaction depth, and the RCU machinery that lets vCPU
 * threads dispatch without locks while the map changes under them.
 *
 * Threads:
 * - bm_system_new/bm_system_free: any thread, once, with no other call in flight.
 * - bm_begin/bm_commit and every function that changes a region or a space: any thread.
 *   Writers are serialised by the system's lock; a thread may nest begin/commit, and a
 *   region callback running inside a dispatch may change the map (the change publishes
 *   when its outermost commit runs, on that thread).
 * - bm_synchronize: any thread that is not inside a dispatch, a listener or a callback
 *   (see bm_synchronize for the one QSBR exception).
 * - bm_defer: any thread, anywhere, including inside a dispatch or a region callback.
 *
 * Threads the library starts: one per system, its reclaim thread, created by
 * bm_system_new and joined by bm_system_free. It frees what changes retire and runs the
 * calls handed to bm_defer, after grace periods. Nothing else in the library, the PCI
 * layer or the bhyve layer starts a thread (liburcu's memb and QSBR flavours, as used
 * here, start none either).
 *
 * Errors are negative errno values; nothing here prints or aborts.
 */
#ifndef BUSMAP_SYSTEM_H
#define BUSMAP_SYSTEM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library exports only what its headers declare. */
#if defined(__GNUC__)
#define BM_API __attribute__((visibility("default")))
#else
#define BM_API
#endif

typedef struct bm_system bm_system;

/* Creates an empty system. Returns 0, -EINVAL (out is NULL) or -ENOMEM. */
BM_API int bm_system_new(bm_system **out);

/*
 * How vCPU threads read the map without locks (liburcu flavours).
 * - BM_RCU_MEMB, the default: each dispatch marks itself as a read-side section. vCPU
 *   threads owe the library nothing.
 * - BM_RCU_QSBR: a dispatch marks nothing, which makes it cheaper; in exchange each vCPU
 *   thread reports quiescent states (bm_vcpu_quiescent, typically once per VM exit) or goes
 *   offline while it may block (bm_vcpu_offline around KVM_RUN, a halt, a sleep). Memory
 *   that changes retire is freed only once every online QSBR thread of the process has
 *   reported one, and bm_synchronize waits for that too: a thread that neither reports nor
 *   goes offline holds up both.
 */
enum bm_rcu_flavour {
	BM_RCU_MEMB = 0,
	BM_RCU_QSBR = 1,
};

/* bm_system_new with a flavour. -EINVAL for an unknown flavour. */
BM_API int bm_system_new_flavour(enum bm_rcu_flavour flavour, bm_system **out);

/*
 * Frees the system, its spaces and every region still created from it, after waiting for
 * dispatches in flight. No vCPU context and no PCI host (bm_pci_host_free first) may
 * remain: -EBUSY otherwise, and nothing is freed.
 */
BM_API int bm_system_free(bm_system *sys);

/*
 * Opens a transaction: changes made until the matching bm_commit publish together, as one
 * new view per changed space, and listeners see one difference. Nestable; the outermost
 * commit publishes. Between begin and commit the calling thread holds the writer lock, so
 * other writers wait; dispatches do not.
 */
BM_API int bm_begin(bm_system *sys);

/*
 * Closes the innermost transaction. Returns -EPERM when the calling thread has none open.
 * The outermost commit renders what changed, publishes it, then calls listeners and
 * conflict callbacks on this thread. An allocation failure while rendering returns -ENOMEM:
 * the windows rendered before it are published (each is a correct picture of the tree), and
 * every dirty window stays dirty, to be rendered again by the next commit.
 */
BM_API int bm_commit(bm_system *sys);

/*
 * Waits until every dispatch that started before this call has returned. After
 * bm_region_del (or bm_region_destroy) followed by bm_synchronize, no dispatch is running,
 * or will run, a callback of that region: the device owner may free its opaque state.
 * Returns -EDEADLK when called from inside a dispatch, a listener or an open transaction.
 * Under BM_RCU_QSBR a callback that serves an access whole may call it: nothing of the old
 * map is used after that callback returns, so liburcu waits with the thread offline.
 */
BM_API int bm_synchronize(bm_system *sys);

/*
 * Freeing the caller's objects after a grace period. An object that a region callback may
 * still be using after its region left the map (a device's state, a record the callback
 * reads) embeds a struct bm_deferred and is handed to bm_defer instead of being freed.
 * The library owns the link until fn runs; fn gets it back (recover the object from it).
 */
struct bm_deferred {
	struct bm_deferred *next;
	void (*fn)(struct bm_deferred *d);
};

/*
 * Calls fn(d) once no dispatch can reach anything the published maps stopped reaching
 * before the call. Inside the calling thread's open transaction (bm_begin, or a callback's
 * change), the wait starts only when that transaction publishes: an object that a region
 * destroyed in the same transaction uses can be handed over before the commit, and stays
 * alive while a failed publication keeps the old map in use. Neither waits nor
 * allocates: callable anywhere, a dispatch or region callback included.
 * fn runs on the system's reclaim thread, or inside bm_system_free for calls still pending
 * there; it must not call into the library. Returns 0, or -EINVAL (NULL argument).
 */
BM_API int bm_defer(bm_system *sys, struct bm_deferred *d, void (*fn)(struct bm_deferred *d));

#ifdef __cplusplus
}
#endif
#endif
