/* Winograd Conv2D (lib/core/winograd.c; forward, input gradient and kernel gradient of 3x3
 * stride-1 kernels)
 * against a naive direct convolution in double written here, and against the im2col path, for
 * both tile sizes forced (tfx__winograd_force) on random shapes: channels 1..130, sizes 3..33
 * (odd sizes and sizes below one tile included), valid and SAME padding, batch 1..7, with and
 * without bias, ReLU and linear. The automatic choice is checked on the seed model's shapes.
 *
 * Error measure: |a - ref| / max(1, S) per element, S the sum of |terms| of that element (the
 * scale of the float rounding of any summation order). Bounds (measured worst, margin ~10x):
 *   im2col: TOL_IM2COL (the standard float-sum bound, as tests/engine/test_conv_reference.c)
 *   F(2x2, 3x3): TOL_F2, F(4x4, 3x3): TOL_F4 (the transforms scale the terms by up to 10x for
 *   F(2) and ~100x for F(4) before the float GEMM sums them). The kernel gradient is always
 *   F(3x3, 2x2) (its transforms scale terms by at most 4x): TOL_F2 whatever the forced size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/winograd.h"
#include "model/model_internal.h"
#include "testing.h"
#include "tfx/tfx.h"

#define TOL_IM2COL 1e-5
#define TOL_F2 1e-5
#define TOL_F4 1e-4

typedef struct wcase {
    int n, h, w, c, f, padding, bias, relu;
} wcase;

static int under_valgrind(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static float *falloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

static void fill(tfx__rng *rng, float *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * tfx__rng_uniform(rng));
}

/* Naive 3x3 stride-1 conv: y (after bias and optional ReLU) and dx with |term| sums. */
static void naive(const wcase *k, int oh, int ow, int pad, const float *x, const float *w, const float *b,
                  const float *dy, double *y, double *ys, double *dx, double *dxs, double *dw, double *dws)
{
    for (int bi = 0; bi < k->n; bi++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int f = 0; f < k->f; f++) {
                    size_t yi = (((size_t)bi * oh + oy) * ow + ox) * k->f + f;
                    double acc = b ? b[f] : 0.0, accs = b ? fabs(b[f]) : 0.0, g = dy[yi];
                    for (int ki = 0; ki < 3; ki++) {
                        int iy = oy - pad + ki;
                        if (iy < 0 || iy >= k->h) continue;
                        for (int kj = 0; kj < 3; kj++) {
                            int ix = ox - pad + kj;
                            if (ix < 0 || ix >= k->w) continue;
                            for (int c = 0; c < k->c; c++) {
                                size_t xi = (((size_t)bi * k->h + iy) * k->w + ix) * k->c + c;
                                double wv = w[(((size_t)ki * 3 + kj) * k->c + c) * k->f + f];
                                acc += x[xi] * wv;
                                accs += fabs(x[xi] * wv);
                                dx[xi] += g * wv;
                                dxs[xi] += fabs(g * wv);
                                dw[(((size_t)ki * 3 + kj) * k->c + c) * k->f + f] += x[xi] * g;
                                dws[(((size_t)ki * 3 + kj) * k->c + c) * k->f + f] += fabs(x[xi] * g);
                            }
                        }
                    }
                    y[yi] = k->relu && acc < 0.0 ? 0.0 : acc;
                    ys[yi] = accs;
                }
}

static double worst_err(const float *a, const double *ref, const double *sums, size_t count, size_t *at)
{
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)a[i] - ref[i]) / fmax(1.0, sums[i]);
        if (!(err <= worst)) { /* NaN counts as worst */
            worst = isnan(err) ? INFINITY : err;
            *at = i;
        }
    }
    return worst;
}

/* Worst errors seen per mode (0 im2col, 1 F(2), 2 F(4)) for y, dx and the kernel gradient. */
static double g_worst[3][3];

