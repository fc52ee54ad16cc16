/* Build the tutorial's seed ConvNet, print its Keras-style summary and predict a batch. */
#include <stdio.h>
#include <stdlib.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            return 1;                                                                \
        }                                                                            \
    } while (0)

int main(void)
{
    tfx_model *m = NULL;
    CHECK(tfx_model_new(&m, 32, 32, 3));
    tfx_conv2d_options conv = TFX_CONV2D_OPTIONS_INIT;
    conv.activation = TFX_ACTIVATION_RELU;
    conv.filters = 32;
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 64;
    conv.name = "visualization_layer";
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 128;
    conv.name = NULL;
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    CHECK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options dense = TFX_DENSE_OPTIONS_INIT;
    dense.units = 128;
    dense.activation = TFX_ACTIVATION_RELU;
    CHECK(tfx_model_add_dense(m, &dense, NULL));
    dense.units = 10;
    dense.activation = TFX_ACTIVATION_SOFTMAX;
    CHECK(tfx_model_add_dense(m, &dense, NULL));

    printf("%s", tfx_model_summary(m));

    enum { N = 4, IN = 32 * 32 * 3 };
    float *x = malloc(sizeof(float) * N * IN), probs[N * 10];
    for (int i = 0; i < N * IN; i++) x[i] = (float)((i * 7919) % 255) / 255.0f;
    CHECK(tfx_model_predict(m, x, N, probs));
    for (int i = 0; i < N; i++) {
        printf("image %d:", i);
        for (int k = 0; k < 10; k++) printf(" %.3f", probs[i * 10 + k]);
        printf("\n");
    }
    free(x);
    tfx_model_free(m);
    return 0;
}
