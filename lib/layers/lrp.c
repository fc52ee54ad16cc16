/* LRP rules (Bach et al. 2015; Montavon et al. 2018) for Conv2D/Dense and for the layers whose
 * plain backward already is their linear map's transpose (pooling, BatchNormalization). Every
 * rule has the efficient form  s = R / denominator,  c = J'^T s,  R_in = a * c  (J' the layer's
 * linear map with substitute weights: W, W+, W-), so a conv's transposed op is col2im of one
 * sgemm, exactly as its input gradient. */
#include <math.h>
#include <string.h>

#include "layers/lrp.h"
#include "layers/layer.h"

const char *tfx__rule_name(int kind)
{
    switch (kind) {
    case TFX__RULE_GRADIENT: return "gradient";
    case TFX__RULE_GUIDED: return "guided";
    case TFX__RULE_DECONVNET: return "deconvnet";
    case TFX__RULE_LRP_0: return "LRP-0";
    case TFX__RULE_LRP_EPSILON: return "LRP-epsilon";
    case TFX__RULE_LRP_ALPHA_BETA: return "LRP-alpha-beta";
    case TFX__RULE_LRP_ZPLUS: return "LRP-z+";
    case TFX__RULE_LRP_ZB: return "LRP-zB";
    default: return "unknown rule";
    }
}

/* The linear map of a Conv2D (via im2col; weights [K][F]; grouped and depthwise: the direct
 * grouped kernels) or a Dense layer (weights stored [F][K], lib/layers/dense.c), with any
 * weight array in that layout. */
typedef struct lin {
    int conv, groups;
    tfx__conv_geom g;
    size_t n, rows, K, F, in_total;
    float *col; /* conv: rows * K; grouped: rows * F */
} lin;

/* z (rows x F) = alpha * X(in) w + beta * z */
static void lin_fwd(lin *L, const float *in, const float *w, float alpha, float beta, float *z)
{
    if (L->groups > 1) {
        tfx__conv_grouped(&L->g, L->groups, L->n, in, w, L->F, L->col, NULL);
        for (size_t i = 0; i < L->rows * L->F; i++) z[i] = alpha * L->col[i] + (beta != 0.0f ? beta * z[i] : 0.0f);
        return;
    }
    const float *X = in;
    if (L->conv) {
        tfx__im2col(&L->g, L->n, in, L->col);
        X = L->col;
    }
    if (L->conv)
        tfx__sgemm(0, 0, L->rows, L->F, L->K, alpha, X, L->K, w, L->F, beta, z, L->F);
    else
        tfx__sgemm(0, 1, L->rows, L->F, L->K, alpha, X, L->K, w, L->K, beta, z, L->F);
}

/* out (input-shaped) = J_w^T s */
static void lin_bwd(lin *L, const float *s, const float *w, float *out)
{
    if (L->groups > 1) {
        tfx__conv_grouped_dx(&L->g, L->groups, L->n, s, w, L->F, out);
        return;
    }
    if (L->conv) {
        tfx__sgemm(0, 1, L->rows, L->K, L->F, 1.0f, s, L->F, w, L->F, 0.0f, L->col, L->K);
        tfx__col2im(&L->g, L->n, L->col, out);
    } else {
        tfx__sgemm(0, 0, L->rows, L->K, L->F, 1.0f, s, L->F, w, L->K, 0.0f, out, L->K);
    }
}

/* s = scale * R / d, 0 where d == 0 (no contribution: nothing to redistribute to). */
static void divide(float *s, const float *R, const float *d, float scale, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) s[i] = d[i] != 0.0f ? scale * R[i] / d[i] : 0.0f;
}

static int alloc_all(float **p, const size_t *sizes, int k, const char *name)
{
    for (int i = 0; i < k; i++) p[i] = NULL;
    for (int i = 0; i < k; i++) {
        size_t b;
        if (tfx__mul_size(sizes[i] ? sizes[i] : 1, sizeof(float), &b) || !(p[i] = tfx__malloc(b))) {
            for (int j = 0; j < i; j++) tfx__free(p[j]);
            return tfx__error(TFX_ENOMEM, "layer '%s': out of memory for LRP", name);
        }
    }
    return TFX_OK;
}

