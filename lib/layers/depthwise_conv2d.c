/* DepthwiseConv2D: each input channel convolved with its own depth_multiplier filters (Keras
 * kernel [kh][kw][in][multiplier], output channel c * multiplier + m). It is a Conv2D with
 * groups = in and filters = in * multiplier, and runs as one (layers/conv2d.h: the direct
 * grouped kernels, LRP through the same map); this file has what differs: shape inference,
 * Keras's initialiser fans and the file record. */
#include <math.h>
#include <string.h>

#include "layers/conv2d.h"
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "DepthwiseConv2D needs an image input (h, w, c), got a flat tensor of %d",
                          in.c);
    if ((double)in.c * l->cfg.depth_multiplier > TFX__MAX_DIM)
        return tfx__error(TFX_ESHAPE, "%d channels x depth_multiplier %d is more than %d output channels", in.c,
                          l->cfg.depth_multiplier, TFX__MAX_DIM);
    l->cfg.groups = in.c;
    l->cfg.filters = in.c * l->cfg.depth_multiplier;
    return tfx__conv2d_infer(l, in, out);
}

/* glorot_uniform on Keras's [kh][kw][in][multiplier]: fan_in = kh kw in, fan_out = kh kw
 * multiplier; zero bias. */
static void init(tfx_layer *l, tfx__rng *rng)
{
    const double taps = (double)l->cfg.kernel_h * l->cfg.kernel_w;
    const double limit = sqrt(6.0 / (taps * l->in.c + taps * l->cfg.depth_multiplier));
    float *w = tfx__layer_params(l);
    const size_t nk = (size_t)l->cfg.kernel_h * l->cfg.kernel_w * (size_t)l->cfg.filters;
    for (size_t i = 0; i < nk; i++) w[i] = (float)((2.0 * tfx__rng_uniform(rng) - 1.0) * limit);
    if (l->cfg.use_bias) memset(w + nk, 0, (size_t)l->cfg.filters * sizeof(float));
}

/* File record (56 bytes): kernel_h, kernel_w, stride_h, stride_w, padding, depth_multiplier,
 * activation, alpha (clip: min), use_bias, clip max (0 unless clip), pad top, bottom, left,
 * right (0 unless explicit). */
enum { CONFIG_BYTES = 56 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    const tfx__layer_config *c = &l->cfg;
    const int ex = c->padding == TFX_PADDING_EXPLICIT;
    tfx__put_i32(b, c->kernel_h);
    tfx__put_i32(b + 4, c->kernel_w);
    tfx__put_i32(b + 8, c->stride_h);
    tfx__put_i32(b + 12, c->stride_w);
    tfx__put_i32(b + 16, c->padding);
    tfx__put_i32(b + 20, c->depth_multiplier);
    tfx__put_i32(b + 24, c->activation);
    tfx__put_f32(b + 28, c->alpha);
    tfx__put_i32(b + 32, c->use_bias != 0);
    tfx__put_f32(b + 36, c->activation == TFX_ACTIVATION_CLIP ? c->beta : 0.0f);
    tfx__put_i32(b + 40, ex ? c->pad_top : 0);
    tfx__put_i32(b + 44, ex ? c->pad_bottom : 0);
    tfx__put_i32(b + 48, ex ? c->pad_left : 0);
    tfx__put_i32(b + 52, ex ? c->pad_right : 0);
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->kernel_h = tfx__get_i32(b);
    c->kernel_w = tfx__get_i32(b + 4);
    c->stride_h = tfx__get_i32(b + 8);
    c->stride_w = tfx__get_i32(b + 12);
    c->padding = tfx__get_i32(b + 16);
    c->depth_multiplier = tfx__get_i32(b + 20);
    c->activation = tfx__get_i32(b + 24);
    c->alpha = tfx__get_f32(b + 28);
    c->use_bias = tfx__get_i32(b + 32);
    c->beta = tfx__get_f32(b + 36);
    c->pad_top = tfx__get_i32(b + 40);
    c->pad_bottom = tfx__get_i32(b + 44);
    c->pad_left = tfx__get_i32(b + 48);
    c->pad_right = tfx__get_i32(b + 52);
    if ((rc = tfx__config_range("kernel_h", c->kernel_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("kernel_w", c->kernel_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_h", c->stride_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_w", c->stride_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_padding(c)) ||
        (rc = tfx__config_range("depth_multiplier", c->depth_multiplier, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_fused_activation(c)) ||
        (rc = tfx__config_range("use_bias", c->use_bias, 0, 1)))
        return rc;
    return TFX_OK;
}

const tfx__layer_ops tfx__depthwise_conv2d_ops = {
    .kind = TFX_LAYER_DEPTHWISE_CONV2D,
    .traits = TFX__TRAIT_FUSED_ACTIVATION | TFX__TRAIT_FEATURE_MAP | TFX__TRAIT_WEIGHTED | TFX__TRAIT_CONVOLUTION |
              TFX__TRAIT_WINDOW,
    .base_name = "depthwise_conv2d",
    .type_name = "DepthwiseConv2D",
    .infer = infer,
    .counts = tfx__conv2d_counts,
    .init = init,
    .scratch_floats = tfx__conv2d_scratch_floats,
    .forward = tfx__conv2d_forward,
    .backward = tfx__conv2d_backward,
    .weight_sizes = tfx__conv2d_weight_sizes,
    .set_weights = tfx__conv2d_set_weights,
    .get_weights = tfx__conv2d_get_weights,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .box_forward = tfx__conv2d_box_forward,
    .box_scratch = tfx__conv2d_box_scratch,
    .box_cost = tfx__conv2d_box_cost,
};
