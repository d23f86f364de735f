/* SPDX-License-Identifier: BSD-2-Clause */
/* The rendering rules, transactions, listeners, conflicts and every misuse error. */
#include "testutil.h"
#include <errno.h>
#include <pthread.h>

static void test_priority_among_siblings(void **state)
{
	struct env *e = *state;
	bm_region *a = new_io(e, "a", 0x1000, NULL), *b = new_io(e, "b", 0x1000, NULL);
	assert_int_equal(bm_region_add(e->root, b, 0x1800, 1), 0);
	assert_int_equal(bm_region_add(e->root, a, 0x1000, 0), 0); /* newer, but lower */
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 2);
	assert_range(&f, 0, 0x1000, 0x17ff, a, 0);
	assert_range(&f, 1, 0x1800, 0x27ff, b, 0);
}

static void test_equal_priority_newest_wins(void **state)
{
	struct env *e = *state;
	bm_region *a = new_io(e, "a", 0x100, NULL), *b = new_io(e, "b", 0x100, NULL);
	assert_int_equal(bm_region_add(e->root, a, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(e->root, b, 0x1080, 0), 0);
	struct flat f = flat_of(e->mem);
	assert_range(&f, 0, 0x1000, 0x107f, a, 0);
	assert_range(&f, 1, 0x1080, 0x117f, b, 0);
	/* Moving a, even to where it already is, makes it the newest. */
	assert_int_equal(bm_region_move(a, 0x1000), 0);
	f = flat_of(e->mem);
	assert_int_equal(f.n, 2);
	assert_range(&f, 0, 0x1000, 0x10ff, a, 0);
	assert_range(&f, 1, 0x1100, 0x117f, b, 0x80);
}

static void test_hierarchical_priority(void **state)
{
	struct env *e = *state;
	bm_region *c = new_container(e, "c", 0x10000);
	bm_region *x = new_io(e, "x", 0x1000, NULL), *y = new_io(e, "y", 0x1000, NULL);
	assert_int_equal(bm_region_add(c, x, 0, 100), 0);
	assert_int_equal(bm_region_add(e->root, c, 0x10000, 0), 0);
	assert_int_equal(bm_region_add(e->root, y, 0x10800, 1), 0);
	struct flat f = flat_of(e->mem);
	/* x's priority 100 counts only inside c; c (0) loses to y (1). */
	assert_int_equal(f.n, 2);
	assert_range(&f, 0, 0x10000, 0x107ff, x, 0);
	assert_range(&f, 1, 0x10800, 0x117ff, y, 0);
}

static void test_transparent_container(void **state)
{
	struct env *e = *state;
	bm_region *low = new_io(e, "low", 0x10000, NULL);
	bm_region *c = new_container(e, "c", 0x10000), *x = new_io(e, "x", 0x100, NULL);
	assert_int_equal(bm_region_add(c, x, 0x100, 0), 0);
	assert_int_equal(bm_region_add(e->root, low, 0, 0), 0);
	assert_int_equal(bm_region_add(e->root, c, 0, 10), 0);
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 3);
	assert_range(&f, 0, 0, 0xff, low, 0);
	assert_range(&f, 1, 0x100, 0x1ff, x, 0);
	assert_range(&f, 2, 0x200, 0xffff, low, 0x200);
}

static void test_disabled_invisible(void **state)
{
	struct env *e = *state;
	bm_region *low = new_io(e, "low", 0x1000, NULL), *top = new_io(e, "top", 0x1000, NULL);
	assert_int_equal(bm_region_add(e->root, low, 0, 0), 0);
	assert_int_equal(bm_region_add(e->root, top, 0, 1), 0);
	assert_int_equal(bm_region_set_enabled(top, false), 0);
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 1);
	assert_ptr_equal(f.v[0].region, low);
	assert_int_equal(bm_region_set_enabled(top, true), 0);
	f = flat_of(e->mem);
	assert_int_equal(f.n, 1);
	assert_ptr_equal(f.v[0].region, top);
}

