/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Empty read-side critical sections through liburcu's exported functions (no _LGPL_SOURCE):
 * the price of a read lock that is not inlined. (qsbr's are empty inline functions even
 * here, unless liburcu is built for debugging.) Same loop and barrier as rcu_flavours.c.
 */
#include "bench.h"

#include <urcu/urcu-bp.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

#define CALL_LOOP(flavour)                                                                         \
	void rcu_calls_##flavour(uint64_t n)                                                       \
	{                                                                                          \
		for (uint64_t i = 0; i < n; i++) {                                                 \
			urcu_##flavour##_read_lock();                                              \
			urcu_##flavour##_read_unlock();                                            \
			__asm__ volatile("" ::: "memory");                                         \
		}                                                                                  \
	}

CALL_LOOP(memb)
CALL_LOOP(mb)
CALL_LOOP(qsbr)
CALL_LOOP(bp)
