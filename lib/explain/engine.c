/* The explain engine: option handling, the class score each mode differentiates, chunked
 * forward + seeded backward through the model engine (parameter gradients off), layer
 * resolution and result allocation. Every method is a short file on top of these. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/options.h"
#include "explain/explain_internal.h"

#define EXPLAIN_MIN_BATCH ((size_t)64)

/* Version 1 ends where version 2 appended the LRP, noise tunnel and CAM variant fields;
 * version 2 where version 3 appended ig_rule. */
static const size_t explain_options_older[] = {offsetof(tfx_explain_options, lrp_rule),
                                               offsetof(tfx_explain_options, ig_rule)};
TFX__OPTIONS_DESC_VERSIONS(explain_options, tfx_explain_options, TFX_EXPLAIN_OPTIONS_VERSION,
                           TFX_EXPLAIN_OPTIONS_INIT, explain_options_older);

int tfx_explain_options_init(tfx_explain_options *opts, unsigned version)
{
    return tfx__options_init(&explain_options, opts, version, "tfx_explain_options_init");
}

/* The enum-like fields, whatever the method: a value outside its enum is a caller's mistake
 * even where this method ignores the field (guided = 5 used to pass silently). method is
 * checked by tfx_explain (the picture calls set it themselves); numbers (steps, noise, ...)
 * by the method that reads them. */
static int check_enums(const tfx_explain_options *o, const char *fn)
{
    TFX__CHECK_ARG(o->compat == TFX_COMPAT_NONE || o->compat == TFX_COMPAT_TF_EXPLAIN,
                   "%s: unknown compat mode %d (compat must be 0 or 1)", fn, o->compat);
    TFX__CHECK_ARG(o->guided >= -1 && o->guided <= 1,
                   "%s: guided = %d must be -1 (mode default), 0 (off) or 1 (on)", fn, o->guided);
    TFX__CHECK_ARG(o->patch_fill >= TFX_PATCH_ZERO && o->patch_fill <= TFX_PATCH_VALUE,
                   "%s: unknown patch_fill %d (must be %d..%d)", fn, o->patch_fill, TFX_PATCH_ZERO, TFX_PATCH_VALUE);
    TFX__CHECK_ARG(o->lrp_rule >= TFX_LRP_0 && o->lrp_rule <= TFX_LRP_COMPOSITE_AB,
                   "%s: unknown lrp_rule %d (must be %d..%d)", fn, o->lrp_rule, TFX_LRP_0, TFX_LRP_COMPOSITE_AB);
    TFX__CHECK_ARG(o->base_method == TFX_METHOD_VANILLA_GRADIENTS || o->base_method == TFX_METHOD_GRADIENTS_INPUTS ||
                       o->base_method == TFX_METHOD_GUIDED_BACKPROP || o->base_method == TFX_METHOD_DECONVNET,
                   "%s: base_method = %d: the noise tunnel wraps vanilla gradients (%d), gradients x inputs (%d), "
                   "guided backprop (%d) or DeconvNet (%d), not method %d",
                   fn, o->base_method, TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRADIENTS_INPUTS,
                   TFX_METHOD_GUIDED_BACKPROP, TFX_METHOD_DECONVNET, o->base_method);
    TFX__CHECK_ARG(o->tunnel >= TFX_TUNNEL_SMOOTHGRAD && o->tunnel <= TFX_TUNNEL_VARGRAD,
                   "%s: unknown noise tunnel type %d (tunnel must be %d..%d)", fn, o->tunnel, TFX_TUNNEL_SMOOTHGRAD,
                   TFX_TUNNEL_VARGRAD);
    TFX__CHECK_ARG(o->cam_alpha_normalize >= 0 && o->cam_alpha_normalize <= 2,
                   "%s: cam_alpha_normalize = %d must be 0 (none), 1 (all cells) or 2 (cells with a positive "
                   "gradient)", fn, o->cam_alpha_normalize);
    TFX__CHECK_ARG(o->score_cam_weights == TFX_SCORE_CAM_SOFTMAX_CLASSES ||
                       o->score_cam_weights == TFX_SCORE_CAM_SOFTMAX_CHANNELS,
                   "%s: unknown score_cam_weights %d (must be 0 or 1)", fn, o->score_cam_weights);
    TFX__CHECK_ARG(o->ig_rule >= TFX_IG_RIEMANN_RIGHT && o->ig_rule <= TFX_IG_GAUSS_LEGENDRE,
                   "%s: unknown ig_rule %d (must be %d..%d)", fn, o->ig_rule, TFX_IG_RIEMANN_RIGHT,
                   TFX_IG_GAUSS_LEGENDRE);
    return TFX_OK;
}

