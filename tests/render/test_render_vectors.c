/* tf-explain compat: research/tf-explain.md Appendix B vectors and tf-explain's own unit-test
 * vectors (U1, U3, M1), reproduced exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "render/render.h"
#include "tfx/image.h"

static tfx_render_options compat_opts(void)
{
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    return o;
}

/* B1: heatmap [[0,1],[2,3]] over a 4x4x3 picture of 0.5, VIRIDIS, weights 0.7 / 0.3. */
static void b1_heatmap_master(void **state)
{
    (void)state;
    static const uint8_t R[16] = {109, 110, 107, 104, 109, 107, 101, 99, 99, 98, 116, 132, 105, 116, 148, 165};
    static const uint8_t G[16] = {89, 98, 113, 120, 106, 113, 126, 132, 132, 138, 149, 153, 144, 149, 156, 158};
    static const uint8_t B[16] = {114, 122, 131, 132, 128, 131, 132, 131, 131, 129, 119, 110, 125, 119, 99, 100};
    float map[4] = {0, 1, 2, 3}, img[48];
    for (int i = 0; i < 48; i++) img[i] = 0.5f;
    tfx_render_options o = compat_opts();
    tfx_image *out = NULL;
    assert_int_equal(tfx_render_heatmap(map, 1, 2, 2, img, 4, 4, 3, &o, &out), TFX_OK);
    assert_int_equal(out->width, 4);
    assert_int_equal(out->height, 4);
    assert_int_equal(out->channels, 3);
    for (int i = 0; i < 16; i++) {
        const uint8_t *p = out->pixels + (size_t)(i / 4) * out->stride + (size_t)(i % 4) * 3;
        assert_int_equal(p[0], R[i]);
        assert_int_equal(p[1], G[i]);
        assert_int_equal(p[2], B[i]);
    }
    tfx_image_free(out);
}

/* B1: the colour indices after resize + normalisation (blend weight 0 on the picture). */
static void b1_colour_indices(void **state)
{
    (void)state;
    static const int idx[16] = {0, 21, 63, 85, 42, 63, 106, 127, 127, 148, 191, 212, 170, 191, 233, 255};
    const uint8_t *lut = NULL;
    assert_int_equal(tfx_colormap_table(TFX_COLORMAP_VIRIDIS, &lut), TFX_OK);
    float map[4] = {0, 1, 2, 3}, img[48];
    for (int i = 0; i < 48; i++) img[i] = 0.5f;
    tfx_render_options o = compat_opts();
    o.image_weight = 0.0f;
    tfx_image *out = NULL;
    assert_int_equal(tfx_render_heatmap(map, 1, 2, 2, img, 4, 4, 3, &o, &out), TFX_OK);
    for (int i = 0; i < 16; i++)
        assert_memory_equal(out->pixels + (size_t)(i / 4) * out->stride + (size_t)(i % 4) * 3, lut + 3 * idx[i], 3);
    tfx_image_free(out);
    /* The resized, normalised map itself: 0.000 0.083 0.250 0.333 / ... */
    static const float norm[16] = {0.0f, 1 / 12.f, 3 / 12.f, 4 / 12.f, 2 / 12.f, 3 / 12.f, 5 / 12.f, 6 / 12.f,
                                   6 / 12.f, 7 / 12.f, 9 / 12.f, 10 / 12.f, 8 / 12.f, 9 / 12.f, 11 / 12.f, 1.0f};
    float rs[16], nm[16];
    assert_int_equal(tfx_resize_bilinear(map, 2, 2, 1, rs, 4, 4), TFX_OK);
    assert_int_equal(tfx_normalize_minmax(rs, 16, nm), TFX_OK);
    for (int i = 0; i < 16; i++) assert_true(nm[i] > norm[i] - 1e-6f && nm[i] < norm[i] + 1e-6f);
}

/* B1 with PyPI 0.3.1's blend (0.7 / 1.0): R channel. */
static void b1_heatmap_pypi(void **state)
{
    (void)state;
    static const uint8_t R[16] = {157, 161, 148, 138, 157, 148, 129, 122, 122, 121, 181, 231, 142, 181, 255, 255};
    float map[4] = {0, 1, 2, 3}, img[48];
    for (int i = 0; i < 48; i++) img[i] = 0.5f;
    tfx_render_options o = compat_opts();
    o.heatmap_weight = 1.0f;
    tfx_image *out = NULL;
    assert_int_equal(tfx_render_heatmap(map, 1, 2, 2, img, 4, 4, 3, &o, &out), TFX_OK);
    for (int i = 0; i < 16; i++) assert_int_equal(out->pixels[(size_t)(i / 4) * out->stride + (size_t)(i % 4) * 3], R[i]);
    tfx_image_free(out);
}

