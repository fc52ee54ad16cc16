/* Sequential model: layer list, flat parameter arrays, forward buffers and the generic
 * forward/backward engine (DESIGN decision 5). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/layer_options.h"
#include "model/model_internal.h"

#define TFX__MAX_DIM (1 << 20)
#define TFX__MAX_LAYERS 4096

static void free_buffers(tfx_model *m)
{
    if (m->owned_acts)
        for (size_t i = 0; i <= m->n_layers; i++) tfx__free(m->owned_acts[i]);
    if (m->preacts)
        for (size_t i = 0; i < m->n_layers; i++) tfx__free(m->preacts[i]);
    if (m->caches)
        for (size_t i = 0; i < m->n_layers; i++) tfx__free(m->caches[i]);
    tfx__free(m->acts);
    tfx__free(m->owned_acts);
    tfx__free(m->preacts);
    tfx__free(m->caches);
    tfx__free(m->grad_a);
    tfx__free(m->grad_b);
    m->acts = m->owned_acts = m->preacts = m->caches = NULL;
    m->grad_a = m->grad_b = NULL;
    for (size_t i = 0; i < m->n_layers; i++) m->layers[i]->preact = m->layers[i]->cache = NULL;
    m->buf_n = 0;
    m->cur_n = 0;
}

int tfx_model_new(tfx_model **out, int height, int width, int channels)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_ARG(height > 0 && width > 0 && channels > 0,
                   "tfx_model_new: input shape %dx%dx%d must be positive", height, width, channels);
    TFX__CHECK_ARG(height <= TFX__MAX_DIM && width <= TFX__MAX_DIM && channels <= TFX__MAX_DIM &&
                       (double)height * width * channels <= (double)(1u << 30),
                   "tfx_model_new: input shape %dx%dx%d is too large", height, width, channels);
    tfx_model *m = tfx__calloc(1, sizeof *m);
    if (!m) return tfx__error(TFX_ENOMEM, "tfx_model_new: out of memory");
    m->input = (tfx__shape){height, width, channels, 0};
    m->batch_size = 32;
    m->weights_gen = 1;
    tfx__rng_seed(&m->rng, 0);
    *out = m;
    return TFX_OK;
}

void tfx_model_free(tfx_model *m)
{
    if (!m) return;
    if (m->train && m->train_free) m->train_free(m->train);
    free_buffers(m);
    tfx__pool_free(&m->pool);
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx__free(m->layers[i]->state);
        tfx__free(m->layers[i]->derived[0].data);
        tfx__free(m->layers[i]->derived[1].data);
        tfx__free(m->layers[i]);
    }
    tfx__free(m->layers);
    tfx__free(m->params);
    tfx__free(m->grads);
    tfx__free(m->ws);
    tfx__free(m->summary);
    tfx__free(m);
}

static void init_layer(tfx_model *m, tfx_layer *l)
{
    if (l->ops->init) l->ops->init(l, &m->rng);
    tfx__model_weights_changed(m);
}

int tfx_model_set_seed(tfx_model *m, uint64_t seed)
{
    TFX__CHECK_NULL(m);
    m->seed = seed;
    tfx__rng_seed(&m->rng, seed);
    for (size_t i = 0; i < m->n_layers; i++) init_layer(m, m->layers[i]);
    return TFX_OK;
}

/* A model without weights has NULL arrays; NULL + 0 is undefined behaviour (UBSan). */
float *tfx__layer_params(const tfx_layer *l) { return l->model->params ? l->model->params + l->param_offset : NULL; }
float *tfx__layer_grads(const tfx_layer *l) { return l->model->grads ? l->model->grads + l->param_offset : NULL; }

