/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PCI transactions (src/pci/txn.c): a failed one puts registers, BARs and the map back
 * and tells nobody; a successful one tells the observer and the hooks after its
 * publication; nested ones hand everything to the outermost.
 */
#include "allocfail/wrap.h"
#include "pci/pci_internal.h"
#include "pcitest.h"

struct dev {
	struct pt *t;
	unsigned cfg_writes;
	bm_pci_func *other; /* written by the hook on its first call, if set */
	bool mapped_seen;   /* the observer found the new placement already published */
};

static void dev_cfg_write(void *opaque, bm_pci_func *f, unsigned reg, unsigned size, uint32_t value)
{
	(void)f, (void)reg, (void)size, (void)value;
	struct dev *d = opaque;
	if (d->cfg_writes++ == 0 && d->other)
		assert_int_equal(bm_pci_func_cfg_write(d->other, 0x10, 4, 0xc0200000), 0);
}

static const struct bm_pci_func_ops dev_ops = {.cfg_write = dev_cfg_write};

static int bar_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu, (void)off, (void)size;
	*value = (uintptr_t)opaque;
	return 0;
}

static const struct bm_region_ops bar_ops = {.read = bar_read};

/* On bus (NULL: t's root bus), a 32-bit memory BAR of 4 KiB at base, decoded; its
 * contents read as id. */
static bm_pci_func *add_dev_on(struct pt *t, bm_pci_bus *bus, unsigned slot, struct dev *d,
                               uintptr_t id, uint32_t base)
{
	struct bm_pci_func_desc desc = {
	    .vendor_id = 0x1af4, .device_id = 0x1000, .ops = &dev_ops, .opaque = d};
	desc.bars[0] = (struct bm_pci_bar_desc){
	    .type = BM_PCI_BAR_MEM32, .size = 0x1000, .ops = &bar_ops, .opaque = (void *)id};
	bm_pci_func *f = pt_add(t, bus, slot, 0, &desc);
	wr(f, 0x10, 4, base);
	wr(f, 0x04, 2, 0x2);
	return f;
}

static bm_pci_func *add_dev(struct pt *t, unsigned slot, struct dev *d, uintptr_t id, uint32_t base)
{
	return add_dev_on(t, NULL, slot, d, id, base);
}

/* f at slot 2 of t's root bus (reads 0x22 at 0xc0000000), whose hook's first call moves g's
 * BAR to 0xc0200000; g at slot 3 of gbus (NULL: t's root bus), reading 0x33 at 0xc0010000. */
static bm_pci_func *hook_pair(struct pt *t, bm_pci_bus *gbus, struct dev *d, struct dev *e,
                              bm_pci_func **g)
{
	*d = (struct dev){.t = t};
	*e = (struct dev){.t = t};
	bm_pci_func *f = add_dev(t, 2, d, 0x22, 0xc0000000);
	*g = add_dev_on(t, gbus, 3, e, 0x33, 0xc0010000);
	d->other = *g;
	d->cfg_writes = 0;
	return f;
}

static uint64_t mmio(struct pt *t, uint64_t addr)
{
	uint64_t v = 0;
	bm_read(t->vcpu, t->mem, addr, 4, &v);
	return v;
}

static void test_failure_restores_and_tells_nobody(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct dev d = {.t = t};
	bm_pci_func *f = add_dev(t, 2, &d, 0x22, 0xc0000000);
	size_t nev = t->nev;
	unsigned writes = d.cfg_writes;

	struct pci_txn txn;
	assert_int_equal(pci_txn_begin(t->host, &txn), 0);
	assert_int_equal(pci_func_write(&txn, f, 0x10, 4, 0xd0000000), 0);
	assert_int_equal(pci_func_write(&txn, f, 0x04, 2, 0x0), 0);
	assert_int_equal(pci_func_write(&txn, f, 0x04, 2, 0x2), 0);
	assert_int_equal(pci_txn_end(t->host, &txn, -EIO), -EIO);

	assert_int_equal(rd(f, 0x10, 4), 0xc0000000);
	assert_int_equal(rd(f, 0x04, 2), 0x2);
	struct bm_pci_bar_info bi;
	assert_int_equal(bm_pci_bar_info(f, 0, &bi), 0);
	assert_true(bi.mapped);
	assert_int_equal(bi.mapped_addr, 0xc0000000);
	assert_int_equal(mmio(t, 0xc0000000), 0x22);
	assert_int_equal(mmio(t, 0xd0000000), 0xffffffff);
	assert_int_equal(t->nev, nev);
	assert_int_equal(d.cfg_writes, writes);
	pt_free(t);
}

