/* fit / evaluate: learning on a synthetic set, determinism, validation split semantics,
 * callbacks (order, logs, stop, predicting inside a hook), progress output, history, bad
 * input and allocation failures. */
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
#include "train/train_internal.h"

static int under_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65535.0f;
}

/* 6x6x1 images, 3 classes: a bright 3x3 block in the top-left, top-right or bottom
 * half, plus noise. */
static void make_data(size_t n, unsigned seed, float *x, int32_t *y)
{
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        y[i] = c;
        for (int r = 0; r < 6; r++)
            for (int q = 0; q < 6; q++) {
                int on = (c == 0 && r < 3 && q < 3) || (c == 1 && r < 3 && q >= 3) || (c == 2 && r >= 3);
                x[i * 36 + r * 6 + q] = (on ? 0.8f : 0.0f) + 0.4f * frand(&s);
            }
    }
}

static tfx_model *make_model(uint64_t seed, int dropout)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 6, 6, 1), 0);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), 0);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), 0);
    if (dropout) assert_int_equal(tfx_model_add_dropout(m, 0.25f, NULL, NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    assert_int_equal(tfx_model_set_seed(m, seed), 0);
    return m;
}

static void compile_adam(tfx_model *m, float lr)
{
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.learning_rate = lr;
    assert_int_equal(tfx_model_compile(m, &o), 0);
}

static void test_learns(void **state)
{
    (void)state;
    enum { N = 120 };
    float *x = malloc(N * 36 * sizeof(float));
    int32_t y[N];
    make_data(N, 1, x, y);
    tfx_model *m = make_model(42, 0);
    compile_adam(m, 0.01f);
    double loss0, acc0;
    assert_int_equal(tfx_model_evaluate(m, x, y, N, &loss0, &acc0), 0);
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 16;
    f.epochs = 8;
    f.validation_split = 0.25;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), 0);
    assert_int_equal(tfx_history_length(h), 8);
    const double *loss = tfx_history_values(h, "loss"), *acc = tfx_history_values(h, "accuracy");
    const double *vacc = tfx_history_values(h, "val_accuracy"), *ep = tfx_history_values(h, "epoch");
    assert_non_null(loss);
    assert_non_null(acc);
    assert_non_null(vacc);
    assert_true(ep[0] == 0 && ep[7] == 7);
    assert_true(loss[7] < 0.5 * loss[0]);
    assert_true(acc[7] > acc[0]);
    assert_true(acc[7] >= 0.9);
    assert_true(vacc[7] >= 0.9);
    double loss1, acc1;
    assert_int_equal(tfx_model_evaluate(m, x, y, N, &loss1, &acc1), 0);
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 >= 0.9 && acc0 < 0.7);
    assert_int_equal(tfx_model_train_steps(m), 8 * 6); /* 90 training samples / 16 -> 6 batches */
    tfx_history_free(h);
    tfx_model_free(m);
    free(x);
}

/* Same seed -> bit-identical weights (shuffling and dropout both use the model's RNG). */
static void fit_weights(uint64_t seed, const float *x, const int32_t *y, size_t n, float **out, size_t *np)
{
    tfx_model *m = make_model(seed, 1);
    compile_adam(m, 0.01f);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8;
    f.epochs = 3;
    assert_int_equal(tfx_model_fit(m, x, y, n, &f, NULL), 0);
    *np = m->n_params;
    *out = malloc(*np * sizeof(float));
    memcpy(*out, m->params, *np * sizeof(float));
    tfx_model_free(m);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 30 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 2, x, y);
    float *a, *b, *c;
    size_t na, nb, nc;
    fit_weights(7, x, y, N, &a, &na);
    fit_weights(7, x, y, N, &b, &nb);
    fit_weights(8, x, y, N, &c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(float));
    assert_true(memcmp(a, c, na * sizeof(float)) != 0);
    free(a);
    free(b);
    free(c);
}

/* ---- validation split: sample i is x = i + 1, target 2 (i + 1); one weight, MSE ---- */

static tfx_model *scalar_model(float w0)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 1, 1, 1), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 1;
    d.use_bias = 0;
    tfx_layer *l;
    assert_int_equal(tfx_model_add_dense(m, &d, &l), 0);
    assert_int_equal(tfx_layer_set_weights(l, &w0, NULL), 0);
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.loss = TFX_LOSS_MEAN_SQUARED_ERROR;
    o.optimizer = TFX_OPTIMIZER_SGD;
    o.learning_rate = 0.01f;
    o.metrics = TFX_METRIC_NONE;
    assert_int_equal(tfx_model_compile(m, &o), 0);
    return m;
}

