/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Replays the configuration accesses of a QEMU trace (see qemu_trace.h) against busmap's
 * PCI layer and compares busmap's BAR map/unmap events with QEMU's
 * pci_update_mappings_add/_del lines, write by write.
 *
 * The devices are inferred from the trace alone:
 * - every bus:device.function that QEMU traced a configuration access or mapping for;
 * - vendor, device, class, revision, header type, subsystem and interrupt pin from the
 *   first reads of those registers, before anything was written to them; bit 7 of the
 *   header type read makes the function declare itself multi-function, as QEMU's did;
 * - BAR layouts from the sizing probes: the value read back from a BAR register after all
 *   ones were written to it (the ROM: bits 31..11 all ones) gives the size from its lowest
 *   address bit, and its type bits say I/O, 32-bit or 64-bit memory and prefetchable; a
 *   64-bit BAR takes the next register as its upper half, whose own read-back extends the
 *   size (all ones when it was not probed). The ROM is register 0x30 (0x38 for a bridge)
 *   and BAR index 6;
 * - header type 1 functions become PCI-to-PCI bridges with BARs 0 and 1 (their window
 *   registers and bus numbers start as the trace first read them);
 * - a function is where it sits, not the bus number that reaches it: the bridges' bus
 *   numbers are followed through the trace as QEMU routes configuration cycles (into the
 *   first bridge, in device order, whose secondary bus is N or whose range holds N), so a
 *   function keeps its identity when firmware or an OS (Linux's pci=assign-busses)
 *   renumbers the buses, and events name it by the number that reached it then;
 * - a function accessed at or above 0x100 has the 4 KiB extended space.
 *
 * - MSI-X from the capability's registers as the trace read them (message control, table
 *   and PBA offsets and BARs), else from a layout the caller knows (qemu_mtree_msix_hints:
 *   QEMU's "info mtree" of the same run, whose region holding them is named after the
 *   device, "DEVICE-...", and lies where the trace mapped one of its BARs); busmap's function then
 * has the table and PBA as the PCI layer's overlays. A BAR laid out as QEMU's exclusive MSI-X BAR
 * (table at 0 and PBA at half the BAR, nothing else) is hollow: elsewhere in it, whatever lies
 * below shows through.
 *
 * QEMU's decode rule differs by machine only in whether a BAR may decode at address 0:
 * arm "virt" allows it, x86 "pc" and "q35" do not (qemu_replay_machine_options).
 *
 * The map the replay ends with can be checked against QEMU's "info mtree -f" with
 * qemu_mtree.h.
 *
 * Nothing here prints. Errors are negative errno values with a trace line where one applies.
 */
#ifndef BUSMAP_TOOLS_QEMU_REPLAY_H
#define BUSMAP_TOOLS_QEMU_REPLAY_H

#include "qemu_trace.h"

#include <busmap/pci.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An MSI-X layout QEMU showed: the region holding the table and PBA, named after its
 * device ("virtio-net-pci-msix", "nvme-bar0"), where it was mapped, and where both lie
 * in it. */
struct qemu_replay_msix_hint {
	char owner[64];
	uint64_t addr, size;
	uint64_t table_offset, table_size, pba_offset, pba_size;
	bool exclusive; /* the region holds nothing else */
};

struct qemu_replay_options {
	bool decode_zero;  /* BARs at address 0 decode (QEMU's pci_allow_0_address) */
	uint64_t io_limit; /* 0: BM_PCI_IO_LIMIT_QEMU (last port below 0xffffffff) */
	bool no_read_checks;
	const struct qemu_replay_msix_hint *msix_hints; /* may be NULL; copied */
	size_t nmsix_hints;
};

/*
 * Options for a QEMU machine type as given to -M or -machine (the part before any comma):
 * "virt*" decodes address 0, everything else does not. -ENOENT for an empty name.
 */
int qemu_replay_machine_options(const char *machine, struct qemu_replay_options *out);
/* Finds "-M NAME" or "-machine NAME" (or type=NAME) in a QEMU command line. */
int qemu_replay_machine_from_cmdline(const char *cmdline, char *name, size_t size);

/* One inferred BAR (index 0..5, or 6 for the ROM). */
struct qemu_replay_bar_layout {
	enum bm_pci_bar_type type; /* NONE: absent, or the upper half of a 64-bit BAR */
	bool prefetchable;
	uint64_t size;
	unsigned line; /* the read-back line the size came from */
};

struct qemu_replay_msix {
	unsigned nvectors; /* 0: none modelled */
	unsigned table_bar, pba_bar;
	uint32_t table_offset, pba_offset;
	bool hollow; /* the table's BAR shows nothing of its own besides table and PBA */
	bool hinted; /* from a hint, not from the capability the trace read */
};

