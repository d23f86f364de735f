/* SPDX-License-Identifier: BSD-2-Clause */
/* Dispatch: sizes, splitting, unassigned space, valid and implemented sizes, the hint,
 * counters, callbacks that change the map. */
#include "testutil.h"
#include <errno.h>

static void test_sizes_reach_callback(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	bm_region *r = new_io(e, "r", 0x100, &p);
	assert_int_equal(bm_region_add(e->root, r, 0x1000, 0), 0);
	for (unsigned size = 1; size <= 8; size *= 2) {
		uint64_t val = 0x0102030405060708ull & (size == 8 ? ~0ull : (1ull << 8 * size) - 1);
		assert_int_equal(bm_write(e->vcpu, e->mem, 0x1010, size, val), 0);
		assert_int_equal(p.last_offset, 0x10);
		assert_int_equal(p.last_size, size);
		assert_int_equal(p.last_value, val);
		uint64_t got = 0;
		assert_int_equal(bm_read(e->vcpu, e->mem, 0x1010, size, &got), 0);
		assert_int_equal(got, val);
	}
	assert_int_equal(p.mem[0x10], 0x08); /* little-endian */
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1010, 3, &v), -EINVAL);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1010, 16, &v), -EINVAL);
	assert_int_equal(bm_read(NULL, e->mem, 0x1010, 1, &v), -EINVAL);
	assert_int_equal(bm_read(e->vcpu, NULL, 0x1010, 1, &v), -EINVAL);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1010, 1, NULL), -EINVAL);
}

static void test_split_across_regions(void **state)
{
	struct env *e = *state;
	struct probe a = {0}, b = {0};
	bm_region *ra = new_io(e, "a", 0x10, &a), *rb = new_io(e, "b", 0x10, &b);
	assert_int_equal(bm_region_add(e->root, ra, 0x2000, 0), 0);
	assert_int_equal(bm_region_add(e->root, rb, 0x2010, 0), 0);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x200e, 4, 0xddccbbaa), 0);
	assert_int_equal(a.mem[0xe], 0xaa);
	assert_int_equal(a.mem[0xf], 0xbb);
	assert_int_equal(b.mem[0x0], 0xcc);
	assert_int_equal(b.mem[0x1], 0xdd);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x200e, 4, &v), 0);
	assert_int_equal(v, 0xddccbbaa);
}

static void test_unassigned(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	bm_region *r = new_io(e, "r", 0x10, &p);
	assert_int_equal(bm_region_add(e->root, r, 0x3000, 0), 0);
	uint64_t v = 0;
	bm_access_result ret = bm_read(e->vcpu, e->mem, 0x9000, 4, &v);
	assert_int_equal(ret, BM_ACCESS_UNASSIGNED);
	assert_false(bm_failed(ret)); /* an access carried out, not an error */
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x9000, 8, 1), BM_ACCESS_UNASSIGNED);
	assert_true(bm_failed(bm_read(e->vcpu, e->mem, 0x9000, 3, &v)));
	/* Half inside: the assigned half is carried out, the rest reads as ones. */
	p.mem[0xe] = 0x12;
	p.mem[0xf] = 0x34;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x300e, 4, &v), BM_ACCESS_UNASSIGNED);
	assert_int_equal(v, 0xffff3412);
	/* Bytes past 2^64 - 1 do not wrap to 0. */
	bm_region *z = new_io(e, "z", 0x10, &p);
	assert_int_equal(bm_region_add(e->root, z, 0, 0), 0);
	p.reads = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, UINT64_MAX, 4, &v), BM_ACCESS_UNASSIGNED);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(p.reads, 0);
	struct bm_vcpu_stats st;
	bm_vcpu_stats(e->vcpu, &st);
	assert_int_equal(st.unassigned, 4);
	assert_int_equal(st.accesses, 4);
}

static void test_valid_sizes_refused(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	struct bm_region_ops ops = probe_ops;
	ops.valid_sizes = BM_ACCESS_4;
	bm_region *r;
	assert_int_equal(bm_region_new_io(e->sys, "r", 0x10, &ops, &p, &r), 0);
	assert_int_equal(bm_region_add(e->root, r, 0x4000, 0), 0);
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x4000, 1, &v), -EOPNOTSUPP);
	assert_int_equal(v, 0xff);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x4000, 8, 0), -EOPNOTSUPP);
	/* Split: the second region refuses, so the first one must not be called either. */
	struct probe q = {0};
	bm_region *before = new_io(e, "before", 0x10, &q);
	assert_int_equal(bm_region_add(e->root, before, 0x3ff0, 0), 0);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x3fff, 2, 0), -EOPNOTSUPP);
	assert_int_equal(p.reads + p.writes + q.reads + q.writes, 0);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x4000, 4, &v), 0);
	assert_int_equal(p.reads, 1);
}

