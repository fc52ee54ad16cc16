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
#include <sys/wait.h>
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
    /* A device that never ends is not read at all (it used to be read up to the cap). */
    CHECK_ERR(tfx__file_read("fn", "/dev/zero", 100000, &buf, &len), TFX_EIO,
              "'/dev/zero' is not a regular file (a character device)");
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

/* A FIFO without a writer: open() used to wait forever; now it is refused at once. */
static void test_read_fifo(void **state)
{
    (void)state;
    char p[300], want[400];
    path_of(p, sizeof p, "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    unsigned char *buf = (unsigned char *)1;
    size_t len = 1;
    alarm(10); /* a regression hangs: let the alarm end it as a failure */
    snprintf(want, sizeof want, "fn: '%s' is not a regular file (a FIFO)", p);
    CHECK_ERR(tfx__file_read("fn", p, 100, &buf, &len), TFX_EIO, want);
    alarm(0);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(unlink(p), 0);
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void read_back(const char *p, const char *want)
{
    unsigned char *buf;
    size_t len;
    assert_int_equal(tfx__file_read("fn", p, 100, &buf, &len), TFX_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    tfx__free(buf);
}

/* Writing through a symbolic link replaces the file it points to; the link stays a link. */
static void test_write_symlink(void **state)
{
    (void)state;
    char sub[300], real[300], link[300], link2[300], st_path[300];
    path_of(sub, sizeof sub, "links");
    assert_int_equal(mkdir(sub, 0777), 0);
    path_of(real, sizeof real, "links/real.bin");
    path_of(link, sizeof link, "link.bin");
    path_of(link2, sizeof link2, "link2.bin");
    write_bytes(real, "old", 3);
    assert_int_equal(symlink("links/real.bin", link), 0); /* relative to the link's directory */
    assert_int_equal(symlink(link, link2), 0);            /* absolute, a chain of two */
    assert_int_equal(tfx__file_write_atomic("fn", link2, "new!", 4), TFX_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(link2, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    read_back(real, "new!");
    /* The temporary file was made next to the target, and is gone. */
    DIR *d = opendir(sub);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);

    /* A dangling link: its target is created. */
    path_of(st_path, sizeof st_path, "dangling.bin");
    assert_int_equal(symlink("links/created.bin", st_path), 0);
    assert_int_equal(tfx__file_write_atomic("fn", st_path, "made", 4), TFX_OK);
    assert_int_equal(lstat(st_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    path_of(real, sizeof real, "links/created.bin");
    read_back(real, "made");

    /* A loop: refused, nothing written. */
    path_of(link, sizeof link, "loop-a");
    path_of(link2, sizeof link2, "loop-b");
    assert_int_equal(symlink("loop-b", link), 0);
    assert_int_equal(symlink("loop-a", link2), 0);
    const int before = count_entries();
    CHECK_ERR(tfx__file_write_atomic("fn", link, "x", 1), TFX_EIO, "symbolic links");
    assert_non_null(strstr(tfx_error_last()->message, "loop-a"));
    assert_int_equal(count_entries(), before);
}

/* Temporary files left by a save that was killed are removed by the next save of the same
 * target; a live process's (another save under way) and other names are left alone. */
static void test_stale_temps(void **state)
{
    (void)state;
    char sub[300], target[300], p[400];
    path_of(sub, sizeof sub, "stale");
    assert_int_equal(mkdir(sub, 0777), 0);
    path_of(target, sizeof target, "stale/model.tfx");
    /* A pid that is surely not running: a child that has exited and been reaped. */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0) _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    struct {
        const char *fmt;
        long pid;
        int removed;
    } files[] = {
        {"%s/model.tfx.tfx-tmp-%ld-0123abcd", (long)dead, 1},       /* stale: removed */
        {"%s/model.tfx.tfx-tmp-%ld-deadbeef", (long)getpid(), 0},   /* live (ours): kept */
        {"%s/other.tfx.tfx-tmp-%ld-0123abcd", (long)dead, 0},       /* another target */
        {"%s/model.tfx.tfx-tmp-%ld-0123abcd.bak", (long)dead, 0},   /* not our name */
        {"%s/model.tfx.tfx-tmp-%ld-0123ABCD", (long)dead, 0},       /* not our name */
        {"%s/model.tfx.tmp-%ld", (long)dead, 0},                    /* not our name */
        {"%s/xmodel.tfx.tfx-tmp-%ld-0123abcd", (long)dead, 0},      /* another target */
    };
    const size_t nf = sizeof files / sizeof files[0];
    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, files[i].fmt, sub, files[i].pid);
        write_bytes(p, "leftover", 8);
    }
    assert_int_equal(tfx__file_write_atomic("fn", target, "saved", 5), TFX_OK);
    read_back(target, "saved");
    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, files[i].fmt, sub, files[i].pid);
        if (exists(p) != !files[i].removed) fail_msg("%s: %s", p, exists(p) ? "still there" : "removed");
    }
    /* A failed save also leaves no temporary of its own, whatever its name. */
    tfx__file_fail_after_bytes(2);
    CHECK_ERR(tfx__file_write_atomic("fn", target, "again", 5), TFX_EIO, "the previous file is unchanged");
    tfx__file_fail_after_bytes(-1);
    read_back(target, "saved");
    DIR *d = opendir(sub);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, (int)nf); /* the target and the six that stayed */
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
        cmocka_unit_test(test_read_fifo),
        cmocka_unit_test(test_write_symlink),
        cmocka_unit_test(test_stale_temps),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests_name("file", tests, setup, teardown);
}
