/* 8-bit pictures returned by explainers and renderers, ready for PNG. */
#ifndef TFX_IMAGE_H
#define TFX_IMAGE_H

#include "common.h"

TFX_BEGIN_DECLS

/* Row-major pixels, channels 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA); row r starts at
 * pixels + r*stride. */
typedef struct tfx_image {
    int width;
    int height;
    int channels;
    size_t stride; /* bytes per row, >= width * channels */
    uint8_t *pixels;
} tfx_image;

/* Largest width or height libtfx creates, renders or loads. */
#define TFX_IMAGE_MAX_SIDE 32768
/* Largest width*height of a picture the renderers make (a grid of a million 28x28 maps is refused). */
#define TFX_RENDER_MAX_PIXELS (1 << 26)
/* Largest width*height tfx_image_load / tfx_image_decode accept (bounds memory on hostile files). */
#define TFX_IMAGE_MAX_LOAD_PIXELS (1 << 26)

/* A zero-filled image owned by the caller; stride = width * channels. */
TFX_API int tfx_image_new(tfx_image **out, int width, int height, int channels);
TFX_API void tfx_image_free(tfx_image *img);

/* PNG through stb_image_write: to a file, or to memory (*out freed with tfx_image_png_free). */
TFX_API int tfx_image_write_png(const tfx_image *img, const char *path);
TFX_API int tfx_image_encode_png(const tfx_image *img, unsigned char **out, size_t *size);
TFX_API void tfx_image_png_free(unsigned char *png);

/* Read a PNG or JPEG picture (stb_image) from a file or from memory. channels 0 keeps the file's
 * own (1..4); 1..4 converts. 16-bit files are reduced to 8 bits. Files over TFX_IMAGE_MAX_SIDE on
 * a side or TFX_IMAGE_MAX_LOAD_PIXELS pixels and malformed data give TFX_EFORMAT; an unreadable
 * file gives TFX_EIO. */
TFX_API int tfx_image_load(tfx_image **out, const char *path, int channels);
TFX_API int tfx_image_decode(tfx_image **out, const void *data, size_t size, int channels);

/* ---- Rendering: grids, colormaps, heatmap overlays (docs/rendering.md) ---- */

/* Shared by renderers and explainers. */
typedef enum tfx_compat {
    TFX_COMPAT_NONE = 0,       /* paper-correct defaults: no uint8 wrap-around, rounding, clipping */
    TFX_COMPAT_TF_EXPLAIN = 1  /* reproduce tf-explain 0.3.1 (HEAD 9d7d1e9) pictures exactly */
} tfx_compat;

typedef enum tfx_colormap {
    TFX_COLORMAP_DEFAULT = 0, /* the function's own default: VIRIDIS for heatmaps, GRAY otherwise */
    TFX_COLORMAP_GRAY = 1,    /* index i -> (i, i, i); grey grids stay 1-channel */
    TFX_COLORMAP_VIRIDIS = 2, /* OpenCV COLORMAP_VIRIDIS (tf-explain's default) */
    TFX_COLORMAP_JET = 3      /* OpenCV COLORMAP_JET */
} tfx_colormap;

/* Channel reduction of tfx_render_saliency in TFX_COMPAT_NONE (compat always sums |x|). */
typedef enum tfx_reduce {
    TFX_REDUCE_SUM_ABS = 0, /* sum over channels of |x| (tf-explain, Gradients*Inputs) */
    TFX_REDUCE_MAX_ABS = 1  /* max over channels of |x| (Simonyan et al.'s saliency) */
} tfx_reduce;

/* Tile upscaling of the renderers (tfx_render_options.scale_mode) and tfx_image_scale. */
typedef enum tfx_scale_mode {
    TFX_SCALE_NONE = 0,     /* tiles at the map's own size (tf-explain's pictures) */
    TFX_SCALE_NEAREST = 1,  /* each map pixel a block (half-pixel centres: torch nearest-exact) */
    TFX_SCALE_BILINEAR = 2  /* half-pixel bilinear (tfx_resize_bilinear), rounded to uint8 */
} tfx_scale_mode;

