/* SPDX-License-Identifier: BSD-2-Clause */
/* The ioeventfd listener: a doorbell gets an ioeventfd wherever the flat view shows it whole. */
#include "ioeventfd.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

struct watch {
	bm_region *region;
	uint64_t offset;
	unsigned len;
	bool datamatch;
	uint64_t data;
	int fd;
};

/* One ioeventfd the hypervisor holds: watch (an index: the array may move) at addr. */
struct place {
	bool pio;
	uint64_t addr;
	size_t watch;
};

struct ioev {
	struct vm *vm;
	bm_listener *mem_listener, *io_listener;
	struct watch *watches;
	size_t nwatches, capwatches;
	/* Assigned ioeventfds, unordered; only the writer-lock holder changes them. */
	struct place *active;
	size_t nactive, capactive;
};

/* Where flat range fr shows watch w, if it shows all of its bytes. */
static bool shows(const struct bm_flat_range *fr, const struct watch *w, uint64_t *addr)
{
	if (fr->region != w->region || w->offset < fr->offset ||
	    w->offset + w->len - 1 - fr->offset > fr->last - fr->start)
		return false;
	*addr = fr->start + (w->offset - fr->offset);
	return true;
}

static struct place *find(struct ioev *ev, const struct place *p)
{
	for (size_t i = 0; i < ev->nactive; i++) {
		struct place *a = &ev->active[i];
		if (a->pio == p->pio && a->addr == p->addr && a->watch == p->watch)
			return a;
	}
	return NULL;
}

static bool shown_by(const struct ioev *ev, const struct bm_flat_range *v, size_t n,
                     const struct place *p)
{
	uint64_t addr;
	for (size_t i = 0; i < n; i++)
		if (shows(&v[i], &ev->watches[p->watch], &addr) && addr == p->addr)
			return true;
	return false;
}

/* From a listener, where nobody can be told, a failure stops the run; during setup it is
 * returned to the caller only. */
static void refused(struct ioev *ev, const char *what, const struct place *p, int err)
{
	const struct watch *w = &ev->watches[p->watch];
	vm_request_stop(
	    ev->vm, VM_STATUS_ERROR,
	    "could not %s the ioeventfd of %s+0x%" PRIx64 " at %s 0x%" PRIx64 " (errno %d)", what,
	    bm_region_name(w->region), w->offset, p->pio ? "port" : "address", p->addr, -err);
}

static int assign(struct ioev *ev, const struct place *p, bool stop)
{
	struct vm *vm = ev->vm;
	const struct watch *w = &ev->watches[p->watch];
	int err = vmm_grow(&ev->active, &ev->capactive, ev->nactive + 1, sizeof(*ev->active));
	if (!err)
		err = vm->hv->ioeventfd(vm->hv_ctx, true, p->pio, p->addr, w->len, w->datamatch,
		                        w->data, w->fd);
	if (err && stop)
		refused(ev, "assign", p, err);
	if (err)
		return err;
	ev->active[ev->nactive++] = *p;
	return 0;
}

static int deassign(struct ioev *ev, struct place *a, bool stop)
{
	struct vm *vm = ev->vm;
	const struct watch *w = &ev->watches[a->watch];
	int err = vm->hv->ioeventfd(vm->hv_ctx, false, a->pio, a->addr, w->len, w->datamatch,
	                            w->data, w->fd);
	if (err && stop)
		refused(ev, "deassign", a, err);
	if (err)
		return err; /* the hypervisor still holds it: so does the table */
	*a = ev->active[--ev->nactive];
	return 0;
}

/* Every deassignment before any assignment: two doorbells that swap addresses in one
 * change never meet at one address. One the change leaves in place stays assigned. */
