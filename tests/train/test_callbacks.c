/* Keras's built-in callbacks (issue 20): each one against tf-keras 2.16's behaviour on scripted
 * logs (its hooks driven directly), then one short real fit each; bad options and unwritable
 * paths; tfx_error_set's message reaching fit's caller; tfx_model_stop_training and the
 * learning rate setter from inside fit. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfx/tfx.h"
#include "train/callback_internal.h"

#define N 24
#define H 4

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfx_callbacks_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_data(float *x, int32_t *y)
{
    unsigned s = 11;
    for (size_t i = 0; i < N; i++) {
        y[i] = (int32_t)(i % 3);
        for (int k = 0; k < H * H; k++) {
            s = s * 1103515245u + 12345u;
            x[i * H * H + k] = (float)((s >> 8) & 0xffff) / 65535.0f + (k % 3 == (int)(i % 3) ? 0.7f : 0.0f);
        }
    }
}

/* Flatten -> Dense(3, softmax), SGD (lr 0.01), accuracy. */
static tfx_model *make_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, H, 1), TFX_OK);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "out";
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), TFX_OK);
    assert_int_equal(tfx_model_set_seed(m, 5), TFX_OK);
    tfx_compile_options c = TFX_COMPILE_OPTIONS_INIT;
    c.optimizer = TFX_OPTIMIZER_SGD;
    assert_int_equal(tfx_model_compile(m, &c), TFX_OK);
    return m;
}

/* Logs of an epoch end, as fit fills them (NaN: not available). */
static tfx_train_logs epoch_logs(int epoch, double loss, double acc, double val_loss, double val_acc)
{
    tfx_train_logs l;
    memset(&l, 0, sizeof l);
    l.epoch = epoch;
    l.epochs = 100;
    l.steps = 3;
    l.samples = N;
    l.val_samples = isnan(val_loss) ? 0 : 8;
    l.loss = loss;
    l.accuracy = acc;
    l.val_loss = val_loss;
    l.val_accuracy = val_acc;
    l.batch_loss = NAN;
    return l;
}

static int stop_requested(tfx_model *m) { return ((tfx__train *)m->train)->stop_training; }
static void clear_stop(tfx_model *m) { ((tfx__train *)m->train)->stop_training = 0; }

/* Mark the weights with the epoch, so a restore can be traced to the epoch it came from. */
static void mark_weights(tfx_model *m, int epoch)
{
    tfx_layer *l = tfx_model_find_layer(m, "out");
    float k[H * H * 3], b[3];
    for (int i = 0; i < H * H * 3; i++) k[i] = (float)(epoch * 100 + i);
    for (int i = 0; i < 3; i++) b[i] = (float)epoch;
    assert_int_equal(tfx_layer_set_weights(l, k, b), TFX_OK);
}

static int weights_epoch(tfx_model *m)
{
    float k[H * H * 3], b[3];
    assert_int_equal(tfx_layer_get_weights(tfx_model_find_layer(m, "out"), k, b), TFX_OK);
    return (int)b[0];
}

/* ---- EarlyStopping, scripted ---- */

/* Run EarlyStopping over a val_loss sequence; returns the epoch at which it asked to stop, or -1. */
static int es_run(tfx_early_stopping_callback *es, tfx_model *m, const double *v, int n, int *restored)
{
    const tfx_callback *h = tfx_early_stopping_callback_hooks(es);
    tfx_train_logs l = epoch_logs(0, 1.0, 0.5, 1.0, 0.5);
    clear_stop(m);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
    int stopped = -1;
    for (int e = 0; e < n; e++) {
        mark_weights(m, e);
        l = epoch_logs(e, 1.0, 0.5, v[e], 0.5);
        assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
        if (stop_requested(m)) {
            stopped = e;
            break;
        }
    }
    mark_weights(m, 99);
    assert_int_equal(h->on_train_end(m, &l, h->payload), 0);
    if (restored) *restored = weights_epoch(m);
    return stopped;
}

static tfx_early_stopping_callback *es_new(const tfx_early_stopping_options *o)
{
    tfx_early_stopping_callback *es;
    assert_int_equal(tfx_early_stopping_callback_new(&es, o), TFX_OK);
    return es;
}

