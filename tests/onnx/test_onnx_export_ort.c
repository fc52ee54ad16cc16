/* tfx_model_save_onnx against ONNX Runtime: the exported file, run by onnxruntime-node on the same
 * inputs (NCHW), gives libtfx's predictions within 1e-5 of the output's largest magnitude, for
 * the seed model, a graph model and the models holding every layer kind and activation, at a
 * batch of 3 (the symbolic batch axis).
 *
 * ONNX Runtime is not in Debian: it is the npm package onnxruntime-node (installed outside the
 * repository with `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node`), looked for in
 * $TFX_ORT_DIR/node_modules, else ../ort/node_modules beside the source tree. Without node or
 * the package the test exits 77 (skipped): a clean clone in CI has neither. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export_models.h"

static char tmpdir[] = "/tmp/tfx_onnx_ort_XXXXXX";
static char modules[1024];

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

static int find_ort(void)
{
    const char *dir = getenv("TFX_ORT_DIR");
    if (dir && dir[0])
        snprintf(modules, sizeof modules, "%s/node_modules", dir);
    else
        snprintf(modules, sizeof modules, "%s/../ort/node_modules", TFX_SOURCE_ROOT);
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/onnxruntime-node/package.json", modules);
    if (access(probe, R_OK) != 0) return 0;
    return system("node --version > /dev/null 2>&1") == 0;
}

static void write_floats(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x, sizeof(float), n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void compare(int (*build)(tfx_model **), const char *file)
{
    enum { N = 3 };
    tfx_model *m;
    assert_int_equal(build(&m), TFX_OK);
    int in[3], out[3];
    assert_int_equal(tfx_model_input_shape(m, in), TFX_OK);
    assert_int_equal(tfx_model_output_shape(m, out), TFX_OK);
    size_t nx, ny = N * (size_t)out[0] * out[1] * out[2];
    float *x = xm_input(m, N, 7, &nx), *xc = malloc(nx * sizeof(float));
    float *y = malloc(ny * sizeof(float)), *yo = malloc(ny * sizeof(float)), *ref = malloc(ny * sizeof(float));
    assert_true(x && xc && y && yo && ref);
    assert_int_equal(tfx_model_predict(m, x, N, y), TFX_OK);
    /* ONNX's output: flat [N, k] as libtfx's; a feature map NCHW */
    const int map_out = out[0] * out[1] > 1;
    if (map_out)
        assert_int_equal(tfx_tensor_nhwc_to_nchw(y, ref, N, out[0], out[1], out[2]), TFX_OK);
    else
        memcpy(ref, y, ny * sizeof(float));
    assert_int_equal(tfx_tensor_nhwc_to_nchw(x, xc, N, in[0], in[1], in[2]), TFX_OK);

    char model[512], xin[512], yout[512], cmd[4096];
    snprintf(model, sizeof model, "%s/%s", tmpdir, file);
    snprintf(xin, sizeof xin, "%s/%s.in", tmpdir, file);
    snprintf(yout, sizeof yout, "%s/%s.out", tmpdir, file);
    assert_int_equal(tfx_model_save_onnx(m, model, NULL), TFX_OK);
    write_floats(xin, xc, nx);
    snprintf(cmd, sizeof cmd, "node '%s/tests/onnx/ort_run.js' '%s' '%s' '%s' %d %d %d %d '%s'", TFX_SOURCE_ROOT,
             modules, model, xin, N, in[2], in[0], in[1], yout);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(yout, "rb");
    assert_non_null(f);
    assert_int_equal(fread(yo, sizeof(float), ny, f), ny);
    assert_int_equal(fgetc(f), EOF); /* exactly the output's size */
    fclose(f);
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < ny; i++) {
        scale = fmax(scale, fabs(ref[i]));
        err = fmax(err, fabs((double)yo[i] - ref[i]));
    }
    printf("%-12s %zu outputs, max |libtfx| %.4g, max |ORT - libtfx| %.3g (%.2g relative)\n", file, ny, scale, err,
           err / scale);
    assert_true(scale > 0.0);
    assert_true(err <= 1e-5 * scale);
    free(x);
    free(xc);
    free(y);
    free(yo);
    free(ref);
    tfx_model_free(m);
}

static void test_ort_seed(void **state)
{
    (void)state;
    compare(xm_seed, "seed.onnx");
}
static void test_ort_seed_full(void **state)
{
    (void)state;
    compare(xm_seed_full, "seed_full.onnx");
}
static void test_ort_graph(void **state)
{
    (void)state;
    compare(xm_graph, "graph.onnx");
}
static void test_ort_acts(void **state)
{
    (void)state;
    compare(xm_acts, "acts.onnx");
}
static void test_ort_kinds(void **state)
{
    (void)state;
    compare(xm_kinds, "kinds.onnx");
}
static void test_ort_flat(void **state)
{
    (void)state;
    compare(xm_flat, "flat.onnx");
}
static void test_ort_map_out(void **state)
{
    (void)state;
    compare(xm_map_out, "map_out.onnx");
}

int main(void)
{
    if (!find_ort()) {
        printf("skipped: node or onnxruntime-node not found (%s)\n", modules);
        return 77; /* meson's skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ort_seed),    cmocka_unit_test(test_ort_seed_full), cmocka_unit_test(test_ort_graph),
        cmocka_unit_test(test_ort_acts),    cmocka_unit_test(test_ort_kinds),     cmocka_unit_test(test_ort_flat),
        cmocka_unit_test(test_ort_map_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
