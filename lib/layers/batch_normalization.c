/* BatchNormalization over the last (channel) axis. Training normalises with the batch's
 * biased variance and updates the moving statistics with the unbiased one (as TensorFlow's
 * fused kernel and PyTorch do); inference uses the moving statistics. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/lrp.h"

/* Trainable layout: [gamma if scale][beta if center]; state: [moving_mean][moving_var].
 * Cache: xhat (n * size), then batch mean (c) and inverse std (c). */

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    *out = in;
    return TFX_OK;
}

static void counts(const tfx_layer *l, size_t *trainable, size_t *state)
{
    size_t C = (size_t)l->in.c;
    *trainable = (l->cfg.scale ? C : 0) + (l->cfg.center ? C : 0);
    *state = 2 * C;
}

static void init(tfx_layer *l, tfx__rng *rng)
{
    (void)rng;
    size_t C = (size_t)l->in.c;
    float *p = tfx__layer_params(l);
    if (l->cfg.scale)
        for (size_t c = 0; c < C; c++) p[c] = 1.0f;
    if (l->cfg.center) memset(p + (l->cfg.scale ? C : 0), 0, C * sizeof(float));
    memset(l->state, 0, C * sizeof(float));
    for (size_t c = 0; c < C; c++) l->state[C + c] = 1.0f;
}

static size_t cache_floats(const tfx_layer *l, size_t n) { return n * tfx__shape_size(l->in) + 2 * (size_t)l->in.c; }

static float gamma_of(const tfx_layer *l, size_t c) { return l->cfg.scale ? tfx__layer_params(l)[c] : 1.0f; }
static float beta_of(const tfx_layer *l, size_t c)
{
    return l->cfg.center ? tfx__layer_params(l)[(l->cfg.scale ? (size_t)l->in.c : 0) + c] : 0.0f;
}

/* y = gamma (x - mean) invstd + beta for channels c0 .. c0 + cn - 1 of rows pixels (mean and
 * invstd indexed from c0); xhat (may be NULL) keeps the normalised values for backward; y may
 * equal x. The per-channel constants are copied to local arrays so the loops vectorise, and the
 * rows of maps of 2^17 values and more (~40 us of work: smaller ones are not worth a hand-off to
 * a worker) are split over the model's threads (each value computed alone: the same result for
 * any split). */
enum { BN_CHUNK = 256, BN_SPLIT = 1 << 17 };

typedef struct bn_job {
    const tfx_layer *l;
    size_t c0, cn, r0, r1;
    const float *mean, *invstd, *x, *dy;
    float *xhat, *y, *dx;
} bn_job;

TFX__CLONES static void apply_rows(const bn_job *J)
{
    const tfx_layer *l = J->l;
    const size_t C = (size_t)l->in.c;
    float m[BN_CHUNK], s[BN_CHUNK], g[BN_CHUNK], b[BN_CHUNK];
    for (size_t k0 = 0; k0 < J->cn; k0 += BN_CHUNK) {
        const size_t cn = J->cn - k0 < BN_CHUNK ? J->cn - k0 : BN_CHUNK, c0 = J->c0 + k0;
        for (size_t k = 0; k < cn; k++) {
            m[k] = J->mean[k0 + k];
            s[k] = J->invstd[k0 + k];
            g[k] = gamma_of(l, c0 + k);
            b[k] = beta_of(l, c0 + k);
        }
        for (size_t r = J->r0; r < J->r1; r++) {
            const float *xr = J->x + r * C + c0;
            float *yr = J->y + r * C + c0;
            if (J->xhat) {
                float *hr = J->xhat + r * C + c0;
                for (size_t k = 0; k < cn; k++) {
                    float h = (xr[k] - m[k]) * s[k];
                    hr[k] = h;
                    yr[k] = g[k] * h + b[k];
                }
            } else {
                for (size_t k = 0; k < cn; k++) {
                    float h = (xr[k] - m[k]) * s[k];
                    yr[k] = g[k] * h + b[k];
                }
            }
        }
    }
}

/* dx = dy gamma invstd (inference: the statistics are constants), same split. */
TFX__CLONES static void scale_rows(const bn_job *J)
{
    const tfx_layer *l = J->l;
    const size_t C = (size_t)l->in.c;
    float s[BN_CHUNK], g[BN_CHUNK];
    for (size_t c0 = 0; c0 < C; c0 += BN_CHUNK) {
        const size_t cn = C - c0 < BN_CHUNK ? C - c0 : BN_CHUNK;
        for (size_t k = 0; k < cn; k++) {
            s[k] = J->invstd[c0 + k];
            g[k] = gamma_of(l, c0 + k);
        }
        for (size_t r = J->r0; r < J->r1; r++) {
            const float *d = J->dy + r * C + c0;
            float *o = J->dx + r * C + c0;
            for (size_t k = 0; k < cn; k++) o[k] = d[k] * g[k] * s[k];
        }
    }
}

