/* Real files written by other tools (../shared/fixtures/onnx, see its README): the ONNX Model
 * Zoo's mnist-8 (CNTK) reproduces its three shipped output sets, the PyTorch 1.7 MNIST export
 * predicts what a numpy forward over its weights computes (gen_onnx_fixture_ref.py), and the
 * "light" architectures either reproduce their expected output for np.arange(n) / n or are
 * refused naming the operator. The large light models run in test_onnx_light (slow suite). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture_ref.h"
#include "onnx_test_util.h"




static void test_mnist8(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx(&m, FIX "mnist_8/model.onnx", NULL);
    if (rc) fail_msg("%s", tfx_error_last()->message);
    for (int set = 0; set < 3; set++) {
        char in[512], out[512];
        snprintf(in, sizeof in, FIX "mnist_8/test_data_set_%d/input_0.pb", set);
        snprintf(out, sizeof out, FIX "mnist_8/test_data_set_%d/output_0.pb", set);
        size_t nx, ny;
        int64_t dx[8], dy[8];
        int rx, ry;
        float *x = util_read_pb(in, &nx, dx, &rx), *want = util_read_pb(out, &ny, dy, &ry);
        assert_non_null(x);
        assert_non_null(want);
        assert_int_equal(rx, 4);
        assert_int_equal(ny, 10);
        float xh[784], y[10];
        assert_int_equal(tfx_tensor_nchw_to_nhwc(x, xh, 1, 1, 28, 28), TFX_OK);
        assert_int_equal(tfx_model_predict(m, xh, 1, y), TFX_OK);
        double e = util_rel_err(y, want, 10);
        print_message("mnist-8 set %d: max error %.2e of the largest output\n", set, e);
        assert_true(e <= TOL);
        free(x);
        free(want);
    }
    /* names: the CNTK node names and their output tensors */
    assert_non_null(tfx_model_find_layer(m, "Convolution28"));
    assert_ptr_equal(tfx_model_find_layer(m, "Convolution28"), tfx_model_find_layer(m, "ReLU32_Output_0"));
    assert_ptr_equal(tfx_model_find_layer(m, "Times212"), tfx_model_find_layer(m, "Plus214_Output_0"));
    /* a chain: saved as a libtfx model file and loaded back, same predictions and layer names */
    size_t size = 0;
    assert_int_equal(tfx_model_save_to_memory(m, NULL, NULL, 0, &size), TFX_OK);
    void *buf = malloc(size);
    assert_int_equal(tfx_model_save_to_memory(m, NULL, buf, size, &size), TFX_OK);
    tfx_model *back = NULL;
    assert_int_equal(tfx_model_load_from_memory(&back, buf, size), TFX_OK);
    free(buf);
    float xh[784], y1[10], y2[10];
    for (int i = 0; i < 784; i++) xh[i] = (float)(i % 29) / 29.0f;
    assert_int_equal(tfx_model_predict(m, xh, 1, y1), TFX_OK);
    assert_int_equal(tfx_model_predict(back, xh, 1, y2), TFX_OK);
    assert_memory_equal(y1, y2, sizeof y1);
    assert_non_null(tfx_model_find_layer(back, "Convolution28"));
    tfx_model_free(back);
    tfx_model_free(m);
}

static void test_torch17(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx(&m, FIX "mnist_simplified_torch17.onnx", NULL);
    if (rc) fail_msg("%s", tfx_error_last()->message);
    float x[196], y[10];
    for (int i = 0; i < 196; i++) x[i] = (float)i / 196.0f; /* one channel: NCHW = NHWC */
    assert_int_equal(tfx_model_predict(m, x, 1, y), TFX_OK);
    double e1 = util_rel_err(y, torch17_arange_output, 10);
    assert_int_equal(tfx_model_predict(m, torch17_random_input, 1, y), TFX_OK);
    double e2 = util_rel_err(y, torch17_random_output, 10);
    print_message("PyTorch 1.7 MNIST: max error %.2e, %.2e of the largest output\n", e1, e2);
    assert_true(e1 <= TOL && e2 <= TOL);
    tfx_model_free(m);
}

static void test_light(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    /* squeezenet's logits reach ~1e6 with equal expected probabilities (the light models' weights
     * are constants), so its softmax amplifies rounding: valgrind's emulated fused multiply-adds
     * round differently and move it by 15x the tolerance. Its numbers are checked natively. */
    const char *vg = getenv("RUNNING_VALGRIND");
    if (!(vg && *vg && strcmp(vg, "0") != 0)) light_check("squeezenet", NULL);
    light_check("bvlc_alexnet", "(LRN)");
    light_check("zfnet512", "(LRN)");
    light_check("inception_v1", "(LRN)");
    light_check("shufflenet", "(Reshape)"); /* channel shuffle: a rank-5 reshape and a transpose */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mnist8),
        cmocka_unit_test(test_torch17),
        cmocka_unit_test(test_light),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
