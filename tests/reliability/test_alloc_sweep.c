/* Allocation-failure sweeps over the entry points the areas' own sweeps do not cover
 * (docs/security.md lists both). For every k = 1, 2, ... the k-th allocation and all later
 * ones fail (tfx__alloc_fail_after) until the workload no longer reaches k allocations and
 * succeeds. Each failed run must return TFX_ENOMEM with a message about memory, leave no
 * output object behind, and leak nothing (ASan/LeakSanitizer and valgrind runs of the suite);
 * the final successful run must give the same results, bit for bit, as a run without
 * injection (so a failure never corrupts state that a later call relies on). */
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/internal.h"
#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

/* A workload: runs the calls under test, stores its results in res (plain malloc'd bytes) and
 * frees everything else, on success and on failure alike. m is a fresh model built before the
 * injection starts (NULL unless the sweep asks for one), freed by the sweep. */
typedef int (*workload_fn)(void *ctx, tfx_model *m, unsigned char **res, size_t *res_len);
static int build_every_kind(tfx_model **out);

#define MAX_K 100000

/* The sweep. Returns the number of injected failures. */
static long sweep_m(const char *name, workload_fn fn, void *ctx, int with_model)
{
    unsigned char *ref = NULL, *got = NULL;
    size_t ref_len = 0, got_len = 0;
    tfx_model *m = NULL;
    tfx__alloc_fail_after(0);
    if (with_model) OK(build_every_kind(&m));
    int rc = fn(ctx, m, &ref, &ref_len);
    tfx_model_free(m);
    if (rc != TFX_OK) fail_msg("%s: clean run failed: %d: %s", name, rc, tfx_error_last()->message);
    long allocs = 0, failures = 0, k;
    for (k = 1; k < MAX_K; k++) {
        m = NULL;
        if (with_model) OK(build_every_kind(&m));
        tfx_error_clear();
        tfx__alloc_fail_after(k);
        rc = fn(ctx, m, &got, &got_len);
        allocs = tfx__alloc_count();
        tfx__alloc_fail_after(0);
        tfx_model_free(m);
        if (rc == TFX_OK) break;
        const tfx_error *e = tfx_error_last();
        if (rc != TFX_ENOMEM || e->code != TFX_ENOMEM || strstr(e->message, "memory") == NULL)
            fail_msg("%s: allocation %ld failed: rc %d (%s), last error %d \"%s\"", name, k, rc,
                     tfx_status_str(rc), e->code, e->message);
        failures++;
    }
    if (k >= MAX_K) fail_msg("%s: still failing after %d allocations", name, MAX_K);
    if (got_len != ref_len || memcmp(got, ref, ref_len) != 0)
        fail_msg("%s: result after the sweep differs from the clean run (%zu vs %zu bytes)", name, got_len, ref_len);
    print_message("%-44s %5ld allocation points, all TFX_ENOMEM (%ld allocations in the passing run)\n", name,
                  failures, allocs);
    assert_true(failures > 0);
    free(ref);
    free(got);
    return failures;
}
#define sweep(name, fn, ctx) sweep_m(name, fn, ctx, 0)

/* ---- helpers ---- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* Result buffer: appends copies of what a workload produced. */
typedef struct out_buf {
    unsigned char *p;
    size_t n;
} out_buf;

static void put(out_buf *o, const void *p, size_t n)
{
    unsigned char *q = realloc(o->p, o->n + n + 1);
    if (!q) abort();
    memcpy(q + o->n, p, n);
    o->p = q;
    o->n += n;
}

static int done(out_buf *o, int rc, unsigned char **res, size_t *len)
{
    if (rc == TFX_OK) {
        *res = o->p;
        *len = o->n;
    } else {
        free(o->p);
    }
    return rc;
}

static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f;
    }
}

#define H 6
#define W 6
#define C 1
#define CLASSES 3
#define NX 8

static float X[NX * H * W * C];
static int32_t Y_SPARSE[NX];
static float Y_ONEHOT[NX * CLASSES];

