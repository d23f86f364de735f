/* SPDX-License-Identifier: BSD-2-Clause */
#include "bhyve_host.h"

int vcpu_id(struct vcpu *vcpu)
{
	return vcpu->id;
}

int bench_bhyve_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
                        void *arg1, long arg2)
{
	(void)vcpu;
	(void)addr;
	(void)size;
	(void)arg1;
	if (dir == MEM_F_READ)
		*val = (uint64_t)arg2;
	return 0;
}
