/* What the training examples (train_seed_model.c, train_resnet.c) share: the tutorial's command
 * line, the dataset, and Keras's compile / fit / evaluate with the tutorial's settings. */
#ifndef TFX_EXAMPLES_COMMON_H
#define TFX_EXAMPLES_COMMON_H

#include <stddef.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                               \
    do {                                                                          \
        if ((call) != TFX_OK) {                                                   \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message); \
            goto fail;                                                            \
        }                                                                         \
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

/* Builds a model for images of the given shape; ctx is the program's. */
typedef int (*ex_build_fn)(tfx_model **out, const int shape[3], const void *ctx);

/* The tutorial's training script: load the data (ex_load_datasets), build, set the seed and
 * threads, print the summary, compile (Adam, sparse categorical cross-entropy, accuracy), fit
 * (batch 50, validation_split 0.2, Keras's log on stdout), save to a->out_path, evaluate on the
 * test set and print its loss, accuracy and the times. Returns main's exit status. */
int ex_train_main(const ex_train_args *a, ex_build_fn build, const void *ctx);

#endif
