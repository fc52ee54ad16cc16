/* The Keras JSON config (Keras 2 `model_config` or Keras 3 `config.json`) to an ordinary libtfx
 * model, through the public building calls. The JSON is untrusted: every field's type, range
 * and size is checked here (messages name the layer, its class and the field), every weight
 * array's shape is checked against what the config implies before it is read, and what libtfx
 * does not have is refused with TFX_ENOTSUP rather than approximated (DESIGN 15). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "keras/keras_internal.h"
#include "tfx/model.h"

typedef struct kl {
    const char *cls, *name;
    json_t *cfg;       /* the layer's "config" object (borrowed from the document) */
    json_t *node;      /* functional: its one inbound node (NULL: none) */
    int *in;           /* functional: indices of the layers it reads */
    size_t n_in;
    int state;         /* topological walk: 0 new, 1 on the stack, 2 placed */
    int is_input;
    tfx_layer *made;   /* NULL for the InputLayer: the model input */
    char key[340];     /* Keras 3's weights key: snake_case(class)[_k] */
} kl;

typedef struct kb {
    tfx_model *m;
    const tfx__keras_weights *w;
    int major;
    const tfx_keras_options *o;
    size_t max_params, params;
    kl *L;
    size_t n;
} kb;

#define LAYER_ERR(code, l, fmt, ...) \
    tfx__error((code), "layer '%s' (%s): " fmt, (l)->name, (l)->cls, __VA_ARGS__)

/* ---- typed field readers ---- */

static json_t *field(const kl *l, const char *key)
{
    json_t *v = json_object_get(l->cfg, key);
    return json_is_null(v) ? NULL : v;
}

static int get_int(const kl *l, const char *key, int def, int lo, int hi, int *out)
{
    json_t *v = field(l, key);
    if (!v) {
        *out = def;
        return TFX_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be an integer in %d..%d", key, lo, hi);
    *out = (int)json_integer_value(v);
    return TFX_OK;
}

/* An int or a list of two ints (kernel_size, strides, pool_size); absent: def, def. */
static int get_pair(const kl *l, const char *key, int def, int lo, int hi, int out[2])
{
    json_t *v = field(l, key);
    out[0] = out[1] = def;
    if (!v) return def > 0 ? TFX_OK : LAYER_ERR(TFX_EFORMAT, l, "'%s' is missing", key);
    if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi) {
        out[0] = out[1] = (int)json_integer_value(v);
        return TFX_OK;
    }
    if (json_is_array(v) && json_array_size(v) == 2) {
        for (size_t i = 0; i < 2; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi) goto bad;
            out[i] = (int)json_integer_value(e);
        }
        return TFX_OK;
    }
bad:
    return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be an integer or a list of two integers in %d..%d", key, lo, hi);
}

static int get_bool(const kl *l, const char *key, int def, int *out)
{
    json_t *v = field(l, key);
    if (!v) {
        *out = def;
        return TFX_OK;
    }
    if (!json_is_boolean(v)) return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return TFX_OK;
}

/* A finite number; absent or null: def, and *given (when asked) says whether it was there. */
static int get_float(const kl *l, const char *key, double def, float *out, int *given)
{
    json_t *v = field(l, key);
    if (given) *given = v != NULL;
    if (!v) {
        *out = (float)def;
        return TFX_OK;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || fabs(json_number_value(v)) > 3.0e38)
        return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be a finite number", key);
    *out = (float)json_number_value(v);
    return TFX_OK;
}

static int get_string(const kl *l, const char *key, const char *def, const char **out)
{
    json_t *v = field(l, key);
    if (!v) {
        *out = def;
        return def ? TFX_OK : LAYER_ERR(TFX_EFORMAT, l, "'%s' is missing", key);
    }
    if (!json_is_string(v)) return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be a string", key);
    *out = json_string_value(v);
    return TFX_OK;
}

static int get_padding(const kl *l, int *out)
{
    const char *p = NULL;
    int rc = get_string(l, "padding", "valid", &p);
    if (rc) return rc;
    if (!strcmp(p, "valid")) *out = TFX_PADDING_VALID;
    else if (!strcmp(p, "same")) *out = TFX_PADDING_SAME;
    else if (!strcmp(p, "causal")) return LAYER_ERR(TFX_ENOTSUP, l, "padding '%s' is not supported", p);
    else return LAYER_ERR(TFX_EFORMAT, l, "padding '%.40s' is not 'valid' or 'same'", p);
    return TFX_OK;
}

/* An int or a one-element list (BatchNormalization stores its built axis as [3]). */
static int get_axis(const kl *l, const char *key, int def, int *out)
{
    json_t *v = field(l, key);
    if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
    if (!v) {
        *out = def;
        return TFX_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < -8 || json_integer_value(v) > 8)
        return LAYER_ERR(TFX_EFORMAT, l, "'%s' must be an integer axis", key);
    *out = (int)json_integer_value(v);
    return TFX_OK;
}

/* A channel axis: -1, 3 on a feature map, 1 on a flat (1x1xk) tensor. */
static int check_channel_axis(const kl *l, int axis, const int in[3])
{
    if (axis == -1 || axis == 3 || (axis == 1 && in[0] == 1 && in[1] == 1)) return TFX_OK;
    return LAYER_ERR(TFX_ENOTSUP, l, "axis %d is not supported (only the channel axis: -1)", axis);
}

/* ---- activations ---- */

typedef struct act {
    int kind;
    float alpha, lo, hi;
} act;

static int activation_named(const kb *b, const kl *l, const char *s, act *a)
{
    a->kind = TFX_ACTIVATION_LINEAR;
    a->alpha = 0.0f;
    a->lo = 0.0f;
    a->hi = 6.0f;
    static const struct {
        const char *name;
        int kind;
    } table[] = {{"linear", TFX_ACTIVATION_LINEAR}, {"relu", TFX_ACTIVATION_RELU},     {"sigmoid", TFX_ACTIVATION_SIGMOID},
                 {"tanh", TFX_ACTIVATION_TANH},     {"softmax", TFX_ACTIVATION_SOFTMAX}, {"elu", TFX_ACTIVATION_ELU},
                 {"swish", TFX_ACTIVATION_SWISH},   {"silu", TFX_ACTIVATION_SWISH},    {"relu6", TFX_ACTIVATION_RELU6},
                 {"leaky_relu", TFX_ACTIVATION_LEAKY_RELU}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name)) {
            a->kind = table[i].kind;
            if (a->kind == TFX_ACTIVATION_ELU) a->alpha = 1.0f;
            if (a->kind == TFX_ACTIVATION_LEAKY_RELU) a->alpha = 0.2f; /* Keras 3's default slope */
            return TFX_OK;
        }
    /* Keras 3's hard_sigmoid / hard_silu are relu6(x + 3) / 6 (times x): libtfx's. tf.keras 2's
     * hard_sigmoid is 0.2 x + 0.5 clipped to [0, 1], which libtfx does not have. */
    if (!strcmp(s, "hard_sigmoid") || !strcmp(s, "hard_swish") || !strcmp(s, "hard_silu")) {
        if (b->major >= 3) {
            a->kind = s[5] == 's' && s[6] == 'i' && s[7] == 'g' ? TFX_ACTIVATION_HARD_SIGMOID : TFX_ACTIVATION_HARD_SWISH;
            return TFX_OK;
        }
        if (!strcmp(s, "hard_sigmoid"))
            return LAYER_ERR(TFX_ENOTSUP, l,
                             "activation 'hard_sigmoid' of Keras %d is 0.2 x + 0.5 clipped to [0, 1], which libtfx does "
                             "not have (its hard sigmoid is Keras 3's relu6(x + 3) / 6)",
                             b->major);
    }
    return LAYER_ERR(TFX_ENOTSUP, l, "activation '%.64s' is not supported", s);
}

