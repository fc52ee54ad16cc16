/* ONNX import: the parsed file (onnx_read.c) and the builder's entry (onnx_load.c). The reader
 * keeps the ~30 fields libtfx needs, everything in one arena freed at once; tensor bytes
 * (raw_data) stay in the caller's buffer, read in place. */
#ifndef TFX_ONNX_INTERNAL_H
#define TFX_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tfx/onnx.h"

/* Limits checked before anything is allocated or multiplied. */
#define TFX__ONNX_MAX_RANK 8
#define TFX__ONNX_MAX_NODES (1 << 20)
#define TFX__ONNX_MAX_ELEMS ((int64_t)1 << 31) /* elements of one tensor */
#define TFX__ONNX_MAX_LIST (1 << 20)           /* names of a node, attributes, list attributes */

/* ONNX TensorProto.DataType values used here. */
enum { TFX__ONNX_FLOAT = 1, TFX__ONNX_INT32 = 6, TFX__ONNX_INT64 = 7, TFX__ONNX_DOUBLE = 11 };
/* AttributeProto.AttributeType values. */
enum {
    TFX__ONNX_ATTR_FLOAT = 1,
    TFX__ONNX_ATTR_INT = 2,
    TFX__ONNX_ATTR_STRING = 3,
    TFX__ONNX_ATTR_TENSOR = 4,
    TFX__ONNX_ATTR_FLOATS = 6,
    TFX__ONNX_ATTR_INTS = 7
};

typedef struct tfx__onnx_arena {
    struct tfx__onnx_block *head;
} tfx__onnx_arena;

typedef struct tfx__onnx_tensor {
    const char *name;
    int data_type;
    int rank;
    int64_t dims[TFX__ONNX_MAX_RANK];
    size_t count; /* product of dims (checked against the limit) */
    /* The values: raw little-endian bytes in the file (raw, count * element size) or the typed
     * fields decoded (f for FLOAT float_data, i for INT64/INT32 int64_data/int32_data). */
    const uint8_t *raw;
    const float *f;
    const int64_t *i;
    int external; /* data_location EXTERNAL or external_data present (refused by the builder) */
} tfx__onnx_tensor;

typedef struct tfx__onnx_attr {
    const char *name;
    int type;
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy */
    const tfx__onnx_tensor *t;
    const float *floats;
    const int64_t *ints;
    size_t n_floats, n_ints;
} tfx__onnx_attr;

typedef struct tfx__onnx_node {
    const char *name, *op_type, *domain;
    const char **inputs, **outputs;
    size_t n_inputs, n_outputs;
    tfx__onnx_attr *attrs;
    size_t n_attrs;
} tfx__onnx_node;

typedef struct tfx__onnx_value_info {
    const char *name;
    int elem_type; /* 0 when the type is not a tensor or not given */
    int has_shape;
    int rank;
    int64_t dims[TFX__ONNX_MAX_RANK]; /* -1: symbolic (dim_param) or unknown */
} tfx__onnx_value_info;

typedef struct tfx__onnx_model {
    tfx__onnx_arena arena;
    int64_t ir_version;
    int64_t opset; /* of the default domain ("" or "ai.onnx"); 0 when absent */
    tfx__onnx_node *nodes;
    size_t n_nodes;
    tfx__onnx_tensor *inits;
    size_t n_inits;
    tfx__onnx_value_info *inputs, *outputs, *value_infos;
    size_t n_inputs, n_outputs, n_value_infos;
} tfx__onnx_model;

/* Parse a ModelProto in data (kept borrowed: tensors point into it). TFX_EFORMAT with the field
 * path on malformed input, TFX_ENOMEM. *out is cleared and owns nothing on failure. */
int tfx__onnx_read(const char *fn, const void *data, size_t size, tfx__onnx_model *out);
void tfx__onnx_model_release(tfx__onnx_model *m);

/* Parse a lone TensorProto (test data files input_0.pb); allocations in arena. */
int tfx__onnx_read_tensor(const char *fn, const void *data, size_t size, tfx__onnx_arena *arena, tfx__onnx_tensor *out);
void tfx__onnx_arena_free(tfx__onnx_arena *a);
void *tfx__onnx_arena_alloc(tfx__onnx_arena *a, size_t size);

/* Element i of a FLOAT / INT64 / INT32 tensor as a double / int64 (no range check on i). */
float tfx__onnx_tensor_float(const tfx__onnx_tensor *t, size_t i);
int64_t tfx__onnx_tensor_int(const tfx__onnx_tensor *t, size_t i);

/* Build the libtfx model (onnx_load.c). */
int tfx__onnx_build(const char *fn, const tfx__onnx_model *om, const tfx_onnx_options *o, tfx_model **out);

#endif