/* Every layer kind: conv -> BN -> max pool -> dropout -> conv "vis" -> avg pool(1, stride 1)
 * -> activation -> flatten -> dense softmax. */
static int build_every_kind(tfx_model **out)
{
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, H, W, C);
    if (rc) return rc;
    tfx_conv2d_options c1 = TFX_CONV2D_OPTIONS_INIT;
    c1.filters = 3;
    c1.padding = TFX_PADDING_SAME;
    c1.activation = TFX_ACTIVATION_RELU;
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    tfx_pool2d_options mp = TFX_POOL2D_OPTIONS_INIT;
    tfx_conv2d_options c2 = TFX_CONV2D_OPTIONS_INIT;
    c2.filters = 2;
    c2.kernel_h = c2.kernel_w = 2;
    c2.activation = TFX_ACTIVATION_LINEAR;
    c2.name = "vis";
    tfx_pool2d_options ap = TFX_POOL2D_OPTIONS_INIT;
    ap.pool_h = ap.pool_w = 1;
    ap.stride_h = ap.stride_w = 1;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = CLASSES;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if ((rc = tfx_model_add_conv2d(m, &c1, NULL)) || (rc = tfx_model_add_batch_normalization(m, &bn, NULL)) ||
        (rc = tfx_model_add_max_pooling2d(m, &mp, NULL)) || (rc = tfx_model_add_dropout(m, 0.25f, NULL, NULL)) ||
        (rc = tfx_model_add_conv2d(m, &c2, NULL)) || (rc = tfx_model_add_average_pooling2d(m, &ap, NULL)) ||
        (rc = tfx_model_add_activation(m, TFX_ACTIVATION_TANH, 0.0f, NULL, NULL)) ||
        (rc = tfx_model_add_flatten(m, NULL, NULL)) || (rc = tfx_model_add_dense(m, &d, NULL)) ||
        (rc = tfx_model_set_seed(m, 7))) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

/* A second shape for GAP: conv -> global average pooling -> dense softmax. */
static int build_gap(tfx_model **out)
{
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, H, W, C);
    if (rc) return rc;
    tfx_conv2d_options c1 = TFX_CONV2D_OPTIONS_INIT;
    c1.filters = 4;
    c1.activation = TFX_ACTIVATION_RELU;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = CLASSES;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if ((rc = tfx_model_add_conv2d(m, &c1, NULL)) || (rc = tfx_model_add_global_average_pooling2d(m, NULL, NULL)) ||
        (rc = tfx_model_add_dense(m, &d, NULL))) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

static void put_weights(out_buf *o, tfx_model *m)
{
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks = 0, bs = 0;
        OK(tfx_layer_weight_sizes(l, &ks, &bs));
        if (ks + bs == 0) continue;
        float *k = xmalloc((ks + 1) * sizeof *k), *b = xmalloc((bs + 1) * sizeof *b);
        OK(tfx_layer_get_weights(l, k, bs ? b : NULL));
        put(o, k, ks * sizeof *k);
        put(o, b, bs * sizeof *b);
        free(k);
        free(b);
    }
}

/* ---- model build, summary, predict (every layer kind) ---- */

static int wl_build(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)ctx, (void)unused;
    out_buf o = {0};
    tfx_model *m = NULL, *g = NULL;
    int rc = build_every_kind(&m);
    if (rc == TFX_OK) rc = build_gap(&g);
    if (rc == TFX_OK) {
        const char *s = tfx_model_summary(m);
        if (!s) rc = tfx_error_last()->code;
        else put(&o, s, strlen(s));
    }
    float y[NX * CLASSES];
    if (rc == TFX_OK) rc = tfx_model_set_batch_size(m, 3); /* several batches */
    if (rc == TFX_OK) rc = tfx_model_predict(m, X, NX, y);
    if (rc == TFX_OK) put(&o, y, sizeof y);
    if (rc == TFX_OK) rc = tfx_model_predict(g, X, NX, y);
    if (rc == TFX_OK) put(&o, y, sizeof y);
    tfx_model_free(m);
    tfx_model_free(g);
    return done(&o, rc, res, len);
}

