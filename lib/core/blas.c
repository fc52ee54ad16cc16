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

void tfx__sgemv(int trans, size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                float *y)
{
    if (m == 0 || n == 0) return;
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, (int)m, (int)n, alpha, a, (int)lda, x, 1, beta, y,
                1);
}
