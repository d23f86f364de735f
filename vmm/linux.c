/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Direct Linux boot: a bzImage's protected-mode part at 1 MiB, its initrd high in RAM, and
 * a zero page saying where everything is, for the boot protocol's 32-bit entry (linux.h).
 */
#include "linux.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The setup header: the same offsets in the bzImage and in struct boot_params. */
#define HDR_START           0x1f1
#define HDR_SETUP_SECTS     0x1f1
#define HDR_JUMP_DISP       0x201 /* the header ends at 0x202 plus this byte */
#define HDR_MAGIC           0x202
#define HDR_VERSION         0x206
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_CODE32_START    0x214
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21c
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGN    0x230
#define HDR_RELOCATABLE     0x234
#define HDR_CMDLINE_SIZE    0x238
#define HDR_PREF_ADDRESS    0x258
#define HDR_INIT_SIZE       0x260

/* struct boot_params outside the setup header. */
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE   0x2d0
#define BP_E820_MAX     128
#define BP_SIZE         4096

#define LOADED_HIGH      0x01
#define CAN_USE_HEAP     0x80
#define LOADER_UNDEFINED 0xff   /* type_of_loader of a loader without an assigned id */
#define HEAP_END         0xde00 /* only the 16-bit setup code, which does not run, uses it */

#define HEAD_SIZE   1024 /* more than the longest setup header (0x202 + 255 bytes) */
#define LOW_RAM_END 0x9fc00ull
#define ONE_MIB     0x100000ull
#define CMDLINE_MAX 0xffffu /* bytes before the NUL; the area ends below 0x30000 */
#define PAGE_MASK   0xfffull

#define E820_RAM      1
#define E820_RESERVED 2

struct plan {
	uint8_t head[HEAD_SIZE]; /* the bzImage's first bytes: boot sector and setup header */
	size_t hdr_end;
	uint64_t setup_size;  /* bytes of 16-bit setup code before the protected-mode part */
	uint64_t kernel_size; /* the protected-mode part */
	uint64_t kernel_end;  /* RAM the kernel needs from 1 MiB before it reads the e820 map */
	uint64_t initrd_addr;
	uint64_t initrd_size;
};

