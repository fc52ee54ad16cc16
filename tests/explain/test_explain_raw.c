/* Raw maps of the seven explainers against golden values from PyTorch autograd
 * (gen_golden_explain.py, same weights, float64), in both modes; IG completeness and its
 * integration rules; batching
 * invariance; no parameter gradients; targets; bad input; allocation failures. */
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
static int CLASSES[3]; /* the generator's per-image targets */
static const garr *golden(const char *name);

static void load_golden(void)
{
    if (n_golden) return;
    n_golden = golden_file_load("tests/explain/golden_explain.bin", G, 64);
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

/* The generator's model with its weights (Keras layouts). */
static tfx_model *golden_model(int separate_softmax)
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
    d.activation = separate_softmax ? TFX_ACTIVATION_LINEAR : TFX_ACTIVATION_SOFTMAX;
    d.name = "out";
    OK(tfx_model_add_dense(m, &d, &l));
    OK(tfx_layer_set_weights(l, golden("w4")->data, golden("b4")->data));
    if (separate_softmax) OK(tfx_model_add_activation(m, TFX_ACTIVATION_SOFTMAX, 0.0f, "softmax", NULL));
    return m;
}


/* max |a - ref| / max |ref| over all maps of the attribution. */
static double rel_err(const tfx_attribution *a, const garr *ref)
{
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    size_t per = (size_t)shp[0] * shp[1] * shp[2];
    assert_int_equal(per * tfx_attribution_count(a), ref->count);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < tfx_attribution_count(a); i++) {
        const float *d = tfx_attribution_data(a, i);
        for (size_t j = 0; j < per; j++) {
            double r = ref->data[i * per + j];
            num = fmax(num, fabs(d[j] - r));
            den = fmax(den, fabs(r));
        }
    }
    assert_true(den > 0.0);
    return num / den;
}

static void expect_golden(tfx_model *m, const tfx_explain_options *o, const char *name, int h, int w, int c)
{
    tfx_attribution *a;
    const garr *x = golden("x");
    OK(tfx_explain(m, x->data, 3, o, &a));
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    assert_int_equal(shp[0], h);
    assert_int_equal(shp[1], w);
    assert_int_equal(shp[2], c);
    double e = rel_err(a, golden(name));
    if (e > 1e-4) fail_msg("%s: relative error %g > 1e-4", name, e);
    print_message("  %-20s rel err %.2e\n", name, e);
    tfx_attribution_free(a);
}

static tfx_explain_options opts(int method, int compat)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    o.compat = compat;
    o.class_indices = CLASSES;
    return o;
}

/* ---- golden comparisons ---- */

static void test_golden_gradients(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_VANILLA_GRADIENTS, TFX_COMPAT_NONE);
    expect_golden(m, &o, "vanilla", 10, 10, 3);
    o.method = TFX_METHOD_GRADIENTS_INPUTS;
    expect_golden(m, &o, "grad_inputs", 10, 10, 3);
    o = opts(TFX_METHOD_VANILLA_GRADIENTS, TFX_COMPAT_TF_EXPLAIN);
    expect_golden(m, &o, "vanilla_compat", 10, 10, 3);
    tfx_model_free(m);
}

static void test_golden_grad_cam(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_GRAD_CAM, TFX_COMPAT_NONE);
    o.layer_name = "visualization_layer";
    expect_golden(m, &o, "gradcam_vis", 8, 8, 1);
    o.upsample = 1;
    expect_golden(m, &o, "gradcam_vis_up", 10, 10, 1);
    o.upsample = 0;
    o.layer_name = NULL; /* default: the last conv-like 4-D layer, here the pooling layer */
    expect_golden(m, &o, "gradcam_pool", 4, 4, 1);
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    assert_string_equal(tfx_attribution_layer_name(a), "pool");
    tfx_attribution_free(a);
    o = opts(TFX_METHOD_GRAD_CAM, TFX_COMPAT_TF_EXPLAIN);
    o.layer_name = "visualization_layer";
    expect_golden(m, &o, "gradcam_vis_compat", 8, 8, 1);
    tfx_model_free(m);
}