static void test_impl_sizes_adapted(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	struct bm_region_ops ops = probe_ops;
	ops.impl_sizes = BM_ACCESS_4;
	bm_region *r;
	assert_int_equal(bm_region_new_io(e->sys, "r", 0x10, &ops, &p, &r), 0);
	assert_int_equal(bm_region_add(e->root, r, 0x5000, 0), 0);
	memcpy(p.mem, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	uint64_t v;
	/* A 1-byte read of a 4-byte register reads the register and takes the byte. */
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x5002, 1, &v), 0);
	assert_int_equal(v, 0x33);
	assert_int_equal(p.last_size, 4);
	assert_int_equal(p.last_offset, 0);
	/* An 8-byte read becomes two 4-byte reads. */
	p.reads = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x5000, 8, &v), 0);
	assert_int_equal(v, 0x8877665544332211ull);
	assert_int_equal(p.reads, 2);
	/* Unaligned 4 bytes at 2: two units, bytes 2..5. */
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x5002, 4, &v), 0);
	assert_int_equal(v, 0x66554433);
	/* A 1-byte write is read-modify-write of the enclosing unit. */
	p.writes = 0;
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x5001, 1, 0xaa), 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.last_size, 4);
	assert_int_equal(p.last_value, 0x4433aa11);
}

static void test_hint_and_generation(void **state)
{
	struct env *e = *state;
	struct probe a = {0}, b = {0};
	bm_region *ra = new_io(e, "a", 0x1000, &a), *rb = new_io(e, "b", 0x1000, &b);
	assert_int_equal(bm_region_add(e->root, ra, 0x10000, 0), 0);
	uint64_t v;
	for (int i = 0; i < 10; i++)
		assert_int_equal(bm_read(e->vcpu, e->mem, 0x10000 + 8 * i, 4, &v), 0);
	struct bm_vcpu_stats st;
	bm_vcpu_stats(e->vcpu, &st);
	assert_int_equal(st.hint_hits, 9);
	/* After a change the hint is stale: the access must see the new map. */
	assert_int_equal(bm_region_add(e->root, rb, 0x10000, 1), 0);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x10010, 4, &v), 0);
	assert_int_equal(b.reads, 1);
	bm_vcpu_stats(e->vcpu, &st);
	assert_int_equal(st.hint_hits, 9);
}

static int failing_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                        uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	(void)value; /* leaves it unset, as a failing device may */
	return -EIO;
}

static void test_callback_error_propagates(void **state)
{
	struct env *e = *state;
	struct bm_region_ops failing = {.read = failing_read, .write = probe_write};
	bm_region *f;
	assert_int_equal(bm_region_new_io(e->sys, "failing", 0x10, &failing, NULL, &f), 0);
	assert_int_equal(bm_region_add(e->root, f, 0x6100, 0), 0);
	uint64_t got = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x6100, 4, &got), -EIO);
	assert_int_equal(got, 0xffffffff);
	/* A context only dispatches to spaces of its own system. */
	bm_system *other;
	bm_space *os;
	assert_int_equal(bm_system_new(&other), 0);
	assert_int_equal(bm_space_new(other, "o", "root", &os), 0);
	assert_int_equal(bm_read(e->vcpu, os, 0, 1, &got), -EINVAL);
	assert_int_equal(bm_write(e->vcpu, os, 0, 1, 0), -EINVAL);
	assert_int_equal(bm_system_free(other), 0);
	bm_region *r;
	struct bm_region_ops ops = {0};
	assert_int_equal(bm_region_new_io(e->sys, "silent", 0x10, &ops, NULL, &r), 0);
	assert_int_equal(bm_region_add(e->root, r, 0x6000, 0), 0);
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x6000, 2, &v), 0); /* NULL read: ones */
	assert_int_equal(v, 0xffff);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x6000, 2, 5), 0); /* NULL write: dropped */
}

struct mover {
	bm_region *target;
	bm_system *sys;
	int move_result, sync_result;
};

/* A "configuration register": writing it moves another region, as a BAR write does. */
static int mover_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)offset;
	(void)size;
	struct mover *m = opaque;
	m->move_result = bm_region_move(m->target, value);
	m->sync_result = bm_synchronize(m->sys);
	return 0;
}

