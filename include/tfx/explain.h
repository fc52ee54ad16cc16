/* Explainers: tf-explain's seven methods as raw float maps (tfx_explain) and as pictures
 * (tfx_extract_activations and friends). See docs/methods.md for the exact definitions and
 * every difference between the default (paper-correct) mode and TFX_COMPAT_TF_EXPLAIN. */
#ifndef TFX_EXPLAIN_H
#define TFX_EXPLAIN_H

#include "common.h"
#include "image.h"
#include "model.h"

TFX_BEGIN_DECLS

/* Methods; append-only. */
typedef enum tfx_method {
    TFX_METHOD_ACTIVATIONS = 1,          /* layer output, h x w x k */
    TFX_METHOD_VANILLA_GRADIENTS = 2,    /* d score / d x, H x W x C */
    TFX_METHOD_GRADIENTS_INPUTS = 3,     /* x * d score / d x, H x W x C */
    TFX_METHOD_OCCLUSION = 4,            /* probability drop, H x W x 1 */
    TFX_METHOD_GRAD_CAM = 5,             /* h x w x 1 (or H x W x 1 with upsample) */
    TFX_METHOD_SMOOTH_GRAD = 6,          /* mean noisy gradient, H x W x C */
    TFX_METHOD_INTEGRATED_GRADIENTS = 7  /* (x - x') * mean path gradient, H x W x C */
} tfx_method;

/* Modes: tfx_compat in image.h (TFX_COMPAT_NONE: paper-correct definitions, the default;
 * TFX_COMPAT_TF_EXPLAIN: tf-explain 0.3.1's targets, quirks and pictures). */

/* Occlusion patch contents. */
typedef enum tfx_patch_fill {
    TFX_PATCH_ZERO = 0,  /* 0 (default mode) */
    TFX_PATCH_MEAN = 1,  /* the image's per-channel mean */
    TFX_PATCH_VALUE = 2  /* the constant patch_value (compat mode always uses 127.5) */
} tfx_patch_fill;

#define TFX_EXPLAIN_OPTIONS_VERSION 1
typedef struct tfx_explain_options {
    unsigned version;
    int method;                /* tfx_method */
    int class_index;           /* target class for every image; -1: each image's predicted class */
    const char *layer_name;    /* Grad-CAM / activations layer; NULL: the default layer (see
                                  tfx_attribution_layer_name for the one chosen) */
    int steps;                 /* Integrated Gradients path steps m (> 0), default 50 */
    int samples;               /* SmoothGrad noisy samples (> 0), default 50 */
    float noise;               /* SmoothGrad: sigma = noise * (max x - min x) per image (default
                                  0.15); compat mode: sigma = noise, absolute */
    int patch_size;            /* occlusion square patch side (> 0), default 4 */
    int compat;                /* tfx_compat */
    int upsample;              /* CAM maps: 0 at layer resolution, non-zero at input size */
    /* --- appended fields --- */
    const int *class_indices;  /* optional: one target per image (n entries, -1 = predicted);
                                  overrides class_index; read during the call only */
    int stride;                /* occlusion stride; 0: patch_size (windows may overlap) */
    int patch_fill;            /* tfx_patch_fill (default mode) */
    float patch_value;         /* with TFX_PATCH_VALUE */
    int guided;                /* Grad-CAM gating (A > 0)(G > 0) at the layer: -1 = mode default
                                  (off by default, on in compat mode), 0 off, 1 on */
    uint64_t seed;             /* SmoothGrad noise generator seed (reproducible) */
    size_t batch_size;         /* rows per forward/backward; 0: the model's batch size */
    float image_weight;        /* pictures: weight of the input image in heatmap blends (0.7) */
} tfx_explain_options;

#define TFX_EXPLAIN_OPTIONS_INIT                                                              \
    { TFX_EXPLAIN_OPTIONS_VERSION, TFX_METHOD_VANILLA_GRADIENTS, -1, NULL, 50, 50, 0.15f, 4, \
      TFX_COMPAT_NONE, 0, NULL, 0, TFX_PATCH_ZERO, 0.0f, -1, 0, 0, 0.7f }
TFX_API int tfx_explain_options_init(tfx_explain_options *opts, unsigned version);

typedef struct tfx_attribution tfx_attribution;

/* Run o->method on n images x (n*H*W*C floats, NHWC). NULL options: defaults (vanilla
 * gradients of the predicted class). Images are processed in chunks of batch_size rows (an
 * image, a noisy sample, a path point or an occluded copy is one row) through one forward
 * and one backward each, so memory does not grow with steps, samples or windows. No
 * parameter gradients are computed. *out is NULL on failure. */
TFX_API int tfx_explain(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o,
                        tfx_attribution **out);

/* Result: n maps of the same shape (h, w, c), one per image, NHWC floats. */
TFX_API size_t tfx_attribution_count(const tfx_attribution *a);
TFX_API int tfx_attribution_shape(const tfx_attribution *a, int shape[3]);
TFX_API const float *tfx_attribution_data(const tfx_attribution *a, size_t i); /* NULL if i >= count */
TFX_API int tfx_attribution_method(const tfx_attribution *a);
/* Layer used (Grad-CAM, activations); "" for methods that use none. Never NULL for a valid a. */
TFX_API const char *tfx_attribution_layer_name(const tfx_attribution *a);
/* Class explained for image i (>= 0), or a negative TFX_E* code. */
TFX_API int tfx_attribution_class_index(const tfx_attribution *a, size_t i);
/* Integrated Gradients completeness for image i: *delta = |sum(attribution) - (S(x) - S(x'))|,
 * *score_diff = S(x) - S(x') (S the target score). Either pointer may be NULL. TFX_EINVAL for
 * other methods. In compat mode (no multiplication by x - x') delta is not meaningful. */
TFX_API int tfx_attribution_ig_delta(const tfx_attribution *a, size_t i, double *delta, double *score_diff);
TFX_API void tfx_attribution_free(tfx_attribution *a);

/* tf-explain style calls returning the picture tf-explain's explain() returns (a grid of one
 * tile per image, ceil(sqrt(n)) columns; activations: one tile per feature map). The rendering
 * follows o->compat (docs/methods.md). class_index overrides o->class_index (-1: predicted).
 * Activations refuse more than TFX_ACTIVATIONS_MAX_TILES tiles (n * channels). */
#define TFX_ACTIVATIONS_MAX_TILES 65536
TFX_API int tfx_extract_activations(tfx_model *m, const float *x, size_t n, const char *layers_name,
                                    const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_vanilla_gradients(tfx_model *m, const float *x, size_t n, int class_index,
                                  const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_gradients_inputs(tfx_model *m, const float *x, size_t n, int class_index,
                                 const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_occlusion_sensitivity(tfx_model *m, const float *x, size_t n, int class_index,
                                      const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_grad_cam(tfx_model *m, const float *x, size_t n, int class_index,
                         const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_smooth_grad(tfx_model *m, const float *x, size_t n, int class_index,
                            const tfx_explain_options *o, tfx_image **out);
TFX_API int tfx_integrated_gradients(tfx_model *m, const float *x, size_t n, int class_index,
                                     const tfx_explain_options *o, tfx_image **out);

TFX_END_DECLS

#endif
