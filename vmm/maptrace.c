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

static void on_conflict(void *arg, bm_space *space, const struct bm_conflict *c, bool added)
{
	FILE *out = arg;
	fprintf(out, "        %s %s %s %s over %s 0x%" PRIx64 "-0x%" PRIx64 "\n",
	        added ? "overlap" : "overlap-end", bm_region_name(c->winner),
	        added ? "hides" : "no longer hides", bm_region_name(c->loser),
	        space == NULL ? "?" : (bm_space_name(space)[0] == 'I' ? "io " : "mem"), c->start,
	        c->last);
	fflush(out);
}

static const struct bm_conflict_ops conflict_ops = {.on_change = on_conflict};

int maptrace_start(struct vm *vm, FILE *out)
{
	int err = bm_pci_host_set_map_observer(vm->pci, on_map, out);
	if (!err)
		err = bm_space_set_conflict_ops(vm->mem, &conflict_ops, out);
	if (!err)
		err = bm_space_set_conflict_ops(vm->io, &conflict_ops, out);
	return err;
}

void maptrace_stop(struct vm *vm)
{
	bm_pci_host_set_map_observer(vm->pci, NULL, NULL);
	bm_space_set_conflict_ops(vm->mem, NULL, NULL);
	bm_space_set_conflict_ops(vm->io, NULL, NULL);
}
