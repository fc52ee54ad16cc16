/* ONNX models: load a .onnx file (opsets 7..17, float32) into an ordinary libtfx model taking
 * NHWC input, and write any libtfx model as ONNX (opset 13). docs/onnx.md lists the operators,
 * the layout conversion and the naming rules. */
#ifndef TFX_ONNX_H
#define TFX_ONNX_H

#include "common.h"
#include "model.h"

TFX_BEGIN_DECLS

#define TFX_ONNX_OPTIONS_VERSION 1
typedef struct tfx_onnx_options {
    unsigned version;
    /* Loading: non-zero (default) folds a BatchNormalization into the Conv/Gemm before it and
     * fuses a following Relu/Clip/Sigmoid/... into it; 0 keeps one libtfx layer per ONNX node
     * (BatchNormalization as its own layer). */
    int fuse;
    /* Loading: the input height and width to use when the file leaves them symbolic (a dynamic
     * axis); 0: the file's (TFX_ENOTSUP when symbolic). The batch axis may always be symbolic. */
    int input_height, input_width;
    /* Saving: the opset to write (0: 13; 13 is the only one written today). */
    int opset;
} tfx_onnx_options;
#define TFX_ONNX_OPTIONS_INIT { TFX_ONNX_OPTIONS_VERSION, 1, 0, 0, 0 }
TFX_API int tfx_onnx_options_init(tfx_onnx_options *opts, unsigned version);

/* ---- import ----
 * Load an ONNX model (opsets 7..17, float32; docs/onnx.md lists the operators) as an ordinary
 * libtfx model taking NHWC input of the ONNX input's H, W, C (batch axis free) and giving the
 * graph's output. Layers are named after the ONNX nodes; tfx_model_find_layer also accepts the
 * output tensor name of each node whose result a layer computes. Unsupported operators,
 * attributes, data types, external data (never opened) and unresolved dynamic shapes are
 * TFX_ENOTSUP naming the node and operator; malformed files TFX_EFORMAT naming the field; a
 * file that cannot be read TFX_EIO. o may be NULL (defaults). *out is NULL on failure. */
TFX_API int tfx_model_load_onnx(tfx_model **out, const char *path, const tfx_onnx_options *o);
TFX_API int tfx_model_load_onnx_from_memory(tfx_model **out, const void *data, size_t size,
                                            const tfx_onnx_options *o);

/* ---- Export ----
 * Write model m as an ONNX model (opset 13, ir_version 7) at path, replaced atomically. The
 * graph input "input" is NCHW float [N, C, H, W] with a symbolic batch "N"; the graph output
 * "output" is [N, units] for a flat output, else NCHW. Weights are converted to ONNX's layouts
 * so the file computes what the model computes (docs/onnx.md "Export"). Each layer becomes one
 * or more nodes; the last one is named after the layer and writes a tensor of the layer's
 * name (the last layer's: "output"). o may be NULL (only o->opset is read: 0 or 13).
 * TFX_ESTATE: no layers, or a layer that does not lead to the output; TFX_ENOTSUP naming the
 * layer: a kind or activation with no ONNX form; TFX_EIO: the file cannot be written. */
TFX_API int tfx_model_save_onnx(const tfx_model *m, const char *path, const tfx_onnx_options *o);

/* Layout conversions for callers whose data is NCHW (PyTorch, ONNX): n images of c x h x w
 * floats to n x h x w x c, and back. src and dst must not overlap. */
TFX_API int tfx_tensor_nchw_to_nhwc(const float *src, float *dst, size_t n, int channels, int height, int width);
TFX_API int tfx_tensor_nhwc_to_nchw(const float *src, float *dst, size_t n, int height, int width, int channels);

TFX_END_DECLS

#endif
