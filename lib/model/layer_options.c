/* The layer options structs' defaults, sizes per version and init functions. */
#include <stddef.h>

#include "model/layer_options.h"

/* A struct with one version so far. */
#define LAYER_OPTIONS(name, VERSION, INIT)                                                                  \
    _Static_assert((VERSION) == 1, "tfx_" #name "_options has several versions: give its older sizes");    \
    static const tfx_##name##_options name##_defaults = INIT;                                              \
    const tfx__options_desc tfx__##name##_options_desc = {&name##_defaults, sizeof(tfx_##name##_options), \
                                                          (VERSION), NULL};                                \
    LAYER_OPTIONS_INIT_FN(name)

/* A struct with several versions: older[v - 1] is the size of version v (offsetof the first
 * field version v + 1 appended). */
#define LAYER_OPTIONS_VERSIONS(name, VERSION, INIT, ...)                                                   \
    static const size_t name##_older[] = {__VA_ARGS__};                                                    \
    _Static_assert(sizeof name##_older / sizeof name##_older[0] == (VERSION) - 1,                         \
                   "tfx_" #name "_options: one older size per version before the current one");          \
    static const tfx_##name##_options name##_defaults = INIT;                                              \
    const tfx__options_desc tfx__##name##_options_desc = {&name##_defaults, sizeof(tfx_##name##_options), \
                                                          (VERSION), name##_older};                        \
    LAYER_OPTIONS_INIT_FN(name)

#define LAYER_OPTIONS_INIT_FN(name)                                                                         \
    int tfx_##name##_options_init(tfx_##name##_options *opts, unsigned version)                            \
    {                                                                                                       \
        return tfx__options_init(&tfx__##name##_options_desc, opts, version, "tfx_" #name "_options_init"); \
    }

LAYER_OPTIONS_VERSIONS(conv2d, TFX_CONV2D_OPTIONS_VERSION, TFX_CONV2D_OPTIONS_INIT,
                       offsetof(tfx_conv2d_options, clip_min))
LAYER_OPTIONS_VERSIONS(dense, TFX_DENSE_OPTIONS_VERSION, TFX_DENSE_OPTIONS_INIT, offsetof(tfx_dense_options, clip_min))
LAYER_OPTIONS_VERSIONS(pool2d, TFX_POOL2D_OPTIONS_VERSION, TFX_POOL2D_OPTIONS_INIT, offsetof(tfx_pool2d_options, pad_top))
LAYER_OPTIONS(depthwise_conv2d, TFX_DEPTHWISE_CONV2D_OPTIONS_VERSION, TFX_DEPTHWISE_CONV2D_OPTIONS_INIT)
LAYER_OPTIONS(batch_norm, TFX_BATCH_NORM_OPTIONS_VERSION, TFX_BATCH_NORM_OPTIONS_INIT)
