/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guests' model of the PCI map (model.h) and the check that compares it with what
 * the machine answers. The rules are QEMU's pci_update_mappings: a BAR decodes when its
 * space is enabled in COMMAND and its address is neither 0, nor wrapping, nor (for a
 * 32-bit BAR) reaching 0xffffffff; a BAR whose address changes is placed anew, and of
 * overlapping BARs the one placed last answers. RAM is in front of every BAR, the ROM
 * behind them.
 */
#include "model.h"

#define PT_BASE   0x100000u /* PAE tables: the PDPT, then four page directories */
#define WINDOW_VA 0x3fe00000u /* the last 2 MiB of the first GiB: nothing of ours there */
#define ROM_BASE  0xffff0000u
#define LOW_LIMIT 0x4000u

static const struct {
	u16 vendor, device;
	const char *name;
} known[] = {
    {0x1af4, 0x1000, "virtio-net"},
    {0x1af4, 0x1001, "virtio-blk"},
    {0x1b36, 0x0005, "pci-testdev"},
};

/* ---- memory above 4 GiB ---- */

/* The CPU's physical address width: a BAR above it decodes, but no access reaches it. */
u64 phys_limit = 0x1000000000ull;

static void cpuid(u32 leaf, u32 *a)
{
	u32 b, c, d;
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(0));
}

void paging_on(void)
{
	u32 max, bits;
	cpuid(0x80000000u, &max);
	if (max >= 0x80000008u) {
		cpuid(0x80000008u, &bits);
		bits &= 0xff;
		if (bits >= 36 && bits <= 52)
			phys_limit = 1ull << bits;
	}
	volatile u64 *pdpt = (u64 *)PT_BASE, *pd = (u64 *)(PT_BASE + 0x1000);
	for (u32 i = 0; i < 4; i++)
		pdpt[i] = (PT_BASE + 0x1000 + i * 0x1000) | 1;
	/* Identity, 2 MiB pages, uncached: present, writable, PWT, PCD, large. */
	for (u32 i = 0; i < 2048; i++)
		pd[i] = ((u64)i << 21) | 0x9b;
	__asm__ volatile("movl %%cr4, %%eax\n\torl $0x20, %%eax\n\tmovl %%eax, %%cr4\n\t"
	                 "movl %0, %%cr3\n\t"
	                 "movl %%cr0, %%eax\n\torl $0x80000000, %%eax\n\tmovl %%eax, %%cr0" ::"r"(
	                     PT_BASE)
	                 : "eax", "memory");
}

static volatile void *phys(u64 pa)
{
	if (pa < 0x100000000ull)
		return (volatile void *)(u32)pa;
	volatile u64 *pd = (u64 *)(PT_BASE + 0x1000);
	pd[WINDOW_VA >> 21] = (pa & ~0x1fffffull) | 0x9b;
	__asm__ volatile("invlpg (%0)" ::"r"(WINDOW_VA) : "memory");
	return (volatile void *)(WINDOW_VA + ((u32)pa & 0x1fffff));
}

u32 phys_read32(u64 pa) { return *(volatile u32 *)phys(pa); }
void phys_write32(u64 pa, u32 v) { *(volatile u32 *)phys(pa) = v; }

/* ---- the model ---- */

int model_dev(const struct model *m, u16 vendor, u16 device)
{
	for (unsigned i = 0; i < m->ndevs; i++)
		if (m->devs[i].vendor == vendor && m->devs[i].device == device)
			return (int)i;
	return -1;
}

struct bar *model_bar(struct model *m, unsigned dev, u32 reg)
{
	for (unsigned i = 0; i < m->devs[dev].nbars; i++) {
		struct bar *b = &m->bars[m->devs[dev].bar[i]];
		if (b->reg == reg)
			return b;
	}
	return NULL;
}

/* QEMU's pci_bar_address: where b decodes now, or UNMAPPED. */
static u64 bar_address(const struct model *m, const struct bar *b)
{
	u16 cmd = m->devs[b->dev].cmd;
	u64 a, last;
	if (b->io) {
		if (!(cmd & 1))
			return UNMAPPED;
		a = b->lo & ~(b->size - 1);
		last = a + b->size - 1;
		return last <= a || last >= 0xffffffffull || a == 0 ? UNMAPPED : a;
	}
	if (!(cmd & 2))
		return UNMAPPED;
	a = b->is64 ? (u64)b->hi << 32 | b->lo : b->lo;
	a &= ~(u64)(b->size - 1);
	last = a + b->size - 1;
	if (last <= a || last == ~0ull || a == 0)
		return UNMAPPED;
	if (!b->is64 && last >= 0xffffffffull)
		return UNMAPPED;
	return a;
}

