/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A reference model of the flat-view rules, for tests and fuzz targets.
 *
 * The model keeps its own copy of a region tree in numbered slots and computes, by applying
 * space.h's rules literally, what each space shows: the flat view, which region and offset
 * an address reaches, the conflicts between exclusive regions, and which error each
 * region.h call must return in the model's state. It is naive on purpose (linear scans, one
 * recursive descent per address) so that it shares neither code nor cleverness with the
 * incremental renderer it checks.
 *
 * Slots 0 and 1 are, by convention of the callers, the roots of two spaces; the model
 * itself treats every parentless container alike.
 */
#ifndef BUSMAP_TEST_MODEL_H
#define BUSMAP_TEST_MODEL_H

#include <busmap/busmap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MODEL_MAXN 64

/* An error set: bit e stands for -e. 0 means the call must succeed. */
#define E_BIT(e) (UINT64_C(1) << (e))

struct u64vec {
	uint64_t *v;
	size_t n, cap;
};

struct rvec {
	struct bm_flat_range *v;
	size_t n, cap;
};

struct cvec {
	struct bm_conflict *v;
	size_t n, cap;
};

struct mnode {
	bool live;
	enum bm_region_kind kind;
	bm_region *r;
	char name[16];
	uintptr_t id;    /* opaque of io regions, content key of ram regions; grows with creation */
	uint64_t size;   /* BM_SIZE_ALL stands for 2^64 */
	int parent;      /* slot of the container, -1 if none */
	uint64_t offset; /* in the parent */
	int priority;
	bool enabled;
	bool exclusive;
	uint64_t seq; /* of the latest add or move: among equal priorities the highest wins */
	int target;   /* alias */
	uint64_t alias_offset;
	unsigned valid_sizes, impl_sizes; /* io, normalised as region.h says */
	uint8_t *host;                    /* ram: the buffer, valid for host_cap bytes */
	uint64_t host_cap;
	/* Rebuilt by model_build_kids: enabled children in the order the rules try them. */
	int kids[MODEL_MAXN];
	int nkids;
};

struct model {
	struct mnode m[MODEL_MAXN];
	int maxn; /* slots in use are below this */
	uint64_t seq;
	uintptr_t next_id;
	struct u64vec bps; /* scratch */
	struct cvec raw;   /* scratch */
};

static inline uint64_t model_last_rel(uint64_t size)
{
	return size == BM_SIZE_ALL ? UINT64_MAX : size - 1;
}

/* Whether [off, off + size) stays below 2^64 (region.h's -ERANGE condition). */
static inline bool model_fits(uint64_t off, uint64_t size)
{
	return model_last_rel(size) <= UINT64_MAX - off;
}

/* What the model says byte off of an io or ram region holds: a function of its id, so a
 * byte read anywhere names the region and offset it came from. */
uint8_t model_io_byte(uintptr_t id, uint64_t off);
uint8_t model_ram_byte(uintptr_t id, uint64_t off);

/* Growable vectors; they abort when memory runs out, which no test input can cause. */
void u64_push(struct u64vec *b, uint64_t x);
void rvec_push(struct rvec *a, const struct bm_flat_range *r);
void rvec_copy(struct rvec *dst, const struct rvec *src);
void cvec_push(struct cvec *a, const struct bm_conflict *c);
bool range_eq(const struct bm_flat_range *a, const struct bm_flat_range *b);
bool conflict_eq(const struct bm_conflict *a, const struct bm_conflict *b);
/* Index of the range of sorted, disjoint a that contains x, or -1. */
long rvec_find(const struct rvec *a, uint64_t x);
bool rvec_has(const struct rvec *a, const struct bm_flat_range *r);

/* Releases the model's scratch memory (not the ram buffers, which belong to the caller). */
void model_release(struct model *M);

/* Fresh live slot n: io sizes default to all valid, all implemented. */
void model_init_node(struct model *M, int n, enum bm_region_kind kind, uint64_t size);
/* Slot n becomes a space's root container (2^64 bytes, enabled, no parent). */
void model_init_root(struct model *M, int n, bm_region *r, const char *name);
/* The slot of a live region, or -1. */
int model_slot(const struct model *M, const bm_region *r);
const char *model_rname(const struct model *M, const bm_region *r);

bool model_is_container(const struct model *M, int n);
/* Whether b can be reached from a through children and alias targets (a itself included):
 * adding a into b would then make a loop. */
bool model_reaches(const struct model *M, int a, int b);
/* Whether a live alias targets n. */
bool model_targeted(const struct model *M, int n);

/* Errors each call must return in the model's current state (see region.h). */
uint64_t model_add_errs(const struct model *M, int p, int c, uint64_t off);
uint64_t model_del_errs(const struct model *M, int n);
uint64_t model_move_errs(const struct model *M, int n, uint64_t off);
/* *maybe gets errors either answer of which is acceptable. */
uint64_t model_resize_errs(const struct model *M, int n, uint64_t size, uint64_t *maybe);
uint64_t model_alias_offset_errs(const struct model *M, int n);
uint64_t model_destroy_errs(const struct model *M, int n);

/* Applying a call that succeeded. */
void model_add(struct model *M, int p, int c, uint64_t off, int prio);
void model_del(struct model *M, int n);
void model_move(struct model *M, int n, uint64_t off);
void model_destroy(struct model *M, int n);

/* Must run after any change and before the lookups below. */
void model_build_kids(struct model *M);

/* Which terminal region (slot, offset) region n shows at x, relative to n. */
bool model_lookup(const struct model *M, int n, uint64_t x, int *node, uint64_t *off);

/*
 * The flat view of the space rooted at slot s: its assigned ranges, merged where the
 * region, the offsets and the conflict flag continue (the simplification QEMU applies).
 * ids, if not NULL, gets per range the io opaque (0 for ram). conflicts, if not NULL, gets
 * the space's conflicts as bm_space_conflicts reports them.
 */
void model_view(struct model *M, int s, struct rvec *out, struct u64vec *ids,
                struct cvec *conflicts);

/*
 * The conflicts of the space rooted at s: inside every container, wherever subregions of
 * it show something at the same address and two of those things belong to different
 * exclusive regions (an exclusive region owns whatever shows through it, the outermost one
 * owning it when they nest), the highest-ranked exclusive one hides each other. This holds
 * in containers that are themselves hidden, and through every alias that shows them. Per
 * pair, touching ranges join; the list is in address order (start, last, then the
 * regions' creation order).
 */
void model_conflicts(struct model *M, int s, struct cvec *out);
/* Whether x lies in one of the conflicts of sorted list c. */
bool model_in_conflict(const struct cvec *c, uint64_t x);

void model_dump(const struct model *M, FILE *f);
void model_print_rvec(const struct model *M, FILE *f, const char *title, const struct rvec *a);
void model_print_cvec(const struct model *M, FILE *f, const char *title, const struct cvec *a);

/*
 * Applies a listener event to copy, the view as rebuilt from events alone. Writes the
 * first inconsistency into bad (if bad is still empty): a removal of a range the copy does
 * not hold, an addition overlapping one it does.
 */
void model_listener_apply(const struct model *M, struct rvec *copy,
                          const struct bm_flat_range *removed, size_t nremoved,
                          const struct bm_flat_range *added, size_t nadded, char *bad,
                          size_t badlen, const char *prefix);

#endif
