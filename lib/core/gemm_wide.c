/* Register-tiled products for the shapes OpenBLAS handles poorly here. Three entries share
 * the tiles below:
 *
 * - tfx__sgemm_wide, C = op(A) B for wide, shallow products: n in the thousands of columns, k
 *   at most a few hundred terms. A Dense layer's batch input gradient dY W and kernel gradient
 *   dY^T X have this shape (the seed model: 50 x 86528 and 128 x 86528 with 128 and 50 terms).
 *   OpenBLAS runs them at about half its peak here: it first zeroes C (beta = 0), then packs
 *   both operands for a few terms each. A 4-row x 64-column tile of C stays in registers while
 *   it goes through the k terms (the 64 columns of B stay in L1 across all row tiles), and each
 *   C value is written once, with streaming stores when C is large, as nobody reads it soon.
 * - tfx__sgemm_small, the same tiles on one thread for Winograd's per-point products.
 * - tfx__sgemm_long, C = A B^T with rows of many thousands of terms (at the end of the file).
 *
 * Every C value is one sum over i = 0..k-1 in order (per chunk for the long products),
 * whatever the thread split: the threads take whole column blocks from a fixed start, so
 * results do not depend on the thread count. */
#include <stdint.h>
#include <string.h>

#include "core/hooks.h"
#include "core/internal.h"
#include "core/kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#  include <immintrin.h>
#  define WIDE_X86 1
#endif

enum { BLOCK = 64 }; /* columns per thread-split unit and per aligned run */

typedef struct wide_args {
    size_t m, k;
    const float *a;
    size_t ars, aks; /* A's element (row r, term i) is a[r * ars + i * aks] */
    const float *b;
    size_t ldb;
    float *c;
    size_t ldc;
    int stream; /* C's aligned runs may use streaming stores */
    int accumulate; /* C += A B (tiles start from C's values) instead of C = A B */
} wide_args;

/* One column j of C, rows [0, m): the same in-order sum as the vector tiles, with the same
 * multiply-add (FMAS: fused where the tiles' FMA is). */
#define WIDE_COLUMN(NAME, TARGET, FMAS)                                                                    \
    TARGET static void NAME(const wide_args *w, size_t j)                                                  \
    {                                                                                                      \
        for (size_t r = 0; r < w->m; r++) {                                                                \
            const float *ar = w->a + r * w->ars;                                                           \
            float t = w->accumulate ? w->c[r * w->ldc + j] : 0.0f;                                         \
            for (size_t i = 0; i < w->k; i++) t = FMAS(ar[i * w->aks], w->b[i * w->ldb + j], t);          \
            w->c[r * w->ldc + j] = t;                                                                      \
        }                                                                                                  \
    }

/* Columns [j0, j1) (whole vectors of L lanes) for R rows from r0 with NV vectors per row. */
#define WIDE_TILE(NAME, TARGET, VT, L, NV, R, FMA, STORE)                                                       \
    TARGET static inline void NAME(const wide_args *w, size_t r0, size_t j, int stream)                   \
    {                                                                                                      \
        VT acc[R][NV];                                                                                     \
        _Pragma("GCC unroll 16") for (int q = 0; q < R; q++)                                               \
            _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++)                                          \
        {                                                                                                  \
            acc[q][v] = (VT){0};                                                                           \
            if (w->accumulate) memcpy(&acc[q][v], w->c + (r0 + q) * w->ldc + j + v * L, sizeof(VT));       \
        }                                                                                                  \
        const float *ap = w->a + r0 * w->ars, *bp = w->b + j;                                              \
        for (size_t i = 0; i < w->k; i++, ap += w->aks, bp += w->ldb) {                                    \
            VT s[NV];                                                                                      \
            _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) memcpy(&s[v], bp + v * L, sizeof(VT));  \
            _Pragma("GCC unroll 16") for (int q = 0; q < R; q++)                                           \
            {                                                                                              \
                const VT aq = (VT){0} + ap[q * w->ars];                                                    \
                _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[q][v] = FMA(aq, s[v], acc[q][v]); \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("GCC unroll 16") for (int q = 0; q < R; q++)                                               \
            _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++)                                          \
        {                                                                                                  \
            float *o = w->c + (r0 + q) * w->ldc + j + v * L;                                               \
            if (stream)                                                                                    \
                STORE(o, acc[q][v]);                                                                       \
            else                                                                                           \
                memcpy(o, &acc[q][v], sizeof(VT));                                                         \
        }                                                                                                  \
    }

