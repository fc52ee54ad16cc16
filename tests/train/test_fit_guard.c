/* Calls from inside fit's hooks (issue 16): every call that changes the model's structure,
 * optimizer or weights is refused with TFX_ESTATE while fit runs (compile from on_batch_end
 * was a heap use-after-free, add_dense a heap overflow in Adam); reading calls (predict,
 * evaluate, explain, save, summary) stay allowed and leave fit's result bit-identical. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define N 24
#define H 6

static void make_data(float *x, int32_t *y)
{
    unsigned s = 7;
    for (size_t i = 0; i < N; i++) {
        y[i] = (int32_t)(i % 3);
        for (int k = 0; k < H * H; k++) {
            s = s * 1103515245u + 12345u;
            x[i * H * H + k] = (float)((s >> 8) & 0xffff) / 65535.0f + (k % 3 == (int)(i % 3) ? 0.5f : 0.0f);
        }
    }
}

/* Conv -> BatchNorm -> Dropout -> Flatten -> Dense(softmax): the layers whose state a careless
 * hook could disturb (batch statistics, dropout masks from the model's generator). */
static tfx_model *make_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, H, 1), TFX_OK);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "conv";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_batch_normalization(m, NULL, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_dropout(m, 0.25f, NULL, NULL), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "out";
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), TFX_OK);
    assert_int_equal(tfx_model_set_seed(m, 3), TFX_OK);
    assert_int_equal(tfx_model_compile(m, NULL), TFX_OK);
    return m;
}

/* What a hook does; the hook records the code and message of each call. */
enum {
    ACT_NONE, ACT_COMPILE, ACT_ADD_DENSE, ACT_ADD_CONV2D, ACT_ADD_FLATTEN, ACT_ADD_MAX_POOL, ACT_ADD_AVG_POOL,
    ACT_ADD_GAP, ACT_ADD_DROPOUT, ACT_ADD_ACTIVATION, ACT_ADD_BATCH_NORM, ACT_FIT, ACT_SET_SEED,
    ACT_SET_WEIGHTS, ACT_SET_THREADS, ACT_SANITY_CHECK, ACT_ADD_DEPTHWISE, ACT_ADD_GMP, ACT_ADD_ZERO_PAD,
    ACT_ADD_RESHAPE, ACT_ADD_CLIP, ACT_COUNT
};
static const char *const act_fn[ACT_COUNT] = {
    "", "tfx_model_compile", "tfx_model_add_dense", "tfx_model_add_conv2d", "tfx_model_add_flatten",
    "tfx_model_add_max_pooling2d", "tfx_model_add_average_pooling2d", "tfx_model_add_global_average_pooling2d",
    "tfx_model_add_dropout", "tfx_model_add_activation", "tfx_model_add_batch_normalization", "tfx_model_fit",
    "tfx_model_set_seed", "tfx_layer_set_weights", "tfx_model_set_threads", "tfx_sanity_check",
    "tfx_model_add_depthwise_conv2d", "tfx_model_add_global_max_pooling2d", "tfx_model_add_zero_padding2d",
    "tfx_model_add_reshape", "tfx_model_add_clip"};

typedef struct hook_state {
    int act;
    int calls, rc;
    char message[512];
    const float *x;
    const int32_t *y;
    int stop; /* return value of the hook */
} hook_state;

static int mutate(tfx_model *m, hook_state *s)
{
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 1000; /* larger than the compiled parameter count: Adam's slots would overflow */
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.verbose = 0;
    static float kernel[4 * 9 * 3 * 3 + 64], bias[64];
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    double rho[8];
    size_t count;
    switch (s->act) {
    case ACT_COMPILE: return tfx_model_compile(m, NULL);
    case ACT_ADD_DENSE: return tfx_model_add_dense(m, &d, NULL);
    case ACT_ADD_CONV2D: return tfx_model_add_conv2d(m, &c, NULL);
    case ACT_ADD_FLATTEN: return tfx_model_add_flatten(m, NULL, NULL);
    case ACT_ADD_MAX_POOL: return tfx_model_add_max_pooling2d(m, NULL, NULL);
    case ACT_ADD_AVG_POOL: return tfx_model_add_average_pooling2d(m, NULL, NULL);
    case ACT_ADD_GAP: return tfx_model_add_global_average_pooling2d(m, NULL, NULL);
    case ACT_ADD_DROPOUT: return tfx_model_add_dropout(m, 0.5f, NULL, NULL);
    case ACT_ADD_ACTIVATION: return tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL);
    case ACT_ADD_BATCH_NORM: return tfx_model_add_batch_normalization(m, NULL, NULL);
    case ACT_FIT: return tfx_model_fit(m, s->x, s->y, N, &fo, NULL);
    case ACT_SET_SEED: return tfx_model_set_seed(m, 99);
    case ACT_SET_WEIGHTS: return tfx_layer_set_weights(tfx_model_find_layer(m, "out"), kernel, bias);
    case ACT_SET_THREADS: return tfx_model_set_threads(m, 1);
    case ACT_SANITY_CHECK:
        eo.method = TFX_METHOD_VANILLA_GRADIENTS;
        return tfx_sanity_check(m, s->x, 2, &eo, 0, 5, rho, 8, &count);
    case ACT_ADD_DEPTHWISE: {
        tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
        return tfx_model_add_depthwise_conv2d(m, &dw, NULL);
    }
    case ACT_ADD_GMP: return tfx_model_add_global_max_pooling2d(m, NULL, NULL);
    case ACT_ADD_ZERO_PAD: return tfx_model_add_zero_padding2d(m, 1, 1, 1, 1, NULL, NULL);
    case ACT_ADD_RESHAPE: return tfx_model_add_reshape(m, 1, 1, -1, NULL, NULL);
    case ACT_ADD_CLIP: return tfx_model_add_clip(m, 0.0f, 6.0f, NULL, NULL);
    default: return TFX_OK;
    }
}