static void test_early_stopping_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    int restored;

    /* patience 2: no improvement at epochs 2 and 3 -> stop at epoch 3 (wait = 2) */
    tfx_early_stopping_options o = TFX_EARLY_STOPPING_OPTIONS_INIT;
    o.patience = 2;
    o.restore_best_weights = 1;
    tfx_early_stopping_callback *es = es_new(&o);
    const double v1[] = {1.0, 0.8, 0.85, 0.9, 0.1, 0.1};
    assert_int_equal(es_run(es, m, v1, 6, &restored), 3);
    assert_int_equal(tfx_early_stopping_callback_stopped_epoch(es), 3);
    assert_int_equal(tfx_early_stopping_callback_best_epoch(es), 1);
    assert_int_equal(restored, 1); /* the weights of the best epoch */

    /* the epochs run out before patience does: tf-keras 2.16+ restores the best weights anyway */
    const double v2[] = {1.0, 0.5, 0.7};
    assert_int_equal(es_run(es, m, v2, 3, &restored), -1);
    assert_int_equal(tfx_early_stopping_callback_stopped_epoch(es), 0);
    assert_int_equal(restored, 1);
    /* nothing ever improves after the first epoch: the first epoch's weights */
    const double v3[] = {0.5, 0.6, 0.7, 0.8};
    assert_int_equal(es_run(es, m, v3, 4, &restored), 2);
    assert_int_equal(restored, 0);
    tfx_early_stopping_callback_free(es);

    /* without restore_best_weights the last weights stay */
    o.restore_best_weights = 0;
    es = es_new(&o);
    assert_int_equal(es_run(es, m, v1, 6, &restored), 3);
    assert_int_equal(restored, 99);
    tfx_early_stopping_callback_free(es);

    /* patience 0: the first epoch without improvement stops (never epoch 0) */
    o.patience = 0;
    es = es_new(&o);
    const double v4[] = {1.0, 0.9, 0.95};
    assert_int_equal(es_run(es, m, v4, 3, NULL), 2);
    tfx_early_stopping_callback_free(es);

    /* baseline 0.5: improving on the best without beating the baseline does not reset wait */
    o.patience = 2;
    o.has_baseline = 1;
    o.baseline = 0.5;
    es = es_new(&o);
    const double v5[] = {0.9, 0.95, 0.97, 0.99};
    assert_int_equal(es_run(es, m, v5, 4, NULL), 1); /* wait 1 after epoch 0, 2 after epoch 1 */
    tfx_early_stopping_callback_free(es);
    o.has_baseline = 0;
    es = es_new(&o);
    assert_int_equal(es_run(es, m, v5, 4, NULL), 2); /* without it: wait 0, 1, 2 */
    tfx_early_stopping_callback_free(es);

    /* min_delta 0.1 (mode min): 0.95 after 1.0 is no improvement */
    o.patience = 1;
    o.min_delta = 0.1;
    es = es_new(&o);
    const double v6[] = {1.0, 0.95, 0.5};
    assert_int_equal(es_run(es, m, v6, 3, NULL), 1);
    tfx_early_stopping_callback_free(es);
    o.min_delta = 0.01;
    es = es_new(&o);
    assert_int_equal(es_run(es, m, v6, 3, NULL), -1);
    tfx_early_stopping_callback_free(es);

    /* mode max (and auto on an accuracy): a falling value is no improvement */
    o.min_delta = 0.0;
    o.mode = TFX_MODE_MAX;
    es = es_new(&o);
    const double v7[] = {0.5, 0.6, 0.55};
    assert_int_equal(es_run(es, m, v7, 3, NULL), 2);
    tfx_early_stopping_callback_free(es);

    /* start_from_epoch 2: epochs 0 and 1 are not looked at */
    o.mode = TFX_MODE_MIN;
    o.patience = 0;
    o.start_from_epoch = 2;
    es = es_new(&o);
    const double v8[] = {0.5, 0.9, 0.95, 0.99};
    assert_int_equal(es_run(es, m, v8, 4, NULL), 3);
    tfx_early_stopping_callback_free(es);
    tfx_model_free(m);
}

/* ---- ReduceLROnPlateau, scripted ---- */

static void test_reduce_lr_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    float lr;
    tfx_reduce_lr_on_plateau_options o = TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    o.monitor = "loss";
    o.factor = 0.5;
    o.patience = 2;
    o.min_delta = 0.0;
    o.min_lr = 0.001;
    for (int cooldown = 0; cooldown <= 2; cooldown += 2) {
        o.cooldown = cooldown;
        tfx_reduce_lr_on_plateau_callback *cb;
        assert_int_equal(tfx_reduce_lr_on_plateau_callback_new(&cb, &o), TFX_OK);
        const tfx_callback *h = tfx_reduce_lr_on_plateau_callback_hooks(cb);
        assert_int_equal(tfx_model_set_learning_rate(m, 0.01f), TFX_OK);
        tfx_train_logs l = epoch_logs(0, 1.0, 0.5, NAN, NAN);
        assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
        /* a flat loss: reductions at epochs 2, 4, 6 (cooldown 0) or 2, 5, 8 (cooldown 2) */
        float expect = 0.01f;
        for (int e = 0; e < 12; e++) {
            l = epoch_logs(e, 1.0, 0.5, NAN, NAN);
            assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
            int fires = cooldown == 0 ? (e >= 2 && e % 2 == 0) : (e >= 2 && (e - 2) % 3 == 0);
            if (fires && expect > 0.001f) {
                double n = (double)expect * 0.5;
                expect = (float)(n < 0.001 ? 0.001 : n);
            }
            assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
            if (lr != expect) fail_msg("cooldown %d, epoch %d: lr %.9g, expected %.9g", cooldown, e, lr, expect);
        }
        assert_true(lr == 0.001f); /* 0.01 -> 0.005 -> 0.0025 -> 0.00125 -> max(0.000625, min_lr) */
        tfx_reduce_lr_on_plateau_callback_free(cb);
    }

    /* an improvement by more than min_delta resets wait; a smaller one does not */
    o.cooldown = 0;
    o.min_delta = 0.05;
    o.min_lr = 0.0;
    tfx_reduce_lr_on_plateau_callback *cb;
    assert_int_equal(tfx_reduce_lr_on_plateau_callback_new(&cb, &o), TFX_OK);
    const tfx_callback *h = tfx_reduce_lr_on_plateau_callback_hooks(cb);
    assert_int_equal(tfx_model_set_learning_rate(m, 0.01f), TFX_OK);
    tfx_train_logs l = epoch_logs(0, 1.0, 0.5, NAN, NAN);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
    const double seq[] = {1.0, 0.9, 0.8, 0.79, 0.78};
    for (int e = 0; e < 5; e++) {
        l = epoch_logs(e, seq[e], 0.5, NAN, NAN);
        assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
        assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
        assert_true(lr == (e < 4 ? 0.01f : (float)((double)0.01f * 0.5)));
    }
    tfx_reduce_lr_on_plateau_callback_free(cb);
    tfx_model_free(m);
}

/* ---- ModelCheckpoint: file names ---- */

static void expect_path(const char *tmpl, int epoch, const tfx_train_logs *l, const char *want)
{
    char out[256];
    int rc = tfx__format_path("t", tmpl, epoch, l, out, sizeof out, NULL);
    if (rc) fail_msg("'%s': %s", tmpl, tfx_error_last()->message);
    if (strcmp(out, want) != 0) fail_msg("'%s' gave '%s', Python gives '%s'", tmpl, out, want);
}

