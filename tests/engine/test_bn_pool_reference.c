/* BatchNormalization at inference, MaxPooling2D and the Activation layer (their vectorised,
 * thread-split kernels)
 * against scalar references written here, at sizes that take every path: more than 256 channels
 * (the kernels work in blocks of 256), enough values to split the rows over two threads, and
 * batch 2. BatchNormalization: the output and the input gradient must equal the reference
 * bit for bit (same float arithmetic, one value per element), the parameter gradients (from
 * an inference forward, which keeps no normalised copy) match a double reference. Max pooling:
 * ties everywhere (values on a coarse grid), so the rule "the first maximal cell of the window
 * in row-major order takes the gradient" is exercised; forward and input gradient exact.
 * Activation: two threads against one, bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

static uint64_t rng_state = 88172645463325252ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float *randoms(size_t n, double lo, double hi)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * uniform());
    return p;
}

static void test_batch_norm_inference(void **state)
{
    (void)state;
    enum { N = 2, H = 16, W = 15, C = 300 }; /* 144000 values: split (BN_SPLIT 2^17) */
    const size_t rows = (size_t)N * H * W, total = rows * C;
    for (int threads = 1; threads <= 2; threads++) {
        tfx_model *m;
        assert_int_equal(tfx_model_new(&m, H, W, C), TFX_OK);
        assert_int_equal(tfx_model_set_threads(m, threads), TFX_OK);
        tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
        o.epsilon = 1e-5f;
        tfx_layer *l;
        assert_int_equal(tfx_model_add_batch_normalization(m, &o, &l), TFX_OK);
        float *k = randoms(4 * C, -1.0, 1.0);
        for (int c = 0; c < C; c++) k[3 * C + c] = 0.2f + k[3 * C + c] * k[3 * C + c]; /* variance > 0 */
        assert_int_equal(tfx_layer_set_weights(l, k, NULL), TFX_OK);
        const float *g = k, *b = k + C, *mean = k + 2 * C, *var = k + 3 * C;
        float *x = randoms(total, -3.0, 3.0), *dy = randoms(total, -1.0, 1.0);
        assert_int_equal(tfx__model_forward(m, x, N, 0), TFX_OK);
        const float *y = tfx__model_layer_output(m, 0);
        size_t bad = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < C; c++) {
                const float s = 1.0f / sqrtf(var[c] + o.epsilon), h = (x[r * C + c] - mean[c]) * s;
                const float want = g[c] * h + b[c];
                bad += memcmp(&want, &y[r * C + c], sizeof want) != 0;
            }
        assert_int_equal(bad, 0);
        /* Input gradient alone (an explainer's pass), then with parameter gradients. */
        for (int grads = 0; grads < 2; grads++) {
            float *dx;
            assert_int_equal(tfx__model_backward(m, N, 0, dy, 0, 1, grads ? TFX__BW_PARAM_GRADS : 0, NULL, &dx),
                             TFX_OK);
            bad = 0;
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < C; c++) {
                    const float want = dy[r * C + c] * g[c] * (1.0f / sqrtf(var[c] + o.epsilon));
                    bad += memcmp(&want, &dx[r * C + c], sizeof want) != 0;
                }
            assert_int_equal(bad, 0);
            if (!grads) continue;
            const float *pg = m->grads + l->param_offset; /* gamma, then beta */
            for (size_t c = 0; c < C; c++) {
                double sg = 0.0, sb = 0.0;
                for (size_t r = 0; r < rows; r++) {
                    const double s = 1.0 / sqrt((double)var[c] + o.epsilon);
                    sg += (double)dy[r * C + c] * ((double)x[r * C + c] - mean[c]) * s;
                    sb += dy[r * C + c];
                }
                assert_true(fabs(pg[c] - sg) <= 1e-4 * (1.0 + fabs(sg)));
                assert_true(fabs(pg[C + c] - sb) <= 1e-4 * (1.0 + fabs(sb)));
            }
        }
        free(k), free(x), free(dy);
        tfx_model_free(m);
    }
}

/* The max pooling reference: the window's maximum (padded cells never count) and the gradient
 * to the window's first maximal cell. */
static void naive_max(const float *x, const float *dy, int n, int h, int w, int c, int k, int s, int pad, int oh,
                      int ow, float *y, float *dx)
{
    memset(dx, 0, (size_t)n * h * w * c * sizeof *dx);
    for (int b = 0; b < n; b++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                for (int ch = 0; ch < c; ch++) {
                    float best = -FLT_MAX;
                    size_t arg = 0;
                    int found = 0;
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++) {
                            const int ih = i * s - pad + u, iw = j * s - pad + v;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                            const size_t at = (((size_t)b * h + ih) * w + iw) * c + ch;
                            if (!found || x[at] > best) best = x[at], arg = at, found = 1;
                        }
                    const size_t o = (((size_t)b * oh + i) * ow + j) * c + ch;
                    y[o] = best;
                    dx[arg] += dy[o];
                }
}

