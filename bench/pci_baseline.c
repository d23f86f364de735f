/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bhyve-style PCI configuration emulation: see pci_baseline.h for the design reproduced.
 */
#include "pci_baseline.h"

#include <bsd/sys/tree.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_PORTS     65536
#define PCB_BUSES     256
#define PCB_SLOTS     32
#define PCB_FUNCS     8
#define PCB_CFG_SIZE  256
#define PCB_NBARS     6
#define PCB_ECAM_SIZE (256ull << 20)

#define CONF1_ADDR_PORT 0xcf8
#define CONF1_DATA_PORT 0xcfc
#define CONF1_ENABLE    0x80000000u

#define REG_VENDOR      0x00
#define REG_DEVICE      0x02
#define REG_COMMAND     0x04
#define REG_REVID       0x08
#define REG_CLASS       0x09
#define REG_HDRTYPE     0x0e
#define REG_BAR0        0x10
#define REG_STATUS      0x06
#define REG_INTLINE     0x3c
#define CAP_START       0x40
#define CMD_MEMEN       0x0002
#define CMD_INTXDIS     0x0400
#define STATUS_CAPS     0x0010
#define HDR_MFDEV       0x80
#define CMD_READONLY    0xfffff880u /* command and status bits a guest cannot write */
#define PORT_F_IN       0x1
#define PORT_F_OUT      0x2
#define PORT_F_INOUT    (PORT_F_IN | PORT_F_OUT)
#define MEM_F_IMMUTABLE 0x1

typedef int (*pcb_inout_fn)(struct pcb *m, bool in, unsigned port, unsigned bytes, uint32_t *eax,
                            void *arg);

/* One entry per port, as bhyve's table of handlers. */
struct pcb_port {
	const char *name;
	int flags;
	pcb_inout_fn handler;
	void *arg;
};

typedef int (*pcb_mem_fn)(struct pcb *m, bool write, uint64_t addr, unsigned size, uint64_t *value,
                          void *arg1, long arg2);

struct pcb_mem_range {
	const char *name;
	int flags;
	pcb_mem_fn handler;
	void *arg1;
	long arg2;
	uint64_t base, size;
};

struct pcb_range {
	RB_ENTRY(pcb_range) link;
	struct pcb_mem_range param;
	uint64_t base;
	uint64_t end; /* inclusive */
};

RB_HEAD(pcb_tree, pcb_range);

enum pcb_bar_type {
	PCB_BAR_NONE = 0,
	PCB_BAR_MEM32,
};

struct pcb_bar {
	enum pcb_bar_type type;
	uint64_t addr, size;
	uint32_t lobits;
};

enum pcb_lintr {
	LINTR_IDLE,
	LINTR_ASSERTED,
	LINTR_PENDING,
};

struct pcb_func {
	struct pcb *m;
	char name[32];
	pthread_mutex_t cfg_lock;
	pthread_mutex_t lintr_lock;
	enum pcb_lintr lintr;
	uint8_t cfg[PCB_CFG_SIZE];
	struct pcb_bar bar[PCB_NBARS];
	unsigned capend;
	const struct pcb_bar_ops *ops;
	void *opaque;
};

struct pcb_bus {
	struct pcb_func *funcs[PCB_SLOTS][PCB_FUNCS];
};

struct pcb {
	pthread_rwlock_t lock;
	struct pcb_tree tree;
	unsigned max_vcpus;
	struct pcb_range **hint; /* one cached range per vCPU, side by side */
	uint64_t ecam_base;
	struct pcb_bus *buses[PCB_BUSES];
	/* The CF8 latch is the machine's, not a vCPU's. */
	bool cfgenable;
	unsigned cfgbus, cfgslot, cfgfunc, cfgoff;
	struct pcb_port ports[PCB_PORTS];
};

/* ---- the MMIO registry (mem.c) ---- */

