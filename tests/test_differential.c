/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Differential test of the flat view.
 *
 * The core's differential harness (tests/model/harness.h), which the fuzz target fuzz-core
 * drives with libFuzzer's bytes, runs here on bytes from a seeded generator: random
 * sequences of region, transaction, listener, conflict and access operations, applied both
 * to the library and to the brute-force reference model of tests/model, every publication,
 * event, access and return code checked against the model. Each episode is one run of the
 * harness on a fresh system, with its own stream, so that it can be replayed alone.
 *
 * BUSMAP_SEED=<n> replays a run, BUSMAP_EPISODE=<k> replays only episode k of it, and
 * BUSMAP_TRACE=1 prints every operation (the last ones are printed on failure anyway).
 *
 * A second test checks the documented error codes of calls the harness cannot make (NULL
 * arguments, foreign systems, a busy system).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/harness.h"
#include <busmap/busmap.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EPISODES        120
#define OPS             2000 /* per episode */
#define OP_BYTES        64   /* per operation: more than the largest one reads */
#define MIN_OPS         100000
#define EPISODE_TIMEOUT 60 /* seconds; an episode normally takes milliseconds */

_Static_assert(MIN_OPS <= EPISODES * OPS, "a run makes too few operations");

/* ------------------------------------------------------------------ random episodes */

static uint64_t run_seed;
static unsigned long episode;
static uint8_t input[OPS * OP_BYTES];

/* A hang inside the library (a lock never released, a loop that never ends) would
 * otherwise stall CI until its timeout with nothing to go on: say where it happened. Not
 * async-signal-safe formatting, but the process is about to end anyway. */
static void on_alarm(int sig)
{
	char buf[256];
	int n;

	(void)sig;
	n = snprintf(buf, sizeof(buf),
	             "\ndifferential: episode %lu did not finish within %d s (seed %" PRIu64
	             ", BUSMAP_EPISODE=%lu)\n",
	             episode, EPISODE_TIMEOUT, run_seed, episode);
	if (write(2, buf, (size_t)n) >= 0)
		harness_write_progress(2);
	_exit(1);
}

