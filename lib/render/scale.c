/* Tile upscaling (tfx_render_options version 2) and tfx_image_scale: nearest neighbour with
 * half-pixel centres in exact integer arithmetic, or bilinear through resize.c (OpenCV's
 * INTER_LINEAR, half-pixel centres) on float copies of the bytes, rounded back. The renderers
 * scale each tile before it goes into the grid, so bilinear never blends two tiles. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "render/render.h"
#include "tfx/image.h"

/* Source index of destination index d when s pixels become n: floor((d + 0.5) * s / n), exact
 * (torch's nearest-exact and PIL's NEAREST up to their float rounding of s / n). */
static size_t nearest_src(size_t d, size_t s, size_t n) { return ((2 * d + 1) * s) / (2 * n); }

int tfx__scale_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw, int mode)
{
    size_t cs = (size_t)c, row_d = (size_t)dw * cs;
    if (mode == TFX_SCALE_NEAREST || (sh == dh && sw == dw)) {
        for (int y = 0; y < dh; y++) {
            const uint8_t *s = src + nearest_src((size_t)y, (size_t)sh, (size_t)dh) * (size_t)sw * cs;
            uint8_t *o = dst + (size_t)y * row_d;
            if (y > 0 && nearest_src((size_t)y, (size_t)sh, (size_t)dh) ==
                             nearest_src((size_t)y - 1, (size_t)sh, (size_t)dh)) {
                memcpy(o, o - row_d, row_d); /* the same source row: repeat the last one */
                continue;
            }
            for (int x = 0; x < dw; x++)
                memcpy(o + (size_t)x * cs, s + nearest_src((size_t)x, (size_t)sw, (size_t)dw) * cs, cs);
        }
        return TFX_OK;
    }
    size_t ns = (size_t)sh * (size_t)sw * cs, nd = (size_t)dh * row_d;
    float *fs = tfx__malloc(ns * sizeof(float)), *fd = tfx__malloc(nd * sizeof(float));
    if (!fs || !fd) {
        tfx__free(fs);
        tfx__free(fd);
        return tfx__error(TFX_ENOMEM, "scale: out of memory (%dx%d -> %dx%d)", sh, sw, dh, dw);
    }
    for (size_t i = 0; i < ns; i++) fs[i] = (float)src[i];
    int rc = tfx__resize_f32(fs, sh, sw, c, fd, dh, dw);
    if (rc == TFX_OK)
        for (size_t i = 0; i < nd; i++) dst[i] = tfx__u8_round(fd[i]);
    tfx__free(fs);
    tfx__free(fd);
    return rc;
}

/* The scaling option that was given, for messages ("scale 8", "tile_height 224 / tile_width 0"). */
static void scale_field(const tfx_render_options *o, char *buf, size_t n)
{
    if (o->scale > 0) snprintf(buf, n, "scale %d", o->scale);
    else snprintf(buf, n, "tile_height %d / tile_width %d", o->tile_height, o->tile_width);
}

int tfx__render_tile_size(const char *fn, const tfx_render_options *o, int h, int w, int *th, int *tw)
{
    *th = h;
    *tw = w;
    if (o->scale_mode == TFX_SCALE_NONE) return TFX_OK;
    /* Every factor is at most TFX_IMAGE_MAX_SIDE (options check), so products fit in 64 bits. */
    unsigned long long hh, ww;
    if (o->scale > 0) {
        hh = (unsigned long long)h * (unsigned long long)o->scale;
        ww = (unsigned long long)w * (unsigned long long)o->scale;
    } else if (o->tile_height > 0 && o->tile_width > 0) {
        hh = (unsigned long long)o->tile_height;
        ww = (unsigned long long)o->tile_width;
    } else if (o->tile_height > 0) { /* keep the aspect ratio, rounded, at least 1 */
        hh = (unsigned long long)o->tile_height;
        ww = ((unsigned long long)w * hh * 2 + (unsigned long long)h) / (2ull * (unsigned long long)h);
    } else {
        ww = (unsigned long long)o->tile_width;
        hh = ((unsigned long long)h * ww * 2 + (unsigned long long)w) / (2ull * (unsigned long long)w);
    }
    if (hh < 1) hh = 1;
    if (ww < 1) ww = 1;
    if (hh > TFX_IMAGE_MAX_SIDE || ww > TFX_IMAGE_MAX_SIDE) {
        char f[96];
        scale_field(o, f, sizeof f);
        return tfx__error(TFX_EINVAL, "%s: %s makes %dx%d tiles %llux%llu pixels, over %d a side", fn, f, h, w, hh,
                          ww, TFX_IMAGE_MAX_SIDE);
    }
    *th = (int)hh;
    *tw = (int)ww;
    return TFX_OK;
}

int tfx__render_layout(const char *fn, const tfx_render_options *o, size_t n, int h, int w, int *th, int *tw,
                       int *rows, int *cols)
{
    int rc = tfx__render_tile_size(fn, o, h, w, th, tw);
    if (rc) return rc;
    rc = tfx__grid_shape(fn, n, *th, *tw, o->rows, o->cols, rows, cols);
    if (rc && o->scale_mode != TFX_SCALE_NONE) {
        char f[96];
        scale_field(o, f, sizeof f);
        return tfx__error_prefix("%s (%s)", fn, f); /* name the field that made the tiles big */
    }
    return rc;
}

int tfx_image_scale(const tfx_image *src, int mode, int height, int width, tfx_image **out)
{
    static const char fn[] = "tfx_image_scale";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(src);
    TFX__CHECK_ARG(mode == TFX_SCALE_NEAREST || mode == TFX_SCALE_BILINEAR,
                   "%s: mode %d must be TFX_SCALE_NEAREST (1) or TFX_SCALE_BILINEAR (2)", fn, mode);
    TFX__CHECK_ARG(src->pixels != NULL && src->width > 0 && src->height > 0 && src->width <= TFX_IMAGE_MAX_SIDE &&
                       src->height <= TFX_IMAGE_MAX_SIDE && src->channels >= 1 && src->channels <= 4 &&
                       src->stride >= (size_t)src->width * (size_t)src->channels,
                   "%s: source image %dx%d, %d channels, stride %zu is not a valid picture", fn, src->width,
                   src->height, src->channels, src->stride);
    TFX__CHECK_ARG(height > 0 && width > 0 && height <= TFX_IMAGE_MAX_SIDE && width <= TFX_IMAGE_MAX_SIDE,
                   "%s: size %dx%d must be in 1..%d", fn, height, width, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG((size_t)height * (size_t)width <= (size_t)TFX_RENDER_MAX_PIXELS,
                   "%s: size %dx%d is over %d pixels", fn, height, width, TFX_RENDER_MAX_PIXELS);
    size_t row = (size_t)src->width * (size_t)src->channels;
    uint8_t *packed = tfx__malloc((size_t)src->height * row);
    if (!packed) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    for (int y = 0; y < src->height; y++) memcpy(packed + (size_t)y * row, src->pixels + (size_t)y * src->stride, row);
    tfx_image *img = NULL;
    int rc = tfx_image_new(&img, width, height, src->channels);
    if (rc) {
        tfx__free(packed);
        return tfx__error_prefix("%s", fn);
    }
    rc = tfx__scale_u8(packed, src->height, src->width, src->channels, img->pixels, height, width, mode);
    tfx__free(packed);
    if (rc) {
        tfx_image_free(img);
        return tfx__error_prefix("%s", fn);
    }
    *out = img;
    return TFX_OK;
}
