/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MC146818 real-time clock and its 128 bytes of CMOS at ports 0x70/0x71, holding what
 * QEMU's pc machine stores there for the BIOS: memory sizes, CPU count, boot order.
 */
#include "devices.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define CMOS_SIZE 128

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	CMOS_FLOPPY = 0x10,
	CMOS_DISKS = 0x12,
	CMOS_EQUIPMENT = 0x14,
	CMOS_BASE_MEM = 0x15, /* KiB below 640 KiB, 16 bits */
	CMOS_EXT_MEM = 0x17,  /* KiB above 1 MiB, 16 bits, again at 0x30 */
	CMOS_EXT_MEM_BIOS = 0x30,
	RTC_CENTURY = 0x32,
	CMOS_MEM_16M = 0x34, /* 64 KiB units above 16 MiB, 16 bits */
	CMOS_BOOT_FLAG1 = 0x38,
	CMOS_DISK_TRANS = 0x39,
	CMOS_BOOT_FLAG2 = 0x3d,
	CMOS_MEM_4G = 0x5b, /* 64 KiB units above 4 GiB, 24 bits */
	CMOS_CPUS = 0x5f,   /* number of CPUs - 1 */
};

#define REG_A_UIP 0x80
#define REG_B_SET 0x80
#define REG_B_UIE 0x10
#define REG_B_BIN 0x04
#define REG_B_24H 0x02
#define REG_D_VRT 0x80
#define HOUR_PM   0x80
#define NMI_MASK  0x80

