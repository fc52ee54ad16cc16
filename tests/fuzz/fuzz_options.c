/* libFuzzer target for the options-struct entry points: the input bytes become a model
 * (tfx_model_new + tfx_model_add_* with every field of every options struct fuzzed, versions
 * included), weights (NaN/Inf allowed), inputs, then tfx_model_predict, tfx_explain and the
 * picture calls (tfx_explain_options), compile + fit + evaluate (tfx_compile_options,
 * tfx_fit_options), save/load (tfx_save_options), the renderers (tfx_render_options) and the
 * data readers (tfx_data_options). Every call must return TFX_OK or a documented error code
 * with a message, never crash, hang or leak. Sizes stay small so one input runs in
 * milliseconds. Seeds: tests/fuzz/corpus/options/ (any bytes are a valid program). */
#include <stdio.h>
#include <stdlib.h>

#include "data/data_internal.h"
#include "tfx/tfx.h"
#include "fuzz.h"

#define E(code) (1u << (unsigned)-(code))
#define ARGS (E(TFX_EINVAL) | E(TFX_ESHAPE) | E(TFX_EVERSION) | E(TFX_ENOTSUP))

/* rc must be OK or one of the codes in mask, with a message naming the problem. */
static void expect(int rc, unsigned mask, const char *what)
{
    if (rc == TFX_OK) return;
    if (rc > 0 || rc < -31 || !(mask & E(rc)) || tfx_error_last()->code != rc || !tfx_error_last()->message[0]) {
        fprintf(stderr, "%s: unexpected %d (%s): %s\n", what, rc, tfx_status_str(rc), tfx_error_last()->message);
        abort();
    }
}

/* Counts (steps, samples, sizes): small, or one that must be refused. */
static int fz_count(fz *f, int hi)
{
    unsigned sel = fz_byte(f);
    if (sel >= 248) return sel & 1 ? -1 : (sel & 2 ? INT_MIN : 0);
    return 1 + (int)(sel % (unsigned)hi);
}

static const char *fz_name(fz *f, tfx_model *m, char *buf, size_t cap)
{
    unsigned sel = fz_byte(f);
    if (sel < 120) return NULL;
    size_t nl = m ? tfx_model_layer_count(m) : 0;
    if (sel < 200 && nl > 0) return tfx_layer_name(tfx_model_layer(m, fz_byte(f) % nl));
    if (sel < 210) return "";
    size_t len = sel >= 250 ? cap - 1 : (size_t)(fz_byte(f) % 12); /* cap - 1 = over the limit */
    for (size_t i = 0; i < len; i++) buf[i] = (char)('a' + fz_byte(f) % 26);
    buf[len] = '\0';
    return buf;
}

static int null_sink(const char *text, size_t len, void *payload)
{
    (void)text, (void)len;
    return payload != NULL; /* non-NULL payload: the sink fails (TFX_EIO) */
}

static int stop_cb(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    return payload && logs->batch >= 1;
}

