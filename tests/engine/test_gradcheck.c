/* Finite-difference gradient checks of every layer kind and activation, through the model
 * engine (tfx__model_forward / tfx__model_backward), for input and parameter gradients.
 *
 * Loss: L = sum_j r_j * t_j with fixed random r, where t is the output of the top layer (or its
 * pre-activation with TFX__BW_SKIP_ACTIVATION). The analytical gradient is the backward pass
 * seeded with r, parameter gradients read from m->grads.
 *
 * Numerical gradient: central differences of the float forward, L accumulated in double, with
 * the actual float-rounded step sizes, refined by Richardson extrapolation over h, h/2, h/4
 * with h = 1/4 unless a test says why it picks another (truncation error O(h^6)). Large steps
 * keep the float rounding noise of the forward small relative to the difference.
 * Inputs, weights and r lie on dyadic grids (multiples of 2^-k) and the steps are powers of two,
 * so the linear stages (im2col + sgemm, sums) are exact in float and add no noise at all.
 *
 * Kinks (ReLU / leaky ReLU / ELU at 0, max-pool argmax changes) make central differences
 * meaningless across them. Every forward records a signature of all kink decisions; when a
 * coordinate's signature changes over the steps, the steps are halved until it does not, down
 * to 2^-12, and the coordinate is skipped only if even those cross (counted; a tensor fails if
 * more than a quarter of its coordinates are skipped). The "coarse" grid used with ReLU-like
 * activations (inputs odd multiples of 2^-3, weights multiples of 2^-2, biases odd multiples
 * of 2^-6) puts every pre-activation of the first layer at least 2^-6 away from 0; a step h
 * moves it by at most h, so steps below 2^-6 provably do not cross there (larger steps are
 * used wherever they do not cross). Max-pool tests without a conv in front use pairwise
 * distinct inputs (no ties).
 *
 * Error measure: err = |a - n| / max(|a|, |n|, FLOOR) with FLOOR = 1e-2 (absolute). Pass: max
 * err <= 1e-3 for every tensor of every model, i.e. |a - n| <= max(1e-3 max(|a|, |n|), 1e-5),
 * the rtol/atol of torch.autograd.gradcheck's defaults. The floor exists because the float forward
 * leaves ~1e-7 relative rounding in every output, which becomes ~1e-6 absolute noise in a
 * central difference; entries near zero (cancellations) can only be checked absolutely.
 * Set GC_VERBOSE=1 to print every coordinate with err > 2e-4. */
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

#define FLOOR 1e-2
#define TOL 1e-3

static int under_valgrind(void)
{
    const char *v = getenv("RUNNING_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

/* Coordinates checked per tensor: all up to this many, else an even sample. */
static size_t coord_cap(void) { return under_valgrind() ? 12 : 400; }

/* ---------- small helpers ---------- */

enum { GRID_FINE = 0, GRID_COARSE = 1, GRID_DISTINCT = 2 };

/* Uniform random multiples of 2^-bits in [lo, hi] (odd: odd multiples only). Dyadic values
 * with few bits keep products and sums exact in float. */
static void fill_grid(tfx__rng *rng, float *p, size_t n, double lo, double hi, int bits, int odd)
{
    const double unit = ldexp(1.0, -bits);
    const long kmin = (long)ceil(lo / unit), kmax = (long)floor(hi / unit);
    for (size_t i = 0; i < n; i++) {
        long k = kmin + (long)tfx__rng_below(rng, (uint64_t)(kmax - kmin + 1));
        if (odd && k % 2 == 0) k += k < kmax ? 1 : -1;
        p[i] = (float)((double)k * unit);
    }
}

static tfx_model *new_model(int h, int w, int c)
{
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, h, w, c), TFX_OK);
    return m;
}

/* TFX_ACTIVATION_CLIP's bounds in these tests: inside the values the layers produce, and
 * multiples of 2^-5, so the coarse grid keeps pre-activations away from them. */
#define CLIP_MIN -0.25f
#define CLIP_MAX 0.5f

/* An Activation layer (clip through its own add function). */
static void add_act(tfx_model *m, int act, float alpha)
{
    if (act == TFX_ACTIVATION_CLIP)
        assert_int_equal(tfx_model_add_clip(m, CLIP_MIN, CLIP_MAX, NULL, NULL), TFX_OK);
    else
        assert_int_equal(tfx_model_add_activation(m, act, alpha, NULL, NULL), TFX_OK);
}

static void add_conv(tfx_model *m, int filters, int kh, int kw, int sh, int sw, int padding, int act, float alpha,
                     int bias)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = kh;
    o.kernel_w = kw;
    o.stride_h = sh;
    o.stride_w = sw;
    o.padding = padding;
    o.activation = act;
    o.activation_alpha = alpha;
    o.clip_min = CLIP_MIN;
    o.clip_max = CLIP_MAX;
    o.use_bias = bias;
    assert_int_equal(tfx_model_add_conv2d(m, &o, NULL), TFX_OK);
}

static void add_dense(tfx_model *m, int units, int act, float alpha, int bias)
{
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    o.units = units;
    o.activation = act;
    o.activation_alpha = alpha;
    o.clip_min = CLIP_MIN;
    o.clip_max = CLIP_MAX;
    o.use_bias = bias;
    assert_int_equal(tfx_model_add_dense(m, &o, NULL), TFX_OK);
}

static void add_pool(tfx_model *m, int is_max, int ph, int pw, int sh, int sw, int padding)
{
    tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
    o.pool_h = ph;
    o.pool_w = pw;
    o.stride_h = sh;
    o.stride_w = sw;
    o.padding = padding;
    if (is_max)
        assert_int_equal(tfx_model_add_max_pooling2d(m, &o, NULL), TFX_OK);
    else
        assert_int_equal(tfx_model_add_average_pooling2d(m, &o, NULL), TFX_OK);
}

static void add_bn(tfx_model *m, int center, int scale)
{
    tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
    o.center = center;
    o.scale = scale;
    assert_int_equal(tfx_model_add_batch_normalization(m, &o, NULL), TFX_OK);
}

static int is_kinky(int act)
{
    return act == TFX_ACTIVATION_RELU || act == TFX_ACTIVATION_LEAKY_RELU || act == TFX_ACTIVATION_ELU ||
           act == TFX_ACTIVATION_RELU6 || act == TFX_ACTIVATION_CLIP || act == TFX_ACTIVATION_HARD_SIGMOID ||
           act == TFX_ACTIVATION_HARD_SWISH;
}

/* Which piece of a piecewise activation z falls in (the kinks' sides). */
static int32_t kink_piece(const tfx_layer *l, float z)
{
    switch (l->cfg.activation) {
    case TFX_ACTIVATION_RELU6:
        return (z > 0.0f) + (z >= 6.0f);
    case TFX_ACTIVATION_CLIP:
        return (z > l->cfg.alpha) + (z >= l->cfg.beta);
    case TFX_ACTIVATION_HARD_SIGMOID:
    case TFX_ACTIVATION_HARD_SWISH:
        return (z > -3.0f) + (z >= 3.0f);
    default:
        return z > 0.0f;
    }
}

/* ---------- kink signature ---------- */

