/* The protobuf wire format, written by hand (DESIGN decision 13): the encoder that TensorBoard
 * event files and ONNX export share. A sink with p == NULL only counts, so the same code
 * computes nested sizes and then writes. */
#include <string.h>

#include "core/protobuf.h"

size_t tfx__pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void tfx__pb_raw(tfx__pb *b, const void *data, size_t n)
{
    if (b->p && n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void tfx__pb_varint(tfx__pb *b, uint64_t v)
{
    if (!b->p) {
        b->n += tfx__pb_varint_size(v);
        return;
    }
    while (v >= 0x80) {
        b->p[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (uint8_t)v;
}

void tfx__pb_key(tfx__pb *b, unsigned field, unsigned wire_type)
{
    tfx__pb_varint(b, ((uint64_t)field << 3) | wire_type);
}

void tfx__pb_fixed32(tfx__pb *b, uint32_t v)
{
    uint8_t t[4];
    for (int i = 0; i < 4; i++) t[i] = (uint8_t)(v >> (8 * i));
    tfx__pb_raw(b, t, 4);
}

void tfx__pb_fixed64(tfx__pb *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> (8 * i));
    tfx__pb_raw(b, t, 8);
}

void tfx__pb_float(tfx__pb *b, unsigned field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4); /* IEEE-754 bits; byte order is made explicit by fixed32 */
    tfx__pb_key(b, field, TFX__PB_FIXED32);
    tfx__pb_fixed32(b, u);
}

void tfx__pb_double(tfx__pb *b, unsigned field, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    tfx__pb_key(b, field, TFX__PB_FIXED64);
    tfx__pb_fixed64(b, u);
}

void tfx__pb_int64(tfx__pb *b, unsigned field, int64_t v)
{
    tfx__pb_key(b, field, TFX__PB_VARINT);
    tfx__pb_varint(b, (uint64_t)v); /* two's complement, as protobuf does for int64 */
}

void tfx__pb_len_prefix(tfx__pb *b, unsigned field, size_t n)
{
    tfx__pb_key(b, field, TFX__PB_LEN);
    tfx__pb_varint(b, n);
}

void tfx__pb_bytes(tfx__pb *b, unsigned field, const void *data, size_t n)
{
    tfx__pb_len_prefix(b, field, n);
    tfx__pb_raw(b, data, n);
}


/* ---- the reader ---- */

#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"

static int pbr_fail(const tfx__pbr *r, const char *fmt, ...) TFX__PRINTF(2, 3);
static int pbr_fail(const tfx__pbr *r, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *path = r->path ? r->path : "";
    if (r->field)
        return tfx__error(TFX_EFORMAT, "%s: %s%sfield %u: %s", r->fn ? r->fn : "protobuf", path, path[0] ? " " : "",
                          r->field, what);
    return tfx__error(TFX_EFORMAT, "%s: %s%s%s", r->fn ? r->fn : "protobuf", path, path[0] ? ": " : "", what);
}

void tfx__pbr_init(tfx__pbr *r, const char *fn, const char *path, const void *data, size_t n)
{
    r->p = data;
    r->end = r->p + (data ? n : 0);
    r->fn = fn;
    r->path = path;
    r->field = 0;
}

int tfx__pbr_varint(tfx__pbr *r, uint64_t *v)
{
    uint64_t x = 0;
    *v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->p == r->end) return pbr_fail(r, "varint cut short after %u bytes", i);
        uint8_t b = *r->p++;
        /* the tenth byte holds bit 63 only */
        if (i == 9 && b > 1) return pbr_fail(r, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return TFX_OK;
        }
    }
    return pbr_fail(r, "varint longer than 10 bytes");
}

int tfx__pbr_key(tfx__pbr *r, unsigned *field, unsigned *wire)
{
    uint64_t k;
    r->field = 0;
    int rc = tfx__pbr_varint(r, &k);
    if (rc) return rc;
    if ((k >> 3) == 0 || (k >> 3) > 0x1fffffff)
        return pbr_fail(r, "key with field number %llu", (unsigned long long)(k >> 3));
    r->field = (unsigned)(k >> 3);
    unsigned w = (unsigned)(k & 7);
    if (w == 3 || w == 4) return pbr_fail(r, "group wire type %u not supported", w);
    if (w > 5) return pbr_fail(r, "invalid wire type %u", w);
    *field = r->field;
    *wire = w;
    return TFX_OK;
}

static int pbr_need(tfx__pbr *r, size_t n, const char *what)
{
    if (tfx__pbr_left(r) < n)
        return pbr_fail(r, "%s of %zu bytes beyond the %zu bytes left", what, n, tfx__pbr_left(r));
    return TFX_OK;
}

int tfx__pbr_fixed32(tfx__pbr *r, uint32_t *v)
{
    *v = 0;
    int rc = pbr_need(r, 4, "fixed32");
    if (rc) return rc;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return TFX_OK;
}

int tfx__pbr_fixed64(tfx__pbr *r, uint64_t *v)
{
    *v = 0;
    int rc = pbr_need(r, 8, "fixed64");
    if (rc) return rc;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | r->p[i];
    *v = x;
    r->p += 8;
    return TFX_OK;
}

int tfx__pbr_bytes(tfx__pbr *r, const uint8_t **data, size_t *n)
{
    uint64_t len;
    *data = NULL;
    *n = 0;
    int rc = tfx__pbr_varint(r, &len);
    if (rc) return rc;
    if (len > tfx__pbr_left(r))
        return pbr_fail(r, "length %llu beyond the %zu bytes left", (unsigned long long)len, tfx__pbr_left(r));
    *data = r->p;
    *n = (size_t)len;
    r->p += len;
    return TFX_OK;
}

