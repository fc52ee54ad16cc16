/* Conv2D's im2col + sgemm path (forward, input gradient, kernel and bias gradients) against a
 * naive direct convolution written here, in double, on random shapes: batch 1..7, kernels
 * 1..5 (even and odd, non-square), strides 1..3, valid and SAME padding (TF arithmetic
 * recomputed here: out = ceil(in / s), extra padding at the bottom/right), and explicit pads
 * on every side (also beyond the kernel) through the im2col, direct and Winograd paths.
 * Pass: |a - b| <= 1e-5 * max(1, S) per element, S the sum of |terms| of that element (the
 * standard bound for a float sum of those terms, with a wide margin). */
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

#define TOL 1e-5

typedef struct shape_case {
    int n, h, w, c, f, kh, kw, sh, sw, padding, bias;
    int pt, pb, pl, pr; /* TFX_PADDING_EXPLICIT's pads */
} shape_case;

static int under_valgrind(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

/* TensorFlow's output size and leading pad, computed independently of the library; explicit:
 * (in + before + after - k) / s + 1 with the given before (PyTorch's). */
static void tf_geometry_ex(int in, int k, int s, int padding, int pb, int pa, int *out, int *before)
{
    if (padding == TFX_PADDING_EXPLICIT) {
        *out = (in + pb + pa - k) / s + 1;
        *before = pb;
        return;
    }
    if (padding == TFX_PADDING_VALID) {
        *out = (in - k) / s + 1;
        *before = 0;
        return;
    }
    *out = (in + s - 1) / s;
    int total = (*out - 1) * s + k - in;
    *before = total > 0 ? total / 2 : 0;
}
#define tf_geometry(in, k, s, padding, out, before) tf_geometry_ex(in, k, s, padding, 0, 0, out, before)

/* Naive direct convolution and its gradients, double accumulation, with |term| sums. */
typedef struct naive {
    int oh, ow;
    double *y, *ys;    /* output, sum |terms| */
    double *dx, *dxs;  /* input gradient */
    double *dw, *dws;  /* kernel gradient */
    double *db, *dbs;  /* bias gradient */
} naive;

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static void naive_conv(const shape_case *k, const float *x, const float *w, const float *b, const float *dy,
                       naive *r)
{
    int pt, pl;
    tf_geometry_ex(k->h, k->kh, k->sh, k->padding, k->pt, k->pb, &r->oh, &pt);
    tf_geometry_ex(k->w, k->kw, k->sw, k->padding, k->pl, k->pr, &r->ow, &pl);
    const size_t ny = (size_t)k->n * r->oh * r->ow * k->f, nx = (size_t)k->n * k->h * k->w * k->c;
    const size_t nw = (size_t)k->kh * k->kw * k->c * k->f;
    r->y = dalloc(ny);
    r->ys = dalloc(ny);
    r->dx = dalloc(nx);
    r->dxs = dalloc(nx);
    r->dw = dalloc(nw);
    r->dws = dalloc(nw);
    r->db = dalloc((size_t)k->f);
    r->dbs = dalloc((size_t)k->f);
    for (int bi = 0; bi < k->n; bi++)
        for (int oy = 0; oy < r->oh; oy++)
            for (int ox = 0; ox < r->ow; ox++)
                for (int f = 0; f < k->f; f++) {
                    size_t yi = (((size_t)bi * r->oh + oy) * r->ow + ox) * k->f + f;
                    double acc = b ? b[f] : 0.0, accs = b ? fabs(b[f]) : 0.0;
                    double g = dy[yi];
                    if (b) {
                        r->db[f] += g;
                        r->dbs[f] += fabs(g);
                    }
                    for (int ki = 0; ki < k->kh; ki++) {
                        int iy = oy * k->sh - pt + ki;
                        if (iy < 0 || iy >= k->h) continue;
                        for (int kj = 0; kj < k->kw; kj++) {
                            int ix = ox * k->sw - pl + kj;
                            if (ix < 0 || ix >= k->w) continue;
                            for (int c = 0; c < k->c; c++) {
                                size_t xi = (((size_t)bi * k->h + iy) * k->w + ix) * k->c + c;
                                size_t wi = (((size_t)ki * k->kw + kj) * k->c + c) * k->f + f;
                                acc += (double)x[xi] * w[wi];
                                accs += fabs((double)x[xi] * w[wi]);
                                r->dx[xi] += g * w[wi];
                                r->dxs[xi] += fabs(g * w[wi]);
                                r->dw[wi] += g * x[xi];
                                r->dws[wi] += fabs(g * x[xi]);
                            }
                        }
                    }
                    r->y[yi] = acc;
                    r->ys[yi] = accs;
                }
}

static void naive_free(naive *r)
{
    free(r->y);
    free(r->ys);
    free(r->dx);
    free(r->dxs);
    free(r->dw);
    free(r->dws);
    free(r->db);
    free(r->dbs);
}

static double compare(const char *what, const char *label, const float *a, const double *ref, const double *sums,
                      size_t count)
{
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double scale = fmax(1.0, sums[i]);
        double err = fabs((double)a[i] - ref[i]) / scale;
        if (!(err <= TOL)) {
            print_error("%s: %s[%zu] = %.9g, naive %.9g (err %.3g)\n", label, what, i, (double)a[i], ref[i], err);
            fail();
        }
        if (err > worst) worst = err;
    }
    return worst;
}

