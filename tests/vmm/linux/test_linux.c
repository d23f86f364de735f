/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Direct Linux boot without KVM: which bzImages -kernel accepts, and what the loader leaves
 * in guest memory for the 32-bit entry (kernel at 1 MiB, zero page, e820 map, command
 * line, initrd) and in vCPU 0's registers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmdline.h"
#include "linux.h"

#define SETUP_SECTS  3
#define SETUP_SIZE   ((SETUP_SECTS + 1) * 512)
#define PAYLOAD_SIZE 0x9000u
#define MIB          (1ull << 20)

/* The fields of the header a test may change before the image is written. */
struct image {
	uint16_t version;
	uint8_t loadflags;
	uint32_t code32_start;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint32_t init_size;
	uint8_t jump_disp; /* the header ends at 0x202 + this */
	const char *magic;
	size_t payload; /* bytes after the setup code */
};

static const struct image debian_like = {
    .version = 0x20f,
    .loadflags = 0x01,
    .code32_start = 0x100000,
    .initrd_addr_max = 0x7fffffff,
    .kernel_alignment = 0x200000,
    .relocatable = 1,
    .cmdline_size = 2047,
    .pref_address = 0x1000000,
    .init_size = 0x400000,
    .jump_disp = 0x6a,
    .magic = "HdrS",
    .payload = PAYLOAD_SIZE,
};

static void put(uint8_t *p, unsigned bytes, uint64_t v)
{
	for (unsigned i = 0; i < bytes; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = bytes; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static uint8_t payload_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_image(const char *path, const struct image *im)
{
	size_t len = SETUP_SIZE + im->payload;
	uint8_t *b = calloc(1, len);
	assert_non_null(b);
	b[0x1f1] = SETUP_SECTS;
	put(b + 0x1fe, 2, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = im->jump_disp;
	memcpy(b + 0x202, im->magic, 4);
	put(b + 0x206, 2, im->version);
	b[0x211] = im->loadflags;
	put(b + 0x214, 4, im->code32_start);
	put(b + 0x22c, 4, im->initrd_addr_max);
	put(b + 0x230, 4, im->kernel_alignment);
	b[0x234] = im->relocatable;
	put(b + 0x238, 4, im->cmdline_size);
	put(b + 0x258, 8, im->pref_address);
	put(b + 0x260, 4, im->init_size);
	for (size_t i = 0; i < im->payload; i++)
		b[SETUP_SIZE + i] = payload_byte(i);
	write_file(path, b, len);
	free(b);
}

struct env {
	char dir[64];
	char kernel[96];
	char initrd[96];
	char bios[96];
	struct vm *vm;
	char *log;
	size_t log_len;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/busmap-linux-XXXXXX");
	if (!e || !mkdtemp(e->dir))
		return -1;
	snprintf(e->kernel, sizeof(e->kernel), "%s/bzImage", e->dir);
	snprintf(e->initrd, sizeof(e->initrd), "%s/initrd", e->dir);
	snprintf(e->bios, sizeof(e->bios), "%s/bios.bin", e->dir);
	write_image(e->kernel, &debian_like);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->vm) {
		FILE *log = e->vm->log;
		vm_free(e->vm);
		fclose(log);
	}
	free(e->log);
	unlink(e->kernel);
	unlink(e->initrd);
	unlink(e->bios);
	rmdir(e->dir);
	free(e);
	return 0;
}

static void make_vm(struct env *e, uint64_t ram)
{
	assert_int_equal(vm_new(NULL, NULL, ram, 1, &e->vm), 0);
	e->vm->log = open_memstream(&e->log, &e->log_len);
	assert_non_null(e->vm->log);
}

static void write_initrd(struct env *e, size_t len)
{
	uint8_t *b = malloc(len);
	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 13 + 1);
	write_file(e->initrd, b, len);
	free(b);
}

static void assert_refused(const char *kernel, const char *initrd, const char *append, uint64_t ram,
                           const char *why)
{
	char err[512] = "";
	assert_int_equal(linux_check(kernel, initrd, append, ram, err, sizeof(err)), -EINVAL);
	if (!strstr(err, why))
		fail_msg("expected '%s' in: %s", why, err);
}

/* ---- what -kernel accepts ---- */

static void check_accepts_a_bzimage(void **state)
{
	struct env *e = *state;
	char err[256] = "";
	write_initrd(e, 5000);
	assert_int_equal(linux_check(e->kernel, NULL, NULL, 64 * MIB, err, sizeof(err)), 0);
	assert_int_equal(
	    linux_check(e->kernel, e->initrd, "console=ttyS0", 64 * MIB, err, sizeof(err)), 0);
	/* Not relocatable but built for 1 MiB: loadable as it is. */
	struct image im = debian_like;
	im.relocatable = 0;
	im.pref_address = 0x100000;
	write_image(e->kernel, &im);
	assert_int_equal(linux_check(e->kernel, NULL, NULL, 64 * MIB, err, sizeof(err)), 0);
	/* The oldest protocol the loader takes: no pref_address or init_size yet. */
	im = debian_like;
	im.version = 0x206;
	write_image(e->kernel, &im);
	assert_int_equal(linux_check(e->kernel, NULL, NULL, 2 * MIB, err, sizeof(err)), 0);
}

static void check_refuses_what_cannot_boot(void **state)
{
	struct env *e = *state;
	struct image im = debian_like;
	im.magic = "HdrX";
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "not a Linux bzImage");

	im = debian_like;
	im.version = 0x205;
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "boot protocol 2.05");

	im = debian_like;
	im.jump_disp = 0x20; /* ends before cmdline_size */
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "truncated");

	im = debian_like;
	im.loadflags = 0;
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "zImage");

	im = debian_like;
	im.relocatable = 0;
	im.code32_start = 0x200000;
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "not relocatable");

	im = debian_like;
	im.payload = 0;
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "truncated");

	/* A file shorter than a boot sector. */
	write_file(e->kernel, "HdrS", 4);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "not a Linux bzImage");

	assert_refused("/nonexistent/bzImage", NULL, NULL, 64 * MIB, "cannot read kernel");
	assert_refused(e->dir, NULL, NULL, 64 * MIB, "not a regular file");
}

