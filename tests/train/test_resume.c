/* Resumable training: fit 2 epochs, save with the optimizer (file section 3), load, fit with
 * initial_epoch 2 == one run of 3 epochs, bit for bit (Adam, SGD with momentum, RMSprop;
 * shuffling, validation split, dropout, one thread); hostile optimizer sections. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                              \
    do {                                                                                      \
        int rc__ = (call);                                                                    \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message); \
    } while (0)

enum { N = 90, IN = 36 };

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65535.0f;
}

static void make_data(float *x, int32_t *y)
{
    unsigned s = 5;
    for (size_t i = 0; i < N; i++) {
        int c = (int)(i % 3);
        y[i] = c;
        for (int r = 0; r < 6; r++)
            for (int q = 0; q < 6; q++) {
                int on = (c == 0 && r < 3 && q < 3) || (c == 1 && r < 3 && q >= 3) || (c == 2 && r >= 3);
                x[i * IN + r * 6 + q] = (on ? 0.8f : 0.0f) + 0.4f * frand(&s);
            }
    }
}

static tfx_model *make_model(const tfx_compile_options *co)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 6, 6, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    OK(tfx_model_add_dropout(m, 0.3f, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    OK(tfx_model_set_seed(m, 17));
    OK(tfx_model_set_threads(m, 1));
    OK(tfx_model_compile(m, co));
    /* a rate a callback would have set: the file must carry the current one */
    OK(tfx_model_set_learning_rate(m, co->learning_rate * 0.5f));
    return m;
}

static void fit(tfx_model *m, const float *x, const int32_t *y, int initial, int epochs, tfx_history *h)
{
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8;
    f.epochs = epochs;
    f.initial_epoch = initial;
    f.validation_split = 0.2;
    f.shuffle = 1;
    OK(tfx_model_fit(m, x, y, N, &f, h));
}

static uint8_t *save_mem(const tfx_model *m, int include_optimizer, size_t *n)
{
    tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
    so.include_optimizer = include_optimizer;
    OK(tfx_model_save_to_memory(m, &so, NULL, 0, n));
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    size_t n2;
    OK(tfx_model_save_to_memory(m, &so, b, *n, &n2));
    assert_int_equal(n2, *n);
    return b;
}

static void resume_case(const tfx_compile_options *co)
{
    float *x = malloc(N * IN * sizeof(float));
    int32_t y[N];
    assert_non_null(x);
    make_data(x, y);
    tfx_history *ha, *hb;
    OK(tfx_history_new(&ha));
    OK(tfx_history_new(&hb));

    /* one run of 3 epochs */
    tfx_model *a = make_model(co);
    fit(a, x, y, 0, 3, ha);

    /* 2 epochs, saved with the optimizer, the model freed; something else draws random numbers
     * in this process meanwhile (another model's shuffles) */
    tfx_model *b = make_model(co);
    fit(b, x, y, 0, 2, NULL);
    size_t nb;
    uint8_t *file = save_mem(b, 1, &nb);
    uint64_t steps = tfx_model_train_steps(b);
    tfx_model_free(b);
    tfx_model *other = make_model(co);
    fit(other, x, y, 0, 1, NULL);
    tfx_model_free(other);

    tfx_model *r;
    OK(tfx_model_load_from_memory(&r, file, nb));
    assert_int_equal(tfx_model_train_steps(r), steps);
    /* saved again before any use, it writes the same bytes */
    size_t n2;
    uint8_t *again = save_mem(r, 1, &n2);
    assert_int_equal(n2, nb);
    assert_memory_equal(again, file, nb);
    free(again);
    float lr;
    OK(tfx_model_get_learning_rate(r, &lr));
    assert_true(lr == co->learning_rate * 0.5f);
    OK(tfx_model_set_threads(r, 1));
    fit(r, x, y, 2, 3, hb); /* no compile: the model came back compiled */

    /* bit for bit: weights, optimizer state, step count, RNG (the whole files), epoch 3's logs */
    assert_int_equal(tfx_model_train_steps(r), tfx_model_train_steps(a));
    size_t na, nr;
    uint8_t *fa = save_mem(a, 1, &na), *fr = save_mem(r, 1, &nr);
    assert_int_equal(na, nr);
    assert_memory_equal(fa, fr, na);
    const char *keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    for (int k = 0; k < 4; k++) {
        const double *va = tfx_history_values(ha, keys[k]), *vb = tfx_history_values(hb, keys[k]);
        assert_non_null(va);
        assert_non_null(vb);
        assert_memory_equal(&va[2], &vb[0], sizeof(double));
    }
    free(fa);
    free(fr);
    free(file);
    tfx_history_free(ha);
    tfx_history_free(hb);
    tfx_model_free(a);
    tfx_model_free(r);
    free(x);
}

