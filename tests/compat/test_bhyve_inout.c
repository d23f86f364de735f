/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What bhyve device models rely on from inout.c: port ranges of 1, 2 and 4 ports, IN and OUT
 * of each size, direction flags, ports nobody registered, overlaps, unregistering by
 * identity, emulate_inout through the host's decoder, and INOUT_PORT with init_inout.
 */
#include "bhyve_testutil.h"

static int setup(void **state)
{
	return fixture_new(state, NULL, 0);
}

static int io(struct fixture *f, int in, int port, int bytes, uint32_t *eax)
{
	return bm_bhyve_inout(f->b, f->ctx, &f->vcpu, in, port, bytes, eax);
}

static void add(struct fixture *f, struct dev *d, int port, int size, int flags)
{
	struct inout_port iop = dev_ports(d, port, size, flags);
	assert_int_equal(bm_bhyve_register_inout(f->b, &iop), 0);
}

static uint32_t ones(int bytes)
{
	return bytes == 4 ? UINT32_MAX : (1u << (8 * bytes)) - 1;
}

static void sizes_and_directions(void **state)
{
	struct fixture *f = *state;
	struct dev d1 = {.name = "one"}, d2 = {.name = "two"}, d4 = {.name = "four"};
	struct dev *devs[] = {&d1, &d2, &d4};
	add(f, &d1, 0x60, 1, IOPORT_F_INOUT);
	add(f, &d2, 0x70, 2, IOPORT_F_INOUT);
	add(f, &d4, 0xcf8, 4, IOPORT_F_INOUT);
	const int first[] = {0x60, 0x70, 0xcf8}, count[] = {1, 2, 4};
	for (int i = 0; i < 3; i++) {
		struct dev *d = devs[i];
		for (int p = first[i]; p < first[i] + count[i]; p++) {
			for (int bytes = 1; bytes <= 4; bytes *= 2) {
				uint32_t eax = 0;
				unsigned calls = d->calls;
				assert_int_equal(io(f, 1, p, bytes, &eax), 0);
				assert_int_equal(eax, dev_port_value(d, p));
				assert_ptr_equal(d->ctx, f->ctx);
				assert_int_equal(d->dir, 1);
				assert_int_equal(d->addr, (uint64_t)p); /* absolute, as in bhyve */
				assert_int_equal(d->size, bytes);
				eax = 0xa5a5a5a5u & ones(bytes);
				assert_int_equal(io(f, 0, p, bytes, &eax), 0);
				assert_int_equal(d->dir, 0);
				assert_int_equal(d->val, 0xa5a5a5a5u & ones(bytes));
				assert_int_equal(d->calls, calls + 2);
			}
		}
	}
}

/* bhyve's PCI layer registers 0xcfc..0xcff as four one-port ranges; a 4-byte IN at 0xcfc
 * must reach the handler of 0xcfc whole. */
static void first_port_decides(void **state)
{
	struct fixture *f = *state;
	struct dev data[4] = {{.name = "d0"}, {.name = "d1"}, {.name = "d2"}, {.name = "d3"}};
	for (int i = 0; i < 4; i++)
		add(f, &data[i], 0xcfc + i, 1, IOPORT_F_INOUT);
	uint32_t eax;
	assert_int_equal(io(f, 1, 0xcfc, 4, &eax), 0);
	assert_int_equal(data[0].size, 4);
	assert_int_equal(io(f, 0, 0xcfe, 2, &eax), 0);
	assert_int_equal(data[2].size, 2);
	assert_int_equal(data[1].calls + data[3].calls, 0);
}

static void direction_flags(void **state)
{
	struct fixture *f = *state;
	struct dev in = {.name = "in"}, out = {.name = "out"};
	add(f, &in, 0x100, 2, IOPORT_F_IN);
	add(f, &out, 0x200, 2, IOPORT_F_OUT);
	uint32_t eax = 0;
	assert_int_equal(io(f, 1, 0x100, 2, &eax), 0);
	assert_int_equal(io(f, 0, 0x100, 2, &eax), -1);
	assert_int_equal(in.calls, 1);
	assert_int_equal(io(f, 0, 0x200, 1, &eax), 0);
	assert_int_equal(io(f, 1, 0x200, 1, &eax), -1);
	assert_int_equal(out.calls, 1);
}

