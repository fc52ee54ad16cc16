/* Streaming readers: a tfx_batch_provider that reads IDX pairs (pread on plain files, gzread in
 * order on gzip ones) or CIFAR-10 batches (pread) from disk, with a tf.data-style bounded shuffle
 * buffer. Samples pass through as bytes in NHWC order, then become floats. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/file.h"
#include "core/options.h"
#include "data/data_internal.h"

TFX__OPTIONS_DESC_V1(stream_options, tfx_stream_options, TFX_STREAM_OPTIONS_VERSION, TFX_STREAM_OPTIONS_INIT);

int tfx_stream_options_init(tfx_stream_options *opts, unsigned version)
{
    return tfx__options_init(&stream_options, opts, version, "tfx_stream_options_init");
}

/* One open file: a plain descriptor read with pread, or a gzip stream read in order. */
typedef struct stream_file {
    int fd;
    gzFile gz;
    size_t header;       /* bytes before the first sample */
    size_t per;          /* bytes per sample (IDX images: h * w; labels 1; CIFAR-10 records 3073) */
    size_t first, count; /* CIFAR-10: the file's samples in the stream */
    uint64_t size;       /* the file's size (plain files: checked against the header) */
    char name[256];
} stream_file;

#define CIFAR_RECORD 3073
#define CIFAR_PLANE 1024

struct tfx_stream {
    stream_file img, lab; /* IDX */
    stream_file *files;   /* CIFAR-10, n_files of them (none for IDX) */
    size_t n_files;
    size_t n, per; /* samples; bytes per sample (h * w * c) */
    int height, width, channels, classes;
    tfx_stream_options o;
    float table[256];
    size_t pos;         /* samples taken from the files in this pass */
    unsigned char *raw; /* one batch of image bytes and labels */
    unsigned char *lraw;
    size_t raw_cap;     /* samples raw and lraw hold */
    unsigned char *rec; /* CIFAR-10 records being read */
    size_t rec_cap;
    unsigned char *sbuf, *slab; /* the shuffle buffer: K samples */
    size_t k, filled;
    tfx__rng rng;
};

/* len bytes at offset off (plain) or the next len bytes (gzip); a short read is a truncated file. */
static int file_read(stream_file *f, void *dst, size_t len, size_t off)
{
    unsigned char *d = dst;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < (size_t)INT_MAX / 2 ? len - done : (size_t)INT_MAX / 2;
        if (f->gz) {
            int k = gzread(f->gz, d + done, (unsigned)want);
            if (k < 0) {
                int zerr;
                const char *msg = gzerror(f->gz, &zerr);
                char eb[128];
                return tfx__error(zerr == Z_ERRNO ? TFX_EIO : TFX_EFORMAT, "'%s': gzip read failed: %s", f->name,
                                  zerr == Z_ERRNO ? tfx__strerror(errno, eb, sizeof eb) : msg);
            }
            if (k == 0) break;
            done += (size_t)k;
        } else {
            ssize_t k = pread(f->fd, d + done, want, (off_t)(off + done));
            if (k < 0) {
                if (errno == EINTR) continue;
                char eb[128];
                return tfx__error(TFX_EIO, "'%s': read failed at byte %zu: %s", f->name, off + done,
                                  tfx__strerror(errno, eb, sizeof eb));
            }
            if (k == 0) break;
            done += (size_t)k;
        }
    }
    if (done < len)
        return tfx__error(TFX_EFORMAT, "'%s': truncated: %zu bytes missing at byte %zu", f->name, len - done,
                          off + done);
    return TFX_OK;
}

static int file_open(const char *fn, stream_file *f, const char *path, int gzip_ok)
{
    snprintf(f->name, sizeof f->name, "%s", path);
    struct stat st; /* regular files only: a FIFO must not hang the open, /dev/zero not be read */
    int rc = tfx__file_open_regular(fn, path, &f->fd, &st);
    if (rc) return rc;
    f->size = (uint64_t)st.st_size;
    unsigned char m[2];
    ssize_t k = pread(f->fd, m, 2, 0);
    if (k == 2 && tfx__data_is_gzip(m, 2)) {
        if (!gzip_ok) return tfx__error(TFX_ENOTSUP, "%s: '%s' is gzip; stream the uncompressed file", fn, path);
        f->gz = gzdopen(f->fd, "rb");
        if (!f->gz) return tfx__error(TFX_ENOMEM, "%s: '%s': gzdopen failed", fn, path);
        f->fd = -1; /* the gzip stream owns it now */
        gzbuffer(f->gz, 1u << 16);
    }
    return TFX_OK;
}

static void file_close(stream_file *f)
{
    if (f->gz)
        gzclose(f->gz);
    else if (f->fd >= 0)
        close(f->fd);
    f->gz = NULL;
    f->fd = -1;
}

