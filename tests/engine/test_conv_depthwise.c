/* The depthwise convolution kernel (lib/core/conv_grouped.c: vectorised along the channels,
 * 3x3 unrolled, bias and clamping activations fused) against
 *  - a naive convolution written here in double: |a - b| <= 1e-6 * S per element, S the sum of
 *    |terms| of that element (relative to the magnitude the float sum works with);
 *  - the generic grouped kernel's arithmetic, written here in float in its order (zero, taps in
 *    kernel order, then the bias; the activation and its backward by the library's own
 *    functions, as the layer ran them before): bit-identical, so no number changed;
 *  - itself on 1..4 threads and at every instruction-set level (tfx__hook_isa_level 1, 2, 3):
 *    bit-identical.
 * Shapes: strides 1, 2, 3 (also mixed), odd sizes, asymmetric pads (also beyond the kernel),
 * 1x1, 2x3, 5x5 kernels, channel counts that are not a multiple of the vector width, depth
 * multipliers 2 and 3 (the generic kernel), layers large enough to be split over threads, by
 * lines and, when lines are fewer than threads, by lines x channel chunks. Then
 * the DepthwiseConv2D layer itself (forward with and without a kept pre-activation; input
 * gradient under the plain, guided and deconvnet rules, with and without the activation) for
 * linear, ReLU, ReLU6, clip and hard swish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "support/testing.h"

#define TOL 1e-6

typedef struct dw_case {
    int n, h, w, c, m, kh, kw, sh, sw, pt, pb, pl, pr;
} dw_case;

static const dw_case cases[] = {
    {2, 7, 9, 19, 1, 3, 3, 1, 1, 1, 1, 1, 1},   /* odd sizes, 19 channels (16 + 3) */
    {1, 8, 11, 37, 1, 3, 3, 2, 2, 0, 1, 1, 0},  /* stride 2, asymmetric pads (Keras SAME) */
    {3, 5, 6, 16, 2, 3, 3, 1, 1, 2, 0, 0, 2},   /* multiplier 2 */
    {1, 13, 10, 48, 1, 3, 3, 2, 1, 1, 2, 0, 1}, /* strides 2 x 1 */
    {1, 9, 9, 33, 1, 5, 5, 1, 1, 2, 2, 2, 2},   /* 5x5 */
    {2, 6, 7, 32, 1, 2, 3, 1, 2, 0, 1, 2, 1},   /* 2x3, strides 1 x 2 */
    {1, 4, 4, 5, 1, 3, 3, 3, 3, 1, 1, 1, 1},    /* stride 3, 5 channels */
    {1, 12, 12, 64, 1, 3, 3, 1, 1, 0, 0, 0, 0}, /* no padding */
    {1, 3, 17, 80, 1, 3, 3, 1, 1, 1, 1, 1, 1},  /* 3 lines, 5 vectors of channels */
    {1, 2, 3, 160, 1, 3, 3, 2, 2, 1, 1, 1, 1},  /* 1 output line */
    {1, 5, 5, 7, 3, 3, 3, 2, 2, 1, 1, 1, 1},    /* multiplier 3 */
    {2, 14, 14, 24, 1, 3, 3, 2, 2, 1, 1, 1, 1}, /* MobileNetV2's stride 2 */
    {1, 4, 5, 17, 1, 3, 3, 1, 1, 3, 2, 4, 1},   /* pads beyond the kernel: lines and columns of bias only */
    {1, 6, 6, 20, 1, 1, 1, 2, 2, 0, 0, 0, 0},   /* 1x1, stride 2 */
    /* large enough to be split over threads (2^21 multiply-adds and more; smaller run on one) */
    {2, 48, 47, 67, 1, 3, 3, 1, 1, 1, 1, 1, 1}, /* lines split, 67 channels */
    {3, 65, 66, 96, 1, 3, 3, 2, 2, 0, 1, 1, 0}, /* stride 2, asymmetric pads */
    {1, 3, 256, 320, 1, 3, 3, 1, 1, 1, 1, 1, 1}, /* 3 lines: lines x channel chunks split */
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static void geom(const dw_case *k, tfx__conv_geom *g)
{
    *g = (tfx__conv_geom){k->h, k->w, k->c, (k->h + k->pt + k->pb - k->kh) / k->sh + 1,
                          (k->w + k->pl + k->pr - k->kw) / k->sw + 1, k->kh, k->kw, k->sh, k->sw, k->pt, k->pl};
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static void fill(tfx__rng *rng, float *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * tfx__rng_uniform(rng));
}

