/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The host bridge: where bus 0's BARs appear in the VMM's spaces, the configuration
 * mechanisms (CF8/CFC, ECAM) and the routing of a configuration cycle by bus number, which
 * every way into configuration space shares.
 */
#include "../internal.h"
#include "pci_internal.h"
#include <limits.h>
#include <stdlib.h>

#define ECAM_BUS_SHIFT    20
#define DEFAULT_VENDOR    0x1b36 /* the generic host bridge IDs QEMU's virt machines use */
#define DEFAULT_DEVICE    0x0008
#define CLASS_HOST_BRIDGE 0x060000

static uint32_t ones(unsigned size)
{
	return size >= 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
}

static bool valid_size(unsigned size)
{
	return size == 1 || size == 2 || size == 4;
}

/* ---- routing ---- */

/* A configuration cycle for bus nr: type 0 on the bus numbered nr, else forwarded through
 * the first bridge whose [secondary, subordinate] holds nr. */
static bm_pci_bus *find_bus(bm_pci_bus *b, unsigned nr)
{
	if (bm_pci_bus_number(b) == nr)
		return b;
	for (unsigned i = 0; i < PCI_MAX_DEVFN; i++) {
		const bm_pci_func *f = b->funcs[i];
		if (!f || !f->bridge)
			continue;
		unsigned sec = f->cfg[PCI_SECONDARY_BUS], sub = f->cfg[PCI_SUBORDINATE_BUS];
		if (sec == nr)
			return f->bridge->secondary;
		if (sec < nr && nr <= sub)
			return find_bus(f->bridge->secondary, nr);
	}
	return NULL;
}

bm_pci_func *pci_route(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn)
{
	bm_pci_bus *b = find_bus(&h->root, bus);
	return b ? b->funcs[PCI_DEVFN(dev, fn)] : NULL;
}

/* find_bus on what lock-free readers may see: the slots as plugged, the bridges' bus
 * numbers as published. false where a bridge's numbers kept changing. */
static bool find_bus_unlocked(bm_pci_bus *b, unsigned own, unsigned nr, bm_pci_bus **out)
{
	if (own == nr) {
		*out = b;
		return true;
	}
	for (unsigned i = 0; i < PCI_MAX_DEVFN; i++) {
		const bm_pci_func *f = __atomic_load_n(&b->funcs[i], __ATOMIC_ACQUIRE);
		if (!f || !f->bridge)
			continue;
		uint32_t nums;
		if (!pci_cfg_pub_read(f, PCI_SECONDARY_BUS, 2, &nums))
			return false;
		unsigned sec = nums & 0xff, sub = nums >> 8;
		if (sec == nr || (sec < nr && nr <= sub))
			return find_bus_unlocked(f->bridge->secondary, sec, nr, out);
	}
	*out = NULL;
	return true;
}

/* A guest configuration read without the lock, from inside an RCU read-side section (a
 * dispatch), which keeps every function it can reach allocated. false when it must take
 * the locked path: the function has a cfg_read hook, or writers kept it changing. */
static inline bool cfg_read_unlocked(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn,
                                     unsigned reg, unsigned size, uint32_t *value)
{
	bm_pci_bus *b = &h->root; /* bus 0, whatever the bridges say */
	if (bus && !find_bus_unlocked(b, 0, bus, &b))
		return false;
	const bm_pci_func *f =
	    b ? __atomic_load_n(&b->funcs[PCI_DEVFN(dev, fn)], __ATOMIC_ACQUIRE) : NULL;
	if (!f) {
		*value = ones(size);
		return true;
	}
	if (reg < f->cfg_size && f->ops && f->ops->cfg_read)
		return false; /* the device's hook expects the lock */
	return pci_cfg_pub_read(f, reg, size, value);
}

