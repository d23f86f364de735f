/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The library's private objects and the seams between its files:
 *   system.c   writer lock, transactions        region.c   region objects and their tree
 *   space.c    spaces and dirty windows         render.c   region tree -> flat pieces
 *   commit.c   pieces -> published views        conflict.c overlaps of exclusive regions
 *   listener.c view differences to listeners   dispatch.c vCPU contexts and bm_read/write
 *   access.c   access-size adaptation           dump.c     mtree / flat / JSON output
 *   index.c    the lookup structure             itree.c    subregions by interval
 *   reclaim.c  freeing after RCU grace periods  rcu.h      the library's use of liburcu
 *   journal.c  savepoints: undo records of region changes inside a transaction
 * The PCI layer (pci/, with its own pci_internal.h) and the BAR allocator (alloc/) build on
 * the public API; the allocator borrows bm_grow from here, the PCI layer uses savepoints
 * (journal.h) to make a configuration write all-or-nothing.
 */
#ifndef BUSMAP_SRC_INTERNAL_H
#define BUSMAP_SRC_INTERNAL_H

#include "index.h"
#include "itree.h"
#include <busmap/busmap.h>
#include <pthread.h>
#include <stdatomic.h>

#define BM_CONTAINER_OF(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* A doubly linked list node, for the writer-side lists of regions, spaces and listeners. */
struct bm_link {
	struct bm_link *prev, *next;
};

void bm_list_init(struct bm_link *head);
void bm_list_add_tail(struct bm_link *head, struct bm_link *l);
void bm_list_del(struct bm_link *l);

/* Makes room for one more element in the growable array *v of *cap elements holding n:
 * doubles it when full. -ENOMEM leaves the array as it was. */
int bm_grow(void *v, size_t *cap, size_t n, size_t elem);

/* qsort, by a stable insertion for the handful of elements (a commit's windows, a
 * window's pieces) where qsort's setup costs more than the sort. */
void bm_sort(void *base, size_t n, size_t elem, int (*cmp)(const void *, const void *));

/* ---- reclaim.c: a thread that frees garbage once no reader can reach it ---- */

struct bm_reclaimer;

/* Garbage of one publication. Allocated before the publication so that handing it over
 * cannot fail after the new view is out. */
struct bm_batch {
	struct bm_batch *next;
	struct bm_garbage bag;
	void *view; /* the view a publication replaced; its own slot so adding it cannot fail */
};

int bm_reclaimer_new(bool qsbr, const void *token, struct bm_reclaimer **out);
/* Takes the batch; frees its pointers, then it, after a grace period. NULL is ignored. */
void bm_reclaimer_push(struct bm_reclaimer *rc, struct bm_batch *b);
/* Runs each call of the list (linked by next) after a grace period. NULL is ignored. */
void bm_reclaimer_defer(struct bm_reclaimer *rc, struct bm_deferred *list);
/* Frees everything pushed so far, runs the calls, and stops the thread. */
void bm_reclaimer_free(struct bm_reclaimer *rc);
/* Runs the calls of a list at once (no reader can remain). */
void bm_deferred_run_now(struct bm_deferred *list);
void bm_batch_free_now(struct bm_batch *b);

/* ---- journal.c: how to take back region changes made inside a savepoint ---- */

/* Where a region sat and how it showed: enough to put it back. */
struct bm_placement {
	bm_region *r;
	bm_region *parent;
	uint64_t offset, last, seq, alias_offset;
	int priority;
	bool enabled, exclusive;
};

/* How to take back one change of a region: its placement before the change and, for a
 * destruction, what else the destruction undid. */
struct bm_undo {
	struct bm_placement was;
	struct bm_placement *kids; /* destruction: the subregions it left parentless */
	size_t nkids;
	struct bm_link *next; /* destruction: its place in the system's list; NULL otherwise */
	size_t doomed_before; /* destruction: the doomed list's length before it */
};

struct bm_journal {
	struct bm_undo *v; /* the records of every open savepoint, oldest first */
	size_t n, cap;
	unsigned open; /* savepoints open */
	bool undoing;  /* a rollback is running: marking dirty windows must not allocate */
};

/* While a savepoint is open, makes room for one more record, so that recording the change
 * the caller is about to make cannot fail: -ENOMEM before anything changed. Otherwise 0. */
int bm_journal_reserve(bm_system *sys);
/* Records how to take back the change just made, if a savepoint is open (the room was
 * reserved). Returns whether it did: the journal then owns u->kids. */
bool bm_journal_note(bm_system *sys, const struct bm_undo *u);
void bm_journal_release(struct bm_journal *j);

/* ---- system.c ---- */

