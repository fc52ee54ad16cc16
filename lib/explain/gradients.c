/* Vanilla gradients (Simonyan et al.) and Gradients x Inputs: one forward and one backward per
 * chunk of images; the raw map is the signed per-channel gradient (times the input). */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

int tfx__explain_gradients(tfx__xctx *c, int times_input)
{
    /* compat: tf-explain's score model (input of a standalone last activation layer). */
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    int rc = tfx__explain_set_target(c, compat ? TFX__TARGET_LAST_INPUT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    for (size_t s = 0; s < c->n; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        const float *xb = c->x + s * c->in_sz;
        float *g;
        rc = tfx__explain_gradient(c, xb, nb, c->classes + s, 0, &g);
        if (rc) return rc;
        float *dst = c->a->data + s * c->in_sz;
        size_t cnt = nb * c->in_sz;
        for (size_t i = 0; i < cnt; i++) {
            float v = times_input ? g[i] * xb[i] : g[i];
            dst[i] = compat ? fabsf(v) : v; /* tf-explain takes |.| before its display */
        }
    }
    return TFX_OK;
}
