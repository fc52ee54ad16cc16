/* Activation layer: an elementwise activation (softmax over the channel axis). */
#include "model/model_internal.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

static int forward(tfx_layer *l, const float *x, float *y, size_t n, int training)
{
    (void)training;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    tfx__activation_forward(l->cfg.activation, l->cfg.alpha, x, y, rows, cols);
    return TFX_OK;
}

static int backward(tfx_layer *l, const float *x, const float *y, float *dy, float *dx, size_t n, int flags,
                    const tfx__rule *rule)
{
    if (!dx) return TFX_OK;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    if (flags & TFX__BW_SKIP_ACTIVATION) {
        for (size_t i = 0; i < rows * cols; i++) dx[i] = dy[i];
        return TFX_OK;
    }
    return tfx__activation_backward(l->cfg.activation, l->cfg.alpha, x, y, dy, dx, rows, cols, rule);
}

const tfx__layer_ops tfx__activation_ops = {
    .kind = TFX_LAYER_ACTIVATION,
    .traits = TFX__TRAIT_ACTIVATION | TFX__TRAIT_FEATURE_MAP,
    .base_name = "activation",
    .type_name = "Activation",
    .infer = infer,
    .forward = forward,
    .backward = backward,
};
