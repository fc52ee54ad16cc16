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
    for (size_t i = 0; i < m->n_grad_slots; i++) tfx__free(m->grad_slots[i]);
    for (size_t i = 0; i < m->n_rel_bufs; i++) tfx__free(m->rel_bufs[i]);
    tfx__free(m->acts);
    tfx__free(m->owned_acts);
    tfx__free(m->preacts);
    tfx__free(m->caches);
    tfx__free(m->grad_slots);
    tfx__free(m->grads_of);
    tfx__free(m->rel_acts);
    tfx__free(m->rel_bufs);
    tfx__free(m->xs);
    m->acts = m->owned_acts = m->preacts = m->caches = m->grad_slots = m->grads_of = m->rel_acts = m->rel_bufs = NULL;
    m->xs = NULL;
    m->n_grad_slots = m->free_grad_slots = m->n_rel_bufs = 0;
    m->full_ready = 0;
    for (size_t i = 0; i < m->n_layers; i++) m->layers[i]->preact = m->layers[i]->cache = NULL;
    m->buf_n = 0;
    m->cur_n = 0;
}

/* ---- buffers ---- */

/* The per-layer arrays and caches for n samples (the activation buffers come on demand: one per
 * tensor for a forward a backward may follow, shared by liveness for a released one). */
static int reserve_base(tfx_model *m, size_t n)
{
    if (n <= m->buf_n && m->acts) return TFX_OK;
    int rc = tfx__model_check_graph(m);
    if (rc) return rc;
    tfx__model_free_buffers(m);
    size_t L = m->n_layers, max_in = 1;
    for (size_t i = 0; i < L; i++) max_in = m->layers[i]->n_inputs > max_in ? m->layers[i]->n_inputs : max_in;
    m->acts = tfx__calloc(L + 1, sizeof(float *));
    m->owned_acts = tfx__calloc(L + 1, sizeof(float *));
    m->rel_acts = tfx__calloc(L + 1, sizeof(float *));
    m->grads_of = tfx__calloc(L + 1, sizeof(float *));
    m->preacts = tfx__calloc(L ? L : 1, sizeof(float *));
    m->caches = tfx__calloc(L ? L : 1, sizeof(float *));
    m->xs = tfx__calloc(2 * max_in, sizeof(float *));
    if (!m->acts || !m->owned_acts || !m->rel_acts || !m->grads_of || !m->preacts || !m->caches || !m->xs) goto nomem;
    /* Pre-activations are allocated by the first forward that keeps them, gradient buffers by
     * the first backward: inference needs neither. */
    for (size_t i = 0; i < L; i++) {
        tfx_layer *l = m->layers[i];
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

int tfx__model_reserve(tfx_model *m, size_t n)
{
    int rc = reserve_base(m, n);
    if (rc || m->full_ready) return rc;
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->alias_output || m->owned_acts[i + 1]) continue;
        m->owned_acts[i + 1] = tfx__alloc_floats(m->buf_n, tfx__shape_size(l->out));
        if (!m->owned_acts[i + 1]) {
            tfx__model_free_buffers(m);
            return tfx__error(TFX_ENOMEM, "out of memory for the buffers of a %zu-sample batch", n);
        }
    }
    m->full_ready = 1;
    return TFX_OK;
}

/* The released plan: walk the layers in order; a layer's output takes a free buffer (the
 * smallest that fits, else the largest grown, else a new one); a buffer is free again once the
 * last layer reading its tensor (through aliases) ran. The output and the last layer's inputs
 * are never overwritten. */
