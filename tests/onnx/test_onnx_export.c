/* tfx_model_save_onnx: python3-onnx's checker (full_check: the checker and strict shape
 * inference) and libtfx's promises about the file (tests/onnx/check_onnx.py) on the seed model, a
 * graph model and models holding every layer kind and activation; the bad inputs (NULL
 * arguments, options, a missing directory, no layers, a dangling layer, an unknown kind, out of
 * memory at every allocation). The checker part is skipped without /usr/bin/python3 + onnx. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export_models.h"
#include "model/model_internal.h"
#include "testing.h"

#define PYTHON "/usr/bin/python3"

static char tmpdir[] = "/tmp/tfx_onnx_export_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* 0 passed, 1 failed, 77 onnx missing */
static int run_checker(const char *path, tfx_model *m)
{
    size_t cap = 4096;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) cap += strlen(tfx_layer_name(tfx_model_layer(m, i))) + 3;
    char *cmd = malloc(cap);
    assert_non_null(cmd);
    int k = snprintf(cmd, cap, "%s '%s/tests/onnx/check_onnx.py' '%s' '%s'", PYTHON, TFX_SOURCE_ROOT, path,
                     tfx_version_string());
    for (size_t i = 0; i < tfx_model_layer_count(m); i++)
        k += snprintf(cmd + k, cap - (size_t)k, " '%s'", tfx_layer_name(tfx_model_layer(m, i)));
    int st = system(cmd);
    free(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static int have_onnx(void)
{
    if (access(PYTHON, X_OK) != 0) return 0;
    return system(PYTHON " -c 'import onnx' 2>/dev/null") == 0;
}

static void check_model(int (*build)(tfx_model **), const char *file)
{
    if (!have_onnx()) skip();
    tfx_model *m;
    assert_int_equal(build(&m), TFX_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_OK);
    assert_int_equal(run_checker(path, m), 0);
    tfx_model_free(m);
}

static void test_checker_seed(void **state)
{
    (void)state;
    check_model(xm_seed, "seed.onnx");
}
static void test_checker_seed_full(void **state)
{
    (void)state;
    check_model(xm_seed_full, "seed_full.onnx");
}
static void test_checker_graph(void **state)
{
    (void)state;
    check_model(xm_graph, "graph.onnx");
}
static void test_checker_acts(void **state)
{
    (void)state;
    check_model(xm_acts, "acts.onnx");
}
static void test_checker_kinds(void **state)
{
    (void)state;
    check_model(xm_kinds, "kinds.onnx");
}
static void test_checker_flat(void **state)
{
    (void)state;
    check_model(xm_flat, "flat.onnx");
}
static void test_checker_map_out(void **state)
{
    (void)state;
    check_model(xm_map_out, "map_out.onnx");
}

/* Names the exporter must not reuse: layers called "input", "output" and like its own node and
 * initializer names ("<layer>/Relu", "<layer>.weight"). */
static void test_checker_names(void **state)
{
    (void)state;
    if (!have_onnx()) skip();
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 2), TFX_OK);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.activation = TFX_ACTIVATION_SWISH;
    c.padding = TFX_PADDING_SAME;
    c.name = "input";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    c.name = "input/Sigmoid";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    c.name = "input.weight";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, "output", NULL), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, "last", NULL), TFX_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/names.onnx", tmpdir);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_OK);
    /* "input" and "output" are the graph's: those layers' tensors are suffixed, their nodes keep
     * the layer names; generated names dodge the layers' */
    assert_int_equal(run_checker(path, m), 0);
    tfx_model_free(m);
}

/* A kind the exporter does not know (a layer kind added later): refused, naming the layer. */
static const tfx__layer_ops *fake_ops(void)
{
    static tfx__layer_ops ops;
    ops = tfx__dropout_ops;
    ops.kind = 1000;
    ops.type_name = "Experimental";
    return &ops;
}

