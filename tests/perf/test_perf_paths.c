/* The fast paths of issue 7 give the same numbers as the plain ones:
 * - Conv2D in blocks of images (im2col budget, lib/layers/conv2d.c) against a naive direct
 *   convolution in double: output, input gradient, kernel and bias gradients, on shapes whose
 *   batch spans several blocks (valid/SAME, strides, a partial last block);
 * - Conv2D with few taps per output (direct, no im2col) the same way, and its fused
 *   activations bit-identical to the activation of its linear output, for 1-3 threads;
 * - lean forwards (TFX__FW_LEAN: no pre-activation kept for ReLU/sigmoid/tanh/ELU) give
 *   bit-identical outputs, input and parameter gradients to full forwards, for every activation;
 * - one sample through Dense (sgemv instead of sgemm) against a direct sum in double;
 * - wide shallow products (lib/core/gemm_wide.c: a Dense layer's batch gradients) against a
 *   direct sum in double, bit-identical over thread counts, at every alignment of C;
 * - inference allocates no gradient buffers and keeps no ReLU pre-activation;
 * - the vectorised Adam step is bit-identical to the scalar formula (include/tfx/train.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "train/train_internal.h"

#define OK(call) assert_int_equal((call), TFX_OK)

static int under_valgrind(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

static float *rand_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    tfx__rng r;
    tfx__rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)tfx__rng_uniform(&r);
    return p;
}

/* ---- blocked Conv2D against a direct convolution ---- */

typedef struct conv_case {
    int n, h, w, c, f, k, s, padding;
} conv_case;

static void geometry(int in, int k, int s, int padding, int *out, int *before)
{
    if (padding == TFX_PADDING_VALID) {
        *out = (in - k) / s + 1;
        *before = 0;
        return;
    }
    *out = (in + s - 1) / s;
    int total = (*out - 1) * s + k - in;
    *before = total > 0 ? total / 2 : 0;
}

static void check_close(const float *got, const double *want, const double *mag, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double tol = 1e-5 * (mag[i] > 1.0 ? mag[i] : 1.0);
        if (fabs((double)got[i] - want[i]) > tol)
            fail_msg("%s[%zu]: got %.9g, want %.9g (tolerance %.3g)", what, i, (double)got[i], want[i], tol);
    }
}

/* A model of one Conv2D layer of case k with activation act. */
static tfx_layer *conv_case_model(const conv_case *k, int act, tfx_model **m)
{
    OK(tfx_model_new(m, k->h, k->w, k->c));
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = k->f;
    o.kernel_h = o.kernel_w = k->k;
    o.stride_h = o.stride_w = k->s;
    o.padding = k->padding;
    o.activation = act;
    tfx_layer *l;
    OK(tfx_model_add_conv2d(*m, &o, &l));
    return l;
}

