/* The event-file writer: naming, first record, scalars and images read back, unique names
 * across threads, unwritable directories, disk full (fault hook), allocation failures, and
 * crash safety (a file cut at any byte reads back up to its last whole record). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test_util.h"

static const double T0 = 1700000000.25;

static tfx_event_writer_options clock_opts(const double *t)
{
    tfx_event_writer_options o = TFX_EVENT_WRITER_OPTIONS_INIT;
    o.clock = tb_fixed_clock;
    o.clock_user = (void *)t;
    return o;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* The writer's file name, checked against events.out.tfevents.<%010lld>.<host>.<pid>.<n>.v2;
 * returns n. */
static unsigned check_name(const char *path, const char *dir, long long secs)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[255] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s/events.out.tfevents.%010lld.%s.%ld.", dir, secs, host, (long)getpid());
    assert_true(strncmp(path, prefix, strlen(prefix)) == 0);
    const char *rest = path + strlen(prefix);
    char *end;
    unsigned long n = strtoul(rest, &end, 10);
    assert_true(end != rest);
    assert_string_equal(end, ".v2");
    return (unsigned)n;
}

static void test_options(void **state)
{
    (void)state;
    tfx_event_writer_options o;
    assert_int_equal(tfx_event_writer_options_init(&o, 0), TFX_EVERSION);
    assert_int_equal(tfx_event_writer_options_init(&o, TFX_EVENT_WRITER_OPTIONS_VERSION + 1), TFX_EVERSION);
    assert_int_equal(tfx_event_writer_options_init(NULL, 1), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_options_init(&o, 1), TFX_OK);
    assert_int_equal(o.version, 1);
    assert_null(o.clock);
    tfx_event_writer *w = (tfx_event_writer *)&o;
    o.version = 7;
    assert_int_equal(tfx_event_writer_new(&w, "/tmp", &o), TFX_EVERSION);
    assert_null(w);
    assert_int_equal(tfx_event_writer_new(NULL, "/tmp", NULL), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_new(&w, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_new(&w, "", NULL), TFX_EINVAL);
    double nan = 0.0 / 0.0;
    tfx_event_writer_options c = clock_opts(&nan);
    assert_int_equal(tfx_event_writer_new(&w, "/tmp", &c), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "clock"));
    double huge = 1e30;
    c = clock_opts(&huge);
    assert_int_equal(tfx_event_writer_new(&w, "/tmp", &c), TFX_EINVAL);
    tfx_event_writer_free(NULL);
}

/* Scalars and images go in and come back field for field; the first record is exactly
 * Event{wall_time, "brain.Event:2"}; parent directories are created. */
