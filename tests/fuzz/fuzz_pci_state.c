/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-pci-state: any bytes, restored as a saved PCI state into a machine a guest has
 * already programmed. The first byte picks how: with bit 0 clear, the rest is restored as
 * it is, so the envelope (length, magic, checksum) is what the fuzzer meets; with bit 0
 * set, the rest first gets the right length field and checksum, so that mutations reach
 * every field behind them.
 *
 * Checked: the restore returns 0, -EBADMSG, -EPROTONOSUPPORT or -ESTALE. A refusal leaves
 * the machine saving to the same bytes as before, with no hook run. An accepted state
 * saves to a blob that restores into a fresh machine, which then saves to the very same
 * bytes: whatever restore accepts is a state the format carries whole.
 *
 * FUZZ_PCI_STATE_SEEDS=DIR writes the seed corpus (the machine's own states) into DIR.
 */
#include "pci/blob.h"

#include <busmap/busmap.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECAM_BASE 0xb0000000ull

struct machine {
	bm_system *sys;
	bm_space *mem, *io;
	bm_vcpu *vcpu;
	bm_pci_host *host;
	bm_pci_func *ep, *br, *behind;
	unsigned hooks; /* map events, MSI messages, INTx changes */
};

static void fail(const char *what, int err) __attribute__((noreturn));
static void fail(const char *what, int err)
{
	fprintf(stderr, "fuzz-pci-state: %s (%d)\n", what, err);
	abort();
}

#define CHECK(call)                                                                                \
	do {                                                                                       \
		int err_ = (call);                                                                 \
		if (err_ < 0)                                                                      \
			fail(#call, err_);                                                         \
	} while (0)

static void on_event(void *arg, const struct bm_pci_map_event *ev)
{
	(void)ev;
	((struct machine *)arg)->hooks++;
}

static void on_msi(void *opaque, bm_pci_func *src, uint64_t addr, uint32_t data)
{
	(void)src;
	(void)addr;
	(void)data;
	((struct machine *)opaque)->hooks++;
}

static void on_intx(void *opaque, bm_pci_func *src, unsigned slot, unsigned pin, bool level)
{
	(void)src;
	(void)slot;
	(void)pin;
	(void)level;
	((struct machine *)opaque)->hooks++;
}

static const struct bm_pci_host_ops host_ops = {.msi = on_msi, .intx = on_intx};

/* 00:02.0 every kind of BAR, MSI and MSI-X; 00:03.0 a bridge; 01:00.0 behind it. */
static void build(struct machine *m)
{
	memset(m, 0, sizeof(*m));
	CHECK(bm_system_new(&m->sys));
	CHECK(bm_space_new(m->sys, "memory", "system", &m->mem));
	CHECK(bm_space_new(m->sys, "io", "io", &m->io));
	CHECK(bm_vcpu_new(m->sys, 0, NULL, &m->vcpu));
	struct bm_pci_host_config hc = {.mem = m->mem,
	                                .io = m->io,
	                                .cf8 = true,
	                                .ecam = true,
	                                .ecam_base = ECAM_BASE,
	                                .ops = &host_ops,
	                                .opaque = m};
	CHECK(bm_pci_host_new(m->sys, &hc, &m->host));
	CHECK(bm_pci_host_set_map_observer(m->host, on_event, m));
	struct bm_pci_func_desc ep = {
	    .vendor_id = 0x1af4,
	    .device_id = 0x1041,
	    .intx_pin = 1,
	    .bars = {{.type = BM_PCI_BAR_IO, .size = 32},
	             {.type = BM_PCI_BAR_MEM32, .size = 4096},
	             {.type = BM_PCI_BAR_MEM64, .size = 1 << 20, .prefetchable = true}},
	    .rom = {.size = 2048}};
	CHECK(bm_pci_func_new(bm_pci_host_root_bus(m->host), 2, 0, &ep, &m->ep));
	CHECK(bm_pci_func_add_msix(m->ep, 4, 1, 0, 1, 0x800, NULL));
	CHECK(bm_pci_func_add_msi(m->ep, 4, true, true, NULL));
	struct bm_pci_func_desc br = {.vendor_id = 0x1b36,
	                              .device_id = 0x0001,
	                              .class_code = 0x060400,
	                              .header = BM_PCI_HEADER_BRIDGE,
	                              .bridge_io32 = true,
	                              .bridge_pref64 = true};
	CHECK(bm_pci_func_new(bm_pci_host_root_bus(m->host), 3, 0, &br, &m->br));
	struct bm_pci_func_desc behind = {.vendor_id = 0x1af4,
	                                  .device_id = 0x1000,
	                                  .intx_pin = 2,
	                                  .bars = {{.type = BM_PCI_BAR_MEM32, .size = 4096},
	                                           {.type = BM_PCI_BAR_IO, .size = 16}}};
	CHECK(bm_pci_func_new(bm_pci_func_secondary_bus(m->br), 0, 0, &behind, &m->behind));
}

static void free_machine(struct machine *m)
{
	CHECK(bm_pci_host_free(m->host));
	CHECK(bm_vcpu_free(m->vcpu));
	CHECK(bm_system_free(m->sys));
}

static void wr(bm_pci_func *f, unsigned reg, unsigned size, uint32_t v)
{
	CHECK(bm_pci_func_cfg_write(f, reg, size, v));
}

/* A guest's state: decoding BARs, windows (the I/O one over an I/O BAR), MSI-X in use. */
static void program(struct machine *m, unsigned variant)
{
	uint32_t shift = variant ? 0x100000 : 0;
	wr(m->br, 0x18, 4, 0x00010100);
	wr(m->ep, 0x10, 4, 0x2000);
	wr(m->ep, 0x14, 4, 0xfe000000 + shift);
	wr(m->ep, 0x18, 4, 0);
	wr(m->ep, 0x1c, 4, 0x8);
	wr(m->ep, 0x30, 4, 0xfe010001);
	wr(m->ep, 0x04, 2, 0x7);
	wr(m->br, 0x20, 4, 0xfe20fe20);
	wr(m->br, 0x1c, 2, 0x2020);
	wr(m->br, 0x04, 2, 0x3);
	wr(m->behind, 0x10, 4, 0xfe200000);
	wr(m->behind, 0x14, 4, 0x2000);
	wr(m->behind, 0x04, 2, 0x3);
	if (!variant)
		wr(m->behind, 0x10, 4, 0xffffffff); /* being sized */
	unsigned cap = bm_pci_func_find_cap(m->ep, 0x11, false);
	wr(m->ep, cap + 2, 2, 0x8000);
	for (unsigned v = 0; v < 4; v++)
		for (unsigned dw = 0; dw < 4; dw++)
			CHECK(bm_write(m->vcpu, m->mem, 0xfe000000 + shift + 16 * v + 4 * dw, 4,
			               dw == 3 ? v & 1 : 0xfee00000 + v));
	CHECK(bm_pci_msi_notify(m->ep, 1));
	CHECK(bm_write(m->vcpu, m->io, 0xcf8, 4, 0x80001810));
	m->hooks = 0;
}

static uint8_t *save(struct machine *m, size_t *len)
{
	size_t need = 0;
	if (bm_pci_host_save(m->host, NULL, 0, &need) != -ENOSPC)
		fail("size query", 0);
	uint8_t *buf = malloc(need);
	if (!buf)
		fail("out of memory", -ENOMEM);
	CHECK(bm_pci_host_save(m->host, buf, need, len));
	return buf;
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *b,
                       size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&mode, 1, 1, f) != 1 || fwrite(b, 1, len, f) != len || fclose(f))
		fail("cannot write a seed", -EIO);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = getenv("FUZZ_PCI_STATE_SEEDS");
	if (!dir || !*dir)
		return 0;
	for (unsigned variant = 0; variant < 2; variant++) {
		struct machine m;
		build(&m);
		program(&m, variant);
		size_t len;
		uint8_t *b = save(&m, &len);
		write_seed(dir, variant ? "state-b" : "state-a", 0, b, len);
		write_seed(dir, variant ? "state-b-resealed" : "state-a-resealed", 1, b, len);
		free(b);
		free_machine(&m);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *blob = malloc(len + 1);
	if (!blob)
		return 0;
	memcpy(blob, data + 1, len);
	if (data[0] & 1)
		blob_reseal(blob, len);
	struct machine m;
	build(&m);
	program(&m, 0);
	size_t before_len;
	uint8_t *before = save(&m, &before_len);
	int err = bm_pci_host_restore(m.host, blob, len);
	if (err && err != -EBADMSG && err != -EPROTONOSUPPORT && err != -ESTALE)
		fail("restore: unexpected error", err);
	size_t after_len;
	uint8_t *after = save(&m, &after_len);
	if (err) {
		if (after_len != before_len || memcmp(after, before, after_len) != 0)
			fail("a refused restore changed the state", err);
		if (m.hooks)
			fail("a refused restore ran hooks", err);
	} else {
		struct machine fresh;
		build(&fresh);
		CHECK(bm_pci_host_restore(fresh.host, after, after_len));
		size_t again_len;
		uint8_t *again = save(&fresh, &again_len);
		if (again_len != after_len || memcmp(again, after, after_len) != 0)
			fail("an accepted state does not survive a second round trip", 0);
		free(again);
		free_machine(&fresh);
	}
	free(after);
	free(before);
	free_machine(&m);
	free(blob);
	return 0;
}
