/* core/file.c, the file plumbing under saving, datasets, images and TensorBoard: whole-file
 * reads under a cap (growing with the bytes read, refusing directories), atomic replacement
 * (old file intact and no temporary left when a write fails, permissions kept) and mkdir -p. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
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

#include "core/file.h"
#include "core/internal.h"
#include "testing.h"
#include "tfx/tfx.h"

static char dir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tfx-file-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

static void write_bytes(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

#define CHECK_ERR(call, code, substr)                                                              \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        int rc__ = (call);                                                                         \
        if (rc__ != (code) || !strstr(tfx_error_last()->message, (substr)))                        \
            fail_msg("rc %d (want %d), message \"%s\" (want \"%s\")", rc__, (code),                \
                     tfx_error_last()->message, (substr));                                         \
    } while (0)

static void test_read_cap(void **state)
{
    (void)state;
    char p[300];
    path_of(p, sizeof p, "cap.bin");
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
    write_bytes(p, data, sizeof data);
    unsigned char *buf;
    size_t len;
    /* Exactly at the cap is fine; one byte less is refused before anything is read. */
    assert_int_equal(tfx__file_read("fn", p, sizeof data, &buf, &len), TFX_OK);
    assert_int_equal(len, sizeof data);
    assert_memory_equal(buf, data, sizeof data);
    tfx__free(buf);
    CHECK_ERR(tfx__file_read("fn", p, sizeof data - 1, &buf, &len), TFX_EFORMAT, "above the limit of 999 bytes");
    assert_null(buf);
    assert_int_equal(len, 0);
    /* Without a size to trust (a device that never ends), growth stops at the cap. */
    CHECK_ERR(tfx__file_read("fn", "/dev/zero", 100000, &buf, &len), TFX_EFORMAT, "holds more than the limit");
    assert_null(buf);
    /* An empty file: a buffer, no bytes. */
    path_of(p, sizeof p, "empty.bin");
    write_bytes(p, "", 0);
    assert_int_equal(tfx__file_read(NULL, p, 10, &buf, &len), TFX_OK);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    tfx__free(buf);
}

static void test_read_errors(void **state)
{
    (void)state;
    unsigned char *buf;
    size_t len;
    CHECK_ERR(tfx__file_read("my_fn", dir, 100, &buf, &len), TFX_EIO, "is a directory");
    assert_non_null(strstr(tfx_error_last()->message, "my_fn: "));
    char p[300];
    path_of(p, sizeof p, "missing");
    CHECK_ERR(tfx__file_read(NULL, p, 100, &buf, &len), TFX_EIO, "No such file or directory");
    assert_true(strncmp(tfx_error_last()->message, "cannot open", 11) == 0); /* no prefix without fn */
    /* Allocation failure: no leak, ENOMEM. */
    path_of(p, sizeof p, "small.bin");
    write_bytes(p, "abc", 3);
    tfx__alloc_fail_after(1);
    CHECK_ERR(tfx__file_read("fn", p, 100, &buf, &len), TFX_ENOMEM, "out of memory");
    tfx__alloc_fail_after(0);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char p[300];
    path_of(p, sizeof p, "atomic.bin");
    const int before = count_entries();
    assert_int_equal(tfx__file_write_atomic("fn", p, "first", 5), TFX_OK);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(tfx__file_write_atomic("fn", p, "second!", 7), TFX_OK);
    unsigned char *buf;
    size_t len;
    assert_int_equal(tfx__file_read("fn", p, 100, &buf, &len), TFX_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "second!", 7);
    tfx__free(buf);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640); /* the replaced file's permissions */
    assert_int_equal(count_entries(), before + 1);

    /* A write cut short (the test hook): the old file stays, no temporary is left. */
    for (long cut = 0; cut < 4; cut++) {
        tfx__file_fail_after_bytes(cut);
        CHECK_ERR(tfx__file_write_atomic("fn", p, "third...", 8), TFX_EIO, "the previous file is unchanged");
        tfx__file_fail_after_bytes(-1);
        assert_int_equal(tfx__file_read("fn", p, 100, &buf, &len), TFX_OK);
        assert_int_equal(len, 7);
        assert_memory_equal(buf, "second!", 7);
        tfx__free(buf);
        assert_int_equal(count_entries(), before + 1);
    }
    /* A directory in the way: the rename fails, the temporary is removed. */
    char d[300];
    path_of(d, sizeof d, "adir");
    assert_int_equal(mkdir(d, 0777), 0);
    CHECK_ERR(tfx__file_write_atomic("fn", d, "x", 1), TFX_EIO, "renaming the temporary file");
    assert_int_equal(count_entries(), before + 2);
    /* No directory to put the temporary in. */
    path_of(p, sizeof p, "nodir/x.bin");
    CHECK_ERR(tfx__file_write_atomic("fn", p, "x", 1), TFX_EIO, "cannot create a temporary file");
}

static void test_mkdirs(void **state)
{
    (void)state;
    char p[400];
    snprintf(p, sizeof p, "%s/a/b//c/", dir);
    assert_int_equal(tfx__file_mkdirs("fn", p), TFX_OK);
    assert_int_equal(tfx__file_mkdirs("fn", p), TFX_OK); /* existing: fine */
    struct stat st;
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A file where a directory should be. */
    char f[300];
    path_of(f, sizeof f, "a/file");
    write_bytes(f, "x", 1);
    snprintf(p, sizeof p, "%s/a/file/sub", dir);
    CHECK_ERR(tfx__file_mkdirs("fn", p), TFX_EIO, "Not a directory");
    assert_non_null(strstr(tfx_error_last()->message, "cannot create directory"));
}

static void test_strerror(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(tfx__strerror(ENOENT, b, sizeof b), "No such file or directory");
    assert_non_null(tfx__strerror(123456, b, sizeof b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_cap),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests_name("file", tests, setup, teardown);
}
