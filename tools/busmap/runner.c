/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The scenario runner: one libbusmap system with a PCI host, one vCPU context on this
 * thread, and the statements carried out in order.
 */
#include "runner_internal.h"
#include <busmap/pci_regs.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define X86_HOST_VENDOR 0x8086 /* i440FX, as QEMU's "pc" machine */
#define X86_HOST_DEVICE 0x1237
#define X86_HOST_REV    0x02
#define ARM_HOST_VENDOR 0x1b36 /* QEMU's generic PCIe host */
#define ARM_HOST_DEVICE 0x0008

int run_error(struct runner *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(r->o.err, "%s:%u:%u: error: ", r->s->file, r->cur ? r->cur->line : 0,
	        r->cur ? r->cur->col : 0);
	vfprintf(r->o.err, fmt, ap);
	fputc('\n', r->o.err);
	va_end(ap);
	r->res->error = true;
	return -1;
}

void run_fail(struct runner *r, const char *expected, const char *actual)
{
	r->res->failures++;
	fprintf(r->o.err, "%s:%u: expectation failed: %s\n  expected: %s\n  actual:   %s\n",
	        r->s->file, r->cur ? r->cur->line : 0, r->cur ? r->cur->src : "", expected, actual);
}

const struct world *runner_world(struct runner *r)
{
	return &r->w;
}

struct run_device *run_device_at(struct runner *r, struct scn_bdf bdf)
{
	for (size_t i = 0; i < r->ndevs; i++) {
		const struct scn_bdf *b = &r->devs[i].decl->bdf;
		if (b->bus == bdf.bus && b->dev == bdf.dev && b->fn == bdf.fn)
			return &r->devs[i];
	}
	return NULL;
}

bm_pci_func *runner_func(struct runner *r, struct scn_bdf bdf)
{
	struct run_device *d = run_device_at(r, bdf);
	return d ? d->func : NULL;
}

uint64_t runner_bar_order(struct runner *r, const bm_pci_func *f, unsigned bar)
{
	(void)r;
	const struct run_device *d = bm_pci_func_opaque(f);
	return d && bar <= BM_PCI_ROM ? d->order[bar] : 0;
}

static const char *func_label(void *arg, const bm_pci_func *f)
{
	(void)arg;
	const struct run_device *d = bm_pci_func_opaque(f);
	return d ? d->decl->label : NULL;
}

/* ---- map events ---- */

static void on_map(void *arg, const struct bm_pci_map_event *ev)
{
	struct runner *r = arg;
	struct run_device *d = bm_pci_func_opaque(ev->func);
	if (d && ev->mapped && ev->bar <= BM_PCI_ROM)
		d->order[ev->bar] = ++r->stamp;
	r->step_events++;
	char name[32];
	if (ev->bar == BM_PCI_ROM)
		snprintf(name, sizeof(name), "%s/rom", bm_pci_func_name(ev->func));
	else
		snprintf(name, sizeof(name), "%s/bar%u", bm_pci_func_name(ev->func), ev->bar);
	if (r->o.verbose)
		fprintf(r->o.out, "        %s %s %s 0x%" PRIx64 "+0x%" PRIx64 "\n",
		        ev->mapped ? "map  " : "unmap", name, ev->io ? "io " : "mem", ev->addr,
		        ev->size);
	if (r->o.hooks.map_event)
		r->o.hooks.map_event(r->o.hooks.arg, r, ev, name);
}

/* ---- host ---- */

static void host_config(const struct scn_host *h, bm_space *mem, bm_space *io,
                        struct bm_pci_host_config *c)
{
	bool x86 = h->arch == SCN_X86;
	*c = (struct bm_pci_host_config){
	    .mem = mem,
	    .io = io,
	    .io_window_base = h->io_window ? h->io_window_base : 0,
	    .io_window_size = h->io_window ? h->io_window_size : 0,
	    .io_limit = h->io_limit ? h->io_limit
	                : x86       ? BM_PCI_IO_LIMIT_X86
	                            : BM_PCI_IO_LIMIT_QEMU,
	    .decode_zero = h->decode_zero >= 0 ? h->decode_zero : !x86,
	    .cf8 = x86,
	    .ecam = h->ecam,
	    .ecam_base = h->ecam_base,
	    .ecam_bus_count = (uint16_t)h->ecam_buses,
	    .no_host_bridge = h->no_host_bridge,
	    .host_vendor_id = h->hb_vendor ? h->hb_vendor
	                      : x86        ? X86_HOST_VENDOR
	                                   : ARM_HOST_VENDOR,
	    .host_device_id = h->hb_device ? h->hb_device
	                      : x86        ? X86_HOST_DEVICE
	                                   : ARM_HOST_DEVICE,
	    .host_revision = x86 ? X86_HOST_REV : 0,
	};
}