static void test_golden_integrated_gradients(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_NONE);
    o.steps = 8;
    expect_golden(m, &o, "ig8", 10, 10, 3);
    o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_TF_EXPLAIN);
    o.steps = 5;
    expect_golden(m, &o, "ig5_compat", 10, 10, 3);
    tfx_model_free(m);
}

/* Each ig_rule against Captum's formulas (gen_golden_explain.py: ig8_<rule>), m = 8. */
static void test_golden_ig_rules(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    static const char *const names[] = {"ig8_right", "ig8_left", "ig8_middle", "ig8_trapezoid", "ig8_gausslegendre"};
    tfx_explain_options o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_NONE);
    o.steps = 8;
    for (int rule = TFX_IG_RIEMANN_RIGHT; rule <= TFX_IG_GAUSS_LEGENDRE; rule++) {
        o.ig_rule = rule;
        expect_golden(m, &o, names[rule], 10, 10, 3);
    }
    /* Captum's riemann_trapezoid weights sum to (m - 1)/m: its map is ours times 7/8. */
    o.ig_rule = TFX_IG_TRAPEZOID;
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    const garr *cap = golden("ig8_trapezoid_captum");
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 300; j++) {
            num = fmax(num, fabs(tfx_attribution_data(a, i)[j] * 7.0 / 8.0 - cap->data[i * 300 + j]));
            den = fmax(den, fabs(cap->data[i * 300 + j]));
        }
    print_message("  ig8_trapezoid_captum = 7/8 ours: rel err %.2e\n", num / den);
    assert_true(num <= 1e-4 * den);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

/* Every rule's completeness numbers use its own nodes and weights, and S(x) comes from the image
 * itself also for rules whose last node is not 1 (left, middle, Gauss-Legendre: an extra forward). */
static void test_ig_rules_completeness(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    const garr *z = golden("logits");
    float zero[300] = {0}, s0[5];
    OK(tfx__model_forward(m, zero, 1, 0));
    memcpy(s0, m->layers[m->n_layers - 1]->preact, sizeof s0);
    tfx_explain_options o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_NONE);
    o.class_indices = NULL; /* predicted classes */
    o.steps = 16;
    double gap[5];
    for (int rule = TFX_IG_RIEMANN_RIGHT; rule <= TFX_IG_GAUSS_LEGENDRE; rule++) {
        o.ig_rule = rule;
        o.batch_size = rule == TFX_IG_GAUSS_LEGENDRE ? 5 : 0; /* chunks that split images, too */
        tfx_attribution *a;
        OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
        gap[rule] = 0.0;
        for (size_t i = 0; i < 3; i++) {
            double delta, diff, sum = 0.0;
            OK(tfx_attribution_ig_delta(a, i, &delta, &diff));
            const float *d = tfx_attribution_data(a, i);
            for (size_t j = 0; j < 300; j++) sum += d[j];
            assert_true(fabs(delta - fabs(sum - diff)) <= 1e-9 + 1e-6 * fabs(diff));
            int k = tfx_attribution_class_index(a, i);
            assert_true(fabs(z->data[i * 5 + k] - s0[k] - diff) < 1e-5);
            gap[rule] = fmax(gap[rule], delta / fabs(diff));
        }
        tfx_attribution_free(a);
    }
    print_message("  m = 16, max relative gap: right %.3g%%, left %.3g%%, middle %.3g%%, trapezoid %.3g%%, "
                  "Gauss-Legendre %.3g%%\n", 100 * gap[0], 100 * gap[1], 100 * gap[2], 100 * gap[3], 100 * gap[4]);
    /* The second-order rules beat the first-order ones on this smooth-enough path. */
    assert_true(gap[TFX_IG_RIEMANN_MIDDLE] < gap[TFX_IG_RIEMANN_RIGHT]);
    assert_true(gap[TFX_IG_TRAPEZOID] < gap[TFX_IG_RIEMANN_RIGHT]);
    assert_true(gap[TFX_IG_GAUSS_LEGENDRE] < gap[TFX_IG_RIEMANN_RIGHT]);

    /* m = 1: Gauss-Legendre's one node is the midpoint (the same map, bit for bit). */
    tfx_attribution *g, *mid;
    o.steps = 1;
    o.batch_size = 0;
    o.ig_rule = TFX_IG_GAUSS_LEGENDRE;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &g));
    o.ig_rule = TFX_IG_RIEMANN_MIDDLE;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &mid));
    assert_memory_equal(tfx_attribution_data(g, 0), tfx_attribution_data(mid, 0), 3 * 300 * sizeof(float));
    tfx_attribution_free(g);
    tfx_attribution_free(mid);
    /* The trapezoid needs two nodes. */
    o.ig_rule = TFX_IG_TRAPEZOID;
    CHECK_ERR(tfx_explain(m, golden("x")->data, 3, &o, &g), TFX_EINVAL,
              "steps = 1 must be > 1 with ig_rule TFX_IG_TRAPEZOID");
    /* Compat mode keeps tf-explain's path whatever the rule. */
    tfx_attribution *c0, *c4;
    o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_TF_EXPLAIN);
    o.steps = 5;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &c0));
    o.ig_rule = TFX_IG_GAUSS_LEGENDRE;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &c4));
    assert_memory_equal(tfx_attribution_data(c0, 0), tfx_attribution_data(c4, 0), 3 * 300 * sizeof(float));
    tfx_attribution_free(c0);
    tfx_attribution_free(c4);
    tfx_model_free(m);
}

