/* The answers docs/security.md's table of hostile inputs gives for the in-memory entry points
 * (file readers: tests/data, tests/saving, tests/render and the fuzz corpora): NaN/Inf weights,
 * NaN/Inf inputs, zero-sized tensors, huge dimensions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define ERR(call, code, substr)                                                                    \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != (code) || strstr(tfx_error_last()->message, (substr)) == NULL)                 \
            fail_msg("%s -> %d \"%s\" (want %d, \"%s\")", #call, rc__, tfx_error_last()->message,  \
                     (code), (substr));                                                            \
    } while (0)
#define OK(call) ERR(call, TFX_OK, "")

static tfx_model *small(tfx_layer **conv)
{
    tfx_model *m = NULL;
    OK(tfx_model_new(&m, 4, 4, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    OK(tfx_model_add_conv2d(m, &c, conv));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

static void test_nonfinite_weights(void **state)
{
    (void)state;
    tfx_layer *conv;
    tfx_model *m = small(&conv);
    float k[18], b[2], before[18];
    OK(tfx_layer_get_weights(conv, k, b));
    memcpy(before, k, sizeof k);
    k[3] = NAN;
    ERR(tfx_layer_set_weights(conv, k, b), TFX_EINVAL, "kernel[3] is not finite");
    k[3] = INFINITY;
    ERR(tfx_layer_set_weights(conv, k, b), TFX_EINVAL, "kernel[3] is not finite");
    k[3] = before[3];
    b[1] = -INFINITY;
    ERR(tfx_layer_set_weights(conv, k, b), TFX_EINVAL, "not finite");
    /* refused weights leave the layer as it was */
    OK(tfx_layer_get_weights(conv, k, b));
    assert_memory_equal(k, before, sizeof k);
    tfx_model_free(m);
}

static void test_nonfinite_inputs(void **state)
{
    (void)state;
    tfx_model *m = small(NULL);
    float x[2 * 16], y[2 * 3];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 32.0f;
    x[5] = NAN;
    x[16 + 7] = INFINITY;
    /* inference computes: non-finite inputs give non-finite outputs for that image only */
    OK(tfx_model_predict(m, x, 2, y));
    assert_true(isnan(y[0]) && isnan(y[1]) && isnan(y[2]));
    tfx_attribution *a = NULL;
    OK(tfx_explain(m, x, 1, NULL, &a)); /* no crash, no check: garbage in, garbage out */
    tfx_attribution_free(a);
    /* training refuses them before the first step, naming the value */
    int32_t lab[2] = {0, 1};
    OK(tfx_model_compile(m, NULL));
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.verbose = 0;
    ERR(tfx_model_fit(m, x, lab, 2, &fo, NULL), TFX_EINVAL, "x[5] (sample 0) is not finite");
    double loss;
    ERR(tfx_model_evaluate(m, x, lab, 2, &loss, NULL), TFX_EINVAL, "not finite");
    tfx_model_free(m);
}

static void test_zero_sized(void **state)
{
    (void)state;
    tfx_model *m = small(NULL), *e = NULL;
    float x[16] = {0}, y[3];
    int32_t lab[1] = {0};
    ERR(tfx_model_predict(m, x, 0, y), TFX_EINVAL, "n = 0");
    tfx_attribution *a = NULL;
    ERR(tfx_explain(m, x, 0, NULL, &a), TFX_EINVAL, "n = 0");
    assert_null(a);
    OK(tfx_model_compile(m, NULL));
    ERR(tfx_model_fit(m, x, lab, 0, NULL, NULL), TFX_EINVAL, "n = 0");
    ERR(tfx_model_new(&e, 0, 4, 1), TFX_EINVAL, "must be positive");
    assert_null(e);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 0;
    ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "filters = 0");
    tfx_image *im = NULL;
    ERR(tfx_image_new(&im, 0, 3, 1), TFX_EINVAL, "width 0");
    ERR(tfx_render_saliency(x, 0, 2, 2, 1, NULL, &im), TFX_EINVAL, "n is 0");
    assert_null(im);
    ERR(tfx_image_decode(&im, x, 0, 0), TFX_EFORMAT, "empty");
    /* an empty model predicts nothing: it has no output */
    OK(tfx_model_new(&e, 2, 2, 1));
    ERR(tfx_model_predict(e, x, 1, y), TFX_ESTATE, "");
    tfx_model_free(e);
    tfx_model_free(m);
}

static void test_huge_dimensions(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    ERR(tfx_model_new(&m, 1 << 21, 4, 1), TFX_EINVAL, "too large");
    ERR(tfx_model_new(&m, 1 << 20, 1 << 20, 1 << 20), TFX_EINVAL, "too large");
    assert_null(m);
    OK(tfx_model_new(&m, 8, 8, 1));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = (1 << 20) + 1;
    ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "units");
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 1;
    c.kernel_h = c.kernel_w = 9; /* larger than the 8x8 input */
    ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_ESHAPE, "");
    tfx_image *im = NULL;
    ERR(tfx_image_new(&im, 40000, 3, 1), TFX_EINVAL, "1..32768");
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonfinite_weights),
        cmocka_unit_test(test_nonfinite_inputs),
        cmocka_unit_test(test_zero_sized),
        cmocka_unit_test(test_huge_dimensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
