/* Versioned options structs (core/options.c, DESIGN.md decision 9): a program compiled against
 * an older header passes a struct as long as that version, so the library must read and write
 * nothing beyond that version's size and take the newer fields from its defaults.
 *
 * For every public options struct and every version v it knows:
 *   - *_options_init(opts, v) writes v's defaults and not one byte beyond v's size (guard bytes);
 *   - the function taking the struct accepts it in a malloc'd block of exactly v's size (ASan
 *     and valgrind report an over-read) and at the front of a block whose tail is poison (an
 *     over-read without them: the poison makes invalid options or different results);
 *   - versions 0 and current + 1 give TFX_EVERSION, from init (which then writes nothing) and
 *     from the function taking the struct.
 * The core helper itself is checked on a made-up struct with three versions. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/internal.h"
#include "core/options.h"
#include "tfx/tfx.h"

#define POISON 0xA5
#define GUARD 64
#define H 8
#define W 8
#define N 4

/* ---- the core helper on a struct with three versions ---- */

typedef struct fake_options {
    unsigned version;
    int a;
    /* --- version 2 --- */
    int b;
    /* --- version 3 --- */
    double c;
    const char *d;
} fake_options;
#define FAKE_INIT { 3, 11, 22, 3.5, "dflt" }
static const size_t fake_older[] = {offsetof(fake_options, b), offsetof(fake_options, c)};
TFX__OPTIONS_DESC_VERSIONS(fake_desc, fake_options, 3, FAKE_INIT, fake_older);

static int all_poison(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != POISON) return 0;
    return 1;
}

static void test_core_helper_sizes(void **state)
{
    (void)state;
    assert_int_equal(tfx__options_size(&fake_desc, 0), 0);
    assert_int_equal(tfx__options_size(&fake_desc, 1), offsetof(fake_options, b));
    assert_int_equal(tfx__options_size(&fake_desc, 2), offsetof(fake_options, c));
    assert_int_equal(tfx__options_size(&fake_desc, 3), sizeof(fake_options));
    assert_int_equal(tfx__options_size(&fake_desc, 4), 0);
}

static void test_core_helper_copy_older(void **state)
{
    (void)state;
    for (unsigned v = 1; v <= 3; v++) {
        size_t size = tfx__options_size(&fake_desc, v);
        /* The caller's struct at the front of poison: the copy must not pick any of it up. */
        unsigned char block[sizeof(fake_options) + GUARD];
        memset(block, POISON, sizeof block);
        fake_options mine = {v, 100, 200, 300.0, "mine"};
        memcpy(block, &mine, size);
        fake_options got;
        assert_int_equal(tfx__options_copy(&fake_desc, &got, block, "fake"), TFX_OK);
        assert_int_equal(got.version, v);
        assert_int_equal(got.a, 100);
        assert_int_equal(got.b, v >= 2 ? 200 : 22);
        assert_true(got.c == (v >= 3 ? 300.0 : 3.5));
        assert_string_equal(got.d, v >= 3 ? "mine" : "dflt");
        /* Exactly that size on the heap, for the sanitizers. */
        void *exact = malloc(size);
        assert_non_null(exact);
        memcpy(exact, &mine, size);
        assert_int_equal(tfx__options_copy(&fake_desc, &got, exact, "fake"), TFX_OK);
        assert_int_equal(got.a, 100);
        free(exact);
    }
    fake_options got;
    assert_int_equal(tfx__options_copy(&fake_desc, &got, NULL, "fake"), TFX_OK);
    assert_int_equal(got.a, 11);
    assert_int_equal(got.b, 22);
    for (unsigned bad = 0; bad <= 4; bad += 4) {
        fake_options src = {bad, 100, 200, 300.0, "mine"};
        tfx_error_clear();
        assert_int_equal(tfx__options_copy(&fake_desc, &got, &src, "fake_fn"), TFX_EVERSION);
        assert_non_null(strstr(tfx_error_last()->message, "fake_fn: options version"));
        assert_int_equal(got.a, 11); /* defaults, not the rejected struct */
    }
}

