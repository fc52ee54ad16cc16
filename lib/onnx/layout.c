/* NCHW <-> NHWC conversions for callers whose data comes from PyTorch or ONNX, and the ONNX
 * options' initialiser. */
#include "core/internal.h"
#include "core/options.h"
#include "tfx/onnx.h"

TFX__OPTIONS_DESC_V1(onnx_options, tfx_onnx_options, TFX_ONNX_OPTIONS_VERSION, TFX_ONNX_OPTIONS_INIT);

int tfx_onnx_options_init(tfx_onnx_options *opts, unsigned version)
{
    return tfx__options_init(&onnx_options, opts, version, "tfx_onnx_options_init");
}

/* n images of a x b x c floats (in that order) to n x b x c x a when to_last, else the reverse
 * direction; sizes checked by the callers. */
static int convert(const char *fn, const float *src, float *dst, size_t n, int d0, int d1, int d2)
{
    TFX__CHECK_ARG(src && dst, "%s: %s is NULL", fn, src ? "dst" : "src");
    TFX__CHECK_ARG(d0 > 0 && d1 > 0 && d2 > 0, "%s: sizes %d, %d, %d must be positive", fn, d0, d1, d2);
    size_t per;
    if (tfx__mul_size((size_t)d0 * (size_t)d1, (size_t)d2, &per)) return tfx__error(TFX_EINVAL, "%s: an image overflows", fn);
    int rc = tfx__check_count(fn, n, per, sizeof(float));
    if (rc) return rc;
    const size_t bytes = n * per * sizeof(float);
    TFX__CHECK_ARG((const char *)src + bytes <= (const char *)dst || (const char *)dst + bytes <= (const char *)src,
                   "%s: src and dst overlap", fn);
    return TFX_OK;
}

int tfx_tensor_nchw_to_nhwc(const float *src, float *dst, size_t n, int channels, int height, int width)
{
    int rc = convert("tfx_tensor_nchw_to_nhwc", src, dst, n, channels, height, width);
    if (rc) return rc;
    const size_t C = (size_t)channels, HW = (size_t)height * (size_t)width;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < HW; p++) dst[(i * HW + p) * C + c] = src[(i * C + c) * HW + p];
    return TFX_OK;
}

int tfx_tensor_nhwc_to_nchw(const float *src, float *dst, size_t n, int height, int width, int channels)
{
    int rc = convert("tfx_tensor_nhwc_to_nchw", src, dst, n, height, width, channels);
    if (rc) return rc;
    const size_t C = (size_t)channels, HW = (size_t)height * (size_t)width;
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < HW; p++)
            for (size_t c = 0; c < C; c++) dst[(i * C + c) * HW + p] = src[(i * HW + p) * C + c];
    return TFX_OK;
}