static void run_conv_case(const conv_case *k, int blocked)
{
    tfx_model *m;
    tfx_layer *l = conv_case_model(k, TFX_ACTIVATION_LINEAR, &m);
    int oh, ow, pt, pl;
    geometry(k->h, k->k, k->s, k->padding, &oh, &pt);
    geometry(k->w, k->k, k->s, k->padding, &ow, &pl);
    /* A blocked case must really span several blocks of images. */
    size_t per_image = (size_t)oh * ow * k->k * k->k * k->c;
    size_t scratch = l->ops->scratch_floats(l, (size_t)k->n);
    if (blocked) assert_true(scratch < (size_t)k->n * per_image);

    const size_t K = (size_t)k->k * k->k * k->c, F = (size_t)k->f;
    const size_t in_sz = (size_t)k->h * k->w * k->c, out_sz = (size_t)oh * ow * F;
    float *wk = rand_floats(K * F, 11, -0.5f, 0.5f), *bias = rand_floats(F, 12, -0.5f, 0.5f);
    OK(tfx_layer_set_weights(l, wk, bias));
    float *x = rand_floats((size_t)k->n * in_sz, 13, -1.0f, 1.0f);
    float *seed = rand_floats((size_t)k->n * out_sz, 14, -1.0f, 1.0f);

    OK(tfx__model_forward(m, x, (size_t)k->n, 0));
    float *grad;
    OK(tfx__model_backward(m, (size_t)k->n, 0, seed, 0, 1, TFX__BW_PARAM_GRADS, NULL, &grad));

    size_t ny = (size_t)k->n * out_sz, nx = (size_t)k->n * in_sz;
    double *y = calloc(ny, sizeof(double)), *ys = calloc(ny, sizeof(double));
    double *dx = calloc(nx, sizeof(double)), *dxs = calloc(nx, sizeof(double));
    double *dw = calloc(K * F + F, sizeof(double)), *dws = calloc(K * F + F, sizeof(double));
    assert_true(y && ys && dx && dxs && dw && dws);
    for (int b = 0; b < k->n; b++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                for (size_t f = 0; f < F; f++) {
                    size_t yo = (((size_t)b * oh + i) * ow + j) * F + f;
                    double acc = bias[f], mag = fabs(bias[f]), g = seed[yo];
                    dw[K * F + f] += g;
                    dws[K * F + f] += fabs(g);
                    for (int a = 0; a < k->k; a++)
                        for (int c2 = 0; c2 < k->k; c2++) {
                            int ih = i * k->s - pt + a, iw = j * k->s - pl + c2;
                            if (ih < 0 || iw < 0 || ih >= k->h || iw >= k->w) continue;
                            for (int ch = 0; ch < k->c; ch++) {
                                size_t xi = (((size_t)b * k->h + ih) * k->w + iw) * k->c + ch;
                                size_t wi = (((size_t)a * k->k + c2) * k->c + ch) * F + f;
                                acc += (double)x[xi] * wk[wi];
                                mag += fabs((double)x[xi] * wk[wi]);
                                dx[xi] += g * wk[wi];
                                dxs[xi] += fabs(g * wk[wi]);
                                dw[wi] += g * x[xi];
                                dws[wi] += fabs(g * x[xi]);
                            }
                        }
                    y[yo] = acc;
                    ys[yo] = mag;
                }
    check_close(tfx__model_layer_output(m, 0), y, ys, ny, "output");
    check_close(grad, dx, dxs, nx, "input gradient");
    check_close(m->grads, dw, dws, K * F + F, "kernel and bias gradient");
    free(y), free(ys), free(dx), free(dxs), free(dw), free(dws);
    free(wk), free(bias), free(x), free(seed);
    tfx_model_free(m);
}

static void test_conv_blocks(void **state)
{
    (void)state;
    /* Per-image im2col of 36x36x(3*3*84) = 980k floats: one image per 1M-float block. */
    static const conv_case big[] = {
        {3, 38, 38, 84, 4, 3, 1, TFX_PADDING_VALID},
        {3, 36, 36, 84, 3, 3, 1, TFX_PADDING_SAME},
    };
    /* Smaller images, several per block, and a partial last block; strides. */
    static const conv_case small[] = {
        {7, 40, 40, 20, 3, 3, 1, TFX_PADDING_VALID}, /* 38x38x180 per image: 4 per block: 4 + 3 */
        {9, 45, 45, 32, 2, 5, 2, TFX_PADDING_SAME},  /* 23x23x800 per image: 2 per block: 2+2+2+2+1 */
    };
    run_conv_case(&small[0], 1);
    run_conv_case(&small[1], 1);
    if (!under_valgrind()) {
        run_conv_case(&big[0], 1);
        run_conv_case(&big[1], 1);
    }
}

/* ---- direct convolution for few taps (lib/core/conv_direct.c) ---- */

/* Kernels of at most 32 taps per output and filters a multiple of 16 skip im2col: the same
 * naive comparison (outputs and all gradients), on borders, strides, rows not a multiple of
 * the 4-pixel tile, and filters that mix the 32- and 16-wide tiles. */
static const conv_case direct_cases[] = {
    {5, 13, 11, 3, 32, 3, 1, TFX_PADDING_VALID}, /* 11x9 outputs: a short last tile */
    {4, 12, 12, 3, 32, 3, 1, TFX_PADDING_SAME},
    {3, 15, 14, 1, 16, 5, 2, TFX_PADDING_SAME},
    {2, 9, 10, 2, 48, 4, 1, TFX_PADDING_VALID},  /* 32 taps, 48 filters */
    {3, 10, 10, 3, 16, 3, 2, TFX_PADDING_SAME},
};

/* One layer with activation act: outputs for 1, 2 and 3 threads, bit-identical; returns them. */
static float *direct_outputs(const conv_case *k, int act, int training, const float *w, const float *b,
                             const float *x)
{
    tfx_model *m;
    tfx_layer *l = conv_case_model(k, act, &m);
    OK(tfx_layer_set_weights(l, w, b));
    const size_t ny = (size_t)k->n * tfx__shape_size(l->out);
    float *first = malloc(ny * sizeof(float));
    assert_non_null(first);
    for (int threads = 1; threads <= 3; threads++) {
        tfx__threads_force(threads);
        OK(tfx__model_forward(m, x, (size_t)k->n, training));
        const float *y = tfx__model_layer_output(m, 0);
        if (threads == 1)
            memcpy(first, y, ny * sizeof(float));
        else
            assert_memory_equal(y, first, ny * sizeof(float));
    }
    tfx__threads_force(0);
    tfx_model_free(m);
    return first;
}

static void test_conv_direct(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof direct_cases / sizeof *direct_cases; i++) {
        const conv_case *k = &direct_cases[i];
        run_conv_case(k, 0); /* linear, against the naive convolution */
        /* ReLU and sigmoid (applied after the tiles), lean and training forwards: exactly the
         * activation of the linear output */
        const size_t K = (size_t)k->k * k->k * k->c, nx = (size_t)k->n * k->h * k->w * k->c;
        float *w = rand_floats(K * k->f, 31, -0.5f, 0.5f), *b = rand_floats(k->f, 32, -0.5f, 0.5f);
        float *x = rand_floats(nx, 33, -1.0f, 1.0f);
        int oh, ow, pad;
        geometry(k->h, k->k, k->s, k->padding, &oh, &pad);
        geometry(k->w, k->k, k->s, k->padding, &ow, &pad);
        const size_t ny = (size_t)k->n * oh * ow * k->f;
        float *lin = direct_outputs(k, TFX_ACTIVATION_LINEAR, 0, w, b, x), *want = malloc(ny * sizeof(float));
        assert_non_null(want);
        static const int acts[] = {TFX_ACTIVATION_RELU, TFX_ACTIVATION_SIGMOID};
        for (int a = 0; a < 2; a++)
            for (int training = 0; training <= 1; training++) {
                float *got = direct_outputs(k, acts[a], training, w, b, x);
                tfx__activation_forward(acts[a], 0.0f, 0.0f, lin, want, ny / (size_t)k->f, (size_t)k->f);
                assert_memory_equal(got, want, ny * sizeof(float));
                free(got);
            }
        free(lin), free(want), free(w), free(b), free(x);
    }
}

