/* ONNX operators -> libtfx layers (NHWC, Keras weight layouts). A Conv, Gemm, MatMul or
 * BatchNormalization becomes one layer that also absorbs, while its output has no other reader,
 * what follows it: a BatchNormalization (folded into the weights, o->fuse), constant per-channel
 * Add/Sub/Mul/Div (bias and scale), and an activation (o->fuse). Layout operators (Transpose
 * between NCHW and NHWC, Identity, Dropout, a Flatten of a flat tensor) only relabel a tensor.
 * Anything else is refused with TFX_ENOTSUP naming the node. docs/onnx.md is the table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx/onnx_build.h"

static const int AX_NCHW[4] = {TFX__AX_N, TFX__AX_C, TFX__AX_H, TFX__AX_W};

/* Scratch k (0: the weights in ONNX layout, 1: converted) of n floats, kept across layers so
 * a large model does not map fresh pages for every layer (freed with the context). */
static float *scratch(tfx__onnx_ctx *c, int k, size_t n)
{
    if (n > c->scratch_cap[k]) {
        float *p = tfx__realloc(c->scratch[k], (n ? n : 1) * sizeof *p);
        if (!p) return NULL;
        c->scratch[k] = p;
        c->scratch_cap[k] = n;
    }
    return c->scratch[k];
}

static tfx__shape tensor_shape(tfx__onnx_ctx *c, int t) { return t == 0 ? c->m->input : c->m->layers[t - 1]->out; }

static tfx_layer *layer_of(tfx__onnx_ctx *c, int t) { return t == 0 ? NULL : c->m->layers[t - 1]; }

static int last_tensor(tfx__onnx_ctx *c) { return (int)c->m->n_layers; }

static int is_nchw(const tfx__onnx_val *v)
{
    return v->rank == 4 && v->ax[0] == TFX__AX_N && v->ax[1] == TFX__AX_C && v->ax[2] == TFX__AX_H &&
        v->ax[3] == TFX__AX_W;
}

/* Set v to libtfx tensor t seen as NCHW (rank 4) or as [N, K] (rank 2). */
static void set_runtime(tfx__onnx_ctx *c, tfx__onnx_val *v, int t, int rank)
{
    tfx__shape s = tensor_shape(c, t);
    v->kind = TFX__ONNX_RUNTIME;
    v->t = t;
    v->rank = rank;
    memset(v->chw, 0, sizeof v->chw);
    if (rank == 4) {
        int64_t d[4] = {-1, s.c, s.h, s.w};
        memcpy(v->dims, d, sizeof d);
        memcpy(v->ax, AX_NCHW, sizeof AX_NCHW);
    } else if (rank == 3) { /* [N, C, L]: libtfx 1 x L x C */
        int64_t d[3] = {-1, s.c, s.w};
        int ax[3] = {TFX__AX_N, TFX__AX_C, TFX__AX_W};
        memcpy(v->dims, d, sizeof d);
        memcpy(v->ax, ax, sizeof ax);
    } else {
        v->dims[0] = -1;
        v->dims[1] = (int64_t)s.h * s.w * s.c;
        v->ax[0] = TFX__AX_N;
        v->ax[1] = TFX__AX_C;
    }
}

static tfx__onnx_val *out_val(tfx__onnx_ctx *c, const tfx__onnx_node *n, size_t k)
{
    return k < n->n_outputs && n->outputs[k][0] ? tfx__onnx_find(c, n->outputs[k]) : NULL;
}

/* Outputs beyond the first that a live node reads: refused (MaxPool's indices, Dropout's mask,
 * BatchNormalization's training statistics). */
static int only_first_output(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    for (size_t k = 1; k < n->n_outputs; k++) {
        tfx__onnx_val *v = out_val(c, n, k);
        if (v && v->consumers)
            return tfx__onnx_unsup(c, n, "output %zu ('%s') is read; only the first output is supported", k, v->name);
    }
    return TFX_OK;
}

static tfx__onnx_val *in_val(tfx__onnx_ctx *c, const tfx__onnx_node *n, size_t k)
{
    return k < n->n_inputs && n->inputs[k][0] ? tfx__onnx_find(c, n->inputs[k]) : NULL;
}

/* The constant input k (NULL when absent); a runtime tensor there is refused. */
static int const_in(tfx__onnx_ctx *c, const tfx__onnx_node *n, size_t k, const char *what, const tfx__onnx_tensor **out)
{
    *out = NULL;
    tfx__onnx_val *v = in_val(c, n, k);
    if (!v) return TFX_OK;
    if (v->kind != TFX__ONNX_CONST)
        return tfx__onnx_unsup(c, n, "%s ('%s') is computed at run time; it must be a constant", what, v->name);
    *out = v->k;
    return tfx__onnx_const_check(c, n, v->k);
}

static int runtime_in(tfx__onnx_ctx *c, const tfx__onnx_node *n, size_t k, tfx__onnx_val **out)
{
    tfx__onnx_val *v = in_val(c, n, k);
    *out = v;
    if (!v) return tfx__onnx_fail(c, n, TFX_EFORMAT, "input %zu is missing", k);
    if (v->kind != TFX__ONNX_RUNTIME)
        return tfx__onnx_unsup(c, n, "input %zu ('%s') is %s", k, v->name,
                               v->kind == TFX__ONNX_CONST ? "a constant where a computed tensor is expected"
                                                          : "not computed by a supported node");
    return TFX_OK;
}

static int need_nchw(tfx__onnx_ctx *c, const tfx__onnx_node *n, tfx__onnx_val *v)
{
    if (!is_nchw(v))
        return tfx__onnx_unsup(c, n, "input '%s' is not an NCHW feature map (rank %d%s)", v->name, v->rank,
                               v->rank == 4 ? ", axes permuted by a Transpose" : "");
    tfx__shape s = tensor_shape(c, v->t);
    if (s.flat) { /* a [N, C, 1, 1] map held flat (global pooling's output): make it 1 x 1 x C */
        char name[TFX__NAME_MAX];
        snprintf(name, sizeof name, "%.200s/map", v->name);
        tfx_model_set_next_input(c->m, layer_of(c, v->t));
        int rc = tfx_model_add_reshape(c->m, 1, 1, s.c, name, NULL);
        if (rc) return tfx__error_prefix("%s: node '%s' (%s)", c->fn, tfx__onnx_node_label(n), n->op_type);
        v->t = last_tensor(c);
    }
    return TFX_OK;
}

/* ---- names ---- */

static void unique_name(tfx__onnx_ctx *c, const char *base, char *out)
{
    snprintf(out, TFX__NAME_MAX, "%.240s", base[0] ? base : "node");
    for (int k = 1; tfx_model_find_layer(c->m, out); k++) snprintf(out, TFX__NAME_MAX, "%.240s_%d", base, k);
    tfx_error_clear();
}

static void alias(tfx__onnx_ctx *c, int t, const char *name)
{
    if (t <= 0 || !name || !name[0]) return;
    tfx_layer *l = layer_of(c, t);
    if (strcmp(l->name, name) && tfx__model_add_alias(c->m, l, name)) tfx_error_clear(); /* taken: the layer keeps it */
}

static int after_add(tfx__onnx_ctx *c, const tfx__onnx_node *n, int rc)
{
    if (rc) return tfx__error_prefix("%s: node '%s' (%s)", c->fn, tfx__onnx_node_label(n), n->op_type);
    return TFX_OK;
}

static void read_from(tfx__onnx_ctx *c, int t) { tfx_model_set_next_input(c->m, layer_of(c, t)); }

/* ---- the input ---- */

