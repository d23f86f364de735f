/* SPDX-License-Identifier: BSD-2-Clause */
/* --trace-map (see maptrace.h). */
#include "maptrace.h"

#include <inttypes.h>

static void on_map(void *arg, const struct bm_pci_map_event *ev)
{
	FILE *out = arg;
	char bar[8];
	if (ev->bar == BM_PCI_ROM)
		snprintf(bar, sizeof(bar), "rom");
	else
		snprintf(bar, sizeof(bar), "bar%u", ev->bar);
	fprintf(out, "        %-5s %s/%s %s 0x%" PRIx64 "+0x%" PRIx64 "\n",
	        ev->mapped ? "map" : "unmap", bm_pci_func_name(ev->func), bar,
	        ev->io ? "io " : "mem", ev->addr, ev->size);
	fflush(out);
}

static void print_conflict(FILE *out, const char *space, const struct bm_conflict *c, bool added)
{
	fprintf(out, "        %s %s %s %s over %s 0x%" PRIx64 "-0x%" PRIx64 "\n",
	        added ? "overlap" : "overlap-end", bm_region_name(c->winner),
	        added ? "hides" : "no longer hides", bm_region_name(c->loser), space, c->start,
	        c->last);
	fflush(out);
}

/* One callback per space, so that each line names its space as busmap replay does. */
static void on_mem_conflict(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	(void)space;
	print_conflict(arg, "mem", c, added);
}

static void on_io_conflict(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	(void)space;
	print_conflict(arg, "io ", c, added);
}

static const struct bm_conflict_ops mem_conflict_ops = {.on_change = on_mem_conflict};
static const struct bm_conflict_ops io_conflict_ops = {.on_change = on_io_conflict};

int maptrace_start(struct vm *vm, FILE *out)
{
	int err = bm_pci_host_set_map_observer(vm->pci, on_map, out);
	if (!err)
		err = bm_space_set_conflict_ops(vm->mem, &mem_conflict_ops, out);
	if (!err)
		err = bm_space_set_conflict_ops(vm->io, &io_conflict_ops, out);
	return err;
}

void maptrace_stop(struct vm *vm)
{
	bm_pci_host_set_map_observer(vm->pci, NULL, NULL);
	bm_space_set_conflict_ops(vm->mem, NULL, NULL);
	bm_space_set_conflict_ops(vm->io, NULL, NULL);
}
