/* Grouped and depthwise convolution, direct: each output reads only its group's input
 * channels (no im2col of zero blocks, no dense GEMM over absent weights). Forward and input
 * gradient split the work over threads by output / input lines; every value is one in-order
 * sum, so results do not depend on the thread count. */
#include <string.h>

#include "core/kernels.h"

typedef struct grouped_job {
    const tfx__conv_geom *g;
    int groups;
    const float *a, *w; /* forward: x; input gradient: dz */
    size_t F, t0, t1;   /* forward: output lines; input gradient: input lines */
    float *out;
} grouped_job;

/* out[f] += xv * w[f] over one group's Fg filters, for each of its Cg input channels. */
static inline void taps(const float *xp, const float *wp, int groups, size_t Cg, size_t Fg, size_t F, float *zp)
{
    if (Cg == 1 && Fg == 1) { /* depthwise, multiplier 1: one vector multiply-add over the channels */
        for (size_t c = 0; c < F; c++) zp[c] += xp[c] * wp[c];
        return;
    }
    for (int grp = 0; grp < groups; grp++)
        for (size_t cg = 0; cg < Cg; cg++) {
            const float xv = xp[grp * Cg + cg], *wr = wp + cg * F + grp * Fg;
            float *zr = zp + grp * Fg;
            for (size_t f = 0; f < Fg; f++) zr[f] += xv * wr[f];
        }
}

static void forward_lines(void *arg)
{
    const grouped_job *J = arg;
    const tfx__conv_geom *g = J->g;
    const size_t C = (size_t)g->in_c, F = J->F, Cg = C / (size_t)J->groups, Fg = F / (size_t)J->groups;
    for (size_t t = J->t0; t < J->t1; t++) {
        const size_t b = t / (size_t)g->out_h;
        const int oh = (int)(t % (size_t)g->out_h);
        const float *xb = J->a + b * (size_t)g->in_h * g->in_w * C;
        for (int ow = 0; ow < g->out_w; ow++) {
            float *zp = J->out + (t * (size_t)g->out_w + (size_t)ow) * F;
            memset(zp, 0, F * sizeof(float));
            for (int ki = 0; ki < g->kh; ki++) {
                const int ih = oh * g->sh - g->pad_top + ki;
                if (ih < 0 || ih >= g->in_h) continue;
                for (int kj = 0; kj < g->kw; kj++) {
                    const int iw = ow * g->sw - g->pad_left + kj;
                    if (iw < 0 || iw >= g->in_w) continue;
                    taps(xb + ((size_t)ih * g->in_w + (size_t)iw) * C, J->w + ((size_t)ki * g->kw + kj) * Cg * F,
                         J->groups, Cg, Fg, F, zp);
                }
            }
        }
    }
}

static int split(size_t work)
{
    int threads = tfx__threads();
    return work < (size_t)threads ? (work ? (int)work : 1) : threads;
}

void tfx__conv_grouped(const tfx__conv_geom *g, int groups, size_t n, const float *x, const float *w, size_t F,
                       float *z)
{
    const size_t lines = n * (size_t)g->out_h;
    const int threads = split(lines);
    grouped_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < threads; i++)
        jobs[i] = (grouped_job){g, groups, x, w, F, lines * (size_t)i / (size_t)threads,
                                lines * (size_t)(i + 1) / (size_t)threads, z};
    tfx__parallel(threads, forward_lines, jobs, sizeof *jobs);
}

/* dx of input lines [t0, t1) (line t: image t / in_h, row t % in_h), gathered: each input
 * cell sums the outputs whose window holds it, taps in order, so lines split over threads
 * without write conflicts. */
