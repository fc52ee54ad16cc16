/* The methods beyond tf-explain's seven against golden values from PyTorch (gen_golden_methods.py:
 * hooks on the ReLU backward for guided backprop / DeconvNet, the documented CAM formulas, numpy SVD), LRP
 * identities (LRP-0 = gradient x input on a bias-free ReLU net; z+ = alpha1-beta0 on positive
 * inputs; per-layer conservation reported by tfx_attribution_relevance_sums), the noise tunnel,
 * Score-CAM over thousands of channels in bounded memory, metrics, and bad input. */
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
#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

static void check_err_at(int rc, int code, const char *s1, const char *s2, const char *file, int line)
{
    const tfx_error *e = tfx_error_last();
    if (rc != code || e->code != code || strstr(e->message, s1) == NULL || (s2 && strstr(e->message, s2) == NULL)) {
        print_error("%s:%d: rc %d (want %d), message \"%s\" (want \"%s\"%s%s)\n", file, line, rc, code, e->message,
                    s1, s2 ? " and " : "", s2 ? s2 : "");
        fail_msg("error check failed");
    }
}
#define CHECK_ERR(call, code, s1, s2)                                                              \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        int rc__ = (call);                                                                         \
        check_err_at(rc__, (code), (s1), (s2), __FILE__, __LINE__);                                \
    } while (0)

static int under_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

/* ---- golden file ---- */

#include "../common/golden_file.h"

static garr G[96];
static int n_golden;
static int CLASSES[3];
static const garr *golden(const char *name);

static void load_golden(void)
{
    if (n_golden) return;
    n_golden = golden_file_load("tests/explain/golden_methods.bin", G, 96);
    for (int i = 0; i < 3; i++) CLASSES[i] = (int)golden("classes")->data[i];
}

static const garr *golden(const char *name)
{
    load_golden();
    return golden_file_find(G, n_golden, name);
}

static int group_teardown(void **state)
{
    (void)state;
    golden_file_free(G, n_golden);
    n_golden = 0;
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

static double rel_err_data(const float *d, const float *ref, size_t cnt)
{
    double num = 0.0, den = 0.0;
    for (size_t j = 0; j < cnt; j++) {
        num = fmax(num, fabs(d[j] - ref[j]));
        den = fmax(den, fabs(ref[j]));
    }
    assert_true(den > 0.0);
    return num / den;
}

static double rel_err(const tfx_attribution *a, const garr *ref)
{
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    size_t per = (size_t)shp[0] * shp[1] * shp[2];
    assert_int_equal(per * tfx_attribution_count(a), ref->count);
    return rel_err_data(tfx_attribution_data(a, 0), ref->data, ref->count);
}

static tfx_explain_options opts(int method)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    o.class_indices = CLASSES;
    return o;
}

static void expect_golden(tfx_model *m, const tfx_explain_options *o, const char *name, int h, int w, int c)
{
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, o, &a));
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    assert_int_equal(shp[0], h);
    assert_int_equal(shp[1], w);
    assert_int_equal(shp[2], c);
    double e = rel_err(a, golden(name));
    if (e > 1e-4) fail_msg("%s: relative error %g > 1e-4", name, e);
    print_message("  %-24s rel err %.2e\n", name, e);
    tfx_attribution_free(a);
}

/* ---- golden comparisons ---- */

static void test_golden_guided_family(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    tfx_explain_options o = opts(TFX_METHOD_VANILLA_GRADIENTS);
    expect_golden(m, &o, "vanilla", 10, 10, 3); /* the golden model is the same as libtfx's */
    o = opts(TFX_METHOD_GUIDED_BACKPROP);
    expect_golden(m, &o, "guided_backprop", 10, 10, 3);
    o = opts(TFX_METHOD_DECONVNET);
    expect_golden(m, &o, "deconvnet", 10, 10, 3);
    o = opts(TFX_METHOD_GUIDED_GRAD_CAM);
    o.layer_name = "visualization_layer";
    expect_golden(m, &o, "guided_grad_cam", 10, 10, 3);
    tfx_model_free(m);
}

