/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Empty read-side critical sections of liburcu's memb, mb, qsbr and bp flavours, through
 * their inlined fast paths (_LGPL_SOURCE, as a library that cares about the read side
 * would use them). The exported-function versions are in rcu_calls.c.
 */
#define _LGPL_SOURCE
#include "bench.h"

#include <urcu/urcu-bp.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

/* The empty asm keeps one iteration per pair even where a section compiles to nothing
 * (qsbr), so that every flavour carries the same loop overhead. */
#define SECTION_LOOP(flavour)                                                                      \
	static void sections_##flavour(uint64_t n)                                                 \
	{                                                                                          \
		for (uint64_t i = 0; i < n; i++) {                                                 \
			urcu_##flavour##_read_lock();                                              \
			urcu_##flavour##_read_unlock();                                            \
			__asm__ volatile("" ::: "memory");                                         \
		}                                                                                  \
	}

SECTION_LOOP(memb)
SECTION_LOOP(mb)
SECTION_LOOP(qsbr)
SECTION_LOOP(bp)

static void bp_enter(void)
{
	urcu_bp_register_thread();
}

static void bp_leave(void)
{
	urcu_bp_unregister_thread();
}

const struct rcu_flavour rcu_flavours[4] = {
    {"memb", urcu_memb_register_thread, urcu_memb_unregister_thread, sections_memb, rcu_calls_memb},
    {"mb", urcu_mb_register_thread, urcu_mb_unregister_thread, sections_mb, rcu_calls_mb},
    {"qsbr", urcu_qsbr_register_thread, urcu_qsbr_unregister_thread, sections_qsbr, rcu_calls_qsbr},
    {"bp", bp_enter, bp_leave, sections_bp, rcu_calls_bp},
};