float *tfx__layer_scratch(tfx_layer *l, size_t floats)
{
    tfx_model *m = l->model;
    if (floats > m->ws_cap) {
        size_t bytes;
        if (tfx__mul_size(floats, sizeof(float), &bytes)) {
            tfx__error(TFX_ENOMEM, "layer '%s': workspace size overflows", l->name);
            return NULL;
        }
        float *p = tfx__realloc(m->ws, bytes);
        if (!p) {
            tfx__error(TFX_ENOMEM, "layer '%s': out of memory for a %zu-float workspace", l->name, floats);
            return NULL;
        }
        m->ws = p;
        m->ws_cap = floats;
    }
    return m->ws;
}

static int name_taken(const tfx_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) return 1;
    return 0;
}

static int check_name(const tfx_model *m, const char *name)
{
    size_t len = strlen(name);
    if (len == 0) return tfx__error(TFX_EINVAL, "layer name is empty");
    if (len >= TFX__NAME_MAX)
        return tfx__error(TFX_EINVAL, "layer name is %zu characters long (at most %d)", len, TFX__NAME_MAX - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return tfx__error(TFX_EINVAL, "layer name contains a control character at byte %zu", i);
    if (name_taken(m, name))
        return tfx__error(TFX_EINVAL, "duplicate layer name '%s': names must be unique in a model", name);
    return TFX_OK;
}

/* Keras: the first automatic name is the stem, then stem_1, stem_2, ... skipping taken ones. */
static void auto_name(const tfx_model *m, const char *stem, char *out)
{
    snprintf(out, TFX__NAME_MAX, "%s", stem);
    for (int k = 1; name_taken(m, out); k++) snprintf(out, TFX__NAME_MAX, "%s_%d", stem, k);
}

/* Append a layer of the given kind and configuration: name, shape inference, parameter
 * space, initialisation. On failure nothing changes. */
int tfx__model_add_layer(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg,
                         const char *name, tfx_layer **out);
int tfx__model_add_layer(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg,
                         const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    if (m->n_layers >= TFX__MAX_LAYERS)
        return tfx__error(TFX_EINVAL, "model already has %d layers (the limit)", TFX__MAX_LAYERS);
    char final_name[TFX__NAME_MAX];
    if (name) {
        int rc = check_name(m, name);
        if (rc) return rc;
        snprintf(final_name, sizeof final_name, "%s", name);
    } else {
        auto_name(m, ops->base_name, final_name);
    }
    tfx_layer *l = tfx__calloc(1, sizeof *l);
    if (!l) return tfx__error(TFX_ENOMEM, "adding layer '%s': out of memory", final_name);
    l->ops = ops;
    l->model = m;
    l->index = (int)m->n_layers;
    l->cfg = *cfg;
    memcpy(l->name, final_name, sizeof final_name);
    l->in = m->n_layers ? m->layers[m->n_layers - 1]->out : m->input;
    int rc = ops->infer(l, l->in, &l->out);
    if (rc) {
        tfx__free(l);
        return tfx__error_prefix("layer '%s' (%s)", final_name, ops->type_name);
    }
    if ((double)tfx__shape_size(l->out) > (double)(1u << 30)) {
        tfx__free(l);
        return tfx__error(TFX_ESHAPE, "layer '%s': output of %dx%dx%d floats per sample is too large",
                          final_name, l->out.h, l->out.w, l->out.c);
    }
    size_t trainable = 0, state = 0;
    if (ops->counts) ops->counts(l, &trainable, &state);
    if (state) {
        l->state = tfx__calloc(state, sizeof(float));
        if (!l->state) {
            tfx__free(l);
            return tfx__error(TFX_ENOMEM, "layer '%s': out of memory for %zu weights", final_name, state);
        }
        l->n_state = state;
    }
    /* Grow the layer list and the flat parameter arrays before committing. */
    if (m->n_layers == m->cap_layers) {
        size_t cap = m->cap_layers ? m->cap_layers * 2 : 8;
        tfx_layer **p = tfx__realloc(m->layers, cap * sizeof *p);
        if (!p) goto nomem;
        m->layers = p;
        m->cap_layers = cap;
    }
    if (m->n_params + trainable > m->cap_params) { /* new arrays (huge pages), the old contents copied */
        size_t cap = m->n_params + trainable;
        float *p = tfx__alloc_streamed(cap, 1), *g = p ? tfx__alloc_streamed(cap, 1) : NULL;
        if (!g) {
            tfx__free(p);
            goto nomem;
        }
        if (m->n_params) {
            memcpy(p, m->params, m->n_params * sizeof(float));
            memcpy(g, m->grads, m->n_params * sizeof(float));
        }
        tfx__free(m->params);
        tfx__free(m->grads);
        m->params = p;
        m->grads = g;
        m->cap_params = cap;
    }
    /* Forward buffers are laid out per layer: drop them, they are rebuilt on demand. */
    free_buffers(m);
    l->param_offset = m->n_params;
    l->n_params = trainable;
    /* grads is still NULL while only weightless layers were added (memset(NULL, 0, 0) is UB) */
    if (trainable) memset(m->grads + m->n_params, 0, trainable * sizeof(float));
    m->n_params += trainable;
    m->layers[m->n_layers++] = l;
    init_layer(m, l);
    tfx__free(m->summary);
    m->summary = NULL;
    if (out) *out = l;
    return TFX_OK;
nomem:
    tfx__free(l->state);
    tfx__free(l);
    return tfx__error(TFX_ENOMEM, "adding layer '%s': out of memory", final_name);
}

/* ---- options ---- */

/* COPY_OPTIONS and the options init functions: model/layer_options.h and .c. */

static int check_activation(const char *fn, int act)
{
    if (!tfx__activation_valid(act))
        return tfx__error(TFX_EINVAL, "%s: unknown activation %d", fn, act);
    return TFX_OK;
}

int tfx_model_add_conv2d(tfx_model *m, const tfx_conv2d_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(o);
    tfx_conv2d_options opt = TFX_CONV2D_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_CONV2D_OPTIONS_VERSION, "tfx_model_add_conv2d");
    TFX__CHECK_ARG(opt.filters > 0 && opt.filters <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: filters = %d must be in 1..%d", opt.filters, TFX__MAX_DIM);
    TFX__CHECK_ARG(opt.kernel_h > 0 && opt.kernel_w > 0 && opt.kernel_h <= TFX__MAX_DIM && opt.kernel_w <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: kernel %dx%d must be positive", opt.kernel_h, opt.kernel_w);
    TFX__CHECK_ARG(opt.stride_h > 0 && opt.stride_w > 0 && opt.stride_h <= TFX__MAX_DIM && opt.stride_w <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: strides %dx%d must be positive", opt.stride_h, opt.stride_w);
    TFX__CHECK_ARG(opt.padding == TFX_PADDING_VALID || opt.padding == TFX_PADDING_SAME,
                   "tfx_model_add_conv2d: unknown padding %d", opt.padding);
    int rc = check_activation("tfx_model_add_conv2d", opt.activation);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(opt.activation_alpha), "tfx_model_add_conv2d: activation_alpha is not finite");
    tfx__layer_config c = {0};
    c.filters = opt.filters;
    c.kernel_h = opt.kernel_h;
    c.kernel_w = opt.kernel_w;
    c.stride_h = opt.stride_h;
    c.stride_w = opt.stride_w;
    c.padding = opt.padding;
    c.activation = opt.activation;
    c.alpha = tfx__activation_default_alpha(opt.activation, opt.activation_alpha);
    c.use_bias = opt.use_bias != 0;
    return tfx__model_add_layer(m, &tfx__conv2d_ops, &c, opt.name, out);
}

int tfx_model_add_dense(tfx_model *m, const tfx_dense_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(o);
    tfx_dense_options opt = TFX_DENSE_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_DENSE_OPTIONS_VERSION, "tfx_model_add_dense");
    TFX__CHECK_ARG(opt.units > 0 && opt.units <= TFX__MAX_DIM, "tfx_model_add_dense: units = %d must be in 1..%d",
                   opt.units, TFX__MAX_DIM);
    int rc = check_activation("tfx_model_add_dense", opt.activation);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(opt.activation_alpha), "tfx_model_add_dense: activation_alpha is not finite");
    tfx__layer_config c = {0};
    c.units = opt.units;
    c.activation = opt.activation;
    c.alpha = tfx__activation_default_alpha(opt.activation, opt.activation_alpha);
    c.use_bias = opt.use_bias != 0;
    return tfx__model_add_layer(m, &tfx__dense_ops, &c, opt.name, out);
}

