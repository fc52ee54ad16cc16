/* Conv2D and the running half of DepthwiseConv2D (a grouped Conv2D, layers/conv2d.h).
 * Grouped layers (groups > 1) run the direct grouped kernel (core/conv_grouped.c).
 * Otherwise: im2col + sgemm with the batch merged into the GEMM's rows (n*oh*ow), in blocks of
 * whole images so the col buffer stays small and cache-resident (a few thousand rows per
 * sgemm keep BLAS at full speed); bias and activation fused after each block's GEMM.
 * Backward the same way, with col2im for the input gradient. 3x3 stride-1 layers with 16+
 * channels use Winograd instead (forward, input and kernel gradients: core/winograd.c), and
 * kernels of at most 32 taps per output a direct forward (core/conv_direct.c). */
#include <math.h>
#include <string.h>

#include "core/winograd.h"
#include "layers/conv2d.h"
#include "layers/lrp.h"
#include "layers/layer.h"

static void geom(const tfx_layer *l, tfx__conv_geom *g)
{
    g->in_h = l->in.h;
    g->in_w = l->in.w;
    g->in_c = l->in.c;
    g->out_h = l->out.h;
    g->out_w = l->out.w;
    g->kh = l->cfg.kernel_h;
    g->kw = l->cfg.kernel_w;
    g->sh = l->cfg.stride_h;
    g->sw = l->cfg.stride_w;
    g->pad_top = l->cfg.pad_top;
    g->pad_left = l->cfg.pad_left;
}

/* A 1x1 kernel with unit strides and no padding needs no im2col: the input already is the col
 * matrix. */
static int is_pointwise(const tfx_layer *l)
{
    const tfx__layer_config *c = &l->cfg;
    return c->kernel_h == 1 && c->kernel_w == 1 && c->stride_h == 1 && c->stride_w == 1 &&
           (c->pad_top | c->pad_bottom | c->pad_left | c->pad_right) == 0;
}

static int groups(const tfx_layer *l) { return l->cfg.groups > 1 ? l->cfg.groups : 1; }

/* Kernel rows: the taps of one filter (its group's input channels). */
static size_t kdim(const tfx_layer *l)
{
    return (size_t)l->cfg.kernel_h * l->cfg.kernel_w * (size_t)(l->in.c / groups(l));
}

int tfx__conv2d_infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "Conv2D needs an image input (h, w, c), got a flat tensor of %d", in.c);
    int oh, ow;
    int rc = tfx__window_out(l, "kernel", in, &oh, &ow);
    if (rc) return rc;
    if (in.c % groups(l) || l->cfg.filters % groups(l))
        return tfx__error(TFX_ESHAPE, "groups = %d must divide the %d input channels and the %d filters", groups(l),
                          in.c, l->cfg.filters);
    /* Weight count must not overflow (kernel sizes come from callers and files). */
    if ((double)l->cfg.kernel_h * l->cfg.kernel_w * (in.c / groups(l)) * ((double)l->cfg.filters + 1) >
        TFX__MAX_LAYER_PARAMS)
        return tfx__error(TFX_ESHAPE, "kernel %dx%dx%d with %d filters has too many weights (limit %.0f)",
                          l->cfg.kernel_h, l->cfg.kernel_w, in.c, l->cfg.filters, TFX__MAX_LAYER_PARAMS);
    *out = (tfx__shape){oh, ow, l->cfg.filters, 0};
    return TFX_OK;
}

void tfx__conv2d_counts(const tfx_layer *l, size_t *trainable, size_t *state)
{
    *trainable = kdim(l) * (size_t)l->cfg.filters + (l->cfg.use_bias ? (size_t)l->cfg.filters : 0);
    *state = 0;
}

/* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)); zero bias. */
static void init(tfx_layer *l, tfx__rng *rng)
{
    size_t fan_in = kdim(l), fan_out = (size_t)l->cfg.kernel_h * l->cfg.kernel_w * l->cfg.filters;
    double limit = sqrt(6.0 / (double)(fan_in + fan_out));
    float *w = tfx__layer_params(l);
    size_t nk = fan_in * (size_t)l->cfg.filters;
    for (size_t i = 0; i < nk; i++) w[i] = (float)((2.0 * tfx__rng_uniform(rng) - 1.0) * limit);
    if (l->cfg.use_bias) memset(w + nk, 0, (size_t)l->cfg.filters * sizeof(float));
}