static void fill(tfx__rng *rng, float *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * tfx__rng_uniform(rng));
}

static double g_worst[4];

/* Check one shape; returns 0 when valid padding does not fit (and checks that the library
 * refuses it with TFX_ESHAPE). */
static int check_case(const shape_case *k, uint64_t seed)
{
    char label[160];
    snprintf(label, sizeof label, "n%d %dx%dx%d f%d k%dx%d s%dx%d %s (%d %d %d %d)%s", k->n, k->h, k->w, k->c, k->f,
             k->kh, k->kw, k->sh, k->sw, k->padding == 2 ? "explicit" : k->padding ? "same" : "valid", k->pt, k->pb,
             k->pl, k->pr, k->bias ? "" : " nobias");
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, k->h, k->w, k->c), TFX_OK);
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = k->f;
    o.kernel_h = k->kh;
    o.kernel_w = k->kw;
    o.stride_h = k->sh;
    o.stride_w = k->sw;
    o.padding = k->padding;
    o.pad_top = k->pt, o.pad_bottom = k->pb, o.pad_left = k->pl, o.pad_right = k->pr;
    o.use_bias = k->bias;
    tfx_layer *l = NULL;
    int rc = tfx_model_add_conv2d(m, &o, &l);
    if (k->padding != TFX_PADDING_SAME && (k->kh > k->h + k->pt + k->pb || k->kw > k->w + k->pl + k->pr)) {
        assert_int_equal(rc, TFX_ESHAPE);
        tfx_model_free(m);
        return 0;
    }
    assert_int_equal(rc, TFX_OK);

    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    const size_t nx = (size_t)k->n * k->h * k->w * k->c, nw = (size_t)k->kh * k->kw * k->c * k->f;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)k->f * sizeof *b);
    assert_non_null(x);
    assert_non_null(w);
    assert_non_null(b);
    fill(&rng, x, nx, -1.0, 1.0);
    fill(&rng, w, nw, -0.5, 0.5);
    fill(&rng, b, (size_t)k->f, -0.5, 0.5);
    assert_int_equal(tfx_layer_set_weights(l, w, k->bias ? b : NULL), TFX_OK);

    int oh, ow, pad;
    tf_geometry_ex(k->h, k->kh, k->sh, k->padding, k->pt, k->pb, &oh, &pad);
    tf_geometry_ex(k->w, k->kw, k->sw, k->padding, k->pl, k->pr, &ow, &pad);
    assert_int_equal(l->out.h, oh);
    assert_int_equal(l->out.w, ow);
    const size_t ny = (size_t)k->n * oh * ow * k->f;
    float *dy = malloc(ny * sizeof *dy);
    assert_non_null(dy);
    fill(&rng, dy, ny, -1.0, 1.0);

    naive r;
    naive_conv(k, x, w, k->bias ? b : NULL, dy, &r);

    assert_int_equal(tfx__model_forward(m, x, (size_t)k->n, 0), TFX_OK);
    g_worst[0] = fmax(g_worst[0], compare("y", label, tfx__model_layer_output(m, 0), r.y, r.ys, ny));
    float *dx = NULL;
    assert_int_equal(tfx__model_backward(m, (size_t)k->n, 0, dy, 0, 1, TFX__BW_PARAM_GRADS, NULL, &dx), TFX_OK);
    g_worst[1] = fmax(g_worst[1], compare("dx", label, dx, r.dx, r.dxs, nx));
    g_worst[2] = fmax(g_worst[2], compare("dkernel", label, m->grads, r.dw, r.dws, nw));
    if (k->bias) g_worst[3] = fmax(g_worst[3], compare("dbias", label, m->grads + nw, r.db, r.dbs, (size_t)k->f));

    naive_free(&r);
    free(dy);
    free(b);
    free(w);
    free(x);
    tfx_model_free(m);
    return 1;
}