/* B2: transform_to_normalized_grayscale on channel sums [0, 1, 2, 3]: CPU wrap and GPU saturate. */
static void b2_grayscale(void **state)
{
    (void)state;
    float maps[4] = {0, 1, 2, 3};
    static const uint8_t wrap[4] = {170, 142, 114, 86}, sat[4] = {0, 0, 114, 255};
    tfx_render_options o = compat_opts();
    tfx_image *out = NULL;
    assert_int_equal(tfx_render_saliency(maps, 1, 2, 2, 1, &o, &out), TFX_OK);
    assert_int_equal(out->channels, 1);
    assert_int_equal(out->width, 2);
    for (int i = 0; i < 4; i++) assert_int_equal(out->pixels[(size_t)(i / 2) * out->stride + (size_t)(i % 2)], wrap[i]);
    tfx_image_free(out);
    o.saturate = 1;
    assert_int_equal(tfx_render_saliency(maps, 1, 2, 2, 1, &o, &out), TFX_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(out->pixels[(size_t)(i / 2) * out->stride + (size_t)(i % 2)], sat[i]);
    tfx_image_free(out);
    /* Same sums spread over 3 channels (abs first): identical result. */
    float maps3[12] = {0, 0, 0, 0.5f, -0.25f, 0.25f, 1, 1, 0, -3, 0, 0};
    o.saturate = 0;
    assert_int_equal(tfx_render_saliency(maps3, 1, 2, 2, 3, &o, &out), TFX_OK);
    for (int i = 0; i < 4; i++) assert_int_equal(out->pixels[(size_t)(i / 2) * out->stride + (size_t)(i % 2)], wrap[i]);
    tfx_image_free(out);
    /* U6 test: (4, 28, 28, 3) -> four 28x28 maps in a 2x2 grid. */
    static float big[4 * 28 * 28 * 3];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) big[i] = (float)(i % 97) / 7.0f;
    assert_int_equal(tfx_render_saliency(big, 4, 28, 28, 3, &o, &out), TFX_OK);
    assert_int_equal(out->width, 56);
    assert_int_equal(out->height, 56);
    tfx_image_free(out);
}

/* B3 and U1: 5 tiles of 28x28 -> 84x84, row-major, 4 zero tiles. */
static void b3_grid(void **state)
{
    (void)state;
    static uint8_t tiles[5 * 28 * 28];
    for (int t = 0; t < 5; t++) memset(tiles + t * 784, t + 1, 784);
    tfx_image *g = NULL;
    assert_int_equal(tfx_render_grid(tiles, 5, 28, 28, 1, 0, 0, &g), TFX_OK);
    assert_int_equal(g->width, 84);
    assert_int_equal(g->height, 84);
    for (int y = 0; y < 84; y++)
        for (int x = 0; x < 84; x++) {
            int t = (y / 28) * 3 + x / 28;
            assert_int_equal(g->pixels[(size_t)y * g->stride + (size_t)x], t < 5 ? t + 1 : 0);
        }
    tfx_image_free(g);
}

static void u1_grid_shapes(void **state)
{
    (void)state;
    static uint8_t tiles[7 * 28 * 28 * 3];
    for (size_t i = 0; i < sizeof tiles; i++) tiles[i] = (uint8_t)(1 + i % 251);
    struct { int rows, cols, h, w; } cases[] = {
        {0, 0, 84, 84}, {10, 10, 280, 280}, {0, 7, 28, 196}, {7, 0, 196, 28}, {1, 1, 196, 28},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tfx_image *g = NULL;
        assert_int_equal(tfx_render_grid(tiles, 7, 28, 28, 3, cases[c].rows, cases[c].cols, &g), TFX_OK);
        assert_int_equal(g->height, cases[c].h);
        assert_int_equal(g->width, cases[c].w);
        assert_int_equal(g->channels, 3);
        if (c == 0) {
            /* padding all zero in rows 56: and columns 28: */
            for (int y = 56; y < 84; y++)
                for (int x = 28 * 3; x < 84 * 3; x++) assert_int_equal(g->pixels[(size_t)y * g->stride + (size_t)x], 0);
            /* tile 6 at row 2, column 0, unchanged */
            for (int y = 0; y < 28; y++)
                assert_memory_equal(g->pixels + (size_t)(56 + y) * g->stride, tiles + 6 * 2352 + (size_t)y * 84, 84);
        }
        tfx_image_free(g);
    }
    /* 3 items -> 2x2, 7 -> 3x3 */
    tfx_image *g = NULL;
    assert_int_equal(tfx_render_grid(tiles, 3, 28, 28, 3, 0, 0, &g), TFX_OK);
    assert_int_equal(g->width, 56);
    tfx_image_free(g);
}

