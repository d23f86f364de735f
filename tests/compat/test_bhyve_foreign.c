/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Regions that a host places in the layer's spaces with the core API (RAM, a core io
 * region, a container, an alias): bhyve's accesses reach them whole and correctly, the
 * layer's one-byte probe never touches them, and no access says success without having
 * been carried out.
 */
#include "../testutil.h"
#include "bhyve_testutil.h"

static uint8_t ram[0x100];

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(ram); i++)
		ram[i] = (uint8_t)i;
	return fixture_new(state, vcpu_id, 2);
}

static bm_system *sys_of(struct fixture *f)
{
	return bm_bhyve_system(f->b);
}

static bm_region *mem_root(struct fixture *f)
{
	return bm_space_root(bm_bhyve_mem_space(f->b));
}

static bm_region *io_root(struct fixture *f)
{
	return bm_space_root(bm_bhyve_io_space(f->b));
}

static bm_region *place_ram(struct fixture *f, bm_region *parent, uint64_t at)
{
	bm_region *r;
	assert_int_equal(bm_region_new_ram(sys_of(f), "ram", sizeof(ram), ram, &r), 0);
	assert_int_equal(bm_region_add(parent, r, at, 0), 0);
	return r;
}

static bm_region *place_io(struct fixture *f, bm_region *parent, uint64_t at, struct probe *p)
{
	bm_region *r;
	assert_int_equal(bm_region_new_io(sys_of(f), "core-io", 0x40, &probe_ops, p, &r), 0);
	assert_int_equal(bm_region_add(parent, r, at, 0), 0);
	return r;
}

/* Reads and writes RAM through the layer at gpa, where the RAM's byte off shows. */
static void ram_reached(struct fixture *f, uint64_t gpa, size_t off)
{
	uint64_t v = 0;
	assert_int_equal(rd(f, gpa, 4, &v), 0);
	assert_int_equal(v, (uint64_t)ram[off] | (uint64_t)ram[off + 1] << 8 |
	                        (uint64_t)ram[off + 2] << 16 | (uint64_t)ram[off + 3] << 24);
	assert_int_equal(wr(f, gpa + 1, 2, 0xbeef), 0);
	assert_int_equal(ram[off], (uint8_t)off); /* the byte before it: never probed */
	assert_int_equal(ram[off + 1], 0xef);
	assert_int_equal(ram[off + 2], 0xbe);
	assert_int_equal(ram[off + 3], (uint8_t)(off + 3));
	assert_int_equal(wr(f, gpa, 8, 0x8877665544332211ull), 0);
	assert_int_equal(rd(f, gpa, 8, &v), 0);
	assert_int_equal(v, 0x8877665544332211ull);
}

static void ram_region(void **state)
{
	struct fixture *f = *state;
	place_ram(f, mem_root(f), 0x20000);
	ram_reached(f, 0x20010, 0x10);
}

static void io_region(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	place_io(f, mem_root(f), 0x30000, &p);
	uint64_t v = 0;
	p.mem[8] = 0x11;
	p.mem[9] = 0x22;
	p.mem[10] = 0x33;
	p.mem[11] = 0x44;
	assert_int_equal(rd(f, 0x30008, 4, &v), 0);
	assert_int_equal(v, 0x44332211);
	assert_int_equal(p.reads, 1); /* the access, and no probe before it */
	assert_int_equal(p.last_offset, 8);
	assert_int_equal(p.last_size, 4);
	assert_int_equal(wr(f, 0x30010, 2, 0xcafe), 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last_size, 2);
	assert_int_equal(p.last_value, 0xcafe);
}

static void container_and_alias(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	bm_region *box, *ram, *alias;
	assert_int_equal(bm_region_new_container(sys_of(f), "box", 0x1000, &box), 0);
	assert_int_equal(bm_region_add(mem_root(f), box, 0x40000, 0), 0);
	place_io(f, box, 0x100, &p);
	uint64_t v = 0;
	assert_int_equal(wr(f, 0x40104, 4, 0x01020304), 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.last_offset, 4);
	assert_int_equal(p.last_value, 0x01020304);
	assert_int_equal(rd(f, 0x40104, 4, &v), 0);
	assert_int_equal(v, 0x01020304);
	assert_int_equal(p.reads, 1);
	/* The container's empty part shows nothing: unassigned, as in bhyve. */
	assert_int_equal(rd(f, 0x40000, 4, &v), ESRCH);

	ram = place_ram(f, mem_root(f), 0x50000);
	assert_int_equal(bm_region_new_alias(sys_of(f), "alias", ram, 0x80, 0x40, &alias), 0);
	assert_int_equal(bm_region_add(mem_root(f), alias, 0x60000, 0), 0);
	ram_reached(f, 0x60004, 0x84);
}

