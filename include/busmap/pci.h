/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PCI: configuration space and BAR emulation on top of busmap's address spaces.
 *
 * bm_pci_host  a host bridge: the root bus (bus 0), a host-bridge function at 00:00.0, the
 *              configuration mechanisms (CF8/CFC in I/O space, an ECAM window in MMIO
 *              space) and the places where BARs appear (a "pci-mem" container in the MMIO
 *              space, a "pci-io" container in the I/O space or behind an I/O window in MMIO).
 * bm_pci_bus   a bus: the root bus, or the secondary side of a PCI-to-PCI bridge.
 * bm_pci_func  one function: its configuration registers (256 bytes, or 4 KiB with extended
 *              space), its BARs and expansion ROM, capabilities, MSI/MSI-X and INTx state.
 *
 * A BAR is identified by (function, index) everywhere: index 0..5, or BM_PCI_ROM for the
 * expansion ROM. Each BAR is a container region named "BB:DD.F/barN" (or "BB:DD.F/rom")
 * whose contents are the device model's region, or an io region of the same name made from
 * its callbacks, with MSI-X table and PBA overlaid at a higher priority. BB is the bus
 * number when the function was created. A BAR that passes the decode rule is mapped into
 * its bus's container at the address its registers hold, even over another BAR (all BARs
 * have the same priority, so the newest placement wins); one that fails is unmapped.
 *
 * Decode rule (after QEMU):
 * - I/O BAR: command I/O enable; address != 0 unless the host allows 0; no wrap; last port
 *   below the host's I/O limit.
 * - memory BAR: command memory enable; the ROM also needs its enable bit; address != 0
 *   unless allowed; no wrap; last byte != 2^64 - 1; a 32-bit BAR (and the ROM) ends below
 *   0xffffffff.
 * After every configuration write that touches the BARs, the ROM or the command register,
 * BARs are re-decoded in index order 0..5 then the ROM; for each one whose decoded address
 * changed the map observer sees "unmapped old" (if it was mapped) then "mapped new" (if it
 * is). Each such write is one core transaction.
 *
 * A configuration write is all-or-nothing. It first changes the registers, the BAR
 * placements and the bridge windows, then publishes (when no transaction of the caller's
 * is open). If any of that runs out of memory, the write returns -ENOMEM with the
 * registers, the region tree and the published view exactly as before, and nobody is told
 * anything. Only once it succeeded come, in this order: the map events (observer, then
 * the device's bar_map hook, per BAR), the INTx line at the host, MSI and MSI-X messages
 * that the write released by unmasking, and the device's cfg_write hook. A configuration
 * write one of these makes is a write of its own, published before its own events (inside
 * a transaction of the caller's, all of them publish at its commit). A guest's write
 * through CF8/CFC or ECAM returns that -ENOMEM from its bm_write, and can be retried.
 * An 8-byte ECAM write is carried out as two 4-byte configuration writes, each
 * all-or-nothing: when the second fails, the first stays.
 *
 * Threads and locks: every function here takes the system's writer lock (through
 * bm_begin/bm_commit), so they may be called from any thread, including from a region
 * callback inside a dispatch: a configuration write through ECAM or CF8/CFC is exactly
 * that. None may be called from a listener or conflict callback (-EDEADLK). Hooks (struct
 * bm_pci_host_ops, struct bm_pci_func_ops, the map observer) run on the calling thread with
 * the writer lock held: they may read state and change regions, must not call
 * bm_synchronize, bm_pci_func_free or bm_pci_host_free.
 *
 * Lifetime: the caller owns the host and frees it with bm_pci_host_free before
 * bm_system_free, which returns -EBUSY while a host is live. Functions belong to the host;
 * bm_pci_func_free unplugs one earlier.
 * Regions a device model supplies stay owned by it: busmap only places them.
 *
 * Register offsets and bits (PCI_COMMAND, PCI_BASE_ADDRESS_0, PCI_CONFIG_ADDRESS()...) are
 * named in <busmap/pci_regs.h>.
 *
 * Errors are negative errno values. Nothing a guest writes into configuration space is
 * refused: out-of-range reads give all ones, writes there are dropped; a write fails only
 * for lack of memory, and then changes nothing.
 */
#ifndef BUSMAP_PCI_H
#define BUSMAP_PCI_H

#include <busmap/dispatch.h>
#include <busmap/region.h>
#include <busmap/space.h>
#include <busmap/system.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_pci_host bm_pci_host;
typedef struct bm_pci_bus bm_pci_bus;
typedef struct bm_pci_func bm_pci_func;

#define BM_PCI_NUM_BARS    6
#define BM_PCI_ROM         6 /* the expansion ROM's index wherever a BAR index is taken */
#define BM_PCI_CFG_SIZE    256
#define BM_PCI_CFG_EXTSIZE 4096

/* I/O limit that reproduces QEMU: an I/O BAR decodes when its last port < 0xffffffff. */
#define BM_PCI_IO_LIMIT_QEMU 0xffffffffull
/* Default I/O limit: the x86 port space (last port <= 0xffff). */
#define BM_PCI_IO_LIMIT_X86 0x10000ull

/* Host-side hooks, for the VMM's interrupt wiring. Either may be NULL. */
struct bm_pci_host_ops {
	/* A function sent an MSI or MSI-X message. */
	void (*msi)(void *opaque, bm_pci_func *src, uint64_t addr, uint32_t data);
	/*
	 * An INTx line changed at the host bridge. slot is the device number on bus 0 through
	 * which the interrupt arrives (the device itself, or the bridge it is behind), pin is
	 * 1..4 (INTA..INTD) after swizzling through every bridge on the way, src the function
	 * whose line changed. Shared lines: the VMM ORs the levels of their sources.
	 */
	void (*intx)(void *opaque, bm_pci_func *src, unsigned slot, unsigned pin, bool level);
	/*
	 * A 1-byte write to port 0xcf9 (hosts with CF8/CFC). PC chipsets keep their reset
	 * control register there, inside the 4 bytes of the CF8 address register, which
	 * latches only 4-byte writes: without this hook such a write is dropped.
	 */
	void (*reset_control)(void *opaque, uint8_t value);
};

/* Zero-initialise, then set what differs from the defaults given here. */
struct bm_pci_host_config {
	bm_space *mem; /* required: MMIO space; the "pci-mem" container goes at its 0 */
	/* x86: the port space; "pci-io" goes at its 0 and CF8/CFC can be placed in it. */
	bm_space *io;
	/* Without io: if io_window_size != 0, port p appears at io_window_base + p in mem. */
	uint64_t io_window_base;
	uint64_t io_window_size;
	/* An I/O BAR decodes only if its last port < io_limit; 0 means BM_PCI_IO_LIMIT_X86. */
	uint64_t io_limit;
	bool decode_zero;        /* BARs at address 0 decode (QEMU's allow_0_address) */
	bool cf8;                /* CF8/CFC at ports 0xcf8..0xcff of io (requires io) */
	bool ecam;               /* ECAM window in mem */
	uint64_t ecam_base;      /* where bus ecam_bus_first's configuration space starts */
	uint8_t ecam_bus_first;  /* bus b is at ecam_base + ((b - first) << 20) */
	uint16_t ecam_bus_count; /* 1..256; 0 means 256 - ecam_bus_first */
	int mem_priority;        /* of "pci-mem" in mem's root, against the VMM's RAM */
	int io_priority;         /* of "pci-io" (or its window) in its space's root */
	bool no_host_bridge;     /* leave 00:00.0 free */
	uint16_t host_vendor_id; /* 0 means 0x1b36 */
	uint16_t host_device_id; /* 0 means 0x0008 */
	uint8_t host_revision;
	const struct bm_pci_host_ops *ops;
	void *opaque;
};

/*
 * Creates a host: its containers, the host-bridge function and the configuration windows,
 * placed into the given spaces. -EINVAL (no mem, cf8 without io, both io and an I/O
 * window, an ECAM or I/O window passing 2^64 - 1, buses past 255), -EXDEV (a space of
 * another system), -ENOMEM.
 * The CF8/CFC and ECAM regions sit one priority above the bus containers, so a BAR can
 * never hide the configuration mechanism.
 */
BM_API int bm_pci_host_new(bm_system *sys, const struct bm_pci_host_config *cfg, bm_pci_host **out);
/*
 * Unplugs every function (unmap events are sent), removes every region the host made,
 * waits for dispatches in flight (bm_synchronize) and frees everything. Device-supplied
 * regions are removed from their BARs but not destroyed. -EDEADLK (nothing freed) from
 * inside a dispatch or a transaction. NULL is accepted.
 */
BM_API int bm_pci_host_free(bm_pci_host *host);
BM_API bm_pci_bus *bm_pci_host_root_bus(bm_pci_host *host);
BM_API bm_pci_func *bm_pci_host_bridge_func(bm_pci_host *host); /* NULL if none */
/* The containers BARs of bus 0 are mapped into. */
BM_API bm_region *bm_pci_host_mem_region(bm_pci_host *host);
BM_API bm_region *bm_pci_host_io_region(bm_pci_host *host);
BM_API uint64_t bm_pci_host_io_limit(const bm_pci_host *host);
/* Whether BARs at address 0 decode on this host. */
BM_API bool bm_pci_host_decodes_zero(const bm_pci_host *host);
/* The system the host was created on: bm_begin/bm_commit on it group configuration
 * writes into one publication. */
BM_API bm_system *bm_pci_host_system(const bm_pci_host *host);

/* ---- map observer ---------------------------------------------------------------- */

struct bm_pci_map_event {
	bm_pci_func *func;
	uint8_t bus, dev, fn; /* bus number at the time of the event */
	unsigned bar;         /* 0..5, or BM_PCI_ROM */
	bool io;              /* I/O space, else memory */
	bool mapped;          /* true: now mapped at addr; false: no longer mapped at addr */
	uint64_t addr;
	uint64_t size;
};
typedef void (*bm_pci_map_fn)(void *arg, const struct bm_pci_map_event *ev);
/*
 * Sets (fn NULL: clears) the one observer of every BAR map/unmap of the host, in order.
 * For a configuration write it runs once the write succeeded: after its publication, so
 * the placement it is told about is the one vCPUs already dispatch to (inside a caller's
 * transaction, after the write's changes are in the tree; they publish at the caller's
 * commit). A write that fails tells it nothing: its picture stays right without undo
 * events. It runs with the writer lock held; a configuration write from it is a
 * transaction of its own, whose events follow it.
 */
BM_API int bm_pci_host_set_map_observer(bm_pci_host *host, bm_pci_map_fn fn, void *arg);

/* ---- configuration access ------------------------------------------------------- */

/*
 * Configuration read/write of size 1, 2 or 4 at register reg of bus:dev.fn, routed by bus
 * number through bridges exactly like CF8/CFC and ECAM accesses, through the same register
 * logic. Returns 0, -ENODEV if no function answers (a read gives all ones, a write is
 * dropped), -EINVAL (NULL, size, dev > 31, fn > 7), -EDEADLK (from a listener or conflict
 * callback), or -ENOMEM: the write changed nothing (registers, map, view), told nobody, and
 * may be retried. Bytes past the function's configuration space read 0xff and are not
 * written.
 */
BM_API int bm_pci_cfg_read(bm_pci_host *host, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                           unsigned size, uint32_t *value);
BM_API int bm_pci_cfg_write(bm_pci_host *host, unsigned bus, unsigned dev, unsigned fn,
                            unsigned reg, unsigned size, uint32_t value);
/* The same on a function handle, as the guest would (hooks run, BARs follow). */
BM_API int bm_pci_func_cfg_read(bm_pci_func *f, unsigned reg, unsigned size, uint32_t *value);
BM_API int bm_pci_func_cfg_write(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);

/* ---- functions ------------------------------------------------------------------ */

enum bm_pci_bar_type {
	BM_PCI_BAR_NONE = 0,
	BM_PCI_BAR_IO,
	BM_PCI_BAR_MEM32,
	BM_PCI_BAR_MEM64, /* takes index and index + 1 */
};

/*
 * One BAR (or the ROM, whose type is ignored). size is a power of two: I/O 4..2^31,
 * 32-bit memory 16..2^31, 64-bit memory 16..2^63, ROM 2 KiB..2^31. Contents: region (the
 * device model's; it must have no parent and is placed at offset 0 of the BAR), or else
 * ops/opaque from which busmap makes an io region of the BAR's size; with neither, the BAR
 * reads as unassigned.
 */
struct bm_pci_bar_desc {
	enum bm_pci_bar_type type;
	uint64_t size;
	bool prefetchable;
	bm_region *region;
	const struct bm_region_ops *ops;
	void *opaque;
};

/* Device-model hooks; any may be NULL. */
struct bm_pci_func_ops {
	/* After busmap computed *value for [reg, reg + size), which the hook may replace
	 * (device-specific registers that are not plain storage). It runs with the writer
	 * lock held: guest reads of a function with this hook take the lock, where those of
	 * other functions (through CF8/CFC and ECAM) take none. */
	void (*cfg_read)(void *opaque, bm_pci_func *f, unsigned reg, unsigned size,
	                 uint32_t *value);
	/* After the write was applied to the registers and BARs, MSI and bridge windows
	 * followed, and only if it succeeded (see "all-or-nothing" above): it runs after the
	 * publication, the map events and the messages the write released, and never for a
	 * write that failed. value is what the guest wrote. Map changes it makes publish
	 * when the write's transaction closes; if that publication fails they stay pending
	 * for the next commit, and the write, already in effect, still returns 0. */
	void (*cfg_write)(void *opaque, bm_pci_func *f, unsigned reg, unsigned size,
	                  uint32_t value);
	/* A BAR became decoded at addr (mapped) or stopped being decoded there; right after
	 * the map observer, with the same timing. */
	void (*bar_map)(void *opaque, bm_pci_func *f, unsigned bar, uint64_t addr, uint64_t size,
	                bool mapped);
};

enum bm_pci_header {
	BM_PCI_HEADER_ENDPOINT = 0, /* type 0 */
	BM_PCI_HEADER_BRIDGE = 1,   /* type 1: PCI-to-PCI bridge with a secondary bus */
};

struct bm_pci_func_desc {
	uint16_t vendor_id;
	uint16_t device_id;
	uint32_t class_code; /* base << 16 | sub-class << 8 | programming interface */
	uint8_t revision;
	uint16_t subsystem_vendor_id; /* type 0 only */
	uint16_t subsystem_id;
	enum bm_pci_header header;
	bool extended; /* 4 KiB configuration space (PCI Express) */
	/* Bit 7 of the header type is set on function 0 of a slot that holds several
	 * functions; multifunction sets it on this function whatever the slot holds (QEMU's
	 * multifunction=on, which some machines give every function of a slot). */
	bool multifunction;
	uint8_t intx_pin;                             /* 0: none, 1..4: INTA..INTD */
	struct bm_pci_bar_desc bars[BM_PCI_NUM_BARS]; /* a bridge has bars[0..1] only */
	struct bm_pci_bar_desc rom;                   /* size 0: no ROM */
	/* Bridges: initial bus numbers (firmware normally writes them), 32-bit I/O window
	 * and 64-bit prefetchable window support. */
	uint8_t secondary_bus;
	uint8_t subordinate_bus;
	bool bridge_io32;
	bool bridge_pref64;
	const struct bm_pci_func_ops *ops;
	void *opaque;
};

/*
 * Creates a function at dev.fn of bus and makes it visible to configuration cycles. If
 * the slot then holds several functions, bit 7 of function 0's header type is set.
 * -EINVAL (bad descriptor: BAR size, overlapping 64-bit BAR, dev/fn, vendor 0xffff...),
 * -EEXIST (dev.fn taken, or a supplied region already has a parent), -ENOMEM.
 */
BM_API int bm_pci_func_new(bm_pci_bus *bus, unsigned dev, unsigned fn,
                           const struct bm_pci_func_desc *desc, bm_pci_func **out);
/*
 * Unplugs and frees a function (a bridge: with everything behind it). Its BARs are
 * unmapped first, with events. Waits for dispatches in flight like bm_pci_host_free and
 * refuses in the same places (-EDEADLK). NULL is accepted.
 */
BM_API int bm_pci_func_free(bm_pci_func *f);

/* ---- capabilities --------------------------------------------------------------- */

/*
 * A capability: id (8-bit for the legacy list, 16-bit for the extended one), version
 * (extended only), len bytes of data including the header (whose id/next bytes busmap
 * fills), per-byte masks of guest-writable and write-1-to-clear bits (NULL: none).
 */
struct bm_pci_cap_desc {
	uint16_t id;
	uint8_t version;
	const uint8_t *data;
	size_t len;
	const uint8_t *wmask;
	const uint8_t *w1cmask;
};
/* Appends to the list at 0x34 (placed from 0x40 up, dword aligned) and returns its offset
 * in *offset (may be NULL). -ENOSPC, -EINVAL (len < 2). */
BM_API int bm_pci_func_add_cap(bm_pci_func *f, const struct bm_pci_cap_desc *cap, unsigned *offset);
/* Appends to the extended list at 0x100 (4 KiB functions only: -ENOTSUP otherwise). */
BM_API int bm_pci_func_add_ext_cap(bm_pci_func *f, const struct bm_pci_cap_desc *cap,
                                   unsigned *offset);
/* Offset of the first capability with id in the legacy (ext false) or extended list, or 0. */
BM_API unsigned bm_pci_func_find_cap(bm_pci_func *f, uint16_t id, bool ext);

/* MSI: nvectors 1, 2, 4, 8, 16 or 32; 64-bit address; per-vector masking. */
BM_API int bm_pci_func_add_msi(bm_pci_func *f, unsigned nvectors, bool addr64, bool maskable,
                               unsigned *offset);
/*
 * MSI-X with nvectors (1..2048) entries: the table at table_offset of BAR table_bar and the
 * PBA at pba_offset of BAR pba_bar (8-byte aligned, inside memory BARs that exist). They
 * are overlays above the BAR's contents: guest accesses there reach busmap's table, not
 * the device's region. -EINVAL, -EEXIST (already has MSI-X).
 */
BM_API int bm_pci_func_add_msix(bm_pci_func *f, unsigned nvectors, unsigned table_bar,
                                uint32_t table_offset, unsigned pba_bar, uint32_t pba_offset,
                                unsigned *offset);

/* PCI Express device/port types (PCIe capability, bits 7:4 of its register 2). */
enum bm_pcie_type {
	BM_PCIE_ENDPOINT = 0x0,
	BM_PCIE_LEGACY_ENDPOINT = 0x1,
	BM_PCIE_ROOT_PORT = 0x4,
	BM_PCIE_UPSTREAM_PORT = 0x5,
	BM_PCIE_DOWNSTREAM_PORT = 0x6,
	BM_PCIE_PCI_BRIDGE = 0x7,
	BM_PCIE_RC_ENDPOINT = 0x9,
};
/* Adds the PCI Express capability (version 2). Needs an extended function; port types
 * need a bridge header and endpoint types an endpoint header (-EINVAL). */
BM_API int bm_pci_func_add_pcie(bm_pci_func *f, enum bm_pcie_type type, unsigned *offset);

/* ---- interrupts ----------------------------------------------------------------- */

/*
 * The device signals vector: through MSI-X if enabled, else MSI if enabled. Returns 0 when
 * delivered (host msi hook), 1 when held pending because masked (delivered when
 * unmasked), -ENOTCONN when neither is enabled (use INTx), -EINVAL for a vector out of range
 * (past the declared vectors, or, for MSI, past those the guest enabled).
 */
BM_API int bm_pci_msi_notify(bm_pci_func *f, unsigned vector);
/* Sets the function's INTx line level. The status register's interrupt bit follows it; the
 * host sees it unless the command register's INTx disable is set. -EINVAL without a pin. */
BM_API int bm_pci_intx_set(bm_pci_func *f, bool level);

/* ---- introspection (writer side) ------------------------------------------------ */

struct bm_pci_bar_info {
	enum bm_pci_bar_type type; /* NONE: not implemented (or upper half of a 64-bit BAR) */
	bool prefetchable;
	bool io;
	uint64_t size;
	uint64_t addr; /* the address the registers hold (all of them, both halves) */
	bool mapped;   /* decoded now, at mapped_addr */
	uint64_t mapped_addr;
	bm_region *region; /* the BAR's container, named "BB:DD.F/barN" or "BB:DD.F/rom" */
};
/* -ENOENT when the function has no such BAR, -EINVAL for index > BM_PCI_ROM. */
BM_API int bm_pci_bar_info(bm_pci_func *f, unsigned index, struct bm_pci_bar_info *out);

BM_API bm_pci_func *bm_pci_func_find(bm_pci_host *host, unsigned bus, unsigned dev, unsigned fn);
/* Every function of the host, depth first (a bridge before its secondary bus), starting
 * after prev (NULL: the first). */
BM_API bm_pci_func *bm_pci_func_next(bm_pci_host *host, bm_pci_func *prev);
/* Current bus number (the parent bridge's secondary bus register), device, function. */
BM_API void bm_pci_func_bdf(const bm_pci_func *f, uint8_t *bus, uint8_t *dev, uint8_t *fn);
/* "BB:DD.F" as fixed at creation (the prefix of its BAR region names). */
BM_API const char *bm_pci_func_name(const bm_pci_func *f);
BM_API bm_pci_bus *bm_pci_func_bus(const bm_pci_func *f);
BM_API bm_pci_host *bm_pci_func_host(const bm_pci_func *f);
BM_API bool bm_pci_func_is_bridge(const bm_pci_func *f);
BM_API void *bm_pci_func_opaque(const bm_pci_func *f);
/* A bridge's secondary bus (NULL for an endpoint). */
BM_API bm_pci_bus *bm_pci_func_secondary_bus(const bm_pci_func *f);
/* The bridge above the bus, NULL for the root bus. */
BM_API bm_pci_func *bm_pci_bus_bridge(const bm_pci_bus *bus);
/* Bus number: 0 for the root, the bridge's secondary bus register otherwise. */
BM_API unsigned bm_pci_bus_number(const bm_pci_bus *bus);
/* The containers the bus's BARs are mapped into ("BB:DD.F/mem", "BB:DD.F/io" for a
 * bridge's secondary side). */
BM_API bm_region *bm_pci_bus_mem_region(const bm_pci_bus *bus);
BM_API bm_region *bm_pci_bus_io_region(const bm_pci_bus *bus);

/* A bridge's forwarding windows as its registers and command bits decode them. */
struct bm_pci_window {
	bool enabled; /* forwarding (command enable bit set and base <= limit) */
	uint64_t base;
	uint64_t last;
};
enum bm_pci_window_kind {
	BM_PCI_WINDOW_IO,
	BM_PCI_WINDOW_MEM,
	BM_PCI_WINDOW_PREF,
};
/* -EINVAL if f is not a bridge. */
BM_API int bm_pci_bridge_window(bm_pci_func *f, enum bm_pci_window_kind kind,
                                struct bm_pci_window *out);

/*
 * Device-side register access: reads and writes the register file directly, without masks,
 * hooks or BAR updates (a device sets its status bits, device-specific read-only values).
 * Bytes outside the configuration space are ignored (read as 0xff).
 */
BM_API uint32_t bm_pci_func_cfg_get(bm_pci_func *f, unsigned reg, unsigned size);
BM_API void bm_pci_func_cfg_set(bm_pci_func *f, unsigned reg, unsigned size, uint32_t value);
/* Sets the guest-writable and write-1-to-clear masks of [reg, reg + size), for device-
 * specific registers. */
BM_API void bm_pci_func_cfg_set_masks(bm_pci_func *f, unsigned reg, unsigned size, uint32_t wmask,
                                      uint32_t w1cmask);

#ifdef __cplusplus
}
#endif
#endif
