/* PNG through stb: encode -> decode round trips, files, hostile inputs, allocation failures. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/internal.h"
#include "testing.h"
#include "tfx/image.h"

static int under_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

/* An image with padded rows (stride > width*channels) and a deterministic pattern. */
static tfx_image make_image(int w, int h, int c, size_t pad)
{
    tfx_image img = {w, h, c, (size_t)w * c + pad, NULL};
    img.pixels = malloc(img.stride * (size_t)h);
    for (size_t i = 0; i < img.stride * (size_t)h; i++) img.pixels[i] = (uint8_t)(i * 37u + 11u);
    return img;
}

static void assert_same_pixels(const tfx_image *a, const tfx_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    for (int y = 0; y < a->height; y++)
        assert_memory_equal(a->pixels + (size_t)y * a->stride, b->pixels + (size_t)y * b->stride,
                            (size_t)a->width * a->channels);
}

static void round_trip(void **state)
{
    (void)state;
    int sizes[][2] = {{1, 1}, {7, 5}, {33, 17}, {3, 64}};
    for (int c = 1; c <= 4; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            tfx_image img = make_image(sizes[s][0], sizes[s][1], c, (size_t)(s * 3));
            unsigned char *png = NULL;
            size_t size = 0;
            assert_int_equal(tfx_image_encode_png(&img, &png, &size), TFX_OK);
            assert_true(size > 8);
            assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
            tfx_image *back = NULL;
            assert_int_equal(tfx_image_decode(&back, png, size, 0), TFX_OK);
            assert_same_pixels(&img, back);
            assert_int_equal(back->stride, (size_t)back->width * back->channels);
            tfx_image_free(back);
            if (c == 1) { /* conversion on load: grey -> RGB replicates */
                assert_int_equal(tfx_image_decode(&back, png, size, 3), TFX_OK);
                assert_int_equal(back->channels, 3);
                for (int i = 0; i < img.width; i++) {
                    uint8_t v = img.pixels[i];
                    assert_memory_equal(back->pixels + 3 * i, ((uint8_t[]){v, v, v}), 3);
                }
                tfx_image_free(back);
            }
            tfx_image_png_free(png);
            free(img.pixels);
        }
}

