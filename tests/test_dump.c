/* SPDX-License-Identifier: BSD-2-Clause */
/* Dumps: QEMU's "info mtree" and "info mtree -f" formats, and JSON. */
#include "testutil.h"

static char *dump(int (*fn)(bm_space *, FILE *), bm_space *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(fn(s, f), 0);
	fclose(f);
	return buf;
}

/* A small arm64-virt-like map: RAM, a device, a PCI window alias with a BAR and an MSI-X
 * table overlay, and a disabled region. */
static void build(struct env *e, uint8_t *ram_host)
{
	bm_region *ram, *uart, *pci, *bar, *regs, *msix, *alias, *off;
	assert_int_equal(bm_region_new_ram(e->sys, "mach-virt.ram", 0x1000, ram_host, &ram), 0);
	uart = new_io(e, "pl011", 0x1000, NULL);
	pci = new_container(e, "pci-mmio", BM_SIZE_ALL);
	bar = new_container(e, "00:02.0/bar1", 0x1000);
	regs = new_io(e, "virtio-regs", 0x1000, NULL);
	msix = new_io(e, "msix-table", 0x40, NULL);
	off = new_io(e, "gone", 0x10, NULL);
	assert_int_equal(bm_region_add(bar, msix, 0, 1), 0);
	assert_int_equal(bm_region_add(bar, regs, 0, 0), 0);
	assert_int_equal(bm_region_add(pci, bar, 0x10000000, 0), 0);
	assert_int_equal(
	    bm_region_new_alias(e->sys, "pcie-mmio", pci, 0x10000000, 0x2eff0000, &alias), 0);
	assert_int_equal(bm_region_add(e->root, uart, 0x9000000, 0), 0);
	assert_int_equal(bm_region_add(e->root, alias, 0x10000000, 0), 0);
	assert_int_equal(bm_region_add(e->root, ram, 0x40000000, 0), 0);
	assert_int_equal(bm_region_add(e->root, off, 0x50000000, 0), 0);
	assert_int_equal(bm_region_set_enabled(off, false), 0);
}

static void test_mtree(void **state)
{
	struct env *e = *state;
	uint8_t host[0x1000];
	build(e, host);
	char *s = dump(bm_space_dump_mtree, e->mem);
	assert_string_equal(
	    s, "address-space: memory\n"
	       "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n"
	       "    0000000009000000-0000000009000fff (prio 0, i/o): pl011\n"
	       "    0000000010000000-000000003efeffff (prio 0, i/o): alias pcie-mmio @pci-mmio "
	       "0000000010000000-000000003efeffff\n"
	       "    0000000040000000-0000000040000fff (prio 0, ram): mach-virt.ram\n"
	       "    0000000050000000-000000005000000f (prio 0, i/o): gone [disabled]\n"
	       "\n"
	       "memory-region: pci-mmio\n"
	       "  0000000000000000-ffffffffffffffff (prio 0, i/o): pci-mmio\n"
	       "    0000000010000000-0000000010000fff (prio 0, i/o): 00:02.0/bar1\n"
	       "      0000000010000000-000000001000003f (prio 1, i/o): msix-table\n"
	       "      0000000010000000-0000000010000fff (prio 0, i/o): virtio-regs\n"
	       "\n");
	free(s);
}

static void test_flat(void **state)
{
	struct env *e = *state;
	uint8_t host[0x1000];
	build(e, host);
	char *s = dump(bm_space_dump_flat, e->mem);
	assert_string_equal(
	    s, "FlatView #0\n"
	       " AS \"memory\", root: system\n"
	       " Root memory region: system\n"
	       "  0000000009000000-0000000009000fff (prio 0, i/o): pl011\n"
	       "  0000000010000000-000000001000003f (prio 1, i/o): msix-table\n"
	       "  0000000010000040-0000000010000fff (prio 0, i/o): virtio-regs @0000000000000040\n"
	       "  0000000040000000-0000000040000fff (prio 0, ram): mach-virt.ram\n"
	       "\n");
	free(s);
}

static void test_json(void **state)
{
	struct env *e = *state;
	uint8_t host[0x1000];
	build(e, host);
	char *s = dump(bm_space_dump_json, e->mem);
	assert_non_null(strstr(s, "\"space\": \"memory\""));
	assert_non_null(strstr(s,
	                       "{\"start\": \"0x0000000010000040\", \"end\": "
	                       "\"0x0000000010000fff\", \"priority\": 0, \"type\": \"i/o\", "
	                       "\"region\": \"virtio-regs\", \"offset\": \"0x0000000000000040\", "
	                       "\"conflict\": false}"));
	assert_non_null(strstr(s, "\"kind\": \"alias\""));
	assert_non_null(strstr(s, "\"alias_of\": \"pci-mmio\""));
	assert_non_null(strstr(s, "\"conflicts\": []"));
	/* The whole document is checked by a real JSON parser in the dump-json test. */
	char *path = getenv("BUSMAP_JSON_OUT");
	if (path) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(s, f);
		fclose(f);
	}
	free(s);
}

static void test_names_escaped(void **state)
{
	struct env *e = *state;
	bm_region *r = new_io(e, "a\"b\\c\n", 0x10, NULL);
	assert_int_equal(bm_region_add(e->root, r, 0x100, 0), 0);
	char *s = dump(bm_space_dump_json, e->mem);
	assert_non_null(strstr(s, "\"a\\\"b\\\\c\\u000a\""));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mtree, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_flat, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_json, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_names_escaped, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