int tfx__pbr_sub(tfx__pbr *r, tfx__pbr *sub, const char *path)
{
    const uint8_t *d;
    size_t n;
    int rc = tfx__pbr_bytes(r, &d, &n);
    if (rc) return rc;
    tfx__pbr_init(sub, r->fn, path, d, n);
    return TFX_OK;
}

int tfx__pbr_skip(tfx__pbr *r, unsigned wire)
{
    uint64_t v;
    uint32_t u;
    const uint8_t *d;
    size_t n;
    switch (wire) {
    case TFX__PB_VARINT: return tfx__pbr_varint(r, &v);
    case TFX__PB_FIXED64: return tfx__pbr_fixed64(r, &v);
    case TFX__PB_LEN: return tfx__pbr_bytes(r, &d, &n);
    case TFX__PB_FIXED32: return tfx__pbr_fixed32(r, &u);
    default: return pbr_fail(r, "cannot skip wire type %u", wire);
    }
}

int tfx__pbr_int64(tfx__pbr *r, unsigned wire, int64_t *v)
{
    if (wire != TFX__PB_VARINT) return pbr_fail(r, "wire type %u where an integer (varint) is expected", wire);
    uint64_t u;
    int rc = tfx__pbr_varint(r, &u);
    if (rc) return rc;
    *v = (int64_t)u; /* two's complement, as protobuf writes int64 */
    return TFX_OK;
}

int tfx__pbr_float(tfx__pbr *r, unsigned wire, float *v)
{
    if (wire != TFX__PB_FIXED32) return pbr_fail(r, "wire type %u where a float (fixed32) is expected", wire);
    uint32_t u;
    int rc = tfx__pbr_fixed32(r, &u);
    if (rc) return rc;
    memcpy(v, &u, 4);
    return TFX_OK;
}

/* Make room for `more` elements of `size` bytes after *n (checked against max first). */
static int pbr_room(tfx__pbr *r, void **vals, size_t *n, size_t *cap, size_t more, size_t size, size_t max)
{
    if (more > max || *n > max - more) return pbr_fail(r, "more than %zu values", max);
    if (*n + more <= *cap) return TFX_OK;
    size_t c = *cap ? *cap : 8;
    while (c < *n + more) c = c > max / 2 ? max : c * 2;
    if (c < *n + more) c = *n + more;
    if (c > SIZE_MAX / size) return pbr_fail(r, "%zu values overflow the address space", c);
    void *p = tfx__realloc(*vals, c * size);
    if (!p) return tfx__error(TFX_ENOMEM, "%s: out of memory for %zu values", r->fn ? r->fn : "protobuf", c);
    *vals = p;
    *cap = c;
    return TFX_OK;
}

int tfx__pbr_append_int64(tfx__pbr *r, unsigned wire, int64_t **vals, size_t *n, size_t *cap, size_t max)
{
    int rc;
    if (wire == TFX__PB_VARINT) {
        int64_t v;
        if ((rc = tfx__pbr_int64(r, wire, &v))) return rc;
        if ((rc = pbr_room(r, (void **)vals, n, cap, 1, sizeof **vals, max))) return rc;
        (*vals)[(*n)++] = v;
        return TFX_OK;
    }
    if (wire != TFX__PB_LEN) return pbr_fail(r, "wire type %u where integers are expected", wire);
    const uint8_t *d;
    size_t len;
    if ((rc = tfx__pbr_bytes(r, &d, &len))) return rc;
    /* count first: every varint ends with a byte below 0x80, and the block must end with one */
    size_t count = 0;
    for (size_t i = 0; i < len; i++) count += d[i] < 0x80;
    if (len && d[len - 1] >= 0x80) return pbr_fail(r, "packed integers end inside a varint");
    if ((rc = pbr_room(r, (void **)vals, n, cap, count, sizeof **vals, max))) return rc;
    tfx__pbr block;
    tfx__pbr_init(&block, r->fn, r->path, d, len);
    block.field = r->field;
    for (size_t i = 0; i < count; i++) {
        uint64_t u;
        if ((rc = tfx__pbr_varint(&block, &u))) return rc;
        (*vals)[(*n)++] = (int64_t)u;
    }
    return TFX_OK;
}

int tfx__pbr_append_float(tfx__pbr *r, unsigned wire, float **vals, size_t *n, size_t *cap, size_t max)
{
    int rc;
    if (wire == TFX__PB_FIXED32) {
        float v;
        if ((rc = tfx__pbr_float(r, wire, &v))) return rc;
        if ((rc = pbr_room(r, (void **)vals, n, cap, 1, sizeof **vals, max))) return rc;
        (*vals)[(*n)++] = v;
        return TFX_OK;
    }
    if (wire != TFX__PB_LEN) return pbr_fail(r, "wire type %u where floats are expected", wire);
    const uint8_t *d;
    size_t len;
    if ((rc = tfx__pbr_bytes(r, &d, &len))) return rc;
    if (len % 4) return pbr_fail(r, "packed floats of %zu bytes (not a multiple of 4)", len);
    if ((rc = pbr_room(r, (void **)vals, n, cap, len / 4, sizeof **vals, max))) return rc;
    for (size_t i = 0; i < len / 4; i++) {
        uint32_t u = (uint32_t)d[4 * i] | (uint32_t)d[4 * i + 1] << 8 | (uint32_t)d[4 * i + 2] << 16 |
                     (uint32_t)d[4 * i + 3] << 24;
        memcpy(&(*vals)[(*n)++], &u, 4);
    }
    return TFX_OK;
}