typedef struct sigbuf {
    int32_t *v;
    size_t len, cap;
} sigbuf;

static void sig_push(sigbuf *s, int32_t x)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    s->v[s->len++] = x;
}

/* Every discrete decision the last forward made: signs at ReLU-like kinks and max-pool argmaxes. */
static void signature(tfx_model *m, size_t n, sigbuf *s)
{
    s->len = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        int kind = l->ops->kind;
        size_t osz = n * tfx__shape_size(l->out);
        if ((kind == TFX_LAYER_CONV2D || kind == TFX_LAYER_DENSE || kind == TFX_LAYER_DEPTHWISE_CONV2D) && l->preact &&
            is_kinky(l->cfg.activation)) {
            for (size_t j = 0; j < osz; j++) sig_push(s, kink_piece(l, l->preact[j]));
        } else if (kind == TFX_LAYER_ACTIVATION && is_kinky(l->cfg.activation)) {
            for (size_t j = 0; j < osz; j++) sig_push(s, kink_piece(l, m->acts[l->inputs[0]][j]));
        } else if (kind == TFX_LAYER_GLOBAL_MAX_POOLING2D) {
            const float *x = m->acts[l->inputs[0]];
            const size_t C = (size_t)l->in.c, P = (size_t)l->in.h * l->in.w;
            for (size_t b = 0; b < n; b++)
                for (size_t c = 0; c < C; c++) {
                    size_t best = 0;
                    for (size_t p = 1; p < P; p++)
                        if (x[(b * P + p) * C + c] > x[(b * P + best) * C + c]) best = p;
                    sig_push(s, (int32_t)best);
                }
        } else if (kind == TFX_LAYER_MAX_POOLING2D) {
            const float *x = m->acts[l->inputs[0]];
            int C = l->in.c;
            for (size_t b = 0; b < n; b++)
                for (int oh = 0; oh < l->out.h; oh++)
                    for (int ow = 0; ow < l->out.w; ow++)
                        for (int c = 0; c < C; c++) {
                            int hs = oh * l->cfg.stride_h - l->cfg.pad_top;
                            int ws = ow * l->cfg.stride_w - l->cfg.pad_left;
                            int best = -1;
                            float bv = 0.0f;
                            for (int ih = hs; ih < hs + l->cfg.kernel_h; ih++)
                                for (int iw = ws; iw < ws + l->cfg.kernel_w; iw++) {
                                    if (ih < 0 || iw < 0 || ih >= l->in.h || iw >= l->in.w) continue;
                                    float v = x[((b * l->in.h + ih) * l->in.w + iw) * C + c];
                                    if (best < 0 || v > bv) {
                                        bv = v;
                                        best = ih * l->in.w + iw;
                                    }
                                }
                            sig_push(s, best);
                        }
        }
    }
}

/* ---------- the check ---------- */

typedef struct gc_opts {
    size_t n;         /* batch */
    int training;     /* forward mode (dropout mask, batch statistics) */
    int skip_act;     /* seed the pre-activation of the top layer */
    uint64_t seed;
    int grid;         /* GRID_FINE, GRID_COARSE (ReLU-like margins), GRID_DISTINCT (no max-pool ties) */
    double step0;     /* largest finite-difference step (0: 1/4) */
    double step0_par; /* the same for parameters (0: as step0) */
} gc_opts;

typedef struct gc_result {
    double max_in, max_par;
    size_t checked, skipped;
} gc_result;

typedef struct gc_ctx {
    tfx_model *m;
    const gc_opts *o;
    float *x;        /* input (perturbed in place) */
    const float *r;  /* loss weights on the top tensor */
    tfx__rng rng0;   /* generator state before the reference forward: same dropout mask */
    sigbuf sig0, sig;
} gc_ctx;

/* The tensor the loss reads: the top layer's output, or what its backward with
 * TFX__BW_SKIP_ACTIVATION treats as its pre-activation (an Activation layer's input). */
static const float *top_tensor(tfx_model *m, int skip_act)
{
    size_t top = m->n_layers - 1;
    if (!skip_act) return m->acts[top + 1];
    if (m->layers[top]->ops->kind == TFX_LAYER_ACTIVATION) return m->acts[top];
    return tfx__model_layer_preactivation(m, top);
}

static size_t top_size(tfx_model *m, size_t n) { return n * tfx__shape_size(m->layers[m->n_layers - 1]->out); }

/* Forward from the saved generator state; returns L in double. */
static double eval_loss(gc_ctx *c)
{
    c->m->rng = c->rng0;
    assert_int_equal(tfx__model_forward(c->m, c->x, c->o->n, c->o->training), TFX_OK);
    const float *t = top_tensor(c->m, c->o->skip_act);
    size_t k = top_size(c->m, c->o->n);
    double s = 0.0;
    for (size_t j = 0; j < k; j++) s += (double)c->r[j] * (double)t[j];
    return s;
}

static int same_signature(gc_ctx *c)
{
    signature(c->m, c->o->n, &c->sig);
    /* memcmp with a NULL pointer is undefined even for 0 bytes (UBSan) */
    return c->sig.len == c->sig0.len && (c->sig.len == 0 || memcmp(c->sig.v, c->sig0.v, c->sig.len * sizeof(int32_t)) == 0);
}

/* Central difference at step h (actual float steps); 0 when a kink decision changed. */
static int central(gc_ctx *c, float *p, float orig, double h, double *d)
{
    *p = (float)((double)orig + h);
    double hp = (double)*p - (double)orig;
    double lp = eval_loss(c);
    int ok = same_signature(c);
    *p = (float)((double)orig - h);
    double hm = (double)orig - (double)*p;
    double lm = eval_loss(c);
    ok &= same_signature(c);
    *p = orig;
    *d = (lp - lm) / (hp + hm);
    return ok;
}

/* Numerical dL/d*p: Richardson extrapolation (two stages) over h, h/2, h/4 for the largest
 * h = step0 * 2^-k whose three central differences see no kink decision change; 0 when even
 * h = 2^-12 crosses one. *level: k. */
static int numeric_grad(gc_ctx *c, float *p, double step0, double *out, int *level)
{
    const float orig = *p;
    double d[3];
    int k = 0;
    for (double h = step0; h >= 0x1p-12; h /= 2, k++) {
        if (central(c, p, orig, h, &d[0]) && central(c, p, orig, h / 2, &d[1]) &&
            central(c, p, orig, h / 4, &d[2])) {
            double r1 = (4.0 * d[1] - d[0]) / 3.0, r2 = (4.0 * d[2] - d[1]) / 3.0;
            *out = (16.0 * r2 - r1) / 15.0;
            *level = k;
            return 1;
        }
    }
    *p = orig;
    return 0;
}

static double rel_err(double a, double num)
{
    double den = fmax(fmax(fabs(a), fabs(num)), FLOOR);
    return fabs(a - num) / den;
}