static void test_core_helper_init_older(void **state)
{
    (void)state;
    for (unsigned v = 1; v <= 3; v++) {
        size_t size = tfx__options_size(&fake_desc, v);
        unsigned char block[sizeof(fake_options) + GUARD];
        memset(block, POISON, sizeof block);
        assert_int_equal(tfx__options_init(&fake_desc, block, v, "fake_init"), TFX_OK);
        assert_true(all_poison(block + size, sizeof block - size));
        fake_options got;
        memcpy(&got, block, sizeof got);
        assert_int_equal(got.version, v);
        assert_int_equal(got.a, 11);
        if (v >= 2) assert_int_equal(got.b, 22);
    }
    unsigned char block[sizeof(fake_options) + GUARD];
    memset(block, POISON, sizeof block);
    assert_int_equal(tfx__options_init(&fake_desc, block, 0, "fake_init"), TFX_EVERSION);
    assert_int_equal(tfx__options_init(&fake_desc, block, 4, "fake_init"), TFX_EVERSION);
    assert_true(all_poison(block, sizeof block));
    assert_int_equal(tfx__options_init(&fake_desc, NULL, 1, "fake_init"), TFX_EINVAL);
}

/* ---- every public options struct ---- */

/* What the functions taking the structs need: a small trained-shape model and data. */
typedef struct fixture {
    char dir[256];
    tfx_model *m; /* conv(2, relu) -> max pool -> flatten -> dense(3, softmax), compiled */
    float x[N * H * W];
    int32_t y[N];
} fixture;
static fixture fx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(fx.dir, sizeof fx.dir, "%s/tfx-options-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fx.dir)) return -1;
    if (tfx_model_new(&fx.m, H, W, 1)) return -1;
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    c.activation = TFX_ACTIVATION_RELU;
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if (tfx_model_add_conv2d(fx.m, &c, NULL) || tfx_model_add_max_pooling2d(fx.m, &p, NULL) ||
        tfx_model_add_flatten(fx.m, NULL, NULL) || tfx_model_add_dense(fx.m, &d, NULL) ||
        tfx_model_compile(fx.m, NULL))
        return -1;
    for (size_t i = 0; i < sizeof fx.x / sizeof fx.x[0]; i++) fx.x[i] = (float)((i * 37) % 17) / 16.0f;
    for (int i = 0; i < N; i++) fx.y[i] = i % 3;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tfx_model_free(fx.m);
    nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* One options struct: its init, the sizes of its versions (as a caller compiled against that
 * version's header has them), fields a caller must set (only version-1 fields), and a use. */
typedef struct opt_case {
    const char *name;
    unsigned version;       /* current */
    size_t sizes[4];        /* sizes[v - 1] */
    int (*init)(void *opts, unsigned version);
    void (*fill)(void *opts);
    int (*use)(const void *opts); /* the return code of the function taking the struct */
} opt_case;

#define INIT_WRAP(name) \
    static int init_##name(void *p, unsigned v) { return tfx_##name##_options_init((tfx_##name##_options *)p, v); }
INIT_WRAP(conv2d)
INIT_WRAP(dense)
INIT_WRAP(pool2d)
INIT_WRAP(batch_norm)
INIT_WRAP(depthwise_conv2d)
INIT_WRAP(compile)
INIT_WRAP(fit)
INIT_WRAP(explain)
INIT_WRAP(faithfulness)
INIT_WRAP(render)
INIT_WRAP(event_writer)
INIT_WRAP(tensorboard)
INIT_WRAP(explainer_callback)
INIT_WRAP(save)
INIT_WRAP(model_checkpoint)
INIT_WRAP(early_stopping)
INIT_WRAP(reduce_lr_on_plateau)
INIT_WRAP(learning_rate_scheduler)
INIT_WRAP(csv_logger)
INIT_WRAP(terminate_on_nan)
INIT_WRAP(data)

static void fill_conv2d(void *p)
{
    tfx_conv2d_options *o = p;
    o->filters = 2;
    o->activation = TFX_ACTIVATION_RELU;
}
static int use_conv2d(const void *o)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, W, 1), TFX_OK);
    tfx_layer *l;
    int rc = tfx_model_add_conv2d(m, o, &l);
    if (rc == TFX_OK) {
        int s[3];
        tfx_layer_output_shape(l, s);
        assert_true(s[0] == H - 2 && s[1] == W - 2 && s[2] == 2); /* 3x3 valid, stride 1: the defaults */
    }
    tfx_model_free(m);
    return rc;
}

static void fill_dense(void *p) { ((tfx_dense_options *)p)->units = 3; }
static int use_dense(const void *o)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 2, 2, 1), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    int rc = tfx_model_add_dense(m, o, NULL);
    if (rc == TFX_OK) assert_int_equal(tfx_model_param_count(m), 4 * 3 + 3); /* use_bias default 1 */
    tfx_model_free(m);
    return rc;
}