static void check_case(const wcase *k, uint64_t seed)
{
    static const int modes[3] = {0, 2, 4};
    static const double tols[3] = {TOL_IM2COL, TOL_F2, TOL_F4};
    char label[160];
    snprintf(label, sizeof label, "n%d %dx%dx%d f%d %s%s%s", k->n, k->h, k->w, k->c, k->f,
             k->padding ? "same" : "valid", k->bias ? "" : " nobias", k->relu ? " relu" : "");
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, k->h, k->w, k->c), TFX_OK);
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = k->f;
    o.padding = k->padding;
    o.use_bias = k->bias;
    o.activation = k->relu ? TFX_ACTIVATION_RELU : TFX_ACTIVATION_LINEAR;
    tfx_layer *l = NULL;
    assert_int_equal(tfx_model_add_conv2d(m, &o, &l), TFX_OK);
    const int pad = k->padding == TFX_PADDING_SAME ? 1 : 0, oh = k->h + 2 * pad - 2, ow = k->w + 2 * pad - 2;
    assert_int_equal(l->out.h, oh);
    assert_int_equal(l->out.w, ow);

    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    const size_t nx = (size_t)k->n * k->h * k->w * k->c, nw = (size_t)9 * k->c * k->f;
    const size_t ny = (size_t)k->n * oh * ow * k->f;
    float *x = falloc(nx), *w = falloc(nw), *b = falloc((size_t)k->f), *dy = falloc(ny), *dy2 = falloc(ny);
    fill(&rng, x, nx, -1.0, 1.0);
    fill(&rng, w, nw, -0.5, 0.5);
    fill(&rng, b, (size_t)k->f, -0.5, 0.5);
    fill(&rng, dy, ny, -1.0, 1.0);
    assert_int_equal(tfx_layer_set_weights(l, w, k->bias ? b : NULL), TFX_OK);

    double *y = dalloc(ny), *ys = dalloc(ny), *dx = dalloc(nx), *dxs = dalloc(nx), *dw = dalloc(nw), *dws = dalloc(nw);
    naive(k, oh, ow, pad, x, w, k->bias ? b : NULL, dy, y, ys, dx, dxs, dw, dws);
    float *im2col_y = falloc(ny), *im2col_dx = falloc(nx);
    for (int mi = 0; mi < 3; mi++) {
        tfx__winograd_force(modes[mi]);
        assert_int_equal(tfx__model_forward(m, x, (size_t)k->n, 0), TFX_OK);
        const float *out = tfx__model_layer_output(m, 0);
        size_t at = 0;
        double e = worst_err(out, y, ys, ny, &at);
        if (!(e <= tols[mi])) {
            print_error("%s mode %d: y[%zu] = %.9g, naive %.9g (err %.3g)\n", label, modes[mi], at, (double)out[at],
                        y[at], e);
            fail();
        }
        g_worst[mi][0] = fmax(g_worst[mi][0], e);
        if (mi == 0) memcpy(im2col_y, out, ny * sizeof *out);
        /* dy is the pre-activation gradient (the ReLU mask is not under test here). */
        memcpy(dy2, dy, ny * sizeof *dy); /* backward overwrites its seed */
        float *g = NULL;
        assert_int_equal(tfx__model_backward(m, (size_t)k->n, 0, dy2, 0, 1,
                                             TFX__BW_SKIP_ACTIVATION | TFX__BW_PARAM_GRADS, NULL, &g),
                         TFX_OK);
        const double tol_dw = mi ? TOL_F2 : TOL_IM2COL;
        e = worst_err(tfx__layer_grads(l), dw, dws, nw, &at);
        if (!(e <= tol_dw)) {
            print_error("%s mode %d: dw[%zu] = %.9g, naive %.9g (err %.3g)\n", label, modes[mi], at,
                        (double)tfx__layer_grads(l)[at], dw[at], e);
            fail();
        }
        g_worst[mi][2] = fmax(g_worst[mi][2], e);
        e = worst_err(g, dx, dxs, nx, &at);
        if (!(e <= tols[mi])) {
            print_error("%s mode %d: dx[%zu] = %.9g, naive %.9g (err %.3g)\n", label, modes[mi], at, (double)g[at],
                        dx[at], e);
            fail();
        }
        g_worst[mi][1] = fmax(g_worst[mi][1], e);
        if (mi == 0) memcpy(im2col_dx, g, nx * sizeof *g);
    }
    tfx__winograd_force(-1);

    free(im2col_y);
    free(im2col_dx);
    free(y);
    free(ys);
    free(dx);
    free(dxs);
    free(dw);
    free(dws);
    free(dy2);
    free(dy);
    free(b);
    free(w);
    free(x);
    tfx_model_free(m);
}

