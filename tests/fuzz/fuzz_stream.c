/* libFuzzer target for the streaming IDX reader (tfx_stream_open_idx + its batch provider), which
 * parses the IDX headers itself and reads the files in batch-sized pieces (pread on plain files,
 * gzread on gzip ones). Input: the format of fuzz_idx.c (1 mode byte, 2 bytes little-endian of
 * images-part length, the images part, then the labels part; mode bits 0/1 gzip the images /
 * labels part here), so corpus/idx's seeds are this target's seeds too (corpus/stream). Bits 2..7
 * pick a shuffle buffer, one-hot labels and the batch size. The two parts are written to
 * temporary files; every sample of two passes is read and checked. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "tfx/tfx.h"

static uint8_t *gz(const uint8_t *p, size_t n, size_t *out_n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    uint8_t *b = malloc(cap);
    if (!b) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = b;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    *out_n = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(b);
        return NULL;
    }
    return b;
}

/* A temporary file holding p[0..n); its path in path (the name ends in .gz when gzipped, which
 * is how the reader tells gzip from plain files, if it looks at names). */
static int put(char *path, size_t cap, const char *stem, int gzipped, const uint8_t *p, size_t n)
{
    snprintf(path, cap, "/tmp/tfx-fuzz-stream-%ld-%s%s", (long)getpid(), stem, gzipped ? ".gz" : "");
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned mode = data[0];
    size_t il = (size_t)data[1] | ((size_t)data[2] << 8);
    data += 3;
    size -= 3;
    if (il > size) il = size;
    const uint8_t *img = data, *lab = data + il;
    size_t ll = size - il;
    uint8_t *gi = NULL, *gl = NULL;
    if (mode & 1) {
        if (!(gi = gz(img, il, &il))) return 0;
        img = gi;
    }
    if (mode & 2) {
        if (!(gl = gz(lab, ll, &ll))) {
            free(gi);
            return 0;
        }
        lab = gl;
    }
    char ip[128], lp[128];
    if (put(ip, sizeof ip, "images", mode & 1, img, il) != 0 || put(lp, sizeof lp, "labels", (mode >> 1) & 1, lab, ll)) {
        free(gi);
        free(gl);
        return 0;
    }
    tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
    o.shuffle_buffer = (mode >> 2) & 1 ? 5 : 0;
    o.seed = mode;
    o.one_hot = (mode >> 3) & 1;
    o.num_classes = (mode >> 4) & 1 ? 256 : 0;
    size_t batch = 1 + ((mode >> 5) & 7);

    tfx_stream *s = NULL;
    int rc = tfx_stream_open_idx(&s, ip, lp, &o);
    if (rc == TFX_OK) {
        tfx_batch_provider p;
        if (tfx_stream_provider(s, &p) != TFX_OK) abort();
        size_t per = (size_t)p.height * (size_t)p.width * (size_t)p.channels, n = tfx_stream_count(s);
        if (n == 0 || per == 0 || p.length != n) abort();
        size_t classes = o.num_classes ? (size_t)o.num_classes : 10;
        float *x = malloc(batch * per * sizeof *x);
        void *y = malloc(batch * (o.one_hot ? classes * sizeof(float) : sizeof(int32_t)));
        if (!x || !y) abort();
        for (int epoch = 0; epoch < 2; epoch++) {
            if (p.reset(p.payload, epoch) != 0) break; /* a read error is an error, not a crash */
            size_t total = 0, got = 0;
            int r;
            while ((r = p.next(p.payload, x, y, batch, &got)) == 0 && got > 0) {
                if (got > batch) abort();
                for (size_t i = 0; i < got * per; i++)
                    if (!(x[i] >= 0.0f && x[i] <= 1.0f)) abort();
                for (size_t i = 0; i < got && !o.one_hot; i++) {
                    int32_t v = ((const int32_t *)y)[i];
                    if (v < 0 || (size_t)v >= classes) abort();
                }
                total += got;
                if (total > n) abort();
            }
            if (r == 0 && total != n) abort(); /* a clean pass gives every sample once */
        }
        free(x);
        free(y);
        tfx_stream_free(s);
    } else if (s != NULL || rc >= 0) {
        abort();
    }
    unlink(ip);
    unlink(lp);
    free(gi);
    free(gl);
    return 0;
}
