/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dumps in QEMU's monitor formats, so that a map can be diffed against "info mtree" and
 * "info mtree -f" output, and the same data as JSON for tools.
 */
#include "internal.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/* QEMU names an alias by what it finally shows. */
static const char *type_name(const bm_region *r)
{
	while (r->kind == BM_REGION_ALIAS)
		r = r->target;
	return r->kind == BM_REGION_RAM ? "ram" : "i/o";
}

static const char *kind_name(const bm_region *r)
{
	static const char *const names[] = {"io", "ram", "container", "alias"};
	return names[r->kind];
}

/* Subregions in QEMU's print order: by address, then higher priority, then newest. */
static int child_cmp(const void *x, const void *y)
{
	const bm_region *a = *(const bm_region *const *)x, *b = *(const bm_region *const *)y;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->seq > b->seq ? -1 : a->seq < b->seq;
}

static int sorted_children(const bm_region *r, bm_region ***out, size_t *n)
{
	*n = r->children.count;
	*out = NULL;
	if (!*n)
		return 0;
	bm_region **v = malloc(*n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t i = 0;
	for (struct bm_itree_node *c = bm_itree_first(&r->children); c; c = bm_itree_next(c))
		v[i++] = bm_region_of_node(c);
	qsort(v, *n, sizeof(*v), child_cmp);
	*out = v;
	return 0;
}

/* Alias targets met while printing, each printed once afterwards as QEMU does. */
struct targets {
	const bm_region **v;
	size_t n, cap;
};

static int note_target(struct targets *t, const bm_region *r)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i] == r)
			return 0;
	int err = bm_grow(&t->v, &t->cap, t->n, sizeof(*t->v));
	if (err)
		return err;
	t->v[t->n++] = r;
	return 0;
}

