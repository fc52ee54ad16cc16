/* The multi-input layer kinds (Add, Concatenate, Multiply; lib/layers/add.c, concatenate.c,
 * multiply.c) and the graphs they build.
 *
 * Layer level (the vtable called directly on a tfx_layer filled as the model fills it): shapes
 * and their messages, forward against a naive loop, gradients against central differences, the
 * LRP rules (Add's proportional split conserves relevance with eps = 0; Concatenate slices;
 * Multiply gives everything to the signal).
 *
 * Graph level (the public API: tfx_model_set_next_input, tfx_model_add_add/concatenate/multiply,
 * then the internal tfx__model_forward / tfx__model_backward as test_gradcheck.c does): input
 * and parameter gradients against central differences (Richardson-extrapolated, as
 * test_gradcheck.c; smooth activations only, so no kink bookkeeping) for a tensor read by three
 * layers, a squeeze-and-excitation block, a three-way Concatenate and Add(x, x); bad input; LRP
 * conservation through tfx_explain on a branching graph. */
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
#include "tfx/tfx.h"

#define OK(call) assert_int_equal((call), TFX_OK)
#define FLOOR 1e-2
#define TOL 1e-3

/* Uniform random multiples of 2^-bits in [lo, hi]: dyadic values with few bits keep products and
 * sums exact in float. */
static void fill_grid(tfx__rng *rng, float *p, size_t n, double lo, double hi, int bits)
{
    const double unit = ldexp(1.0, -bits);
    const long kmin = (long)ceil(lo / unit), kmax = (long)floor(hi / unit);
    for (size_t i = 0; i < n; i++) p[i] = (float)((double)(kmin + (long)tfx__rng_below(rng, (uint64_t)(kmax - kmin + 1))) * unit);
}

static double rel_err(double a, double num) { return fabs(a - num) / fmax(fmax(fabs(a), fabs(num)), FLOOR); }

static const char *last_message(void) { return tfx_error_last()->message; }

/* ====================================================================================== */
/* Layer level                                                                            */
/* ====================================================================================== */

static tfx__shape map(int h, int w, int c) { return (tfx__shape){h, w, c, 0}; }
static tfx__shape flat(int c) { return (tfx__shape){1, 1, c, 1}; }

/* A layer as the model fills it for a multi-input kind: ops, the input shapes, the output from
 * infer_n. NULL (with the error set) when infer_n refuses the shapes. */
static tfx_layer *fake_layer(const tfx__layer_ops *ops, const tfx__shape *ins, size_t k)
{
    tfx_layer *l = calloc(1, sizeof *l);
    assert_non_null(l);
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", ops->base_name);
    l->n_inputs = k;
    l->inputs = calloc(k + 1, sizeof(int));
    l->in_shapes = calloc(k + 1, sizeof(tfx__shape));
    assert_non_null(l->inputs);
    assert_non_null(l->in_shapes);
    for (size_t j = 0; j < k; j++) {
        l->inputs[j] = (int)j + 1;
        l->in_shapes[j] = ins[j];
    }
    if (k) l->in = ins[0];
    if (ops->infer_n(l, ins, k, &l->out) != TFX_OK) {
        free(l->inputs);
        free(l->in_shapes);
        free(l);
        return NULL;
    }
    return l;
}

static void free_fake(tfx_layer *l)
{
    if (!l) return;
    free(l->inputs);
    free(l->in_shapes);
    free(l);
}

static void expect_shape(tfx__shape s, int h, int w, int c, int is_flat)
{
    assert_int_equal(s.h, h);
    assert_int_equal(s.w, w);
    assert_int_equal(s.c, c);
    assert_int_equal(s.flat, is_flat);
}

/* infer_n refuses with `code` and a message containing every string of want (NULL-terminated). */
static void expect_refused(const tfx__layer_ops *ops, const tfx__shape *ins, size_t k, int code, const char *const *want)
{
    tfx__shape out;
    tfx_layer dummy;
    memset(&dummy, 0, sizeof dummy);
    assert_int_equal(ops->infer_n(&dummy, ins, k, &out), code);
    for (; *want; want++) {
        if (!strstr(last_message(), *want)) print_error("message \"%s\" lacks \"%s\"\n", last_message(), *want);
        assert_non_null(strstr(last_message(), *want));
    }
}

static void test_registry_and_traits(void **state)
{
    (void)state;
    static const struct {
        const tfx__layer_ops *ops;
        int kind;
        const char *type, *base;
    } kinds[] = {{&tfx__add_ops, TFX_LAYER_ADD, "Add", "add"},
                 {&tfx__concatenate_ops, TFX_LAYER_CONCATENATE, "Concatenate", "concatenate"},
                 {&tfx__multiply_ops, TFX_LAYER_MULTIPLY, "Multiply", "multiply"}};
    for (size_t i = 0; i < 3; i++) {
        const tfx__layer_ops *o = kinds[i].ops;
        assert_ptr_equal(tfx__layer_ops_for_kind(kinds[i].kind), o);
        assert_int_equal(o->kind, kinds[i].kind);
        assert_string_equal(o->type_name, kinds[i].type);
        assert_string_equal(o->base_name, kinds[i].base);
        assert_int_equal(o->traits, TFX__TRAIT_MULTI_INPUT);
        assert_non_null(o->infer_n);
        assert_non_null(o->forward_n);
        assert_non_null(o->backward_n);
        assert_null(o->infer);
        assert_null(o->forward);
        assert_null(o->backward);
        assert_null(o->counts); /* no weights */
        assert_null(o->box_forward); /* occlusion's incremental path stops before them */
        assert_int_equal(o->alias_output, 0);
        /* saved with an empty record (the graph's edges are stored apart) */
        assert_int_equal(o->config_bytes, 0);
        assert_non_null(o->config_read);
        tfx__layer_config c;
        memset(&c, 0, sizeof c);
        uint8_t none = 0;
        OK(o->config_read(&none, &c));
    }
}