static void remember(struct model *m, u8 io, u64 base, u32 size)
{
	for (unsigned i = 0; i < m->nseen; i++)
		if (m->seen[i].io == io && m->seen[i].base == base && m->seen[i].size == size)
			return;
	if (m->nseen < MAX_SEEN)
		m->seen[m->nseen++] = (struct seen){io, base, size};
}

/* QEMU's pci_update_mappings: BAR by BAR, a BAR whose address changed is placed anew. */
static void update_mappings(struct model *m, unsigned dev)
{
	for (unsigned i = 0; i < m->devs[dev].nbars; i++) {
		struct bar *b = &m->bars[m->devs[dev].bar[i]];
		u64 a = bar_address(m, b);
		if (a == b->mapped)
			continue;
		b->mapped = a;
		if (a != UNMAPPED) {
			b->seq = ++m->clock;
			remember(m, b->io, a, b->size);
		}
	}
}

static u32 bar_wmask(const struct bar *b, int high)
{
	if (high)
		return (u32)(~(u64)(b->size - 1) >> 32);
	return ~(b->size - 1) & (b->io ? ~3u : ~0xfu);
}

/* One byte of a configuration write, as the device's write mask lets it through. */
static void apply_byte(struct model *m, unsigned dev, u32 reg, u8 byte)
{
	struct dev *d = &m->devs[dev];
	if (reg == 4 || reg == 5) {
		unsigned sh = 8 * (reg - 4);
		d->cmd = (u16)((d->cmd & ~(0xffu << sh)) | ((u32)byte << sh));
		return;
	}
	for (unsigned i = 0; i < d->nbars; i++) {
		struct bar *b = &m->bars[d->bar[i]];
		int high = b->is64 && (reg & ~3u) == b->reg + 4u;
		if ((reg & ~3u) != b->reg && !high)
			continue;
		unsigned sh = 8 * (reg & 3);
		u32 *r = high ? &b->hi : &b->lo;
		u32 lane = (0xffu << sh) & bar_wmask(b, high);
		*r = (*r & ~lane) | (((u32)byte << sh) & lane);
	}
}

static void put_bdf(u32 bdf)
{
	static const char hex[] = "0123456789abcdef";
	char s[9] = {hex[(bdf >> 12) & 15], hex[(bdf >> 8) & 15], ':', hex[(bdf >> 7) & 1],
	             hex[(bdf >> 3) & 15], '.', hex[bdf & 7], 0};
	put_str(s);
}

void model_fail(struct model *m, const char *why)
{
	put_str("bars: FAIL: pattern \"");
	put_str(m->pattern ? m->pattern : "set-up");
	put_str(m->method == CFG_ECAM ? "\" through ECAM, step " : "\" through CF8/CFC, step ");
	put_dec(m->step_no);
	put_str(" (");
	put_str(m->step ? m->step : "-");
	put_str("), after the write ");
	put_bdf(m->last_bdf);
	put_str(" @");
	put_hex(m->last_reg);
	put_str(" size ");
	put_dec(m->last_size);
	put_str(" <- ");
	put_hex(m->last_value);
	put_str(": ");
	put_str(why);
	put_str("\n");
	exit_verdict(m->verdict);
}

void model_begin(struct model *m, const char *pattern, u32 verdict)
{
	m->pattern = pattern;
	m->verdict = verdict;
	m->step = NULL;
	m->step_no = 0;
	m->nseen = 0;
	for (unsigned i = 0; i < m->nbars; i++)
		if (m->bars[i].mapped != UNMAPPED)
			remember(m, m->bars[i].io, m->bars[i].mapped, m->bars[i].size);
}

void model_apply(struct model *m, unsigned dev, u32 reg, unsigned size, u32 value)
{
	struct dev *d = &m->devs[dev];
	m->step_no++;
	m->last_bdf = d->bdf;
	m->last_reg = reg;
	m->last_size = size;
	m->last_value = value;
	cfg_write(m->method, d->bdf, reg, size, value);
	for (unsigned i = 0; i < size; i++)
		apply_byte(m, dev, reg + i, (u8)(value >> (8 * i)));
	update_mappings(m, dev);
}

void model_write(struct model *m, unsigned dev, u32 reg, unsigned size, u32 value,
                 const char *what)
{
	m->step = what;
	model_apply(m, dev, reg, size, value);
	model_check(m);
}