static int mtree_region(FILE *f, const bm_region *r, uint64_t base, int depth, struct targets *t)
{
	uint64_t start = base + r->offset;
	fprintf(f, "%*s%016" PRIx64 "-%016" PRIx64 " (prio %d, %s): ", 2 * depth, "", start,
	        start + r->last, r->priority, type_name(r));
	if (r->kind == BM_REGION_ALIAS) {
		fprintf(f, "alias %s @%s %016" PRIx64 "-%016" PRIx64, r->name, r->target->name,
		        r->alias_offset, r->alias_offset + r->last);
		int err = note_target(t, r->target);
		if (err)
			return err;
	} else {
		fputs(r->name, f);
	}
	fputs(r->enabled ? "\n" : " [disabled]\n", f);
	bm_region **kids;
	size_t n;
	int err = sorted_children(r, &kids, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = mtree_region(f, kids[i], start, depth + 1, t);
	free(kids);
	return err;
}

static int stream_status(FILE *f, int err)
{
	if (err)
		return err;
	return ferror(f) ? -EIO : 0;
}

int bm_space_dump_mtree(bm_space *space, FILE *out)
{
	if (!space || !out)
		return -EINVAL;
	struct targets t = {0};
	pthread_mutex_lock(&space->sys->lock);
	fprintf(out, "address-space: %s\n", space->name);
	int err = mtree_region(out, space->root, 0, 1, &t);
	fputc('\n', out);
	for (size_t i = 0; !err && i < t.n; i++) {
		const bm_region *r = t.v[i];
		fprintf(out, "memory-region: %s\n", r->name);
		/* Printed at its own address 0, whatever its offset in a parent. */
		err = mtree_region(out, r, 0 - r->offset, 1, &t);
		fputc('\n', out);
	}
	pthread_mutex_unlock(&space->sys->lock);
	free(t.v);
	return stream_status(out, err);
}

static void flat_line(FILE *f, const struct bm_range *r)
{
	fprintf(f, "  %016" PRIx64 "-%016" PRIx64 " (prio %d, %s): %s", r->start, r->last,
	        r->region->priority, type_name(r->region), r->region->name);
	if (r->offset)
		fprintf(f, " @%016" PRIx64, r->offset);
	fputc('\n', f);
}

int bm_space_dump_flat(bm_space *space, FILE *out)
{
	if (!space || !out)
		return -EINVAL;
	pthread_mutex_lock(&space->sys->lock);
	const struct bm_index *idx = space->view->index;
	fprintf(out, "FlatView #0\n AS \"%s\", root: %s\n Root memory region: %s\n", space->name,
	        space->root->name, space->root->name);
	bool any = false;
	for (const struct bm_range *r = bm_index_lookup(idx, 0); r; r = bm_index_next(idx, r)) {
		if (r->region) {
			flat_line(out, r);
			any = true;
		}
	}
	if (!any)
		fputs("  No rendered FlatView\n", out);
	fputc('\n', out);
	pthread_mutex_unlock(&space->sys->lock);
	return stream_status(out, 0);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void json_hex(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, "\"%s\": \"0x%016" PRIx64 "\"", key, v);
}

static int json_region(FILE *f, const bm_region *r, uint64_t base)
{
	uint64_t start = base + r->offset;
	fputs("{\"name\": ", f);
	json_string(f, r->name);
	fprintf(f, ", \"kind\": \"%s\", ", kind_name(r));
	json_hex(f, "start", start);
	fputs(", ", f);
	json_hex(f, "end", start + r->last);
	fprintf(f, ", \"priority\": %d, \"enabled\": %s, \"exclusive\": %s", r->priority,
	        r->enabled ? "true" : "false", r->exclusive ? "true" : "false");
	if (r->kind == BM_REGION_ALIAS) {
		fputs(", \"alias_of\": ", f);
		json_string(f, r->target->name);
		fputs(", ", f);
		json_hex(f, "alias_offset", r->alias_offset);
	}
	fputs(", \"children\": [", f);
	bm_region **kids;
	size_t n;
	int err = sorted_children(r, &kids, &n);
	for (size_t i = 0; !err && i < n; i++) {
		fputs(i ? ", " : "", f);
		err = json_region(f, kids[i], start);
	}
	free(kids);
	fputs("]}", f);
	return err;
}

static void json_flat(FILE *f, const struct bm_index *idx)
{
	bool first = true;
	for (const struct bm_range *r = bm_index_lookup(idx, 0); r; r = bm_index_next(idx, r)) {
		if (!r->region)
			continue;
		fputs(first ? "\n    {" : ",\n    {", f);
		first = false;
		json_hex(f, "start", r->start);
		fputs(", ", f);
		json_hex(f, "end", r->last);
		fprintf(f,
		        ", \"priority\": %d, \"type\": \"%s\", \"region\": ", r->region->priority,
		        type_name(r->region));
		json_string(f, r->region->name);
		fputs(", ", f);
		json_hex(f, "offset", r->offset);
		fprintf(f, ", \"conflict\": %s}",
		        (r->flags & BM_RANGE_CONFLICT) ? "true" : "false");
	}
	fputs(first ? "]" : "\n  ]", f);
}

static void json_conflicts(FILE *f, const struct bm_conflict_set *c)
{
	for (size_t i = 0; i < c->n; i++) {
		fputs(i ? ",\n    {" : "\n    {", f);
		json_hex(f, "start", c->v[i].start);
		fputs(", ", f);
		json_hex(f, "end", c->v[i].last);
		fputs(", \"winner\": ", f);
		json_string(f, c->v[i].winner->name);
		fputs(", \"loser\": ", f);
		json_string(f, c->v[i].loser->name);
		fputc('}', f);
	}
	fputs(c->n ? "\n  ]" : "]", f);
}

int bm_space_dump_json(bm_space *space, FILE *out)
{
	if (!space || !out)
		return -EINVAL;
	pthread_mutex_lock(&space->sys->lock);
	fputs("{\n  \"space\": ", out);
	json_string(out, space->name);
	fprintf(out, ",\n  \"generation\": %" PRIu64 ",\n  \"tree\": ", space->view->generation);
	int err = json_region(out, space->root, 0);
	fputs(",\n  \"flat\": [", out);
	json_flat(out, space->view->index);
	fputs(",\n  \"conflicts\": [", out);
	json_conflicts(out, &space->conflicts);
	fputs("\n}\n", out);
	pthread_mutex_unlock(&space->sys->lock);
	return stream_status(out, err);
}
