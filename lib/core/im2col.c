/* NHWC im2col/col2im. A row of col is one output pixel; its columns are (ki, kj, c) so that
 * col x kernel[kh*kw*c][filters] (Keras HWIO) is the convolution, already in NHWC. */
#include <string.h>

#include "layers/layer.h"

int tfx__conv_out_size(int in, int k, int stride, int padding, int *out, int *pad_before)
{
    if (padding == TFX_PADDING_SAME) {
        int o = (in + stride - 1) / stride;
        long total = (long)(o - 1) * stride + k - in;
        if (total < 0) total = 0;
        *out = o;
        *pad_before = (int)(total / 2);
        return TFX_OK;
    }
    if (k > in)
        return tfx__error(TFX_ESHAPE, "window %d is larger than the input size %d with valid padding", k, in);
    *out = (in - k) / stride + 1;
    *pad_before = 0;
    return TFX_OK;
}

void tfx__im2col(const tfx__conv_geom *g, size_t n, const float *x, float *col)
{
    const size_t C = (size_t)g->in_c, row_len = (size_t)g->kh * g->kw * C;
    const long lines = (long)(n * (size_t)g->out_h);
    /* One output line (image b, row oh) per iteration. */
    for (long t = 0; t < lines; t++) {
        const size_t b = (size_t)t / (size_t)g->out_h;
        const int oh = (int)((size_t)t % (size_t)g->out_h);
        const float *xb = x + b * (size_t)g->in_h * g->in_w * C;
        for (int ow = 0; ow < g->out_w; ow++) {
            float *row = col + ((b * g->out_h + oh) * g->out_w + ow) * row_len;
            int ih0 = oh * g->sh - g->pad_top, iw0 = ow * g->sw - g->pad_left;
            for (int ki = 0; ki < g->kh; ki++) {
                int ih = ih0 + ki;
                float *dst = row + (size_t)ki * g->kw * C;
                if (ih < 0 || ih >= g->in_h) {
                    memset(dst, 0, (size_t)g->kw * C * sizeof(float));
                    continue;
                }
                int kj0 = iw0 < 0 ? -iw0 : 0;
                int kj1 = g->in_w - iw0 < g->kw ? g->in_w - iw0 : g->kw;
                if (kj0 > 0) memset(dst, 0, (size_t)kj0 * C * sizeof(float));
                if (kj1 > kj0)
                    memcpy(dst + (size_t)kj0 * C, xb + ((size_t)ih * g->in_w + iw0 + kj0) * C,
                           (size_t)(kj1 - kj0) * C * sizeof(float));
                if (kj1 < g->kw) {
                    int from = kj1 > kj0 ? kj1 : kj0;
                    memset(dst + (size_t)from * C, 0, (size_t)(g->kw - from) * C * sizeof(float));
                }
            }
        }
    }
}

void tfx__col2im(const tfx__conv_geom *g, size_t n, const float *col, float *dx)
{
    const size_t C = (size_t)g->in_c, row_len = (size_t)g->kh * g->kw * C;
    for (size_t b = 0; b < n; b++) {
        float *xb = dx + b * (size_t)g->in_h * g->in_w * C;
        memset(xb, 0, (size_t)g->in_h * g->in_w * C * sizeof(float));
        for (int oh = 0; oh < g->out_h; oh++) {
            for (int ow = 0; ow < g->out_w; ow++) {
                const float *row = col + ((b * g->out_h + oh) * g->out_w + ow) * row_len;
                int ih0 = oh * g->sh - g->pad_top, iw0 = ow * g->sw - g->pad_left;
                for (int ki = 0; ki < g->kh; ki++) {
                    int ih = ih0 + ki;
                    if (ih < 0 || ih >= g->in_h) continue;
                    int kj0 = iw0 < 0 ? -iw0 : 0;
                    int kj1 = g->in_w - iw0 < g->kw ? g->in_w - iw0 : g->kw;
                    if (kj1 <= kj0) continue;
                    const float *src = row + ((size_t)ki * g->kw + kj0) * C;
                    float *dst = xb + ((size_t)ih * g->in_w + iw0 + kj0) * C;
                    size_t len = (size_t)(kj1 - kj0) * C;
                    for (size_t t = 0; t < len; t++) dst[t] += src[t];
                }
            }
        }
    }
}