/* M1: a grid [[1,2],[1,2]] normalises to [[0,255],[0,255]]. */
static void m1_filters_normalisation(void **state)
{
    (void)state;
    float acts[4] = {1, 2, 1, 2};
    tfx_render_options o = compat_opts();
    tfx_image *g = NULL;
    assert_int_equal(tfx_render_filters(acts, 1, 2, 2, 1, &o, &g), TFX_OK);
    assert_int_equal(g->pixels[0], 0);
    assert_int_equal(g->pixels[1], 255);
    assert_int_equal(g->pixels[g->stride], 0);
    assert_int_equal(g->pixels[g->stride + 1], 255);
    tfx_image_free(g);
    /* constant grid (no padding): 0/0 -> NaN -> 0 everywhere */
    float flat[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    assert_int_equal(tfx_render_filters(flat, 1, 2, 4, 1, &o, &g), TFX_OK);
    assert_int_equal(g->width, 4);
    assert_int_equal(g->height, 2);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++) assert_int_equal(g->pixels[(size_t)y * g->stride + (size_t)x], 0);
    tfx_image_free(g);
    /* the same values as 2 tiles: the zero padding takes part in min/max (3 -> 255, padding 0) */
    assert_int_equal(tfx_render_filters(flat, 1, 2, 2, 2, &o, &g), TFX_OK);
    assert_int_equal(g->width, 4);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            assert_int_equal(g->pixels[(size_t)y * g->stride + (size_t)x], y < 2 ? 255 : 0);
    tfx_image_free(g);
    /* negative activations: padding 0 normalises to grey, as tf-explain draws it */
    float negs[2] = {-2, -1}; /* n=1, 1x1, k=2 -> 2x2 grid, padding 0 is the max */
    assert_int_equal(tfx_render_filters(negs, 1, 1, 1, 2, &o, &g), TFX_OK);
    assert_int_equal(g->pixels[0], 0);
    assert_int_equal(g->pixels[1], 127); /* (-1 + 2) / 2 * 255 = 127.5 truncated */
    assert_int_equal(g->pixels[g->stride], 255);
    assert_int_equal(g->pixels[g->stride + 1], 255);
    tfx_image_free(g);
    /* sample-major, channel-minor tiles: sample s channel j is tile s*k + j */
    float sm[2 * 1 * 1 * 2] = {10, 20, 30, 40}; /* n=2, 1x1, k=2 -> tiles 10,20,30,40 in 2x2 */
    assert_int_equal(tfx_render_filters(sm, 2, 1, 1, 2, &o, &g), TFX_OK);
    assert_int_equal(g->pixels[0], 0);
    assert_int_equal(g->pixels[1], 85);
    assert_int_equal(g->pixels[g->stride], 170);
    assert_int_equal(g->pixels[g->stride + 1], 255);
    tfx_image_free(g);
}

/* U3 image_to_uint_255 and Appendix C7. */
static void u3_image_to_uint255(void **state)
{
    (void)state;
    float ones[4] = {1 / 255.f, 1 / 255.f, 1 / 255.f, 1 / 255.f};
    uint8_t out[4];
    tfx__tfe_image_to_uint255(ones, 4, out);
    assert_int_equal(out[0], 1);
    float neg[2] = {-1 / 255.f, -1 / 255.f};
    tfx__tfe_image_to_uint255(neg, 2, out);
    assert_int_equal(out[0], 127);
    float bytes[4] = {0, 1, 128, 255}; /* float pictures in [0, 255] overflow: x*255 mod 256 */
    tfx__tfe_image_to_uint255(bytes, 4, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 255);
    assert_int_equal(out[2], 128);
    assert_int_equal(out[3], 1);
    /* the casts */
    assert_int_equal(tfx__u8_wrap(-1.0), 255);
    assert_int_equal(tfx__u8_wrap(-114.0), 142);
    assert_int_equal(tfx__u8_wrap(300.0), 44);
    assert_int_equal(tfx__u8_wrap(-342.1), 170);
    assert_int_equal(tfx__u8_wrap(1e10), 0);
    assert_int_equal(tfx__u8_wrap(0.0 / 0.0), 0);
    assert_int_equal(tfx__u8_trunc_sat(-5.0), 0);
    assert_int_equal(tfx__u8_trunc_sat(254.99), 254);
    assert_int_equal(tfx__u8_trunc_sat(300.0), 255);
    assert_int_equal(tfx__u8_round(254.5), 255);
    assert_int_equal(tfx__u8_round(127.5), 128);
    assert_int_equal(tfx__u8_round(127.49), 127);
    assert_int_equal(tfx__u8_round(-3.0), 0);
    assert_int_equal(tfx__u8_round(1e30), 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b1_heatmap_master), cmocka_unit_test(b1_colour_indices),
        cmocka_unit_test(b1_heatmap_pypi),   cmocka_unit_test(b2_grayscale),
        cmocka_unit_test(b3_grid),           cmocka_unit_test(u1_grid_shapes),
        cmocka_unit_test(m1_filters_normalisation), cmocka_unit_test(u3_image_to_uint255),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