struct bm_system {
	pthread_mutex_t lock;     /* recursive: nested transactions and callbacks re-enter */
	_Atomic uintptr_t owner;  /* token of the thread holding the lock, 0 if none */
	unsigned depth;           /* open transactions of the owner */
	unsigned published_depth; /* see bm_published_depth (journal.h) */
	bool notifying;           /* listeners or conflict callbacks are running */
	uint64_t seq;             /* stamps adds and moves: newest wins among equal priorities */
	uint64_t next_id;         /* numbers regions in creation order, for stable output order */
	uint64_t generation;      /* of the newest view published in any space */
	struct bm_link regions;
	struct bm_link spaces;
	struct bm_batch *doomed; /* destroyed regions and the like, freed after the next
	                          * publication's grace period; allocated on demand */
	struct bm_reclaimer *reclaimer;
	struct bm_deferred *deferred; /* bm_defer inside a transaction: after its publication */
	struct bm_journal journal; /* undo records while a savepoint is open */
	struct bm_scratch *scratch; /* commit.c; allocated by the first publication */
	atomic_uint vcpus;
	unsigned pci_hosts; /* live bm_pci_host objects; changed under the writer lock */
	enum bm_rcu_flavour flavour;
	/* Only its address matters: the sanitizer's stand-in for "a grace period ended" (see
	 * rcu.h). It must not share an address with a mutex, whose unlock would overwrite it. */
	char rcu_token;
};

/* Opens a change (bm_begin with the misuse checks every mutator shares). */
int bm_change_begin(bm_system *sys);
/* Closes it, publishing if outermost; passes err through when nonzero. */
int bm_change_end(bm_system *sys, int err);
/* bm_change_end for a change that undo(arg) can take back: called when the change was the
 * outermost one and its publication failed. */
int bm_change_end_undo(bm_system *sys, int err, void (*undo)(void *arg), void *arg);
/* bm_change_end for a call that changes no region (adding or removing a listener or a
 * conflict callback): it returns err alone, because a publication of earlier changes that
 * fails is not this call's failure (their windows stay dirty for the next commit). */
int bm_change_end_no_regions(bm_system *sys, int err);
/* Whether the calling thread holds the writer lock (a listener does, without being able
 * to open a transaction). */
bool bm_system_owned(bm_system *sys);
/* Whether a publication would do anything: a dirty window, or destroyed regions to hand to
 * the reclaimer. Lets a commit that changed nothing skip it. */
bool bm_publish_due(const bm_system *sys);
/* Makes room for n more pointers in sys->doomed, so that adding them cannot fail. */
int bm_doomed_reserve(bm_system *sys, size_t n);

/* ---- region.c ---- */

struct bm_region {
	bm_system *sys;
	enum bm_region_kind kind;
	uint64_t id;
	char *name;
	uint64_t last; /* size - 1 */
	uint64_t offset;
	int priority;
	bool enabled;
	bool exclusive;
	uint64_t seq;
	bm_region *parent;
	struct bm_itree_node node; /* in parent->children: [offset, offset + last] */
	struct bm_itree children;
	struct bm_region_ops ops; /* valid/impl sizes normalised to nonzero masks */
	void *opaque;
	uint8_t *host;
	bm_region *target;
	uint64_t alias_offset;
	unsigned alias_refs;       /* aliases targeting this region */
	struct bm_link aliases;    /* ... the list of them */
	struct bm_link alias_link; /* an alias: in target->aliases */
	bm_space *space;           /* set on a space's root */
	struct bm_link link;       /* in sys->regions */
};

static inline bm_region *bm_region_of_node(struct bm_itree_node *n)
{
	return BM_CONTAINER_OF(n, bm_region, node);
}

bool bm_region_is_leaf(const bm_region *r);
void bm_region_free_now(bm_region *r);
/* Takes back the change u describes (a rollback, newest change first). Allocates nothing. */
void bm_undo_apply(const struct bm_undo *u);

/* ---- space.c ---- */

/* What vCPUs read: one immutable version of a space's flat view. */
struct bm_view {
	uint64_t generation;
	struct bm_index *index;
};

struct bm_conflict_sink {
	struct bm_conflict_ops ops;
	void *arg;
};

/* Addresses [start, last] of a space, inclusive like every range here: a window can end
 * at 2^64 - 1. */
struct bm_window {
	uint64_t start, last;
};

struct bm_conflict_set {
	struct bm_conflict *v;
	size_t n, cap;
};

