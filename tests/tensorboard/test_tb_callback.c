/* The Keras-style TensorBoard callback: a 2-epoch fit writes train/ and validation/ runs whose
 * scalars equal the history's numbers; an unusable log_dir fails at construction; disk full
 * in the middle of training either lets training continue or stops it, as configured. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test_util.h"

enum { N = 40, H = 6, W = 6, CLASSES = 3, EPOCHS = 2, BATCH = 8 };
static const double T0 = 1700000000.0;

/* Class c lights up column band c: easy to learn, deterministic. */
static void make_data(float *x, int32_t *y)
{
    uint32_t s = 7;
    for (int i = 0; i < N; i++) {
        y[i] = i % CLASSES;
        for (int p = 0; p < H * W; p++) {
            s = s * 1664525u + 1013904223u;
            float noise = (float)(s >> 8) / 16777216.0f * 0.2f;
            x[i * H * W + p] = noise + ((p % W) / 2 == y[i] ? 1.0f : 0.0f);
        }
    }
}

static tfx_model *make_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, W, 1), 0);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = CLASSES;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    assert_int_equal(tfx_model_set_seed(m, 3), 0);
    tfx_compile_options c = TFX_COMPILE_OPTIONS_INIT;
    c.learning_rate = 0.05f;
    assert_int_equal(tfx_model_compile(m, &c), 0);
    return m;
}

/* The one event file in dir, read back. */
static tfx__tb_event *read_run(const char *dir, uint8_t **buf, size_t *nev)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[4096] = "";
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, "tfevents")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            files++;
        }
    }
    closedir(d);
    assert_int_equal(files, 1);
    size_t size;
    tfx__tb_event *ev;
    assert_int_equal(tfx__tb_read_file(path, buf, &size, &ev, nev), TFX_OK);
    return ev;
}

static int tag_is(const tfx__tb_event *e, const char *tag)
{
    return e->n_values == 1 && e->value.tag_len == strlen(tag) && memcmp(e->value.tag, tag, e->value.tag_len) == 0;
}

static int run_fit(tfx_model *m, const tfx_tensorboard_callback *cb, tfx_history *h)
{
    static float x[N * H * W];
    static int32_t y[N];
    make_data(x, y);
    const tfx_callback *cbs[1] = {tfx_tensorboard_callback_hooks(cb)};
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = BATCH;
    f.epochs = EPOCHS;
    f.validation_split = 0.25; /* 30 training samples: 4 batches per epoch */
    f.shuffle = 0;
    f.verbose = 0;
    f.callbacks = cbs;
    f.n_callbacks = 1;
    return tfx_model_fit(m, x, y, N, &f, h);
}

static void test_scalars_match_history(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    char log[4096], dir[8192];
    snprintf(log, sizeof log, "%s/logs/fit", tmp);
    tfx_tensorboard_options o = TFX_TENSORBOARD_OPTIONS_INIT;
    o.update_freq = 2;
    o.clock = tb_fixed_clock;
    o.clock_user = (void *)&T0;
    tfx_tensorboard_callback *cb;
    assert_int_equal(tfx_tensorboard_callback_new(&cb, log, &o), TFX_OK);
    tfx_model *m = make_model();
    tfx_history *h;
    assert_int_equal(tfx_history_new(&h), 0);
    assert_int_equal(run_fit(m, cb, h), TFX_OK);
    assert_int_equal(tfx_tensorboard_callback_status(cb, NULL), TFX_OK);
    assert_int_equal(tfx_history_length(h), EPOCHS);
    const double *loss = tfx_history_values(h, "loss"), *acc = tfx_history_values(h, "accuracy");
    const double *vloss = tfx_history_values(h, "val_loss"), *vacc = tfx_history_values(h, "val_accuracy");
    assert_true(loss && acc && vloss && vacc);
    assert_true(loss[1] != loss[0]);

    uint8_t *buf;
    size_t nev;
    snprintf(dir, sizeof dir, "%s/train", log);
    tfx__tb_event *ev = read_run(dir, &buf, &nev);
    /* first record, then per epoch: 2 x (batch_loss, batch_accuracy), epoch_loss, epoch_accuracy */
    assert_int_equal(nev, 1 + EPOCHS * 6);
    assert_int_equal(ev[0].file_version_len, 13);
    for (int e = 0; e < EPOCHS; e++) {
        tfx__tb_event *r = &ev[1 + e * 6];
        for (int b = 0; b < 2; b++) {
            assert_true(tag_is(&r[2 * b], "batch_loss"));
            assert_true(tag_is(&r[2 * b + 1], "batch_accuracy"));
            assert_int_equal(r[2 * b].step, e * 4 + 2 * (b + 1)); /* optimizer steps so far */
            assert_true(isfinite(r[2 * b].value.simple_value));
        }
        assert_true(tag_is(&r[4], "epoch_loss"));
        assert_true(tag_is(&r[5], "epoch_accuracy"));
        assert_int_equal(r[4].step, e);
        assert_int_equal(r[5].step, e);
        assert_true(r[4].value.simple_value == (float)loss[e]);
        assert_true(r[5].value.simple_value == (float)acc[e]);
        assert_true(r[4].wall_time == T0);
    }
    tfx__free(ev);
    tfx__free(buf);

    snprintf(dir, sizeof dir, "%s/validation", log);
    ev = read_run(dir, &buf, &nev);
    assert_int_equal(nev, 1 + EPOCHS * 2);
    for (int e = 0; e < EPOCHS; e++) {
        tfx__tb_event *r = &ev[1 + e * 2];
        assert_true(tag_is(&r[0], "epoch_loss"));
        assert_true(tag_is(&r[1], "epoch_accuracy"));
        assert_int_equal(r[0].step, e);
        assert_true(r[0].value.simple_value == (float)vloss[e]);
        assert_true(r[1].value.simple_value == (float)vacc[e]);
    }
    tfx__free(ev);
    tfx__free(buf);
    tfx_history_free(h);
    tfx_model_free(m);
    tfx_tensorboard_callback_free(cb);
    tb_rmtree(tmp);
    free(tmp);
}

