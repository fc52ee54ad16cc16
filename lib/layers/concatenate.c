/* Concatenate (Keras's merging layer, axis -1): k >= 2 inputs of one height and width (all
 * feature maps or all flat) side by side along the channels, in input order (DenseNet,
 * Inception). Every rule's backward is the same slicing: the gradient of input j, and under LRP
 * its relevance, is its block of channels of the output's (the map is a permutation, so
 * relevance is conserved exactly). */
#include <string.h>

#include "layers/merge.h"

static int infer_n(tfx_layer *l, const tfx__shape *ins, size_t k, tfx__shape *out)
{
    (void)l;
    int rc = tfx__merge_check_count("Concatenate", k);
    if (rc) return rc;
    long c = 0;
    for (size_t j = 0; j < k; j++) {
        if (ins[j].flat != ins[0].flat)
            return tfx__merge_mismatch("Concatenate", ins, j, 0, "all inputs flat or all feature maps");
        if (ins[j].h != ins[0].h || ins[j].w != ins[0].w)
            return tfx__merge_mismatch("Concatenate", ins, j, 0, "equal height and width (channels may differ)");
        c += ins[j].c;
        if (c > TFX__MAX_DIM)
            return tfx__error(TFX_ESHAPE, "inputs 0 to %zu have %ld channels together: Concatenate's output is "
                              "limited to %d", j, c, TFX__MAX_DIM);
    }
    *out = (tfx__shape){ins[0].h, ins[0].w, (int)c, ins[0].flat};
    return TFX_OK;
}

static int forward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, float *y, size_t n)
{
    (void)run;
    const size_t rows = n * (size_t)l->out.h * (size_t)l->out.w, C = (size_t)l->out.c;
    size_t off = 0;
    for (size_t j = 0; j < l->n_inputs; j++) {
        const size_t cj = (size_t)l->in_shapes[j].c;
        const float *x = xs[j];
        for (size_t r = 0; r < rows; r++) memcpy(y + r * C + off, x + r * cj, cj * sizeof(float));
        off += cj;
    }
    return TFX_OK;
}

static int backward_n(tfx_layer *l, const tfx__layer_run *run, const float *const *xs, const float *y, float *dy,
                      float *const *dxs, size_t n, int flags, const tfx__rule *rule)
{
    (void)run, (void)xs, (void)y, (void)flags, (void)rule;
    const size_t rows = n * (size_t)l->out.h * (size_t)l->out.w, C = (size_t)l->out.c;
    size_t off = 0;
    for (size_t j = 0; j < l->n_inputs; j++) {
        const size_t cj = (size_t)l->in_shapes[j].c;
        float *dx = dxs[j];
        if (dx)
            for (size_t r = 0; r < rows; r++) memcpy(dx + r * cj, dy + r * C + off, cj * sizeof(float));
        off += cj;
    }
    return TFX_OK;
}

const tfx__layer_ops tfx__concatenate_ops = {
    .kind = TFX_LAYER_CONCATENATE,
    .traits = TFX__TRAIT_MULTI_INPUT,
    .base_name = "concatenate",
    .type_name = "Concatenate",
    .infer_n = infer_n,
    .forward_n = forward_n,
    .backward_n = backward_n,
    .config_read = tfx__merge_config_read,
};