static void add_layers(fz *f, tfx_model *m)
{
    char nb[300];
    int nl = (int)(fz_byte(f) % 9);
    for (int i = 0; i < nl; i++) {
        int kind = (int)(fz_byte(f) % 10), rc;
        switch (kind) {
        case 0: {
            tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
            o.version = fz_version(f, TFX_CONV2D_OPTIONS_VERSION);
            o.filters = fz_count(f, 6);
            o.kernel_h = fz_int(f, 1, 4);
            o.kernel_w = fz_int(f, 1, 4);
            o.stride_h = fz_int(f, 1, 3);
            o.stride_w = fz_int(f, 1, 3);
            o.padding = fz_int(f, 0, 1);
            o.activation = fz_int(f, 0, 8);
            o.activation_alpha = fz_float(f, -1, 1);
            o.use_bias = fz_int(f, 0, 1);
            o.name = fz_name(f, m, nb, sizeof nb);
            rc = tfx_model_add_conv2d(m, fz_byte(f) < 8 ? NULL : &o, NULL);
            break;
        }
        case 1:
        case 2: {
            tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
            o.version = fz_version(f, TFX_DENSE_OPTIONS_VERSION);
            o.units = fz_count(f, 12);
            o.activation = fz_int(f, 0, 8);
            o.activation_alpha = fz_float(f, -1, 1);
            o.use_bias = fz_int(f, 0, 1);
            o.name = fz_name(f, m, nb, sizeof nb);
            rc = tfx_model_add_dense(m, &o, NULL);
            break;
        }
        case 3: rc = tfx_model_add_flatten(m, fz_name(f, m, nb, sizeof nb), NULL); break;
        case 4:
        case 5: {
            tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
            o.version = fz_version(f, TFX_POOL2D_OPTIONS_VERSION);
            o.pool_h = fz_int(f, 1, 3);
            o.pool_w = fz_int(f, 1, 3);
            o.stride_h = fz_int(f, 0, 3);
            o.stride_w = fz_int(f, 0, 3);
            o.padding = fz_int(f, 0, 1);
            o.name = fz_name(f, m, nb, sizeof nb);
            rc = kind == 4 ? tfx_model_add_max_pooling2d(m, &o, NULL) : tfx_model_add_average_pooling2d(m, &o, NULL);
            break;
        }
        case 6: rc = tfx_model_add_global_average_pooling2d(m, fz_name(f, m, nb, sizeof nb), NULL); break;
        case 7: {
            float rate = fz_float(f, -0.2f, 1.2f);
            rc = tfx_model_add_dropout(m, rate, fz_name(f, m, nb, sizeof nb), NULL);
            break;
        }
        case 8: {
            int act = fz_int(f, 0, 8);
            float alpha = fz_float(f, -1, 1);
            rc = tfx_model_add_activation(m, act, alpha, fz_name(f, m, nb, sizeof nb), NULL);
            break;
        }
        default: {
            tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
            o.version = fz_version(f, TFX_BATCH_NORM_OPTIONS_VERSION);
            o.momentum = fz_float(f, 0, 1);
            o.epsilon = fz_float(f, 0, 0.01f);
            o.center = fz_int(f, 0, 1);
            o.scale = fz_int(f, 0, 1);
            o.name = fz_name(f, m, nb, sizeof nb);
            rc = tfx_model_add_batch_normalization(m, &o, NULL);
            break;
        }
        }
        expect(rc, ARGS, "tfx_model_add_*");
    }
}

static void set_weights(fz *f, tfx_model *m)
{
    size_t nl = tfx_model_layer_count(m);
    for (size_t i = 0; i < nl; i++) {
        if (fz_byte(f) < 160) continue;
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks = 0, bs = 0;
        expect(tfx_layer_weight_sizes(l, &ks, &bs), 0, "tfx_layer_weight_sizes");
        if (ks + bs == 0 || ks + bs > 4096) continue;
        float *k = calloc(ks + 1, sizeof *k), *b = calloc(bs + 1, sizeof *b);
        if (!k || !b) abort();
        expect(tfx_layer_get_weights(l, k, bs ? b : NULL), 0, "tfx_layer_get_weights");
        unsigned what = fz_byte(f);
        if (what < 128) { /* poke a few values */
            for (int j = 0; j < 4; j++) k[fz_u32(f, 2) % ks] = fz_float(f, -2, 2);
        } else {
            for (size_t j = 0; j < ks; j++) k[j] = fz_float(f, -1, 1);
        }
        expect(tfx_layer_set_weights(l, k, bs ? b : NULL), E(TFX_EINVAL), "tfx_layer_set_weights");
        free(k);
        free(b);
    }
}

