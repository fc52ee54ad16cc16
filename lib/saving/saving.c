/* Model files (docs/file-format.md): a little-endian container with a section table and a
 * CRC-32 trailer. Saving writes a temporary file and renames it into place; loading checks
 * every field against the bytes that are really there and rebuilds the model through the
 * public add functions, so validation and shape inference are the ones users get. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "model/model_internal.h"
#include "saving/saving_internal.h"

/* Largest file tfx_model_load reads (weights of about 4 billion floats). */
#define FILE_MAX ((uint64_t)1 << 34)

static _Thread_local long tls_fail_after = -1;

void tfx__saving_fail_after_bytes(long bytes) { tls_fail_after = bytes; }

int tfx_save_options_init(tfx_save_options *opts, unsigned version)
{
    TFX__CHECK_NULL(opts);
    if (version == 0 || version > TFX_SAVE_OPTIONS_VERSION)
        return tfx__error(TFX_EVERSION, "tfx_save_options_init: version %u is not supported (this library knows up to %u)",
                          version, (unsigned)TFX_SAVE_OPTIONS_VERSION);
    tfx_save_options def = TFX_SAVE_OPTIONS_INIT;
    *opts = def;
    opts->version = version;
    return TFX_OK;
}

/* ---- little-endian encoding ---- */

typedef struct writer {
    uint8_t *p; /* NULL: only count */
    size_t pos;
} writer;

static void put_bytes(writer *w, const void *src, size_t n)
{
    if (w->p && n) memcpy(w->p + w->pos, src, n);
    w->pos += n;
}
static void put_u8(writer *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put_bytes(w, &b, 1);
}
static void put_u16(writer *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put_bytes(w, b, 2);
}
static void put_u32(writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(w, b, 4);
}
static void put_u64(writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}
static void put_i32(writer *w, int v) { put_u32(w, (uint32_t)v); }
static void put_f32(writer *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(w, u);
}
static void put_floats(writer *w, const float *f, size_t n)
{
    if (!w->p) {
        w->pos += 4 * n;
        return;
    }
    for (size_t i = 0; i < n; i++) put_f32(w, f[i]);
}

static uint32_t get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get_u64(const uint8_t *b) { return (uint64_t)get_u32(b) | (uint64_t)get_u32(b + 4) << 32; }
static float get_f32(const uint8_t *b)
{
    uint32_t u = get_u32(b);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static int32_t get_i32(const uint8_t *b)
{
    uint32_t u = get_u32(b);
    int32_t v;
    memcpy(&v, &u, 4); /* two's complement without implementation-defined conversion */
    return v;
}

/* zlib's crc32 takes 32-bit lengths: feed large buffers in pieces. */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

/* ---- per-kind configuration records ---- */

/* Bytes of the configuration record of a kind, or -1 for an unknown kind. */
static int config_len(int kind)
{
    switch (kind) {
    case TFX_LAYER_CONV2D: return 36;
    case TFX_LAYER_DENSE: return 16;
    case TFX_LAYER_FLATTEN: return 0;
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D: return 20;
    case TFX_LAYER_GLOBAL_AVERAGE_POOLING2D: return 0;
    case TFX_LAYER_DROPOUT: return 4;
    case TFX_LAYER_ACTIVATION: return 8;
    case TFX_LAYER_BATCH_NORMALIZATION: return 16;
    default: return -1;
    }
}

static void put_config(writer *w, const tfx_layer *l)
{
    const tfx__layer_config *c = &l->cfg;
    switch (l->ops->kind) {
    case TFX_LAYER_CONV2D:
        put_i32(w, c->filters);
        put_i32(w, c->kernel_h);
        put_i32(w, c->kernel_w);
        put_i32(w, c->stride_h);
        put_i32(w, c->stride_w);
        put_i32(w, c->padding);
        put_i32(w, c->activation);
        put_f32(w, c->alpha);
        put_i32(w, c->use_bias != 0);
        break;
    case TFX_LAYER_DENSE:
        put_i32(w, c->units);
        put_i32(w, c->activation);
        put_f32(w, c->alpha);
        put_i32(w, c->use_bias != 0);
        break;
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D:
        put_i32(w, c->kernel_h);
        put_i32(w, c->kernel_w);
        put_i32(w, c->stride_h);
        put_i32(w, c->stride_w);
        put_i32(w, c->padding);
        break;
    case TFX_LAYER_DROPOUT: put_f32(w, c->rate); break;
    case TFX_LAYER_ACTIVATION:
        put_i32(w, c->activation);
        put_f32(w, c->alpha);
        break;
    case TFX_LAYER_BATCH_NORMALIZATION:
        put_f32(w, c->momentum);
        put_f32(w, c->epsilon);
        put_i32(w, c->center != 0);
        put_i32(w, c->scale != 0);
        break;
    default: break;
    }
}

/* ---- saving ---- */

static void put_arch(writer *w, const tfx_model *m)
{
    put_i32(w, m->input.h);
    put_i32(w, m->input.w);
    put_i32(w, m->input.c);
    put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        size_t len = strlen(l->name);
        put_u32(w, (uint32_t)l->ops->kind);
        put_u16(w, (unsigned)len);
        put_bytes(w, l->name, len);
        put_u8(w, 0);
        put_u16(w, (unsigned)config_len(l->ops->kind));
        put_config(w, l);
    }
}