static uint64_t env_u64(const char *name, uint64_t dflt, bool *set)
{
	const char *v = getenv(name);
	if (set)
		*set = v && *v;
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void test_random_differential(void **state)
{
	bool one = false;
	unsigned long only;
	struct timespec t0, t1;
	struct harness_stats total = {0};
	char origin[192];

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_seed = env_u64("BUSMAP_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), NULL);
	only = (unsigned long)env_u64("BUSMAP_EPISODE", 0, &one);
	fprintf(stderr, "differential: seed %" PRIu64 "\n", run_seed);
	signal(SIGALRM, on_alarm);

	for (episode = one ? only : 0; episode < (one ? only + 1 : EPISODES); episode++) {
		/* each episode has its own input, so one can be replayed alone */
		uint64_t seed = run_seed ^ (episode * 0xd1b54a32d192ed03u);
		harness_random_input(seed, input, sizeof(input));
		struct harness_opts opts = {
		    .max_ops = OPS,
		    .check_seed = ~seed,
		    .origin = origin,
		    .trace = env_u64("BUSMAP_TRACE", 0, NULL) != 0,
		};
		struct harness_stats st;

		snprintf(origin, sizeof(origin),
		         "differential: seed %" PRIu64 " episode %lu (replay: BUSMAP_SEED=%" PRIu64
		         " BUSMAP_EPISODE=%lu, and BUSMAP_TRACE=1 for every operation)",
		         run_seed, episode, run_seed, episode);
		alarm(EPISODE_TIMEOUT);
		int rc = harness_run(input, sizeof(input), &opts, &st);
		alarm(0);
		if (rc)
			fail_msg(
			    "the library differs from the model in episode %lu of seed %" PRIu64
			    " (report above)",
			    episode, run_seed);
		assert_int_equal(st.ops, OPS); /* the input did not run out first */
		total.ops += st.ops;
		total.ok_calls += st.ok_calls;
		total.checks += st.checks;
		total.accesses += st.accesses;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr,
	        "differential: %lu operations (%lu calls succeeded), %lu checks, %" PRIu64
	        " accesses in %.2f s\n",
	        total.ops, total.ok_calls, total.checks, total.accesses,
	        (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (!one)
		assert_true(total.ops >= MIN_OPS);
}

/* ------------------------------------------------------------------ documented errors */

/* Regions whose callbacks the error checks never reach. */
static int io_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)opaque;
	(void)vcpu;
	(void)offset;
	(void)size;
	*value = 0;
	return 0;
}

static const struct bm_region_ops io_ops = {.read = io_read};

static void listener_fn(void *arg, bm_space *space, const struct bm_flat_range *removed,
                        size_t nremoved, const struct bm_flat_range *added, size_t nadded)
{
	(void)arg;
	(void)space;
	(void)removed;
	(void)nremoved;
	(void)added;
	(void)nadded;
}

static int count_fn(void *arg, const struct bm_flat_range *r)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static int stop_fn(void *arg, const struct bm_flat_range *r)
{
	(void)r;
	(*(int *)arg)++;
	return 1;
}

static void test_error_codes(void **state)
{
	bm_system *sys, *other;
	bm_space *sp;
	bm_region *root, *io, *io2, *c, *d, *a, *a2, *x = NULL, *foreign;
	bm_vcpu *vcpu;
	uint64_t v;
	int n;

	(void)state;
	assert_int_equal(bm_system_new(NULL), -EINVAL);
	assert_int_equal(bm_system_new(&sys), 0);
	assert_int_equal(bm_system_new(&other), 0);
	assert_int_equal(bm_space_new(NULL, "m", "r", &sp), -EINVAL);
	assert_int_equal(bm_space_new(sys, "m", "r", NULL), -EINVAL);
	assert_int_equal(bm_space_new(sys, "m", "r", &sp), 0);
	root = bm_space_root(sp);
	assert_non_null(root);

	/* creation: size 0, NULL system, NULL out, NULL target */
	assert_int_equal(bm_region_new_io(sys, "x", 0, &io_ops, NULL, &x), -EINVAL);
	assert_int_equal(bm_region_new_ram(sys, "x", 0, &v, &x), -EINVAL);
	assert_int_equal(bm_region_new_container(sys, "x", 0, &x), -EINVAL);
	assert_int_equal(bm_region_new_io(NULL, "x", 4, &io_ops, NULL, &x), -EINVAL);
	assert_int_equal(bm_region_new_io(sys, "x", 4, &io_ops, NULL, NULL), -EINVAL);
	assert_int_equal(bm_region_new_container(NULL, "x", 4, &x), -EINVAL);
	assert_int_equal(bm_region_new_alias(sys, "x", NULL, 0, 4, &x), -EINVAL);
	assert_null(x);

	assert_int_equal(bm_region_new_io(sys, "io", 0x100, &io_ops, (void *)1, &io), 0);
	assert_int_equal(bm_region_new_io(sys, "io2", 0x100, &io_ops, (void *)2, &io2), 0);
	assert_int_equal(bm_region_new_container(sys, "c", 0x1000, &c), 0);
	assert_int_equal(bm_region_new_container(sys, "d", 0x1000, &d), 0);
	assert_int_equal(bm_region_new_alias(sys, "x", io, 0, 0, &x), -EINVAL);
	assert_int_equal(bm_region_new_alias(sys, "a", c, 0, 0x1000, &a), 0);
	assert_int_equal(bm_region_new_alias(sys, "a2", a, 0, 0x800, &a2), 0);
	assert_int_equal(bm_region_new_io(other, "f", 0x10, &io_ops, NULL, &foreign), 0);
	assert_string_equal(bm_region_name(io), "io");
	assert_int_equal(bm_region_kind(a), BM_REGION_ALIAS);

	/* NULL arguments */
	assert_int_equal(bm_region_add(NULL, io, 0, 0), -EINVAL);
	assert_int_equal(bm_region_add(root, NULL, 0, 0), -EINVAL);
	assert_int_equal(bm_region_del(NULL), -EINVAL);
	assert_int_equal(bm_region_move(NULL, 0), -EINVAL);
	assert_int_equal(bm_region_set_enabled(NULL, true), -EINVAL);
	assert_int_equal(bm_region_set_priority(NULL, 1), -EINVAL);
	assert_int_equal(bm_region_resize(NULL, 1), -EINVAL);
	assert_int_equal(bm_region_set_alias_offset(NULL, 0), -EINVAL);
	assert_int_equal(bm_region_set_exclusive(NULL, true), -EINVAL);
	/* undocumented; free(NULL)-like 0 is as reasonable as -EINVAL */
	n = bm_region_destroy(NULL);
	assert_true(n == 0 || n == -EINVAL);
	assert_int_equal(bm_begin(NULL), -EINVAL);
	assert_int_equal(bm_commit(NULL), -EINVAL);
	assert_int_equal(bm_synchronize(NULL), -EINVAL);
	assert_int_equal(bm_listener_add(NULL, listener_fn, NULL, NULL), -EINVAL);
	assert_int_equal(bm_read(NULL, sp, 0, 1, &v), -EINVAL);
	assert_int_equal(bm_write(NULL, sp, 0, 1, 0), -EINVAL);
	assert_null(bm_region_name(NULL));
	assert_int_equal(bm_region_size(NULL), 0);
	assert_null(bm_region_parent(NULL));
	assert_false(bm_region_enabled(NULL));

	/* parent and loop errors */
	assert_int_equal(bm_region_add(root, c, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(c, d, 0x100, 0), 0);
	assert_int_equal(bm_region_add(root, c, 0x2000, 0), -EEXIST);
	assert_int_equal(bm_region_add(io, io2, 0, 0), -ENOTDIR);
	assert_int_equal(bm_region_del(io), -ENOENT);
	assert_int_equal(bm_region_move(io, 0), -ENOENT);
	assert_int_equal(bm_region_del(c), 0);
	assert_int_equal(bm_region_add(c, c, 0, 0), -ELOOP);
	assert_int_equal(bm_region_add(d, c, 0, 0), -ELOOP);  /* c into its own child */
	assert_int_equal(bm_region_add(c, a, 0, 0), -ELOOP);  /* alias of c into c */
	assert_int_equal(bm_region_add(d, a2, 0, 0), -ELOOP); /* via two aliases, one level down */
	assert_int_equal(bm_region_add(d, a, 0, 0), -ELOOP);
	assert_null(bm_region_parent(a));
	assert_null(bm_region_parent(a2));
	assert_int_equal(bm_region_add(root, c, 0x1000, 0), 0);
	assert_int_equal(bm_region_add(root, foreign, 0, 0), -EXDEV);

	/* ranges against 2^64 */
	assert_int_equal(bm_region_add(root, io, UINT64_MAX - 0xfe, 0), -ERANGE);
	assert_null(bm_region_parent(io));
	assert_int_equal(bm_region_add(root, io, UINT64_MAX - 0xff, 0), 0);
	assert_int_equal(bm_region_move(io, UINT64_MAX - 0xfe), -ERANGE);
	assert_int_equal(bm_region_offset(io), UINT64_MAX - 0xff);
	assert_int_equal(bm_region_resize(io, 0x101), -ERANGE);
	assert_int_equal(bm_region_size(io), 0x100);
	assert_int_equal(bm_region_resize(io, 0), -EINVAL);
	assert_int_equal(bm_region_move(io, 0x8000), 0);
	assert_int_equal(bm_region_add(root, io2, 0x9000, 0), 0);
	assert_int_equal(bm_region_resize(io, BM_SIZE_ALL), -ERANGE);
	assert_int_equal(bm_region_resize(io, 0x100), 0);
	assert_int_equal(bm_region_set_alias_offset(io, 0), -EINVAL);
	assert_int_equal(bm_region_set_alias_offset(a, 0x10), 0);

	/* an alias keeps its target alive */
	assert_int_equal(bm_region_destroy(c), -EBUSY);
	assert_ptr_equal(bm_region_parent(c), root);
	assert_int_equal(bm_region_destroy(a), -EBUSY); /* a2 targets a */

	/* transactions and synchronisation */
	assert_int_equal(bm_commit(sys), -EPERM);
	assert_int_equal(bm_begin(sys), 0);
	assert_int_equal(bm_synchronize(sys), -EDEADLK);
	assert_int_equal(bm_commit(sys), 0);
	assert_int_equal(bm_synchronize(sys), 0);

	/* the flat walk stops when fn says so and reports the generation either way */
	n = 0;
	uint64_t g1 = bm_space_flat(sp, count_fn, &n);
	assert_int_equal(n, 2);
	n = 0;
	uint64_t g2 = bm_space_flat(sp, stop_fn, &n);
	assert_int_equal(n, 1);
	assert_true(g1 == g2);

	/* a vCPU context keeps the system alive; bad sizes are refused */
	assert_int_equal(bm_vcpu_new(sys, 3, &n, &vcpu), 0);
	assert_int_equal(bm_vcpu_index(vcpu), 3);
	assert_ptr_equal(bm_vcpu_user(vcpu), &n);
	assert_int_equal(bm_read(vcpu, sp, 0x8000, 3, &v), -EINVAL);
	assert_int_equal(bm_read(vcpu, sp, 0x8000, 1, NULL), -EINVAL);
	assert_int_equal(bm_read(vcpu, NULL, 0x8000, 1, &v), -EINVAL);
	assert_int_equal(bm_system_free(sys), -EBUSY);
	assert_int_equal(bm_vcpu_free(vcpu), 0);

	assert_int_equal(bm_region_destroy(a2), 0);
	assert_int_equal(bm_region_destroy(a), 0);
	assert_int_equal(bm_region_destroy(c), 0);
	assert_null(bm_region_parent(d)); /* detached, still owned */
	assert_int_equal(bm_region_add(root, d, 0, 0), 0);
	assert_int_equal(bm_system_free(sys), 0);
	assert_int_equal(bm_system_free(other), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_random_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
