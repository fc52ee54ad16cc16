/* The protobuf wire format (lib/core/protobuf.c): an encoder shared by TensorBoard event files
 * and ONNX export (a sink with p == NULL only counts, so the same code computes nested sizes
 * and then writes), and a bounds-checked reader (ONNX import). */
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

/* ---- the reader: a cursor over a const buffer ----
 * Every read checks the bytes left before it uses or allocates anything; every failure is
 * TFX_EFORMAT with a message "<fn>: <path> (field F): what" where path names the message being
 * read ("graph.node[12].attribute[3]") and F the field whose key was read last. */
typedef struct tfx__pbr {
    const uint8_t *p, *end;
    const char *fn;   /* the public function, first in messages */
    const char *path; /* the message being read (borrowed; "" at the top) */
    unsigned field;   /* the field of the last key (0 before any) */
} tfx__pbr;

void tfx__pbr_init(tfx__pbr *r, const char *fn, const char *path, const void *data, size_t n);
static inline size_t tfx__pbr_left(const tfx__pbr *r) { return (size_t)(r->end - r->p); }
/* The next key: field number (1 .. 2^29 - 1) and wire type (0, 1, 2, 5; groups 3/4 and the
 * reserved 6/7 refused). */
int tfx__pbr_key(tfx__pbr *r, unsigned *field, unsigned *wire);
/* A varint of at most 10 bytes whose value fits in 64 bits. */
int tfx__pbr_varint(tfx__pbr *r, uint64_t *v);
int tfx__pbr_fixed32(tfx__pbr *r, uint32_t *v);
int tfx__pbr_fixed64(tfx__pbr *r, uint64_t *v);
/* A length-delimited field: *data points into the buffer (read in place), *n bytes, the length
 * checked against the bytes left first. */
int tfx__pbr_bytes(tfx__pbr *r, const uint8_t **data, size_t *n);
/* A sub-message: a cursor over its bytes with another path (the caller keeps path alive). */
int tfx__pbr_sub(tfx__pbr *r, tfx__pbr *sub, const char *path);
/* Skip the value of a field of this wire type (after its key). */
int tfx__pbr_skip(tfx__pbr *r, unsigned wire);
/* Typed values of the wire type the field was written with (a mismatch is TFX_EFORMAT). */
int tfx__pbr_int64(tfx__pbr *r, unsigned wire, int64_t *v);
int tfx__pbr_float(tfx__pbr *r, unsigned wire, float *v);

/* Repeated int64 / float: one value (unpacked) or a packed block appended to a growing array
 * (*vals, *n, *cap; tfx__realloc'd, the caller frees). The values of a packed block are
 * counted first, and the total checked against max before anything is allocated. */
int tfx__pbr_append_int64(tfx__pbr *r, unsigned wire, int64_t **vals, size_t *n, size_t *cap, size_t max);
int tfx__pbr_append_float(tfx__pbr *r, unsigned wire, float **vals, size_t *n, size_t *cap, size_t max);

#endif
