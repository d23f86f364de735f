/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kvm-floor: the least a VMM can do per exit, as the floor of the end-to-end benchmark. A
 * KVM VM with busmap-vmm's memory shape (RAM at 0, the firmware ROM read-only at the reset
 * vector and at 0xf0000, an in-kernel irqchip so that APs take INIT and SIPI), one thread
 * per vCPU, and no devices: every port and MMIO exit is answered at once, reads with all
 * ones, except a write to port 0x501, which ends the process as isa-debug-exit does.
 *
 *   kvm-floor [-m MIB] [-smp N] -bios ROM
 *
 * Exit status: (v << 1) | 1 for a write of v to port 0x501, 1 on an error, 2 for a bad
 * command line, 4 when the guest shuts down (triple fault).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_PORT   0x501
#define ISA_BIOS    0xf0000ull /* where the last 64 KiB of the firmware also show */
#define LOW_RAM_END 0xf0000ull
#define HIGH_RAM    0x100000ull
#define ROM_SIZE    0x10000ull
#define TSS_ADDR    0xfeffd000ull /* busmap-vmm's and QEMU's place for KVM's TSS */
#define MAX_VCPUS   16
#define MAX_RAM_MIB 2048u /* below the PCI hole: no RAM above 4 GiB to lay out */
#define MAX_CPUID   256

struct vcpu {
	int fd;
	unsigned id;
	struct kvm_run *run;
	pthread_t thread;
};

static int kvm_fd, vm_fd;
static int run_size;

static void die(const char *what)
{
	fprintf(stderr, "kvm-floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fputs("usage: kvm-floor [-m MIB] [-smp N] -bios ROM\n", stderr);
	exit(2);
}

static unsigned parse_count(const char *s, unsigned max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v == 0 || v > max)
		usage();
	return (unsigned)v;
}

static void add_slot(unsigned slot, uint64_t gpa, uint64_t size, void *host, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = flags,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
}

static void *read_rom(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	if ((uint64_t)st.st_size != ROM_SIZE) {
		fprintf(stderr, "kvm-floor: %s: a ROM of exactly 64 KiB is needed\n", path);
		exit(2);
	}
	void *rom = mmap(NULL, ROM_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (rom == MAP_FAILED)
		die("mmap ROM");
	close(fd);
	return rom;
}

/* The guest may probe CPUID; it sees what KVM supports, as under any VMM. */
static void set_cpuid(int fd)
{
	size_t sz = sizeof(struct kvm_cpuid2) + MAX_CPUID * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		die("calloc");
	c->nent = MAX_CPUID;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0 || ioctl(fd, KVM_SET_CPUID2, c) < 0)
		die("CPUID");
	free(c);
}

static void answer_io(struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	size_t len = (size_t)run->io.size * run->io.count;
	if (run->io.direction == KVM_EXIT_IO_IN) {
		memset(data, 0xff, len);
		return;
	}
	if (run->io.port != EXIT_PORT)
		return;
	uint32_t v = 0;
	memcpy(&v, data, run->io.size < 4 ? run->io.size : 4);
	/* Every vCPU thread stops with the process, as isa-debug-exit stops a VM. */
	_exit((int)((v << 1) | 1) & 0xff);
}

static void *vcpu_loop(void *arg)
{
	struct vcpu *v = arg;
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		struct kvm_run *run = v->run;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			answer_io(run);
			break;
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
			fprintf(stderr, "kvm-floor: vCPU %u: shutdown (triple fault)\n", v->id);
			_exit(4);
		default:
			fprintf(stderr, "kvm-floor: vCPU %u: unexpected exit reason %u\n", v->id,
			        run->exit_reason);
			_exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned ram_mib = 128, nvcpus = 1;
	const char *bios = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "-m"))
			ram_mib = parse_count(argv[++i], MAX_RAM_MIB);
		else if (!strcmp(argv[i], "-smp"))
			nvcpus = parse_count(argv[++i], MAX_VCPUS);
		else if (!strcmp(argv[i], "-bios"))
			bios = argv[++i];
		else
			usage();
	}
	if (!bios || ram_mib < 2)
		usage();
	void *rom = read_rom(bios);

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		die("/dev/kvm");
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) {
		fputs("kvm-floor: KVM has no read-only memory slots\n", stderr);
		return 1;
	}
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0)
		die("KVM_SET_TSS_ADDR");
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");

	uint64_t ram_size = (uint64_t)ram_mib << 20;
	uint8_t *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap RAM");
	/* Memory slots may not overlap: RAM steps around the ROM's window below 1 MiB. */
	add_slot(0, 0, LOW_RAM_END, ram, 0);
	add_slot(1, ISA_BIOS, ROM_SIZE, rom, KVM_MEM_READONLY);
	add_slot(2, HIGH_RAM, ram_size - HIGH_RAM, ram + HIGH_RAM, 0);
	add_slot(3, 0x100000000ull - ROM_SIZE, ROM_SIZE, rom, KVM_MEM_READONLY);

	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	static struct vcpu vcpus[MAX_VCPUS];
	for (unsigned i = 0; i < nvcpus; i++) {
		struct vcpu *v = &vcpus[i];
		v->id = i;
		v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0)
			die("KVM_CREATE_VCPU");
		v->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED)
			die("mmap kvm_run");
		set_cpuid(v->fd);
	}
	/* vCPU 0 starts at the reset vector; the others wait in the kernel for INIT/SIPI. */
	for (unsigned i = 1; i < nvcpus; i++) {
		int e = pthread_create(&vcpus[i].thread, NULL, vcpu_loop, &vcpus[i]);
		if (e) {
			errno = e;
			die("pthread_create");
		}
	}
	vcpu_loop(&vcpus[0]);
	return 1;
}