static void test_build(void **state)
{
    (void)state;
    sweep("build every layer kind + summary + predict", wl_build, NULL);
}

/* ---- compile + fit + evaluate, every optimizer, validation, callbacks, progress ---- */

typedef struct fit_case {
    int loss, optimizer, nesterov;
    int val_data; /* 1: validation_x/y; 0: validation_split */
    int verbose;
} fit_case;

static int sink(const char *text, size_t len, void *payload)
{
    out_buf *o = payload;
    put(o, text, len);
    return 0;
}

static int on_epoch(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)payload;
    /* hooks may predict between batches: that allocates too */
    float y[CLASSES];
    return tfx_model_predict(m, X, 1, y) == TFX_OK && logs->epoch >= 0 ? 0 : 1;
}

static int wl_fit(void *ctx, tfx_model *m, unsigned char **res, size_t *len)
{
    const fit_case *fc = ctx;
    out_buf o = {0}, progress = {0};
    tfx_history *h = NULL;
    int rc = tfx_history_new(&h);
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.loss = fc->loss;
    co.optimizer = fc->optimizer;
    co.momentum = fc->optimizer == TFX_OPTIMIZER_SGD ? 0.5f : 0.0f;
    co.nesterov = fc->nesterov;
    if (rc == TFX_OK) rc = tfx_model_compile(m, &co);
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.on_epoch_end = on_epoch;
    const tfx_callback *cbs[1] = {&cb};
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 3;
    fo.epochs = 1;
    fo.shuffle = 1;
    fo.verbose = fc->verbose;
    fo.progress_write = sink;
    fo.progress_payload = &progress;
    fo.callbacks = cbs;
    fo.n_callbacks = 1;
    const void *y = fc->loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? (const void *)Y_SPARSE : (const void *)Y_ONEHOT;
    if (fc->val_data) {
        fo.validation_x = X;
        fo.validation_y = y;
        fo.validation_n = 2;
    } else {
        fo.validation_split = 0.25;
    }
    if (rc == TFX_OK) rc = tfx_model_fit(m, X, y, NX, &fo, h);
    double loss = 0, acc = 0;
    if (rc == TFX_OK) rc = tfx_model_evaluate(m, X, y, NX, &loss, &acc);
    if (rc == TFX_OK) {
        put_weights(&o, m);
        put(&o, &loss, sizeof loss);
        put(&o, &acc, sizeof acc);
        const double *hl = tfx_history_values(h, "val_loss");
        assert_non_null(hl);
        put(&o, hl, tfx_history_length(h) * sizeof *hl);
        /* progress text: its timing field varies, keep its length class only */
        assert_true(fc->verbose == 0 || progress.n > 0);
    }
    free(progress.p);
    tfx_history_free(h);
    return done(&o, rc, res, len);
}

static void test_fit_sgd_nesterov_mse(void **state)
{
    (void)state;
    fit_case fc = {TFX_LOSS_MEAN_SQUARED_ERROR, TFX_OPTIMIZER_SGD, 1, 1, 2};
    sweep_m("fit: SGD nesterov, MSE, validation_data, progress", wl_fit, &fc, 1);
}

static void test_fit_rmsprop_cce(void **state)
{
    (void)state;
    fit_case fc = {TFX_LOSS_CATEGORICAL_CROSSENTROPY, TFX_OPTIMIZER_RMSPROP, 0, 0, 1};
    sweep_m("fit: RMSprop, categorical CE, split, bar", wl_fit, &fc, 1);
}

static void test_fit_adam_sparse(void **state)
{
    (void)state;
    fit_case fc = {TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, TFX_OPTIMIZER_ADAM, 0, 1, 0};
    sweep_m("fit: Adam, sparse CE, validation_data", wl_fit, &fc, 1);
}

/* ---- save to memory + load from memory (every kind) ---- */

