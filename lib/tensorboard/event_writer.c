/* The event-file writer: one file per writer, each record built in memory and written with a
 * single pwrite at the known end of the file, so the file only ever grows by whole records and
 * a failed write can be cut back exactly (research/tfevents.md §1.4). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/options.h"
#include "core/hooks.h"
#include "tensorboard/tensorboard_internal.h"

struct tfx_event_writer {
    int fd;            /* -1 once closed */
    char *path;
    off_t end;         /* size of the file = end of the last whole record */
    size_t records;
    int failed;        /* a write failed: the writer refuses further records */
    char fail_msg[160];
    tfx_clock_fn clock;
    void *clock_user;
};

/* The only process-wide state: the <n> of file names, so writers in one process never clash. */
static atomic_uint tb_file_counter;

/* Test hook: bytes that may still be written on this thread; < 0 = no limit. */
_Thread_local long long tfx__hook_tb_write_budget = -1;


static ssize_t hooked_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (tfx__hook_tb_write_budget >= 0) {
        if (tfx__hook_tb_write_budget == 0) {
            errno = ENOSPC;
            return -1;
        }
        if ((unsigned long long)tfx__hook_tb_write_budget < n) n = (size_t)tfx__hook_tb_write_budget;
        ssize_t k = pwrite(fd, buf, n, off);
        if (k > 0) tfx__hook_tb_write_budget -= k;
        return k;
    }
    return pwrite(fd, buf, n, off);
}

static double system_clock(void *user)
{
    (void)user;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

TFX__OPTIONS_DESC_V1(event_writer_options, tfx_event_writer_options, TFX_EVENT_WRITER_OPTIONS_VERSION,
                     TFX_EVENT_WRITER_OPTIONS_INIT);

int tfx_event_writer_options_init(tfx_event_writer_options *opts, unsigned version)
{
    return tfx__options_init(&event_writer_options, opts, version, "tfx_event_writer_options_init");
}

/* Mark the writer failed and cut the file back to its last whole record; 0 when the cut worked.
 * If it fails, readers see one partial record at the end, which they treat as not yet written. */
static int write_failed(tfx_event_writer *w, int err)
{
    char eb[128];
    w->failed = 1;
    snprintf(w->fail_msg, sizeof w->fail_msg, "%s", tfx__strerror(err, eb, sizeof eb));
    return ftruncate(w->fd, w->end) == 0 ? 0 : errno;
}

/* Write one framed record with one pwrite (looping only on short writes). The message says what
 * the file holds now; a writer's first record failing is reported by tfx_event_writer_new,
 * which removes the file. */
static int write_record(tfx_event_writer *w, const char *fn, const uint8_t *rec, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = hooked_pwrite(w->fd, rec + done, n - done, w->end + (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            int cut = write_failed(w, e);
            if (w->records == 0) return TFX_EIO; /* tfx_event_writer_new sets the message */
            if (cut) {
                char eb[128];
                return tfx__error(TFX_EIO, "%s: writing '%s' failed: %s (the file holds its %zu whole records and "
                                           "then a partial one, which readers ignore: cutting it off failed: %s)",
                                  fn, w->path, w->fail_msg, w->records, tfx__strerror(cut, eb, sizeof eb));
            }
            return tfx__error(TFX_EIO, "%s: writing '%s' failed: %s (the file keeps its %zu whole records)",
                              fn, w->path, w->fail_msg, w->records);
        }
        done += (size_t)k;
    }
    w->end += (off_t)n;
    w->records++;
    return TFX_OK;
}

static int check_usable(const tfx_event_writer *w, const char *fn)
{
    if (w->failed)
        return tfx__error(TFX_EIO, "%s: the writer of '%s' failed earlier (%s)", fn, w->path, w->fail_msg);
    if (w->fd < 0) return tfx__error(TFX_ESTATE, "%s: the writer of '%s' is closed", fn, w->path);
    return TFX_OK;
}

static int get_time(tfx_event_writer *w, const char *fn, double *t)
{
    *t = w->clock(w->clock_user);
    /* the bound keeps (long long)t defined and the file name's seconds field sane */
    if (!isfinite(*t) || *t < 0 || *t >= 1e12)
        return tfx__error(TFX_EINVAL, "%s: the clock returned %g (need Unix seconds in [0, 1e12))", fn, *t);
    return TFX_OK;
}

/* Encode Event{wall_time, step, file_version | summary{value}} into one framed record and write it. */
static int emit(tfx_event_writer *w, const char *fn, double t, int64_t step, const char *file_version,
                const tfx__tb_value *v)
{
    size_t len = tfx__tb_encode_event(NULL, 1, t, step, file_version, v);
    uint8_t *rec = tfx__malloc(len + TFX__TFRECORD_OVERHEAD);
    if (!rec) return tfx__error(TFX_ENOMEM, "%s: out of memory for a %zu-byte record", fn, len);
    tfx__tb_encode_event(rec + 12, 1, t, step, file_version, v);
    tfx__tfrecord_frame(rec, len);
    int rc = write_record(w, fn, rec, len + TFX__TFRECORD_OVERHEAD);
    tfx__free(rec);
    return rc;
}

int tfx_event_writer_new(tfx_event_writer **out, const char *logdir, const tfx_event_writer_options *opts)
{
    static const char fn[] = "tfx_event_writer_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(logdir);
    TFX__CHECK_ARG(logdir[0] != '\0', "%s: logdir is empty", fn);
    tfx_event_writer_options o;
    int copy_rc = tfx__options_copy(&event_writer_options, &o, opts, fn);
    if (copy_rc) return copy_rc;
    tfx_event_writer *w = tfx__calloc(1, sizeof *w);
    if (!w) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    w->fd = -1;
    w->clock = o.clock ? o.clock : system_clock;
    w->clock_user = o.clock ? o.clock_user : NULL;

    double t;
    int rc = get_time(w, fn, &t);
    if (rc) goto fail;
    rc = tfx__file_mkdirs(fn, logdir);
    if (rc) goto fail;

    char host[256];
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0') snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';

    /* events.out.tfevents.<%010lld seconds>.<host>.<pid>.<n>.v2; O_EXCL, and a new n if the
     * name exists already (another process with a reused pid, a copied directory). */
    size_t cap = strlen(logdir) + strlen(host) + 96;
    w->path = tfx__malloc(cap);
    if (!w->path) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
        goto fail;
    }
    const char *sep = logdir[strlen(logdir) - 1] == '/' ? "" : "/";
    for (int attempt = 0;; attempt++) {
        unsigned n = atomic_fetch_add(&tb_file_counter, 1u);
        snprintf(w->path, cap, "%s%sevents.out.tfevents.%010lld.%s.%ld.%u.v2", logdir, sep, (long long)t, host,
                 (long)getpid(), n);
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0) break;
        if (errno != EEXIST || attempt == 1000) {
            char eb[128];
            int e = errno;
            rc = tfx__error(TFX_EIO, "%s: cannot create '%s': %s", fn, w->path, tfx__strerror(e, eb, sizeof eb));
            goto fail;
        }
    }
    rc = emit(w, fn, t, 0, "brain.Event:2", NULL);
    if (rc) {
        close(w->fd);
        w->fd = -1;
        unlink(w->path); /* a file without its first record is no event file: nothing is left */
        if (w->failed)
            rc = tfx__error(TFX_EIO, "%s: writing '%s' failed: %s (the file was removed)", fn, w->path,
                            w->fail_msg);
        goto fail;
    }
    *out = w;
    return TFX_OK;
