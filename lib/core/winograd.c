/* Winograd F(m x m, 3 x 3), m = 2 or 4 (Toom-Cook points 0, +-1, inf for m = 2; for m = 4
 * see bt4). Per output tile of m x m pixels the (m+2) x (m+2) input tile d is mapped to
 * B^T d B, the kernel g to G g G^T, and the (m+2)^2 elementwise products summed over input
 * channels are mapped back by A^T (.) A. The channel sums are (m+2)^2 independent GEMMs
 * [tiles x cin] x [cin x cout], the tiles of all images of a block in one GEMM.
 *
 * NHWC keeps the channels innermost, so every transform is written as a few adds over a run
 * of contiguous channels (the compiler vectorises those loops); a 2D transform is the 1D one
 * over columns and then over rows. */
#include "core/winograd.h"

#include <stddef.h>
#include <string.h>

#include "core/hooks.h"
#include "core/kernels.h"

/* Channel chunk of the transforms: the per-tile temporaries (36 x CH floats) stay in L1. */
#define CH 64
/* Workspace budget of one block of tiles (transformed input + GEMM output), in floats: 1 MiB,
 * so that the GEMM outputs are still in L2 for the output transform. Measured on the seed
 * model's layers (Zen 4, 1 MiB L2, one thread): blocks of 64-128 tiles are up to 1.3x faster
 * than blocks of 300 or more. */
#define BLOCK_FLOATS ((size_t)1 << 18)
/* Fewest tiles per block: OpenBLAS's Haswell kernels pack the transformed kernel (cin x cout)
 * on every GEMM call, which shorter blocks do not amortise (37 -> 64 tiles: integrated
 * gradients 1.15x faster with them; no change with the AVX-512 small-matrix kernels). */
#define MIN_TILES 64
/* The kernel gradient: transformed tiles per block (floats; 1 MiB measured fastest for the seed
 * model's layers against 0.5 to 4 MiB), and fixed parts summed in order so that the result
 * does not depend on the thread count (two: this library's machines). */
#define GRAD_BLOCK_FLOATS ((size_t)1 << 18)
#define GRAD_PARTS 2

_Thread_local int tfx__hook_winograd = -1; /* core/hooks.h */

int tfx__winograd_choose(int cin, int cout, int out_h, int out_w)
{
    const int force = tfx__hook_winograd;
    if (force == 0 || force == 2 || force == 4) return force;
    /* Few channels: the transforms cost as much as the GEMM work they save (measured: equal
     * speed at 3 -> 32 and 8 -> 32 channels, F(4x4) 1.4x faster at 16 -> 16). Many: the
     * transformed kernel (4x the kernel) would pass 64 MiB, and im2col GEMMs are efficient. */
    if (cin < 16 || cout < 16 || (double)cin * cout > (double)(1 << 24) / 36) return 0;
    if (force == -2 || force == -4) return -force;
    /* Tiny outputs: most of a 4x4 tile would be padding. */
    return out_h < 4 || out_w < 4 ? 2 : 4;
}

/* F(4x4)'s per-point products have n x tiles rows; up to 16 they read the transformed kernel
 * (36 cin cout floats, against F(2x2)'s 16) for little work and are bound by memory: ResNet-18's
 * 7x7x512 convolutions of one image (4 tiles) took 2.1 ms by F(4x4), 1.4 ms by F(2x2) on two
 * threads (14.5 against 9.6 ms at 16 images, where F(4x4) stays), its 14x14x256 ones (16 tiles)
 * 0.63 and 0.55 ms; 28x28x128 (49 tiles) 0.95 against 2.4 ms. */
int tfx__winograd_choose_n(int cin, int cout, int out_h, int out_w, size_t n)
{
    const int m = tfx__winograd_choose(cin, cout, out_h, out_w);
    if (m == 4 && tfx__hook_winograd == -1 && n * (size_t)((out_h + 3) / 4) * (size_t)((out_w + 3) / 4) <= 16) return 2;
    return m;
}

typedef ptrdiff_t sdiff;

/* The transforms are a third of the work: compiled per instruction set (TFX__CLONES,
 * core/internal.h). */

/* ---- 1D transforms over n contiguous channels; inputs at in + k * is, outputs at out + k * os.
 * The kernels take one restrict pointer per stream: with pointers derived from one base GCC
 * could not rule out overlap and fell back to scalar code at run time. */

