/* SPDX-License-Identifier: BSD-2-Clause */
/* The memslot and ioeventfd listeners against a hypervisor that refuses what KVM refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "fake_hv.h"
#include "ioeventfd.h"
#include "memslots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MiB      (1ull << 20)
#define RAM_SIZE (64 * MiB)

struct env {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *vcpu;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	fake_hv_init(&e->hv);
	assert_int_equal(vm_new(&fake_hv_ops, &e->hv, RAM_SIZE, 1, &e->vm), 0);
	assert_int_equal(bm_vcpu_new(e->vm->sys, 0, NULL, &e->vcpu), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	assert_int_equal(bm_vcpu_free(e->vcpu), 0);
	vm_free(e->vm);
	pthread_mutex_destroy(&e->hv.lock);
	free(e);
	return 0;
}

static size_t slots(struct env *e, struct memslot *v)
{
	size_t n = memslots_list(e->vm->slots, v, FAKE_HV_SLOTS);
	assert_true(n <= FAKE_HV_SLOTS);
	return n;
}

static void assert_slot(const struct memslot *s, uint64_t gpa, uint64_t size, const void *hva,
                        bool readonly)
{
	assert_int_equal(s->gpa, gpa);
	assert_int_equal(s->size, size);
	assert_ptr_equal(s->hva, hva);
	assert_int_equal(s->readonly, readonly);
}

/* The listeners' tables say exactly what the hypervisor holds. */
static void tables_match_hv(struct env *e)
{
	struct memslot v[FAKE_HV_SLOTS];
	size_t n = slots(e, v);
	assert_int_equal(n, fake_hv_nslots(&e->hv));
	for (size_t i = 0; i < n; i++) {
		const struct fake_slot *s = &e->hv.slots[v[i].id];
		assert_true(s->used);
		assert_slot(&v[i], s->gpa, s->size, s->hva, s->readonly);
	}
	struct ioev_active a[FAKE_HV_IOEV];
	size_t na = ioev_list(e->vm->ioev, a, FAKE_HV_IOEV);
	assert_int_equal(na, fake_hv_nioev(&e->hv));
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (unsigned j = 0; j < FAKE_HV_IOEV && !found; j++) {
			const struct fake_ioev *h = &e->hv.ioev[j];
			found = h->used && h->pio == a[i].pio && h->addr == a[i].addr &&
			        h->len == a[i].len && h->datamatch == a[i].datamatch &&
			        h->data == a[i].data && h->fd == a[i].fd;
		}
		assert_true(found);
	}
}

/* After every step: nothing refused, both listeners agree with the flat views and the
 * hypervisor. */
static void consistent(struct env *e)
{
	assert_int_equal(e->hv.refusals, 0);
	assert_false(vm_stopping(e->vm));
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
	tables_match_hv(e);
}

/* Reads all ones, drops writes: what matters here is where the region shows. */
static const struct bm_region_ops no_ops = {0};

static bm_region *add_io(struct env *e, bm_space *space, const char *name, uint64_t size,
                         uint64_t addr, int priority)
{
	bm_region *r;
	assert_int_equal(bm_region_new_io(e->vm->sys, name, size, &no_ops, NULL, &r), 0);
	assert_int_equal(bm_region_add(bm_space_root(space), r, addr, priority), 0);
	return r;
}

static bm_region *add_ram(struct env *e, const char *name, void *host, uint64_t size, bool readonly,
                          uint64_t addr, int priority)
{
	bm_region *r;
	assert_int_equal(bm_region_new_ram(e->vm->sys, name, size, host, &r), 0);
	assert_int_equal(memslots_add_backing(e->vm->slots, r, host, readonly), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->mem), r, addr, priority), 0);
	return r;
}

static uint64_t read_mem(struct env *e, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bm_read(e->vcpu, e->vm->mem, addr, size, &v), 0);
	return v;
}

/* ---- memslots ---- */

static void test_ram_is_one_slot(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	assert_int_equal(slots(e, v), 1);
	assert_slot(&v[0], 0, RAM_SIZE, e->vm->ram, false);
	consistent(e);
}