static int make_model(tfx__onnx_ctx *c, int h, int w, int ch)
{
    int rc = tfx_model_new(&c->m, h, w, ch);
    if (rc) return tfx__error_prefix("%s", c->fn);
    /* every weight is set from the file: no random initialisation; and room for the weights
     * once (the float initializers bound them, up to folded biases) instead of growing the
     * flat arrays layer by layer */
    c->m->skip_init = 1;
    size_t n = 0;
    for (size_t i = 0; i < c->om->n_inits; i++)
        if (c->om->inits[i].data_type == TFX__ONNX_FLOAT && n < ((size_t)1 << 31)) n += c->om->inits[i].count;
    if (n && tfx__model_reserve_params(c->m, n < ((size_t)1 << 31) ? n : ((size_t)1 << 31)))
        tfx_error_clear(); /* not fatal: the arrays grow as layers come */
    return TFX_OK;
}

int tfx__onnx_make_input(tfx__onnx_ctx *c)
{
    tfx__onnx_val *v = c->input;
    const tfx__onnx_value_info *vi = v->vi;
    int h, w, ch;
    if (vi->rank == 4) {
        /* NHWC when every reader is a Transpose to NCHW (keras2onnx, tf2onnx) */
        int nhwc = 1, readers = 0;
        for (size_t i = 0; i < c->om->n_nodes; i++) {
            const tfx__onnx_node *n = &c->om->nodes[i];
            if (!c->live[i]) continue;
            for (size_t k = 0; k < n->n_inputs; k++) {
                if (strcmp(n->inputs[k], v->name)) continue;
                readers++;
                const tfx__onnx_attr *p = tfx__onnx_attr_find(n, "perm");
                if (strcmp(n->op_type, "Transpose") || !p || p->n_ints != 4 || p->ints[0] != 0 || p->ints[1] != 3 ||
                    p->ints[2] != 1 || p->ints[3] != 2)
                    nhwc = 0;
            }
        }
        nhwc = nhwc && readers;
        int64_t H = vi->dims[nhwc ? 1 : 2], W = vi->dims[nhwc ? 2 : 3], C = vi->dims[nhwc ? 3 : 1];
        if (H < 0 && c->o->input_height) H = c->o->input_height;
        if (W < 0 && c->o->input_width) W = c->o->input_width;
        if (H <= 0 || W <= 0 || C <= 0 || H > (1 << 20) || W > (1 << 20) || C > (1 << 20))
            return tfx__error(TFX_ENOTSUP,
                              "%s: graph input '%s' has height %lld, width %lld, channels %lld; symbolic or zero sizes "
                              "need tfx_onnx_options.input_height / input_width (channels must be given)",
                              c->fn, v->name, (long long)H, (long long)W, (long long)C);
        h = (int)H, w = (int)W, ch = (int)C;
        int rc = make_model(c, h, w, ch);
        if (rc) return rc;
        set_runtime(c, v, 0, 4);
        if (nhwc) {
            int64_t d[4] = {-1, H, W, C};
            int ax[4] = {TFX__AX_N, TFX__AX_H, TFX__AX_W, TFX__AX_C};
            memcpy(v->dims, d, sizeof d);
            memcpy(v->ax, ax, sizeof ax);
        }
    } else if (vi->rank == 3) {
        int64_t C = vi->dims[1], L = vi->dims[2];
        if (L < 0 && c->o->input_width) L = c->o->input_width;
        if (C <= 0 || L <= 0 || C > (1 << 20) || L > (1 << 20))
            return tfx__error(TFX_ENOTSUP, "%s: graph input '%s' of shape [N, %lld, %lld]", c->fn, v->name,
                              (long long)C, (long long)L);
        int rc = make_model(c, 1, (int)L, (int)C);
        if (rc) return rc;
        set_runtime(c, v, 0, 3);
    } else if (vi->rank == 2) {
        int64_t K = vi->dims[1];
        if (K <= 0 || K > (1 << 20))
            return tfx__error(TFX_ENOTSUP, "%s: graph input '%s' of %lld features", c->fn, v->name, (long long)K);
        int rc = make_model(c, 1, 1, (int)K);
        if (rc) return rc;
        set_runtime(c, v, 0, 2);
    } else {
        return tfx__error(TFX_ENOTSUP,
                          "%s: graph input '%s' of rank %d; libtfx takes [N, C, H, W], [N, C, L] or [N, K]", c->fn,
                          v->name, vi->rank);
    }
    return TFX_OK;
}

/* ---- activations ---- */

typedef struct act_spec {
    int act;
    float alpha, lo, hi;
} act_spec;

/* The libtfx activation of an activation node; strict: set an error when there is none. */
static int activation_of(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_val *x, act_spec *a, int strict)
{
    const char *op = n->op_type;
    memset(a, 0, sizeof *a);
#define REFUSE(...) return strict ? tfx__onnx_unsup(c, n, __VA_ARGS__) : TFX_ENOTSUP
    if (!strcmp(op, "Relu"))
        a->act = TFX_ACTIVATION_RELU;
    else if (!strcmp(op, "Sigmoid"))
        a->act = TFX_ACTIVATION_SIGMOID;
    else if (!strcmp(op, "Tanh"))
        a->act = TFX_ACTIVATION_TANH;
    else if (!strcmp(op, "HardSwish"))
        a->act = TFX_ACTIVATION_HARD_SWISH;
    else if (!strcmp(op, "LeakyRelu")) {
        float al = tfx__onnx_attr_float(n, "alpha", 0.01f);
        if (!isfinite(al)) REFUSE("alpha %g", al);
        a->act = al == 0.0f ? TFX_ACTIVATION_RELU : TFX_ACTIVATION_LEAKY_RELU;
        a->alpha = al;
    } else if (!strcmp(op, "Elu")) {
        float al = tfx__onnx_attr_float(n, "alpha", 1.0f);
        if (!isfinite(al) || al == 0.0f) REFUSE("alpha %g", al);
        a->act = TFX_ACTIVATION_ELU;
        a->alpha = al;
    } else if (!strcmp(op, "HardSigmoid")) {
        float al = tfx__onnx_attr_float(n, "alpha", 0.2f), be = tfx__onnx_attr_float(n, "beta", 0.5f);
        if (fabsf(al - 1.0f / 6.0f) > 1e-6f || fabsf(be - 0.5f) > 1e-6f)
            REFUSE("alpha %g, beta %g: libtfx's hard sigmoid is PyTorch's relu6(x + 3) / 6 (alpha 1/6, beta 0.5)", al,
                   be);
        a->act = TFX_ACTIVATION_HARD_SIGMOID;
    } else if (!strcmp(op, "Clip")) {
        float lo = -INFINITY, hi = INFINITY;
        if (c->opset < 11) {
            lo = tfx__onnx_attr_float(n, "min", -INFINITY);
            hi = tfx__onnx_attr_float(n, "max", INFINITY);
        } else {
            for (size_t k = 1; k < 3; k++) {
                tfx__onnx_val *b = in_val(c, n, k);
                if (!b) continue;
                if (b->kind != TFX__ONNX_CONST || b->k->count != 1 || tfx__onnx_const_check(c, n, b->k)) {
                    tfx_error_clear();
                    REFUSE("bound '%s' must be a one-value constant", b->name);
                }
                float f = tfx__onnx_tensor_float(b->k, 0);
                if (k == 1)
                    lo = f;
                else
                    hi = f;
            }
        }
        if (lo == 0.0f && hi == 6.0f)
            a->act = TFX_ACTIVATION_RELU6;
        else if (lo == 0.0f && hi == INFINITY)
            a->act = TFX_ACTIVATION_RELU;
        else if (isfinite(lo) && isfinite(hi) && lo < hi) {
            a->act = TFX_ACTIVATION_CLIP;
            a->lo = lo;
            a->hi = hi;
        } else
            REFUSE("bounds %g, %g: libtfx clips between finite bounds min < max (or min 0 without max)", lo, hi);
    } else if (!strcmp(op, "Softmax")) {
        int64_t def = c->opset < 13 ? 1 : -1, axis = tfx__onnx_attr_int(n, "axis", def);
        if (axis < 0) axis += x->rank;
        int ok;
        if (x->rank < 2 || x->rank > 4)
            ok = 0;
        else if (c->opset >= 13 || axis == x->rank - 1)
            ok = axis >= 0 && axis < x->rank && x->ax[axis] == TFX__AX_C;
        else /* opset < 13: over everything from axis on, coerced to 2-D; channels only when the rest is 1 x 1 */
            ok = axis == 1 && x->ax[1] == TFX__AX_C && x->rank == 4 && x->dims[2] * x->dims[3] == 1;
        if (!ok)
            REFUSE("axis %lld of a rank-%d tensor: libtfx's softmax runs over the channel axis only", (long long)axis,
                   x->rank);
        a->act = TFX_ACTIVATION_SOFTMAX;
    } else {
        REFUSE("not an activation");
    }
#undef REFUSE
    return TFX_OK;
}

