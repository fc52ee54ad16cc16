/* Models (Sequential chains and functional graphs) and their layers (NHWC float32, Keras weight
 * layouts). */
#ifndef TFX_MODEL_H
#define TFX_MODEL_H

#include "common.h"

TFX_BEGIN_DECLS

typedef struct tfx_model tfx_model;
typedef struct tfx_layer tfx_layer;

/* Activation functions (fused into Conv2D/Dense or as an Activation layer). */
typedef enum tfx_activation {
    TFX_ACTIVATION_LINEAR = 0,
    TFX_ACTIVATION_RELU = 1,
    TFX_ACTIVATION_SIGMOID = 2,
    TFX_ACTIVATION_TANH = 3,
    TFX_ACTIVATION_SOFTMAX = 4,    /* over the last (channel) axis */
    TFX_ACTIVATION_LEAKY_RELU = 5, /* x < 0: alpha * x (alpha 0 means Keras's 0.2) */
    TFX_ACTIVATION_ELU = 6,        /* x < 0: alpha * (exp(x) - 1) (alpha 0 means 1.0) */
    TFX_ACTIVATION_SWISH = 7,      /* x * sigmoid(x) */
    TFX_ACTIVATION_RELU6 = 8,      /* min(max(x, 0), 6) (Keras relu6, PyTorch ReLU6) */
    TFX_ACTIVATION_CLIP = 9,       /* min(max(x, lo), hi): the bounds are clip_min / clip_max */
    TFX_ACTIVATION_HARD_SIGMOID = 10, /* relu6(x + 3) / 6 (PyTorch; not tf.keras's 0.2 x + 0.5) */
    TFX_ACTIVATION_HARD_SWISH = 11    /* x * relu6(x + 3) / 6 (MobileNetV3) */
} tfx_activation;

typedef enum tfx_padding {
    TFX_PADDING_VALID = 0,
    TFX_PADDING_SAME = 1,    /* output = ceil(input / stride); extra padding goes bottom/right, as Keras */
    TFX_PADDING_EXPLICIT = 2 /* the options' pad_top/bottom/left/right (PyTorch's padding; ResNet's stem) */
} tfx_padding;

/* Layer kinds; append-only (the value is stored in model files). */
typedef enum tfx_layer_kind {
    TFX_LAYER_CONV2D = 1,
    TFX_LAYER_DENSE = 2,
    TFX_LAYER_FLATTEN = 3,
    TFX_LAYER_MAX_POOLING2D = 4,
    TFX_LAYER_AVERAGE_POOLING2D = 5,
    TFX_LAYER_GLOBAL_AVERAGE_POOLING2D = 6,
    TFX_LAYER_DROPOUT = 7,
    TFX_LAYER_ACTIVATION = 8,
    TFX_LAYER_BATCH_NORMALIZATION = 9,
    TFX_LAYER_GLOBAL_MAX_POOLING2D = 10,
    TFX_LAYER_ZERO_PADDING2D = 11,
    TFX_LAYER_DEPTHWISE_CONV2D = 12,
    TFX_LAYER_RESHAPE = 13,
    TFX_LAYER_ADD = 14,         /* element-wise sum of its inputs (ResNet's shortcut) */
    TFX_LAYER_CONCATENATE = 15, /* its inputs side by side along the channel axis (DenseNet, Inception) */
    TFX_LAYER_MULTIPLY = 16     /* element-wise product; a 1x1xC input is broadcast (squeeze-and-excitation) */
} tfx_layer_kind;

#define TFX_CONV2D_OPTIONS_VERSION 2
typedef struct tfx_conv2d_options {
    unsigned version;
    int filters;              /* > 0 */
    int kernel_h, kernel_w;   /* > 0 */
    int stride_h, stride_w;   /* > 0 */
    int padding;              /* tfx_padding */
    int activation;           /* tfx_activation */
    float activation_alpha;   /* leaky_relu / elu parameter; 0: Keras default */
    int use_bias;             /* non-zero: add a bias (zero-initialised) */
    const char *name;         /* NULL: automatic ("conv2d", "conv2d_1", ...) */
    /* version 2 */
    float clip_min, clip_max; /* TFX_ACTIVATION_CLIP's bounds (finite, min < max); default 0, 6 */
    int pad_top, pad_bottom;  /* TFX_PADDING_EXPLICIT: zero rows above and below (0..2^20); */
    int pad_left, pad_right;  /* must be 0 with the other paddings */
    int groups;               /* >= 1, dividing the input channels and filters: filter f reads only
                                 the input channels of its group (Keras/PyTorch groups; kernel
                                 [kh][kw][in / groups][filters]); default 1 */
} tfx_conv2d_options;
#define TFX_CONV2D_OPTIONS_INIT                                                                              \
    { TFX_CONV2D_OPTIONS_VERSION, 0, 3, 3, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, 0.0f, 1, NULL, 0.0f, \
      6.0f, 0, 0, 0, 0, 1 }
