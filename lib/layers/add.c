/* Add (Keras Add, ResNet's shortcut): the element-wise sum of two or more inputs of one shape.
 * The gradient reaches every input unchanged; under LRP rules the relevance is split in
 * proportion to each input's contribution, epsilon-stabilised. */
#include <stdio.h>

#include "layers/layer.h"

static void shape_text(tfx__shape s, char *out, size_t cap)
{
    if (s.flat) snprintf(out, cap, "(%d)", s.c);
    else snprintf(out, cap, "%dx%dx%d", s.h, s.w, s.c);
}

static int infer_n(tfx_layer *l, const tfx__shape *ins, size_t k, tfx__shape *out)
{
    (void)l;
    for (size_t j = 1; j < k; j++)
        if (ins[j].h != ins[0].h || ins[j].w != ins[0].w || ins[j].c != ins[0].c || ins[j].flat != ins[0].flat) {
            char a[64], b[64];
            shape_text(ins[0], a, sizeof a);
            shape_text(ins[j], b, sizeof b);
            return tfx__error(TFX_ESHAPE, "input 0 has shape %s and input %zu has shape %s: Add needs equal shapes", a,
                              j, b);
        }
    *out = ins[0];
    return TFX_OK;
}

static int forward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, float *y, size_t n)
{
    (void)run;
    const size_t count = n * tfx__shape_size(l->out);
    for (size_t q = 0; q < count; q++) y[q] = xs[0][q] + xs[1][q];
    for (size_t j = 2; j < l->n_inputs; j++)
        for (size_t q = 0; q < count; q++) y[q] += xs[j][q];
    return TFX_OK;
}

static int backward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, const float *y, float *dy,
                      float *const *dxs, size_t n, int flags, const tfx__rule *rule)
{
    (void)run;
    (void)flags;
    const size_t count = n * tfx__shape_size(l->out), k = l->n_inputs;
    if (!rule || rule->kind < TFX__RULE_LRP_0) {
        for (size_t j = 0; j < k; j++)
            if (dxs[j]) memcpy(dxs[j], dy, count * sizeof(float));
        return TFX_OK;
    }
    /* R_j = x_j / (z + eps sign(z)) R with z = sum_j x_j = y (eps 0 for LRP-0); the other LRP
     * rules treat Add as LRP-epsilon (it has no weights to split into positive and negative). */
    const float eps = rule->kind == TFX__RULE_LRP_0 ? 0.0f : rule->epsilon;
    for (size_t q = 0; q < count; q++) {
        const float z = y[q], d = z + (z >= 0.0f ? eps : -eps);
        const float s = d != 0.0f ? dy[q] / d : 0.0f;
        for (size_t j = 0; j < k; j++)
            if (dxs[j]) dxs[j][q] = xs[j][q] * s;
    }
    return TFX_OK;
}

/* No configuration: the file's record is empty. */
static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    (void)b;
    (void)c;
    return TFX_OK;
}

const tfx__layer_ops tfx__add_ops = {
    .kind = TFX_LAYER_ADD,
    .traits = TFX__TRAIT_MULTI_INPUT,
    .base_name = "add",
    .type_name = "Add",
    .infer_n = infer_n,
    .forward_n = forward_n,
    .backward_n = backward_n,
    .config_read = config_read,
};
