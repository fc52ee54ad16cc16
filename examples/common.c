/* The training examples' shared command line, data and Keras calls (common.h). */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ex_train_args_init(ex_train_args *a, const char *out_path)
{
    memset(a, 0, sizeof *a);
    a->epochs = 2;
    a->verbose = 1;
    a->subset = 10000;
    a->dir = "/usr/share/datasets/fashion-mnist";
    a->out_path = out_path;
}

int ex_train_option(ex_train_args *a, int argc, char **argv, int i)
{
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (o[0] != '-') {
        a->dir = o;
        return 1;
    }
    if (!v) return 0;
    if (!strcmp(o, "--epochs"))
        a->epochs = atoi(v);
    else if (!strcmp(o, "--subset"))
        a->subset = strtoull(v, NULL, 10);
    else if (!strcmp(o, "--test-subset"))
        a->test_subset = strtoull(v, NULL, 10);
    else if (!strcmp(o, "--seed"))
        a->seed = strtoull(v, NULL, 10);
    else if (!strcmp(o, "--out"))
        a->out_path = v;
    else if (!strcmp(o, "--verbose"))
        a->verbose = atoi(v);
    else if (!strcmp(o, "--threads"))
        a->threads = atoi(v);
    else
        return 0;
    return 2;
}

void ex_train_usage(const char *argv0, const char *extra_usage, const char *default_out)
{
    fprintf(stderr,
            "usage: %s [--epochs N] [--subset N] [--test-subset N] [--seed S] [--out FILE] [--verbose 0|1|2] "
            "[--threads N]%s [DATASET_DIR]\n"
            "  --epochs N       training epochs (default 2)\n"
            "  --subset N       use the first N training images, 0 for all (default 10000)\n"
            "  --test-subset N  evaluate on the first N test images, 0 for all (default 0)\n"
            "  --seed S         weight-initialisation and shuffling seed (default 0)\n"
            "  --out FILE       where the trained model goes (default %s)\n"
            "  --verbose V      Keras verbosity: 1 progress bar (default), 2 one line per epoch\n"
            "  --threads N      libtfx's own threads (tfx_model_set_threads; run with OPENBLAS_NUM_THREADS=1);\n"
            "                   default 0: OpenBLAS's threads\n",
            argv0, extra_usage, default_out);
}

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_cifar_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* (x_train, y_train), (x_test, y_test) = load_data() with the subsets; IDX or CIFAR-10 directory. */
static int load_datasets(const ex_train_args *a, tfx_dataset **train, tfx_dataset **test, int shape[3])
{
    /* pixels / 255 is done by the readers */
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT, topt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = a->subset;
    topt.limit = a->test_subset;
    int cifar = is_cifar_dir(a->dir), rc;
    if (cifar) {
        if ((rc = tfx_dataset_load_cifar10_dir(train, a->dir, TFX_DATA_TRAIN, &dopt))) return rc;
        if ((rc = tfx_dataset_load_cifar10_dir(test, a->dir, TFX_DATA_TEST, &topt))) return rc;
    } else {
        if ((rc = tfx_dataset_load_idx_dir(train, a->dir, TFX_DATA_TRAIN, &dopt))) return rc;
        if ((rc = tfx_dataset_load_idx_dir(test, a->dir, TFX_DATA_TEST, &topt))) return rc;
    }
    if ((rc = tfx_dataset_shape(*train, shape))) return rc;
    printf("%s: %zu training and %zu test images of %dx%dx%d\n", cifar ? "CIFAR-10" : a->dir, tfx_dataset_count(*train),
           tfx_dataset_count(*test), shape[0], shape[1], shape[2]);
    return TFX_OK;
}

static int compile_fit(tfx_model *m, const ex_train_args *a, const tfx_dataset *train, double *seconds)
{
    tfx_history *history = NULL;
    int rc;
    if ((rc = tfx_model_set_seed(m, a->seed)) || (rc = tfx_model_set_threads(m, a->threads))) return rc;
    printf("%s", tfx_model_summary(m));

    /* model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy']) */
    tfx_compile_options copt = TFX_COMPILE_OPTIONS_INIT;
    copt.optimizer = TFX_OPTIMIZER_ADAM;
    copt.loss = TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    copt.metrics = TFX_METRIC_ACCURACY;
    if ((rc = tfx_model_compile(m, &copt))) return rc;

    /* model.fit(x_train, y_train, batch_size=50, epochs=epochs, validation_split=0.2) */
    tfx_fit_options fopt = TFX_FIT_OPTIONS_INIT;
    fopt.batch_size = 50;
    fopt.epochs = a->epochs;
    fopt.validation_split = 0.2;
    fopt.verbose = a->verbose;
    fopt.progress_file = stdout;
    if ((rc = tfx_history_new(&history))) return rc;
    double t0 = now();
    rc = tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), tfx_dataset_count(train), &fopt,
                       history);
    *seconds = now() - t0;
    tfx_history_free(history);
    return rc;
}

static int evaluate(tfx_model *m, const tfx_dataset *test, double fit_seconds)
{
    /* test_loss, test_acc = model.evaluate(x_test, y_test) */
    double loss, acc, t0 = now();
    int rc = tfx_model_set_batch_size(m, 50);
    if (!rc)
        rc = tfx_model_evaluate(m, tfx_dataset_images(test), tfx_dataset_labels(test), tfx_dataset_count(test), &loss,
                                &acc);
    if (rc) return rc;
    printf("test loss: %.4f - test accuracy: %.4f (%zu images)\n", loss, acc, tfx_dataset_count(test));
    printf("time: fit %.1f s, evaluate %.1f s\n", fit_seconds, now() - t0);
    return TFX_OK;
}

int ex_train_main(const ex_train_args *a, ex_build_fn build, const void *ctx)
{
    tfx_dataset *train = NULL, *test = NULL;
    tfx_model *m = NULL;
    int shape[3], status = 1;
    double t_fit;
    CHECK(load_datasets(a, &train, &test, shape));
    CHECK(build(&m, shape, ctx));
    CHECK(compile_fit(m, a, train, &t_fit));
    CHECK(tfx_model_save(m, a->out_path, NULL));
    printf("model saved to %s\n", a->out_path);
    CHECK(evaluate(m, test, t_fit));
    status = 0;
fail:
    tfx_model_free(m);
    tfx_dataset_free(train);
    tfx_dataset_free(test);
    return status;
}
