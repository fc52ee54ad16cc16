/* File plumbing (core/file.h): whole-file reads, atomic writes, mkdir -p. POSIX only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/hooks.h"
#include "core/internal.h"

#define READ_CHUNK ((size_t)1 << 16) /* first buffer when the size is not known (pipes, devices) */
#define WRITE_CHUNK ((size_t)1 << 30)

_Thread_local long tfx__hook_file_fail_after = -1;

/* "fn: " or "" for messages. */
static const char *sep(const char *fn) { return fn ? ": " : ""; }
#define FN(fn) ((fn) ? (fn) : "")

/* ---- reading ---- */

const char *tfx__file_kind(unsigned mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a file";
}

int tfx__buf_grow(unsigned char **buf, size_t *cap, size_t need, size_t hard)
{
    size_t c = *cap ? *cap : need;
    while (c < need) c = c > SIZE_MAX / 2 ? SIZE_MAX : c * 2;
    if (c > hard) c = hard;
    if (c < need) return -1;
    unsigned char *p = tfx__realloc(*buf, c);
    if (p == NULL) return -2;
    *buf = p;
    *cap = c;
    return 0;
}

int tfx__file_open_regular(const char *fn, const char *path, int *out_fd, struct stat *st)
{
    char eb[128];
    *out_fd = -1;
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever. Only regular
     * files are read (a FIFO, a socket or a device such as /dev/zero never has a size to trust
     * and may never end), so the flag is cleared again before reading. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return tfx__error(TFX_EIO, "%s%scannot open '%s': %s", FN(fn), sep(fn), path,
                          tfx__strerror(e, eb, sizeof eb));
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return tfx__error(TFX_EIO, "%s%scannot stat '%s': %s", FN(fn), sep(fn), path,
                          tfx__strerror(e, eb, sizeof eb));
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        return tfx__error(TFX_EIO, "%s%s'%s' is a directory", FN(fn), sep(fn), path);
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return tfx__error(TFX_EIO, "%s%s'%s' is not a regular file (%s)", FN(fn), sep(fn), path,
                          tfx__file_kind(st->st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
        int e = errno;
        close(fd);
        return tfx__error(TFX_EIO, "%s%scannot read '%s': %s", FN(fn), sep(fn), path,
                          tfx__strerror(e, eb, sizeof eb));
    }
    *out_fd = fd;
    return TFX_OK;
}

int tfx__file_read(const char *fn, const char *path, size_t max_bytes, unsigned char **out, size_t *len)
{
    char eb[128];
    *out = NULL;
    *len = 0;
    int fd;
    struct stat st;
    int rc = tfx__file_open_regular(fn, path, &fd, &st);
    if (rc) return rc;
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        close(fd);
        return tfx__error(TFX_EFORMAT, "%s%s'%s' is %lld bytes, above the limit of %zu bytes", FN(fn), sep(fn), path,
                          (long long)st.st_size, max_bytes);
    }
    /* One byte beyond the cap tells "too large" from "exactly at the cap"; one byte beyond a
     * regular file's size lets the read see EOF without growing. */
    const size_t hard = max_bytes < SIZE_MAX ? max_bytes + 1 : SIZE_MAX;
    size_t first = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : READ_CHUNK;
    if (first > hard) first = hard;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int g = tfx__buf_grow(&buf, &cap, first, hard);
    while (g == 0) {
        if (n == cap) {
            g = tfx__buf_grow(&buf, &cap, n + 1, hard);
            if (g) break;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            tfx__free(buf);
            close(fd);
            return tfx__error(TFX_EIO, "%s%sreading '%s' failed: %s", FN(fn), sep(fn), path,
                              tfx__strerror(e, eb, sizeof eb));
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    close(fd);
    if (g == -1 || n > max_bytes) {
        tfx__free(buf);
        return tfx__error(TFX_EFORMAT, "%s%s'%s' holds more than the limit of %zu bytes", FN(fn), sep(fn), path,
                          max_bytes);
    }
    if (g != 0) {
        tfx__free(buf);
        return tfx__error(TFX_ENOMEM, "%s%sout of memory reading '%s'", FN(fn), sep(fn), path);
    }
    *out = buf;
    *len = n;
    return TFX_OK;
}

/* ---- atomic writes ---- */

/* Write everything, retrying short writes; the test hook cuts the write short. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > WRITE_CHUNK) chunk = WRITE_CHUNK;
        if (tfx__hook_file_fail_after >= 0) {
            if (done >= (size_t)tfx__hook_file_fail_after) {
                errno = EIO;
                return -1;
            }
            if (chunk > (size_t)tfx__hook_file_fail_after - done) chunk = (size_t)tfx__hook_file_fail_after - done;
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

/* Temporary files are named "<target>.tfx-tmp-<pid>-<8 hex>" so that a later save can tell
 * its own leftovers (a crash, SIGKILL, power loss mid-save) from anything else. */
#define TMP_TAG ".tfx-tmp-"
#define TMP_EXTRA 40 /* strlen(TMP_TAG) + a pid + '-' + 8 hex + NUL, with room to spare */

/* Open a new file next to path with a unique name. mkstemp would make it 0600; O_EXCL with
 * mode 0666 gives the permissions (umask) an ordinary new file gets. */
static int open_temp(const char *path, char *tmp, size_t tmp_len)
{
    static _Thread_local unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long pid = (long)getpid();
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)pid << 20 ^ ++counter ^
                     (uint64_t)(uintptr_t)&counter;
        x ^= x >> 29;
        snprintf(tmp, tmp_len, "%s" TMP_TAG "%ld-%08lx", path, pid, (unsigned long)(x & 0xffffffffu));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
        ts.tv_nsec += 7919;
    }
    return -1;
}

