/* Test hooks (tests/support/hooks.c, the tfx_testing archive that test programs and the
 * benchmark link; never in libtfx.so). Each sets a thread-local knob of core/hooks.h for the
 * calling thread only. */
#ifndef TFX_TESTS_SUPPORT_TESTING_H
#define TFX_TESTS_SUPPORT_TESTING_H

/* The k-th allocation from now (1-based) and every later one fail until reset with k = 0. */
void tfx__alloc_fail_after(long k);
/* Number of allocations attempted on this thread since the last tfx__alloc_fail_after. */
long tfx__alloc_count(void);

/* The widest instruction set libtfx's own matrix products and the depthwise convolution may
 * use (1 SSE, 2 AVX2 (+ FMA for the products), 3 AVX-512; 0 the best the CPU has, the default). */
void tfx__sgemm_wide_force(int level);

/* Winograd tile choice: -1 automatic (default), 0 never, 2 or 4 always that tile size for
 * every 3x3 stride-1 layer, -2 or -4 the automatic choice of layers with that tile size. */
void tfx__winograd_force(int m);

/* libtfx's own thread count (0: back to the model's, else the BLAS's). */
void tfx__threads_force(int threads);

/* tfx__file_write_atomic's writes (model files, PNGs) fail with EIO once `bytes` bytes of the
 * temporary file are written, as a crash or a full disk would; bytes < 0 turns it off. */
void tfx__file_fail_after_bytes(long bytes);

/* The TensorBoard event writer's writes fail (ENOSPC) once k more bytes are written; -1: off. */
void tfx__tb_fail_write_after(long long k);

#endif