static int get_activation(const kb *b, const kl *l, const char *key, act *a)
{
    json_t *v = field(l, key);
    if (!v) return activation_named(b, l, "linear", a);
    if (!json_is_string(v))
        return LAYER_ERR(TFX_ENOTSUP, l, "'%s' is not a built-in activation name (a custom activation)", key);
    return activation_named(b, l, json_string_value(v), a);
}

/* ---- weights ---- */

typedef struct warr {
    const char *what;
    int rank;
    size_t dims[4];
    float *dst;
} warr;

static size_t warr_size(const warr *w)
{
    size_t n = 1;
    for (int i = 0; i < w->rank; i++) n *= w->dims[i];
    return n;
}

/* Read the k arrays the config implies for layer l, in Keras's order. */
static int read_weights(kb *b, const kl *l, warr *arr, size_t k)
{
    if (b->w->count) {
        size_t have = 0;
        int rc = b->w->count(b->w->ctx, b->w->by_class_key ? l->key : l->name, &have);
        if (rc) return tfx__error_prefix("layer '%s' (%s)", l->name, l->cls);
        if (have < k)
            return LAYER_ERR(TFX_EFORMAT, l, "weight %zu (%s) is missing: the file has %zu weight arrays, the config needs %zu",
                             have, arr[have].what, have, k);
        if (have > k)
            return LAYER_ERR(TFX_EFORMAT, l, "the file has %zu weight arrays, the config needs %zu", have, k);
    }
    for (size_t i = 0; i < k; i++) {
        int rc = b->w->read(b->w->ctx, b->w->by_class_key ? l->key : l->name, i, arr[i].what, arr[i].dims, arr[i].rank,
                            arr[i].dst);
        if (rc) return tfx__error_prefix("layer '%s' (%s)", l->name, l->cls);
    }
    return TFX_OK;
}

/* Parameters the layer will hold, against the cap (checked before the layer is added). */
static int reserve_params(kb *b, const kl *l, size_t a, size_t c, size_t d)
{
    size_t n;
    if (tfx__mul_size(a, c, &n) || tfx__mul_size(n, d, &n) || n > b->max_params || b->params + n > b->max_params)
        return LAYER_ERR(TFX_ENOTSUP, l, "the model would hold more than %zu parameters", b->max_params);
    b->params += n;
    return TFX_OK;
}

/* Read the kernel (and bias) of a Conv2D / DepthwiseConv2D / Dense into buffers sized by the
 * layer itself, then set them. */
static int weighted(kb *b, const kl *l, tfx_layer *t, warr *arr, size_t k)
{
    size_t ks = 0, bs = 0;
    int rc = tfx_layer_weight_sizes(t, &ks, &bs);
    if (rc) return rc;
    if (warr_size(&arr[0]) != ks || (k == 2 ? warr_size(&arr[1]) != bs : bs != 0))
        return LAYER_ERR(TFX_ESTATE, l, "%s", "the layer's weight sizes differ from the config's");
    float *kernel = tfx__alloc_floats(ks ? ks : 1, 1), *bias = tfx__alloc_floats(bs ? bs : 1, 1);
    if (!kernel || !bias) {
        tfx__free(kernel);
        tfx__free(bias);
        return tfx__error(TFX_ENOMEM, "layer '%s': out of memory for its weights", l->name);
    }
    arr[0].dst = kernel;
    if (k == 2) arr[1].dst = bias;
    rc = read_weights(b, l, arr, k);
    if (!rc) rc = tfx_layer_set_weights(t, kernel, bs ? bias : NULL);
    tfx__free(kernel);
    tfx__free(bias);
    return rc;
}

/* ---- one layer per class ---- */

static int in_shape(const kb *b, tfx_layer *const *in, int s[3])
{
    if (in[0]) return tfx_layer_output_shape(in[0], s);
    return tfx_model_input_shape(b->m, s);
}

static int common_checks(const kl *l)
{
    json_t *dt = field(l, "dtype");
    const char *name = NULL;
    if (json_is_string(dt)) name = json_string_value(dt);
    else if (json_is_object(dt)) { /* Keras 3's DTypePolicy {"config": {"name": "float32"}} */
        json_t *c = json_object_get(dt, "config");
        json_t *n = json_is_object(c) ? json_object_get(c, "name") : NULL;
        name = json_is_string(n) ? json_string_value(n) : "(unreadable)";
    } else if (dt) return LAYER_ERR(TFX_EFORMAT, l, "%s", "'dtype' must be a string or a dtype policy");
    if (name && strcmp(name, "float32"))
        return LAYER_ERR(TFX_ENOTSUP, l, "dtype '%.40s' is not supported (libtfx computes in float32)", name);
    const char *df = NULL;
    int rc = get_string(l, "data_format", "channels_last", &df);
    if (rc) return rc;
    if (strcmp(df, "channels_last"))
        return LAYER_ERR(TFX_ENOTSUP, l, "data_format '%.40s' is not supported (libtfx is channels_last)", df);
    if (field(l, "lora_rank")) return LAYER_ERR(TFX_ENOTSUP, l, "%s", "LoRA ('lora_rank') is not supported");
    return TFX_OK;
}

static int dilation_one(const kl *l)
{
    int d[2];
    int rc = get_pair(l, "dilation_rate", 1, 1, TFX__KERAS_MAX_DIM, d);
    if (rc) return rc;
    if (d[0] != 1 || d[1] != 1) return LAYER_ERR(TFX_ENOTSUP, l, "dilation_rate (%d, %d) is not supported (1 only)", d[0], d[1]);
    return TFX_OK;
}

#define TRY(x)                   \
    do {                         \
        if ((rc = (x))) return rc; \
    } while (0)

