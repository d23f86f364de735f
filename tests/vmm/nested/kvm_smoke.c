/*
 * kvm_smoke: the smallest proof that /dev/kvm works, meant to run inside the
 * nested guest of run.sh (see README.md).
 *
 *   1. real mode, no in-kernel irqchip: "mov $0x42,%al; out %al,$0x10; hlt"
 *      must give KVM_EXIT_IO (out, port 0x10, 1 byte, 0x42) then KVM_EXIT_HLT;
 *   2. the same after KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2: the IO exit only
 *      (with an in-kernel irqchip HLT stays in the kernel);
 *   3. 32-bit protected mode (flat segments set through KVM_SET_SREGS):
 *      "mov $0x43,%al; out %al,$0x10; hlt" gives the IO exit and HLT;
 *   4. timing: a real-mode loop of N "out" instructions (default 100000),
 *      each one a round trip to this program; prints the cost per exit.
 *
 * usage: kvm_smoke [N]        exit status 0 when every check passed.
 *
 * Build: cc -O2 -Wall -o kvm_smoke kvm_smoke.c
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000u
#define CODE_GPA 0x1000u
#define PORT     0x10

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			failures++;                                             \
		}                                                               \
	} while (0)

static void die(const char *what)
{
	fprintf(stderr, "kvm_smoke: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct vm {
	int vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
};

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "other";
	}
}

enum mode { REAL, PROT32 };

static void vm_create(int kvm, struct vm *v, int irqchip, enum mode mode,
		      const uint8_t *code, size_t len)
{
	v->vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		die("KVM_CREATE_VM");
	if (irqchip) {
		struct kvm_pit_config pit = { .flags = 0 };

		if (ioctl(v->vm, KVM_CREATE_IRQCHIP, 0) < 0)
			die("KVM_CREATE_IRQCHIP");
		if (ioctl(v->vm, KVM_CREATE_PIT2, &pit) < 0)
			die("KVM_CREATE_PIT2");
	}
	v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED)
		die("mmap guest memory");
	memcpy(v->mem + CODE_GPA, code, len);
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)v->mem,
	};
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->vcpu, 0);
	if (v->run == MAP_FAILED)
		die("mmap kvm_run");

	struct kvm_sregs sregs;
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	if (mode == REAL) {
		sregs.cs.base = 0;
		sregs.cs.selector = 0;
	} else {
		struct kvm_segment flat = {
			.base = 0, .limit = 0xffffffff, .present = 1, .dpl = 0,
			.db = 1, .s = 1, .l = 0, .g = 1,
		};
		struct kvm_segment cs = flat, ds = flat;

		cs.type = 0xb; /* code, execute/read, accessed */
		cs.selector = 0x08;
		ds.type = 0x3; /* data, read/write, accessed */
		ds.selector = 0x10;
		sregs.cs = cs;
		sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
		sregs.cr0 |= 1; /* PE */
	}
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	struct kvm_regs regs = { .rip = CODE_GPA, .rflags = 2, .rsp = 0x8000 };
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

static void vm_destroy(struct vm *v)
{
	close(v->vcpu);
	close(v->vm);
	munmap(v->mem, MEM_SIZE);
}

static uint32_t vm_run(struct vm *v)
{
	if (ioctl(v->vcpu, KVM_RUN, 0) < 0)
		die("KVM_RUN");
	return v->run->exit_reason;
}

