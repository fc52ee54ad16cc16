/* tfx_model_summary of a graph model: Keras 2.11's functional summary ("Connected to", an
 * input_1 (InputLayer) row, 98 columns, cells cut at their width and after each "'," of the
 * connection list), text for text, on a small ResNet-style block (a projection shortcut, an Add).
 * The expected text was checked against Keras 2.11's print_summary algorithm
 * (keras/utils/layer_utils.py: positions int(98 * [.33, .55, .67, 1.0])). Chains keep the
 * Sequential table (tests/api/test_model_api.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                              \
    do {                                                                                      \
        int rc__ = (call);                                                                    \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message); \
    } while (0)

static const char expected[] =
    "Model: \"model\"\n"
    "__________________________________________________________________________________________________\n"
    " Layer (type)                   Output Shape         Param #     Connected to                     \n"
    "==================================================================================================\n"
    " input_1 (InputLayer)           [(None, 8, 8, 3)]    0           []                               \n"
    "                                                                                                  \n"
    " conv2d (Conv2D)                (None, 8, 8, 8)      224         ['input_1[0][0]']                \n"
    "                                                                                                  \n"
    " conv2d_1 (Conv2D)              (None, 8, 8, 8)      584         ['conv2d[0][0]']                 \n"
    "                                                                                                  \n"
    " batch_normalization (BatchNorm  (None, 8, 8, 8)     32          ['conv2d_1[0][0]']               \n"
    " alization)                                                                                       \n"
    "                                                                                                  \n"
    " activation (Activation)        (None, 8, 8, 8)      0           ['batch_normalization[0][0]']    \n"
    "                                                                                                  \n"
    " conv2d_2 (Conv2D)              (None, 8, 8, 8)      584         ['activation[0][0]']             \n"
    "                                                                                                  \n"
    " batch_normalization_1 (BatchNo  (None, 8, 8, 8)     32          ['conv2d_2[0][0]']               \n"
    " rmalization)                                                                                     \n"
    "                                                                                                  \n"
    " conv2d_3 (Conv2D)              (None, 8, 8, 8)      72          ['conv2d[0][0]']                 \n"
    "                                                                                                  \n"
    " add (Add)                      (None, 8, 8, 8)      0           ['batch_normalization_1[0][0]',  \n"
    "                                                                  'conv2d_3[0][0]']               \n"
    "                                                                                                  \n"
    " activation_1 (Activation)      (None, 8, 8, 8)      0           ['add[0][0]']                    \n"
    "                                                                                                  \n"
    " global_average_pooling2d (Glob  (None, 8)           0           ['activation_1[0][0]']           \n"
    " alAveragePooling2D)                                                                              \n"
    "                                                                                                  \n"
    " dense (Dense)                  (None, 10)           90          ['global_average_pooling2d[0][0]'\n"
    "                                                                 ]                                \n"
    "                                                                                                  \n"
    "==================================================================================================\n"
    "Total params: 1,618\n"
    "Trainable params: 1,586\n"
    "Non-trainable params: 32\n"
    "__________________________________________________________________________________________________\n";

static tfx_conv2d_options conv(int filters, int k, int activation)
{
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = filters;
    c.kernel_h = c.kernel_w = k;
    c.padding = TFX_PADDING_SAME;
    c.activation = activation;
    return c;
}

/* Keras:
 *   x = Conv2D(8, 3, padding="same", activation="relu")(inputs)
 *   y = Conv2D(8, 3, padding="same")(x); y = BatchNormalization()(y); y = Activation("relu")(y)
 *   y = Conv2D(8, 3, padding="same")(y); y = BatchNormalization()(y)
 *   s = Conv2D(8, 1, padding="same")(x)
 *   z = Activation("relu")(Add()([y, s]))
 *   outputs = Dense(10, activation="softmax")(GlobalAveragePooling2D()(z)) */
static tfx_model *resnet_block(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 8, 8, 3));
    tfx_layer *x, *y, *s;
    tfx_conv2d_options c = conv(8, 3, TFX_ACTIVATION_RELU);
    OK(tfx_model_add_conv2d(m, &c, &x));
    c = conv(8, 3, TFX_ACTIVATION_LINEAR);
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_batch_normalization(m, NULL, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL));
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_batch_normalization(m, NULL, &y));
    OK(tfx_model_set_next_input(m, x));
    c = conv(8, 1, TFX_ACTIVATION_LINEAR);
    OK(tfx_model_add_conv2d(m, &c, &s));
    tfx_layer *ys[2] = {y, s};
    OK(tfx_model_add_add(m, ys, 2, NULL, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL));
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