int tfx_model_add_flatten(tfx_model *m, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    tfx__layer_config c = {0};
    return tfx__model_add_layer(m, &tfx__flatten_ops, &c, name, out);
}

static int add_pool(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out, const tfx__layer_ops *ops,
                    const char *fn)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    tfx_pool2d_options opt = TFX_POOL2D_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_POOL2D_OPTIONS_VERSION, fn);
    TFX__CHECK_ARG(opt.pool_h > 0 && opt.pool_w > 0 && opt.pool_h <= TFX__MAX_DIM && opt.pool_w <= TFX__MAX_DIM,
                   "%s: pool size %dx%d must be positive", fn, opt.pool_h, opt.pool_w);
    TFX__CHECK_ARG(opt.stride_h >= 0 && opt.stride_w >= 0 && opt.stride_h <= TFX__MAX_DIM && opt.stride_w <= TFX__MAX_DIM,
                   "%s: strides %dx%d must not be negative", fn, opt.stride_h, opt.stride_w);
    TFX__CHECK_ARG(opt.padding == TFX_PADDING_VALID || opt.padding == TFX_PADDING_SAME, "%s: unknown padding %d",
                   fn, opt.padding);
    tfx__layer_config c = {0};
    c.kernel_h = opt.pool_h;
    c.kernel_w = opt.pool_w;
    c.stride_h = opt.stride_h ? opt.stride_h : opt.pool_h;
    c.stride_w = opt.stride_w ? opt.stride_w : opt.pool_w;
    c.padding = opt.padding;
    return tfx__model_add_layer(m, ops, &c, opt.name, out);
}

