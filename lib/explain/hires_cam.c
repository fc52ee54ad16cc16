/* HiResCAM (Draelos & Carin, arXiv:2011.08891): map = ReLU(sum_k g^k * A^k), elementwise; the
 * final ReLU as every CAM here (pytorch-grad-cam does the same). */
#include "explain/cam.h"

static void formula(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k, double *wk,
                    float *cam)
{
    (void)c;
    (void)flags;
    (void)wk;
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += (double)G[p * k + q] * A[p * k + q];
        cam[p] = (float)v;
    }
}

int tfx__explain_hires_cam(tfx__xctx *c) { return tfx__cam_gradient_method(c, "HiResCAM", formula); }
