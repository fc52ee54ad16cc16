/* The tutorial's after-training program: load the trained seed model, take test image 250 and
 * write the feature maps of "visualization_layer" as act.png. In tf-explain:
 *
 *   explainer = ExtractActivations()
 *   grid = explainer.explain(([image], [label]), model, "visualization_layer")
 *   explainer.save(grid, ".", "act.png")
 *
 *   activation_visualization_trained [--model FILE] [--out DIR] [--index I] [--compat]
 *                                    [--scale S] [--scale-mode nearest|bilinear] [DATASET_DIR]
 *
 * By default each feature map is drawn as a 224-pixel tile (nearest neighbour: one block per
 * map pixel), so the 8x8 grid of visualization_layer is readable without zooming; --scale 1
 * keeps tf-explain's 24-pixel tiles, and --compat always does (tf-explain's exact picture).
 *
 * --model: the model saved by train_seed_model (default out/seed_model.tfx; examples/tutorial.sh
 * creates it). DATASET_DIR: Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)
 * or a CIFAR-10 "cifar-10-batches-bin" directory; the image comes from its test set. */
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

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

static int is_cifar_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    return file_exists(path);
}

/* --scale: "8" an integer factor, "224px" a tile size, "1" none; into the render options. */
static int parse_scale(const char *arg, const char *mode, tfx_render_options *ro)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || v < 1 || v > 4096 || (strcmp(mode, "nearest") && strcmp(mode, "bilinear"))) return -1;
    ro->scale = ro->tile_height = 0;
    if (!strcmp(end, "px")) ro->tile_height = (int)v;
    else if (*end == '\0' && v > 1) ro->scale = (int)v;
    else if (*end != '\0') return -1;
    ro->scale_mode = !ro->scale && !ro->tile_height ? TFX_SCALE_NONE
                     : !strcmp(mode, "bilinear")    ? TFX_SCALE_BILINEAR
                                                    : TFX_SCALE_NEAREST;
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--model FILE] [--out DIR] [--index I] [--compat] [--scale S] [--scale-mode M] [DATASET_DIR]\n"
            "  --model FILE  trained model (default out/seed_model.tfx)\n"
            "  --out DIR     where act.png goes (default out)\n"
            "  --index I     test image to explain (default 250)\n"
            "  --compat      render as tf-explain 0.3.1 does, at its size (default: libtfx's paper-correct rendering)\n"
            "  --scale S     feature-map tiles of S px (default 224px), an integer factor (e.g. 8), or 1: unscaled\n"
            "  --scale-mode nearest|bilinear   how tiles are scaled (default nearest)\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *model_path = "out/seed_model.tfx", *out_dir = "out";
    const char *dir = "/usr/share/datasets/fashion-mnist";
    size_t index = 250;
    int compat = 0;
    const char *scale_arg = "224px", *scale_mode = "nearest";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--model") && has_value)
            model_path = argv[++i];
        else if (!strcmp(a, "--out") && has_value)
            out_dir = argv[++i];
        else if (!strcmp(a, "--index") && has_value)
            index = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--compat"))
            compat = 1;
        else if (!strcmp(a, "--scale") && has_value)
            scale_arg = argv[++i];
        else if (!strcmp(a, "--scale-mode") && has_value)
            scale_mode = argv[++i];
        else if (a[0] == '-') {
            usage(argv[0]);
            return 2;
        } else
            dir = a;
    }
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    if (parse_scale(scale_arg, scale_mode, &ro)) {
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
    tfx_image *grid = NULL;
    tfx_attribution *maps = NULL;
    int status = 1;

    CHECK(tfx_model_load(&m, model_path));

    /* Keep only test image `index` (offset/limit). */
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.offset = index;
    dopt.limit = 1;
    int cifar = is_cifar_dir(dir);
    if (cifar)
        CHECK(tfx_dataset_load_cifar10_dir(&test, dir, TFX_DATA_TEST, &dopt));
    else
        CHECK(tfx_dataset_load_idx_dir(&test, dir, TFX_DATA_TEST, &dopt));
    if (tfx_dataset_count(test) != 1) {
        fprintf(stderr, "%s: the test set of %s has no image %zu\n", argv[0], dir, index);
        goto fail;
    }
    int ds_shape[3], in_shape[3];
    CHECK(tfx_dataset_shape(test, ds_shape));
    CHECK(tfx_model_input_shape(m, in_shape));
    if (memcmp(ds_shape, in_shape, sizeof ds_shape)) {
        fprintf(stderr, "%s: the model takes %dx%dx%d images but %s holds %dx%dx%d ones\n", argv[0], in_shape[0],
                in_shape[1], in_shape[2], dir, ds_shape[0], ds_shape[1], ds_shape[2]);
        goto fail;
    }

    /* grid = ExtractActivations().explain(([image], [label]), model, "visualization_layer") */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.compat = compat ? TFX_COMPAT_TF_EXPLAIN : TFX_COMPAT_NONE;
    if (compat || ro.scale_mode == TFX_SCALE_NONE) {
        CHECK(tfx_extract_activations(m, tfx_dataset_image(test, 0), 1, "visualization_layer", &o, &grid));
    } else {
        /* the same maps through tfx_explain, rendered with scaled tiles */
        o.method = TFX_METHOD_ACTIVATIONS;
        o.layer_name = "visualization_layer";
        CHECK(tfx_explain(m, tfx_dataset_image(test, 0), 1, &o, &maps));
        CHECK(tfx_attribution_render(maps, tfx_dataset_image(test, 0), &ro, &grid));
    }

    /* explainer.save(grid, out_dir, "act.png") */
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", argv[0], out_dir, strerror(errno));
        goto fail;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/act.png", out_dir);
    CHECK(tfx_image_write_png(grid, path));
    printf("test image %zu (label %d): feature maps of visualization_layer, %dx%d grid picture, written to %s\n",
           index, (int)tfx_dataset_labels(test)[0], grid->width, grid->height, path);
    status = 0;
fail:
    tfx_attribution_free(maps);
    tfx_image_free(grid);
    tfx_dataset_free(test);
    tfx_model_free(m);
    return status;
}