int bm_pci_cfg_read(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                    unsigned size, uint32_t *value)
{
	if (!h || !value || !valid_size(size) || bus > 255 || dev > 31 || fn > 7)
		return -EINVAL;
	*value = ones(size);
	int err = pci_begin(h);
	if (err)
		return err;
	bm_pci_func *f = pci_route(h, bus, dev, fn);
	if (f)
		*value = pci_func_read(f, reg, size);
	err = pci_commit(h);
	return f ? err : -ENODEV;
}

int bm_pci_cfg_write(bm_pci_host *h, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                     unsigned size, uint32_t value)
{
	if (!h || !valid_size(size) || bus > 255 || dev > 31 || fn > 7)
		return -EINVAL;
	struct pci_txn t;
	int err = pci_txn_begin(h, &t);
	if (err)
		return err;
	bm_pci_func *f = pci_route(h, bus, dev, fn);
	err = pci_txn_end(h, &t, f ? pci_func_write(&t, f, reg, size, value) : 0);
	return f ? err : -ENODEV;
}

/* A guest's configuration write to an absent function is dropped, as hardware does; any
 * other failure (-ENOMEM while re-mapping) goes back to the VMM through its bm_write. */
static int guest_write_result(int err)
{
	return err == -ENODEV ? 0 : err;
}

/* ---- map events ---- */

void pci_emit(bm_pci_func *f, unsigned bar, uint64_t addr, bool mapped)
{
	bm_pci_host *h = f->host;
	const struct pci_bar *b = &f->bars[bar];
	struct bm_pci_map_event ev = {
	    .func = f,
	    .bus = (uint8_t)pci_func_bus_number(f),
	    .dev = f->dev,
	    .fn = f->fn,
	    .bar = bar,
	    .io = b->type == BM_PCI_BAR_IO,
	    .mapped = mapped,
	    .addr = addr,
	    .size = b->size,
	};
	if (h->observer)
		h->observer(h->observer_arg, &ev);
	if (f->ops && f->ops->bar_map)
		f->ops->bar_map(f->opaque, f, bar, addr, b->size, mapped);
}

int bm_pci_host_set_map_observer(bm_pci_host *h, bm_pci_map_fn fn, void *arg)
{
	if (!h)
		return -EINVAL;
	int err = pci_begin(h);
	if (err)
		return err;
	h->observer = fn;
	h->observer_arg = fn ? arg : NULL;
	return pci_commit(h);
}

/* ---- CF8/CFC ---- */

/*
 * 0xcf8 is a 32-bit address register: only a 4-byte write latches it. Narrower reads see
 * its bytes; narrower writes are dropped, but for a byte at 0xcf9, the host's reset control.
 * 0xcfc..0xcff reach the register the latch selects, the byte offset adding to the register number,
 * when bit 31 is set.
 */
static int conf_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	bm_pci_host *h = opaque;
	uint32_t latch = __atomic_load_n(&h->conf_addr, __ATOMIC_RELAXED);
	if (off < 4) {
		*value = (latch >> (8 * off)) & ones(size);
		return 0;
	}
	uint32_t v = ones(size);
	unsigned bus = (latch >> 16) & 0xff, dev = (latch >> 11) & 0x1f, fn = (latch >> 8) & 7;
	unsigned reg = (latch & 0xfc) + (unsigned)(off - 4);
	if ((latch & PCI_CONFIG_ENABLE) && !cfg_read_unlocked(h, bus, dev, fn, reg, size, &v))
		bm_pci_cfg_read(h, bus, dev, fn, reg, size, &v);
	*value = v & ones(size);
	return 0;
}

static int conf_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	bm_pci_host *h = opaque;
	if (off < 4) {
		if (off == 0 && size == 4)
			__atomic_store_n(&h->conf_addr, (uint32_t)value, __ATOMIC_RELAXED);
		else if (off == 1 && size == 1 && h->cfg.ops && h->cfg.ops->reset_control)
			h->cfg.ops->reset_control(h->cfg.opaque, (uint8_t)value);
		return 0;
	}
	uint32_t latch = __atomic_load_n(&h->conf_addr, __ATOMIC_RELAXED);
	if (!(latch & PCI_CONFIG_ENABLE))
		return 0;
	return guest_write_result(
	    bm_pci_cfg_write(h, (latch >> 16) & 0xff, (latch >> 11) & 0x1f, (latch >> 8) & 7,
	                     (latch & 0xfc) + (unsigned)(off - 4), size, (uint32_t)value));
}

