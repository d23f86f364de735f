/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What bhyve device models rely on from mem.c, on an explicit instance: accesses of every
 * size reach the handler with bhyve's arguments, fallback ranges, unassigned addresses,
 * unregistering by identity, immutable ranges, emulate_mem, and changes made from inside a
 * handler. Plus the process-wide functions themselves.
 */
#include "bhyve_testutil.h"

static int setup(void **state)
{
	return fixture_new(state, vcpu_id, 1);
}

static void add(struct fixture *f, struct dev *d, uint64_t base, uint64_t size)
{
	struct mem_range mr = dev_range(d, base, size);
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), 0);
}

/* Who serves gpa: the device, or NULL when read_mem says ESRCH. */
static struct dev *served_by(struct fixture *f, uint64_t gpa, struct dev **devs, size_t n)
{
	uint64_t v = 0;
	int ret = rd(f, gpa, 1, &v);
	if (ret == ESRCH)
		return NULL;
	assert_int_equal(ret, 0);
	for (size_t i = 0; i < n; i++) {
		if (v == dev_value(devs[i], gpa))
			return devs[i];
	}
	fail_msg("0x%llx answered 0x%llx", (unsigned long long)gpa, (unsigned long long)v);
	return NULL;
}

static void every_size(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	add(f, &d, 0x10000, 0x100);
	for (int size = 1; size <= 8; size *= 2) {
		uint64_t v = 0, gpa = 0x10000 + 0x10 * (uint64_t)size;
		assert_int_equal(rd(f, gpa, size, &v), 0);
		assert_int_equal(v, dev_value(&d, gpa));
		assert_ptr_equal(d.vcpu, &f->vcpu);
		assert_int_equal(d.dir, MEM_F_READ);
		assert_int_equal(d.addr, gpa); /* absolute, as in bhyve */
		assert_int_equal(d.size, size);
		assert_ptr_equal(d.arg1, &d);
		assert_int_equal(d.arg2, 7);

		uint64_t w = 0x0123456789abcdefull;
		assert_int_equal(wr(f, gpa + 1, size, w), 0);
		assert_int_equal(d.dir, MEM_F_WRITE);
		assert_int_equal(d.addr, gpa + 1); /* unaligned: still one whole access */
		assert_int_equal(d.size, size);
		assert_int_equal(d.val, w); /* the value as given, as bhyve passes it */
	}
	assert_int_equal(d.calls, 8);
}

/* bhyve gives the whole access to the range of its first byte, even past its end. */
static void first_byte_decides(void **state)
{
	struct fixture *f = *state;
	struct dev a = {.name = "a"}, b = {.name = "b"};
	add(f, &a, 0x1000, 4);
	add(f, &b, 0x1004, 4);
	uint64_t v;
	assert_int_equal(rd(f, 0x1002, 4, &v), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.size, 4);
	assert_int_equal(a.addr, 0x1002);
	assert_int_equal(b.calls, 0);
}

static void handler_result_passes_back(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev", .result = EIO};
	add(f, &d, 0x2000, 0x10);
	uint64_t v;
	assert_int_equal(rd(f, 0x2000, 4, &v), EIO);
	d.result = -1;
	assert_int_equal(wr(f, 0x2000, 4, 1), -1);
}

static void unassigned_is_esrch(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	add(f, &d, 0x3000, 0x10);
	uint64_t v = 42;
	assert_int_equal(rd(f, 0x2fff, 4, &v), ESRCH);
	assert_int_equal(v, 42); /* left alone */
	assert_int_equal(rd(f, 0x3010, 1, &v), ESRCH);
	assert_int_equal(wr(f, UINT64_MAX, 8, 1), ESRCH);
	assert_int_equal(d.calls, 0);
}

