/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reader of QEMU trace logs (trace backend "log") into a list of PCI events.
 *
 * Recognised lines, each optionally preceded by the log backend's "PID@SEC.USEC:" stamp:
 *   pci_cfg_read DEV BB:DD.F @0xREG -> 0xVAL
 *   pci_cfg_write DEV BB:DD.F @0xREG <- 0xVAL
 *   pci_update_mappings_add DEV BB:DD.F BAR,0xADDR+0xSIZE     (also _del, and "d=0x..." for DEV)
 *   memory_region_ops_read cpu N mr 0xPTR addr 0xA value 0xV size S name 'NAME'   (also _write)
 *   # console: "escaped text"
 *   # previous line repeated N more times (...)
 * Other trace events and other "#" comments are skipped. A line that names one of the events
 * above but does not parse, a line with control bytes, or one longer than the limit, is an
 * error reported with its line number. Comment lines are never errors (but for the limits,
 * and a fold count that passes 2^32): console text is decoded from C escapes, \xHH and
 * JSON's \uXXXX, other escapes are kept as written, and a console line that is not one
 * quoted string is kept whole; a fold line that does not parse, or has no line before it,
 * is skipped.
 *
 * pci_cfg_* lines carry no access width. It is taken from the configuration-space access
 * that QEMU traced around it (memory_region_ops_* on "pci-conf-data" or "pcie-mmcfg-mmio":
 * the one just after a read, the one just before a write, when its address and value agree)
 * and otherwise inferred from the register and the value (qemu_trace_infer_width).
 *
 * Nothing here prints; every function returns 0 or a negative errno.
 */
#ifndef BUSMAP_TOOLS_QEMU_TRACE_H
#define BUSMAP_TOOLS_QEMU_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum qemu_trace_kind {
	QEMU_TRACE_CFG_READ,
	QEMU_TRACE_CFG_WRITE,
	QEMU_TRACE_MAP_ADD,
	QEMU_TRACE_MAP_DEL,
	QEMU_TRACE_MR_READ,
	QEMU_TRACE_MR_WRITE,
	QEMU_TRACE_CONSOLE,
};

enum qemu_trace_width_source {
	QEMU_TRACE_WIDTH_NONE,     /* not a configuration access */
	QEMU_TRACE_WIDTH_PAIRED,   /* from the traced configuration-region access */
	QEMU_TRACE_WIDTH_INFERRED, /* from the register and the value */
};

/* bus << 8 | device << 3 | function, as in a CF8 address. */
#define QEMU_TRACE_BDF(bus, dev, fn) ((uint16_t)(((bus) << 8) | ((dev) << 3) | (fn)))
#define QEMU_TRACE_BUS(bdf)          ((unsigned)((bdf) >> 8))
#define QEMU_TRACE_DEV(bdf)          ((unsigned)(((bdf) >> 3) & 0x1f))
#define QEMU_TRACE_FN(bdf)           ((unsigned)((bdf)&7))

struct qemu_trace_event {
	enum qemu_trace_kind kind;
	unsigned line;   /* 1-based line of the event in the log */
	uint32_t repeat; /* how many times it happened: 1 + folded identical repeats */
	/* CFG_* and MAP_*: the function. */
	uint16_t bdf;
	/* CFG_*: register offset, access width in bytes and where the width came from. */
	uint16_t reg;
	uint8_t width;
	enum qemu_trace_width_source width_source;
	unsigned pair_line; /* line of the paired region access, 0 if none */
	/* MAP_*: BAR index (6 is the expansion ROM). */
	uint8_t bar;
	/* MR_*: cpu index (-1 when QEMU had none). */
	int cpu;
	/* CFG_* and MR_*: the value; MR_*: the access size in width. */
	uint64_t value;
	/* MAP_*: [addr, addr + size); MR_*: the address QEMU printed. */
	uint64_t addr;
	uint64_t size;
	/* CFG_*, MAP_*: device name; MR_*: region name; CONSOLE: decoded text (may hold NUL).
	 * Owned by the trace, NUL-terminated. */
	const char *text;
	size_t text_len;
};

struct qemu_trace_stats {
	size_t lines;     /* lines read */
	size_t skipped;   /* other trace events and comments */
	size_t cfg_reads; /* counting repeats */
	size_t cfg_writes;
	size_t width_paired;   /* pci_cfg_* events whose width came from a paired access */
	size_t width_inferred; /* ... and those whose width was inferred */
};

struct qemu_trace {
	struct qemu_trace_event *events;
	size_t count;
	struct qemu_trace_stats stats;
	struct qemu_trace_store *store; /* text storage, private */
	size_t capacity;
};

/* Bounds that keep memory finite whatever the input. Zero fields take the defaults. */
struct qemu_trace_limits {
	size_t max_line;   /* bytes per line, default 1 MiB */
	size_t max_events; /* default 8M */
	size_t max_text;   /* bytes of stored names and console text, default 256 MiB */
};

struct qemu_error {
	unsigned line; /* 0 when not tied to a line (I/O error, out of memory) */
	int code;      /* the negative errno also returned */
	char message[160];
};

/* Fills err (when not NULL) and returns code, for every reader of QEMU's output. */
int qemu_error_set(struct qemu_error *err, unsigned line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Reads the whole stream. On success *out is a new trace (free it with qemu_trace_free).
 * Errors: -EINVAL (NULL arguments), -EBADMSG (a malformed line; err says which and why),
 * -EFBIG (a limit was passed), -ENOMEM, -EIO (the stream failed). err may be NULL.
 */
int qemu_trace_parse(FILE *in, const struct qemu_trace_limits *limits, struct qemu_trace **out,
                     struct qemu_error *err);
void qemu_trace_free(struct qemu_trace *trace);

/*
 * The width a configuration access of value at reg had, when the log does not say:
 * the register's natural width in the standard header (2 for IDs, command and status,
 * 4 for BARs, the ROM BAR and the class dword, 1 for the byte registers; past 0x40, where
 * the layout is the device's own, the widest access reg's alignment allows), widened to
 * the smallest of 1, 2, 4 that holds value, and never more than reg's alignment allows.
 * Returns 1, 2 or 4, or -ERANGE when no aligned access at reg can carry value.
 */
int qemu_trace_infer_width(unsigned reg, uint64_t value);

/* Is name a region through which QEMU's configuration space is accessed? */
int qemu_trace_is_config_region(const char *name);

const char *qemu_trace_kind_name(enum qemu_trace_kind kind);

#ifdef __cplusplus
}
#endif
#endif
