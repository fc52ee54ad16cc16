/* Rendering internals shared by the explainers, the TensorBoard callbacks and lib/explain's
 * rendering files. Public entry points (tfx_render_*, tfx_resize_bilinear, tfx_colormap_*) are in
 * include/tfx/image.h; explainers normally build a tfx_render_options and call those. The
 * helpers here skip argument checks: callers pass valid sizes. docs/rendering.md explains the
 * arithmetic (which one matches tf-explain / OpenCV / TensorFlow bit for bit, and why). */
#ifndef TFX_RENDER_RENDER_H
#define TFX_RENDER_RENDER_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "tfx/image.h"
#include "core/internal.h"

/* ---- uint8 casts ---- */
/* numpy astype(uint8) / TensorFlow CPU cast on x86: truncate toward zero, keep the low byte
 * (-1 -> 255, 300 -> 44); NaN and |v| >= 2^31 give 0. */
uint8_t tfx__u8_wrap(double v);
/* TensorFlow GPU cast: truncate, then saturate to [0, 255]; NaN -> 0. */
uint8_t tfx__u8_trunc_sat(double v);
/* Paper-correct: round half away from zero, saturate to [0, 255]; NaN -> 0. */
uint8_t tfx__u8_round(double v);

/* ---- min-max (heatmaps and saliency: inline, they run per pixel) ---- */
/* Min and max over finite values; returns 0 when there is none. */
static inline int tfx__finite_range(const float *v, size_t n, double *mn, double *mx)
{
    int any = 0;
    double lo = 0.0, hi = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x)) continue;
        if (!any || x < lo) lo = x;
        if (!any || x > hi) hi = x;
        any = 1;
    }
    *mn = lo;
    *mx = hi;
    return any;
}

/* The paper-correct normalisation of one value given a finite range: [0, 1]; constant -> 0;
 * NaN -> 0; +Inf -> 1; -Inf -> 0. */
static inline double tfx__minmax_unit(double x, double mn, double mx)
{
    if (isnan(x)) return 0.0;
    if (isinf(x)) return x > 0 ? 1.0 : 0.0;
    if (!(mx > mn)) return 0.0;
    double t = (x - mn) / (mx - mn);
    return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
}

/* ---- options ---- */
/* Copy the caller's options (NULL: defaults) and check them; fn names the public function. */
int tfx__render_options_copy(tfx_render_options *dst, const tfx_render_options *src, const char *fn);

/* ---- grids (grid.c) ---- */
/* Smallest r with r * r >= n, for every n (no overflow). */
size_t tfx__ceil_sqrt(size_t n);
/* tf-explain grid_display's shape rule (U1): rows/cols 0 = not given. Fails with TFX_EINVAL
 * (message) when negative or when the picture would exceed TFX_IMAGE_MAX_SIDE. */
int tfx__grid_shape(const char *fn, size_t n, int tile_h, int tile_w, int rows, int cols,
                    int *out_rows, int *out_cols);
/* Copy tile t (h, w, c contiguous) to its place in a grid image made by the caller. */
void tfx__grid_put(tfx_image *grid, int cols, size_t t, const uint8_t *tile, int h, int w);
/* Fill tile t of the grid with one pixel value (c bytes). */
void tfx__grid_fill(tfx_image *grid, int cols, size_t t, int h, int w, const uint8_t *px);

/* ---- scaled tiles (scale.c) ---- */
/* The tile size o asks for (o checked by tfx__render_options_copy): (h, w) when scale_mode is
 * NONE, else scaled; TFX_EINVAL naming fn and the field when a side would exceed
 * TFX_IMAGE_MAX_SIDE. */
int tfx__render_tile_size(const char *fn, const tfx_render_options *o, int h, int w, int *th, int *tw);
/* tfx__render_tile_size, then tfx__grid_shape of n such tiles with o->rows / o->cols; a grid
 * over the limits names the scaling field too. */
int tfx__render_layout(const char *fn, const tfx_render_options *o, size_t n, int h, int w, int *th, int *tw,
                       int *rows, int *cols);
/* Scale one contiguous tile (sh, sw, c) into dst (dh, dw, c): TFX_SCALE_NEAREST, or BILINEAR
 * (resize.c on floats, rounded); the same size is a copy. TFX_ENOMEM (message set) only for
 * bilinear's scratch. */
int tfx__scale_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw, int mode);

/* ---- colormaps (colormap.c) ---- */
/* The 768-byte RGB table; colormap DEFAULT must have been resolved by the caller. NULL if unknown. */
const uint8_t *tfx__colormap_lut(int colormap);

/* ---- resize (resize.c) ---- */
/* cv2.resize(INTER_LINEAR) on float32 / float64 as OpenCV 4.6 computes it on x86 (see
 * resize.c); one channel per pixel group of `c`. Needs dst_h*dst_w*c + src_h*dst_w*c floats of
 * scratch, which these allocate; return TFX_ENOMEM (message set) on failure. */
int tfx__resize_f32(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
int tfx__resize_f64(const double *src, int sh, int sw, int c, double *dst, int dh, int dw);

/* ---- tf-explain's own steps (heatmap.c), for compat mode ---- */
/* U3 image_to_uint_255 on one float32 image of count values (min < 0: (x+1)/2; then x*255
 * truncated and wrapped). */
void tfx__tfe_image_to_uint255(const float *img, size_t count, uint8_t *out);
/* U6 transform_to_normalized_grayscale: t (n, h*w, c) -> out (n, h*w): sum over channels, one
 * z-score over the whole batch, 255 z cast to uint8 (wrap, or saturate when `saturate`). */
void tfx__tfe_normalized_grayscale(const float *t, size_t n, size_t hw, int c, int saturate,
                                   uint8_t *out);

/* tfx_render_heatmap with float64 maps (tf-explain's occlusion sensitivity keeps its score map in
 * float64, and the rounding of 1 - p matters in compat mode). */
int tfx__render_heatmap_f64(const double *maps, size_t n, int map_h, int map_w, const float *images,
                            int height, int width, int channels, const tfx_render_options *o,
                            tfx_image **out);

/* ---- stb (stb_impl.c: the one file with the stb implementations) ---- */
unsigned char *tfx__stb_png_encode(const unsigned char *pixels, int stride, int w, int h, int n,
                                   int *out_len);
/* *oom: an allocation failed during the call (stb's failure reason is not reliable for that). */
int tfx__stb_info(const unsigned char *data, int len, int *w, int *h, int *comp, int *oom);
unsigned char *tfx__stb_load(const unsigned char *data, int len, int *w, int *h, int *comp,
                             int req_comp, int *oom);
const char *tfx__stb_failure_reason(void);

#endif