/* B^T for m = 2 (4 inputs, 4 outputs). */
TFX__CLONES static void bt2k(size_t n,
    const float *restrict d0, const float *restrict d1, const float *restrict d2, const float *restrict d3,
    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3)
{
    for (size_t c = 0; c < n; c++) {
        o0[c] = d0[c] - d2[c];
        o1[c] = d1[c] + d2[c];
        o2[c] = d2[c] - d1[c];
        o3[c] = d1[c] - d3[c];
    }
}

static void bt2(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    bt2k(n, in, in + is, in + 2 * is, in + 3 * is, out, out + os, out + 2 * os, out + 3 * os);
}

/* A^T for m = 2 (4 inputs, 2 outputs). */
TFX__CLONES static void at2k(size_t n,
    const float *restrict m0, const float *restrict m1, const float *restrict m2, const float *restrict m3,
    float *restrict o0, float *restrict o1)
{
    for (size_t c = 0; c < n; c++) {
        o0[c] = m0[c] + m1[c] + m2[c];
        o1[c] = m1[c] - m2[c] - m3[c];
    }
}

static void at2(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    at2k(n, in, in + is, in + 2 * is, in + 3 * is, out, out + os);
}

/* G for m = 2 (3 inputs, 4 outputs). */
TFX__CLONES static void g2k(size_t n,
    const float *restrict g0, const float *restrict g1, const float *restrict g2v,
    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3)
{
    for (size_t c = 0; c < n; c++) {
        float s = g0[c] + g2v[c];
        o0[c] = g0[c];
        o1[c] = 0.5f * (s + g1[c]);
        o2[c] = 0.5f * (s - g1[c]);
        o3[c] = g2v[c];
    }
}

static void g2(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    g2k(n, in, in + is, in + 2 * is, out, out + os, out + 2 * os, out + 3 * os);
}

/* The kernel gradient by F(3x3, 2x2): transposing F(2x2, 3x3) (Lavin & Gray 2016) swaps the
 * roles of the output and kernel transforms, so dW = G^T [(A E A^T) . (B^T D B)] G for a 2x2
 * tile E of dz and its 4x4 input patch D, B^T as above. */

/* A for m = 2 (2 inputs, 4 outputs): the 2x2 gradient tile spread over the 4 points. */
TFX__CLONES static void a2k(size_t n, const float *restrict e0, const float *restrict e1, float *restrict o0,
    float *restrict o1, float *restrict o2, float *restrict o3)
{
    for (size_t c = 0; c < n; c++) {
        o0[c] = e0[c];
        o1[c] = e0[c] + e1[c];
        o2[c] = e0[c] - e1[c];
        o3[c] = -e1[c];
    }
}

static void a2(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    a2k(n, in, in + is, out, out + os, out + 2 * os, out + 3 * os);
}

/* G^T for m = 2 (4 inputs, 3 outputs): the 4 points back to the 3 kernel taps. */
TFX__CLONES static void gt2k(size_t n,
    const float *restrict m0, const float *restrict m1, const float *restrict m2, const float *restrict m3,
    float *restrict o0, float *restrict o1, float *restrict o2)
{
    for (size_t c = 0; c < n; c++) {
        float s = 0.5f * (m1[c] + m2[c]);
        o0[c] = m0[c] + s;
        o1[c] = 0.5f * (m1[c] - m2[c]);
        o2[c] = s + m3[c];
    }
}

static void gt2(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    gt2k(n, in, in + is, in + 2 * is, in + 3 * is, out, out + os, out + 2 * os);
}

/* m = 4 with the points 0, 1, -1, 1/2, -2 (and infinity) instead of Lavin's 0, +-1, +-2:
 * measured ~3x smaller worst error relative to the sum of |terms| and ~1.5x smaller RMS
 * error (float32 simulation, 64 channels), as Barabasz et al. (2020) found. Rows of B^T are
 * scaled by 2 (G by 1/2) to integer coefficients; powers of two change no rounding. */

