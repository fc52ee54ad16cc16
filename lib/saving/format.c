/* The model file's container (docs/file-format.md): CRC-32, header, section table. */
#include <zlib.h>

#include "saving/format.h"

/* zlib's crc32 takes 32-bit lengths: feed large buffers in pieces. */
uint32_t tfx__file_crc(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

_Static_assert(TFX__FILE_VERSION_GRAPH == TFX_MODEL_FORMAT_VERSION, "the newest version is the graph one");

void tfx__file_put_header(tfx__writer *w, size_t arch_len, size_t weights_len, size_t graph_len, size_t opt_len)
{
    tfx__put_bytes(w, TFX__FILE_MAGIC, TFX__FILE_MAGIC_LEN);
    /* A chain keeps 0.1's version, so its file stays what 0.1 writes and reads. */
    tfx__put_u32(w, graph_len ? TFX__FILE_VERSION_GRAPH : TFX__FILE_VERSION_CHAIN);
    tfx__put_u32(w, 2 + (graph_len != 0) + (opt_len != 0));
    tfx__put_u32(w, TFX__SECTION_ARCH);
    tfx__put_u32(w, TFX__SECTION_REQUIRED);
    tfx__put_u64(w, arch_len);
    tfx__put_u32(w, TFX__SECTION_WEIGHTS);
    tfx__put_u32(w, TFX__SECTION_REQUIRED);
    tfx__put_u64(w, weights_len);
    if (graph_len) { /* required: a reader that drops it would load a different model */
        tfx__put_u32(w, TFX__SECTION_GRAPH);
        tfx__put_u32(w, TFX__SECTION_REQUIRED);
        tfx__put_u64(w, graph_len);
    }
    if (opt_len) { /* optional: an older reader loads the model and skips it */
        tfx__put_u32(w, TFX__SECTION_OPTIMIZER);
        tfx__put_u32(w, 0);
        tfx__put_u64(w, opt_len);
    }
}

int tfx__file_sections_find(const uint8_t *b, size_t size, tfx__file_sections *s)
{
    if (size < TFX__FILE_MAGIC_LEN || memcmp(b, TFX__FILE_MAGIC, TFX__FILE_MAGIC_LEN) != 0)
        return tfx__error(TFX_EFORMAT, "not a libtfx model file (bad magic)");
    if (size < TFX__FILE_HEADER_LEN + TFX__FILE_TRAILER_LEN)
        return tfx__error(TFX_EFORMAT, "file of %zu bytes is truncated (the header alone has %d)", size,
                          TFX__FILE_HEADER_LEN + TFX__FILE_TRAILER_LEN);
    uint32_t version = tfx__get_le32(b + 8);
    if (version == 0) return tfx__error(TFX_EFORMAT, "header: format version 0 is not valid");
    if (version > TFX_MODEL_FORMAT_VERSION)
        return tfx__error(TFX_EVERSION, "header: format version %lu is newer than this libtfx reads (%d)",
                          (unsigned long)version, TFX_MODEL_FORMAT_VERSION);
    uint32_t stored = tfx__get_le32(b + size - TFX__FILE_TRAILER_LEN);
    uint32_t crc = tfx__file_crc(b, size - TFX__FILE_TRAILER_LEN);
    if (stored != crc)
        return tfx__error(TFX_EFORMAT, "checksum mismatch (stored %08lx, computed %08lx): the file is corrupted or "
                                       "truncated",
                          (unsigned long)stored, (unsigned long)crc);
    uint32_t n_sections = tfx__get_le32(b + 12);
    size_t body = size - TFX__FILE_TRAILER_LEN; /* end of the section payloads */
    if (n_sections == 0 || n_sections > TFX__FILE_MAX_SECTIONS)
        return tfx__error(TFX_EFORMAT, "header: %lu sections (must be 1..%d)", (unsigned long)n_sections,
                          TFX__FILE_MAX_SECTIONS);
    size_t table_end = TFX__FILE_HEADER_LEN + (size_t)n_sections * TFX__FILE_ENTRY_LEN;
    if (table_end > body)
        return tfx__error(TFX_EFORMAT, "header: a table of %lu sections does not fit in %zu bytes",
                          (unsigned long)n_sections, size);
    const uint8_t *arch = NULL, *wts = NULL, *opt = NULL, *graph = NULL;
    size_t arch_len = 0, wts_len = 0, opt_len = 0, graph_len = 0, off = table_end;
    for (uint32_t i = 0; i < n_sections; i++) {
        const uint8_t *e = b + TFX__FILE_HEADER_LEN + (size_t)i * TFX__FILE_ENTRY_LEN;
        uint32_t type = tfx__get_le32(e), flags = tfx__get_le32(e + 4);
        uint64_t len = tfx__get_le64(e + 8);
        if (flags & ~TFX__SECTION_REQUIRED)
            return tfx__error(TFX_EFORMAT, "section %lu (type %lu): unknown flags %08lx", (unsigned long)i,
                              (unsigned long)type, (unsigned long)flags);
        if (len > body - off)
            return tfx__error(TFX_EFORMAT, "section %lu (type %lu): length %llu runs past the end of the file (%zu "
                                           "bytes left)",
                              (unsigned long)i, (unsigned long)type, (unsigned long long)len, body - off);
        if (type == TFX__SECTION_ARCH || type == TFX__SECTION_WEIGHTS) {
            const uint8_t **slot = type == TFX__SECTION_ARCH ? &arch : &wts;
            if (*slot)
                return tfx__error(TFX_EFORMAT, "section %lu: a second %s section", (unsigned long)i,
                                  type == TFX__SECTION_ARCH ? "architecture" : "weights");
            *slot = b + off;
            if (type == TFX__SECTION_ARCH) arch_len = (size_t)len;
            else wts_len = (size_t)len;
        } else if (type == TFX__SECTION_OPTIMIZER) {
            if (opt) return tfx__error(TFX_EFORMAT, "section %lu: a second optimizer section", (unsigned long)i);
            opt = b + off;
            opt_len = (size_t)len;
        } else if (type == TFX__SECTION_GRAPH) {
            if (version < TFX__FILE_VERSION_GRAPH)
                return tfx__error(TFX_EFORMAT,
                                  "section %lu: a graph section in a version %lu file (graphs are "
                                  "version %d)",
                                  (unsigned long)i, (unsigned long)version, TFX__FILE_VERSION_GRAPH);
            if (graph) return tfx__error(TFX_EFORMAT, "section %lu: a second graph section", (unsigned long)i);
            graph = b + off;
            graph_len = (size_t)len;
        } else if (flags & TFX__SECTION_REQUIRED) {
            return tfx__error(TFX_EFORMAT, "section %lu: required section type %lu is not known to this libtfx",
                              (unsigned long)i, (unsigned long)type);
        } /* else: an optional section this reader does not use; skip it */
        off += (size_t)len;
    }
    if (off != body)
        return tfx__error(TFX_EFORMAT, "sections end at byte %zu but the checksum is at byte %zu", off, body);
    if (!arch) return tfx__error(TFX_EFORMAT, "the file has no architecture section");
    if (!wts) return tfx__error(TFX_EFORMAT, "the file has no weights section");
    if (!graph && version >= TFX__FILE_VERSION_GRAPH)
        return tfx__error(TFX_EFORMAT, "a version %lu file must have a graph section", (unsigned long)version);
    s->version = version;
    s->graph = graph;
    s->graph_len = graph_len;
    s->arch = arch;
    s->arch_len = arch_len;
    s->weights = wts;
    s->weights_len = wts_len;
    s->opt = opt;
    s->opt_len = opt_len;
    return TFX_OK;
}
