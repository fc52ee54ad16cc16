/* Multiply (Keras's merging layer): the element-wise product of k >= 2 inputs. Inputs of the
 * output's shape are "full"; an input of 1x1xC (or flat C) beside full feature maps of C
 * channels is a gate, broadcast over their height and width (squeeze-and-excitation). At least
 * one input is full; all full inputs have one shape.
 * Gradient: dx_j = dy * prod_{k != j} x_k; a gate's sums over the height and width.
 * LRP: the product is not a linear map of its inputs; following Arras et al. (2017, LSTM gates),
 * all relevance goes to the first full input (the signal) and none to the others (the gate and
 * any further factor), so it is conserved. */
#include <string.h>

#include "layers/merge.h"

static int same_shape(tfx__shape a, tfx__shape b)
{
    return a.h == b.h && a.w == b.w && a.c == b.c && a.flat == b.flat;
}

static int infer_n(tfx_layer *l, const tfx__shape *ins, size_t k, tfx__shape *out)
{
    (void)l;
    int rc = tfx__merge_check_count("Multiply", k);
    if (rc) return rc;
    static const char needs[] = "equal shapes, or a 1x1xC gate beside feature maps of C channels";
    size_t ref = 0; /* the first of the largest height x width: the full shape */
    for (size_t j = 1; j < k; j++)
        if ((size_t)ins[j].h * (size_t)ins[j].w > (size_t)ins[ref].h * (size_t)ins[ref].w) ref = j;
    if ((size_t)ins[ref].h * (size_t)ins[ref].w == 1) { /* all 1x1 or flat: nothing to broadcast */
        for (size_t j = 1; j < k; j++)
            if (!same_shape(ins[j], ins[0])) return tfx__merge_mismatch("Multiply", ins, j, 0, needs);
        *out = ins[0];
        return TFX_OK;
    }
    for (size_t j = 0; j < k; j++) {
        if (same_shape(ins[j], ins[ref])) continue;
        if (ins[j].h == 1 && ins[j].w == 1 && ins[j].c == ins[ref].c) continue; /* a gate */
        return tfx__merge_mismatch("Multiply", ins, j, ref, needs);
    }
    *out = ins[ref];
    return TFX_OK;
}

/* Input j is broadcast (infer_n: full inputs have the output's size, a gate is smaller). */
static int is_gate(const tfx_layer *l, size_t j) { return tfx__shape_size(l->in_shapes[j]) != tfx__shape_size(l->out); }

static int has_gate(const tfx_layer *l)
{
    for (size_t j = 0; j < l->n_inputs; j++)
        if (is_gate(l, j)) return 1;
    return 0;
}

/* t (one sample, P x C) = t * x_j's sample b, or x_j's sample b when assign. */
static void apply(const tfx_layer *l, size_t j, const float *x, size_t b, float *t, int assign)
{
    const size_t C = (size_t)l->out.c, P = (size_t)l->out.h * (size_t)l->out.w, S = P * C;
    if (is_gate(l, j)) {
        const float *g = x + b * C;
        for (size_t p = 0; p < P; p++) {
            float *r = t + p * C;
            if (assign)
                memcpy(r, g, C * sizeof(float));
            else
                for (size_t c = 0; c < C; c++) r[c] *= g[c];
        }
    } else {
        const float *v = x + b * S;
        if (assign)
            memcpy(t, v, S * sizeof(float));
        else
            for (size_t i = 0; i < S; i++) t[i] *= v[i];
    }
}

/* The product in input order, x_0 * x_1 * ..., as PyTorch's chain of multiplications. */
static int forward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, float *y, size_t n)
{
    (void)run;
    const size_t S = tfx__shape_size(l->out);
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < l->n_inputs; j++) apply(l, j, xs[j], b, y + b * S, j == 0);
    return TFX_OK;
}

static size_t scratch_floats(const tfx_layer *l, size_t n)
{
    (void)n;
    return has_gate(l) ? tfx__shape_size(l->out) : 0; /* one sample's product, summed into a gate's gradient */
}

static int backward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, const float *y, float *dy,
                      float *const *dxs, size_t n, int flags, const tfx__rule *rule)
{
    (void)y, (void)flags;
    const size_t k = l->n_inputs, C = (size_t)l->out.c, P = (size_t)l->out.h * (size_t)l->out.w, S = P * C;
    if (tfx__rule_is_lrp(rule)) {
        size_t signal = 0;
        while (is_gate(l, signal)) signal++; /* infer_n: there is a full input */
        for (size_t j = 0; j < k; j++) {
            if (!dxs[j]) continue;
            if (j == signal)
                memcpy(dxs[j], dy, n * S * sizeof(float));
            else
                memset(dxs[j], 0, n * tfx__shape_size(l->in_shapes[j]) * sizeof(float));
        }
        return TFX_OK;
    }
    float *t = NULL;
    for (size_t j = 0; j < k; j++)
        if (dxs[j] && is_gate(l, j) && !(t = tfx__layer_scratch(l, run, S))) return TFX_ENOMEM;
    for (size_t j = 0; j < k; j++) {
        float *dx = dxs[j];
        if (!dx) continue;
        const int gate = is_gate(l, j);
        for (size_t b = 0; b < n; b++) {
            /* dy times every other factor; a full input's gradient is built in place */
            float *u = gate ? t : dx + b * S;
            memcpy(u, dy + b * S, S * sizeof(float));
            for (size_t q = 0; q < k; q++)
                if (q != j) apply(l, q, xs[q], b, u, 0);
            if (!gate) continue;
            float *g = dx + b * C;
            memcpy(g, u, C * sizeof(float));
            for (size_t p = 1; p < P; p++)
                for (size_t c = 0; c < C; c++) g[c] += u[p * C + c];
        }
    }
    return TFX_OK;
}

const tfx__layer_ops tfx__multiply_ops = {
    .kind = TFX_LAYER_MULTIPLY,
    .traits = TFX__TRAIT_MULTI_INPUT,
    .base_name = "multiply",
    .type_name = "Multiply",
    .scratch_floats = scratch_floats,
    .infer_n = infer_n,
    .forward_n = forward_n,
    .backward_n = backward_n,
    .config_read = tfx__merge_config_read,
};