static int is_activation_op(const char *op)
{
    static const char *const ops[] = {"Relu", "Sigmoid",     "Tanh", "HardSwish", "LeakyRelu",
                                      "Elu",  "HardSigmoid", "Clip", "Softmax"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i])) return 1;
    return 0;
}

static int add_activation_layer(tfx__onnx_ctx *c, const tfx__onnx_node *n, tfx__onnx_val *x, const act_spec *a)
{
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    read_from(c, x->t);
    int rc = a->act == TFX_ACTIVATION_CLIP ? tfx_model_add_clip(c->m, a->lo, a->hi, name, NULL)
                                           : tfx_model_add_activation(c->m, a->act, a->alpha, name, NULL);
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__onnx_val *y = out_val(c, n, 0);
    if (!y) return TFX_OK;
    *y = (tfx__onnx_val){.name = y->name,
                         .producer = y->producer,
                         .consumers = y->consumers,
                         .consumer = y->consumer,
                         .is_output = y->is_output};
    y->kind = TFX__ONNX_RUNTIME;
    y->t = last_tensor(c);
    y->rank = x->rank;
    memcpy(y->dims, x->dims, sizeof y->dims);
    memcpy(y->ax, x->ax, sizeof y->ax);
    memcpy(y->chw, x->chw, sizeof y->chw);
    alias(c, y->t, y->name);
    return TFX_OK;
}

/* ---- the linear layers and what they absorb ---- */

typedef struct lin {
    int kind; /* 0 Conv, 1 Dense, 2 BatchNormalization */
    int O;    /* output channels / units */
    float *w; /* Conv: OIHW [O][I][kh][kw]; Dense: [K][O] in libtfx row order; BN: gamma, beta, mean, var */
    float *b; /* [O] (Conv, Dense) */
    int has_bias;
    size_t wn;
    act_spec act;
    int I, g, kh, kw, sh, sw, pt, pl, pb, pr; /* Conv */
    float eps;                                /* BN */
    tfx__onnx_val *x;
    tfx__onnx_val out; /* the tensor the layer gives (shape and layout, before it is made) */
    const char *out_name;
    const tfx__onnx_node *first, *last;
} lin;

/* A constant that adds or multiplies per channel on a tensor of rank/dims with the channel at
 * ONNX axis cax: its O values (a scalar broadcast) in v. 0 when it broadcasts otherwise. */
static int per_channel(const tfx__onnx_val *y, int cax, const tfx__onnx_tensor *k, int O, float *v)
{
    if (k->rank > y->rank) return 0;
    int kc = -1;
    for (int j = 0; j < k->rank; j++) {
        int a = y->rank - k->rank + j;
        if (k->dims[j] == 1) continue;
        if (a == cax && k->dims[j] == O)
            kc = j;
        else
            return 0;
    }
    for (int o = 0; o < O; o++) v[o] = tfx__onnx_tensor_float(k, kc < 0 ? 0 : (size_t)o);
    return 1;
}

static int chan_axis(const tfx__onnx_val *y)
{
    for (int a = 0; a < y->rank; a++)
        if (y->ax[a] == TFX__AX_C) return a;
    return -1;
}

/* Scale output channel o of the linear map by s (weights and bias). */
static void scale_out(lin *L, int o, float s)
{
    if (L->kind == 0) {
        size_t per = (size_t)L->I * L->kh * L->kw;
        for (size_t i = 0; i < per; i++) L->w[(size_t)o * per + i] *= s;
    } else if (L->kind == 1) {
        size_t K = L->wn / (size_t)L->O;
        for (size_t r = 0; r < K; r++) L->w[r * (size_t)L->O + o] *= s;
    } else {
        L->w[o] *= s;        /* gamma */
        L->w[L->O + o] *= s; /* beta */
        return;
    }
    L->b[o] *= s;
}

static void add_out(lin *L, int o, float v)
{
    if (L->kind == 2)
        L->w[L->O + o] += v;
    else
        L->b[o] += v;
    L->has_bias = 1;
}

/* Try to absorb node n (the only reader of L's output) into L. 1: absorbed. */
static int absorb_one(tfx__onnx_ctx *c, lin *L, const tfx__onnx_node *n, float *tmp)
{
    const char *op = n->op_type;
    if (strcmp(n->domain, "") && strcmp(n->domain, "ai.onnx")) return 0;
    int cax = chan_axis(&L->out);
    if (cax < 0) return 0;
    if (!strcmp(op, "BatchNormalization")) {
        if (!c->o->fuse || L->kind == 2 || L->act.act || n->n_inputs != 5 || cax != 1) return 0;
        if (tfx__onnx_attr_int(n, "training_mode", 0) || !tfx__onnx_attr_int(n, "spatial", 1)) return 0;
        for (size_t k = 1; k < n->n_outputs; k++) {
            tfx__onnx_val *v = out_val(c, n, k);
            if (v && v->consumers) return 0;
        }
        const tfx__onnx_tensor *p[4];
        for (int k = 0; k < 4; k++) {
            tfx__onnx_val *v = in_val(c, n, (size_t)k + 1);
            if (!v || v->kind != TFX__ONNX_CONST || v->k->count != (size_t)L->O || tfx__onnx_const_check(c, n, v->k)) {
                tfx_error_clear();
                return 0;
            }
            p[k] = v->k;
        }
        float eps = tfx__onnx_attr_float(n, "epsilon", 1e-5f);
        for (int o = 0; o < L->O; o++) {
            float g = tfx__onnx_tensor_float(p[0], (size_t)o), be = tfx__onnx_tensor_float(p[1], (size_t)o);
            float mu = tfx__onnx_tensor_float(p[2], (size_t)o), var = tfx__onnx_tensor_float(p[3], (size_t)o);
            float s = (float)(g / sqrt((double)var + eps));
            scale_out(L, o, s);
            L->b[o] += -mu * s + be;
        }
        L->has_bias = 1;
        return 1;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (L->act.act || n->n_inputs != 2) return 0;
        int mine = strcmp(n->inputs[0], L->out_name) == 0 ? 0 : 1;
        if (strcmp(n->inputs[mine], L->out_name)) return 0;
        tfx__onnx_val *k = in_val(c, n, 1 - (size_t)mine);
        if (!k || k->kind != TFX__ONNX_CONST || tfx__onnx_const_check(c, n, k->k)) {
            tfx_error_clear();
            return 0;
        }
        if (((op[0] == 'S' || op[0] == 'D') && mine != 0)) return 0; /* c - x, c / x */
        if (!per_channel(&L->out, cax, k->k, L->O, tmp)) return 0;
        for (int o = 0; o < L->O; o++) {
            if (op[0] == 'A')
                add_out(L, o, tmp[o]);
            else if (op[0] == 'S')
                add_out(L, o, -tmp[o]);
            else if (op[0] == 'M')
                scale_out(L, o, tmp[o]);
            else
                scale_out(L, o, 1.0f / tmp[o]);
        }
        return 1;
    }
    if (is_activation_op(op)) {
        if (!c->o->fuse || L->kind == 2 || L->act.act) return 0;
        act_spec a;
        if (activation_of(c, n, &L->out, &a, 0)) return 0;
        if (a.act == TFX_ACTIVATION_SOFTMAX && L->kind == 0) return 0; /* keep conv softmax a layer of its own */
        L->act = a;
        return 1;
    }
    return 0;
}

