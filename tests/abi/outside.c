/* An outside program: built by tests/abi/check_install.py against an installed libtfx with
 * `cc outside.c $(pkg-config --cflags --libs libtfx)`. It uses only the public umbrella header.
 * Prints the version, the parameter count of the tutorial's seed model and one prediction. */
#include <stdio.h>

#include <tfx/tfx.h>

static int fail(const char *what)
{
    const tfx_error *e = tfx_error_last();
    fprintf(stderr, "outside: %s failed: %s (%s)\n", what, e->message, tfx_status_str(e->code));
    return 1;
}

int main(void)
{
    /* header and library must agree */
    if (tfx_version() != TFX_VERSION_NUMBER) {
        fprintf(stderr, "outside: header version %d, library %u\n", TFX_VERSION_NUMBER, tfx_version());
        return 1;
    }
    printf("libtfx version %s\n", tfx_version_string());

    tfx_model *m = NULL;
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    if (tfx_model_new(&m, 32, 32, 3)) return fail("tfx_model_new");
    c.filters = 32;
    c.activation = TFX_ACTIVATION_RELU;
    if (tfx_model_add_conv2d(m, &c, NULL)) return fail("conv2d");
    c.filters = 64;
    c.name = "visualization_layer";
    if (tfx_model_add_conv2d(m, &c, NULL)) return fail("visualization_layer");
    c.filters = 128;
    c.name = NULL;
    if (tfx_model_add_conv2d(m, &c, NULL)) return fail("conv2d_1");
    if (tfx_model_add_flatten(m, NULL, NULL)) return fail("flatten");
    d.units = 128;
    d.activation = TFX_ACTIVATION_RELU;
    if (tfx_model_add_dense(m, &d, NULL)) return fail("dense");
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if (tfx_model_add_dense(m, &d, NULL)) return fail("dense_1");
    if (tfx_model_set_seed(m, 42)) return fail("tfx_model_set_seed");
    printf("params %zu\n", tfx_model_param_count(m));

    static float x[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++) x[i] = (float)((i * 37) % 256) / 255.0f;
    float p[10];
    if (tfx_model_predict(m, x, 1, p)) return fail("tfx_model_predict");
    printf("prediction");
    for (int j = 0; j < 10; j++) printf(" %.6f", (double)p[j]);
    printf("\n");

    /* errors are reported, not printed or aborted on */
    if (tfx_model_find_layer(m, "no_such_layer") != NULL || tfx_error_last()->code != TFX_EINVAL)
        return fail("the error path");
    printf("error %s\n", tfx_status_str(tfx_error_last()->code));
    tfx_model_free(m);
    return 0;
}
