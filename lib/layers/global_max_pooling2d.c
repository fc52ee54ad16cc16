/* GlobalMaxPooling2D: max over h and w per channel, flat (None, c) output. The gradient (and
 * LRP's relevance) goes to the first maximal cell in NHWC order, as PyTorch's max pooling and
 * this library's MaxPooling2D; TensorFlow's reduce_max splits it among ties instead. */
#include <string.h>

#include "layers/layer.h"
#include "layers/lrp.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "GlobalMaxPooling2D needs an image input (h, w, c), got a flat tensor of %d",
                          in.c);
    *out = (tfx__shape){1, 1, in.c, 1};
    return TFX_OK;
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const size_t C = (size_t)l->in.c, P = (size_t)l->in.h * l->in.w;
    for (size_t b = 0; b < n; b++) {
        float *yb = y + b * C;
        const float *xb = x + b * P * C;
        memcpy(yb, xb, C * sizeof(float));
        for (size_t p = 1; p < P; p++)
            for (size_t c = 0; c < C; c++) yb[c] = xb[p * C + c] > yb[c] ? xb[p * C + c] : yb[c];
    }
    return TFX_OK;
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y, float *dy, float *dx,
                    size_t n, int flags, const tfx__rule *rule)
{
    (void)run;
    (void)flags;
    if (rule->kind == TFX__RULE_LRP_ZB)
        return tfx__error(TFX_ENOTSUP, "layer '%s' (GlobalMaxPooling2D): rule %s is not supported", l->name,
                          tfx__rule_name(rule->kind));
    if (!dx) return TFX_OK;
    const size_t C = (size_t)l->in.c, P = (size_t)l->in.h * l->in.w;
    memset(dx, 0, n * P * C * sizeof(float));
    for (size_t b = 0; b < n; b++) {
        const float *xb = x + b * P * C, *yb = y + b * C;
        float *db = dx + b * P * C;
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < P; p++)
                if (xb[p * C + c] == yb[c]) { /* the first maximum */
                    db[p * C + c] = dy[b * C + c];
                    break;
                }
    }
    return TFX_OK;
}

/* No configuration: the file's record is empty. */
static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    (void)b;
    (void)c;
    return TFX_OK;
}

const tfx__layer_ops tfx__global_max_pooling2d_ops = {
    .kind = TFX_LAYER_GLOBAL_MAX_POOLING2D,
    .traits = 0,
    .base_name = "global_max_pooling2d",
    .type_name = "GlobalMaxPooling2D",
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .config_read = config_read,
};
