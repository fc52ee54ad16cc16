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
    size_t lim = c->hooks ? c->hooks->max_tiles : 0;
    if (lim && (double)c->n * l->out.c > (double)lim)
        return tfx__error(TFX_EINVAL, "tfx_extract_activations: %zu images x %d feature maps of layer '%s' make "
                                      "%.0f tiles, more than the limit of %zu; pass fewer images or choose a layer "
                                      "with fewer channels", c->n, l->out.c, l->name, (double)c->n * l->out.c, lim);
    rc = tfx__explain_alloc_maps(c, l->out.h, l->out.w, l->out.c);
    if (rc) return rc;
    size_t per = tfx__shape_size(l->out);
    for (size_t s = 0; s < c->n; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        rc = tfx__model_forward_to(c->m, c->x + s * c->in_sz, nb, li, 0); /* layers above li: not needed */
        if (rc) return tfx__error_prefix("tfx_explain");
        memcpy(c->a->data + s * per, tfx__model_layer_output(c->m, li), nb * per * sizeof(float));
    }
    return TFX_OK;
}