static void test_checkpoint_format(void **state)
{
    (void)state;
    tfx_train_logs l = epoch_logs(2, 0.123456, 0.25, 0.5, 2.5);
    /* expected strings from Python's str.format (epoch is 1-based, as Keras passes epoch + 1) */
    expect_path("m-{epoch:02d}.tfx", 2, &l, "m-03.tfx");
    expect_path("m-{epoch}.tfx", 2, &l, "m-3.tfx");
    expect_path("{loss:.4f}", 2, &l, "0.1235");
    expect_path("{val_loss}", 2, &l, "0.5");
    expect_path("{val_loss:e}", 2, &l, "5.000000e-01");
    expect_path("{accuracy:.1%}", 2, &l, "25.0%");
    expect_path("{epoch:+d}", 2, &l, "+3");
    expect_path("{val_loss:>8.3f}", 2, &l, "   0.500");
    expect_path("{val_loss:*<7.2f}", 2, &l, "0.50***");
    expect_path("{epoch:^5}", 6, &l, "  7  ");
    expect_path("{epoch:.2f}", 11, &l, "12.00");
    expect_path("{val_accuracy:E}", 2, &l, "2.500000E+00");
    expect_path("{val_loss: .1f}", 2, &l, " 0.5");
    expect_path("{{epoch}}-{epoch}", 0, &l, "{epoch}-1");
    l.loss = -0.5;
    expect_path("{loss:08.2f}", 2, &l, "-0000.50");
    l.loss = 1234.5;
    expect_path("{loss:.3}", 2, &l, "1.23e+03");
    l.loss = 12.0;
    expect_path("{loss:.3}", 2, &l, "12.0");
    l.loss = 0.0001234;
    expect_path("{loss:g}", 2, &l, "0.0001234");
    l.loss = INFINITY;
    expect_path("{loss:.2f}", 2, &l, "inf");

    /* Python's repr of a float */
    const struct {
        double v;
        const char *s;
    } reprs[] = {{0.1, "0.1"},
                 {1e-5, "1e-05"},
                 {1e16, "1e+16"},
                 {123.0, "123.0"},
                 {1234567890123456.0, "1234567890123456.0"},
                 {0.0001, "0.0001"},
                 {-2.5e-7, "-2.5e-07"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {1.0 / 3.0, "0.3333333333333333"},
                 {(double)0.001f * 0.1, "0.00010000000474974513"},
                 {NAN, "nan"},
                 {-INFINITY, "-inf"}};
    for (size_t i = 0; i < sizeof reprs / sizeof reprs[0]; i++) {
        char s[48];
        tfx__py_repr(reprs[i].v, s, sizeof s);
        if (strcmp(s, reprs[i].s) != 0) fail_msg("repr(%.17g): '%s', Python gives '%s'", reprs[i].v, s, reprs[i].s);
    }

    /* bad templates: refused at construction, naming the problem */
    const char *bad[] = {"{foo}.tfx", "{epoch:.2d}", "{loss:d}", "{epoch", "a}b", "{}", "{loss:x}", "{loss:,}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s", tmpdir, bad[i]);
        tfx_model_checkpoint_callback *cb = (void *)1;
        int rc = tfx_model_checkpoint_callback_new(&cb, path, NULL);
        if (rc != TFX_EINVAL) fail_msg("'%s' gave %d", bad[i], rc);
        assert_null(cb);
        assert_non_null(strstr(tfx_error_last()->message, "tfx_model_checkpoint_callback_new"));
    }
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

static void test_checkpoint_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    char tmpl[300], p[300];
    snprintf(tmpl, sizeof tmpl, "%s/best/m-{epoch:02d}-{val_loss:.2f}.tfx", tmpdir);
    tfx_model_checkpoint_options o = TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
    o.save_best_only = 1;
    tfx_model_checkpoint_callback *cb;
    assert_int_equal(tfx_model_checkpoint_callback_new(&cb, tmpl, &o), TFX_OK);
    const tfx_callback *h = tfx_model_checkpoint_callback_hooks(cb);
    assert_string_equal(tfx_model_checkpoint_callback_last_path(cb), "");
    assert_true(isinf(tfx_model_checkpoint_callback_best(cb)));
    tfx_train_logs l = epoch_logs(0, 1.0, 0.5, 0.9, 0.5);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
    const double v[] = {0.9, 0.7, 0.8, 0.5, 0.5};
    for (int e = 0; e < 5; e++) {
        l = epoch_logs(e, 1.0, 0.5, v[e], 0.5);
        assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
    }
    /* written: epochs 1, 2 and 4 (an equal value is no improvement) */
    const char *written[] = {"m-01-0.90.tfx", "m-02-0.70.tfx", "m-04-0.50.tfx"};
    const char *skipped[] = {"m-03-0.80.tfx", "m-05-0.50.tfx"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/best/%s", tmpdir, written[i]);
        if (!file_exists(p)) fail_msg("%s was not written", p);
        tfx_model *back;
        assert_int_equal(tfx_model_load(&back, p), TFX_OK);
        tfx_model_free(back);
    }
    assert_string_equal(tfx_model_checkpoint_callback_last_path(cb), p);
    assert_true(tfx_model_checkpoint_callback_best(cb) == 0.5);
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/best/%s", tmpdir, skipped[i]);
        if (file_exists(p)) fail_msg("%s was written", p);
    }
    tfx_model_checkpoint_callback_free(cb);

    /* mode auto on val_accuracy maximises; initial_value_threshold is the first best */
    snprintf(tmpl, sizeof tmpl, "%s/acc/e{epoch}.tfx", tmpdir);
    o.monitor = "val_accuracy";
    o.has_initial_value_threshold = 1;
    o.initial_value_threshold = 0.55;
    assert_int_equal(tfx_model_checkpoint_callback_new(&cb, tmpl, &o), TFX_OK);
    h = tfx_model_checkpoint_callback_hooks(cb);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
    const double a[] = {0.5, 0.6, 0.58, 0.7};
    for (int e = 0; e < 4; e++) {
        l = epoch_logs(e, 1.0, 0.5, 1.0, a[e]);
        assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
        snprintf(p, sizeof p, "%s/acc/e%d.tfx", tmpdir, e + 1);
        assert_int_equal(file_exists(p), e == 1 || e == 3);
    }
    tfx_model_checkpoint_callback_free(cb);

    /* save_best_only on a monitor this fit cannot produce: refused at train begin */
    o.monitor = "val_loss";
    o.has_initial_value_threshold = 0;
    assert_int_equal(tfx_model_checkpoint_callback_new(&cb, tmpl, &o), TFX_OK);
    h = tfx_model_checkpoint_callback_hooks(cb);
    l = epoch_logs(0, 1.0, 0.5, NAN, NAN);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "monitor 'val_loss' is not available"));
    tfx_model_checkpoint_callback_free(cb);
    tfx_model_free(m);
}

