/* SPDX-License-Identifier: BSD-2-Clause */
#include "qemu_replay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 0x40
#define INIT_BYTES   0x100 /* the header and the capabilities as first read */
#define NUM_SLOTS    9     /* BAR registers 0x10..0x24, then 0x30 and 0x38 */
#define NO_DEVICE    (-1)
#define ROOT_BUS     (-1) /* the bus node of the root bus: no bridge leads there */
#define NO_ROUTE     (-2) /* no bridge leads to the number */
#define BUS_REGS     0x18 /* primary, secondary and subordinate bus numbers */

/* ---- per-device inference state ---- */

struct device {
	struct qemu_replay_device pub;
	bm_pci_func *func;
	uint8_t init[INIT_BYTES]; /* bytes as first read, before any write */
	uint64_t init_known[INIT_BYTES / 64], written[INIT_BYTES / 64];
	bool probing[NUM_SLOTS]; /* the last write to the slot was a sizing probe */
	bool have_mask[NUM_SLOTS];
	uint32_t mask[NUM_SLOTS];
	unsigned mask_line[NUM_SLOTS];
	bool secondary_known;
	/* Bridges: the read-only low nibbles of the I/O and prefetchable windows, from any
	 * read (a probe may write them before the first read): 1 is 32 or 64 bits. */
	bool io32, pref64;
	/* Where it is: behind which bridge (a device index, or ROOT_BUS) at which devfn. */
	int32_t parent;
	uint8_t devfn;
	uint8_t bus_regs[3]; /* bridges: primary, secondary, subordinate as the trace left them */
	uint16_t bdf;        /* during the replay: the number that reached it last */
	int32_t *children;   /* bridges: device index per devfn behind it, or NULL */
	bm_region *hollow;   /* the empty contents of a hollow MSI-X BAR, or NULL */
	/* Current map, per BAR: busmap's (from the observer) and QEMU's (from the trace). */
	bool q_mapped[BM_PCI_ROM + 1];
	uint64_t bm_order[BM_PCI_ROM + 1], q_order[BM_PCI_ROM + 1];
	uint64_t q_addr[BM_PCI_ROM + 1], q_size[BM_PCI_ROM + 1];
};

struct event_list {
	struct qemu_replay_map_event *ev;
	size_t n, cap;
};

struct qemu_replay {
	const struct qemu_trace *trace;
	struct qemu_replay_options opt;
	struct device *devs;
	struct qemu_replay_device *pub; /* copy handed out by qemu_replay_devices */
	size_t ndevs, capacity;
	/* Functions are told apart by where they are, not by the bus number that reaches
	 * them, which bridges may change: the root's functions by devfn, each bridge's in
	 * its own table. route[n] is the bus node number n leads to now (a bridge's index,
	 * ROOT_BUS or NO_ROUTE), valid where route_known says so. */
	int32_t root_children[256];
	int32_t route[256];
	bool route_known[256];
	int32_t *ev_dev; /* per trace event: its device index, or NO_DEVICE */
	bm_system *sys;
	bm_space *mem, *io;
	bm_pci_host *host;
	size_t pos; /* next trace event to replay */
	unsigned current_line;
	struct event_list got;  /* busmap's events for the write being replayed */
	struct event_list want; /* QEMU's */
	bool observer_oom;
	uint64_t bm_seq, q_seq;
	struct qemu_replay_result result;
};

static bool bit(const uint64_t *set, unsigned b)
{
	return set[b / 64] >> (b % 64) & 1;
}

static bool known(const struct device *d, unsigned b)
{
	return b < INIT_BYTES && bit(d->init_known, b);
}

static bool is_bridge(const struct device *d)
{
	return known(d, 0x0e) && (d->init[0x0e] & 0x7f) == 1;
}

/* The bus node that bus number n leads to, following the bridges' numbers as they are
 * now, as QEMU routes configuration cycles: from the root, into the first bridge (in
 * devfn order) whose secondary bus is n or whose range holds it. */
static int32_t route_walk(const struct qemu_replay *r, unsigned n)
{
	const int32_t *children = r->root_children;
	int32_t node = ROOT_BUS;
	if (n == 0)
		return ROOT_BUS;
	for (unsigned depth = 0; depth < 256; depth++) {
		int32_t next = NO_ROUTE;
		for (unsigned devfn = 0; children && devfn < 256 && next == NO_ROUTE; devfn++) {
			int32_t i = children[devfn];
			if (i == NO_DEVICE || !is_bridge(&r->devs[i]))
				continue;
			const uint8_t *b = r->devs[i].bus_regs;
			if (b[1] == n)
				return i;
			if (b[1] < n && n <= b[2])
				next = i;
		}
		if (next == NO_ROUTE)
			return NO_ROUTE;
		node = next;
		children = r->devs[node].children;
	}
	return NO_ROUTE;
}

static int32_t route(struct qemu_replay *r, unsigned n)
{
	if (!r->route_known[n]) {
		r->route[n] = route_walk(r, n);
		r->route_known[n] = true;
	}
	return r->route[n];
}

static int32_t *children_of(struct qemu_replay *r, int32_t node)
{
	if (node == ROOT_BUS)
		return r->root_children;
	struct device *d = &r->devs[node];
	if (!d->children) {
		d->children = malloc(256 * sizeof(*d->children));
		if (d->children)
			for (unsigned i = 0; i < 256; i++)
				d->children[i] = NO_DEVICE;
	}
	return d->children;
}

/* The device an event reaches (made on first sight), as the trace's bus numbers lead to
 * it when the event happens. */
