/* Bilinear resize with half-pixel centres, computed the way OpenCV 4.6's cv2.resize(INTER_LINEAR)
 * does on x86 (SSE build), so tf-explain's heatmaps are reproduced bit for bit:
 * - same size: a copy;
 * - exact 2x2 downscale: OpenCV switches to INTER_AREA, the mean of each 2x2 block, summed as
 *   (a + b) + (c + d) in its 4-wide SIMD blocks (one channel) and ((a + b) + c) + d elsewhere;
 * - otherwise separable: columns first, src x = float((dx + 0.5) * sw/dw - 0.5), clamped to the
 *   edge with weight 0 (left) or a plain copy (right); then rows with the same formula but
 *   *unclamped* weights on clipped row indices (so an edge row is r*(1-f) + r*f).
 * Weights are float; sums are float (float32 maps) or double (float64 maps), never fused
 * multiply-adds (C11 mode compiles with -ffp-contract=off).
 * Mathematically this is torch's F.interpolate(bilinear, align_corners=False) and TF2's
 * tf.image.resize(bilinear, no antialias); tests/render checks both claims. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "render/render.h"
#include "tfx/image.h"

typedef struct axis_tab {
    int *i0, *i1; /* source indices */
    float *w0, *w1;
} axis_tab;

static int is_area2(int sh, int sw, int dh, int dw)
{
    double sx = 1.0 / ((double)dw / sw), sy = 1.0 / ((double)dh / sh);
    double ix = floor(sx + 0.5), iy = floor(sy + 0.5);
    return fabs(sx - ix) < DBL_EPSILON && fabs(sy - iy) < DBL_EPSILON && ix == 2.0 && iy == 2.0;
}

/* Columns: clamped as OpenCV's HResizeLinear (left edge weight 0, right edge copy: i1 = -1). */
static void x_tab(int s, int d, axis_tab *t)
{
    double scale = 1.0 / ((double)d / s);
    for (int x = 0; x < d; x++) {
        float f = (float)((x + 0.5) * scale - 0.5);
        int i = (int)floorf(f);
        f -= (float)i;
        if (i < 0) { f = 0.0f; i = 0; }
        if (i + 1 >= s) { /* OpenCV's xmax region: one sample, no second term */
            t->i0[x] = s - 1 < i ? s - 1 : i;
            t->i1[x] = -1;
            t->w0[x] = 1.0f;
            t->w1[x] = 0.0f;
            continue;
        }
        t->i0[x] = i;
        t->i1[x] = i + 1;
        t->w0[x] = 1.0f - f;
        t->w1[x] = f;
    }
}

/* Rows: weights from the unclamped position, indices clipped. */
static void y_tab(int s, int d, axis_tab *t)
{
    double scale = 1.0 / ((double)d / s);
    for (int y = 0; y < d; y++) {
        float f = (float)((y + 0.5) * scale - 0.5);
        int i = (int)floorf(f);
        f -= (float)i;
        int a = i < 0 ? 0 : (i > s - 1 ? s - 1 : i);
        int b = i + 1 < 0 ? 0 : (i + 1 > s - 1 ? s - 1 : i + 1);
        t->i0[y] = a;
        t->i1[y] = b;
        t->w0[y] = 1.0f - f;
        t->w1[y] = f;
    }
}

static int tab_alloc(axis_tab *t, int n)
{
    t->i0 = tfx__malloc((size_t)n * sizeof(int));
    t->i1 = tfx__malloc((size_t)n * sizeof(int));
    t->w0 = tfx__malloc((size_t)n * sizeof(float));
    t->w1 = tfx__malloc((size_t)n * sizeof(float));
    return t->i0 && t->i1 && t->w0 && t->w1 ? 0 : -1;
}

static void tab_free(axis_tab *t)
{
    tfx__free(t->i0);
    tfx__free(t->i1);
    tfx__free(t->w0);
    tfx__free(t->w1);
}

