/* The generic forward/backward engine (DESIGN decision 5): per-layer buffers sized for a
 * batch, forward over all or part of the layers, backward from a seed down to a layer under a
 * rule, predict, and the model's output head. */
#include <string.h>

#include "model/model_internal.h"

void tfx__model_free_buffers(tfx_model *m)
{
    if (m->owned_acts)
        for (size_t i = 0; i <= m->n_layers; i++) tfx__free(m->owned_acts[i]);
    if (m->preacts)
        for (size_t i = 0; i < m->n_layers; i++) tfx__free(m->preacts[i]);
    if (m->caches)
        for (size_t i = 0; i < m->n_layers; i++) tfx__free(m->caches[i]);
    tfx__free(m->acts);
    tfx__free(m->owned_acts);
    tfx__free(m->preacts);
    tfx__free(m->caches);
    tfx__free(m->grad_a);
    tfx__free(m->grad_b);
    m->acts = m->owned_acts = m->preacts = m->caches = NULL;
    m->grad_a = m->grad_b = NULL;
    for (size_t i = 0; i < m->n_layers; i++) m->layers[i]->preact = m->layers[i]->cache = NULL;
    m->buf_n = 0;
    m->cur_n = 0;
}

/* ---- buffers, forward, backward ---- */

int tfx__model_reserve(tfx_model *m, size_t n)
{
    if (n <= m->buf_n && m->acts) return TFX_OK;
    tfx__model_free_buffers(m);
    size_t L = m->n_layers;
    m->acts = tfx__calloc(L + 1, sizeof(float *));
    m->owned_acts = tfx__calloc(L + 1, sizeof(float *));
    m->preacts = tfx__calloc(L ? L : 1, sizeof(float *));
    m->caches = tfx__calloc(L ? L : 1, sizeof(float *));
    if (!m->acts || !m->owned_acts || !m->preacts || !m->caches) goto nomem;
    /* Pre-activations are allocated by the first forward that keeps them, gradient buffers by
     * the first backward: inference needs neither. */
    for (size_t i = 0; i < L; i++) {
        tfx_layer *l = m->layers[i];
        size_t sz = tfx__shape_size(l->out);
        if (!l->ops->alias_output) {
            m->owned_acts[i + 1] = tfx__alloc_floats(n, sz);
            if (!m->owned_acts[i + 1]) goto nomem;
        }
        size_t cf = l->ops->cache_floats ? l->ops->cache_floats(l, n) : 0;
        if (cf) {
            m->caches[i] = tfx__alloc_floats(cf, 1);
            if (!m->caches[i]) goto nomem;
        }
        l->preact = NULL;
        l->cache = m->caches[i];
    }
    m->buf_n = n;
    return TFX_OK;
nomem:
    tfx__model_free_buffers(m);
    return tfx__error(TFX_ENOMEM, "out of memory for the buffers of a %zu-sample batch", n);
}

/* Conv2D/Dense with a fused activation keep z unless lean and the output suffices. The last
 * layer always keeps it: losses read the logits of a softmax/sigmoid output. */
static int keeps_preact(const tfx_model *m, const tfx_layer *l, int lean)
{
    if (l->cfg.activation == TFX_ACTIVATION_LINEAR || !(l->ops->traits & TFX__TRAIT_FUSED_ACTIVATION)) return 0;
    if ((size_t)l->index == m->n_layers - 1) return 1;
    return !(lean && tfx__activation_output_suffices(l->cfg.activation, l->cfg.alpha));
}

/* Layers first..end-1 over n samples whose input of layer `first` is m->acts[first]. */
static int run_layers(tfx_model *m, size_t first, size_t end, size_t n, int mode)
{
    const int lean = (mode & TFX__FW_LEAN) != 0;
    const tfx__layer_run run = tfx__model_run(m, mode & 1);
    for (size_t i = first; i < end; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->alias_output) {
            m->acts[i + 1] = m->acts[i];
            continue;
        }
        l->preact = NULL;
        if (keeps_preact(m, l, lean)) {
            if (!m->preacts[i] && !(m->preacts[i] = tfx__alloc_floats(m->buf_n, tfx__shape_size(l->out))))
                return tfx__error(TFX_ENOMEM, "out of memory for the pre-activations of layer '%s'", l->name);
            l->preact = m->preacts[i];
        }
        m->acts[i + 1] = m->owned_acts[i + 1];
        int rc = l->ops->forward(l, &run, m->acts[i], m->acts[i + 1], n);
        if (rc) return rc;
    }
    return TFX_OK;
}

int tfx__model_forward(tfx_model *m, const float *x, size_t n, int mode)
{
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "the model has no layers");
    int rc = tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0;
    m->acts[0] = (float *)x;
    rc = run_layers(m, 0, m->n_layers, n, mode);
    if (rc) return rc;
    m->cur_n = n;
    m->cur_training = mode & 1;
    return TFX_OK;
}

int tfx__model_forward_from(tfx_model *m, size_t first, size_t n, int mode)
{
    if (first == 0 || first > m->n_layers || n > m->buf_n || !m->owned_acts[first])
        return tfx__error(TFX_EINVAL, "forward from layer %zu over %zu samples: no such start", first, n);
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0; /* stays 0: the layers below `first` hold other samples' activations */
    m->acts[first] = m->owned_acts[first];
    return run_layers(m, first, m->n_layers, n, mode);
}