static void test_write_read_back(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    assert_non_null(tmp);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/logs/run 1/train", tmp);
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *w = NULL;
    assert_int_equal(tfx_event_writer_new(&w, dir, &o), TFX_OK);
    const char *path = tfx_event_writer_path(w);
    check_name(path, dir, 1700000000LL);

    size_t rgb_n;
    unsigned char *rgb = tb_make_png(37, 23, 3, &rgb_n);
    assert_true(rgb_n > 1000); /* multi-byte length prefixes */
    const double vals[4] = {0.0, 0.5, -1.25e-3, 1.0 / 3.0};
    for (int s = 0; s < 4; s++) assert_int_equal(tfx_event_writer_add_scalar(w, "epoch_loss", s, vals[s]), TFX_OK);
    assert_int_equal(tfx_event_writer_add_image_png(w, "Activations Visualization", 0, 4, 3, 1, tb_png_4x3_gray,
                                                    sizeof tb_png_4x3_gray), TFX_OK);
    assert_int_equal(tfx_event_writer_add_image_png(w, "Grad CAM", 1, 37, 23, 3, rgb, rgb_n), TFX_OK);
    assert_int_equal(tfx_event_writer_add_scalar(w, "neg", -5, 2.0), TFX_OK);
    assert_int_equal(tfx_event_writer_flush(w), TFX_OK);
    char *saved = strdup(path);
    assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    assert_int_equal(tfx_event_writer_add_scalar(w, "x", 1, 1.0), TFX_ESTATE);
    assert_int_equal(tfx_event_writer_flush(w), TFX_ESTATE);
    tfx_event_writer_free(w);

    /* first record byte for byte (same encoder as §7.3, which test_tb_format pins down) */
    size_t n;
    unsigned char *bytes = tb_read_all(saved, &n);
    uint8_t first[40];
    assert_int_equal(tfx__tb_encode_event(first + 12, 1, T0, 0, "brain.Event:2", NULL), 24);
    tfx__tfrecord_frame(first, 24);
    assert_true(n > 40);
    assert_memory_equal(bytes, first, 40);
    free(bytes);

    uint8_t *buf;
    size_t size, nev;
    tfx__tb_event *ev;
    assert_int_equal(tfx__tb_read_file(saved, &buf, &size, &ev, &nev), TFX_OK);
    assert_int_equal(nev, 8);
    assert_int_equal(ev[0].file_version_len, 13);
    assert_memory_equal(ev[0].file_version, "brain.Event:2", 13);
    for (size_t i = 0; i < nev; i++) {
        assert_true(ev[i].has_wall_time && ev[i].wall_time == T0);
        assert_int_equal(ev[i].n_values, i == 0 ? 0 : 1);
    }
    for (int s = 0; s < 4; s++) {
        tfx__tb_event *e = &ev[1 + s];
        assert_int_equal(e->step, s);
        assert_int_equal(e->value.kind, TFX__TB_SIMPLE_VALUE);
        assert_int_equal(e->value.tag_len, 10);
        assert_memory_equal(e->value.tag, "epoch_loss", 10);
        assert_true(e->value.simple_value == (float)vals[s]);
    }
    tfx__tb_event *g = &ev[5], *c = &ev[6];
    assert_int_equal(g->step, 0);
    assert_int_equal(g->value.kind, TFX__TB_IMAGE);
    assert_int_equal(g->value.tag_len, strlen("Activations Visualization"));
    assert_memory_equal(g->value.tag, "Activations Visualization", g->value.tag_len);
    assert_int_equal(g->value.width, 4);
    assert_int_equal(g->value.height, 3);
    assert_int_equal(g->value.colorspace, 1);
    assert_int_equal(g->value.image_len, sizeof tb_png_4x3_gray);
    assert_memory_equal(g->value.image, tb_png_4x3_gray, sizeof tb_png_4x3_gray);
    assert_int_equal(c->step, 1);
    assert_int_equal(c->value.width, 37);
    assert_int_equal(c->value.height, 23);
    assert_int_equal(c->value.colorspace, 3);
    assert_int_equal(c->value.image_len, rgb_n);
    assert_memory_equal(c->value.image, rgb, rgb_n);
    assert_int_equal(ev[7].step, -5);
    assert_true(ev[7].value.simple_value == 2.0f);
    tfx__free(ev);
    tfx__free(buf);
    free(rgb);
    free(saved);
    tb_rmtree(tmp);
    free(tmp);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *w;
    assert_int_equal(tfx_event_writer_new(&w, tmp, &o), TFX_OK);
    const unsigned char *png = tb_png_4x3_gray;
    size_t pn = sizeof tb_png_4x3_gray;
    assert_int_equal(tfx_event_writer_add_scalar(NULL, "a", 0, 1.0), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_scalar(w, NULL, 0, 1.0), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_scalar(w, "", 0, 1.0), TFX_EINVAL);
    /* tags that are not UTF-8: protobuf readers reject such a record, so none is written */
    assert_int_equal(tfx_event_writer_add_scalar(w, "loss\xff", 0, 1.0), TFX_EINVAL);
    assert_non_null(
        strstr(tfx_error_last()->message, "tfx_event_writer_add_scalar: tag is not valid UTF-8 (at byte 4)"));
    assert_int_equal(tfx_event_writer_add_image_png(w, "\xed\xa0\x80", 0, 4, 3, 1, png, pn), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "(at byte 0)"));
    tfx_image img8 = {4, 3, 1, 4, (uint8_t *)(uintptr_t)"abcdefghijkl"};
    assert_int_equal(tfx_event_writer_add_image(w, "img/\xc0\xaf", 0, &img8), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "(at byte 4)"));
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 1, NULL, pn), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 3, 4, 1, png, pn), TFX_EINVAL); /* swapped */
    assert_non_null(strstr(tfx_error_last()->message, "4x3"));
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 3, png, pn), TFX_EINVAL); /* grey PNG */
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 5, png, pn), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 0, 3, 1, png, pn), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 1, png, 20), TFX_EINVAL); /* cut PNG */
    unsigned char notpng[83];
    memcpy(notpng, png, pn);
    notpng[1] = 'J';
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 1, notpng, pn), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_image_png(w, "i", 0, 4, 3, 1, png, pn), TFX_OK);
    assert_int_equal(tfx_event_writer_flush(NULL), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_close(NULL), TFX_EINVAL);
    assert_null(tfx_event_writer_path(NULL));
    /* rejected calls wrote nothing: exactly 2 records */
    uint8_t *buf;
    size_t size, nev;
    tfx__tb_event *ev;
    assert_int_equal(tfx__tb_read_file(tfx_event_writer_path(w), &buf, &size, &ev, &nev), TFX_OK);
    assert_int_equal(nev, 2);
    tfx__free(ev);
    tfx__free(buf);
    tfx_event_writer_free(w);
    tb_rmtree(tmp);
    free(tmp);
}

