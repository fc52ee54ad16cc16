/* The model object and the forward/backward engine shared by training and explainers. */
#ifndef TFX_MODEL_INTERNAL_H
#define TFX_MODEL_INTERNAL_H

#include "layers/layer.h"

struct tfx__train_snapshot;

struct tfx_model {
    tfx__shape input;
    tfx_layer **layers;
    size_t n_layers, cap_layers;

    float *params, *grads; /* trainable weights of every layer, flat (optimizers loop over them) */
    size_t n_params, cap_params;

    tfx__rng rng;
    uint64_t seed;
    /* Bumped by tfx__model_weights_changed whenever trainable weights are written; what layers
     * derive from the weights (tfx_layer.derived) is valid while it matches. Starts at 1. */
    uint64_t weights_gen;
    size_t batch_size; /* predict/evaluate chunk */
    int threads;       /* tfx_model_set_threads: 0 follow the BLAS, n own threads */
    tfx__pool *pool;   /* worker threads for tfx__parallel, started on first need */

    /* Forward buffers sized for buf_n samples: acts[0] is the (borrowed) input of the
     * current forward, acts[i + 1] the output of layer i. */
    size_t buf_n;
    float **acts;
    float **owned_acts; /* what to free (NULL for aliases) */
    float **preacts;
    float **caches;
    /* Backward: gradient buffers of buf_n * the largest tensor, taken and given back as tensors'
     * gradients come alive and die (a chain uses two). grads_of[t]: tensor t's gradient during
     * a backward (L + 1 entries). */
    float **grad_slots;
    size_t n_grad_slots, free_grad_slots; /* the free ones are grad_slots[0 .. free_grad_slots) */
    float **grads_of;
    /* Inference forwards (TFX__FW_RELEASE): tensors share buffers once their last reader ran.
     * rel_acts[t]: tensor t's buffer in that plan (NULL: not built yet). */
    float **rel_acts;
    float **rel_bufs;
    size_t n_rel_bufs;
    int full_ready;   /* owned_acts allocated for buf_n samples */
    float **xs;       /* scratch: 2 * the most inputs of a layer pointers (multi-input calls) */
    tfx__workspace ws;      /* the layers' scratch */
    size_t cur_n;           /* samples in the current forward (0: none) */
    int cur_training;

    char *summary;

    /* Training state (compile/fit), owned; freed through train_free. */
    void *train;
    void (*train_free)(void *train);
    /* Set by compile: describe the compiled state for the model file (borrowed slots). */
    int (*train_export)(const tfx_model *m, struct tfx__train_snapshot *out);
    /* A loaded optimizer section not yet taken over by train (owned; see tfx__train_snapshot). */
    struct tfx__train_snapshot *resume;
    /* Set by the loader: adding a layer skips the random initialisation the file overwrites. */
    int skip_init;
    /* Other names of layers (importers: an ONNX node's output tensor), found by
     * tfx_model_find_layer after the layer names. Owned. */
    struct tfx__alias {
        char *name;
        int layer;
    } *aliases;
    size_t n_aliases, cap_aliases;
    /* The tensor the next single-input layer reads (tfx_model_set_next_input), -1: the last
     * layer's output (chaining). */
    int next_input;
    /* tfx__model_check_graph's verdict is cached until a layer is added: 0 unknown, 1 valid. */
    int graph_checked;
    /* Non-zero while tfx_model_fit runs (its hooks and progress sink may call back in): calls
     * that change layers, optimizer or weights check it through tfx__model_check_unlocked. */
    int fitting;
};

/* The compile configuration and optimizer state as the model file's optimizer section holds
 * them (docs/file-format.md). One-way: train fills it through m->train_export for saving;
 * saving's loader validates a section into one and parks it in m->resume; train takes it over
 * (tfx__train_get) the first time the model is used for training. Saving never calls train. */