/* The pid of a temporary file name of `base` ("<base>.tfx-tmp-<pid>-<hex>"), or -1 for any
 * other name. Strict, so that nothing else is ever taken for a leftover. */
static long temp_pid(const char *name, const char *base, size_t blen)
{
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, TMP_TAG, sizeof TMP_TAG - 1) != 0) return -1;
    const char *p = name + blen + sizeof TMP_TAG - 1;
    long pid = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits >= 9) return -1;
        pid = pid * 10 + (*p - '0');
    }
    if (digits == 0 || pid <= 0 || *p++ != '-') return -1;
    int hex = 0;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++) hex++;
    return hex == 8 && *p == '\0' ? pid : -1;
}

/* Remove the temporary files of `target` left by processes that no longer exist (best effort:
 * a directory that cannot be read or an unlink that fails changes nothing). A temporary of a
 * live process, ours included, is another save under way and stays. */
static void remove_stale_temps(const char *target)
{
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t blen = strlen(base), dlen = slash ? (size_t)(slash - target) + 1 : 0;
    if (blen == 0) return;
    char dir[PATH_MAX];
    if (dlen == 0) snprintf(dir, sizeof dir, ".");
    else if (dlen < sizeof dir) {
        memcpy(dir, target, dlen);
        dir[dlen] = '\0';
    } else return;
    DIR *d = opendir(dir);
    if (!d) return;
    char full[PATH_MAX];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temp_pid(e->d_name, base, blen);
        if (pid < 0) continue;
        if (!(kill((pid_t)pid, 0) == -1 && errno == ESRCH)) continue; /* alive, or not ours to judge */
        if (snprintf(full, sizeof full, "%.*s%s", (int)dlen, target, e->d_name) >= (int)sizeof full) continue;
        (void)unlink(full);
    }
    closedir(d);
}

/* The file a write to `path` must replace: `path` itself, or where its chain of symbolic links
 * ends (which may not exist yet: a dangling link creates its target). Renaming over a link
 * would replace the link with a file. *out is a new string (tfx__free). */