/* Read (gzip: after rewinding) and check an IDX header of ndims dimensions. */
static int file_header(stream_file *f, int ndims, uint32_t *dims)
{
    unsigned char h[16];
    size_t len = 4 + 4 * (size_t)ndims;
    if (f->gz && gzrewind(f->gz) != 0) return tfx__error(TFX_EIO, "'%s': cannot rewind the gzip stream", f->name);
    int rc = file_read(f, h, len, 0);
    if (rc) return rc;
    rc = tfx__idx_header(h, len, f->name, ndims, ndims == 3 ? "images" : "labels", dims);
    if (rc) return rc;
    f->header = len;
    return TFX_OK;
}

static int check_plain_size(const stream_file *f, size_t n)
{
    if (f->gz) return TFX_OK; /* checked as it is read */
    size_t want = f->header + n * f->per;
    if (f->size != (uint64_t)want)
        return tfx__error(TFX_EFORMAT, "'%s': %llu bytes; its header announces %zu", f->name,
                          (unsigned long long)f->size, want);
    return TFX_OK;
}

/* Options checked, an empty stream. */
static int stream_new(const char *fn, const tfx_stream_options *opts, tfx_stream **out)
{
    tfx_stream_options o;
    int rc = tfx__options_copy(&stream_options, &o, opts, fn);
    if (rc) return rc;
    if (o.num_classes == 0) o.num_classes = 10;
    if (o.num_classes < 1 || o.num_classes > TFX_DATA_MAX_CLASSES)
        return tfx__error(TFX_EINVAL, "%s: num_classes %d must be in 1..%d", fn, o.num_classes, TFX_DATA_MAX_CLASSES);
    if (o.one_hot != 0 && o.one_hot != 1) return tfx__error(TFX_EINVAL, "%s: one_hot %d must be 0 or 1", fn, o.one_hot);
    tfx_stream *s = tfx__calloc(1, sizeof *s);
    if (!s) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    s->img.fd = s->lab.fd = -1;
    s->o = o;
    s->classes = o.num_classes;
    tfx__data_scale_table(s->table);
    *out = s;
    return TFX_OK;
}

/* The shuffle buffer; no pass has begun. */
static int stream_finish(const char *fn, tfx_stream *s)
{
    s->k = s->o.shuffle_buffer > 1 ? (s->o.shuffle_buffer < s->n ? s->o.shuffle_buffer : s->n) : 0;
    if (s->k) {
        s->sbuf = tfx__malloc(s->k * s->per);
        s->slab = tfx__malloc(s->k);
        if (!s->sbuf || !s->slab)
            return tfx__error(TFX_ENOMEM, "%s: out of memory for a shuffle buffer of %zu samples", fn, s->k);
    }
    s->pos = s->n; /* a pass starts with reset */
    return TFX_OK;
}

void tfx_stream_free(tfx_stream *s)
{
    if (!s) return;
    file_close(&s->img);
    file_close(&s->lab);
    for (size_t i = 0; i < s->n_files; i++) file_close(&s->files[i]);
    tfx__free(s->files);
    tfx__free(s->rec);
    tfx__free(s->raw);
    tfx__free(s->lraw);
    tfx__free(s->sbuf);
    tfx__free(s->slab);
    tfx__free(s);
}

int tfx_stream_open_idx(tfx_stream **out, const char *images_path, const char *labels_path,
                        const tfx_stream_options *opts)
{
    static const char fn[] = "tfx_stream_open_idx";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(images_path);
    TFX__CHECK_NULL(labels_path);
    tfx_stream *s = NULL;
    int rc = stream_new(fn, opts, &s);
    if (rc) return rc;
    uint32_t d[3] = {0, 0, 0}, nl = 0;
    rc = file_open(fn, &s->img, images_path, 1);
    if (!rc) rc = file_open(fn, &s->lab, labels_path, 1);
    if (!rc) rc = file_header(&s->img, 3, d);
    if (!rc) rc = file_header(&s->lab, 1, &nl);
    if (rc) goto fail;
    if (d[0] == 0 || d[0] > TFX_DATA_MAX_SAMPLES || d[1] == 0 || d[2] == 0 || d[1] > TFX_DATA_MAX_DIM ||
        d[2] > TFX_DATA_MAX_DIM) {
        rc = tfx__error(TFX_EFORMAT, "'%s': header says %u images of %ux%u; limits are 1..%u images of 1..%d pixels",
                        images_path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2], TFX_DATA_MAX_SAMPLES,
                        TFX_DATA_MAX_DIM);
        goto fail;
    }
    if (nl != d[0]) {
        rc = tfx__error(TFX_EFORMAT, "'%s' holds %u images but '%s' holds %u labels", images_path, (unsigned)d[0],
                        labels_path, (unsigned)nl);
        goto fail;
    }
    s->n = d[0];
    s->height = (int)d[1];
    s->width = (int)d[2];
    s->channels = 1;
    s->per = s->img.per = (size_t)d[1] * d[2];
    s->lab.per = 1;
    rc = check_plain_size(&s->img, s->n);
    if (!rc) rc = check_plain_size(&s->lab, s->n);
    if (!rc) rc = stream_finish(fn, s);
    if (rc) goto fail;
    *out = s;
    return TFX_OK;