/* Compare analytical gradients g[0..count) of the floats at p[0..count) with finite differences. */
static double check_tensor(gc_ctx *c, float *p, const float *g, size_t count, double step0, gc_result *res,
                           const char *what, const char *label)
{
    double worst = 0.0;
    if (count == 0) return 0.0;
    size_t cap = coord_cap(), step = count > cap ? (count + cap - 1) / cap : 1;
    size_t checked = 0, skipped = 0;
    for (size_t i = (size_t)(c->o->seed % step); i < count; i += step) {
        double num;
        int level;
        if (!numeric_grad(c, p + i, step0, &num, &level)) {
            skipped++;
            continue;
        }
        checked++;
        double e = rel_err(g[i], num);
        if (e > worst) worst = e;
        if (e > TOL || (getenv("GC_VERBOSE") && e > 2e-4))
            print_error("%s: %s[%zu]: analytic %.8g numeric %.8g (err %.3g, step level %d)\n", label, what, i,
                        (double)g[i], num, e, level);
    }
    res->checked += checked;
    res->skipped += skipped;
    /* Too many kinks crossed would make the check vacuous. */
    if (skipped * 4 > checked + skipped) print_error("%s: %s: %zu of %zu coordinates skipped at kinks\n", label,
                                                     what, skipped, checked + skipped);
    assert_true(skipped * 4 <= checked + skipped);
    assert_true(checked > 0);
    return worst;
}

/* Randomise the model's parameters (biases included) reproducibly on the chosen grid. */
static void randomise_params(tfx_model *m, tfx__rng *rng, int grid)
{
    const int coarse = grid == GRID_COARSE;
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        float *p = tfx__layer_params(l);
        int kind = l->ops->kind;
        if (kind == TFX_LAYER_CONV2D || kind == TFX_LAYER_DENSE || kind == TFX_LAYER_DEPTHWISE_CONV2D) {
            size_t k = 0, b = 0;
            assert_int_equal(tfx_layer_weight_sizes(l, &k, &b), TFX_OK);
            assert_int_equal(k + b, l->n_params);
            /* in Keras's order (Dense stores its kernel transposed): the same draws give the
             * same model whatever the internal layout */
            float *kw = malloc((k + b + 1) * sizeof(float));
            assert_non_null(kw);
            fill_grid(rng, kw, k, -0.5, 0.5, coarse ? 2 : 6, 0);
            /* Coarse: odd multiples of 2^-6 keep pre-activations 2^-6 off 0 (see the top comment). */
            fill_grid(rng, kw + k, b, -0.5, 0.5, coarse ? 6 : 10, coarse);
            assert_int_equal(tfx_layer_set_weights(l, kw, b ? kw + k : NULL), TFX_OK);
            free(kw);
        } else if (kind == TFX_LAYER_BATCH_NORMALIZATION) {
            size_t C = (size_t)l->in.c, off = 0;
            if (l->cfg.scale) {
                fill_grid(rng, p, C, 0.5, 1.5, 6, 0);
                off = C;
            }
            if (l->cfg.center) fill_grid(rng, p + off, C, -0.5, 0.5, 6, 0);
        } else {
            assert_int_equal(l->n_params, 0);
        }
    }
}

/* Model input on the grid; GRID_DISTINCT draws pairwise-distinct values (no max-pool ties). */
static void make_input(tfx__rng *rng, float *x, size_t count, int grid)
{
    if (grid == GRID_COARSE) {
        fill_grid(rng, x, count, -1.0, 1.0, 3, 1);
        return;
    }
    if (grid == GRID_DISTINCT) {
        /* A random permutation of evenly spaced values, the spacing the largest power of two
         * that fits count values into [-1, 1]: ties impossible, gaps as wide as possible. */
        double spacing = 1.0;
        while ((double)count * spacing > 2.0) spacing /= 2;
        size_t *perm = malloc(count * sizeof *perm);
        assert_non_null(perm);
        for (size_t i = 0; i < count; i++) perm[i] = i;
        for (size_t i = count; i > 1; i--) {
            size_t j = (size_t)tfx__rng_below(rng, i), t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < count; i++) x[i] = (float)(((double)perm[i] - (double)(count / 2)) * spacing);
        free(perm);
        return;
    }
    fill_grid(rng, x, count, -1.0, 1.0, 8, 0);
}

/* Per-report maxima, printed at the end of the program. */
#define MAX_ROWS 128
static struct {
    char label[96];
    double in, par;
    size_t checked, skipped;
} g_rows[MAX_ROWS];
static size_t g_nrows;

static void record(const char *label, const gc_result *r)
{
    printf("gradcheck %-58s input %.2e  params %.2e  (%zu checked, %zu skipped)\n", label, r->max_in, r->max_par,
           r->checked, r->skipped);
    if (g_nrows < MAX_ROWS) {
        snprintf(g_rows[g_nrows].label, sizeof g_rows[g_nrows].label, "%s", label);
        g_rows[g_nrows].in = r->max_in;
        g_rows[g_nrows].par = r->max_par;
        g_nrows++;
    }
}

/* The whole check on a built model: returns the maxima; asserts them <= TOL. Parameters are
 * randomised first unless keep_params. */
static gc_result gradcheck_model(tfx_model *m, const gc_opts *o, const char *label, int keep_params)
{
    gc_result res = {0, 0, 0, 0};
    tfx__rng rng;
    tfx__rng_seed(&rng, o->seed);
    if (!keep_params) randomise_params(m, &rng, o->grid);
    size_t in_count = o->n * tfx__shape_size(m->input);
    float *x = malloc(in_count * sizeof *x);
    assert_non_null(x);
    make_input(&rng, x, in_count, o->grid);

    /* r needs the top size, known after one forward. */
    size_t top = m->n_layers - 1;
    size_t k = o->n * tfx__shape_size(m->layers[top]->out);
    float *r = malloc(k * sizeof *r);
    assert_non_null(r);
    fill_grid(&rng, r, k, -1.0, 1.0, o->grid == GRID_COARSE ? 4 : 6, 0);

    gc_ctx c = {m, o, x, r, m->rng, {NULL, 0, 0}, {NULL, 0, 0}};
    c.rng0 = m->rng;
    (void)eval_loss(&c);
    signature(m, o->n, &c.sig0);

    /* NaN sentinels: every parameter gradient must be written by the backward. */
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = NAN;
    int flags = TFX__BW_PARAM_GRADS | (o->skip_act ? TFX__BW_SKIP_ACTIVATION : 0);
    float *gin = NULL;
    assert_int_equal(tfx__model_backward(m, o->n, top, r, 0, 1, flags, NULL, &gin), TFX_OK);
    assert_non_null(gin);
    float *ga = malloc((in_count + m->n_params + 1) * sizeof *ga);
    assert_non_null(ga);
    memcpy(ga, gin, in_count * sizeof *ga);
    if (m->n_params) memcpy(ga + in_count, m->grads, m->n_params * sizeof *ga); /* grads NULL without params */
    for (size_t i = 0; i < in_count + m->n_params; i++) assert_false(isnan(ga[i]));

    const double step_in = o->step0 > 0.0 ? o->step0 : 0.25, step_par = o->step0_par > 0.0 ? o->step0_par : step_in;
    res.max_in = check_tensor(&c, x, ga, in_count, step_in, &res, "input", label);
    res.max_par = check_tensor(&c, m->params, ga + in_count, m->n_params, step_par, &res, "param", label);
    record(label, &res);
    assert_true(res.max_in <= TOL);
    assert_true(res.max_par <= TOL);

    free(c.sig0.v);
    free(c.sig.v);
    free(ga);
    free(r);
    free(x);
    return res;
}

