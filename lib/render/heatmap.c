/* Normalisation and heatmap overlays: uint8 casts, the render options, min-max, tf-explain's
 * image_to_uint_255 (U3) and heatmap_display (U4), and the public tfx_render_heatmap (saliency
 * pictures: saliency.c). Compat mode repeats tf-explain's float32 (or float64)
 * arithmetic step by step; docs/rendering.md lists each rule and where it comes from. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/internal.h"
#include "core/options.h"
#include "render/render.h"
#include "tfx/image.h"

/* ---- casts ---- */

uint8_t tfx__u8_wrap(double v)
{
    /* x86 cvttss2si: out-of-range and NaN give INT_MIN, whose low byte is 0. */
    if (!(fabs(v) < 2147483648.0)) return 0;
    return (uint8_t)(uint32_t)(int32_t)v;
}

uint8_t tfx__u8_trunc_sat(double v)
{
    if (!(v > 0.0)) return 0; /* NaN, negatives */
    if (v >= 255.0) return 255;
    return (uint8_t)v;
}

uint8_t tfx__u8_round(double v)
{
    if (!(v > 0.0)) return 0;
    if (v >= 254.5) return 255;
    return (uint8_t)floor(v + 0.5);
}

/* ---- options ---- */

/* Version 1 ended before scale_mode (version 2: tile upscaling). */
static const size_t render_options_older[] = {offsetof(tfx_render_options, scale_mode)};
TFX__OPTIONS_DESC_VERSIONS(render_options, tfx_render_options, TFX_RENDER_OPTIONS_VERSION, TFX_RENDER_OPTIONS_INIT,
                           render_options_older);

int tfx_render_options_init(tfx_render_options *opts, unsigned version)
{
    return tfx__options_init(&render_options, opts, version, "tfx_render_options_init");
}