static void dx_lines(void *arg)
{
    const grouped_job *J = arg;
    const tfx__conv_geom *g = J->g;
    const size_t C = (size_t)g->in_c, F = J->F, Cg = C / (size_t)J->groups, Fg = F / (size_t)J->groups;
    const size_t out_img = (size_t)g->out_h * g->out_w * F;
    for (size_t t = J->t0; t < J->t1; t++) {
        const size_t b = t / (size_t)g->in_h;
        const int ih = (int)(t % (size_t)g->in_h);
        for (int iw = 0; iw < g->in_w; iw++) {
            float *xp = J->out + (t * (size_t)g->in_w + (size_t)iw) * C;
            memset(xp, 0, C * sizeof(float));
            for (int ki = 0; ki < g->kh; ki++) {
                const int nh = ih + g->pad_top - ki;
                if (nh < 0 || nh % g->sh || nh / g->sh >= g->out_h) continue;
                for (int kj = 0; kj < g->kw; kj++) {
                    const int nw = iw + g->pad_left - kj;
                    if (nw < 0 || nw % g->sw || nw / g->sw >= g->out_w) continue;
                    const float *dp = J->a + b * out_img + ((size_t)(nh / g->sh) * g->out_w + (size_t)(nw / g->sw)) * F;
                    const float *wp = J->w + ((size_t)ki * g->kw + kj) * Cg * F;
                    if (Cg == 1 && Fg == 1) {
                        for (size_t c = 0; c < C; c++) xp[c] += dp[c] * wp[c];
                        continue;
                    }
                    for (int grp = 0; grp < J->groups; grp++)
                        for (size_t cg = 0; cg < Cg; cg++) {
                            const float *wr = wp + cg * F + grp * Fg, *dr = dp + grp * Fg;
                            float s = 0.0f;
                            for (size_t f = 0; f < Fg; f++) s += dr[f] * wr[f];
                            xp[grp * Cg + cg] += s;
                        }
                }
            }
        }
    }
}

void tfx__conv_grouped_dx(const tfx__conv_geom *g, int groups, size_t n, const float *dz, const float *w, size_t F,
                          float *dx)
{
    const size_t lines = n * (size_t)g->in_h;
    const int threads = split(lines);
    grouped_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < threads; i++)
        jobs[i] = (grouped_job){g, groups, dz, w, F, lines * (size_t)i / (size_t)threads,
                                lines * (size_t)(i + 1) / (size_t)threads, dx};
    tfx__parallel(threads, dx_lines, jobs, sizeof *jobs);
}

void tfx__conv_grouped_dw(const tfx__conv_geom *g, int groups, size_t n, const float *x, const float *dz, size_t F,
                          float *dw)
{
    const size_t C = (size_t)g->in_c, Cg = C / (size_t)groups, Fg = F / (size_t)groups;
    const size_t in_img = (size_t)g->in_h * g->in_w * C, out_img = (size_t)g->out_h * g->out_w * F;
    memset(dw, 0, (size_t)g->kh * g->kw * Cg * F * sizeof(float));
    for (size_t b = 0; b < n; b++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++) {
                const float *dp = dz + b * out_img + ((size_t)oh * g->out_w + (size_t)ow) * F;
                for (int ki = 0; ki < g->kh; ki++) {
                    const int ih = oh * g->sh - g->pad_top + ki;
                    if (ih < 0 || ih >= g->in_h) continue;
                    for (int kj = 0; kj < g->kw; kj++) {
                        const int iw = ow * g->sw - g->pad_left + kj;
                        if (iw < 0 || iw >= g->in_w) continue;
                        const float *xp = x + b * in_img + ((size_t)ih * g->in_w + (size_t)iw) * C;
                        float *wp = dw + ((size_t)ki * g->kw + kj) * Cg * F;
                        if (Cg == 1 && Fg == 1) {
                            for (size_t c = 0; c < C; c++) wp[c] += xp[c] * dp[c];
                            continue;
                        }
                        for (int grp = 0; grp < groups; grp++)
                            for (size_t cg = 0; cg < Cg; cg++) {
                                const float xv = xp[grp * Cg + cg], *dr = dp + grp * Fg;
                                float *wr = wp + cg * F + grp * Fg;
                                for (size_t f = 0; f < Fg; f++) wr[f] += xv * dr[f];
                            }
                    }
                }
            }
}