fail:
    tfx_stream_free(s);
    return rc;
}

int tfx_stream_open_cifar10(tfx_stream **out, const char *const *paths, size_t n_paths, const tfx_stream_options *opts)
{
    static const char fn[] = "tfx_stream_open_cifar10";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(paths);
    TFX__CHECK_ARG(n_paths > 0 && n_paths <= 1024, "tfx_stream_open_cifar10: n_paths %zu must be in 1..1024", n_paths);
    for (size_t i = 0; i < n_paths; i++)
        TFX__CHECK_ARG(paths[i] != NULL, "tfx_stream_open_cifar10: paths[%zu] is NULL", i);
    tfx_stream *s = NULL;
    int rc = stream_new(fn, opts, &s);
    if (rc) return rc;
    s->files = tfx__calloc(n_paths, sizeof *s->files);
    if (!s->files) {
        tfx_stream_free(s);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    for (size_t i = 0; i < n_paths; i++) s->files[i].fd = -1;
    s->n_files = n_paths;
    for (size_t i = 0; i < n_paths && !rc; i++) {
        stream_file *f = &s->files[i];
        rc = file_open(fn, f, paths[i], 0);
        if (rc) break;
        size_t len = (size_t)f->size;
        if (len == 0 || len % CIFAR_RECORD) {
            rc = tfx__error(TFX_EFORMAT,
                            "%s: '%s': %zu bytes is not a non-zero whole number of %d-byte CIFAR-10 "
                            "records",
                            fn, paths[i], len, CIFAR_RECORD);
            break;
        }
        f->per = CIFAR_RECORD;
        f->first = s->n;
        f->count = len / CIFAR_RECORD;
        s->n += f->count;
        if (s->n > TFX_DATA_MAX_SAMPLES)
            rc = tfx__error(TFX_EFORMAT, "%s: more than %u samples", fn, TFX_DATA_MAX_SAMPLES);
    }
    if (!rc) {
        s->height = s->width = 32;
        s->channels = 3;
        s->per = 3 * CIFAR_PLANE;
        rc = stream_finish(fn, s);
    }
    if (rc) {
        tfx_stream_free(s);
        return rc;
    }
    *out = s;
    return TFX_OK;
}

size_t tfx_stream_count(const tfx_stream *s) { return s ? s->n : 0; }

/* The next cnt samples of the files into img / lab, labels checked. */
static int read_cifar(tfx_stream *s, size_t cnt, unsigned char *img, unsigned char *lab)
{
    while (cnt > 0) {
        stream_file *f = s->files;
        while (s->pos >= f->first + f->count) f++;
        size_t m = f->first + f->count - s->pos < cnt ? f->first + f->count - s->pos : cnt;
        if (m > s->rec_cap) {
            tfx__free(s->rec);
            s->rec_cap = 0;
            s->rec = tfx__malloc(m * CIFAR_RECORD);
            if (!s->rec) return tfx__error(TFX_ENOMEM, "tfx_stream: out of memory for %zu CIFAR-10 records", m);
            s->rec_cap = m;
        }
        int rc = file_read(f, s->rec, m * CIFAR_RECORD, (s->pos - f->first) * CIFAR_RECORD);
        if (rc) return rc;
        for (size_t i = 0; i < m; i++) {
            const unsigned char *r = s->rec + i * CIFAR_RECORD;
            if (r[0] >= s->classes)
                return tfx__error(TFX_EFORMAT, "'%s': label %u of record %zu is not below num_classes %d", f->name,
                                  r[0], s->pos + i - f->first, s->classes);
            lab[i] = r[0];
            unsigned char *dst = img + i * s->per;
            for (size_t p = 0; p < CIFAR_PLANE; p++) /* planes R, G, B -> NHWC */
                for (int c = 0; c < 3; c++) dst[p * 3 + (size_t)c] = r[1 + (size_t)c * CIFAR_PLANE + p];
        }
        s->pos += m;
        cnt -= m;
        img += m * s->per;
        lab += m;
    }
    return TFX_OK;
}

static int read_samples(tfx_stream *s, size_t cnt, unsigned char *img, unsigned char *lab)
{
    if (s->files) return read_cifar(s, cnt, img, lab);
    int rc = file_read(&s->img, img, cnt * s->img.per, s->img.header + s->pos * s->img.per);
    if (!rc) rc = file_read(&s->lab, lab, cnt, s->lab.header + s->pos);
    if (rc) return rc;
    for (size_t i = 0; i < cnt; i++)
        if (lab[i] >= s->classes)
            return tfx__error(TFX_EFORMAT, "'%s': label %u of sample %zu is not below num_classes %d", s->lab.name,
                              lab[i], s->pos + i, s->classes);
    s->pos += cnt;
    if (s->pos == s->n) {
        /* gzip: the data must end where the header says. */
        stream_file *f[2] = {&s->img, &s->lab};
        for (int i = 0; i < 2; i++) {
            unsigned char extra;
            if (f[i]->gz && gzread(f[i]->gz, &extra, 1) != 0)
                return tfx__error(TFX_EFORMAT, "'%s': unexpected bytes after the %zu samples its header announces",
                                  f[i]->name, s->n);
        }
    }
    return TFX_OK;
}

static void emit(const tfx_stream *s, const unsigned char *img, unsigned char lab, float *x, void *y, size_t i)
{
    float *dst = x + i * s->per;
    for (size_t p = 0; p < s->per; p++) dst[p] = s->table[img[p]];
    if (!y) return;
    if (s->o.one_hot) {
        float *row = (float *)y + i * (size_t)s->classes;
        for (int c = 0; c < s->classes; c++) row[c] = c == lab ? 1.0f : 0.0f;
    } else {
        ((int32_t *)y)[i] = lab;
    }
}

static int stream_reset(void *payload, int epoch)
{
    tfx_stream *s = payload;
    uint32_t d[3], nl;
    int rc = TFX_OK;
    if (s->img.gz) rc = file_header(&s->img, 3, d);
    if (!rc && s->lab.gz) rc = file_header(&s->lab, 1, &nl);
    if (rc) return rc;
    s->pos = 0;
    s->filled = 0;
    if (s->k) {
        tfx__rng_seed(&s->rng, s->o.seed ^ ((uint64_t)(unsigned)epoch * 0x9E3779B97F4A7C15u));
        rc = read_samples(s, s->k, s->sbuf, s->slab);
        if (rc) return rc;
        s->filled = s->k;
    }
    return TFX_OK;
}

static int stream_next(void *payload, float *x, void *y, size_t max, size_t *got)
{
    tfx_stream *s = payload;
    *got = 0;
    if (!s->k) {
        size_t cnt = s->n - s->pos < max ? s->n - s->pos : max;
        if (cnt == 0) return TFX_OK;
        if (cnt > s->raw_cap) {
            tfx__free(s->raw);
            tfx__free(s->lraw);
            s->raw_cap = 0;
            s->raw = tfx__malloc(cnt * s->per);
            s->lraw = tfx__malloc(cnt);
            if (!s->raw || !s->lraw)
                return tfx__error(TFX_ENOMEM, "tfx_stream: out of memory for a batch of %zu samples", cnt);
            s->raw_cap = cnt;
        }
        int rc = read_samples(s, cnt, s->raw, s->lraw);
        if (rc) return rc;
        for (size_t i = 0; i < cnt; i++) emit(s, s->raw + i * s->per, s->lraw[i], x, y, i);
        *got = cnt;
        return TFX_OK;
    }
    /* tf.data's shuffle buffer: emit a random buffered sample, refill its slot from the file. */
    size_t i = 0;
    for (; i < max && s->filled > 0; i++) {
        size_t j = (size_t)tfx__rng_below(&s->rng, s->filled);
        unsigned char *slot = s->sbuf + j * s->per;
        emit(s, slot, s->slab[j], x, y, i);
        if (s->pos < s->n) {
            int rc = read_samples(s, 1, slot, s->slab + j);
            if (rc) return rc;
        } else {
            s->filled--;
            memcpy(slot, s->sbuf + s->filled * s->per, s->per);
            s->slab[j] = s->slab[s->filled];
        }
    }
    *got = i;
    return TFX_OK;
}

int tfx_stream_provider(tfx_stream *s, tfx_batch_provider *out)
{
    TFX__CHECK_NULL(s);
    TFX__CHECK_NULL(out);
    tfx_batch_provider p = TFX_BATCH_PROVIDER_INIT;
    p.payload = s;
    p.next = stream_next;
    p.reset = stream_reset;
    p.length = s->n;
    p.height = s->height;
    p.width = s->width;
    p.channels = s->channels;
    *out = p;
    return TFX_OK;
}
