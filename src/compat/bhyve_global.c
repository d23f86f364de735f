/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bhyve's own functions, on the process-wide instance.
 */
#include "bhyve_internal.h"

/*
 * The process-wide state of bhyve's functions, all of it. bhyve's interface has no handle,
 * so its functions share one instance, made by init_mem or init_inout (whichever runs
 * first) and freed by bm_bhyve_global_free or when the process exits. Accesses load the
 * instance without a lock: it is set before the vCPUs start. The lock serialises creating
 * and freeing it; registrations hold use shared, so that freeing it never pulls the system
 * from under one.
 */
static struct {
	_Atomic(bm_bhyve *) instance;
	bool ports_collected; /* the INOUT_PORT ranges are registered in instance */
	pthread_mutex_t lock;
	pthread_rwlock_t use;
	bm_bhyve *closed; /* emptied at exit; kept for threads that loaded it before */
} process = {.lock = PTHREAD_MUTEX_INITIALIZER, .use = PTHREAD_RWLOCK_INITIALIZER};

static bm_bhyve *instance(void)
{
	return atomic_load_explicit(&process.instance, memory_order_acquire);
}

bm_bhyve *bm_bhyve_global(void)
{
	return instance();
}

/* bhyve's machine-dependent files define it; a program without one links too. */
#pragma weak mmio_handle_non_backed_mem

/* Makes the instance unless it exists; the caller holds the lock. Its contexts are
 * numbered with the host's vcpu_id, and accesses that reach no range go to the host's
 * mmio_handle_non_backed_mem if it has one. */
static int instance_make(void)
{
	bm_bhyve *b = instance();
	if (b)
		return 0;
	int err = bm_bhyve_new(vcpu_id, &b);
	if (err)
		return err;
	bm_bhyve_set_non_backed(b, mmio_handle_non_backed_mem);
	atomic_store_explicit(&process.instance, b, memory_order_release);
	return 0;
}

/* ncpu only has to make sense: contexts are made per vCPU thread, on demand. */
int bm_bhyve_global_init(int ncpu)
{
	if (ncpu < 0)
		return -EINVAL;
	pthread_mutex_lock(&process.lock);
	int err = instance_make();
	pthread_mutex_unlock(&process.lock);
	return err;
}

int bm_bhyve_global_free(void)
{
	pthread_mutex_lock(&process.lock);
	pthread_rwlock_wrlock(&process.use);
	int err = bm_bhyve_free(instance());
	if (!err) {
		atomic_store_explicit(&process.instance, NULL, memory_order_release);
		process.ports_collected = false;
	}
	pthread_rwlock_unlock(&process.use);
	pthread_mutex_unlock(&process.lock);
	return err;
}

/*
 * bhyve never frees its ranges, and a host that exits should still leave nothing behind
 * for a leak checker, without calling anything of busmap's. So the instance is emptied at
 * exit, unless that could pull it from under another thread: the exit runs inside an
 * access, another thread holds a context or is registering, or the instance is being made
 * or freed. The emptied instance itself stays (reachable), closed, for a thread that loaded
 * it just before: its first access there fails instead of reaching a freed system.
 */
__attribute__((destructor)) static void process_exit(void)
{
	if (pthread_mutex_trylock(&process.lock))
		return;
	bm_bhyve *b = instance();
	if (b && !pthread_rwlock_trywrlock(&process.use)) {
		if (!bm_bhyve_close(b)) {
			atomic_store_explicit(&process.instance, NULL, memory_order_release);
			process.closed = b;
		}
		pthread_rwlock_unlock(&process.use);
	}
	pthread_mutex_unlock(&process.lock);
}

void init_mem(int ncpu)
{
	bm_bhyve_global_init(ncpu);
}

/* Positive errno, as bhyve's memory functions return. */
static int mem_result(int err)
{
	return err == -EINVAL && !instance() ? ENXIO : -err;
}

/* A registration on the instance, which cannot be freed meanwhile. */
static int registration(int (*fn)(bm_bhyve *b, const void *desc), const void *desc)
{
	pthread_rwlock_rdlock(&process.use);
	int err = fn(instance(), desc);
	pthread_rwlock_unlock(&process.use);
	return err;
}

static int mem_add(bm_bhyve *b, const void *desc)
{
	return bm_bhyve_register_mem(b, desc);
}

static int mem_add_fallback(bm_bhyve *b, const void *desc)
{
	return bm_bhyve_register_mem_fallback(b, desc);
}

static int mem_remove(bm_bhyve *b, const void *desc)
{
	return bm_bhyve_unregister_mem(b, desc);
}

static int port_add(bm_bhyve *b, const void *desc)
{
	return bm_bhyve_register_inout(b, desc);
}

static int port_remove(bm_bhyve *b, const void *desc)
{
	return bm_bhyve_unregister_inout(b, desc);
}

int register_mem(struct mem_range *memp)
{
	return mem_result(registration(mem_add, memp));
}

int register_mem_fallback(struct mem_range *memp)
{
	return mem_result(registration(mem_add_fallback, memp));
}

int unregister_mem(struct mem_range *memp)
{
	return mem_result(registration(mem_remove, memp));
}

int read_mem(struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int size)
{
	bm_bhyve *b = instance();
	if (__builtin_expect(!b || !rval, 0))
		return b ? EINVAL : ENXIO;
	return bm_bhyve_mem_access(b, vcpu, MEM_F_READ, gpa, rval, size);
}

int write_mem(struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int size)
{
	bm_bhyve *b = instance();
	if (__builtin_expect(!b, 0))
		return ENXIO;
	return bm_bhyve_mem_access(b, vcpu, MEM_F_WRITE, gpa, &wval, size);
}

int emulate_mem(struct vcpu *vcpu, uint64_t paddr, struct vie *vie, struct vm_guest_paging *paging)
{
	bm_bhyve *b = instance();
	if (!b)
		return ENXIO;
	return bm_bhyve_emulate_mem(b, vcpu, paddr, vie, paging);
}

/*
 * INOUT_PORT entries: pointers in the section "set_inout_port_set", which the ELF linker
 * brackets with __start_ and __stop_ symbols when a program has any (bhyve's linker set).
 * Weak, so that a program without entries links too.
 */
#if defined(__ELF__)
extern struct inout_port *const __start_set_inout_port_set[] __attribute__((weak));
extern struct inout_port *const __stop_set_inout_port_set[] __attribute__((weak));

static void ports_collect(bm_bhyve *b)
{
	struct inout_port *const *it = __start_set_inout_port_set;
	struct inout_port *const *end = __stop_set_inout_port_set;
	for (; it && end && it < end; it++) {
		struct inout_port iop = **it;
		iop.arg = NULL;
		bm_bhyve_register_inout(b, &iop);
	}
}
#else
static void ports_collect(bm_bhyve *b)
{
	(void)b;
}
#endif

void init_inout(void)
{
	pthread_mutex_lock(&process.lock);
	if (!instance_make() && !process.ports_collected) {
		ports_collect(instance());
		process.ports_collected = true;
	}
	pthread_mutex_unlock(&process.lock);
}

int register_inout(struct inout_port *iop)
{
	return registration(port_add, iop) ? -1 : 0;
}

int unregister_inout(struct inout_port *iop)
{
	return registration(port_remove, iop) ? -1 : 0;
}

int emulate_inout(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *vmexit)
{
	bm_bhyve *b = instance();
	if (!b)
		return -1;
	return bm_bhyve_emulate_inout(b, ctx, vcpu, vmexit);
}
