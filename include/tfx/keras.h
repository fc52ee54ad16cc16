/* Keras models: load a Keras 2 HDF5 file (model.save("model.h5")) or a Keras 3 archive
 * (model.save("model.keras")) into an ordinary libtfx model taking NHWC float32 input, with
 * Keras's layer names. docs/keras.md lists the supported layers and what is refused. The
 * importer is an optional part of libtfx (meson feature `keras`: libhdf5, jansson, libzip);
 * this header and tfx_keras_options_init exist in every build, and tfx_model_load_keras
 * returns TFX_ENOTSUP when libtfx was built without it. */
#ifndef TFX_KERAS_H
#define TFX_KERAS_H

#include "common.h"
#include "model.h"

TFX_BEGIN_DECLS

#define TFX_KERAS_OPTIONS_VERSION 1
typedef struct tfx_keras_options {
    unsigned version;
    /* The input height and width to use when the file leaves them unknown (None); 0: the
     * file's (TFX_ENOTSUP naming the input layer when unknown). Given while the file fixes
     * them, they must agree with it. Each 0..65536. */
    int input_height, input_width;
} tfx_keras_options;
#define TFX_KERAS_OPTIONS_INIT { TFX_KERAS_OPTIONS_VERSION, 0, 0 }
TFX_API int tfx_keras_options_init(tfx_keras_options *opts, unsigned version);

/* Load a Keras model file: HDF5 (.h5: the `model_config` attribute and `model_weights/`) or a
 * zip archive (.keras: config.json and model.weights.h5); the format is told by the file's
 * first bytes, not its name. o may be NULL (defaults). *out receives a new model (free it with
 * tfx_model_free), NULL on failure. Errors: TFX_EIO (cannot read), TFX_EFORMAT (not a Keras
 * file, malformed JSON or archive, a missing weight), TFX_ESHAPE (a weight of the wrong shape),
 * TFX_ENOTSUP (a layer, option, data type or graph libtfx does not have: the message names the
 * layer, its class and the reason; also when libtfx was built without Keras support).
 * Trust: the JSON config and every shape and size taken from it are validated, but the HDF5
 * reader (libhdf5) is not hardened against hostile files: load only files you trust
 * (docs/security.md). */
TFX_API int tfx_model_load_keras(tfx_model **out, const char *path, const tfx_keras_options *o);

TFX_END_DECLS

#endif
