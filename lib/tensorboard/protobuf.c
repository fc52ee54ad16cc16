/* The protobuf wire format subset that tensorboard.Event needs, written by hand
 * (DESIGN decision 13). Field numbers: tensorboard/compat/proto/{event,summary}.proto. */
#include <string.h>

#include "tensorboard/tensorboard_internal.h"

size_t tfx__pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void pb_raw(tfx__pb *b, const void *data, size_t n)
{
    if (b->p && n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void tfx__pb_varint(tfx__pb *b, uint64_t v)
{
    if (!b->p) {
        b->n += tfx__pb_varint_size(v);
        return;
    }
    while (v >= 0x80) {
        b->p[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (uint8_t)v;
}

static void pb_key(tfx__pb *b, unsigned field, unsigned wire_type)
{
    tfx__pb_varint(b, ((uint64_t)field << 3) | wire_type);
}

static void pb_fixed32(tfx__pb *b, uint32_t v)
{
    uint8_t t[4];
    for (int i = 0; i < 4; i++) t[i] = (uint8_t)(v >> (8 * i));
    pb_raw(b, t, 4);
}

static void pb_fixed64(tfx__pb *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> (8 * i));
    pb_raw(b, t, 8);
}

void tfx__pb_float(tfx__pb *b, unsigned field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4); /* IEEE-754 bits; byte order is made explicit by fixed32 */
    pb_key(b, field, TFX__PB_FIXED32);
    pb_fixed32(b, u);
}

void tfx__pb_double(tfx__pb *b, unsigned field, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_key(b, field, TFX__PB_FIXED64);
    pb_fixed64(b, u);
}

void tfx__pb_int64(tfx__pb *b, unsigned field, int64_t v)
{
    pb_key(b, field, TFX__PB_VARINT);
    tfx__pb_varint(b, (uint64_t)v); /* two's complement, as protobuf does for int64 */
}

static void pb_len_prefix(tfx__pb *b, unsigned field, size_t n)
{
    pb_key(b, field, TFX__PB_LEN);
    tfx__pb_varint(b, n);
}

static void pb_bytes(tfx__pb *b, unsigned field, const void *data, size_t n)
{
    pb_len_prefix(b, field, n);
    pb_raw(b, data, n);
}

/* Summary.Image{height=1, width=2, colorspace=3, encoded_image_string=4}; zeros omitted. */
static void encode_image(tfx__pb *b, const tfx__tb_value *v)
{
    if (v->height) tfx__pb_int64(b, 1, v->height);
    if (v->width) tfx__pb_int64(b, 2, v->width);
    if (v->colorspace) tfx__pb_int64(b, 3, v->colorspace);
    if (v->image_len) pb_bytes(b, 4, v->image, v->image_len);
}

/* Summary.Value{tag=1, simple_value=2 | image=4}. simple_value is in a oneof: written even
 * when 0.0, otherwise TensorBoard would not see a scalar. */
static void encode_value(tfx__pb *b, const tfx__tb_value *v)
{
    if (v->tag_len) pb_bytes(b, 1, v->tag, v->tag_len);
    if (v->kind == TFX__TB_SIMPLE_VALUE) {
        tfx__pb_float(b, 2, v->simple_value);
    } else if (v->kind == TFX__TB_IMAGE) {
        tfx__pb c = {NULL, 0};
        encode_image(&c, v);
        pb_len_prefix(b, 4, c.n);
        encode_image(b, v);
    }
}

size_t tfx__tb_encode_event(uint8_t *out, int has_wall_time, double wall_time, int64_t step,
                            const char *file_version, const tfx__tb_value *value)
{
    tfx__pb b = {out, 0};
    if (has_wall_time) tfx__pb_double(&b, 1, wall_time);
    if (step != 0) tfx__pb_int64(&b, 2, step);
    if (file_version) pb_bytes(&b, 3, file_version, strlen(file_version));
    if (value) {
        /* Event.summary (5) = Summary{value (1) = Value}: sizes bottom-up by counting. */
        tfx__pb c = {NULL, 0};
        encode_value(&c, value);
        size_t value_size = c.n;
        size_t summary_size = 1 + tfx__pb_varint_size(value_size) + value_size;
        pb_len_prefix(&b, 5, summary_size);
        pb_len_prefix(&b, 1, value_size);
        encode_value(&b, value);
    }
    return b.n;
}
