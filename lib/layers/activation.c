/* Activation layer: an elementwise activation (softmax over the channel axis). */
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    tfx__activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, x, y, rows, cols);
    return TFX_OK;
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    if (!dx) return TFX_OK;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    if (flags & TFX__BW_SKIP_ACTIVATION) {
        for (size_t i = 0; i < rows * cols; i++) dx[i] = dy[i];
        return TFX_OK;
    }
    return tfx__activation_backward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, x, y, dy, dx, rows, cols, rule);
}

/* Occlusion's boxes: per pixel (softmax runs over the channels of one pixel). */
static void box_forward(const tfx_layer *l, const tfx__box_io *io)
{
    tfx__box_copy(l, io);
    tfx__activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, io->out, io->out, io->nb * (size_t)io->bh * io->bw,
                            (size_t)l->in.c);
}

/* File record (12 bytes): activation, alpha (clip: min), beta (clip: max; 0 otherwise). The
 * 8-byte record of libtfx 0.1 (no beta) is written for every activation but clip. */
enum { CONFIG_BYTES = 12, CONFIG_BYTES_SHORT = 8 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    tfx__put_i32(b, l->cfg.activation);
    tfx__put_f32(b + 4, l->cfg.alpha);
    tfx__put_f32(b + 8, l->cfg.activation == TFX_ACTIVATION_CLIP ? l->cfg.beta : 0.0f);
}

static size_t config_size(const tfx_layer *l)
{
    return l->cfg.activation == TFX_ACTIVATION_CLIP ? CONFIG_BYTES : CONFIG_BYTES_SHORT;
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    c->activation = tfx__get_i32(b);
    c->alpha = tfx__get_f32(b + 4);
    c->beta = tfx__get_f32(b + 8);
    int rc = tfx__config_activation(c->activation, c->alpha, c->beta);
    if (rc) return rc;
    if (c->activation != TFX_ACTIVATION_CLIP && c->beta != 0.0f)
        return tfx__error(TFX_EFORMAT, "beta = %g must be 0 for activation %s", (double)c->beta,
                          tfx__activation_name(c->activation));
    if (c->activation != TFX_ACTIVATION_CLIP) /* as tfx_model_add_activation */
        c->alpha = tfx__activation_default_alpha(c->activation, c->alpha);
    return TFX_OK;
}

const tfx__layer_ops tfx__activation_ops = {
    .kind = TFX_LAYER_ACTIVATION,
    .traits = TFX__TRAIT_ACTIVATION | TFX__TRAIT_FEATURE_MAP,
    .base_name = "activation",
    .type_name = "Activation",
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .config_bytes_short = CONFIG_BYTES_SHORT,
    .config_size = config_size,
    .box_forward = box_forward,
};