/* B^T for m = 4 (6 inputs, 6 outputs). */
TFX__CLONES static void bt4k(size_t n,
    const float *restrict d0, const float *restrict d1, const float *restrict d2, const float *restrict d3,
    const float *restrict d4, const float *restrict d5,
    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3, float *restrict o4,
    float *restrict o5)
{
    for (size_t c = 0; c < n; c++) {
        o0[c] = 2.0f * (d0[c] + d4[c]) + 3.0f * (d3[c] - d1[c]) - 4.0f * d2[c];
        o1[c] = 2.0f * (d4[c] - d1[c]) + d2[c] + 5.0f * d3[c];
        o2[c] = 2.0f * (d1[c] + d4[c]) - 5.0f * d2[c] + d3[c];
        o3[c] = 2.0f * (d3[c] - d1[c]) + d4[c] - d2[c];
        o4[c] = 2.0f * (d4[c] - d2[c]) + d1[c] - d3[c];
        o5[c] = 2.0f * (d1[c] + d5[c]) + 3.0f * (d4[c] - d2[c]) - 4.0f * d3[c];
    }
}

static void bt4(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    bt4k(n, in, in + is, in + 2 * is, in + 3 * is, in + 4 * is, in + 5 * is, out, out + os, out + 2 * os,
        out + 3 * os, out + 4 * os, out + 5 * os);
}

/* A^T for m = 4 (6 inputs, 4 outputs). */
TFX__CLONES static void at4k(size_t n,
    const float *restrict m0, const float *restrict m1, const float *restrict m2, const float *restrict m3,
    const float *restrict m4, const float *restrict m5,
    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3)
{
    for (size_t c = 0; c < n; c++) {
        float s12 = m1[c] + m2[c], d12 = m1[c] - m2[c];
        o0[c] = m0[c] + s12 + m3[c] + m4[c];
        o1[c] = d12 + 0.5f * m3[c] - 2.0f * m4[c];
        o2[c] = s12 + 0.25f * m3[c] + 4.0f * m4[c];
        o3[c] = d12 + 0.125f * m3[c] - 8.0f * m4[c] + m5[c];
    }
}

static void at4(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    at4k(n, in, in + is, in + 2 * is, in + 3 * is, in + 4 * is, in + 5 * is, out, out + os, out + 2 * os, out + 3 * os);
}

/* G for m = 4 (3 inputs, 6 outputs). */
TFX__CLONES static void g4k(size_t n,
    const float *restrict g0, const float *restrict g1, const float *restrict g2v,
    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3, float *restrict o4,
    float *restrict o5)
{
    for (size_t c = 0; c < n; c++) {
        float s = g0[c] + g2v[c];
        o0[c] = 0.5f * g0[c];
        o1[c] = (s + g1[c]) * (1.0f / 6.0f);
        o2[c] = (g1[c] - s) * (1.0f / 6.0f);
        o3[c] = (4.0f * g0[c] + 2.0f * g1[c] + g2v[c]) * (-4.0f / 15.0f);
        o4[c] = (g0[c] - 2.0f * g1[c] + 4.0f * g2v[c]) * (1.0f / 30.0f);
        o5[c] = 0.5f * g2v[c];
    }
}

static void g4(const float *in, sdiff is, float *out, sdiff os, size_t n)
{
    g4k(n, in, in + is, in + 2 * is, out, out + os, out + 2 * os, out + 3 * os, out + 4 * os, out + 5 * os);
}

typedef void (*tf1d)(const float *, sdiff, float *, sdiff, size_t);

static size_t round16(size_t f) { return (f + 15) & ~(size_t)15; }

/* Floats between consecutive transformed planes: an odd number of cache lines, so that the
 * (m+2)^2 planes a tile touches do not all map to the same cache sets. */
static size_t plane_stride(size_t floats)
{
    size_t lines = (floats + 15) / 16;
    return 16 * (lines | 1);
}

static size_t total_tiles(int m, const tfx__wino_geom *g, size_t n)
{
    return n * (size_t)((g->out_h + m - 1) / m) * (size_t)((g->out_w + m - 1) / m);
}

/* Tiles the workspace budget holds, at least MIN_TILES. */
static size_t budget_tiles(int m, const tfx__wino_geom *g)
{
    const size_t a2 = (size_t)(m + 2) * (m + 2), per = a2 * ((size_t)g->cin + g->cout);
    size_t t = per ? BLOCK_FLOATS / per : (size_t)-1;
    return t < MIN_TILES ? MIN_TILES : t;
}

