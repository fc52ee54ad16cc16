/* tfx_tensor_nchw_to_nhwc / tfx_tensor_nhwc_to_nchw: the index maps, the round trip and the
 * argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "tfx/tfx.h"

static void test_convert(void **state)
{
    (void)state;
    enum { N = 2, C = 3, H = 4, W = 5, S = N * C * H * W };
    float nchw[S], nhwc[S], back[S];
    for (int i = 0; i < S; i++) nchw[i] = (float)i;
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, nhwc, N, C, H, W), TFX_OK);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    assert_true(nhwc[((n * H + h) * W + w) * C + c] == nchw[((n * C + c) * H + h) * W + w]);
    assert_int_equal(tfx_tensor_nhwc_to_nchw(nhwc, back, N, H, W, C), TFX_OK);
    assert_memory_equal(back, nchw, sizeof back);
    /* bad arguments */
    assert_int_equal(tfx_tensor_nchw_to_nhwc(NULL, nhwc, N, C, H, W), TFX_EINVAL);
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, NULL, N, C, H, W), TFX_EINVAL);
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, nhwc, N, 0, H, W), TFX_EINVAL);
    assert_int_equal(tfx_tensor_nhwc_to_nchw(nhwc, back, N, H, -1, C), TFX_EINVAL);
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, nchw + 1, N, C, H, W), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "overlap"));
    assert_int_equal(tfx_tensor_nchw_to_nhwc(nchw, nhwc, 0, C, H, W), TFX_OK); /* nothing to do */
    tfx_onnx_options o;
    assert_int_equal(tfx_onnx_options_init(&o, TFX_ONNX_OPTIONS_VERSION), TFX_OK);
    assert_int_equal(o.fuse, 1);
    assert_int_equal(tfx_onnx_options_init(&o, 99), TFX_EVERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_convert)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
