/* Direct convolution for kernels of few terms per output (kh * kw * cin <= TFX__DIRECT_MAX_K:
 * a first layer on RGB or grey images). im2col + sgemm spent most of its time copying 3-float
 * runs and packing a 27-wide matrix (seed model's first layer, 51 images: im2col 1.0 ms on
 * one thread + sgemm 0.8 ms); here each 4-pixel tile gathers its taps into a small buffer in
 * L1 and multiplies them with the whole kernel, 16 channels per vector, then applies the bias
 * and activation while the line is in cache. Output lines are split over threads; every value
 * is the same sum (taps in kernel order) whatever the split. */
#include <string.h>

#include "core/internal.h"
#include "core/kernels.h"

typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));
typedef int v16i __attribute__((vector_size(64), aligned(4), may_alias));

enum { PIX = 4 }; /* output pixels per tile */

typedef struct direct_job {
    const tfx__conv_geom *g;
    const float *x, *w;
    size_t F, line0, line1;
    float *z, *y;
    const tfx__direct_epilogue *ep;
} direct_job;

/* The K taps of output pixel (oh, ow) of image xb, zeros outside the image: per kernel row,
 * one run of kw * C contiguous floats (its part inside the image). */
static void gather(const tfx__conv_geom *g, const float *xb, int oh, int ow, float *p)
{
    const size_t C = (size_t)g->in_c, run = (size_t)g->kw * C;
    const int ih0 = oh * g->sh - g->pad_top, iw0 = ow * g->sw - g->pad_left;
    const int kj0 = iw0 < 0 ? -iw0 : 0, kj1 = g->in_w - iw0 < g->kw ? g->in_w - iw0 : g->kw;
    for (int ki = 0; ki < g->kh; ki++, p += run) {
        const int ih = ih0 + ki;
        if (ih < 0 || ih >= g->in_h || kj1 <= kj0) {
            for (size_t t = 0; t < run; t++) p[t] = 0.0f;
            continue;
        }
        const size_t a = (size_t)kj0 * C, b = (size_t)kj1 * C;
        const float *s = xb + ((size_t)ih * g->in_w + (size_t)(iw0 + kj0)) * C;
        for (size_t t = 0; t < a; t++) p[t] = 0.0f;
        for (size_t t = a; t < b; t++) p[t] = s[t - a];
        for (size_t t = b; t < run; t++) p[t] = 0.0f;
    }
}

/* Output pixels q < PIX of a tile, filters [f, f + 16 NV): the taps of kernel row ki for
 * pixel q are src[ki][q * ps + j], j < run (in the image, or gathered); z = bias + taps x w,
 * y = max(z, 0) with relu (z is written only where it is not y). */
