/* Hostile and unsupported ONNX files: each refused with a clear TFX_E* code and a message
 * naming the field or the node (and its operator), nothing leaked (run under ASan/valgrind by
 * the test setups); single-node models becoming one-layer libtfx models; the NHWC input of
 * keras2onnx-style files; allocation failures at every step of a load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "onnx_builder.h"
#include "onnx_test_util.h"
#include "support/testing.h"

static const int64_t X4[4] = {-1, 3, 8, 8};
static float wconv[4 * 3 * 3 * 3];

static void expect(pmsg *file, int code, const char *part1, const char *part2)
{
    tfx_model *m = (tfx_model *)1;
    int rc = tfx_model_load_onnx_from_memory(&m, file->p, file->n, NULL);
    const char *msg = tfx_error_last()->message;
    if (rc != code || (part1 && !strstr(msg, part1)) || (part2 && !strstr(msg, part2)))
        fail_msg("rc %d (want %d), message '%s' (want '%s', '%s')", rc, code, msg, part1, part2 ? part2 : "");
    assert_null(m);
    free(file->p);
}

/* input x [N,3,8,8] -> Conv c1 (W [4,3,3,3], pads 1) -> Relu r1 -> y */
static pmsg conv_relu_graph(void)
{
    pmsg g = {0}, t = {0}, at = {0};
    static const int64_t wd[4] = {4, 3, 3, 3}, pads[4] = {1, 1, 1, 1};
    for (int i = 0; i < 108; i++) wconv[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    pm_tensor(&t, "W", 4, wd, wconv, 108);
    pm_msg(&g, 5, &t);
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_attr_ints(&at, "pads", pads, 4);
    const char *ci[] = {"x", "W"}, *co[] = {"c"}, *ro[] = {"y"};
    pm_node(&g, "Conv", "c1", ci, 2, co, 1, &at);
    pm_node(&g, "Relu", "r1", co, 1, ro, 1, NULL);
    static const int64_t yd[4] = {-1, 4, 8, 8};
    pm_value_info(&g, 12, "y", 1, 4, yd);
    return g;
}

static void test_valid_base(void **state)
{
    (void)state;
    pmsg g = conv_relu_graph(), f = pm_model(&g, 13);
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL), TFX_OK);
    assert_int_equal(tfx_model_layer_count(m), 1); /* Conv + Relu fused */
    assert_ptr_equal(tfx_model_find_layer(m, "c1"), tfx_model_find_layer(m, "y"));
    tfx_model_free(m);
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.fuse = 0;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, &o), TFX_OK);
    assert_int_equal(tfx_model_layer_count(m), 2);
    assert_int_equal(tfx_layer_get_kind(tfx_model_find_layer(m, "r1")), TFX_LAYER_ACTIVATION);
    assert_ptr_equal(tfx_model_find_layer(m, "c1"), tfx_model_find_layer(m, "c"));
    tfx_model_free(m);
    /* every truncation: refused as malformed, nothing else */
    for (size_t cut = 0; cut < f.n; cut++) {
        int rc = tfx_model_load_onnx_from_memory(&m, f.p, cut, NULL);
        if (rc != TFX_EFORMAT) fail_msg("cut at %zu: rc %d: %s", cut, rc, tfx_error_last()->message);
        assert_null(m);
    }
    /* every single byte changed: refused with a code or loaded, never a crash */
    for (size_t i = 0; i < f.n; i++) {
        uint8_t keep = f.p[i];
        f.p[i] ^= 0x5a;
        int rc = tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL);
        assert_true(rc == TFX_OK || rc == TFX_EFORMAT || rc == TFX_ENOTSUP || rc == TFX_ESHAPE || rc == TFX_EINVAL);
        if (rc) assert_true(tfx_error_last()->message[0] != '\0');
        tfx_model_free(m);
        f.p[i] = keep;
    }
    /* allocation failures at every step: TFX_ENOMEM, nothing leaked */
    for (long k = 1;; k++) {
        tfx__alloc_fail_after(k);
        int rc = tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) {
            tfx_model_free(m);
            break;
        }
        assert_int_equal(rc, TFX_ENOMEM);
        assert_null(m);
    }
    free(f.p);
    /* arguments */
    assert_int_equal(tfx_model_load_onnx_from_memory(NULL, "", 0, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, NULL, 4, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_load_onnx(&m, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_load_onnx(&m, "/nonexistent/model.onnx", NULL), TFX_EIO);
    tfx_onnx_options bad = TFX_ONNX_OPTIONS_INIT;
    bad.version = 99;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, "", 0, &bad), TFX_EVERSION);
}

