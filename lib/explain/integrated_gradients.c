/* Integrated Gradients (Sundararajan et al.): black baseline x' = 0, attribution
 * (x - x') * sum_k w_k grad(x' + alpha_k (x - x')) with the nodes and weights of o->ig_rule
 * (default: the right Riemann sum alpha_k = k/m, k = 1..m, w_k = 1/m), and the completeness gap
 * |sum attribution - (S(x) - S(x'))| per image. Rows (image, step) go through the row driver; the
 * baseline rides as its lead row (zero seed, scored for every class). Rules whose last node is
 * not x itself (left, middle, Gauss-Legendre) score the images in one extra forward pass. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

/* Gauss-Legendre: Newton's iteration on P_m in double from Tricomi's guesses
 * (1 - 1/(8m^2) + 1/(8m^3)) cos(pi (4i + 3) / (4m + 2)), two or three steps per root. The roots are
 * symmetric, so only the upper half is iterated, GL_LANES roots at a time: the three-term
 * recurrence is a chain of dependent divisions, and independent lanes overlap them. O(m^2) work:
 * 1 ms at m = 1000, 0.1 s at m = 10^4, about 10 s at the cap 10^5 (next to m forward/backward
 * passes per image). */
#define GL_LANES 8

/* P_m(z[l]) and P_m'(z[l]) for GL_LANES values, |z| < 1. */
static void legendre_lanes(size_t m, const double *z, double *p, double *dp)
{
    double p0[GL_LANES], p1[GL_LANES];
    for (size_t l = 0; l < GL_LANES; l++) {
        p0[l] = 1.0;
        p1[l] = z[l];
    }
    for (size_t j = 2; j <= m; j++) { /* P_j = ((2j - 1) z P_{j-1} - (j - 1) P_{j-2}) / j */
        const double a = (double)(2 * j - 1), b = (double)(j - 1), c = (double)j;
        for (size_t l = 0; l < GL_LANES; l++) {
            double p2 = (a * z[l] * p1[l] - b * p0[l]) / c;
            p0[l] = p1[l];
            p1[l] = p2;
        }
    }
    for (size_t l = 0; l < GL_LANES; l++) {
        p[l] = p1[l];
        dp[l] = (double)m * (z[l] * p1[l] - p0[l]) / (z[l] * z[l] - 1.0);
    }
}

void tfx__gauss_legendre(size_t m, double *x, double *w)
{
    const double pi = 3.14159265358979323846, M = (double)m;
    const double shrink = 1.0 - 1.0 / (8.0 * M * M) + 1.0 / (8.0 * M * M * M);
    const size_t half = (m + 1) / 2;
    for (size_t i0 = 0; i0 < half; i0 += GL_LANES) {
        double z[GL_LANES], p[GL_LANES], dp[GL_LANES];
        for (size_t l = 0; l < GL_LANES; l++) { /* lanes past the half repeat its last root */
            size_t i = i0 + l < half ? i0 + l : half - 1;
            z[l] = shrink * cos(pi * ((double)i + 0.75) / (M + 0.5));
        }
        for (int it = 0; it < 100; it++) {
            legendre_lanes(m, z, p, dp);
            int done = 1;
            for (size_t l = 0; l < GL_LANES; l++) {
                double dz = p[l] / dp[l];
                z[l] -= dz;
                done &= fabs(dz) <= 1e-15;
            }
            if (done) break;
        }
        legendre_lanes(m, z, p, dp); /* P_m' at the final roots, for the weights */
        for (size_t l = 0; l < GL_LANES && i0 + l < half; l++) {
            const size_t i = i0 + l;
            double zi = 2 * i + 1 == m ? 0.0 : z[l]; /* the middle root of an odd m is 0 exactly (numpy too) */
            double wi = 2.0 / ((1.0 - z[l] * z[l]) * dp[l] * dp[l]);
            x[i] = -zi;
            x[m - 1 - i] = zi;
            w[i] = w[m - 1 - i] = wi;
        }
    }
}

