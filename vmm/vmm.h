/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-vmm: the machine every device file sees.
 *
 * A struct vm holds the guest's two address spaces (memory and I/O ports) on one
 * bm_system, the PCI host, guest RAM, and the hypervisor behind it. Devices create their
 * regions from vm->sys and place them in vm->mem or vm->io (or behind PCI BARs); vCPU
 * exits reach them only through bm_read/bm_write. Nothing here talks to /dev/kvm
 * directly: the hypervisor is a table of operations (struct hv_ops), KVM's in kvm.c, a
 * recording one in the tests, so every device and listener is testable without KVM.
 *
 * Threads: the machine is built and torn down on the main thread. While vCPUs run, device
 * callbacks run on vCPU threads (one access at a time per vCPU, several vCPUs at once), so
 * device state that several vCPUs can reach takes the device's own lock. vm_request_stop,
 * vm_irq_line, vm_msi and vm_guest_ptr may be called from any thread.
 */
#ifndef BUSMAP_VMM_H
#define BUSMAP_VMM_H

#include <busmap/dispatch.h>
#include <busmap/pci.h>
#include <busmap/region.h>
#include <busmap/space.h>
#include <busmap/system.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of busmap-vmm (isa-debug-exit gives (v << 1) | 1, always odd). */
enum vm_status {
	VM_STATUS_OK = 0,      /* the guest asked for a reset or power-off */
	VM_STATUS_ERROR = 1,   /* the VMM could not set up or run the machine */
	VM_STATUS_USAGE = 2,   /* bad command line or unusable input file */
	VM_STATUS_STOPPED = 4, /* the guest stopped: halted for good, triple fault */
	VM_STATUS_KVM = 6,     /* KVM could not run the guest (internal error, failed entry) */
};

/*
 * What the machine needs from a hypervisor. Every operation returns 0 or a negative
 * errno and behaves as the KVM ioctl it stands for (the same refusals: an ioeventfd
 * assigned twice is -EEXIST, one deassigned that is not there -ENOENT, memslots must not
 * overlap).
 */
struct hv_ops {
	/* KVM_SET_USER_MEMORY_REGION: size 0 deletes slot. */
	int (*set_memslot)(void *hv, unsigned slot, uint64_t gpa, uint64_t size, void *hva,
	                   bool readonly);
	/* KVM_IOEVENTFD: pio selects the port space; len 0 (MMIO only) matches any length. */
	int (*ioeventfd)(void *hv, bool assign, bool pio, uint64_t addr, unsigned len,
	                 bool datamatch, uint64_t data, int fd);
	/* KVM_IRQ_LINE on the in-kernel irqchip (GSI = ISA IRQ for 0..15). */
	int (*irq_line)(void *hv, unsigned gsi, bool level);
	/* KVM_SIGNAL_MSI. */
	int (*msi)(void *hv, uint64_t addr, uint32_t data);
	/* How many memslots there are (KVM_CAP_NR_MEMSLOTS). */
	unsigned (*max_memslots)(void *hv);
	/* Output of PIT channel 2 (in the kernel's PIT), for port 0x61; may be NULL. */
	int (*pit2_out)(void *hv, bool *out);
};

/* A device the machine frees at teardown, in reverse order of registration. */
struct vm_device {
	const char *name;
	void *dev;
	void (*free)(void *dev);
};

#define VM_MAX_DEVICES 64

/* Guest physical layout (the pc machine's, with q35's ECAM window). */
#define VM_BELOW_4G_MAX   0xb0000000ull /* RAM below 4 GiB ends here at most */
#define VM_ECAM_BASE      0xb0000000ull /* 256 buses x 1 MiB */
#define VM_ECAM_SIZE      0x10000000ull
#define VM_PCI_MEM32_BASE 0xc0000000ull /* 32-bit PCI memory window */
#define VM_PCI_MEM32_LAST 0xfebfffffull
#define VM_IOAPIC_BASE    0xfec00000ull
#define VM_KVM_PAGES      0xfeffc000ull /* KVM's identity map and TSS (QEMU's place) */
#define VM_KVM_PAGES_SIZE 0x4000ull
#define VM_LAPIC_BASE     0xfee00000ull
#define VM_HIGH_RAM_BASE  0x100000000ull
#define VM_PCI_MEM64_BASE 0x8000000000ull /* 512 GiB: above any RAM we give */
#define VM_PCI_MEM64_LAST 0xffffffffffull

