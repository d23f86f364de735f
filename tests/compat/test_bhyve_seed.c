/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The seed report, through bhyve's own interface: arm64 bhyve places virtio-blk's BAR 0
 * (128 bytes) at 0xdf000000 and virtio-net's BAR 0 (64 bytes) at 0xdf000080, as MMIO;
 * u-boot moves net onto blk, then blk away; the OS then places net again. Every call must
 * succeed, and after every step each byte of the window must reach the device the guest
 * put there, or nothing.
 */
#include "bhyve_testutil.h"

#define WINDOW      0xdf000000ull
#define WINDOW_SIZE 0x140u

static struct dev blk = {.name = "blk"}, net = {.name = "net"};

/* bhyve's PCI layer registers a BAR with its handler and arguments, and unregisters it with
 * only the name, base and size filled in. */
static int bar_map(struct dev *d, uint64_t base, uint64_t size)
{
	struct mem_range mr = dev_range(d, base, size);
	return register_mem(&mr);
}

static int bar_unmap(struct dev *d, uint64_t base, uint64_t size)
{
	struct mem_range mr;
	memset(&mr, 0, sizeof(mr));
	mr.name = d->name;
	mr.base = base;
	mr.size = size;
	return unregister_mem(&mr);
}

struct owner {
	uint64_t start, end; /* offsets in the window, end exclusive */
	struct dev *dev;
};

static struct dev *owner_at(const struct owner *map, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++) {
		if (off >= map[i].start && off < map[i].end)
			return map[i].dev;
	}
	return NULL;
}

/* Reads and writes every byte of the window, one access each. */
static void check_window(struct vcpu *vcpu, const struct owner *map, size_t n)
{
	for (uint64_t off = 0; off < WINDOW_SIZE; off++) {
		uint64_t addr = WINDOW + off, v = 0x1234;
		struct dev *d = owner_at(map, n, off);
		if (!d) {
			assert_int_equal(read_mem(vcpu, addr, &v, 1), ESRCH);
			assert_int_equal(v, 0x1234);
			assert_int_equal(write_mem(vcpu, addr, 0x5a, 1), ESRCH);
			continue;
		}
		unsigned calls = d->calls;
		assert_int_equal(read_mem(vcpu, addr, &v, 1), 0);
		assert_int_equal(v, dev_value(d, addr));
		assert_int_equal(write_mem(vcpu, addr, off ^ 0xa5, 1), 0);
		assert_int_equal(d->val, off ^ 0xa5);
		assert_int_equal(d->addr, addr);
		assert_ptr_equal(d->vcpu, vcpu);
		assert_int_equal(d->calls, calls + 2);
	}
}

static size_t conflicts(void)
{
	return bm_space_conflicts(bm_bhyve_mem_space(bm_bhyve_global()), NULL, 0);
}

static void seed_steps(void **state)
{
	(void)state;
	struct vcpu vcpu = {0};

	init_mem(1);
	/* bhyve's initial placement */
	assert_int_equal(bar_map(&blk, WINDOW, 0x80), 0);
	assert_int_equal(bar_map(&net, WINDOW + 0x80, 0x40), 0);
	const struct owner initial[] = {{0x00, 0x80, &blk}, {0x80, 0xc0, &net}};
	check_window(&vcpu, initial, 2);

	/* 1. u-boot unmaps net */
	assert_int_equal(bar_unmap(&net, WINDOW + 0x80, 0x40), 0);
	const struct owner step1[] = {{0x00, 0x80, &blk}};
	check_window(&vcpu, step1, 1);

	/* 2. ... and maps it onto blk: the newest wins, the rest of blk still shows */
	assert_int_equal(bar_map(&net, WINDOW, 0x40), 0);
	const struct owner step2[] = {{0x00, 0x40, &net}, {0x40, 0x80, &blk}};
	check_window(&vcpu, step2, 2);
	assert_int_equal(conflicts(), 1);

	/* 3. unmaps blk: exactly blk goes, net stays */
	assert_int_equal(bar_unmap(&blk, WINDOW, 0x80), 0);
	const struct owner step3[] = {{0x00, 0x40, &net}};
	check_window(&vcpu, step3, 1);
	assert_int_equal(conflicts(), 0);

	/* 4. maps blk after it */
	assert_int_equal(bar_map(&blk, WINDOW + 0x80, 0x80), 0);
	const struct owner step4[] = {{0x00, 0x40, &net}, {0x80, 0x100, &blk}};
	check_window(&vcpu, step4, 2);

	/* 5. the OS unmaps net: bhyve's unregister found nothing here and aborted */
	assert_int_equal(bar_unmap(&net, WINDOW, 0x40), 0);
	const struct owner step5[] = {{0x80, 0x100, &blk}};
	check_window(&vcpu, step5, 1);

	/* ... and places it again */
	assert_int_equal(bar_map(&net, WINDOW + 0x100, 0x40), 0);
	const struct owner step6[] = {{0x80, 0x100, &blk}, {0x100, 0x140, &net}};
	check_window(&vcpu, step6, 2);

	assert_int_equal(bm_bhyve_global_free(), 0);
	assert_null(bm_bhyve_global());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(seed_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
