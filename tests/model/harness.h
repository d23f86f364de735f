/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The core's differential harness: input bytes become a sequence of address-space
 * operations (regions of every kind, adds, deletes, moves, enabling, priorities, resizes,
 * alias offsets, exclusivity, destruction, nested transactions, listeners, conflict
 * callbacks, accesses, QSBR offline periods, dumps), applied both to the library and to the
 * reference model of model.h, with every result checked against the model.
 *
 * It has two drivers, so that what one of them checks the other checks too: the fuzz
 * target fuzz-core feeds it libFuzzer's bytes, and the differential test feeds it bytes
 * from a seeded generator.
 */
#ifndef BUSMAP_TEST_HARNESS_H
#define BUSMAP_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct harness_opts {
	unsigned long max_ops; /* stop after this many operations, or where the input ends */
	/* Seeds the addresses the checks after each publication pick by themselves, which the
	 * input does not spend bytes on. */
	uint64_t check_seed;
	/* Printed with a failure: where the input came from and how to replay it. */
	const char *origin;
	bool trace;    /* print every operation as it runs */
	bool no_dumps; /* leave out the dump calls, to explore past a failure in them */
};

struct harness_stats {
	unsigned long ops;      /* operations decoded from the input */
	unsigned long ok_calls; /* mutators, creations and commits that succeeded */
	unsigned long checks;   /* publications whose views were compared with the model */
	uint64_t accesses;      /* reads and writes dispatched and checked */
};

/*
 * Runs one input (harness.c says how its bytes are read): a fresh system, the operations,
 * then a teardown that frees everything. Returns 0, or -1 after reporting the first difference from
 * the model on stderr (the operation, the input byte it was read at, what differed, the last
 * operations, the model and the views). After a failure the run's objects are left allocated.
 * stats, if not NULL, is filled in either way.
 */
int harness_run(const uint8_t *data, size_t size, const struct harness_opts *opts,
                struct harness_stats *stats);

/* Fills buf with bytes from a generator seeded with seed: an input of random operations. */
void harness_random_input(uint64_t seed, uint8_t *buf, size_t size);

/* For a watchdog: writes which operation the current run is at, and the last operations,
 * to fd with write(2). */
void harness_write_progress(int fd);

#endif
