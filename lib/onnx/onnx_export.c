/* ONNX export: any libtfx model as an ONNX ModelProto (opset 13, ir_version 7) taking NCHW input,
 * so it runs in any ONNX runtime and opens in Netron. The model is first described as a small
 * graph of ONNX nodes and initializers (names, attributes, converted weights), then written with
 * core/protobuf.c's encoder: a counting pass sizes the file, a second pass writes it.
 *
 * Layout (docs/onnx.md "Export"): libtfx is NHWC, ONNX NCHW. Every feature map is NCHW in the
 * file; weights are converted (HWIO -> OIHW, depthwise [kh][kw][in][mult] -> [in * mult][1][kh][kw],
 * Dense [in][out] -> Gemm B [out][in] with transB = 1). A flat tensor that comes from flattening a
 * feature map is in C,H,W order in ONNX and H,W,C order in libtfx: when every reader of it is a
 * Dense (through Dropout/Activation/Flatten), the Gemm's weight columns are permuted (PyTorch's
 * graph shape); otherwise a Transpose to NHWC before the Flatten gives libtfx's order exactly.
 *
 * The exporter maps public layer kinds (tfx_layer_get_kind) to ONNX operators, like a program
 * using the public API would: a kind it does not know is refused with TFX_ENOTSUP naming the
 * layer, never approximated. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/internal.h"
#include "core/options.h"
#include "core/protobuf.h"
#include "model/model_internal.h"
#include "tfx/onnx.h"
#include "tfx/version.h"

TFX__OPTIONS_DESC_V1(export_options, tfx_onnx_options, TFX_ONNX_OPTIONS_VERSION, TFX_ONNX_OPTIONS_INIT);

#define FN "tfx_model_save_onnx"

/* ONNX enums (onnx.proto). */
enum { T_FLOAT = 1, T_INT64 = 7 };                         /* TensorProto.DataType */
enum { A_FLOAT = 1, A_INT = 2, A_STRING = 3, A_INTS = 7 }; /* AttributeProto.AttributeType */
enum { IR_VERSION = 7, OPSET = 13 };

/* How a libtfx tensor is held in the ONNX graph. */
enum {
    F_MAP,  /* feature map (h, w, c): ONNX [N, c, h, w] */
    F_FLAT, /* flat (c): ONNX [N, c], libtfx's order */
    F_PERM  /* flat, flattened from a (h, w, c) map in ONNX's C,H,W order: only Dense reads it */
};

typedef struct ex_attr {
    const char *name;
    int type;
    float f;
    int64_t i;
    const char *s;
    int64_t ints[8];
    size_t n_ints;
} ex_attr;

typedef struct ex_node {
    const char *op, *name, *out;
    const char **in;
    size_t n_in;
    ex_attr at[6];
    size_t n_at;
} ex_node;

typedef struct ex_init {
    const char *name;
    int dtype;
    int64_t dims[4];
    int rank;
    float *f; /* owned */
    int64_t i64[8];
    size_t n;
} ex_init;

typedef struct ex_tensor {
    const char *name;
    int form;
    tfx__shape shape; /* libtfx's shape; F_PERM: the (h, w, c) of the flattened map */
} ex_tensor;

typedef struct ex {
    const tfx_model *m;
    char **strs; /* every string made here (owned), also the name registry */
    size_t n_strs, cap_strs;
    ex_node *nodes;
    size_t n_nodes, cap_nodes;
    ex_init *inits;
    size_t n_inits, cap_inits;
    ex_tensor *t; /* L + 1 tensors: 0 the model input, k + 1 layer k's output */
    unsigned char *perm_ok;
} ex;

/* ---- building the graph ---- */

/* Array p of *cap elements grown to hold at least need: the (maybe moved) array, or NULL when
 * out of memory (p is then kept). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    char *q = tfx__realloc(p, nc * elem);
    if (!q) return NULL;
    memset(q + *cap * elem, 0, (nc - *cap) * elem);
    *cap = nc;
    return q;
}

static int name_used(const ex *e, const char *s)
{
    for (size_t i = 0; i < e->n_strs; i++)
        if (e->strs[i] && strcmp(e->strs[i], s) == 0) return 1;
    return 0;
}

/* Keep s (owned) in the registry; NULL (s freed) when out of memory. */
static char *keep(ex *e, char *s)
{
    char **strs = s ? grow(e->strs, &e->cap_strs, e->n_strs + 1, sizeof(char *)) : NULL;
    if (!strs) {
        tfx__free(s);
        return NULL;
    }
    e->strs = strs;
    e->strs[e->n_strs++] = s;
    return s;
}

/* A name no tensor, node or initializer of the graph has yet: base, else base_1, base_2, ... */
static const char *unique(ex *e, const char *base)
{
    size_t len = strlen(base);
    char *s = tfx__malloc(len + 24);
    if (!s) return NULL;
    memcpy(s, base, len + 1);
    for (unsigned k = 1; name_used(e, s); k++) snprintf(s + len, 24, "_%u", k);
    return keep(e, s);
}

