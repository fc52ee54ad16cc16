/* fit / evaluate / predict on batch providers: bit-identical to the in-memory calls for the same
 * order, unknown lengths (progress "Unknown"), and bad providers (an error mid-epoch, too many
 * samples, a wrong sample shape, NaN in a batch, a wrong length, no validation_split). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testing.h"
#include "tfx/callbacks.h"
#include "train/train_internal.h"

enum { N = 45, VN = 13, PX = 36 };

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65535.0f;
}

/* 6x6x1 images, 3 classes (as test_fit.c). */
static void make_data(size_t n, unsigned seed, float *x, int32_t *y)
{
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        y[i] = c;
        for (int r = 0; r < 6; r++)
            for (int q = 0; q < 6; q++) {
                int on = (c == 0 && r < 3 && q < 3) || (c == 1 && r < 3 && q >= 3) || (c == 2 && r >= 3);
                x[i * PX + r * 6 + q] = (on ? 0.8f : 0.0f) + 0.4f * frand(&s);
            }
    }
}

static tfx_model *make_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 6, 6, 1), 0);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), 0);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    assert_int_equal(tfx_model_set_seed(m, 7), 0);
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.learning_rate = 0.01f;
    assert_int_equal(tfx_model_compile(m, &o), 0);
    return m;
}

/* A provider over arrays, in order, with knobs for the bad cases. */
typedef struct arr {
    const float *x;
    const int32_t *y;
    size_t n, pos;
    int epoch, resets;
    int fail_epoch; /* >= 0: next fails at batch fail_batch of this epoch */
    size_t fail_batch, batch;
    size_t extra;  /* reports max + extra samples */
    int nan_batch; /* >= 0: a NaN in this batch */
} arr;

static int arr_reset(void *p, int epoch)
{
    arr *a = p;
    a->pos = 0;
    a->batch = 0;
    a->epoch = epoch;
    a->resets++;
    return 0;
}

static int arr_next(void *p, float *x, void *y, size_t max, size_t *got)
{
    arr *a = p;
    if (a->epoch == a->fail_epoch && a->batch == a->fail_batch) return tfx_error_set(TFX_EIO, "disk went away");
    size_t k = a->n - a->pos < max ? a->n - a->pos : max;
    memcpy(x, a->x + a->pos * PX, k * PX * sizeof(float));
    if (y) memcpy(y, a->y + a->pos, k * sizeof(int32_t));
    if (k && (int)a->batch == a->nan_batch) x[3] = NAN;
    a->pos += k;
    a->batch++;
    *got = k ? k + a->extra : 0;
    return 0;
}

static tfx_batch_provider provider(arr *a, const float *x, const int32_t *y, size_t n, size_t length)
{
    memset(a, 0, sizeof *a);
    a->x = x;
    a->y = y;
    a->n = n;
    a->fail_epoch = -1;
    a->nan_batch = -1;
    tfx_batch_provider p = TFX_BATCH_PROVIDER_INIT;
    p.payload = a;
    p.next = arr_next;
    p.reset = arr_reset;
    p.length = length;
    p.height = 6;
    p.width = 6;
    p.channels = 1;
    return p;
}

typedef struct text {
    char buf[8192];
    size_t len;
} text;

static int collect(const char *s, size_t len, void *payload)
{
    text *t = payload;
    if (t->len + len < sizeof t->buf) {
        memcpy(t->buf + t->len, s, len);
        t->len += len;
        t->buf[t->len] = 0;
    }
    return 0;
}

static float xs[N * PX], vx[VN * PX];
static int32_t ys[N], vy[VN];

static void same_as_in_memory(size_t length)
{
    make_data(N, 1, xs, ys);
    make_data(VN, 2, vx, vy);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8; /* 45 = 5 * 8 + 5: a smaller last batch */
    f.epochs = 3;
    f.shuffle = 0;
    f.verbose = 0;
    f.validation_x = vx;
    f.validation_y = vy;
    f.validation_n = VN;
    tfx_model *a = make_model(), *b = make_model();
    tfx_history *ha, *hb;
    assert_int_equal(tfx_history_new(&ha), 0);
    assert_int_equal(tfx_history_new(&hb), 0);
    assert_int_equal(tfx_model_fit(a, xs, ys, N, &f, ha), 0);

    arr ta, va;
    tfx_batch_provider tp = provider(&ta, xs, ys, N, length), vp = provider(&va, vx, vy, VN, length ? VN : 0);
    f.validation_x = NULL;
    f.validation_y = NULL;
    f.validation_n = 0;
    f.shuffle = 1; /* ignored for providers */
    assert_int_equal(tfx_model_fit_provider(b, &tp, &vp, &f, hb), 0);
    assert_int_equal(ta.resets, 3);
    assert_int_equal(va.resets, 3);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_int_equal(tfx_history_length(hb), 3);
    assert_memory_equal(tfx_history_values(ha, "loss"), tfx_history_values(hb, "loss"), 3 * sizeof(double));
    assert_memory_equal(tfx_history_values(ha, "val_accuracy"), tfx_history_values(hb, "val_accuracy"),
                        3 * sizeof(double));

    /* evaluate and predict over a provider equal the in-memory calls. */
    double l1, a1, l2, a2;
    assert_int_equal(tfx_model_evaluate(b, vx, vy, VN, &l1, &a1), 0);
    assert_int_equal(tfx_model_evaluate_provider(b, &vp, &l2, &a2), 0);
    assert_true(l1 == l2 && a1 == a2);
    tfx_model_free(a);
    tfx_model_free(b);
    tfx_history_free(ha);
    tfx_history_free(hb);
}

