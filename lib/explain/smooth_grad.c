/* SmoothGrad (Smilkov et al.): the mean class-score gradient over `samples` noisy copies
 * x + N(0, sigma^2), sigma = noise * (max x - min x) per image. Rows (image, sample) are
 * generated in order from a seeded generator, so the result does not depend on batch_size. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

int tfx__explain_smooth_grad(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    TFX__CHECK_ARG(c->o.samples > 0, "tfx_explain: SmoothGrad samples = %d must be > 0", c->o.samples);
    TFX__CHECK_ARG(c->o.noise >= 0.0f && isfinite(c->o.noise), "tfx_explain: SmoothGrad noise = %g must be finite "
                   "and >= 0", (double)c->o.noise);
    /* compat: tf-explain differentiates the categorical cross-entropy (research notes M6). */
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_XENT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t S = (size_t)c->o.samples, D = c->in_sz, B = c->batch;
    size_t rows_total, buf_sz;
    if (tfx__mul_size(c->n, S, &rows_total) || tfx__mul_size(B, D, &buf_sz) ||
        tfx__mul_size(buf_sz, sizeof(float), &buf_sz))
        return tfx__error(TFX_EINVAL, "tfx_explain: SmoothGrad work size overflows");
    float *buf = tfx__malloc(buf_sz);
    int *cls = tfx__malloc(B * sizeof(int));
    double *acc = tfx__calloc(D, sizeof(double));
    if (!buf || !cls || !acc) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for SmoothGrad");
        goto out;
    }
    tfx__rng rng;
    tfx__rng_seed(&rng, c->o.seed);
    float sigma = 0.0f;
    for (size_t r0 = 0; r0 < rows_total; r0 += B) {
        size_t nb = rows_total - r0 < B ? rows_total - r0 : B;
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / S;
            const float *xi = c->x + i * D;
            if (r % S == 0) { /* a new image: its noise level */
                if (compat) {
                    sigma = c->o.noise;
                } else {
                    float lo = xi[0], hi = xi[0];
                    for (size_t j = 1; j < D; j++) {
                        lo = xi[j] < lo ? xi[j] : lo;
                        hi = xi[j] > hi ? xi[j] : hi;
                    }
                    sigma = c->o.noise * (hi - lo);
                }
            }
            float *row = buf + b * D;
            const float *eps = c->hooks && c->hooks->noise ? c->hooks->noise + r * D : NULL;
            for (size_t j = 0; j < D; j++)
                row[j] = xi[j] + sigma * (eps ? eps[j] : (float)tfx__rng_normal(&rng));
            cls[b] = c->classes[i];
        }
        float *g;
        rc = tfx__explain_gradient(c, buf, nb, cls, 0, &g);
        if (rc) goto out;
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / S;
            const float *gb = g + b * D;
            for (size_t j = 0; j < D; j++) acc[j] += gb[j];
            if (r % S == S - 1) { /* last sample of image i */
                float *dst = c->a->data + i * D;
                for (size_t j = 0; j < D; j++) {
                    float v = (float)(acc[j] / (double)S);
                    dst[j] = compat ? fabsf(v) : v; /* tf-explain: |.| after the mean */
                }
                memset(acc, 0, D * sizeof(double));
            }
        }
    }
out:
    tfx__free(buf);
    tfx__free(cls);
    tfx__free(acc);
    return rc;
}