/* A single block (one or two images) is split over two threads: by output channels when
 * each half is at least the small kernel's 64-column tile, else into two halves of the tiles
 * (each thread then reads all of the transformed kernel, but does not repeat the input
 * transform; measured one image, two threads: 32 -> 64 channels 0.071 -> 0.055 ms, 64 -> 32
 * 0.130 -> 0.086 ms, 128 -> 64 even, 64 -> 128 better by channels). Either way no output
 * value depends on the split. Not by channels under a softmax epilogue (it needs them all). */
static size_t channel_parts(int m, const tfx__wino_geom *g, size_t n, int softmax)
{
    return total_tiles(m, g, n) <= budget_tiles(m, g) && g->cout >= 128 && !softmax ? 2 : 1;
}

/* Tiles per block: the budget, at most all of them; a single block not split by channels
 * goes in two halves. */
static size_t block_tiles(int m, const tfx__wino_geom *g, size_t total)
{
    const size_t t = budget_tiles(m, g);
    if (t < total) return t;
    return g->cout >= 128 || total < 2 ? total : (total + 1) / 2;
}

/* Threads: tfx__threads() (the BLAS's count), at most one per block. The transforms and the
 * short per-block GEMMs are a third and two thirds of the work, so without threads of its own
 * Winograd would use one core whatever the BLAS setting. */
static size_t channel_split(const tfx__wino_geom *g) { return ((size_t)g->cout / 2 + 15) / 16 * 16; }

int tfx__winograd_threads(int m, const tfx__wino_geom *g, size_t n)
{
    int t = tfx__threads();
    const size_t total = total_tiles(m, g, n), Tb = block_tiles(m, g, total);
    size_t jobs = Tb ? (total + Tb - 1) / Tb : 1;
    if (jobs == 1) jobs = channel_parts(m, g, n, 0);
    return (size_t)t > jobs ? (int)jobs : t;
}

/* Per-thread block area: transformed input and GEMM output planes, one partial tile. */
static size_t block_area(int m, const tfx__wino_geom *g, size_t T)
{
    const size_t a2 = (size_t)(m + 2) * (m + 2);
    return a2 * (plane_stride(T * (size_t)g->cin) + plane_stride(T * (size_t)g->cout)) +
           round16((size_t)m * m * (size_t)g->cout);
}

size_t tfx__winograd_work_floats(int m, const tfx__wino_geom *g, size_t n, int threads)
{
    size_t areas = (size_t)(threads < 1 ? 1 : threads), parts = channel_parts(m, g, n, 0);
    return (areas > parts ? areas : parts) * block_area(m, g, block_tiles(m, g, total_tiles(m, g, n)));
}

size_t tfx__winograd_kernel_floats(int m, const tfx__wino_geom *g)
{
    return round16((size_t)(m + 2) * (m + 2) * (size_t)g->cin * g->cout);
}

/* u[k][p] = (G g G^T)[k] for every kernel p of the plane layout [3][3][planes]; rotate reads
 * tap (2 - ki, 2 - kj) instead of (ki, kj). */
static void transform_weights(int m, const float *w, size_t planes, int rotate, float *u)
{
    const int a = m + 2;
    const tf1d gt = m == 2 ? g2 : g4;
    float tmp[6 * 3 * CH];
    const sdiff P = (sdiff)planes;
    for (size_t p0 = 0; p0 < planes; p0 += CH) {
        size_t cnt = planes - p0 < CH ? planes - p0 : CH;
        /* Columns kj: tmp[i][kj] = sum_ki G[i][ki] g[ki][kj]. */
        for (int kj = 0; kj < 3; kj++) {
            const float *col = rotate ? w + (sdiff)(8 - kj) * P + (sdiff)p0 : w + (sdiff)kj * P + (sdiff)p0;
            gt(col, rotate ? -3 * P : 3 * P, tmp + kj * CH, 3 * CH, cnt);
        }
        /* Rows i: u[i][j] = sum_kj tmp[i][kj] G[j][kj]. */
        for (int i = 0; i < a; i++) gt(tmp + (size_t)i * 3 * CH, CH, u + (size_t)i * a * planes + p0, P, cnt);
    }
}