static void apply_job(void *arg) { apply_rows(arg); }
static void scale_job(void *arg) { scale_rows(arg); }

/* fn over rows in row slices (one per thread when the work is large). */
static void split_rows(void (*fn)(void *), const bn_job *proto, size_t rows, size_t cols)
{
    bn_job jobs[TFX__MAX_THREADS];
    tfx__layer_split_rows(fn, jobs, sizeof *jobs, proto, offsetof(bn_job, r0), offsetof(bn_job, r1), rows, cols,
                          BN_SPLIT);
}

static void apply(const tfx_layer *l, size_t c0, size_t cn, const float *mean, const float *invstd, const float *x,
                  float *xhat, float *y, size_t rows)
{
    const bn_job proto = {l, c0, cn, 0, 0, mean, invstd, x, NULL, xhat, y, NULL};
    split_rows(apply_job, &proto, rows, cn);
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    const size_t C = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    float *xhat = l->cache, *mean = l->cache + rows * C, *invstd = mean + C;
    float *mm = l->state, *mv = l->state + C;
    if (run->training) {
        for (size_t c = 0; c < C; c++) {
            double s = 0.0;
            for (size_t r = 0; r < rows; r++) s += x[r * C + c];
            double mu = s / (double)rows, v = 0.0;
            for (size_t r = 0; r < rows; r++) {
                double d = x[r * C + c] - mu;
                v += d * d;
            }
            double var = v / (double)rows;
            double unbiased = rows > 1 ? v / (double)(rows - 1) : var;
            mean[c] = (float)mu;
            invstd[c] = (float)(1.0 / sqrt(var + l->cfg.epsilon));
            mm[c] = mm[c] * l->cfg.momentum + (float)mu * (1.0f - l->cfg.momentum);
            mv[c] = mv[c] * l->cfg.momentum + (float)unbiased * (1.0f - l->cfg.momentum);
        }
    } else {
        for (size_t c = 0; c < C; c++) {
            mean[c] = mm[c];
            invstd[c] = 1.0f / sqrtf(mv[c] + l->cfg.epsilon);
        }
    }
    /* Inference keeps no xhat: its backward needs it only for parameter gradients, and then
     * recomputes it from x with the same arithmetic. */
    apply(l, 0, C, mean, invstd, x, run->training ? xhat : NULL, y, rows);
    return TFX_OK;
}

/* Inference (moving statistics) over rows pixels, the forward's arithmetic; y may equal x. */
static void infer_rows(const tfx_layer *l, const float *x, float *y, size_t rows)
{
    enum { CHUNK = 256 };
    const size_t C = (size_t)l->in.c;
    const float *mm = l->state, *mv = l->state + C;
    float invstd[CHUNK];
    for (size_t c0 = 0; c0 < C; c0 += CHUNK) {
        size_t cn = C - c0 < CHUNK ? C - c0 : CHUNK;
        for (size_t k = 0; k < cn; k++) invstd[k] = 1.0f / sqrtf(mv[c0 + k] + l->cfg.epsilon); /* as forward */
        apply(l, c0, cn, mm + c0, invstd, x, NULL, y, rows);
    }
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    if (rule->kind >= TFX__RULE_LRP_0) return tfx__lrp_elementwise_linear(l, run, x, y, dy, dx, n, flags, rule);
    const size_t C = (size_t)l->in.c, rows = n * l->in.h * l->in.w;
    const float *xhat = l->cache, *mean = l->cache + rows * C, *invstd = mean + C;
    const int grads = (flags & TFX__BW_PARAM_GRADS) != 0;
    if (!run->training && !grads) { /* an explainer's pass: a per-channel scale */
        if (dx) {
            const bn_job proto = {l, 0, C, 0, 0, mean, invstd, NULL, dy, NULL, NULL, dx};
            split_rows(scale_job, &proto, rows, C);
        }
        return TFX_OK;
    }
    /* Per-channel sums in double, from the model workspace (C may be large). */
    double *sum_dy = (double *)tfx__layer_scratch(l, run, 4 * C);
    if (!sum_dy) return TFX_ENOMEM;
    double *sum_dy_xhat = sum_dy + C;
    for (size_t c = 0; c < C; c++) sum_dy[c] = sum_dy_xhat[c] = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < C; c++) {
            /* inference forwards keep no xhat: the forward's arithmetic again */
            const float h = run->training ? xhat[r * C + c] : (x[r * C + c] - mean[c]) * invstd[c];
            sum_dy[c] += dy[r * C + c];
            sum_dy_xhat[c] += (double)dy[r * C + c] * h;
        }
    if (grads) {
        float *g = tfx__layer_grads(l);
        size_t off = 0;
        if (l->cfg.scale) {
            for (size_t c = 0; c < C; c++) g[c] = (float)sum_dy_xhat[c];
            off = C;
        }
        if (l->cfg.center)
            for (size_t c = 0; c < C; c++) g[off + c] = (float)sum_dy[c];
    }
    if (!dx) return TFX_OK;
    if (run->training) {
        /* dx = gamma * invstd / M * (M dy - sum(dy) - xhat sum(dy xhat)) */
        const double M = (double)rows;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < C; c++) {
                size_t i = r * C + c;
                double v = M * dy[i] - sum_dy[c] - xhat[i] * sum_dy_xhat[c];
                dx[i] = (float)(gamma_of(l, c) * invstd[c] / M * v);
            }
    } else {
        const bn_job proto = {l, 0, C, 0, 0, mean, invstd, NULL, dy, NULL, NULL, dx};
        split_rows(scale_job, &proto, rows, C);
    }
    return TFX_OK;
}

