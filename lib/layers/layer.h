/* The layer vtable and the layer object. One static const table per kind (one file per kind in lib/layers);
 * the model drives forward and backward through these entries only. */
#ifndef TFX_LAYERS_LAYER_H
#define TFX_LAYERS_LAYER_H

#include "core/internal.h"
#include "core/kernels.h"
#include "tfx/model.h"

#define TFX__NAME_MAX 256
/* Largest weight count of one layer (2^31: 8 GiB of floats). */
#define TFX__MAX_LAYER_PARAMS 2147483648.0

/* Shape of one sample. flat: rank-2 Keras tensor (None, c), stored with h = w = 1. */
typedef struct tfx__shape {
    int h, w, c;
    int flat;
} tfx__shape;

static inline size_t tfx__shape_size(tfx__shape s) { return (size_t)s.h * (size_t)s.w * (size_t)s.c; }

/* Flags for backward. */
enum {
    TFX__BW_PARAM_GRADS = 1,    /* write parameter gradients into the model's grads */
    TFX__BW_SKIP_ACTIVATION = 2 /* dy is the gradient of the pre-activation (e.g. logits) */
};

/* What a layer kind is, for the code above the layers that must not ask for its kind
 * (tfx__layer_ops.traits). */
enum {
    /* cfg.activation is applied at the output of a linear map (Conv2D, Dense); l->preact holds
     * the pre-activation when the forward kept it. */
    TFX__TRAIT_FUSED_ACTIVATION = 1,
    /* The layer is an activation of its input (Activation): its pre-activation is its input. */
    TFX__TRAIT_ACTIVATION = 2,
    /* Its output is a feature map a CAM method may explain by default (conv-like: the spatial
     * layout means positions in the input). */
    TFX__TRAIT_FEATURE_MAP = 4,
    /* A linear map with weights (Conv2D, Dense): LRP's weighted rules apply to it. */
    TFX__TRAIT_WEIGHTED = 8,
    /* Spatial mixing with weights (Conv2D): LRP's composite presets treat it as a convolution. */
    TFX__TRAIT_CONVOLUTION = 16
};

typedef struct tfx__layer_ops {
    int kind;               /* tfx_layer_kind */
    unsigned traits;        /* TFX__TRAIT_* */
    const char *base_name;  /* automatic-name stem: "conv2d" */
    const char *type_name;  /* Keras class name: "Conv2D" */
    int alias_output;       /* output memory is the input's (Flatten): no forward/backward work */
    /* Output shape from input shape and config; sets a message and returns TFX_E* on error. */
    int (*infer)(tfx_layer *l, tfx__shape in, tfx__shape *out);
    /* Trainable and non-trainable parameter counts (valid after infer). */
    void (*counts)(const tfx_layer *l, size_t *trainable, size_t *state);
    /* Initialise weights (Keras initialisers). */
    void (*init)(tfx_layer *l, tfx__rng *rng);
    /* Floats of per-layer cache a forward of n samples needs (dropout mask, BN xhat, ...). */
    size_t (*cache_floats)(const tfx_layer *l, size_t n);
    /* Floats of scratch workspace a forward or backward of n samples needs. */
    size_t (*scratch_floats)(const tfx_layer *l, size_t n);
    int (*forward)(tfx_layer *l, const float *x, float *y, size_t n, int training);
    /* dy: gradient w.r.t. the output (may be overwritten); dx: NULL to skip the input
     * gradient. x, y: the forward's input and output, still valid. */
    int (*backward)(tfx_layer *l, const float *x, const float *y, float *dy, float *dx, size_t n,
                    int flags, const tfx__rule *rule);
    /* Keras-layout weights exchange (kernel/bias sizes as tfx_layer_weight_sizes). */
    void (*weight_sizes)(const tfx_layer *l, size_t *kernel, size_t *bias);
    void (*set_weights)(tfx_layer *l, const float *kernel, const float *bias);
    void (*get_weights)(const tfx_layer *l, float *kernel, float *bias);
} tfx__layer_ops;