static void test_alias_offsets(void **state)
{
	struct env *e = *state;
	bm_region *dev = new_io(e, "dev", 0x100, NULL);
	bm_region *win = new_container(e, "pci", BM_SIZE_ALL);
	assert_int_equal(bm_region_add(win, dev, 0x80001000, 0), 0);
	bm_region *alias;
	/* A window of the PCI space, as a host bridge maps its MMIO aperture. */
	assert_int_equal(
	    bm_region_new_alias(e->sys, "pci-mmio", win, 0x80000000, 0x10000000, &alias), 0);
	assert_int_equal(bm_region_add(e->root, alias, 0x10000000, 0), 0);
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 1);
	assert_range(&f, 0, 0x10001000, 0x100010ff, dev, 0);
	/* A change under the aliased container shows through. */
	assert_int_equal(bm_region_move(dev, 0x80002010), 0);
	f = flat_of(e->mem);
	assert_range(&f, 0, 0x10002010, 0x1000210f, dev, 0);
	/* Alias of a leaf, looking at its middle. */
	bm_region *leaf = new_io(e, "leaf", 0x100, NULL), *la;
	assert_int_equal(bm_region_new_alias(e->sys, "la", leaf, 0x10, 0x20, &la), 0);
	assert_int_equal(bm_region_add(e->root, la, 0x5000, 0), 0);
	f = flat_of(e->mem);
	assert_range(&f, 0, 0x5000, 0x501f, leaf, 0x10);
	assert_int_equal(bm_region_set_alias_offset(la, 0xf0), 0);
	f = flat_of(e->mem);
	assert_range(&f, 0, 0x5000, 0x500f, leaf, 0xf0); /* clipped at leaf's end */
	assert_int_equal(bm_region_destroy(leaf), -EBUSY);
	assert_int_equal(bm_region_destroy(la), 0);
	assert_int_equal(bm_region_destroy(leaf), 0);
}

static void test_departed_region_uncovers(void **state)
{
	struct env *e = *state;
	bm_region *low = new_io(e, "low", 0x1000, NULL), *top = new_io(e, "top", 0x100, NULL);
	assert_int_equal(bm_region_add(e->root, low, 0, 0), 0);
	assert_int_equal(bm_region_add(e->root, top, 0x800, 0), 0);
	assert_int_equal(flat_of(e->mem).n, 3);
	assert_int_equal(bm_region_del(top), 0);
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 1); /* the view is simplified: one range again */
	assert_range(&f, 0, 0, 0xfff, low, 0);
}

/* An MSI-X table over its BAR: the other everyday use of priorities. */
static void test_overlay_by_priority(void **state)
{
	struct env *e = *state;
	bm_region *bar = new_container(e, "bar", 0x1000);
	bm_region *regs = new_io(e, "regs", 0x1000, NULL), *table = new_io(e, "table", 0x40, NULL);
	assert_int_equal(bm_region_add(bar, table, 0x800, 1), 0);
	assert_int_equal(bm_region_add(bar, regs, 0, 0), 0);
	assert_int_equal(bm_region_add(e->root, bar, 0x10000, 0), 0);
	struct flat f = flat_of(e->mem);
	assert_int_equal(f.n, 3);
	assert_range(&f, 0, 0x10000, 0x107ff, regs, 0);
	assert_range(&f, 1, 0x10800, 0x1083f, table, 0);
	assert_range(&f, 2, 0x10840, 0x10fff, regs, 0x840);
	/* Only containers hold subregions. */
	bm_region *x = new_io(e, "x", 0x10, NULL);
	assert_int_equal(bm_region_add(regs, x, 0, 0), -ENOTDIR);
}

/* Disabled means invisible however the region is reached. */
static void test_disabled_alias_target_and_root(void **state)
{
	struct env *e = *state;
	bm_region *t = new_io(e, "t", 0x100, NULL), *a;
	assert_int_equal(bm_region_new_alias(e->sys, "a", t, 0x10, 0x20, &a), 0);
	assert_int_equal(bm_region_add(e->root, a, 0x1000, 0), 0);
	assert_int_equal(flat_of(e->mem).n, 1);
	assert_int_equal(bm_region_set_enabled(t, false), 0);
	assert_int_equal(flat_of(e->mem).n, 0);
	assert_int_equal(bm_region_set_enabled(t, true), 0);
	assert_int_equal(bm_region_set_enabled(e->root, false), 0);
	assert_int_equal(flat_of(e->mem).n, 0);
	assert_int_equal(bm_region_set_enabled(e->root, true), 0);
	assert_int_equal(flat_of(e->mem).n, 1);
}