static int device_get(struct qemu_replay *r, const struct qemu_trace_event *e, int32_t *out,
                      struct qemu_error *err)
{
	int32_t node = route(r, QEMU_TRACE_BUS(e->bdf));
	if (node == NO_ROUTE)
		return qemu_error_set(err, e->line, -EBADMSG,
		                      "no bridge in the trace leads to bus %u then",
		                      QEMU_TRACE_BUS(e->bdf));
	int32_t *children = children_of(r, node);
	if (!children)
		return qemu_error_set(err, e->line, -ENOMEM, "out of memory");
	unsigned devfn = e->bdf & 0xff;
	if (children[devfn] != NO_DEVICE) {
		*out = children[devfn];
		return 0;
	}
	if (r->ndevs == r->capacity) {
		size_t cap = r->capacity ? r->capacity * 2 : 16;
		struct device *devs = realloc(r->devs, cap * sizeof(*devs));
		if (!devs)
			return qemu_error_set(err, e->line, -ENOMEM, "out of memory");
		r->devs = devs;
		r->capacity = cap;
	}
	struct device *d = &r->devs[r->ndevs];
	memset(d, 0, sizeof(*d));
	d->pub.bdf = e->bdf;
	d->pub.name = e->text;
	d->pub.first_line = e->line;
	d->parent = node;
	d->devfn = (uint8_t)devfn;
	d->bdf = e->bdf;
	children[devfn] = (int32_t)r->ndevs;
	*out = (int32_t)r->ndevs++;
	return 0;
}

/* Bytes of the bus-number registers an access covers: the shadow follows reads (a trace
 * may start after they were set) and writes. The routes change when a bridge's do. */
static void note_bus_regs(struct qemu_replay *r, struct device *d, const struct qemu_trace_event *e)
{
	bool changed = false;
	for (unsigned i = 0; i < e->width; i++) {
		unsigned b = e->reg + i;
		if (b < BUS_REGS || b >= BUS_REGS + 3)
			continue;
		uint8_t v = (uint8_t)(e->value >> (8 * i));
		changed |= d->bus_regs[b - BUS_REGS] != v;
		d->bus_regs[b - BUS_REGS] = v;
	}
	/* A function becomes a bridge to the routes when its header type is read. */
	if (e->kind == QEMU_TRACE_CFG_READ && e->reg <= 0x0e && e->reg + e->width > 0x0e)
		changed = true;
	if (changed && is_bridge(d))
		memset(r->route_known, 0, sizeof(r->route_known));
}

/* Slot of the BAR register at reg, or -1. */
static int slot_of(unsigned reg)
{
	if (reg >= 0x10 && reg <= 0x24 && reg % 4 == 0)
		return (int)(reg - 0x10) / 4;
	if (reg == 0x30)
		return 6;
	if (reg == 0x38)
		return 7;
	return -1;
}

static bool is_probe(int slot, uint32_t value)
{
	/* ROMs are probed with the enable bit clear or set; bits 31..11 are the address. */
	if (slot >= 6)
		return (value & 0xfffff800u) == 0xfffff800u;
	return value == 0xffffffffu;
}

static void note_read(struct device *d, const struct qemu_trace_event *e)
{
	for (unsigned i = 0; i < e->width; i++) {
		unsigned b = e->reg + i;
		if (b >= INIT_BYTES || bit(d->written, b) || bit(d->init_known, b))
			continue;
		d->init[b] = (uint8_t)(e->value >> (8 * i));
		d->init_known[b / 64] |= (uint64_t)1 << (b % 64);
	}
	for (unsigned i = 0; i < e->width; i++) {
		unsigned b = e->reg + i, nibble = (unsigned)(e->value >> (8 * i)) & 0xf;
		if (b == 0x1c || b == 0x1d)
			d->io32 = nibble == 1;
		if (b == 0x24 || b == 0x26)
			d->pref64 = nibble == 1;
	}
	int s = slot_of(e->reg);
	if (s >= 0 && e->width == 4 && d->probing[s] && !d->have_mask[s]) {
		d->have_mask[s] = true;
		d->mask[s] = (uint32_t)e->value;
		d->mask_line[s] = e->line;
	}
}

static void note_write(struct device *d, const struct qemu_trace_event *e)
{
	for (unsigned i = 0; i < e->width; i++) {
		unsigned b = e->reg + i;
		if (b < INIT_BYTES)
			d->written[b / 64] |= (uint64_t)1 << (b % 64);
		if (b == 0x19 && !d->secondary_known) {
			d->pub.secondary_bus = (uint8_t)(e->value >> (8 * i));
			d->secondary_known = true;
		}
		int s = slot_of(b & ~3u);
		if (s >= 0)
			d->probing[s] = false;
	}
	int s = slot_of(e->reg);
	if (s >= 0 && e->width == 4)
		d->probing[s] = is_probe(s, (uint32_t)e->value);
	if (e->reg >= 0x100)
		d->pub.extended = true;
}

static int scan_trace(struct qemu_replay *r, struct qemu_error *err)
{
	const struct qemu_trace *t = r->trace;
	for (size_t i = 0; i < t->count; i++) {
		const struct qemu_trace_event *e = &t->events[i];
		r->ev_dev[i] = NO_DEVICE;
		if (e->kind != QEMU_TRACE_CFG_READ && e->kind != QEMU_TRACE_CFG_WRITE &&
		    e->kind != QEMU_TRACE_MAP_ADD && e->kind != QEMU_TRACE_MAP_DEL)
			continue;
		int ret = device_get(r, e, &r->ev_dev[i], err);
		if (ret)
			return ret;
		struct device *d = &r->devs[r->ev_dev[i]];
		if (e->kind == QEMU_TRACE_CFG_READ) {
			note_read(d, e);
			if (e->reg >= 0x100)
				d->pub.extended = true;
		} else if (e->kind == QEMU_TRACE_CFG_WRITE) {
			note_write(d, e);
		}
		if (e->kind == QEMU_TRACE_CFG_READ || e->kind == QEMU_TRACE_CFG_WRITE)
			note_bus_regs(r, d, e);
	}
	return 0;
}