typedef struct sizes_seen {
    size_t samples, val_samples, steps;
} sizes_seen;

static int record_sizes(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    sizes_seen *s = payload;
    s->samples = logs->samples;
    s->val_samples = logs->val_samples;
    s->steps = logs->steps;
    return 0;
}

static void test_validation_split_is_last(void **state)
{
    (void)state;
    enum { N = 10 };
    float x[N], t[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i + 1);
        t[i] = 2.0f * (float)(i + 1) + (i >= 7 ? 5.0f : 0.0f); /* the held-out ones are off the line */
    }
    const float w0 = 0.5f, lr = 0.01f;
    tfx_model *m = scalar_model(w0);
    sizes_seen seen = {0};
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.on_train_begin = record_sizes;
    cb.payload = &seen;
    const tfx_callback *cbs[1] = {&cb};
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 100; /* one batch: the step shows exactly which samples trained */
    f.validation_split = 0.3;
    f.callbacks = cbs;
    f.n_callbacks = 1;
    assert_int_equal(tfx_model_fit(m, x, t, N, &f, h), 0);
    /* floor(10 * 0.7) = 7 training samples (indices 0..6), validation 7..9 */
    assert_int_equal(seen.samples, 7);
    assert_int_equal(seen.val_samples, 3);
    assert_int_equal(seen.steps, 1);
    double g = 0.0;
    for (int i = 0; i < 7; i++) g += 2.0 * x[i] * (w0 * x[i] - t[i]) / 7.0;
    double w1 = w0 - lr * g;
    assert_true(fabs(m->params[0] - w1) < 1e-5);
    double vl = 0.0, l = 0.0;
    for (int i = 7; i < N; i++) vl += (m->params[0] * x[i] - t[i]) * (m->params[0] * x[i] - t[i]) / 3.0;
    for (int i = 0; i < 7; i++) l += (w0 * x[i] - t[i]) * (w0 * x[i] - t[i]) / 7.0;
    assert_true(fabs(tfx_history_values(h, "val_loss")[0] - vl) < 1e-4 * vl);
    assert_true(fabs(tfx_history_values(h, "loss")[0] - l) < 1e-5 * l);
    assert_null(tfx_history_values(h, "accuracy")); /* not compiled */
    assert_int_equal(tfx_error_last()->code, TFX_EINVAL);
    /* Keras rounds the training part down: 10 * 0.75 = 7.5 -> 7 */
    f.validation_split = 0.25;
    assert_int_equal(tfx_model_fit(m, x, t, N, &f, h), 0);
    assert_int_equal(seen.samples, 7);
    /* validation_data wins over validation_split */
    float vx[2] = {1, 2}, vt[2] = {2, 4};
    f.validation_x = vx;
    f.validation_y = vt;
    f.validation_n = 2;
    assert_int_equal(tfx_model_fit(m, x, t, N, &f, h), 0);
    assert_int_equal(seen.samples, N);
    assert_int_equal(seen.val_samples, 2);
    double e;
    assert_int_equal(tfx_model_evaluate(m, vx, vt, 2, &e, NULL), 0);
    assert_true(tfx_history_values(h, "val_loss")[0] == e);
    tfx_history_free(h);
    tfx_model_free(m);
}

/* ---- callbacks ---- */

typedef struct event_log {
    char text[4096];
    int id;
    int stop_at_batch_end; /* global batch count at which on_batch_end returns 7 (0: never) */
    int stop_at_epoch_end; /* epoch index + 1 */
    int batches;
} event_log;

static event_log shared_log;

static void add(event_log *e, int id, const char *what, const tfx_train_logs *l)
{
    (void)e;
    size_t u = strlen(shared_log.text);
    snprintf(shared_log.text + u, sizeof shared_log.text - u, "%d%s%d.%zu/%zu ", id, what, l->epoch, l->batch,
             l->batch_size);
}

#define HOOK(name, tag)                                                                                  \
    static int name(tfx_model *m, const tfx_train_logs *l, void *p)                                    \
    {                                                                                                  \
        (void)m;                                                                                       \
        event_log *e = p;                                                                              \
        add(e, e->id, tag, l);                                                                         \
        return 0;                                                                                      \
    }