static void test_golden_cams(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    static const struct {
        int method, variant;
        const char *name;
    } cases[] = {
        {TFX_METHOD_GRAD_CAM_PLUS_PLUS, 0, "gradcampp"},
        {TFX_METHOD_GRAD_CAM_PLUS_PLUS, 1, "gradcampp_norm"},
        {TFX_METHOD_GRAD_CAM_PLUS_PLUS, 2, "gradcampp_normpos"},
        {TFX_METHOD_SCORE_CAM, TFX_SCORE_CAM_SOFTMAX_CLASSES, "scorecam_classes"},
        {TFX_METHOD_SCORE_CAM, TFX_SCORE_CAM_SOFTMAX_CHANNELS, "scorecam_channels"},
        {TFX_METHOD_LAYER_CAM, 0, "layercam"},
        {TFX_METHOD_HIRES_CAM, 0, "hirescam"},
        {TFX_METHOD_XGRAD_CAM, 0, "xgradcam"},
        {TFX_METHOD_EIGEN_CAM, 0, "eigencam"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int upsample = 0; upsample < 2; upsample++) {
            tfx_explain_options o = opts(cases[i].method);
            o.layer_name = "visualization_layer";
            o.cam_alpha_normalize = cases[i].method == TFX_METHOD_GRAD_CAM_PLUS_PLUS ? cases[i].variant : 0;
            o.score_cam_weights = cases[i].method == TFX_METHOD_SCORE_CAM ? cases[i].variant : 0;
            o.upsample = upsample;
            o.batch_size = 4; /* Score-CAM: 6 masks per image in chunks of 4 */
            char name[64];
            snprintf(name, sizeof name, "%s%s", cases[i].name, upsample ? "_up" : "");
            expect_golden(m, &o, name, upsample ? 10 : 8, upsample ? 10 : 8, 1);
        }
    tfx_model_free(m);
}

static void test_golden_noise_tunnel(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    static const struct {
        int tunnel;
        const char *name;
    } cases[] = {{TFX_TUNNEL_SMOOTHGRAD, "nt_smoothgrad"},
                 {TFX_TUNNEL_SMOOTHGRAD_SQ, "nt_smoothgrad_sq"},
                 {TFX_TUNNEL_VARGRAD, "nt_vargrad"}};
    for (size_t i = 0; i < 3; i++) {
        tfx_explain_options o = opts(TFX_METHOD_NOISE_TUNNEL);
        o.tunnel = cases[i].tunnel;
        o.samples = 4;
        o.noise = 0.2f;
        o.batch_size = 5;
        tfx__explain_hooks hooks = {golden("nt_eps")->data, 0, NULL};
        tfx_attribution *a;
        OK(tfx__explain_run(m, golden("x")->data, 3, &o, &hooks, &a));
        double e = rel_err(a, golden(cases[i].name));
        print_message("  %-24s rel err %.2e\n", cases[i].name, e);
        if (e > 1e-4) fail_msg("%s: relative error %g", cases[i].name, e);
        tfx_attribution_free(a);
    }
    /* The tunnel over vanilla gradients is SmoothGrad (same rows, same generator); guided
     * SmoothGrad is the tunnel over guided backprop. */
    tfx_attribution *a, *b;
    tfx_explain_options o = opts(TFX_METHOD_NOISE_TUNNEL);
    o.samples = 6;
    o.seed = 42;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    o.method = TFX_METHOD_SMOOTH_GRAD;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &b));
    assert_memory_equal(tfx_attribution_data(a, 0), tfx_attribution_data(b, 0), 3 * 300 * sizeof(float));
    tfx_attribution_free(a);
    tfx_attribution_free(b);
    o.method = TFX_METHOD_NOISE_TUNNEL;
    o.base_method = TFX_METHOD_GUIDED_BACKPROP;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    o.method = TFX_METHOD_GUIDED_SMOOTH_GRAD;
    o.batch_size = 1; /* and batching does not matter beyond BLAS rounding */
    OK(tfx_explain(m, golden("x")->data, 3, &o, &b));
    double e = rel_err_data(tfx_attribution_data(b, 0), tfx_attribution_data(a, 0), 900);
    assert_true(e < 1e-5);
    /* noise 0: guided SmoothGrad is guided backprop */
    tfx_attribution_free(b);
    o.noise = 0.0f;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &b));
    assert_true(rel_err(b, golden("guided_backprop")) < 1e-4);
    tfx_attribution_free(a);
    tfx_attribution_free(b);
    tfx_model_free(m);
}

