/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bhyve's port I/O interface (usr.sbin/bhyve/amd64/inout.h, FreeBSD main), implemented on
 * libbusmap.
 *
 * Device models register port ranges (struct inout_port) at run time, or statically with
 * INOUT_PORT, which init_inout collects. An IN or OUT reaches the handler of the range that
 * holds its first port, with the whole access, as in bhyve; a port nobody registered reads
 * all ones and ignores writes. Unlike bhyve's inout.c, ranges may overlap (the most recent
 * wins; IOPORT_F_DEFAULT ranges lose to every other), and unregister_inout removes exactly
 * the registration with the same name, port and size, so that whatever it hid shows again.
 *
 * The functions work on the process-wide instance that init_mem or init_inout creates
 * (busmap/compat/bhyve.h has them on an explicit instance). Results follow bhyve: 0 or -1.
 *
 * Threads: as for busmap/compat/bhyve_mem.h. init_inout before the vCPUs start;
 * register_inout and unregister_inout from any thread, handlers included; emulate_inout on
 * the vCPU's thread.
 *
 * The host program provides vcpu_id, and the decoding of an I/O exit (struct vm_exit is
 * its own), installed with bm_bhyve_set_inout_decoder: the decoder reads the exit, makes
 * each port access through the function it is given, and updates the guest's registers.
 */
#ifndef BUSMAP_COMPAT_BHYVE_INOUT_H
#define BUSMAP_COMPAT_BHYVE_INOUT_H

#include <busmap/system.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque here; the host program defines them (bhyve: libvmmapi, machine/vmm.h). */
struct vcpu;
struct vmctx;
struct vm_exit;

/* in is 1 for IN, 0 for OUT; bytes is 1, 2 or 4; port is the first port of the access.
 * Returns 0, or -1 to fail the access. */
typedef int (*inout_func_t)(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
                            void *arg);

struct inout_port {
	const char *name; /* kept by pointer: it must outlive the registration */
	int port;
	int size;
	int flags;
	inout_func_t handler;
	void *arg;
};
#define IOPORT_F_IN    0x1
#define IOPORT_F_OUT   0x2
#define IOPORT_F_INOUT (IOPORT_F_IN | IOPORT_F_OUT)
/* bhyve's mark for its built-in default handlers; here, a range registered with it loses to
 * every range registered without it. */
#define IOPORT_F_DEFAULT 0x80000000

/*
 * A one-port range registered by init_inout, with a NULL arg, as in bhyve. The entries go
 * to an ELF section named like bhyve's linker set, which init_inout walks (ELF targets).
 */
#define BM_BHYVE_CAT2(a, b) a##b
#define BM_BHYVE_CAT(a, b)  BM_BHYVE_CAT2(a, b)
#define INOUT_PORT(name, port, flags, handler)                                                     \
	static struct inout_port BM_BHYVE_CAT(bm_bhyve_inout_port_, __LINE__) = {                  \
	    #name, (port), 1, (flags), (handler), 0};                                              \
	static const void *const BM_BHYVE_CAT(bm_bhyve_inout_entry_, __LINE__)                     \
	    __attribute__((section("set_inout_port_set"), used)) =                                 \
	        &BM_BHYVE_CAT(bm_bhyve_inout_port_, __LINE__)

/* Creates the process-wide instance if init_mem has not, and registers the INOUT_PORT
 * ranges (once). */
BM_API void init_inout(void);

/*
 * Emulates an I/O exit through the host's decoder. -1 without a decoder, otherwise what the
 * decoder returns (bhyve: 0, or -1 when a handler failed or the direction is not allowed).
 */
BM_API int emulate_inout(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *vmexit);

/* 0, or -1 (ports outside 0 .. 0xffff, size < 1, no handler, out of memory, no instance).
 * Overlapping an existing range is not an error. */
BM_API int register_inout(struct inout_port *iop);

/* Removes the registration with the same name (pointer, or equal string), port and size;
 * -1 if there is none. */
BM_API int unregister_inout(struct inout_port *iop);

#ifdef __cplusplus
}
#endif
#endif