static void test_shapes(void **state)
{
    (void)state;
    /* Add: equal shapes only */
    {
        tfx__shape ins[3] = {map(8, 8, 16), map(8, 8, 16), map(8, 8, 16)};
        tfx_layer *l = fake_layer(&tfx__add_ops, ins, 3);
        assert_non_null(l);
        expect_shape(l->out, 8, 8, 16, 0);
        free_fake(l);
        tfx__shape fl[2] = {flat(5), flat(5)};
        l = fake_layer(&tfx__add_ops, fl, 2);
        assert_non_null(l);
        expect_shape(l->out, 1, 1, 5, 1);
        free_fake(l);
        tfx__shape bad[2] = {map(8, 8, 32), map(8, 8, 16)};
        static const char *const w1[] = {"input 1 has shape 8x8x16, input 0 has 8x8x32", "Add", NULL};
        expect_refused(&tfx__add_ops, bad, 2, TFX_ESHAPE, w1);
        tfx__shape bad2[3] = {map(4, 4, 2), map(4, 4, 2), map(4, 5, 2)};
        static const char *const w2[] = {"input 2 has shape 4x5x2, input 0 has 4x4x2", NULL};
        expect_refused(&tfx__add_ops, bad2, 3, TFX_ESHAPE, w2);
        tfx__shape bad3[2] = {map(1, 1, 6), flat(6)}; /* same size, different rank: Keras refuses too */
        static const char *const w3[] = {"input 1 has shape flat 6, input 0 has 1x1x6", NULL};
        expect_refused(&tfx__add_ops, bad3, 2, TFX_ESHAPE, w3);
    }
    /* Concatenate: channels add up, height, width and rank must agree */
    {
        tfx__shape ins[3] = {map(5, 4, 2), map(5, 4, 3), map(5, 4, 7)};
        tfx_layer *l = fake_layer(&tfx__concatenate_ops, ins, 3);
        assert_non_null(l);
        expect_shape(l->out, 5, 4, 12, 0);
        free_fake(l);
        tfx__shape fl[2] = {flat(3), flat(4)};
        l = fake_layer(&tfx__concatenate_ops, fl, 2);
        assert_non_null(l);
        expect_shape(l->out, 1, 1, 7, 1);
        free_fake(l);
        tfx__shape bad[2] = {map(8, 8, 3), map(4, 4, 3)};
        static const char *const w1[] = {"input 1 has shape 4x4x3, input 0 has 8x8x3", "Concatenate", "height", NULL};
        expect_refused(&tfx__concatenate_ops, bad, 2, TFX_ESHAPE, w1);
        tfx__shape bad2[2] = {map(1, 1, 3), flat(3)};
        static const char *const w2[] = {"input 1 has shape flat 3, input 0 has 1x1x3", "flat", NULL};
        expect_refused(&tfx__concatenate_ops, bad2, 2, TFX_ESHAPE, w2);
        tfx__shape big[2] = {map(1, 1, TFX__MAX_DIM), map(1, 1, 1)};
        static const char *const w3[] = {"channels", NULL};
        expect_refused(&tfx__concatenate_ops, big, 2, TFX_ESHAPE, w3);
    }
    /* Multiply: equal shapes or a 1x1xC / flat C gate beside full maps of C channels */
    {
        tfx__shape ins[3] = {map(1, 1, 4), map(6, 5, 4), flat(4)};
        tfx_layer *l = fake_layer(&tfx__multiply_ops, ins, 3);
        assert_non_null(l);
        expect_shape(l->out, 6, 5, 4, 0);
        free_fake(l);
        tfx__shape full[2] = {map(6, 5, 4), map(6, 5, 4)};
        l = fake_layer(&tfx__multiply_ops, full, 2);
        assert_non_null(l);
        expect_shape(l->out, 6, 5, 4, 0);
        free_fake(l);
        tfx__shape fl[2] = {flat(4), flat(4)};
        l = fake_layer(&tfx__multiply_ops, fl, 2);
        assert_non_null(l);
        expect_shape(l->out, 1, 1, 4, 1);
        free_fake(l);
        tfx__shape bad[2] = {map(6, 5, 4), map(1, 1, 3)}; /* gate of the wrong width */
        static const char *const w1[] = {"input 1 has shape 1x1x3, input 0 has 6x5x4", "Multiply", NULL};
        expect_refused(&tfx__multiply_ops, bad, 2, TFX_ESHAPE, w1);
        tfx__shape bad2[3] = {map(1, 1, 4), map(6, 5, 4), map(5, 6, 4)}; /* two full shapes */
        static const char *const w2[] = {"input 2 has shape 5x6x4, input 1 has 6x5x4", NULL};
        expect_refused(&tfx__multiply_ops, bad2, 3, TFX_ESHAPE, w2);
        tfx__shape bad3[2] = {map(6, 1, 4), map(6, 5, 4)}; /* a row is not a gate */
        static const char *const w3[] = {"input 0 has shape 6x1x4, input 1 has 6x5x4", NULL};
        expect_refused(&tfx__multiply_ops, bad3, 2, TFX_ESHAPE, w3);
        tfx__shape bad4[2] = {flat(4), map(1, 1, 4)}; /* nothing larger to broadcast over */
        static const char *const w4[] = {"input 1 has shape 1x1x4, input 0 has flat 4", NULL};
        expect_refused(&tfx__multiply_ops, bad4, 2, TFX_ESHAPE, w4);
    }
    /* fewer than two inputs */
    const tfx__layer_ops *all[3] = {&tfx__add_ops, &tfx__concatenate_ops, &tfx__multiply_ops};
    tfx__shape one[1] = {map(2, 2, 2)};
    static const char *const w[] = {"at least 2 inputs", NULL};
    for (int i = 0; i < 3; i++) {
        expect_refused(all[i], one, 1, TFX_EINVAL, w);
        expect_refused(all[i], one, 0, TFX_EINVAL, w);
    }
}

/* Random inputs for a fake layer: k buffers of n samples each, dyadic (exact sums and products). */
static float **make_inputs(const tfx_layer *l, size_t n, tfx__rng *rng, int bits)
{
    float **xs = calloc(l->n_inputs, sizeof *xs);
    assert_non_null(xs);
    for (size_t j = 0; j < l->n_inputs; j++) {
        size_t cnt = n * tfx__shape_size(l->in_shapes[j]);
        xs[j] = malloc((cnt + 1) * sizeof(float));
        assert_non_null(xs[j]);
        fill_grid(rng, xs[j], cnt, -1.0, 1.0, bits);
    }
    return xs;
}

static void free_inputs(float **xs, size_t k)
{
    for (size_t j = 0; j < k; j++) free(xs[j]);
    free(xs);
}