typedef struct tfx__train_snapshot {
    int loss, optimizer, metrics, nesterov; /* tfx_loss, tfx_optimizer, tfx_metric flags */
    float lr;                               /* the current learning rate (callbacks may have changed it) */
    float momentum, beta_1, beta_2, rho, epsilon;
    uint64_t step;             /* optimizer steps taken */
    size_t n_params, n_layers; /* the model's size (a layer added before the takeover: compile again) */
    int slots;                 /* 0, 1 or 2 arrays of n_params floats */
    float *slot[2];            /* SGD velocity | Adam m, v | RMSprop ms; tfx__alloc_streamed when owned */
} tfx__train_snapshot;

/* Free a pending snapshot (NULL: no-op). */
void tfx__train_snapshot_free(tfx__train_snapshot *s);

/* TFX_OK, or TFX_ESTATE "fn: model is being trained by tfx_model_fit; ..." while fit runs. Every
 * public call that changes the layer list, the optimizer, m->params or what fit relies on
 * calls it first, so a hook cannot pull the buffers from under fit. */
int tfx__model_check_unlocked(const tfx_model *m, const char *fn);

/* Append a layer of the given kind and configuration: name, shape inference, parameter
 * space, initialisation. On failure nothing changes. The public add functions and the model
 * file's loader call it (building.c). */
int tfx__model_add_layer(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg, const char *name,
                         tfx_layer **out);

/* The same with explicit inputs: k tensor numbers (0: model input, j + 1: layer j's output),
 * each naming an existing tensor. Single-input kinds take k = 1, multi-input kinds k >= 2. */
int tfx__model_add_layer_from(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg, const char *name,
                              const int *inputs, size_t k, tfx_layer **out);

/* Make room for n trainable weights in the flat arrays (the arrays otherwise grow to the exact
 * size at each layer: an importer adding many large layers reserves once instead). */
int tfx__model_reserve_params(tfx_model *m, size_t n);

/* The tensor the next single-input layer will read (tfx_model_set_next_input, or the last
 * layer's output). */
int tfx__model_next_tensor(const tfx_model *m);

/* Another name tfx_model_find_layer answers with layer l (importers: the ONNX output tensor a
 * fused layer computes). TFX_EINVAL when the name is empty, too long or names another layer. */
int tfx__model_add_alias(tfx_model *m, const tfx_layer *l, const char *name);

/* ---- the graph (graph.c) ---- */
/* Non-zero when every layer reads exactly the previous one (layer 0: the model input). */
int tfx__model_is_chain(const tfx_model *m);
/* TFX_OK, or TFX_ESTATE naming the first layer that does not lead to the output (the last
 * layer). Cached until a layer is added. */
int tfx__model_check_graph(tfx_model *m);
/* Non-zero when no layer at index >= t reads a tensor below t: tensor t (the input of the
 * layers from t on in a chain) holds all the layers above need (a forward may start there). */
int tfx__model_is_cut(const tfx_model *m, size_t t);
/* The layer producing tensor t's values through aliasing layers (Flatten, Reshape): the tensor
 * number whose buffer tensor t shares. */
size_t tfx__model_tensor_root(const tfx_model *m, size_t t);

/* Drop the forward buffers (laid out per layer; rebuilt on demand by tfx__model_reserve). */
void tfx__model_free_buffers(tfx_model *m);

/* What a layer's forward/backward gets from the model (training flag, RNG, scratch, weights
 * generation). */
static inline tfx__layer_run tfx__model_run(tfx_model *m, int training)
{
    tfx__layer_run run = {training, &m->rng, &m->ws, m->weights_gen};
    return run;
}

/* Every write to m->params (init, set_weights, load, an optimizer step, a restore) calls this. */
static inline void tfx__model_weights_changed(tfx_model *m) { m->weights_gen++; }

/* Forward n samples (x stays borrowed until the next forward). mode: 0 (inference) or 1
 * (training: dropout masks and batch statistics), optionally | TFX__FW_LEAN. */
