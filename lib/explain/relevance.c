/* LRP (Bach et al. 2015; Montavon et al. 2018) as an explainer: relevance starts as the class
 * score S_c (the pre-softmax logit, one-hot) and goes down the model through the engine's
 * backward with a rule per layer (lib/layers/lrp.c; merge layers: lib/layers/add.c and the
 * others), so each layer may use its own rule (composites); the relevance total after every
 * layer is recorded (tfx_attribution_relevance_sums) to show conservation. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"

static int weighted(const tfx_layer *l)
{
    return (l->ops->traits & TFX__TRAIT_WEIGHTED) != 0;
}

static const int public_to_rule[] = {0, TFX__RULE_LRP_0, TFX__RULE_LRP_EPSILON, TFX__RULE_LRP_ALPHA_BETA,
                                     TFX__RULE_LRP_ZPLUS, TFX__RULE_LRP_ZB};

/* The rule kind (tfx__rule_kind) of layer i under the options. */
static int layer_rule(const tfx__xctx *c, size_t i, size_t first_weighted)
{
    const tfx_layer *l = c->m->layers[i];
    if (c->o.lrp_rules && c->o.lrp_rules[i] != TFX_LRP_DEFAULT) return public_to_rule[c->o.lrp_rules[i]];
    switch (c->o.lrp_rule) {
    case TFX_LRP_COMPOSITE:
        if (i == first_weighted) return TFX__RULE_LRP_ZB;
        return (l->ops->traits & TFX__TRAIT_CONVOLUTION) ? TFX__RULE_LRP_ZPLUS : TFX__RULE_LRP_EPSILON;
    case TFX_LRP_COMPOSITE_AB:
        return (l->ops->traits & TFX__TRAIT_CONVOLUTION) ? TFX__RULE_LRP_ALPHA_BETA : TFX__RULE_LRP_EPSILON;
    default:
        return public_to_rule[c->o.lrp_rule];
    }
}

typedef struct job {
    tfx__xctx *c;
    tfx__rule *rules; /* per layer */
    float *R;         /* batch * classes: the seed */
    double *sums;     /* batch * (L + 1): the totals of one chunk */
} job;

/* After the forward of a chunk: relevance S_c on the class, then down the graph in reverse
 * topological order, each layer under its rule (one backward with a rule per layer), recording
 * the total over the relevance alive after each layer (in a chain, at its input). */
static int relevance_walk(void *u, const tfx__chunk *ch)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    const size_t nb = ch->nb, L = c->n_layers, NS = L + 1, s = ch->image[0];
    float *R = jb->R;
    memset(R, 0, nb * c->K * sizeof(float));
    memset(jb->sums, 0, nb * NS * sizeof(double));
    for (size_t b = 0; b < nb; b++) {
        double S = tfx__explain_score(c, b, ch->cls[b]);
        R[b * c->K + (size_t)ch->cls[b]] = (float)S;
        jb->sums[b * NS + L] = S;
    }
    float *out;
    int rc = tfx__model_backward_rules(c->m, nb, c->t.top, R, 0, 1, c->t.flags, jb->rules, jb->sums, &out);
    if (rc) return tfx__error_prefix("tfx_explain: LRP");
    memcpy(c->a->relevance + s * NS, jb->sums, nb * NS * sizeof(double));
    memcpy(c->a->data + s * c->in_sz, out, nb * c->in_sz * sizeof(float));
    return TFX_OK;
}

