/* tf-explain's seven callbacks: a 2-epoch fit writes exactly one image per epoch per callback,
 * with tf-explain's tag, step = epoch, the picture's width/height/channels, and a PNG that a
 * private stb_image decodes to the pixels the explainer gives for the same model state
 * (computed by a callback registered before, at the same moment). One file is also walked by
 * the independent tests/tensorboard/walk_records.py. Training is bit-identical with and
 * without the callbacks. Bad input fails at construction; disk full mid-training follows
 * stop_on_error and leaves a readable file. (Cutting a file at any byte is covered by the
 * writer's tests: test_tb_format / test_tb_python --prefixes.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "tb_test_util.h"

#define STB_IMAGE_STATIC /* a private decoder, independent of the library's copy */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function" /* reported at the end of the file */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "model/model_internal.h"

#define PYTHON "/usr/bin/python3"

enum { N = 40, H = 8, W = 8, CLASSES = 3, EPOCHS = 2, BATCH = 8, NV = 3, NM = 9 };
static const double T0 = 1700000000.25;

static const int methods[NM] = {TFX_METHOD_ACTIVATIONS, TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRADIENTS_INPUTS,
                                TFX_METHOD_OCCLUSION,   TFX_METHOD_GRAD_CAM,          TFX_METHOD_SMOOTH_GRAD,
                                TFX_METHOD_INTEGRATED_GRADIENTS, TFX_METHOD_GRAD_CAM_PLUS_PLUS,
                                TFX_METHOD_GUIDED_BACKPROP};
/* research/tfevents.md §5: the tags tf-explain writes; then two roadmap methods through the
 * generic callback */
static const char *const tags[NM] = {"Activations Visualization", "VanillaGradients", "GradientsInputs",
                                     "Occlusion Sensitivity",     "Grad CAM",         "SmoothGrad",
                                     "IntegratedGradients",       "Grad CAM++",       "Guided Backprop"};
static const int classes[NM] = {-1, 1, -1, 2, 1, 0, -1, 2, 1};

static float xs[N * H * W];
static int32_t ys[N];

/* Class c lights up column band c. */
static void make_data(void)
{
    uint32_t s = 11;
    for (int i = 0; i < N; i++) {
        ys[i] = i % CLASSES;
        for (int p = 0; p < H * W; p++) {
            s = s * 1664525u + 1013904223u;
            float noise = (float)(s >> 8) / 16777216.0f * 0.3f;
            xs[i * H * W + p] = noise + ((p % W) * CLASSES / W == ys[i] ? 1.0f : 0.0f);
        }
    }
}

static tfx_model *make_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, W, 1), 0);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "visualization_layer";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), 0);
    assert_int_equal(tfx_model_add_flatten(m, "flatten", NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = CLASSES;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "predictions";
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    assert_int_equal(tfx_model_set_seed(m, 5), 0);
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.learning_rate = 0.02f;
    assert_int_equal(tfx_model_compile(m, &co), 0);
    return m;
}

/* The method's options in these tests (small, deterministic). */
static tfx_explain_options explain_opts(void)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.samples = 3;
    o.steps = 4;
    o.patch_size = 4;
    o.seed = 42;
    return o;
}

/* Validation images: the last NV training samples. */
static const float *val_x(void) { return xs + (N - NV) * H * W; }

static int new_callback(tfx_explainer_callback **cb, tfx_model *m, int k, const char *dir,
                        const tfx_explainer_callback_options *co)
{
    tfx_explain_options eo = explain_opts();
    const float *x = val_x();
    switch (methods[k]) {
    case TFX_METHOD_ACTIVATIONS:
        return tfx_activations_visualization_callback_new(cb, m, x, NV, "visualization_layer", dir, &eo, co);
    case TFX_METHOD_VANILLA_GRADIENTS: return tfx_vanilla_gradients_callback_new(cb, m, x, NV, classes[k], dir, &eo, co);
    case TFX_METHOD_GRADIENTS_INPUTS: return tfx_gradients_inputs_callback_new(cb, m, x, NV, classes[k], dir, &eo, co);
    case TFX_METHOD_OCCLUSION: return tfx_occlusion_sensitivity_callback_new(cb, m, x, NV, classes[k], dir, &eo, co);
    case TFX_METHOD_GRAD_CAM:
        return tfx_grad_cam_callback_new(cb, m, x, NV, classes[k], "visualization_layer", dir, &eo, co);
    case TFX_METHOD_SMOOTH_GRAD: return tfx_smooth_grad_callback_new(cb, m, x, NV, classes[k], dir, &eo, co);
    case TFX_METHOD_INTEGRATED_GRADIENTS:
        return tfx_integrated_gradients_callback_new(cb, m, x, NV, classes[k], dir, &eo, co);
    default:
        return tfx_explainer_callback_new(cb, m, methods[k], x, NV, classes[k], "visualization_layer", dir, &eo, co);
    }
}

