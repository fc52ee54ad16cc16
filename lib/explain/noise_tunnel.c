/* Noise tunnel (Captum's NoiseTunnel): a gradient method evaluated on `samples` noisy copies
 * x + N(0, sigma^2), sigma = noise * (max x - min x) per image, reduced per element as the mean
 * (SmoothGrad, Smilkov et al.), the mean of squares (SmoothGrad^2, Hooker et al.) or the
 * variance (VarGrad, Adebayo et al.; 1/N). Base methods: vanilla gradients, gradients x inputs
 * (the noisy input times its gradient, as Captum), guided backprop, DeconvNet.
 * SmoothGrad is the tunnel over vanilla gradients; its tf-explain compat mode differentiates
 * the categorical cross-entropy (research notes M6), takes sigma = noise (absolute) and |.| of
 * the mean. Guided SmoothGrad is the tunnel over guided backprop. Rows (image, sample) and
 * their noise are drawn in order from a seeded generator, so the result does not depend on
 * batch_size. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

typedef struct job {
    tfx__xctx *c;
    int times_input, tunnel, compat;
    size_t S;
    tfx__rng rng, *gen; /* gen: &rng, or the caller's generator (hooks->rng) */
    float sigma;     /* of the current image */
    double *sum, *sq; /* D each; sq only for the squared statistics */
} job;

static int begin(void *u, size_t i)
{
    job *jb = u;
    const tfx__xctx *c = jb->c;
    if (jb->compat) {
        jb->sigma = c->o.noise;
        return TFX_OK;
    }
    const float *xi = c->x + i * c->in_sz;
    float lo = xi[0], hi = xi[0];
    for (size_t j = 1; j < c->in_sz; j++) {
        lo = xi[j] < lo ? xi[j] : lo;
        hi = xi[j] > hi ? xi[j] : hi;
    }
    jb->sigma = c->o.noise * (hi - lo);
    return TFX_OK;
}

static int make(void *u, size_t i, size_t s, float *row)
{
    job *jb = u;
    const tfx__xctx *c = jb->c;
    const size_t D = c->in_sz;
    const float *xi = c->x + i * D;
    const float *eps = c->hooks && c->hooks->noise ? c->hooks->noise + (i * jb->S + s) * D : NULL;
    for (size_t j = 0; j < D; j++) row[j] = xi[j] + jb->sigma * (eps ? eps[j] : (float)tfx__rng_normal(jb->gen));
    return 1;
}

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    const size_t D = jb->c->in_sz;
    const float *g = ch->grad + b * D, *x = ch->rows + b * D;
    if (jb->tunnel == TFX_TUNNEL_SMOOTHGRAD && !jb->times_input) {
        for (size_t j = 0; j < D; j++) jb->sum[j] += g[j];
        return TFX_OK;
    }
    for (size_t j = 0; j < D; j++) {
        double v = jb->times_input ? (double)(g[j] * x[j]) : (double)g[j];
        jb->sum[j] += v;
        if (jb->sq) jb->sq[j] += v * v;
    }
    return TFX_OK;
}

static int end(void *u, size_t i)
{
    job *jb = u;
    const size_t D = jb->c->in_sz;
    const double S = (double)jb->S;
    float *dst = jb->c->a->data + i * D;
    for (size_t j = 0; j < D; j++) {
        double mean = jb->sum[j] / S, v;
        if (jb->tunnel == TFX_TUNNEL_SMOOTHGRAD) {
            v = mean;
        } else {
            double msq = jb->sq[j] / S;
            v = jb->tunnel == TFX_TUNNEL_SMOOTHGRAD_SQ ? msq : msq - mean * mean > 0.0 ? msq - mean * mean : 0.0;
        }
        dst[j] = jb->compat ? fabsf((float)v) : (float)v; /* tf-explain: |.| after the mean */
    }
    memset(jb->sum, 0, D * sizeof(double));
    if (jb->sq) memset(jb->sq, 0, D * sizeof(double));
    return TFX_OK;
}

