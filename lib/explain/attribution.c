/* The attribution object (raw maps and what produced them) and the tf-explain style calls that
 * return pictures: each runs tfx_explain and renders its maps with the renderer (image.h) as
 * tf-explain's explain() does, following o->compat. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"
#include "render/render.h"

void tfx_attribution_free(tfx_attribution *a)
{
    if (!a) return;
    tfx__free(a->data);
    tfx__free(a->classes);
    tfx__free(a->ig_delta);
    tfx__free(a->ig_diff);
    tfx__free(a->cells);
    tfx__free(a->relevance);
    tfx__free(a);
}

size_t tfx_attribution_count(const tfx_attribution *a) { return a ? a->n : 0; }

int tfx_attribution_shape(const tfx_attribution *a, int shape[3])
{
    TFX__CHECK_NULL(a);
    TFX__CHECK_NULL(shape);
    shape[0] = a->h;
    shape[1] = a->w;
    shape[2] = a->c;
    return TFX_OK;
}

const float *tfx_attribution_data(const tfx_attribution *a, size_t i)
{
    if (!a) {
        tfx__error(TFX_EINVAL, "tfx_attribution_data: argument 'a' is NULL");
        return NULL;
    }
    if (i >= a->n) {
        tfx__error(TFX_EINVAL, "tfx_attribution_data: index %zu out of range (%zu maps)", i, a->n);
        return NULL;
    }
    return a->data + i * ((size_t)a->h * a->w * a->c);
}

int tfx_attribution_method(const tfx_attribution *a)
{
    TFX__CHECK_NULL(a);
    return a->method;
}

const char *tfx_attribution_layer_name(const tfx_attribution *a)
{
    if (!a) {
        tfx__error(TFX_EINVAL, "tfx_attribution_layer_name: argument 'a' is NULL");
        return "";
    }
    return a->layer;
}

int tfx_attribution_class_index(const tfx_attribution *a, size_t i)
{
    TFX__CHECK_NULL(a);
    TFX__CHECK_ARG(i < a->n, "tfx_attribution_class_index: index %zu out of range (%zu maps)", i, a->n);
    if (a->classes[i] < 0)
        return tfx__error(TFX_EINVAL, "tfx_attribution_class_index: this method (%d) has no target class", a->method);
    return a->classes[i];
}

int tfx_attribution_ig_delta(const tfx_attribution *a, size_t i, double *delta, double *score_diff)
{
    TFX__CHECK_NULL(a);
    TFX__CHECK_ARG(a->method == TFX_METHOD_INTEGRATED_GRADIENTS && a->ig_delta,
                   "tfx_attribution_ig_delta: the attribution was made by method %d, not Integrated Gradients",
                   a->method);
    TFX__CHECK_ARG(i < a->n, "tfx_attribution_ig_delta: index %zu out of range (%zu maps)", i, a->n);
    if (delta) *delta = a->ig_delta[i];
    if (score_diff) *score_diff = a->ig_diff[i];
    return TFX_OK;
}

/* ---- pictures ---- */

int tfx__explain_picture(tfx_model *m, const float *x, size_t n, int method, int class_index, const char *layer,
                         const tfx_explain_options *o, tfx_image **out)
{
    static const char *const fns[] = {"", "tfx_extract_activations", "tfx_vanilla_gradients", "tfx_gradients_inputs",
                                      "tfx_occlusion_sensitivity", "tfx_grad_cam", "tfx_smooth_grad",
                                      "tfx_integrated_gradients"};
    const char *fn = fns[method];
    TFX__CHECK_NULL(out);
    *out = NULL;
    tfx_explain_options opt;
    int rc = tfx__explain_copy_options(o, &opt, fn);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(opt.image_weight) && opt.image_weight >= 0.0f && opt.image_weight <= 1.0f,
                   "%s: image_weight = %g must be in [0, 1]", fn, (double)opt.image_weight);
    opt.method = method;
    if (method == TFX_METHOD_ACTIVATIONS) {
        opt.layer_name = layer;
    } else {
        opt.class_index = class_index;
        opt.class_indices = NULL;
    }
    opt.upsample = 0; /* the renderer resizes CAM maps (as heatmap_display does) */
    tfx__explain_hooks hooks = {NULL, TFX_ACTIVATIONS_MAX_TILES, NULL};
    tfx_attribution *a;
    rc = tfx__explain_run(m, x, n, &opt, &hooks, &a);
    if (rc) return tfx__error_prefix("%s", fn);
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    ro.compat = opt.compat;
    ro.image_weight = opt.image_weight;
    int H = m->input.h, W = m->input.w, C = m->input.c;
    switch (method) {
    case TFX_METHOD_ACTIVATIONS:
        rc = tfx_render_filters(a->data, n, a->h, a->w, a->c, &ro, out);
        break;
    case TFX_METHOD_VANILLA_GRADIENTS:
    case TFX_METHOD_SMOOTH_GRAD:
        ro.reduce = TFX_REDUCE_MAX_ABS; /* default mode: Simonyan et al.'s max over channels */
        rc = tfx_render_saliency(a->data, n, a->h, a->w, a->c, &ro, out);
        break;
    case TFX_METHOD_GRADIENTS_INPUTS:
    case TFX_METHOD_INTEGRATED_GRADIENTS:
        ro.reduce = TFX_REDUCE_SUM_ABS; /* attributions add up over channels */
        rc = tfx_render_saliency(a->data, n, a->h, a->w, a->c, &ro, out);
        break;
    case TFX_METHOD_GRAD_CAM:
        rc = tfx_render_heatmap(a->data, n, a->h, a->w, x, H, W, C, &ro, out);
        break;
    default: /* occlusion: compat renders tf-explain's float64 cell map, resized by the renderer */
        if (a->cells)
            rc = tfx__render_heatmap_f64(a->cells, n, a->cells_h, a->cells_w, x, H, W, C, &ro, out);
        else
            rc = tfx_render_heatmap(a->data, n, a->h, a->w, x, H, W, C, &ro, out);
        break;
    }
    tfx_attribution_free(a);
    if (rc) {
        *out = NULL;
        return tfx__error_prefix("%s", fn);
    }
    return TFX_OK;
}

int tfx_extract_activations(tfx_model *m, const float *x, size_t n, const char *layers_name,
                            const tfx_explain_options *o, tfx_image **out)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(layers_name);
    return tfx__explain_picture(m, x, n, TFX_METHOD_ACTIVATIONS, -1, layers_name, o, out);
}

int tfx_vanilla_gradients(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                          tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_VANILLA_GRADIENTS, class_index, NULL, o, out);
}

int tfx_gradients_inputs(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                         tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_GRADIENTS_INPUTS, class_index, NULL, o, out);
}

int tfx_occlusion_sensitivity(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                              tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_OCCLUSION, class_index, NULL, o, out);
}

int tfx_grad_cam(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                 tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_GRAD_CAM, class_index, NULL, o, out);
}

int tfx_smooth_grad(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                    tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_SMOOTH_GRAD, class_index, NULL, o, out);
}

int tfx_integrated_gradients(tfx_model *m, const float *x, size_t n, int class_index, const tfx_explain_options *o,
                             tfx_image **out)
{
    return tfx__explain_picture(m, x, n, TFX_METHOD_INTEGRATED_GRADIENTS, class_index, NULL, o, out);
}
