/* Slow measurement (suite 'slow'): train the tutorial's seed model on 5000 Fashion-MNIST images
 * for one epoch, then over 100 test images compare the deletion / insertion AUC (Petsiuk et
 * al.; defaults: W = 28 pixels per step, deletion to 0, insertion from an 11x11 sigma-5 blur,
 * class probability) of Grad-CAM, Integrated Gradients and the methods beyond tf-explain's with a
 * random map, and run the cascading model-randomisation sanity check. Asserts: IG beats the random
 * map on both AUCs, Grad-CAM on insertion; rank correlation falls after randomisation. By default
 * (CI, suite 'slow': about 90 s) only the asserted rows of the AUC table run; with
 * TFX_FAITHFULNESS_ALL=1 every method does, printing the tables docs/methods.md quotes.
 * Data: /usr/share/datasets/fashion-mnist (the test exits 77, skipped, when it is missing). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "explain/explain_internal.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

#define DATA_DIR "/usr/share/datasets/fashion-mnist"
#define N_TRAIN 5000
#define N_TEST 100

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static tfx_model *seed_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 28, 28, 1));
    OK(tfx_model_set_seed(m, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.activation = TFX_ACTIVATION_RELU;
    c.filters = 32;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    c.filters = 64;
    c.name = "visualization_layer";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    c.filters = 128;
    c.name = NULL;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 128;
    d.activation = TFX_ACTIVATION_RELU;
    OK(tfx_model_add_dense(m, &d, NULL));
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

typedef struct row {
    const char *name;
    int method;
    int lrp_rule;
} row;

static tfx_model *M;
static tfx_dataset *TEST;

static int setup_trained(void **state)
{
    (void)state;
    tfx_dataset *train, *test;
    tfx_data_options dopt = TFX_DATA_OPTIONS_INIT;
    dopt.limit = N_TRAIN;
    OK(tfx_dataset_load_idx_dir(&train, DATA_DIR, TFX_DATA_TRAIN, &dopt));
    dopt.limit = N_TEST;
    OK(tfx_dataset_load_idx_dir(&test, DATA_DIR, TFX_DATA_TEST, &dopt));
    tfx_model *m = seed_model();
    (void)state;
    tfx_compile_options copt = TFX_COMPILE_OPTIONS_INIT;
    OK(tfx_model_compile(m, &copt));
    tfx_fit_options fopt = TFX_FIT_OPTIONS_INIT;
    fopt.batch_size = 50;
    fopt.epochs = 1;
    fopt.shuffle = 1;
    double t0 = now();
    OK(tfx_model_fit(m, tfx_dataset_images(train), tfx_dataset_labels(train), N_TRAIN, &fopt, NULL));
    double loss, acc;
    OK(tfx_model_evaluate(m, tfx_dataset_images(test), tfx_dataset_labels(test), N_TEST, &loss, &acc));
    print_message("trained on %d images, 1 epoch, %.1f s; test accuracy on %d: %.3f\n", N_TRAIN, now() - t0, N_TEST,
                  acc);
    tfx_dataset_free(train);
    M = m;
    TEST = test;
    return 0;
}

static int teardown_trained(void **state)
{
    (void)state;
    tfx_model_free(M);
    tfx_dataset_free(TEST);
    return 0;
}

static void test_deletion_insertion_fashion_mnist(void **state)
{
    (void)state;
    tfx_model *m = M;
    const float *x = tfx_dataset_images(TEST);
    static const row rows[] = {
        {"random map", 0, 0},
        {"Grad-CAM", TFX_METHOD_GRAD_CAM, 0},
        {"Integrated Gradients (m = 50)", TFX_METHOD_INTEGRATED_GRADIENTS, 0},
        {"Grad-CAM++", TFX_METHOD_GRAD_CAM_PLUS_PLUS, 0},
        {"Score-CAM", TFX_METHOD_SCORE_CAM, 0},
        {"Layer-CAM", TFX_METHOD_LAYER_CAM, 0},
        {"Eigen-CAM", TFX_METHOD_EIGEN_CAM, 0},
        {"Vanilla gradients", TFX_METHOD_VANILLA_GRADIENTS, 0},
        {"Gradients x inputs", TFX_METHOD_GRADIENTS_INPUTS, 0},
        {"Guided backprop", TFX_METHOD_GUIDED_BACKPROP, 0},
        {"LRP-epsilon (0.1)", TFX_METHOD_LRP, TFX_LRP_EPSILON},
        {"LRP composite (zB, z+, eps)", TFX_METHOD_LRP, TFX_LRP_COMPOSITE},
    };
    /* the first three rows are the asserted ones; the others are the docs' measurement */
    const size_t nr = getenv("TFX_FAITHFULNESS_ALL") ? sizeof rows / sizeof rows[0] : 3;
    double mdel[16], mins[16];
    double *del = malloc(N_TEST * sizeof(double)), *ins = malloc(N_TEST * sizeof(double));
    tfx_attribution *a_grad = NULL;
    print_message("| method | deletion AUC (lower is better) | insertion AUC (higher is better) | seconds |\n");
    print_message("|---|---|---|---|\n");
    for (size_t r = 0; r < nr; r++) {
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = rows[r].method ? rows[r].method : TFX_METHOD_GRAD_CAM;
        o.upsample = 1;
        o.lrp_rule = rows[r].lrp_rule ? rows[r].lrp_rule : TFX_LRP_EPSILON;
        tfx_attribution *a;
        double t1 = now();
        OK(tfx_explain(m, x, N_TEST, &o, &a));
        if (rows[r].method == 0) { /* the random baseline: uniform noise in place of the maps */
            uint64_t s = 12345;
            size_t cnt = (size_t)a->h * a->w * a->c * a->n;
            for (size_t i = 0; i < cnt; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                a->data[i] = (float)((s >> 33) & 0xffffff) / 16777216.0f;
            }
        }
        OK(tfx_deletion_insertion(m, x, N_TEST, a, NULL, del, ins));
        double sd = 0.0, si = 0.0;
        for (size_t i = 0; i < N_TEST; i++) {
            sd += del[i];
            si += ins[i];
        }
        mdel[r] = sd / N_TEST;
        mins[r] = si / N_TEST;
        print_message("| %s | %.4f | %.4f | %.1f |\n", rows[r].name, mdel[r], mins[r], now() - t1);
        if (rows[r].method == TFX_METHOD_GRAD_CAM) a_grad = a;
        else tfx_attribution_free(a);
    }
    tfx_attribution_free(a_grad);
    /* IG beats random on both; Grad-CAM on insertion. Grad-CAM's deletion AUC is printed, not
     * asserted: deleting to black on Fashion-MNIST's black background barely separates a 22x22
     * CAM from noise (0.4294 vs 0.4424 when docs/methods.md was measured, 0.4415 vs 0.4357 after
     * later changes to training's rounding), so its order is chance, not a property. */
    assert_true(mins[1] > mins[0]);
    assert_true(mdel[2] < mdel[0] && mins[2] > mins[0]);
    free(del);
    free(ins);
}

