/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The C side of the firmware guests: start32.s calls guest_main() in 32-bit protected
 * mode with flat segments and interrupts off, and lib32.s supplies COM1 output, the
 * verdict and PCI configuration access. Built freestanding with gcc -m32: no libc, no
 * floating point, no 64-bit division (there is no libgcc to provide it).
 */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;

#define NULL ((void *)0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define V_PASS      1
#define EXIT_PORT   0x501
#define ECAM_BASE   0xb0000000u
#define CFG_CF8     0
#define CFG_ECAM    1
#define BDF(b, d, f) (((u32)(b) << 8) | ((u32)(d) << 3) | (u32)(f))

int guest_main(void);
void *memset(void *p, int c, u32 n);
void *memcpy(void *d, const void *s, u32 n);

/* ---- ports and memory ---- */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline u32 inl(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline u32 mmio_read32(u32 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u32 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline u16 mmio_read16(u32 addr) { return *(volatile u16 *)addr; }
static inline void mmio_write16(u32 addr, u16 v) { *(volatile u16 *)addr = v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
/* A locked instruction: a full fence on x86, so stores before it are seen first. */
static inline void mfence(void) { __asm__ volatile("lock orl $0, (%%esp)" ::: "memory", "cc"); }
static inline u32 atomic_inc(volatile u32 *p)
{
	u32 v = 1;
	__asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p)::"memory", "cc");
	return v + 1;
}
static inline u32 atomic_read(const volatile u32 *p) { return *p; }
static inline void atomic_write(volatile u32 *p, u32 v)
{
	*p = v;
	mfence();
}

/* ---- COM1 and the verdict (lib32.s) ---- */

static inline void put_str(const char *s) { __asm__ volatile("call puts" ::"S"(s) : "memory"); }
static inline void put_hex(u32 v) { __asm__ volatile("call puthex32" ::"a"(v) : "memory"); }
static inline void put_dec(u32 v) { __asm__ volatile("call putdec" ::"a"(v) : "memory"); }
static inline void put_hex64(u64 v)
{
	if (v >> 32)
		put_hex((u32)(v >> 32));
	put_hex((u32)v);
}
static inline __attribute__((noreturn)) void exit_verdict(u32 v)
{
	__asm__ volatile("jmp exit_verdict" ::"a"(v));
	__builtin_unreachable();
}

/* ---- PCI configuration (lib32.s), through CF8/CFC or ECAM; not for two vCPUs at once ---- */

extern volatile u8 cfg_method;

static inline u32 cfg_read(int method, u32 bdf, u32 reg, unsigned size)
{
	u32 v;
	cfg_method = (u8)method;
	if (size == 1)
		__asm__ volatile("call cfg_read8" : "=a"(v) : "b"(bdf), "c"(reg) : "memory");
	else if (size == 2)
		__asm__ volatile("call cfg_read16" : "=a"(v) : "b"(bdf), "c"(reg) : "memory");
	else
		__asm__ volatile("call cfg_read32" : "=a"(v) : "b"(bdf), "c"(reg) : "memory");
	return v;
}

static inline void cfg_write(int method, u32 bdf, u32 reg, unsigned size, u32 v)
{
	cfg_method = (u8)method;
	if (size == 1)
		__asm__ volatile("call cfg_write8" ::"a"(v), "b"(bdf), "c"(reg) : "memory");
	else if (size == 2)
		__asm__ volatile("call cfg_write16" ::"a"(v), "b"(bdf), "c"(reg) : "memory");
	else
		__asm__ volatile("call cfg_write32" ::"a"(v), "b"(bdf), "c"(reg) : "memory");
}

/* ---- other vCPUs (start32.s) ---- */

extern volatile u32 ap_online;
void ap_start(void (*entry)(unsigned cpu));

#endif