int tfx_model_add_max_pooling2d(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out)
{
    return add_pool(m, o, out, &tfx__max_pooling2d_ops, "tfx_model_add_max_pooling2d");
}

int tfx_model_add_average_pooling2d(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out)
{
    return add_pool(m, o, out, &tfx__average_pooling2d_ops, "tfx_model_add_average_pooling2d");
}

int tfx_model_add_global_average_pooling2d(tfx_model *m, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    tfx__layer_config c = {0};
    return tfx__model_add_layer(m, &tfx__global_average_pooling2d_ops, &c, name, out);
}

int tfx_model_add_dropout(tfx_model *m, float rate, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    TFX__CHECK_ARG(rate >= 0.0f && rate < 1.0f, "tfx_model_add_dropout: rate %g must be in [0, 1)", (double)rate);
    tfx__layer_config c = {0};
    c.rate = rate;
    return tfx__model_add_layer(m, &tfx__dropout_ops, &c, name, out);
}

int tfx_model_add_activation(tfx_model *m, int activation, float alpha, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    int rc = check_activation("tfx_model_add_activation", activation);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(alpha), "tfx_model_add_activation: alpha is not finite");
    tfx__layer_config c = {0};
    c.activation = activation;
    c.alpha = tfx__activation_default_alpha(activation, alpha);
    return tfx__model_add_layer(m, &tfx__activation_ops, &c, name, out);
}