/* ---- lean forward == full forward ---- */

static void lean_case(int act, float alpha)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 9, 9, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 5;
    c.activation = act;
    c.activation_alpha = alpha;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 7;
    d.activation = act;
    d.activation_alpha = alpha;
    OK(tfx_model_add_dense(m, &d, NULL));
    d.units = 4;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    OK(tfx_model_set_seed(m, 5));
    const size_t n = 6, in = 9 * 9 * 3, out = n * 4;
    float *x = rand_floats(n * in, 21, -1.0f, 1.0f), *seed = rand_floats(out, 22, -1.0f, 1.0f);
    float *y_full = malloc(out * sizeof(float)), *g_full = malloc(n * in * sizeof(float));
    float *p_full = malloc(m->n_params * sizeof(float));
    assert_true(y_full && g_full && p_full);
    for (int skip = 0; skip < 2; skip++) {
        int flags = TFX__BW_PARAM_GRADS | (skip ? TFX__BW_SKIP_ACTIVATION : 0);
        float *g;
        OK(tfx__model_forward(m, x, n, 1));
        memcpy(y_full, tfx__model_layer_output(m, 3), out * sizeof(float));
        OK(tfx__model_backward(m, n, 3, seed, 0, 1, flags, NULL, &g));
        memcpy(g_full, g, n * in * sizeof(float));
        memcpy(p_full, m->grads, m->n_params * sizeof(float));

        OK(tfx__model_forward(m, x, n, 1 | TFX__FW_LEAN));
        int droppable = tfx__activation_output_suffices(act, m->layers[0]->cfg.alpha);
        assert_int_equal(m->layers[0]->preact == NULL, droppable || act == TFX_ACTIVATION_LINEAR);
        assert_int_equal(m->layers[2]->preact == NULL, droppable || act == TFX_ACTIVATION_LINEAR);
        assert_non_null(m->layers[3]->preact); /* the output layer's logits stay */
        assert_memory_equal(tfx__model_layer_output(m, 3), y_full, out * sizeof(float));
        OK(tfx__model_backward(m, n, 3, seed, 0, 1, flags, NULL, &g));
        assert_memory_equal(g, g_full, n * in * sizeof(float));
        assert_memory_equal(m->grads, p_full, m->n_params * sizeof(float));
    }
    free(x), free(seed), free(y_full), free(g_full), free(p_full);
    tfx_model_free(m);
}

static void test_lean_forward(void **state)
{
    (void)state;
    lean_case(TFX_ACTIVATION_RELU, 0.0f);
    lean_case(TFX_ACTIVATION_SIGMOID, 0.0f);
    lean_case(TFX_ACTIVATION_TANH, 0.0f);
    lean_case(TFX_ACTIVATION_ELU, 0.0f);
    lean_case(TFX_ACTIVATION_ELU, -0.5f); /* negative alpha: z is kept */
    lean_case(TFX_ACTIVATION_LEAKY_RELU, 0.0f);
    lean_case(TFX_ACTIVATION_SWISH, 0.0f);
    lean_case(TFX_ACTIVATION_LINEAR, 0.0f);
}

/* Guided backprop reads the sign of z; from y it must be the same. */
static void test_lean_guided(void **state)
{
    (void)state;
    const size_t n = 257;
    float *z = rand_floats(n, 31, -1.0f, 1.0f), *dy = rand_floats(n, 32, -1.0f, 1.0f);
    float *y = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    assert_true(y && a && b);
    z[3] = 0.0f;
    z[4] = -0.0f;
    tfx__activation_forward(TFX_ACTIVATION_RELU, 0.0f, 0.0f, z, y, 1, n);
    for (int kind = TFX__RULE_GRADIENT; kind <= TFX__RULE_DECONVNET; kind++) {
        tfx__rule r = {kind, 0, 0, 0, 0, 0};
        OK(tfx__activation_backward(TFX_ACTIVATION_RELU, 0.0f, 0.0f, z, y, dy, a, 1, n, &r));
        OK(tfx__activation_backward(TFX_ACTIVATION_RELU, 0.0f, 0.0f, NULL, y, dy, b, 1, n, &r));
        assert_memory_equal(a, b, n * sizeof(float));
    }
    free(z), free(dy), free(y), free(a), free(b);
}

