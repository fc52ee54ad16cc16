/* Grad-CAM++ (Chattopadhyay et al., WACV 2018), the closed form of Eq. 19 (exponential output,
 * piecewise-linear network; exp(S_c) cancels and is dropped):
 *   a_ij^k = g^2 / (2 g^2 + (sum_ab A_ab^k) g^3), 0 where the denominator is 0,
 *   w_k = sum_ij a_ij^k ReLU(g_ij^k),  map = ReLU(sum_k w_k A^k),
 * with the spatial SUM of A (Xplique's mean is a different method). cam_alpha_normalize
 * divides a^k by a per-channel sum (left as is where that sum is 0): 1 = over all cells, as the
 * authors' image code (misc/utils.py) and tf-keras-vis; 2 = over the cells with g > 0, as the
 * authors' video code (Videos/test_model.py) and many ports. */
#include "explain/cam.h"

static void formula(const tfx__xctx *c, int flags, const float *A, const float *G, size_t hw, int k, double *wk,
                    float *cam)
{
    (void)flags;
    const int renorm = c->o.cam_alpha_normalize;
    for (int q = 0; q < k; q++) {
        double sumA = 0.0, w = 0.0, norm = 0.0;
        for (size_t p = 0; p < hw; p++) sumA += A[p * k + q];
        for (size_t p = 0; p < hw; p++) {
            double g = G[p * k + q], g2 = g * g, den = 2.0 * g2 + sumA * g2 * g;
            double a = den != 0.0 ? g2 / den : 0.0;
            if (g > 0.0) {
                w += a * g;
                if (renorm == 2) norm += a;
            }
            if (renorm == 1) norm += a;
        }
        wk[q] = renorm && norm != 0.0 ? w / norm : w;
    }
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += wk[q] * A[p * k + q];
        cam[p] = (float)v;
    }
}

int tfx__explain_grad_cam_plus_plus(tfx__xctx *c)
{
    TFX__CHECK_ARG(c->o.cam_alpha_normalize >= 0 && c->o.cam_alpha_normalize <= 2,
                   "tfx_explain: cam_alpha_normalize = %d must be 0 (none), 1 (all cells) or 2 (cells with a "
                   "positive gradient)", c->o.cam_alpha_normalize);
    return tfx__cam_gradient_method(c, "Grad-CAM++", formula);
}
