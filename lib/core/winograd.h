/* Winograd minimal filtering F(m x m, 3 x 3) for stride-1 3x3 convolutions in NHWC
 * (lib/core/winograd.c): fewer multiplications than im2col + sgemm (2.25x for m = 2, 4x
 * for m = 4), the rest of the work being cheap transforms. Conv2D uses it for the forward
 * pass and for the input gradient (itself a 3x3 stride-1 convolution of dz with the rotated
 * kernel and padding 2 - pad). */
#ifndef TFX_CORE_WINOGRAD_H
#define TFX_CORE_WINOGRAD_H

#include <stddef.h>

/* One 3x3 stride-1 convolution: an in_h x in_w x cin input, an out_h x out_w x cout output,
 * input pixel of output (i, j) + kernel tap (ki, kj) at (i - pad_top + ki, j - pad_left + kj);
 * pixels outside the input are zero (so any padding, including 2 - pad for gradients). */
typedef struct tfx__wino_geom {
    int in_h, in_w, cin, out_h, out_w, cout, pad_top, pad_left;
} tfx__wino_geom;

/* Tile size m (2 or 4) to use for this convolution, or 0 for im2col. */
int tfx__winograd_choose(int cin, int cout, int out_h, int out_w);
/* (Tests force the choice: tfx__hook_winograd, core/hooks.h.) The same for n images: F(2x2)
 * where F(4x4)'s products would have at most 16 rows (automatic choice only). */
int tfx__winograd_choose_n(int cin, int cout, int out_h, int out_w, size_t n);

/* Threads worth using for this convolution: tfx__threads() (lib/layers/layer.h), at most one
 * per block of tiles. */
int tfx__winograd_threads(int m, const tfx__wino_geom *g, size_t n);
/* Floats of workspace tfx__winograd_conv needs with that many threads. */
size_t tfx__winograd_work_floats(int m, const tfx__wino_geom *g, size_t n, int threads);

/* The transformed kernel u = G g G^T ((m+2)^2 x cin x cout floats, tfx__winograd_kernel_floats)
 * of w, the HWIO kernel [3][3][wc][wf]. Forward: rotate = 0, wc = cin, wf = cout. Input
 * gradient: rotate = 1 (kernel turned by 180 degrees and its channel roles swapped), wc = cout,
 * wf = cin; tmp then holds 9 cin cout floats. It depends on the weights only, so Conv2D keeps
 * it across calls until they change. */
size_t tfx__winograd_kernel_floats(int m, const tfx__wino_geom *g);
void tfx__winograd_kernel(int m, const tfx__wino_geom *g, const float *w, int rotate, float *tmp, float *u);

/* Fused bias + activation applied to each output tile while it is in cache (see
 * tfx__bias_activation_forward); NULL in tfx__winograd_conv writes z only. */
typedef struct tfx__wino_epilogue {
    int act;
    float alpha, beta;
    const float *bias; /* may be NULL */
    float *y;          /* activation output, may equal z */
} tfx__wino_epilogue;

/* z = conv(x) for n images with the transformed kernel u (tfx__winograd_kernel). threads:
 * blocks of tiles are split over that many threads (the caller's included); work:
 * tfx__winograd_work_floats floats for the same count. Every output element is written; the
 * result does not depend on the thread count. */
void tfx__winograd_conv(int m, const tfx__wino_geom *g, size_t n, const float *x, const float *u, int threads,
                        float *work, float *z, const tfx__wino_epilogue *ep);

/* The kernel gradient gw[3][3][cin][cout] (HWIO, overwritten) of the forward convolution g
 * over n images: x its input, dz the gradient of its output, by F(3x3, 2x2) (2.25x fewer
 * multiplications than im2col). Two fixed halves of the tiles are summed separately and then
 * added, on two threads when threads >= 2; work: tfx__winograd_grad_work_floats floats. */
size_t tfx__winograd_grad_work_floats(const tfx__wino_geom *g, size_t n);
void tfx__winograd_kernel_grad(const tfx__wino_geom *g, size_t n, const float *x, const float *dz, int threads,
                               float *work, float *gw);

#endif
