/* The models of the ONNX export tests (export_models.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_models.h"

#define TRY(x)                               \
    do {                                     \
        if ((rc = (x)) != TFX_OK) goto fail; \
    } while (0)

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}
static float uni(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)lcg(s) / 9007199254740992.0);
}

/* Random biases and BatchNormalization statistics (the initialisers leave them 0 / 1). */
static int randomize(tfx_model *m, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t nk, nb;
        if (tfx_layer_weight_sizes(l, &nk, &nb) || (nk == 0 && nb == 0)) continue;
        float *k = calloc(nk + 1, sizeof(float)), *b = calloc(nb + 1, sizeof(float));
        if (!k || !b) {
            free(k);
            free(b);
            return TFX_ENOMEM;
        }
        int rc = tfx_layer_get_weights(l, k, b);
        if (!rc) {
            if (tfx_layer_get_kind(l) == TFX_LAYER_BATCH_NORMALIZATION) {
                const size_t C = nk / 4;
                for (size_t c = 0; c < C; c++) {
                    k[c] = uni(&s, 0.5f, 1.5f);          /* gamma */
                    k[C + c] = uni(&s, -0.5f, 0.5f);     /* beta */
                    k[2 * C + c] = uni(&s, -0.5f, 0.5f); /* moving mean */
                    k[3 * C + c] = uni(&s, 0.5f, 1.5f);  /* moving variance */
                }
            }
            for (size_t j = 0; j < nb; j++) b[j] = uni(&s, -0.3f, 0.3f);
            rc = tfx_layer_set_weights(l, k, nb ? b : NULL);
        }
        free(k);
        free(b);
        if (rc) return rc;
    }
    return TFX_OK;
}

static tfx_conv2d_options conv(int filters, int k, int stride, int padding, int act, const char *name)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = stride;
    o.padding = padding;
    o.activation = act;
    o.name = name;
    return o;
}

static tfx_dense_options dense(int units, int act, const char *name)
{
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    o.units = units;
    o.activation = act;
    o.name = name;
    return o;
}