HOOK(h_tb, "TB")
HOOK(h_te, "TE")
HOOK(h_eb, "EB")
HOOK(h_bb, "BB")

static int h_be(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)m;
    event_log *e = p;
    add(e, e->id, "BE", l);
    e->batches++;
    assert_true(isfinite(l->loss) && isfinite(l->batch_loss) && isfinite(l->accuracy));
    return e->stop_at_batch_end && e->batches == e->stop_at_batch_end ? 7 : 0;
}

static int h_ee(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)m;
    event_log *e = p;
    add(e, e->id, "EE", l);
    assert_true(isfinite(l->loss) && isfinite(l->val_loss));
    return e->stop_at_epoch_end && l->epoch + 1 == e->stop_at_epoch_end ? 1 : 0;
}

static void init_cb(tfx_callback *cb, event_log *e, int id)
{
    tfx_callback def = TFX_CALLBACK_INIT;
    *cb = def;
    memset(e, 0, sizeof *e);
    e->id = id;
    cb->payload = e;
    cb->on_train_begin = h_tb;
    cb->on_train_end = h_te;
    cb->on_epoch_begin = h_eb;
    cb->on_epoch_end = h_ee;
    cb->on_batch_begin = h_bb;
    cb->on_batch_end = h_be;
}

static void test_callback_order(void **state)
{
    (void)state;
    enum { N = 7 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 3, x, y);
    tfx_model *m = make_model(1, 0);
    compile_adam(m, 0.001f);
    tfx_callback a, b;
    event_log ea, eb;
    init_cb(&a, &ea, 0);
    init_cb(&b, &eb, 1);
    b.on_batch_begin = NULL; /* NULL hooks are skipped */
    const tfx_callback *cbs[2] = {&a, &b};
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 3;
    f.epochs = 3;
    f.initial_epoch = 1; /* Keras: epochs 1 and 2 run */
    f.validation_split = 0.2; /* floor(5.6) = 5 train: batches of 3 and 2 */
    f.callbacks = cbs;
    f.n_callbacks = 2;
    memset(&shared_log, 0, sizeof shared_log);
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), 0);
    const char *want = "0TB1.0/0 1TB1.0/0 "
                       "0EB1.0/0 1EB1.0/0 0BB1.0/3 0BE1.0/3 1BE1.0/3 0BB1.1/2 0BE1.1/2 1BE1.1/2 0EE1.0/0 1EE1.0/0 "
                       "0EB2.0/0 1EB2.0/0 0BB2.0/3 0BE2.0/3 1BE2.0/3 0BB2.1/2 0BE2.1/2 1BE2.1/2 0EE2.0/0 1EE2.0/0 "
                       "0TE2.0/0 1TE2.0/0 ";
    assert_string_equal(shared_log.text, want);
    tfx_model_free(m);
}

static void test_callback_stop(void **state)
{
    (void)state;
    enum { N = 12 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 4, x, y);
    tfx_model *m = make_model(1, 0);
    compile_adam(m, 0.001f);
    tfx_callback a, b;
    event_log ea, eb;
    init_cb(&a, &ea, 0);
    init_cb(&b, &eb, 1);
    ea.stop_at_batch_end = 5; /* epoch 1 (0-based), its second batch */
    const tfx_callback *cbs[2] = {&a, &b};
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 4;
    f.epochs = 5;
    f.callbacks = cbs;
    f.n_callbacks = 2;
    f.validation_split = 0.25; /* 9 train: 3 batches */
    memset(&shared_log, 0, sizeof shared_log);
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message, "callback returned 7"));
    assert_int_equal(tfx_model_train_steps(m), 5); /* the stopping batch's step was taken */
    assert_int_equal(tfx_history_length(h), 1);    /* the interrupted epoch is not recorded */
    /* the second callback saw neither that on_batch_end nor anything after, except on_train_end */
    const char *tail = "0BE1.1/4 0TE1.1/4 1TE1.1/4 ";
    const char *txt = shared_log.text;
    assert_string_equal(txt + strlen(txt) - strlen(tail), tail);

    /* stop from on_epoch_end: that epoch completed and is recorded */
    init_cb(&a, &ea, 0);
    init_cb(&b, &eb, 1);
    eb.stop_at_epoch_end = 2;
    memset(&shared_log, 0, sizeof shared_log);
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), TFX_EUSER);
    assert_int_equal(tfx_history_length(h), 2);
    assert_non_null(strstr(tfx_error_last()->message, "callback returned 1"));
    tfx_history_free(h);
    tfx_model_free(m);
}