static int rnd(tfx__rng *rng, int lo, int hi) { return lo + (int)tfx__rng_below(rng, (uint64_t)(hi - lo + 1)); }

static void test_fixed_shapes(void **state)
{
    (void)state;
    static const wcase cases[] = {
        {1, 3, 3, 1, 1, TFX_PADDING_VALID, 1, 0},   /* 1x1 output: one partial tile */
        {2, 3, 5, 2, 3, TFX_PADDING_SAME, 1, 1},    /* smaller than a 4x4 tile */
        {7, 33, 33, 3, 5, TFX_PADDING_SAME, 1, 0},  /* odd size, partial edge tiles */
        {3, 10, 10, 130, 7, TFX_PADDING_VALID, 0, 0}, /* cin > one 64-channel chunk */
        {2, 9, 7, 5, 130, TFX_PADDING_SAME, 1, 1},  /* cout > one chunk */
        {4, 32, 32, 3, 32, TFX_PADDING_VALID, 1, 1}, /* the seed model's first layer */
        {2, 30, 30, 32, 64, TFX_PADDING_VALID, 1, 1},
        {2, 28, 28, 64, 128, TFX_PADDING_VALID, 1, 1},
        {1, 4, 33, 17, 9, TFX_PADDING_VALID, 1, 0}, /* one tile row */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (under_valgrind() && cases[i].c * cases[i].f >= 2048) continue; /* the naive loops take minutes */
        check_case(&cases[i], 10 + i);
    }
}

static void test_random_shapes(void **state)
{
    (void)state;
    tfx__rng rng;
    tfx__rng_seed(&rng, 777);
    const int want = under_valgrind() ? 4 : 60;
    for (int i = 0; i < want; i++) {
        wcase k;
        k.n = rnd(&rng, 1, 7);
        k.h = rnd(&rng, 3, 33);
        k.w = rnd(&rng, 3, 33);
        /* Mostly small channel counts (speed), sometimes up to 130. */
        k.c = rnd(&rng, 0, 3) ? rnd(&rng, 1, 20) : rnd(&rng, 1, 130);
        k.f = rnd(&rng, 0, 3) ? rnd(&rng, 1, 20) : rnd(&rng, 1, 130);
        k.padding = rnd(&rng, 0, 1);
        k.bias = rnd(&rng, 0, 3) != 0;
        k.relu = rnd(&rng, 0, 1);
        check_case(&k, 5000 + (uint64_t)i);
    }
    printf("winograd: max err y / dx / dw: im2col %.2e / %.2e / %.2e, F(2x2,3x3) %.2e / %.2e / %.2e, "
           "F(4x4,3x3) %.2e / %.2e / %.2e\n",
           g_worst[0][0], g_worst[0][1], g_worst[0][2], g_worst[1][0], g_worst[1][1], g_worst[1][2], g_worst[2][0],
           g_worst[2][1], g_worst[2][2]);
}

/* The automatic choice: im2col for few channels (the seed model's first layer and its input
 * gradient), Winograd for its other layers, and only for 3x3 stride-1 kernels. */
static void test_choice(void **state)
{
    (void)state;
    tfx__winograd_force(-1);
    assert_int_equal(tfx__winograd_choose(3, 32, 30, 30), 0);
    assert_int_equal(tfx__winograd_choose(32, 3, 32, 32), 0);
    assert_int_not_equal(tfx__winograd_choose(32, 64, 28, 28), 0);
    assert_int_not_equal(tfx__winograd_choose(64, 128, 26, 26), 0);
    assert_int_not_equal(tfx__winograd_choose(128, 64, 28, 28), 0);
    assert_int_equal(tfx__winograd_choose(1024, 1024, 28, 28), 0); /* transformed kernel too large */
}

/* Forward, input and kernel gradients for 1, 2, 3 and 7 threads, bit for bit: several blocks
 * of tiles (5 images) are split over threads; a single block (1 image) in two halves of its
 * tiles, or of its output channels when each half is 64 wide (F = 128), never by channels
 * under a softmax epilogue, which matches im2col. */