int tfx__explain_copy_options(const tfx_explain_options *src, tfx_explain_options *dst, const char *fn)
{
    int rc = tfx__options_copy(&explain_options, dst, src, fn);
    return rc ? rc : check_enums(dst, fn);
}

int tfx__explain_alloc_maps(tfx__xctx *c, int h, int w, int ch)
{
    size_t per, total;
    if (tfx__mul_size((size_t)h * (size_t)w, (size_t)ch, &per) || tfx__mul_size(per, c->n, &total))
        return tfx__error(TFX_EINVAL, "tfx_explain: %zu maps of %dx%dx%d floats overflow", c->n, h, w, ch);
    c->a->data = tfx__calloc(total ? total : 1, sizeof(float));
    if (!c->a->data) return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for %zu maps of %dx%dx%d", c->n, h, w, ch);
    c->a->h = h;
    c->a->w = w;
    c->a->c = ch;
    return TFX_OK;
}

/* ---- targets ---- */

int tfx__explain_set_target(tfx__xctx *c, int kind)
{
    tfx__model_head head;
    tfx__model_get_head(c->m, &head);
    int standalone = head.standalone;
    c->t.kind = kind;
    c->t.top = head.last;
    c->t.flags = 0;
    c->t.softmax_last = head.activation == TFX_ACTIVATION_SOFTMAX;
    c->t.xent_logits = 0;
    switch (kind) {
    case TFX__TARGET_LOGIT:
        /* Strip the softmax: the seed is a gradient of its input. A standalone Activation
         * layer passes a pre-activation gradient straight through. */
        if (c->t.softmax_last) c->t.flags = TFX__BW_SKIP_ACTIVATION;
        break;
    case TFX__TARGET_LAST_INPUT:
        if (standalone) c->t.flags = TFX__BW_SKIP_ACTIVATION;
        break;
    case TFX__TARGET_XENT:
        /* Keras computes cross-entropy from the logits when the output op is a softmax. */
        if (c->t.softmax_last) {
            c->t.flags = TFX__BW_SKIP_ACTIVATION;
            c->t.xent_logits = 1;
        }
        break;
    default:
        break;
    }
    c->seed_sz = c->K;
    size_t sz;
    if (tfx__mul_size(c->batch, c->K, &sz) || tfx__mul_size(sz, sizeof(float), &sz))
        return tfx__error(TFX_EINVAL, "tfx_explain: batch of %zu rows x %zu classes overflows", c->batch, c->K);
    c->seed = tfx__malloc(sz);
    if (!c->seed) return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for the seed");
    return TFX_OK;
}

/* The K values the score is read from after a forward (row r). */
static const float *score_vector(const tfx__xctx *c, size_t r)
{
    tfx_model *m = c->m;
    size_t last = c->n_layers - 1;
    const float *v = (c->t.flags & TFX__BW_SKIP_ACTIVATION) ? tfx__model_layer_preactivation(m, last) : m->acts[last + 1];
    return v + r * c->K;
}

const float *tfx__explain_output(const tfx__xctx *c, size_t r) { return c->m->acts[c->n_layers] + r * c->K; }

double tfx__explain_score(const tfx__xctx *c, size_t r, int cls)
{
    /* XENT targets are differentiated (build_seed), never scored. */
    return score_vector(c, r)[cls];
}

