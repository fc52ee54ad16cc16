/* Integrated Gradients completeness on a trained seed model (issue 4): train the tutorial's
 * ConvNet on 2000 Fashion-MNIST images for one epoch, then explain 20 test images with m = 200
 * and compare the sum of the attributions with S_c(x) - S_c(0), S_c the logit.
 *
 * What is checked (suite 'slow': about 30 s of CPU):
 *  - tfx_attribution_ig_delta's score difference equals z_c(x) - z_c(0) computed independently
 *    (a copy of the model with a linear last layer, through tfx_model_predict), and its delta
 *    equals |sum of the map - diff| summed here;
 *  - the median relative gap |sum - diff| / |diff| at m = 200 is <= 1 %;
 *  - for every image, the right Riemann sum corrected to the trapezoid rule with two plain
 *    gradients, sum - (g(x) - g(0)) . (x - 0) / (2m), is within 1 % of diff. The right sum's
 *    error is dominated by that end-point term, so this checks that the map is (x - x') times
 *    the mean of the path gradients at alpha = k/m, k = 1..m, whatever the image.
 * The per-image gap at m = 200 itself is printed, not asserted: on some images with a small
 * score difference it exceeds 1 % (docs/methods.md, "Pictures of a trained model").
 *
 * The integration rules (o->ig_rule, issue 20) on the same model, m = 20, the first 10 test
 * images: each rule's delta and score difference against the independent logits, and the
 * median gap per rule. TFX_IG_RULES_TABLE=n (e.g. 100) measures every rule at m = 20, 50 and
 * 200 on n test images instead and prints docs/methods.md's completeness table (minutes;
 * TFX_IG_RULES_TRAIN / TFX_IG_RULES_EPOCHS train longer first).
 * Skipped (exit 77) when /usr/share/datasets/fashion-mnist is absent. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define OK(call)                                                                         \
    do {                                                                                 \
        int rc_ = (call);                                                                \
        if (rc_ != TFX_OK) fail_msg("%s: %d %s", #call, rc_, tfx_error_last()->message); \
    } while (0)

static int have_data(void)
{
    FILE *f = fopen(DATA_DIR "/t10k-labels-idx1-ubyte.gz", "rb");
    if (!f) f = fopen(DATA_DIR "/t10k-labels-idx1-ubyte", "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* The tutorial's seed model (examples/train_seed_model.c); last activation as given. */