static void test_resume_adam(void **state)
{
    (void)state;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.learning_rate = 0.01f;
    resume_case(&co);
}

static void test_resume_sgd_momentum(void **state)
{
    (void)state;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.optimizer = TFX_OPTIMIZER_SGD;
    co.learning_rate = 0.05f;
    co.momentum = 0.9f;
    co.nesterov = 1;
    resume_case(&co);
}

static void test_resume_rmsprop(void **state)
{
    (void)state;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.optimizer = TFX_OPTIMIZER_RMSPROP;
    co.learning_rate = 0.005f;
    resume_case(&co);
}

/* Keras's workflow: ModelCheckpoint writes every epoch (with the optimizer, as model.save);
 * resuming from the epoch-2 file gives the 3-epoch run's model. save_weights_only files have
 * no optimizer section. */
static void test_resume_from_checkpoint(void **state)
{
    (void)state;
    float *x = malloc(N * IN * sizeof(float));
    int32_t y[N];
    make_data(x, y);
    char dir[] = "/tmp/tfx_resume_XXXXXX", tmpl[64], path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(tmpl, sizeof tmpl, "%s/ckpt-{epoch}.tfx", dir);
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.learning_rate = 0.01f;
    for (int weights_only = 0; weights_only < 2; weights_only++) {
        tfx_model_checkpoint_options mo = TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
        mo.save_weights_only = weights_only;
        tfx_model_checkpoint_callback *cb;
        OK(tfx_model_checkpoint_callback_new(&cb, tmpl, &mo));
        const tfx_callback *cbs[] = {tfx_model_checkpoint_callback_hooks(cb)};
        tfx_model *a = make_model(&co);
        tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
        f.batch_size = 8;
        f.epochs = 3;
        f.validation_split = 0.2;
        f.shuffle = 1;
        f.callbacks = cbs;
        f.n_callbacks = 1;
        OK(tfx_model_fit(a, x, y, N, &f, NULL));
        snprintf(path, sizeof path, "%s/ckpt-2.tfx", dir);
        tfx_model *r;
        OK(tfx_model_load(&r, path));
        if (weights_only) {
            assert_int_equal(tfx_model_train_steps(r), 0);
            float lr;
            assert_int_equal(tfx_model_get_learning_rate(r, &lr), TFX_ESTATE);
        } else {
            OK(tfx_model_set_threads(r, 1));
            fit(r, x, y, 2, 3, NULL);
            size_t na, nr;
            uint8_t *fa = save_mem(a, 1, &na), *fr = save_mem(r, 1, &nr);
            assert_int_equal(na, nr);
            assert_memory_equal(fa, fr, na);
            free(fa);
            free(fr);
        }
        tfx_model_free(r);
        tfx_model_free(a);
        tfx_model_checkpoint_callback_free(cb);
        for (int e = 1; e <= 3; e++) {
            snprintf(path, sizeof path, "%s/ckpt-%d.tfx", dir, e);
            assert_int_equal(remove(path), 0);
        }
    }
    assert_int_equal(rmdir(dir), 0);
    free(x);
}

/* A layer added to a loaded model before its optimizer state is taken over: as after compile,
 * training asks for a new compile. */
static void test_layer_added_after_load(void **state)
{
    (void)state;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    tfx_model *m = make_model(&co);
    size_t n;
    uint8_t *b = save_mem(m, 1, &n);
    tfx_model *l;
    OK(tfx_model_load_from_memory(&l, b, n));
    OK(tfx_model_add_activation(l, TFX_ACTIVATION_RELU, 0.0f, NULL, NULL));
    float lr;
    tfx_error_clear();
    assert_int_equal(tfx_model_get_learning_rate(l, &lr), TFX_ESTATE);
    assert_non_null(strstr(tfx_error_last()->message, "layers were added after tfx_model_load; compile again"));
    assert_int_equal(tfx_model_train_steps(l), 0);
    OK(tfx_model_compile(l, &co));
    OK(tfx_model_get_learning_rate(l, &lr));
    tfx_model_free(l);
    free(b);
    tfx_model_free(m);
}