/* y of sample b at (p, c) from the definition. */
static float naive_out(const tfx_layer *l, float *const *xs, size_t b, size_t p, size_t c)
{
    const size_t P = (size_t)l->out.h * l->out.w;
    switch (l->ops->kind) {
    case TFX_LAYER_ADD: {
        float s = 0.0f;
        for (size_t j = 0; j < l->n_inputs; j++) s += xs[j][(b * P + p) * l->out.c + c];
        return s;
    }
    case TFX_LAYER_CONCATENATE: {
        size_t off = 0;
        for (size_t j = 0;; j++) {
            size_t cj = (size_t)l->in_shapes[j].c;
            if (c < off + cj) return xs[j][(b * P + p) * cj + (c - off)];
            off += cj;
        }
    }
    default: {
        float s = 1.0f;
        for (size_t j = 0; j < l->n_inputs; j++) {
            int gate = tfx__shape_size(l->in_shapes[j]) != tfx__shape_size(l->out);
            s *= gate ? xs[j][b * l->out.c + c] : xs[j][(b * P + p) * l->out.c + c];
        }
        return s;
    }
    }
}

/* Forward against the definition, then each input's gradient against central differences of
 * L = sum r * y (L is linear in every single input value: the differences are exact but for
 * the float forward's rounding). The guided and deconvnet rules act at activations only: the
 * same gradient. dy is left unchanged. */
static void check_layer(const tfx__layer_ops *ops, const tfx__shape *ins, size_t k, size_t n, uint64_t seed)
{
    tfx_layer *l = fake_layer(ops, ins, k);
    assert_non_null(l);
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    float **xs = make_inputs(l, n, &rng, 5);
    const size_t S = tfx__shape_size(l->out), total = n * S, P = (size_t)l->out.h * l->out.w;
    float *y = malloc(total * sizeof(float)), *r = malloc(total * sizeof(float)), *r0 = malloc(total * sizeof(float));
    assert_true(y && r && r0);
    fill_grid(&rng, r, total, -1.0, 1.0, 5);
    memcpy(r0, r, total * sizeof(float));
    tfx__workspace ws = {NULL, 0};
    tfx__layer_run run = {0, &rng, &ws, 1};
    OK(ops->forward_n(l, &run, (const float *const *)xs, y, n));
    for (size_t b = 0; b < n; b++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < (size_t)l->out.c; c++)
                assert_float_equal(y[(b * P + p) * l->out.c + c], naive_out(l, xs, b, p, c), 0.0f);

    float **dxs = calloc(k, sizeof *dxs), **dxs2 = calloc(k, sizeof *dxs2);
    assert_true(dxs && dxs2);
    for (size_t j = 0; j < k; j++) {
        size_t cnt = n * tfx__shape_size(l->in_shapes[j]);
        dxs[j] = malloc(cnt * sizeof(float));
        dxs2[j] = malloc(cnt * sizeof(float));
        assert_true(dxs[j] && dxs2[j]);
        for (size_t i = 0; i < cnt; i++) dxs[j][i] = NAN; /* every value must be written */
    }
    OK(ops->backward_n(l, &run, (const float *const *)xs, y, r, dxs, n, TFX__BW_PARAM_GRADS, NULL));
    assert_memory_equal(r, r0, total * sizeof(float));
    double worst = 0.0;
    float *y2 = malloc(total * sizeof(float));
    assert_non_null(y2);
    for (size_t j = 0; j < k; j++) {
        size_t cnt = n * tfx__shape_size(l->in_shapes[j]);
        for (size_t i = 0; i < cnt; i++) {
            const float orig = xs[j][i], h = 0.25f;
            double lp = 0.0, lm = 0.0;
            xs[j][i] = orig + h;
            OK(ops->forward_n(l, &run, (const float *const *)xs, y2, n));
            for (size_t q = 0; q < total; q++) lp += (double)r[q] * y2[q];
            xs[j][i] = orig - h;
            OK(ops->forward_n(l, &run, (const float *const *)xs, y2, n));
            for (size_t q = 0; q < total; q++) lm += (double)r[q] * y2[q];
            xs[j][i] = orig;
            double num = (lp - lm) / (2.0 * h), e = rel_err(dxs[j][i], num);
            if (e > 1e-5) print_error("%s: input %zu[%zu]: analytic %.8g numeric %.8g\n", ops->type_name, j, i,
                                      (double)dxs[j][i], num);
            worst = fmax(worst, e);
        }
    }
    print_message("  %s of %zu inputs, n %zu: gradient max err %.2e\n", ops->type_name, k, n, worst);
    assert_true(worst <= 1e-5);
    /* the same under the guided and deconvnet rules, and with some inputs not wanted */
    for (int kind = TFX__RULE_GRADIENT; kind <= TFX__RULE_DECONVNET; kind++) {
        tfx__rule rule = {kind, 0.5f, 1.0f, 0.0f, 0.0f, 1.0f};
        float *sel[8];
        assert_true(k <= 8);
        for (size_t j = 0; j < k; j++) sel[j] = (j + (size_t)kind) % 2 ? dxs2[j] : NULL;
        OK(ops->backward_n(l, &run, (const float *const *)xs, y, r, sel, n, 0, &rule));
        for (size_t j = 0; j < k; j++)
            if (sel[j]) assert_memory_equal(dxs2[j], dxs[j], n * tfx__shape_size(l->in_shapes[j]) * sizeof(float));
    }
    for (size_t j = 0; j < k; j++) {
        free(dxs[j]);
        free(dxs2[j]);
    }
    free(dxs);
    free(dxs2);
    free(y2);
    free(y);
    free(r);
    free(r0);
    free_inputs(xs, k);
    tfx__free(ws.data);
    free_fake(l);
}

static void test_layer_gradients(void **state)
{
    (void)state;
    tfx__shape a2[2] = {map(3, 4, 5), map(3, 4, 5)};
    check_layer(&tfx__add_ops, a2, 2, 3, 1);
    tfx__shape a4[4] = {flat(7), flat(7), flat(7), flat(7)};
    check_layer(&tfx__add_ops, a4, 4, 2, 2);
    tfx__shape c3[3] = {map(3, 2, 2), map(3, 2, 5), map(3, 2, 1)};
    check_layer(&tfx__concatenate_ops, c3, 3, 3, 3);
    tfx__shape cf[2] = {flat(3), flat(6)};
    check_layer(&tfx__concatenate_ops, cf, 2, 2, 4);
    tfx__shape m2[2] = {map(4, 3, 5), map(4, 3, 5)};
    check_layer(&tfx__multiply_ops, m2, 2, 2, 5);
    tfx__shape mse[2] = {map(4, 3, 5), map(1, 1, 5)}; /* squeeze-and-excitation */
    check_layer(&tfx__multiply_ops, mse, 2, 3, 6);
    tfx__shape m4[4] = {flat(5), map(3, 3, 5), map(1, 1, 5), map(3, 3, 5)}; /* gate first, two gates */
    check_layer(&tfx__multiply_ops, m4, 4, 2, 7);
    tfx__shape mf[3] = {flat(6), flat(6), flat(6)};
    check_layer(&tfx__multiply_ops, mf, 3, 2, 8);
}