static void explain(fz *f, tfx_model *m, const float *x, size_t n)
{
    char nb[300];
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.version = fz_version(f, TFX_EXPLAIN_OPTIONS_VERSION);
    o.method = fz_int(f, 0, 8);
    o.class_index = fz_int(f, -2, 12);
    o.layer_name = fz_name(f, m, nb, sizeof nb);
    o.steps = fz_count(f, 4);
    o.samples = fz_count(f, 4);
    o.noise = fz_float(f, 0, 1);
    o.patch_size = fz_count(f, 6);
    o.compat = fz_int(f, 0, 2);
    o.upsample = fz_int(f, 0, 1);
    int ci[4];
    if (fz_byte(f) >= 200) {
        for (size_t i = 0; i < n; i++) ci[i] = fz_int(f, -2, 12);
        o.class_indices = ci;
    }
    o.stride = fz_int(f, 0, 4);
    o.patch_fill = fz_int(f, 0, 3);
    o.patch_value = fz_float(f, -1, 1);
    o.guided = fz_int(f, -1, 2);
    o.seed = fz_u32(f, 4);
    o.batch_size = (size_t)fz_count(f, 5);
    o.image_weight = fz_float(f, 0, 1);
    unsigned which = fz_byte(f) % 4;
    const tfx_explain_options *op = fz_byte(f) < 8 ? NULL : &o;
    unsigned bad = ARGS | E(TFX_ERROR);
    if (which < 2) {
        tfx_attribution *a = NULL;
        int rc = tfx_explain(m, x, n, op, &a);
        expect(rc, bad, "tfx_explain");
        if (rc == TFX_OK) {
            int s[3];
            if (tfx_attribution_count(a) != n || tfx_attribution_shape(a, s) != TFX_OK || s[0] < 1 || s[1] < 1 ||
                s[2] < 1 || !tfx_attribution_layer_name(a))
                abort();
            for (size_t i = 0; i < n; i++) {
                const float *d = tfx_attribution_data(a, i);
                if (!d) abort();
                volatile float t = d[(size_t)s[0] * s[1] * s[2] - 1]; /* last element is readable */
                (void)t;
                (void)tfx_attribution_class_index(a, i);
                (void)tfx_attribution_ig_delta(a, i, NULL, NULL);
            }
            if (tfx_attribution_data(a, n) != NULL) abort();
        } else if (a) {
            abort();
        }
        tfx_attribution_free(a);
    } else {
        tfx_image *img = NULL;
        int rc, ci1 = fz_int(f, -2, 12);
        switch (fz_byte(f) % 7) {
        case 0: rc = tfx_extract_activations(m, x, n, fz_name(f, m, nb, sizeof nb), op, &img); break;
        case 1: rc = tfx_vanilla_gradients(m, x, n, ci1, op, &img); break;
        case 2: rc = tfx_gradients_inputs(m, x, n, ci1, op, &img); break;
        case 3: rc = tfx_occlusion_sensitivity(m, x, n, ci1, op, &img); break;
        case 4: rc = tfx_grad_cam(m, x, n, ci1, op, &img); break;
        case 5: rc = tfx_smooth_grad(m, x, n, ci1, op, &img); break;
        default: rc = tfx_integrated_gradients(m, x, n, ci1, op, &img); break;
        }
        expect(rc, bad, "picture call");
        if (rc == TFX_OK) {
            if (!img || img->width < 1 || img->height < 1 || img->stride < (size_t)img->width * img->channels) abort();
            volatile uint8_t t = img->pixels[(size_t)(img->height - 1) * img->stride + img->width * img->channels - 1];
            (void)t;
        } else if (img) {
            abort();
        }
        tfx_image_free(img);
    }
}

static void train(fz *f, tfx_model *m, const float *x, size_t n, size_t in_size)
{
    tfx_compile_options c = TFX_COMPILE_OPTIONS_INIT;
    c.version = fz_version(f, TFX_COMPILE_OPTIONS_VERSION);
    c.loss = fz_int(f, 0, 5);
    c.optimizer = fz_int(f, 0, 4);
    c.learning_rate = fz_float(f, 0, 0.1f);
    c.momentum = fz_float(f, 0, 1);
    c.nesterov = fz_int(f, 0, 1);
    c.beta_1 = fz_float(f, 0, 1);
    c.beta_2 = fz_float(f, 0, 1);
    c.rho = fz_float(f, 0, 1);
    c.epsilon = fz_float(f, 0, 1e-3f);
    c.metrics = fz_int(f, 0, 2);
    int rc = tfx_model_compile(m, fz_byte(f) < 16 ? NULL : &c);
    expect(rc, ARGS, "tfx_model_compile");
    int os[3];
    expect(tfx_model_output_shape(m, os), 0, "tfx_model_output_shape");
    size_t out_size = (size_t)os[0] * os[1] * os[2], pos = (size_t)os[0] * os[1];
    /* Targets for either convention (the fit reads the one the loss wants). */
    size_t ny = n * (out_size > pos ? out_size : pos);
    float *yf = calloc(ny + 1, sizeof *yf);
    int32_t *yi = calloc(ny + 1, sizeof *yi);
    if (!yf || !yi) abort();
    for (size_t i = 0; i < ny; i++) {
        yf[i] = fz_float(f, 0, 1);
        yi[i] = fz_int(f, 0, os[2] > 0 ? os[2] - 1 : 0);
    }
    int sparse = rc == TFX_OK ? (fz_byte(f) & 1) : 0;
    (void)in_size;
    const void *y = (c.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || fz_byte(f) < 8 || sparse) ? (const void *)yi
                                                                                                   : (const void *)yf;
    if (fz_byte(f) < 8 || rc != TFX_OK) y = yf; /* also the wrong type on purpose, sometimes */

    tfx_fit_options o = TFX_FIT_OPTIONS_INIT;
    o.version = fz_version(f, TFX_FIT_OPTIONS_VERSION);
    unsigned bs = fz_byte(f);
    o.batch_size = bs >= 250 ? SIZE_MAX : bs % 5;
    o.epochs = fz_count(f, 2); /* INT_MAX epochs would be a legitimate (slow) request */
    o.initial_epoch = fz_int(f, 0, 2);
    o.validation_split = fz_float(f, 0, 1);
    if (fz_byte(f) >= 200) {
        o.validation_x = x;
        o.validation_y = y;
        o.validation_n = n;
    }
    o.shuffle = fz_int(f, 0, 1);
    o.verbose = fz_int(f, 0, 3);
    o.progress_write = null_sink;
    o.progress_payload = fz_byte(f) >= 240 ? (void *)m : NULL;
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.version = fz_version(f, TFX_CALLBACK_VERSION);
    cb.on_batch_end = stop_cb;
    cb.payload = fz_byte(f) >= 200 ? (void *)m : NULL;
    const tfx_callback *cbs[2] = {&cb, NULL};
    o.callbacks = cbs;
    o.n_callbacks = fz_byte(f) % 3; /* 2: a NULL entry */
    tfx_history *h = NULL;
    expect(tfx_history_new(&h), 0, "tfx_history_new");
    rc = tfx_model_fit(m, x, y, n, fz_byte(f) < 8 ? NULL : &o, h);
    expect(rc, ARGS | E(TFX_ESTATE) | E(TFX_ERROR) | E(TFX_EUSER) | E(TFX_EIO), "tfx_model_fit");
    size_t len = tfx_history_length(h);
    const double *loss = tfx_history_values(h, "loss");
    if (len > 0 && !loss) abort();
    tfx_history_free(h);
    double l = 0, acc = 0;
    rc = tfx_model_evaluate(m, x, y, n, &l, fz_byte(f) & 1 ? &acc : NULL);
    expect(rc, ARGS | E(TFX_ESTATE) | E(TFX_ERROR), "tfx_model_evaluate");
    free(yf);
    free(yi);
}

