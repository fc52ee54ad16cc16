/* IDX files (MNIST, Fashion-MNIST): big-endian header, then raw unsigned bytes.
 * images: 00 00 08 03, n, height, width; labels: 00 00 08 01, n. Plain or gzip. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "data/data_internal.h"

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The bytes of one file, decompressed when they are gzip; *owned is what to free. */
static int idx_bytes(const void *buf, size_t len, const char *name, size_t max_bytes, const unsigned char **data,
                     size_t *dlen, unsigned char **owned)
{
    *owned = NULL;
    if (buf == NULL && len > 0) return tfx__error(TFX_EINVAL, "'%s': buffer is NULL", name);
    if (tfx__data_is_gzip(buf, len)) {
        int rc = tfx__gunzip(buf, len, max_bytes, name, owned, dlen);
        if (rc) return rc;
        *data = *owned;
        return TFX_OK;
    }
    if (len > max_bytes)
        return tfx__error(TFX_EFORMAT, "'%s' is %zu bytes, above the limit of %zu bytes", name, len, max_bytes);
    *data = buf;
    *dlen = len;
    return TFX_OK;
}

int tfx__idx_header(const unsigned char *d, size_t len, const char *name, int ndims, const char *kind,
                      uint32_t *dims)
{
    if (len < 4)
        return tfx__error(TFX_EFORMAT, "'%s': %zu bytes is too short for an IDX %s file (no 4-byte magic)", name,
                          len, kind);
    uint32_t magic = be32(d);
    if (d[0] != 0 || d[1] != 0)
        return tfx__error(TFX_EFORMAT, "'%s': not an IDX file (magic 0x%08x; IDX files start with two zero bytes)",
                          name, (unsigned)magic);
    if (d[2] != 0x08)
        return tfx__error(TFX_EFORMAT, "'%s': IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                          name, d[2]);
    if (d[3] != ndims)
        return tfx__error(TFX_EFORMAT, "'%s': IDX magic 0x%08x has %u dimensions; an IDX %s file has %d (magic "
                                       "0x%08x)", name, (unsigned)magic, d[3], kind, ndims, 0x0800u + (unsigned)ndims);
    size_t hdr = 4 + 4 * (size_t)ndims;
    if (len < hdr)
        return tfx__error(TFX_EFORMAT, "'%s': truncated IDX header (%zu of %zu bytes)", name, len, hdr);
    for (int i = 0; i < ndims; i++) dims[i] = be32(d + 4 + 4 * i);
    return TFX_OK;
}

int tfx__idx_from_memory(const void *images, size_t images_len, const void *labels, size_t labels_len,
                         const char *images_name, const char *labels_name, const tfx_data_options *opts,
                         tfx_dataset **out)
{
    static const char fn[] = "idx reader";
    TFX__CHECK_NULL(out);
    *out = NULL;
    if (images_name == NULL) images_name = "<images>";
    if (labels_name == NULL) labels_name = "<labels>";
    tfx_data_options o;
    int rc = tfx__data_options_resolve(fn, opts, &o);
    if (rc) return rc;

    const unsigned char *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0;
    unsigned char *img_owned = NULL, *lab_owned = NULL;
    rc = idx_bytes(images, images_len, images_name, o.max_bytes, &img, &img_len, &img_owned);
    if (rc) goto done;
    rc = idx_bytes(labels, labels_len, labels_name, o.max_bytes, &lab, &lab_len, &lab_owned);
    if (rc) goto done;

    uint32_t d[3] = {0, 0, 0}, nl = 0;
    rc = tfx__idx_header(img, img_len, images_name, 3, "images", d);
    if (rc) goto done;
    size_t n = d[0], per = 0, bytes = 0;
    if (n == 0 || n > TFX_DATA_MAX_SAMPLES) {
        rc = tfx__error(TFX_EFORMAT, "'%s': header says %zu images; must be 1..%u", images_name, n,
                        TFX_DATA_MAX_SAMPLES);
        goto done;
    }
    if (d[1] == 0 || d[2] == 0 || d[1] > TFX_DATA_MAX_DIM || d[2] > TFX_DATA_MAX_DIM) {
        rc = tfx__error(TFX_EFORMAT, "'%s': header says images of %ux%u; height and width must be 1..%d", images_name,
                        (unsigned)d[1], (unsigned)d[2], TFX_DATA_MAX_DIM);
        goto done;
    }
    if (tfx__mul_size(d[1], d[2], &per) || tfx__mul_size(per, n, &bytes) || bytes > SIZE_MAX - 16) {
        rc = tfx__error(TFX_EFORMAT, "'%s': header size %zu x %ux%u overflows", images_name, n, (unsigned)d[1],
                        (unsigned)d[2]);
        goto done;
    }
    if (img_len - 16 != bytes) {
        if (img_len - 16 < bytes)
            rc = tfx__error(TFX_EFORMAT, "'%s': truncated: header says %zu images of %ux%u (%zu bytes) but only %zu "
                                         "bytes follow the header", images_name, n, (unsigned)d[1], (unsigned)d[2],
                            bytes, img_len - 16);
        else
            rc = tfx__error(TFX_EFORMAT, "'%s': %zu unexpected bytes after the %zu images of %ux%u the header announces",
                            images_name, img_len - 16 - bytes, n, (unsigned)d[1], (unsigned)d[2]);
        goto done;
    }

    rc = tfx__idx_header(lab, lab_len, labels_name, 1, "labels", &nl);
    if (rc) goto done;
    if (lab_len - 8 != (size_t)nl) {
        if (lab_len - 8 < (size_t)nl)
            rc = tfx__error(TFX_EFORMAT, "'%s': truncated: header says %u labels but only %zu bytes follow the header",
                            labels_name, (unsigned)nl, lab_len - 8);
        else
            rc = tfx__error(TFX_EFORMAT, "'%s': %zu unexpected bytes after the %u labels the header announces",
                            labels_name, lab_len - 8 - nl, (unsigned)nl);
        goto done;
    }
    if ((size_t)nl != n) {
        rc = tfx__error(TFX_EFORMAT, "'%s' holds %u labels but '%s' holds %zu images", labels_name, (unsigned)nl,
                        images_name, n);
        goto done;
    }
    /* A label outside the classes means a wrong file or a wrong num_classes: refuse either. */
    for (size_t i = 0; i < n; i++) {
        if (lab[8 + i] >= o.num_classes) {
            rc = tfx__error(TFX_EFORMAT, "'%s': label %u of sample %zu is not below num_classes = %d", labels_name,
                            lab[8 + i], i, o.num_classes);
            goto done;
        }
    }
    if (o.offset >= n) {
        rc = tfx__error(TFX_EINVAL, "offset %zu is not below the %zu samples of '%s'", o.offset, n, images_name);
        goto done;
    }
    size_t k = n - o.offset;
    if (o.limit > 0 && o.limit < k) k = o.limit;

    tfx_dataset *ds = NULL;
    rc = tfx__dataset_new(&ds, k, (int)d[1], (int)d[2], 1, o.num_classes);
    if (rc) goto done;
    float table[256];
    tfx__data_scale_table(table);
    const unsigned char *px = img + 16 + o.offset * per;
    size_t count = k * per;
    for (size_t i = 0; i < count; i++) ds->images[i] = table[px[i]];
    for (size_t i = 0; i < k; i++) ds->labels[i] = lab[8 + o.offset + i];
    *out = ds;
done:
    tfx__free(img_owned);
    tfx__free(lab_owned);
    return rc;
}

static int load_pair(tfx_dataset **out, const char *images_path, const char *labels_path,
                     const tfx_data_options *opts, const char *fn)
{
    tfx_data_options o;
    int rc = tfx__data_options_resolve(fn, opts, &o);
    if (rc) return rc;
    unsigned char *ib = NULL, *lb = NULL;
    size_t il = 0, ll = 0;
    /* Compressed files are at most max_bytes too (gzip never shrinks real IDX data). */
    rc = tfx__file_read(NULL, images_path, o.max_bytes, &ib, &il);
    if (rc == TFX_OK) rc = tfx__file_read(NULL, labels_path, o.max_bytes, &lb, &ll);
    if (rc == TFX_OK) rc = tfx__idx_from_memory(ib, il, lb, ll, images_path, labels_path, &o, out);
    tfx__free(ib);
    tfx__free(lb);
    if (rc) tfx__error_prefix("%s", fn);
    return rc;
}

int tfx_dataset_load_idx(tfx_dataset **out, const char *images_path, const char *labels_path,
                         const tfx_data_options *opts)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(images_path);
    TFX__CHECK_NULL(labels_path);
    return load_pair(out, images_path, labels_path, opts, "tfx_dataset_load_idx");
}