static void test_same_as_in_memory(void **state)
{
    (void)state;
    same_as_in_memory(N);
}

static void test_unknown_length(void **state)
{
    (void)state;
    same_as_in_memory(0);
}

/* A training provider shorter than one batch with a longer validation provider: both are asked
 * for batch_size samples, so the batch buffers must hold batch_size (they held only the
 * training length: the validation pass wrote past them, an ASan heap overflow). Validation of
 * unknown length: val_loss is available to a callback from train begin (it was refused as
 * "this fit has no validation data"). */
static void test_short_training_long_validation(void **state)
{
    (void)state;
    make_data(N, 1, xs, ys);
    make_data(VN, 2, vx, vy);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 32;
    f.epochs = 2;
    f.verbose = 0;
    tfx_early_stopping_options eo = TFX_EARLY_STOPPING_OPTIONS_INIT; /* monitors val_loss */
    eo.patience = 5;
    tfx_early_stopping_callback *es;
    assert_int_equal(tfx_early_stopping_callback_new(&es, &eo), 0);
    const tfx_callback *cbs[1] = {tfx_early_stopping_callback_hooks(es)};
    f.callbacks = cbs;
    f.n_callbacks = 1;
    tfx_model *m = make_model();
    arr ta, va;
    tfx_batch_provider tp = provider(&ta, xs, ys, 4, 4), vp = provider(&va, vx, vy, VN, 0);
    int rc = tfx_model_fit_provider(m, &tp, &vp, &f, NULL);
    if (rc) fail_msg("fit_provider: %d %s", rc, tfx_error_last()->message);
    assert_int_equal(va.resets, 2);
    double l1, a1, l2, a2;
    assert_int_equal(tfx_model_evaluate(m, vx, vy, VN, &l1, &a1), 0);
    assert_int_equal(tfx_model_evaluate_provider(m, &vp, &l2, &a2), 0);
    assert_true(l1 == l2 && a1 == a2);
    tfx_early_stopping_callback_free(es);
    tfx_model_free(m);
}

typedef struct sink_state {
    float out[N * 3];
    size_t expect;
} sink_state;

static int sink(const float *out, size_t first, size_t count, void *payload)
{
    sink_state *s = payload;
    if (first != s->expect || (first + count) > N) return -77;
    memcpy(s->out + first * 3, out, count * 3 * sizeof(float));
    s->expect += count;
    return 0;
}

static int failing_sink(const float *out, size_t first, size_t count, void *payload)
{
    (void)out, (void)count, (void)payload;
    return first > 0 ? tfx_error_set(-1234, "sink full") : 0;
}

static void test_predict(void **state)
{
    (void)state;
    make_data(N, 1, xs, ys);
    tfx_model *m = make_model();
    assert_int_equal(tfx_model_set_batch_size(m, 10), 0);
    float ref[N * 3];
    assert_int_equal(tfx_model_predict(m, xs, N, ref), 0);
    arr a;
    tfx_batch_provider p = provider(&a, xs, ys, N, 0);
    sink_state s = {{0}, 0};
    size_t n = 0;
    assert_int_equal(tfx_model_predict_provider(m, &p, sink, &s, &n), 0);
    assert_int_equal(n, N);
    assert_memory_equal(ref, s.out, sizeof ref);
    int rc = tfx_model_predict_provider(m, &p, failing_sink, NULL, NULL);
    assert_int_equal(rc, -1234);
    assert_non_null(strstr(tfx_error_last()->message, "sink full"));
    tfx_model_free(m);
}

static int ends;
static int count_end(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)m, (void)l, (void)p;
    ends++;
    return 0;
}