static const struct bm_region_ops conf_ops = {
    .read = conf_read,
    .write = conf_write,
    .valid_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4,
    .impl_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4,
};

/* ---- ECAM ---- */

static void ecam_decode(const bm_pci_host *h, uint64_t off, unsigned *bus, unsigned *dev,
                        unsigned *fn, unsigned *reg)
{
	*bus = h->cfg.ecam_bus_first + (unsigned)(off >> ECAM_BUS_SHIFT);
	*dev = (off >> 15) & 0x1f;
	*fn = (off >> 12) & 7;
	*reg = off & 0xfff;
}

static int ecam_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	bm_pci_host *h = opaque;
	unsigned bus, dev, fn, reg;
	uint32_t v = ones(size);
	ecam_decode(h, off, &bus, &dev, &fn, &reg);
	if (!cfg_read_unlocked(h, bus, dev, fn, reg, size, &v))
		bm_pci_cfg_read(h, bus, dev, fn, reg, size, &v);
	*value = v & ones(size);
	return 0;
}

static int ecam_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	bm_pci_host *h = opaque;
	unsigned bus, dev, fn, reg;
	ecam_decode(h, off, &bus, &dev, &fn, &reg);
	return guest_write_result(bm_pci_cfg_write(h, bus, dev, fn, reg, size, (uint32_t)value));
}

/* An 8-byte access is carried out as two configuration dwords. */
static const struct bm_region_ops ecam_ops = {
    .read = ecam_read,
    .write = ecam_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1 | BM_ACCESS_2 | BM_ACCESS_4,
};

/* ---- creation ---- */

static int check_config(bm_system *sys, const struct bm_pci_host_config *c)
{
	if (!sys || !c || !c->mem || (c->cf8 && !c->io) || (c->io && c->io_window_size))
		return -EINVAL;
	if (c->ecam) {
		uint64_t n = pci_ecam_bus_count(c), len = n << ECAM_BUS_SHIFT;
		if (c->ecam_bus_first + n > 256 || c->ecam_base + (len - 1) < c->ecam_base)
			return -EINVAL;
	}
	if (c->io_window_size && c->io_window_base + (c->io_window_size - 1) < c->io_window_base)
		return -EINVAL;
	return 0;
}

static int above(int prio)
{
	return prio == INT_MAX ? prio : prio + 1;
}

static int place_io(bm_pci_host *h)
{
	const struct bm_pci_host_config *c = &h->cfg;
	int err;
	if (c->io)
		return bm_region_add(bm_space_root(c->io), h->root.io, 0, c->io_priority);
	if (!c->io_window_size)
		return 0;
	err = bm_region_new_alias(h->sys, "pci-io-window", h->root.io, 0, c->io_window_size,
	                          &h->io_window);
	if (!err)
		err = bm_region_add(bm_space_root(c->mem), h->io_window, c->io_window_base,
		                    c->io_priority);
	return err;
}

static int place_conf(bm_pci_host *h)
{
	const struct bm_pci_host_config *c = &h->cfg;
	int err = 0;
	if (c->cf8) {
		err = bm_region_new_io(h->sys, "pci-conf", 8, &conf_ops, h, &h->conf);
		if (!err)
			err = bm_region_add(bm_space_root(c->io), h->conf, PCI_CONFIG_ADDRESS_PORT,
			                    above(c->io_priority));
	}
	if (!err && c->ecam) {
		uint64_t len = (uint64_t)pci_ecam_bus_count(c) << ECAM_BUS_SHIFT;
		err = bm_region_new_io(h->sys, "pci-ecam", len, &ecam_ops, h, &h->ecam);
		if (!err)
			err = bm_region_add(bm_space_root(c->mem), h->ecam, c->ecam_base,
			                    above(c->mem_priority));
	}
	return err;
}