static void file_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/tfx_render_png_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    tfx_image *img = NULL;
    assert_int_equal(tfx_image_new(&img, 20, 10, 3), TFX_OK);
    for (size_t i = 0; i < img->stride * 10; i++) img->pixels[i] = (uint8_t)(i ^ (i >> 3));
    assert_int_equal(tfx_image_write_png(img, path), TFX_OK);
    tfx_image *back = NULL;
    assert_int_equal(tfx_image_load(&back, path, 0), TFX_OK);
    assert_same_pixels(img, back);
    tfx_image_free(back);
    unlink(path);
    /* errors */
    assert_int_equal(tfx_image_write_png(img, "/nonexistent-dir/x.png"), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "/nonexistent-dir/x.png"));
    assert_int_equal(tfx_image_write_png(img, ""), TFX_EINVAL);
    assert_int_equal(tfx_image_write_png(img, NULL), TFX_EINVAL);
    assert_int_equal(tfx_image_load(&back, "/nonexistent-dir/x.png", 0), TFX_EIO);
    assert_null(back);
    /* an empty file */
    strcpy(path, "/tmp/tfx_render_png_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tfx_image_load(&back, path, 0), TFX_EFORMAT);
    unlink(path);
    tfx_image_free(img);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Disk full during a PNG write (the saver's fault-injection hook): the old picture stays byte
 * for byte and no temporary file is left beside it. */
static void disk_full(void **state)
{
    (void)state;
    char dir[] = "/tmp/tfx_png_full_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pic.png", dir);
    tfx_image *old = NULL, *fresh = NULL;
    assert_int_equal(tfx_image_new(&old, 24, 16, 3), TFX_OK);
    assert_int_equal(tfx_image_new(&fresh, 24, 16, 3), TFX_OK);
    for (size_t i = 0; i < old->stride * 16; i++) {
        old->pixels[i] = (uint8_t)(i * 13u);
        fresh->pixels[i] = (uint8_t)(255u - i);
    }
    assert_int_equal(tfx_image_write_png(old, path), TFX_OK);
    size_t n_before;
    unsigned char *before = read_all(path, &n_before);
    unsigned char *enc = NULL;
    size_t n_new = 0;
    assert_int_equal(tfx_image_encode_png(fresh, &enc, &n_new), TFX_OK);
    tfx_image_png_free(enc);
    long cuts[] = {0, 1, 8, 33, (long)n_new / 2, (long)n_new - 1}; /* every cut short of the new file */
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tfx__file_fail_after_bytes(cuts[i]);
        int rc = tfx_image_write_png(fresh, path);
        tfx__file_fail_after_bytes(-1);
        assert_int_equal(rc, TFX_EIO);
        assert_non_null(strstr(tfx_error_last()->message, "the previous file is unchanged"));
        size_t n;
        unsigned char *now = read_all(path, &n);
        assert_int_equal(n, n_before);
        assert_memory_equal(now, before, n);
        free(now);
        assert_int_equal(entries_in(dir), 1);
    }
    tfx_image *back = NULL;
    assert_int_equal(tfx_image_load(&back, path, 0), TFX_OK);
    assert_same_pixels(old, back);
    tfx_image_free(back);
    /* With room again the new picture replaces the old one. */
    assert_int_equal(tfx_image_write_png(fresh, path), TFX_OK);
    assert_int_equal(tfx_image_load(&back, path, 0), TFX_OK);
    assert_same_pixels(fresh, back);
    assert_int_equal(entries_in(dir), 1);
    tfx_image_free(back);
    free(before);
    tfx_image_free(old);
    tfx_image_free(fresh);
    unlink(path);
    rmdir(dir);
}

