/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation failure: every allocation an operation makes fails in turn.
 *
 * For each representative public operation, on a fresh fixture each time, the n-th
 * allocation of the calling thread fails, for n = 1, 2, ... until the operation runs
 * without reaching its n-th allocation. Whenever an allocation failed:
 * - the call must return an error (or, if it absorbed the failure, leave exactly what a
 *   successful call leaves);
 * - the region tree (mtree and JSON dumps, every fixture region's attributes), the
 *   published views, the conflicts, what listeners and conflict callbacks were told,
 *   dispatch at the edges of every range and (PCI) every configuration register, BAR and
 *   bridge window, and what the map observer, the device hooks (cfg_write, bar_map) and
 *   the host hooks (MSI, INTx) were told must be exactly as before the call;
 * - the same operation, retried without failure, must succeed and leave exactly what a
 *   run that never failed leaves.
 * Every (operation, n) that breaks a rule is reported with what differed; the exit status
 * is 1 if any did.
 *
 * ALLOCFAIL_ONLY=<substring> runs only the operations whose name contains it;
 * ALLOCFAIL_VERBOSE=1 prints the whole state when something differs.
 */
#include "wrap.h"

#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BANK_N     48
#define MAX_PROBES 512

/* ------------------------------------------------------------------ text buffers */

struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = b->cap - b->n;
		va_start(ap, fmt);
		int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			abort();
		if ((size_t)k < room) {
			b->n += (size_t)k;
			return;
		}
		b->cap = b->cap ? 2 * b->cap + (size_t)k : 4096 + (size_t)k;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
}

static void sb_free(struct sbuf *b)
{
	free(b->s);
	*b = (struct sbuf){0};
}

/* ------------------------------------------------------------------ the fixture */

struct mirror {
	struct bm_flat_range v[1024];
	size_t n;
	bool broken; /* an event that does not fit what it was told before */
};

struct cmirror {
	struct bm_conflict v[256];
	size_t n;
	bool broken;
};

struct fixture {
	bm_system *sys;
	bm_space *mem, *io;
	bm_region *c0, *io1, *io2, *ram3, *alias4, *io5, *c6, *bank, *b[BANK_N];
	uint8_t ram[0x1000];
	bm_listener *lmem, *lio;
	struct mirror mmem, mio, mnew;
	struct cmirror cmem, cio;
	bool cio_on;
	bm_vcpu *vcpu;
	/* what an operation made */
	bm_region *made;
	bm_space *made_space;
	bm_listener *made_listener;
	bm_vcpu *made_vcpu;
	struct pci_fixture *pci;
	bool txn; /* a transaction is open around the operation */
};

static int io_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	uintptr_t id = (uintptr_t)opaque;
	(void)vcpu;
	*value = 0;
	for (unsigned i = 0; i < size; i++)
		*value |= (uint64_t)(uint8_t)(id * 37 + (off + i) * 11) << (8 * i);
	return 0;
}

static int io_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)opaque, (void)vcpu, (void)off, (void)size, (void)value;
	return 0;
}

static const struct bm_region_ops io_ops = {.read = io_read, .write = io_write};

/* Field by field: the structure has padding. */
static bool range_same(const struct bm_flat_range *a, const struct bm_flat_range *b)
{
	return a->start == b->start && a->last == b->last && a->region == b->region &&
	       a->offset == b->offset && a->conflict == b->conflict;
}

static void mirror_fn(void *arg, bm_space *space, const struct bm_flat_range *removed,
                      size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	struct mirror *m = arg;
	(void)space;
	for (size_t i = 0; i < nremoved; i++) {
		size_t k = 0;
		while (k < m->n && !range_same(&m->v[k], &removed[i]))
			k++;
		if (k == m->n) {
			m->broken = true;
			continue;
		}
		memmove(&m->v[k], &m->v[k + 1], (m->n - k - 1) * sizeof(m->v[0]));
		m->n--;
	}
	for (size_t i = 0; i < nadded; i++) {
		if (m->n == sizeof(m->v) / sizeof(m->v[0])) {
			m->broken = true;
			continue;
		}
		size_t k = 0;
		while (k < m->n && m->v[k].start < added[i].start)
			k++;
		memmove(&m->v[k + 1], &m->v[k], (m->n - k) * sizeof(m->v[0]));
		m->v[k] = added[i];
		m->n++;
	}
}

static void on_change(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	struct cmirror *m = arg;
	(void)space;
	if (added) {
		if (m->n == sizeof(m->v) / sizeof(m->v[0]))
			m->broken = true;
		else
			m->v[m->n++] = *c;
		return;
	}
	for (size_t k = 0; k < m->n; k++)
		if (m->v[k].start == c->start && m->v[k].last == c->last &&
		    m->v[k].winner == c->winner && m->v[k].loser == c->loser) {
			m->v[k] = m->v[--m->n];
			return;
		}
	m->broken = true;
}

static const struct bm_conflict_ops conflict_ops = {.on_change = on_change};

#define OK(call)                                                                                   \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != 0) {                                                                    \
			fprintf(stderr, "%s:%d: %s returned %d while building the fixture\n",      \
			        __FILE__, __LINE__, #call, rc_);                                   \
			exit(2);                                                                   \
		}                                                                                  \
	} while (0)

static bm_region *new_io(struct fixture *f, const char *name, uint64_t size, uintptr_t id)
{
	bm_region *r;
	OK(bm_region_new_io(f->sys, name, size, &io_ops, (void *)id, &r));
	return r;
}

static void pci_fixture_new(struct fixture *f);
static void pci_fixture_free(struct fixture *f);

