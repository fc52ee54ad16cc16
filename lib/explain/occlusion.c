/* Occlusion sensitivity (Zeiler & Fergus): the drop of the class probability when a square
 * patch is replaced, p(x) - p(x occluded), averaged over the windows covering each pixel.
 * Windows start at 0, stride, 2*stride, ... and the last one on each axis reaches the border
 * (clipped), so every pixel is covered. Occluded copies go through the model in chunks. */
#include <math.h>
#include <string.h>

#include "explain/explain_internal.h"
#include "render/render.h"

/* Windows per axis: the first start whose window reaches the end is the last. */
static size_t window_count(int size, int patch, int stride)
{
    return (size_t)((size - patch + stride - 1) / stride) + 1;
}

int tfx__explain_occlusion(tfx__xctx *c)
{
    int compat = c->o.compat == TFX_COMPAT_TF_EXPLAIN;
    const int H = c->in.h, W = c->in.w, C = c->in.c, P = c->o.patch_size;
    TFX__CHECK_ARG(P > 0, "tfx_explain: occlusion patch_size = %d must be > 0", P);
    TFX__CHECK_ARG(P <= H && P <= W, "tfx_explain: occlusion patch_size = %d is larger than the %dx%d image", P, H, W);
    /* tf-explain: non-overlapping patches (stride = patch size), 127.5 grey. */
    int st = compat ? P : (c->o.stride ? c->o.stride : P);
    TFX__CHECK_ARG(st > 0 && st <= P, "tfx_explain: occlusion stride = %d must be in 1..patch_size (%d)", st, P);
    int fill = compat ? TFX_PATCH_VALUE : c->o.patch_fill;
    float fill_value = compat ? 127.5f : c->o.patch_value;
    TFX__CHECK_ARG(fill >= TFX_PATCH_ZERO && fill <= TFX_PATCH_VALUE, "tfx_explain: unknown patch_fill %d", fill);
    TFX__CHECK_ARG(isfinite(fill_value), "tfx_explain: patch_value is not finite");

    int rc = tfx__explain_set_target(c, TFX__TARGET_OUTPUT);
    if (!rc) rc = tfx__explain_resolve_classes(c);
    if (!rc) rc = tfx__explain_alloc_maps(c, H, W, 1);
    if (rc) return rc;

    const size_t D = c->in_sz, B = c->batch, HW = (size_t)H * W;
    const size_t ny = window_count(H, P, st), nx = window_count(W, P, st), nwin = ny * nx;
    size_t rows_total, buf_sz;
    if (tfx__mul_size(c->n, nwin, &rows_total) || tfx__mul_size(B, D, &buf_sz) ||
        tfx__mul_size(buf_sz, sizeof(float), &buf_sz))
        return tfx__error(TFX_EINVAL, "tfx_explain: occlusion work size overflows");
    float *buf = tfx__malloc(buf_sz);
    int *cls = tfx__malloc(B * sizeof(int));
    int *wy = tfx__malloc(2 * B * sizeof(int)), *wx = wy ? wy + B : NULL;
    tfx__incr incr = {0};
    double *acc = tfx__calloc(HW, sizeof(double));
    if (compat) { /* rows_total = n * nwin cells, checked above */
        c->a->cells = tfx__malloc(rows_total * sizeof(double));
        c->a->cells_h = (int)ny;
        c->a->cells_w = (int)nx;
    }
    int *cover = tfx__calloc(HW, sizeof(int));
    float *patchv = tfx__malloc((size_t)C * sizeof(float));
    double *clean = tfx__malloc(c->n * sizeof(double));
    double *cells64 = compat ? tfx__malloc(HW * sizeof(double)) : NULL;
    if (!buf || !cls || !wy || !acc || !cover || !patchv || !clean || (compat && (!c->a->cells || !cells64))) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for occlusion");
        goto out;
    }
    /* Windows of one image through the incremental forward when the model allows it; the
     * rows of a chunk then belong to one image (chunks restart at each image). */
    rc = tfx__incr_init(&incr, c->m, P, P, B < nwin ? B : nwin);
    if (rc) goto out;
    if (!compat && !incr.depth) { /* p(x) of each clean image */
        for (size_t s = 0; s < c->n; s += B) {
            size_t nb = c->n - s < B ? c->n - s : B;
            rc = tfx__model_forward(c->m, c->x + s * D, nb, 0);
            if (rc) {
                rc = tfx__error_prefix("tfx_explain");
                goto out;
            }
            tfx__explain_scores(c, nb, c->classes + s, clean + s);
        }
    }
    for (size_t r0 = 0; r0 < rows_total;) {
        size_t nb = rows_total - r0 < B ? rows_total - r0 : B;
        if (incr.depth) {
            size_t i = r0 / nwin, wi = r0 % nwin;
            nb = nwin - wi < nb ? nwin - wi : nb;
            if (wi == 0) {
                rc = tfx__incr_set_image(&incr, c->x + i * D);
                if (rc) {
                    rc = tfx__error_prefix("tfx_explain");
                    goto out;
                }
                if (!compat) tfx__explain_scores(c, 1, c->classes + i, clean + i);
            }
        }
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / nwin, wi = r % nwin;
            const float *xi = c->x + i * D;
            if (wi == 0) { /* a new image: its patch contents */
                for (int ch = 0; ch < C; ch++) {
                    if (fill == TFX_PATCH_MEAN) {
                        double s = 0.0;
                        for (size_t p = 0; p < HW; p++) s += xi[p * C + ch];
                        patchv[ch] = (float)(s / (double)HW);
                    } else {
                        patchv[ch] = fill == TFX_PATCH_VALUE ? fill_value : 0.0f;
                    }
                }
            }
            int y0 = (int)(wi / nx) * st, x0 = (int)(wi % nx) * st;
            int y1 = y0 + P < H ? y0 + P : H, x1 = x0 + P < W ? x0 + P : W;
            float *row = buf + b * D;
            memcpy(row, xi, D * sizeof(float));
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    for (int ch = 0; ch < C; ch++) row[((size_t)y * W + x) * C + ch] = patchv[ch];
            cls[b] = c->classes[i];
            wy[b] = y0;
            wx[b] = x0;
        }
        rc = incr.depth ? tfx__incr_forward(&incr, buf, nb, wy, wx) : tfx__model_forward(c->m, buf, nb, 0);
        if (rc) {
            rc = tfx__error_prefix("tfx_explain");
            goto out;
        }
        for (size_t b = 0; b < nb; b++) {
            size_t r = r0 + b, i = r / nwin, wi = r % nwin;
            double p = tfx__explain_output(c, b)[cls[b]];
            if (compat) {
                /* tf-explain: 1 - p in float32 (numpy scalar arithmetic) stored in a float64 map */
                c->a->cells[i * nwin + wi] = (double)(1.0f - (float)p);
            } else {
                int y0 = (int)(wi / nx) * st, x0 = (int)(wi % nx) * st;
                int y1 = y0 + P < H ? y0 + P : H, x1 = x0 + P < W ? x0 + P : W;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        acc[(size_t)y * W + x] += clean[i] - p;
                        cover[(size_t)y * W + x]++;
                    }
            }
            if (wi == nwin - 1) { /* last window of image i */
                float *dst = c->a->data + i * HW;
                if (compat) {
                    /* Cells (square-image semantics for every shape), resized as cv2.resize does
                     * on tf-explain's float64 map. */
                    rc = tfx__resize_f64(c->a->cells + i * nwin, (int)ny, (int)nx, 1, cells64, H, W);
                    if (rc) goto out;
                    for (size_t k = 0; k < HW; k++) dst[k] = (float)cells64[k];
                } else {
                    for (size_t k = 0; k < HW; k++) dst[k] = (float)(acc[k] / cover[k]);
                    memset(acc, 0, HW * sizeof(double));
                    memset(cover, 0, HW * sizeof(int));
                }
            }
        }
        r0 += nb;
    }
out:
    tfx__incr_free(&incr);
    tfx__free(wy);
    tfx__free(buf);
    tfx__free(cls);
    tfx__free(acc);
    tfx__free(cover);
    tfx__free(patchv);
    tfx__free(clean);
    tfx__free(cells64);
    return rc;
}