static int run_host(struct runner *r, const struct scn_host *h)
{
	r->hostdecl = *h;
	bool x86 = h->arch == SCN_X86;
	int err = bm_space_new(r->sys, "memory", "system", &r->mem);
	if (!err && x86)
		err = bm_space_new(r->sys, "I/O", "io", &r->io);
	if (err)
		return run_error(r, "cannot create the address spaces: %s", strerror(-err));
	struct bm_pci_host_config c;
	host_config(h, r->mem, r->io, &c);
	err = bm_pci_host_new(r->sys, &c, &r->host);
	if (err)
		return run_error(r, "the PCI layer refused this host: %s", strerror(-err));
	bm_pci_host_set_map_observer(r->host, on_map, r);
	r->w = (struct world){
	    .host = r->host,
	    .mem = r->mem,
	    .io = r->io,
	    .io_in_mem = !x86 && h->io_window,
	    .io_base = h->io_window_base,
	    .io_size = x86 ? 0x10000 : h->io_window_size,
	    .label = func_label,
	    .label_arg = r,
	};
	return 0;
}

/* ---- placement and allocation ---- */

static int write_cfg(struct runner *r, bm_pci_func *f, unsigned reg, unsigned size, uint32_t v)
{
	int err = bm_pci_func_cfg_write(f, reg, size, v);
	return err ? run_error(r, "configuration write refused: %s", strerror(-err)) : 0;
}

static int run_place(struct runner *r, struct scn_bdf bdf, unsigned bar, uint64_t addr)
{
	struct run_device *d = run_device_at(r, bdf);
	struct bm_pci_bar_info info;
	if (!d || bm_pci_bar_info(d->func, bar, &info))
		return run_error(r, "no such BAR");
	if (addr & (info.size - 1))
		return run_error(r, "0x%" PRIx64 " is not aligned to the BAR's size 0x%" PRIx64,
		                 addr, info.size);
	bool wide = bar != BM_PCI_ROM && info.type == BM_PCI_BAR_MEM64;
	if (!wide && addr > UINT32_MAX)
		return run_error(r, "a 32-bit BAR cannot hold 0x%" PRIx64, addr);
	unsigned reg = bar == BM_PCI_ROM
	                   ? (bm_pci_func_is_bridge(d->func) ? PCI_ROM_ADDRESS1 : PCI_ROM_ADDRESS)
	                   : PCI_BASE_ADDRESS(bar);
	uint32_t low = (uint32_t)addr | (bar == BM_PCI_ROM ? PCI_ROM_ADDRESS_ENABLE : 0u);
	if (write_cfg(r, d->func, reg, 4, low))
		return -1;
	if (wide && write_cfg(r, d->func, reg + 4, 4, (uint32_t)(addr >> 32)))
		return -1;
	uint32_t cmd = 0;
	bm_pci_func_cfg_read(d->func, PCI_COMMAND, 2, &cmd);
	return write_cfg(r, d->func, PCI_COMMAND, 2,
	                 cmd | (info.io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY));
}

static void alloc_window(const struct scn_window *s, struct bm_pci_alloc_window *w)
{
	if (s->set)
		*w = (struct bm_pci_alloc_window){s->base, s->limit};
}