static int finish(tfx_model *m, uint64_t seed, tfx_model **out)
{
    int rc = tfx_model_set_seed(m, seed);
    if (!rc) rc = randomize(m, seed);
    if (rc) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

static int seed_at(tfx_model **out, int side)
{
    tfx_model *m = NULL;
    int rc;
    TRY(tfx_model_new(&m, side, side, 3));
    tfx_conv2d_options c = conv(32, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU, NULL);
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    c = conv(64, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU, "visualization_layer");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    c = conv(128, 3, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU, NULL);
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = dense(128, TFX_ACTIVATION_RELU, NULL);
    TRY(tfx_model_add_dense(m, &d, NULL));
    d = dense(10, TFX_ACTIVATION_SOFTMAX, NULL);
    TRY(tfx_model_add_dense(m, &d, NULL));
    return finish(m, 1, out);
fail:
    tfx_model_free(m);
    return rc;
}

int xm_seed(tfx_model **out) { return seed_at(out, 12); }
int xm_seed_full(tfx_model **out) { return seed_at(out, 32); }

int xm_graph(tfx_model **out)
{
    tfx_model *m = NULL;
    tfx_layer *x, *a, *b, *s, *cat, *g;
    int rc;
    TRY(tfx_model_new(&m, 12, 12, 3));
    tfx_conv2d_options c = conv(8, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU, "stem");
    TRY(tfx_model_add_conv2d(m, &c, &x));
    c = conv(8, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR, "branch_a");
    TRY(tfx_model_add_conv2d(m, &c, &a));
    TRY(tfx_model_set_next_input(m, x));
    c = conv(8, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, "branch_b");
    TRY(tfx_model_add_conv2d(m, &c, &b));
    tfx_layer *ab[2] = {a, b};
    TRY(tfx_model_add_add(m, ab, 2, "sum", &s));
    tfx_layer *sx[2] = {s, x};
    TRY(tfx_model_add_concatenate(m, sx, 2, "concat", &cat));
    TRY(tfx_model_add_global_average_pooling2d(m, "se_squeeze", NULL));
    tfx_dense_options d = dense(4, TFX_ACTIVATION_RELU, "se_reduce");
    TRY(tfx_model_add_dense(m, &d, NULL));
    d = dense(16, TFX_ACTIVATION_SIGMOID, "se_expand");
    TRY(tfx_model_add_dense(m, &d, &g));
    tfx_layer *cg[2] = {cat, g};
    TRY(tfx_model_add_multiply(m, cg, 2, "se_scale", NULL));
    TRY(tfx_model_add_global_average_pooling2d(m, "gap", NULL));
    d = dense(10, TFX_ACTIVATION_SOFTMAX, "logits");
    TRY(tfx_model_add_dense(m, &d, NULL));
    return finish(m, 2, out);
fail:
    tfx_model_free(m);
    return rc;
}

static int kinds(tfx_model **out, int mixing_reshape)
{
    tfx_model *m = NULL;
    tfx_layer *feat, *gate;
    int rc;
    TRY(tfx_model_new(&m, 12, 12, 4));
    /* SAME, stride 2 on 12: pads 0 above / 1 below (Keras's bottom/right rule) */
    tfx_conv2d_options c = conv(8, 3, 2, TFX_PADDING_SAME, TFX_ACTIVATION_RELU6, "conv_same_s2");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_zero_padding2d(m, 1, 2, 0, 1, "zpad", NULL)); /* 9x7 */
    c = conv(8, 3, 1, TFX_PADDING_EXPLICIT, TFX_ACTIVATION_LEAKY_RELU, "conv_groups");
    c.groups = 2;
    c.activation_alpha = 0.1f;
    c.pad_top = 1, c.pad_bottom = 0, c.pad_left = 2, c.pad_right = 1; /* 8x8 */
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.padding = TFX_PADDING_SAME;
    dw.depth_multiplier = 2;
    dw.activation = TFX_ACTIVATION_ELU;
    dw.name = "depthwise";
    TRY(tfx_model_add_depthwise_conv2d(m, &dw, NULL)); /* 8x8x16 */
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    bn.name = "bn";
    TRY(tfx_model_add_batch_normalization(m, &bn, NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 3;
    p.stride_h = p.stride_w = 2;
    p.padding = TFX_PADDING_SAME; /* 4x4, pads 0 / 1 */
    p.name = "maxpool_same";
    TRY(tfx_model_add_max_pooling2d(m, &p, NULL));
    c = conv(16, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_SWISH, "conv_swish");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    p = (tfx_pool2d_options)TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 2;
    p.stride_h = p.stride_w = 1;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_top = p.pad_left = 1;
    p.count_include_pad = 1;
    p.name = "avgpool_incl";
    TRY(tfx_model_add_average_pooling2d(m, &p, NULL)); /* 4x4 */
    p = (tfx_pool2d_options)TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 3;
    p.stride_h = p.stride_w = 1;
    p.padding = TFX_PADDING_SAME;
    p.name = "avgpool_same";
    TRY(tfx_model_add_average_pooling2d(m, &p, NULL));
    c = conv(16, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_HARD_SWISH, "conv_hswish");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_activation(m, TFX_ACTIVATION_SOFTMAX, 0.0f, "softmax_channels", NULL));
    c = conv(16, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, "conv_linear");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_clip(m, -0.8f, 0.9f, "clip", NULL));
    bn = (tfx_batch_norm_options)TFX_BATCH_NORM_OPTIONS_INIT;
    bn.center = bn.scale = 0;
    bn.epsilon = 0.01f;
    bn.name = "bn_plain";
    TRY(tfx_model_add_batch_normalization(m, &bn, &feat));
    TRY(tfx_model_add_dropout(m, 0.3f, "dropout", &feat));
    /* a 1x1xC gate: GAP -> Dense -> Reshape(1, 1, 16) */
    TRY(tfx_model_add_global_average_pooling2d(m, "gap", NULL));
    tfx_dense_options d = dense(16, TFX_ACTIVATION_SIGMOID, "gate_dense");
    TRY(tfx_model_add_dense(m, &d, NULL));
    TRY(tfx_model_add_reshape(m, 1, 1, 16, "gate_map", &gate));
    tfx_layer *fg[2] = {gate, feat};
    TRY(tfx_model_add_multiply(m, fg, 2, "gated", NULL));
    if (mixing_reshape) TRY(tfx_model_add_reshape(m, 2, 8, -1, "reshape", NULL)); /* 4x4x16 -> 2x8x16 */
    d = dense(6, TFX_ACTIVATION_TANH, "dense_on_map");
    TRY(tfx_model_add_dense(m, &d, NULL)); /* per position: 2x8x6 */
    TRY(tfx_model_add_global_max_pooling2d(m, "gmp", NULL));
    d = dense(5, TFX_ACTIVATION_LINEAR, "logits");
    TRY(tfx_model_add_dense(m, &d, NULL));
    return finish(m, 3, out);
fail:
    tfx_model_free(m);
    return rc;
}

