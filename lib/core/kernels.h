/* The compute kernels of lib/core: activations, the BLAS shim and libtfx's own matrix products,
 * threads, direct convolution, im2col. Layers call them; they know nothing about layers. */
#ifndef TFX_CORE_KERNELS_H
#define TFX_CORE_KERNELS_H

#include "core/internal.h"
#include "tfx/model.h" /* activation and padding enums */

/* How a backward pass treats each layer (DESIGN decision 5). The plain gradient is the
 * chain rule; the others are relevance / modified-gradient rules for explainers. */
typedef enum tfx__rule_kind {
    TFX__RULE_GRADIENT = 0,
    TFX__RULE_GUIDED = 1,    /* ReLU passes positive gradient where its input was positive */
    TFX__RULE_DECONVNET = 2, /* ReLU passes positive gradient, ignoring its input */
    TFX__RULE_LRP_0 = 3,
    TFX__RULE_LRP_EPSILON = 4,
    TFX__RULE_LRP_ALPHA_BETA = 5,
    TFX__RULE_LRP_ZPLUS = 6,
    TFX__RULE_LRP_ZB = 7
} tfx__rule_kind;

typedef struct tfx__rule {
    int kind;     /* tfx__rule_kind */
    float epsilon;
    float alpha, beta;
    float low, high; /* zB input bounds */
} tfx__rule;

/* Activation kernels (lib/core/activation.c), row-wise over cols (softmax needs rows). alpha:
 * the leaky_relu / elu parameter, or clip's lower bound; beta: clip's upper bound (ignored by
 * the others). */
int tfx__activation_valid(int activation);
float tfx__activation_default_alpha(int activation, float alpha);
const char *tfx__activation_name(int activation);
void tfx__activation_forward(int act, float alpha, float beta, const float *z, float *y, size_t rows, size_t cols);
/* Fused epilogue of a GEMM: z += bias (per column; bias may be NULL), then y = act(z). y may
 * equal z (the pre-activation is then not kept). */
void tfx__bias_activation_forward(int act, float alpha, float beta, const float *bias, float *z, float *y, size_t rows,
                                  size_t cols);
/* Non-zero when the activation's backward (every rule) can run from its output alone, so a
 * forward need not keep the pre-activation (tfx__activation_backward accepts z = NULL). */
int tfx__activation_output_suffices(int act, float alpha);
/* dz from dy (dz may equal dy). z is the pre-activation (NULL: see above), y the output. */
int tfx__activation_backward(int act, float alpha, float beta, const float *z, const float *y, const float *dy,
                             float *dz, size_t rows, size_t cols, const tfx__rule *rule);

