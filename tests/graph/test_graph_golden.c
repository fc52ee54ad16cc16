/* A mini ResNet and a mini MobileNetV2 built with the public graph API, against PyTorch /
 * torchvision golden values (gen_golden_graph.py: torchvision 0.14's BasicBlock, InvertedResidual
 * and Conv2dNormActivation, random weights and BatchNorm statistics, float64): predictions,
 * vanilla gradients, gradients x inputs, Integrated Gradients (16 steps), Grad-CAM at the last block
 * and inside a residual branch, guided backprop, LRP-epsilon maps and per-layer relevance sums; LRP
 * relevance conservation on the bias-free variants; the model file round trip. Every quantity
 * within 1e-4 of the largest reference value of that quantity. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define OK(call)                                                                              \
    do {                                                                                      \
        int rc__ = (call);                                                                    \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message); \
    } while (0)

#define TOL 1e-4
#define N_IMG 2
#define BN_EPS 1e-5f /* torch's BatchNorm2d default (Keras's is 1e-3) */
#define LRP_EPS 0.1f /* the generator's epsilon */

#include "../common/golden_file.h"

static const char *RESNET_CAMS[2] = {"b2_out", "b1_relu1"};
static const int RESNET_CAM_HW[2] = {4, 8};
static const char *MOBILENET_CAMS[2] = {"ir3_add", "ir3_dw_relu6"};
static const int MOBILENET_CAM_HW[2] = {6, 6};

static garr G[96];
static int n_golden;

static const garr *golden(const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!n_golden) n_golden = golden_file_load("tests/graph/golden_graph.bin", G, 96);
    return golden_file_find(G, n_golden, name);
}

static int group_teardown(void **state)
{
    (void)state;
    golden_file_free(G, n_golden);
    n_golden = 0;
    return 0;
}

/* ---- building the networks with the public API, weights from the golden file ---- */

typedef struct net {
    const char *prefix; /* "resnet" or "mobilenet" */
    tfx_model *m;
} net;

static void set_weights(net *t, tfx_layer *l, int has_bias)
{
    const char *name = tfx_layer_name(l);
    size_t ks, bs;
    OK(tfx_layer_weight_sizes(l, &ks, &bs));
    const garr *k = golden("%s/%s/kernel", t->prefix, name);
    assert_int_equal(k->count, ks);
    const float *b = NULL;
    if (has_bias) {
        const garr *bb = golden("%s/%s/bias", t->prefix, name);
        assert_int_equal(bb->count, bs);
        b = bb->data;
    }
    OK(tfx_layer_set_weights(l, k->data, b));
}

/* Conv2D without bias and activation (BN follows), PyTorch's symmetric padding. */
static tfx_layer *conv(net *t, const char *name, int filters, int k, int stride, int pad)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = stride;
    o.padding = TFX_PADDING_EXPLICIT;
    o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = pad;
    o.use_bias = 0;
    o.name = name;
    tfx_layer *l;
    OK(tfx_model_add_conv2d(t->m, &o, &l));
    set_weights(t, l, 0);
    return l;
}

static tfx_layer *dwconv(net *t, const char *name, int stride)
{
    tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    o.kernel_h = o.kernel_w = 3;
    o.stride_h = o.stride_w = stride;
    o.padding = TFX_PADDING_EXPLICIT;
    o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = 1;
    o.use_bias = 0;
    o.name = name;
    tfx_layer *l;
    OK(tfx_model_add_depthwise_conv2d(t->m, &o, &l));
    set_weights(t, l, 0);
    return l;
}

static tfx_layer *bn(net *t, const char *name)
{
    tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
    o.epsilon = BN_EPS;
    o.name = name;
    tfx_layer *l;
    OK(tfx_model_add_batch_normalization(t->m, &o, &l));
    set_weights(t, l, 0);
    return l;
}

static tfx_layer *act(net *t, int activation, const char *name)
{
    tfx_layer *l;
    OK(tfx_model_add_activation(t->m, activation, 0.0f, name, &l));
    return l;
}

static tfx_layer *add2(net *t, tfx_layer *a, tfx_layer *b, const char *name)
{
    tfx_layer *in[2] = {a, b}, *l;
    OK(tfx_model_add_add(t->m, in, 2, name, &l));
    return l;
}