fail:
    tfx__free(w->path);
    tfx__free(w);
    return rc;
}

const char *tfx_event_writer_path(const tfx_event_writer *w) { return w ? w->path : NULL; }

static int check_tag(const char *fn, const char *tag)
{
    if (!tag) return tfx__error(TFX_EINVAL, "%s: tag is NULL", fn);
    if (!tag[0]) return tfx__error(TFX_EINVAL, "%s: tag is empty", fn);
    /* Summary.Value.tag is a protobuf string: readers (TensorBoard, tf.train) reject the whole
     * record when it is not UTF-8, so it is refused here rather than written. */
    size_t bad;
    if (!tfx__utf8_valid(tag, &bad))
        return tfx__error(TFX_EINVAL, "%s: tag is not valid UTF-8 (at byte %zu)", fn, bad);
    return TFX_OK;
}

int tfx_event_writer_add_scalar(tfx_event_writer *w, const char *tag, int64_t step, double value)
{
    static const char fn[] = "tfx_event_writer_add_scalar";
    TFX__CHECK_NULL(w);
    int rc = check_tag(fn, tag);
    if (!rc) rc = check_usable(w, fn);
    double t;
    if (!rc) rc = get_time(w, fn, &t);
    if (rc) return rc;
    tfx__tb_value v = {0};
    v.tag = tag;
    v.tag_len = strlen(tag);
    v.kind = TFX__TB_SIMPLE_VALUE;
    v.simple_value = (float)value;
    return emit(w, fn, t, step, NULL, &v);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The PNG must say what the summary says: signature, IHDR size and a colour type that
 * fits the channel count (palette images may stand for RGB or RGBA). */
static int check_png(const char *fn, int width, int height, int channels, const unsigned char *png, size_t n)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 33 || memcmp(png, sig, 8) != 0 || memcmp(png + 12, "IHDR", 4) != 0)
        return tfx__error(TFX_EINVAL, "%s: the %zu bytes given are not a PNG file", fn, n);
    uint32_t pw = be32(png + 16), ph = be32(png + 20);
    if (pw != (uint32_t)width || ph != (uint32_t)height)
        return tfx__error(TFX_EINVAL, "%s: PNG is %ux%u but width x height = %dx%d", fn, pw, ph, width, height);
    int ct = png[25], ok;
    switch (ct) {
    case 0: ok = channels == 1; break;
    case 4: ok = channels == 2; break;
    case 2: ok = channels == 3; break;
    case 6: ok = channels == 4; break;
    case 3: ok = channels == 3 || channels == 4; break;
    default: ok = 0;
    }
    if (!ok) return tfx__error(TFX_EINVAL, "%s: PNG colour type %d does not fit channels = %d", fn, ct, channels);
    return TFX_OK;
}

