/* Losses: values by hand, gradients against central finite differences (each loss, on
 * logits and on probabilities), and the whole-model gradient fit uses (the loss plan:
 * fused softmax/sigmoid, a final Activation layer, plain outputs) against finite
 * differences of tfx_model_evaluate. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train/train_internal.h"

#define ROWS 3
#define COLS 4

static double mean_loss(int loss, int logits, const float *z, const float *p, const void *y)
{
    return tfx__loss_eval(loss, logits, z, p, y, ROWS, COLS, NULL, NULL) / ROWS;
}

static void near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.9g, want %.9g", what, got, want);
}

static void test_loss_values(void **state)
{
    (void)state;
    const float z[3] = {1, 2, 3}, p[3] = {0.1f, 0.2f, 0.7f}, t[3] = {0, 0, 1};
    const int32_t lab = 2;
    /* log(e + e^2 + e^3) - 3 = 0.4076059644 */
    near(tfx__loss_eval(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1, z, p, &lab, 1, 3, NULL, NULL), 0.4076059644,
         1e-7, "sparse logits");
    near(tfx__loss_eval(TFX_LOSS_CATEGORICAL_CROSSENTROPY, 1, z, p, t, 1, 3, NULL, NULL), 0.4076059644, 1e-7,
         "categorical logits");
    /* -log(0.7) (the probabilities sum to 1) */
    near(tfx__loss_eval(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, NULL, p, &lab, 1, 3, NULL, NULL), 0.3566749439,
         1e-6, "sparse probabilities");
    near(tfx__loss_eval(TFX_LOSS_CATEGORICAL_CROSSENTROPY, 0, NULL, p, t, 1, 3, NULL, NULL), 0.3566749439, 1e-6,
         "categorical probabilities");
    /* Keras clipping: p_y = 0 costs -log(1e-7) = 16.118095651 */
    const float p0[2] = {1.0f, 0.0f};
    const int32_t lab1 = 1;
    near(tfx__loss_eval(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, NULL, p0, &lab1, 1, 2, NULL, NULL), 16.118095651,
         1e-5, "sparse clipped");
    /* BCE: logits 0 / p 0.5 against 1: log 2; probabilities get Keras's extra + 1e-7 */
    const float z0 = 0.0f, half = 0.5f, one = 1.0f;
    near(tfx__loss_eval(TFX_LOSS_BINARY_CROSSENTROPY, 1, &z0, &half, &one, 1, 1, NULL, NULL), 0.6931471806, 1e-7,
         "bce logits");
    near(tfx__loss_eval(TFX_LOSS_BINARY_CROSSENTROPY, 0, NULL, &half, &one, 1, 1, NULL, NULL), -log(0.5 + 1e-7), 1e-7,
         "bce probabilities");
    /* MSE: ((1-0)^2 + (2-0)^2) / 2 = 2.5 */
    const float pm[2] = {1, 2}, tm[2] = {0, 0};
    near(tfx__loss_eval(TFX_LOSS_MEAN_SQUARED_ERROR, 0, NULL, pm, tm, 1, 2, NULL, NULL), 2.5, 1e-9, "mse");
    /* accuracy forms: sparse argmax, categorical argmax, binary threshold */
    double ok;
    tfx__loss_eval(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1, z, p, &lab, 1, 3, NULL, &ok);
    assert_true(ok == 1.0);
    const float t1[3] = {0, 1, 0};
    tfx__loss_eval(TFX_LOSS_CATEGORICAL_CROSSENTROPY, 1, z, p, t1, 1, 3, NULL, &ok);
    assert_true(ok == 0.0);
    const float pb[2] = {0.7f, 0.4f}, tb[2] = {1.0f, 1.0f};
    tfx__loss_eval(TFX_LOSS_BINARY_CROSSENTROPY, 0, NULL, pb, tb, 2, 1, NULL, &ok);
    assert_true(ok == 1.0);
}

static float frand(unsigned *s, float lo, float hi)
{
    *s = *s * 1103515245u + 12345u;
    return lo + (hi - lo) * (float)((*s >> 8) & 0xffff) / 65535.0f;
}

/* Check grad against central differences of the mean loss w.r.t. the input in `which`. */
static void fd_check(int loss, int logits, float *z, float *p, const void *y, const char *name)
{
    float grad[ROWS * COLS];
    tfx__loss_eval(loss, logits, z, p, y, ROWS, COLS, grad, NULL);
    float *in = logits ? z : p;
    for (int i = 0; i < ROWS * COLS; i++) {
        float orig = in[i];
        float h = logits ? 1e-2f : 1e-3f;
        in[i] = orig + h;
        double up = mean_loss(loss, logits, z, p, y);
        double dh = (double)in[i];
        in[i] = orig - h;
        double down = mean_loss(loss, logits, z, p, y);
        dh -= (double)in[i];
        in[i] = orig;
        double fd = (up - down) / dh;
        double tol = 2e-4 + 1e-3 * fabs(fd);
        if (fabs(fd - grad[i]) > tol) fail_msg("%s: d/d[%d] analytic %.7g, finite difference %.7g", name, i, grad[i], fd);
    }
}

