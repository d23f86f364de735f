/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libbusmap: guest address spaces for virtual machine monitors.
 *
 * bm_system   owns the writer lock, transactions and reclamation (busmap/system.h)
 * bm_region   io, ram, container and alias regions, changed through their handle
 *             (busmap/region.h)
 * bm_space    an address space, its flat view, listeners, conflicts and dumps
 *             (busmap/space.h)
 * bm_vcpu     a vCPU thread's context for lock-free bm_read/bm_write (busmap/dispatch.h)
 */
#ifndef BUSMAP_BUSMAP_H
#define BUSMAP_BUSMAP_H

#include <busmap/dispatch.h>
#include <busmap/pci.h>
#include <busmap/pci_alloc.h>
#include <busmap/pci_state.h>
#include <busmap/region.h>
#include <busmap/space.h>
#include <busmap/system.h>

#define BUSMAP_VERSION "0.1.0"

#endif
