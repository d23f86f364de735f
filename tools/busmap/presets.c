/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Device presets. Sizes and IDs follow what the hypervisors present:
 * - legacy (0.9.5) virtio: vendor 0x1af4, device 0x1000 + type - 1, subsystem device = the
 *   virtio type; BAR0 is the I/O register block, rounded up to a power of two (64 bytes for
 *   net, 128 for blk). bhyve adds MSI-X in BAR1 (table 4 KiB-aligned, PBA after it, so an
 *   8 KiB BAR); QEMU adds MSI-X in a 4 KiB BAR1 (table at 0, PBA at 0x800) and, for
 *   virtio-net, a 256 KiB option ROM. The plain names carry BAR0 only, as in the report that
 *   motivated busmap.
 * - virtio 1.0: device 0x1040 + type, revision 1, MSI-X in BAR1 and the capability
 *   structures in a 64-bit prefetchable BAR4 of 16 KiB (QEMU's layout).
 * - NVMe: QEMU's controller, registers and doorbells in a 64-bit BAR0 of 16 KiB with the
 *   MSI-X table at 0x2000 and the PBA after it; a PCI Express endpoint.
 * - bridges: QEMU's pci-bridge (SHPC registers in a 64-bit BAR0) and pcie-root-port.
 */
#include "presets.h"

#include <errno.h>
#include <string.h>

#define VIRTIO_VENDOR 0x1af4
#define QEMU_VENDOR   0x1b36

#define CLASS_NET  0x020000
#define CLASS_SCSI 0x010000
#define CLASS_NVME 0x010802
#define CLASS_P2P  0x060400

struct preset {
	struct preset_info info;
	struct scn_device d;
};

#define IO(sz)                                                                                     \
	{                                                                                          \
		.type = BM_PCI_BAR_IO, .size = (sz)                                                \
	}
#define MEM32(sz)                                                                                  \
	{                                                                                          \
		.type = BM_PCI_BAR_MEM32, .size = (sz)                                             \
	}
#define MEM64(sz, pref)                                                                            \
	{                                                                                          \
		.type = BM_PCI_BAR_MEM64, .size = (sz), .prefetchable = (pref)                     \
	}

#define LEGACY_NET                                                                                 \
	.vendor_id = VIRTIO_VENDOR, .device_id = 0x1000, .subsys_vendor = VIRTIO_VENDOR,           \
	.subsys_id = 1, .class_code = CLASS_NET, .intx_pin = 1
#define LEGACY_BLK                                                                                 \
	.vendor_id = VIRTIO_VENDOR, .device_id = 0x1001, .subsys_vendor = VIRTIO_VENDOR,           \
	.subsys_id = 2, .class_code = CLASS_SCSI, .intx_pin = 1

static const struct preset presets[] = {
    {{"virtio-net-legacy", "legacy virtio-net: BAR0 I/O 64 bytes"},
     {LEGACY_NET, .label = "virtio-net", .bars = {IO(64)}}},
    {{"virtio-blk-legacy", "legacy virtio-blk: BAR0 I/O 128 bytes"},
     {LEGACY_BLK, .label = "virtio-blk", .bars = {IO(128)}}},
    {{"bhyve-virtio-net-legacy", "bhyve's virtio-net: BAR0 I/O 64, BAR1 MSI-X 8K"},
     {LEGACY_NET, .label = "virtio-net", .bars = {IO(64), MEM32(8192)}, .msix_vectors = 3,
      .msix_table_bar = 1, .msix_pba_bar = 1, .msix_pba_off = 0x1000}},
    {{"bhyve-virtio-blk-legacy", "bhyve's virtio-blk: BAR0 I/O 128, BAR1 MSI-X 8K"},
     {LEGACY_BLK, .label = "virtio-blk", .bars = {IO(128), MEM32(8192)}, .msix_vectors = 2,
      .msix_table_bar = 1, .msix_pba_bar = 1, .msix_pba_off = 0x1000}},
    {{"qemu-virtio-net-legacy", "QEMU's virtio-net (disable-modern=on): I/O 64, MSI-X 4K, ROM"},
     {LEGACY_NET, .label = "virtio-net", .bars = {IO(64), MEM32(4096)}, .rom_size = 256 << 10,
      .msix_vectors = 4, .msix_table_bar = 1, .msix_pba_bar = 1, .msix_pba_off = 0x800}},
    {{"qemu-virtio-blk-legacy", "QEMU's virtio-blk (disable-modern=on): I/O 128, MSI-X 4K"},
     {LEGACY_BLK, .label = "virtio-blk", .bars = {IO(128), MEM32(4096)}, .msix_vectors = 2,
      .msix_table_bar = 1, .msix_pba_bar = 1, .msix_pba_off = 0x800}},
    {{"virtio-net-modern", "virtio 1.0 net: MSI-X in BAR1 4K, BAR4 64-bit pref 16K, ROM"},
     {.vendor_id = VIRTIO_VENDOR,
      .device_id = 0x1041,
      .revision = 1,
      .subsys_vendor = VIRTIO_VENDOR,
      .subsys_id = 0x1100,
      .class_code = CLASS_NET,
      .intx_pin = 1,
      .label = "virtio-net",
      .bars = {[1] = MEM32(4096), [4] = MEM64(16384, true)},
      .rom_size = 256 << 10,
      .msix_vectors = 4,
      .msix_table_bar = 1,
      .msix_pba_bar = 1,
      .msix_pba_off = 0x800}},
    {{"virtio-blk-modern", "virtio 1.0 blk: MSI-X in BAR1 4K, BAR4 64-bit pref 16K"},
     {.vendor_id = VIRTIO_VENDOR,
      .device_id = 0x1042,
      .revision = 1,
      .subsys_vendor = VIRTIO_VENDOR,
      .subsys_id = 0x1100,
      .class_code = CLASS_SCSI,
      .intx_pin = 1,
      .label = "virtio-blk",
      .bars = {[1] = MEM32(4096), [4] = MEM64(16384, true)},
      .msix_vectors = 2,
      .msix_table_bar = 1,
      .msix_pba_bar = 1,
      .msix_pba_off = 0x800}},
    {{"nvme", "NVMe controller: BAR0 64-bit 16K with MSI-X at 0x2000, PCI Express"},
     {.vendor_id = QEMU_VENDOR,
      .device_id = 0x0010,
      .revision = 2,
      .subsys_vendor = 0x1af4,
      .subsys_id = 0x1100,
      .class_code = CLASS_NVME,
      .intx_pin = 1,
      .pcie = true,
      .label = "nvme",
      .bars = {MEM64(16384, false)},
      .msix_vectors = 65,
      .msix_table_bar = 0,
      .msix_table_off = 0x2000,
      .msix_pba_bar = 0,
      .msix_pba_off = 0x2410}},
    {{"pci-bridge", "PCI-to-PCI bridge (QEMU pci-bridge): BAR0 64-bit 256 bytes"},
     {.vendor_id = QEMU_VENDOR,
      .device_id = 0x0001,
      .class_code = CLASS_P2P,
      .intx_pin = 1,
      .bridge = true,
      .label = "pci-bridge",
      .bars = {MEM64(256, false)}}},
    {{"pcie-root-port", "PCI Express root port (QEMU pcie-root-port), no BARs"},
     {.vendor_id = QEMU_VENDOR,
      .device_id = 0x000c,
      .class_code = CLASS_P2P,
      .intx_pin = 1,
      .bridge = true,
      .pcie = true,
      .label = "pcie-root-port"}},
};

#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

int preset_apply(const char *name, size_t len, struct scn_device *d)
{
	for (size_t i = 0; i < NPRESETS; i++) {
		const char *n = presets[i].info.name;
		if (strlen(n) == len && memcmp(n, name, len) == 0) {
			struct scn_bdf keep = d->bdf;
			*d = presets[i].d;
			d->bdf = keep;
			memcpy(d->preset, n, len + 1);
			return 0;
		}
	}
	return -ENOENT;
}

const struct preset_info *preset_at(size_t i)
{
	return i < NPRESETS ? &presets[i].info : NULL;
}