static int add_conv2d(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    int rc, ks[2], st[2], s[3];
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    act a;
    TRY(get_int(l, "filters", 0, 1, TFX__KERAS_MAX_DIM, &o.filters));
    TRY(get_pair(l, "kernel_size", 0, 1, TFX__KERAS_MAX_DIM, ks));
    TRY(get_pair(l, "strides", 1, 1, TFX__KERAS_MAX_DIM, st));
    TRY(get_padding(l, &o.padding));
    TRY(dilation_one(l));
    TRY(get_int(l, "groups", 1, 1, TFX__KERAS_MAX_DIM, &o.groups));
    TRY(get_bool(l, "use_bias", 1, &o.use_bias));
    TRY(get_activation(b, l, "activation", &a));
    TRY(in_shape(b, in, s));
    if (s[2] % o.groups || o.filters % o.groups)
        return LAYER_ERR(TFX_EFORMAT, l, "groups %d does not divide the %d input channels and %d filters", o.groups, s[2],
                         o.filters);
    TRY(reserve_params(b, l, (size_t)ks[0] * (size_t)ks[1], (size_t)(s[2] / o.groups), (size_t)o.filters));
    o.kernel_h = ks[0], o.kernel_w = ks[1], o.stride_h = st[0], o.stride_w = st[1];
    o.activation = a.kind, o.activation_alpha = a.alpha;
    o.name = l->name;
    TRY(tfx_model_add_conv2d(b->m, &o, out));
    warr w[2] = {{"kernel", 4, {(size_t)ks[0], (size_t)ks[1], (size_t)(s[2] / o.groups), (size_t)o.filters}, NULL},
                 {"bias", 1, {(size_t)o.filters}, NULL}};
    return weighted(b, l, *out, w, o.use_bias ? 2 : 1);
}

static int add_depthwise(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    int rc, ks[2], st[2], s[3];
    tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    act a;
    TRY(get_pair(l, "kernel_size", 0, 1, TFX__KERAS_MAX_DIM, ks));
    TRY(get_pair(l, "strides", 1, 1, TFX__KERAS_MAX_DIM, st));
    TRY(get_padding(l, &o.padding));
    TRY(dilation_one(l));
    TRY(get_int(l, "depth_multiplier", 1, 1, TFX__KERAS_MAX_DIM, &o.depth_multiplier));
    TRY(get_bool(l, "use_bias", 1, &o.use_bias));
    TRY(get_activation(b, l, "activation", &a));
    TRY(in_shape(b, in, s));
    TRY(reserve_params(b, l, (size_t)ks[0] * (size_t)ks[1], (size_t)s[2], (size_t)o.depth_multiplier));
    o.kernel_h = ks[0], o.kernel_w = ks[1], o.stride_h = st[0], o.stride_w = st[1];
    o.activation = a.kind, o.activation_alpha = a.alpha;
    o.name = l->name;
    TRY(tfx_model_add_depthwise_conv2d(b->m, &o, out));
    warr w[2] = {{"depthwise_kernel", 4, {(size_t)ks[0], (size_t)ks[1], (size_t)s[2], (size_t)o.depth_multiplier}, NULL},
                 {"bias", 1, {(size_t)s[2] * (size_t)o.depth_multiplier}, NULL}};
    return weighted(b, l, *out, w, o.use_bias ? 2 : 1);
}

static int add_dense(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    int rc, s[3];
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    act a;
    TRY(get_int(l, "units", 0, 1, TFX__KERAS_MAX_DIM, &o.units));
    TRY(get_bool(l, "use_bias", 1, &o.use_bias));
    TRY(get_activation(b, l, "activation", &a));
    TRY(in_shape(b, in, s));
    if (s[0] != 1 || s[1] != 1)
        return LAYER_ERR(TFX_ENOTSUP, l,
                         "Dense on a %dx%dx%d input is not supported (Keras applies it at each position; libtfx's Dense "
                         "needs a flat input: add Flatten)",
                         s[0], s[1], s[2]);
    TRY(reserve_params(b, l, (size_t)s[2], (size_t)o.units, 1));
    o.activation = a.kind, o.activation_alpha = a.alpha;
    o.name = l->name;
    TRY(tfx_model_add_dense(b->m, &o, out));
    warr w[2] = {{"kernel", 2, {(size_t)s[2], (size_t)o.units}, NULL}, {"bias", 1, {(size_t)o.units}, NULL}};
    return weighted(b, l, *out, w, o.use_bias ? 2 : 1);
}

static int add_batchnorm(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    int rc, s[3], axis = -1, renorm = 0;
    tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
    TRY(get_axis(l, "axis", -1, &axis));
    TRY(in_shape(b, in, s));
    TRY(check_channel_axis(l, axis, s));
    TRY(get_float(l, "epsilon", 1e-3, &o.epsilon, NULL));
    TRY(get_float(l, "momentum", 0.99, &o.momentum, NULL));
    TRY(get_bool(l, "center", 1, &o.center));
    TRY(get_bool(l, "scale", 1, &o.scale));
    TRY(get_bool(l, "renorm", 0, &renorm));
    if (renorm) return LAYER_ERR(TFX_ENOTSUP, l, "%s", "renorm is not supported");
    if (field(l, "virtual_batch_size"))
        return LAYER_ERR(TFX_ENOTSUP, l, "%s", "virtual_batch_size is not supported");
    if (!(o.epsilon > 0.0f)) return LAYER_ERR(TFX_EFORMAT, l, "epsilon %g must be positive", (double)o.epsilon);
    TRY(reserve_params(b, l, 4, (size_t)s[2], 1));
    o.name = l->name;
    TRY(tfx_model_add_batch_normalization(b->m, &o, out));
    /* Keras's order: gamma (scale), beta (center), moving_mean, moving_variance; the kernel
     * libtfx takes is the four rows, so each array goes to its row. */
    size_t ks = 0, bs = 0;
    TRY(tfx_layer_weight_sizes(*out, &ks, &bs));
    warr w[4];
    size_t k = 0;
    const size_t C = (size_t)s[2];
    float *kernel = tfx__alloc_floats(4 * C, 1);
    if (!kernel || ks != 4 * C) {
        tfx__free(kernel);
        return kernel ? LAYER_ERR(TFX_ESTATE, l, "%s", "unexpected weight layout")
                      : tfx__error(TFX_ENOMEM, "layer '%s': out of memory for its weights", l->name);
    }
    for (size_t i = 0; i < 4 * C; i++) kernel[i] = i < C ? 1.0f : 0.0f;
    if (o.scale) w[k++] = (warr){"gamma", 1, {C}, kernel};
    if (o.center) w[k++] = (warr){"beta", 1, {C}, kernel + C};
    w[k++] = (warr){"moving_mean", 1, {C}, kernel + 2 * C};
    w[k++] = (warr){"moving_variance", 1, {C}, kernel + 3 * C};
    rc = read_weights(b, l, w, k);
    for (size_t i = 0; !rc && i < C; i++)
        if (!(kernel[3 * C + i] >= 0.0f) || !isfinite(kernel[3 * C + i]))
            rc = LAYER_ERR(TFX_EFORMAT, l, "moving_variance[%zu] = %g is not a finite non-negative number", i,
                           (double)kernel[3 * C + i]);
    if (!rc) rc = tfx_layer_set_weights(*out, kernel, NULL);
    tfx__free(kernel);
    return rc;
}

