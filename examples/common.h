/* What the training examples (train_seed_model.c, train_resnet.c) share: the tutorial's command
 * line, the dataset, and Keras's compile / fit / evaluate with the tutorial's settings. */
#ifndef TFX_EXAMPLES_COMMON_H
#define TFX_EXAMPLES_COMMON_H

#include <stddef.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

typedef struct ex_train_args {
    int epochs, verbose, threads;
    size_t subset, test_subset;
    unsigned long long seed;
    const char *dir, *out_path;
} ex_train_args;

/* Defaults: 2 epochs, 10000 training images, the whole test set, seed 0, Fashion-MNIST. */
void ex_train_args_init(ex_train_args *a, const char *out_path);
/* argv[i] as one of the common options (or the dataset directory): the number of arguments it
 * takes (1 or 2), 0 when it is none of them. */
int ex_train_option(ex_train_args *a, int argc, char **argv, int i);
/* The common options' help, after "usage: argv0 [common options]" + extra_usage. */
void ex_train_usage(const char *argv0, const char *extra_usage, const char *default_out);

double ex_now(void);

/* (x_train, y_train), (x_test, y_test) = load_data() with the subsets; IDX or CIFAR-10 directory.
 * Prints one line about them. */
int ex_load_datasets(const ex_train_args *a, tfx_dataset **train, tfx_dataset **test, int shape[3]);
/* Seed, threads, summary, compile (Adam, sparse categorical cross-entropy, accuracy) and fit
 * (batch 50, validation_split 0.2, Keras's log on stdout); *seconds: the time of fit. */
int ex_compile_fit(tfx_model *m, const ex_train_args *a, const tfx_dataset *train, double *seconds);
/* model.evaluate(x_test, y_test), printed with the fit time. */
int ex_evaluate(tfx_model *m, const tfx_dataset *test, double fit_seconds);

#endif