static int reserve_release(tfx_model *m, size_t n)
{
    int rc = reserve_base(m, n);
    if (rc || m->rel_bufs) return rc; /* built (rel_bufs is non-NULL even for zero buffers) */
    const size_t L = m->n_layers;
    size_t *last_use = tfx__malloc((L + 1) * sizeof *last_use), *cap = tfx__calloc(L + 1, sizeof *cap);
    int *buf_of = tfx__malloc((L + 1) * sizeof *buf_of), *free_list = tfx__malloc((L + 1) * sizeof *free_list);
    unsigned char *live = tfx__calloc(L + 1, 1);
    size_t nbufs = 0, nfree = 0;
    if (!last_use || !cap || !buf_of || !free_list || !live) goto nomem;
    for (size_t t = 0; t <= L; t++) {
        last_use[t] = 0;
        buf_of[t] = -1;
    }
    for (size_t i = 0; i < L; i++)
        for (size_t j = 0; j < m->layers[i]->n_inputs; j++) {
            size_t r = tfx__model_tensor_root(m, (size_t)m->layers[i]->inputs[j]);
            if (i > last_use[r]) last_use[r] = i;
        }
    last_use[tfx__model_tensor_root(m, L)] = L; /* the output: never released */
    for (size_t i = 0; i < L; i++) {
        const tfx_layer *l = m->layers[i];
        if (!l->ops->alias_output) {
            /* taken before the inputs are released: a layer never writes over what it reads */
            size_t need = tfx__shape_size(l->out), best = nfree;
            for (size_t f = 0; f < nfree; f++) {
                size_t c = cap[free_list[f]], cb = best < nfree ? cap[free_list[best]] : 0;
                if (best == nfree || (c >= need && (cb < need || c < cb)) || (cb < need && c > cb)) best = f;
            }
            int b;
            if (best < nfree) {
                b = free_list[best];
                free_list[best] = free_list[--nfree];
            } else {
                b = (int)nbufs++;
            }
            if (cap[b] < need) cap[b] = need;
            buf_of[i + 1] = b;
        }
        for (size_t j = 0; j < l->n_inputs; j++) { /* each root once, even when read twice */
            size_t r = tfx__model_tensor_root(m, (size_t)l->inputs[j]);
            if (r == 0 || last_use[r] != i || live[r] == 0) continue;
            free_list[nfree++] = buf_of[r];
            live[r] = 0;
        }
        if (!l->ops->alias_output) live[i + 1] = 1;
    }
    m->rel_bufs = tfx__calloc(nbufs ? nbufs : 1, sizeof(float *));
    if (!m->rel_bufs) goto nomem;
    m->n_rel_bufs = nbufs;
    for (size_t b = 0; b < nbufs; b++)
        if (!(m->rel_bufs[b] = tfx__alloc_floats(m->buf_n, cap[b]))) goto nomem;
    for (size_t t = 1; t <= L; t++)
        if (buf_of[t] >= 0) m->rel_acts[t] = m->rel_bufs[buf_of[t]];
    tfx__free(last_use);
    tfx__free(cap);
    tfx__free(buf_of);
    tfx__free(free_list);
    tfx__free(live);
    return TFX_OK;
nomem:
    tfx__free(last_use);
    tfx__free(cap);
    tfx__free(buf_of);
    tfx__free(free_list);
    tfx__free(live);
    for (size_t b = 0; m->rel_bufs && b < m->n_rel_bufs; b++) tfx__free(m->rel_bufs[b]);
    tfx__free(m->rel_bufs);
    m->rel_bufs = NULL;
    m->n_rel_bufs = 0;
    for (size_t t = 0; t <= L; t++) m->rel_acts[t] = NULL;
    return tfx__error(TFX_ENOMEM, "out of memory for the buffers of a %zu-sample batch", n);
}

/* ---- forward ---- */

/* Conv2D/Dense with a fused activation keep z unless lean and the output suffices. The last
 * layer always keeps it: losses read the logits of a softmax/sigmoid output. */
static int keeps_preact(const tfx_model *m, const tfx_layer *l, int lean)
{
    if (l->cfg.activation == TFX_ACTIVATION_LINEAR || !(l->ops->traits & TFX__TRAIT_FUSED_ACTIVATION)) return 0;
    if ((size_t)l->index == m->n_layers - 1) return 1;
    return !(lean && tfx__activation_output_suffices(l->cfg.activation, l->cfg.alpha));
}

/* Layers first..end-1 over n samples; the tensors they read are in m->acts. */
static int run_layers(tfx_model *m, size_t first, size_t end, size_t n, int mode)
{
    const int lean = (mode & TFX__FW_LEAN) != 0;
    float **outs = (mode & TFX__FW_RELEASE) ? m->rel_acts : m->owned_acts;
    const tfx__layer_run run = tfx__model_run(m, mode & 1);
    for (size_t i = first; i < end; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->alias_output) {
            m->acts[i + 1] = m->acts[l->inputs[0]];
            continue;
        }
        l->preact = NULL;
        if (keeps_preact(m, l, lean)) {
            if (!m->preacts[i] && !(m->preacts[i] = tfx__alloc_floats(m->buf_n, tfx__shape_size(l->out))))
                return tfx__error(TFX_ENOMEM, "out of memory for the pre-activations of layer '%s'", l->name);
            l->preact = m->preacts[i];
        }
        m->acts[i + 1] = outs[i + 1];
        int rc;
        if (l->n_inputs == 1) {
            rc = l->ops->forward(l, &run, m->acts[l->inputs[0]], m->acts[i + 1], n);
        } else {
            for (size_t j = 0; j < l->n_inputs; j++) m->xs[j] = m->acts[l->inputs[j]];
            rc = l->ops->forward_n(l, &run, (const float *const *)m->xs, m->acts[i + 1], n);
        }
        if (rc) return rc;
    }
    return TFX_OK;
}