static void absorb(tfx__onnx_ctx *c, lin *L, float *tmp)
{
    for (;;) {
        tfx__onnx_val *y = tfx__onnx_find(c, L->out_name);
        if (!y || y->consumers != 1 || y->is_output || y->consumer < 0) return;
        size_t i = (size_t)y->consumer;
        const tfx__onnx_node *n = &c->om->nodes[i];
        if (c->absorbed[i] || !c->live[i] || n->n_outputs < 1 || !n->outputs[0][0]) return;
        if (!absorb_one(c, L, n, tmp)) return;
        c->absorbed[i] = 1;
        L->last = n;
        L->out_name = n->outputs[0];
    }
}

static int make_lin(tfx__onnx_ctx *c, lin *L)
{
    const tfx__onnx_node *n = L->first;
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    int rc;
    tfx_layer *l = NULL;
    read_from(c, L->x->t);
    if (L->kind == 0) {
        int C = L->I * L->g;
        size_t kn = (size_t)L->kh * L->kw * L->I * L->O;
        float *hwio = scratch(c, 1, kn);
        if (!hwio) return tfx__error(TFX_ENOMEM, "%s: out of memory for the weights of '%s'", c->fn, name);
        for (int o = 0; o < L->O; o++)
            for (int i = 0; i < L->I; i++)
                for (int y = 0; y < L->kh; y++)
                    for (int x = 0; x < L->kw; x++)
                        hwio[(((size_t)y * L->kw + x) * L->I + i) * L->O + o] =
                            L->w[(((size_t)o * L->I + i) * L->kh + y) * L->kw + x];
        if (L->g > 1 && L->g == C && L->I == 1) {
            tfx_depthwise_conv2d_options d = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
            d.kernel_h = L->kh, d.kernel_w = L->kw, d.stride_h = L->sh, d.stride_w = L->sw;
            d.padding = TFX_PADDING_EXPLICIT;
            d.pad_top = L->pt, d.pad_bottom = L->pb, d.pad_left = L->pl, d.pad_right = L->pr;
            d.depth_multiplier = L->O / C;
            d.activation = L->act.act, d.activation_alpha = L->act.alpha;
            if (L->act.act == TFX_ACTIVATION_CLIP) d.clip_min = L->act.lo, d.clip_max = L->act.hi;
            d.use_bias = L->has_bias;
            d.name = name;
            rc = tfx_model_add_depthwise_conv2d(c->m, &d, &l);
        } else {
            tfx_conv2d_options d = TFX_CONV2D_OPTIONS_INIT;
            d.filters = L->O;
            d.kernel_h = L->kh, d.kernel_w = L->kw, d.stride_h = L->sh, d.stride_w = L->sw;
            d.padding = TFX_PADDING_EXPLICIT;
            d.pad_top = L->pt, d.pad_bottom = L->pb, d.pad_left = L->pl, d.pad_right = L->pr;
            d.groups = L->g;
            d.activation = L->act.act, d.activation_alpha = L->act.alpha;
            if (L->act.act == TFX_ACTIVATION_CLIP) d.clip_min = L->act.lo, d.clip_max = L->act.hi;
            d.use_bias = L->has_bias;
            d.name = name;
            rc = tfx_model_add_conv2d(c->m, &d, &l);
        }
        if (!rc) rc = tfx_layer_set_weights(l, hwio, L->has_bias ? L->b : NULL);
    } else if (L->kind == 1) {
        tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
        d.units = L->O;
        d.activation = L->act.act, d.activation_alpha = L->act.alpha;
        if (L->act.act == TFX_ACTIVATION_CLIP) d.clip_min = L->act.lo, d.clip_max = L->act.hi;
        d.use_bias = L->has_bias;
        d.name = name;
        rc = tfx_model_add_dense(c->m, &d, &l);
        if (!rc) rc = tfx_layer_set_weights(l, L->w, L->has_bias ? L->b : NULL);
    } else {
        tfx_batch_norm_options d = TFX_BATCH_NORM_OPTIONS_INIT;
        d.epsilon = L->eps;
        d.name = name;
        rc = tfx_model_add_batch_normalization(c->m, &d, &l);
        if (!rc) rc = tfx_layer_set_weights(l, L->w, NULL);
    }
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__onnx_val *y = tfx__onnx_find(c, L->out_name);
    set_runtime(c, y, last_tensor(c), L->out.rank);
    if (L->kind == 2) { /* BN keeps its input's layout */
        memcpy(y->dims, L->x->dims, sizeof y->dims);
        memcpy(y->ax, L->x->ax, sizeof y->ax);
        memcpy(y->chw, L->x->chw, sizeof y->chw);
    }
    alias(c, y->t, y->name);
    if (L->last) alias(c, y->t, tfx__onnx_node_label(L->last));
    /* a standalone activation BN could not absorb */
    return TFX_OK;
}

/* SAME/VALID/NOTSET pads of one spatial axis. */
static int axis_pads(tfx__onnx_ctx *c, const tfx__onnx_node *n, int64_t in, int k, int s, const char *mode,
                     const tfx__onnx_attr *pads, int axis, int *begin, int *end)
{
    *begin = *end = 0;
    if (!strcmp(mode, "NOTSET") || !mode[0]) {
        if (pads) {
            if (pads->n_ints != 4) return tfx__onnx_fail(c, n, TFX_EFORMAT, "pads of %zu values", pads->n_ints);
            int64_t b = pads->ints[axis], e = pads->ints[axis + 2];
            if (b < 0 || e < 0 || b > (1 << 20) || e > (1 << 20))
                return tfx__onnx_unsup(c, n, "pads %lld, %lld", (long long)b, (long long)e);
            *begin = (int)b;
            *end = (int)e;
        }
        return TFX_OK;
    }
    if (!strcmp(mode, "VALID")) return TFX_OK;
    if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
        int64_t out = (in + s - 1) / s, total = (out - 1) * s + k - in;
        if (total < 0) total = 0;
        int small = (int)(total / 2), big = (int)(total - total / 2);
        *begin = mode[5] == 'U' ? small : big;
        *end = mode[5] == 'U' ? big : small;
        return TFX_OK;
    }
    return tfx__onnx_unsup(c, n, "auto_pad '%s'", mode);
}

/* kernel_shape / strides / dilations / pads / auto_pad of a 2-D window. */
static int window(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_val *x, int kh, int kw, int *sh, int *sw,
                  int pads[4])
{
    const tfx__onnx_attr *a = tfx__onnx_attr_find(n, "strides");
    *sh = *sw = 1;
    if (a) {
        if (a->n_ints != 2) return tfx__onnx_unsup(c, n, "strides of %zu values (2-D windows only)", a->n_ints);
        if (a->ints[0] < 1 || a->ints[1] < 1 || a->ints[0] > (1 << 20) || a->ints[1] > (1 << 20))
            return tfx__onnx_unsup(c, n, "strides %lld, %lld", (long long)a->ints[0], (long long)a->ints[1]);
        *sh = (int)a->ints[0];
        *sw = (int)a->ints[1];
    }
    if ((a = tfx__onnx_attr_find(n, "dilations")))
        for (size_t k = 0; k < a->n_ints; k++)
            if (a->ints[k] != 1)
                return tfx__onnx_unsup(c, n, "dilation %lld (only 1 is supported)", (long long)a->ints[k]);
    a = tfx__onnx_attr_find(n, "auto_pad");
    const char *mode = a && a->s ? a->s : "NOTSET";
    const tfx__onnx_attr *p = tfx__onnx_attr_find(n, "pads");
    int rc = axis_pads(c, n, x->dims[2], kh, *sh, mode, p, 0, &pads[0], &pads[2]);
    if (!rc) rc = axis_pads(c, n, x->dims[3], kw, *sw, mode, p, 1, &pads[1], &pads[3]);
    return rc;
}

