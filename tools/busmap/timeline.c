/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Timeline SVG. Geometry first (columns for steps, a compressed address axis per panel),
 * then one group per BAR (its lane) with a rectangle for each run of steps during which it
 * stayed at one address, then the overlaps on top, then a legend naming every lane.
 */
#include "timeline_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
    "#9c755f", "#bab0ac", "#1f77b4", "#17becf", "#8c564b", "#bcbd22",
};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

/* ---- text ---- */

static void xml_text(FILE *out, const char *s, size_t max)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++, n++) {
		switch (*p) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
		}
	}
	if (s[n])
		fputs("...", out);
}

/* ---- drawing ---- */

static void draw_axis(struct timeline *t, const struct panel *p)
{
	FILE *o = t->out;
	fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n", 8.0, p->y - 8,
	        p->title);
	fprintf(o,
	        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
	        "stroke=\"#999\"/>\n",
	        LEFT, p->y, t->width, p->h);
	double last_label = -100;
	for (size_t i = 0; i < p->nseg; i++) {
		const struct segment *s = &p->seg[i];
		if (!s->used) {
			fprintf(o,
			        "<rect class=\"gap\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			        "height=\"%.1f\" "
			        "fill=\"#e8e8e8\"><title>0x%" PRIx64 "-0x%" PRIx64
			        " not used (squeezed)</title></rect>\n",
			        LEFT, s->y, t->width, s->h, s->lo, s->hi);
			continue;
		}
		fprintf(o,
		        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
		        LEFT, s->y, LEFT + t->width, s->y);
		if (s->y - last_label >= 11.0) {
			fprintf(o,
			        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
			        "font-size=\"10\">0x%" PRIx64 "</text>\n",
			        LEFT - 4, s->y + 9, s->lo);
			last_label = s->y;
		}
	}
	if (!p->nseg)
		fprintf(o,
		        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#666\">no BAR of this kind was "
		        "decoded</text>\n",
		        LEFT + 8, p->y + 18);
	if (p->cut)
		fprintf(o,
		        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#a00\">(address axis cut at %d "
		        "pieces)</text>\n",
		        LEFT + 8, p->y + p->h + 14, MAX_SEGMENTS);
}

/* The address BAR b has in column c, if it is placed there. */
static bool placed(const struct history *h, const struct column *c, uint32_t b, uint64_t *addr)
{
	const struct hist_step *s = &h->steps[c->step];
	size_t lo = 0, hi = s->nplace;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->places[s->place0 + mid].bar < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nplace && h->places[s->place0 + lo].bar == b) {
		*addr = h->places[s->place0 + lo].addr;
		return true;
	}
	return false;
}

static void step_span(FILE *o, const struct history *h, const struct column *a,
                      const struct column *z)
{
	if (a->step == z->last)
		fprintf(o, "step %zu", a->step);
	else
		fprintf(o, "steps %zu-%zu", a->step, z->last);
	(void)h;
}

/* A BAR's rectangle over columns c0..c1 (labels false) or its name on it (labels true). */
static void draw_run(struct timeline *t, const struct panel *p, uint32_t b, size_t c0, size_t c1,
                     uint64_t addr, bool labels)
{
	FILE *o = t->out;
	const struct hist_bar *bar = &t->h->bars[b];
	uint64_t last = addr + (bar->size - 1);
	if (last < addr)
		last = UINT64_MAX;
	double y0 = timeline_y(p, addr, false), y1 = timeline_y(p, last, true);
	if (y0 < 0 || y1 < 0)
		return;
	const struct column *a = &t->col[c0], *z = &t->col[c1];
	double x = a->x + 0.5, w = z->x + z->w - a->x - 1.0;
	if (labels) {
		if (w < 70 || y1 - y0 < 11)
			return;
		char text[72];
		snprintf(text, sizeof(text), "%s%s%s", bar->name, bar->label[0] ? " " : "",
		         bar->label);
		fprintf(o, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y0 + 10);
		xml_text(o, text, w > 40 ? (size_t)(w / 6.5) - 3 : 1);
		fputs("</text>\n", o);
		return;
	}
	fprintf(o,
	        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
	        "stroke=\"#333\" stroke-width=\"0.5\"><title>",
	        x, y0, w, y1 - y0 < 1 ? 1 : y1 - y0, palette[b % NPALETTE]);
	xml_text(o, bar->name, 64);
	if (bar->label[0]) {
		fputs(" (", o);
		xml_text(o, bar->label, 64);
		fputc(')', o);
	}
	fprintf(o, " at 0x%" PRIx64 "-0x%" PRIx64 ", ", addr, last);
	step_span(o, t->h, a, z);
	fputs("</title></rect>\n", o);
}