static void overlap_newest_wins(void **state)
{
	struct fixture *f = *state;
	struct dev a = {.name = "a"}, b = {.name = "b"};
	struct dev *devs[] = {&a, &b};
	add(f, &a, 0x4000, 0x100);
	add(f, &b, 0x4080, 0x100);
	assert_ptr_equal(served_by(f, 0x407f, devs, 2), &a);
	assert_ptr_equal(served_by(f, 0x4080, devs, 2), &b);
	struct mem_range mr = dev_range(&b, 0x4080, 0x100);
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &mr), 0);
	assert_ptr_equal(served_by(f, 0x4080, devs, 2), &a); /* what b hid shows again */
	assert_ptr_equal(served_by(f, 0x4100, devs, 2), NULL);
}

static void fallback_loses(void **state)
{
	struct fixture *f = *state;
	struct dev hole = {.name = "hole"}, bar = {.name = "bar"}, late = {.name = "late"};
	struct dev *devs[] = {&hole, &bar, &late};
	add(f, &bar, 0xc0001000, 0x1000);
	struct mem_range mr = dev_range(&hole, 0xc0000000, 0x20000000);
	mr.flags |= MEM_F_IMMUTABLE;
	assert_int_equal(bm_bhyve_register_mem_fallback(f->b, &mr), 0);
	add(f, &late, 0xc0003000, 0x1000);
	/* registered after the bar, the fallback still loses to it */
	assert_ptr_equal(served_by(f, 0xc0001000, devs, 3), &bar);
	assert_ptr_equal(served_by(f, 0xc0003000, devs, 3), &late);
	assert_ptr_equal(served_by(f, 0xc0000000, devs, 3), &hole);
	assert_ptr_equal(served_by(f, 0xc0002000, devs, 3), &hole);
	struct mem_range gone = dev_range(&bar, 0xc0001000, 0x1000);
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &gone), 0);
	assert_ptr_equal(served_by(f, 0xc0001000, devs, 3), &hole);
	assert_ptr_equal(served_by(f, 0xbfffffff, devs, 3), NULL);
}

/* A description that differs in name, base or size matches nothing; nothing changes. */
static void unregister_mismatch(void **state)
{
	struct fixture *f = *state;
	struct dev a = {.name = "a"}, b = {.name = "b"};
	struct dev *devs[] = {&a, &b};
	add(f, &a, 0x5000, 0x100);
	add(f, &b, 0x5000, 0x100); /* the same place, another device */
	struct mem_range wrong[] = {
	    dev_range(&a, 0x5000, 0x100), /* another name */
	    dev_range(&a, 0x5001, 0x100), /* another base */
	    dev_range(&a, 0x5000, 0x80),  /* another size */
	};
	wrong[0].name = "c";
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(bm_bhyve_unregister_mem(f->b, &wrong[i]), -ENOENT);
	assert_ptr_equal(served_by(f, 0x5000, devs, 2), &b);
	/* a's own description (another pointer to an equal name) removes a, not b */
	struct mem_range mine = {.name = "a", .base = 0x5000, .size = 0x100};
	char copy[] = "a";
	mine.name = copy;
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &mine), 0);
	assert_ptr_equal(served_by(f, 0x50ff, devs, 2), &b);
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &mine), -ENOENT);
}

/* One device with two BARs at one address: its handler and arguments tell them apart. */
static void unregister_same_name(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	struct mem_range bar0 = dev_range(&d, 0x6000, 0x100), bar1 = bar0;
	bar0.arg2 = 0;
	bar1.arg2 = 1;
	assert_int_equal(bm_bhyve_register_mem(f->b, &bar0), 0);
	assert_int_equal(bm_bhyve_register_mem(f->b, &bar1), 0);
	uint64_t v;
	assert_int_equal(rd(f, 0x6000, 4, &v), 0);
	assert_int_equal(d.arg2, 1);
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &bar1), 0);
	assert_int_equal(rd(f, 0x6000, 4, &v), 0);
	assert_int_equal(d.arg2, 0);
	/* with only name, base and size, the newest goes */
	assert_int_equal(bm_bhyve_register_mem(f->b, &bar1), 0);
	struct mem_range bare = {.name = d.name, .base = 0x6000, .size = 0x100};
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &bare), 0);
	assert_int_equal(rd(f, 0x6000, 4, &v), 0);
	assert_int_equal(d.arg2, 0);
}

