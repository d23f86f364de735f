/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-vmm: a KVM virtual machine monitor whose every port and MMIO access is dispatched
 * by busmap, and whose guest memory is what busmap's flat view says. The machine is QEMU's
 * pc (i440FX, PIIX3) with q35's ECAM window; see busmap-vmm(1).
 */
#include "board.h"
#include "cmdline.h"
#include "ioeventfd.h"
#include "kvm.h"
#include "maptrace.h"
#include "memslots.h"
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVM_PATH "/dev/kvm"

struct outputs {
	int serial_fd;
	int debugcon_fds[VMM_MAX_DEVICES];
	FILE *dump;
};

static int open_output(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
}

/* --check-memslots: KVM's view equals busmap's. A mismatch overrides the guest's status. */
static int check(struct vm *vm, int status)
{
	int err = memslots_check(vm->slots, stderr);
	int err2 = ioev_check(vm->ioev, stderr);
	if (err || err2) {
		vm_log(vm, "check failed: KVM's memslots or ioeventfds differ from busmap's map");
		return VM_STATUS_ERROR;
	}
	vm_log(vm, "check passed: memslots and ioeventfds equal busmap's flat views");
	return status;
}

static void dump(struct vm *vm, const struct vmm_options *o)
{
	FILE *f = stderr;
	if (o->dump_map_path && !(f = fopen(o->dump_map_path, "w"))) {
		vm_log(vm, "cannot write %s: %s", o->dump_map_path, strerror(errno));
		return;
	}
	bm_space_dump_flat(vm->mem, f);
	bm_space_dump_flat(vm->io, f);
	if (f != stderr)
		fclose(f);
}

static int open_outputs(const struct vmm_options *o, struct outputs *out, char *err, size_t n)
{
	out->serial_fd = o->serial == SERIAL_STDIO ? STDOUT_FILENO : -1;
	if (o->serial == SERIAL_FILE && (out->serial_fd = open_output(o->serial_path)) < 0) {
		snprintf(err, n, "-serial file:%s: %s", o->serial_path, strerror(errno));
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->ndevices; i++) {
		const struct vmm_device_opt *d = &o->devices[i];
		out->debugcon_fds[i] = -1;
		if (d->kind != DEV_DEBUGCON)
			continue;
		out->debugcon_fds[i] = d->file ? open_output(d->file) : dup(STDERR_FILENO);
		if (out->debugcon_fds[i] < 0) {
			snprintf(err, n, "isa-debugcon: cannot write '%s': %s",
			         d->file ? d->file : "stderr", strerror(errno));
			return -EINVAL;
		}
	}
	return 0;
}

static void close_outputs(const struct vmm_options *o, struct outputs *out)
{
	if (out->serial_fd > STDERR_FILENO)
		close(out->serial_fd);
	for (unsigned i = 0; i < o->ndevices; i++)
		if (out->debugcon_fds[i] >= 0)
			close(out->debugcon_fds[i]);
}

static int run_machine(struct vmm_options *o, struct outputs *out)
{
	struct kvm kvm;
	char why[256];
	int err = kvm_open(&kvm, KVM_PATH, why, sizeof(why));
	if (err) {
		fprintf(stderr, "busmap-vmm: %s\n", why);
		kvm_close(&kvm);
		return VM_STATUS_ERROR;
	}
	if (o->ncpus > kvm.max_vcpus) {
		fprintf(stderr, "busmap-vmm: -smp %u: KVM allows %u vCPUs\n", o->ncpus,
		        kvm.max_vcpus);
		kvm_close(&kvm);
		return VM_STATUS_USAGE;
	}
	struct vm *vm;
	err = vm_new(&kvm_hv_ops, &kvm, o->ram_size, o->ncpus, &vm);
	if (err) {
		fprintf(stderr, "busmap-vmm: cannot create the machine: %s\n", strerror(-err));
		kvm_close(&kvm);
		return VM_STATUS_ERROR;
	}
	vm->trace_unassigned = o->trace_unassigned;
	int status = VM_STATUS_ERROR;
	if (board_build(vm, o, out->serial_fd, out->debugcon_fds) == 0 && !vm_stopping(vm)) {
		status = vm_run(vm, &kvm);
		if (o->trace_map)
			maptrace_stop(vm);
		vm_log(vm, "%s (status %d)", vm->stop_reason, status);
		if (o->check_memslots)
			status = check(vm, status);
		if (o->dump_map)
			dump(vm, o);
	} else if (vm_stopping(vm)) {
		vm_log(vm, "%s", vm->stop_reason);
	}
	vm_free(vm);
	kvm_close(&kvm);
	return status;
}

int main(int argc, char **argv)
{
	struct vmm_options o;
	struct outputs out = {.serial_fd = -1};
	for (unsigned i = 0; i < VMM_MAX_DEVICES; i++)
		out.debugcon_fds[i] = -1;
	char err[512];
	/* Serial or debugcon output into a closed pipe is the device's to report, not fatal. */
	signal(SIGPIPE, SIG_IGN);
	if (vmm_parse(argc, argv, &o, err, sizeof(err))) {
		fprintf(stderr, "busmap-vmm: %s\n", err);
		return VM_STATUS_USAGE;
	}
	if (o.help) {
		vmm_usage(stdout);
		return 0;
	}
	if (o.version) {
		puts("busmap-vmm 0.1.0");
		return 0;
	}
	if (vmm_load_files(&o, err, sizeof(err)) || open_outputs(&o, &out, err, sizeof(err))) {
		fprintf(stderr, "busmap-vmm: %s\n", err);
		close_outputs(&o, &out);
		vmm_options_free(&o);
		return VM_STATUS_USAGE;
	}
	int status = run_machine(&o, &out);
	close_outputs(&o, &out);
	vmm_options_free(&o);
	return status;
}
