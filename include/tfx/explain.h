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
    TFX_METHOD_INTEGRATED_GRADIENTS = 7, /* (x - x') * mean path gradient, H x W x C */
    /* --- tf-explain's roadmap and beyond (docs/methods.md, "Methods beyond tf-explain's seven") --- */
    TFX_METHOD_GRAD_CAM_PLUS_PLUS = 8,   /* CAM maps: h x w x 1 (or H x W x 1 with upsample) */
    TFX_METHOD_SCORE_CAM = 9,
    TFX_METHOD_LAYER_CAM = 10,
    TFX_METHOD_XGRAD_CAM = 11,
    TFX_METHOD_HIRES_CAM = 12,
    TFX_METHOD_EIGEN_CAM = 13,           /* class-agnostic */
    TFX_METHOD_GUIDED_BACKPROP = 14,     /* H x W x C */
    TFX_METHOD_GUIDED_GRAD_CAM = 15,     /* guided backprop * upsampled Grad-CAM, H x W x C */
    TFX_METHOD_DECONVNET = 16,           /* H x W x C */
    TFX_METHOD_GUIDED_SMOOTH_GRAD = 17,  /* noise tunnel (SmoothGrad) over guided backprop */
    TFX_METHOD_LRP = 18,                 /* input relevance, H x W x C */
    TFX_METHOD_NOISE_TUNNEL = 19         /* o->tunnel over o->base_method, H x W x C */
} tfx_method;

/* LRP rules (per layer) and presets (o->lrp_rule). docs/methods.md has the formulas. */
typedef enum tfx_lrp_rule {
    TFX_LRP_DEFAULT = 0,      /* in lrp_rules[]: the preset's rule for that layer */
    TFX_LRP_0 = 1,            /* z-rule, bias absorbs relevance */
    TFX_LRP_EPSILON = 2,      /* z + epsilon * sign(z) (lrp_epsilon) */
    TFX_LRP_ALPHA_BETA = 3,   /* lrp_alpha - lrp_beta = 1, beta >= 0, bias ignored */
    TFX_LRP_ZPLUS = 4,        /* a * w+ / sum a * w+, bias ignored (for a >= 0) */
    TFX_LRP_ZB = 5,           /* bounded input rule over [lrp_low, lrp_high] (Conv2D/Dense) */
    /* presets (o->lrp_rule only): */
    TFX_LRP_COMPOSITE = 6,    /* zB on the first Conv2D/Dense, z+ on the other Conv2D, epsilon
                                 on Dense, pooling / BatchNormalization epsilon */
    TFX_LRP_COMPOSITE_AB = 7  /* alpha-beta on Conv2D, epsilon on Dense and the rest
                                 (iNNvestigate's presets A (1, 0) / B (2, 1)) */
} tfx_lrp_rule;

/* Noise tunnel statistics (Captum's nt_type). */
typedef enum tfx_tunnel {
    TFX_TUNNEL_SMOOTHGRAD = 0,    /* mean of the base maps over noisy copies */
    TFX_TUNNEL_SMOOTHGRAD_SQ = 1, /* mean of their squares (Hooker et al.) */
    TFX_TUNNEL_VARGRAD = 2        /* their variance, 1/N (Adebayo et al.) */
} tfx_tunnel;

/* Score-CAM channel weights. */
typedef enum tfx_score_cam_weights {
    TFX_SCORE_CAM_SOFTMAX_CLASSES = 0,  /* s_k = softmax over classes of f(x * M_k), at c (paper,
                                           official code, tf-keras-vis) */
    TFX_SCORE_CAM_SOFTMAX_CHANNELS = 1  /* softmax over channels k of the score S_c(x * M_k):
                                           pytorch-grad-cam's weighting on the same masks, over
                                           the non-constant channels only (pytorch-grad-cam keeps
                                           constant ones as black images; docs/methods.md) */
} tfx_score_cam_weights;

/* Integrated Gradients integration rules (o->ig_rule): the attribution is
 * (x - x') * sum_k w_k grad S(x' + alpha_k (x - x')), nodes alpha_k and weights w_k on [0, 1]
 * (sum w_k = 1), m = o->steps nodes. docs/methods.md compares their completeness. */