/* A callback whose libtfx call failed: its message is kept. */
static int bad_predict(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)l;
    (void)p;
    return tfx_model_predict(m, NULL, 1, NULL);
}

static void test_callback_message(void **state)
{
    (void)state;
    enum { N = 6 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 5, x, y);
    tfx_model *m = make_model(1, 0);
    compile_adam(m, 0.001f);
    tfx_callback a = TFX_CALLBACK_INIT;
    a.on_epoch_begin = bad_predict;
    const tfx_callback *cbs[1] = {&a};
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.callbacks = cbs;
    f.n_callbacks = 1;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message, "tfx_model_predict"));
    assert_int_equal(tfx_model_train_steps(m), 0);
    tfx_model_free(m);
}

/* Predicting inside on_batch_end (a bigger batch than fit's, so the model's buffers are
 * reallocated) must not change training at all. */
typedef struct predictor {
    const float *x;
    size_t n;
    float *out;
} predictor;

static int predict_hook(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)l;
    predictor *pr = p;
    return tfx_model_predict(m, pr->x, pr->n, pr->out);
}

static void test_predict_in_callback(void **state)
{
    (void)state;
    enum { N = 24, NP = 40 };
    float x[N * 36], xp[NP * 36], out[NP * 3];
    int32_t y[N], yp[NP];
    make_data(N, 6, x, y);
    make_data(NP, 9, xp, yp);
    float *w[2];
    for (int k = 0; k < 2; k++) {
        tfx_model *m = make_model(5, 1);
        assert_int_equal(tfx_model_set_batch_size(m, NP), 0);
        compile_adam(m, 0.01f);
        predictor pr = {xp, NP, out};
        tfx_callback cb = TFX_CALLBACK_INIT;
        cb.payload = &pr;
        cb.on_batch_end = predict_hook;
        cb.on_batch_begin = predict_hook;
        const tfx_callback *cbs[1] = {&cb};
        tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
        f.batch_size = 5;
        f.epochs = 2;
        f.validation_split = 0.2;
        f.callbacks = k ? cbs : NULL;
        f.n_callbacks = k ? 1 : 0;
        assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), 0);
        w[k] = malloc(m->n_params * sizeof(float));
        memcpy(w[k], m->params, m->n_params * sizeof(float));
        if (k) assert_memory_equal(w[0], w[1], m->n_params * sizeof(float));
        tfx_model_free(m);
    }
    free(w[0]);
    free(w[1]);
}

/* ---- progress output (fake clock: each batch takes 0.25 s) ---- */

static double fake_now;
static double fake_clock(void) { return fake_now; }
static int tick(tfx_model *m, const tfx_train_logs *l, void *p)
{
    (void)m;
    (void)l;
    (void)p;
    fake_now += 0.25;
    return 0;
}

typedef struct sink {
    char buf[8192];
    size_t len;
    int fail;
} sink;

static int sink_write(const char *text, size_t len, void *payload)
{
    sink *s = payload;
    if (s->fail) return 3;
    if (s->len + len < sizeof s->buf) {
        memcpy(s->buf + s->len, text, len);
        s->len += len;
        s->buf[s->len] = '\0';
    }
    return 0;
}

/* Keras's value format: %.4f, or %.4e when |v| <= 1e-3 (checked in test_progress_small_values). */
static const char *kf(double v, char *buf)
{
    sprintf(buf, fabs(v) > 1e-3 ? "%.4f" : "%.4e", v);
    return buf;
}

