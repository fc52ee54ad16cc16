/* Saving a model file (docs/file-format.md): the architecture and weights sections from the
 * layers' vtables (config records, Keras-order weights), the optimizer section when asked,
 * written to a temporary file that is
 * renamed into place. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/options.h"
#include "saving/format.h"

TFX__OPTIONS_DESC_V1(save_options, tfx_save_options, TFX_SAVE_OPTIONS_VERSION, TFX_SAVE_OPTIONS_INIT);

int tfx_save_options_init(tfx_save_options *opts, unsigned version)
{
    return tfx__options_init(&save_options, opts, version, "tfx_save_options_init");
}

/* ---- the sections ---- */

static void put_arch(tfx__writer *w, const tfx_model *m)
{
    tfx__put_u32(w, (uint32_t)m->input.h);
    tfx__put_u32(w, (uint32_t)m->input.w);
    tfx__put_u32(w, (uint32_t)m->input.c);
    tfx__put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        size_t len = strlen(l->name), clen = l->ops->config_size ? l->ops->config_size(l) : l->ops->config_bytes;
        uint8_t rec[TFX__CONFIG_MAX]; /* the full record; a grown kind may write its short prefix */
        tfx__put_u32(w, (uint32_t)tfx_layer_get_kind(l));
        tfx__put_u16(w, (unsigned)len);
        tfx__put_bytes(w, l->name, len);
        tfx__put_u8(w, 0);
        tfx__put_u16(w, (unsigned)clen);
        if (w->p && clen) {
            l->ops->config_write(l, rec);
            memcpy(w->p + w->pos, rec, clen);
        }
        w->pos += clen;
    }
}

/* The graph section (graph models only): each layer's input tensor numbers. */
static void put_graph(tfx__writer *w, const tfx_model *m)
{
    tfx__put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        tfx__put_u32(w, (uint32_t)l->n_inputs);
        for (size_t j = 0; j < l->n_inputs; j++) tfx__put_u32(w, (uint32_t)l->inputs[j]);
    }
}

/* Bytes of the graph section, 0 for a chain (written as version 1, without it). */
static size_t graph_size(const tfx_model *m)
{
    if (tfx__model_is_chain(m)) return 0;
    size_t len = 4;
    for (size_t i = 0; i < m->n_layers; i++) len += 4 + 4 * m->layers[i]->n_inputs;
    return len;
}

/* A kernel stored transposed (tfx__layer_ops.transposed_kernel): the file's element k of the
 * Keras [rows][cols] kernel is stored element stored_index(k); the conversions go 16 rows at a
 * time so the stored rows are reused from cache. */
static size_t stored_index(size_t k, size_t rows, size_t cols)
{
    return k < rows * cols ? (k % cols) * rows + k / cols : k;
}

static void put_transposed(tfx__writer *w, const float *stored, size_t rows, size_t cols)
{
    for (size_t i0 = 0; i0 < rows; i0 += 16)
        for (size_t i = i0; i < rows && i < i0 + 16; i++)
            for (size_t u = 0; u < cols; u++) tfx__put_float(w, stored[u * rows + i]);
}

static void put_weights(tfx__writer *w, const tfx_model *m)
{
    tfx__put_u32(w, (uint32_t)m->n_layers);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        tfx__put_u64(w, l->n_params);
        tfx__put_u64(w, l->n_state);
        if (l->n_params && l->ops->transposed_kernel && w->p) {
            size_t rows, cols;
            l->ops->transposed_kernel(l, &rows, &cols);
            put_transposed(w, l->params, rows, cols);
            tfx__put_floats(w, l->params + rows * cols, l->n_params - rows * cols);
        } else if (l->n_params) {
            tfx__put_floats(w, l->params, l->n_params);
        }
        if (l->n_state) tfx__put_floats(w, l->state, l->n_state);
    }
}

/* What the loader rejects must not be written: non-finite weights, a state the layer refuses,
 * a graph with a layer that does not lead to the output. */