/* ---- layouts ---- */

static uint32_t init_value(const struct device *d, unsigned reg, unsigned width, uint32_t dflt)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < width; i++) {
		if (!known(d, reg + i))
			return dflt;
		v |= (uint32_t)d->init[reg + i] << (8 * i);
	}
	return v;
}

static uint64_t lowest_bit(uint64_t v)
{
	return v & (~v + 1);
}

static int bar_layout(struct device *d, int slot, unsigned index, struct qemu_error *err)
{
	struct qemu_replay_bar_layout *b = &d->pub.bars[index];
	uint32_t m = d->mask[slot];
	b->line = d->mask_line[slot];
	if (!d->have_mask[slot] || m == 0)
		return 0;
	if (m & 1) {
		b->type = BM_PCI_BAR_IO;
		b->size = lowest_bit(m & ~3u);
		return 0;
	}
	unsigned type = (m >> 1) & 3;
	b->prefetchable = m & 8;
	if (type == 3)
		return qemu_error_set(err, b->line, -EBADMSG,
		                      "BAR %u of %02x:%02x.%x has reserved type 3", index,
		                      QEMU_TRACE_BUS(d->pub.bdf), QEMU_TRACE_DEV(d->pub.bdf),
		                      QEMU_TRACE_FN(d->pub.bdf));
	uint64_t addr_bits = m & ~0xfu;
	b->type = BM_PCI_BAR_MEM32;
	if (type == 2) {
		/* Without a probe of the upper half, it is taken as all ones: below 4 GiB. */
		uint64_t hi = d->have_mask[slot + 1] ? d->mask[slot + 1] : 0xffffffffu;
		addr_bits |= hi << 32;
		b->type = BM_PCI_BAR_MEM64;
	}
	b->size = lowest_bit(addr_bits);
	if (!b->size)
		return qemu_error_set(err, b->line, -EBADMSG,
		                      "BAR %u of %02x:%02x.%x reads back no size", index,
		                      QEMU_TRACE_BUS(d->pub.bdf), QEMU_TRACE_DEV(d->pub.bdf),
		                      QEMU_TRACE_FN(d->pub.bdf));
	return 0;
}

static void rom_layout(struct device *d, int slot)
{
	struct qemu_replay_bar_layout *b = &d->pub.bars[BM_PCI_ROM];
	if (!d->have_mask[slot])
		return;
	b->line = d->mask_line[slot];
	b->size = lowest_bit(d->mask[slot] & 0xfffff800u);
	b->type = b->size ? BM_PCI_BAR_MEM32 : BM_PCI_BAR_NONE;
}

static int device_layout(struct device *d, struct qemu_error *err)
{
	struct qemu_replay_device *p = &d->pub;
	p->vendor_id = (uint16_t)init_value(d, 0x00, 2, 0x1b36);
	p->device_id = (uint16_t)init_value(d, 0x02, 2, 0x0000);
	p->revision = (uint8_t)init_value(d, 0x08, 1, 0);
	p->class_code = init_value(d, 0x09, 3, 0xff0000);
	p->header_type = (uint8_t)init_value(d, 0x0e, 1, 0);
	p->intx_pin = (uint8_t)init_value(d, 0x3d, 1, 0);
	unsigned kind = p->header_type & 0x7f;
	if (kind > 1)
		return qemu_error_set(err, p->first_line, -EBADMSG,
		                      "%02x:%02x.%x has header type %u, which is not replayed",
		                      QEMU_TRACE_BUS(p->bdf), QEMU_TRACE_DEV(p->bdf),
		                      QEMU_TRACE_FN(p->bdf), kind);
	unsigned nbars = kind == 1 ? 2 : BM_PCI_NUM_BARS;
	if (kind == 0) {
		p->subsystem_vendor_id = (uint16_t)init_value(d, 0x2c, 2, 0);
		p->subsystem_id = (uint16_t)init_value(d, 0x2e, 2, 0);
	}
	for (unsigned i = 0; i < nbars; i++) {
		int ret = bar_layout(d, (int)i, i, err);
		if (ret)
			return ret;
		if (p->bars[i].type == BM_PCI_BAR_MEM64) {
			if (i + 1 >= nbars)
				return qemu_error_set(
				    err, p->bars[i].line, -EBADMSG,
				    "64-bit BAR %u of %02x:%02x.%x has no upper half", i,
				    QEMU_TRACE_BUS(p->bdf), QEMU_TRACE_DEV(p->bdf),
				    QEMU_TRACE_FN(p->bdf));
			i++;
		}
	}
	rom_layout(d, kind == 1 ? 7 : 6);
	return 0;
}

/* ---- MSI-X ---- */

static bool known_range(const struct device *d, unsigned reg, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		if (!known(d, reg + i))
			return false;
	return true;
}

/* QEMU's exclusive MSI-X BAR: table at its start, PBA at its middle, nothing else. */
static bool exclusive_layout(const struct device *d, const struct qemu_replay_msix *m)
{
	const struct qemu_replay_bar_layout *b = &d->pub.bars[m->table_bar];
	return m->table_bar == m->pba_bar && m->table_offset == 0 && b->size >= 4096 &&
	       m->pba_offset == b->size / 2;
}

/* Walks the capability list as the trace first read it; fills the layout when the trace
 * read the MSI-X registers too. */