static void fixture_new(struct fixture *f, bool pci)
{
	bm_region *root_mem, *root_io;

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < sizeof(f->ram); i++)
		f->ram[i] = (uint8_t)(i * 7 + 3);
	OK(bm_system_new(&f->sys));
	OK(bm_space_new(f->sys, "memory", "system", &f->mem));
	OK(bm_space_new(f->sys, "io", "io", &f->io));
	root_mem = bm_space_root(f->mem);
	root_io = bm_space_root(f->io);
	OK(bm_region_new_container(f->sys, "c0", 0x10000, &f->c0));
	OK(bm_region_add(root_mem, f->c0, 0x100000, 0));
	f->io1 = new_io(f, "io1", 0x100, 1);
	f->io2 = new_io(f, "io2", 0x100, 2);
	OK(bm_region_set_exclusive(f->io1, true));
	OK(bm_region_set_exclusive(f->io2, true));
	OK(bm_region_add(f->c0, f->io1, 0x1000, 0));
	OK(bm_region_add(f->c0, f->io2, 0x1080, 0)); /* hides io1's upper half: a conflict */
	OK(bm_region_new_ram(f->sys, "ram3", sizeof(f->ram), f->ram, &f->ram3));
	OK(bm_region_add(root_mem, f->ram3, 0x200000, 0));
	OK(bm_region_new_alias(f->sys, "alias4", f->c0, 0x1000, 0x200, &f->alias4));
	OK(bm_region_add(root_io, f->alias4, 0x3f8, 0));
	f->io5 = new_io(f, "io5", 0x40, 5);
	OK(bm_region_new_container(f->sys, "c6", 0x1000, &f->c6));
	/* enough neighbours that the lookup index has inner nodes to copy */
	OK(bm_region_new_container(f->sys, "bank", 0x100000, &f->bank));
	OK(bm_begin(f->sys));
	OK(bm_region_add(root_mem, f->bank, 0x4000000, 0));
	for (int i = 0; i < BANK_N; i++) {
		char name[8];
		snprintf(name, sizeof(name), "b%02d", i);
		f->b[i] = new_io(f, name, 0x100, 100 + (uintptr_t)i);
		OK(bm_region_add(f->bank, f->b[i], (uint64_t)i * 0x1000, 0));
	}
	OK(bm_commit(f->sys));
	OK(bm_listener_add(f->mem, mirror_fn, &f->mmem, &f->lmem));
	OK(bm_listener_add(f->io, mirror_fn, &f->mio, &f->lio));
	size_t nc = bm_space_conflicts(f->mem, f->cmem.v, 256);
	f->cmem.n = nc;
	OK(bm_space_set_conflict_ops(f->mem, &conflict_ops, &f->cmem));
	OK(bm_vcpu_new(f->sys, 0, NULL, &f->vcpu));
	if (pci)
		pci_fixture_new(f);
}

/* Returns a description of what went wrong, or NULL. */
static const char *fixture_free(struct fixture *f)
{
	static char why[128];

	if (f->txn && bm_commit(f->sys) != 0) {
		snprintf(why, sizeof(why), "the transaction around the call did not commit");
		return why;
	}
	if (f->pci)
		pci_fixture_free(f);
	if (f->made_vcpu)
		bm_vcpu_free(f->made_vcpu);
	bm_vcpu_free(f->vcpu);
	int rc = bm_system_free(f->sys);
	if (rc) {
		snprintf(why, sizeof(why), "bm_system_free returned %d afterwards", rc);
		return why;
	}
	return NULL;
}

/* ------------------------------------------------------------------ state */

static const char *name_of(const bm_region *r)
{
	return r ? bm_region_name(r) : "-";
}

static int flat_fn(void *arg, const struct bm_flat_range *r)
{
	struct mirror *m = arg;
	if (m->n < sizeof(m->v) / sizeof(m->v[0]))
		m->v[m->n++] = *r;
	return 0;
}

static bool mirror_eq(const struct mirror *a, const struct mirror *b)
{
	if (a->n != b->n || a->broken || b->broken)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!range_same(&a->v[i], &b->v[i]))
			return false;
	return true;
}

static void dump_stream(struct sbuf *b, const char *title, int (*dump)(bm_space *, FILE *),
                        bm_space *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	int rc = dump(s, f);
	fclose(f);
	/* the generation counts publications, which a failed call may add to harmlessly */
	char *g = text ? strstr(text, "\"generation\": ") : NULL;
	if (g) {
		char *end = g + strlen("\"generation\": ");
		while (*end >= '0' && *end <= '9')
			end++;
		memmove(g, end, strlen(end) + 1);
	}
	sb_printf(b, "[%s %s] rc %d\n%s", title, bm_space_name(s), rc, text ? text : "");
	free(text);
}

struct probes {
	uint64_t a[MAX_PROBES];
	size_t n;
	int space[MAX_PROBES];
};

static void probe_add(struct probes *p, int space, uint64_t a)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->a[i] == a && p->space[i] == space)
			return;
	if (p->n < MAX_PROBES) {
		p->space[p->n] = space;
		p->a[p->n++] = a;
	}
}

/* Both sides of the edges of every range of the published views. */
static void probes_from(struct probes *p, struct fixture *f)
{
	bm_space *sp[2] = {f->mem, f->io};
	for (int s = 0; s < 2; s++) {
		struct mirror *view = calloc(1, sizeof(*view));
		if (!view)
			abort();
		if (sp[s])
			bm_space_flat(sp[s], flat_fn, view);
		for (size_t i = 0; i < view->n; i++) {
			probe_add(p, s, view->v[i].start);
			probe_add(p, s, view->v[i].start - 1);
			probe_add(p, s, view->v[i].last);
			probe_add(p, s, view->v[i].last + 1);
		}
		free(view);
	}
}

static void space_state(struct sbuf *b, struct fixture *f, bm_space *s, struct mirror *lm,
                        struct cmirror *cm, bool conflict_events)
{
	struct mirror *view = calloc(1, sizeof(*view));
	struct bm_conflict conf[256];