static void save_load(fz *f, tfx_model *m, const float *x, size_t in_size, size_t out_size)
{
    tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
    so.version = fz_version(f, TFX_SAVE_OPTIONS_VERSION);
    so.include_optimizer = fz_int(f, 0, 1);
    size_t size = 0;
    int rc = tfx_model_save_to_memory(m, &so, NULL, 0, &size);
    expect(rc, ARGS | E(TFX_ESTATE), "tfx_model_save_to_memory (size)"); /* ESTATE: optimizer, not compiled */
    if (rc != TFX_OK) return;
    uint8_t *buf = malloc(size);
    if (!buf) abort();
    size_t size2 = 0;
    expect(tfx_model_save_to_memory(m, &so, buf, size, &size2), 0, "tfx_model_save_to_memory");
    if (size2 != size) abort();
    tfx_model *l = NULL;
    expect(tfx_model_load_from_memory(&l, buf, size), 0, "reloading a saved model");
    if (so.version >= 1 && so.include_optimizer && tfx_model_train_steps(l) != tfx_model_train_steps(m)) abort();
    /* the reloaded model computes exactly what the original does */
    float *y1 = calloc(out_size, sizeof *y1), *y2 = calloc(out_size, sizeof *y2);
    if (!y1 || !y2) abort();
    int r1 = tfx_model_predict(m, x, 1, y1), r2 = tfx_model_predict(l, x, 1, y2);
    if (r1 != r2 || (r1 == TFX_OK && memcmp(y1, y2, out_size * sizeof *y1) != 0)) abort();
    (void)in_size;
    free(y1);
    free(y2);
    tfx_model_free(l);
    free(buf);
}

