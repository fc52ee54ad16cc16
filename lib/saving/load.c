/* Loading a model file (docs/file-format.md): every field is checked against the bytes that
 * are really there; each layer's configuration record is decoded and validated by its vtable,
 * its inputs read from the graph section (version 2) or chained (version 1), and the model is
 * rebuilt through tfx__model_add_layer_from (the shape inference and naming rules users get
 * from the add functions). */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "saving/format.h"

/* Largest file tfx_model_load reads (weights of about 4 billion floats). */
#define FILE_MAX ((uint64_t)1 << 34)

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static int avail(const reader *r, size_t n) { return n <= r->len - r->pos; }

/* The layer being read, for messages. */
typedef struct where {
    const char *section;
    size_t index;
    char name[TFX__NAME_MAX];
} where;

static int bad(const where *at, const char *fmt, ...) TFX__PRINTF(2, 3);
static int bad(const where *at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at->name[0])
        return tfx__error(TFX_EFORMAT, "%s section, layer %zu ('%s'): %s", at->section, at->index, at->name, msg);
    return tfx__error(TFX_EFORMAT, "%s section, layer %zu: %s", at->section, at->index, msg);
}

/* Turn an error of the model-building API into TFX_EFORMAT with the location (out of memory
 * stays TFX_ENOMEM). */
static int rebadge(int rc, const where *at)
{
    if (rc == TFX_ENOMEM) return tfx__error_prefix("%s section, layer %zu", at->section, at->index);
    char old[400];
    snprintf(old, sizeof old, "%s", tfx_error_last()->message);
    return bad(at, "%s", old);
}

/* Read n floats at b into dst, each finite. */
static int read_floats(const where *at, const char *what, const uint8_t *b, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        float f = tfx__get_f32(b + 4 * i);
        if (!isfinite(f)) return bad(at, "%s weight %zu is not finite", what, i);
        dst[i] = f;
    }
    return TFX_OK;
}

/* A kernel stored transposed (tfx__layer_ops.transposed_kernel) from the file's Keras
 * [rows][cols] into the stored [cols][rows], 16 rows at a time. */
static int read_transposed(const where *at, const uint8_t *b, size_t rows, size_t cols, float *dst)
{
    for (size_t i0 = 0; i0 < rows; i0 += 16)
        for (size_t i = i0; i < rows && i < i0 + 16; i++)
            for (size_t u = 0; u < cols; u++) {
                float f = tfx__get_f32(b + 4 * (i * cols + u));
                if (!isfinite(f)) return bad(at, "trainable weight %zu is not finite", i * cols + u);
                dst[u * rows + i] = f;
            }
    return TFX_OK;
}

/* The graph section (version 2 files) and room for one layer's inputs and their shapes. */
typedef struct graph_in {
    reader r;
    size_t n_layers;
    int *inputs;        /* cap entries */
    tfx__shape *shapes; /* cap entries */
    size_t cap;
} graph_in;

/* Shape of tensor t (0: the model input, j + 1: layer j's output) of the layers built so far. */
static tfx__shape tensor_shape(const tfx_model *m, int t) { return t == 0 ? m->input : m->layers[t - 1]->out; }

/* The inputs of a merge layer whose shapes do not fit, for its message: "'a2' (8x8x4), the
 * model input (8x8x3)" (the first eight, as the add functions name them). */
static void describe_inputs(const tfx_model *m, const int *inputs, size_t k, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t j = 0; j < k && j < 8 && len < cap; j++) {
        tfx__shape sh = tensor_shape(m, inputs[j]);
        const char *sep = j ? ", " : "";
        int w = inputs[j] ? snprintf(out + len, cap - len, "%s'%s' ", sep, m->layers[inputs[j] - 1]->name)
                          : snprintf(out + len, cap - len, "%sthe model input ", sep);
        if (w < 0) return;
        len += (size_t)w;
        if (len >= cap) return;
        w = sh.flat ? snprintf(out + len, cap - len, "(%d)", sh.c)
                    : snprintf(out + len, cap - len, "(%dx%dx%d)", sh.h, sh.w, sh.c);
        if (w < 0) return;
        len += (size_t)w;
    }
    if (k > 8 && len < cap) snprintf(out + len, cap - len, ", ...");
}

