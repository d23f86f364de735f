/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A bhyve host that calls init_mem and exits, without calling anything of busmap's own:
 * run under valgrind (meson test bhyve-teardown-valgrind), it must leave nothing lost or
 * possibly lost. With the argument "used" it also registers a range and makes an access,
 * which gives the main thread a dispatch context, before it exits.
 *
 * The instance must not be freed at exit from under a thread that may still use it: with
 * "busy" another thread holds a context and stays blocked while the program exits, with
 * "inside" the program exits from a handler, in the middle of an access (as bhyve may on a
 * guest's power-off). Both must exit cleanly, with the status the program chose.
 */
#include <busmap/compat/bhyve_mem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vcpu {
	int id;
};

int vcpu_id(struct vcpu *vcpu)
{
	return vcpu->id;
}

static int handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val, void *arg1,
                   long arg2)
{
	(void)vcpu;
	(void)size;
	(void)arg1;
	(void)arg2;
	if (dir == MEM_F_READ)
		*val = addr;
	else if (*val == 0xdead)
		exit(3);
	return 0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int vcpu_ready;

/* A vCPU thread that makes an access, then blocks for good. */
static void *vcpu_main(void *arg)
{
	struct vcpu vcpu = {1};
	uint64_t v;
	(void)arg;
	read_mem(&vcpu, 0x1000, &v, 4);
	pthread_mutex_lock(&mu);
	vcpu_ready = 1;
	pthread_cond_broadcast(&cv);
	for (;;)
		pthread_cond_wait(&cv, &mu);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct mem_range mr = {
	    .name = "dev", .flags = MEM_F_RW, .handler = handler, .base = 0x1000, .size = 0x100};
	const char *mode = argc > 1 ? argv[1] : "init";
	struct vcpu vcpu = {0};
	init_mem(2);
	if (strcmp(mode, "busy") == 0) {
		pthread_t t;
		if (register_mem(&mr) || pthread_create(&t, NULL, vcpu_main, NULL))
			return 1;
		pthread_mutex_lock(&mu);
		while (!vcpu_ready)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		return 4;
	}
	if (strcmp(mode, "inside") == 0) {
		if (register_mem(&mr))
			return 1;
		write_mem(&vcpu, 0x1000, 0xdead, 4);
		return 1; /* the handler exits with 3 */
	}
	if (strcmp(mode, "used") == 0) {
		static struct mem_range moved;
		uint64_t v = 0;
		moved = mr;
		moved.base = 0x2000;
		if (register_mem(&mr) || read_mem(&vcpu, 0x1010, &v, 4) || v != 0x1010)
			return 1;
		/* A removal leaves a registration waiting for its grace period. */
		if (unregister_mem(&mr) || register_mem(&moved) || write_mem(&vcpu, 0x2000, 1, 1))
			return 1;
	}
	return 0;
}