/* Overlapping ranges compare equal, so a one-byte key finds the range that holds it. */
static int pcb_range_cmp(struct pcb_range *a, struct pcb_range *b)
{
	if (a->end < b->base)
		return -1;
	if (a->base > b->end)
		return 1;
	return 0;
}

/* RB_GENERATE_STATIC would need BSD's __unused, which libbsd leaves undefined. */
#define PCB_RB_ATTR __attribute__((__unused__)) static
RB_PROTOTYPE_INTERNAL(pcb_tree, pcb_range, link, pcb_range_cmp, PCB_RB_ATTR);
RB_GENERATE_INTERNAL(pcb_tree, pcb_range, link, pcb_range_cmp, PCB_RB_ATTR)

static struct pcb_range *pcb_lookup(struct pcb_tree *t, uint64_t addr)
{
	struct pcb_range key;

	key.base = addr;
	key.end = addr;
	return RB_FIND(pcb_tree, t, &key);
}

static int pcb_register_mem(struct pcb *m, const struct pcb_mem_range *mr)
{
	struct pcb_range *r;
	int err = 0;

	if (mr->size == 0 || mr->base + (mr->size - 1) < mr->base)
		return EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return ENOMEM;
	r->param = *mr;
	r->base = mr->base;
	r->end = mr->base + (mr->size - 1);
	pthread_rwlock_wrlock(&m->lock);
	if (pcb_lookup(&m->tree, mr->base) || RB_INSERT(pcb_tree, &m->tree, r))
		err = EEXIST;
	pthread_rwlock_unlock(&m->lock);
	if (err)
		free(r);
	return err;
}

/* By base address, as bhyve's unregister_mem; the name must match the registration's. */
static int pcb_unregister_mem(struct pcb *m, uint64_t base, const char *name)
{
	struct pcb_range *r;

	pthread_rwlock_wrlock(&m->lock);
	r = pcb_lookup(&m->tree, base);
	if (r && r->param.name == name && r->base == base && !(r->param.flags & MEM_F_IMMUTABLE)) {
		RB_REMOVE(pcb_tree, &m->tree, r);
		for (unsigned i = 0; i < m->max_vcpus; i++) {
			if (m->hint[i] == r)
				m->hint[i] = NULL;
		}
	} else {
		r = NULL;
	}
	pthread_rwlock_unlock(&m->lock);
	free(r);
	return r ? 0 : ENOENT;
}

static int pcb_mem_access(struct pcb *m, unsigned vcpu, bool write, uint64_t addr, unsigned size,
                          uint64_t *value)
{
	struct pcb_range *r;
	bool immutable;
	int err;

	if (vcpu >= m->max_vcpus)
		return EINVAL;
	pthread_rwlock_rdlock(&m->lock);
	r = m->hint[vcpu];
	if (!r || addr < r->base || addr > r->end) {
		r = pcb_lookup(&m->tree, addr);
		if (!r) {
			pthread_rwlock_unlock(&m->lock);
			return ESRCH;
		}
		m->hint[vcpu] = r;
	}
	/* An immutable range is never unregistered, so its handler may run unlocked, and
	 * must: a configuration write takes the lock for writing. */
	immutable = r->param.flags & MEM_F_IMMUTABLE;
	if (immutable)
		pthread_rwlock_unlock(&m->lock);
	err = r->param.handler(m, write, addr, size, value, r->param.arg1, r->param.arg2);
	if (!immutable)
		pthread_rwlock_unlock(&m->lock);
	return err;
}

int pcb_mem_read(struct pcb *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t *value)
{
	return pcb_mem_access(m, vcpu, false, addr, size, value);
}

int pcb_mem_write(struct pcb *m, unsigned vcpu, uint64_t addr, unsigned size, uint64_t value)
{
	return pcb_mem_access(m, vcpu, true, addr, size, &value);
}

/* ---- port I/O (inout.c) ---- */