/* Dense keeps its kernel [units][inputs] (lib/layers/dense.c); files hold Keras's
 * [inputs][units]. Kernel element k of the file is stored element dense_stored(l, k); the
 * conversions go 16 inputs at a time so the units' rows are reused from cache. */
static size_t dense_stored(const tfx_layer *l, size_t k)
{
    const size_t K = (size_t)l->in.c, U = (size_t)l->cfg.units;
    return k < K * U ? (k % U) * K + k / U : k;
}

static void put_dense_kernel(writer *w, const tfx_layer *l, const float *stored)
{
    const size_t K = (size_t)l->in.c, U = (size_t)l->cfg.units;
    for (size_t i0 = 0; i0 < K; i0 += 16)
        for (size_t i = i0; i < K && i < i0 + 16; i++)
            for (size_t u = 0; u < U; u++) put_f32(w, stored[u * K + i]);
}

static void put_weights(writer *w, const tfx_model *m)
{
    put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        put_u64(w, l->n_params);
        put_u64(w, l->n_state);
        if (l->n_params && l->ops->kind == TFX_LAYER_DENSE && w->p) {
            const size_t nk = (size_t)l->in.c * l->cfg.units;
            put_dense_kernel(w, l, m->params + l->param_offset);
            put_floats(w, m->params + l->param_offset + nk, l->n_params - nk);
        } else if (l->n_params) {
            put_floats(w, m->params + l->param_offset, l->n_params);
        }
        if (l->n_state) put_floats(w, l->state, l->n_state);
    }
}

/* What the loader rejects must not be written: non-finite weights, negative BN variances. */
static int check_saveable(const tfx_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        if (config_len(l->ops->kind) < 0)
            return tfx__error(TFX_ENOTSUP, "layer %zu '%s': kind %d cannot be saved", i, l->name, l->ops->kind);
        const float *p = tfx__layer_params(l); /* NULL for a weightless model: no NULL + 0 */
        for (size_t k = 0; k < l->n_params; k++) { /* k in the file's (Keras's) order */
            size_t s = l->ops->kind == TFX_LAYER_DENSE ? dense_stored(l, k) : k;
            if (!isfinite(p[s]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': trainable weight %zu is not finite (%g)", i, l->name,
                                  k, (double)p[s]);
        }
        for (size_t k = 0; k < l->n_state; k++)
            if (!isfinite(l->state[k]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': non-trainable weight %zu is not finite (%g)", i,
                                  l->name, k, (double)l->state[k]);
        if (l->ops->kind == TFX_LAYER_BATCH_NORMALIZATION)
            for (size_t k = l->n_state / 2; k < l->n_state; k++)
                if (l->state[k] < 0.0f)
                    return tfx__error(TFX_EINVAL, "layer %zu '%s': moving variance %zu is negative (%g)", i,
                                      l->name, k - l->n_state / 2, (double)l->state[k]);
    }
    return TFX_OK;
}

static int check_save_options(const tfx_save_options *o, const char *fn)
{
    if (!o) return TFX_OK;
    if (o->version == 0 || o->version > TFX_SAVE_OPTIONS_VERSION)
        return tfx__error(TFX_EVERSION, "%s: options version %u is not supported (this library knows up to %u)", fn,
                          o->version, (unsigned)TFX_SAVE_OPTIONS_VERSION);
    if (o->include_optimizer)
        return tfx__error(TFX_ENOTSUP, "%s: include_optimizer: saving the optimizer state is not implemented yet",
                          fn);
    return TFX_OK;
}

/* File size, or 0 with an error when it does not fit in size_t. */
static int file_size(const tfx_model *m, size_t *arch, size_t *weights, size_t *total)
{
    writer w = {NULL, 0};
    put_arch(&w, m);
    *arch = w.pos;
    /* Weights: 4 + per layer 16 + 4 * (params + state); the params fit in memory already,
     * so only the multiplication by 4 can overflow (32-bit size_t). */
    size_t floats = m->n_params, bytes;
    for (size_t i = 0; i < m->n_layers; i++) floats += m->layers[i]->n_state;
    if (tfx__mul_size(floats, 4, &bytes) || bytes > SIZE_MAX - 4 - 16 * m->n_layers - *arch - 1024)
        return tfx__error(TFX_ENOMEM, "the model's %zu weights are too many for one file", floats);
    *weights = 4 + 16 * m->n_layers + bytes;
    *total = TFX__FILE_HEADER_LEN + 2 * TFX__FILE_ENTRY_LEN + *arch + *weights + TFX__FILE_TRAILER_LEN;
    return TFX_OK;
}

static void serialize(const tfx_model *m, uint8_t *buf, size_t arch, size_t weights, size_t total)
{
    writer w = {buf, 0};
    put_bytes(&w, TFX__FILE_MAGIC, TFX__FILE_MAGIC_LEN);
    put_u32(&w, TFX_MODEL_FORMAT_VERSION);
    put_u32(&w, 2);
    put_u32(&w, TFX__SECTION_ARCH);
    put_u32(&w, TFX__SECTION_REQUIRED);
    put_u64(&w, arch);
    put_u32(&w, TFX__SECTION_WEIGHTS);
    put_u32(&w, TFX__SECTION_REQUIRED);
    put_u64(&w, weights);
    put_arch(&w, m);
    put_weights(&w, m);
    put_u32(&w, crc_of(buf, total - TFX__FILE_TRAILER_LEN));
}

int tfx_model_save_to_memory(const tfx_model *m, const tfx_save_options *o, void *buf, size_t capacity, size_t *size)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(size);
    *size = 0;
    int rc = check_save_options(o, "tfx_model_save_to_memory");
    if (rc) return rc;
    rc = check_saveable(m);
    if (rc) return tfx__error_prefix("tfx_model_save_to_memory");
    size_t arch, weights, total;
    rc = file_size(m, &arch, &weights, &total);
    if (rc) return rc;
    *size = total;
    if (!buf) {
        TFX__CHECK_ARG(capacity == 0, "tfx_model_save_to_memory: buf is NULL but capacity is %zu", capacity);
        return TFX_OK;
    }
    if (capacity < total)
        return tfx__error(TFX_EINVAL, "tfx_model_save_to_memory: the buffer holds %zu bytes, the model needs %zu",
                          capacity, total);
    serialize(m, buf, arch, weights, total);
    return TFX_OK;
}

