/* The tf-explain style picture calls: grid layout and pixel values recomputed here from the
 * golden raw maps (tf-explain's arithmetic, research notes M1/U1/U2/U6), the rendering used
 * for each method and mode, the activations tile limit and bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "explain/explain_internal.h"
#include "render/render.h"
#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

static void check_err_at(int rc, int code, const char *substr, const char *file, int line)
{
    const tfx_error *e = tfx_error_last();
    if (rc != code || e->code != code || strstr(e->message, substr) == NULL) {
        print_error("%s:%d: rc %d (want %d), message \"%s\" (want substring \"%s\")\n", file, line, rc, code,
                    e->message, substr);
        fail_msg("error check failed");
    }
}
#define CHECK_ERR(call, code, substr)                                                              \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        int rc__ = (call);                                                                         \
        check_err_at(rc__, (code), (substr), __FILE__, __LINE__);                                  \
    } while (0)

/* ---- golden file ---- */

#include "../common/golden_file.h"
static garr G[64];
static int n_golden;

static const garr *golden(const char *name)
{
    if (!n_golden) n_golden = golden_file_load("tests/explain/golden_explain.bin", G, 64);
    return golden_file_find(G, n_golden, name);
}

static int group_teardown(void **state)
{
    (void)state;
    golden_file_free(G, n_golden);
    return 0;
}