/* Columns [j0, j1): j1 - j0 a multiple of L * NV. */
#define WIDE_RUN(NAME, TARGET, TILE4, TILE1, L, NV)                                                        \
    TARGET static void NAME(const wide_args *w, size_t j0, size_t j1, int stream)                         \
    {                                                                                                      \
        for (size_t j = j0; j < j1; j += (size_t)(L * NV)) {                                               \
            size_t r = 0;                                                                                  \
            for (; r + 4 <= w->m; r += 4) TILE4(w, r, j, stream);                                          \
            for (; r < w->m; r++) TILE1(w, r, j, stream);                                                  \
        }                                                                                                  \
    }

/* Columns [j, ...) in steps of COLS while whole steps fit, R rows at a time (TILER), the last
 * rows one at a time; returns the first column not done. Plain stores (C is small). */
#define SMALL_RUN(NAME, TARGET, TILER, TILE1, R, COLS)                                                    \
    TARGET static size_t NAME(const wide_args *w, size_t j, size_t n)                                       \
    {                                                                                                      \
        for (; j + (COLS) <= n; j += (COLS)) {                                                             \
            size_t r = 0;                                                                                  \
            for (; r + (R) <= w->m; r += (R)) TILER(w, r, j, 0);                                           \
            for (; r < w->m; r++) TILE1(w, r, j, 0);                                                       \
        }                                                                                                  \
        return j;                                                                                          \
    }

/* The same with a 2-row tile for the rows left by R-row tiles. */
#define SMALL_RUN3(NAME, TARGET, TILER, TILE2, TILE1, R, COLS)                                            \
    TARGET static size_t NAME(const wide_args *w, size_t j, size_t n)                                       \
    {                                                                                                      \
        for (; j + (COLS) <= n; j += (COLS)) {                                                             \
            size_t r = 0;                                                                                  \
            for (; r + (R) <= w->m; r += (R)) TILER(w, r, j, 0);                                           \
            for (; r + 2 <= w->m; r += 2) TILE2(w, r, j, 0);                                               \
            for (; r < w->m; r++) TILE1(w, r, j, 0);                                                       \
        }                                                                                                  \
        return j;                                                                                          \
    }

#define PLAIN_STORE(p, v) memcpy((p), &(v), sizeof(v))
/* The library is built as ISO C (no contraction): the multiply-adds are spelled out. */
#define MUL_ADD(a, b, c) ((a) * (b) + (c))

