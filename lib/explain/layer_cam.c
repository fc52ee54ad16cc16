/* Layer-CAM (Jiang et al., IEEE TIP 2021): map = ReLU(sum_k ReLU(g^k) * A^k), elementwise (no
 * spatial pooling of the gradient), which keeps detail on shallow layers. */
#include "explain/cam.h"

static void formula(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k, double *wk,
                    float *cam)
{
    (void)c;
    (void)flags;
    (void)wk;
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) {
            float g = G[p * k + q];
            if (g > 0.0f) v += (double)g * A[p * k + q];
        }
        cam[p] = (float)v;
    }
}

int tfx__explain_layer_cam(tfx__xctx *c) { return tfx__cam_gradient_method(c, "Layer-CAM", formula); }
