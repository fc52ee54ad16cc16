/* Every explainer on a few test images of different classes, each explained for its true
 * label: one PNG per method (the images side by side), in libtfx's default (paper-correct)
 * rendering and, under a "_tfexplain" suffix, as tf-explain 0.3.1 renders it, plus inputs.png
 * (the images) and grad_cam_map.png (the Grad-CAM heatmap without the picture). Also prints, per
 * image, the predicted class and the Integrated Gradients completeness gap at m = 200 (the
 * pictures use the default options: IG with 50 steps, SmoothGrad 50 samples, 4x4 patches).
 *
 *   explain_all [--model FILE] [--out DIR] [--images N] [--steps M] [--scale S]
 *               [--scale-mode nearest|bilinear] [--layer NAME] [DATASET_DIR]
 *
 * --model: the model saved by train_seed_model or train_resnet (default out/seed_model.tfx), which
 * must have a layer named "visualization_layer" (the activations' layer); --layer: Grad-CAM's
 * layer, e.g. one inside a residual block of train_resnet's model. DATASET_DIR:
 * Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist) or a CIFAR-10
 * "cifar-10-batches-bin" directory; the images come from its test set.
 *
 * tf-explain's explain() takes one class_index for the whole batch, so each image is explained
 * by its own call (n = 1) and the pictures are put side by side here. A consequence for the
 * "_tfexplain" gradient pictures: tf-explain's z-score normalisation is per call, so here per
 * image.
 *
 * Scaled pictures (--scale, tfx_render_options' scale_mode / scale / tile_height): the default
 * pictures have 224-pixel tiles (x8 for Fashion-MNIST's 28x28), nearest neighbour (--scale-mode
 * bilinear smooths); the activations grids use tiles of half that size. The "_tfexplain"
 * pictures keep tf-explain's exact size (compat mode refuses scaling). contact_sheet.png puts it
 * together: one row per image (the input, then each method's picture, one cell each), a label
 * per column and a caption per row, drawn with a tiny 5x7 font of this file.
 *
 * The default pictures come from tfx_explain + tfx_attribution_render with the options the
 * picture functions (tfx_grad_cam & co.) use, plus the scaling: --scale 1 writes the same bytes
 * as those functions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <tfx/tfx.h>

#define CHECK(call)                                                                  \
    do {                                                                             \
        if ((call) != TFX_OK) {                                                      \
            fprintf(stderr, "%s failed: %s\n", #call, tfx_error_last()->message);   \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

#define MAX_IMAGES 10
#define GAP 2 /* white pixels between the pictures of two images */

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *const cifar_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};

typedef int (*picture_fn)(tfx_model *, const float *, size_t, int, const tfx_explain_options *, tfx_image **);

static const struct {
    const char *file; /* output name without ".png" */
    int method;
    picture_fn fn; /* NULL: activations */
} methods[] = {
    {"activations", TFX_METHOD_ACTIVATIONS, NULL},
    {"vanilla_gradients", TFX_METHOD_VANILLA_GRADIENTS, tfx_vanilla_gradients},
    {"gradients_inputs", TFX_METHOD_GRADIENTS_INPUTS, tfx_gradients_inputs},
    {"occlusion", TFX_METHOD_OCCLUSION, tfx_occlusion_sensitivity},
    {"grad_cam", TFX_METHOD_GRAD_CAM, tfx_grad_cam},
    {"smooth_grad", TFX_METHOD_SMOOTH_GRAD, tfx_smooth_grad},
    {"integrated_gradients", TFX_METHOD_INTEGRATED_GRADIENTS, tfx_integrated_gradients},
};

/* ---- scaling ---- */

/* --scale: "8" an integer factor, "224px" a tile size, "1" none. */
typedef struct scale_spec {
    int mode;   /* tfx_scale_mode; NONE: no scaling */
    int factor; /* > 0: integer factor */
    int px;     /* > 0: tile height in pixels */
} scale_spec;

static int parse_scale(const char *arg, const char *mode, scale_spec *s)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || v < 1 || v > 4096) return -1;
    s->factor = s->px = 0;
    if (!strcmp(end, "px")) s->px = (int)v;
    else if (*end == '\0' && v > 1) s->factor = (int)v;
    else if (*end != '\0') return -1;
    s->mode = !s->factor && !s->px          ? TFX_SCALE_NONE
              : !strcmp(mode, "bilinear") ? TFX_SCALE_BILINEAR
                                          : TFX_SCALE_NEAREST;
    return strcmp(mode, "nearest") && strcmp(mode, "bilinear") ? -1 : 0;
}

