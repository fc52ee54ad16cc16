/* Layer-wise relevance propagation (LRP) rules for the layers that change relevance (Conv2D,
 * Dense, pooling, BatchNormalization). A layer's backward calls these when rule->kind is an
 * LRP rule; dy then holds the relevance of the layer's output and dx receives the relevance of
 * its input. Elementwise activations pass relevance through (lib/core/activation.c), Flatten
 * and Dropout (inference) are the identity, MaxPooling2D is winner-take-all (its gradient).
 * docs/methods.md has the formulas. */
#ifndef TFX_LAYERS_LRP_H
#define TFX_LAYERS_LRP_H

#include "layers/layer.h"

/* "LRP-epsilon", ... for messages. */
const char *tfx__rule_name(int kind);

/* Conv2D and Dense: the rule's formula over the layer's linear map (kernel, bias). */
int tfx__lrp_linear(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule);

/* AveragePooling2D, GlobalAveragePooling2D and BatchNormalization (inference): the z-rule
 * R_in = x * J^T (R / stab(y)), J the layer's own (linear) backward; BatchNormalization passes
 * relevance through unchanged under z+, alpha-beta and zB. zB on pooling is TFX_ENOTSUP. */
int tfx__lrp_elementwise_linear(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                                float *dy, float *dx, size_t n, int flags, const tfx__rule *rule);

#endif
