/* Integrated Gradients (Sundararajan et al.): black baseline x' = 0, right Riemann sum
 * alpha_k = k/m (k = 1..m), attribution (x - x') * mean_k grad(x' + alpha_k (x - x')), and the
 * completeness gap |sum attribution - (S(x) - S(x'))| per image. Rows (image, step) go through
 * the row driver; the baseline rides as its lead row (zero seed, scored for every class). */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

typedef struct job {
    tfx__xctx *c;
    int compat;
    size_t M;
    double *acc;  /* D: sum of the path gradients of the current image */
    double *base; /* K: S(x') per class */
    double last;  /* S(x) of the current image: its last step is the image itself */
} job;

static int make(void *u, size_t i, size_t k, float *row)
{
    const job *jb = u;
    const tfx__xctx *c = jb->c;
    const size_t D = c->in_sz, M = jb->M;
    if (i == TFX__LEAD_ROW) { /* the baseline */
        memset(row, 0, D * sizeof(float));
        return 1;
    }
    float alpha = jb->compat ? (float)((double)k / (double)(M - 1)) : (float)((double)(k + 1) / (double)M);
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
    for (size_t j = 0; j < c->in_sz; j++) jb->acc[j] += g[j];
    if (ch->index[b] == jb->M - 1) jb->last = tfx__explain_score(c, b, ch->cls[b]);
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
        double mean = jb->acc[j] / (double)jb->M;
        float v = jb->compat ? (float)fabs(mean) : (float)(xi[j] * mean);
        dst[j] = v;
        sum += v;
    }
    double diff = jb->last - jb->base[c->classes[i]];
    c->a->ig_diff[i] = diff;
    c->a->ig_delta[i] = fabs(sum - diff);
    memset(jb->acc, 0, D * sizeof(double));
    return TFX_OK;
}

int tfx__explain_integrated_gradients(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    TFX__CHECK_ARG(c->o.steps > 0, "tfx_explain: Integrated Gradients steps = %d must be > 0", c->o.steps);
    TFX__CHECK_ARG(c->o.steps <= TFX_EXPLAIN_MAX_STEPS, "tfx_explain: Integrated Gradients steps = %d is above "
                   "the cap TFX_EXPLAIN_MAX_STEPS = %d", c->o.steps, TFX_EXPLAIN_MAX_STEPS);
    /* tf-explain's alpha_k = k/(m-1) divides by zero for m = 1. */
    TFX__CHECK_ARG(!compat || c->o.steps > 1, "tfx_explain: Integrated Gradients steps = %d must be > 1 in "
                   "tf-explain compat mode (alpha = k/(steps-1))", c->o.steps);
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_OUTPUT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t M = (size_t)c->o.steps;
    size_t rows_total;
    if (tfx__mul_size(c->n, M, &rows_total))
        return tfx__error(TFX_EINVAL, "tfx_explain: Integrated Gradients work size overflows");
    job jb = {c, compat, M, tfx__calloc(c->in_sz, sizeof(double)), tfx__malloc(c->K * sizeof(double)), 0.0};
    c->a->ig_delta = tfx__calloc(c->n, sizeof(double));
    c->a->ig_diff = tfx__calloc(c->n, sizeof(double));
    if (!c->a->ig_delta || !c->a->ig_diff || !jb.acc || !jb.base) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Integrated Gradients");
        goto out;
    }
    tfx__rows d = {.per_image = M, .lead = 1, .pass = TFX__PASS_GRADIENT, .u = &jb,
                   .make = make, .row = row, .end = end};
    rc = tfx__explain_rows(c, &d);
out:
    tfx__free(jb.acc);
    tfx__free(jb.base);
    return rc;
}
