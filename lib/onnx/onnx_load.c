/* ONNX import: tfx_model_load_onnx / _from_memory. The parsed graph (onnx_read.c) is sorted
 * topologically (cycles refused), pruned to what leads to the output, and walked once: nodes
 * whose inputs are all constants are folded (onnx_fold.c), the others become libtfx layers in
 * NHWC (onnx_ops.c) with their weights converted at load. This file holds the value table,
 * the graph checks and the public entry points; docs/onnx.md the rules. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/options.h"
#include "onnx/onnx_build.h"

/* ---- the value table: one entry per tensor name ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

tfx__onnx_val *tfx__onnx_find(tfx__onnx_ctx *c, const char *name)
{
    if (!c->hcap) return NULL;
    size_t i = (size_t)hash_name(name) & (c->hcap - 1);
    while (c->hash[i]) {
        tfx__onnx_val *v = &c->vals[c->hash[i] - 1];
        if (strcmp(v->name, name) == 0) return v;
        i = (i + 1) & (c->hcap - 1);
    }
    return NULL;
}

/* A new entry for name (NULL with an error when it exists: a name given twice). */
static tfx__onnx_val *add_val(tfx__onnx_ctx *c, const char *name, const char *what)
{
    if (tfx__onnx_find(c, name)) {
        tfx__error(TFX_EFORMAT, "%s: %s '%s' is given a value twice (two producers)", c->fn, what, name);
        return NULL;
    }
    size_t i = (size_t)hash_name(name) & (c->hcap - 1);
    while (c->hash[i]) i = (i + 1) & (c->hcap - 1);
    tfx__onnx_val *v = &c->vals[c->n_vals];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->producer = -1;
    v->consumer = -1;
    c->hash[i] = ++c->n_vals;
    return v;
}

const char *tfx__onnx_node_label(const tfx__onnx_node *n)
{
    if (n->name[0]) return n->name;
    if (n->n_outputs && n->outputs[0][0]) return n->outputs[0];
    return "(unnamed)";
}

int tfx__onnx_unsup(tfx__onnx_ctx *c, const tfx__onnx_node *n, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tfx__error(TFX_ENOTSUP, "%s: node '%s' (%s): %s", c->fn, tfx__onnx_node_label(n), n->op_type, what);
}

int tfx__onnx_fail(tfx__onnx_ctx *c, const tfx__onnx_node *n, int code, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tfx__error(code, "%s: node '%s' (%s): %s", c->fn, tfx__onnx_node_label(n), n->op_type, what);
}

/* ---- graph checks: names, sort, pruning ---- */

static int build_table(tfx__onnx_ctx *c)
{
    const tfx__onnx_model *om = c->om;
    size_t total = om->n_inits + om->n_inputs;
    for (size_t i = 0; i < om->n_nodes; i++) total += om->nodes[i].n_outputs;
    c->hcap = 16;
    while (c->hcap < 2 * total + 16) c->hcap *= 2;
    c->hash = tfx__calloc(c->hcap, sizeof *c->hash);
    c->vals = tfx__calloc(total + 1, sizeof *c->vals);
    if (!c->hash || !c->vals) return tfx__error(TFX_ENOMEM, "%s: out of memory for %zu values", c->fn, total);
    for (size_t i = 0; i < om->n_inits; i++) {
        const tfx__onnx_tensor *t = &om->inits[i];
        if (!t->name[0]) return tfx__error(TFX_EFORMAT, "%s: graph.initializer[%zu] has no name", c->fn, i);
        tfx__onnx_val *v = add_val(c, t->name, "initializer");
        if (!v) return TFX_EFORMAT;
        v->kind = TFX__ONNX_CONST;
        v->k = t;
    }
    for (size_t i = 0; i < om->n_inputs; i++) {
        const tfx__onnx_value_info *vi = &om->inputs[i];
        tfx__onnx_val *v = tfx__onnx_find(c, vi->name);
        if (v) continue; /* an initializer listed among the inputs (IR < 4): its value is the initializer */
        if (!vi->name[0]) return tfx__error(TFX_EFORMAT, "%s: graph.input[%zu] has no name", c->fn, i);
        v = add_val(c, vi->name, "graph input");
        if (!v) return TFX_EFORMAT;
        v->kind = TFX__ONNX_INPUT;
        v->vi = vi;
    }
    for (size_t i = 0; i < om->n_nodes; i++) {
        const tfx__onnx_node *n = &om->nodes[i];
        for (size_t k = 0; k < n->n_outputs; k++) {
            if (!n->outputs[k][0]) continue; /* an optional output left out */
            tfx__onnx_val *v = tfx__onnx_find(c, n->outputs[k]);
            if (v)
                return tfx__error(TFX_EFORMAT, "%s: node '%s' (%s) writes '%s', which %s already gives", c->fn,
                                  tfx__onnx_node_label(n), n->op_type, n->outputs[k],
                                  v->producer >= 0 ? "another node" : "an initializer or graph input");
            v = add_val(c, n->outputs[k], "node output");
            if (!v) return TFX_EFORMAT;
            v->producer = (int)i;
        }
    }
    return TFX_OK;
}

