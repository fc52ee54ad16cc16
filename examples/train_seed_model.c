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

#include <tfx/tfx.h>

#include "common.h"

/* The seed model of the tutorial, for the dataset's input shape. */
static int build_seed_model(tfx_model **out, const int shape[3], const void *ctx)
{
    (void)ctx;
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
    ex_train_args args;
    ex_train_args_init(&args, "seed_model.tfx");
    for (int i = 1; i < argc; i++) {
        int k = ex_train_option(&args, argc, argv, i);
        if (!k) {
            ex_train_usage(argv[0], "", "seed_model.tfx");
            return 2;
        }
        i += k - 1;
    }

    return ex_train_main(&args, build_seed_model, NULL);
}
