/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * busmap-pci-bench: PCI configuration accesses through busmap's PCI layer against a
 * baseline that follows bhyve's flow (pci_baseline.h), in one run.
 *
 *   busmap-pci-bench [--quick] [--json] [--instr=auto|perf|callgrind|none] [-v]
 *
 * For 10, 100 and 1000 devices (pci_bench.h has the machine), every implementation runs
 * each case in turn, round after round, and the best round is kept. Besides: ECAM reads
 * from two vCPU threads at once, the heap each machine takes per device, and the BAR move
 * a bhyve device model makes through busmap's bhyve compatibility layer (pci_compat.c).
 * Every access goes through the implementation's dispatch, as a VM exit would hand it over.
 * Before measuring, each machine is checked: the IDs read back, sizing reads the size mask,
 * and a moved BAR answers at its new address and no longer at its old one.
 *
 * Instruction counts come from the hardware counter when perf_event_open works, otherwise
 * from callgrind (the program re-runs itself under valgrind with --count-mode, where each
 * loop runs once between client requests, and reads the counts back; see icount.c).
 */
#include "pci_bench.h"
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESULTS 128

static const unsigned device_counts[] = {10, 100, 1000};

enum kind {
	CF8_READ,
	ECAM_READ,
	ECAM_READ_2THR, /* ECAM_READ on two vCPU threads at once: ns per read on each */
	BAR_SIZING,
	BAR_MOVE,
	BAR_MOVE_BRIDGED,
	NKINDS,
};

static const char *const kind_names[NKINDS] = {"cf8-read",   "ecam-read", "ecam-read-2thr",
                                               "bar-sizing", "bar-move",  "bar-move-bridged"};

struct params {
	uint64_t ops[NKINDS]; /* per round, at most */
	uint64_t budget_ns;   /* a round stops early past this (0: never) */
	unsigned rounds;
};

static const struct params params_full = {
    .ops = {1000000, 1000000, 1000000, 200000, 40000, 40000},
    .budget_ns = 500000000,
    .rounds = 5,
};
static const struct params params_quick = {
    .ops = {100000, 100000, 100000, 20000, 4000, 4000},
    .budget_ns = 50000000,
    .rounds = 3,
};
/* Under callgrind: one pass of each loop, small enough for valgrind. */
static const struct params params_count = {
    .ops = {20000, 20000, 0, 2000, 400, 200},
    .rounds = 1,
};

static const struct pcib_impl *const impls[] = {&pcib_busmap, &pcib_busmap_qsbr, &pcib_baseline};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

struct result {
	const char *kase;
	const char *impl;
	unsigned devices;
	double ns, instr;
	unsigned threads;
	double bytes; /* "memory": heap bytes per device */
};

static struct result results[MAX_RESULTS];
static size_t nresults;
static struct bench_opts opts;
static const struct params *P;
static bool check_failed;

static struct result *find(const char *kase, const char *impl, unsigned devices)
{
	for (size_t i = 0; i < nresults; i++) {
		struct result *r = &results[i];

		if (!strcmp(r->kase, kase) && !strcmp(r->impl, impl) && r->devices == devices)
			return r;
	}
	return NULL;
}

static struct result *record(const char *kase, const char *impl, unsigned devices)
{
	struct result *r = find(kase, impl, devices);

	if (r)
		return r;
	if (nresults == MAX_RESULTS)
		abort();
	r = &results[nresults++];
	*r = (struct result){
	    kase, impl, devices, NAN, NAN, kase == kind_names[ECAM_READ_2THR] ? 2 : 1, NAN};
	return r;
}

static void progress(const char *what, const char *impl, unsigned devices)
{
	if (opts.verbose)
		fprintf(stderr, "busmap-pci-bench: %s %s devices=%u\n", what, impl, devices);
}

/* ---- the cases ---- */

/* The moved BAR: device 0 sits on bus 0, device 1 behind the first bridge. */
static unsigned device_of(enum kind k)
{
	return k == BAR_MOVE_BRIDGED ? 1 : 0;
}