int tfx_model_add_batch_normalization(tfx_model *m, const tfx_batch_norm_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    tfx_batch_norm_options opt = TFX_BATCH_NORM_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_BATCH_NORM_OPTIONS_VERSION, "tfx_model_add_batch_normalization");
    TFX__CHECK_ARG(opt.momentum >= 0.0f && opt.momentum <= 1.0f,
                   "tfx_model_add_batch_normalization: momentum %g must be in [0, 1]", (double)opt.momentum);
    TFX__CHECK_ARG(opt.epsilon > 0.0f && isfinite(opt.epsilon),
                   "tfx_model_add_batch_normalization: epsilon %g must be positive", (double)opt.epsilon);
    tfx__layer_config c = {0};
    c.momentum = opt.momentum;
    c.epsilon = opt.epsilon;
    c.center = opt.center != 0;
    c.scale = opt.scale != 0;
    return tfx__model_add_layer(m, &tfx__batch_norm_ops, &c, opt.name, out);
}

/* ---- lookup and properties ---- */

/* Getters that cannot return a code still set the message, so a NULL/0 is explained. */
static int null_arg(const char *fn, const char *arg)
{
    return tfx__error(TFX_EINVAL, "%s: argument '%s' is NULL", fn, arg);
}

size_t tfx_model_layer_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    return m->n_layers;
}

tfx_layer *tfx_model_layer(tfx_model *m, size_t index)
{
    if (!m) {
        tfx__error(TFX_EINVAL, "tfx_model_layer: argument 'm' is NULL");
        return NULL;
    }
    if (index >= m->n_layers) {
        tfx__error(TFX_EINVAL, "tfx_model_layer: index %zu out of range (model has %zu layers)", index, m->n_layers);
        return NULL;
    }
    return m->layers[index];
}

tfx_layer *tfx_model_find_layer(tfx_model *m, const char *name)
{
    if (!m || !name) {
        tfx__error(TFX_EINVAL, "tfx_model_find_layer: argument '%s' is NULL", m ? "name" : "m");
        return NULL;
    }
    for (size_t i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) return m->layers[i];
    /* Name the valid choices so the caller can fix the typo. */
    char list[400];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < m->n_layers && used < sizeof list - 1; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", m->layers[i]->name);
        if (k < 0) break;
        used += (size_t)k;
    }
    if (used >= sizeof list - 1) memcpy(list + sizeof list - 5, "...", 4);
    tfx__error(TFX_EINVAL, "no layer named '%s'; the model has: %s", name, m->n_layers ? list : "(no layers)");
    return NULL;
}

static void put_shape(tfx__shape s, int shape[3])
{
    shape[0] = s.h;
    shape[1] = s.w;
    shape[2] = s.c;
}

int tfx_model_input_shape(const tfx_model *m, int shape[3])
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(shape);
    put_shape(m->input, shape);
    return TFX_OK;
}

int tfx_model_output_shape(const tfx_model *m, int shape[3])
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(shape);
    put_shape(m->n_layers ? m->layers[m->n_layers - 1]->out : m->input, shape);
    return TFX_OK;
}

size_t tfx_model_trainable_param_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    return m->n_params;
}

size_t tfx_model_param_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    size_t total = m->n_params;
    for (size_t i = 0; i < m->n_layers; i++) total += m->layers[i]->n_state;
    return total;
}

const char *tfx_layer_name(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return NULL;
    }
    return l->name;
}
int tfx_layer_get_kind(const tfx_layer *l)
{
    if (!l) return tfx__error(TFX_EINVAL, "tfx_layer_get_kind: argument 'l' is NULL");
    return l->ops->kind;
}
const char *tfx_layer_type_name(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return NULL;
    }
    return l->ops->type_name;
}
int tfx_layer_index(const tfx_layer *l)
{
    if (!l) return tfx__error(TFX_EINVAL, "tfx_layer_index: argument 'l' is NULL");
    return l->index;
}
size_t tfx_layer_param_count(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return 0;
    }
    return l->n_params + l->n_state;
}

int tfx_layer_output_shape(const tfx_layer *l, int shape[3])
{
    TFX__CHECK_NULL(l);
    TFX__CHECK_NULL(shape);
    put_shape(l->out, shape);
    return TFX_OK;
}

int tfx_layer_input_shape(const tfx_layer *l, int shape[3])
{
    TFX__CHECK_NULL(l);
    TFX__CHECK_NULL(shape);
    put_shape(l->in, shape);
    return TFX_OK;
}