static void test_callback_changes_map(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	struct mover m = {.sys = e->sys};
	struct bm_region_ops ops = {.write = mover_write};
	bm_region *cfg;
	m.target = new_io(e, "bar", 0x100, &p);
	assert_int_equal(bm_region_new_io(e->sys, "cfg", 4, &ops, &m, &cfg), 0);
	assert_int_equal(bm_region_add(e->root, cfg, 0xcf8, 0), 0);
	assert_int_equal(bm_region_add(e->root, m.target, 0x7000, 0), 0);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0xcf8, 4, 0x8000), 0);
	assert_int_equal(m.move_result, 0);
	/* memb: waiting here would wait for itself. QSBR: the callback was reached directly and
	 * nothing of the old map is used after it, so liburcu waits with the thread offline. */
	assert_int_equal(m.sync_result, e->qsbr ? 0 : -EDEADLK);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x8000, 1, &v), 0);
	assert_int_equal(p.reads, 1);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x7000, 1, &v), BM_ACCESS_UNASSIGNED);
	assert_int_equal(bm_synchronize(e->sys), 0);
}

/* Under QSBR an offline thread holds no reference, so it must not dispatch. */
static void test_qsbr_offline_refused(void **state)
{
	struct env *e = *state;
	struct probe p = {0};
	bm_region *r = new_io(e, "dev", 0x100, &p);
	assert_int_equal(bm_region_add(e->root, r, 0x1000, 0), 0);
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1000, 4, &v), 0); /* warms the hint */
	assert_int_equal(bm_vcpu_offline(e->vcpu), 0);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1000, 4, &v), -EPERM);
	assert_int_equal(bm_write(e->vcpu, e->mem, 0x1000, 4, 1), -EPERM);
	assert_int_equal(bm_vcpu_quiescent(e->vcpu), -EPERM);
	assert_int_equal(p.reads + p.writes, 1);
	assert_int_equal(bm_synchronize(e->sys), 0); /* offline: nothing to wait for */
	assert_int_equal(bm_vcpu_online(e->vcpu), 0);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x1000, 4, &v), 0);
	assert_int_equal(bm_vcpu_quiescent(e->vcpu), 0);
	/* An online thread outside any access may wait: liburcu takes it offline meanwhile. */
	assert_int_equal(bm_synchronize(e->sys), 0);
	assert_int_equal(bm_vcpu_quiescent(NULL), -EINVAL);
}

struct quiescer {
	bm_vcpu *vcpu;
	int result;
};

static int quiesce_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                        uint64_t *value)
{
	struct quiescer *q = opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = 0;
	q->result = bm_vcpu_quiescent(q->vcpu);
	return 0;
}

/* An access cut into pieces still uses the map after its first callback returns: a
 * quiescent state reported inside it would let that map be freed under it. */
static void test_qsbr_quiescent_inside_split(void **state)
{
	struct env *e = *state;
	struct quiescer q = {.vcpu = e->vcpu, .result = 1};
	struct bm_region_ops ops = {.read = quiesce_read};
	struct probe p = {0};
	bm_region *a, *b = new_io(e, "b", 0x10, &p);
	assert_int_equal(bm_region_new_io(e->sys, "a", 0x10, &ops, &q, &a), 0);
	assert_int_equal(bm_region_add(e->root, a, 0x2000, 0), 0);
	assert_int_equal(bm_region_add(e->root, b, 0x2010, 0), 0);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x200e, 4, &v), 0);
	assert_int_equal(q.result, -EDEADLK);
	assert_int_equal(bm_read(e->vcpu, e->mem, 0x2000, 4, &v), 0); /* direct: allowed */
	assert_int_equal(q.result, 0);
}

/* On a memb system the QSBR calls have nothing to do. */
static void test_memb_quiescent_noop(void **state)
{
	struct env *e = *state;
	assert_int_equal(bm_vcpu_quiescent(e->vcpu), 0);
	assert_int_equal(bm_vcpu_offline(e->vcpu), 0);
	uint64_t v;
	assert_int_equal(bm_read(e->vcpu, e->mem, 0, 1, &v), BM_ACCESS_UNASSIGNED);
	assert_int_equal(bm_vcpu_online(e->vcpu), 0);
	bm_system *s;
	assert_int_equal(bm_system_new_flavour((enum bm_rcu_flavour)7, &s), -EINVAL);
}

#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, env_setup, env_teardown),                               \
	    cmocka_unit_test_setup_teardown(t, env_setup_qsbr, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_sizes_reach_callback),
	    BOTH(test_split_across_regions),
	    BOTH(test_unassigned),
	    BOTH(test_valid_sizes_refused),
	    BOTH(test_impl_sizes_adapted),
	    BOTH(test_hint_and_generation),
	    BOTH(test_callback_error_propagates),
	    BOTH(test_callback_changes_map),
	    cmocka_unit_test_setup_teardown(test_qsbr_offline_refused, env_setup_qsbr,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_qsbr_quiescent_inside_split, env_setup_qsbr,
	                                    env_teardown),
	    cmocka_unit_test_setup_teardown(test_memb_quiescent_noop, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