/* Priorities in the memory space's root (QEMU's pc puts PCI below RAM). */
#define VM_PRIO_PCI   (-1)
#define VM_PRIO_RAM   0
#define VM_PRIO_PAM   1 /* PAM segments over RAM at 0xc0000-0xfffff */
#define VM_PRIO_SMRAM 1

struct memslots;
struct ioev;

struct vm {
	bm_system *sys;
	bm_space *mem; /* "memory" */
	bm_space *io;  /* "I/O" */
	bm_pci_host *pci;

	const struct hv_ops *hv;
	void *hv_ctx;
	struct memslots *slots; /* flat RAM view -> memslots (memslots.c) */
	struct ioev *ioev;      /* flat view -> ioeventfds (ioeventfd.c) */

	/* Guest RAM: one host mapping; [0, below_4g) at GPA 0, the rest at 4 GiB. */
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t below_4g;
	bm_region *ram_region; /* "pc.ram", all of RAM; the GPA windows are aliases */

	/* INTx lines arriving at the host bridge go to the interrupt router (hw/piix3.c). */
	void (*intx_route)(void *arg, bm_pci_func *src, unsigned slot, unsigned pin, bool level);
	void *intx_arg;

	/* Called once for vCPU 0 after it is created, before it first runs, to set its
	 * registers (a direct kernel boot); NULL leaves it at the reset vector. */
	int (*setup_boot_cpu)(void *arg, int vcpu_fd);
	void *setup_boot_cpu_arg;

	unsigned ncpus;
	bool trace_unassigned; /* log unassigned accesses to stderr */
	FILE *log;             /* messages (stderr); tests may redirect */

	/* The first stop request wins; the main thread waits for it. */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
	int stop_status;
	char stop_reason[256];
	atomic_bool stop_flag; /* read by vCPU loops without the lock */

	struct vm_device devices[VM_MAX_DEVICES];
	unsigned ndevices;
};

/*
 * Creates the machine's bm_system, spaces and PCI host (CF8/CFC and the ECAM window), and
 * guest RAM of ram_size bytes laid out below and above 4 GiB, mapped through the memslot
 * listener. hv may be NULL in tests that need no hypervisor (then nothing is mapped).
 */
int vm_new(const struct hv_ops *hv, void *hv_ctx, uint64_t ram_size, unsigned ncpus,
           struct vm **out);
/* Frees devices (reverse order), the PCI host, listeners, spaces, RAM and the system. */
void vm_free(struct vm *vm);

/* Registers a device for teardown. -ENOSPC past VM_MAX_DEVICES. */
int vm_add_device(struct vm *vm, const char *name, void *dev, void (*free_fn)(void *));

/* Ends the run: the first call sets the status and the reason; later calls are ignored. */
void vm_request_stop(struct vm *vm, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool vm_stopping(const struct vm *vm);

/*
 * Host pointer to guest RAM [gpa, gpa + len), for device DMA, or NULL when any byte of it
 * is not RAM (below 4 GiB or above) — the device then treats the request as failed. Never
 * overflows, whatever gpa and len the guest chose.
 */
void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len);

/* Interrupts through the hypervisor; no-ops returning 0 without one. */
int vm_irq_line(struct vm *vm, unsigned gsi, bool level);
int vm_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* Messages: "busmap-vmm: " + text + newline on vm->log. */
void vm_log(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Convenience for devices: an io region at a fixed place in a space's root. */
int vm_add_io_region(struct vm *vm, bm_space *space, const char *name, uint64_t base, uint64_t size,
                     const struct bm_region_ops *ops, void *opaque, bm_region **out);

#endif