/* Teardown must not depend on the order aliases and spaces go away. */
static void test_system_free_with_alias_of_root(void **state)
{
	(void)state;
	bm_system *sys;
	bm_space *sp;
	bm_region *a;
	assert_int_equal(bm_system_new(&sys), 0);
	assert_int_equal(bm_space_new(sys, "s", "root", &sp), 0);
	assert_int_equal(bm_region_new_alias(sys, "a", bm_space_root(sp), 0, 0x1000, &a), 0);
	assert_int_equal(bm_space_free(sp), -EBUSY);
	assert_int_equal(bm_system_free(sys), 0);
}

static void test_resize_and_clip(void **state)
{
	struct env *e = *state;
	bm_region *c = new_container(e, "c", 0x100), *x = new_io(e, "x", 0x80, NULL);
	assert_int_equal(bm_region_add(c, x, 0xc0, 0), 0);
	assert_int_equal(bm_region_add(e->root, c, 0x1000, 0), 0);
	struct flat f = flat_of(e->mem);
	assert_range(&f, 0, 0x10c0, 0x10ff, x, 0); /* clipped by its container */
	assert_int_equal(bm_region_resize(c, 0x200), 0);
	f = flat_of(e->mem);
	assert_range(&f, 0, 0x10c0, 0x113f, x, 0);
	assert_int_equal(bm_region_resize(x, 0x10), 0);
	f = flat_of(e->mem);
	assert_range(&f, 0, 0x10c0, 0x10cf, x, 0);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	bm_region *r = NULL, *c = new_container(e, "c", 0x1000), *d = new_container(e, "d", 0x100);
	assert_int_equal(bm_region_new_io(e->sys, "z", 0, &probe_ops, NULL, &r), -EINVAL);
	assert_int_equal(bm_region_new_io(NULL, "z", 1, &probe_ops, NULL, &r), -EINVAL);
	assert_int_equal(bm_region_new_io(e->sys, "z", 1, NULL, NULL, &r), -EINVAL);
	assert_int_equal(bm_region_new_io(e->sys, "z", 1, &probe_ops, NULL, NULL), -EINVAL);
	assert_int_equal(bm_region_new_ram(e->sys, "z", 1, NULL, &r), -EINVAL);
	assert_int_equal(bm_region_new_container(e->sys, "z", 0, &r), -EINVAL);
	assert_int_equal(bm_region_new_alias(e->sys, "z", NULL, 0, 1, &r), -EINVAL);
	bm_region *x = new_io(e, "x", 0x10, NULL);
	assert_int_equal(bm_region_add(e->root, x, UINT64_MAX - 0xe, 0), -ERANGE);
	assert_int_equal(bm_region_add(e->root, x, UINT64_MAX - 0xf, 0), 0); /* ends at 2^64-1 */
	assert_int_equal(bm_region_add(c, x, 0, 0), -EEXIST);
	assert_int_equal(bm_region_move(x, UINT64_MAX), -ERANGE);
	assert_int_equal(bm_region_resize(x, 0x20), -ERANGE);
	assert_int_equal(bm_region_del(x), 0);
	assert_int_equal(bm_region_del(x), -ENOENT);
	assert_int_equal(bm_region_move(x, 0), -ENOENT);
	assert_int_equal(bm_region_add(c, d, 0, 0), 0);
	assert_int_equal(bm_region_add(d, c, 0, 0), -ELOOP); /* into its own descendant */
	assert_int_equal(bm_region_add(c, c, 0, 0), -ELOOP);
	bm_region *a;
	assert_int_equal(bm_region_new_alias(e->sys, "a", c, 0, 0x100, &a), 0);
	assert_int_equal(bm_region_add(d, a, 0, 0), -ELOOP); /* c would show itself */
	bm_region *b;
	assert_int_equal(bm_region_new_alias(e->sys, "b", a, 0, 0x100, &b), 0);
	assert_int_equal(bm_region_add(c, b, 0x200, 0), -ELOOP); /* loop of aliases */
	assert_int_equal(bm_region_add(a, x, 0, 0), -ENOTDIR);
	assert_int_equal(bm_region_add(NULL, x, 0, 0), -EINVAL);
	assert_int_equal(bm_region_add(c, NULL, 0, 0), -EINVAL);
	assert_int_equal(bm_region_del(NULL), -EINVAL);
	assert_int_equal(bm_region_add(c, e->root, 0, 0), -EINVAL);
	assert_int_equal(bm_region_set_alias_offset(x, 0), -EINVAL);
	assert_int_equal(bm_region_resize(x, 0), -EINVAL);
	assert_int_equal(bm_commit(e->sys), -EPERM);
	bm_system *other;
	assert_int_equal(bm_system_new(&other), 0);
	bm_region *y;
	assert_int_equal(bm_region_new_io(other, "y", 1, &probe_ops, NULL, &y), 0);
	assert_int_equal(bm_region_add(c, y, 0, 0), -EXDEV);
	assert_int_equal(bm_system_free(other), 0);
}

