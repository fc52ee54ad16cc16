/* The layer options structs' defaults, sizes per version and init functions. */
#include "model/layer_options.h"

/* One version each so far; a struct's version 2 needs its table of older sizes here. */
#define LAYER_OPTIONS(name, VERSION, INIT)                                                                  \
    _Static_assert((VERSION) == 1, "tfx_" #name "_options has several versions: give its older sizes");    \
    static const tfx_##name##_options name##_defaults = INIT;                                              \
    const tfx__options_desc tfx__##name##_options_desc = {&name##_defaults, sizeof(tfx_##name##_options), \
                                                          (VERSION), NULL};                                \
    int tfx_##name##_options_init(tfx_##name##_options *opts, unsigned version)                            \
    {                                                                                                       \
        return tfx__options_init(&tfx__##name##_options_desc, opts, version, "tfx_" #name "_options_init"); \
    }

LAYER_OPTIONS(conv2d, TFX_CONV2D_OPTIONS_VERSION, TFX_CONV2D_OPTIONS_INIT)
LAYER_OPTIONS(dense, TFX_DENSE_OPTIONS_VERSION, TFX_DENSE_OPTIONS_INIT)
LAYER_OPTIONS(pool2d, TFX_POOL2D_OPTIONS_VERSION, TFX_POOL2D_OPTIONS_INIT)
LAYER_OPTIONS(batch_norm, TFX_BATCH_NORM_OPTIONS_VERSION, TFX_BATCH_NORM_OPTIONS_INIT)