static uint64_t run_kind(const struct pcib_impl *impl, void *vcpu, enum kind k, uint64_t ops)
{
	unsigned dev = device_of(k);
	struct pcib_bdf at = pcib_device(dev);

	switch (k) {
	case CF8_READ:
		return impl->cf8_read(vcpu, pcib_cf8(at, 0), ops);
	case ECAM_READ:
	case ECAM_READ_2THR:
		return impl->ecam_read(vcpu, pcib_ecam(at, 0), ops);
	case BAR_SIZING:
		return impl->bar_sizing(vcpu, pcib_ecam(at, 0), pcib_bar_addr(dev), ops);
	case BAR_MOVE:
	case BAR_MOVE_BRIDGED:
		return impl->bar_move(vcpu, pcib_ecam(at, PCI_BASE_ADDRESS_0), pcib_bar_addr(dev),
		                      pcib_bar_spare(dev), ops);
	default:
		return 0;
	}
}

/* Moves go back and forth: chunks of an even number of them end where they started. */
static uint64_t chunk_of(enum kind k, uint64_t ops)
{
	uint64_t c = ops / 16 ? ops / 16 : 1;

	if (k == BAR_MOVE || k == BAR_MOVE_BRIDGED)
		c = (c + 1) & ~1ull;
	return c;
}

static volatile uint64_t sink;

/* One round: ns per op, and instructions per op when the hardware counter is in use. */
static void measure(const struct pcib_impl *impl, void *vcpu, enum kind k, double *ns,
                    double *instr)
{
	uint64_t ops = P->ops[k], chunk = chunk_of(k, ops), done = 0, t0, t1;
	int fd = opts.icount == ICOUNT_PERF ? icount_perf_open() : -1;

	sink += run_kind(impl, vcpu, k, chunk_of(k, 16)); /* warm the hints and the caches */
	if (fd >= 0)
		icount_perf_start(fd);
	t0 = bench_now_ns();
	t1 = t0;
	while (done < ops) {
		uint64_t n = ops - done < chunk ? ops - done : chunk;

		sink += run_kind(impl, vcpu, k, n);
		done += n;
		t1 = bench_now_ns();
		if (P->budget_ns && t1 - t0 > P->budget_ns)
			break;
	}
	*ns = (double)(t1 - t0) / (double)done;
	*instr = NAN;
	if (fd >= 0) {
		*instr = (double)icount_perf_stop(fd) / (double)done;
		icount_perf_close(fd);
	}
}

/* The second reader of ECAM_READ_2THR: its own vCPU on the other CPU, started together
 * with the measuring thread. */
struct partner {
	const struct pcib_impl *impl;
	void *sys;
	atomic_int state; /* 0 entering, 1 ready, 2 go, -1 failed */
	double ns;
};

static void *partner_main(void *arg)
{
	struct partner *p = arg;
	void *vcpu;
	double instr;

	bench_pin(1);
	vcpu = p->impl->vcpu_enter(p->sys, 1);
	if (!vcpu) {
		atomic_store(&p->state, -1);
		return NULL;
	}
	atomic_store(&p->state, 1);
	while (atomic_load(&p->state) != 2)
		;
	measure(p->impl, vcpu, ECAM_READ_2THR, &p->ns, &instr);
	p->impl->vcpu_leave(vcpu);
	return NULL;
}

/* Both threads read the same function's registers; each reports its own ns per read,
 * and the slower one counts. NAN if the second thread could not run. */
static void measure_pair(const struct pcib_impl *impl, void *sys, void *vcpu, double *ns)
{
	struct partner p = {.impl = impl, .sys = sys};
	pthread_t th;
	cpu_set_t cpus;
	double mine, instr;

	*ns = NAN;
	/* The partner inherits this thread's CPUs and picks the second; this thread takes the
	 * first for the measurement and all of them back after it. */
	if (pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) ||
	    pthread_create(&th, NULL, partner_main, &p))
		return;
	while (atomic_load(&p.state) == 0)
		;
	bench_pin(0);
	if (atomic_load(&p.state) == 1) {
		atomic_store(&p.state, 2);
		measure(impl, vcpu, ECAM_READ_2THR, &mine, &instr);
	}
	pthread_join(th, NULL);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (atomic_load(&p.state) == 2)
		*ns = fmax(mine, p.ns);
}

