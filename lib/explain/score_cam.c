/* Score-CAM (Wang et al., CVPR-W 2020), as the official code: for each channel k of the layer,
 * M_k = min-max normalised Up(A_k) (bilinear to the input size; constant channels are skipped),
 * s_k = softmax(f(x * M_k))_c (M_k broadcast over the colour channels), and
 * map = ReLU(sum_k s_k Up(A_k)) -- computed as Up(sum_k s_k A_k), bilinear resizing being
 * linear -- or ReLU(sum_k s_k A_k) at layer size when upsample = 0.
 * TFX_SCORE_CAM_SOFTMAX_CHANNELS takes pytorch-grad-cam's weights (softmax over channels of the
 * masked scores S_c) on these masks: the softmax runs over the non-constant channels only and a
 * constant channel weighs 0, where pytorch-grad-cam masks it to a black image and keeps that
 * score in its softmax (and upsamples with align_corners = True).
 * The masked copies of one image go through the row driver, batch_size rows at a time, so memory
 * is O(batch_size * input) whatever the channel count. */
#include <math.h>
#include <string.h>

#include "render/render.h"
#include "explain/cam.h"

/* Probability of class k for row r of the last forward (softmax of the output when the model
 * does not end in one). */
static double class_prob(const tfx__xctx *c, size_t r, int k)
{
    const float *y = tfx__explain_output(c, r);
    if (c->t.softmax_last) return y[k];
    double mx = y[0], s = 0.0;
    for (size_t j = 1; j < c->K; j++) mx = y[j] > mx ? y[j] : mx;
    for (size_t j = 0; j < c->K; j++) s += exp(y[j] - mx);
    return exp(y[k] - mx) / s;
}

typedef struct job {
    tfx__xctx *c;
    size_t li;
    int wmode, h, w, k;
    const float *xi;     /* the current image */
    float *A;            /* h*w*k: its layer output */
    float *chan, *up;    /* h*w, H*W: one channel, upsampled */
    double *score;       /* k */
    unsigned char *used; /* k: the channel is not constant */
    float *cam, *camup;  /* h*w, H*W */
} job;

static int begin(void *u, size_t i)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    jb->xi = c->x + i * c->in_sz;
    int rc = tfx__model_forward(c->m, jb->xi, 1, 0); /* no masked rows pending: one image per chunk */
    if (rc) return tfx__error_prefix("tfx_explain");
    memcpy(jb->A, tfx__model_layer_output(c->m, jb->li), (size_t)jb->h * jb->w * jb->k * sizeof(float));
    return TFX_OK;
}

/* The copy of the image masked by channel q, or nothing for a constant channel. */
static int make(void *u, size_t i, size_t q, float *row)
{
    (void)i;
    job *jb = u;
    const tfx__xctx *c = jb->c;
    const int H = c->in.h, W = c->in.w, C = c->in.c, k = jb->k;
    const size_t hw = (size_t)jb->h * jb->w, HW = (size_t)H * W;
    for (size_t p = 0; p < hw; p++) jb->chan[p] = jb->A[p * k + q];
    int rc = tfx__resize_f32(jb->chan, jb->h, jb->w, 1, jb->up, H, W);
    if (rc) return rc;
    float lo = jb->up[0], hi = jb->up[0];
    for (size_t p = 1; p < HW; p++) {
        lo = jb->up[p] < lo ? jb->up[p] : lo;
        hi = jb->up[p] > hi ? jb->up[p] : hi;
    }
    jb->used[q] = hi > lo;
    jb->score[q] = 0.0;
    if (!jb->used[q]) return 0; /* constant map: no mask (the official code skips it) */
    float inv = 1.0f / (hi - lo);
    for (size_t p = 0; p < HW; p++) {
        float mk = (jb->up[p] - lo) * inv;
        for (int ch = 0; ch < C; ch++) row[p * C + ch] = jb->xi[p * C + ch] * mk;
    }
    return 1;
}

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    jb->score[ch->index[b]] = jb->wmode == TFX_SCORE_CAM_SOFTMAX_CLASSES ? class_prob(jb->c, b, ch->cls[b])
                                                                       : tfx__explain_score(jb->c, b, ch->cls[b]);
    return TFX_OK;
}

static int end(void *u, size_t i)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    const int k = jb->k, H = c->in.h, W = c->in.w;
    const size_t hw = (size_t)jb->h * jb->w, HW = (size_t)H * W;
    double *score = jb->score;
    if (jb->wmode == TFX_SCORE_CAM_SOFTMAX_CHANNELS) {
        double mx = -INFINITY, s = 0.0;
        for (int q = 0; q < k; q++)
            if (jb->used[q] && score[q] > mx) mx = score[q];
        for (int q = 0; q < k; q++)
            if (jb->used[q]) s += exp(score[q] - mx);
        for (int q = 0; q < k; q++) score[q] = jb->used[q] ? exp(score[q] - mx) / s : 0.0;
    }
    for (size_t p = 0; p < hw; p++) {
        double v = 0.0;
        for (int q = 0; q < k; q++) v += score[q] * jb->A[p * k + q];
        jb->cam[p] = (float)v;
    }
    if (c->o.upsample) {
        float *dst = c->a->data + i * HW;
        int rc = tfx__resize_f32(jb->cam, jb->h, jb->w, 1, jb->camup, H, W);
        if (rc) return rc;
        for (size_t p = 0; p < HW; p++) dst[p] = jb->camup[p] > 0.0f ? jb->camup[p] : 0.0f;
    } else {
        float *dst = c->a->data + i * hw;
        for (size_t p = 0; p < hw; p++) dst[p] = jb->cam[p] > 0.0f ? jb->cam[p] : 0.0f;
    }
    return TFX_OK;
}

int tfx__explain_score_cam(tfx__xctx *c)
{
    int wmode = c->o.score_cam_weights;
    TFX__CHECK_ARG(wmode == TFX_SCORE_CAM_SOFTMAX_CLASSES || wmode == TFX_SCORE_CAM_SOFTMAX_CHANNELS,
                   "tfx_explain: unknown score_cam_weights %d", wmode);
    size_t li;
    int rc = tfx__cam_layer(c, "Score-CAM", TFX__TARGET_LOGIT, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c, H = c->in.h, W = c->in.w;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = c->o.upsample ? tfx__explain_alloc_maps(c, H, W, 1) : tfx__explain_alloc_maps(c, h, w, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, HW = (size_t)H * W;
    job jb = {c, li, wmode, h, w, k, NULL, tfx__malloc(hw * (size_t)k * sizeof(float)),
              tfx__malloc(hw * sizeof(float)), tfx__malloc(HW * sizeof(float)),
              tfx__malloc((size_t)k * sizeof(double)), tfx__malloc((size_t)k), tfx__malloc(hw * sizeof(float)),
              tfx__malloc(HW * sizeof(float))};
    if (!jb.A || !jb.chan || !jb.up || !jb.score || !jb.used || !jb.cam || !jb.camup) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Score-CAM");
    } else {
        tfx__rows d = {.per_image = (size_t)k, .pass = TFX__PASS_FORWARD, .image_chunks = 1, .u = &jb,
                       .begin = begin, .make = make, .row = row, .end = end};
        rc = tfx__explain_rows(c, &d);
    }
    tfx__free(jb.A);
    tfx__free(jb.chan);
    tfx__free(jb.up);
    tfx__free(jb.score);
    tfx__free(jb.used);
    tfx__free(jb.cam);
    tfx__free(jb.camup);
    return rc;
}