static unsigned publications;
static size_t last_removed, last_added;

static void count_listener(void *arg, bm_space *space, const struct bm_flat_range *removed,
                           size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)arg;
	(void)space;
	(void)removed;
	(void)added;
	publications++;
	last_removed = nremoved;
	last_added = nadded;
}

static void test_transactions_publish_once(void **state)
{
	struct env *e = *state;
	bm_region *r[4];
	for (int i = 0; i < 4; i++)
		r[i] = new_io(e, "r", 0x100, NULL);
	publications = 0;
	bm_listener *l;
	assert_int_equal(bm_listener_add(e->mem, count_listener, NULL, &l), 0);
	assert_int_equal(publications, 0); /* the view was empty: nothing to replay */
	uint64_t gen0 = bm_space_flat(e->mem, flat_collect, &(struct flat){.n = 0});
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_begin(e->sys), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bm_region_add(e->root, r[i], 0x1000 * (i + 1), 0), 0);
	assert_int_equal(bm_commit(e->sys), 0);
	assert_int_equal(flat_of(e->mem).n, 0); /* not yet published */
	assert_int_equal(bm_commit(e->sys), 0);
	assert_int_equal(publications, 1);
	assert_int_equal(last_added, 4);
	assert_int_equal(last_removed, 0);
	uint64_t gen1 = bm_space_flat(e->mem, flat_collect, &(struct flat){.n = 0});
	assert_int_equal(gen1, gen0 + 1);
	/* A moved region leaves one range and brings one. */
	assert_int_equal(bm_region_move(r[0], 0x8000), 0);
	assert_int_equal(publications, 2);
	assert_int_equal(last_removed, 1);
	assert_int_equal(last_added, 1);
	assert_int_equal(bm_listener_remove(l), 0);
}

static bm_space *reentry_space;
static int reentry_result;

static void reentrant_listener(void *arg, bm_space *space, const struct bm_flat_range *removed,
                               size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)space;
	(void)removed;
	(void)nremoved;
	(void)added;
	(void)nadded;
	reentry_result = bm_region_move(arg, 0);
}

static void test_listener_may_not_change_map(void **state)
{
	struct env *e = *state;
	bm_region *r = new_io(e, "r", 0x100, NULL);
	bm_listener *l;
	reentry_space = e->mem;
	assert_int_equal(bm_region_add(e->root, r, 0x100, 0), 0);
	assert_int_equal(bm_listener_add(e->mem, reentrant_listener, r, &l), 0);
	assert_int_equal(reentry_result, -EDEADLK);
	assert_int_equal(bm_region_offset(r), 0x100);
}

struct seen {
	unsigned added, removed, accesses;
	struct bm_conflict last;
};

static void on_change(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	(void)space;
	struct seen *s = arg;
	if (added)
		s->added++;
	else
		s->removed++;
	s->last = *c;
}

static void on_access(void *arg, bm_space *space, bm_vcpu *vcpu, uint64_t addr, unsigned size,
                      bool is_write)
{
	(void)space;
	(void)vcpu;
	(void)addr;
	(void)size;
	(void)is_write;
	((struct seen *)arg)->accesses++;
}