/* The observer runs after the publication: the placement it is told about is live. */
static void see_live(void *arg, const struct bm_pci_map_event *ev)
{
	struct dev *d = arg;
	pt_record(d->t, ev);
	if (ev->mapped)
		d->mapped_seen = mmio(d->t, ev->addr) == 0x22;
}

static void test_events_follow_publication(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct dev d = {.t = t};
	bm_pci_func *f = add_dev(t, 2, &d, 0x22, 0xc0000000);
	assert_int_equal(bm_pci_host_set_map_observer(t->host, see_live, &d), 0);
	size_t nev = t->nev;
	wr(f, 0x10, 4, 0xc0100000);
	assert_int_equal(t->nev, nev + 2);
	assert_false(t->ev[nev].mapped);
	assert_int_equal(t->ev[nev].addr, 0xc0000000);
	assert_true(t->ev[nev + 1].mapped);
	assert_int_equal(t->ev[nev + 1].addr, 0xc0100000);
	assert_true(d.mapped_seen);
	pt_free(t);
}

/* An inner transaction's success is the outer one's to confirm or take back. */
static void nested(bool fail)
{
	struct pt *t = pt_new();
	struct dev d = {.t = t};
	bm_pci_func *f = add_dev(t, 2, &d, 0x22, 0xc0000000);
	bm_pci_func *g = add_dev(t, 3, &d, 0x33, 0xc0010000);
	size_t nev = t->nev;
	unsigned writes = d.cfg_writes;

	struct pci_txn outer;
	assert_int_equal(pci_txn_begin(t->host, &outer), 0);
	assert_int_equal(pci_func_write(&outer, g, 0x10, 4, 0xc0030000), 0);
	/* Through the public entry: a transaction nested in outer. */
	assert_int_equal(bm_pci_func_cfg_write(f, 0x10, 4, 0xc0020000), 0);
	assert_int_equal(bm_pci_func_cfg_write(g, 0x10, 4, 0xc0040000), 0);
	assert_int_equal(t->nev, nev);
	assert_int_equal(d.cfg_writes, writes);
	assert_int_equal(pci_txn_end(t->host, &outer, fail ? -EIO : 0), fail ? -EIO : 0);

	if (fail) {
		assert_int_equal(rd(f, 0x10, 4), 0xc0000000);
		assert_int_equal(rd(g, 0x10, 4), 0xc0010000);
		assert_int_equal(mmio(t, 0xc0000000), 0x22);
		assert_int_equal(mmio(t, 0xc0010000), 0x33);
		assert_int_equal(t->nev, nev);
		assert_int_equal(d.cfg_writes, writes);
	} else {
		assert_int_equal(mmio(t, 0xc0020000), 0x22);
		assert_int_equal(mmio(t, 0xc0040000), 0x33);
		/* g was saved first: its events (old to newest, never the intermediate
		 * placement), then f's; then the hooks of the three writes, in order. */
		assert_int_equal(t->nev, nev + 4);
		assert_ptr_equal(t->ev[nev].func, g);
		assert_int_equal(t->ev[nev].addr, 0xc0010000);
		assert_int_equal(t->ev[nev + 1].addr, 0xc0040000);
		assert_ptr_equal(t->ev[nev + 2].func, f);
		assert_int_equal(t->ev[nev + 3].addr, 0xc0020000);
		assert_int_equal(d.cfg_writes, writes + 3);
	}
	pt_free(t);
}

static void test_nested_success(void **state)
{
	(void)state;
	nested(false);
}

static void test_nested_failure(void **state)
{
	(void)state;
	nested(true);
}

/* A hook that writes another function runs a transaction of its own, which reports its
 * own events; the first one's are not reported twice. */
static void test_hook_writes_another_function(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct dev d, e;
	bm_pci_func *g, *f = hook_pair(t, NULL, &d, &e, &g);
	size_t nev = t->nev;
	wr(f, 0x10, 4, 0xc0100000);
	assert_int_equal(t->nev, nev + 4);
	assert_ptr_equal(t->ev[nev + 1].func, f);
	assert_int_equal(t->ev[nev + 1].addr, 0xc0100000);
	assert_ptr_equal(t->ev[nev + 2].func, g);
	assert_int_equal(t->ev[nev + 3].addr, 0xc0200000);
	assert_int_equal(mmio(t, 0xc0200000), 0x33);
	pt_free(t);
}

