/* Eigen-CAM (Bany Muhammad & Yeasin, IJCNN 2020): the layer output of each image as an
 * (hw x k) matrix, columns centred, projected on its first right singular vector (found by
 * power iteration on A^T A, in double, without forming it). The singular vector's sign is
 * arbitrary; it is fixed so that the projection's largest magnitude is positive (SegEigenCAM's
 * rule), then ReLU and optional upsampling as every CAM. Class-agnostic: no gradient. */
#include <math.h>
#include <string.h>

#include "explain/roadmap.h"

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

int tfx__explain_eigen_cam(tfx__xctx *c)
{
    size_t li;
    int rc = tfx__cam_layer(c, "Eigen-CAM", &li);
    if (rc) return rc;
    const tfx_layer *l = c->m->layers[li];
    const int h = l->out.h, w = l->out.w, k = l->out.c;
    const int oh = c->o.upsample ? c->in.h : h, ow = c->o.upsample ? c->in.w : w;
    rc = tfx__explain_alloc_maps(c, oh, ow, 1);
    if (rc) return rc;
    const size_t hw = (size_t)h * w, per = hw * (size_t)k;
    double *M = tfx__malloc(per * sizeof(double));
    double *v = tfx__malloc(2 * (size_t)k * sizeof(double));
    double *t = tfx__malloc(hw * sizeof(double));
    float *cam = tfx__malloc(hw * sizeof(float));
    if (!M || !v || !t || !cam) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for Eigen-CAM");
        goto out;
    }
    for (size_t s = 0; s < c->n && !rc; s += c->batch) {
        size_t nb = c->n - s < c->batch ? c->n - s : c->batch;
        rc = tfx__model_forward(c->m, c->x + s * c->in_sz, nb, 0);
        if (rc) {
            rc = tfx__error_prefix("tfx_explain");
            break;
        }
        const float *A = tfx__model_layer_output(c->m, li);
        for (size_t b = 0; b < nb && !rc; b++) {
            const float *Ab = A + b * per;
            for (int q = 0; q < k; q++) {
                double mean = 0.0;
                for (size_t p = 0; p < hw; p++) mean += Ab[p * k + q];
                mean /= (double)hw;
                for (size_t p = 0; p < hw; p++) M[p * k + q] = Ab[p * k + q] - mean;
            }
            top_singular_vector(M, hw, k, v, t);
            double lo = 0.0, hi = 0.0;
            for (size_t p = 0; p < hw; p++) {
                double s2 = 0.0;
                for (int q = 0; q < k; q++) s2 += M[p * k + q] * v[q];
                t[p] = s2;
                lo = p == 0 || s2 < lo ? s2 : lo;
                hi = p == 0 || s2 > hi ? s2 : hi;
            }
            double sign = fabs(lo) > fabs(hi) ? -1.0 : 1.0;
            for (size_t p = 0; p < hw; p++) cam[p] = (float)(sign * t[p]);
            rc = tfx__cam_store(c, cam, h, w, c->a->data + (s + b) * (size_t)oh * ow);
        }
    }
out:
    tfx__free(M);
    tfx__free(v);
    tfx__free(t);
    tfx__free(cam);
    return rc;
}
