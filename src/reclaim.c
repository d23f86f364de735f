/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Freeing after a grace period.
 *
 * Writers retire old views, index nodes and destroyed regions while vCPUs may still be
 * reading them. liburcu's call_rcu wants its callers registered as readers, and a writer
 * can be any thread; a writer also must never wait for a grace period itself, because a
 * reader may be blocked on the writer lock from inside a region callback. So each system
 * has one thread that takes batches of garbage, waits for a grace period, and frees them.
 */
#include "internal.h"
#include "rcu.h"
#include <errno.h>
#include <stdlib.h>

struct bm_reclaimer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct bm_batch *head;
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

static void *reclaim_main(void *arg)
{
	struct bm_reclaimer *rc = arg;
	pthread_mutex_lock(&rc->mu);
	for (;;) {
		while (!rc->head && !rc->stop)
			pthread_cond_wait(&rc->cv, &rc->mu);
		struct bm_batch *work = rc->head;
		bool stop = rc->stop;
		rc->head = NULL;
		pthread_mutex_unlock(&rc->mu);
		if (work) {
			bm_rcu_synchronize(rc->qsbr, rc->token);
			free_batches(work);
		}
		pthread_mutex_lock(&rc->mu);
		if (stop && !rc->head)
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
	pthread_cond_init(&rc->cv, NULL);
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
	pthread_cond_signal(&rc->cv);
	pthread_mutex_unlock(&rc->mu);
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
