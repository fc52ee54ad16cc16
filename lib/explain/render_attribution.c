/* tfx_attribution_render: a picture of any attribution, chosen by its method and map shape
 * (feature-map grid, heatmap over the image, or saliency). */
#include <string.h>

#include "explain/explain_internal.h"
#include "render/render.h"

static int is_cam_like(int method)
{
    switch (method) {
    case TFX_METHOD_GRAD_CAM:
    case TFX_METHOD_OCCLUSION:
    case TFX_METHOD_GRAD_CAM_PLUS_PLUS:
    case TFX_METHOD_SCORE_CAM:
    case TFX_METHOD_LAYER_CAM:
    case TFX_METHOD_XGRAD_CAM:
    case TFX_METHOD_HIRES_CAM:
    case TFX_METHOD_EIGEN_CAM:
        return 1;
    default:
        return 0;
    }
}

int tfx_attribution_render(const tfx_attribution *a, const float *x, const tfx_render_options *o, tfx_image **out)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(a);
    tfx_render_options ro;
    int rc = tfx__render_options_copy(&ro, o, "tfx_attribution_render");
    if (rc) return rc;
    if (!o && (a->method == TFX_METHOD_VANILLA_GRADIENTS || a->method == TFX_METHOD_SMOOTH_GRAD ||
               a->method == TFX_METHOD_GUIDED_BACKPROP || a->method == TFX_METHOD_DECONVNET ||
               a->method == TFX_METHOD_GUIDED_SMOOTH_GRAD || a->method == TFX_METHOD_NOISE_TUNNEL)) {
        ro.reduce = TFX_REDUCE_MAX_ABS; /* gradients: Simonyan et al.'s max over channels */
    }
    if (a->method == TFX_METHOD_ACTIVATIONS) {
        rc = tfx_render_filters(a->data, a->n, a->h, a->w, a->c, &ro, out);
    } else if (is_cam_like(a->method) && a->c == 1) {
        TFX__CHECK_NULL(x);
        rc = tfx_render_heatmap(a->data, a->n, a->h, a->w, x, a->in_h, a->in_w, a->in_c, &ro, out);
    } else {
        rc = tfx_render_saliency(a->data, a->n, a->h, a->w, a->c, &ro, out);
    }
    if (rc) return tfx__error_prefix("tfx_attribution_render");
    return TFX_OK;
}