/* Two writers in one process (and many on several threads) never share a file; a name that
 * exists already is skipped. */
#define THREADS 4
#define PER_THREAD 6
typedef struct {
    const char *dir;
    tfx_event_writer *w[PER_THREAD];
    int rc;
} thread_job;

static void *make_writers(void *arg)
{
    thread_job *j = arg;
    tfx_event_writer_options o = clock_opts(&T0);
    j->rc = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (tfx_event_writer_new(&j->w[i], j->dir, &o) != TFX_OK) j->rc = -1;
        else if (tfx_event_writer_add_scalar(j->w[i], "t", i, i) != TFX_OK) j->rc = -1;
    }
    return NULL;
}

static void test_unique_names(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *a, *b, *c;
    assert_int_equal(tfx_event_writer_new(&a, tmp, &o), TFX_OK);
    assert_int_equal(tfx_event_writer_new(&b, tmp, &o), TFX_OK);
    assert_string_not_equal(tfx_event_writer_path(a), tfx_event_writer_path(b));
    unsigned na = check_name(tfx_event_writer_path(a), tmp, 1700000000LL);
    unsigned nb = check_name(tfx_event_writer_path(b), tmp, 1700000000LL);
    assert_true(nb > na);
    /* occupy the next few names: the next writer must step over them */
    char p[4096];
    strcpy(p, tfx_event_writer_path(b));
    char *dot = strrchr(p, '.');
    *dot = '\0';
    dot = strrchr(p, '.');
    for (unsigned k = 1; k <= 5; k++) {
        sprintf(dot + 1, "%u.v2", nb + k);
        tb_write_all(p, "occupied", 8);
    }
    assert_int_equal(tfx_event_writer_new(&c, tmp, &o), TFX_OK);
    assert_true(check_name(tfx_event_writer_path(c), tmp, 1700000000LL) > nb + 5);
    tfx_event_writer_free(a);
    tfx_event_writer_free(b);
    tfx_event_writer_free(c);

    /* threads */
    thread_job jobs[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t].dir = tmp;
        assert_int_equal(pthread_create(&th[t], NULL, make_writers, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) assert_int_equal(jobs[t].rc, 0);
    for (int t = 0; t < THREADS * PER_THREAD; t++)
        for (int u = t + 1; u < THREADS * PER_THREAD; u++)
            assert_string_not_equal(tfx_event_writer_path(jobs[t / PER_THREAD].w[t % PER_THREAD]),
                                    tfx_event_writer_path(jobs[u / PER_THREAD].w[u % PER_THREAD]));
    assert_int_equal(count_files(tmp), 3 + 5 + THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            uint8_t *buf;
            size_t size, nev;
            tfx__tb_event *ev;
            assert_int_equal(tfx_event_writer_close(jobs[t].w[i]), TFX_OK);
            assert_int_equal(tfx__tb_read_file(tfx_event_writer_path(jobs[t].w[i]), &buf, &size, &ev, &nev), TFX_OK);
            assert_int_equal(nev, 2);
            assert_int_equal(ev[1].step, i);
            tfx__free(ev);
            tfx__free(buf);
            tfx_event_writer_free(jobs[t].w[i]);
        }
    }
    tb_rmtree(tmp);
    free(tmp);
}