int tfx__model_forward(tfx_model *m, const float *x, size_t n, int mode)
{
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "the model has no layers");
    /* Buffers per layer already there (a fit or an explainer ran): use them, allocate nothing. */
    if ((mode & TFX__FW_RELEASE) && m->full_ready && n <= m->buf_n) mode &= ~TFX__FW_RELEASE;
    int rc = (mode & TFX__FW_RELEASE) ? reserve_release(m, n) : tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0;
    m->acts[0] = (float *)x;
    rc = run_layers(m, 0, m->n_layers, n, mode);
    if (rc) return rc;
    if (mode & TFX__FW_RELEASE) return TFX_OK; /* no backward may follow */
    m->cur_n = n;
    m->cur_training = mode & 1;
    return TFX_OK;
}

int tfx__model_forward_from(tfx_model *m, size_t first, size_t n, int mode)
{
    if (first == 0 || first > m->n_layers || n > m->buf_n || !m->owned_acts || !m->owned_acts[first] ||
        (mode & TFX__FW_RELEASE) || !tfx__model_is_cut(m, first))
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
    if (mode & TFX__FW_RELEASE) return tfx__error(TFX_EINVAL, "forward to layer %zu: its output is read", last);
    int rc = tfx__model_reserve(m, n);
    if (rc) return rc;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->cur_n = 0; /* stays 0: the layers above `last` hold other samples' activations */
    m->acts[0] = (float *)x;
    return run_layers(m, 0, last + 1, n, mode);
}

float *tfx__model_output_buffer(tfx_model *m, size_t i) { return m->owned_acts[i + 1]; }

/* ---- backward ---- */

/* A gradient buffer (buf_n * the largest tensor) from the free ones, or a new one. */
static float *take_slot(tfx_model *m)
{
    if (m->free_grad_slots) return m->grad_slots[--m->free_grad_slots];
    /* All slots are in use: a new one, appended to the in-use part (grad_slots[free..n)). */
    size_t maxsz = tfx__shape_size(m->input);
    for (size_t i = 0; i < m->n_layers; i++)
        if (tfx__shape_size(m->layers[i]->out) > maxsz) maxsz = tfx__shape_size(m->layers[i]->out);
    float **p = tfx__realloc(m->grad_slots, (m->n_grad_slots + 1) * sizeof *p);
    if (!p) return NULL;
    m->grad_slots = p;
    float *g = tfx__alloc_floats(m->buf_n, maxsz);
    if (!g) return NULL;
    p[m->n_grad_slots++] = g;
    return g;
}

/* Give a slot back: swapped into the free part of the list (grad_slots[0..free)). */
static void give_slot(tfx_model *m, float *g)
{
    size_t k;
    for (k = m->free_grad_slots; k < m->n_grad_slots && m->grad_slots[k] != g; k++) {
    }
    if (k == m->n_grad_slots) return; /* not a slot (cannot happen) */
    m->grad_slots[k] = m->grad_slots[m->free_grad_slots];
    m->grad_slots[m->free_grad_slots++] = g;
}

/* Add the gradient g (a slot, given up) into tensor t's: moved when t has none yet. */
static void accumulate(tfx_model *m, size_t t, float *g, size_t count)
{
    float *d = m->grads_of[t];
    if (!d) {
        m->grads_of[t] = g;
        return;
    }
    for (size_t q = 0; q < count; q++) d[q] += g[q];
    give_slot(m, g);
}

static size_t tensor_size(const tfx_model *m, size_t t)
{
    return tfx__shape_size(t ? m->layers[t - 1]->out : m->input);
}

/* The relevance total of each sample over the gradients alive (LRP's conservation record). */
static void record_sums(tfx_model *m, size_t n, size_t top, size_t i, double *sums)
{
    const size_t NS = m->n_layers + 1;
    for (size_t s = 0; s < n; s++) sums[s * NS + i] = 0.0;
    for (size_t t = 0; t <= top; t++) {
        const float *g = m->grads_of[t];
        if (!g) continue;
        size_t sz = tensor_size(m, t);
        for (size_t s = 0; s < n; s++) {
            double a = 0.0;
            for (size_t q = 0; q < sz; q++) a += g[s * sz + q];
            sums[s * NS + i] += a;
        }
    }
}