static void test_lying_length(void **state)
{
    (void)state;
    pmsg f = {0};
    pm_int(&f, 1, 7);
    pm_varint(&f, 7 << 3 | 2); /* graph of 4000 bytes, 3 given */
    pm_varint(&f, 4000);
    pm_raw(&f, "abc", 3);
    expect(&f, TFX_EFORMAT, "length 4000 beyond the 3 bytes left", NULL);
    /* inside a node: the path names it */
    pmsg g = conv_relu_graph(), nd = {0};
    pm_varint(&nd, 1 << 3 | 2);
    pm_varint(&nd, 99);
    pm_msg(&g, 1, &nd);
    f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "graph.node[2] field 1: length 99", NULL);
    f = (pmsg){0};
    pm_raw(&f, "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11); /* an 11-byte varint length */
    expect(&f, TFX_EFORMAT, "varint", NULL);
    f = (pmsg){0};
    pm_raw(&f, "\x0b", 1); /* a group */
    expect(&f, TFX_EFORMAT, "group", NULL);
    f = (pmsg){0};
    pm_int(&f, 1, 7);
    expect(&f, TFX_EFORMAT, "no graph", NULL);
}

static void test_graph_errors(void **state)
{
    (void)state;
    /* a cycle: a -> b -> a between the input and the output */
    pmsg g = {0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    const char *i1[] = {"x", "b"}, *o1[] = {"a"}, *i2[] = {"a"}, *o2[] = {"b"}, *o3[] = {"y"};
    pm_node(&g, "Add", "first", i1, 2, o1, 1, NULL);
    pm_node(&g, "Relu", "second", i2, 1, o2, 1, NULL);
    pm_node(&g, "Relu", "last", o2, 1, o3, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    pmsg f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "cycle through node", NULL);
    /* a dangling input */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    const char *di[] = {"ghost"};
    pm_node(&g, "Relu", "r", di, 1, o3, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "node 'r' (Relu) reads 'ghost'", NULL);
    /* two producers of one name */
    g = conv_relu_graph();
    const char *xi[] = {"x"}, *ci[] = {"c"};
    pm_node(&g, "Relu", "dup", xi, 1, ci, 1, NULL);
    f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "'c'", "already gives");
    /* an empty graph */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_value_info(&g, 12, "x", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "no node", NULL);
    /* an opset out of range; an operator whose semantics changed at opset 7 */
    g = conv_relu_graph();
    f = pm_model(&g, 18);
    expect(&f, TFX_ENOTSUP, "opset 18", NULL);
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    const char *ai[] = {"x", "x"}, *ao[] = {"y"};
    pm_node(&g, "Add", "old_add", ai, 2, ao, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 6);
    expect(&f, TFX_ENOTSUP, "node 'old_add' (Add): opset 6", NULL);
}