static void unregistered_ports(void **state)
{
	struct fixture *f = *state;
	for (int bytes = 1; bytes <= 4; bytes *= 2) {
		uint32_t eax = 0x12345678;
		assert_int_equal(io(f, 1, 0x3f8, bytes, &eax), 0);
		assert_int_equal(eax, ones(bytes)); /* bhyve's default handler */
		assert_int_equal(io(f, 0, 0x3f8, bytes, &eax), 0);
	}
	assert_int_equal(bm_bhyve_set_strict_io(f->b, true), 0);
	uint32_t eax = 0;
	assert_int_equal(io(f, 1, 0x3f8, 1, &eax), -1);
	assert_int_equal(io(f, 0, 0x3f8, 1, &eax), -1);
}

static void bad_accesses(void **state)
{
	struct fixture *f = *state;
	uint32_t eax;
	assert_int_equal(io(f, 1, 0x80, 3, &eax), -1);
	assert_int_equal(io(f, 1, 0x80, 8, &eax), -1);
	assert_int_equal(io(f, 1, 0x10000, 1, &eax), -1);
	assert_int_equal(io(f, 1, -1, 1, &eax), -1);
	assert_int_equal(io(f, 1, 0x80, 1, NULL), -1);
	assert_int_equal(io(f, 1, 0xffff, 4, &eax), 0); /* the first port decides */
}

static void handler_result_passes_back(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev", .result = -1};
	add(f, &d, 0x400, 1, IOPORT_F_INOUT);
	uint32_t eax;
	assert_int_equal(io(f, 1, 0x400, 1, &eax), -1);
}

static void overlaps_and_defaults(void **state)
{
	struct fixture *f = *state;
	struct dev old = {.name = "old"}, young = {.name = "young"}, dflt = {.name = "dflt"};
	add(f, &old, 0x500, 8, IOPORT_F_INOUT);
	add(f, &young, 0x504, 8, IOPORT_F_INOUT);
	add(f, &dflt, 0x500, 0x100, IOPORT_F_INOUT | IOPORT_F_DEFAULT);
	uint32_t eax;
	assert_int_equal(io(f, 1, 0x503, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&old, 0x503));
	assert_int_equal(io(f, 1, 0x504, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&young, 0x504));
	assert_int_equal(io(f, 1, 0x50c, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&dflt, 0x50c));
	struct inout_port gone = {.name = "young", .port = 0x504, .size = 8};
	assert_int_equal(bm_bhyve_unregister_inout(f->b, &gone), 0);
	assert_int_equal(io(f, 1, 0x504, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&old, 0x504));
	assert_int_equal(io(f, 1, 0x508, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&dflt, 0x508));
}

static void unregister_mismatch(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	add(f, &d, 0x600, 4, IOPORT_F_INOUT);
	struct inout_port wrong[] = {
	    {.name = "other", .port = 0x600, .size = 4},
	    {.name = "dev", .port = 0x601, .size = 4},
	    {.name = "dev", .port = 0x600, .size = 2},
	};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(bm_bhyve_unregister_inout(f->b, &wrong[i]), -ENOENT);
	uint32_t eax;
	assert_int_equal(io(f, 1, 0x603, 1, &eax), 0);
	assert_int_equal(eax, dev_port_value(&d, 0x603));
	struct inout_port mine = {.name = "dev", .port = 0x600, .size = 4};
	assert_int_equal(bm_bhyve_unregister_inout(f->b, &mine), 0);
	assert_int_equal(io(f, 1, 0x603, 1, &eax), 0);
	assert_int_equal(eax, 0xff);
}

static void refused_registrations(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	struct inout_port bad[] = {
	    dev_ports(&d, -1, 1, IOPORT_F_INOUT),
	    dev_ports(&d, 0xffff, 2, IOPORT_F_INOUT),
	    dev_ports(&d, 0x10, 0, IOPORT_F_INOUT),
	    dev_ports(&d, 0x10, 1, IOPORT_F_INOUT),
	};
	bad[3].handler = NULL;
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(bm_bhyve_register_inout(f->b, &bad[i]), -EINVAL);
	struct inout_port last = dev_ports(&d, 0xfffc, 4, IOPORT_F_INOUT);
	assert_int_equal(bm_bhyve_register_inout(f->b, &last), 0);
}