static int wl_save_load(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)unused;
    tfx_model *src = ctx, *l = NULL;
    out_buf o = {0};
    size_t size = 0;
    int rc = tfx_model_save_to_memory(src, NULL, NULL, 0, &size);
    unsigned char *buf = NULL;
    if (rc == TFX_OK) {
        buf = xmalloc(size);
        rc = tfx_model_save_to_memory(src, NULL, buf, size, &size);
    }
    if (rc == TFX_OK) {
        l = (tfx_model *)buf; /* must come back NULL on failure */
        rc = tfx_model_load_from_memory(&l, buf, size);
        if (rc != TFX_OK) assert_null(l);
    }
    float y[NX * CLASSES];
    if (rc == TFX_OK) rc = tfx_model_predict(l, X, NX, y);
    if (rc == TFX_OK) {
        put(&o, buf, size);
        put(&o, y, sizeof y);
    }
    free(buf);
    tfx_model_free(l);
    return done(&o, rc, res, len);
}

static void test_save_load_memory(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_every_kind(&m));
    OK(tfx_model_compile(m, NULL));
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.verbose = 0;
    fo.batch_size = 4;
    OK(tfx_model_fit(m, X, Y_SPARSE, NX, &fo, NULL)); /* non-trivial BN statistics */
    sweep("save_to_memory + load_from_memory + predict", wl_save_load, m);
    tfx_model_free(m);
}

/* ---- every explainer, both modes, with the option variants ---- */

typedef struct explain_case {
    int method, compat;
} explain_case;

static int wl_explain(void *ctx, tfx_model *m, unsigned char **res, size_t *len)
{
    const explain_case *ec = ctx;
    out_buf o = {0};
    int rc;
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    eo.method = ec->method;
    eo.compat = ec->compat;
    eo.steps = 3;
    eo.samples = 3;
    eo.patch_size = 2;
    eo.stride = 2;
    eo.patch_fill = TFX_PATCH_MEAN;
    eo.upsample = 1;
    eo.guided = 1;
    eo.seed = 5;
    eo.batch_size = 2; /* several chunks */
    int targets[3] = {-1, 2, 0};
    eo.class_indices = targets;
    if (ec->method == TFX_METHOD_ACTIVATIONS || ec->method == TFX_METHOD_GRAD_CAM) eo.layer_name = "vis";
    tfx_attribution *a = NULL;
    rc = tfx_explain(m, X, 3, &eo, &a);
    if (rc == TFX_OK) {
        int s[3];
        OK(tfx_attribution_shape(a, s));
        for (size_t i = 0; i < 3; i++) {
            put(&o, tfx_attribution_data(a, i), (size_t)s[0] * s[1] * s[2] * sizeof(float));
            int ci = tfx_attribution_class_index(a, i);
            put(&o, &ci, sizeof ci);
        }
    } else {
        assert_null(a);
    }
    tfx_attribution_free(a);
    return done(&o, rc, res, len);
}

/* A fresh model per run, so buffers the model sizes lazily are swept too. */
static void test_explain_every_method(void **state)
{
    (void)state;
    static const char *names[] = {"", "activations", "vanilla gradients", "gradients*inputs", "occlusion",
                                  "grad-cam", "smoothgrad", "integrated gradients"};
    for (int compat = 0; compat <= 1; compat++)
        for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
            explain_case ec = {method, compat};
            char name[96];
            snprintf(name, sizeof name, "tfx_explain %s%s", names[method], compat ? " (compat)" : "");
            sweep_m(name, wl_explain, &ec, 1);
        }
}

