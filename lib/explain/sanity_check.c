/* The cascading model-randomisation sanity check (Adebayo et al., NeurIPS 2018): the layers'
 * weights are re-initialised from the top down, the method re-run, and each map compared with
 * the trained model's by Spearman rank correlation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explain_internal.h"

/* ---- Spearman ---- */

static void ranks_of(const float *v, size_t cnt, tfx__ranked *tmp, double *rank)
{
    for (size_t i = 0; i < cnt; i++) tmp[i] = (tfx__ranked){v[i], i};
    qsort(tmp, cnt, sizeof *tmp, tfx__ranked_desc);
    for (size_t i = 0; i < cnt;) {
        size_t j = i;
        while (j + 1 < cnt && tmp[j + 1].v == tmp[i].v) j++;
        double r = 0.5 * (double)(i + j); /* ties share their mean rank */
        for (size_t t = i; t <= j; t++) rank[tmp[t].i] = r;
        i = j + 1;
    }
}

static double pearson(const double *a, const double *b, size_t cnt)
{
    double ma = 0.0, mb = 0.0;
    for (size_t i = 0; i < cnt; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)cnt;
    mb /= (double)cnt;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (size_t i = 0; i < cnt; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0.0 && sbb > 0.0 ? sab / sqrt(saa * sbb) : 0.0;
}

double tfx__spearman(const float *a, const float *b, size_t cnt)
{
    if (cnt < 2) return 0.0;
    tfx__ranked *tmp = tfx__malloc(cnt * sizeof *tmp);
    double *ra = tfx__malloc(cnt * sizeof(double)), *rb = tfx__malloc(cnt * sizeof(double));
    double r = NAN;
    if (tmp && ra && rb) {
        ranks_of(a, cnt, tmp, ra);
        ranks_of(b, cnt, tmp, rb);
        r = pearson(ra, rb, cnt);
    }
    tfx__free(tmp);
    tfx__free(ra);
    tfx__free(rb);
    return r;
}

/* ---- sanity check ---- */

int tfx_sanity_check(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o, int reduce,
                     uint64_t seed, double *rho, size_t cap, size_t *count)
{
    TFX__CHECK_NULL(m);
    /* it writes random weights into the model (restored before returning) */
    int rc = tfx__model_check_unlocked(m, "tfx_sanity_check");
    if (rc) return rc;
    TFX__CHECK_NULL(x);
    TFX__CHECK_ARG(rho || cap == 0, "tfx_sanity_check: rho is NULL with cap %zu", cap);
    TFX__CHECK_ARG(reduce >= TFX_RANK_SUM && reduce <= TFX_RANK_MAX_ABS, "tfx_sanity_check: unknown reduce %d",
                   reduce);
    TFX__CHECK_ARG(n > 0, "tfx_sanity_check: n = 0 images");
    tfx_explain_options opt;
    rc = tfx__explain_copy_options(o, &opt, "tfx_sanity_check");
    if (rc) return rc;
    const size_t in_sz = tfx__shape_size(m->input);
    rc = tfx__check_count("tfx_sanity_check", n, in_sz, sizeof(float));
    if (!rc) rc = tfx__check_finite("tfx_sanity_check", "x", x, n * in_sz, in_sz);
    if (rc) return rc;
    size_t nw = 0;
    for (size_t i = 0; i < m->n_layers; i++) nw += m->layers[i]->n_params > 0;
    if (count) *count = nw;
    size_t nstate = 0;
    for (size_t i = 0; i < m->n_layers; i++) nstate += m->layers[i]->n_state;
    float *params = tfx__malloc((m->n_params ? m->n_params : 1) * sizeof(float));
    float *state = tfx__malloc((nstate ? nstate : 1) * sizeof(float));
    int *cls = tfx__malloc(n * sizeof(int));
    tfx_attribution *a0 = NULL, *ak = NULL;
    float *r0 = NULL, *rk = NULL;
    if (!params || !state || !cls) {
        rc = tfx__error(TFX_ENOMEM, "tfx_sanity_check: out of memory");
        goto out;
    }
    memcpy(params, m->params, m->n_params * sizeof(float));
    for (size_t i = 0, off = 0; i < m->n_layers; off += m->layers[i]->n_state, i++)
        if (m->layers[i]->n_state) memcpy(state + off, m->layers[i]->state, m->layers[i]->n_state * sizeof(float));
    rc = tfx_explain(m, x, n, &opt, &a0);
    if (rc) {
        rc = tfx__error_prefix("tfx_sanity_check");
        goto out;
    }
    for (size_t i = 0; i < n; i++) cls[i] = a0->classes[i];
    opt.class_indices = cls; /* the trained model's targets, as Adebayo et al. */
    const size_t hw = (size_t)a0->h * a0->w;
    r0 = tfx__malloc(hw * sizeof(float));
    rk = tfx__malloc(hw * sizeof(float));
    if (!r0 || !rk) {
        rc = tfx__error(TFX_ENOMEM, "tfx_sanity_check: out of memory");
        goto restore;
    }
    tfx__rng rng;
    tfx__rng_seed(&rng, seed);
    size_t k = 0;
    for (size_t li = m->n_layers; li-- > 0 && k < cap;) {
        tfx_layer *l = m->layers[li];
        if (l->n_params == 0) continue;
        l->ops->init(l, &rng); /* cascading: the layers above stay randomised */
        tfx__model_weights_changed(m);
        rc = tfx_explain(m, x, n, &opt, &ak);
        if (rc) {
            rc = tfx__error_prefix("tfx_sanity_check");
            goto restore;
        }
        double s = 0.0;
        for (size_t i = 0; i < n; i++) {
            tfx__reduce_map(a0->data + i * hw * a0->c, hw, a0->c, reduce, r0);
            tfx__reduce_map(ak->data + i * hw * ak->c, hw, ak->c, reduce, rk);
            double r = tfx__spearman(r0, rk, hw);
            if (isnan(r)) {
                rc = tfx__error(TFX_ENOMEM, "tfx_sanity_check: out of memory");
                goto restore;
            }
            s += r;
        }
        rho[k++] = s / (double)n;
        tfx_attribution_free(ak);
        ak = NULL;
    }
restore:
    memcpy(m->params, params, m->n_params * sizeof(float));
    tfx__model_weights_changed(m);
    for (size_t i = 0, off = 0; i < m->n_layers; off += m->layers[i]->n_state, i++)
        if (m->layers[i]->n_state) memcpy(m->layers[i]->state, state + off, m->layers[i]->n_state * sizeof(float));
out:
    tfx_attribution_free(a0);
    tfx_attribution_free(ak);
    tfx__free(params);
    tfx__free(state);
    tfx__free(cls);
    tfx__free(r0);
    tfx__free(rk);
    return rc;
}