/* ---- LRP ---- */

/* A ReLU network without biases: conv - maxpool - conv - avgpool - flatten - dense - dense. */
static tfx_model *bias_free_model(uint64_t seed, int gap)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 12, 12, 2));
    OK(tfx_model_set_seed(m, seed));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 5;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU;
    c.use_bias = 0;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    c.filters = 7;
    c.padding = TFX_PADDING_VALID;
    c.stride_h = c.stride_w = 1;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    if (gap) {
        OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    } else {
        OK(tfx_model_add_average_pooling2d(m, &p, NULL));
        OK(tfx_model_add_flatten(m, NULL, NULL));
    }
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 6;
    d.activation = TFX_ACTIVATION_RELU;
    d.use_bias = 0;
    OK(tfx_model_add_dense(m, &d, NULL));
    d.units = 4;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

static float *random_images(size_t n, size_t sz, uint64_t seed)
{
    float *x = malloc(n * sz * sizeof(float));
    uint64_t s = seed;
    for (size_t i = 0; i < n * sz; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 40) & 0xffff) / 65535.0f;
    }
    return x;
}

static void test_lrp0_equals_gradient_times_input(void **state)
{
    (void)state;
    for (int gap = 0; gap < 2; gap++) {
        tfx_model *m = bias_free_model(11 + gap, gap);
        float *x = random_images(4, 12 * 12 * 2, 5 + gap);
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = TFX_METHOD_LRP;
        o.lrp_rule = TFX_LRP_0;
        tfx_attribution *a, *b;
        OK(tfx_explain(m, x, 4, &o, &a));
        o.method = TFX_METHOD_GRADIENTS_INPUTS;
        OK(tfx_explain(m, x, 4, &o, &b));
        double e = rel_err_data(tfx_attribution_data(a, 0), tfx_attribution_data(b, 0), 4 * 288);
        print_message("  LRP-0 vs gradient x input (%s): rel err %.2e\n", gap ? "GAP" : "avg pool", e);
        assert_true(e <= 1e-4);
        tfx_attribution_free(a);
        tfx_attribution_free(b);
        free(x);
        tfx_model_free(m);
    }
}

/* Largest |sums[j] - sums[j+1]| / |S| over the layer boundaries of image i. */
static double conservation_gap(const tfx_attribution *a, size_t i, size_t layers)
{
    double sums[32];
    size_t cnt;
    OK(tfx_attribution_relevance_sums(a, i, sums, 32, &cnt));
    assert_int_equal(cnt, layers + 1);
    double S = fabs(sums[layers]), gap = 0.0;
    for (size_t j = 0; j < layers; j++) gap = fmax(gap, fabs(sums[j] - sums[j + 1]) / S);
    return gap;
}

