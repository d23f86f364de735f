/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Savepoints: taking back, inside an open transaction, every change made to the region
 * tree since a given point. For the layers built on the core (the PCI layer) whose one
 * operation is several core changes and must fail with none of them made.
 *
 * While a savepoint is open, every mutator of region.h reserves its undo record before it
 * changes anything (so running out of memory fails the call with nothing changed), then
 * records how to take the change back. Region creation is not recorded: a region made
 * inside a savepoint survives a rollback, unplaced, and stays its maker's.
 */
#ifndef BUSMAP_SRC_JOURNAL_H
#define BUSMAP_SRC_JOURNAL_H

#include <busmap/region.h>
#include <busmap/system.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bm_savepoint {
	size_t mark;  /* records in the journal when it was opened */
	uint64_t seq; /* the system's placement stamp then */
};

/* Opens a savepoint. The caller holds the writer lock inside a transaction (bm_begin);
 * savepoints nest and close in the reverse order of opening. Allocates nothing: -EPERM
 * outside a transaction is the only failure. */
int bm_savepoint_open(bm_system *sys, struct bm_savepoint *sp);
/* Whether a change was recorded since it was opened. */
bool bm_savepoint_changed(const bm_system *sys, const struct bm_savepoint *sp);
/* Closes it keeping the changes; inside another savepoint they become that one's. */
void bm_savepoint_release(bm_system *sys, const struct bm_savepoint *sp);
/* Closes it taking back every change made since it was opened, newest first, stamps
 * included; the windows they touched stay dirty so that the next publication is right.
 * Allocates nothing and cannot fail. */
void bm_savepoint_rollback(bm_system *sys, const struct bm_savepoint *sp);
/* Publishes the changes so far if no transaction is open around the caller's own ones:
 * levels is how many of the open transactions, counted from the outermost, are the
 * caller's (1: only its current one; more for a layer whose hooks run inside its own
 * transactions, after it published and with nothing of its own left to take back). The
 * lock and the transaction stay open, so that a failure (-ENOMEM, nothing published) can
 * still be rolled back before anyone sees the tree. With others open around them: 0, and
 * the outermost commit publishes. Once it succeeded, release the savepoint: a rollback
 * would bring back regions destroyed since, which the publication handed to the
 * reclaimer. */
int bm_publish_held(bm_system *sys, unsigned levels);
/* How many transactions the calling thread, which holds the lock, has open (1: one). */
unsigned bm_transaction_depth(const bm_system *sys);
/* The published depth: how many of the open transactions, from the outermost, have
 * already published and are now running what follows their success (a layer's hooks, the
 * PCI layer's "effects"). A change made inside them counts these levels as its own and
 * publishes at once, so that its own events can follow it. Kept by the system, not the
 * layer's object, because a hook of one PCI host may write a function of another. Only the
 * lock holder reads or sets it; the setter puts back the value it found once its hooks
 * have run. */
unsigned bm_published_depth(const bm_system *sys);
void bm_set_published_depth(bm_system *sys, unsigned levels);

/* The stamp of a region's newest add or move: among siblings of equal priority the higher
 * one wins. For a layer that saves placements and must put them back in the same order. */
uint64_t bm_region_stamp(const bm_region *r);

#endif