static uint32_t size_mask(unsigned bytes)
{
	return bytes >= 4 ? UINT32_MAX : (1u << (8 * bytes)) - 1;
}

static int pcb_default_inout(struct pcb *m, bool in, unsigned port, unsigned bytes, uint32_t *eax,
                             void *arg)
{
	(void)m;
	(void)port;
	(void)arg;
	if (in)
		*eax = size_mask(bytes);
	return 0;
}

static void pcb_register_inout(struct pcb *m, unsigned port, unsigned size, const char *name,
                               int flags, pcb_inout_fn handler, void *arg)
{
	for (unsigned i = port; i < port + size && i < PCB_PORTS; i++)
		m->ports[i] = (struct pcb_port){name, flags, handler, arg};
}

int pcb_inout(struct pcb *m, unsigned vcpu, bool in, unsigned port, unsigned bytes, uint32_t *eax)
{
	const struct pcb_port *p;
	uint32_t val;
	int err;

	(void)vcpu;
	if (port >= PCB_PORTS || (bytes != 1 && bytes != 2 && bytes != 4))
		return EINVAL;
	p = &m->ports[port];
	if (!(p->flags & (in ? PORT_F_IN : PORT_F_OUT)))
		return -1;
	val = *eax & size_mask(bytes);
	err = p->handler(m, in, port, bytes, &val, p->arg);
	if (err == 0 && in)
		*eax = (*eax & ~size_mask(bytes)) | (val & size_mask(bytes));
	return err;
}

/* ---- configuration space (pci_emul.c) ---- */

static uint32_t cfg_get(const struct pcb_func *f, unsigned off, unsigned bytes)
{
	uint32_t v = 0;

	memcpy(&v, &f->cfg[off], bytes);
	return v;
}

static void cfg_set(struct pcb_func *f, unsigned off, unsigned bytes, uint32_t v)
{
	memcpy(&f->cfg[off], &v, bytes);
}

static bool is_bar_reg(unsigned off)
{
	return off >= REG_BAR0 && off < REG_BAR0 + 4 * PCB_NBARS;
}

static bool is_cap(const struct pcb_func *f, unsigned off)
{
	return (cfg_get(f, REG_STATUS, 2) & STATUS_CAPS) && off >= CAP_START && off <= f->capend;
}

static uint64_t pcb_bar_read(const struct pcb_func *f, unsigned idx, uint64_t off, unsigned size)
{
	return f->ops && f->ops->read ? f->ops->read(f->opaque, idx, off, size) : UINT64_MAX;
}

static void pcb_bar_write(const struct pcb_func *f, unsigned idx, uint64_t off, unsigned size,
                          uint64_t v)
{
	if (f->ops && f->ops->write)
		f->ops->write(f->opaque, idx, off, size, v);
}

static int pcb_bar_handler(struct pcb *m, bool write, uint64_t addr, unsigned size, uint64_t *value,
                           void *arg1, long arg2)
{
	const struct pcb_func *f = arg1;
	unsigned idx = (unsigned)arg2;
	uint64_t off = addr - f->bar[idx].addr;

	(void)m;
	if (write && size == 8) {
		pcb_bar_write(f, idx, off, 4, *value & UINT32_MAX);
		pcb_bar_write(f, idx, off + 4, 4, *value >> 32);
	} else if (write) {
		pcb_bar_write(f, idx, off, size, *value);
	} else if (size == 8) {
		*value = pcb_bar_read(f, idx, off, 4) | pcb_bar_read(f, idx, off + 4, 4) << 32;
	} else {
		*value = pcb_bar_read(f, idx, off, size);
	}
	return 0;
}

/* A failed (un)registration would trip an assertion in bhyve; here the BAR just stays
 * where it was, and the runner's checks notice. */