static int wl_picture(void *ctx, tfx_model *m, unsigned char **res, size_t *len)
{
    int which = *(const int *)ctx;
    out_buf o = {0};
    int rc;
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    eo.steps = 3;
    eo.samples = 3;
    eo.patch_size = 3;
    eo.compat = which & 8 ? TFX_COMPAT_TF_EXPLAIN : TFX_COMPAT_NONE;
    tfx_image *img = NULL;
    switch (which & 7) {
    case 0: rc = tfx_extract_activations(m, X, 2, "vis", &eo, &img); break;
    case 1: rc = tfx_vanilla_gradients(m, X, 2, 1, &eo, &img); break;
    case 2: rc = tfx_gradients_inputs(m, X, 2, 1, &eo, &img); break;
    case 3: rc = tfx_occlusion_sensitivity(m, X, 2, 1, &eo, &img); break;
    case 4: rc = tfx_grad_cam(m, X, 2, 1, &eo, &img); break;
    case 5: rc = tfx_smooth_grad(m, X, 2, 1, &eo, &img); break;
    default: rc = tfx_integrated_gradients(m, X, 2, 1, &eo, &img); break;
    }
    if (rc == TFX_OK) {
        put(&o, &img->width, sizeof img->width);
        put(&o, &img->height, sizeof img->height);
        for (int r = 0; r < img->height; r++)
            put(&o, img->pixels + (size_t)r * img->stride, (size_t)img->width * img->channels);
    } else {
        assert_null(img);
    }
    tfx_image_free(img);
    return done(&o, rc, res, len);
}

static void test_picture_calls(void **state)
{
    (void)state;
    static const char *names[] = {"tfx_extract_activations", "tfx_vanilla_gradients", "tfx_gradients_inputs",
                                  "tfx_occlusion_sensitivity", "tfx_grad_cam", "tfx_smooth_grad",
                                  "tfx_integrated_gradients"};
    for (int compat = 0; compat <= 1; compat++)
        for (int which = 0; which < 7; which++) {
            int w = which | (compat ? 8 : 0);
            char name[96];
            snprintf(name, sizeof name, "%s%s", names[which], compat ? " (compat)" : "");
            sweep_m(name, wl_picture, &w, 1);
        }
}

/* ---- TensorBoard: writer with images, the Keras callback during fit ---- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static char *tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p = xmalloc(4096);
    snprintf(p, 4096, "%s/tfx_rel_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(p)) fail_msg("mkdtemp failed");
    return p;
}

/* Appends the bytes of every regular file under dir, in sorted order of size then content, so
 * the varying file names (pid, counter) do not matter. */
static int cmp_files(const void *a, const void *b)
{
    const out_buf *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

static out_buf collected[16];
static size_t n_collected;

static int collect_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || n_collected >= 16) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    out_buf *b = &collected[n_collected++];
    b->n = (size_t)st->st_size;
    b->p = xmalloc(b->n);
    if (fread(b->p, 1, b->n, f) != b->n) b->n = 0;
    fclose(f);
    return 0;
}

static void put_tree(out_buf *o, const char *dir)
{
    n_collected = 0;
    nftw(dir, collect_cb, 16, FTW_PHYS);
    qsort(collected, n_collected, sizeof *collected, cmp_files);
    put(o, &n_collected, sizeof n_collected);
    for (size_t i = 0; i < n_collected; i++) {
        put(o, collected[i].p, collected[i].n);
        free(collected[i].p);
    }
}

static double fixed_clock(void *user)
{
    (void)user;
    return 1700000000.25;
}

static int wl_event_writer(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)ctx, (void)unused;
    out_buf o = {0};
    char *dir = tmpdir();
    tfx_event_writer_options wo = TFX_EVENT_WRITER_OPTIONS_INIT;
    wo.clock = fixed_clock;
    tfx_event_writer *w = NULL;
    tfx_image *img = NULL;
    int rc = tfx_image_new(&img, 5, 4, 3);
    if (rc == TFX_OK) {
        for (size_t i = 0; i < 5 * 4 * 3; i++) img->pixels[i] = (uint8_t)(i * 13);
        rc = tfx_event_writer_new(&w, dir, &wo);
    }
    if (rc == TFX_OK) rc = tfx_event_writer_add_scalar(w, "train/loss", 1, 0.25);
    if (rc == TFX_OK) rc = tfx_event_writer_add_image(w, "pictures/act", 1, img);
    if (rc == TFX_OK) rc = tfx_event_writer_flush(w);
    if (rc == TFX_OK) rc = tfx_event_writer_close(w);
    tfx_event_writer_free(w);
    tfx_image_free(img);
    if (rc == TFX_OK) put_tree(&o, dir);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return done(&o, rc, res, len);
}

