/* The model as a directed acyclic graph (DESIGN decision 14): which tensors each layer reads,
 * the public graph-building calls (tfx_model_set_next_input, Add, Concatenate, Multiply,
 * tfx_layer_inputs) and the checks the engine, compile and saving rely on. Layers are stored in
 * a topological order: a layer reads only the model input (tensor 0) or earlier layers' outputs
 * (tensor k + 1 for layer k), so the insertion order is an execution order and a cycle cannot
 * be built. */
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

/* Inputs a multi-input layer may read (Keras has no limit; DenseNet/Inception use a handful). */
#define TFX__MAX_INPUTS 1024

int tfx__model_is_chain(const tfx_model *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        if (l->n_inputs != 1 || l->inputs[0] != (int)i) return 0;
    }
    return 1;
}

int tfx__model_check_graph(tfx_model *m)
{
    if (m->graph_checked || m->n_layers == 0) return TFX_OK;
    const size_t L = m->n_layers;
    unsigned char *reach = tfx__calloc(L, 1);
    if (!reach) return tfx__error(TFX_ENOMEM, "out of memory checking the graph of %zu layers", L);
    reach[L - 1] = 1;
    for (size_t i = L; i-- > 0;) {
        if (!reach[i]) continue;
        const tfx_layer *l = m->layers[i];
        for (size_t j = 0; j < l->n_inputs; j++)
            if (l->inputs[j] > 0) reach[l->inputs[j] - 1] = 1;
    }
    int rc = TFX_OK;
    for (size_t i = 0; i < L; i++)
        if (!reach[i]) {
            const tfx_layer *l = m->layers[i], *last = m->layers[L - 1];
            rc = tfx__error(TFX_ESTATE,
                            "layer '%s' (%s) does not lead to the model's output, layer '%s' (the last added): every "
                            "layer of a graph must feed the output",
                            l->name, l->ops->type_name, last->name);
            break;
        }
    tfx__free(reach);
    if (!rc) m->graph_checked = 1;
    return rc;
}

int tfx__model_is_cut(const tfx_model *m, size_t t)
{
    for (size_t i = t; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        for (size_t j = 0; j < l->n_inputs; j++)
            if ((size_t)l->inputs[j] < t) return 0;
    }
    return 1;
}

size_t tfx__model_tensor_root(const tfx_model *m, size_t t)
{
    while (t > 0 && m->layers[t - 1]->ops->alias_output) t = (size_t)m->layers[t - 1]->inputs[0];
    return t;
}

/* The tensor number of a layer pointer the caller gave (NULL: the model input), or -1 with
 * TFX_EINVAL when it is not a layer of this model (searched by address: a pointer into another
 * model, or a freed one, is never dereferenced). */
static int tensor_of(const tfx_model *m, const tfx_layer *l, const char *fn, const char *what)
{
    if (!l) return 0;
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i] == l) return (int)i + 1;
    tfx__error(TFX_EINVAL, "%s: %s is not a layer of this model", fn, what);
    return -1;
}

int tfx_model_set_next_input(tfx_model *m, const tfx_layer *from)
{
    TFX__CHECK_NULL(m);
    int rc = tfx__model_check_unlocked(m, "tfx_model_set_next_input");
    if (rc) return rc;
    int t = tensor_of(m, from, "tfx_model_set_next_input", "from");
    if (t < 0) return TFX_EINVAL;
    m->next_input = t;
    return TFX_OK;
}

static int add_multi(tfx_model *m, int kind, tfx_layer *const *inputs, size_t n, const char *name, tfx_layer **out,
                     const char *fn)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(m);
    int rc = tfx__model_check_unlocked(m, fn);
    if (rc) return rc;
    const tfx__layer_ops *ops = tfx__layer_ops_for_kind(kind);
    if (!ops) return tfx__error(TFX_ENOTSUP, "%s: this build has no layer kind %d", fn, kind);
    TFX__CHECK_ARG(inputs != NULL, "%s: inputs is NULL", fn);
    TFX__CHECK_ARG(n >= 2 && n <= TFX__MAX_INPUTS, "%s: %zu inputs (a merge layer takes 2..%d)", fn, n,
                   TFX__MAX_INPUTS);
    int *t = tfx__malloc(n * sizeof *t);
    if (!t) return tfx__error(TFX_ENOMEM, "%s: out of memory for %zu inputs", fn, n);
    for (size_t j = 0; j < n; j++) {
        char what[32];
        snprintf(what, sizeof what, "inputs[%zu]", j);
        t[j] = tensor_of(m, inputs[j], fn, what);
        if (t[j] < 0) {
            tfx__free(t);
            return TFX_EINVAL;
        }
    }
    rc = tfx__model_add_layer_from(m, ops, &(tfx__layer_config){0}, name, t, n, out);
    tfx__free(t);
    return rc ? tfx__error_prefix("%s", fn) : TFX_OK;
}

int tfx_model_add_add(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name, tfx_layer **out)
{
    return add_multi(m, TFX_LAYER_ADD, inputs, n, name, out, "tfx_model_add_add");
}

int tfx_model_add_concatenate(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name, tfx_layer **out)
{
    return add_multi(m, TFX_LAYER_CONCATENATE, inputs, n, name, out, "tfx_model_add_concatenate");
}

int tfx_model_add_multiply(tfx_model *m, tfx_layer *const *inputs, size_t n, const char *name, tfx_layer **out)
{
    return add_multi(m, TFX_LAYER_MULTIPLY, inputs, n, name, out, "tfx_model_add_multiply");
}

int tfx_layer_inputs(const tfx_layer *l, const tfx_layer **inputs, size_t cap, size_t *count)
{
    TFX__CHECK_NULL(l);
    TFX__CHECK_ARG(inputs || cap == 0, "tfx_layer_inputs: inputs is NULL with cap %zu", cap);
    if (count) *count = l->n_inputs;
    const tfx_model *m = l->model;
    for (size_t j = 0; j < l->n_inputs && j < cap; j++)
        inputs[j] = l->inputs[j] ? m->layers[l->inputs[j] - 1] : NULL;
    return TFX_OK;
}