/* Past work still being reclaimed would land in the count: let it finish first. */
static void count_once(const struct pcib_impl *impl, void *sys, void *vcpu, enum kind k,
                       unsigned devices)
{
	char label[96];
	uint64_t ops = P->ops[k];

	snprintf(label, sizeof(label), "%s|%s|%u|%llu", kind_names[k], impl->name, devices,
	         (unsigned long long)ops);
	sink += run_kind(impl, vcpu, k, chunk_of(k, 16));
	if (impl->settle)
		impl->settle(sys);
	icount_cg_begin();
	sink += run_kind(impl, vcpu, k, ops);
	icount_cg_end(label);
}

/* ---- checks: the machine answers as a guest expects ---- */

static bool check(bool ok, const struct pcib_impl *impl, unsigned devices, const char *what)
{
	if (!ok) {
		fprintf(stderr, "busmap-pci-bench: %s with %u devices: %s\n", impl->name, devices,
		        what);
		check_failed = true;
	}
	return ok;
}

static bool bar_answers(const struct pcib_impl *impl, void *vcpu, uint32_t addr)
{
	uint64_t v = 0;

	return impl->mmio(vcpu, false, addr, 4, &v) == 0 && v == PCIB_VALUE;
}

static bool bar_absent(const struct pcib_impl *impl, void *vcpu, uint32_t addr)
{
	uint64_t v = 0;

	return impl->mmio(vcpu, false, addr, 4, &v) != 0;
}

static bool check_move(const struct pcib_impl *impl, void *vcpu, unsigned devices, unsigned dev)
{
	uint64_t reg = pcib_ecam(pcib_device(dev), PCI_BASE_ADDRESS_0);
	uint32_t a = pcib_bar_addr(dev), b = pcib_bar_spare(dev);
	bool ok = check(bar_answers(impl, vcpu, a), impl, devices, "BAR not at its address");

	impl->bar_move(vcpu, reg, a, b, 1);
	ok = ok && check(bar_answers(impl, vcpu, b) && bar_absent(impl, vcpu, a), impl, devices,
	                 "moved BAR not at its new address only");
	impl->bar_move(vcpu, reg, b, a, 1);
	return ok && check(bar_answers(impl, vcpu, a) && bar_absent(impl, vcpu, b), impl, devices,
	                   "BAR not back at its address");
}

static bool check_machine(const struct pcib_impl *impl, void *vcpu, unsigned devices)
{
	struct pcib_bdf at = pcib_device(0);
	uint32_t cf8 = pcib_cf8(at, 0), vendor = 0;
	uint64_t ids = 0;
	bool ok;

	ok = impl->pio(vcpu, true, PCI_CONFIG_ADDRESS_PORT, 4, &cf8) == 0 &&
	     impl->pio(vcpu, false, PCI_CONFIG_DATA_PORT, 2, &vendor) == 0;
	ok = check(ok && vendor == PCIB_VENDOR, impl, devices, "CF8/CFC vendor ID");
	ok = ok && check(impl->mmio(vcpu, false, pcib_ecam(at, 0), 4, &ids) == 0 &&
	                     ids == (PCIB_VENDOR | (uint32_t)PCIB_DEVICE << 16),
	                 impl, devices, "ECAM IDs");
	/* One sizing sequence: the read-back is the size mask, and nothing failed. */
	ok = ok && check(run_kind(impl, vcpu, BAR_SIZING, 1) == (uint32_t) ~(PCIB_BAR_SIZE - 1),
	                 impl, devices, "BAR sizing read-back");
	ok = ok && check_move(impl, vcpu, devices, device_of(BAR_MOVE));
	return ok && check_move(impl, vcpu, devices, device_of(BAR_MOVE_BRIDGED));
}

/* ---- the plan ---- */

struct machines {
	void *sys[NIMPLS];
	void *vcpu[NIMPLS];
};

/* The heap a machine took, per device; retired memory is freed first. */
static void record_memory(const char *impl, unsigned devices, size_t before)
{
	size_t after = bench_heap_settled();

	if (!opts.count_mode && after > before)
		record("memory", impl, devices)->bytes = (double)(after - before) / devices;
}

