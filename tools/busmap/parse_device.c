/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * "device BB:DD.F [PRESET] [OPTION...]": a preset gives the starting layout and options
 * change it, so "device 00:02.0 virtio-net-legacy bar0 io 128" is a bigger net device.
 */
#include "parser_internal.h"
#include "presets.h"

#include <string.h>

/* 1..4 hexadecimal digits. */
static bool hex16(const char *s, size_t n, uint16_t *out)
{
	unsigned x = 0;
	if (n == 0 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *d = s[i] ? strchr("0123456789abcdef", s[i] | 0x20) : NULL;
		if (!d)
			return false;
		x = x * 16 + (unsigned)(d - "0123456789abcdef");
	}
	*out = (uint16_t)x;
	return true;
}

int p_id_pair(struct parser *p, uint16_t *a, uint16_t *b)
{
	const struct lex_word *w = p_need(p, "VVVV:DDDD (hexadecimal)");
	if (!w)
		return -1;
	const char *c = w->quoted ? NULL : memchr(w->s, ':', w->len);
	size_t k = c ? (size_t)(c - w->s) : 0;
	if (!c || !hex16(w->s, k, a) || !hex16(c + 1, w->len - k - 1, b))
		return p_fail(p, w, "expected VVVV:DDDD (hexadecimal, e.g. 1af4:1000)");
	return 0;
}

static int bar_option(struct parser *p, const struct lex_word *kw, struct scn_device *d)
{
	unsigned i = (unsigned)(kw->s[3] - '0');
	const struct lex_word *w = p_need(p, "io, mem32, mem64 or none");
	if (!w)
		return -1;
	if (lex_is(w, "none")) {
		d->bars[i].type = BM_PCI_BAR_NONE;
		d->bars[i].size = 0;
		return 0;
	}
	if (lex_is(w, "io"))
		d->bars[i].type = BM_PCI_BAR_IO;
	else if (lex_is(w, "mem32"))
		d->bars[i].type = BM_PCI_BAR_MEM32;
	else if (lex_is(w, "mem64"))
		d->bars[i].type = BM_PCI_BAR_MEM64;
	else
		return p_fail(p, w, "expected io, mem32, mem64 or none");
	w = p_need(p, "the BAR size (a power of two: 64, 4K, 1M...)");
	if (!w || p_size(p, w, &d->bars[i].size))
		return -1;
	uint64_t s = d->bars[i].size;
	if (!s || (s & (s - 1)))
		return p_fail(p, w, "a BAR size is a power of two");
	d->bars[i].prefetchable = p_accept(p, "prefetch");
	return 0;
}

static int rom_option(struct parser *p, struct scn_device *d)
{
	if (p_accept(p, "none")) {
		d->rom_size = 0;
		return 0;
	}
	const struct lex_word *w = p_need(p, "the ROM size (a power of two, at least 2K)");
	if (!w || p_size(p, w, &d->rom_size))
		return -1;
	if (d->rom_size < 2048 || (d->rom_size & (d->rom_size - 1)))
		return p_fail(p, w, "a ROM size is a power of two of at least 2K");
	return 0;
}

/* barN+OFFSET inside an MSI-X option. */
static int msix_place(struct parser *p, const char *what, unsigned *bar, uint32_t *off)
{
	const struct lex_word *w = p_need(p, what);
	if (!w)
		return -1;
	const char *plus = w->quoted ? NULL : memchr(w->s, '+', w->len);
	size_t k = plus ? (size_t)(plus - w->s) : w->len;
	struct lex_word head = {.s = w->s, .len = k, .col = w->col};
	if (p_bar_index(p, &head, bar))
		return -1;
	if (*bar == BM_PCI_ROM)
		return p_fail(p, w, "MSI-X structures live in a memory BAR, not the ROM");
	uint64_t o = 0;
	if (plus) {
		struct lex_word tail = {
		    .s = plus + 1, .len = w->len - k - 1, .col = w->col + (unsigned)k + 1};
		if (p_uint(p, &tail, UINT32_MAX, &o))
			return -1;
	}
	*off = (uint32_t)o;
	return 0;
}

