/* libFuzzer target for the IDX reader (tfx__idx_from_memory, behind tfx_dataset_load_idx).
 * Input: 1 mode byte, 2 bytes (little-endian) of images-part length, the images part, then the
 * labels part. Mode bit 0/1: gzip the images/labels part here before parsing, so mutations of a
 * valid IDX payload reach the header checks behind a valid gzip layer; without the bit the
 * bytes go in raw (a raw gzip stream then exercises tfx__gunzip). Bits 2..7 pick options.
 * Seeds: tests/fuzz/corpus/idx/. */
#include <stdlib.h>
#include <zlib.h>

#include "data/data_internal.h"
#include "fuzz.h"

/* gzip with plain malloc (not libtfx's allocator: this is the test's own work). */
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
        gi = gz(img, il, &il);
        if (!gi) return 0;
        img = gi;
    }
    if (mode & 2) {
        gl = gz(lab, ll, &ll);
        if (!gl) {
            free(gi);
            return 0;
        }
        lab = gl;
    }
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    /* A few MB: a gzip bomb must hit max_bytes, not libFuzzer's memory limit. */
    o.max_bytes = (size_t)1 << 22;
    o.num_classes = (mode >> 2) & 1 ? 256 : 0;
    o.offset = (mode >> 3) & 3;
    o.limit = (mode >> 5) & 3;
    tfx_dataset *ds = NULL;
    int rc = tfx__idx_from_memory(img, il, lab, ll, "img", "lab", &o, &ds);
    if (rc == TFX_OK) {
        int shape[3];
        size_t n = tfx_dataset_count(ds), per = tfx_dataset_sample_size(ds);
        if (ds == NULL || n == 0 || tfx_dataset_shape(ds, shape) != TFX_OK || shape[2] != 1 ||
            per != (size_t)shape[0] * (size_t)shape[1])
            abort();
        /* Every pixel in [0, 1], every label in range: touches the whole buffers. */
        const float *px = tfx_dataset_images(ds);
        const int32_t *lb = tfx_dataset_labels(ds);
        for (size_t i = 0; i < n * per; i++)
            if (!(px[i] >= 0.0f && px[i] <= 1.0f)) abort();
        for (size_t i = 0; i < n; i++)
            if (lb[i] < 0 || lb[i] >= tfx_dataset_num_classes(ds)) abort();
        tfx_dataset_free(ds);
    } else if (ds != NULL || (rc != TFX_EFORMAT && rc != TFX_EINVAL)) {
        /* EINVAL only for an offset beyond the samples */
        abort();
    }
    free(gi);
    free(gl);
    return 0;
}