/* dir/base.gz when it exists, else dir/base (the error then names the plain path). */
static char *idx_path(const char *dir, const char *base)
{
    size_t dl = strlen(dir), bl = strlen(base);
    char *p = tfx__malloc(dl + 1 + bl + 4);
    if (p == NULL) return NULL;
    snprintf(p, dl + 1 + bl + 4, "%s/%s.gz", dir, base);
    struct stat st;
    if (stat(p, &st) != 0) p[dl + 1 + bl] = '\0';
    return p;
}

int tfx_dataset_load_idx_dir(tfx_dataset **out, const char *dir, int split, const tfx_data_options *opts)
{
    static const char fn[] = "tfx_dataset_load_idx_dir";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(dir);
    TFX__CHECK_ARG(split == TFX_DATA_TRAIN || split == TFX_DATA_TEST, "%s: unknown split %d", fn, split);
    const char *pre = split == TFX_DATA_TRAIN ? "train" : "t10k";
    char ibase[32], lbase[32];
    snprintf(ibase, sizeof ibase, "%s-images-idx3-ubyte", pre);
    snprintf(lbase, sizeof lbase, "%s-labels-idx1-ubyte", pre);
    char *ip = idx_path(dir, ibase), *lp = idx_path(dir, lbase);
    int rc;
    if (ip == NULL || lp == NULL)
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    else
        rc = load_pair(out, ip, lp, opts, fn);
    tfx__free(ip);
    tfx__free(lp);
    return rc;
}
