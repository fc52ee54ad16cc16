/* The public entry of the Keras importer and its options; built in every configuration so the
 * ABI does not depend on the `keras` feature. */
#include "core/internal.h"
#include "core/options.h"
#include "keras/keras_internal.h"
#include "tfx/model.h"

TFX__OPTIONS_DESC_V1(keras_options, tfx_keras_options, TFX_KERAS_OPTIONS_VERSION, TFX_KERAS_OPTIONS_INIT);

int tfx_keras_options_init(tfx_keras_options *opts, unsigned version)
{
    return tfx__options_init(&keras_options, opts, version, "tfx_keras_options_init");
}

int tfx_model_load_keras(tfx_model **out, const char *path, const tfx_keras_options *o)
{
    static const char fn[] = "tfx_model_load_keras";
    TFX__CHECK_ARG(out != NULL, "%s: out is NULL", fn);
    *out = NULL;
    TFX__CHECK_ARG(path != NULL, "%s: path is NULL", fn);
    tfx_keras_options opts;
    int rc = tfx__options_copy(&keras_options, &opts, o, fn);
    if (rc) return rc;
    TFX__CHECK_ARG(opts.input_height >= 0 && opts.input_height <= TFX__KERAS_MAX_DIM, "%s: input_height %d is not in 0..%d",
                   fn, opts.input_height, TFX__KERAS_MAX_DIM);
    TFX__CHECK_ARG(opts.input_width >= 0 && opts.input_width <= TFX__KERAS_MAX_DIM, "%s: input_width %d is not in 0..%d",
                   fn, opts.input_width, TFX__KERAS_MAX_DIM);
    rc = tfx__keras_load_file(out, path, &opts);
    if (rc) {
        tfx_model_free(*out);
        *out = NULL;
    }
    return rc;
}