static void test_max_pooling(void **state)
{
    (void)state;
    static const struct {
        int h, w, c, k, s, pad;
    } cases[] = {{12, 11, 300, 3, 2, 1}, {9, 9, 40, 3, 1, 1}, {8, 8, 257, 2, 2, 0}};
    enum { N = 2 };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int h = cases[t].h, w = cases[t].w, c = cases[t].c, k = cases[t].k, s = cases[t].s, p = cases[t].pad;
        tfx_model *m;
        assert_int_equal(tfx_model_new(&m, h, w, c), TFX_OK);
        assert_int_equal(tfx_model_set_threads(m, 2), TFX_OK);
        tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
        o.pool_h = o.pool_w = k;
        o.stride_h = o.stride_w = s;
        o.padding = TFX_PADDING_EXPLICIT;
        o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = p;
        tfx_layer *l;
        assert_int_equal(tfx_model_add_max_pooling2d(m, &o, &l), TFX_OK);
        const int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        const size_t nx = (size_t)N * h * w * c, ny = (size_t)N * oh * ow * c;
        float *x = randoms(nx, 0.0, 1.0), *dy = randoms(ny, -1.0, 1.0);
        for (size_t i = 0; i < nx; i++) x[i] = floorf(x[i] * 4.0f) - 2.0f; /* 4 values: many ties */
        float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
        assert_non_null(y);
        assert_non_null(dx);
        naive_max(x, dy, N, h, w, c, k, s, p, oh, ow, y, dx);
        assert_int_equal(tfx__model_forward(m, x, N, 0), TFX_OK);
        assert_memory_equal(tfx__model_layer_output(m, 0), y, ny * sizeof *y);
        float *got;
        assert_int_equal(tfx__model_backward(m, N, 0, dy, 0, 1, 0, NULL, &got), TFX_OK);
        assert_memory_equal(got, dx, nx * sizeof *dx);
        free(x), free(dy), free(y), free(dx);
        tfx_model_free(m);
    }
}

/* Activation layers split large maps by rows over the threads: outputs and input gradients
 * (plain and guided) with two threads equal one thread's bit for bit, and ReLU6 equals the
 * clamp written here. */
static void test_activation_split(void **state)
{
    (void)state;
    enum { N = 2, H = 26, W = 26, C = 100 }; /* 135200 values: split (SPLIT_FLOATS 2^17) */
    const size_t total = (size_t)N * H * W * C;
    static const int acts[] = {TFX_ACTIVATION_RELU6, TFX_ACTIVATION_SOFTMAX, TFX_ACTIVATION_HARD_SWISH};
    float *x = randoms(total, -8.0, 8.0), *dy = randoms(total, -1.0, 1.0);
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        float *out[2], *grad[2], *guided[2];
        for (int threads = 1; threads <= 2; threads++) {
            tfx_model *m;
            assert_int_equal(tfx_model_new(&m, H, W, C), TFX_OK);
            assert_int_equal(tfx_model_set_threads(m, threads), TFX_OK);
            assert_int_equal(tfx_model_add_activation(m, acts[a], 0.0f, NULL, NULL), TFX_OK);
            assert_int_equal(tfx__model_forward(m, x, N, 0), TFX_OK);
            out[threads - 1] = malloc(total * sizeof(float));
            grad[threads - 1] = malloc(total * sizeof(float));
            guided[threads - 1] = malloc(total * sizeof(float));
            memcpy(out[threads - 1], tfx__model_layer_output(m, 0), total * sizeof(float));
            float *dx;
            assert_int_equal(tfx__model_backward(m, N, 0, dy, 0, 1, 0, NULL, &dx), TFX_OK);
            memcpy(grad[threads - 1], dx, total * sizeof(float));
            const tfx__rule rule = {TFX__RULE_GUIDED, 0, 0, 0, 0, 0};
            if (acts[a] == TFX_ACTIVATION_RELU6) {
                assert_int_equal(tfx__model_backward(m, N, 0, dy, 0, 1, 0, &rule, &dx), TFX_OK);
                memcpy(guided[threads - 1], dx, total * sizeof(float));
            } else {
                memset(guided[threads - 1], 0, total * sizeof(float));
            }
            tfx_model_free(m);
        }
        assert_memory_equal(out[0], out[1], total * sizeof(float));
        assert_memory_equal(grad[0], grad[1], total * sizeof(float));
        assert_memory_equal(guided[0], guided[1], total * sizeof(float));
        if (acts[a] == TFX_ACTIVATION_RELU6)
            for (size_t i = 0; i < total; i++) {
                const float want = x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i];
                assert_true(out[1][i] == want);
                assert_true(grad[1][i] == (x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f));
                assert_true(guided[1][i] == (x[i] > 0.0f && x[i] < 6.0f && dy[i] > 0.0f ? dy[i] : 0.0f));
            }
        for (int t = 0; t < 2; t++) free(out[t]), free(grad[t]), free(guided[t]);
    }
    free(x), free(dy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_norm_inference),
        cmocka_unit_test(test_max_pooling),
        cmocka_unit_test(test_activation_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
