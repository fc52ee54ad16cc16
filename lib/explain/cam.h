/* The CAM family's shared pieces (cam_common.c): the CAM layer, the gradient-CAM pass (Grad-CAM,
 * Grad-CAM++, Layer-CAM, XGrad-CAM, HiResCAM, Guided Grad-CAM) and the final ReLU + resize. */
#ifndef TFX_EXPLAIN_CAM_H
#define TFX_EXPLAIN_CAM_H

#include "explain/explain_internal.h"

/* Gating flags of a gradient CAM. */
enum {
    TFX__CAM_GATE = 1,    /* zero the gradient where not (A > 0 and g > 0): tf-explain's guided grads */
    TFX__CAM_NO_RELU = 2, /* no final ReLU (tf-explain's Grad-CAM) */
    TFX__CAM_UPSAMPLE = 4 /* resize the map to the input (set from o->upsample, or forced) */
};

/* A gradient CAM's formula for one image: A, G = layer output and d S_c / d A (hw x k, NHWC);
 * cam (hw): the map before the final ReLU. wk: k doubles of scratch. */
typedef void (*tfx__cam_formula)(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k,
                                 double *wk, float *cam);

/* The CAM layer (o->layer_name or the default), its name into the attribution, the target
 * (kind) and the check that it lies below the score layer. */
int tfx__cam_layer(tfx__xctx *c, const char *what, int target, size_t *li);
/* ReLU(cam) (unless TFX__CAM_NO_RELU) at layer size (h x w), or resized to the input
 * (TFX__CAM_UPSAMPLE) into dst. */
int tfx__cam_store(const tfx__xctx *c, int flags, float *cam, int h, int w, float *dst);
/* The gradient-CAM pass over the images (classes resolved): per image the formula's map, stored
 * by tfx__cam_store into dest(u, i); then done(u, i) if not NULL. */
int tfx__cam_pass(tfx__xctx *c, size_t li, tfx__cam_formula f, int flags, float *(*dest)(void *u, size_t i),
                  int (*done)(void *u, size_t i), void *u);
/* A whole gradient-CAM method on the LOGIT target (maps h x w x 1 or H x W x 1). */
int tfx__cam_gradient_method(tfx__xctx *c, const char *what, tfx__cam_formula f);
/* The same with a target kind and flags (Grad-CAM's tf-explain mode). */
int tfx__cam_gradient_method_ex(tfx__xctx *c, const char *what, tfx__cam_formula f, int target, int flags);

/* Grad-CAM (Selvaraju et al.): w_k = mean_ij g (gated by TFX__CAM_GATE); cam = sum_k w_k A_k. */
void tfx__cam_formula_grad_cam(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k,
                               double *wk, float *cam);

#endif