typedef enum tfx_ig_rule {
    TFX_IG_RIEMANN_RIGHT = 0,  /* alpha_k = k/m, k = 1..m, w_k = 1/m (default) */
    TFX_IG_RIEMANN_LEFT = 1,   /* alpha_k = k/m, k = 0..m-1, w_k = 1/m */
    TFX_IG_RIEMANN_MIDDLE = 2, /* alpha_k = (k + 1/2)/m, k = 0..m-1, w_k = 1/m */
    TFX_IG_TRAPEZOID = 3,      /* alpha_k = k/(m-1), k = 0..m-1, w_k = 1/(m-1) halved at both
                                  ends (m >= 2; Captum's riemann_trapezoid weights sum to
                                  (m-1)/m instead: docs/methods.md) */
    TFX_IG_GAUSS_LEGENDRE = 4  /* Gauss-Legendre on [0, 1]: alpha_k = (1 + t_k)/2, w_k = v_k/2,
                                  (t_k, v_k) the m-point rule on [-1, 1] (Captum's default
                                  'gausslegendre', numpy's leggauss) */
} tfx_ig_rule;

/* Modes: tfx_compat in image.h (TFX_COMPAT_NONE: paper-correct definitions, the default;
 * TFX_COMPAT_TF_EXPLAIN: tf-explain 0.3.1's targets, quirks and pictures). */

/* Occlusion patch contents. */
typedef enum tfx_patch_fill {
    TFX_PATCH_ZERO = 0,  /* 0 (default mode) */
    TFX_PATCH_MEAN = 1,  /* the image's per-channel mean */
    TFX_PATCH_VALUE = 2  /* the constant patch_value (compat mode always uses 127.5) */
} tfx_patch_fill;

/* Every call that takes these options checks the enum fields (compat, guided, patch_fill,
 * lrp_rule, base_method, tunnel, cam_alpha_normalize, score_cam_weights, ig_rule) whatever the
 * method: a value outside its enum is TFX_EINVAL naming the field, even where the method ignores it.
 * Valid special values: guided -1 (the mode's default). upsample is a C truth value. */

/* Caps on the options that multiply the work (one forward and one backward per image per step or
 * sample): Integrated Gradients' steps and the noise tunnels' (SmoothGrad's) samples above them
 * are TFX_EINVAL, so a mistaken INT_MAX fails at once instead of running for days. The papers
 * use 20-300 steps and 50 samples. */
#define TFX_EXPLAIN_MAX_STEPS 100000
#define TFX_EXPLAIN_MAX_SAMPLES 100000

#define TFX_EXPLAIN_OPTIONS_VERSION 3
typedef struct tfx_explain_options {
    unsigned version;
    int method;                /* tfx_method */
    int class_index;           /* target class for every image; -1: each image's predicted class */
    const char *layer_name;    /* Grad-CAM / activations layer; NULL: the default layer (see
                                  tfx_attribution_layer_name for the one chosen) */
    int steps;                 /* Integrated Gradients path steps m (1..TFX_EXPLAIN_MAX_STEPS),
                                  default 50 */
    int samples;               /* SmoothGrad noisy samples (1..TFX_EXPLAIN_MAX_SAMPLES), default 50 */
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
    size_t batch_size;         /* rows per forward/backward; 0: the model's batch size, at least 64 */
    float image_weight;        /* pictures: weight of the input image in heatmap blends (0.7) */
    /* --- version 2 --- */
    int lrp_rule;              /* tfx_lrp_rule: one rule for every layer, or a preset
                                  (default TFX_LRP_EPSILON) */
    const int *lrp_rules;      /* optional: one tfx_lrp_rule per layer (model layer count
                                  entries, TFX_LRP_DEFAULT = from lrp_rule); read during the call */
    float lrp_epsilon;         /* LRP-epsilon (>= 0), default 0.1 */
    float lrp_alpha, lrp_beta; /* LRP-alpha-beta, alpha - beta = 1, beta >= 0; default 1, 0 */
    float lrp_low, lrp_high;   /* LRP-zB input box, default [0, 1] */
    int base_method;           /* noise tunnel: VANILLA_GRADIENTS (default), GRADIENTS_INPUTS,
                                  GUIDED_BACKPROP or DECONVNET */
    int tunnel;                /* tfx_tunnel (noise tunnel; SmoothGrad for GUIDED_SMOOTH_GRAD) */
    int cam_alpha_normalize;   /* Grad-CAM++: 0 = the paper's Eq. 19 as pytorch-grad-cam (default);
                                  1 = alphas renormalised to sum to 1 over all cells (the authors'
                                  image code, tf-keras-vis); 2 = over the cells with a positive
                                  gradient only (the authors' video code) */
    int score_cam_weights;     /* tfx_score_cam_weights */
    /* --- version 3 --- */
    int ig_rule;               /* tfx_ig_rule: Integrated Gradients' nodes and weights (default
                                  TFX_IG_RIEMANN_RIGHT; ignored in compat mode, which keeps
                                  tf-explain's path) */
} tfx_explain_options;

