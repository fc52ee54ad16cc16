/* Faithfulness metrics: deletion / insertion AUC (Petsiuk et al., BMVC 2018, checked against the
 * reference code eclique/RISE evaluation.py): the class score while the top-ranked pixels of a
 * map are moved to a substrate (deletion) or from it to the image (insertion); every curve's
 * points go through the explain engine's row driver. IG completeness and LRP conservation are
 * read from the attribution (tfx_attribution_ig_delta, tfx_attribution_relevance_sums); the
 * model-randomisation sanity check is sanity_check.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "render/render.h"
#include "explain/explain_internal.h"

TFX__OPTIONS_DESC_V1(faithfulness_options, tfx_faithfulness_options, TFX_FAITHFULNESS_OPTIONS_VERSION,
                     TFX_FAITHFULNESS_OPTIONS_INIT);

int tfx_faithfulness_options_init(tfx_faithfulness_options *opts, unsigned version)
{
    return tfx__options_init(&faithfulness_options, opts, version, "tfx_faithfulness_options_init");
}

/* ---- ranking ---- */

int tfx__ranked_desc(const void *pa, const void *pb)
{
    const tfx__ranked *a = pa, *b = pb;
    if (a->v > b->v) return -1;
    if (a->v < b->v) return 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

void tfx__reduce_map(const float *map, size_t hw, int c, int how, float *out)
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

/* ---- deletion / insertion ---- */

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

/* One curve (image, deletion or insertion) is an image of the row driver: its points are rows. */
typedef struct job {
    tfx_model *m;
    const float *x;
    const tfx_attribution *a;
    const tfx_faithfulness_options *o;
    double *deletion, *insertion;
    int nparts, H, W, C;
    size_t step;
    int K, k;          /* classes; the current image's class */
    double *scores;    /* npoints of the current curve */
    float *red, *rank; /* the map reduced per pixel, at input size */
    tfx__ranked *order; /* pixels by decreasing rank */
    float *cur, *sub, *tmp; /* the current point, the substrate, blur scratch */
    const float *to;   /* deletion: the substrate; insertion: the image */
    size_t npoints;
} job;

static int begin(void *u, size_t curve)
{
    job *jb = u;
    const size_t i = curve / (size_t)jb->nparts, HW = (size_t)jb->H * jb->W;
    const int ins = jb->nparts == 2 ? (int)(curve % 2) : jb->insertion != NULL;
    const tfx_attribution *a = jb->a;
    const tfx_faithfulness_options *o = jb->o;
    const float *xi = jb->x + i * HW * (size_t)jb->C;
    if (curve % (size_t)jb->nparts == 0) { /* a new image: its class and pixel order */
        jb->k = a->classes[i];
        if (jb->k < 0) { /* class-agnostic map: the predicted class (no curve pending) */
            int rc = tfx__model_forward(jb->m, xi, 1, 0);
            if (rc) return tfx__error_prefix("tfx_deletion_insertion");
            const float *y = jb->m->acts[jb->m->n_layers];
            jb->k = 0;
            for (int j = 1; j < jb->K; j++) jb->k = y[j] > y[jb->k] ? j : jb->k;
        }
        tfx__reduce_map(a->data + i * (size_t)a->h * a->w * a->c, (size_t)a->h * a->w, a->c, o->reduce, jb->red);
        if (a->h != jb->H || a->w != jb->W) {
            int rc = tfx__resize_f32(jb->red, a->h, a->w, 1, jb->rank, jb->H, jb->W);
            if (rc) return rc;
        } else {
            memcpy(jb->rank, jb->red, HW * sizeof(float));
        }
        for (size_t p = 0; p < HW; p++) jb->order[p] = (tfx__ranked){jb->rank[p], p};
        qsort(jb->order, HW, sizeof *jb->order, tfx__ranked_desc);
    }
    substrate(ins ? o->insertion_substrate : o->deletion_substrate, o->substrate_value, xi, jb->H, jb->W, jb->C,
              o->blur_size, o->blur_sigma, jb->tmp, jb->sub);
    /* deletion: x -> substrate; insertion: substrate -> x */
    memcpy(jb->cur, ins ? jb->sub : xi, HW * (size_t)jb->C * sizeof(float));
    jb->to = ins ? xi : jb->sub;
    return TFX_OK;
}

/* Point t: the t * step top-ranked pixels moved. */
static int make(void *u, size_t curve, size_t t, float *row)
{
    (void)curve;
    job *jb = u;
    const size_t HW = (size_t)jb->H * jb->W, C = (size_t)jb->C;
    if (t > 0) {
        size_t p1 = t * jb->step < HW ? t * jb->step : HW;
        for (size_t p = (t - 1) * jb->step; p < p1; p++) {
            size_t px = jb->order[p].i;
            memcpy(jb->cur + px * C, jb->to + px * C, C * sizeof(float));
        }
    }
    memcpy(row, jb->cur, HW * C * sizeof(float));
    return 1;
}

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    jb->scores[ch->index[b]] = class_score(jb->m, b, jb->K, jb->k, jb->o->use_logit != 0);
    return TFX_OK;
}

