/* What the layer kinds share: the scratch workspace, the box copy of pointwise layers in
 * occlusion's incremental forward, the checks of configuration records. */
#include <math.h>

#include "layers/layer.h"

int tfx__layer_output_activation(const tfx_layer *l)
{
    if (l->ops->traits & (TFX__TRAIT_FUSED_ACTIVATION | TFX__TRAIT_ACTIVATION)) return l->cfg.activation;
    return TFX_ACTIVATION_LINEAR;
}

float *tfx__layer_scratch(const tfx_layer *l, const tfx__layer_run *run, size_t floats)
{
    tfx__workspace *ws = run->ws;
    if (floats > ws->cap) {
        size_t bytes;
        if (tfx__mul_size(floats, sizeof(float), &bytes)) {
            tfx__error(TFX_ENOMEM, "layer '%s': workspace size overflows", l->name);
            return NULL;
        }
        float *p = tfx__realloc(ws->data, bytes);
        if (!p) {
            tfx__error(TFX_ENOMEM, "layer '%s': out of memory for a %zu-float workspace", l->name, floats);
            return NULL;
        }
        ws->data = p;
        ws->cap = floats;
    }
    return ws->data;
}

void tfx__box_copy(const tfx_layer *l, const tfx__box_io *io)
{
    const int C = l->in.c, bh = io->bh, bw = io->bw;
    for (size_t b = 0; b < io->nb; b++)
        for (int r = 0; r < bh; r++)
            for (int q = 0; q < bw; q++)
                memcpy(io->out + ((b * bh + (size_t)r) * bw + q) * C,
                       tfx__box_cell(l, io, b, io->oy[b] + r, io->ox[b] + q), (size_t)C * sizeof(float));
}

int tfx__config_range(const char *field, int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo || v > hi)
        return tfx__error(TFX_EFORMAT, "%s = %ld must be in %ld..%ld", field, (long)v, (long)lo, (long)hi);
    return TFX_OK;
}

int tfx__config_activation(int32_t act, float alpha, float beta)
{
    if (!tfx__activation_valid(act)) return tfx__error(TFX_EFORMAT, "unknown activation %ld", (long)act);
    if (!isfinite(alpha)) return tfx__error(TFX_EFORMAT, "activation alpha is not finite");
    if (act == TFX_ACTIVATION_CLIP && !(isfinite(beta) && alpha < beta))
        return tfx__error(TFX_EFORMAT, "clip bounds %g..%g: they must be finite with min < max", (double)alpha,
                          (double)beta);
    return TFX_OK;
}

int tfx__config_fused_activation(tfx__layer_config *c)
{
    int rc = tfx__config_activation(c->activation, c->alpha, c->beta);
    if (rc) return rc;
    if (c->activation == TFX_ACTIVATION_CLIP) return TFX_OK;
    if (c->beta != 0.0f)
        return tfx__error(TFX_EFORMAT, "clip max = %g must be 0 for activation %s", (double)c->beta,
                          tfx__activation_name(c->activation));
    c->alpha = tfx__activation_default_alpha(c->activation, c->alpha); /* as the add functions */
    return TFX_OK;
}

/* One axis: output size and the pads before / after. */
static int window_axis(int in, int k, int s, int padding, int *out, int *before, int *after)
{
    if (padding == TFX_PADDING_EXPLICIT) {
        long total = (long)in + *before + *after;
        if (k > total) return 1;
        *out = (int)((total - k) / s + 1);
        return 0;
    }
    if (tfx__conv_out_size(in, k, s, padding, out, before)) return 1;
    long pad = padding == TFX_PADDING_SAME ? (long)(*out - 1) * s + k - in : 0;
    *after = pad > *before ? (int)(pad - *before) : 0;
    return 0;
}

int tfx__window_out(tfx_layer *l, const char *what, tfx__shape in, int *oh, int *ow)
{
    tfx__layer_config *c = &l->cfg;
    if (window_axis(in.h, c->kernel_h, c->stride_h, c->padding, oh, &c->pad_top, &c->pad_bottom) ||
        window_axis(in.w, c->kernel_w, c->stride_w, c->padding, ow, &c->pad_left, &c->pad_right)) {
        if (c->padding == TFX_PADDING_EXPLICIT)
            return tfx__error(TFX_ESHAPE, "%s %dx%d does not fit the %dx%d input padded by (top %d, bottom %d, "
                              "left %d, right %d)", what, c->kernel_h, c->kernel_w, in.h, in.w, c->pad_top,
                              c->pad_bottom, c->pad_left, c->pad_right);
        return tfx__error(TFX_ESHAPE, "%s %dx%d does not fit the %dx%d input with valid padding", what, c->kernel_h,
                          c->kernel_w, in.h, in.w);
    }
    return TFX_OK;
}

int tfx__config_padding(const tfx__layer_config *c)
{
    int rc;
    if ((rc = tfx__config_range("padding", c->padding, TFX_PADDING_VALID, TFX_PADDING_EXPLICIT)) ||
        (rc = tfx__config_range("pad_top", c->pad_top, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_bottom", c->pad_bottom, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_left", c->pad_left, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_right", c->pad_right, 0, TFX__MAX_DIM)))
        return rc;
    if (c->padding != TFX_PADDING_EXPLICIT && (c->pad_top || c->pad_bottom || c->pad_left || c->pad_right))
        return tfx__error(TFX_EFORMAT, "pads (%d, %d, %d, %d) must be 0 unless the padding is explicit", c->pad_top,
                          c->pad_bottom, c->pad_left, c->pad_right);
    return TFX_OK;
}

int tfx__layer_split_rows(void (*fn)(void *), void *jobs, size_t job_size, const void *proto, size_t r0_at,
                          size_t r1_at, size_t rows, size_t cols, size_t min_floats)
{
    int threads = rows * cols >= min_floats ? tfx__threads() : 1;
    if ((size_t)threads > rows) threads = rows ? (int)rows : 1;
    for (int t = 0; t < threads; t++) {
        unsigned char *j = (unsigned char *)jobs + (size_t)t * job_size;
        const size_t r0 = rows * (size_t)t / (size_t)threads, r1 = rows * (size_t)(t + 1) / (size_t)threads;
        memcpy(j, proto, job_size);
        memcpy(j + r0_at, &r0, sizeof r0);
        memcpy(j + r1_at, &r1, sizeof r1);
    }
    tfx__parallel(threads, fn, jobs, job_size);
    return threads;
}