/* A split point cuts the slots already installed and every later one. */
static void test_split_points(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	assert_int_equal(memslots_split_at(e->vm->slots, 0x100000), 0);
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[0], 0, 0x100000, e->vm->ram, false);
	assert_slot(&v[1], 0x100000, RAM_SIZE - 0x100000, e->vm->ram + 0x100000, false);
	consistent(e);
	assert_int_equal(memslots_split_at(e->vm->slots, 0x100000), 0); /* once is enough */
	assert_int_equal(memslots_split_at(e->vm->slots, 0x80000), 0);
	assert_int_equal(slots(e, v), 3);
	consistent(e);
	/* A hole across a split point leaves the pieces on either side mapped. */
	bm_region *hole = add_io(e, e->vm->mem, "hole", 0x2000, 0xff000, 1);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[1], 0x80000, 0xff000 - 0x80000, e->vm->ram + 0x80000, false);
	assert_slot(&v[2], 0x101000, RAM_SIZE - 0x101000, e->vm->ram + 0x101000, false);
	consistent(e);
	assert_int_equal(bm_region_del(hole), 0);
	consistent(e);
	assert_int_equal(memslots_split_at(e->vm->slots, 0x1001), -EINVAL);
	assert_int_equal(memslots_split_at(e->vm->slots, 0), -EINVAL);
	for (unsigned i = 2; i < 8; i++)
		assert_int_equal(memslots_split_at(e->vm->slots, (uint64_t)i << 20), 0);
	assert_int_equal(memslots_split_at(e->vm->slots, 9u << 20), -ENOSPC);
	assert_int_equal(slots(e, v), 9);
	consistent(e);
}

static void test_ram_above_4g(void **state)
{
	(void)state;
	struct fake_hv hv;
	fake_hv_init(&hv);
	struct vm *vm;
	/* Only address space: the mapping is never touched. */
	assert_int_equal(vm_new(&fake_hv_ops, &hv, VM_BELOW_4G_MAX + 16 * MiB, 1, &vm), 0);
	struct memslot v[4];
	assert_int_equal(memslots_list(vm->slots, v, 4), 2);
	assert_slot(&v[0], 0, VM_BELOW_4G_MAX, vm->ram, false);
	assert_slot(&v[1], VM_HIGH_RAM_BASE, 16 * MiB, vm->ram + VM_BELOW_4G_MAX, false);
	assert_int_equal(memslots_check(vm->slots, stderr), 0);
	assert_int_equal(hv.refusals, 0);
	vm_free(vm);
	pthread_mutex_destroy(&hv.lock);
}

static void test_io_holes_split_ram(void **state)
{
	struct env *e = *state;
	uint8_t *ram = e->vm->ram;
	struct memslot v[FAKE_HV_SLOTS];
	bm_region *page = add_io(e, e->vm->mem, "page", 0x1000, 0x100000, 1);
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[0], 0, 0x100000, ram, false);
	assert_slot(&v[1], 0x101000, RAM_SIZE - 0x101000, ram + 0x101000, false);
	consistent(e);

	/* 16 bytes in the middle of a page: that page and its neighbour bytes are left to
	 * dispatch, the pages around stay mapped. */
	bm_region *small = add_io(e, e->vm->mem, "small", 16, 0x200008, 1);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[1], 0x101000, 0x200000 - 0x101000, ram + 0x101000, false);
	assert_slot(&v[2], 0x201000, RAM_SIZE - 0x201000, ram + 0x201000, false);
	consistent(e);
	memcpy(ram + 0x200000, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(read_mem(e, 0x200000, 8), 0x8877665544332211ull);
	ram[0x200018] = 0x5a;
	assert_int_equal(read_mem(e, 0x200018, 1), 0x5a);

	/* Moving it inside the same page changes the RAM ranges but no slot: the
	 * hypervisor is not asked anything. */
	unsigned calls = e->hv.calls;
	assert_int_equal(bm_region_move(small, 0x200020), 0);
	assert_int_equal(e->hv.calls, calls);
	consistent(e);

	/* The hole moves: the ranges around it change bounds. */
	assert_int_equal(bm_region_move(page, 0x180000), 0);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[0], 0, 0x180000, ram, false);
	assert_slot(&v[1], 0x181000, 0x200000 - 0x181000, ram + 0x181000, false);
	consistent(e);

	assert_int_equal(bm_region_del(small), 0);
	assert_int_equal(bm_region_del(page), 0);
	assert_int_equal(slots(e, v), 1);
	assert_slot(&v[0], 0, RAM_SIZE, ram, false);
	consistent(e);
}