#if WIDE_X86
typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
#  define T512 __attribute__((target("avx512f")))
#  define T256 __attribute__((target("avx2,fma")))
#  define T128
#  define STORE512(p, v) _mm512_stream_ps((p), (__m512)(v))
#  define STORE256(p, v) _mm256_stream_ps((p), (__m256)(v))
#  define STORE128(p, v) _mm_stream_ps((p), (__m128)(v))
#  define FMA512(a, b, c) ((v16f)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#  define FMA256(a, b, c) ((v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#  define FMAS(a, b, c) __builtin_fmaf((a), (b), (c))
WIDE_COLUMN(column_512, T512, FMAS)
WIDE_TILE(tile4_512, T512, v16f, 16, 4, 4, FMA512, STORE512)
WIDE_TILE(tile1_512, T512, v16f, 16, 4, 1, FMA512, STORE512)
WIDE_RUN(run_512, T512, tile4_512, tile1_512, 16, 4)
WIDE_TILE(tile6_512, T512, v16f, 16, 4, 6, FMA512, STORE512)
WIDE_TILE(tile2_512, T512, v16f, 16, 4, 2, FMA512, STORE512)
SMALL_RUN3(small64_512, T512, tile6_512, tile2_512, tile1_512, 6, 64)
WIDE_TILE(tile8x32_512, T512, v16f, 16, 2, 8, FMA512, STORE512)
WIDE_TILE(tile1x32_512, T512, v16f, 16, 2, 1, FMA512, STORE512)
SMALL_RUN(small32_512, T512, tile8x32_512, tile1x32_512, 8, 32)
WIDE_TILE(tile8x16_512, T512, v16f, 16, 1, 8, FMA512, STORE512)
WIDE_TILE(tile1x16_512, T512, v16f, 16, 1, 1, FMA512, STORE512)
SMALL_RUN(small16_512, T512, tile8x16_512, tile1x16_512, 8, 16)
WIDE_COLUMN(column_256, T256, FMAS)
WIDE_TILE(tile4_256, T256, v8f, 8, 2, 4, FMA256, STORE256)
WIDE_TILE(tile1_256, T256, v8f, 8, 2, 1, FMA256, STORE256)
WIDE_RUN(run_256, T256, tile4_256, tile1_256, 8, 2)
SMALL_RUN(small16_256, T256, tile4_256, tile1_256, 4, 16)
WIDE_COLUMN(column_128, T128, MUL_ADD)
WIDE_TILE(tile4_128, T128, v4f, 4, 2, 4, MUL_ADD, STORE128)
WIDE_TILE(tile1_128, T128, v4f, 4, 2, 1, MUL_ADD, STORE128)
WIDE_RUN(run_128, T128, tile4_128, tile1_128, 4, 2)
SMALL_RUN(small8_128, T128, tile4_128, tile1_128, 4, 8)
#else
typedef float v4f __attribute__((vector_size(16)));
WIDE_COLUMN(column_128, , MUL_ADD)
WIDE_TILE(tile4_128, , v4f, 4, 2, 4, MUL_ADD, PLAIN_STORE)
WIDE_TILE(tile1_128, , v4f, 4, 2, 1, MUL_ADD, PLAIN_STORE)
WIDE_RUN(run_128, , tile4_128, tile1_128, 4, 2)
SMALL_RUN(small8_128, , tile4_128, tile1_128, 4, 8)
#endif

typedef struct wide_job {
    const wide_args *w;
    size_t j0, j1;
    void (*run)(const wide_args *, size_t, size_t, int);
} wide_job;

static void wide_job_run(void *arg)
{
    const wide_job *J = arg;
    if (J->j1 > J->j0) J->run(J->w, J->j0, J->j1, J->w->stream);
#if WIDE_X86
    if (J->w->stream) _mm_sfence(); /* this thread's streamed values reach memory before the join */
#endif
}

_Thread_local int tfx__hook_isa_level; /* core/hooks.h */

int tfx__sgemm_wide_fits(size_t m, size_t n, size_t k)
{
    return m >= 1 && k >= 1 && k <= TFX__WIDE_MAX_K && n >= TFX__WIDE_MIN_N;
}