static void test_lrp_conservation(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data;
    tfx_attribution *a;
    /* z+ ignores biases: conserved at every layer up to float rounding (documented 1e-5). */
    tfx_explain_options o = opts(TFX_METHOD_LRP);
    o.lrp_rule = TFX_LRP_ZPLUS;
    OK(tfx_explain(m, x, 3, &o, &a));
    for (size_t i = 0; i < 3; i++) {
        double sums[8];
        size_t cnt;
        OK(tfx_attribution_relevance_sums(a, i, sums, 8, &cnt));
        /* the seed is the logit of the class */
        assert_true(fabs(sums[6] - golden("logits")->data[i * 5 + CLASSES[i]]) < 1e-5);
        /* the input total is the map's sum */
        double t = 0.0;
        for (size_t j = 0; j < 300; j++) t += tfx_attribution_data(a, i)[j];
        assert_true(fabs(t - sums[0]) <= 1e-5 * fabs(sums[6]));
        double g = conservation_gap(a, i, 6);
        print_message("  z+ conservation gap image %zu: %.2e\n", i, g);
        assert_true(g <= 1e-5);
    }
    tfx_attribution_free(a);
    /* alpha-beta (2, 1): conserved as well where both parts exist. Epsilon with biases is not:
     * the API reports the absorbed share, which must grow with epsilon. */
    o.lrp_rule = TFX_LRP_ALPHA_BETA;
    o.lrp_alpha = 2.0f;
    o.lrp_beta = 1.0f;
    OK(tfx_explain(m, x, 3, &o, &a));
    for (size_t i = 0; i < 3; i++) assert_true(conservation_gap(a, i, 6) <= 1e-4);
    tfx_attribution_free(a);
    tfx_model_free(m);

    /* epsilon on a bias-free ReLU net: the gap is the stabiliser's share, at most
     * eps / min|z|; documented tolerance 1e-4 for eps = 1e-6 and it grows with eps. */
    m = bias_free_model(3, 0);
    float *xx = random_images(3, 288, 9);
    tfx_explain_options e = TFX_EXPLAIN_OPTIONS_INIT;
    e.method = TFX_METHOD_LRP;
    e.lrp_rule = TFX_LRP_EPSILON;
    e.lrp_epsilon = 1e-6f;
    OK(tfx_explain(m, xx, 3, &e, &a));
    double small = 0.0;
    for (size_t i = 0; i < 3; i++) small = fmax(small, conservation_gap(a, i, 7));
    tfx_attribution_free(a);
    e.lrp_epsilon = 0.5f;
    OK(tfx_explain(m, xx, 3, &e, &a));
    double big = 0.0;
    for (size_t i = 0; i < 3; i++) big = fmax(big, conservation_gap(a, i, 7));
    tfx_attribution_free(a);
    print_message("  epsilon conservation gap: eps 1e-6 %.2e, eps 0.5 %.2e\n", small, big);
    assert_true(small <= 1e-4);
    assert_true(big > 10 * small && big > 1e-3);
    /* zB on the first layer conserves exactly too (composite: zB, z+ conv, eps dense). */
    e.lrp_rule = TFX_LRP_COMPOSITE;
    e.lrp_epsilon = 1e-6f;
    OK(tfx_explain(m, xx, 3, &e, &a));
    for (size_t i = 0; i < 3; i++) assert_true(conservation_gap(a, i, 7) <= 1e-4);
    tfx_attribution_free(a);
    free(xx);
    tfx_model_free(m);
}

static void test_lrp_alpha1_beta0_is_zplus(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data; /* in [0, 1]; every later layer's input is post-ReLU */
    tfx_attribution *a, *b;
    tfx_explain_options o = opts(TFX_METHOD_LRP);
    o.lrp_rule = TFX_LRP_ALPHA_BETA;
    o.lrp_alpha = 1.0f;
    o.lrp_beta = 0.0f;
    OK(tfx_explain(m, x, 3, &o, &a));
    o.lrp_rule = TFX_LRP_ZPLUS;
    OK(tfx_explain(m, x, 3, &o, &b));
    double e = rel_err_data(tfx_attribution_data(a, 0), tfx_attribution_data(b, 0), 900);
    print_message("  alpha1-beta0 vs z+: rel err %.2e\n", e);
    assert_true(e <= 1e-5);
    tfx_attribution_free(a);
    /* not a tautology: alpha 2, beta 1 differs */
    o.lrp_rule = TFX_LRP_ALPHA_BETA;
    o.lrp_alpha = 2.0f;
    o.lrp_beta = 1.0f;
    OK(tfx_explain(m, x, 3, &o, &a));
    assert_true(rel_err_data(tfx_attribution_data(a, 0), tfx_attribution_data(b, 0), 900) > 1e-2);
    tfx_attribution_free(a);
    tfx_attribution_free(b);
    /* a per-layer composite equals the uniform rule when it names the same rule everywhere */
    int rules[6] = {TFX_LRP_ZPLUS, TFX_LRP_ZPLUS, TFX_LRP_DEFAULT, TFX_LRP_DEFAULT, TFX_LRP_ZPLUS, TFX_LRP_ZPLUS};
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_rules = rules;
    OK(tfx_explain(m, x, 3, &o, &a));
    o.lrp_rules = NULL;
    o.lrp_rule = TFX_LRP_ZPLUS;
    OK(tfx_explain(m, x, 3, &o, &b));
    assert_memory_equal(tfx_attribution_data(a, 0), tfx_attribution_data(b, 0), 900 * sizeof(float));
    tfx_attribution_free(a);
    tfx_attribution_free(b);
    tfx_model_free(m);
}

