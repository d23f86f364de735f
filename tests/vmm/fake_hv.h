/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A recording hypervisor for the VMM's tests: it keeps what KVM would hold (memslots,
 * ioeventfds, interrupt line levels, MSIs sent) and refuses what KVM refuses, with the
 * same errors, so a listener that would make KVM fail makes these tests fail.
 */
#ifndef BUSMAP_TESTS_FAKE_HV_H
#define BUSMAP_TESTS_FAKE_HV_H

#include "vmm.h"

#define FAKE_HV_SLOTS 64
#define FAKE_HV_IOEV  64
#define FAKE_HV_MSIS  64

struct fake_slot {
	bool used;
	uint64_t gpa, size;
	void *hva;
	bool readonly;
};

struct fake_ioev {
	bool used;
	bool pio;
	uint64_t addr;
	unsigned len;
	bool datamatch;
	uint64_t data;
	int fd;
};

struct fake_hv {
	pthread_mutex_t lock;
	struct fake_slot slots[FAKE_HV_SLOTS];
	unsigned slot_creations[FAKE_HV_SLOTS]; /* how often each id was given a new slot */
	struct fake_ioev ioev[FAKE_HV_IOEV];
	bool irq[24];
	unsigned irq_raises[24]; /* low -> high transitions */
	struct {
		uint64_t addr;
		uint32_t data;
	} msis[FAKE_HV_MSIS];
	unsigned nmsis;
	unsigned calls;    /* every operation, refused or not */
	unsigned refusals; /* operations that returned an error */
};

extern const struct hv_ops fake_hv_ops;
void fake_hv_init(struct fake_hv *hv);

/* Counts of what is installed. */
unsigned fake_hv_nslots(struct fake_hv *hv);
unsigned fake_hv_nioev(struct fake_hv *hv);
/* The ioeventfd at (pio, addr), or NULL. */
const struct fake_ioev *fake_hv_ioev_at(struct fake_hv *hv, bool pio, uint64_t addr);

#endif