struct bm_space {
	bm_system *sys;
	char *name;
	bm_region *root;
	struct bm_view *view;          /* RCU-published */
	struct bm_conflict_sink *sink; /* RCU-published; NULL when none */
	struct bm_window *dirty;
	size_t ndirty, dirty_cap;
	bool dirty_all;
	struct bm_conflict_set conflicts;
	struct bm_diff *diff_spare; /* the last commit's difference arrays, for the next one */
	struct bm_link listeners;
	struct bm_link link; /* in sys->spaces */
};

/* Records that whatever r shows (in every space that can see it) must be re-rendered. */
void bm_mark_region(bm_region *r);
void bm_mark_window(bm_space *space, uint64_t start, uint64_t last);
void bm_mark_all(bm_system *sys);

/* ---- render.c ---- */

/* A visible piece of a terminal region, in absolute addresses. */
struct bm_piece {
	uint64_t start, last;
	bm_region *leaf;
	uint64_t leaf_offset; /* of start */
	bm_region *excl;      /* the exclusive region this piece belongs to, if any */
	int prio;             /* rank among the siblings being resolved */
	uint64_t seq;
};

struct bm_pieces {
	struct bm_piece *v;
	size_t n, cap;
};

void bm_pieces_release(struct bm_pieces *p);

/* Containers nested this deep render into vectors kept between renders. */
#define BM_RENDER_KEPT_LEVELS 8

/* Renders [a, b] of space: pieces (sorted, disjoint) and conflicts (sorted by start). levels
 * (BM_RENDER_KEPT_LEVELS of them, or NULL) lend their storage to the containers' sweeps and
 * get it back, emptied. */
int bm_render_window(bm_space *space, uint64_t a, uint64_t b, struct bm_pieces *out,
                     struct bm_conflict_set *conflicts, struct bm_pieces *levels);

/* ---- commit.c: what a publication keeps for the next one ---- */

struct space_commit;

/* Working storage of publications, kept between them so that a commit of one small change
 * allocates little beyond what the new view holds. The writer's only. */
struct bm_scratch {
	struct space_commit *sc;
	size_t sc_cap;
	struct bm_pieces pieces;
	struct bm_pieces levels[BM_RENDER_KEPT_LEVELS];
	struct bm_range **ranges; /* a window's new flat ranges, before the index takes them */
	size_t ranges_cap;
	struct bm_index_scratch index;
};

void bm_scratch_release(struct bm_scratch *s);

/* ---- conflict.c ---- */

int bm_conflict_push(struct bm_conflict_set *set, const struct bm_conflict *c);
/* Joins records of one pair that touch, and sorts by address. */
int bm_conflict_normalize(struct bm_conflict_set *set);
void bm_conflict_set_release(struct bm_conflict_set *set);
/* Replaces the conflicts of set inside [a, b] with fresh ones (sorted). */
int bm_conflict_replace(struct bm_conflict_set *set, uint64_t a, uint64_t b,
                        const struct bm_conflict_set *fresh);
/* Calls on_change for conflicts in old but not in now (removed) and in now but not old. */
void bm_conflict_notify(bm_space *space, const struct bm_conflict_set *old,
                        const struct bm_conflict_set *now);
int bm_conflict_set_copy(struct bm_conflict_set *dst, const struct bm_conflict_set *src);

/* ---- listener.c ---- */

struct bm_listener {
	bm_space *space;
	bm_listener_fn fn;
	void *arg;
	struct bm_link link;
};

/* The difference one commit made, gathered window by window. */
struct bm_diff {
	struct bm_flat_range *removed, *added;
	size_t nremoved, nadded, capremoved, capadded;
};

int bm_diff_push(struct bm_diff *d, bool added, const struct bm_range *r);
void bm_diff_release(struct bm_diff *d);
void bm_listeners_notify(bm_space *space, const struct bm_diff *d);

/* ---- commit.c ---- */

/* Renders the dirty windows of every space and publishes the new views. */
int bm_publish(bm_system *sys);
void bm_view_free(struct bm_view *v);
int bm_view_new_empty(struct bm_view **out);

/* ---- access.c ---- */

/* Carries out the part [addr, addr + len) of an access that lies inside range r. */
int bm_access_read(bm_vcpu *vcpu, const struct bm_range *r, uint64_t addr, unsigned len,
                   uint8_t *bytes);
int bm_access_write(bm_vcpu *vcpu, const struct bm_range *r, uint64_t addr, unsigned len,
                    const uint8_t *bytes);
/* What a NULL read or write callback means: all ones, and dropped. */
int bm_read_ones(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value);
int bm_write_drop(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value);
/* Little-endian packing of n bytes. */
uint64_t bm_bytes_to_value(const uint8_t *b, unsigned n);
void bm_value_to_bytes(uint64_t v, uint8_t *b, unsigned n);

#endif