int xm_kinds(tfx_model **out) { return kinds(out, 1); }
int xm_kinds_no_mixing_reshape(tfx_model **out) { return kinds(out, 0); }

/* Multiply layer l's kernel by f (the activations' interesting ranges: hard sigmoid's +-3, relu6's 6). */
static int scale_kernel(tfx_layer *l, float f)
{
    size_t nk, nb;
    int rc = tfx_layer_weight_sizes(l, &nk, &nb);
    float *k = calloc(nk + 1, sizeof(float)), *b = calloc(nb + 1, sizeof(float));
    if (!rc && (!k || !b)) rc = TFX_ENOMEM;
    if (!rc) rc = tfx_layer_get_weights(l, k, b);
    for (size_t i = 0; !rc && i < nk; i++) k[i] *= f;
    if (!rc) rc = tfx_layer_set_weights(l, k, nb ? b : NULL);
    free(k);
    free(b);
    return rc;
}

int xm_acts(tfx_model **out)
{
    static const int acts[] = {TFX_ACTIVATION_LINEAR, TFX_ACTIVATION_RELU,         TFX_ACTIVATION_SIGMOID,
                               TFX_ACTIVATION_TANH,   TFX_ACTIVATION_SOFTMAX,      TFX_ACTIVATION_LEAKY_RELU,
                               TFX_ACTIVATION_ELU,    TFX_ACTIVATION_SWISH,        TFX_ACTIVATION_RELU6,
                               TFX_ACTIVATION_CLIP,   TFX_ACTIVATION_HARD_SIGMOID, TFX_ACTIVATION_HARD_SWISH};
    enum { A = sizeof acts / sizeof acts[0] };
    tfx_model *m = NULL, *r = NULL;
    tfx_layer *base, *parts[2 * A + 1];
    char names[2 * A][32];
    int rc;
    TRY(tfx_model_new(&m, 5, 6, 3));
    tfx_conv2d_options c = conv(8, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_LINEAR, "base");
    TRY(tfx_model_add_conv2d(m, &c, &base));
    for (int i = 0; i < A; i++) { /* standalone: Activation layers on one map */
        snprintf(names[i], sizeof names[i], "act_%d", acts[i]);
        TRY(tfx_model_set_next_input(m, base));
        if (acts[i] == TFX_ACTIVATION_CLIP)
            TRY(tfx_model_add_clip(m, -0.5f, 0.7f, names[i], &parts[i]));
        else
            TRY(tfx_model_add_activation(m, acts[i], acts[i] == TFX_ACTIVATION_ELU ? 0.7f : 0.0f, names[i], &parts[i]));
    }
    for (int i = 0; i < A; i++) { /* fused into convolutions of the input */
        snprintf(names[A + i], sizeof names[A + i], "conv_act_%d", acts[i]);
        TRY(tfx_model_set_next_input(m, NULL));
        c = conv(4, 3, 1, TFX_PADDING_SAME, acts[i], names[A + i]);
        c.activation_alpha = acts[i] == TFX_ACTIVATION_LEAKY_RELU ? 0.15f : 0.0f;
        c.clip_min = -1.5f;
        c.clip_max = 2.5f;
        TRY(tfx_model_add_conv2d(m, &c, &parts[A + i]));
    }
    parts[2 * A] = base;
    TRY(tfx_model_add_concatenate(m, parts, 2 * A + 1, "all", NULL));
    if ((rc = finish(m, 6, &r))) return rc; /* finish freed m */
    m = r;
    TRY(scale_kernel(base, 4.0f));
    for (int i = 0; i < A; i++) TRY(scale_kernel(parts[A + i], 4.0f));
    *out = m;
    return TFX_OK;
fail:
    tfx_model_free(m);
    return rc;
}