static void msix_from_caps(struct device *d)
{
	unsigned c = known(d, 0x34) ? d->init[0x34] & 0xfc : 0;
	for (unsigned hops = 0; c >= HEADER_BYTES && hops < 48; hops++) {
		if (!known_range(d, c, 2))
			return;
		if (d->init[c] == 0x11)
			break;
		c = d->init[c + 1] & 0xfc;
	}
	if (c < HEADER_BYTES || d->init[c] != 0x11)
		return;
	d->pub.has_msix_cap = true;
	if (!known_range(d, c + 2, 10))
		return;
	uint32_t ctrl = init_value(d, c + 2, 2, 0);
	uint32_t table = init_value(d, c + 4, 4, 0), pba = init_value(d, c + 8, 4, 0);
	struct qemu_replay_msix *m = &d->pub.msix;
	*m = (struct qemu_replay_msix){
	    .nvectors = (ctrl & 0x7ff) + 1,
	    .table_bar = table & 7,
	    .table_offset = table & ~7u,
	    .pba_bar = pba & 7,
	    .pba_offset = pba & ~7u,
	};
	if (m->table_bar >= BM_PCI_NUM_BARS || m->pba_bar >= BM_PCI_NUM_BARS) {
		m->nvectors = 0; /* no BAR holds it: nothing to lay over */
		return;
	}
	m->hollow = exclusive_layout(d, m);
}

/* Did QEMU ever map BAR bar of d at [addr, addr + size)? */
static bool mapped_at(const struct qemu_replay *r, const struct device *d, unsigned *bar,
                      uint64_t addr, uint64_t size)
{
	const struct qemu_trace *t = r->trace;
	for (size_t i = 0; i < t->count; i++) {
		const struct qemu_trace_event *e = &t->events[i];
		if (e->kind == QEMU_TRACE_MAP_ADD && &r->devs[r->ev_dev[i]] == d &&
		    e->addr == addr && e->size == size) {
			*bar = e->bar;
			return true;
		}
	}
	return false;
}

/* A hint names its device by QEMU's name for the region holding the MSI-X parts,
 * "DEVICE-msix" or "DEVICE-bar0" (the device's own BAR), and says where the region was;
 * the BAR the trace mapped there is the one. */
static void msix_from_hints(struct qemu_replay *r, struct device *d)
{
	size_t len = strlen(d->pub.name);
	for (size_t i = 0; i < r->opt.nmsix_hints; i++) {
		const struct qemu_replay_msix_hint *h = &r->opt.msix_hints[i];
		unsigned bar;
		if (strncmp(h->owner, d->pub.name, len) != 0 || h->owner[len] != '-' ||
		    !h->table_size || h->table_size % 16 || h->table_size > 2048 * 16 ||
		    !h->pba_size || h->table_offset > UINT32_MAX || h->pba_offset > UINT32_MAX ||
		    !mapped_at(r, d, &bar, h->addr, h->size) || bar >= BM_PCI_NUM_BARS)
			continue;
		d->pub.msix = (struct qemu_replay_msix){
		    .nvectors = (unsigned)(h->table_size / 16),
		    .table_bar = bar,
		    .table_offset = (uint32_t)h->table_offset,
		    .pba_bar = bar,
		    .pba_offset = (uint32_t)h->pba_offset,
		    .hollow = h->exclusive,
		    .hinted = true,
		};
		return;
	}
}

/* A mapping QEMU reports must concern a BAR the probes revealed. */
static int check_mapped_bars(struct qemu_replay *r, struct qemu_error *err)
{
	const struct qemu_trace *t = r->trace;
	for (size_t i = 0; i < t->count; i++) {
		const struct qemu_trace_event *e = &t->events[i];
		if (e->kind != QEMU_TRACE_MAP_ADD && e->kind != QEMU_TRACE_MAP_DEL)
			continue;
		const struct device *d = &r->devs[r->ev_dev[i]];
		const struct qemu_replay_bar_layout *b = &d->pub.bars[e->bar];
		if (b->type == BM_PCI_BAR_NONE)
			return qemu_error_set(
			    err, e->line, -EBADMSG,
			    "BAR %u of %02x:%02x.%x is mapped but the trace never sized it", e->bar,
			    QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf), QEMU_TRACE_FN(e->bdf));
	}
	return 0;
}

/* ---- building busmap's side ---- */

static int list_push(struct event_list *l, const struct qemu_replay_map_event *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct qemu_replay_map_event *n = realloc(l->ev, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->ev = n;
		l->cap = cap;
	}
	l->ev[l->n++] = *e;
	return 0;
}

static void observe(void *arg, const struct bm_pci_map_event *ev)
{
	struct qemu_replay *r = arg;
	struct device *d = bm_pci_func_opaque(ev->func);
	if (d && ev->mapped && ev->bar <= BM_PCI_ROM)
		d->bm_order[ev->bar] = ++r->bm_seq;
	struct qemu_replay_map_event e = {
	    .bdf = QEMU_TRACE_BDF(ev->bus, ev->dev, ev->fn),
	    .bar = ev->bar,
	    .mapped = ev->mapped,
	    .addr = ev->addr,
	    .size = ev->size,
	    .line = r->current_line,
	};
	if (list_push(&r->got, &e))
		r->observer_oom = true;
}

static void fill_bar_desc(struct bm_pci_bar_desc *out, const struct qemu_replay_bar_layout *b)
{
	out->type = b->type;
	out->size = b->size;
	out->prefetchable = b->prefetchable;
}