/* Write everything, retrying short writes; the test hook cuts the write short. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        if (tls_fail_after >= 0) {
            if (done >= (size_t)tls_fail_after) {
                errno = EIO;
                return -1;
            }
            if (chunk > (size_t)tls_fail_after - done) chunk = (size_t)tls_fail_after - done;
        }
        ssize_t k = write(fd, p + done, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

/* Open a new file next to path with a unique name. mkstemp would make it 0600; O_EXCL with
 * mode 0666 gives the permissions (umask) an ordinary new file gets. */
static int open_temp(const char *path, char *tmp, size_t tmp_len)
{
    static _Thread_local unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 20 ^ ++counter ^
                     (uint64_t)(uintptr_t)&counter;
        snprintf(tmp, tmp_len, "%s.tmp-%06llx", path, (unsigned long long)(x & 0xffffff));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
        ts.tv_nsec += 7919;
    }
    return -1;
}

/* Make the rename itself durable (best effort: some file systems refuse to fsync a directory). */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

static int write_atomic(const char *path, const uint8_t *data, size_t n)
{
    size_t plen = strlen(path);
    char *tmp = tfx__malloc(plen + 32);
    if (!tmp) return tfx__error(TFX_ENOMEM, "tfx_model_save: out of memory");
    int fd = open_temp(path, tmp, plen + 32);
    if (fd < 0) {
        int e = errno;
        tfx__free(tmp);
        return tfx__error(TFX_EIO, "tfx_model_save: cannot create a temporary file next to '%s': %s", path,
                          strerror(e));
    }
    const char *what = "writing";
    struct stat st;
    /* Keep the permissions of the file being replaced. */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(fd, st.st_mode & 07777);
    if (write_all(fd, data, n) != 0) goto fail;
    what = "flushing";
    if (fsync(fd) != 0) goto fail;
    what = "closing";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    what = "renaming the temporary file to";
    if (rename(tmp, path) != 0) goto fail;
    sync_dir(path);
    tfx__free(tmp);
    return TFX_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    tfx__free(tmp);
    return tfx__error(TFX_EIO, "tfx_model_save: %s '%s' failed: %s (the previous file is unchanged)", what, path,
                      strerror(e));
}

int tfx_model_save(const tfx_model *m, const char *path, const tfx_save_options *o)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(path);
    TFX__CHECK_ARG(path[0] != '\0', "tfx_model_save: path is empty");
    int rc = check_save_options(o, "tfx_model_save");
    if (rc) return rc;
    rc = check_saveable(m);
    if (rc) return tfx__error_prefix("tfx_model_save: '%s'", path);
    size_t arch, weights, total;
    rc = file_size(m, &arch, &weights, &total);
    if (rc) return rc;
    uint8_t *buf = tfx__malloc(total);
    if (!buf) return tfx__error(TFX_ENOMEM, "tfx_model_save: out of memory for %zu bytes", total);
    serialize(m, buf, arch, weights, total);
    rc = write_atomic(path, buf, total);
    tfx__free(buf);
    return rc;
}

