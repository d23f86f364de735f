/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Regions and their tree. Every change goes through the region's handle, marks what it
 * shows as dirty before and after, and publishes through the system's transaction.
 *
 * Every change can be taken back, with the same undo record: a change made outside a
 * transaction whose publication fails puts itself back at once; a change made while a
 * savepoint is open reserves its place in the journal first (the one allocation it may
 * make, before anything changes) and leaves the record there for a rollback.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool size_ok(uint64_t size)
{
	return size != 0;
}

/* BM_SIZE_ALL means 2^64 bytes, whose last byte is UINT64_MAX, like UINT64_MAX - 1 + 1. */
static uint64_t size_to_last(uint64_t size)
{
	return size == BM_SIZE_ALL ? UINT64_MAX : size - 1;
}

static unsigned norm_sizes(unsigned mask, unsigned dflt)
{
	mask &= BM_ACCESS_ALL;
	return mask ? mask : dflt;
}

static int region_new(bm_system *sys, enum bm_region_kind kind, const char *name, uint64_t size,
                      bm_region **out)
{
	if (!sys || !out || !size_ok(size))
		return -EINVAL;
	bm_region *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->name = strdup(name ? name : "");
	if (!r->name) {
		free(r);
		return -ENOMEM;
	}
	r->sys = sys;
	r->kind = kind;
	r->last = size_to_last(size);
	r->enabled = true;
	r->ops.valid_sizes = BM_ACCESS_ALL;
	r->ops.impl_sizes = BM_ACCESS_ALL;
	bm_itree_init(&r->children);
	bm_list_init(&r->aliases);
	pthread_mutex_lock(&sys->lock);
	r->id = ++sys->next_id;
	bm_list_add_tail(&sys->regions, &r->link);
	pthread_mutex_unlock(&sys->lock);
	*out = r;
	return 0;
}

int bm_region_new_io(bm_system *sys, const char *name, uint64_t size,
                     const struct bm_region_ops *ops, void *opaque, bm_region **out)
{
	if (!ops)
		return -EINVAL;
	int err = region_new(sys, BM_REGION_IO, name, size, out);
	if (err)
		return err;
	bm_region *r = *out;
	r->ops = *ops;
	r->ops.valid_sizes = norm_sizes(ops->valid_sizes, BM_ACCESS_ALL);
	r->ops.impl_sizes = norm_sizes(ops->impl_sizes, r->ops.valid_sizes);
	r->opaque = opaque;
	return 0;
}

int bm_region_new_ram(bm_system *sys, const char *name, uint64_t size, void *host, bm_region **out)
{
	if (!host)
		return -EINVAL;
	int err = region_new(sys, BM_REGION_RAM, name, size, out);
	if (!err)
		(*out)->host = host;
	return err;
}

int bm_region_new_container(bm_system *sys, const char *name, uint64_t size, bm_region **out)
{
	return region_new(sys, BM_REGION_CONTAINER, name, size, out);
}

/* Does following target's alias chain (and its subregions) ever reach r? */
static bool reaches(const bm_region *from, const bm_region *r)
{
	if (from == r)
		return true;
	if (from->kind == BM_REGION_ALIAS && reaches(from->target, r))
		return true;
	for (struct bm_itree_node *n = bm_itree_first(&from->children); n; n = bm_itree_next(n))
		if (reaches(bm_region_of_node(n), r))
			return true;
	return false;
}

int bm_region_new_alias(bm_system *sys, const char *name, bm_region *target, uint64_t offset,
                        uint64_t size, bm_region **out)
{
	if (!target || (sys && target->sys != sys))
		return -EINVAL;
	int err = region_new(sys, BM_REGION_ALIAS, name, size, out);
	if (err)
		return err;
	bm_region *r = *out;
	r->target = target;
	r->alias_offset = offset;
	pthread_mutex_lock(&sys->lock);
	target->alias_refs++;
	bm_list_add_tail(&target->aliases, &r->alias_link);
	pthread_mutex_unlock(&sys->lock);
	return 0;
}

