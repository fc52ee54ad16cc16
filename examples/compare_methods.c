/* Every explainer on one image, in one grid PNG, with the deletion / insertion AUC of each
 * (Petsiuk et al.; lower deletion and higher insertion are better) printed as a table.
 *
 *   compare_methods [model.tfx] [dataset_dir] [out.png] [image_index]
 *
 * model.tfx: a model saved by train_seed_model ("-" or missing: train the tutorial's seed model
 * for one epoch on 2000 Fashion-MNIST images first); dataset_dir: MNIST-style IDX files
 * (default /usr/share/datasets/fashion-mnist); out.png: default compare_methods.png.
 * Tiles, left to right: the image, then one per method in the table's order. Uses only the
 * public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            goto done;                                                               \
        }                                                                            \
    } while (0)

static int train_seed_model(tfx_model **out, const tfx_dataset *train)
{
    tfx_model *m = NULL;
    int shape[3];
    tfx_dataset_shape(train, shape);
    int rc = tfx_model_new(&m, shape[0], shape[1], shape[2]);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.activation = TFX_ACTIVATION_RELU;
    c.filters = 32;
    if (!rc) rc = tfx_model_add_conv2d(m, &c, NULL);
    c.filters = 64;
    c.name = "visualization_layer";
    if (!rc) rc = tfx_model_add_conv2d(m, &c, NULL);
    c.filters = 128;
    c.name = NULL;
    if (!rc) rc = tfx_model_add_conv2d(m, &c, NULL);
    if (!rc) rc = tfx_model_add_flatten(m, NULL, NULL);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 128;
    d.activation = TFX_ACTIVATION_RELU;
    if (!rc) rc = tfx_model_add_dense(m, &d, NULL);
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if (!rc) rc = tfx_model_add_dense(m, &d, NULL);
    if (!rc) rc = tfx_model_compile(m, NULL);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 50;
    f.epochs = 1;
    f.shuffle = 1;
    f.verbose = 2;
    f.progress_file = stdout;
    if (!rc) rc = tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), tfx_dataset_count(train), &f,
                                NULL);
    if (rc) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

/* Copy a picture (grey or RGB, same size) into an RGB tile. */
static void to_rgb(const tfx_image *img, unsigned char *tile)
{
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int ch = 0; ch < 3; ch++)
                tile[((size_t)y * img->width + x) * 3 + ch] =
                    img->pixels[(size_t)y * img->stride + (size_t)x * img->channels + (img->channels == 3 ? ch : 0)];
}