/* ---- emulate_inout ---- */

/* Stands for the host's decoding of an I/O exit: the exit names port, size and direction. */
struct fake_exit {
	int in, port, bytes;
	uint32_t eax;
	struct vmctx *ctx;
	struct vcpu *vcpu;
};

static int fake_decoder(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *vmexit,
                        bm_bhyve_port_fn port, void *port_arg)
{
	struct fake_exit *x = (struct fake_exit *)vmexit;
	x->ctx = ctx;
	x->vcpu = vcpu;
	return port(port_arg, x->in, x->port, x->bytes, &x->eax);
}

static void emulate_inout_uses_decoder(void **state)
{
	struct fixture *f = *state;
	struct dev d = {.name = "dev"};
	add(f, &d, 0x700, 4, IOPORT_F_INOUT);
	struct fake_exit x = {1, 0x702, 2, 0, NULL, NULL};
	struct vm_exit *exit = (struct vm_exit *)&x;
	assert_int_equal(bm_bhyve_emulate_inout(f->b, f->ctx, &f->vcpu, exit), -1);
	assert_int_equal(bm_bhyve_set_inout_decoder(f->b, fake_decoder), 0);
	assert_int_equal(bm_bhyve_emulate_inout(f->b, f->ctx, &f->vcpu, exit), 0);
	assert_ptr_equal(x.ctx, f->ctx);
	assert_ptr_equal(x.vcpu, &f->vcpu);
	assert_int_equal(x.eax, dev_port_value(&d, 0x702));
	assert_ptr_equal(d.ctx, f->ctx);
	assert_int_equal(d.size, 2);
}

/* ---- INOUT_PORT and the process-wide functions ---- */

static struct dev post = {.name = "post"};
static void *post_arg_seen = &post;

static int post_handler(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	(void)ctx;
	(void)bytes;
	post_arg_seen = arg;
	post.calls++;
	post.addr = (uint64_t)port;
	if (in)
		*eax = 0x55;
	return 0;
}

INOUT_PORT(post, 0x84, IOPORT_F_IN, post_handler);

static void global_functions(void **state)
{
	(void)state;
	struct dev d = {.name = "dev"};
	struct inout_port iop = dev_ports(&d, 0x900, 2, IOPORT_F_INOUT);
	struct vcpu vcpu = {0};
	assert_int_equal(register_inout(&iop), -1); /* no instance yet */
	init_inout();
	init_inout(); /* collects INOUT_PORT once */
	assert_int_equal(register_inout(&iop), 0);
	assert_int_equal(unregister_inout(&iop), 0);
	assert_int_equal(unregister_inout(&iop), -1);
	assert_int_equal(emulate_inout(NULL, &vcpu, NULL), -1);

	uint32_t eax = 0;
	bm_bhyve *b = bm_bhyve_global();
	assert_int_equal(bm_bhyve_inout(b, NULL, &vcpu, 1, 0x84, 1, &eax), 0);
	assert_int_equal(eax, 0x55);
	assert_int_equal(post.calls, 1);
	assert_int_equal(post.addr, 0x84);
	assert_null(post_arg_seen); /* init_inout registers them with a NULL arg, as bhyve */
	assert_int_equal(bm_bhyve_inout(b, NULL, &vcpu, 0, 0x84, 1, &eax), -1); /* IN only */
	assert_int_equal(post.calls, 1);
	init_mem(2); /* after init_inout: the same instance */
	assert_ptr_equal(bm_bhyve_global(), b);
	assert_int_equal(bm_bhyve_global_free(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(sizes_and_directions, setup, teardown),
	    cmocka_unit_test_setup_teardown(first_port_decides, setup, teardown),
	    cmocka_unit_test_setup_teardown(direction_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(unregistered_ports, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(handler_result_passes_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(overlaps_and_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(unregister_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(refused_registrations, setup, teardown),
	    cmocka_unit_test_setup_teardown(emulate_inout_uses_decoder, setup, teardown),
	    cmocka_unit_test(global_functions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