static int check_rule(const tfx_layer *l, const tfx__rule *rule)
{
    if (rule->kind == TFX__RULE_LRP_EPSILON && !(rule->epsilon >= 0.0f && isfinite(rule->epsilon)))
        return tfx__error(TFX_EINVAL, "layer '%s' (%s): LRP-epsilon needs a finite epsilon >= 0 (got %g)", l->name,
                          l->ops->type_name, (double)rule->epsilon);
    if (rule->kind == TFX__RULE_LRP_ALPHA_BETA &&
        !(isfinite(rule->alpha) && isfinite(rule->beta) && rule->beta >= 0.0f &&
          fabsf(rule->alpha - rule->beta - 1.0f) <= 1e-6f * (1.0f + fabsf(rule->alpha))))
        return tfx__error(TFX_EINVAL, "layer '%s' (%s): LRP-alpha-beta needs alpha - beta = 1 and beta >= 0 (got "
                          "alpha %g, beta %g)", l->name, l->ops->type_name, (double)rule->alpha, (double)rule->beta);
    if (rule->kind == TFX__RULE_LRP_ZB && !(isfinite(rule->low) && isfinite(rule->high) && rule->low <= rule->high))
        return tfx__error(TFX_EINVAL, "layer '%s' (%s): LRP-zB needs finite bounds low <= high (got %g, %g)", l->name,
                          l->ops->type_name, (double)rule->low, (double)rule->high);
    return TFX_OK;
}

int tfx__lrp_linear(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    (void)flags; /* the fused activation passes relevance through, with or without SKIP */
    int rc = check_rule(l, rule);
    if (rc || !dx) return rc;
    if (rule->kind < TFX__RULE_LRP_0 || rule->kind > TFX__RULE_LRP_ZB)
        return tfx__error(TFX_ENOTSUP, "layer '%s' (%s): rule %s is not implemented", l->name, l->ops->type_name,
                          tfx__rule_name(rule->kind));
    lin L;
    memset(&L, 0, sizeof L);
    L.conv = (l->ops->traits & TFX__TRAIT_CONVOLUTION) != 0;
    L.groups = L.conv && l->cfg.groups > 1 ? l->cfg.groups : 1;
    L.n = n;
    if (L.conv) {
        L.g = (tfx__conv_geom){l->in.h, l->in.w, l->in.c, l->out.h, l->out.w, l->cfg.kernel_h, l->cfg.kernel_w,
                               l->cfg.stride_h, l->cfg.stride_w, l->cfg.pad_top, l->cfg.pad_left};
        L.rows = n * l->out.h * l->out.w;
        L.K = (size_t)l->cfg.kernel_h * l->cfg.kernel_w * (size_t)(l->in.c / L.groups);
        L.F = (size_t)l->cfg.filters;
    } else {
        L.rows = n * l->in.h * l->in.w;
        L.K = (size_t)l->in.c;
        L.F = (size_t)l->cfg.units;
    }
    L.in_total = n * tfx__shape_size(l->in);
    const size_t RF = L.rows * L.F, KF = L.K * L.F, IN = L.in_total;
    const float *w = tfx__layer_params(l);
    /* col, z, s, s2, w+, w-, x+/ones, x-, t */
    float *b[9];
    size_t sizes[9] = {L.conv ? L.rows * L.K : 1, RF, RF, RF, KF, KF, IN, IN, IN};
    if (L.groups > 1) sizes[0] = RF;
    else if (L.conv && tfx__mul_size(L.rows, L.K, &sizes[0]))
        return tfx__error(TFX_ENOMEM, "layer '%s': LRP work size overflows", l->name);
    rc = alloc_all(b, sizes, 9, l->name);
    if (rc) return rc;
    L.col = b[0];
    float *z = b[1], *s = b[2], *s2 = b[3], *wp = b[4], *wn = b[5], *xp = b[6], *xn = b[7], *t = b[8];
    const float *R = dy;
    for (size_t i = 0; i < KF; i++) {
        wp[i] = w[i] > 0.0f ? w[i] : 0.0f;
        wn[i] = w[i] < 0.0f ? w[i] : 0.0f;
    }
    switch (rule->kind) {
    case TFX__RULE_LRP_0:
    case TFX__RULE_LRP_EPSILON: {
        /* z with the bias (it absorbs relevance); eps * sign(z), sign(0) = +1. */
        const float *zz = l->preact ? l->preact : y;
        float eps = rule->kind == TFX__RULE_LRP_EPSILON ? rule->epsilon : 0.0f;
        for (size_t i = 0; i < RF; i++) {
            float d = zz[i] + (zz[i] >= 0.0f ? eps : -eps);
            s[i] = d != 0.0f ? R[i] / d : 0.0f;
        }
        lin_bwd(&L, s, w, t);
        for (size_t i = 0; i < IN; i++) dx[i] = x[i] * t[i];
        break;
    }
    case TFX__RULE_LRP_ZPLUS:
        /* Textbook z+ (for a >= 0): proportional to a_j w+_jk, bias ignored. */
        lin_fwd(&L, x, wp, 1.0f, 0.0f, z);
        divide(s, R, z, 1.0f, RF);
        lin_bwd(&L, s, wp, t);
        for (size_t i = 0; i < IN; i++) dx[i] = x[i] * t[i];
        break;
    case TFX__RULE_LRP_ALPHA_BETA: {
        /* Positive part a+w+ + a-w-, negative part a+w- + a-w+ (inputs of any sign), bias ignored. */
        for (size_t i = 0; i < IN; i++) {
            xp[i] = x[i] > 0.0f ? x[i] : 0.0f;
            xn[i] = x[i] < 0.0f ? x[i] : 0.0f;
        }
        lin_fwd(&L, xp, wp, 1.0f, 0.0f, z);
        lin_fwd(&L, xn, wn, 1.0f, 1.0f, z);
        divide(s, R, z, rule->alpha, RF);
        lin_bwd(&L, s, wp, t);
        for (size_t i = 0; i < IN; i++) dx[i] = xp[i] * t[i];
        lin_bwd(&L, s, wn, t);
        for (size_t i = 0; i < IN; i++) dx[i] += xn[i] * t[i];
        if (rule->beta != 0.0f) {
            lin_fwd(&L, xp, wn, 1.0f, 0.0f, z);
            lin_fwd(&L, xn, wp, 1.0f, 1.0f, z);
            divide(s2, R, z, rule->beta, RF);
            lin_bwd(&L, s2, wn, t);
            for (size_t i = 0; i < IN; i++) dx[i] -= xp[i] * t[i];
            lin_bwd(&L, s2, wp, t);
            for (size_t i = 0; i < IN; i++) dx[i] -= xn[i] * t[i];
        }
        break;
    }
    default: { /* LRP_ZB: z = x w - l w+ - h w- over the box [low, high] (padding stays 0) */
        float *wb = wp; /* low w+ + high w-, reusing w+'s buffer */
        for (size_t i = 0; i < KF; i++) wb[i] = rule->low * wp[i] + rule->high * wn[i];
        for (size_t i = 0; i < IN; i++) xp[i] = 1.0f;
        lin_fwd(&L, x, w, 1.0f, 0.0f, z);
        lin_fwd(&L, xp, wb, -1.0f, 1.0f, z);
        divide(s, R, z, 1.0f, RF);
        lin_bwd(&L, s, w, t);
        for (size_t i = 0; i < IN; i++) dx[i] = x[i] * t[i];
        lin_bwd(&L, s, wb, t);
        for (size_t i = 0; i < IN; i++) dx[i] -= t[i];
        break;
    }
    }
    for (int i = 0; i < 9; i++) tfx__free(b[i]);
    return TFX_OK;
}