/* ---- one sample through Dense: sgemv ---- */

/* One sample through Dense (lib/core/blas.c's matrix-vector loops) against a double sum, for
 * 1, 2 and 3 threads with bit-identical results (shapes above 2^20 weights are split over
 * threads). The kernel is stored [units][inputs]: the forward is one dot product per unit (four
 * units at a time over long rows), the input gradient adds the rows of units with a non-zero
 * gradient. With sparse, two inputs in three and about half the unit gradients are zero. */
static void dense_one_row(int K, int U, int sparse)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 1, 1, K));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = U;
    tfx_layer *l;
    OK(tfx_model_add_dense(m, &d, &l));
    float *w = rand_floats((size_t)K * U, 71, -1.0f, 1.0f), *b = rand_floats(U, 72, -1.0f, 1.0f);
    float *x = rand_floats(K, 73, -1.0f, 1.0f), *seed = rand_floats(U, 74, -1.0f, 1.0f);
    if (sparse) {
        for (int k = 0; k < K; k++)
            if (k % 3 != 1) x[k] = 0.0f;
        for (int u = 0; u < U; u++) /* units the input gradient skips */
            if (u % 3 == 0 || u % 7 == 2) seed[u] = 0.0f;
    }
    float *y1 = malloc((size_t)U * sizeof(float)), *g1 = malloc((size_t)K * sizeof(float));
    OK(tfx_layer_set_weights(l, w, b));
    for (int threads = 1; threads <= 3; threads++) {
        tfx__threads_force(threads);
        OK(tfx__model_forward(m, x, 1, 0));
        float *g;
        OK(tfx__model_backward(m, 1, 0, seed, 0, 1, 0, NULL, &g));
        const float *y = tfx__model_layer_output(m, 0);
        if (threads == 1) {
            memcpy(y1, y, (size_t)U * sizeof(float));
            memcpy(g1, g, (size_t)K * sizeof(float));
        } else {
            assert_memory_equal(y, y1, (size_t)U * sizeof(float));
            assert_memory_equal(g, g1, (size_t)K * sizeof(float));
        }
    }
    tfx__threads_force(0);
    for (int u = 0; u < U; u++) {
        double acc = b[u], mag = fabs(b[u]);
        for (int k = 0; k < K; k++) {
            acc += (double)x[k] * w[(size_t)k * U + u];
            mag += fabs((double)x[k] * w[(size_t)k * U + u]);
        }
        assert_true(fabs(y1[u] - acc) <= 1e-6 * mag);
    }
    for (int k = 0; k < K; k++) {
        double acc = 0.0, mag = 0.0;
        for (int u = 0; u < U; u++) {
            acc += (double)seed[u] * w[(size_t)k * U + u];
            mag += fabs((double)seed[u] * w[(size_t)k * U + u]);
        }
        assert_true(fabs(g1[k] - acc) <= 1e-6 * (mag > 1.0 ? mag : 1.0));
    }
    free(w), free(b), free(x), free(seed), free(y1), free(g1);
    tfx_model_free(m);
}

static void test_dense_one_row(void **state)
{
    (void)state;
    dense_one_row(1001, 7, 0);
    dense_one_row(9000, 130, 0); /* 1.17 M weights: threaded */
    dense_one_row(2100, 600, 0);
    /* four units at a time and the rest singly, skipped units */
    dense_one_row(8300, 128, 1);
    dense_one_row(700, 16 + 32 + 64 + 128 + 3, 1);
    dense_one_row(3000, 77, 1);
    dense_one_row(1030, 5, 1);
    dense_one_row(20, 1030, 1); /* short rows, wide units: the segmented transposed product */
}

/* ---- the hand-written products (lib/core/gemm_wide.c) ---- */

/* C (m x n, row stride ldc) against double sums: C[r][j] = c0[r][j] (or 0 when c0 is NULL) +
 * sum_i A(r, i) B(i, j), A(r, i) = a[r ars + i aks], B(i, j) = b[i bis + j bjs]; the padding
 * past column n holds -7 untouched. */
static void check_product(const float *c, const float *c0, size_t m, size_t n, size_t ldc, size_t k, const float *a,
                          size_t ars, size_t aks, const float *b, size_t bis, size_t bjs)
{
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < ldc; j++) {
            if (j >= n) {
                assert_true(c[r * ldc + j] == -7.0f);
                continue;
            }
            double acc = c0 ? c0[r * ldc + j] : 0.0, mag = fabs(acc);
            for (size_t i = 0; i < k; i++) {
                double t = (double)a[r * ars + i * aks] * b[i * bis + j * bjs];
                acc += t, mag += fabs(t);
            }
            assert_true(fabs(c[r * ldc + j] - acc) <= 1e-6 * (mag > 1.0 ? mag : 1.0));
        }
}

