/* Private parts of lib/data: the dataset object, file reading, gzip, and the memory parsers
 * the file loaders are built on (fuzz targets call the parsers directly). */
#ifndef TFX_DATA_INTERNAL_H
#define TFX_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "tfx/data.h"

struct tfx_dataset {
    size_t n;
    int height, width, channels;
    int num_classes;
    float *images;   /* n * height * width * channels, NHWC */
    int32_t *labels; /* n */
    char **class_names; /* image folders: num_classes names (else NULL) */
};

/* Allocate a dataset with room for n samples (n may be 0: no buffers yet). */
int tfx__dataset_new(tfx_dataset **out, size_t n, int height, int width, int channels, int num_classes);

/* Defaults filled in and ranges checked (fn names the caller in messages). NULL means defaults. */
int tfx__data_options_resolve(const char *fn, const tfx_data_options *in, tfx_data_options *out);

/* byte -> float in [0, 1], exactly float(b / 255.0) as numpy computes it. */
void tfx__data_scale_table(float table[256]);

/* 1 when buf starts with the gzip magic 1f 8b. */
int tfx__data_is_gzip(const void *buf, size_t len);

/* Decompress a gzip stream (several members allowed, as gzip -d does) into a new buffer that
 * grows with the bytes actually produced, never beyond max_bytes (TFX_EFORMAT). Truncated or
 * corrupt data, bad CRC/length trailers and trailing garbage are TFX_EFORMAT. name is used in
 * messages. */
int tfx__gunzip(const void *buf, size_t len, size_t max_bytes, const char *name, unsigned char **out,
                size_t *out_len);

/* IDX images + labels from memory (each plain or gzip). opts may be NULL. Names are used in
 * messages (NULL: "<images>", "<labels>"). */
int tfx__idx_from_memory(const void *images, size_t images_len, const void *labels, size_t labels_len,
                         const char *images_name, const char *labels_name, const tfx_data_options *opts,
                         tfx_dataset **out);

/* One CIFAR-10 batch from memory. opts may be NULL; name NULL: "<cifar10>". */
int tfx__cifar10_from_memory(const void *buf, size_t len, const char *name, const tfx_data_options *opts,
                             tfx_dataset **out);

/* Check the magic of an unsigned-byte IDX file with `ndims` dimensions (1..3) in its first len
 * bytes and read them into dims (lib/data/idx.c; the in-memory loader and the stream share it).
 * kind names the file in messages ("images", "labels"). */
int tfx__idx_header(const unsigned char *d, size_t len, const char *name, int ndims, const char *kind,
                    uint32_t *dims);

#endif
