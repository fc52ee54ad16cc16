/* Grouped and depthwise convolution, direct: each output reads only its group's input
 * channels (no im2col of zero blocks, no dense GEMM over absent weights). Forward and input
 * gradient split the work over threads by output / input lines; every value is one in-order
 * sum, so results do not depend on the thread count.
 *
 * Depthwise layers with one filter per channel (MobileNet's) have their own kernel: both
 * directions are a 2-D correlation of one image per channel (the input gradient with the
 * mirrored taps and, for strides > 1, only the taps that land), vectorised along the channels
 * (16 per vector), a 3x3's nine taps unrolled (four columns at a time at stride 1, column pairs
 * for the input gradient at stride 2), the bias and a clamping activation (ReLU, ReLU6, clip)
 * applied in registers: one pass over the memory (the generic code below wrote its sums, then
 * read and wrote them again for the bias and the activation). It sums in the generic code's
 * order, so results are bit-identical to it, in every instruction set it
 * is compiled for (AVX-512, AVX2, baseline; picked at run time, tfx__hook_isa_level can force a
 * lower one). docs/internals.md "Depthwise convolution". */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/hooks.h"
#include "core/kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#  define DW_X86 1
#endif

typedef float dw_v16f __attribute__((vector_size(64), aligned(4), may_alias));
typedef int dw_v16i __attribute__((vector_size(64), aligned(4), may_alias));

enum {
    DW_MAX_K = 16,       /* kernel rows the depthwise kernel takes */
    DW_MAX_TAPS = 64,    /* and taps */
    DW_SPLIT_MACS = 1 << 21, /* multiply-adds below which one thread runs it all (~100 us) */
    DW_MAX_TABLE = 4096, /* destination columns x kernel columns of its column table */
    DW_ACT_NONE = 0,     /* y = z (+ bias) */
    DW_ACT_CLAMP = 1,    /* y = min(max(z, lo), hi): ReLU (hi = inf), ReLU6, clip */
    DW_ACT_OTHER = 2     /* tfx__activation_forward over each finished line */
};

/* dst(r, p) = sum over taps (ki, kj) in order of src(row, col) * w[ki][kj][c], where the source
 * row of destination row r and tap ki is (r * row_a + row_b + ki * row_d) / row_s when that
 * divides and lands in the source (columns alike, tabulated in col). */
typedef struct dw_plan {
    const float *src, *w, *bias;
    float *z, *y; /* y: NULL in the input gradient (the sums go to z) */
    size_t C;
    int src_h, src_w, dst_h, dst_w, kh, kw;
    int row_a, row_b, row_d, row_s, col_s;
    const int *col;          /* [dst_w][kw]: source column, or -1 */
    int col_a, col_b, col_d; /* where full_lo <= p < full_hi, tap kj reads p * col_a + col_b + kj * col_d */
    int full_lo, full_hi;
    int pair_lo, pair_hi; /* columns in pairs (p, p + 1): p's taps 0 and 2 read c and c - 1, p + 1's tap 1 c */
    int act;
    float lo, hi;              /* clamp bounds */
    int fwd_act;               /* DW_ACT_OTHER: the activation */
    float alpha, beta;
    size_t chunks, chunk_c; /* channel chunks per line, channels per chunk (a multiple of 16) */
    size_t lines;           /* destination lines (all images) */
    int ahead;              /* fetch the next line's rows ahead (the data comes from memory) */
} dw_plan;

typedef struct dw_job {
    const dw_plan *plan;
    size_t u0, u1;
} dw_job;

/* The source rows destination line t reads, in kernel-row order (rk: their kernel rows). */
static int dw_rows(const dw_plan *P, size_t t, const float **rows, int *rk)
{
    const size_t b = t / (size_t)P->dst_h, C = P->C;
    const int r = (int)(t % (size_t)P->dst_h);
    const float *sb = P->src + b * (size_t)P->src_h * P->src_w * C;
    int nr = 0;
    for (int ki = 0; ki < P->kh; ki++) {
        const int num = r * P->row_a + P->row_b + ki * P->row_d;
        if (num < 0 || num % P->row_s || num / P->row_s >= P->src_h) continue;
        rows[nr] = sb + (size_t)(num / P->row_s) * P->src_w * C;
        rk[nr++] = ki;
    }
    return nr;
}

