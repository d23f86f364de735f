/* SPDX-License-Identifier: BSD-2-Clause */
/* The system: writer lock, transactions and teardown. */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Identifies the calling thread cheaply and portably (pthread_t need not be an integer),
 * so that "does this thread hold the writer lock" can be asked without taking it.
 */
static _Thread_local char bm_thread_token;

void bm_list_init(struct bm_link *head)
{
	head->prev = head->next = head;
}

void bm_list_add_tail(struct bm_link *head, struct bm_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

void bm_list_del(struct bm_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

int bm_grow(void *v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *nv = realloc(*(void **)v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*(void **)v = nv;
	*cap = ncap;
	return 0;
}

/* Below this many elements (and up to this size), insertion sort. */
#define SORT_SMALL      8
#define SORT_SMALL_ELEM 64

void bm_sort(void *base, size_t n, size_t elem, int (*cmp)(const void *, const void *))
{
	if (n > SORT_SMALL || elem > SORT_SMALL_ELEM) {
		qsort(base, n, elem, cmp);
		return;
	}
	char *v = base, tmp[SORT_SMALL_ELEM];
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		if (cmp(v + (j - 1) * elem, v + i * elem) <= 0)
			continue;
		memcpy(tmp, v + i * elem, elem);
		while (j > 0 && cmp(v + (j - 1) * elem, tmp) > 0) {
			memcpy(v + j * elem, v + (j - 1) * elem, elem);
			j--;
		}
		memcpy(v + j * elem, tmp, elem);
	}
}

static uintptr_t self_token(void)
{
	return (uintptr_t)&bm_thread_token;
}

bool bm_system_owned(bm_system *sys)
{
	return atomic_load_explicit(&sys->owner, memory_order_relaxed) == self_token();
}

int bm_system_new(bm_system **out)
{
	return bm_system_new_flavour(BM_RCU_MEMB, out);
}

int bm_system_new_flavour(enum bm_rcu_flavour flavour, bm_system **out)
{
	if (!out || (flavour != BM_RCU_MEMB && flavour != BM_RCU_QSBR))
		return -EINVAL;
	bm_system *sys = calloc(1, sizeof(*sys));
	if (!sys)
		return -ENOMEM;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	int err = pthread_mutex_init(&sys->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (err) {
		free(sys);
		return -err;
	}
	sys->flavour = flavour;
	err = bm_reclaimer_new(flavour == BM_RCU_QSBR, &sys->rcu_token, &sys->reclaimer);
	if (err) {
		pthread_mutex_destroy(&sys->lock);
		free(sys);
		return err;
	}
	bm_list_init(&sys->regions);
	bm_list_init(&sys->spaces);
	*out = sys;
	return 0;
}

int bm_change_begin(bm_system *sys)
{
	if (!sys)
		return -EINVAL;
	pthread_mutex_lock(&sys->lock);
	if (sys->notifying) {
		/* Only the notifying thread can get here: it holds the lock. */
		pthread_mutex_unlock(&sys->lock);
		return -EDEADLK;
	}
	atomic_store_explicit(&sys->owner, self_token(), memory_order_relaxed);
	sys->depth++;
	return 0;
}

bool bm_publish_due(const bm_system *sys)
{
	if (sys->doomed)
		return true;
	for (const struct bm_link *l = sys->spaces.next; l != &sys->spaces; l = l->next) {
		const bm_space *s = BM_CONTAINER_OF(l, bm_space, link);
		if (s->dirty_all || s->ndirty)
			return true;
	}
	return false;
}

int bm_change_end_undo(bm_system *sys, int err, void (*undo)(void *arg), void *arg)
{
	int perr = 0;
	if (--sys->depth == 0) {
		perr = bm_publish_due(sys) ? bm_publish(sys) : 0;
		/* The change was the whole call: take it back, so that the call fails with
		 * everything as it found it. */
		if (perr && !err && undo)
			undo(arg);
		/* A failed publication leaves the old view out, and what it reaches alive. */
		if (!perr) {
			bm_reclaimer_defer(sys->reclaimer, sys->deferred);
			sys->deferred = NULL;
		}
		atomic_store_explicit(&sys->owner, 0, memory_order_relaxed);
	}
	pthread_mutex_unlock(&sys->lock);
	return err ? err : perr;
}

int bm_change_end(bm_system *sys, int err)
{
	return bm_change_end_undo(sys, err, NULL, NULL);
}

int bm_change_end_no_regions(bm_system *sys, int err)
{
	int perr = bm_change_end_undo(sys, 0, NULL, NULL);
	(void)perr; /* not this call's failure: the windows stay dirty for the next commit */
	return err;
}

int bm_doomed_reserve(bm_system *sys, size_t n)
{
	if (!sys->doomed) {
		sys->doomed = calloc(1, sizeof(*sys->doomed));
		if (!sys->doomed)
			return -ENOMEM;
	}
	return bm_garbage_reserve(&sys->doomed->bag, n);
}

int bm_begin(bm_system *sys)
{
	return bm_change_begin(sys);
}

int bm_commit(bm_system *sys)
{
	if (!sys)
		return -EINVAL;
	if (!bm_system_owned(sys) || sys->depth == 0)
		return -EPERM;
	return bm_change_end(sys, 0);
}

int bm_synchronize(bm_system *sys)
{
	if (!sys)
		return -EINVAL;
	if (bm_rcu_reading() || bm_system_owned(sys))
		return -EDEADLK;
	bm_rcu_synchronize(sys->flavour == BM_RCU_QSBR, &sys->rcu_token);
	return 0;
}

int bm_system_free(bm_system *sys)
{
	if (!sys)
		return 0;
	/* A host owns regions of this system and functions that point into them: freeing the
	 * regions under it would leave the host dangling, and its functions leaked. */
	if (atomic_load(&sys->vcpus) != 0 || sys->pci_hosts != 0 || bm_system_owned(sys))
		return -EBUSY;
	/* No reader remains (no vCPU context), so everything can go at once, aliases and what
	 * they show included. */
	for (struct bm_link *l = sys->regions.next; l != &sys->regions; l = l->next)
		BM_CONTAINER_OF(l, bm_region, link)->alias_refs = 0;
	for (struct bm_link *l = sys->spaces.next; l != &sys->spaces; l = l->next)
		BM_CONTAINER_OF(l, bm_space, link)->root->alias_refs = 0;
	while (sys->spaces.next != &sys->spaces) {
		bm_space *s = BM_CONTAINER_OF(sys->spaces.next, bm_space, link);
		bm_space_free(s);
	}
	while (sys->regions.next != &sys->regions) {
		bm_region *r = BM_CONTAINER_OF(sys->regions.next, bm_region, link);
		bm_list_del(&r->link);
		bm_region_free_now(r);
	}
	bm_reclaimer_free(sys->reclaimer);
	bm_deferred_run_now(sys->deferred);
	bm_batch_free_now(sys->doomed);
	bm_journal_release(&sys->journal);
	if (sys->scratch)
		bm_scratch_release(sys->scratch);
	free(sys->scratch);
	pthread_mutex_destroy(&sys->lock);
	free(sys);
	return 0;
}
