/* The only file that includes <cblas.h> (DESIGN decision 3). Works with OpenBLAS and with
 * Debian's reference libblas.so.3, which carries the cblas_* symbols. */
#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "core/hooks.h"
#include "core/internal.h"
#include "core/kernels.h"

static int own_threads(void);

static void sgemm1(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* A slice of C (rows or columns) for one of the model's own threads. */
typedef struct sgemm_job {
    int ta, tb;
    size_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} sgemm_job;

static void sgemm_job_run(void *arg)
{
    const sgemm_job *j = arg;
    sgemm1(j->ta, j->tb, j->m, j->n, j->k, j->alpha, j->a, j->lda, j->b, j->ldb, j->beta, j->c, j->ldc);
}

/* Below this much work (multiply-adds) one thread is faster than splitting. */
#define SGEMM_SPLIT_WORK 4e6

void tfx__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (!trans_b && alpha == 1.0f && beta == 0.0f && tfx__sgemm_wide_fits(m, n, k)) {
        tfx__sgemm_wide(trans_a, m, n, k, a, lda, b, ldb, c, ldc);
        return;
    }
    int T = own_threads();
    if (T > 1 && (double)m * (double)n * (double)k > SGEMM_SPLIT_WORK) {
        /* Split the longer side of C; every slice is an ordinary GEMM of the caller's BLAS. */
        sgemm_job jobs[TFX__MAX_THREADS];
        for (int i = 0; i < T; i++) {
            if (m >= n) {
                size_t r0 = m * (size_t)i / (size_t)T, r1 = m * (size_t)(i + 1) / (size_t)T;
                jobs[i] = (sgemm_job){trans_a, trans_b, r1 - r0, n, k, lda, ldb, ldc, alpha, beta,
                                      trans_a ? a + r0 : a + r0 * lda, b, c + r0 * ldc};
            } else {
                size_t c0 = n * (size_t)i / (size_t)T, c1 = n * (size_t)(i + 1) / (size_t)T;
                jobs[i] = (sgemm_job){trans_a, trans_b, m, c1 - c0, k, lda, ldb, ldc, alpha, beta, a,
                                      trans_b ? b + c0 * ldb : b + c0, c + c0};
            }
        }
        tfx__parallel(T, sgemm_job_run, jobs, sizeof *jobs);
        return;
    }
    sgemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* One sample through a layer reads the whole matrix once, so speed is memory bandwidth. BLAS
 * sgemv reaches about half of it on the Dense shapes here (86528 x 128: 3.7 ms for the
 * transposed product on two OpenBLAS threads), so the two products are written out, compiled
 * per instruction set (AVX-512, AVX2, baseline; TFX__CLONES) and picked at load time. The
 * sums live in registers (GNU vector extension: a v16f is one zmm, two ymm or four xmm): with
 * them in memory, store-to-load latency held one core to 13 GB/s; in registers it streams the
 * 44 MB kernel at 30 GB/s. Rows whose input is zero are skipped (half of them after a ReLU);
 * that saves instructions, not memory traffic, as the prefetchers fetch them anyway. */
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

/* out[0..V) = sum over the listed rows k of x[k] * a[k][0..16 V): V sums in registers. */
#define ROWS_X(V)                                                                                          \
    static inline void rows_x_##V(const unsigned *idx, size_t used, const float *a, size_t lda,            \
                                  const float *x, v16f *out)                                               \
    {                                                                                                      \
        v16f c[V];                                                                                         \
        for (int v = 0; v < V; v++) c[v] = (v16f){0};                                                      \
        for (size_t u = 0; u < used; u++) {                                                                \
            const float xk = x[idx[u]];                                                                    \
            const v16f *r = (const v16f *)(a + idx[u] * lda);                                              \
            for (int v = 0; v < V; v++) c[v] += xk * r[v];                                                 \
        }                                                                                                  \
        for (int v = 0; v < V; v++) out[v] = c[v];                                                         \
    }
ROWS_X(8)
ROWS_X(4)
ROWS_X(2)
ROWS_X(1)

/* y = alpha * A^T x + beta * y, in blocks of at most 128 columns and runs of 256 rows whose
 * partial sums are then added (rounding grows with 256 + m / 256 terms, not m: the seed model's
 * Dense has m = 86528). Skipping rows with x[k] == 0 leaves every sum as it was (their terms
 * are zeros), unless such a row holds an infinity or a NaN. */