static uint64_t get(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = bytes; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void put(uint8_t *p, unsigned bytes, uint64_t v)
{
	for (unsigned i = 0; i < bytes; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Reads len bytes at off, or fewer at the end of the file; -errno on a read error. */
static int64_t read_at(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint64_t got = 0;
	while (got < len) {
		size_t chunk = len - got > (1u << 30) ? (1u << 30) : (size_t)(len - got);
		ssize_t r = pread(fd, (uint8_t *)buf + got, chunk, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (uint64_t)r;
	}
	return (int64_t)got;
}

static int open_file(const char *what, const char *path, uint64_t *size, char *err, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vmm_refuse(err, n, "cannot read %s '%s': %s", what, path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return vmm_refuse(err, n, "%s '%s' is not a regular file", what, path);
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static uint64_t mib_up(uint64_t bytes)
{
	return (bytes >> 20) + !!(bytes & (ONE_MIB - 1));
}

/* Where the kernel decompresses itself: the boot protocol's rule for its runtime start. */
static uint64_t runtime_end(const struct plan *p, uint16_t version)
{
	uint64_t end = LINUX_KERNEL + p->kernel_size;
	if (version < 0x20a)
		return end; /* no pref_address or init_size to tell */
	uint64_t pref = get(p->head + HDR_PREF_ADDRESS, 8);
	uint64_t align = get(p->head + HDR_KERNEL_ALIGN, 4);
	uint64_t init = get(p->head + HDR_INIT_SIZE, 4);
	/* Beyond 4 GiB nothing fits anyway; stopping there keeps the sums from wrapping. */
	if (pref > (1ull << 32) || init > (1ull << 32))
		return UINT64_MAX;
	uint64_t start = pref;
	if (p->head[HDR_RELOCATABLE]) {
		start = pref > LINUX_KERNEL ? pref : LINUX_KERNEL;
		if (align && !(align & (align - 1)))
			start = (start + align - 1) & ~(align - 1);
	}
	if (start + init > (1ull << 32))
		return UINT64_MAX;
	return start + init > end ? start + init : end;
}

static int probe_kernel(int fd, const char *path, uint64_t file_size, struct plan *p, char *err,
                        size_t n)
{
	memset(p, 0, sizeof(*p));
	int64_t got = read_at(fd, p->head, HEAD_SIZE, 0);
	if (got < 0)
		return vmm_refuse(err, n, "cannot read kernel '%s': %s", path, strerror((int)-got));
	if (got < HDR_VERSION + 2 || memcmp(p->head + HDR_MAGIC, "HdrS", 4) != 0)
		return vmm_refuse(
		    err, n, "kernel '%s' is not a Linux bzImage (no \"HdrS\" setup header)", path);
	uint16_t version = (uint16_t)get(p->head + HDR_VERSION, 2);
	if (version < 0x206)
		return vmm_refuse(
		    err, n, "kernel '%s' speaks boot protocol %u.%02u; 2.06 or later is needed",
		    path, version >> 8, version & 0xff);
	p->hdr_end = 0x202u + p->head[HDR_JUMP_DISP];
	if (p->hdr_end < HDR_CMDLINE_SIZE + 4 || p->hdr_end > (uint64_t)got)
		return vmm_refuse(err, n, "kernel '%s': its setup header is truncated", path);
	if (!(p->head[HDR_LOADFLAGS] & LOADED_HIGH))
		return vmm_refuse(
		    err, n,
		    "kernel '%s' is a zImage, which loads at 64 KiB; only a bzImage (loaded "
		    "at 1 MiB) can be booted",
		    path);
	uint32_t code32 = (uint32_t)get(p->head + HDR_CODE32_START, 4);
	if (!p->head[HDR_RELOCATABLE] && code32 != LINUX_KERNEL)
		return vmm_refuse(
		    err, n,
		    "kernel '%s' is not relocatable and wants to be loaded at 0x%" PRIx32
		    ", not at 1 MiB",
		    path, code32);
	unsigned sects = p->head[HDR_SETUP_SECTS] ? p->head[HDR_SETUP_SECTS] : 4;
	p->setup_size = (sects + 1u) * 512u;
	if (file_size <= p->setup_size)
		return vmm_refuse(err, n,
		                  "kernel '%s' is truncated: nothing after its %" PRIu64
		                  " bytes of setup code",
		                  path, p->setup_size);
	p->kernel_size = file_size - p->setup_size;
	p->kernel_end = runtime_end(p, version);
	return 0;
}

/* Fits the kernel, the initrd (at the top of RAM below 4 GiB, as high as the kernel allows)
 * and the command line into a machine whose RAM below 4 GiB ends at below_4g. */
static int place(struct plan *p, uint64_t below_4g, uint64_t initrd_size, size_t append_len,
                 const char *kernel, const char *initrd, char *err, size_t n)
{
	if (p->kernel_end == UINT64_MAX)
		return vmm_refuse(err, n,
		                  "kernel '%s' wants to run above 4 GiB (pref_address, init_size)",
		                  kernel);
	if (p->kernel_end > below_4g)
		return vmm_refuse(err, n,
		                  "kernel '%s' needs %" PRIu64
		                  " MiB of RAM below 4 GiB to start; the "
		                  "machine has %" PRIu64 " MiB (-m)",
		                  kernel, mib_up(p->kernel_end), below_4g >> 20);
	uint64_t cmdline_size = get(p->head + HDR_CMDLINE_SIZE, 4);
	if (append_len > cmdline_size || append_len > CMDLINE_MAX)
		return vmm_refuse(
		    err, n, "-append: %zu bytes, but kernel '%s' takes at most %" PRIu64,
		    append_len, kernel, cmdline_size < CMDLINE_MAX ? cmdline_size : CMDLINE_MAX);
	p->initrd_size = initrd_size;
	p->initrd_addr = 0;
	if (!initrd_size)
		return 0;
	uint64_t top = get(p->head + HDR_INITRD_ADDR_MAX, 4) + 1;
	if (top > below_4g)
		top = below_4g;
	if (initrd_size > top || ((top - initrd_size) & ~PAGE_MASK) < p->kernel_end)
		return vmm_refuse(
		    err, n,
		    "initrd '%s' (%" PRIu64 " MiB) does not fit in RAM between the kernel "
		    "(up to %" PRIu64 " MiB) and %" PRIu64 " MiB; give the machine more "
		    "memory (-m)",
		    initrd, mib_up(initrd_size), mib_up(p->kernel_end), top >> 20);
	p->initrd_addr = (top - initrd_size) & ~PAGE_MASK;
	return 0;
}

int linux_check(const char *kernel, const char *initrd, const char *append, uint64_t ram_size,
                char *err, size_t errlen)
{
	struct plan p;
	uint64_t size, initrd_size = 0;
	int fd = open_file("kernel", kernel, &size, err, errlen);
	if (fd < 0)
		return fd;
	int e = probe_kernel(fd, kernel, size, &p, err, errlen);
	close(fd);
	if (e)
		return e;
	if (initrd) {
		fd = open_file("initrd", initrd, &initrd_size, err, errlen);
		if (fd < 0)
			return fd;
		close(fd);
	}
	uint64_t below_4g = ram_size < VM_BELOW_4G_MAX ? ram_size : VM_BELOW_4G_MAX;
	return place(&p, below_4g, initrd_size, append ? strlen(append) : 0, kernel, initrd, err,
	             errlen);
}

/* ---- the zero page ---- */

static unsigned add_e820(uint8_t *table, unsigned i, uint64_t addr, uint64_t len, uint32_t type)
{
	if (!len || i == BP_E820_MAX)
		return i;
	uint8_t *e = table + i * 20u;
	put(e, 8, addr);
	put(e + 8, 8, len);
	put(e + 16, 4, type);
	return i + 1;
}

/* The machine's layout (vmm.h), in address order. */
static unsigned build_e820(const struct vm *vm, uint8_t *table)
{
	uint64_t low = vm->below_4g < LOW_RAM_END ? vm->below_4g : LOW_RAM_END;
	unsigned i = add_e820(table, 0, 0, low, E820_RAM);
	i = add_e820(table, i, LOW_RAM_END, ONE_MIB - LOW_RAM_END, E820_RESERVED);
	if (vm->below_4g > ONE_MIB)
		i = add_e820(table, i, ONE_MIB, vm->below_4g - ONE_MIB, E820_RAM);
	i = add_e820(table, i, VM_ECAM_BASE, VM_ECAM_SIZE, E820_RESERVED);
	i = add_e820(table, i, VM_KVM_PAGES, VM_KVM_PAGES_SIZE, E820_RESERVED);
	if (vm->ram_size > vm->below_4g)
		i = add_e820(table, i, VM_HIGH_RAM_BASE, vm->ram_size - vm->below_4g, E820_RAM);
	return i;
}

static void write_zero_page(struct vm *vm, const struct plan *p, uint8_t *zp)
{
	memset(zp, 0, BP_SIZE);
	memcpy(zp + HDR_START, p->head + HDR_START, p->hdr_end - HDR_START);
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	zp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put(zp + HDR_HEAP_END_PTR, 2, HEAP_END);
	put(zp + HDR_CMD_LINE_PTR, 4, LINUX_CMDLINE);
	put(zp + HDR_RAMDISK_IMAGE, 4, p->initrd_addr);
	put(zp + HDR_RAMDISK_SIZE, 4, p->initrd_size);
	zp[BP_E820_ENTRIES] = (uint8_t)build_e820(vm, zp + BP_E820_TABLE);
}

/* Flat 4 GiB segments: null, null, code at 0x10, data at 0x18 (the protocol's selectors). */
static void write_gdt(uint8_t *gdt)
{
	memset(gdt, 0, 32);
	put(gdt + 0x10, 8, 0x00cf9b000000ffffull); /* execute/read, accessed, 32-bit, 4 KiB units */
	put(gdt + 0x18, 8, 0x00cf93000000ffffull); /* read/write, accessed */
}

static int load_file(struct vm *vm, int fd, const char *what, const char *path, uint64_t gpa,
                     uint64_t len, uint64_t off)
{
	void *dst = vm_guest_ptr(vm, gpa, len);
	if (!dst) {
		vm_log(vm, "%s '%s' does not fit in guest RAM at 0x%" PRIx64, what, path, gpa);
		return -ENOMEM;
	}
	int64_t got = read_at(fd, dst, len, off);
	if (got < 0) {
		vm_log(vm, "cannot read %s '%s': %s", what, path, strerror((int)-got));
		return (int)got;
	}
	if ((uint64_t)got != len) {
		vm_log(vm, "%s '%s' got shorter while it was loaded", what, path);
		return -EIO;
	}
	return 0;
}

static int boot_cpu(void *arg, int vcpu_fd)
{
	(void)arg;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	linux_boot_regs(&regs, &sregs);
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int linux_load(struct vm *vm, const char *kernel, const char *initrd, const char *append)
{
	char err[512];
	struct plan p;
	uint64_t size, initrd_size = 0;
	int initrd_fd = -1;
	int fd = open_file("kernel", kernel, &size, err, sizeof(err));
	int e = fd < 0 ? fd : probe_kernel(fd, kernel, size, &p, err, sizeof(err));
	if (!e && initrd &&
	    (initrd_fd = open_file("initrd", initrd, &initrd_size, err, sizeof(err))) < 0)
		e = initrd_fd;
	size_t append_len = append ? strlen(append) : 0;
	if (!e)
		e = place(&p, vm->below_4g, initrd_size, append_len, kernel, initrd, err,
		          sizeof(err));
	if (e)
		vm_log(vm, "%s", err);
	if (!e)
		e = load_file(vm, fd, "kernel", kernel, LINUX_KERNEL, p.kernel_size, p.setup_size);
	if (!e && p.initrd_size)
		e = load_file(vm, initrd_fd, "initrd", initrd, p.initrd_addr, p.initrd_size, 0);
	if (fd >= 0)
		close(fd);
	if (initrd_fd >= 0)
		close(initrd_fd);
	if (e)
		return e;

	uint8_t *zp = vm_guest_ptr(vm, LINUX_ZERO_PAGE, BP_SIZE);
	uint8_t *cmdline = vm_guest_ptr(vm, LINUX_CMDLINE, append_len + 1);
	uint8_t *gdt = vm_guest_ptr(vm, LINUX_GDT, 32);
	if (!zp || !cmdline || !gdt) {
		vm_log(vm, "guest RAM is too small for the boot data below 1 MiB");
		return -ENOMEM;
	}
	write_zero_page(vm, &p, zp);
	memcpy(cmdline, append ? append : "", append_len + 1);
	write_gdt(gdt);
	vm->setup_boot_cpu = boot_cpu;
	vm->setup_boot_cpu_arg = NULL;
	return 0;
}

/* ---- vCPU 0 ---- */

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	*s = (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = selector,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = 1,
	    .s = 1,
	    .g = 1,
	};
}

void linux_boot_regs(struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	flat_segment(&sregs->cs, 0x10, 0xb);
	flat_segment(&sregs->ds, 0x18, 0x3);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->gdt.base = LINUX_GDT;
	sregs->gdt.limit = 32 - 1;
	/* No IDT until the kernel loads its own: a fault before that is a clean triple fault. */
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = 0x11; /* PE, ET; paging off */
	sregs->cr3 = 0;
	sregs->cr4 = 0;
	sregs->efer = 0;
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2; /* IF clear */
	regs->rip = LINUX_KERNEL;
	regs->rsi = LINUX_ZERO_PAGE;
}
