/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the guests believe the machine's PCI map is: the devices of bus 0 they test, each
 * BAR's register as written, and where QEMU's rules say it decodes and since when. A
 * configuration write goes to the machine and into this model; then every address the
 * model knows is read through the machine and compared with what the model says must
 * answer there (the BAR placed last, the ROM or RAM in front of every BAR, or nothing).
 */
#ifndef GUEST_MODEL_H
#define GUEST_MODEL_H

#include "guest.h"

#define MAX_DEVS   4
#define MAX_BARS   12
#define MAX_POINTS 8 /* fingerprints per BAR: one per grid step */
#define MAX_SEEN   48
#define UNMAPPED   (~0ull)

#define GRID_IO   0x20
#define GRID_MEM  0x1000
#define PROBE_IO  0x14 /* read at grid + this: no register there reads with side effects */
#define PROBE_MEM 0x10

struct bar {
	u8 dev, reg;    /* device index; configuration register of the (low) dword */
	u8 io, is64;
	u32 size;       /* bytes, a power of two */
	u32 lo, hi;     /* the registers as the device holds them */
	u64 mapped;     /* decoded address, or UNMAPPED */
	u32 seq;        /* when it was last placed: the latest placed wins an overlap */
	u32 fp[MAX_POINTS]; /* what it answers at each grid step (learned alone) */
	u32 fp_stable;  /* bit i: fp[i] read the same twice */
};

struct dev {
	u32 bdf;
	u16 vendor, device;
	const char *name;
	u16 cmd;
	u8 nbars, bar[6]; /* indexes into model.bars */
};

struct seen {
	u8 io;
	u64 base;
	u32 size;
};

struct model {
	struct dev devs[MAX_DEVS];
	unsigned ndevs;
	struct bar bars[MAX_BARS];
	unsigned nbars;
	u32 clock;
	struct seen seen[MAX_SEEN]; /* every range a BAR decoded since the pattern began */
	unsigned nseen;
	u32 empty_io, empty_mem;    /* what nothing answers */
	int method;                 /* CFG_CF8 or CFG_ECAM */
	/* Where a check failed: the verdict line names the pattern, its step and the write. */
	const char *pattern, *step;
	u32 step_no, verdict;
	u32 last_bdf, last_reg, last_size, last_value;
	u32 rom_fp[16], low_fp[4]; /* the ROM's and low RAM's grid, read before any BAR */
};

/* Finds the devices, sizes their BARs and learns what each answers. 0 or a reason. */
const char *model_init(struct model *m, u32 io_spare, u32 mem_spare);
/* Lists the BARs found, with their sizes and what they answer at their start. */
void model_print(const struct model *m);
/* A configuration write through m->method, mirrored in the model; then model_check. */
void model_write(struct model *m, unsigned dev, u32 reg, unsigned size, u32 value,
                 const char *what);
/* The same write without the check, for a writer whose readers are other vCPUs. */
void model_apply(struct model *m, unsigned dev, u32 reg, unsigned size, u32 value);
/* What must answer at grid point a (1), or 0 when the model cannot say. */
int model_expect(const struct model *m, u8 io, u64 a, u32 *want);
/* The read at grid point a: a dword at a + PROBE_IO or a + PROBE_MEM. */
u32 model_probe_read(u8 io, u64 a);
/* A BAR register read that must return what the model holds. */
void model_read_bar(struct model *m, unsigned dev, u32 reg);
/* Every known address read and compared with the model; a difference fails the run. */
void model_check(struct model *m);
/* The failure: pattern, step and last write on COM1, then verdict m->verdict. */
__attribute__((noreturn)) void model_fail(struct model *m, const char *why);
/* A new pattern: forget the ranges seen, name it, give its failures their verdict. */
void model_begin(struct model *m, const char *pattern, u32 verdict);

/* Memory above 4 GiB, through a PAE window; below it, identity. Up to phys_limit. */
extern u64 phys_limit;
void paging_on(void);
u32 phys_read32(u64 pa);
void phys_write32(u64 pa, u32 v);

/* Device indexes and BAR lookups. */
int model_dev(const struct model *m, u16 vendor, u16 device);
struct bar *model_bar(struct model *m, unsigned dev, u32 reg);

#endif