static int msix_option(struct parser *p, struct scn_device *d)
{
	if (p_accept(p, "none")) {
		d->msix_vectors = 0;
		return 0;
	}
	uint64_t n;
	const struct lex_word *w = p_need(p, "the number of MSI-X vectors (1..2048)");
	if (!w || p_uint(p, w, 2048, &n))
		return -1;
	if (!n)
		return p_fail(p, w, "at least one vector");
	d->msix_vectors = (unsigned)n;
	return msix_place(p, "the table as barN+OFFSET", &d->msix_table_bar, &d->msix_table_off) ||
	               msix_place(p, "the PBA as barN+OFFSET", &d->msix_pba_bar, &d->msix_pba_off)
	           ? -1
	           : 0;
}

static int number_option(struct parser *p, uint64_t max, uint64_t *v, const char *what)
{
	const struct lex_word *w = p_need(p, what);
	return w ? p_uint(p, w, max, v) : -1;
}

static int pin_option(struct parser *p, struct scn_device *d)
{
	const struct lex_word *w = p_need(p, "A, B, C, D or none");
	if (!w)
		return -1;
	if (lex_is(w, "none")) {
		d->intx_pin = 0;
		return 0;
	}
	if (w->len != 1 || w->s[0] < 'A' || w->s[0] > 'D')
		return p_fail(p, w, "expected A, B, C, D or none");
	d->intx_pin = (uint8_t)(w->s[0] - 'A' + 1);
	return 0;
}

static int misc_option(struct parser *p, const struct lex_word *w, struct scn_device *d)
{
	uint64_t v, v2;
	if (lex_is(w, "class")) {
		if (number_option(p, 0xffffff, &v, "the class code 0xCCSSPP"))
			return -1;
		d->class_code = (uint32_t)v;
	} else if (lex_is(w, "rev")) {
		if (number_option(p, 0xff, &v, "the revision"))
			return -1;
		d->revision = (uint8_t)v;
	} else if (lex_is(w, "msi")) {
		if (number_option(p, 32, &v, "the number of MSI vectors (1, 2, 4, 8, 16, 32)"))
			return -1;
		if (!v || (v & (v - 1)))
			return p_fail(p, &p->l->w[p->i - 1], "1, 2, 4, 8, 16 or 32 vectors");
		d->msi_vectors = (unsigned)v;
	} else if (lex_is(w, "buses")) {
		if (number_option(p, 0xff, &v, "the secondary bus number") ||
		    number_option(p, 0xff, &v2, "the subordinate bus number"))
			return -1;
		d->secondary = (uint8_t)v;
		d->subordinate = (uint8_t)v2;
	} else if (lex_is(w, "name")) {
		const struct lex_word *n = p_need(p, "a name");
		if (!n)
			return -1;
		if (n->len >= sizeof(d->label))
			return p_fail(p, n, "a name of at most %zu bytes", sizeof(d->label) - 1);
		lex_copy(n, d->label, sizeof(d->label));
	} else {
		return 1;
	}
	return 0;
}

static int device_option(struct parser *p, const struct lex_word *w, struct scn_device *d,
                         const struct lex_word **bar_words)
{
	if (!w->quoted && w->len == 4 && memcmp(w->s, "bar", 3) == 0 && w->s[3] >= '0' &&
	    w->s[3] <= '5') {
		bar_words[w->s[3] - '0'] = w;
		return bar_option(p, w, d);
	}
	if (lex_is(w, "rom"))
		return rom_option(p, d);
	if (lex_is(w, "msix"))
		return msix_option(p, d);
	if (lex_is(w, "id"))
		return p_id_pair(p, &d->vendor_id, &d->device_id);
	if (lex_is(w, "subsys"))
		return p_id_pair(p, &d->subsys_vendor, &d->subsys_id);
	if (lex_is(w, "pin"))
		return pin_option(p, d);
	if (lex_is(w, "bridge")) {
		d->bridge = true;
		return 0;
	}
	if (lex_is(w, "pcie")) {
		d->pcie = true;
		return 0;
	}
	int r = misc_option(p, w, d);
	if (r <= 0)
		return r;
	return p_fail(p, w,
	              "unknown device option or preset \"%.*s\" (see busmap-scenario(5); "
	              "\"busmap presets\" lists the presets)",
	              w->len > 40 ? 40 : (int)w->len, w->s);
}

