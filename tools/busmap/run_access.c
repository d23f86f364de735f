/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Devices and guest accesses: creating functions from their declarations, the BARs' small
 * device model, and configuration, memory and port accesses by every route a guest has.
 */
#include "runner_internal.h"
#include <busmap/pci_regs.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- the BARs' device model ---- */

static uint8_t model_byte(const struct bar_model *b, uint64_t off)
{
	return b->mem && off < BAR_MODEL_BYTES && off < b->size ? b->mem[off] : 0;
}

static int model_read(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t *value)
{
	(void)vcpu;
	struct bar_model *b = opaque;
	b->r->hit.valid = true;
	b->r->hit.bar = b;
	b->r->hit.offset = off;
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)model_byte(b, off + i) << (8 * i);
	*value = v;
	return 0;
}

static int model_write(void *opaque, bm_vcpu *vcpu, uint64_t off, unsigned size, uint64_t value)
{
	(void)vcpu;
	struct bar_model *b = opaque;
	b->r->hit.valid = true;
	b->r->hit.bar = b;
	b->r->hit.offset = off;
	if (off >= BAR_MODEL_BYTES)
		return 0;
	if (!b->mem) {
		size_t len = b->size < BAR_MODEL_BYTES ? (size_t)b->size : BAR_MODEL_BYTES;
		b->mem = calloc(1, len);
		if (!b->mem)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < size && off + i < BAR_MODEL_BYTES && off + i < b->size; i++)
		b->mem[off + i] = (uint8_t)(value >> (8 * i));
	return 0;
}

static const struct bm_region_ops model_ops = {
    .read = model_read,
    .write = model_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_ALL,
};

const struct bm_region_ops *bar_model_ops(void)
{
	return &model_ops;
}

/* ---- devices ---- */

static bm_pci_bus *bus_for(struct runner *r, unsigned number)
{
	if (number == 0)
		return bm_pci_host_root_bus(r->host);
	for (bm_pci_func *f = bm_pci_func_next(r->host, NULL); f;
	     f = bm_pci_func_next(r->host, f)) {
		bm_pci_bus *b = bm_pci_func_secondary_bus(f);
		if (b && bm_pci_bus_number(b) == number)
			return b;
	}
	return NULL;
}

static void fill_desc(struct run_device *d, struct bm_pci_func_desc *desc)
{
	const struct scn_device *s = d->decl;
	*desc = (struct bm_pci_func_desc){
	    .vendor_id = s->vendor_id,
	    .device_id = s->device_id,
	    .class_code = s->class_code,
	    .revision = s->revision,
	    .subsystem_vendor_id = s->subsys_vendor,
	    .subsystem_id = s->subsys_id,
	    .header = s->bridge ? BM_PCI_HEADER_BRIDGE : BM_PCI_HEADER_ENDPOINT,
	    .extended = s->pcie,
	    .intx_pin = s->intx_pin,
	    .secondary_bus = s->secondary,
	    .subordinate_bus = s->subordinate,
	    .bridge_pref64 = true,
	    .opaque = d,
	};
	for (unsigned i = 0; i < BM_PCI_NUM_BARS; i++) {
		if (s->bars[i].type == BM_PCI_BAR_NONE)
			continue;
		desc->bars[i] = (struct bm_pci_bar_desc){
		    .type = s->bars[i].type,
		    .size = s->bars[i].size,
		    .prefetchable = s->bars[i].prefetchable,
		    .ops = &model_ops,
		    .opaque = &d->bars[i],
		};
	}
	if (s->rom_size)
		desc->rom = (struct bm_pci_bar_desc){
		    .size = s->rom_size, .ops = &model_ops, .opaque = &d->bars[BM_PCI_ROM]};
}