/* What an observer checks: the placement at addr it is told of reads as want in space, so
 * it is already published. */
struct live_check {
	struct pt *t;
	bm_space *space;
	uint64_t addr, want;
	unsigned told; /* times the mapping at addr was reported */
	bool seen;     /* it read as want when last reported */
};

static void see_live_in(void *arg, const struct bm_pci_map_event *ev)
{
	struct live_check *c = arg;
	uint64_t v = 0;
	if (ev->mapped && ev->addr == c->addr) {
		c->told++;
		bm_read(c->t->vcpu, c->space, c->addr, 4, &v);
		c->seen = v == c->want;
	}
}

/* The hook's write is published before its events too: the observer finds the other
 * function's new placement live when told of it. */
static void test_hook_write_published_before_told(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct dev d, e;
	bm_pci_func *g, *f = hook_pair(t, NULL, &d, &e, &g);
	struct live_check c = {.t = t, .space = t->mem, .addr = 0xc0200000, .want = 0x33};
	assert_int_equal(bm_pci_host_set_map_observer(t->host, see_live_in, &c), 0);
	wr(f, 0x10, 4, 0xc0100000);
	assert_true(c.seen);
	/* Inside a caller's transaction nothing publishes before its commit, hooks' writes
	 * included; the events still come, after the write. */
	d.cfg_writes = 0;
	c.seen = false;
	assert_int_equal(bm_pci_func_cfg_write(g, 0x10, 4, 0xc0010000), 0);
	assert_int_equal(bm_begin(bm_pci_host_system(t->host)), 0);
	c.told = 0;
	wr(f, 0x10, 4, 0xc0000000);
	assert_int_equal(c.told, 1);
	assert_false(c.seen);
	assert_int_equal(bm_commit(bm_pci_host_system(t->host)), 0);
	assert_int_equal(mmio(t, 0xc0200000), 0x33);
	pt_free(t);
}

/* Two hosts of one system: a hook of the first one's function writes a BAR of the
 * second's, and the second host's observer is told only once that placement is live. */
static void test_hook_write_to_other_host_published_before_told(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	bm_space *mem2;
	assert_int_equal(bm_space_new(t->sys, "memory2", "system2", &mem2), 0);
	struct bm_pci_host_config cfg = {.mem = mem2};
	bm_pci_host *h2;
	assert_int_equal(bm_pci_host_new(t->sys, &cfg, &h2), 0);
	struct dev d, e;
	bm_pci_func *g, *f = hook_pair(t, bm_pci_host_root_bus(h2), &d, &e, &g);
	struct live_check c = {.t = t, .space = mem2, .addr = 0xc0200000, .want = 0x33};
	assert_int_equal(bm_pci_host_set_map_observer(h2, see_live_in, &c), 0);
	wr(f, 0x10, 4, 0xc0100000);
	assert_int_equal(c.told, 1);
	assert_true(c.seen);
	assert_int_equal(rd(g, 0x10, 4), 0xc0200000);
	assert_int_equal(bm_pci_host_free(h2), 0);
	pt_free(t);
}

/* Once a write has run, the host keeps what the next one needs: a write that moves nothing
 * allocates nothing, even for a function whose writes have effects that wait for success. */
static void test_write_allocates_nothing(void **state)
{
	(void)state;
	struct pt *t = pt_new();
	struct dev d = {.t = t};
	bm_pci_func *f = add_dev(t, 2, &d, 0x22, 0xc0000000);
	unsigned writes = d.cfg_writes;
	for (unsigned i = 0; i < 3; i++) {
		af_arm(1);
		int err = bm_pci_func_cfg_write(f, 0x3c, 1, 0x20 + i);
		unsigned long n = af_disarm();
		assert_int_equal(err, 0);
		assert_int_equal(n, 0);
	}
	assert_int_equal(rd(f, 0x3c, 1), 0x22);
	assert_int_equal(d.cfg_writes, writes + 3);
	pt_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failure_restores_and_tells_nobody),
	    cmocka_unit_test(test_events_follow_publication),
	    cmocka_unit_test(test_nested_success),
	    cmocka_unit_test(test_nested_failure),
	    cmocka_unit_test(test_hook_writes_another_function),
	    cmocka_unit_test(test_hook_write_published_before_told),
	    cmocka_unit_test(test_hook_write_to_other_host_published_before_told),
	    cmocka_unit_test(test_write_allocates_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