static int use_pool2d(const void *o)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 1), TFX_OK);
    tfx_layer *l;
    int rc = tfx_model_add_max_pooling2d(m, o, &l);
    if (rc == TFX_OK) {
        int s[3];
        tfx_layer_output_shape(l, s);
        assert_true(s[0] == 2 && s[1] == 2); /* 2x2 pool, strides = pool */
        rc = tfx_model_add_average_pooling2d(m, o, NULL);
    }
    tfx_model_free(m);
    return rc;
}

static int use_depthwise_conv2d(const void *o)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 2), TFX_OK);
    tfx_layer *l;
    int rc = tfx_model_add_depthwise_conv2d(m, o, &l);
    if (rc == TFX_OK) {
        int s[3];
        tfx_layer_output_shape(l, s);
        assert_true(s[0] == 2 && s[1] == 2 && s[2] == 2); /* 3x3 valid, multiplier 1: the defaults */
        assert_int_equal(tfx_model_param_count(m), 3 * 3 * 2 + 2);
    }
    tfx_model_free(m);
    return rc;
}

static int use_batch_norm(const void *o)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 2), TFX_OK);
    int rc = tfx_model_add_batch_normalization(m, o, NULL);
    if (rc == TFX_OK) assert_int_equal(tfx_model_trainable_param_count(m), 4); /* center and scale */
    tfx_model_free(m);
    return rc;
}

static int use_compile(const void *o) { return tfx_model_compile(fx.m, o); }

static void fill_fit(void *p)
{
    tfx_fit_options *o = p;
    o->batch_size = 2;
    o->verbose = 0;
}
static int use_fit(const void *o) { return tfx_model_fit(fx.m, fx.x, fx.y, N, o, NULL); }

static void fill_explain(void *p) { ((tfx_explain_options *)p)->method = TFX_METHOD_LRP; }
/* LRP reads only version-2 fields beyond the method: a version-1 caller must get the maps of
 * the current defaults, bit for bit (poison would give an unknown rule or other numbers). */
static int use_explain(const void *o)
{
    tfx_explain_options full = TFX_EXPLAIN_OPTIONS_INIT;
    full.method = TFX_METHOD_LRP;
    tfx_attribution *ref, *a;
    assert_int_equal(tfx_explain(fx.m, fx.x, N, &full, &ref), TFX_OK);
    int rc = tfx_explain(fx.m, fx.x, N, o, &a);
    if (rc) {
        tfx_attribution_free(ref);
        return rc;
    }
    assert_memory_equal(tfx_attribution_data(a, 0), tfx_attribution_data(ref, 0), N * H * W * sizeof(float));
    tfx_attribution_free(a);
    tfx_attribution_free(ref);
    /* The explainer callbacks copy the same struct. */
    tfx_explainer_callback_options co = TFX_EXPLAINER_CALLBACK_OPTIONS_INIT;
    co.run_name = "explain_opts";
    tfx_explainer_callback *cb;
    rc = tfx_explainer_callback_new(&cb, fx.m, TFX_METHOD_VANILLA_GRADIENTS, fx.x, 1, -1, NULL, fx.dir, o, &co);
    tfx_explainer_callback_free(cb);
    return rc;
}

static int use_faithfulness(const void *o)
{
    tfx_explain_options e = TFX_EXPLAIN_OPTIONS_INIT;
    tfx_attribution *a;
    assert_int_equal(tfx_explain(fx.m, fx.x, 1, &e, &a), TFX_OK);
    double del, ins;
    int rc = tfx_deletion_insertion(fx.m, fx.x, 1, a, o, &del, &ins);
    tfx_attribution_free(a);
    return rc;
}

static int use_render(const void *o)
{
    float maps[2 * 4 * 4 * 3];
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) maps[i] = (float)i - 40.0f;
    tfx_image *img;
    int rc = tfx_render_saliency(maps, 2, 4, 4, 3, o, &img);
    if (rc == TFX_OK) {
        assert_int_equal(img->width, 8); /* two tiles side by side: the automatic grid */
        tfx_image_free(img);
    }
    return rc;
}

static int use_event_writer(const void *o)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/writer", fx.dir);
    tfx_event_writer *w;
    int rc = tfx_event_writer_new(&w, dir, o);
    if (rc == TFX_OK) assert_int_equal(tfx_event_writer_close(w), TFX_OK);
    tfx_event_writer_free(w);
    return rc;
}

