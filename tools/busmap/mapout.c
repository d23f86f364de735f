/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Map output. The text formats are the core's own dumps, so they diff cleanly against
 * QEMU's monitor; the JSON is built here from the flat view because programs reading it want each
 * range's device and BAR, which the core's region tree does not know.
 */
#include "mapout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int map_format_parse(const char *s)
{
	if (strcmp(s, "mtree") == 0)
		return MAP_MTREE;
	if (strcmp(s, "flat") == 0)
		return MAP_FLAT;
	if (strcmp(s, "json") == 0)
		return MAP_JSON;
	return -1;
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_hex(FILE *out, const char *key, uint64_t v)
{
	fprintf(out, "\"%s\": \"0x%016" PRIx64 "\"", key, v);
}

static void json_opt_string(FILE *out, const char *key, const char *s)
{
	fprintf(out, "\"%s\": ", key);
	if (s && *s)
		json_string(out, s);
	else
		fputs("null", out);
}

static const char *bar_word(unsigned index, char *buf, size_t size)
{
	if (index == BM_PCI_ROM)
		snprintf(buf, size, "rom");
	else
		snprintf(buf, size, "bar%u", index);
	return buf;
}

static void json_device(FILE *out, const struct world *w, const struct world_bar *b)
{
	char word[8];
	json_opt_string(out, "device", b ? bm_pci_func_name(b->func) : NULL);
	fputs(", ", out);
	json_opt_string(out, "device_name", b && w->label ? w->label(w->label_arg, b->func) : NULL);
	fputs(", ", out);
	json_opt_string(out, "bar", b ? bar_word(b->index, word, sizeof(word)) : NULL);
}

struct json_flat {
	FILE *out;
	const struct world *w;
	const struct world_bar *bars;
	size_t n;
	bool first;
};

static int json_range(void *arg, uint64_t start, uint64_t last, const struct world_hit *h)
{
	struct json_flat *j = arg;
	fputs(j->first ? "{" : ", {", j->out);
	j->first = false;
	json_hex(j->out, "start", start);
	fputs(", ", j->out);
	json_hex(j->out, "end", last);
	/* A BAR's priority is what decides between overlapping BARs, not its contents'. */
	const bm_region *prio = h->bar >= 0 ? j->bars[h->bar].region : h->region;
	fprintf(j->out, ", \"priority\": %d, \"region\": ", bm_region_priority(prio));
	json_string(j->out, bm_region_name(h->region));
	fputs(", ", j->out);
	json_device(j->out, j->w, h->bar >= 0 ? &j->bars[h->bar] : NULL);
	fputs(", ", j->out);
	json_hex(j->out, "offset", h->bar >= 0 ? h->bar_offset : h->region_offset);
	fprintf(j->out, ", \"conflict\": %s}", h->conflict ? "true" : "false");
	return 0;
}

static void json_space(FILE *out, const struct world *w, bm_space *s, const struct world_bar *bars,
                       size_t n)
{
	fputs("{\"name\": ", out);
	json_string(out, bm_space_name(s));
	fputs(", \"flat\": [", out);
	struct json_flat j = {out, w, bars, n, true};
	/* Each space in its own addresses: the port window stays in memory addresses here. */
	struct world mw = *w;
	mw.io_in_mem = false;
	world_walk(&mw, s == w->io, 0, UINT64_MAX, bars, n, json_range, &j);
	fputs("]}", out);
}

static const char *type_word(const struct world_bar *b)
{
	if (b->index == BM_PCI_ROM)
		return "rom";
	switch (b->type) {
	case BM_PCI_BAR_IO:
		return "io";
	case BM_PCI_BAR_MEM64:
		return "mem64";
	default:
		return "mem32";
	}
}

static void json_bars(FILE *out, const struct world *w, const struct world_bar *bars, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct world_bar *b = &bars[i];
		fputs(i ? ", {\"name\": " : "{\"name\": ", out);
		json_string(out, b->name);
		fputs(", ", out);
		json_device(out, w, b);
		fprintf(out, ", \"type\": \"%s\", \"prefetchable\": %s, ", type_word(b),
		        b->prefetchable ? "true" : "false");
		json_hex(out, "size", b->size);
		fprintf(out, ", \"mapped\": %s, ", b->mapped ? "true" : "false");
		if (b->mapped)
			json_hex(out, "address", b->addr);
		else
			fputs("\"address\": null", out);
		fputs(", ", out);
		json_hex(out, "register", b->reg_addr);
		fputc('}', out);
	}
}

static int json_conflicts(FILE *out, const struct world *w, const struct world_bar *bars, size_t n)
{
	struct world_conflict *c;
	size_t nc;
	if (world_conflicts(w, bars, n, &c, &nc))
		return -ENOMEM;
	for (size_t i = 0; i < nc; i++) {
		fputs(i ? ", {\"winner\": " : "{\"winner\": ", out);
		json_string(out, bars[c[i].winner].name);
		fputs(", \"loser\": ", out);
		json_string(out, bars[c[i].loser].name);
		fprintf(out, ", \"space\": \"%s\", ", c[i].io ? "io" : "mmio");
		json_hex(out, "start", c[i].start);
		fputs(", ", out);
		json_hex(out, "end", c[i].last);
		fputc('}', out);
	}
	free(c);
	return 0;
}

static int print_json(FILE *out, const struct world *w, size_t step, unsigned line,
                      const char *label)
{
	struct world_bar *bars;
	size_t n;
	if (world_bars(w, &bars, &n))
		return -ENOMEM;
	fprintf(out, "{\"step\": %zu, \"line\": %u, ", step, line);
	json_opt_string(out, "label", label);
	fputs(", \"spaces\": [", out);
	json_space(out, w, w->mem, bars, n);
	if (w->io) {
		fputs(", ", out);
		json_space(out, w, w->io, bars, n);
	}
	fputs("], \"bars\": [", out);
	json_bars(out, w, bars, n);
	fputs("], \"conflicts\": [", out);
	int err = json_conflicts(out, w, bars, n);
	fputs("]}\n", out);
	free(bars);
	return err;
}

int map_print(FILE *out, const struct world *w, enum map_format f, size_t step, unsigned line,
              const char *label)
{
	int err = 0;
	if (f == MAP_JSON)
		err = print_json(out, w, step, line, label);
	else if (f != MAP_NONE) {
		if (label)
			fprintf(out, "-- map after step %zu (line %u): %s\n", step, line, label);
		int (*dump)(bm_space *, FILE *) =
		    f == MAP_MTREE ? bm_space_dump_mtree : bm_space_dump_flat;
		err = dump(w->mem, out);
		if (!err && w->io)
			err = dump(w->io, out);
	}
	if (!err && ferror(out))
		err = -EIO;
	return err;
}
