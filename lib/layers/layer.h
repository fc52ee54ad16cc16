/* The layer vtable and the layer object. One static const table per kind (one file per kind
 * in lib/layers). The vtable is the only place that knows a layer kind: the model, saving,
 * compile and the explainers ask its entries and traits (docs/internals.md lists them). Layers
 * include core only and get what they need from the model as arguments (tfx__layer_run) or as
 * fields the model keeps current (params, grads, preact, cache). */
#ifndef TFX_LAYERS_LAYER_H
#define TFX_LAYERS_LAYER_H

#include <string.h>

#include "core/internal.h"
#include "core/kernels.h"
#include "tfx/model.h"

#define TFX__NAME_MAX 256
/* Largest configuration record of any kind (bytes). */
#define TFX__CONFIG_MAX 128
/* Largest size of one dimension: shapes, filters, units, kernel sizes, strides (the model's
 * and the model file's limit). */
#define TFX__MAX_DIM (1 << 20)
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
    TFX__TRAIT_CONVOLUTION = 16,
    /* Output cell (oh, ow) reads the input window of cfg.kernel_h x kernel_w at cfg.stride_h/w,
     * offset by cfg.pad_top/pad_left (Conv2D, pooling): occlusion's boxes grow by it. */
    TFX__TRAIT_WINDOW = 32,
    /* At inference the output holds the input's values in the same order (Flatten, Dropout). */
    TFX__TRAIT_INFERENCE_IDENTITY = 64,
    /* y = act(x W + b) on a flat input, W stored unit-major [units][inputs] at the start of the
     * trainable weights, then the bias (Dense): occlusion adds a box's change to the clean
     * pre-activation through the kernel columns of the box. */
    TFX__TRAIT_FULLY_CONNECTED = 128,
    /* Reads two or more tensors (Add, Concatenate, Multiply): infer_n, forward_n, backward_n
     * replace infer, forward, backward. */
    TFX__TRAIT_MULTI_INPUT = 256
};

/* Per-kind configuration, all kinds in one plain struct (small, and save/load reads it). */
typedef struct tfx__layer_config {
    int filters, units;
    int kernel_h, kernel_w, stride_h, stride_w, padding;
    /* Padding of a window (Conv2D, pooling): given for TFX_PADDING_EXPLICIT, computed by infer
     * for SAME (0 for VALID); ZeroPadding2D's. */
    int pad_top, pad_left;
    int pad_bottom, pad_right;
    int count_include_pad; /* average pooling: divide by the whole window */
    int groups;            /* Conv2D: input channel groups (1: dense); DepthwiseConv2D: in.c (by infer) */
    int depth_multiplier;  /* DepthwiseConv2D: filters per input channel (filters = in.c * it, by infer) */
    int activation;
    float alpha;           /* activation parameter, resolved (never 0 for leaky/elu); clip: the lower bound */
    float beta;            /* clip: the upper bound (> alpha) */
    int use_bias;
    float rate;            /* dropout */
    float momentum, epsilon;
    int center, scale;
} tfx__layer_config;

/* Scratch memory shared by the layers of one model (grown on demand, reused across calls;
 * only one block is live at a time). The model owns it. */
typedef struct tfx__workspace {
    float *data;
    size_t cap;
} tfx__workspace;

/* What a forward or backward needs from the model that runs it; the model fills it per call
 * (layers never reach into the model). */
typedef struct tfx__layer_run {
    int training;        /* forward: training mode (dropout masks, batch statistics); backward:
                          * the mode of the forward it follows */
    tfx__rng *rng;       /* the model's seeded generator (dropout masks) */
    tfx__workspace *ws;  /* scratch (tfx__layer_scratch) */
    uint64_t weights_gen; /* generation of the weights: tfx_layer.derived is valid while equal */
} tfx__layer_run;

/* One layer of occlusion's incremental forward (lib/explain/incremental.c): copies of one
 * image that differ from it only inside a box. The layer computes its output box for each of
 * nb rows from its input, read cell by cell with tfx__box_cell. */