int tfx__model_forward(tfx_model *m, const float *x, size_t n, int mode);
/* Keep no pre-activation a layer's backward can do without (ReLU, sigmoid, tanh: the output
 * suffices), saving a buffer and a pass. For fit and predict, whose callers never read those
 * pre-activations; explainers (LRP reads z) run without it. */
#define TFX__FW_LEAN 2
/* Inference only and nothing but the model's output (and the last layer's pre-activation) is
 * read afterwards: tensors share buffers once their last reader ran (peak memory follows the
 * graph's width, not its depth). No backward may follow. */
#define TFX__FW_RELEASE 4

/* Forward layers first..end over n samples whose input of layer `first` the caller wrote into
 * tfx__model_output_buffer(m, first - 1) (after tfx__model_reserve). No backward may follow
 * (the layers below hold other samples' activations). */
int tfx__model_forward_from(tfx_model *m, size_t first, size_t n, int mode);
/* Forward layers 0..last only (what an activation picture needs); no backward may follow. */
int tfx__model_forward_to(tfx_model *m, const float *x, size_t n, size_t last, int mode);
/* The model-owned output buffer of layer i (buf_n rows; NULL for an aliasing layer). */
float *tfx__model_output_buffer(tfx_model *m, size_t i);

/* Backward after a forward over the same n samples.
 * top:   index of the layer whose output gradient `seed` is (n * out size floats; with
 *        TFX__BW_SKIP_ACTIVATION, the gradient of its pre-activation).
 * stop:  the tensor whose gradient is wanted: 0 the model input, k + 1 layer k's output (in a
 *        chain, the input of layer stop). Layers top down to stop run, in reverse order; a
 *        tensor read by several layers gets the sum of their gradients. The result is returned
 *        in *out_grad (model-owned, valid until the next forward/backward; zeros when tensor stop
 *        does not lead to layer top) unless want_input_grad is 0.
 * flags: TFX__BW_* ; rule: NULL for the plain gradient. */
int tfx__model_backward(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop,
                        int want_input_grad, int flags, const tfx__rule *rule, float **out_grad);
/* The same with a rule per layer (rules[i] for layer i; LRP's composites) and, when sums is not
 * NULL, the relevance total of each sample at each point of the walk: sums[s * (L + 1) + i] is
 * the total over the gradients alive once layer i ran (in a chain, the total at layer i's
 * input), for i from top down to stop. */
int tfx__model_backward_rules(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                              int flags, const tfx__rule *rules, double *sums, float **out_grad);

/* Output of layer i from the last forward (n * out size), and its pre-activation (the
 * output itself when the layer has no fused activation; an Activation layer's input). Tensor
 * t's values (0: the model input). */
const float *tfx__model_tensor(tfx_model *m, size_t t);
float *tfx__model_layer_output(tfx_model *m, size_t i);
float *tfx__model_layer_preactivation(tfx_model *m, size_t i);

/* The model's output head: the activation its last layer applies that a caller may strip
 * (TFX_ACTIVATION_LINEAR when none; softmax: the pre-activations are the logits), and whether
 * it is a standalone Activation layer (then the pre-activation is the previous layer's output).
 * The one answer to "where are the logits / is the softmax fused" (compile, explainers). */
typedef struct tfx__model_head {
    size_t last;    /* index of the last layer */
    int activation; /* TFX_ACTIVATION_* at the output, LINEAR when none */
    int standalone; /* the activation is a layer of its own */
} tfx__model_head;
void tfx__model_get_head(const tfx_model *m, tfx__model_head *h);

/* Make sure forward buffers hold n samples. */
int tfx__model_reserve(tfx_model *m, size_t n);

/* A batch provider's version, functions and sample shape against the model's input (fit,
 * evaluate, predict and explain over providers); what names it ("training", "validation"). */
int tfx__provider_check(const char *fn, const char *what, const tfx_model *m, const tfx_batch_provider *p);

#endif