struct qemu_replay_device {
	uint16_t bdf; /* as the trace first names it (bus numbers may change later) */
	const char *name;
	unsigned first_line;
	uint16_t vendor_id, device_id;
	uint32_t class_code;
	uint8_t revision;
	uint8_t header_type; /* as read; bit 7 is multi-function */
	uint16_t subsystem_vendor_id, subsystem_id;
	uint8_t intx_pin;
	bool extended;
	uint8_t secondary_bus; /* bridges: first secondary bus number the trace wrote */
	struct qemu_replay_bar_layout bars[BM_PCI_ROM + 1];
	bool has_msix_cap; /* the capability list the trace read holds MSI-X */
	struct qemu_replay_msix msix;
};

/* A BAR map/unmap: from QEMU's trace (line set) or from busmap's observer. */
struct qemu_replay_map_event {
	uint16_t bdf;
	unsigned bar;
	bool mapped;
	uint64_t addr, size;
	unsigned line; /* QEMU: the pci_update_mappings line; busmap: the write that caused it */
};

/* A configuration write after which busmap's events differ from QEMU's. */
struct qemu_replay_divergence {
	unsigned write_line; /* the pci_cfg_write */
	unsigned line;       /* first differing QEMU event line, else write_line */
	size_t index;        /* position within the write's events */
	bool have_expected, have_actual;
	struct qemu_replay_map_event expected; /* QEMU's */
	struct qemu_replay_map_event actual;   /* busmap's */
};

/* A read whose value differs from QEMU's on a register busmap emulates. */
struct qemu_replay_read_mismatch {
	unsigned line;
	uint16_t bdf;
	unsigned reg, width;
	uint32_t expected, actual, mask; /* mask: the bytes compared */
};

#define QEMU_REPLAY_MAX_RECORDED 16

struct qemu_replay_result {
	size_t writes, reads; /* configuration accesses replayed, counting repeats */
	size_t reads_checked; /* reads that covered a compared register */
	size_t qemu_events;   /* QEMU map events replayed so far */
	size_t busmap_events; /* events busmap's observer reported so far */
	size_t divergences;   /* writes whose event sequences differ */
	size_t read_mismatches;
	size_t width_paired, width_inferred; /* of the replayed accesses */
	struct qemu_replay_divergence divergence[QEMU_REPLAY_MAX_RECORDED]; /* the first ones */
	struct qemu_replay_read_mismatch mismatch[QEMU_REPLAY_MAX_RECORDED];
};

/* What part of a BAR an entry of a map is. */
enum qemu_replay_part {
	QEMU_REPLAY_PART_BAR,        /* the BAR's own contents */
	QEMU_REPLAY_PART_MSIX_TABLE, /* the MSI-X table laid over them */
	QEMU_REPLAY_PART_MSIX_PBA,
};

/* A mapped BAR, or an MSI-X part of one, in a final map; order grows with each (re)mapping
 * and the newest wins, a BAR's MSI-X parts over the BAR; a hollow BAR's own contents hide
 * nothing. */
struct qemu_replay_bar {
	uint16_t bdf;
	unsigned bar;
	bool io;
	uint64_t addr, size;
	uint64_t order;
	enum qemu_replay_part part;
	bool hollow;
};

struct qemu_replay;

/*
 * Infers the devices and builds a busmap system with a PCI host configured as QEMU's:
 * memory and I/O spaces, the decode rule of opt (NULL: address 0 refused), every device.
 * The trace must outlive the replay. -EBADMSG when the trace cannot be replayed (a BAR
 * mapped but never sized, a layout busmap refuses...: err says which line), -ENOMEM.
 */
int qemu_replay_new(const struct qemu_trace *trace, const struct qemu_replay_options *opt,
                    struct qemu_replay **out, struct qemu_error *err);
void qemu_replay_free(struct qemu_replay *r);

/*
 * Replays the trace's events whose line is below until_line (0: all), continuing from where
 * the last call stopped. A divergence does not stop the replay: each write is compared on
 * its own. Returns 0, a negative errno from busmap, or -EXDEV when busmap's bridges route an
 * access to another function than QEMU's did (err says at which line).
 */
int qemu_replay_run(struct qemu_replay *r, unsigned until_line, struct qemu_error *err);
const struct qemu_replay_result *qemu_replay_result(const struct qemu_replay *r);

const struct qemu_replay_device *qemu_replay_devices(const struct qemu_replay *r, size_t *count);
/* The inferred device busmap's function f stands for, or NULL. */
const struct qemu_replay_device *qemu_replay_device_of(const struct qemu_replay *r,
                                                       const bm_pci_func *f);

/*
 * The BARs busmap has mapped now (busmap's view) or that QEMU's trace has mapped up to
 * the same point (qemu_map), sorted by address. *out is malloc'ed, free it. -ENOMEM.
 */
int qemu_replay_busmap_map(struct qemu_replay *r, struct qemu_replay_bar **out, size_t *count);
int qemu_replay_qemu_map(const struct qemu_replay *r, struct qemu_replay_bar **out, size_t *count);

/* The busmap objects, for dumps. */
bm_pci_host *qemu_replay_host(const struct qemu_replay *r);
bm_space *qemu_replay_space(const struct qemu_replay *r, bool io);

#ifdef __cplusplus
}
#endif
#endif