/* Layer index's input record: the count, then each tensor number, which must name the model
 * input or an earlier layer (the list is topological: anything else is a cycle, a forward
 * reference or a dangling input). Into g->inputs. */
static int read_inputs(graph_in *g, size_t index, const tfx__layer_ops *ops, where *at, size_t *k_out)
{
    reader *r = &g->r;
    int multi = (ops->traits & TFX__TRAIT_MULTI_INPUT) != 0;
    at->section = "graph";
    if (!avail(r, 4)) return bad(at, "record truncated (input count)");
    uint32_t k = tfx__get_le32(r->p + r->pos);
    r->pos += 4;
    if (k == 0 || k > TFX__FILE_MAX_INPUTS)
        return bad(at, "%lu inputs (must be 1..%d)", (unsigned long)k, TFX__FILE_MAX_INPUTS);
    if (!multi && k != 1) return bad(at, "%lu inputs, but %s layers read one", (unsigned long)k, ops->type_name);
    if (multi && k < 2) return bad(at, "1 input, but %s layers read at least 2", ops->type_name);
    if (!avail(r, 4 * (size_t)k) || k > g->cap)
        return bad(at, "a list of %lu inputs runs past the end of the section", (unsigned long)k);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t t = tfx__get_le32(r->p + r->pos + 4 * (size_t)j);
        if (t == index + 1)
            return bad(at, "input %lu is tensor %lu, the layer's own output: a cycle", (unsigned long)j,
                       (unsigned long)t);
        if (t > index + 1 && t <= g->n_layers)
            return bad(at,
                       "input %lu is tensor %lu, the output of layer %lu, which comes later: a cycle or a forward "
                       "reference (layers are stored in topological order)",
                       (unsigned long)j, (unsigned long)t, (unsigned long)t - 1);
        if (t > index + 1)
            return bad(at, "input %lu is tensor %lu, beyond the model's %zu layers (tensors 0..%zu): a dangling input",
                       (unsigned long)j, (unsigned long)t, g->n_layers, g->n_layers);
        g->inputs[j] = (int)t;
    }
    r->pos += 4 * (size_t)k;
    *k_out = k;
    at->section = "architecture";
    return TFX_OK;
}

/* One layer: architecture record at *ar, weights record at *wr, inputs from g (NULL: a version
 * 1 file, whose layers form a chain). */