static int add_host_bridge(bm_pci_host *h)
{
	const struct bm_pci_host_config *c = &h->cfg;
	if (c->no_host_bridge)
		return 0;
	struct bm_pci_func_desc d = {
	    .vendor_id = c->host_vendor_id ? c->host_vendor_id : DEFAULT_VENDOR,
	    .device_id = c->host_device_id ? c->host_device_id : DEFAULT_DEVICE,
	    .revision = c->host_revision,
	    .class_code = CLASS_HOST_BRIDGE,
	};
	return bm_pci_func_new(&h->root, 0, 0, &d, &h->host_bridge);
}

static int host_build(bm_pci_host *h)
{
	int err = pci_bus_init(&h->root, h, NULL, "pci-mem", "pci-io");
	if (!err)
		err = bm_region_add(bm_space_root(h->cfg.mem), h->root.mem, 0, h->cfg.mem_priority);
	if (!err)
		err = place_io(h);
	if (!err)
		err = place_conf(h);
	if (!err)
		err = add_host_bridge(h);
	return err;
}

/* Takes every region the host made out of the map; functions are detached already. */
static void host_detach_regions(bm_pci_host *h)
{
	bm_region_destroy(h->conf);
	bm_region_destroy(h->ecam);
	bm_region_destroy(h->io_window);
	h->conf = h->ecam = h->io_window = NULL;
	pci_bus_destroy(&h->root);
}

int bm_pci_host_new(bm_system *sys, const struct bm_pci_host_config *cfg, bm_pci_host **out)
{
	if (!out)
		return -EINVAL;
	int err = check_config(sys, cfg);
	if (err)
		return err;
	bm_pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->sys = sys;
	h->cfg = *cfg;
	h->io_limit = cfg->io_limit ? cfg->io_limit : BM_PCI_IO_LIMIT_X86;
	err = bm_begin(sys);
	if (err) {
		free(h);
		return err;
	}
	err = host_build(h);
	if (!err)
		sys->pci_hosts++;
	else {
		/* Nothing was published: the transaction is still open. */
		pci_bus_detach_funcs(&h->root);
		host_detach_regions(h);
		pci_bus_release_funcs(&h->root);
	}
	int cerr = bm_commit(sys);
	if (err) {
		free(h);
		return err;
	}
	*out = h;
	return cerr;
}

int bm_pci_host_free(bm_pci_host *h)
{
	if (!h)
		return 0;
	int err = bm_synchronize(h->sys);
	if (err)
		return err;
	err = pci_begin(h);
	if (err)
		return err;
	pci_bus_detach_funcs(&h->root);
	host_detach_regions(h);
	h->sys->pci_hosts--;
	pci_commit(h);
	/* Dispatches that found a CF8/ECAM/BAR region before it left may still run in it. */
	bm_synchronize(h->sys);
	pci_bus_release_funcs(&h->root);
	pci_txn_host_free(h);
	free(h);
	return 0;
}

bm_pci_bus *bm_pci_host_root_bus(bm_pci_host *h)
{
	return h ? &h->root : NULL;
}

bm_pci_func *bm_pci_host_bridge_func(bm_pci_host *h)
{
	return h ? h->host_bridge : NULL;
}

bm_region *bm_pci_host_mem_region(bm_pci_host *h)
{
	return h ? h->root.mem : NULL;
}

bm_region *bm_pci_host_io_region(bm_pci_host *h)
{
	return h ? h->root.io : NULL;
}

uint64_t bm_pci_host_io_limit(const bm_pci_host *h)
{
	return h ? h->io_limit : 0;
}

bool bm_pci_host_decodes_zero(const bm_pci_host *h)
{
	return h && h->cfg.decode_zero;
}

bm_system *bm_pci_host_system(const bm_pci_host *h)
{
	return h ? h->sys : NULL;
}