static int resolve_target(const char *fn, const char *path, char **out)
{
    char eb[128];
    size_t len = strlen(path);
    char *cur = tfx__malloc(len + 1);
    if (!cur) return tfx__error(TFX_ENOMEM, "%s%sout of memory", FN(fn), sep(fn));
    memcpy(cur, path, len + 1);
    char link[PATH_MAX];
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break; /* missing or not a link: the target */
        if (hops == 40) { /* Linux's own limit */
            tfx__free(cur);
            return tfx__error(TFX_EIO, "%s%scannot write '%s': %s", FN(fn), sep(fn), path,
                              tfx__strerror(ELOOP, eb, sizeof eb));
        }
        ssize_t k = readlink(cur, link, sizeof link - 1);
        if (k < 0) {
            int e = errno;
            tfx__free(cur);
            return tfx__error(TFX_EIO, "%s%scannot read the symbolic link '%s': %s", FN(fn), sep(fn), path,
                              tfx__strerror(e, eb, sizeof eb));
        }
        link[k] = '\0';
        /* A relative link is relative to the directory holding the link. */
        const char *slash = strrchr(cur, '/');
        size_t keep = link[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1;
        char *next = tfx__malloc(keep + (size_t)k + 1);
        if (!next) {
            tfx__free(cur);
            return tfx__error(TFX_ENOMEM, "%s%sout of memory", FN(fn), sep(fn));
        }
        memcpy(next, cur, keep);
        memcpy(next + keep, link, (size_t)k + 1);
        tfx__free(cur);
        cur = next;
    }
    *out = cur;
    return TFX_OK;
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

int tfx__file_write_atomic(const char *fn, const char *path, const void *data, size_t n)
{
    char eb[128];
    char *target = NULL;
    int rc = resolve_target(fn, path, &target);
    if (rc) return rc;
    remove_stale_temps(target);
    size_t tlen = strlen(target) + TMP_EXTRA;
    char *tmp = tfx__malloc(tlen);
    if (!tmp) {
        tfx__free(target);
        return tfx__error(TFX_ENOMEM, "%s%sout of memory", FN(fn), sep(fn));
    }
    int fd = open_temp(target, tmp, tlen);
    if (fd < 0) {
        int e = errno;
        tfx__free(tmp);
        tfx__free(target);
        return tfx__error(TFX_EIO, "%s%scannot create a temporary file next to '%s': %s", FN(fn), sep(fn), path,
                          tfx__strerror(e, eb, sizeof eb));
    }
    const char *what = "writing";
    struct stat st;
    /* Keep the permissions of the file being replaced. */
    if (stat(target, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(fd, st.st_mode & 07777);
    if (write_all(fd, data, n) != 0) goto fail;
    what = "flushing";
    if (fsync(fd) != 0) goto fail;
    what = "closing";
    rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    what = "renaming the temporary file to";
    if (rename(tmp, target) != 0) goto fail;
    sync_dir(target);
    tfx__free(tmp);
    tfx__free(target);
    return TFX_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    tfx__free(tmp);
    tfx__free(target);
    return tfx__error(TFX_EIO, "%s%s%s '%s' failed: %s (the previous file is unchanged)", FN(fn), sep(fn), what, path,
                      tfx__strerror(e, eb, sizeof eb));
}

/* ---- directories ---- */

int tfx__file_mkdirs(const char *fn, const char *dir)
{
    char eb[128];
    size_t n = strlen(dir);
    char *p = tfx__malloc(n + 1);
    if (!p) return tfx__error(TFX_ENOMEM, "%s%sout of memory", FN(fn), sep(fn));
    memcpy(p, dir, n + 1);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    int rc = TFX_OK;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/') continue;
        if (i < n && p[i - 1] == '/') continue; /* "a//b" */
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                rc = tfx__error(TFX_EIO, "%s%scannot create directory '%s' (for '%s'): %s", FN(fn), sep(fn), p, dir,
                                tfx__strerror(e == EEXIST ? ENOTDIR : e, eb, sizeof eb));
                break;
            }
        }
        p[i] = saved;
    }
    tfx__free(p);
    return rc;
}