static tfx_model *seed_model(int last_activation)
{
    tfx_model *m = NULL;
    OK(tfx_model_new(&m, 28, 28, 1));
    tfx_conv2d_options conv = TFX_CONV2D_OPTIONS_INIT;
    conv.activation = TFX_ACTIVATION_RELU;
    conv.filters = 32;
    OK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 64;
    conv.name = "visualization_layer";
    OK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 128;
    conv.name = NULL;
    OK(tfx_model_add_conv2d(m, &conv, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options dense = TFX_DENSE_OPTIONS_INIT;
    dense.units = 128;
    dense.activation = TFX_ACTIVATION_RELU;
    OK(tfx_model_add_dense(m, &dense, NULL));
    dense.units = 10;
    dense.activation = last_activation;
    OK(tfx_model_add_dense(m, &dense, NULL));
    return m;
}

/* A copy of m's weights in a model whose last layer is linear: its outputs are m's logits. */
static tfx_model *logit_model(tfx_model *m)
{
    tfx_model *z = seed_model(TFX_ACTIVATION_LINEAR);
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        size_t nk, nb;
        OK(tfx_layer_weight_sizes(tfx_model_layer(m, i), &nk, &nb));
        if (nk + nb == 0) continue;
        float *k = malloc((nk + 1) * sizeof *k), *b = malloc((nb + 1) * sizeof *b);
        assert_non_null(k);
        assert_non_null(b);
        OK(tfx_layer_get_weights(tfx_model_layer(m, i), k, b));
        OK(tfx_layer_set_weights(tfx_model_layer(z, i), k, b));
        free(k);
        free(b);
    }
    return z;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The trained model, shared by the tests (group setup). */
static struct {
    tfx_model *m, *zm; /* the model, and a copy with its logits as outputs */
    tfx_dataset *test;
    size_t n_test;
} fx;

static int setup(void **state)
{
    (void)state;
    int valgrind = getenv("RUNNING_VALGRIND") != NULL;
    const char *table = getenv("TFX_IG_RULES_TABLE");
    /* The table can also be measured on a longer-trained model: TFX_IG_RULES_TRAIN images,
     * TFX_IG_RULES_EPOCHS epochs (the tutorial's: 6000 and 2). */
    const char *tr = getenv("TFX_IG_RULES_TRAIN"), *ep = getenv("TFX_IG_RULES_EPOCHS");
    const size_t n_train = valgrind ? 100 : table && tr && atoi(tr) > 0 ? (size_t)atoi(tr) : 2000;
    const int epochs = table && ep && atoi(ep) > 0 ? atoi(ep) : 1;
    size_t n = valgrind ? 2 : 20;
    if (table && atoi(table) > 20 && !valgrind) n = (size_t)atoi(table);

    tfx_dataset *train = NULL;
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = n_train;
    OK(tfx_dataset_load_idx_dir(&train, DATA_DIR, TFX_DATA_TRAIN, &dopt));
    dopt.limit = n;
    OK(tfx_dataset_load_idx_dir(&fx.test, DATA_DIR, TFX_DATA_TEST, &dopt));
    fx.n_test = tfx_dataset_count(fx.test);

    /* The tutorial's compile and fit (Adam, batch 50, validation_split 0.2), one epoch. */
    tfx_model *m = seed_model(TFX_ACTIVATION_SOFTMAX);
    OK(tfx_model_set_seed(m, 0));
    tfx_compile_options copt = TFX_COMPILE_OPTIONS_INIT;
    copt.optimizer = TFX_OPTIMIZER_ADAM;
    copt.loss = TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    copt.metrics = TFX_METRIC_ACCURACY;
    OK(tfx_model_compile(m, &copt));
    tfx_fit_options fopt = TFX_FIT_OPTIONS_INIT;
    fopt.batch_size = 50;
    fopt.epochs = epochs;
    fopt.validation_split = 0.2;
    fopt.verbose = 0;
    OK(tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), n_train, &fopt, NULL));
    double loss, acc;
    OK(tfx_model_evaluate(m, tfx_dataset_images(fx.test), tfx_dataset_labels(fx.test), fx.n_test, &loss, &acc));
    print_message("trained on %zu images, %d epoch(s): accuracy %.2f on %zu test images\n", n_train, epochs, acc,
                  fx.n_test);
    tfx_dataset_free(train);
    fx.m = m;
    fx.zm = logit_model(m);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tfx_model_free(fx.zm);
    tfx_model_free(fx.m);
    tfx_dataset_free(fx.test);
    return 0;
}