int tfx__lrp_elementwise_linear(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                                float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    int rc = check_rule(l, rule);
    if (rc) return rc;
    int bn = l->ops->kind == TFX_LAYER_BATCH_NORMALIZATION;
    if (rule->kind == TFX__RULE_LRP_ZB && !bn)
        return tfx__error(TFX_ENOTSUP, "layer '%s' (%s): rule %s is for input layers with weights (Conv2D, Dense), "
                          "not pooling", l->name, l->ops->type_name, tfx__rule_name(rule->kind));
    if (bn && run->training)
        return tfx__error(TFX_ESTATE, "layer '%s' (BatchNormalization): LRP needs an inference forward", l->name);
    if (!dx) return TFX_OK;
    const size_t out_total = n * tfx__shape_size(l->out), in_total = n * tfx__shape_size(l->in);
    if (bn && rule->kind != TFX__RULE_LRP_0 && rule->kind != TFX__RULE_LRP_EPSILON) {
        /* One input per output: with the shift ignored (as these rules ignore biases) the ratio is 1. */
        memcpy(dx, dy, in_total * sizeof(float));
        return TFX_OK;
    }
    /* Pooling weights are positive, so z+ and alpha-beta reduce to the z-rule for a >= 0. */
    float eps = rule->kind == TFX__RULE_LRP_EPSILON ? rule->epsilon : 0.0f;
    float *s = tfx__malloc((out_total ? out_total : 1) * sizeof(float));
    if (!s) return tfx__error(TFX_ENOMEM, "layer '%s': out of memory for LRP", l->name);
    for (size_t i = 0; i < out_total; i++) {
        float d = y[i] + (y[i] >= 0.0f ? eps : -eps);
        s[i] = d != 0.0f ? dy[i] / d : 0.0f;
    }
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    rc = l->ops->backward(l, run, x, y, s, dx, n, flags & ~TFX__BW_PARAM_GRADS, &plain);
    tfx__free(s);
    if (rc) return rc;
    for (size_t i = 0; i < in_total; i++) dx[i] *= x[i];
    return TFX_OK;
}