/* im2col block budget in floats (4 MiB): large enough for full-speed GEMMs, small enough to
 * stay in cache between im2col and the GEMM and to bound memory at any batch size. */
#define COL_BLOCK_FLOATS ((size_t)1 << 20)

/* Images per block (at least one). */
static size_t block_images(const tfx_layer *l, size_t n)
{
    size_t per = (size_t)l->out.h * l->out.w * kdim(l), b = per ? COL_BLOCK_FLOATS / per : n;
    if (b < 1) b = 1;
    return b < n ? b : n;
}

/* Winograd for 3x3 stride-1 kernels: the forward conv (dx = 0) or the input gradient
 * (dx = 1: dz convolved with the rotated kernel, padding 2 - pad) of n images. Returns the
 * tile size m, or 0 for im2col. */
static int wino_geom(const tfx_layer *l, int dx, tfx__wino_geom *g, size_t n)
{
    if (l->cfg.kernel_h != 3 || l->cfg.kernel_w != 3 || l->cfg.stride_h != 1 || l->cfg.stride_w != 1) return 0;
    if (groups(l) > 1) return 0;
    /* The input gradient pads by 2 - pad: explicit pads beyond the kernel go to im2col. */
    if (l->cfg.pad_top > 2 || l->cfg.pad_left > 2 || l->cfg.pad_bottom > 2 || l->cfg.pad_right > 2) return 0;
    if (dx)
        *g = (tfx__wino_geom){l->out.h, l->out.w, l->out.c, l->in.h, l->in.w, l->in.c, 2 - l->cfg.pad_top,
                              2 - l->cfg.pad_left};
    else
        *g = (tfx__wino_geom){l->in.h, l->in.w, l->in.c, l->out.h, l->out.w, l->out.c, l->cfg.pad_top,
                              l->cfg.pad_left};
    return tfx__winograd_choose_n(g->cin, g->cout, g->out_h, g->out_w, n);
}

/* Scratch of one Winograd pass: the tile blocks, or the rotated taps while the input
 * gradient's kernel is transformed (before the blocks use the same memory). */
static size_t wino_scratch(int m, const tfx__wino_geom *g, int dx, size_t n, int threads)
{
    size_t work = tfx__winograd_work_floats(m, g, n, threads), taps = dx ? 9 * (size_t)g->cin * g->cout : 0;
    return work > taps ? work : taps;
}

static size_t wino_floats(const tfx_layer *l, int dx, size_t n)
{
    tfx__wino_geom g;
    int m = wino_geom(l, dx, &g, n);
    return m ? wino_scratch(m, &g, dx, n, tfx__winograd_threads(m, &g, n)) : 0;
}

/* The Winograd-transformed kernel for direction dx, kept in l->derived[dx] until the weights
 * change (a third of a one-image forward was spent transforming them again). The tile size
 * depends on the image count (tfx__winograd_choose_n), so the slot keeps up to two kernels,
 * the first at the start and the second after it (key: first | second << 8): alternating
 * one-image and batch calls transform nothing again. tmp: scratch for the rotated taps. NULL
 * with TFX_ENOMEM set. */
static const float *wino_kernel(tfx_layer *l, uint64_t gen, int dx, int m, const tfx__wino_geom *g, float *tmp)
{
    const int valid = l->derived[dx].data && l->derived[dx].gen == gen;
    const int first = valid ? l->derived[dx].key & 0xff : 0, second = valid ? (l->derived[dx].key >> 8) & 0xff : 0;
    if (first == m) return l->derived[dx].data;
    const size_t off = first ? tfx__winograd_kernel_floats(first, g) : 0;
    if (second == m) return l->derived[dx].data + off;
    const size_t need = off + tfx__winograd_kernel_floats(m, g);
    if (l->derived[dx].cap < need) {
        float *p = tfx__alloc_floats(need, 1);
        if (!p) {
            tfx__error(TFX_ENOMEM, "layer '%s': out of memory for a %zu-float transformed kernel", l->name, need);
            return NULL;
        }
        if (off) memcpy(p, l->derived[dx].data, off * sizeof(float));
        tfx__free(l->derived[dx].data);
        l->derived[dx].data = p;
        l->derived[dx].cap = need;
    }
    tfx__winograd_kernel(m, g, tfx__layer_params(l), dx, tmp, l->derived[dx].data + off);
    l->derived[dx].gen = gen;
    l->derived[dx].key = first ? first | m << 8 : m;
    return l->derived[dx].data + off;
}

