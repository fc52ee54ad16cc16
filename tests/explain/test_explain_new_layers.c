/* The explainers on models made of the layer kinds and activations added after 0.1 (issue 17):
 * every method runs and gives finite maps of the documented shape; vanilla gradients equal a
 * central difference of the target score; Grad-CAM's default layer is the last spatial map;
 * guided backprop and deconvnet zero what ReLU6/clip gate; LRP's relevance is conserved
 * through every layer (LRP-0, no biases). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

enum { H = 10, W = 9, C = 2, N = 2 };

static tfx_model *new_kinds_model(int bias, int head_activation)
{
    tfx_model *m;
    OK(tfx_model_new(&m, H, W, C));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU6;
    c.use_bias = bias;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_clip(m, -0.25f, 0.5f, "clip", NULL));
    OK(tfx_model_add_zero_padding2d(m, 1, 0, 2, 1, NULL, NULL));
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.depth_multiplier = 2;
    dw.padding = TFX_PADDING_SAME;
    dw.use_bias = bias;
    OK(tfx_model_add_depthwise_conv2d(m, &dw, NULL)); /* 4 -> 8 channels */
    c.activation = TFX_ACTIVATION_HARD_SWISH;
    c.filters = 6;
    c.groups = 2;
    c.name = "last_conv";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_HARD_SIGMOID, 0.0f, "hsig", NULL));
    OK(tfx_model_add_reshape(m, W + 3, -1, 3, NULL, NULL)); /* regroups the hsig map's values */
    OK(tfx_model_add_global_max_pooling2d(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = head_activation;
    d.use_bias = bias;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

static void fill_x(float *x, size_t count)
{
    for (size_t i = 0; i < count; i++) x[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
}

static tfx_attribution *run(tfx_model *m, const float *x, int method, int shape[3])
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    o.class_index = 1;
    o.steps = 8;
    o.samples = 4;
    o.patch_size = 3;
    tfx_attribution *a = NULL;
    OK(tfx_explain(m, x, N, &o, &a));
    OK(tfx_attribution_shape(a, shape));
    size_t size = (size_t)shape[0] * shape[1] * shape[2];
    for (size_t i = 0; i < N; i++) {
        const float *v = tfx_attribution_data(a, i);
        for (size_t k = 0; k < size; k++)
            if (!isfinite(v[k])) fail_msg("method %d: value %zu of image %zu is not finite", method, k, i);
    }
    return a;
}

static void test_every_method_runs(void **state)
{
    (void)state;
    tfx_model *m = new_kinds_model(1, TFX_ACTIVATION_SOFTMAX);
    float x[N * H * W * C];
    fill_x(x, sizeof x / sizeof x[0]);
    for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_NOISE_TUNNEL; method++) {
        int s[3];
        tfx_attribution *a = run(m, x, method, s);
        if (method == TFX_METHOD_GRAD_CAM) { /* the default layer: the last spatial map */
            assert_string_equal(tfx_attribution_layer_name(a), "hsig");
            assert_true(s[0] == H + 1 && s[1] == W + 3 && s[2] == 1); /* the padded map, at layer size */
        }
        tfx_attribution_free(a);
    }
    tfx_model_free(m);
}

/* Vanilla gradients against a central difference of the class score S_c: the logit, the
 * output of the same model (same seed, same weights) without its softmax. */
static void test_vanilla_gradients_match_differences(void **state)
{
    (void)state;
    tfx_model *m = new_kinds_model(1, TFX_ACTIVATION_SOFTMAX), *logits = new_kinds_model(1, TFX_ACTIVATION_LINEAR);
    float x[N * H * W * C], y[3];
    fill_x(x, sizeof x / sizeof x[0]);
    int s[3];
    tfx_attribution *a = run(m, x, TFX_METHOD_VANILLA_GRADIENTS, s);
    const float *g = tfx_attribution_data(a, 0);
    double worst = 0.0, scale = 0.0;
    for (size_t k = 0; k < (size_t)H * W * C; k++) scale = fmax(scale, fabs(g[k]));
    assert_true(scale > 0.0);
    for (size_t k = 0; k < (size_t)H * W * C; k += 5) {
        float keep = x[k];
        const float h = 1.0f / 512;
        x[k] = keep + h;
        OK(tfx_model_predict(logits, x, 1, y));
        double up = y[1];
        x[k] = keep - h;
        OK(tfx_model_predict(logits, x, 1, y));
        double num = (up - y[1]) / (2.0 * h);
        x[k] = keep;
        worst = fmax(worst, fabs(num - g[k]) / scale);
    }
    print_message("vanilla gradients vs central differences: max error %.2e of the largest\n", worst);
    assert_true(worst < 5e-3); /* kinks inside a step are possible */
    tfx_attribution_free(a);
    tfx_model_free(m);
    tfx_model_free(logits);
}

static void test_lrp_conserves(void **state)
{
    (void)state;
    tfx_model *m = new_kinds_model(0, TFX_ACTIVATION_SOFTMAX);
    float x[N * H * W * C];
    fill_x(x, sizeof x / sizeof x[0]);
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_LRP;
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_epsilon = 0.0f;
    o.class_index = 0;
    tfx_attribution *a = NULL;
    OK(tfx_explain(m, x, N, &o, &a));
    double sums[16];
    size_t count = 0;
    OK(tfx_attribution_relevance_sums(a, 0, sums, 16, &count));
    assert_int_equal(count, tfx_model_layer_count(m) + 1);
    for (size_t j = 0; j + 1 < count; j++)
        if (fabs(sums[j] - sums[count - 1]) > 1e-4 * fmax(1.0, fabs(sums[count - 1])))
            fail_msg("relevance at layer %zu: %.9g, the score %.9g", j, sums[j], sums[count - 1]);
    tfx_attribution_free(a);
    /* The other rules and the composites (z+ / alpha-beta on the grouped and depthwise convs,
     * zB on the first conv) run and give finite relevance. */
    static const int rules[] = {TFX_LRP_0, TFX_LRP_ALPHA_BETA, TFX_LRP_ZPLUS, TFX_LRP_COMPOSITE,
                                TFX_LRP_COMPOSITE_AB};
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        o.lrp_rule = rules[k];
        o.lrp_alpha = 2.0f;
        o.lrp_beta = 1.0f;
        o.lrp_low = -1.0f;
        OK(tfx_explain(m, x, N, &o, &a));
        for (size_t i = 0; i < N; i++) {
            const float *v = tfx_attribution_data(a, i);
            for (size_t j = 0; j < (size_t)H * W * C; j++)
                if (!isfinite(v[j])) fail_msg("LRP rule %d: relevance %zu of image %zu not finite", rules[k], j, i);
        }
        tfx_attribution_free(a);
    }
    tfx_model_free(m);
}