static int use_tensorboard(const void *o)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/tb", fx.dir);
    tfx_tensorboard_callback *cb;
    int rc = tfx_tensorboard_callback_new(&cb, dir, o);
    tfx_tensorboard_callback_free(cb);
    return rc;
}

static void fill_explainer_callback(void *p) { ((tfx_explainer_callback_options *)p)->run_name = "run"; }
static int use_explainer_callback(const void *o)
{
    tfx_explainer_callback *cb;
    int rc = tfx_explainer_callback_new(&cb, fx.m, TFX_METHOD_VANILLA_GRADIENTS, fx.x, 1, -1, NULL, fx.dir, NULL, o);
    tfx_explainer_callback_free(cb);
    return rc;
}

static int use_model_checkpoint(const void *o)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ckpt/m-{epoch:02d}.tfx", fx.dir);
    tfx_model_checkpoint_callback *cb;
    int rc = tfx_model_checkpoint_callback_new(&cb, path, o);
    tfx_model_checkpoint_callback_free(cb);
    return rc;
}
static int use_early_stopping(const void *o)
{
    tfx_early_stopping_callback *cb;
    int rc = tfx_early_stopping_callback_new(&cb, o);
    tfx_early_stopping_callback_free(cb);
    return rc;
}
static int use_reduce_lr_on_plateau(const void *o)
{
    tfx_reduce_lr_on_plateau_callback *cb;
    int rc = tfx_reduce_lr_on_plateau_callback_new(&cb, o);
    tfx_reduce_lr_on_plateau_callback_free(cb);
    return rc;
}
static float same_lr(int epoch, float lr, void *payload)
{
    (void)epoch;
    (void)payload;
    return lr;
}
static int use_learning_rate_scheduler(const void *o)
{
    tfx_learning_rate_scheduler_callback *cb;
    int rc = tfx_learning_rate_scheduler_callback_new(&cb, same_lr, NULL, o);
    tfx_learning_rate_scheduler_callback_free(cb);
    return rc;
}
static int use_csv_logger(const void *o)
{
    char path[300];
    snprintf(path, sizeof path, "%s/log.csv", fx.dir);
    tfx_csv_logger_callback *cb;
    int rc = tfx_csv_logger_callback_new(&cb, path, o);
    tfx_csv_logger_callback_free(cb);
    return rc;
}
static int use_terminate_on_nan(const void *o)
{
    tfx_terminate_on_nan_callback *cb;
    int rc = tfx_terminate_on_nan_callback_new(&cb, o);
    tfx_terminate_on_nan_callback_free(cb);
    return rc;
}

static int use_save(const void *o)
{
    size_t size = 0;
    return tfx_model_save_to_memory(fx.m, o, NULL, 0, &size);
}

static int use_data(const void *o)
{
    char path[300];
    snprintf(path, sizeof path, "%s/one.bin", fx.dir);
    unsigned char rec[3073] = {7};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(rec, 1, sizeof rec, f), sizeof rec);
    assert_int_equal(fclose(f), 0);
    const char *paths[] = {path};
    tfx_dataset *ds;
    int rc = tfx_dataset_load_cifar10(&ds, paths, 1, o);
    if (rc == TFX_OK) assert_int_equal(tfx_dataset_count(ds), 1);
    tfx_dataset_free(ds);
    return rc;
}

/* Version 1 of tfx_explain_options ended before lrp_rule (the first field version 2 appended),
 * version 2 before ig_rule (version 3). */
#define EXPLAIN_V1_SIZE offsetof(tfx_explain_options, lrp_rule)
#define EXPLAIN_V2_SIZE offsetof(tfx_explain_options, ig_rule)
/* Version 1 of the conv2d and dense options ended before clip_min. */
#define CONV2D_V1_SIZE offsetof(tfx_conv2d_options, clip_min)
#define DENSE_V1_SIZE offsetof(tfx_dense_options, clip_min)
/* Version 1 of the pool2d options ended before pad_top. */
#define POOL2D_V1_SIZE offsetof(tfx_pool2d_options, pad_top)
/* Version 1 of the render options ended before scale_mode (version 2: tile upscaling). */
#define RENDER_V1_SIZE offsetof(tfx_render_options, scale_mode)
#define CASE(name, VERSION, fill, use, ...) {#name, VERSION, {__VA_ARGS__}, init_##name, fill, use}