/* What bm_pci_func_new would refuse, said at the statement rather than when it runs: at the
 * BAR's option when the scenario gave one, else at the device's address. */
static int check_device(struct parser *p, const struct scn_device *d, const struct lex_word *at,
                        const struct lex_word *const *bar_words)
{
	unsigned nbars = d->bridge ? 2 : BM_PCI_NUM_BARS;
	for (unsigned i = 0; i < BM_PCI_NUM_BARS; i++) {
		uint64_t s = d->bars[i].size;
		switch (d->bars[i].type) {
		case BM_PCI_BAR_NONE:
			continue;
		case BM_PCI_BAR_IO:
			if (s < 4 || s > (1ull << 31) || d->bars[i].prefetchable)
				return p_fail(
				    p, bar_words[i] ? bar_words[i] : at,
				    "bar%u: an I/O BAR is 4 bytes..2G and not prefetchable", i);
			break;
		case BM_PCI_BAR_MEM32:
			if (s < 16 || s > (1ull << 31))
				return p_fail(p, bar_words[i] ? bar_words[i] : at,
				              "bar%u: a 32-bit BAR is 16 bytes..2G", i);
			break;
		case BM_PCI_BAR_MEM64:
			if (s < 16 || s > (1ull << 63) || i + 1 >= nbars ||
			    d->bars[i + 1].type != BM_PCI_BAR_NONE)
				return p_fail(
				    p, bar_words[i] ? bar_words[i] : at,
				    "bar%u: a 64-bit BAR is 16 bytes..2^63 and takes the next "
				    "BAR register too",
				    i);
			break;
		}
		if (i >= nbars)
			return p_fail(p, bar_words[i] ? bar_words[i] : at,
			              "a bridge has bar0 and bar1 only");
	}
	if (d->rom_size && d->rom_size > (1ull << 31))
		return p_fail(p, at, "a ROM is at most 2G");
	if (d->vendor_id == 0xffff || d->vendor_id == 0)
		return p_fail(p, at, "the device needs a vendor ID: a preset or \"id VVVV:DDDD\"");
	return 0;
}

int parse_device(struct parser *p, struct scn_stmt *st)
{
	struct scn_device *d = &st->u.device;
	*d = (struct scn_device){0};
	const struct lex_word *w = p_need(p, "a PCI address BB:DD.F"), *at = w;
	const struct lex_word *bar_words[BM_PCI_NUM_BARS] = {0};
	if (!w || p_bdf(p, w, &d->bdf))
		return -1;
	if (p_device(p, d->bdf))
		return p_fail(p, w, "a device was already declared at this address");
	if (p->s->ndevices >= SCN_MAX_DEVICES)
		return p_fail(p, w, "more than %d devices", SCN_MAX_DEVICES);
	if (d->bdf.bus == 0 && d->bdf.dev == 0 && d->bdf.fn == 0 && !p->host.no_host_bridge)
		return p_fail(p, w,
		              "00:00.0 is the host bridge (say no-host-bridge in the host "
		              "statement to use it)");
	w = p_peek(p);
	if (w && !w->quoted && preset_apply(w->s, w->len, d) == 0)
		p->i++;
	while ((w = p_next(p)))
		if (device_option(p, w, d, bar_words))
			return -1;
	return check_device(p, d, at, bar_words);
}