static void modify_bar_registration(struct pcb_func *f, unsigned idx, bool registration)
{
	const struct pcb_bar *b = &f->bar[idx];
	struct pcb_mem_range mr = {
	    .name = f->name,
	    .handler = pcb_bar_handler,
	    .arg1 = f,
	    .arg2 = (long)idx,
	    .base = b->addr,
	    .size = b->size,
	};

	if (b->type != PCB_BAR_MEM32)
		return;
	if (registration)
		pcb_register_mem(f->m, &mr);
	else
		pcb_unregister_mem(f->m, b->addr, f->name);
}

static bool memen(const struct pcb_func *f)
{
	return cfg_get(f, REG_COMMAND, 2) & CMD_MEMEN;
}

static void update_bar_address(struct pcb_func *f, uint64_t addr, unsigned idx)
{
	bool decode = memen(f);

	if (decode)
		modify_bar_registration(f, idx, false);
	f->bar[idx].addr = addr;
	if (decode)
		modify_bar_registration(f, idx, true);
}

static bool lintr_permitted(const struct pcb_func *f)
{
	return !(cfg_get(f, REG_COMMAND, 2) & CMD_INTXDIS);
}

/* A line held back by INTx disable is raised when it is cleared, and the reverse; the
 * benchmark's functions raise none, and signalling the host is left out. */
static void lintr_update(struct pcb_func *f)
{
	pthread_mutex_lock(&f->lintr_lock);
	if (f->lintr == LINTR_ASSERTED && !lintr_permitted(f))
		f->lintr = LINTR_PENDING;
	else if (f->lintr == LINTR_PENDING && lintr_permitted(f))
		f->lintr = LINTR_ASSERTED;
	pthread_mutex_unlock(&f->lintr_lock);
}

static void cmd_changed(struct pcb_func *f, uint16_t old)
{
	uint16_t now = (uint16_t)cfg_get(f, REG_COMMAND, 2);
	uint16_t changed = old ^ now;

	for (unsigned i = 0; i < PCB_NBARS; i++) {
		if (f->bar[i].type == PCB_BAR_MEM32 && (changed & CMD_MEMEN))
			modify_bar_registration(f, i, now & CMD_MEMEN);
	}
	lintr_update(f);
}

static void cmdsts_write(struct pcb_func *f, unsigned off, uint32_t v, unsigned bytes)
{
	uint16_t cmd = (uint16_t)cfg_get(f, REG_COMMAND, 2);
	uint32_t readonly = CMD_READONLY >> ((off & 3) * 8);
	uint32_t old = cfg_get(f, off, bytes);

	cfg_set(f, off, bytes, (v & ~readonly) | (old & readonly));
	cmd_changed(f, cmd);
}

static void bar_write(struct pcb_func *f, unsigned off, unsigned bytes, uint32_t v)
{
	unsigned idx = (off - REG_BAR0) / 4;
	struct pcb_bar *b = &f->bar[idx];
	uint64_t addr;
	uint32_t bar = 0;

	/* Only aligned dword writes reach a BAR. */
	if (bytes != 4 || (off & 3))
		return;
	switch (b->type) {
	case PCB_BAR_NONE:
		b->addr = 0;
		break;
	case PCB_BAR_MEM32:
		addr = v & ~(b->size - 1);
		bar = (uint32_t)addr | b->lobits;
		if (addr != b->addr)
			update_bar_address(f, addr, idx);
		break;
	}
	cfg_set(f, off, 4, bar);
}

static bool slot_is_multifunction(const struct pcb *m, unsigned bus, unsigned slot)
{
	unsigned n = 0;

	for (unsigned fn = 0; fn < PCB_FUNCS; fn++)
		n += m->buses[bus]->funcs[slot][fn] != NULL;
	return n > 1;
}

static void hdrtype_fixup(const struct pcb *m, unsigned bus, unsigned slot, unsigned off,
                          unsigned bytes, uint32_t *v)
{
	unsigned shift;

	if (off > REG_HDRTYPE || off + bytes <= REG_HDRTYPE)
		return;
	shift = 8 * (REG_HDRTYPE - off);
	*v &= ~((uint32_t)HDR_MFDEV << shift);
	if (slot_is_multifunction(m, bus, slot))
		*v |= (uint32_t)HDR_MFDEV << shift;
}

