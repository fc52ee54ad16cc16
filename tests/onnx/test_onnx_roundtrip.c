/* Export round trip: a libtfx model -> tfx_model_save_onnx -> tfx_model_load_onnx gives the same
 * predictions (within 1e-6 of the output's largest magnitude) on the same NHWC inputs, the layer
 * names find the same layers (the exporter names each layer's last node and output tensor after
 * it), and Grad-CAM at a named layer gives the same maps. Models: the seed model (12x12 and its
 * CIFAR-10 size), the graph model, and the other export test models; xm_kinds and xm_flat without
 * their Reshape that mixes channels and positions, which the exporter writes as Transpose (to
 * NHWC), Reshape to [N, h, w, c], Transpose (to NCHW) and the importer refuses so far ("moves
 * values between channels and positions"): ONNX Runtime runs those (test_onnx_export_ort). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_models.h"

static char tmpdir[] = "/tmp/tfx_onnx_roundtrip_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static double max_abs(const float *a, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s = fmax(s, fabs(a[i]));
    return s;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* Grad-CAM maps of both models at `layer` (found by name in the loaded one), equal within 1e-5. */
static void same_grad_cam(tfx_model *a, tfx_model *b, const float *x, size_t n, const char *layer)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_GRAD_CAM;
    o.layer_name = layer;
    tfx_attribution *ra, *rb;
    assert_int_equal(tfx_explain(a, x, n, &o, &ra), TFX_OK);
    if (tfx_explain(b, x, n, &o, &rb) != TFX_OK)
        fail_msg("loaded model, Grad-CAM at '%s': %s", layer, tfx_error_last()->message);
    int sa[3], sb[3];
    assert_int_equal(tfx_attribution_shape(ra, sa), TFX_OK);
    assert_int_equal(tfx_attribution_shape(rb, sb), TFX_OK);
    assert_memory_equal(sa, sb, sizeof sa);
    const size_t per = (size_t)sa[0] * sa[1] * sa[2];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tfx_attribution_class_index(ra, i), tfx_attribution_class_index(rb, i));
        const float *ma = tfx_attribution_data(ra, i), *mb = tfx_attribution_data(rb, i);
        const double scale = max_abs(ma, per), d = max_diff(ma, mb, per);
        printf("  grad-cam at '%s', image %zu: max |map| %.4g, max difference %.3g\n", layer, i, scale, d);
        assert_true(d <= 1e-5 * fmax(scale, 1e-6));
    }
    tfx_attribution_free(ra);
    tfx_attribution_free(rb);
}

static void round_trip(int (*build)(tfx_model **), const char *file, const char *cam_layer)
{
    enum { N = 3 };
    tfx_model *m, *back = NULL;
    assert_int_equal(build(&m), TFX_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_OK);
    if (tfx_model_load_onnx(&back, path, NULL) != TFX_OK) fail_msg("loading %s: %s", file, tfx_error_last()->message);
    int s0[3], s1[3];
    assert_int_equal(tfx_model_input_shape(m, s0), TFX_OK);
    assert_int_equal(tfx_model_input_shape(back, s1), TFX_OK);
    assert_memory_equal(s0, s1, sizeof s0);
    assert_int_equal(tfx_model_output_shape(m, s0), TFX_OK);
    assert_int_equal(tfx_model_output_shape(back, s1), TFX_OK);
    /* a flat output stays (1, 1, k); a feature map comes back as the same NHWC map */
    assert_memory_equal(s0, s1, sizeof s0);
    size_t nx, ny = N * (size_t)s0[0] * s0[1] * s0[2];
    float *x = xm_input(m, N, 11, &nx), *y0 = malloc(ny * sizeof(float)), *y1 = malloc(ny * sizeof(float));
    assert_true(x && y0 && y1);
    assert_int_equal(tfx_model_predict(m, x, N, y0), TFX_OK);
    assert_int_equal(tfx_model_predict(back, x, N, y1), TFX_OK);
    const double scale = max_abs(y0, ny), d = max_diff(y0, y1, ny);
    printf("%-14s %zu -> %zu layers, %zu outputs: max |y| %.4g, max difference %.3g (%.2g relative)\n", file,
           tfx_model_layer_count(m), tfx_model_layer_count(back), ny, scale, d, d / scale);
    assert_true(d <= 1e-6 * scale);
    /* every layer name finds a layer of the loaded model (a node name or an output tensor name) */
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        const char *name = tfx_layer_name(tfx_model_layer(m, i));
        if (!tfx_model_find_layer(back, name))
            fail_msg("loaded %s: no layer '%s': %s", file, name, tfx_error_last()->message);
    }
    if (cam_layer) same_grad_cam(m, back, x, N, cam_layer);
    free(x);
    free(y0);
    free(y1);
    tfx_model_free(back);
    tfx_model_free(m);
}

static void test_roundtrip_seed(void **state)
{
    (void)state;
    round_trip(xm_seed, "seed.onnx", "visualization_layer");
}
static void test_roundtrip_seed_full(void **state)
{
    (void)state;
    round_trip(xm_seed_full, "seed_full.onnx", "visualization_layer");
}
static void test_roundtrip_graph(void **state)
{
    (void)state;
    round_trip(xm_graph, "graph.onnx", "se_scale");
}
static void test_roundtrip_kinds(void **state)
{
    (void)state;
    round_trip(xm_kinds_no_mixing_reshape, "kinds.onnx", "depthwise");
}
static void test_roundtrip_acts(void **state)
{
    (void)state;
    round_trip(xm_acts, "acts.onnx", NULL);
}
static void test_roundtrip_flat(void **state)
{
    (void)state;
    round_trip(xm_flat_no_mixing_reshape, "flat.onnx", NULL);
}
static void test_roundtrip_map_out(void **state)
{
    (void)state;
    round_trip(xm_map_out, "map_out.onnx", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_seed),    cmocka_unit_test(test_roundtrip_seed_full),
        cmocka_unit_test(test_roundtrip_graph),   cmocka_unit_test(test_roundtrip_kinds),
        cmocka_unit_test(test_roundtrip_acts),    cmocka_unit_test(test_roundtrip_flat),
        cmocka_unit_test(test_roundtrip_map_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
