/* Layer kind -> vtable, for loading models. Indexed by the append-only tfx_layer_kind; the only
 * place besides the kinds' own files that names them. */
#include "layers/layer.h"

const tfx__layer_ops *tfx__layer_ops_for_kind(int kind)
{
    static const tfx__layer_ops *const table[] = {
        NULL,
        &tfx__conv2d_ops,
        &tfx__dense_ops,
        &tfx__flatten_ops,
        &tfx__max_pooling2d_ops,
        &tfx__average_pooling2d_ops,
        &tfx__global_average_pooling2d_ops,
        &tfx__dropout_ops,
        &tfx__activation_ops,
        &tfx__batch_norm_ops,
        &tfx__global_max_pooling2d_ops,
        &tfx__zero_padding2d_ops,
        &tfx__depthwise_conv2d_ops,
        &tfx__reshape_ops,
        &tfx__add_ops,
        &tfx__concatenate_ops,
        &tfx__multiply_ops,
    };
    if (kind <= 0 || kind >= (int)(sizeof table / sizeof table[0])) return NULL;
    return table[kind];
}