static int rnd(tfx__rng *rng, int lo, int hi) { return lo + (int)tfx__rng_below(rng, (uint64_t)(hi - lo + 1)); }

static void test_fixed_shapes(void **state)
{
    (void)state;
    static const shape_case cases[] = {
        {7, 8, 7, 3, 4, 3, 3, 2, 2, TFX_PADDING_SAME, 1, 0, 0, 0, 0}, /* batch 7, stride 2, SAME, odd kernel */
        {7, 9, 6, 2, 5, 4, 4, 2, 2, TFX_PADDING_SAME, 1, 0, 0, 0, 0}, /* batch 7, stride 2, SAME, even kernel */
        {7, 6, 6, 4, 3, 2, 2, 2, 2, TFX_PADDING_SAME, 0, 0, 0, 0, 0}, /* batch 7, stride 2, SAME, 2x2 */
        {1, 5, 5, 3, 2, 1, 1, 1, 1, TFX_PADDING_VALID, 1, 0, 0, 0, 0}, /* pointwise: no im2col */
        {2, 5, 6, 3, 2, 1, 1, 2, 3, TFX_PADDING_SAME, 1, 0, 0, 0, 0}, /* 1x1 with strides: im2col */
        {1, 3, 3, 2, 2, 5, 5, 1, 1, TFX_PADDING_SAME, 1, 0, 0, 0, 0}, /* kernel larger than the input (SAME) */
        {2, 4, 7, 2, 3, 4, 4, 3, 3, TFX_PADDING_SAME, 1, 0, 0, 0, 0}, /* stride 3 */
        {3, 7, 4, 1, 1, 7, 4, 1, 1, TFX_PADDING_VALID, 1, 0, 0, 0, 0}, /* kernel = input: 1x1 output */
        {1, 6, 6, 2, 2, 7, 3, 1, 1, TFX_PADDING_VALID, 1, 0, 0, 0, 0}, /* does not fit: TFX_ESHAPE */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 10 + i);
}