	if (!view)
		abort();
	dump_stream(b, "mtree", bm_space_dump_mtree, s);
	dump_stream(b, "json", bm_space_dump_json, s);
	bm_space_flat(s, flat_fn, view);
	sb_printf(b, "[flat %s] %zu ranges\n", bm_space_name(s), view->n);
	for (size_t i = 0; i < view->n; i++)
		sb_printf(b, "  [%#" PRIx64 ", %#" PRIx64 "] %s +%#" PRIx64 "%s\n",
		          view->v[i].start, view->v[i].last, name_of(view->v[i].region),
		          view->v[i].offset, view->v[i].conflict ? " conflict" : "");
	size_t nc = bm_space_conflicts(s, conf, 256);
	sb_printf(b, "[conflicts %s] %zu\n", bm_space_name(s), nc);
	for (size_t i = 0; i < nc && i < 256; i++)
		sb_printf(b, "  [%#" PRIx64 ", %#" PRIx64 "] %s hides %s\n", conf[i].start,
		          conf[i].last, name_of(conf[i].winner), name_of(conf[i].loser));
	if (lm)
		sb_printf(b, "[listener %s] %s\n", bm_space_name(s),
		          mirror_eq(lm, view) ? "agrees with the view"
		                              : "events do not add up to the view");
	if (cm && conflict_events) {
		bool same = cm->n == nc && !cm->broken;
		for (size_t i = 0; same && i < nc; i++) {
			bool found = false;
			for (size_t k = 0; k < cm->n && !found; k++)
				found = !memcmp(&cm->v[k], &conf[i], sizeof(conf[i]));
			same = found;
		}
		sb_printf(b, "[conflict events %s] %s\n", bm_space_name(s),
		          same ? "agree with the conflicts" : "do not add up to the conflicts");
	}
	(void)f;
	free(view);
}

static void region_attrs(struct sbuf *b, const char *what, bm_region *r)
{
	sb_printf(b, "  %s: %s size %#" PRIx64 " off %#" PRIx64 " parent %s prio %d %s%s\n", what,
	          name_of(r), bm_region_size(r), bm_region_offset(r), name_of(bm_region_parent(r)),
	          bm_region_priority(r), bm_region_enabled(r) ? "on" : "off",
	          bm_region_exclusive(r) ? " exclusive" : "");
}

static void pci_state(struct sbuf *b, struct fixture *f);

static void dispatch_state(struct sbuf *b, struct fixture *f, const struct probes *p)
{
	bm_space *sp[2] = {f->mem, f->io};
	sb_printf(b, "[dispatch]\n");
	for (size_t i = 0; i < p->n; i++) {
		bm_space *s = sp[p->space[i]];
		uint64_t v1 = 0, v4 = 0;
		if (!s)
			continue;
		int r1 = bm_read(f->vcpu, s, p->a[i], 1, &v1);
		int r4 = bm_read(f->vcpu, s, p->a[i], 4, &v4);
		sb_printf(b, "  %s %#" PRIx64 ": %d %#" PRIx64 " / %d %#" PRIx64 "\n",
		          bm_space_name(s), p->a[i], r1, v1, r4, v4);
	}
}

static void state(struct sbuf *b, struct fixture *f, const struct probes *p)
{
	b->n = 0;
	sb_printf(b, "%s", "");
	space_state(b, f, f->mem, &f->mmem, &f->cmem, true);
	if (f->io)
		space_state(b, f, f->io, &f->mio, &f->cio, f->cio_on);
	if (f->made_listener)
		sb_printf(b, "[new listener] %s\n",
		          f->mnew.broken ? "events do not add up" : "consistent");
	sb_printf(b, "[regions]\n");
	region_attrs(b, "c0", f->c0);
	region_attrs(b, "io1", f->io1);
	if (f->io2)
		region_attrs(b, "io2", f->io2);
	region_attrs(b, "ram3", f->ram3);
	region_attrs(b, "alias4", f->alias4);
	region_attrs(b, "io5", f->io5);
	region_attrs(b, "c6", f->c6);
	for (int i = 0; i < BANK_N; i += 7)
		region_attrs(b, "bank", f->b[i]);
	dispatch_state(b, f, p);
	if (f->pci)
		pci_state(b, f);
}

/* ------------------------------------------------------------------ operations */

struct op {
	const char *name;
	bool pci;
	void (*prepare)(struct fixture *f); /* before the state is taken; may be NULL */
	int (*call)(struct fixture *f);
	int (*retry)(struct fixture *f); /* NULL: the call again */
};

static int op_new_io(struct fixture *f)
{
	return bm_region_new_io(f->sys, "new-io", 0x10, &io_ops, NULL, &f->made);
}

static int op_new_ram(struct fixture *f)
{
	return bm_region_new_ram(f->sys, "new-ram", 0x10, f->ram, &f->made);
}

static int op_new_container(struct fixture *f)
{
	return bm_region_new_container(f->sys, "new-c", 0x10, &f->made);
}

static int op_new_alias(struct fixture *f)
{
	return bm_region_new_alias(f->sys, "new-alias", f->c0, 0, 0x10, &f->made);
}

static int op_add(struct fixture *f)
{
	return bm_region_add(bm_space_root(f->mem), f->io5, 0x101040, 1);
}

static int op_add_crowded(struct fixture *f)
{
	return bm_region_add(f->bank, f->io5, 0x17f80, 0);
}

static int op_del(struct fixture *f)
{
	return bm_region_del(f->io1);
}

static int op_move(struct fixture *f)
{
	return bm_region_move(f->io2, 0x1000); /* onto io1: it now hides all of it */
}

static int op_move_bank(struct fixture *f)
{
	return bm_region_move(f->b[17], 0x30800);
}

static int op_enable(struct fixture *f)
{
	return bm_region_set_enabled(f->c0, false);
}

static int op_priority(struct fixture *f)
{
	return bm_region_set_priority(f->io1, 3);
}

static int op_resize(struct fixture *f)
{
	return bm_region_resize(f->io2, 0x200);
}

