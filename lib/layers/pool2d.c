/* MaxPooling2D and AveragePooling2D (NHWC). Padding (SAME or explicit) never wins a max; an
 * average divides by the valid count, as TensorFlow does, or by the whole window with
 * count_include_pad, as PyTorch's default. */
#include <float.h>
#include <string.h>

#include "layers/lrp.h"
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "pooling needs an image input (h, w, c), got a flat tensor of %d", in.c);
    const tfx__layer_config *c = &l->cfg;
    /* Every window keeps a valid cell (a max or an average of something). */
    if (c->padding == TFX_PADDING_EXPLICIT && (c->pad_top >= c->kernel_h || c->pad_bottom >= c->kernel_h ||
                                               c->pad_left >= c->kernel_w || c->pad_right >= c->kernel_w))
        return tfx__error(TFX_ESHAPE, "pads (top %d, bottom %d, left %d, right %d) must be smaller than the pool %dx%d",
                          c->pad_top, c->pad_bottom, c->pad_left, c->pad_right, c->kernel_h, c->kernel_w);
    int oh, ow;
    int rc = tfx__window_out(l, "pool", in, &oh, &ow);
    if (rc) return rc;
    *out = (tfx__shape){oh, ow, in.c, 0};
    return TFX_OK;
}

/* Valid input window [h0, h1) x [w0, w1) of output cell (oh, ow): TensorFlow's rule (SAME
 * padding cells ignored). */
static void pool_window(const tfx_layer *l, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * l->cfg.stride_h - l->cfg.pad_top, ws = ow * l->cfg.stride_w - l->cfg.pad_left;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + l->cfg.kernel_h > l->in.h ? l->in.h : hs + l->cfg.kernel_h;
    *w1 = ws + l->cfg.kernel_w > l->in.w ? l->in.w : ws + l->cfg.kernel_w;
}

/* The divisor of an average over the valid window [h0, h1) x [w0, w1). */
static float avg_scale(const tfx_layer *l, int h0, int h1, int w0, int w1)
{
    if (l->cfg.count_include_pad) return 1.0f / (float)(l->cfg.kernel_h * l->cfg.kernel_w); /* windows fit the pads */
    return 1.0f / (float)((h1 - h0) * (w1 - w0));
}

/* yc = max(yc, xc) over n channels; written as a select so it vectorises (the comparison and
 * its NaN behaviour are the scalar code's: a NaN input never replaces the running maximum). */
TFX__CLONES static void max_into(const float *restrict xc, float *restrict yc, int n)
{
    for (int c = 0; c < n; c++) yc[c] = xc[c] > yc[c] ? xc[c] : yc[c];
}

static int max_forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const int C = l->in.c;
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * tfx__shape_size(l->in);
        float *yb = y + b * tfx__shape_size(l->out);
        for (int oh = 0; oh < l->out.h; oh++)
            for (int ow = 0; ow < l->out.w; ow++) {
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                float *yc = yb + ((size_t)oh * l->out.w + ow) * C;
                for (int c = 0; c < C; c++) yc[c] = -FLT_MAX;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) max_into(xb + ((size_t)ih * l->in.w + iw) * C, yc, C);
            }
    }
    return TFX_OK;
}

/* One window cell of an output cell's backward over n channels: the channels still open
 * whose input equals the maximum take the gradient and close. */
TFX__CLONES static void max_route(const float *restrict xc, const float *restrict yc, const float *restrict gc,
                                  unsigned char *restrict open, float *restrict dc, int n)
{
    for (int c = 0; c < n; c++) {
        const int hit = open[c] & (xc[c] == yc[c]);
        dc[c] += hit ? gc[c] : 0.0f;
        open[c] = (unsigned char)(open[c] & !hit);
    }
}

/* The gradient goes to the first maximal input of each window in row-major order (TensorFlow's
 * choice). Window cells are visited in that order for blocks of channels at a time, each
 * channel closing at its first hit, so the loops run over contiguous channels. */