static void fill_desc(struct bm_pci_func_desc *desc, struct device *d)
{
	const struct qemu_replay_device *p = &d->pub;
	bool bridge = (p->header_type & 0x7f) == 1;
	memset(desc, 0, sizeof(*desc));
	desc->vendor_id = p->vendor_id;
	desc->device_id = p->device_id;
	desc->class_code = p->class_code;
	desc->revision = p->revision;
	desc->subsystem_vendor_id = p->subsystem_vendor_id;
	desc->subsystem_id = p->subsystem_id;
	desc->header = bridge ? BM_PCI_HEADER_BRIDGE : BM_PCI_HEADER_ENDPOINT;
	desc->extended = p->extended;
	desc->multifunction = p->header_type & 0x80;
	desc->intx_pin = p->intx_pin <= 4 ? p->intx_pin : 0;
	for (unsigned i = 0; i < (bridge ? 2u : (unsigned)BM_PCI_NUM_BARS); i++)
		fill_bar_desc(&desc->bars[i], &p->bars[i]);
	if (p->bars[BM_PCI_ROM].type != BM_PCI_BAR_NONE)
		fill_bar_desc(&desc->rom, &p->bars[BM_PCI_ROM]);
	if (bridge) {
		desc->bridge_io32 = d->io32;
		desc->bridge_pref64 = d->pref64;
		desc->secondary_bus = (uint8_t)init_value(d, 0x19, 1, 0);
		desc->subordinate_bus = (uint8_t)init_value(d, 0x1a, 1, 0);
	}
	desc->opaque = d;
}

static int create_function(struct qemu_replay *r, struct device *d, struct qemu_error *err)
{
	struct bm_pci_func_desc desc;
	fill_desc(&desc, d);
	uint16_t bdf = d->pub.bdf;
	const struct qemu_replay_msix *m = &d->pub.msix;
	struct bm_pci_bar_desc *hollow = &desc.bars[m->table_bar];
	if (m->nvectors && m->hollow && hollow->type != BM_PCI_BAR_NONE &&
	    hollow->type != BM_PCI_BAR_IO) {
		int ret = bm_region_new_container(r->sys, d->pub.name, hollow->size, &d->hollow);
		if (ret)
			return qemu_error_set(err, d->pub.first_line,
			                      ret == -ENOMEM ? ret : -EBADMSG,
			                      "cannot make the hollow BAR%u of %s: error %d",
			                      m->table_bar, d->pub.name, ret);
		hollow->region = d->hollow;
	}
	bm_pci_bus *bus = d->parent == ROOT_BUS
	                      ? bm_pci_host_root_bus(r->host)
	                      : bm_pci_func_secondary_bus(r->devs[d->parent].func);
	int ret =
	    bus ? bm_pci_func_new(bus, d->devfn >> 3, d->devfn & 7, &desc, &d->func) : -EINVAL;
	/* Window registers reset to what the bridge model chose (QEMU's root ports: base above
	 * limit, nothing forwarded); the trace's first reads say what, and the guest could
	 * have written the same. */
	for (unsigned b = 0x1c; !ret && desc.header == BM_PCI_HEADER_BRIDGE && b < 0x30; b++)
		if (b != 0x1e && b != 0x1f && known(d, b))
			ret = bm_pci_func_cfg_write(d->func, b, 1, d->init[b]);
	if (!ret && m->nvectors)
		ret = bm_pci_func_add_msix(d->func, m->nvectors, m->table_bar, m->table_offset,
		                           m->pba_bar, m->pba_offset, NULL);
	/* A layout no function can have (the PCI layer says -EINVAL) is the trace's fault. */
	if (ret)
		return qemu_error_set(err, d->pub.first_line, ret == -ENOMEM ? ret : -EBADMSG,
		                      "busmap refuses %02x:%02x.%x (%s) as inferred: error %d",
		                      QEMU_TRACE_BUS(bdf), QEMU_TRACE_DEV(bdf), QEMU_TRACE_FN(bdf),
		                      d->pub.name, ret);
	return 0;
}

/* In the order the trace met them: a bridge is met before what lies behind it. */
static int create_functions(struct qemu_replay *r, struct qemu_error *err)
{
	for (size_t i = 0; i < r->ndevs; i++) {
		int ret = create_function(r, &r->devs[i], err);
		if (ret)
			return ret;
	}
	return 0;
}

static int build_host(struct qemu_replay *r, struct qemu_error *err)
{
	int ret = bm_system_new(&r->sys);
	if (!ret)
		ret = bm_space_new(r->sys, "memory", "system", &r->mem);
	if (!ret)
		ret = bm_space_new(r->sys, "I/O", "io", &r->io);
	if (ret)
		return qemu_error_set(err, 0, ret, "cannot create the address spaces: error %d",
		                      ret);
	struct bm_pci_host_config cfg = {
	    .mem = r->mem,
	    .io = r->io,
	    .io_limit = r->opt.io_limit ? r->opt.io_limit : BM_PCI_IO_LIMIT_QEMU,
	    .decode_zero = r->opt.decode_zero,
	    .no_host_bridge = true, /* 00:00.0 is whatever the trace shows there */
	};
	ret = bm_pci_host_new(r->sys, &cfg, &r->host);
	if (!ret)
		ret = bm_pci_host_set_map_observer(r->host, observe, r);
	if (ret)
		return qemu_error_set(err, 0, ret, "cannot create the PCI host: error %d", ret);
	return 0;
}

static int infer(struct qemu_replay *r, struct qemu_error *err)
{
	int ret = scan_trace(r, err);
	for (size_t i = 0; !ret && i < r->ndevs; i++)
		ret = device_layout(&r->devs[i], err);
	if (!ret)
		ret = check_mapped_bars(r, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < r->ndevs; i++) {
		struct device *d = &r->devs[i];
		msix_from_caps(d);
		if (!d->pub.msix.nvectors)
			msix_from_hints(r, d);
	}
	r->pub = calloc(r->ndevs ? r->ndevs : 1, sizeof(*r->pub));
	if (!r->pub)
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	for (size_t i = 0; i < r->ndevs; i++)
		r->pub[i] = r->devs[i].pub;
	return 0;
}