/* Per-kind configuration, all kinds in one plain struct (small, and save/load reads it). */
typedef struct tfx__layer_config {
    int filters, units;
    int kernel_h, kernel_w, stride_h, stride_w, padding;
    int pad_top, pad_left; /* computed by infer for SAME padding */
    int activation;
    float alpha;           /* activation parameter, resolved (never 0 for leaky/elu) */
    int use_bias;
    float rate;            /* dropout */
    float momentum, epsilon;
    int center, scale;
} tfx__layer_config;

struct tfx_layer {
    const tfx__layer_ops *ops;
    tfx_model *model;
    int index;
    char name[TFX__NAME_MAX];
    tfx__shape in, out;
    tfx__layer_config cfg;
    size_t param_offset, n_params; /* trainable, in the model's flat params/grads */
    float *state;                  /* non-trainable weights (BN moving stats), owned */
    size_t n_state;
    float *preact;                 /* pre-activation of a fused activation (model-owned), or NULL */
    float *cache;                  /* per-forward cache (model-owned), cache_floats(n) */
    /* Data derived from the weights alone, kept across calls while the model's weights_gen
     * equals gen (Conv2D: Winograd-transformed kernels, [0] forward, [1] input gradient; key
     * is the tile size). Owned. */
    struct {
        float *data;
        size_t cap;
        uint64_t gen;
        int key;
    } derived[2];
};

/* Vtables, one per kind. */
extern const tfx__layer_ops tfx__conv2d_ops;
extern const tfx__layer_ops tfx__dense_ops;
extern const tfx__layer_ops tfx__flatten_ops;
extern const tfx__layer_ops tfx__max_pooling2d_ops;
extern const tfx__layer_ops tfx__average_pooling2d_ops;
extern const tfx__layer_ops tfx__global_average_pooling2d_ops;
extern const tfx__layer_ops tfx__dropout_ops;
extern const tfx__layer_ops tfx__activation_ops;
extern const tfx__layer_ops tfx__batch_norm_ops;
/* The activation at the layer's output that a caller may strip (TFX_ACTIVATION_LINEAR when
 * none): a fused one (its pre-activation is l->preact) or an Activation layer's (its
 * pre-activation is its input). */
int tfx__layer_output_activation(const tfx_layer *l);

/* Vtable for a tfx_layer_kind value, or NULL. */
const tfx__layer_ops *tfx__layer_ops_for_kind(int kind);

/* Trainable weights and gradients of a layer inside the model's flat arrays. */
float *tfx__layer_params(const tfx_layer *l);
float *tfx__layer_grads(const tfx_layer *l);
/* Scratch memory from the model's workspace (grown on demand, reused across calls); only
 * one scratch block is live at a time. NULL with TFX_ENOMEM set on failure. */
float *tfx__layer_scratch(tfx_layer *l, size_t floats);

/* Valid input window [h0, h1) x [w0, w1) of pooling output cell (oh, ow): TensorFlow's rule
 * (SAME padding cells ignored). Shared with occlusion's boxes. */
void tfx__pool_window(const tfx_layer *l, int oh, int ow, int *h0, int *h1, int *w0, int *w1);

/* BatchNormalization at inference (moving statistics) over rows pixels of the layer's channels,
 * the same arithmetic as its forward; y may equal x. For occlusion's boxes. */
void tfx__batch_norm_infer(const tfx_layer *l, const float *x, float *y, size_t rows);

/* Dense stores its kernel unit-major, [units][inputs] (lib/layers/dense.c); these convert
 * from and to Keras's [inputs][units] (set/get_weights, the file format). */
void tfx__dense_kernel_from_keras(const tfx_layer *l, const float *keras, float *stored);
void tfx__dense_kernel_to_keras(const tfx_layer *l, const float *stored, float *keras);

#endif