/* Every run of columns during which BAR b stayed at one address. */
static void each_run(struct timeline *t, const struct panel *p, uint32_t b, bool labels)
{
	for (size_t c = 0; c < t->ncol;) {
		uint64_t addr, a2;
		if (!placed(t->h, &t->col[c], b, &addr)) {
			c++;
			continue;
		}
		size_t e = c;
		while (e + 1 < t->ncol && placed(t->h, &t->col[e + 1], b, &a2) && a2 == addr)
			e++;
		draw_run(t, p, b, c, e, addr, labels);
		c = e + 1;
	}
}

static void draw_lane(struct timeline *t, const struct panel *p, uint32_t b)
{
	FILE *o = t->out;
	fprintf(o, "<g class=\"lane\" id=\"lane-%u\" data-bar=\"", b);
	xml_text(o, t->h->bars[b].name, 64);
	fputs("\">\n", o);
	each_run(t, p, b, false);
	fputs("</g>\n", o);
}

static bool same_conflict(const struct hist_conflict *a, const struct hist_conflict *b)
{
	return a->winner == b->winner && a->loser == b->loser && a->start == b->start &&
	       a->last == b->last && a->io == b->io;
}

static bool column_has(const struct history *h, const struct column *c,
                       const struct hist_conflict *x)
{
	const struct hist_step *s = &h->steps[c->step];
	for (size_t i = 0; i < s->nconf; i++)
		if (same_conflict(&h->conflicts[s->conf0 + i], x))
			return true;
	return false;
}

static void draw_overlap(struct timeline *t, const struct panel *p, const struct hist_conflict *c,
                         size_t c0, size_t c1)
{
	FILE *o = t->out;
	double y0 = timeline_y(p, c->start, false), y1 = timeline_y(p, c->last, true);
	if (y0 < 0 || y1 < 0)
		return;
	const struct column *a = &t->col[c0], *z = &t->col[c1];
	double x = a->x + 0.5, w = z->x + z->w - a->x - 1.0, hgt = y1 - y0 < 1 ? 1 : y1 - y0;
	/* The winner's colour shows through the stripes: it is the one that answers there. */
	fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x,
	        y0, w, hgt, palette[c->winner % NPALETTE]);
	fprintf(o,
	        "<rect class=\"overlap\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
	        "fill=\"url(#hatch)\" stroke=\"#d00000\" stroke-width=\"1.5\"><title>",
	        x, y0, w, hgt);
	char win[80], lose[80];
	history_bar_title(t->h, c->winner, win, sizeof(win));
	history_bar_title(t->h, c->loser, lose, sizeof(lose));
	xml_text(o, win, 80);
	fputs(" hides ", o);
	xml_text(o, lose, 80);
	fprintf(o, " over 0x%" PRIx64 "-0x%" PRIx64 ", ", c->start, c->last);
	step_span(o, t->h, a, z);
	fputs("</title></rect>\n", o);
}

/* Each overlap once per run of columns in which it lasts. */
static void draw_overlaps(struct timeline *t, const struct panel *p)
{
	const struct history *h = t->h;
	fputs("<g class=\"overlaps\">\n", t->out);
	for (size_t c = 0; c < t->ncol; c++) {
		const struct hist_step *s = &h->steps[t->col[c].step];
		for (size_t i = 0; i < s->nconf; i++) {
			const struct hist_conflict *x = &h->conflicts[s->conf0 + i];
			if (x->io != p->io || (c && column_has(h, &t->col[c - 1], x)))
				continue;
			size_t e = c;
			while (e + 1 < t->ncol && column_has(h, &t->col[e + 1], x))
				e++;
			draw_overlap(t, p, x, c, e);
		}
	}
	fputs("</g>\n", t->out);
}