/* The explainer's own picture of the current model, by the public picture calls. */
static tfx_image *picture(tfx_model *m, int k)
{
    tfx_explain_options eo = explain_opts();
    tfx_image *img = NULL;
    const float *x = val_x();
    int rc;
    switch (methods[k]) {
    case TFX_METHOD_ACTIVATIONS: rc = tfx_extract_activations(m, x, NV, "visualization_layer", &eo, &img); break;
    case TFX_METHOD_VANILLA_GRADIENTS: rc = tfx_vanilla_gradients(m, x, NV, classes[k], &eo, &img); break;
    case TFX_METHOD_GRADIENTS_INPUTS: rc = tfx_gradients_inputs(m, x, NV, classes[k], &eo, &img); break;
    case TFX_METHOD_OCCLUSION: rc = tfx_occlusion_sensitivity(m, x, NV, classes[k], &eo, &img); break;
    case TFX_METHOD_GRAD_CAM:
        eo.layer_name = "visualization_layer";
        rc = tfx_grad_cam(m, x, NV, classes[k], &eo, &img);
        break;
    case TFX_METHOD_SMOOTH_GRAD: rc = tfx_smooth_grad(m, x, NV, classes[k], &eo, &img); break;
    case TFX_METHOD_INTEGRATED_GRADIENTS: rc = tfx_integrated_gradients(m, x, NV, classes[k], &eo, &img); break;
    default: { /* roadmap methods: raw maps + the library's generic renderer with its defaults */
        tfx_attribution *a = NULL;
        eo.method = methods[k];
        eo.class_index = classes[k];
        eo.layer_name = "visualization_layer";
        rc = tfx_explain(m, x, NV, &eo, &a);
        if (rc == TFX_OK) rc = tfx_attribution_render(a, x, NULL, &img);
        tfx_attribution_free(a);
        break;
    }
    }
    return rc == TFX_OK ? img : NULL;
}

/* Runs before the TensorBoard callbacks in the same on_epoch_end: same model state. */
static tfx_image *captured[EPOCHS][NM];
static int capture(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)payload;
    if (logs->epoch < 0 || logs->epoch >= EPOCHS) return 1;
    for (int k = 0; k < NM; k++)
        if (!(captured[logs->epoch][k] = picture(m, k))) return 1;
    return 0;
}

static int fit(tfx_model *m, const tfx_callback *const *cbs, size_t n_cbs, tfx_history *h)
{
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = BATCH;
    f.epochs = EPOCHS;
    f.validation_split = 0.2;
    f.shuffle = 1; /* uses the model's generator: the explainers must not */
    f.verbose = 0;
    f.callbacks = cbs;
    f.n_callbacks = n_cbs;
    return tfx_model_fit(m, xs, ys, N, &f, h);
}

static tfx_explainer_callback_options fixed_clock_opts(void)
{
    tfx_explainer_callback_options co = TFX_EXPLAINER_CALLBACK_OPTIONS_INIT;
    co.clock = tb_fixed_clock;
    co.clock_user = (void *)&T0;
    return co;
}

static int tag_is(const tfx__tb_event *e, const char *tag)
{
    return e->n_values == 1 && e->value.tag_len == strlen(tag) && memcmp(e->value.tag, tag, e->value.tag_len) == 0;
}

