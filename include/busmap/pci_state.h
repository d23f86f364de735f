/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Saving and restoring the whole state of a PCI host, for snapshots and live migration.
 *
 * A VMM saves the PCI layer with bm_pci_host_save, builds the same machine again (here or on
 * another host: the same host configuration, the same functions at the same places in the
 * tree, created with the same descriptors and capabilities) and restores into it with
 * bm_pci_host_restore. The restored host then answers every configuration read as the saved
 * one did, its MSI-X tables read the same, and its map is the same: the same BARs and bridge
 * windows decoded at the same addresses, and where they overlap, the same one on top.
 *
 * What is saved:
 * - every byte of every function's configuration space, as the registers hold it: BARs in
 *   the middle of sizing or with one half of a 64-bit BAR written, bus numbers, bridge
 *   windows, the command and status registers, MSI and MSI-X capability registers
 *   (addresses, data, masks, pending bits, enable bits);
 * - each MSI-X table and pending-bit array;
 * - each function's INTx line level;
 * - the order in which BARs and bridge windows were placed, which decides which one wins
 *   where they overlap (the newest placement does);
 * - the CF8/CFC address latch.
 * What is not: the device models' own state (their regions, anything their cfg_read and
 * cfg_write hooks keep), hooks and the map observer. The VMM saves and restores device
 * models itself, and builds the target with the same ones.
 *
 * Why the map is not saved: it follows from the registers. Restore writes the registers
 * and derives the map from them with the same decoding a guest write triggers (BARs, the
 * expansion ROM, bridge windows, the INTx line the host sees), then puts the placements back
 * in their saved order. So a blob can never produce a map its registers do not describe.
 *
 * Threads: both calls take the system's writer lock through a transaction, like every call
 * of busmap/pci.h, and may be called from any thread while vCPUs run, but not from a
 * listener or conflict callback (-EDEADLK), nor from a PCI hook (map observer, bar_map,
 * cfg_read, cfg_write, the host's msi and intx hooks), which run in the middle of a change.
 * - Save reads one consistent state: every configuration access of a guest happens wholly
 *   before or wholly after it.
 * - Restore is one transaction: a vCPU dispatching meanwhile sees the old map or the new
 *   one, never a mix, and configuration accesses see the old registers or the new ones.
 *   Call it outside any transaction of your own, so that it publishes (or fails) by itself;
 *   inside one, it publishes with your bm_commit, which reports a failure as it does for
 *   any change.
 *
 * What a restore does besides the registers, once it is published: for each BAR whose
 * placement changed, the map observer and the device's bar_map hook see "unmapped old" then
 * "mapped new", as after a guest write; the host's intx hook sees each line whose level at
 * the host bridge changed (and the status register's interrupt bit follows the restored
 * level, as always). It sends no MSI or MSI-X message: vectors held pending stay pending,
 * and are sent when the guest unmasks them, as they would have been. Device cfg_write hooks
 * are not called. A restore that fails tells no hook anything.
 *
 * Guarantees of restore: the whole blob is checked before anything is touched: its length,
 * magic, checksum and version, the range of every field, that its fields agree with each
 * other (the identity registers, the BARs' and bridge windows' read-only type bits, the
 * MSI and MSI-X capabilities with what the topology part declares), and its topology
 * against the target's. A blob that fails any check is refused with the target untouched.
 * The apply itself is one transaction: if it runs out of memory or its publication fails,
 * every function and the map are put back as they were.
 *
 * The format (version BM_PCI_STATE_VERSION): little-endian, fixed-width fields, no padding.
 *
 *   header     8  magic "BMPCIST\0"
 *              4  format version
 *              4  flags, 0
 *              8  total length of the blob in bytes, this header and the checksum included
 *              4  number of functions N
 *              4  reserved, 0
 *   host       4  flags: 1 port space, 2 CF8/CFC, 4 ECAM, 8 BARs at 0 decode
 *              4  priority of "pci-mem" (signed)     4  priority of "pci-io" (signed)
 *              2  first ECAM bus                     2  ECAM bus count (0 without ECAM)
 *              8  I/O limit    8  I/O window base    8  I/O window size    8  ECAM base
 *   N functions, in bm_pci_func_next order (depth first, by device and function number):
 *              4  index of the bridge whose secondary bus holds it, 0xffffffff: bus 0
 *              1  device << 3 | function              1  header type register
 *              1  interrupt pin register
 *              1  bridge windows with upper registers: 1 I/O (32-bit), 2 prefetchable (64-bit)
 *              2  vendor ID    2  device ID           2  configuration space size
 *              2  end of the capability list          2  end of the extended list
 *              2  reserved, 0
 *              7 x (1 BAR type: 0 none, 1 I/O, 2 32-bit, 3 64-bit (the ROM: 2)
 *                   1 flags: 1 prefetchable           8 size)        BARs 0..5, ROM
 *              2  MSI capability offset (0: none)     1  MSI vectors
 *              1  MSI flags: 1 64-bit address, 2 per-vector masking
 *              2  MSI-X capability offset (0: none)   2  MSI-X vectors
 *              1  table BAR    1  PBA BAR             2  reserved, 0
 *              4  table offset                        4  PBA offset
 *              4  CRC-32 of the guest-writable mask bytes, then the write-1-to-clear ones
 *   state      4  CF8/CFC address latch
 *   N function states, in the same order:
 *              configuration space, as many bytes as its size
 *              1  INTx line level: 0 or 1 (1 only with an interrupt pin)
 *              3  reserved, 0
 *              7 x 4  placement rank of BARs 0..5 and the ROM: 0 when not decoded, else
 *                 its place in the order of placement, 1 the oldest, unique in the blob
 *              bridges: 3 x 4  the same for the I/O, memory and prefetchable windows
 *              with MSI-X: 16 bytes per vector (four 32-bit words, as the table reads),
 *                 then 8 bytes of pending bits per 64 vectors
 *   checksum   4  CRC-32 (IEEE 802.3, as zlib's crc32) of every byte before it
 *
 * The first 24 bytes and the checksum at the end keep their place in every version, so an
 * intact blob of another version is told apart from a damaged one. The topology part is
 * what restore compares with the target: everything that defines the functions, including
 * their register masks (as a digest). Which function is which follows from its place in the
 * tree, not from bus numbers, which are guest state.
 */
#ifndef BUSMAP_PCI_STATE_H
#define BUSMAP_PCI_STATE_H

#include <busmap/pci.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The format version bm_pci_host_save writes and the only one bm_pci_host_restore reads. */
#define BM_PCI_STATE_VERSION 1

/*
 * Writes the host's state into buf (cap bytes) and its length into *len. When cap is too
 * small (buf may then be NULL and cap 0, to ask for the size), returns -ENOSPC with *len set
 * to the length needed; the size can grow between two calls if functions are added
 * meanwhile. Changes nothing. Returns 0, -EINVAL (NULL host or len, NULL buf with cap > 0),
 * -ENOSPC, -ENOMEM, -EDEADLK (from a listener or conflict callback).
 */
BM_API int bm_pci_host_save(bm_pci_host *host, void *buf, size_t cap, size_t *len);

/*
 * Restores a state written by bm_pci_host_save into a host of the same topology (see
 * above). buf must not change during the call. Returns 0, or, with the host untouched:
 * -EINVAL    NULL host or buf;
 * -EBADMSG   not an intact blob: truncated, trailing bytes, wrong magic, length or checksum;
 *            or intact but malformed (a field out of range, a reserved field not 0, fields
 *            that contradict each other);
 * -EPROTONOSUPPORT  an intact blob of a format version this library does not read;
 * -ESTALE    an intact blob of another topology: the host configuration, the number of
 *            functions or their places in the tree, or a function's IDs, header, size of
 *            configuration space, BARs, capabilities, MSI or MSI-X geometry or register
 *            masks differ from the target's;
 * -ENOMEM, -EDEADLK (from a listener or conflict callback), or the error of the
 *            publication.
 */
BM_API int bm_pci_host_restore(bm_pci_host *host, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