/* ---- CSVLogger, scripted ---- */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void csv_fit(tfx_csv_logger_callback *cb, tfx_model *m, int first, int n, int val, int acc)
{
    const tfx_callback *h = tfx_csv_logger_callback_hooks(cb);
    tfx_train_logs l = epoch_logs(first, 0.75, acc ? 0.5 : NAN, val ? 1.5 : NAN, val && acc ? 0.25 : NAN);
    assert_int_equal(h->on_train_begin(m, &l, h->payload), 0);
    for (int e = first; e < first + n; e++) {
        l = epoch_logs(e, 0.75 / (e + 1), acc ? 0.5 + 0.125 * e : NAN, val ? 1.5 + e : NAN, val && acc ? 0.25 : NAN);
        assert_int_equal(h->on_epoch_end(m, &l, h->payload), 0);
    }
    assert_int_equal(h->on_train_end(m, &l, h->payload), 0);
}

static void test_csv_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    char path[300];
    snprintf(path, sizeof path, "%s/log.csv", tmpdir);
    tfx_csv_logger_callback *cb;
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, NULL), TFX_OK);
    csv_fit(cb, m, 0, 3, 1, 1);
    /* Keras: sorted keys, epoch from 0, repr of each float, csv's excel "\r\n" */
    assert_string_equal(read_all(path),
                        "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                        "0,0.5,0.75,0.25,1.5\r\n"
                        "1,0.625,0.375,0.25,2.5\r\n"
                        "2,0.75,0.25,0.25,3.5\r\n");
    /* a second fit without append truncates and writes the header again */
    csv_fit(cb, m, 3, 1, 1, 1);
    assert_string_equal(read_all(path),
                        "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                        "3,0.875,0.1875,0.25,4.5\r\n");
    tfx_csv_logger_callback_free(cb);

    /* append: rows go after the existing ones, no second header */
    tfx_csv_logger_options o = TFX_CSV_LOGGER_OPTIONS_INIT;
    o.append = 1;
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, &o), TFX_OK);
    csv_fit(cb, m, 4, 1, 1, 1);
    assert_string_equal(read_all(path),
                        "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                        "3,0.875,0.1875,0.25,4.5\r\n"
                        "4,1.0,0.15000000596046448,0.25,5.5\r\n" /* 0.75 / 5 in float32, as Keras writes it */);
    tfx_csv_logger_callback_free(cb);
    /* append to an empty file: the header is written */
    FILE *f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, &o), TFX_OK);
    csv_fit(cb, m, 0, 1, 1, 1);
    assert_string_equal(read_all(path), "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.75,0.25,1.5\r\n");
    tfx_csv_logger_callback_free(cb);

    /* no validation: Keras adds the val_ columns anyway, as NA; no metric: no accuracy column;
     * another separator */
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, NULL), TFX_OK);
    csv_fit(cb, m, 0, 2, 0, 1);
    assert_string_equal(read_all(path),
                        "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                        "0,0.5,0.75,NA,NA\r\n1,0.625,0.375,NA,NA\r\n");
    tfx_csv_logger_callback_free(cb);
    o.append = 0;
    o.separator = ';';
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, &o), TFX_OK);
    csv_fit(cb, m, 0, 2, 1, 0);
    assert_string_equal(read_all(path), "epoch;loss;val_loss\r\n0;0.75;1.5\r\n1;0.375;2.5\r\n");
    tfx_csv_logger_callback_free(cb);
    tfx_model_free(m);
}

/* ---- TerminateOnNaN and LearningRateScheduler, scripted ---- */

static void test_terminate_on_nan_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    tfx_terminate_on_nan_callback *cb;
    assert_int_equal(tfx_terminate_on_nan_callback_new(&cb, NULL), TFX_OK);
    const tfx_callback *h = tfx_terminate_on_nan_callback_hooks(cb);
    const double losses[] = {0.5, 0.4, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 5; i++) {
        clear_stop(m);
        tfx_train_logs l = epoch_logs(0, losses[i], 0.5, NAN, NAN);
        l.batch = (size_t)i;
        l.batch_loss = losses[i];
        assert_int_equal(h->on_batch_end(m, &l, h->payload), 0);
        assert_int_equal(stop_requested(m), i >= 2);
    }
    tfx_terminate_on_nan_callback_free(cb);
    tfx_model_free(m);
}

static float halve_from_1(int epoch, float lr, void *payload)
{
    int *calls = payload;
    (*calls)++;
    return epoch < 1 ? lr : lr * 0.5f;
}

static float bad_schedule(int epoch, float lr, void *payload)
{
    (void)lr;
    (void)payload;
    return epoch == 2 ? NAN : -1.0f;
}

