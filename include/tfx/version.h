/* libtfx version macros. Meson reads TFX_VERSION_* from this file. */
#ifndef TFX_VERSION_H
#define TFX_VERSION_H

#define TFX_VERSION_MAJOR 0
#define TFX_VERSION_MINOR 1
#define TFX_VERSION_PATCH 0
#define TFX_VERSION_STRING "0.1.0"

/* Single comparable number: MAJOR*10000 + MINOR*100 + PATCH. */
#define TFX_VERSION_NUMBER (TFX_VERSION_MAJOR * 10000 + TFX_VERSION_MINOR * 100 + TFX_VERSION_PATCH)
#define TFX_VERSION_CHECK(major, minor, patch) \
    (TFX_VERSION_NUMBER >= ((major) * 10000 + (minor) * 100 + (patch)))

#endif