/* The kernel gradient by Winograd (F(3x3, 2x2)) where the forward would use it. */
static int wino_grad_geom(const tfx_layer *l, tfx__wino_geom *g, size_t n) { return wino_geom(l, 0, g, n) != 0; }

size_t tfx__conv2d_scratch_floats(const tfx_layer *l, size_t n)
{
    if (groups(l) > 1) return 0;
    tfx__wino_geom g;
    const int wg = wino_grad_geom(l, &g, n);
    size_t s = is_pointwise(l) ? 0 : block_images(l, n) * l->out.h * l->out.w * kdim(l);
    size_t f = wino_floats(l, 0, n), b = wino_floats(l, 1, n), k = wg ? tfx__winograd_grad_work_floats(&g, n) : 0;
    if (f > s) s = f;
    if (k > s) s = k;
    return b > s ? b : s;
}

int tfx__conv2d_forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const size_t per_rows = (size_t)l->out.h * l->out.w, K = kdim(l), F = (size_t)l->cfg.filters;
    const size_t in_sz = tfx__shape_size(l->in);
    const float *w = tfx__layer_params(l), *bias = l->cfg.use_bias ? w + K * F : NULL;
    float *z = l->preact ? l->preact : y;
    if (groups(l) > 1) {
        tfx__conv_geom g;
        geom(l, &g);
        const tfx__direct_epilogue ep = {l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, y};
        tfx__conv_grouped(&g, groups(l), n, x, w, F, z, &ep);
        return TFX_OK;
    }
    if (is_pointwise(l)) {
        tfx__sgemm(0, 0, n * per_rows, F, K, 1.0f, x, K, w, F, 0.0f, z, F);
        tfx__bias_activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, z, y, n * per_rows, F);
        return TFX_OK;
    }
    tfx__wino_geom wg;
    const int wm = wino_geom(l, 0, &wg, n);
    if (wm) {
        const int nt = tfx__winograd_threads(wm, &wg, n);
        float *work = tfx__layer_scratch(l, run, wino_scratch(wm, &wg, 0, n, nt));
        if (!work) return TFX_ENOMEM;
        const float *u = wino_kernel(l, run->weights_gen, 0, wm, &wg, work);
        if (!u) return TFX_ENOMEM;
        const tfx__wino_epilogue ep = {l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, y};
        tfx__winograd_conv(wm, &wg, n, x, u, nt, work, z, &ep);
        return TFX_OK;
    }
    tfx__conv_geom g;
    geom(l, &g);
    if (tfx__conv_direct_fits(&g, F)) {
        const tfx__direct_epilogue ep = {l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, y};
        tfx__conv_direct(&g, n, x, w, F, z, &ep);
        return TFX_OK;
    }
    const size_t nb = block_images(l, n);
    float *col = tfx__layer_scratch(l, run, nb * per_rows * K);
    if (!col) return TFX_ENOMEM;
    for (size_t b0 = 0; b0 < n; b0 += nb) {
        size_t cnt = n - b0 < nb ? n - b0 : nb, rows = cnt * per_rows, off = b0 * per_rows * F;
        tfx__im2col(&g, cnt, x + b0 * in_sz, col);
        tfx__sgemm(0, 0, rows, F, K, 1.0f, col, K, w, F, 0.0f, z + off, F);
        tfx__bias_activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, z + off, y + off, rows, F);
    }
    return TFX_OK;
}