static void test_progress_output(void **state)
{
    char b[8][32];
    (void)state;
    enum { N = 10 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 7, x, y);
    tfx_model *m = make_model(1, 0);
    compile_adam(m, 0.001f);
    ((tfx__train *)m->train)->clock = fake_clock;
    fake_now = 100.0;
    tfx_callback cb = TFX_CALLBACK_INIT;
    cb.on_batch_end = tick;
    const tfx_callback *cbs[1] = {&cb};
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    static sink s;
    memset(&s, 0, sizeof s);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 3;
    f.epochs = 2;
    f.shuffle = 0;
    f.validation_split = 0.2; /* 8 train -> 3 batches */
    f.callbacks = cbs;
    f.n_callbacks = 1;
    f.verbose = 2;
    f.progress_write = sink_write;
    f.progress_payload = &s;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), 0);
    const double *l = tfx_history_values(h, "loss"), *a = tfx_history_values(h, "accuracy");
    const double *vl = tfx_history_values(h, "val_loss"), *va = tfx_history_values(h, "val_accuracy");
    char want[2048];
    snprintf(want, sizeof want,
             "Epoch 1/2\n3/3 - 1s - loss: %s - accuracy: %s - val_loss: %s - val_accuracy: %s\n"
             "Epoch 2/2\n3/3 - 1s - loss: %s - accuracy: %s - val_loss: %s - val_accuracy: %s\n",
             kf(l[0], b[0]), kf(a[0], b[1]), kf(vl[0], b[2]), kf(va[0], b[3]), kf(l[1], b[4]), kf(a[1], b[5]),
             kf(vl[1], b[6]), kf(va[1], b[7]));
    assert_string_equal(s.buf, want);

    /* verbose 1: the bar redrawn with '\r', then the final line of each epoch */
    memset(&s, 0, sizeof s);
    f.verbose = 1;
    f.epochs = 1;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), 0);
    l = tfx_history_values(h, "loss");
    a = tfx_history_values(h, "accuracy");
    vl = tfx_history_values(h, "val_loss");
    va = tfx_history_values(h, "val_accuracy");
    assert_null(strstr(s.buf, "Epoch")); /* Keras prints "Epoch i/n" only when epochs > 1 */
    assert_memory_equal(s.buf, "1/3 [=========>....................] - ETA: 0s - loss: ", 54);
    assert_non_null(strstr(s.buf, "\r2/3 [===================>..........] - ETA: 0s - loss: "));
    assert_non_null(strstr(s.buf, "\r3/3 [==============================] - ETA: 0s - loss: "));
    char fin[512];
    snprintf(fin, sizeof fin,
             "\r3/3 [==============================] - 1s 250ms/step - loss: %s - accuracy: %s - val_loss: "
             "%s - val_accuracy: %s\n",
             kf(l[0], b[0]), kf(a[0], b[1]), kf(vl[0], b[2]), kf(va[0], b[3]));
    const char *last = strrchr(s.buf, '\r');
    assert_non_null(last);
    assert_string_equal(last, fin);

    /* a FILE* sink gets the same text */
    FILE *fp = tmpfile();
    assert_non_null(fp);
    f.progress_write = NULL;
    f.progress_file = fp;
    f.verbose = 2;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), 0);
    rewind(fp);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, fp));
    assert_memory_equal(line, "3/3 - 1s - loss: ", 17);
    fclose(fp);

    /* a failing writer stops training with TFX_EIO */
    memset(&s, 0, sizeof s);
    s.fail = 1;
    f.progress_file = NULL;
    f.progress_write = sink_write;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "returned 3"));

    /* verbose without a sink writes nothing and trains */
    f.progress_write = NULL;
    f.verbose = 1;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), 0);
    tfx_history_free(h);
    tfx_model_free(m);
}

/* Small values switch to %.4e like Keras. */
static void test_progress_small_values(void **state)
{
    (void)state;
    tfx__progress p = {0};
    static sink s;
    memset(&s, 0, sizeof s);
    p.verbose = 2;
    p.write = sink_write;
    p.payload = &s;
    p.clock = fake_clock;
    p.has_acc = 1;
    fake_now = 0;
    assert_int_equal(tfx__progress_epoch_begin(&p, 0, 1, 120), 0);
    fake_now = 12.4;
    assert_int_equal(tfx__progress_epoch_end(&p, 0.0005, 1.0, 0, 0, 0), 0);
    assert_string_equal(s.buf, "120/120 - 12s - loss: 5.0000e-04 - accuracy: 1.0000\n");
}

/* ---- evaluate ---- */