static void test_ram_over_ram(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x10000);
	assert_non_null(buf);
	memset(buf, 0xab, 0x10000);
	bm_region *over = add_ram(e, "over", buf, 0x10000, false, 0x300000, 1);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[0], 0, 0x300000, e->vm->ram, false);
	assert_slot(&v[1], 0x300000, 0x10000, buf, false);
	assert_slot(&v[2], 0x310000, RAM_SIZE - 0x310000, e->vm->ram + 0x310000, false);
	consistent(e);

	/* Half a page off: the host and guest pages disagree, so it is served by dispatch,
	 * and so are the partial pages of RAM beside it. */
	assert_int_equal(bm_region_move(over, 0x300800), 0);
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[0], 0, 0x300000, e->vm->ram, false);
	assert_slot(&v[1], 0x311000, RAM_SIZE - 0x311000, e->vm->ram + 0x311000, false);
	consistent(e);
	assert_int_equal(read_mem(e, 0x300800, 8), 0xababababababababull);
	assert_int_equal(bm_write(e->vcpu, e->vm->mem, 0x300804, 4, 0x01020304), 0);
	assert_int_equal(buf[4], 0x04);

	assert_int_equal(bm_region_del(over), 0);
	assert_int_equal(slots(e, v), 1);
	consistent(e);
	assert_int_equal(bm_region_destroy(over), 0);
	free(buf);
}

static void test_readonly_backing(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *rom = aligned_alloc(4096, 0x8000);
	assert_non_null(rom);
	bm_region *r = add_ram(e, "rom", rom, 0x8000, true, 0x400000, 1);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[0], 0, 0x400000, e->vm->ram, false);
	assert_slot(&v[1], 0x400000, 0x8000, rom, true);
	assert_slot(&v[2], 0x408000, RAM_SIZE - 0x408000, e->vm->ram + 0x408000, false);
	assert_true(e->hv.slots[v[1].id].readonly);
	consistent(e);
	assert_int_equal(bm_region_destroy(r), 0);
	consistent(e);
	free(rom);
}

static void test_unaligned_alias_left_to_dispatch(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	bm_region *alias;
	assert_int_equal(
	    bm_region_new_alias(e->vm->sys, "odd", e->vm->ram_region, 0x800, 0x10000, &alias), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->mem), alias, 0x8000000, 0), 0);
	assert_int_equal(slots(e, v), 1);
	consistent(e);
	memcpy(e->vm->ram + 0x800, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(read_mem(e, 0x8000000, 8), 0x0807060504030201ull);
	assert_int_equal(bm_write(e->vcpu, e->vm->mem, 0x8000010, 2, 0xbeef), 0);
	assert_int_equal(e->vm->ram[0x810], 0xef);
	assert_int_equal(e->vm->ram[0x811], 0xbe);

	/* Page-aligned, it is RAM the guest reaches directly. */
	assert_int_equal(bm_region_set_alias_offset(alias, 0x1000), 0);
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[1], 0x8000000, 0x10000, e->vm->ram + 0x1000, false);
	consistent(e);
	assert_int_equal(bm_region_set_alias_offset(alias, 0x1001), 0);
	assert_int_equal(slots(e, v), 1);
	consistent(e);
}

static void test_backing_declared_late(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x4000);
	assert_non_null(buf);
	bm_region *r, *c;
	assert_int_equal(bm_region_new_ram(e->vm->sys, "late", 0x4000, buf, &r), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->mem), r, 0x9000000, 0), 0);
	assert_int_equal(slots(e, v), 1);
	assert_int_equal(memslots_add_backing(e->vm->slots, r, buf, false), 0);
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[1], 0x9000000, 0x4000, buf, false);
	consistent(e);
	assert_int_equal(memslots_add_backing(e->vm->slots, r, buf, false), -EEXIST);
	assert_int_equal(bm_region_new_container(e->vm->sys, "c", 0x1000, &c), 0);
	assert_int_equal(memslots_add_backing(e->vm->slots, c, buf, false), -EINVAL);
	assert_int_equal(bm_region_destroy(r), 0);
	consistent(e);
	free(buf);
}

/* During setup a refusal is the caller's to handle: nothing is left behind, and the run
 * goes on. */
