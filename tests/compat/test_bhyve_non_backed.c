/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Accesses that reach no range go to the host's mmio_handle_non_backed_mem, as in current
 * bhyve: amd64's hands them to a range that reads all ones and ignores writes, arm64's
 * injects a data abort and returns EJUSTRETURN. This program defines the function, as
 * bhyve's machine-dependent files do, so init_mem finds it; without it (test_bhyve_mem.c)
 * such accesses return ESRCH.
 */
#include "bhyve_testutil.h"

/* FreeBSD's EJUSTRETURN, which the arm64 hook returns; any value passes through alike. */
#define HOOK_EJUSTRETURN (-2)

static struct {
	unsigned calls;
	struct vcpu *vcpu;
	uint64_t paddr;
	int answer; /* 0: hand the access to the all-ones range; else return it */
	bool no_range;
} hook;

static struct dev nothing = {.name = "nothing"};

static int all_ones(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val, void *arg1,
                    long arg2)
{
	dev_mem_handler(vcpu, dir, addr, size, val, arg1, arg2);
	if (dir == MEM_F_READ)
		*val = size == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * size)) - 1;
	return 0;
}

static struct mem_range fb_entry = {
    .name = "non-backed", .handler = all_ones, .arg1 = &nothing, .size = UINT64_MAX};

int mmio_handle_non_backed_mem(struct vcpu *vcpu, uint64_t paddr, struct mem_range **mr_paramp)
{
	hook.calls++;
	hook.vcpu = vcpu;
	hook.paddr = paddr;
	if (hook.answer)
		return hook.answer;
	*mr_paramp = hook.no_range ? NULL : &fb_entry;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&hook, 0, sizeof(hook));
	memset(&nothing, 0, sizeof(nothing));
	nothing.name = "nothing";
	return 0;
}

static void amd64_all_ones(void **state)
{
	(void)state;
	struct vcpu vcpu = {1};
	uint64_t v = 0;
	init_mem(2);
	assert_int_equal(read_mem(&vcpu, 0xfee00000, &v, 4), 0);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(hook.calls, 1);
	assert_ptr_equal(hook.vcpu, &vcpu);
	assert_int_equal(hook.paddr, 0xfee00000);
	assert_int_equal(write_mem(&vcpu, 0xfee00010, 0x1234, 2), 0);
	assert_int_equal(nothing.dir, MEM_F_WRITE);
	assert_int_equal(nothing.addr, 0xfee00010);
	assert_int_equal(nothing.size, 2);
	assert_int_equal(nothing.val, 0x1234);
	assert_int_equal(hook.calls, 2);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

static void arm64_abort(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};
	uint64_t v = 42;
	init_mem(1);
	hook.answer = HOOK_EJUSTRETURN;
	assert_int_equal(read_mem(&vcpu, 0x1000, &v, 8), HOOK_EJUSTRETURN);
	assert_int_equal(v, 42);
	assert_int_equal(write_mem(&vcpu, 0x1000, 1, 1), HOOK_EJUSTRETURN);
	assert_int_equal(nothing.calls, 0);
	hook.answer = EFAULT;
	assert_int_equal(read_mem(&vcpu, 0x1000, &v, 1), EFAULT);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

/* Success without a range to serve it would be success with nothing done. */
static void no_range_is_esrch(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};
	uint64_t v = 42;
	init_mem(1);
	hook.no_range = true;
	assert_int_equal(read_mem(&vcpu, 0x1000, &v, 4), ESRCH);
	assert_int_equal(v, 42);
	assert_int_equal(hook.calls, 1);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

/* Ranges, fallback ones included, come first; the hook sees only what none serves. */
static void ranges_first(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};
	struct dev d = {.name = "dev"}, fb = {.name = "fallback"};
	struct mem_range mr = dev_range(&d, 0x1000, 0x100);
	struct mem_range fr = dev_range(&fb, 0x100000, 0x100000);
	uint64_t v;
	init_mem(1);
	assert_int_equal(register_mem(&mr), 0);
	assert_int_equal(register_mem_fallback(&fr), 0);
	assert_int_equal(read_mem(&vcpu, 0x1004, &v, 4), 0);
	assert_int_equal(v, dev_value(&d, 0x1004));
	assert_int_equal(read_mem(&vcpu, 0x100004, &v, 4), 0);
	assert_int_equal(v, dev_value(&fb, 0x100004));
	assert_int_equal(hook.calls, 0);
	assert_int_equal(read_mem(&vcpu, 0x2000, &v, 4), 0);
	assert_int_equal(hook.calls, 1);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

/* The instruction emulator's operand accesses get the same answer. */
static int emulator(struct vcpu *vcpu, uint64_t gpa, struct vie *vie,
                    struct vm_guest_paging *paging, bm_bhyve_mem_read_fn mrr,
                    bm_bhyve_mem_write_fn mrw, void *mrarg)
{
	(void)vie;
	(void)paging;
	(void)mrw;
	uint64_t v = 0;
	return mrr(vcpu, gpa, &v, 4, mrarg);
}

static void emulate_mem_too(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};
	init_mem(1);
	assert_int_equal(bm_bhyve_set_emulator(bm_bhyve_global(), emulator), 0);
	hook.answer = HOOK_EJUSTRETURN;
	assert_int_equal(emulate_mem(&vcpu, 0x3000, NULL, NULL), HOOK_EJUSTRETURN);
	assert_int_equal(hook.paddr, 0x3000);
	hook.answer = 0;
	assert_int_equal(emulate_mem(&vcpu, 0x3000, NULL, NULL), 0);
	assert_int_equal(nothing.dir, MEM_F_READ);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

/* An explicit instance has no hook until it is given one. */
static void explicit_instance(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};
	bm_bhyve *b;
	uint64_t v = 0;
	assert_int_equal(bm_bhyve_new(vcpu_id, &b), 0);
	assert_int_equal(bm_bhyve_read_mem(b, &vcpu, 0x1000, &v, 4), ESRCH);
	assert_int_equal(bm_bhyve_set_non_backed(b, mmio_handle_non_backed_mem), 0);
	assert_int_equal(bm_bhyve_read_mem(b, &vcpu, 0x1000, &v, 2), 0);
	assert_int_equal(v, 0xffff);
	assert_int_equal(bm_bhyve_set_non_backed(b, NULL), 0);
	assert_int_equal(bm_bhyve_write_mem(b, &vcpu, 0x1000, 0, 2), ESRCH);
	assert_int_equal(bm_bhyve_set_non_backed(NULL, NULL), -EINVAL);
	assert_int_equal(bm_bhyve_free(b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(amd64_all_ones, setup),
	    cmocka_unit_test_setup(arm64_abort, setup),
	    cmocka_unit_test_setup(no_range_is_esrch, setup),
	    cmocka_unit_test_setup(ranges_first, setup),
	    cmocka_unit_test_setup(emulate_mem_too, setup),
	    cmocka_unit_test_setup(explicit_instance, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
