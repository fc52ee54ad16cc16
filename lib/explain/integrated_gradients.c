/* Integrated Gradients (Sundararajan et al.): black baseline x' = 0, right Riemann sum
 * alpha_k = k/m (k = 1..m), attribution (x - x') * mean_k grad(x' + alpha_k (x - x')), and the
 * completeness gap |sum attribution - (S(x) - S(x'))| per image. Rows (image, step) go
 * through the model in chunks of batch_size. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

int tfx__explain_integrated_gradients(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    TFX__CHECK_ARG(c->o.steps > 0, "tfx_explain: Integrated Gradients steps = %d must be > 0", c->o.steps);
    /* tf-explain's alpha_k = k/(m-1) divides by zero for m = 1. */
    TFX__CHECK_ARG(!compat || c->o.steps > 1, "tfx_explain: Integrated Gradients steps = %d must be > 1 in "
                   "tf-explain compat mode (alpha = k/(steps-1))", c->o.steps);
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_OUTPUT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t M = (size_t)c->o.steps, D = c->in_sz, B = c->batch, K = c->K;
    size_t rows_total, buf_sz;
    if (tfx__mul_size(c->n, M, &rows_total) || tfx__mul_size(B, D, &buf_sz) ||
        tfx__mul_size(buf_sz, sizeof(float), &buf_sz))
        return tfx__error(TFX_EINVAL, "tfx_explain: Integrated Gradients work size overflows");
    c->a->ig_delta = tfx__calloc(c->n, sizeof(double));
    c->a->ig_diff = tfx__calloc(c->n, sizeof(double));
    float *buf = tfx__malloc(buf_sz);
    int *cls = tfx__malloc((B > K ? B : K) * sizeof(int));
    double *acc = tfx__calloc(D, sizeof(double));
    double *sc = tfx__malloc((B > K ? B : K) * sizeof(double));
    double *base = tfx__malloc(K * sizeof(double));
    double *sx = tfx__malloc(c->n * sizeof(double));
    if (!c->a->ig_delta || !c->a->ig_diff || !buf || !cls || !acc || !sc || !base || !sx) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Integrated Gradients");
        goto out;
    }
    /* Scores of the baseline (the same black image for every image) for every class: the
     * black image rides as row 0 of the first chunk (zero seed), or alone when chunks hold
     * one row. */
    const size_t lead0 = B > 1 ? 1 : 0;
    if (!lead0) {
        memset(buf, 0, D * sizeof(float));
        rc = tfx__model_forward(c->m, buf, 1, 0);
        if (rc) {
            rc = tfx__error_prefix("tfx_explain");
            goto out;
        }
        for (size_t k = 0; k < K; k++) {
            int kk = (int)k;
            tfx__explain_scores(c, 1, &kk, &base[k]);
        }
    }
    for (size_t r0 = 0; r0 < rows_total;) {
        const size_t lead = r0 == 0 ? lead0 : 0;
        size_t nb = rows_total - r0 < B - lead ? rows_total - r0 : B - lead;
        if (lead) {
            memset(buf, 0, D * sizeof(float));
            cls[0] = -1;
        }
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / M, k = r % M;
            float alpha = compat ? (float)((double)k / (double)(M - 1)) : (float)((double)(k + 1) / (double)M);
            const float *xi = c->x + i * D;
            float *row = buf + (lead + b) * D;
            for (size_t j = 0; j < D; j++) row[j] = alpha * xi[j]; /* x' + alpha (x - x'), x' = 0 */
            cls[lead + b] = c->classes[i];
        }
        float *g;
        rc = tfx__explain_gradient(c, buf, lead + nb, cls, 0, &g);
        if (rc) goto out;
        if (lead)
            for (size_t k = 0; k < K; k++) {
                int kk = (int)k;
                tfx__explain_scores_at(c, 0, 1, &kk, &base[k]);
            }
        tfx__explain_scores_at(c, lead, nb, cls + lead, sc);
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / M;
            const float *gb = g + (lead + b) * D;
            for (size_t j = 0; j < D; j++) acc[j] += gb[j];
            if (r % M == M - 1) { /* last step: alpha = 1, the image itself */
                const float *xi = c->x + i * D;
                float *dst = c->a->data + i * D;
                double sum = 0.0;
                for (size_t j = 0; j < D; j++) {
                    double mean = acc[j] / (double)M;
                    float v = compat ? (float)fabs(mean) : (float)(xi[j] * mean);
                    dst[j] = v;
                    sum += v;
                }
                sx[i] = sc[b];
                double diff = sx[i] - base[c->classes[i]];
                c->a->ig_diff[i] = diff;
                c->a->ig_delta[i] = fabs(sum - diff);
                memset(acc, 0, D * sizeof(double));
            }
        }
        r0 += nb;
    }
out:
    tfx__free(buf);
    tfx__free(cls);
    tfx__free(acc);
    tfx__free(sc);
    tfx__free(base);
    tfx__free(sx);
    return rc;
}
