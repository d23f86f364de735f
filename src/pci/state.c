/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The saved form of a host's PCI state (the format is described in busmap/pci_state.h).
 *
 * Save and restore share one encoder of the topology: restore encodes the target's
 * functions exactly as save would and compares the bytes with the blob's, so "the same
 * topology" means one thing on both sides and a new field cannot be forgotten by one of
 * them.
 *
 * Restore is in two halves. The first reads the blob and refuses it, with nothing touched,
 * unless every check passes: length, magic, checksum, version, every field's range, and
 * then (under the writer lock) the target's topology. The second applies it in one PCI
 * transaction (txn.c): registers, MSI-X tables and INTx levels first, for every function;
 * then what follows from the registers in the map, by the same calls a guest write makes
 * (BARs, bridge windows); then the placements are put back in their saved order, which
 * decides overlaps. A failure anywhere in the second half, its publication included, puts
 * every function and the map back. Map events and INTx changes go out only after the
 * publication, when bus numbers are final too.
 */
#include "pci_internal.h"
#include <busmap/pci_state.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t magic[8] = {'B', 'M', 'P', 'C', 'I', 'S', 'T', '\0'};

#define HEADER_LEN     32
#define HOST_TOPO_LEN  48
#define HOST_STATE_LEN 4
#define FUNC_TOPO_LEN  114
#define CRC_LEN        4
#define NO_PARENT      UINT32_MAX
#define NWINDOWS       3
#define RANKS_PER_FUNC (PCI_NUM_SLOTS + NWINDOWS) /* BARs, ROM, then a bridge's windows */

/* Offsets inside a function's topology record that its state record must agree with. */
#define T_HEADER  5
#define T_PIN     6
#define T_WINDOWS 7
#define T_VENDOR  8
#define T_CFGLEN  12
#define T_BARS    20
#define T_MSI     90
#define T_MSIX    94

#define HOST_PORTS       0x1
#define HOST_CF8         0x2
#define HOST_ECAM        0x4
#define HOST_DECODE_ZERO 0x8

/* The read-only low nibble of a bridge's I/O and prefetchable base and limit registers, and
 * the flags a topology record gives them. */
#define BRIDGE_IO_32    0x1
#define BRIDGE_PREF_64  0x1
#define WINDOWS_IO_32   0x1
#define WINDOWS_PREF_64 0x2

#define MSIX_MAX_VECTORS 2048

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib), four bits at a time ---- */

static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

/* crc is the running value, ~0 to start; the result is inverted once at the end. */
static uint32_t crc_add(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
	}
	return crc;
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	return ~crc_add(UINT32_MAX, p, n);
}

/* ---- little-endian fields ---- */

struct out {
	uint8_t *p;
	size_t off;
};

static void put(struct out *o, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		o->p[o->off + i] = (uint8_t)(v >> (8 * i));
	o->off += n;
}

static void put_bytes(struct out *o, const void *src, size_t n)
{
	memcpy(o->p + o->off, src, n);
	o->off += n;
}

/* Only called on ranges whose length was checked. */
static uint64_t get(const uint8_t *p, size_t at, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[at + i] << (8 * i);
	return v;
}

/* ---- what both sides encode the same way ---- */

static size_t msix_table_len(unsigned nvec)
{
	return (size_t)nvec * MSIX_ENTRY_DWORDS * 4;
}

/* Length of a function's state record, from what its topology record says. */
static size_t state_len(unsigned cfg_size, bool bridge, unsigned msix_nvec)
{
	return cfg_size + 4 + 4 * PCI_NUM_SLOTS + (bridge ? 4 * NWINDOWS : 0) +
	       msix_table_len(msix_nvec) + 8 * pci_msix_pba_words(msix_nvec);
}

static size_t func_state_len(const bm_pci_func *f)
{
	return state_len(f->cfg_size, f->bridge != NULL, f->msix.off ? f->msix.nvec : 0);
}

static void put_host_topo(struct out *o, const bm_pci_host *h)
{
	const struct bm_pci_host_config *c = &h->cfg;
	uint32_t flags = (c->io ? HOST_PORTS : 0) | (c->cf8 ? HOST_CF8 : 0) |
	                 (c->ecam ? HOST_ECAM : 0) | (c->decode_zero ? HOST_DECODE_ZERO : 0);
	put(o, flags, 4);
	put(o, (uint32_t)c->mem_priority, 4);
	put(o, (uint32_t)c->io_priority, 4);
	put(o, c->ecam ? c->ecam_bus_first : 0, 2);
	put(o, c->ecam ? pci_ecam_bus_count(c) : 0, 2);
	put(o, h->io_limit, 8);
	put(o, c->io_window_base, 8);
	put(o, c->io_window_size, 8);
	put(o, c->ecam ? c->ecam_base : 0, 8);
}

