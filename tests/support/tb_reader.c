/* Reading event files back: a strict TFRecord walker and a small Event decoder. Test code (the
 * tfx_testing archive): the library never reads event files; the tests also check them with an
 * independent Python walker and protoc. Input is untrusted: every length is checked before use. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/protobuf.h"
#include "tb_reader.h"

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int tfx__tfrecord_walk(const uint8_t *data, size_t n,
                       int (*fn)(void *user, const uint8_t *payload, size_t len), void *user,
                       size_t *count, size_t *end, int *truncated)
{
    size_t off = 0, k = 0;
    int rc = TFX_OK, cut = 0;
    while (off < n) {
        size_t left = n - off;
        if (left < 12) {
            cut = 1;
            rc = tfx__error(TFX_EFORMAT, "tfrecord: record %zu at offset %zu: header cut after %zu bytes",
                            k, off, left);
            break;
        }
        const uint8_t *h = data + off;
        if ((uint32_t)get_le(h + 8, 4) != tfx__masked_crc32c(h, 8)) {
            rc = tfx__error(TFX_EFORMAT, "tfrecord: record %zu at offset %zu: bad length crc", k, off);
            break;
        }
        uint64_t len = get_le(h, 8);
        if (len > left - 12 || left - 12 - len < 4) {
            cut = 1;
            rc = tfx__error(TFX_EFORMAT, "tfrecord: record %zu at offset %zu: %llu payload bytes, file ends first",
                            k, off, (unsigned long long)len);
            break;
        }
        if ((uint32_t)get_le(h + 12 + len, 4) != tfx__masked_crc32c(h + 12, (size_t)len)) {
            rc = tfx__error(TFX_EFORMAT, "tfrecord: record %zu at offset %zu: bad data crc", k, off);
            break;
        }
        if (fn) {
            int r = fn(user, h + 12, (size_t)len);
            if (r) {
                rc = r;
                break;
            }
        }
        off += 16 + (size_t)len;
        k++;
    }
    if (count) *count = k;
    if (end) *end = off;
    if (truncated) *truncated = cut;
    return rc;
}

/* ---- protobuf decoding ---- */

typedef struct {
    const uint8_t *p, *e;
} rd;

static int rd_varint(rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->e) return -1;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7F) << s;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Read one field: its number, wire type, and (varint/fixed) value or (len) span. */
typedef struct {
    unsigned field, wt;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} field;