typedef struct tfx__box_io {
    size_t nb;
    /* Input: the first layer reads full copies (full: nb x in size); the others read each
     * row's input box (in_box: nb x in_bh x in_bw x in.c at in_oy/in_ox) where it covers a
     * cell, else the clean input map. */
    const float *full;
    const float *in_box, *clean;
    int in_bh, in_bw;
    const int *in_oy, *in_ox;
    /* Output: nb boxes of bh x bw cells at oy/ox, row-major. */
    int bh, bw;
    const int *oy, *ox;
    float *out;
    float *gather, *col; /* scratch, the sizes box_scratch asked for */
} tfx__box_io;

typedef struct tfx__layer_ops {
    int kind;               /* tfx_layer_kind (public; the registry maps it back to this table) */
    unsigned traits;        /* TFX__TRAIT_* */
    const char *base_name;  /* automatic-name stem: "conv2d" */
    const char *type_name;  /* Keras class name: "Conv2D" */
    int alias_output;       /* output memory is the input's (Flatten): no forward/backward work */

    /* ---- building ---- */
    /* Output shape from input shape and config; sets a message and returns TFX_E* on error.
     * It also bounds the weight count (counts below cannot overflow after it succeeds). */
    int (*infer)(tfx_layer *l, tfx__shape in, tfx__shape *out);
    /* Trainable and non-trainable parameter counts (valid after infer). */
    void (*counts)(const tfx_layer *l, size_t *trainable, size_t *state);
    /* Initialise weights (Keras initialisers). */
    void (*init)(tfx_layer *l, tfx__rng *rng);

    /* ---- running ---- */
    /* Floats of per-layer cache a forward of n samples needs (dropout mask, BN xhat, ...). */
    size_t (*cache_floats)(const tfx_layer *l, size_t n);
    /* Floats of scratch workspace a forward or backward of n samples needs. */
    size_t (*scratch_floats)(const tfx_layer *l, size_t n);
    int (*forward)(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n);
    /* dy: gradient w.r.t. the output (may be overwritten); dx: NULL to skip the input
     * gradient. x, y: the forward's input and output, still valid. */
    int (*backward)(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y, float *dy, float *dx,
                    size_t n, int flags, const tfx__rule *rule);

    /* ---- multi-input kinds (TFX__TRAIT_MULTI_INPUT) ----
     * k >= 2 inputs (l->n_inputs; their shapes l->in_shapes, l->in is the first). infer_n sets
     * a message naming the inputs by index (the model adds the layer names). backward_n writes
     * the gradient of input j into dxs[j] (a separate buffer per input, never aliasing another
     * or dy; NULL: not needed); under an LRP rule, the relevance (docs/internals.md: Add splits
     * it in proportion to each input's contribution, epsilon-stabilised; Concatenate splits it
     * by channels; Multiply gives it all to the non-broadcast input, none to the gate). */
    int (*infer_n)(tfx_layer *l, const tfx__shape *ins, size_t k, tfx__shape *out);
    int (*forward_n)(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, float *y, size_t n);
    int (*backward_n)(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, const float *y, float *dy,
                      float *const *dxs, size_t n, int flags, const tfx__rule *rule);

    /* ---- weights in Keras layout (tfx_layer_get/set_weights) ---- */
    void (*weight_sizes)(const tfx_layer *l, size_t *kernel, size_t *bias);
    void (*set_weights)(tfx_layer *l, const float *kernel, const float *bias);
    void (*get_weights)(const tfx_layer *l, float *kernel, float *bias);

    /* ---- the model file (lib/saving, docs/file-format.md) ---- */
    /* Bytes of the configuration record; the record is what config_write writes (little-endian,
     * exactly config_bytes) and config_read reads back. config_read validates every field
     * (TFX_EFORMAT with a message, the caller adds the location) and fills the config the
     * public add function would have built from the same values. NULL config_read: the kind
     * cannot be saved. config_write may be NULL when config_bytes is 0. */
    size_t config_bytes;
    void (*config_write)(const tfx_layer *l, uint8_t *dst);
    int (*config_read)(const uint8_t *src, tfx__layer_config *cfg);
    /* Optional, for a record that grew by appended fields whose value 0 means what the older
     * record meant: config_bytes_short is the older length, still read (config_read sees the
     * record zero-extended to config_bytes); config_size(l) is the length to write, the short
     * one while the appended fields are 0, so such files stay readable by older libtfx (and a
     * model using the new fields is refused by them: "configuration of N bytes"). */
    size_t config_bytes_short;
    size_t (*config_size)(const tfx_layer *l);
    /* Optional: the first rows x cols trainable weights are Keras's [rows][cols] kernel stored
     * transposed, as [cols][rows] (Dense keeps its kernel unit-major). The file holds Keras's
     * order; NULL: the stored order is Keras's. */
    void (*transposed_kernel)(const tfx_layer *l, size_t *rows, size_t *cols);
    /* Optional: checks the non-trainable weights beyond being finite (BatchNormalization: no
     * negative moving variance). Returns 0, or 1 with the first bad value described in msg;
     * saving and loading refuse such a state. */
    int (*check_state)(const tfx_layer *l, char *msg, size_t cap);

    /* ---- occlusion's incremental forward (lib/explain/incremental.c) ---- */
    /* Optional: at inference an output cell depends only on the same cell of the input
     * (pointwise) or on the window of TFX__TRAIT_WINDOW, so the layer can compute the boxes of
     * copies that differ from a clean image inside a box. Same arithmetic per output value as
     * forward at inference. NULL: not local (the incremental prefix stops before it). */
    void (*box_forward)(const tfx_layer *l, const tfx__box_io *io);
    /* Optional: scratch floats box_forward needs for rows boxes of bh x bw output cells. */
    void (*box_scratch)(const tfx_layer *l, size_t rows, int bh, int bw, size_t *gather, size_t *col);
    /* Optional: multiply-adds per output cell of box_forward (what recomputing a box costs
     * against the full layer); NULL: negligible. */
    double (*box_cost)(const tfx_layer *l);
} tfx__layer_ops;