/* A PNG written through a symbolic link replaces the picture it points to; the link stays. */
static void write_through_symlink(void **state)
{
    (void)state;
    char dir[] = "/tmp/tfx_png_link_XXXXXX", real[64], link[64];
    assert_non_null(mkdtemp(dir));
    snprintf(real, sizeof real, "%s/real.png", dir);
    snprintf(link, sizeof link, "%s/link.png", dir);
    assert_int_equal(symlink("real.png", link), 0);
    tfx_image *img = NULL;
    assert_int_equal(tfx_image_new(&img, 5, 4, 1), TFX_OK);
    img->pixels[3] = 200;
    assert_int_equal(tfx_image_write_png(img, link), TFX_OK); /* dangling: creates real.png */
    assert_int_equal(tfx_image_write_png(img, link), TFX_OK); /* replaces it */
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    tfx_image *back = NULL;
    assert_int_equal(tfx_image_load(&back, real, 0), TFX_OK);
    assert_same_pixels(img, back);
    assert_int_equal(entries_in(dir), 2);
    tfx_image_free(back);
    tfx_image_free(img);
    unlink(link);
    unlink(real);
    rmdir(dir);
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG whose IHDR claims w x h (valid CRC), followed by a tiny IDAT and IEND. */
static size_t fake_png(unsigned char *buf, uint32_t w, uint32_t h, int color_type)
{
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    put32(buf + 8, 13);
    memcpy(buf + 12, "IHDR", 4);
    put32(buf + 16, w);
    put32(buf + 20, h);
    buf[24] = 8;
    buf[25] = (unsigned char)color_type;
    buf[26] = buf[27] = buf[28] = 0;
    put32(buf + 29, (uint32_t)crc32(0, buf + 12, 17));
    static const unsigned char raw[2] = {0, 0}; /* filter byte + one grey pixel */
    unsigned char idat[32];
    uLongf zlen = sizeof idat;
    assert_int_equal(compress(idat, &zlen, raw, sizeof raw), Z_OK);
    put32(buf + 33, (uint32_t)zlen);
    memcpy(buf + 37, "IDAT", 4);
    memcpy(buf + 41, idat, zlen);
    put32(buf + 41 + zlen, (uint32_t)crc32(0, buf + 37, (uInt)(4 + zlen)));
    size_t n = 45 + zlen;
    put32(buf + n, 0);
    memcpy(buf + n + 4, "IEND", 4);
    put32(buf + n + 8, (uint32_t)crc32(0, (const unsigned char *)"IEND", 4));
    return n + 12;
}

static void hostile_inputs(void **state)
{
    (void)state;
    tfx_image *out = NULL;
    unsigned char buf[128];
    /* huge dimensions in the header: refused before any pixel allocation */
    uint32_t dims[][2] = {{100000, 100000}, {30000, 30000}, {1u << 31, 1}, {0, 5}, {5, 0}, {40000, 1}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        size_t n = fake_png(buf, dims[i][0], dims[i][1], 2);
        assert_int_equal(tfx_image_decode(&out, buf, n, 0), TFX_EFORMAT);
        assert_null(out);
    }
    /* a valid 1x1 grey picture from the same builder decodes (the builder is right) */
    size_t n = fake_png(buf, 1, 1, 0);
    assert_int_equal(tfx_image_decode(&out, buf, n, 0), TFX_OK);
    assert_int_equal(out->width, 1);
    assert_int_equal(out->pixels[0], 0);
    tfx_image_free(out);
    /* a 1x1 header with a too-short IDAT for 64x64: corrupt */
    n = fake_png(buf, 64, 64, 6);
    assert_int_equal(tfx_image_decode(&out, buf, n, 0), TFX_EFORMAT);
    /* garbage */
    srand(7);
    for (int t = 0; t < 200; t++) {
        unsigned char g[300];
        size_t len = 1 + (size_t)(rand() % 300);
        for (size_t i = 0; i < len; i++) g[i] = (unsigned char)rand();
        if (t % 3 == 0 && len > 8) memcpy(g, "\x89PNG\r\n\x1a\n", 8);
        if (t % 3 == 1 && len > 3) memcpy(g, "\xff\xd8\xff", 3);
        assert_int_equal(tfx_image_decode(&out, g, len, 0), TFX_EFORMAT);
        assert_null(out);
    }
    /* truncations of a real PNG */
    tfx_image img = make_image(9, 7, 3, 0);
    unsigned char *png = NULL;
    size_t size = 0;
    assert_int_equal(tfx_image_encode_png(&img, &png, &size), TFX_OK);
    size_t step = under_valgrind() ? 7 : 1;
    for (size_t len = 1; len < size; len += step) {
        int rc = tfx_image_decode(&out, png, len, 0);
        if (rc == TFX_OK) { /* only the trailing IEND may be missing: then pixels must be right */
            assert_true(len >= size - 12);
            assert_same_pixels(&img, out);
            tfx_image_free(out);
        } else {
            assert_int_equal(rc, TFX_EFORMAT);
            assert_null(out);
        }
    }
    /* a flipped byte inside the compressed data is either caught or decodes to 9x7 */
    for (size_t pos = 41; pos < size; pos += step * 3) {
        unsigned char *bad = malloc(size);
        memcpy(bad, png, size);
        bad[pos] ^= 0x5a;
        int rc = tfx_image_decode(&out, bad, size, 0);
        assert_true(rc == TFX_OK || rc == TFX_EFORMAT);
        if (rc == TFX_OK) {
            assert_int_equal(out->width, 9);
            tfx_image_free(out);
        }
        free(bad);
    }
    tfx_image_png_free(png);
    free(img.pixels);
}

/* SOI, SOF0 of w x h with one component, then whatever `tail` holds (EOI by default): a header
 * and no image data. */
static size_t header_only_jpeg(unsigned char *b, unsigned w, unsigned h, const unsigned char *tail, size_t tail_len)
{
    static const unsigned char eoi[2] = {0xFF, 0xD9};
    unsigned char sof[15] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8, (unsigned char)(h >> 8), (unsigned char)h,
                             (unsigned char)(w >> 8), (unsigned char)w, 1, 1, 0x11, 0};
    memcpy(b, sof, sizeof sof);
    if (!tail) {
        tail = eoi;
        tail_len = 2;
    }
    memcpy(b + sizeof sof, tail, tail_len);
    return sizeof sof + tail_len;
}