/* ---- loading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static int avail(const reader *r, size_t n) { return n <= r->len - r->pos; }

/* The layer being read, for messages. */
typedef struct where {
    const char *section;
    size_t index;
    char name[TFX__NAME_MAX];
} where;

static int bad(const where *at, const char *fmt, ...) TFX__PRINTF(2, 3);
static int bad(const where *at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at->name[0])
        return tfx__error(TFX_EFORMAT, "%s section, layer %zu ('%s'): %s", at->section, at->index, at->name, msg);
    return tfx__error(TFX_EFORMAT, "%s section, layer %zu: %s", at->section, at->index, msg);
}

/* Turn an error of the model-building API into TFX_EFORMAT with the location (out of memory
 * stays TFX_ENOMEM). */
static int rebadge(int rc, const where *at)
{
    if (rc == TFX_ENOMEM) return tfx__error_prefix("%s section, layer %zu", at->section, at->index);
    char old[400];
    snprintf(old, sizeof old, "%s", tfx_error_last()->message);
    return bad(at, "%s", old);
}

static int check_range(const where *at, const char *field, int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo || v > hi) return bad(at, "%s = %ld must be in %ld..%ld", field, (long)v, (long)lo, (long)hi);
    return TFX_OK;
}

static int check_flag(const where *at, const char *field, int32_t v) { return check_range(at, field, v, 0, 1); }

static int check_activation(const where *at, int32_t act, float alpha)
{
    if (!tfx__activation_valid(act)) return bad(at, "unknown activation %ld", (long)act);
    if (!isfinite(alpha)) return bad(at, "activation alpha is not finite");
    return TFX_OK;
}