static double fake_now;
static double fake_clock(void) { return fake_now += 0.25; }

static void test_progress_unknown(void **state)
{
    (void)state;
    make_data(N, 1, xs, ys);
    tfx_model *m = make_model();
    arr a;
    tfx_batch_provider p = provider(&a, xs, ys, N, 0);
    text t = {{0}, 0};
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8;
    f.epochs = 2;
    f.verbose = 1;
    f.progress_write = collect;
    f.progress_payload = &t;
    ((tfx__train *)m->train)->clock = fake_clock;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), 0);
    /* First epoch: "      1/Unknown ..."; it ends as "6/6 [====...]"; the second epoch knows 6 steps. */
    assert_non_null(strstr(t.buf, "      1/Unknown - "));
    assert_non_null(strstr(t.buf, "6/6 [==============================]"));
    assert_non_null(strstr(t.buf, "Epoch 2/2\n1/6 ["));
    tfx_model_free(m);
}

/* The fit guard: a hook cannot start another fit (either kind) on the model being trained. */
static tfx_batch_provider *guard_provider;
static int nested_fit(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)l, (void)p;
    int rc = tfx_model_fit_provider(m, guard_provider, NULL, NULL, NULL);
    assert_int_equal(rc, TFX_ESTATE);
    return rc;
}

static void test_fit_guard(void **state)
{
    (void)state;
    make_data(N, 1, xs, ys);
    tfx_model *m = make_model();
    arr a;
    tfx_batch_provider p = provider(&a, xs, ys, N, 0);
    guard_provider = &p;
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.on_epoch_begin = nested_fit;
    const tfx_callback *cbs[] = {&cb};
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.verbose = 0;
    f.callbacks = cbs;
    f.n_callbacks = 1;
    int rc = tfx_model_fit_provider(m, &p, NULL, &f, NULL);
    assert_int_equal(rc, TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message, "being trained"));
    tfx_model_free(m);
}

static void test_bad_providers(void **state)
{
    (void)state;
    make_data(N, 1, xs, ys);
    tfx_model *m = make_model();
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8;
    f.epochs = 3;
    f.verbose = 0;
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    arr a;
    tfx_batch_provider p;

    /* An error mid-epoch: fit stops with the provider's code and message, on_train_end runs. */
    p = provider(&a, xs, ys, N, N);
    a.fail_epoch = 1;
    a.fail_batch = 2;
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.on_train_end = count_end;
    const tfx_callback *cbs[] = {&cb};
    f.callbacks = cbs;
    f.n_callbacks = 1;
    ends = 0;
    int rc = tfx_model_fit_provider(m, &p, NULL, &f, h);
    assert_int_equal(rc, TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "disk went away"));
    assert_int_equal(ends, 1);
    assert_int_equal(tfx_history_length(h), 1);
    f.n_callbacks = 0;
    f.callbacks = NULL;

    /* A positive return without a message: TFX_EUSER. */
    p = provider(&a, xs, ys, N, N);
    p.next = NULL;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);

    /* More samples than asked for. */
    p = provider(&a, xs, ys, N, 0);
    a.extra = 1;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "9 samples for a batch of at most 8"));

    /* A sample shape that is not the model's. */
    p = provider(&a, xs, ys, N, 0);
    p.width = 5;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_ESHAPE);
    assert_int_equal(tfx_model_evaluate_provider(m, &p, &(double){0}, NULL), TFX_ESHAPE);

    /* NaN in batch 2: refused before the step, the weights stay those after batch 1. */
    p = provider(&a, xs, ys, N, 0);
    a.nan_batch = 2;
    f.epochs = 1;
    uint64_t steps = tfx_model_train_steps(m);
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "epoch 1, batch 2"));
    assert_int_equal(tfx_model_train_steps(m), steps + 2);

    /* A pass that does not match the announced length. */
    p = provider(&a, xs, ys, N, N + 1);
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "its length is 46"));

    /* No validation_split for a stream; a version from the future. */
    p = provider(&a, xs, ys, N, 0);
    f.validation_split = 0.2;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);
    f.validation_split = 0.0;
    p.version = TFX_BATCH_PROVIDER_VERSION + 1;
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EVERSION);

    /* An empty pass. */
    p = provider(&a, xs, ys, 0, 0);
    assert_int_equal(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_evaluate_provider(m, &p, &(double){0}, NULL), TFX_EINVAL);
    tfx_history_free(h);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_in_memory),
        cmocka_unit_test(test_unknown_length),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_progress_unknown),
        cmocka_unit_test(test_fit_guard),
        cmocka_unit_test(test_bad_providers),
        cmocka_unit_test(test_short_training_long_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