static void test_scheduler_scripted(void **state)
{
    (void)state;
    tfx_model *m = make_model();
    int calls = 0;
    tfx_learning_rate_scheduler_callback *cb;
    assert_int_equal(tfx_learning_rate_scheduler_callback_new(&cb, halve_from_1, &calls, NULL), TFX_OK);
    const tfx_callback *h = tfx_learning_rate_scheduler_callback_hooks(cb);
    const float want[] = {0.01f, 0.005f, 0.0025f, 0.00125f};
    for (int e = 0; e < 4; e++) {
        tfx_train_logs l = epoch_logs(e, NAN, NAN, NAN, NAN);
        assert_int_equal(h->on_epoch_begin(m, &l, h->payload), 0);
        float lr;
        assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
        assert_true(lr == want[e]);
    }
    assert_int_equal(calls, 4);
    tfx_learning_rate_scheduler_callback_free(cb);
    assert_int_equal(tfx_learning_rate_scheduler_callback_new(&cb, bad_schedule, NULL, NULL), TFX_OK);
    h = tfx_learning_rate_scheduler_callback_hooks(cb);
    for (int e = 1; e <= 2; e++) {
        tfx_train_logs l = epoch_logs(e, NAN, NAN, NAN, NAN);
        assert_int_equal(h->on_epoch_begin(m, &l, h->payload), TFX_EINVAL);
        assert_non_null(strstr(tfx_error_last()->message, e == 2 ? "returned nan for epoch 2" : "returned -1"));
    }
    tfx_learning_rate_scheduler_callback_free(cb);
    tfx_model_free(m);
}

/* ---- real fits ---- */

typedef struct sink {
    char text[8192];
    size_t len;
} sink;

static int sink_write(const char *text, size_t len, void *payload)
{
    sink *s = payload;
    if (s->len + len >= sizeof s->text) return 1;
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = '\0';
    return 0;
}

static tfx_fit_options fit_opts(const tfx_callback **cbs, size_t n, int epochs, sink *s)
{
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 8;
    fo.epochs = epochs;
    fo.verbose = 0;
    fo.shuffle = 0;
    fo.validation_split = 0.25;
    fo.callbacks = cbs;
    fo.n_callbacks = n;
    if (s) {
        memset(s, 0, sizeof *s);
        fo.progress_write = sink_write;
        fo.progress_payload = s;
    }
    return fo;
}

static void get_kernel(tfx_model *m, float *k)
{
    float b[3];
    assert_int_equal(tfx_layer_get_weights(tfx_model_find_layer(m, "out"), k, b), TFX_OK);
}

static void test_early_stopping_fit(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    /* min_delta 10 on the loss: epoch 0 improves on inf, epoch 1 cannot -> stop after epoch 1 */
    tfx_early_stopping_options o = TFX_EARLY_STOPPING_OPTIONS_INIT;
    o.monitor = "loss";
    o.min_delta = 10.0;
    o.patience = 1;
    o.restore_best_weights = 1;
    o.verbose = 1;
    tfx_early_stopping_callback *es = es_new(&o);
    const tfx_callback *cbs[] = {tfx_early_stopping_callback_hooks(es)};
    sink s;
    tfx_fit_options fo = fit_opts(cbs, 1, 10, &s);
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK); /* Keras: a clean stop */
    assert_int_equal(tfx_history_length(hist), 2);
    assert_int_equal(tfx_early_stopping_callback_stopped_epoch(es), 1);
    assert_int_equal(tfx_early_stopping_callback_best_epoch(es), 0);
    assert_string_equal(s.text,
                        "Epoch 2: early stopping\nRestoring model weights from the end of the best epoch: 1.\n");
    /* the weights are those after epoch 1 (index 0): the same as one epoch without callbacks */
    float k[H * H * 3], k1[H * H * 3];
    get_kernel(m, k);
    tfx_model *ref = make_model();
    tfx_fit_options f1 = fit_opts(NULL, 0, 1, NULL);
    assert_int_equal(tfx_model_fit(ref, x, y, N, &f1, NULL), TFX_OK);
    get_kernel(ref, k1);
    assert_memory_equal(k, k1, sizeof k);
    assert_int_equal(tfx_model_train_steps(m), 2 * 3); /* 18 training samples in batches of 8: 3 steps an epoch */
    tfx_model_free(ref);
    tfx_model_free(m);
    tfx_history_free(hist);
    tfx_early_stopping_callback_free(es);
}

static void test_reduce_lr_fit(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    tfx_reduce_lr_on_plateau_options o = TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    o.monitor = "loss";
    o.min_delta = 10.0; /* nothing counts as an improvement after epoch 0 */
    o.patience = 1;
    o.factor = 0.5;
    o.verbose = 1;
    tfx_reduce_lr_on_plateau_callback *cb;
    assert_int_equal(tfx_reduce_lr_on_plateau_callback_new(&cb, &o), TFX_OK);
    const tfx_callback *cbs[] = {tfx_reduce_lr_on_plateau_callback_hooks(cb)};
    sink s;
    tfx_fit_options fo = fit_opts(cbs, 1, 3, &s);
    tfx_model *m = make_model();
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, NULL), TFX_OK);
    float lr;
    assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
    assert_true(lr == (float)((double)(float)((double)0.01f * 0.5) * 0.5));
    /* Keras prints the float64 product of the float32 rate and the factor */
    assert_string_equal(s.text,
                        "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.004999999888241291.\n"
                        "\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.0024999999441206455.\n");
    tfx_reduce_lr_on_plateau_callback_free(cb);
    tfx_model_free(m);
}

