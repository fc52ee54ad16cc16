/* Datasets: IDX files (MNIST, Fashion-MNIST; plain or gzip) and CIFAR-10 binary batches,
 * decoded to NHWC float32 pixels in [0, 1] (byte / 255, as the tutorial scales them) with
 * int32 labels. */
#ifndef TFX_DATA_H
#define TFX_DATA_H

#include "common.h"

TFX_BEGIN_DECLS

/* Hard limits. A file that goes beyond one is rejected with TFX_EFORMAT before any buffer is
 * sized from its header. Every size in a header is also checked against the number of bytes
 * the file really holds (after decompression), so a lying header never drives an allocation. */
#define TFX_DATA_MAX_SAMPLES 16777216u /* samples (images) in one file: 2^24 */
#define TFX_DATA_MAX_DIM 16384         /* image height and width */
#define TFX_DATA_MAX_CLASSES 256       /* labels are bytes in both formats */
/* Default cap on the bytes one file may hold (after gzip decompression); raise it with
 * tfx_data_options.max_bytes. Fashion-MNIST's training images are 47 MB, a CIFAR-10 batch 30 MB. */
#define TFX_DATA_DEFAULT_MAX_BYTES ((size_t)1 << 30)

typedef struct tfx_dataset tfx_dataset;

/* Which half of a dataset directory to load. */
typedef enum tfx_data_split {
    TFX_DATA_TRAIN = 0, /* IDX: train-*, CIFAR-10: data_batch_1..5.bin */
    TFX_DATA_TEST = 1   /* IDX: t10k-*,  CIFAR-10: test_batch.bin */
} tfx_data_split;

#define TFX_DATA_OPTIONS_VERSION 1
typedef struct tfx_data_options {
    unsigned version;
    size_t offset;    /* skip the first `offset` samples (over all files, in order) */
    size_t limit;     /* keep at most `limit` samples after the offset; 0: all */
    int num_classes;  /* labels must be < num_classes (1..256); 0: 10 */
    size_t max_bytes; /* cap on one file's (decompressed) size; 0: TFX_DATA_DEFAULT_MAX_BYTES */
} tfx_data_options;
#define TFX_DATA_OPTIONS_INIT { TFX_DATA_OPTIONS_VERSION, 0, 0, 0, 0 }
TFX_API int tfx_data_options_init(tfx_data_options *opts, unsigned version);

/* IDX pair: an images file (magic 0x00000803: unsigned bytes, dims n, height, width) and a labels
 * file (magic 0x00000801, n bytes), each plain or gzip (detected by its first bytes 1f 8b, not by
 * the name). Both files must hold exactly the bytes their headers announce and the same n.
 * Channels = 1. opts may be NULL. */
TFX_API int tfx_dataset_load_idx(tfx_dataset **out, const char *images_path, const char *labels_path,
                                 const tfx_data_options *opts);

/* The MNIST file names in a directory: {train,t10k}-images-idx3-ubyte and
 * {train,t10k}-labels-idx1-ubyte, each with ".gz" if that file exists, else without. */
TFX_API int tfx_dataset_load_idx_dir(tfx_dataset **out, const char *dir, int split,
                                     const tfx_data_options *opts);

/* CIFAR-10 binary batches, concatenated in the given order. Each file is a sequence of
 * 3073-byte records: 1 label byte, then 1024 red, 1024 green and 1024 blue bytes (each plane
 * 32x32 row-major); they become 32x32x3 NHWC samples. Once `limit` samples are taken the
 * remaining files are not opened. */
TFX_API int tfx_dataset_load_cifar10(tfx_dataset **out, const char *const *paths, size_t n_paths,
                                     const tfx_data_options *opts);

/* A "cifar-10-batches-bin" directory: TFX_DATA_TRAIN loads data_batch_1.bin .. data_batch_5.bin
 * (50000 samples), TFX_DATA_TEST loads test_batch.bin (10000 samples). */
TFX_API int tfx_dataset_load_cifar10_dir(tfx_dataset **out, const char *dir, int split,
                                         const tfx_data_options *opts);

/* Keras's image_dataset_from_directory: dir holds one subfolder per class (classes in sorted
 * byte order of the folder names, labels 0..k-1); each subfolder's files ending in .png, .jpg,
 * .jpeg, .bmp or .gif (any case) are images of that class (other files, hidden files and deeper
 * folders are ignored, as Keras ignores other extensions). Each image is decoded (stb_image),
 * converted to `channels`, scaled to [0, 1] like the other loaders (Keras gives 0..255: add
 * Rescaling(1/255) there) and resized to height x width by bilinear interpolation with half-pixel
 * centres (tf.image.resize's default). A file that does not decode is an error (TFX_EFORMAT
 * naming it), never silently skipped. The file list (sorted per class, classes in order) is
 * shuffled with `seed` when shuffle is set, then the LAST floor(validation_split * n) files are
 * the validation subset and the others the training subset, as Keras does: load both subsets
 * with the same seed and split. The whole subset is decoded into memory. */