/* dst[t][f][c] = src[t][c][f] for the 9 taps, in 16 x 16 blocks. */
static void transpose_taps(const float *src, size_t nc, size_t nf, float *dst)
{
    for (size_t t = 0; t < 9; t++, src += nc * nf, dst += nc * nf)
        for (size_t c0 = 0; c0 < nc; c0 += 16)
            for (size_t f0 = 0; f0 < nf; f0 += 16) {
                const size_t c1 = c0 + 16 < nc ? c0 + 16 : nc, f1 = f0 + 16 < nf ? f0 + 16 : nf;
                for (size_t f = f0; f < f1; f++)
                    for (size_t c = c0; c < c1; c++) dst[f * nc + c] = src[c * nf + f];
            }
}

/* Input transform of tiles [t0, t0 + T) (over all images, row-major per image):
 * v[k][t][c] = (B^T d B)[k] of tile t, d the (m+2) x (m+2) input patch of its m x m outputs
 * (zeros outside the image). */
static void input_transform(int m, const tfx__wino_geom *g, const float *x, size_t t0, size_t T, float *v,
                            sdiff vplane)
{
    const int a = m + 2;
    const size_t ci = (size_t)g->cin;
    const tf1d bt = m == 2 ? bt2 : bt4;
    const int th = (g->out_h + m - 1) / m, tw = (g->out_w + m - 1) / m;
    const size_t tpi = (size_t)th * tw, in_img = (size_t)g->in_h * g->in_w * ci;
    float dbuf[6 * 6 * CH], tbuf[6 * 6 * CH];
    for (size_t t = 0; t < T; t++) {
        const size_t gt = t0 + t, b = gt / tpi, r = gt % tpi;
        const int ih0 = (int)(r / tw) * m - g->pad_top, iw0 = (int)(r % tw) * m - g->pad_left;
        const float *xb = x + b * in_img;
        const int inside = ih0 >= 0 && iw0 >= 0 && ih0 + a <= g->in_h && iw0 + a <= g->in_w;
        for (size_t c0 = 0; c0 < ci; c0 += CH) {
            const size_t cnt = ci - c0 < CH ? ci - c0 : CH;
            const float *d;
            sdiff rs, cs;
            if (inside) { /* read the tile in place */
                d = xb + ((size_t)ih0 * g->in_w + iw0) * ci + c0;
                rs = (sdiff)((size_t)g->in_w * ci);
                cs = (sdiff)ci;
            } else { /* border tile: copy with zeros outside the image */
                for (int i = 0; i < a; i++)
                    for (int j = 0; j < a; j++) {
                        float *dst = dbuf + ((size_t)i * a + j) * CH;
                        int ih = ih0 + i, iw = iw0 + j;
                        if (ih < 0 || ih >= g->in_h || iw < 0 || iw >= g->in_w)
                            memset(dst, 0, cnt * sizeof(float));
                        else
                            memcpy(dst, xb + ((size_t)ih * g->in_w + iw) * ci + c0, cnt * sizeof(float));
                    }
                d = dbuf;
                rs = (sdiff)a * CH;
                cs = CH;
            }
            for (int j = 0; j < a; j++) bt(d + j * cs, rs, tbuf + j * CH, (sdiff)a * CH, cnt);
            for (int i = 0; i < a; i++)
                bt(tbuf + (size_t)i * a * CH, CH, v + (sdiff)i * a * vplane + (sdiff)(t * ci + c0), vplane, cnt);
        }
    }
}

/* One thread's share: tiles [t_begin, t_end) in blocks of Tb, output channels [f_begin, f_end). */
typedef struct wino_job {
    int m;
    const tfx__wino_geom *g;
    const float *x, *u;
    float *z, *area;
    const tfx__wino_epilogue *ep;
    size_t Tb, t_begin, t_end, f_begin, f_end;
} wino_job;