/* The activation rules at their pieces: values, gradient, guided backprop (ReLU-like: the
 * gradient where the input is inside and the incoming gradient positive) and deconvnet (the
 * positive incoming gradient, the input ignored); LRP passes relevance through. */
static void test_activation_rules(void **state)
{
    (void)state;
    const float z[8] = {-7.0f, -3.0f, -1.5f, 0.0f, 0.25f, 3.0f, 6.0f, 8.0f};
    const float dy[8] = {1.0f, -1.0f, 2.0f, -2.0f, 3.0f, -3.0f, 4.0f, 5.0f};
    static const struct {
        int act;
        float lo, hi;
        float y[8], grad[8], guided[8], deconv[8];
    } cases[] = {
        {TFX_ACTIVATION_RELU6, 0, 0, {0, 0, 0, 0, 0.25f, 3, 6, 6}, {0, 0, 0, 0, 3, -3, 0, 0}, {0, 0, 0, 0, 3, 0, 0, 0},
         {1, 0, 2, 0, 3, 0, 4, 5}},
        {TFX_ACTIVATION_CLIP, -2.0f, 3.0f, {-2, -2, -1.5f, 0, 0.25f, 3, 3, 3}, {0, 0, 2, -2, 3, 0, 0, 0},
         {0, 0, 2, 0, 3, 0, 0, 0}, {1, 0, 2, 0, 3, 0, 4, 5}},
        {TFX_ACTIVATION_HARD_SIGMOID, 0, 0, {0, 0, 0.25f, 0.5f, 3.25f / 6, 1, 1, 1},
         {0, 0, 2.0f / 6, -2.0f / 6, 0.5f, 0, 0, 0}, {0, 0, 2.0f / 6, -2.0f / 6, 0.5f, 0, 0, 0},
         {0, 0, 2.0f / 6, -2.0f / 6, 0.5f, 0, 0, 0}},
        {TFX_ACTIVATION_HARD_SWISH, 0, 0, {0, 0, -0.375f, 0, 0.25f * 3.25f / 6, 3, 6, 8},
         {0, 0.5f, 0, -1.0f, 3 * (0.25f / 3 + 0.5f), -4.5f, 4, 5}, {0, 0.5f, 0, -1.0f, 3 * (0.25f / 3 + 0.5f), -4.5f, 4, 5},
         {0, 0.5f, 0, -1.0f, 3 * (0.25f / 3 + 0.5f), -4.5f, 4, 5}},
    };
    const tfx__rule grad = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0}, guided = {TFX__RULE_GUIDED, 0, 0, 0, 0, 0},
                    deconv = {TFX__RULE_DECONVNET, 0, 0, 0, 0, 0}, lrp = {TFX__RULE_LRP_EPSILON, 0.1f, 0, 0, 0, 0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float y[8], d[8];
        tfx__activation_forward(cases[k].act, cases[k].lo, cases[k].hi, z, y, 1, 8);
        for (int i = 0; i < 8; i++) assert_float_equal(y[i], cases[k].y[i], 1e-6f);
        const tfx__rule *rules[3] = {&grad, &guided, &deconv};
        const float *want[3] = {cases[k].grad, cases[k].guided, cases[k].deconv};
        for (int r = 0; r < 3; r++) {
            OK(tfx__activation_backward(cases[k].act, cases[k].lo, cases[k].hi, z, y, dy, d, 1, 8, rules[r]));
            for (int i = 0; i < 8; i++)
                if (fabsf(d[i] - want[r][i]) > 1e-6f)
                    fail_msg("activation %d rule %d: d[%d] = %g, want %g", cases[k].act, r, i, (double)d[i],
                             (double)want[r][i]);
        }
        OK(tfx__activation_backward(cases[k].act, cases[k].lo, cases[k].hi, z, y, dy, d, 1, 8, &lrp));
        assert_memory_equal(d, dy, sizeof d);
        if (tfx__activation_output_suffices(cases[k].act, cases[k].lo)) { /* from the output alone: the same */
            float d2[8];
            for (int r = 0; r < 3; r++) {
                OK(tfx__activation_backward(cases[k].act, cases[k].lo, cases[k].hi, z, y, dy, d, 1, 8, rules[r]));
                OK(tfx__activation_backward(cases[k].act, cases[k].lo, cases[k].hi, NULL, y, dy, d2, 1, 8, rules[r]));
                assert_memory_equal(d, d2, sizeof d);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_rules),
        cmocka_unit_test(test_every_method_runs),
        cmocka_unit_test(test_vanilla_gradients_match_differences),
        cmocka_unit_test(test_lrp_conserves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
