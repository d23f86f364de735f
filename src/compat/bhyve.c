/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The instance, and what memory and port registrations share: each is an io region added
 * to the space's root, and each change publishes at once, as bhyve's callers expect the
 * next access to see it.
 */
#include "bhyve_internal.h"

#include <stdlib.h>

static int space_init(bm_bhyve *b, struct bm_bhyve_space *s, const char *name)
{
	int err = bm_space_new(b->sys, name, name, &s->space);
	if (!err)
		err = bm_bhyve_regs_init(&s->regs);
	return err ? err : bm_bhyve_foreign_init(s);
}

/* Frees what b holds; also undoes a partial bm_bhyve_new, whose locks are all made. */
static void instance_empty(bm_bhyve *b)
{
	if (b->sys)
		bm_system_free(b->sys); /* frees the regions, spaces and removed registrations */
	b->sys = NULL;
	bm_bhyve_regs_fini(&b->mem.regs);
	bm_bhyve_regs_fini(&b->io.regs);
	bm_bhyve_foreign_fini(&b->mem.foreign);
	bm_bhyve_foreign_fini(&b->io.foreign);
}

static void instance_free(bm_bhyve *b)
{
	instance_empty(b);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* Makes the instance's locks, or none. */
static int locks_init(bm_bhyve *b)
{
	if (pthread_mutex_init(&b->lock, NULL))
		return -ENOMEM;
	if (pthread_rwlock_init(&b->mem.foreign.lock, NULL))
		goto mem_failed;
	if (!pthread_rwlock_init(&b->io.foreign.lock, NULL))
		return 0;
	pthread_rwlock_destroy(&b->mem.foreign.lock);
mem_failed:
	pthread_mutex_destroy(&b->lock);
	return -ENOMEM;
}

int bm_bhyve_new(int (*vcpu_index)(struct vcpu *vcpu), bm_bhyve **out)
{
	if (!out)
		return -EINVAL;
	bm_bhyve *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vcpu_index = vcpu_index;
	if (locks_init(b)) {
		free(b);
		return -ENOMEM;
	}
	int err = bm_system_new(&b->sys);
	if (!err)
		err = space_init(b, &b->mem, "memory");
	if (!err)
		err = space_init(b, &b->io, "io");
	if (err) {
		instance_free(b);
		return err;
	}
	*out = b;
	return 0;
}

int bm_bhyve_close(bm_bhyve *b)
{
	/* Refused inside a dispatch, where freeing would wait for itself. */
	int err = bm_synchronize(b->sys);
	if (!err)
		err = bm_bhyve_ctxs_close(b);
	if (err)
		return err;
	bm_bhyve_ctx_release(b);
	instance_empty(b);
	return 0;
}

int bm_bhyve_free(bm_bhyve *b)
{
	if (!b)
		return 0;
	int err = bm_bhyve_close(b);
	if (!err) {
		pthread_mutex_destroy(&b->lock);
		free(b);
	}
	return err;
}

bm_system *bm_bhyve_system(const bm_bhyve *b)
{
	return b ? b->sys : NULL;
}

bm_space *bm_bhyve_mem_space(const bm_bhyve *b)
{
	return b ? b->mem.space : NULL;
}

bm_space *bm_bhyve_io_space(const bm_bhyve *b)
{
	return b ? b->io.space : NULL;
}

int bm_bhyve_set_emulator(bm_bhyve *b, bm_bhyve_emulate_fn fn)
{
	if (!b)
		return -EINVAL;
	atomic_store(&b->emulate, fn);
	return 0;
}

int bm_bhyve_set_inout_decoder(bm_bhyve *b, bm_bhyve_inout_decoder_fn fn)
{
	if (!b)
		return -EINVAL;
	atomic_store(&b->decode_inout, fn);
	return 0;
}

int bm_bhyve_set_non_backed(bm_bhyve *b, bm_bhyve_non_backed_fn fn)
{
	if (!b)
		return -EINVAL;
	atomic_store(&b->non_backed, fn);
	return 0;
}

int bm_bhyve_set_strict_io(bm_bhyve *b, bool strict)
{
	if (!b)
		return -EINVAL;
	atomic_store(&b->strict_io, strict);
	return 0;
}

int bm_bhyve_nested(int (*fn)(void *arg), void *arg)
{
	struct bm_bhyve_call saved = bm_bhyve_self.call;
	bm_bhyve_self.call.busy = false;
	int ret = fn(arg);
	bm_bhyve_self.call = saved;
	return ret;
}

void bm_bhyve_catch_up(bm_bhyve *b)
{
	/* Publications and their listeners run under the writer lock: taking it is the wait.
	 * Refused (and then not waited for) only inside a listener on this thread. */
	if (!bm_begin(b->sys))
		bm_commit(b->sys);
}

int bm_bhyve_handler_failed(int result)
{
	bm_bhyve_self.call.result = result;
	return bm_bhyve_core_result(result);
}

struct bm_bhyve_reg *bm_bhyve_reg_new(uint64_t base, uint64_t size, const char *name, bool low)
{
	struct bm_bhyve_reg *r = calloc(1, sizeof(*r));
	if (r) {
		r->base = base;
		r->size = size;
		r->name = name;
		r->low = low;
	}
	return r;
}

static void reg_free(struct bm_deferred *d)
{
	free(BM_BHYVE_CONTAINER_OF(d, struct bm_bhyve_reg, dead));
}

/* Creates r's region and places it; the caller holds a transaction. */
static int reg_place(bm_bhyve *b, struct bm_bhyve_space *s, struct bm_bhyve_reg *r,
                     const struct bm_region_ops *ops)
{
	int err = bm_region_new_io(b->sys, r->name, r->size, ops, r, &r->region);
	if (err)
		return err;
	if (!r->low)
		err = bm_region_set_exclusive(r->region, true);
	if (!err)
		err = bm_region_add(bm_space_root(s->space), r->region, r->base, r->low ? -1 : 0);
	if (err) {
		bm_region_destroy(r->region);
		return err;
	}
	r->seq = ++b->seq;
	bm_bhyve_regs_insert(&s->regs, r);
	return 0;
}

/* Takes r out of the map and the table, and frees it once no dispatch can reach it (the
 * publication of the caller's transaction, or a later one if that fails, and a grace
 * period). */
static int reg_unplace(bm_bhyve *b, struct bm_bhyve_space *s, struct bm_bhyve_reg *r)
{
	int err = bm_region_destroy(r->region);
	if (!err) {
		bm_bhyve_regs_remove(&s->regs, r);
		bm_defer(b->sys, &r->dead, reg_free);
	}
	return err;
}

/* A registration whose publication failed is taken back out, so that the caller's error
 * means "not registered". */
static void reg_undo(bm_bhyve *b, struct bm_bhyve_space *s, struct bm_bhyve_reg *r)
{
	bm_begin(b->sys);
	reg_unplace(b, s, r);
	bm_commit(b->sys);
}

int bm_bhyve_add(bm_bhyve *b, struct bm_bhyve_space *s, struct bm_bhyve_reg *r,
                 const struct bm_region_ops *ops)
{
	int err = bm_begin(b->sys);
	if (err) {
		free(r);
		return err;
	}
	err = reg_place(b, s, r, ops);
	int published = bm_commit(b->sys);
	if (err)
		free(r);
	else if (published)
		reg_undo(b, s, r);
	return err ? err : published;
}

int bm_bhyve_remove(bm_bhyve *b, struct bm_bhyve_space *s, uint64_t base, uint64_t size,
                    const char *name, bm_bhyve_same_fn same, const void *desc,
                    int (*refuse)(const struct bm_bhyve_reg *r))
{
	int err = bm_begin(b->sys);
	if (err)
		return err;
	struct bm_bhyve_reg *r = bm_bhyve_regs_find(&s->regs, base, size, name, same, desc);
	if (!r)
		err = -ENOENT;
	else if (refuse)
		err = refuse(r);
	if (!err)
		err = reg_unplace(b, s, r);
	int published = bm_commit(b->sys);
	/* A failed publication (-ENOMEM) leaves the removal in the tree, to show at the next
	 * commit; undoing it could fail the same way. */
	return err ? err : published;
}
