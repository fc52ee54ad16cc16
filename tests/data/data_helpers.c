#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "data_helpers.h"
#include "tfx/tfx.h"

static char tmpdir[64];
static char pathbuf[4][512];
static int pathslot;

int th_tmpdir_create(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfx_data_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int th_tmpdir_remove(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *th_path(const char *name)
{
    char *p = pathbuf[pathslot++ & 3];
    snprintf(p, sizeof pathbuf[0], "%s/%s", tmpdir, name);
    return p;
}

void th_write(const char *name, const void *buf, size_t len)
{
    /* Unlink first: rewriting a file through O_TRUNC makes ext4 flush it on close (auto_da_alloc),
     * which turns the truncation sweeps into thousands of disk syncs. */
    const char *p = th_path(name);
    remove(p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

unsigned char th_idx_byte(size_t i, int r, int c) { return (unsigned char)((i * 31 + (size_t)r * 7 + (size_t)c * 3 + 11) & 255); }
int th_idx_label(size_t i) { return (int)((i * 7 + 3) % 10); }

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

unsigned char *th_idx_images(uint32_t n, uint32_t h, uint32_t w, size_t *len)
{
    *len = 16 + (size_t)n * h * w;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    for (size_t i = 0; i < n; i++)
        for (uint32_t r = 0; r < h; r++)
            for (uint32_t c = 0; c < w; c++) b[16 + (i * h + r) * w + c] = th_idx_byte(i, (int)r, (int)c);
    return b;
}

unsigned char *th_idx_labels(uint32_t n, size_t *len)
{
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 0x801);
    put_be32(b + 4, n);
    for (size_t i = 0; i < n; i++) b[8 + i] = (unsigned char)th_idx_label(i);
    return b;
}

unsigned char th_cifar_byte(size_t i, int c, int p)
{
    static const int mul[3] = {1, 7, 13};
    return (unsigned char)(((size_t)p * (size_t)mul[c] + (size_t)c * 85 + i * 17) % 251);
}
int th_cifar_label(size_t i) { return (int)((i * 3 + 1) % 10); }

unsigned char *th_cifar(size_t first, size_t n, size_t *len)
{
    *len = n * 3073;
    unsigned char *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    for (size_t k = 0; k < n; k++) {
        unsigned char *rec = b + k * 3073;
        rec[0] = (unsigned char)th_cifar_label(first + k);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) rec[1 + c * 1024 + p] = th_cifar_byte(first + k, c, p);
    }
    return b;
}

unsigned char *th_gzip(const void *in, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

int th_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

void th_expect(int rc, int code, const char *sub1, const char *sub2, const char *file, int line)
{
    const char *m = tfx_error_last()->message;
    if (rc != code) {
        print_error("%s:%d: rc %d (%s), expected %d; message: %s\n", file, line, rc, tfx_status_str(rc), code, m);
        fail();
    }
    if (code != 0 && tfx_error_last()->code != code) {
        print_error("%s:%d: error code %d, expected %d\n", file, line, tfx_error_last()->code, code);
        fail();
    }
    const char *subs[2] = {sub1, sub2};
    for (int i = 0; i < 2; i++) {
        if (subs[i] && strstr(m, subs[i]) == NULL) {
            print_error("%s:%d: message '%s' lacks '%s'\n", file, line, m, subs[i]);
            fail();
        }
    }
}
