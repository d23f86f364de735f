/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap: replays BAR-programming sequences (scenario files and QEMU trace logs), prints
 * the address map, reports overlapping BARs and draws a timeline. See busmap(1).
 *
 * Exit status: 0 every expectation held, 1 one failed (or a trace diverged), 2 usage,
 * parse or input errors.
 */
#include "conflicts.h"
#include "demo.h"
#include "parser.h"
#include "presets.h"
#include "qemu_cmd.h"
#include "runner.h"
#include "timeline.h"

#include <busmap/busmap.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

struct cmd {
	const char *name; /* replay, conflicts, timeline, demo */
	bool verbose;
	enum map_format map;
	bool conflicts;
	const char *svg;
	const char *qemu_trace;
	const char *machine;
	const char *mtree;
	const char *file;
};

static const char usage_text[] =
    "usage: busmap replay [-v] [--map=mtree|flat|json] [--conflicts] [--svg=OUT] FILE\n"
    "       busmap replay [options] [--machine=NAME] [--mtree=FILE] --qemu-trace=LOG\n"
    "       busmap conflicts [options] FILE | --qemu-trace=LOG\n"
    "       busmap timeline --svg=OUT [options] FILE | --qemu-trace=LOG\n"
    "       busmap demo [-v] [--map=FORMAT] [--conflicts] [--svg=OUT]\n"
    "       busmap presets\n"
    "       busmap --help | --version\n"
    "See busmap(1) for the command and busmap-scenario(5) for the scenario language.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fputs("busmap: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n", stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static int parse_options(int argc, char **argv, struct cmd *c)
{
	enum { OPT_MAP = 256, OPT_CONFLICTS, OPT_SVG, OPT_TRACE, OPT_MACHINE, OPT_MTREE };
	static const struct option longs[] = {
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"map", required_argument, NULL, OPT_MAP},
	    {"conflicts", no_argument, NULL, OPT_CONFLICTS},
	    {"svg", required_argument, NULL, OPT_SVG},
	    {"qemu-trace", required_argument, NULL, OPT_TRACE},
	    {"machine", required_argument, NULL, OPT_MACHINE},
	    {"mtree", required_argument, NULL, OPT_MTREE},
	    {NULL, 0, NULL, 0},
	};
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":vh", longs, NULL)) != -1) {
		switch (o) {
		case 'v':
			c->verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		case OPT_MAP: {
			int f = map_format_parse(optarg);
			if (f < 0)
				return usage_error("--map takes mtree, flat or json, not \"%s\"",
				                   optarg);
			c->map = (enum map_format)f;
			break;
		}
		case OPT_CONFLICTS:
			c->conflicts = true;
			break;
		case OPT_SVG:
			c->svg = optarg;
			break;
		case OPT_TRACE:
			c->qemu_trace = optarg;
			break;
		case OPT_MACHINE:
			c->machine = optarg;
			break;
		case OPT_MTREE:
			c->mtree = optarg;
			break;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		c->file = argv[optind++];
	if (optind < argc)
		return usage_error("one input at a time (extra \"%s\")", argv[optind]);
	return -1;
}

static int check_inputs(const struct cmd *c)
{
	bool demo = strcmp(c->name, "demo") == 0;
	if (demo && (c->file || c->qemu_trace))
		return usage_error("%s runs its built-in scenario and takes no input", c->name);
	if (!demo && !c->file && !c->qemu_trace)
		return usage_error("%s needs a scenario FILE or --qemu-trace=LOG", c->name);
	if (c->file && c->qemu_trace)
		return usage_error("%s takes a scenario FILE or --qemu-trace=LOG, not both",
		                   c->name);
	if (strcmp(c->name, "timeline") == 0 && !c->svg)
		return usage_error("%s needs --svg=OUT", c->name);
	if ((c->machine || c->mtree) && !c->qemu_trace)
		return usage_error("%s: --machine and --mtree go with --qemu-trace", c->name);
	return -1;
}

static int write_svg(const char *path, const struct history *h, const char *title)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (!f) {
		fprintf(stderr, "busmap: cannot write %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	int err = timeline_svg(f, h, title);
	if (f != stdout && fclose(f) != 0 && !err)
		err = -EIO;
	if (err) {
		fprintf(stderr, "busmap: cannot write %s: %s\n", path, strerror(-err));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int run_scenario(const struct cmd *c, struct history *h)
{
	struct scn_script s;
	struct lex_error err = {0};
	int r = scn_parse_file(c->file, &s, &err);
	if (r == -1) {
		if (err.line)
			fprintf(stderr, "%s:%u:%u: error: %s\n", c->file, err.line, err.col,
			        err.msg);
		else
			fprintf(stderr, "%s: error: %s\n", c->file, err.msg);
		return EXIT_USAGE;
	}
	if (r) {
		fprintf(stderr, "%s: error: %s\n", c->file, strerror(-r));
		return EXIT_USAGE;
	}
	struct run_options o = {
	    .verbose = c->verbose, .map = c->map, .out = stdout, .err = stderr, .history = h};
	struct run_result res;
	r = runner_run(&s, &o, &res);
	scn_script_free(&s);
	if (r) {
		fprintf(stderr, "busmap: %s\n", strerror(-r));
		return EXIT_USAGE;
	}
	if (res.error)
		return EXIT_USAGE;
	if (c->verbose || res.failures)
		fprintf(res.failures ? stderr : stdout,
		        "%s: %zu step%s, %zu expectation%s checked, %zu failed\n", c->file,
		        res.steps, res.steps == 1 ? "" : "s", res.expectations,
		        res.expectations == 1 ? "" : "s", res.failures);
	return res.failures ? EXIT_FAILED : EXIT_OK;
}

static int run_trace(const struct cmd *c, struct history *h)
{
	struct qemu_cmd_options o = {
	    .log = c->qemu_trace,
	    .machine = c->machine,
	    .mtree = c->mtree,
	    .verbose = c->verbose,
	    .map = c->map,
	    .out = stdout,
	    .err = stderr,
	    .history = h,
	};
	return qemu_cmd_run(&o);
}

static int run_demo(const struct cmd *c, struct history *h)
{
	struct demo_options o = {
	    .verbose = c->verbose, .map = c->map, .out = stdout, .err = stderr, .history = h};
	return demo_run(&o);
}

static int run(struct cmd *c)
{
	bool report = c->conflicts || strcmp(c->name, "conflicts") == 0;
	struct history h = {0};
	struct history *hp = report || c->svg ? &h : NULL;
	int status;
	if (strcmp(c->name, "demo") == 0)
		status = run_demo(c, hp);
	else if (c->qemu_trace)
		status = run_trace(c, hp);
	else
		status = run_scenario(c, hp);
	if (status != EXIT_USAGE && report)
		conflicts_report(stdout, &h);
	if (status != EXIT_USAGE && c->svg) {
		const char *title = c->qemu_trace ? c->qemu_trace : c->file ? c->file : "seed";
		int s = write_svg(c->svg, &h, title);
		if (s)
			status = s;
	}
	history_free(&h);
	return status;
}

static int list_presets(void)
{
	const struct preset_info *p;
	for (size_t i = 0; (p = preset_at(i)); i++)
		printf("%-24s %s\n", p->name, p->what);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("%s", "a command is needed");
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(name, "--version") == 0) {
		printf("busmap %s\n", BUSMAP_VERSION);
		return EXIT_OK;
	}
	if (strcmp(name, "presets") == 0)
		return argc == 2 ? list_presets() : usage_error("%s takes no arguments", name);
	static const char *const commands[] = {"replay", "conflicts", "timeline", "demo"};
	bool known = false;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		known |= strcmp(name, commands[i]) == 0;
	if (!known)
		return usage_error("unknown command \"%s\"", name);
	struct cmd c = {.name = name};
	int r = parse_options(argc - 1, argv + 1, &c);
	if (r < 0)
		r = check_inputs(&c);
	return r >= 0 ? r : run(&c);
}