/* Decode the stored PNG independently and compare it with the explainer's picture. */
static void assert_png_is(const tfx__tb_value *v, const tfx_image *img)
{
    assert_int_equal(v->kind, TFX__TB_IMAGE);
    assert_int_equal(v->width, img->width);
    assert_int_equal(v->height, img->height);
    assert_int_equal(v->colorspace, img->channels);
    int w, h, c;
    unsigned char *px = stbi_load_from_memory(v->image, (int)v->image_len, &w, &h, &c, 0);
    assert_non_null(px);
    assert_int_equal(w, img->width);
    assert_int_equal(h, img->height);
    assert_int_equal(c, img->channels);
    for (int r = 0; r < h; r++)
        assert_memory_equal(px + (size_t)r * w * c, img->pixels + (size_t)r * img->stride, (size_t)w * c);
    stbi_image_free(px);
}

static int same_pixels(const tfx_image *a, const tfx_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) return 0;
    for (int r = 0; r < a->height; r++)
        if (memcmp(a->pixels + r * a->stride, b->pixels + r * b->stride, (size_t)a->width * a->channels)) return 0;
    return 1;
}

/* walk_records.py on the activations file: strict framing, and its fields per record. */
static void walk_independently(const char *path, tfx_image *const *imgs)
{
    if (access(PYTHON, X_OK) != 0) return;
    const char *root = getenv("TFX_SOURCE_ROOT");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s '%s/tests/tensorboard/walk_records.py' '%s' 2>/dev/null", PYTHON,
             root ? root : TFX_SOURCE_ROOT, path);
    int st;
    char *out = tb_run(cmd, &st);
    assert_non_null(out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "record 0 offset=0 "));
    assert_non_null(strstr(out, "file_version=brain.Event:2\n"));
    assert_null(strstr(out, "record 3 "));
    for (int e = 0; e < EPOCHS; e++) {
        const tfx_image *img = imgs[e];
        char want[256];
        /* the walker prints step only when present (proto3 omits 0) */
        snprintf(want, sizeof want, "%s values=1 tag=Activations Visualization height=%d width=%d colorspace=%d png=",
                 e ? " step=1" : "", img->height, img->width, img->channels);
        char head[32];
        snprintf(head, sizeof head, "record %d ", e + 1);
        char *line = strstr(out, head);
        assert_non_null(line);
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = '\0';
        assert_non_null(strstr(line, want));
        /* the PNG bytes equal libtfx's encoding of the explainer's picture */
        unsigned char *png;
        size_t png_n;
        assert_int_equal(tfx_image_encode_png(img, &png, &png_n), TFX_OK);
        char *hex = malloc(2 * png_n + 64);
        for (size_t b = 0; b < png_n; b++) sprintf(hex + 2 * b, "%02x", png[b]);
        snprintf(hex + 2 * png_n, 64, " png_ihdr=%dx%d", img->width, img->height);
        char *p = strstr(line, "png=");
        assert_non_null(p);
        assert_string_equal(p + 4, hex);
        free(hex);
        tfx_image_png_free(png);
        *eol = '\n';
    }
    free(out);
}