static void check_refuses_what_does_not_fit(void **state)
{
	struct env *e = *state;
	/* The kernel runs from 16 MiB (pref_address) for init_size (4 MiB): 20 MiB at least. */
	assert_refused(e->kernel, NULL, NULL, 19 * MIB, "needs 20 MiB");
	char err[256];
	assert_int_equal(linux_check(e->kernel, NULL, NULL, 20 * MIB, err, sizeof(err)), 0);

	write_initrd(e, 3 * MIB);
	assert_refused(e->kernel, e->initrd, NULL, 22 * MIB, "does not fit");
	assert_int_equal(linux_check(e->kernel, e->initrd, NULL, 23 * MIB, err, sizeof(err)), 0);
	assert_refused(e->kernel, "/nonexistent/initrd", NULL, 64 * MIB, "cannot read initrd");
	assert_refused(e->kernel, e->dir, NULL, 64 * MIB, "not a regular file");

	struct image im = debian_like;
	im.cmdline_size = 10;
	write_image(e->kernel, &im);
	assert_int_equal(linux_check(e->kernel, NULL, "0123456789", 64 * MIB, err, sizeof(err)), 0);
	assert_refused(e->kernel, NULL, "0123456789a", 64 * MIB, "at most 10");

	/* A kernel that wants to run above 4 GiB, with sums that would wrap. */
	im = debian_like;
	im.pref_address = UINT64_MAX - 0x1000;
	write_image(e->kernel, &im);
	assert_refused(e->kernel, NULL, NULL, 64 * MIB, "above 4 GiB");
}

/* ---- what the loader leaves in memory ---- */

