/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The board: busmap-vmm's machine as the command line describes it. Main thread only,
 * before the vCPUs start.
 */
#ifndef BUSMAP_VMM_BOARD_H
#define BUSMAP_VMM_BOARD_H

#include "cmdline.h"
#include "vmm.h"

/*
 * Adds to vm the chipset (i440FX with o->bios, PIIX3, RTC, UART at 0x3f8 writing to
 * serial_fd, fw_cfg) and every device of o (isa-debugcon i writing to debugcon_fds[i];
 * debugcon_fds may be NULL), loads o->kernel (with o->initrd and o->append) for a direct
 * boot, starts --trace-map and applies --bar-layout. Logs what failed through vm_log and
 * returns its negative errno; devices made so far stay registered with vm, which frees
 * them.
 */
int board_build(struct vm *vm, const struct vmm_options *o, int serial_fd, const int *debugcon_fds);

#endif
