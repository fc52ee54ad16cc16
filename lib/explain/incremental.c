/* Incremental forward for copies of one image that differ from it only inside a small box
 * (occlusion). Through the model's leading local layers (Conv2D, pooling, Activation, Dropout,
 * BatchNormalization at inference) a copy's activations differ from the clean image's only
 * inside a box that grows by each layer's receptive field, so only that box is recomputed: the clean activations around it are
 * reused. After the last local layer worth it (box at most half the map) the boxes are pasted
 * into full copies of the clean activation and the rest of the model runs as usual.
 * Same arithmetic per output value as the full forward (im2col + sgemm, same epilogue), so
 * results agree with it up to GEMM blocking order. */
#include <float.h>
#include <string.h>

#include "explain/explain_internal.h"

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static int is_local(const tfx_layer *l)
{
    switch (l->ops->kind) {
    case TFX_LAYER_CONV2D:
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D:
    case TFX_LAYER_DROPOUT: /* identity at inference */
        return !l->in.flat;
    case TFX_LAYER_ACTIVATION: /* per pixel (softmax runs over the channels of one pixel) */
    case TFX_LAYER_BATCH_NORMALIZATION: /* per channel at inference */
        return !l->in.flat;
    default:
        return 0;
    }
}

static int is_window_layer(const tfx_layer *l)
{
    int k = l->ops->kind;
    return k == TFX_LAYER_CONV2D || k == TFX_LAYER_MAX_POOLING2D || k == TFX_LAYER_AVERAGE_POOLING2D;
}

void tfx__incr_free(tfx__incr *p)
{
    if (p->clean)
        for (size_t l = 1; l <= p->depth; l++) tfx__free(p->clean[l]);
    if (p->box)
        for (size_t l = 0; l < p->depth; l++) tfx__free(p->box[l]);
    tfx__free(p->clean);
    tfx__free(p->box);
    tfx__free(p->bh);
    tfx__free(p->oy);
    tfx__free(p->gather);
    tfx__free(p->col);
    tfx__free(p->dense_clean);
    tfx__free(p->dense_pre);
    tfx__free(p->delta);
    tfx__free(p->dense_t);
    tfx__free(p->order);
    memset(p, 0, sizeof(*p));
}