void model_read_bar(struct model *m, unsigned dev, u32 reg)
{
	struct bar *b = NULL;
	u32 want = 0;
	for (unsigned i = 0; i < m->devs[dev].nbars && !b; i++) {
		struct bar *c = &m->bars[m->devs[dev].bar[i]];
		if (c->reg == reg)
			b = c, want = c->lo;
		else if (c->is64 && c->reg + 4u == reg)
			b = c, want = c->hi;
	}
	u32 got = cfg_read(m->method, m->devs[dev].bdf, reg, 4);
	if (b && got != want) {
		put_str("BAR register ");
		put_hex(reg);
		put_str(" reads ");
		put_hex(got);
		put_str(", the model holds ");
		put_hex(want);
		put_str("\n");
		model_fail(m, "a BAR register does not read back what its write mask allows");
	}
}

/* ---- what answers where ---- */

static const struct bar *winner(const struct model *m, u8 io, u64 a)
{
	const struct bar *w = NULL;
	for (unsigned i = 0; i < m->nbars; i++) {
		const struct bar *b = &m->bars[i];
		if (b->io != io || b->mapped == UNMAPPED || a < b->mapped || a - b->mapped >= b->size)
			continue;
		if (!w || b->seq > w->seq)
			w = b;
	}
	return w;
}

u32 model_probe_read(u8 io, u64 a)
{
	return io ? inl((u16)(a + PROBE_IO)) : phys_read32(a + PROBE_MEM);
}

/* What answers at a where no BAR does: low RAM is in front of every BAR (the PCI space
 * lies under system memory), the ROM behind them (QEMU puts pc.bios in the PCI space at
 * priority 0, under BARs at 1). 1 with its value when a is in either. */
static int fixed_memory(const struct model *m, u64 a, u32 *value)
{
	if (a < LOW_LIMIT) {
		*value = m->low_fp[a / GRID_MEM];
		return 1;
	}
	if (a >= ROM_BASE && a < 0x100000000ull) {
		*value = m->rom_fp[(u32)(a - ROM_BASE) / GRID_MEM];
		return 1;
	}
	return 0;
}

static void describe(const struct model *m, const struct bar *b)
{
	if (!b) {
		put_str("nothing");
		return;
	}
	put_str(m->devs[b->dev].name);
	put_str(" BAR@");
	put_hex(b->reg);
}

int model_expect(const struct model *m, u8 io, u64 a, u32 *want)
{
	u32 grid = io ? GRID_IO : GRID_MEM;
	const struct bar *w;
	if (io && a + PROBE_IO + 4 > 0x10000)
		return 0; /* no port reaches it */
	if (!io && a >= phys_limit)
		return 0; /* nor any load */
	if (!io && a < 0x100000000ull && a >= LOW_LIMIT && a < 0xa0000)
		return 0; /* our own RAM: the model does not know its contents */
	if (!io && a < LOW_LIMIT)
		return fixed_memory(m, a, want);
	if ((w = winner(m, io, a))) {
		u32 i = (u32)(a - w->mapped) / grid;
		if (i >= MAX_POINTS || !(w->fp_stable & (1u << i)))
			return 0;
		*want = w->fp[i];
		return 1;
	}
	if (io || !fixed_memory(m, a, want))
		*want = io ? m->empty_io : m->empty_mem;
	return 1;
}

static void probe(struct model *m, u8 io, u64 a)
{
	u32 want;
	if (!model_expect(m, io, a, &want))
		return;
	u32 got = model_probe_read(io, a);
	if (got == want)
		return;
	put_str(io ? "port " : "address ");
	put_hex64(a + (io ? PROBE_IO : PROBE_MEM));
	put_str(" read ");
	put_hex(got);
	put_str(", expected ");
	put_hex(want);
	put_str(" from ");
	const struct bar *w = winner(m, io, a);
	if (!io && (a < LOW_LIMIT || !w) && fixed_memory(m, a, &want))
		put_str("RAM or ROM");
	else
		describe(m, w);
	put_str("\n");
	model_fail(m, "an address does not reach what the last writes placed there");
}

static void probe_range(struct model *m, u8 io, u64 base, u32 size)
{
	u32 grid = io ? GRID_IO : GRID_MEM;
	for (u32 off = 0; off < size; off += grid)
		probe(m, io, base + off);
}