static unsigned char *read_seed(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/image/%s", TFX_SOURCE_ROOT, name);
    return read_all(path, n);
}

/* Pictures whose file ends before their image data: stb returned a blank picture of the declared
 * size (192 MiB from 17 bytes). Refused; real JPEGs and PNGs still decode. */
static void missing_image_data(void **state)
{
    (void)state;
    unsigned char b[64];
    tfx_image *out = NULL;
    size_t n = header_only_jpeg(b, 8192, 8192, NULL, 0);
    assert_int_equal(n, 17);
    assert_int_equal(tfx_image_decode(&out, b, n, 3), TFX_EFORMAT);
    assert_null(out);
    assert_non_null(strstr(tfx_error_last()->message, "8192x8192"));
    /* Small enough for the size bound: the missing scan is what refuses it. */
    n = header_only_jpeg(b, 16, 16, NULL, 0);
    assert_int_equal(tfx_image_decode(&out, b, n, 0), TFX_EFORMAT);
    assert_non_null(strstr(tfx_error_last()->message, "no start-of-scan"));
    /* FF DA inside a comment's payload is not a scan. */
    static const unsigned char com[] = {0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xDA, 0xFF, 0xD9};
    n = header_only_jpeg(b, 16, 16, com, sizeof com);
    assert_int_equal(tfx_image_decode(&out, b, n, 0), TFX_EFORMAT);
    assert_non_null(strstr(tfx_error_last()->message, "no start-of-scan"));
    /* A real JPEG whose scan is cut to a few bytes, while declaring far more pixels than its
     * bytes can hold (512 a byte): the size bound refuses it. */
    size_t sn;
    unsigned char *seed = read_seed("seed-rgb.jpg", &sn);
    assert_true(sn > 100);
    size_t len = sn - 1;
    unsigned char *jpg = seed + 1; /* the corpus's first byte is the channel count */
    tfx_image *ok = NULL;
    assert_int_equal(tfx_image_decode(&ok, jpg, len, 0), TFX_OK);
    assert_int_equal(ok->width, 16);
    tfx_image_free(ok);
    for (size_t i = 0; i + 8 < len; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] >= 0xC0 && jpg[i + 1] <= 0xC2) { /* SOF: 4096x4096 */
            jpg[i + 5] = jpg[i + 7] = 4096 >> 8;
            jpg[i + 6] = jpg[i + 8] = 0;
            break;
        }
    assert_int_equal(tfx_image_decode(&out, jpg, len, 0), TFX_EFORMAT);
    assert_non_null(strstr(tfx_error_last()->message, "cannot be encoded in"));
    free(seed);
    const char *good[] = {"seed-gray.jpg", "seed-progressive.jpg", "seed-one-bit.png", "seed-gray16.png"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        seed = read_seed(good[i], &sn);
        if (tfx_image_decode(&ok, seed + 1, sn - 1, 0) != TFX_OK)
            fail_msg("%s: %s", good[i], tfx_error_last()->message);
        tfx_image_free(ok);
        free(seed);
    }
    /* A PNG without IDAT (IHDR then IEND): refused too (by stb). */
    unsigned char png[128];
    size_t pn = fake_png(png, 4096, 4096, 0);
    memmove(png + 33, png + pn - 12, 12);
    assert_int_equal(tfx_image_decode(&out, png, 45, 0), TFX_EFORMAT);
    assert_null(out);
}