/* ---- Score-CAM over many channels ---- */

static void test_score_cam_many_channels(void **state)
{
    (void)state;
    const int K = under_valgrind() ? 128 : 2048;
    tfx_model *m;
    OK(tfx_model_new(&m, 6, 6, 1));
    OK(tfx_model_set_seed(m, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = K;
    c.kernel_h = c.kernel_w = 3;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "wide";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    float *x = random_images(1, 36, 77);
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_SCORE_CAM;
    o.layer_name = "wide";
    o.class_index = 1;
    o.batch_size = 16;
    tfx_attribution *a;
    OK(tfx_explain(m, x, 1, &o, &a));
    /* Batched: the model's buffers never held more than batch_size rows. */
    assert_true(m->buf_n <= 16);
    /* Reference: each channel's mask through tfx_model_predict one at a time. */
    float *out = malloc((size_t)K * 36 * sizeof(float)), mask[36], row[36], probs[3];
    assert_non_null(out);
    OK(tfx_model_predict(m, x, 1, probs));
    memcpy(out, m->acts[1], (size_t)K * 36 * sizeof(float));
    double ref[36] = {0};
    for (int q = 0; q < K; q++) {
        float lo = out[q], hi = out[q];
        for (int p = 0; p < 36; p++) {
            lo = fminf(lo, out[p * K + q]);
            hi = fmaxf(hi, out[p * K + q]);
        }
        if (!(hi > lo)) continue;
        for (int p = 0; p < 36; p++) {
            mask[p] = (out[p * K + q] - lo) / (hi - lo);
            row[p] = x[p] * mask[p];
        }
        OK(tfx_model_predict(m, row, 1, probs));
        for (int p = 0; p < 36; p++) ref[p] += probs[1] * out[p * K + q];
    }
    float reff[36];
    for (int p = 0; p < 36; p++) reff[p] = ref[p] > 0 ? (float)ref[p] : 0.0f;
    double e = rel_err_data(tfx_attribution_data(a, 0), reff, 36);
    print_message("  Score-CAM %d channels, batch 16: rel err %.2e vs one mask at a time\n", K, e);
    assert_true(e < 1e-4);
    tfx_attribution_free(a);
    free(out);
    free(x);
    tfx_model_free(m);
}

/* ---- metrics ---- */

static void test_deletion_insertion_oracle(void **state)
{
    (void)state;
    /* A linear model p = softmax(w . x) with 2 classes: the map w * x (gradient x input of the
     * logit difference) ranks pixels by their true effect, so its deletion AUC is lower and its
     * insertion AUC higher than those of the reversed ranking. Checked by hand for one step. */
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 1));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    tfx_layer *l;
    OK(tfx_model_add_dense(m, &d, &l));
    float w[32], b[2] = {0, 0}, x[16];
    for (int i = 0; i < 16; i++) {
        w[i * 2] = (float)(i - 6) / 4.0f;
        w[i * 2 + 1] = 0.0f;
        x[i] = 1.0f;
    }
    OK(tfx_layer_set_weights(l, w, b));
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_GRADIENTS_INPUTS;
    o.class_index = 0;
    tfx_attribution *a;
    OK(tfx_explain(m, x, 1, &o, &a));
    tfx_faithfulness_options f = TFX_FAITHFULNESS_OPTIONS_INIT;
    f.step = 16; /* one step: the whole image */
    f.insertion_substrate = TFX_SUBSTRATE_CONSTANT;
    double del, ins;
    OK(tfx_deletion_insertion(m, x, 1, a, &f, &del, &ins));
    /* two points: p(x) and p(0) = 0.5, AUC = their mean */
    double z = 0.0;
    for (int i = 0; i < 16; i++) z += w[i * 2];
    double px = 1.0 / (1.0 + exp(-z));
    assert_true(fabs(del - 0.5 * (px + 0.5)) < 1e-6);
    assert_true(fabs(ins - 0.5 * (0.5 + px)) < 1e-6);
    f.step = 1;
    double del_good, ins_good, del_bad, ins_bad;
    OK(tfx_deletion_insertion(m, x, 1, a, &f, &del_good, &ins_good));
    float *data = (float *)tfx_attribution_data(a, 0);
    for (int i = 0; i < 16; i++) data[i] = -data[i]; /* the reversed ranking */
    OK(tfx_deletion_insertion(m, x, 1, a, &f, &del_bad, &ins_bad));
    assert_true(del_good < del_bad);
    assert_true(ins_good > ins_bad);
    /* bad input */
    CHECK_ERR(tfx_deletion_insertion(m, x, 2, a, &f, &del, &ins), TFX_EINVAL, "n = 2", NULL);
    f.blur_size = 4;
    CHECK_ERR(tfx_deletion_insertion(m, x, 1, a, &f, &del, &ins), TFX_EINVAL, "blur_size", NULL);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

static void test_spearman_and_sanity(void **state)
{
    (void)state;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {10, 20, 30, 40, 50, 60}, c[6] = {6, 5, 4, 3, 2, 1};
    float t1[5] = {1, 2, 2, 3, 4}, t2[5] = {1, 3, 2, 4, 5};
    assert_true(fabs(tfx__spearman(a, b, 6) - 1.0) < 1e-12);
    assert_true(fabs(tfx__spearman(a, c, 6) + 1.0) < 1e-12);
    /* scipy.stats.spearmanr([1,2,2,3,4],[1,3,2,4,5]) = 0.9746794344808963 (ties: mean ranks) */
    assert_true(fabs(tfx__spearman(t1, t2, 5) - 0.9746794344808963) < 1e-12);

    tfx_model *m = golden_model();
    float before[5], after[5];
    OK(tfx_model_predict(m, golden("x")->data, 1, before));
    tfx_explain_options o = opts(TFX_METHOD_VANILLA_GRADIENTS);
    double rho[8];
    size_t cnt;
    OK(tfx_sanity_check(m, golden("x")->data, 3, &o, TFX_RANK_SUM_ABS, 1, rho, 8, &cnt));
    assert_int_equal(cnt, 4);
    print_message("  sanity (golden model, vanilla): %.3f %.3f %.3f %.3f\n", rho[0], rho[1], rho[2], rho[3]);
    for (size_t k = 0; k < cnt; k++) assert_true(rho[k] < 0.999 && rho[k] >= -1.0);
    OK(tfx_model_predict(m, golden("x")->data, 1, after));
    assert_memory_equal(before, after, sizeof before); /* weights restored */
    tfx_model_free(m);
}

/* ---- rendering and bad input ---- */

static void test_render_and_bad_input(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data;
    tfx_attribution *a;
    tfx_image *img;
    tfx_explain_options o = opts(TFX_METHOD_SCORE_CAM);
    OK(tfx_explain(m, x, 3, &o, &a));
    OK(tfx_attribution_render(a, x, NULL, &img));
    /* the same picture as the renderer on the raw maps */
    tfx_image *ref;
    int shp[3];
    OK(tfx_attribution_shape(a, shp)); /* the default layer: "pool", 4 x 4 */
    assert_int_equal(shp[0], 4);
    OK(tfx_render_heatmap(tfx_attribution_data(a, 0), 3, shp[0], shp[1], x, 10, 10, 3, NULL, &ref));
    assert_int_equal(img->width, ref->width);
    assert_int_equal(img->height, ref->height);
    assert_memory_equal(img->pixels, ref->pixels, (size_t)img->stride * img->height);
    tfx_image_free(img);
    tfx_image_free(ref);
    tfx_attribution_free(a);

    /* a rule a layer does not support: TFX_ENOTSUP naming the layer and the rule */
    o = opts(TFX_METHOD_LRP);
    o.lrp_rule = TFX_LRP_ZB;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_ENOTSUP, "'pool' (MaxPooling2D)", "LRP-zB");
    assert_null(a);
    /* invalid alpha / beta, epsilon, bounds, rules */
    o.lrp_rule = TFX_LRP_ALPHA_BETA;
    o.lrp_alpha = 1.5f;
    o.lrp_beta = 0.0f;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "alpha - lrp_beta = 1", "1.5");
    o.lrp_alpha = 0.0f;
    o.lrp_beta = -1.0f;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "lrp_beta >= 0", NULL);
    o.lrp_alpha = NAN;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "alpha", NULL);
    o.lrp_rule = TFX_LRP_COMPOSITE_AB; /* the preset uses alpha-beta too */
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "alpha", NULL);
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_epsilon = -1.0f;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "lrp_epsilon", NULL);
    o.lrp_epsilon = 0.1f;
    o.lrp_rule = 99;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "lrp_rule 99", NULL);
    int rules[6] = {0, 0, 0, 0, 0, 7};
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_rules = rules;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "lrp_rules[5] = 7", NULL);
    o.lrp_rules = NULL;
    o.lrp_rule = TFX_LRP_COMPOSITE;
    o.lrp_low = 1.0f;
    o.lrp_high = 0.0f;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "lrp_low <= lrp_high", NULL);
    /* relevance sums of a non-LRP attribution */
    o = opts(TFX_METHOD_GUIDED_BACKPROP);
    OK(tfx_explain(m, x, 3, &o, &a));
    double s[8];
    CHECK_ERR(tfx_attribution_relevance_sums(a, 0, s, 8, NULL), TFX_EINVAL, "not LRP", NULL);
    tfx_attribution_free(a);
    /* other options */
    o = opts(TFX_METHOD_NOISE_TUNNEL);
    o.base_method = TFX_METHOD_GRAD_CAM;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "not method 5", NULL);
    o.base_method = TFX_METHOD_VANILLA_GRADIENTS;
    o.tunnel = 3;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "noise tunnel type 3", NULL);
    o = opts(TFX_METHOD_GRAD_CAM_PLUS_PLUS);
    o.cam_alpha_normalize = 3;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "cam_alpha_normalize", NULL);
    o = opts(TFX_METHOD_SCORE_CAM);
    o.score_cam_weights = 5;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "score_cam_weights", NULL);
    o = opts(TFX_METHOD_LAYER_CAM);
    o.layer_name = "fc";
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "flat output", NULL);
    o.method = TFX_METHOD_NOISE_TUNNEL + 1;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "unknown method", NULL);
    /* a version-1 options struct still works (prefix copy) and gets the version-2 defaults */
    tfx_explain_options v1;
    memset(&v1, 0xAB, sizeof v1); /* fields past the version-1 prefix must not be read */
    OK(tfx_explain_options_init(&v1, 1));
    v1.method = TFX_METHOD_VANILLA_GRADIENTS;
    v1.class_indices = CLASSES;
    OK(tfx_explain(m, x, 3, &v1, &a));
    assert_int_equal(((unsigned char *)&v1)[sizeof v1 - 1], 0xAB);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    tfx_model *m = golden_model();
    const float *x = golden("x")->data;
    static const int methods[] = {TFX_METHOD_LRP, TFX_METHOD_SCORE_CAM, TFX_METHOD_GUIDED_GRAD_CAM,
                                  TFX_METHOD_EIGEN_CAM, TFX_METHOD_GUIDED_SMOOTH_GRAD, TFX_METHOD_GRAD_CAM_PLUS_PLUS};
    for (size_t t = 0; t < sizeof methods / sizeof methods[0]; t++) {
        tfx_explain_options o = opts(methods[t]);
        o.samples = 2;
        o.lrp_rule = TFX_LRP_COMPOSITE;
        tfx_attribution *a;
        int ok = 0;
        for (long k = 1; k < 400 && !ok; k++) {
            tfx__alloc_fail_after(k);
            int rc = tfx_explain(m, x, 3, &o, &a);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                ok = 1;
                tfx_attribution_free(a);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
                assert_null(a);
            }
        }
        assert_true(ok);
    }
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_guided_family),
        cmocka_unit_test(test_golden_cams),
        cmocka_unit_test(test_golden_noise_tunnel),
        cmocka_unit_test(test_lrp0_equals_gradient_times_input),
        cmocka_unit_test(test_lrp_conservation),
        cmocka_unit_test(test_lrp_alpha1_beta0_is_zplus),
        cmocka_unit_test(test_score_cam_many_channels),
        cmocka_unit_test(test_deletion_insertion_oracle),
        cmocka_unit_test(test_spearman_and_sanity),
        cmocka_unit_test(test_render_and_bad_input),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