static int add_pool(kb *b, kl *l, tfx_layer **out, int avg)
{
    int rc, ps[2], st[2];
    tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
    TRY(get_pair(l, "pool_size", 2, 1, TFX__KERAS_MAX_DIM, ps));
    TRY(get_pair(l, "strides", ps[0], 1, TFX__KERAS_MAX_DIM, st));
    if (!field(l, "strides")) st[0] = ps[0], st[1] = ps[1];
    TRY(get_padding(l, &o.padding));
    o.pool_h = ps[0], o.pool_w = ps[1], o.stride_h = st[0], o.stride_w = st[1];
    o.count_include_pad = 0; /* Keras averages the valid cells */
    o.name = l->name;
    return avg ? tfx_model_add_average_pooling2d(b->m, &o, out) : tfx_model_add_max_pooling2d(b->m, &o, out);
}

static int add_global(kb *b, kl *l, tfx_layer **out, int avg)
{
    int rc, keep = 0;
    TRY(get_bool(l, "keepdims", 0, &keep));
    if (keep) return LAYER_ERR(TFX_ENOTSUP, l, "%s", "keepdims true is not supported");
    return avg ? tfx_model_add_global_average_pooling2d(b->m, l->name, out)
               : tfx_model_add_global_max_pooling2d(b->m, l->name, out);
}

static int add_zero_padding(kb *b, kl *l, tfx_layer **out)
{
    int p[4] = {1, 1, 1, 1}; /* top, bottom, left, right */
    json_t *v = field(l, "padding");
    const int hi = 1 << 20;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > hi) goto bad;
        p[0] = p[1] = p[2] = p[3] = (int)json_integer_value(v);
    } else if (json_is_array(v) && json_array_size(v) == 2) {
        for (size_t i = 0; i < 2; i++) {
            json_t *e = json_array_get(v, i);
            if (json_is_integer(e)) {
                if (json_integer_value(e) < 0 || json_integer_value(e) > hi) goto bad;
                p[2 * i] = p[2 * i + 1] = (int)json_integer_value(e);
            } else if (json_is_array(e) && json_array_size(e) == 2) {
                for (size_t j = 0; j < 2; j++) {
                    json_t *f = json_array_get(e, j);
                    if (!json_is_integer(f) || json_integer_value(f) < 0 || json_integer_value(f) > hi) goto bad;
                    p[2 * i + j] = (int)json_integer_value(f);
                }
            } else goto bad;
        }
    } else if (v) goto bad;
    return tfx_model_add_zero_padding2d(b->m, p[0], p[1], p[2], p[3], l->name, out);
bad:
    return LAYER_ERR(TFX_EFORMAT, l, "'padding' must be an integer, two integers or two pairs of integers in 0..%d", hi);
}

static int add_reshape(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    json_t *v = field(l, "target_shape");
    int d[3], rc, s[3];
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > 3)
        return LAYER_ERR(n > 3 ? TFX_ENOTSUP : TFX_EFORMAT, l, "'target_shape' must be a list of 1 or 3 sizes (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < -1 || json_integer_value(e) == 0 ||
            json_integer_value(e) > (1 << 28))
            return LAYER_ERR(TFX_EFORMAT, l, "'target_shape'[%zu] must be -1 or a positive integer", i);
        d[i] = (int)json_integer_value(e);
    }
    if (n == 2) return LAYER_ERR(TFX_ENOTSUP, l, "%s", "a target_shape of rank 2 is not supported (only (h, w, c) or (k,))");
    if (n == 3) return tfx_model_add_reshape(b->m, d[0], d[1], d[2], l->name, out);
    TRY(in_shape(b, in, s));
    size_t total = (size_t)s[0] * (size_t)s[1] * (size_t)s[2];
    if (d[0] != -1 && (size_t)d[0] != total)
        return LAYER_ERR(TFX_ESHAPE, l, "target_shape (%d,) does not hold the %zu values of its %dx%dx%d input", d[0], total,
                         s[0], s[1], s[2]);
    return tfx_model_add_flatten(b->m, l->name, out);
}

static int add_activation_layer(kb *b, kl *l, const act *a, tfx_layer **out)
{
    if (a->kind == TFX_ACTIVATION_CLIP) return tfx_model_add_clip(b->m, a->lo, a->hi, l->name, out);
    return tfx_model_add_activation(b->m, a->kind, a->alpha, l->name, out);
}

static int add_relu(kb *b, kl *l, tfx_layer **out)
{
    int rc, has_max = 0;
    float mx = 0.0f, slope = 0.0f, th = 0.0f;
    TRY(get_float(l, "max_value", 0.0, &mx, &has_max));
    TRY(get_float(l, "negative_slope", 0.0, &slope, NULL));
    TRY(get_float(l, "threshold", 0.0, &th, NULL));
    act a = {TFX_ACTIVATION_RELU, 0.0f, 0.0f, 6.0f};
    if (th != 0.0f) return LAYER_ERR(TFX_ENOTSUP, l, "threshold %g is not supported (0 only)", (double)th);
    if (slope < 0.0f) return LAYER_ERR(TFX_EFORMAT, l, "negative_slope %g must not be negative", (double)slope);
    if (slope == 0.0f && has_max) {
        if (!(mx > 0.0f)) return LAYER_ERR(TFX_ENOTSUP, l, "max_value %g is not supported (positive only)", (double)mx);
        if (mx == 6.0f) a.kind = TFX_ACTIVATION_RELU6;
        else a.kind = TFX_ACTIVATION_CLIP, a.hi = mx;
    } else if (slope > 0.0f) {
        if (has_max)
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "negative_slope with max_value is not supported");
        a.kind = TFX_ACTIVATION_LEAKY_RELU, a.alpha = slope;
    }
    return add_activation_layer(b, l, &a, out);
}

static int add_leaky_relu(kb *b, kl *l, tfx_layer **out)
{
    int rc, given = 0;
    float s = 0.3f;
    TRY(get_float(l, "negative_slope", 0.3, &s, &given));
    if (!given) TRY(get_float(l, "alpha", 0.3, &s, NULL));
    if (!(s >= 0.0f)) return LAYER_ERR(TFX_ENOTSUP, l, "a negative slope (%g) is not supported", (double)s);
    act a = {s == 0.0f ? TFX_ACTIVATION_RELU : TFX_ACTIVATION_LEAKY_RELU, s, 0.0f, 6.0f};
    return add_activation_layer(b, l, &a, out);
}

