/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bhyve's MMIO interface (usr.sbin/bhyve/mem.h, FreeBSD main), implemented on libbusmap.
 *
 * Device models describe an MMIO range with struct mem_range and register it; a vCPU's
 * access reaches the handler of the range that holds the access's first byte, with the
 * whole access (absolute guest address, size as the guest used it), as in bhyve. Unlike
 * bhyve's mem.c, ranges may overlap: the most recent registration wins where they do, and
 * fallback ranges lose to every other. unregister_mem removes exactly the registration
 * with the same name, base and size, whatever else lies at that address, so a BAR moved
 * onto another live BAR and away again leaves the map as the guest programmed it.
 *
 * The functions work on one process-wide instance (busmap/compat/bhyve.h has the same
 * functions on an explicit instance, and the instance's lifetime). Results follow bhyve:
 * 0, or a positive errno; a handler's result is passed back as it returned it.
 *
 * Threads:
 * - init_mem: once, before any other call, on any thread.
 * - register_mem, register_mem_fallback, unregister_mem: any thread, including a handler
 *   running inside an access (a BAR moved by a configuration write). Changes are serialised;
 *   the next access sees them.
 * - read_mem, write_mem, emulate_mem: on the thread that runs the vCPU, which must keep to
 *   that thread, as in bhyve. The first access on a thread creates the thread's dispatch
 *   context. An access made for a vCPU from another thread (a debugger stub, say) still
 *   works, through that thread's own context.
 *
 * The host program provides vcpu_id (bhyve: libvmmapi) and, for emulate_mem, an
 * instruction emulator (bhyve: vmm_emulate_instruction, installed with
 * bm_bhyve_set_emulator). It may provide mmio_handle_non_backed_mem, as bhyve's
 * machine-dependent files do.
 *
 * Teardown: the process-wide instance is emptied when the program exits (a destructor of
 * the library), so a program that calls init_mem and exits leaves nothing allocated
 * without calling a function of busmap's own. It is left alone if that could pull it from
 * under a thread: when the program exits from inside an access (a handler calling exit),
 * while another thread holds a dispatch context (has made an access and not exited), or
 * during a registration or init_mem. bm_bhyve_global_free frees it earlier.
 */
#ifndef BUSMAP_COMPAT_BHYVE_MEM_H
#define BUSMAP_COMPAT_BHYVE_MEM_H

#include <busmap/system.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque here; the host program defines them (bhyve: libvmmapi, machine/vmm.h). */
struct vcpu;
struct vie;
struct vm_guest_paging;

/* dir is MEM_F_READ or MEM_F_WRITE; val is read into or written from. Returns 0 or an
 * errno value, which the access returns. */
typedef int (*mem_func_t)(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                          void *arg1, long arg2);

struct mem_range {
	const char *name; /* kept by pointer, as in bhyve: it must outlive the registration */
	int flags;
	mem_func_t handler;
	void *arg1;
	long arg2;
	uint64_t base;
	uint64_t size;
};
#define MEM_F_READ      0x1
#define MEM_F_WRITE     0x2
#define MEM_F_RW        0x3
#define MEM_F_IMMUTABLE 0x4 /* the range cannot be unregistered */

/* Provided by the host program: the vCPU's index, 0 .. ncpu - 1 (it numbers the dispatch
 * contexts, as bm_vcpu_index reports them). */
int vcpu_id(struct vcpu *vcpu);

/* Creates the process-wide instance (ncpu >= 0: each vCPU thread's dispatch context is made
 * by its first access), with mmio_handle_non_backed_mem as its answer to accesses that
 * reach no range if the program defines it. Failure (out of memory) shows as ENXIO from
 * the calls that follow. Starts no thread: the instance's system has the library's one
 * reclaim thread (busmap/system.h). */
BM_API void init_mem(int ncpu);

/*
 * Optional, provided by the host program as bhyve's amd64/mem_x86.c and
 * aarch64/mem_aarch64.c do: called for a memory access (read_mem, write_mem, or one of
 * emulate_mem's operand accesses) whose first byte reaches no range, fallback ranges
 * included. Returning 0 with *mr_paramp pointing to a range hands the access to that
 * range's handler (amd64: all ones read, writes ignored); returning an error makes the
 * access return it (arm64: EJUSTRETURN once a data abort is injected). A program without it
 * gets ESRCH for such accesses, as bhyve's generic mem_md.c gives.
 */
int mmio_handle_non_backed_mem(struct vcpu *vcpu, uint64_t paddr, struct mem_range **mr_paramp);

/*
 * Emulates the instruction that faulted at paddr through the host's emulator, whose memory
 * callbacks reach the ranges by the address they are given, as read_mem and write_mem do
 * (mmio_handle_non_backed_mem's answer where there is no range, which the emulator passes
 * on). ENOSYS without an emulator, otherwise what the emulator returns.
 */
BM_API int emulate_mem(struct vcpu *vcpu, uint64_t paddr, struct vie *vie,
                       struct vm_guest_paging *paging);

/* One access of size bytes: 0 or the handler's result; where gpa is in no range, what
 * mmio_handle_non_backed_mem decides (above; *rval is left alone on an error). */
BM_API int read_mem(struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int size);
BM_API int write_mem(struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int size);

/* 0, EINVAL (no handler, size 0, or the range passes 2^64 - 1), ENOMEM, ENXIO (no
 * instance). Overlapping an existing range is not an error. */
BM_API int register_mem(struct mem_range *memp);
BM_API int register_mem_fallback(struct mem_range *memp);

/*
 * Removes the registration with the same name (the same pointer, or an equal string), base
 * and size; nothing else changes. ENOENT if there is none, EPERM if it is MEM_F_IMMUTABLE.
 * An access already running the range's handler on another vCPU may still finish after
 * this returns (bhyve's lock made the call wait for it).
 */
BM_API int unregister_mem(struct mem_range *memp);

#ifdef __cplusplus
}
#endif
#endif