/* The first line where a and b differ, for a readable failure. */
static void assert_same_text(const char *got, const char *want)
{
    if (strcmp(got, want) == 0) return;
    size_t line = 1;
    const char *g = got, *w = want;
    while (*g && *g == *w) {
        if (*g == '\n') line++;
        g++, w++;
    }
    const char *gl = g, *wl = w;
    while (gl > got && gl[-1] != '\n') gl--;
    while (wl > want && wl[-1] != '\n') wl--;
    fail_msg("summary differs at line %zu:\n  got  \"%.*s\"\n  want \"%.*s\"", line, (int)strcspn(gl, "\n"), gl,
             (int)strcspn(wl, "\n"), wl);
}

static void test_resnet_block_summary(void **state)
{
    (void)state;
    tfx_model *m = resnet_block();
    const char *s = tfx_model_summary(m);
    assert_non_null(s);
    assert_same_text(s, expected);
    /* Every table line is 98 columns (this model's cells all fit). */
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, "\n");
        if (p[0] == ' ' || p[0] == '_' || p[0] == '=') assert_int_equal(len, 98);
        p += len + (p[len] == '\n');
    }
    tfx_model_free(m);
}

/* é in UTF-8, and a name of 21 characters in 32 bytes. */
#define E_ACUTE "\xc3\xa9"
#define ETE E_ACUTE "t" E_ACUTE
#define LONG_NAME ETE "_" ETE "_" ETE "_" ETE "_" ETE "_" E_ACUTE

/* Names with quotes are written as Python's repr writes them in the connection list; a name of
 * several bytes per character is cut by characters. */
static void test_summary_quotes_and_utf8(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 1));
    tfx_conv2d_options c = conv(2, 1, TFX_ACTIVATION_LINEAR);
    tfx_layer *a, *b;
    c.name = "it's";
    OK(tfx_model_add_conv2d(m, &c, &a));
    c.name = LONG_NAME;
    OK(tfx_model_set_next_input(m, NULL));
    OK(tfx_model_add_conv2d(m, &c, &b));
    tfx_layer *ab[2] = {a, b};
    OK(tfx_model_add_add(m, ab, 2, "sum", NULL));
    const char *s = tfx_model_summary(m);
    assert_non_null(s);
    /* Python writes "it's[0][0]" in double quotes, and no "'," follows it: the list is cut at
     * the column's 33 characters, not after the first entry. */
    assert_non_null(strstr(s,
                           " sum (Add)                      (None, 4, 4, 2)      0           "
                           "[\"it's[0][0]\", '" ETE "_" ETE "_" ETE "_" ETE "_" E_ACUTE "\n"
                           "                                                                 "
                           "t" E_ACUTE "_" E_ACUTE "[0][0]']                     \n"));
    /* "<name> (Conv2D)" is 30 characters (32 bytes): it fits column 0 whole, and column 1 starts
     * one further, at 33. */
    assert_non_null(strstr(s,
                           "\n " LONG_NAME " (Conv2D)  (None, 4, 4, 2)     4           "
                           "['input_1[0][0]']                \n"));
    tfx_model_free(m);
}

/* Out of memory at every allocation of the functional summary: NULL with TFX_ENOMEM, then the
 * same text once memory is back. */
static void test_summary_allocation_failures(void **state)
{
    (void)state;
    tfx_model *m = resnet_block();
    int done = 0, failed = 0;
    for (long k = 1; k < 200 && !done; k++) {
        tfx__alloc_fail_after(k);
        const char *s = tfx_model_summary(m);
        tfx__alloc_fail_after(0);
        if (s) {
            done = 1;
            assert_string_equal(s, expected);
        } else {
            assert_int_equal(tfx_error_last()->code, TFX_ENOMEM);
            failed++;
        }
    }
    assert_true(done && failed > 0);
    print_message("    %d allocations failed in turn\n", failed);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_block_summary),
        cmocka_unit_test(test_summary_quotes_and_utf8),
        cmocka_unit_test(test_summary_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