/* The same buffer as two inputs (Add(x, x), Multiply(x, x)): each input's gradient as if they
 * were different tensors; the engine sums them. */
static void test_layer_same_tensor_twice(void **state)
{
    (void)state;
    enum { N = 2, S = 12 };
    float x[N * S], y[N * S], dy[N * S], d0[N * S], d1[N * S];
    tfx__rng rng;
    tfx__rng_seed(&rng, 9);
    fill_grid(&rng, x, N * S, -1.0, 1.0, 4);
    fill_grid(&rng, dy, N * S, -1.0, 1.0, 4);
    tfx__shape ins[2] = {map(2, 2, 3), map(2, 2, 3)};
    const float *xs[2] = {x, x};
    float *dxs[2] = {d0, d1};
    tfx__workspace ws = {NULL, 0};
    tfx__layer_run run = {0, &rng, &ws, 1};
    tfx_layer *a = fake_layer(&tfx__add_ops, ins, 2), *m = fake_layer(&tfx__multiply_ops, ins, 2);
    OK(a->ops->forward_n(a, &run, xs, y, N));
    for (size_t i = 0; i < N * S; i++) assert_float_equal(y[i], 2.0f * x[i], 0.0f);
    OK(a->ops->backward_n(a, &run, xs, y, dy, dxs, N, 0, NULL));
    assert_memory_equal(d0, dy, sizeof dy);
    assert_memory_equal(d1, dy, sizeof dy);
    OK(m->ops->forward_n(m, &run, xs, y, N));
    for (size_t i = 0; i < N * S; i++) assert_float_equal(y[i], x[i] * x[i], 0.0f);
    OK(m->ops->backward_n(m, &run, xs, y, dy, dxs, N, 0, NULL));
    for (size_t i = 0; i < N * S; i++) { /* d(x^2)/dx = 2 x dy, in two halves */
        assert_float_equal(d0[i], dy[i] * x[i], 0.0f);
        assert_float_equal(d1[i], dy[i] * x[i], 0.0f);
    }
    tfx__free(ws.data);
    free_fake(a);
    free_fake(m);
}

/* LRP at the layer: Add's proportional rule (conservation with eps = 0, the stabiliser's share
 * otherwise, nothing passed where the sum is 0), the same formula under z+, alpha-beta and zB,
 * Concatenate's slices, Multiply's all-to-the-signal. */
static void test_layer_lrp(void **state)
{
    (void)state;
    enum { N = 3, K = 3 };
    tfx__shape ins[K] = {map(4, 3, 5), map(4, 3, 5), map(4, 3, 5)};
    tfx_layer *l = fake_layer(&tfx__add_ops, ins, K);
    const size_t total = N * tfx__shape_size(l->out);
    tfx__rng rng;
    tfx__rng_seed(&rng, 11);
    float **xs = make_inputs(l, N, &rng, 8);
    /* non-degenerate sums: |z| >= 2^-4 (shift x_0 away where z is small) */
    for (size_t i = 0; i < total; i++) {
        float z = xs[0][i] + xs[1][i] + xs[2][i];
        if (fabsf(z) < 0.0625f) xs[0][i] += z >= 0.0f ? 0.125f : -0.125f;
    }
    float *y = malloc(total * sizeof(float)), *R = malloc(total * sizeof(float));
    float *dx[K], *ref[K];
    for (int j = 0; j < K; j++) {
        dx[j] = malloc(total * sizeof(float));
        ref[j] = malloc(total * sizeof(float));
        assert_true(dx[j] && ref[j]);
    }
    assert_true(y && R);
    fill_grid(&rng, R, total, -1.0, 1.0, 8);
    tfx__workspace ws = {NULL, 0};
    tfx__layer_run run = {0, &rng, &ws, 1};
    OK(l->ops->forward_n(l, &run, (const float *const *)xs, y, N));

    /* LRP-0: sum_j R_j == R at every element, each R_j = x_j R / z */
    tfx__rule lrp0 = {TFX__RULE_LRP_0, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f};
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, dx, N, 0, &lrp0));
    double worst = 0.0, total_in = 0.0, total_out = 0.0;
    for (size_t i = 0; i < total; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) {
            s += dx[j][i];
            double want = (double)xs[j][i] * R[i] / y[i];
            assert_true(fabs(dx[j][i] - want) <= 1e-6 * fmax(1.0, fabs(want)));
        }
        worst = fmax(worst, fabs(s - R[i]) / fmax(fabs(R[i]), 1e-3));
        total_in += s;
        total_out += R[i];
    }
    print_message("  Add LRP-0: per-element conservation err %.2e, totals %.9g vs %.9g\n", worst, total_in, total_out);
    assert_true(worst <= 1e-5);
    assert_true(fabs(total_in - total_out) <= 1e-5 * fabs(total_out) + 1e-6);

    /* LRP-epsilon: R_j = x_j R / (z + eps sign z); the inputs keep z / (z + eps sign z) of R */
    tfx__rule eps = {TFX__RULE_LRP_EPSILON, 0.25f, 1.0f, 0.0f, 0.0f, 1.0f};
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, ref, N, 0, &eps));
    for (size_t i = 0; i < total; i++) {
        double z = y[i], d = z + (z >= 0.0 ? 0.25 : -0.25), s = 0.0;
        for (int j = 0; j < K; j++) {
            double want = (double)xs[j][i] * R[i] / d;
            assert_true(fabs(ref[j][i] - want) <= 1e-6 * fmax(1.0, fabs(want)));
            s += ref[j][i];
        }
        assert_true(fabs(s - R[i] * z / d) <= 1e-5);
    }
    /* z+, alpha-beta, zB: the epsilon formula with the rule's epsilon, bit for bit */
    static const int others[] = {TFX__RULE_LRP_ZPLUS, TFX__RULE_LRP_ALPHA_BETA, TFX__RULE_LRP_ZB};
    for (int o = 0; o < 3; o++) {
        tfx__rule r = {others[o], 0.25f, 2.0f, 1.0f, -1.0f, 1.0f};
        OK(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, dx, N, 0, &r));
        for (int j = 0; j < K; j++) assert_memory_equal(dx[j], ref[j], total * sizeof(float));
    }
    /* a bad epsilon is refused naming the layer */
    tfx__rule neg = {TFX__RULE_LRP_EPSILON, -1.0f, 1.0f, 0.0f, 0.0f, 1.0f};
    assert_int_equal(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, dx, N, 0, &neg), TFX_EINVAL);
    assert_non_null(strstr(last_message(), "'add'"));
    /* z = 0 under LRP-0: nothing to pass down (no division by zero) */
    xs[0][0] = 0.5f, xs[1][0] = -0.25f, xs[2][0] = -0.25f;
    OK(l->ops->forward_n(l, &run, (const float *const *)xs, y, N));
    assert_float_equal(y[0], 0.0f, 0.0f);
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, dx, N, 0, &lrp0));
    for (int j = 0; j < K; j++) assert_float_equal(dx[j][0], 0.0f, 0.0f);
    free_inputs(xs, K);
    free_fake(l);

    /* Concatenate: relevance sliced by channels, exactly the gradient */
    tfx__shape cins[2] = {map(4, 3, 2), map(4, 3, 3)};
    l = fake_layer(&tfx__concatenate_ops, cins, 2);
    xs = make_inputs(l, N, &rng, 8);
    const size_t ctotal = N * tfx__shape_size(l->out);
    float *cy = malloc(ctotal * sizeof(float)), *cR = malloc(ctotal * sizeof(float));
    assert_true(cy && cR);
    fill_grid(&rng, cR, ctotal, -1.0, 1.0, 8);
    OK(l->ops->forward_n(l, &run, (const float *const *)xs, cy, N));
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, cy, cR, ref, N, 0, NULL));
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, cy, cR, dx, N, 0, &eps));
    double sin = 0.0, sout = 0.0;
    for (int j = 0; j < 2; j++) {
        size_t cnt = N * tfx__shape_size(cins[j]);
        assert_memory_equal(dx[j], ref[j], cnt * sizeof(float));
        for (size_t i = 0; i < cnt; i++) sin += dx[j][i];
    }
    for (size_t i = 0; i < ctotal; i++) sout += cR[i];
    assert_true(fabs(sin - sout) <= 1e-9);
    free(cy);
    free(cR);
    free_inputs(xs, 2);
    free_fake(l);

    /* Multiply: the first full input (the signal) gets all, the gate and the other factors none */
    tfx__shape mins[3] = {map(1, 1, 5), map(4, 3, 5), map(4, 3, 5)};
    l = fake_layer(&tfx__multiply_ops, mins, 3);
    xs = make_inputs(l, N, &rng, 8);
    OK(l->ops->forward_n(l, &run, (const float *const *)xs, y, N));
    for (int j = 0; j < 3; j++) memset(dx[j], 0x7f, total * sizeof(float));
    OK(l->ops->backward_n(l, &run, (const float *const *)xs, y, R, dx, N, 0, &lrp0));
    assert_memory_equal(dx[1], R, total * sizeof(float));
    for (size_t i = 0; i < N * 5; i++) assert_float_equal(dx[0][i], 0.0f, 0.0f);
    for (size_t i = 0; i < total; i++) assert_float_equal(dx[2][i], 0.0f, 0.0f);
    free_inputs(xs, 3);
    free_fake(l);

    for (int j = 0; j < K; j++) {
        free(dx[j]);
        free(ref[j]);
    }
    free(y);
    free(R);
    tfx__free(ws.data);
}