static int op_conv(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    const tfx__onnx_tensor *W, *B;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = need_nchw(c, n, x);
    if (!rc) rc = const_in(c, n, 1, "the weight", &W);
    if (!rc) rc = const_in(c, n, 2, "the bias", &B);
    if (rc) return rc;
    if (!W) return tfx__onnx_fail(c, n, TFX_EFORMAT, "no weight");
    if (W->rank != 4) return tfx__onnx_unsup(c, n, "weight of rank %d (2-D convolutions only)", W->rank);
    int64_t g = tfx__onnx_attr_int(n, "group", 1), C = x->dims[1];
    if (g < 1 || g > C || C % g || W->dims[0] % g || W->dims[1] * g != C || W->dims[0] < 1 || W->dims[2] < 1 ||
        W->dims[3] < 1 || W->dims[0] > (1 << 20) || W->dims[2] > (1 << 20) || W->dims[3] > (1 << 20))
        return tfx__onnx_fail(
            c, n, TFX_ESHAPE,
            "weight [%lld, %lld, %lld, %lld] with group %lld does not match an input of %lld channels",
            (long long)W->dims[0], (long long)W->dims[1], (long long)W->dims[2], (long long)W->dims[3], (long long)g,
            (long long)C);
    const tfx__onnx_attr *ks = tfx__onnx_attr_find(n, "kernel_shape");
    if (ks && (ks->n_ints != 2 || ks->ints[0] != W->dims[2] || ks->ints[1] != W->dims[3]))
        return tfx__onnx_fail(c, n, TFX_ESHAPE, "kernel_shape disagrees with the weight's");
    if (B && B->count != (size_t)W->dims[0])
        return tfx__onnx_fail(c, n, TFX_ESHAPE, "bias of %zu values for %lld filters", B->count, (long long)W->dims[0]);
    lin L;
    memset(&L, 0, sizeof L);
    L.kind = 0;
    L.O = (int)W->dims[0];
    L.I = (int)W->dims[1];
    L.g = (int)g;
    L.kh = (int)W->dims[2];
    L.kw = (int)W->dims[3];
    int pads[4];
    if ((rc = window(c, n, x, L.kh, L.kw, &L.sh, &L.sw, pads))) return rc;
    L.pt = pads[0], L.pl = pads[1], L.pb = pads[2], L.pr = pads[3];
    L.wn = W->count;
    L.w = scratch(c, 0, W->count);
    L.b = tfx__calloc((size_t)L.O, sizeof *L.b);
    float *tmp = tfx__malloc((size_t)L.O * sizeof *tmp);
    if (!L.w || !L.b || !tmp) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory for node '%s'", c->fn, tfx__onnx_node_label(n));
        goto done;
    }
    for (size_t i = 0; i < W->count; i++) L.w[i] = tfx__onnx_tensor_float(W, i);
    if (B) {
        for (int o = 0; o < L.O; o++) L.b[o] = tfx__onnx_tensor_float(B, (size_t)o);
        L.has_bias = 1;
    }
    L.x = x;
    L.first = n;
    L.out_name = n->outputs[0];
    L.out.rank = 4;
    L.out.dims[0] = -1;
    L.out.dims[1] = L.O;
    L.out.dims[2] = (x->dims[2] + L.pt + L.pb - L.kh) / L.sh + 1;
    L.out.dims[3] = (x->dims[3] + L.pl + L.pr - L.kw) / L.sw + 1;
    memcpy(L.out.ax, AX_NCHW, sizeof AX_NCHW);
    absorb(c, &L, tmp);
    rc = make_lin(c, &L);
done:
    tfx__free(L.b);
    tfx__free(tmp);
    return rc;
}

/* Gemm (alpha, beta, transB; transA 0) and MatMul with a constant right side: Dense. */
static int op_dense(tfx__onnx_ctx *c, const tfx__onnx_node *n, int gemm)
{
    tfx__onnx_val *x;
    const tfx__onnx_tensor *Bw, *Cb = NULL;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = const_in(c, n, 1, "the right-hand matrix (weights)", &Bw);
    if (!rc && gemm) rc = const_in(c, n, 2, "C (the bias)", &Cb);
    if (rc) return rc;
    if (!Bw) return tfx__onnx_fail(c, n, TFX_EFORMAT, "no weight");
    if (x->rank != 2)
        return tfx__onnx_unsup(c, n, "input '%s' of rank %d: Dense reads [N, K] (Flatten first)", x->name, x->rank);
    if (Bw->rank != 2) return tfx__onnx_unsup(c, n, "weight of rank %d", Bw->rank);
    int transB = gemm ? (int)tfx__onnx_attr_int(n, "transB", 0) : 0;
    if (gemm && tfx__onnx_attr_int(n, "transA", 0)) return tfx__onnx_unsup(c, n, "transA 1");
    float alpha = gemm ? tfx__onnx_attr_float(n, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? tfx__onnx_attr_float(n, "beta", 1.0f) : 1.0f;
    int64_t K = transB ? Bw->dims[1] : Bw->dims[0], M = transB ? Bw->dims[0] : Bw->dims[1];
    if (K != x->dims[1] || M < 1 || M > (1 << 20))
        return tfx__onnx_fail(c, n, TFX_ESHAPE, "weight [%lld, %lld]%s does not match an input of %lld features",
                              (long long)Bw->dims[0], (long long)Bw->dims[1], transB ? " (transB)" : "",
                              (long long)x->dims[1]);
    lin L;
    memset(&L, 0, sizeof L);
    L.kind = 1;
    L.O = (int)M;
    L.wn = Bw->count;
    L.w = scratch(c, 0, L.wn);
    L.b = tfx__calloc((size_t)M, sizeof *L.b);
    float *tmp = tfx__malloc((size_t)M * sizeof *tmp);
    if (!L.w || !L.b || !tmp) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory for node '%s'", c->fn, tfx__onnx_node_label(n));
        goto done;
    }
    /* row k of the ONNX weight (feature k of a C,H,W flattening) goes to libtfx's row (h, w, c) */
    int C = x->chw[0], H = x->chw[1], Wd = x->chw[2];
    for (int64_t k = 0; k < K; k++) {
        int64_t r = k;
        if (C) {
            int64_t ch = k / ((int64_t)H * Wd), rem = k % ((int64_t)H * Wd);
            r = rem * C + ch;
        }
        for (int64_t m = 0; m < M; m++)
            L.w[r * M + m] = alpha * tfx__onnx_tensor_float(Bw, (size_t)(transB ? m * K + k : k * M + m));
    }
    L.x = x;
    L.first = n;
    L.out_name = n->outputs[0];
    L.out.rank = 2;
    L.out.dims[0] = -1;
    L.out.dims[1] = M;
    L.out.ax[0] = TFX__AX_N;
    L.out.ax[1] = TFX__AX_C;
    if (Cb && beta != 0.0f) {
        if (tfx__onnx_const_check(c, n, Cb)) {
            rc = TFX_ENOTSUP;
            goto done;
        }
        if (!per_channel(&L.out, 1, Cb, L.O, tmp)) {
            rc = tfx__onnx_unsup(c, n, "C of %zu values does not broadcast as a bias of %lld units", Cb->count,
                                 (long long)M);
            goto done;
        }
        for (int o = 0; o < L.O; o++) L.b[o] = beta * tmp[o];
        L.has_bias = 1;
    }
    absorb(c, &L, tmp);
    rc = make_lin(c, &L);
done:
    tfx__free(L.b);
    tfx__free(tmp);
    return rc;
}

