/* Activation layer: an elementwise activation (softmax over the channel axis). */
#include <stddef.h>

#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

/* Maps of 2^17 values and more (~40 us of work) are split by rows over the model's threads
 * (every kind works row by row, softmax included, so the result is the same for any split). */
enum { SPLIT_FLOATS = 1 << 17 };

typedef struct act_job {
    const tfx_layer *l;
    const float *x, *y, *dy;
    float *out;
    size_t r0, r1, cols;
    int flags, rc;
    const tfx__rule *rule;
} act_job;

static void forward_job(void *arg)
{
    act_job *J = arg;
    const size_t o = J->r0 * J->cols;
    tfx__activation_forward(J->l->cfg.activation, J->l->cfg.alpha, J->l->cfg.beta, J->x + o, J->out + o, J->r1 - J->r0,
                            J->cols);
}

static void backward_job(void *arg)
{
    act_job *J = arg;
    const size_t o = J->r0 * J->cols, n = (J->r1 - J->r0) * J->cols;
    if (J->flags & TFX__BW_SKIP_ACTIVATION) {
        for (size_t i = 0; i < n; i++) J->out[o + i] = J->dy[o + i];
        return;
    }
    /* a kind whose backward needs no pre-activation may get none (x or y NULL) */
    J->rc = tfx__activation_backward(J->l->cfg.activation, J->l->cfg.alpha, J->l->cfg.beta, J->x ? J->x + o : NULL,
                                     J->y ? J->y + o : NULL, J->dy + o, J->out + o, J->r1 - J->r0, J->cols, J->rule);
}

/* fn over [0, rows) in row slices; the first failure's code (a failure depends on the kind and
 * the rule only, so slice 0, run on the calling thread, fails too and its message is the
 * caller's). */
static int split_rows(void (*fn)(void *), const act_job *proto, size_t rows)
{
    act_job jobs[TFX__MAX_THREADS];
    int threads = tfx__layer_split_rows(fn, jobs, sizeof *jobs, proto, offsetof(act_job, r0), offsetof(act_job, r1),
                                        rows, proto->cols, SPLIT_FLOATS);
    for (int t = 0; t < threads; t++)
        if (jobs[t].rc) return jobs[t].rc;
    return TFX_OK;
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    const act_job proto = {l, x, NULL, NULL, y, 0, 0, cols, 0, TFX_OK, NULL};
    return split_rows(forward_job, &proto, rows);
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    (void)run;
    if (!dx) return TFX_OK;
    size_t cols = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    const act_job proto = {l, x, y, dy, dx, 0, 0, cols, flags, TFX_OK, rule};
    return split_rows(backward_job, &proto, rows);
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
