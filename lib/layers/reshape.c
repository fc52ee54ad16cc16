/* Reshape: the same values in the same (NHWC) order under another (h, w, c) shape, so like
 * Flatten the output aliases the input and neither pass does any work. The target is stored
 * resolved (Keras's -1 is inferred by the add function). */
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    const tfx__layer_config *c = &l->cfg;
    const double want = (double)c->kernel_h * c->kernel_w * c->filters;
    if (want != (double)tfx__shape_size(in))
        return tfx__error(TFX_ESHAPE, "target shape %dx%dx%d has %.0f values, the input %dx%dx%d has %zu", c->kernel_h,
                          c->kernel_w, c->filters, want, in.h, in.w, in.c, tfx__shape_size(in));
    *out = (tfx__shape){c->kernel_h, c->kernel_w, c->filters, 0};
    return TFX_OK;
}

/* File record (12 bytes): target height, width, channels (each 1..2^20). */
enum { CONFIG_BYTES = 12 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    tfx__put_i32(b, l->cfg.kernel_h);
    tfx__put_i32(b + 4, l->cfg.kernel_w);
    tfx__put_i32(b + 8, l->cfg.filters);
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->kernel_h = tfx__get_i32(b);
    c->kernel_w = tfx__get_i32(b + 4);
    c->filters = tfx__get_i32(b + 8);
    if ((rc = tfx__config_range("height", c->kernel_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("width", c->kernel_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("channels", c->filters, 1, TFX__MAX_DIM)))
        return rc;
    return TFX_OK;
}

const tfx__layer_ops tfx__reshape_ops = {
    .kind = TFX_LAYER_RESHAPE,
    .traits = TFX__TRAIT_INFERENCE_IDENTITY,
    .base_name = "reshape",
    .type_name = "Reshape",
    .alias_output = 1,
    .infer = infer,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
};
