/* The ONNX file reader: ModelProto -> tfx__onnx_model, over core's bounds-checked protobuf
 * cursor. Repeated messages are counted in a first pass over their parent, so every array is
 * allocated once at its final size; every string is copied NUL-terminated into one arena;
 * raw_data is read in place. Field numbers: onnx.proto (onnx 1.12). */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "core/protobuf.h"
#include "onnx/onnx_internal.h"

struct tfx__onnx_block {
    struct tfx__onnx_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *tfx__onnx_arena_alloc(tfx__onnx_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    struct tfx__onnx_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = tfx__malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void tfx__onnx_arena_free(tfx__onnx_arena *a)
{
    while (a && a->head) {
        struct tfx__onnx_block *n = a->head->next;
        tfx__free(a->head);
        a->head = n;
    }
}

void tfx__onnx_model_release(tfx__onnx_model *m)
{
    if (!m) return;
    tfx__onnx_arena_free(&m->arena);
    memset(m, 0, sizeof *m);
}

static int nomem(const char *fn) { return tfx__error(TFX_ENOMEM, "%s: out of memory reading the ONNX file", fn); }

/* A length-delimited string field as a NUL-terminated copy in the arena. */
static int read_string(tfx__pbr *r, tfx__onnx_arena *a, const char **out)
{
    const uint8_t *d;
    size_t n;
    int rc = tfx__pbr_bytes(r, &d, &n);
    if (rc) return rc;
    if (memchr(d, 0, n))
        return tfx__error(TFX_EFORMAT, "%s: %s field %u: string with a NUL byte", r->fn, r->path, r->field);
    char *s = tfx__onnx_arena_alloc(a, n + 1);
    if (!s) return nomem(r->fn);
    memcpy(s, d, n);
    s[n] = '\0';
    *out = s;
    return TFX_OK;
}

/* Count the occurrences of each field below 32 in a message (a copy of the cursor). */
static int count_fields(const tfx__pbr *r0, size_t counts[32])
{
    tfx__pbr r = *r0;
    memset(counts, 0, 32 * sizeof counts[0]);
    while (tfx__pbr_left(&r)) {
        unsigned f, w;
        int rc = tfx__pbr_key(&r, &f, &w);
        if (!rc) rc = tfx__pbr_skip(&r, w);
        if (rc) return rc;
        if (f < 32) counts[f]++;
    }
    return TFX_OK;
}

static int check_wire(tfx__pbr *r, unsigned wire, unsigned want)
{
    if (wire == want) return TFX_OK;
    return tfx__error(TFX_EFORMAT, "%s: %s field %u: wire type %u, expected %u", r->fn, r->path, r->field, wire, want);
}

static int element_size(int type)
{
    switch (type) {
    case TFX__ONNX_FLOAT:
    case TFX__ONNX_INT32: return 4;
    case TFX__ONNX_INT64:
    case TFX__ONNX_DOUBLE: return 8;
    case 2:
    case 3:
    case 9: return 1; /* uint8, int8, bool */
    case 4:
    case 5:
    case 10:
    case 16: return 2;
    case 12: return 4;
    case 13: return 8;
    default: return 0;
    }
}

static int read_tensor(tfx__pbr *r, tfx__onnx_arena *a, tfx__onnx_tensor *t)
{
    int rc = TFX_OK;
    int64_t *dims = NULL, *ints = NULL;
    size_t nd = 0, cd = 0, ni = 0, ci = 0, nf = 0, cf = 0, raw_len = 0;
    float *floats = NULL;
    int has_raw = 0;
    memset(t, 0, sizeof *t);
    t->name = "";
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        int64_t v;
        const uint8_t *d;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        switch (f) {
        case 1: rc = tfx__pbr_append_int64(r, w, &dims, &nd, &cd, TFX__ONNX_MAX_RANK); break;
        case 2:
            if (!(rc = tfx__pbr_int64(r, w, &v))) t->data_type = (v < 0 || v > 64) ? -1 : (int)v;
            break;
        case 4: rc = tfx__pbr_append_float(r, w, &floats, &nf, &cf, (size_t)TFX__ONNX_MAX_ELEMS); break;
        case 5:
        case 7: rc = tfx__pbr_append_int64(r, w, &ints, &ni, &ci, (size_t)TFX__ONNX_MAX_ELEMS); break;
        case 8:
            if (!(rc = check_wire(r, w, TFX__PB_LEN))) rc = read_string(r, a, &t->name);
            break;
        case 9:
            if (!(rc = check_wire(r, w, TFX__PB_LEN))) rc = tfx__pbr_bytes(r, &d, &raw_len);
            if (!rc) {
                t->raw = d;
                has_raw = 1;
            }
            break;
        case 13:
            t->external = 1;
            rc = tfx__pbr_skip(r, w);
            break;
        case 14:
            if (!(rc = tfx__pbr_int64(r, w, &v)) && v != 0) t->external = 1;
            break;
        default: rc = tfx__pbr_skip(r, w);
        }
    }
    if (rc) goto done;
    r->field = 0;
    t->rank = (int)nd;
    size_t count = 1;
    for (size_t k = 0; k < nd; k++) {
        if (dims[k] < 0) {
            rc = tfx__error(TFX_EFORMAT, "%s: %s: tensor '%s' has dimension %zu of %lld", r->fn, r->path, t->name, k,
                            (long long)dims[k]);
            goto done;
        }
        if (dims[k] > TFX__ONNX_MAX_ELEMS || (dims[k] && count > (size_t)(TFX__ONNX_MAX_ELEMS / dims[k]))) {
            rc = tfx__error(TFX_ENOTSUP, "%s: %s: tensor '%s' of more than 2^31 elements (dimension %zu is %lld)",
                            r->fn, r->path, t->name, k, (long long)dims[k]);
            goto done;
        }
        t->dims[k] = dims[k];
        count *= (size_t)dims[k];
    }
    t->count = count;
    if (t->external) goto done; /* the builder refuses it by name; its sizes mean nothing here */
    int es = element_size(t->data_type);
    if (has_raw) {
        if (es && raw_len != count * (size_t)es) {
            rc = tfx__error(TFX_EFORMAT, "%s: %s: tensor '%s': raw_data of %zu bytes for %zu elements of %d bytes",
                            r->fn, r->path, t->name, raw_len, count, es);
            goto done;
        }
    } else if (nf) {
        if (nf != count) {
            rc = tfx__error(TFX_EFORMAT, "%s: %s: tensor '%s': %zu float_data values for %zu elements", r->fn, r->path,
                            t->name, nf, count);
            goto done;
        }
        float *c = tfx__onnx_arena_alloc(a, nf * sizeof *c);
        if (!c) {
            rc = nomem(r->fn);
            goto done;
        }
        memcpy(c, floats, nf * sizeof *c);
        t->f = c;
    } else if (ni) {
        if (ni != count) {
            rc = tfx__error(TFX_EFORMAT, "%s: %s: tensor '%s': %zu integer values for %zu elements", r->fn, r->path,
                            t->name, ni, count);
            goto done;
        }
        int64_t *c = tfx__onnx_arena_alloc(a, ni * sizeof *c);
        if (!c) {
            rc = nomem(r->fn);
            goto done;
        }
        memcpy(c, ints, ni * sizeof *c);
        t->i = c;
    } else if (count != 0) {
        /* a tensor with no values: only meaningful when it has none (the builder refuses the others) */
        t->raw = NULL;
    }
done:
    tfx__free(dims);
    tfx__free(ints);
    tfx__free(floats);
    return rc;
}

int tfx__onnx_read_tensor(const char *fn, const void *data, size_t size, tfx__onnx_arena *arena, tfx__onnx_tensor *out)
{
    tfx__pbr r;
    tfx__pbr_init(&r, fn, "tensor", data, size);
    return read_tensor(&r, arena, out);
}

float tfx__onnx_tensor_float(const tfx__onnx_tensor *t, size_t i)
{
    if (t->f) return t->f[i];
    if (t->i) return (float)t->i[i];
    const uint8_t *p = t->raw;
    if (t->data_type == TFX__ONNX_FLOAT) {
        p += 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return (float)tfx__onnx_tensor_int(t, i);
}

int64_t tfx__onnx_tensor_int(const tfx__onnx_tensor *t, size_t i)
{
    if (t->i) return t->i[i];
    if (t->f) return (int64_t)t->f[i];
    const uint8_t *p = t->raw;
    if (t->data_type == TFX__ONNX_INT64) {
        p += 8 * i;
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--) u = u << 8 | p[k];
        return (int64_t)u;
    }
    if (t->data_type == TFX__ONNX_INT32) {
        p += 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        return (int64_t)(int32_t)u;
    }
    return (int64_t)tfx__onnx_tensor_float(t, i);
}

static int read_attr(tfx__pbr *r, tfx__onnx_arena *a, tfx__onnx_attr *at)
{
    int rc = TFX_OK;
    int64_t *ints = NULL;
    float *floats = NULL;
    size_t ni = 0, ci = 0, nf = 0, cf = 0;
    memset(at, 0, sizeof *at);
    at->name = "";
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        int64_t v;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        switch (f) {
        case 1:
            if (!(rc = check_wire(r, w, TFX__PB_LEN))) rc = read_string(r, a, &at->name);
            break;
        case 20:
            if (!(rc = tfx__pbr_int64(r, w, &v))) at->type = (v < 0 || v > 64) ? -1 : (int)v;
            break;
        case 2: rc = tfx__pbr_float(r, w, &at->f); break;
        case 3: rc = tfx__pbr_int64(r, w, &at->i); break;
        case 4:
            if (!(rc = check_wire(r, w, TFX__PB_LEN))) rc = read_string(r, a, &at->s);
            break;
        case 5: {
            if ((rc = check_wire(r, w, TFX__PB_LEN))) break;
            tfx__pbr sub;
            char path[300];
            snprintf(path, sizeof path, "%s.t", r->path);
            if ((rc = tfx__pbr_sub(r, &sub, path))) break;
            tfx__onnx_tensor *t = tfx__onnx_arena_alloc(a, sizeof *t);
            if (!t) {
                rc = nomem(r->fn);
                break;
            }
            rc = read_tensor(&sub, a, t);
            at->t = t;
            break;
        }
        case 7: rc = tfx__pbr_append_float(r, w, &floats, &nf, &cf, TFX__ONNX_MAX_LIST); break;
        case 8: rc = tfx__pbr_append_int64(r, w, &ints, &ni, &ci, TFX__ONNX_MAX_LIST); break;
        default: rc = tfx__pbr_skip(r, w);
        }
    }
    if (!rc && nf) {
        float *c = tfx__onnx_arena_alloc(a, nf * sizeof *c);
        if (!c)
            rc = nomem(r->fn);
        else {
            memcpy(c, floats, nf * sizeof *c);
            at->floats = c;
            at->n_floats = nf;
        }
    }
    if (!rc && ni) {
        int64_t *c = tfx__onnx_arena_alloc(a, ni * sizeof *c);
        if (!c)
            rc = nomem(r->fn);
        else {
            memcpy(c, ints, ni * sizeof *c);
            at->ints = c;
            at->n_ints = ni;
        }
    }
    tfx__free(ints);
    tfx__free(floats);
    return rc;
}