static void test_backing_refused_at_setup(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x4000);
	assert_non_null(buf);
	bm_region *r;
	assert_int_equal(bm_region_new_ram(e->vm->sys, "split", 0x4000, buf, &r), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->mem), r, 0x9000000, 0), 0);
	add_io(e, e->vm->mem, "hole", 0x1000, 0x9001000, 1);
	/* Its second piece lands on a slot that is not ours. */
	assert_int_equal(
	    fake_hv_ops.set_memslot(&e->hv, FAKE_HV_SLOTS - 1, 0x9002000, 0x1000, buf, false), 0);
	assert_int_equal(memslots_add_backing(e->vm->slots, r, buf, false), -EEXIST);
	assert_false(vm_stopping(e->vm));
	assert_int_equal(slots(e, v), 1);
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);

	assert_int_equal(fake_hv_ops.set_memslot(&e->hv, FAKE_HV_SLOTS - 1, 0, 0, NULL, false), 0);
	e->hv.refusals = 0;
	assert_int_equal(memslots_add_backing(e->vm->slots, r, buf, false), 0);
	assert_int_equal(slots(e, v), 3);
	assert_slot(&v[1], 0x9000000, 0x1000, buf, false);
	assert_slot(&v[2], 0x9002000, 0x2000, buf + 0x2000, false);
	consistent(e);
	assert_int_equal(bm_region_destroy(r), 0);
	consistent(e);
	free(buf);
}

static void test_backing_removed(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x4000);
	assert_non_null(buf);
	memset(buf, 0x3c, 0x4000);
	bm_region *r = add_ram(e, "gone", buf, 0x4000, false, 0x9000000, 0);
	assert_int_equal(slots(e, v), 2);
	assert_int_equal(memslots_remove_backing(e->vm->slots, r), 0);
	assert_int_equal(slots(e, v), 1);
	consistent(e);
	/* Still visible: served by dispatch. */
	assert_int_equal(read_mem(e, 0x9000000, 4), 0x3c3c3c3c);
	assert_int_equal(memslots_remove_backing(e->vm->slots, r), -ENOENT);
	/* Moves no longer concern the listener. */
	unsigned calls = e->hv.calls;
	assert_int_equal(bm_region_move(r, 0xa000000), 0);
	assert_int_equal(e->hv.calls, calls);
	consistent(e);
	assert_int_equal(bm_region_destroy(r), 0);
	free(buf);
}

/* Exclusive regions that overlap: the RAM range that wins is still RAM. */
static void test_conflicting_ram_still_mapped(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x10000);
	assert_non_null(buf);
	bm_region *io = add_io(e, e->vm->mem, "io-bar", 0x1000, 0xd0008000, 0);
	assert_int_equal(bm_region_set_exclusive(io, true), 0);
	bm_region *r;
	assert_int_equal(bm_region_new_ram(e->vm->sys, "ram-bar", 0x10000, buf, &r), 0);
	assert_int_equal(memslots_add_backing(e->vm->slots, r, buf, false), 0);
	assert_int_equal(bm_region_set_exclusive(r, true), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->mem), r, 0xd0000000, 0), 0);
	struct bm_conflict c;
	assert_int_equal(bm_space_conflicts(e->vm->mem, &c, 1), 1);
	uint64_t covered = 0;
	size_t n = slots(e, v);
	for (size_t i = 0; i < n; i++)
		if (v[i].gpa >= 0xd0000000 && v[i].gpa < 0xd0010000)
			covered += v[i].size;
	assert_int_equal(covered, 0x10000);
	consistent(e);
	assert_int_equal(bm_region_del(io), 0);
	assert_int_equal(bm_space_conflicts(e->vm->mem, &c, 1), 0);
	consistent(e);
	assert_int_equal(bm_region_destroy(r), 0);
	free(buf);
}

static bool contains(const char *text, const char *part)
{
	return text && strstr(text, part);
}

