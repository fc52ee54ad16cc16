/* Noise tunnel (Captum's NoiseTunnel): a gradient method evaluated on `samples` noisy copies
 * x + N(0, sigma^2), sigma = noise * (max x - min x) per image, reduced per element as the mean
 * (SmoothGrad, Smilkov et al.), the mean of squares (SmoothGrad^2, Hooker et al.) or the
 * variance (VarGrad, Adebayo et al.; 1/N). Base methods: vanilla gradients, gradients x inputs
 * (the noisy input times its gradient, as Captum), guided backprop, DeconvNet. Rows (image,
 * sample) and their noise are generated exactly as SmoothGrad's, so the tunnel over vanilla
 * gradients with TFX_TUNNEL_SMOOTHGRAD is SmoothGrad, and the result does not depend on
 * batch_size. Guided SmoothGrad is the tunnel over guided backprop. */
#include <math.h>
#include <string.h>

#include "explain/roadmap.h"

int tfx__explain_noise_tunnel(tfx__xctx *c, int base, int tunnel)
{
    int rule, times_input = 0;
    switch (base) {
    case TFX_METHOD_VANILLA_GRADIENTS: rule = TFX__RULE_GRADIENT; break;
    case TFX_METHOD_GRADIENTS_INPUTS: rule = TFX__RULE_GRADIENT; times_input = 1; break;
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
    TFX__CHECK_ARG(c->o.samples > 0, "tfx_explain: noise tunnel samples = %d must be > 0", c->o.samples);
    TFX__CHECK_ARG(c->o.noise >= 0.0f && isfinite(c->o.noise), "tfx_explain: noise tunnel noise = %g must be finite "
                   "and >= 0", (double)c->o.noise);
    int rc = tfx__explain_set_target(c, TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;

    const size_t S = (size_t)c->o.samples, D = c->in_sz, B = c->batch;
    size_t rows_total, buf_sz;
    if (tfx__mul_size(c->n, S, &rows_total) || tfx__mul_size(B, D, &buf_sz) ||
        tfx__mul_size(buf_sz, sizeof(float), &buf_sz))
        return tfx__error(TFX_EINVAL, "tfx_explain: noise tunnel work size overflows");
    float *buf = tfx__malloc(buf_sz);
    int *cls = tfx__malloc(B * sizeof(int));
    double *sum = tfx__calloc(D, sizeof(double)), *sq = tfx__calloc(D, sizeof(double));
    if (!buf || !cls || !sum || !sq) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for the noise tunnel");
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
            if (r % S == 0) {
                float lo = xi[0], hi = xi[0];
                for (size_t j = 1; j < D; j++) {
                    lo = xi[j] < lo ? xi[j] : lo;
                    hi = xi[j] > hi ? xi[j] : hi;
                }
                sigma = c->o.noise * (hi - lo);
            }
            float *row = buf + b * D;
            const float *eps = c->hooks && c->hooks->noise ? c->hooks->noise + r * D : NULL;
            for (size_t j = 0; j < D; j++)
                row[j] = xi[j] + sigma * (eps ? eps[j] : (float)tfx__rng_normal(&rng));
            cls[b] = c->classes[i];
        }
        float *g;
        rc = tfx__explain_rule_gradient(c, rule, buf, nb, cls, &g);
        if (rc) goto out;
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / S;
            const float *gb = g + b * D, *xb = buf + b * D;
            for (size_t j = 0; j < D; j++) {
                double v = times_input ? (double)(gb[j] * xb[j]) : (double)gb[j];
                sum[j] += v;
                sq[j] += v * v;
            }
            if (r % S == S - 1) {
                float *dst = c->a->data + i * D;
                for (size_t j = 0; j < D; j++) {
                    double mean = sum[j] / (double)S, msq = sq[j] / (double)S, v;
                    if (tunnel == TFX_TUNNEL_SMOOTHGRAD) v = mean;
                    else if (tunnel == TFX_TUNNEL_SMOOTHGRAD_SQ) v = msq;
                    else v = msq - mean * mean > 0.0 ? msq - mean * mean : 0.0;
                    dst[j] = (float)v;
                }
                memset(sum, 0, D * sizeof(double));
                memset(sq, 0, D * sizeof(double));
            }
        }
    }
out:
    tfx__free(buf);
    tfx__free(cls);
    tfx__free(sum);
    tfx__free(sq);
    return rc;
}
