/* Score-CAM (Wang et al., CVPR-W 2020), as the official code: for each channel k of the layer,
 * M_k = min-max normalised Up(A_k) (bilinear to the input size; constant channels are skipped),
 * s_k = softmax(f(x * M_k))_c (M_k broadcast over the colour channels), and
 * map = ReLU(sum_k s_k Up(A_k)) -- computed as Up(sum_k s_k A_k), bilinear resizing being
 * linear -- or ReLU(sum_k s_k A_k) at layer size when upsample = 0. pytorch-grad-cam's variant
 * (softmax over channels of the masked scores S_c) is TFX_SCORE_CAM_SOFTMAX_CHANNELS.
 * The masked copies of one image are pushed through the model batch_size rows at a time, so
 * memory is O(batch_size * input) whatever the channel count. */
#include <math.h>
#include <string.h>

#include "render/render.h"
#include "explain/roadmap.h"

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

int tfx__explain_score_cam(tfx__xctx *c)
{
    int wmode = c->o.score_cam_weights;
    TFX__CHECK_ARG(wmode == TFX_SCORE_CAM_SOFTMAX_CLASSES || wmode == TFX_SCORE_CAM_SOFTMAX_CHANNELS,
                   "tfx_explain: unknown score_cam_weights %d", wmode);
    size_t li;
    int rc = tfx__cam_layer(c, "Score-CAM", &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c, H = c->in.h, W = c->in.w, C = c->in.c;
    const int oh = c->o.upsample ? H : h, ow = c->o.upsample ? W : w;
    rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, oh, ow, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, per = hw * (size_t)k, HW = (size_t)H * W, B = c->batch;
    float *Acopy = tfx__malloc(per * sizeof(float));
    float *chan = tfx__malloc(hw * sizeof(float));
    float *up = tfx__malloc(HW * sizeof(float));
    float *rows = tfx__malloc(B * c->in_sz * sizeof(float));
    double *score = tfx__malloc((size_t)k * sizeof(double));
    unsigned char *used = tfx__malloc((size_t)k);
    int *qrow = tfx__malloc(B * sizeof(int));
    int *cls = tfx__malloc(B * sizeof(int));
    double *sc = tfx__malloc(B * sizeof(double));
    float *cam = tfx__malloc(hw * sizeof(float));
    float *camup = tfx__malloc(HW * sizeof(float));
    if (!Acopy || !chan || !up || !rows || !score || !used || !qrow || !cls || !sc || !cam || !camup) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Score-CAM");
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        const float *xi = c->x + i * c->in_sz;
        rc = tfx__model_forward(c->m, xi, 1, 0);
        if (rc) {
            rc = tfx__error_prefix("tfx_explain");
            goto out;
        }
        memcpy(Acopy, tfx__model_layer_output(c->m, li), per * sizeof(float));
        for (size_t b = 0; b < B; b++) cls[b] = c->classes[i];
        size_t nb = 0;
        for (int q = 0; q <= k; q++) {
            if (q < k) {
                for (size_t p = 0; p < hw; p++) chan[p] = Acopy[p * k + q];
                rc = tfx__resize_f32(chan, h, w, 1, up, H, W);
                if (rc) goto out;
                float lo = up[0], hi = up[0];
                for (size_t p = 1; p < HW; p++) {
                    lo = up[p] < lo ? up[p] : lo;
                    hi = up[p] > hi ? up[p] : hi;
                }
                used[q] = hi > lo;
                score[q] = 0.0;
                if (!used[q]) continue; /* constant map: no mask (official code skips it) */
                float *row = rows + nb * c->in_sz;
                float inv = 1.0f / (hi - lo);
                for (size_t p = 0; p < HW; p++) {
                    float mk = (up[p] - lo) * inv;
                    for (int ch = 0; ch < C; ch++) row[p * C + ch] = xi[p * C + ch] * mk;
                }
                qrow[nb++] = q;
            }
            if (nb == B || (q == k && nb > 0)) {
                rc = tfx__model_forward(c->m, rows, nb, 0);
                if (rc) {
                    rc = tfx__error_prefix("tfx_explain");
                    goto out;
                }
                if (wmode == TFX_SCORE_CAM_SOFTMAX_CLASSES) {
                    for (size_t r = 0; r < nb; r++) score[qrow[r]] = class_prob(c, r, c->classes[i]);
                } else {
                    tfx__explain_scores(c, nb, cls, sc);
                    for (size_t r = 0; r < nb; r++) score[qrow[r]] = sc[r];
                }
                nb = 0;
            }
        }
        if (wmode == TFX_SCORE_CAM_SOFTMAX_CHANNELS) {
            double mx = -INFINITY, s = 0.0;
            for (int q = 0; q < k; q++)
                if (used[q] && score[q] > mx) mx = score[q];
            for (int q = 0; q < k; q++)
                if (used[q]) s += exp(score[q] - mx);
            for (int q = 0; q < k; q++) score[q] = used[q] ? exp(score[q] - mx) / s : 0.0;
        }
        for (size_t p = 0; p < hw; p++) {
            double v = 0.0;
            for (int q = 0; q < k; q++) v += score[q] * Acopy[p * k + q];
            cam[p] = (float)v;
        }
        float *dst = c->a->data + i * (size_t)oh * ow;
        if (c->o.upsample) {
            rc = tfx__resize_f32(cam, h, w, 1, camup, H, W);
            if (rc) goto out;
            for (size_t p = 0; p < HW; p++) dst[p] = camup[p] > 0.0f ? camup[p] : 0.0f;
        } else {
            for (size_t p = 0; p < hw; p++) dst[p] = cam[p] > 0.0f ? cam[p] : 0.0f;
        }
    }
out:
    tfx__free(Acopy);
    tfx__free(chan);
    tfx__free(up);
    tfx__free(rows);
    tfx__free(score);
    tfx__free(used);
    tfx__free(qrow);
    tfx__free(cls);
    tfx__free(sc);
    tfx__free(cam);
    tfx__free(camup);
    return rc;
}
