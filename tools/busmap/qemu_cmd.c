/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * QEMU trace replay for the command line. The trace library does the replay and the
 * comparison; this file feeds it a log (decompressing .gz through gzip -dc), steps it one
 * configuration write at a time when the map is wanted after each write, and words the
 * first divergence with its trace line.
 */
#include "qemu_cmd.h"

#include "qemu_mtree.h"
#include "qemu_replay.h"
#include "world.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct trace_run {
	const struct qemu_cmd_options *o;
	struct qemu_trace *trace;
	struct qemu_replay *rep;
	struct world w;
};

/* ---- input ---- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A stream of the log's text; *pid is the decompressor's, or 0. */
static FILE *open_log(const char *path, pid_t *pid)
{
	*pid = 0;
	if (strcmp(path, "-") == 0)
		return stdin;
	if (!has_suffix(path, ".gz"))
		return fopen(path, "r");
	if (access(path, R_OK) != 0)
		return NULL;
	int fds[2];
	if (pipe(fds) != 0)
		return NULL;
	pid_t p = fork();
	if (p < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (p == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		/* When the parser stops early, gzip is to die quietly of the closed pipe. */
		signal(SIGPIPE, SIG_DFL);
		execlp("gzip", "gzip", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	if (!f) {
		close(fds[0]);
		waitpid(p, NULL, 0);
		return NULL;
	}
	*pid = p;
	return f;
}

enum unpacked { UNPACKED, GZIP_MISSING, GZIP_FAILED };

/* Closes the stream and says how the decompressor ended. One that died of the pipe
 * closing did not fail: the parser stopped reading, and has said why. */
static enum unpacked close_log(FILE *f, pid_t pid)
{
	if (f != stdin)
		fclose(f);
	if (!pid)
		return UNPACKED;
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return GZIP_FAILED;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE)
		return UNPACKED;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return GZIP_MISSING;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? UNPACKED : GZIP_FAILED;
}

static int read_trace(struct trace_run *s)
{
	const struct qemu_cmd_options *o = s->o;
	pid_t pid;
	FILE *f = open_log(o->log, &pid);
	if (!f) {
		fprintf(o->err, "%s: error: cannot read: %s\n", o->log, strerror(errno));
		return 2;
	}
	struct qemu_error err = {0};
	int r = qemu_trace_parse(f, NULL, &s->trace, &err);
	enum unpacked unpacked = close_log(f, pid);
	/* What gzip gave was not the file's whole text: whatever the parser made of it, the
	 * fault is gzip's (or the file's). */
	if (unpacked != UNPACKED) {
		fprintf(o->err, "%s: error: %s (a gunzipped log works too)\n", o->log,
		        unpacked == GZIP_MISSING ? "cannot run \"gzip -dc\" (is gzip installed?)"
		                                 : "\"gzip -dc\" failed: not a whole gzip file");
		return 2;
	}
	if (r) {
		if (err.line)
			fprintf(o->err, "%s:%u: error: %s\n", o->log, err.line, err.message);
		else
			fprintf(o->err, "%s: error: %s\n", o->log,
			        err.message[0] ? err.message : strerror(-r));
		return 2;
	}
	if (!s->trace->stats.cfg_reads && !s->trace->stats.cfg_writes) {
		fprintf(o->err,
		        "%s: error: no pci_cfg_read or pci_cfg_write line: not a QEMU trace of PCI "
		        "configuration (trace backend \"log\", -trace 'pci_cfg_*')\n",
		        o->log);
		return 2;
	}
	return 0;
}

/* The machine type: given, else from the cmdline.txt QEMU runs are kept with, else "pc". */
static void machine_name(const struct qemu_cmd_options *o, char *name, size_t size)
{
	snprintf(name, size, "%s", o->machine ? o->machine : "pc");
	if (o->machine || strcmp(o->log, "-") == 0)
		return;
	const char *slash = strrchr(o->log, '/');
	size_t dir = slash ? (size_t)(slash - o->log) + 1 : 0;
	char *path = malloc(dir + sizeof("cmdline.txt"));
	if (!path)
		return;
	memcpy(path, o->log, dir);
	strcpy(path + dir, "cmdline.txt");
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return;
	char line[8192];
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	char found[64];
	if (qemu_replay_machine_from_cmdline(line, found, sizeof(found)) == 0)
		snprintf(name, size, "%s", found);
}

/* The region tree of the same run: QEMU's "info mtree" beside its "info mtree -f" (the
 * same name without "-f"), else info-mtree.txt beside the log. It tells MSI-X layouts
 * the trace may not have read. */
static char *tree_path(const struct qemu_cmd_options *o)
{
	const char *base = o->mtree ? o->mtree : strcmp(o->log, "-") ? o->log : NULL;
	if (!base)
		return NULL;
	const char *slash = strrchr(base, '/');
	size_t dir = slash ? (size_t)(slash - base) + 1 : 0;
	const char *name = base + dir;
	char *path = malloc(strlen(base) + sizeof("info-mtree.txt"));
	if (!path)
		return NULL;
	memcpy(path, base, dir);
	if (o->mtree && strncmp(name, "info-mtree-f", 12) == 0)
		sprintf(path + dir, "info-mtree%s", name + 12);
	else
		strcpy(path + dir, "info-mtree.txt");
	return path;
}

static int load_hints(const struct qemu_cmd_options *o, struct qemu_replay_msix_hint **hints,
                      size_t *n)
{
	*hints = NULL;
	*n = 0;
	char *path = tree_path(o);
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f) {
		free(path);
		return 0;
	}
	struct qemu_error err = {0};
	int r = qemu_mtree_msix_hints(f, hints, n, &err);
	fclose(f);
	if (r)
		fprintf(o->err, "%s:%u: error: %s\n", path, err.line, err.message);
	else if (o->verbose)
		fprintf(o->out, "%s: %zu MSI-X layouts\n", path, *n);
	free(path);
	return r ? 2 : 0;
}

/* ---- world ---- */

static const char *device_label(void *arg, const bm_pci_func *f)
{
	const struct trace_run *s = arg;
	const struct qemu_replay_device *d = qemu_replay_device_of(s->rep, f);
	return d ? d->name : NULL;
}

static int start_replay(struct trace_run *s)
{
	const struct qemu_cmd_options *o = s->o;
	char machine[64];
	machine_name(o, machine, sizeof(machine));
	struct qemu_replay_options opt;
	if (qemu_replay_machine_options(machine, &opt)) {
		fprintf(o->err, "busmap: unknown machine \"%s\"\n", machine);
		return 2;
	}
	struct qemu_replay_msix_hint *hints;
	if (load_hints(o, &hints, &opt.nmsix_hints))
		return 2;
	opt.msix_hints = hints;
	struct qemu_error err = {0};
	int r = qemu_replay_new(s->trace, &opt, &s->rep, &err);
	free(hints);
	if (r) {
		fprintf(o->err, "%s:%u: error: cannot replay this trace: %s\n", o->log, err.line,
		        err.message);
		return 2;
	}
	s->w = (struct world){
	    .host = qemu_replay_host(s->rep),
	    .mem = qemu_replay_space(s->rep, false),
	    .io = qemu_replay_space(s->rep, true),
	    .label = device_label,
	    .label_arg = s,
	};
	if (o->verbose)
		fprintf(o->out, "%s: machine %s, %zu trace events\n", o->log, machine,
		        s->trace->count);
	return 0;
}

/* ---- stepping ---- */

static void write_label(const struct qemu_trace_event *e, char *buf, size_t size)
{
	snprintf(buf, size, "cfg %02x:%02x.%x @0x%x <- 0x%" PRIx64, QEMU_TRACE_BUS(e->bdf),
	         QEMU_TRACE_DEV(e->bdf), QEMU_TRACE_FN(e->bdf), e->reg, e->value);
}

static void print_changes(struct trace_run *s, const struct world_bar *old, size_t nold,
                          const struct world_bar *now, size_t n)
{
	for (size_t i = 0; i < n && i < nold; i++) {
		const struct world_bar *a = &old[i], *b = &now[i];
		if (a->mapped == b->mapped && a->addr == b->addr)
			continue;
		if (a->mapped)
			fprintf(s->o->out, "        unmap %s %s 0x%" PRIx64 "+0x%" PRIx64 "\n",
			        a->name, a->io ? "io " : "mem", a->addr, a->size);
		if (b->mapped)
			fprintf(s->o->out, "        map   %s %s 0x%" PRIx64 "+0x%" PRIx64 "\n",
			        b->name, b->io ? "io " : "mem", b->addr, b->size);
	}
}

static int after_write(struct trace_run *s, const struct qemu_trace_event *e, size_t step,
                       struct world_bar **prev, size_t *nprev)
{
	const struct qemu_cmd_options *o = s->o;
	char label[96];
	write_label(e, label, sizeof(label));
	if (o->history && history_record(o->history, &s->w, e->line, label))
		return -ENOMEM;
	if (!o->verbose)
		return 0;
	struct world_bar *bars;
	size_t n;
	if (world_bars(&s->w, &bars, &n))
		return -ENOMEM;
	fprintf(o->out, "  %s\n", label);
	print_changes(s, *prev, *nprev, bars, n);
	free(*prev);
	*prev = bars;
	*nprev = n;
	if (o->map != MAP_NONE)
		return map_print(o->out, &s->w, o->map, step, e->line, label);
	return 0;
}

static int replay(struct trace_run *s)
{
	const struct qemu_cmd_options *o = s->o;
	struct qemu_error err = {0};
	bool stepwise = o->history || o->verbose;
	struct world_bar *prev = NULL;
	size_t nprev = 0, step = 0;
	int r = 0;
	if (stepwise && world_bars(&s->w, &prev, &nprev))
		r = -ENOMEM;
	for (size_t i = 0; stepwise && !r && i < s->trace->count; i++) {
		const struct qemu_trace_event *e = &s->trace->events[i];
		if (e->kind != QEMU_TRACE_CFG_WRITE)
			continue;
		r = qemu_replay_run(s->rep, e->line + 1, &err);
		if (!r)
			r = after_write(s, e, step++, &prev, &nprev);
	}
	free(prev);
	if (!r)
		r = qemu_replay_run(s->rep, 0, &err);
	if (r) {
		fprintf(o->err, "%s:%u: error: the replay stopped: %s\n", o->log, err.line,
		        err.message[0] ? err.message : strerror(-r));
		return 2;
	}
	return 0;
}

/* ---- verdict ---- */

static void format_event(const struct qemu_replay_map_event *e, bool have, char *buf, size_t size)
{
	if (!have) {
		snprintf(buf, size, "no event");
		return;
	}
	char bar[8];
	if (e->bar == BM_PCI_ROM)
		snprintf(bar, sizeof(bar), "rom");
	else
		snprintf(bar, sizeof(bar), "bar%u", e->bar);
	snprintf(buf, size, "%s %02x:%02x.%x/%s 0x%" PRIx64 "+0x%" PRIx64,
	         e->mapped ? "map" : "unmap", QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf),
	         QEMU_TRACE_FN(e->bdf), bar, e->addr, e->size);
}