/* An output dir that cannot be created or written: TFX_EIO naming the path, no file left.
 * (Tests run as root, so permissions do not stop them: use a regular file as a parent.) */
static void test_unwritable_dir(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    char file[4096], dir[8192];
    snprintf(file, sizeof file, "%s/plain_file", tmp);
    tb_write_all(file, "x", 1);
    tfx_event_writer *w = (tfx_event_writer *)file;
    /* a parent is a regular file */
    snprintf(dir, sizeof dir, "%s/sub/run", file);
    assert_int_equal(tfx_event_writer_new(&w, dir, NULL), TFX_EIO);
    assert_null(w);
    assert_int_equal(tfx_error_last()->code, TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, file));
    assert_non_null(strstr(tfx_error_last()->message, "Not a directory"));
    /* the logdir itself is a regular file */
    assert_int_equal(tfx_event_writer_new(&w, file, NULL), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, file));
    /* a read-only file system */
    assert_int_equal(tfx_event_writer_new(&w, "/proc/tfx_no_such_dir/run", NULL), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "/proc/tfx_no_such_dir"));
    assert_int_equal(count_files(tmp), 1);
    /* a trailing slash and doubled slashes are fine */
    snprintf(dir, sizeof dir, "%s//a//b/", tmp);
    assert_int_equal(tfx_event_writer_new(&w, dir, NULL), TFX_OK);
    assert_non_null(strstr(tfx_event_writer_path(w), "/b/events.out.tfevents."));
    tfx_event_writer_free(w);
    tb_rmtree(tmp);
    free(tmp);
}

/* One session: new, then records; returns how many records the writer accepted (first
 * record included) or -1 if new() failed. Checks every error on the way. */
static int disk_full_session(const char *dir, const unsigned char *png, size_t png_n, char *path_out)
{
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *w;
    path_out[0] = '\0';
    int rc = tfx_event_writer_new(&w, dir, &o);
    if (rc) {
        assert_int_equal(rc, TFX_EIO);
        assert_non_null(strstr(tfx_error_last()->message, dir));
        assert_non_null(strstr(tfx_error_last()->message, "No space left"));
        /* the message says what happened to the file: it is gone, not "keeps its 0 records" */
        assert_non_null(strstr(tfx_error_last()->message, "(the file was removed)"));
        assert_null(strstr(tfx_error_last()->message, "keeps"));
        return -1;
    }
    strcpy(path_out, tfx_event_writer_path(w));
    int ok = 1;
    for (int i = 0; i < 4 && rc == 0; i++) {
        rc = (i == 2) ? tfx_event_writer_add_image_png(w, "img", i, 37, 23, 3, png, png_n)
                      : tfx_event_writer_add_scalar(w, "loss", i, 1.0 / (i + 1));
        if (rc == 0) ok++;
    }
    if (rc) {
        assert_int_equal(rc, TFX_EIO);
        assert_non_null(strstr(tfx_error_last()->message, path_out));
        assert_non_null(strstr(tfx_error_last()->message, "No space left"));
        char keeps[64];
        snprintf(keeps, sizeof keeps, "(the file keeps its %d whole records)", ok);
        assert_non_null(strstr(tfx_error_last()->message, keeps));
        /* a failed writer refuses further work cleanly, even with space again */
        tfx__tb_fail_write_after(-1);
        assert_int_equal(tfx_event_writer_add_scalar(w, "loss", 9, 1.0), TFX_EIO);
        assert_non_null(strstr(tfx_error_last()->message, "failed earlier"));
        assert_int_equal(tfx_event_writer_flush(w), TFX_EIO);
        assert_int_equal(tfx_event_writer_close(w), TFX_EIO);
    } else {
        assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    }
    tfx_event_writer_free(w);
    return ok;
}

