/* TensorBoard event files: CRC32C, TFRecord framing and protobuf encoding (the reader the
 * tests use is test code: tests/support/tb_reader.h). */
#ifndef TFX_TENSORBOARD_INTERNAL_H
#define TFX_TENSORBOARD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "tfx/tensorboard.h"

/* ---- CRC32C (Castagnoli, reflected poly 0x82F63B78) and TFRecord masking ---- */
extern const uint32_t tfx__crc32c_table[256];
/* Continue a CRC: crc = tfx__crc32c_update(0, data, n) gives the CRC of data. */
uint32_t tfx__crc32c_update(uint32_t crc, const void *data, size_t n);
uint32_t tfx__crc32c(const void *data, size_t n);
uint32_t tfx__crc32c_mask(uint32_t crc);   /* ROTR(crc, 15) + 0xA282EAD8 */
uint32_t tfx__crc32c_unmask(uint32_t masked);
uint32_t tfx__masked_crc32c(const void *data, size_t n);

/* A TFRecord is u64le length, u32le masked crc(length bytes), payload, u32le masked crc(payload). */
#define TFX__TFRECORD_OVERHEAD 16
/* rec holds 16 + payload_len bytes with the payload already at rec + 12; fill the rest. */
void tfx__tfrecord_frame(uint8_t *rec, size_t payload_len);

/* ---- Event / Summary encoding (the legacy forms research/tfevents.md recommends) ---- */
enum { TFX__TB_NONE = 0, TFX__TB_SIMPLE_VALUE = 1, TFX__TB_IMAGE = 2, TFX__TB_TENSOR_FLOAT = 3 };
typedef struct tfx__tb_value {
    const char *tag;
    size_t tag_len;
    int kind; /* TFX__TB_SIMPLE_VALUE or TFX__TB_IMAGE for encoding */
    float simple_value;
    int64_t height, width, colorspace;
    const uint8_t *image;
    size_t image_len;
} tfx__tb_value;

/* Encode Event{wall_time (omitted when has_wall_time is 0), step (omitted when 0),
 * file_version (when not NULL) | summary{value} (when value not NULL)} into out (NULL: count).
 * Fields in ascending number order, canonical proto3: output equals protoc --encode. */
size_t tfx__tb_encode_event(uint8_t *out, int has_wall_time, double wall_time, int64_t step,
                            const char *file_version, const tfx__tb_value *value);


#endif