static void test_evaluate_batched(void **state)
{
    (void)state;
    enum { N = 23 };
    float x[N * 36], p[N * 3];
    int32_t y[N];
    make_data(N, 8, x, y);
    tfx_model *m = make_model(3, 0);
    compile_adam(m, 0.001f);
    assert_int_equal(tfx_model_predict(m, x, N, p), 0);
    double want = 0.0, hits = 0.0;
    for (int i = 0; i < N; i++) {
        want -= log(p[i * 3 + y[i]]) / N;
        int best = 0;
        for (int j = 1; j < 3; j++)
            if (p[i * 3 + j] > p[i * 3 + best]) best = j;
        hits += best == y[i];
    }
    double l1, a1, l2, a2;
    assert_int_equal(tfx_model_set_batch_size(m, 4), 0);
    assert_int_equal(tfx_model_evaluate(m, x, y, N, &l1, &a1), 0);
    assert_int_equal(tfx_model_set_batch_size(m, 100), 0);
    assert_int_equal(tfx_model_evaluate(m, x, y, N, &l2, &a2), 0);
    assert_true(fabs(l1 - want) < 1e-5 && fabs(l2 - want) < 1e-5);
    assert_true(a1 == hits / N && a2 == hits / N);
    tfx_model_free(m);
}

/* ---- bad input ---- */

static void expect(int rc, int code, const char *needle)
{
    assert_int_equal(rc, code);
    if (needle && !strstr(tfx_error_last()->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", tfx_error_last()->message, needle);
}

static void test_bad_input(void **state)
{
    (void)state;
    enum { N = 5 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 9, x, y);
    tfx_model *m = make_model(1, 0);
    double loss, acc;
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_ESTATE, "not compiled");
    expect(tfx_model_evaluate(m, x, y, N, &loss, &acc), TFX_ESTATE, "not compiled");
    compile_adam(m, 0.001f);
    expect(tfx_model_fit(NULL, x, y, N, &f, NULL), TFX_EINVAL, NULL);
    expect(tfx_model_fit(m, NULL, y, N, &f, NULL), TFX_EINVAL, NULL);
    expect(tfx_model_fit(m, x, NULL, N, &f, NULL), TFX_EINVAL, NULL);
    expect(tfx_model_fit(m, x, y, 0, &f, NULL), TFX_EINVAL, "n = 0");

    /* labels out of range, both ways */
    y[3] = 3;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "y[3] = 3 (sample 3) is out of range [0, 3)");
    expect(tfx_model_evaluate(m, x, y, N, &loss, &acc), TFX_EINVAL, "y[3] = 3");
    y[3] = -1;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "y[3] = -1");
    y[3] = 0;

    /* NaN / inf in the input: rejected before any step, naming the first bad index */
    x[2 * 36 + 5] = NAN;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "x[77] (sample 2) is not finite");
    expect(tfx_model_evaluate(m, x, y, N, &loss, &acc), TFX_EINVAL, "x[77]");
    x[2 * 36 + 5] = INFINITY;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "x[77]");
    x[2 * 36 + 5] = 0.0f;
    assert_int_equal(tfx_model_train_steps(m), 0);

    /* options */
    f.batch_size = 0;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "batch_size 0");
    f.batch_size = 32;
    f.epochs = -1;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "epochs -1");
    f.epochs = 1;
    f.initial_epoch = -2;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "initial_epoch -2");
    f.initial_epoch = 0;
    const double bad_splits[] = {1.0, -0.1, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        f.validation_split = bad_splits[i];
        expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "validation_split");
    }
    f.validation_split = 0.9; /* floor(0.5) = 0 training samples */
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "leaves 0 for training");
    f.validation_split = 0.0;
    f.verbose = 3;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "verbose 3");
    f.verbose = 0;
    f.validation_n = 2;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "validation_x");
    f.validation_n = 0;
    f.n_callbacks = 1;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "array is NULL");
    const tfx_callback *none[1] = {NULL};
    f.callbacks = none;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EINVAL, "callbacks[0] is NULL");
    tfx_callback cb0 = TFX_CALLBACK_INIT;
    cb0.version = 0;
    const tfx_callback *v0[1] = {&cb0};
    f.callbacks = v0;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EVERSION, NULL);
    f.callbacks = NULL;
    f.n_callbacks = 0;
    f.version = 99;
    expect(tfx_model_fit(m, x, y, N, &f, NULL), TFX_EVERSION, NULL);
    f.version = TFX_FIT_OPTIONS_VERSION;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.loss = 9;
    expect(tfx_model_compile(m, &co), TFX_EINVAL, "unknown loss 9");
    co.loss = TFX_LOSS_MEAN_SQUARED_ERROR;
    co.beta_1 = 1.0f;
    expect(tfx_model_compile(m, &co), TFX_EINVAL, "beta_1");
    co.beta_1 = 0.9f;
    co.learning_rate = -1.0f;
    expect(tfx_model_compile(m, &co), TFX_EINVAL, "learning_rate");
    co.learning_rate = 0.0f;
    co.version = 0;
    expect(tfx_model_compile(m, &co), TFX_EVERSION, NULL);
    assert_int_equal(tfx_compile_options_init(&co, 2), TFX_EVERSION);
    assert_int_equal(tfx_fit_options_init(&f, 1), 0);

    /* n smaller than batch_size: one smaller batch per epoch (Keras) */
    f.batch_size = 32;
    f.epochs = 3;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, NULL), 0);
    assert_int_equal(tfx_model_train_steps(m), 3);
    /* epochs = 0 (or initial_epoch >= epochs): nothing runs, history is empty */
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    f.epochs = 2;
    f.initial_epoch = 2;
    assert_int_equal(tfx_model_fit(m, x, y, N, &f, h), 0);
    assert_int_equal(tfx_history_length(h), 0);
    assert_int_equal(tfx_model_train_steps(m), 3);
    expect(tfx_history_values(h, "bogus") ? 0 : tfx_error_last()->code, TFX_EINVAL, "unknown key 'bogus'");

    /* evaluate arguments */
    expect(tfx_model_evaluate(m, x, y, 0, &loss, &acc), TFX_EINVAL, "n = 0");
    expect(tfx_model_evaluate(m, x, y, N, NULL, &acc), TFX_EINVAL, "loss");

    /* layers added after compile */
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    expect(tfx_model_fit(m, x, y, N, NULL, NULL), TFX_ESTATE, "compile again");
    expect(tfx_model_evaluate(m, x, y, N, &loss, NULL), TFX_ESTATE, "compile again");
    tfx_history_free(h);
    tfx_model_free(m);
}

