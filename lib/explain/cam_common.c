/* The gradient-CAM pass shared by Grad-CAM, Grad-CAM++, Layer-CAM, XGrad-CAM, HiResCAM and
 * Guided Grad-CAM: the images through the row driver's gradient pass stopping at the layer,
 * then the method's formula per image, the final ReLU and the optional bilinear upsampling (the
 * renderer's resize, OpenCV's arithmetic). */
#include <string.h>

#include "render/render.h"
#include "explain/cam.h"

int tfx__cam_layer(tfx__xctx *c, const char *what, int target, size_t *li)
{
    int rc = tfx__explain_find_layer(c, c->o.layer_name, 1, li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[*li];
    memcpy(c->a->layer, l->name, sizeof c->a->layer);
    rc = tfx__explain_set_target(c, target);
    if (rc) return rc;
    if (*li >= c->t.top)
        return tfx__error(TFX_EINVAL, "tfx_explain: layer '%s' is the model's score layer; %s needs a layer below it",
                          l->name, what);
    return TFX_OK;
}

int tfx__cam_store(const tfx__xctx *c, int flags, float *cam, int h, int w, float *dst)
{
    const size_t hw = (size_t)h * w;
    if (!(flags & TFX__CAM_NO_RELU))
        for (size_t p = 0; p < hw; p++) cam[p] = cam[p] > 0.0f ? cam[p] : 0.0f;
    if (flags & TFX__CAM_UPSAMPLE) return tfx__resize_f32(cam, h, w, 1, dst, c->in.h, c->in.w);
    memcpy(dst, cam, hw * sizeof(float));
    return TFX_OK;
}

typedef struct job {
    tfx__xctx *c;
    const tfx_layer *l;
    size_t li, per;
    tfx__cam_formula f;
    int flags;
    double *wk;
    float *cam;
    float *(*dest)(void *u, size_t i);
    int (*done)(void *u, size_t i);
    void *u;
} job;

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    const job *jb = u;
    const int h = jb->l->out.h, w = jb->l->out.w, k = jb->l->out.c;
    const float *A = tfx__model_layer_output(jb->c->m, jb->li);
    jb->f(jb->c, jb->flags, A + b * jb->per, ch->grad + b * jb->per, (size_t)h * w, k, jb->wk, jb->cam);
    size_t i = ch->image[b];
    int rc = tfx__cam_store(jb->c, jb->flags, jb->cam, h, w, jb->dest(jb->u, i));
    if (!rc && jb->done) rc = jb->done(jb->u, i);
    return rc;
}

int tfx__cam_pass(tfx__xctx *c, size_t li, tfx__cam_formula f, int flags, float *(*dest)(void *u, size_t i),
                  int (*done)(void *u, size_t i), void *u)
{
    const tfx_layer *l = c->m->layers[li];
    const size_t hw = (size_t)l->out.h * l->out.w;
    job jb = {c, l, li, hw * (size_t)l->out.c, f, flags, tfx__malloc((size_t)l->out.c * sizeof(double)),
              tfx__malloc(hw * sizeof(float)), dest, done, u};
    int rc;
    if (!jb.wk || !jb.cam) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for a %zu x %d CAM", hw, l->out.c);
    } else {
        /* Backward down to (and through) layer li + 1: the gradient w.r.t. A. */
        tfx__rows d = {.pass = TFX__PASS_GRADIENT, .layer = li + 1, .u = &jb, .row = row};
        rc = tfx__explain_rows(c, &d);
    }
    tfx__free(jb.wk);
    tfx__free(jb.cam);
    return rc;
}

static float *into_maps(void *u, size_t i)
{
    tfx__xctx *c = u;
    return c->a->data + i * (size_t)c->a->h * c->a->w;
}

int tfx__cam_gradient_method_ex(tfx__xctx *c, const char *what, tfx__cam_formula f, int target, int flags)
{
    size_t li;
    int rc = tfx__cam_layer(c, what, target, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    if (c->o.upsample) flags |= TFX__CAM_UPSAMPLE;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = flags & TFX__CAM_UPSAMPLE ? tfx__explain_alloc_maps(c, c->in.h, c->in.w, 1)
                                            : tfx__explain_alloc_maps(c, l->out.h, l->out.w, 1);
    if (rc) return rc;
    return tfx__cam_pass(c, li, f, flags, into_maps, NULL, c);
}

int tfx__cam_gradient_method(tfx__xctx *c, const char *what, tfx__cam_formula f)
{
    return tfx__cam_gradient_method_ex(c, what, f, TFX__TARGET_LOGIT, 0);
}

void tfx__cam_formula_grad_cam(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k,
                               double *wk, float *cam)
{
    (void)c;
    for (int q = 0; q < k; q++) wk[q] = 0.0;
    if (flags & TFX__CAM_GATE) {
        for (size_t p = 0; p < hw; p++)
            for (int q = 0; q < k; q++) {
                float g = G[p * k + q];
                if (!(A[p * k + q] > 0.0f && g > 0.0f)) g = 0.0f;
                wk[q] += g;
            }
    } else {
        for (size_t p = 0; p < hw; p++)
            for (int q = 0; q < k; q++) wk[q] += G[p * k + q];
    }
    for (int q = 0; q < k; q++) wk[q] /= (double)hw;
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += wk[q] * A[p * k + q];
        cam[p] = (float)v;
    }
}
