/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vCPU threads and the exit path. Every KVM_EXIT_IO and KVM_EXIT_MMIO becomes a bm_read or
 * bm_write on the vCPU's own context: there is no other way for a guest access to reach a
 * device.
 *
 * A vCPU halted with interrupts disabled, or an AP still waiting for its startup IPI, makes
 * no exits, and with the irqchip in the kernel KVM never tells us it halted. So the main
 * thread kicks (with a signal) every vCPU that made no exit during a tick, and the vCPU
 * reports whether it is parked for good; when all are, nothing can wake the machine and the
 * run ends. A vCPU that made an exit during the tick is not kicked. One halted with
 * interrupts off still wakes for an NMI, which only an NMI-mode MSI the guest programmed
 * could send here; a guest that relies on that is stopped.
 */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS     250
#define KICK_SIGNAL SIGUSR1

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	bm_vcpu *bm;
	pthread_t thread;
	bool started;
	atomic_bool done;
	_Atomic uint64_t exits;     /* written by the vCPU thread only */
	_Atomic uint64_t kick_tick; /* the tick of the last kick (main thread) */
	_Atomic uint64_t parked;    /* the kick tick at which it found itself parked */
	uint64_t seen_exits;        /* main thread */
	unsigned errors_logged;
};

/* ---- the exit path ---- */

static void note_access(struct vcpu *c, const char *space, uint64_t addr, unsigned size, bool write,
                        uint64_t value, bm_access_result rc)
{
	struct vm *vm = c->vm;
	if (bm_failed(rc) && c->errors_logged < 20) {
		c->errors_logged++;
		vm_log(vm, "vCPU %u: %s %s at 0x%" PRIx64 " (size %u) failed: %s", c->index, space,
		       write ? "write" : "read", addr, size, strerror(-rc));
	} else if (!bm_failed(rc) && (rc & BM_ACCESS_UNASSIGNED) && vm->trace_unassigned) {
		if (write)
			vm_log(vm, "unassigned %s write 0x%" PRIx64 " size %u value 0x%" PRIx64,
			       space, addr, size, value);
		else
			vm_log(vm, "unassigned %s read 0x%" PRIx64 " size %u", space, addr, size);
	}
}

/* One access of a natural size, dispatched on the vCPU's own context. */
static void guest_access(struct vcpu *c, bool io, uint64_t addr, uint8_t *data, unsigned size,
                         bool write)
{
	bm_space *space = io ? c->vm->io : c->vm->mem;
	uint64_t v = 0;
	bm_access_result rc;
	if (write) {
		memcpy(&v, data, size);
		rc = bm_write(c->bm, space, addr, size, v);
	} else {
		rc = bm_read(c->bm, space, addr, size, &v);
		memcpy(data, &v, size);
	}
	if (rc != 0) /* a failure, or flags worth a trace */
		note_access(c, io ? "io" : "mmio", addr, size, write, v, rc);
}

/* String I/O (rep ins/outs) arrives as count accesses to the same port. */
static void exit_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	unsigned size = run->io.size;
	if (run->io.data_offset + (uint64_t)run->io.count * size > c->run_size)
		return; /* KVM never does this; a bad page would be worse than a lost access */
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		guest_access(c, true, run->io.port, data, size, write);
}

/* KVM splits an access that crosses a page into pieces of any length up to 8; each is
 * cut further into naturally aligned accesses, as a bus would carry it. */
static void exit_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint64_t addr = run->mmio.phys_addr;
	unsigned len = run->mmio.len < 8 ? run->mmio.len : 8;
	for (unsigned done = 0, size; done < len; done += size) {
		for (size = 8; size > len - done || (addr + done) % size; size /= 2)
			;
		guest_access(c, false, addr + done, run->mmio.data + done, size,
		             run->mmio.is_write);
	}
}

static void describe_position(struct vcpu *c, char *buf, size_t n)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0 || ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(buf, n, "position unknown");
		return;
	}
	snprintf(buf, n, "cs=0x%04x (base 0x%" PRIx64 ") rip=0x%" PRIx64 " cr0=0x%" PRIx64,
	         sregs.cs.selector, (uint64_t)sregs.cs.base, (uint64_t)regs.rip,
	         (uint64_t)sregs.cr0);
}