static void test_ig_completeness_trained_seed_model(void **state)
{
    (void)state;
    tfx_model *m = fx.m;
    const size_t n = fx.n_test < 20 ? fx.n_test : 20;
    const int steps = 200, P = 28 * 28;
    tfx_dataset *test = fx.test;

    const float *x = tfx_dataset_images(test);
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
    o.steps = steps; /* class -1: each image's predicted class */
    tfx_attribution *ig = NULL, *g1 = NULL, *g0 = NULL;
    OK(tfx_explain(m, x, n, &o, &ig));
    int cls[20];
    (void)test;
    for (size_t i = 0; i < n; i++) {
        cls[i] = tfx_attribution_class_index(ig, i);
        assert_true(cls[i] >= 0 && cls[i] < 10);
    }

    /* Plain gradients of the same logits at x and at the black baseline. */
    float *zero = calloc(n * (size_t)P, sizeof *zero);
    assert_non_null(zero);
    tfx_explain_options go = TFX_EXPLAIN_OPTIONS_INIT;
    go.method = TFX_METHOD_VANILLA_GRADIENTS;
    go.class_indices = cls;
    OK(tfx_explain(m, x, n, &go, &g1));
    OK(tfx_explain(m, zero, n, &go, &g0));

    /* Independent logits: z_c(x) and z_c(0). */
    tfx_model *zm = fx.zm;
    float *zx = malloc(n * 10 * sizeof *zx), *z0 = malloc(n * 10 * sizeof *z0);
    assert_non_null(zx);
    assert_non_null(z0);
    OK(tfx_model_predict(zm, x, n, zx));
    OK(tfx_model_predict(zm, zero, n, z0));

    double rel[20], worst_trap = 0.0;
    int over = 0;
    for (size_t i = 0; i < n; i++) {
        double delta, diff;
        OK(tfx_attribution_ig_delta(ig, i, &delta, &diff));
        double want_diff = (double)zx[i * 10 + (size_t)cls[i]] - (double)z0[i * 10 + (size_t)cls[i]];
        assert_true(fabs(diff - want_diff) <= 1e-4 * fabs(want_diff) + 1e-5);

        const float *a = tfx_attribution_data(ig, i), *ga = tfx_attribution_data(g1, i),
                    *gb = tfx_attribution_data(g0, i), *xi = x + i * (size_t)P;
        double sum = 0.0, end = 0.0;
        for (int p = 0; p < P; p++) {
            sum += a[p];
            end += ((double)ga[p] - (double)gb[p]) * (double)xi[p];
        }
        assert_true(fabs(delta - fabs(sum - diff)) <= 1e-4 * fabs(diff) + 1e-5);
        rel[i] = fabs(sum - diff) / fabs(diff);
        over += rel[i] > 0.01;
        double trap = fabs(sum - end / (2.0 * steps) - diff) / fabs(diff);
        if (trap > worst_trap) worst_trap = trap;
        print_message("image %2zu class %d: S(x)-S(0) %8.4f  |gap| %.4g = %.3f %%  trapezoid-corrected %.3f %%\n", i,
                      cls[i], diff, fabs(sum - diff), 100.0 * rel[i], 100.0 * trap);
        assert_true(trap <= 0.01);
    }
    qsort(rel, n, sizeof rel[0], cmp_double);
    double median = n % 2 ? rel[n / 2] : 0.5 * (rel[n / 2 - 1] + rel[n / 2]);
    print_message("m = %d: relative gap median %.3f %%, max %.3f %% (%d of %zu images over 1 %%); "
                  "trapezoid-corrected max %.3f %%\n",
                  steps, 100.0 * median, 100.0 * rel[n - 1], over, n, 100.0 * worst_trap);
    assert_true(median <= 0.01);

    free(zx);
    free(z0);
    free(zero);
    tfx_attribution_free(ig);
    tfx_attribution_free(g1);
    tfx_attribution_free(g0);
}

/* Relative gaps |sum(map) - (z_c(x) - z_c(0))| / |z_c(x) - z_c(0)| of one rule at m steps on n
 * images, z the independent logits; the attribution's own delta and score difference checked. */
static void rule_gaps(const float *x, size_t n, const int *cls, const float *zx, const float *z0, int rule, int steps,
                      double *rel)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_INTEGRATED_GRADIENTS;
    o.steps = steps;
    o.ig_rule = rule;
    o.class_indices = cls;
    tfx_attribution *a = NULL;
    OK(tfx_explain(fx.m, x, n, &o, &a));
    for (size_t i = 0; i < n; i++) {
        double delta, diff, sum = 0.0;
        OK(tfx_attribution_ig_delta(a, i, &delta, &diff));
        double want = (double)zx[i * 10 + (size_t)cls[i]] - (double)z0[i * 10 + (size_t)cls[i]];
        if (!(fabs(diff - want) <= 1e-4 * fabs(want) + 1e-5))
            fail_msg("rule %d, m = %d, image %zu: score difference %.6g, independent %.6g", rule, steps, i, diff, want);
        const float *d = tfx_attribution_data(a, i);
        for (int p = 0; p < 28 * 28; p++) sum += d[p];
        if (!(fabs(delta - fabs(sum - diff)) <= 1e-4 * fabs(diff) + 1e-5))
            fail_msg("rule %d, m = %d, image %zu: delta %.6g, |sum - diff| %.6g", rule, steps, i, delta,
                     fabs(sum - diff));
        rel[i] = fabs(sum - want) / fabs(want);
    }
    tfx_attribution_free(a);
}