static int op_batchnorm(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = only_first_output(c, n);
    if (rc) return rc;
    if (tfx__onnx_attr_int(n, "training_mode", 0)) return tfx__onnx_unsup(c, n, "training_mode 1");
    if (!tfx__onnx_attr_int(n, "spatial", 1)) return tfx__onnx_unsup(c, n, "spatial 0");
    if (x->rank < 2 || x->rank > 4 || x->ax[1] != TFX__AX_C || x->chw[0])
        return tfx__onnx_unsup(c, n, "input '%s' has its channels elsewhere than libtfx's channel axis", x->name);
    int O = (int)x->dims[1];
    lin L;
    memset(&L, 0, sizeof L);
    L.kind = 2;
    L.O = O;
    L.eps = tfx__onnx_attr_float(n, "epsilon", 1e-5f);
    if (!(L.eps > 0.0f) || !isfinite(L.eps)) return tfx__onnx_unsup(c, n, "epsilon %g", L.eps);
    L.w = scratch(c, 0, 4 * (size_t)O);
    float *tmp = tfx__malloc((size_t)O * sizeof *tmp);
    if (!L.w || !tmp) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory", c->fn);
        goto done;
    }
    for (int k = 0; k < 4 && !rc; k++) {
        const tfx__onnx_tensor *p;
        rc = const_in(c, n, (size_t)k + 1, k == 0 ? "scale" : k == 1 ? "B" : k == 2 ? "mean" : "var", &p);
        if (!rc && (!p || p->count != (size_t)O))
            rc = tfx__onnx_fail(c, n, TFX_ESHAPE, "parameter %d of %zu values for %d channels", k + 1, p ? p->count : 0,
                                O);
        for (int o = 0; !rc && o < O; o++) L.w[(size_t)k * O + o] = tfx__onnx_tensor_float(p, (size_t)o);
    }
    if (rc) goto done;
    L.x = x;
    L.first = n;
    L.out_name = n->outputs[0];
    L.out = *x;
    absorb(c, &L, tmp);
    rc = make_lin(c, &L);
done:
    tfx__free(tmp);
    return rc;
}

static int op_pool(tfx__onnx_ctx *c, const tfx__onnx_node *n, int max)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = need_nchw(c, n, x);
    if (!rc) rc = only_first_output(c, n);
    if (rc) return rc;
    const tfx__onnx_attr *ks = tfx__onnx_attr_find(n, "kernel_shape");
    if (!ks || ks->n_ints != 2 || ks->ints[0] < 1 || ks->ints[1] < 1 || ks->ints[0] > (1 << 20) ||
        ks->ints[1] > (1 << 20))
        return tfx__onnx_unsup(c, n, "kernel_shape must hold two positive sizes (2-D pooling)");
    if (tfx__onnx_attr_int(n, "ceil_mode", 0)) return tfx__onnx_unsup(c, n, "ceil_mode 1");
    if (tfx__onnx_attr_int(n, "storage_order", 0)) return tfx__onnx_unsup(c, n, "storage_order 1");
    int sh, sw, pads[4];
    if ((rc = window(c, n, x, (int)ks->ints[0], (int)ks->ints[1], &sh, &sw, pads))) return rc;
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = (int)ks->ints[0], p.pool_w = (int)ks->ints[1], p.stride_h = sh, p.stride_w = sw;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_top = pads[0], p.pad_left = pads[1], p.pad_bottom = pads[2], p.pad_right = pads[3];
    p.count_include_pad = max ? 0 : (int)tfx__onnx_attr_int(n, "count_include_pad", 0);
    p.name = name;
    read_from(c, x->t);
    rc = max ? tfx_model_add_max_pooling2d(c->m, &p, NULL) : tfx_model_add_average_pooling2d(c->m, &p, NULL);
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__onnx_val *y = out_val(c, n, 0);
    set_runtime(c, y, last_tensor(c), 4);
    alias(c, y->t, y->name);
    return TFX_OK;
}

static int op_global_pool(tfx__onnx_ctx *c, const tfx__onnx_node *n, int max)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = need_nchw(c, n, x);
    if (rc) return rc;
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    read_from(c, x->t);
    rc = max ? tfx_model_add_global_max_pooling2d(c->m, name, NULL)
             : tfx_model_add_global_average_pooling2d(c->m, name, NULL);
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__onnx_val *y = out_val(c, n, 0);
    int64_t C = x->dims[1];
    set_runtime(c, y, last_tensor(c), 4); /* [N, C, 1, 1], held flat */
    y->dims[1] = C;
    y->dims[2] = y->dims[3] = 1;
    alias(c, y->t, y->name);
    return TFX_OK;
}

/* y is x under another ONNX view (no layer): Identity, Dropout, Transpose, Flatten of flat. */
static void relabel(tfx__onnx_ctx *c, const tfx__onnx_node *n, tfx__onnx_val *y, const tfx__onnx_val *x)
{
    const char *name = y->name;
    int producer = y->producer, consumers = y->consumers, consumer = y->consumer, is_output = y->is_output;
    *y = *x;
    y->name = name;
    y->producer = producer;
    y->consumers = consumers;
    y->consumer = consumer;
    y->is_output = is_output;
    alias(c, y->t, y->name);
    alias(c, y->t, tfx__onnx_node_label(n));
}

static int op_merge(tfx__onnx_ctx *c, const tfx__onnx_node *n, int kind)
{
    size_t k = n->n_inputs;
    if (k < 1 || k > 1024) return tfx__onnx_fail(c, n, TFX_EFORMAT, "%zu inputs", k);
    tfx_layer *ls[1024];
    tfx__onnx_val *x0 = NULL;
    int64_t axis = 0;
    for (size_t j = 0; j < k; j++) {
        tfx__onnx_val *x;
        int rc = runtime_in(c, n, j, &x);
        if (rc) {
            if (x && x->kind == TFX__ONNX_CONST && kind != 2) {
                tfx_error_clear();
                return tfx__onnx_unsup(c, n,
                                       "constant operand '%s' cannot be folded: its other operand is not the output "
                                       "of a Conv, Gemm, MatMul or BatchNormalization that only this node reads",
                                       x->name);
            }
            return rc;
        }
        if (x->chw[0] && !(x->chw[1] * x->chw[2] == 1 || x->chw[0] == 1))
            return tfx__onnx_unsup(c, n, "input '%s' is a flattened NCHW map (C,H,W order) libtfx holds as H,W,C",
                                   x->name);
        if (kind == 2 && x->rank == 4) rc = need_nchw(c, n, x);
        if (rc) return rc;
        if (!x0) {
            x0 = x;
            if (kind == 2) {
                axis = tfx__onnx_attr_int(n, "axis", x->rank == 2 ? 1 : 1);
                if (axis < 0) axis += x->rank;
                if (axis < 0 || axis >= x->rank || x->ax[axis] != TFX__AX_C)
                    return tfx__onnx_unsup(c, n, "axis %lld is not the channel axis", (long long)axis);
            }
        } else {
            int same = x->rank == x0->rank;
            for (int a = 0; same && a < x->rank; a++) {
                if (x->ax[a] != x0->ax[a]) same = 0;
                if (kind == 2 && a == axis) continue;
                if (x->dims[a] != x0->dims[a] && a > 0) {
                    /* Multiply broadcasts a [N, C, 1, 1] gate */
                    if (!(kind == 1 && x->rank == 4 && a >= 2 &&
                          (x->dims[2] * x->dims[3] == 1 || x0->dims[2] * x0->dims[3] == 1)))
                        same = 0;
                }
            }
            if (!same)
                return tfx__onnx_unsup(c, n, "inputs '%s' and '%s' differ in shape or layout (no broadcasting)",
                                       x0->name, x->name);
        }
        ls[j] = layer_of(c, x->t);
    }
    tfx__onnx_val *y = out_val(c, n, 0);
    if (!y) return TFX_OK;
    if (k == 1) {
        relabel(c, n, y, x0);
        return TFX_OK;
    }
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    int rc = kind == 0 ? tfx_model_add_add(c->m, ls, k, name, NULL)
        : kind == 1    ? tfx_model_add_multiply(c->m, ls, k, name, NULL)
                       : tfx_model_add_concatenate(c->m, ls, k, name, NULL);
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__shape s = tensor_shape(c, last_tensor(c));
    /* the output keeps the (largest) input's view; concatenation adds up the channels */
    tfx__onnx_val *big = x0;
    for (size_t j = 0; j < k; j++) {
        tfx__onnx_val *x = in_val(c, n, j);
        if (x->rank == 4 && x->dims[2] * x->dims[3] > big->dims[2] * big->dims[3]) big = x;
    }
    relabel(c, n, y, big);
    y->t = last_tensor(c);
    if (kind == 2) y->dims[axis] = s.c;
    if (y->rank == 4 && !s.flat && is_nchw(y)) { /* a gate times a map: the map's shape */
        y->dims[1] = s.c, y->dims[2] = s.h, y->dims[3] = s.w;
    }
    alias(c, y->t, y->name);
    return TFX_OK;
}