static void exit_internal_error(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	char pos[128], data[128] = "";
	describe_position(c, pos, sizeof(pos));
	size_t used = 0;
	for (uint32_t i = 0; i < run->internal.ndata && i < 4 && used < sizeof(data); i++)
		used += (size_t)snprintf(data + used, sizeof(data) - used, " 0x%llx",
		                         (unsigned long long)run->internal.data[i]);
	const char *what = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
	                       ? "emulation failure: KVM cannot emulate the guest's instruction"
	                       : "internal error";
	vm_request_stop(c->vm, VM_STATUS_KVM, "vCPU %u: KVM %s (suberror %u,%s data) at %s",
	                c->index, what, run->internal.suberror, data, pos);
}

static void exit_system_event(struct vcpu *c)
{
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(c->vm, VM_STATUS_OK, "guest requested a reset");
		break;
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(c->vm, VM_STATUS_OK, "guest powered off");
		break;
	default:
		vm_request_stop(c->vm, VM_STATUS_STOPPED, "vCPU %u: system event %u", c->index,
		                c->run->system_event.type);
	}
}

static void handle_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	char pos[128];
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		exit_io(c);
		break;
	case KVM_EXIT_MMIO:
		exit_mmio(c);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_HLT:
		vm_request_stop(c->vm, VM_STATUS_STOPPED, "vCPU %u halted", c->index);
		break;
	case KVM_EXIT_SHUTDOWN:
		describe_position(c, pos, sizeof(pos));
		vm_request_stop(c->vm, VM_STATUS_STOPPED, "vCPU %u: shutdown (triple fault) at %s",
		                c->index, pos);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		exit_system_event(c);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		exit_internal_error(c);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		vm_request_stop(c->vm, VM_STATUS_KVM,
		                "vCPU %u: KVM could not enter the guest "
		                "(hardware reason 0x%llx)",
		                c->index,
		                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		vm_request_stop(c->vm, VM_STATUS_KVM, "vCPU %u: unexpected KVM exit %u", c->index,
		                run->exit_reason);
	}
}

/* ---- parked vCPUs ---- */

static bool is_parked(struct vcpu *c)
{
	struct kvm_mp_state mp;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0)
		return false;
	if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED)
		return c->index != 0; /* an AP nobody started */
	if (mp.mp_state != KVM_MP_STATE_HALTED)
		return false;
	struct kvm_regs regs;
	return ioctl(c->fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & (1u << 9));
}

static void *vcpu_main(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	int err = bm_vcpu_new(vm->sys, c->index, c, &c->bm);
	if (err) {
		vm_request_stop(vm, VM_STATUS_ERROR, "vCPU %u: no dispatch context: %s", c->index,
		                strerror(-err));
		atomic_store(&c->done, true);
		return NULL;
	}
	while (!vm_stopping(vm)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				uint64_t tick = atomic_load(&c->kick_tick);
				atomic_store(&c->parked, is_parked(c) ? tick : 0);
				continue;
			}
			vm_request_stop(vm, VM_STATUS_KVM, "vCPU %u: KVM_RUN failed: %s", c->index,
			                strerror(errno));
			break;
		}
		uint64_t n = atomic_load_explicit(&c->exits, memory_order_relaxed);
		atomic_store_explicit(&c->exits, n + 1, memory_order_relaxed);
		handle_exit(c);
	}
	bm_vcpu_free(c->bm);
	atomic_store(&c->done, true);
	return NULL;
}

/* ---- the main thread ---- */

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

/* SIGINT, SIGTERM and SIGHUP end the run cleanly; the watch loop notices within a tick. */
static volatile sig_atomic_t terminating;

static void terminate_handler(int sig)
{
	terminating = sig;
}

static int install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	sa.sa_handler = terminate_handler;
	static const int ends[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (sigaction(ends[i], &sa, NULL) < 0)
			return -errno;
	return 0;
}

