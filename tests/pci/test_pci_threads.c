/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Configuration writes are dispatches that change the map: one vCPU moves a BAR back and
 * forth through ECAM and CF8/CFC while another reads the BAR at both places and a device
 * thread signals MSI-X and INTx. Every read must reach the device or nothing, never stale
 * memory, and the final state must match the registers.
 */
#include "pcitest.h"
#include <pthread.h>
#include <stdatomic.h>

#define ADDR_A 0xfe000000u
#define ADDR_B 0xfe100000u
#define ROUNDS 20000

static int bar_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *v)
{
	(void)vcpu;
	(void)size;
	atomic_fetch_add((atomic_uint *)opaque, 1);
	*v = 0xa5a5a5a5u ^ (uint32_t)off;
	return 0;
}

static const struct bm_region_ops bar_ops = {.read = bar_read, .impl_sizes = BM_ACCESS_4};

struct shared {
	struct pt *t;
	bm_pci_func *f;
	atomic_uint hits;
	atomic_bool done;
	unsigned bad;
};

/* The writing thread's vCPU; NULL, with the run marked failed and over, if none. */
static bm_vcpu *writer_vcpu(struct shared *s)
{
	bm_vcpu *v;
	if (bm_vcpu_new(s->t->sys, 1, NULL, &v)) {
		s->bad++;
		atomic_store(&s->done, true);
		return NULL;
	}
	return v;
}

static void *mover(void *arg)
{
	struct shared *s = arg;
	bm_vcpu *v = writer_vcpu(s);
	if (!v)
		return NULL;
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint32_t addr = i % 2 ? ADDR_A : ADDR_B;
		if (i % 4 < 2) {
			bm_write(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x10, 4, addr);
		} else {
			bm_write(v, s->t->io, 0xcf8, 4, 0x80000000u | 4 << 11 | 0x10);
			bm_write(v, s->t->io, 0xcfc, 4, addr);
		}
		if (i % 64 == 0)
			bm_write(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x04, 2,
			         i % 128 ? 0x2 : 0x0);
	}
	bm_write(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x04, 2, 0x2);
	atomic_store(&s->done, true);
	bm_vcpu_free(v);
	return NULL;
}

static void *reader(void *arg)
{
	struct shared *s = arg;
	bm_vcpu *v;
	if (bm_vcpu_new(s->t->sys, 2, NULL, &v))
		return NULL;
	while (!atomic_load(&s->done)) {
		for (unsigned k = 0; k < 2; k++) {
			uint64_t val;
			int r = bm_read(v, s->t->mem, (k ? ADDR_A : ADDR_B) + 0x40, 4, &val);
			if (r < 0 || (!(r & BM_ACCESS_UNASSIGNED) && val != (0xa5a5a5a5u ^ 0x40)) ||
			    ((r & BM_ACCESS_UNASSIGNED) && val != 0xffffffffu))
				s->bad++;
		}
	}
	bm_vcpu_free(v);
	return NULL;
}

static void *device(void *arg)
{
	struct shared *s = arg;
	while (!atomic_load(&s->done)) {
		bm_pci_msi_notify(s->f, 1);
		bm_pci_intx_set(s->f, true);
		bm_pci_intx_set(s->f, false);
	}
	return NULL;
}

/* Function 4.0 with one memory BAR of the given size, INTx pin A. */
static void add_device(struct shared *s, uint64_t bar_size)
{
	s->t = pt_new();
	struct bm_pci_func_desc d = {
	    .vendor_id = 0x1af4,
	    .intx_pin = 1,
	    .bars = {
	        {.type = BM_PCI_BAR_MEM32, .size = bar_size, .ops = &bar_ops, .opaque = &s->hits}}};
	s->f = pt_add(s->t, NULL, 4, 0, &d);
}

/* Runs a writer, a reader and the device thread to the writer's end. */
static void run_threads(struct shared *s, void *(*writer)(void *), void *(*reader)(void *))
{
	pthread_t th[3];
	assert_int_equal(pthread_create(&th[0], NULL, writer, s), 0);
	assert_int_equal(pthread_create(&th[1], NULL, reader, s), 0);
	assert_int_equal(pthread_create(&th[2], NULL, device, s), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(s->bad, 0);
}

static void test_moves_under_dispatch(void **state)
{
	(void)state;
	struct shared s = {0};
	add_device(&s, 1 << 14);
	assert_int_equal(bm_pci_func_add_msix(s.f, 4, 0, 0x2000, 0, 0x3000, NULL), 0);
	wr(s.f, 0x10, 4, ADDR_A);
	wr(s.f, 0x04, 2, 0x2);
	run_threads(&s, mover, reader);
	assert_true(atomic_load(&s.hits) > 0);
	uint64_t a;
	assert_true(bar_mapped(s.f, 0, &a));
	assert_int_equal(a, rd(s.f, 0x10, 4) & ~0xfu);
	pt_free(s.t);
}

/* Two values of BAR 0 that differ in every byte the BAR lets software write. */
#define BAR_X 0xa5a5a000u
#define BAR_Y 0x5a5a5000u

static void *bar_writer(void *arg)
{
	struct shared *s = arg;
	bm_vcpu *v = writer_vcpu(s);
	if (!v)
		return NULL;
	for (unsigned i = 0; i < ROUNDS; i++)
		bm_write(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x10, 4, i % 2 ? BAR_X : BAR_Y);
	atomic_store(&s->done, true);
	bm_vcpu_free(v);
	return NULL;
}

static bool whole(uint64_t val)
{
	return val == BAR_X || val == BAR_Y;
}

/* Reads BAR 0 through both mechanisms, and the status register the device thread keeps
 * changing, while the writer rewrites the BAR. */
static void *cfg_reader(void *arg)
{
	struct shared *s = arg;
	bm_vcpu *v;
	if (bm_vcpu_new(s->t->sys, 2, NULL, &v))
		return NULL;
	bm_write(v, s->t->io, 0xcf8, 4, 0x80000000u | 4 << 11 | 0x10);
	while (!atomic_load(&s->done)) {
		uint64_t a, b, st;
		if (bm_read(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x10, 4, &a) < 0 ||
		    bm_read(v, s->t->io, 0xcfc, 4, &b) < 0 ||
		    bm_read(v, s->t->mem, ECAM_BASE + (4 << 15) + 0x00, 2, &st) < 0 || !whole(a) ||
		    !whole(b) || st != 0x1af4)
			s->bad++;
	}
	bm_vcpu_free(v);
	return NULL;
}

static void test_reads_never_torn(void **state)
{
	(void)state;
	struct shared s = {0};
	add_device(&s, 1 << 12);
	wr(s.f, 0x10, 4, BAR_X);
	run_threads(&s, bar_writer, cfg_reader);
	/* The last write is what every mechanism reads now. */
	assert_int_equal(rd(s.f, 0x10, 4), (ROUNDS - 1) % 2 ? BAR_X : BAR_Y);
	pt_free(s.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_moves_under_dispatch),
	    cmocka_unit_test(test_reads_never_torn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