/* Flatten / Reshape of a runtime tensor to [N, K]. */
static int to_flat(tfx__onnx_ctx *c, const tfx__onnx_node *n, tfx__onnx_val *x, tfx__onnx_val *y)
{
    if (x->rank == 2) {
        relabel(c, n, y, x);
        return TFX_OK;
    }
    int order_kept = x->ax[1] == TFX__AX_H && x->ax[2] == TFX__AX_W && x->ax[3] == TFX__AX_C;
    if (!order_kept && !is_nchw(x))
        return tfx__onnx_unsup(c, n, "flattening axes in an order that is neither NCHW nor NHWC");
    tfx__shape s = tensor_shape(c, x->t);
    int t = x->t;
    if (!s.flat) {
        char name[TFX__NAME_MAX];
        unique_name(c, tfx__onnx_node_label(n), name);
        read_from(c, x->t);
        int rc = after_add(c, n, tfx_model_add_flatten(c->m, name, NULL));
        if (rc) return rc;
        t = last_tensor(c);
    }
    int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3];
    set_runtime(c, y, t, 2);
    if (!order_kept && H * W > 1 && C > 1) {
        y->chw[0] = (int)C;
        y->chw[1] = (int)H;
        y->chw[2] = (int)W;
    }
    alias(c, y->t, y->name);
    alias(c, y->t, tfx__onnx_node_label(n));
    return TFX_OK;
}

static int op_flatten(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (rc) return rc;
    int64_t axis = tfx__onnx_attr_int(n, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis != 1) return tfx__onnx_unsup(c, n, "axis %lld (only 1: keep the batch axis)", (long long)axis);
    return to_flat(c, n, x, out_val(c, n, 0));
}

static int op_reshape(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    const tfx__onnx_tensor *s;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = const_in(c, n, 1, "the shape", &s);
    if (rc) return rc;
    if (!s || s->rank != 1 || s->count < 1 || s->count > TFX__ONNX_MAX_RANK)
        return tfx__onnx_unsup(c, n, "shape must be a constant vector of 1 to %d values", TFX__ONNX_MAX_RANK);
    int64_t per = 1, d[TFX__ONNX_MAX_RANK];
    for (int a = 1; a < x->rank; a++) per *= x->dims[a];
    /* the first target axis is the batch: 0 (copied), -1, or 1 (a file written for batch 1) */
    int64_t d0 = tfx__onnx_tensor_int(s, 0), known = 1;
    int minus = -1, rank = (int)s->count;
    if (d0 != 0 && d0 != -1 && d0 != 1 && d0 != x->dims[0])
        return tfx__onnx_unsup(c, n, "first dimension %lld: the batch axis must stay first", (long long)d0);
    for (int a = 1; a < rank; a++) {
        d[a] = tfx__onnx_tensor_int(s, (size_t)a);
        if (d[a] == 0 && !tfx__onnx_attr_int(n, "allowzero", 0) && a < x->rank) d[a] = x->dims[a];
        if (d[a] == -1 && d0 != -1 && minus < 0)
            minus = a;
        else if (d[a] < 1 || d[a] > TFX__ONNX_MAX_ELEMS)
            return tfx__onnx_fail(c, n, TFX_ESHAPE, "dimension %d of the shape is %lld", a, (long long)d[a]);
        else if ((known *= d[a]) > TFX__ONNX_MAX_ELEMS)
            return tfx__onnx_fail(c, n, TFX_ESHAPE, "shape too large");
    }
    if (minus > 0) {
        if (per % known)
            return tfx__onnx_fail(c, n, TFX_ESHAPE, "%lld values per sample do not fill the shape", (long long)per);
        d[minus] = per / known;
        known = per;
    }
    /* a leading -1 that ONNX resolves to anything but the batch size merges the batch axis into
     * the others: a valid file libtfx cannot express (not a malformed one) */
    if (known != per && d0 == -1)
        return tfx__onnx_unsup(c, n, "shape [-1, ...] of %lld values per sample from %lld: it merges the batch axis",
                               (long long)known, (long long)per);
    if (known != per)
        return tfx__onnx_fail(c, n, TFX_ESHAPE, "%lld values per sample reshaped to %lld", (long long)per,
                              (long long)known);
    tfx__onnx_val *y = out_val(c, n, 0);
    if (rank == 2) return to_flat(c, n, x, y);
    if (rank != 4) return tfx__onnx_unsup(c, n, "target of rank %d (2 or 4 supported)", rank);
    /* libtfx's Reshape keeps NHWC order: the same values when neither side mixes channels with
     * positions (C == 1 or H * W == 1 on both sides) */
    int src_plain = (x->rank == 2 && !x->chw[0]) || (is_nchw(x) && (x->dims[1] == 1 || x->dims[2] * x->dims[3] == 1));
    int dst_plain = d[1] == 1 || d[2] * d[3] == 1;
    if (!src_plain || !dst_plain || d[1] > (1 << 20) || d[2] > (1 << 20) || d[3] > (1 << 20))
        return tfx__onnx_unsup(c, n,
                               "reshape to [N, %lld, %lld, %lld] moves values between channels and positions (the "
                               "NCHW and NHWC orders differ)",
                               (long long)d[1], (long long)d[2], (long long)d[3]);
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    read_from(c, x->t);
    rc = after_add(c, n, tfx_model_add_reshape(c->m, (int)d[2], (int)d[3], (int)d[1], name, NULL));
    if (rc) return rc;
    set_runtime(c, y, last_tensor(c), 4);
    alias(c, y->t, y->name);
    return TFX_OK;
}

static int op_transpose(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (rc) return rc;
    const tfx__onnx_attr *p = tfx__onnx_attr_find(n, "perm");
    int perm[TFX__ONNX_MAX_RANK] = {0}, used[TFX__ONNX_MAX_RANK] = {0};
    if (p && (int)p->n_ints != x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "perm of %zu axes", p->n_ints);
    for (int a = 0; a < x->rank; a++) {
        int64_t q = p ? p->ints[a] : x->rank - 1 - a;
        if (q < 0 || q >= x->rank || used[q]) return tfx__onnx_fail(c, n, TFX_EFORMAT, "perm is not a permutation");
        used[q] = 1;
        perm[a] = (int)q;
    }
    if (perm[0] != 0) return tfx__onnx_unsup(c, n, "moves the batch axis");
    if (x->rank == 2) {
        if (perm[1] != 1) return tfx__onnx_unsup(c, n, "transposes a [N, K] tensor");
    } else if (x->chw[0]) {
        return tfx__onnx_unsup(c, n, "transposes a flattened map");
    }
    tfx__onnx_val *y = out_val(c, n, 0);
    if (!y) return TFX_OK;
    relabel(c, n, y, x);
    for (int a = 0; a < x->rank; a++) {
        y->ax[a] = x->ax[perm[a]];
        y->dims[a] = x->dims[perm[a]];
    }
    return TFX_OK;
}