void model_check(struct model *m)
{
	for (unsigned i = 0; i < m->nbars; i++) {
		const struct bar *b = &m->bars[i];
		if (b->mapped != UNMAPPED)
			probe_range(m, b->io, b->mapped, b->size);
	}
	for (unsigned i = 0; i < m->nseen; i++)
		probe_range(m, m->seen[i].io, m->seen[i].base, m->seen[i].size);
}

/* ---- finding and learning the devices ---- */

/* The MSI-X table's BAR register and offset, or 0 when the function has none. */
static u32 msix_table(u32 bdf, u32 *offset)
{
	if (!(cfg_read(CFG_CF8, bdf, 6, 2) & 0x10))
		return 0;
	u32 p = cfg_read(CFG_CF8, bdf, 0x34, 1) & 0xfc;
	for (unsigned n = 0; p && n < 48; n++) {
		if (cfg_read(CFG_CF8, bdf, p, 1) == 0x11) {
			u32 t = cfg_read(CFG_CF8, bdf, p + 4, 4);
			*offset = t & ~7u;
			return 0x10 + 4 * (t & 7);
		}
		p = cfg_read(CFG_CF8, bdf, p + 1, 1) & 0xfc;
	}
	return 0;
}

static const char *size_bars(struct model *m, unsigned dev)
{
	struct dev *d = &m->devs[dev];
	for (u32 reg = 0x10; reg < 0x28; reg += 4) {
		u32 old = cfg_read(CFG_CF8, d->bdf, reg, 4);
		cfg_write(CFG_CF8, d->bdf, reg, 4, ~0u);
		u32 mask = cfg_read(CFG_CF8, d->bdf, reg, 4);
		cfg_write(CFG_CF8, d->bdf, reg, 4, old);
		if (!mask)
			continue;
		if (m->nbars == MAX_BARS)
			return "too many BARs";
		struct bar *b = &m->bars[m->nbars];
		*b = (struct bar){.dev = (u8)dev, .reg = (u8)reg, .lo = old, .mapped = UNMAPPED};
		b->io = mask & 1;
		b->is64 = !b->io && (mask & 6) == 4;
		u32 szmask = mask & (b->io ? ~3u : ~0xfu);
		b->size = ~szmask + 1;
		if (!szmask || (b->size & (b->size - 1)))
			return "a BAR sizes to no power of two";
		if (b->is64) {
			reg += 4;
			b->hi = cfg_read(CFG_CF8, d->bdf, reg, 4);
		}
		d->bar[d->nbars++] = (u8)m->nbars++;
	}
	return NULL;
}

/* virtio's ISR status (its modern BAR's ISR structure) changes with the device's
 * interrupts and reading it clears it: no fixed answer. Its BAR register and offset, or
 * 0 when the function has none. */
static u32 virtio_isr(u32 bdf, u32 *offset)
{
	if (!(cfg_read(CFG_CF8, bdf, 6, 2) & 0x10))
		return 0;
	u32 p = cfg_read(CFG_CF8, bdf, 0x34, 1) & 0xfc;
	for (unsigned n = 0; p && n < 48; n++) {
		/* A vendor capability with cfg_type 3: bar at +4, offset at +8. */
		if (cfg_read(CFG_CF8, bdf, p, 1) == 0x09 && cfg_read(CFG_CF8, bdf, p + 3, 1) == 3) {
			*offset = cfg_read(CFG_CF8, bdf, p + 8, 4);
			return 0x10 + 4 * (cfg_read(CFG_CF8, bdf, p + 4, 1) & 7);
		}
		p = cfg_read(CFG_CF8, bdf, p + 1, 1) & 0xfc;
	}
	return 0;
}

/* Places b alone at spare (its device's decode on, everything else's off) and reads its
 * grid twice: what it answers there is its fingerprint. */
