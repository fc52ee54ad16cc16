/* ExtractActivations: the chosen layer's output h x w x k per image, in chunks. */
#include <string.h>

#include "explain/explain_internal.h"

int tfx__explain_activations(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__explain_find_layer(c, c->o.layer_name, 0, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    memcpy(c->a->layer, l->name, sizeof c->a->layer);
    rc = tfx__explain_alloc_maps(c, l->out.h, l->out.w, l->out.c);
    if (rc) return rc;
    size_t per = tfx__shape_size(l->out);
    for (size_t s = 0; s < c->n; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        rc = tfx__model_forward(c->m, c->x + s * c->in_sz, nb, 0);
        if (rc) return tfx__error_prefix("tfx_explain");
        memcpy(c->a->data + s * per, tfx__model_layer_output(c->m, li), nb * per * sizeof(float));
    }
    return TFX_OK;
}
