/* Eigen-CAM (Bany Muhammad & Yeasin, IJCNN 2020): the layer output of each image as an
 * (hw x k) matrix, columns centred, projected on its first right singular vector (found by
 * power iteration on A^T A, in double, without forming it). The singular vector's sign is
 * arbitrary; it is fixed so that the projection's largest magnitude is positive (SegEigenCAM's
 * rule), then ReLU and optional upsampling as every CAM. Class-agnostic: no gradient. */
#include <math.h>
#include <string.h>

#include "explain/cam.h"

#define EIGEN_MAX_ITERS 1000

/* First right singular vector of the (rows x k) matrix M into v (k); t: rows of scratch. */
static void top_singular_vector(const double *M, size_t rows, int k, double *v, double *t)
{
    double nv = 0.0;
    for (int q = 0; q < k; q++) {
        v[q] = 1.0 + 0.1 * (double)((q * 7919) % 13); /* deterministic, not orthogonal to much */
        nv += v[q] * v[q];
    }
    for (int q = 0; q < k; q++) v[q] /= sqrt(nv);
    for (int it = 0; it < EIGEN_MAX_ITERS; it++) {
        for (size_t p = 0; p < rows; p++) {
            double s = 0.0;
            for (int q = 0; q < k; q++) s += M[p * k + q] * v[q];
            t[p] = s;
        }
        double norm = 0.0, diff = 0.0;
        double *u = v + k; /* next iterate */
        for (int q = 0; q < k; q++) {
            double s = 0.0;
            for (size_t p = 0; p < rows; p++) s += M[p * k + q] * t[p];
            u[q] = s;
            norm += s * s;
        }
        if (norm == 0.0) return; /* all-constant layer: any vector, projection 0 */
        norm = sqrt(norm);
        for (int q = 0; q < k; q++) {
            u[q] /= norm;
            diff += fabs(u[q] - v[q]);
            v[q] = u[q];
        }
        if (diff < 1e-10 * k) break;
    }
}

typedef struct job {
    tfx__xctx *c;
    size_t li;
    int h, w, k, oh, ow;
    double *M, *v, *t; /* hw x k centred layer output, 2k iterates, hw projections */
    float *cam;
} job;

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    const int k = jb->k;
    const size_t hw = (size_t)jb->h * jb->w;
    const float *Ab = tfx__model_layer_output(jb->c->m, jb->li) + b * hw * (size_t)k;
    double *M = jb->M, *t = jb->t;
    for (int q = 0; q < k; q++) {
        double mean = 0.0;
        for (size_t p = 0; p < hw; p++) mean += Ab[p * k + q];
        mean /= (double)hw;
        for (size_t p = 0; p < hw; p++) M[p * k + q] = Ab[p * k + q] - mean;
    }
    top_singular_vector(M, hw, k, jb->v, t);
    double lo = 0.0, hi = 0.0;
    for (size_t p = 0; p < hw; p++) {
        double s2 = 0.0;
        for (int q = 0; q < k; q++) s2 += M[p * k + q] * jb->v[q];
        t[p] = s2;
        lo = p == 0 || s2 < lo ? s2 : lo;
        hi = p == 0 || s2 > hi ? s2 : hi;
    }
    double sign = fabs(lo) > fabs(hi) ? -1.0 : 1.0;
    for (size_t p = 0; p < hw; p++) jb->cam[p] = (float)(sign * t[p]);
    int flags = jb->c->o.upsample ? TFX__CAM_UPSAMPLE : 0;
    return tfx__cam_store(jb->c, flags, jb->cam, jb->h, jb->w,
                          jb->c->a->data + ch->image[b] * (size_t)jb->oh * jb->ow);
}

int tfx__explain_eigen_cam(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__cam_layer(c, "Eigen-CAM", TFX__TARGET_LOGIT, &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c;
    const int oh = c->o.upsample ? c->in.h : h, ow = c->o.upsample ? c->in.w : w;
    rc = tfx__explain_alloc_maps(c, oh, ow, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, per = hw * (size_t)k;
    job jb = {c, li, h, w, k, oh, ow, tfx__malloc(per * sizeof(double)), tfx__malloc(2 * (size_t)k * sizeof(double)),
              tfx__malloc(hw * sizeof(double)), tfx__malloc(hw * sizeof(float))};
    if (!jb.M || !jb.v || !jb.t || !jb.cam) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Eigen-CAM");
    } else {
        tfx__rows d = {.pass = TFX__PASS_FORWARD, .u = &jb, .row = row}; /* class-agnostic: no classes */
        rc = tfx__explain_rows(c, &d);
    }
    tfx__free(jb.M);
    tfx__free(jb.v);
    tfx__free(jb.t);
    tfx__free(jb.cam);
    return rc;
}