TFX_API int tfx_conv2d_options_init(tfx_conv2d_options *opts, unsigned version);

#define TFX_DENSE_OPTIONS_VERSION 2
typedef struct tfx_dense_options {
    unsigned version;
    int units;              /* > 0 */
    int activation;         /* tfx_activation */
    float activation_alpha; /* leaky_relu / elu parameter; 0: Keras default */
    int use_bias;
    const char *name;
    /* version 2 */
    float clip_min, clip_max; /* TFX_ACTIVATION_CLIP's bounds (finite, min < max); default 0, 6 */
} tfx_dense_options;
#define TFX_DENSE_OPTIONS_INIT { TFX_DENSE_OPTIONS_VERSION, 0, TFX_ACTIVATION_LINEAR, 0.0f, 1, NULL, 0.0f, 6.0f }
TFX_API int tfx_dense_options_init(tfx_dense_options *opts, unsigned version);

#define TFX_POOL2D_OPTIONS_VERSION 2
typedef struct tfx_pool2d_options {
    unsigned version;
    int pool_h, pool_w;     /* > 0 */
    int stride_h, stride_w; /* 0: same as the pool size (Keras strides=None) */
    int padding;            /* tfx_padding; padded cells never win a max, and an average counts
                               only the valid cells unless count_include_pad */
    const char *name;
    /* version 2 */
    int pad_top, pad_bottom; /* TFX_PADDING_EXPLICIT: pad rows, each below pool_h; */
    int pad_left, pad_right; /* pad columns, each below pool_w; 0 with the other paddings */
    int count_include_pad;   /* average pooling: divide by the whole window, padded cells
                                included (PyTorch's default); 0: by the valid cells (Keras) */
} tfx_pool2d_options;
#define TFX_POOL2D_OPTIONS_INIT { TFX_POOL2D_OPTIONS_VERSION, 2, 2, 0, 0, TFX_PADDING_VALID, NULL, 0, 0, 0, 0, 0 }
TFX_API int tfx_pool2d_options_init(tfx_pool2d_options *opts, unsigned version);

#define TFX_DEPTHWISE_CONV2D_OPTIONS_VERSION 1
typedef struct tfx_depthwise_conv2d_options {
    unsigned version;
    int kernel_h, kernel_w;   /* > 0 */
    int stride_h, stride_w;   /* > 0 */
    int padding;              /* tfx_padding */
    int depth_multiplier;     /* filters per input channel (> 0), default 1 */
    int activation;           /* tfx_activation */
    float activation_alpha;   /* leaky_relu / elu parameter; 0: Keras default */
    int use_bias;             /* non-zero: add a bias (zero-initialised) */
    const char *name;         /* NULL: automatic ("depthwise_conv2d", ...) */
    float clip_min, clip_max; /* TFX_ACTIVATION_CLIP's bounds; default 0, 6 */
    int pad_top, pad_bottom;  /* TFX_PADDING_EXPLICIT's pads (as tfx_conv2d_options) */
    int pad_left, pad_right;
} tfx_depthwise_conv2d_options;
#define TFX_DEPTHWISE_CONV2D_OPTIONS_INIT                                                                   \
    { TFX_DEPTHWISE_CONV2D_OPTIONS_VERSION, 3, 3, 1, 1, TFX_PADDING_VALID, 1, TFX_ACTIVATION_LINEAR, 0.0f, 1, \
      NULL, 0.0f, 6.0f, 0, 0, 0, 0 }
TFX_API int tfx_depthwise_conv2d_options_init(tfx_depthwise_conv2d_options *opts, unsigned version);

#define TFX_BATCH_NORM_OPTIONS_VERSION 1
typedef struct tfx_batch_norm_options {
    unsigned version;
    float momentum; /* moving = moving * momentum + batch * (1 - momentum) */
    float epsilon;
    int center;     /* learn beta */
    int scale;      /* learn gamma */
    const char *name;
} tfx_batch_norm_options;
#define TFX_BATCH_NORM_OPTIONS_INIT { TFX_BATCH_NORM_OPTIONS_VERSION, 0.99f, 0.001f, 1, 1, NULL }
TFX_API int tfx_batch_norm_options_init(tfx_batch_norm_options *opts, unsigned version);

/* A new empty Sequential model for inputs of height x width x channels (NHWC).
 * Weights are initialised as Keras does (glorot_uniform kernels, zero biases) from the
 * model's random generator, seeded with 0 unless tfx_model_set_seed is called. */
TFX_API int tfx_model_new(tfx_model **out, int height, int width, int channels);
TFX_API void tfx_model_free(tfx_model *model);

/* Reseed the model's generator (weight init, dropout masks, shuffling) and re-initialise
 * every layer's weights from it, so the weights depend only on the seed. */