static void test_bad_input(void **state)
{
    (void)state;
    tfx_model *m;
    char path[512], missing[512];
    snprintf(path, sizeof path, "%s/bad.onnx", tmpdir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.onnx", tmpdir);
    assert_int_equal(tfx_model_new(&m, 6, 6, 2), TFX_OK);
    /* no layers */
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_ESTATE);
    assert_non_null(strstr(tfx_error_last()->message, "no layers"));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    tfx_layer *first;
    assert_int_equal(tfx_model_add_conv2d(m, &c, &first), TFX_OK);
    assert_int_equal(tfx_model_save_onnx(NULL, path, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_save_onnx(m, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_save_onnx(m, "", NULL), TFX_EINVAL);
    tfx_onnx_options o = TFX_ONNX_OPTIONS_INIT;
    o.opset = 12;
    assert_int_equal(tfx_model_save_onnx(m, path, &o), TFX_ENOTSUP);
    assert_non_null(strstr(tfx_error_last()->message, "opset 12"));
    o.opset = -1;
    assert_int_equal(tfx_model_save_onnx(m, path, &o), TFX_EINVAL);
    o.opset = 13;
    o.version = 99;
    assert_int_equal(tfx_model_save_onnx(m, path, &o), TFX_EVERSION);
    o.version = TFX_ONNX_OPTIONS_VERSION;
    assert_int_equal(tfx_model_save_onnx(m, missing, &o), TFX_EIO);
    assert_int_equal(access(path, F_OK), -1); /* nothing written by the refusals */
    assert_int_equal(tfx_model_save_onnx(m, path, &o), TFX_OK);
    /* a layer that does not lead to the output */
    assert_int_equal(tfx_model_add_flatten(m, "dangling", NULL), TFX_OK);
    assert_int_equal(tfx_model_set_next_input(m, first), TFX_OK);
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_ESTATE);
    assert_non_null(strstr(tfx_error_last()->message, "'dangling'"));
    tfx_model_free(m);
    /* an unknown kind */
    assert_int_equal(tfx_model_new(&m, 6, 6, 2), TFX_OK);
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    tfx__layer_config cfg = {0};
    assert_int_equal(tfx__model_add_layer(m, fake_ops(), &cfg, "mystery", NULL), TFX_OK);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_ENOTSUP);
    assert_non_null(strstr(tfx_error_last()->message, "layer 'mystery' (Experimental"));
    tfx_model_free(m);
    /* a name ONNX cannot hold (protobuf strings are UTF-8) */
    assert_int_equal(tfx_model_new(&m, 6, 6, 2), TFX_OK);
    c.name = "conv\xff";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_ENOTSUP);
    assert_non_null(strstr(tfx_error_last()->message, "layer 0: its name is not valid UTF-8 (byte 4)"));
    tfx_model_free(m);
}

/* Out of memory at every allocation of the export: TFX_ENOMEM, nothing leaked (ASan/valgrind),
 * the previous file untouched. */
static void test_out_of_memory(void **state)
{
    (void)state;
    tfx_model *m;
    assert_int_equal(xm_graph(&m), TFX_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/oom.onnx", tmpdir);
    assert_int_equal(tfx_model_save_onnx(m, path, NULL), TFX_OK);
    struct stat st0, st;
    assert_int_equal(stat(path, &st0), 0);
    int rc = TFX_ENOMEM;
    long k;
    for (k = 1; rc == TFX_ENOMEM && k < 100000; k++) {
        tfx__alloc_fail_after(k);
        rc = tfx_model_save_onnx(m, path, NULL);
        tfx__alloc_fail_after(0);
        if (rc == TFX_ENOMEM) {
            assert_int_equal(stat(path, &st), 0);
            assert_int_equal(st.st_size, st0.st_size);
        }
    }
    assert_int_equal(rc, TFX_OK);
    assert_true(k > 20); /* the export allocates: the loop did fail some of them */
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_seed),    cmocka_unit_test(test_checker_seed_full),
        cmocka_unit_test(test_checker_graph),   cmocka_unit_test(test_checker_acts),
        cmocka_unit_test(test_checker_kinds),   cmocka_unit_test(test_checker_flat),
        cmocka_unit_test(test_checker_map_out), cmocka_unit_test(test_checker_names),
        cmocka_unit_test(test_bad_input),       cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