/* Decode and validate a configuration record into the layer config (public API units). */
static int read_config(const where *at, int kind, const uint8_t *b, tfx__layer_config *c)
{
    int rc = TFX_OK;
    memset(c, 0, sizeof *c);
    switch (kind) {
    case TFX_LAYER_CONV2D:
        c->filters = get_i32(b);
        c->kernel_h = get_i32(b + 4);
        c->kernel_w = get_i32(b + 8);
        c->stride_h = get_i32(b + 12);
        c->stride_w = get_i32(b + 16);
        c->padding = get_i32(b + 20);
        c->activation = get_i32(b + 24);
        c->alpha = get_f32(b + 28);
        c->use_bias = get_i32(b + 32);
        if ((rc = check_range(at, "filters", c->filters, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "kernel_h", c->kernel_h, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "kernel_w", c->kernel_w, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "stride_h", c->stride_h, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "stride_w", c->stride_w, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "padding", c->padding, TFX_PADDING_VALID, TFX_PADDING_SAME)) ||
            (rc = check_activation(at, c->activation, c->alpha)) || (rc = check_flag(at, "use_bias", c->use_bias)))
            return rc;
        break;
    case TFX_LAYER_DENSE:
        c->units = get_i32(b);
        c->activation = get_i32(b + 4);
        c->alpha = get_f32(b + 8);
        c->use_bias = get_i32(b + 12);
        if ((rc = check_range(at, "units", c->units, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_activation(at, c->activation, c->alpha)) || (rc = check_flag(at, "use_bias", c->use_bias)))
            return rc;
        break;
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D:
        c->kernel_h = get_i32(b);
        c->kernel_w = get_i32(b + 4);
        c->stride_h = get_i32(b + 8);
        c->stride_w = get_i32(b + 12);
        c->padding = get_i32(b + 16);
        if ((rc = check_range(at, "pool_h", c->kernel_h, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "pool_w", c->kernel_w, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "stride_h", c->stride_h, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "stride_w", c->stride_w, 1, TFX__FILE_MAX_DIM)) ||
            (rc = check_range(at, "padding", c->padding, TFX_PADDING_VALID, TFX_PADDING_SAME)))
            return rc;
        break;
    case TFX_LAYER_DROPOUT:
        c->rate = get_f32(b);
        if (!(c->rate >= 0.0f && c->rate < 1.0f)) return bad(at, "dropout rate %g is not in [0, 1)", (double)c->rate);
        break;
    case TFX_LAYER_ACTIVATION:
        c->activation = get_i32(b);
        c->alpha = get_f32(b + 4);
        if ((rc = check_activation(at, c->activation, c->alpha))) return rc;
        break;
    case TFX_LAYER_BATCH_NORMALIZATION:
        c->momentum = get_f32(b);
        c->epsilon = get_f32(b + 4);
        c->center = get_i32(b + 8);
        c->scale = get_i32(b + 12);
        if (!(c->momentum >= 0.0f && c->momentum <= 1.0f))
            return bad(at, "momentum %g is not in [0, 1]", (double)c->momentum);
        if (!(c->epsilon > 0.0f && isfinite(c->epsilon)))
            return bad(at, "epsilon %g is not a positive finite number", (double)c->epsilon);
        if ((rc = check_flag(at, "center", c->center)) || (rc = check_flag(at, "scale", c->scale))) return rc;
        break;
    default: break;
    }
    return TFX_OK;
}

/* Parameter counts a layer of this config on this input must have, computed with overflow
 * checks (the vtable's counts assume sizes that already fit). */
static int expected_counts(const where *at, int kind, const tfx__layer_config *c, tfx__shape in, size_t *trainable,
                           size_t *state)
{
    size_t t = 0, s = 0, k;
    int overflow = 0;
    switch (kind) {
    case TFX_LAYER_CONV2D:
        overflow = tfx__mul_size((size_t)c->kernel_h, (size_t)c->kernel_w, &k) || tfx__mul_size(k, (size_t)in.c, &k) ||
                   tfx__mul_size(k, (size_t)c->filters, &t);
        if (!overflow && c->use_bias) {
            overflow = t > SIZE_MAX - (size_t)c->filters;
            t += (size_t)c->filters;
        }
        break;
    case TFX_LAYER_DENSE:
        overflow = tfx__mul_size((size_t)in.c, (size_t)c->units, &t);
        if (!overflow && c->use_bias) {
            overflow = t > SIZE_MAX - (size_t)c->units;
            t += (size_t)c->units;
        }
        break;
    case TFX_LAYER_BATCH_NORMALIZATION:
        t = (size_t)(c->scale + c->center) * (size_t)in.c;
        s = 2 * (size_t)in.c;
        break;
    default: break;
    }
    if (overflow) return bad(at, "the layer's weight count overflows");
    *trainable = t;
    *state = s;
    return TFX_OK;
}

/* Add one layer through the public API (its checks and shape inference). */
static int add_layer(tfx_model *m, int kind, const tfx__layer_config *c, const char *name, tfx_layer **out)
{
    switch (kind) {
    case TFX_LAYER_CONV2D: {
        tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
        o.filters = c->filters;
        o.kernel_h = c->kernel_h;
        o.kernel_w = c->kernel_w;
        o.stride_h = c->stride_h;
        o.stride_w = c->stride_w;
        o.padding = c->padding;
        o.activation = c->activation;
        o.activation_alpha = c->alpha;
        o.use_bias = c->use_bias;
        o.name = name;
        return tfx_model_add_conv2d(m, &o, out);
    }
    case TFX_LAYER_DENSE: {
        tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
        o.units = c->units;
        o.activation = c->activation;
        o.activation_alpha = c->alpha;
        o.use_bias = c->use_bias;
        o.name = name;
        return tfx_model_add_dense(m, &o, out);
    }
    case TFX_LAYER_FLATTEN: return tfx_model_add_flatten(m, name, out);
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D: {
        tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
        o.pool_h = c->kernel_h;
        o.pool_w = c->kernel_w;
        o.stride_h = c->stride_h;
        o.stride_w = c->stride_w;
        o.padding = c->padding;
        o.name = name;
        return kind == TFX_LAYER_MAX_POOLING2D ? tfx_model_add_max_pooling2d(m, &o, out)
                                               : tfx_model_add_average_pooling2d(m, &o, out);
    }
    case TFX_LAYER_GLOBAL_AVERAGE_POOLING2D: return tfx_model_add_global_average_pooling2d(m, name, out);
    case TFX_LAYER_DROPOUT: return tfx_model_add_dropout(m, c->rate, name, out);
    case TFX_LAYER_ACTIVATION: return tfx_model_add_activation(m, c->activation, c->alpha, name, out);
    case TFX_LAYER_BATCH_NORMALIZATION: {
        tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
        o.momentum = c->momentum;
        o.epsilon = c->epsilon;
        o.center = c->center;
        o.scale = c->scale;
        o.name = name;
        return tfx_model_add_batch_normalization(m, &o, out);
    }
    default: return tfx__error(TFX_EINVAL, "unknown layer kind %d", kind);
    }
}

/* Read n floats at b into dst, each finite. */
static int read_floats(const where *at, const char *what, const uint8_t *b, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        float f = get_f32(b + 4 * i);
        if (!isfinite(f)) return bad(at, "%s weight %zu is not finite", what, i);
        dst[i] = f;
    }
    return TFX_OK;
}

/* A Dense kernel from the file's [inputs][units] into the stored [units][inputs]. */
static int read_dense_kernel(const where *at, const uint8_t *b, const tfx_layer *l, float *dst)
{
    const size_t K = (size_t)l->in.c, U = (size_t)l->cfg.units;
    for (size_t i0 = 0; i0 < K; i0 += 16)
        for (size_t i = i0; i < K && i < i0 + 16; i++)
            for (size_t u = 0; u < U; u++) {
                float f = get_f32(b + 4 * (i * U + u));
                if (!isfinite(f)) return bad(at, "trainable weight %zu is not finite", i * U + u);
                dst[u * K + i] = f;
            }
    return TFX_OK;
}

