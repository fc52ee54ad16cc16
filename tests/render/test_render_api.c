/* Rendering API: argument checks, options, and the paper-correct default mode (no uint8
 * wrap-around, rounding, constant maps, NaN/Inf, padding), checked against hand-computed values. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"
#include "render/render.h"
#include "testing.h"
#include "tfx/image.h"

static uint8_t px(const tfx_image *g, int x, int y, int c) { return g->pixels[(size_t)y * g->stride + (size_t)x * g->channels + c]; }

static void options(void **state)
{
    (void)state;
    tfx_render_options o;
    assert_int_equal(tfx_render_options_init(&o, 0), TFX_EVERSION);
    assert_int_equal(tfx_render_options_init(&o, TFX_RENDER_OPTIONS_VERSION + 1), TFX_EVERSION);
    assert_int_equal(tfx_render_options_init(NULL, 1), TFX_EINVAL);
    assert_int_equal(tfx_render_options_init(&o, TFX_RENDER_OPTIONS_VERSION), TFX_OK);
    assert_int_equal(o.compat, TFX_COMPAT_NONE);
    assert_true(o.image_weight == 0.7f);
    assert_true(o.heatmap_weight < 0.0f);
    assert_int_equal(o.per_image, 1);
    float m[4] = {0, 1, 2, 3};
    tfx_image *g = (tfx_image *)1;
    struct { const char *what; void (*set)(tfx_render_options *); int rc; } bad[] = {
        {"version", NULL, TFX_EVERSION},
    };
    (void)bad;
    o.version = 99;
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, &o, &g), TFX_EVERSION);
    assert_null(g);
    tfx_render_options_init(&o, 1);
    o.compat = 7;
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, &o, &g), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "compat"));
    tfx_render_options_init(&o, 1);
    o.colormap = 9;
    assert_int_equal(tfx_render_filters(m, 1, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.image_weight = 1.5f;
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 2, 1, &o, &g), TFX_EINVAL);
    o.image_weight = NAN;
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.heatmap_weight = 2.0f;
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.rows = -1;
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.image_min = 1.0f;
    o.image_max = 0.0f;
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.reduce = 5;
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, &o, &g), TFX_EINVAL);
    tfx_render_options_init(&o, 1);
    o.saturate = 2;
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, &o, &g), TFX_EINVAL);
    /* NULL options = defaults */
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, NULL, &g), TFX_OK);
    tfx_image_free(g);
}

