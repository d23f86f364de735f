/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bm_bhyve: bhyve's MMIO and port I/O interfaces on an explicit instance.
 *
 * One instance is one guest: a bm_system with a "memory" and an "io" space, the
 * registrations made through it, and a dispatch context per vCPU thread. bhyve's own
 * functions (busmap/compat/bhyve_mem.h, bhyve_inout.h) take no handle and wrap the
 * process-wide instance, which bm_bhyve_global returns; the functions here serve tests,
 * several guests in one process, and hosts that prefer a handle.
 *
 * Each bhyve registration is an io region of the instance's space: at priority 0 and
 * exclusive (so overlaps are recorded as conflicts, see bm_space_conflicts), or at priority
 * -1 for fallback and IOPORT_F_DEFAULT ranges. An access is resolved by its first byte and
 * handed whole to that range's handler. A host may place regions of its own in the spaces
 * with the core API (RAM, a core io region, a container or alias): where such a region
 * shows at the first byte, the access goes to the core whole (size 1, 2, 4 or 8; EINVAL,
 * or -1 for a port, otherwise), as bm_read or bm_write would make it, and returns 0 or the
 * region's error as a positive errno (-1 for a port).
 *
 * Threads:
 * - bm_bhyve_new, bm_bhyve_free, the setters: any thread, with no access in flight (free:
 *   once every thread that made accesses has exited, or from the one that made them all).
 * - registration: any thread, including inside a handler.
 * - accesses: on the vCPU's thread. A thread's first access to an instance creates the
 *   thread's dispatch context there (a bm_vcpu belongs to one thread, and bhyve runs each vCPU
 *   on its own thread), numbered with the vCPU's index; every later access finds it with one
 *   comparison. A vCPU is to keep to its thread, as in bhyve. The handler's vCPU comes from
 *   the access, so an access made for a vCPU from another thread (a debugger stub, say) is
 *   served alike, through that thread's context. A thread's contexts are freed when it
 *   exits.
 *
 * Management and registration return 0 or a negative errno. Accesses return what the bhyve
 * function of the same name returns: read/write/emulate_mem 0 or a positive errno (a
 * handler's result as it returned it), port accesses 0 or -1 (or the handler's result).
 */
#ifndef BUSMAP_COMPAT_BHYVE_H
#define BUSMAP_COMPAT_BHYVE_H

#include <busmap/busmap.h>
#include <busmap/compat/bhyve_inout.h>
#include <busmap/compat/bhyve_mem.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bm_bhyve bm_bhyve;

/* The callbacks an instruction emulator uses for its memory operand: the same types as
 * bhyve's mem_region_read_t and mem_region_write_t (machine/vmm_instruction_emul.h), under
 * names of the layer's own, so that these headers never declare a typedef that the host's
 * headers declare too (a repeated typedef is an error before C11). */
typedef int (*bm_bhyve_mem_read_fn)(struct vcpu *vcpu, uint64_t gpa, uint64_t *rval, int rsize,
                                    void *arg);
typedef int (*bm_bhyve_mem_write_fn)(struct vcpu *vcpu, uint64_t gpa, uint64_t wval, int wsize,
                                     void *arg);

/* bhyve's vmm_emulate_instruction has this type. */
typedef int (*bm_bhyve_emulate_fn)(struct vcpu *vcpu, uint64_t gpa, struct vie *vie,
                                   struct vm_guest_paging *paging, bm_bhyve_mem_read_fn mrr,
                                   bm_bhyve_mem_write_fn mrw, void *mrarg);

/* bhyve's mmio_handle_non_backed_mem has this type: what a memory access that reaches no
 * range does. 0 with *mr_paramp set: that range's handler serves the access (amd64: reads
 * all ones, ignores writes); otherwise the access returns what it returns (arm64: a data
 * abort injected, EJUSTRETURN). */
typedef int (*bm_bhyve_non_backed_fn)(struct vcpu *vcpu, uint64_t paddr,
                                      struct mem_range **mr_paramp);

/* One port access, as a decoder makes it: returns what bm_bhyve_inout returns. */
typedef int (*bm_bhyve_port_fn)(void *port_arg, int in, int port, int bytes, uint32_t *eax);

/* Decodes an I/O exit, makes its port accesses through port(port_arg, ...) and updates the
 * guest's state; returns what emulate_inout is to return. */
