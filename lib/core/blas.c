/* The only file that includes <cblas.h> (DESIGN decision 3). Works with OpenBLAS and with
 * Debian's reference libblas.so.3, which carries the cblas_* symbols. */
#include <cblas.h>

#include "layers/layer.h"

void tfx__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* One sample through a layer reads the whole matrix once, so speed is memory bandwidth. BLAS
 * sgemv reaches about half of it on the Dense shapes here (86528 x 128: 3.7 ms for the
 * transposed product on two OpenBLAS threads, 12 ms when the machine is busy, against 1.8-2.2 ms
 * for these loops on one core), so the two products are written out: compiled per instruction
 * set (AVX-512, AVX2, baseline) and picked at load time where the compiler supports it. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define TFX__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef TFX__CLONES
#define TFX__CLONES
#endif

/* y = alpha * A^T x + beta * y: rows of A scaled and summed into a block of y kept in cache,
 * in runs of 256 rows whose partial sums are then added (rounding grows with 256 + m / 256
 * terms, not m: the seed model's Dense has m = 86528). */
TFX__CLONES static void gemv_t(size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                               float *y)
{
    enum { BLOCK = 256, RUN = 256 };
    float acc[BLOCK], tot[BLOCK];
    for (size_t j0 = 0; j0 < n; j0 += BLOCK) {
        size_t nb = n - j0 < BLOCK ? n - j0 : BLOCK;
        for (size_t j = 0; j < nb; j++) tot[j] = 0.0f;
        for (size_t k0 = 0; k0 < m; k0 += RUN) {
            size_t k1 = m - k0 < RUN ? m : k0 + RUN;
            for (size_t j = 0; j < nb; j++) acc[j] = 0.0f;
            for (size_t k = k0; k < k1; k++) {
                const float xk = x[k], *r = a + k * lda + j0;
                for (size_t j = 0; j < nb; j++) acc[j] += xk * r[j];
            }
            for (size_t j = 0; j < nb; j++) tot[j] += acc[j];
        }
        for (size_t j = 0; j < nb; j++) y[j0 + j] = alpha * tot[j] + (beta == 0.0f ? 0.0f : beta * y[j0 + j]);
    }
}

/* y = alpha * A x + beta * y: one dot product per row, 16 independent partial sums. */
TFX__CLONES static void gemv_n(size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                               float *y)
{
    enum { LANES = 16 };
    for (size_t i = 0; i < m; i++) {
        const float *r = a + i * lda;
        float acc[LANES] = {0};
        size_t j = 0;
        for (; j + LANES <= n; j += LANES)
            for (size_t l = 0; l < LANES; l++) acc[l] += r[j + l] * x[j + l];
        float s = 0.0f;
        for (size_t l = 0; l < LANES; l++) s += acc[l];
        for (; j < n; j++) s += r[j] * x[j];
        y[i] = alpha * s + (beta == 0.0f ? 0.0f : beta * y[i]);
    }
}

void tfx__sgemv(int trans, size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                float *y)
{
    if (trans ? n == 0 : m == 0) return;
    if (trans)
        gemv_t(m, n, alpha, a, lda, x, beta, y);
    else
        gemv_n(m, n, alpha, a, lda, x, beta, y);
}
