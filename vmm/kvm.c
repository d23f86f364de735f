/* SPDX-License-Identifier: BSD-2-Clause */
/* KVM: the VM, its in-kernel irqchip and PIT, vCPU creation, and struct hv_ops on ioctls. */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Where KVM keeps the identity map and TSS that real-mode guests need on Intel: QEMU's
 * places, below the BIOS and above everything else we map (fw_cfg's e820 reserves them). */
#define KVM_IDENTITY_MAP VM_KVM_PAGES
#define KVM_TSS          (VM_KVM_PAGES + 0x1000)
#define PIT_HZ           1193182ull

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int set_memslot(void *hv, unsigned slot, uint64_t gpa, uint64_t size, void *hva,
                       bool readonly)
{
	struct kvm *k = hv;
	struct kvm_userspace_memory_region m = {
	    .slot = slot,
	    .flags = readonly ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)hva,
	};
	int r = xioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
	return r < 0 ? r : 0;
}

static int ioeventfd(void *hv, bool assign, bool pio, uint64_t addr, unsigned len, bool datamatch,
                     uint64_t data, int fd)
{
	struct kvm *k = hv;
	struct kvm_ioeventfd e = {
	    .datamatch = data,
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
	             (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
	             (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	int r = xioctl(k->vm_fd, KVM_IOEVENTFD, &e);
	return r < 0 ? r : 0;
}

static int irq_line(void *hv, unsigned gsi, bool level)
{
	struct kvm *k = hv;
	struct kvm_irq_level l = {.irq = gsi, .level = level};
	int r = xioctl(k->vm_fd, KVM_IRQ_LINE, &l);
	return r < 0 ? r : 0;
}

static int msi(void *hv, uint64_t addr, uint32_t data)
{
	struct kvm *k = hv;
	struct kvm_msi m = {
	    .address_lo = (uint32_t)addr,
	    .address_hi = (uint32_t)(addr >> 32),
	    .data = data,
	};
	int r = xioctl(k->vm_fd, KVM_SIGNAL_MSI, &m);
	return r < 0 ? r : 0; /* 0: the message was blocked by the guest, not an error */
}

static unsigned max_memslots(void *hv)
{
	return ((struct kvm *)hv)->max_slots;
}

/* The output of channel 2 computed from the kernel PIT's count and load time (ktime, the
 * monotonic clock), in the modes firmware uses. Setting the gate would need KVM_SET_PIT2,
 * which reloads every counter, so the gate stays as KVM has it. */
static int pit2_out(void *hv, bool *out)
{
	struct kvm *k = hv;
	struct kvm_pit_state2 ps;
	int r = xioctl(k->vm_fd, KVM_GET_PIT2, &ps);
	if (r < 0)
		return r;
	const struct kvm_pit_channel_state *c = &ps.channels[2];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - c->count_load_time;
	uint64_t count = c->count ? c->count : 0x10000;
	uint64_t ticks = ns > 0 ? (uint64_t)ns * PIT_HZ / 1000000000ull : 0;
	switch (c->mode) {
	case 0: /* interrupt on terminal count */
	case 1:
		*out = ticks >= count;
		break;
	case 2:
	case 6: /* rate generator: low for one tick per period */
		*out = ticks % count != count - 1;
		break;
	case 3:
	case 7: /* square wave */
		*out = ticks % count < (count + 1) / 2;
		break;
	default: /* strobes: high but for the tick at the count */
		*out = ticks != count;
		break;
	}
	return 0;
}

const struct hv_ops kvm_hv_ops = {
    .set_memslot = set_memslot,
    .ioeventfd = ioeventfd,
    .irq_line = irq_line,
    .msi = msi,
    .max_memslots = max_memslots,
    .pit2_out = pit2_out,
};

static int get_cpuid(struct kvm *k)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		int r = xioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r >= 0) {
			k->cpuid = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

static const struct {
	long cap;
	const char *what;
} needed_caps[] = {
    {KVM_CAP_IRQCHIP, "an in-kernel irqchip (KVM_CAP_IRQCHIP)"},
    {KVM_CAP_PIT2, "an in-kernel PIT (KVM_CAP_PIT2)"},
    {KVM_CAP_USER_MEMORY, "user memory slots (KVM_CAP_USER_MEMORY)"},
    {KVM_CAP_READONLY_MEM, "read-only memory slots (KVM_CAP_READONLY_MEM)"},
    {KVM_CAP_IOEVENTFD, "ioeventfd (KVM_CAP_IOEVENTFD)"},
    {KVM_CAP_SIGNAL_MSI, "MSI injection (KVM_CAP_SIGNAL_MSI)"},
    {KVM_CAP_EXT_CPUID, "KVM_GET_SUPPORTED_CPUID (KVM_CAP_EXT_CPUID)"},
};

static int fail(char *why, size_t n, int err, const char *fmt, const char *arg)
{
	snprintf(why, n, fmt, arg, strerror(-err));
	return err;
}

static int create_vm(struct kvm *k, char *why, size_t n)
{
	int r = xioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (r < 0)
		return fail(why, n, r, "%sKVM_CREATE_VM failed: %s", "");
	k->vm_fd = r;
	r = xioctl(k->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS);
	if (r < 0)
		return fail(why, n, r, "%sKVM_SET_TSS_ADDR failed: %s", "");
	uint64_t idmap = KVM_IDENTITY_MAP;
	if (xioctl(k->sys_fd, KVM_CHECK_EXTENSION,
	           (void *)(uintptr_t)KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		r = xioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
		if (r < 0)
			return fail(why, n, r, "%sKVM_SET_IDENTITY_MAP_ADDR failed: %s", "");
	}
	r = xioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (r < 0)
		return fail(why, n, r, "%sKVM_CREATE_IRQCHIP failed: %s", "");
	struct kvm_pit_config pit = {.flags = 0};
	r = xioctl(k->vm_fd, KVM_CREATE_PIT2, &pit);
	if (r < 0)
		return fail(why, n, r, "%sKVM_CREATE_PIT2 failed: %s", "");
	return 0;
}

int kvm_open(struct kvm *k, const char *path, char *why, size_t n)
{
	*k = (struct kvm){.sys_fd = -1, .vm_fd = -1};
	k->sys_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0)
		return fail(why, n, -errno, "cannot open %s: %s", path);
	int r = xioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		snprintf(why, n, "%s speaks KVM API version %d, not %d", path, r, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++) {
		if (xioctl(k->sys_fd, KVM_CHECK_EXTENSION, (void *)needed_caps[i].cap) <= 0) {
			snprintf(why, n, "KVM at %s lacks %s", path, needed_caps[i].what);
			return -ENOTSUP;
		}
	}
	r = xioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		return fail(why, n, r < 0 ? r : -EINVAL, "%sKVM_GET_VCPU_MMAP_SIZE failed: %s", "");
	k->run_size = (size_t)r;
	r = xioctl(k->sys_fd, KVM_CHECK_EXTENSION, (void *)KVM_CAP_NR_MEMSLOTS);
	k->max_slots = r > 0 ? (unsigned)r : 32;
	r = xioctl(k->sys_fd, KVM_CHECK_EXTENSION, (void *)KVM_CAP_MAX_VCPUS);
	k->max_vcpus = r > 0 ? (unsigned)r : 1;
	r = get_cpuid(k);
	if (r < 0)
		return fail(why, n, r, "%sKVM_GET_SUPPORTED_CPUID failed: %s", "");
	return create_vm(k, why, n);
}

void kvm_close(struct kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	free(k->cpuid);
	*k = (struct kvm){.sys_fd = -1, .vm_fd = -1};
}

/* The supported CPUID with this vCPU's APIC id where the guest looks for it. */
static int set_cpuid(struct kvm *k, int fd, unsigned id)
{
	size_t len = sizeof(*k->cpuid) + k->cpuid->nent * sizeof(k->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(len);
	if (!c)
		return -ENOMEM;
	memcpy(c, k->cpuid, len);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | (id << 24);
			/* "Running on a hypervisor", as QEMU says: Linux then looks for KVM's clock
			 * instead of calibrating the TSC against the PIT, which is unreliable
			 * when every port access is an exit. */
			e->ecx |= 1u << 31;
		} else if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
	int r = xioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	return r < 0 ? r : 0;
}

int kvm_vcpu_create(struct kvm *k, unsigned id, int *fd, struct kvm_run **run)
{
	int r = xioctl(k->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
	if (r < 0)
		return r;
	int vfd = r;
	r = set_cpuid(k, vfd, id);
	if (r < 0) {
		close(vfd);
		return r;
	}
	void *p = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vfd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(vfd);
		return r;
	}
	*fd = vfd;
	*run = p;
	return 0;
}