static int read_node(tfx__pbr *r, tfx__onnx_arena *a, tfx__onnx_node *n)
{
    size_t counts[32];
    int rc = count_fields(r, counts);
    if (rc) return rc;
    if (counts[1] > TFX__ONNX_MAX_LIST || counts[2] > TFX__ONNX_MAX_LIST || counts[5] > TFX__ONNX_MAX_LIST)
        return tfx__error(TFX_EFORMAT, "%s: %s: more than 2^20 inputs, outputs or attributes", r->fn, r->path);
    memset(n, 0, sizeof *n);
    n->name = n->op_type = n->domain = "";
    n->inputs = tfx__onnx_arena_alloc(a, counts[1] * sizeof *n->inputs);
    n->outputs = tfx__onnx_arena_alloc(a, counts[2] * sizeof *n->outputs);
    n->attrs = tfx__onnx_arena_alloc(a, counts[5] * sizeof *n->attrs);
    if (!n->inputs || !n->outputs || !n->attrs) return nomem(r->fn);
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        if (f == 1 || f == 2 || f == 3 || f == 4 || f == 7 || f == 5)
            if ((rc = check_wire(r, w, TFX__PB_LEN))) break;
        switch (f) {
        case 1: rc = read_string(r, a, &n->inputs[n->n_inputs++]); break;
        case 2: rc = read_string(r, a, &n->outputs[n->n_outputs++]); break;
        case 3: rc = read_string(r, a, &n->name); break;
        case 4: rc = read_string(r, a, &n->op_type); break;
        case 7: rc = read_string(r, a, &n->domain); break;
        case 5: {
            char path[300];
            snprintf(path, sizeof path, "%s.attribute[%zu]", r->path, n->n_attrs);
            tfx__pbr sub;
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_attr(&sub, a, &n->attrs[n->n_attrs++]);
            break;
        }
        default: rc = tfx__pbr_skip(r, w);
        }
    }
    return rc;
}