static const char *act_name(int a) { return tfx__activation_name(a); }

/* ---------- Conv2D ---------- */

typedef struct conv_case {
    int h, w, c, n, filters, kh, kw, sh, sw, padding, bias;
} conv_case;

static void test_conv_shapes(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {6, 5, 2, 2, 3, 3, 3, 1, 1, TFX_PADDING_VALID, 1}, /* plain */
        {5, 5, 3, 7, 4, 1, 1, 1, 1, TFX_PADDING_VALID, 1}, /* 1x1: the no-im2col path, batch 7 */
        {5, 6, 2, 1, 3, 1, 1, 2, 2, TFX_PADDING_SAME, 0},  /* 1x1 stride 2, batch 1 */
        {6, 6, 2, 2, 3, 2, 2, 1, 1, TFX_PADDING_SAME, 1},  /* even kernel SAME: pad bottom/right */
        {7, 5, 3, 7, 2, 4, 4, 2, 2, TFX_PADDING_SAME, 1},  /* 4x4 stride 2 SAME, non-square input */
        {5, 7, 2, 3, 3, 4, 4, 1, 1, TFX_PADDING_SAME, 1},  /* 4x4 stride 1: pads 1 top, 2 bottom */
        {7, 6, 2, 1, 3, 2, 3, 2, 1, TFX_PADDING_SAME, 0},  /* non-square kernel and strides */
        {8, 5, 1, 2, 2, 3, 2, 1, 2, TFX_PADDING_VALID, 1}, /* non-square, valid, one channel */
        {7, 7, 2, 2, 2, 2, 2, 3, 3, TFX_PADDING_SAME, 1},  /* stride > kernel: skipped pixels */
        {6, 7, 3, 1, 5, 5, 3, 2, 2, TFX_PADDING_VALID, 1}, /* kernel 5x3, stride 2, valid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *k = &cases[i];
        tfx_model *m = new_model(k->h, k->w, k->c);
        add_conv(m, k->filters, k->kh, k->kw, k->sh, k->sw, k->padding, TFX_ACTIVATION_LINEAR, 0.0f, k->bias);
        char label[96];
        snprintf(label, sizeof label, "Conv2D %dx%dx%d n%d f%d k%dx%d s%dx%d %s%s", k->h, k->w, k->c, k->n,
                 k->filters, k->kh, k->kw, k->sh, k->sw, k->padding ? "same" : "valid", k->bias ? "" : " nobias");
        gc_opts o = {(size_t)k->n, 0, 0, 100 + i, GRID_FINE, 0, 0};
        gradcheck_model(m, &o, label, 0);
        tfx_model_free(m);
    }
}

typedef struct act_case {
    int act;
    float alpha;
} act_case;

static const act_case all_acts[] = {
    {TFX_ACTIVATION_LINEAR, 0.0f},     {TFX_ACTIVATION_RELU, 0.0f},       {TFX_ACTIVATION_SIGMOID, 0.0f},
    {TFX_ACTIVATION_TANH, 0.0f},       {TFX_ACTIVATION_SOFTMAX, 0.0f},    {TFX_ACTIVATION_LEAKY_RELU, 0.0f},
    {TFX_ACTIVATION_LEAKY_RELU, 0.3f}, {TFX_ACTIVATION_ELU, 0.0f},        {TFX_ACTIVATION_ELU, 0.5f},
    {TFX_ACTIVATION_SWISH, 0.0f},      {TFX_ACTIVATION_RELU6, 0.0f},      {TFX_ACTIVATION_CLIP, 0.0f},
    {TFX_ACTIVATION_HARD_SIGMOID, 0.0f}, {TFX_ACTIVATION_HARD_SWISH, 0.0f},
};
#define N_ACTS (sizeof all_acts / sizeof all_acts[0])

static void test_conv_activations(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ACTS; i++) {
        tfx_model *m = new_model(5, 4, 3);
        add_conv(m, 4, 3, 3, 1, 1, TFX_PADDING_SAME, all_acts[i].act, all_acts[i].alpha, 1);
        char label[96];
        snprintf(label, sizeof label, "Conv2D fused %s alpha %g", act_name(all_acts[i].act),
                 (double)all_acts[i].alpha);
        gc_opts o = {2, 0, 0, 200 + i, is_kinky(all_acts[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &o, label, 0);
        tfx_model_free(m);
    }
}

/* ---------- Dense, Flatten ---------- */

static void test_dense_activations(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ACTS; i++) {
        tfx_model *m = new_model(3, 2, 2);
        assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
        add_dense(m, 5, all_acts[i].act, all_acts[i].alpha, 1);
        char label[96];
        snprintf(label, sizeof label, "Flatten+Dense fused %s alpha %g", act_name(all_acts[i].act),
                 (double)all_acts[i].alpha);
        gc_opts o = {i % 2 ? 7 : 1, 0, 0, 300 + i, is_kinky(all_acts[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &o, label, 0);
        tfx_model_free(m);
    }
}

static void test_dense_4d_and_flatten(void **state)
{
    (void)state;
    /* Dense on the last axis of a 4D tensor, batch 7. */
    tfx_model *m = new_model(3, 4, 5);
    add_dense(m, 3, TFX_ACTIVATION_TANH, 0.0f, 1);
    gc_opts o = {7, 0, 0, 400, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "Dense on 4D input (last axis) tanh n7", 0);
    tfx_model_free(m);

    m = new_model(2, 3, 4);
    add_dense(m, 2, TFX_ACTIVATION_LINEAR, 0.0f, 0);
    gc_opts o2 = {1, 0, 0, 401, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "Dense on 4D input no bias n1", 0);
    tfx_model_free(m);

    /* Conv -> Flatten -> Dense: Flatten's (h, w, c) order between two parameterised layers. */
    m = new_model(5, 4, 2);
    add_conv(m, 3, 2, 2, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_TANH, 0.0f, 1);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 4, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o3 = {7, 0, 0, 402, GRID_FINE, 0, 0};
    gradcheck_model(m, &o3, "Conv2D tanh -> Flatten -> Dense softmax n7", 0);
    tfx_model_free(m);

    /* Flatten as the top layer. */
    m = new_model(4, 3, 2);
    add_conv(m, 2, 3, 2, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_SIGMOID, 0.0f, 1);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    gc_opts o4 = {2, 0, 0, 403, GRID_FINE, 0, 0};
    gradcheck_model(m, &o4, "Conv2D sigmoid -> Flatten (top)", 0);
    tfx_model_free(m);
}

/* ---------- pooling ---------- */

typedef struct pool_case {
    int h, w, c, n, ph, pw, sh, sw, padding;
} pool_case;

static const pool_case pool_cases[] = {
    {6, 4, 2, 2, 2, 2, 0, 0, TFX_PADDING_VALID}, /* default strides = pool */
    {7, 5, 2, 7, 3, 3, 2, 2, TFX_PADDING_SAME},  /* overlapping, SAME, odd input, batch 7 */
    {5, 6, 3, 1, 2, 3, 1, 1, TFX_PADDING_SAME},  /* non-square pool, stride 1, SAME */
    {6, 6, 2, 2, 3, 3, 1, 1, TFX_PADDING_VALID}, /* overlapping valid */
    {5, 5, 2, 2, 2, 2, 2, 2, TFX_PADDING_SAME},  /* even pool on odd input: extra pad bottom/right */
    {7, 6, 1, 1, 4, 4, 3, 2, TFX_PADDING_SAME},  /* 4x4, non-square strides */
};

static void run_pool_cases(int is_max)
{
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        const pool_case *k = &pool_cases[i];
        for (int with_conv = 0; with_conv < 2; with_conv++) {
            tfx_model *m = new_model(k->h, k->w, k->c);
            /* With a conv in front the parameter gradients also flow through the pool. */
            if (with_conv) add_conv(m, k->c, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR, 0.0f, 1);
            add_pool(m, is_max, k->ph, k->pw, k->sh, k->sw, k->padding);
            char label[96];
            snprintf(label, sizeof label, "%s%s %dx%dx%d n%d p%dx%d s%dx%d %s", with_conv ? "Conv2D -> " : "",
                     is_max ? "MaxPooling2D" : "AveragePooling2D", k->h, k->w, k->c, k->n, k->ph, k->pw, k->sh,
                     k->sw, k->padding ? "same" : "valid");
            gc_opts o = {(size_t)k->n, 0, 0, (is_max ? 500 : 600) + 10 * i + (size_t)with_conv,
                         is_max && !with_conv ? GRID_DISTINCT : GRID_FINE, 0, 0};
            gradcheck_model(m, &o, label, 0);
            tfx_model_free(m);
        }
    }
}

static void test_max_pooling(void **state)
{
    (void)state;
    run_pool_cases(1);
}

/* Explicit padding (pads beyond the kernel for Conv2D; below the pool for pooling) and average
 * pooling counting the padded cells, with SAME and explicit padding. */
static void test_explicit_padding(void **state)
{
    (void)state;
    static const struct {
        int h, w, c, k, s, pt, pb, pl, pr;
    } convs[] = {{7, 6, 2, 3, 2, 1, 2, 0, 1}, {4, 5, 2, 2, 1, 3, 0, 2, 4}, {6, 6, 3, 3, 1, 2, 2, 2, 2}};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        tfx_model *m = new_model(convs[i].h, convs[i].w, convs[i].c);
        tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
        o.filters = 3;
        o.kernel_h = o.kernel_w = convs[i].k;
        o.stride_h = o.stride_w = convs[i].s;
        o.padding = TFX_PADDING_EXPLICIT;
        o.pad_top = convs[i].pt, o.pad_bottom = convs[i].pb, o.pad_left = convs[i].pl, o.pad_right = convs[i].pr;
        assert_int_equal(tfx_model_add_conv2d(m, &o, NULL), TFX_OK);
        char label[96];
        snprintf(label, sizeof label, "Conv2D k%d s%d explicit (%d %d %d %d)", convs[i].k, convs[i].s, convs[i].pt,
                 convs[i].pb, convs[i].pl, convs[i].pr);
        gc_opts g = {2, 0, 0, 740 + i, GRID_FINE, 0, 0};
        gradcheck_model(m, &g, label, 0);
        tfx_model_free(m);
    }
    for (int kind = 0; kind < 3; kind++) /* max, average, average counting the padding */
        for (int padding = TFX_PADDING_SAME; padding <= TFX_PADDING_EXPLICIT; padding++) {
            if (kind == 0 && padding == TFX_PADDING_SAME) continue; /* the pool cases above */
            tfx_model *m = new_model(7, 6, 2);
            tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
            o.pool_h = o.pool_w = 3;
            o.stride_h = o.stride_w = 2;
            o.padding = padding;
            if (padding == TFX_PADDING_EXPLICIT) o.pad_top = 2, o.pad_bottom = 1, o.pad_left = 1, o.pad_right = 2;
            o.count_include_pad = kind == 2;
            assert_int_equal(kind ? tfx_model_add_average_pooling2d(m, &o, NULL) : tfx_model_add_max_pooling2d(m, &o, NULL),
                             TFX_OK);
            char label[96];
            snprintf(label, sizeof label, "%s p3 s2 %s", kind == 0 ? "MaxPooling2D" : kind == 1 ? "AveragePooling2D"
                     : "AveragePooling2D count_include_pad", padding == TFX_PADDING_SAME ? "same" : "explicit (2 1 1 2)");
            gc_opts g = {2, 0, 0, 750 + (size_t)(3 * kind + padding), kind ? GRID_FINE : GRID_DISTINCT, 0, 0};
            gradcheck_model(m, &g, label, 0);
            tfx_model_free(m);
        }
}