static int op_alias_offset(struct fixture *f)
{
	return bm_region_set_alias_offset(f->alias4, 0x1080);
}

static int op_exclusive(struct fixture *f)
{
	return bm_region_set_exclusive(f->io1, false);
}

static int op_destroy(struct fixture *f)
{
	int rc = bm_region_destroy(f->io2);
	if (rc == 0)
		f->io2 = NULL;
	return rc;
}

static int op_space_new(struct fixture *f)
{
	return bm_space_new(f->sys, "extra", "extra-root", &f->made_space);
}

static int op_space_free(struct fixture *f)
{
	int rc = bm_space_free(f->io);
	if (rc == 0)
		f->io = NULL;
	return rc;
}

static int op_listener_add(struct fixture *f)
{
	f->mnew = (struct mirror){.n = 0};
	return bm_listener_add(f->mem, mirror_fn, &f->mnew, &f->made_listener);
}

static int op_listener_remove(struct fixture *f)
{
	int rc = bm_listener_remove(f->lio);
	if (rc == 0) {
		f->lio = NULL;
		/* nothing tells it any more: it stands for the view as it was */
		f->mio.n = 0;
		bm_space_flat(f->io, flat_fn, &f->mio);
	}
	return rc;
}

static int op_conflict_ops(struct fixture *f)
{
	f->cio.n = bm_space_conflicts(f->io, f->cio.v, 256);
	int rc = bm_space_set_conflict_ops(f->io, &conflict_ops, &f->cio);
	f->cio_on = rc == 0;
	return rc;
}

/* Several changes, each of a different kind, published by one commit. */
static void prepare_commit(struct fixture *f)
{
	OK(bm_begin(f->sys));
	OK(bm_region_add(bm_space_root(f->mem), f->io5, 0x100f80, 0));
	OK(bm_region_move(f->io1, 0x1100));
	OK(bm_region_resize(f->io2, 0x40));
	OK(bm_region_set_enabled(f->alias4, false));
	OK(bm_region_move(f->b[5], 0x48000));
	OK(bm_region_del(f->ram3));
	OK(bm_region_set_priority(f->b[30], 2));
}

static int op_commit(struct fixture *f)
{
	return bm_commit(f->sys);
}

/* The failed commit closed the transaction; what it left dirty publishes at the next. */
static int retry_commit(struct fixture *f)
{
	int rc = bm_begin(f->sys);
	return rc ? rc : bm_commit(f->sys);
}

/* Inside a transaction the tree must roll back by itself: nothing is published yet. */
static void prepare_txn(struct fixture *f)
{
	OK(bm_begin(f->sys));
	f->txn = true;
}

static int op_vcpu_new(struct fixture *f)
{
	return bm_vcpu_new(f->sys, 1, NULL, &f->made_vcpu);
}

static int op_pci_bar_move(struct fixture *f);
static int op_pci_bar_move_ecam(struct fixture *f);
static int op_pci_window(struct fixture *f);
static int op_pci_command(struct fixture *f);
static void prepare_pci_cf8(struct fixture *f);
static int op_pci_cf8(struct fixture *f);
static int op_pci_bar64_high(struct fixture *f);
static int op_pci_rom(struct fixture *f);
static int op_pci_intx_disable(struct fixture *f);
static int op_pci_msix_unmask_all(struct fixture *f);
static int op_pci_msi_unmask(struct fixture *f);
static int op_pci_bus_numbers(struct fixture *f);
static int op_pci_bridge_command(struct fixture *f);
static void prepare_pci_overlap(struct fixture *f);
static int op_pci_under_overlap(struct fixture *f);

static const struct op ops[] = {
    {"bm_region_new_io", false, NULL, op_new_io, NULL},
    {"bm_region_new_ram", false, NULL, op_new_ram, NULL},
    {"bm_region_new_container", false, NULL, op_new_container, NULL},
    {"bm_region_new_alias", false, NULL, op_new_alias, NULL},
    {"bm_region_add", false, NULL, op_add, NULL},
    {"bm_region_add (crowded container)", false, NULL, op_add_crowded, NULL},
    {"bm_region_del", false, NULL, op_del, NULL},
    {"bm_region_move (onto an exclusive region)", false, NULL, op_move, NULL},
    {"bm_region_move (among 48 siblings)", false, NULL, op_move_bank, NULL},
    {"bm_region_set_enabled", false, NULL, op_enable, NULL},
    {"bm_region_set_priority", false, NULL, op_priority, NULL},
    {"bm_region_resize", false, NULL, op_resize, NULL},
    {"bm_region_set_alias_offset", false, NULL, op_alias_offset, NULL},
    {"bm_region_set_exclusive", false, NULL, op_exclusive, NULL},
    {"bm_region_destroy", false, NULL, op_destroy, NULL},
    {"bm_space_new", false, NULL, op_space_new, NULL},
    {"bm_space_free", false, NULL, op_space_free, NULL},
    {"bm_listener_add", false, NULL, op_listener_add, NULL},
    {"bm_listener_remove", false, NULL, op_listener_remove, NULL},
    {"bm_space_set_conflict_ops", false, NULL, op_conflict_ops, NULL},
    {"bm_commit (7 changes)", false, prepare_commit, op_commit, retry_commit},
    {"bm_vcpu_new", false, NULL, op_vcpu_new, NULL},
    {"bm_region_add (inside a transaction)", false, prepare_txn, op_add, NULL},
    {"bm_region_move (inside a transaction)", false, prepare_txn, op_move, NULL},
    {"bm_region_destroy (inside a transaction)", false, prepare_txn, op_destroy, NULL},
    {"bm_region_set_priority (inside a transaction)", false, prepare_txn, op_priority, NULL},
    {"PCI: BAR move by a configuration write", true, NULL, op_pci_bar_move, NULL},
    {"PCI: BAR move through ECAM", true, NULL, op_pci_bar_move_ecam, NULL},
    {"PCI: command register write (memory decode on)", true, NULL, op_pci_command, NULL},
    {"PCI: bridge memory window write", true, NULL, op_pci_window, NULL},
    {"PCI: BAR move through CF8/CFC", true, prepare_pci_cf8, op_pci_cf8, NULL},
    {"PCI: upper half of a 64-bit BAR (MSI-X inside)", true, NULL, op_pci_bar64_high, NULL},
    {"PCI: expansion ROM moved onto a bridge's BAR", true, NULL, op_pci_rom, NULL},
    {"PCI: command write (memory off, INTx disable)", true, NULL, op_pci_intx_disable, NULL},
    {"PCI: MSI-X function mask cleared (pending vector)", true, NULL, op_pci_msix_unmask_all, NULL},
    {"PCI: MSI vector unmasked (pending vector)", true, NULL, op_pci_msi_unmask, NULL},
    {"PCI: bridge bus numbers", true, NULL, op_pci_bus_numbers, NULL},
    {"PCI: bridge command write (all windows)", true, NULL, op_pci_bridge_command, NULL},
    {"PCI: BAR moved while BARs overlap", true, prepare_pci_overlap, op_pci_under_overlap, NULL},
    {"PCI: BAR move inside a transaction", true, prepare_txn, op_pci_bar_move, NULL},
};

