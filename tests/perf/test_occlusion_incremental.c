/* Occlusion's incremental forward (lib/explain/incremental.c) gives the maps a plain
 * recomputation gives: the test builds every occluded copy itself, scores it with
 * tfx_model_predict (full forward) and averages p(x) - p(copy) per pixel, for models that take
 * each path: conv stack + Dense merge, SAME/strided conv with pools, Activation, Dropout and
 * BatchNormalization (moving statistics away from the identity),
 * GAP after the boxes (paste path), a patch too big to gain (full path); chunks smaller than
 * an image's window count; compat mode (1 - p cells). Also checks which path the plan takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain_internal.h"

#define OK(call) assert_int_equal((call), TFX_OK)

/* Under valgrind (the suite's memcheck run) one case per test: the reference predictions of
 * every window are slow there. */
static int quick;
#define EXTRA if (!quick)

static void conv(tfx_model *m, int f, int k, int s, int pad, int act)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = f;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = s;
    o.padding = pad;
    o.activation = act;
    OK(tfx_model_add_conv2d(m, &o, NULL));
}

static void dense(tfx_model *m, int units, int act)
{
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    o.units = units;
    o.activation = act;
    OK(tfx_model_add_dense(m, &o, NULL));
}

static void pool(tfx_model *m, int is_max, int k, int s, int pad)
{
    tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
    o.pool_h = o.pool_w = k;
    o.stride_h = o.stride_w = s;
    o.padding = pad;
    OK(is_max ? tfx_model_add_max_pooling2d(m, &o, NULL) : tfx_model_add_average_pooling2d(m, &o, NULL));
}

/* Small random biases so the boxes' bias path is exercised (Keras initialises them to 0). */
static void randomise_biases(tfx_model *m, unsigned seed)
{
    srand(seed);
    size_t L = tfx_model_layer_count(m);
    for (size_t i = 0; i < L; i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t k, b;
        OK(tfx_layer_weight_sizes(l, &k, &b));
        if (!b) continue;
        float *kw = malloc(k * sizeof(float)), *bw = malloc(b * sizeof(float));
        OK(tfx_layer_get_weights(l, kw, bw));
        for (size_t j = 0; j < b; j++) bw[j] = (float)(rand() % 2001 - 1000) * 1e-4f;
        OK(tfx_layer_set_weights(l, kw, bw));
        free(kw);
        free(bw);
    }
}

enum { M_DENSE_MERGE, M_POOLS, M_GAP, M_DEPTH1, M_BN, M_NEW_KINDS };

/* Moving statistics and affine parameters away from the identity. */
static void randomise_batch_norm(tfx_layer *l, unsigned seed)
{
    size_t k, b;
    OK(tfx_layer_weight_sizes(l, &k, &b));
    float *w = malloc(k * sizeof(float));
    size_t C = k / 4;
    srand(seed);
    for (size_t c = 0; c < C; c++) {
        w[c] = 0.5f + (float)(rand() % 1001) * 1e-3f;              /* gamma */
        w[C + c] = (float)(rand() % 401 - 200) * 1e-3f;            /* beta */
        w[2 * C + c] = (float)(rand() % 201 - 100) * 1e-3f;        /* moving mean */
        w[3 * C + c] = 0.5f + (float)(rand() % 1501) * 1e-3f;      /* moving variance */
    }
    OK(tfx_layer_set_weights(l, w, NULL));
    free(w);
}

