/* The tutorial's training script in C: load Fashion-MNIST (or CIFAR-10), build the seed
 * ConvNet, compile with Adam and sparse categorical cross-entropy, fit with batch 50 and
 * validation_split 0.2 (printing Keras's log), save the model, then evaluate on the test set.
 *
 *   train_seed_model [--epochs N] [--subset N] [--test-subset N] [--seed S] [--out FILE]
 *                    [--verbose 0|1|2] [--threads N] [DATASET_DIR]
 *
 * DATASET_DIR: a directory of MNIST-style IDX files (default /usr/share/datasets/fashion-mnist),
 * or a CIFAR-10 "cifar-10-batches-bin" directory (recognised by its data_batch_1.bin). */
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

static int is_cifar_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--epochs N] [--subset N] [--test-subset N] [--seed S] [--out FILE] [--verbose 0|1|2] "
            "[DATASET_DIR]\n"
            "  --epochs N       training epochs (default 2)\n"
            "  --subset N       use the first N training images, 0 for all (default 10000)\n"
            "  --test-subset N  evaluate on the first N test images, 0 for all (default 0)\n"
            "  --seed S         weight-initialisation and shuffling seed (default 0)\n"
            "  --out FILE       where the trained model goes (default seed_model.tfx)\n"
            "  --verbose V      Keras verbosity: 1 progress bar (default), 2 one line per epoch\n"
            "  --threads N      libtfx's own threads (tfx_model_set_threads; run with OPENBLAS_NUM_THREADS=1);\n"
            "                   default 0: OpenBLAS's threads\n",
            argv0);
}

/* The seed model of the tutorial, for the dataset's input shape. */
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
    int epochs = 2, verbose = 1, threads = 0;
    size_t subset = 10000, test_subset = 0;
    unsigned long long seed = 0;
    const char *dir = "/usr/share/datasets/fashion-mnist", *out_path = "seed_model.tfx";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--epochs") && has_value)
            epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--subset") && has_value)
            subset = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--test-subset") && has_value)
            test_subset = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && has_value)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--out") && has_value)
            out_path = argv[++i];
        else if (!strcmp(a, "--verbose") && has_value)
            verbose = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && has_value)
            threads = atoi(argv[++i]);
        else if (a[0] == '-') {
            usage(argv[0]);
            return 2;
        } else
            dir = a;
    }

    tfx_dataset *train = NULL, *test = NULL;
    tfx_model *m = NULL;
    tfx_history *history = NULL;
    int status = 1;

    /* (x_train, y_train), (x_test, y_test) = load_data(); pixels / 255 (done by the reader) */
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = subset;
    tfx_data_options topt = TFX_DATA_OPTIONS_INIT;
    topt.limit = test_subset;
    int cifar = is_cifar_dir(dir);
    if (cifar) {
        CHECK(tfx_dataset_load_cifar10_dir(&train, dir, TFX_DATA_TRAIN, &dopt));
        CHECK(tfx_dataset_load_cifar10_dir(&test, dir, TFX_DATA_TEST, &topt));
    } else {
        CHECK(tfx_dataset_load_idx_dir(&train, dir, TFX_DATA_TRAIN, &dopt));
        CHECK(tfx_dataset_load_idx_dir(&test, dir, TFX_DATA_TEST, &topt));
    }
    int shape[3];
    CHECK(tfx_dataset_shape(train, shape));
    printf("%s: %zu training and %zu test images of %dx%dx%d\n", cifar ? "CIFAR-10" : dir, tfx_dataset_count(train),
           tfx_dataset_count(test), shape[0], shape[1], shape[2]);

    CHECK(build_seed_model(&m, shape));
    CHECK(tfx_model_set_seed(m, seed));
    CHECK(tfx_model_set_threads(m, threads));
    printf("%s", tfx_model_summary(m));

    /* model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy']) */
    tfx_compile_options copt = TFX_COMPILE_OPTIONS_INIT;
    copt.optimizer = TFX_OPTIMIZER_ADAM;
    copt.loss = TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    copt.metrics = TFX_METRIC_ACCURACY;
    CHECK(tfx_model_compile(m, &copt));

    /* model.fit(x_train, y_train, batch_size=50, epochs=epochs, validation_split=0.2) */
    tfx_fit_options fopt = TFX_FIT_OPTIONS_INIT;
    fopt.batch_size = 50;
    fopt.epochs = epochs;
    fopt.validation_split = 0.2;
    fopt.verbose = verbose;
    fopt.progress_file = stdout;
    CHECK(tfx_history_new(&history));
    double t0 = now();
    CHECK(tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), tfx_dataset_count(train), &fopt,
                        history));
    double t_fit = now() - t0;

    CHECK(tfx_model_save(m, out_path, NULL));
    printf("model saved to %s\n", out_path);

    /* test_loss, test_acc = model.evaluate(x_test, y_test) */
    double test_loss, test_acc;
    t0 = now();
    CHECK(tfx_model_set_batch_size(m, 50));
    CHECK(tfx_model_evaluate(m, tfx_dataset_images(test), tfx_dataset_labels(test), tfx_dataset_count(test),
                             &test_loss, &test_acc));
    double t_eval = now() - t0;
    printf("test loss: %.4f - test accuracy: %.4f (%zu images)\n", test_loss, test_acc, tfx_dataset_count(test));
    printf("time: fit %.1f s, evaluate %.1f s\n", t_fit, t_eval);
    status = 0;
fail:
    tfx_history_free(history);
    tfx_model_free(m);
    tfx_dataset_free(train);
    tfx_dataset_free(test);
    return status;
}