/* Fetching ahead: while line t runs, the source rows line t + 1 adds and line t + 1's
 * destination are touched in address order, a few cache lines per stored vector, where the
 * data comes from memory (the hardware prefetchers stop at every 4 KiB page; batch-16 calls
 * took up to 1.5x more CPU time without this). */
enum { DW_AHEAD_SEGS = DW_MAX_K + 2 };
typedef struct dw_ahead {
    const char *p[DW_AHEAD_SEGS];
    size_t lines[DW_AHEAD_SEGS];
    int seg, nseg, n; /* n: cache lines per step (0: off) */
    size_t at;
} dw_ahead;

static void dw_ahead_plan(const dw_plan *P, size_t t, const float *const *rows, int nr, size_t steps, dw_ahead *a)
{
    a->n = 0;
    a->nseg = a->seg = 0;
    a->at = 0;
    if (!P->ahead || t + 1 >= P->lines || P->chunks != 1 || steps == 0) return;
    const float *next[DW_MAX_K];
    int rk[DW_MAX_K];
    const int nn = dw_rows(P, t + 1, next, rk);
    const size_t row_lines = (size_t)P->src_w * P->C * sizeof(float) / 64 + 1;
    const size_t dst_lines = (size_t)P->dst_w * P->C * sizeof(float) / 64 + 1;
    size_t total = 0;
    for (int i = 0; i < nn; i++) {
        int have = 0;
        for (int j = 0; j < nr; j++) have |= next[i] == rows[j];
        if (have) continue;
        a->p[a->nseg] = (const char *)next[i];
        a->lines[a->nseg++] = row_lines;
        total += row_lines;
    }
    a->p[a->nseg] = (const char *)(P->z + (t + 1) * (size_t)P->dst_w * P->C);
    a->lines[a->nseg++] = dst_lines;
    total += dst_lines;
    if (P->y && P->y != P->z) {
        a->p[a->nseg] = (const char *)(P->y + (t + 1) * (size_t)P->dst_w * P->C);
        a->lines[a->nseg++] = dst_lines;
        total += dst_lines;
    }
    a->n = (int)((total + steps - 1) / steps);
}

static inline void dw_ahead_step(dw_ahead *a)
{
    for (int k = 0; k < a->n && a->seg < a->nseg; k++) {
        __builtin_prefetch(a->p[a->seg] + 64 * a->at, 0, 3);
        if (++a->at == a->lines[a->seg]) a->at = 0, a->seg++;
    }
}

#define DW_CAT2(a, b) a##b
#define DW_CAT(a, b) DW_CAT2(a, b)
#define DW_FN(name) DW_CAT(name, DW_SUFFIX)

#if DW_X86 && defined(__clang__)
#  define DW_SUFFIX _512
#  pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#  include "core/conv_depthwise_body.h"
#  pragma clang attribute pop
#  undef DW_SUFFIX
#  define DW_SUFFIX _256
#  pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#  include "core/conv_depthwise_body.h"
#  pragma clang attribute pop
#  undef DW_SUFFIX
#elif DW_X86
#  define DW_SUFFIX _512
#  pragma GCC push_options
#  pragma GCC target("avx512f")
#  include "core/conv_depthwise_body.h"
#  pragma GCC pop_options
#  undef DW_SUFFIX
#  define DW_SUFFIX _256
#  pragma GCC push_options
#  pragma GCC target("avx2")
#  include "core/conv_depthwise_body.h"
#  pragma GCC pop_options
#  undef DW_SUFFIX
#endif
#define DW_SUFFIX _base
#include "core/conv_depthwise_body.h"
#undef DW_SUFFIX

static void (*dw_pick(void))(void *)
{
#if DW_X86
    const int level = tfx__hook_isa_level > 0 ? tfx__hook_isa_level : 3;
    if (level >= 3 && __builtin_cpu_supports("avx512f")) return dw_units_512;
    if (level >= 2 && __builtin_cpu_supports("avx2")) return dw_units_256;
#endif
    return dw_units_base;
}