TFX__CLONES static void gemv_t(size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                               float *y)
{
    enum { BLOCK = 128, RUN = 256 };
    v16f acc[BLOCK / 16];
    float tot[BLOCK], *accf = (float *)acc;
    unsigned idx[RUN];
    for (size_t j0 = 0; j0 < n; j0 += BLOCK) {
        size_t nb = n - j0 < BLOCK ? n - j0 : BLOCK;
        for (size_t j = 0; j < nb; j++) tot[j] = 0.0f;
        for (size_t k0 = 0; k0 < m; k0 += RUN) {
            size_t k1 = m - k0 < RUN ? m : k0 + RUN, used = 0;
            for (size_t k = k0; k < k1; k++) { /* branch-free list of the non-zero inputs */
                idx[used] = (unsigned)(k - k0);
                used += x[k] != 0.0f;
            }
            if (!used) continue;
            const float *ak = a + k0 * lda + j0, *xk = x + k0;
            /* whole vectors: 8, 4, 2, 1 at a time; then the last nb % 16 columns */
            size_t j = 0;
            for (; j + 128 <= nb; j += 128) rows_x_8(idx, used, ak + j, lda, xk, acc + j / 16);
            for (; j + 64 <= nb; j += 64) rows_x_4(idx, used, ak + j, lda, xk, acc + j / 16);
            for (; j + 32 <= nb; j += 32) rows_x_2(idx, used, ak + j, lda, xk, acc + j / 16);
            for (; j + 16 <= nb; j += 16) rows_x_1(idx, used, ak + j, lda, xk, acc + j / 16);
            for (size_t jj = j; jj < nb; jj++) {
                float sum = 0.0f;
                for (size_t u = 0; u < used; u++) sum += xk[idx[u]] * ak[idx[u] * lda + jj];
                accf[jj] = sum;
            }
            for (size_t jj = 0; jj < nb; jj++) tot[jj] += accf[jj];
        }
        for (size_t j = 0; j < nb; j++) y[j0 + j] = alpha * tot[j] + (beta == 0.0f ? 0.0f : beta * y[j0 + j]);
    }
}

/* y = alpha * A x + beta * y: one dot product per row. Short rows: 16 partial sums each (rows
 * are independent, so out-of-order execution overlaps them; a data-dependent branch per row,
 * e.g. to skip rows, stalls that overlap and halved the speed). Long rows (a Dense's units
 * over a big input): four rows at a time with two vector sums each, so eight additions are in
 * flight and x is loaded once for four rows. */
enum { LONG_ROW = 1024 };

/* By pointer: a 64-byte vector argument is passed in a zmm register by the AVX-512 clone and
 * in memory by baseline code, so a call not inlined (-O0) would read garbage (-Wpsabi). */
static inline float lanes_sum(const v16f *s)
{
    float t = 0.0f;
    for (int l = 0; l < 16; l++) t += (*s)[l];
    return t;
}

static inline float out_n(float alpha, float s, float beta, float y) { return alpha * s + (beta == 0.0f ? 0.0f : beta * y); }

TFX__CLONES static void gemv_n(size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                               float *y)
{
    enum { LANES = 16 };
    size_t i = 0;
    if (n >= LONG_ROW) {
        const size_t nv = n / 32 * 32;
        for (; i + 4 <= m; i += 4) {
            const float *r0 = a + i * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
            v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
            for (size_t j = 0; j < nv; j += 32) {
                const v16f xa = *(const v16f *)(x + j), xb = *(const v16f *)(x + j + 16);
                a0 += *(const v16f *)(r0 + j) * xa, a1 += *(const v16f *)(r1 + j) * xa;
                a2 += *(const v16f *)(r2 + j) * xa, a3 += *(const v16f *)(r3 + j) * xa;
                b0 += *(const v16f *)(r0 + j + 16) * xb, b1 += *(const v16f *)(r1 + j + 16) * xb;
                b2 += *(const v16f *)(r2 + j + 16) * xb, b3 += *(const v16f *)(r3 + j + 16) * xb;
            }
            a0 += b0, a1 += b1, a2 += b2, a3 += b3;
            float s0 = lanes_sum(&a0), s1 = lanes_sum(&a1), s2 = lanes_sum(&a2), s3 = lanes_sum(&a3);
            for (size_t j = nv; j < n; j++) s0 += r0[j] * x[j], s1 += r1[j] * x[j], s2 += r2[j] * x[j], s3 += r3[j] * x[j];
            y[i] = out_n(alpha, s0, beta, y[i]);
            y[i + 1] = out_n(alpha, s1, beta, y[i + 1]);
            y[i + 2] = out_n(alpha, s2, beta, y[i + 2]);
            y[i + 3] = out_n(alpha, s3, beta, y[i + 3]);
        }
        for (; i < m; i++) { /* the same arithmetic one row at a time (any thread split agrees) */
            const float *r0 = a + i * lda;
            v16f a0 = {0}, b0 = {0};
            for (size_t j = 0; j < nv; j += 32) {
                a0 += *(const v16f *)(r0 + j) * *(const v16f *)(x + j);
                b0 += *(const v16f *)(r0 + j + 16) * *(const v16f *)(x + j + 16);
            }
            a0 += b0;
            float s0 = lanes_sum(&a0);
            for (size_t j = nv; j < n; j++) s0 += r0[j] * x[j];
            y[i] = out_n(alpha, s0, beta, y[i]);
        }
    }
    for (; i < m; i++) {
        const float *r = a + i * lda;
        float acc[LANES] = {0};
        size_t j = 0;
        for (; j + LANES <= n; j += LANES)
            for (size_t l = 0; l < LANES; l++) acc[l] += r[j + l] * x[j + l];
        float s = 0.0f;
        for (size_t l = 0; l < LANES; l++) s += acc[l];
        for (; j < n; j++) s += r[j] * x[j];
        y[i] = out_n(alpha, s, beta, y[i]);
    }
}