static void build_seed(tfx__xctx *c, size_t nb, const int *cls)
{
    size_t K = c->K;
    memset(c->seed, 0, nb * K * sizeof(float));
    for (size_t r = 0; r < nb; r++) {
        float *s = c->seed + r * K;
        int k = cls[r];
        if (k < 0) continue; /* a row scored but not explained: zero seed */
        if (c->t.kind != TFX__TARGET_XENT) {
            s[k] = 1.0f;
        } else if (c->t.xent_logits) { /* d/dz (logsumexp - z_k) = softmax(z) - onehot */
            const float *y = tfx__explain_output(c, r);
            for (size_t j = 0; j < K; j++) s[j] = y[j];
            s[k] -= 1.0f;
        } else { /* -log clip(p_k / sum p): zero gradient where the clip is active */
            const float *p = tfx__explain_output(c, r);
            double S = 0.0;
            for (size_t j = 0; j < K; j++) S += p[j];
            double pk = p[k] / S;
            if (!(pk >= 1e-7 && pk <= 1.0 - 1e-7)) continue;
            for (size_t j = 0; j < K; j++) s[j] = (float)(-(1.0 / pk) * (((size_t)k == j ? 1.0 / S : 0.0) - p[k] / (S * S)));
        }
    }
}

/* Forward rows (nb * in_sz floats), seed each row's class cls[r] (< 0: a zero seed, the row is
 * only scored), backward down to the input of layer `stop` (0: the model input) under c->rule.
 * *grad: model-owned, nb * size of that input. */
static int gradient_pass(tfx__xctx *c, const float *rows, size_t nb, const int *cls, size_t stop, float **grad)
{
    /* Lean forward (no ReLU pre-activation kept) unless an LRP rule reads z. */
    int lean = !c->rule || c->rule->kind < TFX__RULE_LRP_0;
    int rc = tfx__model_forward(c->m, rows, nb, lean ? TFX__FW_LEAN : 0);
    if (rc) return tfx__error_prefix("tfx_explain");
    build_seed(c, nb, cls);
    /* Parameter gradients stay off: explainers never touch m->grads. */
    rc = tfx__model_backward(c->m, nb, c->t.top, c->seed, stop, 1, c->t.flags, c->rule, grad);
    if (rc) return tfx__error_prefix("tfx_explain");
    return TFX_OK;
}

/* ---- classes ---- */