/* The column table of plan P (col: dst_w * kw ints) and its full range: columns p whose taps
 * all land, at unit source step (full_lo == full_hi: none). */
static void dw_columns(dw_plan *P, int col_s, int *col)
{
    P->full_lo = P->full_hi = 0;
    int in_run = 0;
    for (int p = 0; p < P->dst_w; p++) {
        int all = 1;
        for (int kj = 0; kj < P->kw; kj++) {
            const int num = p * P->col_a + P->col_b + kj * P->col_d;
            const int ok = num >= 0 && num % col_s == 0 && num / col_s < P->src_w;
            col[(size_t)p * P->kw + kj] = ok ? num / col_s : -1;
            all &= ok;
        }
        if (col_s != 1) continue;
        if (all && !in_run && P->full_hi == P->full_lo) P->full_lo = p, in_run = 1;
        if (all && in_run) P->full_hi = p + 1;
        if (!all) in_run = 0;
    }
    if (col_s != 1) P->full_lo = P->full_hi = 0;
    /* a 3x3's input gradient at column stride 2: the columns alternate between taps 0 and 2
     * and tap 1 alone, reading the same two source columns (the run of such pairs) */
    P->pair_lo = P->pair_hi = 0;
    if (P->kw != 3 || col_s != 2) return;
    for (int p = 0; p + 1 < P->dst_w; p++) {
        const int *a = col + (size_t)p * 3, *b = a + 3;
        const int ok = a[0] >= 1 && a[2] == a[0] - 1 && a[1] < 0 && b[1] == a[0] && b[0] < 0 && b[2] < 0;
        if (ok && P->pair_hi == P->pair_lo) P->pair_lo = p, P->pair_hi = p + 2;
        else if (ok && p == P->pair_hi) P->pair_hi = p + 2;
        else if (P->pair_hi > P->pair_lo && p >= P->pair_hi) break;
    }
}

static int split(size_t work);

/* Runs plan P over lines destination lines: lines split over threads; when they are few,
 * the channels too (in chunks of whole vectors; never for DW_ACT_OTHER, which needs lines). */
static void dw_run(dw_plan *P, size_t lines)
{
    const int threads = tfx__threads();
    const size_t blocks = P->C / 16;
    size_t want = 1;
    if (P->act != DW_ACT_OTHER && blocks > 1 && lines < 4 * (size_t)threads)
        want = (4 * (size_t)threads + lines - 1) / lines;
    if (want > blocks) want = blocks ? blocks : 1;
    P->chunk_c = want > 1 ? (blocks + want - 1) / want * 16 : P->C;
    P->chunks = want > 1 ? (P->C + P->chunk_c - 1) / P->chunk_c : 1;
    const size_t units = lines * P->chunks;
    P->lines = lines;
    /* Small layers stay on one thread: a split gives each thread at least ~50 us, the pool's
     * spin window (pool.c). Waking a worker costs 5-10 us on an idle machine and 0.2 ms and more
     * on a busy one: MobileNetV2's 14x14 layers at batch 1 took 0.23-0.26 ms per call on two
     * threads there, 0.02-0.06 ms on one. */
    const double macs = (double)lines * P->dst_w * P->C * P->kh * P->kw / (P->row_s * (double)P->col_s);
    const int nt = macs < DW_SPLIT_MACS ? 1 : split(units);
    /* from memory: more than fits the caches of the threads at hand */
    P->ahead = (double)lines * P->dst_w * P->C * sizeof(float) > 4.0 * 1024 * 1024;
    void (*fn)(void *) = dw_pick();
    dw_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < nt; i++)
        jobs[i] = (dw_job){P, units * (size_t)i / (size_t)nt, units * (size_t)(i + 1) / (size_t)nt};
    tfx__parallel(nt, fn, jobs, sizeof *jobs);
}

/* Whether the depthwise kernel takes this layer (one filter per channel, a small kernel). */
static int dw_fits(const tfx__conv_geom *g, int groups, size_t F, int dst_w)
{
    return groups == g->in_c && F == (size_t)g->in_c && g->kh <= DW_MAX_K && g->kw >= 1 &&
           g->kh * g->kw <= DW_MAX_TAPS && (size_t)dst_w * (size_t)g->kw <= DW_MAX_TABLE;
}