static void bad_arguments(void **state)
{
    (void)state;
    tfx_image *out = (tfx_image *)1;
    assert_int_equal(tfx_image_new(NULL, 1, 1, 1), TFX_EINVAL);
    assert_int_equal(tfx_image_new(&out, 0, 1, 1), TFX_EINVAL);
    assert_null(out);
    assert_int_equal(tfx_image_new(&out, 1, -1, 1), TFX_EINVAL);
    assert_int_equal(tfx_image_new(&out, 1, 1, 5), TFX_EINVAL);
    assert_int_equal(tfx_image_new(&out, TFX_IMAGE_MAX_SIDE + 1, 1, 1), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "width"));
    tfx_image_free(NULL);
    tfx_image_png_free(NULL);
    unsigned char *png = (unsigned char *)1;
    size_t size = 1;
    assert_int_equal(tfx_image_encode_png(NULL, &png, &size), TFX_EINVAL);
    assert_null(png);
    assert_int_equal(size, 0);
    tfx_image img = make_image(4, 4, 3, 0);
    assert_int_equal(tfx_image_encode_png(&img, NULL, &size), TFX_EINVAL);
    assert_int_equal(tfx_image_encode_png(&img, &png, NULL), TFX_EINVAL);
    tfx_image bad = img;
    bad.stride = 5;
    assert_int_equal(tfx_image_encode_png(&bad, &png, &size), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "stride"));
    bad = img;
    bad.pixels = NULL;
    assert_int_equal(tfx_image_encode_png(&bad, &png, &size), TFX_EINVAL);
    bad = img;
    bad.channels = 0;
    assert_int_equal(tfx_image_encode_png(&bad, &png, &size), TFX_EINVAL);
    bad = img;
    bad.width = 0;
    assert_int_equal(tfx_image_write_png(&bad, "/tmp/never.png"), TFX_EINVAL);
    assert_int_equal(tfx_image_decode(NULL, "x", 1, 0), TFX_EINVAL);
    assert_int_equal(tfx_image_decode(&out, NULL, 1, 0), TFX_EINVAL);
    assert_int_equal(tfx_image_decode(&out, "x", 0, 0), TFX_EFORMAT);
    assert_int_equal(tfx_image_decode(&out, "x", 1, 5), TFX_EINVAL);
    assert_int_equal(tfx_image_decode(&out, "x", 1, -1), TFX_EINVAL);
    assert_int_equal(tfx_image_load(&out, NULL, 0), TFX_EINVAL);
    assert_int_equal(tfx_image_load(NULL, "x", 0), TFX_EINVAL);
    free(img.pixels);
}

static void allocation_failures(void **state)
{
    (void)state;
    tfx_image img = make_image(16, 12, 4, 2);
    unsigned char *png = NULL;
    size_t size = 0;
    int ok = 0;
    for (long k = 1; k < 200 && !ok; k++) {
        tfx__alloc_fail_after(k);
        int rc = tfx_image_encode_png(&img, &png, &size);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) ok = 1;
        else {
            assert_int_equal(rc, TFX_ENOMEM);
            assert_null(png);
        }
    }
    assert_true(ok);
    ok = 0;
    for (long k = 1; k < 200 && !ok; k++) {
        tfx_image *out = NULL;
        tfx__alloc_fail_after(k);
        int rc = tfx_image_decode(&out, png, size, 0);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) {
            assert_same_pixels(&img, out);
            tfx_image_free(out);
            ok = 1;
        } else {
            if (rc != TFX_ENOMEM) fail_msg("k=%ld: %s", k, tfx_error_last()->message);
            assert_null(out);
        }
    }
    assert_true(ok);
    for (long k = 1; k <= 2; k++) {
        tfx_image *out = NULL;
        tfx__alloc_fail_after(k);
        assert_int_equal(tfx_image_new(&out, 3, 3, 1), TFX_ENOMEM);
        tfx__alloc_fail_after(0);
        assert_null(out);
    }
    tfx_image_png_free(png);
    free(img.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip), cmocka_unit_test(file_round_trip), cmocka_unit_test(hostile_inputs),
        cmocka_unit_test(bad_arguments), cmocka_unit_test(allocation_failures), cmocka_unit_test(disk_full),
        cmocka_unit_test(write_through_symlink), cmocka_unit_test(missing_image_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