static void on_change(void *arg, bm_space *space, const struct bm_flat_range *removed,
                      size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	struct ioev *ev = arg;
	struct place p = {.pio = space == ev->vm->io};
	struct place *a;
	for (size_t i = 0; i < nremoved; i++) {
		for (p.watch = 0; p.watch < ev->nwatches; p.watch++) {
			if (!shows(&removed[i], &ev->watches[p.watch], &p.addr) ||
			    shown_by(ev, added, nadded, &p))
				continue;
			if ((a = find(ev, &p)))
				deassign(ev, a, true);
		}
	}
	for (size_t i = 0; i < nadded; i++)
		for (p.watch = 0; p.watch < ev->nwatches; p.watch++)
			if (shows(&added[i], &ev->watches[p.watch], &p.addr) && !find(ev, &p))
				assign(ev, &p, true);
}

int ioev_new(struct vm *vm, struct ioev **out)
{
	if (!vm || !vm->hv || !vm->hv->ioeventfd || !out)
		return -EINVAL;
	struct ioev *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->vm = vm;
	int err = bm_listener_add(vm->mem, on_change, ev, &ev->mem_listener);
	if (!err)
		err = bm_listener_add(vm->io, on_change, ev, &ev->io_listener);
	if (err) {
		ioev_free(ev);
		return err;
	}
	*out = ev;
	return 0;
}

void ioev_free(struct ioev *ev)
{
	if (!ev)
		return;
	if (ev->mem_listener)
		bm_listener_remove(ev->mem_listener);
	if (ev->io_listener)
		bm_listener_remove(ev->io_listener);
	free(ev->watches);
	free(ev->active);
	free(ev);
}

#define ALL SIZE_MAX

/* The places the published views call for, of one watch or of all (only == ALL). */
struct walk {
	struct ioev *ev;
	bool pio;
	size_t only;
	struct place *v;
	size_t n, cap;
	int err;
};

static int collect(void *arg, const struct bm_flat_range *fr)
{
	struct walk *w = arg;
	struct place p = {.pio = w->pio};
	for (p.watch = 0; p.watch < w->ev->nwatches; p.watch++) {
		if ((w->only != ALL && p.watch != w->only) ||
		    !shows(fr, &w->ev->watches[p.watch], &p.addr))
			continue;
		w->err = vmm_grow(&w->v, &w->cap, w->n + 1, sizeof(*w->v));
		if (w->err)
			return 1;
		w->v[w->n++] = p;
	}
	return 0;
}

static int expected(struct ioev *ev, size_t only, struct walk *w)
{
	*w = (struct walk){.ev = ev, .only = only};
	bm_space_flat(ev->vm->mem, collect, w);
	w->pio = true;
	if (!w->err)
		bm_space_flat(ev->vm->io, collect, w);
	if (w->err) {
		free(w->v);
		w->v = NULL;
	}
	return w->err;
}

/* KVM cannot hold two ioeventfds at one address and length whose values overlap. */
static bool collide(const struct watch *a, const struct watch *b)
{
	return a->region == b->region && a->offset == b->offset && a->len == b->len &&
	       (!a->datamatch || !b->datamatch || a->data == b->data);
}

/* Deassigns watch id and forgets it; the last watch takes its index. */
static int drop_watch(struct ioev *ev, size_t id)
{
	/* Backwards: deassign moves the last entry into the hole, one looked at already. */
	for (size_t i = ev->nactive; i-- > 0;) {
		if (ev->active[i].watch != id)
			continue;
		int err = deassign(ev, &ev->active[i], false);
		if (err)
			return err;
	}
	size_t last = --ev->nwatches;
	ev->watches[id] = ev->watches[last];
	for (size_t i = 0; i < ev->nactive; i++)
		if (ev->active[i].watch == last)
			ev->active[i].watch = id;
	return 0;
}

