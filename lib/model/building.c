/* Building a model: adding layers (the public add functions check their options and go
 * through tfx__model_add_layer), layer names, seeding, the Keras-layout weights exchange. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/layer_options.h"
#include "model/model_internal.h"

#define TFX__MAX_LAYERS 4096

/* The public calls here that change the model are refused while tfx_model_fit runs. */
#define CHECK_UNLOCKED(m, fn)                                                                      \
    do {                                                                                           \
        int rc_ = tfx__model_check_unlocked((m), (fn));                                            \
        if (rc_) return rc_;                                                                       \
    } while (0)

static void init_layer(tfx_model *m, tfx_layer *l)
{
    if (l->ops->init) l->ops->init(l, &m->rng);
    tfx__model_weights_changed(m);
}

int tfx_model_set_seed(tfx_model *m, uint64_t seed)
{
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_set_seed");
    m->seed = seed;
    tfx__rng_seed(&m->rng, seed);
    for (size_t i = 0; i < m->n_layers; i++) init_layer(m, m->layers[i]);
    return TFX_OK;
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

static tfx__shape tensor_shape(const tfx_model *m, int t) { return t ? m->layers[t - 1]->out : m->input; }

/* "'conv2d' 8x8x16" for messages about inputs. */
static void describe_tensor(const tfx_model *m, int t, char *out, size_t cap)
{
    tfx__shape s = tensor_shape(m, t);
    const char *name = t ? m->layers[t - 1]->name : "the model input";
    if (s.flat) snprintf(out, cap, "%s%s%s (%d)", t ? "'" : "", name, t ? "'" : "", s.c);
    else snprintf(out, cap, "%s%s%s (%dx%dx%d)", t ? "'" : "", name, t ? "'" : "", s.h, s.w, s.c);
}

int tfx__model_next_tensor(const tfx_model *m) { return m->next_input >= 0 ? m->next_input : (int)m->n_layers; }

int tfx__model_add_layer(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg,
                         const char *name, tfx_layer **out)
{
    const int t = tfx__model_next_tensor(m);
    return tfx__model_add_layer_from(m, ops, cfg, name, &t, 1, out);
}


/* New flat parameter and gradient arrays of cap floats (huge pages), the old contents copied
 * and the layers' views moved. Non-zero when out of memory (nothing changed). */
static int grow_params(tfx_model *m, size_t cap)
{
    float *p = tfx__alloc_streamed(cap, 1), *g = p ? tfx__alloc_streamed(cap, 1) : NULL;
    if (!g) {
        tfx__free(p);
        return -1;
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
    for (size_t i = 0; i < m->n_layers; i++) { /* the layers' views of the moved arrays */
        m->layers[i]->params = p + m->layers[i]->param_offset;
        m->layers[i]->grads = g + m->layers[i]->param_offset;
    }
    return 0;
}

int tfx__model_reserve_params(tfx_model *m, size_t n)
{
    if (n <= m->cap_params) return TFX_OK;
    if (n > ((size_t)1 << 34) || grow_params(m, n))
        return tfx__error(TFX_ENOMEM, "out of memory reserving %zu weights", n);
    return TFX_OK;
}

int tfx__model_add_layer_from(tfx_model *m, const tfx__layer_ops *ops, const tfx__layer_config *cfg,
                              const char *name, const int *inputs, size_t k, tfx_layer **out)
{
    if (out) *out = NULL;
    CHECK_UNLOCKED(m, "adding a layer"); /* backstop: each public add function checks first, by name */
    const int multi = (ops->traits & TFX__TRAIT_MULTI_INPUT) != 0;
    if (multi ? k < 2 : k != 1)
        return tfx__error(TFX_EINVAL, "a %s layer reads %s input%s, not %zu", ops->type_name, multi ? "two or more" : "one",
                          multi ? "s" : "", k);
    for (size_t j = 0; j < k; j++)
        if (inputs[j] < 0 || (size_t)inputs[j] > m->n_layers)
            return tfx__error(TFX_EINVAL, "input %zu of the new %s layer is tensor %d: the model has %zu layers (tensors "
                              "0..%zu)", j, ops->type_name, inputs[j], m->n_layers, m->n_layers);
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
    int rc;
    tfx_layer *l = tfx__calloc(1, sizeof *l);
    if (!l) return tfx__error(TFX_ENOMEM, "adding layer '%s': out of memory", final_name);
    l->ops = ops;
    l->model = m;
    l->index = (int)m->n_layers;
    l->cfg = *cfg;
    memcpy(l->name, final_name, sizeof final_name);
    l->inputs = tfx__malloc(k * sizeof *l->inputs);
    l->in_shapes = tfx__malloc(k * sizeof *l->in_shapes);
    if (!l->inputs || !l->in_shapes) goto nomem;
    l->n_inputs = k;
    for (size_t j = 0; j < k; j++) {
        l->inputs[j] = inputs[j];
        l->in_shapes[j] = tensor_shape(m, inputs[j]);
    }
    l->in = l->in_shapes[0];
    rc = multi ? ops->infer_n(l, l->in_shapes, k, &l->out) : ops->infer(l, l->in, &l->out);
    if (rc) {
        if (multi) { /* name every input (up to eight) with its shape */
            char list[1024], one[TFX__NAME_MAX + 64];
            size_t used = 0;
            list[0] = '\0';
            for (size_t j = 0; j < k && j < 8; j++) {
                describe_tensor(m, inputs[j], one, sizeof one);
                int w = snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", one);
                if (w < 0 || (size_t)w >= sizeof list - used) break;
                used += (size_t)w;
            }
            tfx__error_prefix("layer '%s' (%s) reading %s%s", final_name, ops->type_name, list, k > 8 ? ", ..." : "");
        } else {
            tfx__error_prefix("layer '%s' (%s)", final_name, ops->type_name);
        }
        goto fail;
    }
    if ((double)tfx__shape_size(l->out) > (double)(1u << 30)) {
        rc = tfx__error(TFX_ESHAPE, "layer '%s': output of %dx%dx%d floats per sample is too large",
                        final_name, l->out.h, l->out.w, l->out.c);
        goto fail;
    }
    size_t trainable = 0, state = 0;
    if (ops->counts) ops->counts(l, &trainable, &state);
    if (state) {
        l->state = tfx__calloc(state, sizeof(float));
        if (!l->state) {
            rc = tfx__error(TFX_ENOMEM, "layer '%s': out of memory for %zu weights", final_name, state);
            goto fail;
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
    if (m->n_params + trainable > m->cap_params && grow_params(m, m->n_params + trainable)) goto nomem;
    /* Forward buffers are laid out per layer: drop them, they are rebuilt on demand. */
    tfx__model_free_buffers(m);
    l->param_offset = m->n_params;
    l->n_params = trainable;
    if (m->params) { /* NULL + 0 is undefined behaviour (UBSan) */
        l->params = m->params + l->param_offset;
        l->grads = m->grads + l->param_offset;
    }
    /* grads is still NULL while only weightless layers were added (memset(NULL, 0, 0) is UB) */
    if (trainable) memset(m->grads + m->n_params, 0, trainable * sizeof(float));
    m->n_params += trainable;
    m->layers[m->n_layers++] = l;
    m->next_input = -1;
    m->graph_checked = 0;
    if (m->skip_init) tfx__model_weights_changed(m); /* the loader writes every weight next */
    else init_layer(m, l);
    tfx__free(m->summary);
    m->summary = NULL;
    if (out) *out = l;
    return TFX_OK;
nomem:
    rc = tfx__error(TFX_ENOMEM, "adding layer '%s': out of memory", final_name);
fail:
    tfx__free(l->state);
    tfx__free(l->inputs);
    tfx__free(l->in_shapes);
    tfx__free(l);
    return rc;
}

static int check_activation(const char *fn, int act)
{
    if (!tfx__activation_valid(act))
        return tfx__error(TFX_EINVAL, "%s: unknown activation %d", fn, act);
    return TFX_OK;
}

/* The padding and explicit pads of a window layer into the config. */
static int set_padding(const char *fn, int padding, int top, int bottom, int left, int right, tfx__layer_config *c)
{
    TFX__CHECK_ARG(padding == TFX_PADDING_VALID || padding == TFX_PADDING_SAME || padding == TFX_PADDING_EXPLICIT,
                   "%s: unknown padding %d", fn, padding);
    TFX__CHECK_ARG(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && top <= TFX__MAX_DIM &&
                       bottom <= TFX__MAX_DIM && left <= TFX__MAX_DIM && right <= TFX__MAX_DIM,
                   "%s: pads (top %d, bottom %d, left %d, right %d) must be in 0..%d", fn, top, bottom, left, right,
                   TFX__MAX_DIM);
    TFX__CHECK_ARG(padding == TFX_PADDING_EXPLICIT || (top | bottom | left | right) == 0,
                   "%s: pads (top %d, bottom %d, left %d, right %d) need padding = TFX_PADDING_EXPLICIT", fn, top,
                   bottom, left, right);
    c->padding = padding;
    if (padding == TFX_PADDING_EXPLICIT) {
        c->pad_top = top;
        c->pad_bottom = bottom;
        c->pad_left = left;
        c->pad_right = right;
    }
    return TFX_OK;
}

/* A fused activation's parameters into the config: alpha (leaky_relu / elu, resolved), or
 * clip's bounds (alpha = min, beta = max). */
static int set_fused_activation(const char *fn, int act, float alpha, float clip_min, float clip_max,
                                tfx__layer_config *c)
{
    if (act == TFX_ACTIVATION_CLIP) {
        TFX__CHECK_ARG(isfinite(clip_min) && isfinite(clip_max) && clip_min < clip_max,
                       "%s: clip bounds %g..%g must be finite with clip_min < clip_max", fn, (double)clip_min,
                       (double)clip_max);
        c->alpha = clip_min;
        c->beta = clip_max;
    } else {
        c->alpha = tfx__activation_default_alpha(act, alpha);
    }
    c->activation = act;
    return TFX_OK;
}

int tfx_model_add_conv2d(tfx_model *m, const tfx_conv2d_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_conv2d");
    TFX__CHECK_NULL(o);
    tfx_conv2d_options opt = TFX_CONV2D_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_CONV2D_OPTIONS_VERSION, "tfx_model_add_conv2d");
    TFX__CHECK_ARG(opt.filters > 0 && opt.filters <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: filters = %d must be in 1..%d", opt.filters, TFX__MAX_DIM);
    TFX__CHECK_ARG(opt.kernel_h > 0 && opt.kernel_w > 0 && opt.kernel_h <= TFX__MAX_DIM && opt.kernel_w <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: kernel %dx%d must be positive", opt.kernel_h, opt.kernel_w);
    TFX__CHECK_ARG(opt.stride_h > 0 && opt.stride_w > 0 && opt.stride_h <= TFX__MAX_DIM && opt.stride_w <= TFX__MAX_DIM,
                   "tfx_model_add_conv2d: strides %dx%d must be positive", opt.stride_h, opt.stride_w);
    int rc = check_activation("tfx_model_add_conv2d", opt.activation);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(opt.activation_alpha), "tfx_model_add_conv2d: activation_alpha is not finite");
    tfx__layer_config c = {0};
    c.filters = opt.filters;
    c.kernel_h = opt.kernel_h;
    c.kernel_w = opt.kernel_w;
    c.stride_h = opt.stride_h;
    c.stride_w = opt.stride_w;
    rc = set_padding("tfx_model_add_conv2d", opt.padding, opt.pad_top, opt.pad_bottom, opt.pad_left, opt.pad_right, &c);
    if (rc) return rc;
    rc = set_fused_activation("tfx_model_add_conv2d", opt.activation, opt.activation_alpha, opt.clip_min,
                              opt.clip_max, &c);
    if (rc) return rc;
    c.use_bias = opt.use_bias != 0;
    TFX__CHECK_ARG(opt.groups >= 1 && opt.groups <= TFX__MAX_DIM, "tfx_model_add_conv2d: groups = %d must be in 1..%d",
                   opt.groups, TFX__MAX_DIM);
    c.groups = opt.groups;
    return tfx__model_add_layer(m, &tfx__conv2d_ops, &c, opt.name, out);
}

int tfx_model_add_dense(tfx_model *m, const tfx_dense_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_dense");
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
    rc = set_fused_activation("tfx_model_add_dense", opt.activation, opt.activation_alpha, opt.clip_min,
                              opt.clip_max, &c);
    if (rc) return rc;
    c.use_bias = opt.use_bias != 0;
    return tfx__model_add_layer(m, &tfx__dense_ops, &c, opt.name, out);
}

int tfx_model_add_depthwise_conv2d(tfx_model *m, const tfx_depthwise_conv2d_options *o, tfx_layer **out)
{
    static const char fn[] = "tfx_model_add_depthwise_conv2d";
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_depthwise_conv2d");
    TFX__CHECK_NULL(o);
    tfx_depthwise_conv2d_options opt = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_DEPTHWISE_CONV2D_OPTIONS_VERSION, fn);
    TFX__CHECK_ARG(opt.kernel_h > 0 && opt.kernel_w > 0 && opt.kernel_h <= TFX__MAX_DIM && opt.kernel_w <= TFX__MAX_DIM,
                   "%s: kernel %dx%d must be positive", fn, opt.kernel_h, opt.kernel_w);
    TFX__CHECK_ARG(opt.stride_h > 0 && opt.stride_w > 0 && opt.stride_h <= TFX__MAX_DIM && opt.stride_w <= TFX__MAX_DIM,
                   "%s: strides %dx%d must be positive", fn, opt.stride_h, opt.stride_w);
    TFX__CHECK_ARG(opt.depth_multiplier > 0 && opt.depth_multiplier <= TFX__MAX_DIM,
                   "%s: depth_multiplier = %d must be in 1..%d", fn, opt.depth_multiplier, TFX__MAX_DIM);
    int rc = check_activation(fn, opt.activation);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(opt.activation_alpha), "%s: activation_alpha is not finite", fn);
    tfx__layer_config c = {0};
    c.kernel_h = opt.kernel_h;
    c.kernel_w = opt.kernel_w;
    c.stride_h = opt.stride_h;
    c.stride_w = opt.stride_w;
    c.depth_multiplier = opt.depth_multiplier;
    rc = set_padding(fn, opt.padding, opt.pad_top, opt.pad_bottom, opt.pad_left, opt.pad_right, &c);
    if (rc) return rc;
    rc = set_fused_activation(fn, opt.activation, opt.activation_alpha, opt.clip_min, opt.clip_max, &c);
    if (rc) return rc;
    c.use_bias = opt.use_bias != 0;
    return tfx__model_add_layer(m, &tfx__depthwise_conv2d_ops, &c, opt.name, out);
}

int tfx_model_add_flatten(tfx_model *m, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_flatten");
    tfx__layer_config c = {0};
    return tfx__model_add_layer(m, &tfx__flatten_ops, &c, name, out);
}

static int add_pool(tfx_model *m, const tfx_pool2d_options *o, tfx_layer **out, const tfx__layer_ops *ops,
                    const char *fn)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, fn);
    tfx_pool2d_options opt = TFX_POOL2D_OPTIONS_INIT;
    COPY_OPTIONS(opt, o, TFX_POOL2D_OPTIONS_VERSION, fn);
    TFX__CHECK_ARG(opt.pool_h > 0 && opt.pool_w > 0 && opt.pool_h <= TFX__MAX_DIM && opt.pool_w <= TFX__MAX_DIM,
                   "%s: pool size %dx%d must be positive", fn, opt.pool_h, opt.pool_w);
    TFX__CHECK_ARG(opt.stride_h >= 0 && opt.stride_w >= 0 && opt.stride_h <= TFX__MAX_DIM && opt.stride_w <= TFX__MAX_DIM,
                   "%s: strides %dx%d must not be negative", fn, opt.stride_h, opt.stride_w);
    TFX__CHECK_ARG(opt.count_include_pad == 0 || ops == &tfx__average_pooling2d_ops,
                   "%s: count_include_pad = %d is for average pooling (max pooling never counts padding)", fn,
                   opt.count_include_pad);
    tfx__layer_config c = {0};
    int rc = set_padding(fn, opt.padding, opt.pad_top, opt.pad_bottom, opt.pad_left, opt.pad_right, &c);
    if (rc) return rc;
    c.count_include_pad = opt.count_include_pad != 0;
    c.kernel_h = opt.pool_h;
    c.kernel_w = opt.pool_w;
    c.stride_h = opt.stride_h ? opt.stride_h : opt.pool_h;
    c.stride_w = opt.stride_w ? opt.stride_w : opt.pool_w;
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
    CHECK_UNLOCKED(m, "tfx_model_add_global_average_pooling2d");
    tfx__layer_config c = {0};
    return tfx__model_add_layer(m, &tfx__global_average_pooling2d_ops, &c, name, out);
}

