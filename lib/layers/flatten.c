/* Flatten: NHWC memory already is Keras's (h, w, c) flattening, so the output aliases the
 * input and neither pass does any work. */
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = (tfx__shape){1, 1, (int)tfx__shape_size(in), 1};
    return TFX_OK;
}

/* No configuration: the file's record is empty. */
static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    (void)b;
    (void)c;
    return TFX_OK;
}

const tfx__layer_ops tfx__flatten_ops = {
    .kind = TFX_LAYER_FLATTEN,
    .traits = TFX__TRAIT_INFERENCE_IDENTITY,
    .base_name = "flatten",
    .type_name = "Flatten",
    .alias_output = 1,
    .infer = infer,
    .config_read = config_read,
};