static int on_batch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)logs;
    hook_state *s = payload;
    s->rc = mutate(m, s);
    snprintf(s->message, sizeof s->message, "%s", tfx_error_last()->message);
    s->calls++;
    return s->stop;
}

static int fit_with(tfx_model *m, const float *x, const int32_t *y, tfx_callback *cb)
{
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 8;
    fo.epochs = 2;
    fo.verbose = 0;
    const tfx_callback *cbs[1] = {cb};
    fo.callbacks = cbs;
    fo.n_callbacks = cb ? 1 : 0;
    return tfx_model_fit(m, x, y, N, &fo, NULL);
}

/* Each mutating call from on_batch_end: TFX_ESTATE, "fn: model is being trained by
 * tfx_model_fit; ...", the model and its training untouched; the same call works after fit. */
static void test_mutations_refused(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    tfx_model *ref = make_model();
    assert_int_equal(fit_with(ref, x, y, NULL), TFX_OK);
    size_t np = tfx_model_trainable_param_count(ref);
    size_t ks, bs;
    tfx_layer *rl = tfx_model_find_layer(ref, "out");
    assert_int_equal(tfx_layer_weight_sizes(rl, &ks, &bs), TFX_OK);
    float *want = malloc((ks + bs) * sizeof(float)), *got = malloc((ks + bs) * sizeof(float));
    assert_int_equal(tfx_layer_get_weights(rl, want, want + ks), TFX_OK);

    for (int act = ACT_COMPILE; act < ACT_COUNT; act++) {
        tfx_model *m = make_model();
        hook_state s = {act, 0, 0, "", x, y, 0};
        tfx_callback cb = TFX_CALLBACK_INIT;
        cb.payload = &s;
        cb.on_batch_end = on_batch_end;
        int rc = fit_with(m, x, y, &cb);
        if (rc != TFX_OK) fail_msg("%s in a hook: fit returned %d: %s", act_fn[act], rc, tfx_error_last()->message);
        assert_int_equal(s.calls, 6);
        char want_msg[256];
        snprintf(want_msg, sizeof want_msg, "%s: model is being trained by tfx_model_fit; ", act_fn[act]);
        if (s.rc != TFX_ESTATE || strncmp(s.message, want_msg, strlen(want_msg)) != 0)
            fail_msg("%s in a hook: rc %d, message \"%s\"", act_fn[act], s.rc, s.message);
        /* Nothing changed: same layers, same weights as an undisturbed fit. */
        assert_int_equal(tfx_model_layer_count(m), 5);
        assert_int_equal(tfx_model_trainable_param_count(m), np);
        assert_int_equal(tfx_model_train_steps(m), 6);
        assert_int_equal(tfx_layer_get_weights(tfx_model_find_layer(m, "out"), got, got + ks), TFX_OK);
        if (memcmp(want, got, (ks + bs) * sizeof(float)) != 0)
            fail_msg("%s in a hook changed the trained weights", act_fn[act]);
        /* After fit returns the model is free again. */
        s.stop = 0;
        assert_int_equal(tfx_model_set_seed(m, 4), TFX_OK);
        assert_int_equal(tfx_model_compile(m, NULL), TFX_OK);
        tfx_model_free(m);
    }
    free(want);
    free(got);
    tfx_model_free(ref);
}

/* A hook that stops after a refused call: TFX_EUSER carrying the refusal, as before; the
 * guard is lifted also after a stopped fit and after a fit refused before it started. */