static int op_pad(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    tfx__onnx_val *x;
    int rc = runtime_in(c, n, 0, &x);
    if (!rc) rc = need_nchw(c, n, x);
    if (rc) return rc;
    const tfx__onnx_attr *m = tfx__onnx_attr_find(n, "mode");
    if (m && m->s && strcmp(m->s, "constant")) return tfx__onnx_unsup(c, n, "mode '%s' (only constant)", m->s);
    int64_t pads[8];
    float value = 0.0f;
    if (c->opset < 11) {
        const tfx__onnx_attr *p = tfx__onnx_attr_find(n, "pads");
        if (!p || p->n_ints != 8) return tfx__onnx_unsup(c, n, "pads of a rank-4 tensor must have 8 values");
        for (int k = 0; k < 8; k++) pads[k] = p->ints[k];
        value = tfx__onnx_attr_float(n, "value", 0.0f);
    } else {
        const tfx__onnx_tensor *p, *v;
        if ((rc = const_in(c, n, 1, "pads", &p)) || (rc = const_in(c, n, 2, "constant_value", &v))) return rc;
        if (n->n_inputs > 3 && n->inputs[3][0]) return tfx__onnx_unsup(c, n, "axes input");
        if (!p || p->count != 8) return tfx__onnx_unsup(c, n, "pads of a rank-4 tensor must have 8 values");
        for (int k = 0; k < 8; k++) pads[k] = tfx__onnx_tensor_int(p, (size_t)k);
        if (v) value = tfx__onnx_tensor_float(v, 0);
    }
    if (value != 0.0f) return tfx__onnx_unsup(c, n, "constant value %g (only zeros)", value);
    if (pads[0] || pads[1] || pads[4] || pads[5]) return tfx__onnx_unsup(c, n, "pads the batch or channel axis");
    for (int k = 0; k < 8; k++)
        if (pads[k] < 0 || pads[k] > (1 << 20)) return tfx__onnx_unsup(c, n, "pad of %lld", (long long)pads[k]);
    char name[TFX__NAME_MAX];
    unique_name(c, tfx__onnx_node_label(n), name);
    read_from(c, x->t);
    rc = tfx_model_add_zero_padding2d(c->m, (int)pads[2], (int)pads[6], (int)pads[3], (int)pads[7], name, NULL);
    if ((rc = after_add(c, n, rc))) return rc;
    tfx__onnx_val *y = out_val(c, n, 0);
    set_runtime(c, y, last_tensor(c), 4);
    alias(c, y->t, y->name);
    return TFX_OK;
}

int tfx__onnx_run_node(tfx__onnx_ctx *c, size_t i)
{
    const tfx__onnx_node *n = &c->om->nodes[i];
    const char *op = n->op_type;
    if (strcmp(n->domain, "") && strcmp(n->domain, "ai.onnx"))
        return tfx__onnx_unsup(c, n, "operator of domain '%s' (only the default ONNX domain)", n->domain);
    if (n->n_outputs < 1 || !n->outputs[0][0]) return tfx__onnx_fail(c, n, TFX_EFORMAT, "no output");
    /* before opset 7 these had other semantics (a broadcast attribute, is_test, a shape attribute) */
    static const char *const changed[] = {"Add",     "Sub",     "Mul",   "Div", "Sum", "Gemm", "BatchNormalization",
                                          "Dropout", "Reshape", "Concat"};
    for (size_t k = 0; c->opset < 7 && k < sizeof changed / sizeof changed[0]; k++)
        if (!strcmp(op, changed[k]))
            return tfx__onnx_unsup(c, n, "opset %lld: libtfx reads this operator from opset 7 on", (long long)c->opset);
    int all_const = 1;
    for (size_t k = 0; k < n->n_inputs; k++) {
        tfx__onnx_val *v = in_val(c, n, k);
        if (!v) continue;
        if (v->kind == TFX__ONNX_UNSET)
            return tfx__onnx_unsup(c, n, "input '%s' is not computed by a supported node", v->name);
        if (v->kind != TFX__ONNX_CONST) all_const = 0;
    }
    if (all_const) return tfx__onnx_fold(c, n);
    if (!strcmp(op, "Conv")) return op_conv(c, n);
    if (!strcmp(op, "Gemm")) return op_dense(c, n, 1);
    if (!strcmp(op, "MatMul")) return op_dense(c, n, 0);
    if (!strcmp(op, "BatchNormalization")) return op_batchnorm(c, n);
    if (!strcmp(op, "MaxPool")) return op_pool(c, n, 1);
    if (!strcmp(op, "AveragePool")) return op_pool(c, n, 0);
    if (!strcmp(op, "GlobalAveragePool")) return op_global_pool(c, n, 0);
    if (!strcmp(op, "GlobalMaxPool")) return op_global_pool(c, n, 1);
    if (!strcmp(op, "Add") || !strcmp(op, "Sum")) return op_merge(c, n, 0);
    if (!strcmp(op, "Mul")) return op_merge(c, n, 1);
    if (!strcmp(op, "Concat")) return op_merge(c, n, 2);
    if (!strcmp(op, "Flatten")) return op_flatten(c, n);
    if (!strcmp(op, "Reshape")) return op_reshape(c, n);
    if (!strcmp(op, "Transpose")) return op_transpose(c, n);
    if (!strcmp(op, "Pad")) return op_pad(c, n);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) {
        tfx__onnx_val *x;
        int rc = runtime_in(c, n, 0, &x);
        if (!rc) rc = only_first_output(c, n);
        if (rc) return rc;
        relabel(c, n, out_val(c, n, 0), x);
        return TFX_OK;
    }
    if (is_activation_op(op)) {
        tfx__onnx_val *x;
        int rc = runtime_in(c, n, 0, &x);
        if (rc) return rc;
        act_spec a;
        if ((rc = activation_of(c, n, x, &a, 1))) return rc;
        return add_activation_layer(c, n, x, &a);
    }
    if (!strcmp(op, "Sub") || !strcmp(op, "Div"))
        return tfx__onnx_unsup(c, n,
                               "a constant operand that cannot be folded into the Conv/Gemm before it, or two "
                               "computed operands (libtfx has no subtraction or division layer)");
    return tfx__onnx_unsup(c, n, "operator not supported (docs/onnx.md lists the supported ones)");
}

int tfx__onnx_finish(tfx__onnx_ctx *c)
{
    tfx__onnx_val *y = c->output;
    if (y->kind == TFX__ONNX_CONST)
        return tfx__error(TFX_ENOTSUP, "%s: the graph output '%s' is a constant", c->fn, y->name);
    if (c->m->n_layers == 0 || y->kind != TFX__ONNX_RUNTIME)
        return tfx__error(TFX_ENOTSUP,
                          "%s: the graph output '%s' is computed by no layer (the graph only relabels its "
                          "input)",
                          c->fn, y->name);
    if (y->t != last_tensor(c))
        return tfx__error(TFX_ENOTSUP, "%s: the graph output '%s' is not the last layer's output", c->fn, y->name);
    if (y->chw[0])
        return tfx__error(TFX_ENOTSUP,
                          "%s: the graph output '%s' is a flattened NCHW map in C,H,W order; libtfx would give it in "
                          "H,W,C order",
                          c->fn, y->name);
    /* channels first or last, the positions in order: libtfx's NHWC output is that tensor
     * (channels first: transposed, as the input) */
    int first = y->ax[1] == TFX__AX_C, last = y->ax[y->rank - 1] == TFX__AX_C, prev = 0;
    for (int a = 1; a < y->rank; a++) {
        if (y->ax[a] == TFX__AX_C) continue;
        if (y->ax[a] < prev) first = last = 0;
        prev = y->ax[a];
    }
    if (y->rank >= 3 && !first && !last)
        return tfx__error(TFX_ENOTSUP, "%s: the graph output '%s' has permuted axes", c->fn, y->name);
    int rc = tfx__model_check_graph(c->m);
    if (rc) return tfx__error_prefix("%s", c->fn);
    c->m->skip_init = 0; /* layers the caller adds later are initialised as usual */
    return TFX_OK;
}