static void test_average_pooling(void **state)
{
    (void)state;
    run_pool_cases(0);
}

static void test_global_average_pooling(void **state)
{
    (void)state;
    tfx_model *m = new_model(5, 3, 2);
    assert_int_equal(tfx_model_add_global_average_pooling2d(m, NULL, NULL), TFX_OK);
    gc_opts o = {7, 0, 0, 700, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "GlobalAveragePooling2D 5x3x2 n7", 0);
    tfx_model_free(m);

    m = new_model(6, 4, 3);
    add_conv(m, 4, 3, 3, 2, 2, TFX_PADDING_SAME, TFX_ACTIVATION_SWISH, 0.0f, 1);
    assert_int_equal(tfx_model_add_global_average_pooling2d(m, NULL, NULL), TFX_OK);
    add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o2 = {1, 0, 0, 701, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "Conv2D swish -> GlobalAveragePooling2D -> Dense softmax n1", 0);
    tfx_model_free(m);
}

static void test_global_max_pooling(void **state)
{
    (void)state;
    tfx_model *m = new_model(5, 3, 2);
    assert_int_equal(tfx_model_add_global_max_pooling2d(m, NULL, NULL), TFX_OK);
    gc_opts o = {7, 0, 0, 720, GRID_DISTINCT, 0, 0};
    gradcheck_model(m, &o, "GlobalMaxPooling2D 5x3x2 n7", 0);
    tfx_model_free(m);

    m = new_model(6, 4, 3);
    add_conv(m, 4, 3, 3, 2, 2, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1);
    assert_int_equal(tfx_model_add_global_max_pooling2d(m, NULL, NULL), TFX_OK);
    add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o2 = {2, 0, 0, 721, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "Conv2D tanh -> GlobalMaxPooling2D -> Dense softmax n2", 0);
    tfx_model_free(m);
}

static void test_zero_padding(void **state)
{
    (void)state;
    tfx_model *m = new_model(4, 3, 2);
    assert_int_equal(tfx_model_add_zero_padding2d(m, 1, 2, 0, 3, NULL, NULL), TFX_OK);
    gc_opts o = {3, 0, 0, 730, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "ZeroPadding2D (1, 2, 0, 3) 4x3x2 n3", 0);
    tfx_model_free(m);

    m = new_model(5, 4, 2);
    assert_int_equal(tfx_model_add_zero_padding2d(m, 2, 1, 1, 2, NULL, NULL), TFX_OK);
    add_conv(m, 3, 3, 3, 2, 2, TFX_PADDING_VALID, TFX_ACTIVATION_TANH, 0.0f, 1);
    assert_int_equal(tfx_model_add_zero_padding2d(m, 0, 1, 1, 0, NULL, NULL), TFX_OK);
    add_dense(m, 2, TFX_ACTIVATION_LINEAR, 0.0f, 1);
    gc_opts o2 = {2, 0, 0, 731, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "ZeroPadding2D -> Conv2D s2 tanh -> ZeroPadding2D -> Dense", 0);
    tfx_model_free(m);
}