static int read_shape(tfx__pbr *r, tfx__onnx_value_info *vi)
{
    int rc = TFX_OK;
    vi->has_shape = 1;
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        if (f != 1) {
            rc = tfx__pbr_skip(r, w);
            continue;
        }
        if ((rc = check_wire(r, w, TFX__PB_LEN))) break;
        if (vi->rank >= TFX__ONNX_MAX_RANK)
            return tfx__error(TFX_ENOTSUP, "%s: %s: value '%s' of rank above %d", r->fn, r->path, vi->name,
                              TFX__ONNX_MAX_RANK);
        tfx__pbr dim;
        if ((rc = tfx__pbr_sub(r, &dim, r->path))) break;
        int64_t v = -1;
        while (!rc && tfx__pbr_left(&dim)) {
            if ((rc = tfx__pbr_key(&dim, &f, &w))) break;
            if (f == 1) {
                if (!(rc = tfx__pbr_int64(&dim, w, &v)) && v < 0)
                    rc = tfx__error(TFX_EFORMAT, "%s: %s: value '%s' has dimension %d of %lld", r->fn, r->path,
                                    vi->name, vi->rank, (long long)v);
            } else {
                rc = tfx__pbr_skip(&dim, w); /* dim_param: symbolic, stays -1 */
            }
        }
        vi->dims[vi->rank++] = v;
    }
    return rc;
}

