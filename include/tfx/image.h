/* 8-bit pictures returned by explainers and renderers, ready for PNG. */
#ifndef TFX_IMAGE_H
#define TFX_IMAGE_H

#include "common.h"

TFX_BEGIN_DECLS

/* Row-major pixels, channels 1 (grey), 3 (RGB) or 4 (RGBA); row r starts at pixels + r*stride. */
typedef struct tfx_image {
    int width;
    int height;
    int channels;
    size_t stride; /* bytes per row, >= width * channels */
    uint8_t *pixels;
} tfx_image;

/* A zero-filled image owned by the caller. */
TFX_API int tfx_image_new(tfx_image **out, int width, int height, int channels);
TFX_API void tfx_image_free(tfx_image *img);

/* PNG through stb_image_write: to a file, or to memory (*out freed with tfx_image_png_free). */
TFX_API int tfx_image_write_png(const tfx_image *img, const char *path);
TFX_API int tfx_image_encode_png(const tfx_image *img, unsigned char **out, size_t *size);
TFX_API void tfx_image_png_free(unsigned char *png);

TFX_END_DECLS

#endif
