/* The one place that compiles stb_image_write and stb_image (Debian libstb-dev headers). Both
 * are static to this file, allocate through libtfx's allocator (so failure injection and leak
 * checks see them), never assert (the library must not abort), and never touch stdio (libtfx
 * does its own file I/O so write errors are reported). Thin tfx__ wrappers export what
 * image.c needs. */
#include <stddef.h>

#include "core/internal.h"
#include "explain/render.h"

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

#define STBIW_MALLOC(sz) tfx__malloc(sz)
#define STBIW_REALLOC(p, newsz) tfx__realloc(p, newsz)
#define STBIW_FREE(p) tfx__free(p)
#define STBIW_ASSERT(x) ((void)0)
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#define STBI_MALLOC(sz) tfx__malloc(sz)
#define STBI_REALLOC(p, newsz) tfx__realloc(p, newsz)
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
    return stbi_write_png_to_mem(pixels, stride, w, h, n, out_len);
}

int tfx__stb_info(const unsigned char *data, int len, int *w, int *h, int *comp)
{
    return stbi_info_from_memory(data, len, w, h, comp);
}

unsigned char *tfx__stb_load(const unsigned char *data, int len, int *w, int *h, int *comp,
                             int req_comp)
{
    return stbi_load_from_memory(data, len, w, h, comp, req_comp);
}

const char *tfx__stb_failure_reason(void)
{
    const char *r = stbi_failure_reason();
    return r ? r : "unknown reason";
}
