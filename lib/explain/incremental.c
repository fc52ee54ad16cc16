/* Incremental forward for copies of one image that differ from it only inside a small box
 * (occlusion). Through the model's leading local layers (those with a box_forward entry in
 * their vtable: Conv2D, pooling, Activation, Dropout, BatchNormalization at inference) a
 * copy's activations differ from the clean image's only inside a box that grows by each
 * layer's receptive field, so only that box is recomputed: the clean activations around it are
 * reused. After the last local layer worth it (box at most half the map) the boxes are pasted
 * into full copies of the clean activation and the rest of the model runs as usual.
 * Same arithmetic per output value as the full forward (im2col + sgemm, same epilogue), so
 * results agree with it up to GEMM blocking order. */
#include <string.h>

#include "explain/explain_internal.h"

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The layer computes boxes (tfx__layer_ops.box_forward) on an image input, and reads the layer
 * before it (the prefix is a chain). */
static int is_local(const tfx_layer *l)
{
    return l->ops->box_forward && !l->in.flat && l->n_inputs == 1 && l->inputs[0] == l->index;
}

/* Layer i reads the previous layer only. */
static int chained(const tfx_layer *l) { return l->n_inputs == 1 && l->inputs[0] == l->index; }

static int is_window_layer(const tfx_layer *l) { return (l->ops->traits & TFX__TRAIT_WINDOW) != 0; }

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
    double full = 0.0, part = 0.0, full_at = 0.0, part_at = 0.0; /* _at: up to depth */
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
        if (l->ops->box_cost) {
            double per = l->ops->box_cost(l);
            full += per * l->out.h * l->out.w;
            part += per * bh * bw;
        }
        /* the rest of the model must need nothing below this layer's output (graphs: a shortcut
         * reading an earlier tensor ends the prefix before it) */
        if (tfx__model_is_cut(m, i + 1)) {
            depth = i + 1;
            full_at = full;
            part_at = part;
        }
    }
    /* The layer after the prefix reads a model-owned buffer: the prefix's last layer must own
     * its output (every local kind does) and be worth it. */
    if (depth == 0 || part_at > 0.5 * full_at) {
        p->depth = 0;
        return TFX_OK;
    }
    p->depth = depth;
    /* A Dense layer reading the flattened boxes (Flatten and inference-time Dropout between):
     * its pre-activation is the clean one plus the boxes' change times their kernel rows. */
    size_t j = depth;
    while (j < L && (m->layers[j]->ops->traits & TFX__TRAIT_INFERENCE_IDENTITY) && chained(m->layers[j])) j++;
    if (j > depth && j < L && (m->layers[j]->ops->traits & TFX__TRAIT_FULLY_CONNECTED) && chained(m->layers[j]) &&
        tfx__model_is_cut(m, j + 1) &&
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
        if (l->ops->box_scratch) {
            size_t g, c;
            l->ops->box_scratch(l, rows, p->bh[i + 1], p->bw[i + 1], &g, &c);
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
    tfx__activation_forward(dl->cfg.activation, dl->cfg.alpha, dl->cfg.beta, p->dense_pre, tfx__model_output_buffer(m, p->dense), nb, U);
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
        const tfx_layer *l = m->layers[i];
        /* layer i reads the rows themselves (i = 0) or layer i - 1's boxes over its clean output */
        const tfx__box_io io = {.nb = nb, .full = i ? NULL : rows, .in_box = i ? p->box[i - 1] : NULL,
                                .clean = p->clean[i], .in_bh = p->bh[i], .in_bw = p->bw[i],
                                .in_oy = p->oy + i * R, .in_ox = p->ox + i * R, .bh = p->bh[i + 1],
                                .bw = p->bw[i + 1], .oy = p->oy + (i + 1) * R, .ox = p->ox + (i + 1) * R,
                                .out = p->box[i], .gather = p->gather, .col = p->col};
        l->ops->box_forward(l, &io);
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