static void test_disk_full(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    size_t png_n;
    unsigned char *png = tb_make_png(37, 23, 3, &png_n);
    char path[4096];
    /* bytes of the complete session */
    tfx__tb_fail_write_after(-1);
    assert_int_equal(disk_full_session(tmp, png, png_n, path), 5);
    size_t total = 0;
    free(tb_read_all(path, &total));
    unlink(path);
    /* the budget runs out at every byte (a stride under valgrind) */
    size_t stride = tb_is_valgrind() ? 97 : 1;
    for (size_t k = 0; k < total; k += stride) {
        tfx__tb_fail_write_after((long long)k);
        int ok = disk_full_session(tmp, png, png_n, path);
        tfx__tb_fail_write_after(-1);
        if (ok < 0) {
            assert_true(k < 40);
            assert_int_equal(count_files(tmp), 0); /* no empty file left behind */
            continue;
        }
        /* the file holds exactly the accepted records, all whole */
        size_t n;
        unsigned char *bytes = tb_read_all(path, &n);
        size_t count, end;
        int trunc;
        assert_int_equal(tfx__tfrecord_walk(bytes, n, NULL, NULL, &count, &end, &trunc), TFX_OK);
        assert_int_equal(count, (size_t)ok);
        assert_int_equal(end, n);
        assert_true(n <= k);
        free(bytes);
        unlink(path);
    }
    free(png);
    tb_rmtree(tmp);
    free(tmp);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/a/b", tmp);
    int done = 0;
    for (long k = 1; k < 200 && !done; k++) {
        tfx_event_writer_options o = clock_opts(&T0);
        tfx_event_writer *w = NULL;
        tfx__alloc_fail_after(k);
        int rc = tfx_event_writer_new(&w, dir, &o);
        if (rc == TFX_OK) rc = tfx_event_writer_add_scalar(w, "loss", 1, 0.5);
        if (rc == TFX_OK)
            rc = tfx_event_writer_add_image_png(w, "i", 1, 4, 3, 1, tb_png_4x3_gray, sizeof tb_png_4x3_gray);
        tfx__alloc_fail_after(0);
        /* add_image is left out: stb's zlib writer does not survive a failed realloc (reported) */
        if (rc == TFX_OK) done = 1;
        else assert_int_equal(rc, TFX_ENOMEM);
        if (w) {
            /* whatever was accepted is in the file, whole */
            uint8_t *buf;
            size_t size, nev;
            tfx__tb_event *ev;
            assert_int_equal(tfx__tb_read_file(tfx_event_writer_path(w), &buf, &size, &ev, &nev), TFX_OK);
            assert_true(nev >= 1 && nev <= 3);
            assert_int_equal(nev == 3, done);
            tfx__free(ev);
            tfx__free(buf);
            unlink(tfx_event_writer_path(w));
        }
        tfx_event_writer_free(w);
        assert_int_equal(count_files(dir), 0);
    }
    assert_true(done);
    tb_rmtree(tmp);
    free(tmp);
}

/* Crash safety: a file cut at every byte reads back (own reader) exactly the records that
 * end before the cut; TensorBoard-style reading (tfx__tb_read_file) ignores the partial tail. */
static void test_cut_at_every_byte(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *w;
    assert_int_equal(tfx_event_writer_new(&w, tmp, &o), TFX_OK);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(tfx_event_writer_add_scalar(w, "train/epoch_loss", s, 2.0 - s), TFX_OK);
        assert_int_equal(tfx_event_writer_add_image_png(w, "Grad CAM", s, 4, 3, 1, tb_png_4x3_gray,
                                                        sizeof tb_png_4x3_gray), TFX_OK);
    }
    char path[4096];
    strcpy(path, tfx_event_writer_path(w));
    assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    tfx_event_writer_free(w);
    size_t n = 0;
    unsigned char *bytes = tb_read_all(path, &n);
    /* record boundaries from a clean walk */
    size_t ends[16], nrec = 0, off = 0;
    while (off < n) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | bytes[off + i];
        off += 16 + (size_t)len;
        ends[nrec++] = off;
    }
    assert_int_equal(nrec, 7);
    assert_int_equal(off, n);
    char cut[4096];
    snprintf(cut, sizeof cut, "%s/cut.tfevents", tmp);
    size_t stride = tb_is_valgrind() ? 7 : 1;
    for (size_t k = 0; k <= n; k += (k + stride > n && k < n) ? n - k : stride) {
        size_t want = 0;
        while (want < nrec && ends[want] <= k) want++;
        size_t count, end;
        int trunc;
        int rc = tfx__tfrecord_walk(bytes, k, NULL, NULL, &count, &end, &trunc);
        assert_int_equal(count, want);
        assert_int_equal(end, want ? ends[want - 1] : 0);
        assert_int_equal(rc != TFX_OK, trunc);
        assert_int_equal(trunc, end != k);
        /* the same through a real file */
        tb_write_all(cut, bytes, k);
        uint8_t *buf;
        size_t size, nev;
        tfx__tb_event *ev;
        assert_int_equal(tfx__tb_read_file(cut, &buf, &size, &ev, &nev), TFX_OK);
        assert_int_equal(nev, want);
        if (want > 1) {
            tfx__tb_event *last = &ev[want - 1];
            assert_int_equal(last->step, (int64_t)((want - 2) / 2));
            assert_int_equal(last->value.kind, (want % 2) ? TFX__TB_IMAGE : TFX__TB_SIMPLE_VALUE);
        }
        tfx__free(ev);
        tfx__free(buf);
    }
    free(bytes);
    tb_rmtree(tmp);
    free(tmp);
}