struct rtc {
	struct vm *vm;
	bm_region *region;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[CMOS_SIZE];
	/* Guest time minus the host's UTC, in seconds: what the guest set the clock to. */
	int64_t offset;
};

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Hinnant's algorithms). */
static int64_t days_from_date(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void date_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static int64_t host_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static bool binary_mode(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & REG_B_BIN;
}

static uint8_t encode(const struct rtc *r, unsigned v)
{
	v %= 100;
	return (uint8_t)(binary_mode(r) ? v : (v / 10) << 4 | v % 10);
}

static unsigned decode(const struct rtc *r, uint8_t v)
{
	return binary_mode(r) ? v : (v >> 4) * 10u + (v & 0x0f);
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static bool is_clock_reg(unsigned i)
{
	return i == RTC_SECONDS || i == RTC_MINUTES || i == RTC_HOURS || i == RTC_WEEKDAY ||
	       i == RTC_DAY || i == RTC_MONTH || i == RTC_YEAR || i == RTC_CENTURY;
}

/* Writes the guest's current time into the clock registers, in the format register B
 * asks for. */
static void load_clock(struct rtc *r)
{
	int64_t t = host_now() + r->offset;
	int64_t days = floor_div(t, 86400);
	int64_t secs = t - days * 86400;
	int64_t year;
	unsigned month, day;
	date_from_days(days, &year, &month, &day);
	unsigned hour = (unsigned)(secs / 3600);
	if (year < 0)
		year = 0;

	r->cmos[RTC_SECONDS] = encode(r, (unsigned)(secs % 60));
	r->cmos[RTC_MINUTES] = encode(r, (unsigned)(secs / 60 % 60));
	if (r->cmos[RTC_REG_B] & REG_B_24H) {
		r->cmos[RTC_HOURS] = encode(r, hour);
	} else {
		r->cmos[RTC_HOURS] = encode(r, hour % 12 ? hour % 12 : 12);
		if (hour >= 12)
			r->cmos[RTC_HOURS] |= HOUR_PM;
	}
	/* 1970-01-01 was a Thursday; the register counts Sunday as 1. */
	r->cmos[RTC_WEEKDAY] = encode(r, (unsigned)((days % 7 + 11) % 7) + 1);
	r->cmos[RTC_DAY] = encode(r, day);
	r->cmos[RTC_MONTH] = encode(r, month);
	r->cmos[RTC_YEAR] = encode(r, (unsigned)(year % 100));
	r->cmos[RTC_CENTURY] = encode(r, (unsigned)(year / 100 % 100));
}

/* Takes the clock registers as the guest's new time. Out-of-range fields are clamped, so
 * whatever the guest wrote stays a date within years 0..9999. */
static void store_clock(struct rtc *r)
{
	unsigned sec = clamp(decode(r, r->cmos[RTC_SECONDS]), 0, 59);
	unsigned min = clamp(decode(r, r->cmos[RTC_MINUTES]), 0, 59);
	uint8_t h = r->cmos[RTC_HOURS];
	unsigned hour;
	if (r->cmos[RTC_REG_B] & REG_B_24H) {
		hour = clamp(decode(r, h), 0, 23);
	} else {
		hour = clamp(decode(r, h & ~HOUR_PM), 1, 12) % 12;
		if (h & HOUR_PM)
			hour += 12;
	}
	unsigned day = clamp(decode(r, r->cmos[RTC_DAY]), 1, 31);
	unsigned month = clamp(decode(r, r->cmos[RTC_MONTH]), 1, 12);
	unsigned year = clamp(decode(r, r->cmos[RTC_YEAR]), 0, 99) +
	                100 * clamp(decode(r, r->cmos[RTC_CENTURY]), 0, 99);
	int64_t t = days_from_date(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
	r->offset = t - host_now();
}

static uint8_t data_read(struct rtc *r)
{
	unsigned i = r->index;
	if (is_clock_reg(i) && !(r->cmos[RTC_REG_B] & REG_B_SET))
		load_clock(r);
	uint8_t ret = r->cmos[i];
	if (i == RTC_REG_C)
		r->cmos[RTC_REG_C] = 0; /* reading acknowledges the flags */
	return ret;
}

static void data_write(struct rtc *r, uint8_t val)
{
	unsigned i = r->index;
	bool set_mode = r->cmos[RTC_REG_B] & REG_B_SET;
	switch (i) {
	case RTC_REG_A:
		/* Update-in-progress is the chip's to report; it never stays on here. */
		r->cmos[i] = val & ~REG_A_UIP;
		break;
	case RTC_REG_B:
		if (val & REG_B_SET)
			val &= ~REG_B_UIE;
		if ((val & REG_B_SET) && !set_mode)
			load_clock(r); /* the registers freeze at the current time */
		r->cmos[i] = val;
		if (!(val & REG_B_SET) && set_mode)
			store_clock(r);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		if (is_clock_reg(i) && !set_mode) {
			load_clock(r);
			r->cmos[i] = val;
			store_clock(r);
		} else {
			r->cmos[i] = val;
		}
		break;
	}
}

static int rtc_read(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t *value)
{
	(void)vcpu;
	(void)size;
	struct rtc *r = opaque;
	if (offset == 0) {
		*value = 0xff; /* the index register cannot be read back */
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	*value = data_read(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int rtc_write(void *opaque, bm_vcpu *vcpu, uint64_t offset, unsigned size, uint64_t value)
{
	(void)vcpu;
	(void)size;
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	if (offset == 0)
		r->index = (uint8_t)value & ~NMI_MASK; /* no NMI to mask */
	else
		data_write(r, (uint8_t)value);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static const struct bm_region_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
    .valid_sizes = BM_ACCESS_ALL,
    .impl_sizes = BM_ACCESS_1,
};

static void set16(uint8_t *cmos, unsigned at, uint64_t v)
{
	cmos[at] = (uint8_t)v;
	cmos[at + 1] = (uint8_t)(v >> 8);
}

/* What QEMU's pc_cmos_init stores, from the same sizes. */
static void init_cmos(struct rtc *r, const struct vm *vm)
{
	uint8_t *c = r->cmos;
	uint64_t low = vm->below_4g, high = vm->ram_size - vm->below_4g;
	const uint64_t kib = 1024, mib = 1024 * kib;

	c[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
	c[RTC_REG_B] = REG_B_24H;
	c[RTC_REG_D] = REG_D_VRT;

	set16(c, CMOS_BASE_MEM, low / kib < 640 ? low / kib : 640);
	uint64_t ext = low > mib ? (low - mib) / kib : 0;
	set16(c, CMOS_EXT_MEM, ext < 0xffff ? ext : 0xffff);
	set16(c, CMOS_EXT_MEM_BIOS, ext < 0xffff ? ext : 0xffff);
	uint64_t above16 = low > 16 * mib ? (low - 16 * mib) / (64 * kib) : 0;
	set16(c, CMOS_MEM_16M, above16 < 0xffff ? above16 : 0xffff);
	uint64_t above4g = high / (64 * kib);
	c[CMOS_MEM_4G] = (uint8_t)above4g;
	c[CMOS_MEM_4G + 1] = (uint8_t)(above4g >> 8);
	c[CMOS_MEM_4G + 2] = (uint8_t)(above4g >> 16);

	/* A count that does not fit reads 0, so a BIOS that only knows CMOS fails plainly. */
	c[CMOS_CPUS] = vm->ncpus > 0xff ? 0 : (uint8_t)(vm->ncpus - 1);

	/* QEMU's default boot order "cad": hard disk, floppy, CD-ROM; floppy signature
	 * checked. */
	c[CMOS_BOOT_FLAG2] = 0x1 << 4 | 0x2;
	c[CMOS_BOOT_FLAG1] = 0x3 << 4;

	c[CMOS_FLOPPY] = 0; /* no floppy drives */
	c[CMOS_DISKS] = 0;  /* no IDE disks */
	c[CMOS_DISK_TRANS] = 0;
	c[CMOS_EQUIPMENT] = 0x02 | 0x04; /* FPU, PS/2 mouse */
}

int rtc_new(struct vm *vm, struct rtc **out)
{
	if (!vm || !out)
		return -EINVAL;
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->vm = vm;
	pthread_mutex_init(&r->lock, NULL);
	init_cmos(r, vm);
	load_clock(r);

	int err = vm_add_io_region(vm, vm->io, "rtc", 0x70, 2, &rtc_ops, r, &r->region);
	if (err) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void rtc_free(void *dev)
{
	struct rtc *r = dev;
	if (!r)
		return;
	bm_region_destroy(r->region);
	bm_synchronize(r->vm->sys);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