static void test_bad_log_dir(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    char file[4096], log[8192];
    snprintf(file, sizeof file, "%s/not_a_dir", tmp);
    tb_write_all(file, "x", 1);
    snprintf(log, sizeof log, "%s/logs", file);
    tfx_tensorboard_callback *cb = (tfx_tensorboard_callback *)file;
    assert_int_equal(tfx_tensorboard_callback_new(&cb, log, NULL), TFX_EIO);
    assert_null(cb);
    assert_non_null(strstr(tfx_error_last()->message, file));
    assert_int_equal(tfx_tensorboard_callback_new(&cb, "", NULL), TFX_EINVAL);
    tfx_tensorboard_options o = TFX_TENSORBOARD_OPTIONS_INIT;
    o.update_freq = -1;
    assert_int_equal(tfx_tensorboard_callback_new(&cb, tmp, &o), TFX_EINVAL);
    o.update_freq = 0;
    o.version = 0;
    assert_int_equal(tfx_tensorboard_callback_new(&cb, tmp, &o), TFX_EVERSION);
    assert_int_equal(tfx_tensorboard_options_init(&o, 1), TFX_OK);
    assert_null(tfx_tensorboard_callback_hooks(NULL));
    tfx_tensorboard_callback_free(NULL);
    tb_rmtree(tmp);
    free(tmp);
}

/* Disk full after 100 more bytes (inside epoch 0's records). */
static void test_disk_full(void **state)
{
    (void)state;
    for (int stop = 0; stop <= 1; stop++) {
        char *tmp = tb_tmpdir();
        tfx_tensorboard_options o = TFX_TENSORBOARD_OPTIONS_INIT;
        o.stop_on_error = stop;
        o.clock = tb_fixed_clock;
        o.clock_user = (void *)&T0;
        tfx_tensorboard_callback *cb;
        assert_int_equal(tfx_tensorboard_callback_new(&cb, tmp, &o), TFX_OK);
        tfx_model *m = make_model();
        tfx_history *h;
        assert_int_equal(tfx_history_new(&h), 0);
        tfx__tb_fail_write_after(100);
        int rc = run_fit(m, cb, h);
        tfx__tb_fail_write_after(-1);
        const char *msg;
        assert_int_equal(tfx_tensorboard_callback_status(cb, &msg), TFX_EIO);
        assert_non_null(strstr(msg, "No space left"));
        assert_non_null(strstr(msg, tmp));
        if (stop) {
            assert_int_equal(rc, TFX_EUSER);
            assert_non_null(strstr(tfx_error_last()->message, "No space left"));
            assert_true(tfx_history_length(h) <= 1);
        } else {
            assert_int_equal(rc, TFX_OK);
            assert_int_equal(tfx_history_length(h), EPOCHS);
        }
        /* the train run holds whole records only: the first one and what fit in 100 bytes */
        uint8_t *buf;
        size_t nev;
        char dir[8192];
        snprintf(dir, sizeof dir, "%s/train", tmp);
        tfx__tb_event *ev = read_run(dir, &buf, &nev);
        assert_true(nev >= 1 && nev <= 3);
        tfx__free(ev);
        tfx__free(buf);
        tfx_history_free(h);
        tfx_model_free(m);
        tfx_tensorboard_callback_free(cb);
        tb_rmtree(tmp);
        free(tmp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_match_history),
        cmocka_unit_test(test_bad_log_dir),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
