/* Helpers of the ONNX tests: read files, TensorProto files (input_0.pb, output_0.pb), compare. */
#ifndef TFX_TESTS_ONNX_UTIL_H
#define TFX_TESTS_ONNX_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"
#include "tfx/tfx.h"

static inline unsigned char *util_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

/* A float TensorProto file as a malloc'd array (NULL when missing or not float); dims out. */
static inline float *util_read_pb(const char *path, size_t *count, int64_t dims[8], int *rank)
{
    size_t n;
    unsigned char *b = util_read_file(path, &n);
    if (!b) return NULL;
    tfx__onnx_arena a = {0};
    tfx__onnx_tensor t;
    float *out = NULL;
    if (tfx__onnx_read_tensor("test", b, n, &a, &t) == 0 && t.data_type == 1) {
        out = malloc((t.count ? t.count : 1) * sizeof *out);
        for (size_t i = 0; i < t.count; i++) out[i] = tfx__onnx_tensor_float(&t, i);
        *count = t.count;
        *rank = t.rank;
        for (int k = 0; k < t.rank; k++) dims[k] = t.dims[k];
    }
    tfx__onnx_arena_free(&a);
    free(b);
    return out;
}

/* Largest |a - b| relative to the largest |b|. */
static inline double util_rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN counts as an error */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 0 ? mb : 1);
}

#endif
