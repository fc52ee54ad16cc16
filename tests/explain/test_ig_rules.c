/* Integrated Gradients' integration rules (issue 20): the Gauss-Legendre nodes and weights
 * computed in C against their closed forms (m = 1..5) and numpy's leggauss (m = 20, 50,
 * golden_leggauss.h from gen_golden_leggauss.py), the exactness of the m-point rule on
 * polynomials of degree up to 2m - 1, and the nodes and weights on [0, 1] of every
 * tfx_ig_rule. The maps of each rule against PyTorch are in test_explain_raw.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "explain/explain_internal.h"
#include "golden_leggauss.h"
#include "tfx/tfx.h"

#define MAXM 1000

static double X[MAXM], Wt[MAXM];

static void expect_close(double got, double want, double tol, const char *what, size_t m, size_t i)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s m = %zu, i = %zu: %.17g, want %.17g (|diff| %.3g > %.3g)", what, m, i, got, want,
                 fabs(got - want), tol);
}

static void test_gauss_legendre_closed_forms(void **state)
{
    (void)state;
    /* Ascending nodes and their weights (Abramowitz & Stegun 25.4.29 in closed form). */
    const double s35 = sqrt(3.0 / 5.0), s65 = sqrt(6.0 / 5.0), s30 = sqrt(30.0), s107 = sqrt(10.0 / 7.0),
                 s70 = sqrt(70.0);
    const double a4 = sqrt(3.0 / 7.0 - 2.0 / 7.0 * s65), b4 = sqrt(3.0 / 7.0 + 2.0 / 7.0 * s65);
    const double a5 = sqrt(5.0 - 2.0 * s107) / 3.0, b5 = sqrt(5.0 + 2.0 * s107) / 3.0;
    const double want_x[5][5] = {{0.0},
                                 {-1.0 / sqrt(3.0), 1.0 / sqrt(3.0)},
                                 {-s35, 0.0, s35},
                                 {-b4, -a4, a4, b4},
                                 {-b5, -a5, 0.0, a5, b5}};
    const double wa4 = (18.0 + s30) / 36.0, wb4 = (18.0 - s30) / 36.0;
    const double wa5 = (322.0 + 13.0 * s70) / 900.0, wb5 = (322.0 - 13.0 * s70) / 900.0;
    const double want_w[5][5] = {{2.0},
                                 {1.0, 1.0},
                                 {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0},
                                 {wb4, wa4, wa4, wb4},
                                 {wb5, wa5, 128.0 / 225.0, wa5, wb5}};
    for (size_t m = 1; m <= 5; m++) {
        tfx__gauss_legendre(m, X, Wt);
        for (size_t i = 0; i < m; i++) {
            expect_close(X[i], want_x[m - 1][i], 4e-16, "node", m, i);
            expect_close(Wt[i], want_w[m - 1][i], 4e-16, "weight", m, i);
        }
        if (m % 2) assert_true(X[m / 2] == 0.0); /* exactly, as numpy */
    }
}

/* Against numpy's leggauss (Captum's rule) and the exact values (mpmath, rounded to double).
 * numpy's weights near the ends carry relative errors up to ~1e-12 (its eigenvalue method with
 * one Newton step); this implementation stays within a few units in the last place of the exact
 * ones. */
static void test_gauss_legendre_numpy(void **state)
{
    (void)state;
    double np_x = 0.0, np_w = 0.0, ex_x = 0.0, ex_w = 0.0;
    for (int t = 0; t < 2; t++) {
        const size_t m = t ? 50 : 20;
        const double *nx = t ? leggauss50_x : leggauss20_x, *nw = t ? leggauss50_w : leggauss20_w;
        const double *ex = t ? leggauss50_x_exact : leggauss20_x_exact, *ew = t ? leggauss50_w_exact : leggauss20_w_exact;
        tfx__gauss_legendre(m, X, Wt);
        for (size_t i = 0; i < m; i++) {
            expect_close(X[i], nx[i], 1e-15, "node vs numpy", m, i);
            expect_close(Wt[i], nw[i], 2e-12 * nw[i], "weight vs numpy", m, i);
            expect_close(X[i], ex[i], 4e-16, "node vs exact", m, i);
            expect_close(Wt[i], ew[i], 1e-13 * ew[i], "weight vs exact", m, i);
            np_x = fmax(np_x, fabs(X[i] - nx[i]));
            np_w = fmax(np_w, fabs(Wt[i] - nw[i]) / nw[i]);
            ex_x = fmax(ex_x, fabs(X[i] - ex[i]));
            ex_w = fmax(ex_w, fabs(Wt[i] - ew[i]) / ew[i]);
        }
    }
    print_message("  m = 20, 50: max |node - numpy| %.2g, |weight - numpy| / weight %.2g; "
                  "max |node - exact| %.2g, |weight - exact| / weight %.2g\n", np_x, np_w, ex_x, ex_w);
}

