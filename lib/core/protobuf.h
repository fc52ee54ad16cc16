/* The protobuf wire format (lib/core/protobuf.c): an encoder shared by TensorBoard event files
 * and ONNX export. A sink with p == NULL only counts, so the same code computes nested sizes
 * and then writes. */
#ifndef TFX_CORE_PROTOBUF_H
#define TFX_CORE_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tfx__pb {
    uint8_t *p;
    size_t n; /* bytes written (or counted) */
} tfx__pb;
enum { TFX__PB_VARINT = 0, TFX__PB_FIXED64 = 1, TFX__PB_LEN = 2, TFX__PB_FIXED32 = 5 };

size_t tfx__pb_varint_size(uint64_t v);
void tfx__pb_varint(tfx__pb *b, uint64_t v);
void tfx__pb_raw(tfx__pb *b, const void *data, size_t n);
void tfx__pb_key(tfx__pb *b, unsigned field, unsigned wire_type);
void tfx__pb_fixed32(tfx__pb *b, uint32_t v);
void tfx__pb_fixed64(tfx__pb *b, uint64_t v);
void tfx__pb_float(tfx__pb *b, unsigned field, float v);   /* key + fixed32 */
void tfx__pb_double(tfx__pb *b, unsigned field, double v); /* key + fixed64 */
void tfx__pb_int64(tfx__pb *b, unsigned field, int64_t v); /* key + varint (negatives: 10 bytes) */
void tfx__pb_len_prefix(tfx__pb *b, unsigned field, size_t n);       /* key + length */
void tfx__pb_bytes(tfx__pb *b, unsigned field, const void *data, size_t n); /* key + length + bytes */

#endif
