/* The guided family: guided backprop (Springenberg et al. 2015: every ReLU, fused or not, passes
 * the positive gradient where its input was positive), DeconvNet (Zeiler & Fergus 2014: the
 * positive gradient, whatever the input) and Guided Grad-CAM (Selvaraju et al.: guided backprop
 * times the Grad-CAM map upsampled to the input, broadcast over colour channels). The rules are
 * the engine's (tfx__rule, lib/core/activation.c); the pass is tfx__model_backward's. Other
 * activations (sigmoid, tanh, leaky ReLU ...) keep their plain gradient. */
#include <string.h>

#include "explain/cam.h"

const tfx__rule *tfx__explain_rule(int rule_kind)
{
    static const tfx__rule rules[] = {{TFX__RULE_GRADIENT, 0, 0, 0, 0, 0},
                                      {TFX__RULE_GUIDED, 0, 0, 0, 0, 0},
                                      {TFX__RULE_DECONVNET, 0, 0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i].kind == rule_kind) return &rules[i];
    return NULL;
}

/* Row b's input gradient is image i's map. */
static int copy_gradient(void *u, const tfx__chunk *ch, size_t b)
{
    tfx__xctx *c = u;
    memcpy(c->a->data + ch->image[b] * c->in_sz, ch->grad + b * c->in_sz, c->in_sz * sizeof(float));
    return TFX_OK;
}

static int guided_gradients(tfx__xctx *c, int rule_kind)
{
    tfx__rows d = {.pass = TFX__PASS_GRADIENT, .rule = tfx__explain_rule(rule_kind), .u = c, .row = copy_gradient};
    return tfx__explain_rows(c, &d);
}

int tfx__explain_guided(tfx__xctx *c)
{
    int rc = tfx__explain_set_target(c, TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    return guided_gradients(c, c->o.method == TFX_METHOD_DECONVNET ? TFX__RULE_DECONVNET : TFX__RULE_GUIDED);
}

typedef struct job {
    tfx__xctx *c;
    float *up; /* H*W: the current image's upsampled Grad-CAM */
} job;

static float *into_up(void *u, size_t i)
{
    (void)i;
    return ((job *)u)->up;
}

/* The map holds image i's guided gradient: times the upsampled Grad-CAM. */
static int times_cam(void *u, size_t i)
{
    const job *jb = u;
    const size_t HW = (size_t)jb->c->in.h * jb->c->in.w;
    const int C = jb->c->in.c;
    float *dst = jb->c->a->data + i * jb->c->in_sz;
    for (size_t p = 0; p < HW; p++)
        for (int ch = 0; ch < C; ch++) dst[p * C + ch] *= jb->up[p];
    return TFX_OK;
}

int tfx__explain_guided_grad_cam(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__cam_layer(c, "Guided Grad-CAM", TFX__TARGET_LOGIT, &li);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    job jb = {c, tfx__malloc((size_t)c->in.h * c->in.w * sizeof(float))};
    if (!jb.up) return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Guided Grad-CAM");
    /* Guided backprop into the maps, then the Grad-CAM pass multiplies them (always upsampled:
     * the product lives at input resolution). */
    rc = guided_gradients(c, TFX__RULE_GUIDED);
    if (!rc) rc = tfx__cam_pass(c, li, tfx__cam_formula_grad_cam, TFX__CAM_UPSAMPLE, into_up, times_cam, &jb);
    tfx__free(jb.up);
    return rc;
}