bool bm_region_is_leaf(const bm_region *r)
{
	return r->kind == BM_REGION_IO || r->kind == BM_REGION_RAM;
}

void bm_region_free_now(bm_region *r)
{
	free(r->name);
	free(r);
}

static bool fits(uint64_t offset, uint64_t last)
{
	return offset <= UINT64_MAX - last;
}

static void link_child(bm_region *parent, bm_region *child)
{
	child->parent = parent;
	child->seq = ++child->sys->seq;
	child->node.start = child->offset;
	child->node.last = child->offset + child->last;
	bm_itree_insert(&parent->children, &child->node);
}

static void unlink_child(bm_region *child)
{
	bm_itree_remove(&child->parent->children, &child->node);
	child->parent = NULL;
}

static struct bm_placement placement_of(bm_region *r)
{
	return (struct bm_placement){r,           r->parent,  r->offset,
	                             r->last,     r->seq,     r->alias_offset,
	                             r->priority, r->enabled, r->exclusive};
}

/* The record that takes back a change of r's placement (not a destruction). */
static struct bm_undo undo_of(bm_region *r)
{
	return (struct bm_undo){.was = placement_of(r)};
}

/* Puts r back where p says, with its old stamp, so that among equal priorities it ranks
 * exactly as it did. */
static void put_back(const struct bm_placement *p)
{
	bm_region *r = p->r;
	bm_mark_region(r);
	if (r->parent)
		unlink_child(r);
	r->offset = p->offset;
	r->last = p->last;
	r->alias_offset = p->alias_offset;
	r->priority = p->priority;
	r->enabled = p->enabled;
	r->exclusive = p->exclusive;
	if (p->parent)
		link_child(p->parent, r);
	r->seq = p->seq;
	bm_mark_region(r);
}

static void undo_destroy(const struct bm_undo *u);

void bm_undo_apply(const struct bm_undo *u)
{
	if (u->next)
		undo_destroy(u);
	else
		put_back(&u->was);
}

static void undo_change(void *arg)
{
	bm_undo_apply(arg);
}

/* Placing child under parent makes a cycle (through subregions or aliases) exactly when
 * child already reaches parent; rendering would then never end. */
static bool would_loop(const bm_region *parent, const bm_region *child)
{
	return reaches(child, parent);
}

int bm_region_add(bm_region *parent, bm_region *child, uint64_t offset, int priority)
{
	if (!parent || !child)
		return -EINVAL;
	if (parent->sys != child->sys)
		return -EXDEV;
	int err = bm_change_begin(parent->sys);
	if (err)
		return err;
	if (child->parent)
		err = -EEXIST;
	else if (child->space)
		err = -EINVAL; /* a space's root stays a root */
	else if (parent->kind != BM_REGION_CONTAINER)
		err = -ENOTDIR;
	else if (would_loop(parent, child))
		err = -ELOOP;
	else if (!fits(offset, child->last))
		err = -ERANGE;
	else
		err = bm_journal_reserve(parent->sys);
	struct bm_undo u = undo_of(child);
	if (!err) {
		child->offset = offset;
		child->priority = priority;
		link_child(parent, child);
		bm_mark_region(child);
		bm_journal_note(parent->sys, &u);
	}
	return bm_change_end_undo(parent->sys, err, undo_change, &u);
}

int bm_region_del(bm_region *r)
{
	if (!r)
		return -EINVAL;
	int err = bm_change_begin(r->sys);
	if (err)
		return err;
	struct bm_undo u = undo_of(r);
	err = r->parent ? bm_journal_reserve(r->sys) : -ENOENT;
	if (!err) {
		bm_mark_region(r);
		unlink_child(r);
		bm_journal_note(r->sys, &u);
	}
	return bm_change_end_undo(r->sys, err, undo_change, &u);
}

