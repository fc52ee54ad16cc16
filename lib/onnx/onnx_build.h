/* The ONNX builder's state, shared by onnx_load.c (graph checks, entry points), onnx_ops.c
 * (operators -> layers) and onnx_fold.c (constant folding). */
#ifndef TFX_ONNX_BUILD_H
#define TFX_ONNX_BUILD_H

#include "model/model_internal.h"
#include "onnx/onnx_internal.h"

enum { TFX__ONNX_UNSET = 0, TFX__ONNX_CONST, TFX__ONNX_INPUT, TFX__ONNX_RUNTIME };
/* libtfx axes an ONNX axis of a runtime tensor may be (val.ax). */
enum { TFX__AX_N = 0, TFX__AX_H = 1, TFX__AX_W = 2, TFX__AX_C = 3 };

/* One tensor name. A constant holds a tensor (an initializer, or one folded into the arena); a
 * runtime tensor is libtfx tensor t (0: the model input, k + 1: layer k's output) seen through
 * the ONNX shape dims (rank 2 [N, K] or rank 4, dims[0] = -1: the batch) and ax, the libtfx
 * axis of each ONNX axis ({N, C, H, W} for NCHW). A rank-2 tensor made by flattening an NCHW
 * map holds its values in libtfx's H, W, C order: chw gives that map's C, H, W (0: the order is
 * ONNX's), which a Gemm/MatMul reading it undoes by permuting its weight rows. */
typedef struct tfx__onnx_val {
    const char *name;
    int kind;
    const tfx__onnx_tensor *k;      /* TFX__ONNX_CONST */
    const tfx__onnx_value_info *vi; /* TFX__ONNX_INPUT: the declaration */
    int t;                          /* TFX__ONNX_RUNTIME / INPUT once made */
    int rank;
    int64_t dims[TFX__ONNX_MAX_RANK];
    int ax[TFX__ONNX_MAX_RANK];
    int chw[3];
    int producer;  /* node index, -1 for initializers and inputs */
    int consumers; /* live nodes reading it (+1 for the graph output) */
    int consumer;  /* one of them (the only one when consumers == 1) */
    int is_output;
} tfx__onnx_val;

typedef struct tfx__onnx_ctx {
    const char *fn;
    const tfx__onnx_model *om;
    const tfx_onnx_options *o;
    int64_t opset;
    tfx_model *m;
    tfx__onnx_val *vals;
    size_t n_vals;
    size_t *hash, hcap; /* open addressing: index + 1 into vals, 0 empty */
    size_t *order;      /* nodes in execution order */
    char *live, *absorbed;
    tfx__onnx_val *input, *output;
    tfx__onnx_arena arena; /* folded constants, scratch names */
    size_t const_elems;    /* elements of the constants folded so far (TFX__ONNX_MAX_FOLDED) */
    float *scratch[2];     /* weight buffers reused across layers (onnx_ops.c) */
    size_t scratch_cap[2];
} tfx__onnx_ctx;

/* Elements all constants made at load may hold together (1 GiB of floats): a file of a few bytes
 * cannot make the loader allocate without bound (ConstantOfShape); the light VGG-19 needs 143 M. */
#define TFX__ONNX_MAX_FOLDED ((size_t)1 << 28)

tfx__onnx_val *tfx__onnx_find(tfx__onnx_ctx *c, const char *name);
const char *tfx__onnx_node_label(const tfx__onnx_node *n);
/* TFX_ENOTSUP "fn: node 'name' (Op): reason", and the same with another code. */
int tfx__onnx_unsup(tfx__onnx_ctx *c, const tfx__onnx_node *n, const char *fmt, ...) TFX__PRINTF(3, 4);
int tfx__onnx_fail(tfx__onnx_ctx *c, const tfx__onnx_node *n, int code, const char *fmt, ...) TFX__PRINTF(4, 5);

/* onnx_ops.c: the model and its input; one node; the output checks and aliases. */
int tfx__onnx_make_input(tfx__onnx_ctx *c);
int tfx__onnx_run_node(tfx__onnx_ctx *c, size_t i);
int tfx__onnx_finish(tfx__onnx_ctx *c);

/* onnx_fold.c: a node whose inputs are all constants (or absent). */
int tfx__onnx_fold(tfx__onnx_ctx *c, const tfx__onnx_node *n);
/* TFX_OK when a constant a node reads is float32/int64/int32 with its values in the file
 * (external data: TFX_ENOTSUP, never opened). */
int tfx__onnx_const_check(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_tensor *t);
/* A new float (is_int 0) or int64 constant tensor of the given dims in the arena; values
 * uninitialised. NULL with an error when out of memory. */
tfx__onnx_tensor *tfx__onnx_new_const(tfx__onnx_ctx *c, const char *name, int is_int, int rank, const int64_t *dims);

/* Attributes of a node (NULL when absent). */
const tfx__onnx_attr *tfx__onnx_attr_find(const tfx__onnx_node *n, const char *name);
int64_t tfx__onnx_attr_int(const tfx__onnx_node *n, const char *name, int64_t def);
float tfx__onnx_attr_float(const tfx__onnx_node *n, const char *name, float def);

#endif
