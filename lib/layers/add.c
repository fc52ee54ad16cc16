/* Add (Keras's merging layer): the element-wise sum of k >= 2 inputs of one shape (ResNet's
 * shortcut). The gradient of every input is the output's. LRP splits the relevance in proportion
 * to each input's contribution, epsilon-stabilised (Add is a linear map with unit weights and no
 * bias, so this is LRP-epsilon over it):
 *     R_j = x_j * R / (z + eps * sign(z)),  z = sum_k x_k,  sign(0) = +1,
 * with eps = 0 under LRP-0 and the rule's epsilon under LRP-epsilon; z+, alpha-beta and zB have
 * no meaning of their own for a sum of inputs and use the same formula with the rule's epsilon
 * (docs/methods.md). Where the stabilised z is 0 nothing is passed down (as lrp.c). With eps = 0
 * and z != 0 the input relevances add up to R. */
#include <math.h>
#include <string.h>

#include "layers/merge.h"

static int infer_n(tfx_layer *l, const tfx__shape *ins, size_t k, tfx__shape *out)
{
    (void)l;
    int rc = tfx__merge_check_count("Add", k);
    if (rc) return rc;
    for (size_t j = 1; j < k; j++)
        if (ins[j].h != ins[0].h || ins[j].w != ins[0].w || ins[j].c != ins[0].c || ins[j].flat != ins[0].flat)
            return tfx__merge_mismatch("Add", ins, j, 0, "equal shapes");
    *out = ins[0];
    return TFX_OK;
}

static int forward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, float *y, size_t n)
{
    (void)run;
    /* (x_0 + x_1) + x_2 + ... in input order, as PyTorch's chain of additions. Plain loops: a
     * memory-bound pass (16x56x56x64: 1.8 ms on one thread, 1.7 ms on two). */
    const size_t total = n * tfx__shape_size(l->out);
    const float *a = xs[0], *b = xs[1];
    for (size_t i = 0; i < total; i++) y[i] = a[i] + b[i];
    for (size_t j = 2; j < l->n_inputs; j++) {
        const float *x = xs[j];
        for (size_t i = 0; i < total; i++) y[i] += x[i];
    }
    return TFX_OK;
}

static int backward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, const float *y, float *dy,
                      float *const *dxs, size_t n, int flags, const tfx__rule *rule)
{
    (void)run, (void)flags;
    const size_t total = n * tfx__shape_size(l->out), k = l->n_inputs;
    if (!tfx__rule_is_lrp(rule)) {
        for (size_t j = 0; j < k; j++)
            if (dxs[j]) memcpy(dxs[j], dy, total * sizeof(float));
        return TFX_OK;
    }
    const float eps = rule->kind == TFX__RULE_LRP_0 ? 0.0f : rule->epsilon;
    if (!(eps >= 0.0f && isfinite(eps)))
        return tfx__error(TFX_EINVAL, "layer '%s' (Add): LRP needs a finite epsilon >= 0 (got %g)", l->name,
                          (double)eps);
    /* y is the forward's sum z; s = R / stab(z) a block at a time, then each input's share. */
    enum { BLOCK = 256 };
    float s[BLOCK];
    for (size_t i0 = 0; i0 < total; i0 += BLOCK) {
        const size_t m = total - i0 < BLOCK ? total - i0 : BLOCK;
        for (size_t i = 0; i < m; i++) {
            const float z = y[i0 + i], d = z + (z >= 0.0f ? eps : -eps);
            s[i] = d != 0.0f ? dy[i0 + i] / d : 0.0f;
        }
        for (size_t j = 0; j < k; j++) {
            if (!dxs[j]) continue;
            const float *x = xs[j] + i0;
            float *dx = dxs[j] + i0;
            for (size_t i = 0; i < m; i++) dx[i] = x[i] * s[i];
        }
    }
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
    .config_read = tfx__merge_config_read,
};
