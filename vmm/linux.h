/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Direct Linux boot (QEMU's -kernel, -initrd, -append): a bzImage entered through the x86
 * boot protocol's 32-bit entry point, with no firmware code running before it.
 */
#ifndef BUSMAP_VMM_LINUX_H
#define BUSMAP_VMM_LINUX_H

#include "vmm.h"

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

/* Where the loader puts things in guest memory. */
#define LINUX_GDT       0x6000ull   /* the boot GDT: flat code at 0x10, flat data at 0x18 */
#define LINUX_ZERO_PAGE 0x7000ull   /* struct boot_params, 4 KiB */
#define LINUX_CMDLINE   0x20000ull  /* the command line, NUL-terminated */
#define LINUX_KERNEL    0x100000ull /* the bzImage's protected-mode part (its 32-bit entry) */

/*
 * Checks, before the machine exists, that kernel is a bzImage this loader can start (the
 * "HdrS" header, boot protocol 2.06 or later, loadable at 1 MiB or relocatable), that
 * initrd (NULL: none) is a readable file, that append (NULL: empty) fits the kernel's
 * command line, and that kernel and initrd fit in ram_size bytes of guest RAM. Returns 0,
 * or -EINVAL with what is wrong in err.
 */
int linux_check(const char *kernel, const char *initrd, const char *append, uint64_t ram_size,
                char *err, size_t errlen);

/*
 * Loads kernel and initrd into vm's RAM, writes the zero page (setup header, e820 map
 * from vm's layout, command line, initrd), and installs vm->setup_boot_cpu so that vCPU 0
 * starts at the kernel's 32-bit entry. Main thread, before the vCPUs start; the files are
 * checked again (they may have changed since linux_check). Logs what failed through
 * vm_log and returns a negative errno.
 */
int linux_load(struct vm *vm, const char *kernel, const char *initrd, const char *append);

/*
 * vCPU 0's state at the 32-bit entry, applied over what KVM_GET_SREGS returned: flat
 * 32-bit segments from the boot GDT, protected mode without paging, interrupts off,
 * ESI = the zero page, EIP = the kernel.
 */
void linux_boot_regs(struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
