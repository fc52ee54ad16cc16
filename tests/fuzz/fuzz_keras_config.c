/* libFuzzer target for the Keras importer's JSON side (issue 19): each input is a model config
 * (Keras 2 model_config or Keras 3 config.json) built with Keras 2 and Keras 3 semantics against
 * a fixed weights provider that fills every array the config asks for, under a small parameter
 * cap. A hostile config may only be refused (TFX_EFORMAT, TFX_ENOTSUP, TFX_ESHAPE, TFX_EINVAL
 * from a building call) with a message; a model that loads runs one prediction when small.
 * libhdf5 itself is out of scope (trusted input, docs/security.md). Seeds:
 * tests/fuzz/corpus/keras_config/ (written by tests/keras/gen_keras_reference.py). Built only with the keras feature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keras/keras_internal.h"
#include "tfx/tfx.h"

static int fill(void *ctx, const char *layer, size_t i, const char *what, const size_t *dims, int rank, float *dst)
{
    (void)ctx, (void)layer, (void)what;
    size_t n = 1;
    for (int r = 0; r < rank; r++) n *= dims[r];
    for (size_t j = 0; j < n; j++) dst[j] = 0.125f * (float)((j * 7 + i) % 9) - 0.5f;
    if (!strcmp(what, "moving_variance"))
        for (size_t j = 0; j < n; j++) dst[j] = 1.0f;
    return 0;
}

static void run(const uint8_t *data, size_t size, int major)
{
    tfx__keras_weights w = {NULL, NULL, fill, 0};
    tfx_keras_options o = TFX_KERAS_OPTIONS_INIT;
    tfx_model *m = (tfx_model *)&w;
    int rc = tfx__keras_build_capped(&m, (const char *)data, size, &w, major, &o, (size_t)1 << 20);
    if (rc != TFX_OK) {
        if (m != NULL || tfx_error_last()->message[0] == '\0') abort();
        if (rc != TFX_EFORMAT && rc != TFX_ENOTSUP && rc != TFX_ESHAPE && rc != TFX_EINVAL) abort();
        return;
    }
    int s[3];
    tfx_model_input_shape(m, s);
    size_t in = (size_t)s[0] * s[1] * s[2];
    tfx_model_output_shape(m, s);
    size_t out = (size_t)s[0] * s[1] * s[2];
    if (in <= 4096 && out <= 4096 && tfx_model_param_count(m) <= 65536) {
        float *x = calloc(in, sizeof *x), *y = calloc(out, sizeof *y);
        if (x && y) {
            for (size_t i = 0; i < in; i++) x[i] = (float)(i % 5) * 0.25f;
            tfx_model_predict(m, x, 1, y);
        }
        free(x);
        free(y);
    }
    tfx_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, 2);
    run(data, size, 3);
    return 0;
}