int tfx__incr_init(tfx__incr *p, tfx_model *m, int box_h, int box_w, size_t rows)
{
    memset(p, 0, sizeof(*p));
    p->m = m;
    p->rows = rows;
    const size_t L = m->n_layers;
    p->bh = tfx__calloc(2 * (L + 1), sizeof(int));
    if (!p->bh) return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for the occlusion plan");
    p->bw = p->bh + L + 1;
    p->bh[0] = box_h < m->input.h ? box_h : m->input.h;
    p->bw[0] = box_w < m->input.w ? box_w : m->input.w;
    /* Box sizes layer by layer; stop where the box covers more than half the map (recomputing
     * it would cost about as much as the full layer). */
    size_t depth = 0;
    double full = 0.0, part = 0.0;
    for (size_t i = 0; i < L; i++) {
        const tfx_layer *l = m->layers[i];
        if (!is_local(l)) break;
        int bh = p->bh[i], bw = p->bw[i];
        if (is_window_layer(l)) {
            bh = (bh + l->cfg.kernel_h - 2) / l->cfg.stride_h + 1;
            bw = (bw + l->cfg.kernel_w - 2) / l->cfg.stride_w + 1;
            bh = bh < l->out.h ? bh : l->out.h;
            bw = bw < l->out.w ? bw : l->out.w;
        }
        if (2.0 * bh * bw > (double)l->out.h * l->out.w) break;
        p->bh[i + 1] = bh;
        p->bw[i + 1] = bw;
        if (l->ops->kind == TFX_LAYER_CONV2D) {
            double per = (double)l->cfg.kernel_h * l->cfg.kernel_w * l->in.c * l->cfg.filters;
            full += per * l->out.h * l->out.w;
            part += per * bh * bw;
        }
        depth = i + 1;
    }
    /* The layer after the prefix reads a model-owned buffer: the prefix's last layer must own
     * its output (every local kind does) and be worth it. */
    if (depth == 0 || part > 0.5 * full) {
        p->depth = 0;
        return TFX_OK;
    }
    p->depth = depth;
    /* A Dense layer reading the flattened boxes (Flatten and inference-time Dropout between):
     * its pre-activation is the clean one plus the boxes' change times their kernel rows. */
    size_t j = depth;
    while (j < L && (m->layers[j]->ops->kind == TFX_LAYER_FLATTEN || m->layers[j]->ops->kind == TFX_LAYER_DROPOUT))
        j++;
    if (j > depth && j < L && m->layers[j]->ops->kind == TFX_LAYER_DENSE &&
        m->layers[j]->in.flat && (size_t)m->layers[j]->in.c == tfx__shape_size(m->layers[depth - 1]->out)) {
        p->dense = j;
        /* map row = out.w * out.c floats, within a shape's size (no overflow) */
        p->dense_clean = tfx__alloc_floats((size_t)m->layers[j]->out.c, 1);
        p->dense_pre = tfx__alloc_floats(rows, (size_t)m->layers[j]->out.c);
        p->delta = tfx__alloc_floats(rows, (size_t)m->layers[depth - 1]->out.w * (size_t)m->layers[depth - 1]->out.c);
        p->dense_t = tfx__alloc_floats(rows, (size_t)m->layers[j]->out.c);
        p->order = tfx__malloc(rows * sizeof(size_t));
        if (!p->dense_clean || !p->dense_pre || !p->delta || !p->dense_t || !p->order) goto nomem;
    }
    p->clean = tfx__calloc(depth + 1, sizeof(float *));
    p->box = tfx__calloc(depth, sizeof(float *));
    p->oy = tfx__calloc(2 * (depth + 1) * rows, sizeof(int));
    if (!p->clean || !p->box || !p->oy) goto nomem;
    p->ox = p->oy + (depth + 1) * rows;
    size_t gather = 1, col = 1;
    for (size_t i = 0; i < depth; i++) {
        const tfx_layer *l = m->layers[i];
        p->clean[i + 1] = tfx__alloc_floats(tfx__shape_size(l->out), 1);
        /* a box is at most the layer's output: its size does not overflow */
        p->box[i] = tfx__alloc_floats(rows, (size_t)p->bh[i + 1] * p->bw[i + 1] * (size_t)l->out.c);
        if (!p->clean[i + 1] || !p->box[i]) goto nomem;
        if (l->ops->kind == TFX_LAYER_CONV2D) {
            size_t nh = (size_t)(p->bh[i + 1] - 1) * l->cfg.stride_h + l->cfg.kernel_h;
            size_t nw = (size_t)(p->bw[i + 1] - 1) * l->cfg.stride_w + l->cfg.kernel_w;
            size_t g = rows * nh * nw * (size_t)l->in.c;
            size_t c = rows * (size_t)p->bh[i + 1] * p->bw[i + 1] * l->cfg.kernel_h * l->cfg.kernel_w * l->in.c;
            gather = g > gather ? g : gather;
            col = c > col ? c : col;
        }
    }
    p->gather = tfx__alloc_floats(gather, 1);
    p->col = tfx__alloc_floats(col, 1);
    if (!p->gather || !p->col) goto nomem;
    return TFX_OK;
nomem:
    tfx__incr_free(p);
    return tfx__error(TFX_ENOMEM, "tfx_explain: out of memory for the incremental occlusion buffers");
}

