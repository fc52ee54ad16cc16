/* Shared pieces of the roadmap methods (Grad-CAM++, Score-CAM, the other CAMs, the guided
 * family, LRP, the noise tunnel): the gradient-CAM driver and the per-method entry points.
 * All of them run on the explain engine (explain_internal.h). */
#ifndef TFX_EXPLAIN_ROADMAP_H
#define TFX_EXPLAIN_ROADMAP_H

#include "explain/explain_internal.h"

/* A gradient CAM's formula for one image: A, G = layer output and d S_c / d A (hw x k, NHWC);
 * cam (hw): the map before the final ReLU. wk: k doubles of scratch. */
typedef void (*tfx__cam_formula)(const tfx__xctx *c, const float *A, const float *G, size_t hw, int k, double *wk,
                                 float *cam);

/* The CAM layer (o->layer_name or the default), its name into the attribution, the target
 * (logit) and the check that it lies below the score layer. */
int tfx__cam_layer(tfx__xctx *c, const char *what, size_t *li);
/* Forward nb rows, backward to layer li's output, formula per image into cams (nb * hw). */
int tfx__cam_chunk(tfx__xctx *c, size_t li, const float *rows, size_t nb, const int *cls, tfx__cam_formula f,
                   double *wk, float *cams);
/* ReLU(cam) at layer size (h x w), or resized to the input (upsample) into dst. */
int tfx__cam_store(const tfx__xctx *c, float *cam, int h, int w, float *dst);
/* A whole gradient-CAM method (maps h x w x 1 or H x W x 1). */
int tfx__cam_gradient_method(tfx__xctx *c, const char *what, tfx__cam_formula f);

/* Formulas. */
void tfx__cam_formula_grad_cam(const tfx__xctx *c, const float *A, const float *G, size_t hw, int k, double *wk,
                               float *cam);

/* Methods. */
int tfx__explain_grad_cam_plus_plus(tfx__xctx *c);
int tfx__explain_score_cam(tfx__xctx *c);
int tfx__explain_layer_cam(tfx__xctx *c);
int tfx__explain_xgrad_cam(tfx__xctx *c);
int tfx__explain_hires_cam(tfx__xctx *c);
int tfx__explain_eigen_cam(tfx__xctx *c);
int tfx__explain_guided(tfx__xctx *c, int rule_kind); /* guided backprop / deconvnet */
int tfx__explain_guided_grad_cam(tfx__xctx *c);
int tfx__explain_noise_tunnel(tfx__xctx *c, int base_method, int tunnel);
int tfx__explain_lrp(tfx__xctx *c);

/* Input gradients of rows under a rule kind (GRADIENT, GUIDED, DECONVNET): forward, seed,
 * backward to the input; *grad model-owned. */
int tfx__explain_rule_gradient(tfx__xctx *c, int rule_kind, const float *rows, size_t nb, const int *cls,
                               float **grad);

/* Metrics helpers (metrics.c). Spearman rank correlation of a and b (cnt values, ties get
 * their mean rank); 0 when either is constant. */
double tfx__spearman(const float *a, const float *b, size_t cnt);

#endif
