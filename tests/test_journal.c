/* SPDX-License-Identifier: BSD-2-Clause */
/* Savepoints: rolling back every kind of region change, nesting, and their misuse. */
#include "journal.h"
#include "testutil.h"
#include <errno.h>
#include <stdio.h>

/* The tree as the mtree dump shows it (order among equal priorities included) followed by
 * the published view. */
static char *picture(struct env *e)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(bm_space_dump_mtree(e->mem, f), 0);
	struct flat fl = flat_of(e->mem);
	for (size_t i = 0; i < fl.n && i < 64; i++)
		fprintf(f, "%llx-%llx %s+%llx\n", (unsigned long long)fl.v[i].start,
		        (unsigned long long)fl.v[i].last, bm_region_name(fl.v[i].region),
		        (unsigned long long)fl.v[i].offset);
	fclose(f);
	return text;
}

static void count_events(void *arg, bm_space *space, const struct bm_flat_range *removed,
                         size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)space, (void)removed, (void)added;
	*(size_t *)arg += nremoved + nadded;
}

struct tree {
	bm_region *c, *a, *b, *x, *al, *box, *k1, *k2;
};

/* a and b overlap at one priority inside c, b the newer; an alias shows c elsewhere; box
 * holds two subregions. */
static struct tree build(struct env *e)
{
	struct tree t;
	t.c = new_container(e, "c", 0x10000);
	t.a = new_io(e, "a", 0x100, NULL);
	t.b = new_io(e, "b", 0x100, NULL);
	t.x = new_io(e, "x", 0x100, NULL);
	t.box = new_container(e, "box", 0x1000);
	t.k1 = new_io(e, "k1", 0x100, NULL);
	t.k2 = new_io(e, "k2", 0x100, NULL);
	assert_int_equal(bm_region_new_alias(e->sys, "al", t.c, 0, 0x2000, &t.al), 0);
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_region_add(e->root, t.c, 0x10000, 0), 0);
	assert_int_equal(bm_region_add(t.c, t.a, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(t.c, t.b, 0x1080, 0), 0);
	assert_int_equal(bm_region_add(e->root, t.al, 0x80000, 0), 0);
	assert_int_equal(bm_region_add(t.box, t.k1, 0, 0), 0);
	assert_int_equal(bm_region_add(t.box, t.k2, 0x800, 0), 0);
	assert_int_equal(bm_region_add(t.c, t.box, 0x4000, 0), 0);
	assert_int_equal(bm_commit(e->sys), 0);
	return t;
}

static void test_rollback_every_change(void **state)
{
	struct env *e = *state;
	struct tree t = build(e);
	size_t events = 0;
	bm_listener *l;
	assert_int_equal(bm_listener_add(e->mem, count_events, &events, &l), 0);
	events = 0;
	char *before = picture(e);

	struct bm_savepoint sp;
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &sp), 0);
	assert_int_equal(bm_region_move(t.a, 0x1000), 0); /* a becomes the newer */
	assert_int_equal(bm_region_add(t.c, t.x, 0x1040, 0), 0);
	assert_int_equal(bm_region_del(t.b), 0);
	assert_int_equal(bm_region_resize(t.a, 0x200), 0);
	assert_int_equal(bm_region_set_priority(t.x, 5), 0);
	assert_int_equal(bm_region_set_exclusive(t.a, true), 0);
	assert_int_equal(bm_region_set_alias_offset(t.al, 0x1000), 0);
	assert_int_equal(bm_region_resize(t.al, 0x100), 0);
	assert_int_equal(bm_region_set_enabled(t.c, false), 0);
	assert_int_equal(bm_region_destroy(t.box), 0);
	assert_int_equal(bm_region_move(t.b, 0), -ENOENT); /* refused: nothing recorded */
	bm_savepoint_rollback(e->sys, &sp);
	assert_int_equal(bm_commit(e->sys), 0);

	char *after = picture(e);
	assert_string_equal(before, after);
	assert_int_equal(events, 0); /* the view never changed */
	assert_ptr_equal(bm_region_parent(t.k1), t.box);
	assert_ptr_equal(bm_region_parent(t.box), t.c);
	assert_false(bm_region_exclusive(t.a));
	assert_null(bm_region_parent(t.x));
	/* The order among equal priorities is the old one: b still hides a's upper half. */
	struct flat f = flat_of(e->mem);
	assert_range(&f, 1, 0x11080, 0x1117f, t.b, 0);
	/* The destroyed region is whole again and can be destroyed for good. */
	assert_int_equal(bm_region_destroy(t.box), 0);
	free(before);
	free(after);
}

