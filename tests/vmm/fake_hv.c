/* SPDX-License-Identifier: BSD-2-Clause */
/* A recording hypervisor with KVM's refusals (see fake_hv.h). */
#include "fake_hv.h"

#include <errno.h>
#include <string.h>

#define PAGE 4096u

static int set_memslot(void *ctx, unsigned id, uint64_t gpa, uint64_t size, void *hva,
                       bool readonly)
{
	struct fake_hv *hv = ctx;
	int err = 0;
	pthread_mutex_lock(&hv->lock);
	hv->calls++;
	struct fake_slot *s = id < FAKE_HV_SLOTS ? &hv->slots[id] : NULL;
	if (!s) {
		err = -EINVAL;
	} else if (size == 0) {
		if (!s->used)
			err = -EINVAL;
		else
			s->used = false;
	} else if (gpa % PAGE || size % PAGE || (uintptr_t)hva % PAGE || gpa + size - 1 < gpa) {
		err = -EINVAL;
	} else if (s->used) {
		/* KVM can move a slot or change its flags, never resize it; ours never does either.
		 */
		err = -EINVAL;
	} else {
		for (unsigned i = 0; i < FAKE_HV_SLOTS && !err; i++) {
			struct fake_slot *o = &hv->slots[i];
			if (o->used && gpa <= o->gpa + o->size - 1 && o->gpa <= gpa + size - 1)
				err = -EEXIST;
		}
		if (!err) {
			*s = (struct fake_slot){true, gpa, size, hva, readonly};
			hv->slot_creations[id]++;
		}
	}
	if (err)
		hv->refusals++;
	pthread_mutex_unlock(&hv->lock);
	return err;
}

static bool ioev_collides(const struct fake_ioev *e, bool pio, uint64_t addr, unsigned len,
                          bool datamatch, uint64_t data)
{
	if (!e->used || e->pio != pio || e->addr != addr)
		return false;
	if (e->len && len && e->len != len)
		return false;
	return !e->datamatch || !datamatch || e->data == data;
}

static int ioeventfd(void *ctx, bool assign, bool pio, uint64_t addr, unsigned len, bool datamatch,
                     uint64_t data, int fd)
{
	struct fake_hv *hv = ctx;
	int err = 0;
	pthread_mutex_lock(&hv->lock);
	hv->calls++;
	bool len_ok = len == 1 || len == 2 || len == 4 || len == 8 || (len == 0 && !pio);
	if (!len_ok || (len == 0 && datamatch) || fd < 0 || (len && addr + len - 1 < addr)) {
		err = -EINVAL;
	} else if (assign) {
		struct fake_ioev *free_slot = NULL;
		for (unsigned i = 0; i < FAKE_HV_IOEV && !err; i++) {
			if (ioev_collides(&hv->ioev[i], pio, addr, len, datamatch, data))
				err = -EEXIST;
			else if (!hv->ioev[i].used && !free_slot)
				free_slot = &hv->ioev[i];
		}
		if (!err && !free_slot)
			err = -ENOSPC;
		if (!err)
			*free_slot = (struct fake_ioev){true, pio, addr, len, datamatch, data, fd};
	} else {
		err = -ENOENT;
		for (unsigned i = 0; i < FAKE_HV_IOEV; i++) {
			struct fake_ioev *e = &hv->ioev[i];
			if (e->used && e->pio == pio && e->addr == addr && e->len == len &&
			    e->fd == fd && e->datamatch == datamatch &&
			    (!datamatch || e->data == data)) {
				e->used = false;
				err = 0;
				break;
			}
		}
	}
	if (err)
		hv->refusals++;
	pthread_mutex_unlock(&hv->lock);
	return err;
}

static int irq_line(void *ctx, unsigned gsi, bool level)
{
	struct fake_hv *hv = ctx;
	int err = 0;
	pthread_mutex_lock(&hv->lock);
	hv->calls++;
	if (gsi >= 24) {
		err = -EINVAL;
		hv->refusals++;
	} else {
		if (level && !hv->irq[gsi])
			hv->irq_raises[gsi]++;
		hv->irq[gsi] = level;
	}
	pthread_mutex_unlock(&hv->lock);
	return err;
}

static int msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct fake_hv *hv = ctx;
	pthread_mutex_lock(&hv->lock);
	hv->calls++;
	if (hv->nmsis < FAKE_HV_MSIS) {
		hv->msis[hv->nmsis].addr = addr;
		hv->msis[hv->nmsis].data = data;
	}
	hv->nmsis++;
	pthread_mutex_unlock(&hv->lock);
	return 0;
}

static unsigned max_memslots(void *ctx)
{
	(void)ctx;
	return FAKE_HV_SLOTS;
}

const struct hv_ops fake_hv_ops = {
    .set_memslot = set_memslot,
    .ioeventfd = ioeventfd,
    .irq_line = irq_line,
    .msi = msi,
    .max_memslots = max_memslots,
};

void fake_hv_init(struct fake_hv *hv)
{
	memset(hv, 0, sizeof(*hv));
	pthread_mutex_init(&hv->lock, NULL);
}

unsigned fake_hv_nslots(struct fake_hv *hv)
{
	unsigned n = 0;
	for (unsigned i = 0; i < FAKE_HV_SLOTS; i++)
		n += hv->slots[i].used;
	return n;
}

unsigned fake_hv_nioev(struct fake_hv *hv)
{
	unsigned n = 0;
	for (unsigned i = 0; i < FAKE_HV_IOEV; i++)
		n += hv->ioev[i].used;
	return n;
}

const struct fake_ioev *fake_hv_ioev_at(struct fake_hv *hv, bool pio, uint64_t addr)
{
	for (unsigned i = 0; i < FAKE_HV_IOEV; i++)
		if (hv->ioev[i].used && hv->ioev[i].pio == pio && hv->ioev[i].addr == addr)
			return &hv->ioev[i];
	return NULL;
}
