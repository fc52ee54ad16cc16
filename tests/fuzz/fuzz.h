/* Shared by libtfx's fuzz targets: the libFuzzer entry point and a small reader that turns
 * the input bytes into typed values (so mutations of one field do not shift the others much). */
#ifndef TFX_FUZZ_H
#define TFX_FUZZ_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    const uint8_t *p;
    size_t n;
} fz;

/* Bytes run out as zeros, so every input is a complete program. */
static inline uint32_t fz_u32(fz *f, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint32_t)(f->n ? *f->p : 0) << (8 * i);
        if (f->n) f->p++, f->n--;
    }
    return v;
}
static inline unsigned fz_byte(fz *f) { return fz_u32(f, 1); }

/* Mostly small values in [lo, hi], sometimes an edge value (0, -1, INT_MIN, INT_MAX, ...).
 * Edges are limited to values libtfx must refuse or that stay cheap, so the fuzzer hunts
 * for crashes rather than for legitimately huge (and slow) requests. */
static inline int fz_int(fz *f, int lo, int hi)
{
    static const int edge[] = {0, -1, INT_MIN, INT_MAX, INT_MAX - 1, (1 << 20) + 1, -(1 << 20), 2};
    unsigned sel = fz_byte(f);
    if (sel >= 240) return edge[sel & 7];
    if (hi <= lo) return lo;
    return lo + (int)(fz_u32(f, 2) % (uint32_t)(hi - lo + 1));
}

/* Any float bit pattern in 1 of 8 cases (NaN, Inf, denormals), else a small decimal. */
static inline float fz_float(fz *f, float lo, float hi)
{
    unsigned sel = fz_byte(f);
    if (sel >= 224) {
        uint32_t b = fz_u32(f, 4);
        float v;
        memcpy(&v, &b, sizeof v);
        return v;
    }
    return lo + (hi - lo) * (float)fz_u32(f, 2) / 65535.0f;
}

/* An options-struct version: mostly the current one, sometimes 0, a future one or garbage. */
static inline unsigned fz_version(fz *f, unsigned current)
{
    unsigned sel = fz_byte(f);
    if (sel < 200) return current;
    if (sel < 215) return 0;
    if (sel < 230) return current + 1;
    return fz_u32(f, 4);
}

#endif