/* The taps of output (oh, ow): calls fn for each in kernel order (ki, kj) that lands. */
#define FOR_TAPS(g, oh, ow, BODY)                                                                  \
    for (int ki = 0; ki < (g)->kh; ki++) {                                                         \
        const int ih = (oh) * (g)->sh - (g)->pad_top + ki;                                         \
        if (ih < 0 || ih >= (g)->in_h) continue;                                                   \
        for (int kj = 0; kj < (g)->kw; kj++) {                                                     \
            const int iw = (ow) * (g)->sw - (g)->pad_left + kj;                                    \
            if (iw < 0 || iw >= (g)->in_w) continue;                                               \
            BODY                                                                                   \
        }                                                                                          \
    }

/* Naive forward in double (z + bias) with |term| sums, and the input gradient of dz. */
static void naive(const tfx__conv_geom *g, int M, size_t n, const float *x, const float *w, const float *b,
                  const float *dz, double *z, double *zs, double *dx, double *dxs)
{
    const size_t C = (size_t)g->in_c, F = C * (size_t)M;
    for (size_t bi = 0; bi < n; bi++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++)
                for (size_t f = 0; f < F; f++) {
                    const size_t o = ((bi * g->out_h + (size_t)oh) * g->out_w + (size_t)ow) * F + f, c = f / (size_t)M;
                    double acc = b ? b[f] : 0.0, accs = b ? fabs(b[f]) : 0.0;
                    FOR_TAPS(g, oh, ow, {
                        const size_t xi = ((bi * g->in_h + (size_t)ih) * g->in_w + (size_t)iw) * C + c;
                        const double wv = w[((size_t)ki * g->kw + (size_t)kj) * F + f];
                        acc += (double)x[xi] * wv;
                        accs += fabs((double)x[xi] * wv);
                        dx[xi] += (double)dz[o] * wv;
                        dxs[xi] += fabs((double)dz[o] * wv);
                    })
                    z[o] = acc;
                    zs[o] = accs;
                }
}

/* The generic kernel's arithmetic in float: z = sum of taps from 0, then + bias (bias may be
 * NULL); dx cell by cell, taps in order, per tap the sum over the cell's M filters. */
static void order_forward(const tfx__conv_geom *g, int M, size_t n, const float *x, const float *w, const float *b,
                          float *z)
{
    const size_t C = (size_t)g->in_c, F = C * (size_t)M;
    for (size_t bi = 0; bi < n; bi++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++)
                for (size_t f = 0; f < F; f++) {
                    const size_t o = ((bi * g->out_h + (size_t)oh) * g->out_w + (size_t)ow) * F + f, c = f / (size_t)M;
                    float acc = 0.0f;
                    FOR_TAPS(g, oh, ow, {
                        const float t = x[((bi * g->in_h + (size_t)ih) * g->in_w + (size_t)iw) * C + c] *
                                        w[((size_t)ki * g->kw + (size_t)kj) * F + f];
                        acc = acc + t;
                    })
                    if (b) acc = acc + b[f];
                    z[o] = acc;
                }
}