static void pcb_cfgrw(struct pcb *m, bool in, unsigned bus, unsigned slot, unsigned func,
                      unsigned off, unsigned bytes, uint32_t *v)
{
	struct pcb_bus *b = bus < PCB_BUSES ? m->buses[bus] : NULL;
	struct pcb_func *f =
	    b && slot < PCB_SLOTS && func < PCB_FUNCS ? b->funcs[slot][func] : NULL;

	if (!f || (bytes != 1 && bytes != 2 && bytes != 4) || (off & (bytes - 1))) {
		if (in)
			*v = UINT32_MAX;
		return;
	}
	if (off >= PCB_CFG_SIZE) {
		/* An empty extended capability list reads as zeros. */
		if (in)
			*v = off <= PCB_CFG_SIZE + 3 ? 0 : UINT32_MAX;
		return;
	}
	pthread_mutex_lock(&f->cfg_lock);
	if (in) {
		*v = cfg_get(f, off, bytes);
		hdrtype_fixup(m, bus, slot, off, bytes, v);
	} else if (is_bar_reg(off)) {
		bar_write(f, off, bytes, *v);
	} else if (is_cap(f, off)) {
		/* capability writes are left out */
	} else if (off >= REG_COMMAND && off < REG_REVID) {
		cmdsts_write(f, off, *v, bytes);
	} else {
		cfg_set(f, off, bytes, *v);
	}
	pthread_mutex_unlock(&f->cfg_lock);
}

/* ---- the configuration mechanisms ---- */

static int pcb_cfgaddr(struct pcb *m, bool in, unsigned port, unsigned bytes, uint32_t *eax,
                       void *arg)
{
	(void)port;
	(void)arg;
	if (bytes != 4) {
		if (in)
			*eax = size_mask(bytes);
		return 0;
	}
	if (in) {
		*eax = m->cfgbus << 16 | m->cfgslot << 11 | m->cfgfunc << 8 | m->cfgoff |
		       (m->cfgenable ? CONF1_ENABLE : 0);
		return 0;
	}
	m->cfgenable = *eax & CONF1_ENABLE;
	m->cfgoff = *eax & 0xfc;
	m->cfgfunc = (*eax >> 8) & 7;
	m->cfgslot = (*eax >> 11) & 0x1f;
	m->cfgbus = (*eax >> 16) & 0xff;
	return 0;
}

static int pcb_cfgdata(struct pcb *m, bool in, unsigned port, unsigned bytes, uint32_t *eax,
                       void *arg)
{
	(void)arg;
	if (m->cfgenable)
		pcb_cfgrw(m, in, m->cfgbus, m->cfgslot, m->cfgfunc,
		          m->cfgoff + (port - CONF1_DATA_PORT), bytes, eax);
	else if (in)
		*eax = UINT32_MAX;
	return 0;
}

static int pcb_ecfg_handler(struct pcb *m, bool write, uint64_t addr, unsigned size,
                            uint64_t *value, void *arg1, long arg2)
{
	uint64_t off = addr - m->ecam_base;
	uint32_t v = write ? (uint32_t)*value : UINT32_MAX;

	(void)arg1;
	(void)arg2;
	pcb_cfgrw(m, !write, (off >> 20) & 0xff, (off >> 15) & 0x1f, (off >> 12) & 7, off & 0xfff,
	          size, &v);
	if (!write)
		*value = v;
	return 0;
}

/* ---- the machine ---- */

static int pcb_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int err;

	/* FreeBSD's rwlocks let a waiting writer in before new readers; glibc's default
	 * prefers readers. */
	err = pthread_rwlockattr_init(&attr);
	if (err)
		return err;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return err;
}

static const char conf_name[] = "pci-conf", ecam_name[] = "PCI ECFG";