int tfx__conv2d_backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y, float *dy, float *dx,
                         size_t n, int flags, const tfx__rule *rule)
{
    if (rule->kind >= TFX__RULE_LRP_0) return tfx__lrp_linear(l, run, x, y, dy, dx, n, flags, rule);
    const size_t per_rows = (size_t)l->out.h * l->out.w, K = kdim(l), F = (size_t)l->cfg.filters;
    const size_t in_sz = tfx__shape_size(l->in);
    /* The activation's backward needs its pre-activation unless the forward kept none. */
    const int act = l->cfg.activation != TFX_ACTIVATION_LINEAR && !(flags & TFX__BW_SKIP_ACTIVATION);
    const int pw = is_pointwise(l), grads = (flags & TFX__BW_PARAM_GRADS) != 0;
    const float *w = tfx__layer_params(l);
    float *gw = grads ? tfx__layer_grads(l) : NULL;
    tfx__conv_geom g;
    geom(l, &g);
    if (groups(l) > 1) { /* the direct grouped kernels, whole batch */
        const size_t rows = n * per_rows;
        if (act) {
            int rc = tfx__activation_backward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, l->preact, y, dy, dy,
                                              rows, F, rule);
            if (rc) return rc;
        }
        if (grads) {
            tfx__conv_grouped_dw(&g, groups(l), n, x, dy, F, gw);
            if (l->cfg.use_bias) {
                float *gb = gw + K * F;
                memset(gb, 0, F * sizeof(float));
                for (size_t r = 0; r < rows; r++)
                    for (size_t f = 0; f < F; f++) gb[f] += dy[r * F + f];
            }
        }
        if (dx) tfx__conv_grouped_dx(&g, groups(l), n, dy, w, F, dx);
        return TFX_OK;
    }
    const size_t nb = pw ? n : block_images(l, n);
    /* The kernel gradient and the input gradient by Winograd run after all blocks (which then
     * only apply the activation's gradient and sum the bias gradient), in the same scratch. */
    tfx__wino_geom wg, kg;
    const int wm = dx ? wino_geom(l, 1, &wg, n) : 0, wk = grads && wino_grad_geom(l, &kg, n);
    const size_t col_floats = !pw && ((grads && !wk) || (dx && !wm)) ? nb * per_rows * K : 0;
    const int nt = wm ? tfx__winograd_threads(wm, &wg, n) : 1;
    const size_t wino_work = wm ? wino_scratch(wm, &wg, 1, n, nt) : 0;
    const size_t grad_work = wk ? tfx__winograd_grad_work_floats(&kg, n) : 0;
    size_t need = col_floats > wino_work ? col_floats : wino_work;
    if (grad_work > need) need = grad_work;
    float *col = NULL, *work = NULL;
    if (need) {
        float *s = tfx__layer_scratch(l, run, need);
        if (!s) return TFX_ENOMEM;
        col = col_floats ? s : NULL;
        work = s;
    }
    if (grads && l->cfg.use_bias) memset(gw + K * F, 0, F * sizeof(float));
    /* Block by block: dz, the weight gradient accumulated over blocks, then dx. */
    for (size_t b0 = 0; b0 < n; b0 += nb) {
        size_t cnt = n - b0 < nb ? n - b0 : nb, rows = cnt * per_rows, off = b0 * per_rows * F;
        float *dz = dy + off;
        if (act) {
            int rc = tfx__activation_backward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, l->preact ? l->preact + off : NULL,
                                              y + off, dz, dz, rows, F, rule);
            if (rc) return rc;
        }
        if (grads) {
            if (!wk) {
                const float *xc = x + b0 * in_sz;
                if (col) {
                    tfx__im2col(&g, cnt, xc, col);
                    xc = col;
                }
                tfx__sgemm(1, 0, K, F, rows, 1.0f, xc, K, dz, F, b0 ? 1.0f : 0.0f, gw, F);
            }
            if (l->cfg.use_bias) {
                float *gb = gw + K * F;
                for (size_t r = 0; r < rows; r++)
                    for (size_t f = 0; f < F; f++) gb[f] += dz[r * F + f];
            }
        }
        if (dx && !wm) {
            if (col) {
                tfx__sgemm(0, 1, rows, K, F, 1.0f, dz, F, w, F, 0.0f, col, K);
                tfx__col2im(&g, cnt, col, dx + b0 * in_sz);
            } else {
                tfx__sgemm(0, 1, rows, K, F, 1.0f, dz, F, w, F, 0.0f, dx + b0 * in_sz, K);
            }
        }
    }
    if (wk) tfx__winograd_kernel_grad(&kg, n, x, dy, tfx__threads(), work, gw);
    if (wm) {
        const float *u = wino_kernel(l, run->weights_gen, 1, wm, &wg, work);
        if (!u) return TFX_ENOMEM;
        tfx__winograd_conv(wm, &wg, n, dy, u, nt, work, dx, NULL);
    }
    return TFX_OK;
}

