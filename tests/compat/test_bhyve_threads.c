/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vCPU threads: contexts made on first use and retired when the thread exits, accesses
 * while BARs move (from another thread and from inside handlers), an access for a vCPU
 * from a thread that is not its own, freeing while a thread still holds a context, and a
 * host's own region placed and removed while vCPUs read where it shows.
 */
#include "bhyve_testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NVCPU  3
#define ROUNDS 3
#define BAR    0x10000ull
#define SLOTS  8

static struct dev bar_dev = {.name = "bar"};

/* Handlers here run on several threads at once: they record nothing. */
static int quiet_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                         void *arg1, long arg2)
{
	(void)vcpu;
	(void)size;
	(void)arg2;
	if (dir == MEM_F_READ)
		*val = dev_value(arg1, addr);
	return 0;
}

static struct mem_range quiet_range(struct dev *d, uint64_t base, uint64_t size)
{
	struct mem_range mr = dev_range(d, base, size);
	mr.handler = quiet_handler;
	return mr;
}

struct worker {
	bm_bhyve *b;
	struct vcpu vcpu;
	atomic_bool *stop;
	unsigned served, unassigned, wrong;
	atomic_bool active; /* it has made an access, so it holds a context */
	uint64_t also;      /* another value a read may give (a host's RAM), or 0 */
};

/* Reads the BAR's possible places: each read reaches the BAR (or what also names) or
 * nothing, and a success always gives a value. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	while (!atomic_load(w->stop)) {
		for (uint64_t slot = 0; slot < SLOTS; slot++) {
			uint64_t v = 0x1234, gpa = BAR + slot * 0x1000 + 8;
			int ret = bm_bhyve_read_mem(w->b, &w->vcpu, gpa, &v, 4);
			if (ret == ESRCH)
				w->unassigned++;
			else if (ret == 0 &&
			         (v == dev_value(&bar_dev, gpa) || (w->also && v == w->also)))
				w->served++;
			else
				w->wrong++;
		}
		atomic_store(&w->active, true);
	}
	return NULL;
}

static void bar_move(bm_bhyve *b, uint64_t from, uint64_t to)
{
	struct mem_range old = {.name = bar_dev.name, .base = from, .size = 0x1000};
	struct mem_range moved = quiet_range(&bar_dev, to, 0x1000);
	assert_int_equal(bm_bhyve_unregister_mem(b, &old), 0);
	assert_int_equal(bm_bhyve_register_mem(b, &moved), 0);
}

/* Rounds of fresh vCPU threads while the main thread moves the BAR around. */
static void readers_beside_mover(void **state)
{
	(void)state;
	bm_bhyve *b;
	assert_int_equal(bm_bhyve_new(vcpu_id, &b), 0);
	struct mem_range mr = quiet_range(&bar_dev, BAR, 0x1000);
	assert_int_equal(bm_bhyve_register_mem(b, &mr), 0);
	uint64_t at = BAR;
	for (int round = 0; round < ROUNDS; round++) {
		atomic_bool stop = false;
		struct worker w[NVCPU];
		pthread_t tid[NVCPU];
		for (int i = 0; i < NVCPU; i++) {
			w[i] = (struct worker){.b = b, .vcpu = {i}, .stop = &stop};
			assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
		}
		for (int i = 0; i < NVCPU; i++) {
			while (!atomic_load(&w[i].active))
				sched_yield();
		}
		for (int move = 0; move < 300; move++) {
			uint64_t to = BAR + (uint64_t)((move * 3 + round) % SLOTS) * 0x1000;
			bar_move(b, at, to);
			at = to;
		}
		atomic_store(&stop, true);
		for (int i = 0; i < NVCPU; i++) {
			assert_int_equal(pthread_join(tid[i], NULL), 0);
			assert_int_equal(w[i].wrong, 0);
			assert_true(w[i].served + w[i].unassigned > 0);
		}
	}
	/* every vCPU thread has exited: its context went with it */
	assert_int_equal(bm_bhyve_free(b), 0);
}

/* A thread that holds a context keeps the instance alive; once it exits, freeing works. */
static void free_waits_for_threads(void **state)
{
	(void)state;
	bm_bhyve *b;
	assert_int_equal(bm_bhyve_new(vcpu_id, &b), 0);
	atomic_bool stop = false;
	struct worker w = {.b = b, .vcpu = {0}, .stop = &stop};
	pthread_t tid;
	assert_int_equal(pthread_create(&tid, NULL, worker_main, &w), 0);
	while (!atomic_load(&w.active))
		sched_yield();
	assert_int_equal(bm_bhyve_free(b), -EBUSY);
	/* meanwhile an access for vCPU 0 from this thread uses this thread's context */
	struct dev d = {.name = "dev"};
	struct mem_range mr = dev_range(&d, 0x1000, 0x10);
	assert_int_equal(bm_bhyve_register_mem(b, &mr), 0);
	uint64_t v;
	assert_int_equal(bm_bhyve_read_mem(b, &w.vcpu, 0x1000, &v, 4), 0);
	assert_ptr_equal(d.vcpu, &w.vcpu);
	atomic_store(&stop, true);
	assert_int_equal(pthread_join(tid, NULL), 0);
	assert_int_equal(bm_bhyve_free(b), 0);
}

/* ---- BARs moved by vCPUs from inside handlers ---- */

struct bar_config {
	bm_bhyve *b;
	struct dev *dev;
	_Atomic uint64_t bar;
	atomic_uint failures;
};

