/* The tutorial's first half in C: train the seed ConvNet on Fashion-MNIST (Adam, batch 50,
 * validation_split 0.2) with tf-explain's ActivationsVisualizationCallback on a few validation
 * images of class 0 for "visualization_layer", plus Keras's TensorBoard callback for the loss
 * and accuracy, then print the command that shows them:
 *
 *   activation_visualization_training [--epochs N] [--subset N] [--images K] [--seed S]
 *                                     [--data DIR] [--no-callback] [OUTPUT_DIR]
 *
 * OUTPUT_DIR (default ./visualizations) receives one run per training session, named by the
 * local time as tf-explain names it: <stamp>/ holds the "Activations Visualization" images,
 * <stamp>/train and <stamp>/validation the epoch_loss / epoch_accuracy scalars.
 * --no-callback trains without any callback (to measure what the callbacks cost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--epochs N] [--subset N] [--images K] [--seed S] [--data DIR] [--no-callback] "
            "[OUTPUT_DIR]\n"
            "  --epochs N      training epochs (default 2)\n"
            "  --subset N      use the first N training images, 0 for all (default 10000)\n"
            "  --images K      validation images of class 0 shown by the callback (default 5)\n"
            "  --seed S        weight-initialisation and shuffling seed (default 0)\n"
            "  --data DIR      Fashion-MNIST IDX directory (default /usr/share/datasets/fashion-mnist)\n"
            "  --no-callback   train without callbacks (baseline timing)\n"
            "  OUTPUT_DIR      where the TensorBoard runs go (default ./visualizations)\n",
            argv0);
}

/* The tutorial's seed model for a 28x28x1 input. */
static int build_seed_model(tfx_model **out, const int shape[3])
{
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, shape[0], shape[1], shape[2]);
    if (rc) return rc;
    tfx_conv2d_options conv = TFX_CONV2D_OPTIONS_INIT;
    conv.activation = TFX_ACTIVATION_RELU;
    conv.filters = 32;
    if ((rc = tfx_model_add_conv2d(m, &conv, NULL))) goto fail;
    conv.filters = 64;
    conv.name = "visualization_layer";
    if ((rc = tfx_model_add_conv2d(m, &conv, NULL))) goto fail;
    conv.filters = 128;
    conv.name = NULL;
    if ((rc = tfx_model_add_conv2d(m, &conv, NULL))) goto fail;
    if ((rc = tfx_model_add_flatten(m, NULL, NULL))) goto fail;
    tfx_dense_options dense = TFX_DENSE_OPTIONS_INIT;
    dense.units = 128;
    dense.activation = TFX_ACTIVATION_RELU;
    if ((rc = tfx_model_add_dense(m, &dense, NULL))) goto fail;
    dense.units = 10;
    dense.activation = TFX_ACTIVATION_SOFTMAX;
    if ((rc = tfx_model_add_dense(m, &dense, NULL))) goto fail;
    *out = m;
    return TFX_OK;