/* Waits one tick for a stop; returns true if one came. */
static bool wait_tick(struct vm *vm)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += TICK_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->stopping)
		pthread_cond_timedwait(&vm->stop_cond, &vm->stop_lock, &ts);
	bool stopping = vm->stopping;
	pthread_mutex_unlock(&vm->stop_lock);
	return stopping;
}

static void watch(struct vm *vm, struct vcpu *c, unsigned n)
{
	for (uint64_t tick = 1; !wait_tick(vm); tick++) {
		if (terminating) {
			vm_request_stop(vm, VM_STATUS_ERROR, "terminating on signal %d",
			                (int)terminating);
			break;
		}
		bool all_parked = true;
		for (unsigned i = 0; i < n; i++) {
			uint64_t exits = atomic_load_explicit(&c[i].exits, memory_order_relaxed);
			if (exits != c[i].seen_exits || atomic_load(&c[i].parked) != tick - 1)
				all_parked = false;
			if (exits != c[i].seen_exits) {
				c[i].seen_exits = exits;
				continue; /* busy: leave it alone */
			}
			atomic_store(&c[i].kick_tick, tick);
			pthread_kill(c[i].thread, KICK_SIGNAL);
		}
		if (all_parked && tick > 1)
			vm_request_stop(vm, VM_STATUS_STOPPED,
			                "the guest stopped: every vCPU is halted with interrupts "
			                "disabled or waits for a startup IPI");
	}
}

static void stop_all(struct vcpu *c, unsigned n)
{
	for (;;) {
		bool all_done = true;
		for (unsigned i = 0; i < n; i++) {
			if (c[i].started && !atomic_load(&c[i].done)) {
				all_done = false;
				pthread_kill(c[i].thread, KICK_SIGNAL);
			}
		}
		if (all_done)
			break;
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	for (unsigned i = 0; i < n; i++)
		if (c[i].started)
			pthread_join(c[i].thread, NULL);
}

static int start_vcpus(struct vm *vm, struct kvm *kvm, struct vcpu *c)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		c[i] = (struct vcpu){.vm = vm, .index = i, .fd = -1, .run_size = kvm->run_size};
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int err = kvm_vcpu_create(kvm, i, &c[i].fd, &c[i].run);
		if (err) {
			vm_request_stop(vm, VM_STATUS_ERROR, "cannot create vCPU %u: %s", i,
			                strerror(-err));
			return err;
		}
	}
	if (vm->setup_boot_cpu) {
		int err = vm->setup_boot_cpu(vm->setup_boot_cpu_arg, c[0].fd);
		if (err) {
			vm_request_stop(vm, VM_STATUS_ERROR, "cannot set up vCPU 0: %s",
			                strerror(-err));
			return err;
		}
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int err = pthread_create(&c[i].thread, NULL, vcpu_main, &c[i]);
		if (err) {
			vm_request_stop(vm, VM_STATUS_ERROR, "cannot start vCPU %u: %s", i,
			                strerror(err));
			return -err;
		}
		c[i].started = true;
	}
	return 0;
}

int vm_run(struct vm *vm, struct kvm *kvm)
{
	struct vcpu *c = calloc(vm->ncpus, sizeof(*c));
	if (!c) {
		vm_request_stop(vm, VM_STATUS_ERROR, "out of memory");
		return VM_STATUS_ERROR;
	}
	int err = install_signals();
	if (err)
		vm_request_stop(vm, VM_STATUS_ERROR, "cannot install a signal handler: %s",
		                strerror(-err));
	else if (start_vcpus(vm, kvm, c) == 0)
		watch(vm, c, vm->ncpus);
	stop_all(c, vm->ncpus);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (c[i].run)
			munmap(c[i].run, kvm->run_size);
		if (c[i].fd >= 0)
			close(c[i].fd);
	}
	free(c);
	pthread_mutex_lock(&vm->stop_lock);
	int status = vm->stop_status;
	pthread_mutex_unlock(&vm->stop_lock);
	return status;
}