/* The options' scaling fields from --scale; `shrink` divides a pixel size (the
 * activations' grids: many tiles per image). */
static void set_scale(tfx_render_options *ro, const scale_spec *s, int shrink)
{
    ro->scale_mode = s->mode;
    ro->scale = s->factor;
    ro->tile_height = s->px ? (s->px / shrink > 0 ? s->px / shrink : 1) : 0;
}

/* One image's default picture of a method, as the picture functions make it, scaled. */
static int default_picture(tfx_model *m, const float *xi, int label, int method, const char *cam_layer,
                           const scale_spec *s, int shrink,
                           int cell, float image_weight, tfx_image **out)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    o.class_index = label;
    o.upsample = 0; /* CAM maps at layer resolution: the renderer resizes them (heatmap_display) */
    o.layer_name = method == TFX_METHOD_ACTIVATIONS ? "visualization_layer" : cam_layer; /* others ignore it */
    tfx_attribution *a = NULL;
    int rc = tfx_explain(m, xi, 1, &o, &a);
    if (rc) return rc;
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    /* gradients: Simonyan et al.'s max over channels; attributions add up over channels */
    ro.reduce = method == TFX_METHOD_VANILLA_GRADIENTS || method == TFX_METHOD_SMOOTH_GRAD ? TFX_REDUCE_MAX_ABS
                                                                                            : TFX_REDUCE_SUM_ABS;
    if (image_weight >= 0.0f) ro.image_weight = image_weight;
    set_scale(&ro, s, shrink);
    if (cell > 0) { /* contact sheet: the whole picture fits one cell */
        int shape[3], k = 1;
        if (method == TFX_METHOD_ACTIVATIONS && tfx_attribution_shape(a, shape) == TFX_OK) k = shape[2];
        int cols = 1;
        while (cols * cols < k) cols++;
        ro.scale_mode = s->mode ? s->mode : TFX_SCALE_NEAREST;
        ro.scale = 0;
        ro.tile_height = cell / cols > 0 ? cell / cols : 1;
    }
    rc = tfx_attribution_render(a, xi, &ro, out);
    tfx_attribution_free(a);
    return rc;
}

/* ---- a tiny 5x7 font for the contact sheet's labels (capitals, digits, a few signs) ---- */