fail:
    tfx_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    int epochs = 2, use_callbacks = 1;
    size_t subset = 10000, n_images = 5;
    unsigned long long seed = 0;
    const char *data_dir = "/usr/share/datasets/fashion-mnist", *output_dir = "visualizations";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--epochs") && has_value)
            epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--subset") && has_value)
            subset = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--images") && has_value)
            n_images = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && has_value)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--data") && has_value)
            data_dir = argv[++i];
        else if (!strcmp(a, "--no-callback"))
            use_callbacks = 0;
        else if (a[0] == '-') {
            usage(argv[0]);
            return 2;
        } else
            output_dir = a;
    }

    tfx_dataset *train = NULL;
    tfx_model *m = NULL;
    tfx_history *history = NULL;
    tfx_explainer_callback *act = NULL;
    tfx_tensorboard_callback *scalars = NULL;
    float *val_class_zero = NULL;
    int status = 1;

    /* (x_train, y_train), _ = fashion_mnist.load_data(); pixels / 255 (done by the reader) */
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = subset;
    CHECK(tfx_dataset_load_idx_dir(&train, data_dir, TFX_DATA_TRAIN, &dopt));
    int shape[3];
    CHECK(tfx_dataset_shape(train, shape));
    size_t n = tfx_dataset_count(train), sample = tfx_dataset_sample_size(train);
    printf("%s: %zu training images of %dx%dx%d\n", data_dir, n, shape[0], shape[1], shape[2]);

    CHECK(build_seed_model(&m, shape));
    CHECK(tfx_model_set_seed(m, seed));
    tfx_compile_options copt = TFX_COMPILE_OPTIONS_INIT; /* adam, sparse categorical xent, accuracy */
    CHECK(tfx_model_compile(m, &copt));

    /* validation_class_zero: the first images of class 0 in the validation split (the last
     * 20 %, which fit holds out with validation_split = 0.2) */
    size_t n_train = (size_t)((double)n * (1.0 - 0.2)), k = 0;
    val_class_zero = malloc(sizeof(float) * (n_images ? n_images : 1) * sample);
    if (!val_class_zero) goto fail;
    for (size_t i = n_train; i < n && k < n_images; i++)
        if (tfx_dataset_labels(train)[i] == 0) memcpy(val_class_zero + k++ * sample, tfx_dataset_image(train, i),
                                                      sizeof(float) * sample);

    const tfx_callback *cbs[2];
    size_t n_cbs = 0;
    if (use_callbacks) {
        if (k == 0) {
            fprintf(stderr, "no validation image of class 0 (use a larger --subset or --images > 0)\n");
            goto fail;
        }
        /* ActivationsVisualizationCallback(validation_class_zero, layers_name=["visualization_layer"],
         *                                  output_dir=output_dir) */
        CHECK(tfx_activations_visualization_callback_new(&act, m, val_class_zero, k, "visualization_layer",
                                                         output_dir, NULL, NULL));
        /* keras.callbacks.TensorBoard(log_dir=<the same run>): <run>/train and <run>/validation */
        const char *run = tfx_explainer_callback_run_dir(act);
        CHECK(tfx_tensorboard_callback_new(&scalars, run, NULL));
        cbs[n_cbs++] = tfx_explainer_callback_hooks(act);
        cbs[n_cbs++] = tfx_tensorboard_callback_hooks(scalars);
        printf("writing TensorBoard run %s (%zu validation images of class 0)\n", run, k);
    }

    /* model.fit(x_train, y_train, batch_size=50, epochs=epochs, validation_split=0.2, callbacks=[...]) */
    tfx_fit_options fopt = TFX_FIT_OPTIONS_INIT;
    fopt.batch_size = 50;
    fopt.epochs = epochs;
    fopt.validation_split = 0.2;
    fopt.verbose = 2;
    fopt.progress_file = stdout;
    fopt.callbacks = cbs;
    fopt.n_callbacks = n_cbs;
    CHECK(tfx_history_new(&history));
    double t0 = now();
    CHECK(tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), n, &fopt, history));
    double t_fit = now() - t0;
    size_t done = tfx_history_length(history);
    printf("fit: %.2f s for %zu epochs (%.2f s per epoch)\n", t_fit, done, done ? t_fit / (double)done : 0.0);

    if (use_callbacks) {
        const char *msg;
        if (tfx_explainer_callback_status(act, &msg) != TFX_OK) fprintf(stderr, "warning: %s\n", msg);
        if (tfx_tensorboard_callback_status(scalars, &msg) != TFX_OK) fprintf(stderr, "warning: %s\n", msg);
        double secs;
        size_t images, bytes;
        CHECK(tfx_explainer_callback_stats(act, &secs, &images, &bytes));
        printf("activations callback: %zu images, %zu PNG bytes, %.3f s in total (%.2f %% of fit)\n", images, bytes,
               secs, t_fit > 0 ? 100.0 * secs / t_fit : 0.0);
        printf("view it with:\n  tensorboard --logdir %s\n", output_dir);
    }
    status = 0;
fail:
    tfx_explainer_callback_free(act);
    tfx_tensorboard_callback_free(scalars);
    free(val_class_zero);
    tfx_history_free(history);
    tfx_model_free(m);
    tfx_dataset_free(train);
    return status;
}
