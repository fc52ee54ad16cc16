/* The setters of the library's test knobs (core/hooks.h). */
#include "testing.h"

#include "core/hooks.h"

void tfx__alloc_fail_after(long k)
{
    tfx__hook_alloc_fail_after = k;
    tfx__hook_alloc_count = 0;
}

long tfx__alloc_count(void) { return tfx__hook_alloc_count; }

void tfx__sgemm_wide_force(int level) { tfx__hook_isa_level = level; }

void tfx__winograd_force(int m) { tfx__hook_winograd = m; }

void tfx__threads_force(int threads) { tfx__hook_threads = threads; }

void tfx__file_fail_after_bytes(long bytes) { tfx__hook_file_fail_after = bytes; }

void tfx__tb_fail_write_after(long long k) { tfx__hook_tb_write_budget = k; }
