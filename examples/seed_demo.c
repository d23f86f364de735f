/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The failure that started busmap, replayed at the address-space level.
 *
 * bhyve places virtio-blk's 128-byte I/O BAR at 0xdf000000 and virtio-net's 64-byte one at
 * 0xdf000080. u-boot then moves net onto blk and blk away; the OS later reprograms net.
 * A registry that refuses overlaps and unregisters by address loses track here and aborts.
 * busmap keeps both BARs as handles: after every step this program prints the flat view
 * and checks that every byte of both BARs reaches the device the rules say it should.
 * Exit status 0 means every access was routed correctly.
 */
#include <busmap/busmap.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct device {
	const char *name;
	uint64_t size;
	bool mapped;
	uint64_t base;
	uint64_t mapped_seq; /* when the guest last placed it: the newest placement wins */
	bm_region *bar;
};

static int bar_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	/* One byte names the device (bit 7) and the offset (bits 0-6; BARs here are at most
	 * 128 bytes), so the reader can tell who answered, and where. */
	*value = (uint64_t)(uintptr_t)opaque << 7 | (offset & 0x7f);
	return 0;
}

static const struct bm_region_ops bar_ops = {.read = bar_read};

/* The device that should answer at addr: the most recently placed BAR covering it. */
static int expected(const struct device *d, int n, uint64_t addr)
{
	int best = -1;
	for (int i = 0; i < n; i++) {
		if (d[i].mapped && addr >= d[i].base && addr < d[i].base + d[i].size &&
		    (best < 0 || d[i].mapped_seq > d[best].mapped_seq))
			best = i;
	}
	return best;
}

static int check_routing(bm_vcpu *vcpu, bm_space *mem, struct device *d, int n)
{
	int wrong = 0;
	for (int i = 0; i < n; i++) {
		unsigned to_self = 0, to_other = 0, to_none = 0;
		uint64_t base = d[i].mapped ? d[i].base : 0;
		for (uint64_t off = 0; d[i].mapped && off < d[i].size; off++) {
			uint64_t v = 0;
			bm_access_result ret = bm_read(vcpu, mem, base + off, 1, &v);
			int want = expected(d, n, base + off);
			int got = (bm_failed(ret) || (ret & BM_ACCESS_UNASSIGNED)) ? -1 : (int)(v >> 7);
			bool offset_ok = got >= 0 && (v & 0x7f) == base + off - d[got].base;
			if (got == want && offset_ok && want == i)
				to_self++;
			else if (got == want && offset_ok)
				to_other++;
			else
				to_none++, wrong++;
		}
		if (d[i].mapped)
			printf("    %-10s BAR0 @0x%08" PRIx64
			       ": %3u bytes reach it, %3u reach a newer "
			       "overlapping BAR, %u misrouted\n",
			       d[i].name, d[i].base, to_self, to_other, to_none);
		else
			printf("    %-10s BAR0 unmapped\n", d[i].name);
	}
	return wrong;
}

static int flat_line(void *arg, const struct bm_flat_range *r)
{
	(void)arg;
	if (r->start >= 0xdf000000 && r->last < 0xdf001000)
		printf("    %016" PRIx64 "-%016" PRIx64 " %s%s\n", r->start, r->last,
		       bm_region_name(r->region), r->conflict ? "  (overlap)" : "");
	return 0;
}

static int show_step(const char *what, int err, bm_vcpu *vcpu, bm_space *mem, struct device *d,
                     int n)
{
	printf("%s -> %s\n", what, err ? strerror(-err) : "ok");
	puts("  flat view (0xdf000000..):");
	bm_space_flat(mem, flat_line, NULL);
	struct bm_conflict c[4];
	size_t nc = bm_space_conflicts(mem, c, 4);
	for (size_t i = 0; i < nc && i < 4; i++)
		printf("  conflict: %s hides %s over %016" PRIx64 "-%016" PRIx64 "\n",
		       bm_region_name(c[i].winner), bm_region_name(c[i].loser), c[i].start,
		       c[i].last);
	puts("  routing:");
	return check_routing(vcpu, mem, d, n) + (err != 0);
}

int main(void)
{
	bm_system *sys;
	bm_space *mem;
	bm_vcpu *vcpu;
	if (bm_system_new(&sys) || bm_space_new(sys, "memory", "system", &mem) ||
	    bm_vcpu_new(sys, 0, NULL, &vcpu)) {
		fputs("seed-demo: cannot create the address space\n", stderr);
		return 2;
	}
	struct device dev[2] = {
	    {.name = "virtio-blk", .size = 0x80},
	    {.name = "virtio-net", .size = 0x40},
	};
	uint64_t clock = 0;
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s/bar0", dev[i].name);
		if (bm_region_new_io(sys, name, dev[i].size, &bar_ops, (void *)(uintptr_t)i,
		                     &dev[i].bar) ||
		    bm_region_set_exclusive(dev[i].bar, true))
			return 2;
	}
	bm_region *root = bm_space_root(mem);
	int wrong = 0;

#define PLACE(i, addr)                                                                             \
	(dev[i].mapped = true, dev[i].base = (addr), dev[i].mapped_seq = ++clock,                  \
	 bm_region_add(root, dev[i].bar, (addr), 0))
#define REMOVE(i) (dev[i].mapped = false, bm_region_del(dev[i].bar))

	puts("busmap seed demo: virtio-blk (00:03.0) and virtio-net (00:02.0), arm64 I/O BARs\n");
	int err = PLACE(0, 0xdf000000);
	err = err ? err : PLACE(1, 0xdf000080);
	wrong += show_step("step 0: bhyve places blk @0xdf000000/0x80, net @0xdf000080/0x40", err,
	                   vcpu, mem, dev, 2);
	wrong += show_step("step 1: u-boot unmaps net @0xdf000080", REMOVE(1), vcpu, mem, dev, 2);
	wrong += show_step("step 2: u-boot maps net @0xdf000000 (onto blk)", PLACE(1, 0xdf000000),
	                   vcpu, mem, dev, 2);
	wrong += show_step("step 3: u-boot unmaps blk @0xdf000000", REMOVE(0), vcpu, mem, dev, 2);
	wrong += show_step("step 4: u-boot maps blk @0xdf000080", PLACE(0, 0xdf000080), vcpu, mem,
	                   dev, 2);
	wrong += show_step("step 5: the OS unmaps net @0xdf000000 to reprogram it", REMOVE(1), vcpu,
	                   mem, dev, 2);

	struct bm_vcpu_stats st;
	bm_vcpu_stats(vcpu, &st);
	printf("\n%" PRIu64 " accesses, %" PRIu64 " in an overlap, %" PRIu64 " unassigned\n",
	       st.accesses, st.conflicts, st.unassigned);
	printf("%s\n", wrong ? "FAILED: some accesses were misrouted or a step failed"
	                     : "every access reached the right device; every step succeeded");
	bm_vcpu_free(vcpu);
	bm_system_free(sys);
	return wrong ? 1 : 0;
}