/* A diverging run: the loss becomes non-finite and fit stops with TFX_ERROR. */
static void test_nan_loss_stops(void **state)
{
    (void)state;
    enum { N = 8 };
    float x[N], t[N];
    for (int i = 0; i < N; i++) {
        x[i] = 1000.0f * (float)(i + 1);
        t[i] = 1.0f;
    }
    tfx_model *m = scalar_model(0.5f);
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.loss = TFX_LOSS_MEAN_SQUARED_ERROR;
    o.optimizer = TFX_OPTIMIZER_SGD;
    o.learning_rate = 1000.0f;
    assert_int_equal(tfx_model_compile(m, &o), 0);
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 2;
    f.epochs = 50;
    expect(tfx_model_fit(m, x, t, N, &f, h), TFX_ERROR, "loss became");
    assert_true(tfx_model_train_steps(m) < 200);
    tfx_history_free(h);
    tfx_model_free(m);
}

/* Allocation failures anywhere in compile/fit give TFX_ENOMEM and leak nothing. */
static void test_alloc_failures(void **state)
{
    (void)state;
    enum { N = 9 };
    float x[N * 36];
    int32_t y[N];
    make_data(N, 10, x, y);
    int done = 0;
    for (long k = 1; k < 200 && !done; k++) {
        tfx_model *m = make_model(1, 0);
        tfx_history *h;
        assert_int_equal(tfx_history_new(&h), 0);
        tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
        f.batch_size = 4;
        f.epochs = 2;
        f.validation_split = 0.3;
        tfx__alloc_fail_after(k);
        int rc = tfx_model_compile(m, NULL);
        if (rc == 0) rc = tfx_model_fit(m, x, y, N, &f, h);
        tfx__alloc_fail_after(0);
        if (rc == 0) {
            done = 1;
            assert_int_equal(tfx_history_length(h), 2);
        } else {
            assert_int_equal(rc, TFX_ENOMEM);
        }
        tfx_history_free(h);
        tfx_model_free(m);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_validation_split_is_last),
        cmocka_unit_test(test_callback_order),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_callback_message),
        cmocka_unit_test(test_predict_in_callback),
        cmocka_unit_test(test_progress_output),
        cmocka_unit_test(test_progress_small_values),
        cmocka_unit_test(test_evaluate_batched),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_nan_loss_stops),
        cmocka_unit_test(test_alloc_failures),
    };
    (void)under_valgrind;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