static int max_backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                        float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    (void)flags;
    (void)run;
    if (rule->kind >= TFX__RULE_LRP_0 && rule->kind != TFX__RULE_LRP_0 && rule->kind != TFX__RULE_LRP_EPSILON &&
        rule->kind != TFX__RULE_LRP_ZPLUS && rule->kind != TFX__RULE_LRP_ALPHA_BETA)
        return tfx__error(TFX_ENOTSUP, "layer '%s' (MaxPooling2D): rule %s is not supported", l->name,
                          tfx__rule_name(rule->kind));
    if (!dx) return TFX_OK;
    enum { BLOCK = 256 };
    unsigned char open[BLOCK];
    const int C = l->in.c;
    memset(dx, 0, n * tfx__shape_size(l->in) * sizeof(float));
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * tfx__shape_size(l->in);
        const float *yb = y + b * tfx__shape_size(l->out);
        const float *gb = dy + b * tfx__shape_size(l->out);
        float *db = dx + b * tfx__shape_size(l->in);
        for (int oh = 0; oh < l->out.h; oh++)
            for (int ow = 0; ow < l->out.w; ow++) {
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                const size_t o = ((size_t)oh * l->out.w + ow) * C;
                for (int c0 = 0; c0 < C; c0 += BLOCK) {
                    const int cn = C - c0 < BLOCK ? C - c0 : BLOCK;
                    memset(open, 1, (size_t)cn);
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) {
                            const size_t i = ((size_t)ih * l->in.w + iw) * C + (size_t)c0;
                            max_route(xb + i, yb + o + c0, gb + o + c0, open, db + i, cn);
                        }
                }
            }
    }
    return TFX_OK;
}

static int avg_forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const int C = l->in.c;
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * tfx__shape_size(l->in);
        float *yb = y + b * tfx__shape_size(l->out);
        for (int oh = 0; oh < l->out.h; oh++)
            for (int ow = 0; ow < l->out.w; ow++) {
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                float *yc = yb + ((size_t)oh * l->out.w + ow) * C;
                memset(yc, 0, (size_t)C * sizeof(float));
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float *xc = xb + ((size_t)ih * l->in.w + iw) * C;
                        for (int c = 0; c < C; c++) yc[c] += xc[c];
                    }
                float inv = avg_scale(l, h0, h1, w0, w1);
                for (int c = 0; c < C; c++) yc[c] *= inv;
            }
    }
    return TFX_OK;
}

static int avg_backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                        float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    if (rule->kind >= TFX__RULE_LRP_0) return tfx__lrp_elementwise_linear(l, run, x, y, dy, dx, n, flags, rule);
    if (!dx) return TFX_OK;
    const int C = l->in.c;
    memset(dx, 0, n * tfx__shape_size(l->in) * sizeof(float));
    for (size_t b = 0; b < n; b++) {
        const float *gb = dy + b * tfx__shape_size(l->out);
        float *db = dx + b * tfx__shape_size(l->in);
        for (int oh = 0; oh < l->out.h; oh++)
            for (int ow = 0; ow < l->out.w; ow++) {
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                const float *gc = gb + ((size_t)oh * l->out.w + ow) * C;
                float inv = avg_scale(l, h0, h1, w0, w1);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float *dc = db + ((size_t)ih * l->in.w + iw) * C;
                        for (int c = 0; c < C; c++) dc[c] += gc[c] * inv;
                    }
            }
    }
    return TFX_OK;
}

/* Occlusion's boxes, with the forward's window rule, order and scaling. */
static void box_pool(const tfx_layer *l, const tfx__box_io *io, int is_max)
{
    const int C = l->in.c, bh = io->bh, bw = io->bw;
    for (size_t b = 0; b < io->nb; b++)
        for (int r = 0; r < bh; r++)
            for (int q = 0; q < bw; q++) {
                int oh = io->oy[b] + r, ow = io->ox[b] + q;
                int h0, h1, w0, w1;
                pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                float *y = io->out + ((b * bh + (size_t)r) * bw + q) * C;
                for (int c = 0; c < C; c++) y[c] = is_max ? -FLT_MAX : 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float *xc = tfx__box_cell(l, io, b, ih, iw);
                        if (is_max) {
                            for (int c = 0; c < C; c++)
                                if (xc[c] > y[c]) y[c] = xc[c];
                        } else {
                            for (int c = 0; c < C; c++) y[c] += xc[c];
                        }
                    }
                if (!is_max) {
                    float inv = avg_scale(l, h0, h1, w0, w1);
                    for (int c = 0; c < C; c++) y[c] *= inv;
                }
            }
}