/* Kahn's algorithm over the nodes: c->order gets an execution order; a node left over lies on
 * or behind a cycle, and one on the cycle is named. */
static int sort_nodes(tfx__onnx_ctx *c)
{
    const tfx__onnx_model *om = c->om;
    size_t nn = om->n_nodes, edges = 0;
    for (size_t i = 0; i < nn; i++) edges += om->nodes[i].n_inputs;
    int *indeg = tfx__calloc(nn + 1, sizeof *indeg);
    size_t *start = tfx__calloc(nn + 2, sizeof *start), *adj = tfx__calloc(edges + 1, sizeof *adj);
    c->order = tfx__calloc(nn + 1, sizeof *c->order);
    int rc = TFX_OK;
    if (!indeg || !start || !adj || !c->order) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory sorting %zu nodes", c->fn, nn);
        goto done;
    }
    /* edges producer -> consumer, one per input naming a node's output (bucketed by producer) */
    for (size_t i = 0; i < nn; i++) {
        const tfx__onnx_node *n = &om->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++) {
            if (!n->inputs[k][0]) continue;
            tfx__onnx_val *v = tfx__onnx_find(c, n->inputs[k]);
            if (!v) {
                rc = tfx__error(TFX_EFORMAT,
                                "%s: node '%s' (%s) reads '%s', which no node, initializer or graph input gives", c->fn,
                                tfx__onnx_node_label(n), n->op_type, n->inputs[k]);
                goto done;
            }
            if (v->producer >= 0) {
                start[v->producer + 1]++;
                indeg[i]++;
            }
        }
    }
    for (size_t i = 0; i < nn; i++) start[i + 1] += start[i];
    size_t *fill = tfx__calloc(nn + 1, sizeof *fill);
    if (!fill) {
        rc = tfx__error(TFX_ENOMEM, "%s: out of memory sorting %zu nodes", c->fn, nn);
        goto done;
    }
    for (size_t i = 0; i < nn; i++) {
        const tfx__onnx_node *n = &om->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++) {
            if (!n->inputs[k][0]) continue;
            tfx__onnx_val *v = tfx__onnx_find(c, n->inputs[k]);
            if (v->producer >= 0) adj[start[v->producer] + fill[v->producer]++] = i;
        }
    }
    tfx__free(fill);
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < nn; i++)
        if (!indeg[i]) c->order[tail++] = i;
    while (head < tail) {
        size_t u = c->order[head++];
        for (size_t e = start[u]; e < start[u + 1]; e++)
            if (--indeg[adj[e]] == 0) c->order[tail++] = adj[e];
    }
    if (tail < nn) {
        /* walk back from a leftover node through leftover producers until a node repeats: that
         * node is on a cycle */
        size_t u = 0;
        while (!indeg[u]) u++;
        char *seen = tfx__calloc(nn, 1);
        if (!seen) {
            rc = tfx__error(TFX_ENOMEM, "%s: out of memory", c->fn);
            goto done;
        }
        while (!seen[u]) {
            seen[u] = 1;
            const tfx__onnx_node *n = &om->nodes[u];
            for (size_t k = 0; k < n->n_inputs; k++) {
                tfx__onnx_val *v = n->inputs[k][0] ? tfx__onnx_find(c, n->inputs[k]) : NULL;
                if (v && v->producer >= 0 && indeg[v->producer]) {
                    u = (size_t)v->producer;
                    break;
                }
            }
        }
        tfx__free(seen);
        const tfx__onnx_node *n = &om->nodes[u];
        rc = tfx__error(TFX_EFORMAT, "%s: the graph has a cycle through node '%s' (%s)", c->fn, tfx__onnx_node_label(n),
                        n->op_type);
    }