/* One layer: architecture record at *ar, weights record at *wr. */
static int load_layer(tfx_model *m, size_t index, reader *ar, reader *wr)
{
    where at = {"architecture", index, ""};
    if (!avail(ar, 6)) return bad(&at, "record truncated (kind and name length)");
    uint32_t kind_u = get_u32(ar->p + ar->pos);
    size_t name_len = (size_t)ar->p[ar->pos + 4] | (size_t)ar->p[ar->pos + 5] << 8;
    ar->pos += 6;
    int kind = kind_u <= INT_MAX ? (int)kind_u : -1;
    const tfx__layer_ops *ops = tfx__layer_ops_for_kind(kind);
    int clen = config_len(kind);
    if (!ops || clen < 0) return bad(&at, "unknown layer kind %lu", (unsigned long)kind_u);
    if (name_len == 0 || name_len >= TFX__NAME_MAX)
        return bad(&at, "name length %zu is not in 1..%d", name_len, TFX__NAME_MAX - 1);
    if (!avail(ar, name_len + 1)) return bad(&at, "name of %zu bytes runs past the end of the section", name_len);
    const uint8_t *nm = ar->p + ar->pos;
    if (memchr(nm, 0, name_len)) return bad(&at, "name contains a NUL byte");
    if (nm[name_len] != 0) return bad(&at, "name is not NUL-terminated");
    memcpy(at.name, nm, name_len);
    at.name[name_len] = '\0';
    ar->pos += name_len + 1;
    if (!avail(ar, 2)) return bad(&at, "record truncated (configuration length)");
    size_t got_clen = (size_t)ar->p[ar->pos] | (size_t)ar->p[ar->pos + 1] << 8;
    ar->pos += 2;
    if (got_clen != (size_t)clen)
        return bad(&at, "configuration of %zu bytes, a %s has %d", got_clen, ops->type_name, clen);
    if (!avail(ar, got_clen)) return bad(&at, "configuration runs past the end of the section");
    tfx__layer_config cfg;
    int rc = read_config(&at, kind, ar->p + ar->pos, &cfg);
    if (rc) return rc;
    ar->pos += got_clen;

    /* Dry run of shape inference on a scratch layer, to know the weight counts before the
     * model allocates anything for them. */
    tfx_layer probe;
    memset(&probe, 0, sizeof probe);
    probe.ops = ops;
    probe.cfg = cfg;
    probe.in = m->n_layers ? m->layers[m->n_layers - 1]->out : m->input;
    rc = ops->infer(&probe, probe.in, &probe.out);
    if (rc) return rebadge(rc, &at);
    size_t trainable = 0, state = 0;
    rc = expected_counts(&at, kind, &cfg, probe.in, &trainable, &state);
    if (rc) return rc;

    at.section = "weights";
    if (!avail(wr, 16)) return bad(&at, "record truncated (weight counts)");
    uint64_t nt = get_u64(wr->p + wr->pos), ns = get_u64(wr->p + wr->pos + 8);
    wr->pos += 16;
    if (nt != trainable || ns != state)
        return bad(&at, "%llu trainable and %llu non-trainable weights, the architecture needs %zu and %zu",
                   (unsigned long long)nt, (unsigned long long)ns, trainable, state);
    /* Both are at most what the section holds, so no overflow and no allocation beyond it. */
    size_t left = (wr->len - wr->pos) / 4;
    if (trainable > left || state > left - trainable)
        return bad(&at, "%zu weights, but only %zu floats are left in the section", trainable + state, left);

    at.section = "architecture";
    tfx_layer *l = NULL;
    rc = add_layer(m, kind, &cfg, at.name, &l);
    if (rc) return rebadge(rc, &at);
    at.section = "weights";
    if (l->n_params != trainable || l->n_state != state)
        return bad(&at, "the model built %zu trainable and %zu non-trainable weights, the file has %zu and %zu",
                   l->n_params, l->n_state, trainable, state);
    if (trainable) {
        if (kind == TFX_LAYER_DENSE) {
            const size_t nk = (size_t)l->in.c * l->cfg.units;
            rc = read_dense_kernel(&at, wr->p + wr->pos, l, tfx__layer_params(l));
            if (!rc)
                rc = read_floats(&at, "bias", wr->p + wr->pos + 4 * nk, trainable - nk, tfx__layer_params(l) + nk);
        } else {
            rc = read_floats(&at, "trainable", wr->p + wr->pos, trainable, tfx__layer_params(l));
        }
        tfx__model_weights_changed(m);
        if (rc) return rc;
        wr->pos += 4 * trainable;
    }
    if (state) {
        rc = read_floats(&at, "non-trainable", wr->p + wr->pos, state, l->state);
        if (rc) return rc;
        wr->pos += 4 * state;
        if (kind == TFX_LAYER_BATCH_NORMALIZATION)
            for (size_t k = state / 2; k < state; k++)
                if (l->state[k] < 0.0f) return bad(&at, "moving variance %zu is negative", k - state / 2);
    }
    return TFX_OK;
}