static void test_checkpoint_fit(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    char tmpl[300], p[300], want[2048];
    snprintf(tmpl, sizeof tmpl, "%s/fit/{epoch:02d}.tfx", tmpdir);
    tfx_model_checkpoint_options o = TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
    o.verbose = 1;
    tfx_model_checkpoint_callback *cb;
    assert_int_equal(tfx_model_checkpoint_callback_new(&cb, tmpl, &o), TFX_OK);
    const tfx_callback *cbs[] = {tfx_model_checkpoint_callback_hooks(cb)};
    sink s;
    tfx_fit_options fo = fit_opts(cbs, 1, 3, &s);
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    want[0] = '\0';
    for (int e = 1; e <= 3; e++) {
        snprintf(p, sizeof p, "%s/fit/%02d.tfx", tmpdir, e);
        assert_true(file_exists(p));
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "\nEpoch %d: saving model to %s\n", e, p);
    }
    assert_string_equal(s.text, want);
    /* the last file is the trained model */
    tfx_model *back;
    assert_int_equal(tfx_model_load(&back, p), TFX_OK);
    float a[N * 3], b[N * 3];
    assert_int_equal(tfx_model_predict(m, x, N, a), TFX_OK);
    assert_int_equal(tfx_model_predict(back, x, N, b), TFX_OK);
    assert_memory_equal(a, b, sizeof a);
    tfx_model_free(back);
    tfx_model_checkpoint_callback_free(cb);

    /* save_best_only: the verbose line names the values */
    snprintf(tmpl, sizeof tmpl, "%s/fitbest/m.tfx", tmpdir);
    o.save_best_only = 1;
    assert_int_equal(tfx_model_checkpoint_callback_new(&cb, tmpl, &o), TFX_OK);
    cbs[0] = tfx_model_checkpoint_callback_hooks(cb);
    fo = fit_opts(cbs, 1, 2, &s);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    const double *vh = tfx_history_values(hist, "val_loss");
    const double vl[2] = {(float)vh[0], (float)vh[1]}; /* Keras's float32 metrics */
    int n =
        snprintf(want, sizeof want, "\nEpoch 1: val_loss improved from inf to %.5f, saving model to %s\n", vl[0], tmpl);
    if (vl[1] < vl[0])
        snprintf(want + n, sizeof want - (size_t)n,
                 "\nEpoch 2: val_loss improved from %.5f to %.5f, saving model to %s\n", vl[0], vl[1], tmpl);
    else
        snprintf(want + n, sizeof want - (size_t)n, "\nEpoch 2: val_loss did not improve from %.5f\n", vl[0]);
    assert_string_equal(s.text, want);
    tfx_model_checkpoint_callback_free(cb);
    tfx_history_free(hist);
    tfx_model_free(m);
}

static void test_csv_fit(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    char path[300], want[2048];
    snprintf(path, sizeof path, "%s/fit.csv", tmpdir);
    tfx_csv_logger_callback *cb;
    assert_int_equal(tfx_csv_logger_callback_new(&cb, path, NULL), TFX_OK);
    const tfx_callback *cbs[] = {tfx_csv_logger_callback_hooks(cb)};
    tfx_fit_options fo = fit_opts(cbs, 1, 2, NULL);
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    const char *keys[] = {"accuracy", "loss", "val_accuracy", "val_loss"};
    size_t n = (size_t)snprintf(want, sizeof want, "epoch,accuracy,loss,val_accuracy,val_loss\r\n");
    for (int e = 0; e < 2; e++) {
        n += (size_t)snprintf(want + n, sizeof want - n, "%d", e);
        for (int k = 0; k < 4; k++) {
            char v[48];
            tfx__py_repr((double)(float)tfx_history_values(hist, keys[k])[e], v, sizeof v); /* float32, as Keras */
            n += (size_t)snprintf(want + n, sizeof want - n, ",%s", v);
        }
        n += (size_t)snprintf(want + n, sizeof want - n, "\r\n");
    }
    assert_string_equal(read_all(path), want);
    tfx_csv_logger_callback_free(cb);
    tfx_history_free(hist);
    tfx_model_free(m);
}

static float halve(int epoch, float lr, void *payload)
{
    (void)payload;
    return epoch == 0 ? lr : lr * 0.5f;
}

static void test_scheduler_and_nan_fit(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    tfx_learning_rate_scheduler_options so = TFX_LEARNING_RATE_SCHEDULER_OPTIONS_INIT;
    so.verbose = 1;
    tfx_learning_rate_scheduler_callback *sc;
    assert_int_equal(tfx_learning_rate_scheduler_callback_new(&sc, halve, NULL, &so), TFX_OK);
    tfx_terminate_on_nan_callback *tn;
    assert_int_equal(tfx_terminate_on_nan_callback_new(&tn, NULL), TFX_OK);
    const tfx_callback *cbs[] = {tfx_learning_rate_scheduler_callback_hooks(sc),
                                 tfx_terminate_on_nan_callback_hooks(tn)};
    sink s;
    tfx_fit_options fo = fit_opts(cbs, 2, 3, &s);
    fo.verbose = 2;
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    assert_int_equal(tfx_history_length(hist), 3); /* finite losses: TerminateOnNaN never stops */
    float lr;
    assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
    assert_true(lr == 0.0025f);
    /* Keras's order: the progress bar's "Epoch 2/3" first (ProgbarLogger is the first callback) */
    assert_non_null(strstr(s.text,
                           "Epoch 1/3\n\nEpoch 1: LearningRateScheduler setting learning rate to "
                           "0.009999999776482582.\n"));
    assert_non_null(strstr(s.text,
                           "Epoch 3/3\n\nEpoch 3: LearningRateScheduler setting learning rate to "
                           "0.0024999999441206455.\n"));
    tfx_history_free(hist);
    tfx_learning_rate_scheduler_callback_free(sc);
    tfx_terminate_on_nan_callback_free(tn);
    tfx_model_free(m);
}

/* ---- stop_training, set_learning_rate and tfx_error_set from user hooks ---- */

typedef struct user_cb {
    int stop_at_batch, epoch_ends, set_lr_rc;
    double val_loss_seen;
    int fail_epoch;
} user_cb;

