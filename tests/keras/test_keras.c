/* Keras import (issue 19): the real Keras 2.6 MNIST CNN against a numpy forward pass over its
 * weights, our own Keras 2 (.h5) and Keras 3 (.keras) files (graph, BatchNormalization, the seed
 * model with "visualization_layer"), explanations on imported models, and refusals: bad files,
 * hostile configs through the JSON builder, options, allocation failures. Reference data:
 * tests/keras/gen_keras_reference.py (docs/keras.md says which files are real Keras output). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/golden_file.h"
#include "../support/testing.h"
#include "keras/keras_internal.h"
#include "tfx/tfx.h"

static char path_buf[1024];
static const char *src_path(const char *rel)
{
    const char *root = getenv("TFX_SOURCE_ROOT");
    snprintf(path_buf, sizeof path_buf, "%s/%s", root ? root : TFX_SOURCE_ROOT, rel);
    return path_buf;
}

/* gen_keras_reference.py's hash_image. */
static void hash_image(int k, float *x, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i * 2654435761u + (uint32_t)k * 40503u + 12345u;
        v ^= v >> 13;
        v *= 0x5bd1e995u;
        v ^= v >> 15;
        x[i] = ((v >> 8) & 3) == 0 ? (float)(v >> 24) / 255.0f : 0.0f;
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

#define FIXTURE "../shared/fixtures/keras/mnist_cnn_keras.h5"

static tfx_model *load_or_skip_fixture(void)
{
    FILE *f = fopen(src_path(FIXTURE), "rb");
    if (!f) {
        print_message("fixture %s missing: skipped\n", FIXTURE);
        return NULL;
    }
    fclose(f);
    tfx_model *m = NULL;
    int rc = tfx_model_load_keras(&m, src_path(FIXTURE), NULL);
    if (rc) fail_msg("%d %s", rc, tfx_error_last()->message);
    return m;
}

static void test_fixture_predictions(void **state)
{
    (void)state;
    tfx_model *m = load_or_skip_fixture();
    if (!m) skip();
    int s[3];
    assert_int_equal(tfx_model_input_shape(m, s), 0);
    assert_true(s[0] == 28 && s[1] == 28 && s[2] == 1);
    assert_int_equal(tfx_model_layer_count(m), 7); /* the InputLayer is the model input */
    assert_int_equal(tfx_model_param_count(m), 34826);
    assert_non_null(tfx_model_find_layer(m, "dropout"));
    garr g[2];
    int n = golden_file_load("tests/keras/data/mnist_cnn_reference.bin", g, 2);
    const garr *ref = golden_file_find(g, n, "probs");
    const int N = ref->dims[0];
    assert_int_equal(N, 256);
    float *x = malloc((size_t)N * 784 * sizeof *x), *y = malloc((size_t)N * 10 * sizeof *y);
    for (int k = 0; k < N; k++) hash_image(k, x + (size_t)k * 784, 784);
    assert_int_equal(tfx_model_predict(m, x, (size_t)N, y), 0);
    double d = max_abs_diff(y, ref->data, (size_t)N * 10);
    print_message("mnist_cnn_keras.h5: %d inputs, max |libtfx - numpy| = %.3g\n", N, d);
    assert_true(d <= 1e-5);
    free(x);
    free(y);
    golden_file_free(g, n);
    tfx_model_free(m);
}

/* tf-explain's ExtractActivations on the first Conv2D: 32 maps of 26x26 in a 6x6 grid. */
static void test_fixture_activation_grid(void **state)
{
    (void)state;
    tfx_model *m = load_or_skip_fixture();
    if (!m) skip();
    float x[784];
    hash_image(3, x, 784);
    tfx_image *img = NULL;
    int rc = tfx_extract_activations(m, x, 1, "conv2d", NULL, &img);
    assert_int_equal(rc, 0);
    assert_int_equal(img->width, 6 * 26);
    assert_int_equal(img->height, 6 * 26);
    int lo = 255, hi = 0;
    for (int r = 0; r < img->height; r++)
        for (int c = 0; c < img->width * img->channels; c++) {
            int v = img->pixels[(size_t)r * (size_t)img->stride + (size_t)c];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    assert_true(hi - lo > 100); /* a picture, not a flat field */
    tfx_image_free(img);
    /* the raw maps are the layer's outputs */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_ACTIVATIONS;
    o.layer_name = "conv2d";
    tfx_attribution *a = NULL;
    assert_int_equal(tfx_explain(m, x, 1, &o, &a), 0);
    int sh[3];
    assert_int_equal(tfx_attribution_shape(a, sh), 0);
    assert_true(sh[0] == 26 && sh[1] == 26 && sh[2] == 32);
    tfx_attribution_free(a);
    tfx_model_free(m);
}

static tfx_model *load_ok(const char *rel, const tfx_keras_options *o)
{
    tfx_model *m = NULL;
    int rc = tfx_model_load_keras(&m, src_path(rel), o);
    if (rc) fail_msg("%s: %d %s", rel, rc, tfx_error_last()->message);
    return m;
}

static void check_outputs(tfx_model *m, const garr *x, const garr *ref)
{
    const size_t n = (size_t)x->dims[0], per_out = ref->count / n;
    float *xf = malloc(x->count * sizeof *xf), *y = malloc(ref->count * sizeof *y);
    memcpy(xf, x->data, x->count * sizeof *xf);
    assert_int_equal(tfx_model_predict(m, xf, n, y), 0);
    int s[3];
    tfx_model_output_shape(m, s);
    assert_int_equal((size_t)s[0] * s[1] * s[2], per_out);
    double d = max_abs_diff(y, ref->data, ref->count);
    print_message("%s: max |libtfx - numpy| = %.3g\n", ref->name, d);
    assert_true(d <= 1e-5);
    free(xf);
    free(y);
}

static void test_own_files(void **state)
{
    (void)state;
    garr g[8];
    int n = golden_file_load("tests/keras/data/keras_reference.bin", g, 8);
    /* Keras 2 functional graph */
    tfx_model *m = load_ok("tests/keras/data/graph_k2.h5", NULL);
    assert_int_equal(tfx_model_layer_count(m), 16);
    tfx_layer *add = tfx_model_find_layer(m, "add");
    assert_non_null(add);
    const tfx_layer *ins[4];
    size_t k = 0;
    assert_int_equal(tfx_layer_inputs(add, ins, 4, &k), 0);
    assert_int_equal(k, 2);
    assert_string_equal(tfx_layer_name(ins[0]), "c2");
    assert_string_equal(tfx_layer_name(ins[1]), "dw");
    assert_int_equal(tfx_layer_get_kind(tfx_model_find_layer(m, "bn")), TFX_LAYER_BATCH_NORMALIZATION);
    assert_int_equal(tfx_layer_get_kind(tfx_model_find_layer(m, "cat")), TFX_LAYER_CONCATENATE);
    assert_int_equal(tfx_layer_get_kind(tfx_model_find_layer(m, "mul")), TFX_LAYER_MULTIPLY);
    check_outputs(m, golden_file_find(g, n, "graph_x"), golden_file_find(g, n, "graph_k2"));
    /* Grad-CAM on the concatenation of an imported graph */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_GRAD_CAM;
    o.layer_name = "cat";
    tfx_attribution *a = NULL;
    float x[9 * 9 * 3];
    memcpy(x, golden_file_find(g, n, "graph_x")->data, sizeof x);
    assert_int_equal(tfx_explain(m, x, 1, &o, &a), 0);
    tfx_attribution_free(a);
    tfx_model_free(m);
    /* the same graph from a Keras 3 archive (hard_sigmoid with Keras 3's meaning, max pools) */
    m = load_ok("tests/keras/data/graph_k3.keras", NULL);
    assert_int_equal(tfx_model_layer_count(m), 17);
    check_outputs(m, golden_file_find(g, n, "graph_x"), golden_file_find(g, n, "graph_k3"));
    tfx_model_free(m);
    /* the tutorial's seed model: "visualization_layer" as tf-explain's layer_name */
    m = load_ok("tests/keras/data/seed_k2.h5", NULL);
    check_outputs(m, golden_file_find(g, n, "seed_x"), golden_file_find(g, n, "seed_k2"));
    tfx_layer *vis = tfx_model_find_layer(m, "visualization_layer");
    assert_non_null(vis);
    assert_string_equal(tfx_layer_type_name(vis), "Conv2D");
    float xs[8 * 8 * 3];
    memcpy(xs, golden_file_find(g, n, "seed_x")->data, sizeof xs);
    tfx_image *img = NULL;
    assert_int_equal(tfx_extract_activations(m, xs, 1, "visualization_layer", NULL, &img), 0);
    assert_int_equal(img->width, 4 * 4); /* 16 maps of 4x4: 4 columns */
    assert_int_equal(img->height, 4 * 4);
    tfx_image_free(img);
    tfx_model_free(m);
    golden_file_free(g, n);
}

typedef struct bad_case {
    const char *file;
    int code;
    const char *words[3];
} bad_case;

static void test_bad_files(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"tests/keras/data/bad/missing_weight.h5", TFX_EFORMAT, {"'dense' (Dense)", "weight 1 (bias) is missing", NULL}},
        {"tests/keras/data/bad/wrong_shape.h5", TFX_ESHAPE, {"'visualization_layer' (Conv2D)", "(3,)", "needs (2,)"}},
        {"tests/keras/data/bad/lambda.h5", TFX_ENOTSUP, {"'lambda' (Lambda)", "Python code", NULL}},
        {"tests/keras/data/bad/dynamic_hw.h5", TFX_ENOTSUP, {"'input_1' (InputLayer)", "height is not fixed", NULL}},
        {"tests/keras/data/bad/malformed_json.h5", TFX_EFORMAT, {"not valid JSON", "line 1", NULL}},
        {"tests/keras/data/bad/path_outside.keras", TFX_EFORMAT, {"'../../evil.txt'", "outside the archive", NULL}},
        {"tests/keras/data/bad/lying_size.keras", TFX_EFORMAT, {"'config.json'", "does not hold", NULL}},
        {"tests/keras/data/bad/bad_crc.keras", TFX_EFORMAT, {"'config.json'", "CRC", NULL}},
        {"tests/keras/data/keras_reference.bin", TFX_EFORMAT, {"neither an HDF5 file", NULL, NULL}},
        {"tests/keras/data/no_such_file.h5", TFX_EIO, {"cannot open", NULL, NULL}},
        {"tests/keras/data", TFX_EIO, {"not a regular file", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tfx_model *m = (tfx_model *)&m;
        int rc = tfx_model_load_keras(&m, src_path(cases[i].file), NULL);
        const char *msg = tfx_error_last()->message;
        print_message("%s: %d %s\n", cases[i].file, rc, msg);
        assert_int_equal(rc, cases[i].code);
        assert_null(m);
        assert_non_null(strstr(msg, "tfx_model_load_keras"));
        for (int w = 0; w < 3 && cases[i].words[w]; w++)
            if (!strstr(msg, cases[i].words[w])) fail_msg("%s: '%s' not in '%s'", cases[i].file, cases[i].words[w], msg);
    }
    /* the input size given where the file leaves it open */
    tfx_keras_options o = TFX_KERAS_OPTIONS_INIT;
    o.input_height = 4;
    o.input_width = 4;
    tfx_model *m = load_ok("tests/keras/data/bad/dynamic_hw.h5", &o);
    int s[3];
    tfx_model_input_shape(m, s);
    assert_true(s[0] == 4 && s[1] == 4 && s[2] == 1);
    tfx_model_free(m);
    /* and refused where the file fixes another */
    o.input_height = 5;
    m = NULL;
    assert_int_equal(tfx_model_load_keras(&m, src_path("tests/keras/data/seed_k2.h5"), &o), TFX_EINVAL);
    assert_null(m);
}

static void test_options(void **state)
{
    (void)state;
    tfx_keras_options o;
    memset(&o, 0xab, sizeof o);
    assert_int_equal(tfx_keras_options_init(&o, TFX_KERAS_OPTIONS_VERSION), 0);
    assert_int_equal(o.version, TFX_KERAS_OPTIONS_VERSION);
    assert_int_equal(o.input_height, 0);
    assert_int_equal(tfx_keras_options_init(&o, 0), TFX_EVERSION);
    assert_int_equal(tfx_keras_options_init(NULL, 1), TFX_EINVAL);
    tfx_model *m;
    assert_int_equal(tfx_model_load_keras(NULL, "x.h5", NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_load_keras(&m, NULL, NULL), TFX_EINVAL);
    assert_null(m);
    o.version = 99;
    assert_int_equal(tfx_model_load_keras(&m, "x.h5", &o), TFX_EVERSION);
    tfx_keras_options_init(&o, 1);
    o.input_width = -1;
    assert_int_equal(tfx_model_load_keras(&m, "x.h5", &o), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "input_width"));
}

/* Every allocation of a load failing in turn: ENOMEM or success, never a leak (ASan, valgrind). */
static void test_alloc_failures(void **state)
{
    (void)state;
    int ok = 0;
    for (long k = 1; k < 100000 && !ok; k++) {
        tfx_model *m = NULL;
        tfx__alloc_fail_after(k);
        int rc = tfx_model_load_keras(&m, src_path("tests/keras/data/graph_k3.keras"), NULL);
        tfx__alloc_fail_after(0);
        if (rc == 0) ok = 1, tfx_model_free(m);
        else if (rc != TFX_ENOMEM) fail_msg("allocation %ld: %d %s", k, rc, tfx_error_last()->message);
        else assert_null(m);
    }
    assert_true(ok);
}

/* ---- hostile configs through the JSON builder, with weights from memory ---- */

static int mem_read(void *ctx, const char *layer, size_t i, const char *what, const size_t *dims, int rank, float *dst)
{
    (void)ctx, (void)layer, (void)what;
    size_t n = 1;
    for (int r = 0; r < rank; r++) n *= dims[r];
    for (size_t j = 0; j < n; j++) dst[j] = 0.01f * (float)((j + i) % 7);
    return 0;
}

static int build(const char *json, int major, tfx_model **m)
{
    tfx__keras_weights w = {NULL, NULL, mem_read, 0};
    tfx_keras_options o = TFX_KERAS_OPTIONS_INIT;
    return tfx__keras_build(m, json, strlen(json), &w, major, &o);
}

#define IN(h, w, c) "{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_input_shape\":[null," #h "," #w "," #c "]}}"
#define SEQ(...) "{\"class_name\":\"Sequential\",\"config\":{\"name\":\"s\",\"layers\":[" __VA_ARGS__ "]}}"
#define CONVX(fields) "{\"class_name\":\"Conv2D\",\"config\":{\"name\":\"c\"" fields "}}"
#define CONV(extra) CONVX(",\"filters\":2,\"kernel_size\":[3,3]" extra)

static void test_configs(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int major, code;
        const char *word;
    } cases[] = {
        {SEQ(IN(5, 5, 1) "," CONV("")), 2, 0, NULL},
        /* Keras 3 Sequential (batch_shape), Keras 2 Sequential without an InputLayer */
        {SEQ("{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_shape\":[null,5,5,1]}}," CONV("")), 3,
         0, NULL},
        {SEQ(CONV(",\"batch_input_shape\":[null,5,5,1]")), 2, 0, NULL},
        {SEQ(CONV("")), 2, TFX_ENOTSUP, "no input shape"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"data_format\":\"channels_first\"")), 2, TFX_ENOTSUP, "channels_first"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"dtype\":\"float16\"")), 2, TFX_ENOTSUP, "dtype 'float16'"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"dtype\":{\"class_name\":\"DTypePolicy\",\"config\":{\"name\":\"mixed_float16\"}}")), 3,
         TFX_ENOTSUP, "mixed_float16"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"activation\":\"hard_sigmoid\"")), 2, TFX_ENOTSUP, "0.2 x + 0.5"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"activation\":\"hard_sigmoid\"")), 3, 0, NULL},
        {SEQ(IN(5, 5, 1) "," CONV(",\"activation\":\"selu\"")), 2, TFX_ENOTSUP, "'selu'"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"dilation_rate\":[2,2]")), 2, TFX_ENOTSUP, "dilation_rate"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"padding\":\"causal\"")), 2, TFX_ENOTSUP, "causal"},
        {SEQ(IN(5, 5, 1) "," CONVX(",\"filters\":\"2\",\"kernel_size\":3")), 2, TFX_EFORMAT, "'filters' must be an integer"},
        {SEQ(IN(5, 5, 1) "," CONVX(",\"filters\":0,\"kernel_size\":3")), 2, TFX_EFORMAT, "'filters'"},
        {SEQ(IN(5, 5, 1) "," CONVX(",\"filters\":1e9,\"kernel_size\":3")), 2, TFX_EFORMAT, "'filters'"},
        {SEQ(IN(5, 5, 1) "," CONVX(",\"filters\":2,\"kernel_size\":[3]")), 2, TFX_EFORMAT, "'kernel_size'"},
        {SEQ(IN(5, 5, 1) "," CONVX(",\"filters\":2,\"kernel_size\":[9,9]")), 2, TFX_ESHAPE, "'c' (Conv2D)"},
        {SEQ(IN(5, 5, 1) "," CONV(",\"groups\":2")), 2, TFX_EFORMAT, "groups 2"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Dense\",\"config\":{\"name\":\"d\",\"units\":3}}"), 2, TFX_ENOTSUP,
         "each position"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Dense\",\"config\":{\"name\":\"d\",\"units\":65536}},"
                         "{\"class_name\":\"Dense\",\"config\":{\"name\":\"e\",\"units\":65536}}"),
         2, TFX_ENOTSUP, "each position"},
        {SEQ(IN(400, 400, 64) ",{\"class_name\":\"Flatten\",\"config\":{\"name\":\"f\"}},"
                              "{\"class_name\":\"Dense\",\"config\":{\"name\":\"d\",\"units\":65536}}"),
         2, TFX_ENOTSUP, "parameters"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Sequential\",\"config\":{\"name\":\"inner\",\"layers\":[]}}"), 2, TFX_ENOTSUP,
         "nested model"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"MyLayer\",\"config\":{\"name\":\"x\"}}"), 2, TFX_ENOTSUP, "'x' (MyLayer)"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Conv2D\",\"module\":\"my_pkg\",\"config\":{\"name\":\"x\"}}"), 3, TFX_ENOTSUP,
         "custom layer"},
        {SEQ(IN(5, 5, 1) "," CONV("") "," CONV("")), 2, TFX_EFORMAT, "named 'c'"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Flatten\",\"config\":{\"name\":\"a/b\"}}"), 2, TFX_EFORMAT, "'a/b'"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"GlobalAveragePooling2D\",\"config\":{\"name\":\"g\",\"keepdims\":true}}"), 2,
         TFX_ENOTSUP, "keepdims"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"ReLU\",\"config\":{\"name\":\"r\",\"threshold\":0.5}}"), 2, TFX_ENOTSUP,
         "threshold"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"ReLU\",\"config\":{\"name\":\"r\",\"max_value\":2.5}}"), 2, 0, NULL},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Softmax\",\"config\":{\"name\":\"s\",\"axis\":1}}"), 2, TFX_ENOTSUP, "axis 1"},
        {SEQ(IN(5, 5, 2) ",{\"class_name\":\"BatchNormalization\",\"config\":{\"name\":\"b\",\"axis\":[1]}}"), 2,
         TFX_ENOTSUP, "axis 1"},
        {SEQ(IN(5, 5, 1) ",{\"class_name\":\"Dropout\",\"config\":{\"name\":\"d\",\"rate\":1.5}}"), 2, TFX_EFORMAT, "rate"},
        {SEQ("{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_input_shape\":[null,5,5]}}," CONV("")), 2,
         TFX_ENOTSUP, "input shape"},
        {SEQ("{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_input_shape\":[null,5,5,null]}}," CONV("")),
         2, TFX_ENOTSUP, "channels is not fixed"},
        {SEQ(IN(5, 5, 1)), 2, TFX_EFORMAT, "no layers"},
        {"{\"class_name\":\"MyModel\",\"config\":{}}", 2, TFX_ENOTSUP, "'MyModel'"},
        {"[1,2]", 2, TFX_EFORMAT, "class_name"},
        {"{\"class_name\":\"Sequential\",\"config\":{\"layers\":[]},\"class_name\":\"x\"}", 2, TFX_EFORMAT, "JSON"},
        /* functional graphs */
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Flatten\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[[[\"b\",0,0,{}]]]},"
         "{\"class_name\":\"Flatten\",\"name\":\"b\",\"config\":{\"name\":\"b\"},\"inbound_nodes\":[[[\"a\",0,0,{}]]]}],"
         "\"input_layers\":[[\"in\",0,0]],\"output_layers\":[[\"b\",0,0]]}}",
         2, TFX_EFORMAT, "cycle"},
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Flatten\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[[[\"in\",0,0,{}]],"
         "[[\"in\",0,0,{}]]]}],\"input_layers\":[[\"in\",0,0]],\"output_layers\":[[\"a\",0,0]]}}",
         2, TFX_ENOTSUP, "shared layers"},
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Flatten\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[[[\"zz\",0,0,{}]]]}],"
         "\"input_layers\":[[\"in\",0,0]],\"output_layers\":[[\"a\",0,0]]}}",
         2, TFX_EFORMAT, "'zz'"},
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Flatten\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[[[\"in\",0,0,{}]]]}],"
         "\"input_layers\":[[\"in\",0,0]],\"output_layers\":[[\"a\",0,0],[\"in\",0,0]]}}",
         2, TFX_ENOTSUP, "2 outputs"},
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Add\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[{\"args\":[[{\"class_name\":"
         "\"__keras_tensor__\",\"config\":{\"keras_history\":[\"in\",0,0]}},{\"class_name\":\"__keras_tensor__\",\"config\":"
         "{\"keras_history\":[\"in\",0,0]}}]],\"kwargs\":{}}]}],"
         "\"input_layers\":[\"in\",0,0],\"output_layers\":[\"a\",0,0]}}",
         3, 0, NULL},
        {"{\"class_name\":\"Functional\",\"config\":{\"layers\":[" IN(5, 5, 1) ","
         "{\"class_name\":\"Flatten\",\"name\":\"a\",\"config\":{\"name\":\"a\"},\"inbound_nodes\":[{\"args\":[{\"class_name\":"
         "\"__keras_tensor__\",\"config\":{\"keras_history\":[\"in\",0,0]}}],\"kwargs\":{\"scale\":2}}]}],"
         "\"input_layers\":[\"in\",0,0],\"output_layers\":[\"a\",0,0]}}",
         3, TFX_ENOTSUP, "'scale'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tfx_model *m = NULL;
        int rc = build(cases[i].json, cases[i].major, &m);
        const char *msg = tfx_error_last()->message;
        if (rc != cases[i].code) fail_msg("case %zu: %d (want %d) %s", i, rc, cases[i].code, msg);
        if (rc) {
            assert_null(m);
            if (cases[i].word && !strstr(msg, cases[i].word)) fail_msg("case %zu: '%s' not in '%s'", i, cases[i].word, msg);
        } else {
            assert_non_null(m);
            tfx_model_free(m);
        }
    }
}

/* The fuzz target's seeds are configs that build (so mutations start from working models). */
static void test_fuzz_seeds_build(void **state)
{
    (void)state;
    static const char *const seeds[] = {"graph_k2.json", "graph_k3.json", "kinds_k2.json", "kinds_k2_functional.json",
                                        "mnist_cnn_keras2.json", "seed_k2.json", "tiny_k3.json"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fuzz/corpus/keras_config/seed-%s", seeds[i]);
        FILE *f = fopen(src_path(rel), "rb");
        assert_non_null(f);
        static char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        tfx__keras_weights w = {NULL, NULL, mem_read, 0};
        tfx_keras_options o = TFX_KERAS_OPTIONS_INIT;
        tfx_model *m = NULL;
        int rc = tfx__keras_build(&m, buf, n, &w, 3, &o);
        if (rc) fail_msg("%s: %d %s", seeds[i], rc, tfx_error_last()->message);
        tfx_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_predictions), cmocka_unit_test(test_fixture_activation_grid),
        cmocka_unit_test(test_own_files),           cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_options),             cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_configs),             cmocka_unit_test(test_fuzz_seeds_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