static void test_tensors(void **state)
{
    (void)state;
    static const int64_t wd[4] = {4, 3, 3, 3};
    /* raw_data shorter than its dims */
    pmsg g = {0}, t = {0};
    pm_tensor(&t, "W", 4, wd, wconv, 100);
    pm_msg(&g, 5, &t);
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pmsg f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "raw_data of 400 bytes for 108 elements", "graph.initializer[0]");
    /* negative and huge dims */
    static const int64_t neg[2] = {4, -3}, huge[3] = {1 << 20, 1 << 20, 1 << 20};
    g = (pmsg){0}, t = (pmsg){0};
    pm_tensor(&t, "W", 2, neg, wconv, 0);
    pm_msg(&g, 5, &t);
    f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "dimension 1 of -3", NULL);
    g = (pmsg){0}, t = (pmsg){0};
    pm_tensor(&t, "W", 3, huge, wconv, 0);
    pm_msg(&g, 5, &t);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "more than 2^31 elements", NULL);
    /* a ValueInfo dimension of -5 */
    g = (pmsg){0};
    pmsg vi = {0}, type = {0}, tt = {0}, shape = {0}, d = {0};
    pm_str(&vi, 1, "x");
    pm_int(&tt, 1, 1);
    pm_int(&d, 1, -5);
    pm_msg(&shape, 1, &d);
    pm_msg(&tt, 2, &shape);
    pm_msg(&type, 1, &tt);
    pm_msg(&vi, 2, &type);
    pm_msg(&g, 11, &vi);
    f = pm_model(&g, 13);
    expect(&f, TFX_EFORMAT, "dimension 0 of -5", NULL);
    /* external data: refused by name, the file never opened */
    g = conv_relu_graph();
    pmsg graph2 = {0}, ext = {0}, kv = {0};
    pm_int(&ext, 1, 4), pm_int(&ext, 1, 3), pm_int(&ext, 2, 1);
    pm_str(&ext, 8, "B");
    pm_str(&kv, 1, "location");
    pm_str(&kv, 2, "/etc/passwd");
    pm_msg(&ext, 13, &kv);
    pm_int(&ext, 14, 1);
    pm_msg(&graph2, 5, &ext);
    /* Conv reads B as its bias: rebuild the graph with a third input */
    free(g.p);
    g = graph2;
    pmsg t2 = {0}, at = {0};
    pm_tensor(&t2, "W", 4, wd, wconv, 108);
    pm_msg(&g, 5, &t2);
    pm_value_info(&g, 11, "x", 1, 4, X4);
    const char *ci[] = {"x", "W", "B"}, *co[] = {"y"};
    pm_node(&g, "Conv", "conv_ext", ci, 3, co, 1, &at);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "node 'conv_ext' (Conv)", "external file");
    /* a Conv weight that does not match the input's channels */
    static const int64_t wbad[4] = {4, 2, 3, 3};
    g = (pmsg){0}, t = (pmsg){0};
    pm_tensor(&t, "W", 4, wbad, wconv, 72);
    pm_msg(&g, 5, &t);
    pm_value_info(&g, 11, "x", 1, 4, X4);
    const char *bi[] = {"x", "W"};
    pm_node(&g, "Conv", "conv_bad", bi, 2, co, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ESHAPE, "node 'conv_bad' (Conv)", "input of 3 channels");
}

static void test_unsupported(void **state)
{
    (void)state;
    const char *xi[] = {"x"}, *yo[] = {"y"};
    /* an unknown operator: named with its node */
    pmsg g = {0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_node(&g, "LRN", "norm1", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    pmsg f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "node 'norm1' (LRN)", "not supported");
    /* a non-float input */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 7, 4, X4);
    pm_node(&g, "Relu", "r", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "element type 7", NULL);
    /* symbolic height without options */
    static const int64_t sym[4] = {-1, 3, -1, 8};
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, sym);
    pm_node(&g, "Relu", "r", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, sym);
    f = pm_model(&g, 13);
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL), TFX_ENOTSUP);
    assert_non_null(strstr(tfx_error_last()->message, "input_height"));
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.input_height = 5;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, &o), TFX_OK);
    int s[3];
    tfx_model_input_shape(m, s);
    assert_true(s[0] == 5 && s[1] == 8 && s[2] == 3);
    tfx_model_free(m);
    free(f.p);
    /* HardSigmoid with tf.keras's alpha 0.2 */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_node(&g, "HardSigmoid", "hs", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "node 'hs' (HardSigmoid)", "alpha 0.2");
    /* two graph inputs (an Add of two inputs) */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_value_info(&g, 11, "x2", 1, 4, X4);
    const char *ai[] = {"x", "x2"};
    pm_node(&g, "Add", "sum", ai, 2, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "2 inputs", NULL);
    /* a MaxPool with ceil_mode */
    g = (pmsg){0};
    pmsg at = {0};
    static const int64_t k2[2] = {2, 2};
    pm_attr_ints(&at, "kernel_shape", k2, 2);
    pm_attr_int(&at, "ceil_mode", 1);
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_node(&g, "MaxPool", "pool", xi, 1, yo, 1, &at);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "node 'pool' (MaxPool)", "ceil_mode");
    /* a domain other than ONNX's */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pmsg nd = {0};
    pm_str(&nd, 1, "x"), pm_str(&nd, 2, "y"), pm_str(&nd, 3, "custom"), pm_str(&nd, 4, "Relu");
    pm_str(&nd, 7, "com.microsoft");
    pm_msg(&g, 1, &nd);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "node 'custom' (Relu)", "com.microsoft");
}