static void machines_build(struct machines *m, unsigned devices)
{
	for (size_t i = 0; i < NIMPLS; i++) {
		size_t before = bench_heap_settled();

		progress("building", impls[i]->name, devices);
		m->vcpu[i] = NULL;
		m->sys[i] = impls[i]->create(devices);
		if (m->sys[i] && impls[i]->settle)
			impls[i]->settle(m->sys[i]);
		if (m->sys[i])
			record_memory(impls[i]->name, devices, before);
		if (m->sys[i])
			m->vcpu[i] = impls[i]->vcpu_enter(m->sys[i], 0);
		if (!check(m->vcpu[i] != NULL, impls[i], devices, "cannot build the machine") ||
		    !check_machine(impls[i], m->vcpu[i], devices)) {
			if (m->vcpu[i])
				impls[i]->vcpu_leave(m->vcpu[i]);
			m->vcpu[i] = NULL;
		}
	}
}

static void machines_destroy(struct machines *m)
{
	for (size_t i = 0; i < NIMPLS; i++) {
		if (m->vcpu[i])
			impls[i]->vcpu_leave(m->vcpu[i]);
		if (m->sys[i])
			impls[i]->destroy(m->sys[i]);
	}
}

static void run_devices(unsigned devices)
{
	struct machines m;

	machines_build(&m, devices);
	for (enum kind k = 0; k < NKINDS; k++) {
		for (unsigned round = 0; round < P->rounds; round++) {
			for (size_t i = 0; i < NIMPLS; i++) {
				struct result *r;
				double ns, instr;

				if (!m.vcpu[i])
					continue;
				if (round == 0)
					progress(kind_names[k], impls[i]->name, devices);
				if (opts.count_mode) {
					if (P->ops[k])
						count_once(impls[i], m.sys[i], m.vcpu[i], k,
						           devices);
					continue;
				}
				instr = NAN;
				if (k == ECAM_READ_2THR)
					measure_pair(impls[i], m.sys[i], m.vcpu[i], &ns);
				else
					measure(impls[i], m.vcpu[i], k, &ns, &instr);
				r = record(kind_names[k], impls[i]->name, devices);
				r->ns = fmin(r->ns, ns);
				r->instr = fmin(r->instr, instr);
			}
		}
	}
	machines_destroy(&m);
}

/* BAR moves through the bhyve layer: as measure() and count_once() do for the others. */
static void run_compat(unsigned devices)
{
	const char *kase = kind_names[BAR_MOVE];
	uint64_t ops = P->ops[BAR_MOVE], chunk = chunk_of(BAR_MOVE, ops);
	size_t before = bench_heap_settled();
	struct result *r;

	progress("building", "bhyve-compat", devices);
	if (!check(pcib_compat_open(devices), &(struct pcib_impl){.name = "bhyve-compat"}, devices,
	           "cannot build the bhyve layer's map"))
		return;
	pcib_compat_settle();
	record_memory("bhyve-compat", devices, before);
	sink += pcib_compat_moves(chunk_of(BAR_MOVE, 16));
	if (opts.count_mode) {
		char label[96];

		snprintf(label, sizeof(label), "%s|bhyve-compat|%u|%llu", kase, devices,
		         (unsigned long long)ops);
		pcib_compat_settle();
		icount_cg_begin();
		sink += pcib_compat_moves(ops);
		icount_cg_end(label);
		pcib_compat_close();
		return;
	}
	r = record(kase, "bhyve-compat", devices);
	for (unsigned round = 0; round < P->rounds; round++) {
		int fd = opts.icount == ICOUNT_PERF ? icount_perf_open() : -1;
		uint64_t done = 0, t0, t1;

		if (fd >= 0)
			icount_perf_start(fd);
		t0 = bench_now_ns();
		t1 = t0;
		while (done < ops) {
			sink += pcib_compat_moves(chunk);
			done += chunk;
			t1 = bench_now_ns();
			if (P->budget_ns && t1 - t0 > P->budget_ns)
				break;
		}
		r->ns = fmin(r->ns, (double)(t1 - t0) / (double)done);
		if (fd >= 0) {
			r->instr = fmin(r->instr, (double)icount_perf_stop(fd) / (double)done);
			icount_perf_close(fd);
		}
	}
	pcib_compat_close();
}

/* Attaches one dump ("case|impl|devices|ops" and its instruction total). */
static void callgrind_attach(const char *lbl, double total)
{
	char kase[32], impl[32];
	unsigned devices;
	unsigned long long ops;
	struct result *r;

	if (sscanf(lbl, "%31[^|]|%31[^|]|%u|%llu", kase, impl, &devices, &ops) != 4 || !ops)
		return;
	for (size_t i = 0; i < nresults; i++) {
		r = &results[i];
		if (!strcmp(r->kase, kase) && !strcmp(r->impl, impl) && r->devices == devices)
			r->instr = total / (double)ops;
	}
}

