/* Argument checks every entry point taking a caller's array shares: the count of items times
 * the item size in bytes must not wrap (issue 16: predict walked off with n = SIZE_MAX), and
 * float inputs must be finite (NaN/Inf vanish in a ReLU and give plausible outputs). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/internal.h"

int tfx__check_count(const char *fn, size_t n, size_t per_item, size_t elem_size)
{
    size_t values, bytes;
    if (tfx__mul_size(n, per_item, &values) || tfx__mul_size(values, elem_size, &bytes))
        return tfx__error(TFX_EINVAL, "%s: n = %zu items of %zu x %zu bytes overflow", fn, n, per_item, elem_size);
    return TFX_OK;
}

/* Exponent bits all set: Inf or NaN. An OR of comparisons over a fixed block is one vector
 * compare and one OR per 4-16 floats; the exact index is looked up only on a hit. */
#define EXP_MASK 0x7f800000u
#define BLOCK 1024

static inline int nonfinite_bits(uint32_t u) { return (u & EXP_MASK) == EXP_MASK; }

TFX__CLONES static int block_has_nonfinite(const float *x)
{
    int bad = 0;
    for (size_t j = 0; j < BLOCK; j++) {
        uint32_t u;
        memcpy(&u, x + j, sizeof u);
        bad |= nonfinite_bits(u);
    }
    return bad;
}

static size_t first_nonfinite(const float *x, size_t count)
{
    size_t i = 0;
    for (; count - i >= BLOCK; i += BLOCK)
        if (block_has_nonfinite(x + i)) break;
    for (; i < count; i++)
        if (!isfinite(x[i])) return i;
    return count;
}

int tfx__check_finite(const char *fn, const char *what, const float *x, size_t count, size_t per_item)
{
    size_t i = first_nonfinite(x, count);
    if (i == count) return TFX_OK;
    const char *kind = isnan(x[i]) ? "NaN" : x[i] > 0 ? "+Inf" : "-Inf";
    return tfx__error(TFX_EINVAL, "%s: %s[%zu] (sample %zu) is not finite (%s)", fn, what, i,
                      per_item ? i / per_item : 0, kind);
}