static int add_softmax(kb *b, kl *l, tfx_layer *const *in, tfx_layer **out)
{
    int rc, axis = -1, s[3];
    TRY(get_axis(l, "axis", -1, &axis));
    TRY(in_shape(b, in, s));
    TRY(check_channel_axis(l, axis, s));
    act a = {TFX_ACTIVATION_SOFTMAX, 0.0f, 0.0f, 6.0f};
    return add_activation_layer(b, l, &a, out);
}

static int add_merge(kb *b, kl *l, tfx_layer *const *in, size_t n, tfx_layer **out)
{
    int rc;
    if (n < 2) return LAYER_ERR(TFX_EFORMAT, l, "a merge layer needs at least two inputs (%zu)", n);
    if (!strcmp(l->cls, "Concatenate")) {
        int axis = -1, s[3];
        TRY(get_axis(l, "axis", -1, &axis));
        TRY(in_shape(b, in, s));
        TRY(check_channel_axis(l, axis, s));
        return tfx_model_add_concatenate(b->m, in, n, l->name, out);
    }
    if (!strcmp(l->cls, "Add")) return tfx_model_add_add(b->m, in, n, l->name, out);
    return tfx_model_add_multiply(b->m, in, n, l->name, out);
}

static int is_model_class(const char *c)
{
    return !strcmp(c, "Sequential") || !strcmp(c, "Functional") || !strcmp(c, "Model");
}

/* Add config layer l reading the n tensors in (NULL: the model input). */
static int add_layer(kb *b, kl *l, tfx_layer *const *in, size_t n)
{
    int rc = common_checks(l);
    if (rc) return rc;
    const char *c = l->cls;
    tfx_layer **out = &l->made;
    int merge = !strcmp(c, "Add") || !strcmp(c, "Concatenate") || !strcmp(c, "Multiply");
    if (merge) {
        rc = add_merge(b, l, in, n, out);
    } else {
        if (n != 1) return LAYER_ERR(TFX_EFORMAT, l, "takes one input, the graph gives it %zu", n);
        if ((rc = tfx_model_set_next_input(b->m, in[0]))) return rc;
        if (!strcmp(c, "Conv2D") || !strcmp(c, "Convolution2D")) rc = add_conv2d(b, l, in, out);
        else if (!strcmp(c, "DepthwiseConv2D")) rc = add_depthwise(b, l, in, out);
        else if (!strcmp(c, "Dense")) rc = add_dense(b, l, in, out);
        else if (!strcmp(c, "BatchNormalization")) rc = add_batchnorm(b, l, in, out);
        else if (!strcmp(c, "Flatten")) rc = tfx_model_add_flatten(b->m, l->name, out);
        else if (!strcmp(c, "Reshape")) rc = add_reshape(b, l, in, out);
        else if (!strcmp(c, "MaxPooling2D") || !strcmp(c, "MaxPool2D")) rc = add_pool(b, l, out, 0);
        else if (!strcmp(c, "AveragePooling2D") || !strcmp(c, "AvgPool2D")) rc = add_pool(b, l, out, 1);
        else if (!strcmp(c, "GlobalAveragePooling2D") || !strcmp(c, "GlobalAvgPool2D")) rc = add_global(b, l, out, 1);
        else if (!strcmp(c, "GlobalMaxPooling2D") || !strcmp(c, "GlobalMaxPool2D")) rc = add_global(b, l, out, 0);
        else if (!strcmp(c, "ZeroPadding2D")) rc = add_zero_padding(b, l, out);
        else if (!strcmp(c, "Dropout")) {
            float rate;
            if (!(rc = get_float(l, "rate", 0.0, &rate, NULL))) {
                if (!(rate >= 0.0f && rate < 1.0f)) return LAYER_ERR(TFX_EFORMAT, l, "rate %g is not in [0, 1)", (double)rate);
                rc = tfx_model_add_dropout(b->m, rate, l->name, out);
            }
        } else if (!strcmp(c, "Activation")) {
            act a;
            if (!field(l, "activation")) return LAYER_ERR(TFX_EFORMAT, l, "%s", "'activation' is missing");
            if (!(rc = get_activation(b, l, "activation", &a))) rc = add_activation_layer(b, l, &a, out);
        } else if (!strcmp(c, "ReLU")) rc = add_relu(b, l, out);
        else if (!strcmp(c, "LeakyReLU")) rc = add_leaky_relu(b, l, out);
        else if (!strcmp(c, "Softmax")) rc = add_softmax(b, l, in, out);
        else if (is_model_class(c))
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "a nested model is not supported (build the model flat in Keras)");
        else if (!strcmp(c, "InputLayer"))
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "a second input is not supported (one model input only)");
        else if (!strcmp(c, "Lambda"))
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "Lambda layers run Python code: libtfx cannot load them");
        else
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "libtfx has no such layer (not a supported Keras layer class)");
    }
    /* The message of a refusal from libtfx's building call names the layer too. */
    if (rc && !strstr(tfx_error_last()->message, "layer '")) tfx__error_prefix("layer '%s' (%s)", l->name, l->cls);
    return rc;
}

/* ---- the model: input shape, layers, graph ---- */

static int parse_input_shape(kb *b, const kl *l, json_t *v, int hwc[3])
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || (n != 4 && n != 2))
        return LAYER_ERR(json_is_array(v) ? TFX_ENOTSUP : TFX_EFORMAT, l,
                         "input shape must be (batch, height, width, channels) or (batch, units), not %zu entries", n);
    json_t *batch = json_array_get(v, 0);
    if (!json_is_null(batch) && (!json_is_integer(batch) || json_integer_value(batch) < 1))
        return LAYER_ERR(TFX_EFORMAT, l, "%s", "input shape: the batch size must be null or positive");
    int d[3] = {1, 1, 1};
    const int user[2] = {b->o->input_height, b->o->input_width};
    static const char *const names[3] = {"height", "width", "channels"};
    for (size_t i = 1; i < n; i++) {
        size_t k = n == 2 ? 2 : i - 1;
        json_t *e = json_array_get(v, i);
        if (json_is_null(e)) {
            if (k < 2 && user[k]) {
                d[k] = user[k];
                continue;
            }
            return LAYER_ERR(TFX_ENOTSUP, l, "the input %s is not fixed (None)%s", names[k],
                             k < 2 ? ": give it in tfx_keras_options.input_height / input_width" : "");
        }
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > TFX__KERAS_MAX_DIM)
            return LAYER_ERR(TFX_EFORMAT, l, "input %s must be an integer in 1..%d", names[k], TFX__KERAS_MAX_DIM);
        d[k] = (int)json_integer_value(e);
        if (n == 4 && k < 2 && user[k] && user[k] != d[k])
            return LAYER_ERR(TFX_EINVAL, l, "the file fixes the input %s at %d, the options ask for %d", names[k], d[k],
                             user[k]);
    }
    if ((size_t)d[0] * (size_t)d[1] * (size_t)d[2] > ((size_t)1 << 28))
        return LAYER_ERR(TFX_ENOTSUP, l, "an input of %dx%dx%d values is too large", d[0], d[1], d[2]);
    memcpy(hwc, d, sizeof d);
    return TFX_OK;
}