/* ---- wide shallow products: a Dense layer's batch gradients ---- */

/* C = op(A) B through tfx__sgemm for shapes it sends to the wide kernel (n >= 4096 columns,
 * k <= 256 terms): against a double sum, bit-identical for 1, 2 and 3 threads, with C at
 * every offset from a 64-byte boundary (the columns before it go one at a time), row strides
 * that keep or break the alignment, and C large enough for streaming stores. The padding
 * between rows of C stays untouched. */
static void wide_product(int trans_a, size_t m, size_t n, size_t k, size_t c_off, size_t ldc_pad)
{
    assert_true(tfx__sgemm_wide_fits(m, n, k));
    const size_t lda = trans_a ? m + 3 : k + 2, ldb = n + 5, ldc = n + ldc_pad;
    float *a = rand_floats((trans_a ? k : m) * lda, 91, -1.0f, 1.0f);
    float *b = rand_floats(k * ldb, 92, -1.0f, 1.0f);
    float *store = aligned_alloc(64, ((m * ldc + c_off) * sizeof(float) + 63) / 64 * 64);
    float *ref = malloc(m * ldc * sizeof(float));
    assert_true(store && ref);
    float *c = store + c_off;
    for (int threads = 1; threads <= 3; threads++) {
        for (size_t i = 0; i < m * ldc; i++) c[i] = -7.0f;
        tfx__threads_force(threads);
        tfx__sgemm(trans_a, 0, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
        if (threads == 1)
            memcpy(ref, c, m * ldc * sizeof(float));
        else
            assert_memory_equal(c, ref, m * ldc * sizeof(float));
    }
    tfx__threads_force(0);
    check_product(c, NULL, m, n, ldc, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, 1);
    free(a), free(b), free(store), free(ref);
}

static void test_wide_products(void **state)
{
    (void)state;
    for (int level = 3; level >= 1; level--) { /* AVX-512, AVX2, SSE kernels (as the CPU has them) */
        tfx__sgemm_wide_force(level);
        for (size_t off = 0; off < 16; off += 5) { /* 0, 5, 10, 15 floats past a 64-byte boundary */
            wide_product(1, 6, 4096 + 64 * 3 + 37, 50, off, 0); /* dY^T X: kernel gradient */
            wide_product(0, 7, 5000, 128, off, 16);             /* dY W: input gradient */
        }
        wide_product(0, 3, 4100, 1, 0, 3);  /* rows not aligned alike: plain stores */
        wide_product(1, 1, 4096, 256, 0, 0); /* one row, the most terms */
        if (!under_valgrind()) wide_product(1, 66, 40000, 20, 1, 0); /* 10 MB: streaming stores */
    }
    tfx__sgemm_wide_force(0);
}

/* ---- small products: Winograd's per-point GEMMs ---- */

/* C = op(A) B (or C += op(A) B) by tfx__sgemm_small against a double sum: every column
 * block width (64, 32, 16 and single columns), row counts that leave remainders of the 6-,
 * 4-, 2- and 8-row tiles, strides wider than the operands; the padding of C stays untouched. */
static void small_product(int trans_a, int accumulate, size_t m, size_t n, size_t k)
{
    const size_t lda = (trans_a ? m : k) + 3, ldb = n + 7, ldc = n + 5;
    float *a = rand_floats((trans_a ? k : m) * lda, 97, -1.0f, 1.0f), *b = rand_floats(k * ldb, 98, -1.0f, 1.0f);
    float *c = rand_floats(m * ldc, 101, -1.0f, 1.0f), *c0 = malloc(m * ldc * sizeof(float));
    assert_true(c0);
    for (size_t r = 0; r < m; r++)
        for (size_t j = n; j < ldc; j++) c[r * ldc + j] = -7.0f;
    memcpy(c0, c, m * ldc * sizeof(float));
    tfx__sgemm_small(trans_a, accumulate, m, n, k, a, lda, b, ldb, c, ldc);
    check_product(c, accumulate ? c0 : NULL, m, n, ldc, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, 1);
    free(a), free(b), free(c), free(c0);
}

static void test_small_products(void **state)
{
    (void)state;
    for (int level = 3; level >= 1; level--) {
        tfx__sgemm_wide_force(level);
        for (int acc = 0; acc <= 1; acc++) {
            small_product(0, acc, 49, 128, 64);               /* the seed model's 64 -> 128 layer, one image */
            small_product(0, acc, 64, 64 + 32 + 16 + 5, 32); /* every column block and single columns */
            small_product(0, acc, 13, 32, 128);              /* 8-row tiles and 5 rows left */
            small_product(0, acc, 3, 16, 7);                 /* fewer rows than a tile */
            small_product(0, acc, 1, 3, 1);
            small_product(0, acc, 70, 200, 256);             /* the most terms it is used for */
            small_product(1, acc, 64, 128, 85);              /* a kernel gradient block: V^T U */
            small_product(1, acc, 33, 70, 9);
        }
    }
    tfx__sgemm_wide_force(0);
}

/* ---- long products: a Dense layer's batch forward ---- */

/* C = A B^T by tfx__sgemm_long against a double sum, bit-identical for 1, 2 and 3 threads:
 * row counts that leave remainders of every row tile, column counts around the 16-column
 * thread blocks and the 64-column chunks, term counts that are not a multiple of 16 or of
 * the kernel's chunk, padded strides; the padding of C stays untouched. */
static void long_product(size_t m, size_t n, size_t k)
{
    const size_t lda = k + 3, ldb = k + 9, ldc = n + 2;
    float *a = rand_floats(m * lda, 99, -1.0f, 1.0f), *b = rand_floats(n * ldb, 100, -1.0f, 1.0f);
    float *c = malloc(m * ldc * sizeof(float)), *ref = malloc(m * ldc * sizeof(float));
    assert_true(c && ref);
    for (int threads = 1; threads <= 3; threads++) {
        tfx__threads_force(threads);
        float *work = malloc(tfx__sgemm_long_work_floats(n) * sizeof(float));
        assert_true(work);
        for (size_t i = 0; i < m * ldc; i++) c[i] = -7.0f;
        tfx__sgemm_long(m, n, k, a, lda, b, ldb, c, ldc, work);
        free(work);
        if (threads == 1)
            memcpy(ref, c, m * ldc * sizeof(float));
        else
            assert_memory_equal(c, ref, m * ldc * sizeof(float));
    }
    tfx__threads_force(0);
    check_product(c, NULL, m, n, ldc, k, a, lda, 1, b, 1, ldb);
    free(a), free(b), free(c), free(ref);
}

static void test_long_products(void **state)
{
    (void)state;
    if (!tfx__sgemm_long_fits(50, 128, 86528)) { /* no AVX-512: the BLAS does these */
        assert_false(tfx__sgemm_long_fits(2, 1, TFX__LONG_MIN_K));
        return;
    }
    assert_false(tfx__sgemm_long_fits(1, 128, 86528)); /* one row: the matrix-vector kernel */
    assert_false(tfx__sgemm_long_fits(50, 128, TFX__LONG_MIN_K - 1));
    long_product(50, 128, TFX__LONG_MIN_K);     /* 8 six-row tiles and a two-row tile */
    long_product(9, 130, 4096 + 1024 + 17);    /* 6 + 2 + 1 rows; 8 blocks of 16 and 2 columns */
    long_product(3, 40, 5000);                 /* 32- and 16-column runs with the term tail */
    long_product(2, 1, 4100);
    long_product(7, 200, 4096 + 15);           /* more than one 64-column chunk per thread */
}

/* A Dense layer with a wide input over a batch: the input and kernel gradients (the wide
 * kernel) against double sums. */
static void test_dense_batch_gradients(void **state)
{
    (void)state;
    const int K = 4500, U = 13, N = 9;
    tfx_model *m;
    OK(tfx_model_new(&m, 1, 1, K));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = U;
    tfx_layer *l;
    OK(tfx_model_add_dense(m, &d, &l));
    float *w = rand_floats((size_t)K * U, 93, -1.0f, 1.0f), *bias = rand_floats(U, 94, -1.0f, 1.0f);
    float *x = rand_floats((size_t)N * K, 95, -1.0f, 1.0f), *seed = rand_floats((size_t)N * U, 96, -1.0f, 1.0f);
    OK(tfx_layer_set_weights(l, w, bias));
    OK(tfx__model_forward(m, x, N, 1));
    float *g;
    OK(tfx__model_backward(m, N, 0, seed, 0, 1, TFX__BW_PARAM_GRADS, NULL, &g));
    float *gw = malloc((size_t)K * U * sizeof(float)), *gb = malloc(U * sizeof(float));
    assert_true(gw && gb);
    for (int u = 0; u < U; u++) /* stored unit-major */
        for (int k = 0; k < K; k++) gw[(size_t)k * U + u] = tfx__layer_grads(l)[(size_t)u * K + k];
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double acc = 0.0, mag = 0.0;
            for (int u = 0; u < U; u++) {
                double t = (double)seed[n * U + u] * w[(size_t)k * U + u];
                acc += t, mag += fabs(t);
            }
            assert_true(fabs(g[(size_t)n * K + k] - acc) <= 1e-6 * (mag > 1.0 ? mag : 1.0));
        }
    for (int k = 0; k < K; k++)
        for (int u = 0; u < U; u++) {
            double acc = 0.0, mag = 0.0;
            for (int n = 0; n < N; n++) {
                double t = (double)seed[n * U + u] * x[(size_t)n * K + k];
                acc += t, mag += fabs(t);
            }
            assert_true(fabs(gw[(size_t)k * U + u] - acc) <= 1e-6 * (mag > 1.0 ? mag : 1.0));
        }
    free(w), free(bias), free(x), free(seed), free(gw), free(gb);
    tfx_model_free(m);
}

