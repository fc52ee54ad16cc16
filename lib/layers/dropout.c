/* Dropout: inverted dropout with a mask drawn from the model's seeded generator in
 * training; the identity otherwise. */
#include <string.h>

#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

static size_t cache_floats(const tfx_layer *l, size_t n) { return n * tfx__shape_size(l->in); }

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    size_t total = n * tfx__shape_size(l->in);
    if (!run->training || l->cfg.rate == 0.0f) {
        memcpy(y, x, total * sizeof(float));
        return TFX_OK;
    }
    const float keep_scale = 1.0f / (1.0f - l->cfg.rate);
    tfx__rng *rng = run->rng;
    for (size_t i = 0; i < total; i++) {
        float m = tfx__rng_uniform(rng) >= (double)l->cfg.rate ? keep_scale : 0.0f;
        l->cache[i] = m;
        y[i] = x[i] * m;
    }
    return TFX_OK;
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    (void)x;
    (void)y;
    (void)flags;
    (void)rule;
    if (!dx) return TFX_OK;
    size_t total = n * tfx__shape_size(l->in);
    if (!run->training || l->cfg.rate == 0.0f) {
        memcpy(dx, dy, total * sizeof(float));
        return TFX_OK;
    }
    for (size_t i = 0; i < total; i++) dx[i] = dy[i] * l->cache[i];
    return TFX_OK;
}

/* File record (4 bytes): rate. */
enum { CONFIG_BYTES = 4 };

static void config_write(const tfx_layer *l, uint8_t *b) { tfx__put_f32(b, l->cfg.rate); }

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    c->rate = tfx__get_f32(b);
    if (!(c->rate >= 0.0f && c->rate < 1.0f))
        return tfx__error(TFX_EFORMAT, "dropout rate %g is not in [0, 1)", (double)c->rate);
    return TFX_OK;
}

const tfx__layer_ops tfx__dropout_ops = {
    .kind = TFX_LAYER_DROPOUT,
    .traits = TFX__TRAIT_INFERENCE_IDENTITY,
    .base_name = "dropout",
    .type_name = "Dropout",
    .infer = infer,
    .cache_floats = cache_floats,
    .forward = forward,
    .backward = backward,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .box_forward = tfx__box_copy, /* the identity at inference */
};
