/* CIFAR-10 binary batches: records of 1 label byte + 32x32 red, green and blue planes
 * (row-major), turned into NHWC float samples. No header: the record count is the file length
 * divided by 3073, which must divide it exactly. */
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "data/data_internal.h"

#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_PIXELS (3 * CIFAR_PLANE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)

/* Samples taken so far over the files of one load, and where the wanted window lies. */
typedef struct cifar_acc {
    tfx_dataset *ds; /* ds->n = samples taken */
    size_t seen;     /* records seen in the files so far */
    size_t end;      /* offset + limit, or SIZE_MAX without a limit */
    tfx_data_options o;
    float table[256];
} cifar_acc;

static int acc_init(cifar_acc *a, const char *fn, const tfx_data_options *opts)
{
    memset(a, 0, sizeof *a);
    int rc = tfx__data_options_resolve(fn, opts, &a->o);
    if (rc) return rc;
    a->end = a->o.limit > 0 && a->o.offset <= SIZE_MAX - a->o.limit ? a->o.offset + a->o.limit : SIZE_MAX;
    tfx__data_scale_table(a->table);
    return tfx__dataset_new(&a->ds, 0, CIFAR_SIDE, CIFAR_SIDE, 3, a->o.num_classes);
}

static int acc_full(const cifar_acc *a) { return a->seen >= a->end; }

static int acc_append(cifar_acc *a, const unsigned char *b, size_t len, const char *name)
{
    if (b == NULL && len > 0) return tfx__error(TFX_EINVAL, "'%s': buffer is NULL", name);
    if (len == 0) return tfx__error(TFX_EFORMAT, "'%s' is empty (a CIFAR-10 batch holds %d-byte records)", name, CIFAR_RECORD);
    if (len > a->o.max_bytes)
        return tfx__error(TFX_EFORMAT, "'%s' is %zu bytes, above the limit of %zu bytes", name, len, a->o.max_bytes);
    if (len % CIFAR_RECORD != 0)
        return tfx__error(TFX_EFORMAT, "'%s': %zu bytes is not a whole number of %d-byte CIFAR-10 records (%zu "
                                       "records and %zu bytes over: truncated or not a CIFAR-10 batch)",
                          name, len, CIFAR_RECORD, len / CIFAR_RECORD, len % CIFAR_RECORD);
    size_t r = len / CIFAR_RECORD;
    if (r > TFX_DATA_MAX_SAMPLES - a->seen)
        return tfx__error(TFX_EFORMAT, "'%s': more than %u samples in one dataset", name, TFX_DATA_MAX_SAMPLES);
    for (size_t i = 0; i < r; i++) {
        unsigned label = b[i * CIFAR_RECORD];
        if (label >= (unsigned)a->o.num_classes)
            return tfx__error(TFX_EFORMAT, "'%s': label %u of record %zu is not below num_classes = %d", name, label,
                              i, a->o.num_classes);
    }
    size_t lo = a->seen > a->o.offset ? a->seen : a->o.offset;
    size_t hi = a->seen + r < a->end ? a->seen + r : a->end;
    if (lo < hi) {
        tfx_dataset *ds = a->ds;
        size_t take = hi - lo, n = ds->n + take, bytes;
        /* n <= TFX_DATA_MAX_SAMPLES, so this cannot overflow a 64-bit size_t; check anyway. */
        if (tfx__mul_size(n, CIFAR_PIXELS * sizeof(float), &bytes))
            return tfx__error(TFX_ENOMEM, "'%s': %zu samples are too large for memory", name, n);
        float *img = tfx__realloc(ds->images, bytes);
        if (img == NULL) return tfx__error(TFX_ENOMEM, "out of memory for %zu CIFAR-10 samples", n);
        ds->images = img;
        int32_t *lab = tfx__realloc(ds->labels, n * sizeof *lab);
        if (lab == NULL) return tfx__error(TFX_ENOMEM, "out of memory for %zu CIFAR-10 labels", n);
        ds->labels = lab;
        for (size_t i = 0; i < take; i++) {
            const unsigned char *rec = b + (lo - a->seen + i) * CIFAR_RECORD;
            const unsigned char *red = rec + 1, *green = red + CIFAR_PLANE, *blue = green + CIFAR_PLANE;
            float *dst = img + (ds->n + i) * CIFAR_PIXELS;
            lab[ds->n + i] = rec[0];
            for (size_t p = 0; p < CIFAR_PLANE; p++) {
                dst[3 * p + 0] = a->table[red[p]];
                dst[3 * p + 1] = a->table[green[p]];
                dst[3 * p + 2] = a->table[blue[p]];
            }
        }
        ds->n = n;
    }
    a->seen += r;
    return TFX_OK;
}