static void run_hooked(tfx_model *m, const tfx_explain_options *o, const char *name)
{
    tfx__explain_hooks hooks = {golden("sg_eps")->data, 0, NULL};
    tfx_attribution *a;
    OK(tfx__explain_run(m, golden("x")->data, 3, o, &hooks, &a));
    double e = rel_err(a, golden(name));
    if (e > 1e-4) fail_msg("%s: relative error %g > 1e-4", name, e);
    print_message("  %-20s rel err %.2e\n", name, e);
    tfx_attribution_free(a);
}

static void test_golden_smooth_grad(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_SMOOTH_GRAD, TFX_COMPAT_NONE);
    o.samples = 4;
    o.noise = 0.2f;
    run_hooked(m, &o, "smoothgrad");
    o.batch_size = 5; /* chunks that split images: same noise rows, same result */
    run_hooked(m, &o, "smoothgrad");
    o = opts(TFX_METHOD_SMOOTH_GRAD, TFX_COMPAT_TF_EXPLAIN);
    o.samples = 4;
    o.noise = 0.5f;
    run_hooked(m, &o, "smoothgrad_compat");
    tfx_model_free(m);
}

static void test_golden_occlusion(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_OCCLUSION, TFX_COMPAT_NONE);
    o.patch_size = 3;
    o.stride = 2;
    expect_golden(m, &o, "occlusion", 10, 10, 1);
    o = opts(TFX_METHOD_OCCLUSION, TFX_COMPAT_TF_EXPLAIN);
    o.patch_size = 3;
    o.stride = 1; /* ignored: tf-explain's stride is the patch size */
    expect_golden(m, &o, "occlusion_compat", 10, 10, 1);
    tfx_model_free(m);
}

static void test_golden_activations(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = opts(TFX_METHOD_ACTIVATIONS, TFX_COMPAT_NONE);
    o.layer_name = "visualization_layer";
    expect_golden(m, &o, "act_vis", 8, 8, 6);
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    assert_string_equal(tfx_attribution_layer_name(a), "visualization_layer");
    CHECK_ERR(tfx_attribution_class_index(a, 0), TFX_EINVAL, "no target class");
    tfx_attribution_free(a);
    /* compat: tf-explain's `layer.name in layers_name` substring test on a string */
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    o.layer_name = "my_visualization_layer!";
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    assert_string_equal(tfx_attribution_layer_name(a), "visualization_layer");
    tfx_attribution_free(a);
    o.layer_name = "conv1+visualization_layer";
    CHECK_ERR(tfx_explain(m, golden("x")->data, 3, &o, &a), TFX_EINVAL, "one layer only");
    o.compat = TFX_COMPAT_NONE;
    CHECK_ERR(tfx_explain(m, golden("x")->data, 3, &o, &a), TFX_EINVAL, "'visualization_layer'");
    tfx_model_free(m);
}

