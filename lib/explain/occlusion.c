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

typedef struct job {
    tfx__xctx *c;
    int compat, H, W, C, P, st, fill;
    float fill_value;
    size_t nx, nwin;
    tfx__incr incr;
    int *wy, *wx;     /* batch window origins for the incremental forward */
    float *patchv;    /* C: the current image's patch contents */
    double *clean;    /* n: p(x) per image (default mode) */
    double *acc;      /* HW: sum of the drops covering each pixel */
    int *cover;       /* HW: windows covering each pixel */
    double *cells64;  /* HW: compat, the resized cell map */
} job;

static void window(const job *jb, size_t wi, int *y0, int *x0, int *y1, int *x1)
{
    *y0 = (int)(wi / jb->nx) * jb->st;
    *x0 = (int)(wi % jb->nx) * jb->st;
    *y1 = *y0 + jb->P < jb->H ? *y0 + jb->P : jb->H;
    *x1 = *x0 + jb->P < jb->W ? *x0 + jb->P : jb->W;
}

static int clean_score(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    jb->clean[ch->image[b]] = tfx__explain_score(jb->c, b, ch->cls[b]);
    return TFX_OK;
}

static int begin(void *u, size_t i)
{
    job *jb = u;
    const tfx__xctx *c = jb->c;
    const float *xi = c->x + i * c->in_sz;
    if (jb->incr.depth) { /* the clean activations of image i (one forward: p(x) comes with it) */
        int rc = tfx__incr_set_image(&jb->incr, xi);
        if (rc) return tfx__error_prefix("tfx_explain");
        if (!jb->compat) jb->clean[i] = tfx__explain_score(c, 0, c->classes[i]);
    }
    const size_t HW = (size_t)jb->H * jb->W;
    for (int ch = 0; ch < jb->C; ch++) {
        if (jb->fill == TFX_PATCH_MEAN) {
            double s = 0.0;
            for (size_t p = 0; p < HW; p++) s += xi[p * jb->C + ch];
            jb->patchv[ch] = (float)(s / (double)HW);
        } else {
            jb->patchv[ch] = jb->fill == TFX_PATCH_VALUE ? jb->fill_value : 0.0f;
        }
    }
    return TFX_OK;
}

static int make(void *u, size_t i, size_t wi, float *row)
{
    const job *jb = u;
    const int W = jb->W, C = jb->C;
    int y0, x0, y1, x1;
    window(jb, wi, &y0, &x0, &y1, &x1);
    memcpy(row, jb->c->x + i * jb->c->in_sz, jb->c->in_sz * sizeof(float));
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            for (int ch = 0; ch < C; ch++) row[((size_t)y * W + x) * C + ch] = jb->patchv[ch];
    return 1;
}

static int forward(void *u, const tfx__chunk *ch)
{
    job *jb = u;
    int rc;
    if (jb->incr.depth) {
        for (size_t b = 0; b < ch->nb; b++) {
            jb->wy[b] = (int)(ch->index[b] / jb->nx) * jb->st;
            jb->wx[b] = (int)(ch->index[b] % jb->nx) * jb->st;
        }
        rc = tfx__incr_forward(&jb->incr, ch->rows, ch->nb, jb->wy, jb->wx);
    } else {
        rc = tfx__model_forward(jb->c->m, ch->rows, ch->nb, 0);
    }
    return rc ? tfx__error_prefix("tfx_explain") : TFX_OK;
}

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    size_t i = ch->image[b], wi = ch->index[b];
    double p = tfx__explain_output(c, b)[ch->cls[b]];
    if (jb->compat) {
        /* tf-explain: 1 - p in float32 (numpy scalar arithmetic) stored in a float64 map */
        c->a->cells[i * jb->nwin + wi] = (double)(1.0f - (float)p);
        return TFX_OK;
    }
    int y0, x0, y1, x1;
    window(jb, wi, &y0, &x0, &y1, &x1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            jb->acc[(size_t)y * jb->W + x] += jb->clean[i] - p;
            jb->cover[(size_t)y * jb->W + x]++;
        }
    return TFX_OK;
}

static int end(void *u, size_t i)
{
    job *jb = u;
    tfx__xctx *c = jb->c;
    const size_t HW = (size_t)jb->H * jb->W;
    float *dst = c->a->data + i * HW;
    if (jb->compat) {
        /* Cells (square-image semantics for every shape), resized as cv2.resize does on
         * tf-explain's float64 map. */
        int rc = tfx__resize_f64(c->a->cells + i * jb->nwin, c->a->cells_h, c->a->cells_w, 1, jb->cells64, jb->H,
                                 jb->W);
        if (rc) return rc;
        for (size_t k = 0; k < HW; k++) dst[k] = (float)jb->cells64[k];
        return TFX_OK;
    }
    for (size_t k = 0; k < HW; k++) dst[k] = (float)(jb->acc[k] / jb->cover[k]);
    memset(jb->acc, 0, HW * sizeof(double));
    memset(jb->cover, 0, HW * sizeof(int));
    return TFX_OK;
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

    const size_t B = c->batch, HW = (size_t)H * W;
    const size_t ny = window_count(H, P, st), nx = window_count(W, P, st), nwin = ny * nx;
    size_t rows_total;
    if (tfx__mul_size(c->n, nwin, &rows_total))
        return tfx__error(TFX_EINVAL, "tfx_explain: occlusion work size overflows");
    job jb = {c, compat, H, W, C, P, st, fill, fill_value, nx, nwin, {0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    jb.wy = tfx__malloc(2 * B * sizeof(int));
    jb.wx = jb.wy ? jb.wy + B : NULL;
    jb.patchv = tfx__malloc((size_t)C * sizeof(float));
    jb.clean = tfx__malloc(c->n * sizeof(double));
    jb.acc = tfx__calloc(HW, sizeof(double));
    jb.cover = tfx__calloc(HW, sizeof(int));
    if (compat) { /* rows_total = n * nwin cells, checked above */
        c->a->cells = tfx__malloc(rows_total * sizeof(double));
        c->a->cells_h = (int)ny;
        c->a->cells_w = (int)nx;
        jb.cells64 = tfx__malloc(HW * sizeof(double));
    }
    if (!jb.wy || !jb.patchv || !jb.clean || !jb.acc || !jb.cover || (compat && (!c->a->cells || !jb.cells64))) {
        rc = tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for occlusion");
        goto out;
    }
    /* Windows of one image through the incremental forward when the model allows it; the rows
     * of a chunk then belong to one image. */
    rc = tfx__incr_init(&jb.incr, c->m, P, P, B < nwin ? B : nwin);
    if (rc) goto out;
    if (!compat && !jb.incr.depth) { /* p(x) of each clean image */
        tfx__rows d = {.pass = TFX__PASS_FORWARD, .u = &jb, .row = clean_score};
        rc = tfx__explain_rows(c, &d);
        if (rc) goto out;
    }
    tfx__rows d = {.per_image = nwin, .pass = TFX__PASS_FORWARD, .image_chunks = jb.incr.depth != 0, .u = &jb,
                   .begin = begin, .make = make, .forward = forward, .row = row, .end = end};
    rc = tfx__explain_rows(c, &d);
out:
    tfx__incr_free(&jb.incr);
    tfx__free(jb.wy);
    tfx__free(jb.patchv);
    tfx__free(jb.clean);
    tfx__free(jb.acc);
    tfx__free(jb.cover);
    tfx__free(jb.cells64);
    return rc;
}