struct pcb *pcb_new(unsigned max_vcpus, uint64_t ecam_base)
{
	struct pcb *m = calloc(1, sizeof(*m));
	struct pcb_mem_range ecam = {
	    .name = ecam_name,
	    .flags = MEM_F_IMMUTABLE,
	    .handler = pcb_ecfg_handler,
	    .base = ecam_base,
	    .size = PCB_ECAM_SIZE,
	};

	if (!m)
		return NULL;
	m->max_vcpus = max_vcpus ? max_vcpus : 1;
	m->ecam_base = ecam_base;
	RB_INIT(&m->tree);
	m->hint = calloc(m->max_vcpus, sizeof(*m->hint));
	if (!m->hint || pcb_lock_init(&m->lock)) {
		free(m->hint);
		free(m);
		return NULL;
	}
	pcb_register_inout(m, 0, PCB_PORTS, "default", PORT_F_INOUT, pcb_default_inout, NULL);
	pcb_register_inout(m, CONF1_ADDR_PORT, 1, conf_name, PORT_F_INOUT, pcb_cfgaddr, NULL);
	pcb_register_inout(m, CONF1_DATA_PORT, 4, conf_name, PORT_F_INOUT, pcb_cfgdata, NULL);
	if (pcb_register_mem(m, &ecam)) {
		pcb_free(m);
		return NULL;
	}
	return m;
}

void pcb_free(struct pcb *m)
{
	struct pcb_range *r, *next;

	if (!m)
		return;
	RB_FOREACH_SAFE(r, pcb_tree, &m->tree, next)
	{
		RB_REMOVE(pcb_tree, &m->tree, r);
		free(r);
	}
	for (unsigned b = 0; b < PCB_BUSES; b++) {
		if (!m->buses[b])
			continue;
		for (unsigned s = 0; s < PCB_SLOTS; s++) {
			for (unsigned fn = 0; fn < PCB_FUNCS; fn++) {
				struct pcb_func *f = m->buses[b]->funcs[s][fn];

				if (!f)
					continue;
				pthread_mutex_destroy(&f->cfg_lock);
				pthread_mutex_destroy(&f->lintr_lock);
				free(f);
			}
		}
		free(m->buses[b]);
	}
	pthread_rwlock_destroy(&m->lock);
	free(m->hint);
	free(m);
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

struct pcb_func *pcb_func_new(struct pcb *m, unsigned bus, unsigned slot, unsigned func,
                              const struct pcb_func_desc *d)
{
	struct pcb_func *f;

	if (bus >= PCB_BUSES || slot >= PCB_SLOTS || func >= PCB_FUNCS ||
	    (d->bar0_size && (!is_pow2(d->bar0_size) || d->bar0_size < 16)))
		return NULL;
	if (!m->buses[bus])
		m->buses[bus] = calloc(1, sizeof(*m->buses[bus]));
	if (!m->buses[bus] || m->buses[bus]->funcs[slot][func])
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->m = m;
	snprintf(f->name, sizeof(f->name), "dev@pci.%u.%u.%u", bus, slot, func);
	pthread_mutex_init(&f->cfg_lock, NULL);
	pthread_mutex_init(&f->lintr_lock, NULL);
	f->ops = d->ops;
	f->opaque = d->opaque;
	cfg_set(f, REG_VENDOR, 2, d->vendor_id);
	cfg_set(f, REG_DEVICE, 2, d->device_id);
	cfg_set(f, REG_CLASS, 1, d->class_code & 0xff);
	cfg_set(f, REG_CLASS + 1, 2, (d->class_code >> 8) & 0xffff);
	cfg_set(f, REG_INTLINE, 1, 0xff);
	if (d->bar0_size) {
		f->bar[0].type = PCB_BAR_MEM32;
		f->bar[0].size = d->bar0_size;
	}
	m->buses[bus]->funcs[slot][func] = f;
	return f;
}
