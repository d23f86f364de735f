/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Instruction counts: the hardware counter through perf_event_open when the kernel and
 * the machine offer one, otherwise callgrind's client requests: the runner re-runs itself
 * under valgrind in --count-mode, where each measured loop dumps a count under a label,
 * and reads the dumps back (icount_cg_run).
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifdef HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

int icount_perf_open(void)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_HARDWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_HW_INSTRUCTIONS;
	attr.disabled = 1;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	/* This thread only, on whatever CPU it runs. */
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

void icount_perf_start(int fd)
{
	ioctl(fd, PERF_EVENT_IOC_RESET, 0);
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

uint64_t icount_perf_stop(int fd)
{
	uint64_t count = 0;

	ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
		return 0;
	return count;
}

void icount_perf_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

#ifdef HAVE_CALLGRIND_H
bool icount_callgrind_built(void)
{
	return true;
}

bool icount_under_valgrind(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

/* The child runs with --instr-atstart=no so that building maps goes at valgrind's
 * uninstrumented speed: instrumentation is on only around the measured loops. */
void icount_cg_begin(void)
{
	CALLGRIND_START_INSTRUMENTATION;
	CALLGRIND_ZERO_STATS;
	CALLGRIND_TOGGLE_COLLECT;
}

void icount_cg_end(const char *label)
{
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT(label);
	CALLGRIND_STOP_INSTRUMENTATION;
}
#else
bool icount_callgrind_built(void)
{
	return false;
}

bool icount_under_valgrind(void)
{
	return false;
}

void icount_cg_begin(void)
{
}

void icount_cg_end(const char *label)
{
	(void)label;
}
#endif

/* ---- running the callgrind child and reading its dumps ---- */

struct cg_run {
	char dir[128];
	const char *name;
	bool own_thread; /* count only the thread that starts each count */
	void (*attach)(const char *label, double total);
};

static void cg_read_dump(const struct cg_run *run, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], lbl[sizeof(line)] = "";
	double total = NAN;
	const char *trigger = "desc: Trigger: Client Request: ";

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, trigger, strlen(trigger)))
			snprintf(lbl, sizeof(lbl), "%s", line + strlen(trigger));
		else if (!strncmp(line, "summary: ", 9) || !strncmp(line, "totals: ", 8))
			total = strtod(strchr(line, ' ') + 1, NULL);
	}
	fclose(f);
	if (lbl[0] && !isnan(total))
		run->attach(lbl, total);
}

/* With separate threads, callgrind names a dump "cg.out.N-TT", TT the thread (01: main). */
static bool cg_counted(const struct cg_run *run, const char *file)
{
	size_t len = strlen(file);

	if (strncmp(file, "cg.out.", 7))
		return false;
	return !run->own_thread || (len > 3 && !strcmp(file + len - 3, "-01"));
}

/* Reads the dumps, and removes them and the directory (kept when keep is set). */
static int cg_collect(const struct cg_run *run, bool keep)
{
	DIR *d = opendir(run->dir);
	struct dirent *e;
	char path[PATH_MAX];
	int dumps = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", run->dir, e->d_name);
		if (cg_counted(run, e->d_name)) {
			cg_read_dump(run, path);
			dumps++;
		}
		if (!keep)
			unlink(path);
	}
	closedir(d);
	if (!keep)
		rmdir(run->dir);
	return dumps;
}

/* Runs argv (argv[0] looked up in PATH) with stdout on /dev/null. Returns its exit status
 * (256 if it died of a signal), or -errno when it could not be started. */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return -err;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 256;
}

static int cg_child(const struct cg_run *run, const char *exe)
{
	char out[PATH_MAX + 32], log[PATH_MAX + 32], path[PATH_MAX];
	char *argv[] = {"valgrind",
	                "--tool=callgrind",
	                "--instr-atstart=no",
	                "--collect-atstart=no",
	                out,
	                log,
	                run->own_thread ? "--separate-threads=yes" : "--separate-threads=no",
	                path,
	                "--count-mode",
	                NULL};

	snprintf(out, sizeof(out), "--callgrind-out-file=%s/cg.out", run->dir);
	snprintf(log, sizeof(log), "--log-file=%s/valgrind.log", run->dir);
	snprintf(path, sizeof(path), "%s", exe);
	return run_quiet(argv);
}

/* valgrind 3.19 cannot read clang's DWARF 5, and counting needs no debug info: retry on a
 * copy without it. */
static int cg_child_stripped(const struct cg_run *run, const char *self)
{
	char copy[PATH_MAX + 32], src[PATH_MAX];
	char *argv[] = {"objcopy", "--strip-debug", src, copy, NULL};

	snprintf(src, sizeof(src), "%s", self);
	snprintf(copy, sizeof(copy), "%s/%s", run->dir, run->name);
	if (run_quiet(argv))
		return 1;
	return cg_child(run, copy);
}

static bool log_mentions(const struct cg_run *run, const char *what)
{
	char path[PATH_MAX], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/valgrind.log", run->dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

const char *icount_cg_run(const char *name, bool own_thread,
                          void (*attach)(const char *label, double total))
{
	static char note[PATH_MAX];
	struct cg_run run = {.name = name, .own_thread = own_thread, .attach = attach};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int rc;

	snprintf(run.dir, sizeof(run.dir), "/tmp/%s.XXXXXX", name);
	if (n < 0 || !mkdtemp(run.dir))
		return "cannot set up the callgrind run";
	self[n] = '\0';
	rc = cg_child(&run, self);
	if (rc > 0 && log_mentions(&run, "debuginfo reader"))
		rc = cg_child_stripped(&run, self);
	if (rc == -ENOENT) {
		cg_collect(&run, false);
		return "valgrind not found";
	}
	if (rc) {
		snprintf(note, sizeof(note), "valgrind --tool=callgrind failed (log kept in %s)",
		         run.dir);
		cg_collect(&run, true);
		return note;
	}
	if (cg_collect(&run, false) == 0)
		return "callgrind wrote no dumps";
	return NULL;
}