static uint32_t masks_digest(const bm_pci_func *f)
{
	uint32_t crc = crc_add(UINT32_MAX, f->wmask, f->cfg_size);
	return ~crc_add(crc, f->w1cmask, f->cfg_size);
}

/* Which of its windows a bridge decodes with upper registers, as its registers say. */
static unsigned window_flags(const bm_pci_func *f)
{
	if (!f->bridge)
		return 0;
	return ((f->cfg[PCI_IO_BASE] & 0xf) == BRIDGE_IO_32 ? WINDOWS_IO_32 : 0) |
	       ((f->cfg[PCI_PREF_MEMORY_BASE] & 0xf) == BRIDGE_PREF_64 ? WINDOWS_PREF_64 : 0);
}

static void put_func_topo(struct out *o, const bm_pci_func *f, uint32_t parent)
{
	put(o, parent, 4);
	put(o, PCI_DEVFN((unsigned)f->dev, (unsigned)f->fn), 1);
	put(o, f->cfg[PCI_HEADER_TYPE], 1);
	put(o, f->cfg[PCI_INTERRUPT_PIN], 1);
	put(o, window_flags(f), 1);
	put(o, pci_cfg_get(f, PCI_VENDOR_ID, 2), 2);
	put(o, pci_cfg_get(f, PCI_DEVICE_ID, 2), 2);
	put(o, f->cfg_size, 2);
	put(o, f->cap_free, 2);
	put(o, f->ext_free, 2);
	put(o, 0, 2);
	for (unsigned i = 0; i < PCI_NUM_SLOTS; i++) {
		const struct pci_bar *b = &f->bars[i];
		put(o, b->size ? (unsigned)b->type : 0, 1);
		put(o, b->size && b->prefetchable ? 1 : 0, 1);
		put(o, b->size, 8);
	}
	const struct pci_msi *m = &f->msi;
	put(o, m->off, 2);
	put(o, m->off ? m->nvec : 0, 1);
	put(o, m->off ? (m->addr64 ? 1u : 0) | (m->maskable ? 2u : 0) : 0, 1);
	const struct pci_msix *x = &f->msix;
	put(o, x->off, 2);
	put(o, x->off ? x->nvec : 0, 2);
	put(o, x->off ? x->table_bar : 0, 1);
	put(o, x->off ? x->pba_bar : 0, 1);
	put(o, 0, 2);
	put(o, x->off ? x->table_off : 0, 4);
	put(o, x->off ? x->pba_off : 0, 4);
	put(o, masks_digest(f), 4);
}

/* The host's functions in bm_pci_func_next order; returns how many there are, of which the
 * first max are stored. */
static size_t collect(bm_pci_host *h, bm_pci_func **v, size_t max)
{
	size_t n = 0;
	for (bm_pci_func *f = bm_pci_func_next(h, NULL); f; f = bm_pci_func_next(h, f)) {
		if (n < max)
			v[n] = f;
		n++;
	}
	return n;
}

/* Index of the bridge above v[i]; a bridge comes before everything behind it. */
static uint32_t parent_index(bm_pci_func *const *v, size_t i)
{
	const bm_pci_func *br = v[i]->bus->bridge;
	if (!br)
		return NO_PARENT;
	while (i-- > 0)
		if (v[i] == br)
			return (uint32_t)i;
	return NO_PARENT; /* not reached: the walk visits a bridge first */
}

/* The region a placement rank is about: slot k of a function (BARs, ROM, windows), or
 * NULL when it is not placed now. */
static bm_region *placed(const bm_pci_func *f, unsigned k)
{
	if (k < PCI_NUM_SLOTS)
		return f->bars[k].size && f->bars[k].mapped ? f->bars[k].container : NULL;
	if (!f->bridge)
		return NULL;
	bm_region *a = f->bridge->alias[k - PCI_NUM_SLOTS];
	return bm_region_parent(a) ? a : NULL;
}