/* ---- output ---- */

static void print_num(double v, int width, int prec)
{
	if (isnan(v) || isinf(v))
		printf(" %*s", width, "n/a");
	else
		printf(" %*.*f", width, prec, v);
}

static double value_of(const char *kase, const char *impl, unsigned devices, bool instr)
{
	const struct result *r = find(kase, impl, devices);

	if (!r)
		return NAN;
	return instr ? r->instr : r->ns;
}

static void print_table(void)
{
	printf("%-16s %7s |", "", "");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %-19s|", impls[i]->name);
	printf(" baseline / busmap\n%-16s %7s |", "case", "devices");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %9s %9s |", "ns", "instr");
	printf(" %8s %8s\n", "ns", "instr");
	for (enum kind k = 0; k < NKINDS; k++) {
		for (size_t d = 0; d < sizeof(device_counts) / sizeof(device_counts[0]); d++) {
			unsigned n = device_counts[d];

			printf("%-16s %7u |", kind_names[k], n);
			for (size_t i = 0; i < NIMPLS; i++) {
				print_num(value_of(kind_names[k], impls[i]->name, n, false), 9, 1);
				print_num(value_of(kind_names[k], impls[i]->name, n, true), 9, 0);
				printf(" |");
			}
			print_num(value_of(kind_names[k], "baseline", n, false) /
			              value_of(kind_names[k], "busmap", n, false),
			          8, 2);
			print_num(value_of(kind_names[k], "baseline", n, true) /
			              value_of(kind_names[k], "busmap", n, true),
			          8, 2);
			printf("\n");
		}
	}
}

static void print_extras(void)
{
	printf("\n%-28s %7s |", "", "devices");
	for (size_t i = 0; i < NIMPLS; i++)
		printf(" %-12s|", impls[i]->name);
	printf(" %-12s|\n", "bhyve-compat");
	for (size_t d = 0; d < sizeof(device_counts) / sizeof(device_counts[0]); d++) {
		unsigned n = device_counts[d];

		printf("%-28s %7u |", "ecam-read, 2 threads / 1", n);
		for (size_t i = 0; i < NIMPLS; i++) {
			print_num(value_of(kind_names[ECAM_READ_2THR], impls[i]->name, n, false) /
			              value_of(kind_names[ECAM_READ], impls[i]->name, n, false),
			          11, 2);
			printf(" |");
		}
		printf(" %11s |\n", "");
	}
	for (size_t d = 0; d < sizeof(device_counts) / sizeof(device_counts[0]); d++) {
		unsigned n = device_counts[d];
		const struct result *r;

		printf("%-28s %7u |", "memory per device, bytes", n);
		for (size_t i = 0; i <= NIMPLS; i++) {
			r = find("memory", i < NIMPLS ? impls[i]->name : "bhyve-compat", n);
			print_num(r ? r->bytes : NAN, 11, 0);
			printf(" |");
		}
		printf("\n");
	}
	printf("\nbar-move through busmap's bhyve layer (unregister_mem + register_mem):\n");
	printf("%-16s %7s | %9s %9s | baseline / bhyve-compat\n", "case", "devices", "ns", "instr");
	for (size_t d = 0; d < sizeof(device_counts) / sizeof(device_counts[0]); d++) {
		unsigned n = device_counts[d];
		const char *c = kind_names[BAR_MOVE];

		printf("%-16s %7u |", c, n);
		print_num(value_of(c, "bhyve-compat", n, false), 9, 1);
		print_num(value_of(c, "bhyve-compat", n, true), 9, 0);
		printf(" |");
		print_num(value_of(c, "baseline", n, false) / value_of(c, "bhyve-compat", n, false),
		          8, 2);
		print_num(value_of(c, "baseline", n, true) / value_of(c, "bhyve-compat", n, true),
		          8, 2);
		printf("\n");
	}
}

