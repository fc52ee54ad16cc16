/* Explain a model trained anywhere: load an ONNX file (PyTorch, Keras, ... export; docs/onnx.md),
 * read a PNG or JPEG picture, resize and normalise it to the model's input, run an explainer at a
 * layer and write the overlay picture.
 *
 *   explain_onnx MODEL.onnx IMAGE.(png|jpg) [--method NAME] [--layer NAME] [--class K]
 *                [--normalize imagenet|unit|raw] [--out overlay.png]
 *
 * --method: grad_cam (default), grad_cam_plus_plus, score_cam, layer_cam, xgrad_cam, hires_cam,
 *   eigen_cam, vanilla_gradients, gradients_inputs, smooth_grad, integrated_gradients,
 *   guided_backprop, guided_grad_cam, deconvnet, lrp, occlusion, activations.
 * --layer: a layer name, an ONNX node name or its output tensor name (PyTorch's
 *   "/layer4/layer4.1/relu_1/Relu"); default: the method's (CAMs: the last feature map).
 * --class: the target class (default: the predicted one).
 * --normalize: imagenet (default: (x - mean) / std with ImageNet's statistics, torchvision's
 *   models), unit (pixels in [0, 1]) or raw (pixels in [0, 255]: the ONNX Model Zoo's mnist-8).
 * Prints the top-5 scores of the model's output. Uses only the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfx/tfx.h>

static const struct {
    const char *name;
    int method;
} methods[] = {
    {"grad_cam", TFX_METHOD_GRAD_CAM},
    {"grad_cam_plus_plus", TFX_METHOD_GRAD_CAM_PLUS_PLUS},
    {"score_cam", TFX_METHOD_SCORE_CAM},
    {"layer_cam", TFX_METHOD_LAYER_CAM},
    {"xgrad_cam", TFX_METHOD_XGRAD_CAM},
    {"hires_cam", TFX_METHOD_HIRES_CAM},
    {"eigen_cam", TFX_METHOD_EIGEN_CAM},
    {"vanilla_gradients", TFX_METHOD_VANILLA_GRADIENTS},
    {"gradients_inputs", TFX_METHOD_GRADIENTS_INPUTS},
    {"smooth_grad", TFX_METHOD_SMOOTH_GRAD},
    {"integrated_gradients", TFX_METHOD_INTEGRATED_GRADIENTS},
    {"guided_backprop", TFX_METHOD_GUIDED_BACKPROP},
    {"guided_grad_cam", TFX_METHOD_GUIDED_GRAD_CAM},
    {"deconvnet", TFX_METHOD_DECONVNET},
    {"lrp", TFX_METHOD_LRP},
    {"occlusion", TFX_METHOD_OCCLUSION},
    {"activations", TFX_METHOD_ACTIVATIONS},
};

static void usage(void)
{
    fprintf(stderr,
            "usage: explain_onnx MODEL.onnx IMAGE.(png|jpg) [--method NAME] [--layer NAME] [--class K]\n"
            "                    [--normalize imagenet|unit|raw] [--out overlay.png]\nmethods:");
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) fprintf(stderr, " %s", methods[i].name);
    fprintf(stderr, "\n");
}

#define CHECK(call)                                                               \
    do {                                                                          \
        if ((call) != TFX_OK) {                                                   \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message); \
            goto done;                                                            \
        }                                                                         \
    } while (0)

int main(int argc, char **argv)
{
    const char *method_name = "grad_cam", *layer = NULL, *norm = "imagenet", *out_path = "overlay.png";
    int class_index = -1;
    if (argc < 3) {
        usage();
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        if (!strcmp(a, "--method") && has_value)
            method_name = argv[++i];
        else if (!strcmp(a, "--layer") && has_value)
            layer = argv[++i];
        else if (!strcmp(a, "--class") && has_value)
            class_index = atoi(argv[++i]);
        else if (!strcmp(a, "--normalize") && has_value)
            norm = argv[++i];
        else if (!strcmp(a, "--out") && has_value)
            out_path = argv[++i];
        else {
            fprintf(stderr, "unknown or incomplete option '%s'\n", a);
            usage();
            return 2;
        }
    }
    int method = -1;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(method_name, methods[i].name)) method = methods[i].method;
    if (method < 0 || (strcmp(norm, "imagenet") && strcmp(norm, "unit") && strcmp(norm, "raw"))) {
        usage();
        return 2;
    }

    int status = 1;
    tfx_model *m = NULL;
    tfx_image *pic = NULL, *overlay = NULL;
    tfx_attribution *attr = NULL;
    float *src = NULL, *unit = NULL, *x = NULL, *scores = NULL;
    int in[3], out[3];
    CHECK(tfx_model_load_onnx(&m, argv[1], NULL));
    CHECK(tfx_model_input_shape(m, in));
    CHECK(tfx_model_output_shape(m, out));
    const int H = in[0], W = in[1], C = in[2];
    if (C != 1 && C != 3) {
        fprintf(stderr, "the model takes %d channels: only grey (1) or RGB (3) pictures are explained here\n", C);
        goto done;
    }
    if (C != 3 && !strcmp(norm, "imagenet")) {
        fprintf(stderr, "ImageNet normalisation needs an RGB model; use --normalize unit or raw\n");
        goto done;
    }
    CHECK(tfx_image_load(&pic, argv[2], C));
    const size_t n_src = (size_t)pic->width * pic->height * C, n_in = (size_t)H * W * C;
    src = malloc(n_src * sizeof(float));
    unit = malloc(n_in * sizeof(float));
    x = malloc(n_in * sizeof(float));
    const size_t n_out = (size_t)out[0] * out[1] * out[2];
    scores = malloc(n_out * sizeof(float));
    if (!src || !unit || !x || !scores) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (int r = 0; r < pic->height; r++)
        for (int k = 0; k < pic->width * C; k++)
            src[(size_t)r * pic->width * C + k] = pic->pixels[(size_t)r * pic->stride + k] / 255.0f;
    CHECK(tfx_resize_bilinear(src, pic->height, pic->width, C, unit, H, W));
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    const int imagenet = !strcmp(norm, "imagenet"), raw = !strcmp(norm, "raw");
    for (size_t i = 0; i < n_in; i++)
        x[i] = imagenet ? (unit[i] - mean[i % 3]) / std[i % 3] : raw ? unit[i] * 255.0f : unit[i];

    CHECK(tfx_model_predict(m, x, 1, scores));
    printf("%s: %dx%dx%d input, %zu outputs; top scores:", argv[1], H, W, C, n_out);
    for (int t = 0; t < 5 && t < (int)n_out; t++) {
        size_t best = 0;
        for (size_t k = 1; k < n_out; k++)
            if (scores[k] > scores[best]) best = k;
        printf(" %zu (%.4g)", best, scores[best]);
        scores[best] = -3.4e38f;
    }
    printf("\n");

    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    eo.method = method;
    eo.layer_name = layer;
    eo.class_index = class_index;
    eo.upsample = 1;
    CHECK(tfx_explain(m, x, 1, &eo, &attr));
    /* the overlay is drawn over the picture as the model saw it, before normalisation */
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    ro.image_min = 0.0f;
    ro.image_max = 1.0f;
    CHECK(tfx_attribution_render(attr, unit, &ro, &overlay));
    CHECK(tfx_image_write_png(overlay, out_path));
    const char *at = tfx_attribution_layer_name(attr);
    printf("%s of class %d at %s%s%s -> %s\n", method_name, tfx_attribution_class_index(attr, 0),
           at && at[0] ? "layer '" : "the input", at && at[0] ? at : "", at && at[0] ? "'" : "", out_path);
    status = 0;
done:
    tfx_image_free(overlay);
    tfx_attribution_free(attr);
    tfx_image_free(pic);
    free(src);
    free(unit);
    free(x);
    free(scores);
    tfx_model_free(m);
    return status;
}