int tfx__incr_set_image(tfx__incr *p, const float *x)
{
    tfx_model *m = p->m;
    int rc = tfx__model_forward(m, x, 1, 0);
    if (rc) return rc;
    p->clean[0] = (float *)x; /* read only */
    for (size_t i = 0; i < p->depth; i++)
        memcpy(p->clean[i + 1], tfx__model_layer_output(m, i), tfx__shape_size(m->layers[i]->out) * sizeof(float));
    if (p->dense)
        memcpy(p->dense_clean, tfx__model_layer_preactivation(m, p->dense),
               (size_t)m->layers[p->dense]->out.c * sizeof(float));
    return TFX_OK;
}

/* The C values at (ih, iw) of layer i's input for row b: the row's box where it covers the
 * cell, else the clean image's. Layer 0 reads the full copy itself. */
static const float *cell(const tfx__incr *p, size_t i, const float *rows, size_t b, int ih, int iw)
{
    const tfx_layer *l = p->m->layers[i];
    if (i == 0) return rows + b * tfx__shape_size(l->in) + ((size_t)ih * l->in.w + iw) * l->in.c;
    int y = p->oy[i * p->rows + b], x = p->ox[i * p->rows + b];
    if (ih >= y && ih < y + p->bh[i] && iw >= x && iw < x + p->bw[i])
        return p->box[i - 1] + ((b * p->bh[i] + (size_t)(ih - y)) * p->bw[i] + (size_t)(iw - x)) * l->in.c;
    return p->clean[i] + ((size_t)ih * l->in.w + iw) * l->in.c;
}

/* Output box of layer i for row b from its input box: the cells whose window meets it,
 * shifted inside the map (the box size is fixed per layer). */
static void place_box(tfx__incr *p, size_t i, size_t b)
{
    const tfx_layer *l = p->m->layers[i];
    size_t R = p->rows;
    int y = p->oy[i * R + b], x = p->ox[i * R + b];
    if (is_window_layer(l)) {
        y = floor_div(y + l->cfg.pad_top - l->cfg.kernel_h + 1 + l->cfg.stride_h - 1, l->cfg.stride_h);
        x = floor_div(x + l->cfg.pad_left - l->cfg.kernel_w + 1 + l->cfg.stride_w - 1, l->cfg.stride_w);
    }
    p->oy[(i + 1) * R + b] = clampi(y, 0, l->out.h - p->bh[i + 1]);
    p->ox[(i + 1) * R + b] = clampi(x, 0, l->out.w - p->bw[i + 1]);
}

static void conv_box(tfx__incr *p, size_t i, const float *rows, size_t nb)
{
    tfx_layer *l = p->m->layers[i];
    const int C = l->in.c, bh = p->bh[i + 1], bw = p->bw[i + 1];
    const int nh = (bh - 1) * l->cfg.stride_h + l->cfg.kernel_h, nw = (bw - 1) * l->cfg.stride_w + l->cfg.kernel_w;
    const size_t R = p->rows;
    for (size_t b = 0; b < nb; b++) { /* the input window each output box reads, zero padded */
        int y0 = p->oy[(i + 1) * R + b] * l->cfg.stride_h - l->cfg.pad_top;
        int x0 = p->ox[(i + 1) * R + b] * l->cfg.stride_w - l->cfg.pad_left;
        float *g = p->gather + b * (size_t)nh * nw * C;
        for (int r = 0; r < nh; r++)
            for (int q = 0; q < nw; q++) {
                int ih = y0 + r, iw = x0 + q;
                float *dst = g + ((size_t)r * nw + q) * C;
                if (ih < 0 || ih >= l->in.h || iw < 0 || iw >= l->in.w)
                    memset(dst, 0, (size_t)C * sizeof(float));
                else
                    memcpy(dst, cell(p, i, rows, b, ih, iw), (size_t)C * sizeof(float));
            }
    }
    tfx__conv_geom g = {nh, nw, C, bh, bw, l->cfg.kernel_h, l->cfg.kernel_w, l->cfg.stride_h, l->cfg.stride_w, 0, 0};
    const size_t K = (size_t)l->cfg.kernel_h * l->cfg.kernel_w * C, F = (size_t)l->cfg.filters;
    const size_t M = nb * (size_t)bh * bw;
    const float *w = tfx__layer_params(l), *bias = l->cfg.use_bias ? w + K * F : NULL;
    tfx__im2col(&g, nb, p->gather, p->col);
    tfx__sgemm(0, 0, M, F, K, 1.0f, p->col, K, w, F, 0.0f, p->box[i], F);
    tfx__bias_activation_forward(l->cfg.activation, l->cfg.alpha, bias, p->box[i], p->box[i], M, F);
}