static void test_stop_semantics_kept(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    tfx_model *m = make_model();
    hook_state s = {ACT_COMPILE, 0, 0, "", x, y, 1};
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.payload = &s;
    cb.on_batch_end = on_batch_end;
    int rc = fit_with(m, x, y, &cb);
    assert_int_equal(rc, TFX_EUSER);
    assert_int_equal(s.calls, 1);
    assert_non_null(strstr(tfx_error_last()->message, "stopped training: tfx_model_compile: model is being trained"));
    assert_int_equal(tfx_model_set_seed(m, 1), TFX_OK);
    assert_int_equal(tfx_model_compile(m, NULL), TFX_OK);
    /* A fit refused before training (n = 0) leaves the model free. */
    assert_int_equal(tfx_model_fit(m, x, y, 0, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_set_seed(m, 2), TFX_OK);
    tfx_model_free(m);
}

/* The progress sink runs inside fit too: mutating calls from it are refused the same way. */
typedef struct sink_state {
    tfx_model *m;
    int rc;
} sink_state;
static int sink(const char *text, size_t len, void *payload)
{
    (void)text;
    (void)len;
    sink_state *s = payload;
    if (s->rc == 0) s->rc = tfx_model_set_seed(s->m, 5);
    return 0;
}
static void test_progress_sink_guarded(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    tfx_model *m = make_model();
    sink_state s = {m, 0};
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 8;
    fo.verbose = 2;
    fo.progress_write = sink;
    fo.progress_payload = &s;
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, NULL), TFX_OK);
    assert_int_equal(s.rc, TFX_ESTATE);
    tfx_model_free(m);
}

/* Reading calls from on_batch_end (predict with a larger batch than fit's, evaluate,
 * explain, the summary, save to memory) leave the trained weights bit-identical to a run whose
 * hook does nothing. */
typedef struct reader_state {
    const float *x;
    const int32_t *y;
    int calls, failures;
    char message[512];
} reader_state;
static int reader_hook(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)logs;
    reader_state *s = payload;
    s->calls++;
    float out[N * 3];
    double loss, acc;
    tfx_attribution *a = NULL;
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    int rc = tfx_model_set_batch_size(m, N);
    if (!rc) rc = tfx_model_predict(m, s->x, N, out);
    if (!rc) rc = tfx_model_evaluate(m, s->x, s->y, N, &loss, &acc);
    eo.method = TFX_METHOD_GRAD_CAM;
    eo.layer_name = "conv";
    if (!rc) rc = tfx_explain(m, s->x, 5, &eo, &a);
    tfx_attribution_free(a);
    a = NULL;
    eo.method = TFX_METHOD_SMOOTH_GRAD;
    eo.samples = 3;
    if (!rc) rc = tfx_explain(m, s->x, 2, &eo, &a);
    tfx_attribution_free(a);
    a = NULL;
    eo.method = TFX_METHOD_LRP;
    if (!rc) rc = tfx_explain(m, s->x, 1, &eo, &a);
    tfx_attribution_free(a);
    if (!rc && !tfx_model_summary(m)) rc = TFX_ERROR;
    size_t size;
    if (!rc) rc = tfx_model_save_to_memory(m, NULL, NULL, 0, &size);
    if (rc) {
        s->failures++;
        snprintf(s->message, sizeof s->message, "%s", tfx_error_last()->message);
    }
    return 0;
}
static int idle_hook(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    (void)logs;
    ((reader_state *)payload)->calls++;
    return 0;
}
static void trained_weights(int reading, const float *x, const int32_t *y, float **w, size_t *n)
{
    tfx_model *m = make_model();
    reader_state s = {x, y, 0, 0, ""};
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.payload = &s;
    cb.on_batch_end = reading ? reader_hook : idle_hook;
    cb.on_epoch_end = reading ? reader_hook : idle_hook;
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 5; /* a last smaller batch, and smaller than the hook's predict batch */
    fo.epochs = 3;
    fo.verbose = 0;
    fo.validation_split = 0.25;
    const tfx_callback *cbs[1] = {&cb};
    fo.callbacks = cbs;
    fo.n_callbacks = 1;
    int rc = tfx_model_fit(m, x, y, N, &fo, NULL);
    if (rc) fail_msg("fit: %s", tfx_error_last()->message);
    if (s.failures) fail_msg("a reading call failed in the hook: %s", s.message);
    assert_int_equal(s.calls, 3 * 4 + 3);
    size_t total = 0;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) total += tfx_layer_param_count(tfx_model_layer(m, i));
    *w = malloc(total * sizeof(float));
    size_t at = 0;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        size_t ks, bs;
        tfx_layer *l = tfx_model_layer(m, i);
        assert_int_equal(tfx_layer_weight_sizes(l, &ks, &bs), TFX_OK);
        if (ks + bs == 0) continue; /* Dropout, Flatten */
        assert_int_equal(tfx_layer_get_weights(l, *w + at, bs ? *w + at + ks : NULL), TFX_OK);
        at += ks + bs;
    }
    *n = at;
    tfx_model_free(m);
}
static void test_reading_hooks_bit_identical(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    float *a, *b;
    size_t na, nb;
    trained_weights(0, x, y, &a, &na);
    trained_weights(1, x, y, &b, &nb);
    assert_int_equal(na, nb);
    assert_true(na > 0);
    assert_memory_equal(a, b, na * sizeof(float));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutations_refused),
        cmocka_unit_test(test_stop_semantics_kept),
        cmocka_unit_test(test_progress_sink_guarded),
        cmocka_unit_test(test_reading_hooks_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