static int rd_field(rd *r, field *f)
{
    uint64_t key;
    if (rd_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    f->field = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    switch (f->wt) {
    case TFX__PB_VARINT: return rd_varint(r, &f->v);
    case TFX__PB_FIXED64:
        if (r->e - r->p < 8) return -1;
        f->v = get_le(r->p, 8);
        r->p += 8;
        return 0;
    case TFX__PB_FIXED32:
        if (r->e - r->p < 4) return -1;
        f->v = get_le(r->p, 4);
        r->p += 4;
        return 0;
    case TFX__PB_LEN: {
        uint64_t len;
        if (rd_varint(r, &len) || len > (uint64_t)(r->e - r->p)) return -1;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 0;
    }
    default: return -1; /* groups (3, 4) never appear in these messages */
    }
}

#define FAIL(what) tfx__error(TFX_EFORMAT, "event: malformed %s", what)

static int decode_image(const uint8_t *p, size_t n, tfx__tb_value *v)
{
    rd r = {p, p + n};
    field f = {0};
    while (r.p < r.e) {
        if (rd_field(&r, &f)) return FAIL("Summary.Image");
        if (f.wt == TFX__PB_VARINT && f.field >= 1 && f.field <= 3) {
            int64_t x = (int64_t)f.v;
            if (f.field == 1) v->height = x;
            else if (f.field == 2) v->width = x;
            else v->colorspace = x;
        } else if (f.wt == TFX__PB_LEN && f.field == 4) {
            v->image = f.data;
            v->image_len = f.len;
        }
    }
    return TFX_OK;
}

/* TF2 scalar: TensorProto{dtype=1 (DT_FLOAT=1), tensor_shape=2 (rank 0),
 * tensor_content=4 (4 bytes) or float_val=5 (packed or not)}. */
static int decode_tensor(const uint8_t *p, size_t n, tfx__tb_value *v)
{
    rd r = {p, p + n};
    field f = {0};
    uint64_t dtype = 0;
    int have = 0;
    float x = 0;
    while (r.p < r.e) {
        if (rd_field(&r, &f)) return FAIL("TensorProto");
        if (f.field == 1 && f.wt == TFX__PB_VARINT) dtype = f.v;
        else if (f.field == 2 && f.wt == TFX__PB_LEN && f.len != 0)
            return TFX_OK; /* not rank 0: not a scalar; leave kind NONE */
        else if ((f.field == 4 || f.field == 5) && f.wt == TFX__PB_LEN && f.len == 4) {
            uint32_t u = (uint32_t)get_le(f.data, 4);
            memcpy(&x, &u, 4);
            have = 1;
        } else if (f.field == 5 && f.wt == TFX__PB_FIXED32) {
            uint32_t u = (uint32_t)f.v;
            memcpy(&x, &u, 4);
            have = 1;
        }
    }
    if (dtype == 1 && have) {
        v->kind = TFX__TB_TENSOR_FLOAT;
        v->simple_value = x;
    }
    return TFX_OK;
}

static int decode_value(const uint8_t *p, size_t n, tfx__tb_value *v)
{
    rd r = {p, p + n};
    field f = {0};
    while (r.p < r.e) {
        if (rd_field(&r, &f)) return FAIL("Summary.Value");
        if (f.field == 1 && f.wt == TFX__PB_LEN) {
            v->tag = (const char *)f.data;
            v->tag_len = f.len;
        } else if (f.field == 2 && f.wt == TFX__PB_FIXED32) {
            uint32_t u = (uint32_t)f.v;
            memcpy(&v->simple_value, &u, 4);
            v->kind = TFX__TB_SIMPLE_VALUE;
        } else if (f.field == 4 && f.wt == TFX__PB_LEN) {
            v->kind = TFX__TB_IMAGE;
            int rc = decode_image(f.data, f.len, v);
            if (rc) return rc;
        } else if (f.field == 8 && f.wt == TFX__PB_LEN) {
            int rc = decode_tensor(f.data, f.len, v);
            if (rc) return rc;
        }
    }
    return TFX_OK;
}

int tfx__tb_event_decode(const uint8_t *p, size_t n, tfx__tb_event *ev)
{
    TFX__CHECK_NULL(ev);
    memset(ev, 0, sizeof *ev);
    TFX__CHECK_ARG(p != NULL || n == 0, "tfx__tb_event_decode: NULL data");
    rd r = {p, p + n};
    field f = {0};
    while (r.p < r.e) {
        if (rd_field(&r, &f)) return FAIL("Event");
        if (f.field == 1 && f.wt == TFX__PB_FIXED64) {
            memcpy(&ev->wall_time, &f.v, 8);
            ev->has_wall_time = 1;
        } else if (f.field == 2 && f.wt == TFX__PB_VARINT) {
            ev->step = (int64_t)f.v;
        } else if (f.field == 3 && f.wt == TFX__PB_LEN) {
            ev->file_version = (const char *)f.data;
            ev->file_version_len = f.len;
        } else if (f.field == 5 && f.wt == TFX__PB_LEN) {
            /* Summary{repeated Value value = 1}: count all, decode the first. */
            rd s = {f.data, f.data + f.len};
            field g = {0};
            ev->has_summary = 1;
            while (s.p < s.e) {
                if (rd_field(&s, &g)) return FAIL("Summary");
                if (g.field == 1 && g.wt == TFX__PB_LEN) {
                    if (ev->n_values++ == 0) {
                        int rc = decode_value(g.data, g.len, &ev->value);
                        if (rc) return rc;
                    }
                }
            }
        }
    }
    return TFX_OK;
}

/* ---- whole files ---- */

typedef struct {
    tfx__tb_event *ev;
    size_t n;
} collect;

static int collect_event(void *user, const uint8_t *payload, size_t len)
{
    collect *c = user;
    int rc = tfx__tb_event_decode(payload, len, &c->ev[c->n]);
    if (rc) return tfx__error_prefix("record %zu", c->n);
    c->n++;
    return TFX_OK;
}

int tfx__tb_read_file(const char *path, uint8_t **buf, size_t *size, tfx__tb_event **events,
                      size_t *n_events)
{
    TFX__CHECK_NULL(path);
    TFX__CHECK_NULL(buf);
    TFX__CHECK_NULL(size);
    TFX__CHECK_NULL(events);
    TFX__CHECK_NULL(n_events);
    *buf = NULL;
    *events = NULL;
    *size = *n_events = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return tfx__error(TFX_EIO, "cannot open '%s': %s", path, strerror(errno));
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *t = tfx__realloc(data, ncap);
            if (!t) {
                fclose(f);
                tfx__free(data);
                return tfx__error(TFX_ENOMEM, "reading '%s': out of memory", path);
            }
            data = t;
            cap = ncap;
        }
        size_t k = fread(data + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        tfx__free(data);
        return tfx__error(TFX_EIO, "reading '%s' failed", path);
    }
    /* Each whole record is at least 16 bytes, so n / 16 + 1 events is enough. */
    collect c = {tfx__calloc(n / TFX__TFRECORD_OVERHEAD + 1, sizeof(tfx__tb_event)), 0};
    if (!c.ev) {
        tfx__free(data);
        return tfx__error(TFX_ENOMEM, "reading '%s': out of memory", path);
    }
    int truncated = 0;
    int rc = tfx__tfrecord_walk(data, n, collect_event, &c, NULL, NULL, &truncated);
    if (rc && !truncated) {
        tfx__free(c.ev);
        tfx__free(data);
        return tfx__error_prefix("%s", path);
    }
    if (rc) tfx_error_clear();
    *buf = data;
    *size = n;
    *events = c.ev;
    *n_events = c.n;
    return TFX_OK;
}