/* A write to the device's configuration register moves its BAR. */
static int config_write(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                        void *arg1, long arg2)
{
	(void)vcpu;
	(void)addr;
	(void)size;
	(void)arg2;
	struct bar_config *c = arg1;
	if (dir == MEM_F_READ) {
		*val = atomic_load(&c->bar);
		return 0;
	}
	uint64_t from = atomic_exchange(&c->bar, *val);
	struct mem_range old = {.name = c->dev->name, .base = from, .size = 0x1000};
	struct mem_range moved = quiet_range(c->dev, *val, 0x1000);
	if (bm_bhyve_unregister_mem(c->b, &old) || bm_bhyve_register_mem(c->b, &moved))
		atomic_fetch_add(&c->failures, 1);
	return 0;
}

struct mover {
	bm_bhyve *b;
	struct vcpu vcpu;
	uint64_t config;
};

static void *mover_main(void *arg)
{
	struct mover *m = arg;
	for (int i = 0; i < 400; i++) {
		uint64_t to = 0x200000 + (uint64_t)(i % SLOTS) * 0x1000;
		bm_bhyve_write_mem(m->b, &m->vcpu, m->config, to, 4);
	}
	return NULL;
}

static void moves_inside_handlers(void **state)
{
	(void)state;
	bm_bhyve *b;
	assert_int_equal(bm_bhyve_new(vcpu_id, &b), 0);
	struct dev d0 = {.name = "dev0"}, d1 = {.name = "dev1"};
	struct bar_config c0 = {b, &d0, 0x200000, 0}, c1 = {b, &d1, 0x300000, 0};
	struct mem_range bars[] = {quiet_range(&d0, 0x200000, 0x1000),
	                           quiet_range(&d1, 0x300000, 0x1000)};
	struct mem_range cfg[] = {
	    {.name = "cfg0", .handler = config_write, .arg1 = &c0, .base = 0xf000, .size = 4},
	    {.name = "cfg1", .handler = config_write, .arg1 = &c1, .base = 0xf004, .size = 4},
	};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(bm_bhyve_register_mem(b, &bars[i]), 0);
		assert_int_equal(bm_bhyve_register_mem(b, &cfg[i]), 0);
	}
	/* both vCPUs move their device's BAR over the same slots at once */
	struct mover m[2] = {{b, {0}, 0xf000}, {b, {1}, 0xf004}};
	pthread_t tid[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, mover_main, &m[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	assert_int_equal(atomic_load(&c0.failures), 0);
	assert_int_equal(atomic_load(&c1.failures), 0);
	/* both ended on the last slot: the later registration shows, the other is hidden */
	struct vcpu vcpu = {0};
	uint64_t v, last = 0x200000 + (uint64_t)(399 % SLOTS) * 0x1000;
	assert_int_equal(bm_bhyve_read_mem(b, &vcpu, last, &v, 4), 0);
	assert_true(v == dev_value(&d0, last) || v == dev_value(&d1, last));
	struct mem_range gone = {
	    .name = v == dev_value(&d0, last) ? "dev0" : "dev1", .base = last, .size = 0x1000};
	struct dev *other = v == dev_value(&d0, last) ? &d1 : &d0;
	assert_int_equal(bm_bhyve_unregister_mem(b, &gone), 0);
	assert_int_equal(bm_bhyve_read_mem(b, &vcpu, last, &v, 4), 0);
	assert_int_equal(v, dev_value(other, last));
	assert_int_equal(bm_bhyve_free(b), 0);
}

/* A host's RAM comes and goes beside the BAR: a read reaches the BAR, the RAM or nothing,
 * and never says success with its value unwritten. */
static uint8_t host_ram[0x1000];

static void host_region_beside_readers(void **state)
{
	(void)state;
	bm_bhyve *b;
	memset(host_ram, 0xa5, sizeof(host_ram));
	assert_int_equal(bm_bhyve_new(vcpu_id, &b), 0);
	struct mem_range mr = quiet_range(&bar_dev, BAR, 0x1000);
	assert_int_equal(bm_bhyve_register_mem(b, &mr), 0);
	atomic_bool stop = false;
	struct worker w[NVCPU];
	pthread_t tid[NVCPU];
	for (int i = 0; i < NVCPU; i++) {
		w[i] = (struct worker){.b = b, .vcpu = {i}, .stop = &stop, .also = 0xa5a5a5a5};
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NVCPU; i++) {
		while (!atomic_load(&w[i].active))
			sched_yield();
	}
	bm_region *root = bm_space_root(bm_bhyve_mem_space(b));
	for (int i = 0; i < 300; i++) {
		bm_region *ram;
		uint64_t at = BAR + (uint64_t)(i % SLOTS) * 0x1000;
		assert_int_equal(
		    bm_region_new_ram(bm_bhyve_system(b), "ram", sizeof(host_ram), host_ram, &ram),
		    0);
		/* At the BAR's place, it hides the BAR or hides behind it. */
		assert_int_equal(bm_region_add(root, ram, at, i % 2 ? 0 : -1), 0);
		assert_int_equal(bm_region_destroy(ram), 0);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NVCPU; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].wrong, 0);
	}
	assert_int_equal(bm_bhyve_free(b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(readers_beside_mover),
	    cmocka_unit_test(free_waits_for_threads),
	    cmocka_unit_test(moves_inside_handlers),
	    cmocka_unit_test(host_region_beside_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