static void test_conflicts(void **state)
{
	struct env *e = *state;
	struct seen seen = {0};
	struct bm_conflict_ops ops = {on_change, on_access};
	assert_int_equal(bm_space_set_conflict_ops(e->mem, &ops, &seen), 0);
	struct probe pa = {.id = 1}, pb = {.id = 2};
	bm_region *a = new_io(e, "a", 0x80, &pa), *b = new_io(e, "b", 0x40, &pb);
	bm_region *plain = new_io(e, "plain", 0x1000, NULL);
	assert_int_equal(bm_region_set_exclusive(a, true), 0);
	assert_int_equal(bm_region_set_exclusive(b, true), 0);
	assert_int_equal(bm_region_add(e->root, plain, 0x10000, 0), 0);
	assert_int_equal(bm_region_add(e->root, a, 0x10000, 0), 0);
	assert_int_equal(bm_space_conflicts(e->mem, NULL, 0), 0); /* plain is not exclusive */
	assert_int_equal(bm_region_add(e->root, b, 0x10020, 0), 0);
	struct bm_conflict c[2];
	assert_int_equal(bm_space_conflicts(e->mem, c, 2), 1);
	assert_ptr_equal(c[0].winner, b);
	assert_ptr_equal(c[0].loser, a);
	assert_int_equal(c[0].start, 0x10020);
	assert_int_equal(c[0].last, 0x1005f);
	assert_int_equal(seen.added, 1);
	/* The map still follows the rules: b, the newest, answers in the overlap. */
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x10030, 1, &v), BM_ACCESS_CONFLICT);
	assert_int_equal(pb.reads, 1);
	assert_int_equal(pb.last_offset, 0x10);
	assert_int_equal(seen.accesses, 1);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x10010, 1, &v), 0);
	assert_int_equal(pa.reads, 1);
	struct bm_vcpu_stats st;
	bm_vcpu_stats(e->vcpu, &st);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(bm_region_del(b), 0);
	assert_int_equal(bm_space_conflicts(e->mem, NULL, 0), 0);
	assert_int_equal(seen.removed, 1);
	assert_int_equal(bm_space_set_conflict_ops(e->mem, NULL, NULL), 0);
}

static void test_ram_region(void **state)
{
	struct env *e = *state;
	uint8_t host[0x100] = {0};
	bm_region *ram;
	assert_int_equal(bm_region_new_ram(e->sys, "ram", sizeof(host), host, &ram), 0);
	assert_int_equal(bm_region_add(e->root, ram, 0x4000, 0), 0);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x4010, 4, 0x11223344), 0);
	assert_int_equal(host[0x10], 0x44);
	assert_int_equal(host[0x13], 0x11);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x4011, 2, &v), 0);
	assert_int_equal(v, 0x2233);
	assert_int_equal(bm_region_kind(ram), BM_REGION_RAM);
}

/* A region destroyed inside an open transaction is still in the published view, and a dump
 * of that view must still name it: the name goes with the region, after the next
 * publication's grace period. */
static void test_destroyed_region_named_until_published(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	bm_region *r = new_io(e, "doomed", 0x10, &p);
	assert_int_equal(bm_region_add(e->root, r, 0x100, 0), 0);
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_region_destroy(r), 0);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(bm_space_dump_flat(e->mem, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "(prio 0, i/o): doomed"));
	free(text);
	assert_int_equal(bm_commit(e->sys), 0);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x100, 1, &v), BM_ACCESS_UNASSIGNED);
}

/* ---- bm_defer ---- */

/* A caller's object handed to bm_defer; the test waits for its call without a timeout. */
struct deferred_obj {
	struct bm_deferred d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	struct env *e;
	bm_region *r;
	int calls_seen_in_callback;
};

static void deferred_obj_init(struct deferred_obj *o, struct env *e)
{
	*o = (struct deferred_obj){.e = e};
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
}