/* The only BLAS entry (lib/core/blas.c): row-major C = alpha * op(A) op(B) + beta * C. */
void tfx__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* Row-major C = op(A) B (alpha 1, beta 0) for wide shallow products: n >= TFX__WIDE_MIN_N
 * columns, k <= TFX__WIDE_MAX_K terms (lib/core/gemm_wide.c; tfx__sgemm sends them there: a
 * Dense layer's batch input and kernel gradients). C over TFX__WIDE_STREAM_BYTES is written
 * with streaming stores. */
#define TFX__WIDE_MIN_N 4096
#define TFX__WIDE_MAX_K 256
#define TFX__WIDE_STREAM_BYTES ((size_t)8 << 20)
int tfx__sgemm_wide_fits(size_t m, size_t n, size_t k);
void tfx__sgemm_wide(int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                     size_t ldb, float *c, size_t ldc);
/* Row-major C = op(A) B, or C += op(A) B with accumulate, on the calling thread, for small
 * products with k <= TFX__WIDE_MAX_K (Winograd's per-point GEMMs: tens of rows, a few dozen
 * channels): no packing, a register tile of C over all k terms, each value one in-order sum
 * (started from C's value with accumulate). */
void tfx__sgemm_small(int trans_a, int accumulate, size_t m, size_t n, size_t k, const float *a, size_t lda,
                      const float *b, size_t ldb, float *c, size_t ldc);
/* Row-major C = A B^T (alpha 1, beta 0) for long rows, k >= TFX__LONG_MIN_K terms: a Dense
 * layer's batch forward, on the calling thread's own-thread count (lib/core/gemm_wide.c;
 * AVX-512 only: tfx__sgemm_long_fits says when it applies). work: tfx__sgemm_long_work_floats(n)
 * floats, asked for on the same thread. */
#define TFX__LONG_MIN_K 4096
int tfx__sgemm_long_fits(size_t m, size_t n, size_t k);
size_t tfx__sgemm_long_work_floats(size_t n);
void tfx__sgemm_long(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                     size_t ldc, float *work);
/* Row-major y = alpha * op(A) x + beta * y, A m x n (one sample through a Dense layer: reads
 * the weights once, where sgemm with one row would first pack all of them). */
void tfx__sgemv(int trans, size_t m, size_t n, float alpha, const float *a, size_t lda, const float *x, float beta,
                float *y);

/* Threads libtfx's own kernels use (lib/core/blas.c): the model's tfx_model_set_threads, else
 * the BLAS's thread count (OpenBLAS), 1 with another BLAS, at most TFX__MAX_THREADS (tests
 * force a count: tfx__hook_threads, core/hooks.h). tfx__parallel runs fn on jobs[0..threads)
 * (job_size bytes each), jobs[0] in the caller; results never depend on the thread count. */
#define TFX__MAX_THREADS 16
int tfx__threads(void);
/* The model entry points (forward, backward) set the calling thread's own-thread count from
 * tfx_model_set_threads: > 1 also splits tfx__sgemm over that many threads. */
void tfx__threads_own(int threads);
/* The model's worker threads (lib/core/pool.c): tfx__parallel hands slices to the pool in
 * *slot (started there on first need) while it is in use on this thread; tfx__pool_free joins
 * them (tfx_model_free). */
typedef struct tfx__pool tfx__pool;
void tfx__pool_use(tfx__pool **slot);
void tfx__pool_free(tfx__pool **slot);
void tfx__parallel(int threads, void (*fn)(void *job), void *jobs, size_t job_size);

/* Direct convolution (lib/core/conv_direct.c) for kernels of at most TFX__DIRECT_MAX_K terms
 * per output and filters a multiple of 16: z = conv(x) with w HWIO, then y = act(z + bias)
 * line by line (y may equal z). */
#define TFX__DIRECT_MAX_K 32
typedef struct tfx__direct_epilogue {
    int act;
    float alpha, beta;
    const float *bias; /* may be NULL */
    float *y;
} tfx__direct_epilogue;
struct tfx__conv_geom;
int tfx__conv_direct_fits(const struct tfx__conv_geom *g, size_t filters);
void tfx__conv_direct(const struct tfx__conv_geom *g, size_t n, const float *x, const float *w, size_t filters,
                      float *z, const tfx__direct_epilogue *ep);

/* NHWC im2col / col2im (lib/core/im2col.c). col rows = n*oh*ow, cols = kh*kw*c, ordered
 * (ki, kj, channel) to match the HWIO kernel. col2im accumulates into a zeroed dx. */
typedef struct tfx__conv_geom {
    int in_h, in_w, in_c, out_h, out_w;
    int kh, kw, sh, sw, pad_top, pad_left;
} tfx__conv_geom;
void tfx__im2col(const tfx__conv_geom *g, size_t n, const float *x, float *col);
void tfx__col2im(const tfx__conv_geom *g, size_t n, const float *col, float *dx);

/* Grouped convolution, direct (lib/core/conv_grouped.c): groups of in_c / groups input channels
 * and F / groups filters; w is [kh][kw][in_c / groups][F], filter f in group f / (F / groups).
 * Depthwise is groups = in_c (w [kh][kw][1][in_c * multiplier], Keras's [kh][kw][in_c][mult]).
 * z = conv(x), then with ep (may be NULL) y = act(z + bias) (z holds z + bias; y may equal z);
 * dx = its transpose applied to dz (dx overwritten); dw = the kernel gradient (overwritten). */
void tfx__conv_grouped(const tfx__conv_geom *g, int groups, size_t n, const float *x, const float *w, size_t F,
                       float *z, const tfx__direct_epilogue *ep);
void tfx__conv_grouped_dx(const tfx__conv_geom *g, int groups, size_t n, const float *dz, const float *w,
                          size_t F, float *dx);
void tfx__conv_grouped_dw(const tfx__conv_geom *g, int groups, size_t n, const float *x, const float *dz,
                          size_t F, float *dw);

/* Keras padding arithmetic: output size and leading pad; TFX_ESHAPE when valid padding
 * does not fit. */
int tfx__conv_out_size(int in, int k, int stride, int padding, int *out, int *pad_before);

#endif