/* Pooling exactly as lib/layers/pool2d.c does it: its window rule, the same order and scaling. */
static void pool_box(tfx__incr *p, size_t i, const float *rows, size_t nb)
{
    const tfx_layer *l = p->m->layers[i];
    const int C = l->in.c, bh = p->bh[i + 1], bw = p->bw[i + 1];
    const int is_max = l->ops->kind == TFX_LAYER_MAX_POOLING2D;
    const size_t R = p->rows;
    for (size_t b = 0; b < nb; b++)
        for (int r = 0; r < bh; r++)
            for (int q = 0; q < bw; q++) {
                int oh = p->oy[(i + 1) * R + b] + r, ow = p->ox[(i + 1) * R + b] + q;
                int h0, h1, w0, w1;
                tfx__pool_window(l, oh, ow, &h0, &h1, &w0, &w1);
                float *y = p->box[i] + ((b * bh + (size_t)r) * bw + q) * C;
                for (int c = 0; c < C; c++) y[c] = is_max ? -FLT_MAX : 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float *xc = cell(p, i, rows, b, ih, iw);
                        if (is_max) {
                            for (int c = 0; c < C; c++)
                                if (xc[c] > y[c]) y[c] = xc[c];
                        } else {
                            for (int c = 0; c < C; c++) y[c] += xc[c];
                        }
                    }
                if (!is_max) {
                    float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
                    for (int c = 0; c < C; c++) y[c] *= inv;
                }
            }
}

/* Activation / Dropout / BatchNormalization: the output box is the input box. */
static void pointwise_box(tfx__incr *p, size_t i, const float *rows, size_t nb)
{
    const tfx_layer *l = p->m->layers[i];
    const int C = l->in.c, bh = p->bh[i + 1], bw = p->bw[i + 1];
    const size_t R = p->rows;
    for (size_t b = 0; b < nb; b++)
        for (int r = 0; r < bh; r++)
            for (int q = 0; q < bw; q++)
                memcpy(p->box[i] + ((b * bh + (size_t)r) * bw + q) * C,
                       cell(p, i, rows, b, p->oy[(i + 1) * R + b] + r, p->ox[(i + 1) * R + b] + q),
                       (size_t)C * sizeof(float));
    if (l->ops->kind == TFX_LAYER_ACTIVATION)
        tfx__activation_forward(l->cfg.activation, l->cfg.alpha, p->box[i], p->box[i], nb * (size_t)bh * bw,
                                (size_t)C);
    else if (l->ops->kind == TFX_LAYER_BATCH_NORMALIZATION)
        tfx__batch_norm_infer(l, p->box[i], p->box[i], nb * (size_t)bh * bw);
}

/* z = z_clean + sum over the box cells of (box - clean) x kernel rows. One GEMM per map row h:
 * the rows whose box covers h, their change placed in a zeroed map row (the kernel columns of a
 * map row are a contiguous slice of every unit's row, the kernel being stored [units][inputs]),
 * so each weight is read once for the whole chunk. Then the Dense's activation and the rest of
 * the model. */