/* -1 means each image's predicted class (argmax of the output). */
static void test_predicted_class(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT; /* vanilla gradients, class -1 */
    expect_golden(m, &o, "vanilla_pred", 10, 10, 3);
    const garr *pred = golden("pred");
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, NULL, &a));
    for (size_t i = 0; i < 3; i++) assert_int_equal(tfx_attribution_class_index(a, i), (int)pred->data[i]);
    assert_string_equal(tfx_attribution_layer_name(a), "");
    assert_int_equal(tfx_attribution_method(a), TFX_METHOD_VANILLA_GRADIENTS);
    tfx_attribution_free(a);
    /* mixed per-image targets */
    int mixed[3] = {-1, 3, -1};
    o.class_indices = mixed;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    assert_int_equal(tfx_attribution_class_index(a, 0), (int)pred->data[0]);
    assert_int_equal(tfx_attribution_class_index(a, 1), 3);
    assert_int_equal(tfx_attribution_class_index(a, 2), (int)pred->data[2]);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

/* A separate softmax Activation layer: the default target is the same logit; compat vanilla
 * uses tf-explain's score model (the logit), |.|. */
static void test_separate_softmax(void **state)
{
    (void)state;
    tfx_model *m = golden_model(1);
    tfx_explain_options o = opts(TFX_METHOD_VANILLA_GRADIENTS, TFX_COMPAT_NONE);
    expect_golden(m, &o, "vanilla", 10, 10, 3);
    o.method = TFX_METHOD_GRAD_CAM;
    o.layer_name = "visualization_layer";
    expect_golden(m, &o, "gradcam_vis", 8, 8, 1);
    o = opts(TFX_METHOD_VANILLA_GRADIENTS, TFX_COMPAT_TF_EXPLAIN);
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    const garr *v = golden("vanilla");
    for (size_t i = 0; i < 3; i++) {
        const float *d = tfx_attribution_data(a, i);
        for (size_t j = 0; j < 300; j++) assert_true(fabsf(d[j] - fabsf(v->data[i * 300 + j])) <= 1e-5f);
    }
    tfx_attribution_free(a);
    o = opts(TFX_METHOD_SMOOTH_GRAD, TFX_COMPAT_TF_EXPLAIN); /* Keras: cross-entropy from the logits */
    o.samples = 4;
    o.noise = 0.5f;
    run_hooked(m, &o, "smoothgrad_compat");
    tfx_model_free(m);
}

/* ---- properties ---- */

static void test_ig_completeness(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    /* The predicted class: a score well above the baseline's, as in real use. */
    tfx_explain_options o = opts(TFX_METHOD_INTEGRATED_GRADIENTS, TFX_COMPAT_NONE);
    o.class_indices = NULL;
    o.class_index = -1;
    o.steps = getenv("RUNNING_VALGRIND") ? 50 : 200;
    tfx_attribution *a;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    const garr *z = golden("logits");
    float zero[300] = {0}, s0[5];
    OK(tfx__model_forward(m, zero, 1, 0));
    memcpy(s0, m->layers[m->n_layers - 1]->preact, sizeof s0); /* logits of the black image */
    for (size_t i = 0; i < 3; i++) {
        double delta, diff, sum = 0.0;
        OK(tfx_attribution_ig_delta(a, i, &delta, &diff));
        const float *d = tfx_attribution_data(a, i);
        for (size_t j = 0; j < 300; j++) sum += d[j];
        assert_true(fabs(delta - fabs(sum - diff)) <= 1e-9 + 1e-6 * fabs(diff));
        /* S(x) - S(0): S(x) is the golden forward pass's logit, S(0) the same for every image */
        int k = tfx_attribution_class_index(a, i);
        assert_int_equal(k, (int)golden("pred")->data[i]);
        assert_true(fabs(z->data[i * 5 + k] - s0[k] - diff) < 1e-5);
        print_message("  image %zu: |sum - (S(x) - S(0))| = %.3g, S(x) - S(0) = %.4f (%.3f%%)\n", i, delta, diff,
                      100.0 * delta / fabs(diff));
        if (o.steps == 200) assert_true(delta <= 0.01 * fabs(diff));
    }
    CHECK_ERR(tfx_attribution_ig_delta(a, 3, NULL, NULL), TFX_EINVAL, "out of range");
    tfx_attribution_free(a);
    o.method = TFX_METHOD_VANILLA_GRADIENTS;
    OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
    CHECK_ERR(tfx_attribution_ig_delta(a, 0, NULL, NULL), TFX_EINVAL, "not Integrated Gradients");
    tfx_attribution_free(a);
    tfx_model_free(m);
}