/* ====================================================================================== */
/* Graph level: the public API and the engine                                             */
/* ====================================================================================== */

static tfx_layer *conv(tfx_model *m, int filters, int k, int stride, int act, int bias, const char *name)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = stride;
    o.padding = TFX_PADDING_SAME;
    o.activation = act;
    o.use_bias = bias;
    o.name = name;
    tfx_layer *l = NULL;
    OK(tfx_model_add_conv2d(m, &o, &l));
    return l;
}

static tfx_layer *dense(tfx_model *m, int units, int act, int bias, const char *name)
{
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    o.units = units;
    o.activation = act;
    o.use_bias = bias;
    o.name = name;
    tfx_layer *l = NULL;
    OK(tfx_model_add_dense(m, &o, &l));
    return l;
}

static tfx_layer *merge(tfx_model *m, int kind, tfx_layer *const *in, size_t n, const char *name)
{
    tfx_layer *l = NULL;
    if (kind == TFX_LAYER_ADD) OK(tfx_model_add_add(m, in, n, name, &l));
    else if (kind == TFX_LAYER_CONCATENATE) OK(tfx_model_add_concatenate(m, in, n, name, &l));
    else OK(tfx_model_add_multiply(m, in, n, name, &l));
    assert_non_null(l);
    assert_int_equal(tfx_layer_get_kind(l), kind);
    /* the inputs read back as given */
    const tfx_layer *got[8];
    size_t count = 0;
    assert_true(n <= 8);
    OK(tfx_layer_inputs(l, got, 8, &count));
    assert_int_equal(count, n);
    for (size_t j = 0; j < n; j++) assert_ptr_equal(got[j], in[j]);
    return l;
}

/* Weights of every layer with weights on a dyadic grid (Keras layout through the public API). */
static void randomise(tfx_model *m, tfx__rng *rng)
{
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t k = 0, b = 0;
        if (tfx_layer_weight_sizes(l, &k, &b) != TFX_OK || k + b == 0) continue;
        float *w = malloc((k + b) * sizeof(float));
        assert_non_null(w);
        fill_grid(rng, w, k, -0.5, 0.5, 6);
        fill_grid(rng, w + k, b, -0.5, 0.5, 10);
        OK(tfx_layer_set_weights(l, w, b ? w + k : NULL));
        free(w);
    }
}

typedef struct gctx {
    tfx_model *m;
    float *x;
    const float *r;
    size_t n, top_size;
} gctx;

static double loss(gctx *c)
{
    OK(tfx__model_forward(c->m, c->x, c->n, 0));
    const float *t = tfx__model_layer_output(c->m, tfx_model_layer_count(c->m) - 1);
    double s = 0.0;
    for (size_t j = 0; j < c->top_size; j++) s += (double)c->r[j] * t[j];
    return s;
}

/* dL/d*p: central differences at h, h/2, h/4 (actual float steps), Richardson-extrapolated
 * twice (truncation O(h^6); the activations are smooth). */
static double numeric(gctx *c, float *p, double h0)
{
    const float orig = *p;
    double d[3];
    for (int s = 0; s < 3; s++) {
        double h = h0 / (double)(1 << s);
        *p = (float)(orig + h);
        double hp = (double)*p - orig, lp = loss(c);
        *p = (float)(orig - h);
        double hm = orig - (double)*p, lm = loss(c);
        d[s] = (lp - lm) / (hp + hm);
    }
    *p = orig;
    double r1 = (4.0 * d[1] - d[0]) / 3.0, r2 = (4.0 * d[2] - d[1]) / 3.0;
    return (16.0 * r2 - r1) / 15.0;
}

