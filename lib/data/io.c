/* gzip decompression for the dataset readers (whole files are read by core/file.c). The
 * output grows with the bytes actually produced, under a cap, so no size field (not even
 * gzip's trailer) decides how much memory is taken. */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "core/file.h"
#include "data/data_internal.h"

#define CHUNK_MIN ((size_t)1 << 16)

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
    if (tfx__buf_grow(&dst, &cap, first, hard) != 0) {
        rc = tfx__error(TFX_ENOMEM, "out of memory decompressing '%s'", name);
        goto done;
    }
    for (;;) {
        if (produced == cap) {
            int g = tfx__buf_grow(&dst, &cap, produced + 1, hard);
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