static void run_blocks(void *arg)
{
    const wino_job *J = arg;
    const int m = J->m, a = m + 2;
    const tfx__wino_geom *g = J->g;
    const float *x = J->x, *u = J->u;
    float *z = J->z;
    const tfx__wino_epilogue *ep = J->ep;
    const size_t a2 = (size_t)a * a, ci = (size_t)g->cin, co = (size_t)g->cout, Tb = J->Tb;
    const tf1d at = m == 2 ? at2 : at4;
    const int th = (g->out_h + m - 1) / m, tw = (g->out_w + m - 1) / m;
    const size_t tpi = (size_t)th * tw;
    const size_t out_img = (size_t)g->out_h * g->out_w * co;
    const sdiff vplane = (sdiff)plane_stride(Tb * ci), mplane = (sdiff)plane_stride(Tb * co);
    float *v = J->area, *mm = v + a2 * (size_t)vplane, *tile = mm + a2 * (size_t)mplane;
    float tbuf[6 * 6 * CH];

    for (size_t t0 = J->t_begin; t0 < J->t_end; t0 += Tb) {
        const size_t T = J->t_end - t0 < Tb ? J->t_end - t0 : Tb;
        input_transform(m, g, x, t0, T, v, vplane);
        /* One GEMM per transformed position k (this job's output channels). */
        const size_t fb = J->f_begin, fe = J->f_end;
        for (size_t k = 0; k < a2; k++) {
            if (ci <= TFX__WIDE_MAX_K)
                tfx__sgemm_small(0, 0, T, fe - fb, ci, v + k * (size_t)vplane, ci, u + k * ci * co + fb, co,
                                 mm + k * (size_t)mplane + fb, co);
            else
                tfx__sgemm(0, 0, T, fe - fb, ci, 1.0f, v + k * (size_t)vplane, ci, u + k * ci * co + fb, co, 0.0f,
                           mm + k * (size_t)mplane + fb, co);
        }
        /* Output transform straight into z for whole tiles, else into tile[m][m][co] and the
         * visible pixels to z; then the epilogue per tile row, still in cache. */
        for (size_t t = 0; t < T; t++) {
            const size_t gt = t0 + t, b = gt / tpi, r = gt % tpi;
            const int oh0 = (int)(r / tw) * m, ow0 = (int)(r % tw) * m;
            const int rows = g->out_h - oh0 < m ? g->out_h - oh0 : m, cols = g->out_w - ow0 < m ? g->out_w - ow0 : m;
            const size_t off0 = b * out_img + ((size_t)oh0 * g->out_w + ow0) * co, zrow = (size_t)g->out_w * co;
            const int whole = rows == m && cols == m;
            float *dst = whole ? z + off0 : tile;
            const size_t drow = whole ? zrow : (size_t)m * co;
            for (size_t f0 = fb; f0 < fe; f0 += CH) {
                const size_t cnt = fe - f0 < CH ? fe - f0 : CH;
                const float *src = mm + t * co + f0;
                for (int j = 0; j < a; j++) at(src + j * mplane, (sdiff)a * mplane, tbuf + j * CH, (sdiff)a * CH, cnt);
                for (int i = 0; i < m; i++)
                    at(tbuf + (size_t)i * a * CH, CH, dst + (size_t)i * drow + f0, (sdiff)co, cnt);
            }
            const int all = fb == 0 && fe == co;
            for (int i = 0; i < rows; i++) {
                const size_t off = off0 + (size_t)i * zrow;
                if (!whole) {
                    if (all)
                        memcpy(z + off, tile + (size_t)i * m * co, (size_t)cols * co * sizeof(float));
                    else
                        for (int j = 0; j < cols; j++)
                            memcpy(z + off + (size_t)j * co + fb, tile + ((size_t)i * m + j) * co + fb,
                                   (fe - fb) * sizeof(float));
                }
                if (ep && all)
                    tfx__bias_activation_forward(ep->act, ep->alpha, ep->beta, ep->bias, z + off, ep->y + off, (size_t)cols, co);
                else if (ep)
                    for (int j = 0; j < cols; j++)
                        tfx__bias_activation_forward(ep->act, ep->alpha, ep->beta, ep->bias ? ep->bias + fb : NULL,
                                                     z + off + (size_t)j * co + fb, ep->y + off + (size_t)j * co + fb,
                                                     1, fe - fb);
            }
        }
    }
}

void tfx__winograd_kernel(int m, const tfx__wino_geom *g, const float *w, int rotate, float *tmp, float *u)
{
    const size_t ci = (size_t)g->cin, co = (size_t)g->cout;
    if (rotate) { /* w is [3][3][co][ci]: the GEMMs want [ci][co] */
        transpose_taps(w, co, ci, tmp);
        transform_weights(m, tmp, ci * co, 1, u);
    } else {
        transform_weights(m, w, ci * co, 0, u);
    }
}

