/* Every public file reader given a FIFO or a device (docs/security.md): refused at once with
 * TFX_EIO naming the path. A FIFO without a writer used to block in open() forever and
 * /dev/zero was read up to each reader's cap (16 GiB for models). */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfx/tfx.h"

static char dir[256], fifo[300], regular[300];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tfx-special-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) return -1;
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(regular, sizeof regular, "%s/labels", dir);
    FILE *f = fopen(regular, "wb");
    if (!f) return -1;
    fwrite("\0\0\x08\x01\0\0\0\0", 1, 8, f); /* an IDX label file of 0 labels */
    fclose(f);
    /* A regression blocks: the alarm then ends the test as a failure instead of a hang. */
    alarm(30);
    return mkfifo(fifo, 0600);
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    unlink(fifo);
    unlink(regular);
    rmdir(dir);
    return 0;
}

static void expect_refused(int rc, const char *path, const char *kind)
{
    char want[400];
    snprintf(want, sizeof want, "'%s' is not a regular file (%s)", path, kind);
    if (rc != TFX_EIO || strstr(tfx_error_last()->message, want) == NULL)
        fail_msg("rc %d, \"%s\" (want %d, \"%s\")", rc, tfx_error_last()->message, TFX_EIO, want);
}

static void each_reader(const char *path, const char *kind)
{
    tfx_model *m = (tfx_model *)1;
    expect_refused(tfx_model_load(&m, path), path, kind);
    assert_null(m);
    tfx_image *img = (tfx_image *)1;
    expect_refused(tfx_image_load(&img, path, 0), path, kind);
    assert_null(img);
    tfx_dataset *ds = (tfx_dataset *)1;
    expect_refused(tfx_dataset_load_idx(&ds, path, regular, NULL), path, kind);
    assert_null(ds);
    ds = (tfx_dataset *)1;
    expect_refused(tfx_dataset_load_idx(&ds, regular, path, NULL), path, kind);
    assert_null(ds);
    const char *paths[2] = {regular, path};
    ds = (tfx_dataset *)1;
    expect_refused(tfx_dataset_load_cifar10(&ds, paths + 1, 1, NULL), path, kind);
    assert_null(ds);
    /* the streaming readers open the files themselves (issue 20) */
    tfx_stream *st = (tfx_stream *)1;
    expect_refused(tfx_stream_open_idx(&st, path, regular, NULL), path, kind);
    assert_null(st);
    st = (tfx_stream *)1;
    expect_refused(tfx_stream_open_idx(&st, regular, path, NULL), path, kind);
    assert_null(st);
    st = (tfx_stream *)1;
    expect_refused(tfx_stream_open_cifar10(&st, paths + 1, 1, NULL), path, kind);
    assert_null(st);
}

static void test_fifo(void **state)
{
    (void)state;
    each_reader(fifo, "a FIFO");
}

static void test_device(void **state)
{
    (void)state;
    each_reader("/dev/zero", "a character device");
    each_reader("/dev/null", "a character device");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_device),
    };
    return cmocka_run_group_tests_name("special_files", tests, setup, teardown);
}