static void test_pictures_match_explainer(void **state)
{
    (void)state;
    make_data();
    char *tmp = tb_tmpdir();
    tfx_model *m = make_model();
    tfx_explainer_callback *cbs[NM];
    const tfx_callback *hooks[NM + 1];
    tfx_callback cap = TFX_CALLBACK_INIT;
    cap.on_epoch_end = capture;
    hooks[0] = &cap;
    tfx_explainer_callback_options co = fixed_clock_opts();
    for (int k = 0; k < NM; k++) {
        char dir[8192];
        snprintf(dir, sizeof dir, "%s/logs", tmp); /* all in one output_dir: one run each */
        assert_int_equal(new_callback(&cbs[k], m, k, dir, &co), TFX_OK);
        assert_string_equal(tfx_explainer_callback_tag(cbs[k]), tags[k]);
        hooks[k + 1] = tfx_explainer_callback_hooks(cbs[k]);
    }
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    assert_int_equal(fit(m, hooks, NM + 1, h), TFX_OK);
    assert_int_equal(tfx_history_length(h), EPOCHS);

    for (int k = 0; k < NM; k++) {
        assert_int_equal(tfx_explainer_callback_status(cbs[k], NULL), TFX_OK);
        const char *path = tfx_explainer_callback_path(cbs[k]);
        assert_non_null(strstr(path, tmp));
        for (int j = 0; j < k; j++) /* separate run directories */
            assert_true(strcmp(path, tfx_explainer_callback_path(cbs[j])) != 0);
        uint8_t *buf;
        size_t size, nev;
        tfx__tb_event *ev;
        assert_int_equal(tfx__tb_read_file(path, &buf, &size, &ev, &nev), TFX_OK);
        assert_int_equal(nev, 1 + EPOCHS); /* exactly one image per epoch */
        assert_int_equal(ev[0].file_version_len, 13);
        size_t bytes = 0;
        for (int e = 0; e < EPOCHS; e++) {
            const tfx__tb_event *r = &ev[1 + e];
            assert_true(tag_is(r, tags[k]));
            assert_int_equal(r->step, e);
            assert_true(r->wall_time == T0);
            assert_png_is(&r->value, captured[e][k]);
            bytes += r->value.image_len;
        }
        double secs;
        size_t images, png_bytes;
        assert_int_equal(tfx_explainer_callback_stats(cbs[k], &secs, &images, &png_bytes), TFX_OK);
        assert_int_equal(images, EPOCHS);
        assert_int_equal(png_bytes, bytes);
        assert_true(secs > 0.0);
        if (k == 0) {
            tfx_image *act[EPOCHS] = {captured[0][0], captured[1][0]};
            walk_independently(path, act);
        }
        tfx__free(ev);
        tfx__free(buf);
    }
    /* the model changed between the epochs, so the pictures tell the epochs apart */
    assert_false(same_pixels(captured[0][0], captured[1][0]));

    for (int e = 0; e < EPOCHS; e++)
        for (int k = 0; k < NM; k++) tfx_image_free(captured[e][k]);
    for (int k = 0; k < NM; k++) tfx_explainer_callback_free(cbs[k]);
    tfx_history_free(h);
    tfx_model_free(m);
    tb_rmtree(tmp);
    free(tmp);
}

