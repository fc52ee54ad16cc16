/* The dataset object, its getters and the loader options. */
#include <string.h>

#include "core/options.h"
#include "data/data_internal.h"

TFX__OPTIONS_DESC_V1(data_options, tfx_data_options, TFX_DATA_OPTIONS_VERSION, TFX_DATA_OPTIONS_INIT);

int tfx_data_options_init(tfx_data_options *opts, unsigned version)
{
    return tfx__options_init(&data_options, opts, version, "tfx_data_options_init");
}

int tfx__data_options_resolve(const char *fn, const tfx_data_options *in, tfx_data_options *out)
{
    int rc = tfx__options_copy(&data_options, out, in, fn);
    if (rc) return rc;
    if (out->num_classes == 0) out->num_classes = 10;
    if (out->max_bytes == 0) out->max_bytes = TFX_DATA_DEFAULT_MAX_BYTES;
    TFX__CHECK_ARG(out->num_classes >= 1 && out->num_classes <= TFX_DATA_MAX_CLASSES,
                   "%s: num_classes = %d must be in 1..%d", fn, out->num_classes, TFX_DATA_MAX_CLASSES);
    return TFX_OK;
}

void tfx__data_scale_table(float table[256])
{
    for (int b = 0; b < 256; b++) table[b] = (float)(b / 255.0);
}

int tfx__dataset_new(tfx_dataset **out, size_t n, int height, int width, int channels, int num_classes)
{
    size_t per = 0, total = 0, bytes = 0, lbytes = 0;
    *out = NULL;
    if (tfx__mul_size((size_t)height, (size_t)width, &per) || tfx__mul_size(per, (size_t)channels, &per) ||
        tfx__mul_size(per, n, &total) || tfx__mul_size(total, sizeof(float), &bytes) ||
        tfx__mul_size(n, sizeof(int32_t), &lbytes))
        return tfx__error(TFX_ENOMEM, "dataset of %zu samples of %dx%dx%d is too large for memory", n, height,
                          width, channels);
    tfx_dataset *ds = tfx__calloc(1, sizeof *ds);
    if (ds == NULL) return tfx__error(TFX_ENOMEM, "out of memory allocating a dataset");
    ds->n = n;
    ds->height = height;
    ds->width = width;
    ds->channels = channels;
    ds->num_classes = num_classes;
    if (n > 0) {
        ds->images = tfx__malloc(bytes);
        ds->labels = tfx__malloc(lbytes);
        if (ds->images == NULL || ds->labels == NULL) {
            tfx_dataset_free(ds);
            return tfx__error(TFX_ENOMEM, "out of memory allocating %zu samples of %dx%dx%d (%zu bytes)", n,
                              height, width, channels, bytes);
        }
    }
    *out = ds;
    return TFX_OK;
}

void tfx_dataset_free(tfx_dataset *ds)
{
    if (ds == NULL) return;
    if (ds->class_names)
        for (int k = 0; k < ds->num_classes; k++) tfx__free(ds->class_names[k]);
    tfx__free(ds->class_names);
    tfx__free(ds->images);
    tfx__free(ds->labels);
    tfx__free(ds);
}

size_t tfx_dataset_count(const tfx_dataset *ds) { return ds ? ds->n : 0; }

int tfx_dataset_shape(const tfx_dataset *ds, int shape[3])
{
    TFX__CHECK_NULL(ds);
    TFX__CHECK_NULL(shape);
    shape[0] = ds->height;
    shape[1] = ds->width;
    shape[2] = ds->channels;
    return TFX_OK;
}

size_t tfx_dataset_sample_size(const tfx_dataset *ds)
{
    return ds ? (size_t)ds->height * (size_t)ds->width * (size_t)ds->channels : 0;
}

int tfx_dataset_num_classes(const tfx_dataset *ds) { return ds ? ds->num_classes : 0; }

const float *tfx_dataset_images(const tfx_dataset *ds) { return ds ? ds->images : NULL; }

const int32_t *tfx_dataset_labels(const tfx_dataset *ds) { return ds ? ds->labels : NULL; }

const float *tfx_dataset_image(const tfx_dataset *ds, size_t i)
{
    if (ds == NULL || i >= ds->n) return NULL;
    return ds->images + i * tfx_dataset_sample_size(ds);
}

int tfx_dataset_one_hot(const tfx_dataset *ds, float *out)
{
    TFX__CHECK_NULL(ds);
    TFX__CHECK_NULL(out);
    size_t k = (size_t)ds->num_classes;
    memset(out, 0, ds->n * k * sizeof *out);
    for (size_t i = 0; i < ds->n; i++) {
        int32_t c = ds->labels[i];
        if (c < 0 || c >= ds->num_classes)
            return tfx__error(TFX_ESTATE, "tfx_dataset_one_hot: label %d of sample %zu is outside 0..%d", (int)c,
                              i, ds->num_classes - 1);
        out[i * k + (size_t)c] = 1.0f;
    }
    return TFX_OK;
}

const char *tfx_dataset_class_name(const tfx_dataset *ds, int k)
{
    if (ds == NULL || ds->class_names == NULL || k < 0 || k >= ds->num_classes) return NULL;
    return ds->class_names[k];
}
