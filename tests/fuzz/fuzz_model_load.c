/* libFuzzer target for the model-file reader (tfx_model_load_from_memory), written with
 * tests/saving and adopted by tests/fuzz (issue 8). Each input is loaded as is, then again
 * with its CRC-32 trailer recomputed so mutations reach the section and layer parsers; models
 * that load run one prediction, have their layers' inputs checked (earlier layers only) and
 * their summary built, and a loaded optimizer section is taken over (the learning rate read).
 * Seeds: tests/fuzz/corpus/model_load/ (optimizer.tfx, with an optimizer section:
 * tests/train/test_resume.c, TFX_RESUME_SEED_OUT; graph*.tfx, version 2 files
 * with a graph section: tests/saving/test_saving_graph.c, TFX_GRAPH_SEED_OUT). Built by meson
 * (tests/fuzz/meson.build: -Dfuzzers=true with clang; otherwise a corpus replayer); long run:
 * docs/security.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tfx/tfx.h"
#include "fuzz.h"

static void try_load(const uint8_t *data, size_t size)
{
    tfx_model *m = NULL;
    int rc = tfx_model_load_from_memory(&m, data, size);
    /* A hostile file may only be refused as malformed or from a newer version. */
    if (rc != TFX_OK && rc != TFX_EFORMAT && rc != TFX_EVERSION) abort();
    if (rc != TFX_OK) {
        if (m != NULL || tfx_error_last()->message[0] == '\0') abort();
        return;
    }
    /* an optimizer section: the model comes back compiled with a sane rate */
    float lr = -1.0f;
    int lrc = tfx_model_get_learning_rate(m, &lr);
    if (lrc != TFX_OK && lrc != TFX_ESTATE) abort();
    if (lrc == TFX_OK && !(lr >= 0.0f && lr <= 3.4e38f)) abort();
    /* The graph section (version 2): every layer reads 1..n earlier layers or the model input,
     * and the summary (functional for graphs) is built. */
    size_t n_layers = tfx_model_layer_count(m);
    for (size_t i = 0; i < n_layers; i++) {
        const tfx_layer *in[4];
        size_t k = 0;
        if (tfx_layer_inputs(tfx_model_layer(m, i), in, 4, &k) != TFX_OK || k == 0) abort();
        for (size_t j = 0; j < k && j < 4; j++) {
            if (!in[j]) continue;
            size_t at = 0;
            while (at < i && tfx_model_layer(m, at) != in[j]) at++;
            if (at == i) abort(); /* not an earlier layer of this model */
        }
    }
    if (!tfx_model_summary(m)) abort();
    int s[3];
    tfx_model_input_shape(m, s);
    size_t in = (size_t)s[0] * s[1] * s[2];
    tfx_model_output_shape(m, s);
    size_t out = (size_t)s[0] * s[1] * s[2];
    if (in <= 4096 && out <= 4096 && tfx_model_layer_count(m) > 0) {
        float *x = calloc(in, sizeof *x), *y = calloc(out, sizeof *y);
        if (x && y) tfx_model_predict(m, x, 1, y);
        free(x);
        free(y);
    }
    tfx_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_load(data, size);
    if (size >= 20) {
        uint8_t *b = malloc(size);
        if (!b) return 0;
        memcpy(b, data, size);
        uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(size - 4));
        b[size - 4] = (uint8_t)c;
        b[size - 3] = (uint8_t)(c >> 8);
        b[size - 2] = (uint8_t)(c >> 16);
        b[size - 1] = (uint8_t)(c >> 24);
        try_load(b, size);
        free(b);
    }
    return 0;
}