/* Coordinates checked per tensor: all up to 120 (12 under valgrind), else an even sample. */
static size_t coord_cap(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    return v && *v && strcmp(v, "0") != 0 ? 12 : 120;
}

static double check_tensor(gctx *c, float *p, const float *g, size_t count, const char *what, const char *label)
{
    double worst = 0.0;
    const size_t cap = coord_cap(), step = count > cap ? (count + cap - 1) / cap : 1;
    for (size_t i = 0; i < count; i += step) {
        double num = numeric(c, p + i, 0.25), e = rel_err(g[i], num);
        if (e > TOL || (getenv("GC_VERBOSE") && e > 2e-4)) print_error("%s: %s[%zu]: analytic %.8g numeric %.8g (err %.3g)\n", label, what, i, (double)g[i],
                                 num, e);
        worst = fmax(worst, e);
    }
    return worst;
}

/* Input and parameter gradients of L = sum r * output against finite differences. */
static void gradcheck_graph(tfx_model *m, size_t n, uint64_t seed, const char *label)
{
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    randomise(m, &rng);
    const size_t in_count = n * tfx__shape_size(m->input);
    const size_t top = tfx_model_layer_count(m) - 1, k = n * tfx__shape_size(m->layers[top]->out);
    float *x = malloc(in_count * sizeof(float)), *r = malloc(k * sizeof(float));
    assert_true(x && r);
    fill_grid(&rng, x, in_count, -1.0, 1.0, 8);
    fill_grid(&rng, r, k, -1.0, 1.0, 6);
    gctx c = {m, x, r, n, k};
    (void)loss(&c);
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = NAN; /* every gradient must be written */
    float *gin = NULL;
    OK(tfx__model_backward(m, n, top, r, 0, 1, TFX__BW_PARAM_GRADS, NULL, &gin));
    assert_non_null(gin);
    float *ga = malloc((in_count + m->n_params) * sizeof(float));
    assert_non_null(ga);
    memcpy(ga, gin, in_count * sizeof(float));
    if (m->n_params) memcpy(ga + in_count, m->grads, m->n_params * sizeof(float));
    for (size_t i = 0; i < in_count + m->n_params; i++) assert_false(isnan(ga[i]));
    double ein = check_tensor(&c, x, ga, in_count, "input", label);
    double epar = check_tensor(&c, m->params, ga + in_count, m->n_params, "param", label);
    print_message("  gradcheck %-52s input %.2e  params %.2e\n", label, ein, epar);
    assert_true(ein <= TOL);
    assert_true(epar <= TOL);
    free(ga);
    free(x);
    free(r);
}

/* One tensor read by three layers: c0 feeds c1 (3x3), c2 (1x1) and the Add of all three. The
 * gradient of c0's output is the sum of three consumers' gradients; c0's kernel and the input
 * gradient check it. */
static void test_fan_out_three(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 5, 6, 2));
    tfx_layer *c0 = conv(m, 3, 3, 1, TFX_ACTIVATION_TANH, 1, "c0");
    tfx_layer *c1 = conv(m, 3, 3, 1, TFX_ACTIVATION_TANH, 1, "c1");
    OK(tfx_model_set_next_input(m, c0));
    tfx_layer *c2 = conv(m, 3, 1, 1, TFX_ACTIVATION_SIGMOID, 1, "c2");
    tfx_layer *in[3] = {c1, c2, c0};
    merge(m, TFX_LAYER_ADD, in, 3, "sum");
    OK(tfx_model_add_flatten(m, NULL, NULL));
    dense(m, 3, TFX_ACTIVATION_TANH, 1, "head");
    gradcheck_graph(m, 2, 1701, "c0 -> {c1, c2, Add(c1, c2, c0)} -> Dense");
    tfx_model_free(m);

    /* the fan-out in front of a Concatenate, read twice by it, with the model input as a branch */
    OK(tfx_model_new(&m, 4, 4, 2));
    c0 = conv(m, 2, 3, 1, TFX_ACTIVATION_TANH, 1, "c0");
    c1 = conv(m, 3, 3, 1, TFX_ACTIVATION_LINEAR, 1, "c1");
    tfx_layer *cin[4] = {c0, c1, NULL, c0};
    tfx_layer *cat = merge(m, TFX_LAYER_CONCATENATE, cin, 4, NULL);
    int shape[3];
    OK(tfx_layer_output_shape(cat, shape));
    assert_int_equal(shape[2], 2 + 3 + 2 + 2);
    conv(m, 2, 3, 2, TFX_ACTIVATION_TANH, 1, NULL);
    OK(tfx_model_add_flatten(m, NULL, NULL));
    dense(m, 2, TFX_ACTIVATION_LINEAR, 0, NULL);
    gradcheck_graph(m, 3, 1702, "Concatenate(c0, c1(c0), input, c0) -> conv -> Dense");
    tfx_model_free(m);
}