static int verdict(struct trace_run *s)
{
	const struct qemu_cmd_options *o = s->o;
	const struct qemu_replay_result *res = qemu_replay_result(s->rep);
	int status = 0;
	if (res->divergences) {
		const struct qemu_replay_divergence *d = &res->divergence[0];
		char want[96], got[96];
		format_event(&d->expected, d->have_expected, want, sizeof(want));
		format_event(&d->actual, d->have_actual, got, sizeof(got));
		fprintf(o->err,
		        "%s:%u: busmap's BAR map diverges from QEMU's (configuration write at line "
		        "%u; %zu diverging write%s in all)\n  QEMU:   %s\n  busmap: %s\n",
		        o->log, d->line, d->write_line, res->divergences,
		        res->divergences == 1 ? "" : "s", want, got);
		status = 1;
	}
	if (res->read_mismatches) {
		const struct qemu_replay_read_mismatch *m = &res->mismatch[0];
		fprintf(o->err,
		        "%s:%u: configuration read differs (%zu in all): %02x:%02x.%x @0x%x, %u "
		        "bytes\n  QEMU:   0x%08" PRIx32 "\n  busmap: 0x%08" PRIx32
		        " (bytes compared: mask 0x%08" PRIx32 ")\n",
		        o->log, m->line, res->read_mismatches, QEMU_TRACE_BUS(m->bdf),
		        QEMU_TRACE_DEV(m->bdf), QEMU_TRACE_FN(m->bdf), m->reg, m->width,
		        m->expected, m->actual, m->mask);
		status = 1;
	}
	return status;
}

