/* Helpers shared by the tensorboard tests (header-only, static). */
#ifndef TB_TEST_UTIL_H
#define TB_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

#include "tb_reader.h"
#include "tensorboard/tensorboard_internal.h"
#include "testing.h"

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
    *n = 0;
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

/* The sample file the independent decoders check: what tb_write_sample wrote, record by
 * record after the first one. kind: 0 scalar, 1 image. */
typedef struct {
    int kind;
    const char *tag;
    int64_t step;
    float value;
    int width, height, channels;
    const unsigned char *png;
    size_t png_size;
} tb_sample_record;

#define TB_SAMPLE_T0 1700000000.25
#define TB_SAMPLE_N 6
/* Write the sample into a new writer in dir; fills rec (TB_SAMPLE_N entries) and the path.
 * *rgb (free()) holds the 37x23 RGB PNG the records point to. 0 on success. */
static inline int tb_write_sample(const char *dir, tb_sample_record *rec, char *path, size_t path_cap,
                                  unsigned char **rgb)
{
    static const double t0 = TB_SAMPLE_T0;
    size_t rgb_n;
    *rgb = tb_make_png(37, 23, 3, &rgb_n);
    const tb_sample_record r[TB_SAMPLE_N] = {
        {0, "epoch_loss", 0, 0.0f, 0, 0, 0, NULL, 0},
        {0, "epoch_accuracy", 1, 0.75f, 0, 0, 0, NULL, 0},
        {0, "validation/epoch_loss", 2, 1.0f / 3.0f, 0, 0, 0, NULL, 0},
        {1, "Activations Visualization", 0, 0, 4, 3, 1, tb_png_4x3_gray, sizeof tb_png_4x3_gray},
        {1, "Grad CAM", 1, 0, 37, 23, 3, *rgb, rgb_n},
        {0, "epoch_loss", 300, -2.5f, 0, 0, 0, NULL, 0},
    };
    tfx_event_writer_options o = TFX_EVENT_WRITER_OPTIONS_INIT;
    o.clock = tb_fixed_clock;
    o.clock_user = (void *)&t0;
    tfx_event_writer *w;
    if (tfx_event_writer_new(&w, dir, &o)) return -1;
    int rc = 0;
    for (int i = 0; i < TB_SAMPLE_N && !rc; i++) {
        rec[i] = r[i];
        rc = r[i].kind ? tfx_event_writer_add_image_png(w, r[i].tag, r[i].step, r[i].width, r[i].height,
                                                        r[i].channels, r[i].png, r[i].png_size)
                       : tfx_event_writer_add_scalar(w, r[i].tag, r[i].step, r[i].value);
    }
    snprintf(path, path_cap, "%s", tfx_event_writer_path(w));
    if (!rc) rc = tfx_event_writer_close(w);
    tfx_event_writer_free(w);
    return rc;
}

/* Run a shell command, return its stdout (free()) and its exit status. */
static inline char *tb_run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 2) out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    int st = pclose(p);
    *status = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    return out;
}

#endif