/* ------------------------------------------------------------------ PCI */

#define ECAM_BASE 0xb0000000u

struct pci_fixture {
	bm_pci_host *host;
	bm_pci_func *ep2, *ep3, *bridge, *ep5, *ep10;
	unsigned msix_cap, msi_cap;
	/* What the map observer, the device hooks and the host hooks were told, in order:
	 * a failed write must tell nothing. */
	struct sbuf events;
};

static void log_map(void *arg, const struct bm_pci_map_event *ev)
{
	struct pci_fixture *p = arg;
	sb_printf(&p->events, "  observer: %02x:%02x.%x bar %u %s %#" PRIx64 "+%#" PRIx64 "\n",
	          ev->bus, ev->dev, ev->fn, ev->bar, ev->mapped ? "mapped" : "unmapped", ev->addr,
	          ev->size);
}

static void log_cfg_write(void *opaque, bm_pci_func *fn, unsigned reg, unsigned size,
                          uint32_t value)
{
	struct pci_fixture *p = opaque;
	sb_printf(&p->events, "  cfg_write: %s %#x/%u = %#x\n", bm_pci_func_name(fn), reg, size,
	          value);
}

static void log_bar_map(void *opaque, bm_pci_func *fn, unsigned bar, uint64_t addr, uint64_t size,
                        bool mapped)
{
	struct pci_fixture *p = opaque;
	sb_printf(&p->events, "  bar_map: %s bar %u %s %#" PRIx64 "+%#" PRIx64 "\n",
	          bm_pci_func_name(fn), bar, mapped ? "mapped" : "unmapped", addr, size);
}

static void log_msi(void *opaque, bm_pci_func *src, uint64_t addr, uint32_t data)
{
	struct pci_fixture *p = opaque;
	sb_printf(&p->events, "  msi: %s %#" PRIx64 " %#x\n", bm_pci_func_name(src), addr, data);
}

static void log_intx(void *opaque, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	struct pci_fixture *p = opaque;
	sb_printf(&p->events, "  intx: %s slot %u pin %u %d\n", bm_pci_func_name(src), slot, pin,
	          level);
}

static const struct bm_pci_func_ops logging_func_ops = {.cfg_write = log_cfg_write,
                                                        .bar_map = log_bar_map};
static const struct bm_pci_host_ops logging_host_ops = {.msi = log_msi, .intx = log_intx};

static bm_pci_func *pci_func(struct fixture *f, bm_pci_bus *bus, unsigned dev,
                             const struct bm_pci_func_desc *d)
{
	bm_pci_func *fn;
	OK(bm_pci_func_new(bus, dev, 0, d, &fn));
	return fn;
	(void)f;
}

static void cfg(bm_pci_func *fn, unsigned reg, unsigned size, uint32_t v)
{
	OK(bm_pci_func_cfg_write(fn, reg, size, v));
}

