/* The model object: creation, settings and the properties users read (layers, shapes,
 * parameter counts). Building is in building.c, the forward/backward engine in
 * forward_backward.c, the summary in summary.c. */
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

int tfx_model_new(tfx_model **out, int height, int width, int channels)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_ARG(height > 0 && width > 0 && channels > 0,
                   "tfx_model_new: input shape %dx%dx%d must be positive", height, width, channels);
    TFX__CHECK_ARG(height <= TFX__MAX_DIM && width <= TFX__MAX_DIM && channels <= TFX__MAX_DIM &&
                       (double)height * width * channels <= (double)(1u << 30),
                   "tfx_model_new: input shape %dx%dx%d is too large", height, width, channels);
    tfx_model *m = tfx__calloc(1, sizeof *m);
    if (!m) return tfx__error(TFX_ENOMEM, "tfx_model_new: out of memory");
    m->input = (tfx__shape){height, width, channels, 0};
    m->batch_size = 32;
    m->weights_gen = 1;
    m->next_input = -1;
    tfx__rng_seed(&m->rng, 0);
    *out = m;
    return TFX_OK;
}

void tfx_model_free(tfx_model *m)
{
    if (!m) return;
    if (m->train && m->train_free) m->train_free(m->train);
    tfx__train_snapshot_free(m->resume);
    tfx__model_free_buffers(m);
    tfx__pool_free(&m->pool);
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx__free(m->layers[i]->state);
        tfx__free(m->layers[i]->inputs);
        tfx__free(m->layers[i]->in_shapes);
        tfx__free(m->layers[i]->derived[0].data);
        tfx__free(m->layers[i]->derived[1].data);
        tfx__free(m->layers[i]);
    }
    for (size_t i = 0; i < m->n_aliases; i++) tfx__free(m->aliases[i].name);
    tfx__free(m->aliases);
    tfx__free(m->layers);
    tfx__free(m->params);
    tfx__free(m->grads);
    tfx__free(m->ws.data);
    tfx__free(m->summary);
    tfx__free(m);
}

void tfx__train_snapshot_free(tfx__train_snapshot *s)
{
    if (!s) return;
    tfx__free(s->slot[0]);
    tfx__free(s->slot[1]);
    tfx__free(s);
}

int tfx__model_check_unlocked(const tfx_model *m, const char *fn)
{
    if (!m->fitting) return TFX_OK;
    return tfx__error(TFX_ESTATE,
                      "%s: model is being trained by tfx_model_fit; hooks may only read it (predict, evaluate, "
                      "explain, save): change it after fit returns",
                      fn);
}

int tfx_model_set_batch_size(tfx_model *m, size_t batch_size)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_ARG(batch_size > 0 && batch_size <= (1u << 20),
                   "tfx_model_set_batch_size: batch size %zu must be in 1..%u", batch_size, 1u << 20);
    m->batch_size = batch_size;
    return TFX_OK;
}

int tfx_model_set_threads(tfx_model *m, int threads)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_ARG(threads >= 0 && threads <= TFX__MAX_THREADS,
                   "tfx_model_set_threads: threads = %d must be in 0..%d", threads, TFX__MAX_THREADS);
    /* fit's bit-identical results assume one thread count for the whole run */
    int rc = tfx__model_check_unlocked(m, "tfx_model_set_threads");
    if (rc) return rc;
    m->threads = threads;
    return TFX_OK;
}

/* ---- lookup and properties ---- */

/* Getters that cannot return a code still set the message, so a NULL/0 is explained. */
static int null_arg(const char *fn, const char *arg)
{
    return tfx__error(TFX_EINVAL, "%s: argument '%s' is NULL", fn, arg);
}

size_t tfx_model_layer_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    return m->n_layers;
}

tfx_layer *tfx_model_layer(tfx_model *m, size_t index)
{
    if (!m) {
        tfx__error(TFX_EINVAL, "tfx_model_layer: argument 'm' is NULL");
        return NULL;
    }
    if (index >= m->n_layers) {
        tfx__error(TFX_EINVAL, "tfx_model_layer: index %zu out of range (model has %zu layers)", index, m->n_layers);
        return NULL;
    }
    return m->layers[index];
}

