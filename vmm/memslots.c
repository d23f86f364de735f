/* SPDX-License-Identifier: BSD-2-Clause */
/* The memslot listener: the page-aligned parts of host-backed flat ranges as KVM memslots. */
#include "memslots.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PAGE       4096u
#define MAX_SPLITS 8

struct backing {
	bm_region *region;
	uintptr_t hva;
	bool readonly;
};

struct memslots {
	struct vm *vm;
	bm_listener *listener;
	struct backing *backings;
	size_t nbackings, capbackings;
	/* Installed slots, unordered; only the writer-lock holder changes them. */
	struct memslot *slots;
	size_t nslots, capslots;
	/* Ids below next_id were handed out once; those not in use wait in free_ids, which
	 * always has room for every one of them, so releasing an id cannot fail. */
	unsigned max_ids, next_id;
	unsigned *free_ids;
	size_t nfree, capfree;
	/* Addresses no slot crosses, ascending (memslots_split_at). */
	uint64_t splits[MAX_SPLITS];
	unsigned nsplits;
};

static struct backing *backing_of(struct memslots *ms, const bm_region *r)
{
	for (size_t i = 0; i < ms->nbackings; i++)
		if (ms->backings[i].region == r)
			return &ms->backings[i];
	return NULL;
}

/*
 * The slot a flat range calls for: the whole pages inside it, when the host and guest
 * addresses agree modulo the page size (KVM maps whole pages only). Returns false when
 * there is none; the id is left for the caller.
 */
static bool slot_for(struct memslots *ms, const struct bm_flat_range *fr, struct memslot *out)
{
	const struct backing *b = backing_of(ms, fr->region);
	if (!b)
		return false;
	uintptr_t hva = b->hva + (uintptr_t)fr->offset;
	if ((hva - (uintptr_t)fr->start) % PAGE)
		return false;
	/* Page numbers, so that nothing overflows at the top of the address space. */
	uint64_t first = fr->start / PAGE + (fr->start % PAGE != 0);
	uint64_t end = fr->last / PAGE + (fr->last % PAGE == PAGE - 1);
	if (end <= first || (end - first) * PAGE == 0)
		return false; /* shorter than a page, or all 2^64 bytes (no slot is that big) */
	*out = (struct memslot){
	    .gpa = first * PAGE,
	    .size = (end - first) * PAGE,
	    .hva = (void *)(hva + (uintptr_t)(first * PAGE - fr->start)),
	    .readonly = b->readonly,
	};
	return true;
}

/* The slots a flat range calls for: one per piece between split points. */
static unsigned slots_for(struct memslots *ms, const struct bm_flat_range *fr,
                          struct memslot out[MAX_SPLITS + 1])
{
	struct bm_flat_range cur = *fr;
	unsigned n = 0;
	for (unsigned i = 0; i < ms->nsplits; i++) {
		uint64_t at = ms->splits[i];
		if (at <= cur.start || at > cur.last)
			continue;
		struct bm_flat_range piece = cur;
		piece.last = at - 1;
		n += slot_for(ms, &piece, &out[n]);
		cur.offset += at - cur.start;
		cur.start = at;
	}
	n += slot_for(ms, &cur, &out[n]);
	return n;
}

static bool same_slot(const struct memslot *a, const struct memslot *b)
{
	return a->gpa == b->gpa && a->size == b->size && a->hva == b->hva &&
	       a->readonly == b->readonly;
}

static struct memslot *installed(struct memslots *ms, const struct memslot *want)
{
	for (size_t i = 0; i < ms->nslots; i++)
		if (same_slot(&ms->slots[i], want))
			return &ms->slots[i];
	return NULL;
}

static bool called_for(struct memslots *ms, const struct bm_flat_range *v, size_t n,
                       const struct memslot *want)
{
	struct memslot s[MAX_SPLITS + 1];
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0, ns = slots_for(ms, &v[i], s); k < ns; k++)
			if (same_slot(&s[k], want))
				return true;
	return false;
}

static bool out_of_ids(const struct memslots *ms)
{
	return ms->nfree == 0 && ms->next_id == ms->max_ids;
}

static int install(struct memslots *ms, struct memslot *s)
{
	if (out_of_ids(ms))
		return -ENOSPC;
	int err = vmm_grow(&ms->slots, &ms->capslots, ms->nslots + 1, sizeof(*ms->slots));
	if (!err)
		err = vmm_grow(&ms->free_ids, &ms->capfree, (size_t)ms->next_id + 1,
		               sizeof(unsigned));
	if (err)
		return err;
	s->id = ms->nfree ? ms->free_ids[ms->nfree - 1] : ms->next_id;
	err = ms->vm->hv->set_memslot(ms->vm->hv_ctx, s->id, s->gpa, s->size, s->hva, s->readonly);
	if (err)
		return err;
	if (ms->nfree)
		ms->nfree--;
	else
		ms->next_id++;
	ms->slots[ms->nslots++] = *s;
	return 0;
}