static void pci_fixture_new(struct fixture *f)
{
	struct pci_fixture *p = calloc(1, sizeof(*p));
	struct bm_pci_host_config hc = {
	    .mem = f->mem,
	    .io = f->io,
	    .cf8 = true,
	    .ecam = true,
	    .ecam_base = ECAM_BASE,
	    .ecam_bus_count = 16,
	    .mem_priority = -1,
	    .io_priority = -1,
	    .ops = &logging_host_ops,
	    .opaque = p,
	};
	if (!p)
		abort();
	f->pci = p;
	OK(bm_pci_host_new(f->sys, &hc, &p->host));
	OK(bm_pci_host_set_map_observer(p->host, log_map, p));
	bm_pci_bus *root = bm_pci_host_root_bus(p->host);
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1af4, .device_id = 0x1000, .class_code = 0x020000};
	d.bars[0] =
	    (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM32, .size = 0x1000, .ops = &io_ops};
	d.bars[1] = (struct bm_pci_bar_desc){
	    .type = BM_PCI_BAR_MEM64, .size = 0x4000, .prefetchable = true, .ops = &io_ops};
	d.bars[3] = (struct bm_pci_bar_desc){.type = BM_PCI_BAR_IO, .size = 0x20, .ops = &io_ops};
	d.rom = (struct bm_pci_bar_desc){.size = 0x800, .ops = &io_ops};
	d.intx_pin = 1;
	d.ops = &logging_func_ops;
	d.opaque = p;
	p->ep2 = pci_func(f, root, 2, &d);
	OK(bm_pci_func_add_msix(p->ep2, 4, 1, 0x2000, 1, 0x3000, &p->msix_cap));
	d.intx_pin = 0;
	d.ops = NULL;
	d.opaque = NULL;
	memset(d.bars, 0, sizeof(d.bars));
	d.rom.size = 0;
	d.bars[0] =
	    (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM32, .size = 0x2000, .ops = &io_ops};
	p->ep3 = pci_func(f, root, 3, &d);
	OK(bm_pci_func_add_msi(p->ep3, 4, false, true, &p->msi_cap));
	p->ep5 = pci_func(f, root, 5, &d);
	struct bm_pci_func_desc b = {.vendor_id = 0x1b36,
	                             .device_id = 0x0001,
	                             .class_code = 0x060400,
	                             .header = BM_PCI_HEADER_BRIDGE,
	                             .secondary_bus = 1,
	                             .subordinate_bus = 1,
	                             .bridge_pref64 = true};
	b.bars[0] =
	    (struct bm_pci_bar_desc){.type = BM_PCI_BAR_MEM32, .size = 0x100, .ops = &io_ops};
	p->bridge = pci_func(f, root, 4, &b);
	d.bars[0].size = 0x1000;
	p->ep10 = pci_func(f, bm_pci_func_secondary_bus(p->bridge), 0, &d);

	/* what firmware would have left */
	cfg(p->ep2, 0x10, 4, 0xc0000000);
	cfg(p->ep2, 0x14, 4, 0x00000000);
	cfg(p->ep2, 0x18, 4, 0x00000008);
	cfg(p->ep2, 0x1c, 4, 0x1000);
	cfg(p->ep2, 0x30, 4, 0xc0010001);
	cfg(p->ep2, 0x04, 2, 0x0003);
	cfg(p->ep3, 0x10, 4, 0xc0002000);
	cfg(p->ep3, 0x04, 2, 0x0002);
	cfg(p->ep5, 0x10, 4, 0xc0008000); /* decode left off */
	cfg(p->bridge, 0x10, 4, 0xc0020000);
	cfg(p->bridge, 0x20, 4, 0xc1f0c100);
	cfg(p->bridge, 0x04, 2, 0x0002);
	cfg(p->ep10, 0x10, 4, 0xc1000000);
	cfg(p->ep10, 0x04, 2, 0x0002);

	/* 00:02.0: MSI-X on with every vector masked by the function mask; vector 0's own
	 * mask off and a message pending; its INTx line up. */
	uint64_t table = 0x800000000ull + 0x2000;
	cfg(p->ep2, p->msix_cap + 2, 2, 0xc000);
	OK(bm_write(f->vcpu, f->mem, table, 4, 0xfee00000));
	OK(bm_write(f->vcpu, f->mem, table + 8, 4, 0x41));
	OK(bm_write(f->vcpu, f->mem, table + 12, 4, 0));
	if (bm_pci_msi_notify(p->ep2, 0) != 1) {
		fprintf(stderr, "MSI-X vector 0 was not held pending\n");
		exit(2);
	}
	OK(bm_pci_intx_set(p->ep2, true));
	/* 00:03.0: MSI on (4 vectors), vector 2 masked and pending. */
	cfg(p->ep3, p->msi_cap + 4, 4, 0xfee01000);
	cfg(p->ep3, p->msi_cap + 8, 2, 0x60);
	cfg(p->ep3, p->msi_cap + 0xc, 4, 0x4);
	cfg(p->ep3, p->msi_cap + 2, 2, 0x0021);
	if (bm_pci_msi_notify(p->ep3, 2) != 1) {
		fprintf(stderr, "MSI vector 2 was not held pending\n");
		exit(2);
	}
}

static void pci_fixture_free(struct fixture *f)
{
	int rc = bm_pci_host_free(f->pci->host);
	if (rc) {
		fprintf(stderr, "bm_pci_host_free returned %d\n", rc);
		exit(2);
	}
	sb_free(&f->pci->events);
	free(f->pci);
	f->pci = NULL;
}

static void pci_state(struct sbuf *b, struct fixture *f)
{
	sb_printf(b, "[pci events]\n%s", f->pci->events.s ? f->pci->events.s : "");
	sb_printf(b, "[pci]\n");
	for (bm_pci_func *fn = bm_pci_func_next(f->pci->host, NULL); fn;
	     fn = bm_pci_func_next(f->pci->host, fn)) {
		uint8_t bus, dev, func;
		bm_pci_func_bdf(fn, &bus, &dev, &func);
		sb_printf(b, "  %s at %02x:%02x.%x\n", bm_pci_func_name(fn), bus, dev, func);
		for (unsigned reg = 0; reg < BM_PCI_CFG_SIZE; reg += 16) {
			sb_printf(b, "    %03x:", reg);
			for (unsigned k = 0; k < 16; k += 4)
				sb_printf(b, " %08x", bm_pci_func_cfg_get(fn, reg + k, 4));
			sb_printf(b, "\n");
		}
		for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
			struct bm_pci_bar_info bi;
			if (bm_pci_bar_info(fn, i, &bi) != 0)
				continue;
			sb_printf(b,
			          "    bar%u: type %d size %#" PRIx64 " addr %#" PRIx64
			          " %s %#" PRIx64 " %s\n",
			          i, bi.type, bi.size, bi.addr,
			          bi.mapped ? "mapped at" : "unmapped", bi.mapped_addr,
			          name_of(bi.region));
		}
		for (int k = 0; bm_pci_func_is_bridge(fn) && k < 3; k++) {
			struct bm_pci_window w;
			bm_pci_bridge_window(fn, (enum bm_pci_window_kind)k, &w);
			sb_printf(b, "    window %d: %s [%#" PRIx64 ", %#" PRIx64 "]\n", k,
			          w.enabled ? "on" : "off", w.base, w.last);
		}
	}
}

static int op_pci_bar_move(struct fixture *f)
{
	/* 00:03.0's BAR onto 00:02.0's, both decoded */
	return bm_pci_cfg_write(f->pci->host, 0, 3, 0, 0x10, 4, 0xc0000000);
}