/* Checks that the last exit is "out %al,$PORT" with AL == val. */
static void check_out(struct vm *v, uint32_t reason, uint8_t val, const char *what)
{
	CHECK(reason == KVM_EXIT_IO, "%s: exit %u (%s), want IO", what, reason,
	      exit_name(reason));
	if (reason != KVM_EXIT_IO)
		return;
	struct kvm_run *r = v->run;
	uint8_t got = *((uint8_t *)r + r->io.data_offset);
	CHECK(r->io.direction == KVM_EXIT_IO_OUT && r->io.port == PORT &&
		      r->io.size == 1 && r->io.count == 1 && got == val,
	      "%s: IO dir %u port 0x%x size %u count %u value 0x%x, want out 0x%x 1 1 0x%x",
	      what, r->io.direction, r->io.port, r->io.size, r->io.count, got, PORT, val);
	printf("%s: KVM_EXIT_IO out port 0x%x value 0x%02x\n", what, r->io.port, got);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long loops = argc > 1 ? strtol(argv[1], NULL, 0) : 100000;
	if (loops < 1 || loops > 0x7fffffff) {
		fprintf(stderr, "usage: kvm_smoke [N]  (1 <= N < 2^31)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	CHECK(api == KVM_API_VERSION, "KVM_GET_API_VERSION %d", api);
	printf("KVM API version %d\n", api);

	/* mov $0x42,%al; out %al,$0x10; hlt */
	static const uint8_t out42[] = { 0xb0, 0x42, 0xe6, PORT, 0xf4 };
	/* the same with 0x43, run in 32-bit protected mode */
	static const uint8_t out43[] = { 0xb0, 0x43, 0xe6, PORT, 0xf4 };
	struct vm v;
	uint32_t reason;

	/* 1. real mode, userspace irqchip */
	vm_create(kvm, &v, 0, REAL, out42, sizeof(out42));
	check_out(&v, vm_run(&v), 0x42, "real mode");
	reason = vm_run(&v);
	CHECK(reason == KVM_EXIT_HLT, "real mode: exit %u (%s), want HLT", reason,
	      exit_name(reason));
	if (reason == KVM_EXIT_HLT)
		printf("real mode: KVM_EXIT_HLT\n");
	vm_destroy(&v);

	/* 2. real mode with in-kernel irqchip and PIT: the HLT stays in the kernel */
	vm_create(kvm, &v, 1, REAL, out42, sizeof(out42));
	check_out(&v, vm_run(&v), 0x42, "irqchip+pit2");
	vm_destroy(&v);

	/* 3. 32-bit protected mode */
	vm_create(kvm, &v, 0, PROT32, out43, sizeof(out43));
	check_out(&v, vm_run(&v), 0x43, "protected mode");
	reason = vm_run(&v);
	CHECK(reason == KVM_EXIT_HLT, "protected mode: exit %u (%s), want HLT", reason,
	      exit_name(reason));
	if (reason == KVM_EXIT_HLT)
		printf("protected mode: KVM_EXIT_HLT\n");
	vm_destroy(&v);

	/*
	 * 4. exit cost: mov $loops,%ecx; 1: out %al,$0x10; dec %ecx; jnz 1b; hlt
	 * (real mode, so 32-bit operands need the 0x66 prefix).
	 */
	uint8_t loop[] = {
		0x66, 0xb9, loops & 0xff, (loops >> 8) & 0xff, (loops >> 16) & 0xff,
		(loops >> 24) & 0xff,       /* mov $loops,%ecx */
		0xe6, PORT,                 /* out %al,$0x10 */
		0x66, 0x49,                 /* dec %ecx */
		0x75, 0xfa,                 /* jnz -6 */
		0xf4,                       /* hlt */
	};
	vm_create(kvm, &v, 0, REAL, loop, sizeof(loop));
	long ios = 0;
	double t0 = now();
	for (;;) {
		reason = vm_run(&v);
		if (reason != KVM_EXIT_IO)
			break;
		ios++;
	}
	double dt = now() - t0;
	CHECK(reason == KVM_EXIT_HLT && ios == loops,
	      "loop: %ld IO exits then exit %u (%s), want %ld then HLT", ios, reason,
	      exit_name(reason), loops);
	printf("exit cost: %ld IO exits in %.3f s = %.2f us per exit (%.0f exits/s)\n",
	       ios, dt, dt * 1e6 / (ios ? ios : 1), ios / dt);
	vm_destroy(&v);

	close(kvm);
	if (failures) {
		printf("kvm_smoke: %d check(s) FAILED\n", failures);
		return 1;
	}
	printf("kvm_smoke: all checks passed\n");
	return 0;
}