static void test_event_writer_images(void **state)
{
    (void)state;
    sweep("event writer: scalar + add_image (PNG) + close", wl_event_writer, NULL);
}

static int wl_tb_callback(void *ctx, tfx_model *m, unsigned char **res, size_t *len)
{
    (void)ctx;
    out_buf o = {0};
    char *dir = tmpdir(); /* plain malloc, not counted */
    int rc;
    tfx_tensorboard_options to = TFX_TENSORBOARD_OPTIONS_INIT;
    to.update_freq = 1;
    to.clock = fixed_clock;
    tfx_tensorboard_callback *cb = NULL;
    rc = tfx_tensorboard_callback_new(&cb, dir, &to);
    if (rc == TFX_OK) rc = tfx_model_compile(m, NULL);
    if (rc == TFX_OK) {
        const tfx_callback *cbs[1] = {tfx_tensorboard_callback_hooks(cb)};
        tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
        fo.verbose = 0;
        fo.batch_size = 4;
        fo.epochs = 2;
        fo.validation_split = 0.25;
        fo.callbacks = cbs;
        fo.n_callbacks = 1;
        rc = tfx_model_fit(m, X, Y_SPARSE, NX, &fo, NULL);
    }
    if (rc == TFX_OK) {
        /* stop_on_error = 0: a failed write stops the logging, not training; the status says */
        const char *msg = NULL;
        rc = tfx_tensorboard_callback_status(cb, &msg);
        if (rc != TFX_OK) tfx__error(rc, "%s", msg ? msg : "");
    }
    tfx_tensorboard_callback_free(cb);
    if (rc == TFX_OK) {
        put_weights(&o, m);
        put_tree(&o, dir);
    }
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return done(&o, rc, res, len);
}

static void test_tensorboard_callback(void **state)
{
    (void)state;
    sweep_m("TensorBoard callback during a 2-epoch fit", wl_tb_callback, NULL, 1);
}

/* Keras's built-in callbacks in one fit. An allocation failing inside a callback stops fit with
 * TFX_EUSER whose message is the callback's "out of memory": counted here as TFX_ENOMEM. */
static int wl_keras_callbacks(void *ctx, tfx_model *m, unsigned char **res, size_t *len)
{
    (void)ctx;
    out_buf o = {0};
    char *dir = tmpdir(); /* plain malloc, not counted */
    char ckpt[4200], csv[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ck/m-{epoch:02d}-{val_loss:.3f}.tfx", dir);
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    tfx_model_checkpoint_callback *mc = NULL;
    tfx_early_stopping_callback *es = NULL;
    tfx_reduce_lr_on_plateau_callback *rl = NULL;
    tfx_csv_logger_callback *cl = NULL;
    tfx_terminate_on_nan_callback *tn = NULL;
    tfx_early_stopping_options eo = TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.restore_best_weights = 1;
    eo.patience = 5;
    tfx_reduce_lr_on_plateau_options ro = TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.patience = 0;
    int rc = tfx_model_checkpoint_callback_new(&mc, ckpt, NULL);
    if (rc == TFX_OK) rc = tfx_early_stopping_callback_new(&es, &eo);
    if (rc == TFX_OK) rc = tfx_reduce_lr_on_plateau_callback_new(&rl, &ro);
    if (rc == TFX_OK) rc = tfx_csv_logger_callback_new(&cl, csv, NULL);
    if (rc == TFX_OK) rc = tfx_terminate_on_nan_callback_new(&tn, NULL);
    if (rc == TFX_OK) rc = tfx_model_compile(m, NULL);
    if (rc == TFX_OK) {
        const tfx_callback *cbs[5] = {tfx_model_checkpoint_callback_hooks(mc), tfx_early_stopping_callback_hooks(es),
                                      tfx_reduce_lr_on_plateau_callback_hooks(rl), tfx_csv_logger_callback_hooks(cl),
                                      tfx_terminate_on_nan_callback_hooks(tn)};
        tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
        fo.verbose = 0;
        fo.batch_size = 4;
        fo.epochs = 3;
        fo.validation_split = 0.25;
        fo.callbacks = cbs;
        fo.n_callbacks = 5;
        rc = tfx_model_fit(m, X, Y_SPARSE, NX, &fo, NULL);
        if (rc == TFX_EUSER && strstr(tfx_error_last()->message, "out of memory")) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", tfx_error_last()->message);
            rc = tfx__error(TFX_ENOMEM, "%s", msg);
        }
    }
    tfx_model_checkpoint_callback_free(mc);
    tfx_early_stopping_callback_free(es);
    tfx_reduce_lr_on_plateau_callback_free(rl);
    tfx_csv_logger_callback_free(cl);
    tfx_terminate_on_nan_callback_free(tn);
    if (rc == TFX_OK) {
        put_weights(&o, m);
        put_tree(&o, dir);
    }
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return done(&o, rc, res, len);
}

