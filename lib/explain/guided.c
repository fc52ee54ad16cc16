/* The guided family: guided backprop (Springenberg et al. 2015: every ReLU, fused or not, passes
 * the positive gradient where its input was positive), DeconvNet (Zeiler & Fergus 2014: the
 * positive gradient, whatever the input) and Guided Grad-CAM (Selvaraju et al.: guided backprop
 * times the Grad-CAM map upsampled to the input, broadcast over colour channels). The rules are
 * the engine's (tfx__rule, lib/core/activation.c); the pass is tfx__model_backward's. Other
 * activations (sigmoid, tanh, leaky ReLU ...) keep their plain gradient. */
#include <string.h>

#include "render/render.h"
#include "explain/roadmap.h"

int tfx__explain_rule_gradient(tfx__xctx *c, int rule_kind, const float *rows, size_t nb, const int *cls,
                               float **grad)
{
    tfx__rule rule = {rule_kind, 0, 0, 0, 0, 0};
    const tfx__rule *saved = c->rule;
    c->rule = &rule;
    int rc = tfx__explain_gradient(c, rows, nb, cls, 0, grad);
    c->rule = saved;
    return rc;
}

int tfx__explain_guided(tfx__xctx *c, int rule_kind)
{
    int rc = tfx__explain_set_target(c, TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    for (size_t s = 0; s < c->n; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        float *g;
        rc = tfx__explain_rule_gradient(c, rule_kind, c->x + s * c->in_sz, nb, c->classes + s, &g);
        if (rc) return rc;
        memcpy(c->a->data + s * c->in_sz, g, nb * c->in_sz * sizeof(float));
    }
    return TFX_OK;
}

int tfx__explain_guided_grad_cam(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__cam_layer(c, "Guided Grad-CAM", &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c, H = c->in.h, W = c->in.w, C = c->in.c;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, H, W, C);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, HW = (size_t)H * W;
    double *wk = tfx__malloc((size_t)k * sizeof(double));
    float *cams = tfx__malloc(c->batch * hw * sizeof(float));
    float *up = tfx__malloc(c->batch * HW * sizeof(float));
    if (!wk || !cams || !up) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Guided Grad-CAM");
        goto out;
    }
    /* The maps are always upsampled here: the product lives at input resolution. */
    tfx_explain_options keep = c->o;
    c->o.upsample = 1;
    for (size_t s = 0; s < c->n && !rc; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        const float *xb = c->x + s * c->in_sz;
        rc = tfx__cam_chunk(c, li, xb, nb, c->classes + s, tfx__cam_formula_grad_cam, wk, cams);
        for (size_t b = 0; b < nb && !rc; b++) rc = tfx__cam_store(c, cams + b * hw, h, w, up + b * HW);
        float *g;
        if (!rc) rc = tfx__explain_rule_gradient(c, TFX__RULE_GUIDED, xb, nb, c->classes + s, &g);
        if (rc) break;
        for (size_t b = 0; b < nb; b++) {
            float *dst = c->a->data + (s + b) * c->in_sz;
            const float *gb = g + b * c->in_sz, *ub = up + b * HW;
            for (size_t p = 0; p < HW; p++)
                for (int ch = 0; ch < C; ch++) dst[p * C + ch] = gb[p * C + ch] * ub[p];
        }
    }
    c->o = keep;
out:
    tfx__free(wk);
    tfx__free(cams);
    tfx__free(up);
    return rc;
}
