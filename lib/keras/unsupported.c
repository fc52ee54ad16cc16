/* libtfx built without the `keras` feature: the entry exists and says so. */
#include "core/internal.h"
#include "keras/keras_internal.h"

int tfx__keras_load_file(tfx_model **out, const char *path, const tfx_keras_options *o)
{
    (void)out, (void)path, (void)o;
    return tfx__error(TFX_ENOTSUP, "tfx_model_load_keras: libtfx was built without Keras support (meson -Dkeras=enabled)");
}