static void test_sanity_fashion_mnist(void **state)
{
    (void)state;
    tfx_model *m = M;
    const float *x = tfx_dataset_images(TEST);

    /* Sanity check: cascading randomisation from the top on 10 images. */
    static const row san[] = {{"Vanilla gradients", TFX_METHOD_VANILLA_GRADIENTS, 0},
                              {"Integrated Gradients", TFX_METHOD_INTEGRATED_GRADIENTS, 0},
                              {"Grad-CAM (visualization_layer)", TFX_METHOD_GRAD_CAM, 0},
                              {"Guided backprop", TFX_METHOD_GUIDED_BACKPROP, 0}};
    print_message("\n| method | dense_1 | + dense | + conv2d_2 | + visualization_layer | + conv2d |\n");
    print_message("|---|---|---|---|---|---|\n");
    for (size_t r = 0; r < 4; r++) {
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = san[r].method;
        o.layer_name = san[r].method == TFX_METHOD_GRAD_CAM ? "visualization_layer" : NULL;
        o.upsample = 1;
        o.steps = 16;
        double rho[8];
        size_t cnt;
        OK(tfx_sanity_check(m, x, 10, &o, TFX_RANK_SUM_ABS, 7, rho, 8, &cnt));
        assert_int_equal(cnt, 5);
        print_message("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", san[r].name, rho[0], rho[1], rho[2], rho[3],
                      rho[4]);
        /* Gradients and Grad-CAM decorrelate. IG keeps a high rank correlation here: its x * (...)
         * factor is 0 on the black background of every Fashion-MNIST image in both maps (the
         * input dominates, as Adebayo et al. report for gradient x input); it still falls.
         * Guided backprop is known to stay similar (Adebayo et al.): no claim. */
        if (san[r].method == TFX_METHOD_VANILLA_GRADIENTS || san[r].method == TFX_METHOD_GRAD_CAM)
            for (size_t k = 0; k < cnt; k++) assert_true(rho[k] < 0.7);
        if (san[r].method == TFX_METHOD_INTEGRATED_GRADIENTS)
            for (size_t k = 0; k < cnt; k++) assert_true(rho[k] < 0.97);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_deletion_insertion_fashion_mnist),
                                       cmocka_unit_test(test_sanity_fashion_mnist)};
    /* TFX_TEST_FILTER: run only the matching tests (cmocka pattern), e.g. "*sanity*". */
    FILE *probe = fopen(DATA_DIR "/train-images-idx3-ubyte.gz", "rb");
    if (!probe) {
        printf("SKIP: no %s\n", DATA_DIR);
        return 77; /* meson's skipped */
    }
    fclose(probe);
    const char *filter = getenv("TFX_TEST_FILTER");
    if (filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, setup_trained, teardown_trained);
}
