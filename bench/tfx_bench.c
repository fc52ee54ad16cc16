/* tfx-bench: times the seed ConvNet (CIFAR-10 shape 32x32x3) on this machine.
 * Engine section: forward (training mode) and backward with parameter gradients at batch
 * 50, and inference at batch 256. Prints one line per measurement ("name value unit"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        if ((call) != TFX_OK) {                                                         \
            fprintf(stderr, "%s: %s\n", #call, tfx_error_last()->message);             \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static tfx_model *seed_model(void)
{
    tfx_model *m;
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
    return m;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1) reps = 1;
    tfx_model *m = seed_model();
    const size_t in = 32 * 32 * 3, batch = 50, infer_batch = 256;
    float *x = malloc(sizeof(float) * in * infer_batch), *out = malloc(sizeof(float) * 10 * infer_batch);
    float seed[50 * 10];
    for (size_t i = 0; i < in * infer_batch; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (size_t i = 0; i < batch * 10; i++) seed[i] = (i % 10 == 3 ? 1.0f : 0.0f) / (float)batch;

    double *fw = calloc((size_t)reps, sizeof(double)), *bw = calloc((size_t)reps, sizeof(double)),
           *inf = calloc((size_t)reps, sizeof(double));
    CHECK(tfx__model_forward(m, x, batch, 1)); /* warm-up: buffers and BLAS threads */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        CHECK(tfx__model_forward(m, x, batch, 1));
        double t1 = now_s();
        CHECK(tfx__model_backward(m, batch, m->n_layers - 1, seed, 0, 0, TFX__BW_PARAM_GRADS | TFX__BW_SKIP_ACTIVATION,
                                  NULL, NULL));
        double t2 = now_s();
        fw[r] = t1 - t0;
        bw[r] = t2 - t1;
    }
    CHECK(tfx_model_set_batch_size(m, infer_batch));
    CHECK(tfx_model_predict(m, x, infer_batch, out));
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        CHECK(tfx_model_predict(m, x, infer_batch, out));
        inf[r] = now_s() - t0;
    }
    double f = median(fw, reps), b = median(bw, reps), i = median(inf, reps);
    printf("forward_train_b50_ms %.2f\n", 1e3 * f);
    printf("backward_b50_ms %.2f\n", 1e3 * b);
    printf("fwd_bwd_images_per_s %.1f\n", (double)batch / (f + b));
    printf("inference_b256_images_per_s %.1f\n", (double)infer_batch / i);
    free(fw);
    free(bw);
    free(inf);
    free(x);
    free(out);
    tfx_model_free(m);
    return 0;
}
