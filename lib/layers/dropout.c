/* Dropout: inverted dropout with a mask drawn from the model's seeded generator in
 * training; the identity otherwise. */
#include <string.h>

#include "model/model_internal.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

static size_t cache_floats(const tfx_layer *l, size_t n) { return n * tfx__shape_size(l->in); }

static int forward(tfx_layer *l, const float *x, float *y, size_t n, int training)
{
    size_t total = n * tfx__shape_size(l->in);
    if (!training || l->cfg.rate == 0.0f) {
        memcpy(y, x, total * sizeof(float));
        return TFX_OK;
    }
    const float keep_scale = 1.0f / (1.0f - l->cfg.rate);
    tfx__rng *rng = &l->model->rng;
    for (size_t i = 0; i < total; i++) {
        float m = tfx__rng_uniform(rng) >= (double)l->cfg.rate ? keep_scale : 0.0f;
        l->cache[i] = m;
        y[i] = x[i] * m;
    }
    return TFX_OK;
}

static int backward(tfx_layer *l, const float *x, const float *y, float *dy, float *dx, size_t n, int flags,
                    const tfx__rule *rule)
{
    (void)x;
    (void)y;
    (void)flags;
    (void)rule;
    if (!dx) return TFX_OK;
    size_t total = n * tfx__shape_size(l->in);
    if (!l->model->cur_training || l->cfg.rate == 0.0f) {
        memcpy(dx, dy, total * sizeof(float));
        return TFX_OK;
    }
    for (size_t i = 0; i < total; i++) dx[i] = dy[i] * l->cache[i];
    return TFX_OK;
}

const tfx__layer_ops tfx__dropout_ops = {
    .kind = TFX_LAYER_DROPOUT,
    .traits = 0,
    .base_name = "dropout",
    .type_name = "Dropout",
    .infer = infer,
    .cache_floats = cache_floats,
    .forward = forward,
    .backward = backward,
};