/* On failure the hypervisor still holds the slot: so does the table. */
static int uninstall(struct memslots *ms, struct memslot *s)
{
	int err = ms->vm->hv->set_memslot(ms->vm->hv_ctx, s->id, s->gpa, 0, s->hva, s->readonly);
	if (err)
		return err;
	ms->free_ids[ms->nfree++] = s->id;
	*s = ms->slots[--ms->nslots];
	return 0;
}

/* A listener cannot report to anyone: the run stops, with the reason. */
static void failed(struct memslots *ms, const char *what, const struct memslot *s, int err)
{
	if (err == -ENOSPC && out_of_ids(ms))
		vm_request_stop(ms->vm, VM_STATUS_ERROR,
		                "cannot map guest memory at 0x%" PRIx64 ", size 0x%" PRIx64
		                ": all %u memory slots are in use",
		                s->gpa, s->size, ms->max_ids);
	else
		vm_request_stop(ms->vm, VM_STATUS_ERROR,
		                "cannot %s memory slot at 0x%" PRIx64 ", size 0x%" PRIx64
		                ": errno %d",
		                what, s->gpa, s->size, -err);
}

/* Removals first, so that no new slot overlaps one on its way out. A slot the change
 * leaves as it was stays installed: vCPUs keep reaching that RAM directly throughout. */
static void on_change(void *arg, bm_space *space, const struct bm_flat_range *removed,
                      size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)space;
	struct memslots *ms = arg;
	struct memslot want[MAX_SPLITS + 1], *s;
	int err;
	for (size_t i = 0; i < nremoved; i++) {
		for (unsigned k = 0, n = slots_for(ms, &removed[i], want); k < n; k++) {
			if (called_for(ms, added, nadded, &want[k]))
				continue;
			if ((s = installed(ms, &want[k])) && (err = uninstall(ms, s)))
				failed(ms, "delete the", s, err);
		}
	}
	for (size_t i = 0; i < nadded; i++)
		for (unsigned k = 0, n = slots_for(ms, &added[i], want); k < n; k++)
			if (!installed(ms, &want[k]) && (err = install(ms, &want[k])))
				failed(ms, "add a", &want[k], err);
}