TFX_API int tfx_model_set_seed(tfx_model *model, uint64_t seed);

/* Adding layers. *out (optional) receives a borrowed pointer owned by the model. */
TFX_API int tfx_model_add_conv2d(tfx_model *m, const tfx_conv2d_options *o, tfx_layer **out);
TFX_API int tfx_model_add_dense(tfx_model *m, const tfx_dense_options *o, tfx_layer **out);
/* Keras DepthwiseConv2D (MobileNet): a direct kernel, no dense product over absent weights. */
TFX_API int tfx_model_add_depthwise_conv2d(tfx_model *m, const tfx_depthwise_conv2d_options *o, tfx_layer **out);
TFX_API int tfx_model_add_flatten(tfx_model *m, const char *name, tfx_layer **out);
TFX_API int tfx_model_add_max_pooling2d(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out);
TFX_API int tfx_model_add_average_pooling2d(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out);
TFX_API int tfx_model_add_global_average_pooling2d(tfx_model *m, const char *name, tfx_layer **out);
/* Max over height and width per channel; the gradient goes to the first maximal cell (PyTorch's
 * rule; TensorFlow's splits it among ties). */
TFX_API int tfx_model_add_global_max_pooling2d(tfx_model *m, const char *name, tfx_layer **out);
/* Zero rows and columns around the image (Keras ZeroPadding2D(((top, bottom), (left, right)))),
 * each 0..2^20. */
TFX_API int tfx_model_add_zero_padding2d(tfx_model *m, int top, int bottom, int left, int right, const char *name,
                                         tfx_layer **out);
/* Keras Reshape((height, width, channels)): the same values in NHWC order under another shape
 * (a view: no copy). One of the three may be -1: inferred from the input size. A flat (None, k)
 * target is tfx_model_add_flatten. */
TFX_API int tfx_model_add_reshape(tfx_model *m, int height, int width, int channels, const char *name,
                                  tfx_layer **out);
/* rate in [0, 1): fraction of units dropped in training (inverted dropout); identity otherwise. */
TFX_API int tfx_model_add_dropout(tfx_model *m, float rate, const char *name, tfx_layer **out);
/* alpha: leaky_relu / elu parameter, 0 for the Keras default. TFX_ACTIVATION_CLIP needs its
 * bounds: tfx_model_add_clip. */
TFX_API int tfx_model_add_activation(tfx_model *m, int activation, float alpha, const char *name,
                                     tfx_layer **out);
/* An Activation layer min(max(x, min), max) (TFX_ACTIVATION_CLIP); finite bounds, min < max.
 * The gradient passes where min < x < max (PyTorch's hardtanh). */
TFX_API int tfx_model_add_clip(tfx_model *m, float min, float max, const char *name, tfx_layer **out);
TFX_API int tfx_model_add_batch_normalization(tfx_model *m, const tfx_batch_norm_options *o,
                                              tfx_layer **out);

/* ---- Graph models (Keras's functional API) ----
 * A model is a directed acyclic graph of layers. By default each added layer reads the output of
 * the layer added before it (the model input for the first), so a Sequential program needs no
 * extra call. tfx_model_set_next_input makes the next single-input layer read another earlier
 * layer's output instead (NULL: the model input); the one after it chains again. The multi-input
 * layers take their inputs explicitly (NULL entries: the model input). The model's output is the
 * last layer added; every other layer must lead to it (else forward, compile and save refuse
 * the model with TFX_ESTATE naming the layer). Keras's
 *
 *     x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
 *     y = Conv2D(16, 3, padding="same")(x)
 *     s = Conv2D(16, 1)(x)
 *     z = Add()([y, s])
 *
 * is, with x, y, s, z of type tfx_layer *:
 *
 *     tfx_model_add_conv2d(m, &c3_relu, &x);   // reads the model input
 *     tfx_model_add_conv2d(m, &c3, &y);        // reads x (chaining)
 *     tfx_model_set_next_input(m, x);
 *     tfx_model_add_conv2d(m, &c1, &s);        // reads x
 *     tfx_layer *yz[2] = {y, s};
 *     tfx_model_add_add(m, yz, 2, NULL, &z);
 *
 * from must be a layer of this model (TFX_EINVAL otherwise). */
TFX_API int tfx_model_set_next_input(tfx_model *m, const tfx_layer *from);
/* Add: the element-wise sum of n >= 2 inputs of one shape (TFX_ESHAPE naming both layers and
 * shapes otherwise). An input may appear twice (x + x). */
TFX_API int tfx_model_add_add(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name, tfx_layer **out);
/* Concatenate (axis -1): n >= 2 feature maps of one height and width, channels side by side in
 * input order; flat inputs concatenate their units. */
TFX_API int tfx_model_add_concatenate(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name,
                                      tfx_layer **out);