static void head(net *t, int dropout)
{
    OK(tfx_model_add_global_average_pooling2d(t->m, "gap", NULL));
    if (dropout) OK(tfx_model_add_dropout(t->m, 0.2f, "dropout", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 10;
    d.name = "fc";
    tfx_layer *l;
    OK(tfx_model_add_dense(t->m, &d, &l));
    set_weights(t, l, 1);
}

/* torchvision's BasicBlock: conv3x3/s + BN + ReLU, conv3x3 + BN, + shortcut (identity, or
 * conv1x1/s + BN when projecting), ReLU. `in` is the last layer added. */
static tfx_layer *basic_block(net *t, const char *p, tfx_layer *in, int planes, int stride, int project)
{
    char n[8][32];
    const char *suffix[8] = {"conv1", "bn1", "relu1", "conv2", "bn2", "down_conv", "down_bn", "add"};
    for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s_%s", p, suffix[i]);
    conv(t, n[0], planes, 3, stride, 1);
    bn(t, n[1]);
    act(t, TFX_ACTIVATION_RELU, n[2]);
    conv(t, n[3], planes, 3, 1, 1);
    tfx_layer *y = bn(t, n[4]), *s = in;
    if (project) {
        OK(tfx_model_set_next_input(t->m, in));
        conv(t, n[5], planes, 1, stride, 0);
        s = bn(t, n[6]);
    }
    add2(t, y, s, n[7]);
    char out[32];
    snprintf(out, sizeof out, "%s_out", p);
    return act(t, TFX_ACTIVATION_RELU, out);
}

static net build_resnet(void)
{
    net t = {"resnet", NULL};
    OK(tfx_model_new(&t.m, 32, 32, 3));
    conv(&t, "stem_conv", 8, 7, 2, 3);
    bn(&t, "stem_bn");
    act(&t, TFX_ACTIVATION_RELU, "stem_relu");
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 3;
    p.stride_h = p.stride_w = 2;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    p.name = "pool";
    tfx_layer *x;
    OK(tfx_model_add_max_pooling2d(t.m, &p, &x));
    x = basic_block(&t, "b1", x, 8, 1, 0);
    basic_block(&t, "b2", x, 16, 2, 1);
    head(&t, 0);
    return t;
}

/* torchvision's InvertedResidual: [conv1x1 + BN + ReLU6 when expanding], depthwise 3x3/s + BN +
 * ReLU6, conv1x1 + BN (linear bottleneck), + the block input when stride 1 and in == out. */
static tfx_layer *inverted_residual(net *t, const char *p, tfx_layer *in, int hidden, int out, int stride, int expand,
                                    int residual)
{
    char n[8][32];
    const char *suffix[8] = {"expand", "expand_bn", "expand_relu6", "dw", "dw_bn", "dw_relu6", "project", "project_bn"};
    for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s_%s", p, suffix[i]);
    if (expand) {
        conv(t, n[0], hidden, 1, 1, 0);
        bn(t, n[1]);
        act(t, TFX_ACTIVATION_RELU6, n[2]);
    }
    dwconv(t, n[3], stride);
    bn(t, n[4]);
    act(t, TFX_ACTIVATION_RELU6, n[5]);
    conv(t, n[6], out, 1, 1, 0);
    tfx_layer *y = bn(t, n[7]);
    if (!residual) return y;
    char a[32];
    snprintf(a, sizeof a, "%s_add", p);
    return add2(t, in, y, a);
}

static net build_mobilenet(void)
{
    net t = {"mobilenet", NULL};
    OK(tfx_model_new(&t.m, 24, 24, 3));
    conv(&t, "stem_conv", 8, 3, 2, 1);
    bn(&t, "stem_bn");
    tfx_layer *x = act(&t, TFX_ACTIVATION_RELU6, "stem_relu6");
    x = inverted_residual(&t, "ir1", x, 8, 8, 1, 0, 1);
    x = inverted_residual(&t, "ir2", x, 48, 12, 2, 1, 0);
    inverted_residual(&t, "ir3", x, 72, 12, 1, 1, 1);
    conv(&t, "head_conv", 32, 1, 1, 0);
    bn(&t, "head_bn");
    act(&t, TFX_ACTIVATION_RELU6, "head_relu6");
    head(&t, 1);
    return t;
}

/* The graph built is the generator's: layer order and inputs (tensor numbers: 0 = the model
 * input, k + 1 = layer k's output). */
static void check_structure(net *t)
{
    const garr *in = golden("%s/inputs", t->prefix);
    size_t L = tfx_model_layer_count(t->m);
    assert_int_equal((size_t)in->dims[0], L);
    for (size_t k = 0; k < L; k++) {
        const tfx_layer *ins[4];
        size_t cnt;
        OK(tfx_layer_inputs(tfx_model_layer(t->m, k), ins, 4, &cnt));
        for (size_t j = 0; j < 2; j++) {
            int want = (int)in->data[2 * k + j];
            if (j >= cnt) {
                assert_int_equal(want, -1);
                continue;
            }
            int got = ins[j] ? tfx_layer_index(ins[j]) + 1 : 0;
            if (got != want)
                fail_msg("%s layer %zu (%s) input %zu: tensor %d, generator %d", t->prefix, k,
                         tfx_layer_name(tfx_model_layer(t->m, k)), j, got, want);
        }
    }
}

/* ---- comparisons ---- */

static void compare(const char *what, const float *got, const garr *ref, size_t count)
{
    assert_int_equal(count, ref->count);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num = fmax(num, fabs((double)got[i] - ref->data[i]));
        den = fmax(den, fabs(ref->data[i]));
    }
    assert_true(den > 0.0);
    print_message("    %-32s max |ref| %.4g  max abs err %.3g  rel %.3g\n", what, den, num, num / den);
    if (!(num <= TOL * den))
        fail_msg("%s: max abs error %g is %g of max |ref| %g (limit %g)", what, num, num / den, den, TOL);
}

static void explain_opts(tfx_explain_options *o, const net *t, int method)
{
    static int classes[2][N_IMG];
    int which = strcmp(t->prefix, "resnet") != 0;
    const garr *c = golden("%s/classes", t->prefix);
    for (int i = 0; i < N_IMG; i++) classes[which][i] = (int)c->data[i];
    *o = (tfx_explain_options)TFX_EXPLAIN_OPTIONS_INIT;
    o->method = method;
    o->class_indices = classes[which];
}

/* tfx_explain's maps of both images, against the golden array `key`; shape checked. */
static void expect_maps(net *t, const tfx_explain_options *o, const char *key, int h, int w, int c)
{
    tfx_attribution *a;
    OK(tfx_explain(t->m, golden("%s/x", t->prefix)->data, N_IMG, o, &a));
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    assert_int_equal(shp[0], h);
    assert_int_equal(shp[1], w);
    assert_int_equal(shp[2], c);
    assert_int_equal(tfx_attribution_count(a), N_IMG);
    size_t per = (size_t)h * w * c;
    float *all = malloc(N_IMG * per * sizeof(float));
    assert_non_null(all);
    for (size_t i = 0; i < N_IMG; i++) {
        memcpy(all + i * per, tfx_attribution_data(a, i), per * sizeof(float));
        assert_int_equal(tfx_attribution_class_index(a, i), (int)golden("%s/classes", t->prefix)->data[i]);
    }
    char what[96];
    if (o->batch_size)
        snprintf(what, sizeof what, "%s %s, batch_size %zu", t->prefix, key, o->batch_size);
    else
        snprintf(what, sizeof what, "%s %s", t->prefix, key);
    compare(what, all, golden("%s/%s", t->prefix, key), N_IMG * per);
    free(all);
    tfx_attribution_free(a);
}

static void check_all(net *t, int H, int W, const char *cam_layers[2], const int cam_hw[2])
{
    print_message("  %s (%zu layers)\n", t->prefix, tfx_model_layer_count(t->m));
    check_structure(t);
    const garr *x = golden("%s/x", t->prefix);
    float logits[N_IMG * 10];
    OK(tfx_model_predict(t->m, x->data, N_IMG, logits));
    char what[96];
    snprintf(what, sizeof what, "%s logits", t->prefix);
    compare(what, logits, golden("%s/logits", t->prefix), N_IMG * 10);

    tfx_explain_options o;
    explain_opts(&o, t, TFX_METHOD_VANILLA_GRADIENTS);
    expect_maps(t, &o, "vanilla", H, W, 3);
    /* class -1: image 0's target is its predicted class (the generator's choice for it). */
    explain_opts(&o, t, TFX_METHOD_VANILLA_GRADIENTS);
    o.class_indices = NULL;
    tfx_attribution *a0;
    OK(tfx_explain(t->m, x->data, 1, &o, &a0));
    assert_int_equal(tfx_attribution_class_index(a0, 0), (int)golden("%s/classes", t->prefix)->data[0]);
    const garr *v = golden("%s/vanilla", t->prefix);
    garr first = *v;
    first.count = v->count / N_IMG;
    snprintf(what, sizeof what, "%s vanilla, class -1", t->prefix);
    compare(what, tfx_attribution_data(a0, 0), &first, first.count);
    tfx_attribution_free(a0);
    explain_opts(&o, t, TFX_METHOD_GRADIENTS_INPUTS);
    expect_maps(t, &o, "grad_inputs", H, W, 3);
    explain_opts(&o, t, TFX_METHOD_INTEGRATED_GRADIENTS);
    o.steps = 16;
    expect_maps(t, &o, "ig16", H, W, 3);
    o.batch_size = 5; /* chunks that split an image's path: the graph's buffers at other row counts */
    expect_maps(t, &o, "ig16", H, W, 3);
    explain_opts(&o, t, TFX_METHOD_GUIDED_BACKPROP);
    expect_maps(t, &o, "guided", H, W, 3);
    for (int k = 0; k < 2; k++) {
        explain_opts(&o, t, TFX_METHOD_GRAD_CAM);
        o.layer_name = cam_layers[k];
        char key[64];
        snprintf(key, sizeof key, "gradcam/%s", cam_layers[k]);
        expect_maps(t, &o, key, cam_hw[k], cam_hw[k], 1);
    }
    explain_opts(&o, t, TFX_METHOD_LRP);
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_epsilon = LRP_EPS;
    expect_maps(t, &o, "lrp", H, W, 3);

    /* Relevance sums: after each layer, the total over the tensors waiting for their producer (a
     * cut of the graph); the last entry S_c. */
    tfx_attribution *a;
    OK(tfx_explain(t->m, x->data, N_IMG, &o, &a));
    size_t L = tfx_model_layer_count(t->m), cnt;
    const garr *ref = golden("%s/lrp_sums", t->prefix);
    assert_int_equal((size_t)ref->dims[1], L + 1);
    double *sums = malloc(N_IMG * (L + 1) * sizeof(double));
    float *sf = malloc(N_IMG * (L + 1) * sizeof(float));
    assert_true(sums && sf);
    for (size_t i = 0; i < N_IMG; i++) {
        OK(tfx_attribution_relevance_sums(a, i, sums + i * (L + 1), L + 1, &cnt));
        assert_int_equal(cnt, L + 1);
    }
    for (size_t i = 0; i < N_IMG * (L + 1); i++) sf[i] = (float)sums[i];
    snprintf(what, sizeof what, "%s LRP relevance sums", t->prefix);
    compare(what, sf, ref, N_IMG * (L + 1));
    free(sums);
    free(sf);
    tfx_attribution_free(a);
}

/* ---- LRP conservation: the same networks without biases (BN shifts 0, Dense bias 0) ---- */

static void remove_biases(net *t)
{
    for (size_t k = 0; k < tfx_model_layer_count(t->m); k++) {
        tfx_layer *l = tfx_model_layer(t->m, k);
        size_t ks, bs;
        OK(tfx_layer_weight_sizes(l, &ks, &bs));
        if (tfx_layer_get_kind(l) == TFX_LAYER_BATCH_NORMALIZATION) {
            float *w = malloc(ks * sizeof(float));
            assert_non_null(w);
            OK(tfx_layer_get_weights(l, w, NULL));
            size_t c = ks / 4;
            /* y = gamma (x - mean) / sqrt(var + eps) + beta: beta = gamma mean / sqrt(var + eps) */
            for (size_t j = 0; j < c; j++) w[c + j] = w[j] * w[2 * c + j] / sqrtf(w[3 * c + j] + BN_EPS);
            OK(tfx_layer_set_weights(l, w, NULL));
            free(w);
        } else if (bs) {
            float *w = malloc(ks * sizeof(float)), *b = malloc(bs * sizeof(float));
            assert_true(w && b);
            OK(tfx_layer_get_weights(l, w, b));
            memset(b, 0, bs * sizeof(float));
            OK(tfx_layer_set_weights(l, w, b));
            free(w);
            free(b);
        }
    }
}

/* With no bias to absorb relevance and a tiny epsilon, LRP-epsilon conserves it at every step:
 * each recorded total (after each layer, over the tensors waiting for their producer: a cut of the
 * graph, including the two sides of every residual branch) and the input map's total equal S_c. */
static void check_conservation(net *t)
{
    remove_biases(t);
    tfx_explain_options o;
    explain_opts(&o, t, TFX_METHOD_LRP);
    o.lrp_rule = TFX_LRP_EPSILON;
    o.lrp_epsilon = 1e-6f;
    tfx_attribution *a;
    OK(tfx_explain(t->m, golden("%s/x", t->prefix)->data, N_IMG, &o, &a));
    size_t L = tfx_model_layer_count(t->m), cnt;
    double *sums = malloc((L + 1) * sizeof(double)), worst = 0.0;
    assert_non_null(sums);
    int shp[3];
    OK(tfx_attribution_shape(a, shp));
    for (size_t i = 0; i < N_IMG; i++) {
        OK(tfx_attribution_relevance_sums(a, i, sums, L + 1, &cnt));
        assert_int_equal(cnt, L + 1);
        double sc = sums[L], total = 0.0;
        assert_true(fabs(sc) > 0.1);
        const float *map = tfx_attribution_data(a, i);
        for (size_t j = 0; j < (size_t)shp[0] * shp[1] * shp[2]; j++) total += map[j];
        worst = fmax(worst, fabs(total - sc) / fabs(sc));
        for (size_t k = 0; k < L; k++) {
            double e = fabs(sums[k] - sc) / fabs(sc);
            if (e > TOL)
                fail_msg("%s image %zu: relevance total after layer %zu (%s) is %.7g, S_c %.7g", t->prefix, i, k,
                         tfx_layer_name(tfx_model_layer(t->m, k)), sums[k], sc);
            worst = fmax(worst, e);
        }
    }
    print_message("    %-10s %-21s worst |sum R - S_c| / |S_c| %.3g (%zu boundaries)\n", t->prefix,
                  "LRP-eps 1e-6 no bias", worst, L + 1);
    assert_true(worst <= TOL);
    free(sums);
    tfx_attribution_free(a);
}

/* ---- save / load ---- */

/* The model file round trip keeps the graph: same layers and inputs, bit-identical predictions,
 * and the loaded model explains as the original (Grad-CAM inside a residual branch, where the
 * gradient reaches the layer through a fan-out). */
static void check_save_load(net *t, const char *cam_layer, int cam_hw)
{
    size_t size;
    OK(tfx_model_save_to_memory(t->m, NULL, NULL, 0, &size));
    void *buf = malloc(size);
    assert_non_null(buf);
    OK(tfx_model_save_to_memory(t->m, NULL, buf, size, &size));
    tfx_model *back;
    OK(tfx_model_load_from_memory(&back, buf, size));
    free(buf);
    assert_int_equal(tfx_model_layer_count(back), tfx_model_layer_count(t->m));
    const garr *x = golden("%s/x", t->prefix);
    float p1[N_IMG * 10], p2[N_IMG * 10];
    OK(tfx_model_predict(t->m, x->data, N_IMG, p1));
    OK(tfx_model_predict(back, x->data, N_IMG, p2));
    assert_memory_equal(p1, p2, sizeof p1);
    net u = {t->prefix, back};
    check_structure(&u);
    for (size_t k = 0; k < tfx_model_layer_count(back); k++)
        assert_string_equal(tfx_layer_name(tfx_model_layer(back, k)), tfx_layer_name(tfx_model_layer(t->m, k)));
    tfx_explain_options o;
    explain_opts(&o, &u, TFX_METHOD_GRAD_CAM);
    o.layer_name = cam_layer;
    char key[64];
    snprintf(key, sizeof key, "gradcam/%s", cam_layer);
    expect_maps(&u, &o, key, cam_hw, cam_hw, 1);
    tfx_model_free(back);
}

/* ---- tests ---- */

static void test_resnet_golden(void **state)
{
    (void)state;
    net t = build_resnet();
    check_all(&t, 32, 32, RESNET_CAMS, RESNET_CAM_HW);
    tfx_model_free(t.m);
}

static void test_mobilenet_golden(void **state)
{
    (void)state;
    net t = build_mobilenet();
    check_all(&t, 24, 24, MOBILENET_CAMS, MOBILENET_CAM_HW);
    tfx_model_free(t.m);
}

static void test_lrp_conservation(void **state)
{
    (void)state;
    net t = build_resnet();
    check_conservation(&t);
    tfx_model_free(t.m);
    t = build_mobilenet();
    check_conservation(&t);
    tfx_model_free(t.m);
}

static void test_save_load(void **state)
{
    (void)state;
    net t = build_resnet();
    check_save_load(&t, RESNET_CAMS[1], RESNET_CAM_HW[1]);
    tfx_model_free(t.m);
    t = build_mobilenet();
    check_save_load(&t, MOBILENET_CAMS[1], MOBILENET_CAM_HW[1]);
    tfx_model_free(t.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_golden),
        cmocka_unit_test(test_mobilenet_golden),
        cmocka_unit_test(test_lrp_conservation),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
