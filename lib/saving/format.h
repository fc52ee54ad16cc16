/* The model file's codec (docs/file-format.md): little-endian fields into a counting writer,
 * the CRC-32 trailer, the header and section table. Shared by save.c and load.c. */
#ifndef TFX_SAVING_FORMAT_H
#define TFX_SAVING_FORMAT_H

#include "model/model_internal.h"
#include "saving/saving_internal.h"

/* Bytes are written at p + pos; p NULL: only count. */
typedef struct tfx__writer {
    uint8_t *p;
    size_t pos;
} tfx__writer;

static inline void tfx__put_bytes(tfx__writer *w, const void *src, size_t n)
{
    if (w->p && n) memcpy(w->p + w->pos, src, n);
    w->pos += n;
}
static inline void tfx__put_u8(tfx__writer *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    tfx__put_bytes(w, &b, 1);
}
static inline void tfx__put_u16(tfx__writer *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    tfx__put_bytes(w, b, 2);
}
static inline void tfx__put_u32(tfx__writer *w, uint32_t v)
{
    uint8_t b[4];
    tfx__put_le32(b, v);
    tfx__put_bytes(w, b, 4);
}
static inline void tfx__put_u64(tfx__writer *w, uint64_t v)
{
    tfx__put_u32(w, (uint32_t)v);
    tfx__put_u32(w, (uint32_t)(v >> 32));
}
static inline void tfx__put_float(tfx__writer *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tfx__put_u32(w, u);
}
static inline void tfx__put_floats(tfx__writer *w, const float *f, size_t n)
{
    if (!w->p) {
        w->pos += 4 * n;
        return;
    }
    for (size_t i = 0; i < n; i++) tfx__put_float(w, f[i]);
}

static inline uint64_t tfx__get_le64(const uint8_t *b)
{
    return (uint64_t)tfx__get_le32(b) | (uint64_t)tfx__get_le32(b + 4) << 32;
}

/* CRC-32 (zlib's) of n bytes. */
uint32_t tfx__file_crc(const uint8_t *p, size_t n);

/* Header and section table of a file with an architecture and a weights section, a graph
 * section when graph_len is not 0 (then the version is TFX__FILE_VERSION_GRAPH, else
 * TFX__FILE_VERSION_CHAIN) and an optimizer section when opt_len is not 0. */
void tfx__file_put_header(tfx__writer *w, size_t arch_len, size_t weights_len, size_t graph_len, size_t opt_len);
/* Bytes of the header, section table and trailer around the sections' payloads (without the
 * optimizer section's table entry). */
#define TFX__FILE_OVERHEAD (TFX__FILE_HEADER_LEN + 2 * TFX__FILE_ENTRY_LEN + TFX__FILE_TRAILER_LEN)

/* The optimizer section (optimizer_section.c). */
#define TFX__OPT_FIXED_LEN 116 /* bytes before the state arrays */
/* The snapshot to write for include_optimizer (TFX_ESTATE when the model is not compiled). */
int tfx__opt_section_source(const tfx_model *m, tfx__train_snapshot *s, const char *fn);
int tfx__opt_section_size(const tfx__train_snapshot *s, size_t *len);
void tfx__opt_section_put(tfx__writer *w, const tfx__train_snapshot *s, const tfx_model *m);
/* Validate a section and park it in m->resume, restoring m's seed and RNG (TFX_EFORMAT). */
int tfx__opt_section_read(tfx_model *m, const uint8_t *p, size_t len);

/* The architecture and weights payloads of a whole file, after checking the magic, version,
 * checksum and section table (TFX_EFORMAT / TFX_EVERSION with a message). A version 1 file has
 * no graph section (its layers form a chain); a later one has exactly one. */
typedef struct tfx__file_sections {
    uint32_t version;
    const uint8_t *arch, *weights, *opt, *graph; /* opt, graph: NULL when the file has none */
    size_t arch_len, weights_len, opt_len, graph_len;
} tfx__file_sections;
int tfx__file_sections_find(const uint8_t *b, size_t size, tfx__file_sections *s);

#endif