static const struct {
    char c;
    uint8_t rows[7]; /* top to bottom, bit 4 = leftmost column */
} font[] = {
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'*', {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
    {'%', {0x19, 0x19, 0x02, 0x04, 0x08, 0x13, 0x13}},
};

/* Draw text at (x, y) in RGB image img, each font pixel a z x z block, clipped to the image
 * and to x_end; lower case drawn as capitals, unknown characters as blanks. */
static void draw_text(tfx_image *img, int x, int y, int x_end, int z, const char *text, const uint8_t rgb[3])
{
    if (x_end > img->width) x_end = img->width;
    for (const char *p = text; *p; p++, x += 6 * z) {
        char c = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        const uint8_t *rows = NULL;
        for (size_t g = 0; g < sizeof font / sizeof font[0]; g++)
            if (font[g].c == c) rows = font[g].rows;
        if (!rows) continue;
        for (int r = 0; r < 7 * z; r++)
            for (int col = 0; col < 5 * z; col++) {
                int px = x + col, py = y + r;
                if (!(rows[r / z] & (0x10 >> (col / z))) || px < 0 || px >= x_end || py < 0 || py >= img->height)
                    continue;
                memcpy(img->pixels + (size_t)py * img->stride + (size_t)px * 3, rgb, 3);
            }
    }
}

/* Copy picture p (1 or 3 channels) into RGB image dst at (x, y), clipped. */
static void blit(tfx_image *dst, const tfx_image *p, int x, int y)
{
    for (int r = 0; r < p->height && y + r < dst->height; r++)
        for (int c = 0; c < p->width && x + c < dst->width; c++) {
            const uint8_t *s = p->pixels + (size_t)r * p->stride + (size_t)c * (size_t)p->channels;
            uint8_t *d = dst->pixels + (size_t)(y + r) * dst->stride + (size_t)(x + c) * 3;
            for (int k = 0; k < 3; k++) d[k] = s[p->channels >= 3 ? k : 0];
        }
}

static int file_exists(const char *path)
{
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

/* The pictures side by side, top-aligned, separated by GAP white columns. All have the same
 * channel count (one method, one mode). */
static int hstack(tfx_image *const *pics, size_t n, tfx_image **out)
{
    int w = 0, h = 0, c = pics[0]->channels;
    for (size_t i = 0; i < n; i++) {
        w += pics[i]->width + (i ? GAP : 0);
        if (pics[i]->height > h) h = pics[i]->height;
    }
    int rc = tfx_image_new(out, w, h, c);
    if (rc) return rc;
    tfx_image *dst = *out;
    memset(dst->pixels, 255, dst->stride * (size_t)h);
    int x0 = 0;
    for (size_t i = 0; i < n; i++) {
        const tfx_image *p = pics[i];
        for (int r = 0; r < p->height; r++)
            memcpy(dst->pixels + (size_t)r * dst->stride + (size_t)x0 * (size_t)c, p->pixels + (size_t)r * p->stride,
                   (size_t)p->width * (size_t)c);
        x0 += p->width + GAP;
    }
    return TFX_OK;
}

/* The input pictures themselves ([0, 1] floats -> bytes), for reference. */
static int input_picture(const float *x, const int shape[3], tfx_image **out)
{
    int rc = tfx_image_new(out, shape[1], shape[0], shape[2]);
    if (rc) return rc;
    for (int r = 0; r < shape[0]; r++)
        for (int i = 0; i < shape[1] * shape[2]; i++) {
            float v = x[(size_t)r * (size_t)(shape[1] * shape[2]) + (size_t)i];
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            (*out)->pixels[(size_t)r * (*out)->stride + (size_t)i] = (uint8_t)(255.0f * v + 0.5f);
        }
    return TFX_OK;
}

static int write_png(const tfx_image *img, const char *dir, const char *name, const char *suffix)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.png", dir, name, suffix);
    int rc = tfx_image_write_png(img, path);
    if (rc == TFX_OK) printf("  %s (%dx%d)\n", path, img->width, img->height);
    return rc;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--model FILE] [--out DIR] [--images N] [--steps M] [--scale S] [--scale-mode M] [--layer NAME]\n"
            "       [DATASET_DIR]\n"
            "  --model FILE  trained model (default out/seed_model.tfx)\n"
            "  --out DIR     where the pictures go (default out)\n"
            "  --images N    explain the first N test images of distinct classes (1..%d, default 4)\n"
            "  --steps M     Integrated Gradients steps of the completeness check (default 200; pictures use 50)\n"
            "  --scale S     tiles of the default pictures: S px (e.g. 224px, the default), an integer factor\n"
            "                (e.g. 8), or 1 for the maps' own size; the _tfexplain pictures keep tf-explain's size\n"
            "  --scale-mode nearest|bilinear   how tiles are scaled (default nearest: one block per pixel)\n"
            "  --layer NAME  Grad-CAM's layer (default: the last conv-like layer with a feature map);\n"
            "                the activations are always those of visualization_layer\n",
            argv0, MAX_IMAGES);
}