static void test_loss_gradients(void **state)
{
    (void)state;
    unsigned s = 7;
    float z[ROWS * COLS], p[ROWS * COLS], t[ROWS * COLS], tb[ROWS * COLS];
    int32_t lab[ROWS] = {0, 3, 2};
    for (int i = 0; i < ROWS * COLS; i++) {
        z[i] = frand(&s, -2, 2);
        p[i] = frand(&s, 0.05f, 0.9f); /* inside the clip range, not normalised */
        tb[i] = frand(&s, 0, 1);
        t[i] = 0;
    }
    for (int r = 0; r < ROWS; r++) t[r * COLS + lab[r]] = 1;
    t[1 * COLS + 0] = 0.25f; /* a soft target too */
    fd_check(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1, z, p, lab, "sparse CE logits");
    fd_check(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, z, p, lab, "sparse CE probabilities");
    fd_check(TFX_LOSS_CATEGORICAL_CROSSENTROPY, 1, z, p, t, "CE logits");
    fd_check(TFX_LOSS_CATEGORICAL_CROSSENTROPY, 0, z, p, t, "CE probabilities");
    fd_check(TFX_LOSS_BINARY_CROSSENTROPY, 1, z, p, tb, "BCE logits");
    fd_check(TFX_LOSS_BINARY_CROSSENTROPY, 0, z, p, tb, "BCE probabilities");
    fd_check(TFX_LOSS_MEAN_SQUARED_ERROR, 0, z, p, tb, "MSE");
}

/* Outside the clip range the probability gradient is zero (tf.clip_by_value). */
static void test_clip_gradient(void **state)
{
    (void)state;
    const float p[2] = {1.0f, 0.0f};
    const int32_t lab = 1;
    float g[2];
    tfx__loss_eval(TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, NULL, p, &lab, 1, 2, g, NULL);
    assert_true(g[0] == 0.0f && g[1] == 0.0f);
}

/* ---- whole model ---- */

/* Gradient of the mean loss w.r.t. all parameters, exactly as fit computes it. */
static void model_grads(tfx_model *m, const float *x, const void *y, size_t n)
{
    tfx__train *t;
    assert_int_equal(tfx__train_get(m, "test", &t), 0);
    assert_int_equal(tfx__model_forward(m, x, n, 1), 0);
    size_t top_sz = tfx__shape_size(m->layers[t->plan.top]->out);
    float *seed = calloc(n * top_sz, sizeof(float));
    tfx__loss_eval(t->plan.loss, t->plan.from_logits, tfx__train_logits(m, t), tfx__model_layer_output(m, m->n_layers - 1),
                   y, n * t->plan.rows, t->plan.cols, seed, NULL);
    int flags = TFX__BW_PARAM_GRADS | (t->plan.skip_act ? TFX__BW_SKIP_ACTIVATION : 0);
    assert_int_equal(tfx__model_backward(m, n, t->plan.top, seed, 0, 0, flags, NULL, NULL), 0);
    free(seed);
}

static void model_fd(tfx_model *m, const float *x, const void *y, size_t n, const char *name)
{
    model_grads(m, x, y, n);
    float *g = malloc(m->n_params * sizeof(float));
    memcpy(g, m->grads, m->n_params * sizeof(float));
    double err2 = 0.0, norm2 = 0.0;
    for (size_t i = 0; i < m->n_params; i++) {
        float orig = m->params[i];
        double up, down, acc;
        m->params[i] = orig + 1e-2f;
        assert_int_equal(tfx_model_evaluate(m, x, y, n, &up, &acc), 0);
        double dh = m->params[i];
        m->params[i] = orig - 1e-2f;
        assert_int_equal(tfx_model_evaluate(m, x, y, n, &down, &acc), 0);
        dh -= m->params[i];
        m->params[i] = orig;
        double fd = (up - down) / dh;
        if (fabs(fd - g[i]) > 1e-4 + 1e-2 * fabs(fd))
            fail_msg("%s: param %zu analytic %.6g, finite difference %.6g", name, i, g[i], fd);
        err2 += (fd - g[i]) * (fd - g[i]);
        norm2 += fd * fd;
    }
    /* Relative to the whole gradient, so small entries cannot hide a wrong direction. */
    if (!(norm2 > 1e-8) || sqrt(err2 / norm2) > 5e-3)
        fail_msg("%s: relative gradient error %.3g (|grad| %.3g)", name, sqrt(err2 / norm2), sqrt(norm2));
    free(g);
}

static tfx_model *small_model(int out_units, int out_act, int extra_activation)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 2), 0);
    tfx_model_set_seed(m, 3);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.activation = TFX_ACTIVATION_TANH; /* smooth, so finite differences are reliable */
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), 0);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = out_units;
    d.activation = extra_activation ? TFX_ACTIVATION_LINEAR : out_act;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    if (extra_activation) assert_int_equal(tfx_model_add_activation(m, out_act, 0.0f, NULL, NULL), 0);
    return m;
}