static void max_box(const tfx_layer *l, const tfx__box_io *io) { box_pool(l, io, 1); }
static void avg_box(const tfx_layer *l, const tfx__box_io *io) { box_pool(l, io, 0); }

/* File record (40 bytes): pool_h, pool_w, stride_h, stride_w, padding, pad top, bottom,
 * left, right (0 unless explicit), count_include_pad. The 20-byte record of libtfx 0.1 is
 * written while the appended fields are 0. */
enum { CONFIG_BYTES = 40, CONFIG_BYTES_SHORT = 20 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    const tfx__layer_config *c = &l->cfg;
    const int ex = c->padding == TFX_PADDING_EXPLICIT;
    tfx__put_i32(b, c->kernel_h);
    tfx__put_i32(b + 4, c->kernel_w);
    tfx__put_i32(b + 8, c->stride_h);
    tfx__put_i32(b + 12, c->stride_w);
    tfx__put_i32(b + 16, c->padding);
    tfx__put_i32(b + 20, ex ? c->pad_top : 0);
    tfx__put_i32(b + 24, ex ? c->pad_bottom : 0);
    tfx__put_i32(b + 28, ex ? c->pad_left : 0);
    tfx__put_i32(b + 32, ex ? c->pad_right : 0);
    tfx__put_i32(b + 36, c->count_include_pad != 0);
}

static size_t config_size(const tfx_layer *l)
{
    return l->cfg.padding == TFX_PADDING_EXPLICIT || l->cfg.count_include_pad ? CONFIG_BYTES : CONFIG_BYTES_SHORT;
}

static int read_common(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->kernel_h = tfx__get_i32(b);
    c->kernel_w = tfx__get_i32(b + 4);
    c->stride_h = tfx__get_i32(b + 8);
    c->stride_w = tfx__get_i32(b + 12);
    c->padding = tfx__get_i32(b + 16);
    c->pad_top = tfx__get_i32(b + 20);
    c->pad_bottom = tfx__get_i32(b + 24);
    c->pad_left = tfx__get_i32(b + 28);
    c->pad_right = tfx__get_i32(b + 32);
    c->count_include_pad = tfx__get_i32(b + 36);
    if ((rc = tfx__config_range("pool_h", c->kernel_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pool_w", c->kernel_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_h", c->stride_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_w", c->stride_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_padding(c)) ||
        (rc = tfx__config_range("count_include_pad", c->count_include_pad, 0, 1)))
        return rc;
    return TFX_OK;
}

static int max_config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc = read_common(b, c);
    if (rc) return rc;
    return tfx__config_range("count_include_pad", c->count_include_pad, 0, 0); /* max pooling: never */
}

static int avg_config_read(const uint8_t *b, tfx__layer_config *c) { return read_common(b, c); }

const tfx__layer_ops tfx__max_pooling2d_ops = {
    .kind = TFX_LAYER_MAX_POOLING2D,
    .traits = TFX__TRAIT_FEATURE_MAP | TFX__TRAIT_WINDOW,
    .base_name = "max_pooling2d",
    .type_name = "MaxPooling2D",
    .infer = infer,
    .forward = max_forward,
    .backward = max_backward,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = max_config_read,
    .config_bytes_short = CONFIG_BYTES_SHORT,
    .config_size = config_size,
    .box_forward = max_box,
};

const tfx__layer_ops tfx__average_pooling2d_ops = {
    .kind = TFX_LAYER_AVERAGE_POOLING2D,
    .traits = TFX__TRAIT_FEATURE_MAP | TFX__TRAIT_WINDOW,
    .base_name = "average_pooling2d",
    .type_name = "AveragePooling2D",
    .infer = infer,
    .forward = avg_forward,
    .backward = avg_backward,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = avg_config_read,
    .config_bytes_short = CONFIG_BYTES_SHORT,
    .config_size = config_size,
    .box_forward = avg_box,
};