/* Column separators over the panel's background, under the BARs. */
static void draw_grid(struct timeline *t, const struct panel *p)
{
	fputs("<g class=\"grid\" stroke=\"#e4e4e4\">\n", t->out);
	for (size_t i = 1; i < t->ncol; i++)
		fprintf(t->out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		        t->col[i].x, p->y, t->col[i].x, p->y + p->h);
	fputs("</g>\n", t->out);
}

static void draw_panel(struct timeline *t, const struct panel *p)
{
	fprintf(t->out, "<g class=\"panel\" data-space=\"%s\">\n", p->io ? "io" : "memory");
	draw_axis(t, p);
	draw_grid(t, p);
	for (uint32_t b = 0; b < t->h->nbars; b++)
		if (t->h->bars[b].io == p->io)
			draw_lane(t, p, b);
	draw_overlaps(t, p);
	fputs("<g class=\"names\" font-size=\"10\">\n", t->out);
	for (uint32_t b = 0; b < t->h->nbars; b++)
		if (t->h->bars[b].io == p->io)
			each_run(t, p, b, true);
	fputs("</g>\n</g>\n", t->out);
}

static size_t wide_columns(const struct timeline *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->ncol; i++)
		n += t->col[i].w != THIN_W;
	return n;
}

/* Room below the panels for the step labels. */
static double labels_height(const struct timeline *t)
{
	size_t wide = wide_columns(t);
	return wide <= LIST_LABELS ? 24.0 + 14.0 * (double)wide : LABELS;
}

static void step_label(FILE *o, const struct hist_step *s, size_t max)
{
	fprintf(o, "line %u: ", s->line);
	xml_text(o, s->label ? s->label : "", max);
}

/* Few steps: "N  line L: label" lines under the picture. */
static void list_labels(struct timeline *t, double bottom)
{
	FILE *o = t->out;
	double y = bottom + 24;
	for (size_t i = 0; i < t->ncol; i++) {
		const struct column *c = &t->col[i];
		if (c->w == THIN_W)
			continue;
		fprintf(o, "<text x=\"%.1f\" y=\"%.1f\"><tspan font-weight=\"bold\">%zu</tspan>  ",
		        LEFT, y, c->step);
		step_label(o, &t->h->steps[c->step], 110);
		fputs("</text>\n", o);
		y += 14;
	}
}

/* Many steps: each label written downwards under its column. */
static void column_labels(struct timeline *t, double bottom)
{
	FILE *o = t->out;
	for (size_t i = 0; i < t->ncol; i++) {
		const struct column *c = &t->col[i];
		if (c->w == THIN_W)
			continue;
		double x = c->x + c->w / 2 - 3, y = bottom + 8;
		fprintf(o,
		        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" transform=\"rotate(90 %.1f "
		        "%.1f)\">",
		        x, y, x, y);
		step_label(o, &t->h->steps[c->step], 30);
		fputs("<title>", o);
		step_label(o, &t->h->steps[c->step], 200);
		fputs("</title></text>\n", o);
	}
}

static void draw_steps(struct timeline *t, double bottom)
{
	FILE *o = t->out;
	fputs("<g class=\"steps\" font-size=\"10\">\n", o);
	bool every = wide_columns(t) <= LIST_LABELS;
	for (size_t i = 0; i < t->ncol; i++) {
		const struct column *c = &t->col[i];
		if (c->w == THIN_W) {
			fprintf(
			    o,
			    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"6\" fill=\"#ccc\">"
			    "<title>steps %zu-%zu: nothing changed</title></rect>\n",
			    c->x, TOP - 14, c->w, c->step, c->last);
			continue;
		}
		/* Crowded step numbers: every fifth. */
		if (every || c->step % 5 == 0)
			fprintf(o,
			        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%zu</text>\n",
			        c->x + c->w / 2, TOP - 8, c->step);
	}
	if (every)
		list_labels(t, bottom);
	else
		column_labels(t, bottom);
	fputs("</g>\n", o);
}