struct placing {
	bm_region *r;
	uint64_t key; /* save: the region's stamp; restore: the saved rank */
	uint64_t stamp;
	uint32_t *rank; /* save: where the rank goes */
};

static int by_key(const void *a, const void *b)
{
	const struct placing *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

/* ---- save ---- */

/* Ranks every placed BAR and window of the host by the order of placement, 1 the oldest:
 * ranks[i * RANKS_PER_FUNC + k] for slot k of v[i], 0 for what is not placed. */
static int rank_placements(bm_pci_func *const *v, size_t n, uint32_t *ranks)
{
	struct placing *p = calloc(n * RANKS_PER_FUNC + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		for (unsigned k = 0; k < RANKS_PER_FUNC; k++) {
			bm_region *r = placed(v[i], k);
			if (!r)
				continue;
			uint64_t s = bm_region_stamp(r);
			p[np++] = (struct placing){r, s, s, &ranks[i * RANKS_PER_FUNC + k]};
		}
	}
	qsort(p, np, sizeof(*p), by_key);
	for (size_t j = 0; j < np; j++)
		*p[j].rank = (uint32_t)(j + 1);
	free(p);
	return 0;
}

static void put_func_state(struct out *o, const bm_pci_func *f, const uint32_t *ranks)
{
	put_bytes(o, f->cfg, f->cfg_size);
	put(o, f->intx_level ? 1 : 0, 1);
	put(o, 0, 3);
	for (unsigned k = 0; k < PCI_NUM_SLOTS; k++)
		put(o, ranks[k], 4);
	if (f->bridge)
		for (unsigned k = 0; k < NWINDOWS; k++)
			put(o, ranks[PCI_NUM_SLOTS + k], 4);
	if (!f->msix.off)
		return;
	for (size_t j = 0; j < (size_t)f->msix.nvec * MSIX_ENTRY_DWORDS; j++)
		put(o, f->msix.table[j], 4);
	for (size_t j = 0; j < pci_msix_pba_words(f->msix.nvec); j++)
		put(o, f->msix.pba[j], 8);
}

static void write_blob(bm_pci_host *h, bm_pci_func *const *v, size_t n, const uint32_t *ranks,
                       uint8_t *buf, size_t len)
{
	struct out o = {buf, 0};
	put_bytes(&o, magic, sizeof(magic));
	put(&o, BM_PCI_STATE_VERSION, 4);
	put(&o, 0, 4);
	put(&o, len, 8);
	put(&o, n, 4);
	put(&o, 0, 4);
	put_host_topo(&o, h);
	for (size_t i = 0; i < n; i++)
		put_func_topo(&o, v[i], parent_index(v, i));
	put(&o, __atomic_load_n(&h->conf_addr, __ATOMIC_RELAXED), 4);
	for (size_t i = 0; i < n; i++)
		put_func_state(&o, v[i], &ranks[i * RANKS_PER_FUNC]);
	put(&o, crc32_of(buf, o.off), 4);
}

static int save_locked(bm_pci_host *h, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n = collect(h, NULL, 0);
	bm_pci_func **v = calloc(n + 1, sizeof(*v));
	uint32_t *ranks = calloc(n * RANKS_PER_FUNC + 1, sizeof(*ranks));
	int err = v && ranks ? 0 : -ENOMEM;
	size_t need = HEADER_LEN + HOST_TOPO_LEN + HOST_STATE_LEN + CRC_LEN;
	if (!err) {
		collect(h, v, n);
		for (size_t i = 0; i < n; i++)
			need += FUNC_TOPO_LEN + func_state_len(v[i]);
		*len = need;
		if (cap < need)
			err = -ENOSPC;
	}
	if (!err)
		err = rank_placements(v, n, ranks);
	if (!err)
		write_blob(h, v, n, ranks, buf, need);
	free(ranks);
	free(v);
	return err;
}

int bm_pci_host_save(bm_pci_host *h, void *buf, size_t cap, size_t *len)
{
	if (!h || !len || (!buf && cap))
		return -EINVAL;
	int err = pci_begin(h);
	if (err)
		return err;
	err = save_locked(h, buf, cap, len);
	/* Nothing changed here: a failing publication of someone else's pending change is
	 * theirs to report. */
	pci_commit(h);
	return err;
}

/* ---- restore, first half: the blob on its own ---- */

/* Where a function's records are in the blob, and what their lengths follow from. */
struct func_rec {
	size_t topo, state;
	unsigned cfg_size;
	bool bridge;
	unsigned msix_nvec;
};

struct blob {
	const uint8_t *p;
	size_t len;
	size_t n;
	struct func_rec *f;
	size_t host_state;
	size_t nslots; /* placement ranks in the blob */
};

static int check_envelope(const struct blob *b)
{
	if (b->len < HEADER_LEN + CRC_LEN || memcmp(b->p, magic, sizeof(magic)) != 0)
		return -EBADMSG;
	if (get(b->p, 16, 8) != b->len)
		return -EBADMSG; /* truncated, or followed by other bytes */
	if (crc32_of(b->p, b->len - CRC_LEN) != get(b->p, b->len - CRC_LEN, 4))
		return -EBADMSG;
	if (get(b->p, 8, 4) != BM_PCI_STATE_VERSION)
		return -EPROTONOSUPPORT;
	if (get(b->p, 12, 4) != 0 || get(b->p, 28, 4) != 0)
		return -EBADMSG;
	return 0;
}

static bool valid_bar_type(unsigned slot, unsigned type)
{
	if (slot == BM_PCI_ROM)
		return type == BM_PCI_BAR_NONE || type == BM_PCI_BAR_MEM32;
	return type <= BM_PCI_BAR_MEM64;
}

/* The fields of a topology record that the layout of the blob depends on, or that no
 * function can have. The rest is checked against the registers (check_func_state), and
 * whether it all matches the target is decided later, at once. */
static int check_func_topo(struct blob *b, size_t i)
{
	const uint8_t *p = b->p + b->f[i].topo;
	uint32_t parent = (uint32_t)get(p, 0, 4);
	if (parent != NO_PARENT && (parent >= i || !b->f[parent].bridge))
		return -EBADMSG;
	unsigned header = p[T_HEADER] & (uint8_t)~PCI_HEADER_TYPE_MFD;
	unsigned cfg_size = (unsigned)get(p, T_CFGLEN, 2);
	if (header > BM_PCI_HEADER_BRIDGE || p[T_PIN] > 4 || get(p, 18, 2) != 0 ||
	    (cfg_size != BM_PCI_CFG_SIZE && cfg_size != BM_PCI_CFG_EXTSIZE))
		return -EBADMSG;
	for (unsigned k = 0; k < PCI_NUM_SLOTS; k++) {
		const uint8_t *bar = p + T_BARS + 10 * k;
		if (!valid_bar_type(k, bar[0]) || bar[1] > 1 ||
		    (bar[0] == BM_PCI_BAR_NONE) != (get(bar, 2, 8) == 0))
			return -EBADMSG;
	}
	unsigned msix_off = (unsigned)get(p, T_MSIX, 2);
	unsigned msix_nvec = (unsigned)get(p, T_MSIX + 2, 2);
	if ((msix_off == 0) != (msix_nvec == 0) || msix_nvec > MSIX_MAX_VECTORS ||
	    get(p, T_MSIX + 6, 2) != 0)
		return -EBADMSG;
	b->f[i].cfg_size = cfg_size;
	b->f[i].bridge = header == BM_PCI_HEADER_BRIDGE;
	b->f[i].msix_nvec = msix_nvec;
	return 0;
}

/* Lays the records out from the topology part and checks that they fill the blob exactly. */
static int parse_layout(struct blob *b)
{
	size_t fixed = HEADER_LEN + HOST_TOPO_LEN + HOST_STATE_LEN + CRC_LEN;
	uint64_t n = get(b->p, 24, 4);
	if (b->len < fixed ||
	    n > (b->len - fixed) / (FUNC_TOPO_LEN + state_len(BM_PCI_CFG_SIZE, false, 0)))
		return -EBADMSG;
	b->n = (size_t)n;
	b->f = calloc(b->n + 1, sizeof(*b->f));
	if (!b->f)
		return -ENOMEM;
	if (get(b->p, HEADER_LEN, 4) &
	    ~(uint64_t)(HOST_PORTS | HOST_CF8 | HOST_ECAM | HOST_DECODE_ZERO))
		return -EBADMSG;
	size_t at = HEADER_LEN + HOST_TOPO_LEN;
	for (size_t i = 0; i < b->n; i++, at += FUNC_TOPO_LEN) {
		b->f[i].topo = at;
		int err = check_func_topo(b, i);
		if (err)
			return err;
	}
	b->host_state = at;
	at += HOST_STATE_LEN;
	/* at <= len here (n is bounded above), and stays so: no sum can overflow. */
	for (size_t i = 0; i < b->n; i++) {
		const struct func_rec *r = &b->f[i];
		size_t len = state_len(r->cfg_size, r->bridge, r->msix_nvec);
		if (len > b->len - at)
			return -EBADMSG;
		b->f[i].state = at;
		at += len;
		b->nslots += PCI_NUM_SLOTS + (r->bridge ? NWINDOWS : 0);
	}
	return b->len - at == CRC_LEN ? 0 : -EBADMSG;
}

/* Placement ranks: 0, or unique among the blob's and no larger than their count; only for
 * BARs that exist. */
static int check_rank(uint8_t *seen, size_t nslots, uint32_t rank, bool exists)
{
	if (rank == 0)
		return 0;
	if (!exists || rank > nslots || (seen[(rank - 1) / 8] >> ((rank - 1) % 8) & 1))
		return -EBADMSG;
	seen[(rank - 1) / 8] |= (uint8_t)(1u << ((rank - 1) % 8));
	return 0;
}

/* An MSI capability inside the legacy list, whose fixed bits say what the record says. */
static bool msi_agrees(const uint8_t *t, const uint8_t *s)
{
	unsigned off = (unsigned)get(t, T_MSI, 2), n = t[T_MSI + 2], flags = t[T_MSI + 3];
	if (!off)
		return !n && !flags;
	unsigned len = (flags & 1 ? 0x10 : 0xc) + (flags & 2 ? 8 : 0);
	if (flags > 3 || off < PCI_STD_HEADER_SIZEOF || off % 4 || off + len > BM_PCI_CFG_SIZE ||
	    !n || n > 32 || (n & (n - 1)))
		return false;
	unsigned ctrl = (unsigned)get(s, off + 2, 2);
	return s[off] == PCI_CAP_ID_MSI && (ctrl >> MSI_CTRL_MMC_SHIFT & 7) == pci_log2u(n) &&
	       !(ctrl & PCI_MSI_FLAGS_64BIT) == !(flags & 1) &&
	       !(ctrl & PCI_MSI_FLAGS_MASKBIT) == !(flags & 2);
}

static bool msix_agrees(const uint8_t *t, const uint8_t *s)
{
	unsigned off = (unsigned)get(t, T_MSIX, 2), n = (unsigned)get(t, T_MSIX + 2, 2);
	unsigned tbar = t[T_MSIX + 4], pbar = t[T_MSIX + 5];
	uint64_t toff = get(t, T_MSIX + 8, 4), poff = get(t, T_MSIX + 12, 4);
	if (!off)
		return !n && !tbar && !pbar && !toff && !poff;
	if (off < PCI_STD_HEADER_SIZEOF || off % 4 || off + 12 > BM_PCI_CFG_SIZE ||
	    tbar >= BM_PCI_NUM_BARS || pbar >= BM_PCI_NUM_BARS || toff % 8 || poff % 8)
		return false;
	return s[off] == PCI_CAP_ID_MSIX && (get(s, off + 2, 2) & 0x7ff) == n - 1 &&
	       get(s, off + 4, 4) == (toff | tbar) && get(s, off + 8, 4) == (poff | pbar);
}

/* The read-only bits that busmap's decoding or a guest's driver go by must say what the
 * topology record says: the type bits of each BAR, the bridge's window types, the MSI and
 * MSI-X capabilities' geometry. */
static bool fixed_bits_agree(const uint8_t *t, const uint8_t *s, bool bridge)
{
	for (unsigned k = 0; k < BM_PCI_NUM_BARS; k++) {
		unsigned type = t[T_BARS + 10 * k], lo = s[PCI_BASE_ADDRESS_0 + 4 * k];
		unsigned mem = (type == BM_PCI_BAR_MEM64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
		               (t[T_BARS + 10 * k + 1] ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
		if ((type == BM_PCI_BAR_IO && (lo & 3) != PCI_BASE_ADDRESS_SPACE_IO) ||
		    ((type == BM_PCI_BAR_MEM32 || type == BM_PCI_BAR_MEM64) && (lo & 0xf) != mem))
			return false;
	}
	unsigned w = t[T_WINDOWS];
	unsigned io = w & WINDOWS_IO_32 ? BRIDGE_IO_32 : 0;
	unsigned pref = w & WINDOWS_PREF_64 ? BRIDGE_PREF_64 : 0;
	if (w > (WINDOWS_IO_32 | WINDOWS_PREF_64) || (w && !bridge))
		return false;
	if (bridge &&
	    ((s[PCI_IO_BASE] & 0xf) != io || (s[PCI_IO_LIMIT] & 0xf) != io ||
	     (s[PCI_PREF_MEMORY_BASE] & 0xf) != pref || (s[PCI_PREF_MEMORY_LIMIT] & 0xf) != pref))
		return false;
	return msi_agrees(t, s) && msix_agrees(t, s);
}

/* A state record must agree with its topology record on what the target will be compared
 * on: the IDs, the header type and the interrupt pin, whose registers it carries too, and
 * the read-only bits that follow from the rest. */
static int check_func_state(const struct blob *b, const struct func_rec *r, uint8_t *seen)
{
	const uint8_t *t = b->p + r->topo, *s = b->p + r->state;
	if (memcmp(s + PCI_VENDOR_ID, t + T_VENDOR, 4) != 0 || s[PCI_HEADER_TYPE] != t[T_HEADER] ||
	    s[PCI_INTERRUPT_PIN] != t[T_PIN] || !fixed_bits_agree(t, s, r->bridge))
		return -EBADMSG;
	size_t at = r->cfg_size;
	if (s[at] > 1 || (s[at] && t[T_PIN] == 0) || get(s, at + 1, 3) != 0)
		return -EBADMSG;
	at += 4;
	unsigned nranks = PCI_NUM_SLOTS + (r->bridge ? NWINDOWS : 0);
	for (unsigned k = 0; k < nranks; k++, at += 4) {
		bool exists = k >= PCI_NUM_SLOTS || t[T_BARS + 10 * k] != BM_PCI_BAR_NONE;
		if (check_rank(seen, b->nslots, (uint32_t)get(s, at, 4), exists))
			return -EBADMSG;
	}
	/* Only the mask bit of a vector's control word is writable; the rest reads as 0. */
	for (unsigned v = 0; v < r->msix_nvec; v++, at += 16)
		if (get(s, at + 4 * MSIX_VECTOR_CTRL, 4) & ~(uint64_t)PCI_MSIX_ENTRY_CTRL_MASKBIT)
			return -EBADMSG;
	for (size_t w = 0; w < pci_msix_pba_words(r->msix_nvec); w++, at += 8) {
		unsigned first = (unsigned)(w * 64);
		unsigned valid = r->msix_nvec - first >= 64 ? 64 : r->msix_nvec - first;
		if (valid < 64 && get(s, at, 8) >> valid)
			return -EBADMSG;
	}
	return 0;
}

static int parse(struct blob *b)
{
	int err = check_envelope(b);
	if (!err)
		err = parse_layout(b);
	if (err)
		return err;
	uint8_t *seen = calloc(b->nslots / 8 + 1, 1);
	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < b->n && !err; i++)
		err = check_func_state(b, &b->f[i], seen);
	free(seen);
	return err;
}

/* ---- restore, second half: against the target ---- */

/* The target's functions, in order, with topology records equal to the blob's. */
static int match_topology(bm_pci_host *h, const struct blob *b, bm_pci_func **v)
{
	uint8_t rec[HOST_TOPO_LEN > FUNC_TOPO_LEN ? HOST_TOPO_LEN : FUNC_TOPO_LEN];
	struct out o = {rec, 0};
	put_host_topo(&o, h);
	if (memcmp(rec, b->p + HEADER_LEN, HOST_TOPO_LEN) != 0)
		return -ESTALE;
	if (collect(h, v, b->n) != b->n)
		return -ESTALE;
	for (size_t i = 0; i < b->n; i++) {
		o.off = 0;
		put_func_topo(&o, v[i], parent_index(v, i));
		if (memcmp(rec, b->p + b->f[i].topo, FUNC_TOPO_LEN) != 0)
			return -ESTALE;
	}
	return 0;
}

/* Registers, MSI-X table and pending bits, and the INTx line, as saved. */
static void copy_in(bm_pci_func *f, const struct blob *b, const struct func_rec *r)
{
	const uint8_t *s = b->p + r->state;
	memcpy(f->cfg, s, f->cfg_size);
	pci_cfg_mark(f, 0, f->cfg_size);
	f->intx_level =
	    s[f->cfg_size] != 0 && f->cfg[PCI_INTERRUPT_PIN] >= 1 && f->cfg[PCI_INTERRUPT_PIN] <= 4;
	if (!f->msix.off)
		return;
	size_t at = f->cfg_size + 4 + 4 * PCI_NUM_SLOTS + (r->bridge ? 4 * NWINDOWS : 0);
	for (size_t j = 0; j < (size_t)f->msix.nvec * MSIX_ENTRY_DWORDS; j++, at += 4)
		f->msix.table[j] = (uint32_t)get(s, at, 4);
	for (size_t j = 0; j < pci_msix_pba_words(f->msix.nvec); j++, at += 8)
		f->msix.pba[j] = get(s, at, 8);
}

/* What a guest write of the registers would derive from them in the map: the BARs and the
 * ROM, the bridge windows. The INTx line the host sees is brought up to date by the
 * transaction's end, for every saved function, once nothing can fail any more. MSI and
 * MSI-X derive nothing but deliveries, which a restore does not make. */
static int derive(bm_pci_func *f)
{
	int err = pci_bars_update(f);
	if (!err && f->bridge)
		err = pci_bridge_after_write(f, PCI_COMMAND, 2);
	return err;
}

/* Puts every placement back in its saved order: sorted by saved rank (what has none, as
 * oldest, in its current order), each one is re-placed where it is unless it is already
 * newer than everything before it. */
static int reorder(const struct blob *b, bm_pci_func *const *v, struct placing *p)
{
	size_t np = 0;
	for (size_t i = 0; i < b->n; i++) {
		const uint8_t *ranks = b->p + b->f[i].state + b->f[i].cfg_size + 4;
		unsigned nranks = PCI_NUM_SLOTS + (b->f[i].bridge ? NWINDOWS : 0);
		for (unsigned k = 0; k < nranks; k++) {
			bm_region *r = placed(v[i], k);
			if (r)
				p[np++] = (struct placing){r, get(ranks, 4 * k, 4),
				                           bm_region_stamp(r), NULL};
		}
	}
	qsort(p, np, sizeof(*p), by_key);
	uint64_t newest = 0;
	for (size_t j = 0; j < np; j++) {
		if (bm_region_stamp(p[j].r) <= newest) {
			int err = bm_region_move(p[j].r, bm_region_offset(p[j].r));
			if (err)
				return err;
		}
		newest = bm_region_stamp(p[j].r);
	}
	return 0;
}

static int apply(bm_pci_host *h, struct pci_txn *t, const struct blob *b, bm_pci_func **v,
                 struct placing *p)
{
	int err = match_topology(h, b, v);
	for (size_t i = 0; i < b->n && !err; i++)
		err = pci_func_save(t, v[i]);
	if (err)
		return err;
	for (size_t i = 0; i < b->n; i++)
		copy_in(v[i], b, &b->f[i]);
	for (size_t i = 0; i < b->n && !err; i++)
		err = derive(v[i]);
	return err ? err : reorder(b, v, p);
}

static int restore_parsed(bm_pci_host *h, const struct blob *b)
{
	bm_pci_func **v = calloc(b->n + 1, sizeof(*v));
	struct placing *p = calloc(b->nslots + 1, sizeof(*p));
	if (!v || !p) {
		free(v);
		free(p);
		return -ENOMEM;
	}
	struct pci_txn t;
	int err = pci_txn_begin(h, &t);
	if (!err) {
		t.tables = true;
		err = apply(h, &t, b, v, p);
		/* The latch is no part of the map: it changes last and goes back on failure. */
		uint32_t latch = __atomic_load_n(&h->conf_addr, __ATOMIC_RELAXED);
		if (!err)
			__atomic_store_n(&h->conf_addr, (uint32_t)get(b->p, b->host_state, 4),
			                 __ATOMIC_RELAXED);
		err = pci_txn_end(h, &t, err);
		if (err)
			__atomic_store_n(&h->conf_addr, latch, __ATOMIC_RELAXED);
	}
	free(p);
	free(v);
	return err;
}

int bm_pci_host_restore(bm_pci_host *h, const void *buf, size_t len)
{
	if (!h || !buf)
		return -EINVAL;
	struct blob b = {.p = buf, .len = len};
	int err = parse(&b);
	if (!err)
		err = restore_parsed(h, &b);
	free(b.f);
	return err;
}