typedef struct grouped_job {
    const tfx__conv_geom *g;
    int groups;
    const float *a, *w; /* forward: x; input gradient: dz */
    size_t F, t0, t1;   /* forward: output lines; input gradient: input lines */
    float *out;
    const tfx__direct_epilogue *ep; /* forward: NULL or the bias and activation per line */
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
        if (J->ep) { /* while the line is in cache */
            const size_t o = t * (size_t)g->out_w * F;
            tfx__bias_activation_forward(J->ep->act, J->ep->alpha, J->ep->beta, J->ep->bias, J->out + o, J->ep->y + o,
                                         (size_t)g->out_w, F);
        }
    }
}

static int split(size_t work)
{
    int threads = tfx__threads();
    return work < (size_t)threads ? (work ? (int)work : 1) : threads;
}

void tfx__conv_grouped(const tfx__conv_geom *g, int groups, size_t n, const float *x, const float *w, size_t F,
                       float *z, const tfx__direct_epilogue *ep)
{
    const size_t lines = n * (size_t)g->out_h;
    if (lines == 0 || g->out_w <= 0) return;
    if (dw_fits(g, groups, F, g->out_w)) {
        int col[DW_MAX_TABLE];
        dw_plan P = {.src = x, .w = w, .bias = ep ? ep->bias : NULL, .z = z, .y = ep ? ep->y : z, .C = F,
                     .src_h = g->in_h, .src_w = g->in_w, .dst_h = g->out_h, .dst_w = g->out_w, .kh = g->kh,
                     .kw = g->kw, .row_a = g->sh, .row_b = -g->pad_top, .row_d = 1, .row_s = 1, .col = col,
                     .col_a = g->sw, .col_b = -g->pad_left, .col_d = 1, .act = DW_ACT_NONE};
        if (ep && ep->act == TFX_ACTIVATION_RELU) {
            P.act = DW_ACT_CLAMP;
            P.lo = 0.0f;
            P.hi = (float)INFINITY;
        } else if (ep && (ep->act == TFX_ACTIVATION_RELU6 || ep->act == TFX_ACTIVATION_CLIP)) {
            P.act = DW_ACT_CLAMP;
            P.lo = ep->act == TFX_ACTIVATION_RELU6 ? 0.0f : ep->alpha;
            P.hi = ep->act == TFX_ACTIVATION_RELU6 ? 6.0f : ep->beta;
        } else if (ep && ep->act != TFX_ACTIVATION_LINEAR) {
            P.act = DW_ACT_OTHER;
            P.fwd_act = ep->act;
            P.alpha = ep->alpha;
            P.beta = ep->beta;
        }
        P.col_s = 1;
        dw_columns(&P, 1, col);
        dw_run(&P, lines);
        return;
    }
    const int threads = split(lines);
    grouped_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < threads; i++)
        jobs[i] = (grouped_job){g, groups, x, w, F, lines * (size_t)i / (size_t)threads,
                                lines * (size_t)(i + 1) / (size_t)threads, z, ep};
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
    if (lines == 0 || g->in_w <= 0) return;
    if (dw_fits(g, groups, F, g->in_w)) {
        int col[DW_MAX_TABLE];
        dw_plan P = {.src = dz, .w = w, .z = dx, .C = F, .src_h = g->out_h, .src_w = g->out_w, .dst_h = g->in_h,
                     .dst_w = g->in_w, .kh = g->kh, .kw = g->kw, .row_a = 1, .row_b = g->pad_top, .row_d = -1,
                     .row_s = g->sh, .col = col, .col_a = 1, .col_b = g->pad_left, .col_d = -1, .act = DW_ACT_NONE};
        P.col_s = g->sw;
        dw_columns(&P, g->sw, col);
        dw_run(&P, lines);
        return;
    }
    const int threads = split(lines);
    grouped_job jobs[TFX__MAX_THREADS];
    for (int i = 0; i < threads; i++)
        jobs[i] = (grouped_job){g, groups, dz, w, F, lines * (size_t)i / (size_t)threads,
                                lines * (size_t)(i + 1) / (size_t)threads, dx, NULL};
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