void tfx__conv2d_weight_sizes(const tfx_layer *l, size_t *kernel, size_t *bias)
{
    *kernel = kdim(l) * (size_t)l->cfg.filters;
    *bias = l->cfg.use_bias ? (size_t)l->cfg.filters : 0;
}

void tfx__conv2d_set_weights(tfx_layer *l, const float *kernel, const float *bias)
{
    size_t k, b;
    tfx__conv2d_weight_sizes(l, &k, &b);
    float *w = tfx__layer_params(l);
    memcpy(w, kernel, k * sizeof(float));
    if (b) memcpy(w + k, bias, b * sizeof(float));
}

void tfx__conv2d_get_weights(const tfx_layer *l, float *kernel, float *bias)
{
    size_t k, b;
    tfx__conv2d_weight_sizes(l, &k, &b);
    const float *w = tfx__layer_params(l);
    memcpy(kernel, w, k * sizeof(float));
    if (b && bias) memcpy(bias, w + k, b * sizeof(float));
}

/* File record (60 bytes): filters, kernel_h, kernel_w, stride_h, stride_w, padding,
 * activation, alpha (clip: min), use_bias, clip max (0 unless clip), pad top, bottom, left,
 * right (0 unless explicit), groups (0 in a short record: 1). The 36-byte record of libtfx
 * 0.1 is written while the appended fields are unused. */
enum { CONFIG_BYTES = 60, CONFIG_BYTES_SHORT = 36 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    const tfx__layer_config *c = &l->cfg;
    const int ex = c->padding == TFX_PADDING_EXPLICIT;
    tfx__put_i32(b, c->filters);
    tfx__put_i32(b + 4, c->kernel_h);
    tfx__put_i32(b + 8, c->kernel_w);
    tfx__put_i32(b + 12, c->stride_h);
    tfx__put_i32(b + 16, c->stride_w);
    tfx__put_i32(b + 20, c->padding);
    tfx__put_i32(b + 24, c->activation);
    tfx__put_f32(b + 28, c->alpha);
    tfx__put_i32(b + 32, c->use_bias != 0);
    tfx__put_f32(b + 36, c->activation == TFX_ACTIVATION_CLIP ? c->beta : 0.0f);
    tfx__put_i32(b + 40, ex ? c->pad_top : 0);
    tfx__put_i32(b + 44, ex ? c->pad_bottom : 0);
    tfx__put_i32(b + 48, ex ? c->pad_left : 0);
    tfx__put_i32(b + 52, ex ? c->pad_right : 0);
    tfx__put_i32(b + 56, groups(l));
}

