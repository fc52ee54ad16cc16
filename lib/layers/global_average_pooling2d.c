/* GlobalAveragePooling2D: mean over h and w per channel, flat (None, c) output. */
#include <string.h>

#include "layers/lrp.h"
#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    (void)l;
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "GlobalAveragePooling2D needs an image input (h, w, c), got a flat tensor of %d", in.c);
    *out = (tfx__shape){1, 1, in.c, 1};
    return TFX_OK;
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const size_t C = (size_t)l->in.c, P = (size_t)l->in.h * l->in.w;
    const float inv = 1.0f / (float)P;
    for (size_t b = 0; b < n; b++) {
        float *yb = y + b * C;
        const float *xb = x + b * P * C;
        memset(yb, 0, C * sizeof(float));
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < C; c++) yb[c] += xb[p * C + c];
        for (size_t c = 0; c < C; c++) yb[c] *= inv;
    }
    return TFX_OK;
}

static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y,
                    float *dy, float *dx, size_t n, int flags, const tfx__rule *rule)
{
    if (rule->kind >= TFX__RULE_LRP_0) return tfx__lrp_elementwise_linear(l, run, x, y, dy, dx, n, flags, rule);
    if (!dx) return TFX_OK;
    const size_t C = (size_t)l->in.c, P = (size_t)l->in.h * l->in.w;
    const float inv = 1.0f / (float)P;
    for (size_t b = 0; b < n; b++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < C; c++) dx[(b * P + p) * C + c] = dy[b * C + c] * inv;
    return TFX_OK;
}

/* No configuration: the file's record is empty. */
static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    (void)b;
    (void)c;
    return TFX_OK;
}

const tfx__layer_ops tfx__global_average_pooling2d_ops = {
    .kind = TFX_LAYER_GLOBAL_AVERAGE_POOLING2D,
    .traits = 0,
    .base_name = "global_average_pooling2d",
    .type_name = "GlobalAveragePooling2D",
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .config_read = config_read,
};