int tfx__explain_noise_tunnel(tfx__xctx *c)
{
    const int method = c->o.method;
    const char *what = method == TFX_METHOD_SMOOTH_GRAD ? "SmoothGrad" : "noise tunnel";
    int base = TFX_METHOD_VANILLA_GRADIENTS, tunnel = TFX_TUNNEL_SMOOTHGRAD;
    if (method == TFX_METHOD_GUIDED_SMOOTH_GRAD) base = TFX_METHOD_GUIDED_BACKPROP;
    if (method == TFX_METHOD_NOISE_TUNNEL) {
        base = c->o.base_method;
        tunnel = c->o.tunnel;
    }
    int rule;
    switch (base) {
    case TFX_METHOD_VANILLA_GRADIENTS:
    case TFX_METHOD_GRADIENTS_INPUTS: rule = TFX__RULE_GRADIENT; break;
    case TFX_METHOD_GUIDED_BACKPROP: rule = TFX__RULE_GUIDED; break;
    case TFX_METHOD_DECONVNET: rule = TFX__RULE_DECONVNET; break;
    default:
        return tfx__error(TFX_EINVAL, "tfx_explain: the noise tunnel wraps vanilla gradients (%d), gradients x "
                          "inputs (%d), guided backprop (%d) or DeconvNet (%d), not method %d",
                          TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRADIENTS_INPUTS, TFX_METHOD_GUIDED_BACKPROP,
                          TFX_METHOD_DECONVNET, base);
    }
    TFX__CHECK_ARG(tunnel >= TFX_TUNNEL_SMOOTHGRAD && tunnel <= TFX_TUNNEL_VARGRAD,
                   "tfx_explain: unknown noise tunnel type %d", tunnel);
    TFX__CHECK_ARG(c->o.samples > 0, "tfx_explain: %s samples = %d must be > 0", what, c->o.samples);
    TFX__CHECK_ARG(c->o.samples <= TFX_EXPLAIN_MAX_SAMPLES, "tfx_explain: %s samples = %d is above the cap "
                   "TFX_EXPLAIN_MAX_SAMPLES = %d", what, c->o.samples, TFX_EXPLAIN_MAX_SAMPLES);
    TFX__CHECK_ARG(c->o.noise >= 0.0f && isfinite(c->o.noise), "tfx_explain: %s noise = %g must be finite "
                   "and >= 0", what, (double)c->o.noise);
    /* Only SmoothGrad has a tf-explain mode: the cross-entropy target, absolute sigma, |mean|. */
    int compat = method == TFX_METHOD_SMOOTH_GRAD && c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_XENT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t S = (size_t)c->o.samples, D = c->in_sz;
    size_t rows_total;
    if (tfx__mul_size(c->n, S, &rows_total))
        return tfx__error(TFX_EINVAL, "tfx_explain: %s work size overflows", what);
    job jb = {.c = c, .times_input = base == TFX_METHOD_GRADIENTS_INPUTS, .tunnel = tunnel, .compat = compat, .S = S};
    jb.sum = tfx__calloc(D, sizeof(double));
    if (tunnel != TFX_TUNNEL_SMOOTHGRAD) jb.sq = tfx__calloc(D, sizeof(double));
    if (!jb.sum || (tunnel != TFX_TUNNEL_SMOOTHGRAD && !jb.sq)) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for %s", what);
        goto out;
    }
    tfx__rng_seed(&jb.rng, c->o.seed);
    jb.gen = c->hooks && c->hooks->rng ? c->hooks->rng : &jb.rng;
    /* The plain gradient runs without a rule (the engine's default), as vanilla gradients. */
    tfx__rows d = {.per_image = S, .pass = TFX__PASS_GRADIENT,
                   .rule = rule == TFX__RULE_GRADIENT ? NULL : tfx__explain_rule(rule), .u = &jb,
                   .begin = begin, .make = make, .row = row, .end = end};
    rc = tfx__explain_rows(c, &d);
out:
    tfx__free(jb.sum);
    tfx__free(jb.sq);
    return rc;
}