static void immutable_stays(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "ecfg"};
	struct mem_range mr = dev_range(&d, 0xe0000000, 0x10000000);
	mr.flags |= MEM_F_IMMUTABLE;
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), 0);
	assert_int_equal(bm_bhyve_unregister_mem(f->b, &mr), -EPERM);
	uint64_t v;
	assert_int_equal(rd(f, 0xe0000000, 4, &v), 0);
	assert_int_equal(d.calls, 1);
}

static void refused_registrations(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	struct mem_range mr = dev_range(&d, 0x7000, 0);
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), -EINVAL);
	mr = dev_range(&d, UINT64_MAX - 0xf, 0x11);
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), -EINVAL);
	mr = dev_range(&d, UINT64_MAX - 0xf, 0x10); /* up to the last byte is fine */
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), 0);
	mr = dev_range(&d, 0x7000, 0x10);
	mr.handler = NULL;
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), -EINVAL);
	assert_int_equal(bm_bhyve_register_mem(NULL, &mr), -EINVAL);
	uint64_t v;
	assert_int_equal(bm_bhyve_read_mem(NULL, &f->vcpu, 0, &v, 4), EINVAL);
}

/* ---- emulate_mem ---- */

struct emulator_seen {
	unsigned calls;
	struct vcpu *vcpu;
	uint64_t gpa;
	struct vie *vie;
	struct vm_guest_paging *paging;
	int read_ret, write_ret;
	uint64_t value;
};
static struct emulator_seen seen;

/* Stands for vmm_emulate_instruction: a read-modify-write of the operand, like OR. */
static int fake_emulator(struct vcpu *vcpu, uint64_t gpa, struct vie *vie,
                         struct vm_guest_paging *paging, bm_bhyve_mem_read_fn mrr,
                         bm_bhyve_mem_write_fn mrw, void *mrarg)
{
	seen.calls++;
	seen.vcpu = vcpu;
	seen.gpa = gpa;
	seen.vie = vie;
	seen.paging = paging;
	seen.read_ret = mrr(vcpu, gpa, &seen.value, 4, mrarg);
	if (seen.read_ret)
		return seen.read_ret;
	seen.write_ret = mrw(vcpu, gpa, seen.value | 1, 4, mrarg);
	return seen.write_ret;
}

static void emulate_mem_uses_host_emulator(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	struct vie *vie = (struct vie *)&seen; /* opaque to the layer */
	struct vm_guest_paging *paging = (struct vm_guest_paging *)&d;
	add(f, &d, 0x8000, 0x100);
	assert_int_equal(bm_bhyve_emulate_mem(f->b, &f->vcpu, 0x8010, vie, paging), ENOSYS);
	assert_int_equal(bm_bhyve_set_emulator(f->b, fake_emulator), 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(bm_bhyve_emulate_mem(f->b, &f->vcpu, 0x8010, vie, paging), 0);
	assert_int_equal(seen.calls, 1);
	assert_ptr_equal(seen.vcpu, &f->vcpu);
	assert_int_equal(seen.gpa, 0x8010);
	assert_ptr_equal(seen.vie, vie);
	assert_ptr_equal(seen.paging, paging);
	assert_int_equal(d.calls, 2);
	assert_int_equal(d.dir, MEM_F_WRITE);
	assert_int_equal(d.val, dev_value(&d, 0x8010) | 1);
	assert_ptr_equal(d.vcpu, &f->vcpu);
	/* unassigned: the emulator's access fails with ESRCH, which it passes on */
	assert_int_equal(bm_bhyve_emulate_mem(f->b, &f->vcpu, 0x9000, vie, paging), ESRCH);
	assert_int_equal(seen.read_ret, ESRCH);
}

/* ---- changes and accesses from inside a handler ---- */

/* A configuration register whose writes move the BAR of dev, as bhyve's PCI layer does. */
struct config {
	struct fixture *f;
	struct dev *dev;
	uint64_t bar;
	int moves_failed;
};

static int config_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                          void *arg1, long arg2)
{
	(void)vcpu;
	(void)addr;
	(void)size;
	(void)arg2;
	struct config *c = arg1;
	if (dir == MEM_F_READ) {
		/* a nested access: read the BAR's first byte through the layer */
		return bm_bhyve_read_mem(c->f->b, vcpu, c->bar, val, 1);
	}
	struct mem_range old = {.name = c->dev->name, .base = c->bar, .size = 0x100};
	struct mem_range moved = dev_range(c->dev, *val, 0x100);
	if (bm_bhyve_unregister_mem(c->f->b, &old) || bm_bhyve_register_mem(c->f->b, &moved))
		c->moves_failed++;
	c->bar = *val;
	return 0;
}

