/* The layer vtable and the layer object. One static const table per kind (one file per kind in lib/layers);
 * the model drives forward and backward through these entries only. */
#ifndef TFX_LAYERS_LAYER_H
#define TFX_LAYERS_LAYER_H

#include "core/internal.h"
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

/* How a backward pass treats each layer (DESIGN decision 5). The plain gradient is the
 * chain rule; the others are relevance / modified-gradient rules for explainers. */
typedef enum tfx__rule_kind {
    TFX__RULE_GRADIENT = 0,
    TFX__RULE_GUIDED = 1,    /* ReLU passes positive gradient where its input was positive */
    TFX__RULE_DECONVNET = 2, /* ReLU passes positive gradient, ignoring its input */
    TFX__RULE_LRP_0 = 3,
    TFX__RULE_LRP_EPSILON = 4,
    TFX__RULE_LRP_ALPHA_BETA = 5,
    TFX__RULE_LRP_ZPLUS = 6,
    TFX__RULE_LRP_ZB = 7
} tfx__rule_kind;

typedef struct tfx__rule {
    int kind;     /* tfx__rule_kind */
    float epsilon;
    float alpha, beta;
    float low, high; /* zB input bounds */
} tfx__rule;

/* Flags for backward. */
enum {
    TFX__BW_PARAM_GRADS = 1,    /* write parameter gradients into the model's grads */
    TFX__BW_SKIP_ACTIVATION = 2 /* dy is the gradient of the pre-activation (e.g. logits) */
};