/* Concatenate of three branches with 2, 3 and 5 channels read from the model input, then Add(x, x). */
static void test_concatenate_and_add_twice(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 5, 4, 3));
    tfx_layer *a = conv(m, 2, 3, 1, TFX_ACTIVATION_TANH, 1, "a");
    OK(tfx_model_set_next_input(m, NULL));
    tfx_layer *b = conv(m, 3, 1, 1, TFX_ACTIVATION_LINEAR, 1, "b");
    OK(tfx_model_set_next_input(m, NULL));
    tfx_layer *c = conv(m, 5, 3, 1, TFX_ACTIVATION_SIGMOID, 0, "c");
    tfx_layer *in[3] = {a, b, c};
    tfx_layer *cat = merge(m, TFX_LAYER_CONCATENATE, in, 3, "cat");
    assert_string_equal(tfx_layer_type_name(cat), "Concatenate");
    int shape[3];
    OK(tfx_layer_output_shape(cat, shape));
    assert_int_equal(shape[0], 5);
    assert_int_equal(shape[1], 4);
    assert_int_equal(shape[2], 10);
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    dense(m, 4, TFX_ACTIVATION_TANH, 1, NULL);
    gradcheck_graph(m, 3, 1801, "Concatenate(a 2ch, b 3ch, c 5ch) -> GAP -> Dense");
    tfx_model_free(m);

    /* flat inputs concatenate their units: two Dense heads of a GAP, then a Dense */
    OK(tfx_model_new(&m, 4, 4, 3));
    conv(m, 4, 3, 1, TFX_ACTIVATION_TANH, 1, NULL);
    tfx_layer *gap = NULL;
    OK(tfx_model_add_global_average_pooling2d(m, NULL, &gap));
    tfx_layer *u = dense(m, 3, TFX_ACTIVATION_TANH, 1, NULL);
    OK(tfx_model_set_next_input(m, gap));
    tfx_layer *v = dense(m, 2, TFX_ACTIVATION_SIGMOID, 1, NULL);
    tfx_layer *uv[3] = {u, v, gap};
    cat = merge(m, TFX_LAYER_CONCATENATE, uv, 3, NULL);
    OK(tfx_layer_output_shape(cat, shape));
    assert_int_equal(shape[0], 1);
    assert_int_equal(shape[1], 1);
    assert_int_equal(shape[2], 3 + 2 + 4);
    dense(m, 3, TFX_ACTIVATION_LINEAR, 1, NULL);
    gradcheck_graph(m, 2, 1803, "Concatenate(flat 3, flat 2, flat 4) -> Dense");
    tfx_model_free(m);

    OK(tfx_model_new(&m, 4, 5, 2));
    tfx_layer *x = conv(m, 3, 3, 1, TFX_ACTIVATION_TANH, 1, "x");
    tfx_layer *xx[2] = {x, x};
    tfx_layer *s = merge(m, TFX_LAYER_ADD, xx, 2, NULL);
    assert_string_equal(tfx_layer_name(s), "add");
    OK(tfx_model_add_flatten(m, NULL, NULL));
    dense(m, 3, TFX_ACTIVATION_LINEAR, 1, NULL);
    gradcheck_graph(m, 2, 1802, "Add(x, x) -> Dense");
    /* Add(x, x) is 2x: the output equals x's doubled */
    float img[4 * 5 * 2];
    tfx__rng rng;
    tfx__rng_seed(&rng, 3);
    fill_grid(&rng, img, sizeof img / sizeof img[0], -1.0, 1.0, 6);
    OK(tfx__model_forward(m, img, 1, 0));
    const float *xo = tfx__model_layer_output(m, 0), *so = tfx__model_layer_output(m, 1);
    for (size_t i = 0; i < 4 * 5 * 3; i++) assert_float_equal(so[i], 2.0f * xo[i], 0.0f);
    tfx_model_free(m);
}

/* Squeeze-and-excitation: GlobalAveragePooling2D -> Dense -> Dense(sigmoid) -> Reshape(1, 1, C)
 * -> Multiply with the feature map; also with the flat gate (no Reshape) and with the gate first. */
static void test_squeeze_excitation(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        tfx_model *m;
        OK(tfx_model_new(&m, 6, 5, 2));
        tfx_layer *f = conv(m, 4, 3, 1, TFX_ACTIVATION_TANH, 1, "features");
        OK(tfx_model_add_global_average_pooling2d(m, "squeeze", NULL));
        dense(m, 2, TFX_ACTIVATION_TANH, 1, "reduce");
        tfx_layer *g = dense(m, 4, TFX_ACTIVATION_SIGMOID, 1, "expand");
        if (variant != 1) OK(tfx_model_add_reshape(m, 1, 1, -1, "gate", &g));
        tfx_layer *in[2] = {f, g};
        if (variant == 2) in[0] = g, in[1] = f;
        tfx_layer *mul = merge(m, TFX_LAYER_MULTIPLY, in, 2, "excite");
        int shape[3];
        OK(tfx_layer_output_shape(mul, shape));
        assert_int_equal(shape[0], 6);
        assert_int_equal(shape[1], 5);
        assert_int_equal(shape[2], 4);
        conv(m, 2, 3, 2, TFX_ACTIVATION_TANH, 1, NULL);
        OK(tfx_model_add_flatten(m, NULL, NULL));
        dense(m, 3, TFX_ACTIVATION_LINEAR, 1, NULL);
        static const char *const labels[] = {"SE block: Multiply(f, Reshape(gate))", "SE block: Multiply(f, flat gate)",
                                             "SE block: Multiply(Reshape(gate), f)"};
        gradcheck_graph(m, 2, 1900 + (uint64_t)variant, labels[variant]);
        tfx_model_free(m);
    }
    /* two full inputs and a gate */
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 3));
    tfx_layer *a = conv(m, 3, 3, 1, TFX_ACTIVATION_TANH, 1, NULL);
    OK(tfx_model_set_next_input(m, NULL));
    tfx_layer *b = conv(m, 3, 1, 1, TFX_ACTIVATION_SIGMOID, 1, NULL);
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    tfx_layer *g = dense(m, 3, TFX_ACTIVATION_SIGMOID, 1, NULL);
    tfx_layer *in[3] = {a, g, b};
    merge(m, TFX_LAYER_MULTIPLY, in, 3, NULL);
    OK(tfx_model_add_flatten(m, NULL, NULL));
    dense(m, 2, TFX_ACTIVATION_LINEAR, 1, NULL);
    gradcheck_graph(m, 2, 1950, "Multiply(a, gate(b), b) -> Dense");
    tfx_model_free(m);
}