/* Re-inserts r with new bounds or a new stamp; what it showed before and after is dirty. */
static void replace_in_parent(bm_region *r, uint64_t offset, uint64_t last, bool restamp)
{
	bm_mark_region(r);
	if (r->parent) {
		bm_region *parent = r->parent;
		uint64_t seq = r->seq;
		unlink_child(r);
		r->offset = offset;
		r->last = last;
		link_child(parent, r);
		if (!restamp)
			r->seq = seq;
	} else {
		r->offset = offset;
		r->last = last;
	}
	bm_mark_region(r);
}

int bm_region_move(bm_region *r, uint64_t offset)
{
	if (!r)
		return -EINVAL;
	int err = bm_change_begin(r->sys);
	if (err)
		return err;
	struct bm_undo u = undo_of(r);
	if (!r->parent)
		err = -ENOENT;
	else if (!fits(offset, r->last))
		err = -ERANGE;
	else
		err = bm_journal_reserve(r->sys);
	if (!err) {
		replace_in_parent(r, offset, r->last, true);
		bm_journal_note(r->sys, &u);
	}
	return bm_change_end_undo(r->sys, err, undo_change, &u);
}

int bm_region_resize(bm_region *r, uint64_t size)
{
	if (!r || !size_ok(size))
		return -EINVAL;
	int err = bm_change_begin(r->sys);
	if (err)
		return err;
	uint64_t last = size_to_last(size);
	struct bm_undo u = undo_of(r);
	if (r->space)
		err = -EINVAL; /* a space's root always covers 2^64 */
	else if (r->parent && !fits(r->offset, last))
		err = -ERANGE;
	else
		err = bm_journal_reserve(r->sys);
	if (!err) {
		replace_in_parent(r, r->offset, last, false);
		bm_journal_note(r->sys, &u);
	}
	return bm_change_end_undo(r->sys, err, undo_change, &u);
}

/* Changes a property that only affects what r shows, not where it sits. */
static int set_prop(bm_region *r, void (*apply)(bm_region *r, intptr_t v), intptr_t v)
{
	if (!r)
		return -EINVAL;
	int err = bm_change_begin(r->sys);
	if (err)
		return err;
	struct bm_undo u = undo_of(r);
	err = bm_journal_reserve(r->sys);
	if (!err) {
		bm_mark_region(r);
		apply(r, v);
		bm_mark_region(r);
		bm_journal_note(r->sys, &u);
	}
	return bm_change_end_undo(r->sys, err, undo_change, &u);
}

static void apply_enabled(bm_region *r, intptr_t v)
{
	r->enabled = v != 0;
}

static void apply_priority(bm_region *r, intptr_t v)
{
	r->priority = (int)v;
}

static void apply_exclusive(bm_region *r, intptr_t v)
{
	r->exclusive = v != 0;
}

int bm_region_set_enabled(bm_region *r, bool enabled)
{
	return set_prop(r, apply_enabled, enabled);
}

int bm_region_set_priority(bm_region *r, int priority)
{
	return set_prop(r, apply_priority, priority);
}

int bm_region_set_exclusive(bm_region *r, bool exclusive)
{
	return set_prop(r, apply_exclusive, exclusive);
}

int bm_region_set_alias_offset(bm_region *r, uint64_t offset)
{
	if (!r)
		return -EINVAL;
	if (r->kind != BM_REGION_ALIAS)
		return -EINVAL;
	int err = bm_change_begin(r->sys);
	if (err)
		return err;
	struct bm_undo u = undo_of(r);
	err = bm_journal_reserve(r->sys);
	if (!err) {
		bm_mark_region(r);
		r->alias_offset = offset;
		bm_mark_region(r);
		bm_journal_note(r->sys, &u);
	}
	return bm_change_end_undo(r->sys, err, undo_change, &u);
}

