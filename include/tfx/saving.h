/* Model files: save a model (architecture + weights) and load it back (docs/file-format.md). */
#ifndef TFX_SAVING_H
#define TFX_SAVING_H

#include "common.h"
#include "model.h"

TFX_BEGIN_DECLS

/* Newest version of the file format this library writes; it reads versions 1..TFX_MODEL_FORMAT_VERSION.
 * A chain (Sequential) model is still written as version 1, which every libtfx reads; version 2
 * holds a graph model (docs/file-format.md). */
#define TFX_MODEL_FORMAT_VERSION 2

#define TFX_SAVE_OPTIONS_VERSION 1
typedef struct tfx_save_options {
    unsigned version;
    /* Non-zero: also write the compile configuration, the optimizer state (current learning
     * rate, step count, moments/velocity/mean squares) and the model's RNG (file section 3),
     * so that a loaded model resumes fit bit for bit. TFX_ESTATE when the model is not
     * compiled. */
    int include_optimizer;
} tfx_save_options;
#define TFX_SAVE_OPTIONS_INIT { TFX_SAVE_OPTIONS_VERSION, 0 }
TFX_API int tfx_save_options_init(tfx_save_options *opts, unsigned version);

/* Write the model to path atomically: the bytes go to a temporary file in the same directory,
 * which is flushed (fsync) and renamed over path, so path holds either the old file or the
 * complete new one. On failure the temporary file is removed. o may be NULL (defaults).
 * TFX_EIO (message names the path) when the file cannot be written; TFX_EINVAL when a weight
 * is not finite or a BatchNormalization moving variance is negative (such a file would not load). */
TFX_API int tfx_model_save(const tfx_model *model, const char *path, const tfx_save_options *o);

/* The same bytes in memory. *size always receives the file size; buf may be NULL with
 * capacity 0 to query it. A non-NULL buf smaller than the file gives TFX_EINVAL. */
TFX_API int tfx_model_save_to_memory(const tfx_model *model, const tfx_save_options *o, void *buf,
                                     size_t capacity, size_t *size);

/* Read a model file into a new model (free it with tfx_model_free). *out is NULL on failure.
 * A truncated, corrupted or inconsistent file gives TFX_EFORMAT, a file from a newer format
 * version TFX_EVERSION, an unreadable path TFX_EIO; the message names the section, the layer
 * and the problem. The loaded model has the default predict batch size and, without an
 * optimizer section, seed 0 and no training state; with one, it comes back compiled (loss,
 * optimizer, metrics, learning rate and optimizer state as saved) with the saved seed and RNG
 * state, so fit with initial_epoch continues where the saved run stopped. */
TFX_API int tfx_model_load(tfx_model **out, const char *path);
/* The same from size bytes at data (read during the call only). */
TFX_API int tfx_model_load_from_memory(tfx_model **out, const void *data, size_t size);

TFX_END_DECLS

#endif