/* Chunk size 1, 7 and everything-at-once give the same maps (rows are generated in order). */
static void test_batch_invariance(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    static const int methods[] = {TFX_METHOD_ACTIVATIONS, TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRADIENTS_INPUTS,
                                  TFX_METHOD_OCCLUSION, TFX_METHOD_GRAD_CAM, TFX_METHOD_SMOOTH_GRAD,
                                  TFX_METHOD_INTEGRATED_GRADIENTS};
    double worst = 0.0, worst_occ = 0.0;
    int identical = 1;
    for (int compat = 0; compat < 2; compat++)
        for (size_t k = 0; k < sizeof methods / sizeof *methods; k++) {
            tfx_attribution *ref = NULL;
            static const size_t bs[] = {1, 7, 1000};
            for (size_t b = 0; b < 3; b++) {
                tfx_explain_options o = opts(methods[k], compat);
                o.class_indices = NULL;
                o.class_index = -1;
                o.samples = 5;
                o.steps = 6;
                o.patch_size = 3;
                o.stride = 2;
                o.seed = 42;
                o.batch_size = bs[b];
                tfx_attribution *a;
                OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
                if (!ref) {
                    ref = a;
                    continue;
                }
                int shp[3];
                OK(tfx_attribution_shape(a, shp));
                size_t cnt = 3 * (size_t)shp[0] * shp[1] * shp[2];
                const float *p = tfx_attribution_data(a, 0), *q = tfx_attribution_data(ref, 0);
                double mx = 0.0, d = 0.0;
                for (size_t j = 0; j < cnt; j++) {
                    mx = fmax(mx, fabs(q[j]));
                    d = fmax(d, fabs(p[j] - q[j]));
                }
                if (memcmp(p, q, cnt * sizeof(float))) identical = 0;
                /* Occlusion's incremental Dense merge sums the boxes' change in GEMMs whose row
                 * count follows the chunking: equal to float rounding, not to 1e-6. */
                if (methods[k] == TFX_METHOD_OCCLUSION)
                    worst_occ = fmax(worst_occ, d / (mx > 0 ? mx : 1));
                else
                    worst = fmax(worst, d / (mx > 0 ? mx : 1));
                for (size_t i = 0; i < 3; i++)
                    assert_int_equal(tfx_attribution_class_index(a, i) == TFX_EINVAL ? -1 : 0,
                                     tfx_attribution_class_index(ref, i) == TFX_EINVAL ? -1 : 0);
                tfx_attribution_free(a);
            }
            tfx_attribution_free(ref);
        }
    print_message("  batch 1 / 7 / all: %s, worst relative difference %.2e (occlusion %.2e)\n",
                  identical ? "bitwise identical" : "not bitwise identical", worst, worst_occ);
    /* A one-row chunk goes through Dense as a matrix-vector product (lib/core/blas.c), others
     * through sgemm: the same sums in another order. */
    assert_true(worst <= 2e-6);
    assert_true(worst_occ <= 1e-5);
    tfx_model_free(m);
}