static const char *uniquef(ex *e, const char *fmt, ...) TFX__PRINTF(2, 3);
static const char *uniquef(ex *e, const char *fmt, ...)
{
    char buf[TFX__NAME_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return unique(e, buf);
}

static int oom(void) { return tfx__error(TFX_ENOMEM, FN ": out of memory building the graph"); }

/* A node reading n_in tensors; NULL when out of memory. */
static ex_node *node(ex *e, const char *op, const char *name, const char *out, const char *const *in, size_t n_in)
{
    ex_node *nodes = name && out ? grow(e->nodes, &e->cap_nodes, e->n_nodes + 1, sizeof(ex_node)) : NULL;
    if (!nodes) return NULL;
    e->nodes = nodes;
    const char **ins = tfx__malloc(n_in * sizeof(char *));
    if (!ins) return NULL;
    for (size_t i = 0; i < n_in; i++) {
        if (!in[i]) {
            tfx__free(ins);
            return NULL;
        }
        ins[i] = in[i];
    }
    ex_node *nd = &e->nodes[e->n_nodes++];
    *nd = (ex_node){.op = op, .name = name, .out = out, .in = ins, .n_in = n_in};
    return nd;
}

static void attr_int(ex_node *n, const char *name, int64_t v)
{
    n->at[n->n_at++] = (ex_attr){.name = name, .type = A_INT, .i = v};
}
static void attr_float(ex_node *n, const char *name, float v)
{
    n->at[n->n_at++] = (ex_attr){.name = name, .type = A_FLOAT, .f = v};
}
static void attr_string(ex_node *n, const char *name, const char *v)
{
    n->at[n->n_at++] = (ex_attr){.name = name, .type = A_STRING, .s = v};
}
static void attr_ints(ex_node *n, const char *name, const int64_t *v, size_t k)
{
    ex_attr *a = &n->at[n->n_at++];
    *a = (ex_attr){.name = name, .type = A_INTS, .n_ints = k};
    memcpy(a->ints, v, k * sizeof(int64_t));
}

/* A float initializer owning data (freed here on failure); its name, NULL when out of memory. */
static const char *init_floats(ex *e, const char *name, float *data, const int64_t *dims, int rank)
{
    ex_init *inits = name && data ? grow(e->inits, &e->cap_inits, e->n_inits + 1, sizeof(ex_init)) : NULL;
    if (!inits) {
        tfx__free(data);
        return NULL;
    }
    e->inits = inits;
    ex_init *in = &e->inits[e->n_inits++];
    *in = (ex_init){.name = name, .dtype = T_FLOAT, .rank = rank, .f = data, .n = 1};
    for (int i = 0; i < rank; i++) {
        in->dims[i] = dims[i];
        in->n *= (size_t)dims[i];
    }
    return name;
}

/* A scalar float initializer (Clip's bounds). */
static const char *init_scalar(ex *e, const char *name, float v)
{
    float *d = tfx__malloc(sizeof(float));
    if (d) *d = v;
    return init_floats(e, name, d, NULL, 0);
}

/* A 1-D int64 initializer of k <= 8 values (shapes, pads). */
static const char *init_int64s(ex *e, const char *name, const int64_t *v, size_t k)
{
    ex_init *inits = name ? grow(e->inits, &e->cap_inits, e->n_inits + 1, sizeof(ex_init)) : NULL;
    if (!inits) return NULL;
    e->inits = inits;
    ex_init *in = &e->inits[e->n_inits++];
    *in = (ex_init){.name = name, .dtype = T_INT64, .rank = 1, .n = k};
    in->dims[0] = (int64_t)k;
    memcpy(in->i64, v, k * sizeof(int64_t));
    return name;
}

/* Layer l's node: the last of its nodes (last != 0) carries the layer's name and writes the
 * layer's output tensor; the others are "<layer>/<op>" with a tensor of the same name. */
static ex_node *layer_node(ex *e, const tfx_layer *l, const char *op, const char *const *in, size_t n_in, int last)
{
    if (last) return node(e, op, l->name, e->t[l->index + 1].name, in, n_in);
    const char *nm = uniquef(e, "%s/%s", l->name, op);
    return node(e, op, nm, nm, in, n_in);
}

/* The activation act (alpha, beta: cfg's) applied to tensor x as layer l's last node(s). */
static int activation_nodes(ex *e, const tfx_layer *l, int act, float alpha, float beta, const char *x)
{
    ex_node *n = NULL, *s;
    const char *in2[2];
    switch (act) {
    case TFX_ACTIVATION_LINEAR: n = layer_node(e, l, "Identity", &x, 1, 1); break;
    case TFX_ACTIVATION_RELU: n = layer_node(e, l, "Relu", &x, 1, 1); break;
    case TFX_ACTIVATION_SIGMOID: n = layer_node(e, l, "Sigmoid", &x, 1, 1); break;
    case TFX_ACTIVATION_TANH: n = layer_node(e, l, "Tanh", &x, 1, 1); break;
    case TFX_ACTIVATION_SOFTMAX: /* libtfx: over the channels; NCHW's and [N, C]'s axis 1 */
        if ((n = layer_node(e, l, "Softmax", &x, 1, 1))) attr_int(n, "axis", 1);
        break;
    case TFX_ACTIVATION_LEAKY_RELU:
        if ((n = layer_node(e, l, "LeakyRelu", &x, 1, 1))) attr_float(n, "alpha", alpha);
        break;
    case TFX_ACTIVATION_ELU:
        if ((n = layer_node(e, l, "Elu", &x, 1, 1))) attr_float(n, "alpha", alpha);
        break;
    case TFX_ACTIVATION_SWISH: /* x * sigmoid(x) */
        if (!(s = layer_node(e, l, "Sigmoid", &x, 1, 0))) break;
        in2[0] = x;
        in2[1] = s->out;
        n = layer_node(e, l, "Mul", in2, 2, 1);
        break;
    case TFX_ACTIVATION_RELU6:
    case TFX_ACTIVATION_CLIP: { /* opset 11+: the bounds are inputs */
        float lo = act == TFX_ACTIVATION_CLIP ? alpha : 0.0f, hi = act == TFX_ACTIVATION_CLIP ? beta : 6.0f;
        const char *in3[3] = {x, init_scalar(e, uniquef(e, "%s/clip_min", l->name), lo),
                              init_scalar(e, uniquef(e, "%s/clip_max", l->name), hi)};
        if (in3[1] && in3[2]) n = layer_node(e, l, "Clip", in3, 3, 1);
        break;
    }
    case TFX_ACTIVATION_HARD_SIGMOID: /* relu6(x + 3) / 6 = max(0, min(1, x / 6 + 0.5)) */
        if ((n = layer_node(e, l, "HardSigmoid", &x, 1, 1))) {
            attr_float(n, "alpha", 1.0f / 6.0f);
            attr_float(n, "beta", 0.5f);
        }
        break;
    case TFX_ACTIVATION_HARD_SWISH: /* HardSwish is opset 14: x * HardSigmoid(x) */
        if (!(s = layer_node(e, l, "HardSigmoid", &x, 1, 0))) break;
        attr_float(s, "alpha", 1.0f / 6.0f);
        attr_float(s, "beta", 0.5f);
        in2[0] = x;
        in2[1] = s->out;
        n = layer_node(e, l, "Mul", in2, 2, 1);
        break;
    default:
        return tfx__error(TFX_ENOTSUP, FN ": layer '%s' (%s): activation %d has no ONNX form", l->name,
                          tfx_layer_type_name(l), act);
    }
    return n ? TFX_OK : oom();
}

/* After layer l's main node n (its last node unless an activation is fused): the activation's
 * nodes. */
static int finish_fused(ex *e, const tfx_layer *l, ex_node *n)
{
    if (!n) return oom();
    if (l->cfg.activation == TFX_ACTIVATION_LINEAR) return TFX_OK;
    return activation_nodes(e, l, l->cfg.activation, l->cfg.alpha, l->cfg.beta, n->out);
}

/* The layer's Keras-layout weights (kernel, bias: NULL when absent), owned by the caller. */
static int keras_weights(const tfx_layer *l, float **kernel, float **bias, size_t *nk, size_t *nb)
{
    *kernel = *bias = NULL;
    int rc = tfx_layer_weight_sizes(l, nk, nb);
    if (rc) return rc;
    *kernel = *nk ? tfx__malloc(*nk * sizeof(float)) : NULL;
    *bias = *nb ? tfx__malloc(*nb * sizeof(float)) : NULL;
    if ((*nk && !*kernel) || (*nb && !*bias)) {
        tfx__free(*kernel);
        tfx__free(*bias);
        *kernel = *bias = NULL;
        return oom();
    }
    if ((rc = tfx_layer_get_weights(l, *kernel, *bias))) {
        tfx__free(*kernel);
        tfx__free(*bias);
        *kernel = *bias = NULL;
    }
    return rc;
}

static void pads_and_strides(ex_node *n, const tfx__layer_config *c)
{
    const int64_t k[2] = {c->kernel_h, c->kernel_w}, s[2] = {c->stride_h, c->stride_w};
    /* SAME's pads were resolved by infer (extra row/column bottom/right, as Keras) */
    const int64_t p[4] = {c->pad_top, c->pad_left, c->pad_bottom, c->pad_right};
    attr_ints(n, "kernel_shape", k, 2);
    attr_ints(n, "strides", s, 2);
    attr_ints(n, "pads", p, 4);
}

/* Conv2D (groups), DepthwiseConv2D (group = in channels) and a Dense on a feature map (a 1x1
 * convolution per position). */
static int conv_nodes(ex *e, const tfx_layer *l, const char *x, int kind)
{
    float *k, *b;
    size_t nk, nb;
    int rc = keras_weights(l, &k, &b, &nk, &nb);
    if (rc) return rc;
    const tfx__layer_config *c = &l->cfg;
    const int dense = kind == TFX_LAYER_DENSE;
    const size_t KH = dense ? 1 : (size_t)c->kernel_h, KW = dense ? 1 : (size_t)c->kernel_w;
    size_t G = 1; /* ONNX's group */
    if (kind == TFX_LAYER_CONV2D && c->groups > 1) G = (size_t)c->groups;
    if (kind == TFX_LAYER_DEPTHWISE_CONV2D) G = (size_t)l->in.c;
    const size_t O = (size_t)l->out.c;
    const size_t I = (size_t)l->in.c / G; /* input channels per output channel */
    float *w = tfx__malloc(O * I * KH * KW * sizeof(float));
    if (!w) {
        tfx__free(k);
        tfx__free(b);
        return oom();
    }
    for (size_t o = 0; o < O; o++)
        for (size_t i = 0; i < I; i++)
            for (size_t y = 0; y < KH; y++)
                for (size_t xx = 0; xx < KW; xx++) {
                    size_t src;
                    if (kind == TFX_LAYER_DEPTHWISE_CONV2D) { /* [kh][kw][in][mult], o = ch * mult + m */
                        const size_t M = (size_t)c->depth_multiplier, ch = o / M, mm = o % M;
                        src = ((y * KW + xx) * (size_t)l->in.c + ch) * M + mm;
                    } else { /* [kh][kw][in / groups][out] */
                        src = ((y * KW + xx) * I + i) * O + o;
                    }
                    w[((o * I + i) * KH + y) * KW + xx] = k[src];
                }
    tfx__free(k);
    const int64_t wd[4] = {(int64_t)O, (int64_t)I, (int64_t)KH, (int64_t)KW};
    const char *in[3] = {x, init_floats(e, uniquef(e, "%s.weight", l->name), w, wd, 4), NULL};
    size_t n_in = 2;
    if (b) {
        const int64_t bd[1] = {(int64_t)O};
        in[2] = init_floats(e, uniquef(e, "%s.bias", l->name), b, bd, 1);
        n_in = 3;
    }
    if (!in[1] || (n_in == 3 && !in[2])) return oom();
    ex_node *n = layer_node(e, l, "Conv", in, n_in, c->activation == TFX_ACTIVATION_LINEAR);
    if (!n) return oom();
    if (dense) {
        const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
        attr_ints(n, "kernel_shape", one, 2);
        attr_ints(n, "strides", one, 2);
        attr_ints(n, "pads", zero, 4);
    } else {
        pads_and_strides(n, c);
    }
    const int64_t dil[2] = {1, 1};
    attr_ints(n, "dilations", dil, 2);
    attr_int(n, "group", (int64_t)G);
    return finish_fused(e, l, n);
}

/* Dense on a flat tensor: Gemm(x, B [units][in], bias) with transB = 1. An F_PERM input (a
 * flattened (h, w, c) map in C,H,W order) gets its columns permuted so the product is libtfx's. */
static int gemm_nodes(ex *e, const tfx_layer *l, const ex_tensor *xt)
{
    float *k, *b;
    size_t nk, nb;
    int rc = keras_weights(l, &k, &b, &nk, &nb);
    if (rc) return rc;
    const size_t U = (size_t)l->out.c, IN = (size_t)l->in.c;
    float *w = tfx__malloc(U * IN * sizeof(float));
    if (!w) {
        tfx__free(k);
        tfx__free(b);
        return oom();
    }
    if (xt->form == F_PERM) {
        const size_t H = (size_t)xt->shape.h, W = (size_t)xt->shape.w, C = (size_t)xt->shape.c;
        for (size_t ch = 0; ch < C; ch++)
            for (size_t p = 0; p < H * W; p++) {
                const size_t col = ch * H * W + p, src = p * C + ch; /* ONNX's C,H,W index; libtfx's H,W,C */
                for (size_t u = 0; u < U; u++) w[u * IN + col] = k[src * U + u];
            }
    } else {
        for (size_t i = 0; i < IN; i++)
            for (size_t u = 0; u < U; u++) w[u * IN + i] = k[i * U + u];
    }
    tfx__free(k);
    const int64_t wd[2] = {(int64_t)U, (int64_t)IN};
    const char *in[3] = {xt->name, init_floats(e, uniquef(e, "%s.weight", l->name), w, wd, 2), NULL};
    size_t n_in = 2;
    if (b) {
        const int64_t bd[1] = {(int64_t)U};
        in[2] = init_floats(e, uniquef(e, "%s.bias", l->name), b, bd, 1);
        n_in = 3;
    }
    if (!in[1] || (n_in == 3 && !in[2])) return oom();
    ex_node *n = layer_node(e, l, "Gemm", in, n_in, l->cfg.activation == TFX_ACTIVATION_LINEAR);
    if (!n) return oom();
    attr_int(n, "transB", 1);
    return finish_fused(e, l, n);
}

static int pool_nodes(ex *e, const tfx_layer *l, const char *x, int avg)
{
    ex_node *n = layer_node(e, l, avg ? "AveragePool" : "MaxPool", &x, 1, 1);
    if (!n) return oom();
    pads_and_strides(n, &l->cfg);
    if (avg) attr_int(n, "count_include_pad", l->cfg.count_include_pad ? 1 : 0);
    return TFX_OK;
}

/* Global pooling: libtfx's output is flat (None, C): the ONNX pool, then Flatten. */
static int global_pool_nodes(ex *e, const tfx_layer *l, const char *x, const char *op)
{
    ex_node *p = layer_node(e, l, op, &x, 1, 0);
    if (!p) return oom();
    ex_node *n = layer_node(e, l, "Flatten", &p->out, 1, 1);
    if (!n) return oom();
    attr_int(n, "axis", 1);
    return TFX_OK;
}

static int transpose(ex *e, const tfx_layer *l, const char *x, int to_nhwc, int last, const char **out)
{
    static const int64_t nhwc[4] = {0, 2, 3, 1}, nchw[4] = {0, 3, 1, 2};
    ex_node *n = layer_node(e, l, "Transpose", &x, 1, last);
    if (!n) return oom();
    attr_ints(n, "perm", to_nhwc ? nhwc : nchw, 4);
    *out = n->out;
    return TFX_OK;
}

/* Flatten: libtfx flattens in H,W,C order. A map with one position or one channel reads the same
 * both ways; otherwise F_PERM when only Dense layers read the result (their Gemm columns are
 * permuted), else a Transpose to NHWC first. */
static int flatten_nodes(ex *e, const tfx_layer *l, const ex_tensor *xt, ex_tensor *yt)
{
    const char *x = xt->name;
    yt->form = xt->form == F_PERM ? F_PERM : F_FLAT;
    if (xt->form == F_PERM) yt->shape = xt->shape;
    if (xt->form == F_MAP && xt->shape.h * xt->shape.w > 1 && xt->shape.c > 1) {
        if (e->perm_ok[l->index + 1]) {
            yt->form = F_PERM;
            yt->shape = xt->shape;
        } else {
            int rc = transpose(e, l, x, 1, 0, &x);
            if (rc) return rc;
        }
    }
    ex_node *n = layer_node(e, l, "Flatten", &x, 1, 1);
    if (!n) return oom();
    attr_int(n, "axis", 1);
    return TFX_OK;
}

/* Reshape: the same values in NHWC order under another (h, w, c): to NHWC (unless the input has
 * one position or is flat), Reshape to [N, h, w, c], back to NCHW (unless one position). */
static int reshape_nodes(ex *e, const tfx_layer *l, const ex_tensor *xt)
{
    const char *x = xt->name;
    int rc;
    if (xt->form == F_MAP && xt->shape.h * xt->shape.w > 1 && (rc = transpose(e, l, x, 1, 0, &x))) return rc;
    const tfx__shape o = l->out;
    const int one = o.h * o.w == 1;
    const int64_t shape1[4] = {0, o.c, 1, 1}, shape4[4] = {0, o.h, o.w, o.c}; /* 0: keep the batch */
    const char *in[2] = {x, init_int64s(e, uniquef(e, "%s/shape", l->name), one ? shape1 : shape4, 4)};
    if (!in[1]) return oom();
    ex_node *n = layer_node(e, l, "Reshape", in, 2, one);
    if (!n) return oom();
    if (one) return TFX_OK;
    const char *y;
    return transpose(e, l, n->out, 0, 1, &y);
}

static int batch_norm_nodes(ex *e, const tfx_layer *l, const char *x)
{
    float *k, *b;
    size_t nk, nb;
    int rc = keras_weights(l, &k, &b, &nk, &nb); /* gamma (1 without scale), beta (0 without center), mean, var */
    if (rc) return rc;
    tfx__free(b);
    const size_t C = (size_t)l->in.c;
    static const char *const what[4] = {"scale", "bias", "mean", "var"};
    const char *in[5] = {x};
    const int64_t d[1] = {(int64_t)C};
    for (int j = 0; j < 4; j++) {
        float *v = tfx__malloc(C * sizeof(float));
        if (v) memcpy(v, k + j * C, C * sizeof(float));
        if (!(in[j + 1] = init_floats(e, uniquef(e, "%s.%s", l->name, what[j]), v, d, 1))) {
            tfx__free(k);
            return oom();
        }
    }
    tfx__free(k);
    ex_node *n = layer_node(e, l, "BatchNormalization", in, 5, 1);
    if (!n) return oom();
    attr_float(n, "epsilon", l->cfg.epsilon);
    return TFX_OK;
}

static int zero_padding_nodes(ex *e, const tfx_layer *l, const char *x)
{
    const tfx__layer_config *c = &l->cfg;
    const int64_t pads[8] = {0, 0, c->pad_top, c->pad_left, 0, 0, c->pad_bottom, c->pad_right};
    const char *in[2] = {x, init_int64s(e, uniquef(e, "%s/pads", l->name), pads, 8)};
    if (!in[1]) return oom();
    ex_node *n = layer_node(e, l, "Pad", in, 2, 1);
    if (!n) return oom();
    attr_string(n, "mode", "constant");
    return TFX_OK;
}

/* Add (Sum for more than two), Concatenate (axis 1: NCHW's channels, a flat tensor's units) and
 * Multiply (a flat C gate beside feature maps is reshaped to [N, C, 1, 1] to broadcast). */
static int merge_nodes(ex *e, const tfx_layer *l, int kind)
{
    const size_t k = l->n_inputs;
    const char **in = tfx__malloc(k * sizeof(char *));
    if (!in) return oom();
    for (size_t j = 0; j < k; j++) in[j] = e->t[l->inputs[j]].name;
    int rc = TFX_OK;
    ex_node *n;
    if (kind == TFX_LAYER_ADD) {
        n = layer_node(e, l, k == 2 ? "Add" : "Sum", in, k, 1);
        if (!n) rc = oom();
    } else if (kind == TFX_LAYER_CONCATENATE) {
        n = layer_node(e, l, "Concat", in, k, 1);
        if (n)
            attr_int(n, "axis", 1);
        else
            rc = oom();
    } else {
        for (size_t j = 0; j < k && !rc; j++) {
            const ex_tensor *t = &e->t[l->inputs[j]];
            if (t->form == F_MAP || l->out.flat) continue;
            const int64_t s[4] = {0, t->shape.c, 1, 1};
            const char *r[2] = {in[j], init_int64s(e, uniquef(e, "%s/gate_shape", l->name), s, 4)};
            if (!r[1] || !(n = layer_node(e, l, "Reshape", r, 2, 0)))
                rc = oom();
            else
                in[j] = n->out;
        }
        const char *acc = in[0];
        for (size_t j = 1; j < k && !rc; j++) { /* libtfx multiplies in input order */
            const char *p[2] = {acc, in[j]};
            if (!(n = layer_node(e, l, "Mul", p, 2, j == k - 1)))
                rc = oom();
            else
                acc = n->out;
        }
    }
    tfx__free(in);
    return rc;
}

/* One layer's nodes; sets its output tensor's form. */
static int layer_nodes(ex *e, const tfx_layer *l)
{
    const int kind = tfx_layer_get_kind(l);
    const ex_tensor *xt = &e->t[l->inputs[0]];
    ex_tensor *yt = &e->t[l->index + 1];
    yt->shape = l->out;
    yt->form = l->out.flat ? F_FLAT : F_MAP;
    const char *x = xt->name;
    switch (kind) {
    case TFX_LAYER_CONV2D:
    case TFX_LAYER_DEPTHWISE_CONV2D: return conv_nodes(e, l, x, kind);
    case TFX_LAYER_DENSE: return xt->form == F_MAP ? conv_nodes(e, l, x, kind) : gemm_nodes(e, l, xt);
    case TFX_LAYER_FLATTEN: return flatten_nodes(e, l, xt, yt);
    case TFX_LAYER_MAX_POOLING2D: return pool_nodes(e, l, x, 0);
    case TFX_LAYER_AVERAGE_POOLING2D: return pool_nodes(e, l, x, 1);
    case TFX_LAYER_GLOBAL_AVERAGE_POOLING2D: return global_pool_nodes(e, l, x, "GlobalAveragePool");
    case TFX_LAYER_GLOBAL_MAX_POOLING2D: return global_pool_nodes(e, l, x, "GlobalMaxPool");
    case TFX_LAYER_DROPOUT: /* the identity at inference; kept as a node so its name stays */
    case TFX_LAYER_ACTIVATION:
        if (xt->form == F_PERM) { /* element-wise (softmax over all units): the order carries through */
            yt->form = F_PERM;
            yt->shape = xt->shape;
        }
        if (kind == TFX_LAYER_DROPOUT) return layer_node(e, l, "Identity", &x, 1, 1) ? TFX_OK : oom();
        return activation_nodes(e, l, l->cfg.activation, l->cfg.alpha, l->cfg.beta, x);
    case TFX_LAYER_BATCH_NORMALIZATION: return batch_norm_nodes(e, l, x);
    case TFX_LAYER_ZERO_PADDING2D: return zero_padding_nodes(e, l, x);
    case TFX_LAYER_RESHAPE: return reshape_nodes(e, l, xt);
    case TFX_LAYER_ADD:
    case TFX_LAYER_CONCATENATE:
    case TFX_LAYER_MULTIPLY: return merge_nodes(e, l, kind);
    default:
        return tfx__error(TFX_ENOTSUP, FN ": layer '%s' (%s, kind %d) has no ONNX export", l->name,
                          tfx_layer_type_name(l), kind);
    }
}

/* perm_ok[t]: tensor t may stay in ONNX's C,H,W order (F_PERM): it is not the output and every
 * reader is a Dense, or a Dropout / Activation / Flatten whose own output may. */
static void find_perm_ok(ex *e)
{
    const tfx_model *m = e->m;
    const size_t L = m->n_layers;
    for (size_t t = L + 1; t-- > 1;) {
        int ok = t != L;
        for (size_t j = t; j < L && ok; j++) { /* readers of t come after its producer */
            const tfx_layer *r = m->layers[j];
            for (size_t q = 0; q < r->n_inputs && ok; q++) {
                if ((size_t)r->inputs[q] != t) continue;
                const int kind = tfx_layer_get_kind(r);
                if (kind == TFX_LAYER_DENSE) continue;
                if (kind == TFX_LAYER_DROPOUT || kind == TFX_LAYER_ACTIVATION || kind == TFX_LAYER_FLATTEN)
                    ok = e->perm_ok[j + 1];
                else
                    ok = 0;
            }
        }
        e->perm_ok[t] = (unsigned char)ok;
    }
}

static int check_model(const tfx_model *m)
{
    const size_t L = m->n_layers;
    if (L == 0) return tfx__error(TFX_ESTATE, FN ": the model has no layers");
    unsigned char *reach = tfx__calloc(L, 1);
    if (!reach) return oom();
    reach[L - 1] = 1;
    for (size_t i = L; i-- > 0;)
        if (reach[i])
            for (size_t j = 0; j < m->layers[i]->n_inputs; j++)
                if (m->layers[i]->inputs[j] > 0) reach[m->layers[i]->inputs[j] - 1] = 1;
    int rc = TFX_OK;
    for (size_t i = 0; i < L && !rc; i++)
        if (!reach[i])
            rc = tfx__error(TFX_ESTATE, FN ": layer '%s' (%s) does not lead to the model's output, layer '%s'",
                            m->layers[i]->name, tfx_layer_type_name(m->layers[i]), m->layers[L - 1]->name);
    tfx__free(reach);
    return rc;
}

static int build(ex *e)
{
    const tfx_model *m = e->m;
    const size_t L = m->n_layers;
    e->t = tfx__calloc(L + 1, sizeof(ex_tensor));
    e->perm_ok = tfx__calloc(L + 1, 1);
    if (!e->t || !e->perm_ok) return oom();
    /* Reserve the graph's names first: input, output, the layers' (tensor and last node). */
    if (!(e->t[0].name = unique(e, "input")) || !unique(e, "output")) return oom();
    e->t[0].form = F_MAP;
    e->t[0].shape = m->input;
    for (size_t i = 0; i < L; i++) {
        const tfx_layer *l = m->layers[i];
        size_t bad;
        if (!tfx__utf8_valid(l->name, &bad)) /* protobuf strings are UTF-8 */
            return tfx__error(TFX_ENOTSUP,
                              FN ": layer %zu: its name is not valid UTF-8 (byte %zu), as ONNX names must be", i, bad);
        /* the last layer writes "output"; a layer named "input" or "output" gets a suffixed tensor */
        e->t[i + 1].name = i + 1 == L ? "output" : unique(e, l->name);
        if (!e->t[i + 1].name) return oom();
    }
    find_perm_ok(e);
    for (size_t i = 0; i < L; i++) {
        int rc = layer_nodes(e, m->layers[i]);
        if (rc) return rc;
    }
    return TFX_OK;
}

static void ex_free(ex *e)
{
    for (size_t i = 0; i < e->n_strs; i++) tfx__free(e->strs[i]);
    tfx__free(e->strs);
    for (size_t i = 0; i < e->n_nodes; i++) tfx__free((void *)e->nodes[i].in);
    tfx__free(e->nodes);
    for (size_t i = 0; i < e->n_inits; i++) tfx__free(e->inits[i].f);
    tfx__free(e->inits);
    tfx__free(e->t);
    tfx__free(e->perm_ok);
}

/* ---- writing (onnx.proto field numbers) ---- */

typedef void (*enc_fn)(tfx__pb *b, const void *arg);

/* A nested message: its length, then its bytes (counted once when only counting). */
static void nested(tfx__pb *b, unsigned field, enc_fn enc, const void *arg)
{
    tfx__pb c = {NULL, 0};
    enc(&c, arg);
    tfx__pb_len_prefix(b, field, c.n);
    if (b->p)
        enc(b, arg);
    else
        b->n += c.n;
}

static void str(tfx__pb *b, unsigned field, const char *s) { tfx__pb_bytes(b, field, s, strlen(s)); }

static void enc_attr(tfx__pb *b, const void *arg)
{
    const ex_attr *a = arg;
    str(b, 1, a->name);
    switch (a->type) {
    case A_FLOAT: tfx__pb_float(b, 2, a->f); break;
    case A_INT: tfx__pb_int64(b, 3, a->i); break;
    case A_STRING: str(b, 4, a->s); break;
    case A_INTS:
        for (size_t i = 0; i < a->n_ints; i++) tfx__pb_int64(b, 8, a->ints[i]); /* proto2: unpacked */
        break;
    }
    tfx__pb_int64(b, 20, a->type);
}

static void enc_node(tfx__pb *b, const void *arg)
{
    const ex_node *n = arg;
    for (size_t i = 0; i < n->n_in; i++) str(b, 1, n->in[i]);
    str(b, 2, n->out);
    str(b, 3, n->name);
    str(b, 4, n->op);
    for (size_t i = 0; i < n->n_at; i++) nested(b, 5, enc_attr, &n->at[i]);
}

/* raw_data: little-endian whatever the host's order. */
static void raw_floats(tfx__pb *b, const float *f, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    tfx__pb_raw(b, f, 4 * n); /* already the file's order */
#else
    if (!b->p) {
        b->n += 4 * n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        tfx__pb_fixed32(b, u);
    }
#endif
}

static void enc_tensor(tfx__pb *b, const void *arg)
{
    const ex_init *t = arg;
    for (int i = 0; i < t->rank; i++) tfx__pb_int64(b, 1, t->dims[i]);
    tfx__pb_int64(b, 2, t->dtype);
    str(b, 8, t->name);
    if (t->dtype == T_FLOAT) {
        tfx__pb_len_prefix(b, 9, 4 * t->n);
        raw_floats(b, t->f, t->n);
    } else {
        tfx__pb_len_prefix(b, 9, 8 * t->n);
        for (size_t i = 0; i < t->n; i++) tfx__pb_fixed64(b, (uint64_t)t->i64[i]);
    }
}

/* A ValueInfoProto: name and float tensor type of the tensor's ONNX shape, batch "N". */
typedef struct value_info {
    const char *name;
    int rank;
    int64_t dims[4]; /* dims[0] unused: the symbolic batch */
} value_info;

static void enc_dim(tfx__pb *b, const void *arg)
{
    const int64_t *d = arg;
    if (*d < 0)
        str(b, 2, "N");
    else
        tfx__pb_int64(b, 1, *d);
}

static void enc_shape(tfx__pb *b, const void *arg)
{
    const value_info *v = arg;
    const int64_t batch = -1;
    nested(b, 1, enc_dim, &batch);
    for (int i = 1; i < v->rank; i++) nested(b, 1, enc_dim, &v->dims[i]);
}

static void enc_tensor_type(tfx__pb *b, const void *arg)
{
    tfx__pb_int64(b, 1, T_FLOAT);
    nested(b, 2, enc_shape, arg);
}

static void enc_type(tfx__pb *b, const void *arg) { nested(b, 1, enc_tensor_type, arg); }

static void enc_value_info(tfx__pb *b, const void *arg)
{
    const value_info *v = arg;
    str(b, 1, v->name);
    nested(b, 2, enc_type, v);
}

static value_info info_of(const ex_tensor *t)
{
    value_info v = {t->name, 2, {0, 0, 0, 0}};
    if (t->form == F_MAP) {
        v.rank = 4;
        v.dims[1] = t->shape.c;
        v.dims[2] = t->shape.h;
        v.dims[3] = t->shape.w;
    } else {
        v.dims[1] = t->form == F_PERM ? (int64_t)t->shape.h * t->shape.w * t->shape.c : t->shape.c;
    }
    return v;
}

static void enc_graph(tfx__pb *b, const void *arg)
{
    const ex *e = arg;
    const size_t L = e->m->n_layers;
    for (size_t i = 0; i < e->n_nodes; i++) nested(b, 1, enc_node, &e->nodes[i]);
    str(b, 2, "libtfx");
    for (size_t i = 0; i < e->n_inits; i++) nested(b, 5, enc_tensor, &e->inits[i]);
    value_info in = info_of(&e->t[0]), out = info_of(&e->t[L]);
    nested(b, 11, enc_value_info, &in);
    nested(b, 12, enc_value_info, &out);
    for (size_t i = 1; i < L; i++) { /* the layers' outputs, for shape checks and viewers */
        value_info v = info_of(&e->t[i]);
        nested(b, 13, enc_value_info, &v);
    }
}

static void enc_opset(tfx__pb *b, const void *arg)
{
    (void)arg;
    str(b, 1, "");
    tfx__pb_int64(b, 2, OPSET);
}

static void enc_model(tfx__pb *b, const void *arg)
{
    tfx__pb_int64(b, 1, IR_VERSION);
    str(b, 2, "libtfx");
    str(b, 3, TFX_VERSION_STRING);
    nested(b, 7, enc_graph, arg);
    nested(b, 8, enc_opset, NULL);
}

int tfx_model_save_onnx(const tfx_model *m, const char *path, const tfx_onnx_options *o)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(path);
    TFX__CHECK_ARG(path[0] != '\0', FN ": path is empty");
    tfx_onnx_options opt;
    int rc = tfx__options_copy(&export_options, &opt, o, FN);
    if (rc) return rc;
    TFX__CHECK_ARG(opt.opset >= 0, FN ": opset = %d must be 0 (13) or 13", opt.opset);
    if (opt.opset != 0 && opt.opset != OPSET)
        return tfx__error(TFX_ENOTSUP, FN ": opset %d is not written (only 13)", opt.opset);
    if ((rc = check_model(m))) return rc;
    ex e = {.m = m};
    rc = build(&e);
    if (!rc) {
        tfx__pb c = {NULL, 0};
        enc_model(&c, &e);
        if (c.n > 2147483647u) { /* protobuf's limit; weights in external files are not written */
            rc = tfx__error(TFX_ENOTSUP, FN ": the model needs %zu bytes, more than protobuf's 2 GiB", c.n);
        } else {
            tfx__pb w = {tfx__malloc(c.n ? c.n : 1), 0};
            if (!w.p) {
                rc = tfx__error(TFX_ENOMEM, FN ": out of memory for %zu bytes", c.n);
            } else {
                enc_model(&w, &e);
                rc = w.n == c.n
                    ? tfx__file_write_atomic(FN, path, w.p, w.n)
                    : tfx__error(TFX_ERROR, FN ": internal error: %zu bytes counted, %zu written", c.n, w.n);
                tfx__free(w.p);
            }
        }
    }
    ex_free(&e);
    return rc;
}