static void deferred_ran(struct bm_deferred *d)
{
	struct deferred_obj *o = (struct deferred_obj *)d;
	pthread_mutex_lock(&o->mu);
	o->calls++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static int deferred_calls(struct deferred_obj *o)
{
	pthread_mutex_lock(&o->mu);
	int n = o->calls;
	pthread_mutex_unlock(&o->mu);
	return n;
}

static void deferred_wait(struct deferred_obj *o)
{
	pthread_mutex_lock(&o->mu);
	while (o->calls == 0)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
}

static void deferred_obj_fini(struct deferred_obj *o)
{
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
}

/* Under QSBR an online vCPU thread that reports nothing holds up every grace period, so
 * the call cannot have run until the thread goes offline. */
static void test_defer_waits_for_readers(void **state)
{
	struct env *e = *state;
	struct deferred_obj o;
	deferred_obj_init(&o, e);
	assert_int_equal(bm_defer(e->sys, &o.d, deferred_ran), 0);
	assert_int_equal(deferred_calls(&o), 0);
	assert_int_equal(bm_vcpu_offline(e->vcpu), 0);
	deferred_wait(&o);
	assert_int_equal(bm_vcpu_online(e->vcpu), 0);
	assert_int_equal(deferred_calls(&o), 1);
	deferred_obj_fini(&o);
}

/* A callback removes its own region and hands over the state it is still using. */
static int self_removing_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                              uint64_t *value)
{
	(void)vcpu;
	(void)offset;
	(void)size;
	struct deferred_obj *o = opaque;
	assert_int_equal(bm_region_destroy(o->r), 0);
	assert_int_equal(bm_defer(o->e->sys, &o->d, deferred_ran), 0);
	o->calls_seen_in_callback = deferred_calls(o);
	*value = 0x5a;
	return 0;
}

static void test_defer_inside_callback(void **state)
{
	struct env *e = *state;
	static const struct bm_region_ops ops = {.read = self_removing_read};
	struct deferred_obj o;
	deferred_obj_init(&o, e);
	assert_int_equal(bm_region_new_io(e->sys, "self", 0x10, &ops, &o, &o.r), 0);
	assert_int_equal(bm_region_add(e->root, o.r, 0x100, 0), 0);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x100, 1, &v), 0);
	assert_int_equal(v, 0x5a);
	assert_int_equal(o.calls_seen_in_callback, 0);
	deferred_wait(&o);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x100, 1, &v), BM_ACCESS_UNASSIGNED);
	deferred_obj_fini(&o);
}

/* Handed over inside a transaction: the call waits for the commit, then runs once. */
static void test_defer_inside_transaction(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	struct deferred_obj o;
	deferred_obj_init(&o, e);
	bm_region *r = new_io(e, "dev", 0x10, &p);
	assert_int_equal(bm_region_add(e->root, r, 0x100, 0), 0);
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_region_destroy(r), 0);
	assert_int_equal(bm_defer(e->sys, &o.d, deferred_ran), 0);
	assert_int_equal(bm_commit(e->sys), 0);
	deferred_wait(&o);
	assert_int_equal(deferred_calls(&o), 1);
	deferred_obj_fini(&o);
}

/* bm_system_free runs what is still pending, so nothing handed over leaks. */
static void test_defer_pending_at_free(void **state)
{
	(void)state;
	bm_system *sys;
	struct deferred_obj o;
	deferred_obj_init(&o, NULL);
	assert_int_equal(bm_system_new(&sys), 0);
	assert_int_equal(bm_defer(sys, &o.d, deferred_ran), 0);
	assert_int_equal(bm_system_free(sys), 0);
	assert_int_equal(o.calls, 1);
	assert_int_equal(bm_defer(NULL, &o.d, deferred_ran), -EINVAL);
	deferred_obj_fini(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_priority_among_siblings, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_equal_priority_newest_wins, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_hierarchical_priority, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_transparent_container, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_disabled_invisible, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_alias_offsets, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_departed_region_uncovers, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_overlay_by_priority, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_disabled_alias_target_and_root, env_setup,
	                                    env_teardown),
	    cmocka_unit_test(test_system_free_with_alias_of_root),
	    cmocka_unit_test_setup_teardown(test_resize_and_clip, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_errors, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_transactions_publish_once, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_listener_may_not_change_map, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_conflicts, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_ram_region, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_destroyed_region_named_until_published, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_defer_waits_for_readers, env_setup_qsbr,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_defer_inside_callback, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_defer_inside_transaction, env_setup, env_teardown),
	    cmocka_unit_test(test_defer_pending_at_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