static int load_model(tfx_model **out, const uint8_t *arch, size_t arch_len, const uint8_t *wts, size_t wts_len)
{
    reader ar = {arch, arch_len, 0}, wr = {wts, wts_len, 0};
    if (arch_len < 16) return tfx__error(TFX_EFORMAT, "architecture section: %zu bytes, too short for the input shape", arch_len);
    int32_t h = get_i32(arch), w = get_i32(arch + 4), c = get_i32(arch + 8);
    uint32_t n_layers = get_u32(arch + 12);
    ar.pos = 16;
    /* Each layer record has at least 10 bytes, each weights record 16. */
    if (n_layers > TFX__FILE_MAX_LAYERS)
        return tfx__error(TFX_EFORMAT, "architecture section: %lu layers (at most %d)", (unsigned long)n_layers,
                          TFX__FILE_MAX_LAYERS);
    if ((size_t)n_layers * 10 > arch_len - 16)
        return tfx__error(TFX_EFORMAT, "architecture section: %lu layers cannot fit in %zu bytes",
                          (unsigned long)n_layers, arch_len);
    if (wts_len < 4) return tfx__error(TFX_EFORMAT, "weights section: %zu bytes, too short", wts_len);
    uint32_t w_layers = get_u32(wts);
    wr.pos = 4;
    if (w_layers != n_layers)
        return tfx__error(TFX_EFORMAT, "weights section: %lu layers, the architecture has %lu",
                          (unsigned long)w_layers, (unsigned long)n_layers);
    if ((size_t)n_layers * 16 > wts_len - 4)
        return tfx__error(TFX_EFORMAT, "weights section: %lu layers cannot fit in %zu bytes", (unsigned long)n_layers,
                          wts_len);
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, h, w, c);
    if (rc) {
        if (rc == TFX_ENOMEM) return rc;
        return tfx__error(TFX_EFORMAT, "architecture section: input shape %ldx%ldx%ld is not valid (each in 1..%d, "
                                       "at most 2^30 values)",
                          (long)h, (long)w, (long)c, TFX__FILE_MAX_DIM);
    }
    for (size_t i = 0; i < n_layers; i++) {
        rc = load_layer(m, i, &ar, &wr);
        if (rc) goto fail;
    }
    if (ar.pos != ar.len) {
        rc = tfx__error(TFX_EFORMAT, "architecture section: %zu bytes left after the last layer", ar.len - ar.pos);
        goto fail;
    }
    if (wr.pos != wr.len) {
        rc = tfx__error(TFX_EFORMAT, "weights section: %zu bytes left after the last layer", wr.len - wr.pos);
        goto fail;
    }
    *out = m;
    return TFX_OK;
fail:
    tfx_model_free(m);
    return rc;
}