static tfx_model *make_model(int kind, int H, int W, int C)
{
    tfx_model *m;
    OK(tfx_model_new(&m, H, W, C));
    switch (kind) {
    case M_DENSE_MERGE: /* the seed model's shape, smaller */
        conv(m, 6, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU);
        conv(m, 8, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU);
        conv(m, 10, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU);
        OK(tfx_model_add_flatten(m, NULL, NULL));
        OK(tfx_model_add_dropout(m, 0.5f, NULL, NULL));
        dense(m, 12, TFX_ACTIVATION_RELU);
        dense(m, 5, TFX_ACTIVATION_SOFTMAX);
        break;
    case M_POOLS: /* SAME + stride 2, pools (valid and SAME), Activation, Dropout */
        conv(m, 6, 3, 2, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR);
        OK(tfx_model_add_activation(m, TFX_ACTIVATION_TANH, 0.0f, NULL, NULL));
        conv(m, 7, 5, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LEAKY_RELU);
        pool(m, 1, 2, 1, TFX_PADDING_VALID);
        OK(tfx_model_add_dropout(m, 0.3f, NULL, NULL));
        pool(m, 0, 3, 1, TFX_PADDING_SAME);
        OK(tfx_model_add_flatten(m, NULL, NULL));
        dense(m, 4, TFX_ACTIVATION_SOFTMAX);
        break;
    case M_GAP: /* boxes pasted into full maps, then GAP */
        conv(m, 6, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU);
        conv(m, 8, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_ELU);
        OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
        dense(m, 3, TFX_ACTIVATION_SOFTMAX);
        break;
    case M_BN: { /* Conv -> BN -> ReLU twice, then the Dense merge */
        tfx_batch_norm_options bo = TFX_BATCH_NORM_OPTIONS_INIT;
        tfx_layer *bn;
        conv(m, 6, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR);
        OK(tfx_model_add_batch_normalization(m, &bo, &bn));
        randomise_batch_norm(bn, 5u);
        OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL));
        conv(m, 8, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR);
        OK(tfx_model_add_batch_normalization(m, &bo, &bn));
        randomise_batch_norm(bn, 6u);
        OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL));
        OK(tfx_model_add_flatten(m, NULL, NULL));
        dense(m, 4, TFX_ACTIVATION_SOFTMAX);
        break;
    }
    case M_NEW_KINDS: /* the kinds and activations added after 0.1 (issue 17) */
        conv(m, 6, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU6);
        OK(tfx_model_add_clip(m, -0.25f, 0.5f, NULL, NULL));
        OK(tfx_model_add_zero_padding2d(m, 1, 2, 3, 0, NULL, NULL));
        conv(m, 8, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_HARD_SWISH);
        {
            tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
            dw.depth_multiplier = 2;
            dw.padding = TFX_PADDING_SAME;
            dw.activation = TFX_ACTIVATION_RELU6;
            OK(tfx_model_add_depthwise_conv2d(m, &dw, NULL));
            tfx_conv2d_options g = TFX_CONV2D_OPTIONS_INIT;
            g.filters = 8;
            g.groups = 4;
            g.kernel_h = g.kernel_w = 2;
            OK(tfx_model_add_conv2d(m, &g, NULL));
        }
        OK(tfx_model_add_activation(m, TFX_ACTIVATION_HARD_SIGMOID, 0.0f, NULL, NULL));
        OK(tfx_model_add_reshape(m, -1, 1, 8, NULL, NULL)); /* no box: the full forward from here */
        OK(tfx_model_add_global_max_pooling2d(m, NULL, NULL));
        dense(m, 3, TFX_ACTIVATION_SOFTMAX);
        break;
    case M_DEPTH1: /* the second conv's box would cover most of its map: only the first is boxed */
        conv(m, 4, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU);
        conv(m, 4, 9, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU);
        OK(tfx_model_add_flatten(m, NULL, NULL));
        dense(m, 3, TFX_ACTIVATION_SOFTMAX);
        break;
    }
    randomise_biases(m, (unsigned)kind + 7u);
    return m;
}

/* Reference: every window's copy through tfx_model_predict, same window rule as occlusion.c. */
static double *reference(tfx_model *m, const float *x, size_t n, int H, int W, int C, int P, int st, float fill,
                         int compat, const int *cls, size_t K)
{
    size_t D = (size_t)H * W * C, HW = (size_t)H * W;
    int ny = (H - P + st - 1) / st + 1, nx = (W - P + st - 1) / st + 1;
    double *map = calloc(n * HW, sizeof(double));
    double *cells = calloc((size_t)ny * nx, sizeof(double));
    int *cover = calloc(HW, sizeof(int));
    float *copy = malloc(D * sizeof(float)), *out = malloc(K * sizeof(float)), *clean = malloc(K * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * D;
        OK(tfx_model_predict(m, xi, 1, clean));
        memset(cover, 0, HW * sizeof(int));
        for (int wy = 0; wy < ny; wy++)
            for (int wx = 0; wx < nx; wx++) {
                int y0 = wy * st, x0 = wx * st;
                int y1 = y0 + P < H ? y0 + P : H, x1 = x0 + P < W ? x0 + P : W;
                memcpy(copy, xi, D * sizeof(float));
                for (int y = y0; y < y1; y++)
                    for (int q = x0; q < x1; q++)
                        for (int c = 0; c < C; c++) copy[((size_t)y * W + q) * C + c] = fill;
                OK(tfx_model_predict(m, copy, 1, out));
                double p = out[cls[i]];
                cells[wy * nx + wx] = 1.0 - p;
                for (int y = y0; y < y1; y++)
                    for (int q = x0; q < x1; q++) {
                        map[i * HW + (size_t)y * W + q] += clean[cls[i]] - p;
                        cover[(size_t)y * W + q]++;
                    }
            }
        for (size_t k = 0; k < HW; k++) map[i * HW + k] /= cover[k];
        if (compat) /* the 1 - p cells (the picture resizes them; that part is not occlusion's) */
            for (int k = 0; k < ny * nx; k++) map[i * HW + (size_t)k] = cells[k];
    }
    free(cells);
    free(cover);
    free(copy);
    free(out);
    free(clean);
    return map;
}

static size_t plan_depth(tfx_model *m, int P, size_t *dense)
{
    tfx__incr p;
    OK(tfx__incr_init(&p, m, P, P, 4));
    size_t d = p.depth;
    *dense = p.dense;
    tfx__incr_free(&p);
    return d;
}