/* Grouped Conv2D and DepthwiseConv2D (the direct grouped kernels), with strides, SAME and
 * explicit padding and fused activations. */
static void test_grouped_and_depthwise(void **state)
{
    (void)state;
    static const struct {
        int h, w, c, f, groups, k, s, padding, act;
    } convs[] = {
        {6, 5, 4, 6, 2, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH},
        {7, 6, 6, 3, 3, 2, 2, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR},
        {5, 5, 4, 8, 4, 3, 2, TFX_PADDING_EXPLICIT, TFX_ACTIVATION_HARD_SWISH},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        tfx_model *m = new_model(convs[i].h, convs[i].w, convs[i].c);
        tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
        o.filters = convs[i].f;
        o.kernel_h = o.kernel_w = convs[i].k;
        o.stride_h = o.stride_w = convs[i].s;
        o.padding = convs[i].padding;
        if (o.padding == TFX_PADDING_EXPLICIT) o.pad_top = 2, o.pad_bottom = 0, o.pad_left = 1, o.pad_right = 1;
        o.activation = convs[i].act;
        o.groups = convs[i].groups;
        assert_int_equal(tfx_model_add_conv2d(m, &o, NULL), TFX_OK);
        char label[96];
        snprintf(label, sizeof label, "Conv2D groups %d %d->%d k%d s%d %s", convs[i].groups, convs[i].c, convs[i].f,
                 convs[i].k, convs[i].s, act_name(convs[i].act));
        gc_opts g = {2, 0, 0, 770 + i, is_kinky(convs[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &g, label, 0);
        tfx_model_free(m);
    }
    static const struct {
        int h, w, c, mult, k, s, padding, act;
    } dws[] = {
        {6, 5, 3, 1, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU6},
        {7, 6, 2, 3, 3, 2, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR},
        {5, 6, 4, 2, 2, 1, TFX_PADDING_EXPLICIT, TFX_ACTIVATION_SIGMOID},
        {6, 6, 3, 1, 3, 2, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR},
    };
    for (size_t i = 0; i < sizeof dws / sizeof dws[0]; i++) {
        tfx_model *m = new_model(dws[i].h, dws[i].w, dws[i].c);
        tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
        o.kernel_h = o.kernel_w = dws[i].k;
        o.stride_h = o.stride_w = dws[i].s;
        o.padding = dws[i].padding;
        if (o.padding == TFX_PADDING_EXPLICIT) o.pad_top = 1, o.pad_bottom = 2, o.pad_left = 0, o.pad_right = 1;
        o.depth_multiplier = dws[i].mult;
        o.activation = dws[i].act;
        assert_int_equal(tfx_model_add_depthwise_conv2d(m, &o, NULL), TFX_OK);
        add_conv(m, 2, 1, 1, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, 0.0f, 1); /* MobileNet's pointwise */
        char label[96];
        snprintf(label, sizeof label, "DepthwiseConv2D x%d %d ch k%d s%d %s -> 1x1 Conv2D", dws[i].mult, dws[i].c,
                 dws[i].k, dws[i].s, act_name(dws[i].act));
        gc_opts g = {2, 0, 0, 780 + i, is_kinky(dws[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &g, label, 0);
        tfx_model_free(m);
    }
}

/* Reshape: a view; the layers around it see the values in NHWC order. */
static void test_reshape(void **state)
{
    (void)state;
    tfx_model *m = new_model(4, 6, 2);
    add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1);
    assert_int_equal(tfx_model_add_reshape(m, 6, -1, 6, NULL, NULL), TFX_OK); /* 4x6x3 -> 6x2x6 */
    add_conv(m, 2, 2, 2, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, 0.0f, 1);
    gc_opts o = {2, 0, 0, 790, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "Conv2D tanh -> Reshape 6x2x6 -> Conv2D", 0);
    tfx_model_free(m);
}

/* ---------- Dropout ---------- */

static void test_dropout(void **state)
{
    (void)state;
    /* Training: the mask is drawn from the model generator, restored before every forward. */
    tfx_model *m = new_model(4, 3, 3);
    add_conv(m, 4, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1);
    tfx_layer *d = NULL;
    assert_int_equal(tfx_model_add_dropout(m, 0.4f, NULL, &d), TFX_OK);
    add_dense(m, 2, TFX_ACTIVATION_LINEAR, 0.0f, 1);
    gc_opts o = {7, 1, 0, 800, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "Conv2D tanh -> Dropout(0.4, fixed mask) -> Dense, training n7", 0);
    /* The mask was not trivial: some units dropped, the rest scaled by 1/(1-rate). */
    size_t total = 7 * tfx__shape_size(d->in), zeros = 0, kept = 0;
    for (size_t i = 0; i < total; i++) {
        if (d->cache[i] == 0.0f)
            zeros++;
        else if (fabsf(d->cache[i] - 1.0f / 0.6f) < 1e-6f)
            kept++;
    }
    assert_true(zeros > 0 && kept > 0 && zeros + kept == total);
    tfx_model_free(m);

    /* Inference: identity. */
    m = new_model(3, 3, 2);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 4, TFX_ACTIVATION_SIGMOID, 0.0f, 1);
    assert_int_equal(tfx_model_add_dropout(m, 0.5f, NULL, NULL), TFX_OK);
    add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o2 = {2, 0, 0, 801, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "Dense -> Dropout(0.5) inference -> Dense softmax", 0);
    tfx_model_free(m);
}

/* ---------- Activation layer ---------- */

static void test_activation_layers(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ACTS; i++) {
        /* On a 4D tensor (softmax over channels) after a conv. */
        tfx_model *m = new_model(4, 3, 2);
        add_conv(m, 3, 2, 2, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR, 0.0f, 1);
        add_act(m, all_acts[i].act, all_acts[i].alpha);
        char label[96];
        snprintf(label, sizeof label, "Conv2D -> Activation(%s alpha %g) 4D", act_name(all_acts[i].act),
                 (double)all_acts[i].alpha);
        gc_opts o = {2, 0, 0, 900 + i, is_kinky(all_acts[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &o, label, 0);
        tfx_model_free(m);

        /* On a flat tensor, directly on the input, batch 7. */
        m = new_model(1, 1, 6);
        assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
        add_act(m, all_acts[i].act, all_acts[i].alpha);
        snprintf(label, sizeof label, "Activation(%s alpha %g) flat n7", act_name(all_acts[i].act),
                 (double)all_acts[i].alpha);
        gc_opts o2 = {7, 0, 0, 950 + i, is_kinky(all_acts[i].act) ? GRID_COARSE : GRID_FINE, 0, 0};
        gradcheck_model(m, &o2, label, 0);
        tfx_model_free(m);
    }
}

/* ---------- BatchNormalization ---------- */

static void set_bn_moving_stats(tfx_model *m, size_t index, uint64_t seed)
{
    tfx_layer *l = m->layers[index];
    size_t C = (size_t)l->in.c;
    float *k = malloc(4 * C * sizeof *k);
    assert_non_null(k);
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    assert_int_equal(tfx_layer_get_weights(l, k, NULL), TFX_OK);
    fill_grid(&rng, k + 2 * C, C, -0.5, 0.5, 6, 0); /* moving mean */
    fill_grid(&rng, k + 3 * C, C, 0.25, 2.0, 6, 0); /* moving variance */
    assert_int_equal(tfx_layer_set_weights(l, k, NULL), TFX_OK);
    free(k);
}

static void test_batch_norm(void **state)
{
    (void)state;
    char label[96];
    for (int training = 0; training < 2; training++) {
        const char *mode = training ? "training" : "inference";
        /* After a conv, 4D, batch 7. */
        tfx_model *m = new_model(4, 3, 2);
        add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR, 0.0f, 1);
        add_bn(m, 1, 1);
        add_dense(m, 2, TFX_ACTIVATION_TANH, 0.0f, 1);
        tfx__rng rng;
        tfx__rng_seed(&rng, 1000 + (uint64_t)training);
        randomise_params(m, &rng, GRID_FINE);
        set_bn_moving_stats(m, 1, 1010 + (uint64_t)training);
        snprintf(label, sizeof label, "Conv2D -> BatchNormalization (%s) -> Dense n7", mode);
        /* Training: every output moves with the batch statistics (more rounding noise), and
         * BN is smooth on the scale of the channel's spread: larger steps. */
        /* Training: every output moves with the batch statistics (more rounding noise); the
         * input steps reach BN scaled down by the conv weights: larger input steps. */
        gc_opts o = {7, training, 0, 1000 + (uint64_t)training, GRID_FINE, training ? 0.5 : 0.0, 0.25};
        gradcheck_model(m, &o, label, 1);
        tfx_model_free(m);

        /* Directly on the input, batch 1 (training statistics over h*w). */
        m = new_model(3, 4, 3);
        add_bn(m, 1, 1);
        tfx__rng_seed(&rng, 1020 + (uint64_t)training);
        randomise_params(m, &rng, GRID_FINE);
        set_bn_moving_stats(m, 0, 1030 + (uint64_t)training);
        snprintf(label, sizeof label, "BatchNormalization (%s) on input 3x4x3 n1", mode);
        gc_opts o2 = {1, training, 0, 1020 + (uint64_t)training, GRID_FINE, 0, 0};
        gradcheck_model(m, &o2, label, 1);
        tfx_model_free(m);

        /* Flat, after Dense; without center, then without scale. */
        for (int variant = 0; variant < 2; variant++) {
            m = new_model(1, 1, 5);
            assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
            add_dense(m, 4, TFX_ACTIVATION_LINEAR, 0.0f, 1);
            add_bn(m, variant == 1, variant == 0);
            add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
            tfx__rng_seed(&rng, 1040 + 2 * (uint64_t)training + (uint64_t)variant);
            randomise_params(m, &rng, GRID_FINE);
            set_bn_moving_stats(m, 2, 1050 + 2 * (uint64_t)training + (uint64_t)variant);
            /* Training over 7 rows is strongly nonlinear in the Dense weights (the scale is
             * renormalised): a smaller first step keeps the Richardson truncation small. */
            snprintf(label, sizeof label, "Dense -> BatchNormalization (%s, %s) flat n7", mode,
                     variant ? "no scale" : "no center");
            gc_opts o3 = {7, training, 0, 1040 + 2 * (uint64_t)training + (uint64_t)variant, GRID_FINE,
                            training ? 0.125 : 0.0, 0};
            gradcheck_model(m, &o3, label, 1);
            tfx_model_free(m);
        }
    }
}

/* ---------- SKIP_ACTIVATION, stop > 0, a deep mixed model ---------- */

static void test_skip_activation(void **state)
{
    (void)state;
    /* Gradient of the logits of a softmax Dense. */
    tfx_model *m = new_model(3, 3, 2);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 5, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o = {7, 0, 1, 1100, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "SKIP_ACTIVATION: Dense softmax logits n7", 0);
    tfx_model_free(m);

    /* Pre-activation of a ReLU conv (no kink at all: the loss reads z). */
    m = new_model(5, 4, 2);
    add_conv(m, 3, 3, 3, 2, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU, 0.0f, 1);
    gc_opts o2 = {2, 0, 1, 1101, GRID_COARSE, 0, 0};
    gradcheck_model(m, &o2, "SKIP_ACTIVATION: Conv2D relu pre-activation", 0);
    tfx_model_free(m);

    /* An Activation(softmax) layer on top: its pre-activation is its input. */
    m = new_model(2, 2, 3);
    add_conv(m, 4, 2, 2, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_TANH, 0.0f, 1);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 3, TFX_ACTIVATION_LINEAR, 0.0f, 1);
    assert_int_equal(tfx_model_add_activation(m, TFX_ACTIVATION_SOFTMAX, 0.0f, NULL, NULL), TFX_OK);
    gc_opts o3 = {2, 0, 1, 1102, GRID_FINE, 0, 0};
    gradcheck_model(m, &o3, "SKIP_ACTIVATION: Activation(softmax) layer on top", 0);
    tfx_model_free(m);
}

/* backward(stop = k) returns d L / d (input of layer k); checked against finite differences
 * of a copy of layers k..top fed with that input. Layers below k keep their gradients. */
/* ---------- graphs: fan-out and merges ---------- */

/* One tensor read by three layers (two convolutions and the Add that also sums their outputs),
 * and the model input read by a convolution and by an Add (an identity shortcut): the gradients
 * of the fan-out tensors are sums over their readers. */
static void test_graph_fan_out(void **state)
{
    (void)state;
    tfx_model *m = new_model(6, 5, 2);
    tfx_layer *a, *b, *c;
    add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1); /* a: read three times */
    a = m->layers[0];
    add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_SIGMOID, 0.0f, 1); /* b = conv(a) */
    b = m->layers[1];
    assert_int_equal(tfx_model_set_next_input(m, a), TFX_OK);
    add_conv(m, 3, 1, 1, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, 0.0f, 0); /* c = conv1x1(a) */
    c = m->layers[2];
    tfx_layer *abc[3] = {b, c, a};
    assert_int_equal(tfx_model_add_add(m, abc, 3, NULL, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 4, TFX_ACTIVATION_LINEAR, 0.0f, 1);
    gc_opts o = {3, 0, 0, 1300, GRID_FINE, 0, 0};
    gradcheck_model(m, &o, "graph: conv read by conv, conv and Add(b, c, a)", 0);
    tfx_model_free(m);

    m = new_model(5, 4, 3);
    add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1);
    tfx_layer *xa[2] = {NULL, m->layers[0]}; /* the model input and conv(input) */
    assert_int_equal(tfx_model_add_add(m, xa, 2, NULL, NULL), TFX_OK);
    tfx_layer *twice[2] = {m->layers[1], m->layers[1]}; /* x + x */
    assert_int_equal(tfx_model_add_add(m, twice, 2, NULL, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 2, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o2 = {2, 0, 1, 1301, GRID_FINE, 0, 0};
    gradcheck_model(m, &o2, "graph: identity shortcut Add(input, conv), Add(x, x), softmax logits", 0);
    tfx_model_free(m);
}

static void test_stop_layer(void **state)
{
    (void)state;
    const size_t n = 3;
    tfx_model *m = new_model(6, 5, 2);
    add_conv(m, 3, 3, 3, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1); /* 0 */
    add_pool(m, 0, 2, 2, 2, 2, TFX_PADDING_SAME);                                /* 1: 3x3x3 */
    add_conv(m, 4, 2, 2, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_SIGMOID, 0.0f, 1); /* 2 */
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);             /* 3 */
    add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);                            /* 4 */
    tfx__rng rng;
    tfx__rng_seed(&rng, 1200);
    randomise_params(m, &rng, GRID_FINE);
    size_t in_count = n * tfx__shape_size(m->input);
    float *x = malloc(in_count * sizeof *x);
    float *r = malloc(n * 3 * sizeof *r);
    assert_non_null(x);
    assert_non_null(r);
    make_input(&rng, x, in_count, GRID_FINE);
    fill_grid(&rng, r, n * 3, -1.0, 1.0, 6, 0);
    assert_int_equal(tfx__model_forward(m, x, n, 0), TFX_OK);
    const size_t stop = 2;
    size_t mid_count = n * tfx__shape_size(m->layers[stop]->in);
    float *mid = malloc(mid_count * sizeof *mid);
    assert_non_null(mid);
    memcpy(mid, m->acts[stop], mid_count * sizeof *mid);

    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = NAN;
    float *g = NULL;
    assert_int_equal(tfx__model_backward(m, n, 4, r, stop, 1, TFX__BW_PARAM_GRADS, NULL, &g), TFX_OK);
    assert_non_null(g);
    float *gstop = malloc((mid_count + m->n_params) * sizeof *gstop);
    assert_non_null(gstop);
    memcpy(gstop, g, mid_count * sizeof *gstop);
    memcpy(gstop + mid_count, m->grads, m->n_params * sizeof *gstop);
    /* Layer 0's gradients are below stop: untouched. Layers 2 and 4: written. */
    tfx_layer *l0 = m->layers[0], *l2 = m->layers[stop];
    for (size_t i = 0; i < l0->n_params; i++) assert_true(isnan(m->grads[l0->param_offset + i]));
    for (size_t i = l2->param_offset; i < m->n_params; i++) assert_false(isnan(m->grads[i]));

    /* The same top part as its own model, with the same weights. */
    tfx_model *sub = new_model(3, 3, 3);
    add_conv(sub, 4, 2, 2, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_SIGMOID, 0.0f, 1);
    assert_int_equal(tfx_model_add_flatten(sub, NULL, NULL), TFX_OK);
    add_dense(sub, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    assert_int_equal(sub->n_params, m->n_params - l2->param_offset);
    memcpy(sub->params, m->params + l2->param_offset, sub->n_params * sizeof(float));

    gc_opts o = {n, 0, 0, 1201, GRID_FINE, 0, 0};
    gc_ctx c = {sub, &o, mid, r, sub->rng, {NULL, 0, 0}, {NULL, 0, 0}};
    (void)eval_loss(&c);
    signature(sub, n, &c.sig0);
    gc_result res = {0, 0, 0, 0};
    res.max_in = check_tensor(&c, mid, gstop, mid_count, 0.25, &res, "input of layer 2", "stop = 2");
    res.max_par = check_tensor(&c, sub->params, gstop + mid_count + l2->param_offset, sub->n_params, 0.25, &res,
                               "param", "stop = 2");
    record("backward stop=2: d/d(input of conv at layer 2) + its params", &res);
    assert_true(res.max_in <= TOL);
    assert_true(res.max_par <= TOL);

    /* stop = top with want_input_grad = 0 returns no gradient but still the top's params. */
    assert_int_equal(tfx__model_forward(m, x, n, 0), TFX_OK);
    float *none = (float *)1;
    assert_int_equal(tfx__model_backward(m, n, 4, r, 4, 0, TFX__BW_PARAM_GRADS, NULL, &none), TFX_OK);
    assert_null(none);

    free(c.sig0.v);
    free(c.sig.v);
    free(gstop);
    free(mid);
    free(r);
    free(x);
    tfx_model_free(sub);
    tfx_model_free(m);
}