static void threads_identical(int n, int act, int F)
{
    const int H = 26, C = 64;
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, H, H, C), TFX_OK);
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = F;
    o.activation = act;
    assert_int_equal(tfx_model_add_conv2d(m, &o, NULL), TFX_OK);
    tfx__rng rng;
    tfx__rng_seed(&rng, 99);
    const size_t nx = (size_t)n * H * H * C, ny = (size_t)n * (H - 2) * (H - 2) * F;
    const size_t nw = (size_t)9 * C * F + F;
    float *x = falloc(nx), *dy = falloc(ny), *ref_y = falloc(ny), *ref_dx = falloc(nx), *seed = falloc(ny);
    float *ref_dw = falloc(nw);
    fill(&rng, x, nx, -1.0, 1.0);
    fill(&rng, dy, ny, -1.0, 1.0);
    static const int counts[] = {1, 2, 3, 7};
    tfx__winograd_force(4);
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        tfx__threads_force(counts[k]);
        assert_int_equal(tfx__model_forward(m, x, (size_t)n, 0), TFX_OK);
        const float *y = tfx__model_layer_output(m, 0);
        memcpy(seed, dy, ny * sizeof *dy);
        float *g = NULL;
        assert_int_equal(tfx__model_backward(m, (size_t)n, 0, seed, 0, 1,
                                             TFX__BW_SKIP_ACTIVATION | TFX__BW_PARAM_GRADS, NULL, &g),
                         TFX_OK);
        const float *dw = tfx__layer_grads(m->layers[0]);
        if (k == 0) {
            memcpy(ref_y, y, ny * sizeof *y);
            memcpy(ref_dx, g, nx * sizeof *g);
            memcpy(ref_dw, dw, nw * sizeof *dw);
        } else {
            assert_memory_equal(y, ref_y, ny * sizeof *y);
            assert_memory_equal(g, ref_dx, nx * sizeof *g);
            assert_memory_equal(dw, ref_dw, nw * sizeof *dw); /* the kernel gradient's two fixed parts */
        }
    }
    if (act == TFX_ACTIVATION_SOFTMAX) { /* the probabilities agree with im2col's */
        tfx__winograd_force(0);
        assert_int_equal(tfx__model_forward(m, x, (size_t)n, 0), TFX_OK);
        const float *y = tfx__model_layer_output(m, 0);
        for (size_t i = 0; i < ny; i++) assert_true(fabsf(y[i] - ref_y[i]) <= 1e-5f);
    }
    tfx__threads_force(0);
    tfx__winograd_force(-1);
    free(x);
    free(dy);
    free(ref_y);
    free(ref_dx);
    free(ref_dw);
    free(seed);
    tfx_model_free(m);
}

static void test_threads_identical(void **state)
{
    (void)state;
    threads_identical(5, TFX_ACTIVATION_RELU, 48);
    threads_identical(1, TFX_ACTIVATION_RELU, 48);  /* one block: two halves of the tiles */
    threads_identical(1, TFX_ACTIVATION_RELU, 128); /* one block: two halves of the channels */
    threads_identical(1, TFX_ACTIVATION_SOFTMAX, 48);
}

/* The transformed kernels Conv2D keeps across calls (l->derived) follow every change of the
 * weights: after tfx_layer_set_weights, a training step, a forced change of tile size and a
 * sanity check's restore, outputs and input gradients equal those of a fresh model built with
 * the same weights (bit for bit). */
static void fwd_bwd(tfx_model *m, const float *x, size_t n, float *y, float *g)
{
    const size_t ny = n * 10, nx = n * 12 * 12 * 16;
    float seed[4 * 10];
    for (size_t i = 0; i < ny; i++) seed[i] = (float)(i % 10) / 10.0f - 0.3f;
    assert_int_equal(tfx__model_forward(m, x, n, 0), TFX_OK);
    memcpy(y, tfx__model_layer_output(m, m->n_layers - 1), ny * sizeof(float));
    float *gr = NULL;
    assert_int_equal(tfx__model_backward(m, n, m->n_layers - 1, seed, 0, 1, TFX__BW_SKIP_ACTIVATION, NULL, &gr),
                     TFX_OK);
    memcpy(g, gr, nx * sizeof(float));
}