static int alloc_failure(struct runner *r, const struct bm_pci_alloc_failure *f)
{
	static const char *const windows[] = {"I/O", "memory", "prefetchable"};
	if (!f->func)
		return run_error(r, "allocate: something did not fit in its window");
	const char *name = bm_pci_func_name(f->func);
	switch (f->what) {
	case BM_PCI_ALLOC_BAR:
		if (f->index == BM_PCI_ROM)
			return run_error(r, "allocate: %s/rom (0x%" PRIx64 " bytes) does not fit",
			                 name, f->size);
		return run_error(r, "allocate: %s/bar%u (0x%" PRIx64 " bytes) does not fit", name,
		                 f->index, f->size);
	case BM_PCI_ALLOC_WINDOW:
		return run_error(
		    r, "allocate: the %s window of bridge %s (0x%" PRIx64 " bytes) does not fit",
		    f->index < 3 ? windows[f->index] : "?", name, f->size);
	case BM_PCI_ALLOC_BUSES:
		break;
	}
	return run_error(r, "allocate: no bus number left for bridge %s", name);
}

static int run_allocate(struct runner *r, const struct scn_alloc *a)
{
	struct bm_pci_alloc_config c = {
	    .mode = a->mode,
	    .assign_buses = a->assign_buses,
	    .bus_master = a->bus_master,
	    .rom_enable = a->rom_enable,
	};
	alloc_window(&a->io, &c.io);
	alloc_window(&a->mem32, &c.mem32);
	alloc_window(&a->pref32, &c.pref32);
	alloc_window(&a->mem64, &c.mem64);
	struct bm_pci_alloc_failure fail = {0};
	int err = bm_pci_alloc_run(r->host, &c, &fail);
	if (err == -ENOSPC)
		return alloc_failure(r, &fail);
	if (err == -EINVAL)
		return run_error(r, "allocate: the windows were refused (they overlap, are empty, "
		                    "or a 32-bit window passes 4G)");
	if (err)
		return run_error(r, "allocate failed: %s", strerror(-err));
	return 0;
}

/* ---- steps ---- */

static int end_step(struct runner *r)
{
	if (!r->step_open)
		return 0;
	r->step_open = false;
	bool setup = r->use_steps && r->step_index == 0 && r->step_label &&
	             strcmp(r->step_label, "setup") == 0 && r->step_events == 0;
	if (setup)
		return 0;
	struct run_step_info info = {r->res->steps, r->step_line, r->step_label, r->step_events};
	r->res->steps++;
	if (r->o.history &&
	    history_record(r->o.history, &r->w, r->step_line, r->step_label) == -ENOMEM)
		return run_error(r, "out of memory");
	if (r->o.verbose && r->o.map != MAP_NONE &&
	    map_print(r->o.out, &r->w, r->o.map, info.index, info.line, info.label))
		return run_error(r, "cannot print the map");
	if (r->o.hooks.step_end && r->o.hooks.step_end(r->o.hooks.arg, r, &info))
		r->res->failures++;
	return 0;
}

static void begin_step(struct runner *r, unsigned line, const char *label)
{
	r->step_open = true;
	r->step_index = r->res->steps;
	r->step_line = line;
	r->step_label = label;
	r->step_events = 0;
	if (r->o.verbose && r->use_steps)
		fprintf(r->o.out, "== step %zu: %s (line %u)\n", r->step_index, label, line);
}

static bool is_action(enum scn_kind k)
{
	return k == SCN_PLACE || k == SCN_ALLOCATE || k == SCN_ACCESS;
}

/* ---- statements ---- */

static int run_statement(struct runner *r, const struct scn_stmt *st)
{
	switch (st->kind) {
	case SCN_HOST:
		return run_host(r, &st->u.host);
	case SCN_DEVICE:
		return run_device_new(r, &st->u.device);
	case SCN_PLACE:
		return run_place(r, st->u.place.bdf, st->u.place.bar, st->u.place.addr);
	case SCN_ALLOCATE:
		return run_allocate(r, &st->u.alloc);
	case SCN_ACCESS:
		return run_access(r, &st->u.access);
	case SCN_EXPECT:
		return run_expect(r, &st->u.expect);
	case SCN_NOTE:
		/* Quiet runs keep standard output for the map. */
		if (r->o.verbose)
			fprintf(r->o.out, "%s\n", st->text);
		return 0;
	case SCN_STEP:
		return 0;
	}
	return 0;
}