/* ---- parameters in huge pages (tfx__alloc_streamed) ---- */

/* Large streamed arrays are 2 MiB-aligned (Linux) and zeroed; small ones are ordinary; sizes
 * that overflow and injected failures give NULL; a model's parameters and their gradients
 * live in such arrays and keep their values as layers are added. */
static void test_streamed_arrays(void **state)
{
    (void)state;
    float *big = tfx__alloc_streamed((size_t)5 << 20, 1), *small = tfx__alloc_streamed(3, 5);
    assert_true(big && small);
#if defined(__linux__)
    assert_true((uintptr_t)big % ((size_t)2 << 20) == 0);
#endif
    for (size_t i = 0; i < ((size_t)5 << 20); i += 4099) assert_true(big[i] == 0.0f);
    for (int i = 0; i < 15; i++) assert_true(small[i] == 0.0f);
    tfx__free(big);
    tfx__free(small);
    assert_null(tfx__alloc_streamed(SIZE_MAX / 2, 3));
    tfx__alloc_fail_after(1);
    assert_null(tfx__alloc_streamed((size_t)5 << 20, 1));
    tfx__alloc_fail_after(0);

    tfx_model *m;
    OK(tfx_model_new(&m, 1, 1, 2000));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 600; /* 1.2 M weights: 4.8 MB */
    tfx_layer *l1, *l2;
    OK(tfx_model_add_dense(m, &d, &l1));
    float *w = malloc((size_t)2000 * 600 * sizeof(float)), *b = malloc(600 * sizeof(float));
    float *w2 = malloc((size_t)2000 * 600 * sizeof(float)), *b2 = malloc(600 * sizeof(float));
    assert_true(w && b && w2 && b2);
    OK(tfx_layer_get_weights(l1, w, b));
    d.units = 3;
    OK(tfx_model_add_dense(m, &d, &l2)); /* the arrays grow: new ones, the old values copied */
#if defined(__linux__)
    assert_true((uintptr_t)m->params % ((size_t)2 << 20) == 0);
    assert_true((uintptr_t)m->grads % ((size_t)2 << 20) == 0);
#endif
    OK(tfx_layer_get_weights(l1, w2, b2));
    assert_memory_equal(w, w2, (size_t)2000 * 600 * sizeof(float));
    assert_memory_equal(b, b2, 600 * sizeof(float));
    free(w), free(b), free(w2), free(b2);
    tfx_model_free(m);
}

