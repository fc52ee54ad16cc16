/* Conv2D's Winograd tile size follows the image count (tfx__winograd_choose_n: F(2x2) where
 * F(4x4)'s products would have at most 16 rows) and the layer keeps both transformed kernels.
 * A 7x7 output (4 tiles of F(4x4) per image): 1, 3 and 4 images take F(2x2), 5 and 8 F(4x4).
 * Calls alternate between the counts, forward and input gradient, and every result is checked
 * against a naive convolution in double (|err| <= 1e-5 of the sum of |terms|), and a repeated
 * count must give the same bits as its first call (the kept kernels are not overwritten by the
 * other size's). New weights (tfx_layer_set_weights) are picked up by both kernels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/winograd.h"
#include "model/model_internal.h"

enum { H = 7, W = 7, C = 24, F = 20, NMAX = 8 };

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* y = conv(x, w) (3x3, pad 1) and dx = conv^T(dy, w), with the sums of |terms|. */
static void naive(const float *x, const float *w, const float *dy, size_t n, double *y, double *ys, double *dx,
                  double *dxs)
{
    memset(y, 0, n * H * W * F * sizeof *y), memset(ys, 0, n * H * W * F * sizeof *ys);
    memset(dx, 0, n * H * W * C * sizeof *dx), memset(dxs, 0, n * H * W * C * sizeof *dxs);
    for (size_t b = 0; b < n; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int u = 0; u < 3; u++)
                    for (int v = 0; v < 3; v++) {
                        const int ih = i - 1 + u, iw = j - 1 + v;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        for (int c = 0; c < C; c++)
                            for (int f = 0; f < F; f++) {
                                const size_t xo = ((b * H + ih) * W + iw) * C + c, yo = ((b * H + i) * W + j) * F + f;
                                const double t = (double)x[xo] * w[((u * 3 + v) * C + c) * F + f];
                                const double g = (double)dy[yo] * w[((u * 3 + v) * C + c) * F + f];
                                y[yo] += t, ys[yo] += fabs(t);
                                dx[xo] += g, dxs[xo] += fabs(g);
                            }
                    }
}

static void check(const float *got, const double *want, const double *sums, size_t count)
{
    for (size_t i = 0; i < count; i++) assert_true(fabs(got[i] - want[i]) <= 1e-5 * (1.0 + sums[i]));
}

static void test_tiles_follow_count(void **state)
{
    (void)state;
    assert_int_equal(tfx__winograd_choose_n(C, F, H, W, 1), 2);
    assert_int_equal(tfx__winograd_choose_n(C, F, H, W, 3), 2);
    assert_int_equal(tfx__winograd_choose_n(C, F, H, W, 4), 2);
    assert_int_equal(tfx__winograd_choose_n(C, F, H, W, 5), 4);
    assert_int_equal(tfx__winograd_choose_n(C, F, 28, 28, 1), 4); /* 49 tiles */
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, W, C), TFX_OK);
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = F;
    o.padding = TFX_PADDING_SAME;
    o.use_bias = 0;
    tfx_layer *l;
    assert_int_equal(tfx_model_add_conv2d(m, &o, &l), TFX_OK);
    const size_t nx = (size_t)NMAX * H * W * C, ny = (size_t)NMAX * H * W * F, nw = 9 * (size_t)C * F;
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy), *w = malloc(nw * sizeof *w);
    double *y = malloc(ny * sizeof *y), *ys = malloc(ny * sizeof *ys), *dx = malloc(nx * sizeof *dx),
           *dxs = malloc(nx * sizeof *dxs);
    float *first_y[NMAX + 1] = {0}, *first_dx[NMAX + 1] = {0};
    assert_true(x && dy && w && y && ys && dx && dxs);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(2.0 * uniform() - 1.0);
    for (size_t i = 0; i < ny; i++) dy[i] = (float)(2.0 * uniform() - 1.0);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < nw; i++) w[i] = (float)(0.2 * uniform() - 0.1);
        assert_int_equal(tfx_layer_set_weights(l, w, NULL), TFX_OK);
        static const size_t counts[] = {1, 5, 3, 8, 1, 5};
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            const size_t n = counts[k];
            naive(x, w, dy, n, y, ys, dx, dxs);
            assert_int_equal(tfx__model_forward(m, x, n, 0), TFX_OK);
            const float *gy = tfx__model_layer_output(m, 0);
            check(gy, y, ys, n * H * W * F);
            float *gdx;
            assert_int_equal(tfx__model_backward(m, n, 0, dy, 0, 1, 0, NULL, &gdx), TFX_OK);
            check(gdx, dx, dxs, n * H * W * C);
            if (!first_y[n]) {
                first_y[n] = malloc(n * H * W * F * sizeof(float));
                first_dx[n] = malloc(n * H * W * C * sizeof(float));
                assert_true(first_y[n] && first_dx[n]);
                memcpy(first_y[n], gy, n * H * W * F * sizeof(float));
                memcpy(first_dx[n], gdx, n * H * W * C * sizeof(float));
            } else {
                assert_memory_equal(first_y[n], gy, n * H * W * F * sizeof(float));
                assert_memory_equal(first_dx[n], gdx, n * H * W * C * sizeof(float));
            }
        }
        for (size_t n = 0; n <= NMAX; n++) free(first_y[n]), free(first_dx[n]), first_y[n] = first_dx[n] = NULL;
    }
    free(x), free(dy), free(w), free(y), free(ys), free(dx), free(dxs);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiles_follow_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