/* y[0..n) = alpha * A^T x for wide outputs (a Dense's input gradient: A is [units][inputs],
 * x the units' gradient): rows with x[k] == 0 are skipped (they are contiguous, so skipping
 * saves their memory traffic: half the kernel after a ReLU), the others are added four at a
 * time into y, which stays in cache. Columns [j0, j1) only (the threads' split). */
TFX__CLONES static void gemv_t_wide(size_t m, size_t j0, size_t j1, float alpha, const float *a, size_t lda,
                                    const float *x, float *y)
{
    size_t used = 0, q = 0;
    for (size_t k = 0; k < m; k++) used += x[k] != 0.0f;
    const size_t nv = j0 + (j1 - j0) / 16 * 16;
    int first = 1;
    for (size_t k = 0; q < used;) {
        size_t r[4], c = 0;
        for (; k < m && c < 4; k++)
            if (x[k] != 0.0f) r[c++] = k;
        q += c;
        if (c == 4) {
            const float *p0 = a + r[0] * lda, *p1 = a + r[1] * lda, *p2 = a + r[2] * lda, *p3 = a + r[3] * lda;
            const float d0 = x[r[0]], d1 = x[r[1]], d2 = x[r[2]], d3 = x[r[3]];
            size_t j = j0;
            for (; j < nv; j += 16) {
                v16f t = (d0 * *(const v16f *)(p0 + j) + d1 * *(const v16f *)(p1 + j)) +
                         (d2 * *(const v16f *)(p2 + j) + d3 * *(const v16f *)(p3 + j));
                if (first)
                    *(v16f *)(y + j) = t;
                else
                    *(v16f *)(y + j) += t;
            }
            for (; j < j1; j++) {
                float t = (d0 * p0[j] + d1 * p1[j]) + (d2 * p2[j] + d3 * p3[j]);
                y[j] = first ? t : y[j] + t;
            }
        } else {
            for (size_t u = 0; u < c; u++) {
                const float *p = a + r[u] * lda, d = x[r[u]];
                size_t j = j0;
                for (; j < nv; j += 16) {
                    v16f t = d * *(const v16f *)(p + j);
                    if (first && u == 0)
                        *(v16f *)(y + j) = t;
                    else
                        *(v16f *)(y + j) += t;
                }
                for (; j < j1; j++) y[j] = first && u == 0 ? d * p[j] : y[j] + d * p[j];
            }
        }
        first = 0;
    }
    if (first) memset(y + j0, 0, (j1 - j0) * sizeof(float));
    if (alpha != 1.0f)
        for (size_t j = j0; j < j1; j++) y[j] *= alpha;
}

/* ---- threads ---- */

/* As many threads as the BLAS is set to use (OpenBLAS: openblas_get_num_threads, weak so the
 * reference BLAS links too; one otherwise). */
extern int openblas_get_num_threads(void) __attribute__((weak));
_Thread_local int tfx__hook_threads = 0; /* core/hooks.h */
static _Thread_local int g_own = 0;      /* the current model's tfx_model_set_threads */

void tfx__threads_own(int threads) { g_own = threads; }

/* Own threads for matrix products: only when the model asked for them. */
static int own_threads(void)
{
    int t = g_own > 1 ? g_own : 1;
    return t > TFX__MAX_THREADS ? TFX__MAX_THREADS : t;
}