int tfx_layer_weight_sizes(const tfx_layer *l, size_t *kernel_size, size_t *bias_size)
{
    TFX__CHECK_NULL(l);
    size_t k = 0, b = 0;
    if (l->ops->weight_sizes) l->ops->weight_sizes(l, &k, &b);
    if (kernel_size) *kernel_size = k;
    if (bias_size) *bias_size = b;
    return TFX_OK;
}

int tfx_layer_set_weights(tfx_layer *l, const float *kernel, const float *bias)
{
    TFX__CHECK_NULL(l);
    size_t k = 0, b = 0;
    if (l->ops->weight_sizes) l->ops->weight_sizes(l, &k, &b);
    if (k == 0 && b == 0)
        return tfx__error(TFX_EINVAL, "layer '%s' (%s) has no weights to set", l->name, l->ops->type_name);
    if (k && !kernel) return tfx__error(TFX_EINVAL, "tfx_layer_set_weights: layer '%s' needs a kernel of %zu floats", l->name, k);
    if (b && !bias) return tfx__error(TFX_EINVAL, "tfx_layer_set_weights: layer '%s' needs a bias of %zu floats", l->name, b);
    for (size_t i = 0; i < k; i++)
        if (!isfinite(kernel[i]))
            return tfx__error(TFX_EINVAL, "tfx_layer_set_weights: layer '%s': kernel[%zu] is not finite", l->name, i);
    for (size_t i = 0; i < b; i++)
        if (!isfinite(bias[i]))
            return tfx__error(TFX_EINVAL, "tfx_layer_set_weights: layer '%s': bias[%zu] is not finite", l->name, i);
    l->ops->set_weights(l, kernel, bias);
    tfx__model_weights_changed(l->model);
    return TFX_OK;
}

int tfx_layer_get_weights(const tfx_layer *l, float *kernel, float *bias)
{
    TFX__CHECK_NULL(l);
    size_t k = 0, b = 0;
    if (l->ops->weight_sizes) l->ops->weight_sizes(l, &k, &b);
    if (k == 0 && b == 0)
        return tfx__error(TFX_EINVAL, "layer '%s' (%s) has no weights to get", l->name, l->ops->type_name);
    if (k && !kernel) return tfx__error(TFX_EINVAL, "tfx_layer_get_weights: layer '%s' needs a kernel buffer of %zu floats", l->name, k);
    if (b && !bias) return tfx__error(TFX_EINVAL, "tfx_layer_get_weights: layer '%s' needs a bias buffer of %zu floats", l->name, b);
    l->ops->get_weights(l, kernel, bias);
    return TFX_OK;
}

/* ---- buffers, forward, backward ---- */

int tfx__model_reserve(tfx_model *m, size_t n)
{
    if (n <= m->buf_n && m->acts) return TFX_OK;
    free_buffers(m);
    size_t L = m->n_layers;
    m->acts = tfx__calloc(L + 1, sizeof(float *));
    m->owned_acts = tfx__calloc(L + 1, sizeof(float *));
    m->preacts = tfx__calloc(L ? L : 1, sizeof(float *));
    m->caches = tfx__calloc(L ? L : 1, sizeof(float *));
    if (!m->acts || !m->owned_acts || !m->preacts || !m->caches) goto nomem;
    /* Pre-activations are allocated by the first forward that keeps them, gradient buffers by
     * the first backward: inference needs neither. */
    for (size_t i = 0; i < L; i++) {
        tfx_layer *l = m->layers[i];
        size_t sz = tfx__shape_size(l->out);
        if (!l->ops->alias_output) {
            m->owned_acts[i + 1] = tfx__alloc_floats(n, sz);
            if (!m->owned_acts[i + 1]) goto nomem;
        }
        size_t cf = l->ops->cache_floats ? l->ops->cache_floats(l, n) : 0;
        if (cf) {
            m->caches[i] = tfx__alloc_floats(cf, 1);
            if (!m->caches[i]) goto nomem;
        }
        l->preact = NULL;
        l->cache = m->caches[i];
    }
    m->buf_n = n;
    return TFX_OK;
nomem:
    free_buffers(m);
    return tfx__error(TFX_ENOMEM, "out of memory for the buffers of a %zu-sample batch", n);
}

