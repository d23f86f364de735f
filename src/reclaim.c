/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Freeing after a grace period.
 *
 * Writers retire old views, index nodes and destroyed regions while vCPUs may still be
 * reading them. liburcu's call_rcu wants its callers registered as readers, and a writer
 * can be any thread; a writer also must never wait for a grace period itself, because a
 * reader may be blocked on the writer lock from inside a region callback. So each system
 * has one thread that takes batches of garbage, waits for a grace period, and frees them.
 *
 * Grace periods are not free for the readers: with memb each one interrupts every CPU that
 * runs a thread of the process (membarrier), so a writer changing the map in a loop would
 * interrupt the vCPUs thousands of times a second if the thread ran them back to back.
 * It therefore lets at least BM_RECLAIM_SPACING_NS pass between two grace periods and
 * frees everything that arrived meanwhile after the next one. Garbage waits at most that
 * long more, unless BM_RECLAIM_BACKLOG batches pile up first, which ends the wait.
 */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define BM_RECLAIM_SPACING_NS 1000000L /* 1 ms */
#define BM_RECLAIM_BACKLOG    1024

struct bm_reclaimer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct bm_batch *head;
	struct bm_deferred *calls; /* the callers' objects, bm_defer */
	unsigned pending;          /* batches in head, lists in calls */
	bool stop;
	const void *token; /* the system, for the sanitizer's view of grace periods */
	bool qsbr;
};

void bm_batch_free_now(struct bm_batch *b)
{
	if (!b)
		return;
	bm_garbage_free_all(&b->bag);
	bm_garbage_release(&b->bag);
	free(b->view);
	free(b);
}

static void free_batches(struct bm_batch *b)
{
	while (b) {
		struct bm_batch *next = b->next;
		bm_batch_free_now(b);
		b = next;
	}
}

static void run_calls(struct bm_deferred *d)
{
	while (d) {
		struct bm_deferred *next = d->next;
		d->fn(d);
		d = next;
	}
}

static struct timespec deadline_after(struct timespec t, long ns)
{
	t.tv_nsec += ns;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Called with mu held: lets the spacing since the last grace period pass, unless the
 * system is going away or the backlog is full. */
static void space_out(struct bm_reclaimer *rc, struct timespec last)
{
	struct timespec until = deadline_after(last, BM_RECLAIM_SPACING_NS);
	while (!rc->stop && rc->pending < BM_RECLAIM_BACKLOG)
		if (pthread_cond_timedwait(&rc->cv, &rc->mu, &until) == ETIMEDOUT)
			break;
}

static void *reclaim_main(void *arg)
{
	struct bm_reclaimer *rc = arg;
	struct timespec last = {0, 0};
	pthread_mutex_lock(&rc->mu);
	for (;;) {
		while (!rc->head && !rc->calls && !rc->stop)
			pthread_cond_wait(&rc->cv, &rc->mu);
		space_out(rc, last);
		struct bm_batch *work = rc->head;
		struct bm_deferred *calls = rc->calls;
		bool stop = rc->stop;
		rc->head = NULL;
		rc->calls = NULL;
		rc->pending = 0;
		pthread_mutex_unlock(&rc->mu);
		if (work || calls) {
			bm_rcu_synchronize(rc->qsbr, rc->token);
			clock_gettime(CLOCK_MONOTONIC, &last);
			free_batches(work);
			run_calls(calls);
		}
		pthread_mutex_lock(&rc->mu);
		if (stop && !rc->head && !rc->calls)
			break;
	}
	pthread_mutex_unlock(&rc->mu);
	return NULL;
}

int bm_reclaimer_new(bool qsbr, const void *token, struct bm_reclaimer **out)
{
	struct bm_reclaimer *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->token = token;
	rc->qsbr = qsbr;
	pthread_mutex_init(&rc->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rc->cv, &ca);
	pthread_condattr_destroy(&ca);
	int err = pthread_create(&rc->thread, NULL, reclaim_main, rc);
	if (err) {
		pthread_cond_destroy(&rc->cv);
		pthread_mutex_destroy(&rc->mu);
		free(rc);
		return -err;
	}
	*out = rc;
	return 0;
}

/* Called with mu held, for each batch or list of calls handed over. The thread sleeps
 * either for work or for the spacing; only the first one and a full backlog wake it. */
static void pending_one_more(struct bm_reclaimer *rc)
{
	if (rc->pending++ == 0 || rc->pending >= BM_RECLAIM_BACKLOG)
		pthread_cond_signal(&rc->cv);
}

void bm_reclaimer_push(struct bm_reclaimer *rc, struct bm_batch *b)
{
	if (!b)
		return;
	if (b->bag.n == 0 && !b->view) {
		bm_batch_free_now(b);
		return;
	}
	pthread_mutex_lock(&rc->mu);
	b->next = rc->head;
	rc->head = b;
	pending_one_more(rc);
	pthread_mutex_unlock(&rc->mu);
}

void bm_reclaimer_defer(struct bm_reclaimer *rc, struct bm_deferred *list)
{
	if (!list)
		return;
	struct bm_deferred *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&rc->mu);
	last->next = rc->calls;
	rc->calls = list;
	pending_one_more(rc);
	pthread_mutex_unlock(&rc->mu);
}

int bm_defer(bm_system *sys, struct bm_deferred *d, void (*fn)(struct bm_deferred *d))
{
	if (!sys || !d || !fn)
		return -EINVAL;
	d->fn = fn;
	/* Inside the caller's transaction the object may still be reachable from the view that
	 * is published now and replaced only by the commit: it waits for that commit. */
	if (bm_system_owned(sys) && sys->depth > 0) {
		d->next = sys->deferred;
		sys->deferred = d;
		return 0;
	}
	d->next = NULL;
	bm_reclaimer_defer(sys->reclaimer, d);
	return 0;
}

void bm_deferred_run_now(struct bm_deferred *list)
{
	run_calls(list);
}

void bm_reclaimer_free(struct bm_reclaimer *rc)
{
	if (!rc)
		return;
	pthread_mutex_lock(&rc->mu);
	rc->stop = true;
	pthread_cond_signal(&rc->cv);
	pthread_mutex_unlock(&rc->mu);
	pthread_join(rc->thread, NULL);
	pthread_cond_destroy(&rc->cv);
	pthread_mutex_destroy(&rc->mu);
	free(rc);
}