/* Multiply: the element-wise product of n >= 2 inputs of one shape, where an input of shape
 * 1x1xC (or flat C) is broadcast over the height and width of the others (a squeeze-and-excitation
 * gate). */
TFX_API int tfx_model_add_multiply(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name,
                                   tfx_layer **out);
/* The layers a layer reads, in order: up to cap pointers into inputs (NULL entries: the model
 * input); *count receives the number of inputs. */
TFX_API int tfx_layer_inputs(const tfx_layer *l, const tfx_layer **inputs, size_t cap, size_t *count);

/* Layer lookup (borrowed pointers; NULL and an error message when absent). */
TFX_API size_t tfx_model_layer_count(const tfx_model *m);
TFX_API tfx_layer *tfx_model_layer(tfx_model *m, size_t index);
TFX_API tfx_layer *tfx_model_find_layer(tfx_model *m, const char *name);

/* Model shapes: input (h, w, c) and output (h, w, c); a flat output of k units is (1, 1, k). */
TFX_API int tfx_model_input_shape(const tfx_model *m, int shape[3]);
TFX_API int tfx_model_output_shape(const tfx_model *m, int shape[3]);
/* Parameter counts as Keras reports them (trainable + non-trainable). */
TFX_API size_t tfx_model_param_count(const tfx_model *m);
TFX_API size_t tfx_model_trainable_param_count(const tfx_model *m);

/* Layer properties. */
TFX_API const char *tfx_layer_name(const tfx_layer *l);
TFX_API int tfx_layer_get_kind(const tfx_layer *l);          /* tfx_layer_kind, or TFX_EINVAL */
TFX_API const char *tfx_layer_type_name(const tfx_layer *l); /* Keras class name: "Conv2D" */
TFX_API int tfx_layer_output_shape(const tfx_layer *l, int shape[3]);
TFX_API int tfx_layer_input_shape(const tfx_layer *l, int shape[3]);
TFX_API int tfx_layer_index(const tfx_layer *l);
TFX_API size_t tfx_layer_param_count(const tfx_layer *l); /* all weights incl. non-trainable */

/* Weights in Keras layout. Conv2D kernel [kh][kw][in / groups][out], DepthwiseConv2D kernel
 * [kh][kw][in][multiplier] (output channel c * multiplier + m), Dense kernel [in][out], bias
 * [out]. BatchNormalization: kernel = {gamma, beta, moving_mean, moving_variance} (4 x c),
 * bias unused (may be NULL). bias may be NULL when the layer has none.
 * Sizes: tfx_layer_weight_sizes gives the element counts (0 when absent). */
TFX_API int tfx_layer_weight_sizes(const tfx_layer *l, size_t *kernel_size, size_t *bias_size);
TFX_API int tfx_layer_set_weights(tfx_layer *l, const float *kernel, const float *bias);
TFX_API int tfx_layer_get_weights(const tfx_layer *l, float *kernel, float *bias);

/* Inference on n images x (n*H*W*C floats, NHWC), batched internally; out receives
 * n * output size floats. Dropout is the identity, BatchNormalization uses moving stats.
 * x must be finite (NaN/Inf: TFX_EINVAL naming the index); a count whose byte size does not
 * fit in a size_t is TFX_EINVAL before anything is read. */
TFX_API int tfx_model_predict(tfx_model *m, const float *x, size_t n, float *out);
/* Largest number of images processed in one forward pass by predict/evaluate (default 32). */
TFX_API int tfx_model_set_batch_size(tfx_model *m, size_t batch_size);

/* Threads for this model's work (forward, backward, fit, predict, explainers).
 * 0 (default): libtfx's own kernels (Winograd, one-sample Dense) use as many threads as the
 *   BLAS is set to (OpenBLAS's count; 1 with another BLAS) and large matrix products use the
 *   BLAS's threads.
 * n >= 1: libtfx splits matrix products and its kernels over n threads of its own and calls the
 *   BLAS from each; set the BLAS to one thread (OPENBLAS_NUM_THREADS=1 or
 *   openblas_set_num_threads(1)), else both thread pools compete for the cores. Faster than 0
 *   when the BLAS's idle threads busy-wait between calls (OpenBLAS does for ~0.1 s): measured
 *   1.1-1.3x on two cores (docs/performance.md).
 * Results agree to float rounding across thread counts (matrix products split by rows round
 * as BLAS does for other row counts). threads must be in 0..16. The model's worker threads
 * start on first need, sleep when idle and are joined by tfx_model_free. */
TFX_API int tfx_model_set_threads(tfx_model *m, int threads);

/* Keras-like summary table. Returns a string owned by the model, valid until the next call
 * that changes the model or its summary; NULL with an error on failure. */
TFX_API const char *tfx_model_summary(tfx_model *m);

TFX_END_DECLS

#endif
