/* XGrad-CAM (Fu et al., BMVC 2020): w_k = sum_ij (A_ij^k / sum_ab A_ab^k) g_ij^k (0 when the
 * channel sums to 0), map = ReLU(sum_k w_k A^k). */
#include "explain/cam.h"

static void formula(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k, double *wk,
                    float *cam)
{
    (void)c;
    (void)flags;
    for (int q = 0; q < k; q++) {
        double s = 0.0, w = 0.0;
        for (size_t p = 0; p < hw; p++) {
            s += A[p * k + q];
            w += (double)A[p * k + q] * G[p * k + q];
        }
        wk[q] = s != 0.0 ? w / s : 0.0;
    }
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += wk[q] * A[p * k + q];
        cam[p] = (float)v;
    }
}

int tfx__explain_xgrad_cam(tfx__xctx *c) { return tfx__cam_gradient_method(c, "XGrad-CAM", formula); }