int memslots_new(struct vm *vm, struct memslots **out)
{
	if (!vm || !vm->hv || !vm->hv->set_memslot || !out)
		return -EINVAL;
	struct memslots *ms = calloc(1, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	ms->vm = vm;
	ms->max_ids = vm->hv->max_memslots ? vm->hv->max_memslots(vm->hv_ctx) : 32;
	int err = bm_listener_add(vm->mem, on_change, ms, &ms->listener);
	if (err) {
		free(ms);
		return err;
	}
	*out = ms;
	return 0;
}

void memslots_free(struct memslots *ms)
{
	if (!ms)
		return;
	bm_listener_remove(ms->listener);
	free(ms->backings);
	free(ms->slots);
	free(ms->free_ids);
	free(ms);
}

struct walk {
	struct memslots *ms;
	const bm_region *only; /* NULL: every backed region */
	struct memslot *v;
	size_t n, cap;
	int err;
};

static int collect(void *arg, const struct bm_flat_range *fr)
{
	struct walk *w = arg;
	struct memslot s[MAX_SPLITS + 1];
	if (w->only && fr->region != w->only)
		return 0;
	unsigned n = slots_for(w->ms, fr, s);
	w->err = vmm_grow(&w->v, &w->cap, w->n + n, sizeof(*w->v));
	if (w->err)
		return 1;
	for (unsigned k = 0; k < n; k++)
		w->v[w->n++] = s[k];
	return 0;
}

/* The slots the published view calls for (of one region, or of all). */
static int expected(struct memslots *ms, const bm_region *only, struct walk *w)
{
	*w = (struct walk){.ms = ms, .only = only};
	bm_space_flat(ms->vm->mem, collect, w);
	if (w->err) {
		free(w->v);
		w->v = NULL;
	}
	return w->err;
}

int memslots_add_backing(struct memslots *ms, bm_region *r, void *hva, bool readonly)
{
	if (!ms || !r || !hva)
		return -EINVAL;
	enum bm_region_kind kind = bm_region_kind(r);
	if (kind == BM_REGION_CONTAINER || kind == BM_REGION_ALIAS)
		return -EINVAL; /* flat ranges only ever name leaves */
	int err = bm_begin(ms->vm->sys);
	if (err)
		return err;
	size_t n = ms->nbackings;
	err = backing_of(ms, r)
	          ? -EEXIST
	          : vmm_grow(&ms->backings, &ms->capbackings, n + 1, sizeof(*ms->backings));
	struct walk w = {0};
	bool appended = !err;
	if (appended) {
		ms->backings[ms->nbackings++] = (struct backing){r, (uintptr_t)hva, readonly};
		/* Already visible: map it now, as the listener would have. */
		err = expected(ms, r, &w);
	}
	size_t done = 0;
	while (!err && done < w.n && !(err = install(ms, &w.v[done])))
		done++;
	/* On failure take back what was mapped, then the backing once nothing of it is left. */
	int uerr = 0;
	while (err && done > 0 && !uerr)
		uerr = uninstall(ms, installed(ms, &w.v[--done]));
	if (err && appended && !uerr)
		ms->nbackings--;
	free(w.v);
	bm_commit(ms->vm->sys);
	return err;
}

/* Makes the installed slots what the view calls for: removals first, as in on_change. */
static int resync(struct memslots *ms)
{
	struct walk w;
	int err = expected(ms, NULL, &w);
	for (size_t i = 0; !err && i < ms->nslots;) {
		bool want = false;
		for (size_t j = 0; j < w.n && !want; j++)
			want = same_slot(&ms->slots[i], &w.v[j]);
		if (want)
			i++;
		else
			err = uninstall(ms, &ms->slots[i]); /* moves the last slot to i */
	}
	for (size_t j = 0; !err && j < w.n; j++)
		if (!installed(ms, &w.v[j]))
			err = install(ms, &w.v[j]);
	free(w.v);
	return err;
}

int memslots_split_at(struct memslots *ms, uint64_t gpa)
{
	if (!ms || gpa == 0 || gpa % PAGE)
		return -EINVAL;
	int err = bm_begin(ms->vm->sys);
	if (err)
		return err;
	unsigned i = ms->nsplits;
	while (i > 0 && ms->splits[i - 1] > gpa)
		i--;
	if (i > 0 && ms->splits[i - 1] == gpa) {
		err = 0;
	} else if (ms->nsplits == MAX_SPLITS) {
		err = -ENOSPC;
	} else {
		memmove(&ms->splits[i + 1], &ms->splits[i], (ms->nsplits - i) * sizeof(uint64_t));
		ms->splits[i] = gpa;
		ms->nsplits++;
		err = resync(ms);
	}
	bm_commit(ms->vm->sys);
	return err;
}

int memslots_remove_backing(struct memslots *ms, bm_region *r)
{
	if (!ms || !r)
		return -EINVAL;
	int err = bm_begin(ms->vm->sys);
	if (err)
		return err;
	struct backing *b = backing_of(ms, r);
	struct walk w = {0};
	err = b ? expected(ms, r, &w) : -ENOENT;
	struct memslot *s;
	for (size_t i = 0; !err && i < w.n; i++)
		if ((s = installed(ms, &w.v[i])))
			err = uninstall(ms, s);
	free(w.v);
	if (!err)
		*b = ms->backings[--ms->nbackings];
	bm_commit(ms->vm->sys);
	return err;
}

static int by_gpa(const void *a, const void *b)
{
	const struct memslot *x = a, *y = b;
	return (x->gpa > y->gpa) - (x->gpa < y->gpa);
}

size_t memslots_list(struct memslots *ms, struct memslot *out, size_t max)
{
	if (!ms || bm_begin(ms->vm->sys))
		return 0;
	if (ms->nslots > 1) /* qsort takes no NULL, even for nothing to sort */
		qsort(ms->slots, ms->nslots, sizeof(*ms->slots), by_gpa);
	for (size_t i = 0; i < ms->nslots && i < max; i++)
		out[i] = ms->slots[i];
	size_t n = ms->nslots;
	bm_commit(ms->vm->sys);
	return n;
}

static void print_slot(FILE *report, const char *what, const struct memslot *s)
{
	if (report)
		fprintf(report, "%s slot: gpa 0x%" PRIx64 " size 0x%" PRIx64 " hva %p%s\n", what,
		        s->gpa, s->size, s->hva, s->readonly ? " read-only" : "");
}

int memslots_check(struct memslots *ms, FILE *report)
{
	if (!ms)
		return -EINVAL;
	/* Holding the writer lock keeps the listener from changing the table meanwhile. */
	int err = bm_begin(ms->vm->sys);
	if (err)
		return err;
	struct walk w;
	err = expected(ms, NULL, &w);
	bool differ = false;
	for (size_t i = 0; !err && i < w.n; i++) {
		if (!installed(ms, &w.v[i])) {
			print_slot(report, "missing", &w.v[i]);
			differ = true;
		}
	}
	for (size_t i = 0; !err && i < ms->nslots; i++) {
		bool want = false;
		for (size_t j = 0; j < w.n && !want; j++)
			want = same_slot(&ms->slots[i], &w.v[j]);
		if (!want) {
			print_slot(report, "unexpected", &ms->slots[i]);
			differ = true;
		}
	}
	free(w.v);
	/* Nothing changed here: a failure to publish others' pending changes is not ours. */
	bm_commit(ms->vm->sys);
	if (err)
		return err;
	return differ ? -EPROTO : 0;
}
