/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The machine: busmap system, spaces, PCI host, guest RAM, and the run's stop request.
 */
#include "ioeventfd.h"
#include "memslots.h"
#include "vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int make_spaces(struct vm *vm)
{
	int err = bm_system_new(&vm->sys);
	if (!err)
		err = bm_space_new(vm->sys, "memory", "system", &vm->mem);
	if (!err)
		err = bm_space_new(vm->sys, "I/O", "io", &vm->io);
	return err;
}

static int make_listeners(struct vm *vm)
{
	if (!vm->hv)
		return 0;
	int err = memslots_new(vm, &vm->slots);
	if (!err)
		err = ioev_new(vm, &vm->ioev);
	return err;
}

/* pc.ram holds all of RAM; QEMU's two aliases show it below and above 4 GiB. */
static int make_ram(struct vm *vm)
{
	void *p = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	vm->ram = p;
	vm->below_4g = vm->ram_size < VM_BELOW_4G_MAX ? vm->ram_size : VM_BELOW_4G_MAX;

	int err = bm_region_new_ram(vm->sys, "pc.ram", vm->ram_size, vm->ram, &vm->ram_region);
	if (!err && vm->slots)
		err = memslots_add_backing(vm->slots, vm->ram_region, vm->ram, false);
	if (err)
		return err;

	bm_region *low, *high;
	bm_region *root = bm_space_root(vm->mem);
	err = bm_begin(vm->sys);
	if (err)
		return err;
	err = bm_region_new_alias(vm->sys, "ram-below-4g", vm->ram_region, 0, vm->below_4g, &low);
	if (!err)
		err = bm_region_add(root, low, 0, VM_PRIO_RAM);
	if (!err && vm->ram_size > vm->below_4g) {
		err = bm_region_new_alias(vm->sys, "ram-above-4g", vm->ram_region, vm->below_4g,
		                          vm->ram_size - vm->below_4g, &high);
		if (!err)
			err = bm_region_add(root, high, VM_HIGH_RAM_BASE, VM_PRIO_RAM);
	}
	int cerr = bm_commit(vm->sys);
	return err ? err : cerr;
}

static void host_msi(void *opaque, bm_pci_func *src, uint64_t addr, uint32_t data)
{
	(void)src;
	vm_msi(opaque, addr, data);
}

static void host_intx(void *opaque, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	struct vm *vm = opaque;
	if (vm->intx_route)
		vm->intx_route(vm->intx_arg, src, slot, pin, level);
}

/* PIIX3's reset control register: bit 2 asks for a reset, which ends the run. */
static void host_reset_control(void *opaque, uint8_t value)
{
	if (value & 0x04)
		vm_request_stop(opaque, VM_STATUS_OK, "guest requested a reset through port 0xcf9");
}

static const struct bm_pci_host_ops host_ops = {
    .msi = host_msi,
    .intx = host_intx,
    .reset_control = host_reset_control,
};

static int make_pci(struct vm *vm)
{
	struct bm_pci_host_config cfg = {
	    .mem = vm->mem,
	    .io = vm->io,
	    .io_limit = BM_PCI_IO_LIMIT_X86,
	    .cf8 = true,
	    .ecam = true,
	    .ecam_base = VM_ECAM_BASE,
	    .ecam_bus_count = VM_ECAM_SIZE >> 20,
	    .mem_priority = VM_PRIO_PCI,
	    /* Above ISA devices, as QEMU maps I/O BARs: a BAR over 0x3f8 hides the UART. */
	    .io_priority = 1,
	    .no_host_bridge = true, /* hw/i440fx.c makes 00:00.0 with its PAM hooks */
	    .ops = &host_ops,
	    .opaque = vm,
	};
	return bm_pci_host_new(vm->sys, &cfg, &vm->pci);
}

int vm_new(const struct hv_ops *hv, void *hv_ctx, uint64_t ram_size, unsigned ncpus,
           struct vm **out)
{
	if (!out || ram_size < (1u << 20) || ram_size % 4096 || ncpus == 0)
		return -EINVAL;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->hv = hv;
	vm->hv_ctx = hv_ctx;
	vm->ram_size = ram_size;
	vm->ncpus = ncpus;
	vm->log = stderr;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);

	int err = make_spaces(vm);
	if (!err)
		err = make_listeners(vm);
	if (!err)
		err = make_ram(vm);
	if (!err)
		err = make_pci(vm);
	if (err) {
		vm_free(vm);
		return err;
	}
	*out = vm;
	return 0;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	while (vm->ndevices > 0) {
		struct vm_device *d = &vm->devices[--vm->ndevices];
		d->free(d->dev);
	}
	bm_pci_host_free(vm->pci);
	ioev_free(vm->ioev);
	memslots_free(vm->slots);
	if (vm->sys)
		bm_system_free(vm->sys);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}

int vm_add_device(struct vm *vm, const char *name, void *dev, void (*free_fn)(void *))
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return -ENOSPC;
	vm->devices[vm->ndevices++] = (struct vm_device){name, dev, free_fn};
	return 0;
}

void vm_request_stop(struct vm *vm, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->stopping) {
		vm->stopping = true;
		vm->stop_status = status;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
		va_end(ap);
		atomic_store_explicit(&vm->stop_flag, true, memory_order_release);
		pthread_cond_broadcast(&vm->stop_cond);
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

bool vm_stopping(const struct vm *vm)
{
	return atomic_load_explicit(&vm->stop_flag, memory_order_acquire);
}

void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t high = vm->ram_size - vm->below_4g;
	if (gpa < vm->below_4g) {
		if (len > vm->below_4g - gpa)
			return NULL;
		return vm->ram + gpa;
	}
	if (gpa >= VM_HIGH_RAM_BASE && gpa - VM_HIGH_RAM_BASE < high) {
		uint64_t off = gpa - VM_HIGH_RAM_BASE;
		if (len > high - off)
			return NULL;
		return vm->ram + vm->below_4g + off;
	}
	return NULL;
}

int vm_irq_line(struct vm *vm, unsigned gsi, bool level)
{
	return vm->hv && vm->hv->irq_line ? vm->hv->irq_line(vm->hv_ctx, gsi, level) : 0;
}

int vm_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	return vm->hv && vm->hv->msi ? vm->hv->msi(vm->hv_ctx, addr, data) : 0;
}

void vm_log(struct vm *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(vm->log);
	fputs("busmap-vmm: ", vm->log);
	vfprintf(vm->log, fmt, ap);
	fputc('\n', vm->log);
	funlockfile(vm->log);
	va_end(ap);
}

int vm_add_io_region(struct vm *vm, bm_space *space, const char *name, uint64_t base, uint64_t size,
                     const struct bm_region_ops *ops, void *opaque, bm_region **out)
{
	bm_region *r;
	int err = bm_region_new_io(vm->sys, name, size, ops, opaque, &r);
	if (err)
		return err;
	err = bm_region_add(bm_space_root(space), r, base, 0);
	if (err) {
		bm_region_destroy(r);
		return err;
	}
	*out = r;
	return 0;
}
