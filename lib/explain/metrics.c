/* Faithfulness metrics: deletion / insertion AUC (Petsiuk et al., BMVC 2018, checked against
 * the reference code eclique/RISE evaluation.py) and the cascading model-randomisation sanity
 * check with Spearman rank correlation (Adebayo et al., NeurIPS 2018). IG completeness and LRP
 * conservation are read from the attribution (tfx_attribution_ig_delta,
 * tfx_attribution_relevance_sums). Every model evaluation is a chunked forward of batch_size
 * rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "render/render.h"
#include "explain/roadmap.h"

TFX__OPTIONS_DESC_V1(faithfulness_options, tfx_faithfulness_options, TFX_FAITHFULNESS_OPTIONS_VERSION,
                     TFX_FAITHFULNESS_OPTIONS_INIT);

int tfx_faithfulness_options_init(tfx_faithfulness_options *opts, unsigned version)
{
    return tfx__options_init(&faithfulness_options, opts, version, "tfx_faithfulness_options_init");
}

/* ---- ranking ---- */

typedef struct ranked {
    float v;
    size_t i;
} ranked;

static int by_value_desc(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->v > b->v) return -1;
    if (a->v < b->v) return 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* One value per pixel of a (h, w, c) map. NaN ranks last. */
static void reduce_map(const float *map, size_t hw, int c, int how, float *out)
{
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < c; q++) {
            float x = map[p * c + q];
            if (how == TFX_RANK_SUM) v += x;
            else if (how == TFX_RANK_SUM_ABS) v += fabsf(x);
            else v = fabsf(x) > v ? fabsf(x) : v;
        }
        out[p] = isnan(v) ? -INFINITY : (float)v;
    }
}

/* ---- Spearman ---- */

static void ranks_of(const float *v, size_t cnt, ranked *tmp, double *rank)
{
    for (size_t i = 0; i < cnt; i++) tmp[i] = (ranked){v[i], i};
    qsort(tmp, cnt, sizeof *tmp, by_value_desc);
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
    ranked *tmp = tfx__malloc(cnt * sizeof *tmp);
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

/* ---- deletion / insertion ---- */

typedef struct dctx {
    tfx_model *m;
    size_t B, D;
    int K;
    int use_logit;
    float *rows;
    size_t nrows;
    double *scores; /* per recorded point */
    size_t npoints;
} dctx;

/* Score of class k for row r of the last forward: probability (softmax of the output unless
 * the model ends in a softmax) or the class score (logit when the softmax can be stripped). */
static double class_score(tfx_model *m, size_t r, int K, int k, int use_logit)
{
    tfx__model_head head;
    tfx__model_get_head(m, &head);
    int softmax = head.activation == TFX_ACTIVATION_SOFTMAX;
    const float *y = m->acts[head.last + 1] + r * (size_t)K;
    if (use_logit) {
        if (softmax) return tfx__model_layer_preactivation(m, head.last)[r * (size_t)K + (size_t)k];
        return y[k];
    }
    if (softmax) return y[k];
    double mx = y[0], s = 0.0;
    for (int j = 1; j < K; j++) mx = y[j] > mx ? y[j] : mx;
    for (int j = 0; j < K; j++) s += exp(y[j] - mx);
    return exp(y[k] - mx) / s;
}

static int flush_rows(dctx *d, int k)
{
    if (!d->nrows) return TFX_OK;
    int rc = tfx__model_forward(d->m, d->rows, d->nrows, 0);
    if (rc) return tfx__error_prefix("tfx_deletion_insertion");
    for (size_t r = 0; r < d->nrows; r++) d->scores[d->npoints++] = class_score(d->m, r, d->K, k, d->use_logit);
    d->nrows = 0;
    return TFX_OK;
}

static int push_row(dctx *d, const float *img, int k)
{
    memcpy(d->rows + d->nrows * d->D, img, d->D * sizeof(float));
    if (++d->nrows == d->B) return flush_rows(d, k);
    return TFX_OK;
}

/* Gaussian blur (size x size, sigma, normalised), zero padding as the reference code's conv2d. */
static void blur(const float *x, int H, int W, int C, int size, float sigma, float *tmp, float *out)
{
    double kern[256], s = 0.0;
    int r = size / 2;
    for (int i = 0; i < size; i++) {
        double d = i - r;
        kern[i] = exp(-d * d / (2.0 * (double)sigma * sigma));
        s += kern[i];
    }
    for (int i = 0; i < size; i++) kern[i] /= s;
    for (int y = 0; y < H; y++) /* the 2-D kernel is the outer product: rows, then columns */
        for (int xx = 0; xx < W; xx++)
            for (int c = 0; c < C; c++) {
                double v = 0.0;
                for (int i = 0; i < size; i++) {
                    int q = xx + i - r;
                    if (q >= 0 && q < W) v += kern[i] * x[((size_t)y * W + q) * C + c];
                }
                tmp[((size_t)y * W + xx) * C + c] = (float)v;
            }
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++)
            for (int c = 0; c < C; c++) {
                double v = 0.0;
                for (int i = 0; i < size; i++) {
                    int q = y + i - r;
                    if (q >= 0 && q < H) v += kern[i] * tmp[((size_t)q * W + xx) * C + c];
                }
                out[((size_t)y * W + xx) * C + c] = (float)v;
            }
}

