/* tfx_image: creation, PNG encoding (stb_image_write) and decoding (stb_image). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/internal.h"
#include "render/render.h"
#include "tfx/image.h"

/* stb_image_write keeps sizes in int: (w*c + 1) * h filtered bytes plus the deflate output, which
 * can be a little larger. Stay far below INT_MAX. */
#define PNG_MAX_RAW ((size_t)1 << 30)
/* Files read by tfx_image_load: stb takes an int length. */
#define LOAD_MAX_FILE ((size_t)1 << 30)

static int image_alloc(tfx_image **out, int width, int height, int channels, int zero)
{
    size_t row, bytes;
    if (tfx__mul_size((size_t)width, (size_t)channels, &row) || tfx__mul_size(row, (size_t)height, &bytes))
        return tfx__error(TFX_EINVAL, "tfx_image_new: %dx%dx%d overflows", width, height, channels);
    tfx_image *img = tfx__calloc(1, sizeof *img);
    if (!img) return tfx__error(TFX_ENOMEM, "tfx_image_new: out of memory");
    img->pixels = zero ? tfx__calloc(bytes, 1) : tfx__malloc(bytes);
    if (!img->pixels) {
        tfx__free(img);
        return tfx__error(TFX_ENOMEM, "tfx_image_new: out of memory for %dx%dx%d pixels", width,
                          height, channels);
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->stride = row;
    *out = img;
    return TFX_OK;
}

int tfx_image_new(tfx_image **out, int width, int height, int channels)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_ARG(width > 0 && width <= TFX_IMAGE_MAX_SIDE, "tfx_image_new: width %d must be in 1..%d",
                   width, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(height > 0 && height <= TFX_IMAGE_MAX_SIDE, "tfx_image_new: height %d must be in 1..%d",
                   height, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(channels >= 1 && channels <= 4, "tfx_image_new: channels %d must be 1..4", channels);
    return image_alloc(out, width, height, channels, 1);
}

void tfx_image_free(tfx_image *img)
{
    if (!img) return;
    tfx__free(img->pixels);
    tfx__free(img);
}

static int check_image(const tfx_image *img, const char *fn)
{
    if (!img) return tfx__error(TFX_EINVAL, "%s: image is NULL", fn);
    if (!img->pixels) return tfx__error(TFX_EINVAL, "%s: image has no pixels", fn);
    if (img->width <= 0 || img->width > TFX_IMAGE_MAX_SIDE || img->height <= 0 ||
        img->height > TFX_IMAGE_MAX_SIDE)
        return tfx__error(TFX_EINVAL, "%s: image size %dx%d out of range (1..%d)", fn, img->width,
                          img->height, TFX_IMAGE_MAX_SIDE);
    if (img->channels < 1 || img->channels > 4)
        return tfx__error(TFX_EINVAL, "%s: channels %d must be 1..4", fn, img->channels);
    if (img->stride < (size_t)img->width * (size_t)img->channels)
        return tfx__error(TFX_EINVAL, "%s: stride %zu is less than width*channels = %zu", fn,
                          img->stride, (size_t)img->width * (size_t)img->channels);
    return TFX_OK;
}

int tfx_image_encode_png(const tfx_image *img, unsigned char **out, size_t *size)
{
    if (out) *out = NULL;
    if (size) *size = 0;
    TFX__CHECK_NULL(out);
    TFX__CHECK_NULL(size);
    int rc = check_image(img, "tfx_image_encode_png");
    if (rc) return rc;
    size_t row = (size_t)img->width * (size_t)img->channels + 1;
    if (row * (size_t)img->height > PNG_MAX_RAW || img->stride > (size_t)INT_MAX)
        return tfx__error(TFX_ENOTSUP, "tfx_image_encode_png: %dx%dx%d is too large for the PNG encoder",
                          img->width, img->height, img->channels);
    int len = 0;
    unsigned char *png = tfx__stb_png_encode(img->pixels, (int)img->stride, img->width, img->height,
                                             img->channels, &len);
    if (!png || len <= 0) {
        tfx__free(png);
        return tfx__error(TFX_ENOMEM, "tfx_image_encode_png: out of memory encoding %dx%dx%d",
                          img->width, img->height, img->channels);
    }
    *out = png;
    *size = (size_t)len;
    return TFX_OK;
}

void tfx_image_png_free(unsigned char *png)
{
    tfx__free(png); /* stb_image_write allocated it through tfx__malloc */
}

int tfx_image_write_png(const tfx_image *img, const char *path)
{
    TFX__CHECK_NULL(path);
    TFX__CHECK_ARG(path[0] != '\0', "tfx_image_write_png: path is empty");
    unsigned char *png = NULL;
    size_t size = 0;
    int rc = tfx_image_encode_png(img, &png, &size);
    if (rc) return tfx__error_prefix("tfx_image_write_png");
    /* Our own writes rather than stbi_write_png, which ignores write failures; atomic, so a
     * crash or a full disk never leaves a truncated picture in place of the previous one. */
    rc = tfx__file_write_atomic("tfx_image_write_png", path, png, size);
    tfx_image_png_free(png);
    return rc;
}

/* Debian's stb_image (2.27) builds a JPEG Huffman table from 16 code counts without checking
 * that they sum to at most 256, so a hostile DHT segment writes past stbi__huffman.size[257]
 * (a heap overflow, fixed upstream later). Such files are refused before stb sees them:
 * segments before the first SOF are walked as stb walks them (APPn/COM payloads skipped),
 * from the first SOF on every FF C4 is checked (a superset of the DHT segments stb reaches). */
static unsigned jpeg_byte(const unsigned char *d, size_t n, size_t i) { return i < n ? d[i] : 0; } /* stb: 0 at EOF */

/* 1 when the DHT segment whose length field starts at p would overflow stb's tables. */
static int jpeg_dht_bad(const unsigned char *d, size_t n, size_t p)
{
    long len = (long)(jpeg_byte(d, n, p) << 8 | jpeg_byte(d, n, p + 1)) - 2;
    p += 2;
    while (len > 0 && p < n) { /* past the end stb reads zeros: empty tables */
        unsigned q = jpeg_byte(d, n, p++);
        if ((q >> 4) > 1 || (q & 15) > 3) return 0; /* stb refuses the segment first */
        unsigned sum = 0;
        for (int i = 0; i < 16; i++) sum += jpeg_byte(d, n, p++);
        if (sum > 256) return 1;
        p += sum;
        len -= 17 + (long)sum;
    }
    return 0;
}

static int jpeg_huffman_ok(const unsigned char *d, size_t n)
{
    size_t p = 0;
    while (p < n && d[p] == 0xFF) p++; /* stb's SOI: FF, fill FFs, D8 */
    if (p == 0 || p >= n || d[p] != 0xD8) return 1; /* not a JPEG to stb */
    p++;
    for (;;) {
        while (p < n && d[p] != 0xFF) p++; /* stb skips padding between segments */
        while (p < n && d[p] == 0xFF) p++;
        if (p >= n) return 1;
        unsigned m = d[p++];
        if (m >= 0xC0 && m <= 0xC2) break; /* SOF */
        if (m == 0xC4 && jpeg_dht_bad(d, n, p)) return 0;
        if (m != 0xC4 && m != 0xDB && m != 0xDD && m != 0xFE && (m < 0xE0 || m > 0xEF)) return 1; /* stb fails */
        size_t len = jpeg_byte(d, n, p) << 8 | jpeg_byte(d, n, p + 1);
        if (len < 2) return 1;
        p += len;
    }
    for (size_t i = p - 1; i + 1 < n; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xC4 && jpeg_dht_bad(d, n, i + 2)) return 0;
    return 1;
}

/* 1 when a start-of-scan (FF DA) follows the JPEG's first SOF before any EOI: without a scan
 * stb returns a blank picture of the declared size (a 17-byte file can declare 8192x8192).
 * Segments are walked by their lengths, so FF DA inside a payload does not count. */
static int jpeg_has_scan(const unsigned char *d, size_t n)
{
    size_t p = 0;
    while (p < n && d[p] == 0xFF) p++;
    if (p == 0 || p >= n || d[p] != 0xD8) return 1; /* not a JPEG: not this check's business */
    p++;
    int seen_sof = 0;
    for (;;) {
        while (p < n && d[p] != 0xFF) p++;
        while (p < n && d[p] == 0xFF) p++;
        if (p >= n) return 0;
        unsigned m = d[p++];
        if (m == 0xD9) return 0;                              /* EOI before any scan */
        if (m == 0xDA) return seen_sof;                       /* a scan (stb needs the SOF first) */
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  /* markers without a length */
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) seen_sof = 1;
        if (p + 1 >= n) return 0;
        size_t len = (size_t)d[p] << 8 | d[p + 1];
        if (len < 2) return 0;
        p += len;
    }
}

/* The most pixels `size` bytes of a file can encode. JPEG: every 8x8 block of the full-resolution
 * component costs at least one bit (its DC code, even in a progressive first scan), so at most
 * 512 pixels a byte. PNG: a pixel is at least 1 bit of filtered data (plus a filter byte a row)
 * and deflate expands at most 1032:1 (258 bytes from a 1-bit length and a 1-bit distance code),
 * so at most 8 * 1032 pixels a byte. A picture that declares more has data missing, which stb
 * would fill with blank pixels (0: no bound for this format). */
static size_t max_pixels_for(const unsigned char *d, size_t size)
{
    size_t per_byte = 0;
    if (size >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) per_byte = 8 * 1032;
    else if (size >= 2 && d[0] == 0xFF && d[1] == 0xD8) per_byte = 512;
    if (per_byte == 0) return 0;
    return size > SIZE_MAX / per_byte ? SIZE_MAX : size * per_byte;
}

int tfx_image_decode(tfx_image **out, const void *data, size_t size, int channels)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(data);
    TFX__CHECK_ARG(channels >= 0 && channels <= 4, "tfx_image_decode: channels %d must be 0..4", channels);
    if (size == 0) return tfx__error(TFX_EFORMAT, "tfx_image_decode: empty data");
    if (size > (size_t)INT_MAX)
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: %zu bytes is more than the decoder takes", size);
    if (!jpeg_huffman_ok(data, size))
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: corrupt JPEG (a Huffman table of more than 256 codes)");
    int w = 0, h = 0, comp = 0, oom = 0;
    /* Header first: refuse huge pictures before the decoder allocates for them. */
    if (!tfx__stb_info(data, (int)size, &w, &h, &comp, &oom)) {
        if (oom) return tfx__error(TFX_ENOMEM, "tfx_image_decode: out of memory reading the header");
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: not a PNG or JPEG picture (%s)",
                          tfx__stb_failure_reason());
    }
    if (w <= 0 || h <= 0 || w > TFX_IMAGE_MAX_SIDE || h > TFX_IMAGE_MAX_SIDE ||
        (size_t)w * (size_t)h > (size_t)TFX_IMAGE_MAX_LOAD_PIXELS)
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: picture of %dx%d exceeds the limits (%d a side, %d pixels)",
                          w, h, TFX_IMAGE_MAX_SIDE, TFX_IMAGE_MAX_LOAD_PIXELS);
    if (comp < 1 || comp > 4)
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: %d channels in the file", comp);
    if (!jpeg_has_scan(data, size))
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: JPEG of %dx%d holds no image data (no start-of-scan "
                                       "marker before its end)", w, h);
    size_t most = max_pixels_for(data, size);
    if (most && (size_t)w * (size_t)h > most)
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: a picture of %dx%d cannot be encoded in %zu bytes (at "
                                       "most %zu pixels): its image data is missing or truncated", w, h, size, most);
    int w2 = 0, h2 = 0, comp2 = 0;
    unsigned char *px = tfx__stb_load(data, (int)size, &w2, &h2, &comp2, channels, &oom);
    if (!px) {
        const char *why = tfx__stb_failure_reason();
        if (oom || strcmp(why, "outofmem") == 0)
            return tfx__error(TFX_ENOMEM, "tfx_image_decode: out of memory decoding %dx%d", w, h);
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: corrupt picture (%s)", why);
    }
    if (w2 != w || h2 != h) { /* the header parse and the decode must agree */
        tfx__free(px);
        return tfx__error(TFX_EFORMAT, "tfx_image_decode: inconsistent picture size");
    }
    tfx_image *img = tfx__calloc(1, sizeof *img);
    if (!img) {
        tfx__free(px);
        return tfx__error(TFX_ENOMEM, "tfx_image_decode: out of memory");
    }
    img->width = w;
    img->height = h;
    img->channels = channels ? channels : comp2;
    img->stride = (size_t)w * (size_t)img->channels;
    img->pixels = px; /* allocated by stb through tfx__malloc */
    *out = img;
    return TFX_OK;
}

int tfx_image_load(tfx_image **out, const char *path, int channels)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(path);
    TFX__CHECK_ARG(channels >= 0 && channels <= 4, "tfx_image_load: channels %d must be 0..4", channels);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = tfx__file_read("tfx_image_load", path, LOAD_MAX_FILE, &buf, &len);
    if (rc == TFX_OK) {
        rc = len ? tfx_image_decode(out, buf, len, channels)
                 : tfx__error(TFX_EFORMAT, "tfx_image_decode: empty data");
        if (rc) tfx__error_prefix("tfx_image_load '%s'", path);
    }
    tfx__free(buf);
    return rc;
}