/* The m-point rule integrates x^d exactly on [-1, 1] for d <= 2m - 1; ascending, symmetric nodes. */
static void test_gauss_legendre_exactness(void **state)
{
    (void)state;
    const size_t ms[] = {1, 2, 3, 6, 7, 12, 20, 33, 50, 64};
    for (size_t t = 0; t < sizeof ms / sizeof ms[0]; t++) {
        const size_t m = ms[t];
        tfx__gauss_legendre(m, X, Wt);
        for (size_t i = 0; i < m; i++) {
            assert_true(X[i] > -1.0 && X[i] < 1.0 && Wt[i] > 0.0);
            if (i) assert_true(X[i] > X[i - 1]);
            assert_true(X[i] == -X[m - 1 - i] && Wt[i] == Wt[m - 1 - i]);
        }
        /* Degrees up to 2m - 1, at most 40: beyond, x^d over the nodes loses the digits. */
        for (size_t d = 0; d <= 2 * m - 1 && d <= 40; d++) {
            double s = 0.0;
            for (size_t i = 0; i < m; i++) s += Wt[i] * pow(X[i], (double)d);
            double want = d % 2 ? 0.0 : 2.0 / (double)(d + 1);
            expect_close(s, want, 1e-14, "integral of x^d", m, d);
        }
    }
    /* A large m: the weights still sum to 2 and the first node is near its asymptote. */
    tfx__gauss_legendre(MAXM, X, Wt);
    double s = 0.0;
    for (size_t i = 0; i < MAXM; i++) s += Wt[i];
    expect_close(s, 2.0, 1e-12, "sum of weights", MAXM, 0);
    const double j01 = 2.404825557695773; /* first zero of J0: x_1 ~ -cos(j01 / (m + 1/2)) */
    expect_close(X[0], -cos(j01 / (MAXM + 0.5)), 1e-9, "first node", MAXM, 0);
}

/* Each tfx_ig_rule's nodes and weights on [0, 1]. */
static void test_rule_nodes(void **state)
{
    (void)state;
    double a[64], w[64];
    const size_t m = 8;
    for (int rule = TFX_IG_RIEMANN_RIGHT; rule <= TFX_IG_GAUSS_LEGENDRE; rule++) {
        assert_int_equal(tfx__ig_rule_nodes(rule, m, a, w), TFX_OK);
        double s = 0.0;
        for (size_t k = 0; k < m; k++) {
            double want = 0.0;
            switch (rule) {
            case TFX_IG_RIEMANN_RIGHT: want = (double)(k + 1) / 8.0; break;
            case TFX_IG_RIEMANN_LEFT: want = (double)k / 8.0; break;
            case TFX_IG_RIEMANN_MIDDLE: want = ((double)k + 0.5) / 8.0; break;
            case TFX_IG_TRAPEZOID: want = (double)k / 7.0; break;
            default: want = a[k]; break;
            }
            assert_true(a[k] == want);
            assert_true(a[k] >= 0.0 && a[k] <= 1.0);
            if (k) assert_true(a[k] > a[k - 1]);
            if (rule == TFX_IG_TRAPEZOID) assert_true(w[k] == (k == 0 || k == m - 1 ? 0.5 : 1.0) / 7.0);
            else if (rule != TFX_IG_GAUSS_LEGENDRE) assert_true(w[k] == 1.0 / 8.0);
            s += w[k];
        }
        expect_close(s, 1.0, 1e-15, "sum of [0, 1] weights", m, (size_t)rule);
    }
    /* Gauss-Legendre on [0, 1]: Captum's mapping of numpy's rule, alpha = (1 + x)/2, w = v/2. */
    assert_int_equal(tfx__ig_rule_nodes(TFX_IG_GAUSS_LEGENDRE, 20, a, w), TFX_OK);
    for (size_t k = 0; k < 20; k++) {
        expect_close(a[k], 0.5 * (1.0 + leggauss20_x[k]), 2e-15, "GL alpha", 20, k);
        expect_close(w[k], 0.5 * leggauss20_w[k], 2e-15, "GL step size", 20, k);
    }
    /* m = 1: the trapezoid needs two nodes; the others have one (GL's is the midpoint). */
    assert_int_equal(tfx__ig_rule_nodes(TFX_IG_GAUSS_LEGENDRE, 1, a, w), TFX_OK);
    assert_true(a[0] == 0.5 && w[0] == 1.0);
    assert_int_equal(tfx__ig_rule_nodes(TFX_IG_TRAPEZOID, 1, a, w), TFX_EINVAL);
    assert_int_equal(tfx__ig_rule_nodes(TFX_IG_RIEMANN_RIGHT, 0, a, w), TFX_EINVAL);
    assert_int_equal(tfx__ig_rule_nodes(TFX_IG_GAUSS_LEGENDRE + 1, 4, a, w), TFX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gauss_legendre_closed_forms),
        cmocka_unit_test(test_gauss_legendre_numpy),
        cmocka_unit_test(test_gauss_legendre_exactness),
        cmocka_unit_test(test_rule_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