static void test_random_shapes(void **state)
{
    (void)state;
    tfx__rng rng;
    tfx__rng_seed(&rng, 4242);
    const int want = under_valgrind() ? 6 : 150;
    int done = 0, refused = 0;
    for (int i = 0; done < want; i++) {
        shape_case k;
        k.n = rnd(&rng, 1, 7);
        k.h = rnd(&rng, 1, 9);
        k.w = rnd(&rng, 1, 9);
        k.c = rnd(&rng, 1, 5);
        k.f = rnd(&rng, 1, 6);
        k.kh = rnd(&rng, 1, 5);
        k.kw = rnd(&rng, 1, 5);
        k.sh = rnd(&rng, 1, 3);
        k.sw = rnd(&rng, 1, 3);
        k.padding = rnd(&rng, 0, 1);
        k.bias = rnd(&rng, 0, 3) != 0;
        k.pt = k.pb = k.pl = k.pr = 0;
        if (check_case(&k, 1000 + (uint64_t)i))
            done++;
        else
            refused++;
    }
    printf("conv reference: %d random shapes (+%d refused with TFX_ESHAPE); max err y %.2e dx %.2e dkernel %.2e "
           "dbias %.2e\n",
           done, refused, g_worst[0], g_worst[1], g_worst[2], g_worst[3]);
}

/* Explicit padding: each path (im2col, the direct kernel, Winograd) and pads beyond the kernel
 * (whole rows of padding), then random shapes. */
static void test_explicit_padding(void **state)
{
    (void)state;
    static const shape_case cases[] = {
        {1, 9, 8, 3, 4, 7, 7, 2, 2, TFX_PADDING_EXPLICIT, 1, 3, 3, 3, 3},    /* ResNet's stem, smaller */
        {2, 5, 6, 2, 3, 3, 3, 1, 1, TFX_PADDING_EXPLICIT, 1, 0, 2, 1, 0},    /* asymmetric */
        {2, 4, 4, 2, 2, 2, 2, 1, 1, TFX_PADDING_EXPLICIT, 0, 4, 1, 0, 3},    /* pads beyond the kernel */
        {1, 3, 3, 2, 2, 5, 5, 1, 1, TFX_PADDING_EXPLICIT, 1, 1, 1, 1, 1},    /* fits only padded */
        {2, 6, 5, 2, 16, 3, 3, 1, 2, TFX_PADDING_EXPLICIT, 1, 2, 0, 1, 2},   /* direct kernel (16 filters) */
        {2, 7, 6, 1, 32, 5, 5, 2, 1, TFX_PADDING_EXPLICIT, 1, 3, 1, 2, 4},   /* direct, pads beyond the kernel */
        {1, 8, 9, 16, 16, 3, 3, 1, 1, TFX_PADDING_EXPLICIT, 1, 2, 0, 1, 2},  /* Winograd */
        {2, 10, 7, 16, 24, 3, 3, 1, 1, TFX_PADDING_EXPLICIT, 1, 0, 1, 2, 2}, /* Winograd */
        {1, 8, 8, 16, 16, 3, 3, 1, 1, TFX_PADDING_EXPLICIT, 1, 3, 3, 3, 3},  /* 3x3 beyond Winograd's pads */
        {1, 3, 3, 2, 2, 5, 5, 1, 1, TFX_PADDING_EXPLICIT, 1, 0, 1, 0, 1},    /* does not fit: TFX_ESHAPE */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 50 + i);
    tfx__rng rng;
    tfx__rng_seed(&rng, 1717);
    const int want = under_valgrind() ? 6 : 100;
    for (int done = 0, i = 0; done < want; i++) {
        shape_case k = {rnd(&rng, 1, 4), rnd(&rng, 1, 9), rnd(&rng, 1, 9), rnd(&rng, 1, 4), rnd(&rng, 1, 5),
                        rnd(&rng, 1, 5), rnd(&rng, 1, 5), rnd(&rng, 1, 3), rnd(&rng, 1, 3), TFX_PADDING_EXPLICIT,
                        rnd(&rng, 0, 1), rnd(&rng, 0, 4), rnd(&rng, 0, 4), rnd(&rng, 0, 4), rnd(&rng, 0, 4)};
        done += check_case(&k, 5000 + (uint64_t)i);
    }
    printf("conv reference with explicit padding: max err y %.2e dx %.2e dkernel %.2e dbias %.2e\n", g_worst[0],
           g_worst[1], g_worst[2], g_worst[3]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_shapes),
        cmocka_unit_test(test_explicit_padding),
        cmocka_unit_test(test_random_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