void tfx__winograd_conv(int m, const tfx__wino_geom *g, size_t n, const float *x, const float *u, int threads,
                        float *work, float *z, const tfx__wino_epilogue *ep)
{
    const size_t total = total_tiles(m, g, n), Tb = block_tiles(m, g, total);
    const size_t blocks = (total + Tb - 1) / Tb, co = (size_t)g->cout;
    const size_t per_area = block_area(m, g, Tb);
    if (threads < 1) threads = 1;
    if (threads > TFX__MAX_THREADS) threads = TFX__MAX_THREADS;
    wino_job jobs[TFX__MAX_THREADS];
    if (channel_parts(m, g, n, ep && ep->act == TFX_ACTIVATION_SOFTMAX) == 2) {
        const size_t mid = channel_split(g);
        jobs[0] = (wino_job){m, g, x, u, z, work, ep, Tb, 0, total, 0, mid};
        jobs[1] = (wino_job){m, g, x, u, z, work + per_area, ep, Tb, 0, total, mid, co};
        if (threads >= 2) {
            tfx__parallel(2, run_blocks, jobs, sizeof *jobs);
        } else {
            run_blocks(&jobs[0]);
            run_blocks(&jobs[1]);
        }
        return;
    }
    if ((size_t)threads > blocks) threads = (int)blocks;
    for (int i = 0; i < threads; i++) { /* contiguous runs of whole blocks, all channels */
        size_t b0 = blocks * (size_t)i / (size_t)threads, b1 = blocks * (size_t)(i + 1) / (size_t)threads;
        jobs[i] = (wino_job){m, g, x, u, z, work + (size_t)i * per_area, ep, Tb, b0 * Tb,
                             b1 * Tb < total ? b1 * Tb : total, 0, co};
    }
    tfx__parallel(threads, run_blocks, jobs, sizeof *jobs);
}

/* ---- kernel gradient ---- */

/* Tiles per gradient block: transformed input and gradient tiles of about GRAD_BLOCK_FLOATS. */
static size_t grad_block_tiles(const tfx__wino_geom *g, size_t total)
{
    size_t t = GRAD_BLOCK_FLOATS / (16 * ((size_t)g->cin + g->cout));
    if (t < MIN_TILES) t = MIN_TILES;
    return t < total ? t : total ? total : 1;
}

/* One part's area: the 16 accumulated planes M[k][ci][co], then a block's V and U. */
static size_t grad_area(const tfx__wino_geom *g, size_t Tb)
{
    return 16 * (plane_stride((size_t)g->cin * g->cout) + plane_stride(Tb * g->cin) + plane_stride(Tb * g->cout));
}

size_t tfx__winograd_grad_work_floats(const tfx__wino_geom *g, size_t n)
{
    return GRAD_PARTS * grad_area(g, grad_block_tiles(g, total_tiles(2, g, n)));
}

typedef struct grad_job {
    const tfx__wino_geom *g;
    const float *x, *dz;
    float *area;
    size_t Tb, t_begin, t_end;
} grad_job;

