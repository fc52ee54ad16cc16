/* Scaled tiles (tfx_render_options version 2, tfx_image_scale): nearest and bilinear against
 * torch (tests/render/gen_golden_scale.py), every renderer's scaled grid against its unscaled
 * tiles scaled one by one, the heatmap's map resized straight to the tile, the picture limits
 * and the option combinations refused with TFX_EINVAL naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden.h"
#include "tfx/tfx.h"

static char *text;

static int setup(void **state)
{
    (void)state;
    (void)golden_getf; /* golden.h helper this file does not need */
    text = golden_read("scale.txt");
    return text ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(text);
    return 0;
}

/* A contiguous image holding the golden entry `name` (h, w, c). */
static tfx_image *golden_image(const char *name, int h, int w, int c)
{
    size_t n;
    double *v = golden_get(text, name, &n);
    assert_non_null(v);
    assert_int_equal(n, (size_t)h * (size_t)w * (size_t)c);
    tfx_image *img;
    assert_int_equal(tfx_image_new(&img, w, h, c), TFX_OK);
    for (size_t i = 0; i < n; i++) img->pixels[i] = (uint8_t)v[i];
    free(v);
    return img;
}

static void golden_vs_torch(void **state)
{
    (void)state;
    static const struct { const char *tile; int h, w, c, dh, dw; } cases[] = {
        {"a", 5, 7, 1, 15, 21}, {"a", 5, 7, 1, 40, 56}, {"a", 5, 7, 1, 11, 16},
        {"a", 5, 7, 1, 3, 4},   {"b", 4, 6, 3, 32, 48}, {"b", 4, 6, 3, 9, 13},
    };
    static const char *const modes[] = {"", "nearest", "bilinear"};
    for (int mode = TFX_SCALE_NEAREST; mode <= TFX_SCALE_BILINEAR; mode++) {
        size_t off_by_one = 0, total = 0;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "tile_%s", cases[k].tile);
            tfx_image *src = golden_image(name, cases[k].h, cases[k].w, cases[k].c), *got;
            snprintf(name, sizeof name, "%s_%s_%dx%d", modes[mode], cases[k].tile, cases[k].dh, cases[k].dw);
            tfx_image *want = golden_image(name, cases[k].dh, cases[k].dw, cases[k].c);
            assert_int_equal(tfx_image_scale(src, mode, cases[k].dh, cases[k].dw, &got), TFX_OK);
            assert_int_equal(got->width, cases[k].dw);
            assert_int_equal(got->height, cases[k].dh);
            assert_int_equal(got->channels, cases[k].c);
            size_t n = (size_t)cases[k].dh * (size_t)cases[k].dw * (size_t)cases[k].c;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)got->pixels[i] - (int)want->pixels[i]);
                if (d > (mode == TFX_SCALE_NEAREST ? 0 : 1))
                    fail_msg("%s: byte %zu is %d, torch %d", name, i, got->pixels[i], want->pixels[i]);
                off_by_one += d;
            }
            total += n;
            tfx_image_free(src);
            tfx_image_free(want);
            tfx_image_free(got);
        }
        /* float32 vs float64 on two sides of a .5: rare */
        assert_true(off_by_one * 1000 <= total); /* measured: 2 of 7702 bytes */
    }
}

/* Tile t (th, tw, c) of a grid picture, copied out contiguous. */
static uint8_t *tile_of(const tfx_image *g, int cols, size_t t, int th, int tw)
{
    size_t c = (size_t)g->channels, row = (size_t)tw * c;
    uint8_t *out = malloc((size_t)th * row);
    size_t gr = t / (size_t)cols, gc = t % (size_t)cols;
    for (int y = 0; y < th; y++)
        memcpy(out + (size_t)y * row, g->pixels + (gr * (size_t)th + (size_t)y) * g->stride + gc * row, row);
    return out;
}

/* Every tile of `big` (grid of n tiles th x tw, cols columns) is tile t of `small` (h x w) scaled
 * with tfx_image_scale; padding tiles are black. */