static void test_out_of_slots_stops(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	bm_region *holes[FAKE_HV_SLOTS];
	assert_int_equal(bm_begin(e->vm->sys), 0);
	for (unsigned i = 0; i < FAKE_HV_SLOTS; i++)
		holes[i] = add_io(e, e->vm->mem, "hole", 0x1000, 0x100000 + i * 0x10000ull, 1);
	assert_int_equal(bm_commit(e->vm->sys), 0);
	/* 65 pieces of RAM for 64 slots. */
	assert_true(vm_stopping(e->vm));
	assert_true(contains(e->vm->stop_reason, "all 64 memory slots are in use"));
	assert_int_equal(e->vm->stop_status, VM_STATUS_ERROR);
	assert_int_equal(slots(e, v), FAKE_HV_SLOTS);
	tables_match_hv(e);
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	assert_non_null(report);
	assert_int_equal(memslots_check(e->vm->slots, report), -EPROTO);
	fclose(report);
	assert_true(contains(text, "missing slot"));
	free(text);

	/* Once there are few enough pieces again, the table is whole again. */
	assert_int_equal(bm_begin(e->vm->sys), 0);
	for (unsigned i = 0; i < FAKE_HV_SLOTS; i++)
		assert_int_equal(bm_region_destroy(holes[i]), 0);
	assert_int_equal(bm_commit(e->vm->sys), 0);
	assert_int_equal(slots(e, v), 1);
	assert_slot(&v[0], 0, RAM_SIZE, e->vm->ram, false);
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
	tables_match_hv(e);
}

static void test_refused_slot_stops(void **state)
{
	struct env *e = *state;
	struct memslot v[FAKE_HV_SLOTS];
	uint8_t *buf = aligned_alloc(4096, 0x2000);
	assert_non_null(buf);
	/* Something else holds that guest range. */
	assert_int_equal(
	    fake_hv_ops.set_memslot(&e->hv, FAKE_HV_SLOTS - 1, 0x8001000, 0x1000, buf, false), 0);
	bm_region *r = add_ram(e, "clash", buf, 0x2000, false, 0x8000000, 0);
	assert_true(vm_stopping(e->vm));
	assert_true(contains(e->vm->stop_reason, "0x8000000"));
	assert_int_equal(e->hv.refusals, 1);
	assert_int_equal(slots(e, v), 1); /* RAM only: the refused one is not recorded */
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	assert_non_null(report);
	assert_int_equal(memslots_check(e->vm->slots, report), -EPROTO);
	fclose(report);
	assert_true(contains(text, "missing slot: gpa 0x8000000 size 0x2000"));
	free(text);
	/* Its removal asks the hypervisor nothing: it holds nothing of ours there. */
	unsigned calls = e->hv.calls;
	assert_int_equal(bm_region_destroy(r), 0);
	assert_int_equal(e->hv.calls, calls);
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
	free(buf);
}

/* ---- ioeventfds ---- */

static const struct fake_ioev *fd_at(struct env *e, bool pio, uint64_t addr)
{
	return fake_hv_ioev_at(&e->hv, pio, addr);
}

static void assert_fd_at(struct env *e, bool pio, uint64_t addr, int fd)
{
	const struct fake_ioev *f = fd_at(e, pio, addr);
	assert_non_null(f);
	assert_int_equal(f->fd, fd);
}

static void test_doorbell_follows_region(void **state)
{
	struct env *e = *state;
	bm_space *io = e->vm->io;
	bm_region *r = add_io(e, io, "dev", 0x40, 0xc000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, 100), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	const struct fake_ioev *f = fd_at(e, true, 0xc010);
	assert_non_null(f);
	assert_int_equal(f->len, 2);
	assert_int_equal(f->fd, 100);
	assert_false(f->datamatch);
	consistent(e);

	assert_int_equal(bm_region_move(r, 0xd000), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xd010, 100);
	consistent(e);

	/* Hidden: the guest's write must reach the region that covers it. */
	bm_region *cover = add_io(e, io, "cover", 0x20, 0xd000, 1);
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	consistent(e);
	assert_int_equal(bm_region_del(cover), 0);
	assert_fd_at(e, true, 0xd010, 100);
	consistent(e);

	/* One of its two bytes hidden is as good as hidden. */
	bm_region *byte = add_io(e, io, "byte", 1, 0xd011, 1);
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	consistent(e);
	assert_int_equal(bm_region_move(byte, 0xd012), 0);
	assert_fd_at(e, true, 0xd010, 100);
	consistent(e);
	/* A change beside it leaves it assigned, without asking the hypervisor. */
	unsigned calls = e->hv.calls;
	assert_int_equal(bm_region_move(byte, 0xd020), 0);
	assert_int_equal(e->hv.calls, calls);
	consistent(e);

	assert_int_equal(bm_region_del(r), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	consistent(e);
}

static void test_watch_rules(void **state)
{
	struct env *e = *state;
	struct ioev *ev = e->vm->ioev;
	bm_region *r;
	assert_int_equal(bm_region_new_io(e->vm->sys, "dev", 0x40, &no_ops, NULL, &r), 0);
	assert_int_equal(ioev_watch(ev, r, 0x10, 3, false, 0, 1), -EINVAL);
	assert_int_equal(ioev_watch(ev, r, 0x3f, 2, false, 0, 1), -EINVAL);
	assert_int_equal(ioev_watch(ev, r, UINT64_MAX, 1, false, 0, 1), -EINVAL);
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, true, 0x10000, 1), -EINVAL);
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, false, 0, -1), -EINVAL);
	assert_int_equal(ioev_watch(ev, NULL, 0x10, 2, false, 0, 1), -EINVAL);

	/* Before the region shows: assigned when it does. */
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, true, 1, 1), 0);
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, true, 2, 2), 0);
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, true, 1, 3), -EEXIST);
	assert_int_equal(ioev_watch(ev, r, 0x10, 2, false, 0, 3), -EEXIST);
	assert_int_equal(ioev_watch(ev, r, 0x10, 4, false, 0, 4), 0); /* another length */
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->io), r, 0x6000, 0), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 3);
	struct ioev_active a[4];
	assert_int_equal(ioev_list(ev, a, 4), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(a[i].pio);
		assert_int_equal(a[i].addr, 0x6010);
	}
	consistent(e);
}

