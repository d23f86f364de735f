/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz-core: libFuzzer's bytes drive the core's differential harness (tests/model/harness.h):
 * a sequence of address-space operations applied both to the library and to the reference
 * model, every view, event, access and return code checked against the model. The
 * differential test drives the same harness with bytes from a seeded generator.
 *
 * A difference aborts after a report on stderr. FUZZ_TRACE=1 prints every operation;
 * FUZZ_NO_DUMPS=1 leaves out the dumps, to explore past a failure in them.
 */
#include "model/harness.h"

#include <stdlib.h>

#define MAX_OPS 400 /* per input, so that one execution stays short */

static bool env_flag(const char *name)
{
	const char *v = getenv(name);
	return v && *v && *v != '0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness_opts opts = {
	    .max_ops = MAX_OPS,
	    .check_seed = 0, /* an input visits the same addresses at every replay */
	    .origin = "fuzz-core input (replay: FUZZ_TRACE=1 fuzz-core FILE)",
	    .trace = env_flag("FUZZ_TRACE"),
	    .no_dumps = env_flag("FUZZ_NO_DUMPS"),
	};

	if (harness_run(data, size, &opts, NULL))
		abort();
	return 0;
}