static void test_single_nodes(void **state)
{
    (void)state;
    const char *xi[] = {"x"}, *yo[] = {"y"};
    /* a lone Relu: one Activation layer named after the node */
    pmsg g = {0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_node(&g, "Relu", "only", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    pmsg f = pm_model(&g, 13);
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL), TFX_OK);
    assert_int_equal(tfx_model_layer_count(m), 1);
    assert_int_equal(tfx_layer_get_kind(tfx_model_layer(m, 0)), TFX_LAYER_ACTIVATION);
    assert_string_equal(tfx_layer_name(tfx_model_layer(m, 0)), "only");
    float x[192], y[192];
    for (int i = 0; i < 192; i++) x[i] = (float)i - 96.0f;
    assert_int_equal(tfx_model_predict(m, x, 1, y), TFX_OK);
    for (int i = 0; i < 192; i++) assert_true(y[i] == (x[i] > 0 ? x[i] : 0.0f));
    tfx_model_free(m);
    free(f.p);
    /* an Identity alone computes nothing: refused */
    g = (pmsg){0};
    pm_value_info(&g, 11, "x", 1, 4, X4);
    pm_node(&g, "Identity", "id", xi, 1, yo, 1, NULL);
    pm_value_info(&g, 12, "y", 1, 4, X4);
    f = pm_model(&g, 13);
    expect(&f, TFX_ENOTSUP, "computed by no layer", NULL);
    /* keras2onnx style: NHWC input, Transpose to NCHW, Conv, Transpose back */
    static const int64_t nhwc[4] = {-1, 8, 8, 3}, wd[4] = {4, 3, 3, 3}, pads[4] = {1, 1, 1, 1}, p1[4] = {0, 3, 1, 2},
                         p2[4] = {0, 2, 3, 1};
    g = (pmsg){0};
    pmsg t = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    pm_tensor(&t, "W", 4, wd, wconv, 108);
    pm_msg(&g, 5, &t);
    pm_value_info(&g, 11, "x", 1, 4, nhwc);
    pm_attr_ints(&a1, "perm", p1, 4);
    pm_attr_ints(&a2, "pads", pads, 4);
    pm_attr_ints(&a3, "perm", p2, 4);
    const char *t1[] = {"xt"}, *ci[] = {"xt", "W"}, *co[] = {"c"};
    pm_node(&g, "Transpose", "to_nchw", xi, 1, t1, 1, &a1);
    pm_node(&g, "Conv", "conv", ci, 2, co, 1, &a2);
    pm_node(&g, "Transpose", "to_nhwc", co, 1, yo, 1, &a3);
    static const int64_t yd[4] = {-1, 8, 8, 4};
    pm_value_info(&g, 12, "y", 1, 4, yd);
    f = pm_model(&g, 13);
    assert_int_equal(tfx_model_load_onnx_from_memory(&m, f.p, f.n, NULL), TFX_OK);
    assert_int_equal(tfx_model_layer_count(m), 1);
    int s[3];
    tfx_model_input_shape(m, s);
    assert_true(s[0] == 8 && s[1] == 8 && s[2] == 3);
    assert_ptr_equal(tfx_model_find_layer(m, "conv"), tfx_model_find_layer(m, "y"));
    /* the conv itself: a pixel's output against a direct sum */
    for (int i = 0; i < 192; i++) x[i] = (float)((i * 7) % 13) / 13.0f;
    float out[256];
    assert_int_equal(tfx_model_predict(m, x, 1, out), TFX_OK);
    for (int o = 0; o < 4; o++) {
        double ref = 0; /* output (3, 4): rows 2..4, cols 3..5 */
        for (int ci2 = 0; ci2 < 3; ci2++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    ref += wconv[((o * 3 + ci2) * 3 + ky) * 3 + kx] * x[((2 + ky) * 8 + 3 + kx) * 3 + ci2];
        assert_true(fabs(out[(3 * 8 + 4) * 4 + o] - ref) < 1e-5);
    }
    tfx_model_free(m);
    free(f.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_base),  cmocka_unit_test(test_lying_length), cmocka_unit_test(test_graph_errors),
        cmocka_unit_test(test_tensors),     cmocka_unit_test(test_unsupported),  cmocka_unit_test(test_single_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