static tfx_model *cache_model(tfx_layer **conv)
{
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, 12, 12, 16), TFX_OK);
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = 24;
    o.activation = TFX_ACTIVATION_RELU;
    assert_int_equal(tfx_model_add_conv2d(m, &o, conv), TFX_OK); /* 16 -> 24, 3x3: Winograd both ways */
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), TFX_OK);
    return m;
}

/* A fresh model with m's weights gives the same outputs and gradients as m. */
static void same_as_fresh(tfx_model *m, const float *x, size_t n)
{
    tfx_layer *conv = NULL;
    tfx_model *f = cache_model(&conv);
    for (size_t i = 0; i < m->n_layers; i++) {
        size_t k = 0, b = 0;
        assert_int_equal(tfx_layer_weight_sizes(m->layers[i], &k, &b), TFX_OK);
        if (!k && !b) continue;
        float *kw = falloc(k + 1), *bw = falloc(b + 1);
        assert_int_equal(tfx_layer_get_weights(m->layers[i], kw, bw), TFX_OK);
        assert_int_equal(tfx_layer_set_weights(f->layers[i], kw, bw), TFX_OK);
        free(kw);
        free(bw);
    }
    const size_t ny = n * 10, nx = n * 12 * 12 * 16;
    float *y1 = falloc(ny), *g1 = falloc(nx), *y2 = falloc(ny), *g2 = falloc(nx);
    fwd_bwd(m, x, n, y1, g1);
    fwd_bwd(f, x, n, y2, g2);
    assert_memory_equal(y1, y2, ny * sizeof(float));
    assert_memory_equal(g1, g2, nx * sizeof(float));
    free(y1), free(g1), free(y2), free(g2);
    tfx_model_free(f);
}

static void test_kernel_cache(void **state)
{
    (void)state;
    const size_t n = 4, nx = n * 12 * 12 * 16;
    tfx__rng rng;
    tfx__rng_seed(&rng, 5);
    float *x = falloc(nx), *y = falloc(n * 10), *g = falloc(nx);
    fill(&rng, x, nx, 0.0, 1.0);
    tfx_layer *conv = NULL;
    tfx_model *m = cache_model(&conv);
    fwd_bwd(m, x, n, y, g); /* fills both caches */
    same_as_fresh(m, x, n);
    /* new conv weights */
    float *kw = falloc(9 * 16 * 24), *bw = falloc(24);
    fill(&rng, kw, 9 * 16 * 24, -0.2, 0.2);
    fill(&rng, bw, 24, -0.1, 0.1);
    assert_int_equal(tfx_layer_set_weights(conv, kw, bw), TFX_OK);
    same_as_fresh(m, x, n);
    /* the other tile size, then back */
    tfx__winograd_force(2);
    same_as_fresh(m, x, n);
    tfx__winograd_force(-1);
    same_as_fresh(m, x, n);
    /* a training step */
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    assert_int_equal(tfx_model_compile(m, &co), TFX_OK);
    int32_t labels[4] = {1, 3, 5, 7};
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 4;
    fo.epochs = 1;
    fo.verbose = 0;
    assert_int_equal(tfx_model_fit(m, x, labels, n, &fo, NULL), TFX_OK);
    same_as_fresh(m, x, n);
    /* a sanity check re-initialises layers and restores them */
    float *y0 = falloc(n * 10), *g0 = falloc(nx);
    fwd_bwd(m, x, n, y0, g0);
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    eo.method = TFX_METHOD_VANILLA_GRADIENTS;
    eo.class_index = 2;
    double rho[4];
    size_t count = 0;
    assert_int_equal(tfx_sanity_check(m, x, 2, &eo, TFX_RANK_MAX_ABS, 9, rho, 4, &count), TFX_OK);
    fwd_bwd(m, x, n, y, g);
    assert_memory_equal(y, y0, n * 10 * sizeof(float));
    assert_memory_equal(g, g0, nx * sizeof(float));
    free(y0), free(g0), free(kw), free(bw), free(x), free(y), free(g);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_shapes),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_kernel_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