static const uint8_t *guest(struct env *e, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = vm_guest_ptr(e->vm, gpa, len);
	assert_non_null(p);
	return p;
}

static void assert_e820(const uint8_t *zp, unsigned i, uint64_t addr, uint64_t len, uint32_t type)
{
	const uint8_t *ent = zp + 0x2d0 + i * 20;
	assert_int_equal(get(ent, 8), addr);
	assert_int_equal(get(ent + 8, 8), len);
	assert_int_equal(get(ent + 16, 4), type);
}

static void load_fills_memory_and_the_zero_page(void **state)
{
	struct env *e = *state;
	const size_t initrd_len = 5000;
	write_initrd(e, initrd_len);
	make_vm(e, 64 * MIB);
	assert_int_equal(linux_load(e->vm, e->kernel, e->initrd, "console=ttyS0 quiet"), 0);
	assert_non_null(e->vm->setup_boot_cpu);

	/* The protected-mode part, and only that, at 1 MiB. */
	const uint8_t *k = guest(e, LINUX_KERNEL, PAYLOAD_SIZE);
	for (size_t i = 0; i < PAYLOAD_SIZE; i++)
		if (k[i] != payload_byte(i))
			fail_msg("kernel byte %zu differs", i);

	const uint8_t *zp = guest(e, LINUX_ZERO_PAGE, 4096);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(get(zp + 0x206, 2), 0x20f);
	assert_int_equal(zp[0x1f1], SETUP_SECTS);
	assert_int_equal(get(zp + 0x238, 4), 2047);
	assert_int_equal(get(zp + 0x258, 8), 0x1000000);
	assert_int_equal(zp[0x210], 0xff);           /* type_of_loader */
	assert_int_equal(zp[0x211], 0x81);           /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_not_equal(get(zp + 0x224, 2), 0); /* heap_end_ptr */
	assert_int_equal(get(zp + 0x228, 4), LINUX_CMDLINE);
	assert_string_equal((const char *)guest(e, LINUX_CMDLINE, 20), "console=ttyS0 quiet");
	/* Nothing past the header came from the image: the zero page is zero there. */
	for (size_t i = 0x202 + debian_like.jump_disp; i < 4096; i++)
		if (i < 0x2d0 || i >= 0x2d0 + 5 * 20)
			assert_int_equal(zp[i], 0);

	/* The initrd at the top of RAM, page aligned. */
	uint64_t addr = get(zp + 0x218, 4);
	assert_int_equal(get(zp + 0x21c, 4), initrd_len);
	assert_int_equal(addr, (64 * MIB - initrd_len) & ~0xfffull);
	const uint8_t *rd = guest(e, addr, initrd_len);
	for (size_t i = 0; i < initrd_len; i++)
		if (rd[i] != (uint8_t)(i * 13 + 1))
			fail_msg("initrd byte %zu differs", i);

	assert_int_equal(zp[0x1e8], 5);
	assert_e820(zp, 0, 0, 0x9fc00, 1);
	assert_e820(zp, 1, 0x9fc00, 0x100000 - 0x9fc00, 2);
	assert_e820(zp, 2, 0x100000, 63 * MIB, 1);
	assert_e820(zp, 3, VM_ECAM_BASE, VM_ECAM_SIZE, 2);
	assert_e820(zp, 4, VM_KVM_PAGES, VM_KVM_PAGES_SIZE, 2);

	/* The boot GDT: flat code at 0x10, flat data at 0x18. */
	const uint8_t *gdt = guest(e, LINUX_GDT, 32);
	assert_int_equal(get(gdt, 8), 0);
	assert_int_equal(get(gdt + 0x10, 8), 0x00cf9b000000ffffull);
	assert_int_equal(get(gdt + 0x18, 8), 0x00cf93000000ffffull);
}