int tfx__model_forward_to(tfx_model *m, const float *x, size_t n, size_t last, int mode)
{
    if (last >= m->n_layers) return tfx__error(TFX_EINVAL, "forward to layer %zu: the model has %zu layers", last, m->n_layers);
    int rc = tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0; /* stays 0: the layers above `last` hold other samples' activations */
    m->acts[0] = (float *)x;
    return run_layers(m, 0, last + 1, n, mode);
}

float *tfx__model_output_buffer(tfx_model *m, size_t i) { return m->owned_acts[i + 1]; }

int tfx__model_backward(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                        int flags, const tfx__rule *rule, float **out_grad)
{
    if (m->cur_n != n || n == 0)
        return tfx__error(TFX_ESTATE, "backward over %zu samples without a matching forward", n);
    if (top >= m->n_layers || stop > top)
        return tfx__error(TFX_EINVAL, "backward from layer %zu down to layer %zu is not a valid range", top, stop);
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    if (!rule) rule = &plain;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    if (!m->grad_a) {
        size_t maxsz = tfx__shape_size(m->input);
        for (size_t i = 0; i < m->n_layers; i++)
            if (tfx__shape_size(m->layers[i]->out) > maxsz) maxsz = tfx__shape_size(m->layers[i]->out);
        m->grad_a = tfx__alloc_floats(m->buf_n, maxsz);
        m->grad_b = tfx__alloc_floats(m->buf_n, maxsz);
        if (!m->grad_a || !m->grad_b) {
            tfx__free(m->grad_a);
            tfx__free(m->grad_b);
            m->grad_a = m->grad_b = NULL;
            return tfx__error(TFX_ENOMEM, "out of memory for the gradients of a %zu-sample batch", m->buf_n);
        }
    }
    float *dy = m->grad_a, *dx = m->grad_b;
    const tfx__layer_run run = tfx__model_run(m, m->cur_training);
    const tfx_layer *t = m->layers[top];
    memcpy(dy, seed, n * tfx__shape_size(t->out) * sizeof(float));
    for (size_t i = top + 1; i-- > stop;) {
        tfx_layer *l = m->layers[i];
        int lflags = flags & TFX__BW_PARAM_GRADS;
        if (i == top) lflags |= flags & TFX__BW_SKIP_ACTIVATION;
        int need_dx = i > stop || want_input_grad;
        if (l->ops->alias_output) continue; /* same memory, same gradient */
        int rc = l->ops->backward(l, &run, m->acts[i], m->acts[i + 1], dy, need_dx ? dx : NULL, n, lflags, rule);
        if (rc) return rc;
        float *tmp = dy;
        dy = dx;
        dx = tmp;
    }
    if (out_grad) *out_grad = want_input_grad ? dy : NULL;
    return TFX_OK;
}

float *tfx__model_layer_output(tfx_model *m, size_t i) { return m->acts[i + 1]; }
float *tfx__model_layer_preactivation(tfx_model *m, size_t i)
{
    /* An Activation layer's pre-activation is its input (what SKIP_ACTIVATION seeds). */
    if (m->layers[i]->ops->traits & TFX__TRAIT_ACTIVATION) return m->acts[i];
    return m->layers[i]->preact ? m->layers[i]->preact : m->acts[i + 1];
}

int tfx_model_predict(tfx_model *m, const float *x, size_t n, float *out)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(out);
    TFX__CHECK_ARG(n > 0, "tfx_model_predict: n = 0 images");
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "tfx_model_predict: the model has no layers");
    size_t in_sz = tfx__shape_size(m->input);
    size_t out_sz = tfx__shape_size(m->layers[m->n_layers - 1]->out);
    int rc = tfx__check_count("tfx_model_predict", n, in_sz > out_sz ? in_sz : out_sz, sizeof(float));
    if (rc) return rc;
    rc = tfx__check_finite("tfx_model_predict", "x", x, n * in_sz, in_sz);
    if (rc) return rc;
    for (size_t start = 0; start < n; start += m->batch_size) {
        size_t b = n - start < m->batch_size ? n - start : m->batch_size;
        rc = tfx__model_forward(m, x + start * in_sz, b, TFX__FW_LEAN);
        if (rc) return tfx__error_prefix("tfx_model_predict");
        memcpy(out + start * out_sz, m->acts[m->n_layers], b * out_sz * sizeof(float));
    }
    return TFX_OK;
}

void tfx__model_get_head(const tfx_model *m, tfx__model_head *h)
{
    h->last = m->n_layers - 1;
    const tfx_layer *l = m->layers[h->last];
    h->activation = tfx__layer_output_activation(l);
    h->standalone = h->activation != TFX_ACTIVATION_LINEAR && (l->ops->traits & TFX__TRAIT_ACTIVATION) != 0;
}

int tfx__provider_check(const char *fn, const char *what, const tfx_model *m, const tfx_batch_provider *p)
{
    if (p->version == 0 || p->version > TFX_BATCH_PROVIDER_VERSION)
        return tfx__error(TFX_EVERSION, "%s: %s provider has version %u (this library knows up to %u)", fn, what,
                          p->version, (unsigned)TFX_BATCH_PROVIDER_VERSION);
    if (!p->next || !p->reset) return tfx__error(TFX_EINVAL, "%s: %s provider has no next or reset function", fn, what);
    if (p->height != m->input.h || p->width != m->input.w || p->channels != m->input.c)
        return tfx__error(TFX_ESHAPE, "%s: %s provider gives %dx%dx%d samples; the model takes %dx%dx%d", fn, what,
                          p->height, p->width, p->channels, (int)m->input.h, (int)m->input.w, (int)m->input.c);
    return TFX_OK;
}