static int add_capabilities(struct runner *r, struct run_device *d)
{
	const struct scn_device *s = d->decl;
	int err = 0;
	if (s->pcie)
		err = bm_pci_func_add_pcie(d->func,
		                           s->bridge ? BM_PCIE_ROOT_PORT : BM_PCIE_ENDPOINT, NULL);
	if (err)
		return run_error(r, "the PCI Express capability was refused: %s", strerror(-err));
	if (s->msi_vectors)
		err = bm_pci_func_add_msi(d->func, s->msi_vectors, true, true, NULL);
	if (err)
		return run_error(r, "MSI was refused: %s", strerror(-err));
	if (s->msix_vectors)
		err =
		    bm_pci_func_add_msix(d->func, s->msix_vectors, s->msix_table_bar,
		                         s->msix_table_off, s->msix_pba_bar, s->msix_pba_off, NULL);
	if (err)
		return run_error(r,
		                 "MSI-X was refused (table and PBA must be 8-byte aligned and "
		                 "lie inside memory BARs): %s",
		                 strerror(-err));
	return 0;
}

int run_device_new(struct runner *r, const struct scn_device *s)
{
	if (!r->host || r->ndevs >= r->s->ndevices)
		return run_error(r, "no host to plug the device into");
	bm_pci_bus *bus = bus_for(r, s->bdf.bus);
	if (!bus)
		return run_error(r,
		                 "no bridge has secondary bus %02x (declare the bridge first, with "
		                 "\"buses SECONDARY SUBORDINATE\")",
		                 s->bdf.bus);
	struct run_device *d = &r->devs[r->ndevs];
	*d = (struct run_device){.decl = s};
	for (unsigned i = 0; i <= BM_PCI_ROM; i++) {
		uint64_t size = i == BM_PCI_ROM ? s->rom_size : s->bars[i].size;
		d->bars[i] = (struct bar_model){.r = r, .dev = d, .index = i, .size = size};
	}
	struct bm_pci_func_desc desc;
	fill_desc(d, &desc);
	int err = bm_pci_func_new(bus, s->bdf.dev, s->bdf.fn, &desc, &d->func);
	if (err == -EEXIST)
		return run_error(r, "%02x.%x on that bus is taken", s->bdf.dev, s->bdf.fn);
	if (err)
		return run_error(r, "the PCI layer refused the device: %s", strerror(-err));
	r->ndevs++;
	return add_capabilities(r, d);
}

/* ---- accesses ---- */

static const char *flags_text(int ret)
{
	if (ret < 0)
		return "refused";
	if ((ret & BM_ACCESS_UNASSIGNED) && (ret & BM_ACCESS_CONFLICT))
		return "partly unassigned, in an overlap";
	if (ret & BM_ACCESS_UNASSIGNED)
		return "unassigned";
	if (ret & BM_ACCESS_CONFLICT)
		return "in an overlap of BARs";
	return NULL;
}

/* Says, in verbose mode, where a guest access went. */
static void report_target(struct runner *r, bool io, uint64_t addr, int ret)
{
	if (!r->o.verbose)
		return;
	const char *flags = flags_text(ret);
	char where[64] = "";
	if (r->hit.valid) {
		struct bar_model *b = r->hit.bar;
		const char *fn = bm_pci_func_name(b->dev->func);
		if (b->index == BM_PCI_ROM)
			snprintf(where, sizeof(where), "%s/rom+0x%" PRIx64, fn, r->hit.offset);
		else
			snprintf(where, sizeof(where), "%s/bar%u+0x%" PRIx64, fn, b->index,
			         r->hit.offset);
	} else if (ret >= 0 && !(ret & BM_ACCESS_UNASSIGNED)) {
		struct world_hit h;
		world_lookup(&r->w, io, addr, NULL, 0, &h);
		snprintf(where, sizeof(where), "%s", h.assigned ? bm_region_name(h.region) : "?");
	}
	if (where[0] || flags)
		fprintf(r->o.out, "        reached %s%s%s%s\n", where[0] ? where : "nothing",
		        flags ? " (" : "", flags ? flags : "", flags ? ")" : "");
	if (ret < 0)
		fprintf(r->o.out, "        error: %s\n", strerror(-ret));
}

