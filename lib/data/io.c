/* Whole-file reading and gzip decompression for the dataset readers. Both grow their buffer
 * with the bytes actually read, under a cap, so no size field (not even gzip's trailer)
 * decides how much memory is taken. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/data_internal.h"

#define CHUNK_MIN ((size_t)1 << 16)

/* Grow *buf so that at least `need` bytes fit (the first time exactly `need`, then doubling),
 * never above `hard` bytes. -1: would pass `hard`; -2: out of memory. */
static int grow(unsigned char **buf, size_t *cap, size_t need, size_t hard)
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

int tfx__data_read_file(const char *path, size_t max_bytes, unsigned char **out, size_t *len)
{
    char eb[128];
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return tfx__error(TFX_EIO, "cannot open '%s': %s", path, tfx__strerror(e, eb, sizeof eb));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return tfx__error(TFX_EIO, "cannot stat '%s': %s", path, tfx__strerror(e, eb, sizeof eb));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return tfx__error(TFX_EIO, "'%s' is a directory, not a data file", path);
    }
    /* One byte beyond the cap lets "too large" be told from "exactly at the cap". */
    size_t hard = max_bytes < SIZE_MAX ? max_bytes + 1 : SIZE_MAX;
    size_t cap = 0;
    if (S_ISREG(st.st_mode)) {
        if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
            fclose(f);
            return tfx__error(TFX_EFORMAT, "'%s' is %lld bytes, above the limit of %zu bytes", path,
                              (long long)st.st_size, max_bytes);
        }
        cap = (size_t)st.st_size + 1; /* +1 so reaching EOF needs no further growth */
    }
    unsigned char *buf = NULL;
    size_t n = 0, bufcap = 0;
    size_t first = cap ? cap : CHUNK_MIN;
    if (first > hard) first = hard;
    if (grow(&buf, &bufcap, first, hard) != 0) {
        fclose(f);
        return tfx__error(TFX_ENOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == bufcap) {
            int g = grow(&buf, &bufcap, n + 1, hard);
            if (g != 0) {
                tfx__free(buf);
                fclose(f);
                if (g == -1)
                    return tfx__error(TFX_EFORMAT, "'%s' holds more than the limit of %zu bytes", path, max_bytes);
                return tfx__error(TFX_ENOMEM, "out of memory reading '%s'", path);
            }
        }
        size_t got = fread(buf + n, 1, bufcap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        tfx__free(buf);
        fclose(f);
        return tfx__error(TFX_EIO, "read error on '%s': %s", path, tfx__strerror(e, eb, sizeof eb));
    }
    fclose(f);
    if (n > max_bytes) {
        tfx__free(buf);
        return tfx__error(TFX_EFORMAT, "'%s' holds more than the limit of %zu bytes", path, max_bytes);
    }
    *out = buf;
    *len = n;
    return TFX_OK;
}

int tfx__data_is_gzip(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* zlib's allocations go through the library allocator, so failure injection reaches them. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    size_t bytes;
    if (tfx__mul_size(items, size, &bytes)) return Z_NULL;
    return tfx__malloc(bytes);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    tfx__free(p);
}

int tfx__gunzip(const void *buf, size_t len, size_t max_bytes, const char *name, unsigned char **out,
                size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (name == NULL) name = "<gzip>";
    if (buf == NULL && len > 0) return tfx__error(TFX_EINVAL, "tfx__gunzip: buffer is NULL");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zr = inflateInit2(&zs, 16 + MAX_WBITS); /* 16: gzip wrapper only, with CRC and length check */
    if (zr == Z_MEM_ERROR) return tfx__error(TFX_ENOMEM, "out of memory starting gzip decompression of '%s'", name);
    if (zr != Z_OK) return tfx__error(TFX_ERROR, "'%s': inflateInit2 failed (%d)", name, zr);

    const unsigned char *in = buf;
    size_t in_left = len, produced = 0, cap = 0;
    size_t hard = max_bytes < SIZE_MAX ? max_bytes + 1 : SIZE_MAX;
    unsigned char *dst = NULL;
    int rc = TFX_OK;
    /* The first guess is a few times the compressed size (under the cap); growth follows the
     * real output only. */
    size_t first = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
    if (first < CHUNK_MIN) first = CHUNK_MIN;
    if (first > hard) first = hard;
    if (grow(&dst, &cap, first, hard) != 0) {
        rc = tfx__error(TFX_ENOMEM, "out of memory decompressing '%s'", name);
        goto done;
    }
    for (;;) {
        if (produced == cap) {
            int g = grow(&dst, &cap, produced + 1, hard);
            if (g == -1) {
                rc = tfx__error(TFX_EFORMAT, "'%s': gzip data decompresses to more than the limit of %zu bytes",
                                name, max_bytes);
                goto done;
            }
            if (g != 0) {
                rc = tfx__error(TFX_ENOMEM, "out of memory decompressing '%s'", name);
                goto done;
            }
        }
        /* avail_in/avail_out are uInt: feed and drain in pieces. */
        uInt feed = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        size_t room = cap - produced;
        uInt space = room > UINT_MAX ? UINT_MAX : (uInt)room;
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = feed;
        zs.next_out = dst + produced;
        zs.avail_out = space;
        zr = inflate(&zs, Z_NO_FLUSH);
        size_t used = feed - zs.avail_in;
        in += used;
        in_left -= used;
        produced += space - zs.avail_out;
        if (zr == Z_STREAM_END) {
            if (in_left == 0) break;
            /* Another gzip member follows (gzip -d accepts concatenated members). */
            if (tfx__data_is_gzip(in, in_left)) {
                if (inflateReset(&zs) != Z_OK) {
                    rc = tfx__error(TFX_ERROR, "'%s': inflateReset failed", name);
                    goto done;
                }
                continue;
            }
            rc = tfx__error(TFX_EFORMAT, "'%s': %zu bytes of trailing garbage after the gzip stream", name, in_left);
            goto done;
        }
        if (zr == Z_OK) continue;
        if (zr == Z_BUF_ERROR) {
            if (in_left == 0 && zs.avail_out > 0) {
                rc = tfx__error(TFX_EFORMAT, "'%s': gzip stream is truncated (its %zu bytes end mid-stream)",
                                name, len);
                goto done;
            }
            continue; /* output full: grow and go on */
        }
        if (zr == Z_MEM_ERROR) {
            rc = tfx__error(TFX_ENOMEM, "out of memory decompressing '%s'", name);
            goto done;
        }
        /* Z_DATA_ERROR (bad header, bad deflate data, CRC or length mismatch), Z_NEED_DICT. */
        rc = tfx__error(TFX_EFORMAT, "'%s': corrupt gzip data (%s)", name,
                        zs.msg ? zs.msg : (zr == Z_NEED_DICT ? "needs a preset dictionary" : "inflate error"));
        goto done;
    }
    if (produced > max_bytes) {
        rc = tfx__error(TFX_EFORMAT, "'%s': gzip data decompresses to more than the limit of %zu bytes", name,
                        max_bytes);
        goto done;
    }
done:
    inflateEnd(&zs);
    if (rc != TFX_OK) {
        tfx__free(dst);
        return rc;
    }
    if (cap > produced + CHUNK_MIN) { /* give back the unused tail of the last doubling */
        unsigned char *p = tfx__realloc(dst, produced);
        if (p != NULL) dst = p;
    }
    *out = dst;
    *out_len = produced;
    return TFX_OK;
}
