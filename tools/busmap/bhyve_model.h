/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A model of bhyve's MMIO registry (usr.sbin/bhyve/mem.c), to show side by side what a
 * registry that refuses overlaps and works by address does with the same BAR moves:
 * - register: if some range already holds the new base, it "succeeds" without inserting
 *   anything (the new range is lost); if the new range overlaps another one further up,
 *   it fails with EEXIST;
 * - unregister: finds the range holding the base address; none is ENOENT; one of another
 *   device or of another size is an assertion failure;
 * - bhyve's PCI layer asserts that every register and unregister returns 0, so any error
 *   aborts the VM; after that nothing happens any more.
 */
#ifndef BUSMAP_CMD_BHYVE_MODEL_H
#define BUSMAP_CMD_BHYVE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bhyve_outcome {
	BHYVE_OK,           /* done as asked */
	BHYVE_NOT_INSERTED, /* returned 0 but the range was not inserted */
	BHYVE_EEXIST,       /* register: overlaps another range; the VM aborts */
	BHYVE_ENOENT,       /* unregister: nothing at that base; the VM aborts */
	BHYVE_MISMATCH,     /* unregister: found another device's range; the VM aborts */
	BHYVE_DEAD,         /* the VM had already aborted */
};

struct bhyve_range {
	char owner[24]; /* the device: bhyve keeps one name per device */
	char name[24];  /* the BAR, for display */
	uint64_t base, size;
};

struct bhyve_model {
	struct bhyve_range *v;
	size_t n, cap;
	size_t lost; /* registrations that returned 0 without inserting */
	bool aborted;
};

/* Return 0 or -ENOMEM; *out says what bhyve would have done. */
int bhyve_register(struct bhyve_model *m, const char *owner, const char *name, uint64_t base,
                   uint64_t size, enum bhyve_outcome *out);
int bhyve_unregister(struct bhyve_model *m, const char *owner, const char *name, uint64_t base,
                     uint64_t size, enum bhyve_outcome *out, struct bhyve_range *found);

/* The range that handles an access to addr, or NULL (also once the VM aborted). */
const struct bhyve_range *bhyve_lookup(const struct bhyve_model *m, uint64_t addr);

void bhyve_model_free(struct bhyve_model *m);

#endif