done:
    tfx__free(indeg);
    tfx__free(start);
    tfx__free(adj);
    return rc;
}

/* Live nodes: those the output depends on; consumer counts over them. */
static int mark_live(tfx__onnx_ctx *c)
{
    const tfx__onnx_model *om = c->om;
    size_t nn = om->n_nodes;
    c->live = tfx__calloc(nn + 1, 1);
    c->absorbed = tfx__calloc(nn + 1, 1);
    char *needed = tfx__calloc(c->n_vals + 1, 1);
    if (!c->live || !c->absorbed || !needed) {
        tfx__free(needed);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", c->fn);
    }
    needed[c->output - c->vals] = 1;
    for (size_t j = nn; j-- > 0;) {
        size_t i = c->order[j];
        const tfx__onnx_node *n = &om->nodes[i];
        for (size_t k = 0; k < n->n_outputs && !c->live[i]; k++) {
            tfx__onnx_val *v = n->outputs[k][0] ? tfx__onnx_find(c, n->outputs[k]) : NULL;
            if (v && needed[v - c->vals]) c->live[i] = 1;
        }
        if (!c->live[i]) continue;
        for (size_t k = 0; k < n->n_inputs; k++) {
            tfx__onnx_val *v = n->inputs[k][0] ? tfx__onnx_find(c, n->inputs[k]) : NULL;
            if (!v) continue;
            needed[v - c->vals] = 1;
            v->consumers++;
            v->consumer = (int)i;
        }
    }
    tfx__free(needed);
    c->output->consumers++; /* the graph output is read by the caller */
    c->output->is_output = 1;
    return TFX_OK;
}

/* The one graph input (initializers aside) and the one output. */
static int check_io(tfx__onnx_ctx *c)
{
    const tfx__onnx_model *om = c->om;
    const tfx__onnx_value_info *in = NULL;
    size_t n_in = 0;
    for (size_t i = 0; i < om->n_inputs; i++) {
        tfx__onnx_val *v = tfx__onnx_find(c, om->inputs[i].name);
        if (v && v->kind == TFX__ONNX_INPUT) {
            n_in++;
            if (!in) in = &om->inputs[i];
        }
    }
    if (n_in != 1)
        return tfx__error(TFX_ENOTSUP, "%s: the graph has %zu inputs besides its initializers; libtfx models take one",
                          c->fn, n_in);
    if (om->n_outputs != 1)
        return tfx__error(TFX_ENOTSUP, "%s: the graph has %zu outputs; libtfx models give one", c->fn, om->n_outputs);
    c->input = tfx__onnx_find(c, in->name);
    c->output = tfx__onnx_find(c, om->outputs[0].name);
    if (!c->output)
        return tfx__error(TFX_EFORMAT, "%s: graph output '%s' is given by no node", c->fn, om->outputs[0].name);
    if (in->elem_type != TFX__ONNX_FLOAT)
        return tfx__error(TFX_ENOTSUP, "%s: graph input '%s' has element type %d; only float32 (1) is supported", c->fn,
                          in->name, in->elem_type);
    if (!in->has_shape) return tfx__error(TFX_ENOTSUP, "%s: graph input '%s' has no shape", c->fn, in->name);
    return TFX_OK;
}

static void ctx_free(tfx__onnx_ctx *c)
{
    tfx__free(c->hash);
    tfx__free(c->vals);
    tfx__free(c->order);
    tfx__free(c->live);
    tfx__free(c->absorbed);
    tfx__free(c->scratch[0]);
    tfx__free(c->scratch[1]);
    tfx__onnx_arena_free(&c->arena);
}

