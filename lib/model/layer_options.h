/* The layer add functions' options structs (tfx/model.h) as core/options.h descriptors, and
 * COPY_OPTIONS, the one way an add function reads a caller's options. */
#ifndef TFX_MODEL_LAYER_OPTIONS_H
#define TFX_MODEL_LAYER_OPTIONS_H

#include "core/internal.h"
#include "core/options.h"
#include "tfx/model.h"

extern const tfx__options_desc tfx__conv2d_options_desc;
extern const tfx__options_desc tfx__dense_options_desc;
extern const tfx__options_desc tfx__pool2d_options_desc;
extern const tfx__options_desc tfx__batch_norm_options_desc;
extern const tfx__options_desc tfx__depthwise_conv2d_options_desc;

#define TFX__LAYER_OPTIONS_DESC(src)                                                               \
    _Generic((src), const tfx_conv2d_options *: &tfx__conv2d_options_desc,                         \
             tfx_conv2d_options *: &tfx__conv2d_options_desc,                                      \
             const tfx_dense_options *: &tfx__dense_options_desc,                                  \
             tfx_dense_options *: &tfx__dense_options_desc,                                        \
             const tfx_pool2d_options *: &tfx__pool2d_options_desc,                                \
             tfx_pool2d_options *: &tfx__pool2d_options_desc,                                      \
             const tfx_batch_norm_options *: &tfx__batch_norm_options_desc,                        \
             tfx_batch_norm_options *: &tfx__batch_norm_options_desc,                              \
             const tfx_depthwise_conv2d_options *: &tfx__depthwise_conv2d_options_desc,            \
             tfx_depthwise_conv2d_options *: &tfx__depthwise_conv2d_options_desc)

/* dst = the defaults, then the prefix of *src (may be NULL) that src->version knows; returns
 * TFX_EVERSION from the calling function for an unknown version. VERSION is the struct's
 * current version (kept for the call shape; the descriptor knows it). */
#define COPY_OPTIONS(dst, src, VERSION, fname)                                                     \
    do {                                                                                           \
        (void)sizeof(char[sizeof(dst) == sizeof(*(src)) ? 1 : -1]); /* dst: a full struct */       \
        (void)(VERSION);                                                                           \
        int copy_rc_ = tfx__options_copy(TFX__LAYER_OPTIONS_DESC(src), &(dst), (src), (fname));    \
        if (copy_rc_) return copy_rc_;                                                             \
    } while (0)

#endif