static void order_dx(const tfx__conv_geom *g, int M, size_t n, const float *dz, const float *w, float *dx)
{
    const size_t C = (size_t)g->in_c, F = C * (size_t)M;
    for (size_t bi = 0; bi < n; bi++)
        for (int ih = 0; ih < g->in_h; ih++)
            for (int iw = 0; iw < g->in_w; iw++)
                for (size_t c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int ki = 0; ki < g->kh; ki++) {
                        const int nh = ih + g->pad_top - ki;
                        if (nh < 0 || nh % g->sh || nh / g->sh >= g->out_h) continue;
                        for (int kj = 0; kj < g->kw; kj++) {
                            const int nw = iw + g->pad_left - kj;
                            if (nw < 0 || nw % g->sw || nw / g->sw >= g->out_w) continue;
                            const size_t o =
                                ((bi * g->out_h + (size_t)(nh / g->sh)) * g->out_w + (size_t)(nw / g->sw)) * F;
                            float s = 0.0f;
                            for (size_t m = 0; m < (size_t)M; m++) {
                                const float t = dz[o + c * (size_t)M + m] *
                                                w[((size_t)ki * g->kw + (size_t)kj) * F + c * (size_t)M + m];
                                s = s + t;
                            }
                            acc = acc + s;
                        }
                    }
                    dx[((bi * g->in_h + (size_t)ih) * g->in_w + (size_t)iw) * C + c] = acc;
                }
}

static void check_close(const char *what, const char *label, const float *a, const double *ref, const double *sums,
                        size_t count, double *worst)
{
    for (size_t i = 0; i < count; i++) {
        const double err = fabs((double)a[i] - ref[i]), scale = sums[i] > 0.0 ? sums[i] : 1e-30;
        if (!(err <= TOL * scale)) {
            print_error("%s: %s[%zu] = %.9g, naive %.9g (err %.3g of %.3g)\n", label, what, i, (double)a[i], ref[i],
                        err, sums[i]);
            fail();
        }
        if (err / scale > *worst) *worst = err / scale;
    }
}

static void check_same(const char *what, const char *label, const float *a, const float *b, size_t count)
{
    if (memcmp(a, b, count * sizeof *a) == 0) return;
    for (size_t i = 0; i < count; i++)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0) {
            print_error("%s: %s[%zu] = %.9g, expected bit-identical %.9g\n", label, what, i, (double)a[i],
                        (double)b[i]);
            break;
        }
    fail();
}

static double g_worst_y, g_worst_dx;

/* The kernels at one thread count and instruction-set level. */
static void run_core(const tfx__conv_geom *g, int M, size_t n, const float *x, const float *w, const float *b,
                     const float *dz, int act, float lo, float hi, float *z, float *y, float *dx)
{
    const size_t F = (size_t)g->in_c * (size_t)M;
    const tfx__direct_epilogue ep = {act, lo, hi, b, y};
    tfx__conv_grouped(g, g->in_c, n, x, w, F, z, &ep);
    tfx__conv_grouped_dx(g, g->in_c, n, dz, w, F, dx);
}