/* Refused calls leave the model as it was and say why. */
static void expect_error(int rc, int code, const char *const *want)
{
    assert_int_equal(rc, code);
    for (; *want; want++) {
        if (!strstr(last_message(), *want)) print_error("message \"%s\" lacks \"%s\"\n", last_message(), *want);
        assert_non_null(strstr(last_message(), *want));
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    tfx_model *m, *other;
    OK(tfx_model_new(&m, 8, 8, 3));
    OK(tfx_model_new(&other, 8, 8, 3));
    tfx_layer *wide = conv(m, 32, 3, 1, TFX_ACTIVATION_RELU, 1, "wide");
    OK(tfx_model_set_next_input(m, NULL));
    tfx_layer *narrow = conv(m, 16, 3, 1, TFX_ACTIVATION_RELU, 1, "narrow");
    OK(tfx_model_set_next_input(m, NULL));
    tfx_layer *half = conv(m, 16, 3, 2, TFX_ACTIVATION_RELU, 1, "half");
    tfx_layer *foreign = conv(other, 16, 3, 1, TFX_ACTIVATION_RELU, 1, "foreign");
    tfx_layer *out = (tfx_layer *)0x1;
    const size_t layers = tfx_model_layer_count(m);

    tfx_layer *wn[2] = {wide, narrow};
    static const char *const add_msg[] = {"wide", "narrow", "8x8x32", "8x8x16", NULL};
    expect_error(tfx_model_add_add(m, wn, 2, NULL, &out), TFX_ESHAPE, add_msg);
    tfx_layer *nh[2] = {narrow, half};
    static const char *const cat_msg[] = {"narrow", "half", "8x8x16", "4x4x16", NULL};
    expect_error(tfx_model_add_concatenate(m, nh, 2, NULL, &out), TFX_ESHAPE, cat_msg);
    static const char *const mul_msg[] = {"wide", "narrow", "8x8x32", "8x8x16", NULL};
    expect_error(tfx_model_add_multiply(m, wn, 2, NULL, &out), TFX_ESHAPE, mul_msg);
    /* the model input as an input: named as such */
    tfx_layer *wi[2] = {wide, NULL};
    static const char *const in_msg[] = {"wide", "8x8x32", "8x8x3", NULL};
    expect_error(tfx_model_add_add(m, wi, 2, NULL, &out), TFX_ESHAPE, in_msg);

    static const char *const none[] = {NULL};
    for (int kind = 0; kind < 3; kind++) {
        int (*add)(tfx_model *, tfx_layer *const *, size_t, const char *, tfx_layer **) =
            kind == 0 ? tfx_model_add_add : kind == 1 ? tfx_model_add_concatenate : tfx_model_add_multiply;
        tfx_layer *nn[2] = {narrow, narrow};
        expect_error(add(m, nn, 1, NULL, &out), TFX_EINVAL, none); /* n < 2 */
        expect_error(add(m, nn, 0, NULL, &out), TFX_EINVAL, none);
        expect_error(add(m, NULL, 2, NULL, &out), TFX_EINVAL, none);
        expect_error(add(NULL, nn, 2, NULL, &out), TFX_EINVAL, none);
        tfx_layer *nf[2] = {narrow, foreign};
        expect_error(add(m, nf, 2, NULL, &out), TFX_EINVAL, none);
        tfx_layer *fn[2] = {foreign, narrow};
        expect_error(add(m, fn, 2, NULL, &out), TFX_EINVAL, none);
        /* a name already taken */
        expect_error(add(m, nn, 2, "narrow", &out), TFX_EINVAL, none);
    }
    assert_null(out); /* *out is NULL on failure, as every add function */
    assert_int_equal(tfx_model_layer_count(m), layers);
    static const char *const next_msg[] = {NULL};
    expect_error(tfx_model_set_next_input(m, foreign), TFX_EINVAL, next_msg);
    expect_error(tfx_model_set_next_input(NULL, NULL), TFX_EINVAL, next_msg);
    const tfx_layer *got[2];
    size_t count = 7;
    expect_error(tfx_layer_inputs(NULL, got, 2, &count), TFX_EINVAL, next_msg);
    /* a single-input layer reads one: itself counted, no more written than cap */
    OK(tfx_layer_inputs(half, got, 0, &count));
    assert_int_equal(count, 1);

    /* the model still builds after the refusals */
    tfx_layer *ok[2] = {narrow, narrow};
    tfx_layer *s = NULL;
    OK(tfx_model_add_add(m, ok, 2, NULL, &s));
    assert_int_equal(tfx_model_layer_count(m), layers + 1);
    tfx_model_free(other);
    tfx_model_free(m);
}

/* LRP through tfx_explain on a branching graph without biases: Conv -> {Conv, Conv 1x1} ->
 * Add (also reading the stem: three consumers) -> Flatten -> Dense. LRP-0 and a tiny epsilon
 * conserve relevance at every point of the walk; the input map sums to the recorded input
 * total. */
static void test_lrp_graph_conservation(void **state)
{
    (void)state;
    for (int three = 0; three < 2; three++) {
        tfx_model *m;
        OK(tfx_model_new(&m, 8, 8, 2));
        OK(tfx_model_set_seed(m, 5 + (uint64_t)three));
        tfx_layer *c0 = conv(m, 4, 3, 1, TFX_ACTIVATION_RELU, 0, "stem");
        tfx_layer *c1 = conv(m, 4, 3, 1, TFX_ACTIVATION_RELU, 0, "branch_a");
        OK(tfx_model_set_next_input(m, c0));
        tfx_layer *c2 = conv(m, 4, 1, 1, TFX_ACTIVATION_LINEAR, 0, "branch_b");
        tfx_layer *in[3] = {c1, c2, c0};
        merge(m, TFX_LAYER_ADD, in, three ? 3 : 2, "join");
        OK(tfx_model_add_flatten(m, NULL, NULL));
        dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0, "head");
        const size_t L = tfx_model_layer_count(m), N = 3, S = 8 * 8 * 2;
        float *x = malloc(N * S * sizeof(float));
        assert_non_null(x);
        tfx__rng rng;
        tfx__rng_seed(&rng, 77);
        for (size_t i = 0; i < N * S; i++) x[i] = (float)tfx__rng_uniform(&rng);
        for (int rule = 0; rule < 2; rule++) {
            tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
            o.method = TFX_METHOD_LRP;
            o.lrp_rule = rule ? TFX_LRP_EPSILON : TFX_LRP_0;
            o.lrp_epsilon = 1e-7f;
            tfx_attribution *a;
            OK(tfx_explain(m, x, N, &o, &a));
            for (size_t i = 0; i < N; i++) {
                double sums[16];
                size_t cnt = 0;
                OK(tfx_attribution_relevance_sums(a, i, sums, 16, &cnt));
                assert_int_equal(cnt, L + 1);
                const double Sc = fabs(sums[L]);
                assert_true(Sc > 1e-3);
                double gap = 0.0, t = 0.0;
                for (size_t j = 0; j < L; j++) gap = fmax(gap, fabs(sums[j] - sums[j + 1]) / Sc);
                const float *map = tfx_attribution_data(a, i);
                for (size_t j = 0; j < S; j++) t += map[j];
                print_message("  LRP-%s on Add of %d (image %zu): conservation gap %.2e, input total %.6g vs %.6g\n",
                              rule ? "epsilon 1e-7" : "0", three ? 3 : 2, i, gap, t, sums[0]);
                assert_true(gap <= 1e-4);
                assert_true(fabs(t - sums[0]) <= 1e-4 * Sc);
                assert_true(fabs(t - sums[L]) <= 1e-4 * Sc);
            }
            tfx_attribution_free(a);
        }
        free(x);
        tfx_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_and_traits),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_layer_gradients),
        cmocka_unit_test(test_layer_same_tensor_twice),
        cmocka_unit_test(test_layer_lrp),
        cmocka_unit_test(test_fan_out_three),
        cmocka_unit_test(test_concatenate_and_add_twice),
        cmocka_unit_test(test_squeeze_excitation),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_lrp_graph_conservation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