struct tfx_layer {
    const tfx__layer_ops *ops;
    tfx_model *model; /* the owner (opaque here: layers never look inside it) */
    int index;
    char name[TFX__NAME_MAX];
    tfx__shape in, out; /* in: the shape of the first input */
    /* What the layer reads, in order: tensor numbers (0: the model input, k + 1: layer k's
     * output), each below index + 1 (the layer list is a topological order), and their shapes.
     * Owned; n_inputs >= 1. */
    size_t n_inputs;
    int *inputs;
    tfx__shape *in_shapes;
    tfx__layer_config cfg;
    /* Trainable weights and their gradients: n_params floats each inside the model's flat
     * arrays (offset param_offset); the model updates the pointers when the arrays move.
     * NULL while the model has no trainable weights. */
    float *params, *grads;
    size_t param_offset, n_params;
    float *state;                  /* non-trainable weights (BN moving stats), owned */
    size_t n_state;
    float *preact;                 /* pre-activation of a fused activation (model-owned), or NULL */
    float *cache;                  /* per-forward cache (model-owned), cache_floats(n) */
    /* Data derived from the weights alone, kept across calls while the run's weights_gen
     * equals gen (Conv2D: Winograd-transformed kernels, [0] forward, [1] input gradient; key
     * the tile sizes held, up to two: layers/conv2d.c). Owned. */
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
extern const tfx__layer_ops tfx__global_max_pooling2d_ops;
extern const tfx__layer_ops tfx__zero_padding2d_ops;
extern const tfx__layer_ops tfx__depthwise_conv2d_ops;
extern const tfx__layer_ops tfx__reshape_ops;
extern const tfx__layer_ops tfx__add_ops;
extern const tfx__layer_ops tfx__concatenate_ops;
extern const tfx__layer_ops tfx__multiply_ops;

/* Output size of a window layer (Conv2D, pooling) from cfg's kernel, strides and padding; sets
 * cfg.pad_* for VALID and SAME. TFX_ESHAPE (message naming the kernel) when the window does
 * not fit; `what` names the window in it ("kernel", "pool"). */
int tfx__window_out(tfx_layer *l, const char *what, tfx__shape in, int *oh, int *ow);
/* The config record fields of explicit padding: padding 0..2, pads 0..2^20 and 0 unless
 * explicit. */
int tfx__config_padding(const tfx__layer_config *c);

/* ZeroPadding2D's 1x1 stride-1 window (TFX__TRAIT_WINDOW) in its config. */
void tfx__zero_padding_window(tfx__layer_config *c);

/* Vtable for a tfx_layer_kind value, or NULL (lib/layers/registry.c). */
const tfx__layer_ops *tfx__layer_ops_for_kind(int kind);

/* ---- helpers shared by the layer kinds (lib/layers/layer.c) ---- */

/* The activation at the layer's output that a caller may strip (TFX_ACTIVATION_LINEAR when
 * none): a fused one (its pre-activation is l->preact) or an Activation layer's (its
 * pre-activation is its input). */
int tfx__layer_output_activation(const tfx_layer *l);

/* Trainable weights and gradients of a layer (NULL for a model without trainable weights). */
static inline float *tfx__layer_params(const tfx_layer *l) { return l->params; }
static inline float *tfx__layer_grads(const tfx_layer *l) { return l->grads; }

/* Scratch memory from the run's workspace; only one scratch block is live at a time. NULL
 * with TFX_ENOMEM set on failure. */
float *tfx__layer_scratch(const tfx_layer *l, const tfx__layer_run *run, size_t floats);

/* An elementwise pass over rows x cols floats in contiguous row slices: jobs (room for
 * TFX__MAX_THREADS structs of job_size bytes) become copies of *proto whose size_t fields at
 * r0_at and r1_at (offsetof) bound each slice; fn runs on each through tfx__parallel, on several
 * threads only from min_floats values on (a hand-off costs more than a small map's work).
 * Returns the number of slices. */
int tfx__layer_split_rows(void (*fn)(void *), void *jobs, size_t job_size, const void *proto, size_t r0_at,
                          size_t r1_at, size_t rows, size_t cols, size_t min_floats);

/* The in.c input values of a box_forward at (ih, iw) for row b. */
static inline const float *tfx__box_cell(const tfx_layer *l, const tfx__box_io *io, size_t b, int ih, int iw)
{
    if (io->full) return io->full + b * tfx__shape_size(l->in) + ((size_t)ih * l->in.w + iw) * l->in.c;
    int y = io->in_oy[b], x = io->in_ox[b];
    if (ih >= y && ih < y + io->in_bh && iw >= x && iw < x + io->in_bw)
        return io->in_box + ((b * io->in_bh + (size_t)(ih - y)) * io->in_bw + (size_t)(iw - x)) * l->in.c;
    return io->clean + ((size_t)ih * l->in.w + iw) * l->in.c;
}

/* box_forward of a pointwise layer: copies each row's input box to its output box (in.c ==
 * out.c); the caller then applies its per-value map to io->out in place. */
void tfx__box_copy(const tfx_layer *l, const tfx__box_io *io);

/* Little-endian fields of configuration records (the model file). */
static inline void tfx__put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline uint32_t tfx__get_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline void tfx__put_i32(uint8_t *b, int v) { tfx__put_le32(b, (uint32_t)v); }
static inline void tfx__put_f32(uint8_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tfx__put_le32(b, u);
}
static inline int32_t tfx__get_i32(const uint8_t *b)
{
    uint32_t u = tfx__get_le32(b);
    int32_t v;
    memcpy(&v, &u, 4); /* two's complement without implementation-defined conversion */
    return v;
}
static inline float tfx__get_f32(const uint8_t *b)
{
    uint32_t u = tfx__get_le32(b);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Checks of configuration records for config_read: TFX_EFORMAT naming the field. */
int tfx__config_range(const char *field, int32_t v, int32_t lo, int32_t hi);
/* The activation and its parameters (beta: clip's upper bound, checked for TFX_ACTIVATION_CLIP). */
int tfx__config_activation(int32_t act, float alpha, float beta);
/* The same for a config's activation, alpha and beta (clip's max, 0 otherwise), then alpha
 * resolved as the add functions do. */
int tfx__config_fused_activation(tfx__layer_config *c);

#endif
