/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A parsed scenario: the host, the devices and the ordered statements that program and probe
 * them. busmap-scenario(5) is the reference for the language; this is its in-memory form.
 * Nothing here touches libbusmap: the runner (runner.h) gives the statements their effect.
 */
#ifndef BUSMAP_CMD_SCENARIO_H
#define BUSMAP_CMD_SCENARIO_H

#include <busmap/pci.h>
#include <busmap/pci_alloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCN_MAX_STATEMENTS 200000
#define SCN_MAX_DEVICES    1024
#define SCN_LABEL_MAX      120
#define SCN_SOURCE_MAX     200

struct scn_bdf {
	uint8_t bus, dev, fn;
};

/* ---- host ---- */

enum scn_arch {
	SCN_X86,   /* I/O BARs in the port space; CF8/CFC */
	SCN_ARM64, /* no port space: I/O BARs show in an MMIO window; ECAM */
};

struct scn_host {
	enum scn_arch arch;
	bool ecam;
	uint64_t ecam_base;
	unsigned ecam_buses; /* 1..256 */
	bool io_window;      /* arm64: port p appears at MMIO io_window_base + p */
	uint64_t io_window_base, io_window_size;
	uint64_t io_limit; /* 0: the architecture's default */
	int decode_zero;   /* -1: the architecture's default */
	bool no_host_bridge;
	uint16_t hb_vendor, hb_device; /* 0: the architecture's default */
};

/* ---- devices ---- */

struct scn_device {
	struct scn_bdf bdf;
	char preset[32];
	char label[40];
	uint16_t vendor_id, device_id, subsys_vendor, subsys_id;
	uint32_t class_code;
	uint8_t revision;
	uint8_t intx_pin;
	bool bridge;
	bool pcie;
	uint8_t secondary, subordinate;
	struct {
		enum bm_pci_bar_type type;
		uint64_t size;
		bool prefetchable;
	} bars[BM_PCI_NUM_BARS];
	uint64_t rom_size;
	unsigned msix_vectors; /* 0: none */
	unsigned msix_table_bar, msix_pba_bar;
	uint32_t msix_table_off, msix_pba_off;
	unsigned msi_vectors; /* 0: none */
};

/* ---- accesses ---- */

enum scn_via {
	SCN_VIA_CFG,  /* configuration access to a function, by bus/device/function */
	SCN_VIA_CF8,  /* the same as the two port accesses CF8 then CFC+n */
	SCN_VIA_ECAM, /* the same as one MMIO access into the ECAM window */
	SCN_VIA_MMIO, /* a guest memory access */
	SCN_VIA_IO,   /* a guest port access (arm64: through the I/O window) */
};

struct scn_access {
	enum scn_via via;
	bool write;
	unsigned width; /* 1, 2, 4, 8 */
	struct scn_bdf bdf;
	unsigned reg;  /* configuration register */
	uint64_t addr; /* MMIO address or port */
	uint64_t value;
	bool check; /* a read with an expected value */
};

/* A BAR (or region) an access is expected to reach. */
struct scn_target {
	enum { SCN_TGT_BAR, SCN_TGT_UNASSIGNED, SCN_TGT_REGION } kind;
	struct scn_bdf bdf;
	unsigned bar; /* 0..5 or BM_PCI_ROM */
	bool has_offset;
	uint64_t offset;
	char region[64]; /* SCN_TGT_REGION: a region name such as pci-ecam */
};

enum scn_expect_kind {
	SCN_EXP_REACHES,   /* space addr -> target */
	SCN_EXP_MAP,       /* every byte of [start, last] of a space -> target */
	SCN_EXP_BAR,       /* a BAR is decoded at addr, or is not */
	SCN_EXP_CONFLICTS, /* how many overlaps there are now */
	SCN_EXP_CONFLICT,  /* winner hides loser (over [start, last]) */
	SCN_EXP_OVERLAP_ACCESSES,
	SCN_EXP_ROUTING, /* every mapped BAR byte reaches the newest BAR there */
};

struct scn_expect {
	enum scn_expect_kind kind;
	bool io; /* port space, else MMIO */
	uint64_t addr;
	uint64_t start, last;
	bool has_range;
	struct scn_target target;
	struct scn_target loser;
	bool mapped;
	uint64_t count;
};

/* ---- allocation ---- */

struct scn_window {
	bool set;
	uint64_t base, limit;
};

struct scn_alloc {
	struct scn_window io, mem32, pref32, mem64;
	enum bm_pci_alloc_mode mode;
	bool assign_buses, bus_master, rom_enable;
};

/* ---- statements ---- */

enum scn_kind {
	SCN_HOST,
	SCN_DEVICE,
	SCN_PLACE,
	SCN_ALLOCATE,
	SCN_ACCESS,
	SCN_STEP,
	SCN_NOTE,
	SCN_EXPECT,
};

struct scn_stmt {
	enum scn_kind kind;
	unsigned line, col;
	union {
		struct scn_host host;
		struct scn_device device;
		struct {
			struct scn_bdf bdf;
			unsigned bar;
			uint64_t addr;
		} place;
		struct scn_alloc alloc;
		struct scn_access access;
		struct scn_expect expect;
	} u;
	char *text; /* SCN_STEP label, SCN_NOTE text (owned) */
	char *src;  /* the statement as written, without its comment (owned) */
};

struct scn_script {
	char *file; /* as given, for messages */
	struct scn_stmt *v;
	size_t n, cap;
	size_t ndevices;
};

void scn_script_free(struct scn_script *s);

/* "BB:DD.F" into buf (at least 8 bytes). */
void scn_bdf_format(struct scn_bdf b, char *buf, size_t size);
/* "BB:DD.F/barN" or "BB:DD.F/rom", with "+0xOFF" when the target has an offset. */
void scn_target_format(const struct scn_target *t, char *buf, size_t size);

#endif