static int flat(tfx_model **out, int mixing_reshape)
{
    tfx_model *m = NULL;
    tfx_layer *map, *fl, *d1, *d2, *d3, *sum, *cat, *g, *h;
    int rc;
    TRY(tfx_model_new(&m, 5, 4, 3));
    tfx_conv2d_options c = conv(6, 2, 1, TFX_PADDING_VALID, TFX_ACTIVATION_RELU, "conv"); /* 4x3x6 */
    TRY(tfx_model_add_conv2d(m, &c, &map));
    TRY(tfx_model_add_flatten(m, "flat_shared", &fl)); /* read by BN and Dense: NHWC order kept */
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    bn.name = "bn_flat";
    TRY(tfx_model_add_batch_normalization(m, &bn, NULL));
    tfx_dense_options d = dense(12, TFX_ACTIVATION_TANH, "d1");
    TRY(tfx_model_add_dense(m, &d, &d1));
    TRY(tfx_model_set_next_input(m, fl));
    d = dense(12, TFX_ACTIVATION_SIGMOID, "d2_nobias");
    d.use_bias = 0;
    TRY(tfx_model_add_dense(m, &d, &d2));
    TRY(tfx_model_set_next_input(m, fl));
    d = dense(12, TFX_ACTIVATION_LEAKY_RELU, "d3");
    TRY(tfx_model_add_dense(m, &d, &d3));
    tfx_layer *three[3] = {d1, d2, d3};
    TRY(tfx_model_add_add(m, three, 3, "sum3", &sum));
    tfx_layer *two[2] = {sum, d1};
    TRY(tfx_model_add_concatenate(m, two, 2, "cat_flat", &cat));
    TRY(tfx_model_add_activation(m, TFX_ACTIVATION_SOFTMAX, 0.0f, "softmax_flat", NULL));
    /* Flatten -> Dropout -> Activation -> Dense only: ONNX's C,H,W order, permuted Gemm columns */
    TRY(tfx_model_set_next_input(m, map));
    c = conv(5, 2, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, "conv2"); /* 3x2x5 */
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_flatten(m, "flat_perm", NULL));
    TRY(tfx_model_add_dropout(m, 0.5f, "drop", NULL));
    TRY(tfx_model_add_activation(m, TFX_ACTIVATION_ELU, 0.0f, "elu", NULL));
    d = dense(24, TFX_ACTIVATION_LINEAR, "d_perm");
    TRY(tfx_model_add_dense(m, &d, &h));
    tfx_layer *mix[2] = {h, tfx_model_find_layer(m, "softmax_flat")};
    TRY(tfx_model_add_multiply(m, mix, 2, "mul_flat", NULL));
    d = dense(6, TFX_ACTIVATION_SIGMOID, "gate");
    TRY(tfx_model_add_dense(m, &d, &g));
    tfx_layer *mg[2] = {map, g}; /* a flat gate of 6 beside the 4x3x6 map */
    TRY(tfx_model_add_multiply(m, mg, 2, "gated_map", NULL));
    TRY(tfx_model_add_flatten(m, NULL, NULL));
    d = dense(8, TFX_ACTIVATION_RELU, NULL);
    TRY(tfx_model_add_dense(m, &d, NULL));
    if (mixing_reshape)
        TRY(tfx_model_add_reshape(m, 2, 2, 2, "to_map", NULL));
    else
        TRY(tfx_model_add_reshape(m, 1, 1, 8, "to_map", NULL));
    c = conv(3, 1, 1, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, "conv_end");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    TRY(tfx_model_add_flatten(m, "flat_out", NULL)); /* the model's output: NHWC order */
    (void)cat;
    return finish(m, 4, out);
fail:
    tfx_model_free(m);
    return rc;
}

int xm_flat(tfx_model **out) { return flat(out, 1); }
int xm_flat_no_mixing_reshape(tfx_model **out) { return flat(out, 0); }

int xm_map_out(tfx_model **out)
{
    tfx_model *m = NULL;
    int rc;
    TRY(tfx_model_new(&m, 7, 6, 2));
    tfx_conv2d_options c = conv(4, 3, 1, TFX_PADDING_SAME, TFX_ACTIVATION_RELU, "c1");
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    TRY(tfx_model_add_batch_normalization(m, &bn, NULL));
    c = conv(3, 2, 2, TFX_PADDING_VALID, TFX_ACTIVATION_LINEAR, "c2"); /* 3x3x3 */
    TRY(tfx_model_add_conv2d(m, &c, NULL));
    return finish(m, 5, out);
fail:
    tfx_model_free(m);
    return rc;
}

float *xm_input(const tfx_model *m, size_t n, uint64_t seed, size_t *size)
{
    int s[3];
    if (tfx_model_input_shape(m, s)) return NULL;
    *size = n * (size_t)s[0] * s[1] * s[2];
    float *x = malloc(*size * sizeof(float));
    uint64_t st = seed + 17;
    for (size_t i = 0; x && i < *size; i++) x[i] = uni(&st, -1.0f, 1.0f);
    return x;
}