/* Where a host region and a registration overlap, the map's winner gets the access. */
static void overlap_with_registrations(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	struct dev under = {.name = "under"}, over = {.name = "over"};
	struct mem_range mr = dev_range(&under, 0x70000, 0x100);
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), 0);
	bm_region *io;
	assert_int_equal(bm_region_new_io(sys_of(f), "core-io", 0x40, &probe_ops, &p, &io), 0);
	assert_int_equal(bm_region_add(mem_root(f), io, 0x70000, 1), 0);
	uint64_t v = 0;
	assert_int_equal(rd(f, 0x70004, 4, &v), 0);
	assert_int_equal(p.reads, 1);
	assert_int_equal(under.calls, 0);
	assert_int_equal(rd(f, 0x70040, 4, &v), 0); /* past the host region */
	assert_int_equal(v, dev_value(&under, 0x70040));
	assert_int_equal(under.calls, 1);
	/* A registration over a host region of lower priority wins there. */
	assert_int_equal(bm_region_set_priority(io, -2), 0);
	mr = dev_range(&over, 0x70000, 0x10);
	assert_int_equal(bm_bhyve_register_mem(f->b, &mr), 0);
	assert_int_equal(rd(f, 0x70004, 4, &v), 0);
	assert_int_equal(v, dev_value(&over, 0x70004));
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.writes, 0);
}

static int failing_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size,
                        uint64_t *value)
{
	(void)vcpu;
	(void)offset;
	(void)size;
	(void)value;
	((struct probe *)opaque)->reads++;
	return -EIO;
}

static void errors_are_errors(void **state)
{
	struct fixture *f = *state;
	static const struct bm_region_ops failing = {.read = failing_read};
	struct probe p = {0};
	bm_region *io;
	assert_int_equal(bm_region_new_io(sys_of(f), "failing", 0x40, &failing, &p, &io), 0);
	assert_int_equal(bm_region_add(mem_root(f), io, 0x80000, 0), 0);
	uint64_t v = 42;
	assert_int_equal(rd(f, 0x80000, 4, &v), EIO);
	assert_int_equal(p.reads, 1);
	/* Sizes the core cannot carry whole are refused before anything is touched. */
	place_ram(f, mem_root(f), 0x90000);
	assert_int_equal(wr(f, 0x90000, 3, 0xffffff), EINVAL);
	assert_int_equal(rd(f, 0x90000, 16, &v), EINVAL);
	assert_int_equal(ram[0], 0);
	assert_int_equal(ram[1], 1);
	assert_int_equal(v, 42);
}

/* Once the host region leaves, its addresses are unassigned again. */
static void departed_region(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	bm_region *io = place_io(f, mem_root(f), 0xa0000, &p);
	uint64_t v;
	assert_int_equal(rd(f, 0xa0000, 1, &v), 0);
	assert_int_equal(bm_region_destroy(io), 0);
	assert_int_equal(rd(f, 0xa0000, 1, &v), ESRCH);
	assert_int_equal(wr(f, 0xa0000, 1, 0), ESRCH);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.writes, 0);
}

static void ports(void **state)
{
	struct fixture *f = *state;
	struct probe p = {0};
	struct dev d = {.name = "dev"};
	place_io(f, io_root(f), 0x500, &p);
	place_ram(f, io_root(f), 0x600);
	struct inout_port iop = dev_ports(&d, 0x700, 4, IOPORT_F_INOUT);
	assert_int_equal(bm_bhyve_register_inout(f->b, &iop), 0);
	uint32_t eax = 0;
	p.mem[2] = 0xaa;
	p.mem[3] = 0xbb;
	assert_int_equal(bm_bhyve_inout(f->b, NULL, &f->vcpu, 1, 0x502, 2, &eax), 0);
	assert_int_equal(eax, 0xbbaa);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.last_size, 2);
	eax = 0x12345678;
	assert_int_equal(bm_bhyve_inout(f->b, NULL, &f->vcpu, 0, 0x504, 4, &eax), 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.last_value, 0x12345678);
	eax = 0x5a;
	assert_int_equal(bm_bhyve_inout(f->b, NULL, &f->vcpu, 0, 0x610, 1, &eax), 0);
	assert_int_equal(ram[0x10], 0x5a);
	assert_int_equal(ram[0x11], 0x11); /* only the byte written */
	eax = 0;
	assert_int_equal(bm_bhyve_inout(f->b, NULL, &f->vcpu, 1, 0x610, 2, &eax), 0);
	assert_int_equal(eax, 0x115a);
	/* The registration beside them is served as before. */
	assert_int_equal(bm_bhyve_inout(f->b, NULL, &f->vcpu, 1, 0x701, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&d, 0x701));
	assert_int_equal(p.reads, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(ram_region, setup, teardown),
	    cmocka_unit_test_setup_teardown(io_region, setup, teardown),
	    cmocka_unit_test_setup_teardown(container_and_alias, setup, teardown),
	    cmocka_unit_test_setup_teardown(overlap_with_registrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(errors_are_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(departed_region, setup, teardown),
	    cmocka_unit_test_setup_teardown(ports, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