static tfx_model *golden_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 10, 10, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    tfx_layer *l;
    c.filters = 4;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "conv1";
    OK(tfx_model_add_conv2d(m, &c, &l));
    OK(tfx_layer_set_weights(l, golden("w1")->data, golden("b1")->data));
    c.filters = 6;
    c.padding = TFX_PADDING_VALID;
    c.name = "visualization_layer";
    OK(tfx_model_add_conv2d(m, &c, &l));
    OK(tfx_layer_set_weights(l, golden("w2")->data, golden("b2")->data));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.name = "pool";
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    OK(tfx_model_add_flatten(m, "flatten", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 8;
    d.activation = TFX_ACTIVATION_RELU;
    d.name = "fc";
    OK(tfx_model_add_dense(m, &d, &l));
    OK(tfx_layer_set_weights(l, golden("w3")->data, golden("b3")->data));
    d.units = 5;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "out";
    OK(tfx_model_add_dense(m, &d, &l));
    OK(tfx_layer_set_weights(l, golden("w4")->data, golden("b4")->data));
    return m;
}

/* uint8 values equal up to one step (the last float rounding may differ), modulo 256 for wraps. */
static void near_u8(int got, int want, const char *what, int i)
{
    int d = (got - want + 256) % 256;
    if (d > 1 && d < 255) fail_msg("%s pixel %d: got %d, want %d", what, i, got, want);
}

/* ExtractActivations, tf-explain mode: 3 images x 6 maps = 18 tiles of 8x8 in a 5x5 grid,
 * sample-major, one min-max over the grid including the zero tiles, truncated. */
static void test_activations_picture(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const garr *act = golden("act_vis");
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    tfx_image *img;
    OK(tfx_extract_activations(m, golden("x")->data, 3, "visualization_layer", &o, &img));
    assert_int_equal(img->width, 40);
    assert_int_equal(img->height, 40);
    assert_int_equal(img->channels, 1);
    double mx = 0.0, mn = 0.0; /* padding tiles are 0; ReLU outputs are >= 0 */
    for (size_t i = 0; i < act->count; i++) mx = fmax(mx, act->data[i]);
    for (int t = 0; t < 25; t++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                double v = 0.0;
                if (t < 18) v = act->data[(((size_t)(t / 6) * 8 + y) * 8 + x) * 6 + t % 6];
                int want = (int)(255.0 * (v - mn) / (mx - mn));
                int got = img->pixels[(size_t)((t / 5) * 8 + y) * img->stride + (t % 5) * 8 + x];
                near_u8(got, want, "activations", t * 64 + y * 8 + x);
            }
    tfx_image_free(img);
    /* default mode: same layout, rendered by tfx_render_filters from the raw maps */
    o.compat = TFX_COMPAT_NONE;
    OK(tfx_extract_activations(m, golden("x")->data, 3, "visualization_layer", &o, &img));
    tfx_image *ref;
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    OK(tfx_render_filters(act->data, 3, 8, 8, 6, &ro, &ref));
    assert_int_equal(img->width, ref->width);
    int maxd = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            maxd = abs((int)img->pixels[y * img->stride + x] - (int)ref->pixels[y * ref->stride + x]) > maxd
                       ? abs((int)img->pixels[y * img->stride + x] - (int)ref->pixels[y * ref->stride + x])
                       : maxd;
    assert_true(maxd <= 1);
    tfx_image_free(img);
    tfx_image_free(ref);
    tfx_model_free(m);
}

/* Vanilla gradients, tf-explain mode: 2x2 grid of 10x10 grey tiles; pixel = uint8 wrap of
 * 255 z, z the batch z-score of sum_c |g| (gradient of the softmax output). */
static void test_vanilla_picture_compat(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const garr *g = golden("vanilla_compat"); /* classes 0, 2, 4 */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    tfx_image *img;
    /* One class per call, as tf-explain: image 0 with its golden class 0. */
    OK(tfx_vanilla_gradients(m, golden("x")->data, 1, 0, &o, &img));
    assert_int_equal(img->width, 10);
    assert_int_equal(img->height, 10);
    assert_int_equal(img->channels, 1);
    double s[100], mean = 0.0, var = 0.0;
    for (int p = 0; p < 100; p++) {
        s[p] = 0.0;
        for (int c = 0; c < 3; c++) s[p] += fabs(g->data[p * 3 + c]);
        mean += s[p] / 100.0;
    }
    for (int p = 0; p < 100; p++) var += (s[p] - mean) * (s[p] - mean) / 100.0;
    double sd = fmax(sqrt(var), 0.1);
    for (int p = 0; p < 100; p++) {
        double v = 255.0 * (s[p] - mean) / sd;
        int want = (int)(uint8_t)(int32_t)v; /* truncate, keep the low byte */
        near_u8(img->pixels[(p / 10) * img->stride + p % 10], want, "vanilla", p);
    }
    tfx_image_free(img);
    /* 3 images: a 2x2 grid, the 4th tile zero */
    OK(tfx_vanilla_gradients(m, golden("x")->data, 3, 0, &o, &img));
    assert_int_equal(img->width, 20);
    assert_int_equal(img->height, 20);
    for (int y = 10; y < 20; y++)
        for (int x = 10; x < 20; x++) assert_int_equal(img->pixels[y * img->stride + x], 0);
    tfx_image_free(img);
    tfx_model_free(m);
}

/* Every picture call equals the renderer applied to tfx_explain's raw maps, as documented. */
static void test_pictures_match_renderer(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data;
    for (int compat = 0; compat < 2; compat++)
        for (int method = TFX_METHOD_VANILLA_GRADIENTS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
            tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
            o.compat = compat;
            o.samples = 3;
            o.steps = 4;
            o.patch_size = 3;
            o.seed = 7;
            o.class_index = 2;
            o.method = method;
            tfx_image *img = NULL;
            int rc;
            switch (method) {
            case TFX_METHOD_VANILLA_GRADIENTS: rc = tfx_vanilla_gradients(m, x, 3, 2, &o, &img); break;
            case TFX_METHOD_GRADIENTS_INPUTS: rc = tfx_gradients_inputs(m, x, 3, 2, &o, &img); break;
            case TFX_METHOD_OCCLUSION: rc = tfx_occlusion_sensitivity(m, x, 3, 2, &o, &img); break;
            case TFX_METHOD_GRAD_CAM: rc = tfx_grad_cam(m, x, 3, 2, &o, &img); break;
            case TFX_METHOD_SMOOTH_GRAD: rc = tfx_smooth_grad(m, x, 3, 2, &o, &img); break;
            default: rc = tfx_integrated_gradients(m, x, 3, 2, &o, &img); break;
            }
            OK(rc);
            tfx_attribution *a;
            OK(tfx_explain(m, x, 3, &o, &a));
            tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
            ro.compat = compat;
            tfx_image *ref = NULL;
            int shp[3];
            OK(tfx_attribution_shape(a, shp));
            const float *d = tfx_attribution_data(a, 0);
            if (method == TFX_METHOD_GRAD_CAM) {
                OK(tfx_render_heatmap(d, 3, shp[0], shp[1], x, 10, 10, 3, &ro, &ref));
                assert_int_equal(ref->channels, 3);
            } else if (method == TFX_METHOD_OCCLUSION) {
                if (compat)
                    OK(tfx__render_heatmap_f64(a->cells, 3, a->cells_h, a->cells_w, x, 10, 10, 3, &ro, &ref));
                else
                    OK(tfx_render_heatmap(d, 3, shp[0], shp[1], x, 10, 10, 3, &ro, &ref));
            } else {
                ro.reduce = method == TFX_METHOD_VANILLA_GRADIENTS || method == TFX_METHOD_SMOOTH_GRAD
                                ? TFX_REDUCE_MAX_ABS
                                : TFX_REDUCE_SUM_ABS;
                OK(tfx_render_saliency(d, 3, shp[0], shp[1], shp[2], &ro, &ref));
                assert_int_equal(ref->channels, 1);
            }
            assert_int_equal(img->width, 20);
            assert_int_equal(img->height, 20);
            assert_int_equal(img->channels, ref->channels);
            for (int y = 0; y < 20; y++)
                assert_memory_equal(img->pixels + y * img->stride, ref->pixels + y * ref->stride,
                                    (size_t)20 * ref->channels);
            /* not a blank picture */
            int lo = 255, hi = 0;
            for (int y = 0; y < 10; y++)
                for (int xx = 0; xx < 10 * img->channels; xx++) {
                    int v = img->pixels[y * img->stride + xx];
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                }
            if (hi - lo < 20) fail_msg("method %d compat %d: flat picture (%d..%d)", method, compat, lo, hi);
            tfx_image_free(img);
            tfx_image_free(ref);
            tfx_attribution_free(a);
        }
    tfx_model_free(m);
}

/* A layer with a million feature maps is refused before any work. */
static void test_activations_tile_limit(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 1, 1, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 1000000;
    c.kernel_h = c.kernel_w = 1;
    c.name = "wide";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    float x[1] = {1.0f};
    tfx_image *img = (tfx_image *)1;
    CHECK_ERR(tfx_extract_activations(m, x, 1, "wide", NULL, &img), TFX_EINVAL,
              "1 images x 1000000 feature maps of layer 'wide' make 1000000 tiles, more than the limit of 65536");
    assert_null(img);
    tfx_model_free(m);
}

static void test_picture_bad_input(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data;
    tfx_image *img = (tfx_image *)1;
    CHECK_ERR(tfx_extract_activations(m, x, 1, NULL, NULL, &img), TFX_EINVAL, "'layers_name' is NULL");
    assert_null(img);
    CHECK_ERR(tfx_extract_activations(m, x, 1, "nope", NULL, &img), TFX_EINVAL, "no layer named 'nope'");
    CHECK_ERR(tfx_vanilla_gradients(m, x, 1, 0, NULL, NULL), TFX_EINVAL, "'out' is NULL");
    CHECK_ERR(tfx_vanilla_gradients(NULL, x, 1, 0, NULL, &img), TFX_EINVAL, "'m' is NULL");
    CHECK_ERR(tfx_grad_cam(m, x, 0, 0, NULL, &img), TFX_EINVAL, "n = 0");
    CHECK_ERR(tfx_smooth_grad(m, x, 1, 7, NULL, &img), TFX_EINVAL, "class index 7");
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.image_weight = 2.0f;
    CHECK_ERR(tfx_grad_cam(m, x, 1, 0, &o, &img), TFX_EINVAL, "image_weight = 2");
    o.image_weight = 0.7f;
    o.layer_name = "fc";
    CHECK_ERR(tfx_grad_cam(m, x, 1, 0, &o, &img), TFX_EINVAL, "tfx_grad_cam: tfx_explain: layer 'fc' (Dense)");
    o.version = 5;
    CHECK_ERR(tfx_integrated_gradients(m, x, 1, 0, &o, &img), TFX_EVERSION, "tfx_integrated_gradients");
    assert_null(img);
    /* allocation failures anywhere in explain + render: ENOMEM, no leak */
    for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
        tfx_explain_options q = TFX_EXPLAIN_OPTIONS_INIT;
        q.samples = 2;
        q.steps = 2;
        q.patch_size = 5;
        q.compat = method % 2;
        int ok = 0;
        for (long k = 1; k < 300 && !ok; k++) {
            tfx_model_free(m);
            m = golden_model();
            tfx__alloc_fail_after(k);
            int rc = method == TFX_METHOD_ACTIVATIONS ? tfx_extract_activations(m, x, 2, "pool", &q, &img)
                                                      : tfx__explain_picture(m, x, 2, method, 1, NULL, &q, &img);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                ok = 1;
                tfx_image_free(img);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
                assert_null(img);
            }
        }
        assert_true(ok);
    }
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations_picture),
        cmocka_unit_test(test_vanilla_picture_compat),
        cmocka_unit_test(test_pictures_match_renderer),
        cmocka_unit_test(test_activations_tile_limit),
        cmocka_unit_test(test_picture_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