static int user_batch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    user_cb *u = payload;
    if (logs->epoch == 0 && (int)logs->batch == u->stop_at_batch) {
        u->set_lr_rc = tfx_model_set_learning_rate(m, 0.02f);
        return tfx_model_stop_training(m);
    }
    return 0;
}

static int user_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    user_cb *u = payload;
    u->epoch_ends++;
    u->val_loss_seen = logs->val_loss;
    if (logs->epoch == u->fail_epoch) return tfx_error_set(TFX_EIO, "disk %s is full (epoch %d)", "sda", logs->epoch);
    return 0;
}

static int stop_at_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)logs;
    (void)payload;
    return tfx_model_stop_training(m);
}

static int count_calls(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    (void)logs;
    (*(int *)payload)++;
    return 0;
}

static void test_user_hooks(void **state)
{
    (void)state;
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    user_cb u = {1, 0, -1, 0.0, -1};
    tfx_callback h = TFX_CALLBACK_INIT;
    h.payload = &u;
    h.on_batch_end = user_batch_end;
    h.on_epoch_end = user_epoch_end;
    const tfx_callback *cbs[] = {&h};
    tfx_fit_options fo = fit_opts(cbs, 1, 5, NULL);
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    /* stop after batch 1 of epoch 0: the epoch is cut short, validated, and recorded (Keras) */
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    assert_int_equal(u.set_lr_rc, TFX_OK); /* allowed while fit runs */
    assert_int_equal(tfx_model_train_steps(m), 2);
    assert_int_equal(u.epoch_ends, 1);
    assert_int_equal(tfx_history_length(hist), 1);
    assert_true(isfinite(u.val_loss_seen));
    float lr;
    assert_int_equal(tfx_model_get_learning_rate(m, &lr), TFX_OK);
    assert_true(lr == 0.02f);

    /* a later fit starts afresh (the request is cleared), and a callback's own message reaches the caller */
    u.stop_at_batch = -1;
    u.epoch_ends = 0;
    u.fail_epoch = 1;
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_EUSER);
    const char *msg = tfx_error_last()->message;
    assert_non_null(strstr(msg, "callback 0 (on_epoch_end) stopped training: disk sda is full (epoch 1)"));
    assert_int_equal(u.epoch_ends, 2);
    assert_int_equal(tfx_history_length(hist), 2);

    /* a stop from on_train_begin: no epoch starts, on_train_end still runs, TFX_OK */
    int ends = 0;
    tfx_callback b = TFX_CALLBACK_INIT;
    b.payload = &ends;
    b.on_train_begin = stop_at_begin;
    b.on_train_end = count_calls;
    cbs[0] = &b;
    uint64_t steps = tfx_model_train_steps(m);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_OK);
    assert_int_equal(tfx_history_length(hist), 0);
    assert_int_equal(tfx_model_train_steps(m), steps);
    assert_int_equal(ends, 1);

    /* tfx_error_set itself */
    assert_int_equal(tfx_error_set(TFX_EIO, "x %d", 3), TFX_EIO);
    assert_int_equal(tfx_error_last()->code, TFX_EIO);
    assert_string_equal(tfx_error_last()->message, "x 3");
    assert_int_equal(tfx_error_set(-1234, NULL), -1234);
    assert_string_equal(tfx_error_last()->message, "");
    assert_int_equal(tfx_error_set(0, "ok"), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "tfx_error_set: code 0"));

    /* the learning rate API */
    assert_int_equal(tfx_model_set_learning_rate(m, -1.0f), TFX_EINVAL);
    assert_int_equal(tfx_model_set_learning_rate(m, NAN), TFX_EINVAL);
    assert_int_equal(tfx_model_get_learning_rate(NULL, &lr), TFX_EINVAL);
    tfx_model *raw;
    assert_int_equal(tfx_model_new(&raw, H, H, 1), TFX_OK);
    assert_int_equal(tfx_model_get_learning_rate(raw, &lr), TFX_ESTATE);
    assert_int_equal(tfx_model_set_learning_rate(raw, 0.1f), TFX_ESTATE);
    assert_int_equal(tfx_model_stop_training(raw), TFX_ESTATE);
    tfx_model_free(raw);
    tfx_history_free(hist);
    tfx_model_free(m);
}

/* ---- bad input ---- */

static void expect_einval(int rc, const char *field)
{
    assert_int_equal(rc, TFX_EINVAL);
    if (!strstr(tfx_error_last()->message, field))
        fail_msg("message does not name '%s': %s", field, tfx_error_last()->message);
}