static const opt_case cases[] = {
    CASE(conv2d, TFX_CONV2D_OPTIONS_VERSION, fill_conv2d, use_conv2d, CONV2D_V1_SIZE, sizeof(tfx_conv2d_options)),
    CASE(dense, TFX_DENSE_OPTIONS_VERSION, fill_dense, use_dense, DENSE_V1_SIZE, sizeof(tfx_dense_options)),
    CASE(pool2d, TFX_POOL2D_OPTIONS_VERSION, NULL, use_pool2d, POOL2D_V1_SIZE, sizeof(tfx_pool2d_options)),
    CASE(batch_norm, TFX_BATCH_NORM_OPTIONS_VERSION, NULL, use_batch_norm, sizeof(tfx_batch_norm_options)),
    CASE(depthwise_conv2d, TFX_DEPTHWISE_CONV2D_OPTIONS_VERSION, NULL, use_depthwise_conv2d,
         sizeof(tfx_depthwise_conv2d_options)),
    CASE(compile, TFX_COMPILE_OPTIONS_VERSION, NULL, use_compile, sizeof(tfx_compile_options)),
    CASE(fit, TFX_FIT_OPTIONS_VERSION, fill_fit, use_fit, sizeof(tfx_fit_options)),
    CASE(explain, TFX_EXPLAIN_OPTIONS_VERSION, fill_explain, use_explain, EXPLAIN_V1_SIZE, EXPLAIN_V2_SIZE,
         sizeof(tfx_explain_options)),
    CASE(faithfulness, TFX_FAITHFULNESS_OPTIONS_VERSION, NULL, use_faithfulness, sizeof(tfx_faithfulness_options)),
    CASE(render, TFX_RENDER_OPTIONS_VERSION, NULL, use_render, RENDER_V1_SIZE, sizeof(tfx_render_options)),
    CASE(event_writer, TFX_EVENT_WRITER_OPTIONS_VERSION, NULL, use_event_writer, sizeof(tfx_event_writer_options)),
    CASE(tensorboard, TFX_TENSORBOARD_OPTIONS_VERSION, NULL, use_tensorboard, sizeof(tfx_tensorboard_options)),
    CASE(explainer_callback, TFX_EXPLAINER_CALLBACK_OPTIONS_VERSION, fill_explainer_callback, use_explainer_callback,
         sizeof(tfx_explainer_callback_options)),
    CASE(save, TFX_SAVE_OPTIONS_VERSION, NULL, use_save, sizeof(tfx_save_options)),
    CASE(model_checkpoint, TFX_MODEL_CHECKPOINT_OPTIONS_VERSION, NULL, use_model_checkpoint,
         sizeof(tfx_model_checkpoint_options)),
    CASE(early_stopping, TFX_EARLY_STOPPING_OPTIONS_VERSION, NULL, use_early_stopping,
         sizeof(tfx_early_stopping_options)),
    CASE(reduce_lr_on_plateau, TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_VERSION, NULL, use_reduce_lr_on_plateau,
         sizeof(tfx_reduce_lr_on_plateau_options)),
    CASE(learning_rate_scheduler, TFX_LEARNING_RATE_SCHEDULER_OPTIONS_VERSION, NULL, use_learning_rate_scheduler,
         sizeof(tfx_learning_rate_scheduler_options)),
    CASE(csv_logger, TFX_CSV_LOGGER_OPTIONS_VERSION, NULL, use_csv_logger, sizeof(tfx_csv_logger_options)),
    CASE(terminate_on_nan, TFX_TERMINATE_ON_NAN_OPTIONS_VERSION, NULL, use_terminate_on_nan,
         sizeof(tfx_terminate_on_nan_options)),
    CASE(data, TFX_DATA_OPTIONS_VERSION, NULL, use_data, sizeof(tfx_data_options)),
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* The table above must know every version (a struct that gains one without a line here fails). */
static void test_table_complete(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_CASES; k++) {
        const opt_case *c = &cases[k];
        assert_true(c->version >= 1 && c->version <= 4);
        for (unsigned v = 1; v <= c->version; v++) {
            if (c->sizes[v - 1] < sizeof(unsigned)) fail_msg("%s: no size for version %u", c->name, v);
            if (v > 1 && c->sizes[v - 1] <= c->sizes[v - 2]) fail_msg("%s: sizes must grow", c->name);
        }
    }
}

static size_t largest(void)
{
    size_t m = 0;
    for (size_t k = 0; k < N_CASES; k++)
        if (cases[k].sizes[cases[k].version - 1] > m) m = cases[k].sizes[cases[k].version - 1];
    return m;
}