static void test_unwatch(void **state)
{
	struct env *e = *state;
	struct ioev *ev = e->vm->ioev;
	bm_region *a = add_io(e, e->vm->io, "a", 0x40, 0xc000, 0);
	bm_region *b = add_io(e, e->vm->io, "b", 0x40, 0xd000, 0);
	assert_int_equal(ioev_watch(ev, a, 0x10, 2, false, 0, 1), 0);
	assert_int_equal(ioev_watch(ev, a, 0x20, 4, false, 0, 2), 0);
	assert_int_equal(ioev_watch(ev, b, 0x10, 2, false, 0, 3), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 3);
	assert_int_equal(ioev_unwatch(ev, a), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xd010, 3);
	consistent(e);
	assert_int_equal(ioev_unwatch(ev, a), -ENOENT);
	/* b's watch took another index: it still follows b, and only b. */
	assert_int_equal(bm_region_move(b, 0xe000), 0);
	assert_int_equal(bm_region_move(a, 0xf000), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xe010, 3);
	consistent(e);
	assert_int_equal(ioev_unwatch(ev, b), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	consistent(e);
}

static void test_swap_in_one_transaction(void **state)
{
	struct env *e = *state;
	bm_region *a = add_io(e, e->vm->io, "a", 0x40, 0xc000, 0);
	bm_region *b = add_io(e, e->vm->io, "b", 0x40, 0xd000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, a, 0x10, 2, false, 0, 1), 0);
	assert_int_equal(ioev_watch(e->vm->ioev, b, 0x10, 2, false, 0, 2), 0);
	consistent(e);
	assert_int_equal(bm_begin(e->vm->sys), 0);
	assert_int_equal(bm_region_move(a, 0xd000), 0);
	assert_int_equal(bm_region_move(b, 0xc000), 0);
	assert_int_equal(bm_commit(e->vm->sys), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 2);
	assert_fd_at(e, true, 0xc010, 2);
	assert_fd_at(e, true, 0xd010, 1);
	consistent(e);
}

static void test_swap_in_two_commits(void **state)
{
	struct env *e = *state;
	bm_region *a = add_io(e, e->vm->io, "a", 0x40, 0xc000, 0);
	bm_region *b = add_io(e, e->vm->io, "b", 0x40, 0xd000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, a, 0x10, 2, false, 0, 1), 0);
	assert_int_equal(ioev_watch(e->vm->ioev, b, 0x10, 2, false, 0, 2), 0);
	/* a lands on b, which it hides (the newest wins). */
	assert_int_equal(bm_region_move(a, 0xd000), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xd010, 1);
	consistent(e);
	assert_int_equal(bm_region_move(b, 0xc000), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 2);
	assert_fd_at(e, true, 0xc010, 2);
	assert_fd_at(e, true, 0xd010, 1);
	consistent(e);
}