static int load_layer(tfx_model *m, size_t index, reader *ar, reader *wr, graph_in *g)
{
    where at = {"architecture", index, ""};
    if (!avail(ar, 6)) return bad(&at, "record truncated (kind and name length)");
    uint32_t kind_u = tfx__get_le32(ar->p + ar->pos);
    size_t name_len = (size_t)ar->p[ar->pos + 4] | (size_t)ar->p[ar->pos + 5] << 8;
    ar->pos += 6;
    int kind = kind_u <= INT_MAX ? (int)kind_u : -1;
    const tfx__layer_ops *ops = tfx__layer_ops_for_kind(kind);
    if (!ops || !ops->config_read) return bad(&at, "unknown layer kind %lu", (unsigned long)kind_u);
    const size_t clen = ops->config_bytes;
    if (name_len == 0 || name_len >= TFX__NAME_MAX)
        return bad(&at, "name length %zu is not in 1..%d", name_len, TFX__NAME_MAX - 1);
    if (!avail(ar, name_len + 1)) return bad(&at, "name of %zu bytes runs past the end of the section", name_len);
    const uint8_t *nm = ar->p + ar->pos;
    if (memchr(nm, 0, name_len)) return bad(&at, "name contains a NUL byte");
    if (nm[name_len] != 0) return bad(&at, "name is not NUL-terminated");
    memcpy(at.name, nm, name_len);
    at.name[name_len] = '\0';
    ar->pos += name_len + 1;
    if (!avail(ar, 2)) return bad(&at, "record truncated (configuration length)");
    size_t got_clen = (size_t)ar->p[ar->pos] | (size_t)ar->p[ar->pos + 1] << 8;
    ar->pos += 2;
    if (got_clen != clen && !(ops->config_bytes_short && got_clen == ops->config_bytes_short)) {
        if (ops->config_bytes_short)
            return bad(&at, "configuration of %zu bytes, a %s has %zu or %zu", got_clen, ops->type_name,
                       ops->config_bytes_short, clen);
        return bad(&at, "configuration of %zu bytes, a %s has %zu", got_clen, ops->type_name, clen);
    }
    if (!avail(ar, got_clen)) return bad(&at, "configuration runs past the end of the section");
    tfx__layer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    uint8_t rec[TFX__CONFIG_MAX] = {0}; /* a short record reads zero-extended */
    memcpy(rec, ar->p + ar->pos, got_clen);
    int rc = ops->config_read(rec, &cfg);
    if (rc) return rebadge(rc, &at);
    ar->pos += got_clen;

    int chained = (int)index; /* version 1: the previous layer's output (layer 0: the model input) */
    const int *inputs = &chained;
    size_t k = 1;
    if (g) {
        rc = read_inputs(g, index, ops, &at, &k);
        if (rc) return rc;
        inputs = g->inputs;
    } else if (ops->traits & TFX__TRAIT_MULTI_INPUT) {
        return bad(&at, "%s layers read at least 2 inputs, a version %d file has no graph section to name them",
                   ops->type_name, TFX__FILE_VERSION_CHAIN);
    }

    /* Dry run of shape inference on a scratch layer, to know the weight counts before the
     * model allocates anything for them. */
    tfx_layer probe;
    memset(&probe, 0, sizeof probe);
    probe.ops = ops;
    probe.cfg = cfg;
    probe.n_inputs = k;
    probe.inputs = (int *)inputs;
    if (k > 1) {
        for (size_t j = 0; j < k; j++) g->shapes[j] = tensor_shape(m, inputs[j]);
        probe.in = g->shapes[0];
        probe.in_shapes = g->shapes;
        rc = ops->infer_n(&probe, g->shapes, k, &probe.out);
        if (rc && rc != TFX_ENOMEM) { /* name the layers read, as the add functions do */
            char msg[300], who[600];
            snprintf(msg, sizeof msg, "%s", tfx_error_last()->message);
            describe_inputs(m, inputs, k, who, sizeof who);
            return bad(&at, "%s (reading %s)", msg, who);
        }
    } else {
        probe.in = tensor_shape(m, inputs[0]);
        probe.in_shapes = &probe.in;
        rc = ops->infer(&probe, probe.in, &probe.out);
    }
    if (rc) return rebadge(rc, &at);
    size_t trainable = 0, state = 0; /* infer bounded them: no overflow */
    if (ops->counts) ops->counts(&probe, &trainable, &state);

    at.section = "weights";
    if (!avail(wr, 16)) return bad(&at, "record truncated (weight counts)");
    uint64_t nt = tfx__get_le64(wr->p + wr->pos), ns = tfx__get_le64(wr->p + wr->pos + 8);
    wr->pos += 16;
    if (nt != trainable || ns != state)
        return bad(&at, "%llu trainable and %llu non-trainable weights, the architecture needs %zu and %zu",
                   (unsigned long long)nt, (unsigned long long)ns, trainable, state);
    /* Both are at most what the section holds, so no overflow and no allocation beyond it. */
    size_t left = (wr->len - wr->pos) / 4;
    if (trainable > left || state > left - trainable)
        return bad(&at, "%zu weights, but only %zu floats are left in the section", trainable + state, left);

    at.section = "architecture";
    tfx_layer *l = NULL;
    rc = tfx__model_add_layer_from(m, ops, &cfg, at.name, inputs, k, &l);
    if (rc) return rebadge(rc, &at);
    at.section = "weights";
    if (l->n_params != trainable || l->n_state != state)
        return bad(&at, "the model built %zu trainable and %zu non-trainable weights, the file has %zu and %zu",
                   l->n_params, l->n_state, trainable, state);
    if (trainable) {
        if (ops->transposed_kernel) {
            size_t rows, cols;
            ops->transposed_kernel(l, &rows, &cols);
            rc = read_transposed(&at, wr->p + wr->pos, rows, cols, l->params);
            if (!rc)
                rc = read_floats(&at, "bias", wr->p + wr->pos + 4 * rows * cols, trainable - rows * cols,
                                 l->params + rows * cols);
        } else {
            rc = read_floats(&at, "trainable", wr->p + wr->pos, trainable, l->params);
        }
        tfx__model_weights_changed(m);
        if (rc) return rc;
        wr->pos += 4 * trainable;
    }
    if (state) {
        rc = read_floats(&at, "non-trainable", wr->p + wr->pos, state, l->state);
        if (rc) return rc;
        wr->pos += 4 * state;
        char msg[200];
        if (ops->check_state && ops->check_state(l, msg, sizeof msg)) return bad(&at, "%s", msg);
    }
    return TFX_OK;
}