static void null_and_zero_args(void **state)
{
    (void)state;
    float m[16] = {0};
    uint8_t u[16] = {0}, rgb[48];
    tfx_image *g = (tfx_image *)1;
    assert_int_equal(tfx_render_grid(NULL, 1, 2, 2, 1, 0, 0, &g), TFX_EINVAL);
    assert_null(g);
    assert_int_equal(tfx_render_grid(u, 0, 2, 2, 1, 0, 0, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_grid(u, 1, 0, 2, 1, 0, 0, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_grid(u, 1, 2, 2, 5, 0, 0, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_grid(u, 1, 2, 2, 1, -1, 0, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_grid(u, 1, 2, 2, 1, 0, 0, NULL), TFX_EINVAL);
    assert_int_equal(tfx_render_filters(NULL, 1, 2, 2, 1, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_filters(m, 0, 2, 2, 1, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_filters(m, 1, 2, 2, 0, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_filters(m, 1, -2, 2, 1, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_saliency(NULL, 1, 2, 2, 1, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_saliency(m, 0, 2, 2, 1, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 0, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_saliency(m, 1, 2, 2, 1, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(NULL, 1, 2, 2, m, 2, 2, 3, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, NULL, 2, 2, 3, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(m, 0, 2, 2, m, 2, 2, 3, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(m, 1, 0, 2, m, 2, 2, 3, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 0, 3, NULL, &g), TFX_EINVAL);
    assert_int_equal(tfx_render_heatmap(m, 1, 2, 2, m, 2, 2, 2, NULL, &g), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "channels"));
    assert_int_equal(tfx_resize_bilinear(NULL, 2, 2, 1, m, 2, 2), TFX_EINVAL);
    assert_int_equal(tfx_resize_bilinear(m, 2, 2, 1, NULL, 2, 2), TFX_EINVAL);
    assert_int_equal(tfx_resize_bilinear(m, 0, 2, 1, m, 2, 2), TFX_EINVAL);
    assert_int_equal(tfx_resize_bilinear(m, 2, 2, 0, m, 2, 2), TFX_EINVAL);
    assert_int_equal(tfx_resize_bilinear(m, 2, 2, 1, m + 4, 2, -1), TFX_EINVAL);
    assert_int_equal(tfx_normalize_minmax(NULL, 1, m), TFX_EINVAL);
    assert_int_equal(tfx_normalize_minmax(m, 0, m), TFX_EINVAL);
    assert_int_equal(tfx_normalize_minmax(m, 1, NULL), TFX_EINVAL);
    const uint8_t *lut = (const uint8_t *)1;
    assert_int_equal(tfx_colormap_table(TFX_COLORMAP_DEFAULT, &lut), TFX_EINVAL);
    assert_null(lut);
    assert_int_equal(tfx_colormap_table(99, &lut), TFX_EINVAL);
    assert_int_equal(tfx_colormap_table(TFX_COLORMAP_JET, NULL), TFX_EINVAL);
    assert_int_equal(tfx_colormap_apply(TFX_COLORMAP_JET, NULL, 1, rgb), TFX_EINVAL);
    assert_int_equal(tfx_colormap_apply(TFX_COLORMAP_JET, m, 0, rgb), TFX_EINVAL);
    assert_int_equal(tfx_colormap_apply(-1, m, 1, rgb), TFX_EINVAL);
    assert_int_equal(tfx_colormap_apply_u8(TFX_COLORMAP_JET, u, 1, NULL), TFX_EINVAL);
}

/* A grid too large for a picture is refused with a message before allocating (ExtractActivations
 * on a layer with a million maps). */
static void huge_grids_refused(void **state)
{
    (void)state;
    float m[4] = {0};
    uint8_t u[4] = {0};
    tfx_image *g = NULL;
    assert_int_equal(tfx_render_grid(u, 2000000, 28, 28, 1, 0, 0, &g), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "exceed"));
    assert_int_equal(tfx_render_filters(m, 1000, 28, 28, 1000, NULL, &g), TFX_EINVAL); /* 784M pixels */
    assert_non_null(strstr(tfx_error_last()->message, "1000000 tiles"));
    assert_int_equal(tfx_render_saliency(m, 1, 40000, 1, 1, NULL, &g), TFX_EINVAL);
    assert_null(g);
}

static void normalize_and_colormap(void **state)
{
    (void)state;
    float a[5] = {1, 2, 3, 2.5f, 1}, b[5];
    assert_int_equal(tfx_normalize_minmax(a, 5, b), TFX_OK);
    assert_true(b[0] == 0.0f && b[1] == 0.5f && b[2] == 1.0f && b[3] == 0.75f && b[4] == 0.0f);
    float c[3] = {4, 4, 4};
    assert_int_equal(tfx_normalize_minmax(c, 3, c), TFX_OK); /* in place; constant -> zeros */
    assert_true(c[0] == 0.0f && c[1] == 0.0f && c[2] == 0.0f);
    float d[6] = {NAN, 1, INFINITY, -INFINITY, 3, 2};
    assert_int_equal(tfx_normalize_minmax(d, 6, d), TFX_OK);
    assert_true(d[0] == 0.0f && d[1] == 0.0f && d[2] == 1.0f && d[3] == 0.0f && d[4] == 1.0f && d[5] == 0.5f);
    const uint8_t *lut = NULL;
    assert_int_equal(tfx_colormap_table(TFX_COLORMAP_JET, &lut), TFX_OK);
    float v[7] = {0.0f, 1.0f, 0.5f, NAN, -1.0f, 2.0f, 0.499f};
    int idx[7] = {0, 255, 128, 0, 0, 255, 127};
    uint8_t rgb[21];
    assert_int_equal(tfx_colormap_apply(TFX_COLORMAP_JET, v, 7, rgb), TFX_OK);
    for (int i = 0; i < 7; i++) assert_memory_equal(rgb + 3 * i, lut + 3 * idx[i], 3);
    uint8_t u[3] = {0, 200, 255};
    assert_int_equal(tfx_colormap_apply_u8(TFX_COLORMAP_JET, u, 3, rgb), TFX_OK);
    for (int i = 0; i < 3; i++) assert_memory_equal(rgb + 3 * i, lut + 3 * u[i], 3);
    /* JET ends: OpenCV's dark blue (0,0,128) and dark red (128,0,0) */
    assert_memory_equal(lut, ((uint8_t[]){0, 0, 128}), 3);
    assert_memory_equal(lut + 765, ((uint8_t[]){128, 0, 0}), 3);
}

static void saliency_default(void **state)
{
    (void)state;
    tfx_image *g = NULL;
    /* no wrap-around, per-image min-max, rounded: [0,1,2,3] -> [0,85,170,255] for both samples
     * even though the second is 10x larger */
    float m[8] = {0, 1, 2, 3, 0, 10, 20, 30};
    assert_int_equal(tfx_render_saliency(m, 2, 2, 2, 1, NULL, &g), TFX_OK);
    assert_int_equal(g->width, 4);
    assert_int_equal(g->height, 4);
    static const uint8_t want[4] = {0, 85, 170, 255};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 4; i++) assert_int_equal(px(g, s * 2 + i % 2, i / 2, 0), want[i]);
    for (int y = 2; y < 4; y++)
        for (int x = 0; x < 4; x++) assert_int_equal(px(g, x, y, 0), 0); /* padding */
    tfx_image_free(g);
    /* batch normalisation: the first sample becomes dim: 3/30*255 = 25.5 -> 26 */
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    o.per_image = 0;
    assert_int_equal(tfx_render_saliency(m, 2, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 1, 1, 0), 26);
    assert_int_equal(px(g, 3, 1, 0), 255);
    tfx_image_free(g);
    /* channel reductions on signed gradients: sum |x| vs max |x| */
    float c3[6] = {1, -2, 0.5f, 0, 0, 0}; /* 1x2 map, 3 channels: pixel 0 sum 3.5 max 2 */
    float c3b[6] = {0, 0, 0, 0, 7, 0};    /* sample 2: pixel 1 dominates */
    float both[12];
    memcpy(both, c3, sizeof c3);
    memcpy(both + 6, c3b, sizeof c3b);
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.per_image = 0;
    assert_int_equal(tfx_render_saliency(both, 2, 1, 2, 3, &o, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 128); /* 3.5 / 7 * 255 = 127.5 -> 128 */
    tfx_image_free(g);
    o.reduce = TFX_REDUCE_MAX_ABS;
    assert_int_equal(tfx_render_saliency(both, 2, 1, 2, 3, &o, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 73); /* 2 / 7 * 255 = 72.86 -> 73 */
    assert_int_equal(px(g, 3, 0, 0), 255);
    tfx_image_free(g);
    /* NaN -> 0, +Inf -> 255, constant -> 0 */
    float bad[4] = {NAN, 1, INFINITY, 3};
    assert_int_equal(tfx_render_saliency(bad, 1, 2, 2, 1, NULL, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 0);
    assert_int_equal(px(g, 1, 0, 0), 0);
    assert_int_equal(px(g, 0, 1, 0), 255);
    assert_int_equal(px(g, 1, 1, 0), 255);
    tfx_image_free(g);
    float flat[4] = {5, 5, 5, 5};
    assert_int_equal(tfx_render_saliency(flat, 1, 2, 2, 1, NULL, &g), TFX_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(px(g, i % 2, i / 2, 0), 0);
    tfx_image_free(g);
    /* colormap: 3 channels, padding black by default; LUT[0] in compat */
    const uint8_t *v = NULL;
    tfx_colormap_table(TFX_COLORMAP_VIRIDIS, &v);
    float three[3] = {0, 1, 2};
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.colormap = TFX_COLORMAP_VIRIDIS;
    assert_int_equal(tfx_render_saliency(three, 3, 1, 1, 1, &o, &g), TFX_OK);
    assert_int_equal(g->channels, 3);
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 0, 0, k), v[k]); /* single pixel: constant -> 0 */
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 1, 1, k), 0);    /* padding */
    tfx_image_free(g);
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    assert_int_equal(tfx_render_saliency(three, 3, 1, 1, 1, &o, &g), TFX_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 1, 1, k), v[k]);
    tfx_image_free(g);
}

static void filters_default(void **state)
{
    (void)state;
    tfx_image *g = NULL;
    /* negative activations: padding stays black (compat would make it grey) and values round */
    float negs[2] = {-2, -1}; /* n=1, 1x1, k=2 */
    assert_int_equal(tfx_render_filters(negs, 1, 1, 1, 2, NULL, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 0);
    assert_int_equal(px(g, 1, 0, 0), 255);
    assert_int_equal(px(g, 0, 1, 0), 0);
    assert_int_equal(px(g, 1, 1, 0), 0);
    tfx_image_free(g);
    float three[3] = {0, 1, 2}; /* 1x3, k=1: 127.5 rounds to 128 (compat truncates to 127) */
    assert_int_equal(tfx_render_filters(three, 1, 1, 3, 1, NULL, &g), TFX_OK);
    assert_int_equal(px(g, 1, 0, 0), 128);
    tfx_image_free(g);
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    assert_int_equal(tfx_render_filters(three, 1, 1, 3, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 1, 0, 0), 127);
    tfx_image_free(g);
    /* per-image by default: two samples of different scale both span 0..255 */
    float two[4] = {0, 1, 0, 100}; /* n=2, 1x1, k=2 */
    assert_int_equal(tfx_render_filters(two, 2, 1, 1, 2, NULL, &g), TFX_OK);
    assert_int_equal(px(g, 1, 0, 0), 255);
    assert_int_equal(px(g, 1, 1, 0), 255);
    tfx_image_free(g);
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.per_image = 0;
    assert_int_equal(tfx_render_filters(two, 2, 1, 1, 2, &o, &g), TFX_OK);
    assert_int_equal(px(g, 1, 0, 0), 3); /* 1/100*255 = 2.55 -> 3 */
    tfx_image_free(g);
    /* JET colours */
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.colormap = TFX_COLORMAP_JET;
    const uint8_t *j = NULL;
    tfx_colormap_table(TFX_COLORMAP_JET, &j);
    assert_int_equal(tfx_render_filters(three, 1, 1, 3, 1, &o, &g), TFX_OK);
    assert_int_equal(g->channels, 3);
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 2, 0, k), j[3 * 255 + k]);
    tfx_image_free(g);
}

static void heatmap_default(void **state)
{
    (void)state;
    const uint8_t *v = NULL;
    tfx_colormap_table(TFX_COLORMAP_VIRIDIS, &v);
    tfx_image *g = NULL;
    /* [0,1] picture of 0.5 -> 128 (rounded; compat truncates to 127); map [[0,1],[2,3]] same
     * size -> indices round(255 * {0, 1/3, 2/3, 1}) = 0, 85, 170, 255 */
    float map[4] = {0, 1, 2, 3}, img[12];
    for (int i = 0; i < 12; i++) img[i] = 0.5f;
    assert_int_equal(tfx_render_heatmap(map, 1, 2, 2, img, 2, 2, 3, NULL, &g), TFX_OK);
    int idx[4] = {0, 85, 170, 255};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 3; k++) {
            double want = floor((double)0.7f * 128 + (double)0.3f * v[3 * idx[i] + k] + 0.5); /* float weights */
            assert_int_equal(px(g, i % 2, i / 2, k), (int)want);
        }
    tfx_image_free(g);
    /* float pictures in [0, 255] are recognised: no photographic negative */
    float bytes[4] = {0, 255, 128, 64}, flat[1] = {0.25f};
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    o.image_weight = 1.0f;
    assert_int_equal(tfx_render_heatmap(flat, 1, 1, 1, bytes, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 0);
    assert_int_equal(px(g, 1, 0, 1), 255);
    assert_int_equal(px(g, 0, 1, 2), 128);
    assert_int_equal(px(g, 1, 1, 0), 64);
    tfx_image_free(g);
    o.compat = TFX_COMPAT_TF_EXPLAIN; /* tf-explain: x*255 wraps: 255 -> 1, 64 -> 192 */
    assert_int_equal(tfx_render_heatmap(flat, 1, 1, 1, bytes, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 1, 0, 1), 1);
    assert_int_equal(px(g, 1, 1, 0), 192);
    tfx_image_free(g);
    /* an explicit picture range, [-1, 1] guessed, constant map -> colour 0 */
    float pic[4] = {-1, 1, 0, 0.5f};
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.image_weight = 1.0f;
    assert_int_equal(tfx_render_heatmap(flat, 1, 1, 1, pic, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 0);
    assert_int_equal(px(g, 1, 0, 0), 255);
    assert_int_equal(px(g, 0, 1, 0), 128);
    assert_int_equal(px(g, 1, 1, 0), 191); /* 0.75 * 255 = 191.25 */
    tfx_image_free(g);
    o.image_min = -2.0f;
    o.image_max = 2.0f;
    assert_int_equal(tfx_render_heatmap(flat, 1, 1, 1, pic, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(px(g, 0, 0, 0), 64); /* (-1 + 2) / 4 * 255 = 63.75 */
    tfx_image_free(g);
    o = (tfx_render_options)TFX_RENDER_OPTIONS_INIT;
    o.image_weight = 0.0f;
    float cmap[4] = {7, 7, 7, 7};
    assert_int_equal(tfx_render_heatmap(cmap, 1, 2, 2, img, 2, 2, 3, &o, &g), TFX_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 1, 1, k), v[k]);
    tfx_image_free(g);
    /* several samples: grid of RGB overlays, padding zero */
    float maps3[12] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 1, 2};
    float imgs3[36];
    for (int i = 0; i < 36; i++) imgs3[i] = (float)(i % 5) / 4.0f;
    assert_int_equal(tfx_render_heatmap(maps3, 3, 2, 2, imgs3, 2, 2, 3, NULL, &g), TFX_OK);
    assert_int_equal(g->width, 4);
    assert_int_equal(g->height, 4);
    for (int k = 0; k < 3; k++) assert_int_equal(px(g, 3, 3, k), 0);
    tfx_image *one = NULL;
    assert_int_equal(tfx_render_heatmap(maps3 + 4, 1, 2, 2, imgs3 + 12, 2, 2, 3, NULL, &one), TFX_OK);
    for (int y = 0; y < 2; y++) assert_memory_equal(g->pixels + (size_t)y * g->stride + 6, one->pixels + (size_t)y * one->stride, 6);
    tfx_image_free(one);
    tfx_image_free(g);
}

static void allocation_failures(void **state)
{
    (void)state;
    float maps[2 * 3 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    float imgs[2 * 6 * 6 * 3];
    for (size_t i = 0; i < sizeof imgs / sizeof imgs[0]; i++) imgs[i] = (float)(i % 7) / 7.0f;
    for (int which = 0; which < 4; which++) {
        int ok = 0;
        for (long k = 1; k < 50 && !ok; k++) {
            tfx_image *g = NULL;
            tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
            o.compat = which & 1;
            tfx__alloc_fail_after(k);
            int rc = which < 2 ? tfx_render_heatmap(maps, 2, 3, 3, imgs, 6, 6, 3, &o, &g)
                   : which == 2 ? tfx_render_saliency(maps, 2, 3, 3, 1, &o, &g)
                                : tfx_render_filters(maps, 2, 3, 3, 1, &o, &g);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                ok = 1;
                tfx_image_free(g);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
                assert_null(g);
            }
        }
        assert_true(ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options),          cmocka_unit_test(null_and_zero_args),
        cmocka_unit_test(huge_grids_refused), cmocka_unit_test(normalize_and_colormap),
        cmocka_unit_test(saliency_default), cmocka_unit_test(filters_default),
        cmocka_unit_test(heatmap_default),  cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