static int step_statement(struct runner *r, const struct scn_stmt *st)
{
	if (st->kind == SCN_STEP) {
		if (end_step(r))
			return -1;
		begin_step(r, st->line, st->text);
		return 0;
	}
	bool own = !r->use_steps && is_action(st->kind);
	if (own)
		begin_step(r, st->line, st->src);
	if (r->o.verbose && st->kind != SCN_NOTE)
		fprintf(r->o.out, "  %4u: %s\n", st->line, st->src);
	if (run_statement(r, st))
		return -1;
	return own ? end_step(r) : 0;
}

static int run_all(struct runner *r)
{
	for (size_t i = 0; i < r->s->n; i++)
		r->use_steps |= r->s->v[i].kind == SCN_STEP;
	if (r->use_steps) {
		r->step_open = true;
		r->step_line = 1;
		r->step_label = "setup";
	}
	for (size_t i = 0; i < r->s->n; i++) {
		r->cur = &r->s->v[i];
		if (step_statement(r, r->cur))
			return -1;
	}
	r->cur = NULL;
	if (end_step(r))
		return -1;
	/* A run that never stepped still has devices to show. */
	if (r->o.history && !r->res->steps && r->host &&
	    history_record(r->o.history, &r->w, 0, "end") == -ENOMEM)
		return run_error(r, "out of memory");
	return 0;
}

static void teardown(struct runner *r)
{
	if (r->vcpu)
		bm_vcpu_free(r->vcpu);
	if (r->host) {
		/* Unplugging at the end is not part of the scenario. */
		bm_pci_host_set_map_observer(r->host, NULL, NULL);
		bm_pci_host_free(r->host);
	}
	for (size_t i = 0; i < r->ndevs; i++)
		for (unsigned b = 0; b <= BM_PCI_ROM; b++)
			free(r->devs[i].bars[b].mem);
	free(r->devs);
	if (r->sys)
		bm_system_free(r->sys);
}

int runner_run(const struct scn_script *s, const struct run_options *o, struct run_result *res)
{
	*res = (struct run_result){0};
	struct runner r = {.s = s, .o = *o, .res = res};
	if (!r.o.out)
		r.o.out = stdout;
	if (!r.o.err)
		r.o.err = stderr;
	r.devs = calloc(s->ndevices ? s->ndevices : 1, sizeof(*r.devs));
	int err = r.devs ? bm_system_new(&r.sys) : -ENOMEM;
	if (!err)
		err = bm_vcpu_new(r.sys, 0, NULL, &r.vcpu);
	if (err) {
		teardown(&r);
		return err == -ENOMEM ? -ENOMEM : run_error(&r, "cannot start: %s", strerror(-err));
	}
	if (run_all(&r) == 0 && !r.o.verbose && r.o.map != MAP_NONE && r.host &&
	    map_print(r.o.out, &r.w, r.o.map, res->steps, 0, NULL))
		run_error(&r, "cannot print the map");
	teardown(&r);
	return 0;
}

/* ---- probes ---- */

int runner_probe(struct runner *r, const struct world_bar *bars, size_t n, bool io, uint64_t addr,
                 struct probe *p)
{
	*p = (struct probe){.bar = -1, .consistent = true};
	struct world_hit h;
	int err = world_lookup(&r->w, io, addr, bars, n, &h);
	if (err)
		return err;
	uint64_t a = addr, v = 0;
	bm_space *space = world_space(&r->w, io, &a);
	r->hit.valid = false;
	bm_access_result ret = bm_read(r->vcpu, space, a, 1, &v);
	bool dispatched_none = !bm_failed(ret) && (ret & BM_ACCESS_UNASSIGNED);
	p->conflict = h.conflict;
	if (!h.assigned) {
		p->consistent = dispatched_none;
		return 0;
	}
	p->consistent = !dispatched_none;
	if (h.bar < 0) {
		p->kind = PROBE_REGION;
		p->region = bm_region_name(h.region);
		return 0;
	}
	p->kind = PROBE_BAR;
	p->bar = h.bar;
	p->offset = h.bar_offset;
	/* Where the device model answered, it must be the BAR and offset the view shows. */
	if (r->hit.valid)
		p->consistent = r->hit.bar->dev->func == bars[h.bar].func &&
		                r->hit.bar->index == bars[h.bar].index &&
		                r->hit.offset == h.bar_offset;
	return 0;
}