/* ---- the model's own threads (tfx_model_set_threads) ---- */

/* Forward, input and parameter gradients with 2 and 3 own threads (matrix products split by
 * rows or columns, Winograd blocks, im2col blocks) equal the default path to rounding. */
static void test_model_threads(void **state)
{
    (void)state;
    const int N = 20, H = 16;
    float *x = rand_floats((size_t)N * H * H * 16, 81, -1.0f, 1.0f);
    float *ref_y = NULL, *ref_g = NULL, *ref_p = NULL;
    size_t ny = 0, ng = (size_t)N * H * H * 16, np = 0;
    for (int threads = 0; threads <= 3; threads += threads ? 1 : 2) {
        tfx_model *m;
        OK(tfx_model_new(&m, H, H, 16));
        OK(tfx_model_set_threads(m, threads));
        tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
        c.filters = 32;
        c.activation = TFX_ACTIVATION_RELU;
        OK(tfx_model_add_conv2d(m, &c, NULL)); /* 3x3, 16 -> 32: Winograd */
        c.filters = 24;
        c.kernel_h = c.kernel_w = 5;
        OK(tfx_model_add_conv2d(m, &c, NULL)); /* 5x5: im2col, M = 20 * 100 rows */
        OK(tfx_model_add_flatten(m, NULL, NULL));
        tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
        d.units = 200;
        d.activation = TFX_ACTIVATION_TANH;
        OK(tfx_model_add_dense(m, &d, NULL)); /* 20 x 2400 x 200 */
        d.units = 10;
        d.activation = TFX_ACTIVATION_LINEAR;
        OK(tfx_model_add_dense(m, &d, NULL));
        OK(tfx__model_forward(m, x, (size_t)N, 1));
        size_t L = tfx_model_layer_count(m);
        ny = (size_t)N * 10;
        float *seed = rand_floats(ny, 82, -1.0f, 1.0f), *g;
        memset(m->grads, 0, m->n_params * sizeof(float));
        OK(tfx__model_backward(m, (size_t)N, L - 1, seed, 0, 1, TFX__BW_PARAM_GRADS, NULL, &g));
        const float *y = tfx__model_layer_output(m, L - 1);
        np = m->n_params;
        if (!ref_y) {
            ref_y = malloc(ny * sizeof(float));
            ref_g = malloc(ng * sizeof(float));
            ref_p = malloc(np * sizeof(float));
            memcpy(ref_y, y, ny * sizeof(float));
            memcpy(ref_g, g, ng * sizeof(float));
            memcpy(ref_p, m->grads, np * sizeof(float));
        } else {
            double e[3] = {0, 0, 0}, mx[3] = {0, 0, 0};
            for (size_t i = 0; i < ny; i++) e[0] = fmax(e[0], fabs(y[i] - ref_y[i])), mx[0] = fmax(mx[0], fabs(ref_y[i]));
            for (size_t i = 0; i < ng; i++) e[1] = fmax(e[1], fabs(g[i] - ref_g[i])), mx[1] = fmax(mx[1], fabs(ref_g[i]));
            for (size_t i = 0; i < np; i++)
                e[2] = fmax(e[2], fabs(m->grads[i] - ref_p[i])), mx[2] = fmax(mx[2], fabs(ref_p[i]));
            print_message("  %d own threads: max rel. difference output %.1e, input grad %.1e, param grads %.1e\n",
                          threads, e[0] / mx[0], e[1] / mx[1], e[2] / mx[2]);
            for (int k = 0; k < 3; k++) assert_true(e[k] <= 1e-5 * mx[k]);
        }
        free(seed);
        tfx_model_free(m);
    }
    free(x), free(ref_y), free(ref_g), free(ref_p);
}

