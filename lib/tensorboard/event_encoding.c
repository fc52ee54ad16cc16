/* tensorboard.Event encoding over core's protobuf encoder. Field numbers:
 * tensorboard/compat/proto/{event,summary}.proto. */
#include <string.h>

#include "core/protobuf.h"
#include "tensorboard/tensorboard_internal.h"

/* Summary.Image{height=1, width=2, colorspace=3, encoded_image_string=4}; zeros omitted. */
static void encode_image(tfx__pb *b, const tfx__tb_value *v)
{
    if (v->height) tfx__pb_int64(b, 1, v->height);
    if (v->width) tfx__pb_int64(b, 2, v->width);
    if (v->colorspace) tfx__pb_int64(b, 3, v->colorspace);
    if (v->image_len) tfx__pb_bytes(b, 4, v->image, v->image_len);
}

/* Summary.Value{tag=1, simple_value=2 | image=4}. simple_value is in a oneof: written even
 * when 0.0, otherwise TensorBoard would not see a scalar. */
static void encode_value(tfx__pb *b, const tfx__tb_value *v)
{
    if (v->tag_len) tfx__pb_bytes(b, 1, v->tag, v->tag_len);
    if (v->kind == TFX__TB_SIMPLE_VALUE) {
        tfx__pb_float(b, 2, v->simple_value);
    } else if (v->kind == TFX__TB_IMAGE) {
        tfx__pb c = {NULL, 0};
        encode_image(&c, v);
        tfx__pb_len_prefix(b, 4, c.n);
        encode_image(b, v);
    }
}

size_t tfx__tb_encode_event(uint8_t *out, int has_wall_time, double wall_time, int64_t step,
                            const char *file_version, const tfx__tb_value *value)
{
    tfx__pb b = {out, 0};
    if (has_wall_time) tfx__pb_double(&b, 1, wall_time);
    if (step != 0) tfx__pb_int64(&b, 2, step);
    if (file_version) tfx__pb_bytes(&b, 3, file_version, strlen(file_version));
    if (value) {
        /* Event.summary (5) = Summary{value (1) = Value}: sizes bottom-up by counting. */
        tfx__pb c = {NULL, 0};
        encode_value(&c, value);
        size_t value_size = c.n;
        size_t summary_size = 1 + tfx__pb_varint_size(value_size) + value_size;
        tfx__pb_len_prefix(&b, 5, summary_size);
        tfx__pb_len_prefix(&b, 1, value_size);
        encode_value(&b, value);
    }
    return b.n;
}