static void changes_inside_handler(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	struct config c = {f, &d, 0xa000, 0};
	struct mem_range cfg = {.name = "cfg",
	                        .flags = MEM_F_RW,
	                        .handler = config_handler,
	                        .arg1 = &c,
	                        .base = 0xf000,
	                        .size = 4};
	assert_int_equal(bm_bhyve_register_mem(f->b, &cfg), 0);
	add(f, &d, 0xa000, 0x100);
	for (uint64_t to = 0xb000; to < 0xb000 + 16 * 0x100; to += 0x100) {
		uint64_t v = 0;
		assert_int_equal(wr(f, 0xf000, 4, to), 0);
		assert_int_equal(c.moves_failed, 0);
		assert_int_equal(rd(f, to, 4, &v), 0);
		assert_int_equal(v, dev_value(&d, to));
		assert_int_equal(rd(f, to - 0x100, 4, &v), ESRCH); /* where it was */
		assert_int_equal(rd(f, 0xf000, 4, &v), 0);
		assert_int_equal(v, dev_value(&d, to));
	}
}

/* A write handler that writes elsewhere first still sees its own value afterwards. */
struct relay {
	struct fixture *f;
	uint64_t seen_after;
};

static int relay_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                         void *arg1, long arg2)
{
	(void)addr;
	(void)arg2;
	struct relay *r = arg1;
	if (dir == MEM_F_WRITE) {
		bm_bhyve_write_mem(r->f->b, vcpu, 0xd100, ~*val, size);
		r->seen_after = *val;
	}
	return 0;
}

static void nested_write_keeps_value(void **state)
{
	struct fixture *f = *state;
	struct relay r = {f, 0};
	struct dev d = {.name = "dev"};
	struct mem_range relay = {
	    .name = "relay", .handler = relay_handler, .arg1 = &r, .base = 0xd000, .size = 0x10};
	assert_int_equal(bm_bhyve_register_mem(f->b, &relay), 0);
	add(f, &d, 0xd100, 0x10);
	assert_int_equal(wr(f, 0xd000, 8, 0x1122334455667788ull), 0);
	assert_int_equal(d.val, ~0x1122334455667788ull);
	assert_int_equal(r.seen_after, 0x1122334455667788ull);
}

/* Each vCPU thread's context is numbered with vcpu_id, as a conflict signal shows. */
static unsigned conflict_vcpu = 999;

static void on_conflict_access(void *arg, bm_space *space, bm_vcpu *vcpu, uint64_t addr,
                               unsigned size, bool is_write)
{
	(void)arg;
	(void)space;
	(void)addr;
	(void)size;
	(void)is_write;
	conflict_vcpu = bm_vcpu_index(vcpu);
}