static int load_model(tfx_model **out, const tfx__file_sections *s)
{
    const uint8_t *arch = s->arch, *wts = s->weights;
    const size_t arch_len = s->arch_len, wts_len = s->weights_len;
    reader ar = {arch, arch_len, 0}, wr = {wts, wts_len, 0};
    if (arch_len < 16) return tfx__error(TFX_EFORMAT, "architecture section: %zu bytes, too short for the input shape", arch_len);
    int32_t h = tfx__get_i32(arch), w = tfx__get_i32(arch + 4), c = tfx__get_i32(arch + 8);
    uint32_t n_layers = tfx__get_le32(arch + 12);
    ar.pos = 16;
    /* Each layer record has at least 10 bytes, each weights record 16. */
    if (n_layers > TFX__FILE_MAX_LAYERS)
        return tfx__error(TFX_EFORMAT, "architecture section: %lu layers (at most %d)", (unsigned long)n_layers,
                          TFX__FILE_MAX_LAYERS);
    if ((size_t)n_layers * 10 > arch_len - 16)
        return tfx__error(TFX_EFORMAT, "architecture section: %lu layers cannot fit in %zu bytes",
                          (unsigned long)n_layers, arch_len);
    if (wts_len < 4) return tfx__error(TFX_EFORMAT, "weights section: %zu bytes, too short", wts_len);
    uint32_t w_layers = tfx__get_le32(wts);
    wr.pos = 4;
    if (w_layers != n_layers)
        return tfx__error(TFX_EFORMAT, "weights section: %lu layers, the architecture has %lu",
                          (unsigned long)w_layers, (unsigned long)n_layers);
    if ((size_t)n_layers * 16 > wts_len - 4)
        return tfx__error(TFX_EFORMAT, "weights section: %lu layers cannot fit in %zu bytes", (unsigned long)n_layers,
                          wts_len);
    graph_in gin = {{NULL, 0, 0}, n_layers, NULL, NULL, 0}, *g = NULL;
    if (s->graph) {
        if (s->graph_len < 4)
            return tfx__error(TFX_EFORMAT, "graph section: %zu bytes, too short for the layer count", s->graph_len);
        uint32_t g_layers = tfx__get_le32(s->graph);
        if (g_layers != n_layers)
            return tfx__error(TFX_EFORMAT, "graph section: %lu layers, the architecture has %lu",
                              (unsigned long)g_layers, (unsigned long)n_layers);
        /* Each record has at least 8 bytes (a count and one input). */
        if ((size_t)n_layers * 8 > s->graph_len - 4)
            return tfx__error(TFX_EFORMAT, "graph section: %lu layers cannot fit in %zu bytes", (unsigned long)n_layers,
                              s->graph_len);
        gin.r = (reader){s->graph, s->graph_len, 4};
        g = &gin;
    }
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, h, w, c);
    if (rc) {
        if (rc == TFX_ENOMEM) return rc;
        return tfx__error(TFX_EFORMAT, "architecture section: input shape %ldx%ldx%ld is not valid (each in 1..%d, "
                                       "at most 2^30 values)",
                          (long)h, (long)w, (long)c, TFX__FILE_MAX_DIM);
    }
    if (g && n_layers) {
        /* Room for the most inputs a record can hold: bounded by the section's bytes. */
        gin.cap = (s->graph_len - 4) / 4 < TFX__FILE_MAX_INPUTS ? (s->graph_len - 4) / 4 : TFX__FILE_MAX_INPUTS;
        gin.inputs = tfx__malloc(gin.cap * sizeof *gin.inputs);
        gin.shapes = tfx__malloc(gin.cap * sizeof *gin.shapes);
        if (!gin.inputs || !gin.shapes) {
            rc = tfx__error(TFX_ENOMEM, "graph section: out of memory for %zu inputs", gin.cap);
            goto fail;
        }
    }
    m->skip_init = 1; /* every weight comes from the file: no random initialisation to overwrite */
    for (size_t i = 0; i < n_layers; i++) {
        rc = load_layer(m, i, &ar, &wr, g);
        if (rc) goto fail;
    }
    m->skip_init = 0;
    if (g && g->r.pos != g->r.len) {
        rc = tfx__error(TFX_EFORMAT, "graph section: %zu bytes left after the last layer", g->r.len - g->r.pos);
        goto fail;
    }
    if (g) {
        /* A layer that does not lead to the output (the last layer) makes a model nothing can
         * run: a malformed file, as for the loader every problem of the bytes is. */
        rc = tfx__model_check_graph(m);
        if (rc && rc != TFX_ENOMEM) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", tfx_error_last()->message);
            rc = tfx__error(TFX_EFORMAT, "graph section: %s", msg);
        }
        if (rc) goto fail;
    }
    if (ar.pos != ar.len) {
        rc = tfx__error(TFX_EFORMAT, "architecture section: %zu bytes left after the last layer", ar.len - ar.pos);
        goto fail;
    }
    if (wr.pos != wr.len) {
        rc = tfx__error(TFX_EFORMAT, "weights section: %zu bytes left after the last layer", wr.len - wr.pos);
        goto fail;
    }
    if (s->opt) {
        rc = tfx__opt_section_read(m, s->opt, s->opt_len);
        if (rc) goto fail;
    }
    tfx__free(gin.inputs);
    tfx__free(gin.shapes);
    *out = m;
    return TFX_OK;
fail:
    tfx__free(gin.inputs);
    tfx__free(gin.shapes);
    tfx_model_free(m);
    return rc;
}

int tfx_model_load_from_memory(tfx_model **out, const void *data, size_t size)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(data);
    tfx__file_sections s;
    int rc = tfx__file_sections_find(data, size, &s);
    if (rc) return rc;
    return load_model(out, &s);
}

int tfx_model_load(tfx_model **out, const char *path)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(path);
    unsigned char *data;
    size_t size;
    /* Bounded by FILE_MAX, not by anything the file says. */
    size_t max = FILE_MAX < (uint64_t)SIZE_MAX / 2 ? (size_t)FILE_MAX : SIZE_MAX / 2;
    int rc = tfx__file_read("tfx_model_load", path, max, &data, &size);
    if (rc) return rc;
    rc = tfx_model_load_from_memory(out, data, size);
    tfx__free(data);
    if (rc) return tfx__error_prefix("tfx_model_load: '%s'", path);
    return TFX_OK;
}
