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
    *n = 0;
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
    *count = 0;
    *rank = 0;
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

#ifdef cmocka_unit_test
#include <unistd.h>
#define FIX TFX_SOURCE_ROOT "/../shared/fixtures/onnx/"
#define TOL 1e-4

static inline int have_fixtures(void) { return access(FIX "mnist_8/model.onnx", R_OK) == 0; }

/* Load a light model and compare with its expected output for np.arange(n) / n; or expect a
 * refusal whose message names refused_op. */
static inline void light_check(const char *name, const char *refused_op)
{
    char path[512], out[512];
    snprintf(path, sizeof path, FIX "light/light_%s.onnx", name);
    snprintf(out, sizeof out, FIX "light/light_%s_output_0.pb", name);
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx(&m, path, NULL);
    if (refused_op) {
        print_message("light %s: %s\n", name, tfx_error_last()->message);
        assert_int_equal(rc, TFX_ENOTSUP);
        assert_non_null(strstr(tfx_error_last()->message, refused_op));
        return;
    }
    if (rc) fail_msg("%s: %s", name, tfx_error_last()->message);
    int s[3];
    tfx_model_input_shape(m, s);
    size_t n = (size_t)s[0] * s[1] * s[2], ny = 0;
    float *nchw = malloc(n * sizeof *nchw), *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) nchw[i] = (float)((double)i / (double)n);
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, x, 1, s[2], s[0], s[1]), TFX_OK);
    int64_t d[8];
    int r;
    float *want = util_read_pb(out, &ny, d, &r);
    assert_non_null(want);
    tfx_model_output_shape(m, s);
    assert_int_equal((size_t)s[0] * s[1] * s[2], ny);
    float *y = malloc(ny * sizeof *y);
    assert_int_equal(tfx_model_predict(m, x, 1, y), TFX_OK);
    double e = util_rel_err(y, want, ny);
    print_message("light %s: %zu layers, max error %.2e of the largest output\n", name, tfx_model_layer_count(m), e);
    assert_true(e <= TOL);
    free(nchw);
    free(x);
    free(y);
    free(want);
    tfx_model_free(m);
}

#endif

#endif