static size_t argmax(const float *v, size_t k)
{
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

static int predicted_class(void *u, const tfx__chunk *ch, size_t b)
{
    tfx__xctx *c = u;
    size_t i = ch->image[b];
    if (c->classes[i] < 0) c->classes[i] = (int)argmax(tfx__explain_output(c, b), c->K);
    return TFX_OK;
}

int tfx__explain_resolve_classes(tfx__xctx *c)
{
    int need = 0;
    for (size_t i = 0; i < c->n; i++) {
        int k = c->o.class_indices ? c->o.class_indices[i] : c->o.class_index;
        if (k < -1 || (k >= 0 && (size_t)k >= c->K))
            return tfx__error(TFX_EINVAL, "tfx_explain: class index %d (image %zu) is out of range: the model has %zu "
                                          "classes (0..%zu), or -1 for the predicted class", k, i, c->K, c->K - 1);
        c->classes[i] = k;
        need |= k < 0;
    }
    if (!need) return TFX_OK;
    tfx__rows d = {.pass = TFX__PASS_FORWARD, .u = c, .row = predicted_class};
    return tfx__explain_rows(c, &d);
}

/* ---- the row driver ---- */

typedef struct driver {
    tfx__xctx *c;
    const tfx__rows *d;
    size_t nb;
    float *buf;     /* batch rows made by d->make */
    size_t *image, *index;
    int *cls;
    size_t made;     /* images whose rows are all made */
    size_t next_end; /* first image whose end has not run */
} driver;

static int end_images(driver *s, size_t upto)
{
    for (; s->next_end < upto; s->next_end++)
        if (s->d->end) {
            int rc = s->d->end(s->d->u, s->next_end);
            if (rc) return rc;
        }
    return TFX_OK;
}

/* The pass over the pending rows, then each row, then the end of each image finished with it. */
static int flush(driver *s)
{
    tfx__xctx *c = s->c;
    const tfx__rows *d = s->d;
    const size_t nb = s->nb;
    if (!nb) return TFX_OK;
    s->nb = 0;
    tfx__chunk ch = {d->make ? s->buf : c->x + s->image[0] * c->in_sz, nb, s->image, s->index, s->cls, NULL};
    int rc;
    if (d->pass == TFX__PASS_GRADIENT) {
        const tfx__rule *saved = c->rule;
        if (d->rule) c->rule = d->rule;
        float *g;
        rc = gradient_pass(c, ch.rows, nb, s->cls, d->layer, &g);
        c->rule = saved;
        ch.grad = g;
    } else if (d->forward) {
        rc = d->forward(d->u, &ch);
    } else {
        rc = d->pass == TFX__PASS_FORWARD_TO ? tfx__model_forward_to(c->m, ch.rows, nb, d->layer, 0)
                                             : tfx__model_forward(c->m, ch.rows, nb, 0);
        if (rc) rc = tfx__error_prefix(d->fn ? d->fn : "tfx_explain");
    }
    if (!rc && d->chunk) rc = d->chunk(d->u, &ch);
    for (size_t b = 0; b < nb && !rc; b++) {
        if (d->row) rc = d->row(d->u, &ch, b);
        if (rc || s->image[b] == TFX__LEAD_ROW) continue;
        /* Images finished before the next row's image (or all images made so far) end here, in
         * row order: image i's end sees exactly its rows. */
        size_t next = b + 1 < nb ? s->image[b + 1] : s->made;
        rc = end_images(s, next);
    }
    return rc;
}

/* Room for one more row. */
static int room(driver *s) { return s->nb < s->c->batch ? TFX_OK : flush(s); }

int tfx__explain_rows(tfx__xctx *c, const tfx__rows *d)
{
    const size_t n = d->n ? d->n : c->n, per = d->per_image ? d->per_image : 1, B = c->batch, D = c->in_sz;
    if (!d->make && (per != 1 || d->lead))
        return tfx__error(TFX_EINVAL, "tfx__explain_rows: rows read in place need one row per image");
    driver s = {c, d, 0, NULL, NULL, NULL, NULL, 0, 0};
    size_t bytes = 0;
    if (d->make && (tfx__mul_size(B, D, &bytes) || tfx__mul_size(bytes, sizeof(float), &bytes)))
        return tfx__error(TFX_EINVAL, "tfx_explain: a chunk of %zu rows of %zu floats overflows", B, D);
    s.buf = d->make ? tfx__malloc(bytes) : NULL;
    s.image = tfx__malloc(2 * B * sizeof(size_t));
    s.index = s.image ? s.image + B : NULL;
    s.cls = tfx__malloc(B * sizeof(int));
    int rc = TFX_OK;
    if ((d->make && !s.buf) || !s.image || !s.cls) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for a chunk of %zu rows", B);
        goto out;
    }
    for (size_t j = 0; j < d->lead && !rc; j++) {
        rc = room(&s);
        if (!rc) rc = d->make(d->u, TFX__LEAD_ROW, j, s.buf + s.nb * D);
        if (rc > 0) {
            s.image[s.nb] = TFX__LEAD_ROW;
            s.index[s.nb] = j;
            s.cls[s.nb++] = -1;
            rc = TFX_OK;
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (d->image_chunks) rc = flush(&s);
        if (!rc && d->begin) rc = d->begin(d->u, i);
        for (size_t j = 0; j < per && !rc; j++) {
            rc = room(&s);
            if (!rc && d->make) rc = d->make(d->u, i, j, s.buf + s.nb * D);
            else if (!rc) rc = 1;
            if (rc > 0) {
                s.image[s.nb] = i;
                s.index[s.nb] = j;
                s.cls[s.nb++] = c->classes ? c->classes[i] : -1;
                rc = TFX_OK;
            }
        }
        s.made = i + 1;
        if (!rc && !s.nb) rc = end_images(&s, s.made); /* nothing pending: image i is done */
    }
    if (!rc) rc = flush(&s);
    if (!rc) rc = end_images(&s, n);
out:
    tfx__free(s.buf);
    tfx__free(s.image);
    tfx__free(s.cls);
    return rc;
}

/* ---- layers ---- */

static int conv_like(const tfx_layer *l) { return (l->ops->traits & TFX__TRAIT_FEATURE_MAP) != 0; }

int tfx__explain_find_layer(tfx__xctx *c, const char *name, int need_spatial, size_t *index)
{
    tfx_model *m = c->m;
    const char *what = c->o.method == TFX_METHOD_GRAD_CAM ? "Grad-CAM" : "this method";
    if (!name) {
        /* tf-explain: the last layer with a 4-D output. Default mode also skips layers that are
         * not conv-like (Dropout, a Dense applied per pixel), so the map means a feature map. */
        for (size_t i = c->n_layers; i-- > 0;) {
            const tfx_layer *l = m->layers[i];
            if (l->out.flat) continue;
            if (c->o.compat != TFX_COMPAT_TF_EXPLAIN && !conv_like(l)) continue;
            *index = i;
            return TFX_OK;
        }
        return tfx__error(TFX_EINVAL, "tfx_explain: the model has no %slayer with a spatial (4-D) output; %s "
                                      "cannot be applied", c->o.compat ? "" : "conv-like ", what);
    }
    size_t found = c->n_layers;
    for (size_t i = 0; i < c->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) found = i;
    if (found == c->n_layers && c->o.compat == TFX_COMPAT_TF_EXPLAIN && c->o.method == TFX_METHOD_ACTIVATIONS) {
        /* tf-explain tests `layer.name in layers_name`: a substring test for a string. */
        size_t hits = 0;
        for (size_t i = 0; i < c->n_layers; i++)
            if (strstr(name, m->layers[i]->name)) {
                found = i;
                hits++;
            }
        if (hits > 1)
            return tfx__error(TFX_EINVAL, "tfx_explain: '%s' contains the names of %zu layers; tf-explain supports "
                                          "one layer only", name, hits);
    }
    if (found == c->n_layers) {
        /* another name of a layer (an importer's alias: an ONNX node's output tensor), or the
         * message listing the valid names */
        const tfx_layer *al = tfx_model_find_layer(m, name);
        if (!al || (size_t)al->index >= c->n_layers) return tfx__error_prefix("tfx_explain");
        found = (size_t)al->index;
    }
    const tfx_layer *l = m->layers[found];
    if (need_spatial && l->out.flat)
        return tfx__error(TFX_EINVAL, "tfx_explain: layer '%s' (%s) has a flat output of %d units; %s needs a layer "
                                      "with a spatial h x w x k output (Conv2D, pooling, BatchNormalization, "
                                      "Activation)", l->name, l->ops->type_name, l->out.c, what);
    *index = found;
    return TFX_OK;
}

/* ---- the entry point ---- */

/* The dispatch table: every tfx_method, ACTIVATIONS .. NOISE_TUNNEL. */
typedef int (*method_fn)(tfx__xctx *c);
static const method_fn methods[] = {
    [TFX_METHOD_ACTIVATIONS] = tfx__explain_activations,
    [TFX_METHOD_VANILLA_GRADIENTS] = tfx__explain_gradients,
    [TFX_METHOD_GRADIENTS_INPUTS] = tfx__explain_gradients,
    [TFX_METHOD_OCCLUSION] = tfx__explain_occlusion,
    [TFX_METHOD_GRAD_CAM] = tfx__explain_grad_cam,
    [TFX_METHOD_SMOOTH_GRAD] = tfx__explain_noise_tunnel,
    [TFX_METHOD_INTEGRATED_GRADIENTS] = tfx__explain_integrated_gradients,
    [TFX_METHOD_GRAD_CAM_PLUS_PLUS] = tfx__explain_grad_cam_plus_plus,
    [TFX_METHOD_SCORE_CAM] = tfx__explain_score_cam,
    [TFX_METHOD_LAYER_CAM] = tfx__explain_layer_cam,
    [TFX_METHOD_XGRAD_CAM] = tfx__explain_xgrad_cam,
    [TFX_METHOD_HIRES_CAM] = tfx__explain_hires_cam,
    [TFX_METHOD_EIGEN_CAM] = tfx__explain_eigen_cam,
    [TFX_METHOD_GUIDED_BACKPROP] = tfx__explain_guided,
    [TFX_METHOD_GUIDED_GRAD_CAM] = tfx__explain_guided_grad_cam,
    [TFX_METHOD_DECONVNET] = tfx__explain_guided,
    [TFX_METHOD_GUIDED_SMOOTH_GRAD] = tfx__explain_noise_tunnel,
    [TFX_METHOD_LRP] = tfx__explain_lrp,
    [TFX_METHOD_NOISE_TUNNEL] = tfx__explain_noise_tunnel,
};
_Static_assert(sizeof methods / sizeof methods[0] == TFX_METHOD_NOISE_TUNNEL + 1,
               "every method from ACTIVATIONS to NOISE_TUNNEL has an entry");

static int needs_class(int method) { return method != TFX_METHOD_ACTIVATIONS && method != TFX_METHOD_EIGEN_CAM; }

int tfx__explain_run(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o,
                     const tfx__explain_hooks *hooks, tfx_attribution **out)
{
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    tfx__xctx c;
    memset(&c, 0, sizeof c);
    int rc = tfx__explain_copy_options(o, &c.o, "tfx_explain");
    if (rc) return rc;
    TFX__CHECK_ARG(n > 0, "tfx_explain: n = 0 images");
    TFX__CHECK_ARG(c.o.method >= TFX_METHOD_ACTIVATIONS && c.o.method <= TFX_METHOD_NOISE_TUNNEL,
                   "tfx_explain: unknown method %d", c.o.method);
    TFX__CHECK_ARG(c.o.compat == TFX_COMPAT_NONE || c.o.compat == TFX_COMPAT_TF_EXPLAIN,
                   "tfx_explain: unknown compat mode %d", c.o.compat);
    TFX__CHECK_ARG(c.o.batch_size <= TFX__MAX_BATCH, "tfx_explain: batch_size %zu is larger than %zu",
                   c.o.batch_size, TFX__MAX_BATCH);
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "tfx_explain: the model has no layers");
    c.m = m;
    c.hooks = hooks;
    c.x = x;
    c.n = n;
    c.in = m->input;
    c.in_sz = tfx__shape_size(m->input);
    c.n_layers = m->n_layers;
    const tfx_layer *last = m->layers[m->n_layers - 1];
    c.K = tfx__shape_size(last->out);
    if (needs_class(c.o.method) && (last->out.h != 1 || last->out.w != 1))
        return tfx__error(TFX_ENOTSUP, "tfx_explain: the model's output is %dx%dx%d; class scores need a vector "
                                       "output (end the model with Flatten/GlobalAveragePooling and Dense)",
                          last->out.h, last->out.w, last->out.c);
    /* Default chunk: the model's batch size, at least EXPLAIN_MIN_BATCH rows, so IG's 50 steps
     * or occlusion's 64 windows of an image go through one forward (fewer passes over the big
     * Dense weights, larger GEMMs: measured 5-10% faster than 32 on the seed model). */
    c.batch = c.o.batch_size ? c.o.batch_size : m->batch_size > EXPLAIN_MIN_BATCH ? m->batch_size : EXPLAIN_MIN_BATCH;
    rc = tfx__check_count("tfx_explain", n, c.in_sz, sizeof(float));
    if (rc) return rc;
    rc = tfx__check_finite("tfx_explain", "x", x, n * c.in_sz, c.in_sz);
    if (rc) return rc;

    c.a = tfx__calloc(1, sizeof *c.a);
    if (!c.a) return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory");
    c.a->method = c.o.method;
    c.a->n = n;
    c.a->in_h = c.in.h;
    c.a->in_w = c.in.w;
    c.a->in_c = c.in.c;
    c.classes = c.a->classes = tfx__malloc(n * sizeof(int));
    if (!c.classes) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) c.classes[i] = -1;
    rc = methods[c.o.method](&c); /* the range was checked above */
done:
    tfx__free(c.seed);
    if (rc) {
        tfx_attribution_free(c.a);
        return rc;
    }
    *out = c.a;
    return TFX_OK;
}

int tfx_explain(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o, tfx_attribution **out)
{
    return tfx__explain_run(m, x, n, o, NULL, out);
}