static void test_nested_release_then_rollback(void **state)
{
	struct env *e = *state;
	struct tree t = build(e);
	char *before = picture(e);
	struct bm_savepoint outer, inner;
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &outer), 0);
	assert_int_equal(bm_region_move(t.a, 0x2000), 0);
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &inner), 0);
	assert_int_equal(bm_region_move(t.b, 0x3000), 0);
	bm_savepoint_release(e->sys, &inner); /* b's move is now the outer's */
	assert_int_equal(bm_commit(e->sys), 0);
	bm_savepoint_rollback(e->sys, &outer);
	assert_int_equal(bm_commit(e->sys), 0);
	char *after = picture(e);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_inner_rollback_keeps_outer(void **state)
{
	struct env *e = *state;
	struct tree t = build(e);
	struct bm_savepoint outer, inner;
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &outer), 0);
	assert_int_equal(bm_region_move(t.a, 0x2000), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &inner), 0);
	assert_int_equal(bm_region_move(t.b, 0x3000), 0);
	assert_int_equal(bm_region_move(t.a, 0x5000), 0);
	bm_savepoint_rollback(e->sys, &inner);
	bm_savepoint_release(e->sys, &outer);
	assert_int_equal(bm_commit(e->sys), 0);
	assert_int_equal(bm_region_offset(t.a), 0x2000);
	assert_int_equal(bm_region_offset(t.b), 0x1080);
}

/* A region made inside a savepoint is its maker's: a rollback only unplaces it. */
static void test_region_made_inside_survives(void **state)
{
	struct env *e = *state;
	struct bm_savepoint sp;
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &sp), 0);
	bm_region *n = new_io(e, "n", 0x10, NULL);
	assert_int_equal(bm_region_add(e->root, n, 0x100, 0), 0);
	bm_savepoint_rollback(e->sys, &sp);
	assert_int_equal(bm_commit(e->sys), 0);
	assert_null(bm_region_parent(n));
	assert_int_equal(flat_of(e->mem).n, 0);
	assert_int_equal(bm_region_add(e->root, n, 0x100, 0), 0);
	assert_int_equal(flat_of(e->mem).n, 1);
}

static void test_publish_held(void **state)
{
	struct env *e = *state;
	struct tree t = build(e);
	struct bm_savepoint sp;
	assert_int_equal(bm_savepoint_open(e->sys, &sp), -EPERM); /* outside a transaction */
	assert_int_equal(bm_publish_held(e->sys, 1), -EPERM);
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_savepoint_open(e->sys, &sp), 0);
	assert_int_equal(bm_region_move(t.x, 0), -ENOENT);
	assert_int_equal(bm_region_add(e->root, t.x, 0x100, 0), 0);
	/* Inside a caller's transaction nothing publishes yet. */
	assert_int_equal(bm_begin(e->sys), 0);
	assert_int_equal(bm_transaction_depth(e->sys), 2);
	assert_int_equal(bm_publish_held(e->sys, 1), 0);
	struct flat f = flat_of(e->mem);
	assert_true(f.n == 0 || f.v[0].region != t.x);
	/* Unless the caller says both levels are its own. */
	assert_int_equal(bm_publish_held(e->sys, 2), 0);
	f = flat_of(e->mem);
	assert_ptr_equal(f.v[0].region, t.x);
	assert_int_equal(bm_region_move(t.x, 0x200), 0);
	assert_int_equal(bm_commit(e->sys), 0);
	f = flat_of(e->mem);
	assert_int_equal(f.v[0].start, 0x100);
	/* The outermost one publishes, and keeps the lock and the transaction. */
	assert_int_equal(bm_publish_held(e->sys, 1), 0);
	f = flat_of(e->mem);
	assert_ptr_equal(f.v[0].region, t.x);
	assert_int_equal(f.v[0].start, 0x200);
	bm_savepoint_release(e->sys, &sp);
	assert_int_equal(bm_commit(e->sys), 0);
	assert_int_equal(bm_commit(e->sys), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rollback_every_change, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_release_then_rollback, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_inner_rollback_keeps_outer, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_region_made_inside_survives, env_setup,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_publish_held, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