static void check_tiles(const tfx_image *small, const tfx_image *big, size_t n, int rows, int cols, int h, int w,
                        int th, int tw, int mode)
{
    assert_int_equal(big->channels, small->channels);
    assert_int_equal(big->width, cols * tw);
    assert_int_equal(big->height, rows * th);
    for (size_t t = 0; t < (size_t)rows * (size_t)cols; t++) {
        uint8_t *b = tile_of(big, cols, t, th, tw);
        size_t bytes = (size_t)th * (size_t)tw * (size_t)big->channels;
        if (t < n) {
            tfx_image s = {w, h, small->channels, (size_t)w * (size_t)small->channels, tile_of(small, cols, t, h, w)};
            tfx_image *want;
            assert_int_equal(tfx_image_scale(&s, mode, th, tw, &want), TFX_OK);
            assert_memory_equal(b, want->pixels, bytes);
            tfx_image_free(want);
            free(s.pixels);
        } else {
            for (size_t i = 0; i < bytes; i++) assert_int_equal(b[i], 0);
        }
        free(b);
    }
}

#define N 5
#define MH 6
#define MW 4

static void grids_of_scaled_tiles(void **state)
{
    (void)state;
    float maps[N * MH * MW * 3];
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) maps[i] = (float)((i * 7919) % 263) / 17.0f - 6.0f;
    /* Integer factor and target sizes (one side given: the aspect ratio 6:4 kept). */
    static const struct { int mode, scale, th, tw, want_h, want_w; } cases[] = {
        {TFX_SCALE_NEAREST, 3, 0, 0, 18, 12},   {TFX_SCALE_BILINEAR, 8, 0, 0, 48, 32},
        {TFX_SCALE_NEAREST, 0, 10, 7, 10, 7},   {TFX_SCALE_BILINEAR, 0, 10, 7, 10, 7},
        {TFX_SCALE_BILINEAR, 0, 15, 0, 15, 10}, {TFX_SCALE_NEAREST, 0, 0, 3, 5, 3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int cmap = TFX_COLORMAP_DEFAULT; cmap <= TFX_COLORMAP_JET; cmap += TFX_COLORMAP_JET) {
            tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
            o.colormap = cmap;
            tfx_image *small, *big;
            /* saliency: n tiles, 3x3 automatic grid with 4 padding tiles */
            assert_int_equal(tfx_render_saliency(maps, N, MH, MW, 3, &o, &small), TFX_OK);
            o.scale_mode = cases[k].mode;
            o.scale = cases[k].scale;
            o.tile_height = cases[k].th;
            o.tile_width = cases[k].tw;
            assert_int_equal(tfx_render_saliency(maps, N, MH, MW, 3, &o, &big), TFX_OK);
            if (cmap == TFX_COLORMAP_DEFAULT || cases[k].mode == TFX_SCALE_NEAREST)
                check_tiles(small, big, N, 3, 3, MH, MW, cases[k].want_h, cases[k].want_w, cases[k].mode);
            else /* coloured bilinear: the indices are interpolated, then coloured */
                assert_int_equal(big->width, 3 * cases[k].want_w);
            tfx_image_free(small);
            tfx_image_free(big);
            /* filters: N samples x 3 feature maps = 15 tiles in a 4x4 grid; rows/cols honoured */
            o.scale_mode = TFX_SCALE_NONE;
            o.scale = o.tile_height = o.tile_width = 0;
            o.cols = 5;
            assert_int_equal(tfx_render_filters(maps, N, MH, MW, 3, &o, &small), TFX_OK);
            o.scale_mode = cases[k].mode;
            o.scale = cases[k].scale;
            o.tile_height = cases[k].th;
            o.tile_width = cases[k].tw;
            assert_int_equal(tfx_render_filters(maps, N, MH, MW, 3, &o, &big), TFX_OK);
            if (cmap == TFX_COLORMAP_DEFAULT || cases[k].mode == TFX_SCALE_NEAREST)
                check_tiles(small, big, 3 * N, 3, 5, MH, MW, cases[k].want_h, cases[k].want_w, cases[k].mode);
            else
                assert_int_equal(big->height, 3 * cases[k].want_h);
            tfx_image_free(small);
            tfx_image_free(big);
        }
    }
}

