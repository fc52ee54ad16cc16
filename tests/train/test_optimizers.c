/* Optimizer steps: hand-computed one- and two-step values (arithmetic in the comments) and
 * PyTorch golden values over five steps (tests/train/gen_optimizer_golden.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "train/train_internal.h"
#include "optimizer_golden.h"

static tfx__opt_config cfg(int kind, float lr, float momentum, int nesterov, float b1, float b2, float rho, float eps)
{
    tfx__opt_config c = {kind, lr, momentum, nesterov, b1, b2, rho, eps};
    return c;
}

/* Two steps on one weight w = 1 with gradient g each step; returns w after each step. */
static void two_steps(const tfx__opt_config *c, float g1, float g2, float out[2])
{
    float w = 1.0f, s1 = 0.0f, s2 = 0.0f;
    tfx__optimizer_step(c, 1, 1, &w, &g1, &s1, &s2);
    out[0] = w;
    tfx__optimizer_step(c, 2, 1, &w, &g2, &s1, &s2);
    out[1] = w;
}

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol) fail_msg("got %.9g, want %.9g (tol %g)", got, want, tol);
}

static void test_sgd_hand(void **state)
{
    (void)state;
    float w[2];
    /* plain, lr 0.1: 1 - 0.1*0.5 = 0.95; 0.95 - 0.1*(-1) = 1.05 */
    tfx__opt_config c = cfg(TFX_OPTIMIZER_SGD, 0.1f, 0.0f, 0, 0, 0, 0, 0);
    two_steps(&c, 0.5f, -1.0f, w);
    near(w[0], 0.95, 1e-7);
    near(w[1], 1.05, 1e-7);
    /* momentum 0.9: v = -0.05, w = 0.95; v = 0.9*-0.05 - 0.05 = -0.095, w = 0.855 */
    c = cfg(TFX_OPTIMIZER_SGD, 0.1f, 0.9f, 0, 0, 0, 0, 0);
    two_steps(&c, 0.5f, 0.5f, w);
    near(w[0], 0.95, 1e-7);
    near(w[1], 0.855, 1e-7);
    /* nesterov: v = -0.05, w += 0.9*-0.05 - 0.05 -> 0.905;
     * v = -0.095, w += 0.9*-0.095 - 0.05 = -0.1355 -> 0.7695 */
    c = cfg(TFX_OPTIMIZER_SGD, 0.1f, 0.9f, 1, 0, 0, 0, 0);
    two_steps(&c, 0.5f, 0.5f, w);
    near(w[0], 0.905, 1e-7);
    near(w[1], 0.7695, 1e-7);
}

static void test_rmsprop_hand(void **state)
{
    (void)state;
    float w[2];
    /* ms = 0.1*0.25 = 0.025, w = 1 - 0.01*0.5/(sqrt(0.025)+1e-7) = 0.968377243;
     * ms = 0.9*0.025 + 0.025 = 0.0475, w -= 0.005/(0.217944947+1e-7) -> 0.945435681 */
    tfx__opt_config c = cfg(TFX_OPTIMIZER_RMSPROP, 0.01f, 0, 0, 0, 0, 0.9f, 1e-7f);
    two_steps(&c, 0.5f, 0.5f, w);
    near(w[0], 0.9683772434, 2e-7);
    near(w[1], 0.9454356805, 2e-7);
}

static void test_adam_hand(void **state)
{
    (void)state;
    float w[2];
    /* Keras defaults, g = 0.5: m = 0.05, v = 0.00025, lr_t = 1e-3*sqrt(0.001)/0.1,
     * w = 1 - lr_t*0.05/(0.0158113883 + 1e-7) = 0.999000006;
     * step 2: m = 0.095, v = 0.00049975, lr_t = 1e-3*sqrt(1-0.999^2)/(1-0.9^2) -> 0.998000011 */
    tfx__opt_config c = cfg(TFX_OPTIMIZER_ADAM, 1e-3f, 0, 0, 0.9f, 0.999f, 0, 1e-7f);
    two_steps(&c, 0.5f, 0.5f, w);
    near(w[0], 0.9990000063, 1e-7);
    near(w[1], 0.9980000108, 1e-7);
    /* Keras's eps placement, made visible with eps = 0.1, lr = 0.1, one step:
     * w = 1 - 0.1*sqrt(0.001)/0.1 * 0.05/(0.0158113883 + 0.1) = 0.986347294
     * (the paper/PyTorch placement would give 1 - 0.1*0.5/(0.5 + 0.1) = 0.916667). */
    c = cfg(TFX_OPTIMIZER_ADAM, 0.1f, 0, 0, 0.9f, 0.999f, 0, 0.1f);
    two_steps(&c, 0.5f, 0.5f, w);
    near(w[0], 0.9863472941, 2e-7);
}

static void test_torch_golden(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof golden_cases / sizeof golden_cases[0]; k++) {
        const golden_case *gc = &golden_cases[k];
        tfx__opt_config c = cfg(gc->kind, gc->lr, gc->momentum, gc->nesterov, gc->beta_1, gc->beta_2, gc->rho,
                                gc->epsilon);
        float w[GOLDEN_N], s1[GOLDEN_N] = {0}, s2[GOLDEN_N] = {0};
        memcpy(w, golden_w0, sizeof w);
        for (int t = 0; t < GOLDEN_STEPS; t++) {
            tfx__optimizer_step(&c, (uint64_t)t + 1, GOLDEN_N, w, golden_grads[t], s1, s2);
            for (int i = 0; i < GOLDEN_N; i++) {
                double want = gc->w[t][i];
                double tol = 2e-6 + 2e-6 * fabs(want);
                if (fabs(w[i] - want) > tol)
                    fail_msg("%s step %d w[%d]: got %.9g, torch %.9g", gc->name, t + 1, i, (double)w[i], want);
            }
        }
    }
}

/* The whole-model path: compile's defaults resolve to Keras's values. */
static void test_compile_defaults(void **state)
{
    (void)state;
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 1, 1, 3), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    const int kinds[3] = {TFX_OPTIMIZER_SGD, TFX_OPTIMIZER_ADAM, TFX_OPTIMIZER_RMSPROP};
    const float lrs[3] = {0.01f, 1e-3f, 1e-3f};
    for (int k = 0; k < 3; k++) {
        tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
        o.optimizer = kinds[k];
        o.loss = TFX_LOSS_MEAN_SQUARED_ERROR;
        assert_int_equal(tfx_model_compile(m, &o), 0);
        const tfx__train *t = m->train;
        assert_true(t->opt.lr == lrs[k]);
        assert_true(t->opt.beta_1 == 0.9f && t->opt.beta_2 == 0.999f && t->opt.epsilon == 1e-7f && t->opt.rho == 0.9f);
    }
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_hand),
        cmocka_unit_test(test_rmsprop_hand),
        cmocka_unit_test(test_adam_hand),
        cmocka_unit_test(test_torch_golden),
        cmocka_unit_test(test_compile_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