int tfx__ig_rule_nodes(int rule, size_t m, double *alpha, double *w)
{
    if (m < 1 || (rule == TFX_IG_TRAPEZOID && m < 2))
        return tfx__error(TFX_EINVAL, "tfx_explain: Integrated Gradients steps = %zu must be > %d for ig_rule %d", m,
                          rule == TFX_IG_TRAPEZOID ? 1 : 0, rule);
    const double M = (double)m;
    switch (rule) {
    case TFX_IG_RIEMANN_RIGHT:
    case TFX_IG_RIEMANN_LEFT:
    case TFX_IG_RIEMANN_MIDDLE: {
        const double off = rule == TFX_IG_RIEMANN_RIGHT ? 1.0 : rule == TFX_IG_RIEMANN_LEFT ? 0.0 : 0.5;
        for (size_t k = 0; k < m; k++) {
            alpha[k] = ((double)k + off) / M;
            w[k] = 1.0 / M;
        }
        return TFX_OK;
    }
    case TFX_IG_TRAPEZOID:
        for (size_t k = 0; k < m; k++) {
            alpha[k] = (double)k / (M - 1.0);
            w[k] = (k == 0 || k == m - 1 ? 0.5 : 1.0) / (M - 1.0);
        }
        alpha[m - 1] = 1.0;
        return TFX_OK;
    case TFX_IG_GAUSS_LEGENDRE:
        tfx__gauss_legendre(m, alpha, w);
        for (size_t k = 0; k < m; k++) { /* [-1, 1] -> [0, 1], as Captum maps numpy's leggauss */
            alpha[k] = 0.5 * (1.0 + alpha[k]);
            w[k] *= 0.5;
        }
        return TFX_OK;
    default:
        return tfx__error(TFX_EINVAL, "tfx_explain: unknown ig_rule %d", rule);
    }
}

typedef struct job {
    tfx__xctx *c;
    size_t M;
    const double *alpha; /* M path nodes */
    const double *w;     /* M weights; NULL: all equal, the mean (right Riemann sum, compat) */
    int last_is_x;       /* alpha[M - 1] = 1: S(x) is the last step's score */
    double *acc;         /* D: (weighted) sum of the path gradients of the current image */
    double *base;        /* K: S(x') per class */
    double *sx;          /* n: S(x) from the extra forward pass (!last_is_x) */
    double last;         /* S(x) of the current image (last_is_x) */
    int compat;
} job;

static int make(void *u, size_t i, size_t k, float *row)
{
    const job *jb = u;
    const tfx__xctx *c = jb->c;
    const size_t D = c->in_sz;
    if (i == TFX__LEAD_ROW) { /* the baseline */
        memset(row, 0, D * sizeof(float));
        return 1;
    }
    float alpha = (float)jb->alpha[k];
    const float *xi = c->x + i * D;
    for (size_t j = 0; j < D; j++) row[j] = alpha * xi[j]; /* x' + alpha (x - x'), x' = 0 */
    return 1;
}

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    const tfx__xctx *c = jb->c;
    if (ch->image[b] == TFX__LEAD_ROW) {
        for (size_t k = 0; k < c->K; k++) jb->base[k] = tfx__explain_score(c, b, (int)k);
        return TFX_OK;
    }
    const float *g = ch->grad + b * c->in_sz;
    const size_t k = ch->index[b];
    if (jb->w) {
        const double wk = jb->w[k];
        for (size_t j = 0; j < c->in_sz; j++) jb->acc[j] += wk * g[j];
    } else {
        for (size_t j = 0; j < c->in_sz; j++) jb->acc[j] += g[j];
    }
    if (jb->last_is_x && k == jb->M - 1) jb->last = tfx__explain_score(c, b, ch->cls[b]);
    return TFX_OK;
}

static int end(void *u, size_t i)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    const size_t D = c->in_sz;
    const float *xi = c->x + i * D;
    float *dst = c->a->data + i * D;
    double sum = 0.0;
    for (size_t j = 0; j < D; j++) {
        double mean = jb->w ? jb->acc[j] : jb->acc[j] / (double)jb->M;
        float v = jb->compat ? (float)fabs(mean) : (float)(xi[j] * mean);
        dst[j] = v;
        sum += v;
    }
    double diff = (jb->last_is_x ? jb->last : jb->sx[i]) - jb->base[c->classes[i]];
    c->a->ig_diff[i] = diff;
    c->a->ig_delta[i] = fabs(sum - diff);
    memset(jb->acc, 0, D * sizeof(double));
    return TFX_OK;
}