/* Explainers never write parameter gradients. */
static void test_no_param_grads(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    size_t np = m->n_params;
    float *saved = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) m->grads[i] = saved[i] = (float)i * 0.5f - 3.0f;
    for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
        tfx_explain_options o = opts(method, TFX_COMPAT_NONE);
        o.samples = 2;
        o.steps = 2;
        o.patch_size = 5;
        tfx_attribution *a;
        OK(tfx_explain(m, golden("x")->data, 3, &o, &a));
        tfx_attribution_free(a);
        assert_memory_equal(m->grads, saved, np * sizeof(float));
    }
    free(saved);
    tfx_model_free(m);
}

/* Occlusion of a model that only looks at one pixel: the map is non-zero exactly where
 * windows cover that pixel, with the overlap average. */
static void test_occlusion_overlap(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 6, 6, 1));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    tfx_layer *l;
    OK(tfx_model_add_dense(m, &d, &l));
    float k[72] = {0}, b[2] = {0};
    k[(2 * 6 + 3) * 2 + 0] = 1.0f; /* logit 0 = pixel (2, 3) */
    OK(tfx_layer_set_weights(l, k, b));
    float x[36];
    for (int i = 0; i < 36; i++) x[i] = 1.0f;
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_OCCLUSION;
    o.class_index = 0;
    o.patch_size = 2;
    o.stride = 1;
    tfx_attribution *a;
    OK(tfx_explain(m, x, 1, &o, &a));
    const float *s = tfx_attribution_data(a, 0);
    double drop = 1.0 / (1.0 + exp(-1.0)) - 0.5; /* p0 = sigmoid(x(2,3)) */
    for (int y = 0; y < 6; y++)
        for (int xx = 0; xx < 6; xx++) {
            /* windows covering (y, xx): starts max(0, y-1)..min(y, 4); those also covering (2, 3) */
            int tot = 0, hit = 0;
            for (int y0 = 0; y0 <= 4; y0++)
                for (int x0 = 0; x0 <= 4; x0++) {
                    int cov = y >= y0 && y < y0 + 2 && xx >= x0 && xx < x0 + 2;
                    int cov23 = 2 >= y0 && 2 < y0 + 2 && 3 >= x0 && 3 < x0 + 2;
                    tot += cov;
                    hit += cov && cov23;
                }
            assert_true(fabs(s[y * 6 + xx] - drop * hit / tot) < 1e-6);
        }
    tfx_attribution_free(a);
    tfx_model_free(m);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    const float *x = golden("x")->data;
    tfx_attribution *a = (tfx_attribution *)1;
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    CHECK_ERR(tfx_explain(NULL, x, 1, &o, &a), TFX_EINVAL, "'m' is NULL");
    assert_null(a);
    CHECK_ERR(tfx_explain(m, NULL, 1, &o, &a), TFX_EINVAL, "'x' is NULL");
    CHECK_ERR(tfx_explain(m, x, 1, &o, NULL), TFX_EINVAL, "'out' is NULL");
    CHECK_ERR(tfx_explain(m, x, 0, &o, &a), TFX_EINVAL, "n = 0");
    o.version = 0;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EVERSION, "version 0");
    o.version = 99;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EVERSION, "version 99");
    CHECK_ERR(tfx_explain_options_init(&o, 0), TFX_EVERSION, "version 0");
    OK(tfx_explain_options_init(&o, TFX_EXPLAIN_OPTIONS_VERSION));
    o.method = 42;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "unknown method 42");
    o.method = TFX_METHOD_VANILLA_GRADIENTS;
    o.compat = 7;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "unknown compat mode 7");
    o.compat = 0;
    o.class_index = 5;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "class index 5 (image 0) is out of range: the model has 5");
    o.class_index = -2;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "class index -2");
    int bad[3] = {0, 1, 9};
    o.class_index = -1;
    o.class_indices = bad;
    CHECK_ERR(tfx_explain(m, x, 3, &o, &a), TFX_EINVAL, "class index 9 (image 2)");
    o.class_indices = NULL;
    /* layers */
    o.method = TFX_METHOD_GRAD_CAM;
    o.layer_name = "visualisation_layer";
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "no layer named 'visualisation_layer'");
    assert_non_null(strstr(tfx_error_last()->message, "'conv1', 'visualization_layer', 'pool', 'flatten', 'fc', 'out'"));
    o.layer_name = "fc";
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "layer 'fc' (Dense) has a flat output of 8 units");
    o.layer_name = "flatten";
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "Grad-CAM needs a layer with a spatial");
    o.layer_name = NULL;
    /* per-method parameters */
    o.method = TFX_METHOD_OCCLUSION;
    o.patch_size = 11;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "patch_size = 11 is larger than the 10x10 image");
    o.patch_size = 0;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "patch_size = 0 must be > 0");
    o.patch_size = 3;
    o.stride = 4;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "stride = 4 must be in 1..patch_size (3)");
    o.stride = 0;
    o.patch_fill = 9;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "unknown patch_fill 9");
    o.patch_fill = 0;
    o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
    o.steps = 0;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "steps = 0 must be > 0");
    o.steps = 1;
    o.compat = TFX_COMPAT_TF_EXPLAIN;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "steps = 1 must be > 1");
    o.compat = 0;
    o.method = TFX_METHOD_SMOOTH_GRAD;
    o.samples = 0;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "samples = 0 must be > 0");
    o.samples = 2;
    o.noise = -1.0f;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "noise = -1 must be finite");
    o.noise = NAN;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "noise = nan");
    o.noise = 0.1f;
    o.batch_size = (size_t)1 << 40;
    CHECK_ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "batch_size");
    assert_null(a);
    /* getters */
    int shp[3];
    CHECK_ERR(tfx_attribution_shape(NULL, shp), TFX_EINVAL, "'a' is NULL");
    assert_int_equal(tfx_attribution_count(NULL), 0);
    assert_null(tfx_attribution_data(NULL, 0));
    tfx_attribution_free(NULL);
    tfx_model_free(m);

    /* models explainers cannot use */
    OK(tfx_model_new(&m, 4, 4, 1));
    o = (tfx_explain_options)TFX_EXPLAIN_OPTIONS_INIT;
    float z[16] = {0};
    CHECK_ERR(tfx_explain(m, z, 1, &o, &a), TFX_ESTATE, "no layers");
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    CHECK_ERR(tfx_explain(m, z, 1, &o, &a), TFX_ENOTSUP, "need a vector output");
    tfx_model_free(m);
    OK(tfx_model_new(&m, 4, 4, 1));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    OK(tfx_model_add_dense(m, &d, NULL));
    o.method = TFX_METHOD_GRAD_CAM;
    CHECK_ERR(tfx_explain(m, z, 1, &o, &a), TFX_EINVAL, "no conv-like layer with a spatial (4-D) output");
    tfx_model_free(m);
}

