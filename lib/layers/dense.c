/* Dense on the last axis (Keras): rows = n*h*w, one sgemm, bias and activation fused.
 *
 * The kernel is stored unit-major, [units][inputs] (Keras's [inputs][units] transposed;
 * get/set_weights and the file format keep Keras's order). Batches do not care (BLAS takes
 * either orientation), but one sample does: its input gradient sums only the rows of units
 * whose output gradient is non-zero, and after a ReLU about half are zero, so it reads half
 * the kernel where Keras's layout made it read all of it (44 MB on the seed model). */
#include <math.h>
#include <string.h>

#include "layers/lrp.h"
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    if ((double)in.c * ((double)l->cfg.units + 1) > TFX__MAX_LAYER_PARAMS)
        return tfx__error(TFX_ESHAPE, "%d inputs x %d units is too many weights (limit %.0f)", in.c, l->cfg.units,
                          TFX__MAX_LAYER_PARAMS);
    *out = (tfx__shape){in.h, in.w, l->cfg.units, in.flat};
    return TFX_OK;
}

static void counts(const tfx_layer *l, size_t *trainable, size_t *state)
{
    *trainable = (size_t)l->in.c * l->cfg.units + (l->cfg.use_bias ? (size_t)l->cfg.units : 0);
    *state = 0;
}

static void init(tfx_layer *l, tfx__rng *rng)
{
    size_t fan_in = (size_t)l->in.c, fan_out = (size_t)l->cfg.units;
    double limit = sqrt(6.0 / (double)(fan_in + fan_out));
    float *w = tfx__layer_params(l);
    size_t nk = fan_in * fan_out;
    /* Drawn in Keras's order, so a seed gives the same weights as with the Keras layout; a block
     * of input rows at a time goes through a buffer, so the unit-major stores are runs, not one
     * float per unit row (stores 346 KB apart on the seed model: minutes under ASan). */
    enum { INIT_BUF = 8192 };
    float buf[INIT_BUF];
    const size_t rows = fan_out < INIT_BUF ? INIT_BUF / fan_out : 1;
    for (size_t i0 = 0; i0 < fan_in; i0 += rows) {
        const size_t ni = fan_in - i0 < rows ? fan_in - i0 : rows;
        if (fan_out <= INIT_BUF) {
            for (size_t b = 0; b < ni * fan_out; b++) buf[b] = (float)((2.0 * tfx__rng_uniform(rng) - 1.0) * limit);
            for (size_t u = 0; u < fan_out; u++)
                for (size_t r = 0; r < ni; r++) w[u * fan_in + i0 + r] = buf[r * fan_out + u];
        } else {
            for (size_t u = 0; u < fan_out; u++)
                w[u * fan_in + i0] = (float)((2.0 * tfx__rng_uniform(rng) - 1.0) * limit);
        }
    }
    if (l->cfg.use_bias) memset(w + nk, 0, fan_out * sizeof(float));
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const size_t rows = n * l->in.h * l->in.w, K = (size_t)l->in.c, U = (size_t)l->cfg.units;
    const float *w = tfx__layer_params(l);
    float *z = l->preact ? l->preact : y;
    if (rows == 1) {
        tfx__sgemv(0, U, K, 1.0f, w, K, x, 0.0f, z);
    } else if (tfx__sgemm_long_fits(rows, U, K)) {
        float *work = tfx__layer_scratch(l, run, tfx__sgemm_long_work_floats(U));
        if (!work) return TFX_ENOMEM;
        tfx__sgemm_long(rows, U, K, x, K, w, K, z, U, work);
    } else {
        tfx__sgemm(0, 1, rows, U, K, 1.0f, x, K, w, K, 0.0f, z, U);
    }
    tfx__bias_activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, l->cfg.use_bias ? w + K * U : NULL, z, y, rows, U);
    return TFX_OK;
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    if (rule->kind >= TFX__RULE_LRP_0) return tfx__lrp_linear(l, run, x, y, dy, dx, n, flags, rule);
    const size_t rows = n * l->in.h * l->in.w, K = (size_t)l->in.c, U = (size_t)l->cfg.units;
    if (l->cfg.activation != TFX_ACTIVATION_LINEAR && !(flags & TFX__BW_SKIP_ACTIVATION)) {
        /* preact is NULL when the forward kept none (the output suffices) */
        int rc = tfx__activation_backward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, l->preact, y, dy, dy, rows, U, rule);
        if (rc) return rc;
    }
    const float *w = tfx__layer_params(l);
    if (flags & TFX__BW_PARAM_GRADS) {
        float *gw = tfx__layer_grads(l);
        tfx__sgemm(1, 0, U, K, rows, 1.0f, dy, U, x, K, 0.0f, gw, K);
        if (l->cfg.use_bias) {
            float *gb = gw + K * U;
            memset(gb, 0, U * sizeof(float));
            for (size_t r = 0; r < rows; r++)
                for (size_t u = 0; u < U; u++) gb[u] += dy[r * U + u];
        }
    }
    if (dx && rows == 1)
        tfx__sgemv(1, U, K, 1.0f, w, K, dy, 0.0f, dx);
    else if (dx)
        tfx__sgemm(0, 0, rows, K, U, 1.0f, dy, U, w, K, 0.0f, dx, K);
    return TFX_OK;
}