#define TFX_EXPLAIN_OPTIONS_INIT                                                              \
    { TFX_EXPLAIN_OPTIONS_VERSION, TFX_METHOD_VANILLA_GRADIENTS, -1, NULL, 50, 50, 0.15f, 4, \
      TFX_COMPAT_NONE, 0, NULL, 0, TFX_PATCH_ZERO, 0.0f, -1, 0, 0, 0.7f,                     \
      TFX_LRP_EPSILON, NULL, 0.1f, 1.0f, 0.0f, 0.0f, 1.0f, TFX_METHOD_VANILLA_GRADIENTS,      \
      TFX_TUNNEL_SMOOTHGRAD, 0, TFX_SCORE_CAM_SOFTMAX_CLASSES, TFX_IG_RIEMANN_RIGHT }
TFX_API int tfx_explain_options_init(tfx_explain_options *opts, unsigned version);

typedef struct tfx_attribution tfx_attribution;

/* Run o->method on n images x (n*H*W*C floats, NHWC, finite: NaN/Inf are TFX_EINVAL naming
 * the index, as in every call below taking images). NULL options: defaults (vanilla
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

/* ---- batch providers (common.h): data larger than memory ---- */

/* Receives the maps of one batch: a (borrowed, freed after the call returns) holds
 * tfx_attribution_count(a) maps for images first .. first + count - 1 of the pass. Non-zero
 * stops tfx_explain_provider with TFX_EUSER (or the negative code it returned, with its
 * tfx_error_set message). */
typedef int (*tfx_attribution_sink_fn)(const tfx_attribution *a, size_t first, void *payload);

/* tfx_explain over one pass of a provider: data->reset(0), then next (with y = NULL: targets
 * come from the options, never from the provider's labels) for batches of at most o->batch_size
 * images (0: the model's batch size), each explained as tfx_explain explains it and handed to
 * sink, so memory is bounded by one batch and its maps. Every method explains each image on
 * its own and the noise tunnels (SmoothGrad) continue one noise stream from o->seed across the
 * batches, so the maps equal one tfx_explain call on all the images bit for bit. class_indices,
 * when set, has one entry per image of the pass and needs a known data->length. Errors: a
 * provider error stops with its code (see tfx_batch_provider); TFX_ESHAPE when the provider's
 * sample shape is not the model's input; TFX_EINVAL when a batch has a non-finite value (naming
 * the image), next reports more than max images, or the pass differs from a non-zero length.
 * An empty pass is not an error. n (optional) receives the number of images explained. */
TFX_API int tfx_explain_provider(tfx_model *m, const tfx_batch_provider *data, const tfx_explain_options *o,
                                 tfx_attribution_sink_fn sink, void *payload, size_t *n);

/* LRP: relevance summed over each layer boundary for image i. sums[j] (j < layer count) is
 * the total relevance at the input of layer j, sums[layer count] the seeded class score
 * S_c. *count = layer count + 1 (always set); up to cap values are written (sums may be NULL
 * with cap 0 to ask for the count). Conservation: sums[j] == sums[j + 1] for rules that
 * conserve (docs/methods.md gives the tolerances). TFX_EINVAL for other methods. */
