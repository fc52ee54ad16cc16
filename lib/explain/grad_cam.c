/* Grad-CAM (Selvaraju et al.): channel weights = spatial mean of d score / d A over the chosen
 * layer's output A, map = ReLU(sum_k w_k A_k), at layer resolution or upsampled bilinearly to
 * the input: the CAM family's pass with Grad-CAM's formula. tf-explain's mode is flags on it:
 * the post-softmax output as target, gated gradients (its use_guided_grads, on by default) and
 * no final ReLU. */
#include "explain/cam.h"

int tfx__explain_grad_cam(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    /* The paper has no gating; o->guided < 0 is the mode's default. */
    int gate = c->o.guided < 0 ? compat : c->o.guided != 0;
    int flags = (gate ? TFX__CAM_GATE : 0) | (compat ? TFX__CAM_NO_RELU : 0);
    return tfx__cam_gradient_method_ex(c, "Grad-CAM", tfx__cam_formula_grad_cam,
                                       compat ? TFX__TARGET_OUTPUT : TFX__TARGET_LOGIT, flags);
}