int main(int argc, char **argv)
{
    const char *model_path = argc > 1 ? argv[1] : "-";
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    const char *out_path = argc > 3 ? argv[3] : "compare_methods.png";
    size_t index = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 0;
    static const struct {
        const char *name;
        int method, lrp_rule;
    } methods[] = {
        {"Vanilla gradients", TFX_METHOD_VANILLA_GRADIENTS, 0},
        {"Gradients x inputs", TFX_METHOD_GRADIENTS_INPUTS, 0},
        {"SmoothGrad", TFX_METHOD_SMOOTH_GRAD, 0},
        {"Integrated Gradients", TFX_METHOD_INTEGRATED_GRADIENTS, 0},
        {"Occlusion", TFX_METHOD_OCCLUSION, 0},
        {"Grad-CAM", TFX_METHOD_GRAD_CAM, 0},
        {"Grad-CAM++", TFX_METHOD_GRAD_CAM_PLUS_PLUS, 0},
        {"Score-CAM", TFX_METHOD_SCORE_CAM, 0},
        {"Layer-CAM", TFX_METHOD_LAYER_CAM, 0},
        {"XGrad-CAM", TFX_METHOD_XGRAD_CAM, 0},
        {"HiResCAM", TFX_METHOD_HIRES_CAM, 0},
        {"Eigen-CAM", TFX_METHOD_EIGEN_CAM, 0},
        {"Guided backprop", TFX_METHOD_GUIDED_BACKPROP, 0},
        {"Guided Grad-CAM", TFX_METHOD_GUIDED_GRAD_CAM, 0},
        {"DeconvNet", TFX_METHOD_DECONVNET, 0},
        {"Guided SmoothGrad", TFX_METHOD_GUIDED_SMOOTH_GRAD, 0},
        {"VarGrad", TFX_METHOD_NOISE_TUNNEL, 0},
        {"LRP-epsilon", TFX_METHOD_LRP, TFX_LRP_EPSILON},
        {"LRP composite", TFX_METHOD_LRP, TFX_LRP_COMPOSITE},
    };
    enum { NM = sizeof methods / sizeof methods[0] };
    int status = 1;
    tfx_dataset *train = NULL, *test = NULL;
    tfx_model *m = NULL;
    tfx_image *grid = NULL, *pic = NULL;
    unsigned char *tiles = NULL;
    tfx_attribution *a = NULL;
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.offset = index;
    dopt.limit = 1;
    CHECK(tfx_dataset_load_idx_dir(&test, dir, TFX_DATA_TEST, &dopt));
    if (strcmp(model_path, "-") == 0) {
        tfx_data_options topt = TFX_DATA_OPTIONS_INIT;
        topt.limit = 2000;
        CHECK(tfx_dataset_load_idx_dir(&train, dir, TFX_DATA_TRAIN, &topt));
        CHECK(train_seed_model(&m, train));
    } else {
        CHECK(tfx_model_load(&m, model_path));
    }
    int shape[3];
    CHECK(tfx_model_input_shape(m, shape));
    const int H = shape[0], W = shape[1];
    const float *x = tfx_dataset_images(test);
    tiles = calloc((size_t)(NM + 1) * H * W * 3, 1);
    if (!tiles) goto done;
    /* tile 0: the image itself, through the renderer's saliency path on |x| */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_ACTIVATIONS;
    CHECK(tfx_render_saliency(x, 1, H, W, shape[2], NULL, &pic));
    to_rgb(pic, tiles);
    tfx_image_free(pic);
    pic = NULL;
    printf("image %zu of %s, label %d\n\n", index, dir, (int)tfx_dataset_labels(test)[0]);
    printf("| # | method | deletion AUC | insertion AUC |\n|---|---|---|---|\n");
    for (int k = 0; k < NM; k++) {
        o = (tfx_explain_options)TFX_EXPLAIN_OPTIONS_INIT;
        o.method = methods[k].method;
        o.upsample = 1;
        o.samples = 20;
        o.tunnel = TFX_TUNNEL_VARGRAD;
        if (methods[k].lrp_rule) o.lrp_rule = methods[k].lrp_rule;
        CHECK(tfx_explain(m, x, 1, &o, &a));
        double del, ins;
        CHECK(tfx_deletion_insertion(m, x, 1, a, NULL, &del, &ins));
        printf("| %d | %s | %.4f | %.4f |\n", k + 1, methods[k].name, del, ins);
        CHECK(tfx_attribution_render(a, x, NULL, &pic));
        to_rgb(pic, tiles + (size_t)(k + 1) * H * W * 3);
        tfx_image_free(pic);
        pic = NULL;
        tfx_attribution_free(a);
        a = NULL;
    }
    CHECK(tfx_render_grid(tiles, NM + 1, H, W, 3, 0, 0, &grid));
    CHECK(tfx_image_write_png(grid, out_path));
    printf("\nwrote %s (%dx%d, %d tiles)\n", out_path, grid->width, grid->height, NM + 1);
    status = 0;
done:
    tfx_attribution_free(a);
    tfx_image_free(pic);
    tfx_image_free(grid);
    free(tiles);
    tfx_model_free(m);
    tfx_dataset_free(train);
    tfx_dataset_free(test);
    return status;
}