static void test_alias_shows_twice(void **state)
{
	struct env *e = *state;
	bm_region *r = add_io(e, e->vm->io, "dev", 0x40, 0xc000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, 7), 0);
	bm_region *alias;
	assert_int_equal(bm_region_new_alias(e->vm->sys, "dev-alias", r, 0, 0x40, &alias), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->io), alias, 0xe000, 0), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 2);
	assert_fd_at(e, true, 0xc010, 7);
	assert_fd_at(e, true, 0xe010, 7);
	consistent(e);
	/* The window past the doorbell shows none of it. */
	assert_int_equal(bm_region_set_alias_offset(alias, 0x20), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	consistent(e);
	assert_int_equal(bm_region_set_alias_offset(alias, 0x8), 0);
	assert_fd_at(e, true, 0xe008, 7);
	consistent(e);
	assert_int_equal(bm_region_destroy(alias), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	consistent(e);
}

static void test_mmio_doorbell(void **state)
{
	struct env *e = *state;
	bm_region *r = add_io(e, e->vm->mem, "mmio", 0x1000, 0xd0000000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x100, 4, true, 7, 5), 0);
	const struct fake_ioev *f = fd_at(e, false, 0xd0000100);
	assert_non_null(f);
	assert_int_equal(f->len, 4);
	assert_true(f->datamatch);
	assert_int_equal(f->data, 7);
	assert_null(fd_at(e, true, 0xd0000100));
	consistent(e);

	/* Over RAM: a hole in the slots and a doorbell in it. */
	assert_int_equal(bm_region_move(r, 0x100000), 0);
	assert_int_equal(bm_region_set_priority(r, 1), 0);
	assert_non_null(fd_at(e, false, 0x100100));
	struct memslot v[FAKE_HV_SLOTS];
	assert_int_equal(slots(e, v), 2);
	assert_slot(&v[1], 0x101000, RAM_SIZE - 0x101000, e->vm->ram + 0x101000, false);
	consistent(e);
}

static void test_refused_ioeventfd(void **state)
{
	struct env *e = *state;
	/* Something else holds port 0xc010. */
	assert_int_equal(fake_hv_ops.ioeventfd(&e->hv, true, true, 0xc010, 2, false, 0, 9), 0);
	bm_region *r = add_io(e, e->vm->io, "dev", 0x40, 0xc000, 0);

	/* At setup the caller hears of it, and the watch is not kept. */
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, 1), -EEXIST);
	assert_false(vm_stopping(e->vm));
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
	assert_int_equal(ioev_list(e->vm->ioev, NULL, 0), 0);

	/* From the listener the run stops. */
	assert_int_equal(bm_region_del(r), 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, 1), 0);
	assert_int_equal(bm_region_add(bm_space_root(e->vm->io), r, 0xc000, 0), 0);
	assert_true(vm_stopping(e->vm));
	assert_true(contains(e->vm->stop_reason, "could not assign the ioeventfd of dev+0x10 at "
	                                         "port 0xc010"));
	assert_int_equal(ioev_list(e->vm->ioev, NULL, 0), 0);
	char *text = NULL;
	size_t len = 0;
	FILE *report = open_memstream(&text, &len);
	assert_non_null(report);
	assert_int_equal(ioev_check(e->vm->ioev, report), -EPROTO);
	fclose(report);
	assert_true(contains(text, "missing ioeventfd: port 0xc010 len 2 fd 1"));
	free(text);
	/* Nothing of ours to take back there. */
	unsigned calls = e->hv.calls;
	assert_int_equal(bm_region_del(r), 0);
	assert_int_equal(e->hv.calls, calls);
	assert_int_equal(ioev_check(e->vm->ioev, stderr), 0);
}

/* A deassignment the hypervisor refuses from the listener stops the run, and the table
 * keeps what the hypervisor may still hold. */
static void test_refused_deassign_stops(void **state)
{
	struct env *e = *state;
	bm_region *r = add_io(e, e->vm->io, "dev", 0x40, 0xc000, 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, 1), 0);
	/* Taken away behind the listener's back: its deassignment then fails. */
	assert_int_equal(fake_hv_ops.ioeventfd(&e->hv, false, true, 0xc010, 2, false, 0, 1), 0);
	assert_int_equal(bm_region_move(r, 0xd000), 0);
	assert_true(vm_stopping(e->vm));
	assert_true(contains(e->vm->stop_reason, "could not deassign the ioeventfd of dev+0x10 at "
	                                         "port 0xc010"));
	struct ioev_active a[4];
	assert_int_equal(ioev_list(e->vm->ioev, a, 4), 2);
	assert_int_equal(a[0].addr, 0xc010);
	assert_int_equal(a[1].addr, 0xd010);
}

