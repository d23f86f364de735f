/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The journal: undo records of the region changes made while a savepoint is open, and the
 * savepoints themselves (see journal.h).
 *
 * A record is reserved before its change and written after it, so a change inside a
 * savepoint either fails with nothing changed or can be taken back. Rolling back applies
 * the records newest first: each puts its region back exactly where and how it was, old
 * stamp included, so the order "newest wins among equal priorities" is the one before the
 * savepoint. Taking a change back marks its windows dirty like any change, but without
 * allocating: a full dirty list falls back to re-rendering the whole space.
 *
 * Only one list exists per system: nested savepoints are marks in it, and releasing an
 * inner one leaves its records to the outer one.
 */
#include "journal.h"
#include "internal.h"
#include <errno.h>
#include <stdlib.h>

/* A journal that grew past this many records is freed when the last savepoint closes, so a
 * rare large change does not keep its memory; a smaller one is kept for the next. */
#define JOURNAL_KEEP 64

int bm_journal_reserve(bm_system *sys)
{
	struct bm_journal *j = &sys->journal;
	if (!j->open)
		return 0;
	return bm_grow(&j->v, &j->cap, j->n, sizeof(*j->v));
}

bool bm_journal_note(bm_system *sys, const struct bm_undo *u)
{
	struct bm_journal *j = &sys->journal;
	if (!j->open)
		return false;
	j->v[j->n++] = *u; /* bm_journal_reserve made room */
	return true;
}

void bm_journal_release(struct bm_journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i].kids);
	free(j->v);
	*j = (struct bm_journal){0};
}

/* Drops the records past mark, keeping their changes. */
static void forget(struct bm_journal *j, size_t mark)
{
	for (; j->n > mark; j->n--)
		if (j->v[j->n - 1].kids)
			free(j->v[j->n - 1].kids);
}

static void close_savepoint(struct bm_journal *j)
{
	if (--j->open > 0)
		return;
	forget(j, 0);
	if (j->cap > JOURNAL_KEEP)
		bm_journal_release(j);
}

int bm_savepoint_open(bm_system *sys, struct bm_savepoint *sp)
{
	if (!sys || !sp)
		return -EINVAL;
	if (!bm_system_owned(sys) || sys->depth == 0)
		return -EPERM;
	*sp = (struct bm_savepoint){.mark = sys->journal.n, .seq = sys->seq};
	sys->journal.open++;
	return 0;
}

bool bm_savepoint_changed(const bm_system *sys, const struct bm_savepoint *sp)
{
	return sys->journal.n > sp->mark;
}

void bm_savepoint_release(bm_system *sys, const struct bm_savepoint *sp)
{
	(void)sp; /* an outer savepoint takes the records over as they are */
	close_savepoint(&sys->journal);
}

void bm_savepoint_rollback(bm_system *sys, const struct bm_savepoint *sp)
{
	struct bm_journal *j = &sys->journal;
	j->undoing = true;
	while (j->n > sp->mark) {
		struct bm_undo *u = &j->v[--j->n];
		bm_undo_apply(u);
		free(u->kids);
	}
	j->undoing = false;
	/* Every stamp handed out since was taken back with its change. */
	sys->seq = sp->seq;
	close_savepoint(j);
}

int bm_publish_held(bm_system *sys, unsigned levels)
{
	if (!bm_system_owned(sys) || sys->depth == 0)
		return -EPERM;
	return sys->depth <= levels && bm_publish_due(sys) ? bm_publish(sys) : 0;
}

unsigned bm_transaction_depth(const bm_system *sys)
{
	return sys->depth;
}

unsigned bm_published_depth(const bm_system *sys)
{
	return sys->published_depth;
}

void bm_set_published_depth(bm_system *sys, unsigned levels)
{
	sys->published_depth = levels;
}