int tfx_model_load_from_memory(tfx_model **out, const void *data, size_t size)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(data);
    const uint8_t *b = data;
    if (size < TFX__FILE_MAGIC_LEN || memcmp(b, TFX__FILE_MAGIC, TFX__FILE_MAGIC_LEN) != 0)
        return tfx__error(TFX_EFORMAT, "not a libtfx model file (bad magic)");
    if (size < TFX__FILE_HEADER_LEN + TFX__FILE_TRAILER_LEN)
        return tfx__error(TFX_EFORMAT, "file of %zu bytes is truncated (the header alone has %d)", size,
                          TFX__FILE_HEADER_LEN + TFX__FILE_TRAILER_LEN);
    uint32_t version = get_u32(b + 8);
    if (version == 0) return tfx__error(TFX_EFORMAT, "header: format version 0 is not valid");
    if (version > TFX_MODEL_FORMAT_VERSION)
        return tfx__error(TFX_EVERSION, "header: format version %lu is newer than this libtfx reads (%d)",
                          (unsigned long)version, TFX_MODEL_FORMAT_VERSION);
    uint32_t stored = get_u32(b + size - TFX__FILE_TRAILER_LEN), crc = crc_of(b, size - TFX__FILE_TRAILER_LEN);
    if (stored != crc)
        return tfx__error(TFX_EFORMAT, "checksum mismatch (stored %08lx, computed %08lx): the file is corrupted or "
                                       "truncated",
                          (unsigned long)stored, (unsigned long)crc);
    uint32_t n_sections = get_u32(b + 12);
    size_t body = size - TFX__FILE_TRAILER_LEN; /* end of the section payloads */
    if (n_sections == 0 || n_sections > TFX__FILE_MAX_SECTIONS)
        return tfx__error(TFX_EFORMAT, "header: %lu sections (must be 1..%d)", (unsigned long)n_sections,
                          TFX__FILE_MAX_SECTIONS);
    size_t table_end = TFX__FILE_HEADER_LEN + (size_t)n_sections * TFX__FILE_ENTRY_LEN;
    if (table_end > body)
        return tfx__error(TFX_EFORMAT, "header: a table of %lu sections does not fit in %zu bytes",
                          (unsigned long)n_sections, size);
    const uint8_t *arch = NULL, *wts = NULL;
    size_t arch_len = 0, wts_len = 0, off = table_end;
    for (uint32_t i = 0; i < n_sections; i++) {
        const uint8_t *e = b + TFX__FILE_HEADER_LEN + (size_t)i * TFX__FILE_ENTRY_LEN;
        uint32_t type = get_u32(e), flags = get_u32(e + 4);
        uint64_t len = get_u64(e + 8);
        if (flags & ~TFX__SECTION_REQUIRED)
            return tfx__error(TFX_EFORMAT, "section %lu (type %lu): unknown flags %08lx", (unsigned long)i,
                              (unsigned long)type, (unsigned long)flags);
        if (len > body - off)
            return tfx__error(TFX_EFORMAT, "section %lu (type %lu): length %llu runs past the end of the file (%zu "
                                           "bytes left)",
                              (unsigned long)i, (unsigned long)type, (unsigned long long)len, body - off);
        if (type == TFX__SECTION_ARCH || type == TFX__SECTION_WEIGHTS) {
            const uint8_t **slot = type == TFX__SECTION_ARCH ? &arch : &wts;
            if (*slot)
                return tfx__error(TFX_EFORMAT, "section %lu: a second %s section", (unsigned long)i,
                                  type == TFX__SECTION_ARCH ? "architecture" : "weights");
            *slot = b + off;
            if (type == TFX__SECTION_ARCH) arch_len = (size_t)len;
            else wts_len = (size_t)len;
        } else if (flags & TFX__SECTION_REQUIRED) {
            /* Includes the reserved optimizer section: this version cannot restore it. */
            return tfx__error(TFX_EFORMAT, "section %lu: required section type %lu is not known to this libtfx",
                              (unsigned long)i, (unsigned long)type);
        } /* else: an optional section this reader does not use; skip it */
        off += (size_t)len;
    }
    if (off != body)
        return tfx__error(TFX_EFORMAT, "sections end at byte %zu but the checksum is at byte %zu", off, body);
    if (!arch) return tfx__error(TFX_EFORMAT, "the file has no architecture section");
    if (!wts) return tfx__error(TFX_EFORMAT, "the file has no weights section");
    return load_model(out, arch, arch_len, wts, wts_len);
}

/* Read the whole file (bounded by FILE_MAX, not by anything the file says). */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tfx__error(TFX_EIO, "tfx_model_load: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tfx__error(TFX_EIO, "tfx_model_load: cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return tfx__error(TFX_EIO, "tfx_model_load: '%s' is a directory", path);
    }
    uint64_t max = FILE_MAX < (uint64_t)SIZE_MAX / 2 ? FILE_MAX : (uint64_t)SIZE_MAX / 2;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        close(fd);
        return tfx__error(TFX_EFORMAT, "tfx_model_load: '%s' is %llu bytes, larger than a model file can be (%llu)",
                          path, (unsigned long long)st.st_size, (unsigned long long)max);
    }
    /* One byte more than the size, so a regular file needs no second allocation to see EOF. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536, n = 0;
    uint8_t *buf = tfx__malloc(cap);
    if (!buf) goto nomem;
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                tfx__free(buf);
                close(fd);
                return tfx__error(TFX_EFORMAT, "tfx_model_load: '%s' is larger than a model file can be (%llu)", path,
                                  (unsigned long long)max);
            }
            size_t ncap = cap * 2 > max ? (size_t)max : cap * 2;
            uint8_t *p = tfx__realloc(buf, ncap);
            if (!p) goto nomem;
            buf = p;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            tfx__free(buf);
            close(fd);
            return tfx__error(TFX_EIO, "tfx_model_load: reading '%s' failed: %s", path, strerror(e));
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    close(fd);
    *data = buf;
    *size = n;
    return TFX_OK;
nomem:
    tfx__free(buf);
    close(fd);
    return tfx__error(TFX_ENOMEM, "tfx_model_load: out of memory reading '%s'", path);
}

int tfx_model_load(tfx_model **out, const char *path)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(path);
    uint8_t *data;
    size_t size;
    int rc = read_file(path, &data, &size);
    if (rc) return rc;
    rc = tfx_model_load_from_memory(out, data, size);
    tfx__free(data);
    if (rc) return tfx__error_prefix("tfx_model_load: '%s'", path);
    return TFX_OK;
}
