/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dispatch contexts, one per vCPU thread.
 *
 * A bm_vcpu belongs to the thread that created it, and bhyve runs each vCPU on a thread of
 * its own. So a thread's first access to an instance creates the thread's context there,
 * numbered with the vCPU's index, and the thread remembers the instance of its last access
 * and that context: every later access is one comparison. A handler learns its vCPU from the
 * access, not from the context, so an access made for a vCPU from another thread (a
 * debugger stub, say) is served alike, through that thread's own context.
 *
 * A context must be freed on its own thread (liburcu forgets a thread only on that thread,
 * and must forget it before the thread is gone), so a pthread key's destructor frees a
 * thread's contexts when it exits.
 *
 * Process-wide state: the key, created once.
 */
#include "bhyve_internal.h"

#include <stdlib.h>

_Thread_local struct bm_bhyve_thread bm_bhyve_self;

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static int thread_key_err;

static void thread_exit(void *contexts);

static void thread_key_create(void)
{
	thread_key_err = pthread_key_create(&thread_key, thread_exit);
}

static bool thread_key_ready(void)
{
	return !pthread_once(&thread_key_once, thread_key_create) && !thread_key_err;
}

static struct bm_bhyve_ctx *own_ctx(const bm_bhyve *b)
{
	struct bm_bhyve_ctx *c = pthread_getspecific(thread_key);
	while (c && c->b != b)
		c = c->next_of_thread;
	return c;
}

/* Numbers a new context: by the vCPU's index where the host tells it. */
static unsigned ctx_index(bm_bhyve *b, struct vcpu *vcpu)
{
	if (b->vcpu_index && vcpu) {
		int index = b->vcpu_index(vcpu);
		if (index >= 0)
			return (unsigned)index;
	}
	pthread_mutex_lock(&b->lock);
	unsigned index = b->nctxs_made++;
	pthread_mutex_unlock(&b->lock);
	return index;
}

/* Takes c out of b's list and frees it; on c's own thread, c already off the thread's list. */
static void ctx_free(struct bm_bhyve_ctx *c)
{
	bm_bhyve *b = c->b;
	if (bm_bhyve_self.b == b) {
		bm_bhyve_self.b = NULL;
		bm_bhyve_self.vcpu = NULL;
		bm_bhyve_self.ctx = NULL;
	}
	pthread_mutex_lock(&b->lock);
	struct bm_bhyve_ctx **at = &b->ctxs;
	while (*at && *at != c)
		at = &(*at)->next;
	if (*at)
		*at = c->next;
	pthread_mutex_unlock(&b->lock);
	bm_vcpu_free(c->raw);
	bm_vcpu_free(c->vcpu);
	free(c);
}

/* Made and listed under the lock that closing the instance takes, so that no context
 * appears once the instance is closed: a thread's first access then fails instead of
 * reaching a freed system. */
static struct bm_bhyve_ctx *ctx_new(bm_bhyve *b, struct vcpu *vcpu)
{
	unsigned index = ctx_index(b, vcpu);
	struct bm_bhyve_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->b = b;
	c->owner = &bm_bhyve_self.tag;
	c->next_of_thread = pthread_getspecific(thread_key);
	pthread_mutex_lock(&b->lock);
	bool made = !b->closed && !bm_vcpu_new(b->sys, index, NULL, &c->vcpu);
	if (made && pthread_setspecific(thread_key, c)) {
		bm_vcpu_free(c->vcpu);
		made = false;
	}
	if (made) {
		c->next = b->ctxs;
		b->ctxs = c;
	}
	pthread_mutex_unlock(&b->lock);
	if (!made) {
		free(c);
		return NULL;
	}
	return c;
}

bm_vcpu *bm_bhyve_vcpu_slow(bm_bhyve *b, struct vcpu *vcpu)
{
	if (!thread_key_ready())
		return NULL;
	struct bm_bhyve_ctx *c = own_ctx(b);
	if (!c)
		c = ctx_new(b, vcpu);
	if (!c)
		return NULL;
	bm_bhyve_self.b = b;
	bm_bhyve_self.vcpu = c->vcpu;
	bm_bhyve_self.ctx = c;
	return c->vcpu;
}

bm_vcpu *bm_bhyve_raw_vcpu(bm_bhyve *b)
{
	if (!bm_bhyve_vcpu_for(b, NULL))
		return NULL;
	struct bm_bhyve_ctx *c = bm_bhyve_self.ctx;
	if (!c->raw && bm_vcpu_new(b->sys, bm_vcpu_index(c->vcpu), NULL, &c->raw))
		c->raw = NULL;
	return c->raw;
}

static void thread_exit(void *contexts)
{
	for (struct bm_bhyve_ctx *c = contexts, *next; c; c = next) {
		next = c->next_of_thread;
		ctx_free(c);
	}
}

int bm_bhyve_ctxs_close(bm_bhyve *b)
{
	bool found = false;
	pthread_mutex_lock(&b->lock);
	for (struct bm_bhyve_ctx *c = b->ctxs; c && !found; c = c->next)
		found = c->owner != &bm_bhyve_self.tag;
	if (!found)
		b->closed = true;
	pthread_mutex_unlock(&b->lock);
	return found ? -EBUSY : 0;
}

void bm_bhyve_ctx_release(bm_bhyve *b)
{
	if (!thread_key_ready())
		return;
	struct bm_bhyve_ctx *head = pthread_getspecific(thread_key);
	struct bm_bhyve_ctx **at = &head;
	while (*at && (*at)->b != b)
		at = &(*at)->next_of_thread;
	if (!*at)
		return;
	struct bm_bhyve_ctx *c = *at;
	*at = c->next_of_thread;
	pthread_setspecific(thread_key, head);
	ctx_free(c);
}