typedef int (*bm_bhyve_inout_decoder_fn)(struct vmctx *ctx, struct vcpu *vcpu,
                                         struct vm_exit *vmexit, bm_bhyve_port_fn port,
                                         void *port_arg);

/* An empty instance. vcpu_index (bhyve: vcpu_id) numbers the dispatch contexts
 * (bm_vcpu_index); NULL numbers them in the order they are made. -EINVAL, -ENOMEM. */
BM_API int bm_bhyve_new(int (*vcpu_index)(struct vcpu *vcpu), bm_bhyve **out);
/* Frees the instance and every registration still in it. -EBUSY (nothing freed) while
 * another live thread holds one of its contexts; -EDEADLK inside an access. NULL is
 * ignored. */
BM_API int bm_bhyve_free(bm_bhyve *b);

BM_API bm_system *bm_bhyve_system(const bm_bhyve *b);
BM_API bm_space *bm_bhyve_mem_space(const bm_bhyve *b);
BM_API bm_space *bm_bhyve_io_space(const bm_bhyve *b);

/* Host hooks; NULL removes one. Set them before the vCPUs run. */
BM_API int bm_bhyve_set_emulator(bm_bhyve *b, bm_bhyve_emulate_fn fn);
BM_API int bm_bhyve_set_inout_decoder(bm_bhyve *b, bm_bhyve_inout_decoder_fn fn);
/* What a memory access that reaches no range does; NULL (the default of bm_bhyve_new):
 * it returns ESRCH. */
BM_API int bm_bhyve_set_non_backed(bm_bhyve *b, bm_bhyve_non_backed_fn fn);
/* bhyve's x86.strictio: an access to a port nobody registered fails (-1). */
BM_API int bm_bhyve_set_strict_io(bm_bhyve *b, bool strict);

/* register_mem and friends: -EINVAL, -ENOMEM; unregister: -ENOENT, -EPERM (immutable). */
BM_API int bm_bhyve_register_mem(bm_bhyve *b, const struct mem_range *mr);
BM_API int bm_bhyve_register_mem_fallback(bm_bhyve *b, const struct mem_range *mr);
BM_API int bm_bhyve_unregister_mem(bm_bhyve *b, const struct mem_range *mr);
BM_API int bm_bhyve_register_inout(bm_bhyve *b, const struct inout_port *iop);
BM_API int bm_bhyve_unregister_inout(bm_bhyve *b, const struct inout_port *iop);

/* Accesses for the vCPU vcpu, which the handlers receive (EINVAL/-1 if b is NULL). */
BM_API int bm_bhyve_read_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t *rval,
                             int size);
BM_API int bm_bhyve_write_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t gpa, uint64_t wval,
                              int size);
BM_API int bm_bhyve_emulate_mem(bm_bhyve *b, struct vcpu *vcpu, uint64_t paddr, struct vie *vie,
                                struct vm_guest_paging *paging);
/* One IN (in != 0) or OUT of bytes (1, 2, 4) at port: the handler's result, 0 for a port
 * nobody registered (an IN reads all ones) unless strict, -1 for a direction the range's
 * flags do not allow or bad arguments. */
BM_API int bm_bhyve_inout(bm_bhyve *b, struct vmctx *ctx, struct vcpu *vcpu, int in, int port,
                          int bytes, uint32_t *eax);
BM_API int bm_bhyve_emulate_inout(bm_bhyve *b, struct vmctx *ctx, struct vcpu *vcpu,
                                  struct vm_exit *vmexit);

/* The process-wide instance behind bhyve's functions: NULL before init_mem or init_inout. */
BM_API bm_bhyve *bm_bhyve_global(void);
/* init_mem with a result: 0, -EINVAL (ncpu < 0), -ENOMEM. Contexts are made per vCPU
 * thread on demand, so ncpu sizes nothing. */
BM_API int bm_bhyve_global_init(int ncpu);
/* Frees the process-wide instance, after which init_mem or init_inout may create a new
 * one. Results as bm_bhyve_free. Not needed at exit, where the library empties it (see
 * busmap/compat/bhyve_mem.h). */
BM_API int bm_bhyve_global_free(void);

#ifdef __cplusplus
}
#endif
#endif