static double median_of(const double *v, size_t n, double *max)
{
    double *s = malloc(n * sizeof *s);
    assert_non_null(s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    *max = s[n - 1];
    free(s);
    return med;
}

/* Every integration rule on the trained model: m = 20 on 10 images (or the table, above). */
static void test_ig_rules_trained_seed_model(void **state)
{
    (void)state;
    static const char *const names[] = {"right Riemann (default)", "left Riemann", "middle Riemann", "trapezoid",
                                        "Gauss-Legendre"};
    const int table = getenv("TFX_IG_RULES_TABLE") != NULL;
    const size_t n = table ? fx.n_test : (fx.n_test < 10 ? fx.n_test : 10);
    const int all_steps[] = {20, 50, 200};
    const size_t n_steps = table ? 3 : 1;
    const float *x = tfx_dataset_images(fx.test);
    float *zx = malloc(n * 10 * sizeof *zx), *z0 = malloc(n * 10 * sizeof *z0), *zero = calloc(n * 784, sizeof *zero);
    int *cls = malloc(n * sizeof *cls);
    double *rel = malloc(5 * 3 * n * sizeof *rel); /* [rule][m][image] */
    assert_true(zx && z0 && zero && cls && rel);
    OK(tfx_model_predict(fx.zm, x, n, zx));
    OK(tfx_model_predict(fx.zm, zero, n, z0));
    for (size_t i = 0; i < n; i++) { /* the predicted class: the argmax of the logits */
        cls[i] = 0;
        for (int k = 1; k < 10; k++)
            if (zx[i * 10 + (size_t)k] > zx[i * 10 + (size_t)cls[i]]) cls[i] = k;
    }
    double med[5][3], mx[5][3];
    int over[5][3];
    print_message("| rule | m | median gap | max gap | images over 1 %% |\n|---|---|---|---|---|\n");
    for (int rule = TFX_IG_RIEMANN_RIGHT; rule <= TFX_IG_GAUSS_LEGENDRE; rule++)
        for (size_t t = 0; t < n_steps; t++) {
            double *r = rel + ((size_t)rule * 3 + t) * n;
            rule_gaps(x, n, cls, zx, z0, rule, all_steps[t], r);
            med[rule][t] = median_of(r, n, &mx[rule][t]);
            over[rule][t] = 0;
            for (size_t i = 0; i < n; i++) over[rule][t] += r[i] > 0.01;
            print_message("| %s | %d | %.3f %% | %.3f %% | %d of %zu |\n", names[rule], all_steps[t],
                          100.0 * med[rule][t], 100.0 * mx[rule][t], over[rule][t], n);
        }
    if (table) { /* the images Gauss-Legendre at m = 50 leaves above 1 %, every rule's gap on them */
        const double *gl50 = rel + ((size_t)TFX_IG_GAUSS_LEGENDRE * 3 + 1) * n;
        for (size_t i = 0; i < n; i++) {
            if (gl50[i] <= 0.01) continue;
            print_message("GL m = 50 over 1 %%: image %zu (label %d, class %d), z(x) - z(0) = %.4f:", i,
                          (int)tfx_dataset_labels(fx.test)[i], cls[i],
                          (double)zx[i * 10 + (size_t)cls[i]] - (double)z0[i * 10 + (size_t)cls[i]]);
            for (int rule = 0; rule < 5; rule++)
                for (size_t t = 0; t < 3; t++)
                    print_message(" %c%d %.2f%%", "RLMTG"[rule], all_steps[t], 100.0 * rel[((size_t)rule * 3 + t) * n + i]);
            print_message("\n");
        }
    }
    /* At m = 20 Gauss-Legendre at least halves the default's median gap (measured: 0.13 % against
     * 1.6 % on these 10 images; 0.36 % / 2.1 % and 0.61 % / 2.2 % over 100 images on this model and
     * the tutorial's, docs/methods.md) and lowers the worst one. */
    assert_true(med[TFX_IG_GAUSS_LEGENDRE][0] < 0.5 * med[TFX_IG_RIEMANN_RIGHT][0]);
    assert_true(mx[TFX_IG_GAUSS_LEGENDRE][0] < mx[TFX_IG_RIEMANN_RIGHT][0]);
    free(zx);
    free(z0);
    free(zero);
    free(cls);
    free(rel);
}

int main(void)
{
    if (!have_data()) {
        printf("SKIP: no %s\n", DATA_DIR);
        return 77; /* meson's skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ig_completeness_trained_seed_model),
        cmocka_unit_test(test_ig_rules_trained_seed_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