static void test_keras_callbacks(void **state)
{
    (void)state;
    sweep_m("Keras's callbacks during a 3-epoch fit", wl_keras_callbacks, NULL, 1);
}

/* ---- renderers, PNG files ---- */

static int wl_render(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)unused;
    int mode = *(const int *)ctx; /* 0 default, 1 compat, 2 default with bilinear 3x tiles */
    int compat = mode == 1;
    out_buf o = {0};
    float maps[3 * 5 * 4 * 3], pics[3 * 5 * 4 * 3], small[3 * 2 * 2];
    fill(maps, sizeof maps / sizeof *maps, 3);
    fill(pics, sizeof pics / sizeof *pics, 4);
    fill(small, sizeof small / sizeof *small, 5);
    uint8_t tiles[3 * 5 * 4];
    for (size_t i = 0; i < sizeof tiles; i++) tiles[i] = (uint8_t)(i * 7);
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    ro.compat = compat;
    if (mode == 2) {
        ro.scale_mode = TFX_SCALE_BILINEAR;
        ro.scale = 3;
    }
    tfx_image *im[4] = {NULL, NULL, NULL, NULL};
    int rc = tfx_render_grid(tiles, 3, 5, 4, 1, 0, 0, &im[0]);
    if (rc == TFX_OK) rc = tfx_render_filters(maps, 1, 5, 4, 3, &ro, &im[1]);
    if (rc == TFX_OK) rc = tfx_render_saliency(maps, 3, 5, 4, 1, &ro, &im[2]);
    if (rc == TFX_OK) rc = tfx_render_heatmap(small, 3, 2, 2, pics, 5, 4, 1, &ro, &im[3]);
    float resized[5 * 4 * 3];
    if (rc == TFX_OK) rc = tfx_resize_bilinear(small, 2, 2, 3, resized, 5, 4);
    uint8_t rgb[3 * 12];
    if (rc == TFX_OK) rc = tfx_colormap_apply(TFX_COLORMAP_VIRIDIS, small, 12, rgb);
    for (int i = 0; i < 4; i++) {
        if (rc == TFX_OK) {
            tfx_image *g = im[i];
            put(&o, &g->width, sizeof g->width);
            for (int r = 0; r < g->height; r++) put(&o, g->pixels + (size_t)r * g->stride, (size_t)g->width * g->channels);
        } else if (im[i] != NULL && i > 0 && im[i - 1] == NULL) {
            fail_msg("render: output set after a failure");
        }
        tfx_image_free(im[i]);
    }
    if (rc == TFX_OK) {
        put(&o, resized, sizeof resized);
        put(&o, rgb, sizeof rgb);
    }
    return done(&o, rc, res, len);
}

static void test_render(void **state)
{
    (void)state;
    int compat = 0;
    sweep("render grid/filters/saliency/heatmap/resize", wl_render, &compat);
    compat = 1;
    sweep("render ... (compat)", wl_render, &compat);
    compat = 2;
    sweep("render ... (bilinear scaled tiles)", wl_render, &compat);
}