static void test_init_writes_only_its_version(void **state)
{
    (void)state;
    const size_t cap = largest() + GUARD;
    unsigned char *block = malloc(cap), *full = malloc(cap);
    assert_non_null(block);
    assert_non_null(full);
    for (size_t k = 0; k < N_CASES; k++) {
        const opt_case *c = &cases[k];
        const size_t full_size = c->sizes[c->version - 1];
        memset(full, 0, cap);
        assert_int_equal(c->init(full, c->version), TFX_OK);
        for (unsigned v = 1; v <= c->version; v++) {
            const size_t size = c->sizes[v - 1];
            memset(block, POISON, cap);
            if (c->init(block, v) != TFX_OK) fail_msg("%s: init(%u) failed: %s", c->name, v, tfx_error_last()->message);
            if (!all_poison(block + size, cap - size))
                fail_msg("%s: init(%u) wrote beyond %zu bytes", c->name, v, size);
            unsigned got_v;
            memcpy(&got_v, block, sizeof got_v);
            assert_int_equal(got_v, v);
            /* The defaults of that version: the current defaults' prefix. */
            if (memcmp(block + sizeof(unsigned), full + sizeof(unsigned), size - sizeof(unsigned)) != 0)
                fail_msg("%s: init(%u) does not give the defaults", c->name, v);
        }
        assert_true(full_size <= cap);
        for (unsigned bad = 0; bad <= c->version + 1; bad += c->version + 1) {
            memset(block, POISON, cap);
            tfx_error_clear();
            if (c->init(block, bad) != TFX_EVERSION) fail_msg("%s: init(%u) not refused", c->name, bad);
            assert_int_equal(tfx_error_last()->code, TFX_EVERSION);
            if (!all_poison(block, cap)) fail_msg("%s: a refused init(%u) wrote", c->name, bad);
        }
        assert_int_equal(c->init(NULL, 1), TFX_EINVAL);
    }
    free(block);
    free(full);
}

static void test_older_callers_accepted(void **state)
{
    (void)state;
    const size_t cap = largest() + GUARD;
    for (size_t k = 0; k < N_CASES; k++) {
        const opt_case *c = &cases[k];
        for (unsigned v = 1; v <= c->version; v++) {
            const size_t size = c->sizes[v - 1];
            unsigned char *caller = malloc(cap);
            assert_non_null(caller);
            memset(caller, POISON, cap);
            assert_int_equal(c->init(caller, v), TFX_OK);
            if (c->fill) c->fill(caller);
            /* Exactly the caller's size on the heap: sanitizers report an over-read. */
            void *exact = malloc(size);
            assert_non_null(exact);
            memcpy(exact, caller, size);
            int rc = c->use(exact);
            if (rc != TFX_OK) fail_msg("%s v%u (exact size): %d %s", c->name, v, rc, tfx_error_last()->message);
            free(exact);
            /* Poison right after the caller's struct: an over-read changes the options. */
            rc = c->use(caller);
            if (rc != TFX_OK) fail_msg("%s v%u (poison tail): %d %s", c->name, v, rc, tfx_error_last()->message);
            free(caller);
        }
    }
}

static void test_unknown_versions_refused(void **state)
{
    (void)state;
    const size_t cap = largest() + GUARD;
    unsigned char *opts = malloc(cap);
    assert_non_null(opts);
    for (size_t k = 0; k < N_CASES; k++) {
        const opt_case *c = &cases[k];
        unsigned bad_versions[] = {0, c->version + 1, 1000};
        for (size_t b = 0; b < 3; b++) {
            memset(opts, 0, cap);
            assert_int_equal(c->init(opts, c->version), TFX_OK);
            if (c->fill) c->fill(opts);
            memcpy(opts, &bad_versions[b], sizeof(unsigned));
            tfx_error_clear();
            int rc = c->use(opts);
            if (rc != TFX_EVERSION || !strstr(tfx_error_last()->message, "options version"))
                fail_msg("%s: version %u gave %d (%s)", c->name, bad_versions[b], rc, tfx_error_last()->message);
        }
    }
    free(opts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_helper_sizes),
        cmocka_unit_test(test_core_helper_copy_older),
        cmocka_unit_test(test_core_helper_init_older),
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_init_writes_only_its_version),
        cmocka_unit_test(test_older_callers_accepted),
        cmocka_unit_test(test_unknown_versions_refused),
    };
    return cmocka_run_group_tests_name("options", tests, setup, teardown);
}
