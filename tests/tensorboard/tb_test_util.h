/* Helpers shared by the tensorboard tests (header-only, static). */
#ifndef TB_TEST_UTIL_H
#define TB_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STB_IMAGE_WRITE_STATIC /* private copy: never clashes with the library's stb */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "tensorboard/tensorboard_internal.h"

/* research/tfevents.md Appendix A: a 4x3 grey PNG (rows 00 40 80 FF), 83 bytes. */
static const unsigned char tb_png_4x3_gray[83] = {
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
    0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 0x91, 0x9F, 0xF1, 0x1A, 0x00,
    0x00, 0x00, 0x1A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x01, 0x01, 0x0F, 0x00, 0xF0, 0xFF, 0x00, 0x00, 0x40,
    0x80, 0xFF, 0x00, 0x00, 0x40, 0x80, 0xFF, 0x00, 0x00, 0x40, 0x80, 0xFF, 0x22, 0x7D, 0x05, 0x3E, 0x29,
    0xAE, 0x5C, 0x8B, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};

/* A w x h x c PNG of deterministic noise (so it does not compress to nothing), via stb. */
static inline unsigned char *tb_make_png(int w, int h, int c, size_t *size)
{
    unsigned char *px = malloc((size_t)w * h * c);
    uint32_t s = 12345u;
    for (size_t i = 0; i < (size_t)w * h * c; i++) {
        s = s * 1664525u + 1013904223u;
        px[i] = (unsigned char)(s >> 24);
    }
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(px, w * c, w, h, c, &len);
    free(px);
    *size = (size_t)len;
    return png; /* free() */
}

static inline double tb_fixed_clock(void *user) { return *(const double *)user; }

/* A fresh directory under TMPDIR (or /tmp); free() the result. */
static inline char *tb_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/tfx_tb_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static inline int tb_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void tb_rmtree(const char *path) { nftw(path, tb_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static inline unsigned char *tb_read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static inline void tb_write_all(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static inline int tb_is_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

#endif