/* Out of memory at each allocation of a load with an optimizer section and of its takeover:
 * TFX_ENOMEM, nothing leaked (ASan / valgrind builds), and the state stays pending until the
 * takeover succeeds. */
static void test_allocation_failures(void **state)
{
    (void)state;
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.learning_rate = 0.01f;
    tfx_model *m = make_model(&co);
    size_t n;
    uint8_t *b = save_mem(m, 1, &n);
    int loaded = 0, adopted = 0;
    for (long k = 1; k < 1000 && !(loaded && adopted); k++) {
        tfx_model *l = NULL;
        tfx__alloc_fail_after(k);
        int rc = tfx_model_load_from_memory(&l, b, n);
        tfx__alloc_fail_after(0);
        if (rc != TFX_OK) {
            assert_int_equal(rc, TFX_ENOMEM);
            assert_null(l);
            continue;
        }
        loaded = 1;
        float lr;
        tfx__alloc_fail_after(k);
        rc = tfx_model_get_learning_rate(l, &lr);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK)
            adopted = 1;
        else
            assert_int_equal(rc, TFX_ENOMEM);
        OK(tfx_model_get_learning_rate(l, &lr)); /* a failed takeover left the state pending */
        assert_true(lr == co.learning_rate * 0.5f);
        assert_int_equal(tfx_model_train_steps(l), tfx_model_train_steps(m));
        tfx_model_free(l);
    }
    assert_true(loaded && adopted);
    free(b);
    tfx_model_free(m);
}

/* ---- hostile optimizer sections ---- */

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static void wr32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void fix_crc(uint8_t *b, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, b, (uInt)(n - 4));
    wr32(b + n - 4, (uint32_t)c);
}

/* Offset of section 3's payload in a file of 3 sections (the table's lengths are < 4 GiB). */
static size_t opt_offset(const uint8_t *f)
{
    assert_int_equal(rd32(f + 12), 3);
    assert_int_equal(rd32(f + 48), 3);
    return 16 + 3 * 16 + rd32(f + 16 + 8) + rd32(f + 32 + 8);
}

static void expect_refused(const uint8_t *f, size_t n, const char *substr)
{
    tfx_model *l = (tfx_model *)1;
    tfx_error_clear();
    int rc = tfx_model_load_from_memory(&l, f, n);
    if (rc != TFX_EFORMAT || !strstr(tfx_error_last()->message, substr))
        fail_msg("rc %d, message \"%s\" (want \"%s\")", rc, tfx_error_last()->message, substr);
    assert_null(l);
}

