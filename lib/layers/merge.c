/* Shared by the multi-input kinds: add.c, concatenate.c, multiply.c (merge.h). */
#include <stdio.h>

#include "layers/merge.h"

const char *tfx__shape_str(tfx__shape s, char *buf, size_t cap)
{
    if (s.flat)
        snprintf(buf, cap, "flat %d", s.c);
    else
        snprintf(buf, cap, "%dx%dx%d", s.h, s.w, s.c);
    return buf;
}

int tfx__merge_mismatch(const char *type, const tfx__shape *ins, size_t j, size_t ref, const char *needs)
{
    char a[48], b[48];
    return tfx__error(TFX_ESHAPE, "input %zu has shape %s, input %zu has %s: %s needs %s", j,
                      tfx__shape_str(ins[j], a, sizeof a), ref, tfx__shape_str(ins[ref], b, sizeof b), type, needs);
}

int tfx__merge_check_count(const char *type, size_t k)
{
    if (k < 2) return tfx__error(TFX_EINVAL, "%s needs at least 2 inputs (got %zu)", type, k);
    return TFX_OK;
}

int tfx__merge_config_read(const uint8_t *src, tfx__layer_config *cfg)
{
    (void)src;
    (void)cfg;
    return TFX_OK;
}