/* The extra forward pass: S(x) of each image, read in place. */
static int score_x(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    jb->sx[ch->image[b]] = tfx__explain_score(jb->c, b, ch->cls[b]);
    return TFX_OK;
}

int tfx__explain_integrated_gradients(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    /* tf-explain's path (compat) has one rule of its own: alpha_k = k/(m-1), k = 0..m-1, a plain mean. */
    int rule = compat ? TFX_IG_RIEMANN_RIGHT : c->o.ig_rule;
    TFX__CHECK_ARG(c->o.steps > 0, "tfx_explain: Integrated Gradients steps = %d must be > 0", c->o.steps);
    TFX__CHECK_ARG(c->o.steps <= TFX_EXPLAIN_MAX_STEPS, "tfx_explain: Integrated Gradients steps = %d is above "
                   "the cap TFX_EXPLAIN_MAX_STEPS = %d", c->o.steps, TFX_EXPLAIN_MAX_STEPS);
    /* tf-explain's alpha_k = k/(m-1) divides by zero for m = 1. */
    TFX__CHECK_ARG(!compat || c->o.steps > 1, "tfx_explain: Integrated Gradients steps = %d must be > 1 in "
                   "tf-explain compat mode (alpha = k/(steps-1))", c->o.steps);
    TFX__CHECK_ARG(rule != TFX_IG_TRAPEZOID || c->o.steps > 1, "tfx_explain: Integrated Gradients steps = %d must "
                   "be > 1 with ig_rule TFX_IG_TRAPEZOID (nodes k/(steps-1))", c->o.steps);
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_OUTPUT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t M = (size_t)c->o.steps;
    size_t rows_total;
    if (tfx__mul_size(c->n, M, &rows_total))
        return tfx__error(TFX_EINVAL, "tfx_explain: Integrated Gradients work size overflows");
    job jb = {.c = c, .M = M, .compat = compat};
    double *alpha = tfx__malloc(2 * M * sizeof(double)), *w = alpha ? alpha + M : NULL;
    jb.acc = tfx__calloc(c->in_sz, sizeof(double));
    jb.base = tfx__malloc(c->K * sizeof(double));
    c->a->ig_delta = tfx__calloc(c->n, sizeof(double));
    c->a->ig_diff = tfx__calloc(c->n, sizeof(double));
    if (!alpha || !c->a->ig_delta || !c->a->ig_diff || !jb.acc || !jb.base) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Integrated Gradients");
        goto out;
    }
    if (compat) {
        for (size_t k = 0; k < M; k++) alpha[k] = (double)k / (double)(M - 1);
    } else {
        rc = tfx__ig_rule_nodes(rule, M, alpha, w);
        if (rc) goto out;
    }
    jb.alpha = alpha;
    /* Equal weights are a plain sum divided by m at the end, the default's arithmetic. */
    jb.w = compat || rule <= TFX_IG_RIEMANN_MIDDLE ? NULL : w;
    jb.last_is_x = alpha[M - 1] == 1.0;
    if (!jb.last_is_x) {
        jb.sx = tfx__malloc((c->n ? c->n : 1) * sizeof(double));
        if (!jb.sx) {
            rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Integrated Gradients");
            goto out;
        }
        tfx__rows fx = {.pass = TFX__PASS_FORWARD, .u = &jb, .row = score_x};
        rc = tfx__explain_rows(c, &fx);
        if (rc) goto out;
    }
    tfx__rows d = {.per_image = M, .lead = 1, .pass = TFX__PASS_GRADIENT, .u = &jb,
                   .make = make, .row = row, .end = end};
    rc = tfx__explain_rows(c, &d);
out:
    tfx__free(alpha);
    tfx__free(jb.acc);
    tfx__free(jb.base);
    tfx__free(jb.sx);
    return rc;
}