static int input_shape_of(kb *b, const kl *l, int hwc[3])
{
    int rc = common_checks(l), sp = 0, rag = 0;
    if (rc) return rc;
    if ((rc = get_bool(l, "sparse", 0, &sp)) || (rc = get_bool(l, "ragged", 0, &rag))) return rc;
    if (sp || rag) return LAYER_ERR(TFX_ENOTSUP, l, "%s", "sparse or ragged inputs are not supported");
    json_t *v = field(l, "batch_shape");
    if (!v) v = field(l, "batch_input_shape");
    if (!v) return LAYER_ERR(TFX_EFORMAT, l, "%s", "no input shape ('batch_input_shape' or 'batch_shape')");
    return parse_input_shape(b, l, v, hwc);
}

static int find_layer(const kb *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->L[i].name, name)) return (int)i;
    return -1;
}

/* One inbound tensor reference: Keras 2's ["name", node, tensor, {kwargs}] or Keras 3's
 * {"class_name": "__keras_tensor__", "config": {"keras_history": ["name", node, tensor]}}. */
static int tensor_ref(const kb *b, const kl *l, json_t *t, int *idx)
{
    if (json_is_object(t)) {
        json_t *cn = json_object_get(t, "class_name"), *c = json_object_get(t, "config");
        if (!json_is_string(cn) || strcmp(json_string_value(cn), "__keras_tensor__") || !json_is_object(c))
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "an inbound argument is not a Keras tensor (a constant input)");
        t = json_object_get(c, "keras_history");
    }
    size_t n = json_array_size(t);
    if (!json_is_array(t) || n < 3 || n > 4 || !json_is_string(json_array_get(t, 0)) ||
        !json_is_integer(json_array_get(t, 1)) || !json_is_integer(json_array_get(t, 2)))
        return LAYER_ERR(TFX_EFORMAT, l, "%s", "an inbound tensor is not [\"layer\", node, tensor]");
    const char *name = json_string_value(json_array_get(t, 0));
    *idx = find_layer(b, name);
    if (*idx < 0) return LAYER_ERR(TFX_EFORMAT, l, "reads layer '%.255s', which the config does not have", name);
    if (json_integer_value(json_array_get(t, 1)) != 0 || json_integer_value(json_array_get(t, 2)) != 0)
        return LAYER_ERR(TFX_ENOTSUP, l, "reads output %lld of call %lld of layer '%s' (shared layers and multi-output layers "
                                         "are not supported)",
                         (long long)json_integer_value(json_array_get(t, 2)),
                         (long long)json_integer_value(json_array_get(t, 1)), name);
    if (n == 4 && json_object_size(json_array_get(t, 3)) != 0)
        return LAYER_ERR(TFX_ENOTSUP, l, "%s", "call arguments (kwargs) on an inbound tensor are not supported");
    return TFX_OK;
}

static int push_in(kl *l, int idx)
{
    if (l->n_in >= 4096) return LAYER_ERR(TFX_EFORMAT, l, "%s", "too many inputs");
    int *p = tfx__realloc(l->in, (l->n_in + 1) * sizeof *p);
    if (!p) return tfx__error(TFX_ENOMEM, "out of memory");
    l->in = p;
    p[l->n_in++] = idx;
    return TFX_OK;
}

static int parse_node(const kb *b, kl *l)
{
    json_t *node = l->node;
    int rc, idx;
    if (json_is_array(node)) { /* Keras 2: a list of tensor references */
        if (json_array_size(node) == 0) return LAYER_ERR(TFX_EFORMAT, l, "%s", "an inbound node with no tensors");
        for (size_t i = 0; i < json_array_size(node); i++) {
            if ((rc = tensor_ref(b, l, json_array_get(node, i), &idx)) || (rc = push_in(l, idx))) return rc;
        }
        return TFX_OK;
    }
    if (!json_is_object(node)) return LAYER_ERR(TFX_EFORMAT, l, "%s", "an inbound node is neither a list nor an object");
    json_t *args = json_object_get(node, "args"), *kw = json_object_get(node, "kwargs");
    if (!json_is_array(args) || json_array_size(args) != 1)
        return LAYER_ERR(json_is_array(args) ? TFX_ENOTSUP : TFX_EFORMAT, l, "%s",
                         "an inbound node must have one positional argument ('args')");
    if (kw && !json_is_object(kw)) return LAYER_ERR(TFX_EFORMAT, l, "%s", "'kwargs' must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(kw, key, val)
    {
        if (!(!strcmp(key, "training") && (json_is_boolean(val) || json_is_null(val))) &&
            !(!strcmp(key, "mask") && json_is_null(val)))
            return LAYER_ERR(TFX_ENOTSUP, l, "call argument '%.64s' is not supported", key);
    }
    json_t *a = json_array_get(args, 0);
    if (json_is_array(a)) { /* a merge layer: a list of tensors */
        if (json_array_size(a) == 0) return LAYER_ERR(TFX_EFORMAT, l, "%s", "an inbound node with no tensors");
        for (size_t i = 0; i < json_array_size(a); i++)
            if ((rc = tensor_ref(b, l, json_array_get(a, i), &idx)) || (rc = push_in(l, idx))) return rc;
        return TFX_OK;
    }
    if ((rc = tensor_ref(b, l, a, &idx))) return rc;
    return push_in(l, idx);
}

/* input_layers / output_layers: [["name", 0, 0], ...] or Keras 3's single ["name", 0, 0]. */
static int io_layer(const kb *b, json_t *cfg, const char *key, int *idx)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_array(v) && json_array_size(v) >= 1 && json_is_string(json_array_get(v, 0))) {
        /* the single form */
    } else if (json_is_array(v) && json_array_size(v) == 1 && json_is_array(json_array_get(v, 0))) {
        v = json_array_get(v, 0);
    } else if (json_is_array(v) && json_array_size(v) > 1) {
        return tfx__error(TFX_ENOTSUP, "the model has %zu %s: libtfx models have one input and one output",
                          json_array_size(v), !strcmp(key, "input_layers") ? "inputs" : "outputs");
    } else {
        return tfx__error(TFX_EFORMAT, "the model config's '%s' must be a list of [\"layer\", 0, 0]", key);
    }
    size_t n = json_array_size(v);
    if (n < 3 || n > 4 || !json_is_string(json_array_get(v, 0)) || !json_is_integer(json_array_get(v, 1)) ||
        !json_is_integer(json_array_get(v, 2)))
        return tfx__error(TFX_EFORMAT, "the model config's '%s' must be a list of [\"layer\", 0, 0]", key);
    const char *name = json_string_value(json_array_get(v, 0));
    *idx = find_layer(b, name);
    if (*idx < 0) return tfx__error(TFX_EFORMAT, "the model config's '%s' names layer '%.255s', which it does not have", key, name);
    if (json_integer_value(json_array_get(v, 1)) != 0 || json_integer_value(json_array_get(v, 2)) != 0)
        return tfx__error(TFX_ENOTSUP, "the model config's '%s' reads a second call or output of '%s'", key, name);
    return TFX_OK;
}