void qemu_replay_free(struct qemu_replay *r)
{
	if (!r)
		return;
	bm_pci_host_free(r->host);
	for (size_t i = 0; i < r->ndevs; i++)
		bm_region_destroy(r->devs[i].hollow);
	bm_system_free(r->sys);
	free(r->got.ev);
	free(r->want.ev);
	for (size_t i = 0; i < r->ndevs; i++)
		free(r->devs[i].children);
	free(r->devs);
	free(r->pub);
	free(r->ev_dev);
	free((void *)r->opt.msix_hints);
	free(r);
}

int qemu_replay_new(const struct qemu_trace *trace, const struct qemu_replay_options *opt,
                    struct qemu_replay **out, struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!trace || !out)
		return qemu_error_set(err, 0, -EINVAL, "no trace or no result");
	*out = NULL;
	struct qemu_replay *r = calloc(1, sizeof(*r));
	if (!r)
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	r->trace = trace;
	if (opt)
		r->opt = *opt;
	r->opt.msix_hints = NULL;
	if (opt && opt->nmsix_hints && opt->msix_hints) {
		struct qemu_replay_msix_hint *h = malloc(opt->nmsix_hints * sizeof(*h));
		if (!h) {
			free(r);
			return qemu_error_set(err, 0, -ENOMEM, "out of memory");
		}
		memcpy(h, opt->msix_hints, opt->nmsix_hints * sizeof(*h));
		r->opt.msix_hints = h;
	} else {
		r->opt.nmsix_hints = 0;
	}
	r->ev_dev = malloc((trace->count ? trace->count : 1) * sizeof(*r->ev_dev));
	if (!r->ev_dev) {
		qemu_replay_free(r);
		return qemu_error_set(err, 0, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < 256; i++)
		r->root_children[i] = NO_DEVICE;
	int ret = infer(r, err);
	if (!ret)
		ret = build_host(r, err);
	if (!ret)
		ret = create_functions(r, err);
	if (ret) {
		qemu_replay_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

/* ---- replaying ---- */

static bool same_event(const struct qemu_replay_map_event *a, const struct qemu_replay_map_event *b)
{
	return a->bdf == b->bdf && a->bar == b->bar && a->mapped == b->mapped &&
	       a->addr == b->addr && a->size == b->size;
}

static void record_divergence(struct qemu_replay *r, unsigned write_line,
                              const struct qemu_replay_map_event *expected, size_t nexp,
                              const struct qemu_replay_map_event *actual, size_t nact)
{
	size_t k = 0;
	while (k < nexp && k < nact && same_event(&expected[k], &actual[k]))
		k++;
	if (k == nexp && k == nact)
		return;
	struct qemu_replay_result *res = &r->result;
	if (res->divergences < QEMU_REPLAY_MAX_RECORDED) {
		struct qemu_replay_divergence *d = &res->divergence[res->divergences];
		memset(d, 0, sizeof(*d));
		d->write_line = write_line;
		d->index = k;
		d->line = k < nexp ? expected[k].line : write_line;
		d->have_expected = k < nexp;
		d->have_actual = k < nact;
		if (d->have_expected)
			d->expected = expected[k];
		if (d->have_actual)
			d->actual = actual[k];
	}
	res->divergences++;
}

static void apply_qemu_event(struct qemu_replay *r, size_t i)
{
	const struct qemu_trace_event *e = &r->trace->events[i];
	struct device *d = &r->devs[r->ev_dev[i]];
	d->bdf = e->bdf;
	bool add = e->kind == QEMU_TRACE_MAP_ADD;
	d->q_mapped[e->bar] = add;
	if (add) {
		d->q_addr[e->bar] = e->addr;
		d->q_size[e->bar] = e->size;
		d->q_order[e->bar] = ++r->q_seq;
	}
	r->result.qemu_events++;
}

static struct qemu_replay_map_event qemu_event(const struct qemu_trace_event *e)
{
	return (struct qemu_replay_map_event){
	    .bdf = e->bdf,
	    .bar = e->bar,
	    .mapped = e->kind == QEMU_TRACE_MAP_ADD,
	    .addr = e->addr,
	    .size = e->size,
	    .line = e->line,
	};
}

/* QEMU's mapping lines that a write caused follow it directly: they go to r->want and the
 * index of the next event is returned. */
static size_t take_qemu_events(struct qemu_replay *r, size_t from)
{
	const struct qemu_trace *t = r->trace;
	size_t j = from;
	r->want.n = 0;
	for (; j < t->count; j++) {
		const struct qemu_trace_event *e = &t->events[j];
		if (e->kind != QEMU_TRACE_MAP_ADD && e->kind != QEMU_TRACE_MAP_DEL)
			break;
		struct qemu_replay_map_event ev = qemu_event(e);
		if (list_push(&r->want, &ev))
			r->observer_oom = true;
		apply_qemu_event(r, j);
	}
	return j;
}

/* The function busmap routes the access to must be the one QEMU's bridges led it to. */
static int check_route(struct qemu_replay *r, size_t i, struct qemu_error *err)
{
	const struct qemu_trace_event *e = &r->trace->events[i];
	struct device *d = &r->devs[r->ev_dev[i]];
	d->bdf = e->bdf;
	if (bm_pci_func_find(r->host, QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf),
	                     QEMU_TRACE_FN(e->bdf)) == d->func)
		return 0;
	return qemu_error_set(
	    err, e->line, -EXDEV, "busmap's bridges do not lead %02x:%02x.%x to %s as QEMU's did",
	    QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf), QEMU_TRACE_FN(e->bdf), d->pub.name);
}

