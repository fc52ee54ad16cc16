/* libFuzzer target for the ONNX importer (tfx_model_load_onnx_from_memory, issue 18): the bytes
 * are the file; the file's length picks fuse on or off. A file may only be refused as malformed
 * (TFX_EFORMAT), unsupported (TFX_ENOTSUP) or inconsistent (TFX_ESHAPE, TFX_EINVAL from a layer's
 * own checks), with a message and no model; a model that loads runs one prediction when small.
 * Seeds: tests/fuzz/corpus/onnx_load/ (tests/fuzz/gen_onnx_seeds.py: single-node and small
 * models of every supported operator; mnist-8 (MIT) and the PyTorch 1.7 MNIST export). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tfx/tfx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.fuse = (int)(size & 1);
    o.input_height = o.input_width = 8; /* symbolic sizes resolve */
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx_from_memory(&m, data, size, &o);
    if (rc != TFX_OK) {
        if (rc != TFX_EFORMAT && rc != TFX_ENOTSUP && rc != TFX_ESHAPE && rc != TFX_EINVAL) abort();
        if (m != NULL || tfx_error_last()->message[0] == '\0') abort();
        return 0;
    }
    int s[3];
    tfx_model_input_shape(m, s);
    size_t in = (size_t)s[0] * s[1] * s[2];
    tfx_model_output_shape(m, s);
    size_t out = (size_t)s[0] * s[1] * s[2];
    if (in <= 4096 && out <= 4096 && tfx_model_param_count(m) <= 100000) {
        float *x = calloc(in, sizeof *x), *y = calloc(out, sizeof *y);
        if (x && y) {
            for (size_t i = 0; i < in; i++) x[i] = (float)(i % 7) / 7.0f;
            rc = tfx_model_predict(m, x, 1, y);
            if (rc != TFX_OK && rc != TFX_ENOMEM) abort();
        }
        free(x);
        free(y);
    }
    tfx_model_free(m);
    return 0;
}
