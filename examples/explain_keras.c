/* A Keras model explained in C: the C twin of the tutorial's after-training script for a model
 * saved by Keras (model.save("model.h5") or model.save("model.keras")). In tf-explain:
 *
 *   model = tf.keras.models.load_model("model.h5")
 *   grid = ExtractActivations().explain(([image], [label]), model, "visualization_layer")
 *   ExtractActivations().save(grid, ".", "act.png")
 *   ... GradCAM, VanillaGradients, GradientsInputs, OcclusionSensitivity, SmoothGrad,
 *       IntegratedGradients on the same image
 *
 *   explain_keras MODEL [--image PICTURE] [--layer NAME] [--class K] [--out DIR]
 *
 * MODEL: a Keras .h5 or .keras file (tfx_model_load_keras). --image: a PNG or JPEG, converted to
 * the model's channels, resized to its input (bilinear) and scaled to [0, 1] as the tutorial's
 * images are; without it a fixed test pattern. --layer: the layer whose activations are drawn
 * and Grad-CAM uses (default "visualization_layer", else the last Conv2D). --class: the class to
 * explain (default: the predicted one). Writes act.png, grad_cam.png, vanilla_gradients.png,
 * gradients_inputs.png, occlusion.png, smoothgrad.png, integrated_gradients.png into DIR
 * (default "."). Try it on the real Keras 2.6 file of the tests:
 *
 *   ./build/examples/explain_keras ../shared/fixtures/keras/mnist_cnn_keras.h5 --out /tmp/k */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s MODEL.h5|MODEL.keras [--image PICTURE] [--layer NAME] [--class K] [--out DIR]\n", argv0);
}

/* The picture at the model's input size, in [0, 1]; or a fixed pattern without one. */
static int input_image(const char *path, const int s[3], float *x)
{
    const size_t n = (size_t)s[0] * s[1] * s[2];
    if (!path) {
        for (size_t i = 0; i < n; i++) x[i] = (float)((i * 37 + (i / (size_t)s[1]) * 11) % 97) / 96.0f;
        return TFX_OK;
    }
    tfx_image *img = NULL;
    int rc = tfx_image_load(&img, path, s[2]);
    if (rc) return rc;
    float *src = malloc((size_t)img->width * img->height * s[2] * sizeof *src);
    if (!src) {
        tfx_image_free(img);
        return TFX_ENOMEM;
    }
    for (int r = 0; r < img->height; r++)
        for (int c = 0; c < img->width * s[2]; c++)
            src[(size_t)r * img->width * s[2] + c] = img->pixels[(size_t)r * img->stride + c] / 255.0f;
    rc = tfx_resize_bilinear(src, img->height, img->width, s[2], x, s[0], s[1]);
    free(src);
    tfx_image_free(img);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *image_path = NULL, *layer = "visualization_layer", *out_dir = ".";
    int class_index = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--image") && has_value) image_path = argv[++i];
        else if (!strcmp(a, "--layer") && has_value) layer = argv[++i];
        else if (!strcmp(a, "--class") && has_value) class_index = atoi(argv[++i]);
        else if (!strcmp(a, "--out") && has_value) out_dir = argv[++i];
        else if (a[0] != '-' && !model_path) model_path = a;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!model_path) {
        usage(argv[0]);
        return 2;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    tfx_model *m = NULL;
    float *x = NULL, *probs = NULL;
    tfx_image *img = NULL;
    tfx_attribution *a = NULL;
    int s[3], so[3], status = 1;
    CHECK(tfx_model_load_keras(&m, model_path, NULL));
    printf("%s", tfx_model_summary(m));
    /* tf-explain's layer_name; a model without "visualization_layer" shows its last Conv2D */
    if (!tfx_model_find_layer(m, layer)) {
        const char *last = NULL;
        for (size_t i = 0; i < tfx_model_layer_count(m); i++)
            if (tfx_layer_get_kind(tfx_model_layer(m, i)) == TFX_LAYER_CONV2D) last = tfx_layer_name(tfx_model_layer(m, i));
        if (!last) {
            fprintf(stderr, "%s has no layer '%s' and no Conv2D: give one with --layer\n", model_path, layer);
            goto fail;
        }
        printf("no layer '%s': using the last Conv2D, '%s'\n", layer, last);
        layer = last;
    }
    CHECK(tfx_model_input_shape(m, s));
    CHECK(tfx_model_output_shape(m, so));
    const size_t classes = (size_t)so[0] * so[1] * so[2];
    x = malloc((size_t)s[0] * s[1] * s[2] * sizeof *x);
    probs = malloc(classes * sizeof *probs);
    if (!x || !probs) goto fail;
    CHECK(input_image(image_path, s, x));
    CHECK(tfx_model_predict(m, x, 1, probs));
    size_t best = 0;
    for (size_t k = 1; k < classes; k++)
        if (probs[k] > probs[best]) best = k;
    printf("predicted class %zu (output %.4f)%s\n", best, probs[best], class_index >= 0 ? "" : ": explained");

    char path[4096];
    /* ExtractActivations on the layer: the tutorial's act.png */
    CHECK(tfx_extract_activations(m, x, 1, layer, NULL, &img));
    snprintf(path, sizeof path, "%s/act.png", out_dir);
    CHECK(tfx_image_write_png(img, path));
    printf("%-28s %dx%d  (%s)\n", path, img->width, img->height, layer);
    tfx_image_free(img);
    img = NULL;

    static const struct {
        int method;
        const char *file;
    } methods[] = {{TFX_METHOD_GRAD_CAM, "grad_cam"},
                   {TFX_METHOD_VANILLA_GRADIENTS, "vanilla_gradients"},
                   {TFX_METHOD_GRADIENTS_INPUTS, "gradients_inputs"},
                   {TFX_METHOD_OCCLUSION, "occlusion"},
                   {TFX_METHOD_SMOOTH_GRAD, "smoothgrad"},
                   {TFX_METHOD_INTEGRATED_GRADIENTS, "integrated_gradients"}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = methods[i].method;
        o.class_index = class_index;
        if (methods[i].method == TFX_METHOD_GRAD_CAM) o.layer_name = layer;
        CHECK(tfx_explain(m, x, 1, &o, &a));
        CHECK(tfx_attribution_render(a, x, NULL, &img));
        snprintf(path, sizeof path, "%s/%s.png", out_dir, methods[i].file);
        CHECK(tfx_image_write_png(img, path));
        printf("%-28s %dx%d\n", path, img->width, img->height);
        tfx_image_free(img);
        img = NULL;
        tfx_attribution_free(a);
        a = NULL;
    }
    status = 0;
fail:
    tfx_attribution_free(a);
    tfx_image_free(img);
    free(x);
    free(probs);
    tfx_model_free(m);
    return status;
}