static void render(fz *f)
{
    tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
    o.version = fz_version(f, TFX_RENDER_OPTIONS_VERSION);
    o.compat = fz_int(f, 0, 2);
    o.colormap = fz_int(f, 0, 4);
    o.image_weight = fz_float(f, 0, 1);
    o.heatmap_weight = fz_float(f, -1, 1);
    o.rows = fz_int(f, 0, 3);
    o.cols = fz_int(f, 0, 3);
    o.image_min = fz_float(f, -1, 1);
    o.image_max = fz_float(f, -1, 2);
    o.per_image = fz_int(f, 0, 1);
    o.reduce = fz_int(f, 0, 2);
    o.saturate = fz_int(f, 0, 1);
    int n = fz_int(f, 0, 3), h = fz_int(f, 1, 6), w = fz_int(f, 1, 6), c = fz_int(f, 1, 4);
    float maps[3 * 6 * 6 * 4], img[3 * 6 * 6 * 4];
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
        maps[i] = fz_float(f, -1, 1);
        img[i] = (float)(i % 7) / 7.0f;
    }
    size_t nn = n < 0 || n > 3 ? (size_t)fz_byte(f) : (size_t)n; /* n beyond the buffers is never used: */
    if (nn > 3 || h < 1 || h > 6 || w < 1 || w > 6 || c < 1 || c > 4) return; /* libtfx cannot know */
    tfx_image *out = NULL;
    int rc;
    const tfx_render_options *op = fz_byte(f) < 8 ? NULL : &o;
    switch (fz_byte(f) % 3) {
    case 0: rc = tfx_render_filters(maps, nn, h, w, c, op, &out); break;
    case 1: rc = tfx_render_saliency(maps, nn, h, w, c, op, &out); break;
    default: rc = tfx_render_heatmap(maps, nn, fz_int(f, 1, 6) , fz_int(f, 1, 6), img, h, w, c, op, &out); break;
    }
    /* heatmap: map size out of range is read beyond maps only if libtfx ignores its limits;
       fz_int's edge values are refused */
    expect(rc, ARGS, "tfx_render_*");
    if ((rc == TFX_OK) != (out != NULL)) abort();
    tfx_image_free(out);
}

static void data_options(fz *f)
{
    static uint8_t batch[2 * 3073];
    for (size_t i = 0; i < sizeof batch; i++) batch[i] = (uint8_t)(i * 7);
    batch[0] = 3;
    batch[3073] = 9;
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.version = fz_version(f, TFX_DATA_OPTIONS_VERSION);
    unsigned s = fz_byte(f);
    o.offset = s >= 250 ? SIZE_MAX - (s & 3) : s % 4;
    s = fz_byte(f);
    o.limit = s >= 250 ? SIZE_MAX - (s & 3) : s % 4;
    o.num_classes = fz_int(f, 0, 300);
    s = fz_byte(f);
    o.max_bytes = s >= 250 ? SIZE_MAX : s < 8 ? (size_t)s * 1000 : 0;
    tfx_dataset *ds = NULL;
    int rc = tfx__cifar10_from_memory(batch, sizeof batch, NULL, &o, &ds);
    expect(rc, ARGS | E(TFX_EFORMAT), "tfx__cifar10_from_memory");
    if (rc == TFX_OK && (tfx_dataset_count(ds) < 1 || tfx_dataset_count(ds) > 2)) abort();
    tfx_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = {data, size};
    unsigned parts = fz_byte(&f);
    if (parts & 1) render(&f);
    if (parts & 2) data_options(&f);

    int h = fz_int(&f, 1, 10), w = fz_int(&f, 1, 10), c = fz_int(&f, 1, 3);
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, h, w, c);
    expect(rc, E(TFX_EINVAL), "tfx_model_new");
    if (rc != TFX_OK) {
        if (m) abort();
        return 0;
    }
    expect(tfx_model_set_seed(m, fz_u32(&f, 4)), 0, "tfx_model_set_seed");
    add_layers(&f, m);
    if (fz_byte(&f) & 1) (void)tfx_model_summary(m);
    if (tfx_model_layer_count(m) == 0) {
        tfx_model_free(m);
        return 0;
    }
    set_weights(&f, m);
    int os[3];
    expect(tfx_model_output_shape(m, os), 0, "tfx_model_output_shape");
    size_t in_size = (size_t)h * w * c, out_size = (size_t)os[0] * os[1] * os[2];
    size_t n = 1 + fz_byte(&f) % 3;
    float *x = calloc(n * in_size, sizeof *x), *y = calloc(n * out_size, sizeof *y);
    if (!x || !y) abort();
    unsigned fill = fz_byte(&f);
    for (size_t i = 0; i < n * in_size; i++)
        x[i] = fill < 128 ? (float)((i * 37) % 101) / 100.0f : fz_float(&f, 0, 1);
    expect(tfx_model_set_batch_size(m, (size_t)fz_count(&f, 4)), E(TFX_EINVAL), "tfx_model_set_batch_size");
    expect(tfx_model_predict(m, x, n, y), E(TFX_EINVAL), "tfx_model_predict");
    if (parts & 4) explain(&f, m, x, n);
    if (parts & 8) save_load(&f, m, x, in_size, out_size);
    if (parts & 16) train(&f, m, x, n, in_size);
    if (parts & 32) explain(&f, m, x, n); /* after training too */
    free(x);
    free(y);
    tfx_model_free(m);
    return 0;
}