static int read_value_info(tfx__pbr *r, tfx__onnx_arena *a, tfx__onnx_value_info *vi)
{
    int rc = TFX_OK;
    memset(vi, 0, sizeof *vi);
    vi->name = "";
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        if (f == 1) {
            if (!(rc = check_wire(r, w, TFX__PB_LEN))) rc = read_string(r, a, &vi->name);
        } else if (f == 2) {
            tfx__pbr type;
            if ((rc = check_wire(r, w, TFX__PB_LEN)) || (rc = tfx__pbr_sub(r, &type, r->path))) break;
            while (!rc && tfx__pbr_left(&type)) {
                if ((rc = tfx__pbr_key(&type, &f, &w))) break;
                if (f != 1) { /* sequences, maps, ...: not a tensor (elem_type stays 0) */
                    rc = tfx__pbr_skip(&type, w);
                    continue;
                }
                tfx__pbr tt;
                if ((rc = check_wire(&type, w, TFX__PB_LEN)) || (rc = tfx__pbr_sub(&type, &tt, r->path))) break;
                while (!rc && tfx__pbr_left(&tt)) {
                    if ((rc = tfx__pbr_key(&tt, &f, &w))) break;
                    int64_t v;
                    if (f == 1) {
                        if (!(rc = tfx__pbr_int64(&tt, w, &v))) vi->elem_type = (v < 0 || v > 64) ? -1 : (int)v;
                    } else if (f == 2) {
                        tfx__pbr sh;
                        if (!(rc = check_wire(&tt, w, TFX__PB_LEN)) && !(rc = tfx__pbr_sub(&tt, &sh, r->path))) {
                            vi->rank = 0;
                            rc = read_shape(&sh, vi);
                        }
                    } else {
                        rc = tfx__pbr_skip(&tt, w);
                    }
                }
            }
        } else {
            rc = tfx__pbr_skip(r, w);
        }
    }
    return rc;
}

