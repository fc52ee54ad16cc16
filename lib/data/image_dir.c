/* Keras's image_dataset_from_directory: class subfolders of PNG/JPEG/BMP/GIF files, decoded,
 * scaled to [0, 1], resized (bilinear, half-pixel centres), shuffled with a seed and split. Uses
 * the public picture calls (tfx/image.h) only. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/options.h"
#include "data/data_internal.h"
#include "tfx/image.h"

TFX__OPTIONS_DESC_V1(image_dir_options, tfx_image_dir_options, TFX_IMAGE_DIR_OPTIONS_VERSION,
                     TFX_IMAGE_DIR_OPTIONS_INIT);

int tfx_image_dir_options_init(tfx_image_dir_options *opts, unsigned version)
{
    return tfx__options_init(&image_dir_options, opts, version, "tfx_image_dir_options_init");
}

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) tfx__free(l->v[i]);
    tfx__free(l->v);
    memset(l, 0, sizeof *l);
}

static int list_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = tfx__realloc(l->v, cap * sizeof *v);
        if (!v) return tfx__error(TFX_ENOMEM, "tfx_dataset_load_image_dir: out of memory");
        l->v = v;
        l->cap = cap;
    }
    size_t len = strlen(s);
    char *c = tfx__malloc(len + 1);
    if (!c) return tfx__error(TFX_ENOMEM, "tfx_dataset_load_image_dir: out of memory");
    memcpy(c, s, len + 1);
    l->v[l->n++] = c;
    return TFX_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name)
{
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif"};
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (len > e && strcasecmp(name + len - e, ext[i]) == 0) return 1;
    }
    return 0;
}

/* Names in dir (no hidden ones) that are directories (want_dirs) or image files, sorted. */
static int list_dir(const char *dir, int want_dirs, name_list *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        char eb[128];
        return tfx__error(TFX_EIO, "tfx_dataset_load_image_dir: cannot open folder '%s': %s", dir,
                          tfx__strerror(errno, eb, sizeof eb));
    }
    struct dirent *e;
    int rc = TFX_OK;
    char path[4096];
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !is_image_name(e->d_name)) continue;
        int k = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof path) {
            rc = tfx__error(TFX_EINVAL, "tfx_dataset_load_image_dir: path '%s/%s' is too long", dir, e->d_name);
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        rc = list_add(out, e->d_name);
    }
    closedir(d);
    if (!rc && out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

/* One file into its slot: decode, [0, 1], resize. */
static int load_one(const char *path, const tfx_image_dir_options *o, float *dst)
{
    tfx_image *img;
    int rc = tfx_image_load(&img, path, o->channels);
    if (rc) return tfx__error(rc, "tfx_dataset_load_image_dir: '%s': %s", path, tfx_error_last()->message);
    size_t w = (size_t)img->width, h = (size_t)img->height, c = (size_t)o->channels;
    float *f = tfx__malloc(w * h * c * sizeof(float));
    if (!f) {
        tfx_image_free(img);
        return tfx__error(TFX_ENOMEM, "tfx_dataset_load_image_dir: out of memory for '%s'", path);
    }
    for (size_t r = 0; r < h; r++)
        for (size_t q = 0; q < w * c; q++) f[r * w * c + q] = (float)(img->pixels[r * img->stride + q] / 255.0);
    rc = tfx_resize_bilinear(f, (int)h, (int)w, (int)c, dst, o->height, o->width);
    tfx_image_free(img);
    tfx__free(f);
    return rc ? tfx__error_prefix("tfx_dataset_load_image_dir: '%s'", path) : TFX_OK;
}

int tfx_dataset_load_image_dir(tfx_dataset **out, const char *dir, const tfx_image_dir_options *opts)
{
    static const char fn[] = "tfx_dataset_load_image_dir";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(dir);
    tfx_image_dir_options o;
    int rc = tfx__options_copy(&image_dir_options, &o, opts, fn);
    if (rc) return rc;
    if (o.height == 0) o.height = 256;
    if (o.width == 0) o.width = 256;
    if (o.channels == 0) o.channels = 3;
    TFX__CHECK_ARG(o.height >= 1 && o.height <= TFX_DATA_MAX_DIM && o.width >= 1 && o.width <= TFX_DATA_MAX_DIM,
                   "tfx_dataset_load_image_dir: image size %dx%d must be in 1..%d", o.height, o.width,
                   TFX_DATA_MAX_DIM);
    TFX__CHECK_ARG(o.channels == 1 || o.channels == 3 || o.channels == 4,
                   "tfx_dataset_load_image_dir: channels %d must be 1, 3 or 4", o.channels);
    TFX__CHECK_ARG(o.validation_split >= 0.0 && o.validation_split < 1.0,
                   "tfx_dataset_load_image_dir: validation_split %g must be in [0, 1)", o.validation_split);
    TFX__CHECK_ARG(o.subset == TFX_DATA_TRAIN || o.subset == TFX_DATA_TEST,
                   "tfx_dataset_load_image_dir: subset %d must be TFX_DATA_TRAIN or TFX_DATA_TEST", o.subset);

    name_list classes = {0}, files = {0}, names = {0};
    int32_t *labels = NULL;
    tfx_dataset *ds = NULL;
    char path[4096];
    rc = list_dir(dir, 1, &classes);
    if (rc) goto done;
    if (classes.n == 0 || classes.n > TFX_DATA_MAX_CLASSES) {
        rc = tfx__error(TFX_EINVAL, "%s: '%s' has %zu class folders; must be 1..%d", fn, dir, classes.n,
                        TFX_DATA_MAX_CLASSES);
        goto done;
    }
    /* Every image as "class/file", labelled by its class index. */
    for (size_t k = 0; k < classes.n && !rc; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes.v[k]);
        list_free(&names);
        rc = list_dir(path, 0, &names);
        for (size_t i = 0; i < names.n && !rc; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, classes.v[k], names.v[i]);
            rc = list_add(&files, path);
            if (!rc && files.n > TFX_DATA_MAX_SAMPLES)
                rc = tfx__error(TFX_EINVAL, "%s: more than %u images", fn, TFX_DATA_MAX_SAMPLES);
            if (!rc) {
                int32_t *l = tfx__realloc(labels, files.cap * sizeof *l);
                if (!l) {
                    rc = tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
                    break;
                }
                labels = l;
                labels[files.n - 1] = (int32_t)k;
            }
        }
    }
    if (rc) goto done;
    if (files.n == 0) {
        rc = tfx__error(TFX_EINVAL, "%s: no .png/.jpg/.jpeg/.bmp/.gif files in the class folders of '%s'", fn, dir);
        goto done;
    }
    if (o.shuffle) {
        tfx__rng rng;
        tfx__rng_seed(&rng, o.seed);
        for (size_t i = files.n; i > 1; i--) {
            size_t j = (size_t)tfx__rng_below(&rng, i);
            char *t = files.v[i - 1];
            files.v[i - 1] = files.v[j];
            files.v[j] = t;
            int32_t tl = labels[i - 1];
            labels[i - 1] = labels[j];
            labels[j] = tl;
        }
    }
    size_t n_val = (size_t)(o.validation_split * (double)files.n);
    size_t first = o.subset == TFX_DATA_TRAIN ? 0 : files.n - n_val;
    size_t count = o.subset == TFX_DATA_TRAIN ? files.n - n_val : n_val;
    if (count == 0) {
        rc = tfx__error(TFX_EINVAL, "%s: validation_split %g of %zu images leaves the %s subset empty", fn,
                        o.validation_split, files.n, o.subset == TFX_DATA_TRAIN ? "training" : "validation");
        goto done;
    }
    rc = tfx__dataset_new(&ds, count, o.height, o.width, o.channels, (int)classes.n);
    if (rc) goto done;
    const size_t per = (size_t)o.height * (size_t)o.width * (size_t)o.channels;
    for (size_t i = 0; i < count && !rc; i++) {
        rc = load_one(files.v[first + i], &o, ds->images + i * per);
        ds->labels[i] = labels[first + i];
    }
    if (rc) goto done;
    ds->class_names = tfx__calloc(classes.n, sizeof(char *));
    if (!ds->class_names) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
        goto done;
    }
    for (size_t k = 0; k < classes.n; k++) { /* the dataset takes the names */
        ds->class_names[k] = classes.v[k];
        classes.v[k] = NULL;
    }
    *out = ds;
    ds = NULL;
done:
    tfx_dataset_free(ds);
    list_free(&classes);
    list_free(&files);
    list_free(&names);
    tfx__free(labels);
    return rc;
}