/* Heatmaps: the picture is scaled as asked, the map goes straight from its size to the tile's. */
static void heatmap_scaled(void **state)
{
    (void)state;
    enum { H = 6, W = 5, MAPH = 3, MAPW = 2, S = 4 };
    float maps[2 * MAPH * MAPW], images[2 * H * W * 3], zeros[2 * S * H * S * W * 3] = {0};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) maps[i] = (float)((i * 5) % 7);
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) images[i] = (float)((i * 13) % 29) / 28.0f;
    for (int mode = TFX_SCALE_NEAREST; mode <= TFX_SCALE_BILINEAR; mode++) {
        /* image_weight 1: the scaled picture alone, tile by tile */
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
        o.image_weight = 1.0f;
        tfx_image *small, *big;
        assert_int_equal(tfx_render_heatmap(maps, 2, MAPH, MAPW, images, H, W, 3, &o, &small), TFX_OK);
        o.scale_mode = mode;
        o.scale = S;
        assert_int_equal(tfx_render_heatmap(maps, 2, MAPH, MAPW, images, H, W, 3, &o, &big), TFX_OK);
        check_tiles(small, big, 2, 2, 2, H, W, S * H, S * W, mode);
        tfx_image_free(small);
        tfx_image_free(big);
        /* image_weight 0: the map's colours, as an unscaled render onto a picture of the tile size */
        o.image_weight = 0.0f;
        assert_int_equal(tfx_render_heatmap(maps, 2, MAPH, MAPW, images, H, W, 3, &o, &big), TFX_OK);
        tfx_render_options plain = TFX_RENDER_OPTIONS_INIT;
        plain.image_weight = 0.0f;
        assert_int_equal(tfx_render_heatmap(maps, 2, MAPH, MAPW, zeros, S * H, S * W, 3, &plain, &small), TFX_OK);
        assert_int_equal(big->width, small->width);
        assert_int_equal(big->height, small->height);
        assert_memory_equal(big->pixels, small->pixels, small->stride * (size_t)small->height);
        tfx_image_free(small);
        tfx_image_free(big);
    }
}

/* scale 1 (or the tile's own size) changes no byte of any renderer. */
static void identity(void **state)
{
    (void)state;
    float maps[4 * 5 * 5 * 2];
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) maps[i] = (float)((i * 31) % 17) - 8.0f;
    for (int k = 0; k < 3; k++) {
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT, s = TFX_RENDER_OPTIONS_INIT;
        s.scale_mode = k == 0 ? TFX_SCALE_NEAREST : TFX_SCALE_BILINEAR;
        if (k < 2) s.scale = 1;
        else s.tile_height = 5;
        tfx_image *a, *b;
        assert_int_equal(tfx_render_saliency(maps, 4, 5, 5, 2, &o, &a), TFX_OK);
        assert_int_equal(tfx_render_saliency(maps, 4, 5, 5, 2, &s, &b), TFX_OK);
        assert_memory_equal(a->pixels, b->pixels, a->stride * (size_t)a->height);
        tfx_image_free(a);
        tfx_image_free(b);
        assert_int_equal(tfx_render_filters(maps, 4, 5, 5, 2, &o, &a), TFX_OK);
        assert_int_equal(tfx_render_filters(maps, 4, 5, 5, 2, &s, &b), TFX_OK);
        assert_memory_equal(a->pixels, b->pixels, a->stride * (size_t)a->height);
        tfx_image_free(a);
        tfx_image_free(b);
        assert_int_equal(tfx_render_heatmap(maps, 2, 5, 5, maps + 50, 5, 5, 1, &o, &a), TFX_OK);
        assert_int_equal(tfx_render_heatmap(maps, 2, 5, 5, maps + 50, 5, 5, 1, &s, &b), TFX_OK);
        assert_memory_equal(a->pixels, b->pixels, a->stride * (size_t)a->height);
        tfx_image_free(a);
        tfx_image_free(b);
    }
}

/* rc TFX_EINVAL, no picture, and a message naming each of the words. */
static void refused_(int rc, const tfx_image *img, const char *w1, const char *w2)
{
    const char *msg = tfx_error_last()->message;
    if (rc != TFX_EINVAL || img != NULL || !strstr(msg, w1) || (w2 && !strstr(msg, w2)))
        fail_msg("rc %d, message \"%s\" (want TFX_EINVAL naming '%s' and '%s')", rc, msg, w1, w2 ? w2 : "");
}

/* The call first, then its picture pointer (function arguments have no evaluation order). */
#define refused(call, img, w1, w2)                                                                 \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        refused_(rc_, img, w1, w2);                                                                \
    } while (0)

