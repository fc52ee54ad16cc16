/* Gradient methods' pictures: tf-explain's transform_to_normalized_grayscale (U6) in compat
 * mode, channel reduction and min-max by default, then the grid (tfx_render_saliency).
 * docs/rendering.md lists each rule and where it comes from. */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "render/render.h"
#include "tfx/image.h"

/* ---- tf-explain U6 ---- */

static float gray_sum(const float *t, size_t i, int c, int take_abs)
{
    float s = 0.0f; /* tf.reduce_sum over the last axis, float32 */
    for (int k = 0; k < c; k++) s += take_abs ? fabsf(t[i * (size_t)c + k]) : t[i * (size_t)c + k];
    return s;
}

static void tfe_grayscale(const float *t, size_t n, size_t hw, int c, int take_abs, int saturate,
                          uint8_t *out)
{
    /* tf.image.per_image_standardization over the last three axes of (N, H, W), i.e. the whole
     * batch at once. Means are accumulated in double and rounded to float32 once. */
    size_t m = n * hw;
    double acc = 0.0;
    for (size_t i = 0; i < m; i++) acc += gray_sum(t, i, c, take_abs);
    float mean = (float)(acc / (double)m);
    acc = 0.0;
    for (size_t i = 0; i < m; i++) {
        float d = gray_sum(t, i, c, take_abs) - mean;
        acc += (double)(d * d);
    }
    float sd = sqrtf((float)(acc / (double)m));
    float min_sd = (float)(1.0 / sqrt((double)m));
    float s = sd > min_sd ? sd : min_sd;
    for (size_t i = 0; i < m; i++) {
        float z = (gray_sum(t, i, c, take_abs) - mean) / s;
        float v = 255.0f * z;
        out[i] = saturate ? tfx__u8_trunc_sat(v) : tfx__u8_wrap(v);
    }
}

void tfx__tfe_normalized_grayscale(const float *t, size_t n, size_t hw, int c, int saturate, uint8_t *out)
{
    tfe_grayscale(t, n, hw, c, 0, saturate, out);
}

/* ---- the picture ---- */

int tfx_render_saliency(const float *maps, size_t n, int height, int width, int channels,
                        const tfx_render_options *opts, tfx_image **out)
{
    static const char fn[] = "tfx_render_saliency";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(maps);
    TFX__CHECK_ARG(n > 0, "%s: n is 0", fn);
    TFX__CHECK_ARG(height > 0 && width > 0 && height <= TFX_IMAGE_MAX_SIDE && width <= TFX_IMAGE_MAX_SIDE,
                   "%s: map size %dx%d must be in 1..%d", fn, height, width, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(channels > 0 && channels <= 4096, "%s: channels %d must be in 1..4096", fn, channels);
    int rc = tfx__check_count(fn, n, (size_t)height * (size_t)width * (size_t)channels, sizeof(float));
    if (rc) return rc;
    tfx_render_options o;
    rc = tfx__render_options_copy(&o, opts, fn);
    if (rc) return rc;
    int rows, cols, th, tw;
    rc = tfx__render_layout(fn, &o, n, height, width, &th, &tw, &rows, &cols);
    if (rc) return rc;
    size_t hw = (size_t)height * (size_t)width, total;
    if (tfx__mul_size(hw, n, &total) || tfx__mul_size(total, (size_t)channels, &(size_t){0}))
        return tfx__error(TFX_EINVAL, "%s: %zu maps of %dx%dx%d overflow", fn, n, height, width, channels);
    uint8_t *gray = tfx__malloc(total);
    float *red = NULL;
    if (!gray) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    int compat = o.compat == TFX_COMPAT_TF_EXPLAIN;
    if (compat) {
        /* tf-explain: |x| (idempotent on its already-abs'ed input), U6 over the batch. */
        tfe_grayscale(maps, n, hw, channels, 1, o.saturate, gray);
    } else {
        red = tfx__malloc(total * sizeof(float));
        if (!red) {
            tfx__free(gray);
            return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
        }
        for (size_t i = 0; i < total; i++) {
            const float *px = maps + i * (size_t)channels;
            double acc = 0.0;
            for (int k = 0; k < channels; k++) {
                double a = fabs((double)px[k]);
                if (o.reduce == TFX_REDUCE_MAX_ABS) acc = (k == 0 || a > acc || isnan(a)) ? a : acc;
                else acc += a;
            }
            red[i] = (float)acc;
        }
        size_t group = o.per_image ? hw : total;
        for (size_t g = 0; g < total; g += group) {
            double mn, mx;
            tfx__finite_range(red + g, group, &mn, &mx);
            for (size_t i = g; i < g + group; i++) gray[i] = tfx__u8_round(255.0 * tfx__minmax_unit(red[i], mn, mx));
        }
        tfx__free(red);
    }
    int cmap = o.colormap == TFX_COLORMAP_DEFAULT ? TFX_COLORMAP_GRAY : o.colormap;
    int ch = cmap == TFX_COLORMAP_GRAY ? 1 : 3;
    const uint8_t *lut = tfx__colormap_lut(cmap);
    size_t thw = (size_t)th * (size_t)tw; /* the (scaled) tile */
    int scaled = th != height || tw != width;
    tfx_image *grid = NULL;
    rc = tfx_image_new(&grid, cols * tw, rows * th, ch);
    uint8_t *tile = rc ? NULL : tfx__malloc(thw * 3), *big = rc || !scaled ? NULL : tfx__malloc(thw);
    if (rc || !tile || (scaled && !big)) {
        tfx__free(gray);
        tfx__free(tile);
        tfx__free(big);
        tfx_image_free(grid);
        return rc ? tfx__error_prefix("%s", fn) : tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    for (size_t s = 0; s < n; s++) {
        const uint8_t *g = gray + s * hw;
        /* Scale the grey map (colormap indices), then colour: a colour between two indices is
         * the colormap's own, not a blend of two colours. */
        if (scaled) {
            rc = tfx__scale_u8(g, height, width, 1, big, th, tw, o.scale_mode);
            if (rc) {
                tfx__free(gray);
                tfx__free(tile);
                tfx__free(big);
                tfx_image_free(grid);
                return tfx__error_prefix("%s", fn);
            }
            g = big;
        }
        if (ch == 3) {
            for (size_t i = 0; i < thw; i++) memcpy(tile + 3 * i, lut + 3 * (size_t)g[i], 3);
            g = tile;
        }
        tfx__grid_put(grid, cols, s, g, th, tw);
    }
    /* Compat: a colormap applies to the finished grid, padding (index 0) included, as
     * cv2.applyColorMap on tf-explain's picture would; by default padding stays black. */
    if (compat && ch == 3)
        for (size_t t = n; t < (size_t)rows * (size_t)cols; t++) tfx__grid_fill(grid, cols, t, th, tw, lut);
    tfx__free(big);
    tfx__free(tile);
    tfx__free(gray);
    *out = grid;
    return TFX_OK;
}