/* Keras's naming.to_snake_case of a class name (its three regular expressions, in order):
 * drop non-word characters; "(.)([A-Z][a-z]+)" -> "\\1_\\2"; "([a-z])([A-Z])" -> "\\1_\\2"; lower. */
static void snake_case(const char *cls, char *out, size_t cap)
{
    char a[160], b2[320];
    size_t n = 0, m = 0;
    for (const char *p = cls; *p && n + 1 < sizeof a; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_') a[n++] = *p;
    a[n] = '\0';
#define UP(c) ((c) >= 'A' && (c) <= 'Z')
#define LO(c) ((c) >= 'a' && (c) <= 'z')
    for (size_t p = 0; p < n;) { /* each match consumes the char before and the capitalised word */
        if (p + 2 < n + 1 && UP(a[p + 1]) && LO(a[p + 2])) {
            size_t e = p + 2;
            while (e < n && LO(a[e])) e++;
            b2[m++] = a[p];
            b2[m++] = '_';
            for (size_t k = p + 1; k < e; k++) b2[m++] = a[k];
            p = e;
        } else {
            b2[m++] = a[p++];
        }
    }
    size_t o = 0;
    for (size_t p = 0; p < m && o + 3 < cap;) {
        if (p + 1 < m && LO(b2[p]) && UP(b2[p + 1])) {
            out[o++] = b2[p];
            out[o++] = '_';
            out[o++] = (char)(b2[p + 1] - 'A' + 'a');
            p += 2;
        } else {
            out[o++] = UP(b2[p]) ? (char)(b2[p] - 'A' + 'a') : b2[p];
            p++;
        }
    }
    out[o] = '\0';
#undef UP
#undef LO
}

static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TFX__KERAS_MAX_NAME || strchr(name, '/') || !strcmp(name, ".") || !tfx__utf8_valid(name, NULL))
        return tfx__error(TFX_EFORMAT, "layer name '%.64s' is not valid (1..%d bytes of UTF-8, no '/')", name,
                          TFX__KERAS_MAX_NAME);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return tfx__error(TFX_EFORMAT, "layer name '%.64s' contains a control character", name);
    return TFX_OK;
}

static int parse_layers(kb *b, json_t *layers, int functional)
{
    const size_t count = json_array_size(layers);
    if (count == 0) return tfx__error(TFX_EFORMAT, "the model config has no layers");
    if (count > TFX__KERAS_MAX_LAYERS)
        return tfx__error(TFX_ENOTSUP, "the model config has %zu layers (at most %d)", count, TFX__KERAS_MAX_LAYERS);
    b->L = tfx__calloc(count, sizeof *b->L);
    if (!b->L) return tfx__error(TFX_ENOMEM, "out of memory");
    b->n = count;
    for (size_t i = 0; i < b->n; i++) {
        json_t *e = json_array_get(layers, i);
        kl *l = &b->L[i];
        json_t *cn = json_object_get(e, "class_name"), *cfg = json_object_get(e, "config");
        if (!json_is_object(e) || !json_is_string(cn))
            return tfx__error(TFX_EFORMAT, "layer %zu of the model config has no 'class_name' string", i);
        l->cls = json_string_value(cn);
        if (strlen(l->cls) > 128 || !tfx__utf8_valid(l->cls, NULL))
            return tfx__error(TFX_EFORMAT, "layer %zu of the model config has an invalid class name", i);
        if (!json_is_object(cfg)) return tfx__error(TFX_EFORMAT, "layer %zu (%s) has no 'config' object", i, l->cls);
        l->cfg = cfg;
        json_t *nm = json_object_get(e, "name");
        if (!nm) nm = json_object_get(cfg, "name");
        if (!json_is_string(nm)) return tfx__error(TFX_EFORMAT, "layer %zu (%s) has no 'name' string", i, l->cls);
        l->name = json_string_value(nm);
        int rc = check_name(l->name);
        if (rc) return tfx__error_prefix("layer %zu (%s)", i, l->cls);
        if (find_layer(b, l->name) != (int)i)
            return tfx__error(TFX_EFORMAT, "two layers of the model config are named '%s'", l->name);
        /* Keras 3 names a custom class's package: "my_package>MyLayer". */
        json_t *reg = json_object_get(e, "registered_name"), *mod = json_object_get(e, "module");
        if ((json_is_string(reg) && strchr(json_string_value(reg), '>')) ||
            (json_is_string(mod) && strncmp(json_string_value(mod), "keras", 5)))
            return LAYER_ERR(TFX_ENOTSUP, l, "%s", "a custom layer (registered outside Keras) is not supported");
        l->is_input = !strcmp(l->cls, "InputLayer");
        snake_case(l->cls, l->key, 300);
        if (functional) {
            json_t *nodes = json_object_get(e, "inbound_nodes");
            if (nodes && !json_is_array(nodes)) return LAYER_ERR(TFX_EFORMAT, l, "%s", "'inbound_nodes' must be a list");
            size_t k = json_array_size(nodes);
            if (k > 1)
                return LAYER_ERR(TFX_ENOTSUP, l, "the layer is called %zu times (shared layers are not supported)", k);
            if (k == 1 && l->is_input) return LAYER_ERR(TFX_EFORMAT, l, "%s", "an InputLayer with an inbound node");
            l->node = k ? json_array_get(nodes, 0) : NULL;
        }
    }
    /* Keras 3's weights key: the class in snake case, numbered among the earlier layers of the
     * same class ("conv2d", "conv2d_1", ...); from the last layer back, so the earlier keys are
     * still the bare class names when counted. */
    for (size_t i = b->n; i-- > 0;) {
        size_t same = 0;
        for (size_t j = 0; j < i; j++) same += !strcmp(b->L[j].key, b->L[i].key);
        if (same) {
            size_t len = strlen(b->L[i].key);
            snprintf(b->L[i].key + len, sizeof b->L[i].key - len, "_%zu", same);
        }
    }
    if (functional)
        for (size_t i = 0; i < b->n; i++)
            if (b->L[i].node) {
                int rc = parse_node(b, &b->L[i]);
                if (rc) return rc;
            }
    return TFX_OK;
}