/* ---- inference allocates no gradients ---- */

static void test_inference_buffers(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 8, 8, 2));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    float *x = rand_floats(5 * 8 * 8 * 2, 41, 0.0f, 1.0f), out[15];
    OK(tfx_model_predict(m, x, 5, out));
    assert_int_equal(m->n_grad_slots, 0);
    assert_false(m->full_ready);      /* predict's released plan: no buffer per layer */
    assert_int_equal(m->n_rel_bufs, 2); /* conv output, dense output (Flatten aliases the conv's) */
    assert_null(m->preacts[0]);      /* ReLU: the output suffices */
    assert_non_null(m->preacts[2]);  /* softmax logits */
    double s = 0.0;
    for (int i = 0; i < 3; i++) s += out[i];
    assert_true(fabs(s - 1.0) < 1e-6);
    free(x);
    tfx_model_free(m);
}

/* ---- Adam ---- */

static void test_adam_bitwise(void **state)
{
    (void)state;
    const size_t n = 1003; /* not a multiple of the vector width: the scalar tail runs too */
    tfx__opt_config c = {TFX_OPTIMIZER_ADAM, 1e-3f, 0.0f, 0, 0.9f, 0.999f, 0.9f, 1e-7f};
    float *w = rand_floats(n, 51, -1.0f, 1.0f), *m1 = calloc(n, sizeof(float)), *v1 = calloc(n, sizeof(float));
    float *rw = malloc(n * sizeof(float)), *rm = calloc(n, sizeof(float)), *rv = calloc(n, sizeof(float));
    assert_true(m1 && v1 && rw && rm && rv);
    memcpy(rw, w, n * sizeof(float));
    for (uint64_t t = 1; t <= 5; t++) {
        float *g = rand_floats(n, 60 + t, -2.0f, 2.0f);
        g[7] = 0.0f;
        tfx__optimizer_step(&c, t, n, w, g, m1, v1);
        /* The documented update, written out in scalar float arithmetic. */
        const float b1 = c.beta_1, b2 = c.beta_2, eps = c.epsilon;
        const float lr_t = (float)((double)c.lr * sqrt(1.0 - pow((double)b2, (double)t)) /
                                   (1.0 - pow((double)b1, (double)t)));
        for (size_t i = 0; i < n; i++) {
            volatile float a = b1 * rm[i], bb = (1.0f - b1) * g[i];
            rm[i] = a + bb;
            volatile float c1 = b2 * rv[i], c2 = (1.0f - b2) * g[i] * g[i];
            rv[i] = c1 + c2;
            volatile float num = lr_t * rm[i], den = sqrtf(rv[i]) + eps;
            rw[i] = rw[i] - num / den;
        }
        free(g);
    }
    assert_memory_equal(w, rw, n * sizeof(float));
    assert_memory_equal(m1, rm, n * sizeof(float));
    assert_memory_equal(v1, rv, n * sizeof(float));
    free(w), free(m1), free(v1), free(rw), free(rm), free(rv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_blocks),
        cmocka_unit_test(test_conv_direct),
        cmocka_unit_test(test_lean_forward),
        cmocka_unit_test(test_lean_guided),
        cmocka_unit_test(test_dense_one_row),
        cmocka_unit_test(test_wide_products),
        cmocka_unit_test(test_small_products),
        cmocka_unit_test(test_long_products),
        cmocka_unit_test(test_dense_batch_gradients),
        cmocka_unit_test(test_streamed_arrays),
        cmocka_unit_test(test_model_threads),
        cmocka_unit_test(test_inference_buffers),
        cmocka_unit_test(test_adam_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