static int wl_png_file(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)unused;
    const char *path = ctx;
    out_buf o = {0};
    tfx_image *img = NULL, *back = NULL;
    int rc = tfx_image_new(&img, 7, 3, 4);
    if (rc == TFX_OK) {
        for (size_t i = 0; i < 7 * 3 * 4; i++) img->pixels[i] = (uint8_t)(i * 29);
        unlink(path);
        rc = tfx_image_write_png(img, path);
    }
    if (rc == TFX_OK) rc = tfx_image_load(&back, path, 3);
    if (rc == TFX_OK) {
        put(&o, back->pixels, (size_t)back->height * back->stride);
    } else {
        assert_null(back);
    }
    tfx_image_free(img);
    tfx_image_free(back);
    return done(&o, rc, res, len);
}

static void test_png_file(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/x.png", dir);
    sweep("tfx_image_write_png + tfx_image_load", wl_png_file, path);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* ---- dataset directory loaders ---- */

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int wl_data_dirs(void *ctx, tfx_model *unused, unsigned char **res, size_t *len)
{
    (void)unused;
    const char *dir = ctx;
    out_buf o = {0};
    tfx_dataset *a = NULL, *b = NULL;
    tfx_data_options opts = TFX_DATA_OPTIONS_INIT;
    opts.offset = 1;
    int rc = tfx_dataset_load_idx_dir(&a, dir, TFX_DATA_TEST, &opts);
    if (rc == TFX_OK) rc = tfx_dataset_load_cifar10_dir(&b, dir, TFX_DATA_TEST, NULL);
    float *oh = NULL;
    if (rc == TFX_OK) {
        oh = xmalloc(tfx_dataset_count(a) * 10 * sizeof *oh);
        rc = tfx_dataset_one_hot(a, oh);
    }
    if (rc == TFX_OK) {
        put(&o, tfx_dataset_images(a), tfx_dataset_count(a) * tfx_dataset_sample_size(a) * sizeof(float));
        put(&o, oh, tfx_dataset_count(a) * 10 * sizeof *oh);
        put(&o, tfx_dataset_images(b), tfx_dataset_count(b) * tfx_dataset_sample_size(b) * sizeof(float));
        put(&o, tfx_dataset_labels(b), tfx_dataset_count(b) * sizeof(int32_t));
    } else {
        assert_null(b);
    }
    free(oh);
    tfx_dataset_free(a);
    tfx_dataset_free(b);
    return done(&o, rc, res, len);
}

static void test_data_dirs(void **state)
{
    (void)state;
    char *dir = tmpdir();
    unsigned char img[16 + 3 * 2 * 2] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 9};
    for (size_t i = 16; i < sizeof img; i++) img[i] = (unsigned char)(i * 11);
    write_file(dir, "t10k-images-idx3-ubyte", img, sizeof img);
    write_file(dir, "t10k-labels-idx1-ubyte", lab, sizeof lab);
    unsigned char *batch = xmalloc(2 * 3073);
    for (size_t i = 0; i < 2 * 3073; i++) batch[i] = (unsigned char)(i * 5);
    batch[0] = 2;
    batch[3073] = 7;
    write_file(dir, "test_batch.bin", batch, 2 * 3073);
    free(batch);
    sweep("tfx_dataset_load_idx_dir + load_cifar10_dir", wl_data_dirs, dir);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static int setup(void **state)
{
    (void)state;
    fill(X, sizeof X / sizeof *X, 1);
    for (int i = 0; i < NX; i++) {
        Y_SPARSE[i] = i % CLASSES;
        for (int c = 0; c < CLASSES; c++) Y_ONEHOT[i * CLASSES + c] = c == i % CLASSES ? 1.0f : 0.0f;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_fit_sgd_nesterov_mse),
        cmocka_unit_test(test_fit_rmsprop_cce),
        cmocka_unit_test(test_fit_adam_sparse),
        cmocka_unit_test(test_save_load_memory),
        cmocka_unit_test(test_explain_every_method),
        cmocka_unit_test(test_picture_calls),
        cmocka_unit_test(test_event_writer_images),
        cmocka_unit_test(test_tensorboard_callback),
        cmocka_unit_test(test_keras_callbacks),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_png_file),
        cmocka_unit_test(test_data_dirs),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