static void load_without_initrd_or_append(void **state)
{
	struct env *e = *state;
	make_vm(e, 32 * MIB);
	assert_int_equal(linux_load(e->vm, e->kernel, NULL, NULL), 0);
	const uint8_t *zp = guest(e, LINUX_ZERO_PAGE, 4096);
	assert_int_equal(get(zp + 0x218, 4), 0);
	assert_int_equal(get(zp + 0x21c, 4), 0);
	assert_string_equal((const char *)guest(e, LINUX_CMDLINE, 1), "");
}

static void initrd_stays_below_initrd_addr_max(void **state)
{
	struct env *e = *state;
	struct image im = debian_like;
	im.initrd_addr_max = 0x1ffffff; /* 32 MiB - 1 */
	write_image(e->kernel, &im);
	write_initrd(e, 8192);
	make_vm(e, 64 * MIB);
	assert_int_equal(linux_load(e->vm, e->kernel, e->initrd, NULL), 0);
	const uint8_t *zp = guest(e, LINUX_ZERO_PAGE, 4096);
	assert_int_equal(get(zp + 0x218, 4), 32 * MIB - 8192);
}

static void e820_with_ram_above_4g(void **state)
{
	struct env *e = *state;
	write_initrd(e, 4096);
	make_vm(e, VM_BELOW_4G_MAX + 512 * MIB);
	assert_int_equal(linux_load(e->vm, e->kernel, e->initrd, NULL), 0);
	const uint8_t *zp = guest(e, LINUX_ZERO_PAGE, 4096);
	assert_int_equal(zp[0x1e8], 6);
	assert_e820(zp, 2, 0x100000, VM_BELOW_4G_MAX - 0x100000, 1);
	assert_e820(zp, 5, VM_HIGH_RAM_BASE, 512 * MIB, 1);
	/* initrd_addr_max (2 GiB - 1) is lower than the end of RAM below 4 GiB. */
	assert_int_equal(get(zp + 0x218, 4), 0x80000000u - 4096);
}

static void load_checks_the_files_again(void **state)
{
	struct env *e = *state;
	char err[256];
	make_vm(e, 64 * MIB);
	assert_int_equal(linux_check(e->kernel, NULL, NULL, 64 * MIB, err, sizeof(err)), 0);
	write_file(e->kernel, "not a kernel any more", 21);
	assert_int_equal(linux_load(e->vm, e->kernel, NULL, NULL), -EINVAL);
	assert_null(e->vm->setup_boot_cpu);
	fflush(e->vm->log);
	assert_non_null(strstr(e->log, "not a Linux bzImage"));
	/* RAM smaller than linux_check was told. */
	write_image(e->kernel, &debian_like);
	FILE *log = e->vm->log;
	vm_free(e->vm);
	fclose(log);
	free(e->log);
	e->vm = NULL;
	e->log = NULL;
	make_vm(e, 16 * MIB);
	assert_int_equal(linux_load(e->vm, e->kernel, NULL, NULL), -EINVAL);
	assert_null(e->vm->setup_boot_cpu);
}

