/* The one place that compiles stb_image_write and stb_image (Debian libstb-dev headers). Both
 * are static to this file, allocate through libtfx's allocator (so failure injection and leak
 * checks see them), never assert (the library must not abort), and never touch stdio (libtfx
 * does its own file I/O so write errors are reported). Thin tfx__ wrappers export what
 * image.c needs. */
#include <stddef.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"
#include "render/render.h"

#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wmissing-prototypes"
#  pragma GCC diagnostic ignored "-Wshadow"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#  pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wtype-limits"
#  pragma GCC diagnostic ignored "-Wdouble-promotion"
#  pragma GCC diagnostic ignored "-Wstrict-prototypes"
#endif

/* PNG deflate through zlib, whose allocation failures are reported (stb's own compressor
 * dereferences failed reallocs). The result is remembered per thread because
 * stbi_write_png_to_mem leaks it when its last allocation fails (see tfx__stb_png_encode). */
static _Thread_local unsigned char *tls_deflated;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return tfx__calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    tfx__free(p);
}

static unsigned char *tfx_deflate(unsigned char *data, int data_len, int *out_len, int quality)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int level = quality < 0 ? Z_DEFAULT_COMPRESSION : (quality > 9 ? 9 : quality);
    if (deflateInit(&zs, level) != Z_OK) return NULL;
    uLong bound = deflateBound(&zs, (uLong)data_len);
    unsigned char *out = bound <= 0x7fffffffUL ? tfx__malloc(bound) : NULL;
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = data;
    zs.avail_in = (uInt)data_len;
    zs.next_out = out;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = (int)zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        tfx__free(out);
        return NULL;
    }
    tls_deflated = out;
    return out;
}

#define STBIW_ZLIB_COMPRESS tfx_deflate
#define STBIW_MALLOC(sz) tfx__malloc(sz)
#define STBIW_REALLOC(p, newsz) tfx__realloc(p, newsz)
#define STBIW_FREE(p) tfx__free(p)
#define STBIW_ASSERT(x) ((void)0)
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

/* stb_image does not always say "outofmem" when an allocation fails (some paths return NULL with
 * an older reason), so allocation failures are flagged here per thread. */
static _Thread_local int tls_oom;

/* Zeroed: stb_image 2.27 decodes a JPEG scan with a Huffman table no DHT segment defined,
 * reading the uninitialised table as indexes (valgrind); zeroed tables decode to garbage
 * pixels without reading outside them. */
static void *stbi_tfx_malloc(size_t n)
{
    void *p = tfx__calloc(1, n);
    if (!p) tls_oom = 1;
    return p;
}

static void *stbi_tfx_realloc(void *p, size_t n)
{
    void *q = tfx__realloc(p, n);
    if (!q) tls_oom = 1;
    return q;
}

#define STBI_MALLOC(sz) stbi_tfx_malloc(sz)
#define STBI_REALLOC(p, newsz) stbi_tfx_realloc(p, newsz)
#define STBI_FREE(p) tfx__free(p)
#define STBI_ASSERT(x) ((void)0)
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
/* Small attack surface for hostile files: PNG and JPEG only. */
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_MAX_DIMENSIONS TFX_IMAGE_MAX_SIDE
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

/* No "pragma GCC diagnostic pop": unused-static warnings are issued at the end of the file. */

unsigned char *tfx__stb_png_encode(const unsigned char *pixels, int stride, int w, int h, int n,
                                   int *out_len)
{
    tls_deflated = NULL;
    unsigned char *png = stbi_write_png_to_mem(pixels, stride, w, h, n, out_len);
    if (!png && tls_deflated) tfx__free(tls_deflated); /* stb returns without freeing it */
    tls_deflated = NULL;
    return png;
}

int tfx__stb_info(const unsigned char *data, int len, int *w, int *h, int *comp, int *oom)
{
    tls_oom = 0;
    int ok = stbi_info_from_memory(data, len, w, h, comp);
    *oom = tls_oom;
    return ok;
}

unsigned char *tfx__stb_load(const unsigned char *data, int len, int *w, int *h, int *comp,
                             int req_comp, int *oom)
{
    tls_oom = 0;
    unsigned char *px = stbi_load_from_memory(data, len, w, h, comp, req_comp);
    *oom = tls_oom;
    return px;
}

const char *tfx__stb_failure_reason(void)
{
    const char *r = stbi_failure_reason();
    return r ? r : "unknown reason";
}
