/* Grad-CAM (Selvaraju et al.): channel weights = spatial mean of d score / d A over the chosen
 * layer's output A, map = ReLU(sum_k w_k A_k), at layer resolution or upsampled bilinearly to
 * the input. One forward + one backward (stopping at the layer) per chunk of images. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"
#include "render/render.h"

int tfx__explain_grad_cam(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    size_t li;
    int rc = tfx__explain_find_layer(c, c->o.layer_name, 1, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    memcpy(c->a->layer, l->name, sizeof c->a->layer);
    /* compat: tf-explain differentiates the final (post-softmax) output. */
    rc = tfx__explain_set_target(c, compat ? TFX__TARGET_OUTPUT : TFX__TARGET_LOGIT);
    if (rc) return rc;
    if (li >= c->t.top)
        return tfx__error(TFX_EINVAL, "tfx_explain: layer '%s' is the model's score layer; Grad-CAM needs a layer "
                                      "below it", l->name);
    /* tf-explain's use_guided_grads defaults to True; the paper has no gating. */
    int guided = c->o.guided < 0 ? compat : c->o.guided != 0;
    const int h = l->out.h, w = l->out.w, k = l->out.c;
    const int oh = c->o.upsample ? c->in.h : h, ow = c->o.upsample ? c->in.w : w;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, oh, ow, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, per = hw * k;
    double *wts = tfx__malloc((size_t)k * sizeof(double));
    float *cam = tfx__malloc(hw * sizeof(float));
    if (!wts || !cam) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Grad-CAM");
        goto out;
    }
    for (size_t s = 0; s < c->n; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        float *G;
        /* Backward down to (and through) layer li + 1: the gradient w.r.t. A. */
        rc = tfx__explain_gradient(c, c->x + s * c->in_sz, nb, c->classes + s, li + 1, &G);
        if (rc) goto out;
        const float *A = tfx__model_layer_output(c->m, li);
        for (size_t b = 0; b < nb; b++) {
            const float *Ab = A + b * per, *Gb = G + b * per;
            for (int q = 0; q < k; q++) wts[q] = 0.0;
            for (size_t p = 0; p < hw; p++)
                for (int q = 0; q < k; q++) {
                    float g = Gb[p * k + q];
                    if (guided && !(Ab[p * k + q] > 0.0f && g > 0.0f)) g = 0.0f;
                    wts[q] += g;
                }
            for (int q = 0; q < k; q++) wts[q] /= (double)hw;
            for (size_t p = 0; p < hw; p++) {
                double v = 0.0;
                for (int q = 0; q < k; q++) v += wts[q] * Ab[p * k + q];
                if (!compat && v < 0.0) v = 0.0; /* tf-explain applies no ReLU */
                cam[p] = (float)v;
            }
            float *dst = c->a->data + (s + b) * (size_t)oh * ow;
            if (c->o.upsample) {
                rc = tfx__resize_f32(cam, h, w, 1, dst, oh, ow); /* the renderer's resize, OpenCV's arithmetic */
                if (rc) goto out;
            } else
                memcpy(dst, cam, hw * sizeof(float));
        }
    }
out:
    tfx__free(wts);
    tfx__free(cam);
    return rc;
}