static int replay_write(struct qemu_replay *r, size_t i, struct qemu_error *err)
{
	const struct qemu_trace_event *e = &r->trace->events[i];
	int route_ret = check_route(r, i, err);
	if (route_ret)
		return route_ret;
	r->got.n = 0;
	r->current_line = e->line;
	/* Writing a register again with the same value changes nothing more (plain storage,
	 * masks and write-1-to-clear bits are idempotent), so a folded run of identical
	 * writes is replayed as two: the first and one repetition. */
	uint32_t times = e->repeat > 1 ? 2 : 1;
	for (uint32_t k = 0; k < times; k++) {
		int ret =
		    bm_pci_cfg_write(r->host, QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf),
		                     QEMU_TRACE_FN(e->bdf), e->reg, e->width, (uint32_t)e->value);
		if (ret)
			return qemu_error_set(err, e->line, ret,
			                      "busmap refused the write: error %d", ret);
	}
	r->result.writes += e->repeat;
	r->result.busmap_events += r->got.n;
	size_t next = take_qemu_events(r, i + 1);
	if (r->observer_oom)
		return qemu_error_set(err, e->line, -ENOMEM, "out of memory recording map events");
	record_divergence(r, e->line, r->want.ev, r->want.n, r->got.ev, r->got.n);
	r->pos = next;
	return 0;
}

/*
 * Bytes of the header whose reads are compared, per header type: I identification (when
 * the trace read it), c command, h header type, b BARs, ROM, bus numbers and windows.
 * Status, cache line, latency and capabilities depend on device models busmap does not
 * replay.
 */
static const char endpoint_checked[HEADER_BYTES + 1] = "IIcc...."
                                                       "IIII..h."
                                                       "bbbbbbbb"
                                                       "bbbbbbbb"
                                                       "bbbbbbbb"
                                                       "....IIII"
                                                       "bbbb...."
                                                       ".....I..";
static const char bridge_checked[HEADER_BYTES + 1] = "IIcc...."
                                                     "IIII..h."
                                                     "bbbbbbbb"
                                                     "bbbbbb.."
                                                     "bbbbbbbb"
                                                     "bbbbbbbb"
                                                     "bbbb...."
                                                     "bbbb.I..";

static bool byte_checked(const struct device *d, unsigned b)
{
	const char *map = (d->pub.header_type & 0x7f) == 1 ? bridge_checked : endpoint_checked;
	if (b >= HEADER_BYTES)
		return false;
	/* Identification bytes were copied from the trace only when it read them. */
	if (map[b] == 'I')
		return known(d, b);
	return map[b] != '.';
}

static void check_read(struct qemu_replay *r, struct device *d, const struct qemu_trace_event *e,
                       uint32_t actual)
{
	uint32_t mask = 0;
	for (unsigned k = 0; k < e->width; k++)
		if (byte_checked(d, e->reg + k))
			mask |= 0xffu << (8 * k);
	if (!mask)
		return;
	r->result.reads_checked++;
	if (((actual ^ (uint32_t)e->value) & mask) == 0)
		return;
	struct qemu_replay_result *res = &r->result;
	if (res->read_mismatches < QEMU_REPLAY_MAX_RECORDED)
		res->mismatch[res->read_mismatches] = (struct qemu_replay_read_mismatch){
		    .line = e->line,
		    .bdf = e->bdf,
		    .reg = e->reg,
		    .width = e->width,
		    .expected = (uint32_t)e->value,
		    .actual = actual,
		    .mask = mask,
		};
	res->read_mismatches++;
}

static int replay_read(struct qemu_replay *r, size_t i, struct qemu_error *err)
{
	const struct qemu_trace_event *e = &r->trace->events[i];
	uint32_t v = 0;
	int ret = check_route(r, i, err);
	if (ret)
		return ret;
	ret = bm_pci_cfg_read(r->host, QEMU_TRACE_BUS(e->bdf), QEMU_TRACE_DEV(e->bdf),
	                      QEMU_TRACE_FN(e->bdf), e->reg, e->width, &v);
	if (ret)
		return qemu_error_set(err, e->line, ret, "busmap refused the read: error %d", ret);
	r->result.reads += e->repeat;
	if (!r->opt.no_read_checks)
		check_read(r, &r->devs[r->ev_dev[i]], e, v);
	r->pos = i + 1;
	return 0;
}

static void count_width(struct qemu_replay *r, const struct qemu_trace_event *e)
{
	if (e->width_source == QEMU_TRACE_WIDTH_PAIRED)
		r->result.width_paired++;
	else
		r->result.width_inferred++;
}

