/* Grids as tf-explain lays them out (grid_display / filter_display, research notes U1/U2):
 * ceil(sqrt(n)) x ceil(sqrt(n)) by default, tiles row-major, missing tiles zero, no gaps; and
 * ExtractActivations' picture (tfx_render_filters). */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "render/render.h"
#include "tfx/image.h"

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

/* r * r < n without forming r * r (it wraps for r >= 2^32 on 64 bits). */
static int square_below(size_t r, size_t n)
{
    if (r == 0) return n > 0;
    size_t q = n / r;
    return r < q || (r == q && n % r != 0);
}

/* Smallest r with r*r >= n, in integers (no float sqrt rounding), for every n: the old
 * r * r < n loop never ended for n > (2^32 - 1)^2. */
size_t tfx__ceil_sqrt(size_t n)
{
    size_t r = (size_t)sqrt((double)n);
    while (r > 0 && !square_below(r, n)) r--;
    while (square_below(r, n)) r++;
    return r;
}

int tfx__grid_shape(const char *fn, size_t n, int tile_h, int tile_w, int rows, int cols, int *out_rows,
                    int *out_cols)
{
    if (n == 0) return tfx__error(TFX_EINVAL, "%s: no tiles to lay out", fn);
    if (rows < 0 || cols < 0)
        return tfx__error(TFX_EINVAL, "%s: grid rows %d / cols %d must not be negative", fn, rows, cols);
    size_t r, c;
    if (rows > 0 && cols > 0) {
        r = (size_t)rows;
        c = (size_t)cols;
        if ((unsigned long long)r * c < n) r = ceil_div(n, c); /* tf-explain warns and keeps cols */
    } else if (rows > 0) {
        r = (size_t)rows;
        c = ceil_div(n, r);
    } else if (cols > 0) {
        c = (size_t)cols;
        r = ceil_div(n, c);
    } else {
        r = c = tfx__ceil_sqrt(n);
    }
    if (r > (size_t)(TFX_IMAGE_MAX_SIDE / tile_h) || c > (size_t)(TFX_IMAGE_MAX_SIDE / tile_w) ||
        r * (size_t)tile_h * c * (size_t)tile_w > (size_t)TFX_RENDER_MAX_PIXELS)
        return tfx__error(TFX_EINVAL, "%s: %zu tiles of %dx%d in a %zux%zu grid exceed the picture limits "
                                      "(%d pixels a side, %d pixels); render fewer tiles (e.g. one sample "
                                      "or a channel subset)",
                          fn, n, tile_h, tile_w, r, c, TFX_IMAGE_MAX_SIDE, TFX_RENDER_MAX_PIXELS);
    *out_rows = (int)r;
    *out_cols = (int)c;
    return TFX_OK;
}

void tfx__grid_put(tfx_image *grid, int cols, size_t t, const uint8_t *tile, int h, int w)
{
    size_t gr = t / (size_t)cols, gc = t % (size_t)cols;
    size_t row_bytes = (size_t)w * (size_t)grid->channels;
    uint8_t *dst = grid->pixels + gr * (size_t)h * grid->stride + gc * row_bytes;
    for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * grid->stride, tile + (size_t)y * row_bytes, row_bytes);
}

void tfx__grid_fill(tfx_image *grid, int cols, size_t t, int h, int w, const uint8_t *px)
{
    size_t gr = t / (size_t)cols, gc = t % (size_t)cols;
    size_t ch = (size_t)grid->channels;
    uint8_t *dst = grid->pixels + gr * (size_t)h * grid->stride + gc * (size_t)w * ch;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) memcpy(dst + (size_t)y * grid->stride + (size_t)x * ch, px, ch);
}