/* Keras get_weights order: gamma, beta, moving_mean, moving_variance (4 x c in kernel). */
static void weight_sizes(const tfx_layer *l, size_t *kernel, size_t *bias)
{
    *kernel = 4 * (size_t)l->in.c;
    *bias = 0;
}

static void set_weights(tfx_layer *l, const float *kernel, const float *bias)
{
    (void)bias;
    const size_t C = (size_t)l->in.c;
    float *p = tfx__layer_params(l);
    size_t off = 0;
    if (l->cfg.scale) {
        memcpy(p, kernel, C * sizeof(float));
        off = C;
    }
    if (l->cfg.center) memcpy(p + off, kernel + C, C * sizeof(float));
    memcpy(l->state, kernel + 2 * C, 2 * C * sizeof(float));
}

static void get_weights(const tfx_layer *l, float *kernel, float *bias)
{
    (void)bias;
    const size_t C = (size_t)l->in.c;
    for (size_t c = 0; c < C; c++) {
        kernel[c] = gamma_of(l, c);
        kernel[C + c] = beta_of(l, c);
    }
    memcpy(kernel + 2 * C, l->state, 2 * C * sizeof(float));
}

/* Occlusion's boxes: per channel at inference. */
static void box_forward(const tfx_layer *l, const tfx__box_io *io)
{
    tfx__box_copy(l, io);
    infer_rows(l, io->out, io->out, io->nb * (size_t)io->bh * io->bw);
}

/* File record (16 bytes): momentum, epsilon, center, scale. */
enum { CONFIG_BYTES = 16 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    tfx__put_f32(b, l->cfg.momentum);
    tfx__put_f32(b + 4, l->cfg.epsilon);
    tfx__put_i32(b + 8, l->cfg.center != 0);
    tfx__put_i32(b + 12, l->cfg.scale != 0);
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->momentum = tfx__get_f32(b);
    c->epsilon = tfx__get_f32(b + 4);
    c->center = tfx__get_i32(b + 8);
    c->scale = tfx__get_i32(b + 12);
    if (!(c->momentum >= 0.0f && c->momentum <= 1.0f))
        return tfx__error(TFX_EFORMAT, "momentum %g is not in [0, 1]", (double)c->momentum);
    if (!(c->epsilon > 0.0f && isfinite(c->epsilon)))
        return tfx__error(TFX_EFORMAT, "epsilon %g is not a positive finite number", (double)c->epsilon);
    if ((rc = tfx__config_range("center", c->center, 0, 1)) || (rc = tfx__config_range("scale", c->scale, 0, 1)))
        return rc;
    return TFX_OK;
}

/* A moving variance must not be negative (the loader refuses one, so saving does too). */
static int check_state(const tfx_layer *l, char *msg, size_t cap)
{
    const size_t C = (size_t)l->in.c;
    for (size_t k = 0; k < C; k++)
        if (l->state[C + k] < 0.0f) {
            snprintf(msg, cap, "moving variance %zu is negative (%g)", k, (double)l->state[C + k]);
            return 1;
        }
    return 0;
}

const tfx__layer_ops tfx__batch_norm_ops = {
    .kind = TFX_LAYER_BATCH_NORMALIZATION,
    .traits = TFX__TRAIT_FEATURE_MAP,
    .base_name = "batch_normalization",
    .type_name = "BatchNormalization",
    .infer = infer,
    .counts = counts,
    .init = init,
    .cache_floats = cache_floats,
    .forward = forward,
    .backward = backward,
    .weight_sizes = weight_sizes,
    .set_weights = set_weights,
    .get_weights = get_weights,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .check_state = check_state,
    .box_forward = box_forward,
};