static int compare_mtree(struct trace_run *s)
{
	const struct qemu_cmd_options *o = s->o;
	FILE *f = fopen(o->mtree, "r");
	if (!f) {
		fprintf(o->err, "%s: error: cannot read: %s\n", o->mtree, strerror(errno));
		return 2;
	}
	struct qemu_mtree m;
	struct qemu_error err = {0};
	int r = qemu_mtree_parse(f, &m, &err);
	fclose(f);
	if (r) {
		fprintf(o->err, "%s:%u: error: %s\n", o->mtree, err.line, err.message);
		return 2;
	}
	struct qemu_replay_bar *bars;
	size_t n;
	r = qemu_replay_busmap_map(s->rep, &bars, &n);
	if (!r)
		r = qemu_mtree_compare(&m, bars, n, &err);
	qemu_mtree_free(&m);
	if (r == -ENOMEM) {
		fprintf(o->err, "busmap: out of memory\n");
		return 2;
	}
	free(bars);
	if (r) {
		fprintf(o->err, "%s:%u: busmap's final map differs from QEMU's: %s\n", o->mtree,
		        err.line, err.message);
		return 1;
	}
	if (o->verbose)
		fprintf(o->out, "%s: the final map matches QEMU's\n", o->mtree);
	return 0;
}

static void summary(struct trace_run *s)
{
	const struct qemu_replay_result *res = qemu_replay_result(s->rep);
	fprintf(s->o->out,
	        "%s: %zu configuration writes and %zu reads replayed (%zu reads checked); %zu "
	        "QEMU map events, %zu busmap map events, %zu diverging writes\n",
	        s->o->log, res->writes, res->reads, res->reads_checked, res->qemu_events,
	        res->busmap_events, res->divergences);
}

int qemu_cmd_run(const struct qemu_cmd_options *o)
{
	struct trace_run s = {.o = o};
	int status = read_trace(&s);
	if (!status)
		status = start_replay(&s);
	if (!status)
		status = replay(&s);
	if (!status) {
		status = verdict(&s);
		if (o->mtree) {
			int m = compare_mtree(&s);
			status = m > status ? m : status;
		}
		if (o->verbose)
			summary(&s);
		if (!o->verbose && o->map != MAP_NONE &&
		    map_print(o->out, &s.w, o->map, 0, 0, NULL))
			status = 2;
	}
	qemu_replay_free(s.rep);
	qemu_trace_free(s.trace);
	return status;
}
