/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Conflicts report, from a run's history. Steps are grouped while their set of overlaps
 * stays the same, so a long trace with one transient overlap reads as three lines.
 */
#include "conflicts.h"

#include <inttypes.h>
#include <string.h>

static bool same_conflicts(const struct history *h, const struct hist_step *a,
                           const struct hist_step *b)
{
	return a->nconf == b->nconf && hist_same_conflicts(h, a->conf0, b->conf0, a->nconf);
}

static void print_span(FILE *out, const struct history *h, size_t first, size_t last)
{
	const struct hist_step *a = &h->steps[first], *z = &h->steps[last];
	if (first == last)
		fprintf(out, "step %zu (line %u)", first, a->line);
	else
		fprintf(out, "steps %zu-%zu (lines %u-%u)", first, last, a->line, z->line);
	if (first == last && a->label)
		fprintf(out, " \"%s\"", a->label);
	fputs(":", out);
}

static void print_group(FILE *out, const struct history *h, size_t first, size_t last)
{
	const struct hist_step *s = &h->steps[first];
	print_span(out, h, first, last);
	if (!s->nconf) {
		fputs(" no overlap\n", out);
		return;
	}
	fputc('\n', out);
	for (size_t i = 0; i < s->nconf; i++) {
		const struct hist_conflict *c = &h->conflicts[s->conf0 + i];
		char w[80], l[80];
		history_bar_title(h, c->winner, w, sizeof(w));
		history_bar_title(h, c->loser, l, sizeof(l));
		fprintf(out, "    %s hides %s over %s 0x%" PRIx64 "-0x%" PRIx64 "\n", w, l,
		        c->io ? "io" : "mmio", c->start, c->last);
	}
}

static size_t print_steps(FILE *out, const struct history *h)
{
	size_t with = 0;
	for (size_t i = 0; i < h->nsteps;) {
		size_t j = i;
		while (j + 1 < h->nsteps && same_conflicts(h, &h->steps[i], &h->steps[j + 1]))
			j++;
		print_group(out, h, i, j);
		if (h->steps[i].nconf)
			with += j - i + 1;
		i = j + 1;
	}
	return with;
}

static void print_accesses(FILE *out, const struct history *h)
{
	if (!h->naccesses)
		return;
	fputs("\nAccesses that landed in an overlap:\n", out);
	for (size_t i = 0; i < h->naccesses; i++) {
		const struct hist_access *a = &h->accesses[i];
		char w[80] = "nothing", l[80] = "";
		if (a->winner != HIST_NONE)
			history_bar_title(h, a->winner, w, sizeof(w));
		if (a->hidden != HIST_NONE)
			history_bar_title(h, a->hidden, l, sizeof(l));
		fprintf(out,
		        "    step %zu, line %u: %u-byte %s at %s 0x%" PRIx64
		        " answered by %s%s%s\n",
		        a->step, a->line, a->width, a->write ? "write" : "read",
		        a->io ? "port" : "address", a->addr, w, l[0] ? ", hiding " : "", l);
	}
	if (h->dropped_accesses)
		fprintf(out, "    ... and %zu more\n", h->dropped_accesses);
}

void conflicts_report(FILE *out, const struct history *h)
{
	fputs("Overlaps between BARs, step by step:\n", out);
	size_t with = print_steps(out, h);
	print_accesses(out, h);
	fprintf(out, "\n%zu of %zu steps had an overlap; %zu access%s landed in one.\n", with,
	        h->nsteps, h->naccesses + h->dropped_accesses,
	        h->naccesses + h->dropped_accesses == 1 ? "" : "es");
	if (h->truncated)
		fputs("(the run was too long to record every step: later steps are missing)\n",
		      out);
}