static int op_pci_bar_move_ecam(struct fixture *f)
{
	uint64_t reg = ECAM_BASE + (2u << 15) + 0x10;
	return bm_write(f->vcpu, f->mem, reg, 4, 0xc0002000);
}

static int op_pci_command(struct fixture *f)
{
	return bm_pci_cfg_write(f->pci->host, 0, 5, 0, 0x04, 2, 0x0002);
}

static int op_pci_window(struct fixture *f)
{
	return bm_pci_cfg_write(f->pci->host, 0, 4, 0, 0x20, 4, 0xc2f0c200);
}

/* The latch selects 00:03.0's BAR0; the data port write moves it. */
static void prepare_pci_cf8(struct fixture *f)
{
	OK(bm_write(f->vcpu, f->io, 0xcf8, 4, 0x80000000u | (3u << 11) | 0x10));
}

static int op_pci_cf8(struct fixture *f)
{
	return bm_write(f->vcpu, f->io, 0xcfc, 4, 0xc0004000);
}

/* 00:02.0's BAR1 (64-bit, with the MSI-X table and PBA inside) to 0x9_0000_0000. */
static int op_pci_bar64_high(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep2, 0x18, 4, 0x9);
}

static int op_pci_rom(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep2, 0x30, 4, 0xc0020001);
}

/* Unmaps BAR0, BAR1 and the ROM, keeps the I/O BAR, and keeps the line from the host. */
static int op_pci_intx_disable(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep2, 0x04, 2, 0x0401);
}

/* Clearing the function mask sends the pending vector: only after success. */
static int op_pci_msix_unmask_all(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep2, f->pci->msix_cap + 2, 2, 0x8000);
}

static int op_pci_msi_unmask(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep3, f->pci->msi_cap + 0xc, 4, 0);
}

/* Bus 1 becomes bus 2: the function behind the bridge answers as 02:00.0. */
static int op_pci_bus_numbers(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->bridge, 0x18, 4, 0x00020200);
}

/* Turning I/O decoding on re-places all three windows. */
static int op_pci_bridge_command(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->bridge, 0x04, 2, 0x0003);
}

/* 00:03.0's BAR0 onto 00:02.0's: it hides it. */
static void prepare_pci_overlap(struct fixture *f)
{
	cfg(f->pci->ep3, 0x10, 4, 0xc0000000);
}

/* 00:02.0's BAR0 moves within 00:03.0's and now hides its upper half. */
static int op_pci_under_overlap(struct fixture *f)
{
	return bm_pci_func_cfg_write(f->pci->ep2, 0x10, 4, 0xc0001000);
}

/* ------------------------------------------------------------------ the rule */

static bool verbose;
static unsigned long violations, absorbed, points;

/* An operation's violations, printed grouped by what differed once it is done. */
struct finding {
	unsigned long n;
	char msg[2048];
};
static struct finding *findings;
static size_t nfindings, findings_cap;

/* A state is a list of sections, each opened by a line "[name ...]". */
struct section {
	const char *head, *body, *end;
	size_t headlen;
};

static size_t sections(const char *s, struct section *out, size_t max)
{
	size_t n = 0;
	for (const char *p = s; *p;) {
		const char *eol = strchr(p, '\n');
		const char *next = eol ? eol + 1 : p + strlen(p);
		if (*p == '[' && n < max) {
			if (n)
				out[n - 1].end = p;
			out[n++] =
			    (struct section){p, next, NULL, (size_t)((eol ? eol : next) - p)};
		}
		p = next;
	}
	if (n)
		out[n - 1].end = s + strlen(s);
	return n;
}

/* The name of a section: its header up to the closing bracket. */
static size_t head_name(const struct section *x)
{
	const char *close = memchr(x->head, ']', x->headlen);
	return close ? (size_t)(close - x->head + 1) : x->headlen;
}

/* The line at p, from a little before focus (where it differs) on long lines. */
static void line_at(const char *p, const char *focus, const char *end, const char **line, int *len)
{
	while (p < focus && *p == ' ')
		p++;
	if (focus - p > 50)
		p = focus - 40;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	*line = p;
	*len = (int)((eol ? eol : end) - p);
	if (*len > 110)
		*len = 110;
}

/* Every section that differs, with its first differing line. */
static void differences(const char *a, const char *b, char *out, size_t len)
{
	static struct section sa[64], sb[64];
	size_t na = sections(a, sa, 64), nb = sections(b, sb, 64), used = 0;

	out[0] = 0;
	for (size_t i = 0; i < na && used + 1 < len; i++) {
		size_t hn = head_name(&sa[i]);
		const struct section *o = NULL;
		for (size_t k = 0; k < nb && !o; k++)
			if (head_name(&sb[k]) == hn && !memcmp(sb[k].head, sa[i].head, hn))
				o = &sb[k];
		int w = 0;
		if (!o) {
			w = snprintf(out + used, len - used, "%s%.*s is gone", used ? "; " : "",
			             (int)hn, sa[i].head);
		} else if ((size_t)(sa[i].end - sa[i].head) != (size_t)(o->end - o->head) ||
		           memcmp(sa[i].head, o->head, (size_t)(o->end - o->head)) != 0) {
			const char *pa = sa[i].head, *pb = o->head;
			while (pa < sa[i].end && pb < o->end && *pa == *pb)
				pa++, pb++;
			const char *fa = pa, *fb = pb;
			while (pa > sa[i].head && pa[-1] != '\n')
				pa--, pb--;
			const char *la, *lb;
			int na_, nb_;
			line_at(pa, fa, sa[i].end, &la, &na_);
			line_at(pb, fb, o->end, &lb, &nb_);
			w = snprintf(out + used, len - used, "%s%.*s \"%.*s\" became \"%.*s\"",
			             used ? "; " : "", (int)hn, sa[i].head, na_, la, nb_, lb);
		}
		if (w > 0)
			used += (size_t)w < len - used ? (size_t)w : len - used - 1;
	}
	for (size_t k = 0; k < nb && used + 1 < len; k++) {
		size_t hn = head_name(&sb[k]);
		bool found = false;
		for (size_t i = 0; i < na && !found; i++)
			found = head_name(&sa[i]) == hn && !memcmp(sa[i].head, sb[k].head, hn);
		if (!found) {
			int w = snprintf(out + used, len - used, "%s%.*s appeared",
			                 used ? "; " : "", (int)hn, sb[k].head);
			if (w > 0)
				used += (size_t)w < len - used ? (size_t)w : len - used - 1;
		}
	}
}