int tfx_render_grid(const uint8_t *tiles, size_t n, int height, int width, int channels, int rows, int cols,
                    tfx_image **out)
{
    static const char fn[] = "tfx_render_grid";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(tiles);
    TFX__CHECK_ARG(n > 0, "%s: n is 0", fn);
    TFX__CHECK_ARG(height > 0 && width > 0 && height <= TFX_IMAGE_MAX_SIDE && width <= TFX_IMAGE_MAX_SIDE,
                   "%s: tile size %dx%d must be in 1..%d", fn, height, width, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(channels >= 1 && channels <= 4, "%s: channels %d must be 1..4", fn, channels);
    int rc = tfx__check_count(fn, n, (size_t)height * (size_t)width * (size_t)channels, 1);
    if (rc) return rc;
    int r, c;
    rc = tfx__grid_shape(fn, n, height, width, rows, cols, &r, &c);
    if (rc) return rc;
    tfx_image *grid = NULL;
    rc = tfx_image_new(&grid, c * width, r * height, channels);
    if (rc) return tfx__error_prefix("%s", fn);
    size_t tile_bytes = (size_t)height * (size_t)width * (size_t)channels;
    for (size_t t = 0; t < n; t++) tfx__grid_put(grid, c, t, tiles + t * tile_bytes, height, width);
    *out = grid;
    return TFX_OK;
}

/* ---- ExtractActivations ---- */

/* Value of feature map j of sample s at pixel i (NHWC). */
static float act(const float *maps, size_t hw, int k, size_t s, int j, size_t i)
{
    return maps[(s * hw + i) * (size_t)k + (size_t)j];
}

/* Finite min and max over samples [first, first + count); 0, 0 when none is finite. */
static void sample_range(const float *maps, size_t hw, int k, size_t first, size_t count, double *mn,
                         double *mx)
{
    int any = 0;
    double lo = 0.0, hi = 0.0;
    size_t m = count * hw * (size_t)k;
    const float *p = maps + first * hw * (size_t)k;
    for (size_t i = 0; i < m; i++) {
        double x = p[i];
        if (!isfinite(x)) continue;
        if (!any || x < lo) lo = x;
        if (!any || x > hi) hi = x;
        any = 1;
    }
    *mn = lo;
    *mx = hi;
}

int tfx_render_filters(const float *maps, size_t n, int height, int width, int k, const tfx_render_options *opts,
                       tfx_image **out)
{
    static const char fn[] = "tfx_render_filters";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(maps);
    TFX__CHECK_ARG(n > 0, "%s: n is 0", fn);
    TFX__CHECK_ARG(height > 0 && width > 0 && height <= TFX_IMAGE_MAX_SIDE && width <= TFX_IMAGE_MAX_SIDE,
                   "%s: map size %dx%d must be in 1..%d", fn, height, width, TFX_IMAGE_MAX_SIDE);
    TFX__CHECK_ARG(k > 0, "%s: k = %d feature maps", fn, k);
    size_t tiles;
    if (tfx__mul_size(n, (size_t)k, &tiles))
        return tfx__error(TFX_EINVAL, "%s: %zu samples x %d maps overflow", fn, n, k);
    int rc = tfx__check_count(fn, tiles, (size_t)height * (size_t)width, sizeof(float));
    if (rc) return rc;
    tfx_render_options o;
    rc = tfx__render_options_copy(&o, opts, fn);
    if (rc) return rc;
    int rows, cols, th, tw;
    rc = tfx__render_layout(fn, &o, tiles, height, width, &th, &tw, &rows, &cols);
    if (rc) return rc;
    int compat = o.compat == TFX_COMPAT_TF_EXPLAIN;
    int cmap = o.colormap == TFX_COLORMAP_DEFAULT ? TFX_COLORMAP_GRAY : o.colormap;
    int ch = cmap == TFX_COLORMAP_GRAY ? 1 : 3;
    const uint8_t *lut = tfx__colormap_lut(cmap);
    size_t hw = (size_t)height * (size_t)width;
    size_t padding = (size_t)rows * (size_t)cols - tiles;

    size_t thw = (size_t)th * (size_t)tw; /* the (scaled) tile */
    int scaled = th != height || tw != width;

    tfx_image *grid = NULL;
    rc = tfx_image_new(&grid, cols * tw, rows * th, ch);
    if (rc) return tfx__error_prefix("%s", fn);
    /* Each map as colormap indices (idx), scaled (big), then coloured (tile). */
    uint8_t *idx = tfx__malloc(hw), *big = scaled ? tfx__malloc(thw) : idx, *tile = tfx__malloc(thw * 3);
    if (!idx || !big || !tile) {
        tfx__free(idx);
        if (scaled) tfx__free(big);
        tfx__free(tile);
        tfx_image_free(grid);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }

    /* compat: (G - min G) / (max G - min G) over the float32 grid, zero padding included, NaN
     * propagating like np.min/np.max; clip to [0, 1]; * 255 truncated (NaN -> 0). */
    float cmn = 0.0f, cmx = 0.0f;
    int has_nan = 0;
    if (compat) {
        size_t count = n * hw * (size_t)k;
        cmn = cmx = padding ? 0.0f : maps[0];
        for (size_t i = 0; i < count; i++) {
            float x = maps[i];
            if (isnan(x)) has_nan = 1;
            if (x < cmn) cmn = x;
            if (x > cmx) cmx = x;
        }
    }
    double bmn = 0.0, bmx = 0.0; /* paper-correct batch range (per_image = 0) */
    if (!compat && !o.per_image) sample_range(maps, hw, k, 0, n, &bmn, &bmx);
    for (size_t s = 0; s < n; s++) {
        double mn = bmn, mx = bmx;
        if (!compat && o.per_image) sample_range(maps, hw, k, s, 1, &mn, &mx);
        for (int j = 0; j < k; j++) {
            for (size_t i = 0; i < hw; i++) {
                float x = act(maps, hw, k, s, j, i);
                uint8_t v;
                if (compat) {
                    float t = has_nan ? NAN : (x - cmn) / (cmx - cmn);
                    t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
                    v = tfx__u8_wrap(t * 255.0f);
                } else if (isnan(x)) {
                    v = 0;
                } else if (isinf(x)) {
                    v = x > 0 ? 255 : 0;
                } else {
                    v = mx > mn ? tfx__u8_round(((double)x - mn) / (mx - mn) * 255.0) : 0;
                }
                idx[i] = v;
            }
            if (scaled && (rc = tfx__scale_u8(idx, height, width, 1, big, th, tw, o.scale_mode)) != TFX_OK) {
                tfx__free(idx);
                tfx__free(big);
                tfx__free(tile);
                tfx_image_free(grid);
                return tfx__error_prefix("%s", fn);
            }
            if (ch == 3)
                for (size_t i = 0; i < thw; i++) memcpy(tile + 3 * i, lut + 3 * (size_t)big[i], 3);
            tfx__grid_put(grid, cols, s * (size_t)k + (size_t)j, ch == 1 ? big : tile, th, tw);
        }
    }
    if (compat && padding) {
        float t = has_nan ? NAN : (0.0f - cmn) / (cmx - cmn);
        t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
        uint8_t v = tfx__u8_wrap(t * 255.0f);
        for (size_t t2 = tiles; t2 < tiles + padding; t2++)
            tfx__grid_fill(grid, cols, t2, th, tw, ch == 1 ? &v : lut + 3 * (size_t)v);
    }
    tfx__free(idx);
    if (scaled) tfx__free(big);
    tfx__free(tile);
    *out = grid;
    return TFX_OK;
}