/* Conv2D/Dense with a fused activation keep z unless lean and the output suffices. The last
 * layer always keeps it: losses read the logits of a softmax/sigmoid output. */
static int keeps_preact(const tfx_model *m, const tfx_layer *l, int lean)
{
    if (l->cfg.activation == TFX_ACTIVATION_LINEAR || !(l->ops->traits & TFX__TRAIT_FUSED_ACTIVATION)) return 0;
    if ((size_t)l->index == m->n_layers - 1) return 1;
    return !(lean && tfx__activation_output_suffices(l->cfg.activation, l->cfg.alpha));
}

/* Layers first..end-1 over n samples whose input of layer `first` is m->acts[first]. */
static int run_layers(tfx_model *m, size_t first, size_t end, size_t n, int mode)
{
    const int training = mode & 1, lean = (mode & TFX__FW_LEAN) != 0;
    for (size_t i = first; i < end; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->alias_output) {
            m->acts[i + 1] = m->acts[i];
            continue;
        }
        l->preact = NULL;
        if (keeps_preact(m, l, lean)) {
            if (!m->preacts[i] && !(m->preacts[i] = tfx__alloc_floats(m->buf_n, tfx__shape_size(l->out))))
                return tfx__error(TFX_ENOMEM, "out of memory for the pre-activations of layer '%s'", l->name);
            l->preact = m->preacts[i];
        }
        m->acts[i + 1] = m->owned_acts[i + 1];
        int rc = l->ops->forward(l, m->acts[i], m->acts[i + 1], n, training);
        if (rc) return rc;
    }
    return TFX_OK;
}

int tfx__model_forward(tfx_model *m, const float *x, size_t n, int mode)
{
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "the model has no layers");
    int rc = tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0;
    m->acts[0] = (float *)x;
    rc = run_layers(m, 0, m->n_layers, n, mode);
    if (rc) return rc;
    m->cur_n = n;
    m->cur_training = mode & 1;
    return TFX_OK;
}

int tfx__model_forward_from(tfx_model *m, size_t first, size_t n, int mode)
{
    if (first == 0 || first > m->n_layers || n > m->buf_n || !m->owned_acts[first])
        return tfx__error(TFX_EINVAL, "forward from layer %zu over %zu samples: no such start", first, n);
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0; /* stays 0: the layers below `first` hold other samples' activations */
    m->acts[first] = m->owned_acts[first];
    return run_layers(m, first, m->n_layers, n, mode);
}

int tfx__model_forward_to(tfx_model *m, const float *x, size_t n, size_t last, int mode)
{
    if (last >= m->n_layers) return tfx__error(TFX_EINVAL, "forward to layer %zu: the model has %zu layers", last, m->n_layers);
    int rc = tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0; /* stays 0: the layers above `last` hold other samples' activations */
    m->acts[0] = (float *)x;
    return run_layers(m, 0, last + 1, n, mode);
}

float *tfx__model_output_buffer(tfx_model *m, size_t i) { return m->owned_acts[i + 1]; }