#define TILE(NAME, NV)                                                                                     \
    TFX__CLONES static void NAME(const float *const *src, size_t kh, size_t run, size_t ps, size_t F,      \
                                 const float *w, const float *bias, int relu, int pix, size_t f, float *z, \
                                 float *y)                                                                 \
    {                                                                                                      \
        v16f acc[PIX][NV];                                                                                 \
        for (int v = 0; v < NV; v++) {                                                                     \
            const v16f b0 = bias ? *(const v16f *)(bias + f + 16 * (size_t)v) : (v16f){0};                 \
            for (int q = 0; q < PIX; q++) acc[q][v] = b0;                                                  \
        }                                                                                                  \
        for (size_t ki = 0; ki < kh; ki++) {                                                               \
            const float *sr = src[ki], *wr = w + ki * run * F + f;                                         \
            for (size_t j = 0; j < run; j++, wr += F) {                                                    \
                v16f wv[NV];                                                                               \
                for (int v = 0; v < NV; v++) wv[v] = *(const v16f *)(wr + 16 * v);                        \
                for (int q = 0; q < PIX; q++) {                                                            \
                    const float xq = sr[(size_t)q * ps + j];                                               \
                    for (int v = 0; v < NV; v++) acc[q][v] += xq * wv[v];                                  \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
        for (int q = 0; q < pix; q++)                                                                      \
            for (int v = 0; v < NV; v++) {                                                                 \
                const size_t o = (size_t)q * F + f + 16 * (size_t)v;                                       \
                if (z != y) *(v16f *)(z + o) = acc[q][v];                                                  \
                *(v16f *)(y + o) = relu ? (v16f)((v16i)acc[q][v] & (acc[q][v] > 0.0f)) : acc[q][v];         \
            }                                                                                              \
    }
TILE(tile1, 1)
TILE(tile2, 2)

static void direct_lines(void *arg)
{
    const direct_job *J = arg;
    const tfx__conv_geom *g = J->g;
    const tfx__direct_epilogue *ep = J->ep;
    const size_t C = (size_t)g->in_c, run = (size_t)g->kw * C, K = (size_t)g->kh * run, F = J->F;
    const size_t in_img = (size_t)g->in_h * g->in_w * C, line = (size_t)g->out_w * F;
    const int relu = ep->act == TFX_ACTIVATION_RELU, other = !relu && ep->act != TFX_ACTIVATION_LINEAR;
    float p[PIX * TFX__DIRECT_MAX_K];
    const float *src[TFX__DIRECT_MAX_K];
    for (size_t t = J->line0; t < J->line1; t++) {
        const size_t b = t / (size_t)g->out_h;
        const int oh = (int)(t % (size_t)g->out_h), ih0 = oh * g->sh - g->pad_top;
        const float *xb = J->x + b * in_img;
        float *zl = J->z + t * line, *yl = other ? zl : J->y + t * line;
        for (int ow = 0; ow < g->out_w; ow += PIX) {
            const int pix = g->out_w - ow < PIX ? g->out_w - ow : PIX;
            const int iw0 = ow * g->sw - g->pad_left, iw_last = (ow + PIX - 1) * g->sw - g->pad_left + g->kw;
            size_t ps;
            if (ih0 >= 0 && ih0 + g->kh <= g->in_h && iw0 >= 0 && iw_last <= g->in_w) { /* in the image */
                for (int ki = 0; ki < g->kh; ki++) src[ki] = xb + ((size_t)(ih0 + ki) * g->in_w + (size_t)iw0) * C;
                ps = (size_t)g->sw * C;
            } else { /* border, or a short last tile (repeating its last pixel) */
                for (int q = 0; q < PIX; q++) gather(g, xb, oh, ow + (q < pix ? q : pix - 1), p + (size_t)q * K);
                for (int ki = 0; ki < g->kh; ki++) src[ki] = p + (size_t)ki * run;
                ps = K;
            }
            size_t f = 0;
            for (; f + 32 <= F; f += 32)
                tile2(src, (size_t)g->kh, run, ps, F, J->w, ep->bias, relu, pix, f, zl + (size_t)ow * F, yl + (size_t)ow * F);
            for (; f < F; f += 16)
                tile1(src, (size_t)g->kh, run, ps, F, J->w, ep->bias, relu, pix, f, zl + (size_t)ow * F, yl + (size_t)ow * F);
        }
        if (other) tfx__activation_forward(ep->act, ep->alpha, ep->beta, zl, J->y + t * line, (size_t)g->out_w, F);
    }
}

int tfx__conv_direct_fits(const tfx__conv_geom *g, size_t filters)
{
    return (size_t)g->kh * g->kw * g->in_c <= TFX__DIRECT_MAX_K && filters % 16 == 0 && filters > 0;
}

void tfx__conv_direct(const tfx__conv_geom *g, size_t n, const float *x, const float *w, size_t filters, float *z,
                      const tfx__direct_epilogue *ep)
{
    const size_t lines = n * (size_t)g->out_h;
    int threads = tfx__threads();
    if ((size_t)threads > lines) threads = lines ? (int)lines : 1;
    direct_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < threads; i++)
        jobs[i] = (direct_job){g, x, w, filters, lines * (size_t)i / (size_t)threads,
                               lines * (size_t)(i + 1) / (size_t)threads, z, ep->y, ep};
    tfx__parallel(threads, direct_lines, jobs, sizeof *jobs);
}