static int backward(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                    int flags, const tfx__rule *rule, const tfx__rule *rules, double *sums, float **out_grad)
{
    if (m->cur_n != n || n == 0)
        return tfx__error(TFX_ESTATE, "backward over %zu samples without a matching forward", n);
    if (top >= m->n_layers || stop > top)
        return tfx__error(TFX_EINVAL, "backward from layer %zu down to tensor %zu is not a valid range", top, stop);
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    if (!rule) rule = &plain;
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    m->free_grad_slots = m->n_grad_slots; /* every slot free; nothing alive */
    for (size_t t = 0; t <= m->n_layers; t++) m->grads_of[t] = NULL;
    const tfx__layer_run run = tfx__model_run(m, m->cur_training);
    int rc = TFX_OK;
    float *g = take_slot(m);
    if (!g) goto nomem;
    memcpy(g, seed, n * tfx__shape_size(m->layers[top]->out) * sizeof(float));
    m->grads_of[top + 1] = g;
    for (size_t i = top + 1; i-- > stop;) {
        tfx_layer *l = m->layers[i];
        float *dy = m->grads_of[i + 1];
        if (!dy) { /* the layer does not lead to `top` */
            if (sums) record_sums(m, n, top, i, sums);
            continue;
        }
        m->grads_of[i + 1] = NULL;
        int lflags = flags & TFX__BW_PARAM_GRADS;
        if (i == top) lflags |= flags & TFX__BW_SKIP_ACTIVATION;
        const tfx__rule *r = rules ? &rules[i] : rule;
        const size_t k = l->n_inputs;
        float **dxs = m->xs + k; /* the second half of the pointer scratch */
        for (size_t j = 0; j < k; j++) {
            size_t u = (size_t)l->inputs[j];
            dxs[j] = NULL;
            if (u > stop || (u == stop && want_input_grad)) {
                if (l->ops->alias_output) { /* same memory, same gradient: dy itself moves on */
                    accumulate(m, u, dy, n * tensor_size(m, u));
                    dy = NULL;
                    break;
                }
                if (!(dxs[j] = take_slot(m))) goto nomem;
            }
        }
        if (!l->ops->alias_output) {
            if (k == 1) {
                rc = l->ops->backward(l, &run, m->acts[l->inputs[0]], m->acts[i + 1], dy, dxs[0], n, lflags, r);
            } else {
                for (size_t j = 0; j < k; j++) m->xs[j] = m->acts[l->inputs[j]];
                rc = l->ops->backward_n(l, &run, (const float *const *)m->xs, m->acts[i + 1], dy, dxs, n, lflags, r);
            }
            if (rc) return rc;
            for (size_t j = 0; j < k; j++)
                if (dxs[j]) accumulate(m, (size_t)l->inputs[j], dxs[j], n * tensor_size(m, (size_t)l->inputs[j]));
        }
        if (dy) give_slot(m, dy);
        if (sums) record_sums(m, n, top, i, sums);
    }
    if (out_grad) {
        float *r = NULL;
        if (want_input_grad) {
            r = m->grads_of[stop];
            if (!r) { /* tensor stop does not lead to layer top: its gradient is zero */
                if (!(r = take_slot(m))) goto nomem;
                memset(r, 0, n * tensor_size(m, stop) * sizeof(float));
            }
        }
        *out_grad = r;
    }
    return TFX_OK;
nomem:
    return tfx__error(TFX_ENOMEM, "out of memory for the gradients of a %zu-sample batch", m->buf_n);
}

int tfx__model_backward(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                        int flags, const tfx__rule *rule, float **out_grad)
{
    return backward(m, n, top, seed, stop, want_input_grad, flags, rule, NULL, NULL, out_grad);
}

int tfx__model_backward_rules(tfx_model *m, size_t n, size_t top, const float *seed, size_t stop, int want_input_grad,
                              int flags, const tfx__rule *rules, double *sums, float **out_grad)
{
    return backward(m, n, top, seed, stop, want_input_grad, flags, NULL, rules, sums, out_grad);
}

const float *tfx__model_tensor(tfx_model *m, size_t t) { return m->acts[t]; }
float *tfx__model_layer_output(tfx_model *m, size_t i) { return m->acts[i + 1]; }
float *tfx__model_layer_preactivation(tfx_model *m, size_t i)
{
    /* An Activation layer's pre-activation is its input (what SKIP_ACTIVATION seeds). */
    if (m->layers[i]->ops->traits & TFX__TRAIT_ACTIVATION) return m->acts[m->layers[i]->inputs[0]];
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
        rc = tfx__model_forward(m, x + start * in_sz, b, TFX__FW_LEAN | TFX__FW_RELEASE);
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
