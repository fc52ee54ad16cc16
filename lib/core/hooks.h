/* The knobs tests turn. The library only reads them; the functions that set them are test code
 * (tests/support/hooks.c, the tfx_testing archive), not part of libtfx.so. Thread-local, so a
 * test on one thread changes nothing on another (DESIGN 11), and hidden like every tfx__ name. */
#ifndef TFX_CORE_HOOKS_H
#define TFX_CORE_HOOKS_H

#if defined(__GNUC__)
#  define TFX__HOOK extern __attribute__((visibility("hidden"))) _Thread_local
#else
#  define TFX__HOOK extern _Thread_local
#endif

/* alloc.c: allocations attempted on this thread since the last reset; from the
 * tfx__hook_alloc_fail_after-th one on (1-based), every allocation fails (0: none fails). */
TFX__HOOK long tfx__hook_alloc_fail_after;
TFX__HOOK long tfx__hook_alloc_count;

/* gemm_wide.c, conv_grouped.c: the widest instruction set libtfx's own products and the
 * depthwise kernel may use (1 SSE, 2 AVX2 (+ FMA), 3 AVX-512; 0: the best the CPU has). */
TFX__HOOK int tfx__hook_isa_level;

/* winograd.c: -1 automatic (default), 0 never, 2 or 4 always that tile size for every 3x3
 * stride-1 layer, -2 or -4 the automatic choice of layers with that tile size. */
TFX__HOOK int tfx__hook_winograd;

/* blas.c: libtfx's own thread count (tfx__threads); 0: the model's, else the BLAS's. */
TFX__HOOK int tfx__hook_threads;

/* file.c: tfx__file_write_atomic's writes fail with EIO once this many bytes of the temporary
 * file are written, as a crash or a full disk would (< 0: off; the definition starts it at -1). */
TFX__HOOK long tfx__hook_file_fail_after;

/* tensorboard/event_writer.c: the event writer's writes fail (ENOSPC) once this many more bytes
 * are written (< 0: off; starts at -1). */
TFX__HOOK long long tfx__hook_tb_write_budget;

#endif
