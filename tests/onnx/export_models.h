/* Models the ONNX export tests write (tests/onnx/export_models.c): each built with seeded weights,
 * then random biases and BatchNormalization statistics so no parameter is trivially 0 or 1. */
#ifndef TFX_TESTS_ONNX_EXPORT_MODELS_H
#define TFX_TESTS_ONNX_EXPORT_MODELS_H

#include "tfx/tfx.h"

/* DESIGN.md's seed ConvNet (Conv 32/64 "visualization_layer"/128 relu, Flatten, Dense 128 relu,
 * Dense 10 softmax) at a 12x12x3 input (the 32x32 one holds 11 M weights in its first Dense). */
int xm_seed(tfx_model **out);
/* The same at CIFAR-10's 32x32x3 (11.2 M weights, a 45 MB file). */
int xm_seed_full(tfx_model **out);
/* conv -> two branches -> Add -> Concatenate -> squeeze-and-excitation Multiply (flat gate) ->
 * GlobalAveragePooling2D -> Dense softmax. */
int xm_graph(tfx_model **out);
/* Every activation, standalone (Activation layers) and fused (Conv2D), side by side on one map
 * (Concatenate): each appears in the output as it is. Kernels x4 so the inputs reach the
 * activations' corners (relu6's 6, hard sigmoid's +-3). */
int xm_acts(tfx_model **out);
/* Every feature-map kind with some activations: SAME with asymmetric pads,
 * groups, explicit pads, depthwise with a multiplier, both poolings with SAME/explicit pads and
 * count_include_pad, ZeroPadding2D, BatchNormalization (also without center/scale), Dropout,
 * Reshape, Dense on a feature map, a 1x1xC Multiply gate, GlobalMaxPooling2D. */
int xm_kinds(tfx_model **out);
/* xm_kinds and xm_flat without their Reshape that mixes channels and positions (4x4x16 -> 2x8x16,
 * flat 8 -> 2x2x2: Transpose, Reshape to [N, h, w, c], Transpose in the file); xm_flat's becomes
 * flat 8 -> 1x1x8. The importer refuses the mixing ones today (the round trip uses these). */
int xm_kinds_no_mixing_reshape(tfx_model **out);
int xm_flat_no_mixing_reshape(tfx_model **out);
/* Flat tensors: a Flatten read by BatchNormalization and Dense layers (the Transpose path), Add
 * of three (Sum), flat Concatenate, softmax on a flat tensor, Flatten -> Dropout -> Activation ->
 * Dense (the permuted Gemm path), a flat gate beside a feature map, Reshape flat -> map. */
int xm_flat(tfx_model **out);
/* A model whose output is a feature map (NCHW in ONNX): conv -> BN -> conv. */
int xm_map_out(tfx_model **out);

/* n random NHWC samples in [-1, 1) for model m (malloc'd; *size: floats). */
float *xm_input(const tfx_model *m, size_t n, uint64_t seed, size_t *size);

#endif