#define TFX_RENDER_OPTIONS_VERSION 2
typedef struct tfx_render_options {
    unsigned version;
    int compat;           /* tfx_compat */
    int colormap;         /* tfx_colormap */
    float image_weight;   /* heatmaps: weight of the picture in the blend, in [0, 1] (0.7) */
    float heatmap_weight; /* heatmaps: weight of the colour map; < 0 means 1 - image_weight (-1).
                             tf-explain 0.3.1 from PyPI used 1.0 */
    int rows, cols;       /* grid shape; 0 = automatic: ceil(sqrt(n)) square, or ceil(n / the other) */
    float image_min, image_max; /* heatmaps, compat NONE: value range of the float pictures;
                                   equal (default 0, 0): guessed, see docs/rendering.md */
    int per_image;        /* compat NONE: normalise each sample alone (1, default) or the batch (0) */
    int reduce;           /* tfx_reduce (saliency, compat NONE) */
    int saturate;         /* compat only: uint8 casts saturate like TensorFlow on GPU (1) instead of
                             wrapping like numpy / TensorFlow on x86 CPU (0, default) */
    /* --- version 2: tile upscaling (docs/rendering.md, "Scaled tiles"); compat NONE only --- */
    int scale_mode;       /* tfx_scale_mode; NONE (default) needs scale and tile size 0; NEAREST or
                             BILINEAR needs one of: */
    int scale;            /* integer factor: tiles become (scale * height, scale * width); 0 = not given */
    int tile_height, tile_width; /* target tile size in pixels; 0 = not given (one of the two given:
                                    the other keeps the map's aspect ratio) */
} tfx_render_options;
#define TFX_RENDER_OPTIONS_INIT \
    { TFX_RENDER_OPTIONS_VERSION, TFX_COMPAT_NONE, TFX_COLORMAP_DEFAULT, 0.7f, -1.0f, 0, 0, \
      0.0f, 0.0f, 1, TFX_REDUCE_SUM_ABS, 0, TFX_SCALE_NONE, 0, 0, 0 }
TFX_API int tfx_render_options_init(tfx_render_options *opts, unsigned version);

/* Min-max to [0, 1] over finite values (in == out allowed). A constant map gives zeros; NaN gives
 * 0, +Inf 1, -Inf 0. */
TFX_API int tfx_normalize_minmax(const float *in, size_t count, float *out);

/* Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR, torch align_corners=False,
 * tf.image.resize bilinear): src (src_h, src_w, channels) -> dst (dst_h, dst_w, channels). */
TFX_API int tfx_resize_bilinear(const float *src, int src_h, int src_w, int channels,
                                float *dst, int dst_h, int dst_w);

/* A resized copy of an 8-bit picture (any channel count 1..4): mode TFX_SCALE_NEAREST or
 * TFX_SCALE_BILINEAR (as in tfx_render_options), to height x width (each 1..TFX_IMAGE_MAX_SIDE,
 * at most TFX_RENDER_MAX_PIXELS pixels). Bilinear blends neighbouring pixels, so scale a grid
 * through the renderers' options (tile by tile), not as one picture. */
TFX_API int tfx_image_scale(const tfx_image *src, int mode, int height, int width, tfx_image **out);

/* The 256-entry RGB table of a colormap (768 bytes, borrowed, static). */
TFX_API int tfx_colormap_table(int colormap, const uint8_t **rgb);
/* Colour count values into rgb (3 * count bytes): indices, or [0, 1] floats (clamped; index
 * round(255 v); NaN -> index 0). */
TFX_API int tfx_colormap_apply_u8(int colormap, const uint8_t *index, size_t count, uint8_t *rgb);
TFX_API int tfx_colormap_apply(int colormap, const float *values, size_t count, uint8_t *rgb);

/* tf-explain's grid_display: n tiles (height, width, channels), contiguous, laid out row-major
 * in rows x cols (0 = automatic as in tfx_render_options), missing tiles zero, no gaps. */
TFX_API int tfx_render_grid(const uint8_t *tiles, size_t n, int height, int width, int channels,
                            int rows, int cols, tfx_image **out);

/* ExtractActivations' picture: maps (n, height, width, k) NHWC; each of the n*k feature maps is a
 * tile (sample-major, channel-minor), min-max normalised (compat: over the whole grid padding
 * included, truncated; default: over the real tiles, rounded, padding black). */
TFX_API int tfx_render_filters(const float *maps, size_t n, int height, int width, int k,
                               const tfx_render_options *o, tfx_image **out);

/* Gradient methods' picture: maps (n, height, width, channels) reduced to one grey map per
 * sample (compat: |x| summed, batch z-score, 255 z cast to uint8; default: reduce, min-max,
 * rounded), then gridded. */
TFX_API int tfx_render_saliency(const float *maps, size_t n, int height, int width, int channels,
                                const tfx_render_options *o, tfx_image **out);

/* Grad-CAM / occlusion picture: n maps (map_h, map_w) each resized to (height, width),
 * normalised, coloured and blended over its picture (images: n x height x width x channels,
 * channels 1 or 3, float), then gridded. Output RGB. Scaled tiles (o->scale_mode): the picture
 * is scaled as asked and the map resized straight to the tile size, then blended.
 * tfx_render_filters and tfx_render_saliency scale each map before colouring it. */
TFX_API int tfx_render_heatmap(const float *maps, size_t n, int map_h, int map_w,
                               const float *images, int height, int width, int channels,
                               const tfx_render_options *o, tfx_image **out);

TFX_END_DECLS

#endif