/* ---- PCI I/O BARs programmed by the guest ---- */

static void cfg_write(struct env *e, unsigned dev, unsigned reg, unsigned size, uint32_t value)
{
	assert_int_equal(
	    bm_write(e->vcpu, e->vm->io, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & ~3u)), 0);
	assert_int_equal(bm_write(e->vcpu, e->vm->io, 0xcfc + (reg & 3), size, value), 0);
}

static bm_region *io_function(struct env *e, unsigned dev, int fd)
{
	bm_region *r;
	assert_int_equal(bm_region_new_io(e->vm->sys, "doorbells", 0x40, &no_ops, NULL, &r), 0);
	assert_int_equal(ioev_watch(e->vm->ioev, r, 0x10, 2, false, 0, fd), 0);
	struct bm_pci_func_desc desc = {
	    .vendor_id = 0x1234,
	    .device_id = 0x0001,
	    .class_code = 0xff0000,
	    .bars[0] = {BM_PCI_BAR_IO, 0x40, .region = r},
	};
	bm_pci_func *f;
	assert_int_equal(bm_pci_func_new(bm_pci_host_root_bus(e->vm->pci), dev, 0, &desc, &f), 0);
	return r;
}

static void test_pci_io_bar(void **state)
{
	struct env *e = *state;
	io_function(e, 3, 11);
	cfg_write(e, 3, 0x10, 4, 0xc000);
	assert_int_equal(fake_hv_nioev(&e->hv), 0); /* I/O decode still off */
	cfg_write(e, 3, 0x04, 2, 1);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xc010, 11);
	consistent(e);
	cfg_write(e, 3, 0x10, 4, 0xd040);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xd050, 11);
	consistent(e);
	cfg_write(e, 3, 0x04, 2, 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 0);
	consistent(e);
}

static void test_pci_io_bars_swap(void **state)
{
	struct env *e = *state;
	io_function(e, 3, 1);
	io_function(e, 4, 2);
	cfg_write(e, 3, 0x10, 4, 0xc000);
	cfg_write(e, 4, 0x10, 4, 0xd000);
	cfg_write(e, 3, 0x04, 2, 1);
	cfg_write(e, 4, 0x04, 2, 1);
	assert_fd_at(e, true, 0xc010, 1);
	assert_fd_at(e, true, 0xd010, 2);
	consistent(e);

	/* As a guest does it: one BAR at a time, the first hiding the second for a while. */
	cfg_write(e, 3, 0x10, 4, 0xd000);
	assert_int_equal(fake_hv_nioev(&e->hv), 1);
	assert_fd_at(e, true, 0xd010, 1);
	consistent(e);
	cfg_write(e, 4, 0x10, 4, 0xc000);
	assert_fd_at(e, true, 0xc010, 2);
	assert_fd_at(e, true, 0xd010, 1);
	consistent(e);

	/* Back, both writes published as one change. */
	assert_int_equal(bm_begin(e->vm->sys), 0);
	cfg_write(e, 3, 0x10, 4, 0xc000);
	cfg_write(e, 4, 0x10, 4, 0xd000);
	assert_int_equal(bm_commit(e->vm->sys), 0);
	assert_int_equal(fake_hv_nioev(&e->hv), 2);
	assert_fd_at(e, true, 0xc010, 1);
	assert_fd_at(e, true, 0xd010, 2);
	consistent(e);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_ram_is_one_slot),
	    cmocka_unit_test(test_ram_above_4g),
	    T(test_split_points),
	    T(test_io_holes_split_ram),
	    T(test_ram_over_ram),
	    T(test_readonly_backing),
	    T(test_unaligned_alias_left_to_dispatch),
	    T(test_backing_declared_late),
	    T(test_backing_refused_at_setup),
	    T(test_backing_removed),
	    T(test_conflicting_ram_still_mapped),
	    T(test_out_of_slots_stops),
	    T(test_refused_slot_stops),
	    T(test_doorbell_follows_region),
	    T(test_watch_rules),
	    T(test_unwatch),
	    T(test_swap_in_one_transaction),
	    T(test_swap_in_two_commits),
	    T(test_alias_shows_twice),
	    T(test_mmio_doorbell),
	    T(test_refused_ioeventfd),
	    T(test_refused_deassign_stops),
	    T(test_pci_io_bar),
	    T(test_pci_io_bars_swap),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