int tfx__onnx_build(const char *fn, const tfx__onnx_model *om, const tfx_onnx_options *o, tfx_model **out)
{
    tfx__onnx_ctx c;
    memset(&c, 0, sizeof c);
    c.fn = fn;
    c.om = om;
    c.o = o;
    c.opset = om->opset ? om->opset : 1;
    int rc = TFX_OK;
    if (om->opset > 17) {
        rc = tfx__error(TFX_ENOTSUP, "%s: opset %lld; libtfx reads opsets up to 17", fn, (long long)om->opset);
        goto done;
    }
    if (om->n_nodes == 0) {
        rc = tfx__error(TFX_ENOTSUP, "%s: the graph has no node", fn);
        goto done;
    }
    if ((rc = build_table(&c)) || (rc = check_io(&c)) || (rc = sort_nodes(&c)) || (rc = mark_live(&c))) goto done;
    if ((rc = tfx__onnx_make_input(&c))) goto done;
    /* constants first, so a layer absorbing the nodes after it sees their constant operands */
    for (size_t j = 0; j < om->n_nodes; j++) {
        size_t i = c.order[j];
        const tfx__onnx_node *n = &om->nodes[i];
        int all_const = c.live[i];
        for (size_t k = 0; k < n->n_inputs && all_const; k++) {
            tfx__onnx_val *v = n->inputs[k][0] ? tfx__onnx_find(&c, n->inputs[k]) : NULL;
            if (v && v->kind != TFX__ONNX_CONST) all_const = 0;
        }
        if (!all_const || c.opset < 7) continue; /* (old opsets: the checks of tfx__onnx_run_node first) */
        if (strcmp(n->domain, "") && strcmp(n->domain, "ai.onnx")) continue; /* refused in order below */
        if ((rc = tfx__onnx_fold(&c, n))) goto done;
        c.absorbed[i] = 1;
    }
    for (size_t j = 0; j < om->n_nodes; j++) {
        size_t i = c.order[j];
        if (!c.live[i] || c.absorbed[i]) continue;
        if ((rc = tfx__onnx_run_node(&c, i))) goto done;
    }
    rc = tfx__onnx_finish(&c);
done:
    if (rc) {
        tfx_model_free(c.m);
        c.m = NULL;
    }
    *out = c.m;
    ctx_free(&c);
    return rc;
}

/* ---- public entry points ---- */

TFX__OPTIONS_DESC_V1(load_options, tfx_onnx_options, TFX_ONNX_OPTIONS_VERSION, TFX_ONNX_OPTIONS_INIT);

static int load_memory(const char *fn, tfx_model **out, const void *data, size_t size, const tfx_onnx_options *opts)
{
    if (out) *out = NULL;
    if (!out || (!data && size)) return tfx__error(TFX_EINVAL, "%s: out and data must not be NULL", fn);
    tfx_onnx_options o;
    int rc = tfx__options_copy(&load_options, &o, opts, fn);
    if (rc) return rc;
    if (o.input_height < 0 || o.input_width < 0 || o.input_height > (1 << 20) || o.input_width > (1 << 20))
        return tfx__error(TFX_EINVAL, "%s: input_height / input_width %d, %d (0..2^20)", fn, o.input_height,
                          o.input_width);
    tfx__onnx_model om;
    if ((rc = tfx__onnx_read(fn, data, size, &om))) return rc;
    rc = tfx__onnx_build(fn, &om, &o, out);
    tfx__onnx_model_release(&om);
    return rc;
}

int tfx_model_load_onnx_from_memory(tfx_model **out, const void *data, size_t size, const tfx_onnx_options *opts)
{
    return load_memory("tfx_model_load_onnx_from_memory", out, data, size, opts);
}

int tfx_model_load_onnx(tfx_model **out, const char *path, const tfx_onnx_options *opts)
{
    static const char fn[] = "tfx_model_load_onnx";
    if (out) *out = NULL;
    if (!out || !path) return tfx__error(TFX_EINVAL, "%s: out and path must not be NULL", fn);
    unsigned char *data;
    size_t n;
    /* protobuf messages stop at 2 GiB */
    int rc = tfx__file_read(fn, path, (size_t)1 << 31, &data, &n);
    if (rc) return rc;
    rc = load_memory(fn, out, data, n, opts);
    if (rc) tfx__error_prefix("%s '%s'", fn, path);
    tfx__free(data);
    return rc;
}