static void boot_registers(void **state)
{
	(void)state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	memset(&regs, 0xff, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	sregs.cr0 = 0x60000010; /* KVM's reset value */
	linux_boot_regs(&regs, &sregs);
	assert_int_equal(sregs.cs.selector, 0x10);
	assert_int_equal(sregs.cs.type, 0xb);
	const struct kvm_segment *segs[] = {&sregs.cs, &sregs.ds, &sregs.es,
	                                    &sregs.fs, &sregs.gs, &sregs.ss};
	for (size_t i = 0; i < 6; i++) {
		const struct kvm_segment *s = segs[i];
		assert_int_equal(s->base, 0);
		assert_int_equal(s->limit, 0xffffffff);
		assert_int_equal(s->present, 1);
		assert_int_equal(s->dpl, 0);
		assert_int_equal(s->db, 1);
		assert_int_equal(s->s, 1);
		assert_int_equal(s->g, 1);
		assert_int_equal(s->l, 0);
		if (i > 0) {
			assert_int_equal(s->selector, 0x18);
			assert_int_equal(s->type, 0x3);
		}
	}
	assert_int_equal(sregs.gdt.base, LINUX_GDT);
	assert_int_equal(sregs.gdt.limit, 31);
	assert_int_equal(sregs.cr0 & 0x80000001u, 1); /* PE, no paging */
	assert_int_equal(sregs.efer, 0);
	assert_int_equal(regs.rflags, 2); /* interrupts off */
	assert_int_equal(regs.rip, LINUX_KERNEL);
	assert_int_equal(regs.rsi, LINUX_ZERO_PAGE);
	assert_int_equal(regs.rbp | regs.rdi | regs.rbx, 0);
}

/* ---- the command line ---- */

static int parse(const char **args, size_t n, struct vmm_options *o, char *err, size_t errlen)
{
	char *argv[16] = {"busmap-vmm"};
	for (size_t i = 0; i < n && i < 15; i++)
		argv[i + 1] = (char *)args[i];
	return vmm_parse((int)n + 1, argv, o, err, errlen);
}

static void options_need_a_kernel(void **state)
{
	(void)state;
	struct vmm_options o;
	char err[256];
	const char *initrd_alone[] = {"-initrd", "rd"};
	assert_int_equal(parse(initrd_alone, 2, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "-initrd only allowed with -kernel"));
	const char *append_alone[] = {"-append", "console=ttyS0"};
	assert_int_equal(parse(append_alone, 2, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "-append only allowed with -kernel"));
	const char *empty_append[] = {"-append", ""};
	assert_int_equal(parse(empty_append, 2, &o, err, sizeof(err)), 0);
	assert_null(o.kernel);
	const char *all[] = {"-kernel", "bz", "-initrd", "rd", "-append", "a b"};
	assert_int_equal(parse(all, 6, &o, err, sizeof(err)), 0);
	assert_string_equal(o.kernel, "bz");
	assert_string_equal(o.initrd, "rd");
	assert_string_equal(o.append, "a b");
	const char *no_value[] = {"-kernel"};
	assert_int_equal(parse(no_value, 1, &o, err, sizeof(err)), -EINVAL);
}

static void load_files_checks_the_kernel(void **state)
{
	struct env *e = *state;
	static uint8_t rom[65536];
	write_file(e->bios, rom, sizeof(rom));
	struct vmm_options o;
	char err[512];
	const char *good[] = {"-bios", e->bios, "-m", "64", "-kernel", e->kernel};
	assert_int_equal(parse(good, 6, &o, err, sizeof(err)), 0);
	assert_int_equal(vmm_load_files(&o, err, sizeof(err)), 0);
	vmm_options_free(&o);
	const char *small[] = {"-bios", e->bios, "-m", "16", "-kernel", e->kernel};
	assert_int_equal(parse(small, 6, &o, err, sizeof(err)), 0);
	assert_int_equal(vmm_load_files(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "needs 20 MiB"));
	vmm_options_free(&o);
	const char *not_kernel[] = {"-bios", e->bios, "-kernel", e->bios};
	assert_int_equal(parse(not_kernel, 4, &o, err, sizeof(err)), 0);
	assert_int_equal(vmm_load_files(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a Linux bzImage"));
	vmm_options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(check_accepts_a_bzimage, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_refuses_what_cannot_boot, setup, teardown),
	    cmocka_unit_test_setup_teardown(check_refuses_what_does_not_fit, setup, teardown),
	    cmocka_unit_test_setup_teardown(load_fills_memory_and_the_zero_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(load_without_initrd_or_append, setup, teardown),
	    cmocka_unit_test_setup_teardown(initrd_stays_below_initrd_addr_max, setup, teardown),
	    cmocka_unit_test_setup_teardown(e820_with_ram_above_4g, setup, teardown),
	    cmocka_unit_test_setup_teardown(load_checks_the_files_again, setup, teardown),
	    cmocka_unit_test(boot_registers),
	    cmocka_unit_test(options_need_a_kernel),
	    cmocka_unit_test_setup_teardown(load_files_checks_the_kernel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