int tfx__explain_lrp(tfx__xctx *c)
{
    const tfx_explain_options *o = &c->o;
    const size_t L = c->n_layers;
    TFX__CHECK_ARG(o->lrp_rule >= TFX_LRP_0 && o->lrp_rule <= TFX_LRP_COMPOSITE_AB,
                   "tfx_explain: unknown lrp_rule %d", o->lrp_rule);
    if (o->lrp_rules)
        for (size_t i = 0; i < L; i++)
            TFX__CHECK_ARG(o->lrp_rules[i] >= TFX_LRP_DEFAULT && o->lrp_rules[i] <= TFX_LRP_ZB,
                           "tfx_explain: lrp_rules[%zu] = %d is not a rule (0..%d)", i, o->lrp_rules[i], TFX_LRP_ZB);
    size_t first_weighted = L;
    for (size_t i = 0; i < L && first_weighted == L; i++)
        if (weighted(c->m->layers[i])) first_weighted = i;
    int uses_ab = 0, uses_zb = 0;
    for (size_t i = 0; i < L; i++) {
        int r = layer_rule(c, i, first_weighted);
        uses_ab |= r == TFX__RULE_LRP_ALPHA_BETA;
        uses_zb |= r == TFX__RULE_LRP_ZB;
    }
    TFX__CHECK_ARG(o->lrp_epsilon >= 0.0f && isfinite(o->lrp_epsilon), "tfx_explain: lrp_epsilon = %g must be finite "
                   "and >= 0", (double)o->lrp_epsilon);
    if (uses_ab)
        TFX__CHECK_ARG(isfinite(o->lrp_alpha) && isfinite(o->lrp_beta) && o->lrp_beta >= 0.0f &&
                           fabsf(o->lrp_alpha - o->lrp_beta - 1.0f) <= 1e-6f * (1.0f + fabsf(o->lrp_alpha)),
                       "tfx_explain: LRP-alpha-beta needs lrp_alpha - lrp_beta = 1 and lrp_beta >= 0 (got alpha %g, "
                       "beta %g)", (double)o->lrp_alpha, (double)o->lrp_beta);
    if (uses_zb)
        TFX__CHECK_ARG(isfinite(o->lrp_low) && isfinite(o->lrp_high) && o->lrp_low <= o->lrp_high,
                       "tfx_explain: LRP-zB needs finite bounds lrp_low <= lrp_high (got %g, %g)", (double)o->lrp_low,
                       (double)o->lrp_high);

    int rc = tfx__explain_set_target(c, TFX__TARGET_LOGIT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, c->in.h, c->in.w, c->in.c);
    if (rc) return rc;
    const size_t NS = L + 1;
    c->a->relevance = tfx__calloc(c->n * NS, sizeof(double));
    c->a->n_relevance = NS;
    job jb = {c, tfx__malloc(L * sizeof(tfx__rule)), tfx__malloc(c->batch * c->K * sizeof(float)),
              tfx__malloc(c->batch * NS * sizeof(double))};
    if (!c->a->relevance || !jb.rules || !jb.R || !jb.sums) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for LRP");
        goto out;
    }
    for (size_t i = 0; i < L; i++)
        jb.rules[i] = (tfx__rule){layer_rule(c, i, first_weighted), o->lrp_epsilon, o->lrp_alpha, o->lrp_beta,
                                  o->lrp_low, o->lrp_high};
    tfx__rows d = {.pass = TFX__PASS_FORWARD, .u = &jb, .chunk = relevance_walk};
    rc = tfx__explain_rows(c, &d);
out:
    tfx__free(jb.rules);
    tfx__free(jb.R);
    tfx__free(jb.sums);
    return rc;
}

int tfx_attribution_relevance_sums(const tfx_attribution *a, size_t i, double *sums, size_t cap, size_t *count)
{
    TFX__CHECK_NULL(a);
    TFX__CHECK_ARG(a->method == TFX_METHOD_LRP && a->relevance,
                   "tfx_attribution_relevance_sums: the attribution was made by method %d, not LRP", a->method);
    TFX__CHECK_ARG(i < a->n, "tfx_attribution_relevance_sums: index %zu out of range (%zu maps)", i, a->n);
    TFX__CHECK_ARG(sums || cap == 0, "tfx_attribution_relevance_sums: sums is NULL with cap %zu", cap);
    if (count) *count = a->n_relevance;
    size_t k = cap < a->n_relevance ? cap : a->n_relevance;
    for (size_t j = 0; j < k; j++) sums[j] = a->relevance[i * a->n_relevance + j];
    return TFX_OK;
}