static void contexts_numbered(void **state)
{
	struct fixture *f = *state;
	struct dev a = {.name = "a"}, b = {.name = "b"};
	static const struct bm_conflict_ops ops = {.on_access = on_conflict_access};
	add(f, &a, 0xe000, 0x100);
	add(f, &b, 0xe080, 0x100);
	assert_int_equal(bm_space_set_conflict_ops(bm_bhyve_mem_space(f->b), &ops, NULL), 0);
	uint64_t v;
	assert_int_equal(rd(f, 0xe090, 4, &v), 0); /* in the overlap: served by the newest */
	assert_int_equal(v, dev_value(&b, 0xe090));
	assert_int_equal(conflict_vcpu, 1);
}

/* The core's own API reaches the same handlers, with no bhyve vCPU to give them. */
static void core_api_access(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	add(f, &d, 0xc000, 0x10);
	bm_vcpu *v;
	uint64_t val;
	assert_int_equal(bm_vcpu_new(bm_bhyve_system(f->b), 9, NULL, &v), 0);
	assert_int_equal(bm_read(v, bm_bhyve_mem_space(f->b), 0xc004, 4, &val), 0);
	assert_int_equal(val, dev_value(&d, 0xc004) & 0xffffffffu);
	assert_null(d.vcpu);
	assert_int_equal(d.addr, 0xc004);
	assert_int_equal(bm_write(v, bm_bhyve_mem_space(f->b), 0xc008, 2, 0xbeef), 0);
	assert_int_equal(d.val, 0xbeef);
	assert_int_equal(bm_vcpu_free(v), 0);
}

/* ---- the process-wide functions ---- */

static void global_functions(void **state)
{
	(void)state;
	struct dev d = {.name = "dev"};
	struct vcpu vcpu = {3};
	struct mem_range mr = dev_range(&d, 0x1000, 0x10);
	uint64_t v;
	assert_null(bm_bhyve_global());
	assert_int_equal(register_mem(&mr), ENXIO);
	assert_int_equal(read_mem(&vcpu, 0x1000, &v, 4), ENXIO);
	init_mem(4);
	assert_non_null(bm_bhyve_global());
	assert_int_equal(register_mem(&mr), 0);
	assert_int_equal(read_mem(&vcpu, 0x1004, &v, 4), 0);
	assert_int_equal(v, dev_value(&d, 0x1004));
	assert_ptr_equal(d.vcpu, &vcpu);
	assert_int_equal(write_mem(&vcpu, 0x1008, 5, 1), 0);
	assert_int_equal(d.val, 5);
	assert_int_equal(read_mem(&vcpu, 0x2000, &v, 4), ESRCH);
	assert_int_equal(emulate_mem(&vcpu, 0x1000, NULL, NULL), ENOSYS);
	assert_int_equal(unregister_mem(&mr), 0);
	assert_int_equal(unregister_mem(&mr), ENOENT);
	struct mem_range fb = dev_range(&d, 0, 0x100000);
	fb.flags |= MEM_F_IMMUTABLE;
	assert_int_equal(register_mem_fallback(&fb), 0);
	assert_int_equal(unregister_mem(&fb), EPERM);
	assert_int_equal(read_mem(&vcpu, 0x1000, &v, 4), 0);
	assert_int_equal(bm_bhyve_global_free(), 0);
	assert_null(bm_bhyve_global());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(first_byte_decides, setup, teardown),
	    cmocka_unit_test_setup_teardown(handler_result_passes_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(unassigned_is_esrch, setup, teardown),
	    cmocka_unit_test_setup_teardown(overlap_newest_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(fallback_loses, setup, teardown),
	    cmocka_unit_test_setup_teardown(unregister_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(unregister_same_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(immutable_stays, setup, teardown),
	    cmocka_unit_test_setup_teardown(refused_registrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(emulate_mem_uses_host_emulator, setup, teardown),
	    cmocka_unit_test_setup_teardown(changes_inside_handler, setup, teardown),
	    cmocka_unit_test_setup_teardown(nested_write_keeps_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(contexts_numbered, setup, teardown),
	    cmocka_unit_test_setup_teardown(core_api_access, setup, teardown),
	    cmocka_unit_test(global_functions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