/* The version-2 fields: each in range, then one consistent request (docs/rendering.md). */
static int check_scale(const tfx_render_options *o, const char *fn)
{
    if (o->scale_mode < TFX_SCALE_NONE || o->scale_mode > TFX_SCALE_BILINEAR)
        return tfx__error(TFX_EINVAL, "%s: unknown scale_mode %d (must be 0..%d)", fn, o->scale_mode,
                          TFX_SCALE_BILINEAR);
    if (o->scale < 0 || o->scale > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: scale %d must be in 0..%d", fn, o->scale, TFX_IMAGE_MAX_SIDE);
    if (o->tile_height < 0 || o->tile_height > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: tile_height %d must be in 0..%d", fn, o->tile_height, TFX_IMAGE_MAX_SIDE);
    if (o->tile_width < 0 || o->tile_width > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: tile_width %d must be in 0..%d", fn, o->tile_width, TFX_IMAGE_MAX_SIDE);
    int sized = o->tile_height > 0 || o->tile_width > 0;
    if (o->scale_mode == TFX_SCALE_NONE) {
        if (o->scale > 0 || sized) /* refused rather than ignored: the caller asked for something */
            return tfx__error(TFX_EINVAL, "%s: scale %d / tile_height %d / tile_width %d given with scale_mode 0 "
                                          "(TFX_SCALE_NONE): set scale_mode to TFX_SCALE_NEAREST or _BILINEAR",
                              fn, o->scale, o->tile_height, o->tile_width);
        return TFX_OK;
    }
    if (o->compat == TFX_COMPAT_TF_EXPLAIN)
        return tfx__error(TFX_EINVAL, "%s: scale_mode %d in compat mode: tf-explain's pictures keep their size", fn,
                          o->scale_mode);
    if (o->scale > 0 && sized)
        return tfx__error(TFX_EINVAL, "%s: scale %d and tile_height %d / tile_width %d are exclusive", fn, o->scale,
                          o->tile_height, o->tile_width);
    if (o->scale == 0 && !sized)
        return tfx__error(TFX_EINVAL, "%s: scale_mode %d needs scale or tile_height / tile_width", fn, o->scale_mode);
    return TFX_OK;
}

int tfx__render_options_copy(tfx_render_options *dst, const tfx_render_options *src, const char *fn)
{
    int rc = tfx__options_copy(&render_options, dst, src, fn);
    if (rc) return rc;
    if (dst->compat != TFX_COMPAT_NONE && dst->compat != TFX_COMPAT_TF_EXPLAIN)
        return tfx__error(TFX_EINVAL, "%s: unknown compat mode %d (compat must be 0 or 1)", fn, dst->compat);
    if (dst->colormap < TFX_COLORMAP_DEFAULT || dst->colormap > TFX_COLORMAP_JET)
        return tfx__error(TFX_EINVAL, "%s: unknown colormap %d (must be 0..%d)", fn, dst->colormap, TFX_COLORMAP_JET);
    if (!(dst->image_weight >= 0.0f && dst->image_weight <= 1.0f))
        return tfx__error(TFX_EINVAL, "%s: image_weight %g must be in [0, 1]", fn, (double)dst->image_weight);
    if (!(dst->heatmap_weight <= 1.0f) || isnan(dst->heatmap_weight) || isinf(dst->heatmap_weight))
        return tfx__error(TFX_EINVAL, "%s: heatmap_weight %g must be in [0, 1] (or negative: 1 - image_weight)",
                          fn, (double)dst->heatmap_weight);
    if (dst->rows < 0 || dst->cols < 0)
        return tfx__error(TFX_EINVAL, "%s: grid rows %d / cols %d must not be negative", fn, dst->rows, dst->cols);
    if (!isfinite(dst->image_min) || !isfinite(dst->image_max) ||
        (dst->image_min != dst->image_max && !(dst->image_max > dst->image_min)))
        return tfx__error(TFX_EINVAL, "%s: image range [%g, %g] is not a finite increasing range", fn,
                          (double)dst->image_min, (double)dst->image_max);
    if (dst->per_image != 0 && dst->per_image != 1)
        return tfx__error(TFX_EINVAL, "%s: per_image %d must be 0 or 1", fn, dst->per_image);
    if (dst->reduce != TFX_REDUCE_SUM_ABS && dst->reduce != TFX_REDUCE_MAX_ABS)
        return tfx__error(TFX_EINVAL, "%s: unknown channel reduction %d (reduce must be 0 or 1)", fn, dst->reduce);
    if (dst->saturate != 0 && dst->saturate != 1)
        return tfx__error(TFX_EINVAL, "%s: saturate %d must be 0 or 1", fn, dst->saturate);
    return check_scale(dst, fn);
}

/* ---- min-max ---- */

int tfx_normalize_minmax(const float *in, size_t count, float *out)
{
    TFX__CHECK_NULL(in);
    TFX__CHECK_NULL(out);
    TFX__CHECK_ARG(count > 0, "tfx_normalize_minmax: count is 0");
    int rc = tfx__check_count("tfx_normalize_minmax", count, 1, sizeof(float));
    if (rc) return rc;
    double mn, mx;
    tfx__finite_range(in, count, &mn, &mx);
    for (size_t i = 0; i < count; i++) out[i] = (float)tfx__minmax_unit(in[i], mn, mx);
    return TFX_OK;
}

/* ---- tf-explain U3 ---- */

/* np.min / np.max: NaN if any element is NaN. */
static void np_minmax_f(const float *v, size_t n, float *mn, float *mx)
{
    float lo = v[0], hi = v[0];
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if (isnan(x)) { *mn = *mx = x; return; }
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    *mn = lo;
    *mx = hi;
}

static void np_minmax_d(const double *v, size_t n, double *mn, double *mx)
{
    double lo = v[0], hi = v[0];
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (isnan(x)) { *mn = *mx = x; return; }
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    *mn = lo;
    *mx = hi;
}

void tfx__tfe_image_to_uint255(const float *img, size_t count, uint8_t *out)
{
    float mn, mx;
    np_minmax_f(img, count, &mn, &mx);
    int shift = mn < 0.0f; /* the min of this one image decides, as in tf-explain */
    for (size_t i = 0; i < count; i++) {
        float x = img[i];
        if (shift) x = (x + 1.0f) / 2.0f; /* numpy keeps float32 with Python scalars */
        out[i] = tfx__u8_wrap(x * 255.0f);
    }
}

/* ---- one heatmap over one picture ---- */

/* Paper-correct picture to uint8: [lo, hi] -> [0, 255], rounded and clipped. */
static void picture_default(const float *img, size_t count, const tfx_render_options *o, uint8_t *out)
{
    double lo, hi;
    if (o->image_max > o->image_min) {
        lo = o->image_min;
        hi = o->image_max;
    } else {
        double mn, mx;
        if (!tfx__finite_range(img, count, &mn, &mx)) mn = mx = 0.0;
        if (mn >= 0.0 && mx <= 1.0) lo = 0.0, hi = 1.0;
        else if (mn >= -1.0 && mx <= 1.0) lo = -1.0, hi = 1.0;
        else lo = 0.0, hi = 255.0;
    }
    for (size_t i = 0; i < count; i++) out[i] = tfx__u8_round(((double)img[i] - lo) / (hi - lo) * 255.0);
}

/* One heatmap over one picture: map (mh, mw) as float32 (map_f64 == 0) or float64 (map_f64 != 0,
 * tf-explain's occlusion map), image (h, w, c) float, c 1 or 3; rgb_out th*tw*3, the tile's size
 * (h, w unless o scales). Follows o->compat, o->colormap, o->image_weight, o->heatmap_weight,
 * o->image_min/max, o->scale_mode. */
static int heatmap_one(const void *map, int map_f64, int mh, int mw, const float *image, int h, int w,
                     int c, int th, int tw, const tfx_render_options *o, uint8_t *rgb_out)
{
    size_t hw = (size_t)h * (size_t)w, thw = (size_t)th * (size_t)tw;
    int scaled = th != h || tw != w;
    int compat = o->compat == TFX_COMPAT_TF_EXPLAIN;
    int cmap = o->colormap == TFX_COLORMAP_DEFAULT ? TFX_COLORMAP_VIRIDIS : o->colormap;
    const uint8_t *lut = tfx__colormap_lut(cmap);
    uint8_t *idx = tfx__malloc(thw), *pic = scaled ? tfx__malloc(hw * 3) : rgb_out;
    void *rs = tfx__malloc(thw * (map_f64 ? sizeof(double) : sizeof(float)));
    if (!idx || !rs || !pic) {
        tfx__free(idx);
        tfx__free(rs);
        if (scaled) tfx__free(pic);
        return tfx__error(TFX_ENOMEM, "render heatmap: out of memory for %dx%d", th, tw);
    }
    /* 1. The picture as uint8, grey replicated to RGB (OpenCV's GRAY2BGR), into pic. */
    if (c == 3) {
        if (compat) tfx__tfe_image_to_uint255(image, hw * 3, pic);
        else picture_default(image, hw * 3, o, pic);
    } else {
        if (compat) tfx__tfe_image_to_uint255(image, hw, idx);
        else picture_default(image, hw, o, idx);
        for (size_t i = hw; i-- > 0;) pic[3 * i] = pic[3 * i + 1] = pic[3 * i + 2] = idx[i];
    }
    /* 1b. Scaled tiles: the picture scaled as asked (nearest keeps its pixels visible), while the
     * map below goes straight from its own size to the tile's (one smooth bilinear step). */
    int rc = TFX_OK;
    if (scaled) {
        rc = tfx__scale_u8(pic, h, w, 3, rgb_out, th, tw, o->scale_mode);
        tfx__free(pic);
    }
    /* 2. Resize the map to the tile (cv2.resize INTER_LINEAR, see resize.c). */
    if (rc == TFX_OK)
        rc = map_f64 ? tfx__resize_f64(map, mh, mw, 1, rs, th, tw) : tfx__resize_f32(map, mh, mw, 1, rs, th, tw);
    if (rc) {
        tfx__free(idx);
        tfx__free(rs);
        return rc;
    }
    hw = thw; /* from here on, the tile */
    /* 3-4. Normalise and index the colormap. */
    if (compat) {
        /* heatmap_display (HEAD): min-max only when max != min (NaN compares unequal), then
         * (heatmap * 255).astype(uint8): truncate and wrap. Float32 or float64 like the map. */
        if (map_f64) {
            const double *r = rs;
            double mn, mx;
            np_minmax_d(r, hw, &mn, &mx);
            int norm = mx != mn;
            for (size_t i = 0; i < hw; i++) {
                double v = norm ? (r[i] - mn) / (mx - mn) : r[i];
                idx[i] = tfx__u8_wrap(v * 255.0);
            }
        } else {
            const float *r = rs;
            float mn, mx;
            np_minmax_f(r, hw, &mn, &mx);
            int norm = mx != mn;
            for (size_t i = 0; i < hw; i++) {
                float v = norm ? (r[i] - mn) / (mx - mn) : r[i];
                idx[i] = tfx__u8_wrap(v * 255.0f);
            }
        }
    } else {
        double mn, mx;
        if (map_f64) {
            const double *r = rs;
            int any = 0;
            mn = mx = 0.0;
            for (size_t i = 0; i < hw; i++) {
                if (!isfinite(r[i])) continue;
                if (!any || r[i] < mn) mn = r[i];
                if (!any || r[i] > mx) mx = r[i];
                any = 1;
            }
            for (size_t i = 0; i < hw; i++) idx[i] = tfx__u8_round(255.0 * tfx__minmax_unit(r[i], mn, mx));
        } else {
            const float *r = rs;
            tfx__finite_range(r, hw, &mn, &mx);
            for (size_t i = 0; i < hw; i++) idx[i] = tfx__u8_round(255.0 * tfx__minmax_unit(r[i], mn, mx));
        }
    }
    /* 5-6. Colour and blend. */
    float wi = o->image_weight;
    float wh = o->heatmap_weight < 0.0f ? (float)(1.0 - (double)o->image_weight) : o->heatmap_weight;
    for (size_t i = 0; i < hw; i++) {
        const uint8_t *col = lut + 3 * (size_t)idx[i];
        for (int k = 0; k < 3; k++) {
            uint8_t *p = rgb_out + 3 * i + k;
            if (compat) {
                /* cv2.addWeighted on uint8 as OpenCV 4.6's AVX2 kernel computes it:
                 * fma(img, alpha, heat * beta) in float32, rounded half to even, saturated. */
                float t = fmaf((float)*p, wi, (float)col[k] * wh);
                float r = rintf(t);
                *p = r <= 0.0f ? 0 : (r >= 255.0f ? 255 : (uint8_t)r);
            } else {
                *p = tfx__u8_round((double)wi * *p + (double)wh * col[k]);
            }
        }
    }
    tfx__free(idx);
    tfx__free(rs);
    return TFX_OK;
}

/* ---- public renderers ---- */

static int heatmap_common(const void *maps, int f64, size_t n, int map_h, int map_w, const float *images,
                          int height, int width, int channels, const tfx_render_options *opts,
                          tfx_image **out, const char *fn)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    if (!maps) return tfx__error(TFX_EINVAL, "%s: maps is NULL", fn);
    if (!images) return tfx__error(TFX_EINVAL, "%s: images is NULL", fn);
    if (n == 0) return tfx__error(TFX_EINVAL, "%s: n is 0", fn);
    if (map_h <= 0 || map_w <= 0 || map_h > TFX_IMAGE_MAX_SIDE || map_w > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: map size %dx%d must be in 1..%d", fn, map_h, map_w, TFX_IMAGE_MAX_SIDE);
    if (height <= 0 || width <= 0 || height > TFX_IMAGE_MAX_SIDE || width > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: picture size %dx%d must be in 1..%d", fn, height, width,
                          TFX_IMAGE_MAX_SIDE);
    if (channels != 1 && channels != 3)
        return tfx__error(TFX_EINVAL, "%s: pictures must have 1 or 3 channels, not %d", fn, channels);
    int rc = tfx__check_count(fn, n, (size_t)map_h * (size_t)map_w, f64 ? sizeof(double) : sizeof(float));
    if (!rc) rc = tfx__check_count(fn, n, (size_t)height * (size_t)width * (size_t)channels, sizeof(float));
    if (rc) return rc;
    tfx_render_options o;
    rc = tfx__render_options_copy(&o, opts, fn);
    if (rc) return rc;
    if (o.colormap == TFX_COLORMAP_DEFAULT) o.colormap = TFX_COLORMAP_VIRIDIS;
    int rows, cols, th, tw;
    rc = tfx__render_layout(fn, &o, n, height, width, &th, &tw, &rows, &cols);
    if (rc) return rc;
    tfx_image *grid = NULL;
    rc = tfx_image_new(&grid, cols * tw, rows * th, 3);
    if (rc) return tfx__error_prefix("%s", fn);
    size_t hw = (size_t)height * (size_t)width, mhw = (size_t)map_h * (size_t)map_w;
    uint8_t *tile = tfx__malloc((size_t)th * (size_t)tw * 3);
    if (!tile) {
        tfx_image_free(grid);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    for (size_t s = 0; s < n; s++) {
        const void *m = f64 ? (const void *)((const double *)maps + s * mhw) : (const void *)((const float *)maps + s * mhw);
        rc = heatmap_one(m, f64, map_h, map_w, images + s * hw * (size_t)channels, height, width, channels, th, tw,
                         &o, tile);
        if (rc) {
            tfx__free(tile);
            tfx_image_free(grid);
            return tfx__error_prefix("%s", fn);
        }
        tfx__grid_put(grid, cols, s, tile, th, tw);
    }
    tfx__free(tile);
    *out = grid;
    return TFX_OK;
}

int tfx_render_heatmap(const float *maps, size_t n, int map_h, int map_w, const float *images, int height,
                       int width, int channels, const tfx_render_options *o, tfx_image **out)
{
    return heatmap_common(maps, 0, n, map_h, map_w, images, height, width, channels, o, out,
                          "tfx_render_heatmap");
}

int tfx__render_heatmap_f64(const double *maps, size_t n, int map_h, int map_w, const float *images,
                            int height, int width, int channels, const tfx_render_options *o, tfx_image **out)
{
    return heatmap_common(maps, 1, n, map_h, map_w, images, height, width, channels, o, out,
                          "tfx_render_heatmap");
}
