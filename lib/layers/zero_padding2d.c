/* ZeroPadding2D: zero rows and columns around the image (Keras's ((top, bottom), (left,
 * right))). As a window layer its output cell (oh, ow) reads input cell (oh - top, ow - left)
 * (a 1x1 window at stride 1, offset by the top and left pads), so occlusion's boxes go
 * through it. The backward crops; LRP's relevance of the padded cells is dropped (the next
 * layer gives zero inputs none under the z-rules). */
#include <string.h>

#include "layers/layer.h"

static int infer(tfx_layer *l, tfx__shape in, tfx__shape *out)
{
    if (in.flat)
        return tfx__error(TFX_ESHAPE, "ZeroPadding2D needs an image input (h, w, c), got a flat tensor of %d", in.c);
    const tfx__layer_config *c = &l->cfg;
    long oh = (long)in.h + c->pad_top + c->pad_bottom, ow = (long)in.w + c->pad_left + c->pad_right;
    if (oh > TFX__MAX_DIM || ow > TFX__MAX_DIM)
        return tfx__error(TFX_ESHAPE, "padding %dx%d to %ldx%ld is larger than %d", in.h, in.w, oh, ow, TFX__MAX_DIM);
    *out = (tfx__shape){(int)oh, (int)ow, in.c, 0};
    return TFX_OK;
}

static int forward(tfx_layer *l, const tfx__layer_run *run, const float *x, float *y, size_t n)
{
    (void)run;
    const size_t C = (size_t)l->in.c, row = (size_t)l->in.w * C, orow = (size_t)l->out.w * C;
    const size_t in_sz = tfx__shape_size(l->in), out_sz = tfx__shape_size(l->out);
    memset(y, 0, n * out_sz * sizeof(float));
    for (size_t b = 0; b < n; b++)
        for (int h = 0; h < l->in.h; h++)
            memcpy(y + b * out_sz + (size_t)(h + l->cfg.pad_top) * orow + (size_t)l->cfg.pad_left * C,
                   x + b * in_sz + (size_t)h * row, row * sizeof(float));
    return TFX_OK;
}

/* The gradient (or relevance) of the input cells: the output's, cropped. */
static int backward(tfx_layer *l, const tfx__layer_run *run, const float *x, const float *y, float *dy, float *dx,
                    size_t n, int flags, const tfx__rule *rule)
{
    (void)run, (void)x, (void)y, (void)flags, (void)rule;
    if (!dx) return TFX_OK;
    const size_t C = (size_t)l->in.c, row = (size_t)l->in.w * C, orow = (size_t)l->out.w * C;
    const size_t in_sz = tfx__shape_size(l->in), out_sz = tfx__shape_size(l->out);
    for (size_t b = 0; b < n; b++)
        for (int h = 0; h < l->in.h; h++)
            memcpy(dx + b * in_sz + (size_t)h * row,
                   dy + b * out_sz + (size_t)(h + l->cfg.pad_top) * orow + (size_t)l->cfg.pad_left * C,
                   row * sizeof(float));
    return TFX_OK;
}

static void box_forward(const tfx_layer *l, const tfx__box_io *io)
{
    const int C = l->in.c, bh = io->bh, bw = io->bw;
    for (size_t b = 0; b < io->nb; b++)
        for (int r = 0; r < bh; r++)
            for (int q = 0; q < bw; q++) {
                int ih = io->oy[b] + r - l->cfg.pad_top, iw = io->ox[b] + q - l->cfg.pad_left;
                float *dst = io->out + ((b * bh + (size_t)r) * bw + q) * C;
                if (ih < 0 || ih >= l->in.h || iw < 0 || iw >= l->in.w)
                    memset(dst, 0, (size_t)C * sizeof(float));
                else
                    memcpy(dst, tfx__box_cell(l, io, b, ih, iw), (size_t)C * sizeof(float));
            }
}

/* File record (16 bytes): pad top, bottom, left, right. */
enum { CONFIG_BYTES = 16 };

static void config_write(const tfx_layer *l, uint8_t *b)
{
    tfx__put_i32(b, l->cfg.pad_top);
    tfx__put_i32(b + 4, l->cfg.pad_bottom);
    tfx__put_i32(b + 8, l->cfg.pad_left);
    tfx__put_i32(b + 12, l->cfg.pad_right);
}

static int config_read(const uint8_t *b, tfx__layer_config *c)
{
    int rc;
    c->pad_top = tfx__get_i32(b);
    c->pad_bottom = tfx__get_i32(b + 4);
    c->pad_left = tfx__get_i32(b + 8);
    c->pad_right = tfx__get_i32(b + 12);
    if ((rc = tfx__config_range("pad_top", c->pad_top, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_bottom", c->pad_bottom, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_left", c->pad_left, 0, TFX__MAX_DIM)) ||
        (rc = tfx__config_range("pad_right", c->pad_right, 0, TFX__MAX_DIM)))
        return rc;
    tfx__zero_padding_window(c);
    return TFX_OK;
}

void tfx__zero_padding_window(tfx__layer_config *c)
{
    c->kernel_h = c->kernel_w = c->stride_h = c->stride_w = 1;
}

const tfx__layer_ops tfx__zero_padding2d_ops = {
    .kind = TFX_LAYER_ZERO_PADDING2D,
    .traits = TFX__TRAIT_WINDOW,
    .base_name = "zero_padding2d",
    .type_name = "ZeroPadding2D",
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .config_bytes = CONFIG_BYTES,
    .config_write = config_write,
    .config_read = config_read,
    .box_forward = box_forward,
};