void tfx__sgemm_wide(int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                     size_t ldb, float *c, size_t ldc)
{
    wide_args w = {m, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, c, ldc, 0, 0};
    void (*run)(const wide_args *, size_t, size_t, int) = run_128;
    void (*column)(const wide_args *, size_t) = column_128;
#if WIDE_X86
    const int level = tfx__hook_isa_level > 0 ? tfx__hook_isa_level : 3;
    if (level >= 3 && __builtin_cpu_supports("avx512f"))
        run = run_512, column = column_512;
    else if (level >= 2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        run = run_256, column = column_256;
#endif
    /* Runs start where C's rows are 64-byte aligned (when all rows share the alignment); the
     * columns before and after the runs go one at a time. */
    size_t head = 0;
    if (ldc % 16 == 0 && (uintptr_t)c % sizeof(float) == 0) {
        head = (16 - (size_t)((uintptr_t)c / sizeof(float) % 16)) % 16;
        /* streaming pays for C well beyond the caches only (it is not read back soon) */
        w.stream = (double)m * (double)n * sizeof(float) >= (double)TFX__WIDE_STREAM_BYTES;
    }
    if (head > n) head = n;
    const size_t blocks = (n - head) / BLOCK, tail0 = head + blocks * BLOCK;
    for (size_t j = 0; j < head; j++) column(&w, j);
    int threads = tfx__threads();
    if ((size_t)threads > blocks) threads = blocks ? (int)blocks : 1;
    wide_job jobs[TFX__MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (wide_job){&w, head + blocks * (size_t)t / (size_t)threads * BLOCK,
                             head + blocks * (size_t)(t + 1) / (size_t)threads * BLOCK, run};
    if (threads > 1)
        tfx__parallel(threads, wide_job_run, jobs, sizeof *jobs);
    else
        wide_job_run(&jobs[0]);
    for (size_t j = tail0; j < n; j++) column(&w, j);
}

/* C = A B (or C += A B) over all of w's rows, columns [0, n). */
static void small_args(const wide_args *w, size_t n)
{
    size_t j = 0;
#if WIDE_X86
    const int level = tfx__hook_isa_level > 0 ? tfx__hook_isa_level : 3;
    if (level >= 3 && __builtin_cpu_supports("avx512f")) {
        j = small16_512(w, small32_512(w, small64_512(w, 0, n), n), n);
        for (; j < n; j++) column_512(w, j);
        return;
    }
    if (level >= 2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        for (j = small16_256(w, 0, n); j < n; j++) column_256(w, j);
        return;
    }
#endif
    for (j = small8_128(w, 0, n); j < n; j++) column_128(w, j);
}

void tfx__sgemm_small(int trans_a, int accumulate, size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    const wide_args w = {m, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, c, ldc, 0, accumulate};
    small_args(&w, n);
}

/* ---- long products: C = A B^T with rows of many thousands of terms ----
 * A Dense layer's batch forward X W^T (W unit-major: the seed model's 50 x 86528 by 128 x
 * 86528). The terms go in chunks of LONG_KC: a thread transposes its columns' chunk of B
 * (16 x 16 blocks in registers) into a 256 KiB buffer that stays in L2, and the small kernel
 * adds A's chunk times it to C. Measured at 50 x 128 x 86528 on two threads (Zen 5): chunks
 * of 64, 128, 256, 512, 1024 and 2048 terms took 7.2, 6.7, 5.8, 4.6-4.8, 4.3-4.4 and 4.5-4.7
 * ms, OpenBLAS 10.3; longer chunks reload C less often and read W in longer runs. Every C
 * value is the same sums in the same order whatever the thread split (the threads take whole
 * 16-column blocks). AVX-512 only (tfx__sgemm_long_fits); elsewhere the BLAS does these. */
enum { LONG_KC = 1024, LONG_NB = 64 };

static int long_threads(size_t n)
{
    const size_t blocks = (n + 15) / 16;
    int threads = tfx__threads();
    return (size_t)threads > blocks ? (int)blocks : threads;
}

size_t tfx__sgemm_long_work_floats(size_t n) { return (size_t)long_threads(n) * LONG_KC * LONG_NB; }

#if WIDE_X86
/* pack[i][j] = b[j][i] for i < kc, j < nj (pack rows nj floats apart). */
T512 static void long_pack(const float *b, size_t ldb, size_t nj, size_t kc, float *pack)
{
    size_t j = 0;
    for (; j + 16 <= nj; j += 16) {
        size_t i = 0;
        for (; i + 16 <= kc; i += 16) {
            __m512 r[16], t[16], u[16];
            for (int q = 0; q < 16; q++) r[q] = _mm512_loadu_ps(b + (j + (size_t)q) * ldb + i);
            for (int q = 0; q < 16; q += 2) {
                t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);
                t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]);
            }
            /* u[4h + c], 128-bit lane L: column 4L + c of rows 4h..4h+3 */
            for (int h = 0; h < 16; h += 4) {
                const __m512d t0 = _mm512_castps_pd(t[h]), t1 = _mm512_castps_pd(t[h + 1]),
                              t2 = _mm512_castps_pd(t[h + 2]), t3 = _mm512_castps_pd(t[h + 3]);
                u[h] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
                u[h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
                u[h + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
                u[h + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
            }
            for (int c = 0; c < 4; c++) {
                const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
                const __m512 y0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
                             y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
                _mm512_storeu_ps(pack + (i + (size_t)c) * nj + j, _mm512_shuffle_f32x4(x0, y0, 0x88));
                _mm512_storeu_ps(pack + (i + 4 + (size_t)c) * nj + j, _mm512_shuffle_f32x4(x1, y1, 0x88));
                _mm512_storeu_ps(pack + (i + 8 + (size_t)c) * nj + j, _mm512_shuffle_f32x4(x0, y0, 0xDD));
                _mm512_storeu_ps(pack + (i + 12 + (size_t)c) * nj + j, _mm512_shuffle_f32x4(x1, y1, 0xDD));
            }
        }
        for (; i < kc; i++)
            for (size_t q = 0; q < 16; q++) pack[i * nj + j + q] = b[(j + q) * ldb + i];
    }
    for (; j < nj; j++)
        for (size_t i = 0; i < kc; i++) pack[i * nj + j] = b[j * ldb + i];
}

typedef struct long_job {
    size_t m, k, lda, ldb, ldc, j0, j1;
    const float *a, *b;
    float *c, *pack; /* LONG_KC x LONG_NB floats of this thread's */
} long_job;

static void long_job_run(void *arg)
{
    const long_job *J = arg;
    float *pack = J->pack;
    for (size_t jb = J->j0; jb < J->j1; jb += LONG_NB) {
        const size_t nj = J->j1 - jb < LONG_NB ? J->j1 - jb : LONG_NB;
        for (size_t k0 = 0; k0 < J->k; k0 += LONG_KC) {
            const size_t kc = J->k - k0 < LONG_KC ? J->k - k0 : LONG_KC;
            long_pack(J->b + jb * J->ldb + k0, J->ldb, nj, kc, pack);
            const wide_args w = {J->m, kc, J->a + k0, J->lda, 1, pack, nj, J->c + jb, J->ldc, 0, k0 > 0};
            small_args(&w, nj);
        }
    }
}
#endif

int tfx__sgemm_long_fits(size_t m, size_t n, size_t k)
{
#if WIDE_X86
    const int level = tfx__hook_isa_level > 0 ? tfx__hook_isa_level : 3;
    return m >= 2 && n >= 1 && k >= TFX__LONG_MIN_K && level >= 3 && __builtin_cpu_supports("avx512f");
#else
    (void)m, (void)n, (void)k;
    return 0;
#endif
}

void tfx__sgemm_long(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, float *work)
{
#if WIDE_X86
    const size_t blocks = (n + 15) / 16;
    const int threads = long_threads(n);
    long_job jobs[TFX__MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        size_t j0 = blocks * (size_t)t / (size_t)threads * 16, j1 = blocks * (size_t)(t + 1) / (size_t)threads * 16;
        jobs[t] = (long_job){m, k, lda, ldb, ldc, j0, j1 < n ? j1 : n, a, b, c, work + (size_t)t * LONG_KC * LONG_NB};
    }
    if (threads > 1)
        tfx__parallel(threads, long_job_run, jobs, sizeof *jobs);
    else
        long_job_run(&jobs[0]);
#else
    (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)work;
#endif
}