static void weight_sizes(const tfx_layer *l, size_t *kernel, size_t *bias)
{
    *kernel = (size_t)l->in.c * l->cfg.units;
    *bias = l->cfg.use_bias ? (size_t)l->cfg.units : 0;
}

/* dst[c][r] = src[r][c] for an r x c src, in 16 x 16 blocks. */
static void transpose(const float *src, size_t r, size_t c, float *dst)
{
    for (size_t i0 = 0; i0 < r; i0 += 16)
        for (size_t j0 = 0; j0 < c; j0 += 16) {
            const size_t i1 = i0 + 16 < r ? i0 + 16 : r, j1 = j0 + 16 < c ? j0 + 16 : c;
            for (size_t j = j0; j < j1; j++)
                for (size_t i = i0; i < i1; i++) dst[j * r + i] = src[i * c + j];
        }
}

static void kernel_from_keras(const tfx_layer *l, const float *keras, float *stored)
{
    transpose(keras, (size_t)l->in.c, (size_t)l->cfg.units, stored);
}

static void kernel_to_keras(const tfx_layer *l, const float *stored, float *keras)
{
    transpose(stored, (size_t)l->cfg.units, (size_t)l->in.c, keras);
}

static void set_weights(tfx_layer *l, const float *kernel, const float *bias)
{
    size_t k, b;
    weight_sizes(l, &k, &b);
    float *w = tfx__layer_params(l);
    kernel_from_keras(l, kernel, w);
    if (b) memcpy(w + k, bias, b * sizeof(float));
}

static void get_weights(const tfx_layer *l, float *kernel, float *bias)
{
    size_t k, b;
    weight_sizes(l, &k, &b);
    const float *w = tfx__layer_params(l);
    kernel_to_keras(l, w, kernel);
    if (b && bias) memcpy(bias, w + k, b * sizeof(float));
}

static void transposed_kernel(const tfx_layer *l, size_t *rows, size_t *cols)
{
    *rows = (size_t)l->in.c;
    *cols = (size_t)l->cfg.units;
}

/* File record (20 bytes): units, activation, alpha (clip: min), use_bias, clip max (0 unless
 * clip). The 16-byte record of libtfx 0.1 is written for every activation but clip. */
enum { CONFIG_BYTES = 20, CONFIG_BYTES_SHORT = 16 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    tfx__put_i32(b, l->cfg.units);
    tfx__put_i32(b + 4, l->cfg.activation);
    tfx__put_f32(b + 8, l->cfg.alpha);
    tfx__put_i32(b + 12, l->cfg.use_bias != 0);
    tfx__put_f32(b + 16, l->cfg.activation == TFX_ACTIVATION_CLIP ? l->cfg.beta : 0.0f);
}

static size_t config_size(const tfx_layer *l)
{
    return l->cfg.activation == TFX_ACTIVATION_CLIP ? CONFIG_BYTES : CONFIG_BYTES_SHORT;
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->units = tfx__get_i32(b);
    c->activation = tfx__get_i32(b + 4);
    c->alpha = tfx__get_f32(b + 8);
    c->use_bias = tfx__get_i32(b + 12);
    c->beta = tfx__get_f32(b + 16);
    if ((rc = tfx__config_range("units", c->units, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_fused_activation(c)) ||
        (rc = tfx__config_range("use_bias", c->use_bias, 0, 1)))
        return rc;
    return TFX_OK;
}

const tfx__layer_ops tfx__dense_ops = {
    .kind = TFX_LAYER_DENSE,
    .traits = TFX__TRAIT_FUSED_ACTIVATION | TFX__TRAIT_WEIGHTED | TFX__TRAIT_FULLY_CONNECTED,
    .base_name = "dense",
    .type_name = "Dense",
    .infer = infer,
    .counts = counts,
    .init = init,
    .forward = forward,
    .backward = backward,
    .weight_sizes = weight_sizes,
    .set_weights = set_weights,
    .get_weights = get_weights,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .config_bytes_short = CONFIG_BYTES_SHORT,
    .config_size = config_size,
    .transposed_kernel = transposed_kernel,
};