/* What destroying r undoes (its placement, its subregions', its place in the system's
 * list and in the doomed list), to redo it if the destruction is taken back. */
static int unmade_prepare(bm_region *r, struct bm_undo *u)
{
	size_t n = 0;
	for (struct bm_itree_node *c = bm_itree_first(&r->children); c; c = bm_itree_next(c))
		n++;
	u->kids = n ? calloc(n, sizeof(*u->kids)) : NULL;
	if (n && !u->kids)
		return -ENOMEM;
	for (struct bm_itree_node *c = bm_itree_first(&r->children); c; c = bm_itree_next(c))
		u->kids[u->nkids++] = placement_of(bm_region_of_node(c));
	u->was = placement_of(r);
	u->next = r->link.next;
	u->doomed_before = r->sys->doomed->bag.n;
	return 0;
}

static void undo_destroy(const struct bm_undo *u)
{
	bm_region *r = u->was.r;
	r->sys->doomed->bag.n = u->doomed_before;
	bm_list_add_tail(u->next, &r->link);
	if (r->kind == BM_REGION_ALIAS) {
		r->target->alias_refs++;
		bm_list_add_tail(&r->target->aliases, &r->alias_link);
	}
	for (size_t i = 0; i < u->nkids; i++)
		put_back(&u->kids[i]);
	put_back(&u->was);
}

static void detach_children(bm_region *r)
{
	struct bm_itree_node *n;
	while ((n = bm_itree_first(&r->children)) != NULL)
		unlink_child(bm_region_of_node(n));
}

int bm_region_destroy(bm_region *r)
{
	if (!r)
		return 0;
	bm_system *sys = r->sys;
	int err = bm_change_begin(sys);
	if (err)
		return err;
	struct bm_undo u = {0};
	if (r->alias_refs)
		err = -EBUSY;
	else if (r->space)
		err = -EBUSY; /* freed with its space */
	else
		err = bm_doomed_reserve(sys, 2);
	if (!err)
		err = bm_journal_reserve(sys);
	if (!err)
		err = unmade_prepare(r, &u);
	if (!err) {
		bm_mark_region(r);
		if (r->parent)
			unlink_child(r);
		detach_children(r);
		if (r->kind == BM_REGION_ALIAS) {
			r->target->alias_refs--;
			bm_list_del(&r->alias_link);
		}
		bm_list_del(&r->link);
		/* Readers may still hold it through the published view, and dumps of that view
		 * still name it: free both after the next publication's grace period. */
		bm_garbage_add(&sys->doomed->bag, r->name);
		bm_garbage_add(&sys->doomed->bag, r);
		if (bm_journal_note(sys, &u))
			u.kids = NULL; /* the journal's now */
	}
	err = bm_change_end_undo(sys, err, undo_change, &u);
	free(u.kids);
	return err;
}

const char *bm_region_name(const bm_region *r)
{
	return r ? r->name : NULL;
}

enum bm_region_kind bm_region_kind(const bm_region *r)
{
	return r ? r->kind : BM_REGION_CONTAINER;
}

uint64_t bm_region_size(const bm_region *r)
{
	if (!r)
		return 0;
	return r->last == UINT64_MAX ? BM_SIZE_ALL : r->last + 1;
}

uint64_t bm_region_offset(const bm_region *r)
{
	return r ? r->offset : 0;
}

int bm_region_priority(const bm_region *r)
{
	return r ? r->priority : 0;
}

bool bm_region_enabled(const bm_region *r)
{
	return r && r->enabled;
}

bool bm_region_exclusive(const bm_region *r)
{
	return r && r->exclusive;
}

bm_region *bm_region_parent(const bm_region *r)
{
	return r ? r->parent : NULL;
}

void *bm_region_opaque(const bm_region *r)
{
	return r ? r->opaque : NULL;
}

uint64_t bm_region_stamp(const bm_region *r)
{
	return r->seq;
}
