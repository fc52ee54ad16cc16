/* ExtractActivations: the chosen layer's output h x w x k per image (a forward up to it). */
#include <string.h>

#include "explain/explain_internal.h"

typedef struct job {
    tfx__xctx *c;
    size_t li, per;
} job;

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    const job *jb = u;
    memcpy(jb->c->a->data + ch->image[b] * jb->per, tfx__model_layer_output(jb->c->m, jb->li) + b * jb->per,
           jb->per * sizeof(float));
    return TFX_OK;
}

int tfx__explain_activations(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__explain_find_layer(c, c->o.layer_name, 0, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    memcpy(c->a->layer, l->name, sizeof c->a->layer);
    size_t lim = c->hooks ? c->hooks->max_tiles : 0;
    if (lim && (double)c->n * l->out.c > (double)lim)
        return tfx__error(TFX_EINVAL, "tfx_extract_activations: %zu images x %d feature maps of layer '%s' make "
                                      "%.0f tiles, more than the limit of %zu; pass fewer images or choose a layer "
                                      "with fewer channels", c->n, l->out.c, l->name, (double)c->n * l->out.c, lim);
    rc = tfx__explain_alloc_maps(c, l->out.h, l->out.w, l->out.c);
    if (rc) return rc;
    job jb = {c, li, tfx__shape_size(l->out)};
    /* Layers above li are not needed. */
    tfx__rows d = {.pass = TFX__PASS_FORWARD_TO, .layer = li, .u = &jb, .row = row};
    return tfx__explain_rows(c, &d);
}