static void check(int kind, int H, int W, int C, int P, int st, size_t batch, int compat, size_t want_depth,
                  int want_dense)
{
    tfx_model *m = make_model(kind, H, W, C);
    size_t dense_at, depth = plan_depth(m, P, &dense_at);
    assert_int_equal(depth, want_depth);
    assert_int_equal(dense_at != 0, want_dense);
    const size_t n = 2, D = (size_t)H * W * C, HW = (size_t)H * W;
    float *x = malloc(n * D * sizeof(float));
    srand(11u + (unsigned)kind);
    for (size_t j = 0; j < n * D; j++) x[j] = (float)(rand() % 1000) / 999.0f;
    int cls[2] = {1, 2};
    size_t K = 0;
    int shp[3];
    OK(tfx_model_output_shape(m, shp));
    K = (size_t)shp[2];
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_OCCLUSION;
    o.class_indices = cls;
    o.patch_size = P;
    o.stride = compat ? 0 : st;
    o.patch_fill = TFX_PATCH_VALUE;
    o.patch_value = compat ? 127.5f : 0.25f;
    o.compat = compat ? TFX_COMPAT_TF_EXPLAIN : TFX_COMPAT_NONE;
    o.batch_size = batch;
    tfx_attribution *a;
    OK(tfx_explain(m, x, n, &o, &a));
    double *ref = reference(m, x, n, H, W, C, P, compat ? P : st, o.patch_value, compat, cls, K);
    const float *got = tfx_attribution_data(a, 0);
    double worst = 0.0;
    if (compat) {
        size_t nc = (size_t)a->cells_h * a->cells_w;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < nc; k++) worst = fmax(worst, fabs(a->cells[i * nc + k] - ref[i * HW + k]));
    } else {
        for (size_t j = 0; j < n * HW; j++) worst = fmax(worst, fabs(got[j] - ref[j]));
    }
    print_message("  model %d, %dx%dx%d, patch %d stride %d, batch %zu%s: boxed layers %zu%s, max |diff| %.2e\n",
                  kind, H, W, C, P, compat ? P : st, batch, compat ? " compat" : "", depth,
                  dense_at ? " + Dense merge" : "", worst);
    /* compat's 127.5 patches on [0, 1] images make logits ~100x larger: rounding grows alike */
    assert_true(worst <= (compat ? 1e-5 : 2e-6));
    free(ref);
    free(x);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

static void test_dense_merge(void **state)
{
    (void)state;
    check(M_DENSE_MERGE, 24, 24, 3, 4, 4, 0, 0, 3, 1);
    EXTRA check(M_DENSE_MERGE, 24, 24, 3, 3, 2, 7, 0, 3, 1); /* 121 windows in chunks of 7 */
    EXTRA check(M_DENSE_MERGE, 23, 25, 2, 3, 3, 1, 0, 3, 1); /* clipped last windows, one row per chunk */
    EXTRA check(M_DENSE_MERGE, 24, 24, 3, 4, 0, 5, 1, 3, 1); /* compat: 1 - p cells */
    EXTRA check(M_DENSE_MERGE, 20, 20, 3, 4, 4, 0, 0, 2, 0); /* third box > half its map: pasted after two */
}

static void test_pools_same_strides(void **state)
{
    (void)state;
    check(M_POOLS, 32, 32, 3, 4, 4, 0, 0, 6, 1);
    EXTRA check(M_POOLS, 32, 32, 3, 2, 2, 0, 0, 6, 1);
    EXTRA check(M_POOLS, 32, 30, 1, 2, 1, 9, 0, 6, 1);
    EXTRA check(M_POOLS, 24, 24, 3, 2, 2, 0, 0, 5, 0); /* the SAME average pool's box is too big */
}

static void test_paste_and_partial_depth(void **state)
{
    (void)state;
    check(M_GAP, 16, 16, 3, 2, 2, 0, 0, 2, 0);
    check(M_BN, 20, 20, 3, 3, 3, 0, 0, 6, 1); /* BatchNormalization boxed too */
    EXTRA check(M_DEPTH1, 16, 16, 2, 2, 2, 6, 0, 1, 0);
}

/* The new kinds: boxed through the activations, padding and (grouped, depthwise) convs, full
 * maps into Reshape and GlobalMaxPooling2D. */
static void test_new_kinds(void **state)
{
    (void)state;
    check(M_NEW_KINDS, 16, 16, 3, 2, 2, 0, 0, 7, 0);
    EXTRA check(M_NEW_KINDS, 15, 17, 2, 3, 2, 5, 0, 7, 0);
}

static void test_full_path_when_no_gain(void **state)
{
    (void)state;
    check(M_DENSE_MERGE, 12, 12, 3, 8, 2, 0, 0, 0, 0); /* the first box already covers most of the map */
}

int main(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    quick = v && *v && strcmp(v, "0") != 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_merge),
        cmocka_unit_test(test_pools_same_strides),
        cmocka_unit_test(test_paste_and_partial_depth),
        cmocka_unit_test(test_full_path_when_no_gain),
        cmocka_unit_test(test_new_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
