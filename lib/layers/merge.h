/* What the multi-input kinds (Add, Concatenate, Multiply; lib/layers/merge.c) share: shape
 * messages that name inputs by index (the model adds the layer names), the empty configuration
 * record, and the rule test. */
#ifndef TFX_LAYERS_MERGE_H
#define TFX_LAYERS_MERGE_H

#include "layers/layer.h"

/* "8x8x16" for a feature map, "flat 16" for a rank-2 tensor; buf needs 48 bytes. */
const char *tfx__shape_str(tfx__shape s, char *buf, size_t cap);

/* TFX_ESHAPE "input j has shape A, input ref has B: <type> needs <needs>" (the message always
 * starts with "input j", then "input ref", so the model can name the layers by index). */
int tfx__merge_mismatch(const char *type, const tfx__shape *ins, size_t j, size_t ref, const char *needs);

/* TFX_EINVAL unless k >= 2 (the model checks first; the layers do not trust it). */
int tfx__merge_check_count(const char *type, size_t k);

/* The empty configuration record. */
int tfx__merge_config_read(const uint8_t *src, tfx__layer_config *cfg);

/* A relevance rule (LRP), not the gradient or a guided/deconvnet rule (those act at activations
 * only: here they are the gradient). NULL: the gradient. */
static inline int tfx__rule_is_lrp(const tfx__rule *rule) { return rule && rule->kind >= TFX__RULE_LRP_0; }

#endif
