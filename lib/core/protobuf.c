/* The protobuf wire format, written by hand (DESIGN decision 13): the encoder that TensorBoard
 * event files and ONNX export share. A sink with p == NULL only counts, so the same code
 * computes nested sizes and then writes. */
#include <string.h>

#include "core/protobuf.h"

size_t tfx__pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void tfx__pb_raw(tfx__pb *b, const void *data, size_t n)
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

void tfx__pb_key(tfx__pb *b, unsigned field, unsigned wire_type)
{
    tfx__pb_varint(b, ((uint64_t)field << 3) | wire_type);
}

void tfx__pb_fixed32(tfx__pb *b, uint32_t v)
{
    uint8_t t[4];
    for (int i = 0; i < 4; i++) t[i] = (uint8_t)(v >> (8 * i));
    tfx__pb_raw(b, t, 4);
}

void tfx__pb_fixed64(tfx__pb *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> (8 * i));
    tfx__pb_raw(b, t, 8);
}

void tfx__pb_float(tfx__pb *b, unsigned field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4); /* IEEE-754 bits; byte order is made explicit by fixed32 */
    tfx__pb_key(b, field, TFX__PB_FIXED32);
    tfx__pb_fixed32(b, u);
}

void tfx__pb_double(tfx__pb *b, unsigned field, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    tfx__pb_key(b, field, TFX__PB_FIXED64);
    tfx__pb_fixed64(b, u);
}

void tfx__pb_int64(tfx__pb *b, unsigned field, int64_t v)
{
    tfx__pb_key(b, field, TFX__PB_VARINT);
    tfx__pb_varint(b, (uint64_t)v); /* two's complement, as protobuf does for int64 */
}

void tfx__pb_len_prefix(tfx__pb *b, unsigned field, size_t n)
{
    tfx__pb_key(b, field, TFX__PB_LEN);
    tfx__pb_varint(b, n);
}

void tfx__pb_bytes(tfx__pb *b, unsigned field, const void *data, size_t n)
{
    tfx__pb_len_prefix(b, field, n);
    tfx__pb_raw(b, data, n);
}