static size_t config_size(const tfx_layer *l)
{
    return l->cfg.activation == TFX_ACTIVATION_CLIP || l->cfg.padding == TFX_PADDING_EXPLICIT || groups(l) > 1
               ? CONFIG_BYTES
               : CONFIG_BYTES_SHORT;
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->filters = tfx__get_i32(b);
    c->kernel_h = tfx__get_i32(b + 4);
    c->kernel_w = tfx__get_i32(b + 8);
    c->stride_h = tfx__get_i32(b + 12);
    c->stride_w = tfx__get_i32(b + 16);
    c->padding = tfx__get_i32(b + 20);
    c->activation = tfx__get_i32(b + 24);
    c->alpha = tfx__get_f32(b + 28);
    c->use_bias = tfx__get_i32(b + 32);
    c->beta = tfx__get_f32(b + 36);
    c->pad_top = tfx__get_i32(b + 40);
    c->pad_bottom = tfx__get_i32(b + 44);
    c->pad_left = tfx__get_i32(b + 48);
    c->pad_right = tfx__get_i32(b + 52);
    c->groups = tfx__get_i32(b + 56);
    if (c->groups == 0) c->groups = 1; /* a 0.1 record */
    if ((rc = tfx__config_range("filters", c->filters, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("kernel_h", c->kernel_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("kernel_w", c->kernel_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_h", c->stride_h, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("stride_w", c->stride_w, 1, TFX__MAX_DIM)) ||
        (rc = tfx__config_padding(c)) ||
        (rc = tfx__config_fused_activation(c)) ||
        (rc = tfx__config_range("use_bias", c->use_bias, 0, 1)) ||
        (rc = tfx__config_range("groups", c->groups, 1, TFX__MAX_DIM)))
        return rc;
    return TFX_OK;
}

/* Occlusion's boxes: gather the input window each output box reads (zero padded), then
 * im2col + sgemm + the epilogue, as the forward's im2col path computes each value. */
void tfx__conv2d_box_forward(const tfx_layer *l, const tfx__box_io *io)
{
    const int C = l->in.c, bh = io->bh, bw = io->bw;
    const int nh = (bh - 1) * l->cfg.stride_h + l->cfg.kernel_h, nw = (bw - 1) * l->cfg.stride_w + l->cfg.kernel_w;
    const size_t nb = io->nb;
    for (size_t b = 0; b < nb; b++) {
        int y0 = io->oy[b] * l->cfg.stride_h - l->cfg.pad_top;
        int x0 = io->ox[b] * l->cfg.stride_w - l->cfg.pad_left;
        float *g = io->gather + b * (size_t)nh * nw * C;
        for (int r = 0; r < nh; r++)
            for (int q = 0; q < nw; q++) {
                int ih = y0 + r, iw = x0 + q;
                float *dst = g + ((size_t)r * nw + q) * C;
                if (ih < 0 || ih >= l->in.h || iw < 0 || iw >= l->in.w)
                    memset(dst, 0, (size_t)C * sizeof(float));
                else
                    memcpy(dst, tfx__box_cell(l, io, b, ih, iw), (size_t)C * sizeof(float));
            }
    }
    tfx__conv_geom g = {nh, nw, C, bh, bw, l->cfg.kernel_h, l->cfg.kernel_w, l->cfg.stride_h, l->cfg.stride_w, 0, 0};
    const size_t K = kdim(l), F = (size_t)l->cfg.filters;
    const size_t M = nb * (size_t)bh * bw;
    const float *w = tfx__layer_params(l), *bias = l->cfg.use_bias ? w + K * F : NULL;
    if (groups(l) > 1) { /* the forward's grouped kernel on the gathered windows */
        tfx__conv_grouped(&g, groups(l), nb, io->gather, w, F, io->out, NULL);
    } else {
        tfx__im2col(&g, nb, io->gather, io->col);
        tfx__sgemm(0, 0, M, F, K, 1.0f, io->col, K, w, F, 0.0f, io->out, F);
    }
    tfx__bias_activation_forward(l->cfg.activation, l->cfg.alpha, l->cfg.beta, bias, io->out, io->out, M, F);
}

void tfx__conv2d_box_scratch(const tfx_layer *l, size_t rows, int bh, int bw, size_t *gather, size_t *col)
{
    size_t nh = (size_t)(bh - 1) * l->cfg.stride_h + l->cfg.kernel_h;
    size_t nw = (size_t)(bw - 1) * l->cfg.stride_w + l->cfg.kernel_w;
    *gather = rows * nh * nw * (size_t)l->in.c;
    *col = groups(l) > 1 ? 1 : rows * (size_t)bh * bw * l->cfg.kernel_h * l->cfg.kernel_w * l->in.c;
}

double tfx__conv2d_box_cost(const tfx_layer *l)
{
    return (double)kdim(l) * l->cfg.filters; /* kdim: the taps of one group (depthwise: kh * kw) */
}

const tfx__layer_ops tfx__conv2d_ops = {
    .kind = TFX_LAYER_CONV2D,
    .traits = TFX__TRAIT_FUSED_ACTIVATION | TFX__TRAIT_FEATURE_MAP | TFX__TRAIT_WEIGHTED | TFX__TRAIT_CONVOLUTION |
              TFX__TRAIT_WINDOW,
    .base_name = "conv2d",
    .type_name = "Conv2D",
    .infer = tfx__conv2d_infer,
    .counts = tfx__conv2d_counts,
    .init = init,
    .scratch_floats = tfx__conv2d_scratch_floats,
    .forward = tfx__conv2d_forward,
    .backward = tfx__conv2d_backward,
    .weight_sizes = tfx__conv2d_weight_sizes,
    .set_weights = tfx__conv2d_set_weights,
    .get_weights = tfx__conv2d_get_weights,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .config_bytes_short = CONFIG_BYTES_SHORT,
    .config_size = config_size,
    .box_forward = tfx__conv2d_box_forward,
    .box_scratch = tfx__conv2d_box_scratch,
    .box_cost = tfx__conv2d_box_cost,
};