static void test_deep_mixed(void **state)
{
    (void)state;
    /* Max-pooling first, on pairwise-distinct inputs, so argmax switches need only moderately
     * small steps; then the smooth rest (kinks are covered by the single-layer tests). */
    tfx_model *m = new_model(6, 5, 2);
    add_pool(m, 1, 3, 3, 2, 2, TFX_PADDING_SAME);                                   /* 3x3x2 */
    add_conv(m, 4, 2, 2, 1, 1, TFX_PADDING_SAME, TFX_ACTIVATION_TANH, 0.0f, 1);     /* 3x3x4 */
    add_conv(m, 5, 3, 2, 2, 1, TFX_PADDING_SAME, TFX_ACTIVATION_SWISH, 0.0f, 1);    /* 2x3x5 */
    add_bn(m, 1, 1);
    assert_int_equal(tfx_model_add_dropout(m, 0.25f, NULL, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    add_dense(m, 6, TFX_ACTIVATION_SIGMOID, 0.0f, 1);
    add_dense(m, 3, TFX_ACTIVATION_SOFTMAX, 0.0f, 1);
    gc_opts o = {2, 1, 0, 1300, GRID_DISTINCT, 0, 0}; /* batch 2: inputs 1/64 apart */
    gradcheck_model(m, &o, "deep: maxpool, conv tanh, conv swish, BN, dropout, dense x2", 0);
    tfx_model_free(m);
}

static int print_summary(void **state)
{
    (void)state;
    double in = 0, par = 0;
    for (size_t i = 0; i < g_nrows; i++) {
        in = fmax(in, g_rows[i].in);
        par = fmax(par, g_rows[i].par);
    }
    printf("gradcheck overall: %zu models, max rel err input %.2e params %.2e (floor %.0e, tol %.0e)\n", g_nrows,
           in, par, FLOOR, TOL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shapes),
        cmocka_unit_test(test_conv_activations),
        cmocka_unit_test(test_dense_activations),
        cmocka_unit_test(test_dense_4d_and_flatten),
        cmocka_unit_test(test_max_pooling),
        cmocka_unit_test(test_average_pooling),
        cmocka_unit_test(test_global_average_pooling),
        cmocka_unit_test(test_global_max_pooling),
        cmocka_unit_test(test_zero_padding),
        cmocka_unit_test(test_explicit_padding),
        cmocka_unit_test(test_grouped_and_depthwise),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_activation_layers),
        cmocka_unit_test(test_batch_norm),
        cmocka_unit_test(test_skip_activation),
        cmocka_unit_test(test_stop_layer),
        cmocka_unit_test(test_graph_fan_out),
        cmocka_unit_test(test_deep_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, print_summary);
}