/* One implementation for float and double sums (T): OpenCV uses the element type as work type. */
#define DEFINE_RESIZE(NAME, T)                                                                     \
    int NAME(const T *src, int sh, int sw, int c, T *dst, int dh, int dw)                          \
    {                                                                                              \
        size_t row_s = (size_t)sw * (size_t)c, row_d = (size_t)dw * (size_t)c;                     \
        if (sh == dh && sw == dw) {                                                                \
            memcpy(dst, src, (size_t)sh * row_s * sizeof(T));                                      \
            return TFX_OK;                                                                         \
        }                                                                                          \
        if (is_area2(sh, sw, dh, dw)) {                                                            \
            for (int y = 0; y < dh; y++) {                                                         \
                const T *r0 = src + (size_t)(2 * y) * row_s, *r1 = r0 + row_s;                     \
                T *o = dst + (size_t)y * row_d;                                                    \
                int vec = (sizeof(T) == sizeof(float) && c == 1) ? (dw / 4) * 4                     \
                          : (sizeof(T) == sizeof(float) && c == 4) ? dw : 0;                       \
                for (int x = 0; x < dw; x++)                                                       \
                    for (int k = 0; k < c; k++) {                                                  \
                        size_t p = (size_t)(2 * x) * c + k;                                        \
                        T a = r0[p], b = r0[p + c], cc = r1[p], d = r1[p + c];                     \
                        T sum = x < vec ? (a + b) + (cc + d) : ((a + b) + cc) + d;                 \
                        o[(size_t)x * c + k] = sum * (T)0.25f;                                     \
                    }                                                                              \
            }                                                                                      \
            return TFX_OK;                                                                         \
        }                                                                                          \
        axis_tab tx = {0}, ty = {0};                                                               \
        size_t tmp_n;                                                                              \
        T *tmp = NULL;                                                                             \
        if (!tfx__mul_size((size_t)sh, row_d, &tmp_n) && tmp_n <= SIZE_MAX / sizeof(T))            \
            tmp = tfx__malloc(tmp_n * sizeof(T));                                                  \
        if (!tmp || tab_alloc(&tx, dw) || tab_alloc(&ty, dh)) {                                    \
            tfx__free(tmp);                                                                        \
            tab_free(&tx);                                                                         \
            tab_free(&ty);                                                                         \
            return tfx__error(TFX_ENOMEM, "resize: out of memory (%dx%d -> %dx%d)", sh, sw, dh, dw); \
        }                                                                                          \
        x_tab(sw, dw, &tx);                                                                        \
        y_tab(sh, dh, &ty);                                                                        \
        for (int y = 0; y < sh; y++) {                                                             \
            const T *s = src + (size_t)y * row_s;                                                  \
            T *o = tmp + (size_t)y * row_d;                                                        \
            for (int x = 0; x < dw; x++) {                                                         \
                size_t a = (size_t)tx.i0[x] * c;                                                   \
                if (tx.i1[x] < 0) {                                                                \
                    for (int k = 0; k < c; k++) o[(size_t)x * c + k] = s[a + k];                   \
                } else {                                                                           \
                    size_t b = (size_t)tx.i1[x] * c;                                               \
                    T w0 = (T)tx.w0[x], w1 = (T)tx.w1[x];                                          \
                    for (int k = 0; k < c; k++) {                                                  \
                        T p = s[a + k] * w0, q = s[b + k] * w1;                                    \
                        o[(size_t)x * c + k] = p + q;                                              \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int y = 0; y < dh; y++) {                                                             \
            const T *r0 = tmp + (size_t)ty.i0[y] * row_d, *r1 = tmp + (size_t)ty.i1[y] * row_d;    \
            T b0 = (T)ty.w0[y], b1 = (T)ty.w1[y];                                                  \
            T *o = dst + (size_t)y * row_d;                                                        \
            for (size_t i = 0; i < row_d; i++) {                                                   \
                T p = r0[i] * b0, q = r1[i] * b1;                                                  \
                o[i] = p + q;                                                                      \
            }                                                                                      \
        }                                                                                          \
        tfx__free(tmp);                                                                            \
        tab_free(&tx);                                                                             \
        tab_free(&ty);                                                                             \
        return TFX_OK;                                                                             \
    }

DEFINE_RESIZE(tfx__resize_f32, float)
DEFINE_RESIZE(tfx__resize_f64, double)

int tfx_resize_bilinear(const float *src, int src_h, int src_w, int channels, float *dst, int dst_h,
                        int dst_w)
{
    TFX__CHECK_NULL(src);
    TFX__CHECK_NULL(dst);
    TFX__CHECK_ARG(src_h > 0 && src_w > 0 && src_h <= TFX_IMAGE_MAX_SIDE && src_w <= TFX_IMAGE_MAX_SIDE,
                   "tfx_resize_bilinear: source size %dx%d must be in 1..%d", src_h, src_w, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(dst_h > 0 && dst_w > 0 && dst_h <= TFX_IMAGE_MAX_SIDE && dst_w <= TFX_IMAGE_MAX_SIDE,
                   "tfx_resize_bilinear: destination size %dx%d must be in 1..%d", dst_h, dst_w,
                   TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(channels > 0 && channels <= 4096, "tfx_resize_bilinear: channels %d must be in 1..4096",
                   channels);
    size_t n;
    if (tfx__mul_size((size_t)dst_h * (size_t)dst_w, (size_t)channels, &n) ||
        tfx__mul_size((size_t)src_h * (size_t)dst_w, (size_t)channels, &n))
        return tfx__error(TFX_EINVAL, "tfx_resize_bilinear: sizes overflow");
    return tfx__resize_f32(src, src_h, src_w, channels, dst, dst_h, dst_w);
}