static void violation(const struct op *op, unsigned long n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(const struct op *op, unsigned long n, const char *fmt, ...)
{
	va_list ap;

	(void)op;
	violations++;
	if (nfindings == findings_cap) {
		findings_cap = findings_cap ? 2 * findings_cap : 64;
		findings = realloc(findings, findings_cap * sizeof(*findings));
		if (!findings)
			abort();
	}
	struct finding *fd = &findings[nfindings++];
	fd->n = n;
	va_start(ap, fmt);
	vsnprintf(fd->msg, sizeof(fd->msg), fmt, ap);
	va_end(ap);
}

/* One line per distinct difference, with the failing allocations that produce it. */
static void print_findings(const struct op *op)
{
	for (size_t i = 0; i < nfindings; i++) {
		if (!findings[i].msg[0])
			continue;
		printf("VIOLATION %s, allocation ", op->name);
		unsigned long first = 0, last = 0;
		bool open = false, any = false;
		for (size_t k = i; k < nfindings; k++) {
			if (strcmp(findings[k].msg, findings[i].msg) != 0 ||
			    (k > i && !findings[k].msg[0]))
				continue;
			unsigned long n = findings[k].n;
			if (open && n == last + 1) {
				last = n;
			} else {
				if (open)
					printf(first == last ? "%s%lu" : "%s%lu-%lu",
					       any ? ", " : "", first, last),
					    any = true;
				first = last = n;
				open = true;
			}
			if (k > i)
				findings[k].msg[0] = 0;
		}
		if (open)
			printf(first == last ? "%s%lu" : "%s%lu-%lu", any ? ", " : "", first, last);
		printf(" failing: %s\n", findings[i].msg);
		findings[i].msg[0] = 0;
	}
	nfindings = 0;
}

static void compare(const struct op *op, unsigned long n, const char *what, const struct sbuf *want,
                    const struct sbuf *got)
{
	char diff[1800];

	if (strcmp(want->s, got->s) == 0)
		return;
	differences(want->s, got->s, diff, sizeof(diff));
	violation(op, n, "%s: %s", what, diff);
	if (verbose)
		printf("---- expected\n%s---- got\n%s----\n", want->s, got->s);
}

static void run_op(const struct op *op)
{
	struct fixture *f = malloc(sizeof(*f));
	struct probes *p = calloc(1, sizeof(*p));
	struct sbuf ref = {0}, before = {0}, after = {0};
	unsigned long allocs;
	const char *why;

	if (!f || !p)
		abort();

	/* a run that never fails: how many allocations it makes and what it leaves */
	fixture_new(f, op->pci);
	if (op->prepare)
		op->prepare(f);
	probes_from(p, f);
	af_arm(0);
	int rc = op->call(f);
	allocs = af_disarm();
	if (rc != 0) {
		printf("ERROR %s returned %d without any allocation failing\n", op->name, rc);
		violations++;
	}
	probes_from(p, f);
	state(&ref, f, p);
	if ((why = fixture_free(f)))
		violation(op, 0, "%s", why);

	unsigned long bad_before = violations;
	for (unsigned long n = 1; n <= allocs; n++) {
		fixture_new(f, op->pci);
		if (op->prepare)
			op->prepare(f);
		state(&before, f, p);
		af_arm(n);
		rc = op->call(f);
		af_disarm();
		points++;
		if (!af_fired()) {
			violation(op, n, "the run made fewer allocations than the first (%lu)",
			          allocs);
		} else if (rc == 0) {
			/* the failure was absorbed: acceptable only if nothing shows it */
			state(&after, f, p);
			if (strcmp(after.s, ref.s) == 0) {
				absorbed++;
			} else {
				violation(op, n, "returned 0");
				compare(op, n, "and left something else than a successful call",
				        &ref, &after);
			}
		} else {
			state(&after, f, p);
			if (strcmp(after.s, before.s) != 0) {
				char head[64];
				snprintf(head, sizeof(head), "returned %d, but", rc);
				compare(op, n, head, &before, &after);
			}
			int rc2 = op->retry ? op->retry(f) : op->call(f);
			state(&after, f, p);
			if (rc2 != 0)
				violation(op, n, "returned %d, then the retry returned %d", rc,
				          rc2);
			else
				compare(op, n, "the retry succeeded but left", &ref, &after);
		}
		if ((why = fixture_free(f)))
			violation(op, n, "%s", why);
	}
	print_findings(op);
	printf("%-48s %3lu allocations: %s\n", op->name, allocs,
	       violations != bad_before ? "VIOLATIONS"
	       : allocs                 ? "every failure rolled back"
	                                : "nothing to fail");
	fflush(stdout);
	sb_free(&ref);
	sb_free(&before);
	sb_free(&after);
	free(p);
	free(f);
}

int main(void)
{
	const char *only = getenv("ALLOCFAIL_ONLY");
	const char *v = getenv("ALLOCFAIL_VERBOSE");

	verbose = v && *v && *v != '0';
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!only || strstr(ops[i].name, only))
			run_op(&ops[i]);
	printf("\n%lu (operation, failing allocation) pairs checked, %lu failures absorbed "
	       "without a trace, %lu violations\n",
	       points, absorbed, violations);
	return violations ? 1 : 0;
}
