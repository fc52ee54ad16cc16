/* Build small ONNX files in tests: protobuf messages as growing byte buffers (field numbers of
 * onnx.proto), a submessage embedded by value. */
#ifndef TFX_TESTS_ONNX_BUILDER_H
#define TFX_TESTS_ONNX_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct pmsg {
    uint8_t *p;
    size_t n, cap;
} pmsg;

static inline void pm_raw(pmsg *m, const void *d, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 64;
        m->p = realloc(m->p, m->cap);
    }
    if (n) memcpy(m->p + m->n, d, n);
    m->n += n;
}
static inline void pm_varint(pmsg *m, uint64_t v)
{
    uint8_t b[10];
    int k = 0;
    while (v >= 0x80) {
        b[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[k++] = (uint8_t)v;
    pm_raw(m, b, (size_t)k);
}
static inline void pm_int(pmsg *m, unsigned f, int64_t v)
{
    pm_varint(m, (uint64_t)f << 3);
    pm_varint(m, (uint64_t)v);
}
static inline void pm_bytes(pmsg *m, unsigned f, const void *d, size_t n)
{
    pm_varint(m, (uint64_t)f << 3 | 2);
    pm_varint(m, n);
    pm_raw(m, d, n);
}
static inline void pm_str(pmsg *m, unsigned f, const char *s) { pm_bytes(m, f, s, strlen(s)); }
static inline void pm_float(pmsg *m, unsigned f, float v)
{
    pm_varint(m, (uint64_t)f << 3 | 5);
    pm_raw(m, &v, 4); /* little-endian hosts */
}
/* embed sub as field f and free it */
static inline void pm_msg(pmsg *m, unsigned f, pmsg *sub)
{
    pm_bytes(m, f, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

/* ValueInfoProto of a float tensor (elem type et) with dims (-1: symbolic "N") */
static inline void pm_value_info(pmsg *g, unsigned f, const char *name, int et, int rank, const int64_t *dims)
{
    pmsg vi = {0}, type = {0}, tt = {0}, shape = {0};
    pm_str(&vi, 1, name);
    pm_int(&tt, 1, et);
    for (int k = 0; k < rank; k++) {
        pmsg d = {0};
        if (dims[k] < 0) pm_str(&d, 2, "N");
        else pm_int(&d, 1, dims[k]);
        pm_msg(&shape, 1, &d);
    }
    pm_msg(&tt, 2, &shape);
    pm_msg(&type, 1, &tt);
    pm_msg(&vi, 2, &type);
    pm_msg(g, f, &vi);
}

/* TensorProto of floats (raw_data) */
static inline void pm_tensor(pmsg *t, const char *name, int rank, const int64_t *dims, const float *v, size_t n)
{
    for (int k = 0; k < rank; k++) pm_int(t, 1, dims[k]);
    pm_int(t, 2, 1);
    pm_str(t, 8, name);
    pm_bytes(t, 9, v, n * sizeof *v);
}

/* NodeProto: op, name, inputs (n_in), outputs (n_out); attributes added by the caller in extra */
static inline void pm_node(pmsg *g, const char *op, const char *name, const char *const *in, int n_in,
                           const char *const *out, int n_out, pmsg *attrs)
{
    pmsg nd = {0};
    for (int k = 0; k < n_in; k++) pm_str(&nd, 1, in[k]);
    for (int k = 0; k < n_out; k++) pm_str(&nd, 2, out[k]);
    if (name) pm_str(&nd, 3, name);
    pm_str(&nd, 4, op);
    if (attrs && attrs->n) pm_raw(&nd, attrs->p, attrs->n);
    if (attrs) {
        free(attrs->p);
        memset(attrs, 0, sizeof *attrs);
    }
    pm_msg(g, 1, &nd);
}

static inline void pm_attr_ints(pmsg *attrs, const char *name, const int64_t *v, int n)
{
    pmsg a = {0};
    pm_str(&a, 1, name);
    pm_int(&a, 20, 7);
    for (int k = 0; k < n; k++) pm_int(&a, 8, v[k]);
    pm_msg(attrs, 5, &a);
}
static inline void pm_attr_int(pmsg *attrs, const char *name, int64_t v)
{
    pmsg a = {0};
    pm_str(&a, 1, name);
    pm_int(&a, 20, 2);
    pm_int(&a, 3, v);
    pm_msg(attrs, 5, &a);
}

/* ModelProto around graph g (freed), opset */
static inline pmsg pm_model(pmsg *g, int opset)
{
    pmsg m = {0}, os = {0};
    pm_int(&m, 1, 7);
    pm_str(&os, 1, "");
    pm_int(&os, 2, opset);
    pm_msg(&m, 8, &os);
    pm_msg(&m, 7, g);
    return m;
}

#endif