/* Shuffling draws from the model's generator; explainers (SmoothGrad's noise) must not. */
static void test_training_unchanged(void **state)
{
    (void)state;
    make_data();
    char *tmp = tb_tmpdir();
    tfx_model *a = make_model(), *b = make_model();
    tfx_explainer_callback *cbs[NM];
    const tfx_callback *hooks[NM];
    for (int k = 0; k < NM; k++) {
        assert_int_equal(new_callback(&cbs[k], a, k, tmp, NULL), TFX_OK);
        hooks[k] = tfx_explainer_callback_hooks(cbs[k]);
    }
    tfx_history *ha, *hb;
    assert_int_equal(tfx_history_new(&ha), 0);
    assert_int_equal(tfx_history_new(&hb), 0);
    assert_int_equal(fit(a, hooks, NM, ha), TFX_OK);
    assert_int_equal(fit(b, NULL, 0, hb), TFX_OK);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_equal(tfx_history_values(ha, "loss"), tfx_history_values(hb, "loss"), EPOCHS * sizeof(double));
    assert_memory_equal(tfx_history_values(ha, "val_loss"), tfx_history_values(hb, "val_loss"),
                        EPOCHS * sizeof(double));
    for (int k = 0; k < NM; k++) tfx_explainer_callback_free(cbs[k]);
    tfx_history_free(ha);
    tfx_history_free(hb);
    tfx_model_free(a);
    tfx_model_free(b);
    tb_rmtree(tmp);
    free(tmp);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_bad_input(void **state)
{
    (void)state;
    make_data();
    char *tmp = tb_tmpdir();
    tfx_model *m = make_model();
    tfx_explainer_callback *cb = (tfx_explainer_callback *)tmp;
    char file[4096], dir[8192];
    const float *x = val_x();

    /* output_dir below a regular file: TFX_EIO naming the path */
    snprintf(file, sizeof file, "%s/not_a_dir", tmp);
    tb_write_all(file, "x", 1);
    snprintf(dir, sizeof dir, "%s/logs", file);
    assert_int_equal(tfx_activations_visualization_callback_new(&cb, m, x, NV, "visualization_layer", dir, NULL, NULL),
                     TFX_EIO);
    assert_null(cb);
    assert_non_null(strstr(tfx_error_last()->message, file));

    /* unknown layer: refused at construction, the message lists the model's layers, nothing created */
    snprintf(dir, sizeof dir, "%s/never", tmp);
    assert_int_equal(tfx_activations_visualization_callback_new(&cb, m, x, NV, "visualisation_layer", dir, NULL, NULL),
                     TFX_EINVAL);
    assert_null(cb);
    const char *msg = tfx_error_last()->message;
    assert_non_null(strstr(msg, "visualisation_layer"));
    assert_non_null(strstr(msg, "'visualization_layer'"));
    assert_non_null(strstr(msg, "'predictions'"));
    assert_int_equal(tfx_grad_cam_callback_new(&cb, m, x, NV, 0, "nope", dir, NULL, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "'visualization_layer'"));
    /* Grad-CAM needs a spatial layer */
    assert_int_equal(tfx_grad_cam_callback_new(&cb, m, x, NV, 0, "predictions", dir, NULL, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "predictions"));
    /* class out of range, found by the construction-time run */
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, CLASSES, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, -2, dir, NULL, NULL), TFX_EINVAL);
    assert_false(exists(dir));

    /* the image cap: refused above it, accepted when raised */
    static float many[(TFX_EXPLAINER_CALLBACK_MAX_IMAGES + 1) * H * W];
    memcpy(many, xs, sizeof many);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, many, TFX_EXPLAINER_CALLBACK_MAX_IMAGES + 1, 0, dir,
                                                        NULL, NULL),
                     TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "max_images"));
    tfx_explainer_callback_options co = TFX_EXPLAINER_CALLBACK_OPTIONS_INIT;
    co.max_images = TFX_EXPLAINER_CALLBACK_MAX_IMAGES + 1;
    co.run_name = "";
    char capped[8192];
    snprintf(capped, sizeof capped, "%s/capped", tmp);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, many, TFX_EXPLAINER_CALLBACK_MAX_IMAGES + 1, 0,
                                                        capped, NULL, &co),
                     TFX_OK);
    snprintf(capped, sizeof capped, "%s/capped/events.out.tfevents.", tmp);
    assert_memory_equal(tfx_explainer_callback_path(cb), capped, strlen(capped));
    tfx_explainer_callback_free(cb);
    /* non-finite pixel */
    many[H * W + 5] = NAN;
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, many, 2, 0, dir, NULL, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "(sample 1) is not finite"));

    /* arguments and options */
    assert_int_equal(tfx_vanilla_gradients_callback_new(NULL, m, x, NV, 0, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, NULL, x, NV, 0, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, NULL, NV, 0, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, 0, 0, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, "", NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_activations_visualization_callback_new(&cb, m, x, NV, NULL, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_explainer_callback_new(&cb, m, TFX_METHOD_ACTIVATIONS, x, NV, -1, NULL, dir, NULL, NULL),
                     TFX_EINVAL);
    assert_int_equal(tfx_explainer_callback_new(&cb, m, 0, x, NV, -1, NULL, dir, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_explainer_callback_new(&cb, m, 999, x, NV, -1, NULL, dir, NULL, NULL), TFX_EINVAL);
    co = (tfx_explainer_callback_options)TFX_EXPLAINER_CALLBACK_OPTIONS_INIT;
    co.version = 0;
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, dir, NULL, &co), TFX_EVERSION);
    co.version = TFX_EXPLAINER_CALLBACK_OPTIONS_VERSION + 1;
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, dir, NULL, &co), TFX_EVERSION);
    assert_int_equal(tfx_explainer_callback_options_init(&co, 0), TFX_EVERSION);
    assert_int_equal(tfx_explainer_callback_options_init(&co, 1), TFX_OK);
    co.tag = "";
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, dir, NULL, &co), TFX_EINVAL);
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    eo.version = 0;
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, dir, &eo, NULL), TFX_EVERSION);
    eo = (tfx_explain_options)TFX_EXPLAIN_OPTIONS_INIT;
    eo.samples = 0;
    assert_int_equal(tfx_smooth_grad_callback_new(&cb, m, x, NV, 0, dir, &eo, NULL), TFX_EINVAL);
    assert_false(exists(dir));
    assert_null(tfx_explainer_callback_hooks(NULL));
    assert_null(tfx_explainer_callback_path(NULL));
    assert_null(tfx_explainer_callback_tag(NULL));
    assert_int_equal(tfx_explainer_callback_status(NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_explainer_callback_stats(NULL, NULL, NULL, NULL), TFX_EINVAL);
    tfx_explainer_callback_free(NULL);

    /* given to fit with another model: training stops at train begin */
    tfx_model *other = make_model();
    assert_int_equal(tfx_vanilla_gradients_callback_new(&cb, m, x, NV, 0, tmp, NULL, NULL), TFX_OK);
    const tfx_callback *hooks[1] = {tfx_explainer_callback_hooks(cb)};
    assert_int_equal(fit(other, hooks, 1, NULL), TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message, "another model"));
    tfx_explainer_callback_free(cb);
    tfx_model_free(other);

    /* allocation failures at every step of construction: an error, no leak, no crash */
    for (long k = 1; k < 200; k++) {
        tfx__alloc_fail_after(k);
        int rc = tfx_activations_visualization_callback_new(&cb, m, x, NV, "visualization_layer", tmp, NULL, NULL);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) {
            tfx_explainer_callback_free(cb);
            break;
        }
        assert_int_equal(rc, TFX_ENOMEM);
        assert_null(cb);
    }
    tfx_model_free(m);
    tb_rmtree(tmp);
    free(tmp);
}