typedef struct tfx__layer_ops {
    int kind;               /* tfx_layer_kind */
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

/* Activation kernels (lib/core/activation.c), row-wise over cols (softmax needs rows). */
int tfx__activation_valid(int activation);
float tfx__activation_default_alpha(int activation, float alpha);
const char *tfx__activation_name(int activation);
void tfx__activation_forward(int act, float alpha, const float *z, float *y, size_t rows, size_t cols);
/* Fused epilogue of a GEMM: z += bias (per column; bias may be NULL), then y = act(z). y may
 * equal z (the pre-activation is then not kept). */
void tfx__bias_activation_forward(int act, float alpha, const float *bias, float *z, float *y, size_t rows,
                                  size_t cols);
/* Non-zero when the activation's backward (every rule) can run from its output alone, so a
 * forward need not keep the pre-activation (tfx__activation_backward accepts z = NULL). */
int tfx__activation_output_suffices(int act, float alpha);
/* dz from dy (dz may equal dy). z is the pre-activation (NULL: see above), y the output. */
int tfx__activation_backward(int act, float alpha, const float *z, const float *y, const float *dy,
                             float *dz, size_t rows, size_t cols, const tfx__rule *rule);

/* The only BLAS entry (lib/core/blas.c): row-major C = alpha * op(A) op(B) + beta * C. */
void tfx__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* Row-major C = op(A) B (alpha 1, beta 0) for wide shallow products: n >= TFX__WIDE_MIN_N
 * columns, k <= TFX__WIDE_MAX_K terms (lib/core/gemm_wide.c; tfx__sgemm sends them there: a
 * Dense layer's batch input and kernel gradients). C over TFX__WIDE_STREAM_BYTES is written
 * with streaming stores. */
#define TFX__WIDE_MIN_N 4096
#define TFX__WIDE_MAX_K 256
#define TFX__WIDE_STREAM_BYTES ((size_t)8 << 20)
int tfx__sgemm_wide_fits(size_t m, size_t n, size_t k);
/* Test hook for the calling thread: the widest instruction set the wide kernel may use (1 SSE,
 * 2 AVX2 + FMA, 3 AVX-512; 0 the best the CPU has, the default). */
void tfx__sgemm_wide_force(int level);
void tfx__sgemm_wide(int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                     size_t ldb, float *c, size_t ldc);
/* Row-major C = op(A) B, or C += op(A) B with accumulate, on the calling thread, for small
 * products with k <= TFX__WIDE_MAX_K (Winograd's per-point GEMMs: tens of rows, a few dozen
 * channels): no packing, a register tile of C over all k terms, each value one in-order sum
 * (started from C's value with accumulate). */
void tfx__sgemm_small(int trans_a, int accumulate, size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, float *c, size_t ldc);
/* Row-major C = A B^T (alpha 1, beta 0) for long rows, k >= TFX__LONG_MIN_K terms: a Dense
 * layer's batch forward, on the calling thread's own-thread count (lib/core/gemm_wide.c;
 * AVX-512 only: tfx__sgemm_long_fits says when it applies). work: tfx__sgemm_long_work_floats(n)
 * floats, asked for on the same thread. */
#define TFX__LONG_MIN_K 4096
int tfx__sgemm_long_fits(size_t m, size_t n, size_t k);
size_t tfx__sgemm_long_work_floats(size_t n);
void tfx__sgemm_long(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, float *work);
/* Row-major y = alpha * op(A) x + beta * y, A m x n (one sample through a Dense layer: reads
 * the weights once, where sgemm with one row would first pack all of them). */
void tfx__sgemv(int trans, size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                float *y);

/* Threads libtfx's own kernels use (lib/core/blas.c): the model's tfx_model_set_threads, else
 * the BLAS's thread count (OpenBLAS), 1 with another BLAS, at most TFX__MAX_THREADS; tfx__threads_force sets it for the calling
 * thread (tests; 0: back to the BLAS's). tfx__parallel runs fn on jobs[0..threads) (job_size
 * bytes each), jobs[0] in the caller; results never depend on the thread count. */
#define TFX__MAX_THREADS 16
int tfx__threads(void);
void tfx__threads_force(int threads);
/* The model entry points (forward, backward) set the calling thread's own-thread count from
 * tfx_model_set_threads: > 1 also splits tfx__sgemm over that many threads. */
void tfx__threads_own(int threads);
/* The model's worker threads (lib/core/pool.c): tfx__parallel hands slices to the pool in
 * *slot (started there on first need) while it is in use on this thread; tfx__pool_free joins
 * them (tfx_model_free). */
typedef struct tfx__pool tfx__pool;
void tfx__pool_use(tfx__pool **slot);
void tfx__pool_free(tfx__pool **slot);
void tfx__parallel(int threads, void (*fn)(void *job), void *jobs, size_t job_size);

/* Direct convolution (lib/core/conv_direct.c) for kernels of at most TFX__DIRECT_MAX_K terms
 * per output and filters a multiple of 16: z = conv(x) with w HWIO, then y = act(z + bias)
 * line by line (y may equal z). */
#define TFX__DIRECT_MAX_K 32
typedef struct tfx__direct_epilogue {
    int act;
    float alpha;
    const float *bias; /* may be NULL */
    float *y;
} tfx__direct_epilogue;
struct tfx__conv_geom;
int tfx__conv_direct_fits(const struct tfx__conv_geom *g, size_t filters);
void tfx__conv_direct(const struct tfx__conv_geom *g, size_t n, const float *x, const float *w, size_t filters,
                      float *z, const tfx__direct_epilogue *ep);

/* NHWC im2col / col2im (lib/core/im2col.c). col rows = n*oh*ow, cols = kh*kw*c, ordered
 * (ki, kj, channel) to match the HWIO kernel. col2im accumulates into a zeroed dx. */
typedef struct tfx__conv_geom {
    int n_unused;
    int in_h, in_w, in_c, out_h, out_w;
    int kh, kw, sh, sw, pad_top, pad_left;
} tfx__conv_geom;
void tfx__im2col(const tfx__conv_geom *g, size_t n, const float *x, float *col);
void tfx__col2im(const tfx__conv_geom *g, size_t n, const float *col, float *dx);

/* Keras padding arithmetic: output size and leading pad; TFX_ESHAPE when valid padding
 * does not fit. */
int tfx__conv_out_size(int in, int k, int stride, int padding, int *out, int *pad_before);

#endif