/* A tfx_image (with padded rows) goes in as PNG; the stored PNG is what tfx_image_encode_png
 * gives and decodes back to the same pixels. */
static void test_add_tfx_image(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tfx_event_writer_options o = clock_opts(&T0);
    tfx_event_writer *w;
    assert_int_equal(tfx_event_writer_new(&w, tmp, &o), TFX_OK);
    uint8_t px[4 * 16];
    for (int i = 0; i < 4 * 16; i++) px[i] = (uint8_t)(i * 37 + 5);
    tfx_image img = {5, 4, 3, 16, px}; /* 15 bytes per row used, stride 16 */
    assert_int_equal(tfx_event_writer_add_image(w, "Grad CAM", 3, &img), TFX_OK);
    assert_int_equal(tfx_event_writer_add_image(w, "Grad CAM", 3, NULL), TFX_EINVAL);
    assert_int_equal(tfx_event_writer_add_image(w, NULL, 3, &img), TFX_EINVAL);
    tfx_image bad = img;
    bad.channels = 7;
    assert_int_not_equal(tfx_event_writer_add_image(w, "x", 3, &bad), TFX_OK);
    char path[4096];
    strcpy(path, tfx_event_writer_path(w));
    assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    assert_int_equal(tfx_event_writer_add_image(w, "Grad CAM", 4, &img), TFX_ESTATE);
    tfx_event_writer_free(w);

    unsigned char *png;
    size_t png_n;
    assert_int_equal(tfx_image_encode_png(&img, &png, &png_n), TFX_OK);
    uint8_t *buf;
    size_t size, nev;
    tfx__tb_event *ev;
    assert_int_equal(tfx__tb_read_file(path, &buf, &size, &ev, &nev), TFX_OK);
    assert_int_equal(nev, 2);
    assert_int_equal(ev[1].step, 3);
    assert_int_equal(ev[1].value.kind, TFX__TB_IMAGE);
    assert_int_equal(ev[1].value.width, 5);
    assert_int_equal(ev[1].value.height, 4);
    assert_int_equal(ev[1].value.colorspace, 3);
    assert_int_equal(ev[1].value.image_len, png_n);
    assert_memory_equal(ev[1].value.image, png, png_n);
    tfx_image *back = NULL;
    assert_int_equal(tfx_image_decode(&back, ev[1].value.image, ev[1].value.image_len, 0), TFX_OK);
    assert_int_equal(back->width, 5);
    assert_int_equal(back->height, 4);
    assert_int_equal(back->channels, 3);
    for (int r = 0; r < 4; r++) assert_memory_equal(back->pixels + r * back->stride, px + r * 16, 15);
    tfx_image_free(back);
    tfx_image_png_free(png);
    tfx__free(ev);
    tfx__free(buf);
    tb_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),        cmocka_unit_test(test_write_read_back),
        cmocka_unit_test(test_bad_arguments),  cmocka_unit_test(test_unique_names),
        cmocka_unit_test(test_unwritable_dir), cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_cut_at_every_byte),
        cmocka_unit_test(test_add_tfx_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