#define TFX_IMAGE_DIR_OPTIONS_VERSION 1
typedef struct tfx_image_dir_options {
    unsigned version;
    int height, width;       /* image_size, 1..TFX_DATA_MAX_DIM; 0: 256 (Keras's default) */
    int channels;            /* 1 grayscale, 3 rgb, 4 rgba; 0: 3 */
    int shuffle;             /* non-zero: shuffle the file list with seed (Keras's default) */
    uint64_t seed;
    double validation_split; /* in [0, 1) */
    int subset;              /* TFX_DATA_TRAIN: training files, TFX_DATA_TEST: validation files */
} tfx_image_dir_options;
#define TFX_IMAGE_DIR_OPTIONS_INIT { TFX_IMAGE_DIR_OPTIONS_VERSION, 256, 256, 3, 1, 0, 0.0, TFX_DATA_TRAIN }
TFX_API int tfx_image_dir_options_init(tfx_image_dir_options *opts, unsigned version);
TFX_API int tfx_dataset_load_image_dir(tfx_dataset **out, const char *dir, const tfx_image_dir_options *opts);
/* The class (folder) name of label k for a dataset from tfx_dataset_load_image_dir (borrowed);
 * NULL for other datasets or k out of range. */
TFX_API const char *tfx_dataset_class_name(const tfx_dataset *ds, int k);

/* No-op on NULL. */
TFX_API void tfx_dataset_free(tfx_dataset *ds);

/* Number of samples (0 for NULL). */
TFX_API size_t tfx_dataset_count(const tfx_dataset *ds);
/* shape = {height, width, channels} of one sample. */
TFX_API int tfx_dataset_shape(const tfx_dataset *ds, int shape[3]);
/* Floats per sample (height * width * channels; 0 for NULL). */
TFX_API size_t tfx_dataset_sample_size(const tfx_dataset *ds);
/* Class count the labels were checked against (0 for NULL). */
TFX_API int tfx_dataset_num_classes(const tfx_dataset *ds);
/* Borrowed, valid until tfx_dataset_free: all pixels (count * sample_size floats, NHWC) and all
 * labels (count int32 values in [0, num_classes)). NULL for NULL. */
TFX_API const float *tfx_dataset_images(const tfx_dataset *ds);
TFX_API const int32_t *tfx_dataset_labels(const tfx_dataset *ds);
/* Borrowed pointer to sample i (NULL when ds is NULL or i >= count). */
TFX_API const float *tfx_dataset_image(const tfx_dataset *ds, size_t i);
/* Labels as one-hot rows into out (count * num_classes floats, caller-owned). */
TFX_API int tfx_dataset_one_hot(const tfx_dataset *ds, float *out);

/* ---- streaming (data larger than memory) ----
 *
 * A stream reads an IDX images + labels pair (or CIFAR-10 batches) from disk batch by batch as a tfx_batch_provider
 * (common.h) for tfx_model_fit_provider & co, holding only a batch (and the shuffle buffer) in
 * memory. Plain files are read with pread at each batch's offset; gzip files are decompressed in
 * order with zlib's gzread (rewound at each pass). Pixels are byte / 255 exactly as
 * tfx_dataset_load_idx gives them, so a stream in file order feeds fit the same numbers as the
 * in-memory dataset. Headers are checked at open as by tfx_dataset_load_idx; a plain file's size
 * must match its header there, a gzip file's decompressed size is checked as it is read (a
 * truncated stream or trailing bytes fail the pass with TFX_EFORMAT, as does a label >=
 * num_classes). The stream is not thread-safe; one provider pass at a time. */
typedef struct tfx_stream tfx_stream;

#define TFX_STREAM_OPTIONS_VERSION 1
typedef struct tfx_stream_options {
    unsigned version;
    /* tf.data's shuffle(buffer_size): 0 or 1 keeps the file order; K > 1 keeps a buffer of K
     * samples, fills it from the file, then emits a uniformly chosen buffered sample and puts
     * the next sample of the file in its place. Memory: K samples. This is NOT a full
     * permutation: a sample moves at most about K places earlier, so with K much smaller than
     * the data, data sorted by class stays mostly sorted (Keras/tf.data have the same
     * limitation). K >= the sample count gives a uniform permutation. */
    size_t shuffle_buffer;
    uint64_t seed;   /* the shuffle's seed; pass e (epoch) uses seed and e, so epochs differ */
    int one_hot;     /* 0: int32 labels (sparse categorical cross-entropy); 1: float one-hot rows
                        of num_classes (the other losses) */
    int num_classes; /* labels must be < num_classes (1..256); 0: 10 */
} tfx_stream_options;
#define TFX_STREAM_OPTIONS_INIT { TFX_STREAM_OPTIONS_VERSION, 0, 0, 0, 0 }
TFX_API int tfx_stream_options_init(tfx_stream_options *opts, unsigned version);

/* Open an IDX pair for streaming (the files stay open until tfx_stream_free). opts may be NULL. */
TFX_API int tfx_stream_open_idx(tfx_stream **out, const char *images_path, const char *labels_path,
                                const tfx_stream_options *opts);
/* CIFAR-10 binary batches (plain files, not gzip: TFX_ENOTSUP), read in the given order as one
 * stream of 32x32x3 samples (1..1024 files; each file's size must be a non-zero multiple of 3073 bytes), pixels
 * as tfx_dataset_load_cifar10 gives them. opts may be NULL. */
TFX_API int tfx_stream_open_cifar10(tfx_stream **out, const char *const *paths, size_t n_paths,
                                    const tfx_stream_options *opts);
/* A provider over the stream (length = the sample count, shape = the images'), valid until
 * tfx_stream_free. */
TFX_API int tfx_stream_provider(tfx_stream *s, tfx_batch_provider *out);
/* Number of samples (0 for NULL). */
TFX_API size_t tfx_stream_count(const tfx_stream *s);
/* Closes the files; no-op on NULL. */
TFX_API void tfx_stream_free(tfx_stream *s);

TFX_END_DECLS

#endif
