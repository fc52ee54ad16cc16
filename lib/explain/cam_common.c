/* The gradient-CAM driver shared by Grad-CAM++, Layer-CAM, XGrad-CAM, HiResCAM and Guided
 * Grad-CAM: per chunk of images one forward and one backward stopping at the layer, then the
 * method's formula per image, the final ReLU and the optional bilinear upsampling (the
 * renderer's resize, as Grad-CAM). */
#include <string.h>

#include "render/render.h"
#include "explain/roadmap.h"

int tfx__cam_layer(tfx__xctx *c, const char *what, size_t *li)
{
    int rc = tfx__explain_find_layer(c, c->o.layer_name, 1, li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[*li];
    memcpy(c->a->layer, l->name, sizeof c->a->layer);
    rc = tfx__explain_set_target(c, TFX__TARGET_LOGIT);
    if (rc) return rc;
    if (*li >= c->t.top)
        return tfx__error(TFX_EINVAL, "tfx_explain: layer '%s' is the model's score layer; %s needs a layer below it",
                          l->name, what);
    return TFX_OK;
}

int tfx__cam_chunk(tfx__xctx *c, size_t li, const float *rows, size_t nb, const int *cls, tfx__cam_formula f,
                   double *wk, float *cams)
{
    const tfx_layer *l = c->m->layers[li];
    const size_t hw = (size_t)l->out.h * l->out.w, per = hw * (size_t)l->out.c;
    float *G;
    /* Backward down to (and through) layer li + 1: the gradient w.r.t. A. */
    int rc = tfx__explain_gradient(c, rows, nb, cls, li + 1, &G);
    if (rc) return rc;
    const float *A = tfx__model_layer_output(c->m, li);
    for (size_t b = 0; b < nb; b++) f(c, A + b * per, G + b * per, hw, l->out.c, wk, cams + b * hw);
    return TFX_OK;
}

int tfx__cam_store(const tfx__xctx *c, float *cam, int h, int w, float *dst)
{
    const size_t hw = (size_t)h * w;
    for (size_t p = 0; p < hw; p++) cam[p] = cam[p] > 0.0f ? cam[p] : 0.0f;
    if (c->o.upsample) return tfx__resize_f32(cam, h, w, 1, dst, c->in.h, c->in.w);
    memcpy(dst, cam, hw * sizeof(float));
    return TFX_OK;
}

int tfx__cam_gradient_method(tfx__xctx *c, const char *what, tfx__cam_formula f)
{
    size_t li;
    int rc = tfx__cam_layer(c, what, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c;
    const int oh = c->o.upsample ? c->in.h : h, ow = c->o.upsample ? c->in.w : w;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, oh, ow, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w;
    double *wk = tfx__malloc((size_t)k * sizeof(double));
    float *cams = tfx__malloc(c->batch * hw * sizeof(float));
    if (!wk || !cams) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for %s", what);
        goto out;
    }
    for (size_t s = 0; s < c->n && !rc; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        rc = tfx__cam_chunk(c, li, c->x + s * c->in_sz, nb, c->classes + s, f, wk, cams);
        for (size_t b = 0; b < nb && !rc; b++)
            rc = tfx__cam_store(c, cams + b * hw, h, w, c->a->data + (s + b) * (size_t)oh * ow);
    }
out:
    tfx__free(wk);
    tfx__free(cams);
    return rc;
}

/* Grad-CAM (Selvaraju et al.): w_k = mean_ij g; cam = sum_k w_k A_k. */
void tfx__cam_formula_grad_cam(const tfx__xctx *c, const float *A, const float *G, size_t hw, int k, double *wk,
                               float *cam)
{
    (void)c;
    for (int q = 0; q < k; q++) wk[q] = 0.0;
    for (size_t p = 0; p < hw; p++)
        for (int q = 0; q < k; q++) wk[q] += G[p * k + q];
    for (int q = 0; q < k; q++) wk[q] /= (double)hw;
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += wk[q] * A[p * k + q];
        cam[p] = (float)v;
    }
}