static int check_saveable(const tfx_model *m)
{
    /* The check only caches its verdict in the model: m stays logically const. */
    if (!tfx__model_is_chain(m)) {
        int rc = tfx__model_check_graph((tfx_model *)m);
        if (rc) return rc;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        if (!l->ops->config_read)
            return tfx__error(TFX_ENOTSUP, "layer %zu '%s': kind %d cannot be saved", i, l->name,
                              tfx_layer_get_kind(l));
        if (l->n_inputs > TFX__FILE_MAX_INPUTS)
            return tfx__error(TFX_ENOTSUP, "layer %zu '%s': %zu inputs, a model file holds at most %d per layer", i,
                              l->name, l->n_inputs, TFX__FILE_MAX_INPUTS);
        size_t rows = 0, cols = 0;
        if (l->ops->transposed_kernel) l->ops->transposed_kernel(l, &rows, &cols);
        const float *p = l->params;                /* NULL for a weightless model: no NULL + 0 */
        for (size_t k = 0; k < l->n_params; k++) { /* k in the file's (Keras's) order */
            size_t s = rows ? stored_index(k, rows, cols) : k;
            if (!isfinite(p[s]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': trainable weight %zu is not finite (%g)", i, l->name,
                                  k, (double)p[s]);
        }
        for (size_t k = 0; k < l->n_state; k++)
            if (!isfinite(l->state[k]))
                return tfx__error(TFX_EINVAL, "layer %zu '%s': non-trainable weight %zu is not finite (%g)", i,
                                  l->name, k, (double)l->state[k]);
        char msg[200];
        if (l->ops->check_state && l->ops->check_state(l, msg, sizeof msg))
            return tfx__error(TFX_EINVAL, "layer %zu '%s': %s", i, l->name, msg);
    }
    return TFX_OK;
}

/* The options; with include_optimizer, what the optimizer section will hold (*opt_len 0: none). */
static int check_save_options(const tfx_model *m, const tfx_save_options *o, const char *fn, tfx__train_snapshot *snap,
                              size_t *opt_len)
{
    tfx_save_options so;
    *opt_len = 0;
    int rc = tfx__options_copy(&save_options, &so, o, fn);
    if (rc) return rc;
    if (!so.include_optimizer) return TFX_OK;
    rc = tfx__opt_section_source(m, snap, fn);
    if (!rc) rc = tfx__opt_section_size(snap, opt_len);
    return rc;
}

/* File size, or 0 with an error when it does not fit in size_t. */
static int file_size(const tfx_model *m, size_t opt_len, size_t *arch, size_t *weights, size_t *graph, size_t *total)
{
    tfx__writer w = {NULL, 0};
    put_arch(&w, m);
    *arch = w.pos;
    *graph = graph_size(m); /* at most 4 + 4096 * 4 * (1 + 1024) bytes (check_saveable) */
    /* Weights: 4 + per layer 16 + 4 * (params + state); the params fit in memory already,
     * so only the multiplication by 4 can overflow (32-bit size_t). */
    size_t floats = m->n_params, bytes;
    for (size_t i = 0; i < m->n_layers; i++) floats += m->layers[i]->n_state;
    if (tfx__mul_size(floats, 4, &bytes) || bytes > SIZE_MAX - 4 - 16 * m->n_layers - *arch - *graph - 1024)
        return tfx__error(TFX_ENOMEM, "the model's %zu weights are too many for one file", floats);
    *weights = 4 + 16 * m->n_layers + bytes;
    *total = TFX__FILE_OVERHEAD + *arch + *weights;
    if (*graph) *total += TFX__FILE_ENTRY_LEN + *graph;
    if (opt_len && opt_len > SIZE_MAX - *total - TFX__FILE_ENTRY_LEN)
        return tfx__error(TFX_ENOMEM, "the model and its optimizer state are too large for one file");
    if (opt_len) *total += TFX__FILE_ENTRY_LEN + opt_len;
    return TFX_OK;
}

static void serialize(const tfx_model *m, const tfx__train_snapshot *snap, size_t opt_len, uint8_t *buf, size_t arch,
                      size_t weights, size_t graph, size_t total)
{
    tfx__writer w = {buf, 0};
    tfx__file_put_header(&w, arch, weights, graph, opt_len);
    put_arch(&w, m);
    put_weights(&w, m);
    if (graph) put_graph(&w, m);
    if (opt_len) tfx__opt_section_put(&w, snap, m);
    tfx__put_u32(&w, tfx__file_crc(buf, total - TFX__FILE_TRAILER_LEN));
}

int tfx_model_save_to_memory(const tfx_model *m, const tfx_save_options *o, void *buf, size_t capacity, size_t *size)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(size);
    *size = 0;
    tfx__train_snapshot snap;
    size_t opt_len;
    int rc = check_save_options(m, o, "tfx_model_save_to_memory", &snap, &opt_len);
    if (rc) return rc;
    rc = check_saveable(m);
    if (rc) return tfx__error_prefix("tfx_model_save_to_memory");
    size_t arch, weights, graph, total;
    rc = file_size(m, opt_len, &arch, &weights, &graph, &total);
    if (rc) return rc;
    *size = total;
    if (!buf) {
        TFX__CHECK_ARG(capacity == 0, "tfx_model_save_to_memory: buf is NULL but capacity is %zu", capacity);
        return TFX_OK;
    }
    if (capacity < total)
        return tfx__error(TFX_EINVAL, "tfx_model_save_to_memory: the buffer holds %zu bytes, the model needs %zu",
                          capacity, total);
    serialize(m, &snap, opt_len, buf, arch, weights, graph, total);
    return TFX_OK;
}

/* ---- the file (temporary file, fsync, rename) ---- */

int tfx_model_save(const tfx_model *m, const char *path, const tfx_save_options *o)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(path);
    TFX__CHECK_ARG(path[0] != '\0', "tfx_model_save: path is empty");
    tfx__train_snapshot snap;
    size_t opt_len;
    int rc = check_save_options(m, o, "tfx_model_save", &snap, &opt_len);
    if (rc) return rc;
    rc = check_saveable(m);
    if (rc) return tfx__error_prefix("tfx_model_save: '%s'", path);
    size_t arch, weights, graph, total;
    rc = file_size(m, opt_len, &arch, &weights, &graph, &total);
    if (rc) return rc;
    uint8_t *buf = tfx__malloc(total);
    if (!buf) return tfx__error(TFX_ENOMEM, "tfx_model_save: out of memory for %zu bytes", total);
    serialize(m, &snap, opt_len, buf, arch, weights, graph, total);
    rc = tfx__file_write_atomic("tfx_model_save", path, buf, total);
    tfx__free(buf);
    return rc;
}
