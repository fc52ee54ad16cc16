/* Keras import internals: the JSON-to-model builder and the weight readers it asks. */
#ifndef TFX_KERAS_INTERNAL_H
#define TFX_KERAS_INTERNAL_H

#include <stddef.h>

#include "tfx/keras.h"

/* Caps on what an untrusted config may ask for. */
#define TFX__KERAS_MAX_CONFIG_BYTES ((size_t)64 << 20) /* the JSON text */
#define TFX__KERAS_MAX_LAYERS 4096
#define TFX__KERAS_MAX_NAME 255       /* a layer name, bytes */
#define TFX__KERAS_MAX_DIM 65536      /* any one size (height, filters, units, kernel side...) */
#define TFX__KERAS_MAX_RANK 8         /* of a weight array */
#define TFX__KERAS_MAX_PARAMS ((size_t)1 << 28) /* weights of the whole model (1 GiB of floats) */

/* The weights of a file, by layer name, in Keras's order (kernel, bias; gamma, beta,
 * moving_mean, moving_variance). */
typedef struct tfx__keras_weights {
    void *ctx;
    /* *n: how many weight arrays the layer has (0 when the file has none for it); may be NULL
     * (the reader answers each array). */
    int (*count)(void *ctx, const char *layer, size_t *n);
    /* Read array i of the layer into dst; its shape must be dims[0..rank) (TFX_ESHAPE naming
     * the layer, `what` and both shapes otherwise). */
    int (*read)(void *ctx, const char *layer, size_t i, const char *what, const size_t *dims, int rank,
                float *dst);
    /* 0: `layer` is the layer's name (Keras 2 .h5). 1: it is the key Keras 3's saving_lib files
     * the layer under, from its class and not its name: "conv2d", "conv2d_1", "dense",
     * "batch_normalization" (snake_case of the class, numbered by occurrence in the model's
     * layer list). */
    int by_class_key;
} tfx__keras_weights;

/* Build a model from the Keras JSON config (len bytes, not NUL-terminated) and weights.
 * keras_major: 3 for Keras 3 semantics (hard_sigmoid = relu6(x + 3) / 6), else 2.
 * o: a full current options struct (already copied). */
int tfx__keras_build(tfx_model **out, const char *json, size_t len, const tfx__keras_weights *w, int keras_major,
                     const tfx_keras_options *o);

/* The same with another cap on the model's parameter count (the fuzz target's is small). */
int tfx__keras_build_capped(tfx_model **out, const char *json, size_t len, const tfx__keras_weights *w, int keras_major,
                            const tfx_keras_options *o, size_t max_params);

/* Load a file (HDF5 or zip, by its first bytes): load.c, or unsupported.c when libtfx is built
 * without the feature. */
int tfx__keras_load_file(tfx_model **out, const char *path, const tfx_keras_options *o);

/* HDF5 files (hdf5.c). A file opened from a path or an in-memory image. */
typedef struct tfx__keras_h5 tfx__keras_h5;
int tfx__keras_h5_open(tfx__keras_h5 **out, const char *path, const void *image, size_t size);
void tfx__keras_h5_close(tfx__keras_h5 *h);
/* A string attribute of the root group (*out: tfx__malloc'd, NUL-terminated; *len its
 * length); TFX_EFORMAT when absent or not a string. */
int tfx__keras_h5_root_string(tfx__keras_h5 *h, const char *name, char **out, size_t *len);
/* 1 when the root group has the attribute. */
int tfx__keras_h5_has_root_attr(tfx__keras_h5 *h, const char *name);
/* The weights provider: Keras 2 (model_weights/<layer>, weight_names) or Keras 3
 * (layers/<class key>/vars/<i>, or Keras 2.13's _layer_checkpoint_dependencies/...). */
void tfx__keras_h5_weights(tfx__keras_h5 *h, int keras3, tfx__keras_weights *w);

/* Zip archives (archive.c): the three members of a .keras file, read whole under caps. */
typedef struct tfx__keras_archive {
    char *config, *metadata;  /* NUL-terminated; metadata NULL when absent */
    size_t config_len, metadata_len;
    unsigned char *weights;   /* model.weights.h5; NULL when absent */
    size_t weights_len;
} tfx__keras_archive;
int tfx__keras_archive_read(const char *path, tfx__keras_archive *a);
void tfx__keras_archive_free(tfx__keras_archive *a);

#endif