static void test_hostile_sections(void **state)
{
    (void)state;
    float *x = malloc(N * IN * sizeof(float));
    int32_t y[N];
    make_data(x, y);
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT; /* Adam: 2 arrays, the second under a sqrt */
    co.learning_rate = 0.01f;
    tfx_model *m = make_model(&co);
    fit(m, x, y, 0, 1, NULL);
    size_t n;
    uint8_t *good = save_mem(m, 1, &n);
    /* The model-load fuzzer's seed with an optimizer section (tests/fuzz/corpus/model_load/optimizer.tfx)
     * is this file: TFX_RESUME_SEED_OUT=<path> writes it. */
    const char *seed_out = getenv("TFX_RESUME_SEED_OUT");
    if (seed_out) {
        FILE *sf = fopen(seed_out, "wb");
        assert_non_null(sf);
        assert_int_equal(fwrite(good, 1, n, sf), n);
        fclose(sf);
    }
    const size_t off = opt_offset(good);
    const size_t np = rd32(good + off + 104);
    assert_int_equal(n - 4 - off, 116 + 2 * 4 * np);
    uint8_t *f = malloc(n);
    struct {
        size_t at;
        uint32_t value;
        const char *msg;
    } cases[] = {
        {0, 2, "optimizer section: layout 2 is not known"},
        {4, 9, "unknown loss 9"},
        {8, 7, "unknown optimizer 7"},
        {12, 4, "unknown metric flags 0x4"},
        {16, 0x7fc00000u, "learning rate nan"},
        {28, 0x3f800000u, "beta_1 1 must be in [0, 1)"},
        {40, 0, "epsilon 0 must be positive"},
        {92, 2, "spare flag 2"},
        {104, (uint32_t)np + 1, "the model has"},
        {112, 1, "1 state arrays, optimizer 2 keeps 2"},
        {116, 0x7f800000u, "array 0, parameter 0: inf is not a valid state value"},
        {116 + 4 * np + 8, 0xbf800000u, "array 1, parameter 2: -1 is not a valid mean square"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(f, good, n);
        wr32(f + off + cases[k].at, cases[k].value);
        fix_crc(f, n);
        expect_refused(f, n, cases[k].msg);
    }
    /* an all-zero generator state would only ever give zeros */
    memcpy(f, good, n);
    memset(f + off + 60, 0, 32);
    fix_crc(f, n);
    expect_refused(f, n, "random generator state is all zero");
    /* truncated: the section (and file) 4 bytes shorter, and a section too short for its fixed part */
    memcpy(f, good, n - 4);
    wr32(f + 48 + 8, rd32(f + 48 + 8) - 4);
    fix_crc(f, n - 4);
    expect_refused(f, n - 4, "need");
    memcpy(f, good, off + 50);
    wr32(f + 48 + 8, 46);
    fix_crc(f, off + 50);
    expect_refused(f, off + 50, "optimizer section: 46 bytes, shorter than its fixed part");
    /* the good file loads, with a NaN-free state, and trains on */
    tfx_model *l;
    OK(tfx_model_load_from_memory(&l, good, n));
    OK(tfx_model_set_threads(l, 1));
    fit(l, x, y, 1, 2, NULL);
    tfx_model_free(l);
    free(f);
    free(good);
    tfx_model_free(m);
    free(x);
}

/* Files without the section are what they were (a 0.1 reader's files); compiling does not
 * change them; a file with the section loads uncompiled-equivalent predictions, and compile
 * after load starts a fresh optimizer. */
static void test_without_section(void **state)
{
    (void)state;
    float *x = malloc(N * IN * sizeof(float));
    int32_t y[N];
    make_data(x, y);
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.learning_rate = 0.01f;
    tfx_model *m = make_model(&co);
    fit(m, x, y, 0, 1, NULL);
    size_t n, n1;
    uint8_t *plain = save_mem(m, 0, &n), *full = save_mem(m, 1, &n1);
    assert_int_equal(rd32(plain + 12), 2); /* two sections, as 0.1 writes */
    assert_true(n1 > n);
    tfx_model *l;
    OK(tfx_model_load_from_memory(&l, plain, n));
    assert_int_equal(tfx_model_train_steps(l), 0);
    float lr;
    assert_int_equal(tfx_model_get_learning_rate(l, &lr), TFX_ESTATE);
    tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
    so.include_optimizer = 1;
    size_t sz;
    assert_int_equal(tfx_model_save_to_memory(l, &so, NULL, 0, &sz), TFX_ESTATE);
    tfx_model_free(l);
    /* the section's model predicts as the plain one; a new compile drops the loaded state */
    OK(tfx_model_load_from_memory(&l, full, n1));
    float p1[3], p2[3];
    OK(tfx_model_predict(m, x, 1, p1));
    OK(tfx_model_predict(l, x, 1, p2));
    assert_memory_equal(p1, p2, sizeof p1);
    assert_true(tfx_model_train_steps(l) > 0);
    OK(tfx_model_compile(l, &co));
    assert_int_equal(tfx_model_train_steps(l), 0);
    tfx_model_free(l);
    free(plain);
    free(full);
    tfx_model_free(m);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_adam),
        cmocka_unit_test(test_resume_sgd_momentum),
        cmocka_unit_test(test_resume_rmsprop),
        cmocka_unit_test(test_resume_from_checkpoint),
        cmocka_unit_test(test_layer_added_after_load),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_hostile_sections),
        cmocka_unit_test(test_without_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