static int dense_merge(tfx__incr *p, size_t nb)
{
    tfx_model *m = p->m;
    const size_t d = p->depth, R = p->rows;
    tfx_layer *dl = m->layers[p->dense];
    const tfx_layer *last = m->layers[d - 1];
    const size_t U = (size_t)dl->out.c, C = (size_t)last->out.c, Wd = (size_t)last->out.w;
    const size_t rowlen = Wd * C;
    const int bh = p->bh[d], bw = p->bw[d];
    const size_t seg = (size_t)bw * C;
    const float *w = tfx__layer_params(dl);
    for (size_t b = 0; b < nb; b++) memcpy(p->dense_pre + b * U, p->dense_clean, U * sizeof(float));
    for (int h = 0; h < last->out.h; h++) {
        size_t M = 0;
        for (size_t b = 0; b < nb; b++) {
            int y = p->oy[d * R + b], x = p->ox[d * R + b];
            if (h < y || h >= y + bh) continue;
            float *a = p->delta + M * rowlen;
            const float *bx = p->box[d - 1] + (b * bh + (size_t)(h - y)) * seg;
            const float *cl = p->clean[d] + (size_t)h * rowlen + (size_t)x * C;
            memset(a, 0, rowlen * sizeof(float));
            for (size_t k = 0; k < seg; k++) a[(size_t)x * C + k] = bx[k] - cl[k];
            p->order[M++] = b;
        }
        if (!M) continue;
        tfx__sgemm(0, 1, M, U, rowlen, 1.0f, p->delta, rowlen, w + (size_t)h * rowlen, (size_t)dl->in.c, 0.0f,
                   p->dense_t, U);
        for (size_t t = 0; t < M; t++) {
            float *z = p->dense_pre + p->order[t] * U;
            const float *dz = p->dense_t + t * U;
            for (size_t u = 0; u < U; u++) z[u] += dz[u];
        }
    }
    tfx__activation_forward(dl->cfg.activation, dl->cfg.alpha, p->dense_pre, tfx__model_output_buffer(m, p->dense), nb, U);
    return tfx__model_forward_from(m, p->dense + 1, nb, 0);
}

int tfx__incr_forward(tfx__incr *p, const float *rows, size_t nb, const int *y0, const int *x0)
{
    tfx_model *m = p->m;
    const size_t R = p->rows;
    if (nb == 0 || nb > R || p->depth == 0)
        return tfx__error(TFX_EINVAL, "tfx_explain: incremental forward of %zu rows (plan for %zu)", nb, R);
    int rc = tfx__model_reserve(m, nb);
    if (rc) return rc;
    for (size_t b = 0; b < nb; b++) { /* the changed cells lie inside this box of the input */
        p->oy[b] = clampi(y0[b], 0, m->input.h - p->bh[0]);
        p->ox[b] = clampi(x0[b], 0, m->input.w - p->bw[0]);
    }
    for (size_t i = 0; i < p->depth; i++) {
        for (size_t b = 0; b < nb; b++) place_box(p, i, b);
        int k = m->layers[i]->ops->kind;
        if (k == TFX_LAYER_CONV2D)
            conv_box(p, i, rows, nb);
        else if (k == TFX_LAYER_MAX_POOLING2D || k == TFX_LAYER_AVERAGE_POOLING2D)
            pool_box(p, i, rows, nb);
        else
            pointwise_box(p, i, rows, nb);
    }
    if (p->dense) return dense_merge(p, nb);
    /* Paste each box into a full copy of the clean activation: the input of layer depth. */
    const size_t d = p->depth;
    const tfx_layer *last = m->layers[d - 1];
    const size_t sz = tfx__shape_size(last->out), C = (size_t)last->out.c;
    const int bh = p->bh[d], bw = p->bw[d];
    float *dst = tfx__model_output_buffer(m, d - 1);
    for (size_t b = 0; b < nb; b++) {
        float *row = dst + b * sz;
        memcpy(row, p->clean[d], sz * sizeof(float));
        int y = p->oy[d * R + b], x = p->ox[d * R + b];
        for (int r = 0; r < bh; r++)
            memcpy(row + ((size_t)(y + r) * last->out.w + x) * C, p->box[d - 1] + (b * bh + (size_t)r) * bw * C,
                   (size_t)bw * C * sizeof(float));
    }
    return tfx__model_forward_from(m, d, nb, 0);
}