/* The curve's area (trapezoids over [0, 1]). */
static int end(void *u, size_t curve)
{
    job *jb = u;
    const size_t i = curve / (size_t)jb->nparts, np = jb->npoints;
    const int ins = jb->nparts == 2 ? (int)(curve % 2) : jb->insertion != NULL;
    double s = 0.0;
    for (size_t t = 0; t < np; t++) s += jb->scores[t];
    (ins ? jb->insertion : jb->deletion)[i] = (s - 0.5 * jb->scores[0] - 0.5 * jb->scores[np - 1]) / (double)(np - 1);
    return TFX_OK;
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
                       "tfx_deletion_insertion: unknown %s %d (must be %d..%d)",
                       s ? "insertion_substrate" : "deletion_substrate", sub, TFX_SUBSTRATE_CONSTANT,
                       TFX_SUBSTRATE_BLUR);
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
    int chk = tfx__check_count("tfx_deletion_insertion", n, D, sizeof(float));
    if (!chk) chk = tfx__check_finite("tfx_deletion_insertion", "x", x, n * D, D);
    if (chk) return chk;
    const size_t nsteps = (HW + step - 1) / step, npoints = nsteps + 1;
    const int nparts = (deletion != NULL) + (insertion != NULL);
    if (!nparts) return TFX_OK;
    job jb = {.m = m, .x = x, .a = a, .o = &opt, .deletion = deletion, .insertion = insertion, .nparts = nparts,
              .H = H, .W = W, .C = C, .step = step, .K = last->out.c, .k = -1, .npoints = npoints};
    jb.scores = tfx__malloc(npoints * sizeof(double));
    jb.red = tfx__malloc(a->h * (size_t)a->w * sizeof(float));
    jb.rank = tfx__malloc(HW * sizeof(float));
    jb.order = tfx__malloc(HW * sizeof *jb.order);
    jb.cur = tfx__malloc(D * sizeof(float));
    jb.sub = tfx__malloc(D * sizeof(float));
    jb.tmp = tfx__malloc(D * sizeof(float));
    int rc = TFX_OK;
    if (!jb.scores || !jb.red || !jb.rank || !jb.order || !jb.cur || !jb.sub || !jb.tmp) {
        rc = tfx__error(TFX_ENOMEM, "tfx_deletion_insertion: out of memory");
    } else {
        /* The curves' points go through the row driver; a curve never shares a chunk. */
        tfx__xctx c = {0};
        c.m = m;
        c.x = x;
        c.n = n * (size_t)nparts;
        c.in_sz = D;
        c.batch = opt.batch_size ? opt.batch_size : m->batch_size;
        tfx__rows d = {.per_image = npoints, .pass = TFX__PASS_FORWARD, .image_chunks = 1,
                       .fn = "tfx_deletion_insertion", .u = &jb, .begin = begin, .make = make, .row = row, .end = end};
        rc = tfx__explain_rows(&c, &d);
    }
    tfx__free(jb.scores);
    tfx__free(jb.red);
    tfx__free(jb.rank);
    tfx__free(jb.order);
    tfx__free(jb.cur);
    tfx__free(jb.sub);
    tfx__free(jb.tmp);
    return rc;
}
