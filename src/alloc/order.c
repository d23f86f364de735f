/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The order items are placed in. Best fit takes the most aligned first, then the largest,
 * so alignment leaves as few holes as possible. bhyve sorts a bus's BARs by size alone and
 * keeps the order of equal sizes (its list inserts before the first smaller BAR); before
 * that, it placed them as each device was created. Every order ends on the walk's own
 * order: function depth first, BARs by index, then the ROM, then bridge windows.
 */
#include "alloc_internal.h"
#include <stdlib.h>

struct key {
	uint64_t first, second; /* larger first */
	uint64_t seq;           /* smaller first */
	size_t idx;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->first != y->first)
		return x->first > y->first ? -1 : 1;
	if (x->second != y->second)
		return x->second > y->second ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static struct key key_of(const struct bm_pci_alloc_plan *p, size_t idx)
{
	const struct item *it = &p->items[idx];
	unsigned sub = it->what == BM_PCI_ALLOC_BAR ? it->index : BM_PCI_ROM + 1 + it->index;
	struct key k = {.seq = (uint64_t)it->func * 16 + sub, .idx = idx};
	switch (p->cfg.mode) {
	case BM_PCI_ALLOC_BEST_FIT:
		k.first = it->align;
		k.second = it->size;
		break;
	case BM_PCI_ALLOC_BHYVE:
		k.first = it->size;
		break;
	default:
		break;
	}
	return k;
}

int alloc_sort(const struct bm_pci_alloc_plan *p, size_t *idx, size_t n)
{
	struct key stack[64];
	struct key *keys = n <= 64 ? stack : malloc(n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		keys[i] = key_of(p, idx[i]);
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++)
		idx[i] = keys[i].idx;
	if (keys != stack)
		free(keys);
	return 0;
}