static int read_graph(tfx__pbr *r, tfx__onnx_model *m)
{
    size_t counts[32];
    int rc = count_fields(r, counts);
    if (rc) return rc;
    if (counts[1] > TFX__ONNX_MAX_NODES || counts[5] > TFX__ONNX_MAX_NODES || counts[11] > TFX__ONNX_MAX_NODES ||
        counts[12] > TFX__ONNX_MAX_NODES || counts[13] > TFX__ONNX_MAX_NODES)
        return tfx__error(TFX_ENOTSUP, "%s: graph: more than 2^20 nodes, initializers or values", r->fn);
    tfx__onnx_arena *a = &m->arena;
    m->nodes = tfx__onnx_arena_alloc(a, counts[1] * sizeof *m->nodes);
    m->inits = tfx__onnx_arena_alloc(a, counts[5] * sizeof *m->inits);
    m->inputs = tfx__onnx_arena_alloc(a, counts[11] * sizeof *m->inputs);
    m->outputs = tfx__onnx_arena_alloc(a, counts[12] * sizeof *m->outputs);
    m->value_infos = tfx__onnx_arena_alloc(a, counts[13] * sizeof *m->value_infos);
    if (!m->nodes || !m->inits || !m->inputs || !m->outputs || !m->value_infos) return nomem(r->fn);
    while (!rc && tfx__pbr_left(r)) {
        unsigned f, w;
        if ((rc = tfx__pbr_key(r, &f, &w))) break;
        if (f != 1 && f != 5 && f != 11 && f != 12 && f != 13) {
            rc = tfx__pbr_skip(r, w);
            continue;
        }
        if ((rc = check_wire(r, w, TFX__PB_LEN))) break;
        char path[64];
        tfx__pbr sub;
        switch (f) {
        case 1:
            snprintf(path, sizeof path, "graph.node[%zu]", m->n_nodes);
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_node(&sub, a, &m->nodes[m->n_nodes++]);
            break;
        case 5:
            snprintf(path, sizeof path, "graph.initializer[%zu]", m->n_inits);
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_tensor(&sub, a, &m->inits[m->n_inits++]);
            break;
        case 11:
            snprintf(path, sizeof path, "graph.input[%zu]", m->n_inputs);
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_value_info(&sub, a, &m->inputs[m->n_inputs++]);
            break;
        case 12:
            snprintf(path, sizeof path, "graph.output[%zu]", m->n_outputs);
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_value_info(&sub, a, &m->outputs[m->n_outputs++]);
            break;
        default:
            snprintf(path, sizeof path, "graph.value_info[%zu]", m->n_value_infos);
            if (!(rc = tfx__pbr_sub(r, &sub, path))) rc = read_value_info(&sub, a, &m->value_infos[m->n_value_infos++]);
        }
    }
    return rc;
}

int tfx__onnx_read(const char *fn, const void *data, size_t size, tfx__onnx_model *m)
{
    memset(m, 0, sizeof *m);
    tfx__pbr r;
    tfx__pbr_init(&r, fn, "model", data, size);
    int rc = TFX_OK, graphs = 0;
    while (!rc && tfx__pbr_left(&r)) {
        unsigned f, w;
        if ((rc = tfx__pbr_key(&r, &f, &w))) break;
        if (f == 1) {
            rc = tfx__pbr_int64(&r, w, &m->ir_version);
        } else if (f == 8) {
            tfx__pbr sub;
            if ((rc = check_wire(&r, w, TFX__PB_LEN)) || (rc = tfx__pbr_sub(&r, &sub, "model.opset_import"))) break;
            const char *domain = "";
            int64_t version = 0;
            while (!rc && tfx__pbr_left(&sub)) {
                if ((rc = tfx__pbr_key(&sub, &f, &w))) break;
                if (f == 1)
                    rc = check_wire(&sub, w, TFX__PB_LEN) ? TFX_EFORMAT : read_string(&sub, &m->arena, &domain);
                else if (f == 2)
                    rc = tfx__pbr_int64(&sub, w, &version);
                else
                    rc = tfx__pbr_skip(&sub, w);
            }
            if (!rc && (domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0)) m->opset = version;
        } else if (f == 7) {
            tfx__pbr sub;
            if ((rc = check_wire(&r, w, TFX__PB_LEN)) || (rc = tfx__pbr_sub(&r, &sub, "graph"))) break;
            if (graphs++) {
                rc = tfx__error(TFX_EFORMAT, "%s: model: more than one graph", fn);
                break;
            }
            rc = read_graph(&sub, m);
        } else {
            rc = tfx__pbr_skip(&r, w);
        }
    }
    if (!rc && !graphs) rc = tfx__error(TFX_EFORMAT, "%s: model: no graph (not an ONNX model file?)", fn);
    if (rc) tfx__onnx_model_release(m);
    return rc;
}