static void draw_legend(struct timeline *t, double x)
{
	FILE *o = t->out;
	fprintf(o,
	        "<g class=\"legend\" font-size=\"11\">\n<text x=\"%.1f\" y=\"%.1f\" "
	        "font-weight=\"bold\">lanes (one per BAR)</text>\n",
	        x, TOP);
	double y = TOP + 8;
	for (uint32_t b = 0; b < t->h->nbars; b++, y += 16) {
		const struct hist_bar *bar = &t->h->bars[b];
		fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
		        x, y, palette[b % NPALETTE]);
		fprintf(o, "<text x=\"%.1f\" y=\"%.1f\">", x + 18, y + 10);
		xml_text(o, bar->name, 24);
		fprintf(o, " %s 0x%" PRIx64 " ", bar->io ? "io " : "mem", bar->size);
		xml_text(o, bar->label, 24);
		fputs("</text>\n", o);
	}
	fprintf(o,
	        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"url(#hatch)\" "
	        "stroke=\"#d00000\"/>\n<text x=\"%.1f\" y=\"%.1f\">overlap: the newer BAR hides "
	        "the older</text>\n",
	        x, y + 6, x + 18, y + 16);
	fprintf(o,
	        "<rect x=\"%.1f\" y=\"%.1f\" width=\"5\" height=\"12\" fill=\"#ccc\"/>\n<text "
	        "x=\"%.1f\" y=\"%.1f\">narrow column: steps that changed nothing</text>\n",
	        x + 3, y + 24, x + 18, y + 34);
	fputs("</g>\n", o);
}

static void header(struct timeline *t, double w, double hgt, const char *title)
{
	FILE *o = t->out;
	fprintf(o,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	        "viewBox=\"0 0 %.0f %.0f\" font-family=\"monospace\" font-size=\"11\">\n",
	        w, hgt, w, hgt);
	fputs("<title>busmap timeline: ", o);
	xml_text(o, title, 200);
	fputs("</title>\n<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
	      "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
	      "<rect width=\"2\" height=\"6\" fill=\"#d00000\"/></pattern></defs>\n",
	      o);
	fprintf(o, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", w, hgt);
	fprintf(o,
	        "<text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\">busmap timeline: ");
	xml_text(o, title, 100);
	fprintf(o,
	        "</text>\n<text x=\"8\" y=\"38\" fill=\"#444\">%zu steps, %zu BARs; step "
	        "numbers above, what each step did below; address grows downwards</text>\n",
	        t->h->nsteps, t->h->nbars);
	if (t->cols_cut || t->h->truncated)
		fprintf(o,
		        "<text x=\"8\" y=\"52\" fill=\"#a00\">only the first %zu columns are drawn"
		        "</text>\n",
		        t->ncol);
}

int timeline_svg(FILE *out, const struct history *h, const char *title)
{
	struct timeline t = {.out = out, .h = h};
	int err = timeline_columns(&t);
	if (!err)
		err = timeline_layout(&t);
	if (!err) {
		double bottom = TOP + 20;
		for (size_t i = 0; i < t.npanel; i++)
			bottom = t.panel[i].y + t.panel[i].h;
		double legend_h = TOP + 16.0 * (double)h->nbars + 60;
		double below = bottom + labels_height(&t);
		double hgt = below > legend_h ? below : legend_h;
		double w = LEFT + t.width + 40 + LEGEND_W;
		header(&t, w, hgt, title);
		for (size_t i = 0; i < t.npanel; i++)
			draw_panel(&t, &t.panel[i]);
		draw_steps(&t, bottom);
		draw_legend(&t, LEFT + t.width + 40);
		fputs("</svg>\n", out);
	}
	for (size_t i = 0; i < t.npanel; i++)
		free(t.panel[i].seg);
	free(t.col);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}