int ioev_watch(struct ioev *ev, bm_region *r, uint64_t offset, unsigned len, bool datamatch,
               uint64_t data, int fd)
{
	if (!ev || !r || fd < 0 || (len != 1 && len != 2 && len != 4 && len != 8) ||
	    offset > bm_region_size(r) || bm_region_size(r) - offset < len ||
	    (datamatch && len < 8 && data >> (8 * len)))
		return -EINVAL;
	struct watch nw = {r, offset, len, datamatch, data, fd};
	int err = bm_begin(ev->vm->sys);
	if (err)
		return err;
	for (size_t i = 0; i < ev->nwatches && !err; i++)
		if (collide(&ev->watches[i], &nw))
			err = -EEXIST;
	if (!err)
		err =
		    vmm_grow(&ev->watches, &ev->capwatches, ev->nwatches + 1, sizeof(*ev->watches));
	if (!err) {
		size_t id = ev->nwatches++;
		ev->watches[id] = nw;
		/* Already visible: assign it now, as the listeners would have. */
		struct walk w;
		err = expected(ev, id, &w);
		for (size_t i = 0; !err && i < w.n; i++)
			err = assign(ev, &w.v[i], false);
		free(w.v);
		/* On failure take back what was assigned, and the watch. */
		if (err)
			drop_watch(ev, id);
	}
	bm_commit(ev->vm->sys);
	return err;
}

int ioev_unwatch(struct ioev *ev, bm_region *r)
{
	if (!ev || !r)
		return -EINVAL;
	int err = bm_begin(ev->vm->sys);
	if (err)
		return err;
	err = -ENOENT;
	/* drop_watch moves the last watch into the hole: one looked at already. */
	for (size_t i = ev->nwatches; i-- > 0;)
		if (ev->watches[i].region == r && (err = drop_watch(ev, i)))
			break;
	bm_commit(ev->vm->sys);
	return err;
}

static int by_place(const void *x, const void *y)
{
	const struct place *a = x, *b = y;
	if (a->pio != b->pio)
		return a->pio ? -1 : 1;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return (a->watch > b->watch) - (a->watch < b->watch);
}

size_t ioev_list(struct ioev *ev, struct ioev_active *out, size_t max)
{
	if (!ev || bm_begin(ev->vm->sys))
		return 0;
	if (ev->nactive > 1) /* qsort takes no NULL, even for nothing to sort */
		qsort(ev->active, ev->nactive, sizeof(*ev->active), by_place);
	for (size_t i = 0; i < ev->nactive && i < max; i++) {
		const struct place *p = &ev->active[i];
		const struct watch *w = &ev->watches[p->watch];
		out[i] =
		    (struct ioev_active){p->pio, p->addr, w->len, w->datamatch, w->data, w->fd};
	}
	size_t n = ev->nactive;
	bm_commit(ev->vm->sys);
	return n;
}

static void print_place(struct ioev *ev, FILE *report, const char *what, const struct place *p)
{
	const struct watch *w = &ev->watches[p->watch];
	if (report)
		fprintf(report, "%s ioeventfd: %s 0x%" PRIx64 " len %u fd %d (%s+0x%" PRIx64 ")\n",
		        what, p->pio ? "port" : "address", p->addr, w->len, w->fd,
		        bm_region_name(w->region), w->offset);
}

int ioev_check(struct ioev *ev, FILE *report)
{
	if (!ev)
		return -EINVAL;
	/* Holding the writer lock keeps the listeners from changing the table meanwhile. */
	int err = bm_begin(ev->vm->sys);
	if (err)
		return err;
	struct walk w;
	err = expected(ev, ALL, &w);
	bool differ = false;
	for (size_t i = 0; !err && i < w.n; i++) {
		if (!find(ev, &w.v[i])) {
			print_place(ev, report, "missing", &w.v[i]);
			differ = true;
		}
	}
	for (size_t i = 0; !err && i < ev->nactive; i++) {
		bool want = false;
		for (size_t j = 0; j < w.n && !want; j++)
			want = by_place(&ev->active[i], &w.v[j]) == 0;
		if (!want) {
			print_place(ev, report, "unexpected", &ev->active[i]);
			differ = true;
		}
	}
	free(w.v);
	/* Nothing changed here: a failure to publish others' pending changes is not ours. */
	bm_commit(ev->vm->sys);
	if (err)
		return err;
	return differ ? -EPROTO : 0;
}