int tfx_model_add_global_max_pooling2d(tfx_model *m, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_global_max_pooling2d");
    tfx__layer_config c = {0};
    return tfx__model_add_layer(m, &tfx__global_max_pooling2d_ops, &c, name, out);
}

int tfx_model_add_zero_padding2d(tfx_model *m, int top, int bottom, int left, int right, const char *name,
                                 tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_zero_padding2d");
    TFX__CHECK_ARG(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && top <= TFX__MAX_DIM &&
                       bottom <= TFX__MAX_DIM && left <= TFX__MAX_DIM && right <= TFX__MAX_DIM,
                   "tfx_model_add_zero_padding2d: padding (top %d, bottom %d, left %d, right %d) must be in 0..%d",
                   top, bottom, left, right, TFX__MAX_DIM);
    tfx__layer_config c = {0};
    c.pad_top = top;
    c.pad_bottom = bottom;
    c.pad_left = left;
    c.pad_right = right;
    tfx__zero_padding_window(&c);
    return tfx__model_add_layer(m, &tfx__zero_padding2d_ops, &c, name, out);
}

int tfx_model_add_reshape(tfx_model *m, int height, int width, int channels, const char *name, tfx_layer **out)
{
    static const char fn[] = "tfx_model_add_reshape";
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_reshape");
    int dims[3] = {height, width, channels}, unknown = -1;
    double known = 1.0;
    for (int i = 0; i < 3; i++) {
        TFX__CHECK_ARG(dims[i] == -1 || (dims[i] >= 1 && dims[i] <= TFX__MAX_DIM),
                       "%s: target shape %dx%dx%d: each size must be in 1..%d, or one of them -1", fn, height, width,
                       channels, TFX__MAX_DIM);
        if (dims[i] != -1) {
            known *= dims[i];
            continue;
        }
        TFX__CHECK_ARG(unknown < 0, "%s: target shape %dx%dx%d: only one size may be -1", fn, height, width, channels);
        unknown = i;
    }
    const tfx__shape in = tensor_shape(m, tfx__model_next_tensor(m));
    const double total = (double)tfx__shape_size(in);
    if (unknown >= 0) {
        const double d = total / known;
        if (d != (double)(long)d || d < 1.0 || d > TFX__MAX_DIM)
            return tfx__error(TFX_ESHAPE, "%s: target shape %dx%dx%d: the input's %.0f values do not give the -1 size",
                              fn, height, width, channels, total);
        dims[unknown] = (int)d;
    }
    tfx__layer_config c = {0};
    c.kernel_h = dims[0];
    c.kernel_w = dims[1];
    c.filters = dims[2];
    return tfx__model_add_layer(m, &tfx__reshape_ops, &c, name, out);
}

