/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The options both benchmark runners take, and the choice of instruction counter.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int parse_instr(struct bench_opts *o, const char *v)
{
	o->icount_auto = !strcmp(v, "auto");
	if (o->icount_auto || !strcmp(v, "perf"))
		o->icount = ICOUNT_PERF;
	else if (!strcmp(v, "callgrind"))
		o->icount = ICOUNT_CALLGRIND;
	else if (!strcmp(v, "none"))
		o->icount = ICOUNT_NONE;
	else
		return -1;
	return 0;
}

int bench_parse_args(struct bench_opts *o, int argc, char **argv)
{
	parse_instr(o, "auto");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json"))
			o->json = true;
		else if (!strcmp(a, "--quick"))
			o->quick = true;
		else if (!strcmp(a, "--count-mode"))
			o->count_mode = true;
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			o->verbose = true;
		else if (!strncmp(a, "--instr=", 8) && !parse_instr(o, a + 8))
			continue;
		else
			return -1;
	}
	return 0;
}

const char *bench_choose_icount(struct bench_opts *o)
{
	const char *note = "";

	if (o->icount == ICOUNT_PERF) {
		int fd = icount_perf_open();

		if (fd >= 0) {
			icount_perf_close(fd);
			return note;
		}
		o->icount = o->icount_auto ? ICOUNT_CALLGRIND : ICOUNT_NONE;
		note = o->icount_auto ? "" : "perf_event_open failed";
	}
	if (o->icount == ICOUNT_CALLGRIND && !icount_callgrind_built()) {
		o->icount = ICOUNT_NONE;
		note = "built without valgrind/callgrind.h";
	}
	return note;
}

/* Timings on a shared machine are only as good as its idleness: note how busy it was
 * before the run started. */
static double read_load(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double load = NAN;

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = NAN;
		fclose(f);
	}
	return load;
}

int bench_begin(struct bench_opts *o, int argc, char **argv, const char *prog,
                void (*usage)(FILE *f))
{
	o->load_at_start = NAN;
	o->icount_note = "";
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (bench_parse_args(o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	if (o->count_mode && !icount_under_valgrind()) {
		fprintf(stderr, "%s: --count-mode is for running under callgrind\n", prog);
		return 2;
	}
	if (!o->count_mode) {
		o->load_at_start = read_load();
		o->icount_note = bench_choose_icount(o);
	}
	return -1;
}

const char *bench_icount_method(const struct bench_opts *o)
{
	switch (o->icount) {
	case ICOUNT_PERF:
		return "perf_event_open (hardware counter)";
	case ICOUNT_CALLGRIND:
		return "callgrind (valgrind)";
	default:
		return "not measured (--instr=none)";
	}
}