/* Core kernels of one case: naive, the generic order, threads and instruction sets. */
static void check_core(const dw_case *k, uint64_t seed)
{
    char label[160];
    snprintf(label, sizeof label, "n%d %dx%dx%d m%d k%dx%d s%dx%d pads (%d %d %d %d)", k->n, k->h, k->w, k->c, k->m,
             k->kh, k->kw, k->sh, k->sw, k->pt, k->pb, k->pl, k->pr);
    tfx__conv_geom g;
    geom(k, &g);
    const size_t n = (size_t)k->n, F = (size_t)k->c * (size_t)k->m;
    const size_t nx = n * k->h * k->w * k->c, ny = n * (size_t)g.out_h * g.out_w * F, nw = (size_t)k->kh * k->kw * F;
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(F), *dz = falloc(ny);
    fill(&rng, x, nx, -1.0, 1.0);
    fill(&rng, w, nw, -0.5, 0.5);
    fill(&rng, b, F, -0.5, 0.5);
    fill(&rng, dz, ny, -1.0, 1.0);
    double *rz = dalloc(ny), *rzs = dalloc(ny), *rdx = dalloc(nx), *rdxs = dalloc(nx);
    naive(&g, k->m, n, x, w, b, dz, rz, rzs, rdx, rdxs);
    float *oz = falloc(ny), *oy = falloc(ny), *odx = falloc(nx);
    order_forward(&g, k->m, n, x, w, b, oz);
    tfx__activation_forward(TFX_ACTIVATION_RELU6, 0.0f, 0.0f, oz, oy, n * (size_t)g.out_h * g.out_w, F);
    order_dx(&g, k->m, n, dz, w, odx);

    float *z = falloc(ny), *y = falloc(ny), *dx = falloc(nx);
    for (int level = 3; level >= 1; level--)
        for (int threads = 1; threads <= 4; threads++) {
            tfx__sgemm_wide_force(level);
            tfx__threads_force(threads);
            memset(z, 0xff, ny * sizeof *z); /* NaN: every value must be written */
            memset(y, 0xff, ny * sizeof *y);
            memset(dx, 0xff, nx * sizeof *dx);
            run_core(&g, k->m, n, x, w, b, dz, TFX_ACTIVATION_RELU6, 0.0f, 0.0f, z, y, dx);
            check_close("z", label, z, rz, rzs, ny, &g_worst_y);
            check_close("dx", label, dx, rdx, rdxs, nx, &g_worst_dx);
            check_same("z", label, z, oz, ny);
            check_same("y", label, y, oy, ny);
            check_same("dx", label, dx, odx, nx);
        }
    /* no epilogue (LRP, occlusion's box forward): the bare sums, in place of y too */
    float *zb = falloc(ny);
    order_forward(&g, k->m, n, x, w, NULL, zb);
    tfx__threads_force(2);
    tfx__conv_grouped(&g, k->c, n, x, w, F, z, NULL);
    check_same("z without epilogue", label, z, zb, ny);
    tfx__threads_force(0);
    tfx__sgemm_wide_force(0);
    free(zb), free(z), free(y), free(dx), free(oz), free(oy), free(odx);
    free(rz), free(rzs), free(rdx), free(rdxs);
    free(x), free(w), free(b), free(dz);
}

static void test_core_kernels(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) check_core(&cases[i], 100 + i);
    printf("depthwise kernels vs naive: max err / sum|terms| z %.2e dx %.2e\n", g_worst_y, g_worst_dx);
}

/* ---- the DepthwiseConv2D layer (layers/conv2d.c's grouped path) ---- */

static tfx_layer *make_layer(tfx_model **m, const dw_case *k, int act, float lo, float hi, tfx__rng *rng)
{
    assert_int_equal(tfx_model_new(m, k->h, k->w, k->c), TFX_OK);
    tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    o.kernel_h = k->kh, o.kernel_w = k->kw, o.stride_h = k->sh, o.stride_w = k->sw;
    o.padding = TFX_PADDING_EXPLICIT;
    o.pad_top = k->pt, o.pad_bottom = k->pb, o.pad_left = k->pl, o.pad_right = k->pr;
    o.depth_multiplier = k->m;
    o.activation = act;
    o.clip_min = lo, o.clip_max = hi;
    tfx_layer *l = NULL;
    assert_int_equal(tfx_model_add_depthwise_conv2d(*m, &o, &l), TFX_OK);
    const size_t F = (size_t)k->c * (size_t)k->m, nw = (size_t)k->kh * k->kw * F;
    float *w = falloc(nw), *b = falloc(F);
    fill(rng, w, nw, -0.5, 0.5);
    fill(rng, b, F, -0.5, 0.5);
    assert_int_equal(tfx_layer_set_weights(l, w, b), TFX_OK);
    free(w), free(b);
    return l;
}