int tfx_model_add_dropout(tfx_model *m, float rate, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_dropout");
    TFX__CHECK_ARG(rate >= 0.0f && rate < 1.0f, "tfx_model_add_dropout: rate %g must be in [0, 1)", (double)rate);
    tfx__layer_config c = {0};
    c.rate = rate;
    return tfx__model_add_layer(m, &tfx__dropout_ops, &c, name, out);
}

int tfx_model_add_activation(tfx_model *m, int activation, float alpha, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_activation");
    int rc = check_activation("tfx_model_add_activation", activation);
    if (rc) return rc;
    TFX__CHECK_ARG(activation != TFX_ACTIVATION_CLIP,
                   "tfx_model_add_activation: TFX_ACTIVATION_CLIP needs its bounds: use tfx_model_add_clip");
    TFX__CHECK_ARG(isfinite(alpha), "tfx_model_add_activation: alpha is not finite");
    tfx__layer_config c = {0};
    c.activation = activation;
    c.alpha = tfx__activation_default_alpha(activation, alpha);
    return tfx__model_add_layer(m, &tfx__activation_ops, &c, name, out);
}

int tfx_model_add_clip(tfx_model *m, float min, float max, const char *name, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_clip");
    tfx__layer_config c = {0};
    int rc = set_fused_activation("tfx_model_add_clip", TFX_ACTIVATION_CLIP, 0.0f, min, max, &c);
    if (rc) return rc;
    return tfx__model_add_layer(m, &tfx__activation_ops, &c, name, out);
}

int tfx_model_add_batch_normalization(tfx_model *m, const tfx_batch_norm_options *o, tfx_layer **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    CHECK_UNLOCKED(m, "tfx_model_add_batch_normalization");
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
    CHECK_UNLOCKED(l->model, "tfx_layer_set_weights");
    size_t k = 0, b = 0;
    if (l->ops->weight_sizes) l->ops->weight_sizes(l, &k, &b);
    if (k == 0 && b == 0)
        return tfx__error(TFX_EINVAL, "tfx_layer_set_weights: layer '%s' (%s) has no weights to set", l->name,
                          l->ops->type_name);
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
