/* Model file constants and test hooks (docs/file-format.md is the specification). */
#ifndef TFX_SAVING_INTERNAL_H
#define TFX_SAVING_INTERNAL_H

#include "tfx/saving.h"

/* Fixed forever: 8 magic bytes, then the u32 format version. */
#define TFX__FILE_MAGIC "\x89TFX\r\n\x1a\n"
#define TFX__FILE_MAGIC_LEN 8
#define TFX__FILE_HEADER_LEN 16 /* magic, u32 version, u32 section count */
#define TFX__FILE_ENTRY_LEN 16  /* u32 type, u32 flags, u64 length */
#define TFX__FILE_TRAILER_LEN 4 /* u32 CRC-32 of every byte before it */

enum {
    TFX__SECTION_ARCH = 1,
    TFX__SECTION_WEIGHTS = 2,
    TFX__SECTION_OPTIMIZER = 3, /* compile configuration, optimizer state, RNG (optional) */
    TFX__SECTION_GRAPH = 4      /* each layer's input tensors (required; version 2 files only) */
};
/* The version a chain model is written with (0.1's, byte for byte); a graph model is written
 * with TFX_MODEL_FORMAT_VERSION and a graph section. */
#define TFX__FILE_VERSION_CHAIN 1
#define TFX__FILE_VERSION_GRAPH 2
#define TFX__SECTION_REQUIRED 1u /* flags bit 0: a reader that does not know the type must fail */

#define TFX__FILE_MAX_SECTIONS 64
#define TFX__FILE_MAX_LAYERS 4096 /* same as the model's limit */
#define TFX__FILE_MAX_DIM (1 << 20)
#define TFX__FILE_MAX_INPUTS 1024 /* inputs of one layer in the graph section */

/* Test hook (thread-local): file writes of tfx_model_save fail once `bytes` bytes of the
 * temporary file are written, as a crash or a full disk would. bytes < 0 turns it off. */

#endif