static void print_notes(void)
{
	printf("\nPer operation: cf8-read, a 4-byte write to 0xcf8 then a 2-byte read of the "
	       "vendor ID\nat 0xcfc; ecam-read, one 4-byte read; bar-sizing, five ECAM accesses "
	       "(decode off,\nBAR all ones, read back, restore, decode on); bar-move, one 4-byte "
	       "ECAM write of a\nmapped BAR (decode on) to a free address. The moved BAR is at "
	       "00:05.0 on bus 0, or\nfor bar-move-bridged at 01:00.0, behind a bridge in busmap "
	       "(a root bus in the\nbaseline). Each access counts its dispatch and the "
	       "benchmark's loop around it.\n");
}

static void print_targets(void)
{
	unsigned lo = device_counts[0], hi = device_counts[2];

	printf("\nBAR move, %u devices / %u devices (target <= 3x, judged on instructions; ns "
	       "drift\non a shared machine):\n",
	       hi, lo);
	printf("  %-12s %-17s %8s %8s  %s\n", "", "case", "instr", "ns", "verdict");
	for (size_t i = 0; i < NIMPLS; i++) {
		for (enum kind k = BAR_MOVE; k <= BAR_MOVE_BRIDGED; k++) {
			const char *c = kind_names[k], *impl = impls[i]->name;
			double ri = value_of(c, impl, hi, true) / value_of(c, impl, lo, true);
			double rn = value_of(c, impl, hi, false) / value_of(c, impl, lo, false);
			double judged = isnan(ri) ? rn : ri;

			printf("  %-12s %-17s", impl, c);
			print_num(ri, 8, 2);
			print_num(rn, 8, 2);
			printf("  %s\n", isnan(judged) ? "n/a" : judged <= 3 ? "met" : "missed");
		}
	}
}

static void print_human(void)
{
	printf("busmap-pci-bench%s: PCI configuration accesses, busmap vs a bhyve-style baseline\n"
	       "(flat configuration arrays, port table, rwlock + red-black tree of MMIO ranges,\n"
	       "a BAR change unregisters the old range by address and registers the new one)\n",
	       opts.quick ? " --quick" : "");
	printf("%u CPUs; one vCPU thread; best of %u rounds", bench_ncpus(), P->rounds);
	if (!isnan(opts.load_at_start))
		printf("; load average %.2f at start", opts.load_at_start);
	printf("\n");
	if (opts.icount_note[0])
		printf("instructions: n/a (%s)\n\n", opts.icount_note);
	else
		printf("instructions: %s\n\n", bench_icount_method(&opts));
	print_table();
	print_extras();
	print_notes();
	print_targets();
}

static void print_json(void)
{
	printf("[\n");
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		printf("%s  {\"case\": \"%s\", \"implementation\": \"%s\", \"regions\": %u, "
		       "\"threads\": %u",
		       i ? ",\n" : "", r->kase, r->impl, r->devices, r->threads);
		if (!isnan(r->bytes))
			printf(", \"bytes_per_region\": %.1f", r->bytes);
		if (!isnan(r->ns))
			printf(", \"ns_per_op\": %.3f", r->ns);
		if (!isnan(r->instr))
			printf(", \"instructions_per_op\": %.3f", r->instr);
		printf("}");
	}
	printf("\n]\n");
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: busmap-pci-bench [--quick] [--json] [--instr=auto|perf|callgrind|none] "
	           "[-v]\n"
	           "  --quick   every case, fewer iterations\n"
	           "  --json    one JSON object per measurement (regions: the device count)\n"
	           "  --instr   how to count instructions (auto: perf, else callgrind)\n"
	           "  -v        progress on stderr\n");
}

int main(int argc, char **argv)
{
	int status = bench_begin(&opts, argc, argv, "busmap-pci-bench", usage);

	if (status >= 0)
		return status;
	P = opts.count_mode ? &params_count : opts.quick ? &params_quick : &params_full;
	for (size_t d = 0; d < sizeof(device_counts) / sizeof(device_counts[0]); d++) {
		run_devices(device_counts[d]);
		run_compat(device_counts[d]);
	}
	if (!opts.count_mode && opts.icount == ICOUNT_CALLGRIND) {
		const char *why;

		progress("callgrind", "all", 0);
		why = icount_cg_run("busmap-pci-bench", true, callgrind_attach);
		if (why)
			opts.icount_note = why;
	}
	if (!opts.count_mode) {
		if (opts.json)
			print_json();
		else
			print_human();
	}
	return check_failed ? 1 : 0;
}
