/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The pc chipset without KVM: what the BIOS and PAM registers show below 1 MiB, SMRAM,
 * PIIX3 interrupt routing and its ports, each checked through bm_read/bm_write as a vCPU
 * would, with the memslots a recording hypervisor holds compared to busmap's view.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices.h"
#include "fake_hv.h"
#include "ioeventfd.h"
#include "memslots.h"

#define BIOS_SIZE 0x20000u /* 128 KiB: all of it shows at 0xe0000 */

struct env {
	struct fake_hv hv;
	struct vm *vm;
	bm_vcpu *cpu;
	uint8_t bios[BIOS_SIZE];
	struct i440fx *nb;
	struct piix3 *sb;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	fake_hv_init(&e->hv);
	for (unsigned i = 0; i < BIOS_SIZE; i++)
		e->bios[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(vm_new(&fake_hv_ops, &e->hv, 64u << 20, 1, &e->vm), 0);
	assert_int_equal(i440fx_new(e->vm, e->bios, BIOS_SIZE, &e->nb), 0);
	assert_int_equal(vm_add_device(e->vm, "i440fx", e->nb, i440fx_free), 0);
	assert_int_equal(piix3_new(e->vm, &e->sb), 0);
	assert_int_equal(vm_add_device(e->vm, "piix3", e->sb, piix3_free), 0);
	assert_int_equal(bm_vcpu_new(e->vm->sys, 0, NULL, &e->cpu), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	assert_int_equal(e->hv.refusals, 0);
	bm_vcpu_free(e->cpu);
	vm_free(e->vm);
	free(e);
	return 0;
}

static uint64_t rd(struct env *e, bm_space *s, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_true(bm_read(e->cpu, s, addr, size, &v) >= 0);
	return v;
}

static void wr(struct env *e, bm_space *s, uint64_t addr, unsigned size, uint64_t v)
{
	assert_true(bm_write(e->cpu, s, addr, size, v) >= 0);
}

static void cfg_write(struct env *e, unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
	wr(e, e->vm->io, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	wr(e, e->vm->io, 0xcfc + (reg & 3), size, v);
}

static uint32_t cfg_read(struct env *e, unsigned dev, unsigned reg, unsigned size)
{
	wr(e, e->vm->io, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	return (uint32_t)rd(e, e->vm->io, 0xcfc + (reg & 3), size);
}

static void assert_slots_match(struct env *e)
{
	assert_int_equal(memslots_check(e->vm->slots, stderr), 0);
}

/* The slot that holds gpa, or NULL. */
static const struct fake_slot *slot_at(struct env *e, uint64_t gpa)
{
	for (unsigned i = 0; i < FAKE_HV_SLOTS; i++) {
		const struct fake_slot *s = &e->hv.slots[i];
		if (s->used && gpa >= s->gpa && gpa - s->gpa < s->size)
			return s;
	}
	return NULL;
}

static int vga_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)off;
	(void)size;
	*value = *(uint8_t *)opaque;
	return 0;
}

static void test_chipset_ids(void **state)
{
	struct env *e = *state;
	assert_int_equal(cfg_read(e, 0, 0, 4), 0x12378086);
	assert_int_equal(cfg_read(e, 0, 0x0a, 2), 0x0600);
	assert_int_equal(cfg_read(e, 1, 0, 4), 0x70008086);
	assert_int_equal(cfg_read(e, 1, 0x0a, 2), 0x0601);
	assert_int_equal(cfg_read(e, 1, 0x0e, 1) & 0x80, 0x80);
	assert_int_equal(cfg_read(e, 1, 0x60, 4), 0x80808080);
}

/* The BIOS shows at the top of 4 GiB and, whole when 128 KiB, at 0xe0000: read-only. */
static void test_bios_at_reset_vector_and_below_1m(void **state)
{
	struct env *e = *state;
	uint64_t top = 0x100000000ull - BIOS_SIZE;
	for (unsigned off = 0; off < BIOS_SIZE; off += 0x1111) {
		assert_int_equal(rd(e, e->vm->mem, top + off, 1), e->bios[off]);
		assert_int_equal(rd(e, e->vm->mem, 0xe0000 + off, 1), e->bios[off]);
	}
	wr(e, e->vm->mem, 0xffff0, 1, (uint8_t)~e->bios[BIOS_SIZE - 0x10]);
	assert_int_equal(rd(e, e->vm->mem, 0xffff0, 1), e->bios[BIOS_SIZE - 0x10]);
	const struct fake_slot *s = slot_at(e, 0xfffff000);
	assert_non_null(s);
	assert_true(s->readonly);
	assert_int_equal(*(uint8_t *)s->hva, e->bios[BIOS_SIZE - 0x1000]);
	assert_slots_match(e);
}

/* What firmware does to shadow itself: RAM read/write, copy, then RAM read-only. */
static void test_pam_shadowing(void **state)
{
	struct env *e = *state;
	uint64_t top = 0x100000000ull - BIOS_SIZE;
	/* The RAM above 1 MiB keeps its slot through every PAM change below. */
	const struct fake_slot *high = slot_at(e, 0x100000);
	assert_int_equal(high->gpa, 0x100000);
	unsigned high_id = (unsigned)(high - e->hv.slots);
	unsigned high_creations = e->hv.slot_creations[high_id];
	/* PAM0's high nibble is 0xf0000; PAM6 (0x5f) the 16 KiB pieces at 0xe8000/0xec000. */
	cfg_write(e, 0, 0x59, 1, 0x30);
	cfg_write(e, 0, 0x5f, 1, 0x33);
	assert_false(slot_at(e, 0xf0000)->readonly);
	for (unsigned off = 0; off < 0x10000; off += 4)
		wr(e, e->vm->mem, 0xf0000 + off, 4, rd(e, e->vm->mem, top + 0x10000 + off, 4));
	assert_memory_equal(e->vm->ram + 0xf0000, e->bios + 0x10000, 0x10000);
	assert_slots_match(e);

	cfg_write(e, 0, 0x59, 1, 0x10); /* read-only RAM */
	assert_true(slot_at(e, 0xf0000)->readonly);
	wr(e, e->vm->mem, 0xf0000, 4, 0xdeadbeef);
	assert_int_equal(rd(e, e->vm->mem, 0xf0000, 4), rd(e, e->vm->mem, top + 0x10000, 4));
	assert_slots_match(e);

	/* 0xe8000 stays RAM and writable; 0xe0000 still shows the BIOS through isa-bios. */
	wr(e, e->vm->mem, 0xe8000, 4, 0x12345678);
	assert_int_equal(rd(e, e->vm->mem, 0xe8000, 4), 0x12345678);
	assert_int_equal(rd(e, e->vm->mem, 0xe0000, 1), e->bios[0]);

	/* Back to PCI: the RAM copy disappears behind the BIOS again. */
	cfg_write(e, 0, 0x59, 1, 0x00);
	cfg_write(e, 0, 0x5f, 1, 0x00);
	assert_int_equal(rd(e, e->vm->mem, 0xe8000, 1), e->bios[0x8000]);
	assert_slots_match(e);
	assert_ptr_equal(slot_at(e, 0x100000), high);
	assert_int_equal(e->hv.slot_creations[high_id], high_creations);
}

/* Every PAM attribute value, in every register, with garbage in the reserved bits. */
static void test_pam_every_value(void **state)
{
	struct env *e = *state;
	memset(e->vm->ram + 0xc0000, 0xa5, 0x40000);
	for (unsigned v = 0; v < 256; v += 17) {
		for (unsigned reg = 0x59; reg <= 0x5f; reg++)
			cfg_write(e, 0, reg, 1, v);
		assert_slots_match(e);
		unsigned lo = v & 3, hi = (v >> 4) & 3;
		/* 0xc0000 is PAM1's low nibble, 0xc4000 its high one; with PAM off they show
		 * pc.rom, the empty option ROM space. */
		uint8_t at_c0 = (uint8_t)rd(e, e->vm->mem, 0xc0000, 1);
		uint8_t at_c4 = (uint8_t)rd(e, e->vm->mem, 0xc4000, 1);
		assert_int_equal(at_c0, (lo == 1 || lo == 3) ? 0xa5 : 0x00);
		assert_int_equal(at_c4, (hi == 1 || hi == 3) ? 0xa5 : 0x00);
		assert_int_equal(slot_at(e, 0xc0000)->readonly, lo != 3);
	}
}

/* Closed SMRAM shows the PCI space at 0xa0000: RAM where nothing is there (as QEMU), a
 * BAR (a VGA's) where one is. Open, it is RAM whatever the BARs. */
static void test_smram_window(void **state)
{
	struct env *e = *state;
	e->vm->ram[0xa0000] = 0x5a;
	assert_int_equal(cfg_read(e, 0, 0x72, 1), 0x02);
	assert_int_equal(rd(e, e->vm->mem, 0xa0000, 1), 0x5a);
	uint8_t vga = 0x77;
	bm_region *r;
	static const struct bm_region_ops ops = {.read = vga_read};
	assert_int_equal(bm_region_new_io(e->vm->sys, "vga", 0x20000, &ops, &vga, &r), 0);
	assert_int_equal(bm_region_add(bm_pci_host_mem_region(e->vm->pci), r, 0xa0000, 1), 0);
	assert_int_equal(rd(e, e->vm->mem, 0xa0000, 1), 0x77);
	assert_null(slot_at(e, 0xa0000));
	cfg_write(e, 0, 0x72, 1, 0x4a); /* D_OPEN */
	assert_int_equal(rd(e, e->vm->mem, 0xa0000, 1), 0x5a);
	assert_non_null(slot_at(e, 0xa0000));
	assert_slots_match(e);
	cfg_write(e, 0, 0x72, 1, 0x0a);
	assert_int_equal(rd(e, e->vm->mem, 0xa0000, 1), 0x77);
	assert_slots_match(e);
	assert_int_equal(bm_region_destroy(r), 0);
}

/* A device in slot 3 raising INTA reaches the IRQ its PIRQ register names. */
static void test_pirq_routing(void **state)
{
	struct env *e = *state;
	struct bm_pci_func_desc desc = {.vendor_id = 0x1234, .device_id = 1, .intx_pin = 1};
	bm_pci_func *f;
	assert_int_equal(bm_pci_func_new(bm_pci_host_root_bus(e->vm->pci), 3, 0, &desc, &f), 0);
	/* Slot 3, INTA: PIRQ (0 + 3 - 1) mod 4 = PIRQC, register 0x62. */
	assert_int_equal(bm_pci_intx_set(f, true), 0);
	for (unsigned irq = 0; irq < 16; irq++)
		assert_false(e->hv.irq[irq]); /* routing disabled */
	cfg_write(e, 1, 0x62, 1, 10);
	assert_true(e->hv.irq[10]);
	cfg_write(e, 1, 0x62, 1, 11);
	assert_false(e->hv.irq[10]);
	assert_true(e->hv.irq[11]);
	assert_int_equal(bm_pci_intx_set(f, false), 0);
	assert_false(e->hv.irq[11]);
	/* Routing to IRQ 2 or 0 is refused: those are not ISA interrupt inputs here. */
	assert_int_equal(bm_pci_intx_set(f, true), 0);
	cfg_write(e, 1, 0x62, 1, 2);
	for (unsigned irq = 0; irq < 16; irq++)
		assert_false(e->hv.irq[irq]);
	cfg_write(e, 1, 0x62, 1, 0x80 | 11); /* disabled */
	assert_false(e->hv.irq[11]);
	/* The command register's INTx disable hides the line from the router. */
	cfg_write(e, 1, 0x62, 1, 11);
	assert_true(e->hv.irq[11]);
	cfg_write(e, 3, 0x04, 2, 0x400);
	assert_false(e->hv.irq[11]);
	assert_int_equal(bm_pci_func_free(f), 0);
}

/* Two devices on one PIRQ: the line stays up until both let go. */
static void test_shared_pirq(void **state)
{
	struct env *e = *state;
	struct bm_pci_func_desc a = {.vendor_id = 0x1234, .device_id = 1, .intx_pin = 1};
	struct bm_pci_func_desc b = {.vendor_id = 0x1234, .device_id = 2, .intx_pin = 1};
	bm_pci_func *fa, *fb;
	/* Slot 3 INTA and slot 7 INTA both reach PIRQC. */
	assert_int_equal(bm_pci_func_new(bm_pci_host_root_bus(e->vm->pci), 3, 0, &a, &fa), 0);
	assert_int_equal(bm_pci_func_new(bm_pci_host_root_bus(e->vm->pci), 7, 0, &b, &fb), 0);
	cfg_write(e, 1, 0x62, 1, 9);
	bm_pci_intx_set(fa, true);
	bm_pci_intx_set(fb, true);
	bm_pci_intx_set(fa, false);
	assert_true(e->hv.irq[9]);
	bm_pci_intx_set(fb, false);
	assert_false(e->hv.irq[9]);
	assert_int_equal(e->hv.irq_raises[9], 1);
	bm_pci_func_free(fa);
	bm_pci_func_free(fb);
}

static void test_port61_and_92(void **state)
{
	struct env *e = *state;
	uint64_t a = rd(e, e->vm->io, 0x61, 1), b = rd(e, e->vm->io, 0x61, 1);
	assert_int_not_equal(a & 0x10, b & 0x10); /* the refresh bit toggles */
	wr(e, e->vm->io, 0x61, 1, 0x03);
	assert_int_equal(rd(e, e->vm->io, 0x61, 1) & 0x0f, 0x03);
	/* A wider access is split, as on the bus: 0x61's byte, then nothing at 0x62. */
	assert_int_equal(rd(e, e->vm->io, 0x61, 2) >> 8, 0xff);
	assert_int_equal(rd(e, e->vm->io, 0x61, 2) & 0x0f, 0x03);
	wr(e, e->vm->io, 0x92, 1, 0x02); /* A20 only */
	assert_int_equal(rd(e, e->vm->io, 0x92, 1), 0x02);
	assert_false(vm_stopping(e->vm));
	wr(e, e->vm->io, 0x92, 1, 0x03); /* fast reset */
	assert_true(vm_stopping(e->vm));
	assert_int_equal(e->vm->stop_status, VM_STATUS_OK);
	assert_non_null(strstr(e->vm->stop_reason, "reset"));
}

/* PIIX3's reset control at 0xcf9 shares its port with the CF8 latch, which stays intact. */
static void test_reset_control(void **state)
{
	struct env *e = *state;
	wr(e, e->vm->io, 0xcf8, 4, 0x80000000);
	wr(e, e->vm->io, 0xcf9, 1, 0x02); /* system reset selected, not started */
	assert_false(vm_stopping(e->vm));
	assert_int_equal(cfg_read(e, 0, 0, 4), 0x12378086);
	wr(e, e->vm->io, 0xcf9, 1, 0x06);
	assert_true(vm_stopping(e->vm));
	assert_int_equal(e->vm->stop_status, VM_STATUS_OK);
	assert_non_null(strstr(e->vm->stop_reason, "0xcf9"));
}

/* The first stop request wins; later ones change nothing. */
static void test_first_stop_wins(void **state)
{
	struct env *e = *state;
	vm_request_stop(e->vm, 7, "first %d", 1);
	vm_request_stop(e->vm, 4, "second");
	assert_int_equal(e->vm->stop_status, 7);
	assert_string_equal(e->vm->stop_reason, "first 1");
}

static void test_guest_ptr_bounds(void **state)
{
	struct env *e = *state;
	struct vm *vm = e->vm;
	assert_ptr_equal(vm_guest_ptr(vm, 0, 16), vm->ram);
	assert_non_null(vm_guest_ptr(vm, vm->ram_size - 16, 16));
	assert_null(vm_guest_ptr(vm, vm->ram_size - 16, 17));
	assert_null(vm_guest_ptr(vm, vm->ram_size, 1));
	assert_null(vm_guest_ptr(vm, UINT64_MAX, 2));
	assert_null(vm_guest_ptr(vm, 16, UINT64_MAX));
	assert_null(vm_guest_ptr(vm, VM_HIGH_RAM_BASE, 1)); /* 64 MiB: nothing above 4 GiB */
}

/* RAM past 0xb0000000 continues at 4 GiB, and DMA follows it there. */
static void test_ram_above_4g(void **state)
{
	(void)state;
	struct fake_hv hv;
	struct vm *vm;
	fake_hv_init(&hv);
	uint64_t size = VM_BELOW_4G_MAX + (64u << 20);
	assert_int_equal(vm_new(&fake_hv_ops, &hv, size, 1, &vm), 0);
	assert_int_equal(vm->below_4g, VM_BELOW_4G_MAX);
	assert_ptr_equal(vm_guest_ptr(vm, VM_HIGH_RAM_BASE, 8), vm->ram + VM_BELOW_4G_MAX);
	assert_null(vm_guest_ptr(vm, VM_HIGH_RAM_BASE + (64u << 20) - 4, 8));
	assert_null(vm_guest_ptr(vm, VM_BELOW_4G_MAX, 1)); /* the ECAM window */
	assert_int_equal(fake_hv_nslots(&hv), 2);
	assert_int_equal(memslots_check(vm->slots, stderr), 0);
	assert_int_equal(hv.refusals, 0);
	vm_free(vm);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_chipset_ids),      T(test_bios_at_reset_vector_and_below_1m),
	    T(test_pam_shadowing),    T(test_pam_every_value),
	    T(test_smram_window),     T(test_pirq_routing),
	    T(test_shared_pirq),      T(test_port61_and_92),
	    T(test_reset_control),    T(test_first_stop_wins),
	    T(test_guest_ptr_bounds), cmocka_unit_test(test_ram_above_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