tfx_layer *tfx_model_find_layer(tfx_model *m, const char *name)
{
    if (!m || !name) {
        tfx__error(TFX_EINVAL, "tfx_model_find_layer: argument '%s' is NULL", m ? "name" : "m");
        return NULL;
    }
    for (size_t i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) return m->layers[i];
    for (size_t i = 0; i < m->n_aliases; i++) /* importers: a source tensor's name */
        if (strcmp(m->aliases[i].name, name) == 0) return m->layers[m->aliases[i].layer];
    /* Name the valid choices so the caller can fix the typo. */
    char list[400];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < m->n_layers && used < sizeof list - 1; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", m->layers[i]->name);
        if (k < 0) break;
        used += (size_t)k;
    }
    if (used >= sizeof list - 1) memcpy(list + sizeof list - 5, "...", 4);
    tfx__error(TFX_EINVAL, "no layer named '%s'; the model has: %s", name, m->n_layers ? list : "(no layers)");
    return NULL;
}

static void put_shape(tfx__shape s, int shape[3])
{
    shape[0] = s.h;
    shape[1] = s.w;
    shape[2] = s.c;
}

int tfx_model_input_shape(const tfx_model *m, int shape[3])
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(shape);
    put_shape(m->input, shape);
    return TFX_OK;
}

int tfx_model_output_shape(const tfx_model *m, int shape[3])
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(shape);
    put_shape(m->n_layers ? m->layers[m->n_layers - 1]->out : m->input, shape);
    return TFX_OK;
}

size_t tfx_model_trainable_param_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    return m->n_params;
}

size_t tfx_model_param_count(const tfx_model *m)
{
    if (!m) {
        null_arg(__func__, "m");
        return 0;
    }
    size_t total = m->n_params;
    for (size_t i = 0; i < m->n_layers; i++) total += m->layers[i]->n_state;
    return total;
}

const char *tfx_layer_name(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return NULL;
    }
    return l->name;
}
int tfx_layer_get_kind(const tfx_layer *l)
{
    if (!l) return tfx__error(TFX_EINVAL, "tfx_layer_get_kind: argument 'l' is NULL");
    return l->ops->kind;
}
const char *tfx_layer_type_name(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return NULL;
    }
    return l->ops->type_name;
}
int tfx_layer_index(const tfx_layer *l)
{
    if (!l) return tfx__error(TFX_EINVAL, "tfx_layer_index: argument 'l' is NULL");
    return l->index;
}
size_t tfx_layer_param_count(const tfx_layer *l)
{
    if (!l) {
        null_arg(__func__, "l");
        return 0;
    }
    return l->n_params + l->n_state;
}

int tfx_layer_output_shape(const tfx_layer *l, int shape[3])
{
    TFX__CHECK_NULL(l);
    TFX__CHECK_NULL(shape);
    put_shape(l->out, shape);
    return TFX_OK;
}

int tfx_layer_input_shape(const tfx_layer *l, int shape[3])
{
    TFX__CHECK_NULL(l);
    TFX__CHECK_NULL(shape);
    put_shape(l->in, shape);
    return TFX_OK;
}

int tfx__model_add_alias(tfx_model *m, const tfx_layer *l, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= TFX__NAME_MAX)
        return tfx__error(TFX_EINVAL, "alias of layer '%s': a name of %zu bytes (1..%d)", l->name, len, TFX__NAME_MAX - 1);
    if (tfx_model_find_layer(m, name)) {
        if (tfx_model_find_layer(m, name) == l) return TFX_OK;
        return tfx__error(TFX_EINVAL, "alias '%s' of layer '%s' already names another layer", name, l->name);
    }
    tfx_error_clear();
    if (m->n_aliases == m->cap_aliases) {
        size_t cap = m->cap_aliases ? 2 * m->cap_aliases : 8;
        void *p = tfx__realloc(m->aliases, cap * sizeof *m->aliases);
        if (!p) return tfx__error(TFX_ENOMEM, "out of memory for the alias '%s'", name);
        m->aliases = p;
        m->cap_aliases = cap;
    }
    char *copy = tfx__malloc(len + 1);
    if (!copy) return tfx__error(TFX_ENOMEM, "out of memory for the alias '%s'", name);
    memcpy(copy, name, len + 1);
    m->aliases[m->n_aliases].name = copy;
    m->aliases[m->n_aliases].layer = l->index;
    m->n_aliases++;
    return TFX_OK;
}