TFX_API int tfx_attribution_relevance_sums(const tfx_attribution *a, size_t i, double *sums,
                                           size_t cap, size_t *count);

/* Any attribution as a picture with the renderer (tfx/image.h): CAM-like maps (one channel:
 * CAMs, occlusion) as heatmaps over the images x (the n images it was made from), gradient-
 * like maps (H x W x C) as saliency (sum |.| over channels), activations as feature-map grids.
 * o: NULL = defaults (TFX_COMPAT_NONE). */
TFX_API int tfx_attribution_render(const tfx_attribution *a, const float *x,
                                   const tfx_render_options *o, tfx_image **out);

/* ---- faithfulness metrics (docs/methods.md, "Metrics") ---- */

/* What replaces pixels in deletion (start: x) / insertion (start: the substrate). */
typedef enum tfx_substrate {
    TFX_SUBSTRATE_CONSTANT = 0, /* substrate_value everywhere */
    TFX_SUBSTRATE_MEAN = 1,     /* the image's per-channel mean */
    TFX_SUBSTRATE_BLUR = 2      /* Gaussian blur of the image (blur_size x blur_size, blur_sigma,
                                   borders replicated) */
} tfx_substrate;

/* How a map becomes one value per pixel (the ranking). */
typedef enum tfx_rank_reduce {
    TFX_RANK_SUM = 0,     /* signed sum over channels (default) */
    TFX_RANK_SUM_ABS = 1, /* sum of |.| */
    TFX_RANK_MAX_ABS = 2  /* max |.| */
} tfx_rank_reduce;

#define TFX_FAITHFULNESS_OPTIONS_VERSION 1
typedef struct tfx_faithfulness_options {
    unsigned version;
    int deletion_substrate;    /* tfx_substrate, default CONSTANT (value 0) */
    int insertion_substrate;   /* tfx_substrate, default BLUR (Petsiuk et al.) */
    float substrate_value;     /* CONSTANT */
    int blur_size;             /* odd, default 11 */
    float blur_sigma;          /* default 5 */
    size_t step;               /* pixels per step; 0: the image width (Petsiuk et al. use 224 on
                                  224 x 224) */
    int reduce;                /* tfx_rank_reduce */
    int use_logit;             /* 0: the class probability (softmax of the score vector when the
                                  model has no softmax) as Petsiuk et al.; 1: the score S_c */
    size_t batch_size;         /* rows per forward; 0: the model's */
} tfx_faithfulness_options;
#define TFX_FAITHFULNESS_OPTIONS_INIT                                                         \
    { TFX_FAITHFULNESS_OPTIONS_VERSION, TFX_SUBSTRATE_CONSTANT, TFX_SUBSTRATE_BLUR, 0.0f, 11, \
      5.0f, 0, TFX_RANK_SUM, 0, 0 }
TFX_API int tfx_faithfulness_options_init(tfx_faithfulness_options *opts, unsigned version);

/* Deletion and insertion AUC (Petsiuk et al. 2018) of attribution a for the n images x it
 * was made from (its classes; class -1 = predicted). Maps smaller than the input are resized
 * bilinearly. Pixels go in decreasing order of the reduced map (ties: lower index first),
 * `step` at a time, all channels; the score is recorded at every step including the start and
 * the end; AUC = trapezoid rule on [0, 1]. deletion / insertion: n values each (either NULL). */
TFX_API int tfx_deletion_insertion(tfx_model *m, const float *x, size_t n, const tfx_attribution *a,
                                   const tfx_faithfulness_options *o, double *deletion,
                                   double *insertion);

/* Model-randomisation sanity check (Adebayo et al. 2018), cascading from the top: for
 * k = 1..count, re-initialise the top k layers with weights (seeded by seed), recompute the
 * maps of method o (classes fixed to those of the trained model) and report the mean over the
 * images of the Spearman rank correlation between the original and the new map (reduced per
 * pixel as tfx_rank_reduce `reduce`). rho[k-1] for k = 1..count, count = number of layers
 * with weights (set in *count; up to cap written). The model's weights are restored before
 * returning, also on failure. */
TFX_API int tfx_sanity_check(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o,
                             int reduce, uint64_t seed, double *rho, size_t cap, size_t *count);

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
