/* A small ResNet trained as the tutorial trains its seed ConvNet (train_seed_model.c: Adam, batch
 * 50, validation_split 0.2, the same options and log), built with the graph API. In Keras's
 * functional API, with w = --width (default 48):
 *
 *     inputs = Input((28, 28, 1))
 *     x = ReLU()(BatchNormalization()(Conv2D(w, 3, padding="same", use_bias=False)(inputs)))
 *     x = MaxPooling2D(3, 2, padding="same")(x)       # 14 x 14
 *     x = block(x, w, 1)                              # identity shortcut
 *     x = block(x, 2 * w, 2)                          # 1x1/2 projection shortcut, 7 x 7
 *     x = block(x, 4 * w, 2, "visualization_layer")   # 4 x 4
 *     outputs = Dense(10, activation="softmax")(GlobalAveragePooling2D()(x))
 *
 * where block(x, f, s) = ReLU()(Add()([BN(Conv(f, 3)(ReLU(BN(Conv(f, 3, s)(x))))), shortcut])),
 * the shortcut being x, or BN(Conv(f, 1, s)(x)) when the shape changes; every Conv2D has "same"
 * padding and no bias. BatchNormalization's momentum is 0.5 (--bn-momentum), not Keras's 0.99:
 * the tutorial's 2 epochs of 4800 images are 192 steps, after which 0.99's moving statistics
 * still hold 15 % of their initial values (test accuracy 18 %), and 0.9's lag behind the weights
 * Adam moves (1-2 points below 0.5; docs/training.md, "Measured"). Training itself is the same.
 *
 * The saved model goes to explain_all like the seed model's, e.g. Grad-CAM inside a residual
 * branch: explain_all --model resnet.tfx --layer block2_relu1 --out resnet (examples/tutorial.sh).
 *
 *   train_resnet [train_seed_model's options] [--width W] [--bn-momentum M] [DATASET_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfx/tfx.h>

#include "common.h"

/* Conv2D (same padding, no bias: BatchNormalization follows) + BatchNormalization [+ ReLU],
 * reading `in` (NULL: the model input); names prefix_conv<k>, prefix_bn<k>, prefix_relu<k>. */
static int conv_bn(tfx_model *m, const tfx_layer *in, int filters, int kernel, int stride, float momentum,
                   const char *prefix, const char *k, int relu, tfx_layer **out)
{
    char name[3][64];
    snprintf(name[0], sizeof name[0], "%s_conv%s", prefix, k);
    snprintf(name[1], sizeof name[1], "%s_bn%s", prefix, k);
    snprintf(name[2], sizeof name[2], "%s_relu%s", prefix, k);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = filters;
    c.kernel_h = c.kernel_w = kernel;
    c.stride_h = c.stride_w = stride;
    c.padding = TFX_PADDING_SAME;
    c.use_bias = 0;
    c.name = name[0];
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    bn.momentum = momentum;
    bn.name = name[1];
    int rc = tfx_model_set_next_input(m, in);
    if (!rc) rc = tfx_model_add_conv2d(m, &c, NULL);
    if (!rc) rc = tfx_model_add_batch_normalization(m, &bn, out);
    if (!rc && relu) rc = tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, name[2], out);
    return rc;
}

/* A basic block on x: two 3x3 convolutions (the first with the stride) plus the shortcut, then
 * ReLU named out_name. */
static int basic_block(tfx_model *m, tfx_layer *x, int filters, int stride, float momentum, int index,
                       const char *out_name, tfx_layer **out)
{
    char prefix[32], name[64];
    snprintf(prefix, sizeof prefix, "block%d", index);
    int shape[3], rc = tfx_layer_output_shape(x, shape);
    tfx_layer *branch[2] = {NULL, x};
    if (!rc) rc = conv_bn(m, x, filters, 3, stride, momentum, prefix, "1", 1, &branch[0]);
    if (!rc) rc = conv_bn(m, branch[0], filters, 3, 1, momentum, prefix, "2", 0, &branch[0]);
    if (!rc && (stride != 1 || shape[2] != filters)) /* the shortcut's number is 0, as in Keras's ResNet */
        rc = conv_bn(m, x, filters, 1, stride, momentum, prefix, "0", 0, &branch[1]);
    snprintf(name, sizeof name, "%s_add", prefix);
    if (!rc) rc = tfx_model_add_add(m, branch, 2, name, NULL);
    if (!rc) rc = tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, out_name, out);
    return rc;
}

typedef struct resnet_arch {
    int width;      /* the first block's filters */
    float momentum; /* BatchNormalization's */
} resnet_arch;

static int build_resnet(tfx_model **out, const int shape[3], const void *ctx)
{
    const resnet_arch *arch = ctx;
    int width = arch->width;
    float momentum = arch->momentum;
    static const struct {
        int widen, stride;
        const char *out;
    } blocks[] = {{1, 1, "block1_out"}, {2, 2, "block2_out"}, {4, 2, "visualization_layer"}};
    tfx_model *m = NULL;
    tfx_layer *x = NULL;
    int rc = tfx_model_new(&m, shape[0], shape[1], shape[2]);
    if (rc) return rc;
    if ((rc = conv_bn(m, NULL, width, 3, 1, momentum, "stem", "", 1, &x))) goto fail;
    tfx_pool2d_options pool = TFX_POOL2D_OPTIONS_INIT;
    pool.pool_h = pool.pool_w = 3;
    pool.stride_h = pool.stride_w = 2;
    pool.padding = TFX_PADDING_SAME;
    pool.name = "stem_pool";
    if ((rc = tfx_model_add_max_pooling2d(m, &pool, &x))) goto fail;
    for (int b = 0; b < (int)(sizeof blocks / sizeof blocks[0]); b++)
        if ((rc = basic_block(m, x, width * blocks[b].widen, blocks[b].stride, momentum, b + 1, blocks[b].out, &x)))
            goto fail;
    if ((rc = tfx_model_add_global_average_pooling2d(m, "avg_pool", NULL))) goto fail;
    tfx_dense_options dense = TFX_DENSE_OPTIONS_INIT;
    dense.units = 10;
    dense.activation = TFX_ACTIVATION_SOFTMAX;
    dense.name = "predictions";
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
    ex_train_args_init(&args, "resnet.tfx");
    resnet_arch arch = {48, 0.5f};
    for (int i = 1; i < argc; i++) {
        int k = ex_train_option(&args, argc, argv, i);
        if (!k && i + 1 < argc && !strcmp(argv[i], "--width"))
            arch.width = atoi(argv[++i]);
        else if (!k && i + 1 < argc && !strcmp(argv[i], "--bn-momentum"))
            arch.momentum = strtof(argv[++i], NULL);
        else if (!k) {
            ex_train_usage(argv[0], " [--width W] [--bn-momentum M]", "resnet.tfx");
            fprintf(stderr,
                    "  --width W        the first block's filters, then 2W and 4W (default 48)\n"
                    "  --bn-momentum M  BatchNormalization's momentum (default 0.5; Keras's is 0.99)\n");
            return 2;
        } else
            i += k - 1;
    }

    return ex_train_main(&args, build_resnet, &arch);
}