/* Every allocation failure is reported as TFX_ENOMEM without leaks (ASan / valgrind). */
static void test_alloc_failures(void **state)
{
    (void)state;
    tfx_model *m = golden_model(0);
    const float *x = golden("x")->data;
    for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
        tfx_explain_options o = opts(method, TFX_COMPAT_NONE);
        o.class_indices = NULL;
        o.samples = 2;
        o.steps = 2;
        o.patch_size = 5;
        o.batch_size = 2;
        int ok = 0;
        for (long k = 1; k < 200 && !ok; k++) {
            tfx_model_free(m); /* fresh buffers, so the model's allocations are exercised too */
            m = golden_model(0);
            tfx_attribution *a = NULL;
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
        cmocka_unit_test(test_golden_gradients),
        cmocka_unit_test(test_golden_grad_cam),
        cmocka_unit_test(test_golden_integrated_gradients),
        cmocka_unit_test(test_golden_smooth_grad),
        cmocka_unit_test(test_golden_occlusion),
        cmocka_unit_test(test_golden_activations),
        cmocka_unit_test(test_predicted_class),
        cmocka_unit_test(test_separate_softmax),
        cmocka_unit_test(test_ig_completeness),
        cmocka_unit_test(test_golden_ig_rules),
        cmocka_unit_test(test_ig_rules_completeness),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_no_param_grads),
        cmocka_unit_test(test_occlusion_overlap),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