int qemu_replay_run(struct qemu_replay *r, unsigned until_line, struct qemu_error *err)
{
	if (err)
		*err = (struct qemu_error){0};
	if (!r)
		return qemu_error_set(err, 0, -EINVAL, "no replay");
	const struct qemu_trace *t = r->trace;
	while (r->pos < t->count && (!until_line || t->events[r->pos].line < until_line)) {
		size_t i = r->pos;
		const struct qemu_trace_event *e = &t->events[i];
		int ret = 0;
		switch (e->kind) {
		case QEMU_TRACE_CFG_WRITE:
			count_width(r, e);
			ret = replay_write(r, i, err);
			break;
		case QEMU_TRACE_CFG_READ:
			count_width(r, e);
			ret = replay_read(r, i, err);
			break;
		case QEMU_TRACE_MAP_ADD:
		case QEMU_TRACE_MAP_DEL: {
			/* A mapping no configuration write explains. */
			struct qemu_replay_map_event ev = qemu_event(e);
			apply_qemu_event(r, i);
			record_divergence(r, e->line, &ev, 1, NULL, 0);
			r->pos = i + 1;
			break;
		}
		default:
			r->pos = i + 1;
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

const struct qemu_replay_result *qemu_replay_result(const struct qemu_replay *r)
{
	return r ? &r->result : NULL;
}

const struct qemu_replay_device *qemu_replay_devices(const struct qemu_replay *r, size_t *count)
{
	if (count)
		*count = r ? r->ndevs : 0;
	return r ? r->pub : NULL;
}

const struct qemu_replay_device *qemu_replay_device_of(const struct qemu_replay *r,
                                                       const bm_pci_func *f)
{
	const struct device *d = f ? bm_pci_func_opaque(f) : NULL;
	if (!r || !d || d < r->devs || d >= r->devs + r->ndevs)
		return NULL;
	return &r->pub[d - r->devs];
}

bm_pci_host *qemu_replay_host(const struct qemu_replay *r)
{
	return r ? r->host : NULL;
}

bm_space *qemu_replay_space(const struct qemu_replay *r, bool io)
{
	return r ? (io ? r->io : r->mem) : NULL;
}

/* ---- final maps ---- */

static int compare_bars(const void *a, const void *b)
{
	const struct qemu_replay_bar *x = a, *y = b;
	if (x->io != y->io)
		return x->io ? 1 : -1;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static uint64_t pba_size(unsigned nvectors)
{
	return (nvectors + 63) / 64 * 8;
}

/* After the BAR entry at bars[*n - 1], its MSI-X parts: above it, below anything newer. */
static void add_msix_parts(const struct device *d, struct qemu_replay_bar *bars, size_t *n)
{
	const struct qemu_replay_msix *m = &d->pub.msix;
	struct qemu_replay_bar *bar = &bars[*n - 1];
	bar->order *= 3;
	if (!m->nvectors)
		return;
	bar->hollow = m->hollow && bar->bar == m->table_bar;
	struct qemu_replay_bar base = *bar;
	base.hollow = false;
	if (bar->bar == m->table_bar) {
		bars[*n] = base;
		bars[*n].part = QEMU_REPLAY_PART_MSIX_TABLE;
		bars[*n].addr = base.addr + m->table_offset;
		bars[*n].size = (uint64_t)m->nvectors * 16;
		bars[(*n)++].order = base.order + 1;
	}
	if (bar->bar == m->pba_bar) {
		bars[*n] = base;
		bars[*n].part = QEMU_REPLAY_PART_MSIX_PBA;
		bars[*n].addr = base.addr + m->pba_offset;
		bars[*n].size = pba_size(m->nvectors);
		bars[(*n)++].order = base.order + 2;
	}
}

static int map_of(const struct qemu_replay *r, bool qemu, struct qemu_replay_bar **out,
                  size_t *count)
{
	*out = NULL;
	*count = 0;
	struct qemu_replay_bar *bars = malloc((r->ndevs * (BM_PCI_ROM + 3) + 1) * sizeof(*bars));
	if (!bars)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < r->ndevs; i++) {
		const struct device *d = &r->devs[i];
		for (unsigned b = 0; b <= BM_PCI_ROM; b++) {
			struct qemu_replay_bar *o = &bars[n];
			*o = (struct qemu_replay_bar){
			    .bdf = d->bdf,
			    .bar = b,
			    .io = d->pub.bars[b].type == BM_PCI_BAR_IO,
			};
			if (qemu) {
				if (!d->q_mapped[b])
					continue;
				o->addr = d->q_addr[b];
				o->size = d->q_size[b];
				o->order = d->q_order[b];
			} else {
				struct bm_pci_bar_info info;
				if (!d->func || bm_pci_bar_info(d->func, b, &info) || !info.mapped)
					continue;
				uint8_t bus, dev, fn;
				bm_pci_func_bdf(d->func, &bus, &dev, &fn);
				o->bdf = QEMU_TRACE_BDF(bus, dev, fn);
				o->io = info.io;
				o->addr = info.mapped_addr;
				o->size = info.size;
				o->order = d->bm_order[b];
			}
			n++;
			add_msix_parts(d, bars, &n);
		}
	}
	qsort(bars, n, sizeof(*bars), compare_bars);
	*out = bars;
	*count = n;
	return 0;
}

int qemu_replay_busmap_map(struct qemu_replay *r, struct qemu_replay_bar **out, size_t *count)
{
	if (!r || !out || !count)
		return -EINVAL;
	return map_of(r, false, out, count);
}

int qemu_replay_qemu_map(const struct qemu_replay *r, struct qemu_replay_bar **out, size_t *count)
{
	if (!r || !out || !count)
		return -EINVAL;
	return map_of(r, true, out, count);
}

/* ---- machines ---- */

int qemu_replay_machine_options(const char *machine, struct qemu_replay_options *out)
{
	if (!machine || !out)
		return -EINVAL;
	size_t len = strcspn(machine, ",");
	if (len == 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	/* hw/arm/virt.c sets pci_allow_0_address; the x86 machines leave it false. */
	out->decode_zero = len >= 4 && strncmp(machine, "virt", 4) == 0;
	out->io_limit = BM_PCI_IO_LIMIT_QEMU;
	return 0;
}

static int copy_word(const char *s, char *name, size_t size)
{
	size_t len = strcspn(s, " \t\r\n,");
	if (strncmp(s, "type=", 5) == 0) {
		s += 5;
		len = strcspn(s, " \t\r\n,");
	}
	if (len == 0)
		return -ENOENT;
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(name, s, len);
	name[len] = '\0';
	return 0;
}

int qemu_replay_machine_from_cmdline(const char *cmdline, char *name, size_t size)
{
	if (!cmdline || !name || !size)
		return -EINVAL;
	static const char *const flags[] = {" -M ", " -machine ", " --machine "};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		const char *p = strstr(cmdline, flags[i]);
		if (p)
			return copy_word(p + strlen(flags[i]), name, size);
	}
	return -ENOENT;
}