int tfx__threads(void)
{
    int t = tfx__hook_threads > 0      ? tfx__hook_threads
            : g_own > 0                ? g_own
            : openblas_get_num_threads ? openblas_get_num_threads()
                                       : 1;
    return t < 1 ? 1 : t > TFX__MAX_THREADS ? TFX__MAX_THREADS : t;
}

/* ---- one sample: matrix-vector products split over threads ---- */

/* Below this many matrix floats (4 MiB) a thread costs more than it saves. */
#define GEMV_PARALLEL_FLOATS ((size_t)1 << 20)
/* The transposed product sums SEGMENTS fixed slices of the rows separately and adds them in
 * order, so the result does not depend on the thread count (up to SEG_N outputs; wider ones
 * split the columns: gemv_t_wide). */
enum { SEGMENTS = 8, SEG_N = 512 };

typedef struct gemv_job {
    size_t s0, s1;     /* gemv_t: segments [s0, s1); gemv_n: rows [s0, s1); wide: columns */
    size_t m, n, lda;
    float alpha, beta;
    const float *a, *x;
    float *y;
    float (*part)[SEG_N];
} gemv_job;

static void gemv_t_job(void *arg)
{
    gemv_job *J = arg;
    for (size_t s = J->s0; s < J->s1; s++) {
        size_t r0 = J->m * s / SEGMENTS, r1 = J->m * (s + 1) / SEGMENTS;
        if (r1 > r0)
            gemv_t(r1 - r0, J->n, 1.0f, J->a + r0 * J->lda, J->lda, J->x + r0, 0.0f, J->part[s]);
        else
            memset(J->part[s], 0, J->n * sizeof(float));
    }
}

static void gemv_t_wide_job(void *arg)
{
    gemv_job *J = arg;
    if (J->s1 > J->s0) gemv_t_wide(J->m, J->s0, J->s1, J->alpha, J->a, J->lda, J->x, J->y);
}

static void gemv_n_job(void *arg)
{
    gemv_job *J = arg;
    if (J->s1 > J->s0)
        gemv_n(J->s1 - J->s0, J->n, J->alpha, J->a + J->s0 * J->lda, J->lda, J->x, J->beta, J->y + J->s0);
}

void tfx__sgemv(int trans, size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                float *y)
{
    if (trans ? n == 0 : m == 0) return;
    int threads = (double)m * (double)n >= (double)GEMV_PARALLEL_FLOATS ? tfx__threads() : 1;
    gemv_job jobs[TFX__MAX_THREADS];
    if (!trans) {
        if (threads == 1) {
            gemv_n(m, n, alpha, a, lda, x, beta, y);
            return;
        }
        for (int i = 0; i < threads; i++) /* runs of whole groups of four rows */
            jobs[i] = (gemv_job){m * (size_t)i / (size_t)threads / 4 * 4,
                                 i + 1 == threads ? m : m * (size_t)(i + 1) / (size_t)threads / 4 * 4, m, n, lda, alpha,
                                 beta, a, x, y, NULL};
        tfx__parallel(threads, gemv_n_job, jobs, sizeof *jobs);
        return;
    }
    if (n > SEG_N && beta != 0.0f) {
        gemv_t(m, n, alpha, a, lda, x, beta, y);
        return;
    }
    if (n > SEG_N) {
        for (int i = 0; i < threads; i++) /* column runs of whole vectors */
            jobs[i] = (gemv_job){n * (size_t)i / (size_t)threads / 16 * 16,
                                 i + 1 == threads ? n : n * (size_t)(i + 1) / (size_t)threads / 16 * 16, m, n, lda,
                                 alpha, beta, a, x, y, NULL};
        tfx__parallel(threads, gemv_t_wide_job, jobs, sizeof *jobs);
        return;
    }
    float part[SEGMENTS][SEG_N];
    if (threads > SEGMENTS) threads = SEGMENTS;
    for (int i = 0; i < threads; i++)
        jobs[i] = (gemv_job){(size_t)SEGMENTS * (size_t)i / (size_t)threads,
                             (size_t)SEGMENTS * (size_t)(i + 1) / (size_t)threads, m, n, lda, alpha, beta, a, x, y, part};
    tfx__parallel(threads, gemv_t_job, jobs, sizeof *jobs);
    for (size_t j = 0; j < n; j++) {
        float t = 0.0f;
        for (int s = 0; s < SEGMENTS; s++) t += part[s][j];
        y[j] = alpha * t + (beta == 0.0f ? 0.0f : beta * y[j]);
    }
}
