/* The running half of Conv2D (lib/layers/conv2d.c), shared with DepthwiseConv2D, which is a
 * Conv2D with groups = input channels and filters = channels x depth multiplier (its own
 * file has the building, initialisation and file record). */
#ifndef TFX_LAYERS_CONV2D_H
#define TFX_LAYERS_CONV2D_H

#include "layers/layer.h"

void tfx__conv2d_counts(const tfx_layer *l, size_t *trainable, size_t *state);
size_t tfx__conv2d_scratch_floats(const tfx_layer *l, size_t n);
int tfx__conv2d_forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n);
int tfx__conv2d_backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y, float *dy, float *dx,
                         size_t n, int flags, const tfx__rule *rule);
void tfx__conv2d_weight_sizes(const tfx_layer *l, size_t *kernel, size_t *bias);
void tfx__conv2d_set_weights(tfx_layer *l, const float *kernel, const float *bias);
void tfx__conv2d_get_weights(const tfx_layer *l, float *kernel, float *bias);
void tfx__conv2d_box_forward(const tfx_layer *l, const tfx__box_io *io);
void tfx__conv2d_box_scratch(const tfx_layer *l, size_t rows, int bh, int bw, size_t *gather, size_t *col);
double tfx__conv2d_box_cost(const tfx_layer *l);
/* Conv2D's shape inference (window, groups, weight bound) for a config already complete. */
int tfx__conv2d_infer(tfx_layer *l, tfx__shape in, tfx__shape *out);

#endif
