/* Saving a model file (docs/file-format.md): the architecture and weights sections from the
 * layers' vtables (config records, Keras-order weights), written to a temporary file that is
 * renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "saving/format.h"

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

/* ---- the sections ---- */

static void put_arch(tfx__writer *w, const tfx_model *m)
{
    tfx__put_u32(w, (uint32_t)m->input.h);
    tfx__put_u32(w, (uint32_t)m->input.w);
    tfx__put_u32(w, (uint32_t)m->input.c);
    tfx__put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        size_t len = strlen(l->name), clen = l->ops->config_bytes;
        tfx__put_u32(w, (uint32_t)tfx_layer_get_kind(l));
        tfx__put_u16(w, (unsigned)len);
        tfx__put_bytes(w, l->name, len);
        tfx__put_u8(w, 0);
        tfx__put_u16(w, (unsigned)clen);
        if (w->p && clen) l->ops->config_write(l, w->p + w->pos);
        w->pos += clen;
    }
}

/* A kernel stored transposed (tfx__layer_ops.transposed_kernel): the file's element k of the
 * Keras [rows][cols] kernel is stored element stored_index(k); the conversions go 16 rows at a
 * time so the stored rows are reused from cache. */
static size_t stored_index(size_t k, size_t rows, size_t cols)
{
    return k < rows * cols ? (k % cols) * rows + k / cols : k;
}

static void put_transposed(tfx__writer *w, const float *stored, size_t rows, size_t cols)
{
    for (size_t i0 = 0; i0 < rows; i0 += 16)
        for (size_t i = i0; i < rows && i < i0 + 16; i++)
            for (size_t u = 0; u < cols; u++) tfx__put_float(w, stored[u * rows + i]);
}

static void put_weights(tfx__writer *w, const tfx_model *m)
{
    tfx__put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        tfx__put_u64(w, l->n_params);
        tfx__put_u64(w, l->n_state);
        if (l->n_params && l->ops->transposed_kernel && w->p) {
            size_t rows, cols;
            l->ops->transposed_kernel(l, &rows, &cols);
            put_transposed(w, l->params, rows, cols);
            tfx__put_floats(w, l->params + rows * cols, l->n_params - rows * cols);
        } else if (l->n_params) {
            tfx__put_floats(w, l->params, l->n_params);
        }
        if (l->n_state) tfx__put_floats(w, l->state, l->n_state);
    }
}

/* What the loader rejects must not be written: non-finite weights, a state the layer refuses. */
static int check_saveable(const tfx_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        if (!l->ops->config_read)
            return tfx__error(TFX_ENOTSUP, "layer %zu '%s': kind %d cannot be saved", i, l->name,
                              tfx_layer_get_kind(l));
        size_t rows = 0, cols = 0;
        if (l->ops->transposed_kernel) l->ops->transposed_kernel(l, &rows, &cols);
        const float *p = l->params;                /* NULL for a weightless model: no NULL + 0 */
        for (size_t k = 0; k < l->n_params; k++) { /* k in the file's (Keras's) order */
            size_t s = rows ? stored_index(k, rows, cols) : k;
            if (!isfinite(p[s]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': trainable weight %zu is not finite (%g)", i, l->name,
                                  k, (double)p[s]);
        }
        for (size_t k = 0; k < l->n_state; k++)
            if (!isfinite(l->state[k]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': non-trainable weight %zu is not finite (%g)", i,
                                  l->name, k, (double)l->state[k]);
        char msg[200];
        if (l->ops->check_state && l->ops->check_state(l, msg, sizeof msg))
            return tfx__error(TFX_EINVAL, "layer %zu '%s': %s", i, l->name, msg);
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
    tfx__writer w = {NULL, 0};
    put_arch(&w, m);
    *arch = w.pos;
    /* Weights: 4 + per layer 16 + 4 * (params + state); the params fit in memory already,
     * so only the multiplication by 4 can overflow (32-bit size_t). */
    size_t floats = m->n_params, bytes;
    for (size_t i = 0; i < m->n_layers; i++) floats += m->layers[i]->n_state;
    if (tfx__mul_size(floats, 4, &bytes) || bytes > SIZE_MAX - 4 - 16 * m->n_layers - *arch - 1024)
        return tfx__error(TFX_ENOMEM, "the model's %zu weights are too many for one file", floats);
    *weights = 4 + 16 * m->n_layers + bytes;
    *total = TFX__FILE_OVERHEAD + *arch + *weights;
    return TFX_OK;
}

static void serialize(const tfx_model *m, uint8_t *buf, size_t arch, size_t weights, size_t total)
{
    tfx__writer w = {buf, 0};
    tfx__file_put_header(&w, arch, weights);
    put_arch(&w, m);
    put_weights(&w, m);
    tfx__put_u32(&w, tfx__file_crc(buf, total - TFX__FILE_TRAILER_LEN));
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

/* ---- the file (temporary file, fsync, rename) ---- */

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