int tfx_event_writer_add_image_png(tfx_event_writer *w, const char *tag, int64_t step, int width, int height,
                                   int channels, const unsigned char *png, size_t png_size)
{
    static const char fn[] = "tfx_event_writer_add_image_png";
    TFX__CHECK_NULL(w);
    int rc = check_tag(fn, tag);
    if (rc) return rc;
    TFX__CHECK_NULL(png);
    TFX__CHECK_ARG(width > 0 && height > 0, "%s: image size %dx%d must be positive", fn, width, height);
    TFX__CHECK_ARG(channels >= 1 && channels <= 4, "%s: channels = %d must be 1..4", fn, channels);
    TFX__CHECK_ARG(png_size <= ((size_t)1 << 30), "%s: PNG of %zu bytes is over the 1 GiB limit", fn, png_size);
    rc = check_png(fn, width, height, channels, png, png_size);
    if (!rc) rc = check_usable(w, fn);
    double t;
    if (!rc) rc = get_time(w, fn, &t);
    if (rc) return rc;
    tfx__tb_value v = {0};
    v.tag = tag;
    v.tag_len = strlen(tag);
    v.kind = TFX__TB_IMAGE;
    v.height = height;
    v.width = width;
    v.colorspace = channels;
    v.image = png;
    v.image_len = png_size;
    return emit(w, fn, t, step, NULL, &v);
}

int tfx_event_writer_add_image(tfx_event_writer *w, const char *tag, int64_t step, const tfx_image *img)
{
    static const char fn[] = "tfx_event_writer_add_image";
    TFX__CHECK_NULL(w);
    int rc = check_tag(fn, tag);
    if (rc) return rc;
    TFX__CHECK_NULL(img);
    rc = check_usable(w, fn); /* before spending time on the PNG */
    if (rc) return rc;
    unsigned char *png = NULL;
    size_t size = 0;
    rc = tfx_image_encode_png(img, &png, &size);
    if (rc) return tfx__error_prefix("%s", fn);
    rc = tfx_event_writer_add_image_png(w, tag, step, img->width, img->height, img->channels, png, size);
    tfx_image_png_free(png);
    return rc;
}

int tfx_event_writer_flush(tfx_event_writer *w)
{
    TFX__CHECK_NULL(w);
    int rc = check_usable(w, "tfx_event_writer_flush");
    if (rc) return rc;
    /* Records are already in the file; this makes them durable. Some file systems cannot sync. */
    if (fdatasync(w->fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP) {
        char eb[128];
        int e = errno;
        return tfx__error(TFX_EIO, "tfx_event_writer_flush: syncing '%s' failed: %s", w->path,
                          tfx__strerror(e, eb, sizeof eb));
    }
    return TFX_OK;
}

int tfx_event_writer_close(tfx_event_writer *w)
{
    TFX__CHECK_NULL(w);
    if (w->fd < 0) return TFX_OK;
    /* A failed writer still closes, but the caller learns that the log is incomplete. */
    int rc = w->failed ? tfx__error(TFX_EIO, "tfx_event_writer_close: the writer of '%s' failed earlier (%s)",
                                    w->path, w->fail_msg)
                       : tfx_event_writer_flush(w);
    if (close(w->fd) != 0 && !rc) {
        char eb[128];
        int e = errno;
        rc = tfx__error(TFX_EIO, "tfx_event_writer_close: closing '%s' failed: %s", w->path,
                        tfx__strerror(e, eb, sizeof eb));
    }
    w->fd = -1;
    return rc;
}

void tfx_event_writer_free(tfx_event_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    tfx__free(w->path);
    tfx__free(w);
}