/* Run directories: tf-explain's local-time stamp by default (unique), a given name, or none;
 * NULL output_dir is tf-explain's logs/<method>. */
static void test_run_dirs(void **state)
{
    (void)state;
    make_data();
    char *tmp = tb_tmpdir();
    tfx_model *m = make_model();
    tfx_explainer_callback_options co = fixed_clock_opts();
    tfx_explainer_callback *a, *b, *c;
    assert_int_equal(new_callback(&a, m, 0, tmp, &co), TFX_OK);
    assert_int_equal(new_callback(&b, m, 1, tmp, &co), TFX_OK);
    time_t sec = (time_t)T0;
    struct tm tm;
    localtime_r(&sec, &tm);
    char stamp[64], want[8192];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(want, sizeof want, "%s/%s.250000/events.out.tfevents.1700000000.", tmp, stamp);
    assert_memory_equal(tfx_explainer_callback_path(a), want, strlen(want));
    snprintf(want, sizeof want, "%s/%s.250000-1/events.out.tfevents.", tmp, stamp);
    assert_memory_equal(tfx_explainer_callback_path(b), want, strlen(want));
    co.run_name = "mine";
    co.tag = "my tag";
    assert_int_equal(new_callback(&c, m, 2, tmp, &co), TFX_OK);
    snprintf(want, sizeof want, "%s/mine/events.out.tfevents.", tmp);
    assert_memory_equal(tfx_explainer_callback_path(c), want, strlen(want));
    assert_string_equal(tfx_explainer_callback_tag(c), "my tag");
    /* the run directory, whichever way it was chosen */
    snprintf(want, sizeof want, "%s/%s.250000", tmp, stamp);
    assert_string_equal(tfx_explainer_callback_run_dir(a), want);
    snprintf(want, sizeof want, "%s/%s.250000-1", tmp, stamp);
    assert_string_equal(tfx_explainer_callback_run_dir(b), want);
    snprintf(want, sizeof want, "%s/mine", tmp);
    assert_string_equal(tfx_explainer_callback_run_dir(c), want);
    assert_null(tfx_explainer_callback_run_dir(NULL));
    tfx_explainer_callback_free(a);
    tfx_explainer_callback_free(b);
    tfx_explainer_callback_free(c);
    co.run_name = "";
    char inside[8192];
    snprintf(inside, sizeof inside, "%s/plain", tmp);
    assert_int_equal(new_callback(&c, m, 2, inside, &co), TFX_OK);
    assert_string_equal(tfx_explainer_callback_run_dir(c), inside);
    tfx_explainer_callback_free(c);

    /* run names that would leave output_dir, or that TensorBoard cannot show: refused, and
     * nothing is created anywhere */
    snprintf(inside, sizeof inside, "%s/out/in", tmp);
    const char *escaping[] = {"../../x", "..", ".", "a/b", "/abs", "x/", "../sibling"};
    for (size_t i = 0; i < sizeof escaping / sizeof escaping[0]; i++) {
        co.run_name = escaping[i];
        c = (tfx_explainer_callback *)1;
        assert_int_equal(new_callback(&c, m, 2, inside, &co), TFX_EINVAL);
        assert_null(c);
        assert_non_null(strstr(tfx_error_last()->message, "run_name"));
    }
    co.run_name = "caf\xc3\xa9 \xe2\x82\xac"; /* UTF-8 is fine */
    assert_int_equal(new_callback(&c, m, 2, inside, &co), TFX_OK);
    tfx_explainer_callback_free(c);
    co.run_name = "bad\xc3(";
    assert_int_equal(new_callback(&c, m, 2, inside, &co), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "not valid UTF-8 (at byte 3)"));
    co.run_name = "ok";
    co.tag = "Grad \xff CAM";
    assert_int_equal(new_callback(&c, m, 2, inside, &co), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "tag is not valid UTF-8 (at byte 5)"));
    snprintf(want, sizeof want, "%s/x", tmp);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/out/sibling", tmp);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/out/in/ok", tmp);
    assert_false(exists(want));

    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp), 0);
    co = fixed_clock_opts();
    assert_int_equal(tfx_grad_cam_callback_new(&a, m, val_x(), NV, 0, NULL, NULL, NULL, &co), TFX_OK);
    assert_int_equal(strncmp(tfx_explainer_callback_path(a), "logs/grad_cam/", 14), 0);
    tfx_explainer_callback_free(a);
    assert_int_equal(chdir(cwd), 0);
    tfx_model_free(m);
    tb_rmtree(tmp);
    free(tmp);
}

