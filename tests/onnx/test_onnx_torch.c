/* The PyTorch oracle: small variants of torchvision's resnet18 and mobilenet_v2 exported by
 * torch.onnx.export (opset 13; once with the BatchNorms kept), loaded by libtfx and compared with
 * torch autograd in float64 (tests/onnx/gen_onnx_torch.py wrote the files): predictions,
 * vanilla gradients, Grad-CAM at layer4's output (found by its ONNX tensor name) and integrated
 * gradients, each within 1e-4 of the largest reference value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "onnx_test_util.h"

#define DATA TFX_SOURCE_ROOT "/tests/onnx/data/"
#define TOL 1e-4

typedef struct golden {
    int n, h, w, c, k, ch, cw;
    float *x, *logits, *grads, *cam, *ig;
    int *cls;
    unsigned char *buf;
} golden;

static void load_golden(const char *path, golden *g)
{
    size_t len;
    g->buf = util_read_file(path, &len);
    assert_non_null(g->buf);
    int32_t hd[7];
    memcpy(hd, g->buf, sizeof hd);
    g->n = hd[0], g->h = hd[1], g->w = hd[2], g->c = hd[3], g->k = hd[4], g->ch = hd[5], g->cw = hd[6];
    size_t in = (size_t)g->n * g->h * g->w * g->c, off = sizeof hd;
    float *f = (float *)(g->buf + off); /* the file is 4-byte aligned throughout */
    g->x = f;
    g->logits = g->x + in;
    g->cls = (int *)(g->logits + (size_t)g->n * g->k);
    g->grads = (float *)(g->cls + g->n);
    g->cam = g->grads + in;
    g->ig = g->cam + (size_t)g->n * g->ch * g->cw;
    assert_true(off + sizeof(float) * (3 * in + (size_t)g->n * g->k + (size_t)g->n * g->ch * g->cw) +
                    sizeof(int) * g->n <= len);
}

static void check(const char *what, const float *got, const float *want, size_t n)
{
    double e = util_rel_err(got, want, n);
    print_message("  %-22s max error %.2e of the largest value\n", what, e);
    assert_true(e <= TOL);
}

static void explain_check(tfx_model *m, const golden *g, int method, const char *layer, const float *want,
                          const char *what)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    o.steps = 16;
    o.layer_name = layer;
    tfx_attribution *a = NULL;
    int rc = tfx_explain(m, g->x, (size_t)g->n, &o, &a);
    if (rc) fail_msg("%s: %s", what, tfx_error_last()->message);
    int s[3];
    assert_int_equal(tfx_attribution_shape(a, s), TFX_OK);
    size_t per = (size_t)s[0] * s[1] * s[2];
    float *all = malloc(per * g->n * sizeof *all);
    for (int i = 0; i < g->n; i++) {
        assert_int_equal(tfx_attribution_class_index(a, (size_t)i), g->cls[i]);
        memcpy(all + per * i, tfx_attribution_data(a, (size_t)i), per * sizeof *all);
    }
    check(what, all, want, per * g->n);
    free(all);
    tfx_attribution_free(a);
}

static void run_model(const char *onnx, const char *gold, int fuse, const char *cam_layer)
{
    golden g;
    load_golden(gold, &g);
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.fuse = fuse;
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx(&m, onnx, &o);
    if (rc) fail_msg("%s: %s", onnx, tfx_error_last()->message);
    print_message("%s (fuse %d): %zu layers\n", onnx, fuse, tfx_model_layer_count(m));
    int s[3];
    tfx_model_input_shape(m, s);
    assert_true(s[0] == g.h && s[1] == g.w && s[2] == g.c);
    float *y = malloc((size_t)g.n * g.k * sizeof *y);
    assert_int_equal(tfx_model_predict(m, g.x, (size_t)g.n, y), TFX_OK);
    check("predictions", y, g.logits, (size_t)g.n * g.k);
    free(y);
    explain_check(m, &g, TFX_METHOD_VANILLA_GRADIENTS, NULL, g.grads, "vanilla gradients");
    explain_check(m, &g, TFX_METHOD_INTEGRATED_GRADIENTS, NULL, g.ig, "integrated gradients");
    if (cam_layer) {
        explain_check(m, &g, TFX_METHOD_GRAD_CAM, cam_layer, g.cam, "Grad-CAM (layer4)");
        /* the node's name and its output tensor's name select the same layer */
        tfx_layer *a = tfx_model_find_layer(m, "/layer4/layer4.1/relu_1/Relu");
        assert_non_null(a);
        assert_ptr_equal(a, tfx_model_find_layer(m, cam_layer));
        assert_int_equal(tfx_layer_get_kind(a), TFX_LAYER_ACTIVATION);
    }
    tfx_model_free(m);
    free(g.buf);
}

static void test_resnet(void **state)
{
    (void)state;
    run_model(DATA "resnet_small.onnx", DATA "resnet_small_golden.bin", 1, "/layer4/layer4.1/relu_1/Relu_output_0");
}

static void test_resnet_bn_fused(void **state)
{
    (void)state;
    run_model(DATA "resnet_small_bn.onnx", DATA "resnet_small_golden.bin", 1,
              "/layer4/layer4.1/relu_1/Relu_output_0");
}

static void test_resnet_bn_layers(void **state)
{
    (void)state;
    run_model(DATA "resnet_small_bn.onnx", DATA "resnet_small_golden.bin", 0,
              "/layer4/layer4.1/relu_1/Relu_output_0");
    /* fuse 0: one layer per node, BatchNormalization layers with the file's epsilon */
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.fuse = 0;
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_load_onnx(&m, DATA "resnet_small_bn.onnx", &o), TFX_OK);
    tfx_layer *bn = tfx_model_find_layer(m, "/bn1/BatchNormalization");
    assert_non_null(bn);
    assert_int_equal(tfx_layer_get_kind(bn), TFX_LAYER_BATCH_NORMALIZATION);
    assert_non_null(tfx_model_find_layer(m, "/conv1/Conv_output_0")); /* computed when not fused */
    tfx_model_free(m);
    /* fused: the conv's output is not computed any more, so that name finds nothing */
    assert_int_equal(tfx_model_load_onnx(&m, DATA "resnet_small_bn.onnx", NULL), TFX_OK);
    assert_null(tfx_model_find_layer(m, "/conv1/Conv_output_0"));
    tfx_layer *conv = tfx_model_find_layer(m, "/conv1/Conv");
    assert_non_null(conv);
    assert_ptr_equal(conv, tfx_model_find_layer(m, "/relu/Relu_output_0")); /* Conv+BN+Relu */
    tfx_model_free(m);
}

static void test_mobilenet(void **state)
{
    (void)state;
    run_model(DATA "mobilenet_small.onnx", DATA "mobilenet_small_golden.bin", 1, NULL);
    run_model(DATA "mobilenet_small.onnx", DATA "mobilenet_small_golden.bin", 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet),
        cmocka_unit_test(test_resnet_bn_fused),
        cmocka_unit_test(test_resnet_bn_layers),
        cmocka_unit_test(test_mobilenet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