static void limits_and_combinations(void **state)
{
    (void)state;
    static float maps[4 * 100 * 100];
    tfx_image *img = (tfx_image *)1;
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    /* one tile over TFX_IMAGE_MAX_SIDE: 100 * 400 */
    o.scale_mode = TFX_SCALE_NEAREST;
    o.scale = 400;
    refused(tfx_render_saliency(maps, 1, 100, 100, 1, &o, &img), img, "scale 400", "32768");
    refused(tfx_render_filters(maps, 1, 100, 100, 1, &o, &img), img, "scale 400", NULL);
    refused(tfx_render_heatmap(maps, 1, 100, 100, maps, 100, 100, 1, &o, &img), img, "scale 400", NULL);
    /* the grid over the side: two 20000-pixel tiles side by side */
    o.scale = 0;
    o.tile_height = o.tile_width = 20000;
    refused(tfx_render_saliency(maps, 2, 10, 10, 1, &o, &img), img, "tile_height 20000", "picture limits");
    /* the grid over TFX_RENDER_MAX_PIXELS (2^26) with every side allowed: 2x2 tiles of 8192 */
    o.tile_height = o.tile_width = 8192;
    refused(tfx_render_filters(maps, 4, 10, 10, 1, &o, &img), img, "tile_width 8192", "picture limits");
    refused(tfx_render_heatmap(maps, 4, 10, 10, maps, 10, 10, 1, &o, &img), img, "tile_height 8192", NULL);
    /* one side given, the other from a 1:2 aspect ratio: 32768 x 65536 */
    o.tile_height = 32768;
    o.tile_width = 0;
    refused(tfx_render_saliency(maps, 1, 1, 2, 1, &o, &img), img, "tile_height 32768", "65536");
    /* many small tiles: 2^21 1x1 maps x 8 exceed the pixels before anything is read */
    o.tile_height = 0;
    o.scale = 8;
    refused(tfx_render_saliency(maps, (size_t)1 << 21, 1, 1, 1, &o, &img), img, "scale 8", "picture limits");
    /* combinations */
    tfx_render_options c = TFX_RENDER_OPTIONS_INIT;
    c.scale = 2; /* no mode */
    refused(tfx_render_saliency(maps, 1, 4, 4, 1, &c, &img), img, "scale 2", "scale_mode 0");
    c.scale = 0;
    c.tile_width = 9;
    refused(tfx_render_saliency(maps, 1, 4, 4, 1, &c, &img), img, "tile_width 9", "scale_mode 0");
    c.tile_width = 0;
    c.scale_mode = TFX_SCALE_BILINEAR; /* no size */
    refused(tfx_render_saliency(maps, 1, 4, 4, 1, &c, &img), img, "scale_mode 2", "needs scale");
    c.scale = 2;
    c.tile_height = 8; /* both */
    refused(tfx_render_saliency(maps, 1, 4, 4, 1, &c, &img), img, "scale 2", "exclusive");
    c.tile_height = 0;
    c.compat = TFX_COMPAT_TF_EXPLAIN; /* compat keeps tf-explain's size */
    refused(tfx_render_saliency(maps, 1, 4, 4, 1, &c, &img), img, "scale_mode 2", "compat");
    refused(tfx_render_heatmap(maps, 1, 4, 4, maps, 4, 4, 1, &c, &img), img, "scale_mode 2", "compat");
    /* tfx_image_scale's own arguments */
    tfx_image *src;
    assert_int_equal(tfx_image_new(&src, 3, 2, 2), TFX_OK);
    refused(tfx_image_scale(src, TFX_SCALE_NONE, 4, 4, &img), img, "mode 0", NULL);
    refused(tfx_image_scale(src, 3, 4, 4, &img), img, "mode 3", NULL);
    refused(tfx_image_scale(src, TFX_SCALE_NEAREST, 0, 4, &img), img, "size 0x4", NULL);
    refused(tfx_image_scale(src, TFX_SCALE_NEAREST, 4, 32769, &img), img, "size 4x32769", NULL);
    refused(tfx_image_scale(src, TFX_SCALE_NEAREST, 16384, 16384, &img), img, "16384x16384", "pixels");
    refused(tfx_image_scale(NULL, TFX_SCALE_NEAREST, 4, 4, &img), img, "src", NULL);
    src->stride = 1;
    refused(tfx_image_scale(src, TFX_SCALE_NEAREST, 4, 4, &img), img, "stride 1", NULL);
    /* a strided source (a view into a wider picture) */
    src->stride = 6;
    memcpy(src->pixels, (uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 12);
    tfx_image view = {2, 2, 2, 6, src->pixels}, *got;
    assert_int_equal(tfx_image_scale(&view, TFX_SCALE_NEAREST, 4, 4, &got), TFX_OK);
    static const uint8_t want[] = {1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4, 7, 8, 7, 8, 9, 10, 9, 10,
                                   7, 8, 7, 8, 9, 10, 9, 10};
    assert_memory_equal(got->pixels, want, sizeof want);
    tfx_image_free(got);
    tfx_image_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_vs_torch),
        cmocka_unit_test(grids_of_scaled_tiles),
        cmocka_unit_test(heatmap_scaled),
        cmocka_unit_test(identity),
        cmocka_unit_test(limits_and_combinations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