static void check_layer(const dw_case *k, int act, uint64_t seed)
{
    char label[160];
    snprintf(label, sizeof label, "layer %s n%d %dx%dx%d m%d k%dx%d s%dx%d", tfx__activation_name(act), k->n, k->h,
             k->w, k->c, k->m, k->kh, k->kw, k->sh, k->sw);
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    tfx_model *m = NULL;
    tfx_layer *l = make_layer(&m, k, act, -0.25f, 0.75f, &rng);
    tfx__conv_geom g;
    geom(k, &g);
    const size_t n = (size_t)k->n, F = (size_t)k->c * (size_t)k->m;
    const size_t nx = n * k->h * k->w * k->c, ny = n * (size_t)g.out_h * g.out_w * F, rows = ny / F;
    const size_t nk = (size_t)k->kh * k->kw * F;
    const float *w = tfx__layer_params(l), *b = w + nk;
    float *x = falloc(nx), *dy0 = falloc(ny);
    fill(&rng, x, nx, -2.0, 2.0);
    fill(&rng, dy0, ny, -1.0, 1.0);
    /* the reference: z + bias in the generic order, the activation by the library's function */
    float *rz = falloc(ny), *ry = falloc(ny), *rdz = falloc(ny), *rdx = falloc(nx);
    order_forward(&g, k->m, n, x, w, b, rz);
    tfx__activation_forward(act, l->cfg.alpha, l->cfg.beta, rz, ry, rows, F);

    float *y = falloc(ny), *pre = falloc(ny), *dy = falloc(ny), *dx = falloc(nx);
    const tfx__layer_run run = tfx__model_run(m, 0);
    tfx__threads_force(2);
    for (int keep = 0; keep < 2; keep++) { /* the pre-activation kept (training, non-lean) or not */
        l->preact = keep ? pre : NULL;
        memset(y, 0xff, ny * sizeof *y);
        assert_int_equal(l->ops->forward(l, &run, x, y, n), TFX_OK);
        check_same(keep ? "y (pre-activation kept)" : "y", label, y, ry, ny);
        if (keep) check_same("pre-activation", label, pre, rz, ny);
        static const int rules[] = {TFX__RULE_GRADIENT, TFX__RULE_GUIDED, TFX__RULE_DECONVNET};
        for (size_t ri = 0; ri < 3; ri++)
            for (int skip = 0; skip < 2; skip++) {
                const tfx__rule rule = {rules[ri], 0, 0, 0, 0, 0};
                const int apply = act != TFX_ACTIVATION_LINEAR && !skip;
                if (apply)
                    assert_int_equal(tfx__activation_backward(act, l->cfg.alpha, l->cfg.beta, keep ? pre : NULL, y,
                                                              dy0, rdz, rows, F, &rule),
                                     TFX_OK);
                else
                    memcpy(rdz, dy0, ny * sizeof *rdz);
                order_dx(&g, k->m, n, rdz, w, rdx);
                memcpy(dy, dy0, ny * sizeof *dy);
                memset(dx, 0xff, nx * sizeof *dx);
                assert_int_equal(l->ops->backward(l, &run, x, y, dy, dx, n, skip ? TFX__BW_SKIP_ACTIVATION : 0, &rule),
                                 TFX_OK);
                char what[64];
                snprintf(what, sizeof what, "dx (rule %d%s%s)", rules[ri], skip ? ", activation skipped" : "",
                         keep ? ", pre-activation kept" : "");
                check_same(what, label, dx, rdx, nx);
            }
    }
    tfx__threads_force(0);
    l->preact = NULL;
    free(x), free(dy0), free(rz), free(ry), free(rdz), free(rdx), free(y), free(pre), free(dy), free(dx);
    tfx_model_free(m);
}

static void test_layer(void **state)
{
    (void)state;
    static const int acts[] = {TFX_ACTIVATION_LINEAR, TFX_ACTIVATION_RELU, TFX_ACTIVATION_RELU6, TFX_ACTIVATION_CLIP,
                               TFX_ACTIVATION_HARD_SWISH};
    static const size_t which[] = {0, 1, 2, 3, 8, 12};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
            check_layer(&cases[which[i]], acts[a], 900 + 10 * a + i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_kernels),
        cmocka_unit_test(test_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