int main(int argc, char **argv)
{
    const char *model_path = "out/seed_model.tfx", *out_dir = "out";
    const char *dir = "/usr/share/datasets/fashion-mnist";
    const char *scale_arg = "224px", *scale_mode = "nearest", *cam_layer = NULL;
    int n_images = 4, steps = 200;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--model") && has_value)
            model_path = argv[++i];
        else if (!strcmp(a, "--out") && has_value)
            out_dir = argv[++i];
        else if (!strcmp(a, "--images") && has_value)
            n_images = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && has_value)
            steps = atoi(argv[++i]);
        else if (!strcmp(a, "--scale") && has_value)
            scale_arg = argv[++i];
        else if (!strcmp(a, "--scale-mode") && has_value)
            scale_mode = argv[++i];
        else if (!strcmp(a, "--layer") && has_value)
            cam_layer = argv[++i];
        else if (a[0] == '-') {
            usage(argv[0]);
            return 2;
        } else
            dir = a;
    }
    scale_spec sc;
    if (n_images < 1 || n_images > MAX_IMAGES || steps < 1 || parse_scale(scale_arg, scale_mode, &sc)) {
        usage(argv[0]);
        return 2;
    }
    if (!file_exists(model_path)) {
        fprintf(stderr,
                "%s: no model at %s.\n"
                "Train and save one first, e.g.\n"
                "  ./build/examples/train_seed_model --out %s\n"
                "or run the whole tutorial: bash examples/tutorial.sh\n",
                argv[0], model_path, model_path);
        return 1;
    }

    tfx_model *m = NULL;
    tfx_dataset *test = NULL;
    tfx_attribution *ig = NULL;
    tfx_image *pics[MAX_IMAGES] = {NULL}, *row = NULL, *sheet = NULL, *cellpic = NULL;
    float *x = NULL, *probs = NULL;
    int status = 1;
    double t0 = now();

    CHECK(tfx_model_load(&m, model_path));
    char path[4096];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    int cifar = file_exists(path);
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = 1000; /* plenty to find images of distinct classes */
    if (cifar)
        CHECK(tfx_dataset_load_cifar10_dir(&test, dir, TFX_DATA_TEST, &dopt));
    else
        CHECK(tfx_dataset_load_idx_dir(&test, dir, TFX_DATA_TEST, &dopt));
    int shape[3], in_shape[3], out_shape[3];
    CHECK(tfx_dataset_shape(test, shape));
    CHECK(tfx_model_input_shape(m, in_shape));
    CHECK(tfx_model_output_shape(m, out_shape));
    if (memcmp(shape, in_shape, sizeof shape)) {
        fprintf(stderr, "%s: the model takes %dx%dx%d images but %s holds %dx%dx%d ones\n", argv[0], in_shape[0],
                in_shape[1], in_shape[2], dir, shape[0], shape[1], shape[2]);
        goto fail;
    }
    const char *const *names = tfx_dataset_num_classes(test) == 10 ? (cifar ? cifar_names : fashion_names) : NULL;

    /* The first test images of n_images distinct classes, in test-set order. */
    size_t sample = tfx_dataset_sample_size(test), index[MAX_IMAGES];
    int labels[MAX_IMAGES], n = 0;
    for (size_t i = 0; i < tfx_dataset_count(test) && n < n_images; i++) {
        int label = tfx_dataset_labels(test)[i], seen = 0;
        for (int j = 0; j < n; j++) seen |= labels[j] == label;
        if (seen) continue;
        index[n] = i;
        labels[n++] = label;
    }
    x = malloc((size_t)n * sample * sizeof *x);
    probs = malloc((size_t)n * (size_t)out_shape[2] * sizeof *probs);
    if (!x || !probs) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        goto fail;
    }
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * sample, tfx_dataset_image(test, index[i]), sample * sizeof *x);
    CHECK(tfx_model_predict(m, x, (size_t)n, probs));

    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", argv[0], out_dir, strerror(errno));
        goto fail;
    }
    printf("pictures, one column per image (left to right: test images");
    for (int i = 0; i < n; i++) printf(" %zu", index[i]);
    printf("):\n");
    /* The pictures' tile size (and the contact sheet's cell). */
    int cell = sc.px ? sc.px : sc.factor ? sc.factor * shape[0] : shape[0];
    int cell_w = (int)((long)cell * shape[1] / shape[0]);
    for (int i = 0; i < n; i++) {
        CHECK(input_picture(x + (size_t)i * sample, shape, &pics[i]));
        if (sc.mode != TFX_SCALE_NONE) {
            tfx_image *big = NULL;
            CHECK(tfx_image_scale(pics[i], sc.mode, cell, cell_w, &big));
            tfx_image_free(pics[i]);
            pics[i] = big;
        }
    }
    CHECK(hstack(pics, (size_t)n, &row));
    CHECK(write_png(row, out_dir, "inputs", ""));
    tfx_image_free(row);
    row = NULL;

    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        for (int compat = 0; compat <= 1; compat++) {
            tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
            o.compat = compat ? TFX_COMPAT_TF_EXPLAIN : TFX_COMPAT_NONE; /* defaults otherwise */
            o.layer_name = cam_layer;
            for (int i = 0; i < n; i++) {
                tfx_image_free(pics[i]);
                pics[i] = NULL;
                const float *xi = x + (size_t)i * sample;
                if (!compat) /* libtfx's default picture, scaled */
                    CHECK(default_picture(m, xi, labels[i], methods[k].method, cam_layer, &sc,
                                          methods[k].method == TFX_METHOD_ACTIVATIONS ? 2 : 1, 0, -1.0f, &pics[i]));
                else if (methods[k].fn)
                    CHECK(methods[k].fn(m, xi, 1, labels[i], &o, &pics[i]));
                else
                    CHECK(tfx_extract_activations(m, xi, 1, "visualization_layer", &o, &pics[i]));
            }
            CHECK(hstack(pics, (size_t)n, &row));
            CHECK(write_png(row, out_dir, methods[k].file, compat ? "_tfexplain" : ""));
            tfx_image_free(row);
            row = NULL;
        }
    }

    /* The Grad-CAM heatmap alone: image_weight 0 (tf-explain's 0.7 blend makes it faint on small
     * grey pictures). */
    {
        for (int i = 0; i < n; i++) {
            tfx_image_free(pics[i]);
            pics[i] = NULL;
            CHECK(default_picture(m, x + (size_t)i * sample, labels[i], TFX_METHOD_GRAD_CAM, cam_layer, &sc, 1, 0, 0.0f,
                                  &pics[i]));
        }
        CHECK(hstack(pics, (size_t)n, &row));
        CHECK(write_png(row, out_dir, "grad_cam_map", ""));
        tfx_image_free(row);
        row = NULL;
    }

    /* The contact sheet: a header of column labels, then per image a caption and one cell per
     * column (the input, then each method's default picture fitted to the cell). */
    {
        static const char *const labels_col[] = {"input", "activations", "gradients", "grad x input", "occlusion",
                                                 "Grad-CAM", "SmoothGrad", "integ. grads"};
        enum { M = 8, G = 6, NCOL = 1 + sizeof methods / sizeof methods[0] };
        _Static_assert(sizeof labels_col / sizeof labels_col[0] == NCOL, "one label per column");
        int z = cell >= 160 ? 2 : 1, text_h = 7 * z;
        int head = M + text_h + M, cap = text_h + M / 2, row_h = cap + cell + M;
        int width = M + NCOL * (cell_w + G) - G + M, height = head + n * row_h;
        CHECK(tfx_image_new(&sheet, width, height, 3));
        memset(sheet->pixels, 255, sheet->stride * (size_t)height);
        static const uint8_t black[3] = {0, 0, 0}, grey[3] = {90, 90, 90};
        for (int c = 0; c < NCOL; c++) {
            int x0 = M + c * (cell_w + G);
            draw_text(sheet, x0, M, x0 + cell_w, z, labels_col[c], black);
        }
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * sample;
            const float *p = probs + (size_t)i * (size_t)out_shape[2];
            int pred = 0;
            for (int c = 1; c < out_shape[2]; c++)
                if (p[c] > p[pred]) pred = c;
            char caption[160];
            snprintf(caption, sizeof caption, "test %zu: %s -> %s %.2f", index[i], names ? names[labels[i]] : "",
                     names ? names[pred] : "", (double)p[pred]);
            int y0 = head + i * row_h;
            draw_text(sheet, M, y0, width - M, z, caption, grey);
            /* the input, as in inputs.png */
            CHECK(input_picture(xi, shape, &cellpic));
            if (cellpic->height != cell) {
                tfx_image *big = NULL;
                CHECK(tfx_image_scale(cellpic, sc.mode ? sc.mode : TFX_SCALE_NEAREST, cell, cell_w, &big));
                tfx_image_free(cellpic);
                cellpic = big;
            }
            blit(sheet, cellpic, M, y0 + cap);
            tfx_image_free(cellpic);
            cellpic = NULL;
            for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
                CHECK(default_picture(m, xi, labels[i], methods[k].method, cam_layer, &sc, 1, cell, -1.0f,
                                      &cellpic));
                blit(sheet, cellpic, M + (int)(k + 1) * (cell_w + G), y0 + cap);
                tfx_image_free(cellpic);
                cellpic = NULL;
            }
        }
        CHECK(write_png(sheet, out_dir, "contact_sheet", ""));
    }

    /* Integrated Gradients completeness: sum of attributions vs S_c(x) - S_c(0), S_c the logit. */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
    o.steps = steps;
    o.class_indices = labels;
    CHECK(tfx_explain(m, x, (size_t)n, &o, &ig));
    printf("\n%-6s %-12s %-22s %12s %12s %9s\n", "image", "label", "predicted (p)", "S(x)-S(x')", "|gap|",
           "gap/diff");
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * (size_t)out_shape[2];
        int pred = 0;
        for (int c = 1; c < out_shape[2]; c++)
            if (p[c] > p[pred]) pred = c;
        double delta, diff;
        CHECK(tfx_attribution_ig_delta(ig, (size_t)i, &delta, &diff));
        char lab[64], prd[64];
        snprintf(lab, sizeof lab, "%d %s", labels[i], names ? names[labels[i]] : "");
        snprintf(prd, sizeof prd, "%d %s (%.2f)", pred, names ? names[pred] : "", (double)p[pred]);
        printf("%-6zu %-12s %-22s %12.4f %12.3g %8.3f%%\n", index[i], lab, prd, diff, delta,
               diff != 0.0 ? 100.0 * delta / (diff < 0 ? -diff : diff) : 0.0);
    }
    printf("Integrated Gradients with m = %d steps; time %.1f s\n", steps, now() - t0);
    status = 0;
fail:
    tfx_attribution_free(ig);
    tfx_image_free(row);
    tfx_image_free(sheet);
    tfx_image_free(cellpic);
    for (int i = 0; i < MAX_IMAGES; i++) tfx_image_free(pics[i]);
    free(x);
    free(probs);
    tfx_dataset_free(test);
    tfx_model_free(m);
    return status;
}