static int build_sequential(kb *b, json_t *cfg)
{
    json_t *layers = json_is_array(cfg) ? cfg : json_object_get(cfg, "layers");
    if (!json_is_array(layers)) return tfx__error(TFX_EFORMAT, "the Sequential config has no 'layers' list");
    int rc = parse_layers(b, layers, 0), hwc[3];
    if (rc) return rc;
    size_t first = 0;
    if (b->L[0].is_input) {
        if ((rc = input_shape_of(b, &b->L[0], hwc))) return rc;
        first = 1;
    } else {
        json_t *v = field(&b->L[0], "batch_input_shape");
        json_t *bis = json_is_object(cfg) ? json_object_get(cfg, "build_input_shape") : NULL;
        if (!v && bis && !json_is_null(bis)) v = bis;
        if (!v) return LAYER_ERR(TFX_ENOTSUP, &b->L[0], "%s", "the Sequential model has no input shape (never built)");
        if ((rc = parse_input_shape(b, &b->L[0], v, hwc))) return rc;
    }
    if (first == b->n) return tfx__error(TFX_EFORMAT, "the Sequential model has no layers besides its input");
    if ((rc = tfx_model_new(&b->m, hwc[0], hwc[1], hwc[2]))) return rc;
    tfx_layer *prev = NULL;
    for (size_t i = first; i < b->n; i++) {
        if (b->L[i].is_input) return LAYER_ERR(TFX_EFORMAT, &b->L[i], "%s", "an InputLayer inside a Sequential model");
        if ((rc = add_layer(b, &b->L[i], &prev, 1))) return rc;
        prev = b->L[i].made;
    }
    return TFX_OK;
}

static int build_functional(kb *b, json_t *cfg)
{
    json_t *layers = json_object_get(cfg, "layers");
    if (!json_is_array(layers)) return tfx__error(TFX_EFORMAT, "the functional model config has no 'layers' list");
    int rc = parse_layers(b, layers, 1), in_idx, out_idx, hwc[3];
    if (rc) return rc;
    if ((rc = io_layer(b, cfg, "input_layers", &in_idx)) || (rc = io_layer(b, cfg, "output_layers", &out_idx))) return rc;
    kl *inl = &b->L[in_idx];
    if (!inl->is_input) return LAYER_ERR(TFX_ENOTSUP, inl, "%s", "the model input is not an InputLayer");
    if ((rc = input_shape_of(b, inl, hwc))) return rc;
    if (out_idx == in_idx) return tfx__error(TFX_EFORMAT, "the model's output is its input: no layers");
    /* Post-order walk from the output: the layers it needs in an order where each reads only
     * earlier ones, the output last (libtfx's model output is its last layer). */
    int *order = tfx__malloc(b->n * sizeof *order), *stack = tfx__malloc(b->n * sizeof *stack);
    size_t *next = tfx__calloc(b->n, sizeof *next);
    size_t no = 0, sp = 0;
    if (!order || !stack || !next) rc = tfx__error(TFX_ENOMEM, "out of memory");
    if (!rc) {
        stack[sp++] = out_idx;
        b->L[out_idx].state = 1;
    }
    while (!rc && sp) {
        int i = stack[sp - 1];
        kl *l = &b->L[i];
        if (!l->is_input && !l->node) {
            rc = LAYER_ERR(TFX_EFORMAT, l, "%s", "the output depends on it but it has no inbound node");
            break;
        }
        if (l->is_input && i != in_idx) {
            rc = LAYER_ERR(TFX_ENOTSUP, l, "%s", "a second model input is not supported");
            break;
        }
        if (next[i] < l->n_in) {
            int j = l->in[next[i]++];
            if (b->L[j].state == 1) rc = LAYER_ERR(TFX_EFORMAT, l, "%s", "the graph has a cycle through this layer");
            else if (b->L[j].state == 0) b->L[j].state = 1, stack[sp++] = j;
        } else {
            l->state = 2;
            order[no++] = i;
            sp--;
        }
    }
    if (!rc) rc = tfx_model_new(&b->m, hwc[0], hwc[1], hwc[2]);
    tfx_layer **ins = NULL;
    for (size_t k = 0; !rc && k < no; k++) {
        kl *l = &b->L[order[k]];
        if (l->is_input) continue;
        tfx_layer **p = tfx__realloc(ins, (l->n_in ? l->n_in : 1) * sizeof *p);
        if (!p) {
            rc = tfx__error(TFX_ENOMEM, "out of memory");
            break;
        }
        ins = p;
        for (size_t j = 0; j < l->n_in; j++) ins[j] = b->L[l->in[j]].made;
        rc = add_layer(b, l, ins, l->n_in);
    }
    tfx__free(ins);
    tfx__free(order);
    tfx__free(stack);
    tfx__free(next);
    return rc;
}

int tfx__keras_build(tfx_model **out, const char *json, size_t len, const tfx__keras_weights *w, int keras_major,
                     const tfx_keras_options *o)
{
    return tfx__keras_build_capped(out, json, len, w, keras_major, o, TFX__KERAS_MAX_PARAMS);
}

int tfx__keras_build_capped(tfx_model **out, const char *json, size_t len, const tfx__keras_weights *w, int keras_major,
                            const tfx_keras_options *o, size_t max_params)
{
    *out = NULL;
    if (len > TFX__KERAS_MAX_CONFIG_BYTES)
        return tfx__error(TFX_ENOTSUP, "the model config is %zu bytes (at most %zu)", len, TFX__KERAS_MAX_CONFIG_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return tfx__error(TFX_EFORMAT, "the model config is not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column,
                          jerr.text);
    kb b = {NULL, w, keras_major, o, max_params, 0, NULL, 0};
    int rc;
    json_t *cn = json_object_get(root, "class_name"), *cfg = json_object_get(root, "config");
    if (!json_is_object(root) || !json_is_string(cn) || !(json_is_object(cfg) || json_is_array(cfg))) {
        rc = tfx__error(TFX_EFORMAT, "the model config is not {\"class_name\": ..., \"config\": {...}}");
    } else if (!strcmp(json_string_value(cn), "Sequential")) {
        rc = build_sequential(&b, cfg);
    } else if (!strcmp(json_string_value(cn), "Functional") || !strcmp(json_string_value(cn), "Model")) {
        rc = json_is_object(cfg) ? build_functional(&b, cfg)
                                 : tfx__error(TFX_EFORMAT, "the functional model's 'config' is not an object");
    } else {
        rc = tfx__error(TFX_ENOTSUP, "model class '%.64s' is not supported (Sequential and functional models only: a "
                                     "subclassed model has no config to rebuild)",
                        json_string_value(cn));
    }
    for (size_t i = 0; i < b.n; i++) tfx__free(b.L[i].in);
    tfx__free(b.L);
    json_decref(root);
    if (rc) {
        tfx_model_free(b.m);
        return rc;
    }
    *out = b.m;
    return TFX_OK;
}