static void test_model_gradients(void **state)
{
    (void)state;
    enum { N = 5 };
    float x[N * 32];
    unsigned s = 11;
    for (int i = 0; i < N * 32; i++) x[i] = frand(&s, -1, 1);
    int32_t lab[N] = {0, 2, 1, 2, 0};
    float onehot[N * 3] = {0}, bin[N];
    for (int i = 0; i < N; i++) {
        onehot[i * 3 + lab[i]] = 1;
        bin[i] = (float)(i & 1);
    }
    struct {
        int loss, units, act, extra, want_logits;
        const void *y;
        const char *name;
    } cases[] = {
        {TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 3, TFX_ACTIVATION_SOFTMAX, 0, 1, lab, "sparse CE, fused softmax"},
        {TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 3, TFX_ACTIVATION_SOFTMAX, 1, 1, lab, "sparse CE, Activation softmax"},
        {TFX_LOSS_CATEGORICAL_CROSSENTROPY, 3, TFX_ACTIVATION_SOFTMAX, 0, 1, onehot, "CE, fused softmax"},
        {TFX_LOSS_CATEGORICAL_CROSSENTROPY, 3, TFX_ACTIVATION_SIGMOID, 0, 0, onehot, "CE, sigmoid probabilities"},
        {TFX_LOSS_BINARY_CROSSENTROPY, 1, TFX_ACTIVATION_SIGMOID, 0, 1, bin, "BCE, fused sigmoid"},
        {TFX_LOSS_BINARY_CROSSENTROPY, 1, TFX_ACTIVATION_SIGMOID, 1, 1, bin, "BCE, Activation sigmoid"},
        {TFX_LOSS_MEAN_SQUARED_ERROR, 3, TFX_ACTIVATION_TANH, 0, 0, onehot, "MSE, tanh"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tfx_model *m = small_model(cases[k].units, cases[k].act, cases[k].extra);
        tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
        o.loss = cases[k].loss;
        assert_int_equal(tfx_model_compile(m, &o), 0);
        assert_int_equal(((tfx__train *)m->train)->plan.from_logits, cases[k].want_logits);
        /* The loss itself, from predict's probabilities, independently of the plan. */
        float prob[N * 3];
        double want = 0.0, got, acc;
        assert_int_equal(tfx_model_predict(m, x, N, prob), 0);
        for (int i = 0; i < N; i++) {
            int u = cases[k].units;
            if (cases[k].loss == TFX_LOSS_BINARY_CROSSENTROPY)
                want -= bin[i] * log(prob[i]) + (1 - bin[i]) * log(1 - prob[i]);
            else if (cases[k].loss == TFX_LOSS_MEAN_SQUARED_ERROR)
                for (int j = 0; j < u; j++) want += (prob[i * u + j] - onehot[i * u + j]) * (prob[i * u + j] - onehot[i * u + j]) / u;
            else if (cases[k].act == TFX_ACTIVATION_SOFTMAX)
                want -= log(prob[i * u + lab[i]]);
            else /* Keras normalises non-softmax probabilities first */
                want -= log(prob[i * u + lab[i]] / (prob[i * u] + prob[i * u + 1] + prob[i * u + 2]));
        }
        want /= N;
        assert_int_equal(tfx_model_evaluate(m, x, cases[k].y, N, &got, &acc), 0);
        near(got, want, 1e-5 * want, cases[k].name);
        model_fd(m, x, cases[k].y, N, cases[k].name);
        tfx_model_free(m);
    }
}

/* One SGD epoch over one full batch moves the weights by exactly -lr * gradient. */
static void test_fit_step_is_sgd(void **state)
{
    (void)state;
    enum { N = 6 };
    float x[N * 32];
    unsigned s = 5;
    for (int i = 0; i < N * 32; i++) x[i] = frand(&s, -1, 1);
    int32_t lab[N] = {0, 1, 2, 2, 1, 0};
    tfx_model *m = small_model(3, TFX_ACTIVATION_SOFTMAX, 0);
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.optimizer = TFX_OPTIMIZER_SGD;
    o.learning_rate = 0.5f;
    assert_int_equal(tfx_model_compile(m, &o), 0);
    size_t np = m->n_params;
    float *w0 = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    memcpy(w0, m->params, np * sizeof(float));
    model_grads(m, x, lab, N);
    memcpy(g, m->grads, np * sizeof(float));
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = N;
    f.shuffle = 0;
    assert_int_equal(tfx_model_fit(m, x, lab, N, &f, NULL), 0);
    assert_int_equal(tfx_model_train_steps(m), 1);
    for (size_t i = 0; i < np; i++) assert_true(m->params[i] == w0[i] - 0.5f * g[i]);
    free(w0);
    free(g);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_loss_gradients),
        cmocka_unit_test(test_clip_gradient),
        cmocka_unit_test(test_model_gradients),
        cmocka_unit_test(test_fit_step_is_sgd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