static int acc_finish(cifar_acc *a, tfx_dataset **out)
{
    if (a->ds->n == 0) {
        int rc = tfx__error(TFX_EINVAL, "offset %zu is not below the %zu CIFAR-10 samples", a->o.offset, a->seen);
        tfx_dataset_free(a->ds);
        a->ds = NULL;
        return rc;
    }
    *out = a->ds;
    a->ds = NULL;
    return TFX_OK;
}

int tfx__cifar10_from_memory(const void *buf, size_t len, const char *name, const tfx_data_options *opts,
                             tfx_dataset **out)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    if (name == NULL) name = "<cifar10>";
    cifar_acc a;
    int rc = acc_init(&a, "cifar10 reader", opts);
    if (rc == TFX_OK) rc = acc_append(&a, buf, len, name);
    if (rc == TFX_OK) return acc_finish(&a, out);
    tfx_dataset_free(a.ds);
    return rc;
}

static int load_files(tfx_dataset **out, const char *const *paths, size_t n_paths, const tfx_data_options *opts,
                      const char *fn)
{
    cifar_acc a;
    int rc = acc_init(&a, fn, opts);
    for (size_t i = 0; rc == TFX_OK && i < n_paths && !acc_full(&a); i++) {
        unsigned char *b = NULL;
        size_t len = 0;
        rc = tfx__file_read(NULL, paths[i], a.o.max_bytes, &b, &len);
        if (rc == TFX_OK) rc = acc_append(&a, b, len, paths[i]);
        tfx__free(b);
    }
    if (rc == TFX_OK) rc = acc_finish(&a, out);
    tfx_dataset_free(a.ds);
    if (rc) tfx__error_prefix("%s", fn);
    return rc;
}

int tfx_dataset_load_cifar10(tfx_dataset **out, const char *const *paths, size_t n_paths,
                             const tfx_data_options *opts)
{
    static const char fn[] = "tfx_dataset_load_cifar10";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(paths);
    TFX__CHECK_ARG(n_paths > 0, "%s: no files given", fn);
    int rc = tfx__check_count(fn, n_paths, 1, sizeof(const char *));
    if (rc) return rc;
    for (size_t i = 0; i < n_paths; i++)
        TFX__CHECK_ARG(paths[i] != NULL, "%s: paths[%zu] is NULL", fn, i);
    return load_files(out, paths, n_paths, opts, fn);
}

int tfx_dataset_load_cifar10_dir(tfx_dataset **out, const char *dir, int split, const tfx_data_options *opts)
{
    static const char fn[] = "tfx_dataset_load_cifar10_dir";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(dir);
    TFX__CHECK_ARG(split == TFX_DATA_TRAIN || split == TFX_DATA_TEST, "%s: unknown split %d", fn, split);
    size_t nf = split == TFX_DATA_TRAIN ? 5 : 1, sz = strlen(dir) + 32;
    char *paths[5] = {NULL, NULL, NULL, NULL, NULL};
    int rc = TFX_OK;
    for (size_t i = 0; i < nf && rc == TFX_OK; i++) {
        paths[i] = tfx__malloc(sz);
        if (paths[i] == NULL) {
            rc = tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
            break;
        }
        if (split == TFX_DATA_TRAIN)
            snprintf(paths[i], sz, "%s/data_batch_%zu.bin", dir, i + 1);
        else
            snprintf(paths[i], sz, "%s/test_batch.bin", dir);
    }
    if (rc == TFX_OK) rc = load_files(out, (const char *const *)paths, nf, opts, fn);
    for (size_t i = 0; i < nf; i++) tfx__free(paths[i]);
    return rc;
}