/* Tiles [t_begin, t_end) in blocks: V = B^T D B, U = A E A^T, and M[k] += V[k]^T U[k]. */
static void grad_blocks(void *arg)
{
    const grad_job *J = arg;
    const tfx__wino_geom *g = J->g;
    const size_t ci = (size_t)g->cin, co = (size_t)g->cout, Tb = J->Tb;
    const int tw = (g->out_w + 1) / 2;
    const size_t tpi = (size_t)((g->out_h + 1) / 2) * tw, out_img = (size_t)g->out_h * g->out_w * co;
    const sdiff mplane = (sdiff)plane_stride(ci * co), vplane = (sdiff)plane_stride(Tb * ci),
                uplane = (sdiff)plane_stride(Tb * co);
    float *mm = J->area, *v = mm + 16 * mplane, *u = v + 16 * vplane;
    float ebuf[4 * CH], tbuf[8 * CH];
    int first = 1;
    for (size_t t0 = J->t_begin; t0 < J->t_end; t0 += Tb, first = 0) {
        const size_t T = J->t_end - t0 < Tb ? J->t_end - t0 : Tb;
        input_transform(2, g, J->x, t0, T, v, vplane);
        for (size_t t = 0; t < T; t++) {
            const size_t gt = t0 + t, b = gt / tpi, r = gt % tpi;
            const int oh0 = (int)(r / tw) * 2, ow0 = (int)(r % tw) * 2;
            const int rows = g->out_h - oh0 < 2 ? 1 : 2, cols = g->out_w - ow0 < 2 ? 1 : 2;
            const float *db = J->dz + b * out_img;
            for (size_t c0 = 0; c0 < co; c0 += CH) {
                const size_t cnt = co - c0 < CH ? co - c0 : CH;
                const float *e;
                sdiff rs, cs;
                if (rows == 2 && cols == 2) {
                    e = db + ((size_t)oh0 * g->out_w + ow0) * co + c0;
                    rs = (sdiff)((size_t)g->out_w * co);
                    cs = (sdiff)co;
                } else { /* a tile past the output's edge: zeros there */
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            float *dst = ebuf + (size_t)(i * 2 + j) * CH;
                            if (i < rows && j < cols)
                                memcpy(dst, db + ((size_t)(oh0 + i) * g->out_w + (size_t)(ow0 + j)) * co + c0,
                                       cnt * sizeof(float));
                            else
                                memset(dst, 0, cnt * sizeof(float));
                        }
                    e = ebuf;
                    rs = 2 * CH;
                    cs = CH;
                }
                for (int j = 0; j < 2; j++) a2(e + j * cs, rs, tbuf + j * CH, 2 * CH, cnt);
                for (int p = 0; p < 4; p++) a2(tbuf + p * 2 * CH, CH, u + p * 4 * uplane + (sdiff)(t * co + c0), uplane, cnt);
            }
        }
        for (size_t k = 0; k < 16; k++) {
            if (T <= TFX__WIDE_MAX_K)
                tfx__sgemm_small(1, !first, ci, co, T, v + k * (size_t)vplane, ci, u + k * (size_t)uplane, co,
                                 mm + k * (size_t)mplane, co);
            else
                tfx__sgemm(1, 0, ci, co, T, 1.0f, v + k * (size_t)vplane, ci, u + k * (size_t)uplane, co,
                           first ? 0.0f : 1.0f, mm + k * (size_t)mplane, co);
        }
    }
    if (first)
        for (size_t k = 0; k < 16; k++) memset(mm + k * (size_t)mplane, 0, ci * co * sizeof(float));
}

void tfx__winograd_kernel_grad(const tfx__wino_geom *g, size_t n, const float *x, const float *dz, int threads,
                               float *work, float *gw)
{
    const size_t total = total_tiles(2, g, n), Tb = grad_block_tiles(g, total), area = grad_area(g, Tb);
    const size_t P = (size_t)g->cin * g->cout;
    grad_job jobs[GRAD_PARTS];
    for (size_t q = 0; q < GRAD_PARTS; q++)
        jobs[q] = (grad_job){g, x, dz, work + q * area, Tb, total * q / GRAD_PARTS, total * (q + 1) / GRAD_PARTS};
    if (threads >= GRAD_PARTS) {
        tfx__parallel(GRAD_PARTS, grad_blocks, jobs, sizeof *jobs);
    } else {
        for (size_t q = 0; q < GRAD_PARTS; q++) grad_blocks(&jobs[q]);
    }
    /* The parts' sums in order, then dW = G^T M G per (ci, co). */
    const sdiff mplane = (sdiff)plane_stride(P);
    float *m0 = work;
    for (size_t q = 1; q < GRAD_PARTS; q++)
        for (size_t k = 0; k < 16; k++) {
            float *d = m0 + k * (size_t)mplane;
            const float *s = work + q * area + k * (size_t)mplane;
            for (size_t e = 0; e < P; e++) d[e] += s[e];
        }
    float tmp[12 * CH];
    for (size_t e0 = 0; e0 < P; e0 += CH) {
        const size_t cnt = P - e0 < CH ? P - e0 : CH;
        for (int j = 0; j < 4; j++) gt2(m0 + j * mplane + (sdiff)e0, 4 * mplane, tmp + j * CH, 4 * CH, cnt);
        for (int r = 0; r < 3; r++) gt2(tmp + r * 4 * CH, CH, gw + (size_t)r * 3 * P + e0, (sdiff)P, cnt);
    }
}