/* Disk full in the first epoch's image record. */
static void test_disk_full(void **state)
{
    (void)state;
    make_data();
    for (int stop = 0; stop <= 1; stop++) {
        char *tmp = tb_tmpdir();
        tfx_model *m = make_model();
        tfx_explainer_callback_options co = fixed_clock_opts();
        co.stop_on_error = stop;
        tfx_explainer_callback *cb;
        assert_int_equal(new_callback(&cb, m, 0, tmp, &co), TFX_OK);
        const tfx_callback *hooks[1] = {tfx_explainer_callback_hooks(cb)};
        tfx_history *h;
        assert_int_equal(tfx_history_new(&h), 0);
        tfx__tb_fail_write_after(20);
        int rc = fit(m, hooks, 1, h);
        tfx__tb_fail_write_after(-1);
        const char *msg;
        assert_int_equal(tfx_explainer_callback_status(cb, &msg), TFX_EIO);
        assert_non_null(strstr(msg, "No space left"));
        assert_non_null(strstr(msg, tmp));
        assert_non_null(strstr(msg, "Activations Visualization"));
        if (stop) {
            assert_int_equal(rc, TFX_EUSER);
            assert_non_null(strstr(tfx_error_last()->message, "No space left"));
            assert_true(tfx_history_length(h) <= 1);
        } else {
            assert_int_equal(rc, TFX_OK);
            assert_int_equal(tfx_history_length(h), EPOCHS); /* training went on, logging stopped */
        }
        size_t images;
        assert_int_equal(tfx_explainer_callback_stats(cb, NULL, &images, NULL), TFX_OK);
        assert_int_equal(images, 0);
        /* the file was cut back to its whole records: the first one only, and reads back */
        uint8_t *buf;
        size_t size, nev;
        tfx__tb_event *ev;
        assert_int_equal(tfx__tb_read_file(tfx_explainer_callback_path(cb), &buf, &size, &ev, &nev), TFX_OK);
        assert_int_equal(nev, 1);
        size_t count, end;
        int truncated;
        assert_int_equal(tfx__tfrecord_walk(buf, size, NULL, NULL, &count, &end, &truncated), TFX_OK);
        assert_int_equal(end, size);
        tfx__free(ev);
        tfx__free(buf);
        tfx_history_free(h);
        tfx_explainer_callback_free(cb);
        tfx_model_free(m);
        tb_rmtree(tmp);
        free(tmp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pictures_match_explainer),
        cmocka_unit_test(test_training_unchanged),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_run_dirs),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
