/* The answers docs/security.md's table of hostile inputs gives for the in-memory entry points
 * (file readers: tests/data, tests/saving, tests/render and the fuzz corpora): NaN/Inf weights,
 * NaN/Inf inputs, zero-sized tensors, huge dimensions. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

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
    /* inference refuses them too (a ReLU would hide them behind a plausible output) */
    ERR(tfx_model_predict(m, x, 2, y), TFX_EINVAL, "x[5] (sample 0) is not finite (NaN)");
    tfx_attribution *a = NULL;
    ERR(tfx_explain(m, x, 1, NULL, &a), TFX_EINVAL, "x[5] (sample 0) is not finite (NaN)");
    assert_null(a);
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

/* Issue 16: every entry point taking input images refuses a NaN or an Inf at the very last
 * element (the scan covers all of x, not a prefix), naming the index and the image. */
enum { NF_PREDICT, NF_EXPLAIN, NF_ACTIVATIONS, NF_VANILLA, NF_GRAD_INPUTS, NF_OCCLUSION, NF_GRAD_CAM,
       NF_SMOOTH_GRAD, NF_IG, NF_DELETION, NF_SANITY, NF_CALLBACK, NF_CALLBACK_IG, NF_COUNT };

static int nonfinite_call(int which, tfx_model *m, const float *x, const tfx_attribution *a0)
{
    float out[2 * 3];
    tfx_image *img = NULL;
    tfx_attribution *a = NULL;
    tfx_explainer_callback *cb = NULL;
    double del[2], rho[4];
    size_t count;
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    int rc;
    switch (which) {
    case NF_PREDICT: rc = tfx_model_predict(m, x, 2, out); break;
    case NF_EXPLAIN:
        eo.method = TFX_METHOD_GRAD_CAM;
        rc = tfx_explain(m, x, 2, &eo, &a);
        break;
    case NF_ACTIVATIONS: rc = tfx_extract_activations(m, x, 2, "c1", NULL, &img); break;
    case NF_VANILLA: rc = tfx_vanilla_gradients(m, x, 2, -1, NULL, &img); break;
    case NF_GRAD_INPUTS: rc = tfx_gradients_inputs(m, x, 2, -1, NULL, &img); break;
    case NF_OCCLUSION: rc = tfx_occlusion_sensitivity(m, x, 2, -1, NULL, &img); break;
    case NF_GRAD_CAM: rc = tfx_grad_cam(m, x, 2, -1, NULL, &img); break;
    case NF_SMOOTH_GRAD: rc = tfx_smooth_grad(m, x, 2, -1, NULL, &img); break;
    case NF_IG: rc = tfx_integrated_gradients(m, x, 2, -1, NULL, &img); break;
    case NF_DELETION: rc = tfx_deletion_insertion(m, x, 2, a0, NULL, del, del); break;
    case NF_SANITY: rc = tfx_sanity_check(m, x, 2, NULL, TFX_RANK_SUM, 1, rho, 4, &count); break;
    case NF_CALLBACK:
        rc = tfx_explainer_callback_new(&cb, m, TFX_METHOD_VANILLA_GRADIENTS, x, 2, -1, NULL,
                                        "/dev/null/tfx-run", NULL, NULL);
        break;
    default: rc = tfx_integrated_gradients_callback_new(&cb, m, x, 2, -1, "/dev/null/tfx-run", NULL, NULL);
    }
    if (rc) {
        assert_null(img);
        assert_null(a);
        assert_null(cb);
    }
    tfx_image_free(img);
    tfx_attribution_free(a);
    tfx_explainer_callback_free(cb);
    return rc;
}

static void test_nonfinite_everywhere(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(tfx_model_new(&m, 4, 4, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    c.name = "c1";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    OK(tfx_model_add_dense(m, &d, NULL));
    float x[2 * 16];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 32.0f;
    tfx_attribution *a0 = NULL;
    OK(tfx_explain(m, x, 2, NULL, &a0));
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    static const char *const names[] = {"(NaN)", "(+Inf)", "(-Inf)"};
    for (int which = 0; which < NF_COUNT; which++) {
        for (int b = 0; b < 3; b++) {
            x[31] = bad[b];
            int rc = nonfinite_call(which, m, x, a0);
            const char *msg = tfx_error_last()->message;
            if (rc != TFX_EINVAL || !strstr(msg, "x[31] (sample 1) is not finite") || !strstr(msg, names[b]))
                fail_msg("entry %d, x[31] = %g: %d \"%s\"", which, (double)bad[b], rc, msg);
        }
        x[31] = 31.0f / 32.0f;
        assert_int_equal(nonfinite_call(which, m, x, a0) == TFX_EINVAL, 0); /* the clean input passes the scan */
    }
    tfx_attribution_free(a0);
    tfx_model_free(m);
}

/* Issue 16: work-multiplying options above their documented caps are refused at once (INT_MAX
 * steps or samples ran for days); at the cap they run. alarm: a hang fails the test. */
static void test_explain_caps(void **state)
{
    (void)state;
    alarm(60);
    tfx_model *m = small(NULL);
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i / 16.0f;
    tfx_attribution *a = NULL;
    tfx_image *img = NULL;
    static const int big[] = {INT_MAX, TFX_EXPLAIN_MAX_STEPS + 1};
    for (int k = 0; k < 2; k++) {
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
        o.steps = big[k];
        ERR(tfx_explain(m, x, 1, &o, &a), TFX_EINVAL, "above the cap TFX_EXPLAIN_MAX_STEPS = 100000");
        ERR(tfx_integrated_gradients(m, x, 1, -1, &o, &img), TFX_EINVAL, "TFX_EXPLAIN_MAX_STEPS");
        static const int tunnels[] = {TFX_METHOD_SMOOTH_GRAD, TFX_METHOD_GUIDED_SMOOTH_GRAD, TFX_METHOD_NOISE_TUNNEL};
        for (int t = 0; t < 3; t++) {
            tfx_explain_options s = TFX_EXPLAIN_OPTIONS_INIT;
            s.method = tunnels[t];
            s.samples = big[k];
            ERR(tfx_explain(m, x, 1, &s, &a), TFX_EINVAL, "above the cap TFX_EXPLAIN_MAX_SAMPLES = 100000");
        }
        tfx_explain_options s = TFX_EXPLAIN_OPTIONS_INIT;
        s.samples = big[k];
        ERR(tfx_smooth_grad(m, x, 1, -1, &s, &img), TFX_EINVAL, "TFX_EXPLAIN_MAX_SAMPLES");
        tfx_explainer_callback *cb = NULL;
        ERR(tfx_smooth_grad_callback_new(&cb, m, x, 1, -1, "/dev/null/tfx-run", &s, NULL), TFX_EINVAL,
            "TFX_EXPLAIN_MAX_SAMPLES");
        assert_null(a);
        assert_null(img);
        assert_null(cb);
    }
    /* the caps themselves are allowed */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
    o.steps = TFX_EXPLAIN_MAX_STEPS;
    OK(tfx_explain(m, x, 1, &o, &a));
    tfx_attribution_free(a);
    o.method = TFX_METHOD_SMOOTH_GRAD;
    o.samples = TFX_EXPLAIN_MAX_SAMPLES;
    OK(tfx_explain(m, x, 1, &o, &a));
    tfx_attribution_free(a);
    tfx_model_free(m);
    alarm(0);
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
        cmocka_unit_test(test_nonfinite_everywhere),
        cmocka_unit_test(test_explain_caps),
        cmocka_unit_test(test_zero_sized),
        cmocka_unit_test(test_huge_dimensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
