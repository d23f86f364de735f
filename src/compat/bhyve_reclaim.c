/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Freeing removed registrations.
 *
 * A registration is the opaque of its region, and a dispatch that found the region just
 * before it was removed may still be calling its handler. So removed registrations wait for
 * a grace period. The thread that removes one may be inside a dispatch itself (a BAR moved
 * by a configuration write), where waiting would wait for itself; so the instance has a
 * thread of its own, started on first use, that takes them in batches, waits with
 * bm_synchronize and frees them. Registrations whose removal could not be published wait
 * for the instance's end instead.
 *
 * Removals are rare but come in bursts (a guest sizing or moving its BARs), so the thread
 * gathers for a moment before it waits for a grace period: one wait then frees a burst,
 * rather than each removal costing the vCPUs a grace period of their own.
 */
#include "bhyve_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define GATHER_NS 1000000L

static void regs_free(struct bm_bhyve_reg *r)
{
	for (struct bm_bhyve_reg *next; r; r = next) {
		next = r->next;
		free(r);
	}
}

/* Waits GATHER_NS, or until told to stop; the caller holds the lock. */
static void gather(struct bm_bhyve_reclaim *rc)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += GATHER_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!rc->stop && pthread_cond_timedwait(&rc->wake, &rc->lock, &until) != ETIMEDOUT)
		continue;
}

static void *reclaim_main(void *arg)
{
	struct bm_bhyve_reclaim *rc = arg;
	pthread_mutex_lock(&rc->lock);
	for (;;) {
		while (!rc->pending && !rc->stop)
			pthread_cond_wait(&rc->wake, &rc->lock);
		gather(rc);
		struct bm_bhyve_reg *batch = rc->pending;
		rc->pending = NULL;
		if (!batch)
			break; /* stopping, nothing left */
		pthread_mutex_unlock(&rc->lock);
		if (bm_synchronize(rc->sys) == 0)
			regs_free(batch);
		else
			bm_bhyve_reclaim_keep(rc, batch); /* cannot happen on this thread */
		pthread_mutex_lock(&rc->lock);
	}
	pthread_mutex_unlock(&rc->lock);
	return NULL;
}

void bm_bhyve_reclaim_init(struct bm_bhyve_reclaim *rc, bm_system *sys)
{
	*rc = (struct bm_bhyve_reclaim){.sys = sys};
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->wake, &attr);
	pthread_condattr_destroy(&attr);
}

void bm_bhyve_reclaim_keep(struct bm_bhyve_reclaim *rc, struct bm_bhyve_reg *list)
{
	pthread_mutex_lock(&rc->lock);
	while (list) {
		struct bm_bhyve_reg *next = list->next;
		list->next = rc->kept;
		rc->kept = list;
		list = next;
	}
	pthread_mutex_unlock(&rc->lock);
}

void bm_bhyve_reclaim_later(struct bm_bhyve_reclaim *rc, struct bm_bhyve_reg *r)
{
	pthread_mutex_lock(&rc->lock);
	if (!rc->started && !rc->stop)
		rc->started = pthread_create(&rc->thread, NULL, reclaim_main, rc) == 0;
	if (rc->started) {
		if (!rc->pending)
			pthread_cond_signal(&rc->wake); /* the thread waits for a first one */
		r->next = rc->pending;
		rc->pending = r;
	} else {
		r->next = rc->kept;
		rc->kept = r;
	}
	pthread_mutex_unlock(&rc->lock);
}

void bm_bhyve_reclaim_fini(struct bm_bhyve_reclaim *rc)
{
	pthread_mutex_lock(&rc->lock);
	rc->stop = true;
	pthread_cond_signal(&rc->wake);
	pthread_mutex_unlock(&rc->lock);
	if (rc->started)
		pthread_join(rc->thread, NULL);
	regs_free(rc->pending);
	regs_free(rc->kept);
	pthread_cond_destroy(&rc->wake);
	pthread_mutex_destroy(&rc->lock);
}