static void test_bad_options(void **state)
{
    (void)state;
    tfx_early_stopping_callback *es = (void *)1;
    tfx_early_stopping_options eo = TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.mode = 3;
    expect_einval(tfx_early_stopping_callback_new(&es, &eo), "mode");
    assert_null(es);
    eo = (tfx_early_stopping_options)TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.patience = -1;
    expect_einval(tfx_early_stopping_callback_new(&es, &eo), "patience");
    eo = (tfx_early_stopping_options)TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.min_delta = -0.1;
    expect_einval(tfx_early_stopping_callback_new(&es, &eo), "min_delta");
    eo = (tfx_early_stopping_options)TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.monitor = "val_acc";
    expect_einval(tfx_early_stopping_callback_new(&es, &eo), "monitor 'val_acc'");
    eo = (tfx_early_stopping_options)TFX_EARLY_STOPPING_OPTIONS_INIT;
    eo.start_from_epoch = -2;
    expect_einval(tfx_early_stopping_callback_new(&es, &eo), "start_from_epoch");

    tfx_reduce_lr_on_plateau_callback *rl = (void *)1;
    tfx_reduce_lr_on_plateau_options ro = TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.factor = 1.0;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "factor");
    assert_null(rl);
    ro.factor = 0.0;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "factor");
    ro = (tfx_reduce_lr_on_plateau_options)TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.patience = -1;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "patience");
    ro = (tfx_reduce_lr_on_plateau_options)TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.cooldown = -1;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "cooldown");
    ro = (tfx_reduce_lr_on_plateau_options)TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.min_lr = -1e-3;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "min_lr");
    ro = (tfx_reduce_lr_on_plateau_options)TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    ro.mode = -1;
    expect_einval(tfx_reduce_lr_on_plateau_callback_new(&rl, &ro), "mode");

    tfx_model_checkpoint_callback *mc = (void *)1;
    tfx_model_checkpoint_options mo = TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
    mo.mode = 7;
    expect_einval(tfx_model_checkpoint_callback_new(&mc, "m.tfx", &mo), "mode");
    mo = (tfx_model_checkpoint_options)TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
    mo.verbose = 2;
    expect_einval(tfx_model_checkpoint_callback_new(&mc, "m.tfx", &mo), "verbose");
    expect_einval(tfx_model_checkpoint_callback_new(&mc, "", NULL), "filepath");
    expect_einval(tfx_model_checkpoint_callback_new(&mc, NULL, NULL), "filepath");

    tfx_csv_logger_callback *cl = (void *)1;
    tfx_csv_logger_options co = TFX_CSV_LOGGER_OPTIONS_INIT;
    co.separator = '"';
    expect_einval(tfx_csv_logger_callback_new(&cl, "a.csv", &co), "separator");
    assert_null(cl);
    tfx_learning_rate_scheduler_callback *ls = (void *)1;
    expect_einval(tfx_learning_rate_scheduler_callback_new(&ls, NULL, NULL, NULL), "schedule");
    assert_null(ls);
    tfx_early_stopping_options bad_version = TFX_EARLY_STOPPING_OPTIONS_INIT;
    bad_version.version = 2;
    assert_int_equal(tfx_early_stopping_callback_new(&es, &bad_version), TFX_EVERSION);

    /* a monitor the fit cannot produce: the fit stops at train begin, naming it */
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    assert_int_equal(tfx_early_stopping_callback_new(&es, NULL), TFX_OK); /* val_loss */
    const tfx_callback *cbs[] = {tfx_early_stopping_callback_hooks(es)};
    tfx_fit_options fo = fit_opts(cbs, 1, 2, NULL);
    fo.validation_split = 0.0;
    tfx_model *m = make_model();
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, NULL), TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message,
                           "monitor 'val_loss' is not available: this fit has no "
                           "validation data"));
    assert_int_equal(tfx_model_train_steps(m), 0);
    tfx_early_stopping_callback_free(es);
    tfx_model_free(m);
}

static void test_unwritable_paths(void **state)
{
    (void)state;
    /* /dev/null/... cannot be created, not even by root */
    tfx_model_checkpoint_callback *mc = (void *)1;
    assert_int_equal(tfx_model_checkpoint_callback_new(&mc, "/dev/null/ckpt/m-{epoch:02d}.tfx", NULL), TFX_EIO);
    assert_null(mc);
    assert_non_null(strstr(tfx_error_last()->message, "/dev/null"));

    /* a directory with a field is made at save time: the fit stops at the first epoch end */
    float x[N * H * H];
    int32_t y[N];
    make_data(x, y);
    assert_int_equal(tfx_model_checkpoint_callback_new(&mc, "/dev/null/{epoch}/m.tfx", NULL), TFX_OK);
    tfx_csv_logger_callback *cl;
    char csv[300];
    snprintf(csv, sizeof csv, "%s/ok.csv", tmpdir);
    assert_int_equal(tfx_csv_logger_callback_new(&cl, csv, NULL), TFX_OK);
    const tfx_callback *cbs[] = {tfx_model_checkpoint_callback_hooks(mc), tfx_csv_logger_callback_hooks(cl)};
    tfx_fit_options fo = fit_opts(cbs, 2, 3, NULL);
    tfx_model *m = make_model();
    tfx_history *hist;
    assert_int_equal(tfx_history_new(&hist), TFX_OK);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_EUSER);
    const char *msg = tfx_error_last()->message;
    assert_non_null(strstr(msg, "callback 0 (on_epoch_end) stopped training"));
    assert_non_null(strstr(msg, "/dev/null/1"));
    assert_int_equal(tfx_history_length(hist), 1);
    /* the CSV logger (after the failing callback) got no on_epoch_end, but its on_train_end ran:
     * the file it opened at train begin is closed, empty */
    assert_string_equal(read_all(csv), "");
    tfx_model_checkpoint_callback_free(mc);
    tfx_csv_logger_callback_free(cl);

    /* a CSV file that cannot be opened stops the fit at train begin */
    assert_int_equal(tfx_csv_logger_callback_new(&cl, "/dev/null/log.csv", NULL), TFX_OK);
    cbs[0] = tfx_csv_logger_callback_hooks(cl);
    fo = fit_opts(cbs, 1, 3, NULL);
    assert_int_equal(tfx_model_fit(m, x, y, N, &fo, hist), TFX_EUSER);
    assert_non_null(strstr(tfx_error_last()->message, "cannot open '/dev/null/log.csv'"));
    tfx_csv_logger_callback_free(cl);
    tfx_history_free(hist);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_stopping_scripted),
        cmocka_unit_test(test_reduce_lr_scripted),
        cmocka_unit_test(test_checkpoint_format),
        cmocka_unit_test(test_checkpoint_scripted),
        cmocka_unit_test(test_csv_scripted),
        cmocka_unit_test(test_terminate_on_nan_scripted),
        cmocka_unit_test(test_scheduler_scripted),
        cmocka_unit_test(test_early_stopping_fit),
        cmocka_unit_test(test_reduce_lr_fit),
        cmocka_unit_test(test_checkpoint_fit),
        cmocka_unit_test(test_csv_fit),
        cmocka_unit_test(test_scheduler_and_nan_fit),
        cmocka_unit_test(test_user_hooks),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_unwritable_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