static void learn(struct model *m, struct bar *b, u32 spare)
{
	struct dev *d = &m->devs[b->dev];
	u32 moff = 0, mreg = msix_table(d->bdf, &moff);
	u32 grid = b->io ? GRID_IO : GRID_MEM;
	cfg_write(CFG_CF8, d->bdf, b->reg, 4, spare);
	if (b->is64)
		cfg_write(CFG_CF8, d->bdf, b->reg + 4, 4, 0);
	cfg_write(CFG_CF8, d->bdf, 4, 2, b->io ? 1 : 2);
	if (!b->io && d->vendor == 0x1b36)
		mmio_write32(spare, 0); /* pci-testdev: test 0's header answers */
	if (!b->io && mreg == b->reg && moff + 0x14 <= b->size)
		mmio_write32(spare + moff + 0x10, 0x0ace0000u | d->bdf << 4); /* entry 1 */
	/* virtio's common configuration (BAR4) reads alike on every device but for the
	 * configuration MSI-X vector at 0x10: a different valid vector on each. */
	if (b->is64 && d->vendor == 0x1af4)
		mmio_write16(spare + 0x10, d->device == 0x1000 ? 2 : 1);
	u32 ioff = 0, ireg = d->vendor == 0x1af4 ? virtio_isr(d->bdf, &ioff) : 0;
	for (u32 i = 0; i < MAX_POINTS && i * grid < b->size; i++) {
		u32 v = model_probe_read(b->io, spare + i * grid);
		b->fp[i] = v;
		if (model_probe_read(b->io, spare + i * grid) == v &&
		    !(ireg == b->reg && ioff / grid == i))
			b->fp_stable |= 1u << i;
	}
	cfg_write(CFG_CF8, d->bdf, 4, 2, 0);
	cfg_write(CFG_CF8, d->bdf, b->reg, 4, b->lo);
	if (b->is64)
		cfg_write(CFG_CF8, d->bdf, b->reg + 4, 4, b->hi);
}

void model_print(const struct model *m)
{
	for (unsigned i = 0; i < m->nbars; i++) {
		const struct bar *b = &m->bars[i];
		put_str("  ");
		put_bdf(m->devs[b->dev].bdf);
		put_str(" ");
		describe(m, b);
		put_str(b->io ? " I/O " : b->is64 ? " mem64 " : " mem32 ");
		put_hex(b->size);
		put_str(" answers ");
		put_hex(b->fp[0]);
		put_str("\n");
	}
	put_str("  nothing answers ");
	put_hex(m->empty_io);
	put_str(" (I/O), ");
	put_hex(m->empty_mem);
	put_str(" (memory)\n");
}

/* Two BARs of one space must not answer alike where they start, or a misroute between
 * them would go unseen. */
static const char *check_distinct(const struct model *m)
{
	for (unsigned i = 0; i < m->nbars; i++) {
		const struct bar *a = &m->bars[i];
		u32 empty = a->io ? m->empty_io : m->empty_mem;
		if (!(a->fp_stable & 1) || a->fp[0] == empty)
			return "a BAR answers like nothing at its start";
		for (unsigned j = 0; j < i; j++)
			if (m->bars[j].io == a->io && m->bars[j].fp[0] == a->fp[0])
				return "two BARs answer alike at their start";
	}
	return NULL;
}

const char *model_init(struct model *m, u32 io_spare, u32 mem_spare)
{
	memset(m, 0, sizeof(*m));
	for (u32 slot = 0; slot < 32; slot++) {
		u32 bdf = BDF(0, slot, 0), id = cfg_read(CFG_CF8, bdf, 0, 4);
		for (unsigned k = 0; k < ARRAY_SIZE(known); k++) {
			if (id != (known[k].vendor | (u32)known[k].device << 16) || m->ndevs == MAX_DEVS)
				continue;
			struct dev *d = &m->devs[m->ndevs];
			d->bdf = bdf;
			d->vendor = known[k].vendor;
			d->device = known[k].device;
			d->name = known[k].name;
			d->cmd = (u16)cfg_read(CFG_CF8, bdf, 4, 2);
			cfg_write(CFG_CF8, bdf, 4, 2, 0);
			m->ndevs++;
		}
	}
	for (unsigned i = 0; i < m->ndevs; i++) {
		const char *why = size_bars(m, i);
		if (why)
			return why;
	}
	m->empty_io = model_probe_read(1, io_spare);
	m->empty_mem = model_probe_read(0, mem_spare);
	for (u32 i = 0; i < ARRAY_SIZE(m->rom_fp); i++)
		m->rom_fp[i] = model_probe_read(0, ROM_BASE + i * GRID_MEM);
	for (u32 i = 0; i < ARRAY_SIZE(m->low_fp); i++)
		m->low_fp[i] = model_probe_read(0, i * GRID_MEM);
	for (unsigned i = 0; i < m->nbars; i++)
		learn(m, &m->bars[i], m->bars[i].io ? io_spare : mem_spare);
	const char *why = check_distinct(m);
	if (why)
		return why;
	/* Back as the machine started: decode as it was, each device's BARs placed in order. */
	for (unsigned i = 0; i < m->ndevs; i++) {
		cfg_write(CFG_CF8, m->devs[i].bdf, 4, 2, m->devs[i].cmd);
		update_mappings(m, i);
	}
	return NULL;
}
