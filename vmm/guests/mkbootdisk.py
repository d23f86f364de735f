#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Builds bootdisk.img from the assembled boot sector and stage 2.

usage: mkbootdisk.py BOOTSECT.bin STAGE2.bin OUTPUT [--sectors N] [--ecam-optional]

Layout (LBA): 0 boot sector, 1.. stage 2, PAT_A_LBA.. pattern area A (64 sectors),
the last 16 sectors pattern area B, zeros elsewhere. The boot sector's disk information
block (offset 0x1a0) tells the guest all of it, so it can check what int 13h returns and
what virtio-blk reports as its capacity on any VMM.
"""
import argparse
import struct
import sys

SECTOR = 512
INFO_OFFSET = 0x1A0
INFO_MAGIC = b"BMDI"
STAGE2_MAGIC = b"BMS2"
PAT_MAGIC = 0x54504D42  # "BMPT"
MAX_STAGE2_SECTORS = 48  # bootsect.s refuses more
PAT_A_LBA = 50  # its first half, read through CHS, crosses the end of track 0 (LBA 63)
PAT_A_COUNT = 64
PAT_B_COUNT = 16
FLAG_ECAM_REQUIRED = 1


def pattern_sector(lba):
    """512 bytes: LBA, magic, filler, and a last dword making the 128 dwords sum to 0."""
    words = [lba, PAT_MAGIC]
    words += [(lba * 0x9E3779B1 + i * 0x85EBCA77) & 0xFFFFFFFF for i in range(2, 127)]
    words.append(-sum(words) & 0xFFFFFFFF)
    return struct.pack("<128I", *words)


def build(boot, stage2, sectors, ecam_required):
    if len(boot) != SECTOR or boot[510:512] != b"\x55\xaa":
        raise ValueError("the boot sector must be 512 bytes ending in 55 aa")
    if boot[INFO_OFFSET:INFO_OFFSET + 20] != bytes(20):
        raise ValueError("the boot sector's information block is not empty")
    if stage2[:4] != STAGE2_MAGIC:
        raise ValueError("stage 2 does not start with its magic")
    s2_sectors = -(-len(stage2) // SECTOR)
    if s2_sectors > MAX_STAGE2_SECTORS or 1 + s2_sectors > PAT_A_LBA:
        raise ValueError(f"stage 2 takes {s2_sectors} sectors, at most "
                         f"{min(MAX_STAGE2_SECTORS, PAT_A_LBA - 1)} fit")
    # SeaBIOS gives disks under 1008 sectors no cylinder: CHS reads would fail.
    if sectors < 2048 or sectors > 0xFFFF:
        raise ValueError("the disk must have 2048..65535 sectors")
    stage2 = stage2 + bytes(s2_sectors * SECTOR - len(stage2))
    s2_sum = sum(struct.unpack(f"<{len(stage2) // 2}H", stage2)) & 0xFFFF

    info = INFO_MAGIC + struct.pack("<IHHHHHH", sectors, s2_sectors, s2_sum, PAT_A_LBA,
                                    PAT_A_COUNT, PAT_B_COUNT,
                                    FLAG_ECAM_REQUIRED if ecam_required else 0)
    boot = boot[:INFO_OFFSET] + info + boot[INFO_OFFSET + len(info):]

    image = bytearray(sectors * SECTOR)
    image[0:SECTOR] = boot
    image[SECTOR:SECTOR + len(stage2)] = stage2
    lbas = list(range(PAT_A_LBA, PAT_A_LBA + PAT_A_COUNT))
    lbas += list(range(sectors - PAT_B_COUNT, sectors))
    for lba in lbas:
        image[lba * SECTOR:(lba + 1) * SECTOR] = pattern_sector(lba)
    return bytes(image)


def main():
    ap = argparse.ArgumentParser(description="Build the busmap-vmm boot disk image.")
    ap.add_argument("bootsect")
    ap.add_argument("stage2")
    ap.add_argument("output")
    ap.add_argument("--sectors", type=int, default=4096)
    ap.add_argument("--ecam-optional", action="store_true",
                    help="let stage 2 skip its ECAM checks when it finds no ECAM")
    args = ap.parse_args()
    with open(args.bootsect, "rb") as f:
        boot = f.read()
    with open(args.stage2, "rb") as f:
        stage2 = f.read()
    try:
        image = build(boot, stage2, args.sectors, not args.ecam_optional)
    except ValueError as e:
        print(f"mkbootdisk.py: {e}", file=sys.stderr)
        return 1
    with open(args.output, "wb") as f:
        f.write(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