static int check_read(struct runner *r, const struct scn_access *a, uint64_t v)
{
	if (r->o.verbose)
		fprintf(r->o.out, "        read 0x%0*" PRIx64 "\n", 2 * (int)a->width, v);
	if (!a->check)
		return 0;
	r->res->expectations++;
	if (v != a->value) {
		char e[32], g[32];
		snprintf(e, sizeof(e), "0x%0*" PRIx64, 2 * (int)a->width, a->value);
		snprintf(g, sizeof(g), "0x%0*" PRIx64, 2 * (int)a->width, v);
		run_fail(r, e, g);
	}
	return 0;
}

/* quiet: a configuration route, where "reached pci-ecam" would be noise. */
static int guest_access(struct runner *r, bool io, uint64_t addr, unsigned width, bool write,
                        uint64_t *v, bool quiet)
{
	uint64_t a = addr;
	bm_space *s = world_space(&r->w, io, &a);
	if (!s)
		return run_error(r, "the host has no port space");
	r->hit.valid = false;
	bm_access_result ret =
	    write ? bm_write(r->vcpu, s, a, width, *v) : bm_read(r->vcpu, s, a, width, v);
	if (ret == -ENOMEM)
		return run_error(r, "out of memory");
	if (!bm_failed(ret) && (ret & BM_ACCESS_CONFLICT)) {
		r->res->overlap_accesses++;
		if (r->o.history &&
		    history_access(r->o.history, &r->w, r->cur->line, io, write, addr, width))
			return run_error(r, "out of memory");
	}
	if (!quiet || ret != 0)
		report_target(r, io, addr, ret);
	return 0;
}

static uint32_t cf8_address(const struct scn_access *a)
{
	return PCI_CONFIG_ADDRESS(a->bdf.bus, a->bdf.dev, a->bdf.fn, a->reg);
}

static uint64_t ecam_address(const struct runner *r, const struct scn_access *a)
{
	return r->hostdecl.ecam_base + PCI_ECAM_OFFSET(a->bdf.bus, a->bdf.dev, a->bdf.fn, a->reg);
}

static int config_access(struct runner *r, const struct scn_access *a, uint64_t *v)
{
	uint32_t x = (uint32_t)*v;
	int err =
	    a->write
	        ? bm_pci_cfg_write(r->host, a->bdf.bus, a->bdf.dev, a->bdf.fn, a->reg, a->width, x)
	        : bm_pci_cfg_read(r->host, a->bdf.bus, a->bdf.dev, a->bdf.fn, a->reg, a->width, &x);
	if (err == -ENODEV) {
		if (r->o.verbose)
			fputs("        no function answers there\n", r->o.out);
		x = (uint32_t)(a->width == 4 ? UINT32_MAX : (1u << (8 * a->width)) - 1);
	} else if (err) {
		return run_error(r, "configuration access failed: %s", strerror(-err));
	}
	*v = x;
	return 0;
}

int run_access(struct runner *r, const struct scn_access *a)
{
	if (!r->host)
		return run_error(r, "no host");
	uint64_t v = a->write ? a->value : 0;
	int err = 0;
	switch (a->via) {
	case SCN_VIA_CFG:
		err = config_access(r, a, &v);
		break;
	case SCN_VIA_CF8: {
		uint64_t addr = cf8_address(a);
		err = guest_access(r, true, PCI_CONFIG_ADDRESS_PORT, 4, true, &addr, true);
		if (!err)
			err = guest_access(r, true, PCI_CONFIG_DATA_PORT + (a->reg & 3), a->width,
			                   a->write, &v, true);
		break;
	}
	case SCN_VIA_ECAM:
		err = guest_access(r, false, ecam_address(r, a), a->width, a->write, &v, true);
		break;
	case SCN_VIA_MMIO:
		err = guest_access(r, false, a->addr, a->width, a->write, &v, false);
		break;
	case SCN_VIA_IO:
		err = guest_access(r, true, a->addr, a->width, a->write, &v, false);
		break;
	}
	if (err)
		return err;
	return a->write ? 0 : check_read(r, a, v);
}
