/* Vanilla gradients (Simonyan et al.) and Gradients x Inputs: the images go through the row
 * driver's gradient pass; the raw map is the signed per-channel gradient (times the input). */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

typedef struct job {
    tfx__xctx *c;
    int times_input, compat;
} job;

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    const job *jb = u;
    const size_t D = jb->c->in_sz;
    const float *g = ch->grad + b * D, *x = ch->rows + b * D;
    float *dst = jb->c->a->data + ch->image[b] * D;
    for (size_t i = 0; i < D; i++) {
        float v = jb->times_input ? g[i] * x[i] : g[i];
        dst[i] = jb->compat ? fabsf(v) : v; /* tf-explain takes |.| before its display */
    }
    return TFX_OK;
}

int tfx__explain_gradients(tfx__xctx *c)
{
    job jb = {c, c->o.method == TFX_METHOD_GRADIENTS_INPUTS, c->o.compat == TFX_COMPAT_TF_EXPLAIN};
    /* compat: tf-explain's score model (input of a standalone last activation layer). */
    int rc = tfx__explain_set_target(c, jb.compat ? TFX__TARGET_LAST_INPUT : TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    tfx__rows d = {.pass = TFX__PASS_GRADIENT, .u = &jb, .row = row};
    return tfx__explain_rows(c, &d);
}