int tfx__model_backward(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                        int flags, const tfx__rule *rule, float **out_grad)
{
    if (m->cur_n != n || n == 0)
        return tfx__error(TFX_ESTATE, "backward over %zu samples without a matching forward", n);
    if (top >= m->n_layers || stop > top)
        return tfx__error(TFX_EINVAL, "backward from layer %zu down to layer %zu is not a valid range", top, stop);
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    if (!rule) rule = &plain;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    if (!m->grad_a) {
        size_t maxsz = tfx__shape_size(m->input);
        for (size_t i = 0; i < m->n_layers; i++)
            if (tfx__shape_size(m->layers[i]->out) > maxsz) maxsz = tfx__shape_size(m->layers[i]->out);
        m->grad_a = tfx__alloc_floats(m->buf_n, maxsz);
        m->grad_b = tfx__alloc_floats(m->buf_n, maxsz);
        if (!m->grad_a || !m->grad_b) {
            tfx__free(m->grad_a);
            tfx__free(m->grad_b);
            m->grad_a = m->grad_b = NULL;
            return tfx__error(TFX_ENOMEM, "out of memory for the gradients of a %zu-sample batch", m->buf_n);
        }
    }
    float *dy = m->grad_a, *dx = m->grad_b;
    const tfx_layer *t = m->layers[top];
    memcpy(dy, seed, n * tfx__shape_size(t->out) * sizeof(float));
    for (size_t i = top + 1; i-- > stop;) {
        tfx_layer *l = m->layers[i];
        int lflags = flags & TFX__BW_PARAM_GRADS;
        if (i == top) lflags |= flags & TFX__BW_SKIP_ACTIVATION;
        int need_dx = i > stop || want_input_grad;
        if (l->ops->alias_output) continue; /* same memory, same gradient */
        int rc = l->ops->backward(l, m->acts[i], m->acts[i + 1], dy, need_dx ? dx : NULL, n, lflags, rule);
        if (rc) return rc;
        float *tmp = dy;
        dy = dx;
        dx = tmp;
    }
    if (out_grad) *out_grad = want_input_grad ? dy : NULL;
    return TFX_OK;
}

float *tfx__model_layer_output(tfx_model *m, size_t i) { return m->acts[i + 1]; }
float *tfx__model_layer_preactivation(tfx_model *m, size_t i)
{
    /* An Activation layer's pre-activation is its input (what SKIP_ACTIVATION seeds). */
    if (m->layers[i]->ops->traits & TFX__TRAIT_ACTIVATION) return m->acts[i];
    return m->layers[i]->preact ? m->layers[i]->preact : m->acts[i + 1];
}

int tfx_model_set_batch_size(tfx_model *m, size_t batch_size)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_ARG(batch_size > 0 && batch_size <= (1u << 20),
                   "tfx_model_set_batch_size: batch size %zu must be in 1..%u", batch_size, 1u << 20);
    m->batch_size = batch_size;
    return TFX_OK;
}

int tfx_model_set_threads(tfx_model *m, int threads)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_ARG(threads >= 0 && threads <= TFX__MAX_THREADS,
                   "tfx_model_set_threads: threads = %d must be in 0..%d", threads, TFX__MAX_THREADS);
    m->threads = threads;
    return TFX_OK;
}

int tfx_model_predict(tfx_model *m, const float *x, size_t n, float *out)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(out);
    TFX__CHECK_ARG(n > 0, "tfx_model_predict: n = 0 images");
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "tfx_model_predict: the model has no layers");
    size_t in_sz = tfx__shape_size(m->input);
    size_t out_sz = tfx__shape_size(m->layers[m->n_layers - 1]->out);
    for (size_t start = 0; start < n; start += m->batch_size) {
        size_t b = n - start < m->batch_size ? n - start : m->batch_size;
        int rc = tfx__model_forward(m, x + start * in_sz, b, TFX__FW_LEAN);
        if (rc) return tfx__error_prefix("tfx_model_predict");
        memcpy(out + start * out_sz, m->acts[m->n_layers], b * out_sz * sizeof(float));
    }
    return TFX_OK;
}

void tfx__model_get_head(const tfx_model *m, tfx__model_head *h)
{
    h->last = m->n_layers - 1;
    const tfx_layer *l = m->layers[h->last];
    h->activation = tfx__layer_output_activation(l);
    h->standalone = h->activation != TFX_ACTIVATION_LINEAR && (l->ops->traits & TFX__TRAIT_ACTIVATION) != 0;
}