static void substrate(int kind, float value, const float *x, int H, int W, int C, int bsize, float bsigma,
                      float *tmp, float *out)
{
    size_t HW = (size_t)H * W;
    if (kind == TFX_SUBSTRATE_CONSTANT) {
        for (size_t i = 0; i < HW * C; i++) out[i] = value;
    } else if (kind == TFX_SUBSTRATE_MEAN) {
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (size_t p = 0; p < HW; p++) s += x[p * C + c];
            for (size_t p = 0; p < HW; p++) out[p * C + c] = (float)(s / (double)HW);
        }
    } else {
        blur(x, H, W, C, bsize, bsigma, tmp, out);
    }
}

int tfx_deletion_insertion(tfx_model *m, const float *x, size_t n, const tfx_attribution *a,
                           const tfx_faithfulness_options *o, double *deletion, double *insertion)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(a);
    tfx_faithfulness_options opt;
    int copy_rc = tfx__options_copy(&faithfulness_options, &opt, o, "tfx_deletion_insertion");
    if (copy_rc) return copy_rc;
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "tfx_deletion_insertion: the model has no layers");
    const int H = m->input.h, W = m->input.w, C = m->input.c;
    TFX__CHECK_ARG(n > 0 && n == a->n, "tfx_deletion_insertion: n = %zu but the attribution has %zu maps", n, a->n);
    TFX__CHECK_ARG(a->in_h == H && a->in_w == W && a->in_c == C, "tfx_deletion_insertion: the attribution was made "
                   "for %dx%dx%d inputs, the model takes %dx%dx%d", a->in_h, a->in_w, a->in_c, H, W, C);
    const tfx_layer *last = m->layers[m->n_layers - 1];
    TFX__CHECK_ARG(last->out.h == 1 && last->out.w == 1, "tfx_deletion_insertion: the model's output is not a vector");
    for (int s = 0; s < 2; s++) {
        int sub = s ? opt.insertion_substrate : opt.deletion_substrate;
        TFX__CHECK_ARG(sub >= TFX_SUBSTRATE_CONSTANT && sub <= TFX_SUBSTRATE_BLUR,
                       "tfx_deletion_insertion: unknown substrate %d", sub);
    }
    TFX__CHECK_ARG(isfinite(opt.substrate_value), "tfx_deletion_insertion: substrate_value is not finite");
    TFX__CHECK_ARG(opt.blur_size >= 1 && opt.blur_size <= 255 && opt.blur_size % 2 == 1,
                   "tfx_deletion_insertion: blur_size = %d must be odd, 1..255", opt.blur_size);
    TFX__CHECK_ARG(opt.blur_sigma > 0.0f && isfinite(opt.blur_sigma), "tfx_deletion_insertion: blur_sigma = %g must "
                   "be > 0", (double)opt.blur_sigma);
    TFX__CHECK_ARG(opt.reduce >= TFX_RANK_SUM && opt.reduce <= TFX_RANK_MAX_ABS,
                   "tfx_deletion_insertion: unknown reduce %d", opt.reduce);
    TFX__CHECK_ARG(opt.batch_size <= ((size_t)1 << 20), "tfx_deletion_insertion: batch_size %zu is too large",
                   opt.batch_size);
    const size_t HW = (size_t)H * W, D = HW * (size_t)C, step = opt.step ? opt.step : (size_t)W;
    const size_t nsteps = (HW + step - 1) / step, npoints = nsteps + 1;
    dctx d = {m, opt.batch_size ? opt.batch_size : m->batch_size, D, last->out.c, opt.use_logit != 0,
              NULL, 0, NULL, 0};
    d.rows = tfx__malloc(d.B * D * sizeof(float));
    d.scores = tfx__malloc(npoints * sizeof(double));
    float *red = tfx__malloc(a->h * (size_t)a->w * sizeof(float));
    float *rank = tfx__malloc(HW * sizeof(float));
    ranked *order = tfx__malloc(HW * sizeof *order);
    float *cur = tfx__malloc(D * sizeof(float)), *sub = tfx__malloc(D * sizeof(float));
    float *tmp = tfx__malloc(D * sizeof(float));
    int rc = TFX_OK;
    if (!d.rows || !d.scores || !red || !rank || !order || !cur || !sub || !tmp) {
        rc = tfx__error(TFX_ENOMEM, "tfx_deletion_insertion: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const float *xi = x + i * D;
        int k = a->classes[i];
        if (k < 0) { /* class-agnostic map: the predicted class */
            rc = tfx__model_forward(m, xi, 1, 0);
            if (rc) {
                rc = tfx__error_prefix("tfx_deletion_insertion");
                break;
            }
            const float *y = m->acts[m->n_layers];
            k = 0;
            for (int j = 1; j < d.K; j++) k = y[j] > y[k] ? j : k;
        }
        reduce_map(a->data + i * (size_t)a->h * a->w * a->c, (size_t)a->h * a->w, a->c, opt.reduce, red);
        if (a->h != H || a->w != W) {
            rc = tfx__resize_f32(red, a->h, a->w, 1, rank, H, W);
            if (rc) break;
        } else {
            memcpy(rank, red, HW * sizeof(float));
        }
        for (size_t p = 0; p < HW; p++) order[p] = (ranked){rank[p], p};
        qsort(order, HW, sizeof *order, by_value_desc);
        for (int ins = 0; ins < 2 && !rc; ins++) {
            double *outv = ins ? insertion : deletion;
            if (!outv) continue;
            substrate(ins ? opt.insertion_substrate : opt.deletion_substrate, opt.substrate_value, xi, H, W, C,
                      opt.blur_size, opt.blur_sigma, tmp, sub);
            /* deletion: x -> substrate; insertion: substrate -> x */
            const float *from = ins ? sub : xi, *to = ins ? xi : sub;
            memcpy(cur, from, D * sizeof(float));
            d.npoints = 0;
            rc = push_row(&d, cur, k);
            for (size_t t = 0; t < nsteps && !rc; t++) {
                size_t p1 = (t + 1) * step < HW ? (t + 1) * step : HW;
                for (size_t p = t * step; p < p1; p++) {
                    size_t px = order[p].i;
                    memcpy(cur + px * C, to + px * C, (size_t)C * sizeof(float));
                }
                rc = push_row(&d, cur, k);
            }
            if (!rc) rc = flush_rows(&d, k);
            if (rc) break;
            double s = 0.0;
            for (size_t t = 0; t < npoints; t++) s += d.scores[t];
            outv[i] = (s - 0.5 * d.scores[0] - 0.5 * d.scores[npoints - 1]) / (double)(npoints - 1);
        }
    }
out:
    tfx__free(d.rows);
    tfx__free(d.scores);
    tfx__free(red);
    tfx__free(rank);
    tfx__free(order);
    tfx__free(cur);
    tfx__free(sub);
    tfx__free(tmp);
    return rc;
}

/* ---- sanity check ---- */

int tfx_sanity_check(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o, int reduce,
                     uint64_t seed, double *rho, size_t cap, size_t *count)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_ARG(rho || cap == 0, "tfx_sanity_check: rho is NULL with cap %zu", cap);
    TFX__CHECK_ARG(reduce >= TFX_RANK_SUM && reduce <= TFX_RANK_MAX_ABS, "tfx_sanity_check: unknown reduce %d",
                   reduce);
    TFX__CHECK_ARG(n > 0, "tfx_sanity_check: n = 0 images");
    tfx_explain_options opt;
    int rc = tfx__explain_copy_options(o, &opt, "tfx_sanity_check");
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
            reduce_map(a0->data + i * hw * a0->c, hw, a0->c, reduce, r0);
            reduce_map(ak->data + i * hw * ak->c, hw, ak->c, reduce, rk);
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
